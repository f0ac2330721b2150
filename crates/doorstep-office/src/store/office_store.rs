//! [`OfficeStore`]: the store an office runs on, SQLite (the embedded default) or PostgreSQL (chosen by a
//! database URL), as the handlers, the demo data and the command line use it.
//!
//! Every area's methods are on it, synchronous, made by [`super::store_area`] beside each area's trait: a
//! handler's store work runs off the async threads as one closure (`blocking(move || ...)`) whichever the
//! store, and on PostgreSQL each call waits on that thread for the query ([`PgStore::wait`]). The escalation
//! engine and the notifier take it through the traits, which it implements too (each method the trait's
//! method of the store inside). What several areas make together (a visit's record, the month's report,
//! who was told) is written once on it, from the areas' methods (`store/records.rs`, `crate::reach`).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use doorstep_core::event::EventEnvelope;

use super::backend::{Batch, Visits};
use super::postgres::PgStore;
use super::{Device, IngestError, Ingested, SqliteStore, StoreError};
use crate::devices::TokenCheck;

/// The store an office runs on.
#[derive(Debug, Clone)]
pub enum OfficeStore {
    /// One SQLite file in the office's data folder.
    Sqlite(Arc<SqliteStore>),
    /// A PostgreSQL database other offices may share.
    Postgres(Arc<PgStore>),
}

impl From<SqliteStore> for OfficeStore {
    fn from(store: SqliteStore) -> Self {
        Self::Sqlite(Arc::new(store))
    }
}

impl From<Arc<SqliteStore>> for OfficeStore {
    fn from(store: Arc<SqliteStore>) -> Self {
        Self::Sqlite(store)
    }
}

impl From<PgStore> for OfficeStore {
    fn from(store: PgStore) -> Self {
        Self::Postgres(Arc::new(store))
    }
}

impl OfficeStore {
    /// The SQLite store, if that is what the office runs on (its file's path, its checkpoints).
    pub fn sqlite(&self) -> Option<&Arc<SqliteStore>> {
        match self {
            Self::Sqlite(store) => Some(store),
            Self::Postgres(_) => None,
        }
    }

    /// Which store, for the log: the SQLite file's path, or "PostgreSQL".
    pub fn describe(&self) -> String {
        match self {
            Self::Sqlite(store) => store.path().display().to_string(),
            Self::Postgres(_) => "PostgreSQL".to_owned(),
        }
    }

    /// The enrolled phone a token belongs to, if the token is accepted at `now` ([`super::phones::Phones::check_token`]).
    pub fn authenticate(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Device>, StoreError> {
        Ok(match self.check_token(token, now)? {
            TokenCheck::Accepted(device) => Some(device),
            _ => None,
        })
    }

    /// Checks a phone's batch and stores its new events, all or nothing, raising in the same transaction
    /// the duress alarms its alerts call for ([`Visits::ingest`]).
    pub fn ingest_raising(
        &self,
        device: &Device,
        events: &[EventEnvelope],
        device_time: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Ingested, IngestError> {
        match self {
            Self::Sqlite(store) => store.ingest_raising(device, events, device_time, now),
            Self::Postgres(store) => store.wait(store.ingest(Batch {
                device,
                events,
                device_time,
                now,
            })),
        }
    }
}
