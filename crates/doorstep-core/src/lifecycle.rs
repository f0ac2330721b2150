//! The visit lifecycle: one pure state machine shared by the phone and the office.
//!
//! `decide(state, command, now)` checks a command against the rules and returns the events it causes, or a
//! typed error saying why not. `apply(state, event)` folds one event in. `apply` is total: events are facts
//! that already happened on someone's phone (perhaps offline, perhaps before the office cancelled the visit),
//! so a replay never refuses one; only commands are refused. `replay` sorts a visit's events into one
//! canonical order first, so every device and the office rebuild the same state from the same set of events.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::StaffId;

/// Why a visit was called off before it began.
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
    Other,
}

impl CancelReason {
    pub const ALL: [CancelReason; 5] = [
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
            CancelReason::Other => "Other",
        }
    }

    /// Reasons that need words: the authoriser must be told why in writing.
    pub fn needs_note(self) -> bool {
        matches!(self, CancelReason::FeltUnsafe | CancelReason::Other)
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

    /// The words beside the tick, in the first person.
    pub fn label(self) -> &'static str {
        match self {
            BriefingCheck::RisksRead => "I've read the risks and controls",
            BriefingCheck::PetsArrangementKnown => "I know the pets arrangement",
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
    /// The duress PIN entered where a normal PIN was asked for.
    DuressPin,
}

/// The write-up after a visit, ready for the school's record system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct WriteUp {
    pub seen: String,
    pub discussed: String,
    pub agreements: String,
    /// Yes flags the visit to the designated safeguarding lead at once.
    pub safeguarding_concern: bool,
    /// An incident report for the authoriser, when something happened.
    pub incident: Option<String>,
}

/// Something a person (or the office) asks to do to a visit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    Authorise {
        by: StaffId,
        lone_visit_approved: bool,
    },
    /// Before leaving: the briefing is read and its checklist ticked (every item, or it is refused).
    ConfirmBriefing {
        staff: StaffId,
        ticked: Vec<BriefingCheck>,
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
    BriefingRead {
        staff: StaffId,
        ticked: Vec<BriefingCheck>,
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
        staff: Vec<StaffId>,
    },
    VisitStarted {
        by: StaffId,
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
    /// another phone with a skewed clock) is never stood down by mistake.
    DuressStoodDown {
        staff: StaffId,
        note: String,
        alerts: Vec<AlertRef>,
    },
    Left {
        staff: StaffId,
    },
    Cancelled {
        staff: StaffId,
        reason: CancelReason,
        note: String,
    },
    WrittenUp {
        staff: StaffId,
        write_up: WriteUp,
    },
}

impl VisitEvent {
    /// The person the event is about or made by.
    pub fn actor(&self) -> &StaffId {
        match self {
            VisitEvent::Authorised { by, .. }
            | VisitEvent::ArrivedTogether { by, .. }
            | VisitEvent::VisitStarted { by, .. } => by,
            VisitEvent::Departed { staff, .. }
            | VisitEvent::BriefingRead { staff, .. }
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

    /// Every staff id the event names, so the office can check they are all on the visit.
    pub fn staff_named(&self) -> Vec<&StaffId> {
        let mut named = vec![self.actor()];
        if let VisitEvent::ArrivedTogether { staff, .. } | VisitEvent::VisitStarted { staff, .. } =
            self
        {
            named.extend(staff.iter());
        }
        named
    }

    /// A duress event jumps the outbox queue.
    pub fn is_urgent(&self) -> bool {
        matches!(self, VisitEvent::DuressRaised { .. })
    }

    /// Short words for a timeline or a status line; never includes free text a family could be named in.
    pub fn summary(&self) -> &'static str {
        match self {
            VisitEvent::Authorised { .. } => "authorised",
            VisitEvent::BriefingRead { .. } => "read the briefing",
            VisitEvent::Departed { .. } => "left for the visit",
            VisitEvent::ArrivedOutside { .. } => "outside",
            VisitEvent::ArrivedTogether { .. } => "arrived together",
            VisitEvent::VisitStarted { .. } => "went in",
            VisitEvent::CheckedIn { .. } => "checked in",
            VisitEvent::CheckInMissed { .. } => "missed a check-in",
            VisitEvent::DuressRaised { .. } => "DURESS",
            VisitEvent::DuressStoodDown { .. } => "duress stood down",
            VisitEvent::Left { .. } => "left the property",
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

    pub fn is_outside(&self) -> bool {
        matches!(self, StaffProgress::Outside { .. })
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
    Authorised,
    Departed,
    Outside,
    InVisit,
    CheckedIn,
    Duress,
    Left,
    Cancelled { reason: CancelReason },
    WrittenUp,
}

impl Phase {
    pub fn label(&self) -> &'static str {
        match self {
            Phase::Requested => "Awaiting authorisation",
            Phase::Authorised => "Authorised",
            Phase::Departed => "On the way",
            Phase::Outside => "Outside",
            Phase::InVisit => "In the visit",
            Phase::CheckedIn => "In the visit, checked in",
            Phase::Duress => "Duress",
            Phase::Left => "Left",
            Phase::Cancelled { .. } => "Cancelled",
            Phase::WrittenUp => "Written up",
        }
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
}

/// Everything known about one visit, rebuilt from its events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct VisitState {
    pub staff: BTreeMap<StaffId, StaffProgress>,
    pub authorised: Option<AuthorisedBy>,
    /// Who has ticked the briefing checklist, and when (the first time counts).
    #[serde(default)]
    pub briefing_read: BTreeMap<StaffId, DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub last_check_in: Option<DateTime<Utc>>,
    pub missed_check_ins: u32,
    /// Every duress alert raised on this visit, oldest first.
    pub duress: Vec<Duress>,
    /// Stand-downs, by the alert they end, with when. Kept apart from `duress` so that the order events
    /// arrive in never matters: a stand-down replayed before its alert still ends it.
    #[serde(with = "stood_down_pairs")]
    #[cfg_attr(feature = "schema", schemars(with = "Vec<(AlertRef, DateTime<Utc>)>"))]
    pub stood_down: BTreeMap<AlertRef, DateTime<Utc>>,
    pub cancelled: Option<(CancelReason, DateTime<Utc>)>,
    pub written_up_at: Option<DateTime<Utc>>,
    pub safeguarding_concern: bool,
    /// The last time anyone on the visit was heard from (any event by an assigned member of staff).
    pub last_contact: Option<DateTime<Utc>>,
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

/// Why a command was refused. Each says what is wrong in words a person on a doorstep can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    #[error("this visit has not been authorised yet")]
    NotAuthorised,
    #[error("this visit is already authorised")]
    AlreadyAuthorised,
    #[error("a visit by one person needs the authoriser's explicit lone-visit approval")]
    LoneVisitNeedsApproval,
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
    #[error("there is no duress alert to stand down")]
    NoDuress,
    #[error("say why the visit was cancelled: the authoriser must be told in writing")]
    ReasonNeedsNote,
    #[error("a visit that has started is ended with \"I've left\", not cancelled")]
    CancelAfterStart,
    #[error("the write-up comes after you have left or the visit was cancelled")]
    WriteUpTooEarly,
    #[error("the write-up needs who was seen and what was discussed")]
    WriteUpIncomplete,
    #[error("a note is required")]
    NoteRequired,
    #[error("tick every item on the briefing checklist first")]
    BriefingIncomplete,
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
            briefing_read: BTreeMap::new(),
            started_at: None,
            last_check_in: None,
            missed_check_ins: 0,
            duress: Vec::new(),
            stood_down: BTreeMap::new(),
            cancelled: None,
            written_up_at: None,
            safeguarding_concern: false,
            last_contact: None,
        }
    }

    pub fn progress(&self, staff: &StaffId) -> Option<StaffProgress> {
        self.staff.get(staff).copied()
    }

    /// The alerts not yet stood down.
    pub fn active_duress(&self) -> impl Iterator<Item = &Duress> + '_ {
        self.duress
            .iter()
            .filter(|alert| !self.stood_down.contains_key(&alert.alert_ref()))
    }

    pub fn duress_active(&self) -> bool {
        self.active_duress().next().is_some()
    }

    fn everyone_left(&self) -> bool {
        self.started_at.is_some()
            && self
                .staff
                .values()
                .filter(|p| !matches!(p, StaffProgress::NotStarted))
                .all(|p| matches!(p, StaffProgress::Left { .. }))
    }

    /// The visit's phase, for boards and screens. An active duress outranks everything.
    pub fn phase(&self) -> Phase {
        if self.duress_active() {
            return Phase::Duress;
        }
        // A write-up can come before a partner's "left" reaches the writer's phone: until everyone has left
        // (or the visit was cancelled), the visit is still under way.
        if self.written_up_at.is_some() && (self.cancelled.is_some() || self.everyone_left()) {
            return Phase::WrittenUp;
        }
        if let Some((reason, _)) = self.cancelled {
            return Phase::Cancelled { reason };
        }
        if self.everyone_left() {
            return Phase::Left;
        }
        let furthest = self
            .staff
            .values()
            .map(StaffProgress::rank)
            .max()
            .unwrap_or(0);
        match furthest {
            3 | 4 if self.last_check_in.is_some() => Phase::CheckedIn,
            3 | 4 => Phase::InVisit,
            2 => Phase::Outside,
            1 => Phase::Departed,
            _ if self.authorised.is_some() => Phase::Authorised,
            _ => Phase::Requested,
        }
    }

    fn assigned(&self, staff: &StaffId) -> Result<StaffProgress, LifecycleError> {
        self.progress(staff)
            .ok_or_else(|| LifecycleError::NotOnVisit(staff.clone()))
    }

    fn still_open(&self) -> Result<(), LifecycleError> {
        if self.cancelled.is_some() {
            return Err(LifecycleError::Cancelled);
        }
        // A write-up alone does not close the visit: a partner may still be inside.
        if self.everyone_left() {
            return Err(LifecycleError::Finished);
        }
        Ok(())
    }
}

/// Checks `command` against `state` at time `now` and returns the events it causes.
pub fn decide(
    state: &VisitState,
    command: &Command,
    now: DateTime<Utc>,
) -> Result<Vec<VisitEvent>, LifecycleError> {
    let _ = now; // time is recorded in the event envelope; no rule here reads the clock yet.
    let event = match command {
        Command::Authorise {
            by,
            lone_visit_approved,
        } => {
            state.still_open()?;
            if state.authorised.is_some() {
                return Err(LifecycleError::AlreadyAuthorised);
            }
            if state.staff.len() < 2 && !lone_visit_approved {
                return Err(LifecycleError::LoneVisitNeedsApproval);
            }
            VisitEvent::Authorised {
                by: by.clone(),
                lone_visit_approved: *lone_visit_approved,
            }
        }
        Command::ConfirmBriefing { staff, ticked } => {
            let progress = state.assigned(staff)?;
            state.still_open()?;
            // The checklist is for before the door: once on the way it is too late to be useful.
            if progress != StaffProgress::NotStarted {
                return Err(LifecycleError::AlreadyDeparted(staff.clone()));
            }
            if !BriefingCheck::ALL
                .iter()
                .all(|check| ticked.contains(check))
            {
                return Err(LifecycleError::BriefingIncomplete);
            }
            VisitEvent::BriefingRead {
                staff: staff.clone(),
                ticked: ticked.clone(),
            }
        }
        Command::Depart {
            staff,
            expected_arrival,
            expected_end,
        } => {
            let progress = state.assigned(staff)?;
            state.still_open()?;
            if state.authorised.is_none() {
                return Err(LifecycleError::NotAuthorised);
            }
            if progress != StaffProgress::NotStarted {
                return Err(LifecycleError::AlreadyDeparted(staff.clone()));
            }
            if expected_end <= expected_arrival {
                return Err(LifecycleError::EndBeforeArrival);
            }
            VisitEvent::Departed {
                staff: staff.clone(),
                expected_arrival: *expected_arrival,
                expected_end: *expected_end,
            }
        }
        Command::ArriveOutside { staff } => {
            let progress = state.assigned(staff)?;
            state.still_open()?;
            check_can_arrive(staff, progress)?;
            VisitEvent::ArrivedOutside {
                staff: staff.clone(),
            }
        }
        Command::ArriveTogether { by, staff } => {
            let by_progress = state.assigned(by)?;
            state.still_open()?;
            // The sender may already be at the door: this is how a pair confirms a partner whose phone
            // has no signal.
            match by_progress {
                StaffProgress::NotStarted => return Err(LifecycleError::NotDeparted(by.clone())),
                StaffProgress::Departed { .. } | StaffProgress::Outside { .. } => {}
                _ => return Err(LifecycleError::AlreadyArrived(by.clone())),
            }
            let mut everyone = staff.clone();
            everyone.retain(|s| s != by);
            for other in &everyone {
                let progress = state.assigned(other)?;
                if progress.rank() > 2 {
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
            state.still_open()?;
            if state.started_at.is_some() {
                return Err(LifecycleError::AlreadyStarted);
            }
            if !progress.is_outside() {
                return Err(LifecycleError::NotDeparted(by.clone()));
            }
            if let Some((missing, _)) = state.staff.iter().find(|(_, p)| !p.is_outside()) {
                return Err(LifecycleError::PartnerNotArrived(missing.clone()));
            }
            VisitEvent::VisitStarted {
                by: by.clone(),
                staff: state.staff.keys().cloned().collect(),
            }
        }
        Command::CheckIn { staff } => {
            let progress = state.assigned(staff)?;
            state.still_open()?;
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
            state.still_open()?;
            if state.started_at.is_none() {
                return Err(LifecycleError::NotStarted);
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
            if !state.duress_active() {
                return Err(LifecycleError::NoDuress);
            }
            if note.trim().is_empty() {
                return Err(LifecycleError::NoteRequired);
            }
            VisitEvent::DuressStoodDown {
                staff: staff.clone(),
                note: note.clone(),
                alerts: state.active_duress().map(Duress::alert_ref).collect(),
            }
        }
        Command::Leave { staff } => {
            let progress = state.assigned(staff)?;
            if state.cancelled.is_some() {
                return Err(LifecycleError::Cancelled);
            }
            match progress {
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
            state.assigned(staff)?;
            state.still_open()?;
            if state.started_at.is_some() {
                return Err(LifecycleError::CancelAfterStart);
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
                || matches!(progress, StaffProgress::Left { .. });
            if !over {
                return Err(LifecycleError::WriteUpTooEarly);
            }
            if write_up.seen.trim().is_empty() && state.cancelled.is_none()
                || write_up.discussed.trim().is_empty() && state.cancelled.is_none()
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

/// Folds one event, recorded at `at`, into the state. Total: never fails, never panics.
pub fn apply(mut state: VisitState, event: &VisitEvent, at: DateTime<Utc>) -> VisitState {
    let heard_from_staff = state.staff.contains_key(event.actor());
    match event {
        VisitEvent::Authorised {
            by,
            lone_visit_approved,
        } => {
            if state.authorised.is_none() {
                state.authorised = Some(AuthorisedBy {
                    by: by.clone(),
                    at,
                    lone_visit_approved: *lone_visit_approved,
                });
            }
        }
        VisitEvent::BriefingRead { staff, .. } => {
            if state.staff.contains_key(staff) {
                state.briefing_read.entry(staff.clone()).or_insert(at);
            }
        }
        VisitEvent::Departed {
            staff,
            expected_arrival,
            expected_end,
        } => advance(
            &mut state,
            staff,
            StaffProgress::Departed {
                at,
                expected_arrival: *expected_arrival,
                expected_end: *expected_end,
            },
        ),
        VisitEvent::ArrivedOutside { staff } => {
            advance(&mut state, staff, StaffProgress::Outside { at })
        }
        VisitEvent::ArrivedTogether { staff, .. } => {
            for member in staff {
                advance(&mut state, member, StaffProgress::Outside { at });
            }
        }
        VisitEvent::VisitStarted { staff, .. } => {
            state.started_at.get_or_insert(at);
            for member in staff {
                advance(&mut state, member, StaffProgress::Inside { at });
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
            if !state
                .duress
                .iter()
                .any(|a| a.alert_ref() == alert.alert_ref())
            {
                state.duress.push(alert);
                state.duress.sort_by_key(Duress::alert_ref);
            }
            sync_stood_down(&mut state);
        }
        VisitEvent::DuressStoodDown { alerts, .. } => {
            for alert in alerts {
                let when = state.stood_down.entry(alert.clone()).or_insert(at);
                *when = (*when).min(at);
            }
            sync_stood_down(&mut state);
        }
        VisitEvent::Left { staff } => advance(&mut state, staff, StaffProgress::Left { at }),
        VisitEvent::Cancelled { reason, .. } => {
            state.cancelled.get_or_insert((*reason, at));
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

/// Copies each alert's stand-down time onto it, for readers who look at one alert.
fn sync_stood_down(state: &mut VisitState) {
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
    fn at(&self) -> DateTime<Utc>;
    /// Orders events recorded at the same instant (device id and sequence number).
    fn tie_break(&self) -> (String, u64);
}

/// Rebuilds a visit's state from its events in any arrival order: they are sorted by time recorded, then by
/// device and sequence, so the phone and the office agree.
pub fn replay<'a, R: Recorded + 'a>(
    initial: VisitState,
    events: impl IntoIterator<Item = &'a R>,
) -> VisitState {
    let mut sorted: Vec<&R> = events.into_iter().collect();
    sorted.sort_by_cached_key(|r| (r.at(), r.tie_break()));
    sorted
        .into_iter()
        .fold(initial, |state, r| apply(state, r.event(), r.at()))
}
