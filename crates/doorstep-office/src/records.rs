//! Records and reports: each visit's full timeline, its write-up exported for CPOMS (text, PDF) and as CSV,
//! and the monthly report of visits, missed check-ins and alarms.
//!
//! Everything here is a pure function of what the store holds; the `impl SqliteStore` blocks only gather the
//! inputs. No routes yet: those come with office sign-in.
//!
//! - [`Timeline`]: every stored event and every alarm step of a visit, in the order the office saw them.
//! - [`cpoms`]: [`cpoms_text`], [`cpoms_pdf`] and [`write_ups_csv`].
//! - [`monthly`]: the monthly report, [`MonthlyReport`].
//! - [`pdf`]: the CPOMS PDF set with krilla in embedded Unicode fonts (Latin, Arabic, CJK).

pub mod cpoms;
pub mod monthly;
pub mod pdf;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use doorstep_core::domain::{SchoolTimeZone, Visit};
use doorstep_core::event::EventEnvelope;
use doorstep_core::ids::{DeviceId, DeviceSeq, EventId, StaffId, VisitId};
use doorstep_core::lifecycle::{CancelReason, DuressVia, VisitEvent, VisitState};
use doorstep_core::schedule::{AlarmLevel, Expecting};
use serde::Serialize;

use crate::alarms::{step, Alarm, AlarmKind, AlarmLogEntry};
use crate::notices::Notice;
use crate::reach;
use crate::store::{StoredEvent, OFFICE_DEVICE};

pub use cpoms::{cpoms_pdf, cpoms_text, latest_write_up, write_ups_csv, LatestWriteUp};
pub use monthly::{MonthError, MonthlyReport, ReportMonth, FALSE_ALARM_DEFINITION};

/// Where a timeline entry came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum Source {
    /// Recorded on a member of staff's phone.
    Phone { device: DeviceId },
    /// Decided at the office: an authorisation, or an alarm step the office took.
    Office,
}

/// One step in an alarm's life, as the alarm log names it: what the office did, and how each delivery went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlarmStep {
    Raised,
    /// Nobody acknowledged it in time: it reached a higher level.
    ReachedLevel,
    /// Still not acknowledged at the top level: sent again there.
    Reminded,
    /// No notification target covered the level it reached.
    NobodyToTell,
    ContactResumed,
    Acknowledged,
    Closed,
    /// A delivery was accepted by its receiver.
    Notified,
    NotificationFailed,
    NotificationCancelled,
    /// A step this version does not know by name (written by a newer office), kept rather than dropped.
    Other(String),
}

impl AlarmStep {
    fn from_log(what: &str) -> Self {
        match what {
            step::RAISED => AlarmStep::Raised,
            step::REACHED_LEVEL => AlarmStep::ReachedLevel,
            step::REMINDED => AlarmStep::Reminded,
            step::NOBODY_TO_TELL => AlarmStep::NobodyToTell,
            step::CONTACT_RESUMED => AlarmStep::ContactResumed,
            step::ACKNOWLEDGED => AlarmStep::Acknowledged,
            step::CLOSED => AlarmStep::Closed,
            step::NOTIFIED => AlarmStep::Notified,
            step::NOTIFICATION_FAILED => AlarmStep::NotificationFailed,
            step::NOTIFICATION_CANCELLED => AlarmStep::NotificationCancelled,
            other => AlarmStep::Other(other.to_owned()),
        }
    }
}

/// What a timeline entry is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(tag = "item", rename_all = "snake_case")]
pub enum TimelineItem {
    /// A stored visit event, with the identity the lifecycle orders it by.
    Event {
        id: EventId,
        device: DeviceId,
        seq: DeviceSeq,
        event: VisitEvent,
    },
    /// A step of one of the visit's alarms.
    Alarm {
        alarm: i64,
        kind: AlarmKind,
        step: AlarmStep,
    },
}

/// One line of a visit's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct TimelineEntry {
    /// When the office received the event or took the alarm step; the timeline is in this order.
    pub office_time: DateTime<Utc>,
    /// The phone's own clock when it recorded the event (the office's for its own events); `None` for alarm
    /// steps, which only the office takes.
    pub device_time: Option<DateTime<Utc>>,
    pub source: Source,
    /// Who did it, by name: the member of staff, or whoever acknowledged an alarm. `None` for steps the
    /// office's escalation took by itself.
    pub who: Option<String>,
    /// What happened, in plain words, without free text (so a family is never named on a board).
    pub what: String,
    /// Free text that came with it (a cancellation or stand-down note), kept apart from `what`.
    pub note: Option<String>,
    pub item: TimelineItem,
}

impl TimelineEntry {
    /// The visit event, when this entry is one.
    pub fn event(&self) -> Option<&VisitEvent> {
        match &self.item {
            TimelineItem::Event { event, .. } => Some(event),
            TimelineItem::Alarm { .. } => None,
        }
    }

    /// "Who what", or just "what" for the office's own steps.
    pub fn sentence(&self) -> String {
        match &self.who {
            Some(who) => format!("{who} {}", self.what),
            None => self.what.clone(),
        }
    }

    /// The order the lifecycle replays events in (device time, device, sequence): the order every phone and
    /// the office agree on. Alarm steps sort by office time.
    fn canonical_key(&self) -> (DateTime<Utc>, String, u64) {
        match &self.item {
            TimelineItem::Event { device, seq, .. } => (
                self.device_time.unwrap_or(self.office_time),
                device.to_string(),
                seq.get(),
            ),
            TimelineItem::Alarm { .. } => (self.office_time, String::new(), 0),
        }
    }
}

/// Everything that happened to one visit: every stored event and every alarm step, merged into one list.
///
/// Ordered by the office's receive time, not by the phones' clocks: a phone's clock may be wrong, and a phone
/// without signal delivers its events late, but the office's clock is one clock, and it is the clock the alarm
/// log is written with, so events and alarm steps interleave truthfully ("the check-in arrived after the
/// alarm was raised"). Each event's device time is kept beside it. Events received at the same instant keep
/// the order they were stored in, before any alarm step taken at that instant (the escalation reacts to
/// events, never the other way round).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Timeline {
    pub visit: VisitId,
    /// The school's clock, on which the entries' words and the text are written (the entries' own times
    /// stay UTC instants).
    pub time_zone: SchoolTimeZone,
    pub entries: Vec<TimelineEntry>,
}

impl Timeline {
    /// Merges a visit's stored events (in the order stored), its alarms and its alarm log. `names` turns staff
    /// ids into names; an id without a name is shown as the id.
    pub fn build(
        visit: VisitId,
        zone: SchoolTimeZone,
        events: &[StoredEvent],
        alarms: &[Alarm],
        log: &[AlarmLogEntry],
        names: &BTreeMap<StaffId, String>,
    ) -> Self {
        let name = |id: &StaffId| {
            names
                .get(id)
                .cloned()
                .unwrap_or_else(|| id.as_str().to_owned())
        };
        let mut entries = Vec::with_capacity(events.len() + log.len());
        let mut written_up_before = false;
        for stored in events {
            let envelope = &stored.envelope;
            let (what, note) = event_words(&zone, &envelope.event, &name, written_up_before);
            written_up_before |= matches!(envelope.event, VisitEvent::WrittenUp { .. });
            entries.push(TimelineEntry {
                office_time: stored.received_at,
                device_time: Some(envelope.recorded_at),
                source: source_of(envelope),
                who: Some(name(envelope.event.actor())),
                what,
                note,
                item: TimelineItem::Event {
                    id: envelope.id,
                    device: envelope.device.clone(),
                    seq: envelope.seq,
                    event: envelope.event.clone(),
                },
            });
        }
        for step in log {
            let Some(alarm) = alarms.iter().find(|a| a.id == step.alarm) else {
                continue;
            };
            let kind_step = AlarmStep::from_log(&step.what);
            let (who, what) = alarm_words(&zone, alarm, &kind_step, step, &name);
            let note = match kind_step {
                AlarmStep::Closed => alarm.close_note.clone(),
                _ => None,
            };
            entries.push(TimelineEntry {
                office_time: step.at,
                device_time: None,
                source: Source::Office,
                who,
                what,
                note,
                item: TimelineItem::Alarm {
                    alarm: alarm.id,
                    kind: alarm.kind,
                    step: kind_step,
                },
            });
        }
        // Stable: equal office times keep events (in stored order) before alarm steps (in log order).
        entries.sort_by_key(|entry| entry.office_time);
        Self {
            visit,
            time_zone: zone,
            entries,
        }
    }

    /// The visit events in the lifecycle's canonical order (device time, device, sequence).
    pub fn events_in_canonical_order(&self) -> Vec<&TimelineEntry> {
        let mut events: Vec<&TimelineEntry> = self
            .entries
            .iter()
            .filter(|entry| entry.event().is_some())
            .collect();
        events.sort_by_cached_key(|entry| entry.canonical_key());
        events
    }

    /// The timeline as plain text, one line per entry: office time, the phone's time when it differs, where
    /// it came from, and what happened.
    pub fn to_text(&self) -> String {
        let zone = &self.time_zone;
        let mut out = format!(
            "Timeline of visit {} (office receive time, the school's clock: {})\n",
            self.visit,
            zone.name()
        );
        for entry in &self.entries {
            let device = match entry.device_time {
                Some(at) if at != entry.office_time => {
                    format!(" (phone clock {})", zone.format(at, "%Y-%m-%d %H:%M:%S %Z"))
                }
                _ => String::new(),
            };
            let source = match &entry.source {
                Source::Phone { device } => format!("phone {device}"),
                Source::Office => "office".to_owned(),
            };
            out.push_str(&format!(
                "{}{device}  [{source}]  {}\n",
                zone.format(entry.office_time, "%Y-%m-%d %H:%M:%S %Z"),
                entry.sentence()
            ));
            if let Some(note) = &entry.note {
                for line in note.lines() {
                    out.push_str(&format!("    note: {line}\n"));
                }
            }
        }
        out
    }
}

fn source_of(envelope: &EventEnvelope) -> Source {
    if envelope.device.as_str() == OFFICE_DEVICE {
        Source::Office
    } else {
        Source::Phone {
            device: envelope.device.clone(),
        }
    }
}

/// A time as the records write it, on the school's clock with its zone's abbreviation: "14:02 GMT",
/// "13:45 NZDT" (the write-up's own words for a time).
pub(crate) use doorstep_core::write_up::clock;

fn names_list(staff: &[StaffId], name: &dyn Fn(&StaffId) -> String) -> String {
    let names: Vec<String> = staff.iter().map(name).collect();
    match names.as_slice() {
        [] => "nobody".to_owned(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// A visit event in plain words, and the free text that came with it.
fn event_words(
    zone: &SchoolTimeZone,
    event: &VisitEvent,
    name: &dyn Fn(&StaffId) -> String,
    written_up_before: bool,
) -> (String, Option<String>) {
    let note = |text: &str| (!text.trim().is_empty()).then(|| text.to_owned());
    match event {
        VisitEvent::Authorised {
            lone_visit_approved,
            ..
        } => (
            if *lone_visit_approved {
                "authorised the visit, approving it as a lone visit".to_owned()
            } else {
                "authorised the visit".to_owned()
            },
            None,
        ),
        VisitEvent::Declined { reason, .. } => ("declined the visit".to_owned(), note(reason)),
        VisitEvent::AuthorisationWithdrawn { reason, .. } => {
            ("withdrew the authorisation".to_owned(), note(reason))
        }
        VisitEvent::CalledOff { reason, .. } => ("called the visit off".to_owned(), note(reason)),
        VisitEvent::Rescheduled { agreed_time, .. } => (
            format!("moved the agreed time to {}", clock(zone, *agreed_time)),
            None,
        ),
        VisitEvent::BriefingUpdated { version, .. } => (
            format!("updated the risk assessment and briefing (version {version})"),
            None,
        ),
        VisitEvent::AlertsClosed {
            outcome,
            note: text,
            ..
        } => (
            format!("closed the alarm: {}", outcome.label().to_lowercase()),
            note(text),
        ),
        VisitEvent::RunningLate {
            expected_arrival, ..
        } => (
            format!(
                "is running late: expected at {}",
                clock(zone, *expected_arrival)
            ),
            None,
        ),
        VisitEvent::BriefingRead { ticked, .. } => (
            format!(
                "read the briefing and ticked its checklist ({} of {})",
                ticked.len(),
                doorstep_core::lifecycle::BriefingCheck::ALL.len()
            ),
            None,
        ),
        VisitEvent::Departed {
            expected_arrival,
            expected_end,
            ..
        } => (
            format!(
                "left for the visit, expecting to arrive at {} and finish by {}",
                clock(zone, *expected_arrival),
                clock(zone, *expected_end)
            ),
            None,
        ),
        VisitEvent::ArrivedOutside { .. } => ("arrived outside".to_owned(), None),
        VisitEvent::ArrivedTogether { staff, .. } => (
            format!("confirmed arrival together: {}", names_list(staff, name)),
            None,
        ),
        VisitEvent::VisitStarted { staff, .. } => {
            (format!("went in: {}", names_list(staff, name)), None)
        }
        VisitEvent::CheckedIn { .. } => ("checked in".to_owned(), None),
        VisitEvent::CheckInMissed { due_at, .. } => (
            format!("missed the check-in due at {}", clock(zone, *due_at)),
            None,
        ),
        VisitEvent::DuressRaised { via, .. } => (
            match via {
                DuressVia::CodePhraseButton => "raised DURESS (code phrase button)".to_owned(),
                DuressVia::DuressPin => "raised DURESS (duress PIN)".to_owned(),
            },
            None,
        ),
        VisitEvent::DuressStoodDown {
            note: text, alerts, ..
        } => (
            match alerts.len() {
                1 => "stood down the duress alert".to_owned(),
                n => format!("stood down {n} duress alerts"),
            },
            note(text),
        ),
        VisitEvent::Left { .. } => ("left the property".to_owned(), None),
        VisitEvent::Cancelled {
            reason, note: text, ..
        } => (
            format!("cancelled the visit: {}", cancel_words(*reason)),
            note(text),
        ),
        VisitEvent::WrittenUp { write_up, .. } => {
            let mut what = if written_up_before {
                "corrected the write-up".to_owned()
            } else {
                "wrote up the visit".to_owned()
            };
            if write_up.safeguarding_concern {
                what.push_str(", flagging a SAFEGUARDING CONCERN");
            }
            if write_up.incident.is_some() {
                what.push_str(", reporting an incident");
            }
            (what, None)
        }
    }
}

fn cancel_words(reason: CancelReason) -> String {
    reason.label().to_lowercase()
}

/// What an overdue alarm was waiting for, in words ("check-in"), from the name the alarm stores.
fn expecting_words(about: &str) -> String {
    serde_json::from_value::<Expecting>(serde_json::Value::String(about.to_owned()))
        .map(|expecting| expecting.label().to_owned())
        .unwrap_or_else(|_| about.replace('_', " "))
}

fn alarm_name(alarm: &Alarm, name: &dyn Fn(&StaffId) -> String) -> String {
    match alarm.kind {
        AlarmKind::Overdue => format!("overdue alarm ({})", expecting_words(&alarm.about)),
        AlarmKind::Duress => {
            let who = alarm
                .about
                .parse::<StaffId>()
                .map(|id| name(&id))
                .unwrap_or_else(|_| alarm.about.clone());
            format!("duress alarm for {who}")
        }
    }
}

/// An alarm step in plain words: who took it (for an acknowledgement or a close) and what the office did.
/// Who was told is never said here except from a delivery's own line.
fn alarm_words(
    zone: &SchoolTimeZone,
    alarm: &Alarm,
    step: &AlarmStep,
    entry: &AlarmLogEntry,
    name: &dyn Fn(&StaffId) -> String,
) -> (Option<String>, String) {
    let alarm_name = alarm_name(alarm, name);
    let capitalised = capitalise(&alarm_name);
    match step {
        AlarmStep::Raised => {
            let why = match alarm.kind {
                AlarmKind::Overdue => {
                    format!(
                        "nothing heard since it was due at {}",
                        clock(zone, alarm.due_at)
                    )
                }
                AlarmKind::Duress => {
                    format!("raised on the phone at {}", clock(zone, alarm.due_at))
                }
            };
            let at_once = match entry.level {
                Some(AlarmLevel::Authoriser) => "; at the authoriser's level at once",
                Some(AlarmLevel::Further) => "; at the further contacts' level at once",
                _ => "",
            };
            (None, format!("{capitalised} raised: {why}{at_once}"))
        }
        AlarmStep::ReachedLevel => (None, format!("{capitalised}: {}", entry.detail)),
        AlarmStep::Reminded => (None, format!("{capitalised}: {}", entry.detail)),
        AlarmStep::NobodyToTell => (None, format!("{capitalised}: {}", entry.detail)),
        AlarmStep::ContactResumed => (
            None,
            format!("{capitalised}: the staff were heard from again"),
        ),
        AlarmStep::Acknowledged => (
            Some(
                alarm
                    .acknowledged_by
                    .clone()
                    .unwrap_or_else(|| "someone".to_owned()),
            ),
            format!("acknowledged the {alarm_name}: handling it"),
        ),
        AlarmStep::Closed => (
            Some(
                alarm
                    .closed_by
                    .clone()
                    .unwrap_or_else(|| "someone".to_owned()),
            ),
            match alarm.outcome {
                Some(outcome) => format!(
                    "closed the {alarm_name}: {}",
                    outcome.label().to_lowercase()
                ),
                None => format!("closed the {alarm_name}"),
            },
        ),
        AlarmStep::Notified => (None, format!("{capitalised}: delivered: {}", entry.detail)),
        AlarmStep::NotificationFailed => (
            None,
            format!("{capitalised}: delivery failed: {}", entry.detail),
        ),
        AlarmStep::NotificationCancelled => (
            None,
            format!("{capitalised}: delivery stopped: {}", entry.detail),
        ),
        AlarmStep::Other(what) => (None, format!("{capitalised}: {what} ({})", entry.detail)),
    }
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// One visit with everything the records need: what was planned, its state, its timeline, its alarms and
/// safeguarding notices, and who was told of each (from the deliveries, in the records' words on the
/// school's clock).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct VisitRecord {
    pub visit: Visit,
    pub state: VisitState,
    pub timeline: Timeline,
    pub alarms: Vec<Alarm>,
    /// Who was told of each alarm: (alarm id, lines).
    pub alarms_told: Vec<(i64, Vec<String>)>,
    /// Alarms whose reach included a level nobody could be told at, or a delivery that never landed.
    pub alarms_not_reached: Vec<i64>,
    /// Alarms that reached someone outside the board (a delivery accepted).
    pub alarms_delivered: Vec<i64>,
    pub notices: Vec<NoticeRecord>,
    /// The school's time zone: the clock every time in the record's words is on.
    pub time_zone: SchoolTimeZone,
    /// The school's record system, as its policy names it (`Policy::record_system`): the write-up's title
    /// says where it goes.
    pub record_system: String,
}

/// A safeguarding notice and where it went, in the records' words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct NoticeRecord {
    pub notice: Notice,
    /// "Sent to the designated safeguarding lead (dsl@…) 14:02 GMT by email, delivered", or why not.
    pub told: Vec<String>,
    /// At least one delivery was accepted by its receiver.
    pub passed_on: bool,
}

/// Who was told of an alarm, as the records say it.
pub(crate) fn alarm_record_words(zone: &SchoolTimeZone, line: &reach::Line) -> String {
    reach::words(
        line,
        &|at| clock(zone, at),
        "Nobody outside the board could be told",
    )
}

/// Where a notice went, as the records say it.
pub(crate) fn notice_record_words(zone: &SchoolTimeZone, line: &reach::Line) -> String {
    reach::words(line, &|at| clock(zone, at), "Not yet passed on")
}
