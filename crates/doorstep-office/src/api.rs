//! The phones' HTTP API: enrolment, the sync handler, health and the OpenAPI document, the device-token
//! check ([`PhoneDevice`]: an unknown, revoked, expired or replaced token each has its own refusal code,
//! `protocol::refusal`), and the mapping from every failure to a clear JSON answer. The routes themselves
//! are in [`crate::routes`], beside the dashboard's.

use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use doorstep_core::protocol::{
    refusal, EnrolRequest, EnrolResponse, ErrorBody, RejectedEvent, SyncRequest, SyncResponse,
    MAX_BATCH_EVENTS, MAX_BODY_BYTES, MAX_CURSOR_LEN, PROTOCOL_VERSION,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::OwnedSemaphorePermit;

use crate::admission::Admission;
use crate::devices::{RedeemError, TokenCheck};
use crate::routes::{Access, DeviceToken, Guard};
use crate::state::AppState;
use crate::store::{Device, IngestError, StoreError};
use crate::throttle::{PeerAddress, Refusal};

/// A refusal or failure, turned into a status and an [`ErrorBody`].
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
    /// Seconds the caller should wait before asking again (`Retry-After`), when the office is busy.
    retry_after: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody {
                error: code.to_owned(),
                message: message.into(),
                rejected: Vec::new(),
            },
            retry_after: None,
        }
    }

    /// Past capacity: `503`, `busy`, and `Retry-After` in seconds. Nothing was stored.
    pub(crate) fn busy(retry_after_secs: u64) -> Self {
        Self {
            retry_after: Some(retry_after_secs),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                refusal::BUSY,
                format!(
                    "the office is busy and took nothing from this sync; send it again in \
                     {retry_after_secs} s"
                ),
            )
        }
    }

    /// A batch refused as a whole, nothing stored: `code` under `status`, with each refused event and
    /// its reason (listed again, joined, in the message).
    fn batch_refused(status: StatusCode, code: &str, rejected: Vec<RejectedEvent>) -> Self {
        let reasons: Vec<&str> = rejected.iter().map(|r| r.reason.as_str()).collect();
        let message = format!(
            "the batch was refused and nothing was stored: {}",
            reasons.join("; ")
        );
        let mut error = Self::new(status, code, message);
        error.body.rejected = rejected;
        error
    }
}

impl ApiError {
    /// The answer's status: always a 4xx for a refusal, a 5xx only when the office itself failed.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The answer's JSON body.
    pub fn body(&self) -> &ErrorBody {
        &self.body
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
        }
        response
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
                let rejected = rejections
                    .into_iter()
                    .map(|r| RejectedEvent {
                        id: r.id,
                        reason: r.reason,
                    })
                    .collect();
                ApiError::batch_refused(status, code, rejected)
            }
        }
    }
}

/// Refuses a body not sent as JSON; `what` names the request ("the sync request").
fn json_content(content_type: Option<&str>, what: &str) -> Result<(), ApiError> {
    if content_type.is_some_and(|v| v.starts_with("application/json")) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "not_json",
        format!("send {what} as application/json"),
    ))
}

/// A phone's JSON request, or a 400 saying why `what` ("the sync request") could not be read.
pub(crate) fn json_body<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_json",
            format!("{what} could not be read: {e}"),
        )
    })
}

/// Refuses a request in a protocol version (`sent`) other than this office's; `name` is how the refusal
/// calls the protocol.
pub(crate) fn same_protocol(sent: u32, name: &str) -> Result<(), ApiError> {
    if sent == PROTOCOL_VERSION {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::BAD_REQUEST,
        "unsupported_protocol",
        format!("this office speaks {name} {PROTOCOL_VERSION}; the phone sent {sent}"),
    ))
}

/// Runs blocking store work off the async threads.
pub(crate) async fn blocking<T: Send + 'static, E: Into<ApiError> + Send + 'static>(
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, ApiError> {
    crate::store::off_async_threads(work, Into::into, || {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the office could not complete this request; nothing was stored",
        )
    })
    .await
}

/// The enrolled phone whose device token the request carries (`Authorization: Bearer <token>`); anything
/// else is a 401.
pub struct PhoneDevice(pub Device);

impl Guard for PhoneDevice {
    const ACCESS: Access = Access::Phone;
}

impl DeviceToken for PhoneDevice {}

impl FromRequestParts<AppState> for PhoneDevice {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
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
        let now = state.now();
        match blocking(move || store.check_token(&token, now)).await? {
            TokenCheck::Accepted(device) => Ok(PhoneDevice(device)),
            TokenCheck::Unknown => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                refusal::UNKNOWN_DEVICE,
                "this device token is not enrolled with the office",
            )),
            TokenCheck::Expired => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                refusal::CREDENTIAL_EXPIRED,
                "this phone's credential has expired; ask an admin for a new enrolment code",
            )),
            TokenCheck::Replaced { clone } => {
                if clone {
                    tracing::warn!("a replaced device token was used again: clone suspected");
                }
                Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    refusal::CREDENTIAL_REPLACED,
                    "this credential was replaced by a newer one; the phone uses the newer one",
                ))
            }
            TokenCheck::Revoked => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                refusal::DEVICE_REVOKED,
                "this phone was revoked by an admin; it deletes what it holds",
            )),
        }
    }
}

/// A sync admitted by [`admit_syncs`] before the device token is checked: its request, decoded once, and
/// its place among those doing store work (`None`: an alert let in without a place). The handler takes
/// both over.
#[derive(Debug, Clone)]
pub(crate) struct Admitted(Arc<Mutex<Option<AdmittedSync>>>);

type AdmittedSync = (SyncRequest, Option<OwnedSemaphorePermit>);

impl Admitted {
    fn take(&self) -> Option<AdmittedSync> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

/// Whether a sync may do store work now: on an overflow connection only one carrying an alert, and past
/// capacity (the [`crate::admission::SyncGate`]) an ordinary one is told to come back.
async fn admit(
    state: &AppState,
    overflow: bool,
    carries_alert: bool,
) -> Result<Option<OwnedSemaphorePermit>, ApiError> {
    let busy = || ApiError::busy(state.syncs.retry_after_secs());
    if overflow && !carries_alert {
        return Err(busy());
    }
    match state.syncs.admit(carries_alert).await {
        Admission::Admitted(place) => Ok(place),
        Admission::Busy => Err(busy()),
    }
}

/// Admission for `POST /api/v1/sync` before anything else is done for it: the body is read (no store
/// work), and past capacity an ordinary sync is turned away here, before its device token is checked, so
/// the syncs turned away cost the store nothing and an alert's store work does not queue behind theirs.
/// A body that does not decode goes on to the handler, which checks the token and then says what is wrong.
pub(crate) async fn admit_syncs(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if request.method() != axum::http::Method::POST || request.uri().path() != "/api/v1/sync" {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "a sync request is at most {MAX_BODY_BYTES} bytes; send fewer events at a time"
            ),
        )
        .into_response();
    };
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if let Ok(request) = decode_sync_request(content_type, &bytes) {
        let carries_alert = request.events.iter().any(|e| e.event.is_urgent());
        let overflow = parts.extensions.get::<crate::serve::Overflow>().is_some();
        match admit(&state, overflow, carries_alert).await {
            Ok(place) => {
                parts
                    .extensions
                    .insert(Admitted(Arc::new(Mutex::new(Some((request, place))))));
            }
            Err(busy) => return busy.into_response(),
        }
    }
    next.run(axum::extract::Request::from_parts(
        parts,
        axum::body::Body::from(bytes),
    ))
    .await
}

/// Reads a sync request's body as the sync handler does, with every check that needs no store: the body
/// is `application/json`, it parses as a [`SyncRequest`] (unknown fields, ids, sequence numbers and times
/// refused by their types), the protocol is this office's, the batch carries at most [`MAX_BATCH_EVENTS`]
/// events, and each event's values are in range
/// ([`doorstep_core::event::EventEnvelope::validate`]: times, text lengths, the lists an event carries).
/// A refused batch is a 4xx [`ApiError`]; an event out of range names itself in `rejected`, as the
/// store's own refusals do. What needs the store (whose device, which visits, what is
/// already stored) is [`SqliteStore::ingest`](crate::store::SqliteStore::ingest)'s.
///
/// Public and pure so the fuzz target (`fuzz/fuzz_targets/sync_request.rs`) exercises this very code.
pub fn decode_sync_request(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<SyncRequest, ApiError> {
    json_content(content_type, "the sync request")?;
    let request: SyncRequest = json_body(body, "the sync request")?;
    same_protocol(request.protocol, "sync protocol")?;
    if request
        .holdings_cursor
        .as_ref()
        .is_some_and(|cursor| cursor.len() > MAX_CURSOR_LEN)
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_cursor",
            format!("a holdings cursor is at most {MAX_CURSOR_LEN} characters"),
        ));
    }
    if request.events.len() > MAX_BATCH_EVENTS {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_events",
            format!("a batch carries at most {MAX_BATCH_EVENTS} events"),
        ));
    }
    let rejected: Vec<RejectedEvent> = request
        .events
        .iter()
        .filter_map(|envelope| {
            envelope.validate().err().map(|e| RejectedEvent {
                id: envelope.id,
                reason: e.to_string(),
            })
        })
        .collect();
    if !rejected.is_empty() {
        return Err(ApiError::batch_refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            "event_rejected",
            rejected,
        ));
    }
    Ok(request)
}

/// `POST /api/v1/sync`: stores a phone's batch all or nothing and answers with what it holds.
pub(crate) async fn sync(
    PhoneDevice(device): PhoneDevice,
    State(state): State<AppState>,
    overflow: Option<Extension<crate::serve::Overflow>>,
    admitted: Option<Extension<Admitted>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<SyncResponse>, ApiError> {
    // Decoded and admitted already by `admit_syncs` (always, for a body that decodes); otherwise read
    // here, which says what is wrong with it.
    let (request, place) = match admitted.and_then(|Extension(admitted)| admitted.take()) {
        Some(admitted) => admitted,
        None => {
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
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok());
            let request = decode_sync_request(content_type, &body)?;
            let carries_alert = request.events.iter().any(|e| e.event.is_urgent());
            let place = admit(&state, overflow.is_some(), carries_alert).await?;
            (request, place)
        }
    };
    let carries_alert = request.events.iter().any(|e| e.event.is_urgent());
    let now = state.now();
    let store = state.store.clone();
    let escalation = state.escalation.clone();
    let visits: std::collections::BTreeSet<_> =
        request.events.iter().map(|e| e.visit.clone()).collect();
    let response = blocking(move || -> Result<SyncResponse, IngestError> {
        // The place is given back when this store work ends, even if the phone has stopped waiting.
        let _place = place;
        let ingested =
            match store.ingest_raising(&device, &request.events, request.device_time, now) {
                Ok(ingested) => ingested,
                Err(IngestError::Rejected(rejections)) => {
                    // A sequence number this device already used, now with another event: two phones are
                    // numbering events from one copy of its data.
                    if let Some(taken) = rejections.iter().find(|r| r.seq_taken) {
                        store.suspect_clone(&device, &taken.reason, now)?;
                    }
                    return Err(IngestError::Rejected(rejections));
                }
                Err(other) => return Err(other),
            };
        // Committed: the board and the engine hear of it now, before the answer is built. A duress alarm
        // was raised in the ingest's own transaction; `raised` puts it on the board and before the
        // notifier at once.
        if let Some(escalation) = &escalation {
            for alarm in ingested.alarms {
                escalation.raised(alarm);
            }
            for visit in visits {
                escalation.visit_changed(visit);
            }
        }
        if carries_alert {
            tracing::warn!(device = %device.id, "duress received");
        }
        let results = ingested.results;
        let holdings = store.holdings_since(&device, now, request.holdings_cursor.as_deref())?;
        Ok(SyncResponse {
            protocol: PROTOCOL_VERSION,
            results,
            acknowledged_through: holdings.acknowledged_through,
            server_time: now,
            hold: holdings.hold,
            hold_scope: holdings.scope,
            holdings_cursor: Some(holdings.cursor),
            more: holdings.more,
            renewed_credential: store.offer_renewal(&device, now)?,
        })
    })
    .await?;
    Ok(Json(response))
}

/// `POST /api/v1/enrol`: a phone redeems a one-time enrolment code for its own device id and credential.
/// Wrong codes are counted against the caller's address: after a few it is locked out for a while
/// (`too_many_attempts`), before any code is looked up.
pub(crate) async fn enrol(
    State(state): State<AppState>,
    PeerAddress(peer): PeerAddress,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<EnrolResponse>, ApiError> {
    let now = state.now();
    if let Err(refused) = state.enrolments.check_peer(peer, now) {
        let when = match refused {
            Refusal::Locked { until } => format!("after {}", until.format("%H:%M UTC")),
            Refusal::Busy => "in a moment".to_owned(),
        };
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            refusal::TOO_MANY_ATTEMPTS,
            format!("too many wrong enrolment codes from this address; try again {when}"),
        ));
    }
    let body = body.map_err(|rejection| {
        ApiError::new(rejection.status(), "bad_body", rejection.body_text())
    })?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    json_content(content_type, "the enrolment request")?;
    let request: EnrolRequest = json_body(&body, "the enrolment request")?;
    same_protocol(request.protocol, "protocol")?;
    let store = state.store.clone();
    let redeemed =
        blocking(move || Ok::<_, StoreError>(store.redeem_enrolment_code(&request.code, now)))
            .await?;
    let error = match redeemed {
        Ok(enrolled) => {
            tracing::info!(device = %enrolled.device.id, staff = %enrolled.device.staff, "phone enrolled");
            return Ok(Json(EnrolResponse {
                protocol: PROTOCOL_VERSION,
                device_id: enrolled.device.id,
                credential: enrolled.credential,
                staff: enrolled.device.staff,
                staff_name: enrolled.staff_name,
                school_name: enrolled.school_name,
                server_time: now,
            }));
        }
        Err(RedeemError::Store(error)) => return Err(error.into()),
        Err(error) => error,
    };
    let (status, code) = match error {
        RedeemError::Used => (StatusCode::GONE, refusal::CODE_USED),
        RedeemError::Expired => (StatusCode::GONE, refusal::CODE_EXPIRED),
        _ => (StatusCode::NOT_FOUND, refusal::CODE_UNKNOWN),
    };
    // Every wrong code counts, used and expired ones too: as far as the office can tell, each is a guess.
    state.enrolments.failed_peer(peer, now);
    Err(ApiError::new(status, code, error.to_string()))
}

/// The answer of `GET /api/v1/health`.
#[derive(Serialize, schemars::JsonSchema)]
pub struct Health {
    pub status: String,
    server_time: DateTime<Utc>,
}

pub(crate) async fn health(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        server_time: state.now(),
    })
}

pub(crate) async fn openapi() -> impl IntoResponse {
    Json(crate::openapi::document())
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint; see /api/v1/openapi.json",
    )
}

pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method; see /api/v1/openapi.json",
    )
}
