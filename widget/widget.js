/*
 * Omnigate chat widget. One tag embeds it:
 *
 *   <script src="https://GATEWAY/widget.js" data-site="SITE_ID" async></script>
 *
 * Optional attributes: data-user-id, data-user-expires (Unix seconds) and
 * data-user-hash (hex HMAC-SHA256 of "user_id|expires" with the site's
 * secret, computed by the site's back end; without data-user-expires, the
 * deprecated unexpiring HMAC of the user id alone), data-lang ("zh" or
 * "en"; default from the browser). The credentials go in the hello frame,
 * never in the socket URL, which proxies and access logs keep.
 *
 * Plain ES2017, no dependencies, no build step. The UI lives in an open
 * shadow root on <div id="omnigate-widget"> so the host page's CSS cannot
 * reach it (and tests can: element.shadowRoot). The protocol is documented
 * in docs/webchat-protocol.md. All text is inserted with textContent.
 *
 * window.Omnigate: open(), close(), reset() (forget this browser's visitor,
 * e.g. when the site's user logs out).
 */
(function () {
  "use strict";
  if (window.Omnigate && window.Omnigate.loaded) return;

  // --- configuration from the script tag -------------------------------
  var script = document.currentScript;
  if (!script || !script.getAttribute("data-site")) {
    var all = document.querySelectorAll("script[data-site][src]");
    for (var i = 0; i < all.length; i++) {
      if (/\/widget\.js(\?|#|$)/.test(all[i].src)) script = all[i];
    }
  }
  if (!script) return;
  var SITE = script.getAttribute("data-site") || "";
  var USER_ID = script.getAttribute("data-user-id") || "";
  var USER_HASH = script.getAttribute("data-user-hash") || "";
  var USER_EXPIRES = parseInt(script.getAttribute("data-user-expires") || "0", 10) || 0;
  var BASE = new URL(".", script.src); // the gateway, wherever it mounted us
  var WS_URL = (BASE.protocol === "https:" ? "wss:" : "ws:") + "//" + BASE.host + BASE.pathname +
    "channels/webchat/ws?site=" + encodeURIComponent(SITE);

  // Close codes (channels/webchat/closecodes.go): 4500-4999 and 1009 are
  // final, everything else is worth a reconnect.
  var CLOSE_IDENTITY_REFUSED = 4501;
  var CLOSE_TOO_BIG = 1009;
  function reconnectable(code) {
    return code !== CLOSE_TOO_BIG && !(code >= 4500 && code <= 4999);
  }

  // --- text ---------------------------------------------------------------
  var TEXT = {
    en: {
      title: "Chat with us", open: "Open chat", close: "Close chat", unread: "{n} unread",
      placeholder: "Type your message…", send: "Send", sending: "Sending…", sent: "Sent",
      failed: "Not sent", retry: "Retry", agent: "Agent", typing: "{name} is typing…",
      connecting: "Connecting…", reconnecting: "Connection lost. Reconnecting…",
      closed: "Chat is unavailable. Please reload the page.",
      identity: "We couldn't verify your account. Please reload the page.",
      offline_intro: "No one is available right now. Leave a message and we'll get back to you.",
      name: "Name", contact: "Email or phone", contact_hint: "Phone with country code, e.g. +1 415 555 2671",
      message: "Message", submit: "Leave message", thanks: "Thanks! We'll get back to you soon.",
      too_long: "This message is too long.", bad_contact: "Enter an email, or a phone number starting with +.",
      resolved: "This conversation was closed. Send a message to start a new one.",
      joined: "{name} joined the chat", greeting: "Hi! How can we help?",
      with: "You're chatting with {name}", loading: "Loading…", messages: "Messages", you: "You"
    },
    zh: {
      title: "在线客服", open: "打开聊天", close: "关闭聊天", unread: "{n} 条未读",
      placeholder: "输入消息…", send: "发送", sending: "发送中…", sent: "已发送",
      failed: "未发送", retry: "重试", agent: "客服", typing: "{name} 正在输入…",
      connecting: "正在连接…", reconnecting: "连接已断开，正在重连…",
      closed: "聊天暂不可用，请刷新页面。",
      identity: "无法验证您的账号，请刷新页面。",
      offline_intro: "当前没有客服在线。请留言，我们会尽快联系您。",
      name: "姓名", contact: "邮箱或手机号", contact_hint: "手机号请带国家区号，例如 +86 138 1234 5678",
      message: "留言", submit: "提交留言", thanks: "谢谢！我们会尽快联系您。",
      too_long: "消息太长了。", bad_contact: "请填写邮箱，或以 + 开头的手机号。",
      resolved: "本次会话已结束。发送消息即可开始新的会话。",
      joined: "{name} 已加入会话", greeting: "您好！有什么可以帮您？",
      with: "正在为您服务：{name}", loading: "加载中…", messages: "消息", you: "我"
    }
  };
  var LANG = (script.getAttribute("data-lang") || navigator.language || "en").toLowerCase().indexOf("zh") === 0 ? "zh" : "en";
  function t(key, vars) {
    var s = TEXT[LANG][key] || TEXT.en[key] || key;
    if (vars) for (var k in vars) s = s.replace("{" + k + "}", vars[k]);
    return s;
  }

  // --- storage (may be unavailable: private modes, blocked cookies) -----
  var mem = {};
  function key(k) { return "omnigate:" + SITE + ":" + k; }
  function load(k) {
    try { return window.localStorage.getItem(key(k)); } catch (e) { return mem[k] || null; }
  }
  function save(k, v) {
    try {
      if (v === null) window.localStorage.removeItem(key(k)); else window.localStorage.setItem(key(k), v);
    } catch (e) { if (v === null) delete mem[k]; else mem[k] = v; }
  }
  function randomID(bytes) {
    var b = new Uint8Array(bytes);
    crypto.getRandomValues(b);
    var s = btoa(String.fromCharCode.apply(null, b));
    return s.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function visitorID() {
    var v = load("visitor");
    if (!v || !/^[A-Za-z0-9_-]{16,64}$/.test(v)) {
      v = randomID(18); // 24 characters: the visitor's only credential
      save("visitor", v);
    }
    return v;
  }

  // --- state ----------------------------------------------------------------
  var S = {
    ws: null, ready: false, stopped: false, attempt: 0, timer: null, renewed: false,
    customerID: load("customer"), lastSeq: 0, maxBytes: 8192, agents: true,
    formDone: false, open: false, unread: 0, repName: "",
    // pending: frames not yet acknowledged, in order; kept across reloads
    // and resent with the same client id (the server acknowledges a resend
    // instead of storing it twice).
    pending: [], sendQueue: [], sendTimer: null,
    byClient: {}, typingSent: 0, typingOff: null, repTypingTimer: null,
    // lastRead: the last sequence shown with the panel open; rep replies
    // after it count as unread.
    lastRead: +(load("read") || 0)
  };
  try { S.pending = JSON.parse(load("pending") || "[]") || []; } catch (e) { S.pending = []; }
  function savePending() { save("pending", S.pending.length ? JSON.stringify(S.pending) : null); }

  // --- DOM ------------------------------------------------------------------
  var host = document.createElement("div");
  host.id = "omnigate-widget";
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
  function el(tag, cls, attrs, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (attrs) for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text != null) e.textContent = text;
    return e;
  }
  var css = el("link", null, { rel: "stylesheet", href: new URL("widget.css", BASE).href });
  var wrap = el("div", "og", { lang: LANG === "zh" ? "zh-CN" : "en" });
  var launcher = el("button", "og-launcher", { type: "button", "aria-expanded": "false", "aria-controls": "og-panel", "aria-label": t("open") });
  launcher.innerHTML = '<svg aria-hidden="true" viewBox="0 0 24 24" width="28" height="28"><path fill="currentColor" d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z"/></svg>';
  var badge = el("span", "og-badge", { hidden: "" });
  launcher.appendChild(badge);

  var panel = el("section", "og-panel", { id: "og-panel", role: "dialog", "aria-modal": "false", "aria-labelledby": "og-title", hidden: "" });
  var header = el("header", "og-header");
  var titles = el("div", "og-titles");
  var title = el("h2", "og-title", { id: "og-title" }, t("title"));
  var subtitle = el("p", "og-subtitle", null, "");
  titles.appendChild(title);
  titles.appendChild(subtitle);
  var closeBtn = el("button", "og-close", { type: "button", "aria-label": t("close") }, "×");
  header.appendChild(titles);
  header.appendChild(closeBtn);

  var status = el("div", "og-status", { role: "status", "aria-live": "polite" });
  var list = el("ol", "og-list", { role: "log", "aria-live": "polite", "aria-label": t("messages"), tabindex: "0" });
  var greeting = el("li", "og-system", null, t("greeting"));
  list.appendChild(greeting);
  var typing = el("div", "og-typing", { "aria-live": "polite", hidden: "" });

  var composer = el("form", "og-composer", { novalidate: "" });
  var input = el("textarea", "og-input", { rows: "1", "aria-label": t("placeholder"), placeholder: t("placeholder"), maxlength: "4000" });
  var sendBtn = el("button", "og-send", { type: "submit" }, t("send"));
  var inputError = el("p", "og-error", { role: "alert", hidden: "" });
  composer.appendChild(input);
  composer.appendChild(sendBtn);

  var form = el("form", "og-offline", { novalidate: "", hidden: "" });
  form.appendChild(el("p", "og-offline-intro", null, t("offline_intro")));
  function field(id, label, control, hint) {
    var f = el("div", "og-field");
    f.appendChild(el("label", null, { "for": id }, label));
    control.id = id;
    f.appendChild(control);
    if (hint) {
      var h = el("p", "og-hint", { id: id + "-hint" }, hint);
      control.setAttribute("aria-describedby", id + "-hint");
      f.appendChild(h);
    }
    return f;
  }
  var fName = el("input", null, { type: "text", autocomplete: "name", maxlength: "100" });
  var fContact = el("input", null, { type: "text", autocomplete: "email", inputmode: "email", maxlength: "254", required: "" });
  var fMessage = el("textarea", null, { rows: "3", maxlength: "4000", required: "" });
  form.appendChild(field("og-f-name", t("name"), fName));
  form.appendChild(field("og-f-contact", t("contact"), fContact, t("contact_hint")));
  form.appendChild(field("og-f-message", t("message"), fMessage));
  var formError = el("p", "og-error", { role: "alert", hidden: "" });
  form.appendChild(formError);
  form.appendChild(el("button", "og-send", { type: "submit" }, t("submit")));

  panel.appendChild(header);
  panel.appendChild(status);
  panel.appendChild(list);
  panel.appendChild(typing);
  panel.appendChild(form);
  panel.appendChild(inputError);
  panel.appendChild(composer);
  wrap.appendChild(panel);
  wrap.appendChild(launcher);
  root.appendChild(css);
  root.appendChild(wrap);

  // --- rendering ------------------------------------------------------------
  function timeText(iso) {
    var d = iso ? new Date(iso) : new Date();
    try { return d.toLocaleTimeString(LANG === "zh" ? "zh-CN" : undefined, { hour: "2-digit", minute: "2-digit" }); } catch (e) { return ""; }
  }
  function atBottom() { return list.scrollHeight - list.scrollTop - list.clientHeight < 40; }
  // append adds a line to the log. What the server sends goes above the
  // visitor's messages still waiting for an ack, which stay at the bottom.
  function append(node, fromServer) {
    var stick = atBottom();
    var unsent = fromServer && list.querySelector(".og-msg[data-state=sending], .og-msg[data-state=failed]");
    list.insertBefore(node, unsent || null);
    if (stick || node.classList.contains("og-msg--visitor")) list.scrollTop = list.scrollHeight;
    greeting.hidden = true;
  }
  function renderMessage(from, text, when, repName, fromServer) {
    var li = el("li", "og-msg og-msg--" + from);
    if (from === "rep") li.appendChild(el("div", "og-author", null, repName || t("agent")));
    else if (from === "visitor") li.appendChild(el("span", "og-sr", null, t("you") + ": "));
    li.appendChild(el("div", "og-bubble", null, text));
    var meta = el("div", "og-meta");
    meta.appendChild(el("time", "og-time", null, timeText(when)));
    li.appendChild(meta);
    append(li, fromServer);
    return li;
  }
  function setState(li, state) {
    if (!li) return;
    var meta = li.querySelector(".og-meta");
    var old = meta.querySelector(".og-state");
    if (old) meta.removeChild(old);
    var oldBtn = meta.querySelector(".og-retry");
    if (oldBtn) meta.removeChild(oldBtn);
    li.setAttribute("data-state", state);
    meta.appendChild(el("span", "og-state", null, t(state)));
    if (state === "failed") {
      var b = el("button", "og-retry", { type: "button" }, t("retry"));
      b.addEventListener("click", function () { retry(li.getAttribute("data-client-id")); });
      meta.appendChild(b);
    }
  }
  function system(text) { append(el("li", "og-system", null, text), true); }
  function setSubtitle() {
    subtitle.textContent = S.repName ? t("with", { name: S.repName }) : "";
  }
  function setStatus(text) {
    status.textContent = text || "";
    status.hidden = !text;
  }
  function markRead() {
    if (S.lastSeq > S.lastRead) { S.lastRead = S.lastSeq; save("read", String(S.lastRead)); }
  }
  function setUnread(n) {
    S.unread = n;
    badge.textContent = n > 99 ? "99+" : String(n);
    badge.hidden = n === 0;
    launcher.setAttribute("aria-label", n ? t("open") + " (" + t("unread", { n: n }) + ")" : t("open"));
  }
  function showMode() {
    var offline = !S.agents && !S.formDone;
    form.hidden = !offline;
    composer.hidden = offline;
  }

  // --- server frames ----------------------------------------------------
  function onEvent(f) {
    if (f.seq <= S.lastSeq) return; // already shown: never twice
    S.lastSeq = f.seq;
    if (S.open) markRead();
    if (f.kind === "message_in") {
      var li = f.client_id && S.byClient[f.client_id];
      if (li) { settle(f.client_id, li); return; }
      li = renderMessage("visitor", f.text || "", f.time, "", true);
      if (f.client_id) { li.setAttribute("data-client-id", f.client_id); S.byClient[f.client_id] = li; }
      setState(li, "sent");
    } else if (f.kind === "message_out") {
      hideRepTyping();
      if (f.rep_name) { S.repName = f.rep_name; setSubtitle(); }
      renderMessage(f.from === "rep" ? "rep" : "bot", f.text || "", f.time, f.rep_name, true);
      if (!S.open && f.seq > S.lastRead) setUnread(S.unread + 1);
    } else if (f.kind === "status_change" && f.status === "resolved") {
      S.repName = ""; setSubtitle();
      system(t("resolved"));
    } else if ((f.kind === "assignment" || f.kind === "transfer") && f.rep_name) {
      S.repName = f.rep_name; setSubtitle();
      system(t("joined", { name: f.rep_name }));
    }
  }
  // settle marks a pending frame as stored.
  // clearShown drops what the widget shows of a timeline, keeping the
  // visitor's messages still waiting for an ack.
  function clearShown() {
    var items = list.querySelectorAll(".og-msg:not([data-state=sending]):not([data-state=failed]), .og-system");
    for (var i = 0; i < items.length; i++) if (items[i] !== greeting) list.removeChild(items[i]);
  }
  function setCustomer(id) {
    S.customerID = id || null;
    save("customer", S.customerID);
  }
  function settle(clientID, li) {
    for (var i = 0; i < S.pending.length; i++) {
      if (S.pending[i].client_id === clientID) {
        var p = S.pending.splice(i, 1)[0];
        savePending();
        setState(li || S.byClient[clientID], "sent");
        if (p.type === "offline") { S.formDone = true; showMode(); system(t("thanks")); }
        return;
      }
    }
    setState(li || S.byClient[clientID], "sent");
  }
  function onFrame(f) {
    switch (f.type) {
      case "welcome":
        S.ready = true;
        S.attempt = 0;
        setStatus("");
        if (f.reset || (S.customerID && f.customer_id !== S.customerID)) {
          // Another customer's timeline (a merge, a sign-out): start over.
          clearShown();
          S.lastRead = f.last_seq; // the new timeline's past is not "unread"
          save("read", String(f.last_seq));
          setUnread(0);
        }
        // No customer_id: a visitor who has not written yet; the first
        // message's ack names the customer it made.
        setCustomer(f.customer_id);
        S.lastSeq = f.after;
        S.maxBytes = f.max_message_bytes || S.maxBytes;
        flushPending();
        break;
      case "event": onEvent(f); break;
      case "ack":
        if (f.customer_id && f.customer_id !== S.customerID) setCustomer(f.customer_id);
        settle(f.client_id);
        break;
      case "availability": S.agents = !!f.agents; showMode(); break;
      case "typing":
        if (f.on) showRepTyping(f.rep_name); else hideRepTyping();
        break;
      case "error":
        if (f.client_id) failPending(f.client_id, false);
        break;
    }
  }
  function showRepTyping(name) {
    typing.textContent = t("typing", { name: name || S.repName || t("agent") });
    typing.hidden = false;
    clearTimeout(S.repTypingTimer);
    S.repTypingTimer = setTimeout(hideRepTyping, 6000); // no refresh: they stopped
  }
  function hideRepTyping() { typing.hidden = true; typing.textContent = ""; }

  // --- connection -----------------------------------------------------------
  function connect() {
    if (S.ws || S.stopped) return;
    clearTimeout(S.timer);
    setStatus(S.attempt ? t("reconnecting") : (S.open ? t("connecting") : ""));
    var ws;
    try { ws = new WebSocket(WS_URL); } catch (e) { scheduleReconnect(); return; }
    S.ws = ws;
    ws.onopen = function () {
      var hello = { type: "hello", visitor: visitorID(), after: S.lastSeq, lang: navigator.language || "",
        page: location.origin + location.pathname };
      try { hello.tz = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { /* no Intl: no hint */ }
      if (S.customerID) hello.customer_id = S.customerID;
      if (USER_ID) {
        hello.user_id = USER_ID;
        hello.user_hash = USER_HASH;
        if (USER_EXPIRES) hello.user_expires = USER_EXPIRES;
      }
      ws.send(JSON.stringify(hello));
    };
    ws.onmessage = function (m) {
      var f;
      try { f = JSON.parse(m.data); } catch (e) { return; }
      onFrame(f);
    };
    ws.onclose = function (e) {
      if (S.ws !== ws) return;
      S.ws = null;
      S.ready = false;
      clearTimeout(S.sendTimer);
      S.sendQueue = [];
      if (e.code === CLOSE_IDENTITY_REFUSED && !USER_ID && !S.renewed) {
        // Without a signature, refused: this browser's visitor id belongs
        // to signed-in users only. Start over once as a new visitor,
        // keeping what the visitor typed and has not sent.
        S.renewed = true;
        save("visitor", null); setCustomer(null); save("read", null);
        S.lastSeq = 0; S.lastRead = 0; setUnread(0);
        clearShown();
        connect();
        return;
      }
      if (!reconnectable(e.code)) {
        S.stopped = true;
        setStatus(e.code === CLOSE_IDENTITY_REFUSED ? t("identity") : t("closed"));
        for (var i = 0; i < S.pending.length; i++) failPending(S.pending[i].client_id, false);
        return;
      }
      scheduleReconnect();
    };
  }
  function scheduleReconnect() {
    S.ws = null;
    S.attempt++;
    setStatus(t("reconnecting"));
    // Exponential backoff with jitter: 0.5s, 1s, 2s ... 30s.
    var d = Math.min(30000, 500 * Math.pow(2, S.attempt - 1));
    S.timer = setTimeout(connect, d / 2 + Math.random() * d / 2);
  }
  function reconnectNow() {
    if (S.ws || S.stopped) return;
    clearTimeout(S.timer);
    connect();
  }
  // flushPending resends what was not acknowledged, in order, a few frames
  // a second so a long backlog stays under the site's rate limit.
  function flushPending() {
    S.sendQueue = [];
    for (var i = 0; i < S.pending.length; i++) if (S.pending[i].auto !== false) S.sendQueue.push(S.pending[i]);
    pump();
  }
  function pump() {
    clearTimeout(S.sendTimer);
    if (!S.ready || !S.sendQueue.length) return;
    var p = S.sendQueue.shift();
    transmit(p);
    S.sendTimer = setTimeout(pump, 150);
  }
  function transmit(p) {
    if (!S.ready || !S.ws) return false;
    var frame = { type: p.type, client_id: p.client_id };
    if (p.type === "message") frame.text = p.text;
    else { frame.message = p.text; frame.name = p.name; if (p.email) frame.email = p.email; if (p.phone) frame.phone = p.phone; }
    S.ws.send(JSON.stringify(frame));
    watch(p.client_id);
    return true;
  }
  // watch shows a message as failed (still resent on reconnect) when no
  // ack came within 20 seconds.
  function watch(clientID) {
    setTimeout(function () {
      for (var i = 0; i < S.pending.length; i++) {
        if (S.pending[i].client_id === clientID) { setState(S.byClient[clientID], "failed"); return; }
      }
    }, 20000);
  }
  function failPending(clientID, auto) {
    for (var i = 0; i < S.pending.length; i++) {
      if (S.pending[i].client_id === clientID) { S.pending[i].auto = auto; savePending(); }
    }
    setState(S.byClient[clientID], "failed");
  }
  function retry(clientID) {
    for (var i = 0; i < S.pending.length; i++) {
      var p = S.pending[i];
      if (p.client_id !== clientID) continue;
      p.auto = true;
      savePending();
      setState(S.byClient[clientID], "sending");
      if (S.stopped) { S.stopped = false; S.attempt = 0; }
      if (!transmit(p)) reconnectNow();
    }
  }

  // --- sending --------------------------------------------------------------
  var seq = 0;
  function clientID() { return "m-" + Date.now().toString(36) + "-" + randomID(6) + "-" + (++seq); }
  function fits(p) {
    var frame = JSON.stringify({ type: p.type, client_id: p.client_id, text: p.text, message: p.text, name: p.name, email: p.email, phone: p.phone });
    return new TextEncoder().encode(frame).length <= S.maxBytes;
  }
  function queue(p) {
    if (!fits(p)) return false;
    S.pending.push(p);
    savePending();
    var li = renderMessage("visitor", p.text, null);
    li.setAttribute("data-client-id", p.client_id);
    S.byClient[p.client_id] = li;
    setState(li, "sending");
    if (!transmit(p)) { watch(p.client_id); reconnectNow(); }
    return true;
  }
  function showError(node, text) { node.textContent = text || ""; node.hidden = !text; }

  composer.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    if (!queue({ type: "message", client_id: clientID(), text: text })) { showError(inputError, t("too_long")); return; }
    showError(inputError, "");
    input.value = "";
    autosize();
    sendTyping(false);
    input.focus();
  });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); composer.requestSubmit ? composer.requestSubmit() : composer.dispatchEvent(new Event("submit")); }
  });
  function autosize() { input.style.height = "auto"; input.style.height = Math.min(input.scrollHeight, 120) + "px"; }
  input.addEventListener("input", function () {
    autosize();
    if (input.value.trim()) sendTyping(true); else sendTyping(false);
  });
  // Typing: "on" at most every 3 seconds while keys come, "off" after 4
  // quiet seconds or on send. The rep's side expires "on" after 6.
  function sendTyping(on) {
    if (!S.ready || !S.ws) return;
    var now = Date.now();
    clearTimeout(S.typingOff);
    if (on) {
      if (now - S.typingSent > 3000) { S.ws.send('{"type":"typing","on":true}'); S.typingSent = now; }
      S.typingOff = setTimeout(function () { sendTyping(false); }, 4000);
    } else if (S.typingSent) {
      S.ws.send('{"type":"typing","on":false}');
      S.typingSent = 0;
    }
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var contact = fContact.value.trim(), text = fMessage.value.trim();
    var p = { type: "offline", client_id: clientID(), name: fName.value.trim(), text: text };
    if (/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(contact)) p.email = contact;
    else if (/^\+[0-9 ()\-.]{7,20}$/.test(contact)) p.phone = contact;
    else { showError(formError, t("bad_contact")); fContact.focus(); return; }
    if (!text) { fMessage.focus(); return; }
    if (!queue(p)) { showError(formError, t("too_long")); return; }
    showError(formError, "");
    fMessage.value = "";
  });

  // --- open and close -------------------------------------------------------
  function open() {
    if (S.open) return;
    S.open = true;
    panel.hidden = false;
    wrap.classList.add("og-is-open");
    launcher.setAttribute("aria-expanded", "true");
    launcher.setAttribute("aria-label", t("close"));
    setUnread(0);
    markRead();
    connect();
    if (!S.ws && !S.ready) setStatus(t("connecting"));
    list.scrollTop = list.scrollHeight;
    (composer.hidden ? fName : input).focus();
  }
  function close() {
    if (!S.open) return;
    S.open = false;
    panel.hidden = true;
    wrap.classList.remove("og-is-open");
    launcher.setAttribute("aria-expanded", "false");
    setUnread(0);
    launcher.focus();
  }
  launcher.addEventListener("click", function () { S.open ? close() : open(); });
  closeBtn.addEventListener("click", close);
  panel.addEventListener("keydown", function (e) {
    if (e.key === "Escape") { e.stopPropagation(); close(); }
  });

  // Pending messages survive a reload: show them and resend once connected.
  for (var j = 0; j < S.pending.length; j++) {
    var p = S.pending[j];
    var li = renderMessage("visitor", p.text, null);
    li.setAttribute("data-client-id", p.client_id);
    S.byClient[p.client_id] = li;
    setState(li, p.auto === false ? "failed" : "sending");
  }
  showMode();

  function mount() {
    document.body.appendChild(host);
    // A returning visitor connects at once, to see replies that came while
    // away; a new one only when they open the chat.
    if (S.customerID || S.pending.length) connect();
  }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);

  window.Omnigate = {
    loaded: true,
    open: open,
    close: close,
    // reset forgets this browser's visitor (call it when the site's user
    // logs out, so the next person at this browser starts fresh).
    reset: function () {
      save("visitor", null); save("customer", null); save("pending", null); save("read", null);
      S.customerID = null; S.pending = []; S.lastSeq = 0; S.lastRead = 0; setUnread(0);
      var ws = S.ws; S.ws = null; if (ws) ws.close(1000);
      var items = list.querySelectorAll(".og-msg, .og-system");
      for (var i = 0; i < items.length; i++) if (items[i] !== greeting) list.removeChild(items[i]);
      greeting.hidden = false;
      if (S.open) connect();
    }
  };
})();
