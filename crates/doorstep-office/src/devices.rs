//! The school's phones in the store: one-time enrolment codes, each phone's tokens (current, offered while
//! in use, replaced), revoking a phone, and what the office notices of a cloned one.
//!
//! - An admin issues a code for one member of staff ([`SqliteStore::issue_enrolment_code`]): 60 random
//!   bits, valid for [`ENROLMENT_CODE_MINUTES`], kept only as a hash, used once; a newer code for the same
//!   person withdraws the older. The phone redeems it ([`SqliteStore::redeem_enrolment_code`]) for a new
//!   device id and a random token, of which the office keeps only the SHA-256.
//! - A token lasts [`CREDENTIAL_DAYS`]. Once it is [`RENEW_AFTER_DAYS`] old, each sync answer offers a fresh
//!   one ([`SqliteStore::offer_renewal`]); the old one keeps working until the phone first uses the new, and
//!   is then `replaced`. At most [`MAX_OFFERED`] offers wait at once.
//! - A revoked phone is refused on its next request with `device_revoked`, which tells it to delete what
//!   it holds.
//! - Cloning (the same credential on two phones): a replaced token used again more than
//!   [`REPLACED_GRACE`] after its phone moved on, or a sequence number the device already used arriving
//!   with another event, marks the device "clone suspected" on the admin's page and in the device log.
//!   The office does not revoke it by itself: the genuine phone may be on a visit, and cutting it off
//!   would silence a colleague who may need help; an admin decides.
//!
//! Every code issued, phone enrolled, credential renewed, phone revoked and clone suspected is an entry in
//! the append-only device log (`device_log`).

use chrono::{DateTime, TimeDelta, Utc};
use doorstep_core::ids::{DeviceId, SchoolId, StaffId};
use doorstep_core::protocol::{
    normalise_enrolment_code, DeviceCredential, ENROLMENT_CODE_ALPHABET, ENROLMENT_CODE_LEN,
};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use crate::audit::{append, Action, NewEntry};
use crate::logins::new_secret;
use crate::people::{school_of, Person};
use crate::store::{
    parse_id, staff_member, stored_time, token_hash, tuples, CachedSql, Device, SqliteStore,
    StoreError,
};

/// A phone's row as [`SqliteStore::school_devices`] reads it: its id, the staff id and name, when and by
/// whom it was enrolled, last seen, revoked (when, by whom), suspected cloned (when, why), and when its
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

/// Appends an entry to the device log, and to the audit log what [`Entry::audited`] says. `conn` must be
/// inside a transaction that can write.
fn log(conn: &Connection, at: DateTime<Utc>, entry: Entry<'_>) -> Result<(), StoreError> {
    if let Some(audit_entry) = entry.audited() {
        append(conn, &audit_entry, at)?;
    }
    conn.execute_cached(
        "INSERT INTO device_log (at, school_id, actor, action, staff_id, device_id, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            at.to_rfc3339(),
            entry.school.as_str(),
            entry.actor,
            entry.action.name(),
            entry.staff.as_str(),
            entry.device.map(DeviceId::as_str),
            entry.detail
        ],
    )?;
    Ok(())
}

/// A fresh token for `device`, stored (as its hash) in `state`; returns the credential to hand over.
fn add_token(
    tx: &Transaction<'_>,
    device: &DeviceId,
    state: &str,
    now: DateTime<Utc>,
) -> Result<DeviceCredential, StoreError> {
    let credential = new_credential(now);
    tx.execute_cached(
        "INSERT INTO device_tokens (token_sha256, device_id, state, issued_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            token_hash(&credential.token),
            device.as_str(),
            state,
            now.to_rfc3339(),
            credential.expires_at.to_rfc3339()
        ],
    )?;
    Ok(credential)
}

/// Marks `device` clone suspected (the first reason stays) and logs it.
fn suspect_clone(
    conn: &Connection,
    device: &Device,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.execute_cached(
        "UPDATE devices SET clone_suspected_at = ?2, clone_reason = ?3
         WHERE id = ?1 AND clone_suspected_at IS NULL",
        params![device.id.as_str(), now.to_rfc3339(), reason],
    )?;
    log(
        conn,
        now,
        Entry {
            school: &device.school,
            actor: OFFICE_ACTOR,
            action: DeviceAction::CloneSuspected,
            staff: &device.staff,
            device: Some(&device.id),
            detail: reason,
        },
    )
}

impl SqliteStore {
    /// The school a member of staff belongs to, if they exist.
    pub fn school_of_staff(&self, staff: &StaffId) -> Result<Option<SchoolId>, StoreError> {
        school_of(&self.conn(), Person::Staff(staff))
    }

    /// A one-time enrolment code for `staff` of `school`, issued by `by`. An unused earlier code for the
    /// same person is withdrawn: only the newest works.
    pub fn issue_enrolment_code(
        &self,
        school: &SchoolId,
        staff: &StaffId,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<IssuedCode, StoreError> {
        let member = self
            .school_staff_member(school, staff)?
            .ok_or_else(|| StoreError::Invalid(format!("there is no member of staff “{staff}”")))?;
        let code = new_code();
        let expires_at = now + TimeDelta::minutes(ENROLMENT_CODE_MINUTES);
        self.in_transaction(|tx| {
            tx.execute_cached(
                "UPDATE enrolment_codes SET withdrawn_at = ?2
                 WHERE staff_id = ?1 AND used_at IS NULL AND withdrawn_at IS NULL",
                params![staff.as_str(), now.to_rfc3339()],
            )?;
            tx.execute_cached(
                "INSERT INTO enrolment_codes (code_sha256, school_id, staff_id, issued_by, issued_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    token_hash(&code),
                    school.as_str(),
                    staff.as_str(),
                    by,
                    now.to_rfc3339(),
                    expires_at.to_rfc3339()
                ],
            )?;
            log(
                tx,
                now,
                Entry {
                    school,
                    actor: by,
                    action: DeviceAction::CodeIssued,
                    staff,
                    device: None,
                    detail: &code_issued_detail(&member.name, expires_at),
                },
            )?;
            Ok(IssuedCode {
                code,
                staff: member.id,
                staff_name: member.name,
                expires_at,
            })
        })
    }

    /// Redeems an enrolment code (as typed: see `protocol::normalise_enrolment_code`): a new device for the
    /// code's member of staff, with its first token. The code is used up in the same transaction.
    pub fn redeem_enrolment_code(
        &self,
        typed: &str,
        now: DateTime<Utc>,
    ) -> Result<Enrolled, RedeemError> {
        let code = normalise_enrolment_code(typed).ok_or(RedeemError::Unknown)?;
        self.in_transaction(|tx| {
            let row: Option<(String, String, String, String, bool, bool)> = tx
                .query_row_cached(
                    "SELECT school_id, staff_id, issued_by, expires_at, used_at IS NOT NULL,
                            withdrawn_at IS NOT NULL
                     FROM enrolment_codes WHERE code_sha256 = ?1",
                    [token_hash(&code)],
                    |row| row.try_into(),
                )
                .optional()
                .map_err(StoreError::from)?;
            let Some((school, staff, issued_by, expires_at, used, withdrawn)) = row else {
                return Err(RedeemError::Unknown);
            };
            redeemable(used, withdrawn, &expires_at, now)?;
            let school: SchoolId = parse_id(&school)?;
            let staff: StaffId = parse_id(&staff)?;
            let member = staff_member(tx, &staff)?.ok_or_else(|| {
                StoreError::Corrupt(format!("enrolment code for missing staff {staff}"))
            })?;
            let (school_name, _) = crate::store::school_and_policy(tx, &school)?;
            let device = new_device_id()?;
            tx.execute_cached(
                "INSERT INTO devices (id, staff_id, enrolled_at, enrolled_by, last_seen_at)
                 VALUES (?1, ?2, ?3, ?4, ?3)",
                params![device.as_str(), staff.as_str(), now.to_rfc3339(), issued_by],
            )
            .map_err(StoreError::from)?;
            let credential = add_token(tx, &device, "current", now)?;
            tx.execute_cached(
                "UPDATE enrolment_codes SET used_at = ?2, device_id = ?3 WHERE code_sha256 = ?1",
                params![token_hash(&code), now.to_rfc3339(), device.as_str()],
            )
            .map_err(StoreError::from)?;
            log(
                tx,
                now,
                Entry {
                    school: &school,
                    actor: staff.as_str(),
                    action: DeviceAction::Enrolled,
                    staff: &staff,
                    device: Some(&device),
                    detail: &enrolled_detail(&issued_by),
                },
            )?;
            Ok(Enrolled {
                device: Device {
                    id: device,
                    staff,
                    school: school.clone(),
                    credential_issued_at: now,
                },
                credential,
                staff_name: member.name,
                school_name: school_name.name,
            })
        })
    }

    /// Enrols a phone for a member of staff with a token the caller made (the demo's silent phones, the
    /// benchmarks and tests); only a hash of it is kept. Phones enrol themselves with a code.
    pub fn enrol_device(
        &self,
        device: &DeviceId,
        staff: &StaffId,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.in_transaction(|tx| {
            tx.execute_cached(
                "INSERT INTO devices (id, staff_id, enrolled_at) VALUES (?1, ?2, ?3)",
                params![device.as_str(), staff.as_str(), now.to_rfc3339()],
            )?;
            tx.execute_cached(
                "INSERT INTO device_tokens (token_sha256, device_id, state, issued_at, expires_at)
                 VALUES (?1, ?2, 'current', ?3, ?4)",
                params![
                    token_hash(token),
                    device.as_str(),
                    now.to_rfc3339(),
                    (now + TimeDelta::days(CREDENTIAL_DAYS)).to_rfc3339()
                ],
            )?;
            Ok(())
        })
    }

    /// The enrolled phone this bearer token belongs to, if it is one the office accepts now (a current
    /// token, or an offered one: see [`SqliteStore::check_token`]).
    pub fn authenticate(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Device>, StoreError> {
        Ok(match self.check_token(token, now)? {
            TokenCheck::Accepted(device) => Some(device),
            _ => None,
        })
    }

    /// What a bearer token is worth at `now`. A phone's first use of an offered token makes it current
    /// (its old one is then replaced and the other offers dropped) and is logged as a renewal; a replaced
    /// token used again later than [`REPLACED_GRACE`] marks the device clone suspected. An accepted
    /// request notes when the phone was last seen.
    pub fn check_token(&self, token: &str, now: DateTime<Utc>) -> Result<TokenCheck, StoreError> {
        let hash = token_hash(token);
        // Most requests write nothing (a current token whose phone was seen within the last minute): they
        // are answered from a plain read on a read-only connection, without waiting for the writer. The
        // rest are read again inside a write transaction.
        let Some(row) = token_row(&self.reader(), &hash)? else {
            return Ok(TokenCheck::Unknown);
        };
        match row.verdict(now)? {
            Verdict::Settled(check) => return Ok(check),
            Verdict::Current { seen_due } => {
                // "Last seen" is written with the next commit, not in a transaction of its own here.
                let device = row.device()?;
                if seen_due {
                    self.seen.note(&device.id, now);
                }
                return Ok(TokenCheck::Accepted(device));
            }
            Verdict::FirstUse { .. } | Verdict::Replaced { .. } => {}
        }
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some(row) = token_row(&tx, &hash)? else {
            return Ok(TokenCheck::Unknown);
        };
        let device = row.device()?;
        let seen_due = match row.verdict(now)? {
            Verdict::Settled(check) => return Ok(check),
            Verdict::Replaced { clone: None } => return Ok(TokenCheck::Replaced { clone: false }),
            Verdict::Replaced {
                clone: Some(reason),
            } => {
                suspect_clone(&tx, &device, &reason, now)?;
                tx.commit()?;
                return Ok(TokenCheck::Replaced { clone: true });
            }
            Verdict::Current { seen_due } => seen_due,
            Verdict::FirstUse { seen_due } => {
                tx.prepare_cached(
                    "UPDATE device_tokens SET state = 'replaced', replaced_at = ?2
                     WHERE device_id = ?1 AND state = 'current'",
                )?
                .execute(params![device.id.as_str(), now.to_rfc3339()])?;
                tx.prepare_cached("DELETE FROM device_tokens WHERE device_id = ?1
                     AND ((state = 'offered' AND token_sha256 != ?2) OR (state = 'replaced' AND expires_at < ?3))")?.execute(
                    params![device.id.as_str(), hash, now.to_rfc3339()],
                )?;
                tx.prepare_cached(
                    "UPDATE device_tokens SET state = 'current' WHERE token_sha256 = ?1",
                )?
                .execute([&hash])?;
                log(
                    &tx,
                    now,
                    Entry {
                        school: &device.school,
                        actor: device.staff.as_str(),
                        action: DeviceAction::Renewed,
                        staff: &device.staff,
                        device: Some(&device.id),
                        detail: &renewed_detail(&row.expires_at),
                    },
                )?;
                seen_due
            }
        };
        if seen_due {
            tx.prepare_cached("UPDATE devices SET last_seen_at = ?2 WHERE id = ?1")?
                .execute(params![device.id.as_str(), now.to_rfc3339()])?;
        }
        tx.commit()?;
        Ok(TokenCheck::Accepted(device))
    }

    /// A fresh token for `device` when its current one is [`RENEW_AFTER_DAYS`] old, or `None`. The phone
    /// gets it in this sync's answer; the current token keeps working until the phone uses the new one.
    pub fn offer_renewal(
        &self,
        device: &Device,
        now: DateTime<Utc>,
    ) -> Result<Option<DeviceCredential>, StoreError> {
        if !renewal_due(device, now) {
            return Ok(None);
        }
        self.in_transaction(|tx| {
            tx.prepare_cached(
                "DELETE FROM device_tokens WHERE token_sha256 IN (
                     SELECT token_sha256 FROM device_tokens WHERE device_id = ?1 AND state = 'offered'
                     ORDER BY issued_at DESC LIMIT -1 OFFSET ?2)",
            )?
            .execute(params![device.id.as_str(), MAX_OFFERED - 1])?;
            let credential = add_token(tx, &device.id, "offered", now)?;
            Ok(Some(credential))
        })
    }

    /// Notes that `device` sent an event under a sequence number it had already used for another: two
    /// phones number events from one copy of its data.
    pub fn suspect_clone(
        &self,
        device: &Device,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.in_transaction(|tx| suspect_clone(tx, device, reason, now))
    }

    /// Revokes `device` of `school`: its next request is refused with `device_revoked`, and the phone then
    /// deletes what it holds. Offers waiting for it are dropped. `false` if the school has no such phone;
    /// [`StoreError::Invalid`] if it is already revoked.
    pub fn revoke_device(
        &self,
        school: &SchoolId,
        device: &DeviceId,
        by: &StaffId,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.in_transaction(|tx| {
            let row: Option<(String, Option<String>)> = tx
                .query_row_cached(
                    "SELECT d.staff_id, d.revoked_at FROM devices d JOIN staff s ON s.id = d.staff_id
                     WHERE d.id = ?1 AND s.school_id = ?2",
                    params![device.as_str(), school.as_str()],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?;
            let Some((staff, revoked)) = row else {
                return Ok(false);
            };
            if revoked.is_some() {
                return Err(StoreError::Invalid(format!(
                    "the phone “{device}” is already revoked"
                )));
            }
            tx.execute_cached(
                "UPDATE devices SET revoked_at = ?2, revoked_by = ?3 WHERE id = ?1",
                params![device.as_str(), now.to_rfc3339(), by.as_str()],
            )?;
            tx.execute_cached(
                "DELETE FROM device_tokens WHERE device_id = ?1 AND state = 'offered'",
                [device.as_str()],
            )?;
            log(
                tx,
                now,
                Entry {
                    school,
                    actor: by.as_str(),
                    action: DeviceAction::Revoked,
                    staff: &parse_id(&staff)?,
                    device: Some(device),
                    detail: REVOKED_DETAIL,
                },
            )?;
            Ok(true)
        })
    }

    /// The school's phones, newest first.
    pub fn school_devices(&self, school: &SchoolId) -> Result<Vec<DeviceRow>, StoreError> {
        let rows: Vec<DeviceColumns> = tuples(
            &self.conn(),
            concat!(
                school_devices_sql!(),
                "?1 ORDER BY d.enrolled_at DESC, d.id"
            ),
            [school.as_str()],
        )?;
        rows.into_iter()
            .map(|columns| {
                // A time noted at a sync and not yet written is the newer one.
                device_row(columns, |id| self.seen.noted(id))
            })
            .collect()
    }

    /// The school's codes that can still be redeemed at `now`.
    pub fn pending_enrolment_codes(
        &self,
        school: &SchoolId,
        now: DateTime<Utc>,
    ) -> Result<Vec<PendingCode>, StoreError> {
        let rows: Vec<(String, String, String, String, String)> = tuples(
            &self.conn(),
            "SELECT c.staff_id, s.name, c.issued_by, c.issued_at, c.expires_at
             FROM enrolment_codes c JOIN staff s ON s.id = c.staff_id
             WHERE c.school_id = ?1 AND c.used_at IS NULL AND c.withdrawn_at IS NULL
             ORDER BY c.issued_at DESC",
            [school.as_str()],
        )?;
        pending_codes(rows, now)
    }

    /// The school's device log, newest first, at most `limit` entries.
    pub fn device_log(
        &self,
        school: &SchoolId,
        limit: u32,
    ) -> Result<Vec<DeviceLogEntry>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, at, actor, action, staff_id, device_id, detail FROM device_log
             WHERE school_id = ?1 ORDER BY seq DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![school.as_str(), limit], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, Option<String>>(5)?,
                row.get::<_, String>(6)?,
            ))
        })?;
        rows.map(|row| log_entry(row?)).collect()
    }
}

/// The SQL both stores run for [`DeviceColumns`], a school's phones, ending where each puts its
/// placeholder for the school.
macro_rules! school_devices_sql {
    () => {
        "SELECT d.id, d.staff_id, s.name, d.enrolled_at, d.enrolled_by, d.last_seen_at, d.revoked_at,
                d.revoked_by, d.clone_suspected_at, d.clone_reason,
                (SELECT MAX(t.expires_at) FROM device_tokens t
                 WHERE t.device_id = d.id AND t.state = 'current')
         FROM devices d JOIN staff s ON s.id = d.staff_id
         WHERE s.school_id = "
    };
}
pub(crate) use school_devices_sql;

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

/// The SQL both stores run for a [`TokenRow`], ending where each puts its placeholder for the token's
/// hash.
macro_rules! token_row_sql {
    () => {
        "SELECT t.device_id, t.state, t.issued_at, t.expires_at, t.replaced_at, d.staff_id,
                s.school_id, d.revoked_at, d.last_seen_at
         FROM device_tokens t JOIN devices d ON d.id = t.device_id
              JOIN staff s ON s.id = d.staff_id
         WHERE t.token_sha256 = "
    };
}
pub(crate) use token_row_sql;

/// The token with this hash, and its device (every sync asks: the statement is cached).
fn token_row(conn: &Connection, hash: &str) -> Result<Option<TokenRow>, StoreError> {
    Ok(conn
        .prepare_cached(concat!(token_row_sql!(), "?1"))?
        .query_row([hash], |row| {
            Ok(TokenRow {
                device_id: row.get(0)?,
                state: row.get(1)?,
                issued_at: row.get(2)?,
                expires_at: row.get(3)?,
                replaced_at: row.get(4)?,
                staff: row.get(5)?,
                school: row.get(6)?,
                revoked: row.get(7)?,
                seen: row.get(8)?,
            })
        })
        .optional()?)
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
