//! The checks after each run, read from the two databases once both processes have stopped: every event
//! the phone recorded is at the office once with the same content; the office has nothing the phone did
//! not record; nothing was shown as confirmed that the office did not hold, or before it held it; the
//! outbox drained; each visit's state agrees on both sides; both files pass `PRAGMA integrity_check`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use chrono::{DateTime, Utc};
use doorstep_core::event::EventEnvelope;
use doorstep_core::event_log::Delivery;
use doorstep_core::ids::DeviceId;
use doorstep_office::SqliteStore;
use rusqlite::{Connection, OpenFlags};

/// What the checks found. Every count but `recorded` should be 0.
#[derive(Debug, Default, Clone)]
pub struct Findings {
    /// Events the phone recorded (an event recorded again under a new number, after a restore from a
    /// backup, counts once: as its successor).
    pub recorded: usize,
    /// Recorded on the phone, not at the office.
    pub lost: usize,
    /// At the office more than once: the same id twice, or the same event (content and time) under two ids.
    pub duplicated: usize,
    /// Shown confirmed on the phone while the office did not hold it (or did not yet).
    pub falsely_confirmed: usize,
    /// Still waiting on the phone when the run's time to drain was up.
    pub stuck: usize,
    /// At the office from this phone, but never recorded by it.
    pub unrecorded: usize,
    /// At the office with content other than the phone recorded.
    pub altered: usize,
    /// Refused by the office (set aside on the phone for good).
    pub refused: usize,
    /// Visits whose state differs between phone and office.
    pub disagreeing_visits: usize,
    /// Databases that failed `PRAGMA integrity_check` (or could not be read).
    pub integrity_failures: usize,
    /// What each problem was, for the report.
    pub problems: Vec<String>,
    /// When the office stored the last alert the phone raised (to measure from the last fault).
    pub alert_stored_at: Option<DateTime<Utc>>,
    /// When the phone last confirmed an event.
    pub last_confirmed_at: Option<DateTime<Utc>>,
}

impl Findings {
    pub fn failures(&self) -> usize {
        self.lost
            + self.duplicated
            + self.falsely_confirmed
            + self.stuck
            + self.unrecorded
            + self.altered
            + self.refused
            + self.disagreeing_visits
            + self.integrity_failures
    }

    fn problem(&mut self, text: String) {
        if self.problems.len() < 20 {
            self.problems.push(text);
        }
    }
}

struct PhoneRow {
    envelope: EventEnvelope,
    state: String,
    confirmed_at: Option<DateTime<Utc>>,
}

struct OfficeRow {
    envelope: EventEnvelope,
    received_at: DateTime<Utc>,
}

fn time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn read_only(path: &Path) -> rusqlite::Result<Connection> {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
}

fn integrity(path: &Path) -> Result<(), String> {
    let conn = read_only(path).map_err(|e| e.to_string())?;
    let result: String = conn
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .map_err(|e| e.to_string())?;
    if result == "ok" {
        Ok(())
    } else {
        Err(result)
    }
}

/// Every event the phone recorded, as its sealed log opens them (with the key the phone process kept),
/// in the order it numbered them; those recorded again under a new number are left out.
fn phone_rows(dir: &Path, device: &DeviceId) -> Result<Vec<PhoneRow>, String> {
    let visits: Vec<String> = {
        let conn =
            read_only(&dir.join(doorstep::config::DATABASE_FILE)).map_err(|e| e.to_string())?;
        let mut stmt = conn
            .prepare("SELECT DISTINCT visit_id FROM events")
            .map_err(|e| e.to_string())?;
        let rows = stmt
            .query_map([], |row| row.get::<_, String>(0))
            .map_err(|e| e.to_string())?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| e.to_string())?
    };
    let log = crate::phone::open_phone_log(dir, device)?;
    let mut out = Vec::new();
    for visit in visits {
        let visit = visit.parse().map_err(|e| format!("visit id: {e}"))?;
        for (envelope, delivery) in log.events_for_visit(&visit).map_err(|e| e.to_string())? {
            let (state, confirmed_at) = match delivery {
                Delivery::Waiting { .. } => ("waiting", None),
                Delivery::Confirmed { at } => ("confirmed", Some(at)),
                Delivery::Refused { .. } => ("refused", None),
            };
            out.push(PhoneRow {
                envelope,
                state: state.to_owned(),
                confirmed_at,
            });
        }
    }
    out.sort_by_key(|row| row.envelope.seq);
    Ok(out)
}

fn office_rows(path: &Path, device: &DeviceId) -> rusqlite::Result<Vec<OfficeRow>> {
    let conn = read_only(path)?;
    let mut stmt =
        conn.prepare("SELECT body, received_at FROM events WHERE device_id = ?1 ORDER BY rowid")?;
    let rows = stmt.query_map([device.as_str()], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (body, received_at) = row?;
        let envelope = serde_json::from_str(&body).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })?;
        out.push(OfficeRow {
            envelope,
            received_at: time(&received_at).unwrap_or_default(),
        });
    }
    Ok(out)
}

/// How many events are waiting in the phone's outbox now (read while the phone runs; WAL lets a reader in).
pub fn waiting_on_phone(phone_db: &Path) -> rusqlite::Result<i64> {
    read_only(phone_db)?.query_row(
        "SELECT COUNT(*) FROM outbox WHERE state = 'waiting'",
        [],
        |row| row.get(0),
    )
}

/// Compares the phone's data folder with the office's data folder. `stuck` is how many events were still
/// waiting when the run stopped waiting for them.
pub fn compare(phone_dir: &Path, office_dir: &Path, device: &DeviceId, stuck: usize) -> Findings {
    let mut findings = Findings {
        stuck,
        ..Findings::default()
    };
    if stuck > 0 {
        findings.problem(format!("{stuck} event(s) still waiting on the phone"));
    }
    let phone_db = phone_dir.join(doorstep::config::DATABASE_FILE);
    let office_db = office_dir.join("office.sqlite3");
    for (who, path) in [("phone", &phone_db), ("office", &office_db)] {
        if let Err(error) = integrity(path) {
            findings.integrity_failures += 1;
            findings.problem(format!("{who} database integrity: {error}"));
        }
    }
    let (phone, office) = match (
        phone_rows(phone_dir, device),
        office_rows(&office_db, device),
    ) {
        (Ok(phone), Ok(office)) => (phone, office),
        (phone, office) => {
            findings.integrity_failures += 1;
            findings.problem(format!(
                "could not read the events: phone {:?}, office {:?}",
                phone.err(),
                office.err()
            ));
            return findings;
        }
    };
    findings.recorded = phone.len();

    let mut at_office: HashMap<_, Vec<&OfficeRow>> = HashMap::new();
    for row in &office {
        at_office.entry(row.envelope.id).or_default().push(row);
    }
    // The same event under two ids: same visit, same device time, same event.
    let mut by_content: HashMap<String, usize> = HashMap::new();
    for row in &office {
        let key = format!(
            "{}|{}|{}",
            row.envelope.visit,
            row.envelope.recorded_at.to_rfc3339(),
            serde_json::to_string(&row.envelope.event).unwrap_or_default()
        );
        *by_content.entry(key).or_default() += 1;
    }
    let copies: usize = by_content
        .values()
        .map(|n| n.saturating_sub(1))
        .sum::<usize>()
        + at_office
            .values()
            .map(|rows| rows.len().saturating_sub(1))
            .sum::<usize>();
    if copies > 0 {
        findings.duplicated = copies;
        findings.problem(format!("{copies} extra cop(ies) of events at the office"));
    }

    let recorded: HashMap<_, &PhoneRow> = phone.iter().map(|r| (r.envelope.id, r)).collect();
    for row in &phone {
        let id = row.envelope.id;
        let held = at_office.get(&id).and_then(|rows| rows.first());
        match row.state.as_str() {
            "refused" => {
                findings.refused += 1;
                findings.problem(format!("{id} (seq {}) was refused", row.envelope.seq));
            }
            "confirmed" => match (held, row.confirmed_at) {
                (None, _) => {
                    findings.falsely_confirmed += 1;
                    findings.problem(format!("{id} shown confirmed but not at the office"));
                }
                (Some(held), Some(confirmed)) if confirmed < held.received_at => {
                    findings.falsely_confirmed += 1;
                    findings.problem(format!(
                        "{id} shown confirmed at {confirmed} before the office received it at {}",
                        held.received_at
                    ));
                }
                _ => {}
            },
            _ => {}
        }
        match held {
            None => {
                findings.lost += 1;
                findings.problem(format!(
                    "{id} (seq {}, {}) recorded but not at the office",
                    row.envelope.seq,
                    row.envelope.event.summary()
                ));
            }
            // A confirmed event's typed words leave the phone: it keeps the event without them.
            Some(held)
                if held.envelope != row.envelope
                    && !without_words(&held.envelope, &row.envelope) =>
            {
                findings.altered += 1;
                findings.problem(format!("{id} differs at the office"));
            }
            Some(_) => {}
        }
    }
    for row in &office {
        if !recorded.contains_key(&row.envelope.id) {
            findings.unrecorded += 1;
            findings.problem(format!(
                "{} at the office was never recorded by the phone",
                row.envelope.id
            ));
        }
    }
    findings.alert_stored_at = phone
        .iter()
        .rev()
        .find(|row| row.envelope.event.is_urgent())
        .and_then(|row| at_office.get(&row.envelope.id))
        .and_then(|rows| rows.first())
        .map(|row| row.received_at);
    findings.last_confirmed_at = phone.iter().filter_map(|row| row.confirmed_at).max();

    compare_states(phone_dir, office_dir, device, &mut findings);
    findings
}

/// Each visit's state as the app shows it (office events and the phone's own, replayed) against the
/// office's.
fn compare_states(phone_dir: &Path, office_dir: &Path, device: &DeviceId, findings: &mut Findings) {
    let phone = match crate::phone::open_phone(phone_dir, device) {
        Ok(store) => store,
        Err(error) => {
            findings.integrity_failures += 1;
            findings.problem(format!("the phone's store did not open: {error}"));
            return;
        }
    };
    let office = match SqliteStore::open(office_dir) {
        Ok(store) => store,
        Err(error) => {
            findings.integrity_failures += 1;
            findings.problem(format!("the office's store did not open: {error}"));
            return;
        }
    };
    let Ok(Some(me)) = phone.me() else {
        findings.disagreeing_visits += 1;
        findings.problem("the phone never received its visits".into());
        return;
    };
    let ids: Vec<_> = match office.visit_ids() {
        Ok(ids) => ids,
        Err(error) => {
            findings.integrity_failures += 1;
            findings.problem(format!("office visits: {error}"));
            return;
        }
    };
    let mut states = BTreeMap::new();
    for id in ids {
        let Ok(Some((visit, office_state))) = office.visit(&id) else {
            continue;
        };
        if !visit.staff.iter().any(|s| s.id == me.staff) {
            continue;
        }
        match phone.visit(&id) {
            Ok(Some(card)) if card.state == office_state => {}
            Ok(Some(card)) => {
                states.insert(id.to_string(), (card.phase(), office_state.phase()));
            }
            Ok(None) => {
                states.insert(id.to_string(), (office_state.phase(), office_state.phase()));
            }
            Err(error) => findings.problem(format!("phone visit {id}: {error}")),
        }
    }
    findings.disagreeing_visits = states.len();
    for (id, (phone_phase, office_phase)) in states {
        findings.problem(format!(
            "visit {id}: phone says {phone_phase:?}, office says {office_phase:?}"
        ));
    }
}

/// Whether `phone` is `office` with its typed words taken out, as a phone keeps a confirmed event.
fn without_words(office: &EventEnvelope, phone: &EventEnvelope) -> bool {
    office.event.without_free_text().is_some_and(|event| {
        let mut kept = office.clone();
        kept.event = event;
        kept == *phone
    })
}
