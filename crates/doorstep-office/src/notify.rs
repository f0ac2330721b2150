//! Alarm notifications beyond the board: email over SMTP and a signed generic webhook (for an SMS gateway or
//! a pager), each delivery recorded before it is sent, retried while its alarm is open, and logged in the
//! alarm's history.
//!
//! How it fits together:
//!
//! - A school's [`NotificationTarget`]s say where to send (an email address, or a webhook URL with its
//!   HMAC secret) and which alarm levels each wants: the board, the authoriser, or both.
//! - The escalation engine writes every alarm step to the store (`alarm_log`) and then announces it. The
//!   [`Notifier`] wakes on the announcement and [records](Notifier::record_deliveries) one delivery per
//!   step and matching target, payload included, before anything is sent. It works from the store, not
//!   from the announcement itself, so a step whose announcement was missed (a restart between the two, a
//!   lagging channel) is still picked up on the next pass.
//! - [`Notifier::deliver_due`] is one step of the worker: it sends every delivery that is due and records
//!   each attempt, delivered (an SMTP 250 after the message; an HTTP 2xx) or failed with the next try
//!   10 s, 30 s, 1 min, 2 min, then every 5 min later, for as long as the alarm is open. The running loop
//!   ([`Notifier::spawn`]) sleeps until the next try is due or something new is announced.
//!
//! Invariants: a notification is recorded, with the exact bytes every attempt will send, before it is
//! first sent; it is marked delivered only on an HTTP 2xx or the SMTP 250 after the message; every attempt,
//! delivered or failed, is a line in the alarm's log ("notified", "notification_failed"), and so in the
//! visit's timeline; once the alarm is acknowledged, what is still waiting is dropped
//! ("notification_cancelled"). No notification names the pupil: they are stored and passed on by
//! other people's mail relays and gateways.
//!
//! Which steps tell whom: "raised" goes to targets wanting the board (and, for an alarm raised straight at
//! the authoriser such as duress, to targets wanting the authoriser too, in the same single message);
//! "authoriser told" and "authoriser reminded" go to targets wanting the authoriser.
//!
//! Delivery is at least once: if the office dies after a receiver accepted a message but before it wrote
//! that down, the message is sent again. Webhook receivers drop repeats by `X-Doorstep-Delivery`; emails
//! carry the same id as their `Message-ID`.
//!
//! Email goes out through lettre (`smtp.rs`): STARTTLS or implicit TLS with rustls, AUTH PLAIN or LOGIN, and
//! plain SMTP only to a relay on this machine. The settings are checked when the notifier is made, so a
//! plain relay elsewhere or an unreadable certificate stops the office at start, not at the first alarm.
//!
//! Deliberately absent for now: SMTPUTF8 (addresses are ASCII), OAuth2 sign-in to the relay (XOAUTH2), and
//! any way to edit or remove a target other than the database.

mod message;
mod smtp;
mod store;
mod webhook;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use doorstep_core::ids::SchoolId;
use tokio::sync::{broadcast, Notify};
use uuid::Uuid;

use crate::clock::Clock;
use crate::escalation::BoardEvent;
use crate::store::{SqliteStore, StoreError};

pub use message::sign_webhook_body;
pub use smtp::{SmtpConfig, SmtpLogin, SmtpSetupError, SmtpTls, SMTP_TIMEOUT};

/// Where notifications leave from. Targets live in the store; this is only how to reach the outside.
#[derive(Debug, Clone, Default)]
pub struct NotifyConfig {
    /// The SMTP server to hand email to. Without one, email deliveries are still recorded, and each attempt
    /// fails with a clear error in the alarm log until the office is started with one.
    pub smtp: Option<SmtpConfig>,
}

/// How long a webhook receiver has to answer before the attempt counts as failed.
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one delivery stays claimed by the worker sending it: longer than any attempt may take, so two
/// workers never send the same delivery at once, and one cut off mid-send is tried again after this.
const CLAIM: TimeDelta = TimeDelta::seconds(60);

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("invalid notification target: {0}")]
    InvalidTarget(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("could not set up the HTTP client for webhooks: {0}")]
    HttpClient(#[source] reqwest::Error),
    #[error("the SMTP settings cannot be used: {0}")]
    Smtp(#[from] SmtpSetupError),
}

/// Email or webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Email,
    Webhook,
}

impl TargetKind {
    fn as_str(self) -> &'static str {
        match self {
            TargetKind::Email => "email",
            TargetKind::Webhook => "webhook",
        }
    }
}

/// Which alarm levels a target wants to hear about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WantedLevels {
    /// Alarms as they are raised on the office board.
    pub board: bool,
    /// Alarms that reach the authoriser: escalations, reminders, and duress.
    pub authoriser: bool,
}

impl WantedLevels {
    pub const BOARD: Self = Self {
        board: true,
        authoriser: false,
    };
    pub const AUTHORISER: Self = Self {
        board: false,
        authoriser: true,
    };
    pub const BOTH: Self = Self {
        board: true,
        authoriser: true,
    };
}

/// A target to add, checked: build it with [`NewTarget::email`] or [`NewTarget::webhook`].
#[derive(Clone)]
pub struct NewTarget {
    kind: TargetKind,
    address: String,
    secret: Option<String>,
    wants: WantedLevels,
}

impl std::fmt::Debug for NewTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewTarget")
            .field("kind", &self.kind)
            .field("address", &self.address)
            .field("wants", &self.wants)
            .finish_non_exhaustive()
    }
}

impl NewTarget {
    /// An email address (plain ASCII `local@domain`) that wants the given levels.
    pub fn email(address: &str, wants: WantedLevels) -> Result<Self, NotifyError> {
        Ok(Self {
            kind: TargetKind::Email,
            address: parse_email_address(address)?,
            secret: None,
            wants: check_wants(wants)?,
        })
    }

    /// An `http` or `https` URL, and the secret (16 to 256 characters) its requests are signed with.
    pub fn webhook(url: &str, secret: &str, wants: WantedLevels) -> Result<Self, NotifyError> {
        let url = url.trim();
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| NotifyError::InvalidTarget(format!("{url:?} is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(NotifyError::InvalidTarget(format!(
                "{url:?}: a webhook is an http:// or https:// URL with a host"
            )));
        }
        if !(16..=256).contains(&secret.chars().count()) {
            return Err(NotifyError::InvalidTarget(
                "a webhook secret is 16 to 256 characters".into(),
            ));
        }
        Ok(Self {
            kind: TargetKind::Webhook,
            address: parsed.to_string(),
            secret: Some(secret.to_owned()),
            wants: check_wants(wants)?,
        })
    }
}

fn check_wants(wants: WantedLevels) -> Result<WantedLevels, NotifyError> {
    if wants.board || wants.authoriser {
        Ok(wants)
    } else {
        Err(NotifyError::InvalidTarget(
            "a target wants board alarms, authoriser alarms, or both".into(),
        ))
    }
}

/// Checks an email address enough to put it safely in an SMTP command and a header: one `@`, something
/// either side, printable ASCII with none of the characters that would need quoting.
pub fn parse_email_address(text: &str) -> Result<String, NotifyError> {
    let address = text.trim();
    let bad = |why: &str| NotifyError::InvalidTarget(format!("{address:?} {why}"));
    if address.len() > 254 {
        return Err(bad("is longer than an email address can be"));
    }
    if let Some(c) = address
        .chars()
        .find(|c| !c.is_ascii_graphic() || "<>()[]\\,;:\"".contains(*c))
    {
        return Err(bad(&format!(
            "is not a plain email address (it contains {c:?})"
        )));
    }
    match address.split_once('@') {
        Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@') =>
        {
            Ok(address.to_owned())
        }
        _ => Err(bad("is not an email address (local@domain)")),
    }
}

/// A place a school's alarms are sent to.
#[derive(Clone)]
pub struct NotificationTarget {
    pub id: i64,
    pub school: SchoolId,
    pub kind: TargetKind,
    /// The email address or webhook URL.
    pub address: String,
    secret: Option<String>,
    pub wants: WantedLevels,
    /// It hears of alarm steps from this moment on.
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for NotificationTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotificationTarget")
            .field("id", &self.id)
            .field("school", &self.school)
            .field("kind", &self.kind)
            .field("address", &self.address)
            .field("wants", &self.wants)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

impl NotificationTarget {
    /// How the alarm log names this target: the address for email, only the host for a webhook (its URL
    /// may carry a gateway's credentials).
    pub fn label(&self) -> String {
        match self.kind {
            TargetKind::Email => format!("email to {}", self.address),
            TargetKind::Webhook => format!(
                "webhook to {}",
                reqwest::Url::parse(&self.address)
                    .ok()
                    .and_then(|url| url.host_str().map(str::to_owned))
                    .unwrap_or_else(|| "?".into())
            ),
        }
    }
}

/// One notification of one alarm step to one target, and how its sending went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: Uuid,
    pub alarm: i64,
    /// The `alarm_log` entry this tells of.
    pub step: i64,
    pub target: i64,
    pub created_at: DateTime<Utc>,
    pub attempts: u32,
    /// `None` once delivered, or once the alarm was acknowledged before it could be.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// The error of the latest failed attempt, if any.
    pub last_error: Option<String>,
    /// Exactly what every attempt sends.
    pub payload: String,
}

/// What one [`Notifier::deliver_due`] step did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryOutcome {
    pub delivered: usize,
    pub failed: usize,
    /// Not sent because their alarm was acknowledged first.
    pub cancelled: usize,
    /// When the next delivery is due, if any is still waiting.
    pub next_due: Option<DateTime<Utc>>,
}

impl DeliveryOutcome {
    pub fn attempted(&self) -> usize {
        self.delivered + self.failed
    }
}

/// How long to wait before trying again after `failed_attempts` failures in a row: 10 s, 30 s, 1 min,
/// 2 min, then every 5 min. There is no last try: only an acknowledgement stops it.
pub fn retry_delay(failed_attempts: u32) -> TimeDelta {
    match failed_attempts {
        0 | 1 => TimeDelta::seconds(10),
        2 => TimeDelta::seconds(30),
        3 => TimeDelta::minutes(1),
        4 => TimeDelta::minutes(2),
        _ => TimeDelta::minutes(5),
    }
}

/// Records and sends notifications for one store.
#[derive(Clone)]
pub struct Notifier {
    store: Arc<SqliteStore>,
    config: NotifyConfig,
    /// `config.smtp`, checked and ready to send.
    mailer: Option<smtp::Mailer>,
    http: reqwest::Client,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A handle on the running notifier.
#[derive(Debug, Clone)]
pub struct NotifierHandle {
    wake: Arc<Notify>,
}

impl NotifierHandle {
    /// Asks for a pass now (new targets, say), without waiting for the next announcement or retry.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

impl Notifier {
    pub fn new(store: Arc<SqliteStore>, config: NotifyConfig) -> Result<Self, NotifyError> {
        let http = reqwest::Client::builder()
            .timeout(WEBHOOK_TIMEOUT)
            .connect_timeout(WEBHOOK_TIMEOUT)
            // A redirect is not a delivery: the receiver must answer 2xx at the URL it was given.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("doorstep-office/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(NotifyError::HttpClient)?;
        let mailer = config.smtp.as_ref().map(smtp::Mailer::new).transpose()?;
        Ok(Self {
            store,
            config,
            mailer,
            http,
        })
    }

    /// Records one delivery, with its payload, for every alarm step and matching target that has none yet.
    /// Only open alarms, and only steps no older than the target. Returns how many were recorded.
    pub fn record_deliveries(&self, now: DateTime<Utc>) -> Result<usize, NotifyError> {
        let from = self.config.smtp.as_ref().map(|smtp| smtp.from.as_str());
        Ok(self.store.record_deliveries(now, from)?)
    }

    /// One step of the worker: sends every delivery due at `now` (all at once, each in its own task) and
    /// records how each went; drops those whose alarm has been acknowledged.
    pub async fn deliver_due(&self, now: DateTime<Utc>) -> Result<DeliveryOutcome, NotifyError> {
        let sending = self.start_due(now)?;
        self.finish(sending).await
    }

    /// The first half of [`Notifier::deliver_due`]: drops the deliveries of acknowledged alarms, claims the
    /// due ones and starts sending them.
    fn start_due(&self, now: DateTime<Utc>) -> Result<Sending, NotifyError> {
        let cancelled = self.store.cancel_acknowledged_deliveries(now)?;
        let due = self.store.claim_due_deliveries(now, now + CLAIM)?;
        let mut attempts = tokio::task::JoinSet::new();
        for delivery in due {
            let notifier = self.clone();
            attempts.spawn(async move {
                let result = notifier.send(&delivery).await;
                (delivery, result)
            });
        }
        Ok(Sending {
            now,
            cancelled,
            attempts,
        })
    }

    /// The second half: waits for every attempt and writes each down.
    async fn finish(&self, mut sending: Sending) -> Result<DeliveryOutcome, NotifyError> {
        let now = sending.now;
        let mut outcome = DeliveryOutcome {
            cancelled: sending.cancelled,
            ..DeliveryOutcome::default()
        };
        while let Some(joined) = sending.attempts.join_next().await {
            let (delivery, result) = match joined {
                Ok(done) => done,
                Err(error) => {
                    // The claim runs out and the delivery is tried again.
                    tracing::error!(%error, "a notification attempt did not finish");
                    continue;
                }
            };
            let attempt = delivery.attempts + 1;
            let label = delivery.target.label();
            match result {
                Ok(answer) => {
                    tracing::info!(delivery = %delivery.id, %label, attempt, "notification delivered");
                    self.store.record_attempt(
                        &delivery,
                        now,
                        store::Attempt::Delivered {
                            detail: format!("{label}: {answer} (attempt {attempt})"),
                        },
                    )?;
                    outcome.delivered += 1;
                }
                Err(error) => {
                    let next = now + retry_delay(attempt);
                    tracing::warn!(delivery = %delivery.id, %label, attempt, %error, "notification failed");
                    self.store.record_attempt(
                        &delivery,
                        now,
                        store::Attempt::Failed {
                            error: error.clone(),
                            next_attempt_at: next,
                            detail: format!(
                                "{label} failed (attempt {attempt}): {error}; next try at {}",
                                next.format("%H:%M:%S UTC")
                            ),
                        },
                    )?;
                    outcome.failed += 1;
                }
            }
        }
        outcome.next_due = self.store.next_delivery_due()?;
        Ok(outcome)
    }

    /// Sends one delivery; `Ok` says what the receiver answered.
    async fn send(&self, delivery: &store::DueDelivery) -> Result<String, String> {
        match delivery.target.kind {
            TargetKind::Email => {
                let mailer = self.mailer.as_ref().ok_or_else(|| {
                    "no SMTP server is configured (start the office with --smtp HOST:PORT --smtp-from ADDRESS)"
                        .to_owned()
                })?;
                mailer
                    .send(&delivery.target.address, &delivery.payload)
                    .await
                    .map(|()| "accepted by the SMTP server".to_owned())
                    .map_err(|e| e.to_string())
            }
            TargetKind::Webhook => {
                let secret = delivery.target.secret.as_deref().unwrap_or_default();
                webhook::post(
                    &self.http,
                    &delivery.target.address,
                    secret,
                    &delivery.id,
                    &delivery.payload,
                )
                .await
                .map(|status| format!("answered {status}"))
                .map_err(|e| e.to_string())
            }
        }
    }

    /// Runs the worker on the current runtime: a pass at once (catching up on anything recorded before a
    /// restart), then one whenever an alarm is raised, escalated or acknowledged, when the next retry is
    /// due, or when woken.
    pub fn spawn(
        self,
        clock: Clock,
        board: broadcast::Receiver<BoardEvent>,
    ) -> (NotifierHandle, tokio::task::JoinHandle<()>) {
        let wake = Arc::new(Notify::new());
        let handle = NotifierHandle { wake: wake.clone() };
        let task = tokio::spawn(run(self, clock, board, wake));
        (handle, task)
    }
}

/// Attempts under way, started by [`Notifier::start_due`].
struct Sending {
    now: DateTime<Utc>,
    cancelled: usize,
    attempts: tokio::task::JoinSet<(store::DueDelivery, Result<String, String>)>,
}

/// The worker's loop. Sending runs beside it, so a receiver that is slow to answer (an SMTP server may
/// take up to [`SMTP_TIMEOUT`] to fail) never holds up the notifications of the next alarm.
async fn run(
    notifier: Notifier,
    clock: Clock,
    board: broadcast::Receiver<BoardEvent>,
    wake: Arc<Notify>,
) {
    let mut board = Some(board);
    // Dropped, and so stopped, with this loop; a delivery cut off mid-send is tried again when its claim
    // runs out.
    let mut in_flight = tokio::task::JoinSet::new();
    loop {
        let now = clock();
        if let Err(error) = notifier.record_deliveries(now) {
            tracing::error!(%error, "could not record notifications; trying again in 1 s");
        }
        let started = match notifier.start_due(now) {
            Ok(sending) => {
                if !sending.attempts.is_empty() {
                    let notifier = notifier.clone();
                    in_flight.spawn(async move {
                        if let Err(error) = notifier.finish(sending).await {
                            tracing::error!(%error, "could not record a notification attempt");
                        }
                    });
                }
                true
            }
            Err(error) => {
                tracing::error!(%error, "notification pass failed; trying again in 1 s");
                false
            }
        };
        let next = match notifier.store.next_delivery_due() {
            Ok(due) if started => due,
            Ok(_) => Some(now + TimeDelta::seconds(1)),
            Err(error) => {
                tracing::error!(%error, "could not read when the next notification is due");
                Some(now + TimeDelta::seconds(1))
            }
        };
        let pause = match next {
            Some(at) => (at - clock()).to_std().unwrap_or(Duration::ZERO),
            None => Duration::from_secs(3600),
        };
        let channel_open = tokio::select! {
            () = tokio::time::sleep(pause) => true,
            () = wake.notified() => true,
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => true,
            open = next_alarm_news(&mut board) => open,
        };
        if !channel_open {
            // The engine has stopped; retries still fall due.
            board = None;
        }
    }
}

/// Waits for news that may need a notification (or a cancellation). False when the channel has closed.
async fn next_alarm_news(board: &mut Option<broadcast::Receiver<BoardEvent>>) -> bool {
    let Some(receiver) = board else {
        return std::future::pending().await;
    };
    loop {
        match receiver.recv().await {
            Ok(BoardEvent::VisitChanged { .. }) => continue,
            // Missed announcements are harmless: a pass works from the store.
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => return true,
            Err(broadcast::error::RecvError::Closed) => return false,
        }
    }
}
