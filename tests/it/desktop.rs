//! End to end: the real desktop build of the app, on a virtual display (Xvfb), against the real office on
//! port 0. The test presses the app's buttons through its accessibility tree, by the names a screen reader
//! announces (`tests/desktop/atspi_driver.py`), and types with xdotool; it reads the screen the same way.
//!
//! One whole visit is walked twice: with the office reachable throughout (and the partner's phone saying
//! they are running late first), and with the office stopped from the moment the day's visits reached the
//! phone until the write-up is done (the app is also closed and opened again in the middle of that visit).
//! Either way the office must end with every event the phone recorded, each exactly once, and the phone
//! must say "Office confirmed" only for what the office stored. A third walk has the office change the
//! briefing and then call the visit off while Sam is on the way: the office watches Sam until Sam's
//! "On my way back".
//!
//! Sam's phone is set up with a one-time code before each walk, as `enrolment::set_up` does it, and its
//! files are searched for the visit's pupil, address, needs and family before and after the visit: they
//! are sealed, so none is found. A fourth walk sets a phone up on its own set-up screen (refusing PINs
//! anybody would try first), has an admin revoke it, and sees it delete everything it held and say so.
//!
//! Needs Debian's `xvfb`, `xdotool`, `dbus-daemon`, `at-spi2-core`, `gir1.2-atspi-2.0` and `python3-gi`
//! (installed by `scripts/install-deps`).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command as Process, Stdio};
use std::time::{Duration, Instant};

use std::sync::Arc;

use chrono::{DateTime, Local, Offset, TimeDelta, Timelike, Utc};
use doorstep::enrolment::Credential;
use doorstep::platform::DesktopPlatform;
use doorstep::store::AppStore;
use doorstep::vault::Vault;
use doorstep_core::domain::{Address, Briefing, RiskAssessment, Visit, VisitPurpose, VisitStaff};
use doorstep_core::event_log::Delivery;
use doorstep_core::ids::VisitId;
use doorstep_core::lifecycle::{Command, Phase, VisitEvent};
use doorstep_core::policy::PolicyMinutes;
use doorstep_core::protocol::EnrolmentLink;
use doorstep_core::test_support::staff;
use doorstep_office::SqliteStore;
use serde_json::{json, Value};

use crate::office::{phone, set_up_phone, InProcessOffice, PIN};

/// One app window at a time: two WebKit processes at once only make a 2-core machine slower.
static ONE_WINDOW: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const PYTHON: &str = "/usr/bin/python3";

/// A virtual X display of its own (Xvfb picks a free display number and tells us).
struct Display {
    xvfb: Child,
    name: String,
}

impl Display {
    fn start() -> Self {
        let mut xvfb = Process::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "1280x900x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Xvfb (Debian package xvfb; run scripts/install-deps)");
        let mut line = String::new();
        BufReader::new(xvfb.stdout.take().expect("Xvfb's stdout"))
            .read_line(&mut line)
            .expect("Xvfb's display number");
        let number = line.trim();
        assert!(!number.is_empty(), "Xvfb did not say which display it took");
        // Ready when its socket is there.
        let socket = PathBuf::from(format!("/tmp/.X11-unix/X{number}"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            xvfb,
            name: format!(":{number}"),
        }
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        let _ = self.xvfb.kill();
        let _ = self.xvfb.wait();
    }
}

/// The desktop app, started by the accessibility driver inside a D-Bus session of its own.
struct DesktopApp {
    driver: Child,
    commands: Option<ChildStdin>,
    answers: BufReader<ChildStdout>,
    log: PathBuf,
}

impl DesktopApp {
    /// Starts the app on `display` with its data in `data_dir`, its set-up screen filled in with
    /// `enrol_link` if it is not set up yet.
    fn launch(display: &Display, data_dir: &Path, enrol_link: Option<&str>, log: &Path) -> Self {
        let driver_script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/desktop/atspi_driver.py");
        let mut driver = Process::new("dbus-run-session")
            .arg("--")
            .arg(PYTHON)
            .arg(driver_script)
            .arg("--log")
            .arg(log)
            .arg("--")
            .arg(env!("CARGO_BIN_EXE_doorstep"))
            .env("DISPLAY", &display.name)
            .env("DOORSTEP_DATA_DIR", data_dir)
            .env("DOORSTEP_ENROL", enrol_link.unwrap_or_default())
            .env("WEBKIT_DISABLE_DMABUF_RENDERER", "1")
            .env("RUST_LOG", "info")
            .env_remove("NO_AT_BRIDGE")
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "start dbus-run-session (Debian package dbus-daemon; run scripts/install-deps)",
            );
        let commands = driver.stdin.take();
        let answers = BufReader::new(driver.stdout.take().expect("driver's stdout"));
        Self {
            driver,
            commands,
            answers,
            log: log.to_owned(),
        }
    }

    fn send(&mut self, command: Value) -> Value {
        tokio::task::block_in_place(|| {
            let commands = self.commands.as_mut().expect("the driver is running");
            writeln!(commands, "{command}").expect("send to the driver");
            commands.flush().expect("flush to the driver");
            // Processes started in the session (the accessibility bus) share the driver's output: its
            // answers are the lines that are JSON objects.
            let answer: Value = loop {
                let mut line = String::new();
                self.answers
                    .read_line(&mut line)
                    .expect("the driver's answer");
                assert!(
                    !line.is_empty(),
                    "the driver stopped; app log:\n{}",
                    self.app_log()
                );
                if let Ok(answer @ Value::Object(_)) = serde_json::from_str(&line) {
                    break answer;
                }
                eprintln!("driver session: {}", line.trim_end());
            };
            if answer["ok"] != json!(true) {
                panic!(
                    "{command}: {}\non the screen:\n{}\napp log:\n{}",
                    answer["error"],
                    answer["screen"].as_str().unwrap_or_default(),
                    self.app_log()
                );
            }
            answer
        })
    }

    fn app_log(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Presses the control a screen reader announces as `name` (or starting with it).
    fn press(&mut self, name: &str) {
        self.send(json!({"op": "click", "name": name}));
    }

    /// Presses `name` once it appears, waiting up to `limit` for it.
    fn press_within(&mut self, name: &str, limit: Duration) {
        self.send(json!({"op": "click", "name": name, "timeout": limit.as_secs_f64()}));
    }

    /// Presses the control named exactly `name` (the PIN pad's digits).
    fn press_exactly(&mut self, name: &str) {
        self.send(json!({"op": "click", "name": name, "exact": true}));
    }

    fn type_into(&mut self, field: &str, text: &str) {
        self.send(json!({"op": "type", "name": field, "text": text}));
    }

    /// Replaces what the field named `field` holds with `text`.
    fn replace_in(&mut self, field: &str, text: &str) {
        self.send(json!({"op": "type", "name": field, "text": text, "replace": true}));
    }

    /// What a screen reader would read out, one item per line.
    fn screen(&mut self) -> Vec<String> {
        let answer = self.send(json!({"op": "text"}));
        answer["lines"]
            .as_array()
            .expect("lines")
            .iter()
            .map(|line| line.as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Waits until some line on the screen contains `text`; returns that line.
    fn wait_for(&mut self, text: &str, limit: Duration) -> String {
        self.wait_for_any(&[text], limit)
    }

    /// Waits until some line on the screen contains one of `texts`; returns that line.
    fn wait_for_any(&mut self, texts: &[&str], limit: Duration) -> String {
        self.wait_for_line(texts, limit, |line| {
            texts.iter().any(|text| line.contains(text))
        })
    }

    /// Waits until some line on the screen contains every one of `texts`; returns that line.
    fn wait_for_all(&mut self, texts: &[&str], limit: Duration) -> String {
        self.wait_for_line(texts, limit, |line| {
            texts.iter().all(|text| line.contains(text))
        })
    }

    fn wait_for_line(
        &mut self,
        texts: &[&str],
        limit: Duration,
        wanted: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let screen = self.screen();
            let found = screen.iter().find(|line| wanted(line));
            if let Some(line) = found {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "waited {limit:?} for {texts:?}; the screen said:\n{}",
                screen.join("\n")
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Closes the app (the driver stops it when its input closes) and waits for it to go.
    fn close(mut self) {
        drop(self.commands.take());
        tokio::task::block_in_place(|| {
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.driver.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
    }
}

impl Drop for DesktopApp {
    fn drop(&mut self) {
        drop(self.commands.take());
        if let Ok(None) = self.driver.try_wait() {
            std::thread::sleep(Duration::from_secs(2));
            let _ = self.driver.kill();
        }
        let _ = self.driver.wait();
    }
}

/// What the test's visit says of the family, for the search of the phone's files.
const PUPIL: &str = "Leo Cartwright";
const STREET: &str = "9 Canal Walk";
const NEEDS: &str = "Needs his inhaler within reach";
const FAMILY: &str = "Grandad lives with them since the spring";
/// Words of Sam's write-up.
const WRITTEN: &str = "Dad rings the office on Monday.";

/// Every byte of every file in the phone's data folder (the database, its write-ahead log and shared
/// memory, the credential, the PINs, the settings, the key file), as text a search would see.
fn phone_files(dir: &Path) -> (Vec<String>, String) {
    let mut names = Vec::new();
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).expect("the phone's data folder") {
        let entry = entry.expect("an entry");
        if entry.file_type().is_ok_and(|t| t.is_file()) {
            names.push(entry.file_name().to_string_lossy().into_owned());
            let bytes = std::fs::read(entry.path()).unwrap_or_default();
            text.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    names.sort();
    (names, text)
}

/// The phone's files hold none of the family's details (nor Sam's write-up): everything is sealed.
fn assert_nothing_readable(dir: &Path, when: &str) {
    let (names, text) = phone_files(dir);
    assert!(
        names.iter().any(|n| n == "doorstep.sqlite3")
            && names.iter().any(|n| n == "credential.sealed"),
        "{when}: the phone's files are there: {names:?}"
    );
    for secret in [PUPIL, STREET, NEEDS, FAMILY, WRITTEN, "Alex Morgan"] {
        assert!(
            !text.contains(secret),
            "{when}: {secret:?} is readable in the phone's files {names:?}"
        );
    }
}

/// A visit for Sam and Alex, agreed for a minute ago, authorised by the headteacher.
fn add_visit_starting_now(store: &SqliteStore, now: DateTime<Utc>) -> Visit {
    let agreed = (now - TimeDelta::minutes(1))
        .with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .expect("a whole minute");
    let mut briefing = Briefing::new(RiskAssessment::standard());
    briefing.pets = "A cat; no dogs in the house.".into();
    briefing.pupil_needs = NEEDS.into();
    briefing.family = FAMILY.into();
    let visit = Visit {
        id: "visit-e2e".parse().expect("visit id"),
        school: "demo-primary".parse().expect("school id"),
        purpose: VisitPurpose::MeetParentAtHome,
        pupil: doorstep_core::domain::Pupil {
            id: "pupil-leo".parse().expect("pupil id"),
            name: PUPIL.into(),
        },
        address: Address {
            lines: vec![STREET.into(), "Oakfield".into()],
            postcode: "OK9 4GH".parse().unwrap(),
        },
        agreed_time: agreed,
        expected_length: PolicyMinutes::new(60).expect("in range"),
        staff: vec![
            VisitStaff {
                id: staff("sam"),
                name: "Sam Taylor".into(),
                phone: "07700 900003".parse().unwrap(),
            },
            VisitStaff {
                id: staff("alex"),
                name: "Alex Morgan".into(),
                phone: "07700 900004".parse().unwrap(),
            },
        ],
        briefing,
    };
    store.add_visit(&visit).expect("add the visit");
    store
        .record_office_event(
            &visit.id,
            &Command::Authorise {
                by: staff("head"),
                lone_visit_approved: false,
            },
            now,
        )
        .expect("authorise the visit");
    visit
}

/// A time as the app shows it now: "23:59" today, "3 Dec 23:59" once midnight has passed.
fn shown(at: DateTime<Utc>) -> String {
    let now = Utc::now();
    doorstep::status::when(at, now, now.with_timezone(&Local).offset().fix())
}

/// The button on Today that opens `visit`, as a screen reader names it.
fn open_button(visit: &Visit) -> String {
    format!(
        "Open the visit at {}: {}",
        shown(visit.agreed_time),
        visit.purpose.label()
    )
}

/// How many copies of each of `device`'s events for `visit` the office's database holds, by event id.
fn office_copies(office_dir: &Path, device: &str, visit: &VisitId) -> BTreeMap<String, i64> {
    let conn = rusqlite::Connection::open(office_dir.join("office.sqlite3")).expect("office db");
    let mut stmt = conn
        .prepare(
            "SELECT id, COUNT(*) FROM events WHERE device_id = ?1 AND visit_id = ?2 GROUP BY id",
        )
        .expect("query");
    stmt.query_map([device, visit.as_str()], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
    })
    .expect("rows")
    .collect::<Result<_, _>>()
    .expect("read rows")
}

/// Waits until the office holds as many of `device`'s events for `visit` as `expected`.
async fn office_has(office_dir: &Path, device: &str, visit: &VisitId, expected: usize) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while office_copies(office_dir, device, visit).len() < expected {
        assert!(
            Instant::now() < deadline,
            "the office has {:?} of {expected} events",
            office_copies(office_dir, device, visit)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

struct Walk {
    // Dropped in this order: the app, then its display, then the rest.
    app: Option<DesktopApp>,
    display: Display,
    dir: tempfile::TempDir,
    office: InProcessOffice,
    sam: Credential,
    sam_data: PathBuf,
    alex: (AppStore, doorstep::sync::SyncClient),
    visit: Visit,
}

/// A one-time enrolment code for `who` from the office in `office_dir` at `office`, as its QR code's link.
fn enrolment_link(office: &InProcessOffice, who: &str) -> String {
    let store = SqliteStore::open(&office.data_dir).expect("the office's store");
    let issued = store
        .issue_enrolment_code(
            &"demo-primary".parse().expect("school"),
            &staff(who),
            "test",
            Utc::now(),
        )
        .expect("a code");
    EnrolmentLink {
        office_url: format!("http://{}", office.addr),
        code: issued.code,
    }
    .to_uri()
}

impl Walk {
    /// The demo office with the test's visit, Sam's phone set up with a code and the app open on it, and
    /// Alex's phone (driven directly).
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let office_dir = dir.path().join("office");
        std::fs::create_dir_all(&office_dir).expect("office dir");
        let mut added = None;
        let (office, phones) = InProcessOffice::start_demo_with(&office_dir, |store| {
            added = Some(add_visit_starting_now(store, Utc::now()));
        })
        .await;
        let visit = added.expect("the test's visit");
        let sam_data = dir.path().join("sam");
        let alex_data = dir.path().join("alex");
        std::fs::create_dir_all(&alex_data).expect("phone dir");
        let link = enrolment_link(&office, "sam");
        let (store, _, sam) = set_up_phone(&sam_data, &link).await;
        drop(store);
        let display = Display::start();
        let app = DesktopApp::launch(&display, &sam_data, None, &dir.path().join("app.log"));
        let alex = phone(&alex_data, &phones.partner);
        alex.1.sync_once(&alex.0, Utc::now).await;
        Self {
            dir,
            office,
            sam,
            sam_data,
            alex,
            visit,
            app: Some(app),
            display,
        }
    }

    fn app(&mut self) -> &mut DesktopApp {
        self.app.as_mut().expect("the app is open")
    }

    /// Closes the app and opens it again on the same phone and data, as after the phone was restarted;
    /// returns to the visit.
    fn reopen_app(&mut self) {
        if let Some(app) = self.app.take() {
            app.close();
        }
        let log = self.dir.path().join("app.log");
        self.app = Some(DesktopApp::launch(
            &self.display,
            &self.sam_data,
            None,
            &log,
        ));
        let open = open_button(&self.visit);
        self.app().press(&open);
    }

    fn office_dir(&self) -> PathBuf {
        self.office.data_dir.clone()
    }

    /// Alex's phone records `command` and syncs (if the office is there).
    async fn alex(&mut self, command: Command) {
        let (store, client) = &self.alex;
        store
            .perform(&self.visit.id, command, Utc::now())
            .expect("Alex's step");
        client.sync_once(store, Utc::now).await;
    }

    /// Sam's briefing, checklist and departure, on the app.
    fn brief_and_leave(&mut self) {
        let open = open_button(&self.visit);
        let app = self.app();
        app.press(&open);
        app.wait_for("A cat; no dogs in the house.", Duration::from_secs(20));
        for item in [
            "I've read the risks and controls",
            "I know the pets arrangement",
            "My phone is charged and on",
            "My ID card is with me",
            "I'll note the exit routes on arrival",
        ] {
            app.press(item);
        }
        app.press("Record that the briefing checklist is done");
        app.press("Tell the office you are leaving for this visit");
        app.press("Tell the office you are outside the address");
        app.wait_for(
            "Wait outside until Alex Morgan arrives",
            Duration::from_secs(20),
        );
    }

    /// In the visit: a check-in, then "I've left" with Sam's PIN and the write-up. (The first prompt is
    /// due ten minutes in; its timing and insistence are tested with a hand-moved clock in `screens`.)
    fn check_in_leave_and_write_up(&mut self) {
        let app = self.app();
        app.wait_for("Next check-in at", Duration::from_secs(20));
        app.press("Check in: tell the office you are OK");
        app.wait_for("In the visit, checked in", Duration::from_secs(20));
        app.press("Tell the office you have left the property");
        for digit in PIN.chars() {
            app.press_exactly(&digit.to_string());
        }
        app.press("Confirm I've left");
        app.type_into("Who was seen", "Leo and his dad");
        app.type_into(
            "What was discussed",
            "Getting to school on time; the bus pass.",
        );
        app.type_into("Agreements made with parents", WRITTEN);
        app.press("Safeguarding concern: no");
        app.press("Save the write-up");
        app.wait_for("Summary for CPOMS", Duration::from_secs(20));
        app.wait_for(WRITTEN, Duration::from_secs(20));
    }

    /// Closes the app and reads what Sam's phone recorded for the visit, with each event's delivery.
    fn close_and_read_phone(&mut self) -> Vec<(VisitEvent, String, Delivery)> {
        if let Some(app) = self.app.take() {
            app.close();
        }
        let vault = Vault::open(&self.sam_data, Arc::new(DesktopPlatform::new()))
            .expect("Sam's key")
            .expect("Sam's phone is set up");
        let store = AppStore::open(Arc::new(vault), &self.sam.device_id).expect("Sam's phone");
        store
            .own_events(&self.visit.id)
            .expect("Sam's events")
            .into_iter()
            .map(|(envelope, delivery)| (envelope.event, envelope.id.to_string(), delivery))
            .collect()
    }

    /// The office holds each of Sam's events exactly once and the phone shows each as confirmed.
    fn assert_delivered_exactly_once(&self, phone: &[(VisitEvent, String, Delivery)]) {
        let kinds: Vec<&str> = phone.iter().map(|(event, _, _)| event.summary()).collect();
        for expected in [
            "read the briefing",
            "left for the visit",
            "outside",
            "went in",
            "checked in",
            "left the property",
            "written up",
        ] {
            assert!(kinds.contains(&expected), "{expected} recorded: {kinds:?}");
        }
        let copies = office_copies(
            &self.office_dir(),
            self.sam.device_id.as_str(),
            &self.visit.id,
        );
        for (event, id, delivery) in phone {
            assert_eq!(
                copies.get(id),
                Some(&1),
                "{} at the office once",
                event.summary()
            );
            assert!(
                matches!(delivery, Delivery::Confirmed { .. }),
                "{} confirmed on the phone: {delivery:?}",
                event.summary()
            );
        }
        assert_eq!(
            copies.len(),
            phone.len(),
            "nothing at the office the phone did not record"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_pair_visit_on_the_desktop_app_reaches_the_office_exactly_once() {
    let _one = ONE_WINDOW.lock().await;
    let mut walk = Walk::start().await;
    walk.app()
        .wait_for("office confirmed", Duration::from_secs(60));
    // The phone holds the visit's briefing now, and none of it is readable in its files.
    assert_nothing_readable(&walk.sam_data, "before the visit");
    // The window's page is called by the app's name, never by anything about the visit.
    let screen = walk.app().screen();
    assert_eq!(screen[0], "document web: Doorstep", "{screen:?}");
    // Alex is running late; Sam's phone hears it with the exchanges that send Sam's steps.
    let visit = walk.visit.clone();
    let alex_expected = visit.agreed_time + TimeDelta::minutes(20);
    walk.alex(Command::RunningLate {
        staff: staff("alex"),
        expected_arrival: alex_expected,
    })
    .await;
    walk.brief_and_leave();
    walk.app().wait_for(
        &format!("Alex is running late: expected {}", shown(alex_expected)),
        Duration::from_secs(30),
    );

    // Alex arrives on their own phone; the office relays it and Sam's app lets them go in.
    walk.alex(Command::Depart {
        staff: staff("alex"),
        expected_arrival: visit.agreed_time,
        expected_end: visit.expected_end(),
    })
    .await;
    walk.alex(Command::ArriveOutside {
        staff: staff("alex"),
    })
    .await;
    // Sam's app hears of it on its next exchange with the office (at most its idle tick later).
    let app = walk.app();
    app.press_within(
        "Tell the office you are all going in",
        Duration::from_secs(45),
    );
    app.wait_for("In the visit", Duration::from_secs(20));
    // Shown at once as waiting, then confirmed once the office has stored it.
    app.wait_for_all(
        &["Your last step, went in", "Office confirmed"],
        Duration::from_secs(20),
    );

    walk.check_in_leave_and_write_up();
    walk.app()
        .wait_for("All confirmed", Duration::from_secs(30));
    assert_nothing_readable(&walk.sam_data, "after the visit");
    let office_dir = walk.office_dir();
    let device = walk.sam.device_id.to_string();
    let phone = walk.close_and_read_phone();
    office_has(&office_dir, &device, &visit.id, phone.len()).await;
    walk.assert_delivered_exactly_once(&phone);
    walk.office.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_visit_done_with_the_office_unreachable_arrives_exactly_once_at_the_end() {
    let _one = ONE_WINDOW.lock().await;
    let mut walk = Walk::start().await;
    // The morning's sync brings the day's visits; then the office is gone until the write-up is done.
    walk.app()
        .wait_for("office confirmed", Duration::from_secs(60));
    walk.office.stop().await;
    walk.brief_and_leave();

    // Alex's phone has no signal either: Alex's "Leaving now" stays on Alex's phone, and Sam records that
    // they arrived together (which the office counts for Alex once Alex's phone says Alex set off).
    let (agreed, end) = (walk.visit.agreed_time, walk.visit.expected_end());
    walk.alex(Command::Depart {
        staff: staff("alex"),
        expected_arrival: agreed,
        expected_end: end,
    })
    .await;
    let app = walk.app();
    app.press("Tell the office everyone on the visit arrived together");
    app.press("Tell the office you are all going in");
    let last = app.wait_for("Your last step, went in", Duration::from_secs(20));
    assert!(
        !last.contains("Office confirmed"),
        "nothing is confirmed while the office is away: {last}"
    );

    // The phone is switched off and on in the visit: it comes back inside, with its steps still waiting.
    walk.reopen_app();
    let app = walk.app();
    app.wait_for("Next check-in at", Duration::from_secs(20));
    let last = app.wait_for("Your last step, went in", Duration::from_secs(20));
    assert!(!last.contains("Office confirmed"), "{last}");
    walk.check_in_leave_and_write_up();
    let status = walk
        .app()
        .wait_for("Can't reach the office", Duration::from_secs(30));
    assert!(
        status.contains(" waiting") && !status.contains("nothing waiting"),
        "{status}"
    );
    let office_dir = walk.office_dir();
    let device = walk.sam.device_id.to_string();
    assert!(office_copies(&office_dir, &device, &walk.visit.id).is_empty());

    // The office comes back: everything arrives, once, and the app says so.
    walk.office.restart();
    walk.app()
        .wait_for("All confirmed", Duration::from_secs(90));
    let phone = walk.close_and_read_phone();
    office_has(&office_dir, &device, &walk.visit.id, phone.len()).await;
    walk.assert_delivered_exactly_once(&phone);

    // Alex's phone catches up too (learning from the office that Sam recorded them arriving and going
    // in), and records leaving.
    let visit = walk.visit.clone();
    walk.alex.1.sync_once(&walk.alex.0, Utc::now).await;
    walk.alex(Command::Leave {
        staff: staff("alex"),
    })
    .await;
    let office = SqliteStore::open(&office_dir).expect("office");
    let (_, state) = office.visit(&visit.id).expect("read").expect("the visit");
    assert!(state.written_up_at.is_some(), "written up at the office");
    assert_eq!(
        state.phase(),
        Phase::WrittenUp,
        "both have left, at the office"
    );
    walk.office.stop().await;
}

/// The office changes the briefing after Sam read it, then calls the visit off while Sam is on the way.
/// Sam's app asks for the briefing again before "Leaving now", then says the visit was called off and
/// offers "On my way back"; the office keeps watching Sam until Sam presses it, and only then stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_office_changes_the_briefing_then_calls_the_visit_off_and_watches_sam_until_on_the_way_back(
) {
    let _one = ONE_WINDOW.lock().await;
    let mut walk = Walk::start().await;
    walk.app()
        .wait_for("office confirmed", Duration::from_secs(60));
    let office_dir = walk.office_dir();
    let device = walk.sam.device_id.to_string();
    let visit = walk.visit.clone();
    let office = SqliteStore::open(&office_dir).expect("the office's store");
    let checklist = [
        "I've read the risks and controls",
        "I know the pets arrangement",
        "My phone is charged and on",
        "My ID card is with me",
        "I'll note the exit routes on arrival",
    ];

    let open = open_button(&visit);
    let app = walk.app();
    app.press(&open);
    app.wait_for("A cat; no dogs in the house.", Duration::from_secs(20));
    for item in checklist {
        app.press(item);
    }
    app.press("Record that the briefing checklist is done");
    app.wait_for(
        "Tell the office you are leaving for this visit",
        Duration::from_secs(20),
    );

    // The risk changed: the office updates the briefing. Sam's app asks for it to be read again.
    office
        .record_office_event(
            &visit.id,
            &Command::UpdateBriefing {
                by: staff("head"),
                version: 1,
            },
            Utc::now(),
        )
        .expect("update the briefing");
    let app = walk.app();
    let changed = app.wait_for(
        "The office changed the briefing at",
        Duration::from_secs(45),
    );
    assert!(changed.contains("(by head)"), "{changed}");
    let screen = app.screen().join("\n");
    assert!(
        !screen.contains("Tell the office you are leaving for this visit"),
        "no leaving before reading it again:\n{screen}"
    );
    for item in checklist {
        app.press(item);
    }
    app.press("Record that the briefing checklist is done");
    app.press("Tell the office you are leaving for this visit");
    app.wait_for("On the way", Duration::from_secs(20));
    office_has(&office_dir, &device, &visit.id, 3).await;

    // The family rang the school: the office calls the visit off while Sam is on the way.
    office
        .record_office_event(
            &visit.id,
            &Command::CallOff {
                by: staff("head"),
                reason: "The family rang: Leo is in school".into(),
            },
            Utc::now(),
        )
        .expect("call the visit off");
    let (_, state) = office.visit(&visit.id).expect("read").expect("the visit");
    assert!(
        state.is_watched(&staff("sam")),
        "the office still watches Sam, who is on the way"
    );
    let app = walk.app();
    app.wait_for(
        "The office called the visit off (The family rang: Leo is in school)",
        Duration::from_secs(45),
    );
    app.press("Tell the office you are not going in and are on your way back");
    app.wait_for("Write-up", Duration::from_secs(20));
    office_has(&office_dir, &device, &visit.id, 4).await;
    let (_, state) = office.visit(&visit.id).expect("read").expect("the visit");
    assert!(!state.is_watched(&staff("sam")), "{state:?}");
    assert_eq!(
        state.part_ended(&staff("sam")).map(|ended| ended.reason),
        Some(doorstep_core::lifecycle::CancelReason::CalledOffByOffice)
    );
    assert_eq!(state.watched().count(), 0, "nobody is left to watch");
    drop(office);
    walk.office.stop().await;
}

/// A phone set up on its own set-up screen, as the demo does it: the office's address and the code filled
/// in from the admin's link, the PINs chosen there (the easy ones refused first, using nothing up). Then an
/// admin revokes it: at its next contact with the office it deletes everything Doorstep kept on it, says
/// so, and after a restart offers to be set up again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_set_up_on_its_screen_then_revoked_deletes_everything_and_says_so() {
    let _one = ONE_WINDOW.lock().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let office_dir = dir.path().join("office");
    std::fs::create_dir_all(&office_dir).expect("office dir");
    let (mut office, _) = InProcessOffice::start_demo(&office_dir).await;
    let link = enrolment_link(&office, "sam");
    let data = dir.path().join("sam");
    let log = dir.path().join("app.log");
    let display = Display::start();
    let mut app = DesktopApp::launch(&display, &data, Some(&link), &log);
    app.wait_for("Set up this phone", Duration::from_secs(60));
    let screen = app.screen().join("\n");
    assert!(
        screen.contains(&format!("http://{}", office.addr)),
        "the address is filled in: {screen}"
    );

    app.type_into("Your PIN", "1234");
    app.type_into("Your second PIN", "9999");
    app.press("Set up this phone with the office");
    app.wait_for(
        "your PIN is too easy to guess (digits in a row)",
        Duration::from_secs(20),
    );
    let office_store = SqliteStore::open(&office_dir).expect("the office's store");
    let school = "demo-primary".parse().expect("school");
    assert_eq!(
        office_store
            .pending_enrolment_codes(&school, Utc::now())
            .expect("codes")
            .len(),
        1,
        "a refused PIN uses up no code"
    );
    // The fields keep what was typed: the person chooses again.
    app.replace_in("Your PIN", PIN);
    app.replace_in("Your second PIN", crate::office::SECOND_PIN);
    app.press("Set up this phone with the office");
    app.wait_for("office confirmed", Duration::from_secs(60));
    let screen = app.screen().join("\n");
    assert!(screen.contains("Sam Taylor"), "{screen}");
    let devices = office_store.school_devices(&school).expect("devices");
    let sams = devices
        .iter()
        .find(|d| d.staff == staff("sam") && d.id.as_str() != "phone-sam")
        .expect("Sam's new phone is enrolled");
    let (names, _) = phone_files(&data);
    for kept in ["doorstep.sqlite3", "credential.sealed", "pins.sealed"] {
        assert!(names.iter().any(|n| n == kept), "{kept}: {names:?}");
    }

    // The admin revokes it; at its next sync (its idle tick) the phone deletes everything and says so.
    office_store
        .revoke_device(&school, &sams.id, &staff("head"), Utc::now())
        .expect("revoke");
    app.wait_for(
        "Everything Doorstep kept on this phone was deleted",
        Duration::from_secs(60),
    );
    let screen = app.screen().join("\n");
    assert!(
        screen.contains("the school office removed this phone from Doorstep"),
        "{screen}"
    );
    assert!(
        !screen.contains("Sam Taylor"),
        "nothing of Sam's is shown: {screen}"
    );
    let (names, _) = phone_files(&data);
    assert_eq!(
        names,
        ["deleted.txt"],
        "the database, its companions, the credential, the PINs and the key are gone"
    );

    // Opened again, it says what happened and offers to be set up afresh.
    app.close();
    let mut app = DesktopApp::launch(&display, &data, None, &log);
    app.wait_for("Set up this phone", Duration::from_secs(60));
    app.wait_for(
        "Everything Doorstep kept on this phone was deleted on",
        Duration::from_secs(20),
    );
    app.close();
    office.stop().await;
}
