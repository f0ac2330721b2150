//! The office's integration tests: the real server on port 0 with a temporary database.

// The tests read the system clock to build events near the real office's own time (it runs on the real
// clock); the office itself may not (clippy.toml).
#![allow(clippy::disallowed_methods)]

mod admin;
mod api;
mod audit;
mod backends;
mod bench;
mod browser;
mod checkpoints;
mod cli;
mod code_phrases;
mod devices;
mod escalation;
mod helpers;
mod kill;
mod migrations;
mod need_to_know;
mod notify;
mod office_decisions;
mod openapi;
mod policy_flips;
mod postgres;
mod reach;
mod reconcile;
mod records;
mod requests;
mod routes;
mod schools;
mod serving;
mod sms;
mod smtp_relay;
mod tidy;
mod time_zone;
mod web;
