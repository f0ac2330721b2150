//! Alarms in the store: raised on silence or duress, escalated level by level while nobody acknowledges
//! them, acknowledged by the person handling them, and closed with an outcome. Every step is logged for the
//! visit's timeline, as what the office did: a log line never says anyone was told (only deliveries do,
//! see [`crate::reach`]), and where no notification target covers a level the alarm reaches, the same
//! transaction logs "nobody_to_tell".

use chrono::{DateTime, Utc};
use doorstep_core::domain::{School, Visit};
use doorstep_core::event::EventEnvelope;
use doorstep_core::ids::{SchoolId, StaffId, VisitId};
use doorstep_core::lifecycle::{self, AlarmOutcome, Duress, LifecycleError, VisitState};
use doorstep_core::policy::Policy;
use doorstep_core::schedule::AlarmLevel;
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction, TransactionBehavior};
use serde::Serialize;

use crate::store::{
    bad_column, ids, record_office_event_in, rows, school_and_policy, CachedSql, SqliteStore,
    StoreError,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    /// Silence past a deadline plus grace.
    Overdue,
    /// A duress alert from a phone.
    Duress,
}

impl AlarmKind {
    const ALL: [AlarmKind; 2] = [AlarmKind::Overdue, AlarmKind::Duress];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AlarmKind::Overdue => "overdue",
            AlarmKind::Duress => "duress",
        }
    }

    /// The kind stored as `name` ([`AlarmKind::as_str`]).
    pub(crate) fn parse(name: &str) -> Option<AlarmKind> {
        AlarmKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }
}

/// An alarm to raise: what it is about and the level it starts at. The same visit, kind, about and due
/// make the same alarm, which is raised only once.
#[derive(Debug, Clone, Copy)]
pub struct NewAlarm<'a> {
    pub visit: &'a VisitId,
    pub kind: AlarmKind,
    /// Overdue: what the office was waiting for. Duress: who raised it.
    pub about: &'a str,
    /// Overdue: the missed deadline. Duress: when it was raised.
    pub due_at: DateTime<Utc>,
    pub level: AlarmLevel,
}

impl<'a> NewAlarm<'a> {
    /// Silence past a deadline (`about` what the office waited for, due at `due_at`): on the board first.
    pub fn overdue(visit: &'a VisitId, about: &'a str, due_at: DateTime<Utc>) -> Self {
        Self {
            visit,
            kind: AlarmKind::Overdue,
            about,
            due_at,
            level: AlarmLevel::Board,
        }
    }

    /// A phone's duress alert: straight to the top, keyed by who raised it and when, so the sync that
    /// stored it and the escalation engine never raise it twice.
    pub fn duress(visit: &'a VisitId, alert: &'a Duress) -> Self {
        Self {
            visit,
            kind: AlarmKind::Duress,
            about: alert.raised_by.as_str(),
            due_at: alert.raised_at,
            level: AlarmLevel::Authoriser,
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
    /// The level it has reached (the office's step, not a claim that anyone was told).
    pub level: AlarmLevel,
    /// When it reached its level, or was last reminded there.
    pub escalated_at: Option<DateTime<Utc>>,
    pub contact_resumed_at: Option<DateTime<Utc>>,
    /// Who is handling it: named when it was acknowledged.
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub closed_by: Option<String>,
    pub closed_at: Option<DateTime<Utc>>,
    /// How it ended; `None` on an open alarm, or one closed before outcomes were recorded.
    pub outcome: Option<AlarmOutcome>,
    pub close_note: Option<String>,
}

/// How a duress alarm raised at the office, when reception hears the code phrase on the phone, starts its
/// `about`; the name of the person who heard it follows in brackets.
pub const HEARD_BY_RECEPTION: &str = "reception heard the code phrase";

/// The log's words when the staff of an escalating alarm's visit are heard from again.
pub const HEARD_FROM: &str = "the staff were heard from again";

/// The alarm log's names for the office's steps.
pub mod step {
    pub const RAISED: &str = "raised";
    /// The alarm reached a higher level (the log line's `level`).
    pub const REACHED_LEVEL: &str = "reached_level";
    /// Still not acknowledged at the top level: sent again there.
    pub const REMINDED: &str = "reminded";
    /// No notification target covers the level the alarm reached: nobody outside the board can be told.
    pub const NOBODY_TO_TELL: &str = "nobody_to_tell";
    pub const CONTACT_RESUMED: &str = "contact_resumed";
    pub const ACKNOWLEDGED: &str = "acknowledged";
    pub const CLOSED: &str = "closed";
    /// A delivery's attempts (see `notify`).
    pub const NOTIFIED: &str = "notified";
    pub const NOTIFICATION_FAILED: &str = "notification_failed";
    pub const NOTIFICATION_CANCELLED: &str = "notification_cancelled";
}

/// Who an alarm level stands for, in words: "the office", "the headteacher", "the deputy and further
/// contacts".
pub fn level_audience(level: AlarmLevel, policy: &Policy) -> String {
    match level {
        AlarmLevel::Board => "the office".into(),
        AlarmLevel::Authoriser => format!("the {}", policy.authoriser.label()),
        AlarmLevel::Further => "the deputy and further contacts".into(),
    }
}

impl Alarm {
    /// A duress alarm raised at the office from the code phrase heard on the phone, not from a phone's alert.
    /// The staff cannot stand it down from their phones, so it escalates until someone acknowledges it.
    pub fn heard_by_reception(&self) -> bool {
        self.kind == AlarmKind::Duress && self.about.starts_with(HEARD_BY_RECEPTION)
    }

    /// A duress alert raised on a phone: closing it also stands the alert down on the phones.
    pub fn from_a_phone(&self) -> bool {
        self.kind == AlarmKind::Duress && !self.heard_by_reception()
    }

    /// On the board until it is closed with an outcome.
    pub fn is_open(&self) -> bool {
        self.closed_at.is_none()
    }

    /// Open and nobody has said they are handling it: the board sounds for it.
    pub fn needs_someone(&self) -> bool {
        self.is_open() && self.acknowledged_at.is_none()
    }

    /// Still getting louder: nobody is handling it, and nobody has been heard from since.
    pub fn escalating(&self) -> bool {
        self.needs_someone() && self.contact_resumed_at.is_none()
    }
}

/// One line of an alarm's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct AlarmLogEntry {
    pub id: i64,
    pub alarm: i64,
    pub at: DateTime<Utc>,
    pub what: String,
    /// The level a raise, an escalation, a reminder or a "nobody to tell" concerns.
    pub level: Option<AlarmLevel>,
    pub detail: String,
}

/// What closing an alarm did: the alarms it closed (more than one when a phone's duress alerts end
/// together) and the office's stand-down event, for a duress alert raised on a phone.
#[derive(Debug, Clone)]
pub struct Closing {
    pub alarms: Vec<Alarm>,
    pub stand_down: Option<EventEnvelope>,
}

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

/// The refusal of a step someone has `done` already (`who` at `at`), in the words both stores use; `Ok`
/// when nobody has.
pub(crate) fn already_done(
    alarm: &Alarm,
    done: &str,
    (who, at): (&Option<String>, Option<DateTime<Utc>>),
    school: &School,
) -> Result<(), StoreError> {
    let (Some(who), Some(at)) = (who, at) else {
        return Ok(());
    };
    Err(StoreError::Invalid(format!(
        "alarm {} was already {done} by {who} at {}",
        alarm.id,
        school.time_zone.format(at, "%H:%M %Z")
    )))
}

/// The closer's name and note as stored: a name of 1 to 100 characters, a note of at most 2,000.
pub(crate) fn checked_closing<'a>(
    by_name: &'a str,
    note: &'a str,
) -> Result<(&'a str, &'a str), StoreError> {
    let by_name = checked_name(by_name, "closing")?;
    let note = note.trim();
    if note.chars().count() > 2000 {
        return Err(StoreError::Invalid(
            "the note is at most 2000 characters".into(),
        ));
    }
    Ok((by_name, note))
}

/// An alarm is closed only once someone has said they are handling it.
pub(crate) fn not_acknowledged_yet(alarm: &Alarm) -> Result<(), StoreError> {
    if alarm.acknowledged_at.is_none() {
        return Err(StoreError::Invalid(
            "acknowledge the alarm first (say who is handling it), then close it with how it ended"
                .into(),
        ));
    }
    Ok(())
}

/// The visit's other open phone alarms that the office's stand-down (`stand_down`, an `AlertsClosed`)
/// ends: one for each alert it closes, matched by who raised it and when.
pub(crate) fn ended_by(stand_down: &EventEnvelope, others: Vec<Alarm>) -> Vec<Alarm> {
    let lifecycle::VisitEvent::AlertsClosed { alerts, .. } = &stand_down.event else {
        return Vec::new();
    };
    others
        .into_iter()
        .filter(|other| {
            alerts
                .iter()
                .any(|a| a.raised_by.as_str() == other.about && a.raised_at == other.due_at)
        })
        .collect()
}

/// Whether a refused stand-down only says the raiser stood the alert down from their phone already, so
/// there is nothing left to end there.
pub(crate) fn nothing_to_stand_down(why: &str) -> bool {
    why == LifecycleError::NoDuress.to_string()
}

/// The alarm log's words when `by_name` closes an alarm with `outcome`.
pub(crate) fn closed_detail(by_name: &str, outcome: AlarmOutcome, stood_down: bool) -> String {
    let mut detail = format!("closed by {by_name}: {}", outcome.label().to_lowercase());
    if stood_down {
        detail.push_str("; the alert is stood down on the phones");
    }
    detail
}

/// The alarm log's words when `by` acknowledges an alarm.
pub(crate) fn acknowledged_detail(by: &str) -> String {
    format!("{by} is handling it")
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

fn minutes_words(delta: chrono::TimeDelta) -> String {
    match delta.num_minutes() {
        1 => "1 minute".into(),
        m => format!("{m} minutes"),
    }
}

/// One step louder for an unacknowledged alarm: the level it reaches, the log's name for the step, and
/// the log's words. Both backends write exactly this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscalationStep {
    pub level: AlarmLevel,
    pub what: &'static str,
    pub detail: String,
}

/// The step an alarm at `from` takes when nobody acknowledged it in time: the next level, or, at the top,
/// a reminder there.
pub fn escalation_step(from: AlarmLevel, policy: &Policy) -> EscalationStep {
    let level = from.next();
    if level == from {
        return EscalationStep {
            level,
            what: step::REMINDED,
            detail: format!(
                "still not acknowledged: sent again at the level of {}",
                level_audience(level, policy)
            ),
        };
    }
    let waited = match from {
        AlarmLevel::Board => policy.escalate_to_authoriser_after.duration(),
        _ => policy.escalate_further_after.duration(),
    };
    EscalationStep {
        level,
        what: step::REACHED_LEVEL,
        detail: format!(
            "not acknowledged at the level of {} within {}: the alarm reached the level of {}",
            level_audience(from, policy),
            minutes_words(waited),
            level_audience(level, policy)
        ),
    }
}

/// Whether an alarm as it is now is still as the engine saw it when it decided to escalate: same level,
/// same last step, and still escalating.
pub fn still_as_seen(now: &Alarm, seen: &Alarm) -> bool {
    now.escalating() && now.level == seen.level && now.escalated_at == seen.escalated_at
}

/// The log's words for a new alarm, on the school's clock (`school`).
pub fn raised_detail(new: &NewAlarm<'_>, school: &School, policy: &Policy) -> String {
    let NewAlarm {
        kind,
        about,
        due_at,
        level,
        ..
    } = *new;
    // Kept as words in the log, so written on the school's clock (with its zone's abbreviation).
    let due = school.time_zone.format(due_at, "%H:%M:%S %Z");
    let mut detail = match kind {
        AlarmKind::Overdue => format!("no {about} since it was due at {due}"),
        AlarmKind::Duress if about.starts_with(HEARD_BY_RECEPTION) => {
            format!("duress: {about} at {due}")
        }
        AlarmKind::Duress => format!("duress raised by {about} at {due}"),
    };
    if level != AlarmLevel::Board {
        detail.push_str(&format!(
            "; raised at the level of {} at once",
            level_audience(level, policy)
        ));
    }
    detail
}

/// The log's words when an alarm reaches `level` and no notification target covers it.
pub fn nobody_to_tell_detail(level: AlarmLevel, policy: &Policy) -> String {
    format!(
        "no contact is set up for {}: nobody outside the board can be told",
        level_audience(level, policy)
    )
}

/// The column of `notification_targets` saying a target wants alarms at `level`.
pub fn wants_level_column(level: AlarmLevel) -> &'static str {
    match level {
        AlarmLevel::Board => "wants_board",
        AlarmLevel::Authoriser => "wants_authoriser",
        AlarmLevel::Further => "wants_further",
    }
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

/// A person's name as given for acknowledging or closing: 1 to 100 characters.
pub(crate) fn checked_name<'a>(name: &'a str, doing: &str) -> Result<&'a str, StoreError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(StoreError::Invalid(format!(
            "say who is {doing} the alarm (1 to 100 characters)"
        )));
    }
    Ok(name)
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
