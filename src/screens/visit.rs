//! The visit screen: a neutral header (the time and the pupil's first name), the current step (one large
//! button) with anything the office will not honour shown loudly beside it, and below it the parts that
//! apply now, in the order a visit goes: briefing and checklist, running late, partners and the wait at
//! the door, the timer and check-in prompt, leaving with the PIN, the discreet request (set apart), not
//! going ahead or cancelling, the write-up. From the door on, the briefing is folded away behind one
//! "Briefing" control.

use std::collections::HashSet;

use dioxus::prelude::*;
use doorstep_core::ids::{EventId, VisitId};
use doorstep_core::lifecycle::{Command, Phase, StaffProgress, VisitEvent};

use super::alert::DiscreetRequest;
use super::briefing::{BriefingChecklist, BriefingView};
use super::cancel::{CancelPanel, NotGoingAhead};
use super::door::{DoorWaitView, Partners};
use super::in_visit::InVisit;
use super::late::RunningLate;
use super::leave::LeavePad;
use super::write_up::{CpomsSummary, WriteUpForm};
use super::{BackToToday, Opens, Refusal};
use crate::app::{delivery_label, office_now, partners_text, Clock, StatusLine, Ui};
use crate::notices::{first_name, not_accepted, running_late};
use crate::status::when;
use crate::steps::{
    may_cancel_at_the_door, may_run_late, may_say_not_going_ahead, steps_for, Step,
};
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
    let leaving = use_signal(|| false);
    // The briefing, once folded away at the door, opens only on a tap.
    let mut briefing_open = use_signal(|| false);
    let _ = ui.revision.read();
    let now = office_now(&store, &clock);
    let offset = clock.offset(now);

    let back = rsx! {
        nav { class: "back",
            BackToToday { id: BACK_ID }
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
    let area = visit.address.postcode.district();
    let partners = partners_text(visit, Some(&me.staff));
    // Neutral, for a screen a family may see: the time and the pupil's first name, never the purpose.
    let heading = format!("{time} · {}", first_name(&visit.pupil.name));
    let phase = discreet_phase(state);
    let progress = state
        .progress(&me.staff)
        .unwrap_or(StaffProgress::NotStarted);
    let not_started = progress == StaffProgress::NotStarted;
    let written = state.written_up_at.is_some();
    // Written up, and nothing left for me to do: a partner's write-up does not end my visit.
    let finished = written && (state.cancelled.is_some() || !progress.is_out());
    let over = matches!(phase, Phase::Left | Phase::Cancelled { .. });
    let my_part_ended = state.part_ended(&me.staff).is_some();
    let open = state.authorised.is_some() && !written && state.cancelled.is_none();
    let briefing_changed = not_started && card.briefing_changed_since_read(&me.staff);
    let show_checklist = open
        && not_started
        && !my_part_ended
        && (!state.briefing_read.contains_key(&me.staff) || briefing_changed);
    let show_late = !leaving() && may_run_late(&card, &me.staff, now);
    let show_not_going_ahead = may_say_not_going_ahead(&card, &me.staff, now);
    let show_cancel = may_cancel_at_the_door(&card, &me.staff);
    let show_request = !not_started && !finished;
    // At the door and after, the briefing folds away: the family may see the screen.
    let fold_briefing = !matches!(
        progress,
        StaffProgress::NotStarted | StaffProgress::Departed { .. }
    );
    // Once I am out; before that, only if a partner vouched for me (my phone is then still awaited).
    let vouched_for_me =
        state.vouched_by.contains_key(&me.staff) || state.vouch_pending.contains_key(&me.staff);
    let show_partners = !over && !finished && (!not_started || vouched_for_me);
    let main_button = steps.main.filter(|_| !leaving());
    let other_buttons: Vec<(Step, Command)> = steps
        .others
        .iter()
        .filter(|&&step| step != Step::ImOk && !leaving())
        .map(|&step| (step, step.command(&card, &me.staff)))
        .collect();
    let own_ids: HashSet<EventId> = store
        .own_events(&visit_id)
        .map(|events| {
            events
                .into_iter()
                .map(|(envelope, _)| envelope.id)
                .collect()
        })
        .unwrap_or_default();
    let not_accepted = not_accepted(&card, &me.staff, &own_ids, now, offset);
    let late_lines = running_late(&card, &me.staff, now, offset);
    let changed_text = briefing_changed.then(|| match &card.briefing_changed {
        Some((by, at)) => format!(
            "The office changed the briefing at {} (by {by}). Read it again and tick the checklist before you leave.",
            when(*at, now, offset)
        ),
        None => "The office changed the briefing. Read it again and tick the checklist before you leave."
            .to_owned(),
    });
    let briefing = rsx! {
        BriefingView {
            briefing: visit.briefing.clone(),
            purpose: visit.purpose.label(),
            pupil: visit.pupil.name.clone(),
            address: visit.address.one_line(),
        }
    };

    rsx! {
        {back}
        header { class: "visit-head",
            h1 { id: {"visit-heading"}, "{heading}" }
            p { class: "when", "{time}–{ends} · {area} · {partners}" }
            p { class: "phase", id: {"visit-phase"}, "{phase.label()}" }
        }
        section { class: "step", aria_label: "Next step",
            // Loud, and beside the steps, but never in their way.
            for (index, line) in not_accepted.iter().enumerate() {
                p { key: "{index}", class: "not-accepted", role: "alert", id: "not-accepted-{index}", "{line.text}" }
            }
            for (index, line) in late_lines.iter().enumerate() {
                p { key: "{index}", class: "late-line", id: "running-late-{index}", "{line}" }
            }
            if let Some(notice) = &steps.notice {
                p { class: "notice", id: {"step-notice"}, "{notice}" }
            }
            Refusal { id: "step-error", error }
            if let Some(step) = main_button {
                if step == Step::IveLeft {
                    Opens {
                        id: "{step.element_id()}",
                        class: "step-button main biggest",
                        label: "{step.description()}",
                        text: "{step.label()}",
                        open: leaving,
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
            if show_late {
                RunningLate { card: card.clone(), me: me.clone() }
            }
            if let Some(last) = last_step {
                p { class: "delivery", role: "status", id: {"last-step"}, "{last}" }
            }
        }
        if show_partners {
            Partners { card: card.clone(), me: me.clone() }
        }
        DoorWaitView { card: card.clone(), me: me.clone(), policy: policy.clone() }
        InVisit { card: card.clone(), me: me.clone(), policy: policy.clone() }
        if (over || my_part_ended || matches!(progress, StaffProgress::Left { .. })) && !written {
            WriteUpForm { card: card.clone(), me: me.clone() }
        }
        if finished {
            CpomsSummary { card: card.clone() }
        }
        if show_checklist {
            if let Some(changed) = changed_text {
                p { class: "notice changed", role: "status", id: {"briefing-changed"}, "{changed}" }
            }
            {briefing.clone()}
            BriefingChecklist { visit_id: visit_id.clone(), me: me.clone(), policy: policy.clone() }
        }
        if show_not_going_ahead {
            NotGoingAhead { visit_id: visit_id.clone(), me: me.clone() }
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
            if fold_briefing && !briefing_open() {
                button {
                    id: {"briefing-toggle"},
                    class: "link briefing-toggle",
                    aria_expanded: "false",
                    aria_label: "Briefing",
                    onclick: move |_| briefing_open.set(true),
                    "Briefing ›"
                }
            } else {
                if fold_briefing {
                    button {
                        id: {"briefing-toggle"},
                        class: "link briefing-toggle",
                        aria_expanded: "true",
                        aria_label: "Fold the briefing away",
                        onclick: move |_| briefing_open.set(false),
                        "Fold the briefing away"
                    }
                }
                {briefing}
            }
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
