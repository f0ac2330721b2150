//! The audit log as a store area ([`AuditTrail`]): appending an entry, reading a visit's, and walking the
//! whole chain. Both stores compute each entry's number and hashes with the same pure functions
//! ([`crate::audit::next_entry`], [`crate::audit::walk`]), so a log moved between them checks the same.

use std::future::Future;

use chrono::{DateTime, Utc};
use doorstep_core::ids::{SchoolId, VisitId};

use super::{store_area, StoreError};
use crate::audit::{ChainCheck, Entry, NewEntry};

/// The append-only, hash-chained record of who opened what and every decision the office made.
pub trait AuditTrail: Send + Sync + 'static {
    /// Appends one entry at `now`, in its own transaction, and returns it as stored.
    fn audit(
        &self,
        entry: &NewEntry,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Entry, StoreError>> + Send;

    /// Every entry about one visit, oldest first.
    fn audit_entries_for_visit(
        &self,
        visit: &VisitId,
    ) -> impl Future<Output = Result<Vec<Entry>, StoreError>> + Send;

    /// Walks the whole log and says whether every entry follows the one before, naming the first that
    /// does not.
    fn verify_audit_log(&self) -> impl Future<Output = Result<ChainCheck, StoreError>> + Send;

    /// The school's newest `limit` entries, newest first.
    fn audit_entries(
        &self,
        school: &SchoolId,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Entry>, StoreError>> + Send;
}

store_area! {
    impl AuditTrail {
        fn audit(&self, entry: &NewEntry, now: DateTime<Utc>) -> Result<Entry, StoreError>;
        fn audit_entries_for_visit(&self, visit: &VisitId) -> Result<Vec<Entry>, StoreError>;
        fn verify_audit_log(&self) -> Result<ChainCheck, StoreError>;
        fn audit_entries(&self, school: &SchoolId, limit: usize) -> Result<Vec<Entry>, StoreError>;
    }
}
