//! Serving the office: the accept loop, with the limits that keep it answering everyone while one client
//! misbehaves, and HTTPS from certificate files when the office is not behind a TLS proxy.
//!
//! While the office is down nobody hears an alarm, so its availability is a safety property:
//!
//! - a cap on open connections in all, below the process's file-descriptor limit, and a smaller cap per peer
//!   address, so one client's idle sockets cannot take every slot;
//! - past either cap, a small reserve of overflow connections ([`Limits::overflow_connections`]) that each
//!   carry one request, with a short wait for its head and body: a phone sync carrying an alert (or a text
//!   from the SMS gateway) is served as ever, and anything else is answered at once with `503` and
//!   `Retry-After`, which the phone honours, instead of a dropped connection. A phone's answer is never
//!   decided before the office knows what it carries; only when the reserve is full too is a connection
//!   closed unread (each open connection is a file descriptor, and those run out);
//! - a header read timeout that also closes idle kept-alive connections (hyper starts it whenever a
//!   connection waits for a request), and a TLS handshake bounded by the same time;
//! - a deadline for reading a whole request body (`body_read_timeout`, for all of it, not between bytes),
//!   so a body trickled a byte at a time cannot hold a connection either: the client gets a 408.
//!
//! The peer's address reaches handlers as axum's `ConnectInfo<SocketAddr>` (the sign-in throttle keys on
//! it). Behind a reverse proxy every peer is the proxy: run the proxy with its own per-client limits (see
//! `docs/security.md`).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use axum::Router;
use doorstep_core::protocol::{ErrorBody, MAX_BODY_BYTES};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// How much the office lets in at once, and for how long it waits on a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Open connections in all; more are closed as they arrive.
    pub max_connections: usize,
    /// Open connections from one peer address.
    pub max_connections_per_peer: usize,
    /// Connections let in past either cap, one request each (see the module's comment). Phones behind a
    /// carrier's NAT share an address, so the per-address cap can be reached by many honest phones.
    pub overflow_connections: usize,
    /// How long a client may take to send a request's headers, including the wait for the next request on
    /// a kept-alive connection (the idle timeout) and the TLS handshake.
    pub header_read_timeout: Duration,
    /// How long a client may take to send a request's body.
    pub body_read_timeout: Duration,
    /// How long a graceful shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 4_096,
            max_connections_per_peer: 256,
            overflow_connections: 1_024,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

impl Limits {
    /// The defaults, with the connections (capped and overflow together) kept well below this process's
    /// limit on open files (each connection is one, and the store, the logs and outgoing notifications
    /// need theirs).
    pub fn for_this_process() -> Self {
        let defaults = Self::default();
        let all = defaults.max_connections + defaults.overflow_connections;
        let budget = match open_files_limit() {
            Some(limit) => all.min(limit.saturating_sub(128) / 2).max(20),
            None => all,
        };
        // Four fifths capped, one fifth overflow, as in the defaults.
        let cap = budget * 4 / 5;
        Self {
            max_connections: cap,
            max_connections_per_peer: defaults.max_connections_per_peer.min(cap / 4).max(4),
            overflow_connections: budget - cap,
            ..defaults
        }
    }
}

/// The soft limit on open files, read from `/proc/self/limits` (Linux) so no unsafe call is needed.
fn open_files_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Why the certificate files could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("could not read the certificate chain {path}: {reason}")]
    Certificates { path: String, reason: String },
    #[error("could not read the private key {path}: {reason}")]
    Key { path: String, reason: String },
    #[error("the certificate and key do not make a TLS configuration: {0}")]
    Config(String),
}

/// HTTPS served by the office itself, from PEM files (a certificate chain and its private key).
#[derive(Clone)]
pub struct Tls {
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").finish_non_exhaustive()
    }
}

impl Tls {
    pub fn from_pem_files(certificates: &Path, key: &Path) -> Result<Self, TlsError> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(certificates)
            .and_then(|certs| certs.collect::<Result<_, _>>())
            .map_err(|e| TlsError::Certificates {
                path: certificates.display().to_string(),
                reason: e.to_string(),
            })?;
        if chain.is_empty() {
            return Err(TlsError::Certificates {
                path: certificates.display().to_string(),
                reason: "no certificate in the file".into(),
            });
        }
        let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
            path: key.display().to_string(),
            reason: e.to_string(),
        })?;
        let config = ServerConfig::builder_with_provider(Arc::new(
            tokio_rustls::rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }
}

/// Counts each peer's open connections; a guard gives its slot back when the connection ends.
#[derive(Debug, Default)]
struct PeerSlots {
    open: Mutex<HashMap<IpAddr, usize>>,
}

struct PeerSlot {
    slots: Arc<PeerSlots>,
    peer: IpAddr,
}

impl PeerSlots {
    fn take(slots: &Arc<PeerSlots>, peer: IpAddr, cap: usize) -> Option<PeerSlot> {
        let mut open = slots.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(peer).or_insert(0);
        if *count >= cap {
            return None;
        }
        *count += 1;
        Some(PeerSlot {
            slots: slots.clone(),
            peer,
        })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.peer) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.peer);
            }
        }
    }
}

/// Serves `app` on `listener` within `limits` (over TLS when `tls` is given) until `shutdown` completes,
/// then lets requests in flight finish for up to `limits.shutdown_grace`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    tls: Option<Tls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let app = app.layer(axum::middleware::from_fn_with_state(
        limits.body_read_timeout,
        body_within_deadline,
    ));
    let app = app.layer(axum::middleware::from_fn(overflow_carries_only_alerts));
    let all = Arc::new(Semaphore::new(limits.max_connections));
    let overflow = Arc::new(Semaphore::new(limits.overflow_connections));
    let peers = Arc::new(PeerSlots::default());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors or a connection reset before it was accepted: pause a moment
                    // rather than spin, and go on serving the connections already open.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let capped = all.clone().try_acquire_owned().ok().and_then(|permit| {
            PeerSlots::take(&peers, peer.ip(), limits.max_connections_per_peer).map(|slot| {
                Held::Capped {
                    _all: permit,
                    _peer: slot,
                }
            })
        });
        let held = match capped {
            Some(held) => held,
            None => match overflow.clone().try_acquire_owned() {
                Ok(permit) => {
                    tracing::debug!(%peer, "past a connection cap: one request, alerts only");
                    Held::Overflow { _place: permit }
                }
                Err(_) => {
                    tracing::warn!(%peer, "connection refused: the office is at its connection limits");
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                Some(tls) => {
                    let handshake = tokio::time::timeout(
                        limits.header_read_timeout,
                        tls.acceptor.accept(stream),
                    )
                    .await;
                    match handshake {
                        Ok(Ok(stream)) => {
                            connection(stream, peer, app, limits, watcher, held).await
                        }
                        Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
                None => connection(stream, peer, app, limits, watcher, held).await,
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(limits.shutdown_grace) => {
            tracing::warn!("shutdown: connections still open after the grace period were dropped");
        }
    }
    Ok(())
}

/// What an open connection holds until it ends (each is given back when dropped): its place under both
/// caps, or one of the overflow places.
enum Held {
    Capped {
        _all: OwnedSemaphorePermit,
        _peer: PeerSlot,
    },
    Overflow {
        _place: OwnedSemaphorePermit,
    },
}

/// Marks a request that came on an overflow connection: the sync handler serves it only if it carries an
/// alert, and [`overflow_carries_only_alerts`] answers anything but a sync or an SMS with `503`.
#[derive(Debug, Clone, Copy)]
pub struct Overflow;

/// How long an overflow connection waits for its request's head, and for its body: a phone sends both at
/// once, and a slow sender must not hold the reserve.
pub const OVERFLOW_READ_TIMEOUT: Duration = Duration::from_secs(2);

/// One connection, HTTP/1.1, with the peer's address in every request; an overflow connection carries one
/// request, marked [`Overflow`], and closes.
async fn connection<I>(
    io: I,
    peer: SocketAddr,
    app: Router,
    limits: Limits,
    watcher: hyper_util::server::graceful::Watcher,
    held: Held,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let overflow = matches!(held, Held::Overflow { .. });
    let service = app.map_request(move |mut request: hyper::Request<hyper::body::Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        if overflow {
            request.extensions_mut().insert(Overflow);
        }
        request
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new());
    if overflow {
        http.header_read_timeout(OVERFLOW_READ_TIMEOUT.min(limits.header_read_timeout))
            .keep_alive(false);
    } else {
        http.header_read_timeout(limits.header_read_timeout);
    }
    let connection = http.serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
    if let Err(error) = watcher.watch(connection).await {
        tracing::debug!(%peer, %error, "connection ended with an error");
    }
    drop(held);
}

/// On an overflow connection, only a phone's sync (which the sync handler serves only if it carries an
/// alert) and a text from the SMS gateway (every one is recorded) go on; anything else is told at once to
/// come back, without its body being read.
async fn overflow_carries_only_alerts(request: axum::extract::Request, next: Next) -> Response {
    let may_carry_an_alert = matches!(request.uri().path(), "/api/v1/sync" | "/api/v1/sms/inbound");
    if request.extensions().get::<Overflow>().is_none() || may_carry_an_alert {
        return next.run(request).await;
    }
    crate::api::ApiError::busy(crate::admission::RETRY_AFTER_SECS).into_response()
}

/// Reads the whole request body within `deadline` before the handler sees it (bodies are small: at most
/// [`MAX_BODY_BYTES`]); a client that takes longer gets a 408 and its connection closed.
async fn body_within_deadline(
    axum::extract::State(deadline): axum::extract::State<Duration>,
    request: axum::extract::Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let deadline = match parts.extensions.get::<Overflow>() {
        Some(Overflow) => deadline.min(OVERFLOW_READ_TIMEOUT),
        None => deadline,
    };
    match tokio::time::timeout(deadline, axum::body::to_bytes(body, MAX_BODY_BYTES)).await {
        Ok(Ok(bytes)) => {
            next.run(axum::extract::Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Ok(Err(_)) => refusal(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("a request body is at most {MAX_BODY_BYTES} bytes"),
        ),
        Err(_) => {
            let mut response = refusal(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!(
                    "the request body did not arrive within {} s; nothing was stored",
                    deadline.as_secs()
                ),
            );
            response.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
            response
        }
    }
}

fn refusal(status: StatusCode, code: &str, message: String) -> Response {
    (
        status,
        Json(ErrorBody {
            error: code.into(),
            message,
            rejected: Vec::new(),
        }),
    )
        .into_response()
}
