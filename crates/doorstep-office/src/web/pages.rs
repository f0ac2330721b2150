//! The dashboard's page layout, styles and script, and the words it uses for times, states and alarms.
//!
//! Every page is sent with a Content-Security-Policy that allows only this page's own inline style and
//! script (by a per-response nonce) and connections back to this office, so even a value that slipped past
//! maud's escaping could not run as script.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Local, TimeDelta, Utc};
use doorstep_core::domain::Visit;
use doorstep_core::ids::StaffId;
use doorstep_core::lifecycle::VisitState;
use doorstep_core::policy::Policy;
use doorstep_core::schedule::{parse_about, Deadline, Expecting};
use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::alarms::{Alarm, AlarmKind, HEARD_BY_RECEPTION};
use crate::logins::{new_secret, Session};

const STYLE: &str = r#"
*{box-sizing:border-box}
body{margin:0;font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;background:#f4f4f1;color:#111}
a{color:#0b4f9c}
header.top{display:flex;flex-wrap:wrap;gap:.5rem 1.25rem;align-items:center;padding:.6rem 1.25rem;background:#1d2b36;color:#fff}
header.top a.brand{color:#fff;font-weight:700;font-size:1.15rem;text-decoration:none}
header.top .who{margin-left:auto}
header.top button.link{background:none;border:1px solid #9fb3c4;color:#fff;border-radius:4px;padding:.2rem .6rem;cursor:pointer;font:inherit}
main{padding:1rem 1.25rem 2rem;max-width:1400px;margin:0 auto}
h1{font-size:1.5rem;margin:.2rem 0 .8rem}
h2{font-size:1.2rem;margin:1.2rem 0 .5rem}
h3{font-size:1.02rem;margin:1rem 0 .3rem}
form.inline{display:inline;margin:0}
button{font:inherit;cursor:pointer;border-radius:5px;border:1px solid #555;background:#fff;padding:.35rem .8rem}
.banner{position:sticky;top:0;z-index:10;padding:.9rem 1.25rem;font-size:1.2rem;font-weight:700;border-bottom:4px solid #000}
.banner.lost{background:#ffeb3b;color:#000}
.banner[hidden]{display:none}
body.not-live #board{opacity:.45}
.toolbar{display:flex;flex-wrap:wrap;gap:.6rem 1.2rem;align-items:center;margin:.2rem 0 .6rem}
#enable-sound{background:#1d2b36;color:#fff;border-color:#1d2b36;font-weight:600}
body.sound-off #sound-state{color:#8a1c1c;font-weight:600}
.codephrase{background:#fff;border:1px solid #ccc;border-radius:6px;padding:.5rem .8rem}
#open-alarms .none{color:#2e6b2e;font-weight:600}
.alarm{border-radius:8px;padding:.7rem 1rem;margin:.5rem 0;border:3px solid}
.alarm.overdue{background:#ffcc66;border-color:#c77800;color:#2b1d00}
.alarm.duress{background:#b3141b;border-color:#5c0000;color:#fff}
.alarm.duress a{color:#fff}
.alarm .what{font-size:1.15rem}
.alarm .buttons{margin-top:.45rem;display:flex;flex-wrap:wrap;gap:.6rem;align-items:center}
.alarm button.ack{font-weight:700;background:#111;color:#fff;border-color:#111}
.alarm.duress button.ack{background:#fff;color:#111}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{text-align:left;vertical-align:top;padding:.45rem .55rem;border-bottom:1px solid #ddd}
th{background:#e7e9ec;font-size:.9rem}
td.time{font-weight:700;white-space:nowrap}
.small{font-size:.85rem;color:#555}
.badge{display:inline-block;border-radius:4px;padding:.1rem .45rem;font-weight:700;background:#e3e6ea}
tr.st-duress td{background:#fbe3e4}
.st-duress .badge,.badge.st-duress{background:#b3141b;color:#fff}
tr.st-overdue td{background:#fff1d6}
.st-overdue .badge,.badge.st-overdue{background:#c77800;color:#fff}
.st-due .badge,.badge.st-due{background:#ffe27a}
.st-out .badge,.badge.st-out{background:#cfe3ff}
.alarm a.runbook-link{font-weight:700}
.duress-panel{display:flex;flex-wrap:wrap;gap:.4rem .8rem;align-items:center;margin:1rem 0;padding:.6rem .8rem;background:#fff;border:1px solid #ccc;border-radius:6px}
tr.st-done td{color:#555}
.progress{font-weight:600}
button.duress-heard{background:#fff;color:#b3141b;border:2px solid #b3141b;font-weight:700}
td.actions{white-space:nowrap}
td.actions form{margin-top:.3rem}
.runbook{background:#fff;border:2px solid #1d2b36;border-radius:8px;padding:.4rem 1.2rem 1rem}
.runbook .address{font-size:1.4rem;font-weight:700}
.runbook ol li{margin:.35rem 0}
.runbook .steps.first{border-left:6px solid #b3141b;padding-left:.8rem}
.phone{font-size:1.15rem;font-weight:700;white-space:nowrap}
.message{background:#fff;border:2px solid #1d2b36;border-radius:8px;padding:1rem 1.25rem;max-width:44rem}
.login{max-width:26rem;background:#fff;border:1px solid #bbb;border-radius:8px;padding:1.2rem 1.4rem}
.login label{display:block;margin:.8rem 0 .2rem;font-weight:600}
.login input{width:100%;font:inherit;padding:.45rem;border:1px solid #888;border-radius:4px}
.login button{margin-top:1rem;background:#1d2b36;color:#fff;font-weight:700}
.problem{background:#fde8e8;border:1px solid #b3141b;border-radius:5px;padding:.5rem .7rem}
"#;

/// The board's script: live updates over server-sent events, the "not live" banner, and the alarm sound.
const BOARD_SCRIPT: &str = r#"
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
"#;

/// A full page with the security headers every dashboard page carries.
pub(crate) fn page(
    title: &str,
    session: Option<&Session>,
    body: Markup,
    script: Option<&str>,
) -> Response {
    let nonce = new_secret();
    let markup = html! {
        (DOCTYPE)
        html lang="en-GB" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Doorstep office" }
                style nonce=(nonce) { (PreEscaped(STYLE)) }
            }
            body {
                header.top {
                    a.brand href="/" { "Doorstep office" }
                    @if let Some(session) = session {
                        span.school { (session.user.school.name) }
                        span.who {
                            "Signed in as " strong #signed-in-name { (session.user.staff.name) }
                            " (" (roles(session)) ") "
                            form.inline method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(session.csrf_token);
                                button.link type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                (body)
                @if let Some(script) = script {
                    script nonce=(nonce) { (PreEscaped(script)) }
                }
            }
        }
    };
    let csp = format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; connect-src 'self'; \
         img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    );
    let mut response = maud::PreEscaped(markup.into_string()).into_response();
    let headers = response.headers_mut();
    if let Ok(csp) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // Safety information must never be shown from a stale cache.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn roles(session: &Session) -> String {
    session
        .user
        .staff
        .roles
        .iter()
        .map(|role| role.label())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A page that says one thing (a refusal, a problem) with a way back.
pub(crate) fn message_page(title: &str, message: &str) -> Response {
    page(
        title,
        None,
        html! {
            main {
                div.message {
                    h1 { (title) }
                    p #message { (sentence(message)) }
                    p { a href="/" { "Back to the board" } " · " a href="/login" { "Sign in" } }
                }
            }
        },
        None,
    )
}

/// The sign-in form; `csrf` is also in the sign-in cookie.
pub(crate) fn login_page(csrf: &str, problem: Option<&str>, name: &str) -> Response {
    page(
        "Sign in",
        None,
        html! {
            main {
                h1 { "Sign in to the office board" }
                form.login method="post" action="/login" {
                    @if let Some(problem) = problem {
                        p.problem #problem role="alert" { (problem) }
                    }
                    input type="hidden" name="csrf" value=(csrf);
                    label for="name" { "Sign-in name" }
                    input #name type="text" name="name" value=(name) autocomplete="username" required autofocus;
                    label for="password" { "Password" }
                    input #password type="password" name="password" autocomplete="current-password" required;
                    button #sign-in type="submit" { "Sign in" }
                }
                p.small { "For the school office, the authoriser (headteacher or safeguarding lead) and admins. \
                    Visiting staff use the Doorstep phone app." }
            }
        },
        None,
    )
}

pub(crate) fn board_script() -> &'static str {
    BOARD_SCRIPT
}

/// Upper-cases the first letter (messages are written to follow "Error:" in logs, and start pages here).
pub(crate) fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A message as a sentence: capital first letter, full stop at the end.
pub(crate) fn sentence(text: &str) -> String {
    let text = capitalise(text.trim());
    if text.ends_with(['.', '!', '?']) {
        text
    } else {
        format!("{text}.")
    }
}

/// A time of day in the office's own time zone.
pub(crate) fn hm(at: DateTime<Utc>) -> String {
    at.with_timezone(&Local).format("%H:%M").to_string()
}

pub(crate) fn hms(at: DateTime<Utc>) -> String {
    at.with_timezone(&Local).format("%H:%M:%S").to_string()
}

/// The office's time zone as "UTC+01:00", for the footers.
pub(crate) fn zone(now: DateTime<Utc>) -> String {
    format!("UTC{}", now.with_timezone(&Local).format("%:z"))
}

/// "just now", "4 min ago", "1 h 20 min ago".
pub(crate) fn ago(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let minutes = (now - at).num_minutes();
    match minutes {
        i64::MIN..=0 => "just now".into(),
        1..=59 => format!("{minutes} min ago"),
        _ => format!("{} h {} min ago", minutes / 60, minutes % 60),
    }
}

/// What the board calls a visit's state, and the row's style.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Status {
    pub label: String,
    pub class: &'static str,
}

/// A visit's state on the board: an open duress or overdue alarm outranks the phase; a deadline that has
/// passed shows as due (within its grace) or overdue (past it, even once the alarm is acknowledged).
pub(crate) fn status(
    state: &VisitState,
    open_alarms: &[&Alarm],
    deadline: Option<&Deadline>,
    _policy: &Policy,
    now: DateTime<Utc>,
) -> Status {
    use doorstep_core::lifecycle::Phase;
    let phase = state.phase();
    if phase == Phase::Duress || open_alarms.iter().any(|a| a.kind == AlarmKind::Duress) {
        return Status {
            label: "DURESS".into(),
            class: "st-duress",
        };
    }
    if open_alarms.iter().any(|a| a.kind == AlarmKind::Overdue) {
        return Status {
            label: "Overdue".into(),
            class: "st-overdue",
        };
    }
    // Still silent after someone acknowledged the alarm: still overdue, and the board must not say less.
    if deadline.is_some_and(|d| d.overdue_at() <= now) {
        return Status {
            label: "Overdue (acknowledged)".into(),
            class: "st-overdue",
        };
    }
    if let Some(deadline) = deadline.filter(|d| d.due <= now) {
        return Status {
            label: match deadline.expecting {
                Expecting::SetOff => "Not heard from".into(),
                other => format!("{} due", capitalise(other.label())),
            },
            class: "st-due",
        };
    }
    let class = match phase {
        Phase::Departed | Phase::Outside | Phase::InVisit | Phase::CheckedIn => "st-out",
        Phase::Left | Phase::Cancelled { .. } | Phase::WrittenUp => "st-done",
        _ => "st-planned",
    };
    let label = match phase {
        Phase::Cancelled { reason } => format!("Cancelled: {}", reason.label().to_lowercase()),
        Phase::Outside => {
            let waiting = state.staff.values().filter(|p| !p.is_outside()).count();
            if waiting > 0 {
                format!("Outside, waiting for {waiting}")
            } else {
                "Outside, all arrived".into()
            }
        }
        other => other.label().into(),
    };
    Status { label, class }
}

/// "next: check-in due 14:25", or how late it is.
pub(crate) fn next_contact(
    visit: &Visit,
    state: &VisitState,
    deadline: Option<&Deadline>,
    now: DateTime<Utc>,
) -> String {
    use doorstep_core::lifecycle::Phase;
    let Some(deadline) = deadline else {
        return match state.phase() {
            Phase::Requested | Phase::Authorised => "nothing until they set off".into(),
            _ => "nothing expected".into(),
        };
    };
    let name = deadline.staff.as_ref().map(|id| {
        visit
            .staff
            .iter()
            .find(|s| &s.id == id)
            .map_or_else(|| id.to_string(), |s| s.name.clone())
    });
    let who = name
        .as_ref()
        .map(|n| format!(" from {n}"))
        .unwrap_or_default();
    let what = deadline.expecting.label();
    if deadline.expecting == Expecting::SetOff {
        let name = name.unwrap_or_else(|| "someone".into());
        return if now < deadline.alarm_at {
            format!(
                "{name} has not set off yet: due {}; not heard from at {}",
                hm(deadline.due),
                hm(deadline.alarm_at)
            )
        } else {
            format!("not heard from {name}: due at {}", hm(deadline.due))
        };
    }
    if now < deadline.due {
        format!("next: {what}{who} due {}", hm(deadline.due))
    } else if now < deadline.overdue_at() {
        format!(
            "{what}{who} was due {}; overdue at {}",
            hm(deadline.due),
            hm(deadline.overdue_at())
        )
    } else {
        format!("{what}{who} overdue since {}", hm(deadline.overdue_at()))
    }
}

/// "last heard 4 min ago".
pub(crate) fn last_heard(state: &VisitState, now: DateTime<Utc>) -> String {
    match state.last_contact {
        Some(at) => format!("last heard {} ({})", ago(at, now), hm(at)),
        None => "not heard from yet".into(),
    }
}

/// One sentence saying what an alarm is about, naming people from the visit.
pub(crate) fn alarm_sentence(alarm: &Alarm, visit: &Visit) -> String {
    let due = hm(alarm.due_at);
    match alarm.kind {
        AlarmKind::Overdue => {
            let name = |id: &StaffId| {
                visit
                    .staff
                    .iter()
                    .find(|s| &s.id == id)
                    .map_or_else(|| id.to_string(), |s| s.name.clone())
            };
            match parse_about(&alarm.about) {
                Some((Expecting::SetOff, Some(who))) => {
                    format!("Not heard from {}: due at {due}", name(&who))
                }
                Some((Expecting::Arrival, Some(who))) => {
                    format!(
                        "{} not heard to arrive: expected at the door by {due}",
                        name(&who)
                    )
                }
                Some((Expecting::AnswerAtTheDoor, Some(who))) => format!(
                    "{} still at the door: the wait for the family ran out at {due}",
                    name(&who)
                ),
                Some((Expecting::CheckIn, _)) => format!("No check-in since it was due at {due}"),
                Some((Expecting::Leaving, _)) => {
                    format!("No \"I've left\": the visit was due to end at {due}")
                }
                _ => format!("Nothing heard ({}) since {due}", alarm.about),
            }
        }
        AlarmKind::Duress if alarm.about.starts_with(HEARD_BY_RECEPTION) => {
            format!("{} at {due}", capitalise(&alarm.about))
        }
        AlarmKind::Duress => {
            let name = visit
                .staff
                .iter()
                .find(|s| s.id.as_str() == alarm.about)
                .map_or(alarm.about.as_str(), |s| s.name.as_str());
            format!("Duress alert from {name}'s phone at {due}")
        }
    }
}

/// "the headteacher has been told at 14:32".
pub(crate) fn alarm_level(alarm: &Alarm, policy: &Policy) -> Option<String> {
    alarm
        .escalated_at
        .filter(|_| alarm.level == doorstep_core::schedule::AlarmLevel::Authoriser)
        .map(|at| format!("the {} was told at {}", policy.authoriser.label(), hm(at)))
}

/// How long a policy number is, in words.
pub(crate) fn minutes(delta: TimeDelta) -> String {
    let m = delta.num_minutes();
    if m % 60 == 0 && m >= 60 {
        let h = m / 60;
        format!("{h} hour{}", if h == 1 { "" } else { "s" })
    } else {
        format!("{m} minutes")
    }
}
