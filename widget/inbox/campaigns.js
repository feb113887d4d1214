// Omnigate inbox: the supervisors' campaigns page (supervisors and
// admins; a rep's token gets 403 from /v1/campaigns and never sees it).
// List, create from a segment or a CSV of numbers, trial results,
// approve or reject, start / pause / resume / stop, and live progress
// polled from GET /v1/campaigns/{id}/progress. Helpers from dialer.js.
//
// Safety: text from the API is only put in the page with textContent.
(function () {
  'use strict';

  var D = window.OmnigateDialer;
  var el = D.el, clear = D.clear, api = D.api;
  var POLL_MS = 2000;

  var page = { panel: null, button: null, selected: null, timer: null };

  function panel() {
    if (page.panel) return page.panel;
    page.panel = el('section', { id: 'campaigns', class: 'campaigns', 'aria-label': 'Campaigns', hidden: true }, [
      el('header', { class: 'campaigns-head' }, [
        el('h2', { text: 'Campaigns' }),
        el('button', { type: 'button', id: 'campaign-new', text: 'New campaign', onclick: showCreate }),
        el('button', { type: 'button', text: 'Close', onclick: toggle })
      ]),
      el('div', { class: 'campaigns-body' }, [
        el('ul', { id: 'campaign-list', class: 'campaign-list', 'aria-label': 'Campaigns' }),
        el('div', { id: 'campaign-detail', class: 'campaign-detail' })
      ]),
      el('p', { id: 'campaigns-error', class: 'error', role: 'alert' })
    ]);
    document.getElementById('app').appendChild(page.panel);
    return page.panel;
  }

  function toggle() {
    var p = panel();
    p.hidden = !p.hidden;
    page.button.setAttribute('aria-pressed', String(!p.hidden));
    if (p.hidden) { clearTimeout(page.timer); return; }
    loadList();
    if (page.selected) showCampaign(page.selected);
  }

  function fail(e) { document.getElementById('campaigns-error').textContent = e.message || String(e); }

  async function loadList() {
    try {
      var got = await api('GET', '/v1/campaigns');
      var list = document.getElementById('campaign-list');
      clear(list);
      (got.data || []).forEach(function (c) {
        var id = c.spec.id;
        list.appendChild(el('li', { class: 'campaign-item', 'aria-current': String(id === page.selected) }, [
          el('button', { type: 'button', onclick: function () { showCampaign(id); } }, [
            el('strong', { text: c.spec.name || id }), ' ',
            el('span', { class: 'badge', 'data-state': c.state, text: words(c.state) }), ' ',
            el('span', { class: 'muted', text: c.spec.mode || 'progressive' })
          ])
        ]));
      });
      if (!(got.data || []).length) list.appendChild(el('li', { class: 'muted', text: 'No campaigns yet.' }));
    } catch (e) { fail(e); }
  }

  // ---------- one campaign ----------

  // What a supervisor may do in each of the campaign's states (package
  // dialer's State).
  var ACTIONS = {
    created: ['start', 'stop'], trial: ['pause', 'stop'], trial_done: ['approve', 'reject', 'stop'],
    running: ['pause', 'stop'], paused: ['resume', 'stop']
  };

  function words(s) { return String(s || '').replace(/_/g, ' '); }

  async function showCampaign(id) {
    page.selected = id;
    clearTimeout(page.timer);
    var d = document.getElementById('campaign-detail');
    try {
      var c = await api('GET', '/v1/campaigns/' + encodeURIComponent(id));
      var s = c.spec;
      clear(d);
      d.appendChild(el('h3', { text: s.name || s.id }));
      d.appendChild(fields([
        ['State', words(c.state) + (c.reject_reason ? ' (' + c.reject_reason + ')' : '')], ['Mode', s.mode || 'progressive'],
        ['Purpose', s.purpose], ['Customers', c.audience], ['Ring timeout', s.ring_timeout || '25s'],
        ['Abandon target', pct(s.abandon_target || 0.03)],
        ['Trial sample', s.trial ? pct(s.trial.sample) + ' (' + (c.trial_size || 0) + ' customers)' : 'none']
      ]));
      var actions = el('div', { class: 'actions' });
      (ACTIONS[c.state] || []).forEach(function (a) {
        actions.appendChild(el('button', { type: 'button', class: a === 'approve' || a === 'start' ? 'primary' : '', text: a,
          onclick: function () { act(s.id, a); } }));
      });
      d.appendChild(actions);
      d.appendChild(el('div', { id: 'campaign-trial' }));
      d.appendChild(el('div', { id: 'campaign-progress', 'aria-live': 'polite' }));
      await loadList();
      pollProgress(s.id);
    } catch (e) { fail(e); }
  }

  async function act(id, what) {
    var body = {};
    if (what === 'reject') {
      var reason = window.prompt('Why is the trial rejected?');
      if (!reason) return;
      body = { reason: reason };
    }
    try {
      await api('POST', '/v1/campaigns/' + encodeURIComponent(id) + '/' + what, body);
      fail('');
      showCampaign(id);
    } catch (e) { fail(e); }
  }

  async function pollProgress(id) {
    if (page.selected !== id || page.panel.hidden) return;
    try {
      var p = await api('GET', '/v1/campaigns/' + encodeURIComponent(id) + '/progress');
      renderProgress(p);
      var t = await api('GET', '/v1/campaigns/' + encodeURIComponent(id) + '/trial').catch(function () { return null; });
      renderTrial(t);
    } catch (e) { fail(e); }
    page.timer = setTimeout(function () { pollProgress(id); }, POLL_MS);
  }

  function renderProgress(p) {
    var box = document.getElementById('campaign-progress');
    if (!box) return;
    clear(box);
    box.appendChild(el('h4', { text: 'Progress' }));
    var cap = p.abandon_target || 0.03;
    var rate = Math.max(p.abandon_rate || 0, p.abandon_rate_30d || 0);
    box.appendChild(fields([
      ['Dialed', p.dialed], ['Answered', p.answered], ['Abandoned', p.abandoned], ['Machines', p.machine],
      ['Skipped', p.skipped], ['Remaining', p.remaining + ' of ' + p.customers],
      ['Dial level', p.running ? p.dial_level.toFixed(2) + ' (' + p.lines + ' lines, ' + p.ready + ' reps ready)' : 'not dialing on this node'],
      ['Abandonment', pct(p.abandon_rate) + ' of answered (30 days: ' + pct(p.abandon_rate_30d) + '), cap ' + pct(cap) +
        (p.guarded ? ', at the cap: dialing progressively' : '')]
    ]));
    var meter = el('meter', { min: '0', max: String(cap * 2), low: String(cap * 0.8), high: String(cap), optimum: '0',
      value: String(Math.min(rate, cap * 2)), 'aria-label': 'Abandonment against the cap' });
    box.appendChild(meter);
  }

  function renderTrial(t) {
    var box = document.getElementById('campaign-trial');
    if (!box) return;
    clear(box);
    if (!t || !t.sample) return;
    box.appendChild(el('h4', { text: 'Trial (' + t.sample + ' customers)' }));
    var rows = [['Concluded', t.concluded + ' of ' + t.sample], ['Dialed', t.dialed], ['Connect rate', pct(t.connect_rate)],
      ['Abandonment', pct(t.abandon_rate)], ['Average talk', Math.round((t.average_talk_ns || 0) / 1e9) + ' s']];
    Object.keys(t.rep_outcomes || {}).forEach(function (k) { rows.push(['Marked ' + words(k), t.rep_outcomes[k]]); });
    Object.keys(t.strata || {}).forEach(function (k) { rows.push(['Stratum ' + k, t.strata[k]]); });
    box.appendChild(fields(rows));
  }

  function pct(x) { return typeof x === 'number' ? (x * 100).toFixed(1) + '%' : ''; }

  function fields(rows) {
    var dl = el('dl', { class: 'fields' });
    rows.forEach(function (r) {
      if (r[1] === undefined || r[1] === null || r[1] === '') return;
      dl.appendChild(el('dt', { text: r[0] }));
      dl.appendChild(el('dd', { text: String(r[1]) }));
    });
    return dl;
  }

  // ---------- create ----------

  function input(id, label, attrs) {
    return [el('label', { for: id, text: label }), el('input', Object.assign({ id: id, name: id }, attrs || {}))];
  }

  function showCreate() {
    page.selected = null;
    clearTimeout(page.timer);
    var d = document.getElementById('campaign-detail');
    clear(d);
    var mode = el('select', { id: 'cf-mode' }, ['preview', 'progressive', 'predictive'].map(function (m) { return el('option', { value: m, text: m }); }));
    var source = el('select', { id: 'cf-source' }, [el('option', { value: 'segment', text: 'a segment' }), el('option', { value: 'csv', text: 'a CSV of numbers' })]);
    var csv = el('textarea', { id: 'cf-csv', rows: '6', placeholder: 'phone,name\n+8613800000001,Wang Wei' });
    var file = el('input', { id: 'cf-file', type: 'file', accept: '.csv,text/csv' });
    file.addEventListener('change', function () {
      if (file.files[0]) file.files[0].text().then(function (s) { csv.value = s; });
    });
    var seg = el('div', { class: 'cf-grid' }, [].concat(
      input('cf-tiers', 'Tiers (A,B,…)'), input('cf-tags', 'Tags'), input('cf-owner', 'Owner (rep id)'),
      [el('label', { for: 'cf-vip', text: 'VIP only' }), el('input', { id: 'cf-vip', type: 'checkbox' })]));
    var csvBox = el('div', { class: 'cf-grid', hidden: true }, [el('label', { for: 'cf-csv', text: 'CSV' }), csv, el('label', { for: 'cf-file', text: 'or a file' }), file]);
    source.addEventListener('change', function () { seg.hidden = source.value !== 'segment'; csvBox.hidden = source.value !== 'csv'; });
    var err = el('pre', { class: 'error', role: 'alert' });
    var form = el('form', { class: 'campaign-form' }, [
      el('h3', { text: 'New campaign' }),
      el('div', { class: 'cf-grid' }, [].concat(
        input('cf-id', 'Id (a-z, 0-9, - _)', { required: true, pattern: '[a-z0-9_-]{1,64}' }), input('cf-name', 'Name'),
        [el('label', { for: 'cf-mode', text: 'Mode' }), mode],
        input('cf-purpose', 'Purpose', { value: 'sales' }), input('cf-skills', 'Skills (comma)'), input('cf-reps', 'Reps (comma)'),
        input('cf-ring', 'Ring timeout (s)', { type: 'number', min: '15', value: '25' }),
        input('cf-abandon', 'Abandon target (%)', { type: 'number', min: '0', max: '3', step: '0.1', value: '3' }),
        input('cf-trial', 'Trial sample (%, 0 for none)', { type: 'number', min: '0', max: '5', value: '4' }),
        input('cf-callerid', 'Caller id (E.164)'),
        [el('label', { for: 'cf-source', text: 'Customers from' }), source])),
      seg, csvBox,
      el('button', { type: 'submit', class: 'primary', text: 'Create' }), err
    ]);
    form.addEventListener('submit', async function (ev) {
      ev.preventDefault();
      var v = function (id) { return document.getElementById(id).value.trim(); };
      var list = function (id) { return v(id) ? v(id).split(',').map(function (x) { return x.trim(); }).filter(Boolean) : []; };
      var skills = {};
      list('cf-skills').forEach(function (k) { skills[k] = 1; });
      // The body is package dialer's Spec; the server refuses unknown keys.
      var spec = {
        id: v('cf-id'), name: v('cf-name'), mode: mode.value, purpose: v('cf-purpose'), caller_id: v('cf-callerid'),
        ring_timeout: v('cf-ring') + 's', abandon_target: Number(v('cf-abandon')) / 100, audience: {}
      };
      if (list('cf-skills').length) spec.skills = skills;
      if (list('cf-reps').length) spec.reps = list('cf-reps');
      if (Number(v('cf-trial')) > 0) spec.trial = { sample: Number(v('cf-trial')) / 100 };
      if (source.value === 'csv') {
        spec.audience.csv = csv.value;
      } else {
        var segment = {};
        if (list('cf-tiers').length) segment.tiers = list('cf-tiers');
        if (list('cf-tags').length) segment.tags = list('cf-tags');
        if (v('cf-owner')) segment.owner = v('cf-owner');
        if (document.getElementById('cf-vip').checked) segment.vip = true;
        spec.audience.segment = segment;
      }
      try {
        var c = await api('POST', '/v1/campaigns', spec);
        showCampaign(c.spec.id);
      } catch (e) { err.textContent = e.message; } // a 400 lists every problem, one per line
    });
    d.appendChild(form);
  }

  function start() {
    api('GET', '/v1/campaigns').then(function () {
      page.button = D.topButton('campaigns-toggle', 'Campaigns', toggle);
    }, function () { /* a rep (403) or no dialer (404): no page */ });
  }

  function stop() {
    clearTimeout(page.timer);
    if (page.panel) page.panel.hidden = true;
    if (page.button) page.button.hidden = true;
  }

  D.onSession(start, stop);
})();
