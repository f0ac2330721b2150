//! The authoriser's decision: a requested visit with its risk assessment and briefing, and the form that
//! authorises it (approving a lone visit, overriding the policy's advice on evening visits with a reason),
//! recorded as an event of the visit.
//!
//! Only the policy's authoriser gets here ([`Authoriser`]); the lone-visit approver's role is checked again
//! for a lone visit.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use doorstep_core::domain::{StaffMember, Visit};
use doorstep_core::ids::{StaffId, VisitId};
use doorstep_core::lifecycle::Command;
use maud::html;

use super::briefing::{briefing_markup, fewer_than_policy, visit_page, MAX_TEXT};
use super::extract::{Authoriser, CsrfForm, VisitInPath};
use super::forms::Fields;
use super::{checked, school_visit, WebError};
use crate::logins::Session;
use crate::requests::{timing, RequestDetails, Timing};
use crate::state::AppState;

struct ToAuthorise {
    visit: Visit,
    authorised: bool,
    details: Option<RequestDetails>,
    timing: Timing,
    staff: Vec<StaffMember>,
}

async fn load_for_authorising(
    state: &AppState,
    session: &Session,
    id: VisitId,
) -> Result<ToAuthorise, WebError> {
    let policy = session.user.policy.clone();
    let zone = session.user.school.time_zone;
    school_visit(state, session, id, move |store, visit, visit_state| {
        // Worked out again from the visit itself, so a visit made before requests existed is judged too.
        Ok(ToAuthorise {
            authorised: visit_state.authorised.is_some(),
            details: store.request_details(&visit.id)?,
            timing: timing(&policy, &zone, visit.agreed_time, visit.expected_length),
            staff: store.school_staff(&visit.school)?,
            visit,
        })
    })
    .await
}

/// Why nothing can be authorised yet, in the words the authoriser reads.
pub(crate) const CODE_PHRASES_NOT_SET: &str = "No visit can be authorised until the school has set its own \
    code phrases (what staff say to a colleague, and to reception on the phone, when they need help): an admin \
    sets them on the policy page.";

/// A member of staff's name, or their id when they are not on record.
pub(crate) fn name_of(staff: &[StaffMember], id: &StaffId) -> String {
    staff
        .iter()
        .find(|m| &m.id == id)
        .map_or_else(|| id.as_str().to_owned(), |m| m.name.clone())
}

/// `GET /visits/{id}/authorise`: the visit, its risk assessment and briefing, and the decision form.
pub async fn authorise_page(
    Authoriser(session): Authoriser,
    State(state): State<AppState>,
    VisitInPath(id): VisitInPath,
) -> Result<Response, WebError> {
    let found = load_for_authorising(&state, &session, id).await?;
    Ok(authorise_response(&session, &found, None, StatusCode::OK))
}

fn authorise_response(
    session: &Session,
    found: &ToAuthorise,
    problem: Option<&str>,
    status: StatusCode,
) -> Response {
    let policy = &session.user.policy;
    let zone = &session.user.school.time_zone;
    let visit = &found.visit;
    let assessment = visit.briefing.risk_assessment();
    let lone = fewer_than_policy(visit, policy);
    let content = html! {
        @if let Some(problem) = problem { p.problem #authorise-problem role="alert" { (problem) } }
        p { (zone.format(visit.agreed_time, "%A %-d %B %Y, %H:%M")) ", for "
            (visit.expected_length.get()) " minutes, at " (visit.address.one_line()) }
        p { "Staff: " @for (i, member) in visit.staff.iter().enumerate() { @if i > 0 { ", " } (member.name) } }
        @if lone {
            section #lone-assessment {
                h2 { "Lone visit" }
                p { "One person is going. The policy asks for your explicit approval and the visit's own assessment:" }
                p.codephrase { (assessment.lone_visit_assessment.as_deref().unwrap_or("No lone-visit assessment was given.")) }
            }
        }
        @if found.timing.out_of_hours || found.timing.evening {
            section #out-of-hours {
                h2 { "Outside school hours" }
                @match found.details.as_ref().and_then(|d| d.responsible_contact.as_ref()) {
                    Some((name, phone)) => p { "Responsible contact checking on the staff: " strong { (name) } ", " (phone) },
                    None => p.problem { "No responsible contact is on record for this visit." },
                }
                @if found.timing.needs_authoriser_override(policy) {
                    p.problem { "This is an evening visit: the school's policy advises against evening visits. Authorising it needs your reason for overriding that advice." }
                }
            }
        }
        (briefing_markup(visit, &|id| name_of(&found.staff, id)))
        @if found.authorised {
            p #already-authorised { "This visit is already authorised." }
        } @else if policy.code_phrases.is_none() {
            p.problem #code-phrases-not-set role="alert" { (CODE_PHRASES_NOT_SET) }
        } @else {
            form method="post" action={ "/visits/" (visit.id) "/authorise" } #authorise-form {
                input type="hidden" name="csrf" value=(session.csrf_token);
                @if lone {
                    p { label { input type="checkbox" name="lone_visit_approved" value="on" id="lone_visit_approved";
                        " I approve this visit being made by one person, on the assessment above" } }
                }
                @if found.timing.needs_authoriser_override(policy) {
                    p { label for="override_reason" { "Why this evening visit should go ahead against the policy's advice" } br;
                        textarea name="override_reason" id="override_reason" rows="3" cols="60" {} }
                }
                p { button type="submit" #authorise-submit { "Authorise this visit" } }
            }
        }
    };
    visit_page(
        session,
        "Authorise a visit",
        "Authorise",
        visit,
        content,
        status,
    )
}

/// `POST /visits/{id}/authorise`: records the authoriser's decision as an event of the visit.
pub async fn authorise(
    Authoriser(session): Authoriser,
    State(state): State<AppState>,
    VisitInPath(id): VisitInPath,
    CsrfForm(fields): CsrfForm<Fields>,
) -> Result<Response, WebError> {
    let found = load_for_authorising(&state, &session, id.clone()).await?;
    let policy = &session.user.policy;
    if found.authorised {
        return Err(WebError::Conflict(
            "this visit is already authorised; nothing was changed".into(),
        ));
    }
    if policy.code_phrases.is_none() {
        return Err(WebError::Conflict(format!(
            "{CODE_PHRASES_NOT_SET} Nothing was recorded."
        )));
    }
    let refuse = |problem: &str| -> Result<Response, WebError> {
        Ok(authorise_response(
            &session,
            &found,
            Some(&format!("{problem} Nothing was recorded.")),
            StatusCode::BAD_REQUEST,
        ))
    };
    let lone = fewer_than_policy(&found.visit, policy);
    let lone_visit_approved = fields.ticked("lone_visit_approved");
    if lone {
        if !session
            .user
            .staff
            .roles
            .contains(&policy.lone_visit_approver)
        {
            return Err(WebError::Forbidden(format!(
                "Only the {} may approve a lone visit.",
                policy.lone_visit_approver.label()
            )));
        }
        if !lone_visit_approved {
            return refuse("This is a lone visit: tick to approve one person going, having read its lone-visit assessment.");
        }
    }
    let reason = fields.one("override_reason").to_owned();
    if found.timing.needs_authoriser_override(policy) {
        if reason.is_empty() {
            return refuse(
                "The policy advises against evening visits: give your reason for overriding it.",
            );
        }
        if reason.chars().count() > MAX_TEXT {
            return refuse("The reason is too long; shorten it.");
        }
    }
    if found.timing.needs_responsible_contact(policy)
        && found
            .details
            .as_ref()
            .and_then(|d| d.responsible_contact.as_ref())
            .is_none()
    {
        return refuse("This visit is outside school hours and has no responsible contact on record; it cannot be authorised as it stands.");
    }
    let store = state.store.clone();
    let now = state.now();
    let command = Command::Authorise {
        by: session.user.staff.id.clone(),
        lone_visit_approved: lone && lone_visit_approved,
    };
    let visit = id.clone();
    let override_reason = found
        .timing
        .needs_authoriser_override(policy)
        .then_some(reason);
    let recorded = checked(move || {
        let envelope = store.record_office_event(&visit, &command, now)?;
        if let Some(reason) = override_reason {
            store.set_authoriser_override(&visit, &reason)?;
        }
        Ok(envelope)
    })
    .await?;
    // The lifecycle's refusals (already authorised meanwhile, cancelled) are for the person to read.
    if let Err(problem) = recorded {
        return Err(WebError::Conflict(format!(
            "{problem}; nothing was changed"
        )));
    }
    tracing::info!(visit = %id, by = %session.user.staff.id, "visit authorised");
    if let Some(escalation) = &state.escalation {
        escalation.visit_changed(id.clone());
    }
    Ok(Redirect::to(&format!("/visits/{id}")).into_response())
}
