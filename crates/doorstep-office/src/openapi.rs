//! The OpenAPI 3.1 document served at `/api/v1/openapi.json`. Its schemas are generated from the very types
//! the handlers use, so they cannot drift; a test checks the paths and answers against the running server.

use doorstep_core::protocol::{EnrolRequest, EnrolResponse, ErrorBody, SyncRequest, SyncResponse};
use doorstep_core::reconcile::{ReconcileRequest, ReconcileResponse};
use schemars::generate::SchemaSettings;
use serde::Serialize;
use serde_json::{json, Value};

use crate::api::Health;
use crate::sms::{InboundAnswer, InboundSms};

/// A required request body of JSON in `schema`.
fn json_request(schema: impl Serialize) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": schema } } })
}

/// An answer, `description`, with a body of JSON in `schema`.
fn json_answer(description: &str, schema: impl Serialize) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

/// Builds the document.
pub fn document() -> Value {
    let mut settings = SchemaSettings::draft2020_12();
    settings.definitions_path = "/components/schemas".into();
    settings.meta_schema = None;
    let mut generator = settings.into_generator();
    let sync_request = generator.subschema_for::<SyncRequest>();
    let sync_response = generator.subschema_for::<SyncResponse>();
    let enrol_request = generator.subschema_for::<EnrolRequest>();
    let enrol_response = generator.subschema_for::<EnrolResponse>();
    let error = generator.subschema_for::<ErrorBody>();
    let health = generator.subschema_for::<Health>();
    let reconcile_request = generator.subschema_for::<ReconcileRequest>();
    let reconcile_response = generator.subschema_for::<ReconcileResponse>();
    let inbound_sms = generator.subschema_for::<InboundSms>();
    let inbound_answer = generator.subschema_for::<InboundAnswer>();
    let schemas = generator.take_definitions(true);

    let error_response = |description: &str| json_answer(description, &error);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Doorstep office API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The API phones use to enrol with the office (a one-time code an admin issued), send \
                visit events and receive their visits. A batch is stored all or nothing; each event id is stored \
                exactly once. A device token expires after 30 days and a sync answer offers a fresh one while it \
                is in use."
        },
        "paths": {
            "/api/v1/enrol": {
                "post": {
                    "operationId": "enrol",
                    "summary": "Redeem a one-time enrolment code for this phone's own device id and credential",
                    "requestBody": json_request(enrol_request),
                    "responses": {
                        "200": json_answer("Enrolled: a new device id, its token and whose phone it is", enrol_response),
                        "400": error_response("Malformed JSON, unknown or missing fields, or an unsupported protocol version"),
                        "404": error_response("No such code (enrolment_code_unknown)"),
                        "410": error_response("The code was already used (enrolment_code_used) or has expired (enrolment_code_expired)"),
                        "415": error_response("The body is not application/json"),
                        "429": error_response("Too many wrong codes from this address (too_many_attempts); try again later"),
                        "500": error_response("The office failed; nothing stored")
                    }
                }
            },
            "/api/v1/sync": {
                "post": {
                    "operationId": "sync",
                    "summary": "Send a batch of visit events; receive per-event outcomes and what the phone should hold",
                    "security": [{ "deviceToken": [] }],
                    "requestBody": json_request(sync_request),
                    "responses": {
                        "200": json_answer("Every event stored or already stored", sync_response),
                        "400": error_response("Malformed JSON, unknown or missing fields, or an unsupported protocol version"),
                        "401": error_response("No device token, one the office does not know (unknown_device), one past its expiry (credential_expired), or one replaced by a newer token (credential_replaced)"),
                        "403": error_response("This phone was revoked (device_revoked): it deletes what it holds"),
                        "409": error_response("An event id or sequence number is already stored with different content; nothing stored"),
                        "413": error_response("The body or the batch is too large"),
                        "415": error_response("The body is not application/json"),
                        "422": error_response("An event is out of range or not for this device's visits; nothing stored"),
                        "500": error_response("The office failed; nothing stored"),
                        "503": error_response("The office is past capacity (busy): nothing stored; send again after the Retry-After header's seconds. A batch carrying an alert is never turned away")
                    }
                }
            },
            "/api/v1/reconcile": {
                "post": {
                    "operationId": "reconcile",
                    "summary": "Which of this phone's events, by sequence range, the office holds, and the highest number it holds from it",
                    "security": [{ "deviceToken": [] }],
                    "requestBody": json_request(reconcile_request),
                    "responses": {
                        "200": json_answer("The events held in the range, and the highest sequence number held", reconcile_response),
                        "400": error_response("Malformed JSON, an unsupported protocol version, or a range that is reversed or wider than 2,000"),
                        "401": error_response("No device token, or one the office does not know"),
                        "500": error_response("The office failed")
                    }
                }
            },
            "/api/v1/sms/inbound": {
                "post": {
                    "operationId": "smsInbound",
                    "summary": "The SMS gateway hands over a text; an alert carried in it is stored once (see docs/sms.md)",
                    "parameters": [
                        { "name": "X-Doorstep-Timestamp", "in": "header", "required": true, "schema": { "type": "integer" },
                          "description": "When the gateway signed, in Unix seconds; within 300 s of the office's clock" },
                        { "name": "X-Doorstep-Signature", "in": "header", "required": true, "schema": { "type": "string" },
                          "description": "sha256= and the hex HMAC-SHA256, keyed with the gateway's secret, of the timestamp, '.', and the body" }
                    ],
                    "requestBody": json_request(inbound_sms),
                    "responses": {
                        "200": json_answer("A genuine alert: stored now, or already stored (by data or an earlier text)", inbound_answer),
                        "400": error_response("Signed, but not the gateway form; recorded"),
                        "401": error_response("No, an old or a wrong gateway signature; not recorded"),
                        "404": error_response("This office has no SMS gateway secret"),
                        "409": error_response("A genuine reference whose event conflicts with one stored; recorded"),
                        "422": error_response("No readable reference, a forged or altered one, or an event the office refuses; recorded"),
                        "500": error_response("The office failed; the gateway should send it again")
                    }
                }
            },
            "/api/v1/health": {
                "get": {
                    "operationId": "health",
                    "summary": "Whether the office is up, and its clock",
                    "responses": {
                        "200": json_answer("The office is up", health)
                    }
                }
            },
            "/api/v1/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "responses": { "200": { "description": "The OpenAPI document" } }
                }
            }
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "deviceToken": { "type": "http", "scheme": "bearer", "description": "The phone's device token" }
            }
        }
    })
}
