//! Requesting, authorising and the records routes over HTTP against the real office: every request rule
//! refused one at a time with nothing stored, only the policy's authoriser authorising, the authorised visit
//! reaching the phone, the attendance view's day-3 rule, and the CPOMS, CSV and monthly exports.

use chrono::{Datelike, Local, NaiveDate, TimeDelta, Utc, Weekday};
use doorstep_core::domain::Role;
use doorstep_core::lifecycle::{CancelReason, VisitEvent, WriteUp};
use reqwest::redirect::Policy;
use reqwest::Client;

use crate::helpers::*;

/// The office over plain HTTP, with sign-ins for the office and the headteacher (the primary preset's
/// authoriser), and Nia, who may visit but has no DBS check on record.
pub(crate) async fn office() -> TestOffice {
    let office = office_with_sign_ins(&["office", "head"]).await;
    office.add_staff("nia", "Nia Newstart", &[Role::VisitingStaff]);
    office
}

pub(crate) fn visit_count(office: &TestOffice) -> i64 {
    office.sql_count("SELECT COUNT(*) FROM visits")
}

/// The next weekday after today, at `hour:minute` local time, as a datetime-local value.
pub(crate) fn next_weekday_at(hour: u32, minute: u32) -> String {
    let mut day = Local::now().date_naive() + TimeDelta::days(1);
    while matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
        day += TimeDelta::days(1);
    }
    format!("{}T{hour:02}:{minute:02}", day.format("%Y-%m-%d"))
}

/// A request that breaks no rule: a pair (Sam and Alex) at 10:00 on the next weekday.
pub(crate) fn valid_request(csrf: &str) -> Vec<(String, String)> {
    let mut form: Vec<(String, String)> = [
        ("csrf", csrf),
        ("purpose", "attendance_support"),
        ("pupil", "pupil-leo"),
        ("address_lines", "3 Mill Lane\nOakfield"),
        ("postcode", "OK2 7CD"),
        ("length_minutes", "45"),
        ("staff_1", "sam"),
        ("staff_2", "alex"),
        ("pets", "A dog, kept in the garden"),
        ("pupil_needs", "None known"),
        ("family", "Dad at home in the mornings"),
        ("area", "Quiet street"),
        ("parking", "On the street, facing out"),
        ("risk_1_description", "Steep steps to the door"),
        ("risk_1_controls", "Take them slowly\nUse the handrail"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    form.push(("date_time".into(), next_weekday_at(10, 0)));
    for hazard in [
        "aggressive_or_violent_person",
        "driving",
        "public_areas_and_car_parks",
        "illness_or_injury",
        "dogs_and_other_animals",
    ] {
        form.push((format!("controls_{hazard}"), "A control\nAnother".into()));
    }
    form
}

pub(crate) fn with(
    mut form: Vec<(String, String)>,
    changes: &[(&str, &str)],
) -> Vec<(String, String)> {
    for (key, value) in changes {
        form.retain(|(k, _)| k != key);
        form.push((key.to_string(), value.to_string()));
    }
    form
}

/// Requests the visit and returns its id from the redirect.
pub(crate) async fn request(
    office: &TestOffice,
    client: &Client,
    form: &[(String, String)],
) -> String {
    let response = post_response(office, client, "/visits/new", form).await;
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    let (status, page) = text(response).await;
    assert_eq!(status, 303, "{page}");
    location
        .expect("redirected to the visit")
        .trim_start_matches("/visits/")
        .to_owned()
}

#[tokio::test]
async fn every_broken_rule_is_refused_with_its_own_message_and_nothing_is_stored() {
    let office = office().await;
    let (client, csrf) = signed_in(&office, "office").await;
    let valid = valid_request(&csrf);
    let yesterday = format!(
        "{}T10:00",
        (Local::now().date_naive() - TimeDelta::days(1)).format("%Y-%m-%d")
    );
    let after_school = next_weekday_at(17, 0);
    let cases: Vec<(Vec<(String, String)>, &str)> = vec![
        (
            with(valid.clone(), &[("purpose", "school_refusal")]),
            "Choose a purpose from this school",
        ),
        (
            with(valid.clone(), &[("pupil", "pupil-nobody")]),
            "Choose a pupil of this school",
        ),
        (
            with(valid.clone(), &[("postcode", "")]),
            "Enter the address",
        ),
        (
            with(valid.clone(), &[("date_time", "tomorrow at ten")]),
            "Enter the date and time",
        ),
        (
            with(valid.clone(), &[("date_time", &yesterday)]),
            "in the past",
        ),
        (
            with(valid.clone(), &[("length_minutes", "0")]),
            "between 1 and 480",
        ),
        (
            with(valid.clone(), &[("length_minutes", "481")]),
            "between 1 and 480",
        ),
        (
            with(valid.clone(), &[("length_minutes", "forty")]),
            "between 1 and 480",
        ),
        (
            with(valid.clone(), &[("staff_2", "")]),
            "Visits are made in pairs",
        ),
        (
            with(valid.clone(), &[("staff_2", "sam")]),
            "two different people",
        ),
        (
            with(valid.clone(), &[("staff_2", "nia")]),
            "Nia Newstart has no appropriate DBS check",
        ),
        (
            with(valid.clone(), &[("staff_2", ""), ("lone", "on")]),
            "needs its own risk assessment",
        ),
        (with(valid.clone(), &[("lone", "on")]), "made by one person"),
        (
            with(valid.clone(), &[("date_time", &after_school)]),
            "name the responsible contact",
        ),
        (
            with(
                valid.clone(),
                &[("date_time", &after_school), ("contact_name", "Priya Head")],
            ),
            "name the responsible contact",
        ),
        (
            with(
                valid.clone(),
                &[
                    ("date_time", &after_school),
                    ("contact_name", "Priya Head"),
                    ("contact_phone", "07700 900001"),
                    ("contact_email", "priya at home"),
                ],
            ),
            "The responsible contact's email",
        ),
        (
            with(valid.clone(), &[("contact_email", "priya@home.example")]),
            "needs their name and phone number too",
        ),
        (
            with(valid.clone(), &[("controls_driving", " \n ")]),
            "Write the controls for “Driving” for this visit, or tick to confirm",
        ),
        (
            with(valid.clone(), &[("risk_2_description", "Loose paving")]),
            "Risk item 2 needs both",
        ),
    ];
    let before = visit_count(&office);
    for (form, expected) in cases {
        let (status, page) =
            text(post_response(&office, &client, "/visits/new", &form).await).await;
        assert_eq!(status, 400, "{expected}: {page}");
        let shown = page.replace("&quot;", "\"").replace("&#39;", "'");
        assert!(shown.contains(expected), "expected “{expected}” in {shown}");
        assert!(shown.contains("Nothing was saved."), "{expected}");
        assert_eq!(
            visit_count(&office),
            before,
            "nothing stored for “{expected}”"
        );
    }

    // Without the session's CSRF token, nothing either.
    let forged = with(valid.clone(), &[("csrf", "forged")]);
    let (status, _) = text(post_response(&office, &client, "/visits/new", &forged).await).await;
    assert_eq!(status, 403);
    assert_eq!(visit_count(&office), before);

    // Out of hours with a named contact is accepted, and the contact is kept with the visit.
    let id = request(
        &office,
        &client,
        &with(
            valid.clone(),
            &[
                ("date_time", &after_school),
                ("contact_name", "Priya Head"),
                ("contact_phone", "07700 900001"),
                ("contact_email", "priya@home.example"),
            ],
        ),
    )
    .await;
    let details = office
        .store
        .request_details(&visit(&id))
        .unwrap()
        .expect("details stored");
    assert!(details.timing.out_of_hours);
    assert_eq!(
        details.responsible_contact,
        Some(("Priya Head".into(), "07700 900001".parse().unwrap()))
    );
    assert_eq!(details.contact_email.as_deref(), Some("priya@home.example"));
    // With an email, the contact is told of this visit's alarms: a target of this visit alone.
    let contacts: Vec<_> = office
        .store
        .notification_targets()
        .unwrap()
        .into_iter()
        .filter(|t| t.visit.as_ref() == Some(&visit(&id)))
        .collect();
    assert_eq!(contacts.len(), 1);
    assert_eq!(
        (contacts[0].address.as_str(), contacts[0].name.as_str()),
        ("priya@home.example", "Priya Head")
    );
    assert_eq!(visit_count(&office), before + 1);
}

#[tokio::test]
async fn a_pair_request_is_stored_and_only_the_authoriser_authorises_it_and_the_phone_gets_it() {
    let office = office().await;
    let (client, csrf) = signed_in(&office, "office").await;
    let before = visit_count(&office);
    let id = request(&office, &client, &valid_request(&csrf)).await;
    assert_eq!(visit_count(&office), before + 1);
    let (stored, state) = office.store.visit(&visit(&id)).unwrap().unwrap();
    assert_eq!(stored.staff_ids(), vec![staff("sam"), staff("alex")]);
    assert!(state.authorised.is_none());
    let risks = &stored.briefing.risk_assessment().risks;
    assert_eq!(risks.len(), 6, "five standard hazards and one specific");
    assert_eq!(risks[5].description, "Steep steps to the door");
    assert_eq!(stored.briefing.pets, "A dog, kept in the garden");

    // The office may request but not authorise: 403 with a valid session and token, nothing recorded.
    let path = format!("/visits/{id}/authorise");
    let (status, _) = get(&office, &client, &path).await;
    assert_eq!(status, 403);
    let form = vec![("csrf".to_owned(), csrf.clone())];
    let (status, page) = text(post_response(&office, &client, &path, &form).await).await;
    assert_eq!(status, 403, "{page}");
    assert!(
        page.contains("Only the headteacher authorises visits"),
        "{page}"
    );
    assert!(office
        .store
        .events_for_visit(&visit(&id))
        .unwrap()
        .is_empty());

    // The headteacher authorises.
    let (head, head_csrf) = signed_in(&office, "head").await;
    let (status, page) = get(&office, &head, &path).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Steep steps to the door"));
    let form = vec![("csrf".to_owned(), head_csrf.clone())];
    let response = post_response(&office, &head, &path, &form).await;
    assert_eq!(response.status(), 303);
    let (status, _) = text(post_response(&office, &head, &path, &form).await).await;
    assert_eq!(status, 409, "a second authorisation changes nothing");
    let events = office.store.events_for_visit(&visit(&id)).unwrap();
    assert_eq!(events.len(), 1);

    // Sam's phone holds the visit, its briefing and the authorisation by the headteacher on its next sync.
    let (status, body) = office
        .post_sync(&office.phones.me.device_token, &batch(&[]))
        .await;
    assert_eq!(status, 200, "{body}");
    let held = body["hold"]["visits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["visit"]["id"] == id.as_str())
        .expect("the phone holds the new visit");
    assert_eq!(
        held["visit"]["briefing"]["pets"],
        "A dog, kept in the garden"
    );
    let authorised = held["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"]["type"] == "authorised")
        .expect("an authorised event");
    assert_eq!(authorised["event"]["by"], "head");
    assert_eq!(authorised["event"]["lone_visit_approved"], false);

    // The board shows it as authorised.
    let (_, page) = get(&office, &head, &format!("/visits/{id}")).await;
    assert!(page.contains("Authorised"), "{page}");
}

#[tokio::test]
async fn a_lone_visit_needs_its_assessment_and_the_authorisers_explicit_tick() {
    let office = office().await;
    let (client, csrf) = signed_in(&office, "office").await;
    let lone = with(
        valid_request(&csrf),
        &[
            ("staff_2", ""),
            ("lone", "on"),
            (
                "lone_assessment",
                "Known family; daytime drop-off at the door only",
            ),
        ],
    );
    let id = request(&office, &client, &lone).await;
    let (stored, _) = office.store.visit(&visit(&id)).unwrap().unwrap();
    assert_eq!(
        stored
            .briefing
            .risk_assessment()
            .lone_visit_assessment
            .as_deref(),
        Some("Known family; daytime drop-off at the door only")
    );

    let (head, head_csrf) = signed_in(&office, "head").await;
    let path = format!("/visits/{id}/authorise");
    let (_, page) = get(&office, &head, &path).await;
    assert!(
        page.contains("Known family; daytime drop-off at the door only"),
        "the assessment is shown"
    );
    let (status, page) = post(&office, &head, &path, &[("csrf", head_csrf.as_str())]).await;
    assert_eq!(status, 400);
    assert!(
        page.contains("This is a lone visit: tick to approve"),
        "{page}"
    );
    assert!(office
        .store
        .events_for_visit(&visit(&id))
        .unwrap()
        .is_empty());

    let form = vec![
        ("csrf".to_owned(), head_csrf),
        ("lone_visit_approved".to_owned(), "on".to_owned()),
    ];
    assert_eq!(
        post_response(&office, &head, &path, &form).await.status(),
        303
    );
    let (_, state) = office.store.visit(&visit(&id)).unwrap().unwrap();
    let authorised = state.authorised.expect("authorised");
    assert!(authorised.lone_visit_approved);
}

fn weekdays_up_to_today(count: usize) -> Vec<NaiveDate> {
    let mut day = Local::now().date_naive();
    let mut out = Vec::new();
    while out.len() < count {
        if !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
            out.push(day);
        }
        day -= TimeDelta::days(1);
    }
    out
}

#[tokio::test]
async fn the_attendance_view_lists_three_days_unexplained_and_not_when_contact_was_made() {
    let office = office().await;
    let (client, _) = signed_in(&office, "office").await;
    let (_, board) = get(&office, &client, "/").await;
    for link in ["/visits/new", "/attendance"] {
        assert!(
            board.contains(&format!("href=\"{link}\"")),
            "the board links to {link}"
        );
    }
    {
        // The absences table is filled by the admin pages' import; here rows go in directly.
        for date in weekdays_up_to_today(3) {
            for (pupil, contact) in [("pupil-ava", "FALSE"), ("pupil-leo", "TRUE")] {
                office.sql(&format!(
                    "INSERT INTO absences (pupil_id, date, reason_code, contact_made)
                     VALUES ('{pupil}', '{}', 'N', {contact})",
                    date.format("%Y-%m-%d")
                ));
            }
        }
    }
    let (status, page) = get(&office, &client, "/attendance").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"due-pupil-ava\""), "{page}");
    assert!(
        !page.contains("id=\"due-pupil-leo\""),
        "contact was made with Leo's family"
    );
    assert!(
        page.contains("/visits/new?purpose=safe_and_well_check&amp;pupil=pupil-ava"),
        "{page}"
    );
    let (status, form) = get(
        &office,
        &client,
        "/visits/new?purpose=safe_and_well_check&pupil=pupil-ava",
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        form.contains(r#"<option value="safe_and_well_check" selected>"#),
        "{form}"
    );
    assert!(
        form.contains("12 Elm Row"),
        "the address of Ava's last visit is prefilled"
    );
}

#[tokio::test]
async fn the_records_routes_answer_with_the_right_types_and_contents() {
    let office = office().await;
    // The headteacher: the authoriser, who may read what visits found (reception may not: need_to_know.rs).
    let (client, _) = signed_in(&office, "head").await;
    // Sam's phone cancels visit-ava (nobody answered) and writes it up, so there is a write-up to export.
    let phone = &office.phones.me;
    let events = [
        envelope(
            phone,
            1,
            "visit-ava",
            VisitEvent::Cancelled {
                staff: staff("sam"),
                reason: CancelReason::NoAnswerAfterWait,
                note: String::new(),
            },
        ),
        envelope(
            phone,
            2,
            "visit-ava",
            VisitEvent::WrittenUp {
                staff: staff("sam"),
                write_up: WriteUp {
                    seen: "Nobody".into(),
                    discussed: "Nobody answered; a card was left through the door".into(),
                    agreements: String::new(),
                    safeguarding_concern: false,
                    incident: None,
                },
            },
        ),
    ];
    let (status, body) = office.post_sync(&phone.device_token, &batch(&events)).await;
    assert_eq!(status, 200, "{body}");

    let (status, page) = get(&office, &client, "/visits/visit-ava/timeline").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("full-timeline"), "{page}");
    assert!(page.contains("Priya Head authorised the visit"), "{page}");
    assert!(page.contains("Sam Taylor wrote up the visit"), "{page}");

    let response = client
        .get(format!("{}/visits/visit-ava/cpoms.txt", office.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let body = response.text().await.unwrap();
    assert!(body.contains("Ava B."), "{body}");
    assert!(body.contains("a card was left through the door"), "{body}");

    let response = client
        .get(format!("{}/visits/visit-ava/cpoms.pdf", office.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/pdf");
    assert!(response.bytes().await.unwrap().starts_with(b"%PDF-"));

    let today = Utc::now().date_naive();
    let response = client
        .get(format!(
            "{}/reports/write-ups.csv?from={}&to={}",
            office.url,
            today - TimeDelta::days(1),
            today + TimeDelta::days(1)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert!(response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    let csv = response.text().await.unwrap();
    assert!(csv.starts_with("\u{FEFF}visit id,"), "{csv}");
    assert!(csv.contains("visit-ava"), "{csv}");
    assert!(csv.contains("a card was left through the door"), "{csv}");
    assert!(!csv.contains("visit-leo"), "only visits with a write-up");

    let (status, page) = get(
        &office,
        &client,
        &format!(
            "/reports/monthly?year={}&month={}",
            today.year(),
            today.month()
        ),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("monthly-report"));
    assert!(page.contains(&today.format("%B %Y").to_string()), "{page}");

    for path in [
        "/visits/visit-nobody/timeline",
        "/visits/visit-nobody/cpoms.txt",
        "/visits/visit-nobody/cpoms.pdf",
        "/visits/not%20an%20id/cpoms.pdf",
        "/visits/visit-nobody/authorise",
    ] {
        let (status, page) = get(&office, &client, path).await;
        assert_eq!(status, 404, "{path}: {page}");
    }
    for (path, message) in [
        (
            "/reports/write-ups.csv",
            "must be a date written YYYY-MM-DD",
        ),
        (
            "/reports/write-ups.csv?from=2026-11-30&to=2026-11-01",
            "is before",
        ),
        (
            "/reports/write-ups.csv?from=2020-01-01&to=2026-01-01",
            "at most 400 days",
        ),
        (
            "/reports/monthly?year=2026&month=13",
            "months run from 1 to 12",
        ),
        ("/reports/monthly?year=twenty&month=1", "must be a number"),
        (
            "/reports/monthly?year=99999999999&month=1",
            "months run from 1 to 12",
        ),
    ] {
        let (status, page) = get(&office, &client, path).await;
        assert_eq!(status, 400, "{path}");
        assert!(page.contains(message), "{path}: {page}");
    }

    // Signed out: sent to sign in, nothing shown.
    let (status, _) = get(&office, &browser(), "/visits/visit-ava/cpoms.txt").await;
    assert_eq!(status, 303);
}

#[tokio::test]
async fn an_evening_visit_the_policy_advises_against_needs_the_authorisers_reason() {
    let office = office().await;
    // The academy's policy: the safeguarding lead authorises and evening visits are advised against.
    {
        let policy = doorstep_core::policy::Preset::AcademySafeguardingLead.policy();
        let school = "demo-primary".parse().unwrap();
        office.store.set_policy(&school, &policy).unwrap();
        let mut head = office
            .store
            .school_staff(&school)
            .unwrap()
            .into_iter()
            .find(|m| m.id == staff("head"))
            .unwrap();
        head.roles.push(Role::SafeguardingLead);
        office.store.save_staff(&school, &head).unwrap();
    }
    let (client, csrf) = signed_in(&office, "office").await;
    let evening = with(
        valid_request(&csrf),
        &[
            ("date_time", &next_weekday_at(18, 30)),
            ("length_minutes", "30"),
            ("contact_name", "Priya Head"),
            ("contact_phone", "07700 900001"),
        ],
    );
    let id = request(&office, &client, &evening).await;
    let details = office.store.request_details(&visit(&id)).unwrap().unwrap();
    assert!(details.timing.evening && details.timing.out_of_hours);

    let (head, head_csrf) = signed_in(&office, "head").await;
    let path = format!("/visits/{id}/authorise");
    let (status, page) = get(&office, &head, &path).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("advises against evening visits"), "{page}");
    assert!(
        page.contains("Priya Head"),
        "the responsible contact is shown"
    );
    let (status, page) = post(&office, &head, &path, &[("csrf", head_csrf.as_str())]).await;
    assert_eq!(status, 400);
    assert!(
        page.contains("give your reason for overriding it"),
        "{page}"
    );
    assert!(office
        .store
        .events_for_visit(&visit(&id))
        .unwrap()
        .is_empty());

    let reason = "Dad works days; the only time both parents are home";
    let form = vec![
        ("csrf".to_owned(), head_csrf),
        ("override_reason".to_owned(), reason.to_owned()),
    ];
    assert_eq!(
        post_response(&office, &head, &path, &form).await.status(),
        303
    );
    let details = office.store.request_details(&visit(&id)).unwrap().unwrap();
    assert_eq!(details.authoriser_override.as_deref(), Some(reason));
    assert_eq!(office.store.events_for_visit(&visit(&id)).unwrap().len(), 1);
}

#[tokio::test]
async fn visiting_staff_may_request_but_not_authorise_and_other_roles_may_do_neither() {
    let office = office().await;
    // Dee is on the school's staff with no role in Doorstep yet.
    office.add_staff("dee", "Dee Newcomer", &[]);
    let plain = Client::builder().redirect(Policy::none()).build().unwrap();
    let before = visit_count(&office);
    for (who, may_request) in [("sam", true), ("dee", false)] {
        // Sessions made in the store: the sign-in page is for board users (see ARCHITECTURE.md).
        let (cookie, csrf) = office.session_for(who);
        let response = plain
            .get(format!("{}/visits/new", office.url))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status() == 200, may_request, "{who} sees the form");
        let response = plain
            .post(format!("{}/visits/new", office.url))
            .header("cookie", &cookie)
            .form(&valid_request(&csrf))
            .send()
            .await
            .unwrap();
        let expected = if may_request { 303 } else { 403 };
        assert_eq!(response.status(), expected, "{who} requests");
        let response = plain
            .post(format!("{}/visits/visit-mia/authorise", office.url))
            .header("cookie", &cookie)
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{who} cannot authorise");
    }
    assert_eq!(visit_count(&office), before + 1, "only Sam's request");
    let (_, mia) = office.store.visit(&visit("visit-mia")).unwrap().unwrap();
    assert!(mia.authorised.is_none());
}

#[tokio::test]
async fn the_demos_requested_visit_names_a_responsible_contact_so_it_can_be_authorised_after_school(
) {
    // Seeded at two in the afternoon of the next weekday, visit-mia is agreed for a quarter past six: after school and into the
    // evening, when the policy needs a named responsible contact.
    let office = spawn_office_seeded_next_weekday_at(14).await;
    let details = office
        .store
        .request_details(&visit("visit-mia"))
        .unwrap()
        .expect("the demo's request is on record");
    assert!(details.timing.out_of_hours && details.timing.evening);
    assert_eq!(
        details.responsible_contact,
        Some(("Olu Office".to_owned(), "07700 900002".parse().unwrap()))
    );

    office.allow_sign_in("head");
    let (head, csrf) = signed_in(&office, "head").await;
    let (status, page) = get(&office, &head, "/visits/visit-mia/authorise").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Olu Office"), "the form names the contact");
    let form = vec![("csrf".to_owned(), csrf)];
    let response = post_response(&office, &head, "/visits/visit-mia/authorise", &form).await;
    assert_eq!(response.status(), 303, "{}", response.text().await.unwrap());
    let (_, mia) = office.store.visit(&visit("visit-mia")).unwrap().unwrap();
    assert_eq!(mia.authorised.map(|a| a.by), Some(staff("head")));
}
