//! The write-up once I have left or the visit was cancelled: who was seen, what was discussed,
//! agreements, a safeguarding concern (yes puts "Tell the DSL now" at the top, naming the policy's
//! `safeguarding_concerns_to`), an incident report. It is recorded as `WriteUp`; then the screen shows the
//! text to paste into the school's record system (the policy's `record_system`).

use dioxus::prelude::*;
use doorstep_core::lifecycle::{Command, WriteUp};
use doorstep_core::write_up::concerns_contact;

use super::{use_shared, Refusal, TextBox, Tick};
use crate::cpoms::{from_store, Summary};
use crate::store::{AppStore, Me, VisitCard};

#[component]
pub(super) fn WriteUpForm(card: VisitCard, me: Me) -> Element {
    let shared = use_shared();
    let seen = use_signal(String::new);
    let discussed = use_signal(String::new);
    let agreements = use_signal(String::new);
    let mut concern = use_signal(|| false);
    let incident = use_signal(String::new);
    let error = use_signal(|| None::<String>);
    let visit_id = card.visit.id.clone();
    let contact = concerns_contact(card.policy.safeguarding_concerns_to);
    rsx! {
        section { class: "write-up", aria_label: "Write-up",
            h2 { "Write-up" }
            if concern() {
                p { class: "tell-dsl", role: "alert", id: {"tell-dsl"},
                    "Tell {contact} now — in person or by phone, before anything else."
                }
            }
            TextBox {
                id: "writeup-seen",
                label: "Who was seen",
                rows: "2",
                text: seen,
            }
            TextBox {
                id: "writeup-discussed",
                label: "What was discussed",
                rows: "3",
                text: discussed,
            }
            TextBox {
                id: "writeup-agreements",
                label: "Agreements made with parents",
                rows: "2",
                text: agreements,
            }
            p { class: "question", "Safeguarding concern?" }
            div { class: "row", role: "radiogroup",
                Tick {
                    id: "writeup-concern-yes",
                    on: concern(),
                    label: "Safeguarding concern: yes",
                    text: "Yes",
                    onclick: move |_| concern.set(true),
                }
                Tick {
                    id: "writeup-concern-no",
                    on: !concern(),
                    label: "Safeguarding concern: no",
                    text: "No",
                    onclick: move |_| concern.set(false),
                }
            }
            TextBox {
                id: "writeup-incident",
                label: "Incident report (if anything happened)",
                rows: "2",
                text: incident,
            }
            Refusal { id: "writeup-error", error }
            button {
                id: {"writeup-save"},
                class: "step-button main",
                aria_label: "Save the write-up",
                onclick: move |_| {
                    let incident_text = incident.peek().trim().to_owned();
                    let write_up = WriteUp {
                        seen: seen.peek().clone(),
                        discussed: discussed.peek().clone(),
                        agreements: agreements.peek().clone(),
                        safeguarding_concern: *concern.peek(),
                        incident: (!incident_text.is_empty()).then_some(incident_text),
                    };
                    let command = Command::WriteUp { staff: me.staff.clone(), write_up };
                    shared.record(&visit_id, command, error);
                },
                "Save the write-up"
            }
        }
    }
}

/// The recorded write-up as text for the school's record system, from this phone's own events.
#[component]
pub(super) fn CpomsSummary(card: VisitCard) -> Element {
    let store = use_context::<AppStore>();
    let system = card.policy.record_system.clone();
    let (text, concern) = match from_store(&store, &card) {
        Ok(Summary::Ready { document, concern }) => (document.to_text(), concern),
        Ok(Summary::AtOffice) => {
            return rsx! {
                p { class: "notice", id: {"write-up-at-office"},
                    "The office has your write-up. Its words are no longer kept on this phone: the text for {system} is in the visit's record at the office."
                }
            };
        }
        Ok(Summary::NotWrittenUpHere) => {
            return rsx! { p { class: "notice", "Written up on another phone." } };
        }
        Err(error) => {
            tracing::warn!(%error, "the write-up could not be read from the log");
            return rsx! { p { class: "notice", "The write-up cannot be read on this phone just now." } };
        }
    };
    let contact = concerns_contact(card.policy.safeguarding_concerns_to);
    rsx! {
        section { class: "cpoms", aria_label: "Summary for {system}",
            if concern {
                p { class: "tell-dsl", role: "alert", "Tell {contact} now if you have not already." }
            }
            h2 { "Ready to paste into {system}" }
            pre { id: {"cpoms-summary"}, class: "summary", tabindex: "0", "{text}" }
        }
    }
}
