//! The office without a server, on a clock the test holds: one harness for the tests of the escalation
//! engine, the notifier and the records.
//!
//! - [`DemoStore`]: the demo school (seeded at 10:00 on the tests' school day, so visit-ava is agreed for
//!   10:15, visit-leo 12:15, visit-mia 14:15) in a store of its own, and its two phones (Sam's and Alex's)
//!   sending events straight into it.
//! - [`Bench`]: that store with the real escalation engine running on a test clock, either tokio's paused
//!   clock ([`Bench::paused`]: the engine's timers fire as the test moves time) or a clock set by hand while
//!   tokio's runs ([`Bench::set_by_hand`]: for tests that also talk to real servers, whose timeouts a paused
//!   clock would fire at once; the engine then wakes only when poked).
//! - [`Handoffs`]: a notification transport that hands nothing to the network: it records each message and
//!   the office's clock at the moment it was handed over, and answers as the test says, so the notifier's
//!   rules run on the paused clock.
//! - [`Bench::page`] and [`Bench::post`]: the office's pages, served in-process by the real router on the
//!   bench's clock and engine, for a session made in the store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use doorstep_core::ids::SchoolId;
use doorstep_core::lifecycle::VisitEvent;
use doorstep_core::policy::Preset;
use doorstep_core::test_support::{self, at, staff, visit};
use doorstep_office::alarms::Alarm;
use doorstep_office::clock::Clock;
use doorstep_office::demo;
use doorstep_office::escalation::{BoardEvent, Escalation};
use doorstep_office::notify::{
    Attempted, NewTarget, NotificationTarget, Notifier, Outgoing, Transport,
};
use doorstep_office::store::Device;
use doorstep_office::{AppState, OfficeStore, SqliteStore};
use tokio::sync::broadcast;

/// When the demo is seeded: 10:00 on the tests' school day.
pub fn seeded_at() -> DateTime<Utc> {
    at(10, 0)
}

/// visit-ava's agreed start: 10:15.
pub fn agreed() -> DateTime<Utc> {
    at(10, 15)
}

/// `minutes` after visit-ava's agreed start.
pub fn minutes_after_agreed(minutes: i64) -> DateTime<Utc> {
    agreed() + TimeDelta::minutes(minutes)
}

/// The demo school in a store of its own, and its two phones.
pub struct DemoStore {
    pub store: Arc<SqliteStore>,
    /// Sam's phone and Alex's, as the store knows them.
    pub sam: Device,
    pub alex: Device,
    seqs: HashMap<String, u64>,
    _dir: tempfile::TempDir,
}

impl DemoStore {
    /// The store as the office's pages use it (records, reports).
    pub fn office(&self) -> OfficeStore {
        self.store.clone().into()
    }

    /// The demo school on `preset`, seeded at [`seeded_at`].
    pub fn seeded(preset: Preset) -> DemoStore {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(SqliteStore::open(dir.path()).expect("open store"));
        let phones = demo::seed_with_policy(
            &store.clone().into(),
            "http://127.0.0.1:1",
            seeded_at(),
            preset,
        )
        .expect("seed the demo");
        let device = |token: &str| {
            store
                .authenticate(token, seeded_at())
                .expect("read devices")
                .expect("a demo phone")
        };
        DemoStore {
            sam: device(&phones.me.device_token),
            alex: device(&phones.partner.device_token),
            store,
            seqs: HashMap::new(),
            _dir: dir,
        }
    }

    /// `who`'s phone ("sam" or "alex") records `event` about `visit_id` at `recorded` by its own clock;
    /// the office receives it at `received`.
    pub fn phone_sends(
        &mut self,
        who: &str,
        visit_id: &str,
        recorded: DateTime<Utc>,
        received: DateTime<Utc>,
        event: VisitEvent,
    ) -> Vec<Alarm> {
        let device = match who {
            "sam" => &self.sam,
            "alex" => &self.alex,
            other => panic!("no demo phone for {other}"),
        };
        let seq = self.seqs.entry(who.to_owned()).or_insert(0);
        *seq += 1;
        let envelope = test_support::envelope(device.id.as_str(), *seq, visit_id, recorded, event);
        self.store
            .ingest_raising(device, &[envelope], received, received)
            .expect("the office stores the event")
            .alarms
    }

    /// visit-ava's alarms, open or not.
    pub fn alarms(&self) -> Vec<Alarm> {
        self.store
            .alarms_for_visit(&visit("visit-ava"))
            .expect("read alarms")
    }

    /// One alarm, as the store holds it now.
    pub fn alarm_of(&self, id: i64) -> Alarm {
        self.store
            .alarm(id)
            .expect("read the alarm")
            .expect("the alarm exists")
    }

    /// visit-ava's alarm log: (what, detail) a step.
    pub fn log(&self) -> Vec<(String, String)> {
        self.store
            .alarm_log(&visit("visit-ava"))
            .expect("read the alarm log")
            .into_iter()
            .map(|entry| (entry.what, entry.detail))
            .collect()
    }

    /// visit-ava's alarm log, the steps only.
    pub fn log_steps(&self) -> Vec<String> {
        self.log().into_iter().map(|(what, _)| what).collect()
    }
}

/// How the bench's clock moves.
enum Time {
    /// Follows tokio's paused clock from [`seeded_at`].
    Paused,
    /// Stays where the test last set it.
    SetByHand(Arc<Mutex<DateTime<Utc>>>),
}

/// The demo store with the real escalation engine on a test clock.
pub struct Bench {
    pub demo: DemoStore,
    pub clock: Clock,
    time: Time,
    pub engine: Escalation,
    pub engine_task: tokio::task::JoinHandle<()>,
}

impl std::ops::Deref for Bench {
    type Target = DemoStore;
    fn deref(&self) -> &DemoStore {
        &self.demo
    }
}

impl Bench {
    /// On tokio's paused clock: use in `#[tokio::test(start_paused = true)]`.
    pub async fn paused(preset: Preset) -> Bench {
        let start = tokio::time::Instant::now();
        let clock: Clock = Arc::new(move || {
            let elapsed = tokio::time::Instant::now() - start;
            seeded_at() + TimeDelta::from_std(elapsed).expect("a test lasts less than forever")
        });
        Self::start(preset, clock, Time::Paused)
    }

    /// On a clock the test sets by hand ([`Bench::advance_to`]), while tokio's runs normally.
    pub async fn set_by_hand(preset: Preset) -> Bench {
        let time = Arc::new(Mutex::new(seeded_at()));
        let clock: Clock = {
            let time = time.clone();
            Arc::new(move || *time.lock().expect("the test clock"))
        };
        Self::start(preset, clock, Time::SetByHand(time))
    }

    fn start(preset: Preset, clock: Clock, time: Time) -> Bench {
        let demo = DemoStore::seeded(preset);
        let (engine, engine_task) = Escalation::spawn(demo.store.clone(), clock.clone());
        Bench {
            demo,
            clock,
            time,
            engine,
            engine_task,
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// Moves the clock to `at`. On the paused clock the engine's timers fire on the way, and it finishes
    /// anything due at `at`; set by hand, the engine notices only when poked.
    pub async fn advance_to(&self, at: DateTime<Utc>) {
        match &self.time {
            Time::Paused => {
                let wait = (at - self.now()).to_std().expect("time only moves forward");
                tokio::time::sleep(wait).await;
                // Let the engine finish anything due at this instant.
                for _ in 0..10 {
                    tokio::task::yield_now().await;
                }
            }
            Time::SetByHand(time) => *time.lock().expect("the test clock") = at,
        }
    }

    /// `who`'s phone sends `event` about visit-ava now, and the office pokes the engine as the sync
    /// handler does.
    pub fn send(&mut self, who: &str, event: VisitEvent) {
        let now = self.now();
        // As the sync handler does: the alarms the ingest raised are announced, then the engine poked.
        for alarm in self.demo.phone_sends(who, "visit-ava", now, now, event) {
            self.engine.raised(alarm);
        }
        self.engine.visit_changed(visit("visit-ava"));
    }

    /// Both leave (at 10:01), arrive (10:13) and go in at the agreed time (10:15); then the phones fall
    /// silent.
    pub async fn start_visit(&mut self) {
        self.advance_to(agreed() - TimeDelta::minutes(14)).await;
        for who in ["sam", "alex"] {
            self.send(
                who,
                VisitEvent::Departed {
                    staff: staff(who),
                    expected_arrival: agreed(),
                    expected_end: minutes_after_agreed(45),
                },
            );
        }
        self.advance_to(agreed() - TimeDelta::minutes(2)).await;
        for who in ["sam", "alex"] {
            self.send(who, VisitEvent::ArrivedOutside { staff: staff(who) });
        }
        self.advance_to(agreed()).await;
        self.send(
            "sam",
            VisitEvent::VisitStarted {
                by: staff("sam"),
                staff: vec![staff("sam"), staff("alex")],
            },
        );
    }

    /// Stops the engine, as a crash or a restart of the office would.
    pub fn stop_engine(&self) {
        self.engine_task.abort();
    }

    /// Starts a new engine on the same store and clock, as the office does when it comes back.
    pub fn restart_engine(&mut self) {
        self.engine_task.abort();
        let (engine, task) = Escalation::spawn(self.demo.store.clone(), self.clock.clone());
        self.engine = engine;
        self.engine_task = task;
    }
}

/// One message the notifier handed over, and the office's clock at that moment.
#[derive(Debug, Clone)]
pub struct Handoff {
    pub message: Outgoing,
    pub at: DateTime<Utc>,
}

/// A [`Transport`] that records each hand-off and accepts it, unless its address is told to refuse.
#[derive(Clone)]
pub struct Handoffs {
    clock: Clock,
    refuse: Arc<Mutex<Vec<String>>>,
    sent: tokio::sync::mpsc::UnboundedSender<Handoff>,
}

impl Handoffs {
    pub fn new(clock: Clock) -> (Handoffs, tokio::sync::mpsc::UnboundedReceiver<Handoff>) {
        let (sent, received) = tokio::sync::mpsc::unbounded_channel();
        (
            Handoffs {
                clock,
                refuse: Arc::default(),
                sent,
            },
            received,
        )
    }

    /// Messages to `address` are accepted again.
    pub fn allow(&self, address: &str) {
        self.refuse
            .lock()
            .expect("the refusals")
            .retain(|a| a != address);
    }

    /// Every message to `address` fails from now on, as a refusing server would.
    pub fn refuse(&self, address: &str) {
        self.refuse
            .lock()
            .expect("the refusals")
            .push(address.to_owned());
    }
}

impl Transport for Handoffs {
    fn send(&self, message: Outgoing) -> Attempted {
        let refused = self
            .refuse
            .lock()
            .expect("the refusals")
            .contains(&message.address);
        let _ = self.sent.send(Handoff {
            at: (self.clock)(),
            message,
        });
        Box::pin(async move {
            if refused {
                Err("550 refused by the test's server".to_owned())
            } else {
                Ok("accepted by the test's server".to_owned())
            }
        })
    }
}

/// The school of the demo.
pub fn demo_school() -> SchoolId {
    "demo-primary".parse().expect("a school id")
}

impl Bench {
    /// A notifier on this bench's store and clock, handing its messages to a [`Handoffs`], running as the
    /// office runs it (woken by the engine's announcements).
    pub fn run_notifier(&self) -> (Handoffs, tokio::sync::mpsc::UnboundedReceiver<Handoff>) {
        let (handoffs, received) = Handoffs::new(self.clock.clone());
        let notifier = Notifier::with_transport(
            self.store.clone(),
            Some("doorstep@oakfield.example".into()),
            Arc::new(handoffs.clone()),
        );
        let (_handle, task) = notifier.spawn(self.clock.clone(), self.engine.subscribe());
        // Ended with the test's runtime.
        drop(task);
        (handoffs, received)
    }

    /// Adds a notification target to the demo school, from now on.
    pub fn add_target(&self, target: NewTarget) -> NotificationTarget {
        self.store
            .add_notification_target(&demo_school(), &target, self.now())
            .expect("add a target")
    }

    /// The real router on this bench's store, clock and engine.
    fn router(&self) -> axum::Router {
        let mut state = AppState::new(self.store.clone().into());
        state.clock = self.clock.clone();
        state.escalation = Some(self.engine.clone());
        doorstep_office::router(state)
    }

    /// A session for `who` made in the store at the bench's time: its cookie and CSRF token.
    pub fn session(&self, who: &str) -> (String, String) {
        static SESSIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SESSIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let token = format!("a-bench-session-{n}-for-{who}");
        let session = self
            .store
            .start_session(&staff(who), &token, self.now())
            .expect("start a session");
        (format!("doorstep_session={token}"), session.csrf_token)
    }

    /// GETs `path` as `who`: the status and the page.
    pub async fn page(&self, who: &str, path: &str) -> (u16, String) {
        let (cookie, _) = self.session(who);
        let request = axum::http::Request::get(path)
            .header("cookie", cookie)
            .body(axum::body::Body::empty())
            .expect("a request");
        answer(self.router(), request).await
    }

    /// POSTs `form` (with the session's CSRF token) to `path` as `who`: the status and the page.
    pub async fn post(&self, who: &str, path: &str, form: &[(&str, &str)]) -> (u16, String) {
        let (cookie, csrf) = self.session(who);
        let mut fields = vec![("csrf", csrf.as_str())];
        fields.extend_from_slice(form);
        let body = serde_urlencoded::to_string(&fields).expect("a form");
        let request = axum::http::Request::post(path)
            .header("cookie", cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(axum::body::Body::from(body))
            .expect("a request");
        answer(self.router(), request).await
    }
}

async fn answer(
    router: axum::Router,
    request: axum::http::Request<axum::body::Body>,
) -> (u16, String) {
    use tower::ServiceExt as _;
    let response = router.oneshot(request).await.expect("the router answers");
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("the body");
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Waits for the engine to announce a raised or escalated alarm on `board`; the limit only stops a broken
/// test from hanging.
pub async fn next_alarm(board: &mut broadcast::Receiver<BoardEvent>) -> BoardEvent {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), board.recv())
            .await
            .expect("the engine announced within 10 s")
            .expect("the board channel is open");
        if matches!(
            event,
            BoardEvent::AlarmRaised { .. } | BoardEvent::AlarmEscalated { .. }
        ) {
            return event;
        }
    }
}
