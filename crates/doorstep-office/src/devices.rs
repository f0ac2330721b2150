//! The school's phones in the store: one-time enrolment codes, each phone's tokens (current, offered while
//! in use, replaced), revoking a phone, and what the office notices of a cloned one.
//!
//! - An admin issues a code for one member of staff ([`crate::SqliteStore::issue_enrolment_code`]): 60
//!   random bits, valid for [`ENROLMENT_CODE_MINUTES`], kept only as a hash, used once; a newer code for
//!   the same person withdraws the older. The phone redeems it
//!   ([`crate::SqliteStore::redeem_enrolment_code`]) for a new device id and a random token, of which the
//!   office keeps only the SHA-256.
//! - A token lasts [`CREDENTIAL_DAYS`]. Once it is [`RENEW_AFTER_DAYS`] old, each sync answer offers a
//!   fresh one ([`crate::SqliteStore::offer_renewal`]); the old one keeps working until the phone first
//!   uses the new, and is then `replaced`. At most [`MAX_OFFERED`] offers wait at once.
//! - A revoked phone is refused on its next request with `device_revoked`, which tells it to delete what
//!   it holds.
//! - Cloning (the same credential on two phones): a replaced token used again more than
//!   [`REPLACED_GRACE`] after its phone moved on, or a sequence number the device already used arriving
//!   with another event, marks the device "clone suspected" on the admin's page and in the device log.
//!   The office does not revoke it by itself: the genuine phone may be on a visit, and cutting it off
//!   would silence a colleague who may need help; an admin decides.
//!
//! Every code issued, phone enrolled, credential renewed, phone revoked and clone suspected is an entry in
//! the append-only device log (`device_log`). The rows are in `store/sqlite/phones.rs` and
//! `store/postgres/phones.rs`; the rules both stores apply are the functions here.

use chrono::{DateTime, TimeDelta, Utc};
use doorstep_core::ids::{DeviceId, SchoolId, StaffId};
use doorstep_core::protocol::{DeviceCredential, ENROLMENT_CODE_ALPHABET, ENROLMENT_CODE_LEN};

use crate::audit::{Action, NewEntry};
use crate::logins::new_secret;
use crate::store::{parse_id, stored_time, Device, StoreError};

/// A phone's row as [`crate::SqliteStore::school_devices`] reads it: its id, the staff id and name, when and
/// by whom it was enrolled, last seen, revoked (when, by whom), suspected cloned (when, why), and when its
/// current token expires.
pub(crate) type DeviceColumns = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// How long an enrolment code can be redeemed.
pub const ENROLMENT_CODE_MINUTES: i64 = 15;
/// How long a device token works.
pub const CREDENTIAL_DAYS: i64 = 30;
/// How old a token is when sync answers start offering a fresh one.
pub const RENEW_AFTER_DAYS: i64 = 7;
/// The most renewals offered and not yet used at once (each sync with the old token makes one, since
/// the office keeps no token it could send again).
pub const MAX_OFFERED: i64 = 3;
/// A replaced token used this soon after its replacement is a request that was already on its way (a
/// phone may race two attempts of one request); later, it is another phone holding a copy.
pub const REPLACED_GRACE: TimeDelta = TimeDelta::minutes(2);
/// `last_seen_at` is rewritten at most this often, so a phone's every sync is not a write.
const SEEN_GRANULARITY: TimeDelta = TimeDelta::minutes(1);

/// The actor of what the office does or notices by itself.
pub const OFFICE_ACTOR: &str = "office";

/// A code just issued. The code itself is shown once, to the admin, and never stored.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedCode {
    /// Canonical form (`7KQ4M2XD9RTB`); show it with `protocol::display_enrolment_code`.
    pub code: String,
    pub staff: StaffId,
    pub staff_name: String,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for IssuedCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCode")
            .field("code", &"<hidden>")
            .field("staff", &self.staff)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A phone just enrolled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolled {
    pub device: Device,
    pub credential: DeviceCredential,
    pub staff_name: String,
    pub school_name: String,
}

/// Why a code was not redeemed. The words say nothing about whose code it was: the caller is not yet
/// anyone.
#[derive(Debug, thiserror::Error)]
pub enum RedeemError {
    #[error("there is no such enrolment code; check it, or ask an admin for a new one")]
    Unknown,
    #[error("this enrolment code has already been used; ask an admin for a new one")]
    Used,
    #[error("this enrolment code has expired (codes last {ENROLMENT_CODE_MINUTES} minutes); ask an admin for a new one")]
    Expired,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the office made of a bearer token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenCheck {
    Accepted(Device),
    /// Not a token the office issued.
    Unknown,
    Revoked,
    Expired,
    /// Replaced by a newer token the phone has used; `clone` when it came too late to be a request already
    /// on its way.
    Replaced {
        clone: bool,
    },
}

/// One of the school's phones, for the admin's page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRow {
    pub id: DeviceId,
    pub staff: StaffId,
    pub staff_name: String,
    pub enrolled_at: DateTime<Utc>,
    pub enrolled_by: Option<String>,
    pub last_seen_at: Option<DateTime<Utc>>,
    pub revoked: Option<(DateTime<Utc>, String)>,
    /// When its current credential stops working (`None` once revoked or with none current).
    pub credential_expires_at: Option<DateTime<Utc>>,
    pub clone_suspected: Option<(DateTime<Utc>, String)>,
}

/// A code issued and not yet used, withdrawn or expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCode {
    pub staff: StaffId,
    pub staff_name: String,
    pub issued_by: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// What happened to a phone (or a code), as the device log keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceAction {
    CodeIssued,
    Enrolled,
    Renewed,
    Revoked,
    CloneSuspected,
}

impl DeviceAction {
    const ALL: [DeviceAction; 5] = [
        DeviceAction::CodeIssued,
        DeviceAction::Enrolled,
        DeviceAction::Renewed,
        DeviceAction::Revoked,
        DeviceAction::CloneSuspected,
    ];

    /// The stable name stored in the log.
    pub fn name(self) -> &'static str {
        match self {
            DeviceAction::CodeIssued => "code_issued",
            DeviceAction::Enrolled => "enrolled",
            DeviceAction::Renewed => "renewed",
            DeviceAction::Revoked => "revoked",
            DeviceAction::CloneSuspected => "clone_suspected",
        }
    }

    /// In words, after the actor.
    pub fn label(self) -> &'static str {
        match self {
            DeviceAction::CodeIssued => "issued an enrolment code",
            DeviceAction::Enrolled => "enrolled a phone",
            DeviceAction::Renewed => "renewed a phone's credential",
            DeviceAction::Revoked => "revoked a phone",
            DeviceAction::CloneSuspected => "suspects a cloned phone",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|action| action.name() == name)
    }
}

/// One entry of the device log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceLogEntry {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: DeviceAction,
    pub staff: StaffId,
    pub device: Option<DeviceId>,
    pub detail: String,
}

/// A new enrolment code: [`ENROLMENT_CODE_LEN`] characters of Crockford's base 32 from the system's random
/// source (each byte's low five bits: 256 is a multiple of 32, so every letter is equally likely).
pub(crate) fn new_code() -> String {
    use argon2::password_hash::rand_core::{OsRng, RngCore};
    let mut bytes = [0u8; ENROLMENT_CODE_LEN];
    OsRng.fill_bytes(&mut bytes);
    bytes
        .iter()
        .map(|b| char::from(ENROLMENT_CODE_ALPHABET[usize::from(b & 31)]))
        .collect()
}

/// A new device id: `phone-` and 64 random bits in hex.
pub(crate) fn new_device_id() -> Result<DeviceId, StoreError> {
    let secret = new_secret();
    DeviceId::parse(&format!("phone-{}", &secret[..16]))
        .map_err(|e| StoreError::Corrupt(format!("a made device id was refused: {e}")))
}

pub(crate) fn optional_time(text: Option<String>) -> Result<Option<DateTime<Utc>>, StoreError> {
    text.as_deref().map(stored_time).transpose()
}

/// An entry for the device log, before it has its number and time.
pub(crate) struct Entry<'a> {
    pub school: &'a SchoolId,
    pub actor: &'a str,
    pub action: DeviceAction,
    pub staff: &'a StaffId,
    pub device: Option<&'a DeviceId>,
    pub detail: &'a str,
}

impl Entry<'_> {
    /// Its entry in the audit log too: issuing a code, enrolling, revoking and a suspected clone (renewals
    /// only in the device log: they happen every week a phone is in use).
    pub(crate) fn audited(&self) -> Option<NewEntry> {
        let action = match self.action {
            DeviceAction::CodeIssued => Action::IssuedEnrolmentCode,
            DeviceAction::Enrolled => Action::EnrolledPhone,
            DeviceAction::Revoked => Action::RevokedPhone,
            DeviceAction::CloneSuspected => Action::SuspectedClonedPhone,
            DeviceAction::Renewed => return None,
        };
        let mut entry = NewEntry::new(self.school, self.staff, action)
            .record(self.device.map(DeviceId::as_str).unwrap_or_default())
            .detail(format!("for {}", self.staff));
        entry.actor = self.actor.to_owned();
        Some(entry)
    }
}

/// The device log's words for a code issued to `name`, valid until `expires_at`.
pub(crate) fn code_issued_detail(name: &str, expires_at: DateTime<Utc>) -> String {
    format!("for {name}, valid until {}", expires_at.format("%H:%M UTC"))
}

/// The device log's words for a phone enrolled with a code `issued_by` issued.
pub(crate) fn enrolled_detail(issued_by: &str) -> String {
    format!("with a code issued by {issued_by}")
}

/// The device log's words for a revoked phone.
pub(crate) const REVOKED_DETAIL: &str = "its next request is refused and it deletes what it holds";

/// Whether a code (used, withdrawn, expiring at `expires_at`) can be redeemed at `now`.
pub(crate) fn redeemable(
    used: bool,
    withdrawn: bool,
    expires_at: &str,
    now: DateTime<Utc>,
) -> Result<(), RedeemError> {
    if used {
        return Err(RedeemError::Used);
    }
    if withdrawn || stored_time(expires_at)? <= now {
        return Err(RedeemError::Expired);
    }
    Ok(())
}

/// Whether `device`'s current credential is old enough at `now` for a sync answer to offer a fresh one.
pub(crate) fn renewal_due(device: &Device, now: DateTime<Utc>) -> bool {
    now - device.credential_issued_at >= TimeDelta::days(RENEW_AFTER_DAYS)
}

/// A fresh credential made at `now`, to be stored as its hash.
pub(crate) fn new_credential(now: DateTime<Utc>) -> DeviceCredential {
    DeviceCredential {
        token: new_secret(),
        expires_at: now + TimeDelta::days(CREDENTIAL_DAYS),
    }
}

/// A phone for the admin's page from its stored columns; `noted` is a "last seen" noted and not yet
/// written, if the store keeps one.
pub(crate) fn device_row(
    columns: DeviceColumns,
    noted: impl FnOnce(&DeviceId) -> Option<DateTime<Utc>>,
) -> Result<DeviceRow, StoreError> {
    let (id, staff, name, enrolled, by, seen, revoked, revoked_by, clone_at, clone_why, expires) =
        columns;
    let revoked = optional_time(revoked)?.map(|at| (at, revoked_by.unwrap_or_default()));
    let id: DeviceId = parse_id(&id)?;
    let last_seen_at = optional_time(seen)?.max(noted(&id));
    Ok(DeviceRow {
        id,
        staff: parse_id(&staff)?,
        staff_name: name,
        enrolled_at: stored_time(&enrolled)?,
        enrolled_by: by,
        last_seen_at,
        credential_expires_at: if revoked.is_some() {
            None
        } else {
            optional_time(expires)?
        },
        revoked,
        clone_suspected: optional_time(clone_at)?.map(|at| (at, clone_why.unwrap_or_default())),
    })
}

/// The codes among stored ones (staff, name, issued by, issued at, expires at; neither used nor
/// withdrawn) that can still be redeemed at `now`.
pub(crate) fn pending_codes(
    rows: Vec<(String, String, String, String, String)>,
    now: DateTime<Utc>,
) -> Result<Vec<PendingCode>, StoreError> {
    let mut out = Vec::new();
    for (staff, name, by, issued, expires) in rows {
        let expires_at = stored_time(&expires)?;
        if expires_at > now {
            out.push(PendingCode {
                staff: parse_id(&staff)?,
                staff_name: name,
                issued_by: by,
                issued_at: stored_time(&issued)?,
                expires_at,
            });
        }
    }
    Ok(out)
}

/// A device log entry's stored columns (seq, at, actor, action, staff, device, detail).
pub(crate) type LogColumns = (i64, String, String, String, String, Option<String>, String);

/// A device log entry from its stored columns.
pub(crate) fn log_entry(columns: LogColumns) -> Result<DeviceLogEntry, StoreError> {
    let (seq, at, actor, action, staff, device, detail) = columns;
    Ok(DeviceLogEntry {
        seq,
        at: stored_time(&at)?,
        actor,
        action: DeviceAction::from_name(&action)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown device log action {action:?}")))?,
        staff: parse_id(&staff)?,
        device: device.as_deref().map(parse_id).transpose()?,
        detail,
    })
}

/// A device token's row, with its device's.
pub(crate) struct TokenRow {
    pub device_id: String,
    pub state: String,
    pub issued_at: String,
    pub expires_at: String,
    pub replaced_at: Option<String>,
    pub staff: String,
    pub school: String,
    pub revoked: Option<String>,
    pub seen: Option<String>,
}

/// What a token's row says at `now`, before anything is written.
pub(crate) enum Verdict {
    /// The answer, with nothing to write: unknown, revoked or expired.
    Settled(TokenCheck),
    /// A current token, accepted; `seen_due` when "last seen" is due to be written.
    Current { seen_due: bool },
    /// An offered token's first use: it becomes current, the phone's old one is replaced and the other
    /// offers dropped, and the renewal is logged; then accepted.
    FirstUse { seen_due: bool },
    /// A replaced token used again: within [`REPLACED_GRACE`] a request already on its way; later another
    /// phone holding a copy, with the reason the device is then suspected.
    Replaced { clone: Option<String> },
}

/// The device log's words for a renewal to a credential that lasts until `expires_at`.
pub(crate) fn renewed_detail(expires_at: &str) -> String {
    format!("valid until {expires_at}")
}

impl TokenRow {
    pub(crate) fn device(&self) -> Result<Device, StoreError> {
        Ok(Device {
            id: parse_id(&self.device_id)?,
            staff: parse_id(&self.staff)?,
            school: parse_id(&self.school)?,
            credential_issued_at: stored_time(&self.issued_at)?,
        })
    }

    /// What this token is worth at `now`: the rule both stores apply.
    pub(crate) fn verdict(&self, now: DateTime<Utc>) -> Result<Verdict, StoreError> {
        if self.revoked.is_some() {
            return Ok(Verdict::Settled(TokenCheck::Revoked));
        }
        if stored_time(&self.expires_at)? <= now {
            return Ok(Verdict::Settled(TokenCheck::Expired));
        }
        let seen_due = seen_stale(self.seen.clone(), now)?;
        Ok(match self.state.as_str() {
            "replaced" => {
                let replaced_at = optional_time(self.replaced_at.clone())?.unwrap_or(now);
                Verdict::Replaced {
                    clone: (now - replaced_at > REPLACED_GRACE).then(|| {
                        format!(
                            "a credential this phone replaced at {} was used again at {}",
                            replaced_at.format("%Y-%m-%d %H:%M UTC"),
                            now.format("%Y-%m-%d %H:%M UTC")
                        )
                    }),
                }
            }
            "offered" => Verdict::FirstUse { seen_due },
            _ => Verdict::Current { seen_due },
        })
    }
}

/// Whether "last seen" is due to be written again: never written, or [`SEEN_GRANULARITY`] old.
fn seen_stale(seen: Option<String>, now: DateTime<Utc>) -> Result<bool, StoreError> {
    Ok(match optional_time(seen)? {
        Some(seen) => now - seen >= SEEN_GRANULARITY,
        None => true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use doorstep_core::protocol::normalise_enrolment_code;

    #[test]
    fn codes_are_twelve_letters_of_the_alphabet_and_differ() {
        let codes: Vec<String> = (0..200).map(|_| new_code()).collect();
        for code in &codes {
            assert_eq!(code.len(), ENROLMENT_CODE_LEN);
            assert_eq!(
                normalise_enrolment_code(code).as_deref(),
                Some(code.as_str())
            );
        }
        let distinct: std::collections::HashSet<&String> = codes.iter().collect();
        assert_eq!(distinct.len(), codes.len());
    }

    #[test]
    fn device_ids_are_valid_and_differ() {
        let a = new_device_id().unwrap();
        let b = new_device_id().unwrap();
        assert!(a.as_str().starts_with("phone-"), "{a}");
        assert_ne!(a, b);
    }
}
