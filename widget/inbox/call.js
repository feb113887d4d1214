// Omnigate inbox: inbound calls on the rep's side. Plain JavaScript, no
// build step; it uses dialer.js's helpers (window.OmnigateDialer) and
// lives apart from inbox.js.
//
// It keeps its own socket to /inbox/ws (docs/inbox-protocol.md), which
// carries the rep's own and offered conversations, and looks for the
// router offering (or assigning) a voice conversation to this rep: the
// rep's phone is ringing then (channels/voice rings it), so a card shows
// the caller and the customer's latest timeline, and the socket watches
// the customer until the card goes. The call
// events (channels/voice CallEvent: step ringing, answered, missed,
// ended) move the card on: on the call, then, after the hangup, the
// outcome form: a note on the conversation and Resolve, which ends the
// call's task; the router's voice wrap-up runs from there, so the
// wrap-up counts against the rep's capacity until the form is done.
//
// Safety: text from the API and the socket only reaches the page through
// textContent (el's text); numbers arrive masked for reps.
(function () {
  'use strict';

  var TOKEN_KEY = 'omnigate.inbox.token';
  var HISTORY = 15; // timeline events shown on the ringing card
  var D = window.OmnigateDialer;
  var el = D.el, clear = D.clear, api = D.api;

  var s = { ws: null, me: '', ping: null, retry: null, card: null, call: null };

  function card() {
    if (s.card) return s.card;
    s.card = el('section', { id: 'call-card', class: 'dialer-card call-card', 'aria-label': 'Inbound call', 'aria-live': 'assertive', hidden: true });
    document.getElementById('app').appendChild(s.card);
    return s.card;
  }

  function connect() {
    var url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/inbox/ws';
    var ws = new WebSocket(url);
    s.ws = ws;
    ws.onopen = function () {
      // The token goes in the first frame, never in the URL.
      ws.send(JSON.stringify({ type: 'auth', token: sessionStorage.getItem(TOKEN_KEY) }));
    };
    ws.onmessage = function (m) {
      if (s.ws !== ws) return;
      var f;
      try { f = JSON.parse(m.data); } catch (e) { return; }
      onFrame(f);
    };
    ws.onclose = function (e) {
      if (s.ws !== ws) return;
      s.ws = null;
      clearInterval(s.ping);
      // 4500-4999: don't reconnect (signed out, refused).
      if (e.code >= 4500 && e.code < 5000) return;
      s.retry = setTimeout(connect, 2000);
    };
  }

  function onFrame(f) {
    if (f.type === 'ready') {
      s.me = f.rep && f.rep.id;
      clearInterval(s.ping);
      s.ping = setInterval(function () { send({ type: 'ping' }); }, 20000);
      return;
    }
    if (f.type !== 'event' || !f.event) return;
    var ev = f.event, p = ev.payload || {};
    var mine = p.channel === 'voice' && p.rep_id === s.me;
    if ((ev.kind === 'offer' || ev.kind === 'assignment') && mine && (p.kind === 'offer' || p.kind === 'assign')) {
      ring(ev);
    } else if (ev.kind === 'offer' && mine && s.call && s.call.conv === ev.conversation_id && s.call.state === 'ringing') {
      hide(); // the offer expired or was withdrawn: the phone stopped ringing
    } else if (ev.kind === 'call' && p.direction === 'in' && s.call && s.call.conv === ev.conversation_id) {
      step(p);
    }
  }

  // ring shows the caller while the phone rings: who, and what happened
  // with them lately.
  async function ring(ev) {
    if (s.call && s.call.state !== 'ringing' && s.call.conv !== ev.conversation_id) return; // busy with another call
    s.call = { conv: ev.conversation_id, customer: ev.customer_id, state: 'ringing', since: Date.now(), name: '', history: [] };
    var call = s.call;
    // The socket carries a conversation's events to its assignee only:
    // watch the caller, so the call's steps before the answer come too.
    send({ type: 'watch', customer_id: ev.customer_id });
    render();
    try {
      var cust = await api('GET', '/v1/customers/' + encodeURIComponent(ev.customer_id));
      var tl = await api('GET', '/v1/customers/' + encodeURIComponent(ev.customer_id) + '/timeline?after=' +
        Math.max(0, ev.seq - HISTORY) + '&limit=' + HISTORY);
      if (s.call !== call) return;
      call.name = (cust.name || cust.id) + (cust.vip ? ' · VIP' : '') + (cust.tier ? ' · tier ' + cust.tier : '');
      call.history = tl.data || [];
      render();
    } catch (e) { /* the card still shows the call */ }
  }

  function step(p) {
    var c = s.call;
    if (p.step === 'ringing' && p.rep === s.me) c.number = p.number;
    else if (p.step === 'answered' && p.rep === s.me) { c.state = 'talking'; c.since = Date.now(); }
    else if (p.step === 'answered' || p.step === 'missed' && p.rep === s.me) { hide(); return; }
    else if (p.step === 'ended' && c.state === 'talking') { c.state = 'wrapup'; c.end = p; }
    else if (p.step === 'ended') { hide(); return; }
    render();
  }

  function send(f) {
    if (s.ws && s.ws.readyState === 1) s.ws.send(JSON.stringify(f));
  }

  function hide() {
    if (s.call) send({ type: 'watch', customer_id: '' });
    s.call = null;
    if (s.card) { s.card.hidden = true; clear(s.card); }
  }

  function line(ev) {
    var p = ev.payload || {};
    var what = ev.kind === 'call' ? 'call ' + (p.direction === 'in' ? 'in' : 'out') + ': ' + (p.step || '') + (p.outcome ? ' (' + p.outcome + ')' : '')
      : ev.kind === 'message_in' || ev.kind === 'message_out' || ev.kind === 'note' ? ev.kind.replace('_', ' ') + ': ' + (p.text || '')
      : ev.kind.replace('_', ' ');
    return el('li', { text: new Date(ev.time).toLocaleString() + ' · ' + ev.channel + ' · ' + what });
  }

  function render() {
    var c = card(), call = s.call;
    clear(c);
    if (!call) { c.hidden = true; return; }
    var title = { ringing: 'Incoming call', talking: 'On a call', wrapup: 'Call ended' }[call.state];
    c.appendChild(el('h2', { text: title }));
    c.appendChild(el('p', { class: 'dialer-who' }, [call.name || 'Caller', ' ', el('span', { class: 'dialer-phone', text: call.number || '' })]));
    if (call.state === 'ringing') {
      c.appendChild(el('p', { class: 'muted', text: 'Your phone is ringing: answer it to take the call.' }));
      if (call.history.length) c.appendChild(el('ul', { class: 'call-history' }, call.history.map(line)));
    } else if (call.state === 'talking') {
      c.appendChild(el('p', { class: 'muted', text: 'Since ' + new Date(call.since).toLocaleTimeString() }));
    } else {
      var e = call.end || {};
      c.appendChild(el('p', { class: 'muted', text: 'Talk ' + Math.round((e.talk_ms || 0) / 1000) + ' s · hung up by ' + (e.hung_up_by || '?') }));
      c.appendChild(outcomeForm(call));
    }
    c.hidden = false;
  }

  // outcomeForm records the call's outcome as a note and resolves the
  // conversation: the call's task ends and the rep's wrap-up starts.
  function outcomeForm(call) {
    var outcomes = ['resolved', 'follow_up', 'callback', 'wrong_number'];
    var select = el('select', { id: 'call-outcome' }, outcomes.map(function (o) { return el('option', { value: o, text: o.replace(/_/g, ' ') }); }));
    var note = el('textarea', { id: 'call-note', rows: '2' });
    var resolve = el('input', { id: 'call-resolve', type: 'checkbox', checked: true });
    var err = el('p', { class: 'error', role: 'alert' });
    var form = el('form', { class: 'dialer-outcome' }, [
      el('label', { for: 'call-outcome', text: 'Outcome' }), select,
      el('label', { for: 'call-note', text: 'Note' }), note,
      el('label', {}, [resolve, ' Resolve the conversation (starts wrap-up)']),
      el('button', { type: 'submit', class: 'primary', text: 'Save' }), err
    ]);
    form.addEventListener('submit', async function (ev) {
      ev.preventDefault();
      var id = encodeURIComponent(call.conv);
      try {
        await api('POST', '/v1/conversations/' + id + '/notes', {
          text: 'Call outcome: ' + select.value.replace(/_/g, ' ') + (note.value ? ' — ' + note.value : ''),
          client_id: 'call-outcome-' + call.conv + '-' + call.since
        });
        if (resolve.checked) await api('POST', '/v1/conversations/' + id + '/resolve', {});
        hide();
      } catch (e) {
        err.textContent = e.message;
      }
    });
    return form;
  }

  function start() { if (!s.ws) connect(); }

  function stop() {
    clearTimeout(s.retry);
    clearInterval(s.ping);
    var ws = s.ws;
    s.ws = null;
    if (ws) ws.close(1000);
    hide();
  }

  D.onSession(start, stop);
})();
