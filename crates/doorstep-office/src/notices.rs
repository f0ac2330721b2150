//! Safeguarding notices: a write-up flagging a safeguarding concern, a write-up reporting an incident, and a
//! visit cancelled because the staff felt unsafe. Each is written in the same transaction as the event that
//! carries it ([`note_in`], called by `store::ingest`; the rows are in `store/sqlite/notices.rs` and
//! `store/postgres.rs`), for the role the policy's `safeguarding_concerns_to` names at that moment; the
//! notifier then sends it at once to that role's targets (`notify`), and the board shows that it was
//! raised and where it went, never its words.

use chrono::{DateTime, Utc};
use doorstep_core::domain::Role;
use doorstep_core::ids::{StaffId, VisitId};
use doorstep_core::lifecycle::{CancelReason, VisitEvent};
use serde::Serialize;

pub(crate) use crate::store::sqlite::notices::{note_in, notice_from_row};

/// What a notice is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// A write-up said yes to a safeguarding concern.
    SafeguardingConcern,
    /// A write-up reported an incident.
    Incident,
    /// A visit was cancelled because the staff felt unsafe (with a written reason).
    FeltUnsafe,
}

impl NoticeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::SafeguardingConcern => "safeguarding_concern",
            NoticeKind::Incident => "incident",
            NoticeKind::FeltUnsafe => "felt_unsafe",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        [
            NoticeKind::SafeguardingConcern,
            NoticeKind::Incident,
            NoticeKind::FeltUnsafe,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == text)
    }

    /// What the board and the records call it.
    pub fn label(self) -> &'static str {
        match self {
            NoticeKind::SafeguardingConcern => "Safeguarding concern",
            NoticeKind::Incident => "Incident reported",
            NoticeKind::FeltUnsafe => "Cancelled: felt unsafe",
        }
    }

    /// The notices an event carries.
    pub fn carried_by(event: &VisitEvent) -> Vec<NoticeKind> {
        match event {
            VisitEvent::WrittenUp { write_up, .. } => {
                let mut kinds = Vec::new();
                if write_up.safeguarding_concern {
                    kinds.push(NoticeKind::SafeguardingConcern);
                }
                if write_up
                    .incident
                    .as_deref()
                    .is_some_and(|text| !text.trim().is_empty())
                {
                    kinds.push(NoticeKind::Incident);
                }
                kinds
            }
            VisitEvent::Cancelled {
                reason: CancelReason::FeltUnsafe,
                ..
            } => vec![NoticeKind::FeltUnsafe],
            _ => Vec::new(),
        }
    }
}

/// One notice as the office holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Notice {
    pub id: i64,
    pub visit: VisitId,
    pub kind: NoticeKind,
    /// The event that carried it.
    pub event: String,
    /// Who sent it in.
    pub staff: StaffId,
    /// Who it is for: the policy's `safeguarding_concerns_to` when it arrived.
    pub role: Role,
    /// When the office received it.
    pub raised_at: DateTime<Utc>,
}

/// The stored name of a role ("dsl").
pub(crate) fn role_name(role: Role) -> String {
    match serde_json::to_value(role) {
        Ok(serde_json::Value::String(name)) => name,
        // A unit variant with `rename_all` always serialises to a string.
        _ => format!("{role:?}"),
    }
}
