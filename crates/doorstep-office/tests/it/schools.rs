//! Schools kept apart: someone at a second school on the same office, with every role, walks every route
//! in the route table with the first school's visit and alarm, and listens to the live board's stream
//! while the first school's visit raises a duress alarm. They see nothing of the first school, and change
//! nothing of it.

use std::time::Duration;

use doorstep_core::domain::{Role, School, StaffMember};
use doorstep_core::ids::SchoolId;
use doorstep_core::lifecycle::{DuressVia, VisitEvent};
use doorstep_core::policy::Preset;
use doorstep_core::test_support::staff;
use doorstep_office::routes::{table, Access};
use reqwest::redirect::Policy;
use reqwest::{Client, Method};

use crate::helpers::*;

/// What only the first (demo) school's pages and records could show: its visits' pupils, postcodes and
/// staff. (Not visit-ava's postcode: the import page gives it as an example of a postcode.)
const FIRST_SCHOOLS_DATA: [&str; 6] = [
    "Ava B.",
    "Leo C.",
    "OK2 7CD",
    "Sam Taylor",
    "Alex Morgan",
    "Oakfield Primary",
];

fn second_school(office: &TestOffice) -> SchoolId {
    let school: SchoolId = "riverside".parse().unwrap();
    let mut policy = Preset::AcademySafeguardingLead.policy();
    policy
        .code_phrases
        .get_or_insert_with(doorstep_office::demo::demo_code_phrases);
    office
        .store
        .add_school(
            &School {
                id: school.clone(),
                name: "Riverside Academy".into(),
                office_phone: "01632 960999".parse().unwrap(),
                time_zone: Default::default(),
            },
            &policy,
        )
        .expect("a second school");
    office
        .store
        .add_staff(
            &school,
            &StaffMember {
                id: staff("bea"),
                name: "Bea Second".into(),
                roles: vec![Role::Office, Role::SafeguardingLead, Role::Dsl, Role::Admin],
                phone: "07700 900099".parse().unwrap(),
                dbs: None,
            },
        )
        .expect("its head, office and admin");
    school
}

#[tokio::test]
async fn a_second_school_sees_and_changes_nothing_of_the_first_on_any_route() {
    let office = office_with_sign_ins(&[]).await;
    second_school(&office);
    let alarm = office
        .store
        .raise_alarm(
            doorstep_office::alarms::NewAlarm::overdue(
                &doorstep_core::test_support::visit("visit-ava"),
                "check_in",
                chrono::Utc::now(),
            ),
            chrono::Utc::now(),
        )
        .expect("raise")
        .expect("a new alarm");
    let (cookie, csrf) = office.session_for("bea");
    let client = Client::builder().redirect(Policy::none()).build().unwrap();
    let count = |table: &str| -> i64 { office.sql_count(&format!("SELECT COUNT(*) FROM {table}")) };
    let before: Vec<i64> = [
        "visits",
        "events",
        "alarms",
        "staff",
        "pupils",
        "visit_requests",
        "devices",
        "enrolment_codes",
    ]
    .iter()
    .map(|t| count(t))
    .collect();

    for route in table() {
        if matches!(route.access, Access::Public | Access::Phone) {
            continue;
        }
        let path = route
            .path
            .replace(
                "{id}",
                &if route.path.starts_with("/alarms/") {
                    alarm.id.to_string()
                } else if route.path.starts_with("/admin/devices/") {
                    // The first school's phone.
                    "phone-sam".to_owned()
                } else {
                    "visit-ava".to_owned()
                },
            )
            .replace("{kind}", "pupils")
            .replace("{file}", "board.js");
        let what = format!("{} {path}", route.method);
        let request = client
            .request(route.method.clone(), format!("{}{path}", office.url))
            .header("cookie", &cookie);
        let request = if route.method == Method::GET {
            request
        } else {
            request.form(&[("csrf", csrf.as_str())])
        };
        if route.path == "/board/events" || route.path == "/logout" {
            continue; // the stream: the next test; signing out would end the walk
        }
        let response = request.send().await.expect("office answers");
        let status = response.status().as_u16();
        let page = response.text().await.unwrap_or_default();
        assert!(status < 500, "{what}: {status}");
        if route.path.contains("{id}") {
            assert!(
                [403, 404].contains(&status),
                "{what}: another school's record must be refused, got {status}: {page}"
            );
        }
        if route.method != Method::GET && route.path.contains("{id}") {
            assert!(
                (400..500).contains(&status),
                "{what}: a POST about another school's record is refused: {status}"
            );
        }
        for data in FIRST_SCHOOLS_DATA {
            assert!(!page.contains(data), "{what} shows {data:?}: {page}");
        }
    }
    let after: Vec<i64> = [
        "visits",
        "events",
        "alarms",
        "staff",
        "pupils",
        "visit_requests",
        "devices",
        "enrolment_codes",
    ]
    .iter()
    .map(|t| count(t))
    .collect();
    assert_eq!(after, before, "nothing of the first school changed");
    assert!(
        office
            .store
            .authenticate(&office.phones.me.device_token, chrono::Utc::now())
            .unwrap()
            .is_some(),
        "the first school's phone still works"
    );
    assert!(office.store.alarm(alarm.id).unwrap().unwrap().is_open());
}

/// The `board` events that arrive on the live stream for a session within `wait`.
async fn board_events_on(
    office: &TestOffice,
    cookie: &str,
    wait: Duration,
    while_listening: impl std::future::Future<Output = ()>,
) -> Vec<String> {
    let response = reqwest::Client::new()
        .get(format!("{}/board/events", office.url))
        .header("cookie", cookie)
        .send()
        .await
        .expect("the stream opens");
    assert_eq!(response.status(), 200);
    let mut response = response;
    while_listening.await;
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    let mut buffer = String::new();
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(deadline, response.chunk()).await {
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let message: String = buffer.drain(..end + 2).collect();
            if message.contains("event: board") {
                seen.push(message);
            }
        }
    }
    seen
}

#[tokio::test]
async fn the_live_board_stream_carries_only_the_signed_in_persons_school() {
    let office = office_with_sign_ins(&[]).await;
    second_school(&office);
    let (first, _) = office.session_for("head");
    let (second, _) = office.session_for("bea");
    let duress = || async {
        let sam = &office.phones.me;
        let event = envelope(
            sam,
            1,
            "visit-ava",
            VisitEvent::DuressRaised {
                staff: staff("sam"),
                via: DuressVia::CodePhraseButton,
            },
        );
        let (status, body) = office.post_sync(&sam.device_token, &batch(&[event])).await;
        assert_eq!(status, 200, "{body}");
    };
    let second_saw = board_events_on(&office, &second, Duration::from_secs(3), duress()).await;
    assert!(
        second_saw.is_empty(),
        "the second school heard of the first's duress: {second_saw:?}"
    );
    // The first school's own board heard of it (a second duress, from Alex).
    let alex_duress = async {
        let alex = &office.phones.partner;
        let event = envelope(
            alex,
            1,
            "visit-ava",
            VisitEvent::DuressRaised {
                staff: staff("alex"),
                via: DuressVia::CodePhraseButton,
            },
        );
        let (status, body) = office.post_sync(&alex.device_token, &batch(&[event])).await;
        assert_eq!(status, 200, "{body}");
    };
    let first_saw = board_events_on(&office, &first, Duration::from_secs(3), alex_duress).await;
    assert!(
        first_saw.iter().any(|m| m.contains("visit-ava")),
        "the first school's board hears its own visit: {first_saw:?}"
    );
}
