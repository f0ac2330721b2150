//! Adding an office's changes to what a phone holds (`PhoneHoldings::merge_changes`): new events and their
//! times once each, after those it has; changes for someone else or a visit it does not hold refused,
//! leaving it as it was.

use doorstep_core::ids::VisitId;
use doorstep_core::lifecycle::VisitEvent;
use doorstep_core::policy::Preset;
use doorstep_core::protocol::{EventTime, MergeError};

use crate::support::{at_min, envelope, holdings, staff};

#[test]
fn changes_add_each_new_event_and_its_time_once_after_those_held() {
    let mut held = holdings();
    let old = held.visits[0].events[0].clone();
    let new = envelope(
        "phone-b",
        2,
        at_min(40),
        VisitEvent::CheckedIn { staff: staff("b") },
    );
    let mut changes = holdings();
    changes.policy = Preset::PrimaryHeadteacher.policy();
    // The old event again (an answer that overlaps) and the new one, with its office time.
    changes.visits[0].events = vec![old.clone(), new.clone()];
    changes.visits[0].times = vec![EventTime {
        id: new.id,
        at: at_min(41),
    }];
    held.merge_changes(changes).unwrap();
    let visit = &held.visits[0];
    assert_eq!(
        visit.events.iter().map(|e| e.id).collect::<Vec<_>>(),
        [old.id, new.id]
    );
    assert_eq!(
        visit.times,
        [EventTime {
            id: new.id,
            at: at_min(41)
        }]
    );
    assert_eq!(visit.trusted_events()[1].at, at_min(41));
    assert_eq!(held.policy, Preset::PrimaryHeadteacher.policy());
}

#[test]
fn changes_with_no_visits_change_only_the_school_and_policy() {
    let mut held = holdings();
    let before = held.visits.clone();
    let mut changes = holdings();
    changes.visits.clear();
    changes.school.name = "Renamed School".into();
    held.merge_changes(changes).unwrap();
    assert_eq!(held.visits, before);
    assert_eq!(held.school.name, "Renamed School");
}

#[test]
fn changes_for_someone_else_or_a_visit_not_held_are_refused_and_change_nothing() {
    let held = holdings();

    let mut other = holdings();
    other.staff = staff("b");
    let mut merged = held.clone();
    assert!(matches!(
        merged.merge_changes(other),
        Err(MergeError::OtherStaff { .. })
    ));
    assert_eq!(merged, held);

    let mut unknown = holdings();
    unknown.visits[0].visit.id = VisitId::parse("visit-elsewhere").unwrap();
    unknown.policy = Preset::PrimaryHeadteacher.policy();
    let mut merged = held.clone();
    assert_eq!(
        merged.merge_changes(unknown),
        Err(MergeError::UnknownVisit(
            VisitId::parse("visit-elsewhere").unwrap()
        ))
    );
    assert_eq!(merged, held, "not even the policy changed");
}
