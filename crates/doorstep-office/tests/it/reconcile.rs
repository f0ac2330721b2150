//! `POST /api/v1/reconcile`: the office says which of a phone's events it holds in a sequence range, and the
//! highest number it holds from that phone; only to that phone, and only for a sensible range.

use serde_json::{json, Value};

use crate::helpers::*;

async fn ask(office: &TestOffice, token: &str, body: &Value) -> (u16, Value) {
    let response = office
        .http
        .post(format!("{}/api/v1/reconcile", office.url))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn the_office_lists_what_it_holds_from_the_phone_in_the_range_and_its_highest_number() {
    let office = spawn_office().await;
    let sam = &office.phones.me;
    let alex = &office.phones.partner;
    let events: Vec<_> = [1, 2, 3, 5]
        .into_iter()
        .map(|seq| envelope(sam, seq, "visit-ava", departed("sam")))
        .collect();
    let (status, _) = office.post_sync(&sam.device_token, &batch(&events)).await;
    assert_eq!(status, 200);
    let (status, _) = office
        .post_sync(
            &alex.device_token,
            &batch(&[envelope(alex, 9, "visit-ava", departed("alex"))]),
        )
        .await;
    assert_eq!(status, 200);

    let (status, body) = ask(
        &office,
        &sam.device_token,
        &json!({"protocol": 1, "from_seq": 2, "through_seq": 4}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["held"],
        json!([
            {"seq": 2, "id": events[1].id.to_string()},
            {"seq": 3, "id": events[2].id.to_string()},
        ])
    );
    assert_eq!(body["highest_seq"], 5, "beyond the range too");

    let (_, body) = ask(
        &office,
        &alex.device_token,
        &json!({"protocol": 1, "from_seq": 1, "through_seq": 10}),
    )
    .await;
    assert_eq!(
        body["held"].as_array().unwrap().len(),
        1,
        "only Alex's own: {body}"
    );
    assert_eq!(body["highest_seq"], 9);
}

#[tokio::test]
async fn a_bad_question_is_refused_with_a_reason() {
    let office = spawn_office().await;
    let sam = &office.phones.me;
    let cases = [
        (
            json!({"protocol": 1, "from_seq": 5, "through_seq": 4}),
            400,
            "bad_range",
        ),
        (
            json!({"protocol": 1, "from_seq": 1, "through_seq": 2001}),
            400,
            "bad_range",
        ),
        (
            json!({"protocol": 2, "from_seq": 1, "through_seq": 2}),
            400,
            "unsupported_protocol",
        ),
        (
            json!({"protocol": 1, "from_seq": 0, "through_seq": 2}),
            400,
            "bad_json",
        ),
        (json!({"protocol": 1}), 400, "bad_json"),
    ];
    for (body, status, code) in cases {
        let (got, answer) = ask(&office, &sam.device_token, &body).await;
        assert_eq!(
            (got, answer["error"].as_str()),
            (status, Some(code)),
            "{body}"
        );
    }
    let (status, answer) = ask(
        &office,
        "not-a-token",
        &json!({"protocol": 1, "from_seq": 1, "through_seq": 2}),
    )
    .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (401, Some("unknown_device"))
    );
    // A phone the office holds nothing from: nothing held, no highest number.
    let (status, answer) = ask(
        &office,
        &sam.device_token,
        &json!({"protocol": 1, "from_seq": 1, "through_seq": 2000}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(answer["held"], json!([]));
    assert_eq!(answer["highest_seq"], Value::Null);
}
