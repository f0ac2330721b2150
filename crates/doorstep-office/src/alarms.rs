//! Alarms in the store: raised on silence or duress, escalated level by level while nobody acknowledges
//! them, acknowledged by the person handling them, and closed with an outcome. Every step is logged for the
//! visit's timeline, as what the office did: a log line never says anyone was told (only deliveries do,
//! see [`crate::reach`]), and where no notification target covers a level the alarm reaches, the same
//! transaction logs "nobody_to_tell".

use chrono::{DateTime, Utc};
use doorstep_core::domain::School;
use doorstep_core::event::EventEnvelope;
use doorstep_core::ids::VisitId;
use doorstep_core::lifecycle::{self, AlarmOutcome, Duress, LifecycleError};
use doorstep_core::policy::Policy;
use doorstep_core::schedule::AlarmLevel;
use serde::Serialize;

pub(crate) use crate::store::sqlite::alarms::{
    alarm_from_row, column_time, log, raise_alarm_in, time,
};
use crate::store::StoreError;

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
