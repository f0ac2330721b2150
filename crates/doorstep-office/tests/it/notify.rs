//! Alarm notifications against real local receivers started here: a small plain SMTP server, a TLS relay
//! with AUTH (`smtp_relay.rs`) and an HTTP server, all on port 0. Alarms come from the real escalation
//! engine: through the office's sync API with the real clock, or with a clock the test sets and the
//! worker's steps driven by hand.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use chrono::{DateTime, TimeDelta, Utc};
use doorstep_core::ids::SchoolId;
use doorstep_core::lifecycle::{DuressVia, VisitEvent};
use doorstep_core::policy::Preset;
use doorstep_core::schedule::AlarmLevel;
use doorstep_office::alarms::{Alarm, AlarmKind};
use doorstep_office::escalation::BoardEvent;
use doorstep_office::notify::{
    retry_delay, Delivery, DeliveryOutcome, NewTarget, Notifier, NotifyConfig, SmtpConfig,
    SmtpLogin, SmtpTls, WantedLevels,
};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc, oneshot};
use uuid::Uuid;

use crate::bench::{self, minutes_after_agreed};
use crate::helpers::{batch, envelope, spawn_office_notifying, staff, visit};
use crate::smtp_relay::{self, Relay, RelaySettings, RelayTls};

const SECRET: &str = "correct horse battery staple";
const FROM: &str = "doorstep@oakfield.example";
const OFFICE: &str = "office@oakfield.example";
const HEAD: &str = "head@oakfield.example";

/// Waits for the next item; the limit only stops a broken test from hanging.
async fn next<T>(rx: &mut mpsc::UnboundedReceiver<T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("arrived within 10 s")
        .expect("receiver still running")
}

// ---------------------------------------------------------------------------------------------------------
// A small SMTP server that hands each accepted message to the test.

struct Mail {
    from: String,
    to: Vec<String>,
    /// The message as DATA carried it, dot-stuffing undone.
    data: String,
}

impl Mail {
    fn header(&self, name: &str) -> Option<String> {
        let (head, _) = self.data.split_once("\r\n\r\n")?;
        let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
        unfolded.split("\r\n").find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    }

    /// The subject with its RFC 2047 encoded words decoded.
    fn subject(&self) -> String {
        let raw = self.header("Subject").expect("a subject");
        let mut bytes = Vec::new();
        for word in raw.split_whitespace() {
            match word
                .strip_prefix("=?UTF-8?B?")
                .and_then(|w| w.strip_suffix("?="))
            {
                Some(encoded) => bytes.extend(
                    base64::engine::general_purpose::STANDARD
                        .decode(encoded)
                        .expect("base64"),
                ),
                None => {
                    if !bytes.is_empty() {
                        bytes.push(b' ');
                    }
                    bytes.extend(word.as_bytes());
                }
            }
        }
        String::from_utf8(bytes).expect("UTF-8 subject")
    }

    fn body(&self) -> &str {
        self.data
            .split_once("\r\n\r\n")
            .map_or("", |(_, body)| body)
    }
}

struct SmtpReceiver {
    port: u16,
    mail: mpsc::UnboundedReceiver<Mail>,
}

/// `refuse_rcpt`: a reply to give every RCPT TO instead of 250.
async fn smtp_receiver(refuse_rcpt: Option<&'static str>) -> SmtpReceiver {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, mail) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(smtp_session(stream, tx.clone(), refuse_rcpt));
        }
    });
    SmtpReceiver { port, mail }
}

async fn smtp_session(
    stream: TcpStream,
    tx: mpsc::UnboundedSender<Mail>,
    refuse_rcpt: Option<&'static str>,
) {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    write
        .write_all(b"220 test.invalid ESMTP\r\n")
        .await
        .unwrap();
    let (mut from, mut to) = (String::new(), Vec::new());
    loop {
        let mut line = String::new();
        if read.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let command = line.trim_end().to_owned();
        let upper = command.to_ascii_uppercase();
        let reply: &str = if upper.starts_with("EHLO") {
            "250-test.invalid\r\n250 8BITMIME\r\n"
        } else if let Some(address) = upper
            .starts_with("MAIL FROM:")
            .then(|| command["MAIL FROM:".len()..].to_owned())
        {
            from = address
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .trim_matches(['<', '>'])
                .to_owned();
            "250 OK\r\n"
        } else if upper.starts_with("RCPT TO:") {
            match refuse_rcpt {
                Some(refusal) => refusal,
                None => {
                    to.push(
                        command["RCPT TO:".len()..]
                            .trim_matches(['<', '>'])
                            .to_owned(),
                    );
                    "250 OK\r\n"
                }
            }
        } else if upper == "DATA" {
            write.write_all(b"354 go ahead\r\n").await.unwrap();
            let mut lines = Vec::new();
            loop {
                let mut line = String::new();
                if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                let line = line.strip_suffix("\r\n").expect("CRLF line").to_owned();
                if line == "." {
                    break;
                }
                lines.push(line.strip_prefix('.').map_or(line.clone(), str::to_owned));
            }
            let _ = tx.send(Mail {
                from: std::mem::take(&mut from),
                to: std::mem::take(&mut to),
                data: lines.join("\r\n"),
            });
            "250 queued\r\n"
        } else if upper == "QUIT" {
            let _ = write.write_all(b"221 bye\r\n").await;
            return;
        } else {
            "500 unknown command\r\n"
        };
        write.write_all(reply.as_bytes()).await.unwrap();
    }
}

fn smtp_config(port: u16) -> NotifyConfig {
    NotifyConfig {
        smtp: Some(SmtpConfig {
            host: "127.0.0.1".into(),
            port,
            from: FROM.into(),
            hello_name: "office.oakfield.example".into(),
            // The local receiver speaks plain SMTP on a loopback address, the one place that is allowed.
            tls: SmtpTls::None,
            login: None,
            extra_roots_pem: None,
        }),
    }
}

// ---------------------------------------------------------------------------------------------------------
// An HTTP server that records each webhook request and answers as told.

struct Hook {
    headers: HeaderMap,
    body: Bytes,
    /// What it answered (`None` while the test holds the answer).
    answered: Option<StatusCode>,
    respond: Option<oneshot::Sender<StatusCode>>,
}

impl Hook {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no {name} header"))
    }

    fn delivery(&self) -> Uuid {
        self.header("x-doorstep-delivery")
            .parse()
            .expect("a UUID delivery id")
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// Checks the signature with the secret, independently of the office's own code.
    fn assert_signed(&self) {
        let hex = self
            .header("x-doorstep-signature")
            .strip_prefix("sha256=")
            .expect("sha256= prefix");
        let signature: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
            .collect();
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(&self.body);
        mac.verify_slice(&signature)
            .expect("the signature matches the body and the secret");
    }
}

enum Answer {
    /// 500 to the first N requests, 200 after.
    FailFirst(usize),
    /// Hold each request until the test answers it.
    Held,
}

#[derive(Clone)]
struct HookState {
    fail_first: Option<usize>,
    seen: Arc<AtomicUsize>,
    tx: mpsc::UnboundedSender<Hook>,
}

struct HookReceiver {
    url: String,
    requests: mpsc::UnboundedReceiver<Hook>,
}

async fn hook_receiver(answer: Answer) -> HookReceiver {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/doorstep", listener.local_addr().unwrap());
    let (tx, requests) = mpsc::unbounded_channel();
    let state = HookState {
        fail_first: match answer {
            Answer::FailFirst(n) => Some(n),
            Answer::Held => None,
        },
        seen: Arc::default(),
        tx,
    };
    let app = axum::Router::new()
        .route("/hooks/doorstep", axum::routing::post(hook_handler))
        .with_state(state);
    tokio::spawn(async move { axum::serve(listener, app).await });
    HookReceiver { url, requests }
}

async fn hook_handler(
    State(state): State<HookState>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let seen = state.seen.fetch_add(1, Ordering::SeqCst);
    match state.fail_first {
        Some(n) => {
            let status = if seen < n {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::OK
            };
            let _ = state.tx.send(Hook {
                headers,
                body,
                answered: Some(status),
                respond: None,
            });
            status
        }
        None => {
            let (respond, answer) = oneshot::channel();
            let _ = state.tx.send(Hook {
                headers,
                body,
                answered: None,
                respond: Some(respond),
            });
            answer.await.unwrap_or(StatusCode::OK)
        }
    }
}

fn demo_school() -> SchoolId {
    "demo-primary".parse().unwrap()
}

fn email(address: &str, wants: WantedLevels) -> NewTarget {
    NewTarget::email(address, wants).unwrap()
}

fn webhook(url: &str, wants: WantedLevels) -> NewTarget {
    NewTarget::webhook(url, SECRET, wants).unwrap()
}

// ---------------------------------------------------------------------------------------------------------
// Through the real office: a phone raises duress over the sync API.

#[tokio::test]
async fn duress_from_a_phone_is_emailed_and_posted_and_each_is_recorded_before_it_is_sent() {
    let mut smtp = smtp_receiver(None).await;
    let mut hook = hook_receiver(Answer::Held).await;
    let office = spawn_office_notifying(smtp_config(smtp.port)).await;
    for target in [
        email(HEAD, WantedLevels::AUTHORISER),
        email(OFFICE, WantedLevels::BOARD),
        webhook(&hook.url, WantedLevels::BOTH),
    ] {
        office
            .store
            .add_notification_target(&demo_school(), &target, Utc::now())
            .unwrap();
    }

    let partner = &office.phones.partner;
    let duress = envelope(
        partner,
        1,
        "visit-ava",
        VisitEvent::DuressRaised {
            staff: staff("alex"),
            via: DuressVia::DuressPin,
        },
    );
    let (status, body) = office
        .post_sync(&partner.device_token, &batch(&[duress]))
        .await;
    assert_eq!(status, 200, "{body}");

    // The webhook arrives. While it waits for its answer, the office has it on record, not yet delivered.
    let mut post = next(&mut hook.requests).await;
    post.assert_signed();
    let alarm = office
        .store
        .alarms_for_visit(&visit("visit-ava"))
        .unwrap()
        .into_iter()
        .find(|a| a.kind == AlarmKind::Duress)
        .expect("a duress alarm");
    let deliveries = office.store.deliveries_for_alarm(alarm.id).unwrap();
    assert_eq!(
        deliveries.len(),
        3,
        "one notification per target: duress is one step for the board and the authoriser alike"
    );
    let recorded = deliveries
        .iter()
        .find(|d| d.id == post.delivery())
        .expect("the delivery was recorded before it was sent");
    assert_eq!(recorded.payload.as_bytes(), post.body.as_ref());
    assert_eq!(recorded.delivered_at, None, "not delivered before the 2xx");
    post.respond.take().unwrap().send(StatusCode::OK).unwrap();

    let json = post.json();
    assert_eq!(json["alarm"]["kind"], "duress");
    assert_eq!(json["alarm"]["level"], "authoriser");
    assert_eq!(json["alarm"]["id"], alarm.id);
    assert_eq!(json["step"]["what"], "raised");
    assert_eq!(json["visit_id"], "visit-ava");
    assert_eq!(json["school"]["id"], "demo-primary");
    // The delivery's id is inside the signed body (a replay under another id fails the signature), and
    // the home address is not in it at all.
    assert_eq!(json["delivery_id"], post.delivery().to_string());
    assert!(json.get("address").is_none(), "{json}");
    assert!(
        !String::from_utf8_lossy(&post.body).contains("Elm Row"),
        "no home address"
    );
    assert_eq!(
        json["staff"],
        serde_json::json!([
            {"name": "Sam Taylor", "phone": "07700 900003"},
            {"name": "Alex Morgan", "phone": "07700 900004"}
        ])
    );
    assert!(json["sent_at"].is_string());
    assert!(
        !String::from_utf8_lossy(&post.body).contains("Ava B."),
        "no pupil name"
    );

    let mut mails = vec![next(&mut smtp.mail).await, next(&mut smtp.mail).await];
    mails.sort_by(|a, b| a.to.cmp(&b.to));
    let recipients: Vec<_> = mails.iter().map(|m| m.to.clone()).collect();
    assert_eq!(recipients, [vec![HEAD.to_owned()], vec![OFFICE.to_owned()]]);
    for mail in &mails {
        assert_eq!(mail.from, FROM);
        let subject = mail.subject();
        assert!(
            subject.starts_with(
                "Doorstep ALARM: duress on visit visit-ava — duress raised by alex at "
            ),
            "{subject}"
        );
        assert!(!subject.contains("Ava"), "no pupil name in the subject");
        let body = mail.body();
        for needed in [
            "12 Elm Row, Oakfield, OK1 2AB",
            "Sam Taylor: 07700 900003",
            "Alex Morgan: 07700 900004",
            "Oakfield Primary (demo), office 01632 960000",
        ] {
            assert!(body.contains(needed), "{needed:?} missing from:\n{body}");
        }
        assert!(!body.contains("Ava B."), "no pupil name in the body");
        let id: Uuid = mail.header("X-Doorstep-Delivery").unwrap().parse().unwrap();
        assert!(deliveries.iter().any(|d| d.id == id));
        assert_eq!(
            mail.header("Message-ID").unwrap(),
            format!("<{id}@oakfield.example>")
        );
    }
}

// ---------------------------------------------------------------------------------------------------------
// With a clock the test sets: the real escalation engine raises and escalates, the worker is stepped by hand.

/// The shared bench on a clock set by hand (these tests also talk to real receivers), with a notifier on
/// it whose worker steps the test drives, and the board's announcements.
struct Bench {
    office: bench::Bench,
    notifier: Notifier,
    config: NotifyConfig,
    board: broadcast::Receiver<BoardEvent>,
}

impl std::ops::Deref for Bench {
    type Target = bench::Bench;
    fn deref(&self) -> &bench::Bench {
        &self.office
    }
}

impl std::ops::DerefMut for Bench {
    fn deref_mut(&mut self) -> &mut bench::Bench {
        &mut self.office
    }
}

impl Bench {
    async fn start(config: NotifyConfig) -> Bench {
        let office = bench::Bench::set_by_hand(Preset::PrimaryHeadteacher).await;
        let board = office.engine.subscribe();
        let notifier = Notifier::new(office.store.clone(), config.clone()).unwrap();
        Bench {
            office,
            notifier,
            config,
            board,
        }
    }

    fn add_target(&self, target: NewTarget) {
        self.store
            .add_notification_target(&demo_school(), &target, self.now())
            .unwrap();
    }

    /// Moves the clock to `at`, has the engine look at the visit, and waits for it to announce an alarm.
    async fn engine_announces_at(&mut self, at: DateTime<Utc>) -> BoardEvent {
        self.advance_to(at).await;
        self.engine.visit_changed(visit("visit-ava"));
        bench::next_alarm(&mut self.board).await
    }

    /// The first check-in (due 10:25) is missed: overdue at 10:30 plus a moment.
    async fn overdue(&mut self) -> Alarm {
        match self
            .engine_announces_at(minutes_after_agreed(15) + TimeDelta::milliseconds(1))
            .await
        {
            BoardEvent::AlarmRaised { alarm } => alarm,
            other => panic!("expected a raised alarm, got {other:?}"),
        }
    }

    /// Five minutes on, nobody has acknowledged it: the authoriser is told.
    async fn escalated(&mut self) -> Alarm {
        match self
            .engine_announces_at(minutes_after_agreed(20) + TimeDelta::milliseconds(2))
            .await
        {
            BoardEvent::AlarmEscalated { alarm } => alarm,
            other => panic!("expected an escalation, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn an_overdue_alarm_tells_board_targets_and_its_escalation_only_authoriser_targets() {
    let mut smtp = smtp_receiver(None).await;
    let mut hook = hook_receiver(Answer::FailFirst(0)).await;
    let mut bench = Bench::start(smtp_config(smtp.port)).await;
    bench.add_target(email(OFFICE, WantedLevels::BOARD));
    bench.add_target(email(HEAD, WantedLevels::AUTHORISER));
    bench.add_target(webhook(&hook.url, WantedLevels::BOTH));
    bench.start_visit().await;

    let alarm = bench.overdue().await;
    assert_eq!(alarm.level, AlarmLevel::Board);
    let now = bench.now();
    assert_eq!(bench.notifier.record_deliveries(now).await.unwrap(), 2);
    let outcome = bench.notifier.deliver_due(now).await.unwrap();
    assert_eq!(
        (outcome.delivered, outcome.failed, outcome.next_due),
        (2, 0, None)
    );
    let mail = next(&mut smtp.mail).await;
    assert_eq!(mail.to, [OFFICE]);
    assert_eq!(
        mail.subject(),
        "Doorstep ALARM: overdue on visit visit-ava — no check_in since it was due at 10:25:00 GMT"
    );
    let post = next(&mut hook.requests).await;
    post.assert_signed();
    let json = post.json();
    assert_eq!(
        (&json["step"]["what"], &json["alarm"]["level"]),
        (&"raised".into(), &"board".into())
    );

    // A target added a minute later hears of what happens from then on, not of the raise before it.
    bench.advance_to(now + TimeDelta::minutes(1)).await;
    bench.add_target(email("late@oakfield.example", WantedLevels::BOTH));

    let escalated = bench.escalated().await;
    assert_eq!(escalated.level, AlarmLevel::Authoriser);
    let now = bench.now();
    assert_eq!(bench.notifier.record_deliveries(now).await.unwrap(), 3);
    let outcome = bench.notifier.deliver_due(now).await.unwrap();
    assert_eq!((outcome.delivered, outcome.failed), (3, 0));
    let mut mails = [next(&mut smtp.mail).await, next(&mut smtp.mail).await];
    mails.sort_by(|a, b| a.to.cmp(&b.to));
    assert_eq!(mails[0].to, [HEAD]);
    assert_eq!(mails[1].to, ["late@oakfield.example"]);
    assert!(
        mails[0].body().contains(
            "Now: not acknowledged at the level of the office within 5 minutes: the alarm reached \
             the level of the headteacher"
        ),
        "{}",
        mails[0].body()
    );
    let second = next(&mut hook.requests).await;
    second.assert_signed();
    assert_ne!(second.delivery(), post.delivery());
    assert_eq!(second.json()["step"]["what"], "reached_level");
    assert_eq!(second.json()["step"]["level"], "authoriser");
    assert_eq!(second.json()["alarm"]["level"], "authoriser");
    assert_eq!(second.json()["audience"], serde_json::json!(["authoriser"]));
    assert!(
        smtp.mail.try_recv().is_err() && hook.requests.try_recv().is_err(),
        "the board-only address heard nothing of the escalation"
    );

    assert_eq!(
        bench.log_steps(),
        [
            "raised",
            "notified",
            "notified",
            "reached_level",
            "notified",
            "notified",
            "notified"
        ]
    );
    let log = bench.log();
    assert!(log.iter().any(|(what, detail)| what == "notified"
        && detail == "email to office@oakfield.example: accepted by the SMTP server (attempt 1)"));
    assert!(log.iter().any(|(what, detail)| what == "notified"
        && detail == "webhook to 127.0.0.1: answered 200 OK (attempt 1)"));
}

#[tokio::test]
async fn the_running_worker_sends_on_the_engines_announcement_and_retries_when_due() {
    let mut hook = hook_receiver(Answer::FailFirst(1)).await;
    let mut bench = Bench::start(NotifyConfig::default()).await;
    bench.add_target(webhook(&hook.url, WantedLevels::BOARD));
    let (worker, task) = bench
        .notifier
        .clone()
        .spawn(bench.clock.clone(), bench.engine.subscribe());
    bench.start_visit().await;
    bench.overdue().await;
    let first = next(&mut hook.requests).await;
    assert_eq!(first.answered, Some(StatusCode::INTERNAL_SERVER_ERROR));

    // The retry falls due 10 s later by the office's clock.
    bench.advance_to(bench.now() + TimeDelta::seconds(10)).await;
    worker.wake();
    let second = next(&mut hook.requests).await;
    assert_eq!(second.answered, Some(StatusCode::OK));
    assert_eq!(second.delivery(), first.delivery());
    task.abort();
}

#[test]
fn the_back_off_between_tries() {
    let seconds: Vec<i64> = (1..=8).map(|n| retry_delay(n).num_seconds()).collect();
    assert_eq!(seconds, [10, 30, 60, 120, 300, 300, 300, 300]);
}

#[tokio::test]
async fn a_receiver_that_fails_twice_gets_the_same_signed_delivery_on_the_third_try_at_the_back_off_times(
) {
    let mut hook = hook_receiver(Answer::FailFirst(2)).await;
    let mut bench = Bench::start(NotifyConfig::default()).await;
    bench.add_target(webhook(&hook.url, WantedLevels::BOARD));
    bench.start_visit().await;
    let alarm = bench.overdue().await;
    let t0 = bench.now();
    let at = |seconds: i64, millis: i64| {
        t0 + TimeDelta::seconds(seconds) + TimeDelta::milliseconds(millis)
    };
    let notifier = &bench.notifier;
    assert_eq!(notifier.record_deliveries(t0).await.unwrap(), 1);

    // (when the step runs, failed, delivered, next due)
    let table = [
        (at(0, 0), 1, 0, Some(at(10, 0))),
        (at(10, -1), 0, 0, Some(at(10, 0))),
        (at(10, 0), 1, 0, Some(at(40, 0))),
        (at(40, -1), 0, 0, Some(at(40, 0))),
        (at(40, 0), 0, 1, None),
        (at(3600, 0), 0, 0, None),
    ];
    for (now, failed, delivered, next_due) in table {
        let outcome = notifier.deliver_due(now).await.unwrap();
        assert_eq!(
            (outcome.failed, outcome.delivered, outcome.next_due),
            (failed, delivered, next_due),
            "at {now}"
        );
    }

    let posts = [
        next(&mut hook.requests).await,
        next(&mut hook.requests).await,
        next(&mut hook.requests).await,
    ];
    let answered: Vec<_> = posts.iter().map(|p| p.answered.unwrap().as_u16()).collect();
    assert_eq!(answered, [500, 500, 200]);
    for post in &posts {
        post.assert_signed();
        assert_eq!(
            post.delivery(),
            posts[0].delivery(),
            "one delivery, tried three times"
        );
        assert_eq!(post.body, posts[0].body, "the same bytes every time");
    }

    let deliveries = bench.store.deliveries_for_alarm(alarm.id).unwrap();
    assert_eq!(deliveries.len(), 1);
    let delivery = &deliveries[0];
    assert_eq!(delivery.attempts, 3);
    assert_eq!(delivery.delivered_at, Some(at(40, 0)));
    assert_eq!(delivery.next_attempt_at, None);
    assert_eq!(
        delivery.last_error.as_deref(),
        Some("the receiver answered 500 Internal Server Error")
    );
    assert_eq!(
        bench.log_steps(),
        [
            "raised",
            "notification_failed",
            "notification_failed",
            "notified"
        ]
    );
    assert_eq!(
        bench.log()[1].1,
        "webhook to 127.0.0.1 failed (attempt 1): the receiver answered 500 Internal Server Error; \
         next try at 10:30:10 UTC"
    );
}

#[tokio::test]
async fn a_step_is_never_delivered_twice_by_two_workers_or_after_a_restart() {
    let mut smtp = smtp_receiver(None).await;
    let mut hook = hook_receiver(Answer::FailFirst(0)).await;
    let mut bench = Bench::start(smtp_config(smtp.port)).await;
    bench.add_target(email(OFFICE, WantedLevels::BOARD));
    bench.add_target(webhook(&hook.url, WantedLevels::BOARD));
    bench.start_visit().await;
    let alarm = bench.overdue().await;
    let now = bench.now();

    let other = Notifier::new(bench.store.clone(), bench.config.clone()).unwrap();
    assert_eq!(bench.notifier.record_deliveries(now).await.unwrap(), 2);
    assert_eq!(
        other.record_deliveries(now).await.unwrap(),
        0,
        "already recorded"
    );
    let (a, b) = tokio::join!(bench.notifier.deliver_due(now), other.deliver_due(now));
    assert_eq!(a.unwrap().delivered + b.unwrap().delivered, 2);
    next(&mut smtp.mail).await;
    next(&mut hook.requests).await;

    // The office restarts: a new notifier on the same database finds nothing left to do.
    drop(other);
    let restarted = Notifier::new(bench.store.clone(), bench.config.clone()).unwrap();
    let later = now + TimeDelta::hours(1);
    assert_eq!(restarted.record_deliveries(later).await.unwrap(), 0);
    assert_eq!(restarted.deliver_due(later).await.unwrap().attempted(), 0);
    assert!(smtp.mail.try_recv().is_err() && hook.requests.try_recv().is_err());
    let deliveries = bench.store.deliveries_for_alarm(alarm.id).unwrap();
    let attempts: Vec<_> = deliveries.iter().map(|d| d.attempts).collect();
    assert_eq!(attempts, [1, 1]);
    assert_eq!(
        bench.log_steps(),
        ["raised", "notified", "notified"],
        "each delivered once"
    );
}

#[tokio::test]
async fn without_an_smtp_server_email_fails_in_the_log_until_the_alarm_is_acknowledged() {
    let mut bench = Bench::start(NotifyConfig::default()).await;
    bench.add_target(email(OFFICE, WantedLevels::BOARD));
    bench.start_visit().await;
    let alarm = bench.overdue().await;
    let t0 = bench.now();
    assert_eq!(bench.notifier.record_deliveries(t0).await.unwrap(), 1);
    let outcome = bench.notifier.deliver_due(t0).await.unwrap();
    assert_eq!(outcome.failed, 1);
    let (what, detail) = bench.log().pop().unwrap();
    assert_eq!(what, "notification_failed");
    assert!(detail.contains("no SMTP server is configured"), "{detail}");

    let acknowledged = bench
        .store
        .acknowledge_alarm(alarm.id, "Olu Office", t0 + TimeDelta::seconds(5))
        .unwrap();
    bench.engine.acknowledged(acknowledged);
    let outcome = bench
        .notifier
        .deliver_due(t0 + TimeDelta::seconds(10))
        .await
        .unwrap();
    assert_eq!(
        (outcome.attempted(), outcome.cancelled, outcome.next_due),
        (0, 1, None)
    );
    assert_eq!(
        bench.log().last().unwrap(),
        &(
            "notification_cancelled".to_owned(),
            "email to office@oakfield.example: no more tries after 1 failed, the alarm was acknowledged"
                .to_owned()
        )
    );
    let delivery = &bench.store.deliveries_for_alarm(alarm.id).unwrap()[0];
    assert_eq!(
        (
            delivery.attempts,
            delivery.delivered_at,
            delivery.next_attempt_at
        ),
        (1, None, None)
    );
}

#[tokio::test]
async fn an_smtp_refusal_is_a_failed_attempt_with_the_servers_words() {
    let smtp = smtp_receiver(Some("550 5.1.1 no such mailbox\r\n")).await;
    let mut bench = Bench::start(smtp_config(smtp.port)).await;
    bench.add_target(email(OFFICE, WantedLevels::BOARD));
    bench.start_visit().await;
    let alarm = bench.overdue().await;
    let now = bench.now();
    bench.notifier.record_deliveries(now).await.unwrap();
    let outcome = bench.notifier.deliver_due(now).await.unwrap();
    assert_eq!((outcome.delivered, outcome.failed), (0, 1));
    let delivery = &bench.store.deliveries_for_alarm(alarm.id).unwrap()[0];
    assert_eq!(
        delivery.last_error.as_deref(),
        Some("SMTP failed while sending the message: permanent error (550): 5.1.1 no such mailbox")
    );
}

#[tokio::test]
async fn targets_are_checked_before_they_are_stored() {
    let bench = Bench::start(NotifyConfig::default()).await;
    let refused = [
        NewTarget::email("not an address", WantedLevels::BOARD),
        NewTarget::email(
            "head@oakfield.example\r\nBcc: x@example.com",
            WantedLevels::BOARD,
        ),
        NewTarget::email("<head@oakfield.example>", WantedLevels::BOARD),
        NewTarget::email("a@b@c", WantedLevels::BOARD),
        NewTarget::webhook("ftp://example.com/hook", SECRET, WantedLevels::BOARD),
        NewTarget::webhook("not a url", SECRET, WantedLevels::BOARD),
        NewTarget::webhook("https://example.com/hook", "too short", WantedLevels::BOARD),
        // Plain http:// only to this machine, unless explicitly allowed.
        NewTarget::webhook("http://gateway.example/hook", SECRET, WantedLevels::BOARD),
        NewTarget::webhook("http://192.0.2.8/hook", SECRET, WantedLevels::BOARD),
    ];
    for target in refused {
        assert!(target.is_err(), "{target:?}");
    }
    for allowed in [
        NewTarget::webhook("http://127.0.0.1:9/hook", SECRET, WantedLevels::BOARD),
        NewTarget::webhook("http://localhost/hook", SECRET, WantedLevels::BOARD),
        NewTarget::webhook("http://[::1]/hook", SECRET, WantedLevels::BOARD),
        NewTarget::webhook_allowing(
            "http://gateway.example/hook",
            SECRET,
            WantedLevels::BOARD,
            true,
        ),
    ] {
        assert!(allowed.is_ok(), "{allowed:?}");
    }
    let hears_nothing = bench.store.add_notification_target(
        &demo_school(),
        &email(HEAD, WantedLevels::NONE),
        bench.now(),
    );
    assert!(
        hears_nothing.is_err(),
        "a target with no level and no role would hear of nothing"
    );
    bench.add_target(email(HEAD, WantedLevels::AUTHORISER));
    let again = bench.store.add_notification_target(
        &demo_school(),
        &email(HEAD, WantedLevels::BOARD),
        bench.now(),
    );
    assert!(again.is_err(), "the same address twice");
    let unknown_school = bench.store.add_notification_target(
        &"no-such-school".parse().unwrap(),
        &email(OFFICE, WantedLevels::BOARD),
        bench.now(),
    );
    assert!(unknown_school.is_err());
    let targets = bench.store.notification_targets().unwrap();
    assert_eq!(targets.len(), 1);
    assert!(
        !format!(
            "{:?}",
            webhook("https://example.com/h", WantedLevels::BOARD)
        )
        .contains(SECRET),
        "a secret never shows in debug output"
    );
}

// ---------------------------------------------------------------------------------------------------------
// Through a TLS relay with AUTH, as schools' Microsoft 365 and Google relays want.

fn tls_config(relay: &Relay, tls: SmtpTls, password: &str, trust_the_ca: bool) -> NotifyConfig {
    NotifyConfig {
        smtp: Some(SmtpConfig {
            host: "127.0.0.1".into(),
            port: relay.port,
            from: FROM.into(),
            hello_name: "office.oakfield.example".into(),
            tls,
            login: Some(SmtpLogin::new(smtp_relay::USER, password)),
            extra_roots_pem: trust_the_ca.then(|| relay.ca_pem.clone().into_bytes()),
        }),
    }
}

/// An overdue alarm for one board-level email target, its delivery recorded and tried once at `now`.
async fn one_email_attempt(config: NotifyConfig) -> (Bench, DeliveryOutcome, Delivery) {
    let mut bench = Bench::start(config).await;
    bench.add_target(email(OFFICE, WantedLevels::BOARD));
    bench.start_visit().await;
    let alarm = bench.overdue().await;
    let now = bench.now();
    assert_eq!(bench.notifier.record_deliveries(now).await.unwrap(), 1);
    let outcome = bench.notifier.deliver_due(now).await.unwrap();
    let delivery = bench
        .store
        .deliveries_for_alarm(alarm.id)
        .unwrap()
        .remove(0);
    (bench, outcome, delivery)
}

#[tokio::test]
async fn an_alarm_email_goes_through_starttls_with_auth_and_is_delivered_byte_for_byte() {
    let mut relay = smtp_relay::relay(RelaySettings::default()).await;
    let config = tls_config(&relay, SmtpTls::StartTls, smtp_relay::PASSWORD, true);
    let (bench, outcome, delivery) = one_email_attempt(config).await;
    assert_eq!((outcome.delivered, outcome.failed), (1, 0));

    let session = next(&mut relay.sessions).await;
    assert!(session.encrypted, "TLS was up before the login");
    assert_eq!(
        session.login,
        Some(("PLAIN".to_owned(), smtp_relay::USER.to_owned(), true))
    );
    assert_eq!(
        (session.from.as_str(), session.to.as_slice()),
        (FROM, [OFFICE.to_owned()].as_slice())
    );
    assert_eq!(
        session.data.as_deref(),
        delivery.payload.strip_suffix("\r\n"),
        "the relay received exactly the recorded message"
    );
    assert_eq!(delivery.delivered_at, Some(bench.now()));
    assert_eq!(delivery.next_attempt_at, None);
    assert_eq!(
        bench.log().last().unwrap(),
        &(
            "notified".to_owned(),
            "email to office@oakfield.example: accepted by the SMTP server (attempt 1)".to_owned()
        )
    );
}

#[tokio::test]
async fn implicit_tls_and_a_relay_offering_only_login_deliver_too() {
    let mut relay = smtp_relay::relay(RelaySettings {
        tls: RelayTls::Implicit,
        mechanisms: "LOGIN",
        ..RelaySettings::default()
    })
    .await;
    let config = tls_config(&relay, SmtpTls::Tls, smtp_relay::PASSWORD, true);
    let (_bench, outcome, delivery) = one_email_attempt(config).await;
    assert_eq!((outcome.delivered, outcome.failed), (1, 0));
    let session = next(&mut relay.sessions).await;
    assert!(session.encrypted);
    assert_eq!(
        session.login,
        Some(("LOGIN".to_owned(), smtp_relay::USER.to_owned(), true))
    );
    assert!(session.data.is_some());
    assert!(delivery.delivered_at.is_some());
}

#[tokio::test]
async fn a_wrong_password_is_a_failed_attempt_in_the_log_and_nothing_is_delivered() {
    let mut relay = smtp_relay::relay(RelaySettings::default()).await;
    let config = tls_config(&relay, SmtpTls::StartTls, "relay password: wrong", true);
    let (bench, outcome, delivery) = one_email_attempt(config).await;
    assert_eq!((outcome.delivered, outcome.failed), (0, 1));

    let session = next(&mut relay.sessions).await;
    assert_eq!(
        session.login,
        Some(("PLAIN".to_owned(), smtp_relay::USER.to_owned(), false))
    );
    assert_eq!(session.data, None, "no message after a refused login");
    assert_eq!(delivery.delivered_at, None);
    assert_eq!(delivery.next_attempt_at, Some(bench.now() + retry_delay(1)));
    assert_eq!(
        delivery.last_error.as_deref(),
        Some("SMTP failed while logging in: permanent error (535): 5.7.8 Error: authentication failed")
    );
    let (what, detail) = bench.log().pop().unwrap();
    assert_eq!(what, "notification_failed");
    assert!(
        detail.starts_with(
            "email to office@oakfield.example failed (attempt 1): SMTP failed while logging in"
        ),
        "{detail}"
    );
    assert!(
        !detail.contains("wrong"),
        "the password never reaches the log"
    );
}

#[tokio::test]
async fn a_relay_that_refuses_the_message_after_data_has_not_delivered_it() {
    let mut relay = smtp_relay::relay(RelaySettings {
        after_data: "554 5.7.1 Message rejected as spam",
        ..RelaySettings::default()
    })
    .await;
    let config = tls_config(&relay, SmtpTls::StartTls, smtp_relay::PASSWORD, true);
    let (bench, outcome, delivery) = one_email_attempt(config).await;
    assert_eq!((outcome.delivered, outcome.failed), (0, 1));
    let session = next(&mut relay.sessions).await;
    assert!(
        session.data.is_some(),
        "the relay had the whole message, and still did not accept it"
    );
    assert_eq!(delivery.delivered_at, None);
    assert_eq!(
        delivery.last_error.as_deref(),
        Some("SMTP failed while sending the message: permanent error (554): 5.7.1 Message rejected as spam")
    );
    assert_eq!(bench.log_steps().last().unwrap(), "notification_failed");
}

#[tokio::test]
async fn the_relays_certificate_is_checked_and_trusted_only_through_the_configuration() {
    let mut relay = smtp_relay::relay(RelaySettings::default()).await;
    let config = tls_config(&relay, SmtpTls::StartTls, smtp_relay::PASSWORD, false);
    let (_bench, outcome, delivery) = one_email_attempt(config).await;
    assert_eq!((outcome.delivered, outcome.failed), (0, 1));
    let error = delivery.last_error.unwrap();
    assert!(
        error.starts_with("SMTP failed while starting TLS (STARTTLS)")
            && error.contains("certificate"),
        "{error}"
    );
    let session = next(&mut relay.sessions).await;
    assert_eq!(
        session.login, None,
        "the password was never sent to an unverified relay"
    );
}

#[tokio::test]
async fn starttls_is_required_so_a_relay_that_does_not_offer_it_gets_nothing() {
    // The plain receiver offers no STARTTLS, as a relay whose offer was stripped on the way would look.
    let mut smtp = smtp_receiver(None).await;
    let config = NotifyConfig {
        smtp: Some(SmtpConfig {
            tls: SmtpTls::StartTls,
            login: Some(SmtpLogin::new(smtp_relay::USER, smtp_relay::PASSWORD)),
            ..smtp_config(smtp.port).smtp.unwrap()
        }),
    };
    let (_bench, outcome, delivery) = one_email_attempt(config).await;
    assert_eq!((outcome.delivered, outcome.failed), (0, 1));
    assert!(
        delivery
            .last_error
            .as_deref()
            .unwrap()
            .starts_with("SMTP failed while starting TLS"),
        "{:?}",
        delivery.last_error
    );
    assert!(
        smtp.mail.try_recv().is_err(),
        "no message went in plain text"
    );
}

#[tokio::test]
async fn settings_that_cannot_be_used_stop_the_notifier_before_any_alarm() {
    let bench = Bench::start(NotifyConfig::default()).await;
    let plain = SmtpConfig {
        host: "relay.oakfield.example".into(),
        ..smtp_config(25).smtp.unwrap()
    };
    let bad_roots = SmtpConfig {
        tls: SmtpTls::StartTls,
        extra_roots_pem: Some(b"not a certificate".to_vec()),
        ..smtp_config(587).smtp.unwrap()
    };
    let bad_from = SmtpConfig {
        from: "not an address".into(),
        tls: SmtpTls::StartTls,
        ..smtp_config(587).smtp.unwrap()
    };
    for (config, says) in [
        (
            plain,
            "plain SMTP (no TLS) is only allowed to a relay on this machine",
        ),
        (bad_roots, "hold no PEM certificate"),
        (bad_from, "is not an email address"),
    ] {
        let refused = Notifier::new(
            bench.store.clone(),
            NotifyConfig {
                smtp: Some(config.clone()),
            },
        );
        let error = refused.expect_err("refused").to_string();
        assert!(error.contains(says), "{error}");
        assert!(config.check().is_err());
    }
    for host in ["127.0.0.1", "::1", "localhost"] {
        let local = SmtpConfig {
            host: host.into(),
            ..smtp_config(25).smtp.unwrap()
        };
        assert!(local.check().is_ok(), "{host}");
    }
    let login = SmtpLogin::new("office", "hunter2 hunter2");
    assert!(!format!("{login:?}").contains("hunter2"));
}
