//! Doorstep's office server: the sync API phones talk to, and the store that keeps every visit event once.
//!
//! - [`api`]: routes and handlers; `router(state)` builds the whole app so tests can call it without a socket.
//! - [`escalation`]: the engine that holds every visit's deadlines and raises and escalates alarms.
//! - [`alarms`]: alarms in the store, held until a named person acknowledges them.
//! - [`notify`]: alarms and escalations sent on by email and signed webhook, each delivery recorded and
//!   retried.
//! - [`web`]: the office dashboard: sign-in, the live board, alarms, and each visit's page with its runbook.
//! - [`people`]: staff records, pupils and absences imported from the MIS as CSV, and the policy.
//! - [`logins`]: office sign-ins (argon2 password hashes) and sessions in the store.
//! - [`store`]: the embedded SQLite store (the default; PostgreSQL for large trusts is planned, not built).
//! - [`records`]: each visit's timeline, the write-up for CPOMS (text, PDF, CSV) and the monthly report.
//! - [`requests`]: requesting a visit (the policy's rules on time, staff and contacts) and the attendance
//!   view's absence counting.
//! - [`openapi`]: the OpenAPI document, generated from the protocol types.
//! - [`sms`]: alerts that arrive by text message, through the SMS gateway's signed webhook.
//! - [`reconcile`]: which of a phone's events, by sequence range, the office holds.
//! - [`demo`]: demo data for a newcomer's first run.
//!
//! `main` only reads its arguments, opens the store and calls [`run_with`].

pub mod alarms;
pub mod api;
pub mod demo;
pub mod escalation;
pub mod logins;
pub mod notify;
pub mod openapi;
pub mod people;
pub mod reconcile;
pub mod records;
pub mod requests;
pub mod sms;
pub mod store;
pub mod web;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

pub use api::{router, AppState};
pub use notify::NotifyConfig;
pub use store::SqliteStore;
pub use web::WebSettings;

/// How the office serves: where notifications go, and the dashboard's cookie settings.
#[derive(Debug, Clone, Default)]
pub struct OfficeSettings {
    pub notify: NotifyConfig,
    pub web: WebSettings,
    /// The SMS gateway whose signed texts the office takes in (`/api/v1/sms/inbound`); none, none taken.
    pub sms: Option<sms::SmsGateway>,
}

/// Serves the office API and dashboard on `listener` until `shutdown` completes, with `Secure` cookies and
/// no SMTP server for email.
pub async fn run(
    listener: TcpListener,
    store: Arc<SqliteStore>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    run_with(listener, store, OfficeSettings::default(), shutdown).await
}

/// [`run`] with the settings chosen (a plain-HTTP demo needs cookies without `Secure`; email needs SMTP).
pub async fn run_with(
    listener: TcpListener,
    store: Arc<SqliteStore>,
    settings: OfficeSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let clock: api::Clock = Arc::new(chrono::Utc::now);
    let notifier =
        notify::Notifier::new(store.clone(), settings.notify).map_err(std::io::Error::other)?;
    let (escalation, engine) = escalation::Escalation::spawn(store.clone(), clock.clone());
    let (_notifier, notifier_task) = notifier.spawn(clock.clone(), escalation.subscribe());
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let state = AppState {
        store,
        clock,
        escalation: Some(escalation),
        web: settings.web,
        stopping,
    };
    let mut app = router(state);
    if let Some(gateway) = settings.sms {
        app = app.layer(axum::Extension(gateway));
    }
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stop.send(true);
        })
        .await;
    engine.abort();
    notifier_task.abort();
    served
}
