//! The office dashboard over HTTP, against the real server: signing in, who may see and do what, CSRF on
//! every form, acknowledging alarms once by name, "duress heard", the runbook, and refusals of bad input
//! that change nothing.

use chrono::{TimeDelta, Utc};
use doorstep_core::lifecycle::{AlarmOutcome, VisitEvent};
use doorstep_core::schedule::AlarmLevel;
use doorstep_office::alarms::{Alarm, AlarmKind, NewAlarm};
use reqwest::redirect::Policy;
use reqwest::Client;

use crate::helpers::*;

/// The office over plain HTTP, with sign-ins for the office and for Sam, who is visiting staff.
async fn office_with_office_and_sam() -> TestOffice {
    office_with_sign_ins(&["office", "sam"]).await
}

fn raise_overdue(office: &TestOffice, visit_id: &str) -> Alarm {
    let now = Utc::now();
    office
        .store
        .raise_alarm(
            NewAlarm::overdue(&visit(visit_id), "check_in", now - TimeDelta::minutes(5)),
            now,
        )
        .unwrap()
        .expect("a new alarm")
}

fn alarm_now(office: &TestOffice, id: i64) -> Alarm {
    office.store.alarm(id).unwrap().expect("the alarm exists")
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_name_are_refused_alike_and_the_right_one_signs_in() {
    let office = office_with_office_and_sam().await;
    let client = browser();
    let (wrong_status, wrong_page) = sign_in(&office, &client, "office", "not-the-password").await;
    let (unknown_status, unknown_page) = sign_in(&office, &client, "nobody", PASSWORD).await;
    assert_eq!((wrong_status, unknown_status), (401, 401));
    let message = "That sign-in name and password do not match.";
    assert!(wrong_page.contains(message), "{wrong_page}");
    assert!(unknown_page.contains(message), "{unknown_page}");
    let (empty_status, empty_page) = sign_in(&office, &client, "office", "").await;
    assert_eq!(empty_status, 400);
    assert!(empty_page.contains("Enter your sign-in name and your password"));
    let (huge_status, _) = sign_in(&office, &client, "office", &"x".repeat(10_000)).await;
    assert_eq!(huge_status, 401);
    let (status, _) = get(&office, &client, "/").await;
    assert_eq!(status, 303, "no session after refused sign-ins");

    let (status, _) = sign_in(&office, &client, "office", PASSWORD).await;
    assert_eq!(status, 303);
    let (status, board) = get(&office, &client, "/").await;
    assert_eq!(status, 200);
    assert!(board.contains("Live board") && board.contains("Olu Office"));
    let (status, _) = get(&office, &client, "/login").await;
    assert_eq!(status, 303, "signed in: /login goes to the board");
}

#[tokio::test]
async fn signed_out_people_are_sent_to_sign_in_and_nothing_is_shown() {
    let office = office_with_office_and_sam().await;
    let client = browser();
    for path in ["/", "/visits/visit-ava"] {
        let response = client
            .get(format!("{}{path}", office.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303, "{path}");
        assert_eq!(response.headers()["location"], "/login", "{path}");
    }
    for path in ["/board/fragment", "/board/events"] {
        let (status, body) = get(&office, &client, path).await;
        assert_eq!(status, 401, "{path}");
        assert!(body.contains("signed out"), "{path}: {body}");
    }
    let alarm = raise_overdue(&office, "visit-ava");
    let (status, _) = post(
        &office,
        &client,
        &format!("/alarms/{}/acknowledge", alarm.id),
        &[("csrf", "x")],
    )
    .await;
    assert_eq!(status, 303);
    assert!(alarm_now(&office, alarm.id).is_open(), "nothing changed");
}

#[tokio::test]
async fn visiting_staff_cannot_use_the_board_even_with_a_session() {
    let office = office_with_office_and_sam().await;
    let client = browser();
    let (status, page) = sign_in(&office, &client, "sam", PASSWORD).await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("Visiting staff use the Doorstep phone app"));

    // Roles can change after sign-in: every route checks them, not just the sign-in form.
    let (cookie, csrf) = office.session_for("sam");
    let plain = Client::builder().redirect(Policy::none()).build().unwrap();
    for path in ["/", "/board/fragment", "/board/events", "/visits/visit-ava"] {
        let response = plain
            .get(format!("{}{path}", office.url))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{path}");
    }
    let alarm = raise_overdue(&office, "visit-ava");
    for path in [
        format!("/alarms/{}/acknowledge", alarm.id),
        "/visits/visit-ava/duress-heard".to_owned(),
    ] {
        let response = plain
            .post(format!("{}{path}", office.url))
            .header("cookie", &cookie)
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{path}");
    }
    let alarms = office.store.alarms_for_visit(&visit("visit-ava")).unwrap();
    assert_eq!(alarms.len(), 1, "no duress was raised");
    assert!(alarms[0].is_open(), "nothing was acknowledged");
}

#[tokio::test]
async fn every_form_without_the_sessions_csrf_token_is_refused_and_changes_nothing() {
    let office = office_with_office_and_sam().await;
    let (client, csrf) = signed_in(&office, "office").await;
    let alarm = raise_overdue(&office, "visit-ava");
    let acknowledge = format!("/alarms/{}/acknowledge", alarm.id);
    let forms = [
        acknowledge.as_str(),
        "/visits/visit-ava/duress-heard",
        "/logout",
    ];
    let wrong = "0".repeat(csrf.len());
    for path in forms {
        for fields in [vec![], vec![("csrf", wrong.as_str())], vec![("csrf", "")]] {
            let (status, page) = post(&office, &client, path, &fields).await;
            assert_eq!(status, 403, "{path} {fields:?}");
            assert!(page.contains("security check failed"), "{page}");
        }
    }
    assert!(alarm_now(&office, alarm.id).is_open());
    assert_eq!(
        office
            .store
            .alarms_for_visit(&visit("visit-ava"))
            .unwrap()
            .len(),
        1,
        "no duress raised"
    );
    let (status, _) = get(&office, &client, "/").await;
    assert_eq!(status, 200, "still signed in: the sign-out was refused");

    // The sign-in form is protected too: a post without the token from the sign-in page's cookie.
    let fresh = browser();
    let (status, page) = post(
        &office,
        &fresh,
        "/login",
        &[
            ("csrf", "made-up"),
            ("name", "office"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(status, 403, "{page}");
    let (status, _) = get(&office, &fresh, "/").await;
    assert_eq!(status, 303, "not signed in");
}

#[tokio::test]
async fn an_alarm_is_acknowledged_once_by_name_then_closed_with_an_outcome() {
    let office = office_with_office_and_sam().await;
    let (client, csrf) = signed_in(&office, "office").await;
    let alarm = raise_overdue(&office, "visit-ava");
    let (_, board) = get(&office, &client, "/board/fragment").await;
    assert!(board.contains(&format!("id=\"alarm-{}\"", alarm.id)));
    assert!(board.contains("data-open-alarms=\"1\""));
    assert!(board.contains("Acknowledge as Olu Office"));

    let path = format!("/alarms/{}/acknowledge", alarm.id);
    let (status, _) = post(&office, &client, &path, &[("csrf", &csrf)]).await;
    assert_eq!(status, 303);
    let acknowledged = alarm_now(&office, alarm.id);
    assert_eq!(acknowledged.acknowledged_by.as_deref(), Some("Olu Office"));
    assert!(acknowledged.acknowledged_at.is_some());

    let (status, page) = post(&office, &client, &path, &[("csrf", &csrf)]).await;
    assert_eq!(status, 409);
    assert!(
        page.contains("already acknowledged by Olu Office"),
        "{page}"
    );
    assert_eq!(
        alarm_now(&office, alarm.id).acknowledged_at,
        acknowledged.acknowledged_at,
        "the first acknowledgement stands"
    );
    // Acknowledged is "being handled", not over: the sound stops, the alarm stays until it is closed.
    let (_, board) = get(&office, &client, "/board/fragment").await;
    assert!(board.contains("data-open-alarms=\"0\""), "{board}");
    assert!(board.contains(&format!("id=\"alarm-{}\"", alarm.id)));
    assert!(board.contains("Being handled by <strong>Olu Office</strong>"));
    assert!(board.contains(&format!("action=\"/alarms/{}/close\"", alarm.id)));
    let log = office.store.alarm_log(&visit("visit-ava")).unwrap();
    assert_eq!(log.last().unwrap().detail, "Olu Office is handling it");

    // Closing needs an outcome: without one (or with one that is not an outcome), nothing changes.
    let close = format!("/alarms/{}/close", alarm.id);
    for outcome in ["", "all fine"] {
        let (status, page) = post(
            &office,
            &client,
            &close,
            &[("csrf", csrf.as_str()), ("outcome", outcome), ("note", "x")],
        )
        .await;
        assert_eq!(status, 400, "{outcome:?}: {page}");
        assert!(page.contains("Say how the alarm ended"), "{page}");
        assert!(alarm_now(&office, alarm.id).is_open());
    }
    let (status, _) = post(
        &office,
        &client,
        &close,
        &[
            ("csrf", csrf.as_str()),
            ("outcome", "spoke_to_staff"),
            ("note", "Rang Sam: phone was on silent, all well"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    let closed = alarm_now(&office, alarm.id);
    assert!(!closed.is_open());
    assert_eq!(
        (
            closed.closed_by.as_deref(),
            closed.outcome,
            closed.close_note.as_deref()
        ),
        (
            Some("Olu Office"),
            Some(AlarmOutcome::SpokeToStaff),
            Some("Rang Sam: phone was on silent, all well")
        )
    );
    let (status, page) = post(
        &office,
        &client,
        &close,
        &[("csrf", csrf.as_str()), ("outcome", "police_called")],
    )
    .await;
    assert_eq!(status, 409, "closed once: {page}");
    assert_eq!(
        alarm_now(&office, alarm.id).outcome,
        Some(AlarmOutcome::SpokeToStaff)
    );
    let (_, board) = get(&office, &client, "/board/fragment").await;
    assert!(board.contains("No open alarms."), "{board}");
    let log = office.store.alarm_log(&visit("visit-ava")).unwrap();
    assert_eq!(
        (
            log.last().unwrap().what.as_str(),
            log.last().unwrap().detail.as_str()
        ),
        (
            "closed",
            "closed by Olu Office: spoke to the member of staff"
        )
    );
    // The visit page and the timeline say so too.
    let (_, page) = get(&office, &client, "/visits/visit-ava").await;
    assert!(page.contains("closed by Olu Office at"), "{page}");
    assert!(page.contains("spoke to the member of staff"));
    assert!(page.contains("Rang Sam: phone was on silent, all well"));
    // The full timeline is for those with a need to know (need_to_know.rs): the headteacher reads it.
    office.allow_sign_in("head");
    let (head, _) = signed_in(&office, "head").await;
    let (_, timeline) = get(&office, &head, "/visits/visit-ava/timeline").await;
    assert!(
        timeline.contains(
            "Olu Office closed the overdue alarm (check-in): spoke to the member of staff"
        ),
        "{timeline}"
    );
}

#[tokio::test]
async fn an_alarm_cannot_be_closed_before_someone_acknowledges_it() {
    let office = office_with_office_and_sam().await;
    let (client, csrf) = signed_in(&office, "office").await;
    let alarm = raise_overdue(&office, "visit-ava");
    let (status, page) = post(
        &office,
        &client,
        &format!("/alarms/{}/close", alarm.id),
        &[("csrf", csrf.as_str()), ("outcome", "staff_safe")],
    )
    .await;
    assert_eq!(status, 409, "{page}");
    assert!(page.contains("Acknowledge the alarm first"), "{page}");
    let alarm = alarm_now(&office, alarm.id);
    assert!(alarm.is_open() && alarm.acknowledged_at.is_none());
}

#[tokio::test]
async fn bad_ids_and_unreadable_forms_get_a_clear_answer_and_change_nothing() {
    let office = office_with_office_and_sam().await;
    let (client, csrf) = signed_in(&office, "office").await;
    let alarm = raise_overdue(&office, "visit-ava");
    let cases: [(&str, u16, &str); 6] = [
        ("/alarms/abc/acknowledge", 404, "There is no alarm “abc”"),
        (
            "/alarms/99999/acknowledge",
            404,
            "There is no alarm “99999”",
        ),
        ("/alarms/-1/acknowledge", 404, "There is no alarm"),
        ("/visits/nope/duress-heard", 404, "There is no visit “nope”"),
        ("/visits/a%20b/duress-heard", 404, "There is no visit “a b”"),
        ("/visits/..%2Fetc/duress-heard", 404, "There is no visit"),
    ];
    for (path, want_status, want_text) in cases {
        let (status, page) = post(&office, &client, path, &[("csrf", &csrf)]).await;
        assert_eq!(status, want_status, "{path}: {page}");
        assert!(page.contains(want_text), "{path}: {page}");
    }
    for path in ["/visits/nope", "/visits/x%2Fy"] {
        let (status, page) = get(&office, &client, path).await;
        assert_eq!(status, 404, "{path}");
        assert!(page.contains("There is no visit"), "{path}: {page}");
    }
    let response = client
        .post(format!("{}/alarms/{}/acknowledge", office.url, alarm.id))
        .json(&serde_json::json!({ "csrf": csrf }))
        .send()
        .await
        .unwrap();
    let (status, page) = text(response).await;
    assert_eq!(status, 400);
    assert!(page.contains("The form could not be read"), "{page}");

    let alarms = office.store.alarms_for_visit(&visit("visit-ava")).unwrap();
    assert_eq!(alarms.len(), 1, "no alarm raised");
    assert!(alarms[0].is_open(), "nothing acknowledged");
}

#[tokio::test]
async fn duress_heard_raises_one_duress_alarm_for_the_authoriser_and_the_runbook_is_ready_to_read()
{
    let office = office_with_office_and_sam().await;
    let (client, csrf) = signed_in(&office, "office").await;
    let response = client
        .post(format!("{}/visits/visit-ava/duress-heard", office.url))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/visits/visit-ava#runbook");
    let alarms = office.store.alarms_for_visit(&visit("visit-ava")).unwrap();
    assert_eq!(alarms.len(), 1);
    let alarm = &alarms[0];
    assert_eq!(
        (alarm.kind, alarm.level, alarm.about.as_str()),
        (
            AlarmKind::Duress,
            AlarmLevel::Authoriser,
            "reception heard the code phrase (Olu Office)"
        )
    );

    // No phone can say this danger is over: the engine must not take the silence of phones as contact.
    let later = Utc::now() + TimeDelta::minutes(11);
    doorstep_office::escalation::evaluate(&office.store, &visit("visit-ava"), later)
        .await
        .unwrap();
    let alarm = alarm_now(&office, alarm.id);
    assert!(alarm.contact_resumed_at.is_none(), "{alarm:?}");
    assert_eq!(
        alarm.level,
        AlarmLevel::Further,
        "unacknowledged, it went on to the further contacts' level"
    );

    let (status, page) = post(
        &office,
        &client,
        "/visits/visit-ava/duress-heard",
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(status, 409, "a second tap adds nothing");
    assert!(page.contains("already raised"), "{page}");
    // (Eleven minutes on, the engine may also have found visit-ava's pair not heard from: those are
    // overdue alarms of their own.)
    assert_eq!(
        office
            .store
            .alarms_for_visit(&visit("visit-ava"))
            .unwrap()
            .iter()
            .filter(|a| a.kind == AlarmKind::Duress)
            .count(),
        1
    );

    let (status, page) = get(&office, &client, "/visits/visit-ava").await;
    assert_eq!(status, 200);
    for needed in [
        "12 Elm Row, Oakfield, OK1 2AB",
        "07700 900003",
        "07700 900004",
        "Priya Head",
        "07700 900001",
        "Ring 999 and ask for the police",
        "101",
        "Please can someone check the lesson cover rota for me?",
        "Reception heard the code phrase (Olu Office)",
        "Acknowledge as Olu Office",
    ] {
        assert!(page.contains(needed), "the visit page shows {needed:?}");
    }
    let duress = page.find("id=\"runbook-duress\"").unwrap();
    let overdue = page.find("id=\"runbook-overdue\"").unwrap();
    assert!(duress < overdue, "with duress open, its steps come first");
    let (_, board) = get(&office, &client, "/board/fragment").await;
    assert!(board.contains("class=\"alarm open duress\""));
    assert!(board.contains("DURESS"));
}

#[tokio::test]
async fn the_board_shows_who_has_arrived_last_contact_and_the_next_deadline() {
    let office = office_with_office_and_sam().await;
    let (client, _) = signed_in(&office, "office").await;
    let sam = &office.phones.me;
    let events = [
        envelope(sam, 1, "visit-ava", departed("sam")),
        envelope(
            sam,
            2,
            "visit-ava",
            VisitEvent::ArrivedOutside {
                staff: staff("sam"),
            },
        ),
    ];
    let (status, body) = office.post_sync(&sam.device_token, &batch(&events)).await;
    assert_eq!(status, 200, "{body}");
    let (_, board) = get(&office, &client, "/board/fragment").await;
    let row_start = board.find("id=\"visit-visit-ava\"").unwrap();
    let row = &board[row_start..board[row_start..].find("</tr>").unwrap() + row_start];
    for needed in [
        "Outside, waiting for 1",
        "Sam Taylor: <span class=\"progress\">outside</span>",
        "Alex Morgan: <span class=\"progress\">not left yet</span>",
        "last heard just now",
        // Alex has not set off: that is what the office waits for first.
        "Alex Morgan has not set off yet: due ",
    ] {
        assert!(row.contains(needed), "{needed:?} in {row}");
    }
}

#[tokio::test]
async fn the_live_stream_announces_a_change_when_a_phone_syncs() {
    let office = office_with_office_and_sam().await;
    let (client, _) = signed_in(&office, "office").await;
    let mut stream = client
        .get(format!("{}/board/events", office.url))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let first = stream.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("event: tick"));

    let sam = &office.phones.me;
    let (status, _) = office
        .post_sync(
            &sam.device_token,
            &batch(&[envelope(sam, 1, "visit-ava", departed("sam"))]),
        )
        .await;
    assert_eq!(status, 200);
    let mut seen = String::new();
    let waited = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while !seen.contains("event: board") {
            let chunk = stream
                .chunk()
                .await
                .unwrap()
                .expect("the stream stays open");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await;
    assert!(waited.is_ok(), "no board event within 10 s: {seen}");
    assert!(
        seen.contains("visit_changed") && seen.contains("visit-ava"),
        "{seen}"
    );
}

#[tokio::test]
async fn signing_out_ends_the_session_on_the_server() {
    let office = office_with_office_and_sam().await;
    let (client, csrf) = signed_in(&office, "office").await;
    let (status, _) = post(&office, &client, "/logout", &[("csrf", &csrf)]).await;
    assert_eq!(status, 303);
    let (status, _) = get(&office, &client, "/").await;
    assert_eq!(status, 303, "signed out");
}

#[tokio::test]
async fn the_session_cookie_is_http_only_same_site_strict_and_secure_by_default() {
    let office = spawn_office().await;
    office.allow_sign_in("office");
    let plain = Client::builder().redirect(Policy::none()).build().unwrap();
    let page = plain
        .get(format!("{}/login", office.url))
        .send()
        .await
        .unwrap();
    let login_cookie = page.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(login_cookie.contains("; Secure"), "{login_cookie}");
    let csrf = csrf_in(&page.text().await.unwrap());
    let response = plain
        .post(format!("{}/login", office.url))
        .header("cookie", format!("doorstep_login_csrf={csrf}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", "office"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let session_cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("doorstep_session="))
        .expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Secure"] {
        assert!(
            session_cookie.contains(attribute),
            "{attribute} in {session_cookie}"
        );
    }
    let token = session_cookie
        .trim_start_matches("doorstep_session=")
        .split(';')
        .next()
        .unwrap();
    let stored: Vec<String> = office
        .sql("SELECT token_sha256 FROM sessions")
        .into_iter()
        .filter_map(|row| row[0].clone())
        .collect();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], token, "only a hash of the token is stored");
    let hash = office.sql("SELECT password_hash FROM office_logins WHERE staff_id = 'office'")[0]
        [0]
    .clone()
    .expect("a hash");
    assert!(hash.starts_with("$argon2id$"), "{hash}");
}

/// The `attribute="…"` of the first `<tag …>` in `html` whose text contains `marker`.
fn attribute_of(html: &str, tag: &str, marker: &str, attribute: &str) -> String {
    let element = html
        .split(&format!("<{tag} "))
        .skip(1)
        .map(|rest| rest.split('>').next().unwrap_or_default())
        .find(|element| element.contains(marker))
        .unwrap_or_else(|| panic!("a <{tag}> with {marker} in {html}"));
    let start = element
        .find(&format!("{attribute}=\""))
        .unwrap_or_else(|| panic!("{attribute} in {element}"))
        + attribute.len()
        + 2;
    element[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn the_boards_script_and_styles_are_files_named_by_their_content_cached_for_a_year_and_allowed_only_by_the_pages_nonce(
) {
    use base64::Engine as _;
    use sha2::Digest as _;

    let office = office_with_office_and_sam().await;
    let (client, _) = signed_in(&office, "office").await;
    let response = client.get(format!("{}/", office.url)).send().await.unwrap();
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let page = response.text().await.unwrap();
    assert!(
        !page.contains("<style") && !page.contains("<script>"),
        "nothing inline: {page}"
    );
    let nonce = attribute_of(&page, "script", "/assets/board-", "nonce");
    assert_eq!(
        attribute_of(&page, "link", "/assets/office-", "nonce"),
        nonce
    );
    assert!(
        csp.contains(&format!("script-src 'nonce-{nonce}';"))
            && csp.contains(&format!("style-src 'nonce-{nonce}';")),
        "only this page's nonce runs: {csp}"
    );

    let assets = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
    for (tag, url_attribute, marker, file, content_type) in [
        (
            "script",
            "src",
            "/assets/board-",
            "board.js",
            "text/javascript; charset=utf-8",
        ),
        (
            "link",
            "href",
            "/assets/office-",
            "office.css",
            "text/css; charset=utf-8",
        ),
    ] {
        let url = attribute_of(&page, tag, marker, url_attribute);
        let response = browser()
            .get(format!("{}{url}", office.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{url} is served signed out too");
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], content_type);
        assert_eq!(
            headers["cache-control"],
            "public, max-age=31536000, immutable"
        );
        assert_eq!(headers["x-content-type-options"], "nosniff");
        let body = response.text().await.unwrap();
        assert_eq!(body, std::fs::read_to_string(assets.join(file)).unwrap());
        let digest = sha2::Sha256::digest(body.as_bytes());
        let short: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        assert!(
            url.ends_with(&format!("-{short}.{}", file.rsplit('.').next().unwrap())),
            "{url}"
        );
        assert_eq!(
            attribute_of(&page, tag, marker, "integrity"),
            format!(
                "sha256-{}",
                base64::engine::general_purpose::STANDARD.encode(digest)
            )
        );
        // A name from another build (or none at all) is not served.
        let (status, _) = get(&office, &client, &url.replace(&short, "0000000000000000")).await;
        assert_eq!(status, 404, "{url} with another hash");
    }
    let (status, login) = get(&office, &browser(), "/login").await;
    assert_eq!(status, 200);
    assert!(
        login.contains("/assets/office-"),
        "the sign-in page is styled too"
    );
    assert!(!login.contains("/assets/board-"), "and runs no script");
}
