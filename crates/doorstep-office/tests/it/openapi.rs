//! The served OpenAPI document tells the truth: every documented operation exists, and real answers from the
//! running server validate against the documented schemas.

use serde_json::{json, Value};

use crate::helpers::*;

async fn document(office: &TestOffice) -> Value {
    office
        .http
        .get(format!("{}/api/v1/openapi.json", office.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Validates `instance` against the schema the document gives for `path`/`method`/`status`.
fn assert_matches(doc: &Value, path: &str, method: &str, status: u16, instance: &Value) {
    let schema = &doc["paths"][path][method]["responses"][status.to_string()]["content"]
        ["application/json"]["schema"];
    assert!(
        !schema.is_null(),
        "{method} {path} documents no {status} answer"
    );
    let root = json!({ "$ref": schema["$ref"], "components": doc["components"] });
    let validator = jsonschema::validator_for(&root).expect("the document's schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {path} {status} does not match its schema: {errors:?}"
    );
}

#[tokio::test]
async fn the_served_document_matches_the_running_server() {
    let office = spawn_office().await;
    let doc = document(&office).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let mut operations = Vec::new();
    for (path, methods) in doc["paths"].as_object().unwrap() {
        for method in methods.as_object().unwrap().keys() {
            operations.push(format!("{method} {path}"));
        }
    }
    operations.sort();
    assert_eq!(
        operations,
        [
            "get /api/v1/health",
            "get /api/v1/openapi.json",
            "post /api/v1/enrol",
            "post /api/v1/reconcile",
            "post /api/v1/sms/inbound",
            "post /api/v1/sync"
        ],
        "a route was added or removed without updating the document"
    );

    // Each documented operation exists (a wrong path would be 404, a wrong method 405).
    let health = office
        .http
        .get(format!("{}/api/v1/health", office.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_matches(
        &doc,
        "/api/v1/health",
        "get",
        200,
        &health.json().await.unwrap(),
    );

    let sam = &office.phones.me;
    let events = [envelope(sam, 1, "visit-ava", departed("sam"))];
    let request = batch(&events);
    let request_schema = json!({
        "$ref": doc["paths"]["/api/v1/sync"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "components": doc["components"]
    });
    assert!(
        jsonschema::is_valid(&request_schema, &request),
        "a real request matches the request schema"
    );

    let (status, body) = office.post_sync(&sam.device_token, &request).await;
    assert_eq!(status, 200);
    assert_matches(&doc, "/api/v1/sync", "post", 200, &body);

    let mut conflicting = events[0].clone();
    conflicting.event = doorstep_core::lifecycle::VisitEvent::ArrivedOutside {
        staff: staff("sam"),
    };
    let (status, body) = office
        .post_sync(&sam.device_token, &batch(&[conflicting]))
        .await;
    assert_eq!(status, 409);
    assert_matches(&doc, "/api/v1/sync", "post", 409, &body);

    let (status, body) = office
        .post_sync(&sam.device_token, &json!({"protocol": 1}))
        .await;
    assert_eq!(status, 400);
    assert_matches(&doc, "/api/v1/sync", "post", 400, &body);

    for (question, status) in [
        (json!({"protocol": 1, "from_seq": 1, "through_seq": 5}), 200),
        (json!({"protocol": 1, "from_seq": 5, "through_seq": 1}), 400),
    ] {
        let answer = office
            .http
            .post(format!("{}/api/v1/reconcile", office.url))
            .bearer_auth(&sam.device_token)
            .json(&question)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), status);
        assert_matches(
            &doc,
            "/api/v1/reconcile",
            "post",
            status,
            &answer.json().await.unwrap(),
        );
    }

    let (status, body) = office.post_sync("nobody", &request).await;
    assert_eq!(status, 401);
    assert_matches(&doc, "/api/v1/sync", "post", 401, &body);

    let (status, body) = office
        .post_sync(
            &sam.device_token,
            &batch(&[envelope(sam, 2, "visit-nope", departed("sam"))]),
        )
        .await;
    assert_eq!(status, 422);
    assert_matches(&doc, "/api/v1/sync", "post", 422, &body);

    // Enrolment: a code redeemed, then the same code again, then no such code.
    let school = "demo-primary".parse().unwrap();
    let issued = office
        .store
        .issue_enrolment_code(&school, &staff("alex"), "test", chrono::Utc::now())
        .unwrap();
    let enrol = |code: &str| {
        let request = json!({ "protocol": 1, "code": code });
        let request_schema = json!({
            "$ref": doc["paths"]["/api/v1/enrol"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "components": doc["components"]
        });
        assert!(jsonschema::is_valid(&request_schema, &request), "{request}");
        office
            .http
            .post(format!("{}/api/v1/enrol", office.url))
            .json(&request)
            .send()
    };
    for (code, status) in [
        (issued.code.as_str(), 200),
        (issued.code.as_str(), 410),
        ("0000-0000-0000", 404),
    ] {
        let response = enrol(code).await.unwrap();
        assert_eq!(response.status(), status);
        assert_matches(
            &doc,
            "/api/v1/enrol",
            "post",
            status,
            &response.json().await.unwrap(),
        );
    }
    office
        .store
        .revoke_device(&school, &sam.device_id, &staff("head"), chrono::Utc::now())
        .unwrap();
    let (status, body) = office.post_sync(&sam.device_token, &request).await;
    assert_eq!(status, 403);
    assert_matches(&doc, "/api/v1/sync", "post", 403, &body);
}
