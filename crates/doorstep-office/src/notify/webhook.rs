//! The signed webhook: one POST of the stored JSON body with `X-Doorstep-Signature: sha256=<hex HMAC>` and
//! `X-Doorstep-Delivery: <id>`. Only a 2xx within the time limit counts as delivered; a redirect does not.

use std::error::Error as _;

use reqwest::header::CONTENT_TYPE;
use reqwest::StatusCode;
use uuid::Uuid;

use super::message::sign_webhook_body;
use super::WEBHOOK_TIMEOUT;

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("the receiver answered {0}")]
    Status(StatusCode),
    #[error("no answer within {} s", WEBHOOK_TIMEOUT.as_secs())]
    Timeout,
    #[error("could not reach the receiver: {0}")]
    Unreachable(String),
}

pub(crate) async fn post(
    http: &reqwest::Client,
    url: &str,
    secret: &str,
    delivery: &Uuid,
    body: &str,
) -> Result<StatusCode, WebhookError> {
    let signature = sign_webhook_body(secret, body.as_bytes());
    let response = http
        .post(url)
        .header(CONTENT_TYPE, "application/json")
        .header("X-Doorstep-Signature", format!("sha256={signature}"))
        .header("X-Doorstep-Delivery", delivery.to_string())
        .body(body.to_owned())
        .send()
        .await
        .map_err(describe)?;
    let status = response.status();
    if status.is_success() {
        Ok(status)
    } else {
        Err(WebhookError::Status(status))
    }
}

/// The error and its causes, without the URL (it may carry a gateway's credentials).
fn describe(error: reqwest::Error) -> WebhookError {
    if error.is_timeout() {
        return WebhookError::Timeout;
    }
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    WebhookError::Unreachable(text)
}
