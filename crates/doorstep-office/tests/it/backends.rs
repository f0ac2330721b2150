//! The store's areas behind traits ([`Visits`], [`Alarms`], [`Deliveries`], [`AuditTrail`],
//! [`SignIns`], [`Phones`], [`People`], [`Requests`]), run the same against both backends: the embedded
//! SQLite store and a real PostgreSQL server ([`crate::postgres`]). Then what only a shared database has:
//! two offices' engines watching one visit make each alarm step once between them, an office that dies
//! holding a visit's lock leaves the step to the other, the one left keeps every deadline, and two
//! offices racing one enrolment code or one renewal make it once.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use doorstep_core::domain::{
    Address, Briefing, DbsCheck, DbsLevel, Pupil, RiskAssessment, Role, School, StaffMember, Visit,
    VisitPurpose, VisitStaff,
};
use doorstep_core::event::EventEnvelope;
use doorstep_core::ids::{DeviceSeq, EventId};
use doorstep_core::lifecycle::{self, Command, DuressVia, VisitEvent, VisitState};
use doorstep_core::policy::{PolicyMinutes, Preset};
use doorstep_core::protocol::{EventOutcome, HoldScope};
use doorstep_core::schedule::AlarmLevel;
use doorstep_core::test_support::{at, device, envelope, id, staff, visit};
use doorstep_office::alarms::{step, Alarm, AlarmKind, NewAlarm};
use doorstep_office::clock::Clock;
use doorstep_office::demo::demo_code_phrases;
use doorstep_office::escalation::BoardEvent;
use doorstep_office::escalation::{evaluate, Escalation};
use doorstep_office::store::backend::{Alarms, Batch, Visits};
use doorstep_office::store::postgres::{PgStore, LOCK_VISIT};
use doorstep_office::store::{Device, IngestError, StoreError};

use crate::postgres::{fresh_database, on_both_backends};
use crate::smtp_relay::{self, RelaySettings};
use doorstep_office::audit::{Action, NewEntry};
use doorstep_office::devices::{DeviceAction, RedeemError, TokenCheck};
use doorstep_office::notify::{Attempted, NewTarget, Notifier, Outgoing, Transport, WantedLevels};
use doorstep_office::people::{ImportKind, Saved, SettingsChange};
use doorstep_office::requests::{RequestDetails, Timing};
use doorstep_office::store::audit_trail::AuditTrail;
use doorstep_office::store::deliveries::Deliveries;
use doorstep_office::store::people::People;
use doorstep_office::store::phones::Phones;
use doorstep_office::store::requests::Requests;
use doorstep_office::store::sign_ins::SignIns;

/// The visit's agreed start: 10:15. Its first check-in is due at 10:25; with five minutes' grace the
/// office raises the alarm at 10:30, the authoriser's level comes at 10:35 and the further contacts' at
/// 10:45 (the primary preset).
fn agreed() -> DateTime<Utc> {
    at(10, 15)
}

fn overdue_at() -> DateTime<Utc> {
    at(10, 30)
}

fn authoriser_at() -> DateTime<Utc> {
    at(10, 35)
}

fn member(name: &str, roles: &[Role], dbs: bool) -> StaffMember {
    StaffMember {
        id: staff(&name.to_lowercase()),
        name: name.into(),
        roles: roles.to_vec(),
        phone: id("07700 900003"),
        dbs: dbs.then(|| DbsCheck {
            level: DbsLevel::EnhancedWithBarredList,
            checked_on: chrono::NaiveDate::from_ymd_opt(2025, 9, 1).expect("a date"),
        }),
    }
}

fn a_visit(visit_id: &str, people: &[&StaffMember]) -> Visit {
    Visit {
        id: visit(visit_id),
        school: id("school-1"),
        purpose: VisitPurpose::SafeAndWellCheck,
        pupil: Pupil {
            id: id("pupil-ava"),
            name: "Ava B.".into(),
        },
        address: Address {
            lines: vec!["12 Elm Row".into(), "Oakfield".into()],
            postcode: id("OK1 2AB"),
        },
        agreed_time: agreed(),
        expected_length: PolicyMinutes::new(45).expect("in range"),
        staff: people.iter().copied().map(VisitStaff::from).collect(),
        briefing: Briefing::new(RiskAssessment::standard()),
    }
}

/// A school on the primary preset with its head, Sam and Alex (both DBS-checked), Ava, and `visits`
/// authorised at 10:00 for 10:15.
async fn a_school<S: Visits>(store: &S, visits: &[&str]) {
    the_school(store).await;
    for (n, visit_id) in visits.iter().enumerate() {
        an_authorised_visit(store, visit_id, 10 * n as u64, agreed()).await;
    }
}

/// The school, its head, Sam, Alex and Ava.
async fn the_school<S: Visits>(store: &S) {
    let school = School {
        id: id("school-1"),
        name: "Oakfield Primary".into(),
        office_phone: id("01632 960000"),
        time_zone: Default::default(),
    };
    store
        .add_school(&school, &the_policy())
        .await
        .expect("school");
    for person in [
        member("Head", &[Role::Headteacher, Role::Dsl], true),
        member("Sam", &[Role::VisitingStaff], true),
        member("Alex", &[Role::VisitingStaff], true),
    ] {
        store.add_staff(&school.id, &person).await.expect("staff");
    }
    let ava = a_visit("unused", &[]).pupil;
    store.add_pupil(&school.id, &ava).await.expect("pupil");
}

/// The primary preset with the demo's code phrases.
fn the_policy() -> doorstep_core::policy::Policy {
    let mut policy = Preset::PrimaryHeadteacher.policy();
    policy.code_phrases = Some(demo_code_phrases());
    policy
}

/// Sam and Alex's visit `visit_id`, agreed for `agreed` and authorised by the head a quarter of an hour
/// before (the office's events numbered from `seq_base` + 1).
async fn an_authorised_visit<S: Visits>(
    store: &S,
    visit_id: &str,
    seq_base: u64,
    agreed: DateTime<Utc>,
) {
    let pair = [
        member("Sam", &[Role::VisitingStaff], true),
        member("Alex", &[Role::VisitingStaff], true),
    ];
    let mut planned = a_visit(visit_id, &[&pair[0], &pair[1]]);
    planned.agreed_time = agreed;
    store.add_visit(&planned).await.expect("visit");
    let state = VisitState::new(planned.staff_ids());
    let command = Command::Authorise {
        by: staff("head"),
        lone_visit_approved: false,
    };
    let decided_at = agreed - TimeDelta::minutes(15);
    let decided =
        lifecycle::decide(&state, &command, &the_policy(), decided_at).expect("authorise");
    let events: Vec<EventEnvelope> = decided
        .into_iter()
        .zip(seq_base + 1..)
        .map(|(event, seq)| EventEnvelope {
            id: EventId::new_v7(),
            device: id("office"),
            seq: DeviceSeq::new(seq).expect("a sequence number"),
            visit: planned.id.clone(),
            recorded_at: decided_at,
            event,
        })
        .collect();
    store
        .store_checked_events(&events, decided_at)
        .await
        .expect("store the authorisation");
}

/// Sam and Alex set off, arrive and go in to `visit_id` at 10:15, each from their own phone.
async fn go_in<S: Visits>(store: &S, visit_id: &str, first_seq: u64) {
    go_in_at(store, visit_id, first_seq, agreed()).await;
}

/// Sam and Alex set off 14 minutes before `agreed`, arrive 2 minutes before and go in on the minute.
async fn go_in_at<S: Visits>(store: &S, visit_id: &str, first_seq: u64, agreed: DateTime<Utc>) {
    let end = agreed + TimeDelta::minutes(45);
    let set_off = agreed - TimeDelta::minutes(14);
    let outside = agreed - TimeDelta::minutes(2);
    let steps = [
        (
            "phone-sam",
            set_off,
            VisitEvent::Departed {
                staff: staff("sam"),
                expected_arrival: agreed,
                expected_end: end,
            },
        ),
        (
            "phone-alex",
            set_off,
            VisitEvent::Departed {
                staff: staff("alex"),
                expected_arrival: agreed,
                expected_end: end,
            },
        ),
        (
            "phone-sam",
            outside,
            VisitEvent::ArrivedOutside {
                staff: staff("sam"),
            },
        ),
        (
            "phone-alex",
            outside,
            VisitEvent::ArrivedOutside {
                staff: staff("alex"),
            },
        ),
        (
            "phone-sam",
            agreed,
            VisitEvent::VisitStarted {
                by: staff("sam"),
                staff: vec![staff("sam"), staff("alex")],
            },
        ),
    ];
    for (n, (phone, when, event)) in steps.into_iter().enumerate() {
        let sent = envelope(phone, first_seq + n as u64, visit_id, when, event);
        assert_eq!(
            store
                .store_checked_events(&[sent], when)
                .await
                .expect("store"),
            1
        );
    }
}

async fn alarms<S: Alarms>(store: &S, visit_id: &str) -> Vec<Alarm> {
    store
        .alarms_for_visit(&visit(visit_id))
        .await
        .expect("read alarms")
}

async fn steps<S: Alarms>(store: &S, visit_id: &str) -> Vec<(String, Option<AlarmLevel>)> {
    store
        .alarm_log(&visit(visit_id))
        .await
        .expect("read the log")
        .into_iter()
        .map(|entry| (entry.what, entry.level))
        .collect()
}

fn step(what: &str, level: Option<AlarmLevel>) -> (String, Option<AlarmLevel>) {
    (what.to_owned(), level)
}

on_both_backends!(
    silence_raises_one_alarm_which_climbs_a_level_when_nobody_acknowledges,
    an_escalation_decided_on_a_stale_look_changes_nothing,
    events_are_stored_once_and_the_visit_is_watched_while_under_way,
    someone_without_a_dbs_check_is_refused_and_nothing_is_stored,
    contact_resumed_is_noted_once,
    a_batch_with_one_refused_event_stores_nothing_and_a_resend_is_a_duplicate,
    a_duress_alert_raises_its_alarm_in_the_ingest_that_stores_it,
    alerts_on_two_visits_in_one_batch_raise_an_alarm_each,
    a_phone_is_sent_everything_then_only_what_changed_since_its_cursor,
    the_audit_log_is_one_chain_and_each_entry_follows_the_one_before,
    an_office_decision_and_a_closed_alert_are_recorded_with_their_audit_entries,
    an_office_sign_in_takes_the_right_password_and_its_session_ends_when_it_should,
    a_phone_enrols_once_with_its_code_renews_its_credential_and_is_refused_once_revoked,
    pupils_absences_and_staff_are_saved_row_by_row_and_each_setting_changed_is_audited,
    a_requested_visit_keeps_its_details_all_or_nothing_and_each_concern_is_audited,
);

on_both_backends!(
    shared: an_alarm_is_told_to_those_who_want_it_once_a_refused_message_is_retried_and_acknowledging_stops_it,
    a_visit_called_off_as_unsafe_is_told_to_the_dsl_once,
);

async fn silence_raises_one_alarm_which_climbs_a_level_when_nobody_acknowledges<
    S: Visits + Alarms,
>(
    store: &S,
) {
    a_school(store, &["visit-ava"]).await;
    go_in(store, "visit-ava", 1).await;
    let ava = visit("visit-ava");

    let (next, events) = evaluate(store, &ava, overdue_at() - TimeDelta::seconds(1))
        .await
        .expect("look");
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(
        next,
        Some(overdue_at()),
        "it wakes at the deadline plus grace"
    );

    let (_, events) = evaluate(store, &ava, overdue_at()).await.expect("look");
    assert_eq!(events.len(), 1, "{events:?}");
    let raised = alarms(store, "visit-ava").await;
    assert_eq!(raised.len(), 1);
    assert_eq!(
        (raised[0].kind, raised[0].level, raised[0].about.as_str()),
        (AlarmKind::Overdue, AlarmLevel::Board, "check_in")
    );
    assert_eq!(raised[0].due_at, at(10, 25));

    // A second look at the same moment raises nothing more.
    let (_, events) = evaluate(store, &ava, overdue_at()).await.expect("look");
    assert!(events.is_empty(), "{events:?}");

    let (_, events) = evaluate(store, &ava, authoriser_at()).await.expect("look");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        alarms(store, "visit-ava").await[0].level,
        AlarmLevel::Authoriser
    );
    assert_eq!(
        steps(store, "visit-ava").await,
        [
            step("raised", Some(AlarmLevel::Board)),
            step("reached_level", Some(AlarmLevel::Authoriser)),
            // The school has no notification targets: nobody beyond the board can be told, and the log
            // says so rather than claiming anyone was.
            step("nobody_to_tell", Some(AlarmLevel::Authoriser)),
        ]
    );
}

async fn an_escalation_decided_on_a_stale_look_changes_nothing<S: Visits + Alarms>(store: &S) {
    a_school(store, &["visit-ava"]).await;
    let ava = visit("visit-ava");
    let seen = store
        .raise_alarm(
            NewAlarm::overdue(&ava, "check_in", at(10, 25)),
            overdue_at(),
        )
        .await
        .expect("raise")
        .expect("new");
    assert!(store
        .raise_alarm(
            NewAlarm::overdue(&ava, "check_in", at(10, 25)),
            overdue_at()
        )
        .await
        .expect("raise again")
        .is_none());

    let louder = store
        .escalate_alarm(&seen, authoriser_at())
        .await
        .expect("escalate")
        .expect("as seen");
    assert_eq!(louder.level, AlarmLevel::Authoriser);
    // Another office (or this one, late) decided on the alarm as it was before: nothing happens.
    assert!(store
        .escalate_alarm(&seen, authoriser_at() + TimeDelta::seconds(1))
        .await
        .expect("escalate again")
        .is_none());
    assert_eq!(alarms(store, "visit-ava").await, [louder]);
    let reached = steps(store, "visit-ava")
        .await
        .into_iter()
        .filter(|(what, _)| what == "reached_level")
        .count();
    assert_eq!(reached, 1);
}

async fn events_are_stored_once_and_the_visit_is_watched_while_under_way<S: Visits + Alarms>(
    store: &S,
) {
    a_school(store, &["visit-ava"]).await;
    let ava = visit("visit-ava");
    let departed = envelope(
        "phone-sam",
        1,
        "visit-ava",
        at(10, 1),
        VisitEvent::Departed {
            staff: staff("sam"),
            expected_arrival: agreed(),
            expected_end: at(11, 0),
        },
    );
    assert_eq!(
        store
            .store_checked_events(std::slice::from_ref(&departed), at(10, 1))
            .await
            .expect("store"),
        1
    );
    // The phone sends it again (it never heard the answer): stored once.
    assert_eq!(
        store
            .store_checked_events(&[departed], at(10, 2))
            .await
            .expect("store again"),
        0
    );
    assert_eq!(
        store.visits_to_watch().await.expect("watch"),
        std::slice::from_ref(&ava)
    );
    let (_, state, _) = store
        .visit_with_policy(&ava)
        .await
        .expect("read")
        .expect("the visit");
    assert_eq!(state.phase().name(), "departed");
}

async fn someone_without_a_dbs_check_is_refused_and_nothing_is_stored<S: Visits + Alarms>(
    store: &S,
) {
    a_school(store, &[]).await;
    let jo = member("Jo", &[Role::VisitingStaff], false);
    store.add_staff(&id("school-1"), &jo).await.expect("staff");
    let refused = store
        .add_visit(&a_visit("visit-jo", &[&jo]))
        .await
        .expect_err("refused");
    assert!(
        matches!(&refused, StoreError::Invalid(why) if why.contains("Jo has no appropriate DBS check")),
        "{refused}"
    );
    assert!(store
        .visit_with_policy(&visit("visit-jo"))
        .await
        .expect("read")
        .is_none());
}

async fn contact_resumed_is_noted_once<S: Visits + Alarms>(store: &S) {
    a_school(store, &["visit-ava"]).await;
    let ava = visit("visit-ava");
    let alarm = store
        .raise_alarm(
            NewAlarm::overdue(&ava, "check_in", at(10, 25)),
            overdue_at(),
        )
        .await
        .expect("raise")
        .expect("new");
    store
        .note_contact_resumed(alarm.id, at(10, 31))
        .await
        .expect("note");
    store
        .note_contact_resumed(alarm.id, at(10, 32))
        .await
        .expect("note again");
    let now = &alarms(store, "visit-ava").await[0];
    assert_eq!(now.contact_resumed_at, Some(at(10, 31)));
    assert!(!now.escalating());
    let resumed = steps(store, "visit-ava")
        .await
        .into_iter()
        .filter(|(what, _)| what == "contact_resumed")
        .count();
    assert_eq!(resumed, 1);
}

/// A batch from Sam's phone, sent at `device_time` by its clock and received at `now`.
fn batch<'a>(
    events: &'a [EventEnvelope],
    device_time: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Batch<'a> {
    static SAMS_PHONE: std::sync::OnceLock<Device> = std::sync::OnceLock::new();
    Batch {
        device: SAMS_PHONE.get_or_init(sams_phone),
        events,
        device_time,
        now,
    }
}

/// Sam's phone, as its token identifies it.
fn sams_phone() -> Device {
    Device {
        id: device("phone-sam"),
        staff: staff("sam"),
        school: id("school-1"),
        credential_issued_at: at(9, 0),
    }
}

async fn phase<S: Visits>(store: &S, visit_id: &str) -> &'static str {
    let (_, state, _) = store
        .visit_with_policy(&visit(visit_id))
        .await
        .expect("read")
        .expect("the visit");
    state.phase().name()
}

async fn a_batch_with_one_refused_event_stores_nothing_and_a_resend_is_a_duplicate<
    S: Visits + Alarms,
>(
    store: &S,
) {
    a_school(store, &["visit-ava"]).await;
    let departed = envelope(
        "phone-sam",
        1,
        "visit-ava",
        at(10, 1),
        VisitEvent::Departed {
            staff: staff("sam"),
            expected_arrival: agreed(),
            expected_end: at(11, 0),
        },
    );
    let for_alex = envelope(
        "phone-sam",
        2,
        "visit-ava",
        at(10, 1),
        VisitEvent::ArrivedOutside {
            staff: staff("alex"),
        },
    );
    let refused = store
        .ingest(batch(&[departed.clone(), for_alex], at(10, 1), at(10, 1)))
        .await
        .expect_err("refused");
    let IngestError::Rejected(rejections) = refused else {
        panic!("{refused}");
    };
    assert_eq!(rejections.len(), 1);
    assert!(
        rejections[0]
            .reason
            .contains("the event is by alex, but this phone belongs to sam"),
        "{}",
        rejections[0].reason
    );
    assert_eq!(
        phase(store, "visit-ava").await,
        "authorised",
        "nothing stored"
    );

    let outcomes = |ingested: doorstep_office::store::Ingested| {
        ingested
            .results
            .into_iter()
            .map(|r| r.outcome)
            .collect::<Vec<_>>()
    };
    let stored = store
        .ingest(batch(std::slice::from_ref(&departed), at(10, 1), at(10, 1)))
        .await
        .expect("stored");
    assert_eq!(outcomes(stored), [EventOutcome::Stored]);
    assert_eq!(phase(store, "visit-ava").await, "departed");
    let again = store
        .ingest(batch(std::slice::from_ref(&departed), at(10, 2), at(10, 2)))
        .await
        .expect("answered again");
    assert_eq!(outcomes(again), [EventOutcome::Duplicate]);

    // Another event under a sequence number already used: a conflict, never a silent overwrite.
    let reused = envelope(
        "phone-sam",
        1,
        "visit-ava",
        at(10, 3),
        VisitEvent::ArrivedOutside {
            staff: staff("sam"),
        },
    );
    let refused = store
        .ingest(batch(&[reused], at(10, 3), at(10, 3)))
        .await
        .expect_err("a conflict");
    let IngestError::Rejected(rejections) = refused else {
        panic!("{refused}");
    };
    assert!(
        rejections[0].conflict && rejections[0].seq_taken,
        "{rejections:?}"
    );
    assert_eq!(phase(store, "visit-ava").await, "departed");
}

async fn a_duress_alert_raises_its_alarm_in_the_ingest_that_stores_it<S: Visits + Alarms>(
    store: &S,
) {
    a_school(store, &["visit-ava"]).await;
    go_in(store, "visit-ava", 1).await;
    let alert = envelope(
        "phone-sam",
        10,
        "visit-ava",
        at(10, 20),
        VisitEvent::DuressRaised {
            staff: staff("sam"),
            via: DuressVia::CodePhraseButton,
        },
    );
    let ingested = store
        .ingest(batch(&[alert], at(10, 20), at(10, 20)))
        .await
        .expect("stored");
    assert_eq!(ingested.alarms.len(), 1, "{ingested:?}");
    let alarm = &ingested.alarms[0];
    assert_eq!(
        (alarm.kind, alarm.level, alarm.about.as_str()),
        (AlarmKind::Duress, AlarmLevel::Authoriser, "sam")
    );
    assert_eq!(alarms(store, "visit-ava").await, ingested.alarms);
    // The engine's own look finds it raised and raises nothing more.
    let (_, events) = evaluate(store, &visit("visit-ava"), at(10, 20))
        .await
        .expect("look");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, BoardEvent::AlarmRaised { .. })),
        "{events:?}"
    );
    assert_eq!(alarms(store, "visit-ava").await.len(), 1);
}

async fn alerts_on_two_visits_in_one_batch_raise_an_alarm_each<S: Visits + Alarms>(store: &S) {
    a_school(store, &["visit-ava", "visit-ben"]).await;
    go_in(store, "visit-ava", 1).await;
    go_in(store, "visit-ben", 20).await;
    let alert = |seq, visit_id| {
        envelope(
            "phone-sam",
            seq,
            visit_id,
            at(10, 20),
            VisitEvent::DuressRaised {
                staff: staff("sam"),
                via: DuressVia::CodePhraseButton,
            },
        )
    };
    let ingested = store
        .ingest(batch(
            &[alert(40, "visit-ava"), alert(41, "visit-ben")],
            at(10, 20),
            at(10, 20),
        ))
        .await
        .expect("stored");
    assert_eq!(ingested.alarms.len(), 2, "{ingested:?}");
    for visit_id in ["visit-ava", "visit-ben"] {
        let raised = alarms(store, visit_id).await;
        assert_eq!(raised.len(), 1, "{visit_id}");
        assert_eq!(
            (raised[0].kind, raised[0].level),
            (AlarmKind::Duress, AlarmLevel::Authoriser)
        );
        assert!(ingested.alarms.contains(&raised[0]), "{visit_id}");
        assert_eq!(phase(store, visit_id).await, "duress");
    }
}

/// A clock the test sets: both offices read the same one, as two machines synced by NTP would.
fn hand_clock(start: DateTime<Utc>) -> (Clock, Arc<Mutex<DateTime<Utc>>>) {
    let now = Arc::new(Mutex::new(start));
    let read = now.clone();
    let clock: Clock = Arc::new(move || *read.lock().unwrap_or_else(|p| p.into_inner()));
    (clock, now)
}

/// Waits up to 20 s for `done` to hold of what `read` reads.
async fn until<T, F: std::future::Future<Output = T>>(
    mut read: impl FnMut() -> F,
    done: impl Fn(&T) -> bool,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let value = read().await;
        if done(&value) || Instant::now() > deadline {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_offices_on_one_database_make_each_alarm_step_once_and_the_one_left_keeps_the_deadlines(
) {
    let url = fresh_database().await;
    let office_a = Arc::new(PgStore::connect(&url, 4).await.expect("office A"));
    let office_b = Arc::new(PgStore::connect(&url, 4).await.expect("office B"));
    let reader = PgStore::connect(&url, 2).await.expect("a reader");
    // Ten visits under way, so the two offices race on many alarms at once.
    let names: Vec<String> = (0..10).map(|n| format!("visit-{n}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    a_school(&*office_a, &names).await;
    for (n, name) in names.iter().enumerate() {
        go_in(&*office_b, name, 1 + 10 * n as u64).await;
    }

    let (clock, now) = hand_clock(at(10, 20));
    let every = Duration::from_millis(100);
    // (The handles are kept: an engine whose handle is dropped stops, as when its office stops.)
    let (_handle_a, engine_a) = Escalation::spawn_sharing(office_a.clone(), clock.clone(), every);
    let (_handle_b, engine_b) = Escalation::spawn_sharing(office_b.clone(), clock.clone(), every);

    *now.lock().expect("clock") = overdue_at() + TimeDelta::seconds(1);
    for name in &names {
        let raised = until(|| alarms(&reader, name), |a| !a.is_empty()).await;
        assert_eq!(raised.len(), 1, "{name}: one alarm between the two offices");
    }
    // Both engines have looked again since (several rescans): still one alarm and one "raised" each.
    tokio::time::sleep(every * 5).await;
    for name in &names {
        assert_eq!(alarms(&reader, name).await.len(), 1, "{name}");
        assert_eq!(
            steps(&reader, name).await,
            [step("raised", Some(AlarmLevel::Board))],
            "{name}"
        );
    }

    // Office A stops (its process killed): its engine ends and its connections close.
    engine_a.abort();
    let _ = engine_a.await;
    office_a.close();

    *now.lock().expect("clock") = authoriser_at() + TimeDelta::seconds(1);
    for name in &names {
        let climbed = until(
            || alarms(&reader, name),
            |a| a.first().map(|a| a.level) == Some(AlarmLevel::Authoriser),
        )
        .await;
        assert_eq!(
            climbed.first().map(|a| a.level),
            Some(AlarmLevel::Authoriser),
            "{name}: office B alone climbed the alarm"
        );
    }
    tokio::time::sleep(every * 5).await;
    for name in &names {
        let reached = steps(&reader, name)
            .await
            .into_iter()
            .filter(|(what, _)| what == "reached_level")
            .count();
        assert_eq!(reached, 1, "{name}");
    }
    engine_b.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_office_that_dies_while_raising_an_alarm_leaves_it_to_the_other() {
    let url = fresh_database().await;
    let office_b = Arc::new(PgStore::connect(&url, 4).await.expect("office B"));
    a_school(&*office_b, &["visit-ava"]).await;
    go_in(&*office_b, "visit-ava", 1).await;

    // Office A is in the middle of raising visit-ava's alarm: it holds the visit's lock, uncommitted.
    let (mut office_a, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("office A");
    let connection_a = tokio::spawn(connection);
    let raising = office_a.transaction().await.expect("begin");
    raising
        .execute(LOCK_VISIT, &[&"visit-ava"])
        .await
        .expect("take the visit's lock");

    let (clock, _) = hand_clock(overdue_at() + TimeDelta::seconds(1));
    let (_handle_b, engine_b) =
        Escalation::spawn_sharing(office_b.clone(), clock, Duration::from_millis(100));
    // Office B waits for A: it neither raises a second alarm nor gives up.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let reader = PgStore::connect(&url, 1).await.expect("a reader");
    assert!(alarms(&reader, "visit-ava").await.is_empty());

    // A dies before committing: its connection drops, PostgreSQL rolls its transaction back and frees
    // the lock.
    std::mem::forget(raising);
    drop(office_a);
    connection_a.abort();

    let raised = until(|| alarms(&reader, "visit-ava"), |a| !a.is_empty()).await;
    assert_eq!(raised.len(), 1, "office B raised it");
    assert_eq!(raised[0].about, "check_in");
    engine_b.abort();
}

/// A phone's ingest on PostgreSQL sends `START TRANSACTION` and `COMMIT` with its statements rather than
/// waiting for each: a refused batch, and one whose request is abandoned half way, must still leave no
/// transaction open, no visit locked and nothing half written, on a pool of one connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_or_abandoned_batch_leaves_no_transaction_open_and_the_visit_free() {
    let url = fresh_database().await;
    let office = PgStore::connect(&url, 1).await.expect("office");
    let other_office = PgStore::connect(&url, 1).await.expect("another office");
    a_school(&office, &["visit-ava"]).await;
    let departed = envelope(
        "phone-sam",
        1,
        "visit-ava",
        at(10, 1),
        VisitEvent::Departed {
            staff: staff("sam"),
            expected_arrival: agreed(),
            expected_end: at(11, 0),
        },
    );
    let for_alex = envelope(
        "phone-sam",
        2,
        "visit-ava",
        at(10, 2),
        VisitEvent::ArrivedOutside {
            staff: staff("alex"),
        },
    );
    let refused = office
        .ingest(batch(&[departed.clone(), for_alex], at(10, 2), at(10, 2)))
        .await;
    assert!(
        matches!(refused, Err(IngestError::Rejected(_))),
        "{refused:?}"
    );
    // The visit is not left locked (the other office would wait for ever behind it) and nothing of the
    // batch is stored: the other office stores the event the refused batch carried; this office's one
    // connection then answers it as a duplicate.
    let stored = tokio::time::timeout(
        Duration::from_secs(10),
        other_office.ingest(batch(std::slice::from_ref(&departed), at(10, 2), at(10, 2))),
    )
    .await
    .expect("the visit is not left locked after a refusal")
    .expect("stored by the other office");
    assert_eq!(stored.results[0].outcome, EventOutcome::Stored);
    let again = office
        .ingest(batch(std::slice::from_ref(&departed), at(10, 3), at(10, 3)))
        .await
        .expect("answered after a refusal");
    assert_eq!(again.results[0].outcome, EventOutcome::Duplicate);
    assert_eq!(phase(&office, "visit-ava").await, "departed");

    // A request abandoned once its transaction is open (its first statements sent, the visit's lock
    // asked for): polled once, then dropped.
    let outside = envelope(
        "phone-sam",
        3,
        "visit-ava",
        at(10, 13),
        VisitEvent::ArrivedOutside {
            staff: staff("sam"),
        },
    );
    let mut abandoned = Box::pin(office.ingest(batch(
        std::slice::from_ref(&outside),
        at(10, 13),
        at(10, 13),
    )));
    let _ = std::future::poll_fn(|cx| {
        std::task::Poll::Ready(std::future::Future::poll(abandoned.as_mut(), cx))
    })
    .await;
    drop(abandoned);
    // Whether the server had its `COMMIT` before the request was dropped is a race (on a busy machine the
    // whole ingest can be done within that one poll); either way the batch is stored whole or not at
    // all, and the visit is not left locked: the other office answers the same event (it would wait for
    // ever behind a lock left held), as stored or as a duplicate.
    let answered = tokio::time::timeout(
        Duration::from_secs(10),
        other_office.ingest(batch(
            std::slice::from_ref(&outside),
            at(10, 13),
            at(10, 13),
        )),
    )
    .await
    .expect("the visit is not left locked after an abandoned batch")
    .expect("answered by the other office");
    assert!(
        matches!(
            answered.results[0].outcome,
            EventOutcome::Stored | EventOutcome::Duplicate
        ),
        "{answered:?}"
    );
    assert_eq!(phase(&other_office, "visit-ava").await, "outside");
    let again = office
        .ingest(batch(
            std::slice::from_ref(&outside),
            at(10, 14),
            at(10, 14),
        ))
        .await
        .expect("answered on a fresh connection");
    assert_eq!(again.results[0].outcome, EventOutcome::Duplicate);
    assert_eq!(phase(&office, "visit-ava").await, "outside");

    // And no session of either office is left inside a transaction.
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("an observer");
    tokio::spawn(connection);
    let open: i64 = client
        .query_one(
            "SELECT COUNT(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND pid != pg_backend_pid()
                   AND state LIKE 'idle in transaction%'",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(open, 0);
}

/// A `doorstep-office watch` process on the database at `url`, killed (SIGKILL) when dropped.
struct Watcher(std::process::Child);

impl Watcher {
    /// Starts one, handing its email to the relay on `smtp_port` (trusting the CA in `ca_file`), and
    /// waits until it says it is watching.
    async fn start(url: &str, smtp_port: u16, ca_file: &std::path::Path) -> Watcher {
        let smtp = format!("127.0.0.1:{smtp_port}");
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_doorstep-office"))
            .args(["watch", "--rescan-ms", "200", "--smtp", &smtp])
            .args(["--smtp-from", "doorstep@oakfield.example"])
            .args(["--smtp-user", smtp_relay::USER, "--smtp-ca-file"])
            .arg(ca_file)
            .env("DOORSTEP_DATABASE_URL", url)
            .env("DOORSTEP_SMTP_PASSWORD", smtp_relay::PASSWORD)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start doorstep-office watch");
        let stdout = child.stdout.take().expect("its output");
        let said = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
                .map(|_| line)
        });
        let said = tokio::time::timeout(Duration::from_secs(30), said)
            .await
            .expect("it starts within 30 s")
            .expect("read its output")
            .expect("read its output");
        assert_eq!(said.trim(), "watching every visit's deadlines");
        Watcher(child)
    }

    /// Kills it as a crash or a pulled plug would: no chance to finish anything.
    fn kill(&mut self) {
        self.0.kill().expect("SIGKILL");
        self.0.wait().expect("reap it");
    }

    fn is_running(&mut self) -> bool {
        self.0.try_wait().expect("ask").is_none()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_office_processes_on_one_database_raise_an_alarm_once_and_one_killed_leaves_the_next_to_the_other(
) {
    let url = fresh_database().await;
    let store = PgStore::connect(&url, 2).await.expect("connect");
    the_school(&store).await;
    store
        .add_notification_target(
            &id("school-1"),
            &email("office@oakfield.example", WantedLevels::BOARD),
            Utc::now(),
        )
        .await
        .expect("a target");
    let mut relay = smtp_relay::relay(RelaySettings::default()).await;
    let ca = tempfile::NamedTempFile::new().expect("a file for the CA");
    std::fs::write(ca.path(), &relay.ca_pem).expect("write the CA");
    // Two visits under way whose first check-in (10 minutes in, with 5 minutes' grace) goes unanswered 5 s
    // and 15 s from now, on the offices' own clock: the system's. Both are in the database before either
    // office starts, so neither sees a visit half stored.
    let going_in =
        |in_seconds: i64| Utc::now() + TimeDelta::seconds(in_seconds) - TimeDelta::minutes(15);
    for (n, (name, overdue_in)) in [("visit-1", 5), ("visit-2", 15)].into_iter().enumerate() {
        let agreed = going_in(overdue_in);
        an_authorised_visit(&store, name, 10 * n as u64, agreed).await;
        go_in_at(&store, name, 1 + 10 * n as u64, agreed).await;
    }
    let mut office_a = Watcher::start(&url, relay.port, ca.path()).await;
    let mut office_b = Watcher::start(&url, relay.port, ca.path()).await;

    let raised = until(|| alarms(&store, "visit-1"), |a| !a.is_empty()).await;
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert_eq!(raised[0].about, "check_in");
    // Both offices have looked again since (a rescan every 200 ms): still one alarm, raised once.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(alarms(&store, "visit-1").await.len(), 1);
    // The office is emailed once, by one of them, and the log says it was.
    let emailed = one_email(&mut relay).await;
    assert!(emailed.contains("Oakfield Primary"), "{emailed}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(relay.sessions.try_recv().is_err(), "a second email");
    let log = steps(&store, "visit-1").await;
    assert_eq!(
        log,
        [
            step("raised", Some(AlarmLevel::Board)),
            step("notified", None)
        ]
    );

    // Office A dies before visit-2's moment (were the machine so slow that it had come already, the test
    // fails here rather than prove nothing).
    assert!(alarms(&store, "visit-2").await.is_empty());
    office_a.kill();
    let raised = until(|| alarms(&store, "visit-2"), |a| !a.is_empty()).await;
    assert_eq!(
        raised.len(),
        1,
        "office B alone raised visit-2's alarm: {raised:?}"
    );
    assert_eq!(raised[0].about, "check_in");
    assert!(office_b.is_running());
    let emailed = one_email(&mut relay).await;
    assert!(emailed.contains("Oakfield Primary"), "{emailed}");
}

/// The next message the relay accepts (within 30 s), signed in and over TLS.
async fn one_email(relay: &mut smtp_relay::Relay) -> String {
    let session = tokio::time::timeout(Duration::from_secs(30), relay.sessions.recv())
        .await
        .expect("an email within 30 s")
        .expect("the relay runs");
    assert!(session.encrypted, "{session:?}");
    assert_eq!(session.to, ["office@oakfield.example"], "{session:?}");
    session.data.expect("a message")
}

/// A mail relay that accepts every message but those to `refused`, and keeps each it was handed.
#[derive(Default)]
struct Relay {
    handed: Mutex<Vec<Outgoing>>,
    refused: Vec<String>,
}

impl Relay {
    fn refusing(address: &str) -> Arc<Relay> {
        Arc::new(Relay {
            refused: vec![address.to_owned()],
            ..Relay::default()
        })
    }

    /// The messages handed over for `address`.
    fn to(&self, address: &str) -> Vec<Outgoing> {
        let handed = self.handed.lock().expect("the relay's messages");
        handed
            .iter()
            .filter(|m| m.address == address)
            .cloned()
            .collect()
    }
}

impl Transport for Relay {
    fn send(&self, message: Outgoing) -> Attempted {
        let refused = self.refused.contains(&message.address);
        self.handed
            .lock()
            .expect("the relay's messages")
            .push(message);
        Box::pin(async move {
            if refused {
                Err("550 mailbox unavailable".to_owned())
            } else {
                Ok("250 accepted".to_owned())
            }
        })
    }
}

fn email(address: &str, wants: WantedLevels) -> NewTarget {
    NewTarget::email(address, wants).expect("an address")
}

async fn an_alarm_is_told_to_those_who_want_it_once_a_refused_message_is_retried_and_acknowledging_stops_it<
    S: Visits + Alarms + Deliveries,
>(
    store: Arc<S>,
) {
    a_school(&*store, &["visit-ava"]).await;
    go_in(&*store, "visit-ava", 1).await;
    let school = id("school-1");
    for target in [
        email("office@oakfield.example", WantedLevels::BOARD),
        email("head@oakfield.example", WantedLevels::AUTHORISER),
    ] {
        store
            .add_notification_target(&school, &target, at(9, 0))
            .await
            .expect("a target");
    }
    let duplicate = store
        .add_notification_target(
            &school,
            &email("head@oakfield.example", WantedLevels::ALL),
            at(9, 1),
        )
        .await;
    assert!(
        matches!(duplicate, Err(StoreError::Invalid(_))),
        "{duplicate:?}"
    );
    let relay = Relay::refusing("head@oakfield.example");
    let notifier = Notifier::with_transport(
        store.clone(),
        Some("doorstep@oakfield.example".into()),
        relay.clone(),
    );

    // Raised at the board's level: the office hears, the head (who wants the authoriser's level) not yet.
    let silence = visit("visit-ava");
    let raised = store
        .raise_alarm(
            NewAlarm::overdue(&silence, "check-in", overdue_at()),
            overdue_at(),
        )
        .await
        .expect("raise")
        .expect("a new alarm");
    assert_eq!(
        notifier
            .record_deliveries(overdue_at())
            .await
            .expect("plan"),
        1
    );
    assert_eq!(
        notifier
            .record_deliveries(overdue_at())
            .await
            .expect("plan"),
        0,
        "once"
    );
    let sent = notifier.deliver_due(overdue_at()).await.expect("send");
    assert_eq!((sent.delivered, sent.failed), (1, 0), "{sent:?}");
    let to_office = relay.to("office@oakfield.example");
    assert_eq!(to_office.len(), 1);
    assert!(
        to_office[0].payload.contains("Oakfield Primary"),
        "{}",
        to_office[0].payload
    );
    assert!(relay.to("head@oakfield.example").is_empty());

    // At the authoriser's level the head is told; the relay refuses, and it is tried again 10 s later.
    let escalated = store
        .escalate_alarm(&raised, authoriser_at())
        .await
        .expect("escalate")
        .expect("as seen");
    assert_eq!(escalated.level, AlarmLevel::Authoriser);
    assert!(
        notifier
            .record_deliveries(authoriser_at())
            .await
            .expect("plan")
            >= 1
    );
    let sent = notifier.deliver_due(authoriser_at()).await.expect("send");
    assert_eq!(sent.failed, 1, "{sent:?}");
    assert_eq!(
        sent.next_due,
        Some(authoriser_at() + TimeDelta::seconds(10))
    );
    let to_head = |deliveries: &[doorstep_office::notify::Delivery]| {
        let head = deliveries
            .iter()
            .filter(|d| d.payload.contains("head@oakfield.example"));
        head.cloned().collect::<Vec<_>>()
    };
    let waiting = to_head(&store.deliveries_for_alarm(raised.id).await.expect("read"));
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert_eq!(waiting[0].attempts, 1);
    assert_eq!(
        waiting[0].last_error.as_deref(),
        Some("550 mailbox unavailable")
    );
    let early = notifier
        .deliver_due(authoriser_at() + TimeDelta::seconds(5))
        .await
        .expect("send");
    assert_eq!(early.attempted(), 0, "not due yet: {early:?}");
    let retried = notifier
        .deliver_due(authoriser_at() + TimeDelta::seconds(10))
        .await
        .expect("send");
    assert_eq!(retried.failed, 1, "{retried:?}");
    assert_eq!(relay.to("head@oakfield.example").len(), 2);

    // Someone is handling it: what still waits is dropped, and the log says so.
    store
        .acknowledge_alarm(
            raised.id,
            "Olu Office",
            authoriser_at() + TimeDelta::seconds(20),
        )
        .await
        .expect("acknowledge");
    let again = store
        .acknowledge_alarm(
            raised.id,
            "Kim Office",
            authoriser_at() + TimeDelta::seconds(21),
        )
        .await;
    assert!(
        matches!(again, Err(StoreError::Invalid(ref why)) if why.contains("Olu Office")),
        "{again:?}"
    );
    let stopped = notifier
        .deliver_due(authoriser_at() + TimeDelta::minutes(5))
        .await
        .expect("send");
    assert_eq!(
        (stopped.cancelled, stopped.attempted()),
        (1, 0),
        "{stopped:?}"
    );
    assert_eq!(stopped.next_due, None);
    assert_eq!(relay.to("head@oakfield.example").len(), 2);
    let waiting = to_head(&store.deliveries_for_alarm(raised.id).await.expect("read"));
    assert_eq!((waiting[0].attempts, waiting[0].next_attempt_at), (2, None));
    let log = steps(&*store, "visit-ava").await;
    for what in [
        step::NOTIFIED,
        step::NOTIFICATION_FAILED,
        step::ACKNOWLEDGED,
        step::NOTIFICATION_CANCELLED,
    ] {
        assert!(log.iter().any(|(w, _)| w == what), "no {what} in {log:?}");
    }
    assert_eq!(
        notifier
            .record_deliveries(authoriser_at() + TimeDelta::minutes(6))
            .await
            .expect("plan"),
        0
    );
}

async fn a_visit_called_off_as_unsafe_is_told_to_the_dsl_once<S: Visits + Alarms + Deliveries>(
    store: Arc<S>,
) {
    a_school(&*store, &["visit-ava"]).await;
    let dsl = email("dsl@oakfield.example", WantedLevels::NONE).for_roles(&[Role::Dsl]);
    store
        .add_notification_target(&id("school-1"), &dsl, at(9, 0))
        .await
        .expect("a target");
    let departed = envelope(
        "phone-sam",
        1,
        "visit-ava",
        at(10, 1),
        VisitEvent::Departed {
            staff: staff("sam"),
            expected_arrival: agreed(),
            expected_end: at(11, 0),
        },
    );
    let called_off = envelope(
        "phone-sam",
        2,
        "visit-ava",
        at(10, 14),
        VisitEvent::Cancelled {
            staff: staff("sam"),
            reason: lifecycle::CancelReason::FeltUnsafe,
            note: "shouting from inside as we reached the door".into(),
        },
    );
    store
        .ingest(batch(&[departed, called_off], at(10, 14), at(10, 14)))
        .await
        .expect("stored");
    let relay = Arc::new(Relay::default());
    let notifier = Notifier::with_transport(store.clone(), None, relay.clone());
    assert_eq!(
        notifier.record_deliveries(at(10, 15)).await.expect("plan"),
        1
    );
    let sent = notifier.deliver_due(at(10, 15)).await.expect("send");
    assert_eq!(sent.delivered, 1, "{sent:?}");
    let told = relay.to("dsl@oakfield.example");
    assert_eq!(told.len(), 1);
    assert!(
        told[0].payload.contains("Oakfield Primary"),
        "{}",
        told[0].payload
    );
    assert_eq!(
        notifier.record_deliveries(at(10, 16)).await.expect("plan"),
        0,
        "once"
    );
}

async fn a_phone_is_sent_everything_then_only_what_changed_since_its_cursor<S: Visits + Alarms>(
    store: &S,
) {
    a_school(store, &["visit-ava"]).await;
    let phone = sams_phone();
    let first = store
        .holdings_since(&phone, at(10, 0), None)
        .await
        .expect("hold");
    assert_eq!(first.scope, HoldScope::Full);
    assert_eq!(first.hold.staff_name, "Sam");
    assert_eq!(first.hold.visits.len(), 1);
    let authorised = first.hold.visits[0].events.len();
    assert!(authorised >= 1, "the head's authorisation");
    assert_eq!(
        store.acknowledged_through(&phone.id).await.expect("read"),
        None
    );

    // Nothing new: nothing sent, and the same cursor back.
    let idle = store
        .holdings_since(&phone, at(10, 0), Some(&first.cursor))
        .await
        .expect("hold");
    assert_eq!(idle.scope, HoldScope::ChangesOnly);
    assert!(idle.hold.visits.is_empty(), "{:?}", idle.hold.visits);
    assert_eq!(idle.cursor, first.cursor);

    // Sam sets off: only that event is sent.
    let departed = envelope(
        "phone-sam",
        1,
        "visit-ava",
        at(10, 1),
        VisitEvent::Departed {
            staff: staff("sam"),
            expected_arrival: agreed(),
            expected_end: at(11, 0),
        },
    );
    store
        .ingest(batch(std::slice::from_ref(&departed), at(10, 1), at(10, 1)))
        .await
        .expect("stored");
    let changed = store
        .holdings_since(&phone, at(10, 2), Some(&idle.cursor))
        .await
        .expect("hold");
    assert_eq!(changed.scope, HoldScope::ChangesOnly);
    let sent: Vec<_> = changed.hold.visits[0].events.iter().map(|e| e.id).collect();
    assert_eq!(sent, [departed.id]);
    assert_ne!(changed.cursor, idle.cursor);
    assert_eq!(
        store.acknowledged_through(&phone.id).await.expect("read"),
        Some(DeviceSeq::new(1).expect("a number"))
    );
    let after = store
        .holdings_since(&phone, at(10, 3), Some(&changed.cursor))
        .await
        .expect("hold");
    assert!(after.hold.visits.is_empty(), "sent once");

    // A cursor the store cannot read, and the phone is sent everything again.
    let again = store
        .holdings_since(&phone, at(10, 3), Some("not a cursor"))
        .await
        .expect("hold");
    assert_eq!(again.scope, HoldScope::Full);
    assert_eq!(again.hold.visits[0].events.len(), authorised + 1);
}

async fn the_audit_log_is_one_chain_and_each_entry_follows_the_one_before<
    S: Visits + AuditTrail,
>(
    store: &S,
) {
    a_school(store, &["visit-ava"]).await;
    let intact = store.verify_audit_log().await.expect("walk");
    assert!(intact.is_intact() && intact.entries == 0, "{intact:?}");
    let school = id("school-1");
    let about_ava =
        |action| NewEntry::new(&school, &staff("head"), action).visit(&visit("visit-ava"));
    let opened = store
        .audit(&about_ava(Action::OpenedTimeline), at(11, 0))
        .await
        .expect("append");
    let exported = store
        .audit(&about_ava(Action::ExportedWriteUpPdf), at(11, 5))
        .await
        .expect("append");
    store
        .audit(
            &NewEntry::new(&school, &staff("head"), Action::OpenedMonthlyReport).record("2026-11"),
            at(11, 6),
        )
        .await
        .expect("append");
    assert_eq!((opened.seq, exported.seq), (1, 2));
    assert_eq!(exported.prev_hash, opened.hash);
    assert_eq!(exported.computed_hash(), exported.hash);
    let ava = store
        .audit_entries_for_visit(&visit("visit-ava"))
        .await
        .expect("read");
    assert_eq!(ava, [opened, exported]);
    assert_eq!(ava[1].action(), Some(Action::ExportedWriteUpPdf));
    let check = store.verify_audit_log().await.expect("walk");
    assert!(check.is_intact(), "{check:?}");
    assert_eq!(check.entries, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_offices_appending_at_once_keep_one_unbroken_audit_chain_which_nobody_can_edit() {
    let url = fresh_database().await;
    let (a, b) = (
        Arc::new(PgStore::connect(&url, 2).await.expect("connect")),
        Arc::new(PgStore::connect(&url, 2).await.expect("connect")),
    );
    the_school(&*a).await;
    let appending = |store: Arc<PgStore>, who: &'static str| {
        tokio::spawn(async move {
            for n in 0..20 {
                let entry =
                    NewEntry::new(&id("school-1"), &staff(who), Action::OpenedMonthlyReport)
                        .record(format!("2026-{n:02}"));
                store.audit(&entry, at(11, 0)).await.expect("append");
            }
        })
    };
    let (one, two) = (appending(a.clone(), "head"), appending(b.clone(), "sam"));
    one.await.expect("office A");
    two.await.expect("office B");
    let check = a.verify_audit_log().await.expect("walk");
    assert!(check.is_intact(), "{check:?}");
    assert_eq!(check.entries, 40);

    // The database itself refuses to change or remove an entry.
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    let connection = tokio::spawn(connection);
    for sql in [
        "UPDATE audit_log SET actor = 'someone else' WHERE seq = 3",
        "DELETE FROM audit_log WHERE seq = 40",
    ] {
        let refused = client.execute(sql, &[]).await.expect_err("refused");
        assert!(
            refused.to_string().contains("append-only")
                || format!("{refused:?}").contains("append-only"),
            "{refused:?}"
        );
    }
    drop(client);
    let _ = connection.await;
    assert!(b.verify_audit_log().await.expect("walk").is_intact());
}

async fn an_office_decision_and_a_closed_alert_are_recorded_with_their_audit_entries<
    S: Visits + Alarms + AuditTrail,
>(
    store: &S,
) {
    a_school(store, &["visit-ava"]).await;
    let audited = |visit_id: &'static str| async move {
        store
            .audit_entries_for_visit(&visit(visit_id))
            .await
            .expect("read")
            .iter()
            .map(|e| e.action())
            .collect::<Vec<_>>()
    };

    // The head authorises a second visit from the office's pages.
    let pair = [
        member("Sam", &[Role::VisitingStaff], true),
        member("Alex", &[Role::VisitingStaff], true),
    ];
    store
        .add_visit(&a_visit("visit-ben", &[&pair[0], &pair[1]]))
        .await
        .expect("visit");
    let authorise = Command::Authorise {
        by: staff("head"),
        lone_visit_approved: false,
    };
    let recorded = store
        .record_office_event(&visit("visit-ben"), &authorise, at(9, 0))
        .await
        .expect("authorised");
    assert!(
        matches!(recorded.event, VisitEvent::Authorised { .. }),
        "{recorded:?}"
    );
    assert_eq!(recorded.device.as_str(), "office");
    assert_eq!(phase(store, "visit-ben").await, "authorised");
    assert_eq!(audited("visit-ben").await, [Some(Action::Authorised)]);
    // Deciding again what is decided is refused, and changes nothing.
    let again = store
        .record_office_event(&visit("visit-ben"), &authorise, at(9, 1))
        .await;
    assert!(matches!(again, Err(StoreError::Invalid(_))), "{again:?}");
    assert_eq!(audited("visit-ben").await, [Some(Action::Authorised)]);

    // Sam raises an alert inside; the office closes it once someone is handling it.
    go_in(store, "visit-ava", 1).await;
    let alert = envelope(
        "phone-sam",
        10,
        "visit-ava",
        at(10, 20),
        VisitEvent::DuressRaised {
            staff: staff("sam"),
            via: DuressVia::CodePhraseButton,
        },
    );
    let ingested = store
        .ingest(batch(&[alert], at(10, 20), at(10, 20)))
        .await
        .expect("stored");
    let alarm = ingested.alarms[0].clone();
    assert_eq!(phase(store, "visit-ava").await, "duress");
    let head = staff("head");
    let close = |when| {
        store.close_alarm(
            alarm.id,
            &head,
            "Head",
            lifecycle::AlarmOutcome::SpokeToStaff,
            "rang Sam, who is safe",
            when,
        )
    };
    let early = close(at(10, 22)).await;
    assert!(
        matches!(early, Err(StoreError::Invalid(ref why)) if why.contains("acknowledge the alarm first")),
        "{early:?}"
    );
    store
        .acknowledge_alarm(alarm.id, "Head", at(10, 23))
        .await
        .expect("acknowledge");
    let closing = close(at(10, 25)).await.expect("closed");
    assert_eq!(closing.alarms.len(), 1);
    assert_eq!(
        closing.alarms[0].outcome,
        Some(lifecycle::AlarmOutcome::SpokeToStaff)
    );
    assert_eq!(
        closing.alarms[0].close_note.as_deref(),
        Some("rang Sam, who is safe")
    );
    let stood_down = closing.stand_down.expect("stood down on the phones");
    assert!(
        matches!(stood_down.event, VisitEvent::AlertsClosed { .. }),
        "{stood_down:?}"
    );
    assert_ne!(phase(store, "visit-ava").await, "duress");
    assert!(audited("visit-ava")
        .await
        .contains(&Some(Action::AlertsClosed)));
    let log = steps(store, "visit-ava").await;
    assert_eq!(log.last(), Some(&step("closed", None)), "{log:?}");
    let twice = close(at(10, 26)).await;
    assert!(
        matches!(twice, Err(StoreError::Invalid(ref why)) if why.contains("already closed by Head")),
        "{twice:?}"
    );
    assert!(store.verify_audit_log().await.expect("walk").is_intact());
}

async fn an_office_sign_in_takes_the_right_password_and_its_session_ends_when_it_should<
    S: Visits + SignIns + AuditTrail + Deliveries,
>(
    store: &S,
) {
    the_school(store).await;
    let head = staff("head");
    let password = "correct horse battery";
    let refused = |result: Result<(), StoreError>| matches!(result, Err(StoreError::Invalid(_)));
    assert!(refused(
        store
            .set_office_password(&head, "too short", at(8, 0))
            .await
    ));
    assert!(refused(
        store
            .set_office_password(&staff("nobody"), password, at(8, 0))
            .await
    ));
    assert_eq!(
        store
            .check_office_password("head", password)
            .await
            .expect("check"),
        None
    );

    store
        .set_office_password(&head, password, at(8, 0))
        .await
        .expect("password");
    for (name, tried) in [
        ("head", "correct horse batter"),
        ("nobody", password),
        ("", password),
    ] {
        let user = store
            .check_office_password(name, tried)
            .await
            .expect("check");
        assert_eq!(user, None, "{name} with {tried}");
    }
    let user = store
        .check_office_password(" head ", password)
        .await
        .expect("check")
        .expect("the head signs in");
    assert_eq!(
        (
            user.staff.name.as_str(),
            user.school.name.as_str(),
            user.notification_targets
        ),
        ("Head", "Oakfield Primary", 0)
    );
    assert_eq!(user.policy, the_policy());
    assert!(user.may_use_board() && user.may_read_records());

    let wants = WantedLevels {
        board: true,
        authoriser: true,
        further: false,
    };
    store
        .add_notification_target(
            &id("school-1"),
            &email("office@example.org", wants),
            at(8, 5),
        )
        .await
        .expect("target");
    let session = store
        .start_session(&head, "token-1", at(9, 0))
        .await
        .expect("session");
    assert_eq!(
        session.user.notification_targets, 1,
        "the board says someone can be told"
    );
    assert_eq!(session.csrf_token.len(), 64);
    assert_eq!(session.expires_at, at(21, 0));
    assert_eq!(
        store.session("token-1", at(20, 59)).await.expect("read"),
        Some(session)
    );
    assert_eq!(
        store.session("token-2", at(9, 1)).await.expect("read"),
        None
    );
    assert_eq!(
        store.session("token-1", at(21, 0)).await.expect("read"),
        None,
        "twelve hours"
    );

    store
        .start_session(&head, "token-3", at(10, 0))
        .await
        .expect("session");
    store.end_session("token-3").await.expect("sign out");
    store
        .end_session("never-issued")
        .await
        .expect("an unknown session");
    assert_eq!(
        store.session("token-3", at(10, 1)).await.expect("read"),
        None
    );

    store
        .start_session(&head, "token-4", at(10, 0))
        .await
        .expect("session");
    store
        .set_office_password(&head, "a new password entirely", at(10, 30))
        .await
        .expect("new password");
    assert_eq!(
        store.session("token-4", at(10, 31)).await.expect("read"),
        None,
        "locked out"
    );
    assert_eq!(
        store
            .check_office_password("head", password)
            .await
            .expect("check"),
        None
    );

    let before = store.verify_audit_log().await.expect("walk").entries;
    store
        .audit_refused_sign_in("head", "wrong password", at(11, 0))
        .await
        .expect("audit");
    store
        .audit_refused_sign_in("nobody", "wrong password", at(11, 0))
        .await
        .expect("audit");
    let after = store.verify_audit_log().await.expect("walk");
    assert!(after.is_intact(), "{after:?}");
    assert_eq!(
        after.entries,
        before + 1,
        "only a real person's refusal is in a school's log"
    );
}

async fn a_phone_enrols_once_with_its_code_renews_its_credential_and_is_refused_once_revoked<
    S: Visits + Phones + AuditTrail,
>(
    store: &S,
) {
    the_school(store).await;
    let school = id("school-1");
    let sam = staff("sam");
    let refused = store
        .issue_enrolment_code(&school, &staff("nobody"), "head", at(9, 0))
        .await;
    assert!(
        matches!(refused, Err(StoreError::Invalid(_))),
        "{refused:?}"
    );

    let first = store
        .issue_enrolment_code(&school, &sam, "head", at(9, 0))
        .await
        .expect("code");
    let code = store
        .issue_enrolment_code(&school, &sam, "head", at(9, 1))
        .await
        .expect("code");
    assert_eq!(
        (code.staff_name.as_str(), code.expires_at),
        ("Sam", at(9, 16))
    );
    let pending = store
        .pending_enrolment_codes(&school, at(9, 2))
        .await
        .expect("pending");
    assert_eq!(
        pending.len(),
        1,
        "the newer code withdrew the older: {pending:?}"
    );
    assert_eq!(
        (pending[0].staff.clone(), pending[0].issued_at),
        (sam.clone(), at(9, 1))
    );
    assert!(store
        .pending_enrolment_codes(&school, at(9, 16))
        .await
        .expect("pending")
        .is_empty());

    let redeem =
        |typed: String, when| async move { store.redeem_enrolment_code(&typed, when).await };
    assert!(matches!(
        redeem(first.code.clone(), at(9, 2)).await,
        Err(RedeemError::Expired)
    ));
    assert!(matches!(
        redeem("0000-0000-0000".into(), at(9, 2)).await,
        Err(RedeemError::Unknown)
    ));
    assert!(matches!(
        redeem(code.code.clone(), at(9, 16)).await,
        Err(RedeemError::Expired)
    ));
    let typed = doorstep_core::protocol::display_enrolment_code(&code.code).to_lowercase();
    let enrolled = redeem(typed.clone(), at(9, 5)).await.expect("enrolled");
    assert!(matches!(
        redeem(typed, at(9, 6)).await,
        Err(RedeemError::Used)
    ));
    assert_eq!(
        (enrolled.staff_name.as_str(), enrolled.school_name.as_str()),
        ("Sam", "Oakfield Primary")
    );
    let phone = enrolled.device.clone();
    assert_eq!(
        (phone.staff.clone(), phone.school.clone()),
        (sam.clone(), school.clone())
    );
    assert_eq!(
        enrolled.credential.expires_at,
        at(9, 5) + TimeDelta::days(30)
    );

    let token = enrolled.credential.token.clone();
    let check =
        |token: String, when| async move { store.check_token(&token, when).await.expect("check") };
    assert_eq!(
        check(token.clone(), at(10, 0)).await,
        TokenCheck::Accepted(phone.clone())
    );
    assert_eq!(
        check("not-a-token".into(), at(10, 0)).await,
        TokenCheck::Unknown
    );
    assert_eq!(
        store.offer_renewal(&phone, at(10, 0)).await.expect("offer"),
        None,
        "too new"
    );
    let devices = store.school_devices(&school).await.expect("devices");
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].last_seen_at, Some(at(10, 0)));
    assert_eq!(devices[0].enrolled_by.as_deref(), Some("head"));

    // A week on, each sync offers a fresh credential; the phone's first use of one makes it current.
    let week = TimeDelta::days(8);
    let offered = store
        .offer_renewal(&phone, at(10, 0) + week)
        .await
        .expect("offer")
        .expect("due");
    assert_eq!(
        check(token.clone(), at(10, 1) + week).await,
        TokenCheck::Accepted(phone.clone())
    );
    let renewed = check(offered.token.clone(), at(10, 2) + week).await;
    let TokenCheck::Accepted(renewed) = renewed else {
        panic!("{renewed:?}")
    };
    assert_eq!(renewed.credential_issued_at, at(10, 0) + week);
    assert_eq!(
        check(token.clone(), at(10, 3) + week).await,
        TokenCheck::Replaced { clone: false }
    );
    assert_eq!(
        check(token.clone(), at(10, 10) + week).await,
        TokenCheck::Replaced { clone: true }
    );
    let devices = store.school_devices(&school).await.expect("devices");
    let (suspected_at, why) = devices[0].clone_suspected.clone().expect("clone suspected");
    assert_eq!(suspected_at, at(10, 10) + week);
    assert!(why.contains("used again"), "{why}");
    assert_eq!(devices[0].credential_expires_at, Some(offered.expires_at));
    assert_eq!(
        check(offered.token.clone(), at(10, 0) + TimeDelta::days(39)).await,
        TokenCheck::Expired
    );

    assert!(store
        .revoke_device(&school, &phone.id, &staff("head"), at(11, 0) + week)
        .await
        .expect("revoke"));
    assert_eq!(
        check(offered.token.clone(), at(11, 1) + week).await,
        TokenCheck::Revoked
    );
    let again = store
        .revoke_device(&school, &phone.id, &staff("head"), at(11, 2) + week)
        .await;
    assert!(matches!(again, Err(StoreError::Invalid(_))), "{again:?}");
    let elsewhere = store
        .revoke_device(&id("school-2"), &phone.id, &staff("head"), at(11, 2) + week)
        .await;
    assert!(
        !elsewhere.expect("another school's"),
        "another school cannot revoke it"
    );
    let devices = store.school_devices(&school).await.expect("devices");
    assert_eq!(
        devices[0].revoked.clone().map(|(at, _)| at),
        Some(at(11, 0) + week)
    );
    assert_eq!(devices[0].credential_expires_at, None);

    let log: Vec<DeviceAction> = store
        .device_log(&school, 10)
        .await
        .expect("log")
        .into_iter()
        .map(|entry| entry.action)
        .collect();
    use DeviceAction::*;
    assert_eq!(
        log,
        [
            Revoked,
            CloneSuspected,
            Renewed,
            Enrolled,
            CodeIssued,
            CodeIssued
        ]
    );
    assert_eq!(store.device_log(&school, 2).await.expect("log").len(), 2);
    let audit = store.verify_audit_log().await.expect("walk");
    assert!(audit.is_intact(), "{audit:?}");
    assert_eq!(
        audit.entries, 5,
        "two codes, the enrolment, the suspicion and the revocation"
    );

    // The demo's phones enrol with a token the caller made.
    let demo = device("phone-demo");
    store
        .enrol_device(&demo, &staff("alex"), "demo-token", at(8, 0))
        .await
        .expect("enrol");
    let TokenCheck::Accepted(alex) = check("demo-token".into(), at(8, 30)).await else {
        panic!("the demo phone is refused")
    };
    assert_eq!((alex.id, alex.staff), (demo, staff("alex")));
}

async fn pupils_absences_and_staff_are_saved_row_by_row_and_each_setting_changed_is_audited<
    S: Visits + People + SignIns + AuditTrail,
>(
    store: &S,
) {
    the_school(store).await;
    let school = id("school-1");
    let other = School {
        id: id("school-2"),
        name: "Elmwood Academy".into(),
        office_phone: id("01632 960001"),
        time_zone: Default::default(),
    };
    store
        .add_school(&other, &the_policy())
        .await
        .expect("school");
    let theirs = doorstep_core::domain::Pupil {
        id: id("pupil-x"),
        name: "Xan".into(),
    };
    store.add_pupil(&other.id, &theirs).await.expect("pupil");
    let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 24).expect("a date");
    let header = doorstep_office::people::PUPIL_CSV_COLUMNS.join(",");
    let pupils = format!(
        "{header}\n\
         pupil-bo,Bo Example,2016-05-01,1 Long Lane,,Oakton,OK1 2AB,Dog in the garden,\n\
         pupil-cy,Cy Example,02/03/2017,2 Short St,Flat 1,Oakton,ok1 3cd,,Asthma\n\
         pupil-dee,Dee Example,2016-01-01,3 Lane,,Oakton,not a postcode,,\n\
         pupil-x,Xan Example,2016-01-01,4 Lane,,Oakton,OK1 4EF,,\n"
    );
    let report = store
        .import_csv(ImportKind::Pupils, &school, &pupils, today)
        .await
        .expect("import");
    assert_eq!((report.imported, report.updated), (2, 0));
    let refused: Vec<(u64, &str)> = report
        .rejected
        .iter()
        .map(|p| (p.line, p.pupil_id.as_str()))
        .collect();
    assert_eq!(refused, [(4, "pupil-dee"), (5, "pupil-x")]);
    assert!(
        report.rejected[1].reason.contains("another school"),
        "{:?}",
        report.rejected
    );

    let renamed =
        format!("{header}\npupil-bo,Bo Renamed,2016-05-01,1 Long Lane,,Oakton,OK1 2AB,,\n");
    let report = store
        .import_csv(ImportKind::Pupils, &school, &renamed, today)
        .await
        .expect("import");
    assert_eq!(
        (report.imported, report.updated, report.rejected.len()),
        (0, 1, 0)
    );
    let wrong = store
        .import_csv(ImportKind::Pupils, &school, "id,name\np-9,Nine\n", today)
        .await;
    assert!(matches!(wrong, Err(StoreError::Invalid(_))), "{wrong:?}");

    let records = store.pupil_records(&school).await.expect("records");
    let names: Vec<&str> = records.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        ["Bo Renamed", "Cy Example"],
        "Ava came with no MIS record"
    );
    assert_eq!(records[1].postcode.as_str(), "OK1 3CD");
    assert_eq!(
        records[1].date_of_birth,
        chrono::NaiveDate::from_ymd_opt(2017, 3, 2).expect("a date")
    );
    let pupils = store.school_pupils(&school).await.expect("pupils");
    let names: Vec<&str> = pupils.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["Ava B.", "Bo Renamed", "Cy Example"]);

    let absences = "pupil_id,date,reason_code,contact_made\n\
                    pupil-bo,2026-11-23,N,no\n\
                    pupil-bo,20/11/2026,O,no\n\
                    pupil-x,2026-11-23,N,no\n";
    let report = store
        .import_csv(ImportKind::Absences, &school, absences, today)
        .await
        .expect("import");
    assert_eq!(
        (report.imported, report.updated, report.rejected.len()),
        (2, 0, 1)
    );
    assert!(
        report.rejected[0].reason.contains("no pupil"),
        "{:?}",
        report.rejected
    );
    let again = "pupil_id,date,reason_code,contact_made\npupil-bo,2026-11-23,I,yes\n";
    let report = store
        .import_csv(ImportKind::Absences, &school, again, today)
        .await
        .expect("import");
    assert_eq!((report.imported, report.updated), (0, 1));
    let day = |d| chrono::NaiveDate::from_ymd_opt(2026, 11, d).expect("a date");
    let held = store
        .absences_for(&school, day(20), day(23))
        .await
        .expect("absences");
    let held: Vec<(u32, &str, bool)> = held
        .iter()
        .map(|a| {
            (
                chrono::Datelike::day(&a.date),
                a.reason_code.as_str(),
                a.contact_made,
            )
        })
        .collect();
    assert_eq!(held, [(20, "O", false), (23, "I", true)]);
    assert_eq!(
        store
            .absences_for(&school, day(21), day(22))
            .await
            .expect("absences"),
        []
    );

    let newcomer = member("Nia", &[Role::VisitingStaff], true);
    assert_eq!(
        store.save_staff(&school, &newcomer).await.expect("save"),
        Saved::Added
    );
    assert_eq!(
        store.save_staff(&school, &newcomer).await.expect("save"),
        Saved::Updated
    );
    let taken = store
        .save_staff(&other.id, &member("Sam", &[Role::Office], true))
        .await;
    assert!(matches!(taken, Err(StoreError::Invalid(_))), "{taken:?}");
    assert_eq!(
        store
            .school_staff_member(&other.id, &staff("sam"))
            .await
            .expect("read"),
        None
    );
    let sam = store
        .school_staff_member(&school, &staff("sam"))
        .await
        .expect("read")
        .expect("Sam");
    assert_eq!(
        sam.roles,
        [Role::VisitingStaff],
        "the other school's save changed nothing"
    );
    let everyone = store.school_staff(&school).await.expect("staff");
    let names: Vec<&str> = everyone.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["Alex", "Head", "Nia", "Sam"]);

    assert_eq!(store.policy(&school).await.expect("policy"), the_policy());
    let entries = store.verify_audit_log().await.expect("walk").entries;
    let mut later = the_policy();
    later.staff_per_visit = 3;
    let change = SettingsChange::Policy {
        policy: &later,
        how: "saved the settings",
    };
    store
        .change_settings(&school, change, &staff("head"), at(12, 0))
        .await
        .expect("change");
    assert_eq!(store.policy(&school).await.expect("policy"), later);
    let mut broken = later.clone();
    broken.staff_per_visit = 9;
    let change = SettingsChange::Policy {
        policy: &broken,
        how: "saved the settings",
    };
    let refused = store
        .change_settings(&school, change, &staff("head"), at(12, 1))
        .await;
    assert!(
        matches!(refused, Err(StoreError::Invalid(_))),
        "{refused:?}"
    );
    assert_eq!(
        store.policy(&school).await.expect("policy"),
        later,
        "nothing stored"
    );
    let auckland =
        doorstep_core::domain::SchoolTimeZone::parse("Pacific/Auckland").expect("a zone");
    let change = SettingsChange::TimeZone(auckland);
    store
        .change_settings(&school, change, &staff("head"), at(12, 2))
        .await
        .expect("change");
    store
        .set_office_password(&staff("head"), "correct horse battery", at(12, 3))
        .await
        .expect("pw");
    let head = store
        .check_office_password("head", "correct horse battery")
        .await
        .expect("check");
    assert_eq!(head.expect("signed in").school.time_zone, auckland);
    let audit = store.verify_audit_log().await.expect("walk");
    assert!(audit.is_intact(), "{audit:?}");
    assert_eq!(
        audit.entries,
        entries + 2,
        "each change made, and not the refused one"
    );
}

async fn a_requested_visit_keeps_its_details_all_or_nothing_and_each_concern_is_audited<
    S: Visits + Requests + AuditTrail,
>(
    store: &S,
) {
    the_school(store).await;
    let school = id("school-1");
    let (sam, alex) = (
        member("Sam", &[Role::VisitingStaff], true),
        member("Alex", &[Role::VisitingStaff], true),
    );
    let details = RequestDetails {
        requested_by: staff("head"),
        requested_at: at(9, 0),
        timing: Timing {
            out_of_hours: true,
            evening: true,
        },
        responsible_contact: Some(("Head".into(), id("07700 900001"))),
        contact_email: Some("head@example.org".into()),
        authoriser_override: None,
    };
    let mut later = a_visit("visit-later", &[&sam, &alex]);
    later.agreed_time = at(18, 30);
    later.address.lines = vec!["3 New Road".into(), "Oakfield".into()];
    store
        .add_requested_visit(&later, &details)
        .await
        .expect("request");
    let earlier = a_visit("visit-earlier", &[&sam, &alex]);
    store
        .add_requested_visit(&earlier, &details)
        .await
        .expect("request");
    assert_eq!(
        store
            .request_details(&visit("visit-later"))
            .await
            .expect("read"),
        Some(details.clone())
    );

    let mut bad_email = details.clone();
    bad_email.contact_email = Some("not an address".into());
    let refused = store
        .add_requested_visit(&a_visit("visit-bad", &[&sam]), &bad_email)
        .await;
    assert!(
        matches!(refused, Err(StoreError::Invalid(_))),
        "{refused:?}"
    );
    let jo = member("Jo", &[Role::VisitingStaff], false);
    store.add_staff(&school, &jo).await.expect("staff");
    let refused = store
        .add_requested_visit(&a_visit("visit-jo", &[&jo]), &details)
        .await;
    assert!(
        matches!(refused, Err(StoreError::Invalid(_))),
        "{refused:?}"
    );
    for nothing in ["visit-bad", "visit-jo"] {
        assert_eq!(
            store.request_details(&visit(nothing)).await.expect("read"),
            None,
            "{nothing}"
        );
        assert!(
            store
                .visit_with_policy(&visit(nothing))
                .await
                .expect("read")
                .is_none(),
            "{nothing}"
        );
    }

    store
        .set_authoriser_override(
            &visit("visit-later"),
            "the family can only be seen after work",
        )
        .await
        .expect("override");
    let kept = store
        .request_details(&visit("visit-later"))
        .await
        .expect("read")
        .expect("details");
    assert_eq!(
        kept.authoriser_override.as_deref(),
        Some("the family can only be seen after work")
    );
    assert_eq!(
        store
            .request_details(&visit("visit-none"))
            .await
            .expect("read"),
        None
    );
    let address = store
        .last_known_address(&id("pupil-ava"))
        .await
        .expect("read")
        .expect("known");
    assert_eq!(
        address.lines,
        ["3 New Road", "Oakfield"],
        "the latest visit's"
    );
    let day = store
        .visit_ids_between(&school, at(0, 0), at(23, 59))
        .await
        .expect("visits");
    assert_eq!(day, [visit("visit-earlier"), visit("visit-later")]);
    assert_eq!(
        store
            .visit_ids_between(&school, at(10, 16), at(18, 30))
            .await
            .expect("visits"),
        []
    );

    let entries = store.verify_audit_log().await.expect("walk").entries;
    let ava: doorstep_core::ids::PupilId = id("pupil-ava");
    store
        .set_absence_concern(&school, &ava, true, &staff("head"), at(11, 0))
        .await
        .expect("note");
    store
        .set_absence_concern(&school, &ava, true, &staff("sam"), at(11, 5))
        .await
        .expect("again");
    let concerns = store.absence_concerns(&school).await.expect("concerns");
    assert_eq!(concerns.len(), 1);
    assert_eq!(
        (concerns[0].noted_at, concerns[0].noted_by.clone()),
        (at(11, 0), Some(staff("head")))
    );
    let (_, with_concern) = store.absences(&school).await.expect("absences");
    assert!(with_concern.contains(&ava));
    let unknown = store
        .set_absence_concern(&id("school-2"), &ava, true, &staff("head"), at(11, 6))
        .await;
    assert!(
        matches!(unknown, Err(StoreError::Invalid(_))),
        "{unknown:?}"
    );
    store
        .set_absence_concern(&school, &ava, false, &staff("head"), at(12, 0))
        .await
        .expect("clear");
    assert_eq!(store.absence_concerns(&school).await.expect("concerns"), []);
    let audit = store.verify_audit_log().await.expect("walk");
    assert!(audit.is_intact(), "{audit:?}");
    assert_eq!(
        audit.entries,
        entries + 2,
        "noted and cleared, not the repeat"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_offices_racing_one_code_and_one_renewal_enrol_one_phone_and_renew_it_once() {
    let url = fresh_database().await;
    let (a, b) = (
        Arc::new(PgStore::connect(&url, 2).await.expect("connect")),
        Arc::new(PgStore::connect(&url, 2).await.expect("connect")),
    );
    the_school(&*a).await;
    let school = id("school-1");
    for round in 0..10 {
        let code = a
            .issue_enrolment_code(&school, &staff("sam"), "head", at(9, round))
            .await
            .expect("code")
            .code;
        let redeeming = |store: Arc<PgStore>, code: String| {
            tokio::spawn(async move { store.redeem_enrolment_code(&code, at(9, round + 1)).await })
        };
        let (one, two) = (
            redeeming(a.clone(), code.clone()),
            redeeming(b.clone(), code),
        );
        let results = [one.await.expect("office A"), two.await.expect("office B")];
        let enrolled: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(enrolled.len(), 1, "round {round}: {results:?}");
        assert!(
            results.iter().any(|r| matches!(r, Err(RedeemError::Used))),
            "round {round}: {results:?}"
        );

        // Eight days on, both offices see the phone's first use of its fresh credential at once.
        let phone = enrolled[0].device.clone();
        let later = at(10, 0) + TimeDelta::days(8);
        let offered = a
            .offer_renewal(&phone, later)
            .await
            .expect("offer")
            .expect("due");
        let checking = |store: Arc<PgStore>, token: String| {
            tokio::spawn(async move { store.check_token(&token, later).await.expect("check") })
        };
        let (one, two) = (
            checking(a.clone(), offered.token.clone()),
            checking(b.clone(), offered.token.clone()),
        );
        for check in [one.await.expect("office A"), two.await.expect("office B")] {
            assert!(
                matches!(check, TokenCheck::Accepted(_)),
                "round {round}: {check:?}"
            );
        }
        let renewals = a
            .device_log(&school, 100)
            .await
            .expect("log")
            .iter()
            .filter(|entry| entry.device.as_ref() == Some(&phone.id))
            .filter(|entry| entry.action == DeviceAction::Renewed)
            .count();
        assert_eq!(renewals, 1, "round {round}: one renewal between them");
    }
    let phones = b.school_devices(&school).await.expect("devices");
    assert_eq!(phones.len(), 10, "one phone a code");
}
