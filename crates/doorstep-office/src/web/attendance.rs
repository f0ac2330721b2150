//! The attendance view: absent pupils the policy says are due a visit (the day-3 rule counted in weekdays),
//! each with a link to request one, prefilled.

use axum::extract::State;
use axum::response::Response;
use chrono::Local;
use doorstep_core::domain::VisitPurpose;
use doorstep_core::ids::PupilId;
use maud::{html, Markup};

use super::extract::BoardUser;
use super::forms::wire;
use super::{blocking, pages, WebError};
use crate::requests::visits_due;
use crate::state::AppState;

/// `GET /attendance`: absent pupils the policy says are due a visit, each with a prefilled request link.
pub async fn attendance(
    BoardUser(session): BoardUser,
    State(state): State<AppState>,
) -> Result<Response, WebError> {
    let store = state.store.clone();
    let school = session.user.school.id.clone();
    let (absences, concerns, pupils) = blocking(move || {
        let (absences, concerns) = store.absences(&school)?;
        Ok((absences, concerns, store.school_pupils(&school)?))
    })
    .await?;
    let policy = &session.user.policy;
    let today = state.now().with_timezone(&Local).date_naive();
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
                (policy.absence_visit_day) " of absence, or day " (policy.absence_visit_day_with_concern)
                " when there is a concern. School days are counted as weekdays (Monday to Friday); term dates and bank holidays are not known here."
            }
            @if due.is_empty() {
                p #no-visits-due { "No pupil is due a visit today." }
            } @else {
                table #visits-due {
                    thead { tr { th { "Pupil" } th { "School days absent" } th { "Since" } th { "Concern" } th {} } }
                    tbody {
                        @for item in &due {
                            tr {
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
        }
    };
    Ok(pages::page("Attendance", Some(&session), body, None))
}
