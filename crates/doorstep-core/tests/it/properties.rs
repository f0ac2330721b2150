//! Property tests of the lifecycle over random command sequences for a two-person visit: `decide` never panics
//! and is pure, refusals change nothing, accepted events only ever move the visit forward, and replaying the
//! accepted events in any order rebuilds exactly the state that was built step by step.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use doorstep_core::event::EventEnvelope;
use doorstep_core::ids::StaffId;
use doorstep_core::lifecycle::{
    apply_fact, decide, replay, AlarmOutcome, CancelReason, Command, DuressVia, Fact,
    LifecycleError, Phase, VisitState, WriteUp,
};
use proptest::prelude::*;
use proptest::sample::select;

use crate::support::policy;
use crate::support::{at_min, envelope, staff, t0};

const MAX_STEPS: usize = 60;
/// Random steps plus the longest happy-path prefix.
const MAX_EVENTS: usize = MAX_STEPS + 8;
/// On the visit.
const ON_VISIT: [&str; 2] = ["a", "b"];

fn assigned() -> Vec<StaffId> {
    ON_VISIT.iter().map(|s| staff(s)).collect()
}

/// Mostly the two on the visit, sometimes `x`, who is not.
fn any_staff() -> impl Strategy<Value = StaffId> {
    prop_oneof![4 => Just("a"), 4 => Just("b"), 1 => Just("x")].prop_map(staff)
}

fn any_time() -> impl Strategy<Value = DateTime<Utc>> {
    (0i64..300).prop_map(at_min)
}

fn any_text() -> impl Strategy<Value = String> {
    select(vec!["", "  ", "Family not in", "All well"]).prop_map(str::to_owned)
}

fn any_write_up() -> impl Strategy<Value = WriteUp> {
    (
        any_text(),
        any_text(),
        any_text(),
        any::<bool>(),
        proptest::option::of(any_text()),
    )
        .prop_map(
            |(seen, discussed, agreements, safeguarding_concern, incident)| WriteUp {
                seen,
                discussed,
                agreements,
                safeguarding_concern,
                incident,
            },
        )
}

fn any_command() -> impl Strategy<Value = Command> {
    let via = select(vec![DuressVia::CodePhraseButton, DuressVia::DuressPin]);
    prop_oneof![
        10 => (prop_oneof![3 => any_staff(), 1 => Just(staff("head"))], any::<bool>())
            .prop_map(|(by, lone_visit_approved)| Command::Authorise { by, lone_visit_approved }),
        // Mostly a sensible itinerary; sometimes one that ends before it begins.
        20 => (any_staff(), any_time(), -30i64..240).prop_map(|(staff, expected_arrival, length)| {
            let expected_end = expected_arrival + TimeDelta::minutes(length);
            Command::Depart { staff, expected_arrival, expected_end }
        }),
        20 => any_staff().prop_map(|staff| Command::ArriveOutside { staff }),
        8 => (any_staff(), proptest::collection::vec(any_staff(), 0..4))
            .prop_map(|(by, staff)| Command::ArriveTogether { by, staff }),
        15 => any_staff().prop_map(|by| Command::StartVisit { by }),
        15 => any_staff().prop_map(|staff| Command::CheckIn { staff }),
        5 => (any_staff(), any_time()).prop_map(|(staff, due_at)| Command::MissCheckIn { staff, due_at }),
        6 => (any_staff(), via).prop_map(|(staff, via)| Command::RaiseDuress { staff, via }),
        8 => (any_staff(), any_text()).prop_map(|(staff, note)| Command::StandDownDuress { staff, note }),
        15 => any_staff().prop_map(|staff| Command::Leave { staff }),
        1 => (any_staff(), select(CancelReason::ALL.to_vec()), any_text())
            .prop_map(|(staff, reason, note)| Command::Cancel { staff, reason, note }),
        8 => (any_staff(), any_write_up()).prop_map(|(staff, write_up)| Command::WriteUp { staff, write_up }),
        4 => (any_staff(), any_time()).prop_map(|(staff, expected_arrival)| Command::RunningLate { staff, expected_arrival }),
        // The office's decisions, by someone at the office.
        1 => any_text().prop_map(|reason| Command::Decline { by: staff("head"), reason }),
        1 => any_text().prop_map(|reason| Command::WithdrawAuthorisation { by: staff("head"), reason }),
        2 => any_text().prop_map(|reason| Command::CallOff { by: staff("head"), reason }),
        1 => any_time().prop_map(|agreed_time| Command::Reschedule { by: staff("head"), agreed_time }),
        2 => (0u32..4).prop_map(|version| Command::UpdateBriefing { by: staff("head"), version }),
        3 => (select(AlarmOutcome::ALL.to_vec()), any_text())
            .prop_map(|(outcome, note)| Command::CloseAlerts { by: staff("head"), outcome, note }),
    ]
}

/// The start of an ordinary visit; a random-length prefix of it lets the random commands that follow reach
/// the later phases (inside, checked in, left, written up) often.
fn happy_path() -> Vec<Command> {
    vec![
        Command::Authorise {
            by: staff("head"),
            lone_visit_approved: false,
        },
        Command::Depart {
            staff: staff("a"),
            expected_arrival: at_min(30),
            expected_end: at_min(90),
        },
        Command::Depart {
            staff: staff("b"),
            expected_arrival: at_min(30),
            expected_end: at_min(90),
        },
        Command::ArriveOutside { staff: staff("b") },
        Command::ArriveOutside { staff: staff("a") },
        Command::StartVisit { by: staff("a") },
        Command::CheckIn { staff: staff("b") },
        Command::Leave { staff: staff("a") },
    ]
}

/// A happy-path prefix then random commands, each with the seconds since the one before, drawn from `gap`.
fn any_steps(
    gap: impl Strategy<Value = i64> + Clone,
) -> impl Strategy<Value = Vec<(Command, i64)>> {
    let happy = happy_path();
    (
        0..=happy.len(),
        proptest::collection::vec(gap.clone(), happy.len()),
        proptest::collection::vec((any_command(), gap), 0..MAX_STEPS),
    )
        .prop_map(move |(prefix, gaps, random)| {
            happy[..prefix]
                .iter()
                .cloned()
                .zip(gaps)
                .chain(random)
                .collect()
        })
}

/// The command's actor: the person whose phone records the event.
fn actor(command: &Command) -> &StaffId {
    match command {
        Command::Authorise { by, .. }
        | Command::Decline { by, .. }
        | Command::WithdrawAuthorisation { by, .. }
        | Command::CallOff { by, .. }
        | Command::Reschedule { by, .. }
        | Command::UpdateBriefing { by, .. }
        | Command::CloseAlerts { by, .. }
        | Command::ArriveTogether { by, .. }
        | Command::StartVisit { by } => by,
        Command::Depart { staff, .. }
        | Command::RunningLate { staff, .. }
        | Command::ConfirmBriefing { staff, .. }
        | Command::ArriveOutside { staff }
        | Command::CheckIn { staff }
        | Command::MissCheckIn { staff, .. }
        | Command::RaiseDuress { staff, .. }
        | Command::StandDownDuress { staff, .. }
        | Command::Leave { staff }
        | Command::Cancel { staff, .. }
        | Command::WriteUp { staff, .. } => staff,
    }
}

/// Each person on the visit records on their own phone; anyone else's events come from the office.
fn device_of(staff: &StaffId) -> String {
    if ON_VISIT.contains(&staff.as_str()) {
        format!("phone-{staff}")
    } else {
        "office".to_owned()
    }
}

/// The outcome of running a command sequence through `decide` and `apply`.
struct Run {
    state: VisitState,
    accepted: Vec<EventEnvelope>,
}

/// Runs `steps` (a command and the seconds since the previous one) against a fresh pair visit, checking the
/// per-step properties as it goes. `one_device` records every event on the same phone.
fn run(steps: &[(Command, i64)], one_device: bool) -> Result<Run, TestCaseError> {
    let mut state = VisitState::new(assigned());
    let mut accepted: Vec<EventEnvelope> = Vec::new();
    let mut seqs: BTreeMap<String, u64> = BTreeMap::new();
    let mut now = t0();
    for (command, gap) in steps {
        now += TimeDelta::seconds(*gap);
        let before = state.clone();
        let result = decide(&state, command, &policy(), now);
        // Pure: the same question gets the same answer, and asking it changed nothing.
        prop_assert_eq!(&decide(&state, command, &policy(), now), &result);
        prop_assert_eq!(&state, &before);

        let who = actor(command);
        let on_visit = state.staff.contains_key(who);
        let from_the_office = matches!(
            command,
            Command::Authorise { .. }
                | Command::Decline { .. }
                | Command::WithdrawAuthorisation { .. }
                | Command::CallOff { .. }
                | Command::Reschedule { .. }
                | Command::UpdateBriefing { .. }
                | Command::CloseAlerts { .. }
        );
        if !on_visit && !from_the_office {
            prop_assert_eq!(&result, &Err(LifecycleError::NotOnVisit(who.clone())));
        }
        if on_visit && matches!(command, Command::RaiseDuress { .. }) {
            prop_assert!(result.is_ok(), "duress refused: {:?}", result);
        }

        // A refusal records nothing, so the state stays as it was; an acceptance causes at least one event.
        let events = match result {
            Err(_) => Vec::new(),
            Ok(events) => {
                prop_assert!(!events.is_empty(), "{:?} accepted with no events", command);
                events
            }
        };
        for event in events {
            prop_assert_eq!(event.is_office_only(), from_the_office);
            for named in event.staff_named() {
                prop_assert!(
                    state.staff.contains_key(named),
                    "{:?} names {} who is not on the visit",
                    event,
                    named
                );
            }
            let device = if one_device {
                "phone-a".to_owned()
            } else {
                device_of(event.actor())
            };
            let seq = seqs.entry(device.clone()).or_insert(0);
            *seq += 1;
            let recorded = envelope(&device, *seq, now, event);
            let previous = state.clone();
            state = apply_fact(
                state,
                Fact {
                    event: &recorded.event,
                    at: now,
                    clock_shift: TimeDelta::zero(),
                    id: Some(recorded.id),
                },
            );
            for (id, progress) in &state.staff {
                prop_assert!(
                    *progress >= previous.staff[id],
                    "{} went back from {:?} to {:?}",
                    id,
                    previous.staff[id],
                    progress
                );
            }
            accepted.push(recorded);
        }
        prop_assert_eq!(state.phase() == Phase::Duress, state.duress_active());
        // Every prefix of the history already replays to the state reached so far.
        prop_assert_eq!(
            &replay(VisitState::new(assigned()), accepted.iter()),
            &state
        );
    }
    Ok(Run { state, accepted })
}

/// The accepted events in the order `order` gives (a shuffle of `0..MAX_EVENTS`; indices past the end are
/// dropped, which leaves a uniformly random permutation of the events).
fn permuted<'a>(accepted: &'a [EventEnvelope], order: &[usize]) -> Vec<&'a EventEnvelope> {
    assert!(accepted.len() <= order.len(), "MAX_EVENTS is too small");
    order
        .iter()
        .filter(|&&i| i < accepted.len())
        .map(|&i| &accepted[i])
        .collect()
}

fn shuffled_indices() -> impl Strategy<Value = Vec<usize>> {
    Just((0..MAX_EVENTS).collect::<Vec<usize>>()).prop_shuffle()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Commands at strictly increasing times, each person on their own phone.
    #[test]
    fn replay_in_any_order_rebuilds_the_state_built_step_by_step(
        steps in any_steps(1i64..600),
        order in shuffled_indices(),
    ) {
        let Run { state, accepted } = run(&steps, false)?;
        let events = permuted(&accepted, &order);
        prop_assert_eq!(events.len(), accepted.len());
        let rebuilt = replay(VisitState::new(assigned()), events.iter().copied());
        prop_assert_eq!(rebuilt, state);
    }

    /// Commands recorded on one phone, several within the same instant: the sequence number keeps their order.
    #[test]
    fn events_recorded_at_the_same_instant_on_one_phone_keep_their_order(
        steps in any_steps(prop_oneof![3 => Just(0i64), 1 => 1i64..60]),
        order in shuffled_indices(),
    ) {
        let Run { state, accepted } = run(&steps, true)?;
        let rebuilt = replay(VisitState::new(assigned()), permuted(&accepted, &order).into_iter());
        prop_assert_eq!(rebuilt, state);
    }
}
