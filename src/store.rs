//! The app's store: the only code that writes the phone's event log. Screens and the sync transport call it;
//! neither touches `EventLog` or SQLite.
//!
//! A visit's state is always rebuilt the same way: the events the office sent (a partner's included), at the
//! office's times, and the events this phone recorded that the office has not sent back yet, at this phone's
//! time corrected by its measured clock offset ([`OfficeClock`]), deduplicated by event id and replayed
//! through the core lifecycle. An action is decided against that state at the office's time and recorded
//! before [`AppStore::perform`] returns, so a screen may say it happened as soon as the call comes back.
//!
//! Every method here takes `now` as this phone's own clock reads it; the store turns it into the office's
//! time itself. The times inside a command are the office's, as the screens show them.
//!
//! A phone's store lives in its sealed data folder ([`Vault`]): the event log sealed with the data key,
//! the PINs as argon2 hashes in a sealed file ([`crate::pins`]), the credential ([`Credential`], renewed
//! by the office while in use). It deletes all of it when the office says the phone was revoked
//! ([`AppStore::forget_everything`]), and the briefings and addresses by itself when it has not reached
//! the office for the policy's number of days ([`AppStore::forget_briefings_if_out_of_touch`]). Words
//! typed on this phone (a write-up, a note) leave its files once the office confirms them; the screens
//! keep showing them until the app is closed, from memory only.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};
use doorstep_core::domain::{Briefing, PhoneNumber, Role, SchoolTimeZone, Visit, VisitStaff};
use doorstep_core::event::{EnvelopeError, EventEnvelope, TrustedEvent};
use doorstep_core::event_log::{Delivery, EventLog, LogError, OutboxStatus};
use doorstep_core::ids::{DeviceId, DeviceSeq, EventId, StaffId, VisitId};
use doorstep_core::lifecycle::{
    self, Command, DuressVia, LifecycleError, OfficeDecision, Phase, VisitEvent, VisitState,
};
use doorstep_core::policy::Policy;
use doorstep_core::protocol::{DeviceCredential, HeldVisit, PhoneHoldings};
use doorstep_core::reconcile::{self, PhoneEvent, Reconciliation};
use doorstep_core::schedule::{self, Expecting};
use doorstep_core::sync_plan::OutboxUpdate;
use tokio::sync::{watch, Notify};

use crate::enrolment::Credential;
use crate::office_clock::OfficeClock;
use crate::pins::{check_new_pins, PinHashes};
pub use crate::pins::{PinError, PinKind};
use crate::vault::{Vault, VaultError, WipeReason, DATABASE_FILE, PINS_FILE, SETTINGS_FILE};

/// Why an action was not recorded. Every message can be shown as it is to the person holding the phone.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("Not recorded: {0}.")]
    Refused(#[from] LifecycleError),
    #[error("Not recorded: this phone does not hold visit {0}. It may have been changed at the office; wait for the next sync.")]
    UnknownVisit(VisitId),
    #[error("Not recorded: this phone could not save it ({0}). Tell the office by phone.")]
    Storage(LogError),
    #[error("Not recorded: {0}. Check the phone's date and time.")]
    Invalid(EnvelopeError),
    #[error("Not recorded: there was nothing to record.")]
    NothingToRecord,
    #[error("Not recorded: that PIN is not right. Try again.")]
    WrongPin,
    #[error("Not recorded: {0} Ring the office to tell them.")]
    NoPins(String),
}

/// What the staff member chose on this phone (from Today's settings). Kept on the phone only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct PhoneSettings {
    /// Play the phone's loud sound for a late check-in, even on silent. Off unless turned on: in a family's
    /// living room a check-in prompt only vibrates and shows an ordinary notification.
    pub sound_for_late_check_in: bool,
}

/// Why settings were not saved.
#[derive(Debug, thiserror::Error)]
#[error("could not save the settings: {0}")]
pub struct SettingsError(String);

#[derive(Debug)]
struct SettingsFile {
    settings: PhoneSettings,
    /// Where they are saved; `None` for a store made in memory (tests).
    file: Option<PathBuf>,
}

/// This phone's PINs as the store holds them.
#[derive(Debug, Clone)]
enum PinState {
    /// None set (a store made in memory, before its test sets them).
    NotSet,
    Set(PinHashes),
    /// The PIN file is missing or damaged: "I've left" cannot be confirmed on this phone. Never a
    /// fallback to any PIN.
    Unreadable(String),
}

/// When and why this phone deleted everything it held.
pub type Removal = (DateTime<Utc>, WipeReason);

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Vault(#[from] VaultError),
}

impl From<LogError> for ActionError {
    fn from(error: LogError) -> Self {
        match error {
            LogError::Invalid(invalid) => ActionError::Invalid(invalid),
            other => ActionError::Storage(other),
        }
    }
}

/// Who carries this phone, as the office last said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Me {
    pub staff: StaffId,
    pub name: String,
    pub school_name: String,
    /// The number staff ring to reach reception.
    pub office_phone: PhoneNumber,
    /// Who authorises visits under the school's policy.
    pub authoriser: Role,
}

/// One visit as a screen shows it: what the office planned and where it stands now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitCard {
    pub visit: Visit,
    pub state: VisitState,
    /// The school's policy, which decides which steps the lifecycle accepts.
    pub policy: Policy,
    /// The role that must authorise the visit, while it is not yet authorised (and was neither declined
    /// nor had its authorisation withdrawn).
    pub awaiting_authorisation_by: Option<Role>,
    /// The office called the visit off: who, when and why (the state keeps only that it was).
    pub called_off: Option<OfficeDecision>,
    /// The office's latest change to the briefing: who and when.
    pub briefing_changed: Option<(StaffId, DateTime<Utc>)>,
}

impl VisitCard {
    pub fn phase(&self) -> Phase {
        self.state.phase()
    }

    /// Everyone on the visit except `me`, in the office's order.
    pub fn partners<'a>(&'a self, me: &'a StaffId) -> impl Iterator<Item = &'a VisitStaff> + 'a {
        self.visit.staff.iter().filter(move |s| &s.id != me)
    }

    /// The name the visit gives `staff`, or their id if the visit does not name them.
    pub fn name_of(&self, staff: &StaffId) -> String {
        self.visit
            .staff
            .iter()
            .find(|s| &s.id == staff)
            .map_or_else(|| staff.to_string(), |s| s.name.clone())
    }

    /// Whether the office has changed the briefing since `me` last read it (so the checklist is due again).
    pub fn briefing_changed_since_read(&self, me: &StaffId) -> bool {
        self.state.briefing_read.contains_key(me)
            && self
                .state
                .briefing_read_version
                .get(me)
                .copied()
                .unwrap_or(0)
                < self.state.briefing_version
    }
}

/// One event this phone recorded, where it stands with the office, and when the visit counts it as having
/// happened (the office's time once the office sent it back; before that, this phone's time corrected by
/// its clock offset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnStep {
    pub envelope: EventEnvelope,
    pub delivery: Delivery,
    pub at: DateTime<Utc>,
}

/// What the phone asks the office when it reconciles: the sequence range, its events in it, and the highest
/// number it has used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileQuestion {
    pub from: DeviceSeq,
    pub through: DeviceSeq,
    pub events: Vec<PhoneEvent>,
    pub last_seq: u64,
}

/// The phone's store. Cheap to clone; every clone shares one event log.
#[derive(Debug, Clone)]
pub struct AppStore {
    log: Arc<Mutex<EventLog>>,
    /// Woken after each recorded event, so the sync loop sends it at once.
    wake: Arc<Notify>,
    /// Counts writes, so screens redraw as soon as the sync loop changes something.
    revision: Arc<watch::Sender<u64>>,
    /// Counts alerts recorded, so a sync busy with ordinary steps can drop them and send the alert first.
    alerts: Arc<watch::Sender<u64>>,
    /// See [`AppStore::holdings_cursor`].
    holdings_cursor: Arc<Mutex<Option<String>>>,
    pins: Arc<Mutex<PinState>>,
    settings: Arc<Mutex<SettingsFile>>,
    /// The sealed data folder; `None` for a store made in memory (tests).
    vault: Option<Arc<Vault>>,
    /// What this phone talks to the office with, once set up; renewed in use.
    credential: Arc<Mutex<Option<Credential>>>,
    /// Set once this phone deleted everything it held: when and why.
    removed: Arc<Mutex<Option<Removal>>>,
    /// Events recorded in this run that carry typed words, so the screens (the write-up's text to paste)
    /// can show them after the files no longer hold them. Memory only.
    typed: Arc<Mutex<HashMap<EventId, EventEnvelope>>>,
    /// Why this phone will not send to its office (an address that is not HTTPS), for the status line.
    link_refused: Arc<Mutex<Option<String>>>,
}

/// Two handles are equal when they are clones of one store (what a screen's properties compare).
impl PartialEq for AppStore {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.log, &other.log)
    }
}

impl AppStore {
    /// A store over `log`, not saved anywhere and with no PINs until [`AppStore::set_pins`] (tests).
    pub fn new(log: EventLog) -> Self {
        Self {
            log: Arc::new(Mutex::new(log)),
            wake: Arc::new(Notify::new()),
            revision: Arc::new(watch::Sender::new(0)),
            alerts: Arc::new(watch::Sender::new(0)),
            holdings_cursor: Arc::default(),
            pins: Arc::new(Mutex::new(PinState::NotSet)),
            settings: Arc::new(Mutex::new(SettingsFile {
                settings: PhoneSettings::default(),
                file: None,
            })),
            vault: None,
            credential: Arc::default(),
            removed: Arc::default(),
            typed: Arc::default(),
            link_refused: Arc::default(),
        }
    }

    /// Opens (or creates) the event log in `vault`'s folder for `device`, sealed with its key, with the
    /// PINs, the settings and the credential kept there.
    pub fn open(vault: Arc<Vault>, device: &DeviceId) -> Result<Self, OpenError> {
        let log = EventLog::open_sealed(&vault.path(DATABASE_FILE), device, vault.sealer())?;
        let mut store = Self::new(log);
        let pins = match vault.read_sealed(PINS_FILE) {
            Ok(Some(bytes)) => match PinHashes::from_json(&bytes) {
                Ok(hashes) => PinState::Set(hashes),
                Err(error) => PinState::Unreadable(format!("the PIN file is damaged ({error})")),
            },
            Ok(None) => PinState::Unreadable("this phone has no PIN file".into()),
            Err(error) => PinState::Unreadable(error.to_string()),
        };
        if let PinState::Unreadable(problem) = &pins {
            tracing::error!(%problem, "this phone's PINs cannot be read");
        }
        *store.pin_state() = pins;
        let file = vault.path(SETTINGS_FILE);
        let settings = match std::fs::read_to_string(&file) {
            Ok(text) => serde_json::from_str(&text).unwrap_or_else(|error| {
                // The safe side is the default: quiet in the room.
                tracing::warn!(%error, "unreadable settings file; using the defaults");
                PhoneSettings::default()
            }),
            Err(_) => PhoneSettings::default(),
        };
        *store.settings_file() = SettingsFile {
            settings,
            file: Some(file),
        };
        *store.credential_slot() = Credential::load(&vault)?;
        store.vault = Some(vault);
        Ok(store)
    }

    /// Sets this phone's PINs (see [`crate::pins::check_new_pins`] for the rules) and saves their hashes,
    /// sealed. `now` gives the year a PIN may not be.
    pub fn set_pins(&self, normal: &str, second: &str, now: DateTime<Utc>) -> Result<(), PinError> {
        use chrono::Datelike;
        check_new_pins(normal, second, now.year())?;
        let hashes = PinHashes::new(normal, second)?;
        if let Some(vault) = &self.vault {
            vault
                .write_sealed(PINS_FILE, &hashes.to_json()?)
                .map_err(|e| PinError::Save(e.to_string()))?;
        }
        *self.pin_state() = PinState::Set(hashes);
        self.changed();
        Ok(())
    }

    /// Why the PINs cannot be checked on this phone, if they cannot (never set, or the file is missing
    /// or damaged): then "I've left" cannot be confirmed here, and the screens say so.
    pub fn pins_problem(&self) -> Option<String> {
        match &*self.pin_state() {
            PinState::Set(_) => None,
            PinState::NotSet => Some("this phone has no PINs yet.".into()),
            PinState::Unreadable(problem) => Some(format!(
                "this phone's PINs cannot be read ({problem}). Set the phone up again with a new code from an admin."
            )),
        }
    }

    /// This phone's settings.
    pub fn phone_settings(&self) -> PhoneSettings {
        self.settings_file().settings
    }

    /// Saves this phone's settings (written whole to a new file, then moved over the old one, so a flat
    /// battery mid-write leaves the old settings, not half a file).
    pub fn set_phone_settings(&self, settings: PhoneSettings) -> Result<(), SettingsError> {
        let mut current = self.settings_file();
        if let Some(file) = &current.file {
            let text =
                serde_json::to_string(&settings).map_err(|e| SettingsError(e.to_string()))?;
            let fresh = file.with_extension("json.new");
            std::fs::write(&fresh, text).map_err(|e| SettingsError(e.to_string()))?;
            std::fs::rename(&fresh, file).map_err(|e| SettingsError(e.to_string()))?;
        }
        current.settings = settings;
        drop(current);
        self.changed();
        Ok(())
    }

    /// Which PIN `pin` is (`Wrong` when the PINs cannot be checked at all). Only the store and the tests
    /// ever see the answer. Slow on purpose: argon2, against both hashes.
    pub fn check_pin(&self, pin: &str) -> PinKind {
        let hashes = match &*self.pin_state() {
            PinState::Set(hashes) => hashes.clone(),
            _ => return PinKind::Wrong,
        };
        hashes.check(pin)
    }

    /// "I've left", confirmed with a PIN. The normal PIN records `Leave`; the duress PIN records `Leave` and
    /// then a silent duress alert, and returns exactly what the normal PIN would, so nothing on the screen
    /// can tell them apart.
    pub fn leave_with_pin(
        &self,
        visit: &VisitId,
        staff: &StaffId,
        pin: &str,
        now: DateTime<Utc>,
    ) -> Result<EventEnvelope, ActionError> {
        if let Some(problem) = self.pins_problem() {
            return Err(ActionError::NoPins(problem));
        }
        let kind = self.check_pin(pin);
        if kind == PinKind::Wrong {
            return Err(ActionError::WrongPin);
        }
        let left = self.perform(
            visit,
            Command::Leave {
                staff: staff.clone(),
            },
            now,
        );
        if kind == PinKind::Duress {
            // Raised even if the leave was refused: whoever typed it needs help either way.
            if let Err(error) = self.perform(
                visit,
                Command::RaiseDuress {
                    staff: staff.clone(),
                    via: DuressVia::DuressPin,
                },
                now,
            ) {
                tracing::error!(%error, "silent alert not recorded");
            }
        }
        left
    }

    /// The school's policy, as the office last sent it.
    pub fn policy(&self) -> Result<Option<Policy>, LogError> {
        Ok(self.lock().holdings()?.map(|holdings| holdings.policy))
    }

    /// Records a missed check-in for every visit where this phone's holder is inside and the check-in is
    /// past its grace, once per due time (this phone's own events are checked first). Returns what it
    /// recorded. The office raises its own alarm regardless; this puts the miss in the visit's record.
    pub fn record_missed_check_ins(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<EventEnvelope>, ActionError> {
        let (Some(me), Some(policy)) = (self.me()?, self.policy()?) else {
            return Ok(Vec::new());
        };
        let office_now = self.office_clock()?.to_office(now);
        let mut recorded = Vec::new();
        for card in self.today(now)? {
            let inside = matches!(
                card.state.progress(&me.staff),
                Some(lifecycle::StaffProgress::Inside { .. })
            );
            let Some(deadline) = schedule::inside_deadline(&card.visit, &card.state, &policy)
            else {
                continue;
            };
            if !inside
                || deadline.expecting != Expecting::CheckIn
                || office_now < deadline.overdue_at()
            {
                continue;
            }
            let already = self
                .own_events(&card.visit.id)?
                .iter()
                .any(|(envelope, _)| {
                    matches!(&envelope.event, VisitEvent::CheckInMissed { staff, due_at }
                    if *staff == me.staff && *due_at == deadline.due)
                });
            if !already {
                recorded.push(self.perform(
                    &card.visit.id,
                    Command::MissCheckIn {
                        staff: me.staff.clone(),
                        due_at: deadline.due,
                    },
                    now,
                )?);
            }
        }
        Ok(recorded)
    }

    /// The notification the sync loop waits on; [`AppStore::perform`] wakes it after each commit.
    pub fn wake_handle(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Tells the receiver each time an alert is recorded.
    pub fn watch_alerts(&self) -> watch::Receiver<u64> {
        self.alerts.subscribe()
    }

    /// A number that changes whenever the store has been written.
    pub fn revision(&self) -> u64 {
        *self.revision.borrow()
    }

    /// Tells the receiver about each write (the latest revision, not every step in between).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.revision.subscribe()
    }

    /// Who carries this phone, once the office has said.
    pub fn me(&self) -> Result<Option<Me>, LogError> {
        Ok(self.lock().holdings()?.map(|holdings| Me {
            staff: holdings.staff,
            name: holdings.staff_name,
            school_name: holdings.school.name,
            office_phone: holdings.school.office_phone,
            authoriser: holdings.policy.authoriser,
        }))
    }

    /// What the office last told this phone to hold (its visits, briefings and their events).
    pub fn holdings(&self) -> Result<Option<PhoneHoldings>, LogError> {
        self.lock().holdings()
    }

    /// The school's time zone, once the office has sent it (phones' screens show every time on it).
    pub fn school_time_zone(&self) -> Result<Option<SchoolTimeZone>, LogError> {
        Ok(self
            .lock()
            .holdings()?
            .map(|holdings| holdings.school.time_zone))
    }

    /// Whether the office has ever sent this phone its visits.
    pub fn has_holdings(&self) -> Result<bool, LogError> {
        Ok(self.lock().holdings()?.is_some())
    }

    /// What this phone knows about its clock against the office's (from the last exchange).
    pub fn office_clock(&self) -> Result<OfficeClock, LogError> {
        Ok(OfficeClock::new(self.lock().phone_clock_ahead()?))
    }

    /// A reading of this phone's clock as the office's time: what every screen shows and decides by. If
    /// the offset cannot be read, the phone's own time (and the reason is logged).
    pub fn office_time(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self.office_clock() {
            Ok(clock) => clock.to_office(now),
            Err(error) => {
                tracing::warn!(%error, "cannot read the clock offset; showing the phone's own time");
                now
            }
        }
    }

    /// The visits to show on the Today screen, soonest first: every visit the office sent, except those
    /// already written up whose time has passed (the office may not have dropped them yet).
    pub fn today(&self, now: DateTime<Utc>) -> Result<Vec<VisitCard>, LogError> {
        let log = self.lock();
        let Some(holdings) = log.holdings()? else {
            return Ok(Vec::new());
        };
        let clock = OfficeClock::new(log.phone_clock_ahead()?);
        let now = clock.to_office(now);
        let mut cards = Vec::with_capacity(holdings.visits.len());
        for held in &holdings.visits {
            let card = card(&log, held, &holdings.policy, clock)?;
            let done = card.phase() == Phase::WrittenUp && card.visit.expected_end() < now;
            if !done {
                cards.push(card);
            }
        }
        cards.sort_by(|a, b| {
            (a.visit.agreed_time, &a.visit.id).cmp(&(b.visit.agreed_time, &b.visit.id))
        });
        Ok(cards)
    }

    /// One visit, or `None` if the phone does not hold it.
    pub fn visit(&self, visit: &VisitId) -> Result<Option<VisitCard>, LogError> {
        let log = self.lock();
        let Some(holdings) = log.holdings()? else {
            return Ok(None);
        };
        let clock = OfficeClock::new(log.phone_clock_ahead()?);
        holdings
            .visits
            .iter()
            .find(|held| held.visit.id == *visit)
            .map(|held| card(&log, held, &holdings.policy, clock))
            .transpose()
    }

    /// Checks `command` against the visit's current state without recording anything, so a screen can
    /// offer only the steps the lifecycle would accept.
    pub fn check(
        &self,
        visit: &VisitId,
        command: &Command,
        now: DateTime<Utc>,
    ) -> Result<(), ActionError> {
        let log = self.lock();
        let (state, policy, clock) = current_state(&log, visit)?;
        lifecycle::decide(&state, command, &policy, clock.to_office(now))?;
        Ok(())
    }

    /// Decides `command` against the visit's current state at the office's time and records the events it
    /// causes at this phone's time `now` (the office corrects it by the offset it measures). Returns the last
    /// event recorded, only after it is committed to disk.
    pub fn perform(
        &self,
        visit: &VisitId,
        command: Command,
        now: DateTime<Utc>,
    ) -> Result<EventEnvelope, ActionError> {
        // One lock from deciding to recording, so two quick taps cannot both pass the same check.
        let recorded = {
            let mut log = self.lock();
            let (state, policy, clock) = current_state(&log, visit)?;
            let events = lifecycle::decide(&state, &command, &policy, clock.to_office(now))?;
            let mut recorded = None;
            for event in events {
                recorded = Some(log.record(visit, clock.event_in_phone_terms(event), now)?);
            }
            recorded
        };
        let recorded = recorded.ok_or(ActionError::NothingToRecord)?;
        if recorded.event.without_free_text().is_some() {
            self.typed_words().insert(recorded.id, recorded.clone());
        }
        tracing::info!(visit = %visit, event = recorded.event.summary(), seq = %recorded.seq, "recorded");
        self.changed();
        if recorded.event.is_urgent() {
            self.alerts.send_modify(|count| *count += 1);
        }
        self.wake.notify_one();
        Ok(recorded)
    }

    /// Where the outbox stands, for the status line.
    pub fn status(&self) -> Result<OutboxStatus, LogError> {
        self.lock().status()
    }

    /// Where one event this phone recorded stands with the office.
    pub fn delivery(&self, event: EventId) -> Result<Option<Delivery>, LogError> {
        self.lock().delivery(event)
    }

    /// Every event this phone recorded for `visit`, oldest first, with where each stands. An event whose
    /// typed words left the files once the office confirmed it comes with them while this run of the app
    /// remembers them, and without them after.
    pub fn own_events(&self, visit: &VisitId) -> Result<Vec<(EventEnvelope, Delivery)>, LogError> {
        let events = self.lock().events_for_visit(visit)?;
        let typed = self.typed_words();
        Ok(events
            .into_iter()
            .map(|(envelope, delivery)| match typed.get(&envelope.id) {
                Some(with_words) => (with_words.clone(), delivery),
                None => (envelope, delivery),
            })
            .collect())
    }

    /// The events of `visit` whose typed words this phone no longer holds anywhere (the office keeps
    /// them).
    pub fn words_left_phone(&self, visit: &VisitId) -> Result<HashSet<EventId>, LogError> {
        let mut gone = self.lock().redacted_events(visit)?;
        let typed = self.typed_words();
        gone.retain(|id| !typed.contains_key(id));
        Ok(gone)
    }

    /// Every event this phone recorded for `visit`, oldest first, with where each stands and when the
    /// visit counts it as having happened (the time to show).
    pub fn own_steps(&self, visit: &VisitId) -> Result<Vec<OwnStep>, LogError> {
        let log = self.lock();
        let clock = OfficeClock::new(log.phone_clock_ahead()?);
        let office_times: BTreeMap<EventId, DateTime<Utc>> = log
            .holdings()?
            .and_then(|holdings| {
                holdings
                    .visits
                    .into_iter()
                    .find(|held| held.visit.id == *visit)
            })
            .map(|held| {
                held.trusted_events()
                    .iter()
                    .map(|trusted| (trusted.envelope.id, trusted.at))
                    .collect()
            })
            .unwrap_or_default();
        Ok(log
            .events_for_visit(visit)?
            .into_iter()
            .map(|(envelope, delivery)| OwnStep {
                at: office_times
                    .get(&envelope.id)
                    .copied()
                    .unwrap_or_else(|| clock.to_office(envelope.recorded_at)),
                envelope,
                delivery,
            })
            .collect())
    }

    /// Every event still waiting for the office, oldest first.
    pub fn waiting(&self) -> Result<Vec<EventEnvelope>, LogError> {
        self.lock().waiting()
    }

    /// Whether an alert (from the code-phrase button or the duress PIN) is still waiting to be sent.
    pub fn alert_waiting(&self) -> Result<bool, LogError> {
        Ok(self
            .waiting()?
            .iter()
            .any(|envelope| matches!(envelope.event, VisitEvent::DuressRaised { .. })))
    }

    /// What reconciliation asks the office about.
    pub fn reconcile_question(&self) -> Result<ReconcileQuestion, LogError> {
        let log = self.lock();
        let last = log.last_seq()?;
        let through = DeviceSeq::new(last.max(1)).map_err(|e| LogError::Corrupt(e.to_string()))?;
        let widest = DeviceSeq::new(
            last.max(1)
                .saturating_sub(reconcile::MAX_RECONCILE_SPAN - 1)
                .max(1),
        )
        .map_err(|e| LogError::Corrupt(e.to_string()))?;
        let candidates = log.events_in_range(widest, through)?;
        let (from, through) = reconcile::range(&candidates, last);
        let events = candidates
            .into_iter()
            .filter(|e| (from..=through).contains(&e.seq))
            .collect();
        Ok(ReconcileQuestion {
            from,
            through,
            events,
            last_seq: last,
        })
    }

    // The transport's writes. Each takes the lock for one short transaction and never across an `.await`.

    pub(crate) fn apply_reconciliation(
        &self,
        plan: &Reconciliation,
        now: DateTime<Utc>,
    ) -> Result<Vec<EventEnvelope>, LogError> {
        let recorded_again = self.write(|log| log.apply_reconciliation(plan, now))?;
        for envelope in &recorded_again {
            tracing::info!(old_seq = ?plan.record_again, seq = %envelope.seq, "recorded again under a new number");
        }
        if !plan.send_again.is_empty() || !recorded_again.is_empty() {
            self.wake.notify_one();
        }
        Ok(recorded_again)
    }

    pub(crate) fn note_reconciled(&self, now: DateTime<Utc>) -> Result<(), LogError> {
        self.write(|log| log.note_reconciled(now))
    }

    /// The highest sequence number this phone has used (or moved past).
    pub fn last_seq(&self) -> Result<u64, LogError> {
        self.lock().last_seq()
    }

    /// When this phone last reconciled with the office.
    pub fn reconciled_at(&self) -> Result<Option<DateTime<Utc>>, LogError> {
        self.lock().reconciled_at()
    }

    pub(crate) fn note_sent(&self, ids: &[EventId], now: DateTime<Utc>) -> Result<(), LogError> {
        self.write(|log| log.note_sent(ids, now))
    }

    pub(crate) fn apply_updates(
        &self,
        updates: &[OutboxUpdate],
        now: DateTime<Utc>,
    ) -> Result<(), LogError> {
        if updates.is_empty() {
            return Ok(());
        }
        self.write(|log| log.apply(updates, now))
    }

    /// Keeps what the office sent whole, and its cursor for the next request.
    pub(crate) fn save_holdings(
        &self,
        holdings: &PhoneHoldings,
        cursor: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<(), LogError> {
        let saved = self.write(|log| log.save_holdings(holdings, now));
        self.set_holdings_cursor(saved.as_ref().ok().and(cursor));
        saved
    }

    /// The office's cursor for the holdings this phone keeps: sent back, the office answers with only what
    /// changed since. In memory only (after a restart the first answer is everything again), and gone
    /// whenever what the phone keeps stops being what the office sent (briefings deleted, a wipe).
    pub fn holdings_cursor(&self) -> Option<String> {
        self.holdings_cursor
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_holdings_cursor(&self, cursor: Option<String>) {
        *self
            .holdings_cursor
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = cursor;
    }

    /// Adds an answer's changes to the holdings this phone keeps, in one write. `false` (nothing changed)
    /// when it keeps none or the changes do not fit them: the sync client then asks for everything.
    pub(crate) fn merge_holdings(
        &self,
        changes: &PhoneHoldings,
        cursor: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<bool, LogError> {
        let merged = self.write(|log| {
            let Some(mut held) = log.holdings()? else {
                return Ok(false);
            };
            match held.merge_changes(changes.clone()) {
                Ok(()) => log.save_holdings(&held, now).map(|()| true),
                Err(error) => {
                    tracing::warn!(%error, "the office's changes do not fit what this phone holds");
                    Ok(false)
                }
            }
        });
        self.set_holdings_cursor(match merged {
            Ok(true) => cursor,
            _ => None,
        });
        merged
    }

    pub(crate) fn note_sync_success(
        &self,
        now: DateTime<Utc>,
        server_time: DateTime<Utc>,
    ) -> Result<(), LogError> {
        self.write(|log| log.note_sync_success(now, server_time))
    }

    pub(crate) fn note_sync_failure(
        &self,
        now: DateTime<Utc>,
        error: &str,
    ) -> Result<(), LogError> {
        self.write(|log| log.note_sync_failure(now, error))
    }

    pub(crate) fn note_sync_refusal(
        &self,
        now: DateTime<Utc>,
        error: &str,
    ) -> Result<(), LogError> {
        self.write(|log| log.note_sync_refusal(now, error))
    }

    fn write<T>(
        &self,
        f: impl FnOnce(&mut EventLog) -> Result<T, LogError>,
    ) -> Result<T, LogError> {
        let result = f(&mut self.lock());
        self.changed();
        result
    }

    fn changed(&self) {
        self.revision.send_modify(|revision| *revision += 1);
    }

    fn settings_file(&self) -> MutexGuard<'_, SettingsFile> {
        self.settings.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn pin_state(&self) -> MutexGuard<'_, PinState> {
        self.pins.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn credential_slot(&self) -> MutexGuard<'_, Option<Credential>> {
        self.credential
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn typed_words(&self) -> MutexGuard<'_, HashMap<EventId, EventEnvelope>> {
        self.typed.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn removed_slot(&self) -> MutexGuard<'_, Option<Removal>> {
        self.removed.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The same store holding `credential`, kept in memory only: for a store made by [`AppStore::new`]
    /// (tests); a real phone's credential is read from its sealed folder by [`AppStore::open`].
    pub fn with_credential(self, credential: Credential) -> Self {
        *self.credential_slot() = Some(credential);
        self
    }

    /// This phone's credential, once it is set up.
    pub fn credential(&self) -> Option<Credential> {
        self.credential_slot().clone()
    }

    /// Keeps a renewed token the office offered: the sealed credential file is replaced (synced) before
    /// this returns, and only then should the sync client use the new token.
    pub fn adopt_credential(&self, renewal: &DeviceCredential) -> Result<(), VaultError> {
        let mut slot = self.credential_slot();
        let Some(current) = slot.as_ref() else {
            return Ok(());
        };
        let renewed = current.renewed(renewal);
        if let Some(vault) = &self.vault {
            renewed.save(vault)?;
        }
        *slot = Some(renewed);
        tracing::info!(until = %renewal.expires_at, "this phone's credential was renewed");
        Ok(())
    }

    /// Deletes everything this phone keeps (the office said it was revoked): the event log is closed and
    /// replaced by an empty one in memory, the files and the data key are deleted, and the screens say
    /// what happened.
    pub fn forget_everything(
        &self,
        reason: WipeReason,
        now: DateTime<Utc>,
    ) -> Result<(), OpenError> {
        {
            let mut log = self.lock();
            let device = log.device().clone();
            *log = EventLog::in_memory(&device)?;
        }
        *self.pin_state() = PinState::NotSet;
        *self.credential_slot() = None;
        self.set_holdings_cursor(None);
        self.typed_words().clear();
        if let Some(vault) = &self.vault {
            vault.wipe(reason, now)?;
        }
        *self.removed_slot() = Some((now, reason));
        tracing::warn!(?reason, "this phone deleted everything Doorstep kept on it");
        self.changed();
        self.wake.notify_one();
        Ok(())
    }

    /// Notes that this phone will not send to its office, and why (the status line says so).
    pub fn refuse_link(&self, reason: String) {
        *self
            .link_refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(reason);
        self.changed();
    }

    /// Why this phone will not send to its office, if it will not.
    pub fn link_refused(&self) -> Option<String> {
        self.link_refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// When and why this phone deleted what it held, if it did.
    pub fn removed(&self) -> Option<Removal> {
        *self.removed_slot()
    }

    /// Deletes the briefings (and the addresses, keeping only the postcode's area) this phone holds when
    /// it has not reached the office for the policy's `delete_briefings_after_days_offline`, by its own
    /// clock `now`. Returns whether anything was deleted. The next sync brings them back.
    pub fn forget_briefings_if_out_of_touch(&self, now: DateTime<Utc>) -> Result<bool, LogError> {
        let mut log = self.lock();
        let Some(last) = log.status()?.last_success_at else {
            return Ok(false);
        };
        let Some(mut holdings) = log.holdings()? else {
            return Ok(false);
        };
        if !crate::status::out_of_touch(
            last,
            now,
            holdings.policy.delete_briefings_after_days_offline,
        ) {
            return Ok(false);
        }
        let mut forgot = false;
        for held in &mut holdings.visits {
            let visit = &mut held.visit;
            let area = visit.address.postcode.only_district();
            if !visit.briefing.withdrawn
                || !visit.address.lines.is_empty()
                || visit.address.postcode != area
            {
                visit.briefing = Briefing::withdrawn();
                visit.address.lines.clear();
                visit.address.postcode = area;
                forgot = true;
            }
        }
        if forgot {
            // Saved whole and checkpointed: what was replaced leaves the file and its write-ahead log.
            log.save_holdings(&holdings, now)?;
            // No longer what the office sent: the next answer must be everything again.
            self.set_holdings_cursor(None);
            tracing::warn!(
                "not in touch with the office for too long: briefings deleted from this phone"
            );
            drop(log);
            self.changed();
        }
        Ok(forgot)
    }

    fn lock(&self) -> MutexGuard<'_, EventLog> {
        // A panic elsewhere while holding the lock cannot leave the log half-written (every write is one
        // SQLite transaction), so carry on rather than take the whole app down.
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn card(
    log: &EventLog,
    held: &HeldVisit,
    policy: &Policy,
    clock: OfficeClock,
) -> Result<VisitCard, LogError> {
    let own = log.events_for_visit(&held.visit.id)?;
    let state = rebuild(held, own.into_iter().map(|(envelope, _)| envelope), clock);
    let awaiting = state.authorised.is_none()
        && state.declined.is_none()
        && state.authorisation_withdrawn.is_none();
    // The office's own words the state does not keep: the latest of each, at the office's times.
    let mut called_off: Option<OfficeDecision> = None;
    let mut briefing_changed: Option<(StaffId, DateTime<Utc>)> = None;
    for trusted in held.trusted_events() {
        match &trusted.envelope.event {
            VisitEvent::CalledOff { by, reason }
                if called_off.as_ref().is_none_or(|c| c.at <= trusted.at) =>
            {
                called_off = Some(OfficeDecision {
                    by: by.clone(),
                    at: trusted.at,
                    reason: reason.clone(),
                });
            }
            VisitEvent::BriefingUpdated { by, .. }
                if briefing_changed
                    .as_ref()
                    .is_none_or(|(_, at)| *at <= trusted.at) =>
            {
                briefing_changed = Some((by.clone(), trusted.at));
            }
            _ => {}
        }
    }
    Ok(VisitCard {
        awaiting_authorisation_by: awaiting.then_some(policy.authoriser),
        visit: held.visit.clone(),
        state,
        policy: policy.clone(),
        called_off,
        briefing_changed,
    })
}

/// The visit's state, the policy it is decided under, and the clock the phone decides by.
fn current_state(
    log: &EventLog,
    visit: &VisitId,
) -> Result<(VisitState, Policy, OfficeClock), ActionError> {
    let holdings = log
        .holdings()?
        .ok_or_else(|| ActionError::UnknownVisit(visit.clone()))?;
    let held = holdings
        .visits
        .iter()
        .find(|held| held.visit.id == *visit)
        .ok_or_else(|| ActionError::UnknownVisit(visit.clone()))?;
    let own = log.events_for_visit(visit)?;
    let clock = OfficeClock::new(log.phone_clock_ahead()?);
    Ok((
        rebuild(held, own.into_iter().map(|(envelope, _)| envelope), clock),
        holdings.policy,
        clock,
    ))
}

/// The visit's state from the office's events (at the office's times, so phone and office replay alike)
/// and this phone's own not yet sent back by the office (at this phone's time corrected as the office will
/// correct it), each event counted once.
fn rebuild(
    held: &HeldVisit,
    own: impl Iterator<Item = EventEnvelope>,
    clock: OfficeClock,
) -> VisitState {
    let own: Vec<EventEnvelope> = own.collect();
    let mut by_id: BTreeMap<EventId, TrustedEvent<'_>> = BTreeMap::new();
    // The office should only send this visit's events; ignore any that are not, rather than trust them.
    for trusted in held.trusted_events() {
        if trusted.envelope.visit == held.visit.id {
            by_id.entry(trusted.envelope.id).or_insert(trusted);
        }
    }
    for envelope in own.iter().filter(|e| e.visit == held.visit.id) {
        by_id.entry(envelope.id).or_insert(TrustedEvent {
            envelope,
            at: clock.to_office(envelope.recorded_at),
        });
    }
    lifecycle::replay(VisitState::new(held.visit.staff_ids()), by_id.values())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use doorstep_core::lifecycle::{StaffProgress, VisitEvent};

    use super::*;
    use crate::fixtures::{at, id, store_with_two_visits, visit_id};

    fn depart(store: &AppStore, visit: &str) -> Result<EventEnvelope, ActionError> {
        let card = store.visit(&visit_id(visit)).unwrap().unwrap();
        store.perform(
            &visit_id(visit),
            Command::Depart {
                staff: id("sam"),
                expected_arrival: card.visit.agreed_time,
                expected_end: card.visit.expected_end(),
            },
            at(9, 40),
        )
    }

    #[test]
    fn today_lists_visits_soonest_first_with_what_awaits_authorisation() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_two_visits(dir.path());
        let cards = store.today(at(8, 30)).unwrap();
        let listed: Vec<(&str, Option<Role>)> = cards
            .iter()
            .map(|c| (c.visit.id.as_str(), c.awaiting_authorisation_by))
            .collect();
        assert_eq!(
            listed,
            [("v-wait", Some(Role::Headteacher)), ("v-auth", None)]
        );
        assert_eq!(cards[1].phase(), Phase::Authorised);
        assert_eq!(store.me().unwrap().unwrap().name, "Sam Patel");
    }

    #[test]
    fn a_store_without_holdings_shows_nothing_and_refuses_actions() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(&dir.path().join("p.sqlite3"), &id("phone-sam")).unwrap();
        let store = AppStore::new(log);
        assert!(!store.has_holdings().unwrap());
        assert!(store.today(at(9, 0)).unwrap().is_empty());
        assert_eq!(store.me().unwrap(), None);
        let error = store
            .perform(
                &visit_id("v-auth"),
                Command::CheckIn { staff: id("sam") },
                at(9, 0),
            )
            .unwrap_err();
        assert!(matches!(error, ActionError::UnknownVisit(_)), "{error}");
        assert!(error.to_string().contains("v-auth"));
    }

    #[test]
    fn an_action_is_recorded_before_perform_returns_and_changes_the_state() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_two_visits(dir.path());
        let before = store.revision();
        let recorded = depart(&store, "v-auth").unwrap();
        assert!(matches!(recorded.event, VisitEvent::Departed { .. }));
        assert!(store.revision() > before);

        let waiting = store.waiting().unwrap();
        assert_eq!(waiting.len(), 1);
        assert_eq!(waiting[0].id, recorded.id);
        assert_eq!(
            store.delivery(recorded.id).unwrap(),
            Some(Delivery::Waiting { attempts: 0 })
        );
        let card = store.visit(&visit_id("v-auth")).unwrap().unwrap();
        assert_eq!(card.phase(), Phase::Departed);
        assert!(matches!(
            card.state.progress(&id("sam")),
            Some(StaffProgress::Departed { .. })
        ));
        // Reopening the file finds it: it was committed, not just held in memory.
        drop(store);
        let reopened = EventLog::open(&dir.path().join("phone.sqlite3"), &id("phone-sam")).unwrap();
        assert_eq!(reopened.waiting().unwrap().len(), 1);
    }

    #[test]
    fn a_refused_action_says_why_and_records_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_two_visits(dir.path());
        let error = depart(&store, "v-wait").unwrap_err();
        assert!(matches!(
            error,
            ActionError::Refused(LifecycleError::NotAuthorised)
        ));
        assert_eq!(
            error.to_string(),
            "Not recorded: this visit has not been authorised yet."
        );
        assert!(store.waiting().unwrap().is_empty());

        depart(&store, "v-auth").unwrap();
        let again = depart(&store, "v-auth").unwrap_err();
        assert!(again.to_string().contains("already left"), "{again}");
        assert_eq!(store.waiting().unwrap().len(), 1);
    }

    #[test]
    fn events_the_office_echoes_back_are_counted_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_two_visits(dir.path());
        let departed = depart(&store, "v-auth").unwrap();
        // The office sends the phone's own event back in its holdings.
        let mut holdings = store.lock().holdings().unwrap().unwrap();
        holdings.visits[0].events.push(departed.clone());
        store.save_holdings(&holdings, None, at(9, 41)).unwrap();

        let card = store.visit(&visit_id("v-auth")).unwrap().unwrap();
        assert_eq!(card.state.last_contact, Some(departed.recorded_at));
        store
            .perform(
                &visit_id("v-auth"),
                Command::ArriveOutside { staff: id("sam") },
                at(9, 58),
            )
            .unwrap();
        assert_eq!(
            store.visit(&visit_id("v-auth")).unwrap().unwrap().phase(),
            Phase::Outside
        );
    }

    #[test]
    fn with_a_clock_seven_minutes_fast_the_phone_records_its_own_time_but_decides_and_replays_at_the_offices(
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_two_visits(dir.path());
        let v = visit_id("v-auth");
        // The last exchange: the office answered at 09:30 while this phone read 09:37.
        store.note_sync_success(at(9, 37), at(9, 30)).unwrap();
        assert!(store.office_clock().unwrap().corrects());
        assert_eq!(store.office_time(at(9, 47)), at(9, 40));
        store
            .perform(
                &v,
                Command::ConfirmBriefing {
                    staff: id("sam"),
                    ticked: lifecycle::BriefingCheck::ALL.to_vec(),
                },
                at(9, 45),
            )
            .unwrap();
        // "Leaving now" at 09:47 on the phone, for the visit the office agreed at 10:00.
        let departed = store
            .perform(
                &v,
                Command::Depart {
                    staff: id("sam"),
                    expected_arrival: at(10, 0),
                    expected_end: at(10, 45),
                },
                at(9, 47),
            )
            .unwrap();
        // Recorded at the phone's own time and in its terms: the office measures the offset and corrects.
        assert_eq!(departed.recorded_at, at(9, 47));
        assert!(matches!(
            departed.event,
            VisitEvent::Departed { expected_arrival, .. } if expected_arrival == at(10, 7)
        ));
        // Shown and replayed at the office's times.
        let card = store.visit(&v).unwrap().unwrap();
        assert_eq!(
            card.state.progress(&id("sam")),
            Some(StaffProgress::Departed {
                at: at(9, 40),
                expected_arrival: at(10, 0),
                expected_end: at(10, 45),
            })
        );
        let steps = store.own_steps(&v).unwrap();
        assert_eq!(steps.last().map(|step| step.at), Some(at(9, 40)));
        // Decided at the office's time: 09:52 is still ahead at the office when the phone reads 09:55.
        store
            .perform(
                &v,
                Command::RunningLate {
                    staff: id("sam"),
                    expected_arrival: at(9, 52),
                },
                at(9, 55),
            )
            .unwrap();
        let card = store.visit(&v).unwrap().unwrap();
        assert_eq!(
            card.state.expected_arrival(&id("sam")),
            Some(at(10, 0)),
            "a new arrival earlier than the one given keeps the later"
        );
        assert_eq!(card.state.running_late.get(&id("sam")), Some(&at(9, 52)));
    }

    /// A sealed phone in `dir`, its key in a recording platform's memory (shared by the returned handle).
    fn sealed_phone(
        dir: &std::path::Path,
    ) -> (Arc<Vault>, Arc<crate::platform::RecordingPlatform>) {
        let platform = Arc::new(crate::platform::RecordingPlatform::new(dir));
        let vault = Vault::create(dir, platform.clone()).unwrap();
        (Arc::new(vault), platform)
    }

    fn reopen(
        dir: &std::path::Path,
        platform: &Arc<crate::platform::RecordingPlatform>,
    ) -> AppStore {
        let vault = Vault::open(dir, platform.clone()).unwrap().unwrap();
        AppStore::open(Arc::new(vault), &id("phone-sam")).unwrap()
    }

    #[test]
    fn there_are_no_default_pins_and_chosen_ones_survive_a_restart_as_hashes_only() {
        let dir = tempfile::tempdir().unwrap();
        let (vault, platform) = sealed_phone(dir.path());
        let store = AppStore::open(vault, &id("phone-sam")).unwrap();
        for anything in ["1234", "9999", "0000", ""] {
            assert_eq!(store.check_pin(anything), PinKind::Wrong, "{anything}");
        }
        assert!(store.pins_problem().is_some(), "no PINs until chosen");
        let refusal = store
            .leave_with_pin(&visit_id("v-auth"), &id("sam"), "1234", at(10, 0))
            .unwrap_err();
        assert!(matches!(refusal, ActionError::NoPins(_)), "{refusal}");
        assert!(refusal.to_string().contains("Ring the office"), "{refusal}");

        assert!(matches!(
            store.set_pins("12a4", "5678", at(8, 0)),
            Err(PinError::NotFourDigits)
        ));
        assert!(matches!(
            store.set_pins("5680", "5680", at(8, 0)),
            Err(PinError::Same)
        ));
        assert!(matches!(
            store.set_pins("1234", "9999", at(8, 0)),
            Err(PinError::TooEasy { .. })
        ));
        store.set_pins("2468", "1357", at(8, 0)).unwrap();
        assert_eq!(store.pins_problem(), None);
        drop(store);
        let on_disk = std::fs::read(dir.path().join(PINS_FILE)).unwrap();
        let on_disk = String::from_utf8_lossy(&on_disk);
        assert!(
            !on_disk.contains("2468") && !on_disk.contains("argon2"),
            "sealed: {on_disk}"
        );
        let reopened = reopen(dir.path(), &platform);
        assert_eq!(reopened.check_pin("2468"), PinKind::Normal);
        assert_eq!(reopened.check_pin("1357"), PinKind::Duress);
        assert_eq!(reopened.check_pin("1234"), PinKind::Wrong);
    }

    #[test]
    fn a_damaged_or_missing_pin_file_is_a_clear_message_never_a_fallback() {
        let dir = tempfile::tempdir().unwrap();
        let (vault, platform) = sealed_phone(dir.path());
        let store = AppStore::open(vault, &id("phone-sam")).unwrap();
        store.set_pins("2468", "1357", at(8, 0)).unwrap();
        drop(store);
        let file = dir.path().join(PINS_FILE);
        let mut damaged = std::fs::read(&file).unwrap();
        let middle = damaged.len() / 2;
        damaged[middle] = if damaged[middle] == b'A' { b'B' } else { b'A' };
        std::fs::write(&file, damaged).unwrap();
        for state in ["damaged", "missing"] {
            if state == "missing" {
                std::fs::remove_file(&file).unwrap();
            }
            let store = reopen(dir.path(), &platform);
            let problem = store.pins_problem().expect("a problem");
            assert!(
                problem.contains("PINs cannot be read"),
                "{state}: {problem}"
            );
            for pin in ["2468", "1357", "1234", "9999"] {
                assert_eq!(store.check_pin(pin), PinKind::Wrong, "{state}: {pin}");
            }
        }
    }

    #[tokio::test]
    async fn screens_hear_of_writes_by_the_sync_loop() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_two_visits(dir.path());
        let mut changes = store.subscribe();
        store.note_sync_failure(at(9, 0), "no signal").unwrap();
        tokio::time::timeout(Duration::from_secs(1), changes.changed())
            .await
            .expect("a write is announced")
            .unwrap();
        assert_eq!(*changes.borrow_and_update(), store.revision());
    }

    #[tokio::test]
    async fn recording_wakes_the_sync_loop() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_two_visits(dir.path());
        let wake = store.wake_handle();
        depart(&store, "v-auth").unwrap();
        // `Notify` keeps the wake-up for a loop that was busy when the event was recorded.
        tokio::time::timeout(Duration::from_secs(1), wake.notified())
            .await
            .expect("perform wakes the sync loop");
    }
}
