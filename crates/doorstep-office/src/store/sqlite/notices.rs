//! Safeguarding notices on SQLite: each written with the event that carries it, and read back for a
//! visit's record and the notifier (see [`crate::notices`] for what a notice is).

use chrono::{DateTime, Utc};
use doorstep_core::event::EventEnvelope;
use doorstep_core::ids::{SchoolId, VisitId};
use doorstep_core::policy::Policy;
use rusqlite::{params, Connection, Row};

use crate::alarms::column_time;
use crate::notices::*;
use crate::store::{bad_column, ids, parsed_column, rows, CachedSql, SqliteStore, StoreError};

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
