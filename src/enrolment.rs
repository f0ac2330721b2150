//! Setting a phone up: the office's address (HTTPS only, except on this machine for the demo and tests),
//! the one-time code an admin issued, the two PINs, and the credential the office gives back, kept sealed.
//!
//! [`set_up`] checks the PINs first (a code is never used up on PINs that would be refused), redeems the
//! code at `POST /api/v1/enrol`, then starts the data folder afresh ([`Vault::create`]: whatever an earlier
//! enrolment left is deleted, a new data key made), and writes the PINs and, last, the credential: a phone
//! with a credential file is set up. [`Credential`] is renewed in use (`AppStore::adopt_credential`).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Datelike, Utc};
use doorstep_core::ids::{DeviceId, StaffId};
use doorstep_core::protocol::{
    normalise_enrolment_code, refusal, DeviceCredential, EnrolRequest, EnrolResponse,
    EnrolmentLink, ErrorBody, PROTOCOL_VERSION,
};
use serde::{Deserialize, Serialize};

use crate::pins::{check_new_pins, PinError, PinHashes};
use crate::platform::Platform;
use crate::store::AppStore;
use crate::sync::{Exchange, SyncClient};
use crate::vault::{Vault, VaultError, WipeReason, CREDENTIAL_FILE, PINS_FILE};

/// How long enrolling may take before the phone says the office did not answer.
const ENROL_TIMEOUT: Duration = Duration::from_secs(20);

/// An office address this phone will talk to: `https://`, or `http://` only to this machine (the demo and
/// tests), without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OfficeUrl(String);

/// Why an office address was refused. The words are shown at set-up and on the status line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfficeUrlError {
    #[error(
        "the office's address must start with https:// (for example https://office.school.example)"
    )]
    NoScheme,
    #[error("this phone talks to the office only over HTTPS; {0} is not HTTPS (plain http:// is allowed only to this machine, for the demo)")]
    NotHttps(String),
    #[error("the office's address {0:?} has no host name")]
    NoHost(String),
}

impl OfficeUrl {
    pub fn parse(text: &str) -> Result<Self, OfficeUrlError> {
        let (scheme, rest) = text
            .trim()
            .split_once("://")
            .ok_or(OfficeUrlError::NoScheme)?;
        let rest = rest.trim_end_matches('/');
        let url = format!("{scheme}://{rest}");
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let hostname = if let Some(bracketed) = host.strip_prefix('[') {
            bracketed.split(']').next().unwrap_or_default()
        } else {
            host.rsplit_once(':').map_or(host, |(name, _port)| name)
        };
        if hostname.is_empty() || host.contains('@') || url.chars().any(char::is_whitespace) {
            return Err(OfficeUrlError::NoHost(text.to_owned()));
        }
        match scheme.to_ascii_lowercase().as_str() {
            "https" => Ok(Self(url)),
            "http" if is_loopback(hostname) => Ok(Self(url)),
            "http" => Err(OfficeUrlError::NotHttps(url)),
            _ => Err(OfficeUrlError::NoScheme),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// This machine: `localhost`, `127.x.x.x` or `::1`.
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

doorstep_core::parsed_text!(OfficeUrl, OfficeUrlError, |url| url.as_str());

/// What this phone needs to talk to its office, as the sealed credential file keeps it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credential {
    /// As typed at set-up. Checked again ([`OfficeUrl::parse`]) before anything is sent.
    pub office_url: String,
    pub device_id: DeviceId,
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub staff: StaffId,
    pub staff_name: String,
    pub school_name: String,
}

// The token is a secret.
impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("office_url", &self.office_url)
            .field("device_id", &self.device_id)
            .field("token", &"<hidden>")
            .field("expires_at", &self.expires_at)
            .field("staff", &self.staff)
            .finish_non_exhaustive()
    }
}

impl Credential {
    /// The credential in `vault`, if the phone is set up.
    pub fn load(vault: &Vault) -> Result<Option<Self>, VaultError> {
        let Some(bytes) = vault.read_sealed(CREDENTIAL_FILE)? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|error| VaultError::Sealed {
                name: CREDENTIAL_FILE,
                error: doorstep_core::event_log::SealError(format!(
                    "the credential could not be read: {error}"
                )),
            })
    }

    /// Writes the credential, sealed, replacing the old one whole.
    pub fn save(&self, vault: &Vault) -> Result<(), VaultError> {
        let json = zeroize::Zeroizing::new(serde_json::to_vec(self).map_err(|error| {
            VaultError::Sealed {
                name: CREDENTIAL_FILE,
                error: doorstep_core::event_log::SealError(error.to_string()),
            }
        })?);
        vault.write_sealed(CREDENTIAL_FILE, &json)
    }

    /// The same credential with a renewed token.
    pub fn renewed(&self, renewal: &DeviceCredential) -> Self {
        Self {
            token: renewal.token.clone(),
            expires_at: renewal.expires_at,
            ..self.clone()
        }
    }
}

/// What was typed (or pasted, or scanned) into the set-up screen's code field: a code, or the
/// `doorstep://enrol` link that carries the office's address as well.
pub fn read_code_field(text: &str) -> (Option<String>, Option<String>) {
    match EnrolmentLink::parse(text) {
        Some(link) => (Some(link.office_url), normalise_enrolment_code(&link.code)),
        None => (None, normalise_enrolment_code(text)),
    }
}

/// Why the phone was not set up. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum EnrolError {
    #[error("{0}.")]
    Url(#[from] OfficeUrlError),
    #[error("That is not an enrolment code: it is 12 letters and digits, like 7KQ4-M2XD-9RTB.")]
    BadCode,
    #[error("Not set up: {0}.")]
    Pins(#[from] PinError),
    #[error("The office did not answer ({0}). Check the address and the phone's connection, then try again.")]
    Unreachable(String),
    #[error("The office refused: {message}")]
    Refused { code: String, message: String },
    #[error(
        "This phone could not keep its data: {0}. The code is used up: ask an admin for a new one."
    )]
    Storage(String),
}

impl EnrolError {
    /// Whether the code is still good, so the person may simply try again.
    pub fn code_still_usable(&self) -> bool {
        !matches!(self, EnrolError::Storage(_))
            && !matches!(self, EnrolError::Refused { code, .. } if code == refusal::CODE_USED)
    }
}

/// Everything the set-up screen collects.
#[derive(Debug, Clone)]
pub struct SetUp {
    pub office_url: String,
    pub code: String,
    pub pin: String,
    pub second_pin: String,
}

/// A phone just set up.
#[derive(Debug)]
pub struct Enrolled {
    pub vault: Arc<Vault>,
    pub credential: Credential,
}

/// Sets this phone up with the office: see the module's words for the order of things.
pub async fn set_up(
    data_dir: &std::path::Path,
    platform: Arc<dyn Platform>,
    form: SetUp,
    now: DateTime<Utc>,
) -> Result<Enrolled, EnrolError> {
    let (linked_office, code) = read_code_field(&form.code);
    let office = OfficeUrl::parse(linked_office.as_deref().unwrap_or(&form.office_url))?;
    let code = code.ok_or(EnrolError::BadCode)?;
    check_new_pins(&form.pin, &form.second_pin, now.year())?;
    let (pin, second) = (form.pin.clone(), form.second_pin.clone());
    let hashes = tokio::task::spawn_blocking(move || PinHashes::new(&pin, &second))
        .await
        .map_err(|error| EnrolError::Storage(error.to_string()))??;
    let enrolled = redeem(&office, &code).await?;
    let credential = Credential {
        office_url: office.to_string(),
        device_id: enrolled.device_id,
        token: enrolled.credential.token,
        expires_at: enrolled.credential.expires_at,
        staff: enrolled.staff,
        staff_name: enrolled.staff_name,
        school_name: enrolled.school_name,
    };
    let dir = data_dir.to_owned();
    let saved = credential.clone();
    let vault = tokio::task::spawn_blocking(move || -> Result<Vault, VaultError> {
        let vault = Vault::create(&dir, platform)?;
        vault.write_sealed(PINS_FILE, &hashes.to_json().map_err(to_sealed)?)?;
        // Last: a phone with a credential file is set up.
        saved.save(&vault)?;
        Ok(vault)
    })
    .await
    .map_err(|error| EnrolError::Storage(error.to_string()))?
    .map_err(|error| EnrolError::Storage(error.to_string()))?;
    tracing::info!(device = %credential.device_id, "this phone is set up");
    Ok(Enrolled {
        vault: Arc::new(vault),
        credential,
    })
}

fn to_sealed(error: PinError) -> VaultError {
    VaultError::Sealed {
        name: PINS_FILE,
        error: doorstep_core::event_log::SealError(error.to_string()),
    }
}

/// A message from the office as a sentence: a capital first letter and a full stop.
fn sentence(text: &str) -> String {
    let text = text.trim();
    let mut chars = text.chars();
    let mut out: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    };
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

/// `POST /api/v1/enrol` with `code`.
pub async fn redeem(office: &OfficeUrl, code: &str) -> Result<EnrolResponse, EnrolError> {
    let http = reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(ENROL_TIMEOUT)
        .https_only(office.as_str().starts_with("https://"))
        .build()
        .map_err(|error| EnrolError::Unreachable(error.to_string()))?;
    let response = http
        .post(format!("{office}/api/v1/enrol"))
        .json(&EnrolRequest {
            protocol: PROTOCOL_VERSION,
            code: code.to_owned(),
        })
        .send()
        .await
        .map_err(|error| {
            EnrolError::Unreachable(if error.is_timeout() {
                "it took too long".to_owned()
            } else if error.is_connect() {
                "could not connect".to_owned()
            } else {
                error.to_string()
            })
        })?;
    let status = response.status().as_u16();
    let body = response
        .bytes()
        .await
        .map_err(|error| EnrolError::Unreachable(error.to_string()))?;
    match status {
        200 => serde_json::from_slice::<EnrolResponse>(&body).map_err(|error| {
            EnrolError::Unreachable(format!("its answer could not be read: {error}"))
        }),
        400..=499 => match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(refused) => Err(EnrolError::Refused {
                code: refused.error,
                message: sentence(&refused.message),
            }),
            Err(_) => Err(EnrolError::Unreachable(format!(
                "it answered {status} without a reason; is this a Doorstep office?"
            ))),
        },
        _ => Err(EnrolError::Unreachable(format!("it answered {status}"))),
    }
}

/// What a sync answer means for the phone's credential, called by the sync transport after each answer:
/// a renewed token is kept (sealed on disk first, then used by `client`), and `device_revoked` makes the
/// phone delete everything it holds. Returns `true` when the phone was revoked.
pub(crate) fn after_sync_answer(
    client: &SyncClient,
    store: &AppStore,
    exchange: &Exchange,
    now: DateTime<Utc>,
) -> bool {
    match exchange {
        Exchange::Accepted(response) => {
            if let Some(renewal) = &response.renewed_credential {
                // Only a token that is on disk may be used: otherwise a crash could leave the phone holding
                // an old token the office has since replaced.
                match store.adopt_credential(renewal) {
                    Ok(()) => client.use_token(&renewal.token),
                    Err(error) => tracing::error!(%error, "could not keep the renewed credential"),
                }
            }
            false
        }
        Exchange::Refused { body, .. } if body.error == refusal::DEVICE_REVOKED => {
            if let Err(error) = store.forget_everything(WipeReason::Revoked, now) {
                tracing::error!(%error, "revoked, but could not delete everything");
            }
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_phone_talks_to_an_office_over_https_or_on_this_machine_only() {
        let accepted = [
            (
                "https://office.school.example",
                "https://office.school.example",
            ),
            (
                "https://office.school.example/",
                "https://office.school.example",
            ),
            (
                " https://office.school.example:8443/doorstep ",
                "https://office.school.example:8443/doorstep",
            ),
            ("HTTPS://Office.example", "HTTPS://Office.example"),
            ("http://127.0.0.1:8750", "http://127.0.0.1:8750"),
            ("http://127.8.9.10:1", "http://127.8.9.10:1"),
            ("http://localhost:8750", "http://localhost:8750"),
            ("http://[::1]:8750", "http://[::1]:8750"),
        ];
        for (typed, kept) in accepted {
            assert_eq!(
                OfficeUrl::parse(typed).map(String::from).as_deref(),
                Ok(kept),
                "{typed}"
            );
        }
        let refused = [
            ("http://office.school.example", "not HTTPS"),
            ("http://192.168.1.10:8750", "not HTTPS"),
            ("http://127.0.0.1.example.org", "not HTTPS"),
            ("http://localhost.example.org", "not HTTPS"),
            ("http://[::2]:80", "not HTTPS"),
            ("office.school.example", "must start with https://"),
            ("ftp://office.school.example", "must start with https://"),
            ("https://", "no host"),
            ("https://user@evil.example", "no host"),
            ("https://office .example", "no host"),
        ];
        for (typed, says) in refused {
            let error = OfficeUrl::parse(typed).unwrap_err().to_string();
            assert!(error.contains(says), "{typed}: {error}");
        }
    }

    #[test]
    fn the_code_field_takes_a_code_or_the_whole_link() {
        assert_eq!(
            read_code_field("7kq4 m2xd 9rtb"),
            (None, Some("7KQ4M2XD9RTB".to_owned()))
        );
        let link = EnrolmentLink {
            office_url: "https://office.example".into(),
            code: "7KQ4M2XD9RTB".into(),
        }
        .to_uri();
        assert_eq!(
            read_code_field(&link),
            (
                Some("https://office.example".to_owned()),
                Some("7KQ4M2XD9RTB".to_owned())
            )
        );
        assert_eq!(read_code_field("hello"), (None, None));
    }

    #[test]
    fn the_credential_keeps_its_token_out_of_debug_output() {
        let credential = Credential {
            office_url: "https://office.example".into(),
            device_id: "phone-1".parse().unwrap(),
            token: "s3cret-token".into(),
            expires_at: Utc::now(),
            staff: "sam".parse().unwrap(),
            staff_name: "Sam".into(),
            school_name: "School".into(),
        };
        assert!(!format!("{credential:?}").contains("s3cret"));
    }
}
