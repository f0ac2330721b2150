//! Arriving: where each partner is ("wait outside until X arrives" is the step's notice; a partner vouched
//! for says so), and the wait at the door counted down from my arrival to the policy's longest wait, then
//! "No answer — cancel".

use dioxus::prelude::*;
use doorstep_core::lifecycle::{CancelReason, Command};
use doorstep_core::policy::Policy;

use super::use_ticking;
use crate::notices::whereabouts;
use crate::status::when;
use crate::store::{Me, VisitCard};
use crate::timing::{clock_text, door_wait};

/// Where each partner is (and who vouched for whom), once I have left for the visit or someone vouched for
/// me.
#[component]
pub(super) fn Partners(card: VisitCard, me: Me) -> Element {
    let lines = whereabouts(&card, &me.staff);
    if lines.is_empty() {
        return rsx! {};
    }
    rsx! {
        ul { class: "partners", id: {"whereabouts"}, aria_label: "Where everyone is",
            for (index, line) in lines.into_iter().enumerate() {
                li { key: "{index}", "{line}" }
            }
        }
    }
}

/// The wait at the door, redrawn every second.
#[component]
pub(super) fn DoorWaitView(card: VisitCard, me: Me, policy: Policy) -> Element {
    let shared = use_ticking();
    let error = use_signal(|| None::<String>);
    let now = shared.now();
    let Some(wait) = door_wait(&card.state, &me.staff, &policy, now) else {
        return rsx! {};
    };
    let most = policy.max_wait_for_family.get();
    let visit_id = card.visit.id.clone();
    rsx! {
        section { class: "door", aria_label: "Waiting at the door",
            if let Some(left) = wait.left {
                p { class: "countdown", id: {"door-wait"}, role: "timer",
                    "Waiting at the door: "
                    strong { "{clock_text(left)}" }
                    " left of {most} minutes (until {when(wait.ends_at, now, shared.clock.offset(now))})"
                }
            } else {
                p { class: "countdown over", id: {"door-wait"},
                    "You have waited {most} minutes. If nobody has answered, cancel the visit."
                }
                if let Some(message) = error() {
                    p { class: "error", role: "alert", "{message}" }
                }
                button {
                    id: {"no-answer-cancel"},
                    class: "step-button main",
                    aria_label: "Nobody answered: cancel the visit",
                    onclick: move |_| {
                        let command = Command::Cancel {
                            staff: me.staff.clone(),
                            reason: CancelReason::NoAnswerAfterWait,
                            note: String::new(),
                        };
                        shared.record(&visit_id, command, error);
                    },
                    "No answer — cancel"
                }
            }
        }
    }
}
