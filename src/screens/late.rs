//! "Running late", before arriving: a few quick choices (the expected arrival plus 10, 20 or 30 minutes)
//! and a time typed in, recorded as `RunningLate`. The office moves its deadline with it, and partners'
//! phones show "Sam is running late: expected 14:05".

use dioxus::prelude::*;
use doorstep_core::lifecycle::Command;

use super::{use_step_panel, use_ticking, Refusal};
use crate::app::office_now;
use crate::status::when;
use crate::store::{Me, VisitCard};
use crate::timing::{arrival_from_text, late_choices};

#[component]
pub(super) fn RunningLate(card: VisitCard, me: Me) -> Element {
    let shared = use_ticking();
    let (mut open, closed) = use_step_panel(
        "late-open",
        "Running late: give a new arrival time",
        "Running late",
    );
    let mut typed = use_signal(String::new);
    let mut error = use_signal(|| None::<String>);
    if let Some(button) = closed {
        return button;
    }
    let now = shared.now();
    let offset = shared.clock.offset(now);
    let choices: Vec<(i64, String, chrono::DateTime<chrono::Utc>)> =
        late_choices(&card, &me.staff, now)
            .into_iter()
            .map(|(minutes, at)| (minutes, when(at, now, offset), at))
            .collect();
    let visit_id = card.visit.id.clone();
    let staff = me.staff.clone();
    let (save_store, save_clock) = (shared.store.clone(), shared.clock.clone());
    let record = move |expected_arrival| {
        let command = Command::RunningLate {
            staff: staff.clone(),
            expected_arrival,
        };
        if shared.record(&visit_id, command, error) {
            open.set(false);
            typed.set(String::new());
        }
    };
    let typed_record = record.clone();
    rsx! {
        section { class: "late", aria_label: "Running late",
            h2 { "When will you get there?" }
            div { class: "row",
                for (minutes, time, at) in choices {
                    button {
                        key: "{minutes}",
                        id: "late-plus-{minutes}",
                        class: "tick",
                        aria_label: "{minutes} minutes later: expected {time}",
                        onclick: {
                            let mut record = record.clone();
                            move |_| record(at)
                        },
                        "+{minutes} min ({time})"
                    }
                }
            }
            label { r#for: "late-time", "Or a time" }
            input {
                id: {"late-time"},
                r#type: "text",
                inputmode: "numeric",
                placeholder: "14:05",
                autocomplete: "off",
                maxlength: "5",
                oninput: move |event| typed.set(event.value()),
            }
            Refusal { id: "late-error", error }
            button {
                id: {"late-save"},
                class: "step-button",
                aria_label: "Save the new arrival time",
                onclick: {
                    let mut record = typed_record.clone();
                    move |_| {
                        let now = office_now(&save_store, &save_clock);
                        // Read before recording: recording clears the field.
                        let text = typed.peek().clone();
                        match arrival_from_text(&text, now, save_clock.offset(now)) {
                            Ok(at) => record(at),
                            Err(message) => error.set(Some(message)),
                        }
                    }
                },
                "Save"
            }
            button {
                id: {"late-back"},
                class: "link",
                aria_label: "Not running late after all",
                onclick: move |_| open.set(false),
                "Never mind"
            }
        }
    }
}
