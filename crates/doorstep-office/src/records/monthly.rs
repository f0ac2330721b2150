//! The monthly report, in the spirit of the lone-worker standard's monthly alarm statistics: visits, check-ins
//! missed, alarms raised, how long alarms waited for a person, and false alarms.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use doorstep_core::domain::{School, SchoolTimeZone};
use doorstep_core::ids::{SchoolId, StaffId};
use doorstep_core::lifecycle::{
    AlarmOutcome, AlertRef, CancelReason, StaffProgress, VisitEvent, VisitState,
};
use doorstep_core::schedule::AlarmLevel;
use serde::Serialize;

use super::VisitRecord;
use crate::alarms::{Alarm, AlarmKind};

/// What this report counts as a false alarm; printed in every report so the number is never read without it.
pub const FALSE_ALARM_DEFINITION: &str =
    "A false alarm is a duress alarm that a member of staff on the \
visit stood down with a note, or an overdue alarm whose staff were heard from again before anyone \
acknowledged it.";

/// A calendar month on the school's clock: from its first midnight there to the next month's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ReportMonth {
    year: i32,
    month: u32,
    #[serde(skip)]
    start: DateTime<Utc>,
    #[serde(skip)]
    end: DateTime<Utc>,
}

/// A month that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("there is no month {month} of year {year}: months run from 1 to 12")]
pub struct MonthError {
    pub year: i32,
    pub month: u32,
}

impl ReportMonth {
    pub fn new(year: i32, month: u32, zone: &SchoolTimeZone) -> Result<Self, MonthError> {
        let error = MonthError { year, month };
        let first = NaiveDate::from_ymd_opt(year, month, 1).ok_or(error.clone())?;
        let next = first
            .checked_add_months(chrono::Months::new(1))
            .ok_or(error)?;
        Ok(Self {
            year,
            month,
            start: zone.start_of(first),
            end: zone.start_of(next),
        })
    }

    pub fn year(&self) -> i32 {
        self.year
    }

    pub fn month(&self) -> u32 {
        self.month
    }

    /// Midnight on the school's clock on the first day: the first instant in the month.
    pub fn start(&self) -> DateTime<Utc> {
        self.start
    }

    /// Midnight on the school's clock on the first day of the next month: the first instant after it.
    pub fn end(&self) -> DateTime<Utc> {
        self.end
    }

    /// "November 2026".
    pub fn label(&self) -> String {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).map_or_else(
            || format!("{}-{}", self.year, self.month),
            |first| first.format("%B %Y").to_string(),
        )
    }
}

/// Each kind (a reason, an outcome) with its count, in the kinds' order, leaving out those that never occurred.
fn occurred<'a, K: Copy>(kinds: &'a [K], counts: &'a [u32]) -> impl Iterator<Item = (K, u32)> + 'a {
    kinds
        .iter()
        .copied()
        .zip(counts.iter().copied())
        .filter(|(_, count)| *count > 0)
}

/// How many visits were cancelled for one reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct CancelledFor {
    pub reason: CancelReason,
    pub count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, schemars::JsonSchema)]
pub struct VisitCounts {
    pub total: u32,
    /// Went in, and everyone who went has said "I've left".
    pub completed: u32,
    pub cancelled: u32,
    /// Only reasons that occurred, in the order of [`CancelReason::ALL`].
    pub cancelled_by_reason: Vec<CancelledFor>,
    /// Neither completed nor cancelled: never set off, or still under way.
    pub not_completed: u32,
    pub written_up: u32,
    /// Visits whose write-up flagged a safeguarding concern.
    pub safeguarding_concerns: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, schemars::JsonSchema)]
pub struct AlarmCounts {
    pub overdue: u32,
    pub duress: u32,
}

impl AlarmCounts {
    pub fn total(&self) -> u32 {
        self.overdue + self.duress
    }
}

/// Who alarms reached beyond the board, from the deliveries, and how they ended.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, schemars::JsonSchema)]
pub struct AlarmReach {
    /// Alarms that reached a level beyond the board (the authoriser's, or the further contacts').
    pub beyond_board: u32,
    /// Alarms of which a message was delivered to someone outside the board.
    pub delivered_outside: u32,
    /// Alarms where nobody could be told at a level they reached, or a message never landed.
    pub not_reached: u32,
    /// Closed, by outcome (only outcomes that occurred, in the order of `AlarmOutcome::ALL`).
    pub closed: Vec<ClosedWith>,
    /// Closed before outcomes were recorded.
    pub closed_without_outcome: u32,
    /// Not closed yet.
    pub still_open: u32,
}

/// How many alarms were closed with one outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ClosedWith {
    pub outcome: AlarmOutcome,
    pub count: u32,
}

/// Safeguarding notices, and whether each was passed on.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, schemars::JsonSchema)]
pub struct NoticeCounts {
    pub raised: u32,
    /// A message about it was delivered to the role's contact.
    pub passed_on: u32,
    pub not_passed_on: u32,
}

/// How long alarms waited for a person to acknowledge them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, schemars::JsonSchema)]
pub struct Acknowledgement {
    pub acknowledged: u32,
    /// The median time from raised to acknowledged, in seconds (the mean of the middle two for an even
    /// count); `None` when nothing was acknowledged.
    pub median_seconds: Option<i64>,
    /// The longest time from raised to acknowledged, in seconds.
    pub worst_seconds: Option<i64>,
    /// Alarms still waiting for anyone to acknowledge them.
    pub unacknowledged: u32,
}

/// A school's month of home visits.
///
/// Visits belong to the month of their agreed time, on the school's clock, and everything that happened to a visit (its
/// check-ins, its alarms, however late) counts in that visit's month, so a month's numbers describe one set of
/// visits.
///
/// Check-ins missed are counted once per visit and due time, whether the phone recorded a missed check-in
/// (`CheckInMissed`), the office raised an overdue alarm waiting for a check-in, or both.
///
/// A false alarm is a duress alarm that a member of staff on the visit stood down with a note, or an
/// overdue alarm whose staff were heard from again before anyone acknowledged it (see
/// [`FALSE_ALARM_DEFINITION`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct MonthlyReport {
    pub school: SchoolId,
    pub school_name: String,
    pub month: ReportMonth,
    pub visits: VisitCounts,
    pub check_ins_missed: u32,
    pub alarms_raised: AlarmCounts,
    pub acknowledgement: Acknowledgement,
    pub false_alarms: u32,
    pub reach: AlarmReach,
    pub notices: NoticeCounts,
}

fn completed(state: &VisitState) -> bool {
    state.started_at.is_some()
        && state.cancelled.is_none()
        && state
            .staff
            .values()
            .filter(|p| !matches!(p, StaffProgress::NotStarted))
            .all(|p| matches!(p, StaffProgress::Left { .. }))
}

/// Whether `alarm` is a false alarm by [`FALSE_ALARM_DEFINITION`].
fn is_false_alarm(alarm: &Alarm, record: &VisitRecord) -> bool {
    match alarm.kind {
        AlarmKind::Overdue => alarm.contact_resumed_at.is_some_and(|resumed| {
            alarm
                .acknowledged_at
                .is_none_or(|acknowledged| resumed <= acknowledged)
        }),
        AlarmKind::Duress => {
            let Ok(raised_by) = alarm.about.parse::<StaffId>() else {
                return false;
            };
            // A duress alarm stores who raised the alert and when (by the phone), which is how a stand-down
            // names the alerts it ends.
            let alert = AlertRef {
                raised_by,
                raised_at: alarm.due_at,
            };
            record.timeline.entries.iter().any(|entry| {
                matches!(
                    entry.event(),
                    Some(VisitEvent::DuressStoodDown { staff, note, alerts })
                        if record.state.staff.contains_key(staff)
                            && !note.trim().is_empty()
                            && alerts.contains(&alert)
                )
            })
        }
    }
}

fn median(sorted: &[i64]) -> Option<i64> {
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[n / 2]),
        n => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2),
    }
}

impl MonthlyReport {
    /// The report from the month's visit records (already chosen by agreed time).
    pub fn compile(school: &School, month: ReportMonth, records: &[VisitRecord]) -> Self {
        let mut visits = VisitCounts::default();
        let mut cancelled = [0_u32; CancelReason::ALL.len()];
        let mut missed: BTreeSet<(usize, DateTime<Utc>)> = BTreeSet::new();
        let mut alarms_raised = AlarmCounts::default();
        let mut waits: Vec<i64> = Vec::new();
        let mut unacknowledged = 0;
        let mut false_alarms = 0;
        let mut reach = AlarmReach::default();
        let mut outcomes = [0_u32; AlarmOutcome::ALL.len()];
        let mut notices = NoticeCounts::default();
        for (index, record) in records.iter().enumerate() {
            let state = &record.state;
            visits.total += 1;
            if let Some((reason, _)) = state.cancelled {
                visits.cancelled += 1;
                if let Some(slot) = CancelReason::ALL.iter().position(|r| *r == reason) {
                    cancelled[slot] += 1;
                }
            } else if completed(state) {
                visits.completed += 1;
            } else {
                visits.not_completed += 1;
            }
            if state.written_up_at.is_some() {
                visits.written_up += 1;
            }
            if state.safeguarding_concern {
                visits.safeguarding_concerns += 1;
            }
            for entry in &record.timeline.entries {
                if let Some(VisitEvent::CheckInMissed { due_at, .. }) = entry.event() {
                    missed.insert((index, *due_at));
                }
            }
            for alarm in &record.alarms {
                match alarm.kind {
                    AlarmKind::Overdue => {
                        alarms_raised.overdue += 1;
                        if alarm.about == "check_in" {
                            missed.insert((index, alarm.due_at));
                        }
                    }
                    AlarmKind::Duress => alarms_raised.duress += 1,
                }
                match alarm.acknowledged_at {
                    // A clock stepped back must not make a negative wait.
                    Some(at) => {
                        waits.push((at - alarm.raised_at).max(TimeDelta::zero()).num_seconds())
                    }
                    None => unacknowledged += 1,
                }
                if is_false_alarm(alarm, record) {
                    false_alarms += 1;
                }
                if alarm.level > AlarmLevel::Board {
                    reach.beyond_board += 1;
                }
                if record.alarms_delivered.contains(&alarm.id) {
                    reach.delivered_outside += 1;
                }
                if record.alarms_not_reached.contains(&alarm.id) {
                    reach.not_reached += 1;
                }
                match (alarm.closed_at, alarm.outcome) {
                    (None, _) => reach.still_open += 1,
                    (Some(_), None) => reach.closed_without_outcome += 1,
                    (Some(_), Some(outcome)) => {
                        if let Some(slot) = AlarmOutcome::ALL.iter().position(|o| *o == outcome) {
                            outcomes[slot] += 1;
                        }
                    }
                }
            }
            for notice in &record.notices {
                notices.raised += 1;
                if notice.passed_on {
                    notices.passed_on += 1;
                } else {
                    notices.not_passed_on += 1;
                }
            }
        }
        visits.cancelled_by_reason = occurred(&CancelReason::ALL, &cancelled)
            .map(|(reason, count)| CancelledFor { reason, count })
            .collect();
        reach.closed = occurred(&AlarmOutcome::ALL, &outcomes)
            .map(|(outcome, count)| ClosedWith { outcome, count })
            .collect();
        waits.sort_unstable();
        Self {
            school: school.id.clone(),
            school_name: school.name.clone(),
            month,
            visits,
            check_ins_missed: missed.len() as u32,
            alarms_raised,
            acknowledgement: Acknowledgement {
                acknowledged: waits.len() as u32,
                median_seconds: median(&waits),
                worst_seconds: waits.last().copied(),
                unacknowledged,
            },
            false_alarms,
            reach,
            notices,
        }
    }

    /// The report in plain words, to print or paste into a governors' report.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let v = &self.visits;
        let _ = writeln!(
            out,
            "Home visits at {}: {}",
            self.school_name,
            self.month.label()
        );
        let _ = writeln!(
            out,
            "Visits count in the month of their agreed time (the school's clock), with everything that happened to them."
        );
        let _ = writeln!(out);
        let _ = writeln!(out, "Visits: {}", v.total);
        let _ = writeln!(out, "  Completed: {}", v.completed);
        let reasons: Vec<String> = v
            .cancelled_by_reason
            .iter()
            .map(|c| format!("{}: {}", c.reason.label(), c.count))
            .collect();
        if reasons.is_empty() {
            let _ = writeln!(out, "  Cancelled: {}", v.cancelled);
        } else {
            let _ = writeln!(out, "  Cancelled: {} ({})", v.cancelled, reasons.join("; "));
        }
        let _ = writeln!(out, "  Not completed or still open: {}", v.not_completed);
        let _ = writeln!(out, "  Written up: {}", v.written_up);
        let _ = writeln!(
            out,
            "  Safeguarding concerns flagged: {}",
            v.safeguarding_concerns
        );
        let _ = writeln!(out);
        let _ = writeln!(out, "Check-ins missed: {}", self.check_ins_missed);
        let a = &self.alarms_raised;
        let _ = writeln!(
            out,
            "Alarms raised: {} (overdue: {}, duress: {})",
            a.total(),
            a.overdue,
            a.duress
        );
        let ack = &self.acknowledgement;
        match (ack.median_seconds, ack.worst_seconds) {
            (Some(median), Some(worst)) => {
                let _ = writeln!(
                    out,
                    "Time from alarm to acknowledgement: median {}, worst {} ({} acknowledged)",
                    duration_words(median),
                    duration_words(worst),
                    ack.acknowledged
                );
            }
            _ => {
                let _ = writeln!(out, "Time from alarm to acknowledgement: none acknowledged");
            }
        }
        let _ = writeln!(out, "Alarms still not acknowledged: {}", ack.unacknowledged);
        let _ = writeln!(out, "False alarms: {}", self.false_alarms);
        let _ = writeln!(out, "  {FALSE_ALARM_DEFINITION}");
        let r = &self.reach;
        let _ = writeln!(
            out,
            "Alarms that reached beyond the board: {}; a message delivered outside the board for {}; \
             nobody could be told, or a message never landed, for {}",
            r.beyond_board, r.delivered_outside, r.not_reached
        );
        let mut closed: Vec<String> = r
            .closed
            .iter()
            .map(|c| format!("{}: {}", c.outcome.label().to_lowercase(), c.count))
            .collect();
        if r.closed_without_outcome > 0 {
            closed.push(format!("no outcome recorded: {}", r.closed_without_outcome));
        }
        let _ = writeln!(
            out,
            "Alarms closed: {}; still open: {}",
            if closed.is_empty() {
                "none".to_owned()
            } else {
                closed.join("; ")
            },
            r.still_open
        );
        let n = &self.notices;
        let _ = writeln!(
            out,
            "Safeguarding notices (concerns, incidents, felt unsafe): {}; passed on: {}; not passed on: {}",
            n.raised, n.passed_on, n.not_passed_on
        );
        out
    }
}

/// "45 s", "4 min", "4 min 30 s", "1 h 5 min".
fn duration_words(seconds: i64) -> String {
    let (hours, minutes, seconds) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    match (hours, minutes, seconds) {
        (0, 0, s) => format!("{s} s"),
        (0, m, 0) => format!("{m} min"),
        (0, m, s) => format!("{m} min {s} s"),
        (h, m, _) => format!("{h} h {m} min"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_run_from_midnight_on_the_first_to_midnight_on_the_next_first() {
        let december = ReportMonth::new(2026, 12, &SchoolTimeZone::LONDON).unwrap();
        assert_eq!(december.start().to_rfc3339(), "2026-12-01T00:00:00+00:00");
        assert_eq!(december.end().to_rfc3339(), "2027-01-01T00:00:00+00:00");
        assert_eq!(december.label(), "December 2026");
        assert!(ReportMonth::new(2026, 0, &SchoolTimeZone::LONDON).is_err());
        assert!(ReportMonth::new(2026, 13, &SchoolTimeZone::LONDON).is_err());
    }

    #[test]
    fn medians_and_durations_in_words() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[120, 240, 600]), Some(240));
        assert_eq!(median(&[120, 240, 600, 900]), Some(420));
        assert_eq!(duration_words(45), "45 s");
        assert_eq!(duration_words(240), "4 min");
        assert_eq!(duration_words(270), "4 min 30 s");
        assert_eq!(duration_words(3900), "1 h 5 min");
    }
}
