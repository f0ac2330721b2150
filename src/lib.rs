//! Doorstep's phone app: the screens school staff use on a home visit, over a local event log that works
//! without signal and a sync loop that tells the office.
//!
//! The layout, from the outside in:
//!
//! - [`config`]: the data folder, and a `doorstep://enrol` link a launcher may fill the set-up screen with.
//! - [`platform`]: what differs between desktop, Android and iOS (notifications, links, the visit timer,
//!   the keystore that holds the data key).
//! - [`vault`]: the data folder sealed with the data key (XChaCha20-Poly1305), and deleting it.
//! - [`enrolment`]: setting the phone up with a one-time code (HTTPS-only office addresses), and the
//!   sealed, renewed credential; [`pins`]: the PIN rules and their argon2 hashes.
//! - [`startup`]: from launch to the app ([`startup::Phone`], the root component: opening, set-up, the
//!   app).
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
//! - [`cpoms`]: the write-up as text to paste into the school's record system (the core's wording), from
//!   what this phone knows.
//! - [`app`]: the root component and Today; [`screens`]: the visit screen and its parts. They read the
//!   store and call it; they never touch SQLite.
//!
//! `main.rs` only reads the configuration and launches the window with [`startup::Phone`], which opens the
//! store and starts the sync loop.

pub mod app;
pub mod config;
pub mod cpoms;
pub mod enrolment;
#[cfg(test)]
mod fixtures;
pub mod notices;
pub mod office_clock;
pub mod pins;
pub mod platform;
pub mod prompts;
pub mod screens;
pub mod startup;
pub mod status;
pub mod steps;
pub mod store;
pub mod sync;
pub mod timing;
pub mod vault;
