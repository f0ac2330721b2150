//! What a dashboard request must carry, as axum extractors, so that a handler's signature says what it
//! requires: who may call it (one role extractor, always the first argument) and, for a form, a CSRF token
//! that matches the session ([`CsrfForm`], always the last).
//!
//! - [`SignedIn`]: anyone with a session (signing out).
//! - [`BoardUser`]: the office, the policy's authoriser, the DSL and admins (the board, visits).
//! - [`LiveBoardUser`]: the same, for the board's script: signed out is a 401 it can show, not a redirect.
//! - [`Requester`]: whoever may request a visit: board users and visiting staff.
//! - [`RecordsReader`]: board users with a need to know what visits found (the DSL, the authoriser,
//!   admins), for write-ups, timelines, exports and reports; not reception.
//! - [`AuditReader`]: admins and the DSL, for the audit log.
//! - [`Authoriser`]: only the policy's authoriser (headteacher or safeguarding lead).
//! - [`Admin`]: only admins.
//!
//! And [`VisitInPath`], the visit id a path names, read once at the edge.
//!
//! Signed out, a page answers with the way to the sign-in page; signed in with the wrong role, 403 and a
//! page saying who may. The route table ([`crate::routes`]) reads each handler's role from its first
//! argument's type ([`Guard::ACCESS`](crate::routes::Guard)), and a test walks that table.

use std::ops::Deref;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use doorstep_core::domain::Role;
use doorstep_core::ids::VisitId;
use serde::de::DeserializeOwned;

use super::auth::{cookie, same_secret, SESSION_COOKIE};
use super::forms::Fields;
use super::{blocking, visit_in_path, WebError};
use crate::logins::{OfficeUser, Session};
use crate::routes::{Access, CsrfChecked, Guard};
use crate::state::AppState;

/// The session this request's cookie names, if it is still valid. Kept in the request's extensions, so
/// [`CsrfForm`] can check the form against it without asking the store again.
async fn session_of(parts: &mut Parts, state: &AppState) -> Result<Option<Session>, WebError> {
    if let Some(session) = parts.extensions.get::<Session>() {
        return Ok(Some(session.clone()));
    }
    let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let store = state.store.clone();
    let now = state.now();
    let session = blocking(move || store.session(&token, now)).await?;
    if let Some(session) = &session {
        parts.extensions.insert(session.clone());
    }
    Ok(session)
}

/// The session, or `signed_out` when there is none; then the session only if `allowed` says so, else 403
/// with `refusal`'s words.
async fn guarded(
    parts: &mut Parts,
    state: &AppState,
    signed_out: WebError,
    allowed: impl FnOnce(&OfficeUser) -> bool,
    refusal: impl FnOnce(&OfficeUser) -> String,
) -> Result<Session, WebError> {
    let session = session_of(parts, state).await?.ok_or(signed_out)?;
    if allowed(&session.user) {
        Ok(session)
    } else {
        Err(WebError::Forbidden(refusal(&session.user)))
    }
}

fn not_for_the_board(user: &OfficeUser) -> String {
    format!(
        "{} is signed in, but the office board is for the office, the {}, the designated safeguarding \
         lead and admins. Visiting staff use the Doorstep phone app.",
        user.staff.name,
        user.policy.authoriser.label()
    )
}

/// Who may request a visit: the office, admins, the authoriser and visiting staff.
pub fn may_request_visits(user: &OfficeUser) -> bool {
    user.may_use_board() || user.staff.roles.contains(&Role::VisitingStaff)
}

/// Who may authorise: only the policy's authoriser (headteacher or safeguarding lead).
pub fn may_authorise(user: &OfficeUser) -> bool {
    user.staff.roles.contains(&user.policy.authoriser)
}

/// Defines a role extractor: a newtype over the [`Session`] that only `$check` lets through.
macro_rules! role {
    ($(#[$doc:meta])* $name:ident, $access:expr, $signed_out:expr, $allowed:expr, $refusal:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name(pub Session);

        impl Deref for $name {
            type Target = Session;
            fn deref(&self) -> &Session {
                &self.0
            }
        }

        impl Guard for $name {
            const ACCESS: Access = $access;
        }

        impl FromRequestParts<AppState> for $name {
            type Rejection = WebError;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &AppState,
            ) -> Result<Self, WebError> {
                guarded(parts, state, $signed_out, $allowed, $refusal)
                    .await
                    .map($name)
            }
        }
    };
}

role!(
    /// Anyone signed in, whatever their role.
    SignedIn,
    Access::SignedIn,
    WebError::SignedOut,
    |_| true,
    |_| String::new()
);

role!(
    /// Someone who may use the board: the office, the policy's authoriser (and lone-visit approver) and
    /// admins. Signed out: to the sign-in page.
    BoardUser,
    Access::Board,
    WebError::SignedOut,
    OfficeUser::may_use_board,
    not_for_the_board
);

role!(
    /// [`BoardUser`] for the board's script: signed out is a 401 the script shows as "signed out".
    LiveBoardUser,
    Access::BoardLive,
    WebError::SignedOutLive,
    OfficeUser::may_use_board,
    not_for_the_board
);

role!(
    /// Someone who may request a visit: board users and visiting staff.
    Requester,
    Access::Requester,
    WebError::SignedOut,
    may_request_visits,
    |user: &OfficeUser| format!(
        "{} is signed in, but requesting visits is for the office, admins, the {} and visiting staff.",
        user.staff.name,
        user.policy.authoriser.label()
    )
);

role!(
    /// Someone with a need to know what visits found (write-ups, concerns, incidents, notes, needs and
    /// family circumstances, exports): the DSL, the authoriser and admins. Reception is refused.
    RecordsReader,
    Access::Records,
    WebError::SignedOut,
    |user: &OfficeUser| user.may_use_board() && user.may_read_records(),
    |user: &OfficeUser| if user.may_use_board() {
        format!(
            "{} is signed in, but write-ups, safeguarding notes and exports are for the designated safeguarding lead, the {} and admins: the board shows the office who, where and when.",
            user.staff.name,
            user.policy.authoriser.label()
        )
    } else {
        not_for_the_board(user)
    }
);

role!(
    /// Someone who may read the audit log: admins and the DSL.
    AuditReader,
    Access::AuditLog,
    WebError::SignedOut,
    |user: &OfficeUser| user.may_use_board() && user.may_read_audit_log(),
    |user: &OfficeUser| format!(
        "{} is signed in, but the audit log is for admins and the designated safeguarding lead.",
        user.staff.name
    )
);

role!(
    /// The policy's authoriser, and nobody else (even signed in, even with a CSRF token).
    Authoriser,
    Access::Authoriser,
    WebError::SignedOut,
    |user: &OfficeUser| user.may_use_board() && may_authorise(user),
    |user: &OfficeUser| if user.may_use_board() {
        format!(
            "Only the {} authorises visits in this school's policy; {} cannot.",
            user.policy.authoriser.label(),
            user.staff.name
        )
    } else {
        not_for_the_board(user)
    }
);

role!(
    /// An admin; anyone else is refused.
    Admin,
    Access::Admin,
    WebError::SignedOut,
    |user: &OfficeUser| user.staff.roles.contains(&Role::Admin),
    |user: &OfficeUser| format!(
        "{} is signed in, but the admin pages (staff, imports, policy) are for admins only.",
        user.staff.name
    )
);

/// The visit named by the path's `{id}`. Text that is not a visit id is "there is no visit" (404); whether
/// the visit exists, in this school, is for the handler to ask ([`super::school_visit`]).
#[derive(Debug, Clone)]
pub struct VisitInPath(pub VisitId);

impl FromRequestParts<AppState> for VisitInPath {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        let path = Path::<String>::from_request_parts(parts, state).await;
        visit_in_path(path).map(VisitInPath)
    }
}

/// A posted form whose `csrf` field matches the session's token, read into `T` (a typed form, or
/// [`Fields`]). Checked in this order, each refusal changing nothing: a body that is not a form is 400, a
/// missing or wrong token is 403 (before any other field is looked at), a field of the wrong shape is 400.
///
/// Always the handler's last argument, after a role extractor, whose session it checks the token against.
#[derive(Debug)]
pub struct CsrfForm<T>(pub T);

impl<T> CsrfChecked for CsrfForm<T> {}

fn unreadable(why: impl std::fmt::Display) -> WebError {
    WebError::BadInput(format!(
        "the form could not be read ({why}); nothing was changed"
    ))
}

/// Whether the request says its body is a URL-encoded form.
fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| {
            mime.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

impl<T: DeserializeOwned> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = WebError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, WebError> {
        let Some(session) = request.extensions().get::<Session>().cloned() else {
            // Only a handler without a role extractor gets here; the route table refuses to build one.
            tracing::error!(path = %request.uri().path(), "a CSRF-checked form without a session");
            return Err(WebError::Internal);
        };
        if !is_form(request.headers()) {
            return Err(unreadable(
                "expected a form (Content-Type: application/x-www-form-urlencoded)",
            ));
        }
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| unreadable(rejection.body_text()))?;
        let fields: Fields = serde_urlencoded::from_bytes(&body).map_err(unreadable)?;
        if !same_secret(&session.csrf_token, fields.one("csrf")) {
            return Err(WebError::Csrf);
        }
        serde_urlencoded::from_bytes(&body)
            .map(CsrfForm)
            .map_err(unreadable)
    }
}
