//! Table tests of reconciliation: which sequence range the phone asks about, and what the office's answer
//! means for each of its events; and the event log carrying it out on a real SQLite file.

use chrono::TimeDelta;
use doorstep_core::event_log::{Delivery, EventLog};
use doorstep_core::ids::{DeviceSeq, EventId};
use doorstep_core::lifecycle::VisitEvent;
use doorstep_core::reconcile::{
    plan, range, HeldSeq, PhoneEvent, ReconcileResponse, Reconciliation, Restored, Standing,
    MAX_RECONCILE_SPAN, RECONCILE_SPAN,
};
use doorstep_core::sync_plan::OutboxUpdate;

use crate::support::{device, staff, visit_id};

fn seq(n: u64) -> DeviceSeq {
    DeviceSeq::new(n).unwrap()
}

fn event(n: u64, standing: Standing) -> PhoneEvent {
    PhoneEvent {
        seq: seq(n),
        id: EventId::new_v7(),
        standing,
    }
}

fn answer(held: &[(u64, EventId)], highest: Option<u64>) -> ReconcileResponse {
    ReconcileResponse {
        protocol: 1,
        held: held
            .iter()
            .map(|(n, id)| HeldSeq {
                seq: seq(*n),
                id: *id,
            })
            .collect(),
        highest_seq: highest.map(seq),
        server_time: doorstep_core::test_support::at(10, 0),
    }
}

#[test]
fn the_phone_asks_about_its_recent_numbers_and_every_one_still_open() {
    use Standing::*;
    // (what, the phone's events, its last number, the range it asks about)
    type Case = (&'static str, Vec<PhoneEvent>, u64, (u64, u64));
    let cases: Vec<Case> = vec![
        ("a new phone asks about number 1", vec![], 0, (1, 1)),
        (
            "a few events",
            vec![event(1, Confirmed), event(2, Waiting)],
            2,
            (1, 2),
        ),
        (
            "the last span only, when all older ones are confirmed",
            vec![event(10, Confirmed)],
            1_000,
            (1_000 - RECONCILE_SPAN + 1, 1_000),
        ),
        (
            "wider, to take in an old event still waiting",
            vec![event(300, Waiting), event(900, Confirmed)],
            1_000,
            (300, 1_000),
        ),
        (
            "and one refused",
            vec![event(250, Refused)],
            1_000,
            (250, 1_000),
        ),
        (
            "never wider than the office answers for",
            vec![event(2, Waiting)],
            10_000,
            (10_000 - MAX_RECONCILE_SPAN + 1, 10_000),
        ),
    ];
    for (what, events, last, (from, through)) in cases {
        assert_eq!(range(&events, last), (seq(from), seq(through)), "{what}");
    }
}

#[test]
fn the_answer_says_what_to_send_again_what_to_record_again_and_whether_the_phone_was_restored() {
    use Standing::*;
    let confirmed_held = event(1, Confirmed);
    let confirmed_lost = event(2, Confirmed);
    let waiting_new = event(3, Waiting);
    let waiting_held = event(4, Waiting);
    let waiting_taken = event(5, Waiting);
    let refused_taken = event(6, Refused);
    let refused_other = event(7, Refused);
    let events = [
        confirmed_held,
        confirmed_lost,
        waiting_new,
        waiting_held,
        waiting_taken,
        refused_taken,
        refused_other,
    ];
    let office = answer(
        &[
            (1, confirmed_held.id),
            (4, waiting_held.id),
            (5, EventId::new_v7()),
            (6, EventId::new_v7()),
        ],
        Some(7),
    );
    let decided = plan(&events, 7, &office);
    assert_eq!(decided.send_again, [confirmed_lost.id]);
    assert_eq!(decided.record_again, [waiting_taken.id, refused_taken.id]);
    // In that answer the office holds two numbers under other events: the phone was restored.
    assert_eq!(
        plan(&events, 7, &office).restored,
        Some(Restored {
            office_seq: 7,
            only_at_office: 2
        })
    );
    // The office holds numbers past the phone's last: restored from a backup.
    let phone = [
        event(1, Confirmed),
        event(2, Confirmed),
        event(3, Confirmed),
    ];
    let held: Vec<(u64, EventId)> = phone.iter().map(|e| (e.seq.get(), e.id)).collect();
    assert_eq!(
        plan(&phone, 3, &answer(&held, Some(12))).restored,
        Some(Restored {
            office_seq: 12,
            only_at_office: 9
        })
    );
    assert!(plan(&events[..1], 7, &answer(&[(1, confirmed_held.id)], Some(7))).is_empty());
    assert!(
        plan(&[], 0, &answer(&[], None)).is_empty(),
        "a new phone, a new office"
    );
}

#[test]
fn the_log_sends_again_records_again_under_new_numbers_and_moves_past_a_restore() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = EventLog::open(&dir.path().join("phone.sqlite3"), &device("phone-a")).unwrap();
    let now = doorstep_core::test_support::at(10, 0);
    let check_in = || VisitEvent::CheckedIn { staff: staff("a") };
    let first = log.record(&visit_id(), check_in(), now).unwrap();
    let second = log.record(&visit_id(), check_in(), now).unwrap();
    log.apply(&[OutboxUpdate::Confirm(first.id)], now).unwrap();

    // The office lost the first; the second's number belongs to another event there; and the office
    // holds up to 9 from this device.
    let plan = Reconciliation {
        send_again: vec![first.id],
        record_again: vec![second.id],
        restored: Some(Restored {
            office_seq: 9,
            only_at_office: 7,
        }),
    };
    let later = now + TimeDelta::seconds(5);
    let again = log.apply_reconciliation(&plan, later).unwrap();
    assert_eq!(again.len(), 1);
    let renumbered = &again[0];
    assert_eq!(
        renumbered.seq.get(),
        10,
        "after everything the office holds"
    );
    assert_ne!(renumbered.id, second.id);
    assert_eq!(
        (&renumbered.event, renumbered.recorded_at, &renumbered.visit),
        (&second.event, second.recorded_at, &second.visit),
        "the same event, at the same time"
    );
    assert_eq!(log.last_seq().unwrap(), 10);

    let waiting: Vec<EventId> = log.waiting().unwrap().iter().map(|e| e.id).collect();
    assert_eq!(waiting, [first.id, renumbered.id]);
    let listed: Vec<EventId> = log
        .events_for_visit(&visit_id())
        .unwrap()
        .iter()
        .map(|(e, _)| e.id)
        .collect();
    assert_eq!(
        listed,
        [first.id, renumbered.id],
        "the old number is gone from the visit"
    );
    // The old id stands where its successor does.
    log.apply(&[OutboxUpdate::Confirm(renumbered.id)], later)
        .unwrap();
    assert!(matches!(
        log.delivery(second.id).unwrap(),
        Some(Delivery::Confirmed { .. })
    ));

    let status = log.status().unwrap();
    assert_eq!(status.waiting, 1);
    assert_eq!(status.refused, 0, "a superseded event is not a refused one");
    let note = status.restored.expect("the restore is noted");
    assert_eq!((note.office_seq, note.only_at_office), (9, 7));

    // The next event follows on; a second restore note never moves the numbering back.
    let next = log.record(&visit_id(), check_in(), later).unwrap();
    assert_eq!(next.seq.get(), 11);
    log.apply_reconciliation(
        &Reconciliation {
            restored: Some(Restored {
                office_seq: 5,
                only_at_office: 2,
            }),
            ..Reconciliation::default()
        },
        later,
    )
    .unwrap();
    assert_eq!(log.last_seq().unwrap(), 11);
    assert_eq!(log.status().unwrap().restored.unwrap().office_seq, 9);
}

#[test]
fn a_phone_log_from_before_reconciliation_opens_with_its_events_and_outbox_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phone.sqlite3");
    {
        // The schema as the three earlier migrations left it, with one confirmed and one waiting event.
        let conn = rusqlite::Connection::open(&path).unwrap();
        let before: Vec<&str> = doorstep_core::event_log::MIGRATIONS
            .iter()
            .take_while(|(name, _)| *name != "V4__reconcile")
            .map(|(_, sql)| *sql)
            .collect();
        assert_eq!(before.len(), 3);
        for (version, sql) in before.iter().enumerate() {
            conn.execute_batch(sql).unwrap();
            conn.pragma_update(None, "user_version", version as i64 + 1)
                .unwrap();
        }
        conn.execute(
            "INSERT INTO device (id, device_id, last_seq) VALUES (1, 'phone-a', 2)",
            [],
        )
        .unwrap();
    }
    let now = doorstep_core::test_support::at(10, 0);
    let (confirmed, waiting) = {
        // The rows as version 3 wrote them.
        let conn = rusqlite::Connection::open(&path).unwrap();
        let mut ids = Vec::new();
        for (n, state) in [(1, "confirmed"), (2, "waiting")] {
            let envelope = doorstep_core::event::EventEnvelope {
                id: EventId::new_v7(),
                device: device("phone-a"),
                seq: seq(n),
                visit: visit_id(),
                recorded_at: now,
                event: VisitEvent::CheckedIn { staff: staff("a") },
            };
            conn.execute(
                "INSERT INTO events (id, seq, visit_id, recorded_at, urgent, body) VALUES (?1, ?2, ?3, ?4, 0, ?5)",
                rusqlite::params![
                    envelope.id.to_string(),
                    n as i64,
                    visit_id().as_str(),
                    now.to_rfc3339(),
                    serde_json::to_string(&envelope).unwrap()
                ],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO outbox (event_id, state, attempts, confirmed_at) VALUES (?1, ?2, 1, ?3)",
                rusqlite::params![envelope.id.to_string(), state, now.to_rfc3339()],
            )
            .unwrap();
            ids.push(envelope.id);
        }
        (ids[0], ids[1])
    };
    let log = EventLog::open(&path, &device("phone-a")).unwrap();
    assert!(matches!(
        log.delivery(confirmed).unwrap(),
        Some(Delivery::Confirmed { .. })
    ));
    assert_eq!(
        log.delivery(waiting).unwrap(),
        Some(Delivery::Waiting { attempts: 1 })
    );
    assert_eq!(log.last_seq().unwrap(), 2);
    assert_eq!(log.status().unwrap().restored, None);
}
