//! The dashboard's page layout: the header with who is signed in, the styles and (on the board) the
//! script from [`super::assets`], and the security headers; plus the message and sign-in pages.
//!
//! Every page is sent with a Content-Security-Policy that allows only the style sheet and script this page
//! names with its per-response nonce, and connections back to this office, so even a value that slipped
//! past maud's escaping could not run as script. The words for times, states and alarms are in
//! [`super::words`].

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

use super::assets::{Asset, OFFICE_CSS};
use super::words::sentence;
use crate::logins::{new_secret, Session};

/// A full page with the security headers every dashboard page carries, and `script` (the board's) if any.
pub(crate) fn page(
    title: &str,
    session: Option<&Session>,
    body: Markup,
    script: Option<&Asset>,
) -> Response {
    let nonce = new_secret();
    let style = &*OFFICE_CSS;
    let markup = html! {
        (DOCTYPE)
        html lang="en-GB" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Doorstep office" }
                link rel="stylesheet" href=(style.url()) integrity=(style.integrity()) nonce=(nonce);
            }
            body {
                header.top {
                    a.brand href="/" { "Doorstep office" }
                    @if let Some(session) = session {
                        span.school { (session.user.school.name) }
                        span.who {
                            "Signed in as " strong #signed-in-name { (session.user.staff.name) }
                            " (" (roles(session)) ") "
                            form.inline method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(session.csrf_token);
                                button.link type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                (body)
                @if let Some(script) = script {
                    script src=(script.url()) integrity=(script.integrity()) nonce=(nonce) {}
                }
            }
        }
    };
    let csp = format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; connect-src 'self'; \
         img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    );
    let mut response = maud::PreEscaped(markup.into_string()).into_response();
    let headers = response.headers_mut();
    if let Ok(csp) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // Safety information must never be shown from a stale cache.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn roles(session: &Session) -> String {
    session
        .user
        .staff
        .roles
        .iter()
        .map(|role| role.label())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A page that says one thing (a refusal, a problem) with a way back.
pub(crate) fn message_page(title: &str, message: &str) -> Response {
    page(
        title,
        None,
        html! {
            main {
                div.message {
                    h1 { (title) }
                    p #message { (sentence(message)) }
                    p { a href="/" { "Back to the board" } " · " a href="/login" { "Sign in" } }
                }
            }
        },
        None,
    )
}

/// The sign-in form; `csrf` is also in the sign-in cookie.
pub(crate) fn login_page(csrf: &str, problem: Option<&str>, name: &str) -> Response {
    page(
        "Sign in",
        None,
        html! {
            main {
                h1 { "Sign in to the office board" }
                form.login method="post" action="/login" {
                    @if let Some(problem) = problem {
                        p.problem #problem role="alert" { (problem) }
                    }
                    input type="hidden" name="csrf" value=(csrf);
                    label for="name" { "Sign-in name" }
                    input #name type="text" name="name" value=(name) autocomplete="username" required autofocus;
                    label for="password" { "Password" }
                    input #password type="password" name="password" autocomplete="current-password" required;
                    button #sign-in type="submit" { "Sign in" }
                }
                p.small { "For the school office, the authoriser (headteacher or safeguarding lead), the designated \
                    safeguarding lead and admins. Visiting staff use the Doorstep phone app." }
            }
        },
        None,
    )
}
