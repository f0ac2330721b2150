//! The visit's versions on SQLite: each office change to a visit stored with its event, its audit entry
//! and the visit as it then stood (see [`crate::versions`] for what a change is).

use chrono::{DateTime, Utc};
use doorstep_core::domain::Visit;
use doorstep_core::ids::{EventId, StaffId, VisitId};
use rusqlite::{params, Connection, OptionalExtension};

use crate::requests::Timing;
use crate::store::{
    check_dbs, parse_id, record_office_event_in, school_policy, stored_time, tuples, visit_school,
    visit_state, CachedSql, SqliteStore, StoreError,
};
use crate::versions::*;

/// The visit as stored (the JSON the phones receive), if there is one with this id.
pub(crate) fn stored_body(
    conn: &Connection,
    visit: &VisitId,
) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row_cached(
            "SELECT body FROM visits WHERE id = ?1",
            [visit.as_str()],
            |row| row.get(0),
        )
        .optional()?)
}

/// Adds the visit's next version: the visit as stored now, after `change`. The caller's transaction
/// commits it with the change.
pub(crate) fn add_version(
    conn: &Connection,
    visit: &VisitId,
    by_at: Option<(&StaffId, DateTime<Utc>)>,
    change: Change,
    reason: &str,
    event: Option<EventId>,
) -> Result<u32, StoreError> {
    let body = stored_body(conn, visit)?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
    let next: i64 = conn.query_row_cached(
        "SELECT COALESCE(MAX(version), 0) + 1 FROM visit_versions WHERE visit_id = ?1",
        [visit.as_str()],
        |row| row.get(0),
    )?;
    conn.execute_cached(
        "INSERT INTO visit_versions (visit_id, version, at, by, change, reason, body, event_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            visit.as_str(),
            next,
            by_at.map(|(_, at)| at.to_rfc3339()),
            by_at.map(|(by, _)| by.as_str().to_owned()),
            change.name(),
            reason,
            body,
            event.map(|id| id.to_string())
        ],
    )?;
    u32::try_from(next).map_err(|_| StoreError::Corrupt(format!("version {next} of {visit}")))
}

impl SqliteStore {
    /// Makes `change` to `visit` as `by` at `now`: checked by the lifecycle, recorded as the office's
    /// event with its audit entry, the visit the phones receive rewritten, and kept as a new version, all
    /// or nothing. A refusal is [`StoreError::Invalid`] with words for the person.
    pub fn change_visit(
        &self,
        visit: &VisitId,
        by: &StaffId,
        change: VisitChange,
        now: DateTime<Utc>,
    ) -> Result<VisitVersion, StoreError> {
        self.in_transaction(|tx| {
            let mut stored: Visit = match stored_body(tx, visit)? {
                Some(body) => serde_json::from_str(&body)?,
                None => return Err(StoreError::Invalid(format!("unknown visit {visit}"))),
            };
            let (command, kind, reason) = match change.plan(by) {
                Plan::Decided(command, kind, reason) => (command, kind, reason),
                Plan::Reschedule {
                    agreed_time,
                    timing,
                    responsible_contact,
                    override_reason,
                } => {
                    check_reschedule(agreed_time, now)?;
                    let school = visit_school(tx, visit)?;
                    check_dbs(tx, &school_policy(tx, &school)?, &stored)?;
                    set_times(
                        tx,
                        visit,
                        by,
                        now,
                        timing,
                        responsible_contact,
                        override_reason.as_deref(),
                    )?;
                    rescheduled(&mut stored, agreed_time, by, override_reason)
                }
                Plan::Briefing(briefing) => {
                    let state = visit_state(tx, visit)?
                        .ok_or_else(|| StoreError::Invalid(format!("unknown visit {visit}")))?;
                    briefed(&mut stored, &state, briefing, by)?
                }
            };
            let envelope = record_office_event_in(tx, visit, &command, now)?;
            tx.execute_cached(
                "UPDATE visits SET body = ?2, agreed_time = ?3 WHERE id = ?1",
                params![
                    visit.as_str(),
                    serde_json::to_string(&stored)?,
                    stored.agreed_time.to_rfc3339()
                ],
            )?;
            let version = add_version(
                tx,
                visit,
                Some((envelope.event.actor(), now)),
                kind,
                &reason,
                Some(envelope.id),
            )?;
            Ok(made_version(
                version,
                now,
                &envelope,
                (kind, reason),
                stored,
            ))
        })
    }

    /// Every version of a visit, oldest first.
    pub fn visit_versions(&self, visit: &VisitId) -> Result<Vec<VisitVersion>, StoreError> {
        type Columns = (
            i64,
            Option<String>,
            Option<String>,
            String,
            String,
            String,
            Option<String>,
        );
        let rows: Vec<Columns> = tuples(
            &self.conn(),
            "SELECT version, at, by, change, reason, body, event_id FROM visit_versions
             WHERE visit_id = ?1 ORDER BY version",
            [visit.as_str()],
        )?;
        let mut out = Vec::new();
        for (version, at, by, change, reason, body, event) in rows {
            out.push(VisitVersion {
                version: u32::try_from(version)
                    .map_err(|_| StoreError::Corrupt(format!("version {version} of {visit}")))?,
                at: at.as_deref().map(stored_time).transpose()?,
                by: by.as_deref().map(parse_id).transpose()?,
                change: Change::from_name(&change),
                reason,
                visit: serde_json::from_str(&body)?,
                event: event.as_deref().map(parse_id).transpose()?,
            });
        }
        Ok(out)
    }
}

/// Keeps the new time's place in the policy's day beside the visit: a responsible contact outside school
/// hours, the authoriser's reason for an evening visit. A visit with no request on record (the demo's)
/// gets one, naming the person who set its time.
fn set_times(
    conn: &Connection,
    visit: &VisitId,
    by: &StaffId,
    now: DateTime<Utc>,
    timing: Timing,
    contact: Option<(String, doorstep_core::domain::PhoneNumber)>,
    override_reason: Option<&str>,
) -> Result<(), StoreError> {
    let (name, phone) = contact.map_or((None, None), |(n, p)| (Some(n), Some(p)));
    conn.execute_cached(
        "INSERT INTO visit_requests (visit_id, requested_by, requested_at, out_of_hours, evening,
             contact_name, contact_phone, authoriser_override)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (visit_id) DO UPDATE SET out_of_hours = excluded.out_of_hours,
             evening = excluded.evening,
             contact_name = COALESCE(excluded.contact_name, visit_requests.contact_name),
             contact_phone = COALESCE(excluded.contact_phone, visit_requests.contact_phone),
             authoriser_override = COALESCE(excluded.authoriser_override, visit_requests.authoriser_override)",
        params![
            visit.as_str(),
            by.as_str(),
            now.to_rfc3339(),
            timing.out_of_hours,
            timing.evening,
            name,
            phone,
            override_reason
        ],
    )?;
    Ok(())
}
