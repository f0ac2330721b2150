//! Alarms in the store: raised on silence or duress, escalated, and held until a named person acknowledges
//! them. Every step is logged for the visit's timeline.

use chrono::{DateTime, Utc};
use doorstep_core::domain::Visit;
use doorstep_core::ids::VisitId;
use doorstep_core::lifecycle::VisitState;
use doorstep_core::policy::Policy;
use doorstep_core::schedule::AlarmLevel;
use rusqlite::{params, OptionalExtension, Row};
use serde::Serialize;

use crate::store::{parse_id, school_and_policy, SqliteStore, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    /// Silence past a deadline plus grace.
    Overdue,
    /// A duress alert from a phone.
    Duress,
}

impl AlarmKind {
    fn as_str(self) -> &'static str {
        match self {
            AlarmKind::Overdue => "overdue",
            AlarmKind::Duress => "duress",
        }
    }
}

/// One alarm as the office holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Alarm {
    pub id: i64,
    pub visit: VisitId,
    pub kind: AlarmKind,
    /// Overdue: what the office was waiting for. Duress: who raised it.
    pub about: String,
    /// Overdue: the missed deadline. Duress: when it was raised on the phone.
    pub due_at: DateTime<Utc>,
    pub raised_at: DateTime<Utc>,
    pub level: AlarmLevel,
    pub escalated_at: Option<DateTime<Utc>>,
    pub contact_resumed_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<DateTime<Utc>>,
}

/// How a duress alarm raised at the office, when reception hears the code phrase on the phone, starts its
/// `about`; the name of the person who heard it follows in brackets.
pub const HEARD_BY_RECEPTION: &str = "reception heard the code phrase";

impl Alarm {
    /// A duress alarm raised at the office from the code phrase heard on the phone, not from a phone's alert.
    /// The staff cannot stand it down from their phones, so it escalates until someone acknowledges it.
    pub fn heard_by_reception(&self) -> bool {
        self.kind == AlarmKind::Duress && self.about.starts_with(HEARD_BY_RECEPTION)
    }

    pub fn is_open(&self) -> bool {
        self.acknowledged_at.is_none()
    }

    /// Still getting louder: open, and nobody has been heard from since.
    pub fn escalating(&self) -> bool {
        self.is_open() && self.contact_resumed_at.is_none()
    }
}

/// One line of an alarm's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct AlarmLogEntry {
    pub alarm: i64,
    pub at: DateTime<Utc>,
    pub what: String,
    pub detail: String,
}

fn time(text: Option<String>) -> rusqlite::Result<Option<DateTime<Utc>>> {
    text.map(|t| {
        DateTime::parse_from_rfc3339(&t)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    0,
                    rusqlite::types::Type::Text,
                    Box::new(e),
                )
            })
    })
    .transpose()
}

pub(crate) fn alarm_from_row(row: &Row<'_>) -> rusqlite::Result<Alarm> {
    let visit: String = row.get("visit_id")?;
    let kind: String = row.get("kind")?;
    let level: String = row.get("level")?;
    let bad = |what: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            format!("bad {what} in alarms").into(),
        )
    };
    Ok(Alarm {
        id: row.get("id")?,
        visit: visit.parse().map_err(|_| bad("visit id"))?,
        kind: match kind.as_str() {
            "overdue" => AlarmKind::Overdue,
            "duress" => AlarmKind::Duress,
            _ => return Err(bad("kind")),
        },
        about: row.get("about")?,
        due_at: time(Some(row.get("due_at")?))?.ok_or_else(|| bad("due_at"))?,
        raised_at: time(Some(row.get("raised_at")?))?.ok_or_else(|| bad("raised_at"))?,
        level: match level.as_str() {
            "board" => AlarmLevel::Board,
            "authoriser" => AlarmLevel::Authoriser,
            _ => return Err(bad("level")),
        },
        escalated_at: time(row.get("escalated_at")?)?,
        contact_resumed_at: time(row.get("contact_resumed_at")?)?,
        acknowledged_by: row.get("acknowledged_by")?,
        acknowledged_at: time(row.get("acknowledged_at")?)?,
    })
}

fn level_str(level: AlarmLevel) -> &'static str {
    match level {
        AlarmLevel::Board => "board",
        AlarmLevel::Authoriser => "authoriser",
    }
}

impl SqliteStore {
    /// Every alarm of a visit, oldest first.
    pub fn alarms_for_visit(&self, visit: &VisitId) -> Result<Vec<Alarm>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT * FROM alarms WHERE visit_id = ?1 ORDER BY id")?;
        let alarms = stmt
            .query_map([visit.as_str()], alarm_from_row)?
            .collect::<Result<_, _>>()?;
        Ok(alarms)
    }

    /// One alarm by its id.
    pub fn alarm(&self, id: i64) -> Result<Option<Alarm>, StoreError> {
        Ok(self
            .conn()
            .query_row("SELECT * FROM alarms WHERE id = ?1", [id], alarm_from_row)
            .optional()?)
    }

    /// Every alarm not yet acknowledged, oldest first.
    pub fn open_alarms(&self) -> Result<Vec<Alarm>, StoreError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT * FROM alarms WHERE acknowledged_at IS NULL ORDER BY id")?;
        let alarms = stmt
            .query_map([], alarm_from_row)?
            .collect::<Result<_, _>>()?;
        Ok(alarms)
    }

    /// Raises an alarm unless the same one (visit, kind, about, due) already exists. Returns it if new.
    pub fn raise_alarm(
        &self,
        visit: &VisitId,
        kind: AlarmKind,
        about: &str,
        due_at: DateTime<Utc>,
        level: AlarmLevel,
        now: DateTime<Utc>,
    ) -> Result<Option<Alarm>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let inserted = tx.execute(
            "INSERT OR IGNORE INTO alarms (visit_id, kind, about, due_at, raised_at, level, escalated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                visit.as_str(),
                kind.as_str(),
                about,
                due_at.to_rfc3339(),
                now.to_rfc3339(),
                level_str(level),
                (level == AlarmLevel::Authoriser).then(|| now.to_rfc3339())
            ],
        )?;
        if inserted == 0 {
            return Ok(None);
        }
        let id = tx.last_insert_rowid();
        let detail = match kind {
            AlarmKind::Overdue => format!(
                "no {about} since it was due at {}",
                due_at.format("%H:%M:%S UTC")
            ),
            AlarmKind::Duress if about.starts_with(HEARD_BY_RECEPTION) => {
                format!("duress: {about} at {}", due_at.format("%H:%M:%S UTC"))
            }
            AlarmKind::Duress => format!(
                "duress raised by {about} at {}",
                due_at.format("%H:%M:%S UTC")
            ),
        };
        log(&tx, id, now, "raised", &detail)?;
        if level == AlarmLevel::Authoriser {
            log(
                &tx,
                id,
                now,
                "authoriser_told",
                "straight to the authoriser",
            )?;
        }
        let alarm = tx.query_row("SELECT * FROM alarms WHERE id = ?1", [id], alarm_from_row)?;
        tx.commit()?;
        Ok(Some(alarm))
    }

    /// Makes an alarm louder: the authoriser is told (the first time) or reminded.
    pub fn escalate_alarm(&self, id: i64, now: DateTime<Utc>) -> Result<Alarm, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let before = tx.query_row("SELECT * FROM alarms WHERE id = ?1", [id], alarm_from_row)?;
        tx.execute(
            "UPDATE alarms SET level = 'authoriser', escalated_at = ?2 WHERE id = ?1",
            params![id, now.to_rfc3339()],
        )?;
        let (what, detail) = match before.level {
            AlarmLevel::Board => (
                "authoriser_told",
                "not acknowledged at the office: the authoriser is told",
            ),
            AlarmLevel::Authoriser => (
                "authoriser_reminded",
                "still not acknowledged: the authoriser is reminded",
            ),
        };
        log(&tx, id, now, what, detail)?;
        let alarm = tx.query_row("SELECT * FROM alarms WHERE id = ?1", [id], alarm_from_row)?;
        tx.commit()?;
        Ok(alarm)
    }

    /// Notes that the staff were heard from again; the alarm stops escalating but stays until acknowledged.
    pub fn note_contact_resumed(&self, id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let changed = tx.execute(
            "UPDATE alarms SET contact_resumed_at = ?2 WHERE id = ?1 AND contact_resumed_at IS NULL",
            params![id, now.to_rfc3339()],
        )?;
        if changed > 0 {
            log(
                &tx,
                id,
                now,
                "contact_resumed",
                "the staff were heard from again",
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// A named person acknowledges an alarm. Refused if it was already acknowledged.
    pub fn acknowledge_alarm(
        &self,
        id: i64,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Alarm, StoreError> {
        let by = by.trim();
        if by.is_empty() || by.chars().count() > 100 {
            return Err(StoreError::Invalid(
                "say who is acknowledging the alarm (1 to 100 characters)".into(),
            ));
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let changed = tx.execute(
            "UPDATE alarms SET acknowledged_by = ?2, acknowledged_at = ?3 WHERE id = ?1 AND acknowledged_at IS NULL",
            params![id, by, now.to_rfc3339()],
        )?;
        if changed == 0 {
            let exists: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM alarms WHERE id = ?1)",
                [id],
                |r| r.get(0),
            )?;
            return Err(StoreError::Invalid(if exists {
                format!("alarm {id} was already acknowledged")
            } else {
                format!("there is no alarm {id}")
            }));
        }
        log(
            &tx,
            id,
            now,
            "acknowledged",
            &format!("acknowledged by {by}"),
        )?;
        let alarm = tx.query_row("SELECT * FROM alarms WHERE id = ?1", [id], alarm_from_row)?;
        tx.commit()?;
        Ok(alarm)
    }

    /// The history of every alarm of a visit, in order.
    pub fn alarm_log(&self, visit: &VisitId) -> Result<Vec<AlarmLogEntry>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT l.alarm_id, l.at, l.what, l.detail FROM alarm_log l JOIN alarms a ON a.id = l.alarm_id
             WHERE a.visit_id = ?1 ORDER BY l.id",
        )?;
        let entries = stmt
            .query_map([visit.as_str()], |row| {
                Ok(AlarmLogEntry {
                    alarm: row.get(0)?,
                    at: time(Some(row.get(1)?))?.unwrap_or_default(),
                    what: row.get(2)?,
                    detail: row.get(3)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(entries)
    }

    /// Visits the escalation engine must watch: under way, or with an alarm still open.
    pub fn visits_to_watch(&self) -> Result<Vec<VisitId>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id FROM visits WHERE phase IN ('authorised', 'departed', 'outside', 'in_visit', 'checked_in', 'duress')
             UNION SELECT visit_id FROM alarms WHERE acknowledged_at IS NULL",
        )?;
        let ids = stmt.query_map([], |row| row.get::<_, String>(0))?;
        let mut out = Vec::new();
        for id in ids {
            out.push(parse_id(&id?)?);
        }
        Ok(out)
    }

    /// A visit, its state, and its school's policy.
    pub fn visit_with_policy(
        &self,
        visit: &VisitId,
    ) -> Result<Option<(Visit, VisitState, Policy)>, StoreError> {
        let Some((visit, state)) = self.visit(visit)? else {
            return Ok(None);
        };
        let conn = self.conn();
        let school: Option<String> = conn
            .query_row(
                "SELECT school_id FROM visits WHERE id = ?1",
                [visit.id.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        let school = parse_id(&school.unwrap_or_default())?;
        let (_, policy) = school_and_policy(&conn, &school)?;
        Ok(Some((visit, state, policy)))
    }
}

pub(crate) fn log(
    tx: &rusqlite::Transaction<'_>,
    alarm: i64,
    at: DateTime<Utc>,
    what: &str,
    detail: &str,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO alarm_log (alarm_id, at, what, detail) VALUES (?1, ?2, ?3, ?4)",
        params![alarm, at.to_rfc3339(), what, detail],
    )?;
    Ok(())
}
