//! Table tests of the sync planner: which events go in the next batch, and what each kind of answer from the
//! office means for the outbox and for when to try again.

use doorstep_core::event::EventEnvelope;
use doorstep_core::ids::EventId;
use doorstep_core::lifecycle::{DuressVia, VisitEvent};
use doorstep_core::protocol::{
    ErrorBody, EventOutcome, EventResult, RejectedEvent, SyncResponse, PROTOCOL_VERSION,
};
use doorstep_core::sync_plan::{
    after_answer, next_batch, next_batch_within, Answer, Next, OutboxUpdate, Plan,
};

use crate::support::{at_min, envelope, holdings, staff};

fn ordinary(n: u64) -> EventEnvelope {
    envelope(
        "phone-a",
        n,
        at_min(n as i64),
        VisitEvent::CheckedIn { staff: staff("a") },
    )
}

fn urgent(n: u64) -> EventEnvelope {
    let raised = VisitEvent::DuressRaised {
        staff: staff("a"),
        via: DuressVia::CodePhraseButton,
    };
    envelope("phone-a", n, at_min(n as i64), raised)
}

fn seqs(batch: &[EventEnvelope]) -> Vec<u64> {
    batch.iter().map(|e| e.seq.get()).collect()
}

#[test]
fn next_batch_sends_duress_alone_first_then_sequence_order_within_the_limit() {
    // (waiting, as the outbox lists them; limit; expected batch by sequence number)
    let table: Vec<(&str, Vec<EventEnvelope>, usize, Vec<u64>)> = vec![
        ("nothing waiting", vec![], 10, vec![]),
        (
            "in order already",
            vec![ordinary(1), ordinary(2), ordinary(3)],
            10,
            vec![1, 2, 3],
        ),
        (
            "listed out of order",
            vec![ordinary(3), ordinary(1), ordinary(2)],
            10,
            vec![1, 2, 3],
        ),
        (
            "duress jumps the queue and goes alone",
            vec![ordinary(1), ordinary(2), urgent(3)],
            10,
            vec![3],
        ),
        (
            "two alerts keep their order",
            vec![urgent(5), ordinary(1), urgent(2), ordinary(4)],
            10,
            vec![2, 5],
        ),
        (
            "limit keeps the oldest",
            vec![ordinary(1), ordinary(2), ordinary(3)],
            2,
            vec![1, 2],
        ),
        (
            "limit keeps duress",
            vec![ordinary(1), ordinary(2), urgent(3)],
            1,
            vec![3],
        ),
        ("limit of nothing", vec![urgent(1)], 0, vec![]),
    ];
    for (what, waiting, limit, expected) in table {
        let batch = next_batch(&waiting, limit);
        assert_eq!(seqs(&batch), expected, "{what}");
        for sent in &batch {
            assert!(
                waiting.contains(sent),
                "{what}: batch holds an event not waiting"
            );
        }
    }
}

#[test]
fn a_batch_stops_before_its_byte_budget_but_always_carries_one_event() {
    let waiting: Vec<EventEnvelope> = (1..=10).map(ordinary).collect();
    let one = serde_json::to_vec(&waiting[0]).unwrap().len() + 1;
    // (budget in bytes, expected batch)
    let table: Vec<(usize, Vec<u64>)> = vec![
        (0, vec![1]),
        (one - 1, vec![1]),
        (one, vec![1]),
        (2 * one + 1, vec![1, 2]),
        (3 * one + 3, vec![1, 2, 3]),
        (usize::MAX, (1..=10).collect()),
    ];
    for (budget, expected) in table {
        assert_eq!(
            seqs(&next_batch_within(&waiting, 100, budget)),
            expected,
            "budget {budget}"
        );
    }
    // The standard budget lets a whole visit's ordinary steps go in one request.
    assert_eq!(next_batch(&waiting, 100).len(), 10);
}

#[test]
fn next_batch_respects_the_standard_limits() {
    let waiting: Vec<EventEnvelope> = (1..=250).map(ordinary).collect();
    let batch = next_batch_within(&waiting, doorstep_core::sync_plan::BATCH_LIMIT, usize::MAX);
    assert_eq!(seqs(&batch), (1..=100).collect::<Vec<u64>>());
    // With the standard byte budget too: the oldest first, and no more bytes than it allows.
    let batch = next_batch(&waiting, doorstep_core::sync_plan::BATCH_LIMIT);
    let bytes: usize = batch
        .iter()
        .map(|e| serde_json::to_vec(e).unwrap().len() + 1)
        .sum();
    assert!(bytes <= doorstep_core::sync_plan::BATCH_BYTES, "{bytes}");
    assert!(batch.len() > 50, "{}", batch.len());
    assert_eq!(seqs(&batch), (1..=batch.len() as u64).collect::<Vec<u64>>());
}

fn ids(n: usize) -> Vec<EventId> {
    (0..n).map(|_| EventId::new_v7()).collect()
}

fn response(results: Vec<(EventId, EventOutcome)>) -> SyncResponse {
    SyncResponse {
        protocol: PROTOCOL_VERSION,
        results: results
            .into_iter()
            .map(|(id, outcome)| EventResult { id, outcome })
            .collect(),
        acknowledged_through: None,
        server_time: at_min(30),
        hold: holdings(),
        renewed_credential: None,
    }
}

fn refused(rejected: Vec<(EventId, &str)>) -> ErrorBody {
    ErrorBody {
        error: if rejected.is_empty() {
            "unknown_device".into()
        } else {
            "event_rejected".into()
        },
        message: "The office refused the batch".into(),
        rejected: rejected
            .into_iter()
            .map(|(id, reason)| RejectedEvent {
                id,
                reason: reason.into(),
            })
            .collect(),
    }
}

/// One row of an answer table: the case, what the office said about each event, whether more events are
/// waiting beyond the batch, and the plan expected.
type Case<'a, Said> = (&'a str, Vec<Said>, bool, Plan);

fn confirm(ids: &[EventId]) -> Vec<OutboxUpdate> {
    ids.iter().copied().map(OutboxUpdate::Confirm).collect()
}

#[test]
fn an_accepted_batch_confirms_what_the_office_stored() {
    use EventOutcome::{Duplicate, Stored};
    let sent = ids(3);
    let [a, b, c] = [sent[0], sent[1], sent[2]];
    let stranger = EventId::new_v7();
    let table: Vec<Case<(EventId, EventOutcome)>> = vec![
        (
            "all stored, nothing more",
            vec![(a, Stored), (b, Stored), (c, Stored)],
            false,
            Plan {
                updates: confirm(&[a, b, c]),
                next: Next::Idle,
            },
        ),
        (
            "all stored, more waiting",
            vec![(a, Stored), (b, Stored), (c, Stored)],
            true,
            Plan {
                updates: confirm(&[a, b, c]),
                next: Next::SendAgain,
            },
        ),
        (
            "duplicates count as stored",
            vec![(a, Duplicate), (b, Stored), (c, Duplicate)],
            false,
            Plan {
                updates: confirm(&[a, b, c]),
                next: Next::Idle,
            },
        ),
        (
            "an id that was not sent is ignored",
            vec![(a, Stored), (stranger, Stored), (b, Stored), (c, Stored)],
            true,
            Plan {
                updates: confirm(&[a, b, c]),
                next: Next::SendAgain,
            },
        ),
        (
            "a missing result means back off, and only the answered are confirmed",
            vec![(a, Stored), (c, Duplicate)],
            true,
            Plan {
                updates: confirm(&[a, c]),
                next: Next::BackOff,
            },
        ),
        (
            "a stranger does not stand in for a missing result",
            vec![(a, Stored), (b, Stored), (stranger, Stored)],
            false,
            Plan {
                updates: confirm(&[a, b]),
                next: Next::BackOff,
            },
        ),
        (
            "a repeated result does not stand in for a missing one",
            vec![(a, Stored), (b, Stored), (b, Duplicate)],
            false,
            Plan {
                updates: confirm(&[a, b, b]),
                next: Next::BackOff,
            },
        ),
        (
            "no results at all",
            vec![],
            false,
            Plan {
                updates: vec![],
                next: Next::BackOff,
            },
        ),
    ];
    for (what, results, more_waiting, expected) in table {
        let answer = response(results);
        let plan = after_answer(&sent, Answer::Accepted(&answer), more_waiting);
        assert_eq!(plan, expected, "{what}");
    }
}

#[test]
fn an_empty_batch_answered_with_nothing_is_complete() {
    let answer = response(vec![]);
    let plan = after_answer(&[], Answer::Accepted(&answer), true);
    assert_eq!(
        plan,
        Plan {
            updates: vec![],
            next: Next::SendAgain
        }
    );
}

#[test]
fn a_refused_batch_sets_aside_only_the_named_events_that_were_sent() {
    let sent = ids(3);
    let [a, b, c] = [sent[0], sent[1], sent[2]];
    let stranger = EventId::new_v7();
    let refuse = |id: EventId, reason: &str| OutboxUpdate::Refuse {
        id,
        reason: reason.into(),
    };
    let table: Vec<Case<(EventId, &str)>> = vec![
        (
            "one named",
            vec![(b, "staff not on the visit")],
            false,
            Plan {
                updates: vec![refuse(b, "staff not on the visit")],
                next: Next::SendAgain,
            },
        ),
        (
            "two named, each with its reason",
            vec![(a, "too long"), (c, "conflicting event")],
            true,
            Plan {
                updates: vec![refuse(a, "too long"), refuse(c, "conflicting event")],
                next: Next::SendAgain,
            },
        ),
        (
            "a named id that was not sent is ignored",
            vec![(stranger, "unknown"), (a, "too long")],
            false,
            Plan {
                updates: vec![refuse(a, "too long")],
                next: Next::SendAgain,
            },
        ),
        (
            "only strangers named: nothing to set aside",
            vec![(stranger, "unknown")],
            false,
            Plan {
                updates: vec![],
                next: Next::BackOff,
            },
        ),
        (
            "the whole request refused",
            vec![],
            true,
            Plan {
                updates: vec![],
                next: Next::BackOff,
            },
        ),
    ];
    for (what, rejected, more_waiting, expected) in table {
        let body = refused(rejected);
        for status in [400, 409, 422] {
            let plan = after_answer(
                &sent,
                Answer::Refused {
                    status,
                    body: &body,
                },
                more_waiting,
            );
            assert_eq!(plan, expected, "{what} ({status})");
        }
    }
}

#[test]
fn no_answer_means_back_off_and_change_nothing() {
    for (sent, more_waiting) in [(ids(0), false), (ids(1), false), (ids(5), true)] {
        assert_eq!(
            after_answer(&sent, Answer::NoAnswer, more_waiting),
            Plan {
                updates: vec![],
                next: Next::BackOff
            }
        );
    }
}
