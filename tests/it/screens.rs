//! The screens through Dioxus's VirtualDom: a real event log in a temporary folder, the real `App`, real
//! clicks delivered to the elements' handlers, and the rendered HTML read back.

use std::any::Any;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use dioxus::core::{AttributeValue, ElementId, Mutation, Mutations};
use dioxus::html::{
    PlatformEventData, SerializedFormData, SerializedHtmlEventConverter, SerializedMouseData,
};
use dioxus::prelude::*;
use doorstep::app::{App, Clock, ClockHand};
use doorstep::platform::{Notice, PlatformCall, RecordingPlatform, SharedPlatform};
use doorstep::store::{AppStore, PinKind};
use doorstep_core::domain::{
    Address, Briefing, Pupil, RiskAssessment, School, Visit, VisitPurpose, VisitStaff,
};
use doorstep_core::event::EventEnvelope;
use doorstep_core::event_log::{Delivery, EventLog};
use doorstep_core::ids::{DeviceSeq, EventId, VisitId};
use doorstep_core::lifecycle::{BriefingCheck, CancelReason, Command, DuressVia, VisitEvent};
use doorstep_core::policy::{PolicyMinutes, Preset};
use doorstep_core::protocol::{HeldVisit, PhoneHoldings};
use doorstep_core::sync_plan::OutboxUpdate;

fn at(hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, hour, minute, 0).unwrap()
}

fn visit(id: &str, purpose: VisitPurpose, time: DateTime<Utc>) -> Visit {
    let mut briefing = Briefing::new(RiskAssessment::standard());
    briefing.pets = "A large dog".into();
    Visit {
        id: id.parse().unwrap(),
        school: "hillside".parse().unwrap(),
        purpose,
        pupil: Pupil {
            id: "pupil-ava".parse().unwrap(),
            name: "Ava Smith".into(),
        },
        address: Address {
            lines: vec!["1 High Street".into(), "Leeds".into()],
            postcode: "LS6 2AB".into(),
        },
        agreed_time: time,
        expected_length: PolicyMinutes::new(45).unwrap(),
        staff: vec![
            VisitStaff {
                id: "sam".parse().unwrap(),
                name: "Sam Patel".into(),
                phone: "07700 900001".into(),
            },
            VisitStaff {
                id: "alex".parse().unwrap(),
                name: "Alex Jones".into(),
                phone: "07700 900002".into(),
            },
        ],
        briefing,
    }
}

/// Sam's phone, holding an authorised visit at 10:00 and, listed after it, an unauthorised one at 09:00.
fn sams_phone(dir: &std::path::Path, with_holdings: bool) -> AppStore {
    let mut log =
        EventLog::open(&dir.join("phone.sqlite3"), &"phone-sam".parse().unwrap()).unwrap();
    if with_holdings {
        let authorised = visit("v-ten", VisitPurpose::SafeAndWellCheck, at(10, 0));
        let waiting = visit("v-nine", VisitPurpose::AttendanceSupport, at(9, 0));
        let authorisation = EventEnvelope {
            id: EventId::new_v7(),
            device: "office".parse().unwrap(),
            seq: DeviceSeq::new(1).unwrap(),
            visit: authorised.id.clone(),
            recorded_at: at(7, 30),
            event: VisitEvent::Authorised {
                by: "head".parse().unwrap(),
                lone_visit_approved: false,
            },
        };
        let holdings = PhoneHoldings {
            school: School {
                id: "hillside".parse().unwrap(),
                name: "Hillside Primary".into(),
                office_phone: "0113 496 0000".into(),
            },
            policy: Preset::PrimaryHeadteacher.policy(),
            staff: "sam".parse().unwrap(),
            staff_name: "Sam Patel".into(),
            visits: vec![
                HeldVisit {
                    visit: authorised,
                    events: vec![authorisation],
                },
                HeldVisit {
                    visit: waiting,
                    events: Vec::new(),
                },
            ],
        };
        log.save_holdings(&holdings, at(8, 0)).unwrap();
    }
    AppStore::new(log)
}

/// The device token the harness's phone signs its texts with.
const TEXT_TOKEN: &str = "the-phone's-device-token";

/// The app in a VirtualDom, with the element ids it has created so far, keyed by their `id` attribute.
struct Harness {
    dom: VirtualDom,
    ids: HashMap<String, ElementId>,
    hand: ClockHand,
}

impl Harness {
    fn start(store: &AppStore) -> Self {
        Self::start_at(store, at(8, 30))
    }

    /// The app on a clock the test moves with [`Harness::set_time`].
    fn start_at(store: &AppStore, now: DateTime<Utc>) -> Self {
        Self::launch(store, now, None)
    }

    /// The app with `platform` as the phone's platform (the notifications, dialler and visit timer).
    fn start_with_platform(store: &AppStore, now: DateTime<Utc>, platform: SharedPlatform) -> Self {
        Self::launch(store, now, Some(platform))
    }

    fn launch(store: &AppStore, now: DateTime<Utc>, platform: Option<SharedPlatform>) -> Self {
        dioxus::html::set_event_converter(Box::new(SerializedHtmlEventConverter));
        let (clock, hand) = Clock::manual(now, FixedOffset::east_opt(0).unwrap());
        let mut dom = VirtualDom::new(App)
            .with_root_context(store.clone())
            .with_root_context(clock)
            .with_root_context(doorstep_core::sms::SmsKey::from_device_token(TEXT_TOKEN));
        if let Some(platform) = platform {
            dom = dom.with_root_context(platform);
        }
        let edits = dom.rebuild_to_vec();
        let mut harness = Self {
            dom,
            ids: HashMap::new(),
            hand,
        };
        harness.learn(&edits);
        harness
    }

    /// Moves the clock and lets the app's tick run (timers, prompts, missed check-ins) and redraw.
    async fn set_time(&mut self, now: DateTime<Utc>) {
        self.hand.set(now);
        self.settle().await;
    }

    /// Lets the app's background tasks run until they have redrawn (or there is nothing to do).
    async fn settle(&mut self) {
        let _ = tokio::time::timeout(Duration::from_millis(300), self.dom.wait_for_work()).await;
        let edits = self.dom.render_immediate_to_vec();
        self.learn(&edits);
    }

    /// Types `value` into the field whose `id` attribute is `target`.
    fn input(&mut self, target: &str, value: &str) {
        let element = self.element(target);
        let data = PlatformEventData::new(Box::new(SerializedFormData::new(
            value.to_owned(),
            Vec::new(),
        )));
        let event = Event::new(Rc::new(data) as Rc<dyn Any>, true);
        self.dom.runtime().handle_event("input", event, element);
        let edits = self.dom.render_immediate_to_vec();
        self.learn(&edits);
    }

    fn element(&self, target: &str) -> ElementId {
        *self.ids.get(target).unwrap_or_else(|| {
            panic!(
                "no element with id {target:?}; known: {:?}",
                self.ids.keys()
            )
        })
    }

    /// Remembers every element the renderer was told to give an `id` attribute.
    fn learn(&mut self, edits: &Mutations) {
        for edit in &edits.edits {
            if let Mutation::SetAttribute {
                name: "id",
                value: AttributeValue::Text(value),
                id,
                ..
            } = edit
            {
                self.ids.insert(value.clone(), *id);
            }
        }
    }

    /// Clicks the element whose `id` attribute is `target`, then lets the app redraw.
    fn click(&mut self, target: &str) {
        let element = self.element(target);
        let data = PlatformEventData::new(Box::<SerializedMouseData>::default());
        let event = Event::new(Rc::new(data) as Rc<dyn Any>, true);
        self.dom.runtime().handle_event("click", event, element);
        let edits = self.dom.render_immediate_to_vec();
        self.learn(&edits);
    }

    /// The rendered page as text a person would read (the few entities the renderer escapes, undone).
    fn html(&self) -> String {
        let html = dioxus_ssr::render(&self.dom);
        // The inlined stylesheet is not text anyone reads.
        let html = match (html.find("<style>"), html.find("</style>")) {
            (Some(start), Some(end)) => format!("{}{}", &html[..start], &html[end + 8..]),
            _ => html,
        };
        html.replace("&#39;", "'")
            .replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    }
}

fn position(html: &str, text: &str) -> usize {
    html.find(text)
        .unwrap_or_else(|| panic!("{text:?} is not on the screen:\n{html}"))
}

#[tokio::test]
async fn today_lists_the_visits_in_time_order_with_what_awaits_authorisation() {
    let dir = tempfile::tempdir().unwrap();
    let store = sams_phone(dir.path(), true);
    let app = Harness::start(&store);
    let html = app.html();

    assert!(html.contains("Sam Patel"), "{html}");
    assert!(
        html.contains("Not yet in touch with the office"),
        "never synced: {html}"
    );
    let nine = position(&html, "09:00");
    let awaiting = position(&html, "Awaiting authorisation by headteacher");
    let ten = position(&html, "10:00");
    assert!(
        nine < awaiting && awaiting < ten,
        "09:00, its authorisation notice, then 10:00:\n{html}"
    );
    assert!(position(&html, "Attendance support") < position(&html, "Safe and well check"));
    assert_eq!(
        html.matches("Awaiting authorisation by").count(),
        1,
        "only the 09:00 visit awaits it"
    );
    assert!(html.contains("LS6 · with Alex Jones"), "{html}");
    assert!(
        !html.contains("High Street"),
        "the list shows the area, not the address"
    );
}

#[tokio::test]
async fn tapping_a_visit_then_leaving_now_records_the_departure_and_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = sams_phone(dir.path(), true);
    let mut app = Harness::start(&store);

    app.click("visit-v-ten");
    let html = app.html();
    assert!(html.contains("Briefing"), "{html}");
    assert!(html.contains("Dogs and other animals"));
    assert!(html.contains("A large dog"));
    assert!(
        html.contains("Pets must be kept in another room or outside, or the visit is cancelled.")
    );
    for rule in Briefing::STANDING_RULES {
        assert!(html.contains(rule), "{rule}");
    }
    assert!(
        !html.contains("Leaving now"),
        "no leaving before the checklist"
    );
    assert!(html.contains("Read the briefing and tick its checklist before you leave."));
    assert!(
        store.waiting().unwrap().is_empty(),
        "opening a visit records nothing"
    );

    // Four ticks are not enough: the lifecycle refuses, and the screen says so.
    for index in 0..4 {
        app.click(&format!("briefing-check-{index}"));
    }
    app.click("briefing-confirm");
    assert!(
        app.html()
            .contains("Not recorded: tick every item on the briefing checklist first."),
        "{}",
        app.html()
    );
    assert!(store.waiting().unwrap().is_empty());
    app.click("briefing-check-4");
    app.click("briefing-confirm");
    let waiting = store.waiting().unwrap();
    assert_eq!(waiting.len(), 1, "the checklist is recorded");
    assert!(
        matches!(&waiting[0].event, VisitEvent::BriefingRead { staff, ticked }
            if staff.as_str() == "sam" && ticked.len() == BriefingCheck::ALL.len()),
        "{:?}",
        waiting[0].event
    );
    assert!(app.html().contains("Leaving now"));

    app.click("step-leaving-now");
    let waiting = store.waiting().unwrap();
    assert_eq!(waiting.len(), 2, "the tap recorded one more event");
    match &waiting[1].event {
        VisitEvent::Departed {
            staff,
            expected_arrival,
            expected_end,
        } => {
            assert_eq!(staff.as_str(), "sam");
            assert_eq!((*expected_arrival, *expected_end), (at(10, 0), at(10, 45)));
        }
        other => panic!("expected a departure, got {other:?}"),
    }
    let html = app.html();
    assert!(
        html.contains("On the way"),
        "the new state shows at once: {html}"
    );
    assert!(
        html.contains("Your last step, left for the visit at 08:30: Waiting to send"),
        "{html}"
    );
    assert!(
        html.contains("I'm outside"),
        "the next step is offered: {html}"
    );
    assert!(!html.contains("Leaving now"));
    assert!(
        html.contains("2 waiting"),
        "the status line counts them: {html}"
    );

    app.click("back-to-today-link");
    let html = app.html();
    assert!(
        html.contains("Today") && html.contains("On the way"),
        "{html}"
    );
}

#[tokio::test]
async fn a_refused_tap_says_why_on_the_screen() {
    let dir = tempfile::tempdir().unwrap();
    let store = sams_phone(dir.path(), true);
    read_briefing(&store);
    let mut app = Harness::start(&store);
    app.click("visit-v-ten");

    // The departure is recorded behind the screen's back (a second tap that raced the redraw), so the
    // button still on screen now asks for something the lifecycle refuses.
    let card = store.visit(&"v-ten".parse().unwrap()).unwrap().unwrap();
    store
        .perform(
            &card.visit.id,
            Command::Depart {
                staff: "sam".parse().unwrap(),
                expected_arrival: card.visit.agreed_time,
                expected_end: card.visit.expected_end(),
            },
            at(8, 29),
        )
        .unwrap();
    app.click("step-leaving-now");
    let html = app.html();
    assert!(
        html.contains("Not recorded: sam has already left for this visit."),
        "{html}"
    );
    assert!(
        html.contains("I'm outside"),
        "and the screen catches up with the store: {html}"
    );
    assert_eq!(
        store.waiting().unwrap().len(),
        2,
        "the refused tap recorded nothing"
    );
}

#[tokio::test]
async fn before_the_first_sync_today_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let store = sams_phone(dir.path(), false);
    let html = Harness::start(&store).html();
    assert!(
        html.contains(
            "Not yet in touch with the office — your visits will appear after the first sync."
        ),
        "{html}"
    );
}

// ---------------------------------------------------------------------------------------------------------
// A whole visit. Sam's phone; Alex's steps are recorded as the office would relay them from Alex's phone.

fn ten() -> VisitId {
    "v-ten".parse().unwrap()
}

fn sam() -> doorstep_core::ids::StaffId {
    "sam".parse().unwrap()
}

fn alex() -> doorstep_core::ids::StaffId {
    "alex".parse().unwrap()
}

fn read_briefing(store: &AppStore) {
    store
        .perform(
            &ten(),
            Command::ConfirmBriefing {
                staff: sam(),
                ticked: BriefingCheck::ALL.to_vec(),
            },
            at(8, 20),
        )
        .unwrap();
}

fn depart(store: &AppStore, who: doorstep_core::ids::StaffId, when: DateTime<Utc>) {
    store
        .perform(
            &ten(),
            Command::Depart {
                staff: who,
                expected_arrival: at(10, 0),
                expected_end: at(10, 45),
            },
            when,
        )
        .unwrap();
}

/// Both have left for the visit, arrived together and gone in at 10:00.
fn inside(store: &AppStore) {
    read_briefing(store);
    depart(store, sam(), at(9, 30));
    depart(store, alex(), at(9, 31));
    store
        .perform(
            &ten(),
            Command::ArriveTogether {
                by: sam(),
                staff: vec![sam(), alex()],
            },
            at(9, 58),
        )
        .unwrap();
    store
        .perform(&ten(), Command::StartVisit { by: sam() }, at(10, 0))
        .unwrap();
}

/// This phone's own events for the 10:00 visit, without their envelopes.
fn own(store: &AppStore) -> Vec<VisitEvent> {
    store
        .own_events(&ten())
        .unwrap()
        .into_iter()
        .map(|(envelope, _)| envelope.event)
        .collect()
}

fn lower(html: &str) -> String {
    html.to_lowercase()
}

#[tokio::test]
async fn at_the_door_a_pair_waits_for_the_partner_and_the_wait_counts_down() {
    let dir = tempfile::tempdir().unwrap();
    let store = sams_phone(dir.path(), true);
    read_briefing(&store);
    depart(&store, sam(), at(9, 30));
    let mut app = Harness::start_at(&store, at(9, 55));
    app.click("visit-v-ten");
    app.click("step-im-outside");
    assert!(matches!(
        own(&store).last(),
        Some(VisitEvent::ArrivedOutside { .. })
    ));
    let html = app.html();
    assert!(
        html.contains("Wait outside until Alex Jones arrives."),
        "{html}"
    );
    assert!(html.contains("Alex Jones: not left yet"), "{html}");
    assert!(
        html.contains(
            "Waiting at the door: <strong>20:00</strong> left of 20 minutes (until 10:15)"
        ),
        "{html}"
    );
    assert!(html.contains("We arrived together"));

    app.set_time(at(10, 5)).await;
    assert!(
        app.html()
            .contains("<strong>10:00</strong> left of 20 minutes"),
        "{}",
        app.html()
    );
    assert!(!app.html().contains("No answer — cancel"));

    app.set_time(at(10, 15)).await;
    let html = app.html();
    assert!(
        html.contains("You have waited 20 minutes. If nobody has answered, cancel the visit."),
        "{html}"
    );
    app.click("no-answer-cancel");
    assert!(
        matches!(
            own(&store).last(),
            Some(VisitEvent::Cancelled {
                reason: CancelReason::NoAnswerAfterWait,
                ..
            })
        ),
        "{:?}",
        own(&store)
    );
    assert!(app
        .html()
        .contains("This visit was cancelled: No answer after the wait."));
}

#[tokio::test]
async fn in_the_visit_the_timer_runs_and_the_check_in_prompt_gets_louder_then_is_recorded_missed_once(
) {
    let dir = tempfile::tempdir().unwrap();
    let store = sams_phone(dir.path(), true);
    inside(&store);
    let mut app = Harness::start_at(&store, at(10, 7));
    app.click("visit-v-ten");
    let html = app.html();
    assert!(
        html.contains("7:00"),
        "the timer counts from the recorded start: {html}"
    );
    assert!(html.contains("Next check-in at 10:10"), "{html}");
    assert!(html.contains("I've left"));

    app.set_time(at(10, 10)).await;
    let html = app.html();
    assert!(html.contains("Time to check in."), "{html}");
    assert!(html.contains("class=\"prompt due\""), "{html}");

    app.set_time(at(10, 15)).await;
    let html = app.html();
    assert!(
        html.contains("Check-in overdue since 10:10. Tap I'm OK now."),
        "{html}"
    );
    assert!(html.contains("class=\"prompt overdue\""), "{html}");
    app.set_time(at(10, 16)).await;
    let missed: Vec<_> = own(&store)
        .into_iter()
        .filter(|e| matches!(e, VisitEvent::CheckInMissed { .. }))
        .collect();
    assert_eq!(
        missed,
        vec![VisitEvent::CheckInMissed {
            staff: sam(),
            due_at: at(10, 10)
        }],
        "recorded once for the 10:10 check-in"
    );

    app.click("step-im-ok");
    assert!(matches!(
        own(&store).last(),
        Some(VisitEvent::CheckedIn { .. })
    ));
    let html = app.html();
    assert!(!html.contains("Check-in overdue"), "{html}");
    assert!(!html.contains("Time to check in."), "{html}");
    assert!(html.contains("16:00"), "{html}");
    assert!(
        html.contains("Expected to finish by 10:45"),
        "the next check-in would fall after the end: {html}"
    );
}

#[tokio::test]
async fn the_code_phrase_request_records_an_alert_and_shows_nothing_alarming_until_the_office_confirms(
) {
    let dir = tempfile::tempdir().unwrap();
    let store = sams_phone(dir.path(), true);
    inside(&store);
    let mut app = Harness::start_at(&store, at(10, 20));
    app.click("visit-v-ten");
    let phrase = "Please can someone check the lesson cover rota for me?";
    assert!(app.html().contains(phrase));

    // The first tap only asks; "Not now" takes it back without recording anything.
    app.click("request-open");
    app.click("request-not-now");
    assert!(!own(&store)
        .iter()
        .any(|e| matches!(e, VisitEvent::DuressRaised { .. })));
    app.click("request-open");
    app.click("request-send");
    assert_eq!(
        own(&store).last(),
        Some(&VisitEvent::DuressRaised {
            staff: sam(),
            via: DuressVia::CodePhraseButton
        })
    );
    let html = app.html();
    // Everything above the briefing (whose risk controls are the school's own words, and mention calling
    // emergency services for an injury).
    let above_briefing = &html[..html.find("<section class=\"briefing\"").unwrap()];
    for word in ["duress", "alarm", "emergency"] {
        assert!(
            !lower(above_briefing).contains(word),
            "{word:?} on the screen: {above_briefing}"
        );
    }
    assert!(
        html.contains("Noted. Office number: 0113 496 0000"),
        "{html}"
    );
    assert!(html.contains("href=\"tel:01134960000\""), "{html}");
    assert!(html.contains("Waiting to send"), "{html}");
    assert!(!html.contains("Office has your alert"));
    assert!(!html.contains("Text the office"), "not before 5 seconds");
    assert!(
        html.contains("In the visit"),
        "the phase stays ordinary: {html}"
    );

    app.set_time(at(10, 20) + chrono::TimeDelta::seconds(4))
        .await;
    assert!(
        !app.html().contains("Text the office"),
        "not before 5 seconds"
    );
    app.set_time(at(10, 20) + chrono::TimeDelta::seconds(5))
        .await;
    let html = app.html();
    assert!(html.contains("Text the office"), "{html}");
    // Prefilled with the code phrase and the alert itself, signed: the office can store it from the text.
    let alert = store
        .own_events(&ten())
        .unwrap()
        .into_iter()
        .find(|(e, _)| matches!(e.event, VisitEvent::DuressRaised { .. }))
        .unwrap()
        .0;
    let text = doorstep_core::sms::message(
        phrase,
        &alert,
        &doorstep_core::sms::SmsKey::from_device_token(TEXT_TOKEN),
    )
    .unwrap();
    assert!(
        text.starts_with(&format!("{phrase} Ref DS1.phone-sam.v-ten.")),
        "{text}"
    );
    let body: String = text
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    assert!(
        html.contains(&format!("href=\"sms:01134960000?body={body}\"")),
        "{html}"
    );
    let read = doorstep_core::sms::read(&text).unwrap();
    assert_eq!(
        read.verify(
            &doorstep_core::sms::SmsKey::from_device_token(TEXT_TOKEN),
            sam()
        )
        .unwrap(),
        alert
    );
    assert!(!html.contains("Office has your alert"));

    // The office confirms it (as the sync loop would record the office's answer).
    let mut log = EventLog::open(
        &dir.path().join("phone.sqlite3"),
        &"phone-sam".parse().unwrap(),
    )
    .unwrap();
    log.apply(&[OutboxUpdate::Confirm(alert.id)], at(10, 21))
        .unwrap();
    assert!(matches!(
        store.delivery(alert.id).unwrap(),
        Some(Delivery::Confirmed { .. })
    ));
    app.set_time(at(10, 21)).await;
    let html = app.html();
    assert!(html.contains("Office has your alert"), "{html}");
    assert!(!html.contains("Text the office"));

    // Standing down needs a short note.
    app.click("stand-down-open");
    app.click("stand-down-send");
    assert!(
        app.html().contains("Not recorded: a note is required."),
        "{}",
        app.html()
    );
    app.input("stand-down-note", "Pressed by mistake");
    app.click("stand-down-send");
    assert!(matches!(
        own(&store).last(),
        Some(VisitEvent::DuressStoodDown { note, .. }) if note == "Pressed by mistake"
    ));
    assert!(app.html().contains(phrase), "the ordinary button is back");
}

/// Leaves the 10:00 visit with `pin` on a fresh phone and returns the screen and the phone's events.
async fn leave_with(pin: &str) -> (String, Vec<VisitEvent>) {
    let dir = tempfile::tempdir().unwrap();
    let store = sams_phone(dir.path(), true);
    inside(&store);
    let mut app = Harness::start_at(&store, at(10, 30));
    app.click("visit-v-ten");
    app.click("step-ive-left");
    assert!(app.html().contains("Enter your PIN to confirm you've left"));
    for digit in pin.chars() {
        app.click(&format!("pin-key-{digit}"));
    }
    assert!(app.html().contains("●●●●"), "digits show as dots");
    assert!(!app.html().contains(pin), "the PIN itself is never shown");
    app.click("pin-confirm");
    app.settle().await;
    (app.html(), own(&store))
}

#[tokio::test]
async fn the_duress_pin_records_leave_and_an_alert_and_looks_exactly_like_the_normal_pin() {
    let (normal_screen, normal_events) = leave_with("1234").await;
    let (duress_screen, duress_events) = leave_with("9999").await;
    assert!(
        matches!(normal_events.last(), Some(VisitEvent::Left { .. })),
        "{normal_events:?}"
    );
    assert!(!normal_events
        .iter()
        .any(|e| matches!(e, VisitEvent::DuressRaised { .. })));
    let tail: Vec<_> = duress_events.iter().rev().take(2).rev().cloned().collect();
    assert_eq!(
        tail,
        vec![
            VisitEvent::Left { staff: sam() },
            VisitEvent::DuressRaised {
                staff: sam(),
                via: DuressVia::DuressPin
            }
        ]
    );
    assert!(normal_screen.contains("You have left the property."));
    assert_eq!(
        normal_screen, duress_screen,
        "the two PINs must look identical"
    );
}

#[tokio::test]
async fn a_wrong_pin_records_nothing_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let store = sams_phone(dir.path(), true);
    inside(&store);
    let before = own(&store).len();
    let mut app = Harness::start_at(&store, at(10, 30));
    app.click("visit-v-ten");
    app.click("step-ive-left");
    for digit in "1111".chars() {
        app.click(&format!("pin-key-{digit}"));
    }
    app.click("pin-confirm");
    assert!(app
        .html()
        .contains("Not recorded: that PIN is not right. Try again."));
    assert_eq!(own(&store).len(), before);
}

#[tokio::test]
async fn cancelling_because_of_feeling_unsafe_needs_a_note_then_the_write_up_gives_cpoms_text() {
    let dir = tempfile::tempdir().unwrap();
    let store = sams_phone(dir.path(), true);
    read_briefing(&store);
    depart(&store, sam(), at(9, 30));
    let mut app = Harness::start_at(&store, at(9, 58));
    app.click("visit-v-ten");
    app.click("cancel-open");
    for reason in CancelReason::ALL {
        assert!(app.html().contains(reason.label()), "{}", reason.label());
    }
    app.click("cancel-reason-1");
    app.click("cancel-confirm");
    assert!(
        app.html().contains(
            "Not recorded: say why the visit was cancelled: the authoriser must be told in writing."
        ),
        "{}",
        app.html()
    );
    assert!(!own(&store)
        .iter()
        .any(|e| matches!(e, VisitEvent::Cancelled { .. })));

    app.input("cancel-note", "Shouting from inside; we did not knock");
    app.click("cancel-confirm");
    assert!(matches!(
        own(&store).last(),
        Some(VisitEvent::Cancelled { reason: CancelReason::FeltUnsafe, note, .. })
            if note == "Shouting from inside; we did not knock"
    ));
    let html = app.html();
    assert!(
        html.contains("This visit was cancelled: Felt unsafe."),
        "{html}"
    );
    assert!(html.contains("Write-up"), "{html}");

    app.input("writeup-discussed", "Nothing: we did not go in");
    app.click("writeup-save");
    let html = app.html();
    assert!(matches!(
        own(&store).last(),
        Some(VisitEvent::WrittenUp { .. })
    ));
    assert!(html.contains("Ready to paste into CPOMS"), "{html}");
    assert!(
        html.contains("Outcome: cancelled (Felt unsafe): Shouting from inside; we did not knock"),
        "{html}"
    );
}

#[tokio::test]
async fn having_left_first_sam_can_write_up_while_the_office_still_waits_for_alex() {
    // Out of signal, Sam's phone may never hear Alex's "I've left" before the write-up is due.
    let dir = tempfile::tempdir().unwrap();
    let store = sams_phone(dir.path(), true);
    inside(&store);
    let mut app = Harness::start_at(&store, at(10, 40));
    app.click("visit-v-ten");
    app.click("step-ive-left");
    for digit in "1234".chars() {
        app.click(&format!("pin-key-{digit}"));
    }
    app.click("pin-confirm");
    let html = app.html();
    assert!(html.contains("Write-up"), "{html}");
    assert!(
        html.contains("The office still waits for your partner"),
        "{html}"
    );
    app.input("writeup-seen", "Ava and her mother");
    app.input("writeup-discussed", "Attendance since half term");
    app.click("writeup-concern-no");
    app.click("writeup-save");
    assert!(
        matches!(
            store
                .own_events(&ten())
                .unwrap()
                .last()
                .map(|(e, _)| &e.event),
            Some(VisitEvent::WrittenUp { .. })
        ),
        "the write-up is recorded"
    );
}

#[tokio::test]
async fn after_everyone_left_the_write_up_flags_the_dsl_and_builds_the_cpoms_summary() {
    let dir = tempfile::tempdir().unwrap();
    let store = sams_phone(dir.path(), true);
    inside(&store);
    store
        .perform(&ten(), Command::Leave { staff: alex() }, at(10, 39))
        .unwrap();
    let mut app = Harness::start_at(&store, at(10, 40));
    app.click("visit-v-ten");
    assert!(!app.html().contains("Write-up"), "Sam is still inside");
    app.click("step-ive-left");
    for digit in "1234".chars() {
        app.click(&format!("pin-key-{digit}"));
    }
    app.click("pin-confirm");
    let html = app.html();
    assert!(html.contains("Write-up"), "{html}");
    assert!(!html.contains("Tell the DSL now"));

    app.click("writeup-save");
    assert!(
        app.html()
            .contains("Not recorded: the write-up needs who was seen and what was discussed."),
        "{}",
        app.html()
    );
    app.input("writeup-seen", "Ava and her mother");
    app.input("writeup-discussed", "Attendance since half term");
    app.input(
        "writeup-agreements",
        "Ava back on Monday; mother to ring the office",
    );
    app.click("writeup-concern-yes");
    assert!(app.html().contains("Tell the DSL now"), "{}", app.html());
    app.click("writeup-save");
    match own(&store).last() {
        Some(VisitEvent::WrittenUp { write_up, .. }) => {
            assert_eq!(write_up.seen, "Ava and her mother");
            assert!(write_up.safeguarding_concern);
            assert_eq!(write_up.incident, None);
        }
        other => panic!("expected the write-up, got {other:?}"),
    }
    let html = app.html();
    assert!(html.contains("id=\"cpoms-summary\""), "{html}");
    assert!(
        html.contains("Home visit: Safe and well check\nPupil: Ava Smith"),
        "{html}"
    );
    assert!(
        html.contains("Outcome: visit took place, 10:00 to 10:40"),
        "{html}"
    );
    assert!(html.contains("Agreements with parents: Ava back on Monday; mother to ring the office"));
    assert!(html.contains("Safeguarding concern: Yes (passed to the DSL)"));
}

#[tokio::test]
async fn hide_blanks_the_screen_until_tapped_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = sams_phone(dir.path(), true);
    let mut app = Harness::start(&store);
    app.click("visit-v-ten");
    assert!(app.html().contains("Ava Smith"));
    app.click("hide-screen");
    let html = app.html();
    assert!(html.contains("Tap to continue"), "{html}");
    for private in ["Ava", "High Street", "Safe and well", "Hillside", "Sam"] {
        assert!(!html.contains(private), "{private:?} while hidden: {html}");
    }
    app.click("unhide");
    assert!(app.html().contains("Ava Smith"));
}

#[tokio::test]
async fn the_phone_is_told_to_prompt_keep_the_timer_alive_and_open_the_dialler() {
    let dir = tempfile::tempdir().unwrap();
    let store = sams_phone(dir.path(), true);
    inside(&store);
    let platform = RecordingPlatform::new(dir.path());
    let log = platform.log();
    let mut app = Harness::start_with_platform(&store, at(10, 5), std::sync::Arc::new(platform));
    app.set_time(at(10, 5) + chrono::TimeDelta::seconds(1))
        .await;
    assert!(
        log.notices().is_empty(),
        "no prompt before the check-in is due"
    );
    assert!(
        log.keeping_alive(),
        "the visit timer is kept alive while inside"
    );

    app.set_time(at(10, 20)).await;
    assert_eq!(
        log.notices(),
        [Notice::CheckInOverdue],
        "an overdue check-in is announced, once, with fixed words"
    );
    app.set_time(at(10, 20) + chrono::TimeDelta::seconds(1))
        .await;
    assert_eq!(log.notices().len(), 1, "not announced again");

    app.click("visit-v-ten");
    app.click("request-open");
    app.click("request-send");
    app.click("call-office");
    assert!(
        log.calls().contains(&PlatformCall::OpenedDialler {
            uri: "tel:01134960000".into()
        }),
        "{:?}",
        log.calls()
    );
}

#[tokio::test]
async fn pins_are_changed_from_today_only_with_the_current_pin_and_the_new_ones_take_effect() {
    let dir = tempfile::tempdir().unwrap();
    // The phone as the app opens it, with its PIN file in the data folder.
    let store = AppStore::open_in(dir.path(), &"phone-sam".parse().unwrap()).unwrap();
    let mut app = Harness::start_at(&store, at(9, 0));
    app.click("today-pins-link");
    assert!(app.html().contains("Your PINs"), "{}", app.html());

    // A wrong current PIN changes nothing.
    app.input("pin-current", "5555");
    app.input("pin-new", "2468");
    app.input("pin-new-second", "1357");
    app.click("pins-save");
    assert!(app
        .html()
        .contains("Not changed: that is not your PIN now."));
    assert_eq!(store.check_pin("1234"), PinKind::Normal);
    assert_eq!(store.check_pin("2468"), PinKind::Wrong);

    // The same PIN twice is refused, with the reason.
    app.input("pin-current", "1234");
    app.input("pin-new-second", "2468");
    app.click("pins-save");
    assert!(
        app.html()
            .contains("Not changed: the two PINs must differ."),
        "{}",
        app.html()
    );
    assert_eq!(store.check_pin("1234"), PinKind::Normal);

    app.input("pin-new-second", "1357");
    app.click("pins-save");
    assert!(app.html().contains("Saved. Use your new PINs from now on."));
    assert_eq!(store.check_pin("2468"), PinKind::Normal);
    assert_eq!(store.check_pin("1357"), PinKind::Duress);
    assert_eq!(store.check_pin("1234"), PinKind::Wrong);

    // Kept on the phone: the store opened again knows them.
    drop(app);
    let again = AppStore::open_in(dir.path(), &"phone-sam".parse().unwrap()).unwrap();
    assert_eq!(again.check_pin("1357"), PinKind::Duress);
}
