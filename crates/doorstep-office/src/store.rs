//! The office's store: one embedded SQLite file (WAL, `synchronous=FULL`) holding the school, staff, visits,
//! enrolled phones and every visit event, each event stored exactly once.
//!
//! A batch of events is checked and stored in one transaction: either every event is acceptable and the new
//! ones are stored (with each affected visit's state rebuilt through the core lifecycle), or nothing changes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, TimeDelta, Utc};
use doorstep_core::domain::{Briefing, Pupil, School, StaffMember, Visit};
use doorstep_core::event::EventEnvelope;
use doorstep_core::ids::{DeviceId, DeviceSeq, EventId, SchoolId, StaffId, VisitId};
use doorstep_core::lifecycle::{self, VisitEvent, VisitState};
use doorstep_core::policy::Policy;
use doorstep_core::protocol::{EventOutcome, EventResult, HeldVisit, PhoneHoldings};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use sha2::{Digest, Sha256};

const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_office.sql"),
    include_str!("../migrations/0002_alarms.sql"),
    include_str!("../migrations/0003_notifications.sql"),
    include_str!("../migrations/0005_records.sql"),
    // Applied after 0005 because the branches landed in that order; the number is only a name.
    include_str!("../migrations/0004_office_users.sql"),
    include_str!("../migrations/0006_people.sql"),
    include_str!("../migrations/0007_requests.sql"),
    include_str!("../migrations/0008_sms.sql"),
];

/// The device id under which the office records its own decisions (authorisations).
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
    #[error("could not create the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

/// An enrolled phone, as its token identifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub id: DeviceId,
    pub staff: StaffId,
    pub school: SchoolId,
}

/// Why one event of a batch was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub id: EventId,
    pub reason: String,
    /// The id (or the device's sequence number) is already stored with different content.
    pub conflict: bool,
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
}

#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (or creates) `office.sqlite3` in `data_dir`, checks its integrity and migrates it.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.to_owned(),
            source,
        })?;
        let path = data_dir.join("office.sqlite3");
        let mut conn = Connection::open(&path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let integrity: String = conn.query_row("PRAGMA integrity_check", [], |row| row.get(0))?;
        if integrity != "ok" {
            return Err(StoreError::Corrupt(integrity));
        }
        migrate(&mut conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
            path,
        })
    }

    /// The database file, for people who want to look inside.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-written record (SQLite rolls the transaction
        // back), so a poisoned lock is safe to keep using.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn add_school(&self, school: &School, policy: &Policy) -> Result<(), StoreError> {
        policy
            .validate()
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.conn().execute(
            "INSERT INTO schools (id, name, office_phone, policy) VALUES (?1, ?2, ?3, ?4)",
            params![
                school.id.as_str(),
                school.name,
                school.office_phone,
                serde_json::to_string(policy)?
            ],
        )?;
        Ok(())
    }

    pub fn add_staff(&self, school: &SchoolId, member: &StaffMember) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO staff (id, school_id, name, body) VALUES (?1, ?2, ?3, ?4)",
            params![
                member.id.as_str(),
                school.as_str(),
                member.name,
                serde_json::to_string(member)?
            ],
        )?;
        Ok(())
    }

    pub fn add_pupil(&self, school: &SchoolId, pupil: &Pupil) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO pupils (id, school_id, name) VALUES (?1, ?2, ?3)",
            params![pupil.id.as_str(), school.as_str(), pupil.name],
        )?;
        Ok(())
    }

    /// Stores a requested visit. Everyone assigned must be able to visit homes (an appropriate DBS check) when
    /// the school's policy requires it.
    pub fn add_visit(&self, visit: &Visit) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let policy = school_policy(&tx, &visit.school)?;
        for assigned in &visit.staff {
            let member = staff_member(&tx, &assigned.id)?
                .ok_or_else(|| StoreError::Invalid(format!("unknown staff {}", assigned.id)))?;
            if policy.dbs_check_required && !member.may_visit_homes() {
                return Err(StoreError::Invalid(format!(
                    "{} has no appropriate DBS check and cannot be assigned",
                    member.name
                )));
            }
        }
        let state = VisitState::new(visit.staff_ids());
        tx.execute(
            "INSERT INTO visits (id, school_id, pupil_id, agreed_time, body, phase, state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                visit.id.as_str(),
                visit.school.as_str(),
                visit.pupil.id.as_str(),
                visit.agreed_time.to_rfc3339(),
                serde_json::to_string(visit)?,
                phase_name(&state),
                serde_json::to_string(&state)?
            ],
        )?;
        for (position, assigned) in visit.staff.iter().enumerate() {
            tx.execute(
                "INSERT INTO visit_staff (visit_id, staff_id, position) VALUES (?1, ?2, ?3)",
                params![visit.id.as_str(), assigned.id.as_str(), position as i64],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Records a decision made at the office (for now: authorisation) as an event of the visit, after the
    /// lifecycle has checked it.
    pub fn record_office_event(
        &self,
        visit: &VisitId,
        command: &lifecycle::Command,
        now: DateTime<Utc>,
    ) -> Result<EventEnvelope, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let state = visit_state(&tx, visit)?
            .ok_or_else(|| StoreError::Invalid(format!("unknown visit {visit}")))?;
        let events = lifecycle::decide(&state, command, now)
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let next_seq: i64 = tx.query_row(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE device_id = ?1",
            [OFFICE_DEVICE],
            |row| row.get(0),
        )?;
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
            insert_event(&tx, &envelope, now)?;
            last = Some(envelope);
        }
        refresh_visit(&tx, visit)?;
        tx.commit()?;
        last.ok_or_else(|| StoreError::Invalid("the command caused no event".into()))
    }

    /// Enrols a phone for a member of staff; only a hash of its token is kept.
    pub fn enrol_device(
        &self,
        device: &DeviceId,
        staff: &StaffId,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO devices (id, staff_id, token_sha256, enrolled_at) VALUES (?1, ?2, ?3, ?4)",
            params![
                device.as_str(),
                staff.as_str(),
                token_hash(token),
                now.to_rfc3339()
            ],
        )?;
        Ok(())
    }

    /// The enrolled phone this bearer token belongs to, if any.
    pub fn authenticate(&self, token: &str) -> Result<Option<Device>, StoreError> {
        let row = self
            .conn()
            .query_row(
                "SELECT d.id, d.staff_id, s.school_id FROM devices d JOIN staff s ON s.id = d.staff_id
                 WHERE d.token_sha256 = ?1",
                [token_hash(token)],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                    ))
                },
            )
            .optional()?;
        row.map(|(id, staff, school)| {
            Ok(Device {
                id: parse_id(&id)?,
                staff: parse_id(&staff)?,
                school: parse_id(&school)?,
            })
        })
        .transpose()
    }

    /// Checks a batch from `device` and stores its new events, all or nothing.
    pub fn ingest(
        &self,
        device: &Device,
        events: &[EventEnvelope],
        now: DateTime<Utc>,
    ) -> Result<Vec<EventResult>, IngestError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let mut results = Vec::with_capacity(events.len());
        let mut rejections = Vec::new();
        let mut touched = BTreeSet::new();
        for envelope in events {
            match check_and_store(&tx, device, envelope, now) {
                Ok(outcome) => {
                    if outcome == EventOutcome::Stored {
                        touched.insert(envelope.visit.clone());
                    }
                    results.push(EventResult {
                        id: envelope.id,
                        outcome,
                    });
                }
                Err(Check::Refused(rejection)) => rejections.push(rejection),
                Err(Check::Store(e)) => return Err(e.into()),
            }
        }
        if !rejections.is_empty() {
            // Dropping the transaction rolls back anything this batch wrote.
            return Err(IngestError::Rejected(rejections));
        }
        for visit in &touched {
            refresh_visit(&tx, visit)?;
        }
        tx.commit().map_err(StoreError::from)?;
        Ok(results)
    }

    /// The highest sequence number stored from this device.
    pub fn acknowledged_through(&self, device: &DeviceId) -> Result<Option<DeviceSeq>, StoreError> {
        let max: Option<i64> = self.conn().query_row(
            "SELECT MAX(seq) FROM events WHERE device_id = ?1",
            [device.as_str()],
            |row| row.get(0),
        )?;
        max.map(|seq| DeviceSeq::new(seq as u64).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()
    }

    /// What this device's phone should hold: its school and policy, and its user's visits from a day ago on
    /// (and any older one not yet written up), with every event the office has for each. A written-up or
    /// cancelled visit comes without its briefing.
    pub fn holdings(
        &self,
        device: &Device,
        now: DateTime<Utc>,
    ) -> Result<PhoneHoldings, StoreError> {
        let conn = self.conn();
        let (school, policy) = school_and_policy(&conn, &device.school)?;
        let member = staff_member(&conn, &device.staff)?.ok_or_else(|| {
            StoreError::Corrupt(format!("device's staff {} missing", device.staff))
        })?;
        let mut stmt = conn.prepare(
            "SELECT v.id, v.body, v.phase FROM visits v JOIN visit_staff vs ON vs.visit_id = v.id
             WHERE vs.staff_id = ?1 AND v.agreed_time <= ?3
               AND (v.agreed_time >= ?2 OR v.phase NOT IN ('written_up', 'cancelled'))
             ORDER BY v.agreed_time",
        )?;
        let rows = stmt.query_map(
            params![
                device.staff.as_str(),
                (now - TimeDelta::days(1)).to_rfc3339(),
                (now + TimeDelta::days(7)).to_rfc3339()
            ],
            |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                ))
            },
        )?;
        let mut visits = Vec::new();
        for row in rows {
            let (id, body, phase) = row?;
            let mut visit: Visit = serde_json::from_str(&body)?;
            // A finished visit's briefing (risks, family, needs, pets) leaves the phones: they no longer
            // need it, and a lost phone should not carry it.
            if matches!(phase.as_str(), "written_up" | "cancelled") {
                visit.briefing = Briefing::withdrawn();
            }
            let events = visit_events(&conn, &parse_id(&id)?)?
                .into_iter()
                .map(|stored| stored.envelope)
                .collect();
            visits.push(HeldVisit { visit, events });
        }
        Ok(PhoneHoldings {
            school,
            policy,
            staff: member.id,
            staff_name: member.name,
            visits,
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
            .query_row(
                "SELECT body, state FROM visits WHERE id = ?1",
                [visit.as_str()],
                |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)),
            )
            .optional()?;
        row.map(|(body, state)| Ok((serde_json::from_str(&body)?, serde_json::from_str(&state)?)))
            .transpose()
    }

    /// Every visit's id, in agreed-time order.
    pub fn visit_ids(&self) -> Result<Vec<VisitId>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT id FROM visits ORDER BY agreed_time, id")?;
        let ids = stmt.query_map([], |row| row.get::<_, String>(0))?;
        let mut out = Vec::new();
        for id in ids {
            out.push(parse_id(&id?)?);
        }
        Ok(out)
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
        let mut stmt = conn.prepare(
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

    /// Whether the store holds a school yet (the demo seeds only an empty store).
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        let count: i64 = self
            .conn()
            .query_row("SELECT COUNT(*) FROM schools", [], |row| row.get(0))?;
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
    })
}

fn check_and_store(
    tx: &Transaction<'_>,
    device: &Device,
    envelope: &EventEnvelope,
    now: DateTime<Utc>,
) -> Result<EventOutcome, Check> {
    if envelope.device != device.id {
        return Err(refuse(
            envelope,
            format!(
                "the event says it is from device {}, but this token is device {}",
                envelope.device, device.id
            ),
        ));
    }
    if let Err(e) = envelope.validate() {
        return Err(refuse(envelope, e.to_string()));
    }
    if matches!(envelope.event, VisitEvent::Authorised { .. }) {
        return Err(refuse(envelope, "only the office can authorise a visit"));
    }
    if envelope.event.actor() != &device.staff {
        return Err(refuse(
            envelope,
            format!(
                "the event is by {}, but this phone belongs to {}",
                envelope.event.actor(),
                device.staff
            ),
        ));
    }
    let assigned = assigned_staff(tx, &envelope.visit)?;
    if !assigned.contains(&device.staff) {
        return Err(refuse(
            envelope,
            format!("visit {} is not one of this phone's visits", envelope.visit),
        ));
    }
    if let Some(stranger) = envelope
        .event
        .staff_named()
        .into_iter()
        .find(|s| !assigned.contains(*s))
    {
        return Err(refuse(
            envelope,
            format!("{stranger} is not on visit {}", envelope.visit),
        ));
    }
    let existing: Option<String> = tx
        .query_row(
            "SELECT body FROM events WHERE id = ?1",
            [envelope.id.to_string()],
            |row| row.get(0),
        )
        .optional()?;
    if let Some(body) = existing {
        let stored: EventEnvelope = serde_json::from_str(&body).map_err(StoreError::from)?;
        return if &stored == envelope {
            Ok(EventOutcome::Duplicate)
        } else {
            Err(Check::Refused(Rejection {
                id: envelope.id,
                reason: format!(
                    "event {} is already stored with different content",
                    envelope.id
                ),
                conflict: true,
            }))
        };
    }
    let seq_taken: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM events WHERE device_id = ?1 AND seq = ?2)",
        params![envelope.device.as_str(), envelope.seq.get() as i64],
        |row| row.get(0),
    )?;
    if seq_taken {
        return Err(Check::Refused(Rejection {
            id: envelope.id,
            reason: format!(
                "sequence number {} of this device is already used by another event",
                envelope.seq
            ),
            conflict: true,
        }));
    }
    insert_event(tx, envelope, now)?;
    Ok(EventOutcome::Stored)
}

fn insert_event(
    tx: &Transaction<'_>,
    envelope: &EventEnvelope,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO events (id, device_id, seq, visit_id, staff_id, recorded_at, received_at, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            envelope.id.to_string(),
            envelope.device.as_str(),
            envelope.seq.get() as i64,
            envelope.visit.as_str(),
            envelope.event.actor().as_str(),
            envelope.recorded_at.to_rfc3339(),
            now.to_rfc3339(),
            serde_json::to_string(envelope)?
        ],
    )?;
    Ok(())
}

/// Rebuilds a visit's state from all its events through the core lifecycle and stores it.
fn refresh_visit(tx: &Transaction<'_>, visit: &VisitId) -> Result<(), StoreError> {
    let staff = assigned_staff(tx, visit)?;
    let events = visit_events(tx, visit)?;
    let state = lifecycle::replay(
        VisitState::new(staff),
        events.iter().map(|stored| &stored.envelope),
    );
    tx.execute(
        "UPDATE visits SET phase = ?2, state = ?3 WHERE id = ?1",
        params![
            visit.as_str(),
            phase_name(&state),
            serde_json::to_string(&state)?
        ],
    )?;
    Ok(())
}

fn visit_state(conn: &Connection, visit: &VisitId) -> Result<Option<VisitState>, StoreError> {
    let state: Option<String> = conn
        .query_row(
            "SELECT state FROM visits WHERE id = ?1",
            [visit.as_str()],
            |row| row.get(0),
        )
        .optional()?;
    Ok(match state {
        Some(state) => Some(serde_json::from_str(&state)?),
        None => None,
    })
}

fn visit_events(conn: &Connection, visit: &VisitId) -> Result<Vec<StoredEvent>, StoreError> {
    let mut stmt =
        conn.prepare("SELECT body, received_at FROM events WHERE visit_id = ?1 ORDER BY rowid")?;
    let rows = stmt.query_map([visit.as_str()], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (body, received_at) = row?;
        out.push(StoredEvent {
            envelope: serde_json::from_str(&body)?,
            received_at: DateTime::parse_from_rfc3339(&received_at)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?
                .with_timezone(&Utc),
        });
    }
    Ok(out)
}

fn assigned_staff(conn: &Connection, visit: &VisitId) -> Result<Vec<StaffId>, StoreError> {
    let mut stmt =
        conn.prepare("SELECT staff_id FROM visit_staff WHERE visit_id = ?1 ORDER BY position")?;
    let ids = stmt.query_map([visit.as_str()], |row| row.get::<_, String>(0))?;
    let mut out = Vec::new();
    for id in ids {
        out.push(parse_id(&id?)?);
    }
    Ok(out)
}

pub(crate) fn staff_member(
    conn: &Connection,
    staff: &StaffId,
) -> Result<Option<StaffMember>, StoreError> {
    let body: Option<String> = conn
        .query_row(
            "SELECT body FROM staff WHERE id = ?1",
            [staff.as_str()],
            |row| row.get(0),
        )
        .optional()?;
    Ok(match body {
        Some(body) => Some(serde_json::from_str(&body)?),
        None => None,
    })
}

fn school_policy(conn: &Connection, school: &SchoolId) -> Result<Policy, StoreError> {
    Ok(school_and_policy(conn, school)?.1)
}

pub(crate) fn school_and_policy(
    conn: &Connection,
    school: &SchoolId,
) -> Result<(School, Policy), StoreError> {
    let (name, phone, policy): (String, String, String) = conn
        .query_row(
            "SELECT name, office_phone, policy FROM schools WHERE id = ?1",
            [school.as_str()],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .optional()?
        .ok_or_else(|| StoreError::Invalid(format!("unknown school {school}")))?;
    Ok((
        School {
            id: school.clone(),
            name,
            office_phone: phone,
        },
        serde_json::from_str(&policy)?,
    ))
}

fn phase_name(state: &VisitState) -> String {
    serde_json::to_value(state.phase())
        .ok()
        .and_then(|v| v.get("phase").and_then(|p| p.as_str()).map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

pub(crate) fn parse_id<T: std::str::FromStr>(text: &str) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    text.parse()
        .map_err(|e: T::Err| StoreError::Corrupt(format!("bad id {text:?}: {e}")))
}

pub(crate) fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version > MIGRATIONS.len() as i64 {
        return Err(StoreError::NewerSchema(version));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}
