// flowd UI: live updates and small conveniences. Every page works without this script.
(function () {
  'use strict';

  // Relative times ("5 min ago"), kept current. The exact time is in the title.
  function relative(date) {
    var s = Math.round((Date.now() - date.getTime()) / 1000);
    var future = s < 0;
    s = Math.abs(s);
    var text;
    if (s < 5) return 'just now';
    if (s < 60) text = s + ' s';
    else if (s < 3600) text = Math.floor(s / 60) + ' min';
    else if (s < 86400) text = Math.floor(s / 3600) + ' h';
    else { var d = Math.floor(s / 86400); text = d + (d === 1 ? ' day' : ' days'); }
    return future ? 'in ' + text : text + ' ago';
  }
  function refreshTimes(root) {
    (root || document).querySelectorAll('time[data-rel]').forEach(function (el) {
      var d = new Date(el.getAttribute('datetime'));
      if (!isNaN(d)) el.textContent = relative(d);
    });
  }
  setInterval(refreshTimes, 15000);

  // Filters apply as soon as a choice changes.
  document.querySelectorAll('form[data-autosubmit] select').forEach(function (sel) {
    sel.addEventListener('change', function () { sel.form.submit(); });
  });

  // Live pages: when a run they show starts or ends, fetch the page again and swap the
  // regions marked data-region. At most one fetch a second, however busy flowd is.
  var main = document.getElementById('main');
  if (!main || !main.dataset.live || !window.EventSource) return;
  var flow = main.dataset.flow || '', run = main.dataset.run || '';
  var status = document.getElementById('live-status');
  var timer = null, busy = false, again = false, last = 0;

  function schedule() {
    if (timer) return;
    timer = setTimeout(refresh, Math.max(100, 1000 - (Date.now() - last)));
  }
  function refresh() {
    timer = null;
    if (busy) { again = true; return; }
    busy = true;
    last = Date.now();
    fetch(location.href, { headers: { Accept: 'text/html' }, cache: 'no-store', credentials: 'same-origin' })
      .then(function (res) { return res.ok ? res.text() : null; })
      .then(function (html) {
        if (html === null) return;
        var doc = new DOMParser().parseFromString(html, 'text/html');
        if (run) {
          // A run page is replaced whole once the run has ended.
          var fresh = doc.getElementById('main');
          if (fresh && !fresh.dataset.live) { main.replaceWith(fresh); main = fresh; es.close(); setStatus('', true); }
          return;
        }
        document.querySelectorAll('[data-region]').forEach(function (el) {
          var fresh = doc.querySelector('[data-region="' + el.dataset.region + '"]');
          if (!fresh) return;
          var seen = {};
          el.querySelectorAll('[data-run-id]').forEach(function (r) { seen[r.dataset.runId] = true; });
          fresh.querySelectorAll('[data-run-id]').forEach(function (r) { if (!seen[r.dataset.runId]) r.classList.add('new'); });
          el.replaceWith(fresh);
        });
        refreshTimes();
      })
      .catch(function () { /* the next event tries again */ })
      .then(function () {
        busy = false;
        // Tells a waiting observer (the browser test) that the page is as fresh as the
        // server: the refetch after the stream opened has been swapped in.
        document.documentElement.dataset.refreshed = String(Number(document.documentElement.dataset.refreshed || 0) + 1);
        if (again) { again = false; schedule(); }
      });
  }
  function setStatus(text, hide) {
    if (!status) return;
    status.hidden = !!hide;
    status.textContent = text;
    status.classList.toggle('off', text !== 'live');
  }

  var es = new EventSource('/events' + (flow ? '?flow=' + encodeURIComponent(flow) : ''));
  // Runs may have started or ended between rendering the page and subscribing (or while
  // reconnecting): look once more whenever the stream opens.
  es.onopen = function () { setStatus('live'); schedule(); };
  es.onerror = function () { setStatus('reconnecting…'); };
  es.addEventListener('run', function (e) {
    var ev;
    try { ev = JSON.parse(e.data); } catch (err) { return; }
    if (run && ev.id !== run) return;
    schedule();
  });
  es.addEventListener('resync', schedule);
  window.addEventListener('pagehide', function () { es.close(); });
})();
