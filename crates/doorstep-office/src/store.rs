//! The office's store: one embedded SQLite file (WAL, `synchronous=FULL`) holding the school, staff, visits,
//! enrolled phones (their enrolment, tokens and revocation are in [`crate::devices`]) and every visit
//! event, each event stored exactly once. Every area's SQL is here: visits and events in this file, the
//! other areas' rows in [`sqlite`], their traits beside them ([`backend`], [`people`], [`phones`], ...)
//! and the same traits on PostgreSQL in [`postgres`].
//!
//! A batch of events is checked and stored all or nothing: either every event is acceptable and the new
//! ones are stored (with each affected visit's state rebuilt through the core lifecycle), or nothing changes.
//! Batches that arrive together share one transaction and one fsync, each under its own savepoint
//! ([`group_commit`]). One connection writes; the sync path's reads go to a few read-only ones
//! ([`readers`]).

pub mod audit_trail;
pub mod backend;
mod checkpoint;
pub mod checks;
pub mod deliveries;
mod group_commit;
mod holdings;
mod office_store;
pub mod people;
pub mod phones;
pub mod postgres;
pub mod readers;
mod records;
pub mod requests;
pub(crate) mod seen;
pub mod sign_ins;
pub(crate) mod sqlite;

pub use office_store::OfficeStore;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, TimeDelta, Utc};
use doorstep_core::domain::{PhoneNumber, Pupil, School, SchoolTimeZone, StaffMember, Visit};
use doorstep_core::event::{trusted_time, EventEnvelope, TrustedEvent};
use doorstep_core::ids::{DeviceId, DeviceSeq, EventId, SchoolId, StaffId, VisitId};
use doorstep_core::lifecycle::{self, VisitState};
use doorstep_core::migrate::{MigrateError, MigrationFile};
use doorstep_core::policy::Policy;
use doorstep_core::protocol::{
    EventOutcome, EventResult, HoldScope, PhoneHoldings, MAX_CHANGED_EVENTS,
};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use sha2::{Digest, Sha256};

use crate::alarms::{raise_alarm_in, Alarm, NewAlarm};
use crate::{audit, versions};

/// The store's schema, oldest first (see [`doorstep_core::migrate`]). V4 and V5 were once `0005_records`
/// and `0004_office_users`, applied in that order because their branches landed so; they are numbered here
/// in the order every existing database applied them.
pub const MIGRATIONS: &[MigrationFile] = &[
    ("V1__office", include_str!("../migrations/V1__office.sql")),
    ("V2__alarms", include_str!("../migrations/V2__alarms.sql")),
    (
        "V3__notifications",
        include_str!("../migrations/V3__notifications.sql"),
    ),
    ("V4__records", include_str!("../migrations/V4__records.sql")),
    (
        "V5__office_users",
        include_str!("../migrations/V5__office_users.sql"),
    ),
    ("V6__people", include_str!("../migrations/V6__people.sql")),
    (
        "V7__requests",
        include_str!("../migrations/V7__requests.sql"),
    ),
    (
        "V8__trusted_time",
        include_str!("../migrations/V8__trusted_time.sql"),
    ),
    (
        "V9__honest_reach",
        include_str!("../migrations/V9__honest_reach.sql"),
    ),
    (
        "V10__contact_email",
        include_str!("../migrations/V10__contact_email.sql"),
    ),
    ("V11__audit", include_str!("../migrations/V11__audit.sql")),
    (
        "V12__visit_versions",
        include_str!("../migrations/V12__visit_versions.sql"),
    ),
    (
        "V13__enrolment",
        include_str!("../migrations/V13__enrolment.sql"),
    ),
    (
        "V14__device_log",
        include_str!("../migrations/V14__device_log.sql"),
    ),
    ("V15__sms", include_str!("../migrations/V15__sms.sql")),
    (
        "V16__school_time_zone",
        include_str!("../migrations/V16__school_time_zone.sql"),
    ),
];

/// The most events one phone may record for one visit, apart from its alerts: a whole visit, with every
/// check-in of a long day, is well under a hundred; more is a broken or hostile phone growing the visit
/// without limit (and every phone on it would be sent all of it).
pub const MAX_EVENTS_PER_DEVICE_AND_VISIT: i64 = 500;
/// Alerts are never refused for the quota above, up to this many more per phone and visit.
pub const MAX_ALERTS_PER_DEVICE_AND_VISIT: i64 = 50;

/// The device id under which the office records its own decisions (authorisations and the rest).
pub const OFFICE_DEVICE: &str = "office";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("a stored record could not be read: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("the database failed its integrity check: {0}")]
    Corrupt(String),
    #[error("the database was written by a newer Doorstep office (schema {0})")]
    NewerSchema(i64),
    #[error("the database could not be brought up to date: {0}")]
    Migrate(MigrateError),
    #[error("could not create the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("the write could not be committed: {0}")]
    Commit(String),
    #[error("could not start the store's checkpoint thread: {0}")]
    Checkpointer(std::io::Error),
    #[error("PostgreSQL error: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("no connection to PostgreSQL: {0}")]
    Pool(String),
}

/// An enrolled phone, as its token identifies it (see [`crate::devices`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub id: DeviceId,
    pub staff: StaffId,
    pub school: SchoolId,
    /// When the token this request carried was issued: an old one is renewed in the sync answer.
    pub credential_issued_at: DateTime<Utc>,
}

/// Why one event of a batch was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub id: EventId,
    pub reason: String,
    /// The id (or the device's sequence number) is already stored with different content.
    pub conflict: bool,
    /// The device's sequence number is already used by another of its events (two phones numbering
    /// from one copy of its data: see `devices`).
    pub seq_taken: bool,
}

/// Why a batch was not stored.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{} event(s) refused", .0.len())]
    Rejected(Vec<Rejection>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An event as the office holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub envelope: EventEnvelope,
    pub received_at: DateTime<Utc>,
    /// When the office counts it as having happened (`event::trusted_time`).
    pub trusted_at: DateTime<Utc>,
}

impl StoredEvent {
    /// The event with the office's time, as the lifecycle replays it.
    pub fn trusted(&self) -> TrustedEvent<'_> {
        TrustedEvent {
            envelope: &self.envelope,
            at: self.trusted_at,
        }
    }
}

/// Prepared statements kept per connection: all of the sync path's, with room for the pages'.
const STATEMENT_CACHE: usize = 128;

#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
    readers: readers::Readers,
    pending: group_commit::Pending,
    /// The last alarm step (`alarm_log` id) whose deliveries are planned: the notifier's planning looks
    /// only at alarms with a step after it (see `notify::store`). Zero when the store opens, so the first
    /// planning looks at every open alarm.
    pub(crate) alarm_steps_planned: std::sync::atomic::AtomicI64,
    path: PathBuf,
    /// Phones seen whose "last seen" is not written yet.
    pub(crate) seen: std::sync::Arc<seen::Seen>,
    // Declared last: dropped after the writer and readers, so its last checkpoint sees every commit.
    checkpointer: checkpoint::Checkpointer,
}

impl SqliteStore {
    /// Opens (or creates) `office.sqlite3` in `data_dir`, checks its integrity and migrates it.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let path = data_dir.join("office.sqlite3");
        keep_private(data_dir, &path).map_err(|source| StoreError::DataDir {
            path: data_dir.to_owned(),
            source,
        })?;
        let mut conn = Connection::open(&path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        // Checkpoints run on a thread of their own (`checkpoint`), not inside a sync's commit.
        conn.pragma_update(None, "wal_autocheckpoint", checkpoint::BACKSTOP_PAGES)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // Every statement on the sync path is prepared once and kept (`prepare_cached`); rusqlite keeps 16
        // by default, fewer than the sync path alone uses, so each would push out another.
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let integrity: String = conn
            .prepare_cached("PRAGMA integrity_check")?
            .query_row([], |row| row.get(0))?;
        if integrity != "ok" {
            return Err(StoreError::Corrupt(integrity));
        }
        doorstep_core::migrate::run(&mut conn, MIGRATIONS).map_err(|error| match error {
            MigrateError::NewerSchema(version) => StoreError::NewerSchema(version),
            other => StoreError::Migrate(other),
        })?;
        rebuild_if_rules_changed(&mut conn)?;
        let readers = readers::Readers::open(&path, readers::readers_for_this_machine())?;
        let seen = std::sync::Arc::new(seen::Seen::default());
        let checkpointer = checkpoint::Checkpointer::start(&path, seen.clone())?;
        conn.commit_hook(Some(checkpointer.commit_hook()));
        Ok(Self {
            conn: Mutex::new(conn),
            readers,
            pending: group_commit::Pending::default(),
            alarm_steps_planned: std::sync::atomic::AtomicI64::new(0),
            path,
            seen,
            checkpointer,
        })
    }

    /// How many times the whole write-ahead log has been copied back into the database file since the
    /// store opened (by the checkpoint thread, off the commit path).
    pub fn checkpoints_done(&self) -> u64 {
        self.checkpointer.done()
    }

    /// How many times the checkpoint thread has started the write-ahead log again in a quiet spell, so
    /// that the next sync's commit need not.
    pub fn log_restarts(&self) -> u64 {
        self.checkpointer.restarts()
    }

    /// The database file, for people who want to look inside.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A read-only connection: it sees every commit made before its read began, and never waits for the
    /// writer.
    pub(crate) fn reader(&self) -> readers::Reader<'_> {
        self.readers.get()
    }

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-written record (SQLite rolls the transaction
        // back), so a poisoned lock is safe to keep using.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `write` in one immediate transaction on the writer's connection and commits what it did when
    /// it succeeds; an error leaves the store as it was.
    pub(crate) fn in_transaction<T, E: From<StoreError>>(
        &self,
        write: impl FnOnce(&Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let done = write(&tx)?;
        tx.commit().map_err(StoreError::from)?;
        Ok(done)
    }

    pub fn add_school(&self, school: &School, policy: &Policy) -> Result<(), StoreError> {
        check_new_school(school, policy)?;
        self.conn().execute_cached(
            "INSERT INTO schools (id, name, office_phone, policy, time_zone) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                school.id.as_str(),
                school.name,
                school.office_phone,
                serde_json::to_string(policy)?,
                school.time_zone.name()
            ],
        )?;
        Ok(())
    }

    /// The school as it is stored (its name, office number and time zone).
    pub fn school(&self, school: &SchoolId) -> Result<School, StoreError> {
        Ok(school_and_policy(&self.conn(), school)?.0)
    }

    /// Moves a school to another time zone: every page, record and message reads its times on that clock
    /// from the next request on (the stored instants do not change).
    pub fn set_school_time_zone(
        &self,
        school: &SchoolId,
        zone: SchoolTimeZone,
    ) -> Result<(), StoreError> {
        set_time_zone_in(&self.conn(), school, zone)
    }

    pub fn add_staff(&self, school: &SchoolId, member: &StaffMember) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "INSERT INTO staff (id, school_id, name, body) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![
                member.id.as_str(),
                school.as_str(),
                member.name,
                serde_json::to_string(member)?
            ])?;
        Ok(())
    }

    pub fn add_pupil(&self, school: &SchoolId, pupil: &Pupil) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached("INSERT INTO pupils (id, school_id, name) VALUES (?1, ?2, ?3)")?
            .execute(params![pupil.id.as_str(), school.as_str(), pupil.name])?;
        Ok(())
    }

    /// Stores a requested visit as its first version. Everyone assigned must be able to visit homes (an
    /// appropriate DBS check) when the school's policy requires it.
    pub fn add_visit(&self, visit: &Visit) -> Result<(), StoreError> {
        self.add_visit_with(visit, None, |_| Ok(()))
    }

    /// [`SqliteStore::add_visit`], with who requested it and when (kept as its first version's author), and
    /// `more` written in the same transaction: if `more` fails, nothing of the visit is stored.
    pub(crate) fn add_visit_with(
        &self,
        visit: &Visit,
        requested: Option<(&StaffId, DateTime<Utc>)>,
        more: impl FnOnce(&Transaction<'_>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let policy = school_policy(&tx, &visit.school)?;
        check_dbs(&tx, &policy, visit)?;
        let state = VisitState::new(visit.staff_ids());
        tx.prepare_cached(
            "INSERT INTO visits (id, school_id, pupil_id, agreed_time, body, phase, state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            visit.id.as_str(),
            visit.school.as_str(),
            visit.pupil.id.as_str(),
            visit.agreed_time.to_rfc3339(),
            serde_json::to_string(visit)?,
            phase_name(&state),
            serde_json::to_string(&state)?
        ])?;
        for (position, assigned) in visit.staff.iter().enumerate() {
            tx.prepare_cached(
                "INSERT INTO visit_staff (visit_id, staff_id, position) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![
                visit.id.as_str(),
                assigned.id.as_str(),
                position as i64
            ])?;
        }
        versions::add_version(
            &tx,
            &visit.id,
            requested,
            versions::Change::Requested,
            "",
            None,
        )?;
        more(&tx)?;
        tx.commit()?;
        Ok(())
    }

    /// Records a decision made at the office as an event of the visit, after the lifecycle has checked it,
    /// with its entry in the audit log and (for a decision on the visit itself, not on its alarms) a new
    /// version of the visit, all in one transaction. Authorising is refused while the school has not set
    /// its code phrases.
    pub fn record_office_event(
        &self,
        visit: &VisitId,
        command: &lifecycle::Command,
        now: DateTime<Utc>,
    ) -> Result<EventEnvelope, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let envelope = record_office_event_in(&tx, visit, command, now)?;
        if let Some(change) = versions::Change::for_event(&envelope.event) {
            versions::add_version(
                &tx,
                visit,
                Some((envelope.event.actor(), now)),
                change,
                "",
                Some(envelope.id),
            )?;
        }
        tx.commit()?;
        Ok(envelope)
    }

    /// Checks a batch from `device` and stores its new events, all or nothing. `device_time` is the phone's
    /// clock when it sent the batch: with `now` it gives the phone's clock offset, which corrects the times
    /// the office trusts for the batch's events.
    ///
    /// A phone's duress alarm is raised in the same transaction (see [`SqliteStore::ingest_raising`]).
    pub fn ingest(
        &self,
        device: &Device,
        events: &[EventEnvelope],
        device_time: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<EventResult>, IngestError> {
        Ok(self
            .ingest_raising(device, events, device_time, now)?
            .results)
    }

    /// [`SqliteStore::ingest`], returning as well the duress alarms it raised: when the batch stores an
    /// alert (`VisitEvent::is_urgent`), the visit's alarm for each duress still active is raised in the
    /// ingest's own transaction, so the alert and its alarm reach the disk together with one fsync, and
    /// the caller can announce them ([`crate::escalation::Escalation::raised`]) as soon as this returns,
    /// before it builds its answer. The engine finds them already raised and raises none again. A batch
    /// with no events opens no transaction at all.
    ///
    /// Batches from syncs that arrive together are committed together ([`group_commit`]); this returns
    /// once the commit holding this batch is on disk.
    pub fn ingest_raising(
        &self,
        device: &Device,
        events: &[EventEnvelope],
        device_time: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Ingested, IngestError> {
        if events.is_empty() {
            return Ok(Ingested::default());
        }
        let ticket = self.pending.queue(device, events, device_time, now);
        let mut conn = self.conn();
        self.pending.store_with(&mut conn, ticket, &self.seen)
    }

    /// Stores events the ingest's checks have passed, each once, and rebuilds each visit they touch
    /// ([`backend::Visits::store_checked_events`]). All or nothing, in one transaction.
    pub fn store_checked_events(
        &self,
        events: &[EventEnvelope],
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut touched = BTreeSet::new();
        let mut new = 0;
        for envelope in events {
            if already_stored(&tx, envelope)? {
                continue;
            }
            insert_event(&tx, envelope, now, now)?;
            touched.insert(envelope.visit.clone());
            new += 1;
        }
        for visit in &touched {
            refresh_visit(&tx, visit)?;
        }
        tx.commit()?;
        Ok(new)
    }

    /// The highest sequence number stored from this device.
    pub fn acknowledged_through(&self, device: &DeviceId) -> Result<Option<DeviceSeq>, StoreError> {
        acknowledged_through(&self.reader(), device)
    }

    /// What this device's phone should hold: its school and policy, and its user's visits from a day ago on
    /// (and any older one not yet written up), with every event the office has for each. A written-up or
    /// cancelled visit comes without its briefing, and no visit with a write-up's words.
    pub fn holdings(
        &self,
        device: &Device,
        now: DateTime<Utc>,
    ) -> Result<PhoneHoldings, StoreError> {
        Ok(self.holdings_since(device, now, None)?.hold)
    }

    /// What this device's phone should hold, as [`SqliteStore::holdings`] says, or only what changed since
    /// `cursor` (a [`Holdings::cursor`] this office gave the phone): the events stored since for the visits
    /// it holds, at most [`MAX_CHANGED_EVENTS`], when nothing else changed. Anything else (the school, its
    /// policy, a visit's details or briefing, which visits it holds, a cursor this office cannot read or
    /// that no longer matches its events) and everything is sent again.
    ///
    /// The cursor is `basis.through.last`: a hash of everything but the events (`basis`), the highest
    /// event rowid the phone was sent, and the id of the event at that rowid, so that rowids renumbered
    /// (by a `VACUUM`; the office never deletes events and never vacuums) are noticed, not trusted.
    pub fn holdings_since(
        &self,
        device: &Device,
        now: DateTime<Utc>,
        cursor: Option<&str>,
    ) -> Result<Holdings, StoreError> {
        let reader = self.reader();
        // One snapshot for every read below, so the cursor and the events it covers agree.
        let conn = reader.unchecked_transaction()?;
        let (school, policy) = school_and_policy(&conn, &device.school)?;
        let member = staff_member(&conn, &device.staff)?.ok_or_else(|| {
            StoreError::Corrupt(format!("device's staff {} missing", device.staff))
        })?;
        let visits = held_visits(&conn, &device.staff, now)?;
        let acknowledged = acknowledged_through(&conn, &device.id)?;
        let through: i64 = conn
            .prepare_cached("SELECT COALESCE(MAX(rowid), 0) FROM events")?
            .query_row([], |row| row.get(0))?;
        let basis = holdings::basis(&school, &policy, &member, &visits)?;
        let event_at = |rowid: i64| -> Result<String, StoreError> {
            Ok(conn
                .prepare_cached("SELECT id FROM events WHERE rowid = ?1")?
                .query_row([rowid], |row| row.get::<_, String>(0))
                .optional()?
                .unwrap_or_default())
        };
        let since = match cursor.and_then(parse_cursor) {
            Some((b, since, last))
                if b == basis && since <= through && (since == 0 || event_at(since)? == last) =>
            {
                Some(since)
            }
            _ => None,
        };
        let after = since.unwrap_or(0);
        let mut held = Vec::new();
        let mut changed = Vec::new();
        for visit in visits {
            let events = visit_events_in(&conn, &visit.id, after, through)?;
            changed.extend(events.iter().map(|(rowid, _)| *rowid));
            held.push((visit, events));
        }
        // At most MAX_CHANGED_EVENTS changes in one answer: those stored first; the rest next time.
        changed.sort_unstable();
        let (sent_through, more) = match since {
            Some(_) if changed.len() > MAX_CHANGED_EVENTS => {
                (changed[MAX_CHANGED_EVENTS - 1], true)
            }
            _ => (through, false),
        };
        let mut visits = Vec::new();
        for (visit, events) in held {
            let events: Vec<StoredEvent> = events
                .into_iter()
                .filter(|(rowid, _)| *rowid <= sent_through)
                .map(|(_, event)| event)
                .collect();
            if since.is_some() && events.is_empty() {
                continue;
            }
            visits.push(holdings::held_visit(visit, events));
        }
        let last = if sent_through == 0 {
            String::new()
        } else {
            event_at(sent_through)?
        };
        Ok(Holdings {
            hold: PhoneHoldings {
                school,
                policy,
                staff: member.id,
                staff_name: member.name,
                visits,
            },
            scope: if since.is_some() {
                HoldScope::ChangesOnly
            } else {
                HoldScope::Full
            },
            cursor: format!("{basis}.{sent_through}.{last}"),
            more,
            acknowledged_through: acknowledged,
        })
    }

    /// Every event of a visit, in the order the office received them.
    pub fn events_for_visit(&self, visit: &VisitId) -> Result<Vec<StoredEvent>, StoreError> {
        visit_events(&self.conn(), visit)
    }

    /// A visit and its state as the office knows it.
    pub fn visit(&self, visit: &VisitId) -> Result<Option<(Visit, VisitState)>, StoreError> {
        let conn = self.conn();
        let row = conn
            .prepare_cached("SELECT body, state FROM visits WHERE id = ?1")?
            .query_row([visit.as_str()], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })
            .optional()?;
        row.map(|(body, state)| Ok((serde_json::from_str(&body)?, serde_json::from_str(&state)?)))
            .transpose()
    }

    /// Every visit's id, in agreed-time order.
    pub fn visit_ids(&self) -> Result<Vec<VisitId>, StoreError> {
        ids(
            &self.conn(),
            "SELECT id FROM visits ORDER BY agreed_time, id",
            [],
        )
    }

    /// The school's visits for the live board: those agreed in `[from, to)`, plus any under way or with an
    /// alarm still open whatever their date (a visit that ran past midnight must not drop off the board).
    pub fn visits_for_board(
        &self,
        school: &SchoolId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(Visit, VisitState)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT body, state, agreed_time FROM visits WHERE school_id = ?1 AND (
                 (agreed_time >= ?2 AND agreed_time < ?3)
                 OR phase IN ('departed', 'outside', 'in_visit', 'checked_in', 'duress')
                 OR id IN (SELECT visit_id FROM alarms WHERE acknowledged_at IS NULL))",
        )?;
        let rows = stmt.query_map(
            params![school.as_str(), from.to_rfc3339(), to.to_rfc3339()],
            |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)),
        )?;
        let mut out = Vec::new();
        for row in rows {
            let (body, state) = row?;
            let visit: Visit = serde_json::from_str(&body)?;
            out.push((visit, serde_json::from_str(&state)?));
        }
        // The range above compares stored RFC 3339 text, which orders correctly because every time is
        // written by `to_rfc3339` in UTC; the board's order is taken from the parsed times all the same.
        out.sort_by(|a, b| (a.0.agreed_time, &a.0.id).cmp(&(b.0.agreed_time, &b.0.id)));
        Ok(out)
    }

    /// The school a visit belongs to, if the visit exists.
    pub fn school_of_visit(&self, visit: &VisitId) -> Result<Option<SchoolId>, StoreError> {
        // A visit's school never changes, so a reader's snapshot answers as well as the writer would,
        // without waiting behind a commit (the board's stream asks this before it shows a new alarm).
        school_of_visit_in(&self.reader(), visit)
    }

    /// Whether the store holds a school yet (the demo seeds only an empty store).
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        let count: i64 = self
            .conn()
            .prepare_cached("SELECT COUNT(*) FROM schools")?
            .query_row([], |row| row.get(0))?;
        Ok(count == 0)
    }
}

enum Check {
    Refused(Rejection),
    Store(StoreError),
}

impl From<rusqlite::Error> for Check {
    fn from(e: rusqlite::Error) -> Self {
        Check::Store(e.into())
    }
}

impl From<StoreError> for Check {
    fn from(e: StoreError) -> Self {
        Check::Store(e)
    }
}

fn refuse(envelope: &EventEnvelope, reason: impl Into<String>) -> Check {
    Check::Refused(Rejection {
        id: envelope.id,
        reason: reason.into(),
        conflict: false,
        seq_taken: false,
    })
}

fn check_and_store(
    tx: &Connection,
    device: &Device,
    envelope: &EventEnvelope,
    assigned: &[StaffId],
    (trusted_at, now): (DateTime<Utc>, DateTime<Utc>),
) -> Result<EventOutcome, Check> {
    if let Some(reason) = checks::refusal(device, envelope, assigned) {
        return Err(refuse(envelope, reason));
    }
    // What is stored under the event's id, and whether its device's number is taken, in one statement.
    let (body, seq_taken): (Option<String>, bool) = tx.query_row_cached(
        "SELECT (SELECT body FROM events WHERE id = ?1),
                EXISTS (SELECT 1 FROM events WHERE device_id = ?2 AND seq = ?3)",
        params![
            envelope.id.to_string(),
            envelope.device.as_str(),
            envelope.seq.get() as i64
        ],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    let stored: Option<EventEnvelope> = body
        .map(|body| serde_json::from_str(&body))
        .transpose()
        .map_err(StoreError::from)?;
    let seq_taken = stored.is_none() && seq_taken;
    match checks::against_stored(envelope, stored.as_ref(), seq_taken) {
        Ok(Some(outcome)) => Ok(outcome),
        Ok(None) => {
            insert_event(tx, envelope, trusted_at, now)?;
            Ok(EventOutcome::Stored)
        }
        Err(rejection) => Err(Check::Refused(rejection)),
    }
}

/// Creates the data folder readable only by the office's own user, and the database file likewise before
/// SQLite opens it (SQLite gives the write-ahead log and shared-memory files the database file's mode). An
/// existing folder or file is tightened to the same.
fn keep_private(data_dir: &Path, database: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(data_dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700))?;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(database)?;
        for file in [
            database.to_owned(),
            database.with_extension("sqlite3-wal"),
            database.with_extension("sqlite3-shm"),
        ] {
            if file.exists() {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
            }
        }
    }
    Ok(())
}

/// How many events, and how many of them alerts, `device` has stored for `visit`.
fn events_held(
    tx: &Connection,
    device: &DeviceId,
    visit: &VisitId,
) -> Result<(i64, i64), StoreError> {
    Ok(tx.prepare_cached("SELECT COUNT(*), COALESCE(SUM(json_extract(body, '$.event.type') = 'duress_raised'), 0)
         FROM events WHERE device_id = ?1 AND visit_id = ?2")?.query_row(
        params![device.as_str(), visit.as_str()],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?)
}

/// Whether this very event is already stored (a resend is always acknowledged, over quota or not).
fn already_stored(tx: &Connection, envelope: &EventEnvelope) -> Result<bool, StoreError> {
    Ok(tx
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM events WHERE id = ?1)")?
        .query_row([envelope.id.to_string()], |row| row.get(0))?)
}

/// Stores one event's row, as received at `now` and trusted from `trusted_at`. Public for the load
/// crate's floor, which measures this very insert with nothing around it.
pub fn insert_event(
    tx: &Connection,
    envelope: &EventEnvelope,
    trusted_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    tx.prepare_cached("INSERT INTO events (id, device_id, seq, visit_id, staff_id, recorded_at, received_at, body, trusted_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)")?.execute(
        params![
            envelope.id.to_string(),
            envelope.device.as_str(),
            envelope.seq.get() as i64,
            envelope.visit.as_str(),
            envelope.event.actor().as_str(),
            envelope.recorded_at.to_rfc3339(),
            now.to_rfc3339(),
            serde_json::to_string(envelope)?,
            trusted_at.to_rfc3339()
        ],
    )?;
    Ok(())
}

/// What a new school must be: a valid policy, and an office number staff's phones can dial (a number read
/// back from an older record may not be one; it is never stored anew). Both backends check it.
pub(crate) fn check_new_school(school: &School, policy: &Policy) -> Result<(), StoreError> {
    policy
        .validate()
        .map_err(|e| StoreError::Invalid(e.to_string()))?;
    doorstep_core::contact::PhoneNumber::parse(school.office_phone.as_str())
        .map_err(|e| StoreError::Invalid(format!("the office phone number: {e}")))?;
    Ok(())
}

/// Everyone assigned must be able to visit homes (an appropriate DBS check) when the policy requires it.
pub(crate) fn check_dbs(
    conn: &Connection,
    policy: &Policy,
    visit: &Visit,
) -> Result<(), StoreError> {
    for assigned in &visit.staff {
        let member = staff_member(conn, &assigned.id)?
            .ok_or_else(|| StoreError::Invalid(format!("unknown staff {}", assigned.id)))?;
        if let Some(refusal) = backend::dbs_refusal(policy, &member) {
            return Err(StoreError::Invalid(refusal));
        }
    }
    Ok(())
}

/// The school a visit belongs to, if the visit exists.
fn school_of_visit_in(conn: &Connection, visit: &VisitId) -> Result<Option<SchoolId>, StoreError> {
    let school: Option<String> = conn
        .prepare_cached("SELECT school_id FROM visits WHERE id = ?1")?
        .query_row([visit.as_str()], |row| row.get(0))
        .optional()?;
    school.map(|s| parse_id(&s)).transpose()
}

/// The school a visit belongs to; an unknown visit is refused.
pub(crate) fn visit_school(conn: &Connection, visit: &VisitId) -> Result<SchoolId, StoreError> {
    school_of_visit_in(conn, visit)?
        .ok_or_else(|| StoreError::Invalid(format!("unknown visit {visit}")))
}

/// Checks an office decision against the visit's state and the school's policy, stores its event(s) and
/// their audit entries, and rebuilds the visit's state; the caller commits. Returns the last event.
pub(crate) fn record_office_event_in(
    tx: &Transaction<'_>,
    visit: &VisitId,
    command: &lifecycle::Command,
    now: DateTime<Utc>,
) -> Result<EventEnvelope, StoreError> {
    let state = visit_state(tx, visit)?
        .ok_or_else(|| StoreError::Invalid(format!("unknown visit {visit}")))?;
    let school = visit_school(tx, visit)?;
    let policy = school_policy(tx, &school)?;
    // Without the school's own code phrases there is no discreet way to ask for help on the visit.
    if matches!(command, lifecycle::Command::Authorise { .. }) {
        policy
            .code_phrases()
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
    }
    let events = lifecycle::decide(&state, command, &policy, now)
        .map_err(|e| StoreError::Invalid(e.to_string()))?;
    let next_seq: i64 = tx
        .prepare_cached("SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE device_id = ?1")?
        .query_row([OFFICE_DEVICE], |row| row.get(0))?;
    let mut last = None;
    for (offset, event) in events.into_iter().enumerate() {
        let envelope = EventEnvelope {
            id: EventId::new_v7(),
            device: DeviceId::parse(OFFICE_DEVICE).expect("the office device id is valid"),
            seq: DeviceSeq::new((next_seq + offset as i64) as u64)
                .map_err(|e| StoreError::Invalid(e.to_string()))?,
            visit: visit.clone(),
            recorded_at: now,
            event,
        };
        insert_event(tx, &envelope, now, now)?;
        if let Some(action) = audit::Action::for_office_event(&envelope.event) {
            let entry = audit::NewEntry::new(&school, envelope.event.actor(), action)
                .visit(visit)
                .detail(decision_detail(&envelope.event));
            audit::append(tx, &entry, now)?;
        }
        last = Some(envelope);
    }
    refresh_visit(tx, visit)?;
    last.ok_or_else(|| StoreError::Invalid("the command caused no event".into()))
}

/// The audit entry's detail for a decision: facts only. Reasons and notes are free text that may name a
/// family; they stay with the visit (its events and versions), not in a log nobody can ever change.
pub(crate) fn decision_detail(event: &lifecycle::VisitEvent) -> String {
    use lifecycle::VisitEvent;
    match event {
        VisitEvent::Authorised {
            lone_visit_approved: true,
            ..
        } => "approved as a lone visit".to_owned(),
        VisitEvent::Rescheduled { agreed_time, .. } => format!(
            "agreed time now {}",
            agreed_time.format("%Y-%m-%d %H:%M UTC")
        ),
        VisitEvent::BriefingUpdated { version, .. } => format!("briefing version {version}"),
        VisitEvent::AlertsClosed {
            outcome, alerts, ..
        } => format!("{} ({} alert(s))", outcome.label(), alerts.len()),
        _ => String::new(),
    }
}

/// Rebuilds a visit's state from all its events through the core lifecycle and stores it.
fn refresh_visit(tx: &Connection, visit: &VisitId) -> Result<VisitState, StoreError> {
    let staff = assigned_staff(tx, visit)?;
    let events = visit_events(tx, visit)?;
    let trusted: Vec<TrustedEvent<'_>> = events.iter().map(StoredEvent::trusted).collect();
    let state = lifecycle::replay(VisitState::new(staff), trusted.iter());
    tx.prepare_cached("UPDATE visits SET phase = ?2, state = ?3 WHERE id = ?1")?
        .execute(params![
            visit.as_str(),
            phase_name(&state),
            serde_json::to_string(&state)?
        ])?;
    Ok(state)
}

pub(crate) fn visit_state(
    conn: &Connection,
    visit: &VisitId,
) -> Result<Option<VisitState>, StoreError> {
    stored_json(
        conn,
        "SELECT state FROM visits WHERE id = ?1",
        visit.as_str(),
    )
}

/// The JSON column `sql` selects for `key`, read back; `None` when no row has that key.
fn stored_json<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    sql: &str,
    key: &str,
) -> Result<Option<T>, StoreError> {
    let text: Option<String> = conn
        .prepare_cached(sql)?
        .query_row([key], |row| row.get(0))
        .optional()?;
    Ok(match text {
        Some(text) => Some(serde_json::from_str(&text)?),
        None => None,
    })
}

/// What [`SqliteStore::ingest_raising`] did: each event's outcome, and the duress alarms it raised.
#[derive(Debug, Clone, Default)]
pub struct Ingested {
    pub results: Vec<EventResult>,
    pub alarms: Vec<Alarm>,
}

/// What a phone should hold, with how it stands: see [`SqliteStore::holdings_since`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holdings {
    pub hold: PhoneHoldings,
    pub scope: HoldScope,
    /// Sent back by the phone, it asks for only what changed since.
    pub cursor: String,
    /// More changes wait: the phone should sync again at once.
    pub more: bool,
    /// The highest sequence number stored from the phone, read in the same snapshot.
    pub acknowledged_through: Option<DeviceSeq>,
}

/// The highest sequence number stored from `device`.
fn acknowledged_through(
    conn: &Connection,
    device: &DeviceId,
) -> Result<Option<DeviceSeq>, StoreError> {
    let max: Option<i64> = conn
        .prepare_cached("SELECT MAX(seq) FROM events WHERE device_id = ?1")?
        .query_row([device.as_str()], |row| row.get(0))?;
    max.map(|seq| DeviceSeq::new(seq as u64).map_err(|e| StoreError::Corrupt(e.to_string())))
        .transpose()
}

fn parse_cursor(text: &str) -> Option<(&str, i64, &str)> {
    let mut parts = text.splitn(3, '.');
    let basis = parts.next()?;
    let through = parts.next()?.parse().ok()?;
    Some((basis, through, parts.next()?))
}

/// The visits of `staff` a phone holds at `now` (from a day ago to a week ahead, and any not yet over),
/// each as the phone is sent it: a finished visit's briefing (risks, family, needs, pets) leaves the
/// phones, which no longer need it, and a lost phone should not carry it.
fn held_visits(
    conn: &Connection,
    staff: &StaffId,
    now: DateTime<Utc>,
) -> Result<Vec<Visit>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT v.body, v.phase FROM visits v JOIN visit_staff vs ON vs.visit_id = v.id
         WHERE vs.staff_id = ?1 AND v.agreed_time <= ?3
           AND (v.agreed_time >= ?2 OR v.phase NOT IN ('written_up', 'cancelled', 'declined'))
         ORDER BY v.agreed_time",
    )?;
    let rows = stmt.query_map(
        params![
            staff.as_str(),
            (now - TimeDelta::days(1)).to_rfc3339(),
            (now + TimeDelta::days(7)).to_rfc3339()
        ],
        |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)),
    )?;
    let mut visits = Vec::new();
    for row in rows {
        let (body, phase) = row?;
        visits.push(holdings::as_held(serde_json::from_str(&body)?, &phase));
    }
    Ok(visits)
}

fn visit_events(conn: &Connection, visit: &VisitId) -> Result<Vec<StoredEvent>, StoreError> {
    Ok(visit_events_in(conn, visit, 0, i64::MAX)?
        .into_iter()
        .map(|(_, event)| event)
        .collect())
}

/// A visit's events stored after rowid `after` up to `through`, with their rowids, in the order the
/// office received them.
fn visit_events_in(
    conn: &Connection,
    visit: &VisitId,
    after: i64,
    through: i64,
) -> Result<Vec<(i64, StoredEvent)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT rowid, body, received_at, trusted_at FROM events
         WHERE visit_id = ?1 AND rowid > ?2 AND rowid <= ?3 ORDER BY rowid",
    )?;
    let rows = stmt.query_map(params![visit.as_str(), after, through], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, Option<String>>(3)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (rowid, body, received_at, trusted_at) = row?;
        let received_at = stored_time(&received_at)?;
        out.push((
            rowid,
            StoredEvent {
                envelope: serde_json::from_str(&body)?,
                received_at,
                trusted_at: match trusted_at {
                    Some(text) => stored_time(&text)?,
                    None => received_at,
                },
            },
        ));
    }
    Ok(out)
}

fn assigned_staff(conn: &Connection, visit: &VisitId) -> Result<Vec<StaffId>, StoreError> {
    ids(
        conn,
        "SELECT staff_id FROM visit_staff WHERE visit_id = ?1 ORDER BY position",
        [visit.as_str()],
    )
}

pub(crate) fn staff_member(
    conn: &Connection,
    staff: &StaffId,
) -> Result<Option<StaffMember>, StoreError> {
    stored_json(conn, "SELECT body FROM staff WHERE id = ?1", staff.as_str())
}

/// Puts `school` on the clock of `zone`; an unknown school is refused.
pub(crate) fn set_time_zone_in(
    conn: &Connection,
    school: &SchoolId,
    zone: SchoolTimeZone,
) -> Result<(), StoreError> {
    let changed = conn.execute_cached(
        "UPDATE schools SET time_zone = ?2 WHERE id = ?1",
        params![school.as_str(), zone.name()],
    )?;
    if changed == 0 {
        return Err(StoreError::Invalid(format!("unknown school {school}")));
    }
    Ok(())
}

pub(crate) fn school_policy(conn: &Connection, school: &SchoolId) -> Result<Policy, StoreError> {
    Ok(school_and_policy(conn, school)?.1)
}

pub(crate) fn school_and_policy(
    conn: &Connection,
    school: &SchoolId,
) -> Result<(School, Policy), StoreError> {
    let (name, phone, policy, zone): (String, PhoneNumber, String, String) = conn
        .prepare_cached("SELECT name, office_phone, policy, time_zone FROM schools WHERE id = ?1")?
        .query_row([school.as_str()], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .optional()?
        .ok_or_else(|| StoreError::Invalid(format!("unknown school {school}")))?;
    // Stored only from a parsed `SchoolTimeZone`; a name this build's database lacks (one removed from
    // the IANA list) is a clear error, never a silent fall back to another clock.
    let time_zone = SchoolTimeZone::parse(&zone)
        .map_err(|e| StoreError::Invalid(format!("school {school}: {e}")))?;
    Ok((
        School {
            id: school.clone(),
            name,
            office_phone: phone,
            time_zone,
        },
        serde_json::from_str(&policy)?,
    ))
}

fn phase_name(state: &VisitState) -> &'static str {
    state.phase().name()
}

/// Rebuilds every visit's stored phase and state when the lifecycle's rules changed since they were built
/// (the events are the truth; phase and state are derived from them).
fn rebuild_if_rules_changed(conn: &mut Connection) -> Result<(), StoreError> {
    let built_with: i64 = conn
        .prepare_cached("SELECT rules_version FROM derived_state")?
        .query_row([], |row| row.get(0))?;
    if built_with == i64::from(lifecycle::RULES_VERSION) {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let ids: Vec<String> = {
        let mut stmt = tx.prepare_cached("SELECT id FROM visits")?;
        let ids = stmt.query_map([], |row| row.get(0))?;
        ids.collect::<Result<_, _>>()?
    };
    for id in ids {
        refresh_visit(&tx, &parse_id(&id)?)?;
    }
    tx.prepare_cached("UPDATE derived_state SET rules_version = ?1")?
        .execute([i64::from(lifecycle::RULES_VERSION)])?;
    tx.commit()?;
    Ok(())
}

/// A time as the store keeps it (RFC 3339), or the store's file was changed.
pub(crate) fn stored_time(text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("bad time {text:?}: {e}")))
}

/// A row's column that is not what the office writes there (`what` in `table`), as rusqlite's error for a
/// row mapper.
pub(crate) fn bad_column(what: &str, table: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        format!("bad {what} in {table}").into(),
    )
}

/// The text in a row's `column`, parsed; text that does not parse is `bad()` (the reader's [`bad_column`]).
pub(crate) fn parsed_column<T: std::str::FromStr>(
    row: &rusqlite::Row<'_>,
    column: &str,
    bad: impl FnOnce() -> rusqlite::Error,
) -> rusqlite::Result<T> {
    row.get::<_, String>(column)?.parse().map_err(|_| bad())
}

pub(crate) fn parse_id<T: std::str::FromStr>(text: &str) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    text.parse()
        .map_err(|e: T::Err| StoreError::Corrupt(format!("bad id {text:?}: {e}")))
}

/// The SHA-256 (hex) of a secret (a device token, an enrolment code, a session token): what the store
/// keeps instead of the secret itself.
pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs blocking store work (SQLite, argon2) off the async threads. Its error becomes the caller's answer
/// through `refusal`; a task that failed outright (a panic) is logged and answered with `failed()`.
pub(crate) async fn off_async_threads<T: Send + 'static, E: Send + 'static, R>(
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
    refusal: impl FnOnce(E) -> R,
    failed: impl FnOnce() -> R,
) -> Result<T, R> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(refusal),
        Err(join) => {
            tracing::error!(error = %join, "store task failed");
            Err(failed())
        }
    }
}

/// Runs blocking store work from an engine's own task (the escalation engine, the notifier). On the
/// office's multi-threaded runtime the thread first hands its other tasks to the rest
/// (`block_in_place`), so requests are never left waiting behind an engine's burst of work (an alarm
/// storm); on a single-threaded runtime, as in tests on a paused clock, the work simply runs.
pub(crate) fn engine_work<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|runtime| runtime.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

/// One store area's methods on both stores, written once: `store_area! { impl Area { fn ...; } }` makes
/// - `impl Area for SqliteStore`, each method running the SQLite store's own method of the same name with
///   the same arguments through [`engine_work`];
/// - `impl Area for OfficeStore`, each method the trait's method of the store the office runs on;
/// - the same methods on [`OfficeStore`], synchronous, for a request's blocking work: on SQLite the store's
///   own method, on PostgreSQL the trait's, waited for ([`postgres::PgStore::wait`]).
///
/// A method whose SQLite side is written by hand follows the list as `sqlite { items }` and
/// `office { items }`, joining those two impls as written.
macro_rules! store_area {
    (
        impl $area:ident { $(fn $name:ident(&self $(, $arg:ident: $ty:ty)* $(,)?) -> $out:ty;)* }
        $(sqlite { $($sqlite:tt)* } office { $($office:tt)* })?
    ) => {
        impl $area for $crate::store::SqliteStore {
            $(
                async fn $name(&self $(, $arg: $ty)*) -> $out {
                    $crate::store::engine_work(|| $crate::store::SqliteStore::$name(self $(, $arg)*))
                }
            )*
            $($($sqlite)*)?
        }

        impl $area for $crate::store::OfficeStore {
            $(
                async fn $name(&self $(, $arg: $ty)*) -> $out {
                    match self {
                        Self::Sqlite(store) => {
                            <$crate::store::SqliteStore as $area>::$name(store $(, $arg)*).await
                        }
                        Self::Postgres(store) => {
                            <$crate::store::postgres::PgStore as $area>::$name(store $(, $arg)*).await
                        }
                    }
                }
            )*
            $($($office)*)?
        }

        impl $crate::store::OfficeStore {
            $(
                #[allow(clippy::too_many_arguments)]
                pub fn $name(&self $(, $arg: $ty)*) -> $out {
                    match self {
                        Self::Sqlite(store) => $crate::store::SqliteStore::$name(store $(, $arg)*),
                        Self::Postgres(store) => store.wait(
                            <$crate::store::postgres::PgStore as $area>::$name(store $(, $arg)*),
                        ),
                    }
                }
            )*
        }
    };
}
pub(crate) use store_area;

/// `execute` and `query_row` through the connection's cache of prepared statements, so each SQL text is
/// parsed once per connection and not at every call (rusqlite's own `Connection::execute` and
/// `query_row` prepare afresh each time). Transactions and savepoints reach it through `Deref`.
pub(crate) trait CachedSql {
    fn execute_cached(&self, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize>;
    fn query_row_cached<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        from_row: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T>;
}

impl CachedSql for Connection {
    fn execute_cached(&self, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn query_row_cached<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        from_row: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.prepare_cached(sql)?.query_row(params, from_row)
    }
}

/// Every row `sql` selects, each read by `from_row` (a table's row mapper).
pub(crate) fn rows<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    from_row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params, from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The ids (visit, staff...) in the first column of every row `sql` selects, in its order.
pub(crate) fn ids<T: std::str::FromStr>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<T>, StoreError>
where
    T::Err: std::fmt::Display,
{
    let mut stmt = conn.prepare_cached(sql)?;
    let ids = stmt.query_map(params, |row| row.get::<_, String>(0))?;
    let mut out = Vec::new();
    for id in ids {
        out.push(parse_id(&id?)?);
    }
    Ok(out)
}

/// Every row `sql` selects, each as a tuple of its columns in order (`(String, Option<String>, bool)`), for
/// the caller to turn into its own type.
pub(crate) fn tuples<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<T>, StoreError>
where
    T: for<'a> TryFrom<&'a rusqlite::Row<'a>, Error = rusqlite::Error>,
{
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params, |row| T::try_from(row))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Checks `events` from `device` and stores the new ones on `tx` (a savepoint of the group's transaction),
/// raising the duress alarms they call for: see [`SqliteStore::ingest_raising`]. A refusal returns before
/// anything is kept; the caller rolls back what was written.
fn ingest_in(
    tx: &Connection,
    device: &Device,
    events: &[EventEnvelope],
    device_time: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Ingested, IngestError> {
    let mut tally = checks::Tally::default();
    let policy = school_policy(tx, &device.school)?;
    // Everyone on each visit of the batch, read once.
    let mut staff: HashMap<&VisitId, Vec<StaffId>> = HashMap::new();
    for envelope in events {
        let trusted_at = trusted_time(envelope.recorded_at, device_time, now);
        let counts = match tally.held(&envelope.visit) {
            Some(counts) => counts,
            None => {
                staff.insert(&envelope.visit, assigned_staff(tx, &envelope.visit)?);
                tally.read_held(
                    &envelope.visit,
                    events_held(tx, &device.id, &envelope.visit)?,
                )
            }
        };
        let assigned = staff.get(&envelope.visit).map_or(&[][..], Vec::as_slice);
        let over_quota = match checks::over_quota(envelope, counts) {
            Some(reason) if !already_stored(tx, envelope)? => Some(reason),
            _ => None,
        };
        let outcome = match over_quota {
            Some(reason) => Err(refuse(envelope, reason)),
            None => check_and_store(tx, device, envelope, assigned, (trusted_at, now)),
        };
        let outcome = match outcome {
            Ok(outcome) => Ok(outcome),
            Err(Check::Refused(rejection)) => Err(rejection),
            Err(Check::Store(e)) => return Err(e.into()),
        };
        if outcome == Ok(EventOutcome::Stored) {
            // A safeguarding concern, an incident or a "felt unsafe" note is on disk, to be passed on, in
            // the same transaction as the event that carries it.
            crate::notices::note_in(tx, envelope, &policy, now)?;
        }
        tally.answer(envelope, outcome);
    }
    if !tally.rejections.is_empty() {
        // Dropping the transaction rolls back anything this batch wrote.
        return Err(IngestError::Rejected(tally.rejections));
    }
    let mut alarms = Vec::new();
    for visit in tally.touched {
        let state = refresh_visit(tx, visit)?;
        if tally.alerted.contains(visit) {
            // As the escalation engine raises it (`escalation::evaluate`): straight to the top, one
            // alarm per alert, keyed by who raised it and when, so neither raises it twice.
            for alert in state.active_duress() {
                alarms.extend(raise_alarm_in(tx, NewAlarm::duress(visit, alert), now)?);
            }
        }
    }
    Ok(Ingested {
        results: tally.results,
        alarms,
    })
}
