//! Signing in and out of the dashboard, and the session cookie. (Who may do what once signed in is checked
//! by the extractors in [`super::extract`].)
//!
//! The session cookie is `HttpOnly` (no script can read it), `SameSite=Strict` (no other site's page can
//! send it) and `Secure` unless the office runs as a plain-HTTP demo. The sign-in form, which has no session
//! yet, is protected by a double-submit token: a random value in a short-lived cookie and the same value in
//! the form.

use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use doorstep_core::domain::Role;
use serde::Deserialize;

use super::extract::{CsrfForm, SignedIn};
use super::forms::Fields;
use super::{blocking, pages, WebError};
use crate::audit::{Action, NewEntry};
use crate::logins::{new_secret, MAX_PASSWORD_CHARS};
use crate::state::AppState;
use crate::throttle::{PeerAddress, Refusal};

/// The cookie that carries the session token.
pub const SESSION_COOKIE: &str = "doorstep_session";
/// The cookie that carries the sign-in form's CSRF token (before there is a session).
pub const LOGIN_CSRF_COOKIE: &str = "doorstep_login_csrf";

/// The value of cookie `name` in the request, if it sent one.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// A `Set-Cookie` value. `max_age` 0 deletes the cookie.
pub(crate) fn set_cookie(
    name: &str,
    value: &str,
    max_age_seconds: i64,
    secure: bool,
) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_seconds}{secure}"
    );
    // The names are constants and the values hex, so the header is always valid; an empty one is safe.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Compares secrets in time that does not depend on where they first differ.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && !a.is_empty()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |diff, (x, y)| diff | (x ^ y))
            == 0
}

/// `GET /login`.
pub async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    // Someone already signed in who may use the board goes straight to it.
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        let (store, now) = (state.store.clone(), state.now());
        if let Some(session) = blocking(move || store.session(&token, now)).await? {
            if session.user.may_use_board() {
                return Ok(Redirect::to("/").into_response());
            }
        }
    }
    Ok(login_form(&state, StatusCode::OK, None, ""))
}

/// The sign-in form with a fresh double-submit token.
fn login_form(state: &AppState, status: StatusCode, problem: Option<&str>, name: &str) -> Response {
    let token = new_secret();
    let mut response = pages::login_page(&token, problem, name);
    *response.status_mut() = status;
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(LOGIN_CSRF_COOKIE, &token, 3600, state.web.secure_cookies),
    );
    response
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

/// `POST /login`.
pub async fn login(
    State(state): State<AppState>,
    PeerAddress(peer): PeerAddress,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Result<Response, WebError> {
    let Form(form) = form.map_err(|rejection| {
        WebError::BadInput(format!(
            "the form could not be read ({}); nothing was changed",
            rejection.body_text()
        ))
    })?;
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if !same_secret(&expected, &form.csrf) {
        return Err(WebError::Csrf);
    }
    let name = form.name.trim().to_owned();
    if name.is_empty() || form.password.is_empty() {
        return Ok(login_form(
            &state,
            StatusCode::BAD_REQUEST,
            Some("Enter your sign-in name and your password."),
            &name,
        ));
    }
    const MISMATCH: &str =
        "That sign-in name and password do not match. Ask an admin if you have forgotten your password.";
    // Refused before hashing: a huge password must not cost the office an argon2 run.
    if name.chars().count() > 64 || form.password.chars().count() > MAX_PASSWORD_CHARS {
        state.sign_ins.failed(&name, peer, state.now());
        return Ok(login_form(
            &state,
            StatusCode::UNAUTHORIZED,
            Some(MISMATCH),
            "",
        ));
    }
    // Throttled before any hashing: a locked name or address, or too many checks at once, costs nothing.
    let now = state.now();
    let turn = match state.sign_ins.admit(&name, peer, now).await {
        Ok(turn) => turn,
        Err(Refusal::Locked { until }) => {
            tracing::warn!(name = %name, ?peer, "office sign-in throttled");
            let (store, refused) = (state.store.clone(), name.clone());
            blocking(move || {
                store.audit_refused_sign_in(&refused, "too many failed sign-ins: locked", now)
            })
            .await?;
            let message = format!(
                "Too many failed sign-ins for this name or from this place. Try again in {} minutes, or \
                 ask an admin to reset your password.",
                // Before signing in nobody's school (nor its clock) is known: a wait reads the same anywhere.
                (until - now).num_seconds().max(1).saturating_add(59) / 60
            );
            return Ok(login_form(
                &state,
                StatusCode::TOO_MANY_REQUESTS,
                Some(&message),
                &name,
            ));
        }
        Err(Refusal::Busy) => {
            let mut response = login_form(
                &state,
                StatusCode::SERVICE_UNAVAILABLE,
                Some("The office is busy checking other sign-ins. Try again in a moment."),
                &name,
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            return Ok(response);
        }
    };
    let store = state.store.clone();
    let (checked_name, password) = (name.clone(), form.password);
    let checked = blocking(move || store.check_office_password(&checked_name, &password)).await;
    drop(turn);
    let Some(user) = checked? else {
        state.sign_ins.failed(&name, peer, now);
        let (store, refused) = (state.store.clone(), name.clone());
        blocking(move || store.audit_refused_sign_in(&refused, "wrong password", now)).await?;
        tracing::info!(name = %name, "office sign-in refused");
        return Ok(login_form(
            &state,
            StatusCode::UNAUTHORIZED,
            Some(MISMATCH),
            &name,
        ));
    };
    state.sign_ins.succeeded(&name);
    if !user.may_use_board() {
        let mut response = pages::message_page(
            "Not allowed",
            &format!(
                "{} cannot use the office board: it is for the office, the {}, the designated \
                 safeguarding lead and admins. Visiting staff use the Doorstep phone app.",
                user.staff.name,
                user.policy.authoriser.label()
            ),
        );
        *response.status_mut() = StatusCode::FORBIDDEN;
        return Ok(response);
    }
    // A fresh token at every sign-in, so a token planted before sign-in is worth nothing after it.
    let token = new_secret();
    let store = state.store.clone();
    let now = state.now();
    let staff = user.staff.id.clone();
    let session_token = token.clone();
    let entry = NewEntry::new(&user.school.id, &user.staff.id, Action::SignedIn);
    blocking(move || {
        store.start_session(&staff, &session_token, now)?;
        store.audit(&entry, now).map(|_| ())
    })
    .await?;
    tracing::info!(staff = %user.staff.id, "office sign-in");
    let max_age = crate::logins::SESSION_LENGTH.num_seconds();
    let secure = state.web.secure_cookies;
    // An admin of a school without its own code phrases sets them first: until then nothing can be
    // authorised (the primary preset ships none).
    let next = if user.staff.roles.contains(&Role::Admin) && user.policy.code_phrases.is_none() {
        "/admin/policy#code-phrases"
    } else {
        "/"
    };
    let mut response = Redirect::to(next).into_response();
    let cookies = response.headers_mut();
    cookies.append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, &token, max_age, secure),
    );
    cookies.append(
        header::SET_COOKIE,
        set_cookie(LOGIN_CSRF_COOKIE, "", 0, secure),
    );
    Ok(response)
}

/// `POST /logout`.
pub async fn logout(
    _: SignedIn,
    State(state): State<AppState>,
    headers: HeaderMap,
    _: CsrfForm<Fields>,
) -> Result<Response, WebError> {
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        let store = state.store.clone();
        blocking(move || store.end_session(&token)).await?;
    }
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", 0, state.web.secure_cookies),
    );
    Ok(response)
}
