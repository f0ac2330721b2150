//! `/audit`: the audit log for admins and the designated safeguarding lead: whether its chain holds (the
//! first broken link named if not), then the school's newest entries: when, who, what, which visit or
//! record.

use std::collections::HashMap;

use axum::extract::State;
use axum::response::Response;
use maud::html;

use super::extract::AuditReader;
use super::words;
use super::{for_school, pages, WebError};
use crate::state::AppState;

/// How many entries the page shows, newest first.
const SHOWN: usize = 500;

/// `GET /audit`.
pub async fn audit_page(
    AuditReader(session): AuditReader,
    State(state): State<AppState>,
) -> Result<Response, WebError> {
    let (check, entries, staff) = for_school(&state, &session, |store, school| {
        Ok((
            store.verify_audit_log()?,
            store.audit_entries(school, SHOWN)?,
            store.school_staff(school)?,
        ))
    })
    .await?;
    let names: HashMap<&str, &str> = staff
        .iter()
        .map(|m| (m.id.as_str(), m.name.as_str()))
        .collect();
    let zone = &session.user.school.time_zone;
    let body = html! {
        main {
            p { a href="/" { "← Back to the board" } }
            h1 { "Audit log" }
            @match &check.broken {
                None => p.codephrase #audit-chain role="status" {
                    "The log is intact: all " (check.entries) " entries follow one another, each carrying the \
                     fingerprint (SHA-256) of the one before."
                },
                Some(broken) => p.problem #audit-chain role="alert" {
                    "The log has been tampered with: " strong { (broken) } ". Entries cannot be changed or \
                     deleted through Doorstep, so someone changed the database file itself. Keep a copy of \
                     the file as it is and tell the headteacher and the school's data protection officer."
                },
            }
            p.small {
                "Every opening of a write-up, timeline, export or report, and every decision the office made, \
                 with who and when. The newest " (SHOWN) " entries of this school are shown, newest first."
            }
            @if entries.is_empty() {
                p { "Nothing recorded yet." }
            } @else {
                table #audit-entries {
                    thead { tr { th { "#" } th { "When" } th { "Who" } th { "What" } th { "Visit or record" } th { "Detail" } } }
                    tbody {
                        @for entry in &entries {
                            tr {
                                td { (entry.seq) }
                                td { (zone.format(entry.at, "%-d %b %Y %H:%M:%S")) }
                                td { (names.get(entry.actor.as_str()).copied().unwrap_or(entry.actor.as_str())) }
                                td { (entry.what()) }
                                td {
                                    @if let Some(visit) = &entry.visit {
                                        a href={ "/visits/" (visit) } { (visit) }
                                        @if !entry.record.is_empty() { " · " }
                                    }
                                    (entry.record)
                                }
                                td { (entry.detail) }
                            }
                        }
                    }
                }
            }
            p.small { (words::times_note(zone, state.now())) }
        }
    };
    Ok(pages::page("Audit log", Some(&session), body, None))
}
