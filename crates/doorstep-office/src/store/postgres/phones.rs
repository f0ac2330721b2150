//! The school's phones on PostgreSQL ([`Phones`]): the same rows as the SQLite store's, decided by the
//! same functions ([`crate::devices`]). A write about one phone holds its row (`FOR UPDATE`), and
//! redeeming holds the code's, so two offices answering the same phone at once, or two phones racing one
//! code, decide one after the other.

use chrono::{DateTime, TimeDelta, Utc};
use deadpool_postgres::GenericClient;
use doorstep_core::ids::{DeviceId, SchoolId, StaffId};
use doorstep_core::protocol::{normalise_enrolment_code, DeviceCredential};

use super::audit::append_in;
use super::people::staff_of_school;
use super::{columns, execute, query, query_opt, school_from, text, PgStore};
use crate::devices::{
    code_issued_detail, device_row, enrolled_detail, log_entry, new_code, new_credential,
    new_device_id, pending_codes, redeemable, renewal_due, renewed_detail, DeviceAction,
    DeviceLogEntry, DeviceRow, Enrolled, Entry, IssuedCode, PendingCode, RedeemError, TokenCheck,
    TokenRow, Verdict, CREDENTIAL_DAYS, MAX_OFFERED, OFFICE_ACTOR, REVOKED_DETAIL,
};
use crate::sms::{device_keys, DeviceKeys, SmsOutcome, SmsRecord};
use crate::store::phones::{school_devices_sql, token_row_sql, Phones};
use crate::store::{parse_id, stored_time, token_hash, Device, StoreError};

/// Appends an entry to the device log, and to the audit log what [`Entry::audited`] says, inside the
/// caller's transaction.
async fn log_in(
    tx: &impl GenericClient,
    at: DateTime<Utc>,
    entry: Entry<'_>,
) -> Result<(), StoreError> {
    if let Some(audit_entry) = entry.audited() {
        append_in(tx, &audit_entry, at).await?;
    }
    execute(
        tx,
        "INSERT INTO device_log (at, school_id, actor, action, staff_id, device_id, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &at.to_rfc3339(),
            &entry.school.as_str(),
            &entry.actor,
            &entry.action.name(),
            &entry.staff.as_str(),
            &entry.device.map(DeviceId::as_str),
            &entry.detail,
        ],
    )
    .await?;
    Ok(())
}

/// Stores a token (as its hash) for `device` in `state`.
async fn add_token(
    tx: &impl GenericClient,
    device: &DeviceId,
    token: &str,
    state: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    execute(
        tx,
        "INSERT INTO device_tokens (token_sha256, device_id, state, issued_at, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
        &[
            &token_hash(token),
            &device.as_str(),
            &state,
            &now.to_rfc3339(),
            &expires_at.to_rfc3339(),
        ],
    )
    .await?;
    Ok(())
}

/// A fresh credential for `device`, stored in `state`.
async fn new_token(
    tx: &impl GenericClient,
    device: &DeviceId,
    state: &str,
    now: DateTime<Utc>,
) -> Result<DeviceCredential, StoreError> {
    let credential = new_credential(now);
    add_token(
        tx,
        device,
        &credential.token,
        state,
        now,
        credential.expires_at,
    )
    .await?;
    Ok(credential)
}

async fn token_row(
    client: &impl GenericClient,
    hash: &str,
) -> Result<Option<TokenRow>, StoreError> {
    let Some(row) = query_opt(client, concat!(token_row_sql!(), "$1"), &[&hash]).await? else {
        return Ok(None);
    };
    Ok(Some(TokenRow {
        device_id: row.try_get(0)?,
        state: row.try_get(1)?,
        issued_at: row.try_get(2)?,
        expires_at: row.try_get(3)?,
        replaced_at: row.try_get(4)?,
        staff: row.try_get(5)?,
        school: row.try_get(6)?,
        revoked: row.try_get(7)?,
        seen: row.try_get(8)?,
    }))
}

/// Holds phone `device`'s row until the transaction ends, so two offices deciding about one phone
/// decide one after the other.
async fn lock_device(tx: &impl GenericClient, device: &str) -> Result<(), StoreError> {
    execute(
        tx,
        "SELECT 1 FROM devices WHERE id = $1 FOR UPDATE",
        &[&device],
    )
    .await?;
    Ok(())
}

/// Marks `device` clone suspected (the first reason stays) and logs it, inside the caller's transaction.
async fn suspect_clone_in(
    tx: &impl GenericClient,
    device: &Device,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    execute(
        tx,
        "UPDATE devices SET clone_suspected_at = $2, clone_reason = $3
         WHERE id = $1 AND clone_suspected_at IS NULL",
        &[&device.id.as_str(), &now.to_rfc3339(), &reason],
    )
    .await?;
    log_in(
        tx,
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
    .await
}

/// Redeems the canonical `code` inside the caller's transaction: the outer error is the database's, the
/// inner the refusal the phone is told.
async fn redeem_in(
    tx: &impl GenericClient,
    code: &str,
    now: DateTime<Utc>,
) -> Result<Result<Enrolled, RedeemError>, StoreError> {
    let Some(row) = query_opt(
        tx,
        "SELECT school_id, staff_id, issued_by, expires_at, used_at IS NOT NULL AS used,
                withdrawn_at IS NOT NULL AS withdrawn
         FROM enrolment_codes WHERE code_sha256 = $1 FOR UPDATE",
        &[&token_hash(code)],
    )
    .await?
    else {
        return Ok(Err(RedeemError::Unknown));
    };
    if let Err(refused) = redeemable(
        row.try_get("used")?,
        row.try_get("withdrawn")?,
        &text(&row, "expires_at")?,
        now,
    ) {
        return Ok(Err(refused));
    }
    let school: SchoolId = parse_id(&text(&row, "school_id")?)?;
    let staff: StaffId = parse_id(&text(&row, "staff_id")?)?;
    let issued_by = text(&row, "issued_by")?;
    let member = staff_of_school(tx, &school, &staff)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("enrolment code for missing staff {staff}")))?;
    let school_row = query_opt(
        tx,
        "SELECT id, name, office_phone, policy, time_zone FROM schools WHERE id = $1",
        &[&school.as_str()],
    )
    .await?
    .ok_or_else(|| StoreError::Corrupt(format!("enrolment code for missing school {school}")))?;
    let (school_record, _) = school_from(&school_row)?;
    let device = new_device_id()?;
    execute(
        tx,
        "INSERT INTO devices (id, staff_id, enrolled_at, enrolled_by, last_seen_at)
         VALUES ($1, $2, $3, $4, $3)",
        &[
            &device.as_str(),
            &staff.as_str(),
            &now.to_rfc3339(),
            &issued_by,
        ],
    )
    .await?;
    let credential = new_token(tx, &device, "current", now).await?;
    execute(
        tx,
        "UPDATE enrolment_codes SET used_at = $2, device_id = $3 WHERE code_sha256 = $1",
        &[&token_hash(code), &now.to_rfc3339(), &device.as_str()],
    )
    .await?;
    log_in(
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
    )
    .await?;
    Ok(Ok(Enrolled {
        device: Device {
            id: device,
            staff,
            school,
            credential_issued_at: now,
        },
        credential,
        staff_name: member.name,
        school_name: school_record.name,
    }))
}

/// Notes when a phone was last seen without waiting for the disk (`synchronous_commit` off for this one
/// transaction): the time only shows on the admin's Phones page, so a request, a duress sent after a
/// spell without signal among them, never waits for an fsync of it. A crash may lose the last fraction of
/// a second of it, as the SQLite store keeps it in memory for a while (`store/seen.rs`).
async fn note_seen(
    client: &mut deadpool_postgres::Object,
    device: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    let at = now.to_rfc3339();
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&device, &at];
    // Sent together: the setting first, then the update.
    let (set, update) = tokio::join!(
        tx.batch_execute("SET LOCAL synchronous_commit = off"),
        execute(
            &tx,
            "UPDATE devices SET last_seen_at = $2 WHERE id = $1",
            &params,
        ),
    );
    set?;
    update?;
    tx.commit().await?;
    Ok(())
}

impl Phones for PgStore {
    async fn device_for_texts(
        &self,
        device: &DeviceId,
        now: DateTime<Utc>,
    ) -> Result<Option<DeviceKeys>, StoreError> {
        let client = self.client().await?;
        let Some(row) = query_opt(
            &client,
            "SELECT d.staff_id, s.school_id FROM devices d
                 JOIN staff s ON s.id = d.staff_id WHERE d.id = $1 AND d.revoked_at IS NULL",
            &[&device.as_str()],
        )
        .await?
        else {
            return Ok(None);
        };
        let (staff, school) = (text(&row, "staff_id")?, text(&row, "school_id")?);
        let tokens = query(
            &client,
            "SELECT token_sha256, issued_at FROM device_tokens
                 WHERE device_id = $1 AND (expires_at COLLATE \"C\") > $2
                 ORDER BY issued_at COLLATE \"C\" DESC",
            &[&device.as_str(), &now.to_rfc3339()],
        )
        .await?
        .iter()
        .map(columns)
        .collect::<Result<Vec<(String, String)>, _>>()?;
        device_keys(device, (&staff, &school), tokens)
    }

    async fn record_sms(
        &self,
        now: DateTime<Utc>,
        from: &str,
        text: &str,
        outcome: SmsOutcome,
        detail: &str,
        ids: Option<(DeviceId, String)>,
    ) -> Result<(), StoreError> {
        let (device, event) = match ids {
            Some((device, event)) => (Some(device.to_string()), Some(event)),
            None => (None, None),
        };
        execute(
            &self.client().await?,
            "INSERT INTO sms_messages (received_at, from_number, body, outcome, detail, device_id, event_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[&now.to_rfc3339(), &from, &text, &outcome.as_str(), &detail, &device, &event],
        )
        .await?;
        Ok(())
    }

    async fn sms_messages(&self) -> Result<Vec<SmsRecord>, StoreError> {
        query(
            &self.client().await?,
            "SELECT received_at, from_number, body, outcome, detail, device_id, event_id
                 FROM sms_messages ORDER BY id",
            &[],
        )
        .await?
        .iter()
        .map(|row| {
            Ok(SmsRecord {
                received_at: stored_time(&text(row, "received_at")?)?,
                from: text(row, "from_number")?,
                text: text(row, "body")?,
                outcome: text(row, "outcome")?,
                detail: text(row, "detail")?,
                device: row.try_get("device_id")?,
                event_id: row.try_get("event_id")?,
            })
        })
        .collect()
    }

    async fn issue_enrolment_code(
        &self,
        school: &SchoolId,
        staff: &StaffId,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<IssuedCode, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let member = staff_of_school(&tx, school, staff)
            .await?
            .ok_or_else(|| StoreError::Invalid(format!("there is no member of staff “{staff}”")))?;
        let code = new_code();
        let expires_at = now + TimeDelta::minutes(crate::devices::ENROLMENT_CODE_MINUTES);
        execute(
            &tx,
            "UPDATE enrolment_codes SET withdrawn_at = $2
             WHERE staff_id = $1 AND used_at IS NULL AND withdrawn_at IS NULL",
            &[&staff.as_str(), &now.to_rfc3339()],
        )
        .await?;
        execute(
            &tx,
            "INSERT INTO enrolment_codes (code_sha256, school_id, staff_id, issued_by, issued_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &token_hash(&code),
                &school.as_str(),
                &staff.as_str(),
                &by,
                &now.to_rfc3339(),
                &expires_at.to_rfc3339(),
            ],
        )
        .await?;
        log_in(
            &tx,
            now,
            Entry {
                school,
                actor: by,
                action: DeviceAction::CodeIssued,
                staff,
                device: None,
                detail: &code_issued_detail(&member.name, expires_at),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(IssuedCode {
            code,
            staff: member.id,
            staff_name: member.name,
            expires_at,
        })
    }

    async fn redeem_enrolment_code(
        &self,
        typed: &str,
        now: DateTime<Utc>,
    ) -> Result<Enrolled, RedeemError> {
        let code = normalise_enrolment_code(typed).ok_or(RedeemError::Unknown)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(StoreError::from)?;
        let enrolled = redeem_in(&tx, &code, now).await??;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(enrolled)
    }

    async fn enrol_device(
        &self,
        device: &DeviceId,
        staff: &StaffId,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        execute(
            &tx,
            "INSERT INTO devices (id, staff_id, enrolled_at) VALUES ($1, $2, $3)",
            &[&device.as_str(), &staff.as_str(), &now.to_rfc3339()],
        )
        .await?;
        let expires_at = now + TimeDelta::days(CREDENTIAL_DAYS);
        add_token(&tx, device, token, "current", now, expires_at).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn check_token(&self, token: &str, now: DateTime<Utc>) -> Result<TokenCheck, StoreError> {
        let hash = token_hash(token);
        let mut client = self.client().await?;
        // Most requests write nothing (a current token whose phone was seen within the last minute): one
        // read answers them. The rest are read again holding the phone's row.
        let Some(row) = token_row(&client, &hash).await? else {
            return Ok(TokenCheck::Unknown);
        };
        match row.verdict(now)? {
            Verdict::Settled(check) => return Ok(check),
            Verdict::Current { seen_due: false } => return Ok(TokenCheck::Accepted(row.device()?)),
            Verdict::Current { seen_due: true } => {
                note_seen(&mut client, &row.device_id, now).await?;
                return Ok(TokenCheck::Accepted(row.device()?));
            }
            _ => {}
        }
        let tx = client.transaction().await?;
        lock_device(&tx, &row.device_id).await?;
        let Some(row) = token_row(&tx, &hash).await? else {
            return Ok(TokenCheck::Unknown);
        };
        let device = row.device()?;
        let seen_due = match row.verdict(now)? {
            Verdict::Settled(check) => return Ok(check),
            Verdict::Replaced { clone: None } => return Ok(TokenCheck::Replaced { clone: false }),
            Verdict::Replaced {
                clone: Some(reason),
            } => {
                suspect_clone_in(&tx, &device, &reason, now).await?;
                tx.commit().await?;
                return Ok(TokenCheck::Replaced { clone: true });
            }
            Verdict::Current { seen_due } => seen_due,
            Verdict::FirstUse { seen_due } => {
                let at = now.to_rfc3339();
                execute(
                    &tx,
                    "UPDATE device_tokens SET state = 'replaced', replaced_at = $2
                     WHERE device_id = $1 AND state = 'current'",
                    &[&device.id.as_str(), &at],
                )
                .await?;
                execute(
                    &tx,
                    "DELETE FROM device_tokens WHERE device_id = $1
                     AND ((state = 'offered' AND token_sha256 != $2)
                          OR (state = 'replaced' AND expires_at < $3))",
                    &[&device.id.as_str(), &hash, &at],
                )
                .await?;
                execute(
                    &tx,
                    "UPDATE device_tokens SET state = 'current' WHERE token_sha256 = $1",
                    &[&hash],
                )
                .await?;
                log_in(
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
                )
                .await?;
                seen_due
            }
        };
        if seen_due {
            execute(
                &tx,
                "UPDATE devices SET last_seen_at = $2 WHERE id = $1",
                &[&device.id.as_str(), &now.to_rfc3339()],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(TokenCheck::Accepted(device))
    }

    async fn offer_renewal(
        &self,
        device: &Device,
        now: DateTime<Utc>,
    ) -> Result<Option<DeviceCredential>, StoreError> {
        if !renewal_due(device, now) {
            return Ok(None);
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        lock_device(&tx, device.id.as_str()).await?;
        execute(
            &tx,
            "DELETE FROM device_tokens WHERE token_sha256 IN (
                 SELECT token_sha256 FROM device_tokens WHERE device_id = $1 AND state = 'offered'
                 ORDER BY issued_at DESC OFFSET $2)",
            &[&device.id.as_str(), &(MAX_OFFERED - 1)],
        )
        .await?;
        let credential = new_token(&tx, &device.id, "offered", now).await?;
        tx.commit().await?;
        Ok(Some(credential))
    }

    async fn suspect_clone(
        &self,
        device: &Device,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        suspect_clone_in(&tx, device, reason, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn revoke_device(
        &self,
        school: &SchoolId,
        device: &DeviceId,
        by: &StaffId,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let Some(row) = query_opt(
            &tx,
            "SELECT d.staff_id, d.revoked_at FROM devices d JOIN staff s ON s.id = d.staff_id
             WHERE d.id = $1 AND s.school_id = $2 FOR UPDATE OF d",
            &[&device.as_str(), &school.as_str()],
        )
        .await?
        else {
            return Ok(false);
        };
        if row.try_get::<_, Option<String>>("revoked_at")?.is_some() {
            return Err(StoreError::Invalid(format!(
                "the phone “{device}” is already revoked"
            )));
        }
        let staff: StaffId = parse_id(&text(&row, "staff_id")?)?;
        execute(
            &tx,
            "UPDATE devices SET revoked_at = $2, revoked_by = $3 WHERE id = $1",
            &[&device.as_str(), &now.to_rfc3339(), &by.as_str()],
        )
        .await?;
        execute(
            &tx,
            "DELETE FROM device_tokens WHERE device_id = $1 AND state = 'offered'",
            &[&device.as_str()],
        )
        .await?;
        log_in(
            &tx,
            now,
            Entry {
                school,
                actor: by.as_str(),
                action: DeviceAction::Revoked,
                staff: &staff,
                device: Some(device),
                detail: REVOKED_DETAIL,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn school_devices(&self, school: &SchoolId) -> Result<Vec<DeviceRow>, StoreError> {
        query(
            &self.client().await?,
            concat!(
                school_devices_sql!(),
                "$1 ORDER BY d.enrolled_at DESC, d.id"
            ),
            &[&school.as_str()],
        )
        .await?
        .iter()
        .map(|row| device_row(columns(row)?, |_| None))
        .collect()
    }

    async fn pending_enrolment_codes(
        &self,
        school: &SchoolId,
        now: DateTime<Utc>,
    ) -> Result<Vec<PendingCode>, StoreError> {
        let rows = query(
            &self.client().await?,
            "SELECT c.staff_id, s.name, c.issued_by, c.issued_at, c.expires_at
             FROM enrolment_codes c JOIN staff s ON s.id = c.staff_id
             WHERE c.school_id = $1 AND c.used_at IS NULL AND c.withdrawn_at IS NULL
             ORDER BY c.issued_at DESC",
            &[&school.as_str()],
        )
        .await?
        .iter()
        .map(columns)
        .collect::<Result<Vec<_>, StoreError>>()?;
        pending_codes(rows, now)
    }

    async fn device_log(
        &self,
        school: &SchoolId,
        limit: u32,
    ) -> Result<Vec<DeviceLogEntry>, StoreError> {
        query(
            &self.client().await?,
            "SELECT seq, at, actor, action, staff_id, device_id, detail FROM device_log
             WHERE school_id = $1 ORDER BY seq DESC LIMIT $2",
            &[&school.as_str(), &i64::from(limit)],
        )
        .await?
        .iter()
        .map(|row| log_entry(columns(row)?))
        .collect()
    }
}
