//! The office's clock: the one place in the office that reads the system's time. Everything else is handed
//! a [`Clock`] (handlers through [`crate::state::AppState::now`], the engines when they are spawned), so
//! tests can stop, set and move time. `clippy.toml` beside `Cargo.toml` refuses `Utc::now`, `Local::now`
//! and `SystemTime::now` everywhere else in the crate.

use std::sync::Arc;

use chrono::{DateTime, Utc};

/// The office's clock, swappable so tests can control time.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The real clock: the system's time.
#[allow(clippy::disallowed_methods)] // The one place the office may read the system clock.
pub fn system() -> Clock {
    Arc::new(Utc::now)
}
