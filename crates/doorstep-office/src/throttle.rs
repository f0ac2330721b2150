//! Sign-in throttling: a bound on password guessing per account and per peer address, and on how many
//! passwords are hashed at once. The same throttle, by address alone, bounds guessing enrolment codes
//! ([`SignInThrottle::check_peer`], [`SignInThrottle::failed_peer`]).
//!
//! Each password check runs argon2 (slow and memory-hungry on purpose) on the blocking pool; unbounded,
//! 64 concurrent attempts once took the office to 3 GB and slowed every phone's sync. So:
//!
//! - after [`ThrottleRules::per_account`] failures for one sign-in name within the window, that name is
//!   locked for [`ThrottleRules::lock`] (whether or not the name exists, so a lock says nothing about it);
//! - after [`ThrottleRules::per_peer`] failures from one address within the window, that address is locked;
//! - at most [`ThrottleRules::concurrent_hashes`] checks run at once; a request that cannot get a turn within
//!   [`ThrottleRules::wait_for_turn`] is told to try again, and nothing is hashed for it.
//!
//! The state lives in memory (a restart forgets it, which only ever lets someone try again sooner) and is
//! bounded: old entries are pruned, and past [`MAX_TRACKED`] names and addresses the oldest are dropped.
//! Time comes from the office's clock, passed in.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The most names and addresses remembered at once.
pub const MAX_TRACKED: usize = 10_000;

/// How hard sign-in is throttled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleRules {
    pub per_account: usize,
    pub per_peer: usize,
    /// Failures older than this are forgotten.
    pub window: TimeDelta,
    /// How long a name or an address stays locked.
    pub lock: TimeDelta,
    pub concurrent_hashes: usize,
    pub wait_for_turn: Duration,
}

impl Default for ThrottleRules {
    fn default() -> Self {
        Self {
            per_account: 5,
            per_peer: 20,
            window: TimeDelta::minutes(15),
            lock: TimeDelta::minutes(15),
            concurrent_hashes: 2,
            wait_for_turn: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    Peer(IpAddr),
}

#[derive(Debug, Default)]
struct Record {
    failures: VecDeque<DateTime<Utc>>,
    locked_until: Option<DateTime<Utc>>,
    last_seen: Option<DateTime<Utc>>,
}

/// Why a sign-in was not even checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Too many failures for this name or from this address: try again after `until`.
    Locked { until: DateTime<Utc> },
    /// Too many sign-ins being checked at once: try again in a moment.
    Busy,
}

/// The office's sign-in throttle, shared by every request.
#[derive(Debug)]
pub struct SignInThrottle {
    rules: ThrottleRules,
    records: Mutex<HashMap<Key, Record>>,
    turns: Arc<Semaphore>,
}

impl Default for SignInThrottle {
    fn default() -> Self {
        Self::new(ThrottleRules::default())
    }
}

impl SignInThrottle {
    pub fn new(rules: ThrottleRules) -> Self {
        Self {
            rules,
            records: Mutex::new(HashMap::new()),
            turns: Arc::new(Semaphore::new(rules.concurrent_hashes.max(1))),
        }
    }

    fn keys(name: Option<&str>, peer: Option<IpAddr>) -> Vec<Key> {
        let mut keys: Vec<Key> = name
            .map(|name| Key::Account(name.trim().to_lowercase()))
            .into_iter()
            .collect();
        keys.extend(peer.map(Key::Peer));
        keys
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Record>> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a sign-in for `name` from `peer` may be checked at `now`; if so, waits for a turn to hash.
    /// Hold the permit while the password is checked.
    pub async fn admit(
        &self,
        name: &str,
        peer: Option<IpAddr>,
        now: DateTime<Utc>,
    ) -> Result<OwnedSemaphorePermit, Refusal> {
        self.check(name, peer, now)?;
        match tokio::time::timeout(self.rules.wait_for_turn, self.turns.clone().acquire_owned())
            .await
        {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(Refusal::Busy),
        }
    }

    /// The lock check alone (no turn taken).
    pub fn check(
        &self,
        name: &str,
        peer: Option<IpAddr>,
        now: DateTime<Utc>,
    ) -> Result<(), Refusal> {
        self.check_keys(&Self::keys(Some(name), peer), now)
    }

    /// The lock check for an address alone, for attempts that name no account (an enrolment code).
    pub fn check_peer(&self, peer: Option<IpAddr>, now: DateTime<Utc>) -> Result<(), Refusal> {
        self.check_keys(&Self::keys(None, peer), now)
    }

    fn check_keys(&self, keys: &[Key], now: DateTime<Utc>) -> Result<(), Refusal> {
        let records = self.lock();
        let until = keys
            .iter()
            .filter_map(|key| records.get(key)?.locked_until)
            .filter(|until| *until > now)
            .max();
        match until {
            Some(until) => Err(Refusal::Locked { until }),
            None => Ok(()),
        }
    }

    /// A wrong name or password for `name` from `peer`.
    pub fn failed(&self, name: &str, peer: Option<IpAddr>, now: DateTime<Utc>) {
        self.failed_keys(Self::keys(Some(name), peer), now);
    }

    /// A wrong guess from `peer` that names no account (an enrolment code).
    pub fn failed_peer(&self, peer: Option<IpAddr>, now: DateTime<Utc>) {
        self.failed_keys(Self::keys(None, peer), now);
    }

    fn failed_keys(&self, keys: Vec<Key>, now: DateTime<Utc>) {
        let mut records = self.lock();
        if records.len() >= MAX_TRACKED {
            self.prune(&mut records, now);
        }
        for key in keys {
            let limit = match key {
                Key::Account(_) => self.rules.per_account,
                Key::Peer(_) => self.rules.per_peer,
            };
            let record = records.entry(key).or_default();
            record.last_seen = Some(now);
            record.failures.push_back(now);
            while record
                .failures
                .front()
                .is_some_and(|at| *at <= now - self.rules.window)
            {
                record.failures.pop_front();
            }
            if record.failures.len() >= limit {
                record.locked_until = Some(now + self.rules.lock);
                record.failures.clear();
            }
        }
    }

    /// A good sign-in: the name's failures are forgotten (the address's are not: one good account must
    /// not clear the way for guessing others from the same place).
    pub fn succeeded(&self, name: &str) {
        self.lock()
            .remove(&Key::Account(name.trim().to_lowercase()));
    }

    /// Forgets what no longer matters; if still too much is tracked, the least recently seen go.
    fn prune(&self, records: &mut HashMap<Key, Record>, now: DateTime<Utc>) {
        records.retain(|_, record| {
            record.locked_until.is_some_and(|until| until > now)
                || record
                    .failures
                    .back()
                    .is_some_and(|at| *at > now - self.rules.window)
        });
        if records.len() >= MAX_TRACKED {
            let mut by_age: Vec<(Key, Option<DateTime<Utc>>)> = records
                .iter()
                .map(|(key, record)| (key.clone(), record.last_seen))
                .collect();
            by_age.sort_by_key(|(_, seen)| *seen);
            for (key, _) in by_age.into_iter().take(records.len() - MAX_TRACKED / 2) {
                records.remove(&key);
            }
        }
    }

    /// How many names and addresses are remembered (for tests of the bound).
    pub fn tracked(&self) -> usize {
        self.lock().len()
    }
}

/// The address a request came from, when the office's own accept loop served it (behind a reverse proxy,
/// the proxy's address).
#[derive(Debug, Clone, Copy)]
pub struct PeerAddress(pub Option<IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for PeerAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(PeerAddress(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|info| info.0.ip()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(minute: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap() + TimeDelta::minutes(minute)
    }

    #[test]
    fn five_failures_lock_the_name_for_fifteen_minutes_whatever_the_address() {
        let throttle = SignInThrottle::default();
        let here: Option<IpAddr> = Some([192, 0, 2, 1].into());
        let there: Option<IpAddr> = Some([192, 0, 2, 2].into());
        for _ in 0..4 {
            throttle.failed("Head", here, t(0));
        }
        assert_eq!(throttle.check("head", there, t(1)), Ok(()));
        throttle.failed("head", there, t(1));
        assert_eq!(
            throttle.check("HEAD", there, t(2)),
            Err(Refusal::Locked { until: t(16) })
        );
        assert_eq!(
            throttle.check("office", there, t(2)),
            Ok(()),
            "other names go on"
        );
        assert_eq!(
            throttle.check("head", here, t(16)),
            Ok(()),
            "and it unlocks"
        );
    }

    #[test]
    fn failures_spread_over_many_names_lock_the_address() {
        let throttle = SignInThrottle::default();
        let peer: Option<IpAddr> = Some([198, 51, 100, 7].into());
        for i in 0..20 {
            throttle.failed(&format!("guess{i}"), peer, t(0));
        }
        assert!(matches!(
            throttle.check("someone-new", peer, t(1)),
            Err(Refusal::Locked { .. })
        ));
        assert_eq!(throttle.check("someone-new", None, t(1)), Ok(()));
    }

    #[test]
    fn old_failures_are_forgotten_and_a_good_sign_in_clears_the_name() {
        let throttle = SignInThrottle::default();
        for minute in [0, 5, 10, 15] {
            throttle.failed("head", None, t(minute));
        }
        throttle.failed("head", None, t(20));
        assert_eq!(
            throttle.check("head", None, t(21)),
            Ok(()),
            "only 4 in any 15 min"
        );
        throttle.succeeded("head");
        for _ in 0..4 {
            throttle.failed("head", None, t(22));
        }
        assert_eq!(throttle.check("head", None, t(22)), Ok(()));
    }

    #[test]
    fn what_is_remembered_stays_bounded() {
        let throttle = SignInThrottle::default();
        for i in 0..(MAX_TRACKED as u32 + 500) {
            let peer: IpAddr = [10, (i >> 16) as u8, (i >> 8) as u8, i as u8].into();
            throttle.failed(&format!("n{i}"), Some(peer), t(0));
        }
        assert!(
            throttle.tracked() <= MAX_TRACKED + 2,
            "{}",
            throttle.tracked()
        );
    }

    #[tokio::test]
    async fn only_so_many_passwords_are_hashed_at_once() {
        let throttle = SignInThrottle::new(ThrottleRules {
            concurrent_hashes: 2,
            wait_for_turn: Duration::from_millis(50),
            ..ThrottleRules::default()
        });
        let first = throttle.admit("a", None, t(0)).await.unwrap();
        let _second = throttle.admit("b", None, t(0)).await.unwrap();
        assert_eq!(
            throttle.admit("c", None, t(0)).await.err(),
            Some(Refusal::Busy)
        );
        drop(first);
        assert!(throttle.admit("c", None, t(0)).await.is_ok());
    }
}
