//! Requesting visits: the policy's rules on when a visit is (school hours, evening), the office-only details
//! kept beside a requested visit, and the attendance rule that says which absent pupils are due a visit.
//!
//! The rules are pure functions of the policy and the times given, so they are tested without a clock; the
//! stores only read and write the rows (`store/sqlite/requests.rs`, `store/postgres/requests.rs`).
//!
//! Times: school hours and "evening" are read on the school's own clock (`SchoolTimeZone`), whatever
//! zone the server runs in; the pages show the same clock. School days are counted as weekdays (Monday to
//! Friday): the store does not know term dates or bank holidays.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc, Weekday};
use doorstep_core::domain::{PhoneNumber, SchoolTimeZone};
use doorstep_core::ids::{PupilId, SchoolId, StaffId};
use doorstep_core::policy::{EveningVisits, Policy, PolicyMinutes};

use crate::audit;
use crate::store::{parse_id, stored_time, StoreError};

/// The longest visit the office accepts a request for, in minutes (a whole working day).
pub const MAX_VISIT_MINUTES: u32 = 480;

/// Where a visit falls against the policy's day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Starts before school hours, ends after them, or is on a Saturday or Sunday.
    pub out_of_hours: bool,
    /// Starts or runs on past the policy's start of the evening.
    pub evening: bool,
}

impl Timing {
    /// A named responsible contact must check on the staff.
    pub fn needs_responsible_contact(&self, policy: &Policy) -> bool {
        (self.out_of_hours || self.evening) && policy.out_of_hours_needs_responsible_contact
    }

    /// The authoriser must override the policy explicitly, with a reason.
    pub fn needs_authoriser_override(&self, policy: &Policy) -> bool {
        self.evening && policy.evening_visits == EveningVisits::AdvisedAgainst
    }
}

/// Where a visit starting at `start` and lasting `length` falls against the policy's day, on the school's
/// clock.
pub fn timing(
    policy: &Policy,
    zone: &SchoolTimeZone,
    start: DateTime<Utc>,
    length: PolicyMinutes,
) -> Timing {
    let end = zone.local(start + length.duration());
    let start = zone.local(start);
    let weekend = matches!(start.weekday(), Weekday::Sat | Weekday::Sun);
    // A visit running past midnight is certainly outside school hours and into the evening.
    let same_day = end.date_naive() == start.date_naive();
    let out_of_hours = weekend
        || !same_day
        || start.time() < policy.school_hours.start
        || end.time() > policy.school_hours.end;
    let evening =
        !same_day || end.time() > policy.evening_starts || start.time() >= policy.evening_starts;
    Timing {
        out_of_hours,
        evening,
    }
}

/// What the office keeps beside a requested visit, and not on the phones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestDetails {
    pub requested_by: StaffId,
    pub requested_at: DateTime<Utc>,
    pub timing: Timing,
    /// The person who checks on the staff outside school hours: name and phone.
    pub responsible_contact: Option<(String, PhoneNumber)>,
    /// The responsible contact's email, checked (`notify::parse_email_address`): with one, they are told
    /// of the visit's alarms by email.
    pub contact_email: Option<String>,
    /// The authoriser's reason for going ahead with an evening visit the policy advises against.
    pub authoriser_override: Option<String>,
}

/// The responsible contact's email as the request form gives it: optional, checked, and only beside a named
/// contact with a phone.
pub fn contact_email(text: &str, has_contact: bool) -> Result<Option<String>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if !has_contact {
        return Err(
            "An email for the responsible contact needs their name and phone number too.".into(),
        );
    }
    crate::notify::parse_email_address(text)
        .map(Some)
        .map_err(|e| format!("The responsible contact's email: {e}."))
}

/// One day of absence as the school's records hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Absence {
    pub pupil: PupilId,
    pub date: NaiveDate,
    pub reason_code: String,
    pub contact_made: bool,
}

impl Absence {
    /// No reason given and nobody reached: the absence the policy's day-3 rule is about. The register's
    /// codes for this are "N" (no reason yet) and "O" (unauthorised, unexplained); an empty code counts too.
    pub fn unexplained_without_contact(&self) -> bool {
        !self.contact_made && matches!(self.reason_code.trim(), "" | "N" | "O" | "n" | "o")
    }
}

/// The visit's responsible contact as a notification target of that visit alone, when an email for them
/// is known: they are then told of every alarm of the visit. `None` without an email (the board then says
/// to ring them).
pub(crate) fn responsible_contact_target(
    details: &RequestDetails,
) -> Result<Option<crate::notify::NewTarget>, StoreError> {
    let (Some((name, _)), Some(email)) = (&details.responsible_contact, &details.contact_email)
    else {
        return Ok(None);
    };
    // No levels and no roles: a visit's contact is told of that visit's alarms only.
    crate::notify::NewTarget::email(email, crate::notify::WantedLevels::NONE)
        .and_then(|t| t.named(name))
        .map(Some)
        .map_err(|e| StoreError::Invalid(e.to_string()))
}

/// A request's stored columns: requested by, at, out of hours, evening, the contact's name and phone,
/// the authoriser's override and the contact's email.
pub(crate) type RequestColumns = (
    String,
    String,
    bool,
    bool,
    Option<String>,
    Option<PhoneNumber>,
    Option<String>,
    Option<String>,
);

/// A request's details from its stored columns.
pub(crate) fn request_details_from(
    (by, at, out_of_hours, evening, name, phone, reason, email): RequestColumns,
) -> Result<RequestDetails, StoreError> {
    Ok(RequestDetails {
        requested_by: parse_id(&by)?,
        requested_at: stored_time(&at)?,
        timing: Timing {
            out_of_hours,
            evening,
        },
        responsible_contact: name.zip(phone),
        contact_email: email,
        authoriser_override: reason,
    })
}

/// A concern from its stored columns (pupil, noted at, noted by).
pub(crate) fn concern_from(
    (pupil, at, by): (String, String, Option<String>),
) -> Result<Concern, StoreError> {
    Ok(Concern {
        pupil: parse_id(&pupil)?,
        noted_at: stored_time(&at)?,
        noted_by: by.as_deref().map(parse_id).transpose()?,
    })
}

/// The refusal of a concern about a pupil who is not the school's.
pub(crate) fn no_such_pupil(pupil: &PupilId) -> StoreError {
    StoreError::Invalid(format!("there is no pupil “{pupil}” at this school"))
}

/// The audit entry of a concern noted (`concern`) or taken off by `by`.
pub(crate) fn concern_entry(
    school: &SchoolId,
    pupil: &PupilId,
    concern: bool,
    by: &StaffId,
) -> audit::NewEntry {
    let action = if concern {
        audit::Action::NotedAbsenceConcern
    } else {
        audit::Action::ClearedAbsenceConcern
    };
    audit::NewEntry::new(school, by, action).record(format!("pupil {pupil}"))
}

/// A concern noted about a pupil: their visit is due on the policy's concern day, contact made or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Concern {
    pub pupil: PupilId,
    pub noted_at: DateTime<Utc>,
    /// `None` for a concern noted before who noted it was kept.
    pub noted_by: Option<StaffId>,
}

/// A pupil the attendance rule says is due a visit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitDue {
    pub pupil: PupilId,
    /// School days (weekdays) of unexplained absence without contact, in a row, up to the latest.
    pub days: u32,
    pub first_day: NaiveDate,
    pub concern: bool,
}

fn previous_weekday(date: NaiveDate) -> NaiveDate {
    let mut day = date - TimeDelta::days(1);
    while matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
        day -= TimeDelta::days(1);
    }
    day
}

/// The pupils whose current run of absence has reached the policy's visit day: a run of unexplained
/// absence with no contact reaching `absence_visit_day`, or, for a pupil with a concern noted, a run of
/// any absence reaching `absence_visit_day_with_concern` (the policy's "regardless of whether contact has
/// been made": with a concern, a reason given or a parent reached does not make the visit less due).
///
/// A run counts consecutive weekdays; a weekend does not break it, a day with contact made or a reason
/// given does (unless there is a concern). Only a run still going counts: its latest day is `today` or the
/// school day before it.
pub fn visits_due(
    policy: &Policy,
    absences: &[Absence],
    concerns: &BTreeSet<PupilId>,
    today: NaiveDate,
) -> Vec<VisitDue> {
    let mut days: BTreeMap<&PupilId, BTreeSet<NaiveDate>> = BTreeMap::new();
    for absence in absences.iter().filter(|a| a.date <= today) {
        if absence.unexplained_without_contact() || concerns.contains(&absence.pupil) {
            days.entry(&absence.pupil).or_default().insert(absence.date);
        }
    }
    // A day that also has a row with contact made is explained, whatever else was recorded for it (but
    // not for a pupil with a concern: contact made or not, they are due).
    for absence in absences {
        if !absence.unexplained_without_contact() && !concerns.contains(&absence.pupil) {
            if let Some(dates) = days.get_mut(&absence.pupil) {
                dates.remove(&absence.date);
            }
        }
    }
    let still_going = [today, previous_weekday(today)];
    let mut due = Vec::new();
    for (pupil, dates) in days {
        let Some(&latest) = dates.iter().next_back() else {
            continue;
        };
        if !still_going.contains(&latest) {
            continue;
        }
        let mut first = latest;
        let mut count = 1;
        while dates.contains(&previous_weekday(first)) {
            first = previous_weekday(first);
            count += 1;
        }
        let concern = concerns.contains(pupil);
        let threshold = if concern {
            policy.absence_visit_day_with_concern
        } else {
            policy.absence_visit_day
        };
        if count >= u32::from(threshold) {
            due.push(VisitDue {
                pupil: pupil.clone(),
                days: count,
                first_day: first,
                concern,
            });
        }
    }
    due
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveTime;
    use doorstep_core::policy::Preset;

    fn auckland() -> SchoolTimeZone {
        SchoolTimeZone::parse("Pacific/Auckland").unwrap()
    }

    /// A wall-clock time at a school in `zone`, as the instant it is.
    fn at(zone: &SchoolTimeZone, y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        zone.instant(
            NaiveDate::from_ymd_opt(y, m, d)
                .unwrap()
                .and_time(NaiveTime::from_hms_opt(h, min, 0).unwrap()),
        )
        .unwrap()
    }

    fn local(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        at(&SchoolTimeZone::LONDON, y, m, d, h, min)
    }

    fn minutes(m: u32) -> PolicyMinutes {
        PolicyMinutes::new(m).unwrap()
    }

    #[test]
    fn school_hours_evening_and_weekends_on_the_policys_clock() {
        let primary = Preset::PrimaryHeadteacher.policy();
        let academy = Preset::AcademySafeguardingLead.policy();
        // Tuesday 24 November 2026; school 08:30 to 15:30, evening from 18:00.
        let cases = [
            (local(2026, 11, 24, 10, 0), 60, false, false),
            (local(2026, 11, 24, 8, 30), 420, false, false),
            (local(2026, 11, 24, 8, 0), 30, true, false),
            (local(2026, 11, 24, 15, 0), 45, true, false),
            (local(2026, 11, 24, 17, 30), 45, true, true),
            (local(2026, 11, 24, 18, 0), 30, true, true),
            (local(2026, 11, 28, 10, 0), 30, true, false),
            (local(2026, 11, 24, 23, 30), 60, true, true),
        ];
        for (start, length, out_of_hours, evening) in cases {
            let t = timing(&primary, &SchoolTimeZone::LONDON, start, minutes(length));
            assert_eq!(
                t,
                Timing {
                    out_of_hours,
                    evening
                },
                "{start} for {length} min"
            );
            assert_eq!(t.needs_responsible_contact(&primary), out_of_hours);
            assert!(!t.needs_authoriser_override(&primary));
            assert_eq!(
                timing(&academy, &SchoolTimeZone::LONDON, start, minutes(length))
                    .needs_authoriser_override(&academy),
                evening
            );
        }
    }

    #[test]
    fn school_hours_are_judged_on_the_schools_clock_not_the_servers() {
        let policy = Preset::PrimaryHeadteacher.policy();
        let auckland = auckland();
        // 10:00 on a Tuesday in Auckland is 21:00 on Monday in London (and in UTC, where servers often
        // run): a school-hours visit there, whatever the server's clock says. 19:00 in Auckland is evening
        // there, though it is 06:00 in London.
        let ten_am = at(&auckland, 2026, 11, 24, 10, 0);
        let seven_pm = at(&auckland, 2026, 11, 24, 19, 0);
        let london = SchoolTimeZone::LONDON;
        // (the school's clock, the start, minutes, out of hours, evening)
        let cases = [
            (&auckland, ten_am, 60, false, false),
            (&london, ten_am, 60, true, true),
            (&auckland, seven_pm, 30, true, true),
        ];
        for (zone, start, length, out_of_hours, evening) in cases {
            let expected = Timing {
                out_of_hours,
                evening,
            };
            let t = timing(&policy, zone, start, minutes(length));
            assert_eq!(t, expected, "{start} on {}'s clock", zone.name());
        }
        // Saturday morning in Auckland is Friday evening in London: a weekend there.
        let saturday = at(&auckland, 2026, 11, 28, 10, 0);
        assert!(timing(&policy, &auckland, saturday, minutes(30)).out_of_hours);
    }

    fn absence(pupil: &str, date: NaiveDate, code: &str, contact: bool) -> Absence {
        Absence {
            pupil: pupil.parse().unwrap(),
            date,
            reason_code: code.into(),
            contact_made: contact,
        }
    }

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
    }

    #[test]
    fn the_day_three_rule_counts_weekdays_and_stops_at_contact_or_a_reason() {
        let policy = Preset::PrimaryHeadteacher.policy();
        // Monday 23 November 2026 is "today". 19 and 20 are Thursday and Friday.
        let today = day(23);
        let absences = vec![
            // Three school days across a weekend: due.
            absence("pupil-ava", day(19), "N", false),
            absence("pupil-ava", day(20), "O", false),
            absence("pupil-ava", day(23), "", false),
            // Three days but the family were reached: not due.
            absence("pupil-leo", day(19), "N", true),
            absence("pupil-leo", day(20), "N", true),
            absence("pupil-leo", day(23), "N", true),
            // Two days only: not due, unless there is a concern.
            absence("pupil-mia", day(20), "N", false),
            absence("pupil-mia", day(23), "N", false),
            // Illness reported on the middle day breaks the run.
            absence("pupil-kai", day(18), "N", false),
            absence("pupil-kai", day(19), "I", false),
            absence("pupil-kai", day(20), "N", false),
            absence("pupil-kai", day(23), "N", false),
            // An old run that ended last week: not due now.
            absence("pupil-zoe", day(10), "N", false),
            absence("pupil-zoe", day(11), "N", false),
            absence("pupil-zoe", day(12), "N", false),
        ];
        let due = visits_due(&policy, &absences, &BTreeSet::new(), today);
        let names: Vec<&str> = due.iter().map(|d| d.pupil.as_str()).collect();
        assert_eq!(names, ["pupil-ava"]);
        assert_eq!((due[0].days, due[0].first_day), (3, day(19)));

        let concerns = BTreeSet::from(["pupil-mia".parse().unwrap()]);
        let due = visits_due(&policy, &absences, &concerns, today);
        let names: Vec<&str> = due.iter().map(|d| d.pupil.as_str()).collect();
        assert_eq!(names, ["pupil-ava", "pupil-mia"]);
        assert!(due[1].concern);

        // With a concern, contact made does not take the visit away (the policy's "regardless of whether
        // contact has been made"): Leo is due from the first day, his whole run counted.
        let concerns = BTreeSet::from(["pupil-leo".parse().unwrap()]);
        let due = visits_due(&policy, &absences, &concerns, today);
        let leo = due
            .iter()
            .find(|d| d.pupil.as_str() == "pupil-leo")
            .expect("Leo is due");
        assert_eq!((leo.days, leo.first_day, leo.concern), (3, day(19), true));
        let one_day = [absence("pupil-leo", day(23), "I", true)];
        let due = visits_due(&policy, &one_day, &concerns, today);
        assert_eq!(
            due.len(),
            1,
            "on the first day, with a reason given and contact made"
        );
        assert!(visits_due(&policy, &one_day, &BTreeSet::new(), today).is_empty());
    }
}
