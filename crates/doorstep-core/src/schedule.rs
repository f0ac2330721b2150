//! When the office next expects to hear from a visit, and how an alarm escalates: pure functions of the
//! visit, its state and the policy. The office's escalation engine sleeps until these moments; the phone uses
//! the same answers for its check-in prompts.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::Visit;
use crate::lifecycle::{StaffProgress, VisitState};
use crate::policy::Policy;

/// What the office is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Expecting {
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
            Expecting::Arrival => "arrival",
            Expecting::AnswerAtTheDoor => "going in or cancelling",
            Expecting::CheckIn => "check-in",
            Expecting::Leaving => "\"I've left\"",
        }
    }
}

/// The next contact the office expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Deadline {
    pub expecting: Expecting,
    pub due: DateTime<Utc>,
}

impl Deadline {
    /// When silence past this deadline becomes "overdue".
    pub fn overdue_at(&self, policy: &Policy) -> DateTime<Utc> {
        self.due + policy.overdue_grace.duration()
    }
}

/// The next deadline of a visit that is under way, or `None` when the office expects nothing (not yet
/// departed, cancelled, everyone left). A write-up does not end it: the writer's partner may still be out.
pub fn next_deadline(visit: &Visit, state: &VisitState, policy: &Policy) -> Option<Deadline> {
    if state.cancelled.is_some() {
        return None;
    }
    let out: Vec<&StaffProgress> = state
        .staff
        .values()
        .filter(|p| !matches!(p, StaffProgress::NotStarted | StaffProgress::Left { .. }))
        .collect();
    if out.is_empty() {
        return None;
    }
    let expected_end = state
        .staff
        .values()
        .filter_map(|p| match p {
            StaffProgress::Departed { expected_end, .. } => Some(*expected_end),
            _ => None,
        })
        .max()
        .unwrap_or_else(|| visit.expected_end());
    if let Some(started) = state.started_at {
        let first = started.max(visit.agreed_time) + policy.first_check_in_after_start.duration();
        let check_in = match state.last_check_in {
            Some(last) if last >= started => {
                (last + policy.check_in_interval.duration()).max(first)
            }
            _ => first,
        };
        let end = expected_end.max(started + TimeDelta::minutes(1));
        return Some(if check_in < end {
            Deadline {
                expecting: Expecting::CheckIn,
                due: check_in,
            }
        } else {
            Deadline {
                expecting: Expecting::Leaving,
                due: end,
            }
        });
    }
    // Not in yet: the earliest of anyone's expected arrival, or the wait at the door running out.
    out.iter()
        .filter_map(|p| match p {
            StaffProgress::Departed {
                expected_arrival, ..
            } => Some(Deadline {
                expecting: Expecting::Arrival,
                due: *expected_arrival,
            }),
            StaffProgress::Outside { at } => Some(Deadline {
                expecting: Expecting::AnswerAtTheDoor,
                due: *at + policy.max_wait_for_family.duration(),
            }),
            _ => None,
        })
        .min_by_key(|d| d.due)
}

/// How loud an alarm is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum AlarmLevel {
    /// On the office board, visible and audible.
    Board,
    /// The authoriser has been told too.
    Authoriser,
}

/// When an unacknowledged alarm raised at `raised_at` next gets louder: the authoriser after the policy's
/// interval, then a reminder to the authoriser every interval until someone acknowledges it. Duress starts
/// at the top.
pub fn next_escalation(
    level: AlarmLevel,
    raised_at: DateTime<Utc>,
    last_escalated_at: DateTime<Utc>,
    policy: &Policy,
) -> DateTime<Utc> {
    let interval = policy.escalate_to_authoriser_after.duration();
    match level {
        AlarmLevel::Board => raised_at + interval,
        AlarmLevel::Authoriser => last_escalated_at + interval,
    }
}
