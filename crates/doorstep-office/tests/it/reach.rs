//! Who is told, and what the records say about it: duress handed to its targets in the instant it is raised
//! (on the paused clock), every claim on the board, the visit page, the timeline and the records read from
//! the deliveries, the deputy and further contacts told when the authoriser's level does not acknowledge,
//! the out-of-hours responsible contact told of their visit's alarms, safeguarding notices sent to the
//! policy's role, a missing write-up flagged, closing a phone's duress standing it down, the admin page for
//! targets and the command line's `add-target`, and a database from before all this brought up to date.

use chrono::{DateTime, TimeDelta, Utc};
use doorstep_core::domain::{Role, SchoolTimeZone, StaffMember};
use doorstep_core::lifecycle::{AlarmOutcome, CancelReason, DuressVia, Phase, VisitEvent, WriteUp};
use doorstep_core::policy::{PolicyMinutes, Preset};
use doorstep_core::schedule::AlarmLevel;
use doorstep_core::test_support::{staff, visit};
use doorstep_office::alarms::{AlarmKind, NewAlarm};
use doorstep_office::notify::{NewTarget, TargetKind, WantedLevels};
use doorstep_office::records::cpoms_text;
use doorstep_office::requests::{timing, RequestDetails};
use doorstep_office::store::OFFICE_DEVICE;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::bench::{agreed, demo_school, minutes_after_agreed, Bench, Handoff};

const HEAD: &str = "head@oakfield.example";
const OFFICE: &str = "office@oakfield.example";
const DEPUTY: &str = "deputy@oakfield.example";
const DSL: &str = "dsl@oakfield.example";
const HOOK: &str = "https://pager.example/doorstep";

fn email(address: &str, wants: WantedLevels) -> NewTarget {
    NewTarget::email(address, wants).expect("a valid target")
}

/// A time as the board writes it (the demo school's clock, Europe/London).
fn hm(at: DateTime<Utc>) -> String {
    SchoolTimeZone::LONDON.hm(at)
}

/// Lets the engine and the notifier finish whatever the last step set off, without moving the clock.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

/// Every hand-off made so far, sorted by address.
fn handed_off(sent: &mut UnboundedReceiver<Handoff>) -> Vec<Handoff> {
    let mut all = Vec::new();
    while let Ok(handoff) = sent.try_recv() {
        all.push(handoff);
    }
    all.sort_by(|a, b| a.message.address.cmp(&b.message.address));
    all
}

fn addresses(handoffs: &[Handoff]) -> Vec<&str> {
    handoffs
        .iter()
        .map(|h| h.message.address.as_str())
        .collect()
}

// ---------------------------------------------------------------------------------------------------------
// Duress at once.

#[tokio::test(start_paused = true)]
async fn duress_from_a_phone_and_duress_heard_are_handed_to_their_targets_without_the_clock_moving()
{
    let mut sim = Bench::paused(Preset::PrimaryHeadteacher).await;
    sim.add_target(email(HEAD, WantedLevels::AUTHORISER));
    sim.add_target(email(OFFICE, WantedLevels::BOARD));
    let (_handoffs, mut sent) = sim.run_notifier();
    sim.start_visit().await;
    sim.advance_to(minutes_after_agreed(3)).await;
    settle().await;
    assert!(handed_off(&mut sent).is_empty(), "nothing to send yet");

    // Alex's phone raises duress with the duress PIN: the engine raises the alarm and the notifier hands it
    // to both targets in that same instant: the paused clock never moves while the test waits for them.
    let raised_at = sim.now();
    let instant = tokio::time::Instant::now();
    sim.send(
        "alex",
        VisitEvent::DuressRaised {
            staff: staff("alex"),
            via: DuressVia::DuressPin,
        },
    );
    let first = sent.recv().await.expect("a hand-off");
    let second = sent.recv().await.expect("a hand-off");
    assert_eq!(
        tokio::time::Instant::now(),
        instant,
        "no timer had to fire for the hand-off"
    );
    let mut both = [first, second];
    both.sort_by(|a, b| a.message.address.cmp(&b.message.address));
    assert_eq!(addresses(&both), [HEAD, OFFICE]);
    for handoff in &both {
        assert_eq!(handoff.at, raised_at, "handed over at the raise");
        assert!(handoff.message.payload.contains("duress raised by alex"));
    }
    settle().await;
    let duress = sim
        .alarms()
        .into_iter()
        .find(|a| a.kind == AlarmKind::Duress)
        .expect("the duress alarm");
    let deliveries = sim.store.deliveries_for_alarm(duress.id).unwrap();
    assert_eq!(deliveries.len(), 2);
    assert!(
        deliveries.iter().all(|d| d.delivered_at.is_some()),
        "{deliveries:?}"
    );

    // Reception hears the code phrase on visit-leo's phone call: "Duress heard" on the board is handed over
    // in the same instant too, not at the next escalation.
    sim.advance_to(minutes_after_agreed(4)).await;
    settle().await;
    assert!(handed_off(&mut sent).is_empty());
    let heard_at = sim.now();
    let instant = tokio::time::Instant::now();
    let (status, page) = sim
        .post("office", "/visits/visit-leo/duress-heard", &[])
        .await;
    assert_eq!(status, 303, "{page}");
    let mut both = [
        sent.recv().await.expect("a hand-off"),
        sent.recv().await.expect("a hand-off"),
    ];
    assert_eq!(tokio::time::Instant::now(), instant);
    both.sort_by(|a, b| a.message.address.cmp(&b.message.address));
    assert_eq!(addresses(&both), [HEAD, OFFICE]);
    for handoff in &both {
        assert_eq!(handoff.at, heard_at);
        assert!(
            handoff
                .message
                .payload
                .contains("reception heard the code phrase (Olu Office)"),
            "{}",
            handoff.message.payload
        );
        assert!(!handoff.message.payload.contains("Leo C."), "no pupil name");
    }
}

// ---------------------------------------------------------------------------------------------------------
// Honest records.

#[tokio::test(start_paused = true)]
async fn with_no_targets_the_board_and_admin_pages_say_so_and_no_alarm_claims_anyone_was_told() {
    let mut sim = Bench::paused(Preset::PrimaryHeadteacher).await;
    add_admin(&sim);
    for (who, path) in [("office", "/board/fragment"), ("ada", "/admin/staff")] {
        let (status, page) = sim.page(who, path).await;
        assert_eq!(status, 200, "{page}");
        assert!(
            page.contains("id=\"no-targets\"")
                && page.contains("No notification targets are set up"),
            "{path}: {page}"
        );
    }
    sim.start_visit().await;
    // Overdue at 10:30; nobody acknowledges it, so it reaches the headteacher's level at 10:35 and the
    // further contacts' at 10:45.
    sim.advance_to(minutes_after_agreed(30) + TimeDelta::seconds(1))
        .await;
    let (_, board) = sim.page("office", "/board/fragment").await;
    for needed in [
        "Nobody outside this board can be told: no contact is set up for the headteacher; ring Priya \
         Head on 07700 900001",
        "Nobody outside this board can be told: no contact is set up for the deputy and further \
         contacts; tell the deputy and further contacts yourself",
        &format!(
            "at the level of the deputy and further contacts since {}",
            hm(minutes_after_agreed(30))
        ),
    ] {
        assert!(board.contains(needed), "{needed:?} in {board}");
    }
    for claim in ["was told at", "is told", "has been told", "emailed the"] {
        assert!(!board.contains(claim), "{claim:?} in {board}");
    }
    let (_, page) = sim.page("office", "/visits/visit-ava").await;
    assert!(
        page.contains("no contact is set up for the headteacher; ring Priya Head on 07700 900001")
    );
    assert!(!page.contains("was told at") && !page.contains("emailed the"));
    let record = sim
        .office()
        .visit_record(&visit("visit-ava"))
        .unwrap()
        .unwrap();
    let text = cpoms_text(&record);
    assert!(
        text.contains(
            "  Nobody outside the board could be told: no contact is set up for the headteacher; ring \
             Priya Head on 07700 900001"
        ),
        "{text}"
    );
}

/// Ada, an admin of the demo school.
fn add_admin(sim: &Bench) {
    sim.store
        .add_staff(
            &demo_school(),
            &StaffMember {
                id: staff("ada"),
                name: "Ada Admin".into(),
                roles: vec![Role::Admin],
                phone: "07700 900010".parse().unwrap(),
                dbs: None,
            },
        )
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_board_the_visit_page_the_timeline_and_the_records_say_only_what_the_deliveries_show() {
    let mut sim = Bench::paused(Preset::PrimaryHeadteacher).await;
    sim.add_target(
        email(OFFICE, WantedLevels::BOARD)
            .named("Olu Office")
            .unwrap(),
    );
    sim.add_target(
        email(HEAD, WantedLevels::AUTHORISER)
            .named("Priya Head")
            .unwrap(),
    );
    let (handoffs, mut sent) = sim.run_notifier();
    handoffs.refuse(HEAD);
    sim.start_visit().await;
    sim.advance_to(minutes_after_agreed(15) + TimeDelta::seconds(1))
        .await;
    settle().await;
    let raised = minutes_after_agreed(15) + TimeDelta::seconds(1);
    assert_eq!(addresses(&handed_off(&mut sent)), [OFFICE]);
    sim.advance_to(minutes_after_agreed(20) + TimeDelta::seconds(1))
        .await;
    settle().await;
    let escalated = minutes_after_agreed(20) + TimeDelta::seconds(1);
    assert_eq!(addresses(&handed_off(&mut sent)), [HEAD]);

    let (_, board) = sim.page("office", "/board/fragment").await;
    let delivered = format!(
        "emailed the office, Olu Office (office@oakfield.example) {}, delivered",
        hm(raised)
    );
    let failed = format!(
        "emailed the headteacher, Priya Head (head@oakfield.example) {}: failed: 550 refused by the \
         test's server; trying again at {}",
        hm(escalated),
        hm(escalated + TimeDelta::seconds(10))
    );
    for needed in [delivered.as_str(), failed.as_str()] {
        assert!(board.contains(needed), "{needed:?} in {board}");
    }
    assert!(!board.contains("id=\"no-targets\""), "targets exist");
    assert!(!board.contains("was told"));

    let (_, page) = sim.page("office", "/visits/visit-ava").await;
    assert!(
        page.contains(&delivered) && page.contains(&failed),
        "{page}"
    );
    assert!(page.contains("Delivery failed: email to head@oakfield.example failed (attempt 1)"));

    // The full timeline is for those with a need to know: the headteacher (and the demo's DSL) reads it.
    let (_, timeline) = sim.page("head", "/visits/visit-ava/timeline").await;
    let utc = |at: DateTime<Utc>| at.format("%H:%M GMT").to_string();
    assert!(
        timeline.contains(&format!(
            "emailed the office, Olu Office (office@oakfield.example) {}, delivered",
            utc(raised)
        )),
        "{timeline}"
    );
    assert!(timeline
        .contains("Overdue alarm (check-in): delivery failed: email to head@oakfield.example"));

    let report = sim
        .office()
        .monthly_report(&demo_school(), 2026, 11)
        .unwrap()
        .to_text();
    assert!(
        report.contains(
            "Alarms that reached beyond the board: 1; a message delivered outside the board for 1; \
             nobody could be told, or a message never landed, for 1"
        ),
        "{report}"
    );

    // The head's server takes the retry: the record now says delivered, with the time it was.
    handoffs.allow(HEAD);
    sim.advance_to(escalated + TimeDelta::seconds(10)).await;
    settle().await;
    assert_eq!(addresses(&handed_off(&mut sent)), [HEAD]);
    let record = sim
        .office()
        .visit_record(&visit("visit-ava"))
        .unwrap()
        .unwrap();
    let text = cpoms_text(&record);
    for needed in [
        format!(
            "  emailed the office, Olu Office (office@oakfield.example) {}, delivered",
            utc(raised)
        ),
        format!(
            "  emailed the headteacher, Priya Head (head@oakfield.example) {}, delivered",
            utc(escalated + TimeDelta::seconds(10))
        ),
    ] {
        assert!(text.contains(&needed), "{needed:?} in {text}");
    }
}

// ---------------------------------------------------------------------------------------------------------
// Acknowledge, then close; the watch goes on.

#[tokio::test(start_paused = true)]
async fn an_acknowledged_alarm_stays_until_closed_and_the_silent_visit_raises_again_an_hour_on() {
    let mut sim = Bench::paused(Preset::PrimaryHeadteacher).await;
    sim.start_visit().await;
    sim.advance_to(minutes_after_agreed(16)).await;
    let alarm = sim.alarms()[0].clone();
    let (status, _) = sim
        .post(
            "office",
            &format!("/alarms/{}/acknowledge", alarm.id),
            &[("back", "board")],
        )
        .await;
    assert_eq!(status, 303);
    // Acknowledged: no climb to the headteacher's level.
    sim.advance_to(minutes_after_agreed(30)).await;
    assert_eq!(sim.alarm_of(alarm.id).level, AlarmLevel::Board);
    // Still silent an hour on: the next missed check-in is a new alarm, on the board and sounding.
    sim.advance_to(minutes_after_agreed(75) + TimeDelta::seconds(1))
        .await;
    let alarms = sim.alarms();
    assert_eq!(alarms.len(), 2, "{alarms:?}");
    assert!(alarms[1].needs_someone());
    let (_, board) = sim.page("office", "/board/fragment").await;
    assert!(
        board.contains("data-open-alarms=\"1\""),
        "the new one sounds"
    );
    assert!(
        board.contains(&format!("id=\"alarm-{}\"", alarm.id)),
        "the first is still handled"
    );
    let (status, _) = sim
        .post(
            "office",
            &format!("/alarms/{}/close", alarm.id),
            &[("outcome", "staff_safe")],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(
        sim.alarm_of(alarm.id).outcome,
        Some(AlarmOutcome::StaffSafe)
    );
}

#[tokio::test(start_paused = true)]
async fn closing_a_duress_pin_alert_records_the_offices_stand_down_and_ends_every_alert_it_covers()
{
    let mut sim = Bench::paused(Preset::PrimaryHeadteacher).await;
    sim.start_visit().await;
    sim.advance_to(minutes_after_agreed(3)).await;
    for who in ["alex", "sam"] {
        sim.send(
            who,
            VisitEvent::DuressRaised {
                staff: staff(who),
                via: DuressVia::DuressPin,
            },
        );
    }
    settle().await;
    let duress: Vec<_> = sim
        .alarms()
        .into_iter()
        .filter(|a| a.kind == AlarmKind::Duress)
        .collect();
    assert_eq!(duress.len(), 2);
    let (_, state) = sim.store.visit(&visit("visit-ava")).unwrap().unwrap();
    assert_eq!(state.phase(), Phase::Duress);

    sim.post(
        "head",
        &format!("/alarms/{}/acknowledge", duress[0].id),
        &[],
    )
    .await;
    let (status, page) = sim
        .post(
            "head",
            &format!("/alarms/{}/close", duress[0].id),
            &[
                ("outcome", "police_called"),
                ("note", "Police attended; both safe"),
            ],
        )
        .await;
    assert_eq!(status, 303, "{page}");
    // The office's stand-down is an event of the visit, so both alerts end there and on the phones.
    let (_, state) = sim.store.visit(&visit("visit-ava")).unwrap().unwrap();
    assert!(!state.duress_active(), "{state:?}");
    let events = sim.store.events_for_visit(&visit("visit-ava")).unwrap();
    let closed = events
        .iter()
        .find(|e| matches!(e.envelope.event, VisitEvent::AlertsClosed { .. }))
        .expect("the office's stand-down");
    assert_eq!(closed.envelope.device.as_str(), OFFICE_DEVICE);
    let VisitEvent::AlertsClosed {
        outcome, alerts, ..
    } = &closed.envelope.event
    else {
        unreachable!("matched above")
    };
    assert_eq!((*outcome, alerts.len()), (AlarmOutcome::PoliceCalled, 2));
    for alarm in &duress {
        let now = sim.alarm_of(alarm.id);
        assert_eq!(
            (
                now.outcome,
                now.closed_by.as_deref(),
                now.acknowledged_by.as_deref()
            ),
            (
                Some(AlarmOutcome::PoliceCalled),
                Some("Priya Head"),
                Some("Priya Head")
            )
        );
    }
    let holdings = sim.store.holdings(&sim.alex, sim.now()).unwrap();
    let held = holdings
        .visits
        .iter()
        .find(|h| h.visit.id == visit("visit-ava"))
        .expect("the phone holds the visit");
    assert!(
        held.events
            .iter()
            .any(|e| matches!(e.event, VisitEvent::AlertsClosed { .. })),
        "the phone gets the stand-down at its next sync"
    );

    // A duress heard by reception closes with an outcome too, without any event on the visit.
    sim.post("office", "/visits/visit-ava/duress-heard", &[])
        .await;
    let heard = sim
        .alarms()
        .into_iter()
        .find(|a| a.heard_by_reception())
        .expect("heard by reception");
    sim.post("office", &format!("/alarms/{}/acknowledge", heard.id), &[])
        .await;
    let (status, _) = sim
        .post("office", &format!("/alarms/{}/close", heard.id), &[])
        .await;
    assert_eq!(status, 400, "an outcome is needed");
    let (status, _) = sim
        .post(
            "office",
            &format!("/alarms/{}/close", heard.id),
            &[("outcome", "spoke_to_staff")],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(
        sim.store
            .events_for_visit(&visit("visit-ava"))
            .unwrap()
            .len(),
        events.len()
    );
}

// ---------------------------------------------------------------------------------------------------------
// The deputy and further contacts.

#[tokio::test(start_paused = true)]
async fn the_deputy_hears_only_when_the_authorisers_level_has_not_acknowledged_in_time() {
    let mut sim = Bench::paused(Preset::AcademySafeguardingLead).await;
    // The school shortens the wait before its further contacts hear: 3 minutes after the authoriser's level.
    let mut policy = sim.store.policy(&demo_school()).unwrap();
    policy.escalate_further_after = PolicyMinutes::new(3).unwrap();
    sim.store.set_policy(&demo_school(), &policy).unwrap();
    sim.add_target(email(HEAD, WantedLevels::AUTHORISER));
    sim.add_target(
        email(DEPUTY, WantedLevels::FURTHER)
            .named("Principal")
            .unwrap(),
    );
    let (_handoffs, mut sent) = sim.run_notifier();
    sim.start_visit().await;

    // Overdue at 10:30 (board), the safeguarding lead's level at 10:35, the further contacts at 10:38.
    sim.advance_to(minutes_after_agreed(15) + TimeDelta::seconds(1))
        .await;
    settle().await;
    assert!(
        handed_off(&mut sent).is_empty(),
        "board level: the board only"
    );
    sim.advance_to(minutes_after_agreed(20) + TimeDelta::seconds(1))
        .await;
    settle().await;
    assert_eq!(addresses(&handed_off(&mut sent)), [HEAD]);
    sim.advance_to(minutes_after_agreed(23) - TimeDelta::seconds(1))
        .await;
    settle().await;
    assert!(handed_off(&mut sent).is_empty(), "not before 3 minutes");
    sim.advance_to(minutes_after_agreed(23) + TimeDelta::seconds(2))
        .await;
    settle().await;
    let further = handed_off(&mut sent);
    assert_eq!(addresses(&further), [DEPUTY]);
    assert!(
        further[0]
            .message
            .payload
            .contains("reached the level of the deputy and further contacts"),
        "{}",
        further[0].message.payload
    );
    let (_, board) = sim.page("office", "/board/fragment").await;
    assert!(
        board.contains(
            "emailed the deputy and further contacts, Principal (deputy@oakfield.example)"
        ),
        "{board}"
    );
    // Reminders at the top go to both.
    sim.advance_to(minutes_after_agreed(26) + TimeDelta::seconds(3))
        .await;
    settle().await;
    assert_eq!(addresses(&handed_off(&mut sent)), [DEPUTY, HEAD]);

    // Acknowledged in time, the deputy never hears of the next alarm.
    let first = sim.alarms()[0].clone();
    sim.post("office", &format!("/alarms/{}/acknowledge", first.id), &[])
        .await;
    handed_off(&mut sent);
    sim.advance_to(minutes_after_agreed(75) + TimeDelta::seconds(1))
        .await;
    let next = sim.alarms()[1].clone();
    sim.advance_to(minutes_after_agreed(80) + TimeDelta::seconds(2))
        .await;
    sim.post("office", &format!("/alarms/{}/acknowledge", next.id), &[])
        .await;
    sim.advance_to(minutes_after_agreed(100)).await;
    settle().await;
    assert_eq!(
        addresses(&handed_off(&mut sent)),
        [HEAD],
        "only the lead's level"
    );
}

// ---------------------------------------------------------------------------------------------------------
// The out-of-hours responsible contact.

#[tokio::test(start_paused = true)]
async fn the_responsible_contact_is_emailed_their_visits_alarms_and_a_phone_only_contact_is_to_be_rung(
) {
    let sim = Bench::paused(Preset::PrimaryHeadteacher).await;
    // visit-eve: visit-ava's twin, requested with a responsible contact who has an email.
    let (mut eve, _) = sim.store.visit(&visit("visit-ava")).unwrap().unwrap();
    eve.id = visit("visit-eve");
    let policy = sim.store.policy(&demo_school()).unwrap();
    sim.store
        .add_requested_visit(
            &eve,
            &RequestDetails {
                requested_by: staff("office"),
                requested_at: sim.now(),
                timing: timing(
                    &policy,
                    &SchoolTimeZone::LONDON,
                    eve.agreed_time,
                    eve.expected_length,
                ),
                responsible_contact: Some(("Jo Contact".into(), "07700 900777".parse().unwrap())),
                contact_email: Some("jo@contact.example".into()),
                authoriser_override: None,
            },
        )
        .unwrap();
    sim.store
        .record_office_event(
            &eve.id,
            &doorstep_core::lifecycle::Command::Authorise {
                by: staff("head"),
                lone_visit_approved: false,
            },
            sim.now(),
        )
        .unwrap();
    sim.engine.visit_changed(eve.id.clone());
    let (_handoffs, mut sent) = sim.run_notifier();

    // Nobody sets off for visit-eve (nor visit-ava): "not heard from" at 10:25 on both; only visit-eve's
    // reach its contact.
    sim.advance_to(agreed() + TimeDelta::minutes(10) + TimeDelta::seconds(1))
        .await;
    settle().await;
    let told = handed_off(&mut sent);
    assert_eq!(
        addresses(&told),
        ["jo@contact.example", "jo@contact.example"]
    );
    for handoff in &told {
        assert!(handoff.message.payload.contains("on visit visit-eve"));
        assert!(handoff.message.payload.contains(
            "Sent to you as: the responsible contact for this visit outside school hours"
        ));
    }
    let (_, page) = sim.page("office", "/visits/visit-eve").await;
    assert!(
        page.contains("emailed the responsible contact, Jo Contact (jo@contact.example)"),
        "{page}"
    );

    // visit-mia's contact has only a phone number: the page says to ring them, and claims nothing else.
    sim.store
        .raise_alarm(
            NewAlarm::overdue(&visit("visit-mia"), "check_in", sim.now()),
            sim.now(),
        )
        .unwrap();
    let (_, page) = sim.page("office", "/visits/visit-mia").await;
    assert!(
        page.contains("The responsible contact, Olu Office, has no email on record: ring them on 07700 900002"),
        "{page}"
    );
    assert!(!page.contains("emailed the responsible contact"));
}

// ---------------------------------------------------------------------------------------------------------
// Safeguarding information reaches the people who must act.

fn write_up(concern: bool, incident: Option<&str>) -> WriteUp {
    WriteUp {
        seen: "Mum and Ava".into(),
        discussed: "Ava said she is scared of an older cousin at home".into(),
        agreements: "Back on Monday".into(),
        safeguarding_concern: concern,
        incident: incident.map(str::to_owned),
    }
}

#[tokio::test(start_paused = true)]
async fn a_concern_an_incident_and_a_felt_unsafe_note_go_at_once_to_the_policys_role_and_the_flip_changes_who(
) {
    let mut sim = Bench::paused(Preset::PrimaryHeadteacher).await;
    sim.add_target(email(DSL, WantedLevels::NONE).for_roles(&[Role::Dsl]));
    sim.add_target(email(HEAD, WantedLevels::NONE).for_roles(&[Role::Headteacher]));
    sim.add_target(
        NewTarget::webhook(HOOK, "a-long-enough-signing-secret", WantedLevels::NONE)
            .unwrap()
            .for_roles(&[Role::Dsl]),
    );
    let (_handoffs, mut sent) = sim.run_notifier();
    sim.start_visit().await;
    sim.advance_to(minutes_after_agreed(40)).await;
    for who in ["sam", "alex"] {
        sim.send(who, VisitEvent::Left { staff: staff(who) });
    }
    settle().await;
    handed_off(&mut sent);

    let written = sim.now();
    sim.send(
        "sam",
        VisitEvent::WrittenUp {
            staff: staff("sam"),
            write_up: write_up(true, Some("Dad shouted at us on the doorstep")),
        },
    );
    settle().await;
    let told = handed_off(&mut sent);
    assert_eq!(
        addresses(&told),
        [DSL, DSL, HOOK, HOOK],
        "a concern and an incident, to the DSL's email and webhook only"
    );
    let hook: serde_json::Value = serde_json::from_str(&told[2].message.payload).unwrap();
    assert_eq!(hook["notice"]["role"], "dsl");
    assert_eq!(hook["notice"]["raised_by"], "Sam Taylor");
    assert_eq!(hook["visit_id"], "visit-ava");
    for handoff in &told {
        assert_eq!(handoff.at, written, "at once");
        let payload = &handoff.message.payload;
        for secret in ["scared", "shouted", "Ava B.", "cousin"] {
            assert!(!payload.contains(secret), "{secret:?} in {payload}");
        }
        assert!(payload.contains("Sam Taylor"));
    }
    assert!(told.iter().any(|h| h
        .message
        .payload
        .contains("Subject: Doorstep: a safeguarding concern on visit visit-ava")));
    assert!(told.iter().any(|h| h
        .message
        .payload
        .contains("Subject: Doorstep: an incident on visit visit-ava")));

    // A "felt unsafe" cancellation on visit-leo goes the same way.
    sim.demo.phone_sends(
        "sam",
        "visit-leo",
        sim.now(),
        sim.now(),
        VisitEvent::Cancelled {
            staff: staff("sam"),
            reason: CancelReason::FeltUnsafe,
            note: "Raised voices from inside; we did not knock".into(),
        },
    );
    sim.engine.visit_changed(visit("visit-leo"));
    settle().await;
    let unsafe_note = handed_off(&mut sent);
    assert_eq!(addresses(&unsafe_note), [DSL, HOOK]);
    assert!(!unsafe_note[0].message.payload.contains("Raised voices"));

    // The board shows those with a need to know (here the headteacher, the demo's DSL) that each was
    // raised and where it went, never the words; reception's board leaves them out.
    let (_, board) = sim.page("office", "/board/fragment").await;
    assert!(!board.contains("Safeguarding concern"), "{board}");
    let (_, board) = sim.page("head", "/board/fragment").await;
    for needed in [
        "Safeguarding concern",
        "Incident reported",
        "Cancelled: felt unsafe",
        &format!(
            "emailed the designated safeguarding lead (dsl@oakfield.example) {}, delivered",
            hm(written)
        ),
    ] {
        assert!(board.contains(needed), "{needed:?} in {board}");
    }
    for secret in ["scared", "shouted", "Raised voices"] {
        assert!(!board.contains(secret), "{secret:?} on the board");
    }
    // The record says where it went, never "passed to the DSL" unless it was.
    let record = sim
        .office()
        .visit_record(&visit("visit-ava"))
        .unwrap()
        .unwrap();
    let text = cpoms_text(&record);
    let sent_line = format!(
        "Passed on: emailed the designated safeguarding lead (dsl@oakfield.example) {}, delivered",
        written.format("%H:%M GMT")
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[1], "*** SAFEGUARDING CONCERN ***");
    assert_eq!(lines[2], sent_line, "{text}");
    assert!(
        text.matches(&sent_line).count() >= 3,
        "under the banner, the concern and the incident: {text}"
    );
    let report = sim
        .office()
        .monthly_report(&demo_school(), 2026, 11)
        .unwrap()
        .to_text();
    assert!(
        report.contains(
            "Safeguarding notices (concerns, incidents, felt unsafe): 3; passed on: 3; not passed on: 0"
        ),
        "{report}"
    );

    // The flip: the policy now sends them to the headteacher. Alex's write-up goes there, not to the DSL.
    let mut policy = sim.store.policy(&demo_school()).unwrap();
    policy.safeguarding_concerns_to = Role::Headteacher;
    sim.store.set_policy(&demo_school(), &policy).unwrap();
    sim.send(
        "alex",
        VisitEvent::WrittenUp {
            staff: staff("alex"),
            write_up: write_up(true, None),
        },
    );
    settle().await;
    assert_eq!(addresses(&handed_off(&mut sent)), [HEAD]);
    let (_, board) = sim.page("head", "/board/fragment").await;
    assert!(board.contains("for the headteacher"), "{board}");
}

#[tokio::test(start_paused = true)]
async fn a_concern_nobody_could_be_sent_goes_to_a_contact_added_later_and_the_record_follows() {
    let mut sim = Bench::paused(Preset::PrimaryHeadteacher).await;
    let (_handoffs, mut sent) = sim.run_notifier();
    sim.send(
        "sam",
        VisitEvent::WrittenUp {
            staff: staff("sam"),
            write_up: write_up(true, None),
        },
    );
    settle().await;
    let record = sim
        .office()
        .visit_record(&visit("visit-ava"))
        .unwrap()
        .unwrap();
    assert!(cpoms_text(&record).contains(
        "Not yet passed on: no contact is set up for the designated safeguarding lead; ring Priya Head on \
         07700 900001"
    ));
    sim.advance_to(sim.now() + TimeDelta::hours(1)).await;
    let added = sim.now();
    let (status, _) = {
        add_admin(&sim);
        sim.post(
            "ada",
            "/admin/notifications",
            &[("kind", "email"), ("address", DSL), ("role", "dsl")],
        )
        .await
    };
    assert_eq!(status, 303);
    settle().await;
    let told = handed_off(&mut sent);
    assert_eq!(addresses(&told), [DSL]);
    assert_eq!(
        told[0].at, added,
        "sent as soon as there is somewhere to send it"
    );
    let record = sim
        .office()
        .visit_record(&visit("visit-ava"))
        .unwrap()
        .unwrap();
    assert!(cpoms_text(&record).contains(&format!(
        "Passed on: emailed the designated safeguarding lead (dsl@oakfield.example) {}, delivered",
        added.format("%H:%M GMT")
    )));
}

// ---------------------------------------------------------------------------------------------------------
// A missing write-up.

#[tokio::test(start_paused = true)]
async fn a_write_up_missing_past_the_policys_time_after_everyone_left_is_flagged_with_since_when() {
    let mut sim = Bench::paused(Preset::PrimaryHeadteacher).await;
    // The school wants write-ups within an hour.
    let mut policy = sim.store.policy(&demo_school()).unwrap();
    policy.write_up_due_after_leaving = PolicyMinutes::new(60).unwrap();
    sim.store.set_policy(&demo_school(), &policy).unwrap();
    sim.start_visit().await;
    sim.advance_to(minutes_after_agreed(40)).await;
    for who in ["sam", "alex"] {
        sim.send(who, VisitEvent::Left { staff: staff(who) });
    }
    let left = sim.now();
    sim.advance_to(left + TimeDelta::minutes(60) - TimeDelta::seconds(1))
        .await;
    let (_, board) = sim.page("office", "/board/fragment").await;
    assert!(!board.contains("Write-up missing"), "not yet due");
    sim.advance_to(left + TimeDelta::minutes(60)).await;
    let (_, board) = sim.page("office", "/board/fragment").await;
    assert!(
        board.contains("id=\"write-up-missing-visit-ava\""),
        "{board}"
    );
    assert!(board.contains(&format!(
        "everyone left at {}; write-up missing since {}",
        hm(left),
        hm(left + TimeDelta::minutes(60))
    )));
    assert!(board.contains(&format!(
        "Write-up missing since {}",
        hm(left + TimeDelta::minutes(60))
    )));
    // Once it arrives, the flag goes.
    sim.send(
        "sam",
        VisitEvent::WrittenUp {
            staff: staff("sam"),
            write_up: write_up(false, None),
        },
    );
    let (_, board) = sim.page("office", "/board/fragment").await;
    assert!(!board.contains("Write-up missing"), "{board}");
}

// ---------------------------------------------------------------------------------------------------------
// Targets: the admin page and the command line.

#[tokio::test(start_paused = true)]
async fn an_admin_adds_and_removes_targets_and_a_bad_one_is_refused_with_nothing_saved() {
    let sim = Bench::paused(Preset::PrimaryHeadteacher).await;
    add_admin(&sim);
    let (status, page) = sim.page("ada", "/admin/notifications").await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"no-targets\""));
    assert!(page.contains("No target is set up for the designated safeguarding lead"));

    let refused: [(&[(&str, &str)], &str); 4] = [
        (
            &[
                ("kind", "email"),
                ("address", "nobody"),
                ("wants_board", "on"),
            ],
            "is not an email address",
        ),
        (
            &[
                ("kind", "webhook"),
                ("address", "https://hooks.example/x"),
                ("secret", "short"),
                ("wants_board", "on"),
            ],
            "16 to 256 characters",
        ),
        (&[("kind", "email"), ("address", HEAD)], "hear of nothing"),
        (
            &[("kind", "pigeon"), ("address", HEAD), ("wants_board", "on")],
            "choose email or webhook",
        ),
    ];
    for (form, why) in refused {
        let (status, page) = sim.post("ada", "/admin/notifications", form).await;
        assert_eq!(status, 400, "{form:?}: {page}");
        assert!(page.contains(why), "{why:?} in {page}");
        assert!(page.contains("nothing was saved"));
    }
    assert!(sim.store.notification_targets().unwrap().is_empty());

    let (status, _) = sim
        .post(
            "ada",
            "/admin/notifications",
            &[
                ("kind", "webhook"),
                ("address", "https://hooks.example/doorstep"),
                ("secret", "a-long-enough-signing-secret"),
                ("name", "Pager gateway"),
                ("wants_authoriser", "on"),
                ("wants_further", "on"),
                ("role", "dsl"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let targets = sim.store.notification_targets().unwrap();
    assert_eq!(targets.len(), 1);
    let target = &targets[0];
    assert_eq!(
        (
            target.kind,
            target.wants,
            target.roles.as_slice(),
            target.name.as_str()
        ),
        (
            TargetKind::Webhook,
            WantedLevels {
                board: false,
                authoriser: true,
                further: true
            },
            &[Role::Dsl][..],
            "Pager gateway"
        )
    );
    let (_, page) = sim.page("ada", "/admin/notifications").await;
    assert!(page.contains(&format!("id=\"target-{}\"", target.id)));
    assert!(
        page.contains("hooks.example") && !page.contains("hooks.example/doorstep"),
        "the host only"
    );
    assert!(
        !page.contains("a-long-enough-signing-secret"),
        "never the secret"
    );
    assert!(!page.contains("id=\"no-targets\""));
    let (_, board) = sim.page("office", "/board/fragment").await;
    assert!(!board.contains("id=\"no-targets\""));

    // Only admins manage targets.
    let (status, _) = sim
        .post(
            "office",
            &format!("/admin/notifications/{}/remove", target.id),
            &[],
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = sim
        .post(
            "ada",
            &format!("/admin/notifications/{}/remove", target.id),
            &[],
        )
        .await;
    assert_eq!(status, 303);
    let (status, page) = sim
        .post(
            "ada",
            &format!("/admin/notifications/{}/remove", target.id),
            &[],
        )
        .await;
    assert_eq!(status, 404, "removed once: {page}");
    let targets = sim.store.notification_targets().unwrap();
    assert!(targets[0].removed_at.is_some(), "kept, marked removed");
    let (_, board) = sim.page("office", "/board/fragment").await;
    assert!(board.contains("id=\"no-targets\""), "the banner is back");
}

#[test]
fn the_command_line_adds_a_further_contact_and_a_safeguarding_contact() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store: doorstep_office::OfficeStore = doorstep_office::SqliteStore::open(dir.path())
            .unwrap()
            .into();
        doorstep_office::demo::seed(&store, "http://127.0.0.1:1", Utc::now()).unwrap();
    }
    let office = env!("CARGO_BIN_EXE_doorstep-office");
    let run = |args: &[&str]| {
        let output = std::process::Command::new(office)
            .args(args)
            .arg("--data-dir")
            .arg(dir.path())
            .output()
            .expect("run the office");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (ok, _, err) = run(&[
        "add-target",
        "--school",
        "demo-primary",
        "--email",
        DEPUTY,
        "--further",
        "--name",
        "Deputy head",
    ]);
    assert!(ok, "{err}");
    let (ok, _, err) = run(&[
        "add-target",
        "--school",
        "demo-primary",
        "--email",
        DSL,
        "--role",
        "dsl",
    ]);
    assert!(ok, "{err}");
    let (ok, _, err) = run(&["add-target", "--school", "demo-primary", "--email", HEAD]);
    assert!(!ok, "a target that hears of nothing is refused");
    assert!(err.contains("--role"), "{err}");
    let (ok, out, err) = run(&["targets"]);
    assert!(ok, "{err}");
    assert!(out.contains("further") && out.contains(DEPUTY), "{out}");
    assert!(
        out.contains("role:designated safeguarding lead") && out.contains(DSL),
        "{out}"
    );
}

// ---------------------------------------------------------------------------------------------------------
// A database from before: brought up to date, its history kept and read honestly.

#[test]
fn a_database_from_before_keeps_its_alarms_and_deliveries_and_drops_no_claim_into_a_false_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("office.sqlite3");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "foreign_keys", true).unwrap();
        for sql in [
            include_str!("../../migrations/V1__office.sql"),
            include_str!("../../migrations/V2__alarms.sql"),
            include_str!("../../migrations/V3__notifications.sql"),
            include_str!("../../migrations/V4__records.sql"),
            include_str!("../../migrations/V5__office_users.sql"),
            include_str!("../../migrations/V6__people.sql"),
            include_str!("../../migrations/V7__requests.sql"),
            include_str!("../../migrations/V8__trusted_time.sql"),
        ] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 8).unwrap();
        conn.execute_batch(
            "INSERT INTO schools VALUES ('s', 'School', '01632 960000', '{}');
             INSERT INTO pupils (id, school_id, name) VALUES ('p', 's', 'P.');
             INSERT INTO visits VALUES ('v', 's', 'p', '2026-11-23T10:15:00+00:00', '{}', 'in_visit', '{}');
             INSERT INTO alarms (id, visit_id, kind, about, due_at, raised_at, level, escalated_at,
                                 acknowledged_by, acknowledged_at)
                 VALUES (1, 'v', 'overdue', 'check_in', '2026-11-23T10:25:00+00:00',
                         '2026-11-23T10:30:00+00:00', 'authoriser', '2026-11-23T10:35:00+00:00',
                         'Olu Office', '2026-11-23T10:40:00+00:00'),
                        (2, 'v', 'duress', 'alex', '2026-11-23T10:20:00+00:00',
                         '2026-11-23T10:20:05+00:00', 'authoriser', '2026-11-23T10:20:05+00:00', NULL, NULL);
             INSERT INTO alarm_log (id, alarm_id, at, what, detail) VALUES
                 (1, 1, '2026-11-23T10:30:00+00:00', 'raised', 'no check_in'),
                 (2, 1, '2026-11-23T10:35:00+00:00', 'authoriser_told', 'the authoriser is told'),
                 (3, 1, '2026-11-23T10:40:00+00:00', 'acknowledged', 'acknowledged by Olu Office'),
                 (4, 2, '2026-11-23T10:20:05+00:00', 'raised', 'duress raised by alex'),
                 (5, 2, '2026-11-23T10:20:05+00:00', 'authoriser_told', 'straight to the authoriser'),
                 (6, 2, '2026-11-23T10:25:05+00:00', 'authoriser_reminded', 'the authoriser is reminded');
             INSERT INTO notification_targets VALUES
                 (1, 's', 'email', 'head@school.example', NULL, 0, 1, '2026-11-23T09:00:00.000000Z');
             INSERT INTO deliveries (id, alarm_id, alarm_log_id, target_id, created_at, attempts, delivered_at, payload)
                 VALUES ('0190e8a0-0000-7000-8000-000000000001', 1, 2, 1, '2026-11-23T10:35:00.000000Z', 1,
                         '2026-11-23T10:35:01.000000Z', 'the message'),
                        ('0190e8a0-0000-7000-8000-000000000002', 2, 4, 1, '2026-11-23T10:20:05.000000Z', 1,
                         '2026-11-23T10:20:06.000000Z', 'the message');",
        )
        .unwrap();
    }
    let store = doorstep_office::SqliteStore::open(dir.path()).expect("brought up to date");
    let visit_id = visit("v");
    let alarms = store.alarms_for_visit(&visit_id).unwrap();
    assert_eq!(alarms.len(), 2);
    assert!(
        !alarms[0].is_open(),
        "acknowledged before: it was over then"
    );
    assert_eq!(alarms[0].outcome, None);
    assert!(alarms[1].is_open() && alarms[1].needs_someone());
    let log: Vec<(String, Option<AlarmLevel>)> = store
        .alarm_log(&visit_id)
        .unwrap()
        .into_iter()
        .map(|e| (e.what, e.level))
        .collect();
    assert_eq!(
        log,
        [
            ("raised".to_owned(), Some(AlarmLevel::Board)),
            ("reached_level".to_owned(), Some(AlarmLevel::Authoriser)),
            ("acknowledged".to_owned(), None),
            ("raised".to_owned(), Some(AlarmLevel::Authoriser)),
            ("reminded".to_owned(), Some(AlarmLevel::Authoriser)),
        ],
        "the duress raise and its same-instant 'told' are one step"
    );
    let deliveries = store.deliveries_for_alarm(2).unwrap();
    assert_eq!(deliveries[0].audience, "board,authoriser");
    assert_eq!(
        store.deliveries_for_alarm(1).unwrap()[0].audience,
        "authoriser"
    );
    let target = &store.notification_targets().unwrap()[0];
    assert_eq!(target.wants, WantedLevels::AUTHORISER);
    assert!(target.roles.is_empty() && target.visit.is_none() && target.removed_at.is_none());
}
