//! The admin pages: staff (roles, phone, DBS check), pupils and absences imported from the MIS as CSV, the
//! school's policy (a preset, or edited and validated), and where alarms and safeguarding notices are sent
//! (notification targets), and its phones (enrolment codes, revoking), one module each. Every admin page
//! says at the top when the school has no notification targets.
//!
//! Only someone with the admin role may open or post any of them: every handler takes the [`Admin`]
//! extractor first. Every form is a [`CsrfForm`](super::extract::CsrfForm), checked before anything else
//! is read. A refused form is shown again as typed, with each problem beside its field, and nothing is
//! saved.

pub mod devices;
pub mod imports;
pub mod notifications;
pub mod policy;
pub mod staff;

use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};

pub use super::extract::Admin;
use super::{pages, WebError};
use crate::logins::Session;
use crate::store::StoreError;

/// A store refusal the person can act on becomes their message; anything else is an internal failure.
fn refused(error: StoreError) -> WebError {
    match error {
        StoreError::Invalid(message) => WebError::BadInput(message),
        other => other.into(),
    }
}

fn nav(current: &str) -> Markup {
    let links = [
        ("/admin/staff", "Staff"),
        ("/admin/import/pupils", "Import pupils"),
        ("/admin/import/absences", "Import absences"),
        ("/admin/policy", "Policy"),
        ("/admin/notifications", "Notifications"),
        ("/admin/devices", "Phones"),
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
    let body = html! {
        (super::board::no_targets_banner(session.user.notification_targets, true))
        main { (nav(current)) h1 { (title) } (body) }
    };
    let mut response = pages::page(title, Some(session), body, None);
    *response.status_mut() = status;
    response
}
