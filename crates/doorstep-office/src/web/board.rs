//! The live board: today's visits with their state, last contact and next expected contact; the open
//! alarms, each with who was told (from the deliveries, see [`crate::reach`]), its Acknowledge button and,
//! once someone is handling it, its Close form with the outcome; the safeguarding notices of the last day
//! (that each was raised and where it went, never its words); the visits whose write-up is overdue; a
//! banner while the school has no notification targets; and the server-sent event stream that tells the
//! page to redraw.
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
use chrono::{DateTime, TimeDelta, Utc};
use doorstep_core::domain::{Role, SchoolTimeZone, Visit};
use doorstep_core::ids::{SchoolId, VisitId};
use doorstep_core::lifecycle::{AlarmOutcome, VisitState};
use doorstep_core::schedule::{next_deadline, Deadline};
use futures_util::Stream;
use maud::{html, Markup};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::{broadcast, watch};

use super::assets::BOARD_JS;
use super::auth::{cookie, SESSION_COOKIE};
use super::extract::{BoardUser, CsrfForm, LiveBoardUser};
use super::words;
use super::{blocking, checked, pages, read_path, WebError};
use crate::alarms::{Alarm, AlarmKind};
use crate::audit::{Action, NewEntry};
use crate::escalation::{BoardEvent, EventScope};
use crate::logins::Session;
use crate::notices::Notice;
use crate::reach;
use crate::state::AppState;

/// How often the stream says "still here" when nothing happens; the page declares itself not live after
/// 40 s without a word, and redraws "last heard" times on each.
const TICK: Duration = Duration::from_secs(15);

/// One visit on the board.
pub(crate) struct Row {
    pub visit: Visit,
    pub state: VisitState,
    /// Its alarms not yet closed (acknowledged or not).
    pub alarms: Vec<Alarm>,
    pub deadline: Option<Deadline>,
    /// Who was told of each open alarm, line by line.
    pub told: Vec<(i64, Vec<reach::Line>)>,
    /// Everyone left, the write-up has not arrived, and the policy's time for it has passed: since when.
    pub write_up_missing_since: Option<DateTime<Utc>>,
}

/// A safeguarding notice on the board: that it was raised and where it went, never its words.
pub(crate) struct BoardNotice {
    pub notice: Notice,
    pub visit: Visit,
    pub raised_by: String,
    pub told: Vec<reach::Line>,
}

/// A visit whose write-up is overdue: everyone left at `left`, it was due by `due`.
pub(crate) struct MissingWriteUp {
    pub visit: Visit,
    pub left: DateTime<Utc>,
    pub due: DateTime<Utc>,
}

/// Everything the changing part of the board shows.
pub(crate) struct BoardData {
    pub rows: Vec<Row>,
    pub notices: Vec<BoardNotice>,
    pub missing_write_ups: Vec<MissingWriteUp>,
    /// The school's live notification targets (its visits' own contacts not counted).
    pub targets: usize,
}

/// How far back the board shows safeguarding notices.
const NOTICES_SHOWN_FOR: TimeDelta = TimeDelta::hours(24);

/// The school's midnight to midnight around `now`, as UTC instants.
fn today(zone: &SchoolTimeZone, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let day = zone.date(now);
    let start = zone.start_of(day);
    let end = day
        .succ_opt()
        .map_or(now + TimeDelta::hours(12), |next| zone.start_of(next));
    (start, end)
}

/// Today's visits of the signed-in person's school, with their open alarms, who was told of each, and
/// their next deadline; the school's recent safeguarding notices and overdue write-ups; its targets.
pub(crate) async fn load_board(state: &AppState, session: &Session) -> Result<BoardData, WebError> {
    let store = state.store.clone();
    let school = session.user.school.id.clone();
    let policy = session.user.policy.clone();
    let now = state.now();
    let (from, to) = today(&session.user.school.time_zone, now);
    blocking(move || {
        let visits = store.visits_for_board(&school, from, to)?;
        let open = store.open_alarms()?;
        let context = store.reach_context(&school, None)?;
        let write_up_due = policy.write_up_due_after_leaving.duration();
        let mut missing_write_ups = Vec::new();
        for (id, left) in store.visits_left_without_write_up(&school)? {
            if left + write_up_due <= now {
                if let Some((visit, _)) = store.visit(&id)? {
                    missing_write_ups.push(MissingWriteUp {
                        visit,
                        left,
                        due: left + write_up_due,
                    });
                }
            }
        }
        let mut rows = Vec::with_capacity(visits.len());
        for (visit, visit_state) in visits {
            let alarms: Vec<Alarm> = open
                .iter()
                .filter(|a| a.visit == visit.id)
                .cloned()
                .collect();
            let mut told = Vec::new();
            if !alarms.is_empty() {
                let context = store.reach_context(&school, Some(&visit.id))?;
                let log = store.alarm_log(&visit.id)?;
                for alarm in &alarms {
                    let deliveries = store.deliveries_for_alarm(alarm.id)?;
                    told.push((alarm.id, context.alarm_lines(alarm, &log, &deliveries)));
                }
            }
            let deadline = next_deadline(&visit, &visit_state, &policy);
            let write_up_missing_since = missing_write_ups
                .iter()
                .find(|m| m.visit.id == visit.id)
                .map(|m| m.due);
            rows.push(Row {
                visit,
                state: visit_state,
                alarms,
                deadline,
                told,
                write_up_missing_since,
            });
        }
        let mut notices = Vec::new();
        for notice in store.notices_since(&school, now - NOTICES_SHOWN_FOR)? {
            let Some((visit, _)) = store.visit(&notice.visit)? else {
                continue;
            };
            let deliveries = store.deliveries_for_notice(notice.id)?;
            let raised_by = visit
                .staff
                .iter()
                .find(|s| s.id == notice.staff)
                .map_or_else(|| notice.staff.to_string(), |s| s.name.clone());
            notices.push(BoardNotice {
                told: context.notice_lines(&notice, &deliveries),
                notice,
                visit,
                raised_by,
            });
        }
        Ok(BoardData {
            rows,
            notices,
            missing_write_ups,
            targets: store.live_school_target_count(&school)?,
        })
    })
    .await
}

/// The banner every board and admin page carries while nobody outside the board can be told of anything.
pub(crate) fn no_targets_banner(targets: usize, admin: bool) -> Markup {
    html! {
        @if targets == 0 {
            div #no-targets .banner.warn role="alert" {
                "No notification targets are set up: alarms show only on this board, and nobody outside it \
                 (the authoriser, a deputy, the safeguarding lead) is emailed or messaged. "
                @if admin {
                    a href="/admin/notifications" { "Add them on the Notifications page." }
                } @else {
                    "An admin adds them on the Notifications page."
                }
            }
        }
    }
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

/// Closing an acknowledged alarm: how it ended (required) and a note.
pub(crate) fn close_form(alarm: &Alarm, session: &Session, back: &str) -> Markup {
    html! {
        form.ack-form.close-form method="post" action={ "/alarms/" (alarm.id) "/close" } {
            input type="hidden" name="csrf" value=(session.csrf_token);
            input type="hidden" name="back" value=(back);
            label for={ "outcome-" (alarm.id) } { "How did it end? " }
            select name="outcome" id={ "outcome-" (alarm.id) } required {
                option value="" { "Choose…" }
                @for outcome in AlarmOutcome::ALL {
                    option value=(outcome.as_str()) { (outcome.label()) }
                }
            }
            " "
            label for={ "note-" (alarm.id) } { "Note " }
            input type="text" name="note" id={ "note-" (alarm.id) } maxlength="2000";
            " "
            button.close type="submit" {
                "Close alarm"
                @if alarm.from_a_phone() { " and stand the alert down on the phones" }
            }
        }
    }
}

/// Who was told, line by line, each problem marked.
pub(crate) fn told_list(zone: &SchoolTimeZone, lines: &[reach::Line]) -> Markup {
    html! {
        @if !lines.is_empty() {
            ul.told {
                @for line in lines {
                    li class=[reach::needs_action(line).then_some("act")] { (words::reach_line(zone, line)) }
                }
            }
        }
    }
}

/// One open alarm: loud until someone acknowledges it, then shown as being handled until it is closed.
pub(crate) fn alarm_card(
    alarm: &Alarm,
    visit: &Visit,
    told: &[reach::Line],
    session: &Session,
    back: &str,
    now: DateTime<Utc>,
) -> Markup {
    let kind = match alarm.kind {
        AlarmKind::Overdue => "overdue",
        AlarmKind::Duress => "duress",
    };
    let zone = &session.user.school.time_zone;
    let handled = if alarm.needs_someone() {
        ""
    } else {
        " handled"
    };
    html! {
        div class={ "alarm open " (kind) (handled) } id={ "alarm-" (alarm.id) } data-alarm=(alarm.id) role="alert" {
            div.what {
                strong { (kind.to_uppercase()) }
                " · " (zone.hm(visit.agreed_time)) " " (visit.purpose.label()) " · " (visit.address.postcode)
            }
            div.detail { (words::alarm_sentence(zone, alarm, visit)) }
            div.small {
                "Raised " (zone.hm(alarm.raised_at)) " (" (words::ago(alarm.raised_at, now)) ")"
                @if let Some(level) = words::alarm_level(zone, alarm, &session.user.policy) { " · " (level) }
                @if let Some(at) = alarm.contact_resumed_at { " · staff heard from again at " (zone.hm(at)) }
            }
            div.reach {
                span.small { "Outside this board: " }
                @if told.is_empty() {
                    span.small { "nothing sent for this alarm." }
                }
                (told_list(zone, told))
            }
            @if let (Some(by), Some(at)) = (&alarm.acknowledged_by, alarm.acknowledged_at) {
                div.handling { "Being handled by " strong { (by) } " since " (zone.hm(at)) "." }
            }
            div.buttons {
                @if alarm.needs_someone() {
                    (acknowledge_form(alarm, session, back))
                } @else {
                    (close_form(alarm, session, back))
                }
                @if back != "visit" {
                    a.runbook-link href={ "/visits/" (visit.id) "#runbook" } { "Open the runbook" }
                }
            }
        }
    }
}

/// The part of the board that changes: the banner, open alarms, safeguarding notices, overdue write-ups
/// and the visits table.
pub(crate) fn fragment_markup(data: &BoardData, session: &Session, now: DateTime<Utc>) -> Markup {
    let rows = &data.rows;
    let mut alarms: Vec<(&Alarm, &Row)> = rows
        .iter()
        .flat_map(|row| row.alarms.iter().map(move |alarm| (alarm, row)))
        .collect();
    // Unhandled first, duress first, then the oldest: the most urgent thing is always at the top.
    alarms.sort_by_key(|(alarm, _)| {
        (
            !alarm.needs_someone(),
            alarm.kind != AlarmKind::Duress,
            alarm.raised_at,
            alarm.id,
        )
    });
    let sounding = alarms.iter().filter(|(a, _)| a.needs_someone()).count();
    let no_lines = Vec::new();
    let policy = &session.user.policy;
    let zone = &session.user.school.time_zone;
    let admin = session.user.staff.roles.contains(&Role::Admin);
    let inner = html! {
        (no_targets_banner(data.targets, admin))
        section #open-alarms {
            h2 { "Open alarms" }
            @if alarms.is_empty() {
                p.none { "No open alarms." }
            }
            @for (alarm, row) in &alarms {
                @let told = row.told.iter().find(|(id, _)| *id == alarm.id).map_or(&no_lines, |(_, l)| l);
                (alarm_card(alarm, &row.visit, told, session, "board", now))
            }
        }
        // Need to know: that a concern or an incident was raised is for those who act on it, not reception.
        @if !data.notices.is_empty() && session.user.may_read_records() {
            section #notices {
                h2 { "Safeguarding notices (last 24 hours)" }
                p.small { "Only that each was raised and where it went: what was written stays in the visit's record." }
                @for notice in &data.notices {
                    div.notice id={ "notice-" (notice.notice.id) } {
                        strong { (notice.notice.kind.label()) }
                        " · " (zone.hm(notice.notice.raised_at)) " · from " (notice.raised_by)
                        " · visit " (zone.hm(notice.visit.agreed_time)) " " (notice.visit.address.postcode)
                        " · for the " (notice.notice.role.label())
                        (told_list(zone, &notice.told))
                    }
                }
            }
        }
        @if !data.missing_write_ups.is_empty() {
            section #missing-write-ups {
                h2 { "Write-ups missing" }
                ul {
                    @for missing in &data.missing_write_ups {
                        li id={ "write-up-missing-" (missing.visit.id) } {
                            a href={ "/visits/" (missing.visit.id) } {
                                (zone.format(missing.visit.agreed_time, "%-d %b %H:%M")) " "
                                (missing.visit.purpose.label()) " · " (missing.visit.address.postcode)
                            }
                            ": everyone left at " (zone.hm(missing.left)) "; write-up missing since " (zone.hm(missing.due))
                            " (" (words::ago(missing.due, now)) ")"
                        }
                    }
                }
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
                                    (zone.hm(row.visit.agreed_time))
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
                                td.state {
                                    span.badge { (status.label) }
                                    @if let Some(since) = row.write_up_missing_since {
                                        div.flag { "Write-up missing since " (zone.hm(since)) }
                                    }
                                }
                                td.heard { (words::last_heard(zone, &row.state, now)) }
                                td.next { (words::next_contact(zone, &row.visit, &row.state, row.deadline.as_ref(), now)) }
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
        div #board-content data-open-alarms=(sounding) data-version=(version) { (inner) }
    }
}

/// `GET /`: the live board.
pub async fn board_page(
    BoardUser(session): BoardUser,
    State(state): State<AppState>,
) -> Result<Response, WebError> {
    let data = load_board(&state, &session).await?;
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
                @if session.user.staff.roles.contains(&Role::Admin) {
                    " · " a href="/admin/staff" { "Admin" }
                }
            }
            p #board-problem .problem hidden role="alert" {}
            div #board { (fragment_markup(&data, &session, now)) }
            p.small {
                (words::times_note(&session.user.school.time_zone, now)) " The board updates by itself; there \
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
    let data = load_board(&state, &session).await?;
    let mut response = fragment_markup(&data, &session, state.now()).into_response();
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
            let visit = match event.scope() {
                EventScope::School(school) => {
                    return (school == &scope.school).then(|| {
                        Event::default()
                            .event("board")
                            .json_data(&event)
                            .unwrap_or_else(|_| Event::default().event("board").data("changed"))
                    });
                }
                EventScope::Visit(visit) => visit.clone(),
            };
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
    store: crate::store::OfficeStore,
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

/// The alarm a path's `{id}` names, with its visit, if it belongs to the signed-in person's school (another
/// school's alarm is "there is no alarm", as a missing one).
async fn school_alarm(
    state: &AppState,
    session: &Session,
    path: Result<Path<String>, PathRejection>,
) -> Result<(Alarm, Visit), WebError> {
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
    found
        .filter(|(_, visit)| visit.school == session.user.school.id)
        .ok_or_else(no_such)
}

fn back_to(back: &str, visit: &Visit) -> Response {
    let back = if back == "visit" {
        format!("/visits/{}", visit.id)
    } else {
        "/".to_owned()
    };
    Redirect::to(&back).into_response()
}

/// `POST /alarms/{id}/acknowledge`: the signed-in person says they are handling an alarm, once. The
/// reminders stop; the alarm stays on the board until it is closed, and the visit stays watched.
pub async fn acknowledge(
    BoardUser(session): BoardUser,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    CsrfForm(form): CsrfForm<AckForm>,
) -> Result<Response, WebError> {
    let (alarm, visit) = school_alarm(&state, &session, path).await?;
    if let (Some(by), Some(at)) = (&alarm.acknowledged_by, alarm.acknowledged_at) {
        return Err(WebError::Conflict(format!(
            "this alarm was already acknowledged by {by} at {}",
            session.user.school.time_zone.hm(at)
        )));
    }
    let store = state.store.clone();
    let name = session.user.staff.name.clone();
    let now = state.now();
    let id = alarm.id;
    // Refused only when someone else pressed the button in the same instant.
    let entry = NewEntry::new(
        &session.user.school.id,
        &session.user.staff.id,
        Action::AcknowledgedAlarm,
    )
    .visit(&visit.id)
    .record(format!("alarm {id}"));
    let acknowledged =
        checked(move || store.acknowledge_alarm_audited(id, &name, Some(&entry), now))
            .await?
            .map_err(WebError::Conflict)?;
    tracing::info!(alarm = id, by = %session.user.staff.id, "alarm acknowledged");
    if let Some(escalation) = &state.escalation {
        escalation.acknowledged(acknowledged);
    }
    Ok(back_to(&form.back, &visit))
}

/// The Close form: how the alarm ended, and a note.
#[derive(Debug, Deserialize)]
pub struct CloseForm {
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    back: String,
}

/// `POST /alarms/{id}/close`: closes an acknowledged alarm with its outcome (spoke to the member of staff,
/// staff known to be safe, police called) and an optional note. Closing a duress alert raised on a phone
/// also records the office's stand-down, so it ends on the phones. Without an outcome, nothing changes.
pub async fn close(
    BoardUser(session): BoardUser,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    CsrfForm(form): CsrfForm<CloseForm>,
) -> Result<Response, WebError> {
    let (alarm, visit) = school_alarm(&state, &session, path).await?;
    let outcome = AlarmOutcome::parse(form.outcome.trim()).ok_or_else(|| {
        WebError::BadInput(
            "say how the alarm ended (spoke to the member of staff, staff known to be safe, or police \
             called); nothing was changed"
                .into(),
        )
    })?;
    let store = state.store.clone();
    let (by, name) = (
        session.user.staff.id.clone(),
        session.user.staff.name.clone(),
    );
    let now = state.now();
    let id = alarm.id;
    let note = form.note;
    let entry = NewEntry::new(&session.user.school.id, &by, Action::ClosedAlarm)
        .visit(&visit.id)
        .record(format!("alarm {id}"))
        .detail(outcome.label());
    let closing = checked(move || {
        store.close_alarm_audited(id, &by, &name, outcome, &note, Some(&entry), now)
    })
    .await?
    .map_err(WebError::Conflict)?;
    tracing::info!(
        alarm = id,
        by = %session.user.staff.id,
        outcome = outcome.as_str(),
        stood_down = closing.stand_down.is_some(),
        "alarm closed"
    );
    if let Some(escalation) = &state.escalation {
        if closing.stand_down.is_some() {
            escalation.visit_changed(visit.id.clone());
        }
        escalation.closed(closing.alarms);
    }
    Ok(back_to(&form.back, &visit))
}
