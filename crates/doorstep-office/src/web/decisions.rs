//! The office's decisions on a visit, posted from its page: the authoriser declines a request (with the
//! reason), withdraws an authorisation, reschedules; anyone at the board marks a visit not going ahead (the
//! family rang reception). Each is made by [`crate::versions`] (the lifecycle checks it; its event, audit
//! entry and new version are stored together) and the escalation engine is told, so the board and the
//! deadlines follow at once. A refusal changes nothing and says why.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::NaiveDateTime;
use doorstep_core::domain::Visit;
use doorstep_core::ids::VisitId;

use super::briefing::MAX_TEXT;
use super::extract::{Authoriser, BoardUser, CsrfForm, VisitInPath};
use super::forms::Fields;
use super::{checked, school_visit, WebError};
use crate::logins::Session;
use crate::requests::{timing, RequestDetails};
use crate::state::AppState;
use crate::versions::VisitChange;

/// The visit and what the office keeps beside it, if it is in the signed-in person's school.
async fn load(
    state: &AppState,
    session: &Session,
    id: VisitId,
) -> Result<(Visit, Option<RequestDetails>), WebError> {
    school_visit(state, session, id, |store, visit, _| {
        let details = store.request_details(&visit.id)?;
        Ok((visit, details))
    })
    .await
}

/// The reason the form gives, or a readable refusal.
fn reason(fields: &Fields, what: &str) -> Result<String, WebError> {
    let reason = fields.one("reason");
    if reason.is_empty() {
        return Err(WebError::BadInput(format!(
            "say why {what}: the reason is kept with the visit; nothing was changed"
        )));
    }
    if reason.chars().count() > MAX_TEXT {
        return Err(WebError::BadInput(format!(
            "the reason is longer than {MAX_TEXT} characters; shorten it. Nothing was changed"
        )));
    }
    Ok(reason.to_owned())
}

/// Makes `change` as the signed-in person and returns to the visit's versions; the lifecycle's refusals
/// (someone already set off, the visit is over) are theirs to read.
async fn make(
    state: &AppState,
    session: &Session,
    visit: VisitId,
    change: VisitChange,
) -> Result<Response, WebError> {
    let store = state.store.clone();
    let by = session.user.staff.id.clone();
    let now = state.now();
    let id = visit.clone();
    let made = checked(move || store.change_visit(&id, &by, change, now)).await?;
    match made {
        Ok(version) => {
            tracing::info!(visit = %visit, by = %session.user.staff.id, version = version.version, change = ?version.change, "visit changed at the office");
            if let Some(escalation) = &state.escalation {
                escalation.visit_changed(visit.clone());
            }
            Ok(Redirect::to(&format!("/visits/{visit}#versions")).into_response())
        }
        Err(problem) => Err(WebError::NotNow(format!("{problem}; nothing was changed"))),
    }
}

/// A change that needs only a reason: the visit must be in the signed-in person's school and the form must
/// say why (`what` finishes "say why …"), then `change` is made from the reason.
async fn with_reason(
    state: &AppState,
    session: &Session,
    id: VisitId,
    fields: &Fields,
    what: &str,
    change: impl FnOnce(String) -> VisitChange,
) -> Result<Response, WebError> {
    load(state, session, id.clone()).await?;
    let reason = reason(fields, what)?;
    make(state, session, id, change(reason)).await
}

/// A handler for a change that needs only a reason ([`with_reason`]): who may make it (`$guard`), what it
/// says when no reason is given (`$what`), and the change made from the reason.
macro_rules! reason_handler {
    ($(#[$doc:meta])* $name:ident, $guard:ident, $what:literal, $change:ident) => {
        $(#[$doc])*
        pub async fn $name(
            $guard(session): $guard,
            State(state): State<AppState>,
            VisitInPath(id): VisitInPath,
            CsrfForm(fields): CsrfForm<Fields>,
        ) -> Result<Response, WebError> {
            with_reason(&state, &session, id, &fields, $what, |reason| {
                VisitChange::$change { reason }
            })
            .await
        }
    };
}

reason_handler!(
    /// `POST /visits/{id}/decline`: the authoriser turns the request down, with the reason.
    decline,
    Authoriser,
    "the visit is declined",
    Decline
);

reason_handler!(
    /// `POST /visits/{id}/withdraw`: the authoriser takes an authorisation back before anyone sets off.
    withdraw,
    Authoriser,
    "the authorisation is withdrawn",
    Withdraw
);

reason_handler!(
    /// `POST /visits/{id}/call-off`: the visit is not going ahead. Anyone at the board may say so (the
    /// family usually rings reception); staff already on the way stay watched until their own phones say
    /// they are coming back.
    call_off,
    BoardUser,
    "the visit is not going ahead",
    CallOff
);

/// `POST /visits/{id}/reschedule`: the authoriser moves the agreed time, under the same rules as a
/// request: outside school hours a responsible contact (the one on record, or one given here), and for an
/// evening visit the policy advises against, the authoriser's reason.
pub async fn reschedule(
    Authoriser(session): Authoriser,
    State(state): State<AppState>,
    VisitInPath(id): VisitInPath,
    CsrfForm(fields): CsrfForm<Fields>,
) -> Result<Response, WebError> {
    let (visit, details) = load(&state, &session, id.clone()).await?;
    let policy = &session.user.policy;
    let bad = |problem: String| WebError::BadInput(format!("{problem} Nothing was changed."));
    if let Some((name, _)) = fields.iter().find(|(_, v)| v.chars().count() > MAX_TEXT) {
        return Err(bad(format!(
            "“{name}” is longer than {MAX_TEXT} characters; shorten it."
        )));
    }
    let naive = NaiveDateTime::parse_from_str(fields.one("date_time"), "%Y-%m-%dT%H:%M")
        .map_err(|_| bad("Enter the new date and time (for example 2026-11-24T14:00).".into()))?;
    let zone = session.user.school.time_zone;
    let agreed_time = zone.instant(naive).ok_or_else(|| {
        bad("That time does not exist or happens twice on the clocks changing; choose another time."
            .into())
    })?;
    if agreed_time <= state.now() {
        return Err(bad(
            "That time is in the past: choose a time still to come.".into(),
        ));
    }
    let when = timing(policy, &zone, agreed_time, visit.expected_length);
    let (name, phone) = (fields.one("contact_name"), fields.one("contact_phone"));
    // The contact's number by the one rule the request form and the phone's dialler use.
    let phone = if phone.is_empty() {
        None
    } else {
        Some(
            doorstep_core::contact::PhoneNumber::parse(phone)
                .map_err(|e| bad(format!("The responsible contact's phone: {e}.")))?,
        )
    };
    let given = phone
        .filter(|_| !name.is_empty())
        .map(|phone| (name.to_owned(), phone));
    let on_record = details.as_ref().and_then(|d| d.responsible_contact.clone());
    if when.needs_responsible_contact(policy) && given.is_none() && on_record.is_none() {
        return Err(bad(format!(
            "The new time is outside school hours ({} to {} on weekdays): name the responsible contact who will check on the staff, with their phone number.",
            policy.school_hours.start.format("%H:%M"),
            policy.school_hours.end.format("%H:%M")
        )));
    }
    let override_reason = fields.one("override_reason");
    if when.needs_authoriser_override(policy) && override_reason.is_empty() {
        return Err(bad(
            "The new time is in the evening, which the policy advises against: give your reason for overriding it."
                .into(),
        ));
    }
    let change = VisitChange::Reschedule {
        agreed_time,
        timing: when,
        responsible_contact: given,
        override_reason: when
            .needs_authoriser_override(policy)
            .then(|| override_reason.to_owned()),
    };
    make(&state, &session, id, change).await
}
