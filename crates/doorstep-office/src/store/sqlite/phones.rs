//! The school's phones on SQLite: the rows behind [`crate::store::phones::Phones`] (enrolment codes,
//! devices, their tokens and the device log), decided by the functions in [`crate::devices`].

use chrono::{DateTime, TimeDelta, Utc};
use doorstep_core::ids::{DeviceId, SchoolId, StaffId};
use doorstep_core::protocol::{normalise_enrolment_code, DeviceCredential};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use crate::audit::append;
use crate::devices::{
    code_issued_detail, device_row, enrolled_detail, log_entry, new_code, new_credential,
    new_device_id, pending_codes, redeemable, renewal_due, renewed_detail, DeviceAction,
    DeviceColumns, DeviceLogEntry, DeviceRow, Enrolled, Entry, IssuedCode, PendingCode,
    RedeemError, TokenCheck, TokenRow, Verdict, CREDENTIAL_DAYS, ENROLMENT_CODE_MINUTES,
    MAX_OFFERED, OFFICE_ACTOR, REVOKED_DETAIL,
};
use crate::people::Person;
use crate::store::phones::{school_devices_sql, token_row_sql};
use crate::store::sqlite::people::school_of;
use crate::store::{
    parse_id, staff_member, token_hash, tuples, CachedSql, Device, SqliteStore, StoreError,
};

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
