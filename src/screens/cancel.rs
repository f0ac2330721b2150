//! Not going in. On the way or at the door: "Cancel the visit" with one of the reasons offered at the door
//! (`CancelReason::AT_THE_DOOR`, in the lifecycle's words) and a note; "Felt unsafe" and "Other" need the
//! note, because the authoriser must be told in writing (the lifecycle enforces it; this screen shows its
//! message rather than repeat the rule). Before setting off: "Not going ahead (the family cancelled)", asked
//! twice so a stray tap cannot end a visit.

use dioxus::prelude::*;
use doorstep_core::ids::VisitId;
use doorstep_core::lifecycle::{CancelReason, Command};

use super::{use_shared, use_step_panel, Refusal, TextBox, Tick};
use crate::steps::not_going_ahead;
use crate::store::Me;

#[component]
pub(super) fn CancelPanel(visit_id: VisitId, me: Me) -> Element {
    let shared = use_shared();
    let (mut open, closed) = use_step_panel(
        "cancel-open",
        "Cancel this visit before going in",
        "Cancel the visit",
    );
    let mut reason = use_signal(|| None::<CancelReason>);
    let note = use_signal(String::new);
    let mut error = use_signal(|| None::<String>);
    if let Some(button) = closed {
        return button;
    }
    let chosen = reason();
    let note_label = if chosen.is_some_and(CancelReason::needs_note) {
        "Note for the authoriser (required)"
    } else {
        "Note (optional)"
    };
    rsx! {
        section { class: "cancel", aria_label: "Cancel the visit",
            h2 { "Why are you cancelling?" }
            div { class: "reasons", role: "radiogroup",
                for (index, option) in CancelReason::AT_THE_DOOR.into_iter().enumerate() {
                    Tick {
                        key: "{index}",
                        id: "cancel-reason-{index}",
                        on: chosen == Some(option),
                        label: option.label(),
                        text: option.label(),
                        onclick: move |_| reason.set(Some(option)),
                    }
                }
            }
            TextBox { id: "cancel-note", label: note_label, rows: "3", text: note }
            Refusal { id: "cancel-error", error }
            button {
                id: {"cancel-confirm"},
                class: "step-button main",
                aria_label: "Cancel the visit with this reason",
                onclick: move |_| {
                    let Some(chosen) = reason() else {
                        error.set(Some("Choose a reason first.".to_owned()));
                        return;
                    };
                    let command = Command::Cancel {
                        staff: me.staff.clone(),
                        reason: chosen,
                        note: note.peek().clone(),
                    };
                    if shared.record(&visit_id, command, error) {
                        open.set(false);
                    }
                },
                "Cancel the visit"
            }
            KeepTheVisit { id: "cancel-back", open }
        }
    }
}

/// "Keep the visit": closes a cancelling panel without recording anything.
#[component]
fn KeepTheVisit(id: &'static str, open: Signal<bool>) -> Element {
    let mut open = open;
    rsx! {
        button {
            id: "{id}",
            class: "link",
            aria_label: "Keep the visit",
            onclick: move |_| open.set(false),
            "Keep the visit"
        }
    }
}

/// "Not going ahead (the family cancelled)", before setting off: the first tap asks, the second records
/// `Cancel` with `CancelReason::FamilyCancelled` (and an optional note).
#[component]
pub(super) fn NotGoingAhead(visit_id: VisitId, me: Me) -> Element {
    let shared = use_shared();
    let label = CancelReason::FamilyCancelled.label();
    let (mut open, closed) = use_step_panel("not-going-ahead-open", label, label);
    let note = use_signal(String::new);
    let error = use_signal(|| None::<String>);
    if let Some(button) = closed {
        return button;
    }
    rsx! {
        section { class: "cancel", aria_label: "{label}",
            h2 { "The family cancelled?" }
            p { "This tells the office and your partners that the visit is not going ahead. Anyone already on the way stays watched until they say they are on their way back." }
            TextBox { id: "not-going-ahead-note", label: "Note (optional)", rows: "2", text: note }
            Refusal { id: "not-going-ahead-error", error }
            button {
                id: {"not-going-ahead-confirm"},
                class: "step-button main",
                aria_label: "Confirm: the visit is not going ahead",
                onclick: move |_| {
                    let command = not_going_ahead(&me.staff, note.peek().clone());
                    if shared.record(&visit_id, command, error) {
                        open.set(false);
                    }
                },
                "Not going ahead"
            }
            KeepTheVisit { id: "not-going-ahead-back", open }
        }
    }
}
