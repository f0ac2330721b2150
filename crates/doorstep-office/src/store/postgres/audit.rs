//! The audit log on PostgreSQL ([`AuditTrail`]). Entries are appended one at a time across every office
//! sharing the database (the transaction advisory lock [`LOCK_AUDIT`]), so each reads the true last entry
//! and the chain never forks; the table's triggers refuse any change or deletion.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use doorstep_core::ids::{SchoolId, VisitId};
use tokio_postgres::Row;

use super::{execute, query, query_opt, PgStore};
use crate::audit::{self, ChainCheck, Entry, NewEntry, StoredRow, COLUMNS};
use crate::store::audit_trail::AuditTrail;
use crate::store::StoreError;

/// The transaction advisory lock every append takes (the office's key for the audit log).
const LOCK_AUDIT: &str = "SELECT pg_advisory_xact_lock(7303)";

fn stored_row(row: &Row) -> Result<StoredRow, StoreError> {
    Ok((
        row.try_get("seq")?,
        row.try_get("at")?,
        row.try_get("school_id")?,
        row.try_get("actor")?,
        row.try_get("action")?,
        row.try_get("visit_id")?,
        row.try_get("record")?,
        row.try_get("detail")?,
        row.try_get("prev_hash")?,
        row.try_get("hash")?,
    ))
}

/// Appends `entry` at `at` inside the caller's transaction, which commits it (so a decision and its entry
/// are stored together or not at all).
pub(crate) async fn append_in(
    tx: &impl GenericClient,
    entry: &NewEntry,
    at: DateTime<Utc>,
) -> Result<Entry, StoreError> {
    execute(tx, LOCK_AUDIT, &[]).await?;
    let last = match query_opt(
        tx,
        "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
        &[],
    )
    .await?
    {
        Some(row) => Some((row.try_get("seq")?, row.try_get("hash")?)),
        None => None,
    };
    let next = audit::next_entry(last, entry, at);
    execute(
        tx,
        "INSERT INTO audit_log (seq, at, school_id, actor, action, visit_id, record, detail, prev_hash, hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            &next.seq,
            &audit::stamp(next.at),
            &next.school,
            &next.actor,
            &next.action_name,
            &next.visit,
            &next.record,
            &next.detail,
            &next.prev_hash,
            &next.hash,
        ],
    )
    .await?;
    Ok(next)
}

impl AuditTrail for PgStore {
    async fn audit(&self, entry: &NewEntry, now: DateTime<Utc>) -> Result<Entry, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let appended = append_in(&tx, entry, now).await?;
        tx.commit().await?;
        Ok(appended)
    }

    async fn audit_entries_for_visit(&self, visit: &VisitId) -> Result<Vec<Entry>, StoreError> {
        query(
            &self.client().await?,
            &format!("SELECT {COLUMNS} FROM audit_log WHERE visit_id = $1 ORDER BY seq"),
            &[&visit.as_str()],
        )
        .await?
        .iter()
        .map(|row| audit::entry_of(stored_row(row)?))
        .collect()
    }

    async fn audit_entries(
        &self,
        school: &SchoolId,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        query(
            &self.client().await?,
            &format!(
                "SELECT {COLUMNS} FROM audit_log WHERE school_id = $1 ORDER BY seq DESC LIMIT $2"
            ),
            &[&school.as_str(), &i64::try_from(limit).unwrap_or(i64::MAX)],
        )
        .await?
        .iter()
        .map(|row| audit::entry_of(stored_row(row)?))
        .collect()
    }

    async fn verify_audit_log(&self) -> Result<ChainCheck, StoreError> {
        let rows = query(
            &self.client().await?,
            &format!("SELECT {COLUMNS} FROM audit_log ORDER BY seq"),
            &[],
        )
        .await?;
        Ok(audit::walk(
            rows.iter().map(stored_row).collect::<Result<Vec<_>, _>>()?,
        ))
    }
}
