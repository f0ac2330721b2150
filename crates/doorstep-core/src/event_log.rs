//! The phone's local event log and outbox in SQLite.
//!
//! Recording an event writes the event and its outbox entry in one transaction, in WAL mode with
//! `synchronous=FULL`, and returns only after the commit: when `record` returns, the event survives a crash
//! or a flat battery, so the screen may say it happened. An event leaves the outbox only when the office's
//! answer says it was stored (see `sync_plan`).
//!
//! On a phone the log is opened with a [`Sealer`] ([`EventLog::open_sealed`]): every event's body and the
//! holdings (visits, briefings, addresses) are sealed with the phone's data key before they reach the file
//! or its write-ahead log, each bound to the row it belongs to, and a row that is not sealed, or sealed for
//! another row, is refused rather than read. What stays readable is bookkeeping: ids, sequence numbers,
//! times and outbox states. Once the office confirms an event carrying words a person typed (a write-up, a
//! note), the phone keeps it without them ([`VisitEvent::without_free_text`]) and checkpoints its
//! write-ahead log, with `secure_delete` on, so the words leave the phone's files.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::event::{EnvelopeError, EventEnvelope};
use crate::ids::{DeviceId, DeviceSeq, EventId, VisitId};
use crate::lifecycle::VisitEvent;
use crate::migrate::{MigrateError, MigrationFile};
use crate::protocol::PhoneHoldings;
use crate::reconcile::{PhoneEvent, Reconciliation, Standing};
use crate::sync_plan::OutboxUpdate;

/// The log's schema, oldest first (see [`crate::migrate`]).
pub const MIGRATIONS: &[MigrationFile] = &[
    (
        "V1__event_log",
        include_str!("../migrations/V1__event_log.sql"),
    ),
    (
        "V2__office_refused",
        include_str!("../migrations/V2__office_refused.sql"),
    ),
    (
        "V3__confirmed_words_leave",
        include_str!("../migrations/V3__confirmed_words_leave.sql"),
    ),
    (
        "V4__reconcile",
        include_str!("../migrations/V4__reconcile.sql"),
    ),
];

/// Seals and opens the records the log writes, with a key the log never sees (on a phone, the data key
/// the platform's keystore holds).
pub trait Sealer: Send + Sync + std::fmt::Debug {
    /// `plaintext`, unreadable and unalterable without the key, bound to `context` (which row it is), as
    /// text for a TEXT column.
    fn seal(&self, plaintext: &[u8], context: &[u8]) -> Result<String, SealError>;
    /// The plaintext of something [`Sealer::seal`] made for the same `context`; an error for anything
    /// else (altered, another row's, another key's, or never sealed).
    fn open(&self, sealed: &str, context: &[u8]) -> Result<Vec<u8>, SealError>;
}

/// A record could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SealError(pub String);

/// Why the event log could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("the phone's database could not be opened or written: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the phone's database failed its integrity check: {0}")]
    Corrupt(String),
    #[error("this database belongs to device {found}, not {expected}")]
    WrongDevice { expected: DeviceId, found: DeviceId },
    #[error("the database was written by a newer Doorstep (schema {0})")]
    NewerSchema(i64),
    #[error("the phone's database could not be brought up to date: {0}")]
    Migrate(MigrateError),
    #[error("the event is not valid: {0}")]
    Invalid(#[from] EnvelopeError),
    #[error("a stored record could not be read: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("a stored record could not be unsealed (is this the phone's own key?): {0}")]
    Sealed(#[from] SealError),
}

/// Where one event stands with the office.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// On the phone, not yet confirmed. `attempts` > 0 means it has been sent at least once.
    Waiting { attempts: u32 },
    /// The office said it stored it.
    Confirmed { at: DateTime<Utc> },
    /// The office refused it, with its reason; it will not be sent again.
    Refused { reason: String },
}

/// The outbox at a glance, for the status line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OutboxStatus {
    pub waiting: u64,
    pub refused: u64,
    pub last_success_at: Option<DateTime<Utc>>,
    pub failing_since: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// The latest failure was the office answering with a refusal of the whole request, not silence.
    pub office_refused: bool,
    /// How far this phone's clock was ahead of the office's (negative: behind) at the last completed
    /// exchange, from the office's `server_time`; `None` before the first.
    pub phone_clock_ahead: Option<TimeDelta>,
    /// This phone was found to be restored from a backup: the office holds more from it than it remembered.
    pub restored: Option<RestoredNote>,
}

/// What a restore from a backup left behind, as reconciliation found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestoredNote {
    pub found_at: DateTime<Utc>,
    /// The highest number the office held from this phone; the phone numbers its events after it.
    pub office_seq: u64,
    /// How many of this phone's earlier events only the office has.
    pub only_at_office: u64,
}

/// The phone's event log. One per device; not shared between threads without a lock.
#[derive(Debug)]
pub struct EventLog {
    conn: Connection,
    device: DeviceId,
    /// Seals every body written and opens every body read; `None` keeps them as plain JSON (tests, and
    /// the log a wiped phone keeps in memory).
    sealer: Option<Arc<dyn Sealer>>,
}

impl EventLog {
    /// Opens (or creates) the log at `path` for `device`, checking the file's integrity and migrating it.
    /// Bodies are plain JSON: a phone opens its log with [`EventLog::open_sealed`].
    pub fn open(path: &Path, device: &DeviceId) -> Result<Self, LogError> {
        Self::setup(Connection::open(path)?, device, None)
    }

    /// As [`EventLog::open`], with every event body and the holdings sealed by `sealer`. A body that is
    /// not sealed by it is refused when read.
    pub fn open_sealed(
        path: &Path,
        device: &DeviceId,
        sealer: Arc<dyn Sealer>,
    ) -> Result<Self, LogError> {
        Self::setup(Connection::open(path)?, device, Some(sealer))
    }

    /// An empty log that lives in memory only: what a phone keeps once it has deleted its files.
    pub fn in_memory(device: &DeviceId) -> Result<Self, LogError> {
        Self::setup(Connection::open_in_memory()?, device, None)
    }

    fn setup(
        mut conn: Connection,
        device: &DeviceId,
        sealer: Option<Arc<dyn Sealer>>,
    ) -> Result<Self, LogError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        // Deleted and replaced content is overwritten, not left in free pages: a withdrawn briefing must not
        // linger in the file.
        conn.pragma_update(None, "secure_delete", true)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let integrity: String = conn.query_row("PRAGMA integrity_check", [], |row| row.get(0))?;
        if integrity != "ok" {
            return Err(LogError::Corrupt(integrity));
        }
        crate::migrate::run(&mut conn, MIGRATIONS).map_err(|error| match error {
            MigrateError::NewerSchema(version) => LogError::NewerSchema(version),
            other => LogError::Migrate(other),
        })?;
        let found: Option<String> = conn
            .query_row("SELECT device_id FROM device WHERE id = 1", [], |row| {
                row.get(0)
            })
            .optional()?;
        match found {
            None => {
                conn.execute(
                    "INSERT INTO device (id, device_id, last_seq) VALUES (1, ?1, 0)",
                    [device.as_str()],
                )?;
            }
            Some(found) if found != device.as_str() => {
                return Err(LogError::WrongDevice {
                    expected: device.clone(),
                    found: DeviceId::parse(&found).map_err(|e| LogError::Corrupt(e.to_string()))?,
                });
            }
            Some(_) => {}
        }
        Ok(Self {
            conn,
            device: device.clone(),
            sealer,
        })
    }

    pub fn device(&self) -> &DeviceId {
        &self.device
    }

    /// Records `event` for `visit` at the device's time `now`. Returns after the commit is on disk.
    pub fn record(
        &mut self,
        visit: &VisitId,
        event: VisitEvent,
        now: DateTime<Utc>,
    ) -> Result<EventEnvelope, LogError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let last: i64 = tx.query_row("SELECT last_seq FROM device WHERE id = 1", [], |row| {
            row.get(0)
        })?;
        let seq = DeviceSeq::new(last as u64 + 1).map_err(|e| LogError::Corrupt(e.to_string()))?;
        let envelope = EventEnvelope {
            id: EventId::new_v7(),
            device: self.device.clone(),
            seq,
            visit: visit.clone(),
            recorded_at: now,
            event,
        };
        insert_recorded(&tx, self.sealer.as_deref(), &envelope)?;
        tx.commit()?;
        Ok(envelope)
    }

    /// Every event still waiting for the office, oldest first.
    pub fn waiting(&self) -> Result<Vec<EventEnvelope>, LogError> {
        self.envelopes(
            "SELECT e.id || char(31) || e.body FROM events e JOIN outbox o ON o.event_id = e.id
             WHERE o.state = 'waiting' ORDER BY e.seq",
            [],
        )
    }

    /// Every event this phone recorded for `visit`, oldest first, with where each stands.
    pub fn events_for_visit(
        &self,
        visit: &VisitId,
    ) -> Result<Vec<(EventEnvelope, Delivery)>, LogError> {
        let mut stmt = self.conn.prepare(
            "SELECT e.id || char(31) || e.body, o.state, o.attempts, o.confirmed_at, o.refused_reason
             FROM events e JOIN outbox o ON o.event_id = e.id
             WHERE e.visit_id = ?1 AND o.state != 'superseded' ORDER BY e.seq",
        )?;
        let rows = stmt.query_map([visit.as_str()], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, u32>(2)?,
                row.get::<_, Option<String>>(3)?,
                row.get::<_, Option<String>>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (body, state, attempts, confirmed_at, reason) = row?;
            let envelope = open_event(self.sealer.as_deref(), &body)?;
            let delivery = match state.as_str() {
                "confirmed" => Delivery::Confirmed {
                    at: parse_time(confirmed_at.as_deref())?.unwrap_or(envelope.recorded_at),
                },
                "refused" => Delivery::Refused {
                    reason: reason.unwrap_or_default(),
                },
                _ => Delivery::Waiting { attempts },
            };
            out.push((envelope, delivery));
        }
        Ok(out)
    }

    /// Where one event stands, or `None` if this phone never recorded it. An event recorded again under a
    /// new number (after a restore from a backup) stands where its successor does.
    pub fn delivery(&self, id: EventId) -> Result<Option<Delivery>, LogError> {
        let mut id = id.to_string();
        let (state, attempts, confirmed_at, reason) = loop {
            let row = self
                .conn
                .query_row(
                    "SELECT state, attempts, confirmed_at, refused_reason, superseded_by
                     FROM outbox WHERE event_id = ?1",
                    [&id],
                    |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, u32>(1)?,
                            row.get::<_, Option<String>>(2)?,
                            row.get::<_, Option<String>>(3)?,
                            row.get::<_, Option<String>>(4)?,
                        ))
                    },
                )
                .optional()?;
            match row {
                None => return Ok(None),
                Some((_, _, _, _, Some(successor))) => id = successor,
                Some((state, attempts, confirmed_at, reason, None)) => {
                    break (state, attempts, confirmed_at, reason)
                }
            }
        };
        Ok(Some(match state.as_str() {
            "confirmed" => Delivery::Confirmed {
                at: parse_time(confirmed_at.as_deref())?.unwrap_or_default(),
            },
            "refused" => Delivery::Refused {
                reason: reason.unwrap_or_default(),
            },
            _ => Delivery::Waiting { attempts },
        }))
    }

    /// The highest sequence number this phone has used, or moved past after a restore from a backup.
    pub fn last_seq(&self) -> Result<u64, LogError> {
        let last: i64 =
            self.conn
                .query_row("SELECT last_seq FROM device WHERE id = 1", [], |row| {
                    row.get(0)
                })?;
        Ok(last.max(0) as u64)
    }

    /// This phone's events numbered `from..=through` and where each stands, for reconciliation (events
    /// recorded again under a new number are left out: their successors speak for them).
    pub fn events_in_range(
        &self,
        from: DeviceSeq,
        through: DeviceSeq,
    ) -> Result<Vec<PhoneEvent>, LogError> {
        let mut stmt = self.conn.prepare(
            "SELECT e.seq, e.id, o.state FROM events e JOIN outbox o ON o.event_id = e.id
             WHERE e.seq BETWEEN ?1 AND ?2 AND o.state != 'superseded' ORDER BY e.seq",
        )?;
        let rows = stmt.query_map(params![from.get() as i64, through.get() as i64], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, id, state) = row?;
            out.push(PhoneEvent {
                seq: DeviceSeq::new(seq as u64).map_err(|e| LogError::Corrupt(e.to_string()))?,
                id: id
                    .parse()
                    .map_err(|e: uuid::Error| LogError::Corrupt(e.to_string()))?,
                standing: match state.as_str() {
                    "confirmed" => Standing::Confirmed,
                    "refused" => Standing::Refused,
                    _ => Standing::Waiting,
                },
            });
        }
        Ok(out)
    }

    /// Applies a reconciliation in one transaction: moves the sequence past what the office holds (and
    /// notes the restore), puts events the office lost back in the outbox, and records again, under new
    /// numbers, events whose numbers the office holds for others. Returns the events recorded again.
    pub fn apply_reconciliation(
        &mut self,
        plan: &Reconciliation,
        now: DateTime<Utc>,
    ) -> Result<Vec<EventEnvelope>, LogError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some(restored) = plan.restored {
            tx.execute(
                "UPDATE device SET last_seq = ?1 WHERE id = 1 AND last_seq < ?1",
                [restored.office_seq as i64],
            )?;
            // Noted once for each new high number at the office, so a daily reconciliation that finds the
            // same old events again does not announce the restore again.
            tx.execute(
                "UPDATE sync_status SET restored_at = ?1, restored_office_seq = ?2, restored_only_at_office = ?3
                 WHERE id = 1 AND (restored_office_seq IS NULL OR restored_office_seq < ?2)",
                params![
                    now.to_rfc3339(),
                    restored.office_seq as i64,
                    restored.only_at_office as i64
                ],
            )?;
        }
        for id in &plan.send_again {
            tx.execute(
                "UPDATE outbox SET state = 'waiting', confirmed_at = NULL
                 WHERE event_id = ?1 AND state = 'confirmed'",
                [id.to_string()],
            )?;
        }
        let mut recorded_again = Vec::new();
        for id in &plan.record_again {
            let old: Option<String> = tx
                .query_row(
                    "SELECT e.id || char(31) || e.body FROM events e JOIN outbox o ON o.event_id = e.id
                     WHERE e.id = ?1 AND o.state IN ('waiting', 'refused')",
                    [id.to_string()],
                    |row| row.get(0),
                )
                .optional()?;
            let Some(old) = old else { continue };
            let old = open_event(self.sealer.as_deref(), &old)?;
            let last: i64 =
                tx.query_row("SELECT last_seq FROM device WHERE id = 1", [], |row| {
                    row.get(0)
                })?;
            let seq =
                DeviceSeq::new(last as u64 + 1).map_err(|e| LogError::Corrupt(e.to_string()))?;
            let envelope = EventEnvelope {
                id: EventId::new_v7(),
                seq,
                ..old
            };
            insert_recorded(&tx, self.sealer.as_deref(), &envelope)?;
            tx.execute(
                "UPDATE outbox SET state = 'superseded', superseded_by = ?2 WHERE event_id = ?1",
                params![id.to_string(), envelope.id.to_string()],
            )?;
            recorded_again.push(envelope);
        }
        tx.commit()?;
        Ok(recorded_again)
    }

    /// Notes a completed reconciliation.
    pub fn note_reconciled(&mut self, now: DateTime<Utc>) -> Result<(), LogError> {
        self.conn.execute(
            "UPDATE sync_status SET reconciled_at = ?1 WHERE id = 1",
            [now.to_rfc3339()],
        )?;
        Ok(())
    }

    /// When the phone last reconciled with the office.
    pub fn reconciled_at(&self) -> Result<Option<DateTime<Utc>>, LogError> {
        let at: Option<String> = self.conn.query_row(
            "SELECT reconciled_at FROM sync_status WHERE id = 1",
            [],
            |row| row.get(0),
        )?;
        parse_time(at.as_deref())
    }

    /// Notes that these events are being sent now (they show as "sent", not yet confirmed).
    pub fn note_sent(&mut self, ids: &[EventId], now: DateTime<Utc>) -> Result<(), LogError> {
        let tx = self.conn.transaction()?;
        for id in ids {
            tx.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_attempt_at = ?2
                 WHERE event_id = ?1 AND state = 'waiting'",
                params![id.to_string(), now.to_rfc3339()],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Applies the sync planner's verdicts in one transaction. Only waiting events change: a confirmation
    /// is never taken back.
    ///
    /// An event confirmed now that carries words a person typed is kept without them from here on
    /// ([`VisitEvent::without_free_text`]), in the same transaction, and the write-ahead log is then
    /// checkpointed so the words leave the files at once.
    pub fn apply(&mut self, updates: &[OutboxUpdate], now: DateTime<Utc>) -> Result<(), LogError> {
        let sealer = self.sealer.clone();
        let tx = self.conn.transaction()?;
        let mut redacted = 0;
        for update in updates {
            match update {
                OutboxUpdate::Confirm(id) => {
                    let confirmed = tx.execute(
                        "UPDATE outbox SET state = 'confirmed', confirmed_at = ?2
                         WHERE event_id = ?1 AND state = 'waiting'",
                        params![id.to_string(), now.to_rfc3339()],
                    )?;
                    if confirmed > 0 {
                        redacted += redact(&tx, sealer.as_deref(), *id)?;
                    }
                }
                OutboxUpdate::Refuse { id, reason } => {
                    tx.execute(
                        "UPDATE outbox SET state = 'refused', refused_reason = ?2
                         WHERE event_id = ?1 AND state = 'waiting'",
                        params![id.to_string(), reason],
                    )?;
                }
            };
        }
        tx.commit()?;
        if redacted > 0 {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// The events of `visit` this phone keeps without their words, because the office confirmed them.
    pub fn redacted_events(&self, visit: &VisitId) -> Result<HashSet<EventId>, LogError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id FROM events WHERE visit_id = ?1 AND redacted = 1")?;
        let ids = stmt.query_map([visit.as_str()], |row| row.get::<_, String>(0))?;
        let mut out = HashSet::new();
        for id in ids {
            let id = id?;
            out.insert(
                id.parse()
                    .map_err(|_| LogError::Corrupt(format!("bad event id {id:?}")))?,
            );
        }
        Ok(out)
    }

    /// Moves everything in the write-ahead log into the main file and empties the log, so content just
    /// replaced (with `secure_delete` on, overwritten) is in neither.
    fn checkpoint(&self) -> Result<(), LogError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// Records a completed exchange with the office: `now` is this phone's clock when the answer came,
    /// `server_time` the office's clock when it answered (so their difference is the phone's clock offset).
    pub fn note_sync_success(
        &mut self,
        now: DateTime<Utc>,
        server_time: DateTime<Utc>,
    ) -> Result<(), LogError> {
        self.conn.execute(
            "UPDATE sync_status SET last_success_at = ?1, failing_since = NULL, last_error = NULL,
             office_refused = 0, server_offset_ms = ?2 WHERE id = 1",
            params![now.to_rfc3339(), (server_time - now).num_milliseconds()],
        )?;
        Ok(())
    }

    /// Records a failed attempt to reach the office; keeps the time failures began.
    pub fn note_sync_failure(&mut self, now: DateTime<Utc>, error: &str) -> Result<(), LogError> {
        self.note_failure(now, error, false)
    }

    /// Records that the office answered but refused the whole request; keeps the time failures began.
    pub fn note_sync_refusal(&mut self, now: DateTime<Utc>, error: &str) -> Result<(), LogError> {
        self.note_failure(now, error, true)
    }

    fn note_failure(
        &mut self,
        now: DateTime<Utc>,
        error: &str,
        office_refused: bool,
    ) -> Result<(), LogError> {
        self.conn.execute(
            "UPDATE sync_status SET failing_since = COALESCE(failing_since, ?1), last_error = ?2,
                 office_refused = ?3
             WHERE id = 1",
            params![now.to_rfc3339(), error, office_refused],
        )?;
        Ok(())
    }

    pub fn status(&self) -> Result<OutboxStatus, LogError> {
        let (waiting, refused): (u64, u64) = self.conn.query_row(
            "SELECT COALESCE(SUM(state = 'waiting'), 0), COALESCE(SUM(state = 'refused'), 0) FROM outbox",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
        let (success, failing, error, office_refused, office_ahead_ms): (
            Option<String>,
            Option<String>,
            Option<String>,
            bool,
            Option<i64>,
        ) = self.conn.query_row(
            "SELECT last_success_at, failing_since, last_error, office_refused, server_offset_ms
             FROM sync_status WHERE id = 1",
            [],
            |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                ))
            },
        )?;
        let (restored_at, office_seq, only_at_office): (Option<String>, Option<i64>, Option<i64>) =
            self.conn.query_row(
                "SELECT restored_at, restored_office_seq, restored_only_at_office FROM sync_status
                 WHERE id = 1",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )?;
        let restored = match (
            parse_time(restored_at.as_deref())?,
            office_seq,
            only_at_office,
        ) {
            (Some(found_at), Some(office_seq), Some(only_at_office)) => Some(RestoredNote {
                found_at,
                office_seq: office_seq.max(0) as u64,
                only_at_office: only_at_office.max(0) as u64,
            }),
            _ => None,
        };
        Ok(OutboxStatus {
            waiting,
            refused,
            last_success_at: parse_time(success.as_deref())?,
            failing_since: parse_time(failing.as_deref())?,
            last_error: error,
            office_refused,
            phone_clock_ahead: office_ahead_ms.map(|ms| -TimeDelta::milliseconds(ms)),
            restored,
        })
    }

    /// How far this phone's clock was ahead of the office's at the last completed exchange (see
    /// [`OutboxStatus::phone_clock_ahead`]).
    pub fn phone_clock_ahead(&self) -> Result<Option<TimeDelta>, LogError> {
        let office_ahead_ms: Option<i64> = self.conn.query_row(
            "SELECT server_offset_ms FROM sync_status WHERE id = 1",
            [],
            |row| row.get(0),
        )?;
        Ok(office_ahead_ms.map(|ms| -TimeDelta::milliseconds(ms)))
    }

    /// Replaces what the phone holds (visits, briefings, policy) with the office's latest.
    pub fn save_holdings(
        &mut self,
        holdings: &PhoneHoldings,
        now: DateTime<Utc>,
    ) -> Result<(), LogError> {
        let json = serde_json::to_string(holdings)?;
        // Compared as plain JSON: a sealed body differs every time (a fresh nonce each seal).
        let before = self.holdings_json()?;
        let body = match self.sealer.as_deref() {
            Some(sealer) => sealer.seal(json.as_bytes(), HOLDINGS_CONTEXT)?,
            None => json.clone(),
        };
        self.conn.execute(
            "INSERT INTO holdings (id, body, received_at) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET body = excluded.body, received_at = excluded.received_at",
            params![body, now.to_rfc3339()],
        )?;
        if before.is_some_and(|before| before != json) {
            // What the office no longer sends (a withdrawn briefing, a visit taken off this phone) goes from
            // the write-ahead log and the main file now, not at some later checkpoint.
            self.checkpoint()?;
        }
        Ok(())
    }

    pub fn holdings(&self) -> Result<Option<PhoneHoldings>, LogError> {
        Ok(match self.holdings_json()? {
            Some(json) => Some(serde_json::from_str(&json)?),
            None => None,
        })
    }

    fn holdings_json(&self) -> Result<Option<String>, LogError> {
        let body: Option<String> = self
            .conn
            .query_row("SELECT body FROM holdings WHERE id = 1", [], |row| {
                row.get(0)
            })
            .optional()?;
        body.map(|body| open_text(self.sealer.as_deref(), &body, HOLDINGS_CONTEXT))
            .transpose()
    }

    fn envelopes<P: rusqlite::Params>(
        &self,
        sql: &str,
        params: P,
    ) -> Result<Vec<EventEnvelope>, LogError> {
        let mut stmt = self.conn.prepare(sql)?;
        let bodies = stmt.query_map(params, |row| row.get::<_, String>(0))?;
        let mut out = Vec::new();
        for body in bodies {
            out.push(open_event(self.sealer.as_deref(), &body?)?);
        }
        Ok(out)
    }
}

/// What the holdings' seal is bound to.
const HOLDINGS_CONTEXT: &[u8] = b"doorstep holdings";

/// What an event's seal is bound to: its id, so a body cannot be moved to another row.
fn event_context(id: &str) -> Vec<u8> {
    format!("doorstep event {id}").into_bytes()
}

/// An event's body as stored: plain JSON, or sealed for its own row.
fn seal_event(sealer: Option<&dyn Sealer>, envelope: &EventEnvelope) -> Result<String, LogError> {
    let json = serde_json::to_string(envelope)?;
    Ok(match sealer {
        Some(sealer) => sealer.seal(json.as_bytes(), &event_context(&envelope.id.to_string()))?,
        None => json,
    })
}

/// An event from a row read as `id || char(31) || body`, opened for that id; the envelope inside must
/// carry the same id.
fn open_event(sealer: Option<&dyn Sealer>, row: &str) -> Result<EventEnvelope, LogError> {
    let (id, body) = row
        .split_once('\u{1f}')
        .ok_or_else(|| LogError::Corrupt("an event row without its id".into()))?;
    let json = open_text(sealer, body, &event_context(id))?;
    let envelope: EventEnvelope = serde_json::from_str(&json)?;
    if envelope.id.to_string() != id {
        return Err(LogError::Corrupt(format!(
            "event {id} holds the body of event {}",
            envelope.id
        )));
    }
    Ok(envelope)
}

/// A stored body as text: opened by the sealer, or, in a log without one, plain JSON (a sealed body there
/// is refused rather than misread).
fn open_text(sealer: Option<&dyn Sealer>, body: &str, context: &[u8]) -> Result<String, LogError> {
    match sealer {
        Some(sealer) => {
            let plain = sealer.open(body, context)?;
            String::from_utf8(plain)
                .map_err(|_| LogError::Corrupt("a sealed record is not text".into()))
        }
        None if body.starts_with('{') => Ok(body.to_owned()),
        None => Err(LogError::Corrupt(
            "a record is sealed, but this log was opened without a key".into(),
        )),
    }
}

/// Keeps confirmed event `id` without the words typed into it, if it has any; returns how many rows changed.
fn redact(
    tx: &rusqlite::Transaction<'_>,
    sealer: Option<&dyn Sealer>,
    id: EventId,
) -> Result<usize, LogError> {
    let id_text = id.to_string();
    let row: Option<String> = tx
        .query_row(
            "SELECT id || char(31) || body FROM events WHERE id = ?1 AND redacted = 0",
            [&id_text],
            |row| row.get(0),
        )
        .optional()?;
    let Some(row) = row else {
        return Ok(0);
    };
    let mut envelope = open_event(sealer, &row)?;
    let Some(without) = envelope.event.without_free_text() else {
        return Ok(0);
    };
    envelope.event = without;
    let body = seal_event(sealer, &envelope)?;
    Ok(tx.execute(
        "UPDATE events SET body = ?2, redacted = 1 WHERE id = ?1",
        params![id_text, body],
    )?)
}

/// Writes a newly numbered event (sealed when the log has a sealer), its waiting outbox entry and the
/// device's last sequence number.
fn insert_recorded(
    tx: &rusqlite::Transaction<'_>,
    sealer: Option<&dyn Sealer>,
    envelope: &EventEnvelope,
) -> Result<(), LogError> {
    envelope.validate()?;
    let body = seal_event(sealer, envelope)?;
    tx.execute(
        "INSERT INTO events (id, seq, visit_id, recorded_at, urgent, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            envelope.id.to_string(),
            envelope.seq.get() as i64,
            envelope.visit.as_str(),
            envelope.recorded_at.to_rfc3339(),
            envelope.event.is_urgent(),
            body
        ],
    )?;
    tx.execute(
        "INSERT INTO outbox (event_id, state) VALUES (?1, 'waiting')",
        [envelope.id.to_string()],
    )?;
    tx.execute(
        "UPDATE device SET last_seq = ?1 WHERE id = 1",
        [envelope.seq.get() as i64],
    )?;
    Ok(())
}

fn parse_time(text: Option<&str>) -> Result<Option<DateTime<Utc>>, LogError> {
    text.map(|t| {
        DateTime::parse_from_rfc3339(t)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| LogError::Corrupt(format!("bad time {t:?}: {e}")))
    })
    .transpose()
}
