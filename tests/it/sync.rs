//! The spine, end to end: the phone's real store and sync client against the real office.

use chrono::{TimeDelta, Utc};
use doorstep::store::AppStore;
use doorstep::sync::SyncOutcome;
use doorstep_core::event_log::Delivery;
use doorstep_core::lifecycle::{Command, Phase, VisitEvent};
use doorstep_core::protocol::{SyncRequest, PROTOCOL_VERSION};
use doorstep_core::test_support::{staff, visit};

use crate::office::*;

/// Sam's side of the first demo visit, up to going in and checking in (needs Alex outside too).
fn depart_and_arrive(store: &AppStore, who: &str) {
    let now = Utc::now();
    let card = store
        .visit(&visit("visit-ava"))
        .unwrap()
        .expect("the phone holds visit-ava");
    store
        .perform(
            &visit("visit-ava"),
            Command::Depart {
                staff: staff(who),
                expected_arrival: card.visit.agreed_time,
                expected_end: card.visit.expected_end(),
            },
            now,
        )
        .expect("depart");
    store
        .perform(
            &visit("visit-ava"),
            Command::ArriveOutside { staff: staff(who) },
            now,
        )
        .expect("arrive");
}

#[tokio::test]
async fn events_recorded_while_the_office_is_down_are_delivered_exactly_once_when_it_returns() {
    let office_dir = tempfile::tempdir().unwrap();
    let phone_dir = tempfile::tempdir().unwrap();
    let (mut office, phones) = InProcessOffice::start_demo(office_dir.path()).await;
    let (store, client) = phone(phone_dir.path(), &phones.me);

    // First contact: the phone learns its visits.
    let report = client.sync_once(&store, Utc::now).await;
    assert_eq!(report.outcome, SyncOutcome::UpToDate);
    assert_eq!(store.today(Utc::now()).unwrap().len(), 3);

    office.stop().await;
    depart_and_arrive(&store, "sam");
    let report = client.sync_once(&store, Utc::now).await;
    assert!(
        matches!(report.outcome, SyncOutcome::Unreachable { .. }),
        "{report:?}"
    );
    let status = store.status().unwrap();
    assert_eq!(status.waiting, 2);
    assert!(status.failing_since.is_some());
    for (_, delivery) in store.own_events(&visit("visit-ava")).unwrap() {
        assert!(
            matches!(delivery, Delivery::Waiting { attempts: 1 }),
            "{delivery:?}: never shown as delivered"
        );
    }
    assert_eq!(office_count(office_dir.path(), "phone-sam"), 0);

    office.restart();
    let report = client.sync_once(&store, Utc::now).await;
    assert_eq!(report.outcome, SyncOutcome::UpToDate);
    assert_eq!(report.confirmed, 2);
    let status = store.status().unwrap();
    assert_eq!((status.waiting, status.failing_since), (0, None));
    for (_, delivery) in store.own_events(&visit("visit-ava")).unwrap() {
        assert!(
            matches!(delivery, Delivery::Confirmed { .. }),
            "{delivery:?}"
        );
    }

    // Syncing again sends nothing new and the office still holds each event once.
    let report = client.sync_once(&store, Utc::now).await;
    assert_eq!(report.confirmed, 0);
    assert_eq!(office_count(office_dir.path(), "phone-sam"), 2);
    assert_eq!(office_max_copies(office_dir.path(), "phone-sam"), 1);
    office.stop().await;
}

#[tokio::test]
async fn an_office_killed_and_restarted_has_lost_nothing_it_acknowledged() {
    let office_dir = tempfile::tempdir().unwrap();
    let phone_dir = tempfile::tempdir().unwrap();
    let address = free_address();
    let office = OfficeProcess::start(office_dir.path(), &address).await;
    let link = office.enrolment_link("sam");
    let (store, client, credential) = set_up_phone(phone_dir.path(), &link).await;
    client.sync_once(&store, Utc::now).await;
    depart_and_arrive(&store, "sam");
    let report = client.sync_once(&store, Utc::now).await;
    assert_eq!(report.confirmed, 2);
    office.kill();
    // While the office is dead the phone keeps recording; nothing is shown as delivered.
    let now = Utc::now();
    let duress = store
        .perform(
            &visit("visit-ava"),
            Command::RaiseDuress {
                staff: staff("sam"),
                via: doorstep_core::lifecycle::DuressVia::CodePhraseButton,
            },
            now,
        )
        .unwrap();
    let report = client.sync_once(&store, Utc::now).await;
    assert!(matches!(report.outcome, SyncOutcome::Unreachable { .. }));
    assert!(matches!(
        store.delivery(duress.id).unwrap(),
        Some(Delivery::Waiting { .. })
    ));

    let _office = OfficeProcess::start(office_dir.path(), &address).await;
    let report = client.sync_once(&store, Utc::now).await;
    assert_eq!(report.outcome, SyncOutcome::UpToDate);
    assert_eq!(
        report.confirmed, 1,
        "only the duress event was still waiting"
    );
    assert!(matches!(
        store.delivery(duress.id).unwrap(),
        Some(Delivery::Confirmed { .. })
    ));
    let device = credential.device_id.as_str();
    assert_eq!(
        office_count(office_dir.path(), device),
        3,
        "the two acknowledged before the kill survived"
    );
    assert_eq!(office_max_copies(office_dir.path(), device), 1);
}

#[tokio::test]
async fn a_duplicate_batch_changes_nothing() {
    let office_dir = tempfile::tempdir().unwrap();
    let phone_dir = tempfile::tempdir().unwrap();
    let (mut office, phones) = InProcessOffice::start_demo(office_dir.path()).await;
    let (store, client) = phone(phone_dir.path(), &phones.me);
    client.sync_once(&store, Utc::now).await;
    depart_and_arrive(&store, "sam");
    let request = SyncRequest {
        protocol: PROTOCOL_VERSION,
        device_time: Utc::now(),
        events: store.waiting().unwrap(),
        holdings_cursor: None,
    };
    let first = client.exchange(&request).await;
    let again = client.exchange(&request).await;
    let outcomes = |exchange: &doorstep::sync::Exchange| match exchange {
        doorstep::sync::Exchange::Accepted(response) => response
            .results
            .iter()
            .map(|r| serde_json::to_value(r.outcome).unwrap())
            .collect::<Vec<_>>(),
        other => panic!("expected the office to accept: {other:?}"),
    };
    assert_eq!(outcomes(&first), ["stored", "stored"]);
    assert_eq!(outcomes(&again), ["duplicate", "duplicate"]);
    assert_eq!(office_count(office_dir.path(), "phone-sam"), 2);

    // The phone, which never saw either answer, sends them a third time and is told they are stored.
    let report = client.sync_once(&store, Utc::now).await;
    assert_eq!(report.confirmed, 2);
    assert_eq!(office_count(office_dir.path(), "phone-sam"), 2);
    office.stop().await;
}

#[tokio::test]
async fn a_bad_batch_is_refused_with_the_reason_and_stores_nothing() {
    let office_dir = tempfile::tempdir().unwrap();
    let phone_dir = tempfile::tempdir().unwrap();
    let (mut office, phones) = InProcessOffice::start_demo(office_dir.path()).await;
    let alex = &phones.partner;
    // Alex's phone holds an event for a visit Alex is not on (as a phone with stale data might).
    let (bad, good) = {
        // The phone's own sealed log, opened first so the events are there before its store is.
        drop(phone(phone_dir.path(), alex));
        let mut log = sealed_log(phone_dir.path(), &alex.device_id);
        let now = Utc::now();
        let departed = |who: &str| VisitEvent::Departed {
            staff: staff(who),
            expected_arrival: now + TimeDelta::minutes(10),
            expected_end: now + TimeDelta::minutes(60),
        };
        let bad = log
            .record(&visit("visit-leo"), departed("alex"), now)
            .unwrap();
        let good = log
            .record(&visit("visit-ava"), departed("alex"), now)
            .unwrap();
        (bad, good)
    };
    let (store, client) = phone(phone_dir.path(), alex);

    let request = SyncRequest {
        protocol: PROTOCOL_VERSION,
        device_time: Utc::now(),
        events: store.waiting().unwrap(),
        holdings_cursor: None,
    };
    match client.exchange(&request).await {
        doorstep::sync::Exchange::Refused { status, body } => {
            assert_eq!(status, 422);
            assert_eq!(body.rejected.len(), 1);
            assert_eq!(body.rejected[0].id, bad.id);
            assert!(
                body.rejected[0]
                    .reason
                    .contains("not one of this phone's visits"),
                "{body:?}"
            );
        }
        other => panic!("expected a refusal: {other:?}"),
    }
    assert_eq!(
        office_count(office_dir.path(), "phone-alex"),
        0,
        "nothing from the refused batch is stored"
    );

    // The sync loop sets the refused event aside with its reason and delivers the rest.
    let report = client.sync_once(&store, Utc::now).await;
    assert_eq!((report.confirmed, report.refused), (1, 1), "{report:?}");
    assert!(matches!(
        store.delivery(good.id).unwrap(),
        Some(Delivery::Confirmed { .. })
    ));
    match store.delivery(bad.id).unwrap() {
        Some(Delivery::Refused { reason }) => {
            assert!(reason.contains("not one of this phone's visits"))
        }
        other => panic!("expected the bad event to be refused: {other:?}"),
    }
    assert_eq!(store.status().unwrap().refused, 1);
    assert_eq!(office_count(office_dir.path(), "phone-alex"), 1);
    office.stop().await;
}

#[tokio::test]
async fn a_partners_arrival_reaches_the_other_phone_through_the_office() {
    let office_dir = tempfile::tempdir().unwrap();
    let (sam_dir, alex_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut office, phones) = InProcessOffice::start_demo(office_dir.path()).await;
    let (sam, sam_client) = phone(sam_dir.path(), &phones.me);
    let (alex, alex_client) = phone(alex_dir.path(), &phones.partner);
    sam_client.sync_once(&sam, Utc::now).await;
    alex_client.sync_once(&alex, Utc::now).await;

    depart_and_arrive(&sam, "sam");
    sam_client.sync_once(&sam, Utc::now).await;
    // Going in before Alex is outside is refused on Sam's phone.
    let refused = sam.perform(
        &visit("visit-ava"),
        Command::StartVisit { by: staff("sam") },
        Utc::now(),
    );
    assert!(refused
        .unwrap_err()
        .to_string()
        .contains("alex is not here yet"));

    alex_client.sync_once(&alex, Utc::now).await;
    let card = alex.visit(&visit("visit-ava")).unwrap().unwrap();
    assert_eq!(
        card.phase(),
        Phase::Outside,
        "Alex's phone shows Sam outside"
    );
    depart_and_arrive(&alex, "alex");
    alex_client.sync_once(&alex, Utc::now).await;
    sam_client.sync_once(&sam, Utc::now).await;
    sam.perform(
        &visit("visit-ava"),
        Command::StartVisit { by: staff("sam") },
        Utc::now(),
    )
    .expect("both outside: they can go in");
    sam_client.sync_once(&sam, Utc::now).await;
    let office_store = doorstep_office::SqliteStore::open(office_dir.path()).unwrap();
    let (_, state) = office_store.visit(&visit("visit-ava")).unwrap().unwrap();
    assert_eq!(state.phase(), Phase::InVisit);

    // After the first answer each phone was sent only what changed, and added it to what it holds:
    // Alex's phone now holds exactly what the office would send it whole.
    alex_client.sync_once(&alex, Utc::now).await;
    assert!(alex.holdings_cursor().is_some());
    let now = Utc::now();
    let device = office_store
        .authenticate(&phones.partner.device_token, now)
        .unwrap()
        .unwrap();
    assert_eq!(
        alex.holdings().unwrap().unwrap(),
        office_store.holdings(&device, now).unwrap()
    );
    assert_eq!(
        alex.visit(&visit("visit-ava")).unwrap().unwrap().phase(),
        Phase::InVisit
    );
    office.stop().await;
}

#[tokio::test]
async fn a_phone_the_office_refuses_says_so_rather_than_no_signal_and_sends_again_once_let_in() {
    let office_dir = tempfile::tempdir().unwrap();
    let phone_dir = tempfile::tempdir().unwrap();
    let (mut office, phones) = InProcessOffice::start_demo(office_dir.path()).await;
    let (store, client) = phone(phone_dir.path(), &phones.me);
    assert_eq!(
        client.sync_once(&store, Utc::now).await.outcome,
        SyncOutcome::UpToDate
    );
    depart_and_arrive(&store, "sam");

    // The same phone with a token the office does not know (withdrawn, or mistyped at enrolment).
    let wrong = doorstep::sync::SyncClient::new(
        &phones.me.office_url,
        "a-token-this-office-never-issued-0000000000000000",
    )
    .unwrap();
    let report = wrong.sync_once(&store, Utc::now).await;
    assert!(
        matches!(report.outcome, SyncOutcome::Refused { status: 401, .. }),
        "{report:?}"
    );
    let status = store.status().unwrap();
    assert!(status.office_refused, "{status:?}");
    let line = doorstep::status::status_line(
        &status,
        Utc::now(),
        chrono::FixedOffset::east_opt(0).unwrap(),
    );
    assert!(
        line.starts_with("The office is refusing this phone") && line.ends_with("2 waiting"),
        "{line}"
    );
    assert_eq!(office_count(office_dir.path(), "phone-sam"), 0);

    // With signal gone too, the line says so again; with the right token, all is confirmed.
    office.stop().await;
    client.sync_once(&store, Utc::now).await;
    assert!(!store.status().unwrap().office_refused);
    office.restart();
    client.sync_once(&store, Utc::now).await;
    let status = store.status().unwrap();
    assert_eq!((status.waiting, status.office_refused), (0, false));
    assert_eq!(office_count(office_dir.path(), "phone-sam"), 2);
    office.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_reaches_the_office_within_two_seconds_of_it_coming_back_however_long_it_was_away()
{
    let office_dir = tempfile::tempdir().unwrap();
    let phone_dir = tempfile::tempdir().unwrap();
    let (mut office, phones) = InProcessOffice::start_demo(office_dir.path()).await;
    let (store, client) = phone(phone_dir.path(), &phones.me);
    assert_eq!(
        client.sync_once(&store, Utc::now).await.outcome,
        SyncOutcome::UpToDate
    );
    office.stop().await;

    // The app's own loop, with the office away long enough for its back-off to grow to 8 s and more.
    let looping = tokio::spawn(doorstep::sync::run_sync_loop(
        client,
        store.clone(),
        store.wake_handle(),
    ));
    depart_and_arrive(&store, "sam");
    tokio::time::sleep(std::time::Duration::from_secs(7)).await;
    store
        .perform(
            &visit("visit-ava"),
            Command::RaiseDuress {
                staff: staff("sam"),
                via: doorstep_core::lifecycle::DuressVia::CodePhraseButton,
            },
            Utc::now(),
        )
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(office_count(office_dir.path(), "phone-sam"), 0);

    // The signal comes back.
    office.restart();
    let back = std::time::Instant::now();
    while office_count(office_dir.path(), "phone-sam") < 3 {
        assert!(
            back.elapsed() < std::time::Duration::from_secs(2),
            "the alert was not at the office within 2 s of it coming back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let conn = rusqlite::Connection::open(office_dir.path().join("office.sqlite3")).unwrap();
    let duress: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM events WHERE device_id = 'phone-sam' AND body LIKE '%duress_raised%'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(duress, 1, "the alert, once");
    looping.abort();
    office.stop().await;
}

/// Whether `text` is anywhere in the phone's database files (the main file and its write-ahead log). They
/// are sealed, so a phone's files never hold a briefing's words in the clear; that replaced content also
/// leaves no sealed copy behind is the event log's own test (`doorstep-core`, `sealed_log`).
fn phone_files_contain(dir: &std::path::Path, text: &str) -> bool {
    ["doorstep.sqlite3", "doorstep.sqlite3-wal"]
        .iter()
        .any(|name| {
            std::fs::read(dir.join(name)).is_ok_and(|bytes| {
                bytes
                    .windows(text.len())
                    .any(|window| window == text.as_bytes())
            })
        })
}

#[tokio::test]
async fn once_the_visit_is_over_and_synced_its_briefing_is_gone_from_the_phone() {
    let office_dir = tempfile::tempdir().unwrap();
    let sam_dir = tempfile::tempdir().unwrap();
    let alex_dir = tempfile::tempdir().unwrap();
    let (mut office, phones) = InProcessOffice::start_demo(office_dir.path()).await;
    let (sam, sam_client) = phone(sam_dir.path(), &phones.me);
    let (alex, alex_client) = phone(alex_dir.path(), &phones.partner);
    sam_client.sync_once(&sam, Utc::now).await;
    // visit-ava's briefing names the pupil's needs: the phone holds them, sealed.
    let needs = "Asthma; carries an inhaler.";
    let held_needs = |store: &doorstep::store::AppStore| {
        store
            .visit(&visit("visit-ava"))
            .unwrap()
            .unwrap()
            .visit
            .briefing
            .pupil_needs
    };
    assert_eq!(held_needs(&sam), needs);
    assert!(!phone_files_contain(sam_dir.path(), needs));

    let ava = visit("visit-ava");
    let now = Utc::now();
    // Alex sets off too; Sam's phone hears of it before vouching for Alex at the door.
    alex_client.sync_once(&alex, Utc::now).await;
    let card = alex.visit(&ava).unwrap().unwrap();
    alex.perform(
        &ava,
        Command::Depart {
            staff: staff("alex"),
            expected_arrival: card.visit.agreed_time,
            expected_end: card.visit.expected_end(),
        },
        now,
    )
    .unwrap();
    alex_client.sync_once(&alex, Utc::now).await;
    sam_client.sync_once(&sam, Utc::now).await;
    depart_and_arrive(&sam, "sam");
    for command in [
        Command::ArriveTogether {
            by: staff("sam"),
            staff: vec![staff("sam"), staff("alex")],
        },
        Command::StartVisit { by: staff("sam") },
        Command::Leave {
            staff: staff("sam"),
        },
        Command::WriteUp {
            staff: staff("sam"),
            write_up: doorstep_core::lifecycle::WriteUp {
                seen: "Ava and her mother".into(),
                discussed: "Attendance".into(),
                agreements: String::new(),
                safeguarding_concern: false,
                incident: None,
            },
        },
    ] {
        sam.perform(&ava, command, now).unwrap();
    }
    sam_client.sync_once(&sam, Utc::now).await;
    // Alex is still inside as far as anyone knows: the briefing stays.
    assert!(!sam.visit(&ava).unwrap().unwrap().visit.briefing.withdrawn);
    assert_eq!(held_needs(&sam), needs);

    alex_client.sync_once(&alex, Utc::now).await;
    alex.perform(
        &ava,
        Command::Leave {
            staff: staff("alex"),
        },
        Utc::now(),
    )
    .unwrap();
    alex_client.sync_once(&alex, Utc::now).await;
    let at_office = doorstep_office::SqliteStore::open(office_dir.path()).unwrap();
    let (_, state) = at_office.visit(&ava).unwrap().unwrap();
    assert_eq!(state.phase(), Phase::WrittenUp, "over, at the office");

    sam_client.sync_once(&sam, Utc::now).await;
    let card = sam.visit(&ava).unwrap().unwrap();
    assert!(card.visit.briefing.withdrawn);
    assert!(card.visit.briefing.pupil_needs.is_empty());
    assert!(
        !phone_files_contain(sam_dir.path(), needs),
        "the needs are in none of the phone's files"
    );
    let holdings = sealed_log(sam_dir.path(), &phones.me.device_id)
        .holdings()
        .unwrap()
        .unwrap();
    assert!(
        !serde_json::to_string(&holdings).unwrap().contains(needs),
        "not even with the phone's key"
    );
    // The other visits keep theirs.
    assert!(
        !sam.visit(&visit("visit-leo"))
            .unwrap()
            .unwrap()
            .visit
            .briefing
            .withdrawn
    );
    office.stop().await;
}

/// An office past capacity answers ordinary syncs `503` with `Retry-After`: the app's loop waits at least
/// that long before sending its ordinary steps again (new steps recorded meanwhile do not cut the wait
/// short), while an alert goes at once, full office or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_office_is_waited_out_for_ordinary_steps_but_an_alert_goes_at_once() {
    use doorstep_office::admission::SyncGate;
    use std::time::Duration;
    let office_dir = tempfile::tempdir().unwrap();
    let phone_dir = tempfile::tempdir().unwrap();
    // Five seconds: longer than the loop's own first back-off (2 s), so only honouring it explains a wait.
    let gate = SyncGate::new(1, Duration::from_millis(50)).with_retry_after(5);
    let (mut office, phones) = InProcessOffice::start_demo_settings(
        office_dir.path(),
        |_| (),
        doorstep_office::OfficeSettings {
            sync_gate: gate.clone(),
            ..doorstep_office::OfficeSettings::default()
        },
    )
    .await;
    let (store, client) = phone(phone_dir.path(), &phones.me);
    assert_eq!(
        client.sync_once(&store, Utc::now).await.outcome,
        SyncOutcome::UpToDate
    );

    // Full: every ordinary sync is turned away.
    let full = gate.hold_all().await;
    let looping = tokio::spawn(doorstep::sync::run_sync_loop(
        client,
        store.clone(),
        store.wake_handle(),
    ));
    depart_and_arrive(&store, "sam");
    let turned_away = wait_for(Duration::from_secs(5), || {
        let status = store.status().unwrap();
        status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("busy"))
            .then_some(status.failing_since)
            .flatten()
    })
    .await
    .expect("the office said it was busy");
    drop(full);
    wait_for(Duration::from_secs(15), || {
        (office_count(office_dir.path(), "phone-sam") == 2).then_some(())
    })
    .await
    .expect("the steps were sent once the office had room");
    let waited = Utc::now() - turned_away;
    assert!(
        waited >= TimeDelta::seconds(5),
        "the steps went again {waited} after the office said to wait 5 s"
    );

    // Full again: an alert is let in, and the phone does not wait out a Retry-After for it.
    let full = gate.hold_all().await;
    store
        .perform(
            &visit("visit-ava"),
            Command::RaiseDuress {
                staff: staff("sam"),
                via: doorstep_core::lifecycle::DuressVia::CodePhraseButton,
            },
            Utc::now(),
        )
        .unwrap();
    wait_for(Duration::from_secs(3), || {
        (office_count(office_dir.path(), "phone-sam") == 3).then_some(())
    })
    .await
    .expect("the alert reached the full office within 3 s");
    drop(full);
    looping.abort();
    office.stop().await;
}

/// Polls `found` every 20 ms until it gives a value, or `None` after `limit`.
async fn wait_for<T>(
    limit: std::time::Duration,
    mut found: impl FnMut() -> Option<T>,
) -> Option<T> {
    let began = std::time::Instant::now();
    loop {
        if let Some(value) = found() {
            return Some(value);
        }
        if began.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
