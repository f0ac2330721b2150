//! When each phone was last seen ([`Seen`]): noted in memory on the sync path and written with the next
//! commit, so a phone's first sync in a minute (a duress after a spell without signal among them) does not
//! wait for a transaction and an fsync of its own before its events are stored.
//!
//! "Last seen" is shown on the admin's list of phones and decides nothing else. A time noted but not yet
//! written is shown all the same ([`Seen::noted`]); one lost when the office stops is the time of a sync
//! that is itself stored, at most [`WRITE_AFTER`] old.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use doorstep_core::ids::DeviceId;
use rusqlite::{params, Connection};

/// How long a noted time may wait for a commit to carry it before the store's own thread writes it.
pub const WRITE_AFTER: Duration = Duration::from_secs(10);

/// Times noted and not yet written, with when the oldest of them was noted.
#[derive(Debug, Default)]
pub struct Seen {
    noted: Mutex<Noted>,
}

#[derive(Debug, Default)]
struct Noted {
    times: HashMap<DeviceId, DateTime<Utc>>,
    since: Option<std::time::Instant>,
}

impl Seen {
    /// Notes that `device` was seen at `at`.
    pub fn note(&self, device: &DeviceId, at: DateTime<Utc>) {
        let mut noted = self.noted.lock().unwrap_or_else(PoisonError::into_inner);
        noted.since.get_or_insert_with(std::time::Instant::now);
        let time = noted.times.entry(device.clone()).or_insert(at);
        *time = (*time).max(at);
    }

    /// The time noted for `device` and not yet written, if any.
    pub fn noted(&self, device: &DeviceId) -> Option<DateTime<Utc>> {
        let noted = self.noted.lock().unwrap_or_else(PoisonError::into_inner);
        noted.times.get(device).copied()
    }

    /// Whether the oldest time noted has waited [`WRITE_AFTER`] for a commit.
    pub fn overdue(&self) -> bool {
        let noted = self.noted.lock().unwrap_or_else(PoisonError::into_inner);
        noted
            .since
            .is_some_and(|since| since.elapsed() >= WRITE_AFTER)
    }

    /// Writes every noted time in the caller's transaction. They are taken out first: if that transaction
    /// is not committed they are gone, and the phone's next sync notes its time again (the stored one is
    /// still old).
    pub fn write_in(&self, tx: &Connection) -> Result<(), rusqlite::Error> {
        let times = {
            let mut noted = self.noted.lock().unwrap_or_else(PoisonError::into_inner);
            noted.since = None;
            std::mem::take(&mut noted.times)
        };
        if times.is_empty() {
            return Ok(());
        }
        let mut update = tx.prepare_cached(
            "UPDATE devices SET last_seen_at = ?2
             WHERE id = ?1 AND (last_seen_at IS NULL OR last_seen_at < ?2)",
        )?;
        for (device, at) in times {
            update.execute(params![device.as_str(), at.to_rfc3339()])?;
        }
        Ok(())
    }
}
