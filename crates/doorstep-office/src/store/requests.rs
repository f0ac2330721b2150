//! Requesting visits as a store area ([`Requests`]): a requested visit with its office-only details and
//! its responsible contact's notification target, the authoriser's override, the attendance view's
//! absences and concerns, and the visits agreed in a period. Both stores build each record and audit
//! entry with the same functions ([`crate::requests`]).

use std::collections::BTreeSet;
use std::future::Future;

use chrono::{DateTime, Utc};
use doorstep_core::domain::{Address, Visit};
use doorstep_core::ids::{PupilId, SchoolId, StaffId, VisitId};

use super::{store_area, StoreError};
use crate::requests::{Absence, Concern, RequestDetails};

/// Visits requested at the office, and the attendance records that say which are due.
pub trait Requests: Send + Sync + 'static {
    /// Stores a requested visit (every assigned person's DBS checked) with its office-only details and
    /// its responsible contact's target, all or nothing.
    fn add_requested_visit(
        &self,
        visit: &Visit,
        details: &RequestDetails,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The office-only details of a requested visit; `None` for other visits.
    fn request_details(
        &self,
        visit: &VisitId,
    ) -> impl Future<Output = Result<Option<RequestDetails>, StoreError>> + Send;

    /// Keeps the authoriser's reason for going ahead with an evening visit the policy advises against.
    fn set_authoriser_override(
        &self,
        visit: &VisitId,
        reason: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The address of the pupil's latest visit, if any.
    fn last_known_address(
        &self,
        pupil: &PupilId,
    ) -> impl Future<Output = Result<Option<Address>, StoreError>> + Send;

    /// The school's absences and the pupils with a concern noted.
    fn absences(
        &self,
        school: &SchoolId,
    ) -> impl Future<Output = Result<(Vec<Absence>, BTreeSet<PupilId>), StoreError>> + Send;

    /// The school's pupils with a concern noted: when, and by whom.
    fn absence_concerns(
        &self,
        school: &SchoolId,
    ) -> impl Future<Output = Result<Vec<Concern>, StoreError>> + Send;

    /// Notes or takes off a concern about a pupil of `school`, with its audit entry; a change that
    /// changes nothing is not an error and is not logged.
    fn set_absence_concern(
        &self,
        school: &SchoolId,
        pupil: &PupilId,
        concern: bool,
        by: &StaffId,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The school's visits agreed in `[from, to)`, in agreed-time order.
    fn visit_ids_between(
        &self,
        school: &SchoolId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<VisitId>, StoreError>> + Send;
}

store_area! {
    impl Requests {
        fn add_requested_visit(&self, visit: &Visit, details: &RequestDetails) -> Result<(), StoreError>;
        fn request_details(&self, visit: &VisitId) -> Result<Option<RequestDetails>, StoreError>;
        fn set_authoriser_override(&self, visit: &VisitId, reason: &str) -> Result<(), StoreError>;
        fn last_known_address(&self, pupil: &PupilId) -> Result<Option<Address>, StoreError>;
        fn absences(&self, school: &SchoolId) -> Result<(Vec<Absence>, BTreeSet<PupilId>), StoreError>;
        fn absence_concerns(&self, school: &SchoolId) -> Result<Vec<Concern>, StoreError>;
        fn set_absence_concern(
            &self,
            school: &SchoolId,
            pupil: &PupilId,
            concern: bool,
            by: &StaffId,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError>;
        fn visit_ids_between(
            &self,
            school: &SchoolId,
            from: DateTime<Utc>,
            to: DateTime<Utc>,
        ) -> Result<Vec<VisitId>, StoreError>;
    }
}
