//! Alerts that arrive by text message: the SMS gateway's webhook, `POST /api/v1/sms/inbound`.
//!
//! When an alert cannot reach the office over data, the phone offers a prefilled text to the office's
//! number carrying the alert's reference (`doorstep_core::sms`). The school's SMS gateway, whichever it
//! is, hands each text it receives to this webhook in one gateway-neutral form (`docs/sms.md`): JSON
//! `{"from", "text"}` (plus optional `"to"` and `"gateway_id"`), signed with a secret the office and the
//! gateway share: `X-Doorstep-Timestamp: <unix seconds>` and
//! `X-Doorstep-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`, within five minutes of
//! the office's clock.
//!
//! A signed text is always recorded in `sms_messages` with what became of it. Its reference is checked
//! with the sending device's key (derived from what the office keeps of the device's credential); a text
//! that was forged or altered is refused. A genuine alert goes through the same `ingest` as a sync, so it
//! is stored once whichever channel brings it first: the other is told it is a duplicate. A request whose
//! gateway signature is wrong is refused and only logged: it did not come from the gateway, and recording
//! whatever anyone posts would let them fill the database.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use doorstep_core::ids::DeviceId;
use doorstep_core::sms::{self, SmsKey};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::api::ApiError;
use crate::state::AppState;
use crate::store::{parse_id, stored_time, Device, IngestError, StoreError};

/// The header with the gateway's signature.
pub const SIGNATURE_HEADER: &str = "x-doorstep-signature";
/// The header with the time the gateway signed at, in Unix seconds.
pub const TIMESTAMP_HEADER: &str = "x-doorstep-timestamp";
/// How far the gateway's signing time may be from the office's clock, in seconds (a replay window).
pub const MAX_CLOCK_SKEW_SECS: i64 = 300;
/// The environment variable `doorstep-office` reads the shared secret from.
pub const SECRET_ENV: &str = "DOORSTEP_SMS_GATEWAY_SECRET";

type HmacSha256 = Hmac<Sha256>;

/// The SMS gateway the office trusts: the secret it signs with. Absent, the webhook answers 404.
#[derive(Clone)]
pub struct SmsGateway {
    secret: Arc<Vec<u8>>,
}

// The secret must not reach a log.
impl std::fmt::Debug for SmsGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SmsGateway(..)")
    }
}

/// Why the gateway's secret was not accepted.
#[derive(Debug, thiserror::Error)]
#[error("the SMS gateway's secret must be 16 to 256 characters")]
pub struct SecretError;

impl SmsGateway {
    pub fn new(secret: &str) -> Result<Self, SecretError> {
        if !(16..=256).contains(&secret.chars().count()) {
            return Err(SecretError);
        }
        Ok(Self {
            secret: Arc::new(secret.as_bytes().to_vec()),
        })
    }

    /// The signature header's value for `body` signed at `timestamp`: what a gateway (or its adapter)
    /// sends.
    pub fn signature(&self, timestamp: i64, body: &[u8]) -> String {
        let mut mac = self.mac();
        mac.update(format!("{timestamp}.").as_bytes());
        mac.update(body);
        let digest = mac.finalize().into_bytes();
        format!(
            "sha256={}",
            digest
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        )
    }

    fn verify(&self, timestamp: i64, body: &[u8], header: &str) -> bool {
        let Some(bytes) = header.strip_prefix("sha256=").and_then(from_hex) else {
            return false;
        };
        let mut mac = self.mac();
        mac.update(format!("{timestamp}.").as_bytes());
        mac.update(body);
        // Constant time, so a forger learns nothing from how long a refusal takes.
        mac.verify_slice(&bytes).is_ok()
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.secret).expect("HMAC takes a key of any length")
    }
}

pub(crate) fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(text.get(at..at + 2)?, 16).ok())
        .collect()
}

/// A text as the gateway hands it over.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InboundSms {
    /// The sender's number, as the gateway gives it.
    pub from: String,
    /// The message.
    pub text: String,
    /// The number it was sent to (the office's).
    #[serde(default)]
    pub to: Option<String>,
    /// The gateway's own id for the message, kept for tracing.
    #[serde(default)]
    pub gateway_id: Option<String>,
}

/// The answer to a text that carried a genuine alert.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InboundAnswer {
    /// `stored` (first to arrive) or `duplicate` (the office already had it, by data or an earlier text).
    pub outcome: String,
    /// The alert's event id.
    pub event_id: String,
}

/// What became of a text, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsOutcome {
    Stored,
    Duplicate,
    /// The reference's code did not match, or named a device the office does not know.
    Forged,
    /// The reference was genuine but the office refused the event (not this device's visit, say).
    Refused,
    /// No Doorstep reference could be read.
    Unreadable,
}

impl SmsOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            SmsOutcome::Stored => "stored",
            SmsOutcome::Duplicate => "duplicate",
            SmsOutcome::Forged => "forged",
            SmsOutcome::Refused => "refused",
            SmsOutcome::Unreadable => "unreadable",
        }
    }
}

/// One recorded text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsRecord {
    pub received_at: DateTime<Utc>,
    pub from: String,
    pub text: String,
    pub outcome: String,
    pub detail: String,
    pub device: Option<String>,
    pub event_id: Option<String>,
}

/// The store failed while taking in a text: a 500 (details to the log), and the gateway sends it again.
fn store_failure(error: StoreError) -> ApiError {
    tracing::error!(%error, "store failure while taking in a text");
    internal()
}

/// The office itself failed: nothing was taken in, and the gateway should send the text again.
fn internal() -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "the office could not complete this request; send it again",
    )
}

/// `POST /api/v1/sms/inbound`.
pub async fn inbound(
    State(state): State<AppState>,
    gateway: Option<Extension<SmsGateway>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<InboundAnswer>, ApiError> {
    let Some(Extension(gateway)) = gateway else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "sms_not_configured",
            format!("this office takes no texts: set {SECRET_ENV} to the SMS gateway's secret"),
        ));
    };
    let now = state.now();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let timestamp: i64 = header(TIMESTAMP_HEADER)
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unsigned",
                format!("send {TIMESTAMP_HEADER} (Unix seconds) and {SIGNATURE_HEADER}"),
            )
        })?;
    if (now.timestamp() - timestamp).abs() > MAX_CLOCK_SKEW_SECS {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "stale_signature",
            format!(
                "the signing time is more than {MAX_CLOCK_SKEW_SECS} s from the office's clock"
            ),
        ));
    }
    if !header(SIGNATURE_HEADER).is_some_and(|sig| gateway.verify(timestamp, &body, sig.trim())) {
        tracing::warn!("a text arrived with a wrong gateway signature; refused, not recorded");
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_signature",
            "the gateway signature does not match this office's SMS secret",
        ));
    }
    let sms: InboundSms = match serde_json::from_slice(&body) {
        Ok(sms) => sms,
        Err(error) => {
            let text = String::from_utf8_lossy(&body);
            let arrived = Arrived {
                state: &state,
                now,
                from: "",
                text: &text,
            };
            let detail = format!("not the gateway form: {error}");
            let refusal = ApiError::new(StatusCode::BAD_REQUEST, "bad_json", detail.clone());
            return Err(arrived
                .refuse(SmsOutcome::Unreadable, &detail, None, refusal)
                .await);
        }
    };
    let arrived = Arrived {
        state: &state,
        now,
        from: &sms.from,
        text: &sms.text,
    };
    let reference = match sms::read(&sms.text) {
        Ok(reference) => reference,
        Err(error) => {
            let detail = error.to_string();
            let refusal = ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "no_reference",
                detail.clone(),
            );
            return Err(arrived
                .refuse(SmsOutcome::Unreadable, &detail, None, refusal)
                .await);
        }
    };
    let device_id = reference.device.clone();
    let store = state.store.clone();
    let found = blocking(move || store.device_for_texts(&device_id, now)).await?;
    let verified = match found {
        None => Err(
            "the reference names a device this office does not know, or one that was revoked"
                .to_owned(),
        ),
        Some((device, hashes)) => {
            // The first of the device's live tokens whose key checks out; otherwise the newest's error.
            let mut result = Err("the device holds no token".to_owned());
            for (i, hash) in hashes.iter().enumerate() {
                match reference.verify(&SmsKey::from_token_hash(hash), device.staff.clone()) {
                    Ok(envelope) => {
                        result = Ok((device.clone(), envelope));
                        break;
                    }
                    Err(error) if i == 0 => result = Err(error.to_string()),
                    Err(_) => {}
                }
            }
            result
        }
    };
    let (device, envelope) = match verified {
        Ok(verified) => verified,
        Err(detail) => {
            tracing::warn!(device = %reference.device, "a forged or altered text was refused");
            let ids = Some((reference.device.clone(), reference.id.to_string()));
            let refusal = ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "forged_text",
                format!("refused and recorded: {detail}"),
            );
            return Err(arrived
                .refuse(SmsOutcome::Forged, &detail, ids, refusal)
                .await);
        }
    };
    let visit = envelope.visit.clone();
    let event_id = envelope.id.to_string();
    let store = state.store.clone();
    // A text does not say what the phone's clock read when it was sent, so no clock offset is measured:
    // the alert counts at its own recorded time (never later than it arrived).
    let ingested =
        blocking(move || Ok(store.ingest_raising(&device, &[envelope], now, now))).await?;
    let ids = Some((reference.device.clone(), event_id.clone()));
    match ingested {
        Ok(ingested) => {
            // The alarm was raised with the alert, in one transaction: the board hears of it at once.
            if let Some(escalation) = &state.escalation {
                for alarm in ingested.alarms {
                    escalation.raised(alarm);
                }
            }
            let stored = ingested
                .results
                .iter()
                .any(|r| r.outcome == doorstep_core::protocol::EventOutcome::Stored);
            let outcome = if stored {
                SmsOutcome::Stored
            } else {
                SmsOutcome::Duplicate
            };
            let detail = "an alert by text";
            arrived.record(outcome, detail, ids).await?;
            if stored {
                tracing::warn!(device = %reference.device, "duress received by text");
                if let Some(escalation) = &state.escalation {
                    escalation.visit_changed(visit);
                }
            }
            Ok(Json(InboundAnswer {
                outcome: outcome.as_str().to_owned(),
                event_id,
            }))
        }
        Err(IngestError::Rejected(rejections)) => {
            let detail = rejections
                .iter()
                .map(|r| r.reason.as_str())
                .collect::<Vec<_>>()
                .join("; ");
            let conflict = rejections.iter().any(|r| r.conflict);
            let refusal = ApiError::new(
                if conflict {
                    StatusCode::CONFLICT
                } else {
                    StatusCode::UNPROCESSABLE_ENTITY
                },
                "event_rejected",
                detail.clone(),
            );
            Err(arrived
                .refuse(SmsOutcome::Refused, &detail, ids, refusal)
                .await)
        }
        Err(IngestError::Store(error)) => Err(store_failure(error)),
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    crate::store::off_async_threads(work, store_failure, internal).await
}

/// A text as it arrived, for the record kept of every text and what became of it.
struct Arrived<'a> {
    state: &'a AppState,
    now: DateTime<Utc>,
    from: &'a str,
    text: &'a str,
}

impl Arrived<'_> {
    /// Keeps the text with its `outcome` and `detail`, and the device and event it named when known.
    async fn record(
        &self,
        outcome: SmsOutcome,
        detail: &str,
        ids: Option<(DeviceId, String)>,
    ) -> Result<(), ApiError> {
        let (store, now) = (self.state.store.clone(), self.now);
        let (from, text, detail) = (
            self.from.to_owned(),
            self.text.to_owned(),
            detail.to_owned(),
        );
        blocking(move || store.record_sms(now, &from, &text, outcome, &detail, ids)).await
    }

    /// Keeps the text as refused, then answers the gateway with `refusal` (or with the store's failure,
    /// if the text could not be kept).
    async fn refuse(
        &self,
        outcome: SmsOutcome,
        detail: &str,
        ids: Option<(DeviceId, String)>,
        refusal: ApiError,
    ) -> ApiError {
        match self.record(outcome, detail, ids).await {
            Ok(()) => refusal,
            Err(failed) => failed,
        }
    }
}

/// A device and the SHA-256 of each token it may hold now (see
/// [`crate::store::phones::Phones::device_for_texts`]).
pub type DeviceKeys = (Device, Vec<[u8; 32]>);

/// `device`'s keys as both stores read them: its member of staff and school (the ids as stored), and the
/// hex SHA-256 and issue time of each token it may hold, newest first. `None` when it may hold none.
pub(crate) fn device_keys(
    device: &DeviceId,
    (staff, school): (&str, &str),
    tokens: Vec<(String, String)>,
) -> Result<Option<DeviceKeys>, StoreError> {
    let mut hashes = Vec::with_capacity(tokens.len());
    let mut newest = None;
    for (hash, issued_at) in tokens {
        let hash: [u8; 32] = from_hex(&hash)
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| StoreError::Corrupt(format!("device {device}'s token hash")))?;
        if newest.is_none() {
            newest = Some(stored_time(&issued_at)?);
        }
        hashes.push(hash);
    }
    let Some(credential_issued_at) = newest else {
        return Ok(None);
    };
    Ok(Some((
        Device {
            id: device.clone(),
            staff: parse_id(staff)?,
            school: parse_id(school)?,
            credential_issued_at,
        },
        hashes,
    )))
}
