//! The escalation engine: the office, not the phone, holds every visit's deadlines.
//!
//! For each visit under way the engine computes the next moment something must happen (a deadline plus
//! grace becoming "overdue", an unacknowledged alarm getting louder) and sleeps until exactly then; it does
//! not poll. Each contact from a phone pokes the engine, which looks at that visit again, so a check-in
//! re-arms the deadline. On start it looks at every visit under way or with an alarm nobody has
//! acknowledged, so deadlines survive a restart. Every alarm and escalation is written to the store (and so
//! the visit's timeline) before it is announced on the board channel. An alarm climbs level by level
//! (`core::schedule::next_escalation`: the board, the authoriser's, the deputy and further contacts) until
//! someone acknowledges it; an acknowledgement stops that climb but not the watch: while the staff stay
//! silent, the next missed deadline raises a new alarm.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use doorstep_core::ids::{SchoolId, VisitId};
use doorstep_core::policy::Policy;
use doorstep_core::schedule::{deadlines, next_escalation, next_missed_after, Deadline};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc};

use crate::alarms::{Alarm, AlarmKind, NewAlarm};
use crate::clock::Clock;
use crate::store::backend::{Alarms, Visits};
use crate::store::StoreError;

/// Something the board should show now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BoardEvent {
    AlarmRaised {
        alarm: Alarm,
    },
    AlarmEscalated {
        alarm: Alarm,
    },
    AlarmAcknowledged {
        alarm: Alarm,
    },
    /// Closed with an outcome (each alarm a close ended).
    AlarmClosed {
        alarm: Alarm,
    },
    /// A visit's state or alarms changed in some other way: read it again.
    VisitChanged {
        visit: VisitId,
    },
    /// A school's notification targets changed: its board's banner may change, and a notice nobody could
    /// be sent yet may now have somewhere to go.
    TargetsChanged {
        school: SchoolId,
    },
}

/// Whose board an event is for: a visit's school, or a school named outright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventScope<'a> {
    Visit(&'a VisitId),
    School(&'a SchoolId),
}

impl BoardEvent {
    /// What the event is about: the board's stream passes it only to that school.
    pub fn scope(&self) -> EventScope<'_> {
        match self {
            BoardEvent::AlarmRaised { alarm }
            | BoardEvent::AlarmEscalated { alarm }
            | BoardEvent::AlarmAcknowledged { alarm }
            | BoardEvent::AlarmClosed { alarm } => EventScope::Visit(&alarm.visit),
            BoardEvent::VisitChanged { visit } => EventScope::Visit(visit),
            BoardEvent::TargetsChanged { school } => EventScope::School(school),
        }
    }
}

/// A handle on the running engine.
#[derive(Debug, Clone)]
pub struct Escalation {
    pokes: mpsc::UnboundedSender<VisitId>,
    board: broadcast::Sender<BoardEvent>,
}

impl Escalation {
    /// Starts the engine on the current tokio runtime, reading the time from `clock`.
    pub fn spawn<S: Visits + Alarms>(
        store: Arc<S>,
        clock: Clock,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        Self::start(store, clock, None)
    }

    /// Starts the engine for an office that shares its database with other offices (PostgreSQL): besides
    /// its own pokes, it reads the visits to watch again every `rescan`, so a visit started or changed
    /// through another office is watched here too. Each office's engine watches every visit; the store's
    /// locks make each step once between them ([`Alarms`]), so any office left running keeps every
    /// deadline when another stops.
    pub fn spawn_sharing<S: Visits + Alarms>(
        store: Arc<S>,
        clock: Clock,
        rescan: Duration,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        Self::start(store, clock, Some(rescan))
    }

    fn start<S: Visits + Alarms>(
        store: Arc<S>,
        clock: Clock,
        rescan: Option<Duration>,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (pokes, rx) = mpsc::unbounded_channel();
        let (board, _) = broadcast::channel(1024);
        let handle = tokio::spawn(run(store, clock, rx, board.clone(), rescan));
        (Self { pokes, board }, handle)
    }

    /// Tells the engine a visit changed (new events arrived): it looks at it again at once.
    pub fn visit_changed(&self, visit: VisitId) {
        let _ = self.board.send(BoardEvent::VisitChanged {
            visit: visit.clone(),
        });
        let _ = self.pokes.send(visit);
    }

    /// Announces an alarm raised outside the engine (reception heard the code phrase): the board redraws,
    /// the notifier hands it to its targets at once, and the engine starts escalating it.
    pub fn raised(&self, alarm: Alarm) {
        // The board first: the engine's look at the visit can wait the few microseconds it takes.
        let visit = alarm.visit.clone();
        let _ = self.board.send(BoardEvent::AlarmRaised { alarm });
        let _ = self.pokes.send(visit);
    }

    /// Announces that a school's notification targets were added or removed.
    pub fn targets_changed(&self, school: SchoolId) {
        let _ = self.board.send(BoardEvent::TargetsChanged { school });
    }

    /// Announces an acknowledgement made at the office.
    pub fn acknowledged(&self, alarm: Alarm) {
        let _ = self.pokes.send(alarm.visit.clone());
        let _ = self.board.send(BoardEvent::AlarmAcknowledged { alarm });
    }

    /// Announces alarms closed at the office (with the stand-down a phone's duress needs).
    pub fn closed(&self, alarms: Vec<Alarm>) {
        for alarm in alarms {
            let _ = self.pokes.send(alarm.visit.clone());
            let _ = self.board.send(BoardEvent::AlarmClosed { alarm });
        }
    }

    /// Everything the board should hear about from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<BoardEvent> {
        self.board.subscribe()
    }
}

/// The engine's loop: sleep until the earliest moment any watched visit needs a look, or until poked (or,
/// for an office sharing its database, until the next read of every visit to watch).
async fn run<S: Visits + Alarms>(
    store: Arc<S>,
    clock: Clock,
    mut pokes: mpsc::UnboundedReceiver<VisitId>,
    board: broadcast::Sender<BoardEvent>,
    rescan: Option<Duration>,
) {
    let mut wakes: HashMap<VisitId, DateTime<Utc>> = HashMap::new();
    look_at_every_watched_visit(&*store, clock(), &mut wakes, &board).await;
    let mut next_rescan = rescan.map(|every| tokio::time::Instant::now() + every);
    let mut refresh_from = 0;
    loop {
        let pause = match wakes.values().min() {
            Some(next) => (*next - clock()).to_std().unwrap_or(Duration::ZERO),
            None => Duration::from_secs(3600),
        };
        let rescan_at = next_rescan.unwrap_or_else(|| tokio::time::Instant::now() + pause);
        tokio::select! {
            poke = pokes.recv() => match poke {
                Some(visit) => look(&*store, &visit, clock(), &mut wakes, &board).await,
                None => return,
            },
            () = tokio::time::sleep_until(rescan_at), if next_rescan.is_some() => {
                refresh_from =
                    look_at_new_and_some_known(&*store, &clock, &mut wakes, &board, refresh_from).await;
                next_rescan = rescan.map(|every| tokio::time::Instant::now() + every);
            }
            () = tokio::time::sleep(pause) => look_at_due(&*store, clock(), &mut wakes, &board).await,
        }
    }
}

/// Looks at every visit the store says needs watching: at start, so deadlines survive a restart, and at
/// each rescan of an office that shares its database.
async fn look_at_every_watched_visit<S: Visits + Alarms>(
    store: &S,
    now: DateTime<Utc>,
    wakes: &mut HashMap<VisitId, DateTime<Utc>>,
    board: &broadcast::Sender<BoardEvent>,
) {
    match store.visits_to_watch().await {
        Ok(visits) => {
            for visit in visits {
                look(store, &visit, now, wakes, board).await;
            }
        }
        Err(error) => tracing::error!(%error, "could not load the visits to watch"),
    }
}

/// How many rescans of a shared database it takes to look again at every visit this engine watches.
const REFRESH_ROUNDS: usize = 60;

/// One rescan of a database other offices share: the visits to watch this engine does not know yet
/// (started or alarmed through another office) are looked at now, and of those it knows, the next
/// `1/REFRESH_ROUNDS` of them in turn (from `refresh_from`; returns where the next rescan goes on). A visit
/// this engine knows it looks at again when its own next deadline comes, reading the store afresh then;
/// the turns bound how stale its plan can be when another office moved a deadline earlier and then died
/// before keeping it (with a rescan each second, a minute). So a rescan costs one read and a few looks,
/// not a look at every visit.
///
/// A rescan can take a while on a busy database (a look at each of a few hundred visits), so before each
/// look the visits whose time has come are looked at first: a deadline never waits behind the rescan.
async fn look_at_new_and_some_known<S: Visits + Alarms>(
    store: &S,
    clock: &Clock,
    wakes: &mut HashMap<VisitId, DateTime<Utc>>,
    board: &broadcast::Sender<BoardEvent>,
    refresh_from: usize,
) -> usize {
    let visits = match store.visits_to_watch().await {
        Ok(visits) => visits,
        Err(error) => {
            tracing::error!(%error, "could not load the visits to watch");
            return refresh_from;
        }
    };
    let (new, known): (Vec<_>, Vec<_>) = visits.into_iter().partition(|v| !wakes.contains_key(v));
    for visit in &new {
        look_at_due(store, clock(), wakes, board).await;
        look(store, visit, clock(), wakes, board).await;
    }
    if known.is_empty() {
        return 0;
    }
    let turn = known.len().div_ceil(REFRESH_ROUNDS);
    for offset in 0..turn {
        let visit = &known[(refresh_from + offset) % known.len()];
        look_at_due(store, clock(), wakes, board).await;
        look(store, visit, clock(), wakes, board).await;
    }
    (refresh_from + turn) % known.len()
}

/// Looks at every visit whose next look has come by `now`.
async fn look_at_due<S: Visits + Alarms>(
    store: &S,
    now: DateTime<Utc>,
    wakes: &mut HashMap<VisitId, DateTime<Utc>>,
    board: &broadcast::Sender<BoardEvent>,
) {
    let due: Vec<VisitId> = wakes
        .iter()
        .filter(|(_, at)| **at <= now)
        .map(|(visit, _)| visit.clone())
        .collect();
    for visit in due {
        look(store, &visit, now, wakes, board).await;
    }
}

async fn look<S: Visits + Alarms>(
    store: &S,
    visit: &VisitId,
    now: DateTime<Utc>,
    wakes: &mut HashMap<VisitId, DateTime<Utc>>,
    board: &broadcast::Sender<BoardEvent>,
) {
    match evaluate(store, visit, now).await {
        Ok((next, events)) => {
            match next {
                Some(at) => wakes.insert(visit.clone(), at),
                None => wakes.remove(visit),
            };
            for event in events {
                tracing::warn!(?event, "escalation");
                let _ = board.send(event);
            }
        }
        Err(error) => {
            // Look again soon rather than never: a store hiccup must not silence an alarm.
            tracing::error!(%error, %visit, "escalation check failed; retrying in 1 s");
            wakes.insert(visit.clone(), now + chrono::TimeDelta::seconds(1));
        }
    }
}

/// One look at one visit at `now`: raises, escalates or notes renewed contact as due, and returns when it
/// next needs a look (or `None`) with what the board should hear.
///
/// Every deadline of the visit is watched (see `core::schedule::deadlines`): word that each person has set
/// off by the agreed time plus the first check-in, their arrival, the answer at the door, the check-ins and
/// "I've left". An alarm the office has acknowledged does not end the watch: while the staff stay silent,
/// the same silence raises a new alarm one check-in interval later (`schedule::next_missed_after`).
pub async fn evaluate<S: Visits + Alarms>(
    store: &S,
    visit_id: &VisitId,
    now: DateTime<Utc>,
) -> Result<(Option<DateTime<Utc>>, Vec<BoardEvent>), StoreError> {
    let Some((visit, state, policy)) = store.visit_with_policy(visit_id).await? else {
        return Ok((None, Vec::new()));
    };
    let mut events = Vec::new();
    let mut wakes = Vec::new();

    let alarms = store.alarms_for_visit(visit_id).await?;
    // Duress goes straight to the top. The sync that stored the alert has usually raised its alarm already,
    // in its own transaction (`SqliteStore::ingest_raising`): that one is recognised here by the same key
    // (who raised it, and when), so the engine neither raises a second nor opens a write for nothing.
    for alert in state.active_duress().filter(|alert| {
        !alarms.iter().any(|alarm| {
            alarm.kind == AlarmKind::Duress
                && alarm.about == alert.raised_by.as_str()
                && alarm.due_at == alert.raised_at
        })
    }) {
        let raised = store
            .raise_alarm(NewAlarm::duress(visit_id, alert), now)
            .await?;
        if let Some(alarm) = raised {
            events.push(BoardEvent::AlarmRaised { alarm });
        }
    }

    let current = deadlines(&visit, &state, &policy);
    for deadline in &current {
        let watching = next_silence(deadline, &alarms, &policy);
        if now >= watching.alarm_at {
            let about = deadline.about();
            let raised = store
                .raise_alarm(NewAlarm::overdue(visit_id, &about, watching.due), now)
                .await?;
            if let Some(alarm) = raised {
                events.push(BoardEvent::AlarmRaised { alarm });
            }
        } else {
            wakes.push(watching.alarm_at);
        }
    }

    for alarm in store
        .alarms_for_visit(visit_id)
        .await?
        .into_iter()
        .filter(Alarm::escalating)
    {
        let still_silent = match alarm.kind {
            AlarmKind::Overdue => current
                .iter()
                .any(|d| is_the_same_silence(d, &alarm, &policy)),
            // Heard by reception on the phone: nothing a phone sends can show the danger is over, so it
            // stays loud until a person acknowledges it.
            AlarmKind::Duress if alarm.heard_by_reception() => true,
            AlarmKind::Duress => state
                .active_duress()
                .any(|d| d.raised_at == alarm.due_at && d.raised_by.as_str() == alarm.about),
        };
        if !still_silent {
            store.note_contact_resumed(alarm.id, now).await?;
            events.push(BoardEvent::VisitChanged {
                visit: visit_id.clone(),
            });
            continue;
        }
        let last = alarm.escalated_at.unwrap_or(alarm.raised_at);
        let next = next_escalation(alarm.level, alarm.raised_at, last, &policy);
        if now >= next {
            // `None`: another office escalated it first, or it was acknowledged meanwhile; the next look
            // (at once, for this engine, when it was acknowledged here) reads it as it is now.
            match store.escalate_alarm(&alarm, now).await? {
                Some(alarm) => {
                    wakes.push(next_escalation(alarm.level, alarm.raised_at, now, &policy));
                    events.push(BoardEvent::AlarmEscalated { alarm });
                }
                None => wakes.push(now + chrono::TimeDelta::seconds(1)),
            }
        } else {
            wakes.push(next);
        }
    }
    Ok((wakes.into_iter().min(), events))
}

/// Whether `alarm` is about the silence `deadline` still describes: the same thing expected from the same
/// people, due when the deadline fell due or a whole number of check-in intervals after (the alarms raised
/// again while the office handled the first).
fn is_the_same_silence(deadline: &Deadline, alarm: &Alarm, policy: &Policy) -> bool {
    if alarm.kind != AlarmKind::Overdue || alarm.about != deadline.about() {
        return false;
    }
    let since = alarm.due_at - deadline.due;
    let interval = policy.check_in_interval.duration();
    since >= chrono::TimeDelta::zero() && since.num_seconds() % interval.num_seconds().max(1) == 0
}

/// When this silence next becomes an alarm: the deadline itself, or, once the office has handled (for now:
/// acknowledged) the latest alarm about it while nobody was heard from, the next missed interval after that.
fn next_silence(deadline: &Deadline, alarms: &[Alarm], policy: &Policy) -> Deadline {
    let handled = alarms
        .iter()
        .filter(|alarm| is_the_same_silence(deadline, alarm, policy))
        .max_by_key(|alarm| alarm.due_at);
    match handled {
        Some(alarm) => match alarm.acknowledged_at {
            Some(handled_at) => {
                let missed = Deadline {
                    due: alarm.due_at,
                    alarm_at: alarm.due_at + (deadline.alarm_at - deadline.due),
                    ..deadline.clone()
                };
                next_missed_after(&missed, handled_at, policy)
            }
            // Still open: it is the alarm for this silence; nothing new to raise.
            None => Deadline {
                due: alarm.due_at,
                alarm_at: alarm.raised_at,
                ..deadline.clone()
            },
        },
        None => deadline.clone(),
    }
}
