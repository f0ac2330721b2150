//! Setting this phone up: the office's address and the one-time code an admin gave (or the whole
//! `doorstep://enrol` link the admin's QR code carries, pasted), and the two PINs chosen now. Nothing is
//! set up until the office has taken the code; a refusal says why and changes nothing on the phone. Shown
//! by [`crate::startup::Phone`] until the phone is set up, never during a visit.

use std::path::PathBuf;

use dioxus::prelude::*;
use doorstep_core::protocol::{display_enrolment_code, EnrolmentLink};

use crate::enrolment::{set_up, SetUp};
use crate::platform::SharedPlatform;
use crate::startup::{ready, Ready};
use crate::store::AppStore;

#[component]
pub(crate) fn SetUpScreen(
    notice: Option<String>,
    prefill: Option<EnrolmentLink>,
    data_dir: PathBuf,
    on_ready: EventHandler<Ready>,
) -> Element {
    let platform = use_context::<SharedPlatform>();
    let (office_prefill, code_prefill) = match &prefill {
        Some(link) => (link.office_url.clone(), display_enrolment_code(&link.code)),
        None => (String::new(), String::new()),
    };
    let mut office = use_signal(|| office_prefill.clone());
    let mut code = use_signal(|| code_prefill.clone());
    let mut pin = use_signal(String::new);
    let mut second = use_signal(String::new);
    let mut busy = use_signal(|| false);
    let mut error = use_signal(|| None::<String>);
    rsx! {
        header { class: "top", h1 { "Set up this phone" } }
        main { class: "setup", aria_label: "Set up this phone",
            if let Some(notice) = notice {
                p { class: "notice", role: "status", id: "setup-notice", "{notice}" }
            }
            p { "An admin at the school office gives you a one-time code for this phone (on their Phones page). It works once, for 15 minutes." }
            if prefill.is_some() {
                p { class: "notice", id: "setup-from-link", "Filled in from the link: the office at {office_prefill}, and your code." }
            }
            label { r#for: "setup-office", "The office's address" }
            input { id: "setup-office", r#type: "url", autocomplete: "off", value: "{office_prefill}",
                placeholder: "https://office.school.example",
                oninput: move |e| office.set(e.value()) }
            label { r#for: "setup-code", "Enrolment code" }
            input { id: "setup-code", r#type: "text", autocomplete: "off", value: "{code_prefill}",
                placeholder: "7KQ4-M2XD-9RTB",
                oninput: move |e| code.set(e.value()) }
            h2 { "Your PINs" }
            p { "Your PIN confirms \"I've left\". Your second PIN does the same on screen and also tells the school office at once, without a sound: use it if someone is making you leave or end the visit." }
            p { "Each is 4 digits. They must differ, and neither may be easy to guess (1234, 0000, this year…). They are kept on this phone only." }
            label { r#for: "setup-pin", "Your PIN" }
            input { id: "setup-pin", r#type: "password", inputmode: "numeric", autocomplete: "off", maxlength: "4",
                oninput: move |e| pin.set(e.value()) }
            label { r#for: "setup-second-pin", "Your second PIN" }
            input { id: "setup-second-pin", r#type: "password", inputmode: "numeric", autocomplete: "off", maxlength: "4",
                oninput: move |e| second.set(e.value()) }
            if let Some(message) = error() {
                p { class: "error", role: "alert", id: "setup-error", "{message}" }
            }
            button {
                id: "setup-go",
                class: "step-button main",
                aria_label: "Set up this phone with the office",
                disabled: busy(),
                onclick: move |_| {
                    if *busy.peek() {
                        return;
                    }
                    busy.set(true);
                    error.set(None);
                    let form = SetUp {
                        office_url: office.peek().clone(),
                        code: code.peek().clone(),
                        pin: pin.peek().clone(),
                        second_pin: second.peek().clone(),
                    };
                    let platform = platform.clone();
                    let dir = data_dir.clone();
                    spawn(async move {
                        // On the runtime's own threads: the request and the files must not wait on the
                        // window's event loop.
                        let outcome = tokio::spawn(async move {
                            let enrolled = set_up(&dir, platform, form, chrono::Utc::now())
                                .await
                                .map_err(|e| e.to_string())?;
                            let credential = enrolled.credential.clone();
                            let store = tokio::task::spawn_blocking(move || {
                                AppStore::open(enrolled.vault, &credential.device_id)
                            })
                            .await
                            .map_err(|e| e.to_string())?
                            .map_err(|e| format!("The phone was set up but its data could not be opened: {e}."))?;
                            Ok::<_, String>(ready(store, &enrolled.credential))
                        })
                        .await
                        .unwrap_or_else(|e| Err(e.to_string()));
                        busy.set(false);
                        match outcome {
                            Ok(ready) => on_ready.call(ready),
                            Err(message) => error.set(Some(message)),
                        }
                    });
                },
                if busy() { "Setting up…" } else { "Set up this phone" }
            }
        }
    }
}
