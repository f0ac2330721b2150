//! The screens through Dioxus's VirtualDom: a real event log in a temporary folder, the real `App`, real
//! clicks delivered to the elements' handlers, and the rendered HTML read back.

use std::any::Any;
use std::collections::HashMap;
use std::rc::Rc;

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use dioxus::core::{AttributeValue, ElementId, Mutation, Mutations};
use dioxus::html::{PlatformEventData, SerializedHtmlEventConverter, SerializedMouseData};
use dioxus::prelude::*;
use doorstep::app::{App, Clock};
use doorstep::store::AppStore;
use doorstep_core::domain::{
    Address, Briefing, Pupil, RiskAssessment, School, Visit, VisitPurpose, VisitStaff,
};
use doorstep_core::event::EventEnvelope;
use doorstep_core::event_log::EventLog;
use doorstep_core::ids::{DeviceSeq, EventId};
use doorstep_core::lifecycle::{Command, VisitEvent};
use doorstep_core::policy::{PolicyMinutes, Preset};
use doorstep_core::protocol::{HeldVisit, PhoneHoldings};

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

/// The app in a VirtualDom, with the element ids it has created so far, keyed by their `id` attribute.
struct Harness {
    dom: VirtualDom,
    ids: HashMap<String, ElementId>,
}

impl Harness {
    fn start(store: &AppStore) -> Self {
        dioxus::html::set_event_converter(Box::new(SerializedHtmlEventConverter));
        let clock = Clock::fixed(at(8, 30), FixedOffset::east_opt(0).unwrap());
        let mut dom = VirtualDom::new(App)
            .with_root_context(store.clone())
            .with_root_context(clock);
        let edits = dom.rebuild_to_vec();
        let mut harness = Self {
            dom,
            ids: HashMap::new(),
        };
        harness.learn(&edits);
        harness
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
        let element = *self.ids.get(target).unwrap_or_else(|| {
            panic!(
                "no element with id {target:?}; known: {:?}",
                self.ids.keys()
            )
        });
        let data = PlatformEventData::new(Box::<SerializedMouseData>::default());
        let event = Event::new(Rc::new(data) as Rc<dyn Any>, true);
        self.dom.runtime().handle_event("click", event, element);
        let edits = self.dom.render_immediate_to_vec();
        self.learn(&edits);
    }

    /// The rendered page as text a person would read (the few entities the renderer escapes, undone).
    fn html(&self) -> String {
        dioxus_ssr::render(&self.dom)
            .replace("&#39;", "'")
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
    assert!(html.contains(Briefing::STANDING_RULES[0]));
    assert!(html.contains("Leaving now"));
    assert!(
        store.waiting().unwrap().is_empty(),
        "opening a visit records nothing"
    );

    app.click("step-leaving-now");
    let waiting = store.waiting().unwrap();
    assert_eq!(waiting.len(), 1, "the tap recorded one event");
    match &waiting[0].event {
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
        html.contains("1 waiting"),
        "the status line counts it: {html}"
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
        1,
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
