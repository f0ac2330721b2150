//! Shared builders for the integration tests: the ids and times of `doorstep_core::test_support`, envelopes
//! about the tests' one visit, and a minimal set of phone holdings.

use chrono::{DateTime, Utc};
use doorstep_core::domain::{
    Address, Briefing, Pupil, RiskAssessment, School, Visit, VisitPurpose, VisitStaff,
};
use doorstep_core::event::EventEnvelope;
use doorstep_core::ids::{PupilId, SchoolId, VisitId};
use doorstep_core::lifecycle::VisitEvent;
use doorstep_core::policy::{PolicyMinutes, Preset};
use doorstep_core::protocol::{HeldVisit, PhoneHoldings};

/// The policy most tests decide under: the academy preset (pairs wait outside for each other).
pub fn policy() -> doorstep_core::policy::Policy {
    Preset::AcademySafeguardingLead.policy()
}

pub use doorstep_core::test_support::{at_min, device, staff, t0};

/// The one visit most tests are about.
pub fn visit_id() -> VisitId {
    doorstep_core::test_support::visit("visit-1")
}

/// An envelope about [`visit_id`] as a phone would record it, with a fresh UUIDv7.
pub fn envelope(
    device_id: &str,
    n: u64,
    recorded_at: DateTime<Utc>,
    event: VisitEvent,
) -> EventEnvelope {
    doorstep_core::test_support::envelope(device_id, n, "visit-1", recorded_at, event)
}

/// What an office might hand a phone: one school, a preset policy, one visit with one event.
pub fn holdings() -> PhoneHoldings {
    let school = SchoolId::parse("school-1").unwrap();
    let visit = Visit {
        id: visit_id(),
        school: school.clone(),
        purpose: VisitPurpose::SafeAndWellCheck,
        pupil: Pupil {
            id: PupilId::parse("pupil-1").unwrap(),
            name: "Pupil One".into(),
        },
        address: Address {
            lines: vec!["1 Test Street".into(), "Testville".into()],
            postcode: "TE1 1ST".parse().unwrap(),
        },
        agreed_time: at_min(30),
        expected_length: PolicyMinutes::new(45).unwrap(),
        staff: vec![
            VisitStaff {
                id: staff("a"),
                name: "Staff A".into(),
                phone: "07000 000001".parse().unwrap(),
            },
            VisitStaff {
                id: staff("b"),
                name: "Staff B".into(),
                phone: "07000 000002".parse().unwrap(),
            },
        ],
        briefing: Briefing::new(RiskAssessment::standard()),
    };
    PhoneHoldings {
        school: School {
            id: school,
            name: "Test School".into(),
            office_phone: "0100 000000".parse().unwrap(),
            time_zone: Default::default(),
        },
        policy: Preset::AcademySafeguardingLead.policy(),
        staff: staff("a"),
        staff_name: "Staff A".into(),
        visits: vec![HeldVisit {
            visit,
            events: vec![envelope(
                "phone-b",
                1,
                at_min(1),
                VisitEvent::Authorised {
                    by: staff("lead"),
                    lone_visit_approved: false,
                },
            )],
            times: Vec::new(),
        }],
    }
}
