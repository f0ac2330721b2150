//! The Android build: calls `DoorstepPlatform` in `platform/android/MainActivity.kt` over JNI.
//!
//! Every call goes through wry's `dispatch`, which runs it on Android's UI thread with the JNI environment
//! and the activity; that is where notifications, intents and services must be started. `dispatch` does not
//! wait, so a failure over there is logged (logcat via `tracing`) rather than returned. No `unsafe` is
//! needed: the `jni` crate's safe calls and wry's class lookup do all of it.
//!
//! Not Dioxus's `#[manganis::ffi]` native plugins: their generated code uses `unsafe`, which the workspace
//! denies outside `ios.rs`, so Doorstep ships its Kotlin as the activity file instead (see
//! `platform/README.md`).

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use doorstep_core::ids::VisitId;

#[cfg(not(feature = "mobile"))]
use dioxus::desktop as renderer;
#[cfg(feature = "mobile")]
use dioxus::mobile as renderer;
use renderer::wry::prelude::{dispatch, find_class, jni, JNIEnv, JObject};

use jni::objects::{JClass, JValue};

use super::{
    package_from_cmdline, LeaseChange, LeaseSet, Notice, Pattern, PhoneNumber, Platform,
    PlatformError, Urgency, VisitTimerLease,
};

/// The Kotlin object the calls go to, as wry's `find_class` wants it.
const PLUGIN_CLASS: &str = "dev/dioxus/main/DoorstepPlatform";
const CONTEXT: &str = "Landroid/content/Context;";
const STRING: &str = "Ljava/lang/String;";

/// An Android phone.
#[derive(Debug, Default)]
pub struct AndroidPlatform {
    leases: Mutex<LeaseSet>,
}

impl AndroidPlatform {
    fn leases(&self) -> MutexGuard<'_, LeaseSet> {
        // The lease set is plain data and stays valid even if a holder panicked.
        self.leases
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Platform for AndroidPlatform {
    /// The app's private files folder, `/data/data/<package>/files`.
    ///
    /// `dirs` knows nothing useful on Android and `Context.getFilesDir()` would need the activity, which
    /// does not exist yet when `main` opens the database; the process's command line is its package name.
    fn app_data_dir(&self) -> Result<PathBuf, PlatformError> {
        let cmdline = std::fs::read("/proc/self/cmdline")
            .map_err(|error| PlatformError::NoPackageName(error.to_string()))?;
        let package = package_from_cmdline(&cmdline).ok_or_else(|| {
            PlatformError::NoPackageName(String::from_utf8_lossy(&cmdline).into_owned())
        })?;
        Ok(PathBuf::from("/data/data").join(package).join("files"))
    }

    fn notify(&self, notice: Notice) -> Result<(), PlatformError> {
        on_ui_thread("show a notification", move |env, activity, class| {
            let title = env.new_string(notice.title())?;
            let body = env.new_string(notice.body())?;
            env.call_static_method(
                class,
                "notify",
                format!("({CONTEXT}I{STRING}{STRING})V"),
                &[
                    JValue::Object(activity),
                    JValue::Int(notice.id()),
                    JValue::Object(&title),
                    JValue::Object(&body),
                ],
            )?;
            Ok(())
        });
        Ok(())
    }

    fn vibrate(&self, pattern: Pattern) -> Result<(), PlatformError> {
        on_ui_thread("vibrate", move |env, activity, class| {
            let timings = pattern.timings_ms();
            let array = env.new_long_array(timings.len() as i32)?;
            env.set_long_array_region(&array, 0, timings)?;
            env.call_static_method(
                class,
                "vibrate",
                format!("({CONTEXT}[J)V"),
                &[JValue::Object(activity), JValue::Object(&array)],
            )?;
            Ok(())
        });
        Ok(())
    }

    fn play_alert_sound(&self, urgency: Urgency) -> Result<(), PlatformError> {
        let urgent = urgency == Urgency::Urgent;
        on_ui_thread("play the alert sound", move |env, activity, class| {
            env.call_static_method(
                class,
                "playAlertSound",
                format!("({CONTEXT}Z)V"),
                &[JValue::Object(activity), JValue::Bool(u8::from(urgent))],
            )?;
            Ok(())
        });
        Ok(())
    }

    fn open_dialler(&self, number: &PhoneNumber) -> Result<(), PlatformError> {
        let uri = number.tel_uri();
        on_ui_thread("open the dialler", move |env, activity, class| {
            let uri = env.new_string(uri)?;
            env.call_static_method(
                class,
                "openDialler",
                format!("({CONTEXT}{STRING})V"),
                &[JValue::Object(activity), JValue::Object(&uri)],
            )?;
            Ok(())
        });
        Ok(())
    }

    fn open_sms(&self, number: &PhoneNumber, body: &str) -> Result<(), PlatformError> {
        let uri = number.sms_uri(body);
        let body = body.to_owned();
        on_ui_thread("open the message composer", move |env, activity, class| {
            let uri = env.new_string(uri)?;
            let body = env.new_string(body)?;
            env.call_static_method(
                class,
                "openSms",
                format!("({CONTEXT}{STRING}{STRING})V"),
                &[
                    JValue::Object(activity),
                    JValue::Object(&uri),
                    JValue::Object(&body),
                ],
            )?;
            Ok(())
        });
        Ok(())
    }

    fn keep_alive(&self, lease: &VisitTimerLease) -> Result<(), PlatformError> {
        // The service is started on every lease, not only the first: startForegroundService on a running
        // service just refreshes its notification, and a service the system stopped comes back.
        let _ = self.leases().hold(lease);
        let notice = Notice::VisitTimerRunning;
        on_ui_thread("start the visit timer", move |env, activity, class| {
            let title = env.new_string(notice.title())?;
            let body = env.new_string(notice.body())?;
            env.call_static_method(
                class,
                "startVisitTimer",
                format!("({CONTEXT}{STRING}{STRING})V"),
                &[
                    JValue::Object(activity),
                    JValue::Object(&title),
                    JValue::Object(&body),
                ],
            )?;
            Ok(())
        });
        Ok(())
    }

    fn release_keep_alive(&self, visit: &VisitId) -> Result<(), PlatformError> {
        if self.leases().release(visit) != LeaseChange::Stop {
            return Ok(());
        }
        on_ui_thread("stop the visit timer", |env, activity, class| {
            env.call_static_method(
                class,
                "stopVisitTimer",
                format!("({CONTEXT})V"),
                &[JValue::Object(activity)],
            )?;
            Ok(())
        });
        Ok(())
    }
}

/// Runs `call` on Android's UI thread with the `DoorstepPlatform` class, logging what went wrong.
fn on_ui_thread<F>(what: &'static str, call: F)
where
    F: for<'local> FnOnce(
            &mut JNIEnv<'local>,
            &JObject<'_>,
            &JClass<'local>,
        ) -> jni::errors::Result<()>
        + Send
        + 'static,
{
    dispatch(move |env, activity, _webview| {
        let result = find_class(env, activity, PLUGIN_CLASS.to_owned())
            .and_then(|class| call(env, activity, &class));
        if let Err(error) = result {
            // A Java exception left pending would abort the next JNI call on this thread: print it to
            // logcat and clear it.
            if env.exception_check().unwrap_or(false) {
                let _ = env.exception_describe();
                let _ = env.exception_clear();
            }
            tracing::warn!(%error, "Android could not {what}");
        }
    });
}
