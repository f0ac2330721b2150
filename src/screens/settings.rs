//! This phone's settings, from a small link at the foot of Today: for now, whether a late check-in also
//! plays the phone's loud sound through silent mode. Off unless the staff member turns it on: in a family's
//! living room a check-in prompt only vibrates and shows an ordinary notification. Kept on the phone
//! (`AppStore::set_phone_settings`).

use dioxus::prelude::*;

use super::BackToToday;
use crate::app::Ui;
use crate::store::AppStore;

#[component]
pub(crate) fn SettingsScreen() -> Element {
    let store = use_context::<AppStore>();
    let ui = use_context::<Ui>();
    let _ = ui.revision.read();
    let mut message = use_signal(|| None::<Result<String, String>>);
    let settings = store.phone_settings();
    let on = settings.sound_for_late_check_in;
    rsx! {
        nav { class: "back",
            BackToToday { id: "settings-back" }
        }
        section { class: "settings-screen", aria_label: "Check-in prompts",
            h1 { "Check-in prompts" }
            p { "When a check-in is due, this phone vibrates and shows a notification that reads like any app's reminder: \"Doorstep: Time to check in.\" It makes no sound through silent mode." }
            button {
                id: {"setting-late-sound"},
                class: if on { "tick on" } else { "tick" },
                role: "switch",
                aria_checked: "{on}",
                aria_label: "Loud sound for a late check-in, even on silent",
                onclick: move |_| {
                    let mut wanted = settings;
                    wanted.sound_for_late_check_in = !on;
                    let outcome = store
                        .set_phone_settings(wanted)
                        .map(|()| "Saved on this phone.".to_owned())
                        .map_err(|error| format!("Not changed: {error}."));
                    message.set(Some(outcome));
                },
                span { class: "box", aria_hidden: "true", if on { "✓" } }
                span { "Loud sound for a late check-in, even on silent" }
            }
            p { class: "quiet", "Only if you might not feel the phone vibrate. Anyone in the room will hear it." }
            match message() {
                Some(Ok(text)) => rsx! { p { class: "delivery", role: "status", id: {"settings-saved"}, "{text}" } },
                Some(Err(text)) => rsx! { p { class: "error", role: "alert", id: {"settings-error"}, "{text}" } },
                None => rsx! {},
            }
        }
    }
}
