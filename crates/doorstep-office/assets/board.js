// The live board's script: live updates over server-sent events, the "not live" banner, and the alarm
// sound. Served from /assets/ under a content hash (src/web/assets.rs), allowed by the page's CSP nonce.
(function () {
  'use strict';
  // Set once per page load: the browser test checks it survives live updates (no reload happened).
  window.doorstepBoardLoadedAt = Date.now();
  var board = document.getElementById('board');
  var lost = document.getElementById('connection-lost');
  var signedOut = document.getElementById('signed-out');
  var soundButton = document.getElementById('enable-sound');
  var soundState = document.getElementById('sound-state');
  var problem = document.getElementById('board-problem');
  var baseTitle = document.title;
  var audio = null, beeping = null, source = null;
  var lastHeard = Date.now();

  function showLost(yes) {
    lost.hidden = !yes;
    document.body.classList.toggle('not-live', yes);
  }
  function openAlarms() {
    var root = document.getElementById('board-content');
    return root ? parseInt(root.getAttribute('data-open-alarms'), 10) || 0 : 0;
  }
  function soundOn() { return audio !== null && audio.state === 'running'; }
  function showSound() {
    var on = soundOn();
    document.body.classList.toggle('sound-off', !on);
    soundButton.hidden = on;
    soundState.textContent = on
      ? 'Alarm sound is on.'
      : 'Alarm sound is OFF: browsers play sound only after a click on the page, so press "Enable alarm sound" once.';
  }
  function beep() {
    if (!soundOn()) { return; }
    var t = audio.currentTime;
    [0, 0.3].forEach(function (delay) {
      var osc = audio.createOscillator(), gain = audio.createGain();
      osc.type = 'square';
      osc.frequency.value = 880;
      gain.gain.value = 0.25;
      osc.connect(gain);
      gain.connect(audio.destination);
      osc.start(t + delay);
      osc.stop(t + delay + 0.18);
    });
  }
  function alarmsChanged() {
    var n = openAlarms();
    document.title = (n > 0 ? '(' + n + ' ALARM) ' : '') + baseTitle;
    if (n > 0 && beeping === null) { beep(); beeping = setInterval(beep, 1500); }
    if (n === 0 && beeping !== null) { clearInterval(beeping); beeping = null; }
    // Lets a person (and the browser test) see that the sound is actually going.
    document.body.classList.toggle('alarm-sounding', n > 0 && soundOn());
  }
  function refresh() {
    fetch('/board/fragment', { credentials: 'same-origin', cache: 'no-store' })
      .then(function (response) {
        if (response.status === 401 || response.status === 403) {
          signedOut.hidden = false;
          showLost(true);
          return null;
        }
        if (!response.ok) { throw new Error('board answered ' + response.status); }
        return response.text();
      })
      .then(function (html) {
        if (html === null) { return; }
        // Redraw only when something changed, so a click is never lost to a redraw of the same thing.
        var fresh = document.createElement('template');
        fresh.innerHTML = html;
        var next = fresh.content.getElementById('board-content');
        var current = document.getElementById('board-content');
        if (!next || !current || next.getAttribute('data-version') !== current.getAttribute('data-version')) {
          board.replaceChildren(fresh.content);
        }
        alarmsChanged();
      })
      .catch(function () { showLost(true); });
  }
  function connect() {
    if (source !== null) { source.close(); }
    source = new EventSource('/board/events');
    source.addEventListener('open', function () { lastHeard = Date.now(); showLost(false); refresh(); });
    source.addEventListener('board', function () { lastHeard = Date.now(); refresh(); });
    source.addEventListener('tick', function () { lastHeard = Date.now(); showLost(false); refresh(); });
    source.addEventListener('error', function () {
      showLost(true);
      // The browser retries by itself unless the server refused the stream (signed out): then try again
      // shortly, and the refresh finds out whether the session is gone.
      if (source.readyState === EventSource.CLOSED) { setTimeout(connect, 3000); refresh(); }
    });
  }
  // A connection can die without an error event (a sleeping laptop, a Wi-Fi change): the server sends a tick
  // every few seconds, so a long silence means the board is not live.
  setInterval(function () {
    if (Date.now() - lastHeard > 40000) { showLost(true); lastHeard = Date.now(); connect(); }
  }, 5000);
  // Acknowledging from the board stays on the board: a reload would lose the permission to play sound
  // that the "Enable alarm sound" click gave. Without this script the form still works, with a reload.
  board.addEventListener('submit', function (event) {
    var form = event.target;
    if (!form.classList.contains('ack-form')) { return; }
    event.preventDefault();
    var button = form.querySelector('button');
    if (button) { button.disabled = true; }
    fetch(form.action, {
      method: 'POST',
      body: new URLSearchParams(new FormData(form)),
      credentials: 'same-origin',
      redirect: 'manual'
    }).then(function (response) {
      if (response.type === 'opaqueredirect' || response.ok) { problem.hidden = true; refresh(); return; }
      return response.text().then(function (html) {
        var page = document.createElement('template');
        page.innerHTML = html;
        var message = page.content.getElementById('message');
        problem.textContent = message ? message.textContent : 'The office refused that (' + response.status + ').';
        problem.hidden = false;
        refresh();
      });
    }).catch(function () {
      showLost(true);
      if (button) { button.disabled = false; }
    });
  });
  soundButton.addEventListener('click', function () {
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) { soundState.textContent = 'This browser cannot play the alarm sound.'; return; }
    if (audio === null) { audio = new Context(); }
    audio.resume().then(function () { showSound(); alarmsChanged(); });
  });
  showSound();
  alarmsChanged();
  connect();
})();
