//! doorstep-core's integration tests, one binary: policy presets, the visit lifecycle, its properties, the
//! phone's SQLite event log (plain and sealed), the sync planner, holdings sent as changes, reconciliation,
//! the alert as a text message, and the write-up's content.

mod contact;
mod enrolment;
mod event_log;
mod holdings;
mod lifecycle;
mod migrations;
mod policy;
mod properties;
mod reconcile;
mod schedule;
mod sealed_log;
mod sms;
mod support;
mod sync_plan;
mod write_up;
