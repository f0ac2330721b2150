//! The office board in a real headless Chromium, driven through chromedriver: sign in, see today's visits
//! and the banner saying nobody outside the board can be told, watch a phone's sync and an overdue alarm
//! arrive without a reload, acknowledge it by name (the sound stops, it stays as being handled), close it
//! with its outcome, and see the "not live" warning when the server goes away; the headteacher authorising
//! a requested visit; and the headteacher updating a visit's briefing (a new version) and reception marking
//! one not going ahead.
//!
//! Needs Debian's `chromium` and `chromium-driver` (set CHROMIUM and CHROMEDRIVER to use others). When they
//! are missing the test fails and says so: a skipped browser test would hide a board that does not work.
//! With DOORSTEP_UPDATE_SCREENSHOTS=1 it also writes the screenshots under docs/screenshots/ (otherwise only
//! to a temporary directory, so a test run leaves the work tree alone).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{Local, TimeDelta, Utc};
use doorstep_core::domain::VisitPurpose;
use doorstep_core::lifecycle::{Command as VisitCommand, VisitEvent};
use doorstep_office::WebSettings;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::helpers::*;

/// chromedriver, killed when the test ends however it ends.
struct Driver {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tool(env: &str, default: &str) -> PathBuf {
    let path = PathBuf::from(std::env::var(env).unwrap_or_else(|_| default.to_owned()));
    assert!(
        path.exists(),
        "the browser test needs {} ({env}); install Debian's `chromium` and `chromium-driver` \
         (scripts/install-deps does), or set {env} to another path",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

async fn start_driver(dir: &Path) -> Driver {
    let chromedriver = tool("CHROMEDRIVER", "/usr/bin/chromedriver");
    let port = free_port();
    let log = dir.join("chromedriver.log");
    let child = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .arg(format!("--log-path={}", log.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
        log,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = reqwest::get(format!("{}/status", driver.url)).await;
        if status.is_ok_and(|s| s.status().is_success()) {
            return driver;
        }
        assert!(
            Instant::now() < deadline,
            "chromedriver did not answer within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn start_browser(driver: &Driver, profile: &Path) -> Client {
    let chromium = tool("CHROMIUM", "/usr/bin/chromium");
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
            ]
        }
    });
    let serde_json::Value::Object(capabilities) = capabilities else {
        unreachable!("a JSON object")
    };
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    match ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
    {
        Ok(client) => client,
        Err(error) => panic!(
            "Chromium did not start through chromedriver: {error}\nchromedriver log:\n{}",
            std::fs::read_to_string(&driver.log).unwrap_or_default()
        ),
    }
}

/// Polls `check` until it gives a value, for at most `limit`: the page changes when the server says so.
async fn wait_until<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "waited {limit:?} for {what}");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

async fn text_of(browser: &Client, css: &str) -> Option<String> {
    match browser.find(Locator::Css(css)).await {
        Ok(element) => element.text().await.ok(),
        Err(_) => None,
    }
}

/// The value the board's script sets once per page load.
async fn page_load_marker(browser: &Client) -> f64 {
    browser
        .execute("return window.doorstepBoardLoadedAt;", vec![])
        .await
        .expect("run script")
        .as_f64()
        .expect("the board's script ran and set its marker")
}

async fn body_has_class(browser: &Client, class: &str) -> bool {
    browser
        .execute(
            "return document.body.classList.contains(arguments[0]);",
            vec![json!(class)],
        )
        .await
        .expect("run script")
        .as_bool()
        .unwrap_or(false)
}

async fn screenshot(browser: &Client, dir: &Path, name: &str) {
    let png = browser.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "{name} is a PNG");
    std::fs::write(dir.join(name), &png).expect("write screenshot");
    if std::env::var("DOORSTEP_UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1") {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
        std::fs::create_dir_all(&docs).expect("docs/screenshots");
        std::fs::write(docs.join(name), &png).expect("write screenshot to docs");
    }
}

/// Types `who`'s name and [`PASSWORD`] into the sign-in page the browser shows, presses "Sign in", and
/// waits for the board.
async fn sign_in_on_the_page(browser: &Client, who: &str) {
    for (css, value) in [("#name", who), ("#password", PASSWORD)] {
        browser
            .find(Locator::Css(css))
            .await
            .unwrap()
            .send_keys(value)
            .await
            .unwrap();
    }
    browser
        .find(Locator::Css("#sign-in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait()
        .at_most(Duration::from_secs(60))
        .for_element(Locator::Css("#board-content"))
        .await
        .expect("the board after signing in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_board_updates_live_raises_an_overdue_without_a_reload_and_takes_an_acknowledgement() {
    let dir = tempfile::tempdir().expect("temp dir");
    let driver = start_driver(dir.path()).await;
    let profile = dir.path().join("profile");
    let browser = start_browser(&driver, &profile).await;

    // Seeded now: the demo itself keeps its first visit on today's board late in the evening (it starts
    // at once in the day's last quarter hour). Seeding an hour early put that visit in the past after
    // 23:40, where the board rightly shows nobody heard from instead of the step this test takes.
    let mut office = spawn_office_with(
        WebSettings {
            secure_cookies: false,
        },
        Utc::now(),
    )
    .await;
    office.allow_sign_in("office");

    // Sign in as a person would: the board sends a signed-out browser to the sign-in page.
    browser.goto(&format!("{}/", office.url)).await.unwrap();
    assert!(browser.current_url().await.unwrap().path() == "/login");
    sign_in_on_the_page(&browser, "office").await;
    assert_eq!(
        text_of(&browser, "#signed-in-name").await.as_deref(),
        Some("Olu Office")
    );
    // The demo school has no notification targets: the board says so at the top.
    let banner = text_of(&browser, "#no-targets")
        .await
        .expect("the no-targets banner");
    assert!(
        banner.contains("No notification targets are set up"),
        "{banner}"
    );
    // The styles and the script are files from /assets/, which the page's CSP allowed by its nonce (and
    // their integrity matched): the styles are applied, and the script has run.
    let background = browser
        .execute(
            "return getComputedStyle(document.body).backgroundColor;",
            vec![],
        )
        .await
        .expect("run script");
    assert_eq!(
        background,
        json!("rgb(244, 244, 241)"),
        "office.css applied"
    );
    page_load_marker(&browser).await;

    // The alarm sound needs one click, as the page says.
    browser
        .find(Locator::Css("#enable-sound"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_until(
        "the alarm sound to be on",
        Duration::from_secs(10),
        || async {
            text_of(&browser, "#sound-state")
                .await
                .filter(|t| t == "Alarm sound is on.")
        },
    )
    .await;

    // Every demo visit agreed for today is on the board.
    let today = Local::now().date_naive();
    let mut todays = Vec::new();
    for id in office.store.visit_ids().unwrap() {
        let (v, _) = office.store.visit(&id).unwrap().unwrap();
        if v.agreed_time.with_timezone(&Local).date_naive() == today {
            todays.push(id);
        }
    }
    assert!(todays.contains(&visit("visit-ava")));
    for id in &todays {
        let row = text_of(&browser, &format!("#visit-{id}")).await;
        assert!(row.is_some(), "{id} is on the board");
    }
    let loaded = page_load_marker(&browser).await;

    // The phones sync: the board shows it without a reload. Both set off, so the row says "On the way"
    // whatever the hour: after 23:45 the demo's first visit is agreed for now, and a partner who had not
    // set off by then would rightly make it "Not heard from".
    let (sam, alex) = (office.phones.me.clone(), office.phones.partner.clone());
    for (phone, who) in [(&alex, "alex"), (&sam, "sam")] {
        let (status, body) = office
            .post_sync(
                &phone.device_token,
                &batch(&[envelope(phone, 1, "visit-ava", departed(who))]),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    wait_until(
        "visit-ava to show Sam on the way",
        Duration::from_secs(60),
        || async {
            text_of(&browser, "#visit-visit-ava")
                .await
                .filter(|row| row.contains("Sam Taylor: on the way") && row.contains("On the way"))
        },
    )
    .await;
    assert_eq!(page_load_marker(&browser).await, loaded, "no reload");

    // A pair went in at the agreed time 14 min 55 s ago and has been silent since: the first check-in was
    // due 10 minutes after the start, and with 5 minutes' grace it is overdue in about 5 seconds.
    let agreed = Utc::now() - TimeDelta::minutes(14) - TimeDelta::seconds(55);
    let (mut quiet, _) = office.store.visit(&visit("visit-ava")).unwrap().unwrap();
    quiet.id = visit("visit-quiet");
    quiet.purpose = VisitPurpose::AttendanceSupport;
    quiet.address.lines = vec!["7 Quiet Close".into(), "Oakfield".into()];
    quiet.address.postcode = "OK4 1QC".parse().unwrap();
    quiet.agreed_time = agreed;
    office.store.add_visit(&quiet).unwrap();
    office
        .store
        .record_office_event(
            &quiet.id,
            &VisitCommand::Authorise {
                by: staff("head"),
                lone_visit_approved: false,
            },
            agreed - TimeDelta::hours(1),
        )
        .unwrap();
    let departed_at = |who: &str| VisitEvent::Departed {
        staff: staff(who),
        expected_arrival: agreed,
        expected_end: agreed + TimeDelta::minutes(45),
    };
    let alex_events = [recorded(
        &alex,
        2,
        "visit-quiet",
        agreed - TimeDelta::minutes(10),
        departed_at("alex"),
    )];
    let sam_events = [
        recorded(
            &sam,
            2,
            "visit-quiet",
            agreed - TimeDelta::minutes(10),
            departed_at("sam"),
        ),
        recorded(
            &sam,
            3,
            "visit-quiet",
            agreed - TimeDelta::minutes(1),
            VisitEvent::ArrivedTogether {
                by: staff("sam"),
                staff: vec![staff("sam"), staff("alex")],
            },
        ),
        recorded(
            &sam,
            4,
            "visit-quiet",
            agreed,
            VisitEvent::VisitStarted {
                by: staff("sam"),
                staff: vec![staff("sam"), staff("alex")],
            },
        ),
    ];
    // Alex's "left for the visit" and Sam's first steps reach the store before the engine looks (so no
    // moment shows one of them unheard from); Sam's "went in" then arrives by sync, as phones send it.
    let stored = |phone: &doorstep_office::demo::PhoneConfig,
                  events: &[doorstep_core::event::EventEnvelope]| {
        let device = office
            .store
            .authenticate(&phone.device_token, Utc::now())
            .unwrap()
            .unwrap();
        office
            .store
            .ingest_raising(&device, events, Utc::now(), Utc::now())
            .unwrap();
    };
    stored(&alex, &alex_events);
    stored(&sam, &sam_events[..2]);
    let (status, body) = office
        .post_sync(&sam.device_token, &batch(&sam_events[2..]))
        .await;
    assert_eq!(status, 200, "{body}");
    let alarm_css = "#open-alarms .alarm.overdue";
    let alarm_text = wait_until(
        "the overdue alarm on the board",
        Duration::from_secs(60),
        || async {
            text_of(&browser, alarm_css)
                .await
                .filter(|text| text.contains("OK4 1QC"))
        },
    )
    .await;
    assert!(
        alarm_text.contains("No check-in since it was due at"),
        "{alarm_text}"
    );
    assert_eq!(page_load_marker(&browser).await, loaded, "still no reload");
    let title = browser.title().await.unwrap();
    assert!(
        title.starts_with("(1 ALARM)"),
        "the tab says so too: {title}"
    );
    assert!(
        body_has_class(&browser, "alarm-sounding").await,
        "the alarm sounds"
    );
    let row = text_of(&browser, "#visit-visit-quiet").await.unwrap();
    assert!(row.contains("Overdue"), "{row}");
    let alarm = office
        .store
        .open_alarms()
        .unwrap()
        .into_iter()
        .find(|a| a.visit == visit("visit-quiet"))
        .expect("the store holds the open alarm");
    screenshot(&browser, dir.path(), "office-board.png").await;

    // The visit page: the runbook with the address and the numbers to ring.
    browser
        .goto(&format!("{}/visits/visit-quiet", office.url))
        .await
        .unwrap();
    let runbook = text_of(&browser, "#runbook").await.expect("the runbook");
    for needed in [
        "7 Quiet Close, Oakfield, OK4 1QC",
        "07700 900003",
        "07700 900004",
        "Priya Head",
        "101",
    ] {
        assert!(runbook.contains(needed), "the runbook shows {needed:?}");
    }
    browser.set_window_size(1280, 1700).await.unwrap();
    screenshot(&browser, dir.path(), "office-visit-runbook.png").await;
    browser.set_window_size(1280, 900).await.unwrap();

    // Back on the board (the sound needs its click again after a page load), acknowledge through the page.
    browser.goto(&format!("{}/", office.url)).await.unwrap();
    browser
        .find(Locator::Css("#enable-sound"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_until("the alarm to sound", Duration::from_secs(10), || async {
        body_has_class(&browser, "alarm-sounding")
            .await
            .then_some(())
    })
    .await;
    let on_board = page_load_marker(&browser).await;
    let button = format!("#alarm-{} button.ack", alarm.id);
    wait_until(
        "a click on the Acknowledge button",
        Duration::from_secs(60),
        || async {
            // Found and clicked in one go; a redraw in between makes the element stale, so try again.
            let element = browser.find(Locator::Css(&button)).await.ok()?;
            element.click().await.ok()
        },
    )
    .await;
    // Acknowledged is "being handled": the sound stops, the alarm stays on the board until it is closed.
    let card = format!("#alarm-{}", alarm.id);
    wait_until(
        "the alarm to show who is handling it",
        Duration::from_secs(60),
        || async {
            text_of(&browser, &card)
                .await
                .filter(|text| text.contains("Being handled by Olu Office"))
        },
    )
    .await;
    let acknowledged = office.store.alarm(alarm.id).unwrap().unwrap();
    assert_eq!(acknowledged.acknowledged_by.as_deref(), Some("Olu Office"));
    wait_until("the sound to stop", Duration::from_secs(10), || async {
        (!body_has_class(&browser, "alarm-sounding").await).then_some(())
    })
    .await;
    screenshot(&browser, dir.path(), "office-board-handling.png").await;

    // Closing it needs how it ended: choose one, add a note, close; it leaves the board.
    let close = format!("#alarm-{} button.close", alarm.id);
    wait_until(
        "the outcome chosen and Close clicked",
        Duration::from_secs(60),
        || async {
            let select = browser
                .find(Locator::Css(&format!("#outcome-{}", alarm.id)))
                .await
                .ok()?;
            select.select_by_value("spoke_to_staff").await.ok()?;
            let note = browser
                .find(Locator::Css(&format!("#note-{}", alarm.id)))
                .await
                .ok()?;
            // A redraw between the steps means trying again from the start, with the note empty again.
            note.clear().await.ok()?;
            note.send_keys("Rang Sam: phone on silent").await.ok()?;
            browser
                .find(Locator::Css(&close))
                .await
                .ok()?
                .click()
                .await
                .ok()
        },
    )
    .await;
    wait_until(
        "the alarm to leave the open alarms",
        Duration::from_secs(60),
        || async {
            let gone = browser.find(Locator::Css(&card)).await.is_err();
            let calm = text_of(&browser, "#open-alarms").await?;
            (gone && calm.contains("No open alarms")).then_some(())
        },
    )
    .await;
    let closed = office.store.alarm(alarm.id).unwrap().unwrap();
    assert_eq!(
        (closed.closed_by.as_deref(), closed.outcome),
        (
            Some("Olu Office"),
            Some(doorstep_core::lifecycle::AlarmOutcome::SpokeToStaff)
        )
    );
    assert_eq!(
        closed.close_note.as_deref(),
        Some("Rang Sam: phone on silent")
    );
    assert_eq!(
        page_load_marker(&browser).await,
        on_board,
        "acknowledged without leaving the board"
    );

    // The server goes away: the board says it is not live.
    office.stop();
    wait_until(
        "the connection-lost banner",
        Duration::from_secs(60),
        || async {
            let banner = browser.find(Locator::Css("#connection-lost")).await.ok()?;
            banner.is_displayed().await.ok()?.then_some(())
        },
    )
    .await;
    let banner = text_of(&browser, "#connection-lost").await.unwrap();
    assert!(banner.contains("the board is NOT live"), "{banner}");
    screenshot(&browser, dir.path(), "office-board-not-live.png").await;

    browser.close().await.expect("close the browser");
    drop(driver);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_headteacher_authorises_the_requested_demo_visit_through_the_pages() {
    let dir = tempfile::tempdir().expect("temp dir");
    let driver = start_driver(dir.path()).await;
    let profile = dir.path().join("profile");
    let browser = start_browser(&driver, &profile).await;

    // Seeded at six on the next weekday, visit-mia is agreed for a quarter past ten that day: in school hours
    // and still to come, so the test does not depend on the hour it runs at.
    let office = spawn_office_seeded_next_weekday_at(6).await;
    office.allow_sign_in("head");

    browser
        .goto(&format!("{}/login", office.url))
        .await
        .unwrap();
    sign_in_on_the_page(&browser, "head").await;

    // The visit page offers the headteacher "Authorise"; the form shows the risk assessment. (The visit is
    // on the next weekday, so it is on that day's board, not today's: its own page is the place.)
    browser
        .goto(&format!("{}/visits/visit-mia", office.url))
        .await
        .unwrap();
    let status = text_of(&browser, "#visit-status").await.unwrap_or_default();
    assert_eq!(status, "Awaiting authorisation");
    browser
        .find(Locator::Css("#authorise-link"))
        .await
        .expect("the authorise link")
        .click()
        .await
        .unwrap();
    browser
        .wait()
        .at_most(Duration::from_secs(60))
        .for_element(Locator::Css("#authorise-submit"))
        .await
        .expect("the authorise form")
        .click()
        .await
        .unwrap();
    wait_until(
        "the visit page to say Authorised",
        Duration::from_secs(60),
        || async {
            text_of(&browser, "#visit-status")
                .await
                .filter(|s| s == "Authorised")
        },
    )
    .await;
    assert!(
        browser.find(Locator::Css("#authorise-link")).await.is_err(),
        "no second authorisation offered"
    );

    let (_, state) = office.store.visit(&visit("visit-mia")).unwrap().unwrap();
    assert_eq!(
        state.authorised.map(|a| a.by),
        Some(staff("head")),
        "recorded as the headteacher's decision"
    );

    browser.close().await.expect("close the browser");
    drop(driver);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_headteacher_updates_a_briefing_and_reception_calls_a_visit_off_through_the_pages() {
    let dir = tempfile::tempdir().expect("temp dir");
    let driver = start_driver(dir.path()).await;
    let profile = dir.path().join("profile");
    let browser = start_browser(&driver, &profile).await;
    // Seeded now: visit-leo is two hours ahead, authorised, and nobody has set off.
    let office = office_with_sign_ins(&["head", "office"]).await;

    browser
        .goto(&format!("{}/login", office.url))
        .await
        .unwrap();
    sign_in_on_the_page(&browser, "head").await;
    browser
        .goto(&format!("{}/visits/visit-leo", office.url))
        .await
        .unwrap();
    browser
        .find(Locator::Css("#update-briefing-link"))
        .await
        .expect("the authoriser is offered the update")
        .click()
        .await
        .unwrap();
    let pets = browser
        .wait()
        .at_most(Duration::from_secs(60))
        .for_element(Locator::Css("textarea#pets"))
        .await
        .expect("the briefing form");
    pets.clear().await.unwrap();
    pets.send_keys("A new puppy; the family will keep it upstairs")
        .await
        .unwrap();
    browser
        .find(Locator::Css("#briefing-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let row = wait_until(
        "version 3 on the visit page",
        Duration::from_secs(60),
        || async { text_of(&browser, "#version-3").await },
    )
    .await;
    assert!(
        row.contains("updated the risk assessment and briefing") && row.contains("pets"),
        "{row}"
    );
    let briefing = text_of(&browser, "#briefing").await.expect("the briefing");
    assert!(briefing.contains("A new puppy"), "{briefing}");
    assert!(briefing.contains("Assessed by Priya Head"), "{briefing}");
    let (stored, _) = office.store.visit(&visit("visit-leo")).unwrap().unwrap();
    assert_eq!(stored.briefing.version, 1);

    // Reception takes the family's call and marks the visit not going ahead.
    browser.delete_all_cookies().await.unwrap();
    browser
        .goto(&format!("{}/login", office.url))
        .await
        .unwrap();
    sign_in_on_the_page(&browser, "office").await;
    browser
        .goto(&format!("{}/visits/visit-leo", office.url))
        .await
        .unwrap();
    assert!(
        browser.find(Locator::Css("#briefing")).await.is_err(),
        "reception does not see the briefing"
    );
    browser
        .find(Locator::Css("#call-off-form-reason"))
        .await
        .expect("reception may mark it not going ahead")
        .send_keys("Dad rang: Leo is ill today")
        .await
        .unwrap();
    browser
        .find(Locator::Css("#call-off-form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_until(
        "the visit page to say it is called off",
        Duration::from_secs(60),
        || async {
            text_of(&browser, "#visit-status")
                .await
                .filter(|s| s.to_lowercase().contains("called off by the office"))
        },
    )
    .await;
    let row = text_of(&browser, "#version-4").await.expect("version 4");
    assert!(
        row.contains("Olu Office") && row.contains("not going ahead"),
        "{row}"
    );

    browser.close().await.expect("close the browser");
    drop(driver);
}
