//! `spawn_office()`: the real office on port 0 with a fresh demo database; the one way tests sign in to
//! it (`office_with_sign_ins`, `signed_in`, `session_for`); and event builders for tests.
//!
//! The office runs on SQLite in a temporary folder, or, with `DOORSTEP_TEST_STORE=postgres`, on a fresh
//! PostgreSQL database ([`crate::postgres::fresh_database`]): the same tests then run against the other
//! store. A test that reads or alters the SQLite file itself asks for [`TestOffice::sqlite_file`], which
//! refuses on PostgreSQL; `scripts/test` skips those there, by name.

use chrono::{DateTime, Local, TimeDelta, Utc};
use doorstep_core::domain::{Role, StaffMember};
use doorstep_core::event::EventEnvelope;
use doorstep_core::lifecycle::VisitEvent;
use doorstep_core::protocol::{SyncRequest, PROTOCOL_VERSION};
use doorstep_core::test_support;
use doorstep_office::demo::{self, DemoPhones, PhoneConfig};
use doorstep_office::store::postgres::PgStore;
use doorstep_office::{NotifyConfig, OfficeSettings, OfficeStore, SqliteStore, WebSettings};
use tempfile::TempDir;
use tokio::sync::oneshot;

pub struct TestOffice {
    pub url: String,
    pub store: OfficeStore,
    /// The PostgreSQL database's connection string, when the office runs on one.
    pub database_url: Option<String>,
    pub phones: DemoPhones,
    pub http: reqwest::Client,
    pub _dir: TempDir,
    shutdown: Option<oneshot::Sender<()>>,
}

pub async fn spawn_office() -> TestOffice {
    spawn_office_with(WebSettings::default(), Utc::now()).await
}

/// The office with notifications sent as `config` says.
pub async fn spawn_office_notifying(config: NotifyConfig) -> TestOffice {
    spawn_office_settings(
        OfficeSettings {
            notify: config,
            ..OfficeSettings::default()
        },
        Utc::now(),
    )
    .await
}

/// The office taking in texts from an SMS gateway that signs with `secret`.
pub async fn spawn_office_with_sms(secret: &str) -> TestOffice {
    spawn_office_settings(
        OfficeSettings {
            sms: Some(doorstep_office::sms::SmsGateway::new(secret).expect("a valid secret")),
            ..OfficeSettings::default()
        },
        Utc::now(),
    )
    .await
}

/// The office admitting syncs through `gate` (a test holds its places to make the office full).
pub async fn spawn_office_with_gate(gate: doorstep_office::admission::SyncGate) -> TestOffice {
    spawn_office_settings(
        OfficeSettings {
            sync_gate: gate,
            ..OfficeSettings::default()
        },
        Utc::now(),
    )
    .await
}

/// The office over plain HTTP (no secure cookies), seeded at `hour` o'clock local time on the next weekday:
/// the demo's visits then start at a quarter past that hour and every two hours after, in the future and on
/// a school day, whatever hour and day the test runs (so none is yet overdue or "not heard from").
pub async fn spawn_office_seeded_next_weekday_at(hour: u32) -> TestOffice {
    use chrono::Datelike;
    let mut day = Local::now().date_naive() + TimeDelta::days(1);
    while matches!(day.weekday(), chrono::Weekday::Sat | chrono::Weekday::Sun) {
        day += TimeDelta::days(1);
    }
    let seeded_at = day
        .and_hms_opt(hour, 0, 0)
        .and_then(|t| t.and_local_timezone(Local).earliest())
        .expect("that hour exists on that day")
        .with_timezone(&Utc);
    spawn_office_with(
        WebSettings {
            secure_cookies: false,
        },
        seeded_at,
    )
    .await
}

/// The real office with the dashboard served as `web` says (tests over plain HTTP need cookies without
/// `Secure`), its demo school seeded as if at `seeded_at`.
pub async fn spawn_office_with(web: WebSettings, seeded_at: DateTime<Utc>) -> TestOffice {
    spawn_office_settings(
        OfficeSettings {
            web,
            ..OfficeSettings::default()
        },
        seeded_at,
    )
    .await
}

pub async fn spawn_office_settings(
    settings: OfficeSettings,
    seeded_at: DateTime<Utc>,
) -> TestOffice {
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, database_url) = test_store(dir.path()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let phones = demo::seed(&store, &url, seeded_at).expect("seed demo");
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(doorstep_office::run_with(
        listener,
        store.clone(),
        settings,
        async {
            let _ = rx.await;
        },
    ));
    TestOffice {
        url,
        store,
        database_url,
        phones,
        http: reqwest::Client::new(),
        _dir: dir,
        shutdown: Some(tx),
    }
}

/// Whether the tests run the office on PostgreSQL (`DOORSTEP_TEST_STORE=postgres`).
pub fn on_postgres() -> bool {
    std::env::var("DOORSTEP_TEST_STORE").is_ok_and(|store| store == "postgres")
}

/// A new, empty store for an office under test: SQLite in `dir`, or a fresh PostgreSQL database (with
/// its connection string).
pub async fn test_store(dir: &std::path::Path) -> (OfficeStore, Option<String>) {
    if on_postgres() {
        let url = crate::postgres::fresh_database().await;
        let store = PgStore::connect(&url, 8).await.expect("connect").into();
        (store, Some(url))
    } else {
        (SqliteStore::open(dir).expect("open store").into(), None)
    }
}

impl TestOffice {
    /// The office's SQLite file, for a test that reads or alters it directly; such a test runs on SQLite
    /// only (`scripts/test` skips it on PostgreSQL, and this refuses there).
    pub fn sqlite_file(&self) -> std::path::PathBuf {
        self.store
            .sqlite()
            .expect("this test reads the SQLite file itself: it runs on SQLite only")
            .path()
            .to_owned()
    }

    /// Runs `sql` on the office's database behind the office's back, as a test looks at or changes what
    /// is stored: SQL both stores speak, its values written in (no parameters). Returns each row's columns
    /// as text (`None` for NULL).
    pub fn sql(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        self.try_sql(sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// [`Self::sql`], with the database's refusal as its words.
    pub fn try_sql(&self, sql: &str) -> Result<Vec<Vec<Option<String>>>, String> {
        match &self.database_url {
            Some(url) => postgres_sql(url, sql),
            None => sqlite_sql(&self.sqlite_file(), sql),
        }
    }

    /// The number a counting `sql` (`SELECT COUNT(*) ...`) answers.
    pub fn sql_count(&self, sql: &str) -> i64 {
        let rows = self.sql(sql);
        rows.first()
            .and_then(|row| row.first().cloned().flatten())
            .unwrap_or_else(|| panic!("{sql} answered no number"))
            .parse()
            .expect("a count")
    }

    /// Stops the server as a Ctrl-C would (the store stays readable).
    pub fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }

    pub async fn post_sync(
        &self,
        token: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let response = self
            .http
            .post(format!("{}/api/v1/sync", self.url))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("office answers");
        let status = response.status().as_u16();
        let body = response.json().await.expect("answer is JSON");
        (status, body)
    }

    /// How many events from phones the office's store holds (the office's own decisions not counted).
    pub fn stored_event_count(&self) -> usize {
        let mut count = 0;
        for visit in self.store.visit_ids().expect("visit ids") {
            let events = self.store.events_for_visit(&visit).expect("events");
            count += events
                .iter()
                .filter(|e| e.envelope.device.as_str() != "office")
                .count();
        }
        count
    }
}

type Rows = Vec<Vec<Option<String>>>;

fn sqlite_sql(file: &std::path::Path, sql: &str) -> Result<Rows, String> {
    let conn = rusqlite::Connection::open(file).expect("open the office's SQLite file");
    if !sql.trim_start().to_uppercase().starts_with("SELECT") {
        conn.execute_batch(sql).map_err(|e| e.to_string())?;
        return Ok(Vec::new());
    }
    let mut statement = conn.prepare(sql).map_err(|e| e.to_string())?;
    let columns = statement.column_count();
    let mut rows = statement.query([]).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(|e| e.to_string())? {
        out.push(
            (0..columns)
                .map(|i| match row.get_ref(i).expect("a column") {
                    rusqlite::types::ValueRef::Null => None,
                    rusqlite::types::ValueRef::Integer(n) => Some(n.to_string()),
                    rusqlite::types::ValueRef::Real(x) => Some(x.to_string()),
                    rusqlite::types::ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into()),
                    rusqlite::types::ValueRef::Blob(b) => Some(String::from_utf8_lossy(b).into()),
                })
                .collect(),
        );
    }
    Ok(out)
}

/// `sql` on PostgreSQL, from a thread of its own (a test may call it from the runtime's own thread).
fn postgres_sql(url: &str, sql: &str) -> Result<Rows, String> {
    let (url, sql) = (url.to_owned(), sql.to_owned());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .expect("connect to the test database");
            let connection = tokio::spawn(connection);
            let answered = client.simple_query(&sql).await;
            drop(client);
            let _ = connection.await;
            let messages = answered.map_err(|e| match e.as_db_error() {
                Some(refusal) => refusal.message().to_owned(),
                None => e.to_string(),
            })?;
            Ok(messages
                .iter()
                .filter_map(|message| match message {
                    tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                        (0..row.len())
                            .map(|i| row.get(i).map(str::to_owned))
                            .collect(),
                    ),
                    _ => None,
                })
                .collect())
        })
    })
    .join()
    .expect("the query's thread")
}

pub use doorstep_core::test_support::{staff, visit};

/// `minutes` from now by the real clock (which the office under test runs on).
pub fn in_minutes(minutes: i64) -> DateTime<Utc> {
    Utc::now() + TimeDelta::minutes(minutes)
}

/// An event as `phone` would record it now.
pub fn envelope(phone: &PhoneConfig, seq: u64, visit_id: &str, event: VisitEvent) -> EventEnvelope {
    recorded(phone, seq, visit_id, Utc::now(), event)
}

/// An event as `phone` recorded it at `recorded_at` by its own clock.
pub fn recorded(
    phone: &PhoneConfig,
    seq: u64,
    visit_id: &str,
    recorded_at: DateTime<Utc>,
    event: VisitEvent,
) -> EventEnvelope {
    test_support::envelope(phone.device_id.as_str(), seq, visit_id, recorded_at, event)
}

pub fn departed(who: &str) -> VisitEvent {
    VisitEvent::Departed {
        staff: staff(who),
        expected_arrival: in_minutes(10),
        expected_end: in_minutes(60),
    }
}

/// `who` sets off for visit-ava on `phone` and then raises a duress alert with the second PIN: a sync that
/// carries an alert, as the phone's first two events.
pub fn set_off_then_duress(phone: &PhoneConfig, who: &str) -> [EventEnvelope; 2] {
    [
        envelope(phone, 1, "visit-ava", departed(who)),
        envelope(
            phone,
            2,
            "visit-ava",
            VisitEvent::DuressRaised {
                staff: staff(who),
                via: doorstep_core::lifecycle::DuressVia::DuressPin,
            },
        ),
    ]
}

pub fn batch(events: &[EventEnvelope]) -> serde_json::Value {
    batch_since(events, None)
}

/// A batch sent with the holdings cursor of an earlier answer: the office answers with what changed.
pub fn batch_since(events: &[EventEnvelope], cursor: Option<&str>) -> serde_json::Value {
    serde_json::to_value(SyncRequest {
        protocol: PROTOCOL_VERSION,
        device_time: Utc::now(),
        events: events.to_vec(),
        holdings_cursor: cursor.map(str::to_owned),
    })
    .expect("serialise")
}

/// A browser-like client for the dashboard: keeps cookies, does not follow redirects (tests look at them).
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// The CSRF token in a page's first form.
pub fn csrf_in(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("the page has a CSRF field") + marker.len();
    html[start..].split('"').next().expect("a value").to_owned()
}

/// A response's status and body text.
pub async fn text(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// GETs `path` from the office with `client`: the status and the page.
pub async fn get(office: &TestOffice, client: &reqwest::Client, path: &str) -> (u16, String) {
    text(
        client
            .get(format!("{}{path}", office.url))
            .send()
            .await
            .expect("office answers"),
    )
    .await
}

// ---------------------------------------------------------------------------------------------------------
// Signing in to the dashboard.

/// The password of every office sign-in the tests make.
pub const PASSWORD: &str = "a-password-for-the-office-tests";

/// The demo office over plain HTTP (so cookies without `Secure`), seeded now, where each of `who` can sign
/// in with [`PASSWORD`].
pub async fn office_with_sign_ins(who: &[&str]) -> TestOffice {
    let office = spawn_office_with(
        WebSettings {
            secure_cookies: false,
        },
        Utc::now(),
    )
    .await;
    for name in who {
        office.allow_sign_in(name);
    }
    office
}

impl TestOffice {
    /// Adds a member of staff, without a DBS check on record, to the demo school.
    pub fn add_staff(&self, id: &str, name: &str, roles: &[Role]) {
        let member = StaffMember {
            id: staff(id),
            name: name.into(),
            roles: roles.to_vec(),
            phone: "07700 900009".parse().unwrap(),
            dbs: None,
        };
        let school = "demo-primary".parse().expect("school id");
        self.store.add_staff(&school, &member).expect("add staff");
    }

    /// Gives `who` an office sign-in with [`PASSWORD`].
    pub fn allow_sign_in(&self, who: &str) {
        self.store
            .set_office_password(&staff(who), PASSWORD, Utc::now())
            .expect("set a password");
    }

    /// A session for `who` made straight in the store, whatever their roles (the sign-in form turns some
    /// away): the `Cookie` header that carries it, and its CSRF token.
    pub fn session_for(&self, who: &str) -> (String, String) {
        let token = format!("a-session-token-for-{who}-made-in-the-store");
        let session = self
            .store
            .start_session(&staff(who), &token, Utc::now())
            .expect("start a session");
        (format!("doorstep_session={token}"), session.csrf_token)
    }
}

/// Fills in the sign-in form as a person would: the status and page of the answer.
pub async fn sign_in(
    office: &TestOffice,
    client: &reqwest::Client,
    name: &str,
    password: &str,
) -> (u16, String) {
    let (status, page) = get(office, client, "/login").await;
    assert_eq!(status, 200, "the sign-in page: {page}");
    post(
        office,
        client,
        "/login",
        &[
            ("csrf", csrf_in(&page).as_str()),
            ("name", name),
            ("password", password),
        ],
    )
    .await
}

/// A browser signed in as `who` through the sign-in form (with [`PASSWORD`]), and its session's CSRF
/// token, read from the board.
pub async fn signed_in(office: &TestOffice, who: &str) -> (reqwest::Client, String) {
    let client = browser();
    let (status, page) = sign_in(office, &client, who, PASSWORD).await;
    assert_eq!(status, 303, "{who} signed in: {page}");
    let (status, board) = get(office, &client, "/").await;
    assert_eq!(status, 200, "{board}");
    let csrf = csrf_in(&board);
    (client, csrf)
}

/// POSTs `form` to `path` with `client`.
pub async fn post_response<T: serde::Serialize + ?Sized>(
    office: &TestOffice,
    client: &reqwest::Client,
    path: &str,
    form: &T,
) -> reqwest::Response {
    client
        .post(format!("{}{path}", office.url))
        .form(form)
        .send()
        .await
        .expect("office answers")
}

/// POSTs `form` to `path` with `client`: the status and the page.
pub async fn post<T: serde::Serialize + ?Sized>(
    office: &TestOffice,
    client: &reqwest::Client,
    path: &str,
    form: &T,
) -> (u16, String) {
    text(post_response(office, client, path, form).await).await
}

// ---------------------------------------------------------------------------------------------------------
// The real office binary.

/// A free address on this machine for the office binary to listen on (bound here and let go, so the
/// binary can bind it next; the kernel does not hand a just-freed port straight to someone else).
pub fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("address").to_string()
}

/// Waits until the office at `url` answers its health check, for at most 20 s.
pub async fn wait_until_up(url: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the office at {url} did not start"
        );
        let health = reqwest::get(format!("{url}/api/v1/health")).await;
        if health.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Enrols a phone for `who` as an admin and a phone do with the real binary: `doorstep-office enrol-code`
/// prints the link, and the phone redeems its code at `POST /api/v1/enrol`.
pub async fn enrol_by_code(data_dir: &std::path::Path, url: &str, who: &str) -> PhoneConfig {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_doorstep-office"))
        .args([
            "enrol-code",
            who,
            "--link",
            "--office-url",
            url,
            "--data-dir",
        ])
        .arg(data_dir)
        .output()
        .expect("run doorstep-office enrol-code");
    assert!(output.status.success(), "enrol-code: {output:?}");
    let link = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let link = doorstep_core::protocol::EnrolmentLink::parse(&link)
        .unwrap_or_else(|| panic!("enrol-code printed a link: {link:?}"));
    assert_eq!(link.office_url, url);
    let response = reqwest::Client::new()
        .post(format!("{url}/api/v1/enrol"))
        .json(&doorstep_core::protocol::EnrolRequest {
            protocol: PROTOCOL_VERSION,
            code: link.code,
        })
        .send()
        .await
        .expect("the office answers");
    assert_eq!(response.status(), 200, "enrolled");
    let enrolled: doorstep_core::protocol::EnrolResponse =
        response.json().await.expect("an enrolment answer");
    PhoneConfig {
        office_url: url.to_owned(),
        device_id: enrolled.device_id,
        device_token: enrolled.credential.token,
    }
}
