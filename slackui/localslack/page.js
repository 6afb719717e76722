// The local Slack page: a confirmation dialog for buttons that ask for one,
// and a poll every second that redraws the messages when something changed.
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
  function poll() {
    fetch('/state?as=' + encodeURIComponent(as), {cache: 'no-store'})
      .then(function (r) { return r.json(); })
      .then(function (s) {
        if (String(s.version) === version) {
          return;
        }
        version = String(s.version);
        // The server escaped every text in these fragments.
        document.getElementById('feed').innerHTML = s.feed;
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
