//! A school's home-visit policy as data: every number and rule the visit lifecycle, the briefing and the
//! office's escalation read, with the two schools' policies shipped as presets.
//!
//! The presets carry the seeds' facts and numbers (see `../shared/seeds/`); where a seed is silent the field
//! holds Doorstep's default and its doc comment says so.

use chrono::{NaiveTime, TimeDelta};
use serde::{Deserialize, Serialize};

use crate::domain::{Hazard, Role, VisitPurpose};

/// A number of minutes set by policy: 1 to 24 hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(try_from = "u32", into = "u32")]
pub struct PolicyMinutes(u32);

impl PolicyMinutes {
    pub const MAX: u32 = 24 * 60;

    pub fn new(minutes: u32) -> Result<Self, PolicyError> {
        if (1..=Self::MAX).contains(&minutes) {
            Ok(Self(minutes))
        } else {
            Err(PolicyError::MinutesOutOfRange(minutes))
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }

    pub fn duration(self) -> TimeDelta {
        TimeDelta::minutes(i64::from(self.0))
    }
}

crate::checked_number!(PolicyMinutes, u32, PolicyError);

/// Why a policy was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("policy minutes must be between 1 and {max}; got {0}", max = PolicyMinutes::MAX)]
    MinutesOutOfRange(u32),
    #[error("school hours must start before they end")]
    SchoolHoursBackwards,
    #[error("the evening must start at or after the end of school hours")]
    EveningBeforeSchoolEnds,
    #[error("a visit needs at least one member of staff and at most four; got {0}")]
    StaffPerVisit(u8),
    #[error("the code phrase {0} cannot be empty")]
    EmptyCodePhrase(&'static str),
    #[error("the unexplained-absence visit day must be 1 to 30, and the day with a concern no later; got {normal} and {with_concern}")]
    AbsenceDays { normal: u8, with_concern: u8 },
    #[error("the policy must list at least one visit purpose")]
    NoPurposes,
    #[error("a phone deletes its briefings after 1 to {MAX_DAYS_OFFLINE} days without reaching the office; got {0}")]
    DaysOffline(u16),
    #[error("the school's code phrases are not set yet: an admin sets them on the policy page before any visit is authorised")]
    CodePhrasesNotSet,
}

/// The two policies Doorstep ships. Schools may start from either and edit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// From seed 000: a primary school where the headteacher authorises every visit.
    PrimaryHeadteacher,
    /// From seed 001: an academy where the safeguarding lead authorises every visit.
    AcademySafeguardingLead,
}

impl Preset {
    pub const ALL: [Preset; 2] = [Preset::PrimaryHeadteacher, Preset::AcademySafeguardingLead];

    pub fn policy(self) -> Policy {
        match self {
            Preset::PrimaryHeadteacher => primary_headteacher(),
            Preset::AcademySafeguardingLead => academy_safeguarding_lead(),
        }
    }
}

/// What the policy says about visits in the evening.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum EveningVisits {
    /// Treated like any visit outside school hours: allowed with a named responsible contact.
    AsOutOfHours,
    /// The policy advises against them: the authoriser must override explicitly, with a responsible contact.
    AdvisedAgainst,
}

/// The two code phrases: ordinary-sounding sentences that mean "I need help".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CodePhrases {
    /// Said to a colleague in the room: "we should leave" / "get help".
    pub to_colleague: String,
    /// Said to reception on the phone; also the label of the app's discreet alert button.
    pub to_reception: String,
}

/// When the school day runs; visits outside it need a responsible contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SchoolHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

/// Every number and rule a school's home-visit policy sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// The preset this policy started from, if any.
    pub preset: Option<Preset>,
    /// Who approves every visit and its risk assessment.
    pub authoriser: Role,
    /// Who may decide that a visit can be made alone (always with its own risk assessment).
    pub lone_visit_approver: Role,
    /// Staff per visit by default (2: visits are made in pairs).
    pub staff_per_visit: u8,
    /// A pair waits outside until everyone has arrived.
    pub pair_waits_outside_until_all_arrived: bool,
    /// The office's first check-in, after the visit's scheduled start.
    pub first_check_in_after_start: PolicyMinutes,
    /// Then a check-in this often while the visit goes on.
    pub check_in_interval: PolicyMinutes,
    /// The longest the staff wait at the door for the family before cancelling.
    pub max_wait_for_family: PolicyMinutes,
    /// Doorstep's default (the seeds are silent): how long past a missed deadline before "overdue".
    pub overdue_grace: PolicyMinutes,
    /// Doorstep's default (the seeds say "as soon as possible"): how long an unacknowledged overdue
    /// stays with the office before the authoriser is told.
    pub escalate_to_authoriser_after: PolicyMinutes,
    /// Doorstep's default school day (the seeds say "school hours" without times).
    pub school_hours: SchoolHours,
    /// Visits outside school hours need a named responsible contact checking on the staff.
    pub out_of_hours_needs_responsible_contact: bool,
    /// Doorstep's default for when "evening" begins.
    pub evening_starts: NaiveTime,
    pub evening_visits: EveningVisits,
    /// The school's own code phrases. `None` until an admin sets them (the primary preset ships none: a
    /// school's code word must be its own, and one printed in a product would be known to anyone).
    pub code_phrases: Option<CodePhrases>,
    /// An unexplained absence with no contact triggers a visit on this day of absence...
    pub absence_visit_day: u8,
    /// ...or on this day if there is any concern, safeguarding included.
    pub absence_visit_day_with_concern: u8,
    /// Assigned staff must hold an appropriate DBS check.
    pub dbs_check_required: bool,
    /// Pets are kept in another room or outside, or the visit is cancelled.
    pub animals_secured_or_cancel: bool,
    /// Visit purposes staff may choose from.
    pub purposes: Vec<VisitPurpose>,
    /// The hazards every risk assessment must address.
    pub standard_hazards: Vec<Hazard>,
    /// Where the write-up goes (the schools' safeguarding record system).
    pub record_system: String,
    /// Who is told at once about a safeguarding concern, an incident or a "felt unsafe" cancellation.
    pub safeguarding_concerns_to: Role,
    /// Doorstep's default (the seeds say "write up the outcome" without a time): a visit whose write-up is
    /// still missing this long after everyone left is flagged on the board.
    #[serde(default = "default_write_up_due")]
    pub write_up_due_after_leaving: PolicyMinutes,
    /// Doorstep's default: how long after the authoriser was told an alarm nobody has acknowledged goes on
    /// to the school's deputy and further contacts (the academy's Principal or senior leaders).
    #[serde(default = "default_escalate_further")]
    pub escalate_further_after: PolicyMinutes,
    /// Doorstep's default (the seeds are silent): a phone that has not reached the office for this many
    /// days deletes the briefings (and the addresses) it holds by itself, so a lost phone nobody could
    /// revoke carries them no longer. It fetches them again at its next sync.
    #[serde(default = "default_offline_days")]
    pub delete_briefings_after_days_offline: u16,
}

fn default_write_up_due() -> PolicyMinutes {
    minutes(4 * 60)
}

fn default_escalate_further() -> PolicyMinutes {
    minutes(10)
}

/// The most days a school may let a phone keep briefings without reaching the office.
pub const MAX_DAYS_OFFLINE: u16 = 60;

fn default_offline_days() -> u16 {
    7
}

impl Policy {
    /// Checks every number and rule; a school's own edits go through this before they are saved.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.school_hours.start >= self.school_hours.end {
            return Err(PolicyError::SchoolHoursBackwards);
        }
        if self.evening_starts < self.school_hours.end {
            return Err(PolicyError::EveningBeforeSchoolEnds);
        }
        if !(1..=4).contains(&self.staff_per_visit) {
            return Err(PolicyError::StaffPerVisit(self.staff_per_visit));
        }
        if let Some(phrases) = &self.code_phrases {
            if phrases.to_colleague.trim().is_empty() {
                return Err(PolicyError::EmptyCodePhrase("to a colleague"));
            }
            if phrases.to_reception.trim().is_empty() {
                return Err(PolicyError::EmptyCodePhrase("to reception"));
            }
        }
        let (normal, with_concern) = (self.absence_visit_day, self.absence_visit_day_with_concern);
        if !(1..=30).contains(&normal) || with_concern == 0 || with_concern > normal {
            return Err(PolicyError::AbsenceDays {
                normal,
                with_concern,
            });
        }
        if self.purposes.is_empty() {
            return Err(PolicyError::NoPurposes);
        }
        if !(1..=MAX_DAYS_OFFLINE).contains(&self.delete_briefings_after_days_offline) {
            return Err(PolicyError::DaysOffline(
                self.delete_briefings_after_days_offline,
            ));
        }
        Ok(())
    }

    /// The school's code phrases, or why visits cannot go ahead yet: without them there is no discreet way
    /// to ask for help, so the office authorises nothing until an admin has set them.
    pub fn code_phrases(&self) -> Result<&CodePhrases, PolicyError> {
        self.code_phrases
            .as_ref()
            .ok_or(PolicyError::CodePhrasesNotSet)
    }

    /// When the office expects the first check-in of a visit scheduled to start at `scheduled_start`.
    pub fn first_check_in_due(
        &self,
        scheduled_start: chrono::DateTime<chrono::Utc>,
    ) -> chrono::DateTime<chrono::Utc> {
        scheduled_start + self.first_check_in_after_start.duration()
    }
}

fn minutes(value: u32) -> PolicyMinutes {
    PolicyMinutes::new(value).expect("preset minutes are in range")
}

fn time(hour: u32, minute: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(hour, minute, 0).expect("preset times are valid")
}

/// Seed 000: headteacher authorises; pairs unless the headteacher decides a lone visit is safe; office checks in
/// 10 minutes after the scheduled start, then staff report hourly; wait at most 20 minutes; a code word for
/// calls and texts; out-of-hours visits need a responsible contact; attendance visit on day 3 (day 1 with a
/// concern); DBS checks before assignment; dangerous animals secured or the visit is cancelled.
fn primary_headteacher() -> Policy {
    Policy {
        preset: Some(Preset::PrimaryHeadteacher),
        authoriser: Role::Headteacher,
        lone_visit_approver: Role::Headteacher,
        staff_per_visit: 2,
        pair_waits_outside_until_all_arrived: true,
        first_check_in_after_start: minutes(10),
        check_in_interval: minutes(60),
        max_wait_for_family: minutes(20),
        overdue_grace: minutes(5),
        escalate_to_authoriser_after: minutes(5),
        school_hours: SchoolHours {
            start: time(8, 30),
            end: time(15, 30),
        },
        out_of_hours_needs_responsible_contact: true,
        evening_starts: time(18, 0),
        evening_visits: EveningVisits::AsOutOfHours,
        // Seed 000 says a code word "will be established" without giving one: the school sets its own.
        code_phrases: None,
        absence_visit_day: 3,
        absence_visit_day_with_concern: 1,
        dbs_check_required: true,
        animals_secured_or_cancel: true,
        purposes: VisitPurpose::from_primary_policy(),
        standard_hazards: Hazard::ALL.to_vec(),
        record_system: "CPOMS".into(),
        safeguarding_concerns_to: Role::Dsl,
        write_up_due_after_leaving: default_write_up_due(),
        escalate_further_after: default_escalate_further(),
        delete_briefings_after_days_offline: default_offline_days(),
    }
}

/// Seed 001: the safeguarding lead authorises; visits in pairs, waiting outside until all have arrived; two code
/// phrases about lesson cover (one for the colleague, one for reception); evening visits strongly advised
/// against; the lone-working risk assessment's five hazards; CPOMS log alerting leadership.
/// The check-in, wait and absence numbers are not in seed 001: the same numbers as seed 000 are used.
fn academy_safeguarding_lead() -> Policy {
    Policy {
        preset: Some(Preset::AcademySafeguardingLead),
        authoriser: Role::SafeguardingLead,
        lone_visit_approver: Role::SafeguardingLead,
        evening_visits: EveningVisits::AdvisedAgainst,
        // The two phrases seed 001 agreed, as staff and reception already know them.
        code_phrases: Some(CodePhrases {
            to_colleague: "I need to call school and let them know I need cover for my lesson"
                .into(),
            to_reception: "I am on a home visit and I need cover for my lesson".into(),
        }),
        purposes: VisitPurpose::from_academy_policy(),
        safeguarding_concerns_to: Role::SafeguardingLead,
        // Pairs waiting outside, the hazards, DBS checks, animals and CPOMS are seed 001's too, and the
        // same as seed 000's; the numbers seed 001 does not give are seed 000's.
        ..primary_headteacher()
    }
}
