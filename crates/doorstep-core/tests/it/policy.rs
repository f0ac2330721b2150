//! The two policy presets pinned field by field to the seed policy each number came from, plus
//! `Policy::validate` and `PolicyMinutes` range checks (directly and through serde).

use chrono::NaiveTime;
use doorstep_core::domain::{Hazard, Role, VisitPurpose};
use doorstep_core::policy::{
    CodePhrases, EveningVisits, Policy, PolicyError, PolicyMinutes, Preset, SchoolHours,
};

use crate::support::at_min;

/// One pinned fact: the field, what the preset holds, what the seed says it should hold, and why.
struct Row {
    field: &'static str,
    actual: String,
    expected: String,
    source: &'static str,
}

macro_rules! row {
    ($field:expr, $expected:expr, $source:literal) => {
        Row {
            field: stringify!($field),
            actual: format!("{:?}", $field),
            expected: format!("{:?}", $expected),
            source: $source,
        }
    };
}

/// Checks every row and reports all mismatches at once, each with the seed it should follow.
fn check(preset: Preset, rows: &[Row]) {
    let wrong: Vec<String> = rows
        .iter()
        .filter(|r| r.actual != r.expected)
        .map(|r| {
            format!(
                "  {}: got {}, expected {} ({})",
                r.field, r.actual, r.expected, r.source
            )
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{preset:?} differs from its seed:\n{}",
        wrong.join("\n")
    );
}

fn hm(hour: u32, minute: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(hour, minute, 0).unwrap()
}

fn mins(policy_minutes: PolicyMinutes) -> u32 {
    policy_minutes.get()
}

#[test]
fn primary_headteacher_preset_follows_seed_000() {
    // Destructured without `..`: a new policy field fails to compile here until it is pinned.
    let Policy {
        preset,
        authoriser,
        lone_visit_approver,
        staff_per_visit,
        pair_waits_outside_until_all_arrived,
        first_check_in_after_start,
        check_in_interval,
        max_wait_for_family,
        overdue_grace,
        escalate_to_authoriser_after,
        school_hours:
            SchoolHours {
                start: school_start,
                end: school_end,
            },
        out_of_hours_needs_responsible_contact,
        evening_starts,
        evening_visits,
        code_phrases,
        absence_visit_day,
        absence_visit_day_with_concern,
        dbs_check_required,
        animals_secured_or_cancel,
        purposes,
        standard_hazards,
        record_system,
        safeguarding_concerns_to,
        write_up_due_after_leaving,
        escalate_further_after,
        delete_briefings_after_days_offline,
    } = Preset::PrimaryHeadteacher.policy();

    check(
        Preset::PrimaryHeadteacher,
        &[
            row!(preset, Some(Preset::PrimaryHeadteacher), "seed 000 is the primary school's policy"),
            row!(authoriser, Role::Headteacher, "seed 000: the head approves every home visit"),
            row!(lone_visit_approver, Role::Headteacher, "seed 000: only the head can decide one person may go alone"),
            row!(staff_per_visit, 2u8, "seed 000: nearly always at least two staff go"),
            row!(pair_waits_outside_until_all_arrived, true, "not in seed 000; Doorstep applies seed 001's wait-outside rule to every pair"),
            row!(mins(first_check_in_after_start), 10u32, "seed 000: the office rings ten minutes past the scheduled start"),
            row!(mins(check_in_interval), 60u32, "seed 000: after that, staff report in every hour"),
            row!(mins(max_wait_for_family), 20u32, "seed 000: if the family is not there, wait 20 minutes at most, then cancel"),
            row!(mins(overdue_grace), 5u32, "seed 000 gives no grace period; Doorstep's default"),
            row!(mins(escalate_to_authoriser_after), 5u32, "seed 000 says tell the head as soon as possible; Doorstep's default"),
            row!(school_start, hm(8, 30), "seed 000 names school hours without times; Doorstep's default start"),
            row!(school_end, hm(15, 30), "seed 000 names school hours without times; Doorstep's default end"),
            row!(out_of_hours_needs_responsible_contact, true, "seed 000: outside school hours only with someone named to check on the staff"),
            row!(evening_starts, hm(18, 0), "neither seed defines evening; Doorstep's default"),
            row!(evening_visits, EveningVisits::AsOutOfHours, "seed 000 has no evening rule of its own: evening is just out of hours"),
            row!(code_phrases, None::<CodePhrases>, "seed 000 says a code word will be established but gives none: the school sets its own on first sign-in"),
            row!(absence_visit_day, 3u8, "seed 000: unexplained absence with no contact means a visit on the third day"),
            row!(absence_visit_day_with_concern, 1u8, "seed 000: with any concern the visit may be on the first day"),
            row!(dbs_check_required, true, "seed 000: the right level of DBS check before anyone is assigned"),
            row!(animals_secured_or_cancel, true, "seed 000: dangerous animals shut away or put outside, or no visit"),
            row!(
                purposes,
                vec![
                    VisitPurpose::PreReceptionRelationship,
                    VisitPurpose::SafeAndWellCheck,
                    VisitPurpose::AttendanceSupport,
                    VisitPurpose::MeetParentAtHome,
                    VisitPurpose::TakePupilHome,
                    VisitPurpose::DropOffWork,
                    VisitPurpose::KeepInTouchDuringAbsence,
                ],
                "seed 000's reasons: before Reception, safe and well, attendance, parent at home, pupil or work dropped off, long absence"
            ),
            row!(
                standard_hazards,
                vec![
                    Hazard::AggressiveOrViolentPerson,
                    Hazard::Driving,
                    Hazard::PublicAreasAndCarParks,
                    Hazard::IllnessOrInjury,
                    Hazard::DogsAndOtherAnimals,
                ],
                "seed 000 requires a risk assessment; its hazards are the five of seed 001's table"
            ),
            row!(record_system, "CPOMS", "seed 000: the outcome is written up on CPOMS"),
            row!(safeguarding_concerns_to, Role::Dsl, "seed 000: concerns go to the DSL or a deputy quickly"),
            row!(mins(write_up_due_after_leaving), 240u32, "seed 000 asks for a write-up without a time; Doorstep flags one missing after 4 hours"),
            row!(mins(escalate_further_after), 10u32, "seed 000 names nobody beyond the head; Doorstep's default for a school's deputy and further contacts"),
            row!(delete_briefings_after_days_offline, 7u16, "seed 000 is silent; Doorstep's default: a phone out of touch for a week deletes its briefings"),
        ],
    );
}

#[test]
fn academy_safeguarding_lead_preset_follows_seed_001() {
    let Policy {
        preset,
        authoriser,
        lone_visit_approver,
        staff_per_visit,
        pair_waits_outside_until_all_arrived,
        first_check_in_after_start,
        check_in_interval,
        max_wait_for_family,
        overdue_grace,
        escalate_to_authoriser_after,
        school_hours:
            SchoolHours {
                start: school_start,
                end: school_end,
            },
        out_of_hours_needs_responsible_contact,
        evening_starts,
        evening_visits,
        code_phrases,
        absence_visit_day,
        absence_visit_day_with_concern,
        dbs_check_required,
        animals_secured_or_cancel,
        purposes,
        standard_hazards,
        record_system,
        safeguarding_concerns_to,
        write_up_due_after_leaving,
        escalate_further_after,
        delete_briefings_after_days_offline,
    } = Preset::AcademySafeguardingLead.policy();
    let CodePhrases {
        to_colleague,
        to_reception,
    } = code_phrases.expect("seed 001 agreed its two phrases");

    check(
        Preset::AcademySafeguardingLead,
        &[
            row!(preset, Some(Preset::AcademySafeguardingLead), "seed 001 is the academy's policy"),
            row!(authoriser, Role::SafeguardingLead, "seed 001: the safeguarding lead must authorise every visit"),
            row!(lone_visit_approver, Role::SafeguardingLead, "seed 001 only allows pairs; a lone exception goes to the same authoriser"),
            row!(staff_per_visit, 2u8, "seed 001: home visits are made in pairs"),
            row!(pair_waits_outside_until_all_arrived, true, "seed 001: a pair waits outside until both are there"),
            row!(mins(first_check_in_after_start), 10u32, "not in seed 001; seed 000's ten minutes"),
            row!(mins(check_in_interval), 60u32, "not in seed 001; seed 000's hourly report"),
            row!(mins(max_wait_for_family), 20u32, "not in seed 001; seed 000's 20-minute wait"),
            row!(mins(overdue_grace), 5u32, "neither seed gives a grace period; Doorstep's default"),
            row!(mins(escalate_to_authoriser_after), 5u32, "neither seed gives a number; Doorstep's default"),
            row!(school_start, hm(8, 30), "seed 001 gives no times; Doorstep's default start"),
            row!(school_end, hm(15, 30), "seed 001 gives no times; Doorstep's default end"),
            row!(out_of_hours_needs_responsible_contact, true, "not in seed 001; seed 000's responsible-contact rule"),
            row!(evening_starts, hm(18, 0), "neither seed defines evening; Doorstep's default"),
            row!(evening_visits, EveningVisits::AdvisedAgainst, "seed 001 strongly recommends nobody visits in the evening"),
            row!(to_colleague, "I need to call school and let them know I need cover for my lesson", "seed 001's agreed phrase to alert a colleague in the room"),
            row!(to_reception, "I am on a home visit and I need cover for my lesson", "seed 001's agreed phrase to tell reception on the phone"),
            row!(absence_visit_day, 3u8, "not in seed 001; seed 000's third day"),
            row!(absence_visit_day_with_concern, 1u8, "not in seed 001; seed 000's first day with a concern"),
            row!(dbs_check_required, true, "seed 001 says nothing of DBS; Doorstep requires it of every school"),
            row!(animals_secured_or_cancel, true, "seed 001: no animals in the room where the meeting happens"),
            row!(
                purposes,
                vec![
                    VisitPurpose::SchoolRefusal,
                    VisitPurpose::AttendanceSupport,
                    VisitPurpose::HomeEducation,
                    VisitPurpose::ContactFailedElsewhere,
                    VisitPurpose::MeetParentAtHome,
                    VisitPurpose::SafeAndWellCheck,
                    VisitPurpose::TakePupilHome,
                    VisitPurpose::DropOffWork,
                    VisitPurpose::KeepInTouchDuringAbsence,
                    VisitPurpose::SuspectedTermTimeHoliday,
                ],
                "seed 001's reasons: refusal, attendance, home education, no other contact, talk at home, safety, taking home, work, long absence, suspected holiday"
            ),
            row!(
                standard_hazards,
                vec![
                    Hazard::AggressiveOrViolentPerson,
                    Hazard::Driving,
                    Hazard::PublicAreasAndCarParks,
                    Hazard::IllnessOrInjury,
                    Hazard::DogsAndOtherAnimals,
                ],
                "seed 001's lone-working risk table: aggression, driving, public areas, illness, animals"
            ),
            row!(record_system, "CPOMS", "seed 001: every visit is logged on CPOMS"),
            row!(safeguarding_concerns_to, Role::SafeguardingLead, "seed 001: concerns go to the safeguarding team"),
            row!(mins(write_up_due_after_leaving), 240u32, "seed 001 asks for a short report on every visit without a time; Doorstep flags one missing after 4 hours"),
            row!(mins(escalate_further_after), 10u32, "seed 001: staff advise the Principal or other senior leaders; Doorstep's default for when they are told"),
            row!(delete_briefings_after_days_offline, 7u16, "seed 001 is silent; Doorstep's default: a phone out of touch for a week deletes its briefings"),
        ],
    );
}

#[test]
fn presets_list_each_purpose_and_hazard_once() {
    for preset in Preset::ALL {
        let policy = preset.policy();
        for (i, purpose) in policy.purposes.iter().enumerate() {
            assert!(
                !policy.purposes[i + 1..].contains(purpose),
                "{preset:?} lists {purpose:?} twice"
            );
        }
        for &hazard in Hazard::ALL {
            assert!(
                policy.standard_hazards.contains(&hazard),
                "{preset:?} misses the standard hazard {hazard:?}"
            );
        }
        assert_eq!(policy.standard_hazards.len(), Hazard::ALL.len());
    }
}

#[test]
fn first_check_in_is_due_ten_minutes_after_the_scheduled_start() {
    for preset in Preset::ALL {
        assert_eq!(
            preset.policy().first_check_in_due(at_min(30)),
            at_min(40),
            "{preset:?}"
        );
    }
}

#[test]
fn both_presets_validate_and_round_trip_through_json() {
    for preset in Preset::ALL {
        let policy = preset.policy();
        assert_eq!(policy.validate(), Ok(()), "{preset:?}");
        let json = serde_json::to_string(&policy).unwrap();
        let back: Policy = serde_json::from_str(&json).unwrap();
        assert_eq!(back, policy, "{preset:?}");
    }
}

type Edit = fn(&mut Policy);

/// Each kind of bad edit a school could make, and the error that must refuse it.
fn bad_edits() -> Vec<(&'static str, Edit, PolicyError)> {
    vec![
        (
            "school day ends when it starts",
            |p| p.school_hours.end = p.school_hours.start,
            PolicyError::SchoolHoursBackwards,
        ),
        (
            "school day ends before it starts",
            |p| {
                p.school_hours = SchoolHours {
                    start: hm(15, 0),
                    end: hm(9, 0),
                }
            },
            PolicyError::SchoolHoursBackwards,
        ),
        (
            "evening starts during school hours",
            |p| p.evening_starts = hm(15, 29),
            PolicyError::EveningBeforeSchoolEnds,
        ),
        (
            "nobody on a visit",
            |p| p.staff_per_visit = 0,
            PolicyError::StaffPerVisit(0),
        ),
        (
            "five on a visit",
            |p| p.staff_per_visit = 5,
            PolicyError::StaffPerVisit(5),
        ),
        (
            "blank phrase for a colleague",
            |p| {
                p.code_phrases = Some(CodePhrases {
                    to_colleague: "  \t".into(),
                    to_reception: "Please check the cover rota".into(),
                })
            },
            PolicyError::EmptyCodePhrase("to a colleague"),
        ),
        (
            "empty phrase for reception",
            |p| {
                p.code_phrases = Some(CodePhrases {
                    to_colleague: "Remind me about the cover rota".into(),
                    to_reception: String::new(),
                })
            },
            PolicyError::EmptyCodePhrase("to reception"),
        ),
        (
            "absence visit on day 0",
            |p| p.absence_visit_day = 0,
            PolicyError::AbsenceDays {
                normal: 0,
                with_concern: 1,
            },
        ),
        (
            "absence visit on day 31",
            |p| p.absence_visit_day = 31,
            PolicyError::AbsenceDays {
                normal: 31,
                with_concern: 1,
            },
        ),
        (
            "concern visit on day 0",
            |p| p.absence_visit_day_with_concern = 0,
            PolicyError::AbsenceDays {
                normal: 3,
                with_concern: 0,
            },
        ),
        (
            "concern visit later than the normal one",
            |p| p.absence_visit_day_with_concern = 4,
            PolicyError::AbsenceDays {
                normal: 3,
                with_concern: 4,
            },
        ),
        (
            "no purposes",
            |p| p.purposes.clear(),
            PolicyError::NoPurposes,
        ),
        (
            "briefings kept forever offline",
            |p| p.delete_briefings_after_days_offline = 0,
            PolicyError::DaysOffline(0),
        ),
        (
            "briefings kept past two months offline",
            |p| p.delete_briefings_after_days_offline = 61,
            PolicyError::DaysOffline(61),
        ),
    ]
}

#[test]
fn validate_refuses_each_kind_of_bad_edit() {
    for preset in Preset::ALL {
        for (what, edit, expected) in bad_edits() {
            let mut policy = preset.policy();
            edit(&mut policy);
            assert_eq!(policy.validate(), Err(expected), "{preset:?}: {what}");
        }
    }
}

#[test]
fn validate_accepts_edits_at_the_edges() {
    let edges: Vec<(&str, Edit)> = vec![
        ("evening starts as school ends", |p| {
            p.evening_starts = p.school_hours.end
        }),
        ("a lone-visit default", |p| p.staff_per_visit = 1),
        ("four on a visit", |p| p.staff_per_visit = 4),
        ("both absence days 1", |p| {
            p.absence_visit_day = 1;
            p.absence_visit_day_with_concern = 1;
        }),
        ("both absence days 30", |p| {
            p.absence_visit_day = 30;
            p.absence_visit_day_with_concern = 30;
        }),
        ("one purpose", |p| p.purposes.truncate(1)),
        ("no standard hazards", |p| p.standard_hazards.clear()),
        ("briefings deleted after a day offline", |p| {
            p.delete_briefings_after_days_offline = 1
        }),
        ("briefings kept sixty days offline", |p| {
            p.delete_briefings_after_days_offline = 60
        }),
    ];
    for preset in Preset::ALL {
        for (what, edit) in &edges {
            let mut policy = preset.policy();
            edit(&mut policy);
            assert_eq!(policy.validate(), Ok(()), "{preset:?}: {what}");
        }
    }
}

#[test]
fn policy_minutes_run_from_one_minute_to_one_day() {
    assert_eq!(
        PolicyMinutes::new(0),
        Err(PolicyError::MinutesOutOfRange(0))
    );
    assert_eq!(
        PolicyMinutes::new(1441),
        Err(PolicyError::MinutesOutOfRange(1441))
    );
    assert_eq!(
        PolicyMinutes::new(u32::MAX),
        Err(PolicyError::MinutesOutOfRange(u32::MAX))
    );
    assert_eq!(PolicyMinutes::new(1).map(PolicyMinutes::get), Ok(1));
    assert_eq!(PolicyMinutes::new(1440).map(PolicyMinutes::get), Ok(1440));
    assert_eq!(PolicyMinutes::MAX, 1440);
    assert_eq!(
        PolicyMinutes::new(90).unwrap().duration(),
        chrono::TimeDelta::minutes(90)
    );
    assert_eq!(
        PolicyMinutes::try_from(0u32),
        Err(PolicyError::MinutesOutOfRange(0))
    );
}

#[test]
fn policy_minutes_are_checked_when_deserialised() {
    for refused in ["0", "1441", "-1", "4294967296", "\"10\"", "10.5"] {
        assert!(
            serde_json::from_str::<PolicyMinutes>(refused).is_err(),
            "{refused} should be refused"
        );
    }
    let error = serde_json::from_str::<PolicyMinutes>("0")
        .unwrap_err()
        .to_string();
    assert!(error.contains("between 1 and 1440"), "{error}");
    assert_eq!(serde_json::from_str::<PolicyMinutes>("1").unwrap().get(), 1);
    assert_eq!(
        serde_json::from_str::<PolicyMinutes>("1440").unwrap().get(),
        1440
    );
    assert_eq!(
        serde_json::to_string(&PolicyMinutes::new(20).unwrap()).unwrap(),
        "20"
    );
}

#[test]
fn a_policy_with_out_of_range_minutes_or_unknown_fields_does_not_deserialise() {
    let good = serde_json::to_value(Preset::PrimaryHeadteacher.policy()).unwrap();
    for (field, value) in [
        ("first_check_in_after_start", 0),
        ("check_in_interval", 1441),
        ("max_wait_for_family", 0),
        ("overdue_grace", 100_000),
        ("escalate_to_authoriser_after", 0),
    ] {
        let mut bad = good.clone();
        bad[field] = serde_json::json!(value);
        assert!(
            serde_json::from_value::<Policy>(bad).is_err(),
            "{field} = {value} should be refused"
        );
    }
    let mut unknown = good.clone();
    unknown["lone_visits_allowed"] = serde_json::json!(true);
    assert!(serde_json::from_value::<Policy>(unknown).is_err());
    assert!(serde_json::from_value::<Policy>(good).is_ok());
}

#[test]
fn a_policy_saved_before_the_days_offline_rule_reads_with_a_week() {
    let mut saved = serde_json::to_value(Preset::AcademySafeguardingLead.policy()).unwrap();
    saved
        .as_object_mut()
        .unwrap()
        .remove("delete_briefings_after_days_offline");
    let policy: Policy = serde_json::from_value(saved).unwrap();
    assert_eq!(policy.delete_briefings_after_days_offline, 7);
}
