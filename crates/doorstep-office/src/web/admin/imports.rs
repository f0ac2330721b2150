//! `/admin/import/pupils` and `/admin/import/absences`: a CSV exported from the MIS, pasted in; each row
//! judged alone, the good ones stored and the rest listed by line with why.

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};

use super::{admin_page, Admin};
use crate::logins::Session;
use crate::people::{ImportKind, ImportReport, ABSENCE_CSV_COLUMNS, PUPIL_CSV_COLUMNS};
use crate::state::AppState;
use crate::web::extract::CsrfForm;
use crate::web::forms::Fields;
use crate::web::{checked_for_school, for_school, read_path, words, WebError};

/// The largest CSV accepted in one paste; the request body limit is larger, and a school's whole roll fits.
const MAX_CSV_BYTES: usize = 1024 * 1024;

/// Which CSV an import page takes comes from the path: `/admin/import/pupils` or `/admin/import/absences`.
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

fn page(
    kind: ImportKind,
    session: &Session,
    csv: &str,
    outcome: Option<Result<&ImportReport, &str>>,
    summary: Markup,
    status: StatusCode,
) -> Response {
    let body = html! {
        @match outcome {
            Some(Err(problem)) => { p.problem #problem role="alert" { (words::sentence(problem)) } }
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
                                    tr { td { (problem.line) } td { (problem.pupil_id) } td { (words::sentence(&problem.reason)) } }
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
    let pupils = for_school(state, session, |store, school| store.pupil_records(school)).await?;
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

/// What the page shows below the form: the pupils imported so far (absences have no list here).
async fn summary(
    state: &AppState,
    session: &Session,
    kind: ImportKind,
) -> Result<Markup, WebError> {
    match kind {
        ImportKind::Pupils => pupils_summary(state, session).await,
        ImportKind::Absences => Ok(html! {}),
    }
}

/// The import a path's `{kind}` names: `pupils` or `absences`; anything else is a 404.
impl FromRequestParts<AppState> for ImportKind {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        let path = Path::<String>::from_request_parts(parts, state).await;
        match read_path(path)?.as_str() {
            "pupils" => Ok(ImportKind::Pupils),
            "absences" => Ok(ImportKind::Absences),
            other => Err(WebError::NotFound(format!(
                "there is no import of “{other}”: the admin pages import pupils and absences"
            ))),
        }
    }
}

/// `GET /admin/import/pupils` and `GET /admin/import/absences`.
pub async fn import_page(
    Admin(session): Admin,
    State(state): State<AppState>,
    kind: ImportKind,
) -> Result<Response, WebError> {
    let summary = summary(&state, &session, kind).await?;
    Ok(page(kind, &session, "", None, summary, StatusCode::OK))
}

/// `POST /admin/import/pupils` and `POST /admin/import/absences`: the good rows stored, the rest listed.
pub async fn import(
    Admin(session): Admin,
    State(state): State<AppState>,
    kind: ImportKind,
    CsrfForm(fields): CsrfForm<Fields>,
) -> Result<Response, WebError> {
    let csv = fields.raw("csv").to_owned();
    let outcome = if csv.len() > MAX_CSV_BYTES {
        Err(format!(
            "the CSV is larger than {} KB: import it in parts; nothing was imported",
            MAX_CSV_BYTES / 1024
        ))
    } else {
        let today = state.now().date_naive();
        let text = csv.clone();
        checked_for_school(&state, &session, move |store, school| {
            store.import_csv(kind, school, &text, today)
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
    let summary = summary(&state, &session, kind).await?;
    let (status, shown) = match &outcome {
        // The file was read and the good rows stored, so the request itself succeeded.
        Ok(report) => (StatusCode::OK, Some(Ok(report))),
        Err(problem) => (StatusCode::BAD_REQUEST, Some(Err(problem.as_str()))),
    };
    // A refused file is shown again to fix; a read one is not, so "Import" twice is not an accident.
    let keep = if outcome.is_err() { csv.as_str() } else { "" };
    Ok(page(kind, &session, keep, shown, summary, status))
}
