//! The app's store: the only code that writes the phone's event log. Screens and the sync transport call it;
//! neither touches `EventLog` or SQLite.
//!
//! A visit's state is always rebuilt the same way: the events the office sent (a partner's included) and the
//! events this phone recorded, deduplicated by event id and replayed through the core lifecycle. An action is
//! decided against that state and recorded before [`AppStore::perform`] returns, so a screen may say it
//! happened as soon as the call comes back.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};
use doorstep_core::domain::{Role, Visit, VisitStaff};
use doorstep_core::event::{EnvelopeError, EventEnvelope};
use doorstep_core::event_log::{Delivery, EventLog, LogError, OutboxStatus};
use doorstep_core::ids::{DeviceId, DeviceSeq, EventId, StaffId, VisitId};
use doorstep_core::lifecycle::{
    self, Command, DuressVia, LifecycleError, Phase, VisitEvent, VisitState,
};
use doorstep_core::policy::Policy;
use doorstep_core::protocol::{HeldVisit, PhoneHoldings};
use doorstep_core::reconcile::{self, PhoneEvent, Reconciliation};
use doorstep_core::schedule::{self, Expecting};
use doorstep_core::sync_plan::OutboxUpdate;
use tokio::sync::{watch, Notify};

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
}

/// The demo's normal PIN. Demo only: change it with [`AppStore::set_pins`] before real use.
pub const DEMO_PIN: &str = "1234";
/// The demo's duress PIN. Demo only, like [`DEMO_PIN`].
pub const DEMO_DURESS_PIN: &str = "9999";
/// The file under the data folder that holds this phone's PINs.
pub const PINS_FILE: &str = "pins.json";

/// What a PIN typed at "I've left" turned out to be. Never shown: both valid PINs look the same on screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinKind {
    Normal,
    Duress,
    Wrong,
}

/// The two 4-digit PINs, kept on the phone only (the office never needs them: it is told what happened).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Pins {
    normal: String,
    duress: String,
}

impl Default for Pins {
    fn default() -> Self {
        Self {
            normal: DEMO_PIN.to_owned(),
            duress: DEMO_DURESS_PIN.to_owned(),
        }
    }
}

/// Why new PINs were not saved.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error("a PIN is exactly 4 digits")]
    NotFourDigits,
    #[error("the two PINs must differ")]
    Same,
    #[error("could not save the PINs: {0}")]
    Save(String),
}

#[derive(Debug)]
struct PinSettings {
    pins: Pins,
    /// Where they are saved; `None` for a store made in memory (tests), which keeps the demo PINs.
    file: Option<PathBuf>,
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
    pub office_phone: String,
    /// Who authorises visits under the school's policy.
    pub authoriser: Role,
}

/// One visit as a screen shows it: what the office planned and where it stands now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitCard {
    pub visit: Visit,
    pub state: VisitState,
    /// The role that must authorise the visit, while it is not yet authorised.
    pub awaiting_authorisation_by: Option<Role>,
}

impl VisitCard {
    pub fn phase(&self) -> Phase {
        self.state.phase()
    }

    /// Everyone on the visit except `me`, in the office's order.
    pub fn partners<'a>(&'a self, me: &'a StaffId) -> impl Iterator<Item = &'a VisitStaff> + 'a {
        self.visit.staff.iter().filter(move |s| &s.id != me)
    }
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
    pins: Arc<Mutex<PinSettings>>,
}

impl AppStore {
    /// A store over `log` with the demo PINs, not saved anywhere (see [`AppStore::open_in`]).
    pub fn new(log: EventLog) -> Self {
        Self {
            log: Arc::new(Mutex::new(log)),
            wake: Arc::new(Notify::new()),
            revision: Arc::new(watch::Sender::new(0)),
            alerts: Arc::new(watch::Sender::new(0)),
            pins: Arc::new(Mutex::new(PinSettings {
                pins: Pins::default(),
                file: None,
            })),
        }
    }

    /// Opens (or creates) the event log in `data_dir`, creating the folder if needed.
    pub fn open_in(data_dir: &Path, device: &DeviceId) -> Result<Self, LogError> {
        std::fs::create_dir_all(data_dir).map_err(|error| {
            LogError::Corrupt(format!("cannot create {}: {error}", data_dir.display()))
        })?;
        let log = EventLog::open(&data_dir.join(crate::config::DATABASE_FILE), device)?;
        let store = Self::new(log);
        let file = data_dir.join(PINS_FILE);
        let pins = match std::fs::read_to_string(&file) {
            Ok(text) => serde_json::from_str(&text).unwrap_or_else(|error| {
                // A damaged file must not lock anyone out of "I've left": fall back to the demo PINs.
                tracing::warn!(%error, "unreadable PIN file; using the demo PINs");
                Pins::default()
            }),
            Err(_) => Pins::default(),
        };
        *store.pin_settings() = PinSettings {
            pins,
            file: Some(file),
        };
        Ok(store)
    }

    /// Sets this phone's PINs (each exactly 4 digits, different from each other) and saves them.
    pub fn set_pins(&self, normal: &str, duress: &str) -> Result<(), PinError> {
        let four_digits = |pin: &str| pin.len() == 4 && pin.chars().all(|c| c.is_ascii_digit());
        if !four_digits(normal) || !four_digits(duress) {
            return Err(PinError::NotFourDigits);
        }
        if normal == duress {
            return Err(PinError::Same);
        }
        let pins = Pins {
            normal: normal.to_owned(),
            duress: duress.to_owned(),
        };
        let mut settings = self.pin_settings();
        if let Some(file) = &settings.file {
            let text = serde_json::to_string(&pins).map_err(|e| PinError::Save(e.to_string()))?;
            std::fs::write(file, text).map_err(|e| PinError::Save(e.to_string()))?;
        }
        settings.pins = pins;
        Ok(())
    }

    /// Which PIN `pin` is. Only the store and the tests ever see the answer.
    pub fn check_pin(&self, pin: &str) -> PinKind {
        let settings = self.pin_settings();
        if pin == settings.pins.normal {
            PinKind::Normal
        } else if pin == settings.pins.duress {
            PinKind::Duress
        } else {
            PinKind::Wrong
        }
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
        let mut recorded = Vec::new();
        for card in self.today(now)? {
            let inside = matches!(
                card.state.progress(&me.staff),
                Some(lifecycle::StaffProgress::Inside { .. })
            );
            let Some(deadline) = schedule::next_deadline(&card.visit, &card.state, &policy) else {
                continue;
            };
            if !inside
                || deadline.expecting != Expecting::CheckIn
                || now < deadline.overdue_at(&policy)
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

    /// Whether the office has ever sent this phone its visits.
    pub fn has_holdings(&self) -> Result<bool, LogError> {
        Ok(self.lock().holdings()?.is_some())
    }

    /// The visits to show on the Today screen, soonest first: every visit the office sent, except those
    /// already written up whose time has passed (the office may not have dropped them yet).
    pub fn today(&self, now: DateTime<Utc>) -> Result<Vec<VisitCard>, LogError> {
        let log = self.lock();
        let Some(holdings) = log.holdings()? else {
            return Ok(Vec::new());
        };
        let authoriser = holdings.policy.authoriser;
        let mut cards = Vec::with_capacity(holdings.visits.len());
        for held in &holdings.visits {
            let card = card(&log, held, authoriser)?;
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
        let authoriser = holdings.policy.authoriser;
        holdings
            .visits
            .iter()
            .find(|held| held.visit.id == *visit)
            .map(|held| card(&log, held, authoriser))
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
        let state = current_state(&log, visit)?;
        lifecycle::decide(&state, command, now)?;
        Ok(())
    }

    /// Decides `command` against the visit's current state and records the events it causes. Returns the
    /// last event recorded, only after it is committed to disk.
    pub fn perform(
        &self,
        visit: &VisitId,
        command: Command,
        now: DateTime<Utc>,
    ) -> Result<EventEnvelope, ActionError> {
        // One lock from deciding to recording, so two quick taps cannot both pass the same check.
        let recorded = {
            let mut log = self.lock();
            let state = current_state(&log, visit)?;
            let events = lifecycle::decide(&state, &command, now)?;
            let mut recorded = None;
            for event in events {
                recorded = Some(log.record(visit, event, now)?);
            }
            recorded
        };
        let recorded = recorded.ok_or(ActionError::NothingToRecord)?;
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

    /// Every event this phone recorded for `visit`, oldest first, with where each stands.
    pub fn own_events(&self, visit: &VisitId) -> Result<Vec<(EventEnvelope, Delivery)>, LogError> {
        self.lock().events_for_visit(visit)
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

    pub(crate) fn save_holdings(
        &self,
        holdings: &PhoneHoldings,
        now: DateTime<Utc>,
    ) -> Result<(), LogError> {
        self.write(|log| log.save_holdings(holdings, now))
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

    fn pin_settings(&self) -> MutexGuard<'_, PinSettings> {
        self.pins.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock(&self) -> MutexGuard<'_, EventLog> {
        // A panic elsewhere while holding the lock cannot leave the log half-written (every write is one
        // SQLite transaction), so carry on rather than take the whole app down.
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn card(log: &EventLog, held: &HeldVisit, authoriser: Role) -> Result<VisitCard, LogError> {
    let own = log.events_for_visit(&held.visit.id)?;
    let state = rebuild(held, own.into_iter().map(|(envelope, _)| envelope));
    Ok(VisitCard {
        awaiting_authorisation_by: state.authorised.is_none().then_some(authoriser),
        visit: held.visit.clone(),
        state,
    })
}

fn current_state(log: &EventLog, visit: &VisitId) -> Result<VisitState, ActionError> {
    let holdings = log
        .holdings()?
        .ok_or_else(|| ActionError::UnknownVisit(visit.clone()))?;
    let held = holdings
        .visits
        .iter()
        .find(|held| held.visit.id == *visit)
        .ok_or_else(|| ActionError::UnknownVisit(visit.clone()))?;
    let own = log.events_for_visit(visit)?;
    Ok(rebuild(held, own.into_iter().map(|(envelope, _)| envelope)))
}

/// The visit's state from the office's events and this phone's own, each event counted once.
fn rebuild(held: &HeldVisit, own: impl Iterator<Item = EventEnvelope>) -> VisitState {
    let mut by_id: BTreeMap<EventId, EventEnvelope> = BTreeMap::new();
    for envelope in held.events.iter().cloned().chain(own) {
        // The office should only send this visit's events; ignore any that are not, rather than trust them.
        if envelope.visit == held.visit.id {
            by_id.entry(envelope.id).or_insert(envelope);
        }
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
        store.save_holdings(&holdings, at(9, 41)).unwrap();

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
    fn pins_start_as_the_demo_ones_and_changed_pins_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let store = AppStore::open_in(dir.path(), &id("phone-sam")).unwrap();
        assert_eq!(store.check_pin(DEMO_PIN), PinKind::Normal);
        assert_eq!(store.check_pin(DEMO_DURESS_PIN), PinKind::Duress);
        assert_eq!(store.check_pin("0000"), PinKind::Wrong);

        assert!(matches!(
            store.set_pins("12a4", "5678"),
            Err(PinError::NotFourDigits)
        ));
        assert!(matches!(
            store.set_pins("5678", "5678"),
            Err(PinError::Same)
        ));
        store.set_pins("2468", "1357").unwrap();
        drop(store);
        let reopened = AppStore::open_in(dir.path(), &id("phone-sam")).unwrap();
        assert_eq!(reopened.check_pin("2468"), PinKind::Normal);
        assert_eq!(reopened.check_pin("1357"), PinKind::Duress);
        assert_eq!(reopened.check_pin(DEMO_PIN), PinKind::Wrong);
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
