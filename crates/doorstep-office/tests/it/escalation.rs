//! The escalation engine with paused time: when each alarm fires per policy preset, contact re-arming the
//! deadline, a restart in the middle, duress, and acknowledgement.

use chrono::TimeDelta;
use chrono::{DateTime, TimeZone, Utc};
use doorstep_core::event::EventEnvelope;
use doorstep_core::ids::{DeviceSeq, EventId};
use doorstep_core::lifecycle::{DuressVia, VisitEvent};
use doorstep_core::policy::Preset;
use doorstep_core::schedule::AlarmLevel;
use doorstep_core::test_support::{staff, visit};
use doorstep_office::alarms::{Alarm, AlarmKind};
use doorstep_office::demo;
use doorstep_office::{OfficeStore, SqliteStore};

use crate::bench::{agreed, minutes_after_agreed, seeded_at, Bench};

#[tokio::test(start_paused = true)]
async fn silence_after_going_in_raises_overdue_then_climbs_level_by_level_per_preset() {
    // (preset, overdue after the agreed start, authoriser's level, further contacts' level, reminder): first
    // check-in 10 minutes after the start, 5 minutes' grace, the authoriser's level 5 minutes after an
    // unacknowledged alarm, the further contacts 10 minutes after that, then a reminder every 10.
    let table = [
        (Preset::PrimaryHeadteacher, 15, 20, 30, 40),
        (Preset::AcademySafeguardingLead, 15, 20, 30, 40),
    ];
    for (preset, overdue, authoriser, further, reminded) in table {
        let mut sim = Bench::paused(preset).await;
        sim.start_visit().await;

        sim.advance_to(minutes_after_agreed(overdue) - TimeDelta::seconds(1))
            .await;
        assert!(
            sim.alarms().is_empty(),
            "{preset:?}: nothing before deadline plus grace"
        );

        sim.advance_to(minutes_after_agreed(overdue) + TimeDelta::milliseconds(1))
            .await;
        let alarms = sim.alarms();
        assert_eq!(alarms.len(), 1, "{preset:?}");
        let alarm = &alarms[0];
        assert_eq!(
            (alarm.kind, alarm.level, alarm.about.as_str()),
            (AlarmKind::Overdue, AlarmLevel::Board, "check_in")
        );
        assert_eq!(alarm.due_at, minutes_after_agreed(10));
        let lag = alarm.raised_at - minutes_after_agreed(overdue);
        assert!(
            lag >= TimeDelta::zero() && lag < TimeDelta::seconds(1),
            "{preset:?}: raised {lag} after its moment"
        );

        sim.advance_to(minutes_after_agreed(authoriser) - TimeDelta::seconds(1))
            .await;
        assert_eq!(sim.alarms()[0].level, AlarmLevel::Board);
        sim.advance_to(minutes_after_agreed(authoriser) + TimeDelta::milliseconds(1))
            .await;
        let alarm = &sim.alarms()[0];
        assert_eq!(alarm.level, AlarmLevel::Authoriser, "{preset:?}");
        assert!(
            alarm.escalated_at.unwrap() - minutes_after_agreed(authoriser) < TimeDelta::seconds(1)
        );

        sim.advance_to(minutes_after_agreed(further) - TimeDelta::seconds(1))
            .await;
        assert_eq!(sim.alarms()[0].level, AlarmLevel::Authoriser);
        sim.advance_to(minutes_after_agreed(further) + TimeDelta::milliseconds(1))
            .await;
        assert_eq!(sim.alarms()[0].level, AlarmLevel::Further, "{preset:?}");

        sim.advance_to(minutes_after_agreed(reminded) + TimeDelta::milliseconds(1))
            .await;
        let log = sim.store.alarm_log(&visit("visit-ava")).unwrap();
        let steps: Vec<_> = log
            .iter()
            .map(|e| (e.what.as_str(), e.level.map(AlarmLevel::name)))
            .collect();
        // The demo school has no notification targets: each level beyond the board is logged as having
        // nobody to tell, never as told.
        assert_eq!(
            steps,
            [
                ("raised", Some("board")),
                ("reached_level", Some("authoriser")),
                ("nobody_to_tell", Some("authoriser")),
                ("reached_level", Some("further")),
                ("nobody_to_tell", Some("further")),
                ("reminded", Some("further")),
            ],
            "{preset:?}"
        );
        assert!(
            log.iter()
                .all(|e| !e.detail.contains("is told") && !e.detail.contains("was told")),
            "{preset:?}: no step claims anyone was told: {log:?}"
        );
        let authoriser_label = preset.policy().authoriser.label();
        assert_eq!(
            log[2].detail,
            format!(
                "no contact is set up for the {authoriser_label}: nobody outside the board can be told"
            )
        );
        assert_eq!(
            sim.alarms().len(),
            1,
            "one alarm, escalating, never duplicated"
        );
        sim.engine_task.abort();
    }
}

#[tokio::test(start_paused = true)]
async fn a_check_in_re_arms_the_deadline() {
    let mut sim = Bench::paused(Preset::PrimaryHeadteacher).await;
    sim.start_visit().await;
    sim.advance_to(minutes_after_agreed(8)).await;
    sim.send(
        "alex",
        VisitEvent::CheckedIn {
            staff: staff("alex"),
        },
    );

    // The next check-in is an hour after the last one; the visit is expected to end at 45 minutes, so the
    // next deadline is "I've left" at 45 minutes, overdue at 50.
    sim.advance_to(minutes_after_agreed(49)).await;
    assert!(
        sim.alarms().is_empty(),
        "no alarm while every deadline was met"
    );
    sim.advance_to(minutes_after_agreed(50) + TimeDelta::milliseconds(1))
        .await;
    let alarms = sim.alarms();
    assert_eq!(alarms.len(), 1);
    assert_eq!(
        (alarms[0].about.as_str(), alarms[0].due_at),
        ("leaving", minutes_after_agreed(45))
    );

    // Contact resumes: the alarm stops escalating but stays until someone acknowledges it.
    sim.send(
        "sam",
        VisitEvent::Left {
            staff: staff("sam"),
        },
    );
    sim.send(
        "alex",
        VisitEvent::Left {
            staff: staff("alex"),
        },
    );
    sim.advance_to(minutes_after_agreed(60)).await;
    let alarm = &sim.alarms()[0];
    assert!(alarm.contact_resumed_at.is_some());
    assert_eq!(
        alarm.level,
        AlarmLevel::Board,
        "no escalation after contact resumed"
    );
    assert!(alarm.is_open(), "it stays on the board until acknowledged");
}

#[tokio::test(start_paused = true)]
async fn deadlines_survive_a_restart_of_the_office() {
    let mut sim = Bench::paused(Preset::PrimaryHeadteacher).await;
    sim.start_visit().await;
    // The office goes down before the deadline and comes back after it.
    sim.stop_engine();
    sim.advance_to(minutes_after_agreed(17)).await;
    assert!(sim.alarms().is_empty());
    sim.restart_engine();
    sim.advance_to(minutes_after_agreed(17) + TimeDelta::milliseconds(1))
        .await;
    let alarms = sim.alarms();
    assert_eq!(
        alarms.len(),
        1,
        "the missed deadline is raised at once on restart"
    );
    assert!(alarms[0].raised_at - minutes_after_agreed(17) < TimeDelta::seconds(1));

    // Restarted again in the middle of the escalation: it carries on from the stored alarm.
    sim.restart_engine();
    sim.advance_to(minutes_after_agreed(22) + TimeDelta::milliseconds(1))
        .await;
    let alarms = sim.alarms();
    assert_eq!(alarms.len(), 1, "not raised twice");
    assert_eq!(alarms[0].level, AlarmLevel::Authoriser);
    assert!(alarms[0].escalated_at.unwrap() - minutes_after_agreed(22) < TimeDelta::seconds(1));
    sim.engine_task.abort();
}

/// The alert and its alarm are written in one transaction: the alarm exists as soon as the ingest returns,
/// before the engine has looked at anything, and the engine's own look raises no second one.
#[tokio::test(start_paused = true)]
async fn a_duress_alarm_is_raised_by_the_ingest_itself_and_the_engine_does_not_raise_it_again() {
    let mut sim = Bench::paused(Preset::AcademySafeguardingLead).await;
    let mut board = sim.engine.subscribe();
    sim.start_visit().await;
    sim.advance_to(minutes_after_agreed(3)).await;
    while board.try_recv().is_ok() {}
    let now = sim.now();
    // Stored straight through the store, the engine not told: the alarm is there all the same.
    let raised = sim.demo.phone_sends(
        "alex",
        "visit-ava",
        now,
        now,
        VisitEvent::DuressRaised {
            staff: staff("alex"),
            via: DuressVia::CodePhraseButton,
        },
    );
    let alarms = sim.alarms();
    assert_eq!(alarms.len(), 1, "{alarms:?}");
    assert_eq!(
        (alarms[0].kind, alarms[0].level, alarms[0].about.as_str()),
        (AlarmKind::Duress, AlarmLevel::Authoriser, "alex")
    );
    assert_eq!(raised, alarms, "the ingest returns what it raised");

    // Now the engine hears of the visit, as after any sync: it finds the alarm and raises nothing more.
    sim.engine.visit_changed(visit("visit-ava"));
    sim.advance_to(minutes_after_agreed(3) + TimeDelta::milliseconds(1))
        .await;
    assert_eq!(sim.alarms().len(), 1, "not raised twice");
    while let Ok(event) = board.try_recv() {
        assert!(
            !matches!(
                event,
                doorstep_office::escalation::BoardEvent::AlarmRaised { .. }
            ),
            "the engine announced a second raise: {event:?}"
        );
    }
    sim.engine_task.abort();
}

#[tokio::test(start_paused = true)]
async fn duress_goes_straight_to_the_authoriser_level_and_an_acknowledgement_stops_the_escalation()
{
    let mut sim = Bench::paused(Preset::AcademySafeguardingLead).await;
    let mut board = sim.engine.subscribe();
    sim.start_visit().await;
    sim.advance_to(minutes_after_agreed(3)).await;
    sim.send(
        "alex",
        VisitEvent::DuressRaised {
            staff: staff("alex"),
            via: DuressVia::CodePhraseButton,
        },
    );
    sim.advance_to(minutes_after_agreed(3) + TimeDelta::milliseconds(1))
        .await;
    let alarms = sim.alarms();
    assert_eq!(alarms.len(), 1);
    assert_eq!(
        (alarms[0].kind, alarms[0].level),
        (AlarmKind::Duress, AlarmLevel::Authoriser)
    );
    assert_eq!(alarms[0].about, "alex");
    assert!(alarms[0].raised_at - minutes_after_agreed(3) < TimeDelta::seconds(1));
    let mut heard_raise = false;
    while let Ok(event) = board.try_recv() {
        heard_raise |= matches!(event, doorstep_office::escalation::BoardEvent::AlarmRaised { ref alarm } if alarm.kind == AlarmKind::Duress);
    }
    assert!(heard_raise, "the board heard the duress alarm");

    let acknowledged = sim
        .store
        .acknowledge_alarm(alarms[0].id, "Olu Office", sim.now())
        .unwrap();
    sim.engine.acknowledged(acknowledged);
    assert!(
        sim.store
            .acknowledge_alarm(alarms[0].id, "Olu Office", sim.now())
            .is_err(),
        "acknowledged once"
    );
    sim.advance_to(minutes_after_agreed(30)).await;
    let duress_log: Vec<_> = sim
        .store
        .alarm_log(&visit("visit-ava"))
        .unwrap()
        .into_iter()
        .filter(|e| e.alarm == alarms[0].id)
        .map(|e| e.what)
        .collect();
    assert_eq!(
        duress_log,
        ["raised", "nobody_to_tell", "acknowledged"],
        "no escalation after the acknowledgement"
    );
    assert!(
        sim.alarm_of(alarms[0].id).is_open(),
        "acknowledged is being handled, not closed: it stays on the board"
    );
    // The silence goes on being watched: the missed check-in is its own alarm.
    let others: Vec<_> = sim
        .alarms()
        .into_iter()
        .filter(|a| a.kind == AlarmKind::Overdue)
        .collect();
    assert_eq!(others.len(), 1);
    sim.engine_task.abort();
}

#[tokio::test]
async fn the_demo_visit_under_way_goes_overdue_three_minutes_into_the_demo_with_no_phone_running() {
    let dir = tempfile::tempdir().unwrap();
    let store: OfficeStore = SqliteStore::open(dir.path()).unwrap().into();
    demo::seed(&store, "http://127.0.0.1:1", seeded_at()).unwrap();
    let zac = demo::seed_visit_under_way(&store, seeded_at()).unwrap();
    let overdue_at = seeded_at() + TimeDelta::minutes(3);

    let (_, events) =
        doorstep_office::escalation::evaluate(&store, &zac, overdue_at - TimeDelta::seconds(1))
            .await
            .unwrap();
    assert!(events.is_empty(), "nothing before the deadline plus grace");
    let (_, events) = doorstep_office::escalation::evaluate(&store, &zac, overdue_at)
        .await
        .unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    let alarms = store.alarms_for_visit(&zac).unwrap();
    assert_eq!(
        (alarms[0].kind, alarms[0].about.as_str(), alarms[0].due_at),
        (
            AlarmKind::Overdue,
            "check_in",
            seeded_at() - TimeDelta::minutes(2)
        )
    );
}

#[tokio::test]
async fn the_demo_visit_nobody_set_off_for_raises_not_heard_from_two_minutes_into_the_demo() {
    let dir = tempfile::tempdir().unwrap();
    let store: OfficeStore = SqliteStore::open(dir.path()).unwrap().into();
    demo::seed(&store, "http://127.0.0.1:1", seeded_at()).unwrap();
    let isla = demo::seed_visit_nobody_set_off_for(&store, seeded_at()).unwrap();
    let due = seeded_at() - TimeDelta::minutes(8);
    let at = seeded_at() + TimeDelta::minutes(2);
    let (_, events) =
        doorstep_office::escalation::evaluate(&store, &isla, at - TimeDelta::seconds(1))
            .await
            .unwrap();
    assert!(
        events.is_empty(),
        "nothing before the agreed time plus the first check-in"
    );
    let (_, events) = doorstep_office::escalation::evaluate(&store, &isla, at)
        .await
        .unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(
        overdue_abouts(&store.alarms_for_visit(&isla).unwrap()),
        [
            ("set_off:dee".to_owned(), due),
            ("set_off:ola".to_owned(), due)
        ]
    );
}

// ---------------------------------------------------------------------------------------------------------
// Watching every authorised visit from its agreed time (nobody needs to have opened the app).

fn overdue_abouts(alarms: &[Alarm]) -> Vec<(String, DateTime<Utc>)> {
    alarms
        .iter()
        .filter(|a| a.kind == AlarmKind::Overdue)
        .map(|a| (a.about.clone(), a.due_at))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn an_authorised_visit_nobody_set_off_for_raises_not_heard_from_at_the_agreed_time_plus_the_first_check_in(
) {
    let sim = Bench::paused(Preset::PrimaryHeadteacher).await;
    sim.advance_to(minutes_after_agreed(10) - TimeDelta::seconds(1))
        .await;
    assert!(sim.alarms().is_empty(), "nothing before the first check-in");
    sim.advance_to(minutes_after_agreed(10) + TimeDelta::milliseconds(1))
        .await;
    assert_eq!(
        overdue_abouts(&sim.alarms()),
        [
            ("set_off:alex".to_owned(), agreed()),
            ("set_off:sam".to_owned(), agreed()),
        ],
        "not heard from either of them: due at the agreed time"
    );
    let alarm = &sim.alarms()[0];
    let lag = alarm.raised_at - minutes_after_agreed(10);
    assert!(
        lag >= TimeDelta::zero() && lag < TimeDelta::seconds(1),
        "{lag}"
    );
    assert_eq!(
        alarm.level,
        AlarmLevel::Board,
        "escalating like any overdue"
    );
    sim.advance_to(minutes_after_agreed(15) + TimeDelta::milliseconds(1))
        .await;
    assert_eq!(sim.alarms()[0].level, AlarmLevel::Authoriser);
    sim.engine_task.abort();
}

#[tokio::test(start_paused = true)]
async fn a_partner_who_never_set_off_is_not_heard_from_while_the_other_is_watched() {
    let mut sim = Bench::paused(Preset::AcademySafeguardingLead).await;
    sim.advance_to(agreed() - TimeDelta::minutes(10)).await;
    sim.send(
        "sam",
        VisitEvent::Departed {
            staff: staff("sam"),
            expected_arrival: agreed(),
            expected_end: minutes_after_agreed(45),
        },
    );
    sim.send(
        "sam",
        VisitEvent::ArrivedOutside {
            staff: staff("sam"),
        },
    );
    sim.advance_to(minutes_after_agreed(10) + TimeDelta::milliseconds(1))
        .await;
    assert_eq!(
        overdue_abouts(&sim.alarms()),
        [("set_off:alex".to_owned(), agreed())]
    );
    sim.engine_task.abort();
}

#[tokio::test(start_paused = true)]
async fn running_late_moves_the_deadline_and_not_going_ahead_ends_it() {
    let mut sim = Bench::paused(Preset::PrimaryHeadteacher).await;
    sim.advance_to(agreed() - TimeDelta::minutes(5)).await;
    for who in ["sam", "alex"] {
        sim.send(
            who,
            VisitEvent::RunningLate {
                staff: staff(who),
                expected_arrival: minutes_after_agreed(30),
            },
        );
    }
    sim.advance_to(minutes_after_agreed(39)).await;
    assert!(sim.alarms().is_empty(), "the new time moved the deadline");
    sim.send(
        "sam",
        VisitEvent::Cancelled {
            staff: staff("sam"),
            reason: doorstep_core::lifecycle::CancelReason::FamilyCancelled,
            note: "The family rang to cancel".into(),
        },
    );
    sim.advance_to(minutes_after_agreed(90)).await;
    assert!(
        sim.alarms().is_empty(),
        "not going ahead, before anyone set off: nothing expected"
    );
    sim.engine_task.abort();
}

#[tokio::test(start_paused = true)]
async fn acknowledging_an_overdue_alarm_keeps_the_visit_watched_and_it_raises_again_at_the_next_missed_deadline(
) {
    let mut sim = Bench::paused(Preset::PrimaryHeadteacher).await;
    sim.start_visit().await;
    sim.advance_to(minutes_after_agreed(15) + TimeDelta::milliseconds(1))
        .await;
    let first = sim.alarms()[0].clone();
    sim.store
        .acknowledge_alarm(first.id, "Olu Office", sim.now())
        .unwrap();
    sim.engine
        .acknowledged(sim.store.alarm(first.id).unwrap().unwrap());
    // The staff stay silent: the next check-in would have been an hour after the first.
    sim.advance_to(minutes_after_agreed(75) - TimeDelta::seconds(1))
        .await;
    assert_eq!(sim.alarms().len(), 1);
    sim.advance_to(minutes_after_agreed(75) + TimeDelta::milliseconds(1))
        .await;
    assert_eq!(
        overdue_abouts(&sim.alarms()),
        [
            ("check_in".to_owned(), minutes_after_agreed(10)),
            ("check_in".to_owned(), minutes_after_agreed(70)),
        ],
        "still silent: a new alarm at the next missed check-in"
    );
    sim.engine_task.abort();
}

#[tokio::test(start_paused = true)]
async fn a_partners_cancel_after_the_colleague_went_in_leaves_the_colleagues_deadlines_held() {
    let mut sim = Bench::paused(Preset::PrimaryHeadteacher).await;
    sim.advance_to(agreed() - TimeDelta::minutes(10)).await;
    sim.send(
        "sam",
        VisitEvent::Departed {
            staff: staff("sam"),
            expected_arrival: agreed(),
            expected_end: minutes_after_agreed(45),
        },
    );
    sim.send(
        "sam",
        VisitEvent::ArrivedOutside {
            staff: staff("sam"),
        },
    );
    sim.send(
        "sam",
        VisitEvent::VisitStarted {
            by: staff("sam"),
            staff: vec![staff("sam")],
        },
    );
    // Alex's phone, out of signal, says the visit is cancelled a minute later.
    sim.advance_to(agreed() - TimeDelta::minutes(9)).await;
    sim.send(
        "alex",
        VisitEvent::Cancelled {
            staff: staff("alex"),
            reason: doorstep_core::lifecycle::CancelReason::NoAnswerAfterWait,
            note: String::new(),
        },
    );
    let (_, state) = sim.store.visit(&visit("visit-ava")).unwrap().unwrap();
    assert_eq!(state.cancelled, None);
    assert_eq!(
        state.not_honoured()[0].reason,
        "sam is in the visit: the cancel ended only alex's own part"
    );
    sim.advance_to(minutes_after_agreed(15) + TimeDelta::milliseconds(1))
        .await;
    assert_eq!(
        overdue_abouts(&sim.alarms()),
        [("check_in".to_owned(), minutes_after_agreed(10))],
        "sam, inside and silent, is still watched"
    );
    sim.engine_task.abort();
}

#[tokio::test(start_paused = true)]
async fn an_event_stamped_in_2099_cannot_silence_a_deadline() {
    let mut sim = Bench::paused(Preset::PrimaryHeadteacher).await;
    sim.start_visit().await;
    sim.advance_to(minutes_after_agreed(5)).await;
    // A check-in from a phone whose clock says 2099 counts as when the office heard it, not in 2099.
    let device = sim.sam.clone();
    let envelope = EventEnvelope {
        id: EventId::new_v7(),
        device: device.id.clone(),
        seq: DeviceSeq::new(99).unwrap(),
        visit: visit("visit-ava"),
        recorded_at: Utc.with_ymd_and_hms(2099, 1, 1, 0, 0, 0).unwrap(),
        event: VisitEvent::CheckedIn {
            staff: staff("sam"),
        },
    };
    sim.store
        .ingest(&device, &[envelope], sim.now(), sim.now())
        .unwrap();
    sim.engine.visit_changed(visit("visit-ava"));
    let (_, state) = sim.store.visit(&visit("visit-ava")).unwrap().unwrap();
    assert_eq!(state.last_contact, Some(minutes_after_agreed(5)));
    assert_eq!(state.last_check_in, Some(minutes_after_agreed(5)));
    // The visit is expected to end at 45 minutes: "I've left" is due then, whatever the phone's clock said.
    sim.advance_to(minutes_after_agreed(50) + TimeDelta::milliseconds(1))
        .await;
    assert_eq!(
        overdue_abouts(&sim.alarms()),
        [("leaving".to_owned(), minutes_after_agreed(45))]
    );
    sim.engine_task.abort();
}
