// Omnigate inbox tools: canned responses ("/" in the reply box), customer
// search, contact details, pending with snooze, and the rep's state.
// Built on the hooks inbox.js exposes (window.OmnigateInbox); like it,
// plain JavaScript, every outside text put in the page as text only.
(function () {
  'use strict';

  var $ = function (id) { return document.getElementById(id); };
  var app; // window.OmnigateInbox, once inbox.js ran

  // ---------- canned responses ----------

  var canned = { customerId: null, list: [], loading: null, shown: [], active: 0 };

  // loadCanned reads the responses expanded for the open customer; one
  // request per customer opened, again after a change of customer.
  function loadCanned(customerId) {
    if (canned.customerId === customerId && canned.loading) return canned.loading;
    canned.customerId = customerId;
    canned.loading = app.api('GET', '/v1/canned-responses?customer_id=' + encodeURIComponent(customerId))
      .then(function (page) { canned.list = page.data || []; return canned.list; },
        function () { canned.list = []; canned.loading = null; return []; });
    return canned.loading;
  }

  // slashQuery is the "/word" being typed at the caret, or null.
  function slashQuery(t) {
    var before = t.value.slice(0, t.selectionStart);
    var m = /(^|\s)\/([a-z0-9_-]*)$/.exec(before);
    return m ? { start: before.length - m[2].length - 1, text: m[2] } : null;
  }

  async function updatePicker() {
    var t = $('reply-text');
    var q = slashQuery(t);
    var tl = app.state.tl;
    if (!q || !tl) { hidePicker(); return; }
    var list = await loadCanned(tl.customerId);
    q = slashQuery(t); // the rep kept typing while the list loaded
    if (!q) { hidePicker(); return; }
    canned.shown = list.filter(function (c) {
      return c.shortcut.indexOf(q.text) === 0 || (c.title || '').toLowerCase().indexOf(q.text) >= 0;
    }).slice(0, 8);
    canned.active = 0;
    renderPicker();
  }

  function renderPicker() {
    var ul = $('canned-picker');
    app.clear(ul);
    if (!canned.shown.length) { hidePicker(); return; }
    canned.shown.forEach(function (c, i) {
      ul.appendChild(app.el('li', {
        role: 'option', id: 'canned-' + i, class: 'canned', 'data-shortcut': c.shortcut, 'data-scope': c.scope,
        'aria-selected': String(i === canned.active),
        onmousedown: function (e) { e.preventDefault(); insertCanned(c); }
      }, [
        app.el('strong', { text: '/' + c.shortcut }), ' ',
        app.el('span', { class: 'canned-title', text: c.title || '' }), ' ',
        app.el('span', { class: 'canned-text muted', text: c.expanded || c.text })
      ]));
    });
    ul.hidden = false;
    $('reply-text').setAttribute('aria-activedescendant', 'canned-' + canned.active);
  }

  function hidePicker() {
    canned.shown = [];
    $('canned-picker').hidden = true;
    $('reply-text').removeAttribute('aria-activedescendant');
  }

  // insertCanned replaces the "/word" with the response, expanded for the
  // customer, and leaves it to edit before sending.
  function insertCanned(c) {
    var t = $('reply-text');
    var q = slashQuery(t);
    if (!q) return;
    var text = c.expanded || c.text;
    t.value = t.value.slice(0, q.start) + text + t.value.slice(t.selectionStart);
    var caret = q.start + text.length;
    t.setSelectionRange(caret, caret);
    hidePicker();
    t.dispatchEvent(new Event('input'));
    t.focus();
  }

  // pickerKeys runs in the capture phase, before inbox.js's Enter-sends:
  // while the picker is open the arrows move, Enter and Tab insert,
  // Escape closes.
  function pickerKeys(e) {
    if (e.target.id !== 'reply-text' || $('canned-picker').hidden) return;
    var n = canned.shown.length;
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      canned.active = (canned.active + (e.key === 'ArrowDown' ? 1 : n - 1)) % n;
      renderPicker();
    } else if (e.key === 'Enter' || e.key === 'Tab') {
      insertCanned(canned.shown[canned.active]);
      canned.swallow = true; // the key's own character, if a browser still sends it
    } else if (e.key === 'Escape') {
      hidePicker();
    } else {
      return;
    }
    e.preventDefault();
    e.stopPropagation();
  }

  // swallowKey drops the Enter or Tab that picked a response, as a
  // character: some input paths (automation, IMEs) deliver it apart from
  // its keydown.
  function swallowKey(e) {
    if (!canned.swallow || e.target.id !== 'reply-text') return;
    if (e.type === 'keyup') { canned.swallow = false; return; }
    e.preventDefault();
    e.stopPropagation();
  }

  // ---------- customer search ----------

  async function search(e) {
    e.preventDefault();
    var q = $('customer-search').value.trim();
    var ul = $('search-results');
    $('search-error').textContent = '';
    app.clear(ul);
    if (!q) { ul.hidden = true; return; }
    var page;
    try {
      page = await app.api('GET', '/v1/customers?limit=20&q=' + encodeURIComponent(q));
    } catch (err) {
      $('search-error').textContent = err.status === 403 ? 'Phone searches are for supervisors.' : err.message;
      ul.hidden = true;
      return;
    }
    (page.data || []).forEach(function (c) {
      ul.appendChild(app.el('li', { class: 'search-result', 'data-customer-id': c.id }, [
        app.el('button', { type: 'button', onclick: function () { openCustomer(c.id); } }, [
          app.el('span', { text: app.customerName(c) }),
          app.el('span', { class: 'muted', text: (c.tags || []).map(function (t) { return ' #' + t; }).join('') })
        ])
      ]));
    });
    if (!(page.data || []).length) ul.appendChild(app.el('li', { class: 'muted', text: 'No customer found.' }));
    ul.hidden = false;
  }

  // openCustomer opens the customer's latest conversation.
  async function openCustomer(id) {
    try {
      var page = await app.api('GET', '/v1/conversations?limit=1&customer_id=' + encodeURIComponent(id));
      if (!page.data.length) { $('search-error').textContent = 'This customer has no conversation yet.'; return; }
      app.selectConversation(page.data[0].id);
    } catch (err) {
      $('search-error').textContent = err.message;
    }
  }

  // ---------- contact details ----------

  var editing = null; // the customer being edited, as read

  async function editContact() {
    var tl = app.state.tl;
    if (!tl) return;
    var c;
    try { c = await app.api('GET', '/v1/customers/' + encodeURIComponent(tl.customerId)); } catch (e) { return; }
    editing = c;
    var me = app.state.me || {};
    var boss = me.role === 'supervisor' || me.role === 'admin';
    $('contact-name').value = c.name || '';
    $('contact-email').value = (c.attributes || {}).email || '';
    $('contact-tags').value = (c.tags || []).join(', ');
    $('contact-supervisor').hidden = !boss;
    if (boss) {
      var owner = $('contact-owner');
      app.clear(owner);
      owner.appendChild(app.el('option', { value: '', text: 'none' }));
      app.state.reps.forEach(function (r) { owner.appendChild(app.el('option', { value: r.id, text: r.name })); });
      owner.value = c.owner || '';
      $('contact-tier').value = c.tier || '';
      $('contact-vip').checked = !!c.vip;
    }
    $('contact-error').textContent = '';
    $('contact-form').hidden = false;
    $('contact-edit').hidden = true;
    $('contact-name').focus();
  }

  function closeContact() {
    editing = null;
    $('contact-form').hidden = true;
    $('contact-edit').hidden = false;
  }

  // saveContact sends only what changed: PATCH takes name and tags (and,
  // for supervisors, owner, tier and vip); the email is an attribute, an
  // unverified claim, never an identity customers are merged on.
  async function saveContact(e) {
    e.preventDefault();
    var c = editing;
    if (!c) return;
    var patch = {};
    var name = $('contact-name').value.trim();
    if (name !== (c.name || '')) patch.name = name;
    var email = $('contact-email').value.trim().toLowerCase();
    if (email !== ((c.attributes || {}).email || '')) patch.attributes = { email: email };
    var tags = $('contact-tags').value.split(',').map(function (t) { return t.trim(); }).filter(Boolean);
    if (tags.join(',') !== (c.tags || []).join(',')) patch.tags = tags;
    if (!$('contact-supervisor').hidden) {
      if ($('contact-owner').value !== (c.owner || '')) patch.owner = $('contact-owner').value;
      if ($('contact-tier').value !== (c.tier || '')) patch.tier = $('contact-tier').value;
      if ($('contact-vip').checked !== !!c.vip) patch.vip = $('contact-vip').checked;
    }
    if (!Object.keys(patch).length) { closeContact(); return; }
    try {
      await app.api('PATCH', '/v1/customers/' + encodeURIComponent(c.id), patch);
    } catch (err) {
      $('contact-error').textContent = err.message;
      return;
    }
    closeContact();
    app.refreshCustomer(c.id);
  }

  // ---------- pending with snooze ----------

  function snoozeUntil(choice, now) {
    var d = new Date(now);
    switch (choice) {
      case '1h': return new Date(d.getTime() + 3600e3);
      case '4h': return new Date(d.getTime() + 4 * 3600e3);
      case 'week': return new Date(d.getTime() + 7 * 86400e3);
      case 'tomorrow': d.setDate(d.getDate() + 1); d.setHours(9, 0, 0, 0); return d;
    }
    return null;
  }

  function setPending() {
    var until = snoozeUntil($('snooze-select').value, Date.now());
    app.act('/pending', until ? { snooze_until: until.toISOString() } : undefined);
  }

  // ---------- the rep's state ----------

  // The states a rep sets from the inbox. Break needs a reason from
  // GET /v1/break-reasons; a gateway without them answers 404 and the
  // inbox offers no break.
  // After-call work comes with break reasons (the same gateway version).
  var STATES = [['available', 'Available'], ['away', 'Away']];
  var stateBusy = false;

  async function loadStates() {
    var sel = $('rep-state');
    var me = app.state.me;
    if (!me || me.role === 'admin') { sel.hidden = true; return; }
    var reasons = null;
    try { reasons = (await app.api('GET', '/v1/break-reasons')).reasons || []; } catch (e) { /* 404: no breaks */ }
    app.clear(sel);
    STATES.forEach(function (s) { sel.appendChild(app.el('option', { value: s[0], text: s[1] })); });
    if (reasons) sel.appendChild(app.el('option', { value: 'after_call_work', text: 'After-call work' }));
    (reasons || []).forEach(function (r) {
      sel.appendChild(app.el('option', { value: 'break:' + r.code, text: 'Break: ' + r.label }));
    });
    await showState();
  }

  async function showState() {
    var me = app.state.me;
    var sel = $('rep-state');
    try {
      var reps = (await app.api('GET', '/v1/reps')).data || [];
      var mine = reps.filter(function (r) { return r.id === me.id; })[0] || {};
      var v = mine.presence === 'break' ? 'break:' + (mine.reason || '') : mine.presence;
      if (v && !sel.querySelector('option[value="' + v + '"]')) {
        sel.appendChild(app.el('option', { value: v, text: v.replace(/_/g, ' ') }));
      }
      if (v) sel.value = v;
      sel.dataset.state = v || '';
      // Away, on a break or in after-call work, the list follows no new
      // work: a rep on a break receives nothing.
      app.setPaused(!!v && v !== 'available' && v !== 'on_call');
    } catch (e) { /* the directory is optional */ }
  }

  async function setState() {
    if (stateBusy) return;
    var v = $('rep-state').value;
    var body = v.indexOf('break:') === 0 ? { status: 'break', reason: v.slice(6) } : { status: v };
    stateBusy = true;
    $('rep-state-error').textContent = '';
    try {
      await app.api('POST', '/v1/reps/' + encodeURIComponent(app.state.me.id) + '/presence', body);
    } catch (e) {
      $('rep-state-error').textContent = e.message;
    } finally {
      stateBusy = false;
    }
    await showState();
  }

  // ---------- wiring ----------

  function init() {
    app = window.OmnigateInbox;
    if (!app) return;
    $('reply-text').addEventListener('input', updatePicker);
    $('reply-text').addEventListener('blur', function () { setTimeout(hidePicker, 150); });
    $('composer').addEventListener('keydown', pickerKeys, true);
    ['keypress', 'beforeinput', 'keyup'].forEach(function (t) { $('composer').addEventListener(t, swallowKey, true); });
    $('search-form').addEventListener('submit', search);
    $('contact-edit').addEventListener('click', editContact);
    $('contact-form').addEventListener('submit', saveContact);
    $('contact-cancel').addEventListener('click', closeContact);
    $('pending').addEventListener('click', setPending);
    $('rep-state').addEventListener('change', setState);
    // The rep's state once signed in (the topbar's name appears then).
    var seen = null;
    new MutationObserver(function () {
      var id = $('me').dataset.repId;
      if (id && id !== seen) { seen = id; loadStates(); }
    }).observe($('me'), { attributes: true, attributeFilter: ['data-rep-id'] });
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
