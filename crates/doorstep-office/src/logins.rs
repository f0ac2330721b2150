//! Office sign-ins and sessions in the store: passwords kept only as argon2 hashes, session tokens only as
//! SHA-256 hashes, and the role check that decides who may use the live board.
//!
//! A session token is what the browser's cookie carries; a copy of the database therefore cannot be used to
//! sign in. Each session also has its own CSRF token, which every form of that session must send back.

use chrono::{DateTime, TimeDelta, Utc};
use doorstep_core::domain::{Role, School, StaffMember};
use doorstep_core::ids::{SchoolId, StaffId};
use doorstep_core::policy::Policy;
use doorstep_core::secret_hash;
use rusqlite::{params, OptionalExtension};

use crate::notify::store::live_school_target_count_in;
use crate::people::{school_of, Person};
use crate::store::{
    parse_id, school_and_policy, staff_member, stored_time, token_hash, CachedSql, SqliteStore,
    StoreError,
};

/// How long a sign-in lasts: a working day at the office desk, then sign in again.
pub const SESSION_LENGTH: TimeDelta = TimeDelta::hours(12);

/// The shortest password the office accepts.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// The longest: argon2 takes any length, but a bound keeps a hostile request cheap to refuse.
pub const MAX_PASSWORD_CHARS: usize = 200;

/// A member of staff with an office sign-in, with their school and its policy (which names the authoriser).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfficeUser {
    pub staff: StaffMember,
    pub school: School,
    pub policy: Policy,
    /// The school's live notification targets when the session was read: with none, the board and the
    /// admin pages say that nobody outside the board can be told.
    pub notification_targets: usize,
}

impl OfficeUser {
    /// Whether this person may watch the live board and act on alarms (acknowledge, "duress heard"): the
    /// office, the policy's authoriser (headteacher or safeguarding lead), the designated safeguarding lead
    /// and admins. Visiting staff use the phone app, not the board.
    pub fn may_use_board(&self) -> bool {
        self.may_read_records()
            || self.staff.roles.iter().any(|role| {
                matches!(role, Role::Office) || *role == self.policy.lone_visit_approver
            })
    }

    /// Need to know: whether this person may read what a visit found (write-ups, safeguarding concerns,
    /// incidents, cancellation notes, the pupil's needs and the family's circumstances, the exports and
    /// reports): the designated safeguarding lead (or the safeguarding lead), the policy's authoriser, the
    /// person the policy sends safeguarding concerns to, and admins. Reception sees the board (who, where,
    /// when, what state) and not these.
    pub fn may_read_records(&self) -> bool {
        self.staff.roles.iter().any(|role| {
            matches!(role, Role::Dsl | Role::SafeguardingLead | Role::Admin)
                || *role == self.policy.authoriser
                || (*role == self.policy.safeguarding_concerns_to && *role != Role::VisitingStaff)
        })
    }

    /// Who may read the audit log: admins and the designated safeguarding lead (or the safeguarding lead).
    pub fn may_read_audit_log(&self) -> bool {
        self.staff
            .roles
            .iter()
            .any(|role| matches!(role, Role::Dsl | Role::SafeguardingLead | Role::Admin))
    }
}

/// A signed-in browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user: OfficeUser,
    /// Every form posted in this session must carry this token.
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

/// 256 bits from the operating system's random source, as 64 hex characters (two UUIDv4s carry 244 random
/// bits; plenty, and uuid is already a dependency).
pub fn new_secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// An argon2 hash of a random password, made once, to verify against when the sign-in name is unknown: an
/// unknown name then takes as long to refuse as a wrong password, and the timing does not tell which names
/// exist.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password(&new_secret()).unwrap_or_default())
}

/// Whether `password` is the one `stored` (an argon2 hash) was made from; with nothing stored (an unknown
/// name) the decoy is checked instead, so the answer takes as long either way. Slow on purpose.
pub(crate) fn password_matches(stored: Option<&str>, password: &str) -> bool {
    match stored {
        Some(hash) => secret_hash::matches(hash, password),
        None => secret_hash::matches(decoy_hash(), password),
    }
}

/// When a session stored with `expires_at` ends, or `None` once it has ended at `now`.
pub(crate) fn live_until(
    expires_at: &str,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let expires_at = stored_time(expires_at)?;
    Ok((expires_at > now).then_some(expires_at))
}

/// The token hashes among stored sessions (hash, expiry) that have ended at `now`. An unreadable expiry
/// counts as ended: such a session can only be safely thrown away.
pub(crate) fn ended_sessions(
    sessions: impl IntoIterator<Item = (String, String)>,
    now: DateTime<Utc>,
) -> Vec<String> {
    sessions
        .into_iter()
        .filter(|(_, expires_at)| stored_time(expires_at).map_or(true, |at| at <= now))
        .map(|(hash, _)| hash)
        .collect()
}

pub(crate) fn hash_password(password: &str) -> Result<String, StoreError> {
    let chars = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&chars) {
        return Err(StoreError::Invalid(format!(
            "a password is {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"
        )));
    }
    secret_hash::hash(password)
        .map_err(|e| StoreError::Invalid(format!("the password could not be hashed: {e}")))
}

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
