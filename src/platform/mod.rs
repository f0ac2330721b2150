//! What differs between phones and the desktop window: for now only where the app keeps its files.
//!
//! Later issues add notifications, vibration and `tel:`/`sms:` links here, each as a method on [`Platform`]
//! with one implementation per target. Everything is plain Rust for now: no JNI, no Swift.

use std::path::PathBuf;

/// Why the platform could not say where the app's files live.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlatformError {
    #[error("this system has no folder for application data (is HOME set?)")]
    NoDataDir,
    #[error("could not work out this app's Android package name from /proc/self/cmdline: {0}")]
    NoPackageName(String),
}

/// The services Doorstep asks of the system it runs on.
pub trait Platform {
    /// The folder where the app keeps its database. It may not exist yet.
    fn app_data_dir(&self) -> Result<PathBuf, PlatformError>;
}

/// A workstation (Linux, macOS, Windows): the user's data folder, e.g. `~/.local/share/doorstep`.
#[derive(Debug, Clone, Copy, Default)]
pub struct DesktopPlatform;

impl Platform for DesktopPlatform {
    fn app_data_dir(&self) -> Result<PathBuf, PlatformError> {
        dirs::data_dir()
            .map(|dir| dir.join("doorstep"))
            .ok_or(PlatformError::NoDataDir)
    }
}

/// An Android phone: the app's private files folder, `/data/data/<package>/files`.
///
/// `dirs` knows nothing useful on Android and `Context.getFilesDir()` would need JNI, but the process's
/// command line is its package name, and the files folder's path follows from it.
#[cfg(target_os = "android")]
#[derive(Debug, Clone, Copy, Default)]
pub struct AndroidPlatform;

#[cfg(target_os = "android")]
impl Platform for AndroidPlatform {
    fn app_data_dir(&self) -> Result<PathBuf, PlatformError> {
        let cmdline = std::fs::read("/proc/self/cmdline")
            .map_err(|error| PlatformError::NoPackageName(error.to_string()))?;
        let package = package_from_cmdline(&cmdline).ok_or_else(|| {
            PlatformError::NoPackageName(String::from_utf8_lossy(&cmdline).into_owned())
        })?;
        Ok(PathBuf::from("/data/data").join(package).join("files"))
    }
}

/// An iPhone: `dirs` points inside the app's own sandbox, so no subfolder is needed.
#[cfg(target_os = "ios")]
#[derive(Debug, Clone, Copy, Default)]
pub struct IosPlatform;

#[cfg(target_os = "ios")]
impl Platform for IosPlatform {
    fn app_data_dir(&self) -> Result<PathBuf, PlatformError> {
        dirs::data_dir().ok_or(PlatformError::NoDataDir)
    }
}

/// The platform this build runs on.
pub fn current() -> Box<dyn Platform> {
    #[cfg(target_os = "android")]
    let platform = AndroidPlatform;
    #[cfg(target_os = "ios")]
    let platform = IosPlatform;
    #[cfg(not(any(target_os = "android", target_os = "ios")))]
    let platform = DesktopPlatform;
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
        let dir = DesktopPlatform.app_data_dir();
        match dirs::data_dir() {
            Some(base) => assert_eq!(dir, Ok(base.join("doorstep"))),
            None => assert_eq!(dir, Err(PlatformError::NoDataDir)),
        }
    }

    #[test]
    fn the_current_platform_here_is_the_desktop() {
        assert_eq!(current().app_data_dir(), DesktopPlatform.app_data_dir());
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
