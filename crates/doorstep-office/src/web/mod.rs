//! The office web dashboard, rendered on the server as HTML (maud escapes every value), one module per page
//! or area:
//!
//! - [`board`]: the live board, its fragment, the server-sent event stream and acknowledging alarms.
//! - [`visit`]: one visit's page: state, timeline, alarm log, runbook, and "duress heard".
//! - [`requests`]: requesting a visit; [`authorise`]: the authoriser's decision; [`attendance`]: absent
//!   pupils due a visit.
//! - [`records`]: a visit's timeline, its CPOMS write-up (text, PDF), the CSV export and the monthly report,
//!   for those with a need to know, each opening entered in the audit log; [`audit`]: the audit log's page.
//! - [`admin`]: staff, the MIS imports and the policy, for admins.
//! - [`auth`]: signing in and out, the session cookie; [`extract`]: the role extractors and the
//!   CSRF-checked form every handler declares; [`forms`]: reading form fields, one rule for all.
//! - [`pages`]: the layout and security headers; [`words`]: times, states and alarms in words;
//!   [`assets`]: the board's script and the styles, served under a content hash.
//!
//! Every route checks the session and the person's role on the server, in the extractor its handler takes
//! first (the route table in [`crate::routes`] refuses a handler without one); hiding a button is never
//! the check. Every POST carries the session's CSRF token ([`extract::CsrfForm`]) and the cookie is
//! `SameSite=Strict`.

pub mod admin;
pub mod assets;
pub mod attendance;
pub mod audit;
pub mod auth;
pub mod authorise;
pub mod board;
pub mod briefing;
pub mod decisions;
pub mod extract;
pub mod forms;
pub mod pages;
pub mod records;
pub mod requests;
pub mod visit;
pub mod words;

use axum::extract::rejection::PathRejection;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use doorstep_core::domain::Visit;
use doorstep_core::ids::{SchoolId, VisitId};
use doorstep_core::lifecycle::VisitState;

use crate::logins::Session;
use crate::state::AppState;
pub use crate::state::WebSettings;
use crate::store::{OfficeStore, StoreError};

/// Why a dashboard request was refused. Each becomes a page that says what to do next; internals go only to
/// the log.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// A page was asked for without a session: go and sign in.
    #[error("sign in to use the office board")]
    SignedOut,
    /// A script asked for live data without a session: it shows "signed out" rather than following a redirect.
    #[error("signed out: sign in again to see the live board")]
    SignedOutLive,
    #[error("{0}")]
    Forbidden(String),
    #[error("this form's security check failed: it has expired or did not come from this office's pages; nothing was changed. Go back, reload the page and try again")]
    Csrf,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadInput(String),
    #[error("{0}")]
    Conflict(String),
    /// A decision the visit's state does not allow now (someone has set off, the visit is over).
    #[error("{0}")]
    NotNow(String),
    #[error("the office could not complete this request; nothing was changed")]
    Internal,
}

impl WebError {
    fn status(&self) -> StatusCode {
        match self {
            WebError::SignedOut => StatusCode::SEE_OTHER,
            WebError::SignedOutLive => StatusCode::UNAUTHORIZED,
            WebError::Forbidden(_) | WebError::Csrf => StatusCode::FORBIDDEN,
            WebError::NotFound(_) => StatusCode::NOT_FOUND,
            WebError::BadInput(_) => StatusCode::BAD_REQUEST,
            WebError::Conflict(_) | WebError::NotNow(_) => StatusCode::CONFLICT,
            WebError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self {
            WebError::SignedOut => Redirect::to("/login").into_response(),
            WebError::SignedOutLive => (
                StatusCode::UNAUTHORIZED,
                [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
                self.to_string(),
            )
                .into_response(),
            other => {
                let status = other.status();
                let title = match &other {
                    WebError::Forbidden(_) | WebError::Csrf => "Not allowed",
                    WebError::NotFound(_) => "Not found",
                    WebError::BadInput(_) => "Please check and try again",
                    WebError::Conflict(_) => "Already done",
                    WebError::NotNow(_) => "Not possible now",
                    _ => "Something went wrong",
                };
                let mut response = pages::message_page(title, &other.to_string());
                *response.status_mut() = status;
                response
            }
        }
    }
}

impl From<StoreError> for WebError {
    fn from(error: StoreError) -> Self {
        tracing::error!(%error, "store failure in the dashboard");
        WebError::Internal
    }
}

/// Runs blocking store work (SQLite, argon2) off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, WebError> {
    crate::store::off_async_threads(work, Into::into, || WebError::Internal).await
}

/// Runs store work whose [`StoreError::Invalid`] (a rule the person broke, such as "already authorised")
/// is theirs to read: `Ok(Err(message))`. Any other failure is internal.
pub(crate) async fn checked<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<Result<T, String>, WebError> {
    blocking(move || theirs_to_read(work())).await
}

/// A [`StoreError::Invalid`] as `Ok(Err(message))`, for the person to read: see [`checked`].
fn theirs_to_read<T>(result: Result<T, StoreError>) -> Result<Result<T, String>, StoreError> {
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(StoreError::Invalid(message)) => Ok(Err(message)),
        Err(other) => Err(other),
    }
}

/// Runs store `work` off the async threads for the signed-in person's school.
pub(crate) async fn for_school<T: Send + 'static>(
    state: &AppState,
    session: &Session,
    work: impl FnOnce(&OfficeStore, &SchoolId) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, WebError> {
    let store = state.store.clone();
    let school = session.user.school.id.clone();
    blocking(move || work(&store, &school)).await
}

/// [`checked`] store `work` for the signed-in person's school, as [`for_school`] runs it.
pub(crate) async fn checked_for_school<T: Send + 'static>(
    state: &AppState,
    session: &Session,
    work: impl FnOnce(&OfficeStore, &SchoolId) -> Result<T, StoreError> + Send + 'static,
) -> Result<Result<T, String>, WebError> {
    for_school(state, session, move |store, school| {
        theirs_to_read(work(store, school))
    })
    .await
}

/// Runs `load` off the async threads on visit `id` of the signed-in person's school. A visit that does
/// not exist and another school's visit are the same "there is no visit" (404), so nobody can learn which
/// ids exist elsewhere.
pub(crate) async fn school_visit<T: Send + 'static>(
    state: &AppState,
    session: &Session,
    id: VisitId,
    load: impl FnOnce(&OfficeStore, Visit, VisitState) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, WebError> {
    let store = state.store.clone();
    let school = session.user.school.id.clone();
    let missing = WebError::NotFound(format!("there is no visit “{id}”"));
    let found = blocking(move || match store.visit(&id)? {
        Some((visit, visit_state)) if visit.school == school => {
            load(&store, visit, visit_state).map(Some)
        }
        _ => Ok(None),
    })
    .await?;
    found.ok_or(missing)
}

/// The visit named by a path's `{id}`; one that is not a visit id is "there is no visit" (404).
pub(crate) fn visit_in_path(
    path: Result<axum::extract::Path<String>, PathRejection>,
) -> Result<VisitId, WebError> {
    id_in_path(path, "visit")
}

/// A path's `{id}` read as a `T`; text that is not one is "there is no {what} “…”" (404), as a missing
/// one would be.
pub(crate) fn id_in_path<T: std::str::FromStr>(
    path: Result<axum::extract::Path<String>, PathRejection>,
    what: &str,
) -> Result<T, WebError> {
    let text = read_path(path)?;
    text.parse()
        .map_err(|_| WebError::NotFound(format!("there is no {what} “{text}”")))
}

/// The `{id}` of a path, or a clear message when it cannot be read.
pub(crate) fn read_path(
    path: Result<axum::extract::Path<String>, PathRejection>,
) -> Result<String, WebError> {
    path.map(|axum::extract::Path(id)| id).map_err(|rejection| {
        WebError::BadInput(format!(
            "the address could not be read: {}",
            rejection.body_text()
        ))
    })
}
