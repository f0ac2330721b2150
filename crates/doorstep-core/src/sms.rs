//! The second channel: an alert carried in a text message when there is no data, compact and
//! authenticated, so the office can store it exactly as the phone recorded it.
//!
//! The phone appends a reference to the prefilled text (after the school's code phrase, so the message
//! still reads as an ordinary request):
//!
//! ```text
//! Ref DS1.<device>.<visit>.<payload>
//! ```
//!
//! `<payload>` is base64url (no padding) of 43 bytes: the event id (16), the device time it was recorded
//! at in nanoseconds since 1970 (8, big-endian, signed), the device's sequence number (8, big-endian),
//! the kind of event (1: 1 = an alert raised with the code-phrase button, 2 = an alert raised with the
//! duress PIN) and the first 10 bytes of an HMAC-SHA256 over everything before it. The key is
//! [`SmsKey`], derived from the device's credential; the staff member is the device's, so it is not sent.
//! The office rebuilds the very envelope the phone holds, so whichever channel delivers it first stores
//! it, and the other is told it is a duplicate.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::event::EventEnvelope;
use crate::ids::{DeviceId, DeviceSeq, EventId, StaffId, VisitId};
use crate::lifecycle::{DuressVia, VisitEvent};

/// What begins a Doorstep reference in a text; the digit is the format's version.
pub const MARKER: &str = "DS1.";
/// How many bytes of the HMAC the message carries (80 bits: guessing one is hopeless, and every wrong
/// guess is recorded at the office).
pub const MAC_BYTES: usize = 10;
const PAYLOAD_BYTES: usize = 16 + 8 + 8 + 1 + MAC_BYTES;
/// Domain separation for the key: this key signs texts and nothing else.
const KEY_LABEL: &[u8] = b"doorstep sms key v1";

type HmacSha256 = Hmac<Sha256>;

/// The key a device signs its texts with.
#[derive(Clone, PartialEq, Eq)]
pub struct SmsKey([u8; 32]);

// A key is a secret: keep it out of logs.
impl std::fmt::Debug for SmsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SmsKey(..)")
    }
}

impl SmsKey {
    /// The key for a device from its credential: today the bearer device token of its enrolment file.
    /// The one place the derivation lives, so when enrolment changes the credential, only this changes.
    pub fn from_device_token(token: &str) -> Self {
        Self::from_token_hash(&Sha256::digest(token.as_bytes()).into())
    }

    /// The same key from what the office keeps of a token: its SHA-256.
    pub fn from_token_hash(token_sha256: &[u8; 32]) -> Self {
        let mut mac = HmacSha256::new_from_slice(token_sha256)
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        mac.update(KEY_LABEL);
        Self(mac.finalize().into_bytes().into())
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"))
    }
}

/// Why a text could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmsError {
    #[error("only an alert can be sent by text")]
    NotAnAlert,
    #[error("the message carries no Doorstep reference")]
    NoReference,
    #[error("the Doorstep reference is malformed: {0}")]
    Malformed(&'static str),
    #[error(
        "the reference's authentication code does not match: the message was forged or altered"
    )]
    BadCode,
}

/// A reference read from a text, before its code is checked (checking needs the device's key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsReference {
    pub device: DeviceId,
    pub visit: VisitId,
    pub id: EventId,
    pub recorded_at: DateTime<Utc>,
    pub seq: DeviceSeq,
    pub via: DuressVia,
    mac: [u8; MAC_BYTES],
}

fn kind_byte(via: DuressVia) -> u8 {
    match via {
        DuressVia::CodePhraseButton => 1,
        DuressVia::DuressPin => 2,
    }
}

/// The bytes the code is computed over: the reference's text prefix and the payload before the code.
fn signed_bytes(device: &DeviceId, visit: &VisitId, body: &[u8]) -> Vec<u8> {
    let mut signed = format!("{MARKER}{device}.{visit}.").into_bytes();
    signed.extend_from_slice(body);
    signed
}

/// The reference for an alert (`DS1.device.visit.payload`), to append to the text.
pub fn reference(envelope: &EventEnvelope, key: &SmsKey) -> Result<String, SmsError> {
    let VisitEvent::DuressRaised { via, .. } = envelope.event else {
        return Err(SmsError::NotAnAlert);
    };
    let nanos = envelope
        .recorded_at
        .timestamp_nanos_opt()
        .ok_or(SmsError::Malformed("the time is out of range"))?;
    let mut body = Vec::with_capacity(PAYLOAD_BYTES);
    body.extend_from_slice(envelope.id.as_uuid().as_bytes());
    body.extend_from_slice(&nanos.to_be_bytes());
    body.extend_from_slice(&envelope.seq.get().to_be_bytes());
    body.push(kind_byte(via));
    let mut mac = key.mac();
    mac.update(&signed_bytes(&envelope.device, &envelope.visit, &body));
    body.extend_from_slice(&mac.finalize().into_bytes()[..MAC_BYTES]);
    Ok(format!(
        "{MARKER}{}.{}.{}",
        envelope.device,
        envelope.visit,
        URL_SAFE_NO_PAD.encode(body)
    ))
}

/// The whole prefilled text: the school's words, then the reference.
pub fn message(words: &str, envelope: &EventEnvelope, key: &SmsKey) -> Result<String, SmsError> {
    Ok(format!(
        "{} Ref {}",
        words.trim(),
        reference(envelope, key)?
    ))
}

/// Finds and reads the reference in a text, whatever surrounds it.
pub fn read(text: &str) -> Result<SmsReference, SmsError> {
    let start = text.find(MARKER).ok_or(SmsError::NoReference)?;
    let token = text[start + MARKER.len()..]
        .split(|c: char| c.is_whitespace())
        .next()
        .unwrap_or_default();
    let mut parts = token.splitn(3, '.');
    let (Some(device), Some(visit), Some(payload)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(SmsError::Malformed(
            "it needs a device, a visit and a payload",
        ));
    };
    let device = DeviceId::parse(device).map_err(|_| SmsError::Malformed("bad device id"))?;
    let visit = VisitId::parse(visit).map_err(|_| SmsError::Malformed("bad visit id"))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches(['.', ',', ';']))
        .map_err(|_| SmsError::Malformed("the payload is not base64url"))?;
    if bytes.len() != PAYLOAD_BYTES {
        return Err(SmsError::Malformed("the payload has the wrong length"));
    }
    let take = |from: usize, to: usize| -> &[u8] { &bytes[from..to] };
    let id = EventId::from_uuid(
        Uuid::from_slice(take(0, 16)).map_err(|_| SmsError::Malformed("bad id"))?,
    );
    let nanos = i64::from_be_bytes(
        take(16, 24)
            .try_into()
            .map_err(|_| SmsError::Malformed("bad time"))?,
    );
    let seq = u64::from_be_bytes(
        take(24, 32)
            .try_into()
            .map_err(|_| SmsError::Malformed("bad sequence"))?,
    );
    let via = match bytes[32] {
        1 => DuressVia::CodePhraseButton,
        2 => DuressVia::DuressPin,
        _ => return Err(SmsError::Malformed("unknown kind of event")),
    };
    let mut mac = [0u8; MAC_BYTES];
    mac.copy_from_slice(take(33, PAYLOAD_BYTES));
    Ok(SmsReference {
        device,
        visit,
        id,
        recorded_at: DateTime::from_timestamp_nanos(nanos),
        seq: DeviceSeq::new(seq).map_err(|_| SmsError::Malformed("bad sequence"))?,
        via,
        mac,
    })
}

impl SmsReference {
    /// Checks the code with the device's key and rebuilds the envelope the phone recorded, for `staff`
    /// (the device's owner, whom the office knows).
    pub fn verify(&self, key: &SmsKey, staff: StaffId) -> Result<EventEnvelope, SmsError> {
        let mut body = Vec::with_capacity(PAYLOAD_BYTES - MAC_BYTES);
        body.extend_from_slice(self.id.as_uuid().as_bytes());
        let nanos = self
            .recorded_at
            .timestamp_nanos_opt()
            .ok_or(SmsError::Malformed("the time is out of range"))?;
        body.extend_from_slice(&nanos.to_be_bytes());
        body.extend_from_slice(&self.seq.get().to_be_bytes());
        body.push(kind_byte(self.via));
        let mut mac = key.mac();
        mac.update(&signed_bytes(&self.device, &self.visit, &body));
        // Constant time: a forger learns nothing from how long a refusal takes.
        mac.verify_truncated_left(&self.mac)
            .map_err(|_| SmsError::BadCode)?;
        Ok(EventEnvelope {
            id: self.id,
            device: self.device.clone(),
            seq: self.seq,
            visit: self.visit.clone(),
            recorded_at: self.recorded_at,
            event: VisitEvent::DuressRaised {
                staff,
                via: self.via,
            },
        })
    }
}
