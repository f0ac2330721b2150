//! `POST /api/v1/reconcile`: a phone asks which of its events, by sequence range, the office holds, and the
//! highest number it holds from it (`doorstep_core::reconcile`). The phone sends again what the office lost
//! and learns when the office holds more than it remembers (a phone restored from a backup).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use doorstep_core::protocol::PROTOCOL_VERSION;
use doorstep_core::reconcile::{ReconcileRequest, ReconcileResponse, MAX_RECONCILE_SPAN};

use crate::api::{blocking, json_body, same_protocol, ApiError, PhoneDevice};
use crate::state::AppState;
use crate::store::StoreError;

/// `POST /api/v1/reconcile`, for an enrolled phone (the [`PhoneDevice`] guard refuses any other).
pub async fn reconcile(
    PhoneDevice(device): PhoneDevice,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<ReconcileResponse>, ApiError> {
    let request: ReconcileRequest = json_body(&body, "the reconcile request")?;
    same_protocol(request.protocol, "protocol")?;
    let (from, through) = (request.from_seq, request.through_seq);
    if from > through || through.get() - from.get() >= MAX_RECONCILE_SPAN {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_range",
            format!(
                "ask about 1 to {MAX_RECONCILE_SPAN} sequence numbers, from_seq no greater than through_seq"
            ),
        ));
    }
    let now = state.now();
    let store = state.store.clone();
    let (held, highest_seq) = blocking(move || {
        Ok::<_, StoreError>((
            store.held_in_range(&device.id, from, through)?,
            store.acknowledged_through(&device.id)?,
        ))
    })
    .await?;
    Ok(Json(ReconcileResponse {
        protocol: PROTOCOL_VERSION,
        held,
        highest_seq,
        server_time: now,
    }))
}
