//! Office sign-ins on PostgreSQL ([`SignIns`]): the same rows as the SQLite store's, hashed, verified and
//! timed out by the same functions ([`crate::logins`]). Argon2 runs on a blocking thread
//! ([`argon2_work`]), holding neither an async thread nor a pooled connection.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use doorstep_core::domain::StaffMember;
use doorstep_core::ids::{SchoolId, StaffId};

use super::{execute, query, query_one, query_opt, school_from, text, PgStore};
use crate::audit::{Action, NewEntry};
use crate::logins::{
    ended_sessions, hash_password, live_until, new_secret, password_matches, OfficeUser, Session,
    SESSION_LENGTH,
};
use crate::store::audit_trail::AuditTrail;
use crate::store::sign_ins::SignIns;
use crate::store::{parse_id, token_hash, StoreError};

/// Runs argon2's deliberately slow hash on a blocking thread of the runtime the caller is on (the
/// office's, or the store's own when a request's blocking work waits on it).
async fn argon2_work<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StoreError::Pool(format!("the password check stopped: {e}")))
}

/// A member of staff and their school's id, if they exist.
async fn staff_and_school(
    client: &impl GenericClient,
    staff: &StaffId,
) -> Result<Option<(StaffMember, SchoolId)>, StoreError> {
    match query_opt(
        client,
        "SELECT body, school_id FROM staff WHERE id = $1",
        &[&staff.as_str()],
    )
    .await?
    {
        Some(row) => Ok(Some((
            serde_json::from_str(&text(&row, "body")?)?,
            parse_id(&text(&row, "school_id")?)?,
        ))),
        None => Ok(None),
    }
}

/// The signed-in person: the member of staff, their school and its policy, and how many of the school's
/// own notification targets are live.
async fn office_user(
    client: &impl GenericClient,
    staff: &StaffId,
) -> Result<Option<OfficeUser>, StoreError> {
    let Some((member, school)) = staff_and_school(client, staff).await? else {
        return Ok(None);
    };
    let row = query_one(
        client,
        "SELECT s.id, s.name, s.office_phone, s.policy, s.time_zone,
                (SELECT COUNT(*) FROM notification_targets t
                  WHERE t.school_id = s.id AND t.visit_id IS NULL AND t.removed_at IS NULL) AS targets
             FROM schools s WHERE s.id = $1",
        &[&school.as_str()],
    )
    .await?;
    let (school, policy) = school_from(&row)?;
    let targets: i64 = row.try_get("targets")?;
    Ok(Some(OfficeUser {
        staff: member,
        school,
        policy,
        notification_targets: usize::try_from(targets).unwrap_or(0),
    }))
}

impl SignIns for PgStore {
    async fn set_office_password(
        &self,
        staff: &StaffId,
        password: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let password = password.to_owned();
        let hash = argon2_work(move || hash_password(&password)).await??;
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        if staff_and_school(&tx, staff).await?.is_none() {
            return Err(StoreError::Invalid(format!("unknown staff {staff}")));
        }
        execute(
            &tx,
            "INSERT INTO office_logins (staff_id, password_hash, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (staff_id) DO UPDATE SET password_hash = excluded.password_hash",
            &[&staff.as_str(), &hash, &now.to_rfc3339()],
        )
        .await?;
        // A new password must lock out whoever knew the old one.
        execute(
            &tx,
            "DELETE FROM sessions WHERE staff_id = $1",
            &[&staff.as_str()],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn check_office_password(
        &self,
        name: &str,
        password: &str,
    ) -> Result<Option<OfficeUser>, StoreError> {
        let staff: Option<StaffId> = name.trim().parse().ok();
        let stored: Option<String> = match &staff {
            Some(staff) => match query_opt(
                &self.client().await?,
                "SELECT password_hash FROM office_logins WHERE staff_id = $1",
                &[&staff.as_str()],
            )
            .await?
            {
                Some(row) => Some(text(&row, "password_hash")?),
                None => None,
            },
            None => None,
        };
        // Verified holding no connection: argon2 takes a while, and the pool serves the phones too.
        let (hash, password) = (stored.clone(), password.to_owned());
        let matches = argon2_work(move || password_matches(hash.as_deref(), &password)).await?;
        match (staff, stored, matches) {
            (Some(staff), Some(_), true) => office_user(&self.client().await?, &staff).await,
            _ => Ok(None),
        }
    }

    async fn audit_refused_sign_in(
        &self,
        name: &str,
        why: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let Ok(staff) = name.trim().parse::<StaffId>() else {
            return Ok(());
        };
        let found = staff_and_school(&self.client().await?, &staff).await?;
        if let Some((_, school)) = found {
            let entry = NewEntry::new(&school, &staff, Action::SignInRefused).detail(why);
            self.audit(&entry, now).await?;
        }
        Ok(())
    }

    async fn start_session(
        &self,
        staff: &StaffId,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Session, StoreError> {
        let csrf_token = new_secret();
        let expires_at = now + SESSION_LENGTH;
        let client = self.client().await?;
        let stored = query(
            &client,
            "SELECT token_sha256, expires_at FROM sessions",
            &[],
        )
        .await?
        .iter()
        .map(|row| Ok((text(row, "token_sha256")?, text(row, "expires_at")?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
        let ended = ended_sessions(stored, now);
        if !ended.is_empty() {
            execute(
                &client,
                "DELETE FROM sessions WHERE token_sha256 = ANY($1)",
                &[&ended],
            )
            .await?;
        }
        let user = office_user(&client, staff)
            .await?
            .ok_or_else(|| StoreError::Invalid(format!("unknown staff {staff}")))?;
        execute(
            &client,
            "INSERT INTO sessions (token_sha256, staff_id, csrf_token, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &token_hash(token),
                &staff.as_str(),
                &csrf_token,
                &now.to_rfc3339(),
                &expires_at.to_rfc3339(),
            ],
        )
        .await?;
        Ok(Session {
            user,
            csrf_token,
            expires_at,
        })
    }

    async fn session(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Session>, StoreError> {
        let client = self.client().await?;
        let Some(row) = query_opt(
            &client,
            "SELECT staff_id, csrf_token, expires_at FROM sessions WHERE token_sha256 = $1",
            &[&token_hash(token)],
        )
        .await?
        else {
            return Ok(None);
        };
        let Some(expires_at) = live_until(&text(&row, "expires_at")?, now)? else {
            return Ok(None);
        };
        let staff: StaffId = parse_id(&text(&row, "staff_id")?)?;
        let csrf_token = text(&row, "csrf_token")?;
        Ok(office_user(&client, &staff).await?.map(|user| Session {
            user,
            csrf_token,
            expires_at,
        }))
    }

    async fn end_session(&self, token: &str) -> Result<(), StoreError> {
        execute(
            &self.client().await?,
            "DELETE FROM sessions WHERE token_sha256 = $1",
            &[&token_hash(token)],
        )
        .await?;
        Ok(())
    }
}
