//! The briefing before leaving: the purpose, risks and controls, pets with the rule, the pupil, the family,
//! the area and parking, and the rules for every visit; then the checklist the school's policy asks for
//! (`BriefingCheck::required`: the pets line only where animals must be secured), recorded as
//! `BriefingRead` for the briefing's current version.

use dioxus::prelude::*;
use doorstep_core::domain::Briefing;
use doorstep_core::ids::VisitId;
use doorstep_core::lifecycle::{BriefingCheck, Command};
use doorstep_core::policy::Policy;

use super::{use_shared, Refusal};
use crate::store::Me;

/// A line of the briefing the school may leave empty: shown only when it says something.
#[component]
fn Noted(term: &'static str, text: String) -> Element {
    if text.is_empty() {
        return rsx! {};
    }
    rsx! {
        dt { "{term}" }
        dd { "{text}" }
    }
}

#[component]
pub(super) fn BriefingView(
    briefing: Briefing,
    purpose: &'static str,
    pupil: String,
    address: String,
) -> Element {
    if briefing.withdrawn {
        return rsx! {
            section { class: "briefing", aria_label: "Briefing",
                h2 { "Briefing" }
                p { id: {"briefing-withdrawn"}, "Taken off this phone now the visit is over." }
            }
        };
    }
    let assessment = briefing.risk_assessment().clone();
    rsx! {
        section { class: "briefing", aria_label: "Briefing",
            h2 { "Briefing" }
            dl {
                dt { "Purpose" }
                dd { "{purpose}" }
                dt { "Address" }
                dd { "{address}" }
                dt { "Pupil" }
                dd { "{pupil}" }
                Noted { term: "Needs", text: briefing.pupil_needs.clone() }
                Noted { term: "Family", text: briefing.family.clone() }
                dt { "Pets" }
                if briefing.pets.is_empty() {
                    dd { "None known" }
                } else {
                    dd { class: "pets",
                        "{briefing.pets}"
                        span { class: "rule",
                            "Pets must be kept in another room or outside, or the visit is cancelled."
                        }
                    }
                }
                Noted { term: "Area", text: briefing.area.clone() }
                Noted { term: "Parking", text: briefing.parking.clone() }
            }
            if let Some(lone) = &assessment.lone_visit_assessment {
                h3 { "Lone visit" }
                p { "{lone}" }
            }
            h3 { "Risks and controls" }
            ul { class: "risks",
                for risk in assessment.risks {
                    li {
                        strong { "{risk.description}" }
                        ul {
                            for control in risk.controls {
                                li { "{control}" }
                            }
                        }
                    }
                }
            }
            h3 { "Every visit" }
            ul { class: "rules",
                for rule in Briefing::STANDING_RULES {
                    li { "{rule}" }
                }
            }
        }
    }
}

/// The checklist. Each item is one large toggle; "Checklist done" records them all at once, and only then
/// does the step above offer "Leaving now".
#[component]
pub(super) fn BriefingChecklist(visit_id: VisitId, me: Me, policy: Policy) -> Element {
    let shared = use_shared();
    let mut ticked = use_signal(Vec::<BriefingCheck>::new);
    let error = use_signal(|| None::<String>);
    let required = BriefingCheck::required(&policy);
    let complete = required.iter().all(|check| ticked.read().contains(check));
    let done_class = if complete {
        "step-button main"
    } else {
        "step-button"
    };
    rsx! {
        section { class: "checklist", aria_label: "Before you leave",
            h2 { "Before you leave" }
            for (index, check) in required.into_iter().enumerate() {
                {
                    let on = ticked.read().contains(&check);
                    rsx! {
                        button {
                            key: "{index}",
                            id: "briefing-check-{index}",
                            class: if on { "tick on" } else { "tick" },
                            role: "checkbox",
                            aria_checked: "{on}",
                            aria_label: "{check.label()}",
                            onclick: move |_| {
                                let mut list = ticked.write();
                                if let Some(at) = list.iter().position(|c| *c == check) {
                                    list.remove(at);
                                } else {
                                    list.push(check);
                                }
                            },
                            span { class: "box", aria_hidden: "true", if on { "✓" } }
                            span { "{check.label()}" }
                        }
                    }
                }
            }
            Refusal { id: "briefing-error", error }
            button {
                id: {"briefing-confirm"},
                class: done_class,
                disabled: !complete,
                aria_label: "Record that the briefing checklist is done",
                onclick: move |_| {
                    let command = Command::ConfirmBriefing {
                        staff: me.staff.clone(),
                        ticked: ticked.read().clone(),
                    };
                    shared.record(&visit_id, command, error);
                },
                "Checklist done"
            }
        }
    }
}
