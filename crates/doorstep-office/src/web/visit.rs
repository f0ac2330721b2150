//! One visit's page: its state, the office's decisions the lifecycle would take now (decline, withdraw,
//! call off, reschedule, update the briefing), open alarms (acknowledge, then close with an outcome), the
//! runbook to read from when something goes wrong (with the address and every number ready to read out),
//! the risk assessment and briefing and the safeguarding notices (for those with a need to know), the
//! visit's versions, the timeline of events, each alarm with who was told (from the deliveries) and the
//! alarm log; and the "duress heard" button reception presses when the code phrase is spoken on the phone.

use std::collections::HashMap;

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use doorstep_core::domain::{SchoolTimeZone, StaffMember, Visit};
use doorstep_core::ids::{StaffId, VisitId};
use doorstep_core::lifecycle::{self, Command, VisitEvent, VisitState};
use doorstep_core::policy::Policy;
use doorstep_core::schedule::{next_deadline, AlarmLevel};
use maud::{html, Markup};

use super::board::{alarm_card, told_list};
use super::briefing::briefing_markup;
use super::extract::{may_authorise, BoardUser, CsrfForm, VisitInPath};
use super::forms::Fields;
use super::words;
use super::{blocking, pages, school_visit, WebError};
use crate::alarms::{Alarm, AlarmKind, AlarmLogEntry, NewAlarm, HEARD_BY_RECEPTION};
use crate::logins::Session;
use crate::notices::Notice;
use crate::reach;
use crate::state::AppState;
use crate::store::{OfficeStore, StoreError, StoredEvent};
use crate::versions::VisitVersion;

/// Everything the visit page shows.
struct VisitView {
    visit: Visit,
    state: VisitState,
    policy: Policy,
    events: Vec<StoredEvent>,
    alarms: Vec<Alarm>,
    log: Vec<AlarmLogEntry>,
    staff: Vec<StaffMember>,
    versions: Vec<VisitVersion>,
    told: Told,
}

/// Who was told of the visit's alarms and notices, from the deliveries.
struct Told {
    alarms: Vec<(i64, Vec<reach::Line>)>,
    notices: Vec<(Notice, Vec<reach::Line>)>,
}

impl Told {
    fn of_alarm(&self, id: i64) -> &[reach::Line] {
        self.alarms
            .iter()
            .find(|(alarm, _)| *alarm == id)
            .map_or(&[], |(_, lines)| lines.as_slice())
    }
}

/// Who was told of each of a visit's alarms and notices.
fn told_of_visit(
    store: &OfficeStore,
    visit: &Visit,
    alarms: &[Alarm],
    log: &[AlarmLogEntry],
) -> Result<Told, StoreError> {
    let context = store.reach_context(&visit.school, Some(&visit.id))?;
    let mut told = Told {
        alarms: Vec::new(),
        notices: Vec::new(),
    };
    for alarm in alarms {
        let deliveries = store.deliveries_for_alarm(alarm.id)?;
        told.alarms
            .push((alarm.id, context.alarm_lines(alarm, log, &deliveries)));
    }
    for notice in store.notices_for_visit(&visit.id)? {
        let deliveries = store.deliveries_for_notice(notice.id)?;
        let lines = context.notice_lines(&notice, &deliveries);
        told.notices.push((notice, lines));
    }
    Ok(told)
}

/// The visit and everything its page shows, if it belongs to the signed-in person's school.
async fn load(state: &AppState, session: &Session, id: VisitId) -> Result<VisitView, WebError> {
    school_visit(state, session, id, move |store, visit, visit_state| {
        let alarms = store.alarms_for_visit(&visit.id)?;
        let log = store.alarm_log(&visit.id)?;
        Ok(VisitView {
            policy: store.policy(&visit.school)?,
            events: store.events_for_visit(&visit.id)?,
            told: told_of_visit(store, &visit, &alarms, &log)?,
            alarms,
            log,
            staff: store.school_staff(&visit.school)?,
            versions: store.visit_versions(&visit.id)?,
            visit,
            state: visit_state,
        })
    })
    .await
}

/// `GET /visits/{id}`.
pub async fn visit_page(
    BoardUser(session): BoardUser,
    State(state): State<AppState>,
    VisitInPath(id): VisitInPath,
) -> Result<Response, WebError> {
    let view = load(&state, &session, id).await?;
    let now = state.now();
    let body = html! { main { (visit_markup(&view, &session, now)) } };
    let zone = &session.user.school.time_zone;
    let title = format!(
        "{} {}",
        zone.hm(view.visit.agreed_time),
        view.visit.purpose.label()
    );
    Ok(pages::page(&title, Some(&session), body, None))
}

fn visit_markup(view: &VisitView, session: &Session, now: DateTime<Utc>) -> Markup {
    let zone = &session.user.school.time_zone;
    let visit = &view.visit;
    let open: Vec<&Alarm> = view.alarms.iter().filter(|a| a.is_open()).collect();
    let deadline = next_deadline(visit, &view.state, &view.policy);
    let status = words::status(&view.state, &open, deadline.as_ref(), &view.policy, now);
    let names: HashMap<&StaffId, &str> = view
        .staff
        .iter()
        .map(|m| (&m.id, m.name.as_str()))
        .chain(visit.staff.iter().map(|s| (&s.id, s.name.as_str())))
        .collect();
    html! {
        p { a href="/" { "← Back to the board" } }
        h1 {
            (zone.hm(visit.agreed_time)) " · " (visit.purpose.label()) " · " (visit.pupil.name) " "
            span class={ "badge " (status.class) } #visit-status { (status.label) }
        }
        p {
            (words::last_heard(zone, &view.state, now)) " · " (words::next_contact(zone, visit, &view.state, deadline.as_ref(), now))
            " · expected to last " (visit.expected_length.get()) " min"
        }
        p #visit-records {
            @if view.state.authorised.is_none() && may_authorise(&session.user) {
                a #authorise-link href={ "/visits/" (visit.id) "/authorise" } { "Authorise this visit" } " · "
            }
            // Need to know: what the visit found is for the DSL, the authoriser and admins, not reception.
            @if session.user.may_read_records() {
                a #timeline-link href={ "/visits/" (visit.id) "/timeline" } { "Full timeline" } " · "
                a #write-up-link href={ "/visits/" (visit.id) "/cpoms.txt" } { "Write-up for " (view.policy.record_system) }
            }
        }
        (actions(view, session, now))
        @if !open.is_empty() {
            section #open-alarms {
                h2 { "Open alarms" }
                @for alarm in &open {
                    (alarm_card(alarm, visit, view.told.of_alarm(alarm.id), session, "visit", now))
                }
            }
        }
        form.duress-panel method="post" action={ "/visits/" (visit.id) "/duress-heard" } {
            input type="hidden" name="csrf" value=(session.csrf_token);
            button.duress-heard type="submit" #duress-heard { "Duress heard" }
            span {
                "Press when someone on this visit says the code phrase to you on the phone: "
                @match &view.policy.code_phrases {
                    Some(phrases) => strong { "“" (phrases.to_reception) "”" },
                    None => strong { "(not set yet)" },
                }
            }
        }
        (runbook(view, &open))
        // Need to know: the pupil's needs and the family's circumstances are not for reception.
        @if session.user.may_read_records() {
            (briefing_markup(visit, &|id| name(&names, id)))
        }
        (versions(view, session, &names))
        section #timeline {
            h2 { "Timeline" }
            @if view.events.is_empty() {
                p { "Nothing recorded yet." }
            } @else {
                table {
                    thead { tr { th { "Time" } th { "Who" } th { "What" } th { "Received" } } }
                    tbody {
                        @for stored in &view.events {
                            @let event = &stored.envelope.event;
                            tr {
                                td { (zone.hms(stored.envelope.recorded_at)) }
                                td { (names.get(event.actor()).copied().unwrap_or(event.actor().as_str())) }
                                td { (event_words(zone, event)) }
                                td.small { (zone.hms(stored.received_at)) }
                            }
                        }
                    }
                }
            }
        }
        (told_sections(view, session))
        section #alarm-log {
            h2 { "Alarm log" }
            @if view.log.is_empty() {
                p { "No alarms on this visit." }
            } @else {
                table {
                    thead { tr { th { "Time" } th { "Alarm" } th { "What" } } }
                    tbody {
                        @for entry in &view.log {
                            tr {
                                td { (zone.hms(entry.at)) }
                                td { "#" (entry.alarm) }
                                td { (words::log_entry(entry)) }
                            }
                        }
                    }
                }
            }
        }
        p.small { (words::times_note(zone, now)) }
    }
}

fn name(names: &HashMap<&StaffId, &str>, id: &StaffId) -> String {
    names
        .get(id)
        .map_or_else(|| id.as_str().to_owned(), |n| (*n).to_owned())
}

/// Whether the lifecycle would take `command` now: the page offers only what would be accepted.
fn would_accept(view: &VisitView, command: &Command, now: DateTime<Utc>) -> bool {
    lifecycle::decide(&view.state, command, &view.policy, now).is_ok()
}

/// The office's decisions on the visit that the lifecycle would take now, for who may make them: the
/// authoriser declines, withdraws, reschedules and updates the briefing; anyone at the board may mark it
/// not going ahead.
fn actions(view: &VisitView, session: &Session, now: DateTime<Utc>) -> Markup {
    let visit = &view.visit;
    let by = session.user.staff.id.clone();
    let reason = "a reason".to_owned();
    let authoriser = may_authorise(&session.user);
    let decline = authoriser
        && would_accept(
            view,
            &Command::Decline {
                by: by.clone(),
                reason: reason.clone(),
            },
            now,
        );
    let withdraw = authoriser
        && would_accept(
            view,
            &Command::WithdrawAuthorisation {
                by: by.clone(),
                reason: reason.clone(),
            },
            now,
        );
    let reschedule = authoriser
        && would_accept(
            view,
            &Command::Reschedule {
                by: by.clone(),
                agreed_time: visit.agreed_time,
            },
            now,
        );
    let update = authoriser
        && would_accept(
            view,
            &Command::UpdateBriefing {
                by: by.clone(),
                version: view.state.briefing_version.max(visit.briefing.version) + 1,
            },
            now,
        );
    let call_off = would_accept(view, &Command::CallOff { by, reason }, now);
    let reason_form = |action: &str, id: &str, label: &str, button: &str| {
        html! {
            form.decision method="post" action={ "/visits/" (visit.id) "/" (action) } id=(id) {
                input type="hidden" name="csrf" value=(session.csrf_token);
                label for={ (id) "-reason" } { (label) } br;
                textarea name="reason" id={ (id) "-reason" } rows="2" cols="50" required {}
                " " button type="submit" { (button) }
            }
        }
    };
    let local = session.user.school.time_zone.local(visit.agreed_time);
    html! {
        @if decline || withdraw || reschedule || update || call_off {
            section #visit-actions {
                h2 { "Decisions" }
                @if update {
                    p { a #update-briefing-link href={ "/visits/" (visit.id) "/briefing" } { "Update the risk assessment and briefing" }
                        span.small { " (the staff's phones ask them to read it again before they set off)" } }
                }
                @if reschedule {
                    form.decision method="post" action={ "/visits/" (visit.id) "/reschedule" } #reschedule-form {
                        input type="hidden" name="csrf" value=(session.csrf_token);
                        label for="reschedule-date_time" { "Move to " }
                        input type="datetime-local" name="date_time" id="reschedule-date_time" value=(local.format("%Y-%m-%dT%H:%M"));
                        details {
                            summary { "Outside school hours or in the evening" }
                            label for="reschedule-contact_name" { "Responsible contact's name " } input name="contact_name" id="reschedule-contact_name";
                            " " label for="reschedule-contact_phone" { "phone " } input name="contact_phone" id="reschedule-contact_phone";
                            br; label for="reschedule-override_reason" { "Why an evening visit should go ahead against the policy's advice " }
                            input name="override_reason" id="reschedule-override_reason" size="50";
                        }
                        button type="submit" { "Reschedule" }
                    }
                }
                @if decline { (reason_form("decline", "decline-form", "Why the request is declined", "Decline the request")) }
                @if withdraw { (reason_form("withdraw", "withdraw-form", "Why the authorisation is withdrawn", "Withdraw the authorisation")) }
                @if call_off { (reason_form("call-off", "call-off-form", "Why the visit is not going ahead (for example: the family rang to cancel)", "Not going ahead")) }
            }
        }
    }
}

/// Every version of the visit: who changed what, and when. What changed is named, never shown (the board
/// is reception's too); the reasons given are for those with a need to know.
fn versions(view: &VisitView, session: &Session, names: &HashMap<&StaffId, &str>) -> Markup {
    let zone = &session.user.school.time_zone;
    let readers = session.user.may_read_records();
    html! {
        section #versions {
            h2 { "Versions" }
            table {
                thead { tr {
                    th { "Version" } th { "When" } th { "Who" } th { "What" } th { "What changed" }
                    @if readers { th { "Reason given" } }
                } }
                tbody {
                    @for (i, version) in view.versions.iter().enumerate() {
                        @let before = i.checked_sub(1).and_then(|j| view.versions.get(j));
                        @let changed = before.map(|b| version.differences(b)).unwrap_or_default();
                        tr id={ "version-" (version.version) } {
                            td { (version.version) }
                            td { @if let Some(at) = version.at { (zone.format(at, "%-d %b %H:%M")) } }
                            td { @match &version.by { Some(by) => (name(names, by)), None => "not on record" } }
                            td { (version.change.map_or("changed it", |c| c.label())) }
                            td {
                                (changed.join(", "))
                                @if changed.contains(&"agreed time") { " (now " (zone.format(version.visit.agreed_time, "%-d %b %H:%M")) ")" }
                                @if version.visit.briefing.version > 0 && changed.iter().any(|c| *c != "agreed time") { " · briefing version " (version.visit.briefing.version) }
                            }
                            @if readers { td { (version.reason) } }
                        }
                    }
                }
            }
        }
    }
}

/// Each alarm of the visit (closed ones too) with how it ended and who was told, and each safeguarding
/// notice with where it went (never its words).
fn told_sections(view: &VisitView, session: &Session) -> Markup {
    let zone = &session.user.school.time_zone;
    html! {
        @if !view.alarms.is_empty() {
            section #alarms-told {
                h2 { "Alarms: who was told, and how each ended" }
                @for alarm in &view.alarms {
                    div.alarm-record id={ "alarm-record-" (alarm.id) } {
                        strong { "#" (alarm.id) " " (words::alarm_sentence(zone, alarm, &view.visit)) }
                        div.small {
                            "Raised " (zone.hm(alarm.raised_at))
                            @if let Some(level) = words::alarm_level(zone, alarm, &view.policy) { " · " (level) }
                            @if let (Some(by), Some(at)) = (&alarm.acknowledged_by, alarm.acknowledged_at) {
                                " · acknowledged by " (by) " at " (zone.hm(at))
                            }
                            @if let (Some(by), Some(at)) = (&alarm.closed_by, alarm.closed_at) {
                                " · closed by " (by) " at " (zone.hm(at))
                                @if let Some(outcome) = alarm.outcome { ": " (outcome.label().to_lowercase()) }
                            }
                        }
                        @if let Some(note) = &alarm.close_note { div.small { "Note: " (note) } }
                        @let told = view.told.of_alarm(alarm.id);
                        @if told.is_empty() {
                            p.small { "Nothing was sent outside this board for this alarm." }
                        }
                        (told_list(zone, told))
                    }
                }
            }
        }
        // Need to know: that a concern or an incident was raised on a visit is not for reception.
        @if !view.told.notices.is_empty() && session.user.may_read_records() {
            section #notices-told {
                h2 { "Safeguarding notices: where each went" }
                @for (notice, lines) in &view.told.notices {
                    div.notice id={ "notice-" (notice.id) } {
                        strong { (notice.kind.label()) } " · " (zone.hm(notice.raised_at)) " · for the " (notice.role.label())
                        (told_list(zone, lines))
                    }
                }
            }
        }
    }
}

/// An event in a few words, never with free text (notes may name a family).
fn event_words(zone: &SchoolTimeZone, event: &VisitEvent) -> String {
    match event {
        VisitEvent::Departed {
            expected_arrival,
            expected_end,
            ..
        } => format!(
            "left for the visit; expects to arrive {} and finish {}",
            zone.hm(*expected_arrival),
            zone.hm(*expected_end)
        ),
        VisitEvent::Cancelled { reason, .. } => {
            format!("cancelled: {}", reason.label().to_lowercase())
        }
        VisitEvent::CheckInMissed { due_at, .. } => {
            format!("missed the check-in due {}", zone.hm(*due_at))
        }
        other => other.summary().to_owned(),
    }
}

/// The runbook: what to do, from the school's policy, with the address and the numbers to ring.
fn runbook(view: &VisitView, open: &[&Alarm]) -> Markup {
    let visit = &view.visit;
    let policy = &view.policy;
    let authoriser = policy.authoriser.label();
    let authorisers: Vec<&StaffMember> = view
        .staff
        .iter()
        .filter(|m| m.roles.contains(&policy.authoriser))
        .collect();
    let duress_first =
        view.state.duress_active() || open.iter().any(|a| a.kind == AlarmKind::Duress);
    let duress_steps = html! {
        div class={ "steps" @if duress_first { " first" } } #runbook-duress {
            h3 { "Duress: the code phrase, or a duress alert from a phone" }
            ol {
                li { "Keep your voice ordinary. If they are on the phone to you, answer as if it were a normal call; do not repeat the phrase back." }
                li { strong { "Ring 999 and ask for the police." } " The code phrase means they need help now; the policy is that the police are called where there is a threat or use of violence. Read out the address above." }
                li { "Tell the " (authoriser) " at once (numbers below)." }
                li { "Do not ring the staff on the visit unless the police or the " (authoriser) " ask you to: a ringing phone could give them away." }
                li { "Acknowledge the alarm as soon as you are handling it (it stops the reminders). Close it, saying how it ended, once the police and the " (authoriser) " have been told: for an alert from a phone, closing it also stands it down on the phones." }
            }
        }
    };
    let overdue_steps = html! {
        div class={ "steps" @if !duress_first && !open.is_empty() { " first" } } #runbook-overdue {
            h3 { "Overdue, or nobody can be reached" }
            ol {
                li { "Ring each member of staff on the visit (numbers below)." }
                li { "Acknowledge the alarm while you try: it says you are handling it. If you reach them and all is well, ask them to check in on the Doorstep app, then close the alarm with how it ended. The office keeps watching: if they stay silent, the next missed check-in raises a new alarm." }
                li { "If you cannot reach them, tell the " (authoriser) " as soon as possible: the policy says the " (authoriser) " decides what happens next, police included." }
                li {
                    strong { "999" } " at once if there is any sign of a threat or use of violence, or immediate danger. "
                    "Otherwise, for concern for a worker's welfare, the " (authoriser) " decides; "
                    strong { "101" } " is the police non-emergency number."
                }
            }
        }
    };
    html! {
        section #runbook .runbook {
            h2 { "Runbook" }
            h3 { "Address" }
            p.address #runbook-address { (visit.address.one_line()) }
            @if duress_first { (duress_steps) (overdue_steps) } @else { (overdue_steps) (duress_steps) }
            h3 { "Staff on this visit" }
            table #runbook-staff {
                tbody {
                    @for member in &visit.staff {
                        tr {
                            td { (member.name) }
                            td { a.phone href=(member.phone.tel_uri()) { (member.phone) } }
                            td { (view.state.progress(&member.id).map_or("not on record", |p| p.label())) }
                        }
                    }
                }
            }
            h3 { "The " (authoriser) }
            @if authorisers.is_empty() {
                p.problem { "No " (authoriser) " is on record for this school: tell the most senior person in school." }
            }
            ul {
                @for member in &authorisers {
                    li { (member.name) ": " a.phone href=(member.phone.tel_uri()) { (member.phone) } }
                }
            }
            h3 { "The school's code phrases" }
            @match &policy.code_phrases {
                Some(phrases) => ul {
                    li { "On the phone to reception: " strong { "“" (phrases.to_reception) "”" } }
                    li { "To a colleague in the room: " strong { "“" (phrases.to_colleague) "”" } }
                },
                None => p.problem { "The school has not set its code phrases yet." },
            }
            p.small {
                "From the school's policy: the office checks in "
                (words::minutes(policy.first_check_in_after_start.duration())) " after the visit's start, then staff report every "
                (words::minutes(policy.check_in_interval.duration())) "; staff wait at the door at most "
                (words::minutes(policy.max_wait_for_family.duration())) "; an alarm nobody acknowledges reaches the "
                (authoriser) "'s level after " (words::minutes(policy.escalate_to_authoriser_after.duration()))
                ", and the deputy and further contacts " (words::minutes(policy.escalate_further_after.duration()))
                " after that (who is actually told is listed with each alarm)."
            }
        }
    }
}

/// `POST /visits/{id}/duress-heard`: reception heard the code phrase; a duress alarm goes straight to the
/// authoriser level and stays until someone acknowledges it.
pub async fn duress_heard(
    BoardUser(session): BoardUser,
    State(state): State<AppState>,
    VisitInPath(id): VisitInPath,
    _: CsrfForm<Fields>,
) -> Result<Response, WebError> {
    let view = load(&state, &session, id.clone()).await?;
    // A second tap (or a colleague's) while one is open would only add noise: the first is on the board.
    if let Some(open) = view
        .alarms
        .iter()
        .find(|a| a.is_open() && a.heard_by_reception())
    {
        return Err(WebError::Conflict(format!(
            "duress for this visit was already raised at {} ({}); it stays on the board until acknowledged",
            session.user.school.time_zone.hm(open.raised_at),
            open.about
        )));
    }
    let about = format!("{HEARD_BY_RECEPTION} ({})", session.user.staff.name);
    let store = state.store.clone();
    let now = state.now();
    let visit = id.clone();
    let entry = crate::audit::NewEntry::new(
        &session.user.school.id,
        &session.user.staff.id,
        crate::audit::Action::HeardDuress,
    )
    .visit(&visit);
    let raised = blocking(move || {
        let heard = NewAlarm {
            visit: &visit,
            kind: AlarmKind::Duress,
            about: &about,
            due_at: now,
            level: AlarmLevel::Authoriser,
        };
        let raised = store.raise_alarm(heard, now)?;
        store.audit(&entry, now)?;
        Ok(raised)
    })
    .await?;
    tracing::warn!(visit = %id, by = %session.user.staff.id, "duress heard by reception");
    if let (Some(escalation), Some(alarm)) = (&state.escalation, raised) {
        // Redraws every board, hands the alarm to its targets at once, and the engine escalates it until
        // someone acknowledges it.
        escalation.raised(alarm);
    }
    Ok(Redirect::to(&format!("/visits/{id}#runbook")).into_response())
}
