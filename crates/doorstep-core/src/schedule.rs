//! When the office next expects to hear from a visit, and how an alarm escalates: pure functions of the
//! visit, its state and the policy. The office's escalation engine sleeps until these moments; the phone uses
//! the same answers for its check-in prompts.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::Visit;
use crate::ids::StaffId;
use crate::lifecycle::{StaffProgress, VisitState};
use crate::policy::Policy;

/// What the office is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Expecting {
    /// An authorised visit's agreed time has come: word that this person has set off (or that it is not
    /// going ahead). Silence here is how a flat phone, an app never opened or a pair who set off without it
    /// shows up.
    SetOff,
    /// Someone has left for the visit and should be at the door by now.
    Arrival,
    /// At the door: the family should have answered (or the visit been cancelled) within the policy's wait.
    AnswerAtTheDoor,
    /// In the visit: the next check-in.
    CheckIn,
    /// The visit's expected end: everyone should have said "I've left".
    Leaving,
}

impl Expecting {
    pub fn label(self) -> &'static str {
        match self {
            Expecting::SetOff => "word they have set off",
            Expecting::Arrival => "arrival",
            Expecting::AnswerAtTheDoor => "going in or cancelling",
            Expecting::CheckIn => "check-in",
            Expecting::Leaving => "\"I've left\"",
        }
    }

    /// The stable name stored with an alarm.
    pub fn name(self) -> &'static str {
        match self {
            Expecting::SetOff => "set_off",
            Expecting::Arrival => "arrival",
            Expecting::AnswerAtTheDoor => "answer_at_the_door",
            Expecting::CheckIn => "check_in",
            Expecting::Leaving => "leaving",
        }
    }
}

/// One contact the office expects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Deadline {
    pub expecting: Expecting,
    /// Whose word it is: one person before they are in the visit; `None` for everyone inside.
    pub staff: Option<StaffId>,
    pub due: DateTime<Utc>,
    /// When silence past `due` becomes an alarm: the policy's grace after it, or for a visit nobody has
    /// set off for, the policy's first check-in after the agreed time.
    pub alarm_at: DateTime<Utc>,
}

impl Deadline {
    /// When silence past this deadline becomes "overdue".
    pub fn overdue_at(&self) -> DateTime<Utc> {
        self.alarm_at
    }

    /// What an alarm about this deadline is about, as stored: what is expected, and from whom.
    pub fn about(&self) -> String {
        match &self.staff {
            Some(staff) => format!("{}:{staff}", self.expecting.name()),
            None => self.expecting.name().to_owned(),
        }
    }
}

/// Reads back [`Deadline::about`]: what was expected, and from whom (`None`: everyone inside).
pub fn parse_about(about: &str) -> Option<(Expecting, Option<StaffId>)> {
    let (name, staff) = match about.split_once(':') {
        Some((name, staff)) => (name, Some(StaffId::parse(staff).ok()?)),
        None => (about, None),
    };
    let expecting = [
        Expecting::SetOff,
        Expecting::Arrival,
        Expecting::AnswerAtTheDoor,
        Expecting::CheckIn,
        Expecting::Leaving,
    ]
    .into_iter()
    .find(|e| e.name() == name)?;
    Some((expecting, staff))
}

/// Every contact the office now expects from a visit, one per person before they are in and one for
/// everyone inside; empty when it expects nothing (not authorised, declined, called off before anyone set
/// off, everyone left). A write-up does not end it: the writer's partner may still be out.
pub fn deadlines(visit: &Visit, state: &VisitState, policy: &Policy) -> Vec<Deadline> {
    let grace = policy.overdue_grace.duration();
    let mut out = Vec::new();
    // Someone assigned who never set off stays expected even after the others are back: their phone may
    // be flat while they stood at the door, vouched for by a partner.
    let may_set_off =
        state.authorised.is_some() && state.declined.is_none() && state.cancelled.is_none();
    for (staff, progress) in &state.staff {
        match progress {
            StaffProgress::NotStarted if may_set_off && state.part_ended(staff).is_none() => {
                let due = state
                    .running_late
                    .get(staff)
                    .map_or(visit.agreed_time, |late| (*late).max(visit.agreed_time));
                out.push(Deadline {
                    expecting: Expecting::SetOff,
                    staff: Some(staff.clone()),
                    due,
                    alarm_at: due + policy.first_check_in_after_start.duration(),
                });
            }
            StaffProgress::Departed { .. } if state.is_watched(staff) => {
                if let Some(due) = state.expected_arrival(staff) {
                    out.push(Deadline {
                        expecting: Expecting::Arrival,
                        staff: Some(staff.clone()),
                        due,
                        alarm_at: due + grace,
                    });
                }
            }
            StaffProgress::Outside { at }
                if state.is_watched(staff) && state.started_at.is_none() =>
            {
                let due = *at + policy.max_wait_for_family.duration();
                out.push(Deadline {
                    expecting: Expecting::AnswerAtTheDoor,
                    staff: Some(staff.clone()),
                    due,
                    alarm_at: due + grace,
                });
            }
            _ => {}
        }
    }
    let anyone_inside = state
        .staff
        .iter()
        .any(|(staff, p)| p.is_inside() && state.is_watched(staff));
    if let (Some(started), true) = (state.started_at, anyone_inside) {
        let expected_end = state
            .staff
            .values()
            .filter_map(|p| match p {
                StaffProgress::Departed { expected_end, .. } => Some(*expected_end),
                _ => None,
            })
            .max()
            .unwrap_or_else(|| visit.expected_end());
        let first = started.max(visit.agreed_time) + policy.first_check_in_after_start.duration();
        let check_in = match state.last_check_in {
            Some(last) if last >= started => {
                (last + policy.check_in_interval.duration()).max(first)
            }
            _ => first,
        };
        let end = expected_end.max(started + TimeDelta::minutes(1));
        let (expecting, due) = if check_in < end {
            (Expecting::CheckIn, check_in)
        } else {
            (Expecting::Leaving, end)
        };
        out.push(Deadline {
            expecting,
            staff: None,
            due,
            alarm_at: due + grace,
        });
    }
    out
}

/// The earliest deadline of [`deadlines`], or `None` when the office expects nothing.
pub fn next_deadline(visit: &Visit, state: &VisitState, policy: &Policy) -> Option<Deadline> {
    deadlines(visit, state, policy)
        .into_iter()
        .min_by_key(|d| (d.due, d.alarm_at))
}

/// The visit-wide deadline of the people inside (a check-in or "I've left"), if they are in.
pub fn inside_deadline(visit: &Visit, state: &VisitState, policy: &Policy) -> Option<Deadline> {
    deadlines(visit, state, policy)
        .into_iter()
        .find(|d| d.staff.is_none())
}

/// After the office has handled an alarm about `missed` (acknowledged or closed it) while the staff are
/// still silent, the visit stays watched: the next missed deadline comes one check-in interval on, and every
/// interval after that, until someone is heard from.
pub fn next_missed_after(
    missed: &Deadline,
    handled_at: DateTime<Utc>,
    policy: &Policy,
) -> Deadline {
    let interval = policy.check_in_interval.duration();
    let grace = missed.alarm_at - missed.due;
    let mut due = missed.due + interval;
    while due + grace <= handled_at {
        due += interval;
    }
    Deadline {
        expecting: missed.expecting,
        staff: missed.staff.clone(),
        due,
        alarm_at: due + grace,
    }
}

/// How loud an alarm is: who it has reached, by the school's escalation. Each level is the office's step,
/// not a claim that anyone was told: who was told comes from the office's deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum AlarmLevel {
    /// On the office board, visible and audible.
    Board,
    /// Not acknowledged at the office in time (or duress): the authoriser's level.
    Authoriser,
    /// Not acknowledged at the authoriser's level in time: the school's deputy and further contacts (the
    /// academy's Principal or senior leaders).
    Further,
}

impl AlarmLevel {
    /// The level an unacknowledged alarm goes to next; the top level stays where it is (and reminds).
    pub fn next(self) -> AlarmLevel {
        match self {
            AlarmLevel::Board => AlarmLevel::Authoriser,
            AlarmLevel::Authoriser | AlarmLevel::Further => AlarmLevel::Further,
        }
    }

    /// The stable name stored with an alarm.
    pub fn name(self) -> &'static str {
        match self {
            AlarmLevel::Board => "board",
            AlarmLevel::Authoriser => "authoriser",
            AlarmLevel::Further => "further",
        }
    }

    /// Reads back [`AlarmLevel::name`].
    pub fn parse(name: &str) -> Option<AlarmLevel> {
        [
            AlarmLevel::Board,
            AlarmLevel::Authoriser,
            AlarmLevel::Further,
        ]
        .into_iter()
        .find(|level| level.name() == name)
    }
}

/// When an unacknowledged alarm next gets louder ([`AlarmLevel::next`]): from the board to the authoriser's
/// level after the policy's `escalate_to_authoriser_after`; from there to the deputy and further contacts
/// after `escalate_further_after`; at the top, a reminder every `escalate_further_after` until someone
/// acknowledges it. `last_escalated_at` is when it reached its current level (or was last reminded). Duress
/// starts at the authoriser's level.
pub fn next_escalation(
    level: AlarmLevel,
    raised_at: DateTime<Utc>,
    last_escalated_at: DateTime<Utc>,
    policy: &Policy,
) -> DateTime<Utc> {
    match level {
        AlarmLevel::Board => raised_at + policy.escalate_to_authoriser_after.duration(),
        AlarmLevel::Authoriser | AlarmLevel::Further => {
            last_escalated_at + policy.escalate_further_after.duration()
        }
    }
}
