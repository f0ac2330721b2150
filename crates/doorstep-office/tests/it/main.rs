//! The office's integration tests: the real server on port 0 with a temporary database.

mod admin;
mod api;
mod browser;
mod escalation;
mod helpers;
mod kill;
mod notify;
mod openapi;
mod reconcile;
mod records;
mod requests;
mod sms;
mod web;
