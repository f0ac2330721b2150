//! One visit's page: its state, open alarms, the runbook to read from when something goes wrong (with the
//! address and every number ready to read out), the timeline of events and the alarm log; and the
//! "duress heard" button reception presses when the code phrase is spoken on the phone.

use std::collections::HashMap;

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use doorstep_core::domain::{StaffMember, Visit};
use doorstep_core::ids::{StaffId, VisitId};
use doorstep_core::lifecycle::{VisitEvent, VisitState};
use doorstep_core::policy::Policy;
use doorstep_core::schedule::{next_deadline, AlarmLevel};
use maud::{html, Markup};

use super::board::alarm_card;
use super::extract::{may_authorise, BoardUser, CsrfForm, VisitInPath};
use super::forms::Fields;
use super::words::{self, hm, hms};
use super::{blocking, pages, school_visit, WebError};
use crate::alarms::{Alarm, AlarmKind, AlarmLogEntry, HEARD_BY_RECEPTION};
use crate::logins::Session;
use crate::state::AppState;
use crate::store::StoredEvent;

/// Everything the visit page shows.
struct VisitView {
    visit: Visit,
    state: VisitState,
    policy: Policy,
    events: Vec<StoredEvent>,
    alarms: Vec<Alarm>,
    log: Vec<AlarmLogEntry>,
    staff: Vec<StaffMember>,
}

/// The visit and everything its page shows, if it belongs to the signed-in person's school.
async fn load(state: &AppState, session: &Session, id: VisitId) -> Result<VisitView, WebError> {
    school_visit(state, session, id, |store, visit, visit_state| {
        Ok(VisitView {
            policy: store.policy(&visit.school)?,
            events: store.events_for_visit(&visit.id)?,
            alarms: store.alarms_for_visit(&visit.id)?,
            log: store.alarm_log(&visit.id)?,
            staff: store.school_staff(&visit.school)?,
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
    let title = format!(
        "{} {}",
        hm(view.visit.agreed_time),
        view.visit.purpose.label()
    );
    Ok(pages::page(&title, Some(&session), body, None))
}

fn visit_markup(view: &VisitView, session: &Session, now: DateTime<Utc>) -> Markup {
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
            (hm(visit.agreed_time)) " · " (visit.purpose.label()) " · " (visit.pupil.name) " "
            span class={ "badge " (status.class) } #visit-status { (status.label) }
        }
        p {
            (words::last_heard(&view.state, now)) " · " (words::next_contact(visit, &view.state, deadline.as_ref(), now))
            " · expected to last " (visit.expected_length.get()) " min"
        }
        p #visit-records {
            @if view.state.authorised.is_none() && may_authorise(&session.user) {
                a #authorise-link href={ "/visits/" (visit.id) "/authorise" } { "Authorise this visit" } " · "
            }
            a href={ "/visits/" (visit.id) "/timeline" } { "Full timeline" } " · "
            a href={ "/visits/" (visit.id) "/cpoms.txt" } { "Write-up for CPOMS" }
        }
        @if !open.is_empty() {
            section #open-alarms {
                h2 { "Open alarms" }
                @for alarm in &open { (alarm_card(alarm, visit, session, "visit", now)) }
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
                                td { (hms(stored.envelope.recorded_at)) }
                                td { (names.get(event.actor()).copied().unwrap_or(event.actor().as_str())) }
                                td { (event_words(event)) }
                                td.small { (hms(stored.received_at)) }
                            }
                        }
                    }
                }
            }
        }
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
                                td { (hms(entry.at)) }
                                td { "#" (entry.alarm) }
                                td { (words::capitalise(&entry.what.replace('_', " "))) ": " (entry.detail) }
                            }
                        }
                    }
                }
            }
        }
        p.small { "Times are the office's local time (" (words::zone(now)) ")." }
    }
}

/// An event in a few words, never with free text (notes may name a family).
fn event_words(event: &VisitEvent) -> String {
    match event {
        VisitEvent::Departed {
            expected_arrival,
            expected_end,
            ..
        } => format!(
            "left for the visit; expects to arrive {} and finish {}",
            hm(*expected_arrival),
            hm(*expected_end)
        ),
        VisitEvent::Cancelled { reason, .. } => {
            format!("cancelled: {}", reason.label().to_lowercase())
        }
        VisitEvent::CheckInMissed { due_at, .. } => {
            format!("missed the check-in due {}", hm(*due_at))
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
                li { "Acknowledge the alarm with your name once the police and the " (authoriser) " have been told. It stays on the board until then." }
            }
        }
    };
    let overdue_steps = html! {
        div class={ "steps" @if !duress_first && !open.is_empty() { " first" } } #runbook-overdue {
            h3 { "Overdue, or nobody can be reached" }
            ol {
                li { "Ring each member of staff on the visit (numbers below)." }
                li { "If you reach them and all is well, ask them to check in on the Doorstep app, then acknowledge the alarm with your name." }
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
                            td { a.phone href={ "tel:" (member.phone.replace(' ', "")) } { (member.phone) } }
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
                    li { (member.name) ": " a.phone href={ "tel:" (member.phone.replace(' ', "")) } { (member.phone) } }
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
                (words::minutes(policy.max_wait_for_family.duration())) "; an unacknowledged overdue alarm goes to the "
                (authoriser) " after " (words::minutes(policy.escalate_to_authoriser_after.duration())) "."
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
            hm(open.raised_at),
            open.about
        )));
    }
    let about = format!("{HEARD_BY_RECEPTION} ({})", session.user.staff.name);
    let store = state.store.clone();
    let now = state.now();
    let visit = id.clone();
    blocking(move || {
        store.raise_alarm(
            &visit,
            AlarmKind::Duress,
            &about,
            now,
            AlarmLevel::Authoriser,
            now,
        )
    })
    .await?;
    tracing::warn!(visit = %id, by = %session.user.staff.id, "duress heard by reception");
    if let Some(escalation) = &state.escalation {
        // Redraws every board, and the engine starts reminding the authoriser until it is acknowledged.
        escalation.visit_changed(id.clone());
    }
    Ok(Redirect::to(&format!("/visits/{id}#runbook")).into_response())
}
