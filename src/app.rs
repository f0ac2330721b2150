//! The screens. Components read the store through [`AppStore`] (given as context) and a few signals, and
//! every button calls one `AppStore` function; nothing here touches the event log or SQLite, and no signal
//! is borrowed across an `.await`.
//!
//! - [`App`]: the root; keeps the status line and a change counter fresh and picks the screen.
//! - `TodayScreen`: who I am, the status line, and today's visits in time order.
//! - `VisitScreen`: one visit's current step (one large button), its briefing, and where my last step
//!   stands with the office.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Local, Offset, TimeZone, Utc};
use dioxus::prelude::*;
use doorstep_core::domain::{Briefing, Visit};
use doorstep_core::event_log::{Delivery, OutboxStatus};
use doorstep_core::ids::{StaffId, VisitId};
use doorstep_core::lifecycle::Command;

use crate::status::{status_line, when};
use crate::steps::{steps_for, Step};
use crate::store::{AppStore, VisitCard};

/// The stylesheet, compiled in so the app needs no asset bundling (plain `cargo run` and phones alike).
pub const MAIN_CSS: &str = include_str!("../assets/main.css");

/// The screens redraw on every write to the store; this tick also catches the day changing under a
/// status line that says "14:02" rather than "3 Dec 14:02".
pub const REFRESH_EVERY: Duration = Duration::from_secs(30);

/// The back link's element id (a formatted attribute, so renderers and tests are told it).
const BACK_ID: &str = "back-to-today-link";

/// The message shown until the office has sent this phone anything.
pub const NO_HOLDINGS: &str =
    "Not yet in touch with the office — your visits will appear after the first sync.";

/// Where the screens get the time and the local offset. The app uses the system clock; tests fix both by
/// providing a `Clock` as root context.
#[derive(Clone)]
pub struct Clock {
    now: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
    offset: Arc<dyn Fn(DateTime<Utc>) -> FixedOffset + Send + Sync>,
}

impl Clock {
    /// The phone's clock and time zone.
    pub fn system() -> Self {
        Self {
            now: Arc::new(Utc::now),
            offset: Arc::new(|at| Local.offset_from_utc_datetime(&at.naive_utc()).fix()),
        }
    }

    /// A clock stopped at `now` in a fixed time zone.
    pub fn fixed(now: DateTime<Utc>, offset: FixedOffset) -> Self {
        Self {
            now: Arc::new(move || now),
            offset: Arc::new(move |_| offset),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        (self.now)()
    }

    /// The local offset in force at `at` (it changes with summer time).
    pub fn offset(&self, at: DateTime<Utc>) -> FixedOffset {
        (self.offset)(at)
    }
}

/// Which screen is showing.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Screen {
    Today,
    Visit(VisitId),
}

/// The app-wide signals, shared as context.
#[derive(Clone, Copy)]
struct Ui {
    screen: Signal<Screen>,
    /// The outbox status, or why it could not be read.
    status: Signal<Result<OutboxStatus, String>>,
    /// The store's revision when last looked at; screens read it so they redraw after any write.
    revision: Signal<u64>,
}

impl Ui {
    /// Looks at the store and updates the signals that changed (setting an unchanged one would redraw).
    fn refresh(mut self, store: &AppStore) {
        let status = store.status().map_err(|error| error.to_string());
        let status_changed = *self.status.peek() != status;
        if status_changed {
            self.status.set(status);
        }
        let revision = store.revision();
        let revision_changed = *self.revision.peek() != revision;
        if revision_changed {
            self.revision.set(revision);
        }
    }
}

/// The root component. Needs an [`AppStore`] as context; a [`Clock`] is optional.
#[component]
pub fn App() -> Element {
    let store = use_context::<AppStore>();
    use_context_provider(|| try_consume_context::<Clock>().unwrap_or_else(Clock::system));
    let ui = use_context_provider(|| Ui {
        screen: Signal::new(Screen::Today),
        status: Signal::new(store.status().map_err(|error| error.to_string())),
        revision: Signal::new(store.revision()),
    });
    use_future(move || {
        let store = store.clone();
        async move {
            let mut changes = store.subscribe();
            loop {
                let subscribed = tokio::select! {
                    changed = changes.changed() => changed.is_ok(),
                    () = tokio::time::sleep(REFRESH_EVERY) => true,
                };
                if !subscribed {
                    // The store is gone (never while the app runs): fall back to the tick alone.
                    tokio::time::sleep(REFRESH_EVERY).await;
                }
                ui.refresh(&store);
            }
        }
    });
    let screen = ui.screen.read().clone();
    let body = match screen {
        Screen::Today => rsx! { TodayScreen {} },
        Screen::Visit(visit_id) => rsx! { VisitScreen { visit_id } },
    };
    rsx! {
        style { {MAIN_CSS} }
        div { class: "app", {body} }
    }
}

/// One row of the Today list, already worded.
#[derive(Debug, Clone, PartialEq, Eq)]
struct VisitRowView {
    id: VisitId,
    time: String,
    purpose: &'static str,
    area: String,
    partners: String,
    /// The phase, unless `awaiting` says more.
    phase: Option<&'static str>,
    awaiting: Option<String>,
}

#[component]
fn TodayScreen() -> Element {
    let store = use_context::<AppStore>();
    let clock = use_context::<Clock>();
    let ui = use_context::<Ui>();
    let _ = ui.revision.read();
    let now = clock.now();
    let offset = clock.offset(now);

    let me = store.me();
    let (name, school) = match &me {
        Ok(Some(me)) => (me.name.clone(), me.school_name.clone()),
        _ => (String::new(), String::new()),
    };
    let me_id = me
        .as_ref()
        .ok()
        .and_then(Option::as_ref)
        .map(|me| me.staff.clone());
    let rows: Result<Vec<VisitRowView>, String> = store
        .today(now)
        .map(|cards| {
            cards
                .iter()
                .map(|card| row_view(card, me_id.as_ref(), now, offset))
                .collect()
        })
        .map_err(|error| error.to_string());
    let content = match (me, rows) {
        (Err(error), _) => cannot_read(&error.to_string()),
        (_, Err(error)) => cannot_read(&error),
        (Ok(None), _) => rsx! { p { class: "empty", id: "no-holdings", "{NO_HOLDINGS}" } },
        (Ok(Some(_)), Ok(rows)) if rows.is_empty() => {
            rsx! { p { class: "empty", "No visits planned for you." } }
        }
        (Ok(Some(_)), Ok(rows)) => rsx! {
            ul { class: "visits", aria_label: "Today's visits",
                for row in rows {
                    VisitRow { key: "{row.id}", row }
                }
            }
        },
    };

    rsx! {
        header { class: "top",
            if !school.is_empty() {
                p { class: "school", "{school}" }
            }
            h1 { "Today" }
            if !name.is_empty() {
                p { class: "who", "{name}" }
            }
            StatusLine {}
        }
        main { class: "today", {content} }
    }
}

/// The status line, kept fresh by [`App`]'s refresh.
#[component]
fn StatusLine() -> Element {
    let clock = use_context::<Clock>();
    let ui = use_context::<Ui>();
    let now = clock.now();
    let (text, class) = match &*ui.status.read() {
        Ok(status) => {
            let class = if status.failing_since.is_some() || status.refused > 0 {
                "status trouble"
            } else if status.waiting > 0 || status.last_success_at.is_none() {
                "status pending"
            } else {
                "status ok"
            };
            (status_line(status, now, clock.offset(now)), class)
        }
        Err(error) => (
            format!("Cannot read this phone's outbox: {error}"),
            "status trouble",
        ),
    };
    rsx! {
        p { class, role: "status", aria_live: "polite", "{text}" }
    }
}

fn cannot_read(error: &str) -> Element {
    rsx! { p { class: "error", role: "alert", "This phone could not read its visits: {error}" } }
}

#[component]
fn VisitRow(row: VisitRowView) -> Element {
    let mut ui = use_context::<Ui>();
    let open = row.id.clone();
    let element_id = format!("visit-{}", row.id);
    let label = format!(
        "Open the visit at {}: {}, {}",
        row.time, row.purpose, row.area
    );
    rsx! {
        li {
            button {
                class: "visit-row",
                id: "{element_id}",
                aria_label: "{label}",
                onclick: move |_| ui.screen.set(Screen::Visit(open.clone())),
                span { class: "time", "{row.time}" }
                span { class: "purpose", "{row.purpose}" }
                span { class: "where", "{row.area} · {row.partners}" }
                if let Some(phase) = row.phase {
                    span { class: "phase", "{phase}" }
                }
                if let Some(awaiting) = &row.awaiting {
                    span { class: "awaiting", "{awaiting}" }
                }
            }
        }
    }
}

fn row_view(
    card: &VisitCard,
    me: Option<&StaffId>,
    now: DateTime<Utc>,
    offset: FixedOffset,
) -> VisitRowView {
    VisitRowView {
        id: card.visit.id.clone(),
        time: when(card.visit.agreed_time, now, offset),
        purpose: card.visit.purpose.label(),
        area: postcode_district(&card.visit.address.postcode),
        partners: partners_text(&card.visit, me),
        phase: card
            .awaiting_authorisation_by
            .is_none()
            .then(|| card.phase().label()),
        awaiting: card
            .awaiting_authorisation_by
            .map(|role| format!("Awaiting authorisation by {}", role.label())),
    }
}

/// "with Sam Jones", "with Sam and Jo", or "alone".
fn partners_text(visit: &Visit, me: Option<&StaffId>) -> String {
    let names: Vec<&str> = visit
        .staff
        .iter()
        .filter(|s| Some(&s.id) != me)
        .map(|s| s.name.as_str())
        .collect();
    match names.as_slice() {
        [] => "alone".to_owned(),
        [one] => format!("with {one}"),
        [rest @ .., last] => format!("with {} and {last}", rest.join(", ")),
    }
}

/// The postcode district (the outward code, e.g. "LS6" from "LS6 2AB"): enough to say where, without the
/// street, for a list that may be seen over a shoulder.
pub fn postcode_district(postcode: &str) -> String {
    let compact: String = postcode
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_uppercase();
    match postcode.split_whitespace().collect::<Vec<_>>().as_slice() {
        [outward, _inward] => outward.to_uppercase(),
        // Without a space the inward code is always the last three characters.
        _ if compact.chars().count() > 3 => {
            compact.chars().take(compact.chars().count() - 3).collect()
        }
        _ => compact,
    }
}

#[component]
fn VisitScreen(visit_id: VisitId) -> Element {
    let store = use_context::<AppStore>();
    let clock = use_context::<Clock>();
    let mut ui = use_context::<Ui>();
    let error = use_signal(|| None::<String>);
    let _ = ui.revision.read();
    let now = clock.now();
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
            StatusLine {}
        }
    };
    let (me, card) = match (store.me(), store.visit(&visit_id)) {
        (Ok(Some(me)), Ok(Some(card))) => (me, card),
        (Err(error), _) | (_, Err(error)) => {
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

    let steps = steps_for(&card, &me.staff, now);
    let last_step = match store.own_events(&visit_id) {
        Ok(events) => events.last().map(|(event, delivery)| {
            format!(
                "Your last step, {} at {}: {}",
                event.event.summary(),
                when(event.recorded_at, now, offset),
                delivery_label(delivery)
            )
        }),
        Err(error) => Some(format!("Cannot read this visit's events: {error}")),
    };
    let visit = &card.visit;
    let time = when(visit.agreed_time, now, offset);
    let ends = when(visit.expected_end(), now, offset);
    let area = postcode_district(&visit.address.postcode);
    let partners = partners_text(visit, Some(&me.staff));
    let phase = card.phase().label();
    let main_button = steps
        .main
        .map(|step| (step, step.command(&card, &me.staff)));
    let other_buttons: Vec<(Step, Command)> = steps
        .others
        .iter()
        .map(|&step| (step, step.command(&card, &me.staff)))
        .collect();

    rsx! {
        {back}
        header { class: "visit-head",
            h1 { "{visit.purpose.label()}" }
            p { class: "when", "{time}–{ends} · {area} · {partners}" }
            p { class: "phase", id: "visit-phase", "{phase}" }
        }
        section { class: "step", aria_label: "Next step",
            if let Some(notice) = &steps.notice {
                p { class: "notice", id: "step-notice", "{notice}" }
            }
            if let Some(message) = error() {
                p { class: "error", role: "alert", id: "step-error", "{message}" }
            }
            if let Some((step, command)) = main_button {
                StepButton { visit_id: visit_id.clone(), step, command, main: true, error }
            }
            for (step, command) in other_buttons {
                StepButton { key: "{step.element_id()}", visit_id: visit_id.clone(), step, command, main: false, error }
            }
            if let Some(last) = last_step {
                p { class: "delivery", role: "status", id: "last-step", "{last}" }
            }
        }
        BriefingView { briefing: visit.briefing.clone(), pupil: visit.pupil.name.clone(), address: visit.address.one_line() }
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

fn delivery_label(delivery: &Delivery) -> String {
    match delivery {
        Delivery::Waiting { attempts: 0 } => "Waiting to send".to_owned(),
        Delivery::Waiting { .. } => "Sent, not yet confirmed".to_owned(),
        Delivery::Confirmed { .. } => "Office confirmed".to_owned(),
        Delivery::Refused { reason } => format!("Refused by the office: {reason}"),
    }
}

#[component]
fn BriefingView(briefing: Briefing, pupil: String, address: String) -> Element {
    let assessment = briefing.risk_assessment().clone();
    rsx! {
        section { class: "briefing", aria_label: "Briefing",
            h2 { "Briefing" }
            dl {
                dt { "Address" }
                dd { "{address}" }
                dt { "Pupil" }
                dd { "{pupil}" }
                if !briefing.pupil_needs.is_empty() {
                    dt { "Needs" }
                    dd { "{briefing.pupil_needs}" }
                }
                if !briefing.family.is_empty() {
                    dt { "Family" }
                    dd { "{briefing.family}" }
                }
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
                if !briefing.area.is_empty() {
                    dt { "Area" }
                    dd { "{briefing.area}" }
                }
                if !briefing.parking.is_empty() {
                    dt { "Parking" }
                    dd { "{briefing.parking}" }
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_area_is_the_postcode_district() {
        let cases = [
            ("LS6 2AB", "LS6"),
            ("ls6 2ab", "LS6"),
            ("SW1A 1AA", "SW1A"),
            ("SW1A1AA", "SW1A"),
            ("M1 1AE", "M1"),
            ("M11AE", "M1"),
            ("  B33 8TH ", "B33"),
            ("", ""),
            ("AB", "AB"),
        ];
        for (postcode, district) in cases {
            assert_eq!(postcode_district(postcode), district, "{postcode:?}");
        }
    }

    #[test]
    fn deliveries_are_worded_honestly() {
        assert_eq!(
            delivery_label(&Delivery::Waiting { attempts: 0 }),
            "Waiting to send"
        );
        assert_eq!(
            delivery_label(&Delivery::Waiting { attempts: 2 }),
            "Sent, not yet confirmed"
        );
        assert_eq!(
            delivery_label(&Delivery::Confirmed { at: Utc::now() }),
            "Office confirmed"
        );
        assert_eq!(
            delivery_label(&Delivery::Refused {
                reason: "unknown visit".into()
            }),
            "Refused by the office: unknown visit"
        );
    }
}
