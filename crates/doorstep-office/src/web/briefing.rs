//! The risk assessment and briefing: the form pieces the request form and the update form share, the rules
//! they are read by, and `/visits/{id}/briefing`, where the authoriser updates them when the risk changes
//! (a new version of the visit, which the phones ask staff to read again before setting off).
//!
//! The controls for each standard hazard are the assessor's own: the request form offers Doorstep's
//! suggested controls beside each hazard, never in the box, and a request whose controls are the
//! suggestions unchanged is refused unless the requester ticked that they apply to this visit. Whoever
//! writes or confirms the controls is recorded with the date (`RiskAssessment::assessed_by/assessed_on`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, NaiveDate, Utc};
use doorstep_core::domain::{AssessedRisk, Briefing, Hazard, RiskAssessment, Visit};
use doorstep_core::ids::StaffId;
use doorstep_core::lifecycle::{self, Command, VisitState};
use doorstep_core::policy::Policy;
use maud::{html, Markup};

use super::extract::{Authoriser, CsrfForm, VisitInPath};
use super::forms::{wire, Fields};
use super::{checked, pages, school_visit, WebError};
use crate::logins::Session;
use crate::state::AppState;
use crate::versions::VisitChange;

/// How many rows for risks specific to the visit the form offers at least.
pub(crate) const FREE_RISKS: usize = 3;
/// The most it reads.
const MAX_FREE_RISKS: usize = 12;
/// The longest any free-text field may be: enough for a paragraph, small enough to refuse a flood.
pub(crate) const MAX_TEXT: usize = 4000;

/// The briefing's free-text fields: form name and label.
pub(crate) const BRIEFING_FIELDS: [(&str, &str); 5] = [
    ("pets", "Pets at the address"),
    ("pupil_needs", "The pupil's medical needs and behaviour"),
    ("family", "Family circumstances and cultural sensitivities"),
    ("area", "The area"),
    ("parking", "Where to park"),
];

/// Whose controls the form is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Assessing {
    /// A new request: suggestions beside the boxes, and untouched suggestions refused unless confirmed.
    Request,
    /// The authoriser updating an assessment already written: the boxes hold the current controls, and
    /// saving them is the authoriser's own assessment.
    Update,
}

pub(crate) fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

fn controls_field(hazard: Hazard) -> String {
    format!("controls_{}", wire(hazard))
}

fn confirm_field(hazard: Hazard) -> String {
    format!("confirm_{}", wire(hazard))
}

/// The standard hazards the form asks about: the policy's, then any other standard hazard the form (or
/// the assessment being updated) already carries, so an update never drops a row.
fn hazards(policy: &Policy, fields: &Fields) -> Vec<Hazard> {
    let mut out = policy.standard_hazards.clone();
    for &hazard in Hazard::ALL {
        let present = fields.iter().any(|(key, _)| key == controls_field(hazard));
        if present && !out.contains(&hazard) {
            out.push(hazard);
        }
    }
    out
}

/// How many rows for specific risks the form shows: at least [`FREE_RISKS`], and one more than are filled.
fn free_rows(fields: &Fields) -> usize {
    let filled = (1..=MAX_FREE_RISKS)
        .filter(|i| !fields.one(&format!("risk_{i}_description")).is_empty())
        .max()
        .unwrap_or(0);
    (filled + 1).clamp(FREE_RISKS, MAX_FREE_RISKS)
}

/// The risk assessment's table: a row per standard hazard (with Doorstep's suggested controls beside the
/// box, and a tick to confirm them, on a request), then rows for risks specific to this visit.
pub(crate) fn risk_table(policy: &Policy, fields: &Fields, assessing: Assessing) -> Markup {
    let text = |name: &str| fields.raw(name).to_owned();
    html! {
        table #risk-assessment {
            thead { tr { th { "Hazard" } th { "Controls for this visit (one a line)" } } }
            tbody {
                @for hazard in hazards(policy, fields) {
                    @let name = controls_field(hazard);
                    @let confirm = confirm_field(hazard);
                    tr {
                        td { (hazard.label()) }
                        td {
                            textarea name=(name) id=(name) rows="3" cols="60" { (text(&name)) }
                            @if assessing == Assessing::Request {
                                div.small.suggested {
                                    "Suggested: " (hazard.default_controls().join("; ")) "."
                                    br;
                                    label { input type="checkbox" name=(confirm) id=(confirm) value="on" checked[fields.ticked(&confirm)];
                                        " Leave the box empty and use these: I have checked they fit this visit" }
                                }
                            }
                        }
                    }
                }
                @for i in 1..=free_rows(fields) {
                    @let description = format!("risk_{i}_description");
                    @let controls = format!("risk_{i}_controls");
                    tr { td { input name=(description) placeholder="Anything specific to this visit" value=(text(&description)); }
                         td { textarea name=(controls) rows="2" cols="60" { (text(&controls)) } } }
                }
            }
        }
    }
}

/// The briefing's free-text boxes.
pub(crate) fn briefing_inputs(fields: &Fields) -> Markup {
    html! {
        @for (name, label) in BRIEFING_FIELDS {
            p { label for=(name) { (label) } br;
                textarea name=(name) id=(name) rows="2" cols="60" { (fields.raw(name)) } }
        }
    }
}

/// The risks the form describes, or the first problem with them. On a request, controls that are
/// Doorstep's suggestions unchanged pass only when the requester ticked that they apply.
pub(crate) fn read_risks(
    policy: &Policy,
    fields: &Fields,
    assessing: Assessing,
) -> Result<Vec<AssessedRisk>, String> {
    let mut risks = Vec::new();
    for hazard in hazards(policy, fields) {
        let written = lines(fields.raw(&controls_field(hazard)));
        let suggested: Vec<String> = hazard
            .default_controls()
            .iter()
            .map(|c| (*c).to_owned())
            .collect();
        let confirmed = assessing == Assessing::Request && fields.ticked(&confirm_field(hazard));
        let controls = if written.is_empty() && confirmed {
            suggested
        } else if written.is_empty() {
            return Err(match assessing {
                Assessing::Request => format!(
                    "Write the controls for “{}” for this visit, or tick to confirm the suggested ones fit it.",
                    hazard.label()
                ),
                Assessing::Update => format!(
                    "The risk assessment needs at least one control for “{}”.",
                    hazard.label()
                ),
            });
        } else if assessing == Assessing::Request && written == suggested && !confirmed {
            return Err(format!(
                "The controls for “{}” are the suggested text, unchanged: write this visit's own, or tick to confirm the suggested ones fit it.",
                hazard.label()
            ));
        } else {
            written
        };
        risks.push(AssessedRisk {
            hazard: Some(hazard),
            description: hazard.label().to_owned(),
            controls,
        });
    }
    for i in 1..=MAX_FREE_RISKS {
        let description = fields.one(&format!("risk_{i}_description"));
        let controls = lines(fields.raw(&format!("risk_{i}_controls")));
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
    Ok(risks)
}

/// A briefing from the form: `risks`, the lone-visit assessment if any, and the free-text fields; assessed
/// by `by` on today's date (the school's date).
pub(crate) fn briefing_from(
    fields: &Fields,
    risks: Vec<AssessedRisk>,
    lone_visit_assessment: Option<String>,
    by: &StaffId,
    today: NaiveDate,
) -> Briefing {
    let mut briefing = Briefing::new(RiskAssessment {
        risks,
        lone_visit_assessment,
        assessed_by: Some(by.clone()),
        assessed_on: Some(today),
    });
    briefing.pets = fields.one("pets").to_owned();
    briefing.pupil_needs = fields.one("pupil_needs").to_owned();
    briefing.family = fields.one("family").to_owned();
    briefing.area = fields.one("area").to_owned();
    briefing.parking = fields.one("parking").to_owned();
    briefing
}

/// The form's fields filled from a briefing, to update it.
fn fields_of(briefing: &Briefing) -> Fields {
    let mut fields = Fields::default();
    let assessment = briefing.risk_assessment();
    let mut free = 0;
    for risk in &assessment.risks {
        match risk.hazard {
            Some(hazard) => fields.set(&controls_field(hazard), risk.controls.join("\n")),
            None => {
                free += 1;
                fields.set(
                    &format!("risk_{free}_description"),
                    risk.description.clone(),
                );
                fields.set(&format!("risk_{free}_controls"), risk.controls.join("\n"));
            }
        }
    }
    if let Some(lone) = &assessment.lone_visit_assessment {
        fields.set("lone_assessment", lone.clone());
    }
    for (name, value) in [
        ("pets", &briefing.pets),
        ("pupil_needs", &briefing.pupil_needs),
        ("family", &briefing.family),
        ("area", &briefing.area),
        ("parking", &briefing.parking),
    ] {
        fields.set(name, value.clone());
    }
    fields
}

/// The risk assessment and briefing as the people with a need to know read them, with who assessed it.
pub(crate) fn briefing_markup(visit: &Visit, names: &dyn Fn(&StaffId) -> String) -> Markup {
    let briefing = &visit.briefing;
    let assessment = briefing.risk_assessment();
    html! {
        section #briefing {
            h2 { "Risk assessment and briefing" @if briefing.version > 0 { " (version " (briefing.version) ")" } }
            p.small #assessed-by {
                @match (&assessment.assessed_by, assessment.assessed_on) {
                    (Some(by), Some(on)) => { "Assessed by " (names(by)) " on " (on.format("%-d %B %Y")) "." }
                    (Some(by), None) => { "Assessed by " (names(by)) "." }
                    _ => { "Who assessed it is not on record (a visit made before assessors were recorded)." }
                }
            }
            @if let Some(lone) = &assessment.lone_visit_assessment {
                p { strong { "Lone visit: " } (lone) }
            }
            table {
                thead { tr { th { "Hazard" } th { "Controls" } } }
                tbody {
                    @for risk in &assessment.risks {
                        tr { td { (risk.description) } td { ul { @for c in &risk.controls { li { (c) } } } } }
                    }
                }
            }
            ul {
                li { "Pets: " (briefing.pets) }
                li { "Pupil's needs: " (briefing.pupil_needs) }
                li { "Family: " (briefing.family) }
                li { "Area: " (briefing.area) }
                li { "Parking: " (briefing.parking) }
            }
        }
    }
}

/// Whether the visit is made by fewer staff than the policy asks (a lone visit, for two).
pub(crate) fn fewer_than_policy(visit: &Visit, policy: &Policy) -> bool {
    visit.staff.len() < usize::from(policy.staff_per_visit)
}

struct ToUpdate {
    visit: Visit,
    state: VisitState,
}

async fn load(state: &AppState, session: &Session, id: VisitInPath) -> Result<ToUpdate, WebError> {
    school_visit(state, session, id.0, |_, visit, visit_state| {
        Ok(ToUpdate {
            visit,
            state: visit_state,
        })
    })
    .await
}

/// Whether the lifecycle would take a briefing update now (the visit is still to go ahead).
fn may_update(found: &ToUpdate, session: &Session, now: DateTime<Utc>) -> Result<(), String> {
    let command = Command::UpdateBriefing {
        by: session.user.staff.id.clone(),
        version: found
            .state
            .briefing_version
            .max(found.visit.briefing.version)
            + 1,
    };
    lifecycle::decide(&found.state, &command, &session.user.policy, now)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// A page about one visit in the authoriser's hands, titled `title`: the way back to the visit, a heading
/// naming the visit after `heading`, then `content`.
pub(crate) fn visit_page(
    session: &Session,
    title: &str,
    heading: &str,
    visit: &Visit,
    content: Markup,
    status: StatusCode,
) -> Response {
    let zone = &session.user.school.time_zone;
    let body = html! {
        main {
            p { a href={ "/visits/" (visit.id) } { "← Back to the visit" } }
            h1 { (heading) ": " (zone.hm(visit.agreed_time)) " · " (visit.purpose.label()) " · " (visit.pupil.name) }
            (content)
        }
    };
    let mut response = pages::page(title, Some(session), body, None);
    *response.status_mut() = status;
    response
}

fn update_page(
    session: &Session,
    found: &ToUpdate,
    fields: &Fields,
    problem: Option<&str>,
    status: StatusCode,
) -> Response {
    let policy = &session.user.policy;
    let visit = &found.visit;
    let content = html! {
        @if let Some(problem) = problem { p.problem #briefing-problem role="alert" { (problem) } }
        p.small {
            "Saving makes a new version of the visit, with you as the assessor and today's date. The staff's phones \
             get it at their next sync and ask them to read it again, and tick the checklist again, before they set off."
        }
        form method="post" action={ "/visits/" (visit.id) "/briefing" } #briefing-form {
            input type="hidden" name="csrf" value=(session.csrf_token);
            h2 { "Risk assessment" }
            (risk_table(policy, fields, Assessing::Update))
            @if fewer_than_policy(visit, policy) {
                p { label for="lone_assessment" { "Lone-visit risk assessment: why it is safe for fewer staff to go" } br;
                    textarea name="lone_assessment" id="lone_assessment" rows="3" cols="60" { (fields.raw("lone_assessment")) } }
            }
            h2 { "Briefing" }
            (briefing_inputs(fields))
            p { button type="submit" #briefing-submit { "Save as a new version" } }
        }
    };
    let title = "Update the risk assessment and briefing";
    visit_page(session, title, title, visit, content, status)
}

/// `GET /visits/{id}/briefing`: the current risk assessment and briefing, ready to change.
pub async fn briefing_page(
    Authoriser(session): Authoriser,
    State(state): State<AppState>,
    id: VisitInPath,
) -> Result<Response, WebError> {
    let found = load(&state, &session, id).await?;
    if let Err(problem) = may_update(&found, &session, state.now()) {
        return Err(WebError::NotNow(format!(
            "the briefing cannot be changed now: {problem}"
        )));
    }
    let fields = fields_of(&found.visit.briefing);
    Ok(update_page(&session, &found, &fields, None, StatusCode::OK))
}

/// `POST /visits/{id}/briefing`: a new risk assessment and briefing, kept as a new version of the visit.
pub async fn update_briefing(
    Authoriser(session): Authoriser,
    State(state): State<AppState>,
    id: VisitInPath,
    CsrfForm(fields): CsrfForm<Fields>,
) -> Result<Response, WebError> {
    let found = load(&state, &session, id).await?;
    let policy = &session.user.policy;
    let now = state.now();
    let refuse = |problem: &str| -> Result<Response, WebError> {
        Ok(update_page(
            &session,
            &found,
            &fields,
            Some(&format!("{problem} Nothing was saved.")),
            StatusCode::BAD_REQUEST,
        ))
    };
    if let Some((name, _)) = fields.iter().find(|(_, v)| v.chars().count() > MAX_TEXT) {
        return refuse(&format!(
            "“{name}” is longer than {MAX_TEXT} characters; shorten it."
        ));
    }
    let risks = match read_risks(policy, &fields, Assessing::Update) {
        Ok(risks) => risks,
        Err(problem) => return refuse(&problem),
    };
    let lone = fewer_than_policy(&found.visit, policy);
    let lone_assessment = fields.one("lone_assessment");
    if lone && lone_assessment.is_empty() {
        return refuse("This visit is made by fewer staff than the policy asks: keep its own risk assessment saying why that is safe.");
    }
    let briefing = briefing_from(
        &fields,
        risks,
        lone.then(|| lone_assessment.to_owned()),
        &session.user.staff.id,
        session.user.school.time_zone.date(now),
    );
    let store = state.store.clone();
    let visit = found.visit.id.clone();
    let by = session.user.staff.id.clone();
    let changed = checked(move || {
        store.change_visit(&visit, &by, VisitChange::UpdateBriefing { briefing }, now)
    })
    .await?;
    match changed {
        Ok(version) => {
            tracing::info!(visit = %found.visit.id, by = %session.user.staff.id, version = version.version, "briefing updated");
            if let Some(escalation) = &state.escalation {
                escalation.visit_changed(found.visit.id.clone());
            }
            Ok(Redirect::to(&format!("/visits/{}#versions", found.visit.id)).into_response())
        }
        Err(problem) => Err(WebError::NotNow(format!("{problem}; nothing was changed"))),
    }
}
