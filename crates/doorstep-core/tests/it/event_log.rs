//! The phone's event log against real SQLite files: sequence numbers and ids, reopening, the device check,
//! WAL, immutable events, outbox verdicts, sync status, holdings and refusing invalid events.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use doorstep_core::event::EnvelopeError;
use doorstep_core::event_log::{Delivery, EventLog, LogError, OutboxStatus};
use doorstep_core::ids::{EventId, VisitId};
use doorstep_core::lifecycle::{CancelReason, DuressVia, VisitEvent};
use doorstep_core::sync_plan::OutboxUpdate;
use tempfile::TempDir;

use crate::support::{at_min, device, holdings, staff, visit_id};

/// A fresh log file in its own temporary folder (kept alive by the returned `TempDir`).
fn fresh() -> (TempDir, PathBuf, EventLog) {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("doorstep.sqlite");
    let log = EventLog::open(&path, &device("phone-a")).unwrap();
    (dir, path, log)
}

fn checked_in(who: &str) -> VisitEvent {
    VisitEvent::CheckedIn { staff: staff(who) }
}

fn record_n(log: &mut EventLog, n: i64) -> Vec<doorstep_core::event::EventEnvelope> {
    (1..=n)
        .map(|minute| {
            log.record(&visit_id(), checked_in("a"), at_min(minute))
                .unwrap()
        })
        .collect()
}

fn ids(envelopes: &[doorstep_core::event::EventEnvelope]) -> Vec<EventId> {
    envelopes.iter().map(|e| e.id).collect()
}

fn raw(path: &std::path::Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    conn
}

#[test]
fn record_numbers_events_from_one_with_uuid_v7_ids() {
    let (_dir, _path, mut log) = fresh();
    let recorded = record_n(&mut log, 3);
    let seqs: Vec<u64> = recorded.iter().map(|e| e.seq.get()).collect();
    assert_eq!(seqs, [1, 2, 3]);
    for envelope in &recorded {
        assert_eq!(
            envelope.id.as_uuid().get_version_num(),
            7,
            "{}",
            envelope.id
        );
        assert_eq!(envelope.device, device("phone-a"));
        assert_eq!(envelope.visit, visit_id());
        assert_eq!(envelope.event, checked_in("a"));
    }
    assert_eq!(recorded[1].recorded_at, at_min(2));
    let mut unique = ids(&recorded);
    unique.dedup();
    assert_eq!(unique.len(), 3);
    assert_eq!(log.waiting().unwrap(), recorded);
    assert_eq!(log.device(), &device("phone-a"));
}

#[test]
fn reopening_the_file_keeps_every_event_and_continues_the_sequence() {
    let (_dir, path, mut log) = fresh();
    let before = record_n(&mut log, 3);
    log.apply(&[OutboxUpdate::Confirm(before[0].id)], at_min(10))
        .unwrap();
    drop(log);

    let mut log = EventLog::open(&path, &device("phone-a")).unwrap();
    assert_eq!(log.waiting().unwrap(), before[1..].to_vec());
    assert_eq!(
        log.delivery(before[0].id).unwrap(),
        Some(Delivery::Confirmed { at: at_min(10) })
    );
    let next = log
        .record(&visit_id(), checked_in("b"), at_min(11))
        .unwrap();
    assert_eq!(next.seq.get(), 4);
    let history: Vec<EventId> = log
        .events_for_visit(&visit_id())
        .unwrap()
        .into_iter()
        .map(|(envelope, _)| envelope.id)
        .collect();
    assert_eq!(history, [ids(&before), vec![next.id]].concat());
}

#[test]
fn a_file_belongs_to_the_device_that_created_it() {
    let (_dir, path, mut log) = fresh();
    record_n(&mut log, 1);
    drop(log);
    match EventLog::open(&path, &device("phone-b")) {
        Err(LogError::WrongDevice { expected, found }) => {
            assert_eq!(expected, device("phone-b"));
            assert_eq!(found, device("phone-a"));
        }
        other => panic!("expected WrongDevice, got {other:?}"),
    }
    // The refusal changed nothing: the owner still opens it and finds its event.
    let log = EventLog::open(&path, &device("phone-a")).unwrap();
    assert_eq!(log.waiting().unwrap().len(), 1);
}

#[test]
fn the_file_is_in_wal_mode() {
    // `synchronous = FULL` is a per-connection setting that `EventLog` does not expose; it is set in
    // `EventLog::open` next to journal_mode. WAL, unlike it, is stored in the file, so another connection sees it.
    let (_dir, path, mut log) = fresh();
    record_n(&mut log, 1);
    let conn = raw(&path);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn recorded_events_cannot_be_edited_or_deleted() {
    let (_dir, path, mut log) = fresh();
    let recorded = record_n(&mut log, 2);
    let conn = raw(&path);
    let update = conn.execute("UPDATE events SET body = '{}' WHERE seq = 1", []);
    assert!(
        update
            .as_ref()
            .is_err_and(|e| e.to_string().contains("immutable")),
        "{update:?}"
    );
    let delete = conn.execute("DELETE FROM events WHERE seq = 2", []);
    assert!(
        delete
            .as_ref()
            .is_err_and(|e| e.to_string().contains("never deleted")),
        "{delete:?}"
    );
    let count: i64 = conn
        .query_row("SELECT COUNT(*) FROM events", [], |row| row.get(0))
        .unwrap();
    assert_eq!(count, 2);
    drop(conn);
    assert_eq!(log.waiting().unwrap(), recorded);
}

#[test]
fn a_confirmed_event_leaves_the_outbox() {
    let (_dir, _path, mut log) = fresh();
    let recorded = record_n(&mut log, 3);
    log.note_sent(&ids(&recorded), at_min(5)).unwrap();
    assert_eq!(
        log.delivery(recorded[1].id).unwrap(),
        Some(Delivery::Waiting { attempts: 1 })
    );
    log.apply(&[OutboxUpdate::Confirm(recorded[1].id)], at_min(6))
        .unwrap();
    assert_eq!(
        log.delivery(recorded[1].id).unwrap(),
        Some(Delivery::Confirmed { at: at_min(6) })
    );
    assert_eq!(
        ids(&log.waiting().unwrap()),
        [recorded[0].id, recorded[2].id]
    );
    // Sending again counts attempts only for what is still waiting.
    log.note_sent(&ids(&recorded), at_min(7)).unwrap();
    assert_eq!(
        log.delivery(recorded[0].id).unwrap(),
        Some(Delivery::Waiting { attempts: 2 })
    );
    assert_eq!(
        log.delivery(recorded[1].id).unwrap(),
        Some(Delivery::Confirmed { at: at_min(6) })
    );
}

#[test]
fn a_refused_event_keeps_the_office_reason_and_is_not_sent_again() {
    let (_dir, _path, mut log) = fresh();
    let recorded = record_n(&mut log, 2);
    log.apply(
        &[OutboxUpdate::Refuse {
            id: recorded[0].id,
            reason: "staff not on this visit".into(),
        }],
        at_min(5),
    )
    .unwrap();
    assert_eq!(
        log.delivery(recorded[0].id).unwrap(),
        Some(Delivery::Refused {
            reason: "staff not on this visit".into()
        })
    );
    assert_eq!(ids(&log.waiting().unwrap()), [recorded[1].id]);
    let history = log.events_for_visit(&visit_id()).unwrap();
    assert_eq!(
        history[0].1,
        Delivery::Refused {
            reason: "staff not on this visit".into()
        }
    );
    assert_eq!(history[1].1, Delivery::Waiting { attempts: 0 });
}

#[test]
fn a_confirmation_is_never_taken_back() {
    let (_dir, _path, mut log) = fresh();
    let recorded = record_n(&mut log, 1);
    let id = recorded[0].id;
    log.apply(&[OutboxUpdate::Confirm(id)], at_min(5)).unwrap();
    log.apply(
        &[OutboxUpdate::Refuse {
            id,
            reason: "late refusal".into(),
        }],
        at_min(6),
    )
    .unwrap();
    log.apply(&[OutboxUpdate::Confirm(id)], at_min(7)).unwrap();
    assert_eq!(
        log.delivery(id).unwrap(),
        Some(Delivery::Confirmed { at: at_min(5) })
    );
    assert_eq!(log.status().unwrap().refused, 0);
}

#[test]
fn a_refusal_is_not_turned_into_a_confirmation_either() {
    let (_dir, _path, mut log) = fresh();
    let id = record_n(&mut log, 1)[0].id;
    let refuse = OutboxUpdate::Refuse {
        id,
        reason: "bad".into(),
    };
    log.apply(&[refuse, OutboxUpdate::Confirm(id)], at_min(5))
        .unwrap();
    assert_eq!(
        log.delivery(id).unwrap(),
        Some(Delivery::Refused {
            reason: "bad".into()
        })
    );
}

#[test]
fn delivery_of_an_unknown_event_is_none() {
    let (_dir, _path, mut log) = fresh();
    record_n(&mut log, 1);
    assert_eq!(log.delivery(EventId::new_v7()).unwrap(), None);
}

#[test]
fn status_counts_the_outbox_and_remembers_when_failures_began() {
    let (_dir, _path, mut log) = fresh();
    assert_eq!(log.status().unwrap(), OutboxStatus::default());
    let recorded = record_n(&mut log, 4);
    log.apply(
        &[
            OutboxUpdate::Confirm(recorded[0].id),
            OutboxUpdate::Refuse {
                id: recorded[1].id,
                reason: "no".into(),
            },
        ],
        at_min(5),
    )
    .unwrap();
    let status = log.status().unwrap();
    assert_eq!((status.waiting, status.refused), (2, 1));

    log.note_sync_failure(at_min(10), "timed out").unwrap();
    log.note_sync_failure(at_min(11), "connection refused")
        .unwrap();
    let status = log.status().unwrap();
    assert_eq!(status.failing_since, Some(at_min(10)));
    assert_eq!(status.last_error.as_deref(), Some("connection refused"));
    assert_eq!(status.last_success_at, None);

    log.note_sync_success(at_min(12), at_min(12)).unwrap();
    let status = log.status().unwrap();
    assert_eq!(status.failing_since, None);
    assert_eq!(status.last_error, None);
    assert_eq!(status.last_success_at, Some(at_min(12)));

    log.note_sync_failure(at_min(20), "offline").unwrap();
    let status = log.status().unwrap();
    assert_eq!(status.failing_since, Some(at_min(20)));
    assert_eq!(status.last_success_at, Some(at_min(12)));
    assert!(!status.office_refused);

    // Refused by the office: still failing since the first failure, and known to be a refusal until the
    // next silence or success says otherwise.
    log.note_sync_refusal(at_min(21), "unknown device token")
        .unwrap();
    let status = log.status().unwrap();
    assert_eq!(status.failing_since, Some(at_min(20)));
    assert!(status.office_refused);
    log.note_sync_failure(at_min(22), "offline").unwrap();
    assert!(!log.status().unwrap().office_refused);
    log.note_sync_refusal(at_min(23), "unknown device token")
        .unwrap();
    log.note_sync_success(at_min(24), at_min(24)).unwrap();
    assert!(!log.status().unwrap().office_refused);
}

#[test]
fn the_phones_clock_offset_is_kept_from_the_last_completed_exchange() {
    let (_dir, _path, mut log) = fresh();
    assert_eq!(log.phone_clock_ahead().unwrap(), None);
    // The phone read 10:07 when the office's answer, stamped 10:00, arrived: seven minutes fast.
    log.note_sync_success(at_min(7), at_min(0)).unwrap();
    assert_eq!(
        log.phone_clock_ahead().unwrap(),
        Some(chrono::TimeDelta::minutes(7))
    );
    assert_eq!(
        log.status().unwrap().phone_clock_ahead,
        Some(chrono::TimeDelta::minutes(7))
    );
    // A failure keeps the last measurement; the next answer replaces it.
    log.note_sync_failure(at_min(8), "offline").unwrap();
    assert_eq!(
        log.phone_clock_ahead().unwrap(),
        Some(chrono::TimeDelta::minutes(7))
    );
    log.note_sync_success(at_min(9), at_min(12)).unwrap();
    assert_eq!(
        log.phone_clock_ahead().unwrap(),
        Some(chrono::TimeDelta::minutes(-3))
    );
}

#[test]
fn holdings_round_trip_and_are_replaced_whole() {
    let (dir, path, mut log) = fresh();
    assert_eq!(log.holdings().unwrap(), None);
    let first = holdings();
    log.save_holdings(&first, at_min(1)).unwrap();
    assert_eq!(log.holdings().unwrap(), Some(first.clone()));

    let mut second = first.clone();
    second.visits.clear();
    second.staff_name = "Staff A (renamed)".into();
    log.save_holdings(&second, at_min(2)).unwrap();
    drop(log);
    let log = EventLog::open(&path, &device("phone-a")).unwrap();
    assert_eq!(log.holdings().unwrap(), Some(second));
    drop(dir);
}

#[test]
fn an_invalid_event_is_refused_and_nothing_is_written() {
    let (_dir, _path, mut log) = fresh();
    let recorded = record_n(&mut log, 2);
    let too_long = VisitEvent::Cancelled {
        staff: staff("a"),
        reason: CancelReason::Other,
        note: "x".repeat(4_001),
    };
    match log.record(&visit_id(), too_long, at_min(3)) {
        Err(LogError::Invalid(EnvelopeError::TextTooLong)) => {}
        other => panic!("expected TextTooLong, got {other:?}"),
    }
    let implausible: DateTime<Utc> = "2019-12-31T23:59:59Z".parse().unwrap();
    match log.record(&visit_id(), checked_in("a"), implausible) {
        Err(LogError::Invalid(EnvelopeError::ImplausibleTime(t))) => assert_eq!(t, implausible),
        other => panic!("expected ImplausibleTime, got {other:?}"),
    }
    assert_eq!(log.waiting().unwrap(), recorded);
    assert_eq!(log.status().unwrap().waiting, 2);
    let next = log.record(&visit_id(), checked_in("a"), at_min(4)).unwrap();
    assert_eq!(next.seq.get(), 3);

    // Exactly at the limit is fine.
    let at_limit = VisitEvent::Cancelled {
        staff: staff("a"),
        reason: CancelReason::Other,
        note: "é".repeat(4_000),
    };
    assert_eq!(
        log.record(&visit_id(), at_limit, at_min(5))
            .unwrap()
            .seq
            .get(),
        4
    );
}

#[test]
fn events_for_a_visit_leave_out_other_visits() {
    let (_dir, _path, mut log) = fresh();
    let other = VisitId::parse("visit-2").unwrap();
    let mine = log.record(&visit_id(), checked_in("a"), at_min(1)).unwrap();
    let duress = VisitEvent::DuressRaised {
        staff: staff("a"),
        via: DuressVia::DuressPin,
    };
    let theirs = log.record(&other, duress, at_min(2)).unwrap();
    let listed = |visit: &VisitId| -> Vec<EventId> {
        log.events_for_visit(visit)
            .unwrap()
            .into_iter()
            .map(|(e, _)| e.id)
            .collect()
    };
    assert_eq!(listed(&visit_id()), [mine.id]);
    assert_eq!(listed(&other), [theirs.id]);
}
