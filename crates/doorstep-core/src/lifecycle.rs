//! The visit lifecycle: one pure state machine shared by the phone and the office, with the rules about who
//! may do what.
//!
//! `decide(state, command, policy, now)` checks a command against the rules and returns the events it
//! causes, or a typed error saying why not. `apply(state, event, at)` folds one event in. `apply` is total:
//! events are facts that already happened on someone's phone (perhaps offline, perhaps before the office
//! called the visit off), so a replay never refuses one. But a fact is honoured only as far as its sender may
//! act: one person's cancel cannot end the watch over a colleague who is inside, only the person who raised an
//! alert (or the office) can stand it down, "we arrived together" vouches only for a partner who has set off.
//! What was not honoured is kept in the state with the reason ([`VisitState::not_honoured`]), so the phone
//! that sent it and the office board can say so. `replay` sorts a visit's events into one canonical order
//! first, so every device and the office rebuild the same state from the same set of events.
//!
//! Events come from two senders. Phones send the steps of the people on the visit, each about its own
//! holder; the office alone sends its decisions ([`VisitEvent::is_office_only`]), and the office's sync
//! refuses those from phones. The rules below rely on that.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{EventId, StaffId};
use crate::policy::Policy;

/// The version of the rules below. Stores that keep a state derived from events (the office's) rebuild it
/// when this changes; raise it with any change to `apply` or the judgements it makes.
pub const RULES_VERSION: u32 = 3;

/// The furthest ahead a phone may say someone will arrive, from when it says so: a day's journey is never
/// this long, and a later time would let a mistyped (or malicious) value silence the arrival deadline.
pub const MAX_ARRIVAL_AHEAD: TimeDelta = TimeDelta::hours(4);
/// The furthest ahead a phone may put the expected end of a visit, from when it set off.
pub const MAX_END_AHEAD: TimeDelta = TimeDelta::hours(24);

/// Why a visit, or one person's part in it, was called off before it began.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum CancelReason {
    /// Nobody answered within the policy's wait.
    NoAnswerAfterWait,
    /// Staff felt unsafe; the written reason goes to the authoriser.
    FeltUnsafe,
    /// Animals could not be secured in another room or outside.
    AnimalsNotSecured,
    /// No appropriate adult was present.
    NoAppropriateAdult,
    /// Not going ahead: the family rang to cancel before anyone set off.
    FamilyCancelled,
    /// The office called the visit off.
    CalledOffByOffice,
    Other,
}

impl CancelReason {
    /// Every reason, in the order reports list them.
    pub const ALL: [CancelReason; 7] = [
        CancelReason::NoAnswerAfterWait,
        CancelReason::FeltUnsafe,
        CancelReason::AnimalsNotSecured,
        CancelReason::NoAppropriateAdult,
        CancelReason::FamilyCancelled,
        CancelReason::CalledOffByOffice,
        CancelReason::Other,
    ];

    /// The reasons offered at the door (the office's own call-off and the family's call before anyone set off
    /// have their own buttons).
    pub const AT_THE_DOOR: [CancelReason; 5] = [
        CancelReason::NoAnswerAfterWait,
        CancelReason::FeltUnsafe,
        CancelReason::AnimalsNotSecured,
        CancelReason::NoAppropriateAdult,
        CancelReason::Other,
    ];

    pub fn label(self) -> &'static str {
        match self {
            CancelReason::NoAnswerAfterWait => "No answer after the wait",
            CancelReason::FeltUnsafe => "Felt unsafe",
            CancelReason::AnimalsNotSecured => "Animals not secured",
            CancelReason::NoAppropriateAdult => "No appropriate adult",
            CancelReason::FamilyCancelled => "Not going ahead (the family cancelled)",
            CancelReason::CalledOffByOffice => "Called off by the office",
            CancelReason::Other => "Other",
        }
    }

    /// Reasons that need words: the authoriser must be told why in writing.
    pub fn needs_note(self) -> bool {
        matches!(
            self,
            CancelReason::FeltUnsafe | CancelReason::Other | CancelReason::CalledOffByOffice
        )
    }
}

/// One tick on the briefing checklist a member of staff completes before leaving for a visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum BriefingCheck {
    RisksRead,
    PetsArrangementKnown,
    PhoneCharged,
    IdCardWithMe,
    ExitRoutesOnArrival,
}

impl BriefingCheck {
    pub const ALL: [BriefingCheck; 5] = [
        BriefingCheck::RisksRead,
        BriefingCheck::PetsArrangementKnown,
        BriefingCheck::PhoneCharged,
        BriefingCheck::IdCardWithMe,
        BriefingCheck::ExitRoutesOnArrival,
    ];

    /// The checklist a school's policy asks for: the pets line only where animals must be secured or the
    /// visit cancelled.
    pub fn required(policy: &Policy) -> Vec<BriefingCheck> {
        BriefingCheck::ALL
            .into_iter()
            .filter(|check| {
                *check != BriefingCheck::PetsArrangementKnown || policy.animals_secured_or_cancel
            })
            .collect()
    }

    /// The words beside the tick, in the first person.
    pub fn label(self) -> &'static str {
        match self {
            BriefingCheck::RisksRead => "I've read the risks and controls",
            BriefingCheck::PetsArrangementKnown => {
                "I know the pets arrangement: animals kept in another room or outside, or we don't go in"
            }
            BriefingCheck::PhoneCharged => "My phone is charged and on",
            BriefingCheck::IdCardWithMe => "My ID card is with me (not round my neck)",
            BriefingCheck::ExitRoutesOnArrival => "I'll note the exit routes on arrival",
        }
    }
}

/// How duress was raised: both look ordinary on the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum DuressVia {
    /// The button labelled with the school's code phrase.
    CodePhraseButton,
    /// The duress PIN entered where a normal PIN was asked for. Only the office can stand it down: the
    /// person may be made to "cancel" it.
    DuressPin,
}

/// How the office closed an alarm: closing needs one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum AlarmOutcome {
    /// Someone at the office spoke to the member of staff.
    SpokeToStaff,
    /// The member of staff is known to be safe (seen back at school, or told by someone who saw them).
    StaffSafe,
    /// The police were called.
    PoliceCalled,
}

impl AlarmOutcome {
    pub const ALL: [AlarmOutcome; 3] = [
        AlarmOutcome::SpokeToStaff,
        AlarmOutcome::StaffSafe,
        AlarmOutcome::PoliceCalled,
    ];

    pub fn label(self) -> &'static str {
        match self {
            AlarmOutcome::SpokeToStaff => "Spoke to the member of staff",
            AlarmOutcome::StaffSafe => "Staff known to be safe",
            AlarmOutcome::PoliceCalled => "Police called",
        }
    }

    /// The name used in forms and stored rows.
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmOutcome::SpokeToStaff => "spoke_to_staff",
            AlarmOutcome::StaffSafe => "staff_safe",
            AlarmOutcome::PoliceCalled => "police_called",
        }
    }

    pub fn parse(text: &str) -> Option<AlarmOutcome> {
        AlarmOutcome::ALL.into_iter().find(|o| o.as_str() == text)
    }
}

/// The write-up after a visit, ready for the school's record system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct WriteUp {
    #[cfg_attr(feature = "schema", schemars(length(max = crate::event::MAX_TEXT_CHARS)))]
    pub seen: String,
    #[cfg_attr(feature = "schema", schemars(length(max = crate::event::MAX_TEXT_CHARS)))]
    pub discussed: String,
    #[cfg_attr(feature = "schema", schemars(length(max = crate::event::MAX_TEXT_CHARS)))]
    pub agreements: String,
    /// Yes flags the visit to the designated safeguarding lead at once.
    pub safeguarding_concern: bool,
    /// An incident report for the authoriser, when something happened.
    #[cfg_attr(feature = "schema", schemars(length(max = crate::event::MAX_TEXT_CHARS)))]
    pub incident: Option<String>,
}

/// Something a person (or the office) asks to do to a visit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    // ---- the office's decisions
    Authorise {
        by: StaffId,
        lone_visit_approved: bool,
    },
    Decline {
        by: StaffId,
        reason: String,
    },
    WithdrawAuthorisation {
        by: StaffId,
        reason: String,
    },
    /// The office marks the visit not going ahead (the family rang the school, the risk changed...).
    CallOff {
        by: StaffId,
        reason: String,
    },
    Reschedule {
        by: StaffId,
        agreed_time: DateTime<Utc>,
    },
    /// The risk assessment or briefing changed; `version` is the new version's number.
    UpdateBriefing {
        by: StaffId,
        version: u32,
    },
    /// The office closes the active alerts (any of them, duress PIN included) with an outcome.
    CloseAlerts {
        by: StaffId,
        outcome: AlarmOutcome,
        note: String,
    },
    // ---- the steps of the people on the visit
    /// Before leaving: the briefing is read and its checklist ticked (every item the policy asks for, or it
    /// is refused), for the briefing's current version.
    ConfirmBriefing {
        staff: StaffId,
        ticked: Vec<BriefingCheck>,
    },
    /// A new expected arrival, before arriving: shown to the partner and the office, and the office's
    /// deadline moves with it.
    RunningLate {
        staff: StaffId,
        expected_arrival: DateTime<Utc>,
    },
    Depart {
        staff: StaffId,
        expected_arrival: DateTime<Utc>,
        expected_end: DateTime<Utc>,
    },
    ArriveOutside {
        staff: StaffId,
    },
    /// One phone confirms that everyone listed arrived together (a partner's phone may have no signal).
    ArriveTogether {
        by: StaffId,
        staff: Vec<StaffId>,
    },
    /// Everyone outside goes in together.
    StartVisit {
        by: StaffId,
    },
    CheckIn {
        staff: StaffId,
    },
    MissCheckIn {
        staff: StaffId,
        due_at: DateTime<Utc>,
    },
    RaiseDuress {
        staff: StaffId,
        via: DuressVia,
    },
    StandDownDuress {
        staff: StaffId,
        note: String,
    },
    Leave {
        staff: StaffId,
    },
    Cancel {
        staff: StaffId,
        reason: CancelReason,
        note: String,
    },
    WriteUp {
        staff: StaffId,
        write_up: WriteUp,
    },
}

/// Something that happened to a visit. Immutable once recorded; a correction is a new event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum VisitEvent {
    Authorised {
        by: StaffId,
        lone_visit_approved: bool,
    },
    /// The request was turned down, with the reason.
    Declined {
        by: StaffId,
        #[cfg_attr(feature = "schema", schemars(length(max = crate::event::MAX_TEXT_CHARS)))]
        reason: String,
    },
    /// An authorisation was taken back before anyone set off; the visit may be authorised again.
    AuthorisationWithdrawn {
        by: StaffId,
        #[cfg_attr(feature = "schema", schemars(length(max = crate::event::MAX_TEXT_CHARS)))]
        reason: String,
    },
    /// The office marked the visit not going ahead.
    CalledOff {
        by: StaffId,
        #[cfg_attr(feature = "schema", schemars(length(max = crate::event::MAX_TEXT_CHARS)))]
        reason: String,
    },
    /// The office moved the agreed time.
    Rescheduled {
        by: StaffId,
        agreed_time: DateTime<Utc>,
    },
    /// The office changed the risk assessment or briefing; staff read it again before setting off.
    BriefingUpdated {
        by: StaffId,
        version: u32,
    },
    /// The office closed these alerts with an outcome.
    AlertsClosed {
        by: StaffId,
        outcome: AlarmOutcome,
        #[cfg_attr(feature = "schema", schemars(length(max = crate::event::MAX_TEXT_CHARS)))]
        note: String,
        #[cfg_attr(feature = "schema", schemars(length(max = crate::event::MAX_ALERTS_NAMED)))]
        alerts: Vec<AlertRef>,
    },
    BriefingRead {
        staff: StaffId,
        #[cfg_attr(feature = "schema", schemars(length(max = BriefingCheck::ALL.len())))]
        ticked: Vec<BriefingCheck>,
        /// The briefing version read (0 before the office ever changed it).
        #[serde(default)]
        version: u32,
    },
    RunningLate {
        staff: StaffId,
        expected_arrival: DateTime<Utc>,
    },
    Departed {
        staff: StaffId,
        expected_arrival: DateTime<Utc>,
        expected_end: DateTime<Utc>,
    },
    ArrivedOutside {
        staff: StaffId,
    },
    ArrivedTogether {
        by: StaffId,
        #[cfg_attr(feature = "schema", schemars(length(max = crate::event::MAX_STAFF_NAMED)))]
        staff: Vec<StaffId>,
    },
    VisitStarted {
        by: StaffId,
        #[cfg_attr(feature = "schema", schemars(length(max = crate::event::MAX_STAFF_NAMED)))]
        staff: Vec<StaffId>,
    },
    CheckedIn {
        staff: StaffId,
    },
    CheckInMissed {
        staff: StaffId,
        due_at: DateTime<Utc>,
    },
    DuressRaised {
        staff: StaffId,
        via: DuressVia,
    },
    /// Ends the alerts that were active when it was decided, named so that a later alert (perhaps raised on
    /// another phone with a skewed clock) is never stood down by mistake. Honoured only for the sender's own
    /// alerts raised with the button.
    DuressStoodDown {
        staff: StaffId,
        #[cfg_attr(feature = "schema", schemars(length(max = crate::event::MAX_TEXT_CHARS)))]
        note: String,
        #[cfg_attr(feature = "schema", schemars(length(max = crate::event::MAX_ALERTS_NAMED)))]
        alerts: Vec<AlertRef>,
    },
    Left {
        staff: StaffId,
    },
    Cancelled {
        staff: StaffId,
        reason: CancelReason,
        #[cfg_attr(feature = "schema", schemars(length(max = crate::event::MAX_TEXT_CHARS)))]
        note: String,
    },
    WrittenUp {
        staff: StaffId,
        write_up: WriteUp,
    },
}

impl VisitEvent {
    /// The person the event is about or made by (for the office's decisions, who at the office).
    pub fn actor(&self) -> &StaffId {
        match self {
            VisitEvent::Authorised { by, .. }
            | VisitEvent::Declined { by, .. }
            | VisitEvent::AuthorisationWithdrawn { by, .. }
            | VisitEvent::CalledOff { by, .. }
            | VisitEvent::Rescheduled { by, .. }
            | VisitEvent::BriefingUpdated { by, .. }
            | VisitEvent::AlertsClosed { by, .. }
            | VisitEvent::ArrivedTogether { by, .. }
            | VisitEvent::VisitStarted { by, .. } => by,
            VisitEvent::Departed { staff, .. }
            | VisitEvent::BriefingRead { staff, .. }
            | VisitEvent::RunningLate { staff, .. }
            | VisitEvent::ArrivedOutside { staff }
            | VisitEvent::CheckedIn { staff }
            | VisitEvent::CheckInMissed { staff, .. }
            | VisitEvent::DuressRaised { staff, .. }
            | VisitEvent::DuressStoodDown { staff, .. }
            | VisitEvent::Left { staff }
            | VisitEvent::Cancelled { staff, .. }
            | VisitEvent::WrittenUp { staff, .. } => staff,
        }
    }

    /// A decision only the office may record; the office's sync refuses these from phones.
    pub fn is_office_only(&self) -> bool {
        matches!(
            self,
            VisitEvent::Authorised { .. }
                | VisitEvent::Declined { .. }
                | VisitEvent::AuthorisationWithdrawn { .. }
                | VisitEvent::CalledOff { .. }
                | VisitEvent::Rescheduled { .. }
                | VisitEvent::BriefingUpdated { .. }
                | VisitEvent::AlertsClosed { .. }
        )
    }

    /// Every staff id the event names on the visit, so the office can check they are all on it. (The
    /// office's decisions name the person at the office, who is not on the visit.)
    pub fn staff_named(&self) -> Vec<&StaffId> {
        let mut named = Vec::new();
        if !self.is_office_only() {
            named.push(self.actor());
        }
        match self {
            VisitEvent::ArrivedTogether { staff, .. } | VisitEvent::VisitStarted { staff, .. } => {
                named.extend(staff.iter())
            }
            VisitEvent::DuressStoodDown { alerts, .. }
            | VisitEvent::AlertsClosed { alerts, .. } => {
                named.extend(alerts.iter().map(|alert| &alert.raised_by))
            }
            _ => {}
        }
        named
    }

    /// The event without the words a person typed into it (a write-up's text, a cancellation's or a
    /// stand-down's note), or `None` when it carries none. A phone keeps only this once the office has
    /// confirmed its event: the office holds the record, and a lost phone should not. What a replay reads
    /// (who, which reason, whether there was a safeguarding concern) is kept, so the visit's state is the
    /// same either way.
    pub fn without_free_text(&self) -> Option<VisitEvent> {
        match self {
            VisitEvent::WrittenUp { staff, write_up } => {
                let blank = WriteUp {
                    seen: String::new(),
                    discussed: String::new(),
                    agreements: String::new(),
                    safeguarding_concern: write_up.safeguarding_concern,
                    incident: None,
                };
                (blank != *write_up).then(|| VisitEvent::WrittenUp {
                    staff: staff.clone(),
                    write_up: blank,
                })
            }
            VisitEvent::Cancelled {
                staff,
                reason,
                note,
            } if !note.is_empty() => Some(VisitEvent::Cancelled {
                staff: staff.clone(),
                reason: *reason,
                note: String::new(),
            }),
            VisitEvent::DuressStoodDown {
                staff,
                note,
                alerts,
            } if !note.is_empty() => Some(VisitEvent::DuressStoodDown {
                staff: staff.clone(),
                note: String::new(),
                alerts: alerts.clone(),
            }),
            _ => None,
        }
    }

    /// A duress event jumps the outbox queue.
    pub fn is_urgent(&self) -> bool {
        matches!(self, VisitEvent::DuressRaised { .. })
    }

    /// Short words for a timeline or a status line; never includes free text a family could be named in.
    pub fn summary(&self) -> &'static str {
        match self {
            VisitEvent::Authorised { .. } => "authorised",
            VisitEvent::Declined { .. } => "declined",
            VisitEvent::AuthorisationWithdrawn { .. } => "authorisation withdrawn",
            VisitEvent::CalledOff { .. } => "called off by the office",
            VisitEvent::Rescheduled { .. } => "rescheduled",
            VisitEvent::BriefingUpdated { .. } => "briefing updated",
            VisitEvent::AlertsClosed { .. } => "alarm closed by the office",
            VisitEvent::BriefingRead { .. } => "read the briefing",
            VisitEvent::RunningLate { .. } => "running late",
            VisitEvent::Departed { .. } => "left for the visit",
            VisitEvent::ArrivedOutside { .. } => "outside",
            VisitEvent::ArrivedTogether { .. } => "arrived together",
            VisitEvent::VisitStarted { .. } => "went in",
            VisitEvent::CheckedIn { .. } => "checked in",
            VisitEvent::CheckInMissed { .. } => "missed a check-in",
            VisitEvent::DuressRaised { .. } => "DURESS",
            VisitEvent::DuressStoodDown { .. } => "duress stood down",
            VisitEvent::Left { .. } => "left the property",
            VisitEvent::Cancelled {
                reason: CancelReason::FamilyCancelled,
                ..
            } => "not going ahead",
            VisitEvent::Cancelled { .. } => "cancelled",
            VisitEvent::WrittenUp { .. } => "written up",
        }
    }
}

/// Where one member of staff is in the visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "progress", rename_all = "snake_case")]
pub enum StaffProgress {
    NotStarted,
    Departed {
        at: DateTime<Utc>,
        expected_arrival: DateTime<Utc>,
        expected_end: DateTime<Utc>,
    },
    Outside {
        at: DateTime<Utc>,
    },
    Inside {
        at: DateTime<Utc>,
    },
    Left {
        at: DateTime<Utc>,
    },
}

impl StaffProgress {
    /// How far along this is; a fact that arrives late never moves a person backwards.
    fn rank(&self) -> u8 {
        match self {
            StaffProgress::NotStarted => 0,
            StaffProgress::Departed { .. } => 1,
            StaffProgress::Outside { .. } => 2,
            StaffProgress::Inside { .. } => 3,
            StaffProgress::Left { .. } => 4,
        }
    }

    /// When this person reached this point (`None` before they set off).
    pub fn since(&self) -> Option<DateTime<Utc>> {
        match self {
            StaffProgress::NotStarted => None,
            StaffProgress::Departed { at, .. }
            | StaffProgress::Outside { at }
            | StaffProgress::Inside { at }
            | StaffProgress::Left { at } => Some(*at),
        }
    }

    pub fn is_outside(&self) -> bool {
        matches!(self, StaffProgress::Outside { .. })
    }

    pub fn is_inside(&self) -> bool {
        matches!(self, StaffProgress::Inside { .. })
    }

    /// Out on the visit: left for it, at the door or inside, and not yet left the property.
    pub fn is_out(&self) -> bool {
        matches!(
            self,
            StaffProgress::Departed { .. }
                | StaffProgress::Outside { .. }
                | StaffProgress::Inside { .. }
        )
    }

    pub fn label(&self) -> &'static str {
        match self {
            StaffProgress::NotStarted => "not left yet",
            StaffProgress::Departed { .. } => "on the way",
            StaffProgress::Outside { .. } => "outside",
            StaffProgress::Inside { .. } => "in the visit",
            StaffProgress::Left { .. } => "left",
        }
    }
}

/// The visit as a whole, derived from its state (see [`VisitState::phase`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    Requested,
    /// The authoriser turned the request down.
    Declined,
    /// Authorised once, then the authorisation was taken back.
    AuthorisationWithdrawn,
    Authorised,
    Departed,
    Outside,
    InVisit,
    CheckedIn,
    Duress,
    Left,
    Cancelled {
        reason: CancelReason,
    },
    WrittenUp,
}

impl Phase {
    pub fn label(&self) -> &'static str {
        match self {
            Phase::Requested => "Awaiting authorisation",
            Phase::Declined => "Declined",
            Phase::AuthorisationWithdrawn => "Authorisation withdrawn",
            Phase::Authorised => "Authorised",
            Phase::Departed => "On the way",
            Phase::Outside => "Outside",
            Phase::InVisit => "In the visit",
            Phase::CheckedIn => "In the visit, checked in",
            Phase::Duress => "Duress",
            Phase::Left => "Left",
            Phase::Cancelled {
                reason: CancelReason::FamilyCancelled,
            } => "Not going ahead",
            Phase::Cancelled {
                reason: CancelReason::CalledOffByOffice,
            } => "Called off by the office",
            Phase::Cancelled { .. } => "Cancelled",
            Phase::WrittenUp => "Written up",
        }
    }

    /// The stable name stored beside a visit and used in queries.
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Requested => "requested",
            Phase::Declined => "declined",
            Phase::AuthorisationWithdrawn => "authorisation_withdrawn",
            Phase::Authorised => "authorised",
            Phase::Departed => "departed",
            Phase::Outside => "outside",
            Phase::InVisit => "in_visit",
            Phase::CheckedIn => "checked_in",
            Phase::Duress => "duress",
            Phase::Left => "left",
            Phase::Cancelled { .. } => "cancelled",
            Phase::WrittenUp => "written_up",
        }
    }

    /// Over for good: nothing more will happen on it (its briefing can leave the phones).
    pub fn is_over(&self) -> bool {
        matches!(
            self,
            Phase::Declined | Phase::Cancelled { .. } | Phase::WrittenUp
        )
    }
}

/// Names one duress alert: who raised it and when (their device's time).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AlertRef {
    pub raised_by: StaffId,
    pub raised_at: DateTime<Utc>,
}

/// One duress alert. Each raise is its own alert; a stand-down names the alerts it ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Duress {
    pub raised_by: StaffId,
    pub raised_at: DateTime<Utc>,
    pub via: DuressVia,
    pub stood_down_at: Option<DateTime<Utc>>,
}

impl Duress {
    pub fn alert_ref(&self) -> AlertRef {
        AlertRef {
            raised_by: self.raised_by.clone(),
            raised_at: self.raised_at,
        }
    }

    /// Whether `by` may stand this alert down from a phone: only the person who raised it, and only an
    /// alert raised with the button. An alert raised with the duress PIN is the office's alone to end.
    pub fn may_be_stood_down_by(&self, by: &StaffId) -> Result<(), LifecycleError> {
        if self.via == DuressVia::DuressPin {
            return Err(LifecycleError::OnlyTheOfficeEndsThis);
        }
        if &self.raised_by != by {
            return Err(LifecycleError::NotYourRequest(self.raised_by.clone()));
        }
        Ok(())
    }
}

/// Someone's claim to stand an alert down, kept whatever it turns out to be: the alert it names may arrive
/// later (another phone, another clock), and only then can the claim be judged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct StandDownClaim {
    pub alert: AlertRef,
    pub by: StaffId,
    /// Made by the office ([`VisitEvent::AlertsClosed`]), which may end any alert.
    pub office: bool,
    pub at: DateTime<Utc>,
    pub event: Option<EventId>,
}

/// One person's part in a visit that ended without "I've left": their own cancel, or the visit called off
/// before they set off (or while they stood at the door with the person who cancelled).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PartEnded {
    pub at: DateTime<Utc>,
    pub reason: CancelReason,
    /// Who ended it: the person themselves, a partner at the door with them, or someone at the office.
    pub by: StaffId,
}

/// A step the visit's state does not honour (in full), with why, so the phone that sent it and the office
/// board can say so loudly. The event itself is kept: it is a fact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct NotHonoured {
    /// The event, when the replay knew its id.
    pub event: Option<EventId>,
    pub staff: StaffId,
    /// The step's summary (`VisitEvent::summary`).
    pub step: String,
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// An office decision: who, when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OfficeDecision {
    pub by: StaffId,
    pub at: DateTime<Utc>,
    pub reason: String,
}

/// Everything known about one visit, rebuilt from its events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct VisitState {
    pub staff: BTreeMap<StaffId, StaffProgress>,
    pub authorised: Option<AuthorisedBy>,
    #[serde(default)]
    pub declined: Option<OfficeDecision>,
    /// The latest withdrawal of an authorisation (cleared from view by a later authorisation).
    #[serde(default)]
    pub authorisation_withdrawn: Option<OfficeDecision>,
    /// Who has ticked the briefing checklist, and when (the first time counts).
    #[serde(default)]
    pub briefing_read: BTreeMap<StaffId, DateTime<Utc>>,
    /// The briefing version each person last read.
    #[serde(default)]
    pub briefing_read_version: BTreeMap<StaffId, u32>,
    /// The briefing's current version, as the office's `BriefingUpdated` events say (0: never changed).
    #[serde(default)]
    pub briefing_version: u32,
    /// A new expected arrival someone gave before arriving ("running late").
    #[serde(default)]
    pub running_late: BTreeMap<StaffId, DateTime<Utc>>,
    /// Partners whose arrival someone else vouched for ("we arrived together"), by whom.
    #[serde(default)]
    pub vouched_by: BTreeMap<StaffId, StaffId>,
    /// Vouches for a partner whose own phone has not (yet) said they set off: not counted as an arrival (the
    /// office keeps expecting word from that partner), but the pair may go in together on the phone.
    #[serde(default)]
    pub vouch_pending: BTreeMap<StaffId, StaffId>,
    /// What a pending vouch means, shown while it stands: resolved (and gone) once the partner's own
    /// phone says they set off.
    #[serde(default)]
    pub vouch_pending_notes: BTreeMap<StaffId, NotHonoured>,
    /// Partners who "went in" on a pending vouch: inside once their own phone says they set off.
    #[serde(default)]
    pub went_in_vouched: std::collections::BTreeSet<StaffId>,
    /// Parts that ended without "I've left" (see [`PartEnded`]).
    #[serde(default)]
    pub parts_ended: BTreeMap<StaffId, PartEnded>,
    pub started_at: Option<DateTime<Utc>>,
    pub last_check_in: Option<DateTime<Utc>>,
    pub missed_check_ins: u32,
    /// Every duress alert raised on this visit, oldest first.
    pub duress: Vec<Duress>,
    /// Every claim to stand an alert down, honoured or not.
    #[serde(default)]
    pub stand_down_claims: Vec<StandDownClaim>,
    /// The honoured stand-downs, by the alert they end, with when. Derived from `duress` and the claims, so
    /// that the order events arrive in never matters: a stand-down replayed before its alert still ends it.
    #[serde(with = "stood_down_pairs")]
    #[cfg_attr(feature = "schema", schemars(with = "Vec<(AlertRef, DateTime<Utc>)>"))]
    pub stood_down: BTreeMap<AlertRef, DateTime<Utc>>,
    /// The visit as a whole was cancelled (by a phone before anyone went in, or called off by the office).
    /// Anyone who set off after it, or was on the way, is still watched until their own step ends it.
    pub cancelled: Option<(CancelReason, DateTime<Utc>)>,
    #[serde(default)]
    pub cancelled_by: Option<StaffId>,
    pub written_up_at: Option<DateTime<Utc>>,
    pub safeguarding_concern: bool,
    /// The last time anyone on the visit was heard from (any event by an assigned member of staff).
    pub last_contact: Option<DateTime<Utc>>,
    /// Steps judged as they were applied and not honoured (in full); see [`VisitState::not_honoured`] for
    /// the whole list, stand-downs included.
    #[serde(default)]
    pub flags: Vec<NotHonoured>,
}

/// `stood_down` as a list of `[alert, at]` pairs: its keys are structs, and JSON object keys must be strings,
/// so as a map it could not be written at all once anything was stood down.
mod stood_down_pairs {
    use std::collections::BTreeMap;

    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    use super::AlertRef;

    pub fn serialize<S: Serializer>(
        map: &BTreeMap<AlertRef, DateTime<Utc>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(map.iter())
    }

    /// Also reads the `{}` an empty map was written as before, so states stored then still load.
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Pairs(Vec<(AlertRef, DateTime<Utc>)>),
        EmptyMap(BTreeMap<String, DateTime<Utc>>),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<AlertRef, DateTime<Utc>>, D::Error> {
        match Written::deserialize(deserializer)? {
            Written::Pairs(pairs) => Ok(pairs.into_iter().collect()),
            Written::EmptyMap(map) if map.is_empty() => Ok(BTreeMap::new()),
            Written::EmptyMap(_) => Err(serde::de::Error::custom(
                "stood_down must be a list of [alert, at] pairs",
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AuthorisedBy {
    pub by: StaffId,
    pub at: DateTime<Utc>,
    pub lone_visit_approved: bool,
}

/// Why a command was refused. Each says what is wrong in words a person on a doorstep (or at the office
/// desk) can act on; none names an alert as one, because a phone may show it in a family's living room.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    #[error("this visit has not been authorised yet")]
    NotAuthorised,
    #[error("this visit is already authorised")]
    AlreadyAuthorised,
    #[error("this visit request was declined")]
    Declined,
    #[error("a visit by one person needs the authoriser's explicit lone-visit approval")]
    LoneVisitNeedsApproval,
    #[error("the school's policy asks for {0} staff on a visit; fewer needs the authoriser's explicit approval")]
    FewerStaffThanPolicy(u8),
    #[error("{0} is not on this visit")]
    NotOnVisit(StaffId),
    #[error("this visit was cancelled")]
    Cancelled,
    #[error("this visit is finished")]
    Finished,
    #[error("{0} has already left for this visit")]
    AlreadyDeparted(StaffId),
    #[error("the expected finish must be after the expected arrival")]
    EndBeforeArrival,
    #[error("the expected arrival must be within the next 4 hours; for a later time ask the office to reschedule")]
    ArrivalTooFarAhead,
    #[error("the new arrival time has already passed")]
    ArrivalInThePast,
    #[error("{0} has not left for the visit yet")]
    NotDeparted(StaffId),
    #[error("{0} is already at the door or inside")]
    AlreadyArrived(StaffId),
    #[error("wait outside until everyone has arrived: {0} is not here yet")]
    PartnerNotArrived(StaffId),
    #[error("the visit has already started")]
    AlreadyStarted,
    #[error("the visit has not started: nobody is inside")]
    NotStarted,
    #[error("{0} is not in the visit")]
    NotInside(StaffId),
    #[error("{0} has already left")]
    AlreadyLeft(StaffId),
    #[error("{0} is in the visit: it ends with \"I've left\"")]
    SomeoneInside(StaffId),
    #[error("{0} is already out on this visit")]
    SomeoneOut(StaffId),
    #[error("there is nothing to end")]
    NoDuress,
    #[error("only the office can end this")]
    OnlyTheOfficeEndsThis,
    #[error("{0} made this request: only they or the office can end it")]
    NotYourRequest(StaffId),
    #[error("say why the visit was cancelled: the authoriser must be told in writing")]
    ReasonNeedsNote,
    #[error("a visit that has started is ended with \"I've left\", not cancelled")]
    CancelAfterStart,
    #[error("your part in this visit has already ended")]
    PartAlreadyEnded,
    #[error("the write-up comes after you have left or the visit was cancelled")]
    WriteUpTooEarly,
    #[error("the write-up needs who was seen and what was discussed")]
    WriteUpIncomplete,
    #[error("a note is required")]
    NoteRequired,
    #[error("tick every item on the briefing checklist first")]
    BriefingIncomplete,
    #[error("the briefing has changed since you read it: read it again and tick the checklist")]
    BriefingChanged,
    #[error("that briefing version is not newer than the current one")]
    StaleBriefingVersion,
}

impl VisitState {
    /// A newly requested visit with the staff assigned to it.
    pub fn new(assigned: impl IntoIterator<Item = StaffId>) -> Self {
        Self {
            staff: assigned
                .into_iter()
                .map(|id| (id, StaffProgress::NotStarted))
                .collect(),
            authorised: None,
            declined: None,
            authorisation_withdrawn: None,
            briefing_read: BTreeMap::new(),
            briefing_read_version: BTreeMap::new(),
            briefing_version: 0,
            running_late: BTreeMap::new(),
            vouched_by: BTreeMap::new(),
            vouch_pending: BTreeMap::new(),
            vouch_pending_notes: BTreeMap::new(),
            went_in_vouched: std::collections::BTreeSet::new(),
            parts_ended: BTreeMap::new(),
            started_at: None,
            last_check_in: None,
            missed_check_ins: 0,
            duress: Vec::new(),
            stand_down_claims: Vec::new(),
            stood_down: BTreeMap::new(),
            cancelled: None,
            cancelled_by: None,
            written_up_at: None,
            safeguarding_concern: false,
            last_contact: None,
            flags: Vec::new(),
        }
    }

    pub fn progress(&self, staff: &StaffId) -> Option<StaffProgress> {
        self.staff.get(staff).copied()
    }

    /// Whether this person's part ended without "I've left" after they last moved on (their own cancel, or
    /// the visit called off while they had not set off or stood at the door with the person who cancelled).
    /// Anything they do later (setting off, going in) shows they are out after all.
    pub fn part_ended(&self, staff: &StaffId) -> Option<&PartEnded> {
        let ended = self.parts_ended.get(staff)?;
        let since = self.progress(staff).and_then(|p| p.since());
        // At the same instant, count them out: a false alarm is better than an unwatched colleague.
        match since {
            Some(since) if since >= ended.at => None,
            _ => Some(ended),
        }
    }

    /// Out on the visit and watched by the office: set off, at the door or inside, not left, and their part
    /// not ended since.
    pub fn is_watched(&self, staff: &StaffId) -> bool {
        self.progress(staff).is_some_and(|p| p.is_out()) && self.part_ended(staff).is_none()
    }

    /// Everyone the office is watching now.
    pub fn watched(&self) -> impl Iterator<Item = &StaffId> + '_ {
        self.staff.keys().filter(|staff| self.is_watched(staff))
    }

    /// When this person is now expected at the door: their "running late" time, else what they said when
    /// they set off; `None` before either.
    pub fn expected_arrival(&self, staff: &StaffId) -> Option<DateTime<Utc>> {
        let late = self.running_late.get(staff).copied();
        let said = match self.progress(staff)? {
            StaffProgress::Departed {
                expected_arrival, ..
            } => Some(expected_arrival),
            _ => None,
        };
        match (late, said) {
            (Some(late), Some(said)) => Some(late.max(said)),
            (late, said) => late.or(said),
        }
    }

    /// The alerts not yet stood down (by their raiser with the button, or by the office).
    pub fn active_duress(&self) -> impl Iterator<Item = &Duress> + '_ {
        self.duress
            .iter()
            .filter(|alert| !self.stood_down.contains_key(&alert.alert_ref()))
    }

    pub fn duress_active(&self) -> bool {
        self.active_duress().next().is_some()
    }

    /// The visit went in and nobody is out any more: everyone who set off has left (or their part ended).
    pub fn everyone_left(&self) -> bool {
        self.started_at.is_some() && self.watched().next().is_none()
    }

    /// When the last person on the visit was done (left, or their part ended), once [`Self::everyone_left`]
    /// holds; `None` before.
    pub fn everyone_left_at(&self) -> Option<DateTime<Utc>> {
        if !self.everyone_left() {
            return None;
        }
        self.staff
            .iter()
            .filter_map(|(staff, progress)| match progress {
                StaffProgress::Left { at } => Some(*at),
                _ => self.part_ended(staff).map(|ended| ended.at),
            })
            .max()
    }

    /// Over for this person: they left, their part ended, or the visit was cancelled or declined before they
    /// set off.
    pub fn over_for(&self, staff: &StaffId) -> bool {
        match self.progress(staff) {
            None => true,
            Some(StaffProgress::Left { .. }) => true,
            Some(p) if p.is_out() => self.part_ended(staff).is_some(),
            Some(_) => {
                self.part_ended(staff).is_some()
                    || self.cancelled.is_some()
                    || self.declined.is_some()
                    || self.everyone_left()
            }
        }
    }

    /// Every step not honoured (in full), with why: those judged as they were applied, and stand-downs the
    /// sender had no right to make.
    pub fn not_honoured(&self) -> Vec<NotHonoured> {
        let mut all = self.flags.clone();
        all.extend(self.vouch_pending_notes.values().cloned());
        for claim in self.stand_down_claims.iter().filter(|claim| !claim.office) {
            let Some(alert) = self.duress.iter().find(|d| d.alert_ref() == claim.alert) else {
                continue;
            };
            if let Err(why) = alert.may_be_stood_down_by(&claim.by) {
                all.push(NotHonoured {
                    event: claim.event,
                    staff: claim.by.clone(),
                    step: "duress stood down".into(),
                    reason: why.to_string(),
                    at: claim.at,
                });
            }
        }
        all.sort_by_key(|n| n.at);
        all
    }

    /// The visit's phase, for boards and screens. An active duress outranks everything.
    pub fn phase(&self) -> Phase {
        if self.duress_active() {
            return Phase::Duress;
        }
        let furthest = self
            .watched()
            .filter_map(|staff| self.progress(staff))
            .map(|p| p.rank())
            .max();
        let Some(furthest) = furthest else {
            if self.declined.is_some() {
                return Phase::Declined;
            }
            // A write-up can come before a partner's "left" reaches the writer's phone: until everyone has
            // left (or the visit was cancelled), the visit is still under way.
            if self.written_up_at.is_some() && (self.cancelled.is_some() || self.everyone_left()) {
                return Phase::WrittenUp;
            }
            if let Some((reason, _)) = self.cancelled {
                return Phase::Cancelled { reason };
            }
            if self.everyone_left() {
                return Phase::Left;
            }
            if self.authorised.is_some() {
                return Phase::Authorised;
            }
            if self.authorisation_withdrawn.is_some() {
                return Phase::AuthorisationWithdrawn;
            }
            return Phase::Requested;
        };
        match furthest {
            3 if self.last_check_in.is_some() => Phase::CheckedIn,
            3 => Phase::InVisit,
            2 => Phase::Outside,
            _ => Phase::Departed,
        }
    }

    fn assigned(&self, staff: &StaffId) -> Result<StaffProgress, LifecycleError> {
        self.progress(staff)
            .ok_or_else(|| LifecycleError::NotOnVisit(staff.clone()))
    }

    /// The visit can still go ahead for someone who has not set off.
    fn open_for_setting_off(&self) -> Result<(), LifecycleError> {
        if self.declined.is_some() {
            return Err(LifecycleError::Declined);
        }
        if self.cancelled.is_some() {
            return Err(LifecycleError::Cancelled);
        }
        if self.everyone_left() {
            return Err(LifecycleError::Finished);
        }
        Ok(())
    }

    /// A step by someone already out: fine while they are watched, refused once the visit is over for them.
    fn open_for(&self, staff: &StaffId, progress: StaffProgress) -> Result<(), LifecycleError> {
        if progress.is_out() {
            if self.part_ended(staff).is_some() {
                return Err(LifecycleError::PartAlreadyEnded);
            }
            return match self.cancelled {
                Some(_) => Err(LifecycleError::Cancelled),
                None => Ok(()),
            };
        }
        self.open_for_setting_off()
    }

    /// Nobody is out on the visit (set off and their part not ended), so the office may still change the
    /// plan: otherwise the first one out is named.
    fn nobody_out(&self) -> Result<(), LifecycleError> {
        match self
            .staff
            .iter()
            .find(|(staff, p)| p.is_out() && self.part_ended(staff).is_none())
        {
            Some((out, _)) => Err(LifecycleError::SomeoneOut(out.clone())),
            None => Ok(()),
        }
    }

    fn first_inside(&self) -> Option<&StaffId> {
        self.staff
            .iter()
            .find(|(_, p)| p.is_inside())
            .map(|(staff, _)| staff)
    }
}

fn needs_words(text: &str) -> Result<(), LifecycleError> {
    if text.trim().is_empty() {
        Err(LifecycleError::NoteRequired)
    } else {
        Ok(())
    }
}

/// Checks `command` against `state` under `policy` at time `now` and returns the events it causes.
pub fn decide(
    state: &VisitState,
    command: &Command,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<Vec<VisitEvent>, LifecycleError> {
    let event = match command {
        Command::Authorise {
            by,
            lone_visit_approved,
        } => {
            state.open_for_setting_off()?;
            if state.authorised.is_some() {
                return Err(LifecycleError::AlreadyAuthorised);
            }
            let wanted = policy.staff_per_visit;
            if state.staff.len() < usize::from(wanted) && !lone_visit_approved {
                return Err(if state.staff.len() == 1 {
                    LifecycleError::LoneVisitNeedsApproval
                } else {
                    LifecycleError::FewerStaffThanPolicy(wanted)
                });
            }
            VisitEvent::Authorised {
                by: by.clone(),
                lone_visit_approved: *lone_visit_approved,
            }
        }
        Command::Decline { by, reason } => {
            state.open_for_setting_off()?;
            if state.authorised.is_some() {
                return Err(LifecycleError::AlreadyAuthorised);
            }
            state.nobody_out()?;
            needs_words(reason)?;
            VisitEvent::Declined {
                by: by.clone(),
                reason: reason.clone(),
            }
        }
        Command::WithdrawAuthorisation { by, reason } => {
            state.open_for_setting_off()?;
            if state.authorised.is_none() {
                return Err(LifecycleError::NotAuthorised);
            }
            state.nobody_out()?;
            needs_words(reason)?;
            VisitEvent::AuthorisationWithdrawn {
                by: by.clone(),
                reason: reason.clone(),
            }
        }
        Command::CallOff { by, reason } => {
            state.open_for_setting_off()?;
            if let Some(inside) = state.first_inside() {
                return Err(LifecycleError::SomeoneInside(inside.clone()));
            }
            needs_words(reason)?;
            VisitEvent::CalledOff {
                by: by.clone(),
                reason: reason.clone(),
            }
        }
        Command::Reschedule { by, agreed_time } => {
            state.open_for_setting_off()?;
            state.nobody_out()?;
            VisitEvent::Rescheduled {
                by: by.clone(),
                agreed_time: *agreed_time,
            }
        }
        Command::UpdateBriefing { by, version } => {
            state.open_for_setting_off()?;
            if *version <= state.briefing_version {
                return Err(LifecycleError::StaleBriefingVersion);
            }
            VisitEvent::BriefingUpdated {
                by: by.clone(),
                version: *version,
            }
        }
        Command::CloseAlerts { by, outcome, note } => {
            let alerts: Vec<AlertRef> = state.active_duress().map(Duress::alert_ref).collect();
            if alerts.is_empty() {
                return Err(LifecycleError::NoDuress);
            }
            VisitEvent::AlertsClosed {
                by: by.clone(),
                outcome: *outcome,
                note: note.clone(),
                alerts,
            }
        }
        Command::ConfirmBriefing { staff, ticked } => {
            let progress = state.assigned(staff)?;
            state.open_for_setting_off()?;
            // The checklist is for before the door: once on the way it is too late to be useful.
            if progress != StaffProgress::NotStarted {
                return Err(LifecycleError::AlreadyDeparted(staff.clone()));
            }
            if !BriefingCheck::required(policy)
                .iter()
                .all(|check| ticked.contains(check))
            {
                return Err(LifecycleError::BriefingIncomplete);
            }
            let mut ticked = ticked.clone();
            ticked.sort();
            ticked.dedup();
            VisitEvent::BriefingRead {
                staff: staff.clone(),
                ticked,
                version: state.briefing_version,
            }
        }
        Command::RunningLate {
            staff,
            expected_arrival,
        } => {
            let progress = state.assigned(staff)?;
            state.open_for(staff, progress)?;
            match progress {
                StaffProgress::NotStarted | StaffProgress::Departed { .. } => {}
                _ => return Err(LifecycleError::AlreadyArrived(staff.clone())),
            }
            if *expected_arrival <= now {
                return Err(LifecycleError::ArrivalInThePast);
            }
            if *expected_arrival > now + MAX_ARRIVAL_AHEAD {
                return Err(LifecycleError::ArrivalTooFarAhead);
            }
            VisitEvent::RunningLate {
                staff: staff.clone(),
                expected_arrival: *expected_arrival,
            }
        }
        Command::Depart {
            staff,
            expected_arrival,
            expected_end,
        } => {
            let progress = state.assigned(staff)?;
            state.open_for_setting_off()?;
            if state.authorised.is_none() {
                return Err(LifecycleError::NotAuthorised);
            }
            if progress != StaffProgress::NotStarted {
                return Err(LifecycleError::AlreadyDeparted(staff.clone()));
            }
            if state.part_ended(staff).is_some() {
                return Err(LifecycleError::PartAlreadyEnded);
            }
            // A briefing the office changed since this person read it must be read again first.
            if state.briefing_read.contains_key(staff)
                && state.briefing_read_version.get(staff).copied().unwrap_or(0)
                    < state.briefing_version
            {
                return Err(LifecycleError::BriefingChanged);
            }
            if expected_end <= expected_arrival {
                return Err(LifecycleError::EndBeforeArrival);
            }
            if *expected_arrival > now + MAX_ARRIVAL_AHEAD {
                return Err(LifecycleError::ArrivalTooFarAhead);
            }
            VisitEvent::Departed {
                staff: staff.clone(),
                expected_arrival: *expected_arrival,
                expected_end: *expected_end,
            }
        }
        Command::ArriveOutside { staff } => {
            let progress = state.assigned(staff)?;
            state.open_for(staff, progress)?;
            check_can_arrive(staff, progress)?;
            VisitEvent::ArrivedOutside {
                staff: staff.clone(),
            }
        }
        Command::ArriveTogether { by, staff } => {
            let by_progress = state.assigned(by)?;
            state.open_for(by, by_progress)?;
            // The sender may already be at the door: this is how a pair confirms a partner whose phone
            // has no signal.
            match by_progress {
                StaffProgress::NotStarted => return Err(LifecycleError::NotDeparted(by.clone())),
                StaffProgress::Departed { .. } | StaffProgress::Outside { .. } => {}
                _ => return Err(LifecycleError::AlreadyArrived(by.clone())),
            }
            let mut everyone = staff.clone();
            everyone.retain(|s| s != by);
            everyone.dedup();
            for other in &everyone {
                // A partner this phone has not heard set off may well have (their phone may have no
                // signal): the vouch is recorded, and counts once their own phone says they set off.
                if state.assigned(other)?.rank() > 2 {
                    return Err(LifecycleError::AlreadyArrived(other.clone()));
                }
            }
            everyone.insert(0, by.clone());
            VisitEvent::ArrivedTogether {
                by: by.clone(),
                staff: everyone,
            }
        }
        Command::StartVisit { by } => {
            let progress = state.assigned(by)?;
            state.open_for(by, progress)?;
            if !progress.is_outside() {
                return Err(if progress.is_inside() {
                    LifecycleError::AlreadyStarted
                } else {
                    LifecycleError::NotDeparted(by.clone())
                });
            }
            if state.started_at.is_some() {
                // Where the pair need not wait for each other, a late arrival joins the visit under way.
                return Ok(vec![VisitEvent::VisitStarted {
                    by: by.clone(),
                    staff: vec![by.clone()],
                }]);
            }
            let expected: Vec<&StaffId> = state
                .staff
                .keys()
                .filter(|staff| state.part_ended(staff).is_none())
                .collect();
            // At the door: outside on this phone's record, or vouched for by someone who is.
            let here = |staff: &StaffId| {
                state.progress(staff).is_some_and(|p| p.is_outside())
                    || state.vouch_pending.get(staff).is_some_and(|voucher| {
                        state.progress(voucher).is_some_and(|p| p.is_outside())
                    })
            };
            if policy.pair_waits_outside_until_all_arrived {
                if let Some(missing) = expected.iter().find(|staff| !here(staff)) {
                    return Err(LifecycleError::PartnerNotArrived((*missing).clone()));
                }
            }
            VisitEvent::VisitStarted {
                by: by.clone(),
                staff: expected.into_iter().filter(|s| here(s)).cloned().collect(),
            }
        }
        Command::CheckIn { staff } => {
            let progress = state.assigned(staff)?;
            match progress {
                StaffProgress::Inside { .. } => VisitEvent::CheckedIn {
                    staff: staff.clone(),
                },
                StaffProgress::Left { .. } => {
                    return Err(LifecycleError::AlreadyLeft(staff.clone()))
                }
                _ => return Err(LifecycleError::NotInside(staff.clone())),
            }
        }
        Command::MissCheckIn { staff, due_at } => {
            state.assigned(staff)?;
            if state.started_at.is_none() {
                return Err(LifecycleError::NotStarted);
            }
            if state.everyone_left() {
                return Err(LifecycleError::Finished);
            }
            VisitEvent::CheckInMissed {
                staff: staff.clone(),
                due_at: *due_at,
            }
        }
        Command::RaiseDuress { staff, via } => {
            // Never refused for anyone on the visit, whatever the visit's state: a colleague in danger
            // after a "cancel" or an "I've left" must still be heard.
            state.assigned(staff)?;
            VisitEvent::DuressRaised {
                staff: staff.clone(),
                via: *via,
            }
        }
        Command::StandDownDuress { staff, note } => {
            state.assigned(staff)?;
            let active: Vec<&Duress> = state.active_duress().collect();
            let Some(first) = active.first() else {
                return Err(LifecycleError::NoDuress);
            };
            let mine: Vec<AlertRef> = active
                .iter()
                .filter(|alert| alert.may_be_stood_down_by(staff).is_ok())
                .map(|alert| alert.alert_ref())
                .collect();
            if mine.is_empty() {
                return Err(first
                    .may_be_stood_down_by(staff)
                    .err()
                    .unwrap_or(LifecycleError::NoDuress));
            }
            needs_words(note)?;
            VisitEvent::DuressStoodDown {
                staff: staff.clone(),
                note: note.clone(),
                alerts: mine,
            }
        }
        Command::Leave { staff } => {
            // Whatever else happened (a partner's cancel, the office calling the visit off), someone inside
            // can always say they have left.
            match state.assigned(staff)? {
                StaffProgress::Inside { .. } => VisitEvent::Left {
                    staff: staff.clone(),
                },
                StaffProgress::Left { .. } => {
                    return Err(LifecycleError::AlreadyLeft(staff.clone()))
                }
                _ => return Err(LifecycleError::NotInside(staff.clone())),
            }
        }
        Command::Cancel {
            staff,
            reason,
            note,
        } => {
            let progress = state.assigned(staff)?;
            match progress {
                StaffProgress::Inside { .. } => return Err(LifecycleError::CancelAfterStart),
                StaffProgress::Left { .. } => {
                    return Err(LifecycleError::AlreadyLeft(staff.clone()))
                }
                _ => {}
            }
            if state.declined.is_some() {
                return Err(LifecycleError::Declined);
            }
            if state.part_ended(staff).is_some() || state.over_for(staff) {
                return Err(if state.cancelled.is_some() {
                    LifecycleError::Cancelled
                } else {
                    LifecycleError::PartAlreadyEnded
                });
            }
            if reason.needs_note() && note.trim().is_empty() {
                return Err(LifecycleError::ReasonNeedsNote);
            }
            VisitEvent::Cancelled {
                staff: staff.clone(),
                reason: *reason,
                note: note.clone(),
            }
        }
        Command::WriteUp { staff, write_up } => {
            let progress = state.assigned(staff)?;
            // The writer's own "left" is enough: a pair out of signal cannot learn that the partner has
            // left too, and the office holds the partner's deadline until their own "left" arrives.
            let over = state.cancelled.is_some()
                || state.everyone_left()
                || state.part_ended(staff).is_some()
                || matches!(progress, StaffProgress::Left { .. });
            if !over {
                return Err(LifecycleError::WriteUpTooEarly);
            }
            let went_in = matches!(progress, StaffProgress::Left { .. });
            if went_in && (write_up.seen.trim().is_empty() || write_up.discussed.trim().is_empty())
            {
                return Err(LifecycleError::WriteUpIncomplete);
            }
            VisitEvent::WrittenUp {
                staff: staff.clone(),
                write_up: write_up.clone(),
            }
        }
    };
    Ok(vec![event])
}

fn check_can_arrive(staff: &StaffId, progress: StaffProgress) -> Result<(), LifecycleError> {
    match progress {
        StaffProgress::NotStarted => Err(LifecycleError::NotDeparted(staff.clone())),
        StaffProgress::Departed { .. } => Ok(()),
        _ => Err(LifecycleError::AlreadyArrived(staff.clone())),
    }
}

/// One recorded event as a replay folds it in: when it counts as having happened (for the office: the
/// phone's time corrected by the phone's clock offset, never later than the office received it), how far the
/// times inside it must move to match, and its id so a judgement on it can name it.
#[derive(Debug, Clone, Copy)]
pub struct Fact<'a> {
    pub event: &'a VisitEvent,
    pub at: DateTime<Utc>,
    /// Added to the times the event carries (expected arrival, expected end, ...): the same correction
    /// that turned the phone's recorded time into `at`.
    pub clock_shift: TimeDelta,
    pub id: Option<EventId>,
}

impl<'a> Fact<'a> {
    /// An event taken at its word: recorded at `at`, by a clock that needs no correction.
    pub fn new(event: &'a VisitEvent, at: DateTime<Utc>) -> Self {
        Self {
            event,
            at,
            clock_shift: TimeDelta::zero(),
            id: None,
        }
    }
}

/// Folds one event, recorded at `at`, into the state. Total: never fails, never panics.
pub fn apply(state: VisitState, event: &VisitEvent, at: DateTime<Utc>) -> VisitState {
    apply_fact(state, Fact::new(event, at))
}

/// [`apply`] for a fact with a clock correction and an id. Total: never fails, never panics.
pub fn apply_fact(mut state: VisitState, fact: Fact<'_>) -> VisitState {
    let Fact {
        event,
        at,
        clock_shift,
        id,
    } = fact;
    let shifted = |t: DateTime<Utc>| t.checked_add_signed(clock_shift).unwrap_or(t);
    let heard_from_staff = !event.is_office_only() && state.staff.contains_key(event.actor());
    let mut flag = |state: &mut VisitState, staff: &StaffId, reason: String| {
        state.flags.push(NotHonoured {
            event: id,
            staff: staff.clone(),
            step: event.summary().to_owned(),
            reason,
            at,
        });
    };
    match event {
        VisitEvent::Authorised {
            by,
            lone_visit_approved,
        } => {
            if state.authorised.is_none() && state.declined.is_none() {
                state.authorised = Some(AuthorisedBy {
                    by: by.clone(),
                    at,
                    lone_visit_approved: *lone_visit_approved,
                });
            }
        }
        VisitEvent::Declined { by, reason } => {
            state.declined.get_or_insert(OfficeDecision {
                by: by.clone(),
                at,
                reason: reason.clone(),
            });
        }
        VisitEvent::AuthorisationWithdrawn { by, reason } => {
            state.authorised = None;
            state.authorisation_withdrawn = Some(OfficeDecision {
                by: by.clone(),
                at,
                reason: reason.clone(),
            });
        }
        VisitEvent::CalledOff { by, .. } => {
            if state.cancelled.is_none() {
                state.cancelled = Some((CancelReason::CalledOffByOffice, at));
                state.cancelled_by = Some(by.clone());
            }
            // Those not yet out need not go; anyone on the way or at the door stays watched until their
            // own step says they are coming back.
            let not_out: Vec<StaffId> = state
                .staff
                .iter()
                .filter(|(_, p)| **p == StaffProgress::NotStarted)
                .map(|(s, _)| s.clone())
                .collect();
            for staff in not_out {
                end_part(&mut state, &staff, at, CancelReason::CalledOffByOffice, by);
            }
        }
        VisitEvent::Rescheduled { .. } => {
            // A new time is agreed: earlier "running late" times no longer apply.
            state.running_late.clear();
        }
        VisitEvent::BriefingUpdated { version, .. } => {
            state.briefing_version = state.briefing_version.max(*version);
        }
        VisitEvent::AlertsClosed { by, alerts, .. } => {
            for alert in alerts {
                state.stand_down_claims.push(StandDownClaim {
                    alert: alert.clone(),
                    by: by.clone(),
                    office: true,
                    at,
                    event: id,
                });
            }
            settle_stand_downs(&mut state);
        }
        VisitEvent::BriefingRead { staff, version, .. } => {
            if state.staff.contains_key(staff) {
                state.briefing_read.entry(staff.clone()).or_insert(at);
                let read = state
                    .briefing_read_version
                    .entry(staff.clone())
                    .or_insert(0);
                *read = (*read).max(*version);
            }
        }
        VisitEvent::RunningLate {
            staff,
            expected_arrival,
        } => match state.progress(staff) {
            Some(StaffProgress::NotStarted | StaffProgress::Departed { .. }) => {
                let (arrival, clamped) = bounded(shifted(*expected_arrival), at, MAX_ARRIVAL_AHEAD);
                if clamped {
                    flag(
                        &mut state,
                        staff,
                        format!(
                            "a new arrival must be within {} hours; the office expects {staff} by {}",
                            MAX_ARRIVAL_AHEAD.num_hours(),
                            arrival.format("%H:%M UTC")
                        ),
                    );
                }
                state.running_late.insert(staff.clone(), arrival);
            }
            Some(_) => flag(&mut state, staff, format!("{staff} had already arrived")),
            None => {}
        },
        VisitEvent::Departed {
            staff,
            expected_arrival,
            expected_end,
        } => {
            if state.staff.contains_key(staff) {
                let (arrival, late_clamped) =
                    bounded(shifted(*expected_arrival), at, MAX_ARRIVAL_AHEAD);
                let (end, end_clamped) = bounded(shifted(*expected_end), at, MAX_END_AHEAD);
                let end = end.max(arrival + TimeDelta::minutes(1));
                if late_clamped || end_clamped {
                    flag(
                        &mut state,
                        staff,
                        format!(
                            "the times given were too far ahead; the office expects {staff} at the door by {}",
                            arrival.format("%H:%M UTC")
                        ),
                    );
                }
                if state.authorised.is_none() {
                    flag(
                        &mut state,
                        staff,
                        format!(
                            "{staff} set off although the visit is not authorised; watched all the same"
                        ),
                    );
                }
                advance(
                    &mut state,
                    staff,
                    StaffProgress::Departed {
                        at,
                        expected_arrival: arrival,
                        expected_end: end,
                    },
                );
                resolve_vouch(&mut state, staff, at);
            }
        }
        VisitEvent::ArrivedOutside { staff } => {
            advance(&mut state, staff, StaffProgress::Outside { at });
            resolve_vouch(&mut state, staff, at);
        }
        VisitEvent::ArrivedTogether { by, staff } => {
            advance(&mut state, by, StaffProgress::Outside { at });
            for other in staff.iter().filter(|s| *s != by) {
                match state.progress(other) {
                    Some(StaffProgress::Departed { .. }) => {
                        advance(&mut state, other, StaffProgress::Outside { at });
                        state.vouched_by.insert(other.clone(), by.clone());
                    }
                    // Only a partner who has set off can be vouched for: the office keeps expecting word
                    // from this one until their own phone says they set off.
                    Some(StaffProgress::NotStarted) => {
                        state.vouch_pending.insert(other.clone(), by.clone());
                        state.vouch_pending_notes.insert(
                            other.clone(),
                            NotHonoured {
                                event: id,
                                staff: by.clone(),
                                step: event.summary().to_owned(),
                                reason: format!(
                                    "{other}'s own phone has not said they set off: {other} counts as arrived only once it does"
                                ),
                                at,
                            },
                        );
                    }
                    _ => {}
                }
            }
        }
        VisitEvent::VisitStarted { by, staff } => {
            if state.staff.contains_key(by) {
                state.started_at.get_or_insert(at);
                advance(&mut state, by, StaffProgress::Inside { at });
            }
            for member in staff.iter().filter(|s| *s != by) {
                match state.progress(member) {
                    Some(StaffProgress::Outside { .. }) => {
                        advance(&mut state, member, StaffProgress::Inside { at })
                    }
                    Some(StaffProgress::NotStarted) if state.vouch_pending.contains_key(member) => {
                        state.went_in_vouched.insert(member.clone());
                    }
                    Some(StaffProgress::NotStarted | StaffProgress::Departed { .. }) => flag(
                        &mut state,
                        by,
                        format!("{member} was not at the door, so is not counted as inside"),
                    ),
                    _ => {}
                }
            }
        }
        VisitEvent::CheckedIn { .. } => {
            state.last_check_in = Some(state.last_check_in.map_or(at, |last| last.max(at)));
        }
        VisitEvent::CheckInMissed { .. } => state.missed_check_ins += 1,
        VisitEvent::DuressRaised { staff, via } => {
            let alert = Duress {
                raised_by: staff.clone(),
                raised_at: at,
                via: *via,
                stood_down_at: None,
            };
            if state.staff.contains_key(staff)
                && !state
                    .duress
                    .iter()
                    .any(|a| a.alert_ref() == alert.alert_ref())
            {
                state.duress.push(alert);
                state.duress.sort_by_key(Duress::alert_ref);
            }
            settle_stand_downs(&mut state);
        }
        VisitEvent::DuressStoodDown { staff, alerts, .. } => {
            for alert in alerts {
                state.stand_down_claims.push(StandDownClaim {
                    alert: alert.clone(),
                    by: staff.clone(),
                    office: false,
                    at,
                    event: id,
                });
            }
            settle_stand_downs(&mut state);
        }
        VisitEvent::Left { staff } => advance(&mut state, staff, StaffProgress::Left { at }),
        VisitEvent::Cancelled { staff, reason, .. } => {
            cancel_by(&mut state, staff, *reason, at, &mut flag)
        }
        VisitEvent::WrittenUp { write_up, .. } => {
            state.written_up_at = Some(state.written_up_at.map_or(at, |w| w.max(at)));
            state.safeguarding_concern |= write_up.safeguarding_concern;
        }
    }
    if heard_from_staff {
        state.last_contact = Some(state.last_contact.map_or(at, |last| last.max(at)));
    }
    state
}

/// A partner someone vouched for before their own phone said they set off: now that it has, the vouch
/// counts (outside from now, and inside if the pair went in on it).
fn resolve_vouch(state: &mut VisitState, staff: &StaffId, at: DateTime<Utc>) {
    let Some(voucher) = state.vouch_pending.remove(staff) else {
        return;
    };
    state.vouch_pending_notes.remove(staff);
    advance(state, staff, StaffProgress::Outside { at });
    state.vouched_by.insert(staff.clone(), voucher);
    if state.went_in_vouched.remove(staff) {
        advance(state, staff, StaffProgress::Inside { at });
    }
}

/// `time` kept within `[from, from + ahead]`, and whether it had to be moved down.
fn bounded(time: DateTime<Utc>, from: DateTime<Utc>, ahead: TimeDelta) -> (DateTime<Utc>, bool) {
    let latest = from + ahead;
    if time > latest {
        (latest, true)
    } else {
        (time.max(from), false)
    }
}

/// A person's cancel: it ends their own part; it calls the whole visit off only while nobody is inside,
/// and then also ends the parts of those who had not set off and of those at the door with them.
fn cancel_by(
    state: &mut VisitState,
    staff: &StaffId,
    reason: CancelReason,
    at: DateTime<Utc>,
    flag: &mut impl FnMut(&mut VisitState, &StaffId, String),
) {
    let Some(progress) = state.progress(staff) else {
        return;
    };
    match progress {
        StaffProgress::Inside { .. } => {
            flag(
                state,
                staff,
                "a visit that has started is ended with \"I've left\", not cancelled".into(),
            );
            return;
        }
        StaffProgress::Left { .. } => return,
        _ => {}
    }
    end_part(state, staff, at, reason, staff);
    let inside = state
        .staff
        .iter()
        .find(|(other, p)| *other != staff && p.is_inside())
        .map(|(other, _)| other.clone());
    if let Some(inside) = inside {
        flag(
            state,
            staff,
            format!("{inside} is in the visit: the cancel ended only {staff}'s own part"),
        );
        return;
    }
    if state.cancelled.is_none() {
        state.cancelled = Some((reason, at));
        state.cancelled_by = Some(staff.clone());
    }
    let at_the_door = progress.is_outside();
    let with_it: Vec<StaffId> = state
        .staff
        .iter()
        .filter(|(other, p)| {
            *other != staff && (**p == StaffProgress::NotStarted || (at_the_door && p.is_outside()))
        })
        .map(|(other, _)| other.clone())
        .collect();
    for other in with_it {
        end_part(state, &other, at, reason, staff);
    }
}

fn end_part(
    state: &mut VisitState,
    staff: &StaffId,
    at: DateTime<Utc>,
    reason: CancelReason,
    by: &StaffId,
) {
    if !state.staff.contains_key(staff) {
        return;
    }
    let replace = state
        .parts_ended
        .get(staff)
        .is_none_or(|ended| ended.at < at);
    if replace {
        state.parts_ended.insert(
            staff.clone(),
            PartEnded {
                at,
                reason,
                by: by.clone(),
            },
        );
    }
}

/// Works out which alerts stand down: those with a claim from the office, or from the person who raised
/// them with the button. Copies each alert's stand-down time onto it, for readers who look at one alert.
fn settle_stand_downs(state: &mut VisitState) {
    let mut stood_down: BTreeMap<AlertRef, DateTime<Utc>> = BTreeMap::new();
    for claim in &state.stand_down_claims {
        let Some(alert) = state.duress.iter().find(|d| d.alert_ref() == claim.alert) else {
            continue;
        };
        if claim.office || alert.may_be_stood_down_by(&claim.by).is_ok() {
            let when = stood_down.entry(claim.alert.clone()).or_insert(claim.at);
            *when = (*when).min(claim.at);
        }
    }
    state.stood_down = stood_down;
    for alert in &mut state.duress {
        alert.stood_down_at = state.stood_down.get(&alert.alert_ref()).copied();
    }
}

fn advance(state: &mut VisitState, staff: &StaffId, next: StaffProgress) {
    if let Some(progress) = state.staff.get_mut(staff) {
        if next.rank() > progress.rank() {
            *progress = next;
        }
    }
}

/// A recorded event as the lifecycle needs it: when, and a tie-break key that every device agrees on.
pub trait Recorded {
    fn event(&self) -> &VisitEvent;
    /// When it counts as having happened (see [`Fact::at`]).
    fn at(&self) -> DateTime<Utc>;
    /// Orders events recorded at the same instant (device id and sequence number).
    fn tie_break(&self) -> (String, u64);
    /// How far the times inside the event move to match [`Recorded::at`] (none by default).
    fn clock_shift(&self) -> TimeDelta {
        TimeDelta::zero()
    }
    /// The event's id, when known, so a judgement on it can name it.
    fn event_id(&self) -> Option<EventId> {
        None
    }
}

/// Rebuilds a visit's state from its events in any arrival order: they are sorted by time recorded, then by
/// device and sequence, so the phone and the office agree.
pub fn replay<'a, R: Recorded + 'a>(
    initial: VisitState,
    events: impl IntoIterator<Item = &'a R>,
) -> VisitState {
    let mut sorted: Vec<&R> = events.into_iter().collect();
    sorted.sort_by_cached_key(|r| (r.at(), r.tie_break()));
    sorted.into_iter().fold(initial, |state, r| {
        apply_fact(
            state,
            Fact {
                event: r.event(),
                at: r.at(),
                clock_shift: r.clock_shift(),
                id: r.event_id(),
            },
        )
    })
}
