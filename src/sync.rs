//! The sync transport: HTTP around the core's pure sync planner.
//!
//! [`SyncClient::sync_once`] sends what is waiting in batches (an empty batch too: that is how the phone
//! fetches its visits), turns each HTTP result into a `sync_plan::Answer`, and applies what
//! `sync_plan::after_answer` decides. An event is marked delivered only from the office's per-event answer.
//! [`run_sync_loop`] repeats that forever: at once after a new event, every 15 s when idle, and with a
//! growing pause while the office cannot be reached.
//!
//! Two answers concern the phone's credential rather than its events (`enrolment::after_sync_answer`): a
//! renewed token in a sync answer is kept (sealed, on disk) and then used, and `device_revoked` makes the
//! phone delete everything it holds and the loop stop.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use doorstep_core::ids::EventId;
use doorstep_core::protocol::{ErrorBody, SyncRequest, SyncResponse, PROTOCOL_VERSION};
use doorstep_core::sync_plan::{self, Answer, Next, BATCH_LIMIT};
use tokio::sync::Notify;

use crate::store::AppStore;

/// How long one request may take before it counts as no answer.
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
    http: reqwest::Client,
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
    pub outcome: SyncOutcome,
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
    Refused { status: u16, body: ErrorBody },
    NoAnswer(String),
}

impl Exchange {
    fn as_answer(&self) -> Answer<'_> {
        match self {
            Exchange::Accepted(response) => Answer::Accepted(response),
            Exchange::Refused { status, body } => Answer::Refused {
                status: *status,
                body,
            },
            Exchange::NoAnswer(_) => Answer::NoAnswer,
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

/// The pause after `failures` failed attempts in a row: 2, 4, 8, ... seconds, at most [`MAX_BACK_OFF`].
pub fn back_off_delay(failures: u32) -> Duration {
    let seconds = 1u64.checked_shl(failures.clamp(1, 16)).unwrap_or(u64::MAX);
    Duration::from_secs(seconds).min(MAX_BACK_OFF)
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
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()?;
        Ok(Self {
            http,
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
            outcome: SyncOutcome::UpToDate,
        };
        while report.rounds < MAX_ROUNDS {
            report.rounds += 1;
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
            };
            let exchange = self.exchange(&request).await;

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
            let noted = match &exchange {
                Exchange::Accepted(response) => {
                    report.holdings_saved = true;
                    report.outcome = SyncOutcome::UpToDate;
                    store
                        .save_holdings(&response.hold, answered_at)
                        .and_then(|()| store.note_sync_success(answered_at, response.server_time))
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

    /// One POST to the office, read into an [`Exchange`].
    pub async fn exchange(&self, request: &SyncRequest) -> Exchange {
        let url = format!("{}/api/v1/sync", self.office_url);
        let response = match self
            .http
            .post(&url)
            .bearer_auth(self.token())
            .json(request)
            .send()
            .await
        {
            Ok(response) => response,
            Err(error) => return Exchange::NoAnswer(describe(&error)),
        };
        let status = response.status().as_u16();
        match response.bytes().await {
            Ok(body) => read_answer(status, &body),
            Err(error) => Exchange::NoAnswer(describe(&error)),
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

/// Syncs forever: once now, then whenever `wake` fires (a new event was recorded) or a tick passes
/// ([`next_pause`]: the idle tick when all is well, the back-off after failures, one second while an alert
/// waits).
pub async fn run_sync_loop(client: SyncClient, store: AppStore, wake: Arc<Notify>) {
    let mut failures: u32 = 0;
    loop {
        // A revoked phone has deleted everything and has nothing more to say to the office.
        if store.removed().is_some() {
            return;
        }
        let report = client.sync_once(&store, Utc::now).await;
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
        let pause = next_pause(failures, alert_waiting);
        match &report.outcome {
            SyncOutcome::UpToDate => tracing::debug!(?report, "synced"),
            _ => tracing::warn!(?report, ?pause, "sync incomplete"),
        }
        // A wake-up that arrived while syncing is kept by `Notify`, so no new event waits a whole tick.
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(pause) => {}
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
