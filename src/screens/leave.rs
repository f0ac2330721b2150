//! "I've left", confirmed with a 4-digit PIN on a large keypad. The normal PIN records `Leave`; the duress
//! PIN records `Leave` and a silent alert (`AppStore::leave_with_pin`). The screen never shows which was
//! typed: the digits appear as dots, and both PINs lead to exactly the same next screen.

use dioxus::prelude::*;
use doorstep_core::ids::VisitId;

use super::{use_shared, Refusal};
use crate::store::Me;

const PIN_LENGTH: usize = 4;

#[component]
pub(super) fn LeavePad(visit_id: VisitId, me: Me, open: Signal<bool>) -> Element {
    let shared = use_shared();
    let mut pin = use_signal(String::new);
    let error = use_signal(|| None::<String>);
    let typed = pin.read().len();
    let dots: String = (0..PIN_LENGTH)
        .map(|i| if i < typed { '●' } else { '○' })
        .collect();
    let keys = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "0"];
    let problem = shared.store.pins_problem();
    rsx! {
        section { class: "pin", aria_label: "Confirm you have left",
            h2 { "Enter your PIN to confirm you've left" }
            if let Some(problem) = problem {
                p { class: "error", role: "alert", id: {"pin-problem"},
                    "\"I've left\" cannot be confirmed on this phone: {problem} Ring the office to tell them you have left."
                }
            }
            p { class: "dots", id: {"pin-dots"}, aria_label: "{typed} of {PIN_LENGTH} digits entered", "{dots}" }
            Refusal { id: "pin-error", error }
            div { class: "keypad",
                for key in keys {
                    button {
                        key: "{key}",
                        id: "pin-key-{key}",
                        class: "key",
                        aria_label: "{key}",
                        onclick: move |_| {
                            if pin.peek().len() < PIN_LENGTH {
                                pin.write().push_str(key);
                            }
                        },
                        "{key}"
                    }
                }
                button {
                    id: {"pin-delete"},
                    class: "key",
                    aria_label: "Delete a digit",
                    onclick: move |_| {
                        pin.write().pop();
                    },
                    "⌫"
                }
            }
            button {
                id: {"pin-confirm"},
                class: "step-button main",
                aria_label: "Confirm I've left",
                onclick: move |_| {
                    let typed = pin.peek().clone();
                    pin.set(String::new());
                    if shared.show(shared.store.leave_with_pin(&visit_id, &me.staff, &typed, shared.clock.now()), error) {
                        open.set(false);
                    }
                },
                "Confirm I've left"
            }
            button {
                id: {"pin-back"},
                class: "link",
                aria_label: "Back: I have not left yet",
                onclick: move |_| open.set(false),
                "Not yet"
            }
        }
    }
}
