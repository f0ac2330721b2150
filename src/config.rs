//! Where the app keeps its data, and what a launcher may fill in on the set-up screen.
//!
//! The data folder comes from `DOORSTEP_DATA_DIR`, or else the platform's app-data folder. Everything else
//! the phone needs (the office's address, its device id and token) it gets by being set up with a one-time
//! code (`enrolment`) and keeps sealed in that folder. `DOORSTEP_ENROL` may hold a `doorstep://enrol` link
//! (what the admin's QR code carries; the demo passes the one its office issued) to fill in the set-up
//! screen: the person still chooses their PINs and presses the button.

use std::path::PathBuf;

use doorstep_core::protocol::EnrolmentLink;

use crate::platform::{Platform, PlatformError};
pub use crate::vault::DATABASE_FILE;

/// The environment variable that overrides the data folder (tests, demos, a second phone on one machine).
pub const DATA_DIR_ENV: &str = "DOORSTEP_DATA_DIR";
/// The environment variable that may hold a `doorstep://enrol` link for the set-up screen.
pub const ENROL_ENV: &str = "DOORSTEP_ENROL";

/// Everything the app reads before it opens its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppConfig {
    pub data_dir: PathBuf,
    /// What to fill the set-up screen with, if the phone is not set up yet.
    pub enrol_link: Option<EnrolmentLink>,
}

/// Why the app could not be configured. Each message says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no data folder: {0}; set {DATA_DIR_ENV}")]
    NoDataDir(#[from] PlatformError),
    #[error("{ENROL_ENV} is not a doorstep://enrol link: {0:?}")]
    BadLink(String),
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
        let data_dir = match env(DATA_DIR_ENV) {
            Some(dir) => PathBuf::from(dir),
            None => platform.app_data_dir()?,
        };
        let enrol_link = env(ENROL_ENV)
            .map(|text| {
                let text = text.to_string_lossy().into_owned();
                EnrolmentLink::parse(&text).ok_or(ConfigError::BadLink(text))
            })
            .transpose()?;
        Ok(Self {
            data_dir,
            enrol_link,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::platform::RecordingPlatform;

    fn fixed_platform() -> RecordingPlatform {
        RecordingPlatform::new("/platform/data")
    }

    #[test]
    fn the_data_dir_comes_from_the_environment_before_the_platform() {
        let with_override = |name: &str| (name == DATA_DIR_ENV).then(|| "/override".into());
        let config = AppConfig::load(with_override, &fixed_platform()).unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/override"));
        let config = AppConfig::load(|_| None, &fixed_platform()).unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/platform/data"));
        assert_eq!(config.enrol_link, None);
    }

    #[test]
    fn a_launcher_may_fill_in_the_set_up_screen_with_an_enrolment_link() {
        let link = EnrolmentLink {
            office_url: "http://127.0.0.1:8750".into(),
            code: "7KQ4M2XD9RTB".into(),
        };
        let uri = link.to_uri();
        let env = |name: &str| (name == ENROL_ENV).then(|| uri.clone().into());
        let config = AppConfig::load(env, &fixed_platform()).unwrap();
        assert_eq!(config.enrol_link, Some(link));
        let bad = |name: &str| (name == ENROL_ENV).then(|| "7KQ4M2XD9RTB".into());
        let error = AppConfig::load(bad, &fixed_platform()).unwrap_err();
        assert!(error.to_string().contains(ENROL_ENV), "{error}");
    }
}
