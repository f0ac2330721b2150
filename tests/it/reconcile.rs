//! Reconciliation end to end, through the app's own sync loop: an office restored from a backup gets back
//! the events it lost; a phone restored from a backup says so, and what it records afterwards reaches the
//! office under new numbers (an alert first of all), never under a number the office already holds.

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::Utc;
use doorstep::store::AppStore;
use doorstep::sync::{run_sync_loop, ReconcileOutcome, SyncOutcome};
use doorstep_core::event_log::Delivery;
use doorstep_core::ids::{StaffId, VisitId};
use doorstep_core::lifecycle::{BriefingCheck, Command, DuressVia};

use crate::office::*;

fn ava() -> VisitId {
    "visit-ava".parse().unwrap()
}

fn sam() -> StaffId {
    "sam".parse().unwrap()
}

/// Sam through the door of visit-ava (with Alex, said to have arrived together), then `check_ins` "I'm OK"s.
fn inside_then_check_in(store: &AppStore, check_ins: usize) {
    let card = store.visit(&ava()).unwrap().unwrap();
    let mut commands = vec![
        Command::ConfirmBriefing {
            staff: sam(),
            ticked: BriefingCheck::ALL.to_vec(),
        },
        Command::Depart {
            staff: sam(),
            expected_arrival: card.visit.agreed_time,
            expected_end: card.visit.expected_end(),
        },
        Command::ArriveTogether {
            by: sam(),
            staff: card.visit.staff_ids(),
        },
        Command::StartVisit { by: sam() },
    ];
    commands.extend((0..check_ins).map(|_| Command::CheckIn { staff: sam() }));
    for command in commands {
        store.perform(&ava(), command, Utc::now()).unwrap();
    }
}

fn check_in(store: &AppStore) -> doorstep_core::event::EventEnvelope {
    store
        .perform(&ava(), Command::CheckIn { staff: sam() }, Utc::now())
        .unwrap()
}

/// A copy of the SQLite database in `dir` named `file`, as a backup would take it.
fn back_up(dir: &Path, file: &str, to: &Path) {
    let conn = rusqlite::Connection::open(dir.join(file)).unwrap();
    conn.execute("VACUUM INTO ?1", [to.to_str().unwrap()])
        .unwrap();
}

/// Puts the backup in place of the database in `dir` (its write-ahead log goes too).
fn restore(backup: &Path, dir: &Path, file: &str) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.join(format!("{file}{suffix}")));
    }
    std::fs::copy(backup, dir.join(file)).unwrap();
}

async fn wait_until(what: &str, within: Duration, done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn office_state(office_dir: &Path) -> doorstep_core::lifecycle::VisitState {
    doorstep_office::SqliteStore::open(office_dir)
        .unwrap()
        .visit(&ava())
        .unwrap()
        .unwrap()
        .1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_office_restored_from_a_backup_gets_back_what_it_lost_when_the_phone_starts() {
    let office_dir = tempfile::tempdir().unwrap();
    let phone_dir = tempfile::tempdir().unwrap();
    let backup = tempfile::tempdir().unwrap();
    let (mut office, phones) = InProcessOffice::start_demo(office_dir.path()).await;
    let (store, client) = phone(phone_dir.path(), &phones.me);
    client.sync_once(&store, Utc::now).await;
    inside_then_check_in(&store, 1);
    assert_eq!(client.sync_once(&store, Utc::now).await.confirmed, 5);
    back_up(
        office_dir.path(),
        "office.sqlite3",
        &backup.path().join("office.sqlite3"),
    );
    check_in(&store);
    check_in(&store);
    assert_eq!(client.sync_once(&store, Utc::now).await.confirmed, 2);

    // The office's disk fails; it is restored from the backup, which lacks the last two check-ins.
    office.stop().await;
    restore(
        &backup.path().join("office.sqlite3"),
        office_dir.path(),
        "office.sqlite3",
    );
    office.restart();
    assert_eq!(office_count(office_dir.path(), "phone-sam"), 5);
    assert_eq!(
        store.status().unwrap().waiting,
        0,
        "the phone was told they were stored"
    );

    // The app starts: its loop reconciles first, puts the two back in the outbox and sends them.
    let looping = tokio::spawn(run_sync_loop(client, store.clone(), store.wake_handle()));
    wait_until(
        "the office holds all seven again",
        Duration::from_secs(15),
        || office_count(office_dir.path(), "phone-sam") == 7,
    )
    .await;
    wait_until(
        "the phone shows them confirmed",
        Duration::from_secs(15),
        || store.status().unwrap().waiting == 0,
    )
    .await;
    looping.abort();
    assert_eq!(office_max_copies(office_dir.path(), "phone-sam"), 1);
    assert!(store.reconciled_at().unwrap().is_some());
    assert_eq!(
        store.visit(&ava()).unwrap().unwrap().state,
        office_state(office_dir.path())
    );
    office.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_restored_from_a_backup_says_so_and_its_new_events_take_new_numbers() {
    let office_dir = tempfile::tempdir().unwrap();
    let phone_dir = tempfile::tempdir().unwrap();
    let backup = tempfile::tempdir().unwrap();
    let (mut office, phones) = InProcessOffice::start_demo(office_dir.path()).await;
    {
        let (store, client) = phone(phone_dir.path(), &phones.me);
        client.sync_once(&store, Utc::now).await;
        inside_then_check_in(&store, 0);
        client.sync_once(&store, Utc::now).await;
        back_up(
            phone_dir.path(),
            doorstep::config::DATABASE_FILE,
            &backup.path().join("phone"),
        );
        check_in(&store);
        check_in(&store);
        assert_eq!(client.sync_once(&store, Utc::now).await.confirmed, 2);
        assert_eq!(store.last_seq().unwrap(), 6);
    }

    // A new phone, restored from the backup: it remembers four events, the office holds six.
    restore(
        &backup.path().join("phone"),
        phone_dir.path(),
        doorstep::config::DATABASE_FILE,
    );
    let (store, client) = phone(phone_dir.path(), &phones.me);
    assert_eq!(store.last_seq().unwrap(), 4);
    // With no signal yet, the person checks in: the phone numbers it 5, a number the office holds.
    let offline = check_in(&store);
    assert_eq!(offline.seq.get(), 5);

    // Reconciliation (the loop's first act) says so and records the check-in again after the office's 6.
    let outcome = client.reconcile(&store, Utc::now).await;
    let ReconcileOutcome::Done {
        recorded_again: 1,
        sent_again: 0,
        restored: Some(restored),
    } = outcome
    else {
        panic!("unexpected: {outcome:?}");
    };
    // The office's 5 and 6 (the two check-ins after the backup) are not on this phone.
    assert_eq!((restored.office_seq, restored.only_at_office), (6, 2));
    let line = doorstep::status::status_line(
        &store.status().unwrap(),
        Utc::now(),
        chrono::FixedOffset::east_opt(0).unwrap(),
    );
    assert!(
        line.contains(
            "This phone was restored from a backup: the office has 2 earlier records from it"
        ),
        "{line}"
    );
    let report = client.sync_once(&store, Utc::now).await;
    assert_eq!(
        (report.outcome, report.confirmed, report.refused),
        (SyncOutcome::UpToDate, 1, 0)
    );
    assert!(matches!(
        store.delivery(offline.id).unwrap(),
        Some(Delivery::Confirmed { .. })
    ));
    let next = check_in(&store);
    assert_eq!(next.seq.get(), 8, "never a number the office holds");
    client.sync_once(&store, Utc::now).await;
    assert_eq!(office_count(office_dir.path(), "phone-sam"), 8);
    assert_eq!(store.status().unwrap().refused, 0);
    assert_eq!(
        store.visit(&ava()).unwrap().unwrap().state,
        office_state(office_dir.path())
    );
    office.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_phones_alert_reaches_the_office_even_under_a_number_the_office_holds() {
    let office_dir = tempfile::tempdir().unwrap();
    let phone_dir = tempfile::tempdir().unwrap();
    let backup = tempfile::tempdir().unwrap();
    let (mut office, phones) = InProcessOffice::start_demo(office_dir.path()).await;
    {
        let (store, client) = phone(phone_dir.path(), &phones.me);
        client.sync_once(&store, Utc::now).await;
        inside_then_check_in(&store, 0);
        client.sync_once(&store, Utc::now).await;
        back_up(
            phone_dir.path(),
            doorstep::config::DATABASE_FILE,
            &backup.path().join("phone"),
        );
        check_in(&store);
        client.sync_once(&store, Utc::now).await;
    }
    restore(
        &backup.path().join("phone"),
        phone_dir.path(),
        doorstep::config::DATABASE_FILE,
    );
    let (store, client) = phone(phone_dir.path(), &phones.me);
    // The restored phone's first act is an alert, under number 5, which the office holds for a check-in.
    // An alert goes before reconciliation; the office refuses its number; the phone learns it was restored,
    // reconciles, and sends the alert again under a new number.
    let alert = store
        .perform(
            &ava(),
            Command::RaiseDuress {
                staff: sam(),
                via: DuressVia::CodePhraseButton,
            },
            Utc::now(),
        )
        .unwrap();
    assert_eq!(alert.seq.get(), 5);
    let looping = tokio::spawn(run_sync_loop(client, store.clone(), store.wake_handle()));
    let office_has_alert = || {
        rusqlite::Connection::open(office_dir.path().join("office.sqlite3"))
            .unwrap()
            .query_row(
                "SELECT COUNT(*) FROM events WHERE device_id = 'phone-sam' AND body LIKE '%duress_raised%'",
                [],
                |row| row.get::<_, i64>(0),
            )
            .unwrap()
            == 1
    };
    wait_until(
        "the alert is at the office",
        Duration::from_secs(10),
        office_has_alert,
    )
    .await;
    wait_until(
        "the phone shows it confirmed",
        Duration::from_secs(10),
        || {
            matches!(
                store.delivery(alert.id).unwrap(),
                Some(Delivery::Confirmed { .. })
            )
        },
    )
    .await;
    looping.abort();
    let status = store.status().unwrap();
    assert_eq!((status.waiting, status.refused), (0, 0));
    assert!(status.restored.is_some());
    office.stop().await;
}
