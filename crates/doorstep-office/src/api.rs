//! The HTTP API: routes, the sync handler, and the mapping from every failure to a clear JSON answer. The
//! dashboard's HTML routes live in [`crate::web`] and are merged in here.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use doorstep_core::protocol::{
    ErrorBody, RejectedEvent, SyncRequest, SyncResponse, MAX_BATCH_EVENTS, MAX_BODY_BYTES,
    PROTOCOL_VERSION,
};
use serde::Serialize;
use tokio::sync::watch;

use crate::escalation::Escalation;
use crate::store::{Device, IngestError, SqliteStore, StoreError};
use crate::web::WebSettings;

/// The office's clock, swappable so tests can control time.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<SqliteStore>,
    pub clock: Clock,
    /// The escalation engine to poke when events arrive (absent in tests that exercise only the API).
    pub escalation: Option<Escalation>,
    /// How the dashboard's pages and cookies are served.
    pub web: WebSettings,
    /// Turns true when the server starts shutting down, so endless streams (the board's live events) end
    /// and a graceful shutdown does not wait for them forever.
    pub stopping: watch::Receiver<bool>,
}

impl AppState {
    pub fn new(store: Arc<SqliteStore>) -> Self {
        Self {
            store,
            clock: Arc::new(Utc::now),
            escalation: None,
            web: WebSettings::default(),
            stopping: watch::channel(false).1,
        }
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }
}

/// Every route the office serves. Tests call this without a socket.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/sync", post(sync))
        .route("/api/v1/health", get(health))
        .route("/api/v1/sms/inbound", post(crate::sms::inbound))
        .route("/api/v1/reconcile", post(crate::reconcile::reconcile))
        .route("/api/v1/openapi.json", get(openapi))
        .merge(crate::web::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// A refusal or failure, turned into a status and an [`ErrorBody`].
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

impl ApiError {
    fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody {
                error: code.to_owned(),
                message: message.into(),
                rejected: Vec::new(),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        // Details go to the log, never to the caller.
        tracing::error!(%error, "store failure");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the office could not complete this request; nothing was stored",
        )
    }
}

impl From<IngestError> for ApiError {
    fn from(error: IngestError) -> Self {
        match error {
            IngestError::Store(e) => e.into(),
            IngestError::Rejected(rejections) => {
                let conflict = rejections.iter().any(|r| r.conflict);
                let (status, code) = if conflict {
                    (StatusCode::CONFLICT, "conflicting_event")
                } else {
                    (StatusCode::UNPROCESSABLE_ENTITY, "event_rejected")
                };
                let message = format!(
                    "the batch was refused and nothing was stored: {}",
                    rejections
                        .iter()
                        .map(|r| r.reason.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                );
                ApiError {
                    status,
                    body: ErrorBody {
                        error: code.to_owned(),
                        message,
                        rejected: rejections
                            .into_iter()
                            .map(|r| RejectedEvent {
                                id: r.id,
                                reason: r.reason,
                            })
                            .collect(),
                    },
                }
            }
        }
    }
}

/// Runs blocking store work off the async threads.
async fn blocking<T: Send + 'static, E: Into<ApiError> + Send + 'static>(
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(Into::into),
        Err(join) => {
            tracing::error!(error = %join, "store task failed");
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the office could not complete this request; nothing was stored",
            ))
        }
    }
}

async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Device, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send the phone's device token as 'Authorization: Bearer <token>'",
            )
        })?
        .to_owned();
    let store = state.store.clone();
    blocking(move || store.authenticate(&token))
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unknown_device",
                "this device token is not enrolled with the office",
            )
        })
}

async fn sync(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<SyncResponse>, ApiError> {
    let device = authenticate(&state, &headers).await?;
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!(
                    "a sync request is at most {MAX_BODY_BYTES} bytes; send fewer events at a time"
                ),
            )
        } else {
            ApiError::new(rejection.status(), "bad_body", rejection.body_text())
        }
    })?;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not_json",
            "send the sync request as application/json",
        ));
    }
    let request: SyncRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_json",
            format!("the sync request could not be read: {e}"),
        )
    })?;
    if request.protocol != PROTOCOL_VERSION {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_protocol",
            format!(
                "this office speaks sync protocol {PROTOCOL_VERSION}; the phone sent {}",
                request.protocol
            ),
        ));
    }
    if request.events.len() > MAX_BATCH_EVENTS {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_events",
            format!("a batch carries at most {MAX_BATCH_EVENTS} events"),
        ));
    }
    let now = state.now();
    let store = state.store.clone();
    let visits: std::collections::BTreeSet<_> =
        request.events.iter().map(|e| e.visit.clone()).collect();
    let response = blocking(move || -> Result<SyncResponse, IngestError> {
        let results = store.ingest(&device, &request.events, now)?;
        if request.events.iter().any(|e| e.event.is_urgent()) {
            tracing::warn!(device = %device.id, "duress received");
        }
        Ok(SyncResponse {
            protocol: PROTOCOL_VERSION,
            results,
            acknowledged_through: store.acknowledged_through(&device.id)?,
            server_time: now,
            hold: store.holdings(&device, now)?,
        })
    })
    .await?;
    if let Some(escalation) = &state.escalation {
        for visit in visits {
            escalation.visit_changed(visit);
        }
    }
    Ok(Json(response))
}

/// The answer of `GET /api/v1/health`.
#[derive(Serialize, schemars::JsonSchema)]
pub struct Health {
    pub status: String,
    server_time: DateTime<Utc>,
}

async fn health(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        server_time: state.now(),
    })
}

async fn openapi() -> impl IntoResponse {
    Json(crate::openapi::document())
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint; see /api/v1/openapi.json",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method; see /api/v1/openapi.json",
    )
}
