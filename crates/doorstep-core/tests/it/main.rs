//! doorstep-core's integration tests, one binary: policy presets, the visit lifecycle, its properties, the
//! phone's SQLite event log (plain and sealed), the sync planner, reconciliation and the alert as a text
//! message.

mod enrolment;
mod event_log;
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
