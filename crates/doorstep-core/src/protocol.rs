//! The sync protocol between phone and office, version 1.
//!
//! The phone sends a batch of events (`SyncRequest`) to `POST /api/v1/sync` with its device token. A batch is
//! all or nothing: if every event is acceptable the office stores the new ones and answers `SyncResponse`
//! with each event's outcome (stored or duplicate), the highest sequence number it holds from this device,
//! and what the phone should hold. If any event is refused the office stores none of them and answers a
//! 4xx `ErrorBody` whose `rejected` list gives each refused event with its reason, so the phone can set
//! those aside and send the rest again.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{School, Visit};
use crate::event::{EventEnvelope, TrustedEvent};
use crate::ids::{DeviceSeq, EventId, StaffId};
use crate::policy::Policy;

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;
/// The most events one batch may carry.
pub const MAX_BATCH_EVENTS: usize = 500;
/// The largest request body the office reads, in bytes.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    /// Must be [`PROTOCOL_VERSION`].
    pub protocol: u32,
    /// The phone's clock when it sent the batch, so the office can spot a wrong clock.
    pub device_time: DateTime<Utc>,
    pub events: Vec<EventEnvelope>,
}

/// What happened to one event of an accepted batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum EventOutcome {
    /// Stored now, for the first time.
    Stored,
    /// Already stored with identical content: acknowledged again.
    Duplicate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct EventResult {
    pub id: EventId,
    pub outcome: EventOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct SyncResponse {
    pub protocol: u32,
    /// One result per event in the request, in the same order.
    pub results: Vec<EventResult>,
    /// The highest sequence number the office holds from this device, if any.
    pub acknowledged_through: Option<DeviceSeq>,
    /// The office's clock when it answered.
    pub server_time: DateTime<Utc>,
    pub hold: PhoneHoldings,
}

/// Everything the phone should keep for its user: replaces what it held before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PhoneHoldings {
    pub school: School,
    pub policy: Policy,
    /// Who this phone belongs to.
    pub staff: StaffId,
    pub staff_name: String,
    /// The user's visits that are not yet over, with briefings and every event the office has for them
    /// (a partner's included).
    pub visits: Vec<HeldVisit>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct HeldVisit {
    pub visit: Visit,
    pub events: Vec<EventEnvelope>,
    /// The time the office counts each event as having happened (`event::trusted_time`), so the phone
    /// replays the visit exactly as the office does. An event missing here counts at its recorded time.
    #[serde(default)]
    pub times: Vec<EventTime>,
}

/// The office's time for one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct EventTime {
    pub id: EventId,
    pub at: DateTime<Utc>,
}

impl HeldVisit {
    /// The visit's events with the office's times, ready to replay.
    pub fn trusted_events(&self) -> Vec<TrustedEvent<'_>> {
        let times: std::collections::HashMap<EventId, DateTime<Utc>> =
            self.times.iter().map(|t| (t.id, t.at)).collect();
        self.events
            .iter()
            .map(|envelope| TrustedEvent {
                envelope,
                at: times
                    .get(&envelope.id)
                    .copied()
                    .unwrap_or(envelope.recorded_at),
            })
            .collect()
    }
}

/// The office's answer to anything it refuses: a machine-readable code and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ErrorBody {
    /// A stable code, e.g. `bad_json`, `unknown_device`, `event_rejected`, `conflicting_event`.
    pub error: String,
    pub message: String,
    /// Each refused event of a batch, with why. Empty for errors about the whole request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<RejectedEvent>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RejectedEvent {
    pub id: EventId,
    pub reason: String,
}
