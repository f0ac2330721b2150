//! Given/when/then tests of the visit lifecycle: which commands are refused and why, which events they cause,
//! the phases a visit passes through and how `last_contact` follows the latest word from the staff.

use chrono::{DateTime, Utc};
use doorstep_core::ids::StaffId;
use doorstep_core::lifecycle::{
    apply, decide, AlarmOutcome, AlertRef, BriefingCheck, CancelReason, Command, Duress, DuressVia,
    LifecycleError, Phase, StaffProgress, VisitEvent, VisitState, WriteUp,
};
use doorstep_core::policy::Policy;

use crate::support::policy;
use crate::support::{at_min, staff};

// ---------------------------------------------------------------------------------------------------------
// The given/when/then harness. Given events are applied one minute apart from `at_min(1)`; the command is
// decided one minute after the last of them.

struct Given {
    state: VisitState,
    next_minute: i64,
}

struct When {
    before: VisitState,
    command: Command,
    now: DateTime<Utc>,
    result: Result<Vec<VisitEvent>, LifecycleError>,
}

/// A visit by the pair `a` and `b` that has had `events`.
fn given(events: impl IntoIterator<Item = VisitEvent>) -> Given {
    given_staff(&["a", "b"], events)
}

/// A visit by the listed staff that has had `events`.
fn given_staff(assigned: &[&str], events: impl IntoIterator<Item = VisitEvent>) -> Given {
    let mut g = Given {
        state: VisitState::new(assigned.iter().map(|s| staff(s))),
        next_minute: 1,
    };
    for event in events {
        g.state = apply(g.state, &event, at_min(g.next_minute));
        g.next_minute += 1;
    }
    g
}

impl Given {
    fn when(self, command: Command) -> When {
        self.when_under(&policy(), command)
    }

    /// The command decided under another policy than the academy preset.
    fn when_under(self, policy: &Policy, command: Command) -> When {
        let now = at_min(self.next_minute);
        let result = decide(&self.state, &command, policy, now);
        When {
            before: self.state,
            command,
            now,
            result,
        }
    }
}

impl When {
    /// Asserts the command was accepted with exactly these events; returns the state after applying them.
    #[track_caller]
    fn then_events(self, expected: impl Into<Vec<VisitEvent>>) -> VisitState {
        let expected = expected.into();
        match self.result {
            Ok(events) => {
                assert_eq!(events, expected, "events for {:?}", self.command);
                events
                    .iter()
                    .fold(self.before, |state, event| apply(state, event, self.now))
            }
            Err(error) => panic!(
                "{:?} was refused with {error:?}; expected {expected:?}",
                self.command
            ),
        }
    }

    /// Asserts the command was refused with exactly this error.
    #[track_caller]
    fn then_error(self, expected: LifecycleError) {
        match self.result {
            Ok(events) => panic!(
                "{:?} was accepted with {events:?}; expected {expected:?}",
                self.command
            ),
            Err(error) => assert_eq!(error, expected, "error for {:?}", self.command),
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Event and command shorthands.

fn a() -> StaffId {
    staff("a")
}
fn b() -> StaffId {
    staff("b")
}
fn head() -> StaffId {
    staff("head")
}

fn authorised() -> VisitEvent {
    VisitEvent::Authorised {
        by: head(),
        lone_visit_approved: false,
    }
}
fn departed(who: StaffId) -> VisitEvent {
    VisitEvent::Departed {
        staff: who,
        expected_arrival: at_min(30),
        expected_end: at_min(90),
    }
}
fn outside(who: StaffId) -> VisitEvent {
    VisitEvent::ArrivedOutside { staff: who }
}
fn started() -> VisitEvent {
    VisitEvent::VisitStarted {
        by: a(),
        staff: vec![a(), b()],
    }
}
fn checked_in(who: StaffId) -> VisitEvent {
    VisitEvent::CheckedIn { staff: who }
}
fn duress(who: StaffId) -> VisitEvent {
    VisitEvent::DuressRaised {
        staff: who,
        via: DuressVia::CodePhraseButton,
    }
}
fn left(who: StaffId) -> VisitEvent {
    VisitEvent::Left { staff: who }
}
fn cancelled(reason: CancelReason) -> VisitEvent {
    VisitEvent::Cancelled {
        staff: a(),
        reason,
        note: "No answer at the door".into(),
    }
}
fn write_up() -> WriteUp {
    WriteUp {
        seen: "Parent and pupil".into(),
        discussed: "Attendance".into(),
        agreements: "Back on Monday".into(),
        safeguarding_concern: false,
        incident: None,
    }
}

/// Authorised, both departed, both outside.
fn both_outside() -> Vec<VisitEvent> {
    vec![
        authorised(),
        departed(a()),
        departed(b()),
        outside(a()),
        outside(b()),
    ]
}

/// Both outside, then inside.
fn in_visit() -> Vec<VisitEvent> {
    let mut events = both_outside();
    events.push(started());
    events
}

/// In the visit, then both left.
fn both_left() -> Vec<VisitEvent> {
    let mut events = in_visit();
    events.extend([left(a()), left(b())]);
    events
}

/// The alert `a` raised at minute `minute`.
fn alert_by_a_at(minute: i64) -> AlertRef {
    AlertRef {
        raised_by: a(),
        raised_at: at_min(minute),
    }
}

fn depart(who: StaffId) -> Command {
    Command::Depart {
        staff: who,
        expected_arrival: at_min(30),
        expected_end: at_min(90),
    }
}

fn cancel(reason: CancelReason, note: &str) -> Command {
    Command::Cancel {
        staff: a(),
        reason,
        note: note.into(),
    }
}

// ---------------------------------------------------------------------------------------------------------
// Authorisation.

#[test]
fn departing_before_authorisation_is_refused() {
    given([])
        .when(depart(a()))
        .then_error(LifecycleError::NotAuthorised);
}

#[test]
fn departing_after_authorisation_is_recorded() {
    given([authorised()])
        .when(depart(a()))
        .then_events([departed(a())]);
}

// ---------------------------------------------------------------------------------------------------------
// Storage: the office keeps each visit's state as JSON.

#[test]
fn a_state_with_a_stood_down_alert_round_trips_through_json() {
    let state = given([authorised()]).state;
    let state = apply(state, &duress(a()), at_min(5));
    let state = apply(
        state,
        &VisitEvent::DuressStoodDown {
            staff: a(),
            note: "by mistake".into(),
            alerts: vec![alert_by_a_at(5)],
        },
        at_min(6),
    );
    assert!(!state.stood_down.is_empty());
    let json = serde_json::to_string(&state).expect("JSON keys must be strings");
    let back: VisitState = serde_json::from_str(&json).unwrap();
    assert_eq!(back, state);

    // States stored before the list form hold an empty object.
    let plain = given([authorised()]).state;
    let old = serde_json::to_string(&plain)
        .unwrap()
        .replace("\"stood_down\":[]", "\"stood_down\":{}");
    assert!(old.contains("\"stood_down\":{}"), "{old}");
    assert_eq!(serde_json::from_str::<VisitState>(&old).unwrap(), plain);
}

// ---------------------------------------------------------------------------------------------------------
// The briefing checklist, before leaving.

#[test]
fn the_briefing_checklist_is_recorded_only_when_every_item_is_ticked() {
    given([authorised()])
        .when(Command::ConfirmBriefing {
            staff: a(),
            ticked: BriefingCheck::ALL[..4].to_vec(),
        })
        .then_error(LifecycleError::BriefingIncomplete);
    let state = given([authorised()])
        .when(Command::ConfirmBriefing {
            staff: a(),
            ticked: BriefingCheck::ALL.to_vec(),
        })
        .then_events([VisitEvent::BriefingRead {
            staff: a(),
            ticked: BriefingCheck::ALL.to_vec(),
            version: 0,
        }]);
    assert!(state.briefing_read.contains_key(&a()));
    assert!(!state.briefing_read.contains_key(&b()));
    assert_eq!(state.phase(), Phase::Authorised, "reading is not leaving");
}

#[test]
fn the_briefing_checklist_comes_before_leaving() {
    given([authorised(), departed(a())])
        .when(Command::ConfirmBriefing {
            staff: a(),
            ticked: BriefingCheck::ALL.to_vec(),
        })
        .then_error(LifecycleError::AlreadyDeparted(a()));
}

#[test]
fn a_pair_visit_is_authorised_without_lone_approval() {
    given([])
        .when(Command::Authorise {
            by: head(),
            lone_visit_approved: false,
        })
        .then_events([authorised()]);
}

#[test]
fn a_lone_visit_needs_explicit_approval() {
    given_staff(&["a"], [])
        .when(Command::Authorise {
            by: head(),
            lone_visit_approved: false,
        })
        .then_error(LifecycleError::LoneVisitNeedsApproval);
}

#[test]
fn a_lone_visit_with_explicit_approval_is_authorised_and_remembered() {
    let state = given_staff(&["a"], [])
        .when(Command::Authorise {
            by: head(),
            lone_visit_approved: true,
        })
        .then_events([VisitEvent::Authorised {
            by: head(),
            lone_visit_approved: true,
        }]);
    let authorisation = state.authorised.expect("authorised");
    assert!(authorisation.lone_visit_approved);
    assert_eq!(authorisation.by, head());
    assert_eq!(authorisation.at, at_min(1));
}

#[test]
fn authorising_twice_is_refused() {
    given([authorised()])
        .when(Command::Authorise {
            by: head(),
            lone_visit_approved: false,
        })
        .then_error(LifecycleError::AlreadyAuthorised);
}

#[test]
fn departing_twice_or_with_the_end_before_arrival_is_refused() {
    given([authorised(), departed(a())])
        .when(depart(a()))
        .then_error(LifecycleError::AlreadyDeparted(a()));
    given([authorised()])
        .when(Command::Depart {
            staff: a(),
            expected_arrival: at_min(30),
            expected_end: at_min(30),
        })
        .then_error(LifecycleError::EndBeforeArrival);
}

#[test]
fn someone_not_on_the_visit_cannot_act_on_it() {
    let stranger = staff("x");
    given([authorised()])
        .when(depart(stranger.clone()))
        .then_error(LifecycleError::NotOnVisit(stranger.clone()));
    given(in_visit())
        .when(Command::RaiseDuress {
            staff: stranger.clone(),
            via: DuressVia::DuressPin,
        })
        .then_error(LifecycleError::NotOnVisit(stranger.clone()));
    given([authorised(), departed(a()), departed(b())])
        .when(Command::ArriveTogether {
            by: a(),
            staff: vec![a(), stranger.clone()],
        })
        .then_error(LifecycleError::NotOnVisit(stranger));
}

// ---------------------------------------------------------------------------------------------------------
// Arriving as a pair.

#[test]
fn arriving_before_departing_is_refused() {
    given([authorised()])
        .when(Command::ArriveOutside { staff: a() })
        .then_error(LifecycleError::NotDeparted(a()));
}

#[test]
fn the_first_of_a_pair_to_arrive_cannot_go_in_alone() {
    given([authorised(), departed(a()), departed(b()), outside(a())])
        .when(Command::StartVisit { by: a() })
        .then_error(LifecycleError::PartnerNotArrived(b()));
}

#[test]
fn a_partner_who_has_not_even_left_blocks_the_start() {
    given([authorised(), departed(a()), outside(a())])
        .when(Command::StartVisit { by: a() })
        .then_error(LifecycleError::PartnerNotArrived(b()));
}

#[test]
fn starting_needs_the_starter_outside() {
    given([authorised(), departed(a()), departed(b()), outside(b())])
        .when(Command::StartVisit { by: a() })
        .then_error(LifecycleError::NotDeparted(a()));
}

#[test]
fn once_both_are_outside_the_visit_starts_with_both_inside() {
    let state = given(both_outside())
        .when(Command::StartVisit { by: a() })
        .then_events([started()]);
    assert_eq!(state.started_at, Some(at_min(6)));
    assert_eq!(
        state.progress(&a()),
        Some(StaffProgress::Inside { at: at_min(6) })
    );
    assert_eq!(
        state.progress(&b()),
        Some(StaffProgress::Inside { at: at_min(6) })
    );
}

#[test]
fn arriving_together_puts_both_outside_so_the_visit_can_start() {
    let state = given([authorised(), departed(a()), departed(b())])
        .when(Command::ArriveTogether {
            by: a(),
            staff: vec![b()],
        })
        .then_events([VisitEvent::ArrivedTogether {
            by: a(),
            staff: vec![a(), b()],
        }]);
    assert_eq!(
        state.progress(&a()),
        Some(StaffProgress::Outside { at: at_min(4) })
    );
    assert_eq!(
        state.progress(&b()),
        Some(StaffProgress::Outside { at: at_min(4) })
    );
    assert_eq!(state.phase(), Phase::Outside);
    let after = decide(
        &state,
        &Command::StartVisit { by: b() },
        &policy(),
        at_min(5),
    );
    assert!(after.is_ok(), "{after:?}");
}

#[test]
fn a_partner_already_at_the_door_can_confirm_both_arrived_together() {
    let state = given([authorised(), departed(a()), departed(b()), outside(a())])
        .when(Command::ArriveTogether {
            by: a(),
            staff: vec![b()],
        })
        .then_events([VisitEvent::ArrivedTogether {
            by: a(),
            staff: vec![a(), b()],
        }]);
    assert!(state.progress(&b()).unwrap().is_outside());
    assert!(decide(
        &state,
        &Command::StartVisit { by: a() },
        &policy(),
        at_min(6)
    )
    .is_ok());
}

#[test]
fn arriving_together_lists_the_sender_once_and_first() {
    given([authorised(), departed(a()), departed(b())])
        .when(Command::ArriveTogether {
            by: b(),
            staff: vec![a(), b()],
        })
        .then_events([VisitEvent::ArrivedTogether {
            by: b(),
            staff: vec![b(), a()],
        }]);
}

#[test]
fn arriving_together_is_refused_once_someone_is_inside() {
    given(in_visit())
        .when(Command::ArriveTogether {
            by: a(),
            staff: vec![b()],
        })
        .then_error(LifecycleError::AlreadyArrived(a()));
}

#[test]
fn arriving_twice_is_refused() {
    given([authorised(), departed(a()), outside(a())])
        .when(Command::ArriveOutside { staff: a() })
        .then_error(LifecycleError::AlreadyArrived(a()));
}

#[test]
fn starting_twice_is_refused() {
    given(in_visit())
        .when(Command::StartVisit { by: b() })
        .then_error(LifecycleError::AlreadyStarted);
}

// ---------------------------------------------------------------------------------------------------------
// During the visit.

#[test]
fn checking_in_from_inside_is_recorded() {
    let state = given(in_visit())
        .when(Command::CheckIn { staff: b() })
        .then_events([checked_in(b())]);
    assert_eq!(state.last_check_in, Some(at_min(7)));
}

#[test]
fn checking_in_before_going_in_is_refused() {
    given(both_outside())
        .when(Command::CheckIn { staff: a() })
        .then_error(LifecycleError::NotInside(a()));
}

#[test]
fn checking_in_on_a_cancelled_visit_is_refused() {
    given([authorised(), cancelled(CancelReason::NoAnswerAfterWait)])
        .when(Command::CheckIn { staff: a() })
        .then_error(LifecycleError::NotInside(a()));
}

#[test]
fn checking_in_after_leaving_is_refused() {
    given([in_visit(), vec![left(a())]].concat())
        .when(Command::CheckIn { staff: a() })
        .then_error(LifecycleError::AlreadyLeft(a()));
}

#[test]
fn a_missed_check_in_is_counted_only_once_the_visit_has_started() {
    given(both_outside())
        .when(Command::MissCheckIn {
            staff: a(),
            due_at: at_min(40),
        })
        .then_error(LifecycleError::NotStarted);
    let state = given(in_visit())
        .when(Command::MissCheckIn {
            staff: a(),
            due_at: at_min(40),
        })
        .then_events([VisitEvent::CheckInMissed {
            staff: a(),
            due_at: at_min(40),
        }]);
    assert_eq!(state.missed_check_ins, 1);
}

// ---------------------------------------------------------------------------------------------------------
// Leaving.

#[test]
fn leaving_before_arriving_is_refused() {
    given([authorised(), departed(a())])
        .when(Command::Leave { staff: a() })
        .then_error(LifecycleError::NotInside(a()));
    given(both_outside())
        .when(Command::Leave { staff: a() })
        .then_error(LifecycleError::NotInside(a()));
}

#[test]
fn leaving_twice_is_refused() {
    given([in_visit(), vec![left(a())]].concat())
        .when(Command::Leave { staff: a() })
        .then_error(LifecycleError::AlreadyLeft(a()));
}

#[test]
fn leaving_a_cancelled_visit_is_refused() {
    given([authorised(), departed(a()), cancelled(CancelReason::Other)])
        .when(Command::Leave { staff: a() })
        .then_error(LifecycleError::NotInside(a()));
}

#[test]
fn someone_inside_can_always_say_they_have_left_whatever_a_partner_recorded_offline() {
    // b's phone, offline, cancelled after a had gone in alone: a must still be able to leave.
    let g = given([
        authorised(),
        departed(a()),
        outside(a()),
        VisitEvent::VisitStarted {
            by: a(),
            staff: vec![a()],
        },
        VisitEvent::Cancelled {
            staff: b(),
            reason: CancelReason::FeltUnsafe,
            note: "Did not like the look of it".into(),
        },
    ]);
    assert_eq!(g.state.phase(), Phase::InVisit);
    g.when(Command::Leave { staff: a() })
        .then_events([left(a())]);
}

#[test]
fn the_visit_is_over_only_when_everyone_has_left() {
    let state = given(in_visit())
        .when(Command::Leave { staff: a() })
        .then_events([left(a())]);
    assert_eq!(state.phase(), Phase::InVisit);
    let state = given([in_visit(), vec![left(a())]].concat())
        .when(Command::Leave { staff: b() })
        .then_events([left(b())]);
    assert_eq!(state.phase(), Phase::Left);
    given(both_left())
        .when(Command::CheckIn { staff: a() })
        .then_error(LifecycleError::AlreadyLeft(a()));
}

// ---------------------------------------------------------------------------------------------------------
// Cancelling.

#[test]
fn cancelling_because_staff_felt_unsafe_needs_a_note() {
    for blank in ["", "   \n"] {
        given([authorised(), departed(a())])
            .when(cancel(CancelReason::FeltUnsafe, blank))
            .then_error(LifecycleError::ReasonNeedsNote);
    }
    given([authorised(), departed(a())])
        .when(cancel(CancelReason::Other, ""))
        .then_error(LifecycleError::ReasonNeedsNote);
}

#[test]
fn cancelling_with_a_note_is_recorded_with_its_reason() {
    let state = given([authorised(), departed(a())])
        .when(cancel(CancelReason::FeltUnsafe, "Raised voices inside"))
        .then_events([VisitEvent::Cancelled {
            staff: a(),
            reason: CancelReason::FeltUnsafe,
            note: "Raised voices inside".into(),
        }]);
    assert_eq!(state.cancelled, Some((CancelReason::FeltUnsafe, at_min(3))));
    assert_eq!(
        state.phase(),
        Phase::Cancelled {
            reason: CancelReason::FeltUnsafe
        }
    );
}

#[test]
fn reasons_that_speak_for_themselves_need_no_note() {
    for reason in [
        CancelReason::NoAnswerAfterWait,
        CancelReason::AnimalsNotSecured,
        CancelReason::NoAppropriateAdult,
    ] {
        given([authorised(), departed(a())])
            .when(cancel(reason, ""))
            .then_events([VisitEvent::Cancelled {
                staff: a(),
                reason,
                note: String::new(),
            }]);
    }
}

#[test]
fn cancelling_after_the_visit_started_is_refused() {
    given(in_visit())
        .when(cancel(CancelReason::NoAnswerAfterWait, ""))
        .then_error(LifecycleError::CancelAfterStart);
}

#[test]
fn cancelling_twice_is_refused() {
    given([authorised(), cancelled(CancelReason::NoAnswerAfterWait)])
        .when(cancel(CancelReason::Other, "again"))
        .then_error(LifecycleError::Cancelled);
}

// ---------------------------------------------------------------------------------------------------------
// Duress.

#[test]
fn duress_is_heard_at_any_point_of_the_visit() {
    let raise = || Command::RaiseDuress {
        staff: b(),
        via: DuressVia::DuressPin,
    };
    let raised = VisitEvent::DuressRaised {
        staff: b(),
        via: DuressVia::DuressPin,
    };
    let histories: Vec<(&str, Vec<VisitEvent>)> = vec![
        ("before authorisation", vec![]),
        ("on the way", vec![authorised(), departed(b())]),
        ("inside", in_visit()),
        (
            "after a cancel",
            vec![
                authorised(),
                departed(b()),
                cancelled(CancelReason::NoAnswerAfterWait),
            ],
        ),
        ("after both left", both_left()),
        (
            "after the write-up",
            [
                both_left(),
                vec![VisitEvent::WrittenUp {
                    staff: a(),
                    write_up: write_up(),
                }],
            ]
            .concat(),
        ),
        (
            "with a duress already active",
            [in_visit(), vec![duress(a())]].concat(),
        ),
    ];
    for (when, history) in histories {
        let result = decide(&given(history).state, &raise(), &policy(), at_min(60));
        assert_eq!(result, Ok(vec![raised.clone()]), "duress {when}");
    }
}

#[test]
fn duress_outranks_every_other_phase_until_stood_down() {
    let state = given([authorised(), cancelled(CancelReason::NoAnswerAfterWait)])
        .when(Command::RaiseDuress {
            staff: a(),
            via: DuressVia::CodePhraseButton,
        })
        .then_events([duress(a())]);
    assert_eq!(state.phase(), Phase::Duress);
    assert!(state.duress_active());
    assert_eq!(
        state.duress,
        vec![Duress {
            raised_by: a(),
            raised_at: at_min(3),
            via: DuressVia::CodePhraseButton,
            stood_down_at: None,
        }]
    );
}

#[test]
fn standing_down_needs_an_active_alert_and_a_note() {
    given(in_visit())
        .when(Command::StandDownDuress {
            staff: a(),
            note: "All fine".into(),
        })
        .then_error(LifecycleError::NoDuress);
    given([in_visit(), vec![duress(a())]].concat())
        .when(Command::StandDownDuress {
            staff: a(),
            note: " ".into(),
        })
        .then_error(LifecycleError::NoteRequired);
}

#[test]
fn standing_down_ends_the_alert_and_restores_the_phase() {
    let state = given([in_visit(), vec![duress(a())]].concat())
        .when(Command::StandDownDuress {
            staff: a(),
            note: "Misunderstanding, all safe".into(),
        })
        .then_events([VisitEvent::DuressStoodDown {
            staff: a(),
            note: "Misunderstanding, all safe".into(),
            alerts: vec![alert_by_a_at(7)],
        }]);
    assert!(!state.duress_active());
    assert_eq!(
        state.duress.first().and_then(|d| d.stood_down_at),
        Some(at_min(8))
    );
    assert_eq!(state.phase(), Phase::InVisit);
    given([in_visit(), vec![duress(a())]].concat())
        .when(Command::StandDownDuress {
            staff: a(),
            note: "again".into(),
        })
        .then_events([VisitEvent::DuressStoodDown {
            staff: a(),
            note: "again".into(),
            alerts: vec![alert_by_a_at(7)],
        }]);
}

#[test]
fn a_state_with_a_stand_down_survives_json_and_older_empty_stand_downs_still_load() {
    // The office stores each visit's state as JSON; alerts are struct keys, which a JSON object cannot have.
    let state = given([in_visit(), vec![duress(a())]].concat())
        .when(Command::StandDownDuress {
            staff: a(),
            note: "Misunderstanding, all safe".into(),
        })
        .then_events([VisitEvent::DuressStoodDown {
            staff: a(),
            note: "Misunderstanding, all safe".into(),
            alerts: vec![alert_by_a_at(7)],
        }]);
    let json = serde_json::to_value(&state).expect("a stood-down state serialises");
    assert_eq!(
        json["stood_down"],
        serde_json::json!([[
            {"raised_by": "a", "raised_at": at_min(7)},
            at_min(8)
        ]])
    );
    let back: VisitState = serde_json::from_value(json).expect("and reads back");
    assert_eq!(back, state);

    let mut written_before = serde_json::to_value(VisitState::new([a(), b()])).unwrap();
    written_before["stood_down"] = serde_json::json!({});
    let loaded: VisitState =
        serde_json::from_value(written_before).expect("the old empty map loads");
    assert!(loaded.stood_down.is_empty());
}

#[test]
fn a_second_alert_after_a_stand_down_is_a_new_alert() {
    let history = [
        in_visit(),
        vec![
            duress(a()),
            VisitEvent::DuressStoodDown {
                staff: a(),
                note: "ok".into(),
                alerts: vec![alert_by_a_at(7)],
            },
        ],
    ]
    .concat();
    let state = given(history)
        .when(Command::RaiseDuress {
            staff: b(),
            via: DuressVia::DuressPin,
        })
        .then_events([VisitEvent::DuressRaised {
            staff: b(),
            via: DuressVia::DuressPin,
        }]);
    assert_eq!(state.phase(), Phase::Duress);
    let alert = state.active_duress().next().cloned().expect("duress");
    assert_eq!(
        (alert.raised_by, alert.raised_at, alert.stood_down_at),
        (b(), at_min(9), None)
    );
}

// ---------------------------------------------------------------------------------------------------------
// Writing up.

#[test]
fn the_write_up_is_refused_until_its_writer_has_left() {
    for (when, history, writer) in [
        ("before authorisation", vec![], a()),
        ("outside", both_outside(), a()),
        ("inside", in_visit(), a()),
        (
            "while still inside, the partner having left",
            [in_visit(), vec![left(a())]].concat(),
            b(),
        ),
    ] {
        let state = given(history).state;
        let command = Command::WriteUp {
            staff: writer,
            write_up: write_up(),
        };
        assert_eq!(
            decide(&state, &command, &policy(), at_min(60)),
            Err(LifecycleError::WriteUpTooEarly),
            "write-up {when}"
        );
    }
}

#[test]
fn the_writer_may_write_up_once_they_have_left_even_with_the_partner_not_yet_heard_from() {
    // Out of signal, a phone cannot learn that the partner has left; the write-up does not wait for it.
    given([in_visit(), vec![left(a())]].concat())
        .when(Command::WriteUp {
            staff: a(),
            write_up: write_up(),
        })
        .then_events([VisitEvent::WrittenUp {
            staff: a(),
            write_up: write_up(),
        }]);
}

#[test]
fn a_write_up_before_the_partner_has_left_leaves_the_visit_under_way_for_the_partner() {
    let written = VisitEvent::WrittenUp {
        staff: a(),
        write_up: write_up(),
    };
    let state = given([in_visit(), vec![left(a()), written.clone()]].concat()).state;
    assert_ne!(state.phase(), Phase::WrittenUp, "b is still inside");
    for command in [
        Command::CheckIn { staff: b() },
        Command::Leave { staff: b() },
    ] {
        assert!(
            decide(&state, &command, &policy(), at_min(60)).is_ok(),
            "{command:?}"
        );
    }
    let state = given([in_visit(), vec![left(a()), written, left(b())]].concat()).state;
    assert_eq!(state.phase(), Phase::WrittenUp);
}

#[test]
fn the_write_up_of_a_visit_needs_who_was_seen_and_what_was_discussed() {
    for (seen, discussed) in [("", "Attendance"), ("Parent", " "), ("", "")] {
        given(both_left())
            .when(Command::WriteUp {
                staff: a(),
                write_up: WriteUp {
                    seen: seen.into(),
                    discussed: discussed.into(),
                    ..write_up()
                },
            })
            .then_error(LifecycleError::WriteUpIncomplete);
    }
}

#[test]
fn a_cancelled_visit_may_be_written_up_with_nothing_seen() {
    let empty = WriteUp {
        seen: String::new(),
        discussed: String::new(),
        agreements: String::new(),
        safeguarding_concern: false,
        incident: None,
    };
    let state = given([authorised(), cancelled(CancelReason::NoAnswerAfterWait)])
        .when(Command::WriteUp {
            staff: b(),
            write_up: empty.clone(),
        })
        .then_events([VisitEvent::WrittenUp {
            staff: b(),
            write_up: empty,
        }]);
    assert_eq!(state.phase(), Phase::WrittenUp);
}

#[test]
fn a_write_up_with_a_safeguarding_concern_flags_the_visit() {
    let concern = WriteUp {
        safeguarding_concern: true,
        ..write_up()
    };
    let state = given(both_left())
        .when(Command::WriteUp {
            staff: a(),
            write_up: concern.clone(),
        })
        .then_events([VisitEvent::WrittenUp {
            staff: a(),
            write_up: concern,
        }]);
    assert!(state.safeguarding_concern);
    assert_eq!(state.written_up_at, Some(at_min(9)));
    assert_eq!(state.phase(), Phase::WrittenUp);
}

#[test]
fn a_written_up_visit_is_finished() {
    given(
        [
            both_left(),
            vec![VisitEvent::WrittenUp {
                staff: a(),
                write_up: write_up(),
            }],
        ]
        .concat(),
    )
    .when(Command::Authorise {
        by: head(),
        lone_visit_approved: true,
    })
    .then_error(LifecycleError::Finished);
}

// ---------------------------------------------------------------------------------------------------------
// Phases and last contact.

#[test]
fn a_visit_passes_through_every_phase_in_order() {
    let steps: Vec<(Command, Phase)> = vec![
        (
            Command::Authorise {
                by: head(),
                lone_visit_approved: false,
            },
            Phase::Authorised,
        ),
        (depart(a()), Phase::Departed),
        (depart(b()), Phase::Departed),
        (Command::ArriveOutside { staff: b() }, Phase::Outside),
        (Command::ArriveOutside { staff: a() }, Phase::Outside),
        (Command::StartVisit { by: a() }, Phase::InVisit),
        (Command::CheckIn { staff: a() }, Phase::CheckedIn),
        (
            Command::RaiseDuress {
                staff: b(),
                via: DuressVia::CodePhraseButton,
            },
            Phase::Duress,
        ),
        (
            Command::StandDownDuress {
                staff: b(),
                note: "Pressed by mistake".into(),
            },
            Phase::CheckedIn,
        ),
        (Command::Leave { staff: a() }, Phase::CheckedIn),
        (Command::Leave { staff: b() }, Phase::Left),
        (
            Command::WriteUp {
                staff: a(),
                write_up: write_up(),
            },
            Phase::WrittenUp,
        ),
    ];
    let mut state = given([]).state;
    assert_eq!(state.phase(), Phase::Requested);
    for (minute, (command, phase)) in (1..).zip(steps) {
        let events = decide(&state, &command, &policy(), at_min(minute))
            .unwrap_or_else(|e| panic!("{command:?} refused: {e:?}"));
        state = events
            .iter()
            .fold(state, |s, event| apply(s, event, at_min(minute)));
        assert_eq!(state.phase(), phase, "after {command:?}");
    }
}

#[test]
fn a_cancelled_visit_shows_its_reason_and_refuses_to_go_on() {
    let state = given([authorised(), departed(a())])
        .when(cancel(CancelReason::AnimalsNotSecured, ""))
        .then_events([VisitEvent::Cancelled {
            staff: a(),
            reason: CancelReason::AnimalsNotSecured,
            note: String::new(),
        }]);
    assert_eq!(
        state.phase(),
        Phase::Cancelled {
            reason: CancelReason::AnimalsNotSecured
        }
    );
    assert_eq!(
        decide(&state, &depart(b()), &policy(), at_min(10)),
        Err(LifecycleError::Cancelled)
    );
    assert_eq!(
        decide(
            &state,
            &Command::ArriveOutside { staff: a() },
            &policy(),
            at_min(10)
        ),
        Err(LifecycleError::PartAlreadyEnded)
    );
}

#[test]
fn last_contact_is_the_latest_word_from_anyone_on_the_visit() {
    let g = given([]);
    assert_eq!(g.state.last_contact, None);
    // The authoriser is not on the visit: their approval is not contact with the staff.
    let g = given([authorised()]);
    assert_eq!(g.state.last_contact, None);
    let g = given([authorised(), departed(a())]);
    assert_eq!(g.state.last_contact, Some(at_min(2)));
    let g = given(in_visit());
    assert_eq!(g.state.last_contact, Some(at_min(6)));
    let state = g
        .when(Command::CheckIn { staff: b() })
        .then_events([checked_in(b())]);
    assert_eq!(state.last_contact, Some(at_min(7)));

    // An older event arriving late never moves it back.
    let state = apply(state, &checked_in(a()), at_min(3));
    assert_eq!(state.last_contact, Some(at_min(7)));
    assert_eq!(state.last_check_in, Some(at_min(7)));
    let state = apply(state, &duress(a()), at_min(12));
    assert_eq!(state.last_contact, Some(at_min(12)));
}

#[test]
fn a_late_fact_never_moves_someone_backwards() {
    let state = given(in_visit()).state;
    let state = apply(state, &departed(a()), at_min(30));
    let state = apply(state, &outside(a()), at_min(31));
    assert_eq!(
        state.progress(&a()),
        Some(StaffProgress::Inside { at: at_min(6) })
    );
}

#[test]
fn events_about_someone_not_on_the_visit_change_nothing_of_theirs() {
    let state = given([authorised()]).state;
    let after = apply(state.clone(), &departed(staff("x")), at_min(5));
    assert_eq!(after.progress(&staff("x")), None);
    assert_eq!(after, state);
}

#[test]
fn a_stand_down_never_ends_an_alert_raised_after_it_whatever_the_phones_clocks_say() {
    use crate::support::envelope;
    use doorstep_core::lifecycle::replay;
    // The office's clock runs 10 minutes behind phone a's. a raises duress, the office closes it, a raises
    // again.
    let first = envelope("phone-a", 1, at_min(20), duress(a()));
    let stand_down = envelope(
        "office",
        1,
        at_min(11),
        VisitEvent::AlertsClosed {
            by: staff("head"),
            outcome: AlarmOutcome::SpokeToStaff,
            note: "False alarm".into(),
            alerts: vec![alert_by_a_at(20)],
        },
    );
    let second = envelope("phone-a", 2, at_min(22), duress(a()));
    let orders = [
        [&first, &stand_down, &second],
        [&second, &stand_down, &first],
        [&stand_down, &first, &second],
    ];
    for order in orders {
        let state = replay(VisitState::new([a(), b()]), order);
        let active: Vec<_> = state.active_duress().map(|d| d.raised_at).collect();
        assert_eq!(active, [at_min(22)], "only the second alert is live");
        assert_eq!(state.phase(), Phase::Duress);
    }
}

// ---------------------------------------------------------------------------------------------------------
// Who may do what: the same rules judge a command on the phone and a fact at the office.

#[test]
fn a_partner_cannot_stand_down_a_colleagues_alert_and_the_attempt_is_kept_as_not_honoured() {
    given([in_visit(), vec![duress(a())]].concat())
        .when(Command::StandDownDuress {
            staff: b(),
            note: "All fine".into(),
        })
        .then_error(LifecycleError::NotYourRequest(a()));
    // The same stand-down arriving as a fact (say from an old app) is kept but changes nothing.
    let state = apply(
        given([in_visit(), vec![duress(a())]].concat()).state,
        &VisitEvent::DuressStoodDown {
            staff: b(),
            note: "All fine".into(),
            alerts: vec![alert_by_a_at(7)],
        },
        at_min(9),
    );
    assert!(state.duress_active(), "a's alert is still live");
    assert_eq!(state.phase(), Phase::Duress);
    let not_honoured = state.not_honoured();
    assert_eq!(not_honoured.len(), 1);
    assert_eq!(not_honoured[0].staff, b());
    assert_eq!(
        not_honoured[0].reason,
        "a made this request: only they or the office can end it"
    );
}

#[test]
fn an_alert_raised_with_the_duress_pin_is_ended_only_by_the_office() {
    let pin_alert = VisitEvent::DuressRaised {
        staff: a(),
        via: DuressVia::DuressPin,
    };
    let g = given([in_visit(), vec![pin_alert]].concat());
    let state = g.state.clone();
    g.when(Command::StandDownDuress {
        staff: a(),
        note: "All fine".into(),
    })
    .then_error(LifecycleError::OnlyTheOfficeEndsThis);
    let forced = apply(
        state.clone(),
        &VisitEvent::DuressStoodDown {
            staff: a(),
            note: "All fine".into(),
            alerts: vec![alert_by_a_at(7)],
        },
        at_min(9),
    );
    assert!(forced.duress_active(), "made to cancel it: it stays live");
    let closed = given(
        [
            in_visit(),
            vec![VisitEvent::DuressRaised {
                staff: a(),
                via: DuressVia::DuressPin,
            }],
        ]
        .concat(),
    )
    .when(Command::CloseAlerts {
        by: head(),
        outcome: AlarmOutcome::PoliceCalled,
        note: "Police attended".into(),
    })
    .then_events([VisitEvent::AlertsClosed {
        by: head(),
        outcome: AlarmOutcome::PoliceCalled,
        note: "Police attended".into(),
        alerts: vec![alert_by_a_at(7)],
    }]);
    assert!(!closed.duress_active());
    assert!(closed.not_honoured().is_empty());
}

#[test]
fn arriving_together_vouches_only_for_a_partner_who_has_set_off() {
    let state = given([authorised(), departed(a()), departed(b())])
        .when(Command::ArriveTogether {
            by: a(),
            staff: vec![a(), b()],
        })
        .then_events([VisitEvent::ArrivedTogether {
            by: a(),
            staff: vec![a(), b()],
        }]);
    assert!(state.progress(&b()).is_some_and(|p| p.is_outside()));
    assert_eq!(state.vouched_by.get(&b()), Some(&a()), "shown as vouched");
    // For a partner this phone has not heard set off: a's own arrival counts, b's does not, and the office
    // keeps expecting word from b.
    let state = given([authorised(), departed(a())])
        .when(Command::ArriveTogether {
            by: a(),
            staff: vec![a(), b()],
        })
        .then_events([VisitEvent::ArrivedTogether {
            by: a(),
            staff: vec![a(), b()],
        }]);
    assert!(state.progress(&a()).is_some_and(|p| p.is_outside()));
    assert_eq!(state.progress(&b()), Some(StaffProgress::NotStarted));
    assert!(state.vouched_by.is_empty());
    assert_eq!(
        state.not_honoured()[0].reason,
        "b's own phone has not said they set off: b counts as arrived only once it does"
    );
    // Once b's own "left for the visit" arrives (recorded before the vouch), the replay counts the vouch.
    use crate::support::envelope;
    use doorstep_core::lifecycle::replay;
    let events = [
        envelope("office", 1, at_min(1), authorised()),
        envelope("phone-a", 1, at_min(2), departed(a())),
        envelope(
            "phone-a",
            2,
            at_min(9),
            VisitEvent::ArrivedTogether {
                by: a(),
                staff: vec![a(), b()],
            },
        ),
        envelope("phone-b", 1, at_min(3), departed(b())),
    ];
    let state = replay(VisitState::new([a(), b()]), events.iter());
    assert!(state.progress(&b()).is_some_and(|p| p.is_outside()));
    assert!(state.not_honoured().is_empty());
}

#[test]
fn a_partners_cancel_after_the_colleague_went_in_ends_only_the_partners_part() {
    let state = apply(
        given([
            authorised(),
            departed(a()),
            outside(a()),
            VisitEvent::VisitStarted {
                by: a(),
                staff: vec![a()],
            },
        ])
        .state,
        &VisitEvent::Cancelled {
            staff: b(),
            reason: CancelReason::NoAnswerAfterWait,
            note: String::new(),
        },
        at_min(9),
    );
    assert_eq!(state.cancelled, None, "the visit goes on");
    assert_eq!(state.phase(), Phase::InVisit);
    assert!(state.is_watched(&a()));
    assert!(state.part_ended(&b()).is_some());
    assert_eq!(
        state.not_honoured()[0].reason,
        "a is in the visit: the cancel ended only b's own part"
    );
}

#[test]
fn running_late_gives_a_new_expected_arrival_within_four_hours() {
    let state = given([authorised(), departed(a())])
        .when(Command::RunningLate {
            staff: a(),
            expected_arrival: at_min(45),
        })
        .then_events([VisitEvent::RunningLate {
            staff: a(),
            expected_arrival: at_min(45),
        }]);
    assert_eq!(state.expected_arrival(&a()), Some(at_min(45)));
    given([authorised()])
        .when(Command::RunningLate {
            staff: a(),
            expected_arrival: at_min(2 + 5 * 60),
        })
        .then_error(LifecycleError::ArrivalTooFarAhead);
    given([authorised()])
        .when(Command::RunningLate {
            staff: a(),
            expected_arrival: at_min(1),
        })
        .then_error(LifecycleError::ArrivalInThePast);
    given(both_outside())
        .when(Command::RunningLate {
            staff: a(),
            expected_arrival: at_min(45),
        })
        .then_error(LifecycleError::AlreadyArrived(a()));
}

#[test]
fn not_going_ahead_before_anyone_set_off_ends_the_visit_for_both() {
    let state = given([authorised()])
        .when(Command::Cancel {
            staff: a(),
            reason: CancelReason::FamilyCancelled,
            note: String::new(),
        })
        .then_events([VisitEvent::Cancelled {
            staff: a(),
            reason: CancelReason::FamilyCancelled,
            note: String::new(),
        }]);
    assert_eq!(state.phase().label(), "Not going ahead");
    assert!(state.part_ended(&b()).is_some());
    assert_eq!(
        decide(&state, &depart(b()), &policy(), at_min(5)),
        Err(LifecycleError::Cancelled)
    );
}

#[test]
fn the_office_declines_withdraws_calls_off_reschedules_and_updates_the_briefing() {
    let declined = given([])
        .when(Command::Decline {
            by: head(),
            reason: "A phone call will do".into(),
        })
        .then_events([VisitEvent::Declined {
            by: head(),
            reason: "A phone call will do".into(),
        }]);
    assert_eq!(declined.phase(), Phase::Declined);
    given([])
        .when(Command::Decline {
            by: head(),
            reason: " ".into(),
        })
        .then_error(LifecycleError::NoteRequired);

    let withdrawn = given([authorised()])
        .when(Command::WithdrawAuthorisation {
            by: head(),
            reason: "New information about the address".into(),
        })
        .then_events([VisitEvent::AuthorisationWithdrawn {
            by: head(),
            reason: "New information about the address".into(),
        }]);
    assert_eq!(withdrawn.phase(), Phase::AuthorisationWithdrawn);
    assert_eq!(
        decide(&withdrawn, &depart(a()), &policy(), at_min(5)),
        Err(LifecycleError::NotAuthorised)
    );
    given([authorised(), departed(a())])
        .when(Command::WithdrawAuthorisation {
            by: head(),
            reason: "Too late".into(),
        })
        .then_error(LifecycleError::SomeoneOut(a()));

    given(in_visit())
        .when(Command::CallOff {
            by: head(),
            reason: "Family rang".into(),
        })
        .then_error(LifecycleError::SomeoneInside(a()));
    let called_off = given([authorised(), departed(a())])
        .when(Command::CallOff {
            by: head(),
            reason: "Family rang".into(),
        })
        .then_events([VisitEvent::CalledOff {
            by: head(),
            reason: "Family rang".into(),
        }]);
    assert!(called_off.is_watched(&a()), "on the way: still watched");
    assert!(
        called_off.part_ended(&b()).is_some(),
        "not set off: need not go"
    );
    assert_eq!(called_off.phase(), Phase::Departed);
    let back = apply(
        called_off,
        &VisitEvent::Cancelled {
            staff: a(),
            reason: CancelReason::CalledOffByOffice,
            note: "Heading back".into(),
        },
        at_min(6),
    );
    assert_eq!(
        back.phase(),
        Phase::Cancelled {
            reason: CancelReason::CalledOffByOffice
        }
    );

    let read = VisitEvent::BriefingRead {
        staff: a(),
        ticked: BriefingCheck::ALL.to_vec(),
        version: 0,
    };
    let updated = given([authorised(), read])
        .when(Command::UpdateBriefing {
            by: head(),
            version: 1,
        })
        .then_events([VisitEvent::BriefingUpdated {
            by: head(),
            version: 1,
        }]);
    assert_eq!(
        decide(&updated, &depart(a()), &policy(), at_min(5)),
        Err(LifecycleError::BriefingChanged),
        "the changed briefing is read again before setting off"
    );
    let reread = apply(
        updated,
        &VisitEvent::BriefingRead {
            staff: a(),
            ticked: BriefingCheck::ALL.to_vec(),
            version: 1,
        },
        at_min(5),
    );
    assert!(decide(&reread, &depart(a()), &policy(), at_min(6)).is_ok());
}

#[test]
fn the_policys_staff_per_visit_sets_when_the_authoriser_must_approve_fewer() {
    let mut three = policy();
    three.staff_per_visit = 3;
    given([])
        .when_under(
            &three,
            Command::Authorise {
                by: head(),
                lone_visit_approved: false,
            },
        )
        .then_error(LifecycleError::FewerStaffThanPolicy(3));
    given([])
        .when(Command::Authorise {
            by: head(),
            lone_visit_approved: false,
        })
        .then_events([authorised()]);
    let mut one = policy();
    one.staff_per_visit = 1;
    given_staff(&["a"], [])
        .when_under(
            &one,
            Command::Authorise {
                by: head(),
                lone_visit_approved: false,
            },
        )
        .then_events([authorised()]);
}

#[test]
fn where_the_policy_lets_a_pair_go_in_separately_the_first_goes_in_and_the_second_joins() {
    let mut separately = policy();
    separately.pair_waits_outside_until_all_arrived = false;
    let first_outside = [authorised(), departed(a()), departed(b()), outside(a())];
    given(first_outside.clone())
        .when(Command::StartVisit { by: a() })
        .then_error(LifecycleError::PartnerNotArrived(b()));
    let state = given(first_outside.clone())
        .when_under(&separately, Command::StartVisit { by: a() })
        .then_events([VisitEvent::VisitStarted {
            by: a(),
            staff: vec![a()],
        }]);
    assert!(state.progress(&a()).is_some_and(|p| p.is_inside()));
    let later = apply(state, &outside(b()), at_min(8));
    assert_eq!(
        decide(
            &later,
            &Command::StartVisit { by: b() },
            &separately,
            at_min(9)
        ),
        Ok(vec![VisitEvent::VisitStarted {
            by: b(),
            staff: vec![b()],
        }])
    );
}

#[test]
fn the_pets_line_of_the_checklist_follows_the_policy() {
    let without_pets: Vec<BriefingCheck> = BriefingCheck::ALL
        .into_iter()
        .filter(|c| *c != BriefingCheck::PetsArrangementKnown)
        .collect();
    given([authorised()])
        .when(Command::ConfirmBriefing {
            staff: a(),
            ticked: without_pets.clone(),
        })
        .then_error(LifecycleError::BriefingIncomplete);
    let mut no_animal_rule = policy();
    no_animal_rule.animals_secured_or_cancel = false;
    assert!(
        !BriefingCheck::required(&no_animal_rule).contains(&BriefingCheck::PetsArrangementKnown)
    );
    given([authorised()])
        .when_under(
            &no_animal_rule,
            Command::ConfirmBriefing {
                staff: a(),
                ticked: without_pets.clone(),
            },
        )
        .then_events([VisitEvent::BriefingRead {
            staff: a(),
            ticked: without_pets,
            version: 0,
        }]);
}

#[test]
fn a_vouch_made_before_the_partners_phone_said_they_set_off_counts_once_it_does() {
    // a vouched for b at the door and they went in; b's "Leaving now" was pressed late, after the vouch.
    let state = given([
        authorised(),
        departed(a()),
        VisitEvent::ArrivedTogether {
            by: a(),
            staff: vec![a(), b()],
        },
        VisitEvent::VisitStarted {
            by: a(),
            staff: vec![a(), b()],
        },
    ])
    .state;
    assert_eq!(state.progress(&b()), Some(StaffProgress::NotStarted));
    assert_eq!(
        state.not_honoured().len(),
        1,
        "the vouch waits for b's phone"
    );
    let state = apply(state, &departed(b()), at_min(9));
    assert!(
        state.progress(&b()).is_some_and(|p| p.is_inside()),
        "{state:?}"
    );
    assert_eq!(state.vouched_by.get(&b()), Some(&a()));
    assert!(state.not_honoured().is_empty(), "nothing left to say");
}
