//! Doorstep's phone app: the screens school staff use on a home visit, over a local event log that works
//! without signal and a sync loop that tells the office.
//!
//! The layout, from the outside in:
//!
//! - [`config`]: the enrolment file (`DOORSTEP_PHONE_CONFIG`) and the data folder.
//! - [`platform`]: what differs between desktop, Android and iOS (for now, only the app-data folder).
//! - [`store`]: [`store::AppStore`], the only writer of the phone's event log. A visit's state is rebuilt
//!   from the office's events and the phone's own; an action is decided by the core lifecycle and on disk
//!   before the call returns.
//! - [`sync`]: the HTTP transport around the core's pure sync planner, and the loop that runs it.
//! - [`office_clock`]: the office's clock as this phone knows it (the offset measured at each sync), pure.
//! - [`status`]: the status line, a pure function of the outbox.
//! - [`steps`]: which step a visit screen offers next, a pure function of the visit's state.
//! - [`notices`]: what the visit screen says beyond the next step (steps not accepted by the office,
//!   partners vouched for, running late), pure.
//! - [`timing`]: the clock-driven parts of a visit (timer, wait at the door, check-in prompt), pure.
//! - [`cpoms`]: the write-up as text to paste into the school's record system, pure.
//! - [`app`]: the root component and Today; [`screens`]: the visit screen and its parts. They read the
//!   store and call it; they never touch SQLite.
//!
//! `main.rs` only reads the configuration, opens the store, starts the sync loop and launches the window.

pub mod app;
pub mod config;
pub mod cpoms;
#[cfg(test)]
mod fixtures;
pub mod notices;
pub mod office_clock;
pub mod platform;
pub mod prompts;
pub mod screens;
pub mod status;
pub mod steps;
pub mod store;
pub mod sync;
pub mod timing;
