//! The workstation build: records every request, logs it with `tracing`, and opens `tel:`/`sms:` links with
//! `xdg-open` only when asked to. Its data key is kept by the desktop's secret service (GNOME Keyring,
//! KWallet: the freedesktop Secret Service over D-Bus, on Linux) or, when none is running (as in tests and
//! CI), in a key file beside the data, readable only by its owner and with a warning at its top
//! ([`super::key_file`]).
//!
//! A workstation has no dialler, no vibration motor and nobody's pocket; what matters here is that the app
//! asked for the right thing, so every call goes to a [`CallLog`] the demo and the tests can read. Opening
//! links is off by default because on a developer's machine `xdg-open tel:` may start a real softphone.

use std::path::{Path, PathBuf};

use doorstep_core::ids::VisitId;

use super::{
    key_file, CallLog, Notice, Pattern, PhoneNumber, Platform, PlatformCall, PlatformError,
    Urgency, VisitTimerLease,
};
use crate::vault::DataKey;

/// Set to `1` to let the desktop build hand `tel:` and `sms:` links to `xdg-open` (Linux only).
pub const OPEN_LINKS_ENV: &str = "DOORSTEP_OPEN_LINKS";

/// A workstation (Linux, macOS, Windows).
#[derive(Debug, Clone, Default)]
pub struct DesktopPlatform {
    log: CallLog,
    open_links: bool,
    /// Keep the data key in the secret service when one is running (the app); `false` keeps it in the key
    /// file only (tests, which must not touch a developer's keyring).
    secret_service: bool,
}

impl DesktopPlatform {
    /// Records only; never starts another program; keeps data keys in key files.
    pub fn new() -> Self {
        Self::default()
    }

    /// The app's platform: opens links with `xdg-open` if [`OPEN_LINKS_ENV`] is `1`, and keeps the data key
    /// in the secret service if one is running.
    pub fn from_env() -> Self {
        Self {
            log: CallLog::default(),
            open_links: std::env::var(OPEN_LINKS_ENV).is_ok_and(|v| v == "1"),
            secret_service: true,
        }
    }

    /// The log of every request made so far; clones share it.
    pub fn log(&self) -> CallLog {
        self.log.clone()
    }

    fn open_link(&self, uri: &str) -> Result<(), PlatformError> {
        if !self.open_links {
            tracing::debug!("not opening the link: set {OPEN_LINKS_ENV}=1 to hand it to xdg-open");
            return Ok(());
        }
        open_with_xdg(uri)
    }
}

#[cfg(target_os = "linux")]
fn open_with_xdg(uri: &str) -> Result<(), PlatformError> {
    let mut child = std::process::Command::new("xdg-open")
        .arg(uri)
        .stdin(std::process::Stdio::null())
        .spawn()
        .map_err(|error| PlatformError::LinkNotOpened(format!("xdg-open: {error}")))?;
    // Reap it off the UI thread: xdg-open returns once the handler has started, which can take a while.
    std::thread::spawn(move || {
        if let Ok(status) = child.wait() {
            if !status.success() {
                tracing::warn!(%status, "xdg-open could not open the link");
            }
        }
    });
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn open_with_xdg(_uri: &str) -> Result<(), PlatformError> {
    Err(PlatformError::Unsupported("opening links outside Linux"))
}

impl Platform for DesktopPlatform {
    fn app_data_dir(&self) -> Result<PathBuf, PlatformError> {
        dirs::data_dir()
            .map(|dir| dir.join("doorstep"))
            .ok_or(PlatformError::NoDataDir)
    }

    fn notify(&self, notice: Notice) -> Result<(), PlatformError> {
        tracing::info!(title = notice.title(), body = notice.body(), "notification");
        self.log.record(PlatformCall::Notified(notice));
        Ok(())
    }

    fn vibrate(&self, pattern: Pattern) -> Result<(), PlatformError> {
        tracing::debug!(?pattern, "vibrate (nothing to do on a workstation)");
        self.log.record(PlatformCall::Vibrated(pattern));
        Ok(())
    }

    fn play_alert_sound(&self, urgency: Urgency) -> Result<(), PlatformError> {
        tracing::debug!(?urgency, "alert sound (nothing to play on a workstation)");
        self.log.record(PlatformCall::PlayedAlertSound(urgency));
        Ok(())
    }

    fn open_dialler(&self, number: &PhoneNumber) -> Result<(), PlatformError> {
        let uri = number.tel_uri();
        tracing::info!("opening the dialler");
        self.log
            .record(PlatformCall::OpenedDialler { uri: uri.clone() });
        self.open_link(&uri)
    }

    fn open_sms(&self, number: &PhoneNumber, body: &str) -> Result<(), PlatformError> {
        let uri = number.sms_uri(body);
        // The body may be the school's code phrase: it stays out of the log file.
        tracing::info!("opening the message composer");
        self.log
            .record(PlatformCall::OpenedSms { uri: uri.clone() });
        self.open_link(&uri)
    }

    fn keep_alive(&self, lease: &VisitTimerLease) -> Result<(), PlatformError> {
        tracing::debug!(visit = %lease.visit, "keep alive (a workstation does not suspend the app)");
        self.log.record(PlatformCall::KeptAlive(lease.clone()));
        Ok(())
    }

    fn release_keep_alive(&self, visit: &VisitId) -> Result<(), PlatformError> {
        tracing::debug!(%visit, "keep alive released");
        self.log.record(PlatformCall::Released(visit.clone()));
        Ok(())
    }

    /// The key file first (a folder set up without a secret service), then the secret service.
    fn load_data_key(&self, data_dir: &Path) -> Result<Option<DataKey>, PlatformError> {
        if let Some(key) = key_file::load(data_dir)? {
            return Ok(Some(key));
        }
        if self.secret_service {
            return secret_service::load(data_dir);
        }
        Ok(None)
    }

    /// In the secret service if one answers; otherwise in the key file, with a warning in the log and at
    /// the top of the file.
    fn create_data_key(&self, data_dir: &Path) -> Result<DataKey, PlatformError> {
        let key = DataKey::generate();
        if self.secret_service {
            match secret_service::store(data_dir, &key) {
                Ok(()) => return Ok(key),
                Err(error) => tracing::warn!(%error, "no secret service to keep the data key in"),
            }
        }
        key_file::store(data_dir, &key)?;
        Ok(key)
    }

    fn delete_data_key(&self, data_dir: &Path) -> Result<(), PlatformError> {
        key_file::delete(data_dir)?;
        if self.secret_service {
            if let Err(error) = secret_service::delete(data_dir) {
                // No secret service: it holds nothing to delete.
                tracing::debug!(%error, "no data key deleted from the secret service");
            }
        }
        Ok(())
    }
}

/// The freedesktop Secret Service (GNOME Keyring, KWallet) over D-Bus, through keyring-core's pure-Rust
/// store: one secret per data folder, named by the folder. Not verified here: no secret service runs in
/// this project's tests or CI, which use the key file (docs/security.md).
#[cfg(target_os = "linux")]
mod secret_service {
    use std::path::Path;
    use std::sync::Arc;

    use keyring_core::{CredentialStore, Entry, Error};

    use super::{DataKey, PlatformError};

    const SERVICE: &str = "Doorstep data key";

    fn entry(data_dir: &Path) -> Result<Entry, PlatformError> {
        let store: Arc<CredentialStore> = zbus_secret_service_keyring_store::Store::new()
            .map_err(|error| PlatformError::KeyStore(error.to_string()))?;
        Entry::new_in_store(&store, SERVICE, &data_dir.display().to_string())
            .map_err(|error| PlatformError::KeyStore(error.to_string()))
    }

    pub(super) fn load(data_dir: &Path) -> Result<Option<DataKey>, PlatformError> {
        let Ok(entry) = entry(data_dir) else {
            // No secret service: it cannot be holding this folder's key.
            return Ok(None);
        };
        match entry.get_secret() {
            Ok(secret) => DataKey::from_bytes(&zeroize::Zeroizing::new(secret)).map(Some),
            Err(Error::NoEntry) => Ok(None),
            Err(error) => Err(PlatformError::KeyStore(error.to_string())),
        }
    }

    pub(super) fn store(data_dir: &Path, key: &DataKey) -> Result<(), PlatformError> {
        entry(data_dir)?
            .set_secret(key.as_bytes())
            .map_err(|error| PlatformError::KeyStore(error.to_string()))
    }

    pub(super) fn delete(data_dir: &Path) -> Result<(), PlatformError> {
        match entry(data_dir)?.delete_credential() {
            Ok(()) | Err(Error::NoEntry) => Ok(()),
            Err(error) => Err(PlatformError::KeyStore(error.to_string())),
        }
    }
}

/// Other workstations keep the key in the key file only.
#[cfg(not(target_os = "linux"))]
mod secret_service {
    use std::path::Path;

    use super::{DataKey, PlatformError};

    pub(super) fn load(_: &Path) -> Result<Option<DataKey>, PlatformError> {
        Ok(None)
    }

    pub(super) fn store(_: &Path, _: &DataKey) -> Result<(), PlatformError> {
        Err(PlatformError::Unsupported("a secret service outside Linux"))
    }

    pub(super) fn delete(_: &Path) -> Result<(), PlatformError> {
        Ok(())
    }
}
