//! The office runs the visit: its decisions after a visit was requested (decline, withdraw an
//! authorisation, call off, reschedule, update the risk assessment and briefing), each kept as a new
//! version of the visit with who, when and the visit as it then stood.
//!
//! [`SqliteStore::change_visit`] does one change in one transaction: the lifecycle checks the office's
//! command ([`doorstep_core::lifecycle::Command`]) against the visit's state, its event is stored with its
//! audit entry ([`crate::audit`]), the visit the phones receive is rewritten (a new agreed time, or a
//! briefing whose [`Briefing::version`] is one more, so the phone asks for it to be read again), and the
//! new version is added. Nothing is half done: a refusal leaves the store as it was. Versions, like events,
//! are never changed or deleted (SQLite triggers).

use chrono::{DateTime, Utc};
use doorstep_core::domain::{Briefing, Visit};
use doorstep_core::ids::{EventId, StaffId, VisitId};
use doorstep_core::lifecycle::{Command, VisitEvent};
use rusqlite::{params, Connection, OptionalExtension};

use crate::audit::Action;
use crate::requests::Timing;
use crate::store::{
    check_dbs, parse_id, record_office_event_in, school_policy, stored_time, tuples, visit_school,
    visit_state, CachedSql, SqliteStore, StoreError,
};

/// What a version changed. Stored by [`Change::name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The visit as it was requested (version 1).
    Requested,
    Authorised,
    Declined,
    AuthorisationWithdrawn,
    CalledOff,
    Rescheduled,
    BriefingUpdated,
}

impl Change {
    const ALL: [Change; 7] = [
        Change::Requested,
        Change::Authorised,
        Change::Declined,
        Change::AuthorisationWithdrawn,
        Change::CalledOff,
        Change::Rescheduled,
        Change::BriefingUpdated,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Change::Requested => "requested",
            Change::Authorised => "authorised",
            Change::Declined => "declined",
            Change::AuthorisationWithdrawn => "authorisation_withdrawn",
            Change::CalledOff => "called_off",
            Change::Rescheduled => "rescheduled",
            Change::BriefingUpdated => "briefing_updated",
        }
    }

    /// In words, after the person's name.
    pub fn label(self) -> &'static str {
        match self {
            Change::Requested => "requested the visit",
            Change::Authorised => "authorised it",
            Change::Declined => "declined it",
            Change::AuthorisationWithdrawn => "withdrew the authorisation",
            Change::CalledOff => "called it off: not going ahead",
            Change::Rescheduled => "rescheduled it",
            Change::BriefingUpdated => "updated the risk assessment and briefing",
        }
    }

    fn from_name(name: &str) -> Option<Change> {
        Change::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The version an office decision makes; `None` for decisions on a visit's alarms, which change
    /// nothing about the visit itself. Which events are office decisions is [`Action::for_office_event`]'s
    /// rule; a decision's version is stored under the same name as its audit entry.
    pub fn for_event(event: &VisitEvent) -> Option<Change> {
        Action::for_office_event(event).and_then(|action| Change::from_name(action.name()))
    }
}

/// One version of a visit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitVersion {
    /// 1, 2, 3, ...
    pub version: u32,
    /// When and by whom; `None` only for a first version not requested on the office's pages.
    pub at: Option<DateTime<Utc>>,
    pub by: Option<StaffId>,
    /// `None` for a change a newer office wrote.
    pub change: Option<Change>,
    /// The reason given (decline, withdrawal, call-off, evening override); free text, for those who may
    /// read the visit's records.
    pub reason: String,
    /// The visit as the phones received it after this change.
    pub visit: Visit,
    pub event: Option<EventId>,
}

impl VisitVersion {
    /// What this version changed in the visit since `before`, by name only (never the content: the board
    /// shows this to everyone on it).
    pub fn differences(&self, before: &VisitVersion) -> Vec<&'static str> {
        let (a, b) = (&before.visit, &self.visit);
        let (ra, rb) = (a.briefing.risk_assessment(), b.briefing.risk_assessment());
        let mut out = Vec::new();
        if a.agreed_time != b.agreed_time {
            out.push("agreed time");
        }
        if ra.risks != rb.risks {
            out.push("risk assessment");
        }
        if ra.lone_visit_assessment != rb.lone_visit_assessment {
            out.push("lone-visit assessment");
        }
        for (name, x, y) in [
            ("pets", &a.briefing.pets, &b.briefing.pets),
            (
                "pupil's needs",
                &a.briefing.pupil_needs,
                &b.briefing.pupil_needs,
            ),
            ("family", &a.briefing.family, &b.briefing.family),
            ("area", &a.briefing.area, &b.briefing.area),
            ("parking", &a.briefing.parking, &b.briefing.parking),
        ] {
            if x != y {
                out.push(name);
            }
        }
        out
    }
}

/// The visit as stored (the JSON the phones receive), if there is one with this id.
pub(crate) fn stored_body(
    conn: &Connection,
    visit: &VisitId,
) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row_cached(
            "SELECT body FROM visits WHERE id = ?1",
            [visit.as_str()],
            |row| row.get(0),
        )
        .optional()?)
}

/// Adds the visit's next version: the visit as stored now, after `change`. The caller's transaction
/// commits it with the change.
pub(crate) fn add_version(
    conn: &Connection,
    visit: &VisitId,
    by_at: Option<(&StaffId, DateTime<Utc>)>,
    change: Change,
    reason: &str,
    event: Option<EventId>,
) -> Result<u32, StoreError> {
    let body = stored_body(conn, visit)?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
    let next: i64 = conn.query_row_cached(
        "SELECT COALESCE(MAX(version), 0) + 1 FROM visit_versions WHERE visit_id = ?1",
        [visit.as_str()],
        |row| row.get(0),
    )?;
    conn.execute_cached(
        "INSERT INTO visit_versions (visit_id, version, at, by, change, reason, body, event_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            visit.as_str(),
            next,
            by_at.map(|(_, at)| at.to_rfc3339()),
            by_at.map(|(by, _)| by.as_str().to_owned()),
            change.name(),
            reason,
            body,
            event.map(|id| id.to_string())
        ],
    )?;
    u32::try_from(next).map_err(|_| StoreError::Corrupt(format!("version {next} of {visit}")))
}

/// A change the office makes to a visit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VisitChange {
    /// Turn the request down, with the reason.
    Decline { reason: String },
    /// Take back an authorisation before anyone set off.
    Withdraw { reason: String },
    /// The visit is not going ahead (the family rang, the risk changed).
    CallOff { reason: String },
    /// A new agreed time, with where it falls against the policy's day and what that needs (checked by the
    /// caller against the policy: a responsible contact outside school hours, the authoriser's reason for
    /// an evening visit the policy advises against).
    Reschedule {
        agreed_time: DateTime<Utc>,
        timing: Timing,
        responsible_contact: Option<(String, doorstep_core::domain::PhoneNumber)>,
        override_reason: Option<String>,
    },
    /// A new risk assessment and briefing (its version number is set here).
    UpdateBriefing { briefing: Briefing },
}

impl SqliteStore {
    /// Makes `change` to `visit` as `by` at `now`: checked by the lifecycle, recorded as the office's
    /// event with its audit entry, the visit the phones receive rewritten, and kept as a new version, all
    /// or nothing. A refusal is [`StoreError::Invalid`] with words for the person.
    pub fn change_visit(
        &self,
        visit: &VisitId,
        by: &StaffId,
        change: VisitChange,
        now: DateTime<Utc>,
    ) -> Result<VisitVersion, StoreError> {
        self.in_transaction(|tx| {
            let mut stored: Visit = match stored_body(tx, visit)? {
                Some(body) => serde_json::from_str(&body)?,
                None => return Err(StoreError::Invalid(format!("unknown visit {visit}"))),
            };
            let by = by.clone();
            let (command, kind, reason) = match change {
                VisitChange::Decline { reason } => (
                    Command::Decline {
                        by,
                        reason: reason.clone(),
                    },
                    Change::Declined,
                    reason,
                ),
                VisitChange::Withdraw { reason } => (
                    Command::WithdrawAuthorisation {
                        by,
                        reason: reason.clone(),
                    },
                    Change::AuthorisationWithdrawn,
                    reason,
                ),
                VisitChange::CallOff { reason } => (
                    Command::CallOff {
                        by,
                        reason: reason.clone(),
                    },
                    Change::CalledOff,
                    reason,
                ),
                VisitChange::Reschedule {
                    agreed_time,
                    timing,
                    responsible_contact,
                    override_reason,
                } => {
                    if agreed_time <= now {
                        return Err(StoreError::Invalid(
                            "that time is in the past: choose a time still to come".into(),
                        ));
                    }
                    let school = visit_school(tx, visit)?;
                    check_dbs(tx, &school_policy(tx, &school)?, &stored)?;
                    set_times(
                        tx,
                        visit,
                        &by,
                        now,
                        timing,
                        responsible_contact,
                        override_reason.as_deref(),
                    )?;
                    stored.agreed_time = agreed_time;
                    (
                        Command::Reschedule { by, agreed_time },
                        Change::Rescheduled,
                        override_reason.unwrap_or_default(),
                    )
                }
                VisitChange::UpdateBriefing { mut briefing } => {
                    let state = visit_state(tx, visit)?
                        .ok_or_else(|| StoreError::Invalid(format!("unknown visit {visit}")))?;
                    let version = stored
                        .briefing
                        .version
                        .max(state.briefing_version)
                        .checked_add(1)
                        .ok_or_else(|| StoreError::Invalid("too many briefing versions".into()))?;
                    briefing.version = version;
                    briefing.withdrawn = false;
                    stored.briefing = briefing;
                    (
                        Command::UpdateBriefing { by, version },
                        Change::BriefingUpdated,
                        String::new(),
                    )
                }
            };
            let envelope = record_office_event_in(tx, visit, &command, now)?;
            tx.execute_cached(
                "UPDATE visits SET body = ?2, agreed_time = ?3 WHERE id = ?1",
                params![
                    visit.as_str(),
                    serde_json::to_string(&stored)?,
                    stored.agreed_time.to_rfc3339()
                ],
            )?;
            let version = add_version(
                tx,
                visit,
                Some((envelope.event.actor(), now)),
                kind,
                &reason,
                Some(envelope.id),
            )?;
            Ok(VisitVersion {
                version,
                at: Some(now),
                by: Some(envelope.event.actor().clone()),
                change: Some(kind),
                reason,
                visit: stored,
                event: Some(envelope.id),
            })
        })
    }

    /// Every version of a visit, oldest first.
    pub fn visit_versions(&self, visit: &VisitId) -> Result<Vec<VisitVersion>, StoreError> {
        type Columns = (
            i64,
            Option<String>,
            Option<String>,
            String,
            String,
            String,
            Option<String>,
        );
        let rows: Vec<Columns> = tuples(
            &self.conn(),
            "SELECT version, at, by, change, reason, body, event_id FROM visit_versions
             WHERE visit_id = ?1 ORDER BY version",
            [visit.as_str()],
        )?;
        let mut out = Vec::new();
        for (version, at, by, change, reason, body, event) in rows {
            out.push(VisitVersion {
                version: u32::try_from(version)
                    .map_err(|_| StoreError::Corrupt(format!("version {version} of {visit}")))?,
                at: at.as_deref().map(stored_time).transpose()?,
                by: by.as_deref().map(parse_id).transpose()?,
                change: Change::from_name(&change),
                reason,
                visit: serde_json::from_str(&body)?,
                event: event.as_deref().map(parse_id).transpose()?,
            });
        }
        Ok(out)
    }
}

/// Keeps the new time's place in the policy's day beside the visit: a responsible contact outside school
/// hours, the authoriser's reason for an evening visit. A visit with no request on record (the demo's)
/// gets one, naming the person who set its time.
fn set_times(
    conn: &Connection,
    visit: &VisitId,
    by: &StaffId,
    now: DateTime<Utc>,
    timing: Timing,
    contact: Option<(String, doorstep_core::domain::PhoneNumber)>,
    override_reason: Option<&str>,
) -> Result<(), StoreError> {
    let (name, phone) = contact.map_or((None, None), |(n, p)| (Some(n), Some(p)));
    conn.execute_cached(
        "INSERT INTO visit_requests (visit_id, requested_by, requested_at, out_of_hours, evening,
             contact_name, contact_phone, authoriser_override)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (visit_id) DO UPDATE SET out_of_hours = excluded.out_of_hours,
             evening = excluded.evening,
             contact_name = COALESCE(excluded.contact_name, visit_requests.contact_name),
             contact_phone = COALESCE(excluded.contact_phone, visit_requests.contact_phone),
             authoriser_override = COALESCE(excluded.authoriser_override, visit_requests.authoriser_override)",
        params![
            visit.as_str(),
            by.as_str(),
            now.to_rfc3339(),
            timing.out_of_hours,
            timing.evening,
            name,
            phone,
            override_reason
        ],
    )?;
    Ok(())
}
