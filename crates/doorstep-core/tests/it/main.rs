//! doorstep-core's integration tests, one binary: policy presets, the visit lifecycle, its properties, the
//! phone's SQLite event log and the sync planner.

mod event_log;
mod lifecycle;
mod migrations;
mod policy;
mod properties;
mod schedule;
mod support;
mod sync_plan;
