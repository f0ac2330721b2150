//! doorstep-core's integration tests, one binary: policy presets, the visit lifecycle, its properties, the
//! phone's SQLite event log, the sync planner, reconciliation and the alert as a text message.

mod event_log;
mod lifecycle;
mod policy;
mod properties;
mod reconcile;
mod schedule;
mod sms;
mod support;
mod sync_plan;
