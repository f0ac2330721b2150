//! When the office next expects to hear from a visit, as a table: each row is a history of events and the
//! deadline that must follow from the policy (first check-in 10 minutes after the start, then hourly; 20
//! minutes at the door; the visit's expected end).

use chrono::{DateTime, Utc};
use doorstep_core::lifecycle::{apply, CancelReason, VisitEvent, VisitState, WriteUp};
use doorstep_core::policy::{PolicyMinutes, Preset};
use doorstep_core::schedule::{
    deadlines, next_deadline, next_escalation, next_missed_after, AlarmLevel, Deadline, Expecting,
};

use crate::support::{at_min, holdings, staff};

fn departed(who: &str) -> (i64, VisitEvent) {
    (
        5,
        VisitEvent::Departed {
            staff: staff(who),
            expected_arrival: at_min(28),
            expected_end: at_min(75),
        },
    )
}

/// Events with the minute each was recorded.
type History = Vec<(i64, VisitEvent)>;

/// A deadline: what, from whom (`None`: everyone inside), due at minute `due`, an alarm at minute `alarm`.
fn dl(expecting: Expecting, who: Option<&str>, due: i64, alarm: i64) -> Deadline {
    Deadline {
        expecting,
        staff: who.map(staff),
        due: at_min(due),
        alarm_at: at_min(alarm),
    }
}

/// Waiting for word that `who` has set off: the visit is agreed for minute 30, so from minute 30, with the
/// alarm at the first check-in (10 minutes) after it.
fn set_off(who: &str) -> Deadline {
    dl(Expecting::SetOff, Some(who), 30, 40)
}

#[test]
fn the_deadlines_follow_the_visit_and_the_policy() {
    // The held visit is agreed for minute 30, expected to last 45 minutes (to minute 75).
    let held = holdings();
    let visit = &held.visits[0].visit;
    let policy = Preset::PrimaryHeadteacher.policy();
    let authorised = (
        1,
        VisitEvent::Authorised {
            by: staff("head"),
            lone_visit_approved: false,
        },
    );
    let outside = |who: &str, m: i64| (m, VisitEvent::ArrivedOutside { staff: staff(who) });
    let started = |m: i64| {
        (
            m,
            VisitEvent::VisitStarted {
                by: staff("a"),
                staff: vec![staff("a"), staff("b")],
            },
        )
    };
    let check_in = |m: i64| (m, VisitEvent::CheckedIn { staff: staff("b") });
    let left = |who: &str, m: i64| (m, VisitEvent::Left { staff: staff(who) });

    let table: Vec<(&str, History, Vec<Deadline>)> = vec![
        (
            "not authorised: nothing expected",
            vec![],
            vec![],
        ),
        (
            "authorised, nobody has set off: word from each by the agreed time plus the first check-in",
            vec![authorised.clone()],
            vec![set_off("a"), set_off("b")],
        ),
        (
            "one on the way: their expected arrival; the partner who never set off is still expected",
            vec![authorised.clone(), departed("a")],
            vec![dl(Expecting::Arrival, Some("a"), 28, 33), set_off("b")],
        ),
        (
            "one at the door: 20 minutes to go in or cancel",
            vec![authorised.clone(), departed("a"), outside("a", 27)],
            vec![dl(Expecting::AnswerAtTheDoor, Some("a"), 47, 52), set_off("b")],
        ),
        (
            "in at the agreed time: first check-in 10 minutes after the start",
            vec![
                authorised.clone(),
                departed("a"),
                outside("a", 27),
                outside("b", 29),
                started(30),
            ],
            vec![dl(Expecting::CheckIn, None, 40, 45)],
        ),
        (
            "in late: 10 minutes after going in",
            vec![
                authorised.clone(),
                departed("a"),
                outside("a", 27),
                outside("b", 29),
                started(33),
            ],
            vec![dl(Expecting::CheckIn, None, 43, 48)],
        ),
        (
            "checked in: the next is an hour later, unless the visit ends first",
            vec![
                authorised.clone(),
                departed("a"),
                outside("a", 27),
                outside("b", 29),
                started(30),
                check_in(38),
            ],
            vec![dl(Expecting::Leaving, None, 75, 80)],
        ),
        (
            "one left, one still inside: still waiting for the leaving",
            vec![
                authorised.clone(),
                departed("a"),
                outside("a", 27),
                outside("b", 29),
                started(30),
                check_in(38),
                left("a", 60),
            ],
            vec![dl(Expecting::Leaving, None, 75, 80)],
        ),
        (
            "one left and wrote up, one still inside: the partner's leaving is still expected",
            vec![
                authorised.clone(),
                departed("a"),
                outside("a", 27),
                outside("b", 29),
                started(30),
                check_in(38),
                left("a", 60),
                (
                    62,
                    VisitEvent::WrittenUp {
                        staff: staff("a"),
                        write_up: WriteUp {
                            seen: "Parent".into(),
                            discussed: "Attendance".into(),
                            agreements: String::new(),
                            safeguarding_concern: false,
                            incident: None,
                        },
                    },
                ),
            ],
            vec![dl(Expecting::Leaving, None, 75, 80)],
        ),
        (
            "both left: nothing expected",
            vec![
                authorised.clone(),
                departed("a"),
                outside("a", 27),
                outside("b", 29),
                started(30),
                left("a", 60),
                left("b", 61),
            ],
            vec![],
        ),
        (
            "cancelled at the door: nothing expected",
            vec![
                authorised.clone(),
                departed("a"),
                outside("a", 27),
                (
                    50,
                    VisitEvent::Cancelled {
                        staff: staff("a"),
                        reason: CancelReason::NoAnswerAfterWait,
                        note: String::new(),
                    },
                ),
            ],
            vec![],
        ),
    ];
    for (case, events, expected) in table {
        let state = events
            .into_iter()
            .fold(VisitState::new(visit.staff_ids()), |s, (m, e)| {
                apply(s, &e, at_min(m))
            });
        assert_eq!(deadlines(visit, &state, &policy), expected, "{case}");
    }
}
#[test]
fn a_long_visit_checks_in_hourly() {
    let held = holdings();
    let mut visit = held.visits[0].visit.clone();
    visit.expected_length = doorstep_core::policy::PolicyMinutes::new(180).unwrap();
    let policy = Preset::AcademySafeguardingLead.policy();
    let mut state = VisitState::new(visit.staff_ids());
    let events = [
        (
            29,
            VisitEvent::ArrivedTogether {
                by: staff("a"),
                staff: vec![staff("a"), staff("b")],
            },
        ),
        (
            30,
            VisitEvent::VisitStarted {
                by: staff("a"),
                staff: vec![staff("a"), staff("b")],
            },
        ),
        (40, VisitEvent::CheckedIn { staff: staff("a") }),
    ];
    for (m, e) in events {
        state = apply(state, &e, at_min(m));
    }
    let due = next_deadline(&visit, &state, &policy).unwrap();
    assert_eq!(
        due,
        dl(Expecting::CheckIn, None, 100, 105),
        "5 minutes' grace"
    );
}

#[test]
fn an_unacknowledged_alarm_reaches_the_authoriser_then_the_further_contacts_then_reminds_them() {
    // (escalate_to_authoriser_after, escalate_further_after): the presets' 5 and 10, then other numbers,
    // so each step is seen to follow its own policy field.
    for (to_authoriser, further) in [(5, 10), (7, 3)] {
        let mut policy = Preset::PrimaryHeadteacher.policy();
        policy.escalate_to_authoriser_after = PolicyMinutes::new(to_authoriser).unwrap();
        policy.escalate_further_after = PolicyMinutes::new(further).unwrap();
        let raised: DateTime<Utc> = at_min(0);
        let reached_authoriser = next_escalation(AlarmLevel::Board, raised, raised, &policy);
        assert_eq!(reached_authoriser, at_min(to_authoriser.into()));
        assert_eq!(AlarmLevel::Board.next(), AlarmLevel::Authoriser);
        let reached_further =
            next_escalation(AlarmLevel::Authoriser, raised, reached_authoriser, &policy);
        assert_eq!(reached_further, at_min((to_authoriser + further).into()));
        assert_eq!(AlarmLevel::Authoriser.next(), AlarmLevel::Further);
        // At the top it stays, reminding every `escalate_further_after`.
        assert_eq!(
            next_escalation(AlarmLevel::Further, raised, reached_further, &policy),
            at_min((to_authoriser + 2 * further).into())
        );
        assert_eq!(AlarmLevel::Further.next(), AlarmLevel::Further);
    }
    // Duress starts at the authoriser's level: the further contacts come `escalate_further_after` on.
    let policy = Preset::AcademySafeguardingLead.policy();
    assert_eq!(
        next_escalation(AlarmLevel::Authoriser, at_min(0), at_min(0), &policy),
        at_min(10)
    );
    for level in [
        AlarmLevel::Board,
        AlarmLevel::Authoriser,
        AlarmLevel::Further,
    ] {
        assert_eq!(AlarmLevel::parse(level.name()), Some(level));
    }
}

#[test]
fn the_office_keeps_watching_whoever_is_still_out() {
    // The held visit is agreed for minute 30; `a` and `b` are assigned.
    let held = holdings();
    let visit = &held.visits[0].visit;
    let policy = Preset::PrimaryHeadteacher.policy();
    let authorised = (
        1,
        VisitEvent::Authorised {
            by: staff("head"),
            lone_visit_approved: false,
        },
    );
    let cancel = |who: &str, m: i64, reason: CancelReason| {
        (
            m,
            VisitEvent::Cancelled {
                staff: staff(who),
                reason,
                note: "Family rang".into(),
            },
        )
    };
    let late = |who: &str, m: i64, arrival: i64| {
        (
            m,
            VisitEvent::RunningLate {
                staff: staff(who),
                expected_arrival: at_min(arrival),
            },
        )
    };
    let outside = |who: &str, m: i64| (m, VisitEvent::ArrivedOutside { staff: staff(who) });
    let gone_in_alone = |who: &str, m: i64| {
        (
            m,
            VisitEvent::VisitStarted {
                by: staff(who),
                staff: vec![staff(who)],
            },
        )
    };
    let table: Vec<(&str, History, Vec<Deadline>)> = vec![
        (
            "running late before setting off moves that person's deadline",
            vec![authorised.clone(), late("a", 20, 50)],
            vec![dl(Expecting::SetOff, Some("a"), 50, 60), set_off("b")],
        ),
        (
            "running late on the way moves the arrival",
            vec![authorised.clone(), departed("a"), late("a", 20, 45)],
            vec![dl(Expecting::Arrival, Some("a"), 45, 50), set_off("b")],
        ),
        (
            "not going ahead before anyone set off: nothing expected",
            vec![authorised.clone(), cancel("a", 10, CancelReason::FamilyCancelled)],
            vec![],
        ),
        (
            "cancelled while the partner was on the way: the partner is still watched",
            vec![
                authorised.clone(),
                departed("b"),
                cancel("a", 10, CancelReason::FamilyCancelled),
            ],
            vec![dl(Expecting::Arrival, Some("b"), 28, 33)],
        ),
        (
            "a partner's cancel after the colleague went in ends only the partner's part",
            vec![
                authorised.clone(),
                departed("a"),
                outside("a", 27),
                gone_in_alone("a", 30),
                cancel("b", 35, CancelReason::FeltUnsafe),
            ],
            vec![dl(Expecting::CheckIn, None, 40, 45)],
        ),
        (
            "a cancel recorded offline before the colleague set off and went in: the colleague is watched",
            vec![
                authorised.clone(),
                cancel("b", 4, CancelReason::FamilyCancelled),
                departed("a"),
                outside("a", 27),
                gone_in_alone("a", 30),
            ],
            vec![dl(Expecting::CheckIn, None, 40, 45)],
        ),
        (
            "the office called it off while one was on the way: the one on the way is still watched",
            vec![
                authorised.clone(),
                departed("a"),
                (
                    10,
                    VisitEvent::CalledOff {
                        by: staff("head"),
                        reason: "The family rang the school".into(),
                    },
                ),
            ],
            vec![dl(Expecting::Arrival, Some("a"), 28, 33)],
        ),
        (
            "declined: nothing expected",
            vec![(
                1,
                VisitEvent::Declined {
                    by: staff("head"),
                    reason: "A phone call will do".into(),
                },
            )],
            vec![],
        ),
        (
            "an arrival stamped in 2099 counts as at most four hours after setting off",
            vec![
                authorised.clone(),
                (
                    5,
                    VisitEvent::Departed {
                        staff: staff("a"),
                        expected_arrival: at_min(0) + chrono::TimeDelta::days(365 * 73),
                        expected_end: at_min(0) + chrono::TimeDelta::days(365 * 73),
                    },
                ),
            ],
            vec![
                dl(Expecting::Arrival, Some("a"), 5 + 240, 5 + 245),
                set_off("b"),
            ],
        ),
    ];
    for (case, events, expected) in table {
        let state = events
            .into_iter()
            .fold(VisitState::new(visit.staff_ids()), |s, (m, e)| {
                apply(s, &e, at_min(m))
            });
        assert_eq!(deadlines(visit, &state, &policy), expected, "{case}");
    }
}

#[test]
fn after_the_office_handles_an_alarm_the_silent_visit_is_missed_again_an_hour_on() {
    let policy = Preset::PrimaryHeadteacher.policy();
    let missed = dl(Expecting::CheckIn, None, 40, 45);
    assert_eq!(
        next_missed_after(&missed, at_min(50), &policy),
        dl(Expecting::CheckIn, None, 100, 105)
    );
    assert_eq!(
        next_missed_after(&missed, at_min(170), &policy),
        dl(Expecting::CheckIn, None, 220, 225),
        "handled late: the next miss is after the handling, never in the past"
    );
}

#[test]
fn a_phone_with_a_wrong_clock_cannot_move_a_deadline_or_last_heard() {
    use doorstep_core::event::{trusted_time, TrustedEvent};
    use doorstep_core::lifecycle::replay;

    let held = holdings();
    let visit = &held.visits[0].visit;
    let policy = Preset::PrimaryHeadteacher.policy();
    let received = at_min(5);
    // A clock right to within the allowed skew is believed, and never past the moment the office heard it.
    assert_eq!(trusted_time(at_min(4), at_min(6), received), at_min(4));
    assert_eq!(trusted_time(at_min(6), at_min(6), received), received);
    // A clock two hours fast is corrected by the offset the office measured when the phone sent it.
    let fast = chrono::TimeDelta::hours(2);
    assert_eq!(
        trusted_time(at_min(3) + fast, at_min(5) + fast, received),
        at_min(3)
    );
    // An event stamped in 2099 by a phone whose clock is otherwise right counts as when it was received.
    let far = at_min(0) + chrono::TimeDelta::days(365 * 73);
    assert_eq!(trusted_time(far, at_min(5), received), received);

    // The same phone, two hours fast, sets off and says it will arrive at (its) 10:28: the office expects it
    // at 10:28 office time, and "last heard" is when it really set off.
    let authorised = crate::support::envelope(
        "office",
        1,
        at_min(1),
        VisitEvent::Authorised {
            by: staff("head"),
            lone_visit_approved: false,
        },
    );
    let departed = crate::support::envelope(
        "phone-a",
        1,
        at_min(5) + fast,
        VisitEvent::Departed {
            staff: staff("a"),
            expected_arrival: at_min(28) + fast,
            expected_end: at_min(75) + fast,
        },
    );
    let events = [
        TrustedEvent {
            envelope: &authorised,
            at: at_min(1),
        },
        TrustedEvent {
            envelope: &departed,
            at: trusted_time(departed.recorded_at, at_min(6) + fast, at_min(6)),
        },
    ];
    let state = replay(VisitState::new(visit.staff_ids()), events.iter());
    assert_eq!(state.last_contact, Some(at_min(5)));
    assert_eq!(
        deadlines(visit, &state, &policy)[0],
        dl(Expecting::Arrival, Some("a"), 28, 33)
    );
}
