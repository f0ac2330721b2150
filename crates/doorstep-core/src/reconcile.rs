//! Reconciliation between a phone and the office, by sequence range: the phone asks which of its recent
//! events the office holds (`POST /api/v1/reconcile`), on start and once a day.
//!
//! The answer settles two things the per-event sync answers cannot:
//! - events the phone was told were stored but the office no longer holds (an office restored from a
//!   backup) are sent again;
//! - an office that holds more from this device than the phone remembers (a phone restored from a backup)
//!   means the phone's next sequence numbers are already taken: the phone moves past them and says so,
//!   and any event it recorded meanwhile under a taken number is recorded again under a new one.
//!
//! [`plan`] is pure; the transport and the event log apply what it decides.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{DeviceSeq, EventId};

/// How many of its most recent sequence numbers a phone asks about (more if older events still wait).
pub const RECONCILE_SPAN: u64 = 200;
/// The widest range the office answers for in one request.
pub const MAX_RECONCILE_SPAN: u64 = 2_000;

/// The phone's question: which of my events with these sequence numbers do you hold?
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ReconcileRequest {
    /// Must be [`crate::protocol::PROTOCOL_VERSION`].
    pub protocol: u32,
    pub from_seq: DeviceSeq,
    pub through_seq: DeviceSeq,
}

/// One event the office holds from the asking device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct HeldSeq {
    pub seq: DeviceSeq,
    pub id: EventId,
}

/// The office's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ReconcileResponse {
    pub protocol: u32,
    /// Every event the office holds from this device in the range asked about, by sequence number.
    pub held: Vec<HeldSeq>,
    /// The highest sequence number the office holds from this device, in or out of the range.
    pub highest_seq: Option<DeviceSeq>,
    pub server_time: DateTime<Utc>,
}

/// Where one of the phone's events stands in its outbox, as the planner needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Waiting,
    Confirmed,
    Refused,
}

/// One of the phone's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhoneEvent {
    pub seq: DeviceSeq,
    pub id: EventId,
    pub standing: Standing,
}

/// The sequence range to ask about: the last [`RECONCILE_SPAN`] numbers the phone used, widened to take in
/// every event still waiting or refused, but never wider than [`MAX_RECONCILE_SPAN`]. A phone that has used
/// none asks about number 1, to learn what the office holds.
pub fn range(events: &[PhoneEvent], last_seq: u64) -> (DeviceSeq, DeviceSeq) {
    let through = last_seq.max(1);
    let recent = through.saturating_sub(RECONCILE_SPAN - 1).max(1);
    let oldest_open = events
        .iter()
        .filter(|e| e.standing != Standing::Confirmed)
        .map(|e| e.seq.get())
        .min()
        .unwrap_or(recent);
    let from = recent
        .min(oldest_open)
        .max(through.saturating_sub(MAX_RECONCILE_SPAN - 1))
        .max(1);
    (seq(from), seq(through))
}

fn seq(n: u64) -> DeviceSeq {
    // `n` is at least 1 here and no more than a sequence number the phone already holds.
    DeviceSeq::new(n).unwrap_or_else(|_| unreachable!("sequence numbers from 1 up are valid"))
}

/// A phone restored from a backup: the office holds events from it that it does not remember.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restored {
    /// The highest number the office holds from this device; the phone numbers its events after it.
    pub office_seq: u64,
    /// How many of the office's events from this device the phone does not have.
    pub only_at_office: u64,
}

/// What the phone must do after an answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reconciliation {
    /// Confirmed on the phone, not held by the office: send them again.
    pub send_again: Vec<EventId>,
    /// Recorded under a number the office holds for another event: record them again under new numbers.
    pub record_again: Vec<EventId>,
    /// The office holds more than the phone remembers.
    pub restored: Option<Restored>,
}

impl Reconciliation {
    pub fn is_empty(&self) -> bool {
        self.send_again.is_empty() && self.record_again.is_empty() && self.restored.is_none()
    }
}

/// What `answer` means for the phone's `events` (those in the range asked about) when the highest
/// number it has used is `last_seq`.
pub fn plan(events: &[PhoneEvent], last_seq: u64, answer: &ReconcileResponse) -> Reconciliation {
    let held_at = |seq: DeviceSeq| answer.held.iter().find(|held| held.seq == seq);
    let mut out = Reconciliation::default();
    // The office's events the phone does not have: in the range, those it knows by no id of its own;
    // beyond it, every number up to the office's highest.
    let known = |held: &&HeldSeq| events.iter().any(|e| e.seq == held.seq && e.id == held.id);
    let asked_through = last_seq.max(1);
    let highest = answer.highest_seq.map_or(0, DeviceSeq::get);
    let only_at_office = answer.held.iter().filter(|held| !known(held)).count() as u64
        + highest.saturating_sub(asked_through);
    if only_at_office > 0 {
        out.restored = Some(Restored {
            office_seq: highest.max(last_seq),
            only_at_office,
        });
    }
    for event in events {
        match (held_at(event.seq), event.standing) {
            // The office has it: nothing to do (a waiting one is confirmed by the next sync's answer).
            (Some(held), _) if held.id == event.id => {}
            // Its number belongs to another event at the office: it can only go under a new number.
            (Some(_), Standing::Waiting | Standing::Refused) => out.record_again.push(event.id),
            (None, Standing::Confirmed) => out.send_again.push(event.id),
            // Waiting and not held: the next sync sends it. Refused for another reason: it stays refused.
            // Confirmed while the office holds another event under its number cannot happen (the office
            // confirms only what it stored, and never replaces an event); leave it for a person to look at.
            (None, Standing::Waiting | Standing::Refused) | (Some(_), Standing::Confirmed) => {}
        }
    }
    out
}
