//! The audit log on SQLite: the rows behind [`crate::store::audit_trail::AuditTrail`], each entry numbered
//! and hashed by [`crate::audit::next_entry`] and the chain walked by [`crate::audit::walk`].

use chrono::{DateTime, Utc};
use doorstep_core::ids::{SchoolId, VisitId};
use rusqlite::{params, Connection, OptionalExtension};

use crate::audit::{
    entry_of, next_entry, stamp, walk, ChainCheck, Entry, NewEntry, StoredRow, COLUMNS,
};
use crate::store::{CachedSql, SqliteStore, StoreError};

/// Appends `entry` at `at` on `conn`, which must be inside a transaction that can write (so the entry
/// before cannot change between reading its hash and writing this one). The caller commits.
pub(crate) fn append(
    conn: &Connection,
    entry: &NewEntry,
    at: DateTime<Utc>,
) -> Result<Entry, StoreError> {
    let last: Option<(i64, String)> = conn
        .query_row_cached(
            "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    let next = next_entry(last, entry, at);
    conn.execute_cached(
        "INSERT INTO audit_log (seq, at, school_id, actor, action, visit_id, record, detail, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            next.seq,
            stamp(next.at),
            next.school,
            next.actor,
            next.action_name,
            next.visit,
            next.record,
            next.detail,
            next.prev_hash,
            next.hash
        ],
    )?;
    Ok(next)
}

/// An entry's columns, in [`COLUMNS`] order (rusqlite reads a row into a tuple of its columns).
fn read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredRow> {
    StoredRow::try_from(row)
}

/// Walks the whole chain in order.
pub(crate) fn verify(conn: &Connection) -> Result<ChainCheck, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM audit_log ORDER BY seq"))?;
    let rows = stmt
        .query_map([], read_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(walk(rows))
}

impl SqliteStore {
    /// Appends one entry to the audit log, in its own transaction, and returns it as stored.
    pub fn audit(&self, entry: &NewEntry, now: DateTime<Utc>) -> Result<Entry, StoreError> {
        self.in_transaction(|tx| append(tx, entry, now))
    }

    /// The school's newest `limit` entries, newest first.
    pub fn audit_entries(&self, school: &SchoolId, limit: usize) -> Result<Vec<Entry>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM audit_log WHERE school_id = ?1 ORDER BY seq DESC LIMIT ?2"
        ))?;
        let rows = stmt.query_map(
            params![school.as_str(), i64::try_from(limit).unwrap_or(i64::MAX)],
            read_row,
        )?;
        let mut out = Vec::new();
        for row in rows {
            out.push(entry_of(row?)?);
        }
        Ok(out)
    }

    /// Every entry about one visit, oldest first.
    pub fn audit_entries_for_visit(&self, visit: &VisitId) -> Result<Vec<Entry>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM audit_log WHERE visit_id = ?1 ORDER BY seq"
        ))?;
        let rows = stmt.query_map([visit.as_str()], read_row)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(entry_of(row?)?);
        }
        Ok(out)
    }

    /// Walks the whole log and says whether every entry follows the one before, naming the first that
    /// does not.
    pub fn verify_audit_log(&self) -> Result<ChainCheck, StoreError> {
        verify(&self.conn())
    }
}
