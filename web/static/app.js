// Live updates for the Outpost status page. No inline script exists (the CSP forbids it):
// this file follows /api/v1/stream and, when the data changes, refetches the page's live
// region as server-rendered, server-escaped HTML. Without EventSource it polls instead.
"use strict";
(function () {
  var main = document.getElementById("live");
  var stateEl = document.getElementById("live-state");
  if (!main) return;
  var liveUrl = main.getAttribute("data-live");
  var target = document.getElementById("device-table") || main;
  var firstVersion = null;
  var busy = false;
  var again = false;
  var POLL_MS = 10000;

  function say(text) {
    if (stateEl) stateEl.textContent = text;
  }

  function stamp() {
    var d = new Date();
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  function refresh() {
    if (!liveUrl) return;
    if (busy) { again = true; return; }
    busy = true;
    fetch(liveUrl, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.text(); })
      .then(function (html) {
        target.innerHTML = html;
        say("Live · updated " + stamp());
        document.body.setAttribute("data-refreshed", String(Date.now()));
      })
      .catch(function () { say("Connection to the appliance lost; retrying"); })
      .then(function () {
        busy = false;
        if (again) { again = false; refresh(); }
      });
  }

  if (!liveUrl) { say(""); return; }
  if (window.EventSource) {
    var es = new EventSource("/api/v1/stream");
    es.addEventListener("change", function (ev) {
      if (firstVersion === null) { firstVersion = ev.data; say("Live"); return; }
      if (ev.data !== firstVersion) { firstVersion = ev.data; refresh(); }
    });
    es.onerror = function () {
      if (es.readyState === EventSource.CLOSED) {
        // Refused (e.g. too many live pages open): poll instead of following the stream.
        say("Updating every " + POLL_MS / 1000 + " s");
        setInterval(refresh, POLL_MS);
      } else {
        say("Reconnecting…");
      }
    };
    es.onopen = function () { say("Live"); };
  } else {
    setInterval(refresh, POLL_MS);
  }

  // Confirm before actions that cannot be undone (data-confirm on the form).
  document.addEventListener("submit", function (ev) {
    var msg = ev.target.getAttribute && ev.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) ev.preventDefault();
  });
})();
