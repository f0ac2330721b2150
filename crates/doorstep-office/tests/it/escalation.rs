//! The escalation engine with paused time: when each alarm fires per policy preset, contact re-arming the
//! deadline, a restart in the middle, duress, and acknowledgement.

use chrono::TimeDelta;
use doorstep_core::lifecycle::{DuressVia, VisitEvent};
use doorstep_core::policy::Preset;
use doorstep_core::schedule::AlarmLevel;
use doorstep_core::test_support::{staff, visit};
use doorstep_office::alarms::AlarmKind;
use doorstep_office::demo;
use doorstep_office::SqliteStore;

use crate::bench::{minutes_after_agreed, seeded_at, Bench};

#[tokio::test(start_paused = true)]
async fn silence_after_going_in_raises_overdue_then_tells_the_authoriser_then_reminds_per_preset() {
    // (preset, overdue after the agreed start, authoriser told, first reminder): first check-in 10 minutes
    // after the start, 5 minutes' grace, then the authoriser 5 minutes after an unacknowledged alarm.
    let table = [
        (Preset::PrimaryHeadteacher, 15, 20, 25),
        (Preset::AcademySafeguardingLead, 15, 20, 25),
    ];
    for (preset, overdue, told, reminded) in table {
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

        sim.advance_to(minutes_after_agreed(told) - TimeDelta::seconds(1))
            .await;
        assert_eq!(sim.alarms()[0].level, AlarmLevel::Board);
        sim.advance_to(minutes_after_agreed(told) + TimeDelta::milliseconds(1))
            .await;
        let alarm = &sim.alarms()[0];
        assert_eq!(alarm.level, AlarmLevel::Authoriser, "{preset:?}");
        assert!(alarm.escalated_at.unwrap() - minutes_after_agreed(told) < TimeDelta::seconds(1));

        sim.advance_to(minutes_after_agreed(reminded) + TimeDelta::milliseconds(1))
            .await;
        let log = sim.store.alarm_log(&visit("visit-ava")).unwrap();
        let steps: Vec<_> = log.iter().map(|e| e.what.as_str()).collect();
        assert_eq!(
            steps,
            ["raised", "authoriser_told", "authoriser_reminded"],
            "{preset:?}"
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

#[tokio::test(start_paused = true)]
async fn duress_goes_straight_to_the_authoriser_and_an_acknowledgement_stops_the_escalation() {
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
        ["raised", "authoriser_told", "acknowledged"],
        "no reminders after the acknowledgement"
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
    let store = SqliteStore::open(dir.path()).unwrap();
    demo::seed(&store, "http://127.0.0.1:1", seeded_at()).unwrap();
    let zac = demo::seed_visit_under_way(&store, seeded_at()).unwrap();
    let overdue_at = seeded_at() + TimeDelta::minutes(3);

    let (_, events) =
        doorstep_office::escalation::evaluate(&store, &zac, overdue_at - TimeDelta::seconds(1))
            .unwrap();
    assert!(events.is_empty(), "nothing before the deadline plus grace");
    let (_, events) = doorstep_office::escalation::evaluate(&store, &zac, overdue_at).unwrap();
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
