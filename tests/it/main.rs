//! The phone app's integration tests: the spine against the real office, and the screens through Dioxus's
//! VirtualDom.

mod office;
mod platform;
mod screens;
mod sync;
