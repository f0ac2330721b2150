//! Doorstep's office server: the sync API phones talk to, and the store that keeps every visit event once.
//!
//! - [`api`]: routes and handlers; `router(state)` builds the whole app so tests can call it without a socket.
//! - [`escalation`]: the engine that holds every visit's deadlines and raises and escalates alarms.
//! - [`alarms`]: alarms in the store, held until a named person acknowledges them.
//! - [`store`]: the embedded SQLite store (the default; PostgreSQL for large trusts is planned, not built).
//! - [`records`]: each visit's timeline, the write-up for CPOMS (text, PDF, CSV) and the monthly report.
//! - [`openapi`]: the OpenAPI document, generated from the protocol types.
//! - [`demo`]: demo data for a newcomer's first run.
//!
//! `main` only reads its arguments, opens the store and calls [`run`].

pub mod alarms;
pub mod api;
pub mod demo;
pub mod escalation;
pub mod openapi;
pub mod records;
pub mod store;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

pub use api::{router, AppState};
pub use store::SqliteStore;

/// Serves the office API on `listener` until `shutdown` completes.
pub async fn run(
    listener: TcpListener,
    store: Arc<SqliteStore>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let clock: api::Clock = Arc::new(chrono::Utc::now);
    let (escalation, engine) = escalation::Escalation::spawn(store.clone(), clock.clone());
    let state = AppState {
        store,
        clock,
        escalation: Some(escalation),
    };
    let served = axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await;
    engine.abort();
    served
}
