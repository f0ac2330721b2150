//! The app's configuration: which office to talk to, as which device, and where to keep the database.
//!
//! The enrolment file is JSON written by the office, exactly
//! `{"office_url": "...", "device_id": "...", "device_token": "..."}`. Its path is in `DOORSTEP_PHONE_CONFIG`;
//! without that variable (a phone has no environment to set) it is `enrolment.json` in the data folder. The
//! data folder comes from `DOORSTEP_DATA_DIR`, or else the platform's app-data folder.

use std::path::{Path, PathBuf};

use doorstep_core::ids::{DeviceId, StaffId};
use serde::Deserialize;

use crate::platform::{Platform, PlatformError};

/// The environment variable naming the enrolment file.
pub const CONFIG_ENV: &str = "DOORSTEP_PHONE_CONFIG";
/// The environment variable that overrides the data folder (tests, demos, a second phone on one machine).
pub const DATA_DIR_ENV: &str = "DOORSTEP_DATA_DIR";
/// The enrolment file's name inside the data folder, used when `DOORSTEP_PHONE_CONFIG` is not set.
pub const ENROLMENT_FILE: &str = "enrolment.json";
/// The database's file name inside the data folder.
pub const DATABASE_FILE: &str = "doorstep.sqlite3";

/// Everything the app needs to start.
#[derive(Clone, PartialEq, Eq)]
pub struct AppConfig {
    /// The office's base URL, without a trailing slash, e.g. `https://office.example.org`.
    pub office_url: String,
    pub device_id: DeviceId,
    /// The secret the office gave this device; sent as a bearer token, never logged.
    pub device_token: String,
    /// Who carries this phone. Not in the enrolment file: the office says so in its holdings.
    pub staff: Option<StaffId>,
    pub data_dir: PathBuf,
}

// The token is a secret: keep it out of logs and panic messages.
impl std::fmt::Debug for AppConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppConfig")
            .field("office_url", &self.office_url)
            .field("device_id", &self.device_id)
            .field("device_token", &"<hidden>")
            .field("staff", &self.staff)
            .field("data_dir", &self.data_dir)
            .finish()
    }
}

/// Why the app could not be configured. Each message says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{CONFIG_ENV} is not set and there is no {}: point {CONFIG_ENV} at the enrolment file the office wrote for this phone", .looked_for.display())]
    NotSet { looked_for: PathBuf },
    #[error("could not read the enrolment file {path}: {error}")]
    Unreadable {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("the enrolment file is not valid: {0} (expected {{\"office_url\": ..., \"device_id\": ..., \"device_token\": ...}})")]
    BadJson(#[from] serde_json::Error),
    #[error("office_url must start with http:// or https://; got {0:?}")]
    BadOfficeUrl(String),
    #[error("device_id is not valid: {0}")]
    BadDeviceId(#[from] doorstep_core::ids::IdError),
    #[error("device_token is empty")]
    EmptyToken,
    #[error("no data folder: {0}; set {DATA_DIR_ENV}")]
    NoDataDir(#[from] PlatformError),
}

/// The enrolment file as written by the office.
#[derive(Deserialize)]
struct EnrolmentFile {
    office_url: String,
    device_id: String,
    device_token: String,
}

impl AppConfig {
    /// Reads the configuration from the process environment.
    pub fn from_env(platform: &dyn Platform) -> Result<Self, ConfigError> {
        Self::load(
            |name| std::env::var_os(name).filter(|v| !v.is_empty()),
            platform,
        )
    }

    /// Reads the configuration using `env` to look up variables, so tests need not touch the process's.
    pub fn load(
        env: impl Fn(&str) -> Option<std::ffi::OsString>,
        platform: &dyn Platform,
    ) -> Result<Self, ConfigError> {
        let data_dir = || match env(DATA_DIR_ENV) {
            Some(dir) => Ok(PathBuf::from(dir)),
            None => platform.app_data_dir(),
        };
        let path = match env(CONFIG_ENV) {
            Some(path) => PathBuf::from(path),
            None => {
                let in_data_dir = data_dir()?.join(ENROLMENT_FILE);
                if !in_data_dir.exists() {
                    return Err(ConfigError::NotSet {
                        looked_for: in_data_dir,
                    });
                }
                in_data_dir
            }
        };
        let text = read(&path)?;
        Self::from_json(&text, data_dir()?)
    }

    /// Parses an enrolment file's text.
    pub fn from_json(text: &str, data_dir: PathBuf) -> Result<Self, ConfigError> {
        let file: EnrolmentFile = serde_json::from_str(text)?;
        let office_url = file.office_url.trim().trim_end_matches('/').to_owned();
        let has_host = office_url
            .split_once("://")
            .is_some_and(|(scheme, rest)| matches!(scheme, "http" | "https") && !rest.is_empty());
        if !has_host {
            return Err(ConfigError::BadOfficeUrl(file.office_url));
        }
        let device_id = DeviceId::parse(file.device_id.trim())?;
        let device_token = file.device_token.trim().to_owned();
        if device_token.is_empty() {
            return Err(ConfigError::EmptyToken);
        }
        Ok(Self {
            office_url,
            device_id,
            device_token,
            staff: None,
            data_dir,
        })
    }

    /// The key this phone signs alerts sent by text with, derived from its credential. The one call the
    /// app makes for it, so it follows the credential when enrolment changes.
    pub fn sms_key(&self) -> doorstep_core::sms::SmsKey {
        doorstep_core::sms::SmsKey::from_device_token(&self.device_token)
    }

    /// Where the event log lives.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join(DATABASE_FILE)
    }
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|error| ConfigError::Unreadable {
        path: path.to_owned(),
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::platform::RecordingPlatform;

    fn fixed_platform() -> RecordingPlatform {
        RecordingPlatform::new("/platform/data")
    }

    const GOOD: &str = r#"{"office_url": "http://127.0.0.1:8080/", "device_id": "phone-1", "device_token": "s3cret"}"#;

    #[test]
    fn a_good_file_parses_and_loses_the_trailing_slash() {
        let config = AppConfig::from_json(GOOD, PathBuf::from("/d")).unwrap();
        assert_eq!(config.office_url, "http://127.0.0.1:8080");
        assert_eq!(config.device_id.as_str(), "phone-1");
        assert_eq!(config.device_token, "s3cret");
        assert_eq!(config.staff, None);
        assert_eq!(config.database_path(), PathBuf::from("/d/doorstep.sqlite3"));
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let cases = [
            ("not json", "not valid"),
            (r#"{"office_url": "x"}"#, "not valid"),
            (
                r#"{"office_url": "ftp://x", "device_id": "p", "device_token": "t"}"#,
                "office_url",
            ),
            (
                r#"{"office_url": "https://", "device_id": "p", "device_token": "t"}"#,
                "office_url",
            ),
            (
                r#"{"office_url": "https://x", "device_id": "a/b", "device_token": "t"}"#,
                "device_id",
            ),
            (
                r#"{"office_url": "https://x", "device_id": "p", "device_token": " "}"#,
                "device_token",
            ),
        ];
        for (text, mentions) in cases {
            let error = AppConfig::from_json(text, PathBuf::new())
                .unwrap_err()
                .to_string();
            assert!(error.contains(mentions), "{text}: {error}");
        }
    }

    #[test]
    fn the_data_dir_comes_from_the_environment_before_the_platform() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("phone.json");
        std::fs::write(&file, GOOD).unwrap();
        let with_override = |name: &str| match name {
            CONFIG_ENV => Some(file.clone().into_os_string()),
            DATA_DIR_ENV => Some("/override".into()),
            _ => None,
        };
        let config = AppConfig::load(with_override, &fixed_platform()).unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/override"));

        let without = |name: &str| (name == CONFIG_ENV).then(|| file.clone().into_os_string());
        let config = AppConfig::load(without, &fixed_platform()).unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/platform/data"));
    }

    #[test]
    fn without_the_variable_the_enrolment_file_is_looked_for_in_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = |name: &str| (name == DATA_DIR_ENV).then(|| dir.path().into());
        let error = AppConfig::load(data_dir, &fixed_platform()).unwrap_err();
        let message = error.to_string();
        assert!(message.contains(CONFIG_ENV), "{message}");
        assert!(message.contains(ENROLMENT_FILE), "{message}");

        std::fs::write(dir.path().join(ENROLMENT_FILE), GOOD).unwrap();
        let config = AppConfig::load(data_dir, &fixed_platform()).unwrap();
        assert_eq!(config.device_id.as_str(), "phone-1");
        assert_eq!(config.data_dir, dir.path());
    }

    #[test]
    fn a_missing_variable_or_file_is_a_clear_error() {
        let error = AppConfig::load(|_| None, &fixed_platform()).unwrap_err();
        assert!(error.to_string().contains(CONFIG_ENV));
        let missing = |name: &str| (name == CONFIG_ENV).then(|| "/no/such/file.json".into());
        let error = AppConfig::load(missing, &fixed_platform()).unwrap_err();
        assert!(error.to_string().contains("/no/such/file.json"), "{error}");
    }
}
