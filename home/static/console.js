// Live updates of the MSP console. No inline script exists (the CSP forbids it): this file
// follows /console/stream (server-sent events) and, when the fleet changed, refetches the
// page's live region as server-rendered, server-escaped HTML (?partial=1). Without
// EventSource, or when the stream is refused, it polls.
"use strict";
(function () {
  var main = document.getElementById("live");
  var stateEl = document.getElementById("live-state");
  if (!main) return;
  var streamUrl = main.getAttribute("data-live");
  var first = null, busy = false, again = false, POLL_MS = 15000;

  function say(text) { if (stateEl) stateEl.textContent = text; }
  function stamp() { return new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" }); }
  function busyTyping() {
    var el = document.activeElement;
    return el && main.contains(el) && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT");
  }

  function refresh() {
    if (busy || busyTyping()) { again = true; return; }
    busy = true;
    var url = location.pathname + location.search + (location.search ? "&" : "?") + "partial=1";
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.text(); })
      .then(function (html) {
        main.innerHTML = html;
        say("Live · updated " + stamp());
        document.body.setAttribute("data-refreshed", String(Date.now()));
      })
      .catch(function () { say("Connection to home lost; retrying"); })
      .then(function () { busy = false; if (again) { again = false; setTimeout(refresh, 1000); } });
  }

  if (!streamUrl) { say(""); return; }
  if (window.EventSource) {
    var es = new EventSource(streamUrl);
    es.addEventListener("change", function (ev) {
      if (first === null) { first = ev.data; say("Live"); return; }
      if (ev.data !== first) { first = ev.data; refresh(); }
    });
    es.onerror = function () {
      if (es.readyState === EventSource.CLOSED) { say("Updating every " + POLL_MS / 1000 + " s"); setInterval(refresh, POLL_MS); }
      else { say("Reconnecting…"); }
    };
  } else {
    setInterval(refresh, POLL_MS);
  }

  document.addEventListener("submit", function (ev) {
    var msg = ev.target.getAttribute && ev.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) ev.preventDefault();
  });
})();
