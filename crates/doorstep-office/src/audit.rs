//! The audit log: an append-only, hash-chained record of who opened a write-up or an export and of every
//! decision the office made (authorising, declining, withdrawing, calling off, rescheduling, changing a
//! briefing, closing alarms, changing the policy, noting an absence concern).
//!
//! Each entry keeps when, who, what, which visit or record, and the SHA-256 of the entry before it; its own
//! hash covers all of that ([`entry_hash`]). SQLite triggers refuse to update or delete an entry, and
//! [`crate::SqliteStore::verify_audit_log`] walks the chain and names the first entry that does not fit, so
//! an entry altered (or removed) by someone with the database file in hand shows where it happened. Removing
//! the newest entries leaves a shorter, intact chain: that is what a copy of the head hash kept elsewhere
//! would catch, and the log does not claim to. Later kinds of entry (sign-ins, enrolling and revoking
//! phones) are new [`Action`]s on the same chain.

use chrono::{DateTime, Utc};
use doorstep_core::ids::{SchoolId, StaffId, VisitId};
use doorstep_core::lifecycle::VisitEvent;
use sha2::{Digest, Sha256};

pub(crate) use crate::store::sqlite::audit::append;
use crate::store::StoreError;

/// The `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The actor of steps the office takes by itself.
pub const OFFICE_ACTOR: &str = "office";

/// What an entry records. Stored by [`Action::name`], which never changes once used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Opened a visit's full timeline (it carries cancellation and stand-down notes).
    OpenedTimeline,
    /// Opened a visit's write-up as text.
    OpenedWriteUp,
    /// Downloaded a visit's write-up as PDF.
    ExportedWriteUpPdf,
    /// Downloaded the write-ups of a date range as CSV.
    ExportedWriteUpsCsv,
    /// Opened the monthly report.
    OpenedMonthlyReport,
    // ---- the office's decisions on a visit (one for each office-only lifecycle event)
    Authorised,
    Declined,
    AuthorisationWithdrawn,
    CalledOff,
    Rescheduled,
    BriefingUpdated,
    AlertsClosed,
    // ---- other decisions
    /// An admin changed the school's policy (or applied a preset).
    ChangedPolicy,
    /// A concern about an absent pupil was noted (their visit is due on the policy's concern day).
    NotedAbsenceConcern,
    /// The concern was taken off.
    ClearedAbsenceConcern,
    // ---- signing in, and the alarms
    /// Signed in to the office board.
    SignedIn,
    /// A sign-in with this person's name was refused (wrong password, or throttled).
    SignInRefused,
    /// Acknowledged an alarm: said they are handling it.
    AcknowledgedAlarm,
    /// Closed an alarm with its outcome.
    ClosedAlarm,
    /// Pressed "Duress heard" for a visit.
    HeardDuress,
    // ---- the school's phones (each also in the device log)
    /// Issued a one-time code that enrols a phone for a member of staff.
    IssuedEnrolmentCode,
    /// A phone was enrolled with a code (the actor is the member of staff it belongs to).
    EnrolledPhone,
    /// Revoked a phone.
    RevokedPhone,
    /// The office noticed signs of a copied phone (the actor is the office).
    SuspectedClonedPhone,
}

impl Action {
    pub const ALL: [Action; 24] = [
        Action::OpenedTimeline,
        Action::OpenedWriteUp,
        Action::ExportedWriteUpPdf,
        Action::ExportedWriteUpsCsv,
        Action::OpenedMonthlyReport,
        Action::Authorised,
        Action::Declined,
        Action::AuthorisationWithdrawn,
        Action::CalledOff,
        Action::Rescheduled,
        Action::BriefingUpdated,
        Action::AlertsClosed,
        Action::ChangedPolicy,
        Action::NotedAbsenceConcern,
        Action::ClearedAbsenceConcern,
        Action::SignedIn,
        Action::SignInRefused,
        Action::AcknowledgedAlarm,
        Action::ClosedAlarm,
        Action::HeardDuress,
        Action::IssuedEnrolmentCode,
        Action::EnrolledPhone,
        Action::RevokedPhone,
        Action::SuspectedClonedPhone,
    ];

    /// The stable name stored in the log.
    pub fn name(self) -> &'static str {
        match self {
            Action::OpenedTimeline => "opened_timeline",
            Action::OpenedWriteUp => "opened_write_up",
            Action::ExportedWriteUpPdf => "exported_write_up_pdf",
            Action::ExportedWriteUpsCsv => "exported_write_ups_csv",
            Action::OpenedMonthlyReport => "opened_monthly_report",
            Action::Authorised => "authorised",
            Action::Declined => "declined",
            Action::AuthorisationWithdrawn => "authorisation_withdrawn",
            Action::CalledOff => "called_off",
            Action::Rescheduled => "rescheduled",
            Action::BriefingUpdated => "briefing_updated",
            Action::AlertsClosed => "alerts_closed",
            Action::ChangedPolicy => "changed_policy",
            Action::NotedAbsenceConcern => "noted_absence_concern",
            Action::ClearedAbsenceConcern => "cleared_absence_concern",
            Action::SignedIn => "signed_in",
            Action::SignInRefused => "sign_in_refused",
            Action::AcknowledgedAlarm => "acknowledged_alarm",
            Action::ClosedAlarm => "closed_alarm",
            Action::HeardDuress => "heard_duress",
            Action::IssuedEnrolmentCode => "issued_enrolment_code",
            Action::EnrolledPhone => "enrolled_phone",
            Action::RevokedPhone => "revoked_phone",
            Action::SuspectedClonedPhone => "suspected_cloned_phone",
        }
    }

    /// In words, after the person's name.
    pub fn label(self) -> &'static str {
        match self {
            Action::OpenedTimeline => "opened the visit's full timeline",
            Action::OpenedWriteUp => "opened the write-up",
            Action::ExportedWriteUpPdf => "downloaded the write-up as PDF",
            Action::ExportedWriteUpsCsv => "downloaded write-ups as CSV",
            Action::OpenedMonthlyReport => "opened the monthly report",
            Action::Authorised => "authorised the visit",
            Action::Declined => "declined the visit",
            Action::AuthorisationWithdrawn => "withdrew the authorisation",
            Action::CalledOff => "called the visit off",
            Action::Rescheduled => "rescheduled the visit",
            Action::BriefingUpdated => "updated the risk assessment and briefing",
            Action::AlertsClosed => "closed the visit's alerts",
            Action::ChangedPolicy => "changed the school's policy",
            Action::NotedAbsenceConcern => "noted a concern about an absent pupil",
            Action::ClearedAbsenceConcern => "took off the concern about an absent pupil",
            Action::SignedIn => "signed in to the office board",
            Action::SignInRefused => "was refused a sign-in",
            Action::AcknowledgedAlarm => "acknowledged an alarm",
            Action::ClosedAlarm => "closed an alarm",
            Action::HeardDuress => "pressed \"Duress heard\"",
            Action::IssuedEnrolmentCode => "issued a code to enrol a phone",
            Action::EnrolledPhone => "enrolled a phone",
            Action::RevokedPhone => "revoked a phone",
            Action::SuspectedClonedPhone => "noticed signs of a copied phone",
        }
    }

    pub fn from_name(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|action| action.name() == name)
    }

    /// The entry an office decision (an office-only lifecycle event) is recorded under; `None` for the
    /// events phones send.
    pub fn for_office_event(event: &VisitEvent) -> Option<Action> {
        Some(match event {
            VisitEvent::Authorised { .. } => Action::Authorised,
            VisitEvent::Declined { .. } => Action::Declined,
            VisitEvent::AuthorisationWithdrawn { .. } => Action::AuthorisationWithdrawn,
            VisitEvent::CalledOff { .. } => Action::CalledOff,
            VisitEvent::Rescheduled { .. } => Action::Rescheduled,
            VisitEvent::BriefingUpdated { .. } => Action::BriefingUpdated,
            VisitEvent::AlertsClosed { .. } => Action::AlertsClosed,
            _ => return None,
        })
    }
}

/// An entry to append: everything but its number, time and hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    pub school: Option<SchoolId>,
    /// A staff id, or [`OFFICE_ACTOR`].
    pub actor: String,
    pub action: Action,
    pub visit: Option<VisitId>,
    pub record: String,
    pub detail: String,
}

impl NewEntry {
    /// `actor` did `action` in `school`; add the visit, record and detail with the builders below.
    pub fn new(school: &SchoolId, actor: &StaffId, action: Action) -> Self {
        Self {
            school: Some(school.clone()),
            actor: actor.as_str().to_owned(),
            action,
            visit: None,
            record: String::new(),
            detail: String::new(),
        }
    }

    pub fn visit(mut self, visit: &VisitId) -> Self {
        self.visit = Some(visit.clone());
        self
    }

    pub fn record(mut self, record: impl Into<String>) -> Self {
        self.record = record.into();
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }
}

/// One entry of the log as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub school: Option<String>,
    pub actor: String,
    /// The stored name; [`Entry::action`] reads it.
    pub action_name: String,
    pub visit: Option<String>,
    pub record: String,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

impl Entry {
    /// The action, when this office knows it (a newer office may have written others).
    pub fn action(&self) -> Option<Action> {
        Action::from_name(&self.action_name)
    }

    /// The hash this entry's fields give ([`entry_hash`]): equal to `hash` unless the entry was changed
    /// after it was written.
    pub fn computed_hash(&self) -> String {
        entry_hash(&Fields {
            seq: self.seq,
            at: &stamp(self.at),
            school: self.school.as_deref().unwrap_or(""),
            actor: &self.actor,
            action: &self.action_name,
            visit: self.visit.as_deref().unwrap_or(""),
            record: &self.record,
            detail: &self.detail,
            prev_hash: &self.prev_hash,
        })
    }

    /// What was done, in words.
    pub fn what(&self) -> String {
        self.action().map_or_else(
            || self.action_name.replace('_', " "),
            |a| a.label().to_owned(),
        )
    }
}

/// The stored texts one entry's hash covers, in order.
struct Fields<'a> {
    seq: i64,
    at: &'a str,
    school: &'a str,
    actor: &'a str,
    action: &'a str,
    visit: &'a str,
    record: &'a str,
    detail: &'a str,
    prev_hash: &'a str,
}

/// SHA-256 (lower-case hex) over the entry's stored texts, each written as `<byte length>:<bytes>;` so
/// that no two different entries can be written the same way.
fn entry_hash(fields: &Fields<'_>) -> String {
    let mut hasher = Sha256::new();
    let seq = fields.seq.to_string();
    for part in [
        seq.as_str(),
        fields.at,
        fields.school,
        fields.actor,
        fields.action,
        fields.visit,
        fields.record,
        fields.detail,
        fields.prev_hash,
    ] {
        hasher.update(part.len().to_string().as_bytes());
        hasher.update(b":");
        hasher.update(part.as_bytes());
        hasher.update(b";");
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The entry `entry` becomes when appended at `at` after the log's last entry (its number and hash, if the
/// log has any): its number, the hash it follows, and its own. Both stores append what this returns.
pub(crate) fn next_entry(
    last: Option<(i64, String)>,
    entry: &NewEntry,
    at: DateTime<Utc>,
) -> Entry {
    let (seq, prev_hash) = match last {
        Some((seq, hash)) => (seq + 1, hash),
        None => (1, GENESIS.to_owned()),
    };
    let school = entry.school.as_ref().map(|s| s.as_str().to_owned());
    let visit = entry.visit.as_ref().map(|v| v.as_str().to_owned());
    let hash = entry_hash(&Fields {
        seq,
        at: &stamp(at),
        school: school.as_deref().unwrap_or(""),
        actor: &entry.actor,
        action: entry.action.name(),
        visit: visit.as_deref().unwrap_or(""),
        record: &entry.record,
        detail: &entry.detail,
        prev_hash: &prev_hash,
    });
    Entry {
        seq,
        at,
        school,
        actor: entry.actor.clone(),
        action_name: entry.action.name().to_owned(),
        visit,
        record: entry.record.clone(),
        detail: entry.detail.clone(),
        prev_hash,
        hash,
    }
}

/// Times are stored to the nanosecond, always in the same shape, so the stored text is the hashed text.
pub(crate) fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// What [`crate::SqliteStore::verify_audit_log`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainCheck {
    /// How many entries the log holds.
    pub entries: i64,
    /// The first entry that does not fit the chain, if any.
    pub broken: Option<BrokenLink>,
}

impl ChainCheck {
    pub fn is_intact(&self) -> bool {
        self.broken.is_none()
    }
}

/// The first place the chain does not hold, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenLink {
    /// The entry's number (for a missing entry, the number that is missing).
    pub seq: i64,
    pub why: String,
}

impl std::fmt::Display for BrokenLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "entry {}: {}", self.seq, self.why)
    }
}

/// An entry's columns as stored, in [`COLUMNS`] order.
pub(crate) type StoredRow = (
    i64,
    String,
    Option<String>,
    String,
    String,
    Option<String>,
    String,
    String,
    String,
    String,
);

pub(crate) const COLUMNS: &str =
    "seq, at, school_id, actor, action, visit_id, record, detail, prev_hash, hash";

pub(crate) fn entry_of(row: StoredRow) -> Result<Entry, StoreError> {
    let (seq, at, school, actor, action_name, visit, record, detail, prev_hash, hash) = row;
    let at = DateTime::parse_from_rfc3339(&at)
        .map_err(|e| StoreError::Corrupt(format!("audit entry {seq}: bad time {at:?}: {e}")))?
        .with_timezone(&Utc);
    Ok(Entry {
        seq,
        at,
        school,
        actor,
        action_name,
        visit,
        record,
        detail,
        prev_hash,
        hash,
    })
}

/// Whether `rows` (the whole log, by number) hold together, and the first place they do not: a pure
/// function, so both stores check their chain alike.
pub(crate) fn walk(rows: impl IntoIterator<Item = StoredRow>) -> ChainCheck {
    let mut expected_seq = 1;
    let mut prev = GENESIS.to_owned();
    let mut entries = 0;
    let mut broken = None;
    for row in rows {
        let (seq, at, school, actor, action, visit, record, detail, prev_hash, hash) = row;
        entries += 1;
        if broken.is_some() {
            continue;
        }
        let why = if seq != expected_seq {
            Some((
                expected_seq,
                format!(
                    "missing: the log goes from entry {} to {seq}",
                    expected_seq - 1
                ),
            ))
        } else if prev_hash != prev {
            Some((
                seq,
                "does not follow the entry before it: its record of that entry's hash differs (the entry before was changed, or this one was)".to_owned(),
            ))
        } else {
            let recomputed = entry_hash(&Fields {
                seq,
                at: &at,
                school: school.as_deref().unwrap_or(""),
                actor: &actor,
                action: &action,
                visit: visit.as_deref().unwrap_or(""),
                record: &record,
                detail: &detail,
                prev_hash: &prev_hash,
            });
            (recomputed != hash).then(|| {
                (
                    seq,
                    "its contents were changed after it was written (they no longer match its hash)"
                        .to_owned(),
                )
            })
        };
        match why {
            Some((seq, why)) => broken = Some(BrokenLink { seq, why }),
            None => {
                expected_seq = seq + 1;
                prev = hash;
            }
        }
    }
    ChainCheck { entries, broken }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_has_its_own_stable_name() {
        for (i, action) in Action::ALL.iter().enumerate() {
            assert_eq!(Action::from_name(action.name()), Some(*action));
            assert!(
                !Action::ALL[..i].iter().any(|a| a.name() == action.name()),
                "{action:?}"
            );
        }
    }

    #[test]
    fn the_hash_covers_every_field_and_cannot_be_shifted_between_fields() {
        let base = Fields {
            seq: 1,
            at: "2026-11-24T10:00:00.000000000Z",
            school: "s",
            actor: "head",
            action: "declined",
            visit: "visit-ava",
            record: "",
            detail: "ab",
            prev_hash: GENESIS,
        };
        let hash = entry_hash(&base);
        assert_eq!(hash.len(), 64);
        let moved = Fields {
            record: "a",
            detail: "b",
            ..base
        };
        assert_ne!(entry_hash(&moved), hash, "text moved between fields");
        let renumbered = Fields { seq: 2, ..base };
        assert_ne!(entry_hash(&renumbered), hash);
    }
}
