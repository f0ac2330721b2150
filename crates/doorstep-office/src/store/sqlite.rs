//! The SQLite store's rows for the areas whose rules live beside their types (sign-ins, phones, people,
//! requests): each file is the `impl SqliteStore` of one area, its SQL and nothing else, beside the
//! area's trait (`store/<area>.rs`) and its PostgreSQL rows (`store/postgres/<area>.rs`).

pub(crate) mod alarms;
pub(crate) mod audit;
pub(crate) mod deliveries;
pub(crate) mod notices;
pub(crate) mod people;
pub(crate) mod phones;
pub(crate) mod reconcile;
pub(crate) mod records;
pub(crate) mod requests;
pub(crate) mod sign_ins;
pub(crate) mod sms;
pub(crate) mod versions;
