//! Sync planning as pure functions: what to send next, and what the office's answer means for each event.
//! The transport (HTTP on the phone) sits around these; the planner never touches a socket or a file.

use std::collections::HashSet;

use crate::event::EventEnvelope;
use crate::ids::EventId;
use crate::protocol::{ErrorBody, EventOutcome, SyncResponse};

/// How many events one request carries.
pub const BATCH_LIMIT: usize = 100;

/// The most bytes of encoded events one request carries (a single larger event still goes, alone). At 2G
/// upload speed (20 kbit/s) this is about 6.5 s on the wire, so a request on a slow link can finish inside
/// the phone's answer deadline, which grows with the request's size.
pub const BATCH_BYTES: usize = 16 * 1024;

/// The next batch, within [`BATCH_LIMIT`]-style `limit` events and [`BATCH_BYTES`]: if an urgent event
/// (duress) is waiting, the urgent events alone, so the request is as small and quick as it can be on any
/// link; otherwise the rest in the device's sequence order.
pub fn next_batch(waiting: &[EventEnvelope], limit: usize) -> Vec<EventEnvelope> {
    next_batch_within(waiting, limit, BATCH_BYTES)
}

/// [`next_batch`] with the byte budget given: events are taken in order while their encoded size fits in
/// `max_bytes`; the first one is always taken, whatever its size, so nothing can wait forever.
pub fn next_batch_within(
    waiting: &[EventEnvelope],
    limit: usize,
    max_bytes: usize,
) -> Vec<EventEnvelope> {
    let any_urgent = waiting.iter().any(|e| e.event.is_urgent());
    let mut candidates: Vec<&EventEnvelope> = waiting
        .iter()
        .filter(|e| e.event.is_urgent() == any_urgent)
        .collect();
    candidates.sort_by_key(|e| e.seq);
    let mut batch = Vec::new();
    let mut bytes = 0usize;
    for envelope in candidates.into_iter().take(limit) {
        let size = encoded_len(envelope);
        if !batch.is_empty() && bytes.saturating_add(size) > max_bytes {
            break;
        }
        bytes = bytes.saturating_add(size);
        batch.push(envelope.clone());
    }
    batch
}

/// An event's size in the request, near enough: its JSON and the comma between events.
fn encoded_len(envelope: &EventEnvelope) -> usize {
    // Serialising an envelope cannot fail (plain data, string keys); if it ever did, count it as too big
    // to share a request, which still sends it, alone.
    serde_json::to_vec(envelope).map_or(usize::MAX, |json| json.len() + 1)
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
