//! Doorstep's core: everything the phone and the office share, and nothing that touches the network.
//!
//! - [`ids`]: validated identifiers (`VisitId`, `StaffId`, `EventId`, `DeviceSeq`, ...).
//! - `newtype`: the conversions every validated newtype has, as macros ([`parsed_text!`],
//!   [`checked_number!`]) the phone's own newtypes use too.
//! - [`domain`]: staff, pupils, visits, risk assessments and briefings.
//! - [`contact`]: `PhoneNumber` and `Postcode`, each parsed with one rule by the office and the phone.
//! - [`policy`]: a school's home-visit policy as data, with the two shipped presets.
//! - [`private_file`]: writing a file that holds a secret, owner-only and complete or not at all.
//! - [`lifecycle`]: the visit state machine, `decide` and `apply`, pure and total.
//! - [`event`]: the event envelope recorded on a device.
//! - [`event_log`]: the phone's local SQLite event log and outbox.
//! - [`migrate`]: schema migrations (refinery) for the event log and the office's store alike.
//! - [`protocol`]: the versioned sync exchange between phone and office.
//! - [`sync_plan`]: pure planning of what to send and what an answer means.
//! - [`reconcile`]: the phone and the office comparing event ids by sequence range (lost events, restored
//!   backups), planned as a pure function.
//! - [`zone`]: the school's time zone (`SchoolTimeZone`), in which every time a person reads is said.
//! - [`schedule`]: when the office next expects to hear from a visit, and how alarms escalate.
//! - `test_support` (feature `test-support`, for tests only): ids from text, times on a fixed school day.
//! - [`sms`]: an alert as a compact, authenticated text message, for when there is no data.
//! - [`write_up`]: the write-up's content model, one wording for the phone's text and the office's records.
//!
//! Time is always passed in; nothing here reads a clock except `EventId::new_v7` (its timestamp bits only
//! order ids and carry no meaning) and refinery's stamp on each row of the migration history.

pub mod contact;
pub mod domain;
pub mod event;
pub mod event_log;
pub mod ids;
pub mod lifecycle;
pub mod migrate;
mod newtype;
pub mod policy;
pub mod private_file;
pub mod protocol;
pub mod reconcile;
pub mod schedule;
pub mod secret_hash;
pub mod sms;
pub mod sync_plan;
#[cfg(feature = "test-support")]
pub mod test_support;
pub mod write_up;
pub mod zone;
