//! Safeguarding notices: a write-up flagging a safeguarding concern, a write-up reporting an incident, and a
//! visit cancelled because the staff felt unsafe. Each is written in the same transaction as the event that
//! carries it ([`note_in`], called by `store::ingest`), for the role the policy's `safeguarding_concerns_to`
//! names at that moment; the notifier then sends it at once to that role's targets (`notify`), and the
//! board shows that it was raised and where it went, never its words.

use chrono::{DateTime, Utc};
use doorstep_core::domain::Role;
use doorstep_core::event::EventEnvelope;
use doorstep_core::ids::{SchoolId, StaffId, VisitId};
use doorstep_core::lifecycle::{CancelReason, VisitEvent};
use doorstep_core::policy::Policy;
use rusqlite::{params, Connection, Row};
use serde::Serialize;

use crate::alarms::column_time;
use crate::store::{bad_column, ids, parsed_column, rows, CachedSql, SqliteStore, StoreError};

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

fn bad(what: &str) -> rusqlite::Error {
    bad_column(what, "notices")
}

pub(crate) fn notice_from_row(row: &Row<'_>) -> rusqlite::Result<Notice> {
    let kind: String = row.get("kind")?;
    let role: String = row.get("role")?;
    Ok(Notice {
        id: row.get("id")?,
        visit: parsed_column(row, "visit_id", || bad("visit id"))?,
        kind: NoticeKind::parse(&kind).ok_or_else(|| bad("kind"))?,
        event: row.get("event_id")?,
        staff: parsed_column(row, "staff_id", || bad("staff id"))?,
        role: serde_json::from_value(serde_json::Value::String(role)).map_err(|_| bad("role"))?,
        raised_at: column_time(&row.get::<_, String>("raised_at")?)?,
    })
}

/// The stored name of a role ("dsl").
pub(crate) fn role_name(role: Role) -> String {
    match serde_json::to_value(role) {
        Ok(serde_json::Value::String(name)) => name,
        // A unit variant with `rename_all` always serialises to a string.
        _ => format!("{role:?}"),
    }
}

/// Writes the notices `envelope` carries, for the policy's `safeguarding_concerns_to`, in the transaction
/// that stores the event. Returns how many were new.
pub(crate) fn note_in(
    tx: &Connection,
    envelope: &EventEnvelope,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let mut noted = 0;
    for kind in NoticeKind::carried_by(&envelope.event) {
        noted += tx.execute_cached(
            "INSERT OR IGNORE INTO notices (visit_id, kind, event_id, staff_id, role, raised_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                envelope.visit.as_str(),
                kind.as_str(),
                envelope.id.to_string(),
                envelope.event.actor().as_str(),
                role_name(policy.safeguarding_concerns_to),
                now.to_rfc3339()
            ],
        )?;
    }
    Ok(noted)
}

impl SqliteStore {
    /// A visit's notices, oldest first.
    pub fn notices_for_visit(&self, visit: &VisitId) -> Result<Vec<Notice>, StoreError> {
        rows(
            &self.conn(),
            "SELECT * FROM notices WHERE visit_id = ?1 ORDER BY id",
            [visit.as_str()],
            notice_from_row,
        )
    }

    /// A school's notices raised at or after `since`, newest first.
    pub fn notices_since(
        &self,
        school: &SchoolId,
        since: DateTime<Utc>,
    ) -> Result<Vec<Notice>, StoreError> {
        rows(
            &self.conn(),
            "SELECT n.* FROM notices n JOIN visits v ON v.id = n.visit_id
             WHERE v.school_id = ?1 AND n.raised_at >= ?2 ORDER BY n.raised_at DESC, n.id DESC",
            params![school.as_str(), since.to_rfc3339()],
            notice_from_row,
        )
    }

    /// The visits of a school whose staff have all left but whose write-up has not reached the office, with
    /// when the last of them left.
    pub fn visits_left_without_write_up(
        &self,
        school: &SchoolId,
    ) -> Result<Vec<(VisitId, DateTime<Utc>)>, StoreError> {
        let ids: Vec<VisitId> = ids(
            &self.conn(),
            "SELECT id FROM visits WHERE school_id = ?1 AND phase = 'left' ORDER BY agreed_time",
            [school.as_str()],
        )?;
        let mut out = Vec::new();
        for id in ids {
            let Some((_, state)) = self.visit(&id)? else {
                continue;
            };
            if state.written_up_at.is_some() {
                continue;
            }
            if let Some(left) = state.everyone_left_at() {
                out.push((id, left));
            }
        }
        Ok(out)
    }
}
