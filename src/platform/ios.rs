//! The iOS build: calls the Swift `DoorstepPlatform` in `platform/ios/` through the Objective-C runtime.
//!
//! Type-checked for `aarch64-apple-ios` in CI, never built into an app or run (see `docs/mobile.md`). Each
//! call looks the Swift class up by name and checks it answers the selector before sending it, so an app
//! bundled without the Swift gets [`PlatformError::Unsupported`] instead of an Objective-C exception. The
//! Swift hops to the main queue itself, so these calls return at once and may come from any thread; each
//! send runs in its own autorelease pool, since the sync loop's threads have none.
//!
//! Sending an Objective-C message is `unsafe`: the compiler cannot see that the Swift method takes the
//! argument types we pass. This is the one file where the workspace's `unsafe_code = "deny"` is lifted;
//! every `unsafe` block is a single `msg_send!` whose types are written next to the Swift signature it
//! matches.
#![allow(unsafe_code)]

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use chrono::Utc;
use doorstep_core::ids::VisitId;
use objc2::rc::{autoreleasepool, Retained};
use objc2::runtime::{AnyClass, Sel};
use objc2::{msg_send, sel};
use objc2_foundation::NSString;

use super::{
    LeaseChange, LeaseSet, Notice, Pattern, PhoneNumber, Platform, PlatformError, Urgency,
    VisitTimerLease,
};
use crate::vault::DataKey;

/// The Swift class's Objective-C name, fixed by its `@objc(DoorstepPlatform)`.
const PLUGIN_CLASS: &std::ffi::CStr = c"DoorstepPlatform";

const NOT_BUNDLED: PlatformError = PlatformError::Unsupported(
    "the Swift class DoorstepPlatform is not in this app (platform/ios/DoorstepPlatform.swift)",
);
const OUT_OF_DATE: PlatformError = PlatformError::Unsupported(
    "the app's DoorstepPlatform Swift class lacks a method this Rust calls",
);

/// An iPhone.
#[derive(Debug, Default)]
pub struct IosPlatform {
    leases: Mutex<LeaseSet>,
}

impl IosPlatform {
    /// The platform, asking for the notification permission once, at start (not on a doorstep), and
    /// covering the app's screen whenever it leaves the foreground, so the app switcher's snapshot shows
    /// nothing of a visit.
    pub fn new() -> Self {
        match plugin(sel!(askForNotifications)) {
            // SAFETY: `class` answers the selector (checked by `plugin`); Swift
            // `askForNotifications()` takes no arguments and returns Void.
            Ok(class) => autoreleasepool(|_| unsafe { msg_send![class, askForNotifications] }),
            Err(error) => tracing::warn!("notification permission not asked for: {error}"),
        }
        match plugin(sel!(hideInAppSwitcher)) {
            // SAFETY: `class` answers the selector; Swift `hideInAppSwitcher()` takes no arguments and
            // returns Void.
            Ok(class) => autoreleasepool(|_| unsafe { msg_send![class, hideInAppSwitcher] }),
            Err(error) => tracing::warn!("the app switcher's snapshot is not hidden: {error}"),
        }
        Self::default()
    }

    fn leases(&self) -> MutexGuard<'_, LeaseSet> {
        // The lease set is plain data and stays valid even if a holder panicked.
        self.leases
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Schedules [`Notice::CheckInDue`] for the earliest check-in the held leases know of, or withdraws
    /// the scheduled one if there is none left. A check-in already past is left to the screens.
    fn schedule_check_in(&self) -> Result<(), PlatformError> {
        let notice = Notice::CheckInDue;
        let next = self.leases().next_check_in();
        match next.map(|due| (due - Utc::now()).num_milliseconds()) {
            Some(ms) if ms > 0 => show(notice, ms as f64 / 1000.0),
            _ => cancel(notice),
        }
    }
}

/// The Swift class, if it is in the app and has the class method `sel`.
fn plugin(sel: Sel) -> Result<&'static AnyClass, PlatformError> {
    let class = AnyClass::get(PLUGIN_CLASS).ok_or(NOT_BUNDLED)?;
    class.class_method(sel).map(|_| class).ok_or(OUT_OF_DATE)
}

/// `notice` with its fixed wording, now (`after_secs <= 0`) or that many seconds from now.
fn show(notice: Notice, after_secs: f64) -> Result<(), PlatformError> {
    let class = plugin(sel!(notify:title:body:after:))?;
    let id = notice.id() as isize;
    let title = NSString::from_str(notice.title());
    let body = NSString::from_str(notice.body());
    // SAFETY: `class` answers the selector; Swift `notify(id: Int, title: String, body: String,
    // after: Double)` takes NSInteger, NSString *, NSString *, double and returns Void.
    let () = autoreleasepool(|_| unsafe {
        msg_send![class, notify: id, title: &*title, body: &*body, after: after_secs]
    });
    Ok(())
}

/// Withdraws `notice` if it was scheduled ahead and has not been shown.
fn cancel(notice: Notice) -> Result<(), PlatformError> {
    let class = plugin(sel!(cancel:))?;
    let id = notice.id() as isize;
    // SAFETY: `class` answers the selector; Swift `cancel(id: Int)` takes NSInteger and returns Void.
    let () = autoreleasepool(|_| unsafe { msg_send![class, cancel: id] });
    Ok(())
}

/// `DoorstepPlatform.dataKey(create:folder:)`: the data key from the Keychain (made first when `create`),
/// with `folder` given the data protection class and kept out of backups; `None` when there is none.
fn data_key(create: bool, folder: &Path) -> Result<Option<DataKey>, PlatformError> {
    let class = plugin(sel!(dataKey:folder:))?;
    let folder = NSString::from_str(&folder.display().to_string());
    let text = autoreleasepool(|_| {
        // SAFETY: `class` answers the selector; Swift `dataKey(create: Bool, folder: String) -> String?`
        // takes BOOL and NSString * and returns an autoreleased NSString * or nil.
        let found: Option<Retained<NSString>> =
            unsafe { msg_send![class, dataKey: create, folder: &*folder] };
        found.map(|text| zeroize::Zeroizing::new(text.to_string()))
    });
    text.map(|text| DataKey::from_text(&text)).transpose()
}

/// Opens a `tel:` or `sms:` link built by [`PhoneNumber`].
fn open(uri: &str) -> Result<(), PlatformError> {
    let class = plugin(sel!(open:))?;
    let uri = NSString::from_str(uri);
    // SAFETY: `class` answers the selector; Swift `open(uri: String)` takes NSString * and returns Void.
    let () = autoreleasepool(|_| unsafe { msg_send![class, open: &*uri] });
    Ok(())
}

impl Platform for IosPlatform {
    /// `dirs` points inside the app's own sandbox, so no subfolder is needed.
    fn app_data_dir(&self) -> Result<PathBuf, PlatformError> {
        dirs::data_dir().ok_or(PlatformError::NoDataDir)
    }

    fn notify(&self, notice: Notice) -> Result<(), PlatformError> {
        show(notice, 0.0).inspect_err(|error| {
            tracing::warn!(?notice, "notification not shown: {error}");
        })
    }

    /// iPhones have no waveform API: one haptic tap per pulse of [`Pattern::timings_ms`], heavy taps for
    /// [`Pattern::Urgent`].
    fn vibrate(&self, pattern: Pattern) -> Result<(), PlatformError> {
        let class = plugin(sel!(vibrate:strong:))?;
        let pulses = (pattern.timings_ms().len() / 2) as isize;
        let strong = pattern == Pattern::Urgent;
        // SAFETY: `class` answers the selector; Swift `vibrate(pulses: Int, strong: Bool)` takes
        // NSInteger and BOOL and returns Void.
        let () = autoreleasepool(|_| unsafe { msg_send![class, vibrate: pulses, strong: strong] });
        Ok(())
    }

    fn play_alert_sound(&self, urgency: Urgency) -> Result<(), PlatformError> {
        let class = plugin(sel!(playAlertSound:))?;
        let urgent = urgency == Urgency::Urgent;
        // SAFETY: `class` answers the selector; Swift `playAlertSound(urgent: Bool)` takes BOOL and
        // returns Void.
        let () = autoreleasepool(|_| unsafe { msg_send![class, playAlertSound: urgent] });
        Ok(())
    }

    fn open_dialler(&self, number: &PhoneNumber) -> Result<(), PlatformError> {
        open(&number.tel_uri())
    }

    /// The body goes in the link (`sms:<number>?body=…`), as on Android.
    fn open_sms(&self, number: &PhoneNumber, body: &str) -> Result<(), PlatformError> {
        open(&number.sms_uri(body))
    }

    /// Asks for background time and schedules [`Notice::CheckInDue`] for the earliest check-in held, since
    /// iOS may not let the app run at that moment. No ongoing notification: iOS has none to require.
    fn keep_alive(&self, lease: &VisitTimerLease) -> Result<(), PlatformError> {
        let _ = self.leases().hold(lease);
        let class = plugin(sel!(beginVisitTimer))?;
        // SAFETY: `class` answers the selector; Swift `beginVisitTimer()` takes no arguments and returns
        // Void.
        let () = autoreleasepool(|_| unsafe { msg_send![class, beginVisitTimer] });
        self.schedule_check_in()
    }

    /// Reschedules the check-in reminder for the leases left; after the last, withdraws it and gives the
    /// background time back.
    fn release_keep_alive(&self, visit: &VisitId) -> Result<(), PlatformError> {
        let change = self.leases().release(visit);
        match change {
            LeaseChange::Nothing => return Ok(()),
            LeaseChange::Start | LeaseChange::Update => return self.schedule_check_in(),
            LeaseChange::Stop => {}
        }
        let class = plugin(sel!(endVisitTimer))?;
        // SAFETY: `class` answers the selector; Swift `endVisitTimer()` takes no arguments and returns
        // Void.
        let () = autoreleasepool(|_| unsafe { msg_send![class, endVisitTimer] });
        cancel(Notice::CheckInDue)
    }

    fn load_data_key(&self, data_dir: &Path) -> Result<Option<DataKey>, PlatformError> {
        data_key(false, data_dir)
    }

    fn create_data_key(&self, data_dir: &Path) -> Result<DataKey, PlatformError> {
        data_key(true, data_dir)?
            .ok_or_else(|| PlatformError::KeyStore("the Keychain kept no data key".into()))
    }

    fn delete_data_key(&self, _data_dir: &Path) -> Result<(), PlatformError> {
        let class = plugin(sel!(deleteDataKey))?;
        // SAFETY: `class` answers the selector; Swift `deleteDataKey()` takes no arguments and returns
        // Void.
        let () = autoreleasepool(|_| unsafe { msg_send![class, deleteDataKey] });
        Ok(())
    }
}
