//! doorstep-core's integration tests, one binary: policy presets, the visit lifecycle, its properties, the
//! phone's SQLite event log (plain and sealed) and the sync planner.

mod enrolment;
mod event_log;
mod lifecycle;
mod migrations;
mod policy;
mod properties;
mod schedule;
mod sealed_log;
mod support;
mod sync_plan;
