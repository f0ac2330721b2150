//! The school's world: staff and their roles, pupils, addresses, visits with their risk assessment and the
//! briefing staff read before they leave.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use strum::VariantArray;

pub use crate::contact::{PhoneNumber, Postcode};
use crate::ids::{PupilId, SchoolId, StaffId, VisitId};
use crate::policy::PolicyMinutes;
pub use crate::zone::SchoolTimeZone;

/// What a member of staff does in Doorstep.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, VariantArray,
)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    VisitingStaff,
    Office,
    Headteacher,
    SafeguardingLead,
    /// The designated safeguarding lead (or a deputy), told at once of any concern.
    Dsl,
    Admin,
}

impl Role {
    /// Every role, in the order they are declared (and forms offer them).
    pub const ALL: &'static [Role] = <Role as VariantArray>::VARIANTS;

    pub fn label(self) -> &'static str {
        match self {
            Role::VisitingStaff => "visiting staff",
            Role::Office => "office",
            Role::Headteacher => "headteacher",
            Role::SafeguardingLead => "safeguarding lead",
            Role::Dsl => "designated safeguarding lead",
            Role::Admin => "admin",
        }
    }
}

/// A DBS check on a member of staff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DbsCheck {
    /// "enhanced" or "enhanced_with_barred_list".
    pub level: DbsLevel,
    pub checked_on: NaiveDate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, VariantArray)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum DbsLevel {
    Basic,
    Standard,
    Enhanced,
    EnhancedWithBarredList,
}

impl DbsLevel {
    /// Every level, lowest first (the order forms offer them).
    pub const ALL: &'static [DbsLevel] = <DbsLevel as VariantArray>::VARIANTS;

    /// The level in words, as it reads inside a sentence ("enhanced with barred list").
    pub fn label(self) -> &'static str {
        match self {
            DbsLevel::Basic => "basic",
            DbsLevel::Standard => "standard",
            DbsLevel::Enhanced => "enhanced",
            DbsLevel::EnhancedWithBarredList => "enhanced with barred list",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct School {
    pub id: SchoolId,
    pub name: String,
    /// The number staff ring, where reception hears the code phrase.
    #[serde(deserialize_with = "crate::contact::stored::phone")]
    pub office_phone: PhoneNumber,
    /// The school's time zone: every time a person reads is on this clock. Phones from before it was
    /// sent (and schools stored before it was kept) are in Europe/London.
    #[serde(default)]
    pub time_zone: SchoolTimeZone,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct StaffMember {
    pub id: StaffId,
    pub name: String,
    pub roles: Vec<Role>,
    #[serde(deserialize_with = "crate::contact::stored::phone")]
    pub phone: PhoneNumber,
    pub dbs: Option<DbsCheck>,
}

impl StaffMember {
    /// Whether this person may be assigned to a home visit: an enhanced check is the appropriate level for
    /// work in families' homes.
    pub fn may_visit_homes(&self) -> bool {
        matches!(
            self.dbs.as_ref().map(|check| check.level),
            Some(DbsLevel::Enhanced | DbsLevel::EnhancedWithBarredList)
        )
    }
}

/// Why a visit is made: the two policies' lists, merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, VariantArray)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum VisitPurpose {
    /// Getting to know a family before their child starts Reception.
    PreReceptionRelationship,
    /// Establishing a pupil is safe after an unexplained absence.
    SafeAndWellCheck,
    AttendanceSupport,
    /// The parent cannot come in, or the conversation is better held at home.
    MeetParentAtHome,
    /// Taking a pupil home or collecting them, at the authoriser's discretion.
    TakePupilHome,
    /// Dropping off or collecting work or equipment.
    DropOffWork,
    /// Keeping in touch during a long absence such as illness.
    KeepInTouchDuringAbsence,
    /// Checking a suspected term-time holiday.
    SuspectedTermTimeHoliday,
    /// A pupil refusing to come into school.
    SchoolRefusal,
    /// Every other means of contact has failed.
    ContactFailedElsewhere,
    /// Supporting a pupil educated at home in exceptional circumstances.
    HomeEducation,
}

impl VisitPurpose {
    /// Every purpose, in the order they are declared (and the policy form offers them).
    pub const ALL: &'static [VisitPurpose] = <VisitPurpose as VariantArray>::VARIANTS;

    pub fn label(self) -> &'static str {
        match self {
            VisitPurpose::PreReceptionRelationship => "Pre-Reception visit",
            VisitPurpose::SafeAndWellCheck => "Safe and well check",
            VisitPurpose::AttendanceSupport => "Attendance support",
            VisitPurpose::MeetParentAtHome => "Meeting a parent at home",
            VisitPurpose::TakePupilHome => "Taking a pupil home",
            VisitPurpose::DropOffWork => "Dropping off work",
            VisitPurpose::KeepInTouchDuringAbsence => "Keeping in touch during absence",
            VisitPurpose::SuspectedTermTimeHoliday => "Checking a suspected term-time holiday",
            VisitPurpose::SchoolRefusal => "Pupil refusing school",
            VisitPurpose::ContactFailedElsewhere => "No other contact possible",
            VisitPurpose::HomeEducation => "Pupil educated at home",
        }
    }

    /// Seed 000's list of reasons.
    pub fn from_primary_policy() -> Vec<VisitPurpose> {
        vec![
            VisitPurpose::PreReceptionRelationship,
            VisitPurpose::SafeAndWellCheck,
            VisitPurpose::AttendanceSupport,
            VisitPurpose::MeetParentAtHome,
            VisitPurpose::TakePupilHome,
            VisitPurpose::DropOffWork,
            VisitPurpose::KeepInTouchDuringAbsence,
        ]
    }

    /// Seed 001's list of reasons.
    pub fn from_academy_policy() -> Vec<VisitPurpose> {
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
        ]
    }
}

/// The hazards of the lone-working risk assessment table (seed 001), which seed 000's risk assessment covers too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, VariantArray)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Hazard {
    AggressiveOrViolentPerson,
    Driving,
    PublicAreasAndCarParks,
    IllnessOrInjury,
    DogsAndOtherAnimals,
}

impl Hazard {
    /// Every hazard of the standard table, in its order.
    pub const ALL: &'static [Hazard] = <Hazard as VariantArray>::VARIANTS;

    pub fn label(self) -> &'static str {
        match self {
            Hazard::AggressiveOrViolentPerson => "Aggressive or violent person",
            Hazard::Driving => "Driving",
            Hazard::PublicAreasAndCarParks => "Public areas and car parks",
            Hazard::IllnessOrInjury => "Illness or injury",
            Hazard::DogsAndOtherAnimals => "Dogs and other animals",
        }
    }

    /// Starting controls for a new assessment, in Doorstep's words; the authoriser edits them per visit.
    pub fn default_controls(self) -> &'static [&'static str] {
        match self {
            Hazard::AggressiveOrViolentPerson => &[
                "Safeguarding team told before the visit",
                "Visit in a pair where the home circumstances are known",
                "Sign out with reception; phone carried",
            ],
            Hazard::Driving => &[
                "Roadworthy vehicle and breakdown cover",
                "Torch and charged phone in the car",
                "Nothing valuable left on view",
            ],
            Hazard::PublicAreasAndCarParks => &[
                "Walk away from confrontation and call for help",
                "Valuables out of sight; hand them over if threatened",
            ],
            Hazard::IllnessOrInjury => &[
                "Medication carried as prescribed",
                "Call emergency services if needed; report injuries on return",
            ],
            Hazard::DogsAndOtherAnimals => &[
                "Ask in advance for animals to be kept in another room or outside",
                "Avoid contact and sudden movements near animals",
            ],
        }
    }
}

/// One line of a risk assessment: a hazard (standard or specific to this visit) and how it is controlled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AssessedRisk {
    /// A standard hazard, or `None` for one specific to this visit described in `description`.
    pub hazard: Option<Hazard>,
    pub description: String,
    pub controls: Vec<String>,
}

/// The authoriser's assessment of a visit's risks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RiskAssessment {
    pub risks: Vec<AssessedRisk>,
    /// Set only when the visit is made alone: the authoriser's reasons it is safe.
    pub lone_visit_assessment: Option<String>,
    /// Who wrote or confirmed the controls (the person requesting the visit, or who last updated them).
    #[serde(default)]
    pub assessed_by: Option<StaffId>,
    /// When they did.
    #[serde(default)]
    pub assessed_on: Option<NaiveDate>,
}

impl RiskAssessment {
    /// An assessment with every standard hazard and its default controls, ready to edit.
    pub fn standard() -> Self {
        Self {
            risks: Hazard::ALL
                .iter()
                .map(|&hazard| AssessedRisk {
                    hazard: Some(hazard),
                    description: hazard.label().to_owned(),
                    controls: hazard
                        .default_controls()
                        .iter()
                        .map(|&c| c.to_owned())
                        .collect(),
                })
                .collect(),
            lone_visit_assessment: None,
            assessed_by: None,
            assessed_on: None,
        }
    }
}

/// What staff read before they leave. Built only from a risk assessment, so a briefing without one cannot exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Briefing {
    risk_assessment: RiskAssessment,
    /// Pets at the address; empty when none are known.
    pub pets: String,
    /// The pupil's medical needs and behaviour.
    pub pupil_needs: String,
    /// Family circumstances and cultural sensitivities.
    pub family: String,
    /// The area: anything relevant about the street or neighbourhood.
    pub area: String,
    /// Where to park, when there is specific advice for this address.
    pub parking: String,
    /// Taken off the phones: the visit is over (written up after everyone left, or cancelled), so the office
    /// sends an empty briefing in its place and the phone keeps nothing of it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub withdrawn: bool,
    /// Which version of the briefing this is: 0 as first authorised, one more each time the office changes
    /// the risk assessment or briefing (staff read it again before setting off).
    #[serde(default)]
    pub version: u32,
}

impl Briefing {
    pub fn new(risk_assessment: RiskAssessment) -> Self {
        Self {
            risk_assessment,
            pets: String::new(),
            pupil_needs: String::new(),
            family: String::new(),
            area: String::new(),
            parking: String::new(),
            withdrawn: false,
            version: 0,
        }
    }

    /// What the office sends instead of a finished visit's briefing: nothing but the fact it was withdrawn.
    pub fn withdrawn() -> Self {
        Self {
            withdrawn: true,
            ..Self::new(RiskAssessment {
                risks: Vec::new(),
                lone_visit_assessment: None,
                assessed_by: None,
                assessed_on: None,
            })
        }
    }

    pub fn risk_assessment(&self) -> &RiskAssessment {
        &self.risk_assessment
    }

    /// The rules every visit's briefing repeats, from both policies.
    pub const STANDING_RULES: [&'static str; 10] = [
        "Note the exit routes before you go in, and again once inside",
        "Park somewhere well lit, facing away, so you need not reverse",
        "Carry your ID card and show it on arrival; do not wear it round your neck",
        "Phone charged and switched on",
        "Never go in without an appropriate adult present",
        "Never go in at the invitation of a child who is on their own",
        "Do not go upstairs or into a child's bedroom",
        "Do not talk with siblings unless an adult is present",
        "No valuables or cash",
        "If you feel unsafe or uncomfortable, leave at once",
    ];
}

/// A pupil, as much as a visiting member of staff needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Pupil {
    pub id: PupilId,
    pub name: String,
}

/// A postal address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Address {
    pub lines: Vec<String>,
    #[serde(deserialize_with = "crate::contact::stored::postcode")]
    pub postcode: Postcode,
}

impl Address {
    pub fn one_line(&self) -> String {
        let mut parts = self.lines.clone();
        parts.push(self.postcode.to_string());
        parts.join(", ")
    }
}

/// The authoriser's decision on a visit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Authorisation {
    pub by: StaffId,
    pub at: DateTime<Utc>,
    /// True only when the authoriser explicitly approved a visit by one person.
    pub lone_visit_approved: bool,
}

/// A planned home visit: what the office sends to the phones of the staff assigned to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Visit {
    pub id: VisitId,
    pub school: SchoolId,
    pub purpose: VisitPurpose,
    pub pupil: Pupil,
    pub address: Address,
    /// The time agreed with the family.
    pub agreed_time: DateTime<Utc>,
    pub expected_length: PolicyMinutes,
    /// Everyone going, in the order the office listed them.
    pub staff: Vec<VisitStaff>,
    pub briefing: Briefing,
}

impl Visit {
    pub fn expected_end(&self) -> DateTime<Utc> {
        self.agreed_time + self.expected_length.duration()
    }

    pub fn staff_ids(&self) -> Vec<StaffId> {
        self.staff.iter().map(|s| s.id.clone()).collect()
    }
}

/// A member of staff on a visit, with what their partner needs to reach them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct VisitStaff {
    pub id: StaffId,
    pub name: String,
    #[serde(deserialize_with = "crate::contact::stored::phone")]
    pub phone: PhoneNumber,
}

impl From<&StaffMember> for VisitStaff {
    /// A member of staff as a visit names them.
    fn from(member: &StaffMember) -> Self {
        Self {
            id: member.id.clone(),
            name: member.name.clone(),
            phone: member.phone.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;

    /// Each list holds every value once, and every value's stored name reads back as itself.
    fn listed_once_and_named<T>(all: &[T], expected: usize)
    where
        T: Copy + PartialEq + std::fmt::Debug + Serialize + DeserializeOwned,
    {
        assert_eq!(all.len(), expected);
        for (i, value) in all.iter().enumerate() {
            assert!(!all[..i].contains(value), "{value:?} is listed twice");
            let name = serde_json::to_string(value).unwrap();
            assert_eq!(serde_json::from_str::<T>(&name).unwrap(), *value);
        }
    }

    #[test]
    fn every_enum_list_holds_each_value_once_in_declaration_order() {
        listed_once_and_named(Role::ALL, 6);
        listed_once_and_named(VisitPurpose::ALL, 11);
        listed_once_and_named(DbsLevel::ALL, 4);
        listed_once_and_named(Hazard::ALL, 5);
        // Forms offer them in the order they are declared.
        assert_eq!(Role::ALL.first(), Some(&Role::VisitingStaff));
        assert_eq!(Role::ALL.last(), Some(&Role::Admin));
        assert_eq!(VisitPurpose::ALL.last(), Some(&VisitPurpose::HomeEducation));
        assert_eq!(DbsLevel::ALL.first(), Some(&DbsLevel::Basic));
    }
}
