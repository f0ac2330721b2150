//! Alerts by text message: the SMS gateway's signed webhook stores a genuine alert once, whichever channel
//! brings it first; a forged or altered text is refused and recorded; an unsigned request is refused.

use chrono::Utc;
use doorstep_core::event::EventEnvelope;
use doorstep_core::lifecycle::{DuressVia, VisitEvent};
use doorstep_core::sms::{self, SmsKey};
use doorstep_office::demo::PhoneConfig;
use doorstep_office::sms::SmsGateway;
use serde_json::{json, Value};

use crate::helpers::*;

const SECRET: &str = "the-gateway-and-the-office-share-this";
const WORDS: &str = "Please can someone check the lesson cover rota for me?";

fn alert(phone: &PhoneConfig, seq: u64) -> EventEnvelope {
    envelope(
        phone,
        seq,
        "visit-ava",
        VisitEvent::DuressRaised {
            staff: staff("sam"),
            via: DuressVia::CodePhraseButton,
        },
    )
}

/// The text Sam's phone prefills for `alert`.
fn text_for(phone: &PhoneConfig, alert: &EventEnvelope) -> String {
    sms::message(
        WORDS,
        alert,
        &SmsKey::from_device_token(&phone.device_token),
    )
    .unwrap()
}

/// Posts `text` as the gateway would, signed with `secret` at `timestamp`.
async fn post_text_signed(
    office: &TestOffice,
    text: &str,
    secret: &str,
    timestamp: i64,
) -> (u16, Value) {
    let body = serde_json::to_vec(&json!({
        "from": "+447700900003",
        "to": "+441632960000",
        "text": text,
        "gateway_id": "gw-1",
    }))
    .unwrap();
    let signature = SmsGateway::new(secret).unwrap().signature(timestamp, &body);
    let response = office
        .http
        .post(format!("{}/api/v1/sms/inbound", office.url))
        .header("content-type", "application/json")
        .header("x-doorstep-timestamp", timestamp.to_string())
        .header("x-doorstep-signature", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn post_text(office: &TestOffice, text: &str) -> (u16, Value) {
    post_text_signed(office, text, SECRET, Utc::now().timestamp()).await
}

/// How many times the office holds event `id`, read from its database file.
fn copies(office: &TestOffice, id: &str) -> i64 {
    office.sql_count(&format!("SELECT COUNT(*) FROM events WHERE id = '{id}'"))
}

fn outcomes(office: &TestOffice) -> Vec<String> {
    office
        .store
        .sms_messages()
        .unwrap()
        .into_iter()
        .map(|m| m.outcome)
        .collect()
}

#[tokio::test]
async fn a_text_that_arrives_first_stores_the_alert_and_the_same_alert_by_data_is_a_duplicate() {
    let office = spawn_office_with_sms(SECRET).await;
    let sam = &office.phones.me;
    let alert = alert(sam, 1);
    let id = alert.id.to_string();

    let (status, body) = post_text(&office, &text_for(sam, &alert)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"outcome": "stored", "event_id": id}));
    assert_eq!(copies(&office, &id), 1);
    let (_, state) = office.store.visit(&visit("visit-ava")).unwrap().unwrap();
    assert_eq!(
        state.active_duress().count(),
        1,
        "the visit has an active alert"
    );
    // Exactly the envelope the phone holds: by data it is a duplicate, not a conflict.
    let (status, body) = office.post_sync(&sam.device_token, &batch(&[alert])).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["outcome"], "duplicate");
    assert_eq!(copies(&office, &id), 1);
    let recorded = office.store.sms_messages().unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].outcome, "stored");
    assert_eq!(recorded[0].from, "+447700900003");
    assert_eq!(recorded[0].event_id.as_deref(), Some(id.as_str()));
}

#[tokio::test]
async fn an_alert_that_arrived_by_data_first_is_a_duplicate_by_text() {
    let office = spawn_office_with_sms(SECRET).await;
    let sam = &office.phones.me;
    let alert = alert(sam, 1);
    let id = alert.id.to_string();
    let (status, _) = office
        .post_sync(&sam.device_token, &batch(std::slice::from_ref(&alert)))
        .await;
    assert_eq!(status, 200);

    let text = text_for(sam, &alert);
    for _ in 0..2 {
        let (status, body) = post_text(&office, &text).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["outcome"], "duplicate");
    }
    assert_eq!(copies(&office, &id), 1);
    assert_eq!(outcomes(&office), ["duplicate", "duplicate"]);
}

#[tokio::test]
async fn a_forged_or_altered_text_is_refused_and_recorded_and_stores_nothing() {
    let office = spawn_office_with_sms(SECRET).await;
    let sam = &office.phones.me;
    let alex = &office.phones.partner;
    let alert = alert(sam, 1);
    let genuine = text_for(sam, &alert);
    let cases = [
        (
            "signed with a key guessed by someone without the phone",
            sms::message(WORDS, &alert, &SmsKey::from_device_token("guessed")).unwrap(),
        ),
        (
            "signed by another phone",
            sms::message(
                WORDS,
                &alert,
                &SmsKey::from_device_token(&alex.device_token),
            )
            .unwrap(),
        ),
        (
            "moved to another visit",
            genuine.replace(".visit-ava.", ".visit-leo."),
        ),
        (
            "naming a phone the office does not know",
            genuine.replace("DS1.phone-sam.", "DS1.phone-zed."),
        ),
    ];
    for (what, text) in &cases {
        assert_ne!(text, &genuine, "{what}");
        let (status, body) = post_text(&office, text).await;
        assert_eq!(status, 422, "{what}: {body}");
        assert_eq!(body["error"], "forged_text", "{what}: {body}");
    }
    assert_eq!(copies(&office, &alert.id.to_string()), 0);
    assert_eq!(office.stored_event_count(), 0);
    let recorded = office.store.sms_messages().unwrap();
    assert_eq!(recorded.len(), cases.len(), "each one recorded");
    for (record, (what, text)) in recorded.iter().zip(&cases) {
        assert_eq!(record.outcome, "forged", "{what}");
        assert_eq!(&record.text, text, "{what}");
        assert!(!record.detail.is_empty(), "{what}: says why");
    }

    // A text typed by hand, with no reference: recorded, refused, and nothing stored.
    let (status, body) = post_text(&office, "Running ten minutes late, sorry").await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"], "no_reference");
    assert_eq!(
        outcomes(&office).last().map(String::as_str),
        Some("unreadable")
    );

    // The genuine one still goes through afterwards.
    let (status, body) = post_text(&office, &genuine).await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("stored")));
}

#[tokio::test]
async fn a_request_without_the_gateways_signature_is_refused_and_not_recorded() {
    let office = spawn_office_with_sms(SECRET).await;
    let sam = &office.phones.me;
    let text = text_for(sam, &alert(sam, 1));
    let now = Utc::now().timestamp();
    let cases = [
        (
            "another secret",
            "not-the-gateways-secret-at-all",
            now,
            "bad_signature",
        ),
        (
            "signed ten minutes ago",
            SECRET,
            now - 600,
            "stale_signature",
        ),
    ];
    for (what, secret, timestamp, code) in cases {
        let (status, body) = post_text_signed(&office, &text, secret, timestamp).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert_eq!(body["error"], code, "{what}");
    }
    let unsigned = office
        .http
        .post(format!("{}/api/v1/sms/inbound", office.url))
        .json(&json!({"from": "+447700900003", "text": text}))
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    assert_eq!(office.stored_event_count(), 0);
    assert!(office.store.sms_messages().unwrap().is_empty());
}

#[tokio::test]
async fn an_office_without_a_gateway_secret_takes_no_texts() {
    let office = spawn_office().await;
    let sam = &office.phones.me;
    let (status, body) = post_text(&office, &text_for(sam, &alert(sam, 1))).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"], "sms_not_configured");
    assert_eq!(office.stored_event_count(), 0);
}

#[tokio::test]
async fn a_phone_that_took_a_renewed_credential_offline_still_signs_and_a_revoked_one_does_not() {
    let office = spawn_office_with_sms(SECRET).await;
    let sam = &office.phones.me;
    let school: doorstep_core::ids::SchoolId = "demo-primary".parse().unwrap();
    // A week on, the office offers Sam's phone a fresh token; the phone keeps it, then loses signal
    // before using it, so the office still counts it only as offered.
    let now = Utc::now();
    let device = office
        .store
        .authenticate(&sam.device_token, now)
        .unwrap()
        .unwrap();
    let renewed = office
        .store
        .offer_renewal(&device, now + chrono::TimeDelta::days(8))
        .unwrap()
        .expect("a week-old token is renewed");
    let first = alert(sam, 1);
    let text = sms::message(WORDS, &first, &SmsKey::from_device_token(&renewed.token)).unwrap();
    let (status, body) = post_text(&office, &text).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("stored")),
        "{body}"
    );

    // Revoked, the phone's texts are refused like a stranger's, and nothing is stored.
    assert!(office
        .store
        .revoke_device(&school, &device.id, &staff("head"), Utc::now())
        .unwrap());
    let second = alert(sam, 2);
    let (status, body) = post_text(&office, &text_for(sam, &second)).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"], "forged_text");
    assert_eq!(copies(&office, &second.id.to_string()), 0);
    assert_eq!(outcomes(&office).last().map(String::as_str), Some("forged"));
}
