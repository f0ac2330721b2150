//! Requesting and authorising visits, and the attendance view: the form to request a visit (purpose, pupil,
//! address, time, staff, risk assessment and briefing), the authoriser's page to approve it, and the list of
//! absent pupils the policy says are due a visit.
//!
//! Every rule is checked here on the server, whatever the form showed: a refused request stores nothing and
//! comes back with the person's entries and one clear sentence saying what to change.

use std::collections::HashMap;

use axum::extract::rejection::{FormRejection, PathRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::{DateTime, Local, NaiveDateTime, TimeZone, Utc};
use doorstep_core::domain::{
    Address, AssessedRisk, Briefing, Hazard, Pupil, RiskAssessment, Role, StaffMember, Visit,
    VisitPurpose, VisitStaff,
};
use doorstep_core::ids::{PupilId, VisitId};
use doorstep_core::lifecycle::Command;
use doorstep_core::policy::{Policy, PolicyMinutes};
use maud::{html, Markup};

use super::auth::{board_session, check_csrf, session};
use super::pages;
use super::{blocking, read_form, read_path, WebError};
use crate::api::AppState;
use crate::logins::{OfficeUser, Session};
use crate::requests::{timing, visits_due, RequestDetails, Timing, MAX_VISIT_MINUTES};
use crate::store::StoreError;

/// How many free risk items (specific to this visit) the form offers.
const FREE_RISKS: usize = 3;
/// The longest any free-text field may be: enough for a paragraph, small enough to refuse a flood.
const MAX_TEXT: usize = 4000;

/// Who may request a visit: the office, admins, the authoriser and visiting staff.
pub fn may_request_visits(user: &OfficeUser) -> bool {
    user.may_use_board() || user.staff.roles.contains(&Role::VisitingStaff)
}

/// Who may authorise: only the policy's authoriser (headteacher or safeguarding lead).
pub fn may_authorise(user: &OfficeUser) -> bool {
    user.staff.roles.contains(&user.policy.authoriser)
}

async fn request_session(state: &AppState, headers: &HeaderMap) -> Result<Session, WebError> {
    let session = session(state, headers).await?.ok_or(WebError::SignedOut)?;
    if !may_request_visits(&session.user) {
        return Err(WebError::Forbidden(format!(
            "{} is signed in, but requesting visits is for the office, admins, the {} and visiting staff.",
            session.user.staff.name,
            session.user.policy.authoriser.label()
        )));
    }
    Ok(session)
}

fn purpose_key(purpose: VisitPurpose) -> String {
    serde_json::to_value(purpose)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn hazard_key(hazard: Hazard) -> String {
    serde_json::to_value(hazard)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The form's values by name (last one wins), trimmed.
type Fields = HashMap<String, String>;

fn field<'a>(fields: &'a Fields, name: &str) -> &'a str {
    fields.get(name).map_or("", |v| v.trim())
}

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
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let session = request_session(&state, &headers).await?;
    let data = form_data(&state, &session).await?;
    let mut fields: Fields = HashMap::new();
    for key in ["purpose", "pupil"] {
        if let Some(value) = query.get(key) {
            fields.insert(key.into(), value.clone());
        }
    }
    fields.insert("length_minutes".into(), "45".into());
    for hazard in &data.policy.standard_hazards {
        fields.insert(
            format!("controls_{}", hazard_key(*hazard)),
            hazard.default_controls().join("\n"),
        );
    }
    // The address starts from the pupil's last visit, when there was one.
    if let Some(pupil) = query.get("pupil").and_then(|p| p.parse::<PupilId>().ok()) {
        let store = state.store.clone();
        if let Some(address) = blocking(move || store.last_known_address(&pupil)).await? {
            fields.insert("address_lines".into(), address.lines.join("\n"));
            fields.insert("postcode".into(), address.postcode);
        }
    }
    Ok(request_page(&session, &data, &fields, None, StatusCode::OK))
}

fn request_page(
    session: &Session,
    data: &FormData,
    fields: &Fields,
    problem: Option<&str>,
    status: StatusCode,
) -> Response {
    let policy = &data.policy;
    let visiting: Vec<&StaffMember> = data
        .staff
        .iter()
        .filter(|m| m.roles.contains(&Role::VisitingStaff) || m.may_visit_homes())
        .collect();
    let staff_select = |name: &str| {
        let chosen = field(fields, name);
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
    let text = |name: &str| field(fields, name).to_owned();
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
                " on weekdays (the office's local time, " (pages::zone(Utc::now())) ")."
            }
            form.request method="post" action="/visits/new" #request-form {
                input type="hidden" name="csrf" value=(session.csrf_token);
                h2 { "The visit" }
                p { label for="purpose" { "Purpose " }
                    select name="purpose" id="purpose" {
                        option value="" { "— choose —" }
                        @for purpose in &policy.purposes {
                            @let key = purpose_key(*purpose);
                            option value=(key) selected[field(fields, "purpose") == key] { (purpose.label()) }
                        }
                    }
                }
                p { label for="pupil" { "Pupil " }
                    select name="pupil" id="pupil" {
                        option value="" { "— choose —" }
                        @for pupil in &data.pupils {
                            option value=(pupil.id) selected[field(fields, "pupil") == pupil.id.as_str()] { (pupil.name) }
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
                p { label { input type="checkbox" name="lone" value="on" checked[!field(fields, "lone").is_empty()];
                    " Lone visit (one person): the " (policy.lone_visit_approver.label()) " must approve it explicitly" } }
                p { label for="lone_assessment" { "Lone-visit risk assessment: why it is safe for one person to go (required for a lone visit)" } br;
                    textarea name="lone_assessment" id="lone_assessment" rows="3" cols="60" { (text("lone_assessment")) } }
                h2 { "Outside school hours" }
                p.small { "A visit outside school hours needs a named responsible contact who will check on the staff." }
                p { label for="contact_name" { "Responsible contact's name " } input name="contact_name" id="contact_name" value=(text("contact_name"));
                    " " label for="contact_phone" { "phone " } input name="contact_phone" id="contact_phone" value=(text("contact_phone")); }
                h2 { "Risk assessment" }
                table #risk-assessment {
                    thead { tr { th { "Hazard" } th { "Controls (one a line)" } } }
                    tbody {
                        @for hazard in &policy.standard_hazards {
                            @let name = format!("controls_{}", hazard_key(*hazard));
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
        .find(|p| purpose_key(*p) == field(fields, "purpose"))
        .ok_or("Choose a purpose from this school's policy.")?;
    let pupil = data
        .pupils
        .iter()
        .find(|p| p.id.as_str() == field(fields, "pupil"))
        .cloned()
        .ok_or("Choose a pupil of this school.")?;
    let address = Address {
        lines: lines(field(fields, "address_lines")),
        postcode: field(fields, "postcode").to_owned(),
    };
    if address.lines.is_empty() || address.postcode.is_empty() {
        return Err("Enter the address: at least one line and the postcode.".into());
    }
    let naive = NaiveDateTime::parse_from_str(field(fields, "date_time"), "%Y-%m-%dT%H:%M")
        .map_err(|_| "Enter the date and time of the visit (for example 2026-11-24T10:00).")?;
    let start = Local.from_local_datetime(&naive).single().ok_or(
        "That time does not exist or happens twice on the clocks changing; choose another time.",
    )?;
    let agreed_time = start.with_timezone(&Utc);
    if agreed_time <= now {
        return Err("That time is in the past: choose a time still to come.".into());
    }
    let length = field(fields, "length_minutes")
        .parse::<u32>()
        .ok()
        .filter(|m| (1..=MAX_VISIT_MINUTES).contains(m))
        .and_then(|m| PolicyMinutes::new(m).ok())
        .ok_or(format!(
            "The expected length must be a whole number of minutes between 1 and {MAX_VISIT_MINUTES}."
        ))?;
    let staff_member = |name: &str| {
        let id = field(fields, name);
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
    let lone = !field(fields, "lone").is_empty();
    let lone_assessment = field(fields, "lone_assessment");
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
    let contact = (
        field(fields, "contact_name"),
        field(fields, "contact_phone"),
    );
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
    let mut risks: Vec<AssessedRisk> = policy
        .standard_hazards
        .iter()
        .map(|hazard| AssessedRisk {
            hazard: Some(*hazard),
            description: hazard.label().to_owned(),
            controls: lines(field(fields, &format!("controls_{}", hazard_key(*hazard)))),
        })
        .collect();
    if let Some(bare) = risks.iter().find(|r| r.controls.is_empty()) {
        return Err(format!(
            "The risk assessment needs at least one control for “{}”.",
            bare.description
        ));
    }
    for i in 1..=FREE_RISKS {
        let description = field(fields, &format!("risk_{i}_description"));
        let controls = lines(field(fields, &format!("risk_{i}_controls")));
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
    briefing.pets = field(fields, "pets").to_owned();
    briefing.pupil_needs = field(fields, "pupil_needs").to_owned();
    briefing.family = field(fields, "family").to_owned();
    briefing.area = field(fields, "area").to_owned();
    briefing.parking = field(fields, "parking").to_owned();
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
            authoriser_override: None,
        },
    })
}

/// `POST /visits/new`.
pub async fn request_visit(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<Response, WebError> {
    let session = request_session(&state, &headers).await?;
    let fields: Fields = read_form(form)?.into_iter().collect();
    check_csrf(&session, fields.get("csrf").map_or("", String::as_str))?;
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
            ))
        }
    };
    let store = state.store.clone();
    let id = draft.visit.id.clone();
    let stored = tokio::task::spawn_blocking(move || {
        store.add_requested_visit(&draft.visit, &draft.details)
    })
    .await;
    match stored {
        Ok(Ok(())) => {}
        // The store's own rule (an appropriate DBS check) comes back as Invalid: the person can fix it.
        Ok(Err(StoreError::Invalid(problem))) => {
            return Ok(request_page(
                &session,
                &data,
                &fields,
                Some(&format!(
                    "{}. Nothing was saved.",
                    pages::capitalise(&problem)
                )),
                StatusCode::BAD_REQUEST,
            ))
        }
        Ok(Err(other)) => return Err(other.into()),
        Err(join) => {
            tracing::error!(error = %join, "request task failed");
            return Err(WebError::Internal);
        }
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

fn parse_visit(text: &str) -> Result<VisitId, WebError> {
    text.parse()
        .map_err(|_| WebError::NotFound(format!("there is no visit “{text}”")))
}

/// The authoriser's session, or 403 for anyone else (even signed in, even with a CSRF token).
async fn authoriser_session(state: &AppState, headers: &HeaderMap) -> Result<Session, WebError> {
    let session = board_session(state, headers, WebError::SignedOut).await?;
    if !may_authorise(&session.user) {
        return Err(WebError::Forbidden(format!(
            "Only the {} authorises visits in this school's policy; {} cannot.",
            session.user.policy.authoriser.label(),
            session.user.staff.name
        )));
    }
    Ok(session)
}

struct ToAuthorise {
    visit: Visit,
    authorised: bool,
    details: Option<RequestDetails>,
    timing: Timing,
}

async fn load_for_authorising(
    state: &AppState,
    session: &Session,
    id: VisitId,
) -> Result<ToAuthorise, WebError> {
    let store = state.store.clone();
    let school = session.user.school.id.clone();
    let policy = session.user.policy.clone();
    let missing = WebError::NotFound(format!("there is no visit “{id}”"));
    let found = blocking(move || {
        let Some((visit, visit_state)) = store.visit(&id)? else {
            return Ok(None);
        };
        if visit.school != school {
            return Ok(None);
        }
        let details = store.request_details(&id)?;
        // Worked out again from the visit itself, so a visit made before requests existed is judged too.
        let start = visit.agreed_time.with_timezone(&Local);
        let timing = timing(&policy, start, visit.expected_length);
        Ok(Some(ToAuthorise {
            authorised: visit_state.authorised.is_some(),
            visit,
            details,
            timing,
        }))
    })
    .await?;
    found.ok_or(missing)
}

/// `GET /visits/{id}/authorise`: the visit, its risk assessment and briefing, and the decision form.
pub async fn authorise_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, WebError> {
    let session = authoriser_session(&state, &headers).await?;
    let id = parse_visit(&read_path(path)?)?;
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
    let visit = &found.visit;
    let assessment = visit.briefing.risk_assessment();
    let lone = visit.staff.len() < 2;
    let briefing = &visit.briefing;
    let body = html! {
        main {
            p { a href={ "/visits/" (visit.id) } { "← Back to the visit" } }
            h1 { "Authorise: " (pages::hm(visit.agreed_time)) " · " (visit.purpose.label()) " · " (visit.pupil.name) }
            @if let Some(problem) = problem { p.problem #authorise-problem role="alert" { (problem) } }
            p { (visit.agreed_time.with_timezone(&Local).format("%A %-d %B %Y, %H:%M")) ", for "
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
            h2 { "Risk assessment" }
            table {
                thead { tr { th { "Hazard" } th { "Controls" } } }
                tbody {
                    @for risk in &assessment.risks {
                        tr { td { (risk.description) } td { ul { @for c in &risk.controls { li { (c) } } } } }
                    }
                }
            }
            h2 { "Briefing" }
            ul {
                li { "Pets: " (briefing.pets) }
                li { "Pupil's needs: " (briefing.pupil_needs) }
                li { "Family: " (briefing.family) }
                li { "Area: " (briefing.area) }
                li { "Parking: " (briefing.parking) }
            }
            @if found.authorised {
                p #already-authorised { "This visit is already authorised." }
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
        }
    };
    let mut response = pages::page("Authorise a visit", Some(session), body, None);
    *response.status_mut() = status;
    response
}

/// `POST /visits/{id}/authorise`: records the authoriser's decision as an event of the visit.
pub async fn authorise(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<Response, WebError> {
    let session = authoriser_session(&state, &headers).await?;
    let fields: Fields = read_form(form)?.into_iter().collect();
    check_csrf(&session, fields.get("csrf").map_or("", String::as_str))?;
    let id = parse_visit(&read_path(path)?)?;
    let found = load_for_authorising(&state, &session, id.clone()).await?;
    let policy = &session.user.policy;
    if found.authorised {
        return Err(WebError::Conflict(
            "this visit is already authorised; nothing was changed".into(),
        ));
    }
    let refuse = |problem: &str| -> Result<Response, WebError> {
        Ok(authorise_response(
            &session,
            &found,
            Some(&format!("{problem} Nothing was recorded.")),
            StatusCode::BAD_REQUEST,
        ))
    };
    let lone = found.visit.staff.len() < 2;
    let lone_visit_approved = !field(&fields, "lone_visit_approved").is_empty();
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
    let reason = field(&fields, "override_reason").to_owned();
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
    let recorded = tokio::task::spawn_blocking(move || {
        let envelope = store.record_office_event(&visit, &command, now)?;
        if let Some(reason) = override_reason {
            store.set_authoriser_override(&visit, &reason)?;
        }
        Ok::<_, StoreError>(envelope)
    })
    .await;
    match recorded {
        Ok(Ok(_)) => {}
        // The lifecycle's refusals (already authorised meanwhile, cancelled) are for the person to read.
        Ok(Err(StoreError::Invalid(problem))) => {
            return Err(WebError::Conflict(format!(
                "{problem}; nothing was changed"
            )))
        }
        Ok(Err(other)) => return Err(other.into()),
        Err(join) => {
            tracing::error!(error = %join, "authorise task failed");
            return Err(WebError::Internal);
        }
    }
    tracing::info!(visit = %id, by = %session.user.staff.id, "visit authorised");
    if let Some(escalation) = &state.escalation {
        escalation.visit_changed(id.clone());
    }
    Ok(Redirect::to(&format!("/visits/{id}")).into_response())
}

/// `GET /attendance`: absent pupils the policy says are due a visit, each with a prefilled request link.
pub async fn attendance(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let session = board_session(&state, &headers, WebError::SignedOut).await?;
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
    let safe_and_well = purpose_key(VisitPurpose::SafeAndWellCheck);
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

/// The routes of requests, authorisation, attendance and records, merged into [`super::routes`].
pub fn routes() -> axum::Router<AppState> {
    use super::records;
    use axum::routing::get;
    axum::Router::new()
        .route("/visits/new", get(new_visit_page).post(request_visit))
        .route(
            "/visits/{id}/authorise",
            get(authorise_page).post(authorise),
        )
        .route("/attendance", get(attendance))
        .route("/visits/{id}/timeline", get(records::timeline_page))
        .route("/visits/{id}/cpoms.txt", get(records::cpoms_txt))
        .route("/visits/{id}/cpoms.pdf", get(records::cpoms_pdf_route))
        .route("/reports/write-ups.csv", get(records::write_ups))
        .route("/reports/monthly", get(records::monthly))
}
