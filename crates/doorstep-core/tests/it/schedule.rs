//! When the office next expects to hear from a visit, as a table: each row is a history of events and the
//! deadline that must follow from the policy (first check-in 10 minutes after the start, then hourly; 20
//! minutes at the door; the visit's expected end).

use chrono::{DateTime, Utc};
use doorstep_core::lifecycle::{apply, CancelReason, VisitEvent, VisitState, WriteUp};
use doorstep_core::policy::Preset;
use doorstep_core::schedule::{next_deadline, next_escalation, AlarmLevel, Deadline, Expecting};

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

fn deadline(expecting: Expecting, minute: i64) -> Option<Deadline> {
    Some(Deadline {
        expecting,
        due: at_min(minute),
    })
}

#[test]
fn the_next_deadline_follows_the_visit_and_the_policy() {
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

    let table: Vec<(&str, History, Option<Deadline>)> = vec![
        (
            "authorised, nobody has left: nothing expected",
            vec![authorised.clone()],
            None,
        ),
        (
            "on the way: the expected arrival",
            vec![authorised.clone(), departed("a")],
            deadline(Expecting::Arrival, 28),
        ),
        (
            "one at the door: 20 minutes to go in or cancel",
            vec![authorised.clone(), departed("a"), outside("a", 27)],
            deadline(Expecting::AnswerAtTheDoor, 47),
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
            deadline(Expecting::CheckIn, 40),
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
            deadline(Expecting::CheckIn, 43),
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
            deadline(Expecting::Leaving, 75),
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
            deadline(Expecting::Leaving, 75),
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
            deadline(Expecting::Leaving, 75),
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
            None,
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
            None,
        ),
    ];
    for (case, events, expected) in table {
        let state = events
            .into_iter()
            .fold(VisitState::new(visit.staff_ids()), |s, (m, e)| {
                apply(s, &e, at_min(m))
            });
        assert_eq!(next_deadline(visit, &state, &policy), expected, "{case}");
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
        Deadline {
            expecting: Expecting::CheckIn,
            due: at_min(100)
        }
    );
    assert_eq!(due.overdue_at(&policy), at_min(105), "5 minutes' grace");
}

#[test]
fn an_unacknowledged_alarm_reaches_the_authoriser_then_reminds_them() {
    let policy = Preset::PrimaryHeadteacher.policy();
    let raised: DateTime<Utc> = at_min(0);
    assert_eq!(
        next_escalation(AlarmLevel::Board, raised, raised, &policy),
        at_min(5)
    );
    assert_eq!(
        next_escalation(AlarmLevel::Authoriser, raised, at_min(5), &policy),
        at_min(10)
    );
}
