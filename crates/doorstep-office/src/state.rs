//! What every handler shares: [`AppState`] (the store, the clock, the escalation engine's handle, the
//! dashboard's settings, the throttles and the sync gate). The API, the dashboard and `lib.rs` import it; it imports no route module, only
//! what it holds, so nothing circles back through the routes.

use crate::throttle::{SignInThrottle, ThrottleRules};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::admission::SyncGate;
use crate::clock::{self, Clock};
use crate::escalation::Escalation;
use crate::store::OfficeStore;

/// How the web pages are served.
#[derive(Debug, Clone)]
pub struct WebSettings {
    /// Mark cookies `Secure` (sent over HTTPS only). Off only for a plain-HTTP demo on this machine.
    pub secure_cookies: bool,
}

impl Default for WebSettings {
    fn default() -> Self {
        Self {
            secure_cookies: true,
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: OfficeStore,
    pub clock: Clock,
    /// The escalation engine to poke when events arrive (absent in tests that exercise only the API).
    pub escalation: Option<Escalation>,
    /// How the dashboard's pages and cookies are served.
    pub web: WebSettings,
    /// Turns true when the server starts shutting down, so endless streams (the board's live events) end
    /// and a graceful shutdown does not wait for them forever.
    pub stopping: watch::Receiver<bool>,
    /// Bounds password guessing and concurrent password hashing.
    pub sign_ins: Arc<SignInThrottle>,
    /// Bounds guessing enrolment codes, by address ([`enrolment_throttle`]).
    pub enrolments: Arc<SignInThrottle>,
    /// Bounds the phone syncs doing store work at once; past it, ordinary syncs are told to come back.
    pub syncs: SyncGate,
}

/// Ten wrong enrolment codes from one address lock it out for 15 minutes. With codes of 60 random bits,
/// valid for 15 minutes, that leaves a guesser from one address odds of about 1 in 10^17 per code.
pub fn enrolment_throttle() -> SignInThrottle {
    SignInThrottle::new(ThrottleRules {
        per_peer: 10,
        ..ThrottleRules::default()
    })
}

impl AppState {
    /// The store with the system clock, no escalation engine and `Secure` cookies.
    pub fn new(store: OfficeStore) -> Self {
        Self {
            store,
            clock: clock::system(),
            escalation: None,
            web: WebSettings::default(),
            stopping: watch::channel(false).1,
            sign_ins: Arc::new(SignInThrottle::default()),
            enrolments: Arc::new(enrolment_throttle()),
            syncs: SyncGate::for_this_machine(),
        }
    }

    /// The time now, by the office's clock: the only way a handler learns it.
    pub fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }
}
