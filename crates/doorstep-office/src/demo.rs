//! Demo data for a newcomer's first run: a primary school on the headteacher preset, its staff, three pupils
//! and today's visits ([`seed_school`]); `add_office_logins` gives the headteacher and the office sign-ins
//! for the board; `seed_visit_under_way` adds a visit whose silent phones the office will flag overdue a
//! few minutes into the demo, and `seed_visit_nobody_set_off_for` an authorised visit nobody sets off for.
//! The demo's phone apps enrol themselves with one-time codes (`doorstep-office enrol-code`, as
//! `scripts/demo` does), like any phone. [`seed`] also enrols Sam's and Alex's phones directly with tokens
//! it returns, for tests that drive phones without the app. Every name and number here is made up;
//! passwords and codes are generated for each demo.

use std::path::Path;

use chrono::{DateTime, NaiveDate, TimeDelta, Timelike, Utc};
use doorstep_core::domain::{
    Address, Briefing, DbsCheck, DbsLevel, Pupil, RiskAssessment, Role, School, StaffMember, Visit,
    VisitPurpose, VisitStaff,
};
use doorstep_core::event::EventEnvelope;
use doorstep_core::ids::{DeviceId, DeviceSeq, EventId, SchoolId, StaffId, VisitId};
use doorstep_core::lifecycle::{Command, VisitEvent};
use doorstep_core::policy::{CodePhrases, PolicyMinutes, Preset};
use serde::{Deserialize, Serialize};

use crate::requests::{timing, RequestDetails};
use crate::store::{IngestError, OfficeStore, StoreError};

/// What a phone needs to talk to this office, for tests that drive a phone without enrolling it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhoneConfig {
    pub office_url: String,
    pub device_id: DeviceId,
    pub device_token: String,
}

/// The tests' two phones: Sam's, and Sam's partner Alex's.
#[derive(Debug, Clone)]
pub struct DemoPhones {
    pub me: PhoneConfig,
    pub partner: PhoneConfig,
}
/// The demo school's id.
const DEMO_SCHOOL: &str = "demo-primary";

/// Where `--demo` writes the office board's demo sign-ins (names and generated passwords).
pub const DEMO_LOGINS_FILE: &str = "demo-office-logins.txt";

/// The demo staff who get an office sign-in: the headteacher (the demo school's authoriser), the office,
/// and the school's admin (staff, policy, and the Phones page that enrols and revokes phones).
pub const DEMO_OFFICE_STAFF: [&str; 3] = ["office", "head", "admin"];

/// A sign-in made for the demo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoLogin {
    pub name: StaffId,
    pub who: String,
    pub password: String,
}

fn id<T: std::str::FromStr>(text: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    text.parse()
        .expect("the demo's ids, numbers and postcodes are valid")
}

fn staff(id_text: &str, name: &str, roles: &[Role], phone: &str) -> StaffMember {
    StaffMember {
        id: id(id_text),
        name: name.into(),
        roles: roles.to_vec(),
        phone: id(phone),
        dbs: Some(DbsCheck {
            level: DbsLevel::EnhancedWithBarredList,
            checked_on: NaiveDate::from_ymd_opt(2025, 9, 1).expect("valid date"),
        }),
    }
}

/// A visit of the demo school's to `pupil` at `home` (street, postcode) in Oakfield, on the standard risk
/// assessment.
fn demo_visit(
    visit: &str,
    purpose: VisitPurpose,
    pupil: &Pupil,
    (street, postcode): (&str, &str),
    agreed_time: DateTime<Utc>,
    minutes: u32,
    staff: &[&StaffMember],
) -> Visit {
    Visit {
        id: id(visit),
        school: id(DEMO_SCHOOL),
        purpose,
        pupil: pupil.clone(),
        address: Address {
            lines: vec![street.into(), "Oakfield".into()],
            postcode: id(postcode),
        },
        agreed_time,
        expected_length: PolicyMinutes::new(minutes).expect("the demo's lengths are in range"),
        staff: staff.iter().copied().map(VisitStaff::from).collect(),
        briefing: Briefing::new(RiskAssessment::standard()),
    }
}

/// The headteacher authorises `visit` at `at`.
fn authorise(store: &OfficeStore, visit: &VisitId, at: DateTime<Utc>) -> Result<(), StoreError> {
    store.record_office_event(
        visit,
        &Command::Authorise {
            by: id("head"),
            lone_visit_approved: false,
        },
        at,
    )?;
    Ok(())
}

/// Adds `staff` and `pupil` to the demo school.
fn add_people(
    store: &OfficeStore,
    staff: &[&StaffMember],
    pupil: &Pupil,
) -> Result<(), StoreError> {
    let school: SchoolId = id(DEMO_SCHOOL);
    for member in staff {
        store.add_staff(&school, member)?;
    }
    store.add_pupil(&school, pupil)
}

/// The code phrases the demo school agreed: ordinary sentences about lesson cover.
pub fn demo_code_phrases() -> CodePhrases {
    CodePhrases {
        to_colleague: "Could you remind me to phone school about the lesson cover rota?".into(),
        to_reception: "Please can someone check the lesson cover rota for me?".into(),
    }
}

/// Fills an empty store with the demo school and enrols Sam's and Alex's phones directly, returning their
/// credentials (for `office_url`): for tests.
pub fn seed(
    store: &OfficeStore,
    office_url: &str,
    now: DateTime<Utc>,
) -> Result<DemoPhones, StoreError> {
    seed_with_policy(store, office_url, now, Preset::PrimaryHeadteacher)
}

/// [`seed`] on the given policy preset.
pub fn seed_with_policy(
    store: &OfficeStore,
    office_url: &str,
    now: DateTime<Utc>,
    preset: Preset,
) -> Result<DemoPhones, StoreError> {
    seed_school_with_policy(store, now, preset)?;
    let me = enrol(store, "phone-sam", &id("sam"), office_url, now)?;
    let partner = enrol(store, "phone-alex", &id("alex"), office_url, now)?;
    Ok(DemoPhones { me, partner })
}

/// Fills an empty store with the demo school, its staff (an admin among them), pupils and visits, and no
/// phones: what the demo office starts with (its phones enrol themselves).
pub fn seed_school(store: &OfficeStore, now: DateTime<Utc>) -> Result<(), StoreError> {
    seed_school_with_policy(store, now, Preset::PrimaryHeadteacher)?;
    store.add_staff(
        &id(DEMO_SCHOOL),
        &staff("admin", "Dee Admin", &[Role::Admin], "07700 900007"),
    )
}

fn seed_school_with_policy(
    store: &OfficeStore,
    now: DateTime<Utc>,
    preset: Preset,
) -> Result<(), StoreError> {
    let school_id: SchoolId = id(DEMO_SCHOOL);
    let school = School {
        id: school_id.clone(),
        name: "Oakfield Primary (demo)".into(),
        office_phone: id("01632 960000"),
        time_zone: Default::default(),
    };
    let mut policy = preset.policy();
    // The demo school's own code phrases, as its admin set them (the primary preset ships none).
    policy.code_phrases.get_or_insert_with(demo_code_phrases);
    store.add_school(&school, &policy)?;

    let head = staff(
        "head",
        "Priya Head",
        &[Role::Headteacher, Role::Dsl],
        "07700 900001",
    );
    let office = staff("office", "Olu Office", &[Role::Office], "07700 900002");
    let sam = staff("sam", "Sam Taylor", &[Role::VisitingStaff], "07700 900003");
    let alex = staff(
        "alex",
        "Alex Morgan",
        &[Role::VisitingStaff],
        "07700 900004",
    );
    let jo = staff("jo", "Jo Rivers", &[Role::VisitingStaff], "07700 900005");
    for member in [&head, &office, &sam, &alex, &jo] {
        store.add_staff(&school_id, member)?;
    }
    let pupils = [
        Pupil {
            id: id("pupil-ava"),
            name: "Ava B.".into(),
        },
        Pupil {
            id: id("pupil-leo"),
            name: "Leo C.".into(),
        },
        Pupil {
            id: id("pupil-mia"),
            name: "Mia D.".into(),
        },
    ];
    for pupil in &pupils {
        store.add_pupil(&school_id, pupil)?;
    }

    // Visits start on the next quarter hour so the demo always has something coming up today; in the last
    // quarter hour of the school's day that would be tomorrow, off today's board, so then they start now.
    let this_minute = now
        .with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(now);
    let next_quarter = this_minute + TimeDelta::minutes(15 - i64::from(now.minute() % 15));
    let day = |at| school.time_zone.local(at).date_naive();
    let base = if day(next_quarter) == day(now) {
        next_quarter
    } else {
        this_minute
    };
    let mut first_briefing = Briefing::new(RiskAssessment::standard());
    first_briefing.pets =
        "Large dog: the family have agreed to keep it in the garden during the visit.".into();
    first_briefing.pupil_needs = "Asthma; carries an inhaler.".into();
    first_briefing.family =
        "Mum works nights; visit agreed for the morning. English is a second language at home."
            .into();
    first_briefing.area = "Quiet residential street; limited parking.".into();
    first_briefing.parking = "Use the lit bays by the shops, facing the main road.".into();

    // Each: id, purpose, home (street, postcode), hours after `base`, minutes, Sam's partner.
    let plans = [
        (
            "visit-ava",
            VisitPurpose::SafeAndWellCheck,
            ("12 Elm Row", "OK1 2AB"),
            0,
            45,
            &alex,
        ),
        (
            "visit-leo",
            VisitPurpose::AttendanceSupport,
            ("3 Mill Lane", "OK2 7CD"),
            2,
            60,
            &jo,
        ),
        (
            "visit-mia",
            VisitPurpose::DropOffWork,
            ("Flat 5, 40 Station Road", "OK3 9EF"),
            4,
            30,
            &alex,
        ),
    ];
    let mut visits: Vec<Visit> = plans
        .into_iter()
        .zip(&pupils)
        .map(|((visit, purpose, home, hours, minutes, partner), pupil)| {
            let at = base + TimeDelta::hours(hours);
            demo_visit(visit, purpose, pupil, home, at, minutes, &[&sam, partner])
        })
        .collect();
    visits[0].briefing = first_briefing;
    for visit in &visits[..2] {
        store.add_visit(visit)?;
    }
    // The third was requested by the office and still waits for the headteacher. Its request names the
    // office as the responsible contact, so it can be authorised whatever the hour the demo is run at.
    let requested = &visits[2];
    store.add_requested_visit(
        requested,
        &RequestDetails {
            requested_by: office.id.clone(),
            requested_at: now,
            timing: timing(
                &policy,
                &school.time_zone,
                requested.agreed_time,
                requested.expected_length,
            ),
            responsible_contact: Some((office.name.clone(), office.phone.clone())),
            contact_email: None,
            authoriser_override: None,
        },
    )?;
    // The first two are authorised.
    for visit in &visits[..2] {
        authorise(store, &visit.id, now)?;
    }

    Ok(())
}

fn enrol(
    store: &OfficeStore,
    device: &str,
    staff: &StaffId,
    office_url: &str,
    now: DateTime<Utc>,
) -> Result<PhoneConfig, StoreError> {
    let device: DeviceId = id(device);
    let token = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    store.enrol_device(&device, staff, &token, now)?;
    Ok(PhoneConfig {
        office_url: office_url.into(),
        device_id: device,
        device_token: token,
    })
}

/// Whether the store holds the demo school (so `--demo` may carry on with it).
pub fn is_demo(store: &OfficeStore) -> Result<bool, StoreError> {
    match store.policy(&id(DEMO_SCHOOL)) {
        Ok(_) => Ok(true),
        Err(StoreError::Invalid(_)) => Ok(false),
        Err(other) => Err(other),
    }
}

/// Gives the demo's office staff sign-ins with fresh random passwords (replacing any earlier ones) and
/// returns them. Nothing here is a fixed password: each run of a new demo makes its own.
pub fn add_office_logins(
    store: &OfficeStore,
    now: DateTime<Utc>,
) -> Result<Vec<DemoLogin>, StoreError> {
    let school: SchoolId = id(DEMO_SCHOOL);
    let staff = store.school_staff(&school)?;
    let mut logins = Vec::new();
    for name in DEMO_OFFICE_STAFF {
        let name: StaffId = id(name);
        let Some(member) = staff.iter().find(|m| m.id == name) else {
            return Err(StoreError::Invalid(format!(
                "the demo school has no staff {name}"
            )));
        };
        // 20 hex characters (80 random bits): long enough, and easy to copy from the file.
        let password: String = crate::logins::new_secret().chars().take(20).collect();
        store.set_office_password(&name, &password, now)?;
        logins.push(DemoLogin {
            who: format!(
                "{} ({})",
                member.name,
                member
                    .roles
                    .iter()
                    .map(|r| r.label())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            name,
            password,
        });
    }
    Ok(logins)
}

/// Writes the demo sign-ins for a person to read, readable only by the file's owner on Unix.
pub fn write_office_logins(path: &Path, logins: &[DemoLogin]) -> std::io::Result<()> {
    let mut text = String::from(
        "Doorstep demo: office board sign-ins. Open the office's address (it is logged at start;\n\
         http://127.0.0.1:8750/ by default) and sign in with one of these. The passwords were made for\n\
         this demo database; delete this file and restart with --demo to make new ones.\n\n",
    );
    for login in logins {
        text.push_str(&format!(
            "sign-in name: {}\npassword:     {}\n  ({})\n\n",
            login.name, login.password, login.who
        ));
    }
    // Owner-only from the moment it exists, so the passwords are never readable by others.
    doorstep_core::private_file::write_replacing(path, text.as_bytes())
}

/// Adds an authorised visit nobody sets off for, so a newcomer sees the office notice by itself: Dee Ward
/// and Ola Ade were due at 10 Mill Lane 8 minutes before `now` and no phone has said anything (no app runs
/// for them; their phones are not even enrolled). The office expects word that each has set off by the
/// agreed time plus the policy's first check-in (10 minutes), so 2 minutes after `now` the board says
/// "Not heard from Dee Ward" and "Not heard from Ola Ade". Returns the visit's id.
pub fn seed_visit_nobody_set_off_for(
    store: &OfficeStore,
    now: DateTime<Utc>,
) -> Result<VisitId, StoreError> {
    let dee = staff("dee", "Dee Ward", &[Role::VisitingStaff], "07700 900007");
    let ola = staff("ola", "Ola Ade", &[Role::VisitingStaff], "07700 900008");
    let pupil = Pupil {
        id: id("pupil-isla"),
        name: "Isla F.".into(),
    };
    add_people(store, &[&dee, &ola], &pupil)?;
    let visit = demo_visit(
        "visit-isla",
        VisitPurpose::SafeAndWellCheck,
        &pupil,
        ("10 Mill Lane", "OK5 3GH"),
        now - TimeDelta::minutes(8),
        45,
        &[&dee, &ola],
    );
    store.add_visit(&visit)?;
    authorise(store, &visit.id, now - TimeDelta::hours(3))?;
    Ok(visit.id)
}

/// Adds a visit already under way when the demo starts, so a newcomer sees the office raise an overdue by
/// itself: Jo Rivers and Kim Patel went in 12 minutes ago and their phones have been silent since (no app runs
/// for them). The first check-in was due 10 minutes after they went in, so with the policy's 5 minutes' grace
/// the board shows OVERDUE 3 minutes after `now`. Returns the visit's id.
pub fn seed_visit_under_way(
    store: &OfficeStore,
    now: DateTime<Utc>,
) -> Result<VisitId, StoreError> {
    let kim = staff("kim", "Kim Patel", &[Role::VisitingStaff], "07700 900006");
    let pupil = Pupil {
        id: id("pupil-zac"),
        name: "Zac E.".into(),
    };
    add_people(store, &[&kim], &pupil)?;
    let jo = store
        .school_staff_member(&id(DEMO_SCHOOL), &id("jo"))?
        .ok_or_else(|| StoreError::Invalid("the demo school has no staff jo".into()))?;
    let went_in = now - TimeDelta::minutes(12);
    let visit = demo_visit(
        "visit-zac",
        VisitPurpose::AttendanceSupport,
        &pupil,
        ("7 Brook Close", "OK4 1QC"),
        went_in,
        45,
        &[&jo, &kim],
    );
    let visit_id = visit.id.clone();
    store.add_visit(&visit)?;
    authorise(store, &visit_id, now - TimeDelta::hours(2))?;
    // Their phones' events, as those phones sent them before falling silent.
    for (who, device) in [("jo", "phone-jo"), ("kim", "phone-kim")] {
        let token = enrol(store, device, &id(who), "", now)?.device_token;
        let phone = store
            .authenticate(&token, now)?
            .ok_or_else(|| StoreError::Invalid(format!("demo device {device} did not enrol")))?;
        let mut events = vec![
            (
                went_in - TimeDelta::minutes(20),
                VisitEvent::Departed {
                    staff: id(who),
                    expected_arrival: went_in,
                    expected_end: went_in + TimeDelta::minutes(45),
                },
            ),
            (
                went_in - TimeDelta::minutes(1),
                VisitEvent::ArrivedOutside { staff: id(who) },
            ),
        ];
        if who == "jo" {
            events.push((
                went_in,
                VisitEvent::VisitStarted {
                    by: id("jo"),
                    staff: vec![id("jo"), id("kim")],
                },
            ));
        }
        let envelopes: Vec<EventEnvelope> = events
            .into_iter()
            .enumerate()
            .map(|(n, (at, event))| EventEnvelope {
                id: EventId::new_v7(),
                device: phone.id.clone(),
                seq: DeviceSeq::new(n as u64 + 1).expect("small sequence numbers are valid"),
                visit: visit_id.clone(),
                recorded_at: at,
                event,
            })
            .collect();
        store
            .ingest_raising(&phone, &envelopes, now, now)
            .map_err(|e| match e {
                IngestError::Store(e) => e,
                IngestError::Rejected(r) => {
                    StoreError::Invalid(format!("demo events refused: {r:?}"))
                }
            })?;
    }
    Ok(visit_id)
}
