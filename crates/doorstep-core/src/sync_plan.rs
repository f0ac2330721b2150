//! Sync planning as pure functions: what to send next, and what the office's answer means for each event.
//! The transport (HTTP on the phone) sits around these; the planner never touches a socket or a file.

use std::collections::HashSet;

use crate::event::EventEnvelope;
use crate::ids::EventId;
use crate::protocol::{ErrorBody, EventOutcome, SyncResponse};

/// How many events one request carries.
pub const BATCH_LIMIT: usize = 100;

/// The next batch: urgent events (duress) first, then the rest in the device's sequence order.
pub fn next_batch(waiting: &[EventEnvelope], limit: usize) -> Vec<EventEnvelope> {
    let mut batch: Vec<&EventEnvelope> = waiting.iter().collect();
    batch.sort_by_key(|e| (!e.event.is_urgent(), e.seq));
    batch.into_iter().take(limit).cloned().collect()
}

/// A change to one outbox entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxUpdate {
    /// The office stored it (now or before): delivered.
    Confirm(EventId),
    /// The office refused it: keep it, show the reason, never send it again.
    Refuse { id: EventId, reason: String },
}

/// What came back from one attempt.
#[derive(Debug, Clone, Copy)]
pub enum Answer<'a> {
    /// 200 with a sync response.
    Accepted(&'a SyncResponse),
    /// A 4xx with the office's reason.
    Refused { status: u16, body: &'a ErrorBody },
    /// No answer, a 5xx, or an answer that could not be read.
    NoAnswer,
}

/// When to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// More is waiting and the office is answering: send again at once.
    SendAgain,
    /// Nothing left that the office will take now: wait for the next tick or a new event.
    Idle,
    /// The office could not be reached or refused the whole request: back off before retrying.
    BackOff,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub updates: Vec<OutboxUpdate>,
    pub next: Next,
}

/// Decides what the office's answer to a batch of `sent` ids means. `more_waiting` says whether events beyond
/// the batch are waiting. Only ids that were sent can change, and only to what the office said about them.
pub fn after_answer(sent: &[EventId], answer: Answer<'_>, more_waiting: bool) -> Plan {
    let sent_set: HashSet<&EventId> = sent.iter().collect();
    match answer {
        Answer::Accepted(response) => {
            let updates: Vec<OutboxUpdate> = response
                .results
                .iter()
                .filter(|r| sent_set.contains(&r.id))
                .filter(|r| matches!(r.outcome, EventOutcome::Stored | EventOutcome::Duplicate))
                .map(|r| OutboxUpdate::Confirm(r.id))
                .collect();
            // Every id sent must be confirmed; counting updates would let a repeated result hide a missing one.
            let confirmed: HashSet<&EventId> = updates
                .iter()
                .filter_map(|u| match u {
                    OutboxUpdate::Confirm(id) => Some(id),
                    OutboxUpdate::Refuse { .. } => None,
                })
                .collect();
            let all_answered = confirmed.len() == sent_set.len();
            let next = if !all_answered {
                Next::BackOff
            } else if more_waiting {
                Next::SendAgain
            } else {
                Next::Idle
            };
            Plan { updates, next }
        }
        Answer::Refused { body, .. } => {
            let updates: Vec<OutboxUpdate> = body
                .rejected
                .iter()
                .filter(|r| sent_set.contains(&r.id))
                .map(|r| OutboxUpdate::Refuse {
                    id: r.id,
                    reason: r.reason.clone(),
                })
                .collect();
            // Events the office named are set aside; the rest of the batch goes again at once.
            let next = if updates.is_empty() {
                Next::BackOff
            } else {
                Next::SendAgain
            };
            Plan { updates, next }
        }
        Answer::NoAnswer => Plan {
            updates: Vec::new(),
            next: Next::BackOff,
        },
    }
}
