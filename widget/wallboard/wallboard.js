/*
 * Omnigate wallboard: the supervisors' live view. Plain ES2017, no
 * dependencies, no build step; the charts are SVG drawn here.
 *
 * It signs in with the inbox's token (the same sessionStorage key, so a
 * supervisor signed into the inbox in this tab is signed in here), opens
 * the inbox socket (/inbox/ws; the token in the first frame, never in
 * the URL) and renders each {"type":"wallboard"} frame, which the server
 * pushes to supervisor and admin sockets when something changed, at most
 * once a second. Times in state tick here between frames.
 */
(function () {
  'use strict';
  var TOKEN_KEY = 'omnigate.inbox.token';
  var SVGNS = 'http://www.w3.org/2000/svg';
  // skew is the browser's clock minus the server's, from each frame's at.
  var state = { token: null, ws: null, last: null, skew: 0, backoff: 0, pingTimer: null };

  function $(id) { return document.getElementById(id); }
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function svg(tag, attrs) {
    var e = document.createElementNS(SVGNS, tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    return e;
  }
  function duration(s) {
    s = Math.max(0, Math.floor(s));
    var h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60), r = s % 60;
    var mm = (h ? String(m).padStart(2, '0') : String(m)) + ':' + String(r).padStart(2, '0');
    return h ? h + ':' + mm : mm;
  }
  function pct(v) { return v === null || v === undefined ? '–' : Math.round(v * 100) + '%'; }

  function signIn(ev) {
    ev.preventDefault();
    var t = $('signin-token').value.trim();
    if (!t) { $('signin-error').textContent = 'Enter your token.'; return; }
    sessionStorage.setItem(TOKEN_KEY, t);
    $('signin-token').value = '';
    start(t);
  }
  function signOut(msg) {
    sessionStorage.removeItem(TOKEN_KEY);
    state.token = null;
    if (state.ws) { state.ws.onclose = null; state.ws.close(); state.ws = null; }
    clearInterval(state.pingTimer);
    $('board').hidden = true;
    $('signin').hidden = false;
    $('signin-error').textContent = msg || '';
  }
  function start(token) {
    state.token = token;
    $('signin').hidden = true;
    $('board').hidden = false;
    connect();
  }

  function connect() {
    var url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/inbox/ws?view=wallboard';
    var ws = new WebSocket(url);
    state.ws = ws;
    ws.onopen = function () { ws.send(JSON.stringify({ type: 'auth', token: state.token })); };
    ws.onmessage = function (m) {
      var f;
      try { f = JSON.parse(m.data); } catch (e) { return; }
      if (f.type === 'ready') onReady(f);
      else if (f.type === 'wallboard') {
        state.skew = Date.now() - Date.parse(f.at);
        state.last = f.wallboard;
        render();
      }
    };
    ws.onclose = function (e) {
      clearInterval(state.pingTimer);
      setConn(false, 'Offline');
      if (e.code === 4501) { signOut('That token is not known.'); return; }
      if (e.code >= 4500 && e.code < 5000) { signOut('This token cannot open the wallboard.'); return; }
      state.backoff = Math.min(10000, state.backoff ? state.backoff * 2 : 500);
      setTimeout(function () { if (state.token) connect(); }, state.backoff);
    };
  }
  function onReady(f) {
    state.backoff = 0;
    if (f.rep.role !== 'supervisor' && f.rep.role !== 'admin') {
      signOut('The wallboard is for supervisors and admins.');
      return;
    }
    $('me').textContent = f.rep.name + ' (' + f.rep.role + ')';
    setConn(true, 'Live');
    clearInterval(state.pingTimer);
    state.pingTimer = setInterval(function () {
      if (state.ws && state.ws.readyState === 1) state.ws.send(JSON.stringify({ type: 'ping' }));
    }, 20000);
  }
  function setConn(on, text) {
    var c = $('conn');
    c.textContent = text;
    c.className = 'conn' + (on ? ' online' : '');
  }

  function render() {
    var w = state.last;
    if (!w) return;
    renderAlerts(w.alerts || []);
    renderQueues(w.queues || []);
    renderReps(w.reps || [], w.by_state || {});
    renderCharts(w.day || [], w.queues || []);
  }
  function renderAlerts(alerts) {
    var box = $('alerts');
    box.textContent = '';
    alerts.forEach(function (a) { box.appendChild(el('div', { 'class': 'alert', 'data-kind': a.kind }, a.message)); });
  }
  function renderQueues(queues) {
    var body = $('queues').tBodies[0];
    body.textContent = '';
    queues.forEach(function (q) {
      var tr = el('tr', { 'data-queue': q.name });
      var under = q.service_level !== null && q.service_level !== undefined && q.service_level < q.goal;
      tr.appendChild(el('td', {}, q.name));
      tr.appendChild(el('td', { 'class': 'num waiting' }, String(q.waiting)));
      var longest = el('td', { 'class': 'num longest' }, '–');
      if (q.oldest_since) longest.dataset.since = q.oldest_since;
      tr.appendChild(longest);
      tr.appendChild(el('td', { 'class': 'num sl ' + (under ? 'bad' : 'good') }, pct(q.service_level)));
      tr.appendChild(el('td', {}, Math.round(q.goal * 100) + '% in ' + q.target_s + 's'));
      tr.appendChild(el('td', { 'class': 'num offered' }, String(q.offered)));
      tr.appendChild(el('td', { 'class': 'num answered' }, String(q.answered)));
      tr.appendChild(el('td', { 'class': 'num abandoned' }, String(q.abandoned)));
      tr.appendChild(el('td', { 'class': 'num' }, q.asa_s === null || q.asa_s === undefined ? '–' : q.asa_s.toFixed(1) + 's'));
      body.appendChild(tr);
    });
  }
  function renderReps(reps, byState) {
    $('bystate').textContent = Object.keys(byState).sort().map(function (k) { return k + ' ' + byState[k]; }).join(' · ');
    var body = $('reps').tBodies[0];
    body.textContent = '';
    reps.forEach(function (r) {
      var tr = el('tr', { 'data-rep': r.id });
      tr.appendChild(el('td', { title: r.id }, r.name || r.id));
      var st = el('td');
      st.appendChild(el('span', { 'class': 'state ' + r.presence }, r.presence.replace(/_/g, ' ') + (r.reason ? ' · ' + r.reason : '')));
      tr.appendChild(st);
      tr.appendChild(el('td', { 'class': 'num since', 'data-since': r.since }));
      tr.appendChild(el('td', { 'class': 'num' }, String(r.active)));
      body.appendChild(tr);
    });
    tick();
  }
  // Times in state and the longest waits count up here, on the server's
  // clock, every second; frames come only when something changed.
  function tick() {
    var now = Date.now() - state.skew;
    document.querySelectorAll('#reps td.since, #queues td.longest').forEach(function (td) {
      if (td.dataset.since) td.textContent = duration((now - Date.parse(td.dataset.since)) / 1000);
    });
  }
  setInterval(tick, 1000);

  // renderCharts draws today's slots as bars (offered, answered,
  // abandoned) and the service level as a line against the goal.
  function renderCharts(day, queues) {
    var W = 480, H = 160, P = 24, SLOTS = 96;
    var bw = (W - 2 * P) / SLOTS;
    var midnight = day.length ? Date.parse(day[0].start.slice(0, 10) + 'T00:00:00Z') : 0;
    var xOf = function (s) { return P + Math.floor((Date.parse(s.start) - midnight) / 900000) * bw; };
    var max = 1;
    day.forEach(function (s) { max = Math.max(max, s.offered, s.answered); });
    var axes = function (g, label) {
      g.appendChild(svg('line', { x1: P, y1: H - P, x2: W - P, y2: H - P, stroke: '#d0d7de' }));
      [0, 6, 12, 18, 24].forEach(function (h) {
        var t = svg('text', { x: P + h * 4 * bw - 12, y: H - 8 });
        t.textContent = String(h).padStart(2, '0') + ':00';
        g.appendChild(t);
      });
      var l = svg('text', { x: 2, y: P });
      l.textContent = label;
      g.appendChild(l);
    };
    var bars = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, width: W, height: H, role: 'img', 'aria-label': 'contacts today' });
    axes(bars, String(max));
    var y = function (v) { return (H - P) - v / max * (H - 2 * P); };
    day.forEach(function (s) {
      [['offered', '#8c959f'], ['answered', '#1a7f37'], ['abandoned', '#cf222e']].forEach(function (k, j) {
        var v = s[k[0]];
        bars.appendChild(svg('rect', { x: xOf(s) + j * bw / 3, y: y(v), width: Math.max(bw / 3, 1), height: (H - P) - y(v), fill: k[1] }));
      });
    });
    $('chart-contacts').replaceChildren(bars);

    var line = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, width: W, height: H, role: 'img', 'aria-label': 'service level today' });
    axes(line, '100%');
    var ys = function (v) { return (H - P) - v * (H - 2 * P); };
    var goal = queues.length ? queues[0].goal : 0.8;
    line.appendChild(svg('line', { x1: P, y1: ys(goal), x2: W - P, y2: ys(goal), stroke: '#cf222e', 'stroke-dasharray': '4 3' }));
    var pts = [];
    day.forEach(function (s) {
      if (s.service_level === null || s.service_level === undefined) return;
      var x = xOf(s) + bw / 2, yv = ys(s.service_level);
      pts.push(x + ',' + yv);
      line.appendChild(svg('circle', { cx: x, cy: yv, r: 3, fill: '#0969da' }));
    });
    if (pts.length) line.appendChild(svg('polyline', { points: pts.join(' '), fill: 'none', stroke: '#0969da', 'stroke-width': 2 }));
    $('chart-sl').replaceChildren(line);
  }

  $('signin').addEventListener('submit', signIn);
  $('signout').addEventListener('click', function () { signOut(''); });
  var saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) start(saved); else { $('signin').hidden = false; $('signin-token').focus(); }
})();
