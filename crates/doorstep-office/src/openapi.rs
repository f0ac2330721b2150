//! The OpenAPI 3.1 document served at `/api/v1/openapi.json`. Its schemas are generated from the very types
//! the handlers use, so they cannot drift; a test checks the paths and answers against the running server.

use doorstep_core::protocol::{EnrolRequest, EnrolResponse, ErrorBody, SyncRequest, SyncResponse};
use schemars::generate::SchemaSettings;
use serde_json::{json, Value};

use crate::api::Health;

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
    let schemas = generator.take_definitions(true);

    let error_response = |description: &str| json!({ "description": description, "content": { "application/json": { "schema": error } } });
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
                    "requestBody": {
                        "required": true,
                        "content": { "application/json": { "schema": enrol_request } }
                    },
                    "responses": {
                        "200": {
                            "description": "Enrolled: a new device id, its token and whose phone it is",
                            "content": { "application/json": { "schema": enrol_response } }
                        },
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
                    "requestBody": {
                        "required": true,
                        "content": { "application/json": { "schema": sync_request } }
                    },
                    "responses": {
                        "200": {
                            "description": "Every event stored or already stored",
                            "content": { "application/json": { "schema": sync_response } }
                        },
                        "400": error_response("Malformed JSON, unknown or missing fields, or an unsupported protocol version"),
                        "401": error_response("No device token, one the office does not know (unknown_device), one past its expiry (credential_expired), or one replaced by a newer token (credential_replaced)"),
                        "403": error_response("This phone was revoked (device_revoked): it deletes what it holds"),
                        "409": error_response("An event id or sequence number is already stored with different content; nothing stored"),
                        "413": error_response("The body or the batch is too large"),
                        "415": error_response("The body is not application/json"),
                        "422": error_response("An event is out of range or not for this device's visits; nothing stored"),
                        "500": error_response("The office failed; nothing stored")
                    }
                }
            },
            "/api/v1/health": {
                "get": {
                    "operationId": "health",
                    "summary": "Whether the office is up, and its clock",
                    "responses": {
                        "200": {
                            "description": "The office is up",
                            "content": { "application/json": { "schema": health } }
                        }
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
