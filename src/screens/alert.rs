//! The discreet request for help: a plain button worded as the school's code phrase to reception (for
//! example a request about lesson cover), on every screen from leaving to the write-up.
//!
//! Why two taps: a single tap on a phone held in a pocket or waved while talking is too easy, and a
//! press-and-hold is slow to learn and invisible to screen readers. So the first tap only swaps the button
//! for "Not now" (in the same place, so a double tap lands on it) with "Send request" below it, which reads
//! like any form; that second, deliberate tap records `RaiseDuress` at once
//! through `AppStore::perform` (on disk before the screen changes; the outbox sends duress first). The
//! button sits apart from the step buttons, below a wide gap, so a thumb aiming at "I'm OK" cannot reach it.
//! Afterwards the screen shows nothing alarming: "Noted", the office number and a "Call the office" link,
//! and honestly where the request stands: "Office has your request" only once the office confirmed it; if it
//! is not confirmed within 5 seconds, "Text the office" appears beside the call link, prefilled with the
//! code phrase and the request's signed reference (`doorstep_core::sms`, `docs/sms.md`), from which the
//! office stores it if the text reaches it first. The phone learns the office has it only over data (the
//! office answers "duplicate"), so until then it keeps saying it is not confirmed. "Cancel my request about
//! cover" stands it down with a short note (`StandDownDuress`).
//! An alert raised by the duress PIN is never shown here: that PIN must look like the normal one.

use chrono::TimeDelta;
use dioxus::prelude::*;
use doorstep_core::event_log::Delivery;
use doorstep_core::lifecycle::{Command, DuressVia, VisitEvent};
use doorstep_core::policy::Policy;
use doorstep_core::sms::{self, SmsKey};

use super::{use_ticking, Opens, TextBox};
use crate::platform::{PhoneNumber, SharedPlatform};
use crate::store::{Me, VisitCard};

/// How long an unconfirmed request waits before the phone offers a text as well as a call: a few seconds,
/// about as long as the sync loop races new connections for an alert before it notes the office
/// unreachable.
pub const CONFIRM_WITHIN: TimeDelta = TimeDelta::seconds(5);

#[component]
pub(super) fn DiscreetRequest(card: VisitCard, me: Me, policy: Policy) -> Element {
    let shared = use_ticking();
    let _ = shared.ui.revision.read();
    let mut asking = use_signal(|| false);
    let mut standing_down = use_signal(|| false);
    let mut note = use_signal(String::new);
    let error = use_signal(|| None::<String>);
    let now = shared.now();
    // Without the school's own phrase (visits are not authorised until an admin sets one) the button says
    // the ordinary thing it does.
    let phrase = policy.code_phrases.as_ref().map_or_else(
        || "Ask the office to ring me".to_owned(),
        |p| p.to_reception.clone(),
    );
    let visit_id = card.visit.id.clone();

    // My latest request by the button, while it stands.
    let mine = card
        .state
        .active_duress()
        .filter(|alert| alert.raised_by == me.staff && alert.via == DuressVia::CodePhraseButton)
        .max_by_key(|alert| alert.raised_at)
        .cloned();
    let office = me.office_phone.clone();
    let tel = office.tel_uri();

    if let Some(alert) = mine {
        // The event behind the alert: mine, by the button, counted at the alert's time.
        let recorded = shared.store.own_steps(&visit_id).ok().and_then(|steps| {
            steps.into_iter().find(|step| {
                matches!(step.envelope.event, VisitEvent::DuressRaised { ref staff, via: DuressVia::CodePhraseButton } if *staff == me.staff)
                    && step.at == alert.raised_at
            })
            .map(|step| (step.envelope, step.delivery))
        });
        // The text carries the alert itself (its reference, signed with the key this phone's credential
        // gives), so the office can store it from the text alone; without a credential just the words.
        let key = shared
            .store
            .credential()
            .map(|credential| SmsKey::from_device_token(&credential.token));
        let text = match (&recorded, key) {
            (Some((envelope, _)), Some(key)) => {
                sms::message(&phrase, envelope, &key).unwrap_or_else(|_| phrase.clone())
            }
            _ => phrase.clone(),
        };
        let sms = office.sms_uri(&text);
        let delivery = recorded.map(|(_, delivery)| delivery);
        let confirmed = matches!(delivery, Some(Delivery::Confirmed { .. }));
        let standing = match &delivery {
            Some(Delivery::Confirmed { .. }) => "Office has your request".to_owned(),
            Some(Delivery::Waiting { attempts: 0 }) | None => "Waiting to send".to_owned(),
            Some(Delivery::Waiting { .. }) => "Sent, not yet confirmed".to_owned(),
            Some(Delivery::Refused { reason }) => {
                format!("Not accepted: {reason}. Call the office.")
            }
        };
        let late = !confirmed && now - alert.raised_at >= CONFIRM_WITHIN;
        let stand_down_visit = visit_id.clone();
        let staff = me.staff.clone();
        return rsx! {
            section { class: "request noted", aria_label: "Your request",
                p { id: {"request-noted"}, "Noted. Office number: {me.office_phone}" }
                p { class: "delivery", role: "status", id: {"request-delivery"}, "{standing}" }
                div { class: "links",
                    a {
                        id: {"call-office"},
                        class: "link-button",
                        href: "{tel}",
                        aria_label: "Call the office",
                        onclick: {
                            let number = office.clone();
                            move |event: MouseEvent| open_with_platform(&event, &number, None)
                        },
                        "Call the office"
                    }
                    if late {
                        a {
                            id: {"text-office"},
                            class: "link-button",
                            href: "{sms}",
                            aria_label: "Text the office",
                            onclick: {
                                let number = office.clone();
                                let text = text.clone();
                                move |event: MouseEvent| open_with_platform(&event, &number, Some(&text))
                            },
                            "Text the office"
                        }
                    }
                }
                if let Some(message) = error() {
                    p { class: "error", role: "alert", "{message}" }
                }
                if standing_down() {
                    TextBox {
                        id: "stand-down-note",
                        label: "A short note for the office",
                        rows: "2",
                        text: note,
                    }
                    button {
                        id: {"stand-down-send"},
                        class: "step-button",
                        aria_label: "Send the note and cancel my request",
                        onclick: move |_| {
                            let command = Command::StandDownDuress {
                                staff: staff.clone(),
                                note: note.peek().clone(),
                            };
                            if shared.record(&stand_down_visit, command, error) {
                                standing_down.set(false);
                                note.set(String::new());
                            }
                        },
                        "Send"
                    }
                } else {
                    Opens {
                        id: "stand-down-open",
                        class: "link",
                        label: "Cancel my request about cover",
                        text: "Cancel my request about cover",
                        open: standing_down,
                    }
                }
            }
        };
    }

    let staff = me.staff.clone();
    rsx! {
        section { class: "request", aria_label: "Request to reception",
            if asking() {
                // "Not now" takes the first button's place, so a double tap lands on it, not on "Send".
                button {
                    id: {"request-not-now"},
                    class: "plain",
                    aria_label: "Not now",
                    onclick: move |_| asking.set(false),
                    "Not now"
                }
                p { class: "quiet", "Send this to reception?" }
                button {
                    id: {"request-send"},
                    class: "plain",
                    aria_label: "Send request",
                    onclick: move |_| {
                        let command = Command::RaiseDuress {
                            staff: staff.clone(),
                            via: DuressVia::CodePhraseButton,
                        };
                        shared.record(&visit_id, command, error);
                        asking.set(false);
                    },
                    "Send request"
                }
            } else {
                Opens {
                    id: "request-open",
                    class: "plain",
                    label: "{phrase}",
                    text: "{phrase}",
                    open: asking,
                }
            }
            if let Some(message) = error() {
                p { class: "error", role: "alert", "{message}" }
            }
        }
    }
}

/// A phone's webview hands only http(s) and mailto links to the system, so the dialler and the message
/// composer are opened through the platform when there is one; without one (tests, a plain window) the
/// link's own `tel:`/`sms:` address stays.
fn open_with_platform(event: &MouseEvent, number: &PhoneNumber, sms_body: Option<&str>) {
    let Some(platform) = try_consume_context::<SharedPlatform>() else {
        return;
    };
    event.prevent_default();
    let opened = match sms_body {
        Some(body) => platform.open_sms(number, body),
        None => platform.open_dialler(number),
    };
    if let Err(error) = opened {
        tracing::warn!(%error, "the phone could not open the dialler or messages");
    }
}
