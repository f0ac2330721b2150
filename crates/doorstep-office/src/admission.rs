//! Admission of phone syncs past capacity ([`SyncGate`]): a bounded number of syncs do store work at once;
//! an ordinary sync that cannot get a place within a short wait, or finds the line for places already
//! full, is told to come back (`503` with `Retry-After`), so the office degrades instead of queueing
//! without bound, and a sync carrying an alert is always admitted.
//!
//! Why the line is bounded as well as the wait: past capacity, every sync waiting its 250 ms holds a
//! connection, a task and a timer. At twice the capacity that was over a thousand connections, enough to
//! reach the office's connection caps and have connections refused unread, alerts among them. With the
//! line full, an ordinary sync is answered at once, and its connection is free for the next request.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long an ordinary sync waits for a place before it is told to come back.
pub const ADMISSION_WAIT: Duration = Duration::from_millis(250);

/// What a turned-away phone is told to wait (`Retry-After`, in seconds) before its next ordinary sync.
pub const RETRY_AFTER_SECS: u64 = 2;

/// Ordinary syncs that may wait for a place, per place: a sync's store work takes about a millisecond,
/// so a full line is a wait of some tens of milliseconds, not the whole [`ADMISSION_WAIT`].
pub const WAITING_PER_PLACE: usize = 16;

/// The places for syncs doing store work at once. Cloning shares the same places.
#[derive(Debug, Clone)]
pub struct SyncGate {
    places: Arc<Semaphore>,
    size: usize,
    wait: Duration,
    retry_after_secs: u64,
    /// Ordinary syncs waiting for a place now, and how many may.
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
}

/// Whether a sync may go ahead: with its place (held until the sync's store work ends), or without one
/// (an alert never waits for a place), or not at all.
#[derive(Debug)]
pub enum Admission {
    Admitted(Option<OwnedSemaphorePermit>),
    Busy,
}

impl SyncGate {
    /// `places` syncs at once; an ordinary sync waits at most `wait` for one, in a line of at most
    /// [`WAITING_PER_PLACE`] for each place.
    pub fn new(places: usize, wait: Duration) -> Self {
        let size = places.max(1);
        Self {
            places: Arc::new(Semaphore::new(size)),
            size,
            wait,
            retry_after_secs: RETRY_AFTER_SECS,
            waiting: Arc::new(AtomicUsize::new(0)),
            max_waiting: size * WAITING_PER_PLACE,
        }
    }

    /// The same gate with a line of at most `syncs` waiting for a place (0: none waits).
    pub fn with_max_waiting(self, syncs: usize) -> Self {
        Self {
            max_waiting: syncs,
            ..self
        }
    }

    /// The same gate telling turned-away phones to wait `seconds` (at least 1) instead of
    /// [`RETRY_AFTER_SECS`].
    pub fn with_retry_after(self, seconds: u64) -> Self {
        Self {
            retry_after_secs: seconds.max(1),
            ..self
        }
    }

    /// What a turned-away phone is told to wait, in seconds (`Retry-After`).
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after_secs
    }

    /// Two places per core: the store serialises its writes on one connection, so more syncs at once only
    /// wait on it inside blocking threads; a few more than the cores keep reads and writes overlapping.
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        Self::new(cores * 2, ADMISSION_WAIT)
    }

    /// How many ordinary syncs are waiting for a place now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// How many syncs may do store work at once.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Admits a sync: one carrying an alert at once, without a place (a phone in danger is never turned
    /// away, and alerts are few: each phone may send only a handful per visit); an ordinary one when a
    /// place comes free within the gate's wait, or not.
    pub async fn admit(&self, carries_alert: bool) -> Admission {
        if carries_alert {
            return Admission::Admitted(self.places.clone().try_acquire_owned().ok());
        }
        if let Ok(permit) = self.places.clone().try_acquire_owned() {
            return Admission::Admitted(Some(permit));
        }
        let Some(_in_line) = InLine::join(&self.waiting, self.max_waiting) else {
            return Admission::Busy;
        };
        match tokio::time::timeout(self.wait, self.places.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Admission::Admitted(Some(permit)),
            // Closed never happens (the gate never closes its semaphore); timed out: busy.
            Ok(Err(_)) | Err(_) => Admission::Busy,
        }
    }

    /// Takes every place, until the returned permit is dropped: what a slow store would do, for tests and
    /// load experiments that need the office full.
    pub async fn hold_all(&self) -> OwnedSemaphorePermit {
        let size = u32::try_from(self.size).unwrap_or(u32::MAX);
        match self.places.clone().acquire_many_owned(size).await {
            Ok(permit) => permit,
            // The semaphore is never closed (see `admit`), so this arm cannot be reached.
            Err(_) => unreachable!("the sync gate's semaphore is never closed"),
        }
    }
}

/// A place in the line for places, left when dropped (also when the phone gives up and its request's
/// future is dropped mid-wait).
struct InLine<'a>(&'a AtomicUsize);

impl<'a> InLine<'a> {
    /// Joins the line if fewer than `max` are in it.
    fn join(waiting: &'a AtomicUsize, max: usize) -> Option<Self> {
        waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                (now < max).then_some(now + 1)
            })
            .ok()
            .map(|_| Self(waiting))
    }
}

impl Drop for InLine<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Default for SyncGate {
    fn default() -> Self {
        Self::for_this_machine()
    }
}
