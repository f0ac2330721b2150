//! The iOS build: only the data folder is wired; everything else says [`PlatformError::Unsupported`].
//!
//! Never compiled here (no iOS target or Xcode on the machines this was written on), so it is kept to
//! plain Rust that cannot go wrong in ways a type-check would catch. The Swift that should do the work is in
//! `platform/ios/DoorstepPlatform.swift`; calling it needs either Dioxus's `#[manganis::ffi] extern "Swift"`
//! or `objc2` message sends, and both need `unsafe`, which the workspace forbids until someone with a Mac
//! can build and try it (see `docs/mobile.md`).

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use doorstep_core::ids::VisitId;

use super::{
    LeaseSet, Notice, Pattern, PhoneNumber, Platform, PlatformError, Urgency, VisitTimerLease,
};

/// An iPhone.
#[derive(Debug, Default)]
pub struct IosPlatform {
    leases: Mutex<LeaseSet>,
}

impl IosPlatform {
    fn leases(&self) -> MutexGuard<'_, LeaseSet> {
        self.leases
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

const NOT_WIRED: PlatformError =
    PlatformError::Unsupported("the iOS Swift plugin is not wired yet");

impl Platform for IosPlatform {
    /// `dirs` points inside the app's own sandbox, so no subfolder is needed.
    fn app_data_dir(&self) -> Result<PathBuf, PlatformError> {
        dirs::data_dir().ok_or(PlatformError::NoDataDir)
    }

    fn notify(&self, notice: Notice) -> Result<(), PlatformError> {
        tracing::warn!(?notice, "notification not shown: {NOT_WIRED}");
        Err(NOT_WIRED)
    }

    fn vibrate(&self, _pattern: Pattern) -> Result<(), PlatformError> {
        Err(NOT_WIRED)
    }

    fn play_alert_sound(&self, _urgency: Urgency) -> Result<(), PlatformError> {
        Err(NOT_WIRED)
    }

    fn open_dialler(&self, _number: &PhoneNumber) -> Result<(), PlatformError> {
        Err(NOT_WIRED)
    }

    fn open_sms(&self, _number: &PhoneNumber, _body: &str) -> Result<(), PlatformError> {
        Err(NOT_WIRED)
    }

    fn keep_alive(&self, lease: &VisitTimerLease) -> Result<(), PlatformError> {
        // Kept so the Swift side can be handed the earliest check-in once it is wired.
        let _ = self.leases().hold(lease);
        Err(NOT_WIRED)
    }

    fn release_keep_alive(&self, visit: &VisitId) -> Result<(), PlatformError> {
        let _ = self.leases().release(visit);
        Ok(())
    }
}
