/* The patient's waiting page: the live position in a department queue.
 *
 * Page contract: <div id="queue-status" data-ws-url data-room-url> with #queue-position and
 * #queue-wait inside; optional labels data-text-minutes ("about {minutes} minutes"), data-text-picked
 * (the doctor is ready), data-text-ended (no longer waiting), data-text-connecting / -offline.
 * The server sends {"type": "position", "position", "ahead", "estimated_minutes", "status",
 * "room_url"} on connect and on every change; when the status becomes "active" the doctor has
 * taken the patient and the page goes to the room.
 */
(function () {
  "use strict";

  var root = document.getElementById("queue-status");
  if (!root) {
    return;
  }
  var positionBox = document.getElementById("queue-position");
  var waitBox = document.getElementById("queue-wait");
  var ENGLISH = {
    position: "{position}",
    minutes: "about {minutes} minutes",
    picked: "A doctor is ready for you. Opening the consultation…",
    ended: "This consultation is no longer waiting.",
    connecting: "Connecting…",
    connected: "",
    reconnecting: "Offline: reconnecting…",
    offline: "Offline: reconnecting…",
    refused: "You cannot follow this queue"
  };

  function text(name) {
    var value = root.getAttribute("data-text-" + name);
    if (value !== null && value !== "") {
      return value;
    }
    return Object.prototype.hasOwnProperty.call(ENGLISH, name) ? ENGLISH[name] : "";
  }

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (whole, key) {
      return Object.prototype.hasOwnProperty.call(values, key) ? String(values[key]) : whole;
    });
  }

  function socketUrl() {
    var given = root.getAttribute("data-ws-url");
    if (/^wss?:\/\//.test(given)) {
      return given;
    }
    return (window.location.protocol === "https:" ? "wss://" : "ws://") + window.location.host + given;
  }

  var stateBox = document.createElement("p");
  stateBox.className = "muted";
  stateBox.id = "queue-connection";
  stateBox.setAttribute("role", "status");
  root.appendChild(stateBox);

  function setState(state) {
    root.setAttribute("data-connection", state);
    stateBox.textContent = state === "reconnecting" ? text("offline") : text(state);
  }

  function goToRoom(url) {
    var target = url || root.getAttribute("data-room-url");
    if (target && target.charAt(0) === "/") {
      window.location.assign(target);
    }
  }

  function show(frame) {
    root.setAttribute("data-status", frame.status || "");
    root.setAttribute("data-position", String(frame.position));
    if (frame.status === "active") {
      stateBox.textContent = text("picked");
      goToRoom(frame.room_url);
      return;
    }
    if (frame.status !== "waiting") {
      stateBox.textContent = text("ended");
      if (waitBox) {
        waitBox.textContent = "";
      }
      return;
    }
    if (positionBox) {
      positionBox.textContent = fill(text("position"), { position: frame.position, ahead: frame.ahead });
    }
    if (waitBox) {
      waitBox.textContent = fill(text("minutes"), { minutes: frame.estimated_minutes });
    }
  }

  var socket = null;
  var attempts = 0;
  var timer = null;
  var refused = false;

  function connect() {
    if (refused || (socket && socket.readyState <= WebSocket.OPEN)) {
      return;
    }
    window.clearTimeout(timer);
    timer = null;
    setState(attempts ? "reconnecting" : "connecting");
    var current = new WebSocket(socketUrl());
    socket = current;
    current.onmessage = function (event) {
      var frame;
      try {
        frame = JSON.parse(event.data);
      } catch (err) {
        return;
      }
      if (frame.type === "position") {
        attempts = 0;
        setState("connected");
        show(frame);
      }
      // (an error frame before a refusal close: the close code says what to do)
    };
    current.onclose = function (event) {
      if (socket !== current) {
        return;
      }
      socket = null;
      if (event.code === 4401 || event.code === 4403) {
        refused = true;
        setState("refused");
        return;
      }
      setState(navigator.onLine === false ? "offline" : "reconnecting");
      var delay = Math.min(15000, 500 * Math.pow(2, attempts)) * (0.75 + Math.random() * 0.5);
      attempts += 1;
      timer = window.setTimeout(connect, delay);
    };
  }

  window.addEventListener("online", function () {
    attempts = 0;
    connect();
  });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible" && socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ type: "position" }));
    }
  });
  connect();
})();
