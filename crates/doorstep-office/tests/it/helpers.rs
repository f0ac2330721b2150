//! `spawn_office()`: the real office on port 0 with a fresh demo database, and event builders for tests.

use std::sync::Arc;

use chrono::{DateTime, Local, TimeDelta, Utc};
use doorstep_core::event::EventEnvelope;
use doorstep_core::ids::{DeviceSeq, EventId, StaffId, VisitId};
use doorstep_core::lifecycle::VisitEvent;
use doorstep_core::protocol::{SyncRequest, PROTOCOL_VERSION};
use doorstep_office::demo::{self, DemoPhones, PhoneConfig};
use doorstep_office::{NotifyConfig, OfficeSettings, SqliteStore, WebSettings};
use tempfile::TempDir;
use tokio::sync::oneshot;

pub struct TestOffice {
    pub url: String,
    pub store: Arc<SqliteStore>,
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

/// The real office with the dashboard served as `web` says (tests over plain HTTP need cookies without
/// `Secure`), its demo school seeded as if at `seeded_at`.
/// The office over plain HTTP (no secure cookies), seeded at `hour` o'clock today, local time: the demo's
/// visits then start at a quarter past that hour and every two hours after, whatever hour the test runs.
pub async fn spawn_office_seeded_today_at(hour: u32) -> TestOffice {
    let seeded_at = Local::now()
        .date_naive()
        .and_hms_opt(hour, 0, 0)
        .and_then(|t| t.and_local_timezone(Local).earliest())
        .expect("that hour exists today")
        .with_timezone(&Utc);
    spawn_office_with(
        WebSettings {
            secure_cookies: false,
        },
        seeded_at,
    )
    .await
}

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

async fn spawn_office_settings(settings: OfficeSettings, seeded_at: DateTime<Utc>) -> TestOffice {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(SqliteStore::open(dir.path()).expect("open store"));
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
        phones,
        http: reqwest::Client::new(),
        _dir: dir,
        shutdown: Some(tx),
    }
}

impl TestOffice {
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

    /// How many events the office's database holds, read straight from the SQLite file.
    pub fn stored_event_count(&self) -> i64 {
        let conn = rusqlite_count_conn(self.store.path());
        conn.query_row(
            "SELECT COUNT(*) FROM events WHERE device_id != 'office'",
            [],
            |row| row.get(0),
        )
        .expect("count")
    }
}

fn rusqlite_count_conn(path: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).expect("open office database")
}

pub fn visit(id: &str) -> VisitId {
    id.parse().expect("visit id")
}

pub fn staff(id: &str) -> StaffId {
    id.parse().expect("staff id")
}

pub fn at(minutes: i64) -> DateTime<Utc> {
    Utc::now() + TimeDelta::minutes(minutes)
}

/// An event as `phone` would record it.
pub fn envelope(phone: &PhoneConfig, seq: u64, visit_id: &str, event: VisitEvent) -> EventEnvelope {
    EventEnvelope {
        id: EventId::new_v7(),
        device: phone.device_id.clone(),
        seq: DeviceSeq::new(seq).expect("seq"),
        visit: visit(visit_id),
        recorded_at: Utc::now(),
        event,
    }
}

pub fn departed(who: &str) -> VisitEvent {
    VisitEvent::Departed {
        staff: staff(who),
        expected_arrival: at(10),
        expected_end: at(60),
    }
}

pub fn batch(events: &[EventEnvelope]) -> serde_json::Value {
    serde_json::to_value(SyncRequest {
        protocol: PROTOCOL_VERSION,
        device_time: Utc::now(),
        events: events.to_vec(),
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
