// Progressive enhancement only: every page works without this file.
document.addEventListener("DOMContentLoaded", function () {
  var ping = document.getElementById("ping");
  if (!ping) return;
  fetch(ping.getAttribute("data-ping"), { credentials: "same-origin" })
    .then(function (r) { return r.json(); })
    .then(function (j) {
      ping.textContent = j.status === "ok"
        ? "Backend reachable (" + j.latency_ms + " ms)."
        : "Backend unreachable right now.";
    })
    .catch(function () { ping.textContent = "Backend check failed."; });
});
