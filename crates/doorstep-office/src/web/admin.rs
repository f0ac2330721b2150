//! The admin pages: staff (roles, phone, DBS check), pupils and absences imported from the MIS as CSV, and
//! the school's policy (a preset, or edited and validated).
//!
//! Only someone with the admin role may open or post any of them; the check is on the server, in
//! [`admin_session`]. Every form carries the session's CSRF token, checked before anything else is read.
//! A refused form is shown again as typed, with each problem beside its field, and nothing is saved.

use std::collections::BTreeMap;

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use chrono::{NaiveDate, NaiveTime};
use doorstep_core::domain::{DbsCheck, DbsLevel, Role, StaffMember, VisitPurpose};
use doorstep_core::ids::StaffId;
use doorstep_core::policy::{
    CodePhrases, EveningVisits, Policy, PolicyError, PolicyMinutes, Preset, SchoolHours,
};
use maud::{html, Markup};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::auth::{check_csrf, session};
use super::{blocking, pages, WebError};
use crate::api::AppState;
use crate::logins::Session;
use crate::people::{ImportReport, Saved, ABSENCE_CSV_COLUMNS, PUPIL_CSV_COLUMNS};
use crate::store::StoreError;

/// The largest CSV accepted in one paste; the request body limit is larger, and a school's whole roll fits.
const MAX_CSV_BYTES: usize = 1024 * 1024;

const ALL_ROLES: [Role; 6] = [
    Role::VisitingStaff,
    Role::Office,
    Role::Headteacher,
    Role::SafeguardingLead,
    Role::Dsl,
    Role::Admin,
];

const ALL_PURPOSES: [VisitPurpose; 11] = [
    VisitPurpose::PreReceptionRelationship,
    VisitPurpose::SafeAndWellCheck,
    VisitPurpose::AttendanceSupport,
    VisitPurpose::MeetParentAtHome,
    VisitPurpose::TakePupilHome,
    VisitPurpose::DropOffWork,
    VisitPurpose::KeepInTouchDuringAbsence,
    VisitPurpose::SuspectedTermTimeHoliday,
    VisitPurpose::SchoolRefusal,
    VisitPurpose::ContactFailedElsewhere,
    VisitPurpose::HomeEducation,
];

/// The admin pages' routes, merged into [`super::routes`].
pub fn routes() -> axum::Router<AppState> {
    use axum::routing::get;
    axum::Router::new()
        .route("/admin/staff", get(staff_list).post(save_staff))
        .route("/admin/import/pupils", get(pupils_page).post(import_pupils))
        .route(
            "/admin/import/absences",
            get(absences_page).post(import_absences),
        )
        .route("/admin/policy", get(policy_get).post(policy_post))
}

/// The session of an admin; anyone else is refused (signed out: to the sign-in page).
pub(crate) async fn admin_session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Session, WebError> {
    let session = session(state, headers).await?.ok_or(WebError::SignedOut)?;
    if !session.user.staff.roles.contains(&Role::Admin) {
        return Err(WebError::Forbidden(format!(
            "{} is signed in, but the admin pages (staff, imports, policy) are for admins only.",
            session.user.staff.name
        )));
    }
    Ok(session)
}

/// A posted form as name/value pairs: checkboxes and multi-selects repeat a name.
struct Fields(Vec<(String, String)>);

impl Fields {
    fn one(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map_or("", |(_, value)| value.as_str())
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .collect()
    }

    fn ticked(&self, name: &str) -> bool {
        !self.one(name).is_empty()
    }
}

/// Reads an admin form and checks its CSRF token before anything in it is used.
fn admin_form(
    session: &Session,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<Fields, WebError> {
    let fields = Fields(super::read_form(form)?);
    check_csrf(session, fields.one("csrf"))?;
    Ok(fields)
}

/// A store refusal the person can act on becomes their message; anything else is an internal failure.
fn refused(error: StoreError) -> WebError {
    match error {
        StoreError::Invalid(message) => WebError::BadInput(message),
        other => other.into(),
    }
}

/// Runs store work whose [`StoreError::Invalid`] is the person's to fix.
async fn checked<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<Result<T, String>, WebError> {
    blocking(move || match work() {
        Ok(value) => Ok(Ok(value)),
        Err(StoreError::Invalid(message)) => Ok(Err(message)),
        Err(other) => Err(other),
    })
    .await
}

/// An enum's wire name (`visiting_staff`), used as form values.
fn wire<T: Serialize>(value: T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn from_wire<T: DeserializeOwned>(text: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).ok()
}

fn nav(current: &str) -> Markup {
    let links = [
        ("/admin/staff", "Staff"),
        ("/admin/import/pupils", "Import pupils"),
        ("/admin/import/absences", "Import absences"),
        ("/admin/policy", "Policy"),
    ];
    html! {
        nav.toolbar aria-label="Admin" {
            a href="/" { "Board" }
            @for (href, label) in links {
                @if href == current { strong { (label) } } @else { a href=(href) { (label) } }
            }
        }
    }
}

fn admin_page(
    title: &str,
    current: &str,
    session: &Session,
    status: StatusCode,
    body: Markup,
) -> Response {
    let body = html! { main { (nav(current)) h1 { (title) } (body) } };
    let mut response = pages::page(title, Some(session), body, None);
    *response.status_mut() = status;
    response
}

fn field_error(errors: &BTreeMap<&'static str, String>, field: &str) -> Markup {
    html! {
        @if let Some(problem) = errors.get(field) {
            p.problem.field-error id=(format!("error-{field}")) role="alert" { (pages::sentence(problem)) }
        }
    }
}

fn nothing_saved(errors: &BTreeMap<&'static str, String>) -> Markup {
    html! {
        @if !errors.is_empty() {
            p.problem #problem role="alert" {
                "Nothing was saved: " (errors.len()) " problem" @if errors.len() > 1 { "s" } " to fix below."
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Staff

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
            phone: member.phone.clone(),
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
            id: fields.one("id").trim().to_owned(),
            name: fields.one("name").trim().to_owned(),
            phone: fields.one("phone").trim().to_owned(),
            roles: fields.all("role").into_iter().map(str::to_owned).collect(),
            dbs_level: fields.one("dbs_level").to_owned(),
            dbs_date: fields.one("dbs_date").trim().to_owned(),
            editing: fields.ticked("editing"),
        }
    }

    /// The member of staff this draft describes, or each field's problem.
    fn parse(&self, today: NaiveDate) -> Result<StaffMember, BTreeMap<&'static str, String>> {
        let mut errors = BTreeMap::new();
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
        let digits = self.phone.chars().filter(char::is_ascii_digit).count();
        let phone_chars_ok = self
            .phone
            .chars()
            .all(|c| c.is_ascii_digit() || " +-()".contains(c));
        if !phone_chars_ok || !(10..=15).contains(&digits) {
            errors.insert(
                "phone",
                "enter a phone number of 10 to 15 digits (spaces, +, - and brackets allowed), so a partner \
                 or the office can ring them on a visit"
                    .into(),
            );
        }
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
        match id {
            Some(id) if errors.is_empty() => Ok(StaffMember {
                id,
                name: self.name.clone(),
                roles,
                phone: self.phone.clone(),
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
            let level = match check.level {
                DbsLevel::Basic => "basic",
                DbsLevel::Standard => "standard",
                DbsLevel::Enhanced => "enhanced",
                DbsLevel::EnhancedWithBarredList => "enhanced with barred list",
            };
            format!("{level}, checked {}", check.checked_on.format("%-d %B %Y"))
        }
    }
}

fn staff_page(
    session: &Session,
    dbs_required: bool,
    staff: &[StaffMember],
    draft: &StaffDraft,
    errors: &BTreeMap<&'static str, String>,
    notice: Option<String>,
    status: StatusCode,
) -> Response {
    let dbs_levels = [
        ("none", "None recorded"),
        ("basic", "Basic"),
        ("standard", "Standard"),
        ("enhanced", "Enhanced"),
        ("enhanced_with_barred_list", "Enhanced with barred list"),
    ];
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
                    @for role in ALL_ROLES {
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

/// `GET /admin/staff`, `?edit=<id>` to fill the form with someone's record.
pub async fn staff_list(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<StaffQuery>, QueryRejection>,
) -> Result<Response, WebError> {
    let session = admin_session(&state, &headers).await?;
    let school = session.user.school.id.clone();
    let store = state.store.clone();
    let (staff, dbs_required) = blocking(move || {
        Ok((
            store.school_staff(&school)?,
            store.policy(&school)?.dbs_check_required,
        ))
    })
    .await?;
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
        &BTreeMap::new(),
        None,
        StatusCode::OK,
    ))
}

/// `POST /admin/staff`: add someone, or save an edit.
pub async fn save_staff(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<Response, WebError> {
    let session = admin_session(&state, &headers).await?;
    let fields = admin_form(&session, form)?;
    let draft = StaffDraft::from_fields(&fields);
    let school = session.user.school.id.clone();
    let today = state.now().date_naive();
    let mut errors = BTreeMap::new();
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
    let store = state.store.clone();
    let (staff, dbs_required) = blocking(move || {
        Ok((
            store.school_staff(&school)?,
            store.policy(&school)?.dbs_check_required,
        ))
    })
    .await?;
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

// ---------------------------------------------------------------------------------------------------------
// Imports

/// Which CSV an import page takes.
#[derive(Debug, Clone, Copy)]
enum ImportKind {
    Pupils,
    Absences,
}

impl ImportKind {
    fn path(self) -> &'static str {
        match self {
            ImportKind::Pupils => "/admin/import/pupils",
            ImportKind::Absences => "/admin/import/absences",
        }
    }

    fn title(self) -> &'static str {
        match self {
            ImportKind::Pupils => "Import pupils",
            ImportKind::Absences => "Import absences",
        }
    }

    fn columns(self) -> &'static [&'static str] {
        match self {
            ImportKind::Pupils => &PUPIL_CSV_COLUMNS,
            ImportKind::Absences => &ABSENCE_CSV_COLUMNS,
        }
    }

    fn format_help(self) -> Markup {
        match self {
            ImportKind::Pupils => html! {
                ul {
                    li { code { "pupil_id" } ": the MIS's id, 1-64 letters, digits, - or _. Importing the same id again updates that pupil." }
                    li { code { "name" } ": required." }
                    li { code { "date_of_birth" } ": YYYY-MM-DD or DD/MM/YYYY, not in the future." }
                    li { code { "address_line_1" } ": required; " code { "address_line_2" } " and " code { "town" } " may be empty." }
                    li { code { "postcode" } ": a UK postcode such as OK1 2AB." }
                    li { code { "family_notes" } ", " code { "medical_needs" } ": may be empty; they go into visit briefings." }
                }
            },
            ImportKind::Absences => html! {
                ul {
                    li { code { "pupil_id" } ": a pupil already imported." }
                    li { code { "date" } ": YYYY-MM-DD or DD/MM/YYYY, not in the future. One row per pupil per day; importing the same day again updates it." }
                    li { code { "reason_code" } ": the MIS's attendance code, 1-8 characters without spaces (for example N)." }
                    li { code { "contact_made" } ": yes or no: whether the family has been reached." }
                }
            },
        }
    }
}

fn import_page(
    kind: ImportKind,
    session: &Session,
    csv: &str,
    outcome: Option<Result<&ImportReport, &str>>,
    summary: Markup,
    status: StatusCode,
) -> Response {
    let body = html! {
        @match outcome {
            Some(Err(problem)) => { p.problem #problem role="alert" { (pages::sentence(problem)) } }
            Some(Ok(report)) => {
                div.codephrase #report role="status" {
                    p { strong #report-summary {
                        (report.imported) " imported, " (report.updated) " updated, " (report.rejected.len()) " rejected."
                    } }
                    @if !report.rejected.is_empty() {
                        p { "These rows were not imported (nothing from them was stored). Fix them in the MIS or the file and import again:" }
                        table #rejected {
                            thead { tr { th { "Line" } th { "pupil_id" } th { "Why" } } }
                            tbody {
                                @for problem in &report.rejected {
                                    tr { td { (problem.line) } td { (problem.pupil_id) } td { (pages::sentence(&problem.reason)) } }
                                }
                            }
                        }
                    }
                }
            }
            None => {}
        }
        h2 { "The CSV" }
        p { "Export from the school's MIS as CSV and paste it below. The first line must be this header row:" }
        pre #columns { (kind.columns().join(",")) }
        (kind.format_help())
        p { "Each row is checked on its own: good rows are imported, and every row that is not is listed with its line number and why. A row is never half-imported." }
        form #import-form method="post" action=(kind.path()) {
            input type="hidden" name="csrf" value=(session.csrf_token);
            p { label for="csv" { "CSV text" } }
            textarea #csv name="csv" rows="14" cols="100" required { (csv) }
            p { button #import type="submit" { "Import" } }
        }
        (summary)
    };
    admin_page(kind.title(), kind.path(), session, status, body)
}

async fn pupils_summary(state: &AppState, session: &Session) -> Result<Markup, WebError> {
    let store = state.store.clone();
    let school = session.user.school.id.clone();
    let pupils = blocking(move || store.pupil_records(&school)).await?;
    Ok(html! {
        h2 { "Imported pupils (" (pupils.len()) ")" }
        @if !pupils.is_empty() {
            table #pupils {
                thead { tr { th { "pupil_id" } th { "Name" } th { "Born" } th { "Address" } th { "Medical needs" } } }
                tbody {
                    @for pupil in &pupils {
                        tr id=(format!("pupil-{}", pupil.id)) {
                            td { (pupil.id) }
                            td { (pupil.name) }
                            td { (pupil.date_of_birth) }
                            td { ([pupil.address_line_1.as_str(), pupil.address_line_2.as_str(), pupil.town.as_str(), pupil.postcode.as_str()]
                                    .iter().filter(|s| !s.is_empty()).copied().collect::<Vec<_>>().join(", ")) }
                            td { (pupil.medical_needs) }
                        }
                    }
                }
            }
        }
    })
}

async fn import_get(
    state: AppState,
    headers: HeaderMap,
    kind: ImportKind,
) -> Result<Response, WebError> {
    let session = admin_session(&state, &headers).await?;
    let summary = match kind {
        ImportKind::Pupils => pupils_summary(&state, &session).await?,
        ImportKind::Absences => html! {},
    };
    Ok(import_page(
        kind,
        &session,
        "",
        None,
        summary,
        StatusCode::OK,
    ))
}

async fn import_post(
    state: AppState,
    headers: HeaderMap,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
    kind: ImportKind,
) -> Result<Response, WebError> {
    let session = admin_session(&state, &headers).await?;
    let fields = admin_form(&session, form)?;
    let csv = fields.one("csv").to_owned();
    let outcome = if csv.len() > MAX_CSV_BYTES {
        Err(format!(
            "the CSV is larger than {} KB: import it in parts; nothing was imported",
            MAX_CSV_BYTES / 1024
        ))
    } else {
        let store = state.store.clone();
        let school = session.user.school.id.clone();
        let today = state.now().date_naive();
        let text = csv.clone();
        checked(move || match kind {
            ImportKind::Pupils => store.import_pupils_csv(&school, &text, today),
            ImportKind::Absences => store.import_absences_csv(&school, &text, today),
        })
        .await?
    };
    if let Ok(report) = &outcome {
        tracing::info!(
            by = %session.user.staff.id,
            imported = report.imported,
            updated = report.updated,
            rejected = report.rejected.len(),
            "{} CSV imported",
            kind.title()
        );
    }
    let summary = match kind {
        ImportKind::Pupils => pupils_summary(&state, &session).await?,
        ImportKind::Absences => html! {},
    };
    let (status, shown) = match &outcome {
        // The file was read and the good rows stored, so the request itself succeeded.
        Ok(report) => (StatusCode::OK, Some(Ok(report))),
        Err(problem) => (StatusCode::BAD_REQUEST, Some(Err(problem.as_str()))),
    };
    // A refused file is shown again to fix; a read one is not, so "Import" twice is not an accident.
    let keep = if outcome.is_err() { csv.as_str() } else { "" };
    Ok(import_page(kind, &session, keep, shown, summary, status))
}

/// `GET /admin/import/pupils`.
pub async fn pupils_page(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    import_get(state, headers, ImportKind::Pupils).await
}

/// `POST /admin/import/pupils`.
pub async fn import_pupils(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<Response, WebError> {
    import_post(state, headers, form, ImportKind::Pupils).await
}

/// `GET /admin/import/absences`.
pub async fn absences_page(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    import_get(state, headers, ImportKind::Absences).await
}

/// `POST /admin/import/absences`.
pub async fn import_absences(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<Response, WebError> {
    import_post(state, headers, form, ImportKind::Absences).await
}

// ---------------------------------------------------------------------------------------------------------
// Policy

const MINUTE_FIELDS: [(&str, &str); 5] = [
    (
        "first_check_in_after_start",
        "First check-in, minutes after the scheduled start",
    ),
    ("check_in_interval", "Then a check-in every (minutes)"),
    (
        "max_wait_for_family",
        "Longest wait at the door for the family (minutes)",
    ),
    (
        "overdue_grace",
        "Grace past a missed check-in before \"overdue\" (minutes)",
    ),
    (
        "escalate_to_authoriser_after",
        "Unacknowledged overdue goes to the authoriser after (minutes)",
    ),
];

const TICK_FIELDS: [(&str, &str); 4] = [
    (
        "pair_waits_outside_until_all_arrived",
        "A pair waits outside until everyone has arrived",
    ),
    (
        "out_of_hours_needs_responsible_contact",
        "Visits outside school hours need a named responsible contact",
    ),
    (
        "dbs_check_required",
        "Staff assigned must hold an enhanced DBS check",
    ),
    (
        "animals_secured_or_cancel",
        "Pets kept in another room or outside, or the visit is cancelled",
    ),
];

/// The policy form's values as text (so a refused form comes back as typed) and its purposes.
#[derive(Debug, Clone)]
struct PolicyDraft {
    values: BTreeMap<String, String>,
    purposes: Vec<String>,
}

impl PolicyDraft {
    fn of(policy: &Policy) -> Self {
        let mut values = BTreeMap::new();
        let mut put = |key: &str, value: String| {
            values.insert(key.to_owned(), value);
        };
        put("authoriser", wire(policy.authoriser));
        put("lone_visit_approver", wire(policy.lone_visit_approver));
        put(
            "safeguarding_concerns_to",
            wire(policy.safeguarding_concerns_to),
        );
        put("staff_per_visit", policy.staff_per_visit.to_string());
        put(
            "first_check_in_after_start",
            policy.first_check_in_after_start.get().to_string(),
        );
        put(
            "check_in_interval",
            policy.check_in_interval.get().to_string(),
        );
        put(
            "max_wait_for_family",
            policy.max_wait_for_family.get().to_string(),
        );
        put("overdue_grace", policy.overdue_grace.get().to_string());
        put(
            "escalate_to_authoriser_after",
            policy.escalate_to_authoriser_after.get().to_string(),
        );
        put(
            "school_hours_start",
            policy.school_hours.start.format("%H:%M").to_string(),
        );
        put(
            "school_hours_end",
            policy.school_hours.end.format("%H:%M").to_string(),
        );
        put(
            "evening_starts",
            policy.evening_starts.format("%H:%M").to_string(),
        );
        put("evening_visits", wire(policy.evening_visits));
        put(
            "code_to_colleague",
            policy
                .code_phrases
                .as_ref()
                .map(|p| p.to_colleague.clone())
                .unwrap_or_default(),
        );
        put(
            "code_to_reception",
            policy
                .code_phrases
                .as_ref()
                .map(|p| p.to_reception.clone())
                .unwrap_or_default(),
        );
        put("absence_visit_day", policy.absence_visit_day.to_string());
        put(
            "absence_visit_day_with_concern",
            policy.absence_visit_day_with_concern.to_string(),
        );
        put("record_system", policy.record_system.clone());
        let ticks = [
            policy.pair_waits_outside_until_all_arrived,
            policy.out_of_hours_needs_responsible_contact,
            policy.dbs_check_required,
            policy.animals_secured_or_cancel,
        ];
        for ((key, _), on) in TICK_FIELDS.iter().zip(ticks) {
            if on {
                put(key, "yes".into());
            }
        }
        Self {
            values,
            purposes: policy.purposes.iter().map(|p| wire(*p)).collect(),
        }
    }

    fn from_fields(fields: &Fields) -> Self {
        let mut values = BTreeMap::new();
        for (key, value) in &fields.0 {
            if key != "csrf" && key != "purpose" {
                values.entry(key.clone()).or_insert_with(|| value.clone());
            }
        }
        Self {
            values,
            purposes: fields
                .all("purpose")
                .into_iter()
                .map(str::to_owned)
                .collect(),
        }
    }

    fn get(&self, key: &str) -> &str {
        self.values.get(key).map_or("", |v| v.trim())
    }

    /// The policy this draft describes, starting from `current` (for what the form does not edit), or each
    /// field's problem. Whole-policy rules ([`Policy::validate`]) are checked too, even when a field is
    /// wrong, so every problem shows at once.
    fn parse(&self, current: &Policy) -> Result<Policy, BTreeMap<&'static str, String>> {
        let mut errors: BTreeMap<&'static str, String> = BTreeMap::new();
        let mut policy = current.clone();
        let role = |key: &'static str, errors: &mut BTreeMap<&'static str, String>| {
            from_wire::<Role>(self.get(key)).or_else(|| {
                errors.insert(key, "choose a role".into());
                None
            })
        };
        if let Some(r) = role("authoriser", &mut errors) {
            policy.authoriser = r;
        }
        if let Some(r) = role("lone_visit_approver", &mut errors) {
            policy.lone_visit_approver = r;
        }
        if let Some(r) = role("safeguarding_concerns_to", &mut errors) {
            policy.safeguarding_concerns_to = r;
        }
        match self.get("staff_per_visit").parse::<u8>() {
            Ok(n) if (1..=4).contains(&n) => policy.staff_per_visit = n,
            _ => {
                errors.insert(
                    "staff_per_visit",
                    "staff per visit must be a whole number from 1 to 4".into(),
                );
            }
        }
        for (key, label) in MINUTE_FIELDS {
            let minutes = self
                .get(key)
                .parse::<u32>()
                .ok()
                .and_then(|m| PolicyMinutes::new(m).ok());
            match minutes {
                Some(m) => match key {
                    "first_check_in_after_start" => policy.first_check_in_after_start = m,
                    "check_in_interval" => policy.check_in_interval = m,
                    "max_wait_for_family" => policy.max_wait_for_family = m,
                    "overdue_grace" => policy.overdue_grace = m,
                    _ => policy.escalate_to_authoriser_after = m,
                },
                None => {
                    errors.insert(
                        key,
                        format!(
                            "{label}: must be a whole number of minutes from 1 to {}; got “{}”",
                            PolicyMinutes::MAX,
                            self.get(key)
                        ),
                    );
                }
            }
        }
        let time = |key: &'static str, errors: &mut BTreeMap<&'static str, String>| {
            NaiveTime::parse_from_str(self.get(key), "%H:%M")
                .ok()
                .or_else(|| {
                    errors.insert(
                        key,
                        format!("enter a time as HH:MM; got “{}”", self.get(key)),
                    );
                    None
                })
        };
        let start = time("school_hours_start", &mut errors);
        let end = time("school_hours_end", &mut errors);
        let evening = time("evening_starts", &mut errors);
        if let (Some(start), Some(end)) = (start, end) {
            policy.school_hours = SchoolHours { start, end };
        }
        if let Some(evening) = evening {
            policy.evening_starts = evening;
        }
        match from_wire::<EveningVisits>(self.get("evening_visits")) {
            Some(v) => policy.evening_visits = v,
            None => {
                errors.insert(
                    "evening_visits",
                    "choose what the policy says about evening visits".into(),
                );
            }
        }
        // Both blank: not set yet (visits wait until they are); one blank is refused by `validate`.
        let (to_colleague, to_reception) = (
            self.get("code_to_colleague").trim(),
            self.get("code_to_reception").trim(),
        );
        policy.code_phrases =
            (!to_colleague.is_empty() || !to_reception.is_empty()).then(|| CodePhrases {
                to_colleague: to_colleague.to_owned(),
                to_reception: to_reception.to_owned(),
            });
        // A code phrase has to sound like an ordinary sentence and fit on the phone's alert button.
        for key in ["code_to_colleague", "code_to_reception"] {
            if self.get(key).chars().count() > 200 {
                errors.insert(
                    key,
                    "a code phrase is at most 200 characters: one ordinary sentence".into(),
                );
            }
        }
        for key in ["absence_visit_day", "absence_visit_day_with_concern"] {
            match self.get(key).parse::<u8>() {
                Ok(day) if key == "absence_visit_day" => policy.absence_visit_day = day,
                Ok(day) => policy.absence_visit_day_with_concern = day,
                Err(_) => {
                    errors.insert(key, "enter a day of absence from 1 to 30".into());
                }
            }
        }
        let record_system = self.get("record_system");
        if record_system.is_empty() || record_system.chars().count() > 60 {
            errors.insert(
                "record_system",
                "name the record system (for example CPOMS), at most 60 characters".into(),
            );
        } else {
            policy.record_system = record_system.to_owned();
        }
        policy.pair_waits_outside_until_all_arrived = !self.get(TICK_FIELDS[0].0).is_empty();
        policy.out_of_hours_needs_responsible_contact = !self.get(TICK_FIELDS[1].0).is_empty();
        policy.dbs_check_required = !self.get(TICK_FIELDS[2].0).is_empty();
        policy.animals_secured_or_cancel = !self.get(TICK_FIELDS[3].0).is_empty();
        let mut purposes = Vec::new();
        for purpose in &self.purposes {
            match from_wire::<VisitPurpose>(purpose) {
                Some(p) if !purposes.contains(&p) => purposes.push(p),
                Some(_) => {}
                None => {
                    errors.insert("purposes", format!("“{purpose}” is not a visit purpose"));
                }
            }
        }
        policy.purposes = purposes;
        // The whole-policy rules, placed beside the field a person would change.
        if let Err(error) = policy.validate() {
            let field = match &error {
                PolicyError::SchoolHoursBackwards => "school_hours_end",
                PolicyError::EveningBeforeSchoolEnds => "evening_starts",
                PolicyError::StaffPerVisit(_) => "staff_per_visit",
                PolicyError::EmptyCodePhrase("to a colleague") => "code_to_colleague",
                PolicyError::EmptyCodePhrase(_) | PolicyError::CodePhrasesNotSet => {
                    "code_to_reception"
                }
                PolicyError::AbsenceDays { .. } => "absence_visit_day",
                PolicyError::NoPurposes => "purposes",
                PolicyError::MinutesOutOfRange(_) => "first_check_in_after_start",
            };
            let message = match &error {
                PolicyError::SchoolHoursBackwards => format!(
                    "school hours must start before they end (start {}, end {})",
                    self.get("school_hours_start"),
                    self.get("school_hours_end")
                ),
                other => other.to_string(),
            };
            errors.entry(field).or_insert(message);
        }
        if errors.is_empty() {
            Ok(policy)
        } else {
            Err(errors)
        }
    }
}

fn preset_name(preset: Preset) -> &'static str {
    match preset {
        Preset::PrimaryHeadteacher => "Primary school: the headteacher authorises (seed 000)",
        Preset::AcademySafeguardingLead => "Academy: the safeguarding lead authorises (seed 001)",
    }
}

fn policy_page(
    session: &Session,
    current: &Policy,
    draft: &PolicyDraft,
    errors: &BTreeMap<&'static str, String>,
    notice: Option<&str>,
    status: StatusCode,
) -> Response {
    let role_select = |key: &'static str| {
        html! {
            select id=(key) name=(key) {
                @for role in ALL_ROLES {
                    @let value = wire(role);
                    option value=(value) selected[draft.get(key) == value] { (pages::capitalise(role.label())) }
                }
            }
            (field_error(errors, key))
        }
    };
    let text_row = |key: &'static str, label: &str, kind: &str| {
        html! {
            tr { th { label for=(key) { (label) } } td { input id=(key) type=(kind) name=(key) value=(draft.get(key)); (field_error(errors, key)) } }
        }
    };
    let body = html! {
        @if let Some(notice) = notice { p.codephrase #notice role="status" { (notice) } }
        p { "Started from: " strong #started-from { (current.preset.map_or("the school's own settings", preset_name)) } ". Phones get any change at their next sync." }
        h2 { "Start from a preset" }
        form #preset-form method="post" action="/admin/policy" {
            input type="hidden" name="csrf" value=(session.csrf_token);
            select #preset name="apply_preset" {
                @for preset in Preset::ALL { option value=(wire(preset)) { (preset_name(preset)) } }
            }
            " "
            button #apply-preset type="submit" { "Use this preset (replaces every setting below)" }
        }
        h2 { "Edit the settings" }
        (nothing_saved(errors))
        form #policy-form method="post" action="/admin/policy" {
            input type="hidden" name="csrf" value=(session.csrf_token);
            table {
                tr { th { label for="authoriser" { "Who authorises every visit" } } td { (role_select("authoriser")) } }
                tr { th { label for="lone_visit_approver" { "Who may approve a lone visit" } } td { (role_select("lone_visit_approver")) } }
                tr { th { label for="safeguarding_concerns_to" { "Safeguarding concerns go at once to" } } td { (role_select("safeguarding_concerns_to")) } }
                (text_row("staff_per_visit", "Staff per visit (1-4)", "number"))
                @for (key, label) in MINUTE_FIELDS { (text_row(key, label, "number")) }
                (text_row("school_hours_start", "School hours start (HH:MM)", "time"))
                (text_row("school_hours_end", "School hours end (HH:MM)", "time"))
                (text_row("evening_starts", "Evening starts (HH:MM)", "time"))
                tr { th { label for="evening_visits" { "Evening visits" } } td {
                    select #evening_visits name="evening_visits" {
                        option value="as_out_of_hours" selected[draft.get("evening_visits") == "as_out_of_hours"] { "Like any visit outside school hours" }
                        option value="advised_against" selected[draft.get("evening_visits") == "advised_against"] { "Advised against: the authoriser must override" }
                    }
                    (field_error(errors, "evening_visits")) } }
                (text_row("code_to_colleague", "Code phrase said to a colleague", "text"))
                (text_row("code_to_reception", "Code phrase said to reception", "text"))
                (text_row("absence_visit_day", "Unexplained absence, no contact: visit on day", "number"))
                (text_row("absence_visit_day_with_concern", "…or with a concern, on day", "number"))
                (text_row("record_system", "Write-ups go to (record system)", "text"))
                @for (key, label) in TICK_FIELDS {
                    tr { th { label for=(key) { (label) } } td { input id=(key) type="checkbox" name=(key) value="yes" checked[!draft.get(key).is_empty()]; } }
                }
                tr { th { "Visit purposes staff may choose" } td {
                    @for purpose in ALL_PURPOSES {
                        @let value = wire(purpose);
                        label { input type="checkbox" name="purpose" value=(value) checked[draft.purposes.contains(&value)]; " " (purpose.label()) } br;
                    }
                    (field_error(errors, "purposes")) } }
            }
            button #save-policy type="submit" { "Save the policy" }
        }
    };
    admin_page("Policy", "/admin/policy", session, status, body)
}

/// `GET /admin/policy`.
pub async fn policy_get(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let session = admin_session(&state, &headers).await?;
    let store = state.store.clone();
    let school = session.user.school.id.clone();
    let current = blocking(move || store.policy(&school)).await?;
    Ok(policy_page(
        &session,
        &current,
        &PolicyDraft::of(&current),
        &BTreeMap::new(),
        None,
        StatusCode::OK,
    ))
}

/// `POST /admin/policy`: apply a preset (`apply_preset`), or save the edited settings.
pub async fn policy_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<Response, WebError> {
    let session = admin_session(&state, &headers).await?;
    let fields = admin_form(&session, form)?;
    let school = session.user.school.id.clone();
    let store = state.store.clone();
    let current = {
        let school = school.clone();
        blocking(move || store.policy(&school)).await?
    };
    let (candidate, notice) = if fields.ticked("apply_preset") {
        let preset = from_wire::<Preset>(fields.one("apply_preset")).ok_or_else(|| {
            WebError::BadInput(format!(
                "“{}” is not one of the presets; nothing was changed",
                fields.one("apply_preset")
            ))
        })?;
        (
            Ok(preset.policy()),
            format!("Now using the preset: {}.", preset_name(preset)),
        )
    } else {
        let draft = PolicyDraft::from_fields(&fields);
        match draft.parse(&current) {
            Ok(policy) => (Ok(policy), "The policy was saved.".to_owned()),
            Err(errors) => (Err((draft, errors)), String::new()),
        }
    };
    match candidate {
        Err((draft, errors)) => Ok(policy_page(
            &session,
            &current,
            &draft,
            &errors,
            None,
            StatusCode::BAD_REQUEST,
        )),
        Ok(policy) => {
            let store = state.store.clone();
            let saved = policy.clone();
            match checked(move || store.set_policy(&school, &saved)).await? {
                Ok(()) => {
                    tracing::info!(by = %session.user.staff.id, "school policy changed");
                    Ok(policy_page(
                        &session,
                        &policy,
                        &PolicyDraft::of(&policy),
                        &BTreeMap::new(),
                        Some(&notice),
                        StatusCode::OK,
                    ))
                }
                Err(message) => Err(refused(StoreError::Invalid(message))),
            }
        }
    }
}
