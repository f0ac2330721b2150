//! In the visit: a large running timer computed from the recorded start (so it is right after a restart),
//! and the check-in prompt at the policy's times, with one large "I'm OK". The prompt gets louder when due
//! and louder again after the grace; the miss itself is recorded by the app's tick (`AppStore::
//! record_missed_check_ins`), once per due time.

use dioxus::prelude::*;
use doorstep_core::lifecycle::{Command, StaffProgress};
use doorstep_core::policy::Policy;
use doorstep_core::schedule::{self, Expecting};

use super::use_ticking;
use crate::status::when;
use crate::steps::Step;
use crate::store::{Me, VisitCard};
use crate::timing::{check_in_prompt, clock_text, PromptLevel};

#[component]
pub(super) fn InVisit(card: VisitCard, me: Me, policy: Policy) -> Element {
    let shared = use_ticking();
    let error = use_signal(|| None::<String>);
    let now = shared.now();
    let offset = shared.clock.offset(now);
    // Only while I am inside: after "I've left" a running timer would read as if I were still there.
    let (Some(started), Some(StaffProgress::Inside { .. })) =
        (card.state.started_at, card.state.progress(&me.staff))
    else {
        return rsx! {};
    };
    let prompt = check_in_prompt(&card, &me.staff, &policy, now);
    let visit_id = card.visit.id.clone();
    let (class, words) = match prompt {
        Some(p) if p.level == PromptLevel::Overdue => (
            "prompt overdue",
            format!(
                "Check-in overdue since {}. Tap I'm OK now.",
                when(p.due, now, offset)
            ),
        ),
        Some(p) if p.level == PromptLevel::Due => ("prompt due", "Time to check in.".to_owned()),
        Some(p) => (
            "prompt",
            format!("Next check-in at {}", when(p.due, now, offset)),
        ),
        None => ("prompt", String::new()),
    };
    let inside = prompt.is_some();
    // Past the last check-in before the expected end, the office next expects "I've left": say by when.
    let finish = schedule::inside_deadline(&card.visit, &card.state, &policy)
        .filter(|deadline| deadline.expecting == Expecting::Leaving)
        .map(|deadline| format!("Expected to finish by {}", when(deadline.due, now, offset)));
    let ok_class = if matches!(prompt, Some(p) if p.level > PromptLevel::Upcoming) {
        "step-button main ok"
    } else {
        "step-button ok"
    };
    rsx! {
        section { class: "in-visit", aria_label: "In the visit",
            p { class: "timer", id: {"visit-timer"}, role: "timer", aria_label: "Time in the visit",
                "{clock_text(now - started)}"
            }
            if let Some(finish) = finish {
                p { class: "finish", id: {"expected-finish"}, "{finish}" }
            }
            if inside {
                div { class, id: {"check-in-prompt"}, role: "status", aria_live: "assertive",
                    if !words.is_empty() {
                        p { "{words}" }
                    }
                    if let Some(message) = error() {
                        p { class: "error", role: "alert", "{message}" }
                    }
                    button {
                        id: "{Step::ImOk.element_id()}",
                        class: ok_class,
                        aria_label: "{Step::ImOk.description()}",
                        onclick: move |_| {
                            let command = Command::CheckIn { staff: me.staff.clone() };
                            shared.record(&visit_id, command, error);
                        },
                        "{Step::ImOk.label()}"
                    }
                }
            }
        }
    }
}
