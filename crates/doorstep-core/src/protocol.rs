//! The sync protocol between phone and office, version 1.
//!
//! The phone sends a batch of events (`SyncRequest`) to `POST /api/v1/sync` with its device token. A batch is
//! all or nothing: if every event is acceptable the office stores the new ones and answers `SyncResponse`
//! with each event's outcome (stored or duplicate), the highest sequence number it holds from this device,
//! and what the phone should hold. If any event is refused the office stores none of them and answers a
//! 4xx `ErrorBody` whose `rejected` list gives each refused event with its reason, so the phone can set
//! those aside and send the rest again.
//!
//! A phone gets its device token once, by redeeming the one-time enrolment code an admin issued for its
//! holder (`POST /api/v1/enrol`, [`EnrolRequest`] and [`EnrolResponse`]). The token expires
//! ([`DeviceCredential::expires_at`]); while the phone is in use the office hands it a fresh one in a sync
//! answer ([`SyncResponse::renewed_credential`]) and the old one keeps working until the phone has used
//! the new. The refusals a phone acts on have fixed codes ([`refusal`]).
//!
//! What the phone should hold is sent whole only when the phone has nothing to build on. Each answer
//! carries a [`SyncResponse::holdings_cursor`]; a phone that sends it back in its next request
//! ([`SyncRequest::holdings_cursor`]) is sent only the events the office stored since
//! ([`HoldScope::ChangesOnly`], at most [`MAX_CHANGED_EVENTS`] at a time, with [`SyncResponse::more`] when
//! others wait), which it adds to what it holds with [`PhoneHoldings::merge_changes`]. Anything else that
//! changed (the school, its policy, a visit's details or briefing, which visits the phone holds) makes
//! the office send everything again. So an idle sync costs the same whatever a visit's history holds.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{School, Visit};
use crate::event::{EventEnvelope, TrustedEvent};
use crate::ids::{DeviceId, DeviceSeq, EventId, StaffId};
use crate::policy::Policy;

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;
/// The most events one batch may carry.
pub const MAX_BATCH_EVENTS: usize = 500;
/// The largest request body the office reads, in bytes.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;
/// The most events an answer of changes carries; the rest follow in the next ([`SyncResponse::more`]).
pub const MAX_CHANGED_EVENTS: usize = 1_000;
/// The longest holdings cursor a phone may send back (the office's are far shorter).
pub const MAX_CURSOR_LEN: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    /// Must be [`PROTOCOL_VERSION`].
    pub protocol: u32,
    /// The phone's clock when it sent the batch, so the office can spot a wrong clock.
    pub device_time: DateTime<Utc>,
    #[cfg_attr(feature = "schema", schemars(length(max = MAX_BATCH_EVENTS)))]
    pub events: Vec<EventEnvelope>,
    /// The [`SyncResponse::holdings_cursor`] of the last answer whose holdings the phone kept; absent, the
    /// office sends everything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(length(max = MAX_CURSOR_LEN)))]
    pub holdings_cursor: Option<String>,
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
    /// Everything the phone should hold, or (see [`SyncResponse::hold_scope`]) only what changed.
    pub hold: PhoneHoldings,
    /// Whether `hold` is everything or only the changes since the request's cursor.
    #[serde(default)]
    pub hold_scope: HoldScope,
    /// Where these holdings stand: sent back in the next request, it asks for only what changed since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holdings_cursor: Option<String>,
    /// More changes wait beyond [`MAX_CHANGED_EVENTS`]: the phone should sync again at once.
    #[serde(default)]
    pub more: bool,
    /// A fresh device token, offered while the one this request carried is still good but getting old.
    /// The phone keeps it and uses it from its next request on; the old one works until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewed_credential: Option<DeviceCredential>,
}

/// Whether an answer's holdings are everything the phone should hold or only what changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum HoldScope {
    /// Everything: the phone replaces what it holds.
    #[default]
    Full,
    /// The school, policy and who the phone belongs to as before, and for each visit with new events only
    /// those events and their times: the phone adds them to what it holds.
    ChangesOnly,
}

/// A device token and when it stops working. The token is a secret: the office keeps only its hash, the
/// phone keeps it sealed with its data key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct DeviceCredential {
    /// Sent as `Authorization: Bearer <token>`.
    pub token: String,
    /// After this the office refuses the token (`credential_expired`); the phone is enrolled again.
    pub expires_at: DateTime<Utc>,
}

// The token stays out of logs and panic messages.
impl std::fmt::Debug for DeviceCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceCredential")
            .field("token", &"<hidden>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// `POST /api/v1/enrol`: a phone redeems a one-time enrolment code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct EnrolRequest {
    /// Must be [`PROTOCOL_VERSION`].
    pub protocol: u32,
    /// The code as the admin's page shows it (`7KQ4-M2XD-9RTB`); case, spaces and dashes do not matter.
    pub code: String,
}

/// What a redeemed enrolment code gives the phone: its own device id and credential, and whose phone it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct EnrolResponse {
    pub protocol: u32,
    /// A new id, made by the office for this phone alone.
    pub device_id: DeviceId,
    pub credential: DeviceCredential,
    /// Who the code was issued for: this phone's holder.
    pub staff: StaffId,
    pub staff_name: String,
    pub school_name: String,
    /// The office's clock when it answered.
    pub server_time: DateTime<Utc>,
}

/// The refusal codes (`ErrorBody::error`) a phone recognises and acts on.
pub mod refusal {
    /// The token is not one the office issued (or the phone was never enrolled).
    pub const UNKNOWN_DEVICE: &str = "unknown_device";
    /// An admin revoked this phone: it deletes what it holds.
    pub const DEVICE_REVOKED: &str = "device_revoked";
    /// The token is past its expiry: the phone must be enrolled again.
    pub const CREDENTIAL_EXPIRED: &str = "credential_expired";
    /// The token was replaced by a renewed one some time ago, yet is still being used: another phone
    /// holds a copy of this one's credential.
    pub const CREDENTIAL_REPLACED: &str = "credential_replaced";
    /// Enrolment: the code was already redeemed.
    pub const CODE_USED: &str = "enrolment_code_used";
    /// Enrolment: the code is past its few minutes.
    pub const CODE_EXPIRED: &str = "enrolment_code_expired";
    /// Enrolment: no such code (or it was withdrawn).
    pub const CODE_UNKNOWN: &str = "enrolment_code_unknown";
    /// Enrolment: too many wrong codes from this address; try again later.
    pub const TOO_MANY_ATTEMPTS: &str = "too_many_attempts";
    /// Sync: the office is past capacity and took nothing; send again after the answer's `Retry-After`
    /// seconds (a sync carrying an alert is never turned away).
    pub const BUSY: &str = "busy";
}

/// The letters an enrolment code is written in: Crockford's base 32 (no I, L, O or U, so nothing is
/// mistaken for a digit when read off a screen).
pub const ENROLMENT_CODE_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Characters in an enrolment code (60 random bits), shown in groups of four.
pub const ENROLMENT_CODE_LEN: usize = 12;

/// An enrolment code as typed or scanned, in its one canonical form (upper case, no spaces or dashes,
/// `O` read as `0` and `I`/`L` as `1`), or `None` if it cannot be one.
pub fn normalise_enrolment_code(text: &str) -> Option<String> {
    let mut code = String::with_capacity(ENROLMENT_CODE_LEN);
    for c in text.chars() {
        if c == '-' || c.is_whitespace() {
            continue;
        }
        let c = match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        };
        if !c.is_ascii() || !ENROLMENT_CODE_ALPHABET.contains(&(c as u8)) {
            return None;
        }
        code.push(c);
        if code.len() > ENROLMENT_CODE_LEN {
            return None;
        }
    }
    (code.len() == ENROLMENT_CODE_LEN).then_some(code)
}

/// An enrolment code grouped for reading aloud or typing: `7KQ4-M2XD-9RTB`.
pub fn display_enrolment_code(code: &str) -> String {
    let chars: Vec<char> = code.chars().collect();
    chars
        .chunks(4)
        .map(|group| group.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// What the admin's enrolment page shows as a QR code: the office's address and the code in one
/// `doorstep://enrol?office=…&code=…` link, which the phone's set-up screen also accepts pasted whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolmentLink {
    pub office_url: String,
    pub code: String,
}

impl EnrolmentLink {
    const PREFIX: &'static str = "doorstep://enrol?";

    pub fn to_uri(&self) -> String {
        format!(
            "{}office={}&code={}",
            Self::PREFIX,
            percent_encode(&self.office_url),
            percent_encode(&self.code)
        )
    }

    /// The link's two parts, or `None` if `text` is not such a link.
    pub fn parse(text: &str) -> Option<Self> {
        let query = text.trim().strip_prefix(Self::PREFIX)?;
        let (mut office, mut code) = (None, None);
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=')?;
            let value = percent_decode(value)?;
            match key {
                "office" => office = Some(value),
                "code" => code = Some(value),
                _ => {}
            }
        }
        Some(Self {
            office_url: office?,
            code: code?,
        })
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
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

/// Why changes could not be added to what a phone holds: it must ask for everything again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    #[error("the changes are for {changes}, but the phone holds {held}'s visits")]
    OtherStaff { held: StaffId, changes: StaffId },
    #[error("the changes name visit {0}, which the phone does not hold")]
    UnknownVisit(crate::ids::VisitId),
}

impl PhoneHoldings {
    /// Adds an answer's changes ([`HoldScope::ChangesOnly`]) to what the phone holds: each visit's new
    /// events and times after those it has (an event it already holds is not added twice); the school,
    /// policy and names as the changes say. All or nothing: on an error `self` is unchanged.
    pub fn merge_changes(&mut self, changes: PhoneHoldings) -> Result<(), MergeError> {
        if changes.staff != self.staff {
            return Err(MergeError::OtherStaff {
                held: self.staff.clone(),
                changes: changes.staff,
            });
        }
        if let Some(unknown) = changes
            .visits
            .iter()
            .find(|changed| !self.visits.iter().any(|h| h.visit.id == changed.visit.id))
        {
            return Err(MergeError::UnknownVisit(unknown.visit.id.clone()));
        }
        for changed in changes.visits {
            if let Some(held) = self
                .visits
                .iter_mut()
                .find(|h| h.visit.id == changed.visit.id)
            {
                let known: std::collections::HashSet<EventId> =
                    held.events.iter().map(|e| e.id).collect();
                let known_times: std::collections::HashSet<EventId> =
                    held.times.iter().map(|t| t.id).collect();
                held.events.extend(
                    changed
                        .events
                        .into_iter()
                        .filter(|e| !known.contains(&e.id)),
                );
                held.times.extend(
                    changed
                        .times
                        .into_iter()
                        .filter(|t| !known_times.contains(&t.id)),
                );
            }
        }
        self.school = changes.school;
        self.policy = changes.policy;
        self.staff_name = changes.staff_name;
        Ok(())
    }
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
