//! The office's integration tests: the real server on port 0 with a temporary database.

mod admin;
mod api;
mod browser;
mod cli;
mod escalation;
mod helpers;
mod kill;
mod migrations;
mod notify;
mod openapi;
mod records;
mod requests;
mod smtp_relay;
mod web;
