//! The words the dashboard uses for times, visit states and alarms, so every page says them alike.

use chrono::{DateTime, TimeDelta, Utc};
use doorstep_core::domain::{SchoolTimeZone, Visit};
use doorstep_core::ids::StaffId;
use doorstep_core::lifecycle::VisitState;
use doorstep_core::policy::Policy;
use doorstep_core::schedule::{parse_about, Deadline, Expecting};

use crate::alarms::{level_audience, step, Alarm, AlarmKind, AlarmLogEntry, HEARD_BY_RECEPTION};
use crate::reach;

/// Upper-cases the first letter (messages are written to follow "Error:" in logs, and start pages here).
pub(crate) fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A message as a sentence: capital first letter, full stop at the end.
pub(crate) fn sentence(text: &str) -> String {
    let text = capitalise(text.trim());
    if text.ends_with(['.', '!', '?']) {
        text
    } else {
        format!("{text}.")
    }
}

/// The footers' note on times: every time on a page is on the school's clock, whatever the server's.
pub(crate) fn times_note(zone: &SchoolTimeZone, now: DateTime<Utc>) -> String {
    format!(
        "Times are the school's local time ({}).",
        zone.describe(now)
    )
}

/// "just now", "4 min ago", "1 h 20 min ago".
pub(crate) fn ago(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let minutes = (now - at).num_minutes();
    match minutes {
        i64::MIN..=0 => "just now".into(),
        1..=59 => format!("{minutes} min ago"),
        _ => format!("{} h {} min ago", minutes / 60, minutes % 60),
    }
}

/// What the board calls a visit's state, and the row's style.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Status {
    pub label: String,
    pub class: &'static str,
}

/// A visit's state on the board: an open duress or overdue alarm outranks the phase; a deadline that has
/// passed shows as due (within its grace) or overdue (past it, even once the alarm is acknowledged).
pub(crate) fn status(
    state: &VisitState,
    open_alarms: &[&Alarm],
    deadline: Option<&Deadline>,
    _policy: &Policy,
    now: DateTime<Utc>,
) -> Status {
    use doorstep_core::lifecycle::Phase;
    let phase = state.phase();
    // The alarm's word, and "(being handled)" once someone is on every open alarm of its kind.
    let word = |kind: AlarmKind, word: &str| {
        let of_kind: Vec<&&Alarm> = open_alarms.iter().filter(|a| a.kind == kind).collect();
        if !of_kind.is_empty() && of_kind.iter().all(|a| !a.needs_someone()) {
            format!("{word} (being handled)")
        } else {
            word.to_owned()
        }
    };
    if phase == Phase::Duress || open_alarms.iter().any(|a| a.kind == AlarmKind::Duress) {
        return Status {
            label: word(AlarmKind::Duress, "DURESS"),
            class: "st-duress",
        };
    }
    if open_alarms.iter().any(|a| a.kind == AlarmKind::Overdue) {
        return Status {
            label: word(AlarmKind::Overdue, "Overdue"),
            class: "st-overdue",
        };
    }
    // Still silent after someone acknowledged the alarm: still overdue, and the board must not say less.
    if deadline.is_some_and(|d| d.overdue_at() <= now) {
        return Status {
            label: "Overdue (acknowledged)".into(),
            class: "st-overdue",
        };
    }
    if let Some(deadline) = deadline.filter(|d| d.due <= now) {
        return Status {
            label: match deadline.expecting {
                Expecting::SetOff => "Not heard from".into(),
                other => format!("{} due", capitalise(other.label())),
            },
            class: "st-due",
        };
    }
    let class = match phase {
        Phase::Departed | Phase::Outside | Phase::InVisit | Phase::CheckedIn => "st-out",
        Phase::Left | Phase::Cancelled { .. } | Phase::WrittenUp => "st-done",
        _ => "st-planned",
    };
    let label = match phase {
        Phase::Cancelled { reason } => format!("Cancelled: {}", reason.label().to_lowercase()),
        Phase::Outside => {
            let waiting = state.staff.values().filter(|p| !p.is_outside()).count();
            if waiting > 0 {
                format!("Outside, waiting for {waiting}")
            } else {
                "Outside, all arrived".into()
            }
        }
        other => other.label().into(),
    };
    Status { label, class }
}

/// "next: check-in due 14:25", or how late it is.
pub(crate) fn next_contact(
    zone: &SchoolTimeZone,
    visit: &Visit,
    state: &VisitState,
    deadline: Option<&Deadline>,
    now: DateTime<Utc>,
) -> String {
    use doorstep_core::lifecycle::Phase;
    let Some(deadline) = deadline else {
        return match state.phase() {
            Phase::Requested | Phase::Authorised => "nothing until they set off".into(),
            _ => "nothing expected".into(),
        };
    };
    let name = deadline.staff.as_ref().map(|id| staff_name(visit, id));
    let who = name
        .as_ref()
        .map(|n| format!(" from {n}"))
        .unwrap_or_default();
    let what = deadline.expecting.label();
    if deadline.expecting == Expecting::SetOff {
        let name = name.unwrap_or_else(|| "someone".into());
        return if now < deadline.alarm_at {
            format!(
                "{name} has not set off yet: due {}; not heard from at {}",
                zone.hm(deadline.due),
                zone.hm(deadline.alarm_at)
            )
        } else {
            format!("not heard from {name}: due at {}", zone.hm(deadline.due))
        };
    }
    if now < deadline.due {
        format!("next: {what}{who} due {}", zone.hm(deadline.due))
    } else if now < deadline.overdue_at() {
        format!(
            "{what}{who} was due {}; overdue at {}",
            zone.hm(deadline.due),
            zone.hm(deadline.overdue_at())
        )
    } else {
        format!(
            "{what}{who} overdue since {}",
            zone.hm(deadline.overdue_at())
        )
    }
}

/// The name of someone on the visit, or their id if the visit does not list them.
fn staff_name(visit: &Visit, id: &StaffId) -> String {
    visit
        .staff
        .iter()
        .find(|s| &s.id == id)
        .map_or_else(|| id.to_string(), |s| s.name.clone())
}

/// "last heard 4 min ago".
pub(crate) fn last_heard(zone: &SchoolTimeZone, state: &VisitState, now: DateTime<Utc>) -> String {
    match state.last_contact {
        Some(at) => format!("last heard {} ({})", ago(at, now), zone.hm(at)),
        None => "not heard from yet".into(),
    }
}

/// One sentence saying what an alarm is about, naming people from the visit.
pub(crate) fn alarm_sentence(zone: &SchoolTimeZone, alarm: &Alarm, visit: &Visit) -> String {
    let due = zone.hm(alarm.due_at);
    match alarm.kind {
        AlarmKind::Overdue => match parse_about(&alarm.about) {
            Some((Expecting::SetOff, Some(who))) => {
                format!("Not heard from {}: due at {due}", staff_name(visit, &who))
            }
            Some((Expecting::Arrival, Some(who))) => format!(
                "{} not heard to arrive: expected at the door by {due}",
                staff_name(visit, &who)
            ),
            Some((Expecting::AnswerAtTheDoor, Some(who))) => format!(
                "{} still at the door: the wait for the family ran out at {due}",
                staff_name(visit, &who)
            ),
            Some((Expecting::CheckIn, _)) => format!("No check-in since it was due at {due}"),
            Some((Expecting::Leaving, _)) => {
                format!("No \"I've left\": the visit was due to end at {due}")
            }
            _ => format!("Nothing heard ({}) since {due}", alarm.about),
        },
        AlarmKind::Duress if alarm.about.starts_with(HEARD_BY_RECEPTION) => {
            format!("{} at {due}", capitalise(&alarm.about))
        }
        AlarmKind::Duress => {
            let name = visit
                .staff
                .iter()
                .find(|s| s.id.as_str() == alarm.about)
                .map_or(alarm.about.as_str(), |s| s.name.as_str());
            format!("Duress alert from {name}'s phone at {due}")
        }
    }
}

/// The level an alarm has reached, as the office's step: "reached the headteacher's level at 14:32". Never
/// a claim that anyone was told: that comes only from deliveries ([`reach_line`]).
pub(crate) fn alarm_level(zone: &SchoolTimeZone, alarm: &Alarm, policy: &Policy) -> Option<String> {
    use doorstep_core::schedule::AlarmLevel;
    if alarm.level == AlarmLevel::Board {
        return None;
    }
    let at = alarm.escalated_at.unwrap_or(alarm.raised_at);
    Some(format!(
        "at the level of {} since {}",
        level_audience(alarm.level, policy),
        zone.hm(at)
    ))
}

/// One line of who was (or could not be) told, on the school's clock.
pub(crate) fn reach_line(zone: &SchoolTimeZone, line: &reach::Line) -> String {
    reach::words(
        line,
        &|at| zone.hm(at),
        "Nobody outside this board can be told",
    )
}

/// One line of an alarm's log, in words: what the office did, or how a delivery went.
pub(crate) fn log_entry(entry: &AlarmLogEntry) -> String {
    let what = match entry.what.as_str() {
        step::RAISED => "Raised",
        step::REACHED_LEVEL => "Escalated",
        step::REMINDED => "Reminded",
        step::NOBODY_TO_TELL => "Nobody to tell",
        step::CONTACT_RESUMED => "Contact resumed",
        step::ACKNOWLEDGED => "Acknowledged",
        step::CLOSED => "Closed",
        step::NOTIFIED => "Delivered",
        step::NOTIFICATION_FAILED => "Delivery failed",
        step::NOTIFICATION_CANCELLED => "Delivery stopped",
        other => return format!("{}: {}", capitalise(&other.replace('_', " ")), entry.detail),
    };
    format!("{what}: {}", entry.detail)
}

/// How long a policy number is, in words.
pub(crate) fn minutes(delta: TimeDelta) -> String {
    let m = delta.num_minutes();
    if m % 60 == 0 && m >= 60 {
        let h = m / 60;
        format!("{h} hour{}", if h == 1 { "" } else { "s" })
    } else {
        format!("{m} minutes")
    }
}
