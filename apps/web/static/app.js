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

  // Times: the server writes UTC; the reader sees "5 min ago · 14:03" in their own zone.
  function relative(date, now) {
    var s = Math.round((now - date) / 1000);
    if (s < 45) return "just now";
    var m = Math.round(s / 60);
    if (m < 60) return m + " min ago";
    var h = Math.round(m / 60);
    if (h < 24) return h + " h ago";
    var d = Math.round(h / 24);
    return d < 7 ? d + (d === 1 ? " day ago" : " days ago") : null;
  }
  function local(date, now) {
    var today = date.toDateString() === now.toDateString();
    return date.toLocaleString(undefined, today
      ? { hour: "2-digit", minute: "2-digit" }
      : { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  }
  function upgradeTimes(root) {
    var now = new Date();
    var times = root.querySelectorAll("time[datetime]");
    for (var i = 0; i < times.length; i++) {
      var t = times[i];
      var date = new Date(t.getAttribute("datetime"));
      if (isNaN(date.getTime())) continue;
      if (!t.hasAttribute("title")) t.setAttribute("title", t.textContent);
      var rel = relative(date, now);
      t.textContent = rel ? rel + " · " + local(date, now) : local(date, now);
    }
  }
  upgradeTimes(document);
  setInterval(function () { upgradeTimes(document); }, 60000);

  // Charts open large over the page; the link itself (the full image) works without this.
  var lightbox = null;
  function enlarge(href, alt) {
    if (!window.HTMLDialogElement) return false;
    if (!lightbox) {
      lightbox = document.createElement("dialog");
      lightbox.className = "lightbox";
      lightbox.setAttribute("aria-label", "Chart");
      var close = document.createElement("button");
      close.type = "button";
      close.textContent = "Close";
      lightbox.appendChild(close);
      lightbox.appendChild(document.createElement("img"));
      lightbox.addEventListener("click", function () { lightbox.close(); });
      document.body.appendChild(lightbox);
    }
    var img = lightbox.querySelector("img");
    img.src = href;
    img.alt = alt || "";
    lightbox.showModal();
    return true;
  }

  var feed = document.getElementById("feed");
  if (!feed) return;
  feed.addEventListener("click", function (e) {
    var chart = e.target.closest("a.chart");
    if (chart && !e.ctrlKey && !e.metaKey && !e.shiftKey) {
      var img = chart.querySelector("img");
      if (enlarge(chart.getAttribute("href"), img && img.alt)) e.preventDefault();
      return;
    }
    // The list view opens a row in place; links and controls inside keep their own meaning.
    if (!feed.classList.contains("list") || e.target.closest("a, button, summary, details")) return;
    var card = e.target.closest("article.card");
    if (card) card.classList.toggle("open");
  });

  // Live feed: cards arrive as HTML rendered by the server from the same partial as the page.
  if (!window.EventSource || !feed.getAttribute("data-stream")) return;
  var insert = feed.getAttribute("data-insert") === "1";
  var newest = feed.getAttribute("data-newest");

  // "N new signals": on the newest page while the reader is scrolled down (the cards are
  // already in place above), or on an older page (the button loads the newest page).
  var notice = null;
  var unseen = 0;
  function atTop() {
    return feed.getBoundingClientRect().top >= -40;
  }
  function hideNotice() {
    unseen = 0;
    if (notice) notice.hidden = true;
  }
  function showNotice() {
    if (!notice) {
      notice = document.createElement("button");
      notice.type = "button";
      notice.className = "new-signals";
      notice.setAttribute("aria-live", "polite");
      notice.addEventListener("click", function () {
        if (!insert && newest) {
          window.location.href = newest;
          return;
        }
        hideNotice();
        feed.scrollIntoView({ behavior: "smooth", block: "start" });
      });
      feed.parentNode.insertBefore(notice, feed);
    }
    notice.textContent = unseen === 1 ? "1 new signal" : unseen + " new signals";
    notice.hidden = false;
  }
  window.addEventListener("scroll", function () {
    if (insert && unseen && atTop()) hideNotice();
  }, { passive: true });

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
    upgradeTimes(card);
    card.classList.add("arrived");
    if (old) {
      if (old.classList.contains("open")) card.classList.add("open");
      old.parentNode.replaceChild(card, old);
    } else if (insert) {
      var empty = feed.querySelector(":scope > .empty");
      if (empty) feed.removeChild(empty);
      var top = atTop();
      feed.insertBefore(card, feed.firstChild);
      if (!top && msg.action === "create") {
        unseen++;
        showNotice();
      }
    } else {
      if (newest && msg.action === "create") {
        unseen++;
        showNotice();
      }
      return;
    }
    setTimeout(function () { card.classList.remove("arrived"); }, 6000);
  });
  // Outcomes: a card's status fragment (templates/outcome.html) replaced in place, or put where
  // the server puts it (after the trade, else after the header) when the card had none yet.
  source.addEventListener("outcome", function (e) {
    var msg;
    try { msg = JSON.parse(e.data); } catch (_) { return; }
    var card = document.getElementById("signal-" + msg.id);
    if (!card) return;
    var old = document.getElementById("outcome-" + msg.id);
    if (!msg.html) {
      if (old) old.parentNode.removeChild(old);
      return;
    }
    var tpl = document.createElement("template");
    tpl.innerHTML = msg.html;
    var fragment = tpl.content.firstElementChild;
    if (!fragment) return;
    upgradeTimes(fragment);
    if (old) {
      old.parentNode.replaceChild(fragment, old);
      return;
    }
    var after = card.querySelector(":scope > dl.trade") || card.querySelector(":scope > header");
    if (after) after.insertAdjacentElement("afterend", fragment);
  });
  // Connection state, said only when something is wrong: the browser reconnects by itself
  // (resuming with Last-Event-ID); a refused stream (the plan ended) is not retried.
  var status = null;
  function liveStatus(text) {
    if (!status) {
      status = document.createElement("p");
      status.className = "live-status";
      status.setAttribute("role", "status");
      feed.parentNode.insertBefore(status, feed);
    }
    status.textContent = text;
    status.hidden = !text;
  }
  source.addEventListener("open", function () { if (status) liveStatus(""); });
  source.addEventListener("error", function () {
    liveStatus(source.readyState === EventSource.CLOSED
      ? "Live updates stopped. Reload the page to continue."
      : "Live updates paused: reconnecting…");
  });
  // Too far behind to resume: the page itself is the catch-up.
  source.addEventListener("reset", function () {
    source.close();
    window.location.reload();
  });
});
