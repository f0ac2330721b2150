//! Notification targets and deliveries as a store area ([`Deliveries`]), so the notifier
//! ([`crate::notify::Notifier`]) runs on either backend: an office on PostgreSQL tells the same people the
//! same words, through the same retries, as one on SQLite.
//!
//! Both stores plan with the same pure functions ([`crate::notify`]'s message module: which step goes to
//! which target, and every payload's exact bytes); a store only reads the facts they need and records what
//! they return. With several offices on one database, each delivery is claimed by one of them
//! ([`Deliveries::claim_due_deliveries`]) and a step or notice reaches a target once (the tables' unique
//! keys), whichever office planned it first.

use std::future::Future;

use chrono::{DateTime, Utc};
use doorstep_core::ids::{SchoolId, VisitId};

use super::{store_area, StoreError};
use crate::notices::Notice;
use crate::notify::{Attempt, Delivery, DueDelivery, NewTarget, NotificationTarget};

/// Where a school's alarms and notices are sent, and each delivery's life: recorded, claimed, attempted,
/// delivered or stopped.
pub trait Deliveries: Send + Sync + 'static {
    /// Adds a place to send a school's alarms and safeguarding notices; it hears of alarm steps from `now`
    /// on. Refused (changing nothing) for an unknown school, a bad address, or an address the school has
    /// already.
    fn add_notification_target(
        &self,
        school: &SchoolId,
        target: &NewTarget,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<NotificationTarget, StoreError>> + Send;

    /// Every notification of an alarm, in the order they were recorded.
    fn deliveries_for_alarm(
        &self,
        alarm: i64,
    ) -> impl Future<Output = Result<Vec<Delivery>, StoreError>> + Send;

    /// Records a delivery, due at once and with its payload (email `From:` `smtp_from`), for every step of
    /// an alarm nobody is handling yet and every live target that wants it and has none yet; then the same
    /// for safeguarding notices. Returns how many were recorded.
    fn record_deliveries(
        &self,
        now: DateTime<Utc>,
        smtp_from: Option<&str>,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// Stops what is still waiting for an alarm someone is handling or for a removed target, noting each
    /// alarm step's in the alarm's log. Returns how many.
    fn cancel_acknowledged_deliveries(
        &self,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// Takes every delivery due at `now` and holds it until `until`, so no other worker (or office) sends
    /// it meanwhile; one cut off mid-send is tried again then.
    fn claim_due_deliveries(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<DueDelivery>, StoreError>> + Send;

    /// Writes down one attempt on the delivery, and for an alarm step in the alarm's log.
    fn record_attempt(
        &self,
        delivery: &DueDelivery,
        now: DateTime<Utc>,
        attempt: Attempt,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// When the next waiting delivery is due.
    fn next_delivery_due(
        &self,
    ) -> impl Future<Output = Result<Option<DateTime<Utc>>, StoreError>> + Send;

    /// Every notification of a safeguarding notice, in the order they were recorded.
    fn deliveries_for_notice(
        &self,
        notice: i64,
    ) -> impl Future<Output = Result<Vec<Delivery>, StoreError>> + Send;

    /// A visit's safeguarding notices, oldest first.
    fn notices_for_visit(
        &self,
        visit: &VisitId,
    ) -> impl Future<Output = Result<Vec<Notice>, StoreError>> + Send;

    /// A school's notices raised at or after `since`, newest first.
    fn notices_since(
        &self,
        school: &SchoolId,
        since: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<Notice>, StoreError>> + Send;

    /// Every school's notification targets, removed ones included, oldest first.
    fn notification_targets(
        &self,
    ) -> impl Future<Output = Result<Vec<NotificationTarget>, StoreError>> + Send;

    /// A school's targets, its visits' contacts and removed ones included, oldest first.
    fn school_notification_targets(
        &self,
        school: &SchoolId,
    ) -> impl Future<Output = Result<Vec<NotificationTarget>, StoreError>> + Send;

    /// Removes a school's target, by `by` at `now`: nothing more is sent to it, and its past deliveries
    /// stay readable. Refused for another school's target or one already removed.
    fn remove_notification_target(
        &self,
        school: &SchoolId,
        id: i64,
        by: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<NotificationTarget, StoreError>> + Send;

    /// How many live school-wide targets a school has (its visits' own contacts not counted).
    fn live_school_target_count(
        &self,
        school: &SchoolId,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;
}

store_area! {
    impl Deliveries {
        fn add_notification_target(
            &self,
            school: &SchoolId,
            target: &NewTarget,
            now: DateTime<Utc>,
        ) -> Result<NotificationTarget, StoreError>;
        fn deliveries_for_alarm(&self, alarm: i64) -> Result<Vec<Delivery>, StoreError>;
        fn record_deliveries(&self, now: DateTime<Utc>, smtp_from: Option<&str>) -> Result<usize, StoreError>;
        fn cancel_acknowledged_deliveries(&self, now: DateTime<Utc>) -> Result<usize, StoreError>;
        fn claim_due_deliveries(
            &self,
            now: DateTime<Utc>,
            until: DateTime<Utc>,
        ) -> Result<Vec<DueDelivery>, StoreError>;
        fn record_attempt(
            &self,
            delivery: &DueDelivery,
            now: DateTime<Utc>,
            attempt: Attempt,
        ) -> Result<(), StoreError>;
        fn next_delivery_due(&self) -> Result<Option<DateTime<Utc>>, StoreError>;
        fn deliveries_for_notice(&self, notice: i64) -> Result<Vec<Delivery>, StoreError>;
        fn notices_for_visit(&self, visit: &VisitId) -> Result<Vec<Notice>, StoreError>;
        fn notices_since(&self, school: &SchoolId, since: DateTime<Utc>) -> Result<Vec<Notice>, StoreError>;
        fn notification_targets(&self) -> Result<Vec<NotificationTarget>, StoreError>;
        fn school_notification_targets(
            &self,
            school: &SchoolId,
        ) -> Result<Vec<NotificationTarget>, StoreError>;
        fn remove_notification_target(
            &self,
            school: &SchoolId,
            id: i64,
            by: &str,
            now: DateTime<Utc>,
        ) -> Result<NotificationTarget, StoreError>;
        fn live_school_target_count(&self, school: &SchoolId) -> Result<usize, StoreError>;
    }
}
