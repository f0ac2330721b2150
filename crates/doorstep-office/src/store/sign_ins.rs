//! Office sign-ins as a store area ([`SignIns`]): a member of staff's password (kept only as an argon2
//! hash), checking it, and the sessions a browser holds (their tokens kept only as SHA-256 hashes). Both
//! stores hash, verify and decide a session's end with the same functions ([`crate::logins`]), and build
//! the signed-in [`OfficeUser`] from the same rows.

use std::future::Future;

use chrono::{DateTime, Utc};
use doorstep_core::ids::StaffId;

use super::{store_area, StoreError};
use crate::logins::{OfficeUser, Session};

/// Who may sign in to the office's pages, and the sessions they hold.
pub trait SignIns: Send + Sync + 'static {
    /// Gives a member of staff an office sign-in, or a new password; their open sessions end. Refused
    /// for a password outside the length bounds and for unknown staff.
    fn set_office_password(
        &self,
        staff: &StaffId,
        password: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The office user whose sign-in name (staff id) and password these are, or `None` for any mismatch
    /// (an unknown name takes as long to refuse as a wrong password).
    fn check_office_password(
        &self,
        name: &str,
        password: &str,
    ) -> impl Future<Output = Result<Option<OfficeUser>, StoreError>> + Send;

    /// Records in the audit log a refused sign-in under a real person's name (an unknown name belongs to
    /// no school's log).
    fn audit_refused_sign_in(
        &self,
        name: &str,
        why: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Starts a session for `staff` under `token` (only its hash is kept); ended sessions are cleared out
    /// on the way.
    fn start_session(
        &self,
        staff: &StaffId,
        token: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Session, StoreError>> + Send;

    /// The live session this token belongs to, if any.
    fn session(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<Session>, StoreError>> + Send;

    /// Ends the session this token belongs to (signing out); an unknown one is not an error.
    fn end_session(&self, token: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
}

store_area! {
    impl SignIns {
        fn set_office_password(
            &self,
            staff: &StaffId,
            password: &str,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError>;
        fn check_office_password(&self, name: &str, password: &str) -> Result<Option<OfficeUser>, StoreError>;
        fn audit_refused_sign_in(&self, name: &str, why: &str, now: DateTime<Utc>) -> Result<(), StoreError>;
        fn start_session(
            &self,
            staff: &StaffId,
            token: &str,
            now: DateTime<Utc>,
        ) -> Result<Session, StoreError>;
        fn session(&self, token: &str, now: DateTime<Utc>) -> Result<Option<Session>, StoreError>;
        fn end_session(&self, token: &str) -> Result<(), StoreError>;
    }
}
