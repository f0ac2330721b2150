//! People and settings an admin keeps, as a store area ([`People`]): staff records, pupils and absences
//! imported from the school's MIS, and the school's policy and clock. Both stores parse an import, decide
//! whose an id is, report each row and word each audit entry with the same functions
//! ([`crate::people`]).

use std::future::Future;

use chrono::{DateTime, NaiveDate, Utc};
use doorstep_core::domain::{Pupil, School, SchoolTimeZone, StaffMember};
use doorstep_core::ids::{SchoolId, StaffId};
use doorstep_core::policy::Policy;

use super::{store_area, StoreError};
use crate::people::{Absence, ImportKind, ImportReport, PupilRecord, Saved, SettingsChange};

/// The school's staff, pupils, absences and settings.
pub trait People: Send + Sync + 'static {
    /// Imports pupils into `school`, or absences of its pupils, from the MIS's CSV: a file without the
    /// right header is refused whole, otherwise valid rows are stored together and invalid ones reported.
    fn import_csv(
        &self,
        kind: ImportKind,
        school: &SchoolId,
        text: &str,
        today: NaiveDate,
    ) -> impl Future<Output = Result<ImportReport, StoreError>> + Send;

    /// The school's pupils with their details, by name.
    fn pupil_records(
        &self,
        school: &SchoolId,
    ) -> impl Future<Output = Result<Vec<PupilRecord>, StoreError>> + Send;

    /// The school's pupils, by name.
    fn school_pupils(
        &self,
        school: &SchoolId,
    ) -> impl Future<Output = Result<Vec<Pupil>, StoreError>> + Send;

    /// The school's absences on days `from` to `to` (both included), by date then pupil.
    fn absences_for(
        &self,
        school: &SchoolId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> impl Future<Output = Result<Vec<Absence>, StoreError>> + Send;

    /// Adds a member of staff to `school`, or replaces the record of one already there; another school's
    /// id is refused.
    fn save_staff(
        &self,
        school: &SchoolId,
        member: &StaffMember,
    ) -> impl Future<Output = Result<Saved, StoreError>> + Send;

    /// A member of staff of `school`, if there is one with this id.
    fn school_staff_member(
        &self,
        school: &SchoolId,
        staff: &StaffId,
    ) -> impl Future<Output = Result<Option<StaffMember>, StoreError>> + Send;

    /// Everyone at the school, by name.
    fn school_staff(
        &self,
        school: &SchoolId,
    ) -> impl Future<Output = Result<Vec<StaffMember>, StoreError>> + Send;

    /// The school's policy.
    fn policy(&self, school: &SchoolId) -> impl Future<Output = Result<Policy, StoreError>> + Send;

    /// Makes an admin's change to the school's policy or clock, with its audit entry, all or nothing; an
    /// invalid policy is never stored.
    fn change_settings(
        &self,
        school: &SchoolId,
        change: SettingsChange<'_>,
        by: &StaffId,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The school as it is stored (its name, office number and time zone); an unknown school is refused.
    fn school(&self, school: &SchoolId) -> impl Future<Output = Result<School, StoreError>> + Send;

    /// Replaces the school's policy, after [`Policy::validate`]: an invalid policy is never stored.
    fn set_policy(
        &self,
        school: &SchoolId,
        policy: &Policy,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Moves a school to another time zone (the stored instants do not change).
    fn set_school_time_zone(
        &self,
        school: &SchoolId,
        zone: SchoolTimeZone,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The school a member of staff belongs to, if they exist.
    fn school_of_staff(
        &self,
        staff: &StaffId,
    ) -> impl Future<Output = Result<Option<SchoolId>, StoreError>> + Send;
}

store_area! {
    impl People {
        fn import_csv(
            &self,
            kind: ImportKind,
            school: &SchoolId,
            text: &str,
            today: NaiveDate,
        ) -> Result<ImportReport, StoreError>;
        fn pupil_records(&self, school: &SchoolId) -> Result<Vec<PupilRecord>, StoreError>;
        fn school_pupils(&self, school: &SchoolId) -> Result<Vec<Pupil>, StoreError>;
        fn absences_for(
            &self,
            school: &SchoolId,
            from: NaiveDate,
            to: NaiveDate,
        ) -> Result<Vec<Absence>, StoreError>;
        fn save_staff(&self, school: &SchoolId, member: &StaffMember) -> Result<Saved, StoreError>;
        fn school_staff_member(
            &self,
            school: &SchoolId,
            staff: &StaffId,
        ) -> Result<Option<StaffMember>, StoreError>;
        fn school_staff(&self, school: &SchoolId) -> Result<Vec<StaffMember>, StoreError>;
        fn policy(&self, school: &SchoolId) -> Result<Policy, StoreError>;
        fn change_settings(
            &self,
            school: &SchoolId,
            change: SettingsChange<'_>,
            by: &StaffId,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError>;
        fn school(&self, school: &SchoolId) -> Result<School, StoreError>;
        fn set_policy(&self, school: &SchoolId, policy: &Policy) -> Result<(), StoreError>;
        fn set_school_time_zone(&self, school: &SchoolId, zone: SchoolTimeZone) -> Result<(), StoreError>;
        fn school_of_staff(&self, staff: &StaffId) -> Result<Option<SchoolId>, StoreError>;
    }
}
