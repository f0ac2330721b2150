//! The screens through Dioxus's VirtualDom: a real event log in a temporary folder, the real `App`, real
//! clicks delivered to the elements' handlers, and the rendered HTML read back.

use std::any::Any;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use dioxus::core::{AttributeValue, ElementId, Mutation, Mutations};
use dioxus::html::{
    PlatformEventData, SerializedFormData, SerializedHtmlEventConverter, SerializedMouseData,
};
use dioxus::prelude::*;
use doorstep::app::{App, Clock, ClockHand};
use doorstep::enrolment::Credential;
use doorstep::platform::{Notice, PlatformCall, RecordingPlatform, SharedPlatform};
use doorstep::store::{AppStore, PinKind};
use doorstep::vault::Vault;
use doorstep_core::domain::{
    Address, Briefing, Pupil, RiskAssessment, School, SchoolTimeZone, Visit, VisitPurpose,
    VisitStaff,
};
use doorstep_core::event::EventEnvelope;
use doorstep_core::event_log::{Delivery, EventLog};
use doorstep_core::ids::{DeviceSeq, EventId, VisitId};
use doorstep_core::lifecycle::{BriefingCheck, CancelReason, Command, DuressVia, VisitEvent};
use doorstep_core::policy::{PolicyMinutes, Preset};
use doorstep_core::protocol::{HeldVisit, PhoneHoldings};
use doorstep_core::sync_plan::OutboxUpdate;
use doorstep_core::test_support::at;

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
            postcode: "LS6 2AB".parse().unwrap(),
        },
        agreed_time: time,
        expected_length: PolicyMinutes::new(45).unwrap(),
        staff: vec![
            VisitStaff {
                id: "sam".parse().unwrap(),
                name: "Sam Patel".into(),
                phone: "07700 900001".parse().unwrap(),
            },
            VisitStaff {
                id: "alex".parse().unwrap(),
                name: "Alex Jones".into(),
                phone: "07700 900002".parse().unwrap(),
            },
        ],
        briefing,
    }
}

/// Sam's phone, holding an authorised visit at 10:00 and, listed after it, an unauthorised one at 09:00.
fn sams_phone(dir: &std::path::Path, with_holdings: bool) -> AppStore {
    sams_phone_in(dir, with_holdings, SchoolTimeZone::default())
}

/// Sam's phone, its school in `zone`.
fn sams_phone_in(dir: &std::path::Path, with_holdings: bool, zone: SchoolTimeZone) -> AppStore {
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
                office_phone: "0113 496 0000".parse().unwrap(),
                time_zone: zone,
            },
            policy: doorstep_core::policy::Policy {
                code_phrases: Some(doorstep_office::demo::demo_code_phrases()),
                ..Preset::PrimaryHeadteacher.policy()
            },
            staff: "sam".parse().unwrap(),
            staff_name: "Sam Patel".into(),
            visits: vec![
                HeldVisit {
                    visit: authorised,
                    events: vec![authorisation],
                    times: Vec::new(),
                },
                HeldVisit {
                    visit: waiting,
                    events: Vec::new(),
                    times: Vec::new(),
                },
            ],
        };
        log.save_holdings(&holdings, at(8, 0)).unwrap();
    }
    let store = AppStore::new(log).with_credential(Credential {
        office_url: "https://office.example".into(),
        device_id: "phone-sam".parse().unwrap(),
        token: TEXT_TOKEN.into(),
        expires_at: at(8, 0) + chrono::TimeDelta::days(30),
        staff: sam(),
        staff_name: "Sam Taylor".into(),
        school_name: "Demo Primary".into(),
    });
    store.set_pins(PIN, SECOND_PIN, at(8, 0)).unwrap();
    store
}

/// The PINs Sam chose when the phone was set up.
const PIN: &str = "2468";
const SECOND_PIN: &str = "1357";

/// Sam's phone as the app opens it: a sealed data folder (its key held by a recording platform, which
/// the returned handle shares), with Sam's PINs chosen.
fn sealed_phone(dir: &std::path::Path) -> (AppStore, Arc<RecordingPlatform>) {
    let platform = Arc::new(RecordingPlatform::new(dir));
    let vault = Vault::create(dir, platform.clone()).unwrap();
    let store = AppStore::open(Arc::new(vault), &"phone-sam".parse().unwrap()).unwrap();
    store.set_pins(PIN, SECOND_PIN, at(8, 0)).unwrap();
    (store, platform)
}

/// The same phone opened again (after a restart).
fn reopened(dir: &std::path::Path, platform: &Arc<RecordingPlatform>) -> AppStore {
    let vault = Vault::open(dir, platform.clone()).unwrap().unwrap();
    AppStore::open(Arc::new(vault), &"phone-sam".parse().unwrap()).unwrap()
}

/// The device token in the harness's phone's credential, which it signs its texts with.
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
            .with_root_context(clock);
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
            .replace("&#34;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    }
}

/// Words the family in the room must never read on the phone, nor hear a screen reader say.
const FORBIDDEN: [&str; 5] = ["alert", "alarm", "duress", "emergency", "danger"];

/// What a person can read or hear on the page: its text and the names a screen reader announces
/// (`aria-label`, `title`, `placeholder`, `alt`), not its tags, classes, ids or ARIA roles.
fn readable(raw_html: &str) -> String {
    let unescape = |text: &str| {
        text.replace("&#39;", "'")
            .replace("&quot;", "\"")
            .replace("&#34;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    };
    let mut out = String::new();
    let mut rest = raw_html;
    while let Some(open) = rest.find('<') {
        out.push_str(&unescape(&rest[..open]));
        out.push(' ');
        let Some(close) = rest[open..].find('>') else {
            break;
        };
        let tag = &rest[open..open + close];
        if tag.starts_with("<style") {
            let end = rest.find("</style>").map_or(rest.len(), |end| end + 8);
            rest = &rest[end..];
            continue;
        }
        for name in ["aria-label", "title", "placeholder", "alt"] {
            let marker = format!(" {name}=\"");
            if let Some(start) = tag.find(&marker) {
                let value = &tag[start + marker.len()..];
                let value = &value[..value.find('"').unwrap_or(value.len())];
                out.push_str(&unescape(value));
                out.push(' ');
            }
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(&unescape(rest));
    out
}

/// Checks that nothing readable on the screen now says alert, alarm, duress, emergency or danger.
fn assert_discreet(app: &Harness, screen: &str) {
    let text = readable(&dioxus_ssr::render(&app.dom)).to_lowercase();
    for word in FORBIDDEN {
        assert!(
            !text.contains(word),
            "{word:?} readable on the screen {screen}:\n{text}"
        );
    }
}

fn position(html: &str, text: &str) -> usize {
    html.find(text)
        .unwrap_or_else(|| panic!("{text:?} is not on the screen:\n{html}"))
}

#[tokio::test]
async fn the_phone_shows_every_time_on_the_schools_clock_whatever_zone_the_phone_is_in() {
    let dir = tempfile::tempdir().unwrap();
    // The phone's own clock says UTC; its school is in Auckland (NZDT, UTC+13 on the tests' day).
    let store = sams_phone_in(
        dir.path(),
        true,
        SchoolTimeZone::parse("Pacific/Auckland").unwrap(),
    );
    let app = Harness::start(&store);
    let html = app.html();
    let nine = position(&html, "22:00");
    let ten = position(&html, "23:00");
    assert!(
        nine < ten,
        "the visits at 22:00 and 23:00, Auckland time:\n{html}"
    );
    assert!(
        !html.contains("10:00"),
        "no time on the phone's own clock: {html}"
    );
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
        matches!(&waiting[0].event, VisitEvent::BriefingRead { staff, ticked, .. }
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

#[tokio::test]
async fn an_office_address_that_is_not_https_is_named_on_the_status_line() {
    let dir = tempfile::tempdir().unwrap();
    let store = sams_phone(dir.path(), true);
    let reason = doorstep::enrolment::OfficeUrl::parse("http://office.school.example")
        .unwrap_err()
        .to_string();
    store.refuse_link(reason);
    let html = Harness::start(&store).html();
    assert!(
        html.contains("Not sending to the office: this phone talks to the office only over HTTPS"),
        "{html}"
    );
    assert!(!html.contains("All confirmed"), "{html}");
}

#[tokio::test]
async fn a_phone_out_of_touch_for_the_policys_days_says_so_on_today() {
    let dir = tempfile::tempdir().unwrap();
    drop(sams_phone(dir.path(), true));
    // The last exchange with the office a week before the screen's clock (the policy's seven days).
    let mut log = EventLog::open(
        &dir.path().join("phone.sqlite3"),
        &"phone-sam".parse().unwrap(),
    )
    .unwrap();
    let last = at(8, 0) - chrono::TimeDelta::days(7);
    log.note_sync_success(last, last).unwrap();
    let store = AppStore::new(log);
    let html = Harness::start_at(&store, at(8, 30)).html();
    assert!(
        html.contains("Briefings and addresses were deleted from this phone: it has not reached the office for 7 days"),
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
    assert_discreet(&app, "after the request was sent");
    assert!(
        html.contains("Noted. Office number: 0113 496 0000"),
        "{html}"
    );
    assert!(html.contains("href=\"tel:01134960000\""), "{html}");
    assert!(html.contains("Waiting to send"), "{html}");
    assert!(!html.contains("Office has your request"));
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
    assert!(!html.contains("Office has your request"));

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
    assert!(html.contains("Office has your request"), "{html}");
    assert!(!lower(&html).contains("alert"), "{html}");
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
    let (normal_screen, normal_events) = leave_with(PIN).await;
    let (duress_screen, duress_events) = leave_with(SECOND_PIN).await;
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
    for reason in CancelReason::AT_THE_DOOR {
        assert!(app.html().contains(reason.label()), "{}", reason.label());
    }
    for not_at_the_door in [
        CancelReason::FamilyCancelled,
        CancelReason::CalledOffByOffice,
    ] {
        assert!(
            !app.html().contains(not_at_the_door.label()),
            "{} is not a reason offered at the door",
            not_at_the_door.label()
        );
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
        html.contains(
            "Outcome: Cancelled before it began: Felt unsafe.\nReason given for cancelling:\n\
             Shouting from inside; we did not knock\n\
             The DSL must be told at once (this phone cannot know whether they have been).\n"
        ),
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
    for digit in PIN.chars() {
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
    for digit in PIN.chars() {
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
        html.contains(
            "Home visit record for CPOMS\n*** SAFEGUARDING CONCERN ***\n\
             The DSL must be told at once (this phone cannot know whether they have been).\n\n\
             Pupil: Ava Smith\nPurpose: Safe and well check\n"
        ),
        "{html}"
    );
    assert!(
        html.contains(
            "Outcome: The visit took place from 10:00 GMT; everyone had left by 10:40 GMT."
        ),
        "{html}"
    );
    assert!(
        html.contains("Agreements with parents:\nAva back on Monday; mother to ring the office\n")
    );
    assert!(html.contains("Safeguarding concern: YES\nThe DSL must be told at once"));
    for never in ["passed to the DSL", "Passed on", "delivered"] {
        assert!(!html.contains(never), "the phone cannot know that: {html}");
    }
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
    assert!(log
        .calls()
        .contains(&PlatformCall::Vibrated(doorstep::platform::Pattern::Urgent)));
    assert!(
        !log.calls()
            .iter()
            .any(|call| matches!(call, PlatformCall::PlayedAlertSound(_))),
        "in the house it vibrates, with no sound through silent mode: {:?}",
        log.calls()
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
    // The phone as the app opens it, with its sealed PIN file in the data folder.
    let (store, platform) = sealed_phone(dir.path());
    let mut app = Harness::start_at(&store, at(9, 0));
    app.click("today-pins-link");
    assert!(app.html().contains("Your PINs"), "{}", app.html());

    // A wrong current PIN changes nothing.
    app.input("pin-current", "5555");
    app.input("pin-new", "3691");
    app.input("pin-new-second", "8024");
    app.click("pins-save");
    assert!(app
        .html()
        .contains("Not changed: that is not your PIN now."));
    assert_eq!(store.check_pin(PIN), PinKind::Normal);
    assert_eq!(store.check_pin("3691"), PinKind::Wrong);

    // The same PIN twice is refused, with the reason; so is one anybody would try first.
    app.input("pin-current", PIN);
    app.input("pin-new-second", "3691");
    app.click("pins-save");
    assert!(
        app.html()
            .contains("Not changed: the two PINs must differ."),
        "{}",
        app.html()
    );
    app.input("pin-new-second", "0000");
    app.click("pins-save");
    assert!(
        app.html().contains(
            "Not changed: your second PIN is too easy to guess (one digit four times): choose another."
        ),
        "{}",
        app.html()
    );
    assert_eq!(store.check_pin(PIN), PinKind::Normal);

    app.input("pin-new-second", "8024");
    app.click("pins-save");
    assert!(app.html().contains("Saved. Use your new PINs from now on."));
    assert_eq!(store.check_pin("3691"), PinKind::Normal);
    assert_eq!(store.check_pin("8024"), PinKind::Duress);
    assert_eq!(store.check_pin(PIN), PinKind::Wrong);

    // Kept on the phone: the store opened again knows them.
    drop(app);
    let again = reopened(dir.path(), &platform);
    assert_eq!(again.check_pin("8024"), PinKind::Duress);
}

#[tokio::test]
async fn a_phone_clock_seven_minutes_fast_is_named_and_every_time_shown_is_the_offices() {
    let dir = tempfile::tempdir().unwrap();
    let store = sams_phone(dir.path(), true);
    // The morning's sync: the office answered at 08:00 while this phone read 08:07.
    let mut log = EventLog::open(
        &dir.path().join("phone.sqlite3"),
        &"phone-sam".parse().unwrap(),
    )
    .unwrap();
    log.note_sync_success(at(8, 7), at(8, 0)).unwrap();
    // The visit's steps as the phone's clock read them: they went in at 10:07 on the phone, 10:00 at the
    // office.
    let fast = chrono::TimeDelta::minutes(7);
    store
        .perform(
            &ten(),
            Command::ConfirmBriefing {
                staff: sam(),
                ticked: BriefingCheck::ALL.to_vec(),
            },
            at(8, 20) + fast,
        )
        .unwrap();
    depart(&store, sam(), at(9, 30) + fast);
    depart(&store, alex(), at(9, 31) + fast);
    store
        .perform(
            &ten(),
            Command::ArriveTogether {
                by: sam(),
                staff: vec![sam(), alex()],
            },
            at(9, 58) + fast,
        )
        .unwrap();
    store
        .perform(&ten(), Command::StartVisit { by: sam() }, at(10, 0) + fast)
        .unwrap();

    let mut app = Harness::start_at(&store, at(10, 5) + fast);
    app.click("visit-v-ten");
    let html = app.html();
    assert!(
        html.contains("This phone's clock is 7 minutes fast; times shown are the office's"),
        "{html}"
    );
    assert!(
        html.contains("office confirmed 08:00"),
        "the last exchange at the office's time: {html}"
    );
    assert!(html.contains("Your last step, went in at 10:00"), "{html}");
    assert!(html.contains("Next check-in at 10:10"), "{html}");
    assert!(html.contains("5:00"), "five minutes in: {html}");

    // The prompt and the miss follow the office's clock: due at 10:10 there, overdue at 10:15.
    app.set_time(at(10, 10) + fast).await;
    assert!(app.html().contains("Time to check in."), "{}", app.html());
    app.set_time(at(10, 14) + fast).await;
    assert!(!own(&store)
        .iter()
        .any(|e| matches!(e, VisitEvent::CheckInMissed { .. })));
    app.set_time(at(10, 15) + fast).await;
    assert!(
        app.html()
            .contains("Check-in overdue since 10:10. Tap I'm OK now."),
        "{}",
        app.html()
    );
    assert!(own(&store).contains(&VisitEvent::CheckInMissed {
        staff: sam(),
        due_at: at(10, 10)
    }));
}

// ---------------------------------------------------------------------------------------------------------
// Running late, not going ahead, the office's decisions and steps it will not honour.

/// Adds `event` to what the office sent for the 10:00 visit, as recorded by `device` at `at` (the office's
/// time for it), as the next sync would bring it. Open the app after this: it reads its store afresh.
fn from_office(
    dir: &std::path::Path,
    device: &str,
    event: VisitEvent,
    at: DateTime<Utc>,
) -> EventId {
    let mut log =
        EventLog::open(&dir.join("phone.sqlite3"), &"phone-sam".parse().unwrap()).unwrap();
    let mut holdings = log.holdings().unwrap().unwrap();
    let held = holdings
        .visits
        .iter_mut()
        .find(|held| held.visit.id == ten())
        .unwrap();
    let seq = held
        .events
        .iter()
        .filter(|e| e.device.as_str() == device)
        .count() as u64
        + 1;
    let envelope = EventEnvelope {
        id: EventId::new_v7(),
        device: device.parse().unwrap(),
        seq: DeviceSeq::new(seq).unwrap(),
        visit: ten(),
        recorded_at: at,
        event,
    };
    let id = envelope.id;
    held.events.push(envelope);
    log.save_holdings(&holdings, at).unwrap();
    id
}

#[tokio::test]
async fn running_late_records_a_new_arrival_shown_here_and_on_the_partners_phone() {
    let dir = tempfile::tempdir().unwrap();
    let store = sams_phone(dir.path(), true);
    read_briefing(&store);
    let mut app = Harness::start_at(&store, at(9, 40));
    app.click("visit-v-ten");
    app.click("late-open");
    let html = app.html();
    assert!(html.contains("+10 min (10:10)"), "{html}");
    assert!(html.contains("+30 min (10:30)"), "{html}");
    app.click("late-plus-10");
    assert_eq!(
        own(&store).last(),
        Some(&VisitEvent::RunningLate {
            staff: sam(),
            expected_arrival: at(10, 10)
        })
    );
    assert!(
        app.html().contains("You are running late: expected 10:10"),
        "{}",
        app.html()
    );

    // A time typed in; nonsense changes nothing.
    app.click("late-open");
    app.input("late-time", "soon");
    app.click("late-save");
    assert!(app
        .html()
        .contains("Type the time as hours and minutes, like 14:05."));
    app.input("late-time", "10:25");
    app.click("late-save");
    assert_eq!(
        own(&store).last(),
        Some(&VisitEvent::RunningLate {
            staff: sam(),
            expected_arrival: at(10, 25)
        })
    );
    assert!(app.html().contains("You are running late: expected 10:25"));

    // Leaving now still follows, and the partner's phone is told.
    app.click("step-leaving-now");
    store
        .perform(
            &ten(),
            Command::RunningLate {
                staff: alex(),
                expected_arrival: at(10, 40),
            },
            at(9, 41),
        )
        .unwrap();
    app.settle().await;
    let html = app.html();
    assert!(
        html.contains("Alex is running late: expected 10:40"),
        "{html}"
    );
    assert!(
        html.contains("You are running late: expected 10:25"),
        "{html}"
    );
}

#[tokio::test]
async fn before_setting_off_not_going_ahead_is_asked_twice_then_ends_the_visit() {
    let dir = tempfile::tempdir().unwrap();
    let store = sams_phone(dir.path(), true);
    let mut app = Harness::start_at(&store, at(9, 0));
    app.click("visit-v-ten");
    let html = app.html();
    assert!(
        !html.contains("Cancel the visit"),
        "the door's reasons are for the door: {html}"
    );
    app.click("not-going-ahead-open");
    assert!(own(&store).is_empty(), "the first tap only asks");
    app.click("not-going-ahead-back");
    app.click("not-going-ahead-open");
    app.input(
        "not-going-ahead-note",
        "Mum rang at 08:55: Ava is at her nan's",
    );
    app.click("not-going-ahead-confirm");
    assert_eq!(
        own(&store),
        [VisitEvent::Cancelled {
            staff: sam(),
            reason: CancelReason::FamilyCancelled,
            note: "Mum rang at 08:55: Ava is at her nan's".into()
        }]
    );
    let html = app.html();
    assert!(
        html.contains("Not going ahead: you said the family cancelled."),
        "{html}"
    );
    assert!(html.contains("Not going ahead"), "the phase: {html}");
    for gone in ["Leaving now", "Running late", "Read the briefing and tick"] {
        assert!(!html.contains(gone), "{gone}: {html}");
    }
}

#[tokio::test]
async fn called_off_while_on_the_way_the_office_watches_until_on_my_way_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = sams_phone(dir.path(), true);
    read_briefing(&store);
    depart(&store, sam(), at(9, 30));
    from_office(
        dir.path(),
        "office",
        VisitEvent::CalledOff {
            by: "head".parse().unwrap(),
            reason: "Ava is in school today".into(),
        },
        at(9, 35),
    );
    let mut app = Harness::start_at(&store, at(9, 40));
    app.click("visit-v-ten");
    let html = app.html();
    assert!(
        html.contains(
            "The office called the visit off (Ava is in school today). The office is still watching you: tap \"On my way back\" when you are not going in."
        ),
        "{html}"
    );
    assert!(!html.contains("I'm outside"), "{html}");
    let card = store.visit(&ten()).unwrap().unwrap();
    assert!(card.state.is_watched(&sam()), "until Sam says so");

    app.click("step-on-my-way-back");
    assert_eq!(
        own(&store).last(),
        Some(&VisitEvent::Cancelled {
            staff: sam(),
            reason: CancelReason::CalledOffByOffice,
            note: "On my way back: the office called the visit off (Ava is in school today)."
                .into()
        })
    );
    let card = store.visit(&ten()).unwrap().unwrap();
    assert!(!card.state.is_watched(&sam()));
    let html = app.html();
    assert!(
        html.contains("The office called the visit off (Ava is in school today)."),
        "{html}"
    );
    assert!(!html.contains("On my way back"), "{html}");
    assert!(html.contains("Write-up"), "{html}");
}

#[tokio::test]
async fn a_step_the_office_will_not_honour_is_shown_loudly_and_the_steps_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = sams_phone(dir.path(), true);
    read_briefing(&store);
    depart(&store, sam(), at(9, 30));
    // Out of signal, Sam cancelled at 10:01 not knowing that Alex had gone in alone at 09:58.
    store
        .perform(
            &ten(),
            Command::Cancel {
                staff: sam(),
                reason: CancelReason::FeltUnsafe,
                note: "Shouting from inside".into(),
            },
            at(10, 1),
        )
        .unwrap();
    for (event, when) in [
        (
            VisitEvent::Departed {
                staff: alex(),
                expected_arrival: at(10, 0),
                expected_end: at(10, 45),
            },
            at(9, 31),
        ),
        (VisitEvent::ArrivedOutside { staff: alex() }, at(9, 55)),
        (
            VisitEvent::VisitStarted {
                by: alex(),
                staff: vec![alex()],
            },
            at(9, 58),
        ),
    ] {
        from_office(dir.path(), "phone-alex", event, when);
    }
    let mut app = Harness::start_at(&store, at(10, 5));
    app.click("visit-v-ten");
    let html = app.html();
    assert!(
        html.contains("Not accepted by the office: Alex is in the visit: the cancel ended only your own part (cancelled, 10:01)"),
        "{html}"
    );
    assert!(
        html.contains("role=\"alert\" id=\"not-accepted-0\""),
        "{html}"
    );
    assert!(html.contains("Alex Jones: in the visit"), "{html}");
    // It ended Sam's own part, and Sam's next step (the write-up) is there at once.
    assert!(
        html.contains("Your part in this visit ended (Felt unsafe)."),
        "{html}"
    );
    assert!(html.contains("Write-up"), "{html}");
}

#[tokio::test]
async fn a_partner_vouched_for_before_their_phone_said_they_set_off_is_shown_as_still_awaited() {
    let dir = tempfile::tempdir().unwrap();
    let store = sams_phone(dir.path(), true);
    read_briefing(&store);
    depart(&store, sam(), at(9, 30));
    let mut app = Harness::start_at(&store, at(9, 58));
    app.click("visit-v-ten");
    app.click("step-arrived-together");
    let html = app.html();
    assert!(
        html.contains("Alex Jones: not set off on their own phone yet; you said you arrived together, and the office still waits for Alex's phone"),
        "{html}"
    );
    assert!(
        html.contains("Not accepted by the office: Alex's own phone has not said they set off: Alex counts as arrived only once it does"),
        "{html}"
    );
    assert!(
        html.contains("We're going in"),
        "the vouch still lets the pair go in together: {html}"
    );
    app.click("step-going-in");
    assert!(matches!(
        own(&store).last(),
        Some(VisitEvent::VisitStarted { .. })
    ));
}

#[tokio::test]
async fn no_screen_offers_to_stand_down_a_partners_request_or_one_made_with_the_second_pin() {
    let dir = tempfile::tempdir().unwrap();
    let store = sams_phone(dir.path(), true);
    inside(&store);
    from_office(
        dir.path(),
        "phone-alex",
        VisitEvent::DuressRaised {
            staff: alex(),
            via: DuressVia::CodePhraseButton,
        },
        at(10, 10),
    );
    let mut app = Harness::start_at(&store, at(10, 12));
    app.click("visit-v-ten");
    let html = app.html();
    assert!(
        !html.contains("stand-down") && !html.contains("Cancel my request"),
        "Alex's request is Alex's (or the office's) to end: {html}"
    );
    assert_discreet(&app, "with a partner's request standing");

    // Sam's own request by the second PIN: nothing on screen at all, so nothing to end either.
    store
        .perform(
            &ten(),
            Command::RaiseDuress {
                staff: sam(),
                via: DuressVia::DuressPin,
            },
            at(10, 13),
        )
        .unwrap();
    app.settle().await;
    let html = app.html();
    assert!(
        !html.contains("stand-down") && !html.contains("Noted."),
        "{html}"
    );
}

#[tokio::test]
async fn a_briefing_the_office_changed_is_read_again_with_only_the_checks_the_policy_asks_for() {
    let dir = tempfile::tempdir().unwrap();
    let store = sams_phone(dir.path(), true);
    read_briefing(&store);
    // This school's policy does not ask for animals to be secured, so the checklist has no pets line.
    let mut log = EventLog::open(
        &dir.path().join("phone.sqlite3"),
        &"phone-sam".parse().unwrap(),
    )
    .unwrap();
    let mut holdings = log.holdings().unwrap().unwrap();
    holdings.policy.animals_secured_or_cancel = false;
    log.save_holdings(&holdings, at(8, 30)).unwrap();
    from_office(
        dir.path(),
        "office",
        VisitEvent::BriefingUpdated {
            by: "head".parse().unwrap(),
            version: 1,
        },
        at(8, 40),
    );
    let mut app = Harness::start_at(&store, at(9, 0));
    app.click("visit-v-ten");
    let html = app.html();
    assert!(
        html.contains("The office changed the briefing at 08:40 (by head). Read it again and tick the checklist before you leave."),
        "{html}"
    );
    assert!(html.contains(doorstep::steps::BRIEFING_CHANGED), "{html}");
    assert!(!html.contains("Leaving now"), "{html}");
    assert!(
        !html.contains(BriefingCheck::PetsArrangementKnown.label()),
        "{html}"
    );
    assert!(html.contains("briefing-check-3") && !html.contains("briefing-check-4"));

    for index in 0..4 {
        app.click(&format!("briefing-check-{index}"));
    }
    app.click("briefing-confirm");
    match own(&store).last() {
        Some(VisitEvent::BriefingRead {
            ticked, version, ..
        }) => {
            assert_eq!(*version, 1, "the version read is recorded");
            assert_eq!(ticked.len(), 4);
        }
        other => panic!("expected the briefing read again, got {other:?}"),
    }
    let html = app.html();
    assert!(html.contains("Leaving now"), "{html}");
    assert!(!html.contains("briefing-changed"), "{html}");
}

#[tokio::test]
async fn in_the_house_the_heading_is_the_time_and_first_name_and_the_briefing_is_folded_away() {
    let dir = tempfile::tempdir().unwrap();
    let store = sams_phone(dir.path(), true);
    inside(&store);
    let mut app = Harness::start_at(&store, at(10, 5));
    app.click("visit-v-ten");
    let html = app.html();
    assert!(
        html.contains("<h1 id=\"visit-heading\">10:00 · Ava</h1>"),
        "{html}"
    );
    for private in [
        "Safe and well check",
        "A large dog",
        "1 High Street",
        "Ava Smith",
    ] {
        assert!(
            !html.contains(private),
            "{private} on the screen in the house: {html}"
        );
    }
    assert!(html.contains("aria-expanded=\"false\""), "{html}");
    app.click("briefing-toggle");
    let html = app.html();
    assert!(
        html.contains("Safe and well check") && html.contains("A large dog"),
        "{html}"
    );
    app.click("briefing-toggle");
    assert!(!app.html().contains("A large dog"));
}

#[tokio::test]
async fn the_write_up_names_the_policys_record_system_and_safeguarding_contact() {
    let dir = tempfile::tempdir().unwrap();
    let store = sams_phone(dir.path(), true);
    let mut log = EventLog::open(
        &dir.path().join("phone.sqlite3"),
        &"phone-sam".parse().unwrap(),
    )
    .unwrap();
    let mut holdings = log.holdings().unwrap().unwrap();
    holdings.policy.record_system = "MyConcern".into();
    holdings.policy.safeguarding_concerns_to = doorstep_core::domain::Role::SafeguardingLead;
    log.save_holdings(&holdings, at(8, 30)).unwrap();
    let mut app = Harness::start_at(&store, at(9, 0));
    app.click("visit-v-ten");
    app.click("not-going-ahead-open");
    app.click("not-going-ahead-confirm");
    app.input("writeup-discussed", "Mum rang: Ava is unwell");
    app.click("writeup-concern-yes");
    assert!(
        app.html()
            .contains("Tell the safeguarding lead now — in person or by phone"),
        "{}",
        app.html()
    );
    app.click("writeup-save");
    let html = app.html();
    assert!(html.contains("Ready to paste into MyConcern"), "{html}");
    assert!(
        html.contains("aria-label=\"Summary for MyConcern\""),
        "{html}"
    );
    assert!(!html.contains("CPOMS"), "{html}");
    assert!(
        html.contains(
            "Safeguarding concern: YES\nThe safeguarding lead must be told at once (this phone \
             cannot know whether they have been)."
        ),
        "{html}"
    );
}

#[tokio::test]
async fn the_loud_sound_for_a_late_check_in_is_off_until_turned_on_in_settings_and_kept_on_the_phone(
) {
    let dir = tempfile::tempdir().unwrap();
    let (store, platform) = sealed_phone(dir.path());
    assert!(
        !store.phone_settings().sound_for_late_check_in,
        "off by default"
    );
    let mut app = Harness::start_at(&store, at(9, 0));
    app.click("today-settings-link");
    let html = app.html();
    assert!(html.contains("Check-in prompts"), "{html}");
    assert!(
        html.contains("role=\"switch\" aria-checked=\"false\""),
        "{html}"
    );
    app.click("setting-late-sound");
    assert!(app.html().contains("Saved on this phone."));
    assert!(
        app.html().contains("aria-checked=\"true\""),
        "{}",
        app.html()
    );
    assert!(store.phone_settings().sound_for_late_check_in);
    drop(app);
    let again = reopened(dir.path(), &platform);
    assert!(
        again.phone_settings().sound_for_late_check_in,
        "kept on the phone"
    );

    // Turned on, a late check-in plays the loud sound as well as vibrating.
    let dir = tempfile::tempdir().unwrap();
    let store = sams_phone(dir.path(), true);
    inside(&store);
    store
        .set_phone_settings(doorstep::store::PhoneSettings {
            sound_for_late_check_in: true,
        })
        .unwrap();
    let platform = RecordingPlatform::new(dir.path());
    let log = platform.log();
    let mut app = Harness::start_with_platform(&store, at(10, 5), std::sync::Arc::new(platform));
    app.set_time(at(10, 11)).await;
    assert!(
        !log.calls()
            .iter()
            .any(|call| matches!(call, PlatformCall::PlayedAlertSound(_))),
        "not for a check-in that is only due"
    );
    app.set_time(at(10, 15)).await;
    assert!(
        log.calls().contains(&PlatformCall::PlayedAlertSound(
            doorstep::platform::Urgency::Urgent
        )),
        "{:?}",
        log.calls()
    );
}

/// Every screen a family might see, from the door to the write-up, checked against the forbidden words:
/// what is written and what a screen reader would say.
#[tokio::test]
async fn no_screen_from_the_door_on_says_alert_alarm_duress_emergency_or_danger() {
    // At the door: waiting, the door's cancel, the wait over.
    let dir = tempfile::tempdir().unwrap();
    let store = sams_phone(dir.path(), true);
    read_briefing(&store);
    depart(&store, sam(), at(9, 30));
    let mut app = Harness::start_at(&store, at(9, 55));
    app.click("visit-v-ten");
    app.click("step-im-outside");
    let readable_now = readable(&dioxus_ssr::render(&app.dom));
    assert!(
        readable_now.contains("Tell the office everyone on the visit arrived together"),
        "the check reads what a screen reader says too: {readable_now}"
    );
    assert_discreet(&app, "waiting at the door");
    app.click("cancel-open");
    assert_discreet(&app, "choosing why to cancel at the door");
    app.click("cancel-back");
    app.set_time(at(10, 16)).await;
    assert!(app.html().contains("No answer — cancel"));
    assert_discreet(&app, "after the wait at the door");

    // In the house: the timer, the check-in due and overdue, the discreet request in every state, the PIN
    // pad and a wrong PIN.
    let dir = tempfile::tempdir().unwrap();
    let store = sams_phone(dir.path(), true);
    inside(&store);
    let mut app = Harness::start_at(&store, at(10, 5));
    app.click("visit-v-ten");
    assert_discreet(&app, "in the visit");
    app.set_time(at(10, 10)).await;
    assert!(app.html().contains("Time to check in."));
    assert_discreet(&app, "with a check-in due");
    app.set_time(at(10, 16)).await;
    assert!(app.html().contains("Check-in overdue since 10:10"));
    assert_discreet(&app, "with a check-in overdue");
    app.click("request-open");
    assert_discreet(&app, "asking whether to send the request");
    app.click("request-send");
    assert_discreet(&app, "with the request waiting to send");
    app.set_time(at(10, 17)).await;
    assert!(app.html().contains("Text the office"));
    assert_discreet(&app, "with the request not yet confirmed");
    let request = store
        .own_events(&ten())
        .unwrap()
        .into_iter()
        .find(|(e, _)| matches!(e.event, VisitEvent::DuressRaised { .. }))
        .unwrap()
        .0;
    EventLog::open(
        &dir.path().join("phone.sqlite3"),
        &"phone-sam".parse().unwrap(),
    )
    .unwrap()
    .apply(&[OutboxUpdate::Confirm(request.id)], at(10, 17))
    .unwrap();
    app.set_time(at(10, 18)).await;
    assert!(app.html().contains("Office has your request"));
    assert_discreet(&app, "with the request confirmed");
    app.click("stand-down-open");
    app.click("stand-down-send");
    assert!(app.html().contains("a note is required"));
    assert_discreet(&app, "cancelling the request");
    app.click("step-ive-left");
    assert_discreet(&app, "on the PIN pad");
    for digit in "1111".chars() {
        app.click(&format!("pin-key-{digit}"));
    }
    app.click("pin-confirm");
    assert!(app.html().contains("that PIN is not right"));
    assert_discreet(&app, "after a wrong PIN");

    // Leaving with the second PIN: the screen after it, and the write-up.
    for digit in SECOND_PIN.chars() {
        app.click(&format!("pin-key-{digit}"));
    }
    app.click("pin-confirm");
    app.settle().await;
    assert!(app.html().contains("Write-up"));
    assert_discreet(&app, "after the second PIN");
}

#[tokio::test]
async fn before_leaving_the_partners_list_appears_only_when_a_partner_vouched_for_me() {
    let dir = tempfile::tempdir().unwrap();
    let store = sams_phone(dir.path(), true);
    let mut app = Harness::start_at(&store, at(9, 0));
    app.click("visit-v-ten");
    assert!(!app.html().contains("id=\"whereabouts\""), "{}", app.html());
    // Alex's phone (relayed by the office) says they arrived together, before Sam's phone said Sam set off.
    store
        .perform(
            &ten(),
            Command::Depart {
                staff: alex(),
                expected_arrival: at(10, 0),
                expected_end: at(10, 45),
            },
            at(9, 30),
        )
        .unwrap();
    store
        .perform(
            &ten(),
            Command::ArriveTogether {
                by: alex(),
                staff: vec![alex(), sam()],
            },
            at(9, 58),
        )
        .unwrap();
    app.settle().await;
    let html = app.html();
    assert!(
        html.contains("You: Alex Jones said you arrived together; the office still waits for this phone to say you set off"),
        "{html}"
    );
}
