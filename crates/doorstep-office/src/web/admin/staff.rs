//! `/admin/staff`: everyone at the school with their roles, phone and DBS check, and the form to add
//! someone or edit them. Whether someone may be assigned to visits follows the policy's DBS rule.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::NaiveDate;
use doorstep_core::domain::{DbsCheck, DbsLevel, PhoneNumber, Role, StaffMember};
use doorstep_core::ids::StaffId;
use maud::html;
use serde::Deserialize;

use super::{admin_page, Admin};
use crate::logins::Session;
use crate::people::Saved;
use crate::state::AppState;
use crate::store::StoreError;
use crate::web::extract::CsrfForm;
use crate::web::forms::{field_error, from_wire, nothing_saved, wire, Fields, Problems};
use crate::web::{blocking, checked, words, WebError};

/// The staff form as typed, so a refused form comes back unchanged.
#[derive(Debug, Clone, Default)]
struct StaffDraft {
    id: String,
    name: String,
    phone: String,
    roles: Vec<String>,
    dbs_level: String,
    dbs_date: String,
    /// True when editing someone already stored (the id is then fixed).
    editing: bool,
}

impl StaffDraft {
    fn of(member: &StaffMember) -> Self {
        Self {
            id: member.id.to_string(),
            name: member.name.clone(),
            phone: member.phone.to_string(),
            roles: member.roles.iter().map(|r| wire(*r)).collect(),
            dbs_level: member
                .dbs
                .as_ref()
                .map_or_else(|| "none".into(), |d| wire(d.level)),
            dbs_date: member
                .dbs
                .as_ref()
                .map_or_else(String::new, |d| d.checked_on.to_string()),
            editing: true,
        }
    }

    fn from_fields(fields: &Fields) -> Self {
        Self {
            id: fields.one("id").to_owned(),
            name: fields.one("name").to_owned(),
            phone: fields.one("phone").to_owned(),
            roles: fields.all("role").into_iter().map(str::to_owned).collect(),
            dbs_level: fields.one("dbs_level").to_owned(),
            dbs_date: fields.one("dbs_date").to_owned(),
            editing: fields.ticked("editing"),
        }
    }

    /// The member of staff this draft describes, or each field's problem.
    fn parse(&self, today: NaiveDate) -> Result<StaffMember, Problems> {
        let mut errors = Problems::new();
        let id = StaffId::parse(&self.id)
            .map_err(|_| {
                errors.insert(
                    "id",
                    "the sign-in name must be 1-64 letters, digits, - or _ (for example jo-rivers)"
                        .into(),
                )
            })
            .ok();
        if self.name.is_empty() || self.name.chars().count() > 100 {
            errors.insert(
                "name",
                "enter the person's name (at most 100 characters)".into(),
            );
        }
        // The phone's dialler parses with the same rule, so a number saved here is one it can ring.
        let phone = PhoneNumber::parse(&self.phone)
            .map_err(|e| {
                errors.insert(
                    "phone",
                    format!("{e}, so a partner or the office can ring them on a visit"),
                )
            })
            .ok();
        let mut roles = Vec::new();
        for role in &self.roles {
            match from_wire::<Role>(role) {
                Some(role) if !roles.contains(&role) => roles.push(role),
                Some(_) => {}
                None => {
                    errors.insert("roles", format!("“{role}” is not a role"));
                }
            }
        }
        if roles.is_empty() && !errors.contains_key("roles") {
            errors.insert("roles", "choose at least one role".into());
        }
        let dbs = match self.dbs_level.as_str() {
            "" | "none" => {
                if !self.dbs_date.is_empty() {
                    errors.insert(
                        "dbs_date",
                        "a check date was given without a DBS level: choose the level too".into(),
                    );
                }
                None
            }
            level => match from_wire::<DbsLevel>(level) {
                None => {
                    errors.insert("dbs_level", format!("“{level}” is not a DBS level"));
                    None
                }
                Some(level) => match NaiveDate::parse_from_str(&self.dbs_date, "%Y-%m-%d") {
                    Err(_) => {
                        errors.insert("dbs_date", "enter the date of the DBS check".into());
                        None
                    }
                    Ok(date) if date > today => {
                        errors.insert(
                            "dbs_date",
                            format!("the DBS check date {date} is in the future"),
                        );
                        None
                    }
                    Ok(checked_on) => Some(DbsCheck { level, checked_on }),
                },
            },
        };
        match (id, phone) {
            (Some(id), Some(phone)) if errors.is_empty() => Ok(StaffMember {
                id,
                name: self.name.clone(),
                roles,
                phone,
                dbs,
            }),
            _ => Err(errors),
        }
    }
}

fn dbs_words(member: &StaffMember) -> String {
    match &member.dbs {
        None => "none recorded".into(),
        Some(check) => {
            format!(
                "{}, checked {}",
                check.level.label(),
                check.checked_on.format("%-d %B %Y")
            )
        }
    }
}

fn staff_page(
    session: &Session,
    dbs_required: bool,
    staff: &[StaffMember],
    draft: &StaffDraft,
    errors: &Problems,
    notice: Option<String>,
    status: StatusCode,
) -> Response {
    // "None recorded" first, then every level the core knows.
    let dbs_levels = std::iter::once(("none".to_owned(), "None recorded".to_owned())).chain(
        DbsLevel::ALL
            .iter()
            .map(|&level| (wire(level), words::capitalise(level.label()))),
    );
    let body = html! {
        @if let Some(notice) = notice { p.codephrase #notice role="status" { (notice) } }
        @if dbs_required {
            p { "The school's policy requires an enhanced DBS check (with or without the barred list) for anyone assigned to a home visit." }
        } @else {
            p.problem { "The school's policy does not require a DBS check for home visits: anyone can be assigned. Change this on the Policy page." }
        }
        table #staff {
            thead { tr { th { "Name" } th { "Sign-in name" } th { "Roles" } th { "Phone" } th { "DBS check" } th { "Home visits" } th {} } }
            tbody {
                @for member in staff {
                    tr id=(format!("staff-{}", member.id)) {
                        td { (member.name) }
                        td { (member.id) }
                        td { (member.roles.iter().map(|r| r.label()).collect::<Vec<_>>().join(", ")) }
                        td.phone { (member.phone) }
                        td { (dbs_words(member)) }
                        td {
                            @if member.may_visit_homes() { "Can be assigned" }
                            @else if dbs_required { strong.cannot-visit { "Cannot be assigned to visits: no enhanced DBS check" } }
                            @else { "No enhanced DBS check (the policy does not require one)" }
                        }
                        td { a href=(format!("/admin/staff?edit={}", member.id)) { "Edit" } }
                    }
                }
            }
        }
        h2 #form-title { @if draft.editing { "Edit " (draft.name) } @else { "Add a member of staff" } }
        (nothing_saved(errors))
        form #staff-form method="post" action="/admin/staff" {
            input type="hidden" name="csrf" value=(session.csrf_token);
            @if draft.editing { input type="hidden" name="editing" value="yes"; }
            table {
                tr { th { label for="id" { "Sign-in name" } }
                     td {
                        @if draft.editing {
                            input #id type="text" name="id" value=(draft.id) readonly;
                        } @else {
                            input #id type="text" name="id" value=(draft.id) required;
                        }
                        (field_error(errors, "id")) } }
                tr { th { label for="name" { "Name" } } td { input #name type="text" name="name" value=(draft.name) required; (field_error(errors, "name")) } }
                tr { th { label for="phone" { "Mobile phone" } } td { input #phone type="tel" name="phone" value=(draft.phone) required; (field_error(errors, "phone")) } }
                tr { th { "Roles" } td {
                    @for role in Role::ALL.iter().copied() {
                        @let value = wire(role);
                        label { input type="checkbox" name="role" value=(value) checked[draft.roles.contains(&value)]; " " (role.label()) } " "
                    }
                    (field_error(errors, "roles")) } }
                tr { th { label for="dbs_level" { "DBS check" } } td {
                    select #dbs_level name="dbs_level" {
                        @for (value, label) in dbs_levels {
                            option value=(value) selected[draft.dbs_level == value || (draft.dbs_level.is_empty() && value == "none")] { (label) }
                        }
                    }
                    (field_error(errors, "dbs_level")) } }
                tr { th { label for="dbs_date" { "Date of the DBS check" } } td { input #dbs_date type="date" name="dbs_date" value=(draft.dbs_date); (field_error(errors, "dbs_date")) } }
            }
            button #save-staff type="submit" { "Save" }
        }
    };
    admin_page("Staff", "/admin/staff", session, status, body)
}

#[derive(Debug, Deserialize)]
pub struct StaffQuery {
    edit: Option<String>,
}

/// The school's staff, and whether its policy requires an enhanced DBS check for visits.
async fn staff_and_dbs_rule(
    state: &AppState,
    session: &Session,
) -> Result<(Vec<StaffMember>, bool), WebError> {
    let store = state.store.clone();
    let school = session.user.school.id.clone();
    blocking(move || {
        Ok((
            store.school_staff(&school)?,
            store.policy(&school)?.dbs_check_required,
        ))
    })
    .await
}

/// `GET /admin/staff`, `?edit=<id>` to fill the form with someone's record.
pub async fn staff_list(
    Admin(session): Admin,
    State(state): State<AppState>,
    query: Result<Query<StaffQuery>, QueryRejection>,
) -> Result<Response, WebError> {
    let (staff, dbs_required) = staff_and_dbs_rule(&state, &session).await?;
    let edit = query.ok().and_then(|Query(q)| q.edit);
    let draft = match edit {
        None => StaffDraft::default(),
        Some(id) => match staff.iter().find(|m| m.id.as_str() == id) {
            Some(member) => StaffDraft::of(member),
            None => {
                return Err(WebError::NotFound(format!(
                    "there is no member of staff “{id}”"
                )))
            }
        },
    };
    Ok(staff_page(
        &session,
        dbs_required,
        &staff,
        &draft,
        &Problems::new(),
        None,
        StatusCode::OK,
    ))
}

/// `POST /admin/staff`: add someone, or save an edit.
pub async fn save_staff(
    Admin(session): Admin,
    State(state): State<AppState>,
    CsrfForm(fields): CsrfForm<Fields>,
) -> Result<Response, WebError> {
    let draft = StaffDraft::from_fields(&fields);
    let school = session.user.school.id.clone();
    let today = state.now().date_naive();
    let mut errors = Problems::new();
    let mut notice = None;
    match draft.parse(today) {
        Err(problems) => errors = problems,
        Ok(member) => {
            // An admin removing their own admin role would lock the school out of these pages.
            if member.id == session.user.staff.id && !member.roles.contains(&Role::Admin) {
                errors.insert(
                    "roles",
                    "you cannot remove your own admin role: ask another admin".into(),
                );
            } else {
                let store = state.store.clone();
                let (school, member, editing) = (school.clone(), member.clone(), draft.editing);
                let result = checked(move || {
                    let exists = store.school_staff_member(&school, &member.id)?.is_some();
                    if exists && !editing {
                        return Err(StoreError::Invalid(format!(
                            "the sign-in name “{}” is already someone else's; choose another or edit them",
                            member.id
                        )));
                    }
                    if !exists && editing {
                        return Err(StoreError::Invalid(format!("there is no member of staff “{}” to edit", member.id)));
                    }
                    let required = store.policy(&school)?.dbs_check_required;
                    store
                        .save_staff(&school, &member)
                        .map(|saved| (saved, member, required))
                })
                .await?;
                match result {
                    Ok((saved, member, required)) => {
                        tracing::info!(staff = %member.id, by = %session.user.staff.id, "staff record saved");
                        let verb = if saved == Saved::Added {
                            "Added"
                        } else {
                            "Saved"
                        };
                        let mut text = format!("{verb} {}.", member.name);
                        if required && !member.may_visit_homes() {
                            text.push_str(" They cannot be assigned to visits until an enhanced DBS check is recorded.");
                        }
                        notice = Some(text);
                    }
                    Err(message) => {
                        errors.insert("id", message);
                    }
                }
            }
        }
    }
    let (staff, dbs_required) = staff_and_dbs_rule(&state, &session).await?;
    if errors.is_empty() {
        Ok(staff_page(
            &session,
            dbs_required,
            &staff,
            &StaffDraft::default(),
            &errors,
            notice,
            StatusCode::OK,
        ))
    } else {
        Ok(staff_page(
            &session,
            dbs_required,
            &staff,
            &draft,
            &errors,
            None,
            StatusCode::BAD_REQUEST,
        ))
    }
}
