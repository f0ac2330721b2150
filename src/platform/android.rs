//! The Android build: calls `DoorstepPlatform` in `platform/android/MainActivity.kt` over JNI.
//!
//! Every call goes through wry's `dispatch`, which runs it on Android's UI thread with the JNI environment
//! and the activity; that is where notifications, intents and services must be started. `dispatch` does not
//! wait, so a failure over there is logged (logcat via `tracing`) rather than returned. The data key is the
//! exception: its calls wait for the UI thread's answer ([`on_ui_thread_for`]), so they must be made off
//! that thread (the app opens its data from a blocking task). No `unsafe` is needed: the `jni` crate's safe
//! calls and wry's class lookup do all of it.
//!
//! Not Dioxus's `#[manganis::ffi]` native plugins: their generated code uses `unsafe`, which the workspace
//! denies outside `ios.rs`, so Doorstep ships its Kotlin as the activity file instead (see
//! `platform/README.md`).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use doorstep_core::ids::VisitId;

#[cfg(not(feature = "mobile"))]
use dioxus::desktop as renderer;
#[cfg(feature = "mobile")]
use dioxus::mobile as renderer;
use renderer::wry::prelude::{dispatch, find_class, jni, JNIEnv, JObject};

use jni::objects::{JByteArray, JClass, JValue};

use super::{
    package_from_cmdline, LeaseChange, LeaseSet, Notice, Pattern, PhoneNumber, Platform,
    PlatformError, Urgency, VisitTimerLease,
};
use crate::vault::DataKey;

/// How long a data-key call may wait for the UI thread.
const KEY_CALL_TIMEOUT: Duration = Duration::from_secs(10);

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

    /// The key is the app's own (one data folder per app); `data_dir` is not needed to find it.
    fn load_data_key(&self, _data_dir: &Path) -> Result<Option<DataKey>, PlatformError> {
        self.data_key(false)
    }

    fn create_data_key(&self, _data_dir: &Path) -> Result<DataKey, PlatformError> {
        self.data_key(true)?
            .ok_or_else(|| PlatformError::KeyStore("Android made no data key".into()))
    }

    fn delete_data_key(&self, _data_dir: &Path) -> Result<(), PlatformError> {
        on_ui_thread_for("to delete the data key", |env, activity, class| {
            env.call_static_method(
                class,
                "deleteDataKey",
                format!("({CONTEXT})V"),
                &[JValue::Object(activity)],
            )?;
            Ok(())
        })
    }
}

impl AndroidPlatform {
    /// `DoorstepPlatform.dataKey(context, create)`: the 32-byte key unwrapped by the Keystore's AES key,
    /// or `None` when there is none (and `create` is false).
    fn data_key(&self, create: bool) -> Result<Option<DataKey>, PlatformError> {
        let bytes = on_ui_thread_for("the data key", move |env, activity, class| {
            let found = env
                .call_static_method(
                    class,
                    "dataKey",
                    format!("({CONTEXT}Z)[B"),
                    &[JValue::Object(activity), JValue::Bool(u8::from(create))],
                )?
                .l()?;
            if found.is_null() {
                return Ok(None);
            }
            let array = JByteArray::from(found);
            Ok(Some(zeroize::Zeroizing::new(
                env.convert_byte_array(&array)?,
            )))
        })?;
        bytes.map(|bytes| DataKey::from_bytes(&bytes)).transpose()
    }
}

/// Runs `call` on Android's UI thread and waits for its answer. Must not be called on the UI thread.
fn on_ui_thread_for<T, F>(what: &'static str, call: F) -> Result<T, PlatformError>
where
    T: Send + 'static,
    F: for<'local> FnOnce(
            &mut JNIEnv<'local>,
            &JObject<'_>,
            &JClass<'local>,
        ) -> jni::errors::Result<T>
        + Send
        + 'static,
{
    let (answer, answered) = std::sync::mpsc::sync_channel(1);
    dispatch(move |env, activity, _webview| {
        let result = find_class(env, activity, PLUGIN_CLASS.to_owned())
            .and_then(|class| call(env, activity, &class));
        if result.is_err() && env.exception_check().unwrap_or(false) {
            let _ = env.exception_describe();
            let _ = env.exception_clear();
        }
        let _ = answer.send(result.map_err(|error| error.to_string()));
    });
    answered
        .recv_timeout(KEY_CALL_TIMEOUT)
        .map_err(|_| PlatformError::KeyStore(format!("Android did not answer for {what}")))?
        .map_err(|error| PlatformError::KeyStore(format!("Android could not get {what}: {error}")))
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
