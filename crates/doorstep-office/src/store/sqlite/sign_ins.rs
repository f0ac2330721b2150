//! Office sign-ins on SQLite: the rows behind [`crate::store::sign_ins::SignIns`] (passwords and
//! sessions), hashed, verified and timed out by the functions in [`crate::logins`].

use chrono::{DateTime, Utc};
use doorstep_core::domain::StaffMember;
use doorstep_core::ids::{SchoolId, StaffId};
use rusqlite::{params, OptionalExtension};

use crate::logins::{
    ended_sessions, hash_password, live_until, new_secret, password_matches, OfficeUser, Session,
    SESSION_LENGTH,
};
use crate::notify::store::live_school_target_count_in;
use crate::people::Person;
use crate::store::sqlite::people::school_of;
use crate::store::{
    parse_id, school_and_policy, staff_member, token_hash, CachedSql, SqliteStore, StoreError,
};

impl SqliteStore {
    /// Gives a member of staff an office sign-in, or a new password; their open sessions end. Slow on
    /// purpose (argon2): call it off the async threads.
    pub fn set_office_password(
        &self,
        staff: &StaffId,
        password: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let hash = hash_password(password)?;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        if staff_member(&tx, staff)?.is_none() {
            return Err(StoreError::Invalid(format!("unknown staff {staff}")));
        }
        tx.execute_cached(
            "INSERT INTO office_logins (staff_id, password_hash, created_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (staff_id) DO UPDATE SET password_hash = excluded.password_hash",
            params![staff.as_str(), hash, now.to_rfc3339()],
        )?;
        // A new password must lock out whoever knew the old one.
        tx.execute_cached("DELETE FROM sessions WHERE staff_id = ?1", [staff.as_str()])?;
        tx.commit()?;
        Ok(())
    }

    /// Records in the audit log a refused sign-in under a real person's name (an unknown name belongs to
    /// no school's log; the throttle and the server log still see it).
    pub fn audit_refused_sign_in(
        &self,
        name: &str,
        why: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let Ok(staff) = name.trim().parse::<StaffId>() else {
            return Ok(());
        };
        if let Some(school) = self.school_of_staff(&staff)? {
            let entry =
                crate::audit::NewEntry::new(&school, &staff, crate::audit::Action::SignInRefused)
                    .detail(why);
            self.audit(&entry, now)?;
        }
        Ok(())
    }

    /// The office user whose sign-in name (staff id) and password these are, or `None` for any mismatch:
    /// the caller cannot tell an unknown name from a wrong password. Slow on purpose (argon2).
    pub fn check_office_password(
        &self,
        name: &str,
        password: &str,
    ) -> Result<Option<OfficeUser>, StoreError> {
        let staff: Option<StaffId> = name.trim().parse().ok();
        let stored: Option<String> = match &staff {
            Some(staff) => self
                .conn()
                .query_row_cached(
                    "SELECT password_hash FROM office_logins WHERE staff_id = ?1",
                    [staff.as_str()],
                    |row| row.get(0),
                )
                .optional()?,
            None => None,
        };
        // Verified outside the lock: argon2 takes a while and the sync API must not wait for it.
        let matches = password_matches(stored.as_deref(), password);
        match (staff, stored, matches) {
            (Some(staff), Some(_), true) => self.office_user(&staff),
            _ => Ok(None),
        }
    }

    fn office_user(&self, staff: &StaffId) -> Result<Option<OfficeUser>, StoreError> {
        let conn = self.conn();
        let Some(member) = staff_member(&conn, staff)? else {
            return Ok(None);
        };
        let Some(school) = school_of(&conn, Person::Staff(staff))? else {
            return Ok(None);
        };
        let (school, policy) = school_and_policy(&conn, &school)?;
        let notification_targets = live_school_target_count_in(&conn, &school.id)?;
        Ok(Some(OfficeUser {
            staff: member,
            school,
            policy,
            notification_targets,
        }))
    }

    /// Starts a session for `staff` under `token` (only its hash is kept) and returns it. Expired sessions
    /// are cleared out on the way.
    pub fn start_session(
        &self,
        staff: &StaffId,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Session, StoreError> {
        let csrf_token = new_secret();
        let expires_at = now + SESSION_LENGTH;
        {
            let conn = self.conn();
            let expired = expired_sessions(&conn, now)?;
            for hash in expired {
                conn.execute_cached("DELETE FROM sessions WHERE token_sha256 = ?1", [hash])?;
            }
            conn.execute_cached(
                "INSERT INTO sessions (token_sha256, staff_id, csrf_token, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    token_hash(token),
                    staff.as_str(),
                    csrf_token,
                    now.to_rfc3339(),
                    expires_at.to_rfc3339()
                ],
            )?;
        }
        let user = self
            .office_user(staff)?
            .ok_or_else(|| StoreError::Invalid(format!("unknown staff {staff}")))?;
        Ok(Session {
            user,
            csrf_token,
            expires_at,
        })
    }

    /// The live session this token belongs to, if any.
    pub fn session(&self, token: &str, now: DateTime<Utc>) -> Result<Option<Session>, StoreError> {
        let row: Option<(String, String, String)> = self
            .conn()
            .query_row_cached(
                "SELECT staff_id, csrf_token, expires_at FROM sessions WHERE token_sha256 = ?1",
                [token_hash(token)],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .optional()?;
        let Some((staff, csrf_token, expires_at)) = row else {
            return Ok(None);
        };
        let Some(expires_at) = live_until(&expires_at, now)? else {
            return Ok(None);
        };
        let staff: StaffId = parse_id(&staff)?;
        Ok(self.office_user(&staff)?.map(|user| Session {
            user,
            csrf_token,
            expires_at,
        }))
    }

    /// Ends the session this token belongs to (signing out). Ending an unknown session is not an error.
    pub fn end_session(&self, token: &str) -> Result<(), StoreError> {
        self.conn().execute_cached(
            "DELETE FROM sessions WHERE token_sha256 = ?1",
            [token_hash(token)],
        )?;
        Ok(())
    }

    /// Everyone at the school, by name: the runbook names the authoriser and the timeline names people.
    pub fn school_staff(&self, school: &SchoolId) -> Result<Vec<StaffMember>, StoreError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached("SELECT body FROM staff WHERE school_id = ?1 ORDER BY name")?;
        let bodies = stmt.query_map([school.as_str()], |row| row.get::<_, String>(0))?;
        let mut out = Vec::new();
        for body in bodies {
            out.push(serde_json::from_str(&body?)?);
        }
        Ok(out)
    }
}

fn expired_sessions(
    conn: &rusqlite::Connection,
    now: DateTime<Utc>,
) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT token_sha256, expires_at FROM sessions")?;
    let rows = stmt.query_map([], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
    })?;
    Ok(ended_sessions(rows.collect::<Result<Vec<_>, _>>()?, now))
}
