//! The phone app's integration tests: the spine against the real office, the screens through Dioxus's
//! VirtualDom, the write-up's one wording on phone and office (`write_up`), and whole visits on the real
//! desktop build under Xvfb (`desktop`).

mod desktop;
mod enrolment;
mod office;
mod platform;
mod reconcile;
mod screens;
mod sms;
mod sync;
mod write_up;
