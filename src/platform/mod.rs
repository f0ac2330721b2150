//! What differs between phones and the desktop window, behind one small trait: [`Platform`].
//!
//! - [`notice`]: [`Notice`], [`Pattern`], [`Urgency`]: the fixed, discreet messages and buzzes the app may
//!   ask for. A notice cannot carry text, so no name, address or risk can reach a lock screen.
//! - [`PhoneNumber`] (from the core, parsed with the one rule the office's forms use too) builds the
//!   `tel:`/`sms:` links the dialler and the message composer open.
//! - [`lease`]: [`VisitTimerLease`] and [`LeaseSet`], keeping the visit timer alive in the background.
//! - [`recording`]: [`CallLog`] and [`RecordingPlatform`], what tests and the desktop read back.
//! - [`desktop`]: [`DesktopPlatform`], the workstation build (records, logs, optionally `xdg-open`; the data
//!   key in the secret service or, without one, a key file).
//! - `key_file`: the desktop's fallback key file (and the tests'), readable only by its owner.
//! - `android`, `ios`: the phone builds. Android calls the Kotlin in `platform/android/` over JNI; iOS calls
//!   the Swift in `platform/ios/` through the Objective-C runtime (see `docs/mobile.md`).
//!
//! Screens reach the platform through [`SharedPlatform`], provided as Dioxus context by `main.rs`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use doorstep_core::ids::VisitId;

use crate::vault::DataKey;

#[cfg(target_os = "android")]
mod android;
mod desktop;
#[cfg(target_os = "ios")]
mod ios;
pub mod key_file;
pub mod lease;
pub mod notice;
pub mod recording;

#[cfg(target_os = "android")]
pub use android::AndroidPlatform;
pub use desktop::{DesktopPlatform, OPEN_LINKS_ENV};
pub use doorstep_core::contact::{PhoneNumber, PhoneNumberError};
#[cfg(target_os = "ios")]
pub use ios::IosPlatform;
pub use lease::{LeaseChange, LeaseSet, VisitTimerLease};
pub use notice::{Notice, Pattern, Urgency};
pub use recording::{CallLog, PlatformCall, RecordingPlatform};

/// Why the platform could not do what was asked. Every variant is something the caller can act on: show
/// the user a fallback (read the number out, tell them to check in by hand), or log and carry on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlatformError {
    #[error("this system has no folder for application data (is HOME set?)")]
    NoDataDir,
    #[error("could not work out this app's Android package name from /proc/self/cmdline: {0}")]
    NoPackageName(String),
    #[error("this build cannot do that yet: {0}")]
    Unsupported(&'static str),
    #[error("could not open the link: {0}")]
    LinkNotOpened(String),
    #[error("the key store: {0}")]
    KeyStore(String),
}

/// The services Doorstep asks of the system it runs on.
///
/// Every method returns quickly and never panics. On a phone, `Ok` means "handed to the system": the work
/// itself happens on the phone's UI thread, and a failure there is logged, not returned (the screen must
/// not wait on it). A method that cannot be done on this build says [`PlatformError::Unsupported`].
pub trait Platform: Send + Sync {
    /// The folder where the app keeps its database. It may not exist yet.
    ///
    /// Phone: the app's private storage (Android `/data/data/<package>/files`, iOS the sandbox's
    /// Application Support), never shared storage.
    fn app_data_dir(&self) -> Result<PathBuf, PlatformError>;

    /// Shows `notice` with its fixed wording, replacing an earlier notice of the same kind, as an ordinary
    /// reminder (never an alarm-style notification: a family may see it).
    ///
    /// Phone: a notification on the "Check-in reminders" channel (Android, category reminder) or a local
    /// notification (iOS), with exactly [`Notice::title`] and [`Notice::body`], visible on the lock screen
    /// because it reveals nothing; its own sound follows the phone's silent mode. Needs the notification
    /// permission; without it, nothing is shown and that is logged.
    fn notify(&self, notice: Notice) -> Result<(), PlatformError>;

    /// Buzzes with `pattern`'s fixed timings.
    ///
    /// Phone: `VibratorManager`/`Vibrator` waveform (Android), haptic taps (iOS); silent mode still buzzes.
    fn vibrate(&self, pattern: Pattern) -> Result<(), PlatformError>;

    /// Plays the phone's own notification sound ([`Urgency::Normal`]) or its loud sound that plays through
    /// silent mode ([`Urgency::Urgent`]; Android's alarm stream).
    ///
    /// Used only for a late check-in, and only when the staff member turned it on in the phone's settings;
    /// never for duress, which must stay silent.
    fn play_alert_sound(&self, urgency: Urgency) -> Result<(), PlatformError>;

    /// Opens the dialler with `number` filled in. The user presses call; the app never places a call.
    ///
    /// Phone: Android `ACTION_DIAL` with the `tel:` link (no permission needed); iOS opens the `tel:` link.
    fn open_dialler(&self, number: &PhoneNumber) -> Result<(), PlatformError>;

    /// Opens the message composer to `number` with `body` typed in. The user presses send.
    ///
    /// Phone: Android `ACTION_SENDTO` with the `sms:` link and `sms_body`; iOS opens the `sms:` link.
    fn open_sms(&self, number: &PhoneNumber, body: &str) -> Result<(), PlatformError>;

    /// Keeps the visit timer running while the app is in the background, until the lease is released.
    /// Calling it again for the same visit renews the lease (e.g. with a new check-in time).
    ///
    /// Phone: Android runs the foreground service `VisitTimerService` with the fixed
    /// [`Notice::VisitTimerRunning`] notification; iOS (once wired) asks for background time and schedules
    /// [`Notice::CheckInDue`] for the lease's next check-in. Desktop: records only.
    fn keep_alive(&self, lease: &VisitTimerLease) -> Result<(), PlatformError>;

    /// Ends `visit`'s lease; after the last one the foreground service stops. Releasing a visit that
    /// holds no lease does nothing.
    fn release_keep_alive(&self, visit: &VisitId) -> Result<(), PlatformError>;

    /// The key that seals the phone's data in `data_dir`, or `None` if the platform holds none for it.
    /// Called off the UI thread (it may wait for the platform).
    ///
    /// Phone: Android unwraps the key with an AES key that never leaves the Android Keystore (hardware-
    /// backed where the phone has it); iOS reads it from the Keychain (this device only, after first
    /// unlock). Desktop: the secret service (GNOME Keyring, KWallet), or the key file beside the data
    /// when there is none (see `key_file`).
    fn load_data_key(&self, data_dir: &Path) -> Result<Option<DataKey>, PlatformError>;

    /// Makes a new key for `data_dir` and keeps it, replacing any earlier one. Only when the phone is set
    /// up.
    fn create_data_key(&self, data_dir: &Path) -> Result<DataKey, PlatformError>;

    /// Forgets the key for `data_dir`, so what was sealed with it can never be read again. Forgetting a
    /// key that is not there is not an error.
    fn delete_data_key(&self, data_dir: &Path) -> Result<(), PlatformError>;
}

/// The platform as the screens hold it: shared, and usable from the sync loop's threads.
pub type SharedPlatform = Arc<dyn Platform>;

/// The platform this build runs on.
pub fn current() -> Box<dyn Platform> {
    #[cfg(target_os = "android")]
    let platform = AndroidPlatform::default();
    #[cfg(target_os = "ios")]
    let platform = IosPlatform::new();
    #[cfg(not(any(target_os = "android", target_os = "ios")))]
    let platform = DesktopPlatform::from_env();
    Box::new(platform)
}

/// The Android package name in the bytes of `/proc/self/cmdline`: the first NUL-terminated argument, without
/// a `:process` suffix. `None` unless it looks like a package name, so a surprise can never point the
/// database at an arbitrary path.
pub fn package_from_cmdline(cmdline: &[u8]) -> Option<String> {
    let first = cmdline.split(|&b| b == 0).next()?;
    let text = std::str::from_utf8(first).ok()?;
    let package = text.split(':').next()?.trim();
    let valid = !package.is_empty()
        && package.len() <= 255
        && package.contains('.')
        && !package.starts_with('.')
        && !package.contains("..")
        && package
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_');
    valid.then(|| package.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn desktop_data_dir_is_a_doorstep_folder_in_the_users_data_folder() {
        let dir = DesktopPlatform::new().app_data_dir();
        match dirs::data_dir() {
            Some(base) => assert_eq!(dir, Ok(base.join("doorstep"))),
            None => assert_eq!(dir, Err(PlatformError::NoDataDir)),
        }
    }

    #[test]
    fn the_current_platform_here_is_the_desktop() {
        assert_eq!(
            current().app_data_dir(),
            DesktopPlatform::new().app_data_dir()
        );
    }

    #[test]
    fn package_names_come_from_the_first_argument() {
        let cases: &[(&[u8], Option<&str>)] = &[
            (b"uk.org.doorstep.app\0", Some("uk.org.doorstep.app")),
            (b"uk.org.doorstep.app", Some("uk.org.doorstep.app")),
            (b"uk.org.doorstep.app:sync\0", Some("uk.org.doorstep.app")),
            (
                b"uk.org.doorstep.app\0--flag\0",
                Some("uk.org.doorstep.app"),
            ),
            (b"", None),
            (b"\0", None),
            (b"/system/bin/app_process\0", None),
            (b"../../etc\0", None),
            (b"noDots\0", None),
            (b"\xff\xfe\0", None),
        ];
        for (cmdline, expected) in cases {
            assert_eq!(
                package_from_cmdline(cmdline).as_deref(),
                *expected,
                "{:?}",
                String::from_utf8_lossy(cmdline)
            );
        }
    }
}
