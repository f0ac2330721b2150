//! The SQLite store's rows, area by area: each file is the `impl SqliteStore` of one area and its SQL,
//! beside the area's trait (`store/<area>.rs`, where there is one) and its PostgreSQL rows
//! (`store/postgres/<area>.rs`). The area's own module (`crate::alarms`, `crate::devices`, ...) keeps its
//! types, rules and words.

pub(crate) mod alarms;
pub(crate) mod audit;
pub(crate) mod deliveries;
pub(crate) mod notices;
pub(crate) mod people;
pub(crate) mod phones;
pub(crate) mod reconcile;
pub(crate) mod requests;
pub(crate) mod sign_ins;
pub(crate) mod sms;
pub(crate) mod versions;
