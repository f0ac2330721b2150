//! The office runs the visit: its decisions after a visit was requested (decline, withdraw an
//! authorisation, call off, reschedule, update the risk assessment and briefing), each kept as a new
//! version of the visit with who, when and the visit as it then stood.
//!
//! [`crate::store::backend::Visits::change_visit`] (its rows in `store/sqlite/versions.rs` and
//! `store/postgres/visits.rs`, both following [`VisitChange::plan`]) does one change in one transaction: the lifecycle checks the office's command ([`doorstep_core::lifecycle::Command`]) against the
//! visit's state, its event is stored with its audit entry ([`crate::audit`]), the visit the phones receive
//! is rewritten (a new agreed time, or a briefing whose [`Briefing::version`] is one more, so the phone asks
//! for it to be read again), and the new version is added. Nothing is half done: a refusal leaves the store
//! as it was. Versions, like events, are never changed or deleted (triggers in both stores).

use chrono::{DateTime, Utc};
use doorstep_core::domain::{Briefing, Visit};
use doorstep_core::event::EventEnvelope;
use doorstep_core::ids::{EventId, StaffId};
use doorstep_core::lifecycle::{Command, VisitEvent, VisitState};

use crate::audit::Action;
use crate::requests::Timing;
pub(crate) use crate::store::sqlite::versions::{add_version, stored_body};
use crate::store::StoreError;

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

    pub(crate) fn from_name(name: &str) -> Option<Change> {
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

impl VisitChange {
    /// What the store does for this change: a decline, a withdrawal or a call-off is decided here; a
    /// reschedule or a new briefing is handed back for the store to check against what it holds.
    pub(crate) fn plan(self, by: &StaffId) -> Plan {
        let by = by.clone();
        match self {
            VisitChange::Decline { reason } => Plan::Decided(
                Command::Decline {
                    by,
                    reason: reason.clone(),
                },
                Change::Declined,
                reason,
            ),
            VisitChange::Withdraw { reason } => Plan::Decided(
                Command::WithdrawAuthorisation {
                    by,
                    reason: reason.clone(),
                },
                Change::AuthorisationWithdrawn,
                reason,
            ),
            VisitChange::CallOff { reason } => Plan::Decided(
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
            } => Plan::Reschedule {
                agreed_time,
                timing,
                responsible_contact,
                override_reason,
            },
            VisitChange::UpdateBriefing { briefing } => Plan::Briefing(briefing),
        }
    }
}

/// How a store makes a change ([`VisitChange::plan`]).
pub(crate) enum Plan {
    /// Decided already: the lifecycle's command, the version's name and the reason kept with it.
    Decided(Command, Change, String),
    /// Checked against the assigned staff's DBS under the school's policy, and kept beside the visit.
    Reschedule {
        agreed_time: DateTime<Utc>,
        timing: Timing,
        responsible_contact: Option<(String, doorstep_core::domain::PhoneNumber)>,
        override_reason: Option<String>,
    },
    /// Numbered after the stored briefing and the one the visit's state last saw.
    Briefing(Briefing),
}

/// A reschedule to `agreed_time` refused when it is not still to come at `now`.
pub(crate) fn check_reschedule(
    agreed_time: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if agreed_time <= now {
        return Err(StoreError::Invalid(
            "that time is in the past: choose a time still to come".into(),
        ));
    }
    Ok(())
}

/// What a store records for a reschedule it has checked and kept the times of: the visit moves to
/// `agreed_time`, and the authoriser's reason (for an evening visit) is the version's.
pub(crate) fn rescheduled(
    stored: &mut Visit,
    agreed_time: DateTime<Utc>,
    by: &StaffId,
    override_reason: Option<String>,
) -> (Command, Change, String) {
    stored.agreed_time = agreed_time;
    (
        Command::Reschedule {
            by: by.clone(),
            agreed_time,
        },
        Change::Rescheduled,
        override_reason.unwrap_or_default(),
    )
}

/// What a store records for a new briefing: numbered one past both the stored visit's and the one the
/// visit's state last saw, not withdrawn, it becomes the visit's.
pub(crate) fn briefed(
    stored: &mut Visit,
    state: &VisitState,
    mut briefing: Briefing,
    by: &StaffId,
) -> Result<(Command, Change, String), StoreError> {
    let version = stored
        .briefing
        .version
        .max(state.briefing_version)
        .checked_add(1)
        .ok_or_else(|| StoreError::Invalid("too many briefing versions".into()))?;
    briefing.version = version;
    briefing.withdrawn = false;
    stored.briefing = briefing;
    Ok((
        Command::UpdateBriefing {
            by: by.clone(),
            version,
        },
        Change::BriefingUpdated,
        String::new(),
    ))
}

/// The version a change just made, as [`VisitVersion`] says it.
pub(crate) fn made_version(
    version: u32,
    now: DateTime<Utc>,
    envelope: &EventEnvelope,
    (change, reason): (Change, String),
    visit: Visit,
) -> VisitVersion {
    VisitVersion {
        version,
        at: Some(now),
        by: Some(envelope.event.actor().clone()),
        change: Some(change),
        reason,
        visit,
        event: Some(envelope.id),
    }
}
