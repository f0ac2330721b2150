//! The school's phones as a store area ([`Phones`]): enrolment codes issued and redeemed, each phone's
//! tokens checked, offered afresh and replaced, a phone revoked or suspected cloned, and the device log.
//! Both stores decide with the same functions ([`crate::devices`]: what a token is worth at a moment,
//! whether a code can be redeemed, when a renewal is due, the log's and the audit log's words).

use std::future::Future;

use chrono::{DateTime, Utc};
use doorstep_core::ids::{DeviceId, SchoolId, StaffId};
use doorstep_core::protocol::DeviceCredential;

use super::{store_area, Device, StoreError};
use crate::devices::{
    DeviceLogEntry, DeviceRow, Enrolled, IssuedCode, PendingCode, RedeemError, TokenCheck,
};
use crate::sms::{DeviceKeys, SmsOutcome, SmsRecord};

/// The school's phones and their credentials.
pub trait Phones: Send + Sync + 'static {
    /// A one-time enrolment code for `staff` of `school`, issued by `by`; an unused earlier code for the
    /// same person is withdrawn.
    fn issue_enrolment_code(
        &self,
        school: &SchoolId,
        staff: &StaffId,
        by: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<IssuedCode, StoreError>> + Send;

    /// Redeems a code as typed: a new phone for the code's member of staff with its first token, the code
    /// used up in the same transaction.
    fn redeem_enrolment_code(
        &self,
        typed: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Enrolled, RedeemError>> + Send;

    /// Enrols a phone with a token the caller made (the demo, benchmarks and tests).
    fn enrol_device(
        &self,
        device: &DeviceId,
        staff: &StaffId,
        token: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// What a bearer token is worth at `now` (see [`SqliteStore::check_token`]).
    fn check_token(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<TokenCheck, StoreError>> + Send;

    /// A fresh token for `device` once its current one is old enough, or `None`.
    fn offer_renewal(
        &self,
        device: &Device,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<DeviceCredential>, StoreError>> + Send;

    /// Marks `device` clone suspected (the first reason stays) and logs it.
    fn suspect_clone(
        &self,
        device: &Device,
        reason: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Revokes `device` of `school`: `false` if the school has no such phone, refused if already revoked.
    fn revoke_device(
        &self,
        school: &SchoolId,
        device: &DeviceId,
        by: &StaffId,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The school's phones, newest first.
    fn school_devices(
        &self,
        school: &SchoolId,
    ) -> impl Future<Output = Result<Vec<DeviceRow>, StoreError>> + Send;

    /// The school's codes that can still be redeemed at `now`.
    fn pending_enrolment_codes(
        &self,
        school: &SchoolId,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<PendingCode>, StoreError>> + Send;

    /// The school's device log, newest first, at most `limit` entries.
    fn device_log(
        &self,
        school: &SchoolId,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<DeviceLogEntry>, StoreError>> + Send;

    /// The enrolled, unrevoked device and the SHA-256 of each token it may hold at `now`, from which its
    /// texts' key is derived ([`crate::sms`]).
    fn device_for_texts(
        &self,
        device: &DeviceId,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<DeviceKeys>, StoreError>> + Send;

    /// Records a text the SMS gateway handed over and what became of it.
    fn record_sms(
        &self,
        now: DateTime<Utc>,
        from: &str,
        text: &str,
        outcome: SmsOutcome,
        detail: &str,
        ids: Option<(DeviceId, String)>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every text recorded, oldest first.
    fn sms_messages(&self) -> impl Future<Output = Result<Vec<SmsRecord>, StoreError>> + Send;
}

store_area! {
    impl Phones {
        fn issue_enrolment_code(
            &self,
            school: &SchoolId,
            staff: &StaffId,
            by: &str,
            now: DateTime<Utc>,
        ) -> Result<IssuedCode, StoreError>;
        fn redeem_enrolment_code(&self, typed: &str, now: DateTime<Utc>) -> Result<Enrolled, RedeemError>;
        fn enrol_device(
            &self,
            device: &DeviceId,
            staff: &StaffId,
            token: &str,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError>;
        fn check_token(&self, token: &str, now: DateTime<Utc>) -> Result<TokenCheck, StoreError>;
        fn offer_renewal(
            &self,
            device: &Device,
            now: DateTime<Utc>,
        ) -> Result<Option<DeviceCredential>, StoreError>;
        fn suspect_clone(&self, device: &Device, reason: &str, now: DateTime<Utc>) -> Result<(), StoreError>;
        fn revoke_device(
            &self,
            school: &SchoolId,
            device: &DeviceId,
            by: &StaffId,
            now: DateTime<Utc>,
        ) -> Result<bool, StoreError>;
        fn school_devices(&self, school: &SchoolId) -> Result<Vec<DeviceRow>, StoreError>;
        fn pending_enrolment_codes(
            &self,
            school: &SchoolId,
            now: DateTime<Utc>,
        ) -> Result<Vec<PendingCode>, StoreError>;
        fn device_log(&self, school: &SchoolId, limit: u32) -> Result<Vec<DeviceLogEntry>, StoreError>;
        fn device_for_texts(&self, device: &DeviceId, now: DateTime<Utc>) -> Result<Option<DeviceKeys>, StoreError>;
        fn record_sms(
            &self,
            now: DateTime<Utc>,
            from: &str,
            text: &str,
            outcome: SmsOutcome,
            detail: &str,
            ids: Option<(DeviceId, String)>,
        ) -> Result<(), StoreError>;
        fn sms_messages(&self) -> Result<Vec<SmsRecord>, StoreError>;
    }
}

/// The SQL both stores run for [`crate::devices::DeviceColumns`], a school's phones, ending where each
/// puts its placeholder for the school.
macro_rules! school_devices_sql {
    () => {
        "SELECT d.id, d.staff_id, s.name, d.enrolled_at, d.enrolled_by, d.last_seen_at, d.revoked_at,
                d.revoked_by, d.clone_suspected_at, d.clone_reason,
                (SELECT MAX(t.expires_at) FROM device_tokens t
                 WHERE t.device_id = d.id AND t.state = 'current')
         FROM devices d JOIN staff s ON s.id = d.staff_id
         WHERE s.school_id = "
    };
}
pub(crate) use school_devices_sql;

/// The SQL both stores run for a [`crate::devices::TokenRow`], ending where each puts its placeholder for
/// the token's hash.
macro_rules! token_row_sql {
    () => {
        "SELECT t.device_id, t.state, t.issued_at, t.expires_at, t.replaced_at, d.staff_id,
                s.school_id, d.revoked_at, d.last_seen_at
         FROM device_tokens t JOIN devices d ON d.id = t.device_id
              JOIN staff s ON s.id = d.staff_id
         WHERE t.token_sha256 = "
    };
}
pub(crate) use token_row_sql;
