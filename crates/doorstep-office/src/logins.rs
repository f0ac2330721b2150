//! Office sign-ins and sessions: passwords kept only as argon2 hashes, session tokens only as SHA-256
//! hashes, and the role check that decides who may use the live board. The rows are in
//! `store/sqlite/sign_ins.rs` and `store/postgres/sign_ins.rs`.
//!
//! A session token is what the browser's cookie carries; a copy of the database therefore cannot be used to
//! sign in. Each session also has its own CSRF token, which every form of that session must send back.

use chrono::{DateTime, TimeDelta, Utc};
use doorstep_core::domain::{Role, School, StaffMember};
use doorstep_core::policy::Policy;
use doorstep_core::secret_hash;

use crate::store::{stored_time, StoreError};

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
