//! Alarms on SQLite: the rows behind [`crate::store::backend::Alarms`] (raised, escalated, acknowledged,
//! closed, and the log of each step), decided and worded by the functions in [`crate::alarms`].

use chrono::{DateTime, Utc};
use doorstep_core::domain::{School, Visit};
use doorstep_core::ids::{SchoolId, StaffId, VisitId};
use doorstep_core::lifecycle::{self, AlarmOutcome, VisitState};
use doorstep_core::policy::Policy;
use doorstep_core::schedule::AlarmLevel;
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction, TransactionBehavior};

use crate::alarms::*;
use crate::store::{
    bad_column, ids, record_office_event_in, rows, school_and_policy, CachedSql, SqliteStore,
    StoreError,
};

/// A time column as the office writes it (RFC 3339); anything else is rusqlite's conversion error.
pub(crate) fn column_time(text: &str) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })
}

/// A time column that may be empty ([`column_time`]).
pub(crate) fn time(text: Option<String>) -> rusqlite::Result<Option<DateTime<Utc>>> {
    text.as_deref().map(column_time).transpose()
}

fn bad(what: &str) -> rusqlite::Error {
    bad_column(what, "alarms")
}

pub(crate) fn alarm_from_row(row: &Row<'_>) -> rusqlite::Result<Alarm> {
    let visit: String = row.get("visit_id")?;
    let kind: String = row.get("kind")?;
    let level: String = row.get("level")?;
    let outcome: Option<String> = row.get("outcome")?;
    Ok(Alarm {
        id: row.get("id")?,
        visit: visit.parse().map_err(|_| bad("visit id"))?,
        kind: AlarmKind::parse(&kind).ok_or_else(|| bad("kind"))?,
        about: row.get("about")?,
        due_at: column_time(&row.get::<_, String>("due_at")?)?,
        raised_at: column_time(&row.get::<_, String>("raised_at")?)?,
        level: AlarmLevel::parse(&level).ok_or_else(|| bad("level"))?,
        escalated_at: time(row.get("escalated_at")?)?,
        contact_resumed_at: time(row.get("contact_resumed_at")?)?,
        acknowledged_by: row.get("acknowledged_by")?,
        acknowledged_at: time(row.get("acknowledged_at")?)?,
        closed_by: row.get("closed_by")?,
        closed_at: time(row.get("closed_at")?)?,
        outcome: match outcome {
            Some(text) => Some(AlarmOutcome::parse(&text).ok_or_else(|| bad("outcome"))?),
            None => None,
        },
        close_note: row.get("close_note")?,
    })
}

fn alarm_in(conn: &Connection, id: i64) -> Result<Alarm, StoreError> {
    Ok(conn.query_row_cached("SELECT * FROM alarms WHERE id = ?1", [id], alarm_from_row)?)
}

/// Alarm `id`, or a refusal naming it when there is none.
fn existing_alarm(conn: &Connection, id: i64) -> Result<Alarm, StoreError> {
    conn.query_row_cached("SELECT * FROM alarms WHERE id = ?1", [id], alarm_from_row)
        .optional()?
        .ok_or_else(|| StoreError::Invalid(format!("there is no alarm {id}")))
}

/// A refusal saying who already `done` the alarm and when (on the school's clock), if someone did.
fn not_already(
    conn: &Connection,
    alarm: &Alarm,
    done: &str,
    who: &Option<String>,
    at: Option<DateTime<Utc>>,
) -> Result<(), StoreError> {
    if who.is_none() || at.is_none() {
        return Ok(());
    }
    let school = visit_school_and_policy(conn, &alarm.visit)?.0;
    already_done(alarm, done, (who, at), &school)
}

/// The school and policy of a visit.
fn visit_school(conn: &Connection, visit: &VisitId) -> Result<(SchoolId, Policy), StoreError> {
    let (school, policy) = visit_school_and_policy(conn, visit)?;
    Ok((school.id, policy))
}

/// The school (with its time zone, the clock the alarm log's words are on) and policy of a visit.
fn visit_school_and_policy(
    conn: &Connection,
    visit: &VisitId,
) -> Result<(School, Policy), StoreError> {
    school_and_policy(conn, &crate::store::visit_school(conn, visit)?)
}

/// Whether any live school-wide target wants alarms at `level`.
fn level_has_target(
    conn: &Connection,
    school: &SchoolId,
    level: AlarmLevel,
) -> Result<bool, StoreError> {
    let column = wants_level_column(level);
    Ok(conn.query_row_cached(
        &format!(
            "SELECT EXISTS (SELECT 1 FROM notification_targets WHERE school_id = ?1 AND visit_id IS NULL
                            AND removed_at IS NULL AND {column} = 1)"
        ),
        [school.as_str()],
        |r| r.get(0),
    )?)
}

/// Logs "nobody_to_tell" when the alarm has reached `level` and no target covers it. The board is the
/// office's own level: an alarm on it is seen there, so only the levels beyond it are checked.
fn note_if_nobody_to_tell(
    tx: &Connection,
    alarm: i64,
    school: &SchoolId,
    level: AlarmLevel,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if level == AlarmLevel::Board || level_has_target(tx, school, level)? {
        return Ok(());
    }
    let detail = nobody_to_tell_detail(level, policy);
    log(tx, alarm, now, step::NOBODY_TO_TELL, Some(level), &detail)
}

impl SqliteStore {
    /// Every alarm of a visit, oldest first.
    pub fn alarms_for_visit(&self, visit: &VisitId) -> Result<Vec<Alarm>, StoreError> {
        rows(
            &self.conn(),
            "SELECT * FROM alarms WHERE visit_id = ?1 ORDER BY id",
            [visit.as_str()],
            alarm_from_row,
        )
    }

    /// One alarm by its id.
    pub fn alarm(&self, id: i64) -> Result<Option<Alarm>, StoreError> {
        Ok(self
            .conn()
            .query_row_cached("SELECT * FROM alarms WHERE id = ?1", [id], alarm_from_row)
            .optional()?)
    }

    /// Every alarm not yet closed (acknowledged or not), oldest first.
    pub fn open_alarms(&self) -> Result<Vec<Alarm>, StoreError> {
        rows(
            &self.conn(),
            "SELECT * FROM alarms WHERE closed_at IS NULL ORDER BY id",
            [],
            alarm_from_row,
        )
    }

    /// Raises an alarm at its level unless the same one (visit, kind, about, due) already exists. Returns
    /// it if new. An alarm raised above the board (duress) notes at once when nobody can be told there.
    pub fn raise_alarm(
        &self,
        new: NewAlarm<'_>,
        now: DateTime<Utc>,
    ) -> Result<Option<Alarm>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let alarm = raise_alarm_in(&tx, new, now)?;
        if alarm.is_some() {
            tx.commit()?;
        }
        Ok(alarm)
    }

    /// Makes an unacknowledged alarm louder: it reaches the next level ([`AlarmLevel::next`]), or at the top
    /// level it is sent again there. The log says what the office did; deliveries say who was told.
    /// Nothing changes, and `None` comes back, when the alarm is no longer as `seen` (escalated, heard
    /// from, acknowledged or closed since).
    pub fn escalate_alarm(
        &self,
        seen: &Alarm,
        now: DateTime<Utc>,
    ) -> Result<Option<Alarm>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if !still_as_seen(&alarm_in(&tx, seen.id)?, seen) {
            return Ok(None);
        }
        let (school, policy) = visit_school(&tx, &seen.visit)?;
        let step = escalation_step(seen.level, &policy);
        tx.execute_cached(
            "UPDATE alarms SET level = ?2, escalated_at = ?3 WHERE id = ?1",
            params![seen.id, step.level.name(), now.to_rfc3339()],
        )?;
        log(&tx, seen.id, now, step.what, Some(step.level), &step.detail)?;
        if step.level != seen.level {
            note_if_nobody_to_tell(&tx, seen.id, &school, step.level, &policy, now)?;
        }
        let alarm = alarm_in(&tx, seen.id)?;
        tx.commit()?;
        Ok(Some(alarm))
    }

    /// Notes that the staff were heard from again; the alarm stops escalating but stays until closed.
    pub fn note_contact_resumed(&self, id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let changed = tx.execute_cached(
            "UPDATE alarms SET contact_resumed_at = ?2 WHERE id = ?1 AND contact_resumed_at IS NULL",
            params![id, now.to_rfc3339()],
        )?;
        if changed > 0 {
            log(&tx, id, now, step::CONTACT_RESUMED, None, HEARD_FROM)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// A named person says they are handling an alarm: the reminders stop (and deliveries not yet made are
    /// dropped), the alarm stays on the board until it is closed, and the visit stays watched. Refused if
    /// someone already acknowledged it or it is closed.
    pub fn acknowledge_alarm(
        &self,
        id: i64,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Alarm, StoreError> {
        self.acknowledge_alarm_audited(id, by, None, now)
    }

    /// [`SqliteStore::acknowledge_alarm`], with `audit` appended to the audit log in the same transaction.
    pub fn acknowledge_alarm_audited(
        &self,
        id: i64,
        by: &str,
        audit: Option<&crate::audit::NewEntry>,
        now: DateTime<Utc>,
    ) -> Result<Alarm, StoreError> {
        let by = checked_name(by, "acknowledging")?;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let alarm = existing_alarm(&tx, id)?;
        not_already(
            &tx,
            &alarm,
            "acknowledged",
            &alarm.acknowledged_by,
            alarm.acknowledged_at,
        )?;
        acknowledge_in(&tx, id, by, now)?;
        if let Some(entry) = audit {
            crate::audit::append(&tx, entry, now)?;
        }
        let alarm = alarm_in(&tx, id)?;
        tx.commit()?;
        Ok(alarm)
    }

    /// Closes an acknowledged alarm with how it ended, and a note if the person gives one. For a duress
    /// alert raised on a phone, the office's stand-down (`Command::CloseAlerts`) is recorded in the same
    /// transaction, so the alert ends in the visit's state and on the phones at their next sync; every
    /// phone alarm that stand-down ends is closed with it (acknowledged by the same person, if nobody had).
    /// Refused, changing nothing, when the alarm is not acknowledged yet or is already closed.
    pub fn close_alarm(
        &self,
        id: i64,
        by: &StaffId,
        by_name: &str,
        outcome: AlarmOutcome,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<Closing, StoreError> {
        self.close_alarm_audited(id, by, by_name, outcome, note, None, now)
    }

    /// [`SqliteStore::close_alarm`], with `audit` appended to the audit log in the same transaction.
    #[allow(clippy::too_many_arguments)]
    pub fn close_alarm_audited(
        &self,
        id: i64,
        by: &StaffId,
        by_name: &str,
        outcome: AlarmOutcome,
        note: &str,
        audit: Option<&crate::audit::NewEntry>,
        now: DateTime<Utc>,
    ) -> Result<Closing, StoreError> {
        let (by_name, note) = checked_closing(by_name, note)?;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let alarm = existing_alarm(&tx, id)?;
        not_already(&tx, &alarm, "closed", &alarm.closed_by, alarm.closed_at)?;
        not_acknowledged_yet(&alarm)?;
        let mut closing = vec![alarm.clone()];
        let mut stand_down = None;
        if alarm.from_a_phone() {
            let command = lifecycle::Command::CloseAlerts {
                by: by.clone(),
                outcome,
                note: note.to_owned(),
            };
            match record_office_event_in(&tx, &alarm.visit, &command, now) {
                Ok(envelope) => {
                    let others: Vec<Alarm> = {
                        let mut stmt = tx.prepare_cached(
                            "SELECT * FROM alarms WHERE visit_id = ?1 AND kind = 'duress'
                             AND closed_at IS NULL AND id != ?2 ORDER BY id",
                        )?;
                        let rows = stmt
                            .query_map(params![alarm.visit.as_str(), id], alarm_from_row)?
                            .collect::<Result<_, _>>()?;
                        rows
                    };
                    closing.extend(ended_by(&envelope, others));
                    stand_down = Some(envelope);
                }
                // The raiser stood it down from their phone already: there is nothing left to end there.
                Err(StoreError::Invalid(why)) if nothing_to_stand_down(&why) => {}
                Err(other) => return Err(other),
            }
        }
        let mut closed = Vec::with_capacity(closing.len());
        for alarm in closing {
            if alarm.acknowledged_at.is_none() {
                acknowledge_in(&tx, alarm.id, by_name, now)?;
            }
            tx.execute_cached(
                "UPDATE alarms SET closed_by = ?2, closed_at = ?3, outcome = ?4, close_note = ?5
                 WHERE id = ?1",
                params![
                    alarm.id,
                    by_name,
                    now.to_rfc3339(),
                    outcome.as_str(),
                    (!note.is_empty()).then_some(note)
                ],
            )?;
            let detail = closed_detail(by_name, outcome, stand_down.is_some());
            log(&tx, alarm.id, now, step::CLOSED, None, &detail)?;
            closed.push(alarm_in(&tx, alarm.id)?);
        }
        if let Some(entry) = audit {
            crate::audit::append(&tx, entry, now)?;
        }
        tx.commit()?;
        Ok(Closing {
            alarms: closed,
            stand_down,
        })
    }

    /// The history of every alarm of a visit, in order.
    pub fn alarm_log(&self, visit: &VisitId) -> Result<Vec<AlarmLogEntry>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT l.id, l.alarm_id, l.at, l.what, l.level, l.detail FROM alarm_log l
             JOIN alarms a ON a.id = l.alarm_id WHERE a.visit_id = ?1 ORDER BY l.id",
        )?;
        let entries = stmt
            .query_map([visit.as_str()], |row| {
                let level: Option<String> = row.get(4)?;
                Ok(AlarmLogEntry {
                    id: row.get(0)?,
                    alarm: row.get(1)?,
                    at: time(Some(row.get(2)?))?.unwrap_or_default(),
                    what: row.get(3)?,
                    level: level.as_deref().and_then(AlarmLevel::parse),
                    detail: row.get(5)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(entries)
    }

    /// Visits the escalation engine must watch: under way, or with an alarm nobody has acknowledged yet.
    pub fn visits_to_watch(&self) -> Result<Vec<VisitId>, StoreError> {
        ids(
            &self.conn(),
            "SELECT id FROM visits WHERE phase IN ('authorised', 'departed', 'outside', 'in_visit', 'checked_in', 'duress')
             UNION SELECT visit_id FROM alarms WHERE acknowledged_at IS NULL AND closed_at IS NULL",
            [],
        )
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
        let (_, policy) = visit_school(&conn, &visit.id)?;
        Ok(Some((visit, state, policy)))
    }
}

fn acknowledge_in(
    tx: &Transaction<'_>,
    id: i64,
    by: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    tx.execute_cached(
        "UPDATE alarms SET acknowledged_by = ?2, acknowledged_at = ?3 WHERE id = ?1",
        params![id, by, now.to_rfc3339()],
    )?;
    log(
        tx,
        id,
        now,
        step::ACKNOWLEDGED,
        None,
        &acknowledged_detail(by),
    )
}

pub(crate) fn log(
    tx: &Connection,
    alarm: i64,
    at: DateTime<Utc>,
    what: &str,
    level: Option<AlarmLevel>,
    detail: &str,
) -> Result<(), StoreError> {
    tx.execute_cached(
        "INSERT INTO alarm_log (alarm_id, at, what, level, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            alarm,
            at.to_rfc3339(),
            what,
            level.map(AlarmLevel::name),
            detail
        ],
    )?;
    Ok(())
}

/// [`SqliteStore::raise_alarm`] inside a transaction the caller holds and commits: `ingest` raises a phone's
/// duress alarm in the transaction that stores the alert, so both reach the disk with one fsync.
pub(crate) fn raise_alarm_in(
    tx: &Connection,
    new: NewAlarm<'_>,
    now: DateTime<Utc>,
) -> Result<Option<Alarm>, StoreError> {
    let NewAlarm {
        visit,
        kind,
        about,
        due_at,
        level,
    } = new;
    let inserted = tx.execute_cached(
        "INSERT OR IGNORE INTO alarms (visit_id, kind, about, due_at, raised_at, level, escalated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            visit.as_str(),
            kind.as_str(),
            about,
            due_at.to_rfc3339(),
            now.to_rfc3339(),
            level.name(),
            (level != AlarmLevel::Board).then(|| now.to_rfc3339())
        ],
    )?;
    if inserted == 0 {
        return Ok(None);
    }
    let id = tx.last_insert_rowid();
    let (school, policy) = visit_school_and_policy(tx, visit)?;
    let detail = raised_detail(&new, &school, &policy);
    let school = school.id;
    log(tx, id, now, step::RAISED, Some(level), &detail)?;
    note_if_nobody_to_tell(tx, id, &school, level, &policy, now)?;
    Ok(Some(alarm_in(tx, id)?))
}
