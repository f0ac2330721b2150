//! The platform glue from the outside: what the desktop and recording platforms log, the fixed notice
//! wording, phone numbers and their links, and the Android files agreeing with each other and with Rust.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use dioxus::prelude::*;
use doorstep::platform::{
    DesktopPlatform, Notice, Pattern, PhoneNumber, Platform, PlatformCall, RecordingPlatform,
    SharedPlatform, Urgency, VisitTimerLease,
};
use doorstep_core::ids::VisitId;
use doorstep_core::test_support::PHONE_NUMBERS;

fn number(text: &str) -> PhoneNumber {
    PhoneNumber::parse(text).unwrap()
}

fn lease(visit: &str) -> VisitTimerLease {
    VisitTimerLease {
        visit: VisitId::parse(visit).unwrap(),
        next_check_in: Some(Utc.with_ymd_and_hms(2026, 11, 23, 10, 10, 0).unwrap()),
    }
}

#[test]
fn the_recording_platform_logs_every_call_in_order() {
    let platform = RecordingPlatform::new("/data");
    let log = platform.log();
    let office = number("0113 496 0000");

    platform.notify(Notice::CheckInDue).unwrap();
    platform.vibrate(Pattern::Reminder).unwrap();
    platform.play_alert_sound(Urgency::Normal).unwrap();
    platform.open_dialler(&office).unwrap();
    platform.open_sms(&office, "Can you cover 5B?").unwrap();
    platform.keep_alive(&lease("visit-1")).unwrap();
    assert!(log.keeping_alive());
    platform
        .release_keep_alive(&VisitId::parse("visit-1").unwrap())
        .unwrap();
    assert!(!log.keeping_alive());

    assert_eq!(
        log.calls(),
        vec![
            PlatformCall::Notified(Notice::CheckInDue),
            PlatformCall::Vibrated(Pattern::Reminder),
            PlatformCall::PlayedAlertSound(Urgency::Normal),
            PlatformCall::OpenedDialler {
                uri: "tel:01134960000".into()
            },
            PlatformCall::OpenedSms {
                uri: "sms:01134960000?body=Can%20you%20cover%205B%3F".into()
            },
            PlatformCall::KeptAlive(lease("visit-1")),
            PlatformCall::Released(VisitId::parse("visit-1").unwrap()),
        ]
    );
    assert_eq!(platform.app_data_dir(), Ok("/data".into()));
    log.clear();
    assert!(log.calls().is_empty());
}

#[test]
fn the_desktop_platform_records_and_opens_nothing_by_default() {
    // `new()` never reads DOORSTEP_OPEN_LINKS, so this cannot start a softphone on the machine running it.
    let platform = DesktopPlatform::new();
    let log = platform.log();
    platform.notify(Notice::CheckInOverdue).unwrap();
    platform.open_dialler(&number("01632 960000")).unwrap();
    platform.open_sms(&number("+44 7700 900123"), "").unwrap();
    platform.keep_alive(&lease("visit-2")).unwrap();
    assert_eq!(log.notices(), vec![Notice::CheckInOverdue]);
    assert_eq!(
        log.calls()[1..3],
        [
            PlatformCall::OpenedDialler {
                uri: "tel:01632960000".into()
            },
            PlatformCall::OpenedSms {
                uri: "sms:+447700900123".into()
            },
        ]
    );
    assert!(log.keeping_alive());
}

/// The whole of what a notification can ever say. A change here is a change to what a family might read on
/// a lock screen: review it as such.
#[test]
fn notices_say_only_these_fixed_words() {
    let expected = [
        (Notice::CheckInDue, "Doorstep", "Time to check in."),
        (
            Notice::CheckInOverdue,
            "Doorstep",
            "Check-in overdue. Open Doorstep.",
        ),
        (
            Notice::OfficeNotConfirmed,
            "Doorstep",
            "Not confirmed by the office yet. Open Doorstep.",
        ),
        (
            Notice::VisitTimerRunning,
            "Doorstep",
            "Visit timer running.",
        ),
    ];
    assert_eq!(expected.len(), Notice::ALL.len());
    for (notice, title, body) in expected {
        assert_eq!((notice.title(), notice.body()), (title, body), "{notice:?}");
    }
}

/// A family in the room may see any notification: every one is an ordinary reminder on both phones, and
/// the loud sound is asked for on its own (see `prompts`).
#[test]
fn every_notification_is_an_ordinary_reminder_on_both_phones() {
    let kotlin = repo_file("platform/android/MainActivity.kt");
    let notify = &kotlin[kotlin.find("fun notify(").unwrap()..];
    let notify = &notify[..notify.find("\n    }\n").unwrap()];
    assert!(
        notify.contains(".setCategory(Notification.CATEGORY_REMINDER)"),
        "{notify}"
    );
    assert!(!kotlin.contains("CATEGORY_ALARM"));
    let swift = repo_file("platform/ios/DoorstepPlatform.swift");
    assert!(swift.contains("@objc(notify:title:body:after:)"));
    assert!(!swift.contains("doorstep-urgent"));
    let ios = repo_file("src/platform/ios.rs");
    assert!(ios.contains("sel!(notify:title:body:after:)"));
}

/// The shared table (`doorstep_core::test_support::PHONE_NUMBERS`), which the office's staff and request
/// forms are tested against too: what the office accepts is what the dialler rings, and what it refuses
/// never reaches the dialler.
#[test]
fn the_dialler_takes_exactly_the_numbers_of_the_shared_table() {
    let platform = RecordingPlatform::new("/data");
    let log = platform.log();
    for &(text, dialable) in PHONE_NUMBERS {
        match (PhoneNumber::parse(text), dialable) {
            (Ok(number), Some(dialable)) => {
                log.clear();
                platform.open_dialler(&number).unwrap();
                assert_eq!(
                    log.calls(),
                    [PlatformCall::OpenedDialler {
                        uri: format!("tel:{dialable}")
                    }],
                    "{text:?}"
                );
            }
            (Err(_), None) => {}
            (parsed, expected) => {
                panic!("{text:?}: parsed {parsed:?}, the table says {expected:?}")
            }
        }
    }
}

#[test]
fn links_carry_the_dialable_number_and_an_encoded_body() {
    let office = number("+44 113 496 0000");
    assert_eq!(office.tel_uri(), "tel:+441134960000");
    let cases = [
        ("", "sms:+441134960000"),
        ("Cover 5B", "sms:+441134960000?body=Cover%205B"),
        (
            "a&b=c#d?e+f/g",
            "sms:+441134960000?body=a%26b%3Dc%23d%3Fe%2Bf%2Fg",
        ),
        ("Mrs Ó'Brien", "sms:+441134960000?body=Mrs%20%C3%93%27Brien"),
        ("line\nbreak", "sms:+441134960000?body=line%0Abreak"),
    ];
    for (body, uri) in cases {
        assert_eq!(office.sms_uri(body), uri, "{body:?}");
    }
}

#[test]
fn screens_reach_the_platform_through_dioxus_context() {
    fn remind() -> Element {
        let platform = use_context::<SharedPlatform>();
        use_hook(|| platform.notify(Notice::CheckInDue).unwrap());
        rsx! { p { "reminded" } }
    }
    let recording = RecordingPlatform::new("/data");
    let shared: SharedPlatform = Arc::new(recording.clone());
    let mut dom = VirtualDom::new(remind).with_root_context(shared);
    dom.rebuild_in_place();
    assert_eq!(recording.log().notices(), vec![Notice::CheckInDue]);
}

fn repo_file(path: &str) -> String {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// dx ignores Dioxus.toml's permission lists when a custom manifest is used, so the two are kept in step
/// by this test.
#[test]
fn the_android_manifest_declares_what_dioxus_toml_asks_for() {
    let toml = repo_file("Dioxus.toml");
    let manifest = repo_file("platform/android/AndroidManifest.xml");
    assert!(toml.contains("android_manifest = \"platform/android/AndroidManifest.xml\""));
    assert!(toml.contains("android_main_activity = \"platform/android/MainActivity.kt\""));

    let mut wanted = vec!["android.permission.INTERNET".to_owned()];
    if toml.contains("\nnotifications = ") {
        wanted.push("android.permission.POST_NOTIFICATIONS".into());
    }
    if toml.contains("foreground_service_types = [\"specialUse\"]") {
        wanted.push("android.permission.FOREGROUND_SERVICE".into());
        assert!(manifest.contains("android:foregroundServiceType=\"specialUse\""));
    }
    for line in toml.lines() {
        if let Some(rest) = line.strip_prefix("\"android.permission.") {
            let name = rest.split('"').next().unwrap();
            wanted.push(format!("android.permission.{name}"));
        }
    }
    assert_eq!(wanted.len(), 5, "{wanted:?}");
    let declared: Vec<&str> = manifest
        .lines()
        .filter_map(|l| l.trim().strip_prefix("<uses-permission android:name=\""))
        .map(|rest| rest.split('"').next().unwrap())
        .collect();
    let mut wanted_sorted: Vec<&str> = wanted.iter().map(String::as_str).collect();
    wanted_sorted.sort_unstable();
    let mut declared_sorted = declared.clone();
    declared_sorted.sort_unstable();
    assert_eq!(declared_sorted, wanted_sorted);
    assert!(manifest.contains("android:name=\"dev.dioxus.main.VisitTimerService\""));
    assert!(manifest.contains("android:name=\"dev.dioxus.main.MainActivity\""));
}

/// A lost phone's data must not come back from a backup, nor its screens from a screenshot or the
/// recent-apps thumbnail; on iOS the same through the Swift the Rust side calls.
#[test]
fn the_phones_keep_their_data_out_of_backups_and_their_screens_out_of_screenshots() {
    let manifest = repo_file("platform/android/AndroidManifest.xml");
    assert!(
        manifest.contains("android:allowBackup=\"false\""),
        "{manifest}"
    );
    assert!(manifest.contains("android:fullBackupContent=\"false\""));
    let kotlin = repo_file("platform/android/MainActivity.kt");
    let on_create = &kotlin[kotlin.find("override fun onCreate").expect("onCreate")..];
    let on_create = &on_create[..on_create.find("\n    }").unwrap()];
    assert!(
        on_create.contains("WindowManager.LayoutParams.FLAG_SECURE"),
        "every screen is FLAG_SECURE: {on_create}"
    );
    assert!(
        kotlin.contains("noBackupFilesDir"),
        "the wrapped key is never backed up"
    );
    assert!(kotlin.contains("\"AndroidKeyStore\""));

    let swift = repo_file("platform/ios/DoorstepPlatform.swift");
    for needed in [
        "kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly",
        "FileProtectionType.completeUntilFirstUserAuthentication",
        "isExcludedFromBackup = true",
        "willResignActiveNotification",
    ] {
        assert!(
            swift.contains(needed),
            "DoorstepPlatform.swift lacks {needed}"
        );
    }
    let ios = repo_file("src/platform/ios.rs");
    for selector in ["dataKey:folder:", "deleteDataKey", "hideInAppSwitcher"] {
        assert!(
            ios.contains(&format!("sel!({selector})")),
            "ios.rs never sends {selector}"
        );
        assert!(
            swift.contains(&format!("@objc({selector})")),
            "the Swift has no @objc({selector})"
        );
    }
}

/// The Rust side finds the Kotlin by name and JNI signature: a rename on one side only would compile and
/// then fail on the phone, so check the names here.
#[test]
fn every_kotlin_method_the_rust_side_calls_exists() {
    let rust = repo_file("src/platform/android.rs");
    let kotlin = repo_file("platform/android/MainActivity.kt");
    assert!(rust.contains("\"dev/dioxus/main/DoorstepPlatform\""));
    assert!(kotlin.contains("package dev.dioxus.main"));
    assert!(kotlin.contains("object DoorstepPlatform"));
    let methods = [
        (
            "notify",
            "context: Context, id: Int, title: String, body: String",
        ),
        ("vibrate", "context: Context, timings: LongArray"),
        ("playAlertSound", "context: Context, urgent: Boolean"),
        ("openDialler", "context: Context, uri: String"),
        ("openSms", "context: Context, uri: String, body: String"),
        (
            "startVisitTimer",
            "context: Context, title: String, body: String",
        ),
        ("stopVisitTimer", "context: Context"),
        ("dataKey", "context: Context, create: Boolean"),
        ("deleteDataKey", "context: Context"),
    ];
    for (name, parameters) in methods {
        assert!(
            rust.contains(&format!("\"{name}\",")),
            "android.rs never calls {name}"
        );
        assert!(
            kotlin.contains(&format!("@JvmStatic\n    fun {name}({parameters})")),
            "MainActivity.kt has no static {name}({parameters})"
        );
    }
}
