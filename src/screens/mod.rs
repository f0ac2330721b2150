//! The visit screen and its parts. Each part reads the store (through [`crate::store::AppStore`]) and the
//! clock, and each button calls one store function; nothing here touches SQLite.
//!
//! - [`visit`]: the screen itself: a neutral header, the current step with anything not accepted by the
//!   office beside it, and the parts below in visit order.
//! - [`briefing`]: the briefing and its recorded checklist, before leaving.
//! - [`door`]: partners' progress and the wait at the door, with "No answer — cancel".
//! - [`in_visit`]: the running timer and the check-in prompt with "I'm OK".
//! - [`alert`]: the discreet request to reception (the school's code phrase), its delivery and stand-down.
//! - [`leave`]: "I've left" with the PIN pad (normal and duress PINs look the same).
//! - [`late`]: "Running late", a new expected arrival before arriving.
//! - [`cancel`]: cancelling before going in, with the reason and the note the policy requires, and "Not
//!   going ahead (the family cancelled)" before setting off.
//! - [`write_up`]: the write-up and the CPOMS text built from it.
//! - [`pins`]: changing this phone's PINs (its own screen, reached from Today).
//! - [`settings`]: this phone's settings (the loud sound for a late check-in, off unless turned on).
//! - [`setup`]: setting the phone up with the office (address, one-time code, the two PINs), before
//!   anything else; and [`removed`]: what a phone the office revoked says once it has deleted its data.

// Element ids are written `id: {"…"}` rather than as plain literals: a literal would be baked into the
// template, while an expression is announced to the renderer with the element's id, which is how the
// component tests (tests/it/screens.rs) find a button to press. The compiler calls those braces
// unnecessary; here they are the point.
#![allow(unused_braces)]
// Text fields are uncontrolled (no `value:`): each keystroke is copied into a signal by `oninput`, and
// the field keeps its own text. Writing the signal back as `value` dropped and misplaced characters when
// typing quickly in the desktop webview (seen in the screenshots run).

mod alert;
mod briefing;
mod cancel;
mod door;
mod in_visit;
mod late;
mod leave;
mod pins;
mod removed;
mod settings;
mod setup;
mod visit;
mod write_up;

pub(crate) use pins::PinsScreen;
pub(crate) use removed::RemovedScreen;
pub(crate) use settings::SettingsScreen;
pub(crate) use setup::SetUpScreen;
pub(crate) use visit::VisitScreen;

use chrono::{DateTime, Utc};
use dioxus::prelude::*;
use doorstep_core::ids::VisitId;
use doorstep_core::lifecycle::Command;

use crate::app::{office_now, Clock, Screen, Ui};
use crate::store::{ActionError, AppStore};

/// The link back to Today at the top of a screen reached from it; `id` is how the tests find it.
#[component]
pub(super) fn BackToToday(id: &'static str) -> Element {
    let mut ui = use_context::<Ui>();
    rsx! {
        button {
            id: "{id}",
            class: "link",
            aria_label: "Back to Today",
            onclick: move |_| ui.screen.set(Screen::Today),
            "‹ Today"
        }
    }
}

/// A step's panel that opens from a secondary step button (cancelling, not going ahead, running late): its
/// `open` signal, and while it is closed the button alone, which the screen shows instead of the panel.
/// `id` is how the tests find the button, `label` what a screen reader says, `text` what it shows.
pub(super) fn use_step_panel(id: &str, label: &str, text: &str) -> (Signal<bool>, Option<Element>) {
    let open = use_signal(|| false);
    let closed = (!open()).then(|| {
        rsx! {
            Opens {
                id: "{id}",
                class: "step-button secondary",
                label: "{label}",
                text: "{text}",
                open,
            }
        }
    });
    (open, closed)
}

/// A button that only opens a panel (sets `open`): `label` is what a screen reader says, `text` what it
/// shows.
#[component]
pub(super) fn Opens(
    id: String,
    class: &'static str,
    label: String,
    text: String,
    open: Signal<bool>,
) -> Element {
    let mut open = open;
    rsx! {
        button {
            id: "{id}",
            class,
            aria_label: "{label}",
            onclick: move |_| open.set(true),
            "{text}"
        }
    }
}

/// One choice of a radio group, ticked when `on`: `label` is what a screen reader says, `text` what it
/// shows.
#[component]
pub(super) fn Tick(
    id: String,
    on: bool,
    label: String,
    text: String,
    onclick: EventHandler<MouseEvent>,
) -> Element {
    rsx! {
        button {
            id: "{id}",
            class: if on { "tick on" } else { "tick" },
            role: "radio",
            aria_checked: "{on}",
            aria_label: "{label}",
            onclick: move |event| onclick.call(event),
            "{text}"
        }
    }
}

/// A text box under its label, whose every keystroke is copied into `text` (uncontrolled, as said at the
/// top of this module).
#[component]
pub(super) fn TextBox(
    id: &'static str,
    label: &'static str,
    rows: &'static str,
    text: Signal<String>,
) -> Element {
    let mut text = text;
    rsx! {
        label { r#for: "{id}", "{label}" }
        textarea { id: "{id}", rows, oninput: move |event| text.set(event.value()) }
    }
}

/// A tap's refusal in words, while there is one; `id` is how the tests find it.
#[component]
pub(super) fn Refusal(id: &'static str, error: Signal<Option<String>>) -> Element {
    rsx! {
        if let Some(message) = error() {
            p { class: "error", role: "alert", id: "{id}", "{message}" }
        }
    }
}

/// What every part of a screen works with, taken from the app's context in one go: the store its buttons
/// write to, the phone's clock, and the signals that redraw the screens.
#[derive(Clone)]
pub(super) struct Shared {
    pub store: AppStore,
    pub clock: Clock,
    pub ui: Ui,
}

/// The [`Shared`] context, from inside a component (a hook: call it where the other hooks are).
pub(super) fn use_shared() -> Shared {
    Shared {
        store: use_context(),
        clock: use_context(),
        ui: use_context(),
    }
}

/// [`use_shared`] for a part that shows the time passing: it is drawn again on every tick of the app's
/// clock.
pub(super) fn use_ticking() -> Shared {
    let shared = use_shared();
    let _ = shared.ui.tick.read();
    shared
}

impl Shared {
    /// The office's time now, as this phone best knows it.
    pub fn now(&self) -> DateTime<Utc> {
        office_now(&self.store, &self.clock)
    }

    /// Records the step a tap asked for on `visit`, at the phone's clock (see [`Shared::show`]).
    pub fn record(&self, visit: &VisitId, command: Command, error: Signal<Option<String>>) -> bool {
        let outcome = self.store.perform(visit, command, self.clock.now());
        self.show(outcome, error)
    }

    /// Shows what came of a tap: a refusal's words in `error` (cleared when it was recorded), then every
    /// screen redrawn from the store. True when it was recorded, so the caller can close its panel.
    pub fn show<T>(
        &self,
        outcome: Result<T, ActionError>,
        mut error: Signal<Option<String>>,
    ) -> bool {
        let recorded = match outcome {
            Ok(_) => {
                error.set(None);
                true
            }
            Err(refusal) => {
                error.set(Some(refusal.to_string()));
                false
            }
        };
        self.ui.refresh(&self.store);
        recorded
    }
}
