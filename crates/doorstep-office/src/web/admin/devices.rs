//! `/admin/devices`: the school's phones (whose, enrolled when and by whom, last seen, until when their
//! credential works, revoked or suspected cloned), a one-time enrolment code for a member of staff shown
//! as a QR code and as text, and revoking a phone. The device log underneath says who did what.
//!
//! A code is shown once, on the page that issues it: the office keeps only its hash.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use doorstep_core::domain::{SchoolTimeZone, StaffMember};
use doorstep_core::ids::{DeviceId, StaffId};
use doorstep_core::protocol::{display_enrolment_code, EnrolmentLink};
use maud::{html, Markup, PreEscaped};

use super::{admin_page, Admin};
use crate::devices::{DeviceLogEntry, DeviceRow, IssuedCode, PendingCode};
use crate::logins::Session;
use crate::state::AppState;
use crate::web::extract::CsrfForm;
use crate::web::forms::Fields;
use crate::web::words::ago;
use crate::web::{checked_for_school, for_school, id_in_path, WebError};

/// How many device log entries the page shows.
const LOG_ENTRIES: u32 = 50;

/// Everything the page lists.
struct Listing {
    devices: Vec<DeviceRow>,
    pending: Vec<PendingCode>,
    staff: Vec<StaffMember>,
    log: Vec<DeviceLogEntry>,
}

async fn listing(state: &AppState, session: &Session) -> Result<Listing, WebError> {
    let now = state.now();
    for_school(state, session, move |store, school| {
        Ok(Listing {
            devices: store.school_devices(school)?,
            pending: store.pending_enrolment_codes(school, now)?,
            staff: store.school_staff(school)?,
            log: store.device_log(school, LOG_ENTRIES)?,
        })
    })
    .await
}

/// The office's address as the admin's browser reached it: what the QR code tells the phone. HTTPS unless
/// the office serves plain HTTP (a demo on this machine).
fn office_url(state: &AppState, headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|host| {
            !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c))
        })
        .unwrap_or("localhost");
    let scheme = if state.web.secure_cookies {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{host}")
}

/// The QR code of `text` as an inline SVG, without the XML declaration a standalone file would carry.
pub fn qr_svg(text: &str) -> Result<String, WebError> {
    let code = qrcode::QrCode::new(text.as_bytes()).map_err(|error| {
        tracing::error!(%error, "the enrolment link could not be made a QR code");
        WebError::Internal
    })?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .build();
    Ok(match svg.find("<svg") {
        Some(start) => svg[start..].to_owned(),
        None => svg,
    })
}

/// When something happened, on the school's clock: "today 13:45" or "3 Mar 2026 13:45".
fn when(zone: &SchoolTimeZone, at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    if zone.date(at) == zone.date(now) {
        format!("today {}", zone.hm(at))
    } else {
        zone.format(at, "%-d %b %Y %H:%M")
    }
}

fn device_status(zone: &SchoolTimeZone, device: &DeviceRow, now: DateTime<Utc>) -> Markup {
    html! {
        @if let Some((at, by)) = &device.revoked {
            strong { "Revoked" } " " (when(zone, *at, now)) " by " (by)
        } @else if device.credential_expires_at.is_none_or(|until| until <= now) {
            strong { "Credential expired" } ": enrol the phone again"
        } @else {
            "Active"
        }
        @if let Some((at, why)) = &device.clone_suspected {
            p.problem id=(format!("clone-{}", device.id)) {
                strong { "Two phones may be using this phone's credential" }
                " (seen " (when(zone, *at, now)) ": " (why) "). "
                @if device.revoked.is_none() {
                    "Revoke it, then enrol the real phone again with a new code."
                }
            }
        }
    }
}

/// What the page shows above its forms: nothing, the code just issued (with its link and the link's QR
/// code as SVG), or a notice.
enum Shown<'a> {
    Nothing,
    Issued {
        code: &'a IssuedCode,
        link: &'a str,
        svg: &'a str,
    },
    Notice(String),
}

/// The page, listed afresh, showing `shown`.
async fn show(
    state: &AppState,
    session: &Session,
    shown: Shown<'_>,
    now: DateTime<Utc>,
) -> Result<Response, WebError> {
    let listing = listing(state, session).await?;
    Ok(devices_page(session, &listing, shown, now))
}

fn devices_page(
    session: &Session,
    listing: &Listing,
    shown: Shown<'_>,
    now: DateTime<Utc>,
) -> Response {
    let zone = &session.user.school.time_zone;
    let body = html! {
        @if let Shown::Notice(notice) = &shown { p.codephrase #notice role="status" { (notice) } }
        @if let Shown::Issued { code, link, svg } = shown {
            section #enrolment-code aria-label="Enrolment code" {
                h2 { "Enrolment code for " (code.staff_name) }
                p { "On " (code.staff_name) "'s phone, open Doorstep and scan this code, or type the office's address and the code. It works once, until " strong #code-expires { (zone.hm(code.expires_at)) } ". It is shown only now: the office keeps no copy." }
                figure #qr aria-label="QR code of the enrolment link" { (PreEscaped(svg)) }
                p { "Office: " code #code-office { (link_office(link)) } }
                p { "Code: " strong #code-text { (display_enrolment_code(&code.code)) } }
                p.small { "Link: " code #code-link { (link) } }
            }
        }
        h2 { "Enrol a phone" }
        p { "A code enrols one phone for one person, once, within 15 minutes. A newer code for the same person replaces an unused older one. The phone's holder chooses their two PINs on the phone." }
        form #enrol-form method="post" action="/admin/devices/codes" {
            input type="hidden" name="csrf" value=(session.csrf_token);
            label for="staff" { "Whose phone" } " "
            select #staff name="staff" {
                @for member in &listing.staff {
                    option value=(member.id) { (member.name) " (" (member.id) ")" }
                }
            }
            " "
            button #issue-code type="submit" { "Make an enrolment code" }
        }
        @if !listing.pending.is_empty() {
            h3 { "Codes not yet used" }
            ul #pending-codes {
                @for code in &listing.pending {
                    li { (code.staff_name) ": issued " (when(zone, code.issued_at, now)) " by " (code.issued_by) ", works until " (zone.hm(code.expires_at)) }
                }
            }
        }
        h2 { "Phones" }
        @if listing.devices.is_empty() {
            p #no-devices { "No phones are enrolled yet." }
        } @else {
            table #devices {
                thead { tr { th { "Whose" } th { "Phone" } th { "Enrolled" } th { "Last seen" } th { "Credential until" } th { "Status" } th {} } }
                tbody {
                    @for device in &listing.devices {
                        tr id=(format!("device-{}", device.id)) {
                            td { (device.staff_name) }
                            td { code { (device.id) } }
                            td {
                                (when(zone, device.enrolled_at, now))
                                @if let Some(by) = &device.enrolled_by { br; span.small { "code from " (by) } }
                            }
                            td { @match device.last_seen_at { Some(at) => (ago(at, now)), None => "never" } }
                            td { @match device.credential_expires_at { Some(at) => (when(zone, at, now)), None => "—" } }
                            td { (device_status(zone, device, now)) }
                            td {
                                @if device.revoked.is_none() {
                                    form method="post" action=(format!("/admin/devices/{}/revoke", device.id)) {
                                        input type="hidden" name="csrf" value=(session.csrf_token);
                                        button id=(format!("revoke-{}", device.id)) type="submit" aria-label=(format!("Revoke {}'s phone {}", device.staff_name, device.id)) { "Revoke" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            p.small { "A revoked phone is refused at its next contact with the office and then deletes everything Doorstep keeps on it. Revoking the phone of someone out on a visit cuts them off from the office: ring them first." }
        }
        h2 { "Device log" }
        @if listing.log.is_empty() {
            p { "Nothing yet." }
        } @else {
            table #device-log {
                thead { tr { th { "When" } th { "Who" } th { "What" } th { "Whose phone" } th { "Detail" } } }
                tbody {
                    @for entry in &listing.log {
                        tr {
                            td { (when(zone, entry.at, now)) }
                            td { (entry.actor) }
                            td { (entry.action.label()) }
                            td { (entry.staff) @if let Some(device) = &entry.device { " (" (device) ")" } }
                            td { (entry.detail) }
                        }
                    }
                }
            }
        }
    };
    admin_page("Phones", "/admin/devices", session, StatusCode::OK, body)
}

fn link_office(link: &str) -> String {
    EnrolmentLink::parse(link)
        .map(|link| link.office_url)
        .unwrap_or_default()
}

/// `GET /admin/devices`.
pub async fn devices_list(
    Admin(session): Admin,
    State(state): State<AppState>,
) -> Result<Response, WebError> {
    show(&state, &session, Shown::Nothing, state.now()).await
}

/// `POST /admin/devices/codes`: a one-time code for the chosen member of staff, shown once.
pub async fn issue_code(
    Admin(session): Admin,
    State(state): State<AppState>,
    headers: HeaderMap,
    CsrfForm(fields): CsrfForm<Fields>,
) -> Result<Response, WebError> {
    let staff: StaffId = fields
        .one("staff")
        .parse()
        .map_err(|_| WebError::BadInput("choose whose phone it is".into()))?;
    let by = session.user.staff.id.to_string();
    let now = state.now();
    let issued = checked_for_school(&state, &session, move |store, school| {
        store.issue_enrolment_code(school, &staff, &by, now)
    })
    .await?
    .map_err(WebError::BadInput)?;
    tracing::info!(staff = %issued.staff, by = %session.user.staff.id, "enrolment code issued");
    let link = EnrolmentLink {
        office_url: office_url(&state, &headers),
        code: issued.code.clone(),
    }
    .to_uri();
    let svg = qr_svg(&link)?;
    let shown = Shown::Issued {
        code: &issued,
        link: &link,
        svg: &svg,
    };
    show(&state, &session, shown, now).await
}

/// `POST /admin/devices/{id}/revoke`.
pub async fn revoke(
    Admin(session): Admin,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    CsrfForm(_fields): CsrfForm<Fields>,
) -> Result<Response, WebError> {
    let device: DeviceId = id_in_path(path, "phone")?;
    let by = session.user.staff.id.clone();
    let now = state.now();
    let revoked = device.clone();
    match checked_for_school(&state, &session, move |store, school| {
        store.revoke_device(school, &revoked, &by, now)
    })
    .await?
    {
        Ok(true) => {}
        Ok(false) => return Err(WebError::NotFound(format!("there is no phone “{device}”"))),
        Err(message) => return Err(WebError::Conflict(message)),
    }
    tracing::info!(%device, by = %session.user.staff.id, "phone revoked");
    let notice = format!(
        "Phone {device} is revoked: the office refuses it from its next contact, and it then deletes what it holds."
    );
    show(&state, &session, Shown::Notice(notice), now).await
}
