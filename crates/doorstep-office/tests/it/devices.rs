//! The school's phones against the real office: an admin's one-time enrolment code (QR code and text),
//! redeemed once within its minutes; guessing codes locks the guesser's address out; a revoked phone is
//! refused with its own code; a credential expires, and one in use is renewed with the old one working
//! until the new one is used; a cloned phone is noticed and left for an admin; every step in the device
//! log; no phone is sent a write-up's words.

use chrono::{TimeDelta, Utc};
use doorstep_core::ids::SchoolId;
use doorstep_core::lifecycle::{VisitEvent, WriteUp};
use doorstep_core::protocol::{display_enrolment_code, refusal, EnrolmentLink};
use doorstep_office::audit::Action;
use doorstep_office::devices::{DeviceAction, TokenCheck, REPLACED_GRACE};
use doorstep_office::web::admin::devices::qr_svg;
use serde_json::{json, Value};

use crate::helpers::*;

fn school() -> SchoolId {
    "demo-primary".parse().unwrap()
}

async fn office_with_admin() -> TestOffice {
    let office = office_with_sign_ins(&[]).await;
    office.add_staff("ada", "Ada Admin", &[doorstep_core::domain::Role::Admin]);
    office.allow_sign_in("ada");
    office
}

/// The text between `<tag id="id"…>` and the tag's end, for one element the page names by id.
fn element_text(page: &str, id: &str) -> String {
    let start = page
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} on the page: {page}"));
    let open_end = start + page[start..].find('>').expect("the tag ends");
    let close = open_end + page[open_end..].find('<').expect("the text ends");
    page[open_end + 1..close]
        .replace("&amp;", "&")
        .replace("&quot;", "\"")
}

async fn redeem(office: &TestOffice, code: &str) -> (u16, Value) {
    let response = office
        .http
        .post(format!("{}/api/v1/enrol", office.url))
        .json(&json!({ "protocol": 1, "code": code }))
        .send()
        .await
        .expect("office answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

#[tokio::test]
async fn an_admin_issues_a_code_as_a_qr_code_and_text_and_a_phone_redeems_it_once() {
    let office = office_with_admin().await;
    let (admin, csrf) = signed_in(&office, "ada").await;
    let (status, page) = get(&office, &admin, "/admin/devices").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"device-phone-sam\""), "{page}");

    let (status, page) = post(
        &office,
        &admin,
        "/admin/devices/codes",
        &[("csrf", csrf.as_str()), ("staff", "sam")],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Enrolment code for Sam Taylor"), "{page}");
    let shown = element_text(&page, "code-text");
    let link = element_text(&page, "code-link");
    let parsed = EnrolmentLink::parse(&link).expect("the page shows the enrolment link");
    assert_eq!(display_enrolment_code(&parsed.code), shown);
    assert_eq!(
        parsed.office_url, office.url,
        "the link names the office the admin reached"
    );
    // The QR code on the page is the code of that link (the same renderer draws it from the link).
    let svg_start = page.find("<svg").expect("a QR code");
    let svg_end = svg_start + page[svg_start..].find("</svg>").expect("its end") + 6;
    assert_eq!(page[svg_start..svg_end], qr_svg(&link).unwrap());
    assert!(
        !page.contains("<?xml"),
        "the SVG is inline, without a file's declaration"
    );
    let (_, listed) = get(&office, &admin, "/admin/devices").await;
    assert!(listed.contains("id=\"pending-codes\""), "{listed}");
    assert!(
        !listed.contains(&shown),
        "the code is shown only once: {listed}"
    );

    // Typed as a person reads it off the screen: lower case, spaces for dashes.
    let typed = shown.to_lowercase().replace('-', " ");
    let (status, enrolled) = redeem(&office, &typed).await;
    assert_eq!(status, 200, "{enrolled}");
    assert_eq!(enrolled["staff"], "sam");
    assert_eq!(enrolled["staff_name"], "Sam Taylor");
    assert_eq!(enrolled["school_name"], "Oakfield Primary (demo)");
    let device = enrolled["device_id"].as_str().unwrap().to_owned();
    assert!(device.starts_with("phone-") && device != "phone-sam");
    let token = enrolled["credential"]["token"].as_str().unwrap().to_owned();
    let expires: chrono::DateTime<Utc> =
        serde_json::from_value(enrolled["credential"]["expires_at"].clone()).unwrap();
    let days = (expires - Utc::now()).num_hours() as f64 / 24.0;
    assert!((29.9..=30.0).contains(&days), "lasts 30 days: {days}");
    let (status, sync) = office.post_sync(&token, &batch(&[])).await;
    assert_eq!(status, 200, "{sync}");
    assert_eq!(sync["hold"]["staff"], "sam");

    // Once only.
    let (status, again) = redeem(&office, &shown).await;
    assert_eq!(status, 410, "{again}");
    assert_eq!(again["error"], refusal::CODE_USED);

    // The office keeps only hashes of codes and tokens.
    let dump: String = office
        .sql("SELECT code_sha256 FROM enrolment_codes UNION ALL SELECT token_sha256 FROM device_tokens")
        .into_iter()
        .flatten()
        .flatten()
        .collect();
    assert!(!dump.contains(&parsed.code) && !dump.contains(&token));

    let (_, listed) = get(&office, &admin, "/admin/devices").await;
    let row = &listed[listed
        .find(&format!("id=\"device-{device}\""))
        .expect("the new phone is listed")..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(
        row.contains("Sam Taylor") && row.contains("Active") && row.contains("code from ada"),
        "{row}"
    );
    assert!(!row.contains("never"), "it was seen at its sync: {row}");
    let log = office.store.device_log(&school(), 10).unwrap();
    let actions: Vec<DeviceAction> = log.iter().map(|e| e.action).collect();
    assert_eq!(actions, [DeviceAction::Enrolled, DeviceAction::CodeIssued]);
    assert_eq!(log[1].actor, "ada");
    assert_eq!(
        log[0].device.as_ref().map(|d| d.as_str()),
        Some(device.as_str())
    );
    // The audit log holds both too, newest first, in a chain that verifies.
    let audit = office.store.audit_entries(&school(), 10).unwrap();
    let audited: Vec<(Option<Action>, &str)> = audit
        .iter()
        .filter(|e| {
            matches!(
                e.action(),
                Some(Action::EnrolledPhone | Action::IssuedEnrolmentCode)
            )
        })
        .map(|e| (e.action(), e.actor.as_str()))
        .collect();
    assert_eq!(
        audited,
        [
            (Some(Action::EnrolledPhone), "sam"),
            (Some(Action::IssuedEnrolmentCode), "ada"),
        ]
    );
    assert!(office.store.verify_audit_log().unwrap().is_intact());
}

#[tokio::test]
async fn a_code_expires_after_fifteen_minutes_and_a_newer_one_for_the_same_person_replaces_it() {
    let office = spawn_office().await;
    let old = office
        .store
        .issue_enrolment_code(
            &school(),
            &staff("alex"),
            "head",
            Utc::now() - TimeDelta::minutes(16),
        )
        .unwrap();
    let (status, body) = redeem(&office, &old.code).await;
    assert_eq!(status, 410, "{body}");
    assert_eq!(body["error"], refusal::CODE_EXPIRED);
    assert!(body["message"].as_str().unwrap().contains("15 minutes"));
    assert!(
        !body["message"].as_str().unwrap().contains("Alex"),
        "a refusal names nobody: {body}"
    );

    let first = office
        .store
        .issue_enrolment_code(&school(), &staff("alex"), "head", Utc::now())
        .unwrap();
    let second = office
        .store
        .issue_enrolment_code(&school(), &staff("alex"), "head", Utc::now())
        .unwrap();
    let (status, body) = redeem(&office, &first.code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (410, Some(refusal::CODE_EXPIRED))
    );
    let (status, body) = redeem(&office, &second.code).await;
    assert_eq!(status, 200, "{body}");

    for bad in ["", "not-a-code", "0000-0000-000"] {
        let (status, body) = redeem(&office, bad).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (404, Some(refusal::CODE_UNKNOWN)),
            "{bad:?}"
        );
    }
}

#[tokio::test]
async fn guessing_codes_locks_the_address_out_before_any_code_is_looked_up() {
    let office = spawn_office().await;
    let good = office
        .store
        .issue_enrolment_code(&school(), &staff("jo"), "head", Utc::now())
        .unwrap();
    for guess in 0..10 {
        let (status, body) = redeem(&office, &format!("{guess:012}")).await;
        assert_eq!(status, 404, "guess {guess}: {body}");
    }
    let (status, body) = redeem(&office, &good.code).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"], refusal::TOO_MANY_ATTEMPTS);
    let pending = office
        .store
        .pending_enrolment_codes(&school(), Utc::now())
        .unwrap();
    assert!(
        pending.iter().any(|code| code.staff == staff("jo")),
        "the good code was not even looked up, so it is still unused"
    );
    // Phones already enrolled are not locked out: sync goes on.
    let (status, _) = office
        .post_sync(&office.phones.me.device_token, &batch(&[]))
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_revoked_phone_is_refused_with_its_own_code_and_its_partner_carries_on() {
    let office = office_with_admin().await;
    let (admin, csrf) = signed_in(&office, "ada").await;
    let sam = office.phones.me.clone();
    let (status, _) = office.post_sync(&sam.device_token, &batch(&[])).await;
    assert_eq!(status, 200);

    let (status, page) = post(
        &office,
        &admin,
        "/admin/devices/phone-sam/revoke",
        &[("csrf", csrf.as_str())],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Phone phone-sam is revoked"), "{page}");
    let row = &page[page.find("id=\"device-phone-sam\"").unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains("Revoked") && row.contains("by ada"), "{row}");
    assert!(
        !row.contains("revoke-phone-sam"),
        "no second revoke button: {row}"
    );

    let events = [envelope(&sam, 1, "visit-ava", departed("sam"))];
    let (status, body) = office.post_sync(&sam.device_token, &batch(&events)).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], refusal::DEVICE_REVOKED);
    assert_eq!(office.stored_event_count(), 0, "nothing from it is stored");
    let alex = &office.phones.partner;
    let (status, _) = office.post_sync(&alex.device_token, &batch(&[])).await;
    assert_eq!(status, 200, "Alex's phone carries on");

    // Revoking twice, or a phone that is not there, changes nothing and says so.
    let (status, page) = post(
        &office,
        &admin,
        "/admin/devices/phone-sam/revoke",
        &[("csrf", csrf.as_str())],
    )
    .await;
    assert_eq!(status, 409, "{page}");
    assert!(page.contains("already revoked"), "{page}");
    let (status, _) = post(
        &office,
        &admin,
        "/admin/devices/phone-nobody/revoke",
        &[("csrf", csrf.as_str())],
    )
    .await;
    assert_eq!(status, 404);
    let log = office.store.device_log(&school(), 10).unwrap();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].action, DeviceAction::Revoked);
    assert_eq!(log[0].actor, "ada");
    let audit = office.store.audit_entries(&school(), 10).unwrap();
    let revoked: Vec<_> = audit
        .iter()
        .filter(|e| e.action() == Some(Action::RevokedPhone))
        .collect();
    assert_eq!(revoked.len(), 1, "{audit:?}");
    assert_eq!(
        (revoked[0].actor.as_str(), revoked[0].record.as_str()),
        ("ada", "phone-sam")
    );
}

#[tokio::test]
async fn a_credential_expires_and_one_in_use_is_renewed_the_old_working_until_the_new_is_used() {
    let office = spawn_office().await;
    let now = Utc::now();
    let long_ago = "an-old-token-made-31-days-ago-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
    let week_old = "a-token-made-8-days-ago-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
    office
        .store
        .enrol_device(
            &"phone-jo-old".parse().unwrap(),
            &staff("jo"),
            long_ago,
            now - TimeDelta::days(31),
        )
        .unwrap();
    office
        .store
        .enrol_device(
            &"phone-jo".parse().unwrap(),
            &staff("jo"),
            week_old,
            now - TimeDelta::days(8),
        )
        .unwrap();
    let (status, body) = office.post_sync(long_ago, &batch(&[])).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], refusal::CREDENTIAL_EXPIRED);

    let (status, first) = office.post_sync(week_old, &batch(&[])).await;
    assert_eq!(status, 200, "{first}");
    let offered = first["renewed_credential"]["token"]
        .as_str()
        .expect("a week-old credential is renewed in the sync answer")
        .to_owned();
    // The answer was lost: the old token still works, and another is offered.
    let (status, second) = office.post_sync(week_old, &batch(&[])).await;
    assert_eq!(status, 200, "{second}");
    let newer = second["renewed_credential"]["token"].as_str().unwrap();
    assert_ne!(newer, offered);
    // The phone uses the first it kept: that one becomes the credential, with no offer of its own.
    let (status, third) = office.post_sync(&offered, &batch(&[])).await;
    assert_eq!(status, 200, "{third}");
    assert!(third.get("renewed_credential").is_none(), "{third}");
    for gone in [week_old, newer] {
        let (status, body) = office.post_sync(gone, &batch(&[])).await;
        assert_eq!(status, 401, "{body}");
    }
    let (_, body) = office.post_sync(week_old, &batch(&[])).await;
    assert_eq!(
        body["error"],
        refusal::CREDENTIAL_REPLACED,
        "the old token is replaced, not forgotten"
    );
    let jo = office
        .store
        .school_devices(&school())
        .unwrap()
        .into_iter()
        .find(|d| d.id.as_str() == "phone-jo")
        .unwrap();
    assert!(
        jo.clone_suspected.is_none(),
        "a late request within moments of the renewal is not a clone"
    );
    let log = office.store.device_log(&school(), 10).unwrap();
    assert_eq!(log[0].action, DeviceAction::Renewed);
}

#[tokio::test]
async fn a_cloned_phone_is_noticed_and_left_for_an_admin_to_revoke() {
    let office = office_with_admin().await;
    let sam = office.phones.me.clone();
    // Two phones from one copy of Sam's data both number their next event 1.
    let here = envelope(&sam, 1, "visit-ava", departed("sam"));
    let there = envelope(
        &sam,
        1,
        "visit-ava",
        VisitEvent::RunningLate {
            staff: staff("sam"),
            expected_arrival: in_minutes(30),
        },
    );
    let (status, _) = office.post_sync(&sam.device_token, &batch(&[here])).await;
    assert_eq!(status, 200);
    let (status, body) = office.post_sync(&sam.device_token, &batch(&[there])).await;
    assert_eq!(status, 409, "{body}");

    // The office does not cut the phone off by itself (the real one may be on a visit): an admin sees it.
    let (status, _) = office.post_sync(&sam.device_token, &batch(&[])).await;
    assert_eq!(status, 200, "still answered");
    let (admin, _) = signed_in(&office, "ada").await;
    let (_, page) = get(&office, &admin, "/admin/devices").await;
    let warning = &page[page
        .find("id=\"clone-phone-sam\"")
        .expect("a warning on Sam's phone")..];
    let warning = &warning[..warning.find("</p>").unwrap()];
    assert!(
        warning.contains("Two phones may be using this phone's credential")
            && warning.contains("sequence number 1")
            && warning.contains("Revoke it"),
        "{warning}"
    );
    let log = office.store.device_log(&school(), 10).unwrap();
    assert_eq!(log[0].action, DeviceAction::CloneSuspected);

    // The other sign: a replaced credential used again long after its phone moved on.
    let now = Utc::now();
    let token = "alex-old-token-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
    office
        .store
        .enrol_device(
            &"phone-alex-2".parse().unwrap(),
            &staff("alex"),
            token,
            now - TimeDelta::days(8),
        )
        .unwrap();
    let TokenCheck::Accepted(device) = office.store.check_token(token, now).unwrap() else {
        panic!("accepted")
    };
    let renewed = office.store.offer_renewal(&device, now).unwrap().unwrap();
    assert!(matches!(
        office.store.check_token(&renewed.token, now).unwrap(),
        TokenCheck::Accepted(_)
    ));
    assert_eq!(
        office
            .store
            .check_token(token, now + REPLACED_GRACE + TimeDelta::seconds(1))
            .unwrap(),
        TokenCheck::Replaced { clone: true }
    );
    let alex2 = office
        .store
        .school_devices(&school())
        .unwrap()
        .into_iter()
        .find(|d| d.id.as_str() == "phone-alex-2")
        .unwrap();
    let (_, why) = alex2.clone_suspected.expect("flagged");
    assert!(why.contains("used again"), "{why}");
}

#[tokio::test]
async fn no_phone_is_sent_a_write_ups_words() {
    let office = spawn_office().await;
    let (sam, alex) = (&office.phones.me, &office.phones.partner);
    let events = [
        envelope(sam, 1, "visit-ava", departed("sam")),
        envelope(
            sam,
            2,
            "visit-ava",
            VisitEvent::Cancelled {
                staff: staff("sam"),
                reason: doorstep_core::lifecycle::CancelReason::NoAnswerAfterWait,
                note: String::new(),
            },
        ),
        envelope(
            sam,
            3,
            "visit-ava",
            VisitEvent::WrittenUp {
                staff: staff("sam"),
                write_up: WriteUp {
                    seen: "Nobody came to the door".into(),
                    discussed: "Nothing: a neighbour said the family moved".into(),
                    agreements: "Ring the family on Monday".into(),
                    safeguarding_concern: true,
                    incident: None,
                },
            },
        ),
    ];
    let (status, body) = office.post_sync(&sam.device_token, &batch(&events)).await;
    assert_eq!(status, 200, "{body}");
    for (who, token) in [("sam", &sam.device_token), ("alex", &alex.device_token)] {
        let (_, body) = office.post_sync(token, &batch(&[])).await;
        let text = body.to_string();
        assert!(text.contains("written_up"), "{who} hears it was written up");
        for words in ["Nobody came", "neighbour", "Monday"] {
            assert!(!text.contains(words), "{who}'s phone was sent {words:?}");
        }
    }
    // The office keeps the write-up as written.
    let stored = office.store.events_for_visit(&visit("visit-ava")).unwrap();
    assert!(stored.iter().any(|e| matches!(
        &e.envelope.event,
        VisitEvent::WrittenUp { write_up, .. } if write_up.agreements == "Ring the family on Monday"
    )));
}
