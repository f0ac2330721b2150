//! Shared builders for the integration tests: fixed times, ids, envelopes and a minimal set of phone holdings.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use doorstep_core::domain::{
    Address, Briefing, Pupil, RiskAssessment, School, Visit, VisitPurpose, VisitStaff,
};
use doorstep_core::event::EventEnvelope;
use doorstep_core::ids::{DeviceId, DeviceSeq, EventId, PupilId, SchoolId, StaffId, VisitId};
use doorstep_core::lifecycle::VisitEvent;
use doorstep_core::policy::{PolicyMinutes, Preset};
use doorstep_core::protocol::{HeldVisit, PhoneHoldings};

/// The policy most tests decide under: the academy preset (pairs wait outside for each other).
pub fn policy() -> doorstep_core::policy::Policy {
    Preset::AcademySafeguardingLead.policy()
}

/// A fixed moment every test counts from: a school-day morning.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap()
}

/// `t0` plus some minutes.
pub fn at_min(minutes: i64) -> DateTime<Utc> {
    t0() + TimeDelta::minutes(minutes)
}

pub fn staff(id: &str) -> StaffId {
    StaffId::parse(id).unwrap()
}

pub fn device(id: &str) -> DeviceId {
    DeviceId::parse(id).unwrap()
}

pub fn visit_id() -> VisitId {
    VisitId::parse("visit-1").unwrap()
}

pub fn seq(n: u64) -> DeviceSeq {
    DeviceSeq::new(n).unwrap()
}

/// An envelope as a phone would record it, with a fresh UUIDv7.
pub fn envelope(
    device_id: &str,
    n: u64,
    recorded_at: DateTime<Utc>,
    event: VisitEvent,
) -> EventEnvelope {
    EventEnvelope {
        id: EventId::new_v7(),
        device: device(device_id),
        seq: seq(n),
        visit: visit_id(),
        recorded_at,
        event,
    }
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
            postcode: "TE1 1ST".into(),
        },
        agreed_time: at_min(30),
        expected_length: PolicyMinutes::new(45).unwrap(),
        staff: vec![
            VisitStaff {
                id: staff("a"),
                name: "Staff A".into(),
                phone: "07000 000001".into(),
            },
            VisitStaff {
                id: staff("b"),
                name: "Staff B".into(),
                phone: "07000 000002".into(),
            },
        ],
        briefing: Briefing::new(RiskAssessment::standard()),
    };
    PhoneHoldings {
        school: School {
            id: school,
            name: "Test School".into(),
            office_phone: "0100 000000".into(),
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
