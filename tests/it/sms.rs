//! The second channel end to end: the phone's own alert, texted through the gateway while the phone has no
//! data, is stored by the office from the text; when data returns the phone shows it confirmed, and the
//! office still holds it once. And the other order: by data first, then the text, still once.

use std::sync::Arc;

use chrono::Utc;
use doorstep::store::AppStore;
use doorstep::sync::{SyncClient, SyncOutcome};
use doorstep_core::event::EventEnvelope;
use doorstep_core::event_log::Delivery;
use doorstep_core::lifecycle::{Command, DuressVia};
use doorstep_core::sms::{self, SmsKey};
use doorstep_office::demo::{self, PhoneConfig};
use doorstep_office::sms::SmsGateway;
use doorstep_office::{OfficeSettings, SqliteStore};
use tokio::sync::oneshot;

use crate::office::phone;

const SECRET: &str = "shared-by-the-gateway-and-the-office";

struct Office {
    url: String,
    store: Arc<SqliteStore>,
    sam: PhoneConfig,
    _stop: oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

async fn office_taking_texts() -> Office {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let sam = demo::seed(&store.clone().into(), &url, Utc::now())
        .unwrap()
        .me;
    let (stop, stopped) = oneshot::channel::<()>();
    let settings = OfficeSettings {
        sms: Some(SmsGateway::new(SECRET).unwrap()),
        ..OfficeSettings::default()
    };
    tokio::spawn(doorstep_office::run_with(
        listener,
        store.clone().into(),
        settings,
        async {
            let _ = stopped.await;
        },
    ));
    Office {
        url,
        store,
        sam,
        _stop: stop,
        _dir: dir,
    }
}

/// The gateway hands the office a text from Sam's phone.
async fn text_the_office(office: &Office, text: &str) -> serde_json::Value {
    let body =
        serde_json::to_vec(&serde_json::json!({"from": "+447700900003", "text": text})).unwrap();
    let timestamp = Utc::now().timestamp();
    let signature = SmsGateway::new(SECRET).unwrap().signature(timestamp, &body);
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/sms/inbound", office.url))
        .header("content-type", "application/json")
        .header("x-doorstep-timestamp", timestamp.to_string())
        .header("x-doorstep-signature", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn raise_alert(store: &AppStore) -> EventEnvelope {
    store
        .perform(
            &"visit-ava".parse().unwrap(),
            Command::RaiseDuress {
                staff: "sam".parse().unwrap(),
                via: DuressVia::CodePhraseButton,
            },
            Utc::now(),
        )
        .unwrap()
}

fn copies_at_office(office: &Office, event: &EventEnvelope) -> usize {
    office
        .store
        .events_for_visit(&event.visit)
        .unwrap()
        .iter()
        .filter(|stored| stored.envelope.id == event.id)
        .count()
}

#[tokio::test]
async fn an_alert_texted_with_no_data_is_stored_from_the_text_and_confirmed_when_data_returns() {
    let office = office_taking_texts().await;
    let dir = tempfile::tempdir().unwrap();
    let (store, client) = phone(dir.path(), &office.sam);
    assert_eq!(
        client.sync_once(&store, Utc::now).await.outcome,
        SyncOutcome::UpToDate
    );

    // No data: the phone's requests go nowhere.
    let no_data = SyncClient::new("http://127.0.0.1:9", &office.sam.device_token).unwrap();
    let alert = raise_alert(&store);
    let report = no_data.sync_once(&store, Utc::now).await;
    assert!(
        matches!(report.outcome, SyncOutcome::Unreachable { .. }),
        "{report:?}"
    );
    assert!(matches!(
        store.delivery(alert.id).unwrap(),
        Some(Delivery::Waiting { .. })
    ));

    // The text the alert screen prefills, with this phone's key, reaches the office through the gateway.
    let key = SmsKey::from_device_token(&office.sam.device_token);
    let text = sms::message("Please check the cover rota", &alert, &key).unwrap();
    let answer = text_the_office(&office, &text).await;
    assert_eq!(answer["outcome"], "stored");
    assert_eq!(copies_at_office(&office, &alert), 1);
    // The phone cannot know yet: it still says so.
    assert!(matches!(
        store.delivery(alert.id).unwrap(),
        Some(Delivery::Waiting { .. })
    ));

    // Data returns: the office answers "duplicate" and the phone shows the alert confirmed.
    let report = client.sync_once(&store, Utc::now).await;
    assert_eq!(report.outcome, SyncOutcome::UpToDate);
    assert_eq!(report.confirmed, 1);
    assert!(matches!(
        store.delivery(alert.id).unwrap(),
        Some(Delivery::Confirmed { .. })
    ));
    assert_eq!(copies_at_office(&office, &alert), 1);
    assert_eq!(office.store.sms_messages().unwrap().len(), 1);
}

#[tokio::test]
async fn an_alert_that_went_by_data_first_is_a_duplicate_when_its_text_arrives() {
    let office = office_taking_texts().await;
    let dir = tempfile::tempdir().unwrap();
    let (store, client) = phone(dir.path(), &office.sam);
    client.sync_once(&store, Utc::now).await;
    let alert = raise_alert(&store);
    assert_eq!(client.sync_once(&store, Utc::now).await.confirmed, 1);

    let key = SmsKey::from_device_token(&office.sam.device_token);
    let text = sms::message("Please check the cover rota", &alert, &key).unwrap();
    assert_eq!(
        text_the_office(&office, &text).await["outcome"],
        "duplicate"
    );
    assert_eq!(copies_at_office(&office, &alert), 1);
    assert!(matches!(
        store.delivery(alert.id).unwrap(),
        Some(Delivery::Confirmed { .. })
    ));
}
