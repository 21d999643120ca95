/* The doctor's workbench: a live "refresh" signal for the panels.
 *
 * Page contract: <div id="workbench" data-ws-url="/ws/workbench/">. On every {"type": "refresh"}
 * from the server (a patient joined the queue, a message arrived, a consultation changed), and after
 * a reconnection (changes may have been missed), the body gets a "workbench-refresh" event; the
 * panels reload with hx-trigger="workbench-refresh from:body". Bursts are folded into one refresh.
 */
(function () {
  "use strict";

  var root = document.getElementById("workbench");
  if (!root) {
    return;
  }

  function socketUrl() {
    var given = root.getAttribute("data-ws-url") || "/ws/workbench/";
    if (/^wss?:\/\//.test(given)) {
      return given;
    }
    return (window.location.protocol === "https:" ? "wss://" : "ws://") + window.location.host + given;
  }

  // "Live updates paused" while the line is down (data-text-offline, in the page's language).
  var offlineBox = document.createElement("p");
  offlineBox.className = "muted";
  offlineBox.id = "workbench-connection";
  offlineBox.setAttribute("role", "status");
  offlineBox.hidden = true;
  root.insertBefore(offlineBox, root.firstChild);

  function showConnection(state) {
    root.setAttribute("data-connection", state);
    offlineBox.textContent = root.getAttribute("data-text-offline") || "Live updates paused: reconnecting…";
    offlineBox.hidden = state === "connected";
  }

  var refreshTimer = null;
  function refresh() {
    if (refreshTimer) {
      return;
    }
    refreshTimer = window.setTimeout(function () {
      refreshTimer = null;
      document.body.dispatchEvent(new Event("workbench-refresh"));
    }, 200);
  }

  var socket = null;
  var attempts = 0;
  var timer = null;
  var refused = false;
  var everOpened = false;

  function connect() {
    if (refused || (socket && socket.readyState <= WebSocket.OPEN)) {
      return;
    }
    window.clearTimeout(timer);
    timer = null;
    var current = new WebSocket(socketUrl());
    socket = current;
    current.onopen = function () {
      showConnection("connected");
      attempts = 0;
      if (everOpened) {
        refresh(); // whatever changed while the line was down
      }
      everOpened = true;
    };
    current.onmessage = function (event) {
      var frame;
      try {
        frame = JSON.parse(event.data);
      } catch (err) {
        return;
      }
      if (frame.type === "refresh") {
        refresh();
      }
    };
    current.onclose = function (event) {
      if (socket !== current) {
        return;
      }
      socket = null;
      if (event.code === 4401 || event.code === 4403) {
        refused = true;
        root.setAttribute("data-connection", "refused");
        return;
      }
      showConnection("reconnecting");
      var delay = Math.min(15000, 500 * Math.pow(2, attempts)) * (0.75 + Math.random() * 0.5);
      attempts += 1;
      timer = window.setTimeout(connect, delay);
    };
  }

  window.addEventListener("online", function () {
    attempts = 0;
    connect();
  });
  connect();
})();
