//! The sync transport: HTTP around the core's pure sync planner.
//!
//! [`SyncClient::sync_once`] sends what is waiting in batches (an empty batch too: that is how the phone
//! fetches its visits), turns each HTTP result into a `sync_plan::Answer`, and applies what
//! `sync_plan::after_answer` decides. An event is marked delivered only from the office's per-event answer.
//! [`run_sync_loop`] repeats that forever: at once after a new event, every 15 s when idle, and with a
//! growing pause while the office cannot be reached, cut short by a probe that notices the office is
//! reachable again. An office past capacity answers `503` with `Retry-After` ([`Exchange::Busy`]): ordinary
//! steps then wait at least that long (a new ordinary event does not cut the wait short), and an alert
//! never waits for it.
//!
//! Why the exchange is more than one `send`: a kept-alive connection can die silently (a mobile network's
//! NAT forgets it, the phone changes cell), and a request on it then hears nothing until a timeout. So an
//! exchange never trusts one connection: if no answer has begun after a short while it starts the same
//! request again on a new connection and takes whichever answers first ([`Pace`]: every 750 ms for an
//! alert, once after a few seconds for ordinary steps). The office stores each event id once, so a
//! request that arrives twice is harmless. After any failure the kept-alive connections are thrown away,
//! and idle ones are dropped after [`POOL_IDLE_TIMEOUT`], before a carrier's NAT would drop them.
//! Deadlines count the upload a request needs at [`SLOWEST_UPLOAD_BYTES_PER_SEC`], so a large batch on a
//! 2G link is not cut off halfway, and an answer that is arriving may take as long as it needs while bytes
//! keep coming ([`ANSWER_STALL`]). An alert recorded while a request of ordinary steps is out interrupts it:
//! the alert is sent first, on its own.
//!
//! [`SyncClient::reconcile`] asks the office which of the phone's recent events it holds (on start, once a
//! day, and at once when a sync answer shows the office holds more from this phone than it remembers), to
//! send again what an office restored from a backup lost, and to move a restored phone's numbering past
//! the office's.
//!
//! Two answers concern the phone's credential rather than its events (`enrolment::after_sync_answer`): a
//! renewed token in a sync answer is kept (sealed, on disk) and then used, and `device_revoked` makes the
//! phone delete everything it holds and the loop stop.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use doorstep_core::ids::EventId;
use doorstep_core::protocol::{ErrorBody, HoldScope, SyncRequest, SyncResponse, PROTOCOL_VERSION};
use doorstep_core::reconcile::{
    self, ReconcileRequest, ReconcileResponse, Reconciliation, Restored,
};
use doorstep_core::sync_plan::{self, Answer, Next, BATCH_LIMIT};
use tokio::sync::Notify;
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;

use crate::store::AppStore;

/// How long an ordinary request waits for the office's answer to begin, on top of the time its upload
/// needs at the slowest link the phone allows for.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often to sync when nothing is happening, to fetch new visits and briefings.
pub const IDLE_TICK: Duration = Duration::from_secs(15);
/// The longest pause between attempts while the office cannot be reached.
pub const MAX_BACK_OFF: Duration = Duration::from_secs(60);
/// The pause between attempts while an alert is waiting to be sent: the brief wants an alert at the office
/// within 2 s of the signal coming back, whatever the back-off had grown to.
pub const ALERT_RETRY: Duration = Duration::from_secs(1);
/// How long to wait for a connection to open; past it the attempt counts as no answer and is tried again.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an idle kept-alive connection is kept for the next sync. Longer than the idle tick, so a phone
/// that syncs every 15 s keeps one connection; far shorter than the minutes a carrier's NAT keeps an idle
/// mapping, so the phone drops a connection before the network can forget it.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(20);
/// While an alert is being sent and no answer has begun, another attempt starts on a new connection this
/// often (at most [`URGENT_ATTEMPTS`] at once).
pub const URGENT_HEDGE_EVERY: Duration = Duration::from_millis(750);
/// The most attempts of one alert in flight at once; starting another drops the oldest.
pub const URGENT_ATTEMPTS: usize = 4;
/// An alert's exchange gives up after this long without an answer beginning, so the phone can note the
/// failure (the status line) and the loop tries again a second later.
pub const URGENT_GIVE_UP: Duration = Duration::from_secs(5);
/// An ordinary request with no answer begun after this long (plus its upload time) is tried once more on a
/// new connection, racing the first.
pub const ORDINARY_HEDGE_AFTER: Duration = Duration::from_secs(3);
/// The slowest upload the deadlines allow for, in bytes a second (8 kbit/s, below 2G's 20 kbit/s).
pub const SLOWEST_UPLOAD_BYTES_PER_SEC: u64 = 1_000;
/// An answer whose bytes stop coming for this long is given up (it may be as long as it likes otherwise).
pub const ANSWER_STALL: Duration = Duration::from_secs(5);
/// The largest answer the phone reads.
pub const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;
/// While the office cannot be reached, how often the loop looks for it with a small request on a new
/// connection, so ordinary steps go as soon as the signal is back rather than at the end of the back-off.
pub const PROBE_EVERY: Duration = Duration::from_secs(2);
/// How long one probe waits for the office.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
const SYNC_PATH: &str = "/api/v1/sync";
const RECONCILE_PATH: &str = "/api/v1/reconcile";
/// How often the phone reconciles with the office besides when it starts.
pub const RECONCILE_EVERY: Duration = Duration::from_secs(24 * 60 * 60);
/// The most requests in one `sync_once`: each confirms or sets aside events, so the limit is only a guard
/// against an office that keeps answering without making progress.
const MAX_ROUNDS: u32 = 64;

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("could not set up the HTTP client: {0}")]
pub struct ClientError(#[from] reqwest::Error);

/// Talks to one office as one device.
#[derive(Clone)]
pub struct SyncClient {
    /// Keeps connections alive between syncs; replaced (so its connections are closed) after a failure.
    pooled: Arc<Mutex<reqwest::Client>>,
    /// Keeps no connection: every request opens a new one. For hedged attempts and probes.
    fresh: reqwest::Client,
    office_url: String,
    /// Replaced when the office renews the credential (shared by the client's clones).
    token: Arc<std::sync::RwLock<String>>,
}

// The token is a secret: keep it out of logs.
impl std::fmt::Debug for SyncClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncClient")
            .field("office_url", &self.office_url)
            .finish_non_exhaustive()
    }
}

/// How a `sync_once` ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    /// The office answered and nothing is left that it will take now.
    UpToDate,
    /// The office answered but did not confirm every event sent; they stay waiting.
    Unconfirmed,
    /// No answer, a 5xx, or an answer that could not be read.
    Unreachable { error: String },
    /// The office refused the whole request (bad token, unknown device, ...).
    Refused { status: u16, message: String },
    /// The office is past capacity and took nothing: ordinary steps wait at least `retry_after`.
    Busy { retry_after: Duration },
    /// The phone's own database failed.
    StorageFailed { error: String },
}

/// What one `sync_once` did, for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncReport {
    /// Requests made.
    pub rounds: u32,
    /// Events the office confirmed (stored now or before).
    pub confirmed: usize,
    /// Events the office refused; they are kept with the reason and not sent again.
    pub refused: usize,
    /// Whether new holdings (visits, briefings, policy) were saved.
    pub holdings_saved: bool,
    /// The office holds a higher sequence number from this device than the phone remembers (a phone
    /// restored from a backup): the phone has moved past it and should reconcile now.
    pub office_ahead: bool,
    pub outcome: SyncOutcome,
}

/// What one reconciliation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReconcileOutcome {
    Done {
        /// Events the office had lost, back in the outbox.
        sent_again: usize,
        /// Events recorded again under new numbers (their old numbers belong to others at the office).
        recorded_again: usize,
        /// The office held more from this phone than it remembered.
        restored: Option<Restored>,
    },
    /// No answer, a 5xx, or an answer that could not be read.
    Unreachable(String),
    /// The office refused (an office without reconciliation answers 404).
    Refused {
        status: u16,
        message: String,
    },
    StorageFailed(String),
}

impl SyncReport {
    /// Whether the loop should wait longer than usual before the next attempt.
    pub fn should_back_off(&self) -> bool {
        !matches!(self.outcome, SyncOutcome::UpToDate)
    }
}

/// One HTTP exchange, read.
#[derive(Debug, Clone, PartialEq)]
pub enum Exchange {
    Accepted(Box<SyncResponse>),
    Refused {
        status: u16,
        body: ErrorBody,
    },
    /// `503` with `Retry-After`: the office is past capacity and took nothing; ask again after the wait
    /// (at most [`MAX_BACK_OFF`], whatever the office said).
    Busy {
        retry_after: Duration,
    },
    NoAnswer(String),
}

/// How patient one exchange is: when to race another attempt on a new connection, how many may run at
/// once, and when to give up with no answer begun.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    /// Start another attempt when no answer has begun this long after the last one started.
    pub hedge_every: Duration,
    /// The most attempts in flight; starting another drops the oldest.
    pub max_in_flight: usize,
    /// The most attempts in all.
    pub max_attempts: usize,
    /// Give up when no answer has begun this long after the exchange started.
    pub give_up_after: Duration,
    /// When every attempt has failed, start the next at once rather than at the next hedge time.
    pub retry_failure_at_once: bool,
}

impl Pace {
    /// The pace for a request of `bytes` bytes, urgent (an alert) or not.
    pub fn for_request(urgent: bool, bytes: usize) -> Self {
        let upload = Duration::from_millis(
            (bytes as u64).saturating_mul(1_000) / SLOWEST_UPLOAD_BYTES_PER_SEC,
        );
        if urgent {
            Pace {
                hedge_every: URGENT_HEDGE_EVERY,
                max_in_flight: URGENT_ATTEMPTS,
                max_attempts: usize::MAX,
                give_up_after: URGENT_GIVE_UP + upload,
                retry_failure_at_once: false,
            }
        } else {
            Pace {
                hedge_every: ORDINARY_HEDGE_AFTER + upload,
                max_in_flight: 2,
                max_attempts: 2,
                give_up_after: REQUEST_TIMEOUT + upload,
                retry_failure_at_once: true,
            }
        }
    }
}

impl Exchange {
    fn as_answer(&self) -> Answer<'_> {
        match self {
            Exchange::Accepted(response) => Answer::Accepted(response),
            Exchange::Refused { status, body } => Answer::Refused {
                status: *status,
                body,
            },
            // Nothing was taken: for the outbox, the same as no answer (every event stays waiting).
            Exchange::Busy { .. } | Exchange::NoAnswer(_) => Answer::NoAnswer,
        }
    }
}

/// Reads an HTTP status and body as the protocol defines them: 200 with a `SyncResponse`, 4xx with an
/// `ErrorBody`; anything else, or a body that cannot be read, is no answer.
pub fn read_answer(status: u16, body: &[u8]) -> Exchange {
    match status {
        200 => match serde_json::from_slice::<SyncResponse>(body) {
            Ok(response) if response.protocol == PROTOCOL_VERSION => {
                Exchange::Accepted(Box::new(response))
            }
            Ok(response) => Exchange::NoAnswer(format!(
                "the office speaks protocol {}, this phone {PROTOCOL_VERSION}",
                response.protocol
            )),
            Err(error) => {
                Exchange::NoAnswer(format!("the office's answer could not be read: {error}"))
            }
        },
        400..=499 => match serde_json::from_slice::<ErrorBody>(body) {
            Ok(body) => Exchange::Refused { status, body },
            Err(_) => Exchange::NoAnswer(format!("the office answered {status} without a reason")),
        },
        _ => Exchange::NoAnswer(format!("the office answered {status}")),
    }
}

/// Reads an answer with its `Retry-After` header (seconds): a `503` that carries one is
/// [`Exchange::Busy`]; anything else is [`read_answer`]'s.
pub fn read_answer_with_retry(status: u16, retry_after: Option<Duration>, body: &[u8]) -> Exchange {
    match (status, retry_after) {
        (503, Some(wait)) => Exchange::Busy {
            retry_after: wait.min(MAX_BACK_OFF),
        },
        _ => read_answer(status, body),
    }
}

/// The pause after `failures` failed attempts in a row: 2, 4, 8, ... seconds, at most [`MAX_BACK_OFF`].
pub fn back_off_delay(failures: u32) -> Duration {
    let seconds = 1u64.checked_shl(failures.clamp(1, 16)).unwrap_or(u64::MAX);
    Duration::from_secs(seconds).min(MAX_BACK_OFF)
}

/// The pause after a sync that ended with `outcome`: [`next_pause`], and at least the office's
/// `Retry-After` when it was busy, unless an alert is waiting (an alert never waits for it).
pub fn pause_after(outcome: &SyncOutcome, failures: u32, alert_waiting: bool) -> Duration {
    let pause = next_pause(failures, alert_waiting);
    match outcome {
        SyncOutcome::Busy { retry_after } if !alert_waiting => pause.max(*retry_after),
        _ => pause,
    }
}

/// The pause before the next attempt: the idle tick after success, the back-off after `failures` failures,
/// and never more than [`ALERT_RETRY`] while an alert is waiting.
pub fn next_pause(failures: u32, alert_waiting: bool) -> Duration {
    if failures == 0 {
        return IDLE_TICK;
    }
    let pause = back_off_delay(failures);
    if alert_waiting {
        pause.min(ALERT_RETRY)
    } else {
        pause
    }
}

impl SyncClient {
    /// A client for the office at `office_url` (no trailing slash needed) with this device's token.
    pub fn new(office_url: &str, token: &str) -> Result<Self, ClientError> {
        Ok(Self {
            pooled: Arc::new(Mutex::new(pooled_client()?)),
            fresh: reqwest::Client::builder()
                .use_rustls_tls()
                .connect_timeout(CONNECT_TIMEOUT)
                .pool_max_idle_per_host(0)
                .build()?,
            office_url: office_url.trim_end_matches('/').to_owned(),
            token: Arc::new(std::sync::RwLock::new(token.to_owned())),
        })
    }

    pub fn office_url(&self) -> &str {
        &self.office_url
    }

    /// The token sent from now on (the office renewed it, and the phone has kept it).
    pub fn use_token(&self, token: &str) {
        *self
            .token
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = token.to_owned();
    }

    fn token(&self) -> String {
        self.token
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Sends everything waiting, batch after batch, and fetches the phone's holdings. Never fails: what
    /// happened is in the report and in the store's sync status.
    pub async fn sync_once(&self, store: &AppStore, now: impl Fn() -> DateTime<Utc>) -> SyncReport {
        let mut report = SyncReport {
            rounds: 0,
            confirmed: 0,
            refused: 0,
            holdings_saved: false,
            office_ahead: false,
            outcome: SyncOutcome::UpToDate,
        };
        let mut alerts = store.watch_alerts();
        while report.rounds < MAX_ROUNDS {
            report.rounds += 1;
            // An alert recorded from here on interrupts a request of ordinary steps (below).
            alerts.borrow_and_update();
            let waiting = match store.waiting() {
                Ok(waiting) => waiting,
                Err(error) => return storage_failed(report, error),
            };
            let batch = sync_plan::next_batch(&waiting, BATCH_LIMIT);
            let sent: Vec<EventId> = batch.iter().map(|event| event.id).collect();
            let more_waiting = waiting.len() > batch.len();
            let sent_at = now();
            if let Err(error) = store.note_sent(&sent, sent_at) {
                return storage_failed(report, error);
            }
            let request = SyncRequest {
                protocol: PROTOCOL_VERSION,
                device_time: sent_at,
                events: batch,
                holdings_cursor: store.holdings_cursor(),
            };
            let urgent = request.events.iter().any(|e| e.event.is_urgent());
            let exchange = if urgent {
                self.exchange(&request).await
            } else {
                // An alert must not wait behind ordinary steps on a slow or dead link: drop this request
                // (its events stay waiting; a copy the office already stored is answered as a duplicate
                // next time) and start again, alert first.
                tokio::select! {
                    exchange = self.exchange(&request) => exchange,
                    Ok(()) = alerts.changed() => {
                        tracing::info!("an alert was recorded: sending it first");
                        continue;
                    }
                }
            };

            let answered_at = now();
            let plan = sync_plan::after_answer(&sent, exchange.as_answer(), more_waiting);
            if let Err(error) = store.apply_updates(&plan.updates, answered_at) {
                return storage_failed(report, error);
            }
            for update in &plan.updates {
                match update {
                    sync_plan::OutboxUpdate::Confirm(_) => report.confirmed += 1,
                    sync_plan::OutboxUpdate::Refuse { .. } => report.refused += 1,
                }
            }
            // Enrolment's hook (`enrolment::after_sync_answer`): a renewed token is kept, then used; a
            // revoked phone deletes everything it holds and stops here.
            if crate::enrolment::after_sync_answer(self, store, &exchange, answered_at) {
                report.outcome = SyncOutcome::Refused {
                    status: 403,
                    message: "this phone was revoked and deleted what it held".into(),
                };
                return report;
            }
            let mut fetch_again = false;
            let noted = match &exchange {
                Exchange::Accepted(response) => {
                    report.outcome = SyncOutcome::UpToDate;
                    // The cursor follows only holdings this phone kept; otherwise it asks for everything.
                    let cursor = response.holdings_cursor.clone();
                    let kept = match response.hold_scope {
                        HoldScope::Full => store
                            .save_holdings(&response.hold, cursor, answered_at)
                            .map(|()| true),
                        HoldScope::ChangesOnly => {
                            store.merge_holdings(&response.hold, cursor, answered_at)
                        }
                    };
                    report.holdings_saved = matches!(kept, Ok(true));
                    fetch_again = !matches!(kept, Ok(true)) || response.more;
                    kept.and_then(|_| store.note_sync_success(answered_at, response.server_time))
                        .and_then(|()| {
                            // The office holds numbers this phone does not remember: move past them at
                            // once, before anything else is recorded under one.
                            let office = response.acknowledged_through.map_or(0, |seq| seq.get());
                            let last = store.last_seq()?;
                            if office > last {
                                report.office_ahead = true;
                                let plan = Reconciliation {
                                    restored: Some(Restored {
                                        office_seq: office,
                                        only_at_office: office - last,
                                    }),
                                    ..Reconciliation::default()
                                };
                                store.apply_reconciliation(&plan, answered_at)?;
                            }
                            Ok(())
                        })
                }
                // Some events were refused and set aside: the office is answering, so say nothing about
                // the link and send the rest again.
                Exchange::Refused { .. } if !plan.updates.is_empty() => Ok(()),
                Exchange::Refused { status, body } => {
                    report.outcome = SyncOutcome::Refused {
                        status: *status,
                        message: body.message.clone(),
                    };
                    let error = format!(
                        "the office refused ({status} {}): {}",
                        body.error, body.message
                    );
                    store.note_sync_refusal(answered_at, &error)
                }
                Exchange::Busy { retry_after } => {
                    report.outcome = SyncOutcome::Busy {
                        retry_after: *retry_after,
                    };
                    let error = format!(
                        "the office is busy; trying again in {} s",
                        retry_after.as_secs()
                    );
                    store.note_sync_failure(answered_at, &error)
                }
                Exchange::NoAnswer(error) => {
                    report.outcome = SyncOutcome::Unreachable {
                        error: error.clone(),
                    };
                    store.note_sync_failure(answered_at, error)
                }
            };
            if let Err(error) = noted {
                return storage_failed(report, error);
            }
            match plan.next {
                Next::SendAgain => continue,
                // More of the office's changes wait, or the last ones did not fit: fetch again.
                Next::Idle if fetch_again => continue,
                Next::Idle => return report,
                Next::BackOff => {
                    if report.outcome == SyncOutcome::UpToDate {
                        report.outcome = SyncOutcome::Unconfirmed;
                    }
                    return report;
                }
            }
        }
        tracing::warn!(
            rounds = report.rounds,
            "stopped syncing after too many rounds"
        );
        report.outcome = SyncOutcome::Unconfirmed;
        report
    }

    /// Asks the office which of this phone's recent events it holds and acts on the answer: sends again
    /// what it lost, moves past numbers it holds that the phone does not remember (and notes the restore),
    /// and records again under new numbers any event whose number is taken.
    pub async fn reconcile(
        &self,
        store: &AppStore,
        now: impl Fn() -> DateTime<Utc>,
    ) -> ReconcileOutcome {
        let question = match store.reconcile_question() {
            Ok(question) => question,
            Err(error) => return ReconcileOutcome::StorageFailed(error.to_string()),
        };
        let request = ReconcileRequest {
            protocol: PROTOCOL_VERSION,
            from_seq: question.from,
            through_seq: question.through,
        };
        let body = match serde_json::to_vec(&request) {
            Ok(body) => bytes::Bytes::from(body),
            Err(error) => return ReconcileOutcome::Unreachable(error.to_string()),
        };
        let pace = Pace::for_request(false, body.len());
        let (status, _, body) = match self.post_paced(RECONCILE_PATH, body, pace).await {
            Ok(answer) => answer,
            Err(error) => return ReconcileOutcome::Unreachable(error),
        };
        let answer = match status {
            200 => match serde_json::from_slice::<ReconcileResponse>(&body) {
                Ok(answer) if answer.protocol == PROTOCOL_VERSION => answer,
                _ => {
                    return ReconcileOutcome::Unreachable(
                        "the office's reconcile answer could not be read".into(),
                    )
                }
            },
            400..=499 => {
                let message = serde_json::from_slice::<ErrorBody>(&body)
                    .map(|e| e.message)
                    .unwrap_or_default();
                return ReconcileOutcome::Refused { status, message };
            }
            _ => return ReconcileOutcome::Unreachable(format!("the office answered {status}")),
        };
        let plan = reconcile::plan(&question.events, question.last_seq, &answer);
        let at = now();
        let recorded_again = match store
            .apply_reconciliation(&plan, at)
            .and_then(|again| store.note_reconciled(at).map(|()| again))
        {
            Ok(again) => again,
            Err(error) => return ReconcileOutcome::StorageFailed(error.to_string()),
        };
        ReconcileOutcome::Done {
            sent_again: plan.send_again.len(),
            recorded_again: recorded_again.len(),
            restored: plan.restored,
        }
    }

    /// One POST to the office, read into an [`Exchange`], at the pace its urgency and size call for.
    pub async fn exchange(&self, request: &SyncRequest) -> Exchange {
        let body = match serde_json::to_vec(request) {
            Ok(body) => bytes::Bytes::from(body),
            // Plain data with string keys cannot fail to serialise; say so rather than panic if it did.
            Err(error) => {
                return Exchange::NoAnswer(format!("the request could not be written: {error}"))
            }
        };
        let urgent = request.events.iter().any(|e| e.event.is_urgent());
        let pace = Pace::for_request(urgent, body.len());
        match self.post_paced(SYNC_PATH, body, pace).await {
            Ok((status, retry_after, body)) => read_answer_with_retry(status, retry_after, &body),
            Err(error) => Exchange::NoAnswer(error),
        }
    }

    /// POSTs `body` to `path` at the pace given and returns the answer's status and body, or why there is
    /// none (after which every kept-alive connection is dropped).
    async fn post_paced(
        &self,
        path: &'static str,
        body: bytes::Bytes,
        pace: Pace,
    ) -> Result<(u16, Option<Duration>, Vec<u8>), String> {
        let answer = self.attempts_paced(path, body, pace).await;
        if answer.is_err() {
            self.forget_connections();
        }
        answer
    }

    /// Runs attempts of one request as `pace` says until one begins to answer, then reads that answer.
    async fn attempts_paced(
        &self,
        path: &'static str,
        body: bytes::Bytes,
        pace: Pace,
    ) -> Result<(u16, Option<Duration>, Vec<u8>), String> {
        let started = Instant::now();
        let give_up = started + pace.give_up_after;
        let mut attempts: JoinSet<Result<reqwest::Response, reqwest::Error>> = JoinSet::new();
        let mut in_flight: VecDeque<AbortHandle> = VecDeque::new();
        let mut last_error = "no answer from the office".to_owned();
        // The first attempt may use a kept-alive connection; every later one opens its own.
        in_flight.push_back(attempts.spawn(self.attempt(self.pooled_client(), path, body.clone())));
        let mut made = 1usize;
        let mut next_hedge = started + pace.hedge_every;
        loop {
            let may_hedge = made < pace.max_attempts;
            tokio::select! {
                joined = attempts.join_next(), if !attempts.is_empty() => {
                    match joined {
                        Some(Ok(Ok(response))) => {
                            // The others would only compete with this answer for a slow link.
                            attempts.abort_all();
                            return read_response(response).await;
                        }
                        Some(Ok(Err(error))) => {
                            last_error = describe(&error);
                            in_flight.retain(|handle| !handle.is_finished());
                            if attempts.is_empty() {
                                if !may_hedge {
                                    return Err(last_error);
                                }
                                // Nothing left in flight. An ordinary request makes its one new-connection
                                // try now (the kept-alive connection may have been the trouble); an alert
                                // keeps its rhythm, so an office refusing connections is not asked in a
                                // tight loop.
                                if pace.retry_failure_at_once {
                                    next_hedge = Instant::now();
                                }
                            }
                        }
                        // An attempt dropped to make room: nothing to learn from it.
                        Some(Err(_)) | None => {}
                    }
                }
                () = tokio::time::sleep_until(next_hedge), if may_hedge => {
                    if in_flight.len() >= pace.max_in_flight {
                        if let Some(oldest) = in_flight.pop_front() {
                            oldest.abort();
                        }
                    }
                    tracing::debug!(attempt = made + 1, "no answer yet: trying a new connection too");
                    in_flight.push_back(attempts.spawn(self.attempt(self.fresh.clone(), path, body.clone())));
                    made += 1;
                    next_hedge = Instant::now() + pace.hedge_every;
                }
                () = tokio::time::sleep_until(give_up) => {
                    return Err(if attempts.is_empty() {
                        last_error
                    } else {
                        "the office did not answer in time".to_owned()
                    });
                }
            }
        }
    }

    /// One attempt: resolves when the office's answer begins (its status and headers) or the attempt fails.
    fn attempt(
        &self,
        http: reqwest::Client,
        path: &str,
        body: bytes::Bytes,
    ) -> impl std::future::Future<Output = Result<reqwest::Response, reqwest::Error>> + Send + 'static
    {
        http.post(format!("{}{path}", self.office_url))
            .bearer_auth(self.token())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
    }

    fn pooled_client(&self) -> reqwest::Client {
        self.pooled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Closes every kept-alive connection (they may be dead without knowing it): the next request opens a
    /// new one.
    fn forget_connections(&self) {
        match pooled_client() {
            Ok(client) => *self.pooled.lock().unwrap_or_else(PoisonError::into_inner) = client,
            Err(error) => {
                tracing::warn!(%error, "could not renew the HTTP client; keeping the old one")
            }
        }
    }

    /// Whether the office answers at all (any HTTP status counts), asked on a new connection with a short
    /// timeout. A cheap question the loop asks while it waits out a back-off.
    pub async fn office_reachable(&self) -> bool {
        let probe = self
            .fresh
            .get(format!("{}/api/v1/health", self.office_url))
            .send();
        matches!(tokio::time::timeout(PROBE_TIMEOUT, probe).await, Ok(Ok(_)))
    }

    /// Returns once a probe finds the office reachable, asking every [`PROBE_EVERY`].
    pub async fn wait_until_reachable(&self) {
        loop {
            tokio::time::sleep(PROBE_EVERY).await;
            if self.office_reachable().await {
                return;
            }
        }
    }
}

/// The client that keeps connections between syncs, for at most [`POOL_IDLE_TIMEOUT`] idle.
fn pooled_client() -> Result<reqwest::Client, ClientError> {
    Ok(reqwest::Client::builder()
        .use_rustls_tls()
        .connect_timeout(CONNECT_TIMEOUT)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .build()?)
}

/// Reads an answer that has begun, for as long as its bytes keep coming.
async fn read_response(
    mut response: reqwest::Response,
) -> Result<(u16, Option<Duration>, Vec<u8>), String> {
    let status = response.status().as_u16();
    // Seconds only: the office never sends an HTTP date.
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let mut body = Vec::new();
    loop {
        match tokio::time::timeout(ANSWER_STALL, response.chunk()).await {
            Err(_) => return Err("the office's answer stopped arriving".to_owned()),
            Ok(Err(error)) => return Err(describe(&error)),
            Ok(Ok(None)) => return Ok((status, retry_after, body)),
            Ok(Ok(Some(chunk))) => {
                body.extend_from_slice(&chunk);
                if body.len() > MAX_ANSWER_BYTES {
                    return Err("the office's answer is too large".to_owned());
                }
            }
        }
    }
}

fn storage_failed(mut report: SyncReport, error: doorstep_core::event_log::LogError) -> SyncReport {
    tracing::error!(%error, "sync stopped: the phone's database failed");
    report.outcome = SyncOutcome::StorageFailed {
        error: error.to_string(),
    };
    report
}

fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "the office did not answer in time".to_owned()
    } else if error.is_connect() {
        "could not connect to the office".to_owned()
    } else {
        format!("the request failed: {error}")
    }
}

/// Syncs forever: once now, then whenever `wake` fires (a new event was recorded, or the platform says the
/// network is back) or a pause passes ([`next_pause`]: the idle tick when all is well, the back-off after
/// failures, one second while an alert waits). While the office cannot be reached, a probe every
/// [`PROBE_EVERY`] ends the pause as soon as it answers, so ordinary steps go within seconds of the signal
/// returning, not at the end of a minute's back-off.
pub async fn run_sync_loop(client: SyncClient, store: AppStore, wake: Arc<Notify>) {
    let mut failures: u32 = 0;
    // Reconcile on start, then once a day; never ahead of an alert that is waiting.
    let mut reconcile_at = Instant::now();
    loop {
        // A revoked phone has deleted everything and has nothing more to say to the office.
        if store.removed().is_some() {
            return;
        }
        let alert_first = store.alert_waiting().unwrap_or(true);
        if Instant::now() >= reconcile_at && !alert_first {
            // An alert recorded meanwhile must not wait for this: drop it (it stays due) and sync.
            let mut alerts = store.watch_alerts();
            alerts.borrow_and_update();
            let outcome = tokio::select! {
                outcome = client.reconcile(&store, Utc::now) => outcome,
                Ok(()) = alerts.changed() => {
                    ReconcileOutcome::Unreachable("an alert was recorded; it goes first".into())
                }
            };
            match outcome {
                ReconcileOutcome::Unreachable(error) => {
                    tracing::debug!(%error, "could not reconcile yet");
                }
                outcome => {
                    match &outcome {
                        ReconcileOutcome::Done {
                            sent_again: 0,
                            recorded_again: 0,
                            restored: None,
                        } => tracing::debug!("reconciled: the office holds everything"),
                        ReconcileOutcome::Done { .. } => tracing::warn!(?outcome, "reconciled"),
                        _ => tracing::warn!(?outcome, "reconciliation refused"),
                    }
                    reconcile_at = Instant::now() + RECONCILE_EVERY;
                }
            }
        }
        let report = client.sync_once(&store, Utc::now).await;
        if report.office_ahead {
            // A restore from a backup: reconcile at once, then sync what it put back in the outbox.
            reconcile_at = Instant::now();
            continue;
        }
        failures = if report.should_back_off() {
            failures.saturating_add(1)
        } else {
            0
        };
        let alert_waiting = store.alert_waiting().unwrap_or_else(|error| {
            // Unknown: assume the worst and keep trying at the alert's pace.
            tracing::error!(%error, "cannot read the outbox");
            true
        });
        let pause = pause_after(&report.outcome, failures, alert_waiting);
        let unreachable = matches!(report.outcome, SyncOutcome::Unreachable { .. });
        let busy = matches!(report.outcome, SyncOutcome::Busy { .. });
        match &report.outcome {
            SyncOutcome::UpToDate => tracing::debug!(?report, "synced"),
            _ => tracing::warn!(?report, ?pause, "sync incomplete"),
        }
        // A wake-up that arrived while syncing is kept by `Notify`, so no new event waits a whole tick.
        // While a busy office's `Retry-After` runs, only an alert ends the wait early.
        let until = Instant::now() + pause;
        loop {
            tokio::select! {
                () = wake.notified() => {
                    if busy && !store.alert_waiting().unwrap_or(true) {
                        continue;
                    }
                }
                () = tokio::time::sleep_until(until) => {}
                () = client.wait_until_reachable(), if unreachable && pause > PROBE_EVERY => {
                    tracing::info!("the office answers again");
                }
            }
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_from_two_seconds_up_to_a_minute() {
        let seconds: Vec<u64> = (0..9).map(|n| back_off_delay(n).as_secs()).collect();
        assert_eq!(seconds, [2, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(back_off_delay(u32::MAX), MAX_BACK_OFF);
    }

    #[test]
    fn a_waiting_alert_is_tried_every_second_however_long_the_office_has_been_away() {
        assert_eq!(next_pause(0, false), IDLE_TICK);
        assert_eq!(
            next_pause(0, true),
            IDLE_TICK,
            "sent and confirmed: no hurry"
        );
        assert_eq!(next_pause(5, false), Duration::from_secs(32));
        for failures in [1, 5, 50] {
            assert_eq!(next_pause(failures, true), ALERT_RETRY);
        }
    }

    #[test]
    fn a_busy_office_is_waited_out_for_ordinary_steps_but_never_for_an_alert() {
        let busy = read_answer_with_retry(503, Some(Duration::from_secs(7)), b"{}");
        assert_eq!(
            busy,
            Exchange::Busy {
                retry_after: Duration::from_secs(7)
            }
        );
        assert_eq!(
            read_answer_with_retry(503, Some(Duration::from_secs(86_400)), b"{}"),
            Exchange::Busy {
                retry_after: MAX_BACK_OFF
            },
            "an office cannot silence a phone for longer than its longest back-off"
        );
        assert!(
            matches!(
                read_answer_with_retry(503, None, b""),
                Exchange::NoAnswer(_)
            ),
            "a 503 without Retry-After is no answer, as before"
        );
        let outcome = SyncOutcome::Busy {
            retry_after: Duration::from_secs(7),
        };
        assert_eq!(pause_after(&outcome, 1, false), Duration::from_secs(7));
        assert_eq!(
            pause_after(&outcome, 5, false),
            Duration::from_secs(32),
            "a longer back-off stays longer"
        );
        assert_eq!(pause_after(&outcome, 1, true), ALERT_RETRY);
    }

    #[test]
    fn an_alert_races_new_connections_quickly_and_big_requests_get_time_to_upload() {
        let alert = Pace::for_request(true, 600);
        assert_eq!(alert.hedge_every, Duration::from_millis(750));
        assert_eq!(alert.max_in_flight, URGENT_ATTEMPTS);
        assert!(alert.give_up_after < Duration::from_secs(6), "{alert:?}");
        assert!(
            !alert.retry_failure_at_once,
            "a refusing office is not asked in a tight loop"
        );

        let step = Pace::for_request(false, 1_000);
        assert_eq!(step.hedge_every, Duration::from_secs(4));
        assert_eq!((step.max_in_flight, step.max_attempts), (2, 2));
        assert_eq!(step.give_up_after, Duration::from_secs(11));

        // A full batch at the slowest link allowed for: its upload time is added to every deadline.
        let batch = Pace::for_request(false, sync_plan::BATCH_BYTES);
        assert_eq!(batch.give_up_after, Duration::from_millis(10_000 + 16_384));
        assert!(batch.hedge_every > Duration::from_secs(16));
    }

    #[test]
    fn http_results_map_to_answers() {
        let refusal = br#"{"error":"unknown_device","message":"who are you?"}"#;
        let cases: &[(u16, &[u8], &str)] = &[
            (200, b"not json", "no answer"),
            (200, b"{}", "no answer"),
            (401, refusal, "refused"),
            (401, b"<html>", "no answer"),
            (404, b"", "no answer"),
            (500, refusal, "no answer"),
            (502, b"bad gateway", "no answer"),
            (302, b"", "no answer"),
        ];
        for (status, body, expected) in cases {
            let got = match read_answer(*status, body) {
                Exchange::Accepted(_) => "accepted",
                Exchange::Refused { .. } => "refused",
                Exchange::Busy { .. } => "busy",
                Exchange::NoAnswer(_) => "no answer",
            };
            assert_eq!(
                got,
                *expected,
                "{status} {:?}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
