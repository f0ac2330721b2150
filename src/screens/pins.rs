//! Changing this phone's PINs: the one that confirms "I've left" and the second one that looks the same on
//! screen but also tells the office silently. The current PIN is asked first, so a phone picked up by
//! someone else cannot have its PINs changed. Reached from a small link at the foot of Today, never from a
//! visit.

use dioxus::prelude::*;

use super::BackToToday;
use crate::app::Clock;
use crate::store::{AppStore, PinKind};

#[component]
pub(crate) fn PinsScreen() -> Element {
    let store = use_context::<AppStore>();
    let clock = use_context::<Clock>();
    let problem = store.pins_problem();
    let mut current = use_signal(String::new);
    let mut normal = use_signal(String::new);
    let mut duress = use_signal(String::new);
    let mut message = use_signal(|| None::<Result<String, String>>);
    rsx! {
        nav { class: "back",
            BackToToday { id: "pins-back" }
        }
        section { class: "pins", aria_label: "Your PINs",
            h1 { "Your PINs" }
            p { "Your PIN confirms \"I've left\". Your second PIN does the same on screen and also tells the school office at once, without a sound: use it if someone is making you leave or end the visit." }
            p { "Each is 4 digits. They must differ, and neither may be easy to guess (1234, 0000, this year…). They are kept on this phone only." }
            if let Some(problem) = problem {
                p { class: "error", role: "alert", id: {"pins-problem"}, "{problem}" }
            }
            label { r#for: "pin-current", "Your PIN now" }
            input { id: {"pin-current"}, r#type: "password", inputmode: "numeric", autocomplete: "off", maxlength: "4",
                oninput: move |e| current.set(e.value()) }
            label { r#for: "pin-new", "New PIN" }
            input { id: {"pin-new"}, r#type: "password", inputmode: "numeric", autocomplete: "off", maxlength: "4",
                oninput: move |e| normal.set(e.value()) }
            label { r#for: "pin-new-second", "New second PIN" }
            input { id: {"pin-new-second"}, r#type: "password", inputmode: "numeric", autocomplete: "off", maxlength: "4",
                oninput: move |e| duress.set(e.value()) }
            match message() {
                Some(Ok(text)) => rsx! { p { class: "delivery", role: "status", id: {"pins-saved"}, "{text}" } },
                Some(Err(text)) => rsx! { p { class: "error", role: "alert", id: {"pins-error"}, "{text}" } },
                None => rsx! {},
            }
            button {
                id: {"pins-save"},
                class: "step-button main",
                aria_label: "Save my new PINs",
                onclick: move |_| {
                    let outcome = if store.check_pin(&current.peek()) != PinKind::Normal {
                        Err("Not changed: that is not your PIN now.".to_owned())
                    } else {
                        store
                            .set_pins(&normal.peek(), &duress.peek(), clock.now())
                            .map(|()| "Saved. Use your new PINs from now on.".to_owned())
                            .map_err(|error| format!("Not changed: {error}."))
                    };
                    message.set(Some(outcome));
                },
                "Save"
            }
        }
    }
}
