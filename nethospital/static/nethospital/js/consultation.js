/* The consultation room: chat over the websocket, read receipts, and the WebRTC video call.
 *
 * Page contract (templates/consultations/): #consultation-room with data-consultation-id,
 * data-user-id, data-role, data-channel ("text" | "video"), data-ws-url, data-ice-servers (JSON),
 * data-upload-url and optional data-text-* labels in the page's language; inside it
 * #connection-state, ol#messages, form#chat-form (textarea[name=body]), input#chat-file,
 * button#call-start, button#call-end, span#call-state, video#local-video, video#remote-video.
 *
 * Chat guarantees: every message typed goes into an outbox (kept in sessionStorage) with a client id
 * and stays there until the server acknowledges it; after a reconnect the client says hello with the
 * highest seq it rendered, gets exactly what it missed, then resends the outbox with the same client
 * ids (the server stores each client id once). Each seq is rendered once, in order. All text is set
 * with textContent, never as HTML.
 *
 * Video: one RTCPeerConnection per other participant in the call (the doctor and the patient's
 * side, a guardian or station operator may watch too). Everyone announces itself ("join") once its
 * camera is on; of any two participants the one with the smaller user id makes the offer, the other
 * answers (should two offers still cross, the smaller id yields). The state of
 * the first peer connection is exposed as window.nhCall = {pc, state, peers} and as data-call-state
 * on #consultation-room. A failed call leaves the chat as it is.
 */
(function () {
  "use strict";

  var root = document.getElementById("consultation-room");
  if (!root) {
    return;
  }

  // --- settings from the page ---------------------------------------------------------------
  var consultationId = root.getAttribute("data-consultation-id");
  var userId = parseInt(root.getAttribute("data-user-id"), 10);
  var channelKind = root.getAttribute("data-channel") || "text";
  var uploadUrl = root.getAttribute("data-upload-url") || "";
  var iceServers = [];
  try {
    iceServers = JSON.parse(root.getAttribute("data-ice-servers") || "[]");
  } catch (err) {
    iceServers = [];
  }

  var ENGLISH = {
    connecting: "Connecting…",
    connected: "Connected",
    reconnecting: "Reconnecting…",
    offline: "Offline: messages will be sent when the connection is back",
    refused: "You cannot join this consultation",
    you: "You",
    doctor: "Doctor",
    patient: "Patient",
    family: "Family",
    guardian: "Guardian",
    "station-operator": "Station operator",
    system: "",
    sending: "Sending…",
    sent: "Sent",
    read: "Read",
    failed: "Not sent",
    uploading: "Uploading…",
    attachment: "File",
    "file-too-large": "The file is too large.",
    "upload-failed": "The file could not be sent",
    "call-idle": "No call",
    "call-ringing": "Call waiting to be joined",
    "call-joining": "Joining the call…",
    "call-connecting": "Connecting the call…",
    "call-connected": "In the call",
    "call-failed": "The call failed: you can go on in the chat",
    "call-ended": "The call ended",
    "call-no-media": "The camera or microphone is not available",
    "join-call": "Join the call",
    "start-call": "Start the video call"
  };

  function text(name) {
    var attribute = root.getAttribute("data-text-" + name);
    if (attribute !== null && attribute !== "") {
      return attribute;
    }
    return Object.prototype.hasOwnProperty.call(ENGLISH, name) ? ENGLISH[name] : name;
  }

  function socketUrl() {
    var given = root.getAttribute("data-ws-url") || "/ws/consultations/" + consultationId + "/";
    if (/^wss?:\/\//.test(given)) {
      return given;
    }
    return (window.location.protocol === "https:" ? "wss://" : "ws://") + window.location.host + given;
  }

  // --- elements -----------------------------------------------------------------------------
  var stateBox = document.getElementById("connection-state");
  var list = document.getElementById("messages");
  var form = document.getElementById("chat-form");
  var bodyField = form ? form.querySelector("textarea[name=body]") : null;
  var fileInput = document.getElementById("chat-file");
  var callStartButton = document.getElementById("call-start");
  var callEndButton = document.getElementById("call-end");
  var callStateBox = document.getElementById("call-state");
  var localVideo = document.getElementById("local-video");
  var remoteVideo = document.getElementById("remote-video");
  var errorBox = document.getElementById("chat-error");
  if (!errorBox && form) {
    errorBox = document.createElement("p");
    errorBox.id = "chat-error";
    errorBox.className = "chat-error";
    errorBox.setAttribute("role", "alert");
    errorBox.hidden = true;
    form.parentNode.insertBefore(errorBox, form.nextSibling);
  }

  function showError(message) {
    if (!errorBox) {
      return;
    }
    errorBox.textContent = message || "";
    errorBox.hidden = !message;
  }

  function setConnectionState(state) {
    root.setAttribute("data-connection", state);
    if (stateBox) {
      stateBox.setAttribute("data-state", state);
      stateBox.textContent = text(state);
    }
  }

  // --- chat state ---------------------------------------------------------------------------
  var maxSeq = 0; // the highest seq rendered, in order
  var waiting = {}; // seq -> payload that arrived ahead of a missing one
  var readSent = 0;
  var othersRead = 0; // the highest seq someone else has read
  var outboxKey = "nh-outbox-" + consultationId;
  var outbox = loadOutbox();

  // The page renders the history it had; the socket brings what came after.
  maxSeq = parseInt(root.getAttribute("data-last-seq") || "0", 10) || 0;
  Array.prototype.forEach.call(list ? list.querySelectorAll("li.msg[data-seq]") : [], function (item) {
    var seq = parseInt(item.getAttribute("data-seq"), 10);
    if (seq > maxSeq) {
      maxSeq = seq;
    }
  });

  // A draft survives the reload that shows a new state of the consultation (see onStatus).
  var draftKey = "nh-draft-" + consultationId;
  if (bodyField) {
    try {
      var draft = window.sessionStorage.getItem(draftKey);
      if (draft && !bodyField.value) {
        bodyField.value = draft;
      }
      window.sessionStorage.removeItem(draftKey);
    } catch (err) {
      /* no storage: no draft */
    }
  }

  function loadOutbox() {
    try {
      var stored = JSON.parse(window.sessionStorage.getItem(outboxKey) || "[]");
      return Array.isArray(stored) ? stored : [];
    } catch (err) {
      return [];
    }
  }

  function saveOutbox() {
    try {
      window.sessionStorage.setItem(outboxKey, JSON.stringify(outbox));
    } catch (err) {
      /* private mode: the outbox lives in memory only */
    }
  }

  function newClientId() {
    if (window.crypto && window.crypto.randomUUID) {
      return window.crypto.randomUUID();
    }
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function pendingItem(clientId) {
    if (!list) {
      return null;
    }
    var items = list.querySelectorAll("li.msg-outbox");
    for (var i = 0; i < items.length; i++) {
      if (items[i].getAttribute("data-client-id") === clientId) {
        return items[i];
      }
    }
    return null;
  }

  function pendingLine(clientId, bodyText) {
    var item = document.createElement("li");
    item.className = "msg-outbox";
    item.setAttribute("data-client-id", clientId);
    item.style.cssText =
      "align-self:flex-end;max-width:90%;border:1px dashed var(--line,#ccc);border-radius:var(--radius,6px);" +
      "padding:.45rem .7rem;opacity:.75;overflow-wrap:anywhere";
    var note = document.createElement("span");
    note.className = "who note";
    note.style.cssText = "display:block;font-size:.8rem";
    note.textContent = text("sending");
    var body = document.createElement("p");
    body.className = "body";
    body.style.cssText = "white-space:pre-wrap;margin:.1rem 0 0";
    body.textContent = bodyText;
    item.appendChild(note);
    item.appendChild(body);
    return item;
  }

  function renderPending(entry) {
    if (!list || pendingItem(entry.client_id)) {
      return;
    }
    list.appendChild(pendingLine(entry.client_id, entry.body));
    list.scrollTop = list.scrollHeight;
  }

  function pad(n) {
    return ("0" + n).slice(-2);
  }

  function timeOf(iso) {
    var when = new Date(iso);
    if (isNaN(when.getTime())) {
      return "";
    }
    return pad(when.getMonth() + 1) + "-" + pad(when.getDate()) + " " + pad(when.getHours()) + ":" + pad(when.getMinutes());
  }

  function formatSize(bytes) {
    if (bytes >= 1048576) {
      return (bytes / 1048576).toFixed(1) + " MB";
    }
    return Math.max(1, Math.round(bytes / 1024)) + " KB";
  }

  // The same markup as the page's own history (templates/consultations/room.html).
  function renderMessage(message) {
    if (!list) {
      return;
    }
    var system = message.kind === "system";
    var mine = !system && message.sender_id === userId;
    var role = system ? "system" : message.sender_role || "patient";
    var item = document.createElement("li");
    item.className = "msg " + role + (mine ? " mine" : "") + (system ? " system" : "");
    item.setAttribute("data-seq", String(message.seq));
    item.setAttribute("data-client-id", message.client_id || "");
    item.setAttribute("data-role", role);
    item.setAttribute("data-kind", message.kind || "text");

    var who = document.createElement("span");
    who.className = "who";
    who.appendChild(document.createTextNode((mine ? text("you") : text(role.replace(/_/g, "-"))) + " · "));
    var time = document.createElement("time");
    time.setAttribute("datetime", message.sent_at || "");
    time.textContent = timeOf(message.sent_at);
    who.appendChild(time);
    if (mine) {
      var receipt = document.createElement("span");
      receipt.className = "receipt";
      who.appendChild(receipt);
    }
    item.appendChild(who);

    var attachment = message.attachment;
    if (attachment && typeof attachment.url === "string" && attachment.url.charAt(0) === "/") {
      var link = document.createElement("a");
      link.className = "attachment";
      link.href = attachment.url;
      link.textContent = "📎 " + (attachment.name || text("attachment"));
      item.appendChild(link);
      var size = document.createElement("span");
      size.className = "meta";
      size.textContent = " " + formatSize(attachment.size || 0);
      item.appendChild(size);
    }
    if (message.body) {
      var body = document.createElement("p");
      body.className = "body";
      body.textContent = message.body;
      item.appendChild(body);
    }
    if (mine && message.seq <= othersRead) {
      markRead(item);
    }

    // The sent copy replaces its pending line; messages stay above the outbox.
    var pending = message.client_id && mine ? pendingItem(message.client_id) : null;
    if (pending) {
      list.replaceChild(item, pending);
    } else {
      list.insertBefore(item, list.querySelector("li.msg-outbox"));
    }
    list.scrollTop = list.scrollHeight;
  }

  function markRead(item) {
    item.classList.add("read");
    var receipt = item.querySelector(".receipt");
    if (receipt) {
      receipt.textContent = " · " + text("read");
    }
  }

  function accept(message) {
    var seq = message.seq;
    if (typeof seq !== "number" || seq <= maxSeq) {
      return; // seen already
    }
    waiting[seq] = message;
    var fromOthers = false;
    while (waiting[maxSeq + 1]) {
      var next = waiting[maxSeq + 1];
      delete waiting[maxSeq + 1];
      renderMessage(next);
      maxSeq = next.seq;
      if (next.sender_id !== userId) {
        fromOthers = true;
      }
      forgetSent(next);
    }
    if (Object.keys(waiting).length) {
      scheduleResync();
    }
    if (fromOthers) {
      scheduleReadReceipt();
    }
  }

  function forgetSent(message) {
    if (message.sender_id !== userId || !message.client_id) {
      return;
    }
    var before = outbox.length;
    outbox = outbox.filter(function (entry) { return entry.client_id !== message.client_id; });
    if (outbox.length !== before) {
      saveOutbox();
    }
  }

  // The server sends every message in order; a gap can only follow a lost frame. Ask again.
  var resyncTimer = null;
  function scheduleResync() {
    if (resyncTimer) {
      return;
    }
    resyncTimer = window.setTimeout(function () {
      resyncTimer = null;
      if (Object.keys(waiting).length && ready) {
        send({ type: "hello", after: maxSeq });
      }
    }, 1500);
  }

  var readTimer = null;
  function scheduleReadReceipt() {
    if (readTimer) {
      return;
    }
    readTimer = window.setTimeout(function () {
      readTimer = null;
      sendReadReceipt();
    }, 300);
  }

  function sendReadReceipt() {
    if (document.visibilityState === "hidden" || !ready || maxSeq <= readSent) {
      return;
    }
    readSent = maxSeq;
    send({ type: "read", seq: maxSeq });
  }

  document.addEventListener("visibilitychange", sendReadReceipt);

  function onReceipt(frame) {
    if (frame.user_id === userId || typeof frame.seq !== "number" || frame.seq <= othersRead) {
      return;
    }
    othersRead = frame.seq;
    if (!list) {
      return;
    }
    Array.prototype.forEach.call(list.querySelectorAll("li.msg.mine"), function (item) {
      if (parseInt(item.getAttribute("data-seq"), 10) <= othersRead) {
        markRead(item);
      }
    });
  }

  // --- sending ------------------------------------------------------------------------------
  var RETRYABLE = { server_error: true, rate_limited: true };

  function sendOutboxEntry(entry) {
    send({ type: "message", client_id: entry.client_id, body: entry.body });
  }

  function flushOutbox() {
    outbox.forEach(function (entry) {
      renderPending(entry);
      if (ready) {
        sendOutboxEntry(entry);
      }
    });
  }

  if (form && bodyField) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var body = bodyField.value.trim();
      if (!body) {
        return;
      }
      var entry = { client_id: newClientId(), body: body };
      outbox.push(entry);
      saveOutbox();
      renderPending(entry);
      bodyField.value = "";
      showError("");
      if (ready) {
        sendOutboxEntry(entry);
      }
    });
    bodyField.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit", { cancelable: true }));
      }
    });
  }

  function onAck(frame) {
    var item = pendingItem(frame.client_id);
    if (item) {
      var note = item.querySelector(".note");
      if (note) {
        note.textContent = text("sent");
      }
    }
    // The message itself (with its seq) follows or came before: forgetSent clears the outbox then.
    // If it was rendered already (e.g. in the history), the outbox entry goes now.
    if (frame.seq <= maxSeq) {
      outbox = outbox.filter(function (entry) { return entry.client_id !== frame.client_id; });
      saveOutbox();
      if (item) {
        item.parentNode.removeChild(item);
      }
    }
  }

  function onError(frame) {
    if (call.starting && !frame.client_id) {
      // A refused call.start (e.g. the consultation is not active) must not leave the button stuck.
      call.starting = false;
      updateButtons();
    }
    if (frame.client_id) {
      var entry = null;
      outbox.forEach(function (candidate) {
        if (candidate.client_id === frame.client_id) {
          entry = candidate;
        }
      });
      if (entry && RETRYABLE[frame.code]) {
        window.setTimeout(function () {
          if (ready && outbox.indexOf(entry) >= 0) {
            sendOutboxEntry(entry);
          }
        }, frame.code === "rate_limited" ? 2000 : 3000);
        return;
      }
      if (entry) {
        outbox = outbox.filter(function (candidate) { return candidate !== entry; });
        saveOutbox();
        var item = pendingItem(frame.client_id);
        if (item) {
          item.classList.add("failed");
          var note = item.querySelector(".note");
          if (note) {
            note.textContent = text("failed") + ": " + (frame.message || "");
          }
        }
      }
    }
    showError(frame.message || "");
  }

  // --- file upload (the stored message arrives through the socket) -------------------------
  function csrfToken() {
    var headers = document.body.getAttribute("hx-headers");
    if (headers) {
      try {
        var parsed = JSON.parse(headers);
        if (parsed["X-CSRFToken"]) {
          return parsed["X-CSRFToken"];
        }
      } catch (err) {
        /* fall back to the cookie */
      }
    }
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  var maxBytes = parseInt(root.getAttribute("data-max-bytes") || "0", 10) || 0;

  if (fileInput && uploadUrl) {
    fileInput.addEventListener("change", function () {
      var file = fileInput.files && fileInput.files[0];
      if (!file) {
        return;
      }
      showError("");
      if (maxBytes && file.size > maxBytes) {
        showError(text("file-too-large"));
        fileInput.value = "";
        return;
      }
      var clientId = newClientId();
      var line = pendingLine(clientId, "📎 " + file.name);
      line.querySelector(".note").textContent = text("uploading");
      if (list) {
        list.appendChild(line);
      }
      var data = new FormData();
      data.append("file", file);
      data.append("client_id", clientId);
      window
        .fetch(uploadUrl, {
          method: "POST",
          body: data,
          credentials: "same-origin",
          headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" }
        })
        .then(function (response) {
          return response.json().then(
            function (answer) { return { ok: response.ok, answer: answer }; },
            function () { return { ok: false, answer: null }; }
          );
        })
        .then(function (result) {
          if (result.ok && result.answer && result.answer.message) {
            accept(result.answer.message); // the socket brings it too; each seq is shown once
            if (line.parentNode) {
              line.parentNode.removeChild(line);
            }
            return;
          }
          var message = result.answer && result.answer.error && result.answer.error.message;
          throw new Error(message || text("upload-failed"));
        })
        .catch(function (failure) {
          line.classList.add("failed");
          line.querySelector(".note").textContent = text("failed");
          showError((failure && failure.message) || text("upload-failed"));
        })
        .then(function () {
          fileInput.value = "";
        });
    });
  }

  // --- the socket, with reconnection ------------------------------------------------------
  var socket = null;
  var ready = false; // open, and hello sent
  var attempts = 0;
  var reconnectTimer = null;
  var refused = false;

  function send(frame) {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  function connect() {
    if (refused || (socket && socket.readyState <= WebSocket.OPEN)) {
      return;
    }
    window.clearTimeout(reconnectTimer);
    reconnectTimer = null;
    setConnectionState(attempts ? "reconnecting" : "connecting");
    var current = new WebSocket(socketUrl());
    socket = current;
    current.onopen = function () {
      if (socket !== current) {
        return;
      }
      ready = true;
      send({ type: "hello", after: maxSeq });
      flushOutbox();
    };
    current.onmessage = function (event) {
      if (socket !== current) {
        return;
      }
      var frame;
      try {
        frame = JSON.parse(event.data);
      } catch (err) {
        return;
      }
      handle(frame);
    };
    current.onclose = function (event) {
      if (socket !== current) {
        return;
      }
      ready = false;
      socket = null;
      if (event.code === 4401 || event.code === 4403) {
        refused = true;
        setConnectionState("refused");
        return;
      }
      setConnectionState(navigator.onLine === false ? "offline" : "reconnecting");
      scheduleReconnect();
    };
  }

  function scheduleReconnect() {
    if (reconnectTimer || refused) {
      return;
    }
    var delay = Math.min(15000, 500 * Math.pow(2, attempts)) * (0.75 + Math.random() * 0.5);
    attempts += 1;
    reconnectTimer = window.setTimeout(function () {
      reconnectTimer = null;
      connect();
    }, delay);
  }

  // The browser knows before TCP does: drop the socket when offline, reconnect at once when back.
  window.addEventListener("offline", function () {
    if (socket) {
      socket.close(4000, "offline");
    }
    setConnectionState("offline");
  });
  window.addEventListener("online", function () {
    attempts = 0;
    connect();
  });

  function handle(frame) {
    switch (frame.type) {
      case "history":
        (frame.messages || []).forEach(accept);
        if (frame.call) {
          onCall(frame.call);
        }
        if (frame.status) {
          var shown = root.getAttribute("data-status");
          root.setAttribute("data-status", frame.status);
          updateButtons();
          if (shown && shown !== frame.status) {
            reloadPage(); // it changed while the line was down
          }
        }
        if (!frame.more) {
          attempts = 0;
          setConnectionState("connected");
          scheduleReadReceipt();
        }
        break;
      case "message":
        accept(frame);
        break;
      case "ack":
        onAck(frame);
        break;
      case "read":
        onReceipt(frame);
        break;
      case "status":
        onStatus(frame);
        break;
      case "call":
        onCall(frame);
        break;
      case "signal":
        onSignal(frame);
        break;
      case "error":
        onError(frame);
        break;
      default:
        break;
    }
  }

  // The page shows what only the server renders (the visit record, the doctor's forms, who may
  // write), so a change of the consultation reloads it; not in the middle of a call, and not while
  // one of the page's forms is being sent (that navigation shows the new state anyway).
  var navigating = false;
  var reloadWhenFree = false;
  document.addEventListener("submit", function (event) {
    if (event.target !== form && !event.defaultPrevented) {
      navigating = true;
      window.setTimeout(function () { navigating = false; }, 10000);
    }
  });

  function reloadPage() {
    if (navigating) {
      return;
    }
    if (call.inCall) {
      reloadWhenFree = true;
      return;
    }
    if (bodyField && bodyField.value) {
      try {
        window.sessionStorage.setItem(draftKey, bodyField.value);
      } catch (err) {
        /* the draft is lost */
      }
    }
    window.location.reload();
  }

  function onStatus(frame) {
    root.setAttribute("data-status", frame.status || "");
    document.body.dispatchEvent(new CustomEvent("consultation-status", { detail: frame }));
    if (frame.status !== "active" && call.inCall) {
      hangUp(true);
      setCallState("ended");
    }
    updateButtons();
    reloadPage();
  }

  // --- video ----------------------------------------------------------------------------------
  var call = {
    id: null, // the call of this consultation that is ringing or connected
    state: "idle",
    inCall: false,
    starting: false,
    reported: {},
    localStream: null,
    peers: {} // user id -> {pc, pendingIce, makingOffer, video}
  };
  window.nhCall = { pc: null, state: "new", peers: call.peers, callId: null };

  function setCallState(state) {
    call.state = state;
    if (callStateBox) {
      callStateBox.setAttribute("data-state", state);
      callStateBox.textContent = text("call-" + state);
    }
    updateButtons();
  }

  function updateButtons() {
    var video = channelKind === "video" && root.getAttribute("data-status") === "active";
    if (callStartButton) {
      callStartButton.disabled = !video || call.inCall || call.starting;
      callStartButton.textContent = call.id && !call.inCall ? text("join-call") : text("start-call");
    }
    if (callEndButton) {
      callEndButton.disabled = !video || !call.inCall;
    }
  }

  function primaryPeer() {
    var ids = Object.keys(call.peers);
    return ids.length ? call.peers[ids[0]] : null;
  }

  function exposeState() {
    var peer = primaryPeer();
    var state = peer ? peer.pc.connectionState : "new";
    window.nhCall.pc = peer ? peer.pc : null;
    window.nhCall.state = state;
    window.nhCall.callId = call.id;
    root.setAttribute("data-call-state", state);
  }

  function report(state) {
    if (!call.id || call.reported[state]) {
      return;
    }
    call.reported[state] = true;
    send({ type: "call.update", call_id: call.id, state: state });
  }

  function signal(data, to) {
    var frame = { type: "signal", call_id: call.id, data: data };
    if (to !== undefined && to !== null) {
      frame.to = to;
    }
    send(frame);
  }

  function onCall(frame) {
    if (frame.state === "ringing" || frame.state === "connected") {
      if (call.id && call.id !== frame.call_id && call.inCall) {
        hangUp(false);
      }
      call.id = frame.call_id;
      if (call.starting) {
        call.starting = false;
        join();
        return;
      }
      if (!call.inCall) {
        setCallState("ringing");
      } else if (frame.state === "connected" && call.state !== "connected") {
        exposeState();
      }
      updateButtons();
      return;
    }
    if (frame.call_id === call.id && (frame.state === "ended" || frame.state === "failed")) {
      var wasIn = call.inCall;
      hangUp(false);
      call.id = null;
      setCallState(wasIn || frame.state === "ended" ? frame.state : "idle");
    }
  }

  function join() {
    if (!call.id || call.inCall) {
      return;
    }
    call.inCall = true;
    call.reported = {};
    setCallState("joining");
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      mediaFailed();
      return;
    }
    navigator.mediaDevices
      .getUserMedia({ audio: true, video: true })
      .then(function (stream) {
        if (!call.inCall) {
          stream.getTracks().forEach(function (track) { track.stop(); });
          return;
        }
        call.localStream = stream;
        if (localVideo) {
          localVideo.srcObject = stream;
        }
        report("joined");
        setCallState("connecting");
        signal({ kind: "join" }); // whoever is in the call offers to us
      })
      .catch(mediaFailed);
  }

  function mediaFailed() {
    showError(text("call-no-media"));
    report("failed");
    hangUp(false);
    setCallState("failed");
  }

  function hangUp(reportEnd) {
    if (reportEnd && call.inCall) {
      report("ended");
      signal({ kind: "leave" });
    }
    Object.keys(call.peers).forEach(closePeer);
    if (call.localStream) {
      call.localStream.getTracks().forEach(function (track) { track.stop(); });
      call.localStream = null;
    }
    if (localVideo) {
      localVideo.srcObject = null;
    }
    call.inCall = false;
    call.starting = false;
    exposeState();
    updateButtons();
    if (reloadWhenFree) {
      reloadWhenFree = false;
      window.setTimeout(reloadPage, 0);
    }
  }

  function closePeer(id) {
    var peer = call.peers[id];
    if (!peer) {
      return;
    }
    delete call.peers[id];
    try {
      peer.pc.close();
    } catch (err) {
      /* already closed */
    }
    if (peer.video) {
      if (peer.video === remoteVideo) {
        remoteVideo.srcObject = null;
      } else if (peer.video.parentNode) {
        peer.video.parentNode.removeChild(peer.video);
      }
    }
    exposeState();
  }

  function videoFor(peer) {
    if (peer.video) {
      return peer.video;
    }
    var used = false;
    Object.keys(call.peers).forEach(function (id) {
      if (call.peers[id].video === remoteVideo) {
        used = true;
      }
    });
    if (remoteVideo && !used) {
      peer.video = remoteVideo;
    } else {
      var extra = document.createElement("video");
      extra.className = "remote-video-extra";
      extra.autoplay = true;
      extra.playsInline = true;
      if (remoteVideo && remoteVideo.parentNode) {
        remoteVideo.parentNode.insertBefore(extra, remoteVideo.nextSibling);
      } else {
        root.appendChild(extra);
      }
      peer.video = extra;
    }
    return peer.video;
  }

  function peerFor(remoteId) {
    var existing = call.peers[remoteId];
    if (existing) {
      return existing;
    }
    var pc = new RTCPeerConnection({ iceServers: iceServers });
    var peer = { pc: pc, pendingIce: [], makingOffer: false, video: null, id: remoteId };
    call.peers[remoteId] = peer;
    if (call.localStream) {
      call.localStream.getTracks().forEach(function (track) { pc.addTrack(track, call.localStream); });
    }
    pc.onicecandidate = function (event) {
      if (event.candidate) {
        signal({ kind: "ice", candidate: event.candidate.toJSON() }, remoteId);
      }
    };
    pc.ontrack = function (event) {
      var video = videoFor(peer);
      if (event.streams && event.streams[0]) {
        video.srcObject = event.streams[0];
      }
    };
    pc.onconnectionstatechange = function () {
      if (call.peers[remoteId] !== peer) {
        return;
      }
      exposeState();
      if (primaryPeer() !== peer) {
        return;
      }
      if (pc.connectionState === "connected") {
        setCallState("connected");
        report("connected");
      } else if (pc.connectionState === "failed") {
        setCallState("failed");
        report("failed");
      }
    };
    exposeState();
    return peer;
  }

  function offerTo(remoteId) {
    var peer = peerFor(remoteId);
    peer.makingOffer = true;
    peer.pc
      .createOffer()
      .then(function (offer) { return peer.pc.setLocalDescription(offer); })
      .then(function () {
        signal({ kind: "offer", sdp: peer.pc.localDescription.sdp }, remoteId);
      })
      .catch(function () { report("failed"); })
      .then(function () { peer.makingOffer = false; });
  }

  function flushIce(peer) {
    var queued = peer.pendingIce;
    peer.pendingIce = [];
    queued.forEach(function (candidate) {
      peer.pc.addIceCandidate(candidate).catch(function () { /* a stale candidate */ });
    });
  }

  function onSignal(frame) {
    var data = frame.data || {};
    var from = frame.from;
    if (!call.inCall || !call.localStream || frame.call_id !== call.id || typeof from !== "number" || from === userId) {
      return;
    }
    var peer;
    if (data.kind === "join") {
      // Of any two participants the one with the smaller user id makes the offer, so two offers never
      // cross. The other tells it "I am ready" (it may have joined before this one had its camera).
      if (call.peers[from]) {
        return;
      }
      if (userId < from) {
        offerTo(from);
      } else {
        signal({ kind: "join" }, from);
      }
    } else if (data.kind === "offer") {
      peer = peerFor(from);
      var colliding = peer.makingOffer || peer.pc.signalingState !== "stable";
      if (colliding && userId > from) {
        return; // both offered at once: the higher id keeps its own offer, the other side yields
      }
      peer.pc
        .setRemoteDescription({ type: "offer", sdp: data.sdp })
        .then(function () {
          flushIce(peer);
          return peer.pc.createAnswer();
        })
        .then(function (answer) { return peer.pc.setLocalDescription(answer); })
        .then(function () {
          signal({ kind: "answer", sdp: peer.pc.localDescription.sdp }, from);
        })
        .catch(function () { report("failed"); });
    } else if (data.kind === "answer") {
      peer = call.peers[from];
      if (peer && peer.pc.signalingState === "have-local-offer") {
        peer.pc
          .setRemoteDescription({ type: "answer", sdp: data.sdp })
          .then(function () { flushIce(peer); })
          .catch(function () { report("failed"); });
      }
    } else if (data.kind === "ice" && data.candidate) {
      peer = call.peers[from];
      if (!peer) {
        return;
      }
      if (peer.pc.remoteDescription) {
        peer.pc.addIceCandidate(data.candidate).catch(function () { /* a stale candidate */ });
      } else {
        peer.pendingIce.push(data.candidate);
      }
    } else if (data.kind === "leave") {
      closePeer(from);
    }
  }

  if (callStartButton) {
    callStartButton.addEventListener("click", function () {
      if (call.inCall || channelKind !== "video") {
        return;
      }
      showError("");
      if (call.id) {
        join();
      } else {
        call.starting = true;
        updateButtons();
        if (!send({ type: "call.start" })) {
          call.starting = false;
          updateButtons();
        }
      }
    });
  }
  if (callEndButton) {
    callEndButton.addEventListener("click", function () {
      hangUp(true);
      setCallState("ended");
    });
  }
  window.addEventListener("pagehide", function () {
    if (call.inCall) {
      hangUp(true);
    }
  });

  // For tests and for support staff: the chat's own view of itself.
  window.nhChat = {
    maxSeq: function () { return maxSeq; },
    outbox: function () { return outbox.slice(); },
    drop: function () {
      if (socket) {
        socket.close(4000, "dropped");
      }
    }
  };

  setCallState("idle");
  exposeState();
  connect();
})();
