//! Requesting a visit: the form (purpose, pupil, address, time, staff, risk assessment and briefing) and
//! its checks.
//!
//! Every rule is checked here on the server, whatever the form showed: a refused request stores nothing and
//! comes back with the person's entries and one clear sentence saying what to change.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Local, NaiveDateTime, TimeZone, Utc};
use doorstep_core::domain::{
    Address, AssessedRisk, Briefing, Pupil, RiskAssessment, Role, StaffMember, Visit, VisitStaff,
};
use doorstep_core::ids::{PupilId, VisitId};
use doorstep_core::policy::{Policy, PolicyMinutes};
use maud::html;

use super::extract::{CsrfForm, Requester};
use super::forms::{wire, Fields};
use super::{blocking, checked, pages, words, WebError};
use crate::logins::{OfficeUser, Session};
use crate::requests::{timing, RequestDetails, Timing, MAX_VISIT_MINUTES};
use crate::state::AppState;

/// How many free risk items (specific to this visit) the form offers.
const FREE_RISKS: usize = 3;
/// The longest any free-text field may be: enough for a paragraph, small enough to refuse a flood.
pub(crate) const MAX_TEXT: usize = 4000;

/// Everything the request form needs from the store.
struct FormData {
    policy: Policy,
    pupils: Vec<Pupil>,
    staff: Vec<StaffMember>,
}

async fn form_data(state: &AppState, session: &Session) -> Result<FormData, WebError> {
    let store = state.store.clone();
    let school = session.user.school.id.clone();
    let policy = session.user.policy.clone();
    blocking(move || {
        Ok(FormData {
            policy,
            pupils: store.school_pupils(&school)?,
            staff: store.school_staff(&school)?,
        })
    })
    .await
}

/// `GET /visits/new`, optionally prefilled (`?purpose=safe_and_well_check&pupil=pupil-ava`).
pub async fn new_visit_page(
    Requester(session): Requester,
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let data = form_data(&state, &session).await?;
    let mut fields = Fields::default();
    for key in ["purpose", "pupil"] {
        if let Some(value) = query.get(key) {
            fields.set(key, value.clone());
        }
    }
    fields.set("length_minutes", "45");
    for hazard in &data.policy.standard_hazards {
        fields.set(
            &format!("controls_{}", wire(*hazard)),
            hazard.default_controls().join("\n"),
        );
    }
    // The address starts from the pupil's last visit, when there was one.
    if let Some(pupil) = query.get("pupil").and_then(|p| p.parse::<PupilId>().ok()) {
        let store = state.store.clone();
        if let Some(address) = blocking(move || store.last_known_address(&pupil)).await? {
            fields.set("address_lines", address.lines.join("\n"));
            fields.set("postcode", address.postcode);
        }
    }
    Ok(request_page(
        &session,
        &data,
        &fields,
        None,
        StatusCode::OK,
        state.now(),
    ))
}

fn request_page(
    session: &Session,
    data: &FormData,
    fields: &Fields,
    problem: Option<&str>,
    status: StatusCode,
    now: DateTime<Utc>,
) -> Response {
    let policy = &data.policy;
    let visiting: Vec<&StaffMember> = data
        .staff
        .iter()
        .filter(|m| m.roles.contains(&Role::VisitingStaff) || m.may_visit_homes())
        .collect();
    let staff_select = |name: &str| {
        let chosen = fields.one(name);
        html! {
            select name=(name) id=(name) {
                option value="" { "— choose —" }
                @for member in &visiting {
                    option value=(member.id) selected[chosen == member.id.as_str()] {
                        (member.name)
                        @if !member.may_visit_homes() { " (no DBS check on record)" }
                    }
                }
            }
        }
    };
    let text = |name: &str| fields.one(name).to_owned();
    let body = html! {
        main {
            p { a href="/" { "← Back to the board" } }
            h1 { "Request a home visit" }
            @if let Some(problem) = problem {
                p.problem #request-problem role="alert" { (problem) }
            }
            p.small {
                "The " (policy.authoriser.label()) " authorises every visit. Visits are made in pairs; school hours are "
                (policy.school_hours.start.format("%H:%M")) " to " (policy.school_hours.end.format("%H:%M"))
                " on weekdays (the office's local time, " (words::zone(now)) ")."
            }
            form.request method="post" action="/visits/new" #request-form {
                input type="hidden" name="csrf" value=(session.csrf_token);
                h2 { "The visit" }
                p { label for="purpose" { "Purpose " }
                    select name="purpose" id="purpose" {
                        option value="" { "— choose —" }
                        @for purpose in &policy.purposes {
                            @let key = wire(*purpose);
                            option value=(key) selected[fields.one("purpose") == key] { (purpose.label()) }
                        }
                    }
                }
                p { label for="pupil" { "Pupil " }
                    select name="pupil" id="pupil" {
                        option value="" { "— choose —" }
                        @for pupil in &data.pupils {
                            option value=(pupil.id) selected[fields.one("pupil") == pupil.id.as_str()] { (pupil.name) }
                        }
                    }
                }
                p { label for="address_lines" { "Address (one line each)" } br;
                    textarea name="address_lines" id="address_lines" rows="3" cols="40" { (text("address_lines")) } }
                p { label for="postcode" { "Postcode " } input name="postcode" id="postcode" value=(text("postcode")); }
                p { label for="date_time" { "Date and time " }
                    input type="datetime-local" name="date_time" id="date_time" value=(text("date_time"));
                    " " label for="length_minutes" { "expected length (minutes) " }
                    input type="number" min="1" max=(MAX_VISIT_MINUTES) name="length_minutes" id="length_minutes" value=(text("length_minutes"));
                }
                h2 { "Who is going" }
                p { label for="staff_1" { "First member of staff " } (staff_select("staff_1")) }
                p { label for="staff_2" { "Second member of staff " } (staff_select("staff_2")) }
                p { label { input type="checkbox" name="lone" value="on" checked[fields.ticked("lone")];
                    " Lone visit (one person): the " (policy.lone_visit_approver.label()) " must approve it explicitly" } }
                p { label for="lone_assessment" { "Lone-visit risk assessment: why it is safe for one person to go (required for a lone visit)" } br;
                    textarea name="lone_assessment" id="lone_assessment" rows="3" cols="60" { (text("lone_assessment")) } }
                h2 { "Outside school hours" }
                p.small { "A visit outside school hours needs a named responsible contact who will check on the staff." }
                p { label for="contact_name" { "Responsible contact's name " } input name="contact_name" id="contact_name" value=(text("contact_name"));
                    " " label for="contact_phone" { "phone " } input name="contact_phone" id="contact_phone" value=(text("contact_phone"));
                    " " label for="contact_email" { "email (optional: they are emailed the visit's alarms) " }
                    input name="contact_email" id="contact_email" type="email" value=(text("contact_email")); }
                h2 { "Risk assessment" }
                table #risk-assessment {
                    thead { tr { th { "Hazard" } th { "Controls (one a line)" } } }
                    tbody {
                        @for hazard in &policy.standard_hazards {
                            @let name = format!("controls_{}", wire(*hazard));
                            tr { td { (hazard.label()) }
                                 td { textarea name=(name) rows="3" cols="60" { (text(&name)) } } }
                        }
                        @for i in 1..=FREE_RISKS {
                            @let description = format!("risk_{i}_description");
                            @let controls = format!("risk_{i}_controls");
                            tr { td { input name=(description) placeholder="Anything specific to this visit" value=(text(&description)); }
                                 td { textarea name=(controls) rows="2" cols="60" { (text(&controls)) } } }
                        }
                    }
                }
                h2 { "Briefing" }
                @for (name, label) in BRIEFING_FIELDS {
                    p { label for=(name) { (label) } br;
                        textarea name=(name) id=(name) rows="2" cols="60" { (text(name)) } }
                }
                p { button type="submit" #request-submit { "Request the visit" } }
            }
        }
    };
    let mut response = pages::page("Request a visit", Some(session), body, None);
    *response.status_mut() = status;
    response
}

const BRIEFING_FIELDS: [(&str, &str); 5] = [
    ("pets", "Pets at the address"),
    ("pupil_needs", "The pupil's medical needs and behaviour"),
    ("family", "Family circumstances and cultural sensitivities"),
    ("area", "The area"),
    ("parking", "Where to park"),
];

/// A request that passed every check the form itself can make; the store still checks DBS.
struct Draft {
    visit: Visit,
    details: RequestDetails,
}

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Checks a request against the policy and the school's records, in the order a person fills the form in.
fn check_request(
    fields: &Fields,
    data: &FormData,
    user: &OfficeUser,
    now: DateTime<Utc>,
) -> Result<Draft, String> {
    let policy = &data.policy;
    if let Some((name, _)) = fields.iter().find(|(_, v)| v.chars().count() > MAX_TEXT) {
        return Err(format!(
            "“{name}” is longer than {MAX_TEXT} characters; shorten it"
        ));
    }
    let purpose = policy
        .purposes
        .iter()
        .copied()
        .find(|p| wire(*p) == fields.one("purpose"))
        .ok_or("Choose a purpose from this school's policy.")?;
    let pupil = data
        .pupils
        .iter()
        .find(|p| p.id.as_str() == fields.one("pupil"))
        .cloned()
        .ok_or("Choose a pupil of this school.")?;
    let address = Address {
        lines: lines(fields.one("address_lines")),
        postcode: fields.one("postcode").to_owned(),
    };
    if address.lines.is_empty() || address.postcode.is_empty() {
        return Err("Enter the address: at least one line and the postcode.".into());
    }
    let naive = NaiveDateTime::parse_from_str(fields.one("date_time"), "%Y-%m-%dT%H:%M")
        .map_err(|_| "Enter the date and time of the visit (for example 2026-11-24T10:00).")?;
    let start = Local.from_local_datetime(&naive).single().ok_or(
        "That time does not exist or happens twice on the clocks changing; choose another time.",
    )?;
    let agreed_time = start.with_timezone(&Utc);
    if agreed_time <= now {
        return Err("That time is in the past: choose a time still to come.".into());
    }
    let length = fields.one("length_minutes")
        .parse::<u32>()
        .ok()
        .filter(|m| (1..=MAX_VISIT_MINUTES).contains(m))
        .and_then(|m| PolicyMinutes::new(m).ok())
        .ok_or(format!(
            "The expected length must be a whole number of minutes between 1 and {MAX_VISIT_MINUTES}."
        ))?;
    let staff_member = |name: &str| {
        let id = fields.one(name);
        if id.is_empty() {
            return Ok(None);
        }
        data.staff
            .iter()
            .find(|m| m.id.as_str() == id)
            .map(Some)
            .ok_or_else(|| format!("There is no member of staff “{id}” at this school."))
    };
    let first = staff_member("staff_1")?;
    let second = staff_member("staff_2")?;
    let lone = fields.ticked("lone");
    let lone_assessment = fields.one("lone_assessment");
    let going: Vec<&StaffMember> = match (lone, first, second) {
        (false, Some(a), Some(b)) if a.id == b.id => {
            return Err("Choose two different people: visits are made in pairs.".into())
        }
        (false, Some(a), Some(b)) => vec![a, b],
        (false, _, _) => {
            return Err("Visits are made in pairs: choose two members of staff, or tick “lone visit” and give its own risk assessment.".into())
        }
        (true, Some(a), None) | (true, None, Some(a)) => vec![a],
        (true, Some(_), Some(_)) => {
            return Err("A lone visit is made by one person: choose only one member of staff, or untick “lone visit”.".into())
        }
        (true, None, None) => return Err("Choose the member of staff making the lone visit.".into()),
    };
    if lone && lone_assessment.is_empty() {
        return Err(
            "A lone visit needs its own risk assessment: say why it is safe for one person to go."
                .into(),
        );
    }
    let timing: Timing = timing(policy, start, length);
    let contact = (fields.one("contact_name"), fields.one("contact_phone"));
    let responsible_contact = if timing.needs_responsible_contact(policy) {
        if contact.0.is_empty() || contact.1.is_empty() {
            return Err(format!(
                "This visit is outside school hours ({} to {} on weekdays): name the responsible contact who will check on the staff, with their phone number.",
                policy.school_hours.start.format("%H:%M"),
                policy.school_hours.end.format("%H:%M")
            ));
        }
        Some((contact.0.to_owned(), contact.1.to_owned()))
    } else if !contact.0.is_empty() && !contact.1.is_empty() {
        Some((contact.0.to_owned(), contact.1.to_owned()))
    } else {
        None
    };
    let contact_email =
        crate::requests::contact_email(fields.one("contact_email"), responsible_contact.is_some())?;
    let mut risks: Vec<AssessedRisk> = policy
        .standard_hazards
        .iter()
        .map(|hazard| AssessedRisk {
            hazard: Some(*hazard),
            description: hazard.label().to_owned(),
            controls: lines(fields.one(&format!("controls_{}", wire(*hazard)))),
        })
        .collect();
    if let Some(bare) = risks.iter().find(|r| r.controls.is_empty()) {
        return Err(format!(
            "The risk assessment needs at least one control for “{}”.",
            bare.description
        ));
    }
    for i in 1..=FREE_RISKS {
        let description = fields.one(&format!("risk_{i}_description"));
        let controls = lines(fields.one(&format!("risk_{i}_controls")));
        match (description.is_empty(), controls.is_empty()) {
            (true, true) => {}
            (false, false) => risks.push(AssessedRisk {
                hazard: None,
                description: description.to_owned(),
                controls,
            }),
            _ => {
                return Err(format!(
                    "Risk item {i} needs both a description and its controls."
                ))
            }
        }
    }
    let mut briefing = Briefing::new(RiskAssessment {
        risks,
        lone_visit_assessment: lone.then(|| lone_assessment.to_owned()),
        assessed_by: Some(user.staff.id.clone()),
        assessed_on: Some(now.date_naive()),
    });
    briefing.pets = fields.one("pets").to_owned();
    briefing.pupil_needs = fields.one("pupil_needs").to_owned();
    briefing.family = fields.one("family").to_owned();
    briefing.area = fields.one("area").to_owned();
    briefing.parking = fields.one("parking").to_owned();
    let id: VisitId = format!("visit-{}", uuid::Uuid::new_v4().simple())
        .parse()
        .map_err(|_| "The office could not make an id for the visit; try again.")?;
    Ok(Draft {
        visit: Visit {
            id,
            school: user.school.id.clone(),
            purpose,
            pupil,
            address,
            agreed_time,
            expected_length: length,
            staff: going
                .iter()
                .map(|m| VisitStaff {
                    id: m.id.clone(),
                    name: m.name.clone(),
                    phone: m.phone.clone(),
                })
                .collect(),
            briefing,
        },
        details: RequestDetails {
            requested_by: user.staff.id.clone(),
            requested_at: now,
            timing,
            responsible_contact,
            contact_email,
            authoriser_override: None,
        },
    })
}

/// `POST /visits/new`.
pub async fn request_visit(
    Requester(session): Requester,
    State(state): State<AppState>,
    CsrfForm(fields): CsrfForm<Fields>,
) -> Result<Response, WebError> {
    let data = form_data(&state, &session).await?;
    let now = state.now();
    let draft = match check_request(&fields, &data, &session.user, now) {
        Ok(draft) => draft,
        Err(problem) => {
            return Ok(request_page(
                &session,
                &data,
                &fields,
                Some(&format!("{problem} Nothing was saved.")),
                StatusCode::BAD_REQUEST,
                now,
            ))
        }
    };
    let store = state.store.clone();
    let id = draft.visit.id.clone();
    let stored = checked(move || store.add_requested_visit(&draft.visit, &draft.details)).await?;
    // The store's own rule (an appropriate DBS check) comes back for the person to fix.
    if let Err(problem) = stored {
        return Ok(request_page(
            &session,
            &data,
            &fields,
            Some(&format!(
                "{}. Nothing was saved.",
                words::capitalise(&problem)
            )),
            StatusCode::BAD_REQUEST,
            now,
        ));
    }
    tracing::info!(visit = %id, by = %session.user.staff.id, "visit requested");
    if let Some(escalation) = &state.escalation {
        escalation.visit_changed(id.clone());
    }
    let next = if session.user.may_use_board() {
        format!("/visits/{id}")
    } else {
        "/visits/new".to_owned()
    };
    Ok(Redirect::to(&next).into_response())
}
