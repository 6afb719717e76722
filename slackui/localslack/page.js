// The local Slack page: a confirmation dialog for buttons that ask for one,
// a poll every second that redraws the messages when something changed, and
// each conversation kept scrolled to its newest message, at the bottom, as
// Slack keeps it (unless the reader scrolled up to read older ones).
(function () {
  'use strict';
  var main = document.getElementById('main');
  var as = main.dataset.as, version = main.dataset.version, modalKey = main.dataset.modal;
  document.addEventListener('submit', function (e) {
    var b = e.submitter, text = b && b.getAttribute('data-confirm');
    if (text && !window.confirm(text)) {
      e.preventDefault();
    }
  });
  function conversations() {
    return Array.prototype.slice.call(document.querySelectorAll('#feed .conv'));
  }
  function atBottom(c) {
    return c.scrollHeight - c.scrollTop - c.clientHeight < 40;
  }
  function toBottom(cs) {
    cs.forEach(function (c) { c.scrollTop = c.scrollHeight; });
  }
  toBottom(conversations());
  function poll() {
    fetch('/state?as=' + encodeURIComponent(as), {cache: 'no-store'})
      .then(function (r) { return r.json(); })
      .then(function (s) {
        if (String(s.version) === version) {
          return;
        }
        version = String(s.version);
        var readingOlder = conversations().map(function (c) { return !atBottom(c); });
        // The server escaped every text in these fragments.
        document.getElementById('feed').innerHTML = s.feed;
        toBottom(conversations().filter(function (c, i) { return !readingOlder[i]; }));
        if (s.modalKey !== modalKey) {
          modalKey = s.modalKey;
          document.getElementById('modal').innerHTML = s.modal;
        }
      })
      .catch(function () {})
      .then(function () { setTimeout(poll, 1000); });
  }
  setTimeout(poll, 1000);
})();
