//! The screens. Components read the store through [`AppStore`] (given as context) and a few signals, and
//! every button calls one `AppStore` function; nothing here touches the event log or SQLite, and no signal
//! is borrowed across an `.await`.
//!
//! - [`App`]: the root; keeps the status line and a change counter fresh and picks the screen.
//! - `TodayScreen`: who I am, the status line, and today's visits in time order.
//! - [`crate::screens`]: the visit screen and its parts (briefing, door, in the visit, the discreet
//!   request, leaving, cancelling, the write-up).
//! - While hidden (the "Hide" button), a plain neutral screen stands in for everything.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Local, Offset, TimeZone, Utc};
use dioxus::prelude::*;
use doorstep_core::domain::{SchoolTimeZone, Visit};
use doorstep_core::event_log::{Delivery, OutboxStatus};
use doorstep_core::ids::{StaffId, VisitId};
use doorstep_core::lifecycle::{DuressVia, VisitEvent};
use tokio::sync::Notify;

use crate::platform::{Platform, SharedPlatform};
use crate::prompts::{check_in_prompts, visits_out_on, Announcer};
use crate::screens::{PinsScreen, RemovedScreen, SettingsScreen, VisitScreen};
use crate::status::{out_of_touch_note, status_line, when};
use crate::store::{AppStore, VisitCard};
use crate::timing::discreet_phase;

/// The stylesheet, compiled in so the app needs no asset bundling (plain `cargo run` and phones alike).
pub const MAIN_CSS: &str = include_str!("../assets/main.css");

/// The screens redraw on every write to the store; this tick also catches the day changing under a
/// status line that says "14:02" rather than "3 Dec 14:02".
pub const REFRESH_EVERY: Duration = Duration::from_secs(30);

/// The hidden screen's element id (formatted, so renderers and tests are told it).
const UNHIDE_ID: &str = "unhide";

/// How often clock-driven parts (timers, countdowns, the check-in prompt) redraw.
pub const TICK_EVERY: Duration = Duration::from_secs(1);

/// The message shown until the office has sent this phone anything.
pub const NO_HOLDINGS: &str =
    "Not yet in touch with the office — your visits will appear after the first sync.";

/// Where the screens get the time and the local offset. The app uses the system clock; tests fix both by
/// providing a `Clock` as root context. Once the office has said which time zone the school is in, every
/// time on screen is on the school's clock, whatever zone the phone itself is set to.
#[derive(Clone)]
pub struct Clock {
    now: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
    /// The phone's own offset: used only until the office has sent the school's time zone.
    offset: Arc<dyn Fn(DateTime<Utc>) -> FixedOffset + Send + Sync>,
    school_zone: Arc<Mutex<Option<SchoolTimeZone>>>,
    /// Woken when a manual clock is moved, so the screens redraw at once instead of at the next tick.
    moved: Arc<Notify>,
}

/// The hand of a [`Clock::manual`] clock: tests move it and the screens follow.
#[derive(Clone)]
pub struct ClockHand {
    now: Arc<Mutex<DateTime<Utc>>>,
    moved: Arc<Notify>,
}

impl ClockHand {
    pub fn set(&self, now: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) = now;
        self.moved.notify_one();
    }
}

impl Clock {
    /// The phone's clock and time zone.
    pub fn system() -> Self {
        Self {
            now: Arc::new(Utc::now),
            offset: Arc::new(|at| Local.offset_from_utc_datetime(&at.naive_utc()).fix()),
            moved: Arc::new(Notify::new()),
            school_zone: Arc::default(),
        }
    }

    /// A clock stopped at `now` in a fixed time zone.
    pub fn fixed(now: DateTime<Utc>, offset: FixedOffset) -> Self {
        Self {
            now: Arc::new(move || now),
            offset: Arc::new(move |_| offset),
            moved: Arc::new(Notify::new()),
            school_zone: Arc::default(),
        }
    }

    /// A clock that stays where its hand puts it.
    pub fn manual(start: DateTime<Utc>, offset: FixedOffset) -> (Self, ClockHand) {
        let hand = ClockHand {
            now: Arc::new(Mutex::new(start)),
            moved: Arc::new(Notify::new()),
        };
        let reading = hand.now.clone();
        let clock = Self {
            now: Arc::new(move || *reading.lock().unwrap_or_else(PoisonError::into_inner)),
            offset: Arc::new(move |_| offset),
            moved: hand.moved.clone(),
            school_zone: Arc::default(),
        };
        (clock, hand)
    }

    /// Waits until the next tick, or until a manual clock is moved.
    async fn next_tick(&self) {
        tokio::select! {
            () = tokio::time::sleep(TICK_EVERY) => {}
            () = self.moved.notified() => {}
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        (self.now)()
    }

    /// The school's offset in force at `at` (it changes with summer time), or the phone's own before the
    /// office has sent the school's time zone.
    pub fn offset(&self, at: DateTime<Utc>) -> FixedOffset {
        match *self
            .school_zone
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
        {
            Some(zone) => zone.local(at).offset().fix(),
            None => (self.offset)(at),
        }
    }

    /// Shows every time on the school's clock from now on (the office sends it with the school).
    pub fn follow_school(&self, zone: SchoolTimeZone) {
        *self
            .school_zone
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(zone);
    }
}

/// Which screen is showing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Screen {
    Today,
    Visit(VisitId),
    /// Changing this phone's PINs.
    Pins,
    /// This phone's settings (check-in prompts).
    Settings,
}

/// The app-wide signals, shared as context.
#[derive(Clone, Copy)]
pub(crate) struct Ui {
    pub(crate) screen: Signal<Screen>,
    /// The outbox status, or why it could not be read.
    pub(crate) status: Signal<Result<OutboxStatus, String>>,
    /// The store's revision when last looked at; screens read it so they redraw after any write.
    pub(crate) revision: Signal<u64>,
    /// Counts clock ticks; the clock-driven parts read it so they redraw every second.
    pub(crate) tick: Signal<u64>,
    /// The screen is blanked by "Hide" until tapped again.
    pub(crate) hidden: Signal<bool>,
}

/// The outbox status as the screens show it. An alert raised by the duress PIN is left out of the count:
/// the person who typed it must see exactly what the normal PIN shows, and it is sent first anyway.
fn screen_status(store: &AppStore) -> Result<OutboxStatus, String> {
    let mut status = store.status().map_err(|error| error.to_string())?;
    let silent = store
        .waiting()
        .map_err(|error| error.to_string())?
        .iter()
        .filter(|envelope| {
            matches!(
                envelope.event,
                VisitEvent::DuressRaised {
                    via: DuressVia::DuressPin,
                    ..
                }
            )
        })
        .count();
    status.waiting = status.waiting.saturating_sub(silent as u64);
    Ok(status)
}

impl Ui {
    /// Looks at the store and updates the signals that changed (setting an unchanged one would redraw).
    pub(crate) fn refresh(mut self, store: &AppStore) {
        let status = screen_status(store);
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

/// The office's time now (this phone's clock corrected by its measured offset): what the screens show and
/// decide by. Store calls take the phone's own reading, `clock.now()`.
pub(crate) fn office_now(store: &AppStore, clock: &Clock) -> DateTime<Utc> {
    store.office_time(clock.now())
}

/// Hands this moment's check-in prompts and the visits I am out on to the phone's platform. `now` is this
/// phone's clock.
fn announce(
    store: &AppStore,
    announcer: &mut Announcer,
    platform: &dyn Platform,
    now: DateTime<Utc>,
) {
    let (Ok(Some(me)), Ok(Some(policy)), Ok(cards)) =
        (store.me(), store.policy(), store.today(now))
    else {
        return;
    };
    announcer.step(
        &check_in_prompts(&cards, &me.staff, &policy, store.office_time(now)),
        &visits_out_on(
            &cards,
            &me.staff,
            &policy,
            &store.office_clock().unwrap_or_default(),
        ),
        platform,
        store.phone_settings().sound_for_late_check_in,
    );
}

/// The element id of Today's link to the PIN settings.
const PINS_LINK_ID: &str = "today-pins-link";
/// The element id of Today's link to this phone's settings.
const SETTINGS_LINK_ID: &str = "today-settings-link";

/// The root component. Needs an [`AppStore`] as context; a [`Clock`] is optional.
#[component]
pub fn App() -> Element {
    let store = use_context::<AppStore>();
    let clock =
        use_context_provider(|| try_consume_context::<Clock>().unwrap_or_else(Clock::system));
    let mut ui = use_context_provider(|| Ui {
        screen: Signal::new(Screen::Today),
        status: Signal::new(screen_status(&store)),
        revision: Signal::new(store.revision()),
        tick: Signal::new(0),
        hidden: Signal::new(false),
    });
    let ticking = store.clone();
    let watching = store.clone();
    let (zone_store, zone_clock) = (store.clone(), clock.clone());
    let store_removed = move || watching.removed();
    let platform = try_consume_context::<SharedPlatform>();
    use_future(move || {
        let store = ticking.clone();
        let clock = clock.clone();
        let platform = platform.clone();
        async move {
            let mut announcer = Announcer::default();
            loop {
                clock.next_tick().await;
                // The miss goes in the record once per due time, whichever screen is showing.
                if let Err(error) = store.record_missed_check_ins(clock.now()) {
                    tracing::warn!(%error, "could not record a missed check-in");
                }
                // A phone out of touch for the policy's number of days deletes its briefings.
                if let Err(error) = store.forget_briefings_if_out_of_touch(clock.now()) {
                    tracing::warn!(%error, "could not check how long the phone was out of touch");
                }
                if let Some(platform) = &platform {
                    announce(&store, &mut announcer, platform.as_ref(), clock.now());
                }
                let tick = *ui.tick.peek() + 1;
                ui.tick.set(tick);
            }
        }
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
    let _ = ui.revision.read();
    // The school's time zone arrives with the holdings; from then on the screens read the school's clock.
    match zone_store.school_time_zone() {
        Ok(Some(zone)) => zone_clock.follow_school(zone),
        Ok(None) => {}
        Err(error) => tracing::warn!(%error, "could not read the school's time zone"),
    }
    if let Some((at, reason)) = store_removed() {
        return rsx! {
            style { {MAIN_CSS} }
            div { class: "app", RemovedScreen { at, reason } }
        };
    }
    if *ui.hidden.read() {
        // Plain and neutral: nothing about a visit, a school or a child, for a screen seen over a shoulder.
        return rsx! {
            style { {MAIN_CSS} }
            button {
                id: "{UNHIDE_ID}",
                class: "hidden-screen",
                aria_label: "Show the app again",
                onclick: move |_| ui.hidden.set(false),
                "Tap to continue"
            }
        };
    }
    let screen = ui.screen.read().clone();
    let body = match screen {
        Screen::Today => rsx! { TodayScreen {} },
        Screen::Visit(visit_id) => rsx! { VisitScreen { visit_id } },
        Screen::Pins => rsx! { PinsScreen {} },
        Screen::Settings => rsx! { SettingsScreen {} },
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
    let mut ui = use_context::<Ui>();
    let _ = ui.revision.read();
    let now = office_now(&store, &clock);
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
        .today(clock.now())
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
        footer { class: "settings",
            button {
                id: "{PINS_LINK_ID}",
                class: "link",
                aria_label: "Change my PINs",
                onclick: move |_| ui.screen.set(Screen::Pins),
                "Change my PINs"
            }
            button {
                id: "{SETTINGS_LINK_ID}",
                class: "link",
                aria_label: "Check-in prompt settings",
                onclick: move |_| ui.screen.set(Screen::Settings),
                "Check-in prompts"
            }
        }
    }
}

/// The status line, kept fresh by [`App`]'s refresh.
#[component]
pub(crate) fn StatusLine() -> Element {
    let clock = use_context::<Clock>();
    let ui = use_context::<Ui>();
    let store = use_context::<AppStore>();
    let now = office_now(&store, &clock);
    let policy_days = store
        .policy()
        .ok()
        .flatten()
        .map(|policy| policy.delete_briefings_after_days_offline);
    let out_of_touch = match (&*ui.status.read(), policy_days) {
        // Judged by this phone's own clock, as the deletion itself is.
        (Ok(status), Some(days)) => out_of_touch_note(status, clock.now(), days),
        _ => None,
    };
    if let Some(reason) = store.link_refused() {
        return rsx! {
            p { class: "status trouble", role: "status", aria_live: "polite",
                "Not sending to the office: {reason}"
            }
        };
    }
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
        if let Some(note) = out_of_touch {
            p { class: "status trouble", id: "out-of-touch", "{note}" }
        }
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
        area: card.visit.address.postcode.district(),
        partners: partners_text(&card.visit, me),
        phase: card
            .awaiting_authorisation_by
            .is_none()
            .then(|| discreet_phase(&card.state).label()),
        awaiting: card
            .awaiting_authorisation_by
            .map(|role| format!("Awaiting authorisation by {}", role.label())),
    }
}

/// "with Sam Jones", "with Sam and Jo", or "alone".
pub(crate) fn partners_text(visit: &Visit, me: Option<&StaffId>) -> String {
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

/// Words for where an event stands with the office; never more than the outbox knows.
pub(crate) fn delivery_label(delivery: &Delivery) -> String {
    match delivery {
        Delivery::Waiting { attempts: 0 } => "Waiting to send".to_owned(),
        Delivery::Waiting { .. } => "Sent, not yet confirmed".to_owned(),
        Delivery::Confirmed { .. } => "Office confirmed".to_owned(),
        Delivery::Refused { reason } => format!("Refused by the office: {reason}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
