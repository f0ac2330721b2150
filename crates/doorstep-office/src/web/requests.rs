//! Requesting a visit: the form (purpose, pupil, address, time, staff, risk assessment and briefing) and
//! its checks.
//!
//! Every rule is checked here on the server, whatever the form showed: a refused request stores nothing and
//! comes back with the person's entries and one clear sentence saying what to change.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, NaiveDateTime, Utc};
use doorstep_core::domain::{
    Address, PhoneNumber, Postcode, Pupil, Role, StaffMember, Visit, VisitStaff,
};
use doorstep_core::ids::{PupilId, VisitId};
use doorstep_core::policy::{Policy, PolicyMinutes};
use maud::html;

use super::briefing::{briefing_from, briefing_inputs, lines, read_risks, risk_table, Assessing};
use super::extract::{CsrfForm, Requester};
use super::forms::{wire, Fields};
use super::{blocking, checked, pages, words, WebError};
use crate::logins::{OfficeUser, Session};
use crate::requests::{timing, RequestDetails, Timing, MAX_VISIT_MINUTES};
use crate::state::AppState;

pub(crate) use super::briefing::MAX_TEXT;

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
    // The controls start empty: Doorstep's suggestions sit beside each box, and the requester writes or
    // confirms them for this visit.
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
    let wanted = usize::from(policy.staff_per_visit);
    let body = html! {
        main {
            p { a href="/" { "← Back to the board" } }
            h1 { "Request a home visit" }
            @if let Some(problem) = problem {
                p.problem #request-problem role="alert" { (problem) }
            }
            p.small {
                "The " (policy.authoriser.label()) " authorises every visit. " (staff_rule(wanted)) "; school hours are "
                (policy.school_hours.start.format("%H:%M")) " to " (policy.school_hours.end.format("%H:%M"))
                " on weekdays (the school's local time, " (session.user.school.time_zone.describe(now)) ")."
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
                @for i in 1..=wanted {
                    @let name = format!("staff_{i}");
                    p { label for=(name) { (ORDINALS.get(i - 1).copied().unwrap_or("Another")) " member of staff " } (staff_select(&name)) }
                }
                @if wanted > 1 {
                    p { label { input type="checkbox" name="lone" value="on" checked[fields.ticked("lone")];
                        " " (fewer_label(wanted)) ": the " (policy.lone_visit_approver.label()) " must approve it explicitly" } }
                    p { label for="lone_assessment" { "Lone-visit risk assessment: why it is safe for fewer staff to go (required if ticked)" } br;
                        textarea name="lone_assessment" id="lone_assessment" rows="3" cols="60" { (text("lone_assessment")) } }
                }
                h2 { "Outside school hours" }
                p.small { "A visit outside school hours needs a named responsible contact who will check on the staff." }
                p { label for="contact_name" { "Responsible contact's name " } input name="contact_name" id="contact_name" value=(text("contact_name"));
                    " " label for="contact_phone" { "phone " } input name="contact_phone" id="contact_phone" value=(text("contact_phone"));
                    " " label for="contact_email" { "email (optional: they are emailed the visit's alarms) " }
                    input name="contact_email" id="contact_email" type="email" value=(text("contact_email")); }
                h2 { "Risk assessment" }
                p.small { "Write the controls for each hazard for this visit. Doorstep's suggestions are beside each box: tick to use them only if you have checked they fit. You are recorded as the assessor, with today's date." }
                (risk_table(policy, fields, Assessing::Request))
                h2 { "Briefing" }
                (briefing_inputs(fields))
                p { button type="submit" #request-submit { "Request the visit" } }
            }
        }
    };
    let mut response = pages::page("Request a visit", Some(session), body, None);
    *response.status_mut() = status;
    response
}

/// Numbers in words, as far as the policy's most staff per visit.
const NUMBERS: [&str; 4] = ["one", "two", "three", "four"];

/// "First", "Second", ... for the staff choices (the policy asks for at most four).
const ORDINALS: [&str; 4] = ["First", "Second", "Third", "Fourth"];

/// The policy's number of staff per visit, in words.
fn staff_rule(wanted: usize) -> String {
    match wanted {
        1 => "Visits are made by one member of staff".to_owned(),
        2 => "Visits are made in pairs".to_owned(),
        n => format!("Visits are made by {n} staff"),
    }
}

/// The tick for a visit made by fewer staff than the policy asks.
fn fewer_label(wanted: usize) -> String {
    if wanted == 2 {
        "Lone visit (one person)".to_owned()
    } else {
        format!("Fewer than {wanted} staff")
    }
}

/// A request that passed every check the form itself can make; the store still checks DBS.
struct Draft {
    visit: Visit,
    details: RequestDetails,
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
    let address_lines = lines(fields.one("address_lines"));
    if address_lines.is_empty() || fields.one("postcode").is_empty() {
        return Err("Enter the address: at least one line and the postcode.".into());
    }
    // The same rule as the pupils' import.
    let postcode =
        Postcode::parse(fields.one("postcode")).map_err(|e| words::capitalise(&e.to_string()))?;
    let address = Address {
        lines: address_lines,
        postcode,
    };
    let naive = NaiveDateTime::parse_from_str(fields.one("date_time"), "%Y-%m-%dT%H:%M")
        .map_err(|_| "Enter the date and time of the visit (for example 2026-11-24T10:00).")?;
    let zone = user.school.time_zone;
    let agreed_time = zone.instant(naive).ok_or(
        "That time does not exist or happens twice on the clocks changing; choose another time.",
    )?;
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
    let wanted = usize::from(policy.staff_per_visit);
    let mut going: Vec<&StaffMember> = Vec::new();
    for i in 1..=wanted {
        if let Some(member) = staff_member(&format!("staff_{i}"))? {
            if going.iter().any(|m| m.id == member.id) {
                return Err(format!(
                    "Choose {} different people: {} is chosen twice.",
                    NUMBERS.get(wanted - 1).copied().unwrap_or("the"),
                    member.name
                ));
            }
            going.push(member);
        }
    }
    let fewer = wanted > 1 && fields.ticked("lone");
    let lone_assessment = fields.one("lone_assessment");
    if going.is_empty() {
        return Err(if fewer {
            "Choose the member of staff making the lone visit.".to_owned()
        } else if wanted == 1 {
            "Choose the member of staff making the visit.".to_owned()
        } else {
            format!("{}: choose {wanted} members of staff.", staff_rule(wanted))
        });
    }
    if !fewer && going.len() < wanted {
        return Err(if wanted == 2 {
            "Visits are made in pairs: choose two members of staff, or tick “lone visit” and give its own risk assessment.".to_owned()
        } else {
            format!(
                "{}: choose {wanted} members of staff, or tick “fewer than {wanted} staff” and give the visit's own risk assessment.",
                staff_rule(wanted)
            )
        });
    }
    if fewer && going.len() >= wanted {
        return Err(if wanted == 2 {
            "A lone visit is made by one person: choose only one member of staff, or untick “lone visit”.".to_owned()
        } else {
            format!("You ticked “fewer than {wanted} staff”: choose fewer, or untick it.")
        });
    }
    if fewer && lone_assessment.is_empty() {
        return Err(
            "A lone visit needs its own risk assessment: say why it is safe for fewer staff to go."
                .into(),
        );
    }
    let timing: Timing = timing(policy, &zone, agreed_time, length);
    let contact = (fields.one("contact_name"), fields.one("contact_phone"));
    // The contact's number by the one rule the staff form and the phone's dialler use too.
    let contact_phone = if contact.1.is_empty() {
        None
    } else {
        Some(
            PhoneNumber::parse(contact.1)
                .map_err(|e| format!("The responsible contact's phone: {e}."))?,
        )
    };
    let responsible_contact = if timing.needs_responsible_contact(policy) {
        if contact.0.is_empty() || contact.1.is_empty() {
            return Err(format!(
                "This visit is outside school hours ({} to {} on weekdays): name the responsible contact who will check on the staff, with their phone number.",
                policy.school_hours.start.format("%H:%M"),
                policy.school_hours.end.format("%H:%M")
            ));
        }
        contact_phone.map(|phone| (contact.0.to_owned(), phone))
    } else if !contact.0.is_empty() {
        contact_phone.map(|phone| (contact.0.to_owned(), phone))
    } else {
        None
    };
    let contact_email =
        crate::requests::contact_email(fields.one("contact_email"), responsible_contact.is_some())?;
    let risks = read_risks(policy, fields, Assessing::Request)?;
    let briefing = briefing_from(
        fields,
        risks,
        fewer.then(|| lone_assessment.to_owned()),
        &user.staff.id,
        user.school.time_zone.date(now),
    );
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
            staff: going.iter().copied().map(VisitStaff::from).collect(),
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
