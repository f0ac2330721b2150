//! The live board: today's visits with their state, last contact and next expected contact, the open
//! alarms with their Acknowledge buttons, and the server-sent event stream that tells the page to redraw.
//!
//! The page never patches itself from event contents: on any event it fetches `/board/fragment` again, so
//! what it shows is always one consistent reading of the store.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Local, NaiveTime, TimeDelta, Utc};
use doorstep_core::domain::Visit;
use doorstep_core::ids::{SchoolId, VisitId};
use doorstep_core::lifecycle::VisitState;
use doorstep_core::schedule::{next_deadline, Deadline};
use futures_util::Stream;
use maud::{html, Markup};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::{broadcast, watch};

use super::assets::BOARD_JS;
use super::auth::{cookie, SESSION_COOKIE};
use super::extract::{BoardUser, CsrfForm, LiveBoardUser};
use super::words::{self, hm};
use super::{blocking, checked, pages, read_path, WebError};
use crate::alarms::{Alarm, AlarmKind};
use crate::escalation::BoardEvent;
use crate::logins::Session;
use crate::state::AppState;

/// How often the stream says "still here" when nothing happens; the page declares itself not live after
/// 40 s without a word, and redraws "last heard" times on each.
const TICK: Duration = Duration::from_secs(15);

/// One visit on the board.
pub(crate) struct Row {
    pub visit: Visit,
    pub state: VisitState,
    /// Its alarms not yet acknowledged.
    pub alarms: Vec<Alarm>,
    pub deadline: Option<Deadline>,
}

/// Local midnight to midnight around `now`, as UTC instants.
fn today(now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let day = now.with_timezone(&Local).date_naive();
    let midnight = |date: chrono::NaiveDate| {
        date.and_time(NaiveTime::MIN)
            .and_local_timezone(Local)
            .earliest()
            .map(|t| t.with_timezone(&Utc))
    };
    let start = midnight(day).unwrap_or(now - TimeDelta::hours(12));
    let end = day
        .succ_opt()
        .and_then(midnight)
        .unwrap_or(now + TimeDelta::hours(12));
    (start, end)
}

/// Today's visits of the signed-in person's school, with their open alarms and next deadline.
pub(crate) async fn load_rows(state: &AppState, session: &Session) -> Result<Vec<Row>, WebError> {
    let store = state.store.clone();
    let school = session.user.school.id.clone();
    let policy = session.user.policy.clone();
    let (from, to) = today(state.now());
    blocking(move || {
        let visits = store.visits_for_board(&school, from, to)?;
        let open = store.open_alarms()?;
        Ok(visits
            .into_iter()
            .map(|(visit, visit_state)| {
                let alarms = open
                    .iter()
                    .filter(|a| a.visit == visit.id)
                    .cloned()
                    .collect();
                let deadline = next_deadline(&visit, &visit_state, &policy);
                Row {
                    visit,
                    state: visit_state,
                    alarms,
                    deadline,
                }
            })
            .collect())
    })
    .await
}

/// The Acknowledge button for one alarm; `back` says where to return ("visit" or the board).
pub(crate) fn acknowledge_form(alarm: &Alarm, session: &Session, back: &str) -> Markup {
    html! {
        form.inline.ack-form method="post" action={ "/alarms/" (alarm.id) "/acknowledge" } {
            input type="hidden" name="csrf" value=(session.csrf_token);
            input type="hidden" name="back" value=(back);
            button.ack type="submit" { "Acknowledge as " (session.user.staff.name) }
        }
    }
}

/// One open alarm, loud.
pub(crate) fn alarm_card(
    alarm: &Alarm,
    visit: &Visit,
    session: &Session,
    back: &str,
    now: DateTime<Utc>,
) -> Markup {
    let kind = match alarm.kind {
        AlarmKind::Overdue => "overdue",
        AlarmKind::Duress => "duress",
    };
    html! {
        div class={ "alarm open " (kind) } id={ "alarm-" (alarm.id) } data-alarm=(alarm.id) role="alert" {
            div.what {
                strong { (kind.to_uppercase()) }
                " · " (hm(visit.agreed_time)) " " (visit.purpose.label()) " · " (visit.address.postcode)
            }
            div.detail { (words::alarm_sentence(alarm, visit)) }
            div.small {
                "Raised " (hm(alarm.raised_at)) " (" (words::ago(alarm.raised_at, now)) ")"
                @if let Some(level) = words::alarm_level(alarm, &session.user.policy) { " · " (level) }
                @if let Some(at) = alarm.contact_resumed_at { " · staff heard from again at " (hm(at)) }
            }
            div.buttons {
                (acknowledge_form(alarm, session, back))
                @if back != "visit" {
                    a.runbook-link href={ "/visits/" (visit.id) "#runbook" } { "Open the runbook" }
                }
            }
        }
    }
}

/// The part of the board that changes: open alarms and the visits table.
pub(crate) fn fragment_markup(rows: &[Row], session: &Session, now: DateTime<Utc>) -> Markup {
    let mut alarms: Vec<(&Alarm, &Visit)> = rows
        .iter()
        .flat_map(|row| row.alarms.iter().map(move |alarm| (alarm, &row.visit)))
        .collect();
    // Duress first, then the oldest: the most urgent thing is always at the top.
    alarms.sort_by_key(|(alarm, _)| (alarm.kind != AlarmKind::Duress, alarm.raised_at, alarm.id));
    let policy = &session.user.policy;
    let inner = html! {
        section #open-alarms {
            h2 { "Open alarms" }
            @if alarms.is_empty() {
                p.none { "No open alarms." }
            }
            @for (alarm, visit) in &alarms {
                (alarm_card(alarm, visit, session, "board", now))
            }
        }
        section #visits {
            h2 { "Today's visits" }
            @if rows.is_empty() {
                p { "No visits today." }
            } @else {
                table {
                    thead { tr {
                        th { "Time" } th { "Visit" } th { "Area" } th { "Staff" } th { "State" }
                        th { "Last contact" } th { "Next expected" } th { "" }
                    } }
                    tbody {
                        @for row in rows {
                            @let refs: Vec<&Alarm> = row.alarms.iter().collect();
                            @let status = words::status(&row.state, &refs, row.deadline.as_ref(), policy, now);
                            tr id={ "visit-" (row.visit.id) } class=(status.class) {
                                td.time {
                                    (hm(row.visit.agreed_time))
                                    div.small { (row.visit.expected_length.get()) " min" }
                                }
                                td { (row.visit.purpose.label()) }
                                td { (row.visit.address.postcode) }
                                td.staff {
                                    @for member in &row.visit.staff {
                                        div {
                                            (member.name) ": "
                                            span.progress {
                                                (row.state.progress(&member.id).map_or("not on record", |p| p.label()))
                                            }
                                        }
                                    }
                                }
                                td.state { span.badge { (status.label) } }
                                td.heard { (words::last_heard(&row.state, now)) }
                                td.next { (words::next_contact(&row.visit, &row.state, row.deadline.as_ref(), now)) }
                                td.actions {
                                    a href={ "/visits/" (row.visit.id) } { "Visit and runbook" }
                                    form method="post" action={ "/visits/" (row.visit.id) "/duress-heard" } {
                                        input type="hidden" name="csrf" value=(session.csrf_token);
                                        button.duress-heard type="submit"
                                            title="Press when someone on this visit says the code phrase to you on the phone" {
                                            "Duress heard"
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    // The script redraws only when this changes, so a click is never lost to a redraw of the same thing.
    let version: String = Sha256::digest(inner.0.as_bytes())
        .iter()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect();
    html! {
        div #board-content data-open-alarms=(alarms.len()) data-version=(version) { (inner) }
    }
}

/// `GET /`: the live board.
pub async fn board_page(
    BoardUser(session): BoardUser,
    State(state): State<AppState>,
) -> Result<Response, WebError> {
    let rows = load_rows(&state, &session).await?;
    let now = state.now();
    let phrase = session
        .user
        .policy
        .code_phrases
        .as_ref()
        .map_or("", |p| p.to_reception.as_str());
    let body = html! {
        div #connection-lost .banner.lost hidden role="alert" {
            "Connection to the office server lost — the board is NOT live. Reconnecting… If this stays, reload \
             the page, and phone the staff who are out."
        }
        div #signed-out .banner.lost hidden role="alert" {
            "You have been signed out — the board is NOT live. " a href="/login" { "Sign in again" }
        }
        main {
            h1 { "Live board" }
            div.toolbar {
                button #enable-sound type="button" { "Enable alarm sound" }
                span #sound-state {
                    "Alarm sound is OFF: browsers play sound only after a click on the page, so press \
                     \"Enable alarm sound\" once."
                }
            }
            @if session.user.policy.code_phrases.is_none() {
                p.problem #code-phrases-not-set role="alert" {
                    "The school's code phrases are not set: no visit can be authorised until an admin sets them on the policy page."
                }
            } @else {
                p.codephrase {
                    "Code phrase on the phone: " strong { "“" (phrase) "”" }
                    " — if someone on a visit says this to you, press " strong { "Duress heard" } " on their visit."
                }
            }
            p #board-links {
                a href="/visits/new" { "Request a visit" } " · " a href="/attendance" { "Attendance" }
                @if session.user.may_read_records() {
                    " · " a href="/reports/monthly" { "Monthly report" }
                }
                @if session.user.may_read_audit_log() {
                    " · " a href="/audit" { "Audit log" }
                }
                @if session.user.staff.roles.contains(&doorstep_core::domain::Role::Admin) {
                    " · " a href="/admin/staff" { "Admin" }
                }
            }
            p #board-problem .problem hidden role="alert" {}
            div #board { (fragment_markup(&rows, &session, now)) }
            p.small {
                "Times are the office's local time (" (words::zone(now)) "). The board updates by itself; there \
                 is no need to reload."
            }
        }
    };
    Ok(pages::page(
        "Live board",
        Some(&session),
        body,
        Some(&BOARD_JS),
    ))
}

/// `GET /board/fragment`: the changing part of the board, for the page's script.
pub async fn fragment(
    LiveBoardUser(session): LiveBoardUser,
    State(state): State<AppState>,
) -> Result<Response, WebError> {
    let rows = load_rows(&state, &session).await?;
    let mut response = fragment_markup(&rows, &session, state.now()).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Resolves when the server starts shutting down (never, if nobody can tell it to).
async fn stopped(stopping: &mut watch::Receiver<bool>) {
    loop {
        if *stopping.borrow_and_update() {
            return;
        }
        if stopping.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// The next event for this school's board: another school's visits are never mentioned.
async fn next_board_event(
    board: &mut Option<broadcast::Receiver<BoardEvent>>,
    scope: &mut SchoolScope,
) -> Option<Event> {
    let Some(receiver) = board else {
        return std::future::pending().await;
    };
    match receiver.recv().await {
        Ok(event) => {
            let visit = event.visit().clone();
            let school = match scope.schools.get(&visit) {
                Some(school) => school.clone(),
                None => {
                    let store = scope.store.clone();
                    let looked_up = visit.clone();
                    let school = blocking(move || store.school_of_visit(&looked_up))
                        .await
                        .ok()
                        .flatten();
                    scope.schools.insert(visit, school.clone());
                    school
                }
            };
            if school.as_ref() != Some(&scope.school) {
                return None;
            }
            Some(
                Event::default()
                    .event("board")
                    .json_data(&event)
                    .unwrap_or_else(|_| Event::default().event("board").data("changed")),
            )
        }
        // Missed some: the page redraws from the store anyway, so one nudge covers them all.
        Err(broadcast::error::RecvError::Lagged(_)) => {
            Some(Event::default().event("board").data("changed"))
        }
        Err(broadcast::error::RecvError::Closed) => {
            *board = None;
            None
        }
    }
}

/// The signed-in person's school, and the school of each visit heard of so far.
struct SchoolScope {
    store: std::sync::Arc<crate::store::SqliteStore>,
    school: SchoolId,
    schools: std::collections::HashMap<VisitId, Option<SchoolId>>,
}

struct Live {
    state: AppState,
    token: String,
    scope: SchoolScope,
    board: Option<broadcast::Receiver<BoardEvent>>,
    tick: tokio::time::Interval,
    stopping: watch::Receiver<bool>,
}

/// `GET /board/events`: server-sent events: `board` when something changed, `tick` every few seconds. The
/// stream ends when the session does (signed out or expired) or the server stops.
pub async fn events(
    LiveBoardUser(session): LiveBoardUser,
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, WebError> {
    let token = cookie(&headers, SESSION_COOKIE).unwrap_or_default();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let store = state.store.clone();
    let live = Live {
        board: state.escalation.as_ref().map(|e| e.subscribe()),
        stopping: state.stopping.clone(),
        state,
        token,
        scope: SchoolScope {
            store,
            school: session.user.school.id.clone(),
            schools: std::collections::HashMap::new(),
        },
        tick,
    };
    let stream = futures_util::stream::unfold(live, |mut live| async move {
        loop {
            tokio::select! {
                () = stopped(&mut live.stopping) => return None,
                event = next_board_event(&mut live.board, &mut live.scope) => {
                    if let Some(event) = event {
                        return Some((Ok(event), live));
                    }
                }
                _ = live.tick.tick() => {
                    let (store, token, now) = (live.state.store.clone(), live.token.clone(), live.state.now());
                    let still_signed_in = blocking(move || store.session(&token, now))
                        .await
                        .is_ok_and(|s| s.is_some_and(|s| s.user.may_use_board()));
                    if !still_signed_in {
                        return None;
                    }
                    let event = Event::default().event("tick").data(now.to_rfc3339());
                    return Some((Ok(event), live));
                }
            }
        }
    });
    Ok(Sse::new(stream))
}

/// The Acknowledge button's form.
#[derive(Debug, Deserialize)]
pub struct AckForm {
    /// Where to go afterwards: "visit" returns to the visit page; anything else to the board.
    #[serde(default)]
    back: String,
}

/// `POST /alarms/{id}/acknowledge`: the signed-in person acknowledges an alarm, once.
pub async fn acknowledge(
    BoardUser(session): BoardUser,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    CsrfForm(form): CsrfForm<AckForm>,
) -> Result<Response, WebError> {
    let id_text = read_path(path)?;
    let no_such = || WebError::NotFound(format!("there is no alarm “{id_text}”"));
    let id: i64 = id_text.parse().map_err(|_| no_such())?;
    let store = state.store.clone();
    let found = blocking(move || {
        let Some(alarm) = store.alarm(id)? else {
            return Ok(None);
        };
        let visit = store.visit(&alarm.visit)?.map(|(visit, _)| visit);
        Ok(visit.map(|visit| (alarm, visit)))
    })
    .await?;
    let Some((alarm, visit)) = found.filter(|(_, visit)| visit.school == session.user.school.id)
    else {
        return Err(no_such());
    };
    if let (Some(by), Some(at)) = (&alarm.acknowledged_by, alarm.acknowledged_at) {
        return Err(WebError::Conflict(format!(
            "this alarm was already acknowledged by {by} at {}",
            hm(at)
        )));
    }
    let store = state.store.clone();
    let name = session.user.staff.name.clone();
    let now = state.now();
    // Refused only when someone else pressed the button in the same instant.
    let acknowledged = checked(move || store.acknowledge_alarm(id, &name, now))
        .await?
        .map_err(WebError::Conflict)?;
    tracing::info!(alarm = id, by = %session.user.staff.id, "alarm acknowledged");
    if let Some(escalation) = &state.escalation {
        escalation.acknowledged(acknowledged);
    }
    let back = if form.back == "visit" {
        format!("/visits/{}", visit.id)
    } else {
        "/".to_owned()
    };
    Ok(Redirect::to(&back).into_response())
}
