//! `POST /api/v1/reconcile`: a phone asks which of its events, by sequence range, the office holds, and the
//! highest number it holds from it (`doorstep_core::reconcile`). The phone sends again what the office lost
//! and learns when the office holds more than it remembers (a phone restored from a backup).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use doorstep_core::ids::{DeviceId, DeviceSeq};
use doorstep_core::protocol::PROTOCOL_VERSION;
use doorstep_core::reconcile::{HeldSeq, ReconcileRequest, ReconcileResponse, MAX_RECONCILE_SPAN};
use rusqlite::params;

use crate::api::{blocking, json_body, same_protocol, ApiError, PhoneDevice};
use crate::state::AppState;
use crate::store::{parse_id, SqliteStore, StoreError};

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

impl SqliteStore {
    /// The events from `device` numbered `from..=through`, by number.
    pub fn held_in_range(
        &self,
        device: &DeviceId,
        from: DeviceSeq,
        through: DeviceSeq,
    ) -> Result<Vec<HeldSeq>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, id FROM events WHERE device_id = ?1 AND seq BETWEEN ?2 AND ?3 ORDER BY seq",
        )?;
        let rows = stmt.query_map(
            params![device.as_str(), from.get() as i64, through.get() as i64],
            |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)),
        )?;
        let mut held = Vec::new();
        for row in rows {
            let (seq, id) = row?;
            held.push(HeldSeq {
                seq: DeviceSeq::new(seq as u64).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                id: parse_id(&id)?,
            });
        }
        Ok(held)
    }
}
