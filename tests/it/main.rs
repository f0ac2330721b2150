//! The phone app's integration tests: the spine against the real office, the screens through Dioxus's
//! VirtualDom, and whole visits on the real desktop build under Xvfb (`desktop`).

mod desktop;
mod enrolment;
mod office;
mod platform;
mod reconcile;
mod screens;
mod sms;
mod sync;
