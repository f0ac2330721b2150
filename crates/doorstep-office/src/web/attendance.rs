//! The attendance view: absent pupils the policy says are due a visit (the day-3 rule counted in weekdays,
//! or from the policy's concern day for a pupil with a concern, contact made or not), each with a link to
//! request one, prefilled; and the concerns noted, with the form to note or take one off.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use doorstep_core::domain::VisitPurpose;
use doorstep_core::ids::PupilId;
use maud::{html, Markup};

use super::extract::{BoardUser, CsrfForm};
use super::forms::{wire, Fields};
use super::{checked, for_school, pages, WebError};
use crate::requests::visits_due;
use crate::state::AppState;

/// `GET /attendance`: absent pupils the policy says are due a visit, each with a prefilled request link,
/// and the concerns noted.
pub async fn attendance(
    BoardUser(session): BoardUser,
    State(state): State<AppState>,
) -> Result<Response, WebError> {
    let (absences, concerns, noted, pupils, staff) =
        for_school(&state, &session, |store, school| {
            let (absences, concerns) = store.absences(school)?;
            Ok((
                absences,
                concerns,
                store.absence_concerns(school)?,
                store.school_pupils(school)?,
                store.school_staff(school)?,
            ))
        })
        .await?;
    let policy = &session.user.policy;
    let zone = &session.user.school.time_zone;
    let today = zone.date(state.now());
    let due = visits_due(policy, &absences, &concerns, today);
    let name = |id: &PupilId| {
        pupils
            .iter()
            .find(|p| &p.id == id)
            .map_or(id.to_string(), |p| p.name.clone())
    };
    let safe_and_well = wire(VisitPurpose::SafeAndWellCheck);
    let body: Markup = html! {
        main {
            p { a href="/" { "← Back to the board" } }
            h1 { "Attendance: visits due" }
            p.small {
                "An unexplained absence with no contact made is due a safe and well visit on school day "
                (policy.absence_visit_day) " of absence. A pupil with a concern noted (safeguarding included) is due from day "
                (policy.absence_visit_day_with_concern) ", whether or not contact has been made. School days are counted as \
                 weekdays (Monday to Friday); term dates and bank holidays are not known here."
            }
            @if due.is_empty() {
                p #no-visits-due { "No pupil is due a visit today." }
            } @else {
                table #visits-due {
                    thead { tr { th { "Pupil" } th { "School days absent" } th { "Since" } th { "Concern" } th {} } }
                    tbody {
                        @for item in &due {
                            tr id={ "due-" (item.pupil) } {
                                td { (name(&item.pupil)) }
                                td { (item.days) }
                                td { (item.first_day.format("%a %-d %b")) }
                                td { @if item.concern { "yes" } }
                                td { a href={ "/visits/new?purpose=" (safe_and_well) "&pupil=" (item.pupil) } { "Request a visit" } }
                            }
                        }
                    }
                }
            }
            h2 { "Concerns noted" }
            p.small { "Note a concern here so the pupil is due a visit from the concern day; record what the concern is in the school's record system, not here." }
            @if noted.is_empty() {
                p #no-concerns { "No concern is noted." }
            } @else {
                table #concerns {
                    thead { tr { th { "Pupil" } th { "Noted" } th { "By" } th {} } }
                    tbody {
                        @for concern in &noted {
                            tr id={ "concern-" (concern.pupil) } {
                                td { (name(&concern.pupil)) }
                                td { (zone.format(concern.noted_at, "%a %-d %b %H:%M")) }
                                td { @match &concern.noted_by {
                                    Some(by) => (staff.iter().find(|m| &m.id == by).map_or(by.as_str(), |m| m.name.as_str())),
                                    None => "not on record",
                                } }
                                td {
                                    form.inline method="post" action="/attendance/concerns" {
                                        input type="hidden" name="csrf" value=(session.csrf_token);
                                        input type="hidden" name="pupil" value=(concern.pupil);
                                        input type="hidden" name="concern" value="off";
                                        button type="submit" { "Take off" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            form method="post" action="/attendance/concerns" #note-concern {
                input type="hidden" name="csrf" value=(session.csrf_token);
                input type="hidden" name="concern" value="on";
                label for="concern-pupil" { "Note a concern about " }
                select name="pupil" id="concern-pupil" {
                    option value="" { "— choose a pupil —" }
                    @for pupil in &pupils {
                        @if !concerns.contains(&pupil.id) { option value=(pupil.id) { (pupil.name) } }
                    }
                }
                " " button type="submit" { "Note the concern" }
            }
        }
    };
    Ok(pages::page("Attendance", Some(&session), body, None))
}

/// `POST /attendance/concerns`: notes (`concern=on`) or takes off (`concern=off`) a concern about a pupil.
pub async fn set_concern(
    BoardUser(session): BoardUser,
    State(state): State<AppState>,
    CsrfForm(fields): CsrfForm<Fields>,
) -> Result<Response, WebError> {
    let concern = match fields.one("concern") {
        "on" => true,
        "off" => false,
        other => {
            return Err(WebError::BadInput(format!(
                "“{other}” is neither noting a concern nor taking one off; nothing was changed"
            )))
        }
    };
    let pupil: PupilId = fields.one("pupil").parse().map_err(|_| {
        WebError::BadInput("choose a pupil of this school; nothing was changed".into())
    })?;
    let store = state.store.clone();
    let school = session.user.school.id.clone();
    let by = session.user.staff.id.clone();
    let now = state.now();
    checked(move || store.set_absence_concern(&school, &pupil, concern, &by, now))
        .await?
        .map_err(|problem| WebError::BadInput(format!("{problem}; nothing was changed")))?;
    Ok(Redirect::to("/attendance").into_response())
}
