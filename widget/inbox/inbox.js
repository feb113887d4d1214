// Omnigate rep inbox. Plain JavaScript, no build step, no dependencies.
//
// Data flow: everything a rep does is a REST call (/v1, docs/openapi.yaml);
// the socket at /inbox/ws only pushes what changed (docs/inbox-protocol.md).
// The timeline is the source of truth: after any reconnect the list is
// reloaded and the open timeline resumes from the last seq seen
// (GET /v1/customers/{id}/timeline?after=N), and an event whose seq is
// already shown is dropped, so nothing is lost or shown twice.
//
// Safety: text from customers, reps and integrators is only ever put in
// the page with textContent or setAttribute, never as HTML.
(function () {
  'use strict';

  var TOKEN_KEY = 'omnigate.inbox.token';
  var FILTER_KEY = 'omnigate.inbox.filter';
  var HISTORY = 200; // events shown when a timeline opens
  var TYPING_REPEAT_MS = 3000;
  var TYPING_IDLE_MS = 4000;

  // Channel icons are short text badges (coloured by CSS per channel):
  // they render in any font, unlike emoji on a bare Linux desktop.
  var CHANNELS = {
    webchat: { icon: 'Web', name: 'Web chat' },
    wechat: { icon: 'WX', name: 'WeChat' },
    sms: { icon: 'SMS', name: 'SMS' },
    voice: { icon: 'Tel', name: 'Voice' },
    api: { icon: 'API', name: 'API' },
    system: { icon: 'Sys', name: 'System' }
  };

  var $ = function (id) { return document.getElementById(id); };

  var state = {
    token: null,
    me: null, // {id, name, role} from ready
    typingTTL: 6000,
    filter: { scope: 'all', channel: '', status: 'open' },
    convs: new Map(), // conversation id -> conversation, those the filter shows
    all: new Map(), // conversation id -> conversation, every one seen
    nextCursor: '',
    listGen: 0,
    customers: new Map(), // customer id -> Promise of customer view
    names: new Map(), // customer id -> display name
    vips: new Set(), // customer ids of VIPs
    reps: [],
    unread: new Map(), // conversation id -> count
    previews: new Map(), // conversation id -> last message text
    selected: null, // conversation id
    tl: null, // open timeline, see openTimeline
    ws: null,
    wsReady: false,
    backoff: 0,
    reconnectTimer: null,
    pingTimer: null,
    awaitingPong: false,
    sound: true,
    audio: null,
    flashTimer: null,
    baseTitle: document.title,
    typingOffTimer: null,
    typingShownTimer: null,
    lastTypingSent: 0,
    typingTo: null,
    contactPanelTimer: null
  };

  // ---------- small DOM helpers ----------

  // el builds an element. attrs: "text" sets textContent, "class" the
  // class, "on<event>" a listener, anything else an attribute. Children
  // are nodes or strings (added as text).
  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === undefined || v === null || v === false) return;
        if (k === 'text') e.textContent = String(v);
        else if (k === 'class') e.className = v;
        else if (k.slice(0, 2) === 'on') e.addEventListener(k.slice(2), v);
        else e.setAttribute(k, v === true ? '' : String(v));
      });
    }
    (children || []).forEach(function (c) {
      if (c === null || c === undefined) return;
      e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    });
    return e;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function cssEscape(s) { return window.CSS && CSS.escape ? CSS.escape(s) : String(s).replace(/["\\]/g, '\\$&'); }

  function fmtTime(iso) {
    var d = new Date(iso);
    if (isNaN(d)) return '';
    var now = new Date();
    if (d.toDateString() === now.toDateString()) {
      return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    }
    return d.toLocaleDateString([], { month: 'short', day: 'numeric' }) + ' ' +
      d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  }

  function channelInfo(ch) { return CHANNELS[ch] || { icon: (ch || '?').slice(0, 3), name: ch || '?' }; }

  function channelBadge(ch, cls) {
    var info = channelInfo(ch);
    return el('span', { class: 'ch ' + (cls || ''), 'data-channel': ch, title: info.name, 'aria-hidden': 'true', text: info.icon });
  }

  function repName(id) {
    if (!id) return '';
    for (var i = 0; i < state.reps.length; i++) if (state.reps[i].id === id) return state.reps[i].name;
    return id;
  }

  // authorLabel turns "rep:alice", "customer", "integrator:crm" into words.
  function authorLabel(a) {
    if (!a) return '';
    if (a === 'customer') return 'Customer';
    if (a === 'system') return 'System';
    if (a === 'router') return 'Router';
    var i = a.indexOf(':');
    if (i < 0) return a;
    var kind = a.slice(0, i), who = a.slice(i + 1);
    if (kind === 'rep') return state.me && who === state.me.id ? 'You' : repName(who);
    if (kind === 'integrator') return 'Integrator ' + who;
    if (kind === 'admin') return 'Admin ' + who;
    return a;
  }

  function newClientID() {
    var b = new Uint8Array(12);
    crypto.getRandomValues(b);
    return 'inbox-' + Array.prototype.map.call(b, function (x) { return ('0' + x.toString(16)).slice(-2); }).join('');
  }

  // ---------- REST ----------

  function ApiError(status, code, message, reasons, until) {
    this.status = status; this.code = code; this.message = message;
    this.reasons = reasons || []; this.until = until || ''; // contact_refused
  }

  async function api(method, path, body) {
    var opts = { method: method, headers: { Authorization: 'Bearer ' + state.token }, cache: 'no-store' };
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    var resp;
    try {
      resp = await fetch(path, opts);
    } catch (e) {
      throw new ApiError(0, 'network', 'The gateway could not be reached.');
    }
    var data = null;
    try { data = await resp.json(); } catch (e) { data = null; }
    if (!resp.ok) {
      var err = data && data.error ? data.error : {};
      if (resp.status === 401 && state.token) signOut('Your token was refused. Sign in again.');
      throw new ApiError(resp.status, err.code || 'http_' + resp.status, err.message || ('HTTP ' + resp.status),
        Array.isArray(err.reasons) ? err.reasons : [], typeof err.until === 'string' ? err.until : '');
    }
    return data;
  }

  // ---------- sign in / out ----------

  async function signIn(ev) {
    ev.preventDefault();
    var token = $('signin-token').value.trim();
    $('signin-error').textContent = '';
    if (!token) {
      $('signin-error').textContent = 'Enter your token.';
      $('signin-token').focus();
      return;
    }
    unlockAudio();
    state.token = token;
    $('signin-submit').disabled = true;
    try {
      state.reps = (await api('GET', '/v1/reps')).data;
    } catch (e) {
      state.token = null;
      $('signin-error').textContent = e.status === 401 ? 'That token is not known.' :
        e.status === 403 ? 'This key cannot use the inbox; sign in with a rep token.' : e.message;
      $('signin-token').focus();
      return;
    } finally {
      $('signin-submit').disabled = false;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    $('signin-token').value = '';
    start();
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    state.token = null;
    state.me = null;
    var ws = state.ws;
    state.ws = null;
    if (ws) ws.close(1000);
    clearTimeout(state.reconnectTimer);
    clearInterval(state.pingTimer);
    closeTimeline();
    state.convs.clear();
    state.selected = null;
    $('app').hidden = true;
    $('signin').hidden = false;
    $('signin-error').textContent = message || '';
    document.title = state.baseTitle;
    $('signin-token').focus();
  }

  async function start() {
    $('signin').hidden = true;
    $('app').hidden = false;
    loadFilter();
    renderFilter();
    if (!state.reps.length) {
      try { state.reps = (await api('GET', '/v1/reps')).data; } catch (e) { if (!state.token) return; }
    }
    renderRepSelect();
    connect();
  }

  // ---------- socket ----------

  function setConn(s, text) {
    var c = $('connection');
    c.dataset.state = s;
    c.textContent = text;
  }

  function connect() {
    clearTimeout(state.reconnectTimer);
    if (!state.token) return;
    var url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/inbox/ws';
    var ws = new WebSocket(url);
    state.ws = ws;
    state.wsReady = false;
    setConn('connecting', 'Connecting…');
    ws.onopen = function () {
      // The token goes in the first frame, never in the URL (logs keep URLs).
      ws.send(JSON.stringify({ type: 'auth', token: state.token }));
    };
    ws.onmessage = function (m) {
      if (state.ws !== ws) return;
      var f;
      try { f = JSON.parse(m.data); } catch (e) { return; }
      onFrame(f);
    };
    ws.onclose = function (e) {
      if (state.ws !== ws) return;
      state.ws = null;
      state.wsReady = false;
      clearInterval(state.pingTimer);
      if (e.code === 4501) { signOut('Your token was refused. Sign in again.'); return; }
      if (e.code === 4502) { signOut('This key cannot use the inbox; sign in with a rep token.'); return; }
      if (e.code === 1009 || (e.code >= 4500 && e.code <= 4999)) {
        setConn('failed', 'Disconnected (' + (e.reason || e.code) + '). Reload the page.');
        return;
      }
      scheduleReconnect();
    };
  }

  // dropSocket gives up on a socket that stopped answering: a close
  // handshake over a dead path could take long, so don't wait for it.
  function dropSocket() {
    var ws = state.ws;
    state.ws = null;
    state.wsReady = false;
    clearInterval(state.pingTimer);
    try { ws.close(); } catch (e) { /* already closing */ }
    scheduleReconnect();
  }

  function scheduleReconnect() {
    state.backoff = Math.min(state.backoff ? state.backoff * 2 : 500, 15000);
    var wait = state.backoff / 2 + Math.random() * state.backoff / 2;
    setConn('offline', 'Offline, reconnecting…');
    state.reconnectTimer = setTimeout(connect, wait);
  }

  function wsSend(f) {
    if (state.ws && state.wsReady) state.ws.send(JSON.stringify(f));
  }

  function onFrame(f) {
    switch (f.type) {
      case 'ready': onReady(f); break;
      case 'event': onEvent(f.event, true); break;
      case 'conversation': upsertConversation(f.conversation); break;
      case 'conversations': upsertMany(f.conversations || []); break;
      case 'views': reloadList(); break; // following the views: load the list now
      case 'resync': reloadList(); break;
      case 'typing': onTyping(f); break;
      case 'pong': state.awaitingPong = false; break;
      case 'error': setConn('offline', f.message || f.code); break;
    }
  }

  function onReady(f) {
    state.me = f.rep;
    state.views = f.views || [];
    state.typingTTL = f.typing_ttl_ms || 6000;
    state.wsReady = true;
    state.backoff = 0;
    setConn('online', 'Online');
    var me = $('me');
    me.textContent = f.rep.name + ' (' + f.rep.role + ')';
    me.dataset.repId = f.rep.id;
    me.dataset.role = f.rep.role;
    // Browsers can't see WebSocket pings; a pong proves the path is alive.
    clearInterval(state.pingTimer);
    state.awaitingPong = false;
    state.pingTimer = setInterval(function () {
      if (state.awaitingPong && state.ws) { dropSocket(); return; }
      state.awaitingPong = true;
      wsSend({ type: 'ping' });
    }, 20000);
    sendView(); // its answer reloads the list
    if (state.tl) {
      wsSend({ type: 'watch', customer_id: state.tl.customerId });
      catchUp(state.tl);
      refreshCustomer(state.tl.customerId);
    }
  }

  // ---------- conversation list ----------

  function loadFilter() {
    try {
      var f = JSON.parse(sessionStorage.getItem(FILTER_KEY) || 'null');
      if (f && typeof f === 'object') {
        state.filter.scope = ['mine', 'unassigned', 'all'].indexOf(f.scope) >= 0 ? f.scope : 'all';
        state.filter.channel = typeof f.channel === 'string' ? f.channel : '';
        state.filter.status = typeof f.status === 'string' ? f.status : 'open';
      }
    } catch (e) { /* keep defaults */ }
  }

  function renderFilter() {
    Array.prototype.forEach.call(document.querySelectorAll('#filter-scope button'), function (b) {
      b.setAttribute('aria-pressed', String(b.dataset.scope === state.filter.scope));
    });
    $('filter-channel').value = state.filter.channel;
    $('filter-status').value = state.filter.status;
  }

  function setFilter(change) {
    var scope = state.filter.scope;
    Object.assign(state.filter, change);
    sessionStorage.setItem(FILTER_KEY, JSON.stringify(state.filter));
    renderFilter();
    if (state.filter.scope !== scope && state.wsReady) sendView();
    else reloadList();
  }

  // sendView asks the socket for the list views the filter shows, beyond
  // the rep's own conversations, which always come: "all" for those
  // whose role may follow it, else the unassigned ones (a rep's "All" is
  // everything they may work on). The server's views answer reloads the
  // list, so no change falls between the load and the live updates.
  function sendView() {
    var scope = state.filter.scope, views = [];
    if (state.paused) views = []; // on a break: nothing new, only one's own
    else if (scope === 'all' && (state.views || []).indexOf('all') >= 0) views = ['all'];
    else if (scope !== 'mine') views = ['unassigned'];
    wsSend({ type: 'view', views: views });
  }

  function listQuery(cursor) {
    var q = new URLSearchParams();
    var f = state.filter;
    if (f.scope === 'mine' && state.me) q.set('assignee', state.me.id);
    if (f.scope === 'unassigned') q.set('unassigned', 'true');
    if (f.channel) q.set('channel', f.channel);
    if (f.status) q.set('status', f.status);
    q.set('limit', '50');
    if (cursor) q.set('cursor', cursor);
    return '/v1/conversations?' + q.toString();
  }

  function matches(c) {
    var f = state.filter;
    if (f.scope === 'mine' && (!state.me || c.assignee !== state.me.id)) return false;
    if (f.scope === 'unassigned' && c.assignee) return false;
    if (f.channel && c.channel !== f.channel) return false;
    if (f.status && c.status !== f.status) return false;
    return true;
  }

  function newer(a, b) { // is a at least as recent as b?
    return (a.last_seq || 0) > (b.last_seq || 0) ||
      ((a.last_seq || 0) === (b.last_seq || 0) && a.updated_at >= b.updated_at);
  }

  async function reloadList() {
    var gen = ++state.listGen;
    $('list-error').textContent = '';
    var page;
    try {
      page = await api('GET', listQuery(''));
    } catch (e) {
      if (gen === state.listGen) $('list-error').textContent = 'Could not load conversations: ' + e.message;
      return;
    }
    if (gen !== state.listGen) return;
    var old = state.convs;
    var newest = '';
    state.convs = new Map();
    page.data.forEach(function (c) {
      var o = state.all.get(c.id);
      if (o && newer(o, c)) c = o; // a live update beat the page
      state.all.set(c.id, c);
      if (matches(c)) state.convs.set(c.id, c);
      if (c.created_at > newest) newest = c.created_at;
    });
    // Keep conversations opened since the page was read.
    old.forEach(function (o, id) {
      if (!state.convs.has(id) && matches(o) && o.created_at > newest) state.convs.set(id, o);
    });
    state.nextCursor = page.next_cursor;
    renderList();
    countUnread();
  }

  async function loadMore() {
    if (!state.nextCursor) return;
    var gen = state.listGen;
    try {
      var page = await api('GET', listQuery(state.nextCursor));
      if (gen !== state.listGen) return;
      page.data.forEach(function (c) {
        if (!state.all.has(c.id)) state.all.set(c.id, c);
        if (!state.convs.has(c.id) && matches(state.all.get(c.id))) state.convs.set(c.id, state.all.get(c.id));
      });
      state.nextCursor = page.next_cursor;
      renderList();
      countUnread();
    } catch (e) {
      $('list-error').textContent = 'Could not load more: ' + e.message;
    }
  }

  function sortedConvs() {
    return Array.from(state.convs.values()).sort(function (a, b) {
      if (a.updated_at !== b.updated_at) return a.updated_at < b.updated_at ? 1 : -1;
      return a.id < b.id ? 1 : -1;
    });
  }

  function renderList() {
    var list = $('conversation-list');
    var focusedID = document.activeElement && document.activeElement.closest &&
      document.activeElement.closest('.conv') ? document.activeElement.closest('.conv').dataset.conversationId : null;
    clear(list);
    var convs = sortedConvs();
    convs.forEach(function (c) { list.appendChild(convItem(c)); });
    $('list-empty').hidden = convs.length > 0;
    $('list-more').hidden = !state.nextCursor;
    if (focusedID) {
      var b = list.querySelector('.conv[data-conversation-id="' + cssEscape(focusedID) + '"] .conv-open');
      if (b) b.focus();
    }
    updateTitle();
  }

  function convItem(c) {
    var ch = channelInfo(c.channel);
    var n = state.unread.get(c.id) || 0;
    var name = state.names.get(c.customer_id);
    if (name === undefined) { name = c.customer_id; loadName(c.customer_id); }
    var sub = [c.status, c.assignee ? '→ ' + repName(c.assignee) : 'unassigned'];
    if (c.topic) sub.push('#' + c.topic);
    var preview = state.previews.get(c.id);
    var label = ch.name + ', ' + name + ', ' + c.status + (c.assignee ? ', assigned to ' + repName(c.assignee) : ', unassigned') +
      (n ? ', ' + n + ' unread' : '');
    var li = el('li', {
      class: 'conv',
      'data-conversation-id': c.id,
      'data-customer-id': c.customer_id,
      'data-channel': c.channel,
      'data-status': c.status,
      'data-assignee': c.assignee || '',
      'data-unread': String(n),
      'aria-current': c.id === state.selected ? 'true' : null
    }, [
      el('button', { type: 'button', class: 'conv-open', 'aria-label': label, onclick: function () { selectConversation(c.id); } }, [
        channelBadge(c.channel, 'conv-icon'),
        el('span', { class: 'conv-name' }, state.vips.has(c.customer_id) ? [el('span', { class: 'vip', text: 'VIP' }), ' ' + name] : [name]),
        el('span', { class: 'conv-time', text: fmtTime(c.updated_at) }),
        el('span', { class: 'conv-sub', text: preview || sub.join(' · ') }),
        el('span', { class: 'unread', 'data-count': String(n), 'aria-hidden': 'true', text: String(n) })
      ])
    ]);
    return li;
  }

  function upsertConversation(c) {
    upsertOne(c);
    renderList();
  }

  // upsertMany applies a list view's coalesced changes, one render. A
  // conversation new to the page that is waiting for someone rings once:
  // list views carry no message events to ring on.
  function upsertMany(cs) {
    var fresh = cs.some(function (c) { return !state.all.has(c.id) && !c.assignee && c.status === 'open' && matches(c); });
    cs.forEach(upsertOne);
    renderList();
    if (fresh) notify();
  }

  function upsertOne(c) {
    var old = state.all.get(c.id);
    if (old && !newer(c, old)) c = Object.assign({}, c, { last_seq: old.last_seq, updated_at: old.updated_at });
    state.all.set(c.id, c);
    if (matches(c)) state.convs.set(c.id, c);
    else state.convs.delete(c.id);
    if (c.id === state.selected && state.tl) {
      state.tl.conv = c;
      renderConversationHeader();
    }
  }

  var fetching = new Set();
  async function fetchConversation(id) {
    if (fetching.has(id)) return;
    fetching.add(id);
    try {
      var c = await api('GET', '/v1/conversations/' + encodeURIComponent(id));
      upsertConversation(c);
    } catch (e) { /* it shows on the next reload */ } finally {
      fetching.delete(id);
    }
  }

  function getCustomer(id, fresh) {
    if (fresh || !state.customers.has(id)) {
      var p = api('GET', '/v1/customers/' + encodeURIComponent(id));
      p.catch(function () { state.customers.delete(id); });
      state.customers.set(id, p);
    }
    return state.customers.get(id);
  }

  // customerName is the customer's name or, for an anonymous visitor,
  // what the widget told of them: "Visitor · Shanghai · Chrome" (the
  // city is the browser's time zone's; see channels/webchat/visitor.go).
  function customerName(c) {
    if (c.name) return c.name;
    var a = c.attributes || {};
    var parts = [a.visitor_city, a.visitor_browser].filter(Boolean);
    return parts.length ? ['Visitor'].concat(parts).join(' · ') : c.id;
  }

  function loadName(id) {
    if (state.names.has(id)) return;
    state.names.set(id, id); // one request per customer
    getCustomer(id).then(function (c) {
      state.names.set(id, customerName(c));
      if (c.vip) state.vips.add(id);
      renderList();
    }, function () { /* keep the id */ });
  }

  // ---------- unread counts ----------

  function readMarks() {
    try { return JSON.parse(localStorage.getItem(readKey()) || '{}') || {}; } catch (e) { return {}; }
  }
  function readKey() { return 'omnigate.inbox.read.' + (state.me ? state.me.id : ''); }
  function markRead(c) {
    if (!c || !state.me) return;
    var m = readMarks();
    m[c.id] = Math.max(m[c.id] || 0, c.last_seq || 0);
    try { localStorage.setItem(readKey(), JSON.stringify(m)); } catch (e) { /* private mode */ }
    if (state.unread.get(c.id)) {
      state.unread.set(c.id, 0);
      renderList();
    }
  }

  // countUnread counts, for each listed conversation with something new,
  // the customer messages since the rep last read it (or, never read,
  // since the last reply): one timeline read per such conversation.
  async function countUnread() {
    var marks = readMarks();
    var gen = state.listGen;
    var todo = sortedConvs().filter(function (c) {
      return c.id !== state.selected && (c.last_seq || 0) > (marks[c.id] || 0) && !state.unread.has(c.id);
    });
    for (var i = 0; i < todo.length && gen === state.listGen; i++) {
      var c = todo[i];
      var after = marks[c.id] || Math.max(0, (c.last_seq || 0) - 100);
      try {
        var page = await api('GET', '/v1/customers/' + encodeURIComponent(c.customer_id) +
          '/timeline?after=' + after + '&limit=100');
        var n = 0;
        page.data.forEach(function (ev) {
          if (ev.conversation_id !== c.id) return;
          if (ev.kind === 'message_in') n++;
          else if (!marks[c.id] && (ev.kind === 'message_out')) n = 0;
          if (ev.kind === 'message_in' || ev.kind === 'message_out') {
            var t = messageText(ev);
            if (t) state.previews.set(c.id, t);
          }
        });
        if (!state.unread.has(c.id) || state.unread.get(c.id) < n) state.unread.set(c.id, n);
      } catch (e) { return; }
    }
    renderList();
  }

  // ---------- live events ----------

  function onEvent(ev, live) {
    if (ev.conversation_id) {
      var c = state.all.get(ev.conversation_id);
      if (c) {
        if ((ev.seq || 0) > (c.last_seq || 0)) {
          c.last_seq = ev.seq;
          if (ev.time > c.updated_at) c.updated_at = ev.time;
        }
      } else {
        fetchConversation(ev.conversation_id);
      }
      if (ev.kind === 'message_in' || ev.kind === 'message_out') {
        var t = messageText(ev);
        if (t) state.previews.set(ev.conversation_id, t);
      }
      if (ev.kind === 'offer' && live && ev.payload && ev.payload.kind === 'offer' &&
          state.me && ev.payload.rep === state.me.id) {
        notify(); // an offer to me: answer before it expires
      }
      if (ev.kind === 'message_in' && live) {
        var viewing = ev.conversation_id === state.selected && document.hasFocus() && !document.hidden;
        if (!viewing) {
          state.unread.set(ev.conversation_id, (state.unread.get(ev.conversation_id) || 0) + 1);
          notify();
        } else if (c) {
          markRead(c);
        }
      }
      renderList();
    }
    if (ev.kind === 'customers_merged') onMerged(ev);
    if (state.tl && ev.customer_id === state.tl.customerId) {
      tlLive(state.tl, ev);
      if (ev.kind === 'message_in') hideTyping();
      if (ev.kind === 'identity_linked' || ev.kind === 'profile_changed') refreshCustomer(ev.customer_id);
      else if (ev.kind === 'message_in' || ev.kind === 'message_out' || ev.kind === 'contact_refused') contactPanelSoon(ev.customer_id);
    }
  }

  function onMerged(ev) {
    var p = ev.payload || {};
    state.customers.delete(p.from);
    state.customers.delete(p.into);
    state.names.delete(p.from);
    if (state.tl && state.tl.customerId === p.from && state.selected) {
      // The open customer was merged away: its conversations now belong to
      // the customer kept. Reopen the same conversation there.
      var id = state.selected;
      closeTimeline();
      state.selected = null;
      selectConversation(id);
    }
    reloadList();
  }

  // ---------- notifications ----------

  function unlockAudio() {
    if (state.audio || !(window.AudioContext || window.webkitAudioContext)) return;
    try { state.audio = new (window.AudioContext || window.webkitAudioContext)(); } catch (e) { state.audio = null; }
  }

  function beep() {
    var a = state.audio;
    if (!state.sound || !a) return;
    try {
      if (a.state === 'suspended') a.resume();
      var o = a.createOscillator(), g = a.createGain(), t = a.currentTime;
      o.type = 'sine';
      o.frequency.value = 880;
      g.gain.setValueAtTime(0.0001, t);
      g.gain.exponentialRampToValueAtTime(0.2, t + 0.02);
      g.gain.exponentialRampToValueAtTime(0.0001, t + 0.25);
      o.connect(g);
      g.connect(a.destination);
      o.start(t);
      o.stop(t + 0.3);
    } catch (e) { /* no sound, the title still flashes */ }
  }

  function totalUnread() {
    var n = 0;
    state.unread.forEach(function (v) { n += v; });
    return n;
  }

  function updateTitle() {
    if (state.flashTimer) return;
    var n = totalUnread();
    document.title = (n ? '(' + n + ') ' : '') + state.baseTitle;
  }

  function notify() {
    beep();
    if (!document.hidden && document.hasFocus()) { updateTitle(); return; }
    if (state.flashTimer) return;
    var on = false;
    state.flashTimer = setInterval(function () {
      on = !on;
      document.title = on ? '● New message (' + totalUnread() + ')' : state.baseTitle;
    }, 1000);
  }

  function stopFlash() {
    if (state.flashTimer) { clearInterval(state.flashTimer); state.flashTimer = null; }
    updateTitle();
    if (state.tl && state.tl.conv && !document.hidden) markRead(state.tl.conv);
  }

  // ---------- timeline ----------

  function messageText(ev) {
    var p = ev.payload;
    if (!p || typeof p !== 'object') return '';
    return typeof p.text === 'string' ? p.text : '';
  }

  function closeTimeline() {
    if (state.tl) state.tl.closed = true;
    state.tl = null;
    hideTyping();
    stopTyping();
    clear($('timeline'));
    $('conversation').hidden = true;
    $('customer').hidden = true;
    $('placeholder').hidden = false;
  }

  async function selectConversation(id) {
    if (state.selected === id && state.tl) { $('reply-text').focus(); return; }
    var c = state.convs.get(id);
    if (!c) {
      try { c = await api('GET', '/v1/conversations/' + encodeURIComponent(id)); } catch (e) { return; }
    }
    stopTyping();
    state.selected = id;
    var sameCustomer = state.tl && state.tl.customerId === c.customer_id;
    if (sameCustomer) {
      state.tl.conv = c;
      Array.prototype.forEach.call($('timeline').children, function (li) {
        li.classList.toggle('other-conversation', !!li.dataset.conversationId && li.dataset.conversationId !== id);
      });
    } else {
      openTimeline(c);
    }
    renderList();
    renderConversationHeader();
    $('action-error').textContent = '';
    markRead(c);
    $('reply-text').focus();
  }

  // openTimeline shows the customer's timeline: the last HISTORY events,
  // then everything after, then live events in order (tlLive).
  function openTimeline(c) {
    closeTimeline();
    var tl = {
      customerId: c.customer_id, conv: c,
      firstSeq: 0, lastSeq: 0, // rendered range
      loading: null, closed: false,
      deliveries: new Map(), // message event id -> "sent" | "failed"
      pending: new Map(), // client id -> {text, note}
      offers: new Map() // conversation id -> latest offer event's payload
    };
    state.tl = tl;
    $('placeholder').hidden = true;
    $('conversation').hidden = false;
    $('customer').hidden = false;
    $('typing-indicator').hidden = true;
    wsSend({ type: 'watch', customer_id: tl.customerId });
    refreshCustomer(tl.customerId);
    var after = Math.max(0, (c.last_seq || 0) - HISTORY);
    tl.firstSeq = after + 1;
    tl.lastSeq = after;
    catchUp(tl);
  }

  // catchUp reads the timeline after the last seq shown until the end;
  // one run at a time, so pages apply in order.
  function catchUp(tl) {
    if (tl.loading) { tl.again = true; return tl.loading; }
    tl.loading = (async function () {
      do {
        tl.again = false;
        for (;;) {
          var page;
          try {
            page = await api('GET', '/v1/customers/' + encodeURIComponent(tl.customerId) +
              '/timeline?after=' + tl.lastSeq + '&limit=500');
          } catch (e) {
            if (!tl.closed) $('action-error').textContent = 'Could not load the timeline: ' + e.message;
            tl.loading = null;
            return;
          }
          if (tl.closed) return;
          page.data.forEach(function (ev) { tlAppend(tl, ev); });
          if (!page.next_cursor) break;
        }
      } while (tl.again);
      tl.loading = null;
      $('timeline-earlier').hidden = tl.firstSeq <= 1;
    })();
    return tl.loading;
  }

  // tlLive takes a pushed event: the next one in order is shown at once; a
  // gap (missed frames) is filled from the timeline first; one already
  // shown is dropped.
  function tlLive(tl, ev) {
    if (ev.seq <= tl.lastSeq) return;
    if (ev.seq === tl.lastSeq + 1 && !tl.loading) { tlAppend(tl, ev); return; }
    catchUp(tl);
  }

  async function loadEarlier() {
    var tl = state.tl;
    if (!tl || tl.firstSeq <= 1) return;
    var before = tl.firstSeq - 1;
    var after = Math.max(0, before - HISTORY);
    try {
      var page = await api('GET', '/v1/customers/' + encodeURIComponent(tl.customerId) +
        '/timeline?after=' + after + '&limit=' + (before - after));
      if (tl.closed) return;
      var list = $('timeline');
      var first = list.firstChild;
      var h = list.scrollHeight;
      page.data.forEach(function (ev) {
        if (ev.seq > before) return;
        noteDelivery(tl, ev);
        var li = renderEvent(tl, ev);
        if (li) list.insertBefore(li, first);
      });
      tl.firstSeq = after + 1;
      list.scrollTop += list.scrollHeight - h;
      $('timeline-earlier').hidden = tl.firstSeq <= 1;
    } catch (e) {
      $('action-error').textContent = 'Could not load earlier events: ' + e.message;
    }
  }

  function noteDelivery(tl, ev) {
    if (ev.kind !== 'delivery_status' || !ev.payload) return false;
    tl.deliveries.set(ev.payload.event_id, ev.payload.status);
    var li = $('timeline').querySelector('.ev[data-event-id="' + cssEscape(ev.payload.event_id) + '"]');
    if (li) setState(li, ev.payload.status);
    return true;
  }

  function tlAppend(tl, ev) {
    if (ev.seq <= tl.lastSeq) return;
    tl.lastSeq = ev.seq;
    if (noteDelivery(tl, ev)) return;
    var list = $('timeline');
    var atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 150;
    var p = ev.payload && ev.payload.client_id ? tl.pending.get(ev.payload.client_id) : null;
    if (p) {
      tl.pending.delete(ev.payload.client_id);
      if (p.li.parentNode) p.li.parentNode.removeChild(p.li);
    }
    if (ev.kind === 'offer' && ev.conversation_id) {
      tl.offers.set(ev.conversation_id, ev.payload || {});
      renderOffer();
    }
    var li = renderEvent(tl, ev);
    if (li) {
      // Pending messages stay last, under everything stored.
      var firstPending = list.querySelector('.ev.pending');
      list.insertBefore(li, firstPending);
    }
    if (atBottom || (p && li)) list.scrollTop = list.scrollHeight;
  }

  function setState(li, s) {
    li.dataset.state = s;
    var st = li.querySelector('.ev-state');
    if (st) st.textContent = s === 'sending' ? 'Sending…' : s === 'sent' ? 'Sent' : s === 'failed' ? 'Failed' : s;
    var retry = li.querySelector('.retry');
    if (retry) retry.hidden = s !== 'failed';
  }

  var SYSTEM_KINDS = ['assignment', 'transfer', 'status_change', 'identity_linked', 'customers_merged', 'offer', 'profile_changed',
    'contact_refused', 'channel_choice'];

  // renderEvent builds one timeline entry; delivery_status is folded into
  // the message it reports on and has no entry of its own.
  function renderEvent(tl, ev) {
    if (ev.kind === 'delivery_status') return null;
    var ch = channelInfo(ev.channel);
    var system = SYSTEM_KINDS.indexOf(ev.kind) >= 0;
    var li = el('li', {
      class: 'ev' + (system ? ' system' : '') +
        (ev.conversation_id && ev.conversation_id !== state.selected ? ' other-conversation' : ''),
      'data-seq': String(ev.seq),
      'data-kind': ev.kind,
      'data-channel': ev.channel,
      'data-event-id': ev.id,
      'data-conversation-id': ev.conversation_id || null,
      'data-author': ev.author || null,
      'data-client-id': ev.payload && ev.payload.client_id ? ev.payload.client_id : null
    });
    var head = el('div', { class: 'ev-head' }, [
      ev.channel === 'system' ? null : el('span', { class: 'ev-channel' }, [channelBadge(ev.channel), ' ' + ch.name]),
      el('span', { class: 'ev-author', text: authorLabel(ev.author) }),
      el('time', { datetime: ev.time, text: fmtTime(ev.time) })
    ]);
    if (ev.origin) head.appendChild(el('span', { text: '(merged)' }));
    var body = [];
    var p = ev.payload && typeof ev.payload === 'object' ? ev.payload : {};
    switch (ev.kind) {
      case 'message_in':
      case 'message_out':
      case 'note':
        if (ev.kind === 'note') head.appendChild(el('span', { class: 'ev-label', text: 'Internal note' }));
        body.push(el('p', { class: 'ev-text', text: messageText(ev) }));
        (Array.isArray(p.media) ? p.media : []).forEach(function (m) { body.push(mediaNode(m)); });
        if (p.offline_form) body.push(offlineForm(p.offline_form));
        if (ev.kind === 'message_out') {
          body.push(el('span', { class: 'ev-state', 'aria-live': 'polite' }));
          body.push(el('button', { type: 'button', class: 'retry', hidden: true, text: 'Retry',
            onclick: function () {
              if (!state.tl || state.tl.conv.id !== ev.conversation_id) {
                $('action-error').textContent = 'Open that conversation to retry its message.';
                return;
              }
              send(messageText(ev), false);
            } }));
        }
        break;
      case 'assignment':
      case 'transfer':
        body.push(el('span', { class: 'ev-text', text: assignmentText(ev, p) }));
        if (p.why || Array.isArray(p.candidates)) body.push(whyNode(p));
        break;
      case 'offer':
        body.push(el('span', { class: 'ev-text', text: offerText(p) }));
        break;
      case 'status_change':
        body.push(el('span', { class: 'ev-text', text: statusText(ev, p) }));
        break;
      case 'identity_linked':
        body.push(el('span', { class: 'ev-text', text: 'Identity linked: ' + identityText(p) }));
        break;
      case 'customers_merged':
        body.push(el('span', { class: 'ev-text', text: 'Customer ' + (p.from || '?') + ' merged into this one (' +
          (p.evidence || 'no evidence given') + ', ' + (p.copied || 0) + ' events copied)' }));
        break;
      case 'profile_changed':
        body.push(el('span', { class: 'ev-text', text: 'Profile changed: ' + profileText(p) }));
        break;
      case 'channel_choice':
        body.push(el('span', { class: 'ev-text', text: channelChoiceText(p) }));
      case 'contact_refused':
        body.push(el('span', { class: 'ev-text', text: refusedEventText(ev, p) }));
        break;
      default: // integrator, call and kinds added later
        body.push(el('span', { class: 'ev-text', text: genericTitle(ev, p) }));
        body.push(el('details', null, [el('summary', { text: 'Details' }),
          el('pre', { text: JSON.stringify(ev.payload, null, 2) })]));
    }
    li.appendChild(head);
    body.forEach(function (n) { li.appendChild(n); });
    if (ev.kind === 'message_out') setState(li, tl.deliveries.get(ev.id) || 'sending');
    return li;
  }

  function safeURL(u) {
    try {
      var x = new URL(u, location.href);
      return x.protocol === 'https:' || x.protocol === 'http:' ? x.href : null;
    } catch (e) { return null; }
  }

  function mediaNode(m) {
    var label = (m.type || 'file') + (m.name ? ': ' + m.name : '') + (m.text ? ' — ' + m.text : '');
    var href = m.url ? safeURL(m.url) : null;
    if (!href) return el('p', { class: 'ev-media', text: label });
    return el('p', { class: 'ev-media' }, [el('a', { href: href, target: '_blank', rel: 'noopener noreferrer', text: label })]);
  }

  // profileText lists a profile_changed event's fields, "tier — → A,
  // owner Alice → Bob"; owners are shown by name.
  function profileText(p) {
    var ch = p.changes && typeof p.changes === 'object' ? p.changes : {};
    function show(field, v) {
      if (v === null || v === undefined || v === '') return '—';
      if (typeof v === 'boolean') return v ? 'yes' : 'no';
      if (Array.isArray(v)) return v.length ? v.join(', ') : '—';
      return field === 'owner' ? repName(String(v)) : String(v);
    }
    return Object.keys(ch).sort().map(function (f) {
      return (f === 'vip' ? 'VIP' : f.replace('_', ' ')) + ' ' + show(f, ch[f].from) + ' → ' + show(f, ch[f].to);
    }).join(', ') || 'nothing';
  }

  function offlineForm(f) {
    var parts = [];
    if (f.name) parts.push('name ' + f.name);
    if (f.email) parts.push('email ' + f.email);
    if (f.phone) parts.push('phone ' + f.phone);
    if (Array.isArray(f.taken) && f.taken.length) parts.push('(' + f.taken.join(', ') + ' belongs to another customer; not linked)');
    return el('p', { class: 'ev-offline muted', text: 'Offline form: ' + (parts.join(', ') || 'no contact left') });
  }

  function assignmentText(ev, p) {
    var to = p.assignee !== undefined ? p.assignee : p.rep_id;
    if (p.kind && p.kind !== 'assign' && p.kind !== 'accepted') {
      // A router decision that is not an assignment: offer, queued, overflow...
      return 'Router: ' + p.kind.replace(/_/g, ' ') + (p.rep_id ? ' (' + repName(p.rep_id) + ')' : '');
    }
    if (ev.kind === 'transfer' || (p.from && to)) {
      return 'Transferred from ' + repName(p.from) + ' to ' + repName(to) + ' by ' + authorLabel(ev.author);
    }
    if (!to) return 'Unassigned by ' + authorLabel(ev.author) + (p.why ? ' (' + p.why + ')' : '');
    return 'Assigned to ' + repName(to) + ' by ' + authorLabel(ev.author);
  }

  // offerText describes an offer event: the router's offer or its end, or
  // a rep's answer.
  function offerText(p) {
    var who = repName(p.rep || p.rep_id || '?');
    if (p.response) return 'Offer ' + p.response + ' by ' + who;
    switch (p.kind) {
      case 'offer': return 'Offered to ' + who + (p.expires_at ? ' until ' + fmtTime(p.expires_at) : '');
      case 'offer_expired': return 'Offer to ' + who + ' expired' + (p.rep_away ? '; ' + who + ' set away' : '');
      case 'offer_declined': return 'Offer declined by ' + who;
      case 'offer_withdrawn': return 'Offer to ' + who + ' withdrawn';
    }
    return 'Offer';
  }

  // renderOffer shows Accept and Decline while the latest offer event of
  // the open conversation is an offer to me that stands.
  function renderOffer() {
    var tl = state.tl;
    var me = state.me || {};
    var o = tl ? tl.offers.get(tl.conv.id) : null;
    var mine = !!o && o.kind === 'offer' && !o.response && o.rep === me.id &&
      !tl.conv.assignee && tl.conv.status === 'open';
    $('offer-accept').hidden = !mine;
    $('offer-decline').hidden = !mine;
  }

  function whyNode(p) {
    var rows = [];
    if (p.why) rows.push(el('p', { text: p.why }));
    var facts = [];
    if (p.ring) facts.push('ring: ' + p.ring);
    if (p.queue) facts.push('queue: ' + p.queue);
    if (p.select) facts.push('policy: ' + p.select);
    if (typeof p.waited_ms === 'number') facts.push('waited ' + Math.round(p.waited_ms / 1000) + ' s');
    if (typeof p.considered === 'number') facts.push(p.considered + ' reps considered');
    if (facts.length) rows.push(el('p', { text: facts.join(' · ') }));
    if (Array.isArray(p.candidates) && p.candidates.length) {
      var table = el('table', null, [el('thead', null, [el('tr', null, [
        el('th', { scope: 'col', text: 'Rep' }), el('th', { scope: 'col', text: 'Ring' }),
        el('th', { scope: 'col', text: 'Excluded' }), el('th', { scope: 'col', text: 'Idle' }),
        el('th', { scope: 'col', text: 'Free' })])])]);
      var tb = el('tbody');
      p.candidates.forEach(function (c) {
        tb.appendChild(el('tr', null, [
          el('td', { text: repName(c.rep_id) }), el('td', { text: c.ring || '' }),
          el('td', { text: c.excluded || '' }),
          el('td', { text: typeof c.idle_ms === 'number' ? Math.round(c.idle_ms / 1000) + ' s' : '' }),
          el('td', { text: c.free_units !== undefined ? String(c.free_units) : '' })]));
      });
      table.appendChild(tb);
      rows.push(table);
    }
    return el('details', { class: 'why' }, [el('summary', { text: 'Why this rep' })].concat(rows));
  }

  // REOPENED says why the snooze timer opened a conversation again.
  var REOPENED = { snooze_ended: ': the snooze ended', customer_replied: ': the customer wrote' };

  function statusText(ev, p) {
    var by = ev.author && ev.author !== 'system' ? ' by ' + authorLabel(ev.author) : '';
    switch (p.status) {
      case 'open': return 'Conversation open' + by + (REOPENED[p.reason] || '');
      case 'pending': return 'Conversation pending' + by + (p.snooze_until ? ', snoozed until ' + fmtTime(p.snooze_until) : '');
      case 'resolved': return 'Conversation resolved' + by;
    }
    return 'Status changed' + by;
  }

  function identityText(p) {
    return (p.kind || 'identity') + ' ' + (p.value || '') + (p.namespace ? ' (' + p.namespace + ')' : '') +
      (p.verified ? ', verified' : ', unverified');
  }

  // channelChoiceText says what best-channel contact chose and why, "Best
  // channel: WeChat (skipped Web chat: no live session)".
  function channelChoiceText(p) {
    var skipped = (Array.isArray(p.skipped) ? p.skipped : []).map(function (s) {
      return channelInfo(s.channel).name + ': ' + String(s.reason || '').replace(/_/g, ' ');
    });
    return (p.callback ? 'Best channel: callback requested' : 'Best channel: ' + channelInfo(p.channel).name) +
      (p.topic ? ' about ' + p.topic : '') + (skipped.length ? ' (skipped ' + skipped.join(', ') + ')' : '');
  }

  // ---------- contact policy: refusals ----------

  var REASONS = {
    do_not_contact: 'on the do-not-contact list', no_consent: 'no consent', quiet_hours: 'quiet hours',
    holiday: 'holiday', frequency_cap: 'too many contacts lately', min_gap: 'too soon after a resolved conversation',
    open_work: 'open work', duplicate_topic: 'already contacted about this', abandoned_lockout: 'after an abandoned call'
  };

  function reasonsText(reasons) {
    return (reasons || []).map(function (r) { return REASONS[r] || String(r).replace(/_/g, ' '); }).join(', ') || 'no reason given';
  }

  // refusalText says why the policy held a contact back and, for a
  // deferral, from when it may be sent (in the rep's local time).
  function refusalText(decision, reasons, until) {
    var when = decision === 'defer' && until ? '; may be sent from ' + fmtTime(until) : '; not to be sent';
    return reasonsText(reasons) + when;
  }

  function refusedEventText(ev, p) {
    var what = p.purpose === 'reply' ? 'Reply' : (p.purpose ? p.purpose.charAt(0).toUpperCase() + p.purpose.slice(1) : 'Message');
    var by = ev.author && ev.author !== 'system' ? ' by ' + authorLabel(ev.author) : '';
    var on = p.channel ? ' on ' + channelInfo(p.channel).name : '';
    if (p.handed_off) {
      return what + by + ' handed to this conversation\'s rep (open work) instead of sent' + on +
        (p.text ? ': “' + p.text + '”' : '');
    }
    return what + by + on + ' not sent (contact policy): ' + refusalText(p.decision, p.reasons, p.until);
  }

  function genericTitle(ev, p) {
    var who = authorLabel(ev.author);
    var what = p.type || p.event || p.title || p.status || '';
    if (ev.kind === 'call') return 'Call' + (p.direction ? ' (' + p.direction + ')' : '') + (what ? ': ' + what : '');
    if (ev.kind === 'integrator') return (who || 'Integrator') + (what ? ': ' + what : '') + (p.text ? ' — ' + p.text : '');
    return ev.kind + (what ? ': ' + what : '');
  }

  // ---------- conversation header and customer panel ----------

  function renderConversationHeader() {
    var tl = state.tl;
    if (!tl) return;
    var c = tl.conv;
    var ch = channelInfo(c.channel);
    $('conversation-title').textContent = state.names.get(c.customer_id) || c.customer_id;
    var cc = $('conversation-channel');
    clear(cc);
    cc.appendChild(channelBadge(c.channel));
    cc.appendChild(document.createTextNode(' ' + ch.name));
    var st = $('conversation-status');
    st.textContent = c.status;
    st.dataset.status = c.status;
    $('conversation-assignee').textContent = c.assignee ? 'Assigned to ' + repName(c.assignee) : 'Unassigned';
    $('conversation-topic').textContent = c.topic ? '#' + c.topic : '';
    var conv = $('conversation');
    conv.dataset.conversationId = c.id;
    conv.dataset.customerId = c.customer_id;
    conv.dataset.status = c.status;
    conv.dataset.assignee = c.assignee || '';
    var me = state.me || {};
    var boss = me.role === 'supervisor' || me.role === 'admin';
    var mayWork = boss || !c.assignee || c.assignee === me.id;
    var resolved = c.status === 'resolved';
    $('take').hidden = c.assignee === me.id || me.role === 'admin';
    $('take').disabled = !mayWork;
    $('assign-submit').disabled = !mayWork;
    $('assign-select').disabled = !mayWork;
    $('unassign').hidden = !c.assignee;
    $('unassign').disabled = !mayWork;
    $('resolve').hidden = resolved;
    $('resolve').disabled = !mayWork;
    $('reopen').hidden = !resolved;
    $('reopen').disabled = !mayWork;
    renderOffer();
    renderComposer();
  }

  function renderComposer() {
    var tl = state.tl;
    if (!tl) return;
    var c = tl.conv;
    var me = state.me || {};
    var note = $('composer').dataset.mode === 'note';
    var mayWork = me.role === 'supervisor' || me.role === 'admin' || !c.assignee || c.assignee === me.id;
    var hint = 'Enter sends, Shift+Enter adds a line.';
    var disabled = false;
    if (!note && c.status === 'resolved') { disabled = true; hint = 'Resolved: reopen it to reply.'; }
    else if (!note && !mayWork) { disabled = true; hint = 'Assigned to ' + repName(c.assignee) + '; only they or a supervisor reply.'; }
    $('reply-label').textContent = note ? 'Internal note (never sent to the customer)' : 'Reply via ' + channelInfo(c.channel).name;
    $('reply-text').disabled = disabled;
    $('send').disabled = disabled;
    $('send').textContent = note ? 'Add note' : 'Send';
    $('composer-hint').textContent = hint;
  }

  async function refreshCustomer(id) {
    var c;
    try { c = await getCustomer(id, true); } catch (e) { return; }
    if (!state.tl || state.tl.customerId !== id) return;
    state.names.set(id, customerName(c));
    if (c.vip) state.vips.add(id); else state.vips.delete(id);
    $('customer-name').textContent = customerName(c);
    $('customer').dataset.customerId = c.id;
    var dl = $('customer-fields');
    clear(dl);
    var add = function (k, v) {
      dl.appendChild(el('dt', { text: k }));
      dl.appendChild(v instanceof Node ? el('dd', null, [v]) : el('dd', { text: v }));
    };
    add('Tier', c.tier || 'not graded');
    add('VIP', c.vip ? 'Yes' : 'No');
    add('Owner', c.owner ? repName(c.owner) : 'none');
    var tags = el('span');
    (c.tags || []).forEach(function (t) { tags.appendChild(el('span', { class: 'tag', text: t })); });
    if (!(c.tags || []).length) tags.textContent = 'none';
    add('Tags', tags);
    if (c.locale) add('Locale', c.locale);
    if (c.time_zone) add('Time zone', c.time_zone);
    Object.keys(c.attributes || {}).sort().forEach(function (k) {
      if (k.indexOf('consent_') !== 0) add(k, c.attributes[k]); // consent has its own list
    });
    if (c.merged_into) add('Merged into', c.merged_into);
    var ul = $('customer-identities');
    clear(ul);
    (c.identities || []).forEach(function (i) {
      ul.appendChild(el('li', { 'data-kind': i.kind, 'data-verified': String(!!i.verified), text: identityText(i) }));
    });
    if (!(c.identities || []).length) ul.appendChild(el('li', { class: 'muted', text: 'none' }));
    renderConsent(c);
    refreshContactPanel(id);
    renderConversationHeader();
  }

  // ---------- customer panel: the contact policy ----------

  // contactPanelSoon refreshes the panel's touches once a burst of
  // messages has passed, not once per message.
  function contactPanelSoon(id) {
    clearTimeout(state.contactPanelTimer);
    state.contactPanelTimer = setTimeout(function () {
      if (state.tl && state.tl.customerId === id) refreshContactPanel(id);
    }, 1000);
  }

  // renderConsent lists the consent_<purpose> attributes the contact
  // policy reads ("yes" or "true" is consent).
  function renderConsent(c) {
    var dl = $('customer-consent');
    clear(dl);
    var keys = Object.keys(c.attributes || {}).filter(function (k) { return k.indexOf('consent_') === 0; }).sort();
    keys.forEach(function (k) {
      var v = String(c.attributes[k]);
      var yes = /^(yes|true)$/i.test(v);
      dl.appendChild(el('dt', { text: k.slice('consent_'.length) }));
      dl.appendChild(el('dd', { 'data-consent': String(yes), text: yes ? 'Yes' : 'No (' + v + ')' }));
    });
    if (!keys.length) dl.appendChild(el('dd', { class: 'muted', text: 'none recorded' }));
  }

  // refreshContactPanel shows the customer's do-not-contact entries and
  // the last touch on each channel. A gateway without a contact policy
  // answers 404: the section stays hidden.
  async function refreshContactPanel(id) {
    var base = '/v1/customers/' + encodeURIComponent(id);
    var sups, touches;
    try {
      var res = await Promise.all([api('GET', base + '/suppressions'), api('GET', base + '/contacts?limit=500')]);
      sups = res[0].data || []; touches = res[1].data || [];
    } catch (e) {
      if (!state.tl || state.tl.customerId !== id) return;
      $('customer-contact').hidden = e.status === 404;
      if (e.status !== 404) $('customer-contact-error').textContent = 'Could not load the contact policy: ' + e.message;
      return;
    }
    if (!state.tl || state.tl.customerId !== id) return;
    $('customer-contact').hidden = false;
    $('customer-contact-error').textContent = '';
    var ul = $('customer-suppressions');
    clear(ul);
    sups.forEach(function (s) {
      var scope = (s.channel ? channelInfo(s.channel).name : 'all channels') + ', ' + (s.purpose || 'all purposes');
      ul.appendChild(el('li', { 'data-kind': s.kind, 'data-channel': s.channel || '', 'data-purpose': s.purpose || '',
        text: s.kind + ' ' + s.value + ': ' + scope + (s.reason ? ' (' + s.reason + ')' : '') + (s.source ? ', from ' + s.source : '') }));
    });
    if (!sups.length) ul.appendChild(el('li', { class: 'muted', text: 'none' }));
    // The ledger answers newest first: the first touch per channel is its last.
    var last = new Map();
    touches.forEach(function (t) { if (!last.has(t.channel)) last.set(t.channel, t); });
    var touchList = $('customer-touches');
    clear(touchList);
    last.forEach(function (t, ch) {
      touchList.appendChild(el('li', { 'data-channel': ch, 'data-direction': t.direction }, [
        channelBadge(ch), ' ' + channelInfo(ch).name + ': ' + (t.direction === 'in' ? 'from the customer' : 'to the customer') +
          ', ' + t.purpose + (t.topic ? ' (' + t.topic + ')' : '') + (t.outcome ? ', ' + t.outcome : '') + ', ',
        el('time', { datetime: t.at, text: fmtTime(t.at) })
      ]));
    });
    if (!last.size) touchList.appendChild(el('li', { class: 'muted', text: 'none' }));
  }

  function renderRepSelect() {
    var s = $('assign-select');
    clear(s);
    state.reps.forEach(function (r) {
      s.appendChild(el('option', { value: r.id, text: r.name + (r.role === 'supervisor' ? ' (supervisor)' : '') }));
    });
  }

  // ---------- actions ----------

  async function act(path, body) {
    var tl = state.tl;
    if (!tl) return;
    $('action-error').textContent = '';
    try {
      var res = await api('POST', '/v1/conversations/' + encodeURIComponent(tl.conv.id) + path, body);
      if (res && res.conversation) upsertConversation(res.conversation);
    } catch (e) {
      $('action-error').textContent = e.message;
    }
  }

  function setMode(mode) {
    $('composer').dataset.mode = mode;
    $('mode-reply').setAttribute('aria-pressed', String(mode === 'reply'));
    $('mode-note').setAttribute('aria-pressed', String(mode === 'note'));
    if (mode === 'note') stopTyping();
    renderComposer();
    $('reply-text').focus();
  }

  // send posts a reply (or a note) with a client id: a retry after a
  // network error reuses it, so the message is recorded and sent once.
  async function send(text, note, clientID) {
    var tl = state.tl;
    if (!tl || !text.trim()) return;
    clientID = clientID || newClientID();
    stopTyping();
    var list = $('timeline');
    var li = el('li', {
      class: 'ev pending', 'data-kind': note ? 'note' : 'message_out', 'data-client-id': clientID,
      'data-channel': note ? 'system' : tl.conv.channel
    }, [
      el('div', { class: 'ev-head' }, [el('span', { text: note ? 'Internal note' : 'You' })]),
      el('p', { class: 'ev-text', text: text }),
      el('span', { class: 'ev-state', 'aria-live': 'polite' }),
      el('button', { type: 'button', class: 'retry', hidden: true, text: 'Retry',
        onclick: function () {
          tl.pending.delete(clientID);
          if (li.parentNode) li.parentNode.removeChild(li);
          send(text, note, clientID);
        } })
    ]);
    tl.pending.set(clientID, { li: li, text: text, note: note });
    list.appendChild(li);
    setState(li, 'sending');
    list.scrollTop = list.scrollHeight;
    var convID = tl.conv.id;
    try {
      var res = await api('POST', '/v1/conversations/' + encodeURIComponent(convID) + (note ? '/notes' : '/messages'),
        { text: text, client_id: clientID });
      if (res && res.event) {
        if (!note) tl.deliveries.set(res.event.id, tl.deliveries.get(res.event.id) || 'sent');
        if (tl.pending.has(clientID)) setState(li, 'sent');
        var shown = $('timeline').querySelector('.ev[data-event-id="' + cssEscape(res.event.id) + '"]');
        if (shown && !note) setState(shown, tl.deliveries.get(res.event.id));
        // The socket usually brings the event first; if it did not, read it.
        if (res.event.seq > tl.lastSeq) catchUp(tl);
      }
    } catch (e) {
      if (e.status === 502 || (e.status === 503 && e.code === 'channel_unavailable' && /recorded/.test(e.message))) {
        // Recorded as failed on the timeline; that entry carries Retry.
        tl.pending.delete(clientID);
        if (li.parentNode) li.parentNode.removeChild(li);
        catchUp(tl);
      } else {
        setState(li, 'failed');
        if (e.code === 'contact_refused') {
          var line = el('p', { class: 'refusal', 'data-decision': e.until ? 'defer' : 'deny',
            text: 'Not sent: ' + refusalText(e.until ? 'defer' : 'deny', e.reasons, e.until) });
          var old = li.querySelector('.refusal');
          if (old) li.removeChild(old);
          li.insertBefore(line, li.querySelector('.retry'));
        }
      }
      $('action-error').textContent = e.message;
    }
  }

  // ---------- typing ----------

  function onTyping(f) {
    if (!state.tl || f.customer_id !== state.tl.customerId) return;
    if (!f.on) { hideTyping(); return; }
    var t = $('typing-indicator');
    t.textContent = (f.from === 'customer' ? 'Customer' : (f.rep_name || authorLabel(f.from))) + ' is typing…';
    t.dataset.on = 'true';
    t.dataset.from = f.from;
    t.hidden = false;
    clearTimeout(state.typingShownTimer);
    state.typingShownTimer = setTimeout(hideTyping, state.typingTTL);
  }

  function hideTyping() {
    clearTimeout(state.typingShownTimer);
    var t = $('typing-indicator');
    t.hidden = true;
    t.dataset.on = 'false';
    t.textContent = '';
  }

  function typed() {
    var tl = state.tl;
    if (!tl || $('composer').dataset.mode !== 'reply') return;
    var now = Date.now();
    if (!$('reply-text').value) { stopTyping(); return; }
    if (state.typingTo !== tl.customerId || now - state.lastTypingSent > TYPING_REPEAT_MS) {
      state.typingTo = tl.customerId;
      state.lastTypingSent = now;
      wsSend({ type: 'typing', customer_id: tl.customerId, on: true });
    }
    clearTimeout(state.typingOffTimer);
    state.typingOffTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
  }

  function stopTyping() {
    clearTimeout(state.typingOffTimer);
    if (state.typingTo) {
      wsSend({ type: 'typing', customer_id: state.typingTo, on: false });
      state.typingTo = null;
      state.lastTypingSent = 0;
    }
  }

  // ---------- wiring ----------

  function listKeys(e) {
    if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp' && e.key !== 'Home' && e.key !== 'End') return;
    var buttons = Array.prototype.slice.call(document.querySelectorAll('#conversation-list .conv-open'));
    if (!buttons.length) return;
    var i = buttons.indexOf(document.activeElement);
    if (e.key === 'ArrowDown') i = Math.min(buttons.length - 1, i + 1);
    else if (e.key === 'ArrowUp') i = Math.max(0, i - 1);
    else if (e.key === 'Home') i = 0;
    else i = buttons.length - 1;
    buttons[i].focus();
    e.preventDefault();
  }

  function init() {
    $('signin-form').addEventListener('submit', signIn);
    $('signout').addEventListener('click', function () { signOut(''); });
    $('sound-toggle').addEventListener('click', function () {
      state.sound = !state.sound;
      unlockAudio();
      this.setAttribute('aria-pressed', String(state.sound));
      this.textContent = state.sound ? 'Sound on' : 'Sound off';
    });
    Array.prototype.forEach.call(document.querySelectorAll('#filter-scope button'), function (b) {
      b.addEventListener('click', function () { setFilter({ scope: b.dataset.scope }); });
    });
    $('filter-channel').addEventListener('change', function () { setFilter({ channel: this.value }); });
    $('filter-status').addEventListener('change', function () { setFilter({ status: this.value }); });
    $('list-more').addEventListener('click', loadMore);
    $('conversation-list').addEventListener('keydown', listKeys);
    $('timeline-earlier').addEventListener('click', loadEarlier);
    $('take').addEventListener('click', function () { if (state.me) act('/assign', { assignee: state.me.id }); });
    $('assign-submit').addEventListener('click', function () { act('/assign', { assignee: $('assign-select').value }); });
    $('unassign').addEventListener('click', function () { act('/assign', { assignee: '' }); });
    $('resolve').addEventListener('click', function () { act('/resolve'); });
    $('reopen').addEventListener('click', function () { act('/reopen'); });
    $('offer-accept').addEventListener('click', function () { act('/accept'); });
    $('offer-decline').addEventListener('click', function () { act('/decline'); });
    $('mode-reply').addEventListener('click', function () { setMode('reply'); });
    $('mode-note').addEventListener('click', function () { setMode('note'); });
    $('composer').addEventListener('submit', function (e) {
      e.preventDefault();
      var t = $('reply-text');
      var text = t.value;
      if (!text.trim() || t.disabled) return;
      t.value = '';
      var note = $('composer').dataset.mode === 'note';
      send(text, note);
      // A note is a one-off: what is typed next is a reply again, never
      // silently a second note.
      if (note) setMode('reply');
      t.focus();
    });
    $('reply-text').addEventListener('keydown', function (e) {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        $('composer').requestSubmit();
      } else if (e.key === 'Escape') {
        var cur = document.querySelector('.conv[aria-current="true"] .conv-open');
        if (cur) cur.focus();
      }
    });
    $('reply-text').addEventListener('input', typed);
    $('reply-text').addEventListener('blur', stopTyping);
    window.addEventListener('focus', stopFlash);
    document.addEventListener('visibilitychange', function () { if (!document.hidden) stopFlash(); });
    document.addEventListener('pointerdown', unlockAudio, { once: true });
    document.addEventListener('keydown', unlockAudio, { once: true });

    state.token = sessionStorage.getItem(TOKEN_KEY);
    if (state.token) start();
    else {
      $('signin').hidden = false;
      $('signin-token').focus();
    }
  }

  // The hooks tools.js (canned responses, search, contact details,
  // snooze, rep state) and dialer.js (api, el, clear) build on; nothing
  // else is shared.
  window.OmnigateInbox = {
    api: api, el: el, clear: clear, state: state, repName: repName, customerName: customerName,
    selectConversation: selectConversation, refreshCustomer: refreshCustomer, act: act, newClientID: newClientID,
    // setPaused stops (or restarts) following new work in the list while
    // the rep is away or on a break.
    setPaused: function (paused) {
      if (state.paused === paused) return;
      state.paused = paused;
      if (state.wsReady) sendView();
    }
  };

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
