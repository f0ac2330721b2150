//! Test data for the unit tests: a school, a pair of staff and visits the office might send.

use chrono::{DateTime, Utc};
use doorstep_core::domain::{
    Address, Briefing, Pupil, RiskAssessment, School, Visit, VisitPurpose, VisitStaff,
};
use doorstep_core::event::EventEnvelope;
use doorstep_core::event_log::EventLog;
use doorstep_core::ids::{DeviceId, DeviceSeq, EventId, StaffId};
use doorstep_core::lifecycle::VisitEvent;
use doorstep_core::policy::{PolicyMinutes, Preset};
use doorstep_core::protocol::{HeldVisit, PhoneHoldings};

use crate::store::AppStore;

/// Ids from text and `at(hour, minute)` on the tests' school day (23 November 2026, UTC), shared with the
/// core's and the office's tests.
pub use doorstep_core::test_support::{at, id, visit as visit_id};

/// A visit by Sam (this phone) and, unless `alone`, Alex.
pub fn visit(visit_id: &str, time: DateTime<Utc>, alone: bool) -> Visit {
    let mut staff = vec![VisitStaff {
        id: id("sam"),
        name: "Sam Patel".into(),
        phone: "07700 900001".parse().unwrap(),
    }];
    if !alone {
        staff.push(VisitStaff {
            id: id("alex"),
            name: "Alex Jones".into(),
            phone: "07700 900002".parse().unwrap(),
        });
    }
    Visit {
        id: id(visit_id),
        school: id("school"),
        purpose: VisitPurpose::SafeAndWellCheck,
        pupil: Pupil {
            id: id("pupil-1"),
            name: "Ava Smith".into(),
        },
        address: Address {
            lines: vec!["1 High Street".into()],
            postcode: "LS6 2AB".parse().unwrap(),
        },
        agreed_time: time,
        expected_length: PolicyMinutes::new(45).unwrap(),
        staff,
        briefing: Briefing::new(RiskAssessment::standard()),
    }
}

/// The office's record that the headteacher authorised `visit`.
pub fn authorised(visit: &Visit) -> EventEnvelope {
    EventEnvelope {
        id: EventId::new_v7(),
        device: id::<DeviceId>("office"),
        seq: DeviceSeq::new(1).unwrap(),
        visit: visit.id.clone(),
        recorded_at: visit.agreed_time - chrono::TimeDelta::hours(2),
        event: VisitEvent::Authorised {
            by: id("head"),
            lone_visit_approved: visit.staff.len() < 2,
        },
    }
}

pub fn holdings(visits: Vec<HeldVisit>) -> PhoneHoldings {
    PhoneHoldings {
        school: School {
            id: id("school"),
            name: "Hillside Primary".into(),
            office_phone: "0113 496 0000".parse().unwrap(),
            time_zone: Default::default(),
        },
        policy: doorstep_core::policy::Policy {
            code_phrases: Some(doorstep_core::policy::CodePhrases {
                to_colleague: "Could you remind me to phone school about the lesson cover rota?"
                    .into(),
                to_reception: "Please can someone check the lesson cover rota for me?".into(),
            }),
            ..Preset::PrimaryHeadteacher.policy()
        },
        staff: id::<StaffId>("sam"),
        staff_name: "Sam Patel".into(),
        visits,
    }
}

/// Sam's phone holding an authorised pair visit `v-auth` at 10:00 and an unauthorised one `v-wait` at 09:00.
pub fn store_with_two_visits(dir: &std::path::Path) -> AppStore {
    let mut log = EventLog::open(&dir.join("phone.sqlite3"), &id("phone-sam")).unwrap();
    let first = visit("v-auth", at(10, 0), false);
    let second = visit("v-wait", at(9, 0), false);
    let held = vec![
        HeldVisit {
            events: vec![authorised(&first)],
            visit: first,
            times: Vec::new(),
        },
        HeldVisit {
            visit: second,
            events: Vec::new(),
            times: Vec::new(),
        },
    ];
    log.save_holdings(&holdings(held), at(8, 0)).unwrap();
    AppStore::new(log)
}
