//! Visits read for the board, the records and a restored phone, and the office's changes to a visit, on
//! PostgreSQL: the same answers as the SQLite store's (`store.rs`, `store/sqlite/versions.rs` and
//! `store/sqlite/reconcile.rs`), each change decided under the visit's advisory lock.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use doorstep_core::domain::Visit;
use doorstep_core::ids::{DeviceId, DeviceSeq, SchoolId, StaffId, VisitId};
use doorstep_core::lifecycle::VisitState;
use doorstep_core::reconcile::HeldSeq;
use tokio_postgres::Row;

use super::decisions::{add_version, record_office_event_in};
use super::{
    check_dbs, events_of, execute, lock_visit, optional_time, query, query_one, query_opt,
    school_policy, text, PgStore,
};
use crate::requests::Timing;
use crate::store::{parse_id, StoreError, StoredEvent};
use crate::versions::{
    briefed, check_reschedule, made_version, rescheduled, Change, Plan, VisitChange, VisitVersion,
};

/// A visit and its state from a row with `body` and `state`.
fn visit_from(row: &Row) -> Result<(Visit, VisitState), StoreError> {
    Ok((
        serde_json::from_str(&text(row, "body")?)?,
        serde_json::from_str(&text(row, "state")?)?,
    ))
}

impl PgStore {
    pub(super) async fn visit_pg(
        &self,
        visit: &VisitId,
    ) -> Result<Option<(Visit, VisitState)>, StoreError> {
        query_opt(
            &self.client().await?,
            "SELECT body, state FROM visits WHERE id = $1",
            &[&visit.as_str()],
        )
        .await?
        .as_ref()
        .map(visit_from)
        .transpose()
    }

    pub(super) async fn visit_ids_pg(&self) -> Result<Vec<VisitId>, StoreError> {
        query(
            &self.client().await?,
            "SELECT id FROM visits ORDER BY agreed_time COLLATE \"C\", id",
            &[],
        )
        .await?
        .iter()
        .map(|row| parse_id(&text(row, "id")?))
        .collect()
    }

    pub(super) async fn events_for_visit_pg(
        &self,
        visit: &VisitId,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        events_of(&self.client().await?, visit).await
    }

    pub(super) async fn visits_for_board_pg(
        &self,
        school: &SchoolId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(Visit, VisitState)>, StoreError> {
        let rows = query(
            &self.client().await?,
            "SELECT body, state FROM visits WHERE school_id = $1 AND (
                 ((agreed_time COLLATE \"C\") >= $2 AND (agreed_time COLLATE \"C\") < $3)
                 OR phase IN ('departed', 'outside', 'in_visit', 'checked_in', 'duress')
                 OR id IN (SELECT visit_id FROM alarms WHERE acknowledged_at IS NULL))",
            &[&school.as_str(), &from.to_rfc3339(), &to.to_rfc3339()],
        )
        .await?;
        let mut out = rows.iter().map(visit_from).collect::<Result<Vec<_>, _>>()?;
        // As on SQLite: the range compares stored RFC 3339 text (all in UTC); the order is the parsed times'.
        out.sort_by(|a, b| (a.0.agreed_time, &a.0.id).cmp(&(b.0.agreed_time, &b.0.id)));
        Ok(out)
    }

    pub(super) async fn school_of_visit_pg(
        &self,
        visit: &VisitId,
    ) -> Result<Option<SchoolId>, StoreError> {
        query_opt(
            &self.client().await?,
            "SELECT school_id FROM visits WHERE id = $1",
            &[&visit.as_str()],
        )
        .await?
        .map(|row| parse_id(&text(&row, "school_id")?))
        .transpose()
    }

    pub(super) async fn visits_left_without_write_up_pg(
        &self,
        school: &SchoolId,
    ) -> Result<Vec<(VisitId, DateTime<Utc>)>, StoreError> {
        let rows = query(
            &self.client().await?,
            "SELECT id, state FROM visits WHERE school_id = $1 AND phase = 'left'
                 ORDER BY agreed_time COLLATE \"C\"",
            &[&school.as_str()],
        )
        .await?;
        let mut out = Vec::new();
        for row in rows {
            let state: VisitState = serde_json::from_str(&text(&row, "state")?)?;
            if state.written_up_at.is_some() {
                continue;
            }
            if let Some(left) = state.everyone_left_at() {
                out.push((parse_id(&text(&row, "id")?)?, left));
            }
        }
        Ok(out)
    }

    pub(super) async fn held_in_range_pg(
        &self,
        device: &DeviceId,
        from: DeviceSeq,
        through: DeviceSeq,
    ) -> Result<Vec<HeldSeq>, StoreError> {
        let number = |seq: DeviceSeq| i64::try_from(seq.get()).unwrap_or(i64::MAX);
        query(
            &self.client().await?,
            "SELECT seq, id FROM events WHERE device_id = $1 AND seq BETWEEN $2 AND $3 ORDER BY seq",
            &[&device.as_str(), &number(from), &number(through)],
        )
        .await?
        .iter()
        .map(|row| {
            let seq: i64 = row.try_get("seq")?;
            Ok(HeldSeq {
                seq: u64::try_from(seq)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))
                    .and_then(|n| DeviceSeq::new(n).map_err(|e| StoreError::Corrupt(e.to_string())))?,
                id: parse_id(&text(row, "id")?)?,
            })
        })
        .collect()
    }

    pub(super) async fn is_empty_pg(&self) -> Result<bool, StoreError> {
        let row = query_one(
            &self.client().await?,
            "SELECT NOT EXISTS (SELECT 1 FROM schools) AS empty",
            &[],
        )
        .await?;
        Ok(row.try_get("empty")?)
    }

    pub(super) async fn change_visit_pg(
        &self,
        visit: &VisitId,
        by: &StaffId,
        change: VisitChange,
        now: DateTime<Utc>,
    ) -> Result<VisitVersion, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        lock_visit(&tx, visit).await?;
        let Some(row) = query_opt(
            &tx,
            "SELECT body, state, school_id FROM visits WHERE id = $1",
            &[&visit.as_str()],
        )
        .await?
        else {
            return Err(StoreError::Invalid(format!("unknown visit {visit}")));
        };
        let (mut stored, state) = visit_from(&row)?;
        let (command, kind, reason) = match change.plan(by) {
            Plan::Decided(command, kind, reason) => (command, kind, reason),
            Plan::Reschedule {
                agreed_time,
                timing,
                responsible_contact,
                override_reason,
            } => {
                check_reschedule(agreed_time, now)?;
                let school: SchoolId = parse_id(&text(&row, "school_id")?)?;
                check_dbs(&tx, &school_policy(&tx, &school).await?, &stored).await?;
                let times = Times {
                    timing,
                    contact: responsible_contact,
                    override_reason: override_reason.as_deref(),
                };
                set_times(&tx, visit, (by, now), times).await?;
                rescheduled(&mut stored, agreed_time, by, override_reason)
            }
            Plan::Briefing(briefing) => briefed(&mut stored, &state, briefing, by)?,
        };
        let envelope = record_office_event_in(&tx, visit, &command, now).await?;
        execute(
            &tx,
            "UPDATE visits SET body = $2, agreed_time = $3 WHERE id = $1",
            &[
                &visit.as_str(),
                &serde_json::to_string(&stored)?,
                &stored.agreed_time.to_rfc3339(),
            ],
        )
        .await?;
        let by_at = Some((envelope.event.actor(), now));
        let version = add_version(&tx, visit, by_at, (kind, &reason), Some(envelope.id)).await?;
        tx.commit().await?;
        Ok(made_version(
            version,
            now,
            &envelope,
            (kind, reason),
            stored,
        ))
    }

    pub(super) async fn visit_versions_pg(
        &self,
        visit: &VisitId,
    ) -> Result<Vec<VisitVersion>, StoreError> {
        query(
            &self.client().await?,
            "SELECT version, at, by, change, reason, body, event_id FROM visit_versions
                 WHERE visit_id = $1 ORDER BY version",
            &[&visit.as_str()],
        )
        .await?
        .iter()
        .map(|row| {
            let version: i32 = row.try_get("version")?;
            let by: Option<String> = row.try_get("by")?;
            let event: Option<String> = row.try_get("event_id")?;
            Ok(VisitVersion {
                version: u32::try_from(version)
                    .map_err(|_| StoreError::Corrupt(format!("version {version} of {visit}")))?,
                at: optional_time(row, "at")?,
                by: by.as_deref().map(parse_id).transpose()?,
                change: Change::from_name(&text(row, "change")?),
                reason: text(row, "reason")?,
                visit: serde_json::from_str(&text(row, "body")?)?,
                event: event.as_deref().map(parse_id).transpose()?,
            })
        })
        .collect()
    }
}

/// Where a rescheduled visit's new time falls in the policy's day, and what that needs.
struct Times<'a> {
    timing: Timing,
    contact: Option<(String, doorstep_core::domain::PhoneNumber)>,
    override_reason: Option<&'a str>,
}

/// Keeps the new time's place in the policy's day beside the visit, as the SQLite store does: a visit with
/// no request on record (the demo's) gets one, naming the person who set its time.
async fn set_times(
    tx: &impl GenericClient,
    visit: &VisitId,
    (by, now): (&StaffId, DateTime<Utc>),
    times: Times<'_>,
) -> Result<(), StoreError> {
    let (name, phone) = times.contact.map_or((None, None), |(n, p)| {
        (Some(n), Some(p.as_str().to_owned()))
    });
    execute(
        tx,
        "INSERT INTO visit_requests (visit_id, requested_by, requested_at, out_of_hours, evening,
             contact_name, contact_phone, authoriser_override)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (visit_id) DO UPDATE SET out_of_hours = excluded.out_of_hours,
             evening = excluded.evening,
             contact_name = COALESCE(excluded.contact_name, visit_requests.contact_name),
             contact_phone = COALESCE(excluded.contact_phone, visit_requests.contact_phone),
             authoriser_override = COALESCE(excluded.authoriser_override, visit_requests.authoriser_override)",
        &[
            &visit.as_str(),
            &by.as_str(),
            &now.to_rfc3339(),
            &times.timing.out_of_hours,
            &times.timing.evening,
            &name,
            &phone,
            &times.override_reason,
        ],
    )
    .await?;
    Ok(())
}
