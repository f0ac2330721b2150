//! The office web dashboard: sign-in, the live board, alarms and the visit page with its runbook, rendered
//! on the server as HTML (maud escapes every value) with one small inline script for live updates and sound.
//!
//! - [`auth`]: sign-in and sign-out, the session cookie, CSRF checks, and the role check on every route.
//! - [`board`]: the live board, its fragment, the server-sent event stream and acknowledging alarms.
//! - [`visit`]: one visit's page: state, timeline, alarm log, runbook, and "duress heard".
//! - [`requests`]: requesting a visit, authorising it, and the attendance view.
//! - [`records`]: a visit's timeline, its CPOMS write-up (text, PDF), the CSV export and the monthly report.
//! - [`pages`]: the page layout, styles, the board's script, and words for states and times.
//!
//! Every route checks the session and the person's role on the server; hiding a button is never the check.
//! Every POST carries the session's CSRF token and the cookie is `SameSite=Strict`.

pub mod admin;
pub mod auth;
pub mod board;
pub mod pages;
pub mod records;
pub mod requests;
pub mod visit;

use axum::extract::rejection::{FormRejection, PathRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::api::AppState;
use crate::store::StoreError;

/// How the web pages are served.
#[derive(Debug, Clone)]
pub struct WebSettings {
    /// Mark cookies `Secure` (sent over HTTPS only). Off only for a plain-HTTP demo on this machine.
    pub secure_cookies: bool,
}

impl Default for WebSettings {
    fn default() -> Self {
        Self {
            secure_cookies: true,
        }
    }
}

/// The dashboard's routes, merged into [`crate::api::router`].
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(board::board_page))
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/board/fragment", get(board::fragment))
        .route("/board/events", get(board::events))
        .route("/alarms/{id}/acknowledge", post(board::acknowledge))
        .route("/visits/{id}", get(visit::visit_page))
        .route("/visits/{id}/duress-heard", post(visit::duress_heard))
        .merge(requests::routes())
        .merge(admin::routes())
}

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
            WebError::Conflict(_) => StatusCode::CONFLICT,
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
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(Into::into),
        Err(join) => {
            tracing::error!(error = %join, "dashboard store task failed");
            Err(WebError::Internal)
        }
    }
}

/// A form that could not be read (wrong content type, a field of the wrong shape) becomes a clear message.
pub(crate) fn read_form<T>(form: Result<axum::Form<T>, FormRejection>) -> Result<T, WebError> {
    form.map(|axum::Form(form)| form).map_err(|rejection| {
        WebError::BadInput(format!(
            "the form could not be read ({}); nothing was changed",
            rejection.body_text()
        ))
    })
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
