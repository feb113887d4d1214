// Omnigate inbox: the dialer's rep side, and the helpers campaigns.js
// (the supervisors' page) shares. Plain JavaScript, no build step.
//
// It lives apart from inbox.js, whose DOM helpers and REST call
// (window.OmnigateInbox) it uses, and talks only REST (/v1/dialer/...,
// docs/openapi.yaml); it wakes when the app is shown (signed in) and
// sleeps when it is hidden (signed out). A rep sees the next customer of their preview
// campaigns (name and a masked number: the API masks every number it
// sends a rep) and clicks Call or Skip; after a call, the outcome form.
//
// Safety: text from the API is only put in the page with textContent.
(function () {
  'use strict';

  var TOKEN_KEY = 'omnigate.inbox.token';
  var POLL_MS = 3000;

  var $ = function (id) { return document.getElementById(id); };

  var el = window.OmnigateInbox.el;
  var clear = window.OmnigateInbox.clear;

  // api is the inbox's REST call: it resolves to the JSON answer and
  // rejects with {status, code, message} (a 400's message lists every
  // problem, one a line); a refused token signs the tab out.
  var api = window.OmnigateInbox.api;

  // onSession calls start when the app is shown (a sign-in, or a reload
  // with a token) and stop when it is hidden (sign-out).
  function onSession(start, stop) {
    var app = $('app');
    var shown = false;
    function check() {
      var now = !app.hidden && !!sessionStorage.getItem(TOKEN_KEY);
      if (now === shown) return;
      shown = now;
      if (now) start(); else stop();
    }
    new MutationObserver(check).observe(app, { attributes: true, attributeFilter: ['hidden'] });
    check();
  }

  // topButton adds a button to the inbox's top bar, before Sign out.
  function topButton(id, label, onclick) {
    var b = $(id);
    if (!b) {
      b = el('button', { id: id, type: 'button', 'aria-pressed': 'false', text: label, onclick: onclick });
      $('topbar').insertBefore(b, $('signout'));
    }
    b.hidden = false;
    return b;
  }

  window.OmnigateDialer = { api: api, el: el, clear: clear, onSession: onSession, topButton: topButton };

  // ---------- the rep's card ----------
  //
  // One card, showing in order of precedence: the outcome form of the
  // rep's latest answered call without one; the call they are on; the
  // call they just placed from a preview card (until it is answered, or
  // CALLING_MS passes: an unanswered call just ends); the next preview
  // card.

  var CALLING_MS = 40000;
  var rep = { timer: null, card: null, preview: null, onCall: null, awaiting: null, calling: null, busy: false };

  function card() {
    if (rep.card) return rep.card;
    rep.card = el('section', { id: 'dialer-card', class: 'dialer-card', 'aria-label': 'Outbound call', 'aria-live': 'polite', hidden: true });
    $('app').appendChild(rep.card);
    return rep.card;
  }

  async function poll() {
    clearTimeout(rep.timer);
    // The outcome form stays while the rep fills it in.
    if (!rep.busy && !rep.awaiting) {
      try {
        var got = await api('GET', '/v1/dialer/preview');
        rep.preview = got.preview;
        rep.onCall = got.on_call;
        rep.awaiting = got.awaiting_outcome.length ? got.awaiting_outcome[0] : null;
        if (rep.onCall || rep.awaiting || (rep.calling && Date.now() - rep.calling.at > CALLING_MS)) rep.calling = null;
        render('');
      } catch (e) {
        if (e.status === 403 || e.status === 404) { stopRep(); return; } // not a rep, or no dialer
        render(e.message);
      }
    }
    rep.timer = setTimeout(poll, POLL_MS);
  }

  function who(p) {
    return el('p', { class: 'dialer-who' }, [
      el('strong', { text: p.name || p.customer_id }),
      ' ', el('span', { class: 'dialer-phone', text: p.number || '' }),
      el('br'), el('span', { class: 'muted', text: p.why || p.campaign || '' })
    ]);
  }

  function render(error) {
    var c = card();
    clear(c);
    c.hidden = false;
    if (rep.awaiting) {
      c.appendChild(el('h2', { text: 'Call outcome' }));
      c.appendChild(who(rep.awaiting));
      c.appendChild(outcomeForm(rep.awaiting));
    } else if (rep.onCall || rep.calling) {
      c.appendChild(el('h2', { text: rep.onCall ? 'On a call' : 'Calling…' }));
      c.appendChild(who(rep.onCall || rep.calling.card));
    } else if (rep.preview) {
      var p = rep.preview;
      c.appendChild(el('h2', { text: 'Next call' }));
      c.appendChild(who(p));
      c.appendChild(el('div', { class: 'actions' }, [
        el('button', { type: 'button', class: 'primary', text: 'Call', onclick: function () { act(p, 'dial'); } }),
        el('button', { type: 'button', text: 'Skip', onclick: function () { act(p, 'skip'); } })
      ]));
    } else {
      c.hidden = !error;
    }
    c.appendChild(el('p', { class: 'error', role: 'alert', text: error || '' }));
  }

  // act dials or skips the card. A dial the contact policy holds back
  // says why instead of calling.
  async function act(p, what) {
    rep.busy = true;
    var note = '';
    try {
      var a = await api('POST', '/v1/dialer/attempts/' + encodeURIComponent(p.attempt_id) + '/' + what, {});
      rep.preview = null;
      if (what === 'dial' && a.policy && a.policy !== 'allow') {
        note = 'Not called: the contact policy ' + (a.policy === 'defer' ? 'deferred' : 'refused') + ' it (' +
          (a.reasons || []).join(', ').replace(/_/g, ' ') + ').';
      } else if (what === 'dial') {
        rep.calling = { card: p, at: Date.now() };
      }
    } catch (e) {
      note = e.message;
    } finally {
      rep.busy = false;
    }
    render(note);
    clearTimeout(rep.timer);
    rep.timer = setTimeout(poll, POLL_MS);
  }

  function outcomeForm(p) {
    var outcomes = ['interested', 'not_interested', 'callback', 'wrong_person'];
    var select = el('select', { id: 'dialer-outcome' }, outcomes.map(function (o) { return el('option', { value: o, text: o.replace(/_/g, ' ') }); }));
    var note = el('textarea', { id: 'dialer-note', rows: '2' });
    var err = el('p', { class: 'error', role: 'alert' });
    var form = el('form', { class: 'dialer-outcome' }, [
      el('label', { for: 'dialer-outcome', text: 'Outcome' }), select,
      el('label', { for: 'dialer-note', text: 'Note' }), note,
      el('button', { type: 'submit', class: 'primary', text: 'Save outcome' }), err
    ]);
    form.addEventListener('submit', async function (ev) {
      ev.preventDefault();
      try {
        await api('POST', '/v1/dialer/attempts/' + encodeURIComponent(p.attempt_id) + '/outcome', { outcome: select.value, note: note.value });
        rep.awaiting = null;
        poll();
      } catch (e) {
        err.textContent = e.message;
      }
    });
    return form;
  }

  function startRep() { poll(); }

  function stopRep() {
    clearTimeout(rep.timer);
    rep.preview = rep.onCall = rep.awaiting = rep.calling = null;
    if (rep.card) rep.card.hidden = true;
  }

  onSession(startRep, stopRep);
})();
