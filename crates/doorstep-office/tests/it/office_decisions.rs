//! The office runs the visit, against the real office: the authoriser declines a request, withdraws an
//! authorisation, reschedules (under the request's rules), updates the risk assessment and briefing; anyone
//! at the board marks a visit not going ahead. Each is a new version of the visit with who and when, an
//! office event and an audit entry; the phones get it at their next sync (a new briefing version); the
//! lifecycle's refusals change nothing. And a request's risk assessment is the requester's own: Doorstep's
//! suggested controls never pass untouched, and the assessor and date are recorded.

use chrono::{Local, Utc};
use doorstep_core::domain::Hazard;
use doorstep_core::lifecycle::{CancelReason, Phase, VisitEvent};
use doorstep_office::audit::Action;
use doorstep_office::versions::Change;
use reqwest::Client;

use crate::helpers::*;
use crate::requests::{next_weekday_at, visit_count};

/// The demo office with sign-ins for reception (Olu) and the headteacher (the authoriser).
async fn office() -> TestOffice {
    office_with_sign_ins(&["office", "head"]).await
}

fn changes(office: &TestOffice, id: &str) -> Vec<(Option<Change>, Option<String>)> {
    office
        .store
        .visit_versions(&visit(id))
        .unwrap()
        .into_iter()
        .map(|v| (v.change, v.by.map(|b| b.to_string())))
        .collect()
}

fn phase(office: &TestOffice, id: &str) -> Phase {
    office.store.visit(&visit(id)).unwrap().unwrap().1.phase()
}

fn last_audit(office: &TestOffice, id: &str) -> (Option<Action>, String) {
    let entries = office.store.audit_entries_for_visit(&visit(id)).unwrap();
    let last = entries.last().expect("an audit entry");
    (last.action(), last.actor.clone())
}

/// What Sam's phone holds for `id` after a sync.
async fn held(office: &TestOffice, id: &str) -> serde_json::Value {
    let (status, body) = office
        .post_sync(&office.phones.me.device_token, &batch(&[]))
        .await;
    assert_eq!(status, 200, "{body}");
    body["hold"]["visits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["visit"]["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("the phone holds {id}: {body}"))
}

fn has_event(held: &serde_json::Value, kind: &str) -> bool {
    held["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["event"]["type"] == kind)
}

/// The briefing form as the page fills it, with `changes` made.
async fn briefing_form(
    office: &TestOffice,
    client: &Client,
    id: &str,
    csrf: &str,
    changes: &[(&str, &str)],
) -> Vec<(String, String)> {
    let (status, page) = get(office, client, &format!("/visits/{id}/briefing")).await;
    assert_eq!(status, 200, "{page}");
    let mut form = vec![("csrf".to_owned(), csrf.to_owned())];
    // Every textarea and input of the form, with the value the page gave it.
    for (start, _) in page.match_indices("<textarea name=\"") {
        let rest = &page[start + 16..];
        let name = rest.split('"').next().unwrap().to_owned();
        let value = rest[rest.find('>').unwrap() + 1..rest.find("</textarea>").unwrap()]
            .replace("&amp;", "&")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">");
        form.push((name, value));
    }
    for (start, _) in page.match_indices("<input name=\"risk_") {
        let rest = &page[start + 13..];
        let name = rest.split('"').next().unwrap().to_owned();
        let value = rest
            .split("value=\"")
            .nth(1)
            .and_then(|v| v.split('"').next())
            .unwrap_or("")
            .to_owned();
        form.push((name, value));
    }
    for (key, value) in changes {
        form.retain(|(k, _)| k != key);
        form.push((key.to_string(), value.to_string()));
    }
    form
}

#[tokio::test]
async fn the_authoriser_updates_the_briefing_as_a_new_version_and_the_phone_gets_it() {
    let office = office().await;
    let (head, csrf) = signed_in(&office, "head").await;
    let before = held(&office, "visit-leo").await;
    assert_eq!(before["visit"]["briefing"]["version"], 0);

    let new_pets = "Two dogs now; the family say they cannot shut them away";
    let form = briefing_form(
        &office,
        &head,
        "visit-leo",
        &csrf,
        &[
            ("pets", new_pets),
            ("risk_1_description", "Dogs loose in the front garden"),
            (
                "risk_1_controls",
                "Ring from the gate\nDo not go in if the dogs are out",
            ),
        ],
    )
    .await;
    let response = post_response(&office, &head, "/visits/visit-leo/briefing", &form).await;
    assert_eq!(response.status(), 303, "{}", response.text().await.unwrap());

    let (stored, state) = office.store.visit(&visit("visit-leo")).unwrap().unwrap();
    assert_eq!(stored.briefing.version, 1);
    assert_eq!(state.briefing_version, 1);
    assert_eq!(stored.briefing.pets, new_pets);
    let assessment = stored.briefing.risk_assessment();
    assert_eq!(assessment.assessed_by, Some(staff("head")));
    assert_eq!(assessment.assessed_on, Some(Local::now().date_naive()));
    assert!(assessment
        .risks
        .iter()
        .any(|r| r.description == "Dogs loose in the front garden"));
    assert_eq!(
        changes(&office, "visit-leo"),
        [
            (Some(Change::Requested), None),
            (Some(Change::Authorised), Some("head".into())),
            (Some(Change::BriefingUpdated), Some("head".into())),
        ]
    );
    assert_eq!(
        last_audit(&office, "visit-leo"),
        (Some(Action::BriefingUpdated), "head".into())
    );

    // Sam's phone gets the new version at its next sync, with the office's event saying so.
    let after = held(&office, "visit-leo").await;
    assert_eq!(after["visit"]["briefing"]["version"], 1);
    assert_eq!(after["visit"]["briefing"]["pets"], new_pets);
    assert!(has_event(&after, "briefing_updated"), "{after}");

    // The visit page lists the versions and what changed, by name.
    let (_, page) = get(&office, &head, "/visits/visit-leo").await;
    let versions = &page[page.find("id=\"versions\"").unwrap()..];
    assert!(
        versions.contains("updated the risk assessment and briefing"),
        "{versions}"
    );
    assert!(versions.contains("risk assessment, pets"), "{versions}");
    assert!(versions.contains("briefing version 1"), "{versions}");

    // Saving again makes version 2; reception may not update it at all.
    let form = briefing_form(
        &office,
        &head,
        "visit-leo",
        &csrf,
        &[("parking", "In the school car park")],
    )
    .await;
    assert_eq!(
        post_response(&office, &head, "/visits/visit-leo/briefing", &form)
            .await
            .status(),
        303
    );
    assert_eq!(
        held(&office, "visit-leo").await["visit"]["briefing"]["version"],
        2
    );
    let (olu, olu_csrf) = signed_in(&office, "office").await;
    let mut form = form;
    form[0].1 = olu_csrf;
    assert_eq!(
        post_response(&office, &olu, "/visits/visit-leo/briefing", &form)
            .await
            .status(),
        403
    );
    assert_eq!(changes(&office, "visit-leo").len(), 4);
}

#[tokio::test]
async fn a_briefing_update_without_controls_is_refused_and_changes_nothing() {
    let office = office().await;
    let (head, csrf) = signed_in(&office, "head").await;
    let form = briefing_form(
        &office,
        &head,
        "visit-leo",
        &csrf,
        &[("controls_driving", "  ")],
    )
    .await;
    let (status, page) = post(&office, &head, "/visits/visit-leo/briefing", &form).await;
    assert_eq!(status, 400, "{page}");
    assert!(
        page.contains("needs at least one control for “Driving”"),
        "{page}"
    );
    assert!(page.contains("Nothing was saved."), "{page}");
    assert_eq!(changes(&office, "visit-leo").len(), 2);
    let (stored, _) = office.store.visit(&visit("visit-leo")).unwrap().unwrap();
    assert_eq!(stored.briefing.version, 0);
}

#[tokio::test]
async fn the_authoriser_declines_a_request_with_a_reason_and_reception_cannot() {
    let office = office().await;
    let (olu, olu_csrf) = signed_in(&office, "office").await;
    let reason = "Not needed: Mia's work can go home with her brother";
    let form = [("csrf", olu_csrf.as_str()), ("reason", reason)];
    let (status, _) = post(&office, &olu, "/visits/visit-mia/decline", &form).await;
    assert_eq!(status, 403, "reception does not decline");

    let (head, csrf) = signed_in(&office, "head").await;
    // The visit page offers the authoriser the decision.
    let (_, page) = get(&office, &head, "/visits/visit-mia").await;
    assert!(page.contains("id=\"decline-form\""), "{page}");
    let (status, page) = post(
        &office,
        &head,
        "/visits/visit-mia/decline",
        &[("csrf", csrf.as_str()), ("reason", "  ")],
    )
    .await;
    assert_eq!(status, 400);
    assert!(page.contains("Say why the visit is declined"), "{page}");
    assert_eq!(
        phase(&office, "visit-mia"),
        Phase::Requested,
        "nothing changed"
    );

    let form = [("csrf", csrf.as_str()), ("reason", reason)];
    assert_eq!(
        post(&office, &head, "/visits/visit-mia/decline", &form)
            .await
            .0,
        303
    );
    assert_eq!(phase(&office, "visit-mia"), Phase::Declined);
    let versions = office.store.visit_versions(&visit("visit-mia")).unwrap();
    let last = versions.last().unwrap();
    assert_eq!(
        (last.change, last.reason.as_str()),
        (Some(Change::Declined), reason)
    );
    assert_eq!(last.by, Some(staff("head")));
    assert_eq!(
        last_audit(&office, "visit-mia"),
        (Some(Action::Declined), "head".into())
    );
    // Declined for good: a second decline, or authorising, is refused and changes nothing.
    let (status, page) = post(&office, &head, "/visits/visit-mia/decline", &form).await;
    assert_eq!(status, 409, "{page}");
    assert!(page.contains("declined"), "{page}");
    assert_eq!(
        post(
            &office,
            &head,
            "/visits/visit-mia/authorise",
            &[("csrf", csrf.as_str())]
        )
        .await
        .0,
        409
    );
    assert_eq!(
        office
            .store
            .visit_versions(&visit("visit-mia"))
            .unwrap()
            .len(),
        2
    );
    // The phone is told; a declined visit's briefing leaves it.
    let held = held(&office, "visit-mia").await;
    assert!(has_event(&held, "declined"), "{held}");
    assert_eq!(held["visit"]["briefing"]["withdrawn"], true);
}

#[tokio::test]
async fn withdrawing_an_authorisation_stops_the_visit_until_it_is_authorised_again() {
    let office = office().await;
    let (head, csrf) = signed_in(&office, "head").await;
    // The demo's visits start from the hour the test runs at; move this one into a school day first, so
    // authorising it again needs nothing an evening visit would (an override, a responsible contact).
    let eleven = next_weekday_at(11, 0);
    assert_eq!(
        post(
            &office,
            &head,
            "/visits/visit-leo/reschedule",
            &[("csrf", csrf.as_str()), ("date_time", eleven.as_str())]
        )
        .await
        .0,
        303
    );
    let form = [
        ("csrf", csrf.as_str()),
        (
            "reason",
            "New information from social care; holding this until we have spoken",
        ),
    ];
    assert_eq!(
        post(&office, &head, "/visits/visit-leo/withdraw", &form)
            .await
            .0,
        303
    );
    let (_, state) = office.store.visit(&visit("visit-leo")).unwrap().unwrap();
    assert!(state.authorised.is_none());
    assert_eq!(state.phase(), Phase::AuthorisationWithdrawn);
    assert_eq!(
        last_audit(&office, "visit-leo"),
        (Some(Action::AuthorisationWithdrawn), "head".into())
    );
    let held = held(&office, "visit-leo").await;
    assert!(has_event(&held, "authorisation_withdrawn"), "{held}");

    // Sam's phone cannot set off now (the office stores the fact but the visit is not authorised), and the
    // page offers authorising again.
    let (_, page) = get(&office, &head, "/visits/visit-leo").await;
    assert!(page.contains("id=\"authorise-link\""), "{page}");
    assert_eq!(
        post(
            &office,
            &head,
            "/visits/visit-leo/authorise",
            &[("csrf", csrf.as_str())]
        )
        .await
        .0,
        303
    );
    assert_eq!(phase(&office, "visit-leo"), Phase::Authorised);
    assert_eq!(
        changes(&office, "visit-leo")
            .into_iter()
            .map(|(c, _)| c.unwrap())
            .collect::<Vec<_>>(),
        [
            Change::Requested,
            Change::Authorised,
            Change::Rescheduled,
            Change::AuthorisationWithdrawn,
            Change::Authorised
        ]
    );
}

#[tokio::test]
async fn once_someone_has_set_off_the_authorisation_cannot_be_withdrawn_nor_the_visit_moved() {
    let office = office().await;
    let phone = &office.phones.me;
    let (status, body) = office
        .post_sync(
            &phone.device_token,
            &batch(&[envelope(phone, 1, "visit-ava", departed("sam"))]),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (head, csrf) = signed_in(&office, "head").await;
    let before = changes(&office, "visit-ava");
    let (status, page) = post(
        &office,
        &head,
        "/visits/visit-ava/withdraw",
        &[("csrf", csrf.as_str()), ("reason", "Too late for this")],
    )
    .await;
    assert_eq!(status, 409, "{page}");
    assert!(page.contains("is already out on this visit"), "{page}");
    let (status, page) = post(
        &office,
        &head,
        "/visits/visit-ava/reschedule",
        &[
            ("csrf", csrf.as_str()),
            ("date_time", &next_weekday_at(11, 0)),
        ],
    )
    .await;
    assert_eq!(status, 409, "{page}");
    assert_eq!(changes(&office, "visit-ava"), before, "nothing changed");
    // Neither is offered on the page.
    let (_, page) = get(&office, &head, "/visits/visit-ava").await;
    assert!(!page.contains("id=\"withdraw-form\"") && !page.contains("id=\"reschedule-form\""));
}

#[tokio::test]
async fn a_visit_is_rescheduled_under_the_request_rules_and_the_phone_gets_the_new_time() {
    let office = office().await;
    let (head, csrf) = signed_in(&office, "head").await;
    let eleven = next_weekday_at(11, 0);
    let form = [("csrf", csrf.as_str()), ("date_time", eleven.as_str())];
    assert_eq!(
        post(&office, &head, "/visits/visit-leo/reschedule", &form)
            .await
            .0,
        303
    );
    let (stored, _) = office.store.visit(&visit("visit-leo")).unwrap().unwrap();
    let local = stored.agreed_time.with_timezone(&Local);
    assert_eq!(local.format("%Y-%m-%dT%H:%M").to_string(), eleven);
    let last = office.store.visit_versions(&visit("visit-leo")).unwrap();
    assert_eq!(last.last().unwrap().change, Some(Change::Rescheduled));
    assert_eq!(
        last_audit(&office, "visit-leo"),
        (Some(Action::Rescheduled), "head".into())
    );
    let (_, page) = get(&office, &head, "/visits/visit-leo").await;
    assert!(page.contains("rescheduled it"), "{page}");
    assert!(page.contains("agreed time (now"), "{page}");

    // After school: a responsible contact is needed, as for a request. Refused without one...
    let five = next_weekday_at(17, 0);
    let (status, page) = post(
        &office,
        &head,
        "/visits/visit-leo/reschedule",
        &[("csrf", csrf.as_str()), ("date_time", five.as_str())],
    )
    .await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("name the responsible contact"), "{page}");
    assert_eq!(
        office
            .store
            .visit_versions(&visit("visit-leo"))
            .unwrap()
            .len(),
        3
    );
    // ...and accepted with one, which is kept with the visit.
    let form = [
        ("csrf", csrf.as_str()),
        ("date_time", five.as_str()),
        ("contact_name", "Priya Head"),
        ("contact_phone", "07700 900001"),
    ];
    assert_eq!(
        post(&office, &head, "/visits/visit-leo/reschedule", &form)
            .await
            .0,
        303
    );
    let details = office
        .store
        .request_details(&visit("visit-leo"))
        .unwrap()
        .unwrap();
    assert!(details.timing.out_of_hours);
    assert_eq!(
        details.responsible_contact,
        Some(("Priya Head".into(), "07700 900001".parse().unwrap()))
    );
    // A time in the past is refused.
    let (status, _) = post(
        &office,
        &head,
        "/visits/visit-leo/reschedule",
        &[("csrf", csrf.as_str()), ("date_time", "2020-01-06T10:00")],
    )
    .await;
    assert_eq!(status, 400);

    let held = held(&office, "visit-leo").await;
    let agreed: chrono::DateTime<Utc> =
        serde_json::from_value(held["visit"]["agreed_time"].clone()).unwrap();
    assert_eq!(
        agreed
            .with_timezone(&Local)
            .format("%Y-%m-%dT%H:%M")
            .to_string(),
        five
    );
    assert!(has_event(&held, "rescheduled"), "{held}");
}

#[tokio::test]
async fn reception_marks_a_visit_not_going_ahead_and_only_those_who_need_to_know_read_why() {
    let office = office().await;
    let (olu, csrf) = signed_in(&office, "office").await;
    let (_, page) = get(&office, &olu, "/visits/visit-ava").await;
    assert!(page.contains("id=\"call-off-form\""), "{page}");
    assert!(
        !page.contains("id=\"decline-form\""),
        "the authoriser's only"
    );
    let reason = "Mum rang: Ava is staying with her gran this week";
    let form = [("csrf", csrf.as_str()), ("reason", reason)];
    assert_eq!(
        post(&office, &olu, "/visits/visit-ava/call-off", &form)
            .await
            .0,
        303
    );
    assert_eq!(
        phase(&office, "visit-ava"),
        Phase::Cancelled {
            reason: CancelReason::CalledOffByOffice
        }
    );
    assert_eq!(
        last_audit(&office, "visit-ava"),
        (Some(Action::CalledOff), "office".into())
    );
    let (_, page) = get(&office, &olu, "/visits/visit-ava").await;
    assert!(page.contains("called it off: not going ahead"), "{page}");
    assert!(
        !page.contains(reason),
        "reception is not shown the reason: {page}"
    );
    let (head, _) = signed_in(&office, "head").await;
    let (_, page) = get(&office, &head, "/visits/visit-ava").await;
    assert!(page.contains(reason), "{page}");

    // The phones are told, and a called-off visit's briefing leaves them.
    let held = held(&office, "visit-ava").await;
    assert!(has_event(&held, "called_off"), "{held}");
    assert_eq!(held["visit"]["briefing"]["withdrawn"], true);
    // Nothing more can be decided on it.
    let (status, _) = post(&office, &olu, "/visits/visit-ava/call-off", &form).await;
    assert_eq!(status, 409);
}

/// A request that breaks no rule, with each standard hazard's controls as `controls` gives them.
fn request(
    csrf: &str,
    controls: impl Fn(Hazard) -> Vec<(String, String)>,
) -> Vec<(String, String)> {
    let mut form: Vec<(String, String)> = [
        ("csrf", csrf),
        ("purpose", "attendance_support"),
        ("pupil", "pupil-leo"),
        ("address_lines", "3 Mill Lane\nOakfield"),
        ("postcode", "OK2 7CD"),
        ("length_minutes", "45"),
        ("staff_1", "sam"),
        ("staff_2", "alex"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    form.push(("date_time".into(), next_weekday_at(10, 0)));
    for &hazard in Hazard::ALL {
        form.extend(controls(hazard));
    }
    form
}

fn wire(hazard: Hazard) -> String {
    serde_json::to_value(hazard)
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_requests_controls_are_the_requesters_own_or_confirmed_never_the_suggestions_untouched() {
    let office = office().await;
    let (olu, csrf) = signed_in(&office, "office").await;
    // The form starts with every box empty: the suggestions are beside them, not in them.
    let (_, page) = get(&office, &olu, "/visits/new").await;
    for &hazard in Hazard::ALL {
        let open = format!("<textarea name=\"controls_{}\"", wire(hazard));
        let at = page.find(&open).unwrap_or_else(|| panic!("{open}"));
        let after = &page[at..];
        let inner = &after[after.find('>').unwrap() + 1..after.find("</textarea>").unwrap()];
        assert_eq!(inner, "", "{hazard:?} starts empty");
        assert!(
            page.contains(hazard.default_controls()[0]),
            "its suggestion is shown"
        );
    }

    // The suggestions pasted in unchanged, without the tick: refused, nothing stored.
    let before = visit_count(&office);
    let untouched = request(&csrf, |h| {
        vec![(
            format!("controls_{}", wire(h)),
            h.default_controls().join("\n"),
        )]
    });
    let (status, page) = post(&office, &olu, "/visits/new", &untouched).await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("are the suggested text, unchanged"), "{page}");
    assert_eq!(visit_count(&office), before);

    // The box left empty without the tick: refused too.
    let empty = request(&csrf, |h| {
        vec![(format!("controls_{}", wire(h)), String::new())]
    });
    let (status, page) = post(&office, &olu, "/visits/new", &empty).await;
    assert_eq!(status, 400, "{page}");
    assert!(
        page.contains("or tick to confirm the suggested ones fit it"),
        "{page}"
    );
    assert_eq!(visit_count(&office), before);

    // Written for this visit for driving, the suggestions confirmed for the rest: accepted.
    let mixed = request(&csrf, |h| {
        if h == Hazard::Driving {
            vec![(
                format!("controls_{}", wire(h)),
                "Park on Mill Lane facing the main road".to_owned(),
            )]
        } else {
            vec![
                (format!("controls_{}", wire(h)), String::new()),
                (format!("confirm_{}", wire(h)), "on".to_owned()),
            ]
        }
    });
    let response = post_response(&office, &olu, "/visits/new", &mixed).await;
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(response.status(), 303);
    let id = location.trim_start_matches("/visits/").to_owned();
    let (stored, _) = office.store.visit(&visit(&id)).unwrap().unwrap();
    let assessment = stored.briefing.risk_assessment();
    let controls = |hazard| {
        assessment
            .risks
            .iter()
            .find(|r| r.hazard == Some(hazard))
            .unwrap()
            .controls
            .clone()
    };
    assert_eq!(
        controls(Hazard::Driving),
        ["Park on Mill Lane facing the main road"]
    );
    assert_eq!(
        controls(Hazard::IllnessOrInjury),
        Hazard::IllnessOrInjury.default_controls()
    );
    // The requester is the assessor, with the date; the authoriser sees who.
    assert_eq!(assessment.assessed_by, Some(staff("office")));
    assert_eq!(assessment.assessed_on, Some(Local::now().date_naive()));
    let (head, _) = signed_in(&office, "head").await;
    let (_, page) = get(&office, &head, &format!("/visits/{id}/authorise")).await;
    let on = Local::now().date_naive().format("%-d %B %Y").to_string();
    assert!(
        page.contains(&format!("Assessed by Olu Office on {on}")),
        "{page}"
    );
}

#[tokio::test]
async fn a_change_is_recorded_as_the_lifecycle_event_phones_replay() {
    let office = office().await;
    let (head, csrf) = signed_in(&office, "head").await;
    let form = [
        ("csrf", csrf.as_str()),
        ("date_time", &*next_weekday_at(9, 30)),
    ];
    assert_eq!(
        post(&office, &head, "/visits/visit-leo/reschedule", &form)
            .await
            .0,
        303
    );
    let events = office.store.events_for_visit(&visit("visit-leo")).unwrap();
    let last = events.last().unwrap();
    assert_eq!(last.envelope.device.as_str(), "office");
    let VisitEvent::Rescheduled { by, agreed_time } = &last.envelope.event else {
        panic!("{:?}", last.envelope.event)
    };
    assert_eq!(by, &staff("head"));
    let (stored, _) = office.store.visit(&visit("visit-leo")).unwrap().unwrap();
    assert_eq!(*agreed_time, stored.agreed_time);
    let version = office.store.visit_versions(&visit("visit-leo")).unwrap();
    assert_eq!(version.last().unwrap().event, Some(last.envelope.id));
}
