//! The visit screen: the header, the current step (one large button), and below it the parts that apply
//! now, in the order a visit goes: briefing and checklist, partners and the wait at the door, the timer and
//! check-in prompt, leaving with the PIN, the discreet request (set apart), cancelling, the write-up.

use dioxus::prelude::*;
use doorstep_core::ids::VisitId;
use doorstep_core::lifecycle::{Command, Phase, StaffProgress, VisitEvent};

use super::alert::DiscreetRequest;
use super::briefing::{BriefingChecklist, BriefingView};
use super::cancel::CancelPanel;
use super::door::{DoorWaitView, Partners};
use super::in_visit::InVisit;
use super::leave::LeavePad;
use super::write_up::{CpomsSummary, WriteUpForm};
use crate::app::{
    delivery_label, office_now, partners_text, postcode_district, Clock, Screen, StatusLine, Ui,
};
use crate::status::when;
use crate::steps::{steps_for, Step};
use crate::store::AppStore;
use crate::timing::discreet_phase;

/// The back link's element id (a formatted attribute, so renderers and tests are told it).
const BACK_ID: &str = "back-to-today-link";

#[component]
pub(crate) fn VisitScreen(visit_id: VisitId) -> Element {
    let store = use_context::<AppStore>();
    let clock = use_context::<Clock>();
    let mut ui = use_context::<Ui>();
    let error = use_signal(|| None::<String>);
    let mut leaving = use_signal(|| false);
    let _ = ui.revision.read();
    let now = office_now(&store, &clock);
    let offset = clock.offset(now);

    let back = rsx! {
        nav { class: "back",
            button {
                id: "{BACK_ID}",
                class: "link",
                aria_label: "Back to Today",
                onclick: move |_| ui.screen.set(Screen::Today),
                "‹ Today"
            }
            button {
                id: {"hide-screen"},
                class: "link hide",
                aria_label: "Hide the screen",
                onclick: move |_| ui.hidden.set(true),
                "Hide"
            }
        }
        StatusLine {}
    };
    let (me, card, policy) = match (store.me(), store.visit(&visit_id), store.policy()) {
        (Ok(Some(me)), Ok(Some(card)), Ok(Some(policy))) => (me, card, policy),
        (Err(error), _, _) | (_, Err(error), _) | (_, _, Err(error)) => {
            return rsx! {
                {back}
                p { class: "error", role: "alert", "This phone could not read the visit: {error}" }
            };
        }
        _ => {
            return rsx! {
                {back}
                p { class: "empty", "This visit is no longer on this phone." }
            };
        }
    };

    let state = &card.state;
    let steps = steps_for(&card, &me.staff, now);
    let last_step = match store.own_steps(&visit_id) {
        // Alerts are left out: the request shows its own standing, and the duress PIN's must not show.
        Ok(steps) => steps
            .iter()
            .rev()
            .find(|step| {
                !matches!(
                    step.envelope.event,
                    VisitEvent::DuressRaised { .. } | VisitEvent::DuressStoodDown { .. }
                )
            })
            .map(|step| {
                format!(
                    "Your last step, {} at {}: {}",
                    step.envelope.event.summary(),
                    when(step.at, now, offset),
                    delivery_label(&step.delivery)
                )
            }),
        Err(error) => Some(format!("Cannot read this visit's events: {error}")),
    };
    let visit = &card.visit;
    let time = when(visit.agreed_time, now, offset);
    let ends = when(visit.expected_end(), now, offset);
    let area = postcode_district(&visit.address.postcode);
    let partners = partners_text(visit, Some(&me.staff));
    let phase = discreet_phase(state);
    let progress = state
        .progress(&me.staff)
        .unwrap_or(StaffProgress::NotStarted);
    let not_started = progress == StaffProgress::NotStarted;
    let written = state.written_up_at.is_some();
    // Written up, and nothing left for me to do: a partner's write-up does not end my visit.
    let finished = written && (state.cancelled.is_some() || !progress.is_out());
    let cancelled = state.cancelled.is_some();
    let over = matches!(phase, Phase::Left | Phase::Cancelled { .. });
    let open = card.awaiting_authorisation_by.is_none() && !written && !cancelled;
    let show_checklist = open && not_started && !state.briefing_read.contains_key(&me.staff);
    let show_cancel = open && state.started_at.is_none();
    let show_request = !not_started && !finished;
    let main_button = steps.main.filter(|_| !leaving());
    let other_buttons: Vec<(Step, Command)> = steps
        .others
        .iter()
        .filter(|&&step| step != Step::ImOk && !leaving())
        .map(|&step| (step, step.command(&card, &me.staff)))
        .collect();
    let briefing = rsx! {
        BriefingView { briefing: visit.briefing.clone(), pupil: visit.pupil.name.clone(), address: visit.address.one_line() }
    };

    rsx! {
        {back}
        header { class: "visit-head",
            h1 { "{visit.purpose.label()}" }
            p { class: "when", "{time}–{ends} · {area} · {partners}" }
            p { class: "phase", id: {"visit-phase"}, "{phase.label()}" }
        }
        section { class: "step", aria_label: "Next step",
            if let Some(notice) = &steps.notice {
                p { class: "notice", id: {"step-notice"}, "{notice}" }
            }
            if let Some(message) = error() {
                p { class: "error", role: "alert", id: {"step-error"}, "{message}" }
            }
            if let Some(step) = main_button {
                if step == Step::IveLeft {
                    button {
                        id: "{step.element_id()}",
                        class: "step-button main biggest",
                        aria_label: "{step.description()}",
                        onclick: move |_| leaving.set(true),
                        "{step.label()}"
                    }
                } else {
                    StepButton { visit_id: visit_id.clone(), step, command: step.command(&card, &me.staff), main: true, error }
                }
            }
            if leaving() {
                LeavePad { visit_id: visit_id.clone(), me: me.clone(), open: leaving }
            }
            for (step, command) in other_buttons {
                StepButton { key: "{step.element_id()}", visit_id: visit_id.clone(), step, command, main: false, error }
            }
            if let Some(last) = last_step {
                p { class: "delivery", role: "status", id: {"last-step"}, "{last}" }
            }
        }
        if !not_started && !over && !finished {
            Partners { card: card.clone(), me: me.clone() }
        }
        DoorWaitView { card: card.clone(), me: me.clone(), policy: policy.clone() }
        InVisit { card: card.clone(), me: me.clone(), policy: policy.clone() }
        if (over || matches!(progress, StaffProgress::Left { .. })) && !written {
            WriteUpForm { card: card.clone(), me: me.clone() }
        }
        if finished {
            CpomsSummary { card: card.clone() }
        }
        if show_checklist {
            {briefing.clone()}
            BriefingChecklist { visit_id: visit_id.clone(), me: me.clone() }
        }
        if show_cancel {
            CancelPanel { visit_id: visit_id.clone(), me: me.clone() }
        }
        if show_request {
            // Set apart from every other button (see `alert.rs` for why).
            div { class: "apart",
                DiscreetRequest { card: card.clone(), me: me.clone(), policy: policy.clone() }
            }
        }
        if !show_checklist {
            {briefing}
        }
    }
}

/// A step's button. Pressing it records the step (on disk before this returns) and redraws at once.
#[component]
fn StepButton(
    visit_id: VisitId,
    step: Step,
    command: Command,
    main: bool,
    error: Signal<Option<String>>,
) -> Element {
    let store = use_context::<AppStore>();
    let clock = use_context::<Clock>();
    let ui = use_context::<Ui>();
    let class = if main {
        "step-button main"
    } else {
        "step-button"
    };
    rsx! {
        button {
            class,
            id: "{step.element_id()}",
            aria_label: "{step.description()}",
            onclick: move |_| {
                match store.perform(&visit_id, command.clone(), clock.now()) {
                    Ok(_) => error.set(None),
                    Err(refusal) => {
                        tracing::info!(%refusal, "action not recorded");
                        error.set(Some(refusal.to_string()));
                    }
                }
                ui.refresh(&store);
            },
            "{step.label()}"
        }
    }
}
