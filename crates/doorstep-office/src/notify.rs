//! Notifications beyond the board: alarm steps and safeguarding notices, by email over SMTP and by signed
//! generic webhook (for an SMS gateway or a pager), each delivery recorded before it is sent, retried until
//! it lands (an alarm's only while nobody is handling it), and logged in the alarm's history.
//!
//! How it fits together:
//!
//! - A school's [`NotificationTarget`]s say where to send (an email address, or a webhook URL with its
//!   HMAC secret), which alarm levels each wants (the board, the authoriser's level, the deputy and further
//!   contacts), and whose contact it is by role (safeguarding notices go to the targets of the policy's
//!   `safeguarding_concerns_to`). A target can also belong to one visit: its out-of-hours responsible
//!   contact, told of every alarm of that visit. Admins add and remove targets on `/admin/notifications`
//!   (or with `doorstep-office add-target`); a removed target is kept, so its deliveries stay readable.
//! - The escalation engine writes every alarm step to the store (`alarm_log`) and then announces it; the
//!   store writes a safeguarding notice in the same transaction as the event that carries it. The
//!   [`Notifier`] wakes on every announcement (a raised duress alarm is handed to its targets within the
//!   same instant, not at a timer) and [records](Notifier::record_deliveries) one delivery per step (or
//!   notice) and matching target, payload included, before anything is sent. It works from the store, not
//!   from the announcement, so a step whose announcement was missed (a restart between the two, a lagging
//!   channel) is still picked up on the next pass.
//! - [`Notifier::deliver_due`] is one step of the worker: it hands every delivery that is due to the
//!   [`Transport`] and records each attempt, delivered (the server accepted it: an SMTP 250 after the
//!   message; an HTTP 2xx) or failed with the next try 10 s, 30 s, 1 min, 2 min, then every 5 min later.
//!   The running loop ([`Notifier::spawn`]) sleeps until the next try is due or something new is
//!   announced. The transport is the only part that touches the network ([`NetTransport`]; tests may hand
//!   the notifier their own), so the rules here do not depend on how mail is sent.
//!
//! Invariants: a notification is recorded, with the exact bytes every attempt will send, before it is
//! first sent; it is marked delivered only when the transport says the server accepted it; every attempt
//! on an alarm step, delivered or failed, is a line in the alarm's log ("notified", "notification_failed"),
//! and so in the visit's timeline; once the alarm is acknowledged (someone is handling it), or the target
//! removed, what is still waiting is dropped ("notification_cancelled"). Who was told is read only from
//! these deliveries ([`crate::reach`]). No notification names the pupil or carries a write-up's words: they
//! are stored and passed on by other people's mail relays and gateways.
//!
//! Which steps tell whom: "raised" goes to targets wanting the board, and to those wanting each level up
//! to the one it was raised at (duress starts at the authoriser's level), in one message; "reached_level"
//! goes to targets wanting that level; "reminded" (at the top) to those wanting the authoriser's level or
//! the further contacts. A visit's own contact hears every one of those steps of that visit's alarms.
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
//! editing a target in place (remove it and add it again).

pub(crate) mod message;
mod smtp;
pub(crate) use crate::store::sqlite::deliveries as store;
mod webhook;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use doorstep_core::domain::Role;
use doorstep_core::ids::{SchoolId, VisitId};
use doorstep_core::schedule::AlarmLevel;
use tokio::sync::{broadcast, Notify};
use uuid::Uuid;

use crate::clock::Clock;
use crate::escalation::BoardEvent;
use crate::store::deliveries::Deliveries;
use crate::store::{SqliteStore, StoreError};

pub use message::sign_webhook_body;
pub use smtp::{SmtpConfig, SmtpLogin, SmtpSetupError, SmtpTls, SMTP_TIMEOUT};
pub use store::{Attempt, DueDelivery};

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

/// How long a safeguarding notice nobody could be sent yet waits for a target to be added for its role.
pub const NOTICE_WAITS_FOR_A_TARGET: TimeDelta = TimeDelta::days(7);

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
    const ALL: [TargetKind; 2] = [TargetKind::Email, TargetKind::Webhook];

    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Email => "email",
            TargetKind::Webhook => "webhook",
        }
    }

    /// The kind stored as `name` ([`TargetKind::as_str`]).
    pub(crate) fn parse(name: &str) -> Option<TargetKind> {
        TargetKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }
}

/// Which alarm levels a target wants to hear about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WantedLevels {
    /// Alarms as they are raised on the office board.
    pub board: bool,
    /// Alarms that reach the authoriser's level: escalations and duress.
    pub authoriser: bool,
    /// Alarms nobody acknowledged at the authoriser's level in time: the deputy and further contacts (the
    /// academy's Principal or senior leaders), and the reminders after.
    pub further: bool,
}

impl WantedLevels {
    pub const NONE: Self = Self {
        board: false,
        authoriser: false,
        further: false,
    };
    pub const BOARD: Self = Self::NONE.with(AlarmLevel::Board);
    pub const AUTHORISER: Self = Self::NONE.with(AlarmLevel::Authoriser);
    pub const FURTHER: Self = Self::NONE.with(AlarmLevel::Further);
    pub const BOTH: Self = Self::BOARD.with(AlarmLevel::Authoriser);
    pub const ALL: Self = Self::BOTH.with(AlarmLevel::Further);

    /// These levels and `level`: what [`WantedLevels::wants`] then says yes to.
    pub const fn with(mut self, level: AlarmLevel) -> Self {
        match level {
            AlarmLevel::Board => self.board = true,
            AlarmLevel::Authoriser => self.authoriser = true,
            AlarmLevel::Further => self.further = true,
        }
        self
    }

    pub fn any(self) -> bool {
        self.board || self.authoriser || self.further
    }

    /// Whether it wants alarms at `level`.
    pub fn wants(self, level: AlarmLevel) -> bool {
        match level {
            AlarmLevel::Board => self.board,
            AlarmLevel::Authoriser => self.authoriser,
            AlarmLevel::Further => self.further,
        }
    }
}

/// A webhook's signing secret or the SMTP password. Its `Debug` says only that there is one, so no log
/// or debug output of a target, a message or the SMTP login shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub(crate) String);

impl Secret {
    /// The secret itself, to sign with and to store.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// A target to add, checked: build it with [`NewTarget::email`] or [`NewTarget::webhook`], then say whose
/// it is with [`NewTarget::named`] and [`NewTarget::for_roles`].
#[derive(Debug, Clone)]
pub struct NewTarget {
    pub(crate) kind: TargetKind,
    pub(crate) address: String,
    pub(crate) secret: Option<Secret>,
    pub(crate) wants: WantedLevels,
    pub(crate) name: String,
    pub(crate) roles: Vec<Role>,
}

impl NewTarget {
    /// An email address (plain ASCII `local@domain`) that wants the given levels.
    pub fn email(address: &str, wants: WantedLevels) -> Result<Self, NotifyError> {
        Ok(Self {
            kind: TargetKind::Email,
            address: parse_email_address(address)?,
            secret: None,
            wants,
            name: String::new(),
            roles: Vec::new(),
        })
    }

    /// An `https` URL (or `http` to this machine), and the secret (16 to 256 characters) its requests
    /// are signed with.
    pub fn webhook(url: &str, secret: &str, wants: WantedLevels) -> Result<Self, NotifyError> {
        Self::webhook_allowing(url, secret, wants, false)
    }

    /// [`NewTarget::webhook`], with `plain_http_allowed` letting an `http://` URL to another machine
    /// through: only for a gateway on a network the school trusts, said explicitly (`--allow-plain-http`).
    pub fn webhook_allowing(
        url: &str,
        secret: &str,
        wants: WantedLevels,
        plain_http_allowed: bool,
    ) -> Result<Self, NotifyError> {
        let url = url.trim();
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| NotifyError::InvalidTarget(format!("{url:?} is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(NotifyError::InvalidTarget(format!(
                "{url:?}: a webhook is an https:// URL with a host"
            )));
        }
        let loopback = match parsed.host_str() {
            Some("localhost") => true,
            Some(host) => host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback()),
            None => false,
        };
        if parsed.scheme() == "http" && !loopback && !plain_http_allowed {
            return Err(NotifyError::InvalidTarget(format!(
                "{url:?}: a webhook must be https:// (alarms and a signature travel in it); plain http:// \
                 only to this machine, or with --allow-plain-http for a gateway on a trusted network"
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
            secret: Some(Secret(secret.to_owned())),
            wants,
            name: String::new(),
            roles: Vec::new(),
        })
    }

    /// Whose it is, in words (a name or a post: "Priya Head", "deputy head"); at most 100 characters.
    pub fn named(mut self, name: &str) -> Result<Self, NotifyError> {
        let name = name.trim();
        if name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(NotifyError::InvalidTarget(
                "a target's name is one line of at most 100 characters".into(),
            ));
        }
        self.name = name.to_owned();
        Ok(self)
    }

    /// The roles whose contact it is: safeguarding notices go to the targets of the policy's
    /// `safeguarding_concerns_to`.
    pub fn for_roles(mut self, roles: &[Role]) -> Self {
        let mut roles = roles.to_vec();
        roles.sort();
        roles.dedup();
        self.roles = roles;
        self
    }

    /// Refused when it would hear of nothing: no alarm level and no role.
    pub(crate) fn checked(&self) -> Result<(), NotifyError> {
        if self.wants.any() || !self.roles.is_empty() {
            Ok(())
        } else {
            Err(NotifyError::InvalidTarget(
                "it would hear of nothing: choose the alarms it wants (the board, the authoriser's level, \
                 the deputy and further contacts) or the roles whose contact it is (for safeguarding \
                 notices)"
                    .into(),
            ))
        }
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

/// A place a school's alarms (or one visit's) and safeguarding notices are sent to.
#[derive(Debug, Clone)]
pub struct NotificationTarget {
    pub id: i64,
    pub school: SchoolId,
    pub kind: TargetKind,
    /// The email address or webhook URL.
    pub address: String,
    pub(crate) secret: Option<Secret>,
    /// Whose it is, in the admin's words; a responsible contact's name.
    pub name: String,
    pub wants: WantedLevels,
    /// The roles whose contact it is.
    pub roles: Vec<Role>,
    /// A visit's own contact (its out-of-hours responsible contact), told of that visit's alarms only.
    pub visit: Option<VisitId>,
    /// It hears of alarm steps from this moment on.
    pub created_at: DateTime<Utc>,
    /// Removed: nothing more is sent to it.
    pub removed_at: Option<DateTime<Utc>>,
}

impl NotificationTarget {
    /// How the alarm log names this target: the address for email, only the host for a webhook (its URL
    /// may carry a gateway's credentials).
    pub fn label(&self) -> String {
        match self.kind {
            TargetKind::Email => format!("email to {}", self.address),
            TargetKind::Webhook => format!("webhook to {}", self.host()),
        }
    }

    /// Where it goes, as the records show it: the address, or a webhook's host.
    pub fn shown_address(&self) -> String {
        match self.kind {
            TargetKind::Email => self.address.clone(),
            TargetKind::Webhook => self.host(),
        }
    }

    fn host(&self) -> String {
        reqwest::Url::parse(&self.address)
            .ok()
            .and_then(|url| url.host_str().map(str::to_owned))
            .unwrap_or_else(|| "?".into())
    }

    pub fn is_live(&self) -> bool {
        self.removed_at.is_none()
    }
}

/// One notification of one alarm step (or one safeguarding notice) to one target, and how its sending went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: Uuid,
    /// The alarm and the `alarm_log` entry this tells of; `None` for a safeguarding notice.
    pub alarm: Option<i64>,
    pub step: Option<i64>,
    /// The safeguarding notice this tells of.
    pub notice: Option<i64>,
    pub target: i64,
    /// Who it was sent to as, at the time: alarm levels ("board,authoriser"), "contact", or "role:dsl".
    pub audience: String,
    pub created_at: DateTime<Utc>,
    pub attempts: u32,
    /// `None` once delivered, or once it was stopped (the alarm acknowledged, the target removed).
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
    /// Not sent because their alarm was acknowledged (or their target removed) first.
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
/// 2 min, then every 5 min. There is no last try: only an acknowledgement (or removing the target) stops it.
pub fn retry_delay(failed_attempts: u32) -> TimeDelta {
    match failed_attempts {
        0 | 1 => TimeDelta::seconds(10),
        2 => TimeDelta::seconds(30),
        3 => TimeDelta::minutes(1),
        4 => TimeDelta::minutes(2),
        _ => TimeDelta::minutes(5),
    }
}

/// One message to hand over: where, and the exact bytes recorded for it.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The delivery's id (the webhook's `X-Doorstep-Delivery`, the email's `Message-ID`).
    pub delivery: Uuid,
    pub kind: TargetKind,
    /// The email address or webhook URL.
    pub address: String,
    /// The webhook's signing secret.
    pub secret: Option<Secret>,
    pub payload: String,
}

/// What an attempt's future gives: what the server answered when it accepted the message, or why not.
pub type Attempted = Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'static>>;

/// How a message leaves the office: the only part of notifying that touches the network. `Ok` only when
/// the server accepted the message (the SMTP 250 after it; an HTTP 2xx), with its answer in words.
pub trait Transport: Send + Sync + 'static {
    fn send(&self, message: Outgoing) -> Attempted;
}

/// The real transport: SMTP (through lettre) for email, a signed POST for webhooks.
#[derive(Clone)]
pub struct NetTransport {
    config: NotifyConfig,
    /// `config.smtp`, checked and ready to send.
    mailer: Option<smtp::Mailer>,
    http: reqwest::Client,
}

impl std::fmt::Debug for NetTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetTransport")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl NetTransport {
    pub fn new(config: NotifyConfig) -> Result<Self, NotifyError> {
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
            config,
            mailer,
            http,
        })
    }

    /// The sender of email, when an SMTP server is configured.
    pub fn email_from(&self) -> Option<&str> {
        self.config.smtp.as_ref().map(|smtp| smtp.from.as_str())
    }
}

impl Transport for NetTransport {
    fn send(&self, message: Outgoing) -> Attempted {
        let transport = self.clone();
        Box::pin(async move {
            match message.kind {
                TargetKind::Email => {
                    let mailer = transport.mailer.as_ref().ok_or_else(|| {
                        "no SMTP server is configured (start the office with --smtp HOST:PORT --smtp-from ADDRESS)"
                            .to_owned()
                    })?;
                    mailer
                        .send(&message.address, &message.payload)
                        .await
                        .map(|()| "accepted by the SMTP server".to_owned())
                        .map_err(|e| e.to_string())
                }
                TargetKind::Webhook => {
                    let secret = message.secret.as_ref().map_or("", Secret::expose);
                    webhook::post(
                        &transport.http,
                        &message.address,
                        secret,
                        &message.delivery,
                        &message.payload,
                    )
                    .await
                    .map(|status| format!("answered {status}"))
                    .map_err(|e| e.to_string())
                }
            }
        })
    }
}

/// Records and sends notifications for one store.
pub struct Notifier<S = SqliteStore> {
    store: Arc<S>,
    /// The `From:` recorded in email payloads.
    email_from: Option<String>,
    transport: Arc<dyn Transport>,
}

impl<S> Clone for Notifier<S> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            email_from: self.email_from.clone(),
            transport: self.transport.clone(),
        }
    }
}

impl<S> std::fmt::Debug for Notifier<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("email_from", &self.email_from)
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

impl<S: Deliveries> Notifier<S> {
    /// A notifier sending through the network as `config` says.
    pub fn new(store: Arc<S>, config: NotifyConfig) -> Result<Self, NotifyError> {
        let transport = NetTransport::new(config)?;
        let from = transport.email_from().map(str::to_owned);
        Ok(Self::with_transport(store, from, Arc::new(transport)))
    }

    /// A notifier handing its messages to `transport`; `email_from` is the `From:` of the email it records.
    pub fn with_transport(
        store: Arc<S>,
        email_from: Option<String>,
        transport: Arc<dyn Transport>,
    ) -> Self {
        Self {
            store,
            email_from,
            transport,
        }
    }

    /// Records one delivery, with its payload, for every alarm step (of alarms nobody is handling yet) and
    /// safeguarding notice, and every matching target that has none yet (only steps no older than the
    /// target; a notice nobody could be sent yet also goes to a target added after it). Returns how many
    /// were recorded.
    pub async fn record_deliveries(&self, now: DateTime<Utc>) -> Result<usize, NotifyError> {
        Ok(self
            .store
            .record_deliveries(now, self.email_from.as_deref())
            .await?)
    }

    /// One step of the worker: sends every delivery due at `now` (all at once, each in its own task) and
    /// records how each went; drops those whose alarm has been acknowledged.
    pub async fn deliver_due(&self, now: DateTime<Utc>) -> Result<DeliveryOutcome, NotifyError> {
        let sending = self.start_due(now).await?;
        self.finish(sending).await
    }

    /// The first half of [`Notifier::deliver_due`]: drops the deliveries of acknowledged alarms, claims the
    /// due ones and starts sending them.
    async fn start_due(&self, now: DateTime<Utc>) -> Result<Sending, NotifyError> {
        let cancelled = self.store.cancel_acknowledged_deliveries(now).await?;
        let due = self.store.claim_due_deliveries(now, now + CLAIM).await?;
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
                    self.store
                        .record_attempt(
                            &delivery,
                            now,
                            Attempt::Delivered {
                                detail: format!("{label}: {answer} (attempt {attempt})"),
                            },
                        )
                        .await?;
                    outcome.delivered += 1;
                }
                Err(error) => {
                    let next = now + retry_delay(attempt);
                    tracing::warn!(delivery = %delivery.id, %label, attempt, %error, "notification failed");
                    self.store
                        .record_attempt(
                            &delivery,
                            now,
                            Attempt::Failed {
                                error: error.clone(),
                                next_attempt_at: next,
                                detail: format!(
                                    "{label} failed (attempt {attempt}): {error}; next try at {}",
                                    next.format("%H:%M:%S UTC")
                                ),
                            },
                        )
                        .await?;
                    outcome.failed += 1;
                }
            }
        }
        outcome.next_due = self.store.next_delivery_due().await?;
        Ok(outcome)
    }

    /// Sends one delivery through the transport; `Ok` says what the receiver answered.
    async fn send(&self, delivery: &DueDelivery) -> Result<String, String> {
        self.transport
            .send(Outgoing {
                delivery: delivery.id,
                kind: delivery.target.kind,
                address: delivery.target.address.clone(),
                secret: delivery.target.secret.clone(),
                payload: delivery.payload.clone(),
            })
            .await
    }

    /// Runs the worker on the current runtime: a pass at once (catching up on anything recorded before a
    /// restart), then one whenever the board hears of anything (an alarm raised, escalated, acknowledged
    /// or closed; a visit changed, which is how a safeguarding notice arrives), when the next retry is due,
    /// or when woken. A pass records and starts sending in the same instant it is woken.
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
    attempts: tokio::task::JoinSet<(DueDelivery, Result<String, String>)>,
}

/// The worker's loop. Sending runs beside it, so a receiver that is slow to answer (an SMTP server may
/// take up to [`SMTP_TIMEOUT`] to fail) never holds up the notifications of the next alarm.
async fn run<S: Deliveries>(
    notifier: Notifier<S>,
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
        let recorded = notifier.record_deliveries(now).await;
        let started = notifier.start_due(now).await;
        let next_due = notifier.store.next_delivery_due().await;
        if let Err(error) = recorded {
            tracing::error!(%error, "could not record notifications; trying again in 1 s");
        }
        let started = match started {
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
        let next = match next_due {
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

/// Waits for news that may need a notification (or a cancellation): anything the board hears, since a
/// changed visit may carry a safeguarding notice. False when the channel has closed.
async fn next_alarm_news(board: &mut Option<broadcast::Receiver<BoardEvent>>) -> bool {
    let Some(receiver) = board else {
        return std::future::pending().await;
    };
    match receiver.recv().await {
        // Missed announcements are harmless: a pass works from the store.
        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => true,
        Err(broadcast::error::RecvError::Closed) => false,
    }
}
