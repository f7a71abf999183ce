// Progressive enhancement only: every page works without this file (reload for new signals).
document.addEventListener("DOMContentLoaded", function () {
  var ping = document.getElementById("ping");
  if (ping) {
    fetch(ping.getAttribute("data-ping"), { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (j) {
        ping.textContent = j.status === "ok"
          ? "Backend reachable (" + j.latency_ms + " ms)."
          : "Backend unreachable right now.";
      })
      .catch(function () { ping.textContent = "Backend check failed."; });
  }

  // Live feed: cards arrive as HTML rendered by the server from the same partial as the page.
  var feed = document.getElementById("feed");
  if (!feed || !window.EventSource || !feed.getAttribute("data-stream")) return;
  var insert = feed.getAttribute("data-insert") === "1";
  var source = new EventSource(feed.getAttribute("data-stream"));
  source.addEventListener("signal", function (e) {
    var msg;
    try { msg = JSON.parse(e.data); } catch (_) { return; }
    var old = document.getElementById("signal-" + msg.id);
    if (msg.action === "delete") {
      if (old) old.parentNode.removeChild(old);
      return;
    }
    var tpl = document.createElement("template");
    tpl.innerHTML = msg.html;
    var card = tpl.content.firstElementChild;
    if (!card) return;
    if (old) {
      old.parentNode.replaceChild(card, old);
    } else if (insert) {
      var empty = feed.querySelector(":scope > p.muted");
      if (empty) feed.removeChild(empty);
      feed.insertBefore(card, feed.firstChild);
    }
  });
  // Too far behind to resume: the page itself is the catch-up.
  source.addEventListener("reset", function () {
    source.close();
    window.location.reload();
  });
});
