//! Doorstep's office server: the sync API phones talk to, and the store that keeps every visit event once.
//!
//! - [`routes`]: every route in one table, each with the role its handler requires; `router(state)` builds
//!   the whole app from it so tests can call it without a socket.
//! - [`state`]: [`AppState`], what every handler shares; [`clock`]: the one place the system time is read.
//! - [`api`]: the phones' sync API, health and the OpenAPI document; [`admission`]: how many syncs do
//!   store work at once, and the `503` with `Retry-After` for ordinary syncs past that.
//! - [`escalation`]: the engine that holds every visit's deadlines and raises and escalates alarms.
//! - [`alarms`]: alarms in the store, held until a named person acknowledges them.
//! - [`audit`]: the append-only, hash-chained audit log (openings of write-ups and exports, the office's
//!   decisions) and its check.
//! - [`notify`]: alarms, escalations and safeguarding notices sent on by email and signed webhook, each
//!   delivery recorded and retried; [`notices`]: safeguarding concerns, incidents and "felt unsafe" notes,
//!   recorded with the event that carries them; [`reach`]: who was told of each alarm step and notice, read
//!   only from the deliveries.
//! - [`web`]: the office dashboard: sign-in, the live board, alarms, and each visit's page with its runbook.
//! - [`people`]: staff records, pupils and absences imported from the MIS as CSV, and the policy.
//! - [`devices`]: the school's phones: one-time enrolment codes, tokens that expire and renew while in
//!   use, revoking a phone, noticing a cloned one, and the device log.
//! - [`logins`]: office sign-ins (argon2 password hashes) and sessions in the store.
//! - [`store`]: the embedded SQLite store (the default), and the store's areas behind traits
//!   ([`store::backend`]) with a PostgreSQL backend ([`store::postgres`]); [`OfficeStore`] is whichever
//!   the office runs on.
//! - [`records`]: each visit's timeline, the write-up for CPOMS (text, PDF, CSV) and the monthly report.
//! - [`versions`]: the office's changes to a visit (decline, withdraw, call off, reschedule, a new
//!   briefing), each kept as a new version.
//! - [`requests`]: requesting a visit (the policy's rules on time, staff and contacts) and the attendance
//!   view's absence counting.
//! - [`openapi`]: the OpenAPI document, generated from the protocol types.
//! - [`sms`]: alerts that arrive by text message, through the SMS gateway's signed webhook.
//! - [`reconcile`]: which of a phone's events, by sequence range, the office holds.
//! - [`demo`]: demo data for a newcomer's first run.
//!
//! `main` only reads its arguments, opens the store and calls [`run_with`].

pub mod admission;
pub mod alarms;
pub mod api;
pub mod audit;
pub mod clock;
pub mod demo;
pub mod devices;
pub mod escalation;
pub mod logins;
pub mod notices;
pub mod notify;
pub mod openapi;
pub mod people;
pub mod reach;
pub mod reconcile;
pub mod records;
pub mod requests;
pub mod routes;
pub mod serve;
pub mod sms;
pub mod state;
pub mod store;
pub mod throttle;
pub mod versions;
pub mod web;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

pub use notify::NotifyConfig;
pub use routes::router;
pub use state::{AppState, WebSettings};
pub use store::{OfficeStore, SqliteStore};

/// How the office serves: where notifications go, the dashboard's cookie settings, the connection limits
/// and timeouts, and HTTPS when the office terminates TLS itself.
#[derive(Debug, Clone, Default)]
pub struct OfficeSettings {
    pub notify: NotifyConfig,
    pub web: WebSettings,
    pub limits: serve::Limits,
    pub tls: Option<serve::Tls>,
    /// The SMS gateway whose signed texts the office takes in (`/api/v1/sms/inbound`); none, none taken.
    pub sms: Option<sms::SmsGateway>,
    /// How many phone syncs do store work at once (by default two per core).
    pub sync_gate: admission::SyncGate,
}

/// Serves the office API and dashboard on `listener` until `shutdown` completes, with `Secure` cookies and
/// no SMTP server for email.
pub async fn run(
    listener: TcpListener,
    store: OfficeStore,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    run_with(listener, store, OfficeSettings::default(), shutdown).await
}

/// [`run`] with the settings chosen (a plain-HTTP demo needs cookies without `Secure`; email needs SMTP).
pub async fn run_with(
    listener: TcpListener,
    store: OfficeStore,
    settings: OfficeSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let clock = clock::system();
    // On PostgreSQL other offices may share the database: each watches every visit and looks again often.
    let shared = store.sqlite().is_none().then_some(SHARED_RESCAN);
    let engines = Engines::start(Arc::new(store.clone()), settings.notify, &clock, shared)
        .map_err(std::io::Error::other)?;
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let state = AppState {
        store,
        clock,
        escalation: Some(engines.escalation.clone()),
        web: settings.web,
        stopping,
        sign_ins: Arc::new(throttle::SignInThrottle::default()),
        enrolments: Arc::new(state::enrolment_throttle()),
        syncs: settings.sync_gate,
    };
    let mut app = router(state);
    if let Some(gateway) = settings.sms {
        app = app.layer(axum::Extension(gateway));
    }
    let served = serve::serve(listener, app, settings.limits, settings.tls, async move {
        shutdown.await;
        // Ends the board's endless live streams, so the graceful shutdown need not wait for them.
        let _ = stop.send(true);
    })
    .await;
    engines.stop();
    served
}

/// How often an office sharing its database with others reads the visits to watch and the deliveries to
/// plan again, to see what another office changed.
pub const SHARED_RESCAN: std::time::Duration = std::time::Duration::from_secs(1);

/// The office's engines: the escalation engine watching every visit's deadlines, and the notifier telling
/// each school's targets of every alarm step and safeguarding notice.
pub struct Engines {
    pub escalation: escalation::Escalation,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Engines {
    /// Starts both on `store`, on the current runtime. `shared`: the database is shared with other
    /// offices, so every `shared` the engine reads the visits to watch again
    /// ([`escalation::Escalation::spawn_sharing`]) and the notifier plans again (a step made by another
    /// office that died before telling anyone is planned here).
    pub fn start<S>(
        store: Arc<S>,
        config: NotifyConfig,
        clock: &clock::Clock,
        shared: Option<std::time::Duration>,
    ) -> Result<Self, notify::NotifyError>
    where
        S: store::backend::Visits + store::backend::Alarms + store::deliveries::Deliveries,
    {
        let notifier = notify::Notifier::new(store.clone(), config)?;
        let (escalation, engine) = match shared {
            Some(rescan) => escalation::Escalation::spawn_sharing(store, clock.clone(), rescan),
            None => escalation::Escalation::spawn(store, clock.clone()),
        };
        let (notifier, notifier_task) = notifier.spawn(clock.clone(), escalation.subscribe());
        let mut tasks = vec![engine, notifier_task];
        if let Some(rescan) = shared {
            tasks.push(tokio::spawn(async move {
                let mut every = tokio::time::interval(rescan);
                loop {
                    every.tick().await;
                    notifier.wake();
                }
            }));
        }
        Ok(Self { escalation, tasks })
    }

    /// Waits until the engine or the notifier stops (neither does unless it fails).
    pub async fn stopped(&mut self) -> Result<(), tokio::task::JoinError> {
        let (ended, _, _) = futures_util::future::select_all(self.tasks.iter_mut()).await;
        ended
    }

    /// Stops both.
    pub fn stop(self) {
        for task in self.tasks {
            task.abort();
        }
    }
}
