//! The workstation build: records every request, logs it with `tracing`, and opens `tel:`/`sms:` links with
//! `xdg-open` only when asked to.
//!
//! A workstation has no dialler, no vibration motor and nobody's pocket; what matters here is that the app
//! asked for the right thing, so every call goes to a [`CallLog`] the demo and the tests can read. Opening
//! links is off by default because on a developer's machine `xdg-open tel:` may start a real softphone.

use std::path::PathBuf;

use doorstep_core::ids::VisitId;

use super::{
    CallLog, Notice, Pattern, PhoneNumber, Platform, PlatformCall, PlatformError, Urgency,
    VisitTimerLease,
};

/// Set to `1` to let the desktop build hand `tel:` and `sms:` links to `xdg-open` (Linux only).
pub const OPEN_LINKS_ENV: &str = "DOORSTEP_OPEN_LINKS";

/// A workstation (Linux, macOS, Windows).
#[derive(Debug, Clone, Default)]
pub struct DesktopPlatform {
    log: CallLog,
    open_links: bool,
}

impl DesktopPlatform {
    /// Records only; never starts another program.
    pub fn new() -> Self {
        Self::default()
    }

    /// Opens links with `xdg-open` if [`OPEN_LINKS_ENV`] is `1`.
    pub fn from_env() -> Self {
        Self {
            log: CallLog::default(),
            open_links: std::env::var(OPEN_LINKS_ENV).is_ok_and(|v| v == "1"),
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
}
