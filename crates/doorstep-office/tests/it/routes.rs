//! Every route in the office's route table (`doorstep_office::routes::table`, the list the router is built
//! from), walked against the real server: without a session (or a phone's device token) every route but the
//! public few refuses; the wrong role is a 403; every POST without the session's CSRF token is a 403; and
//! none of those refusals changes anything.

use doorstep_core::domain::Role;
use doorstep_office::routes::{table, Access, CsrfCheck};
use reqwest::redirect::Policy;
use reqwest::{Client, Method};

use crate::helpers::*;

/// The route's path with its `{…}` filled in: a real visit and a real, open alarm, so a refusal is the
/// guard's and not a 404.
fn concrete(path: &str, alarm: i64) -> String {
    if path.starts_with("/alarms/") {
        path.replace("{id}", &alarm.to_string())
    } else if path.starts_with("/admin/devices/") {
        path.replace("{id}", "phone-sam")
    } else {
        path.replace("{id}", "visit-ava")
            .replace("{file}", "board.js")
            .replace("{kind}", "pupils")
    }
}

/// Whether `who` passes a guard of kind `access`.
fn allowed(access: Access, who: &str) -> bool {
    match (access, who) {
        (Access::Public | Access::SignedIn, _) => true,
        (Access::Phone, _) => false,
        // Sam is visiting staff only.
        (Access::Requester, _) => true,
        (_, "sam") => false,
        (Access::Board | Access::BoardLive, _) => true,
        // Olu is the office (reception: no need to know what visits found); Ada is the headteacher (the
        // authoriser) and an admin.
        (Access::Authoriser | Access::Admin | Access::Records | Access::AuditLog, "office") => {
            false
        }
        (Access::Authoriser | Access::Admin | Access::Records | Access::AuditLog, _) => true,
    }
}

/// Row counts of the tables a dashboard request could change. (Not the alarm log: the escalation engine
/// writes to it on its own, by the clock; the alarm itself is checked instead.)
fn snapshot(office: &TestOffice) -> Vec<i64> {
    [
        "visits",
        "events",
        "alarms",
        "staff",
        "pupils",
        "absences",
        "visit_requests",
        "visit_versions",
        "absence_concerns",
        "devices",
        "device_tokens",
        "enrolment_codes",
        "device_log",
    ]
    .iter()
    .map(|table| office.sql_count(&format!("SELECT COUNT(*) FROM {table}")))
    .collect()
}

#[tokio::test]
async fn every_route_refuses_the_signed_out_the_wrong_role_and_a_post_without_its_csrf_token() {
    let office = office_with_sign_ins(&[]).await;
    office.add_staff("ada", "Ada Head", &[Role::Headteacher, Role::Admin]);
    let alarm = office
        .store
        .raise_alarm(
            doorstep_office::alarms::NewAlarm::overdue(
                &visit("visit-ava"),
                "check_in",
                chrono::Utc::now(),
            ),
            chrono::Utc::now(),
        )
        .expect("raise")
        .expect("a new alarm");
    let policy_before = office
        .store
        .policy(&"demo-primary".parse().expect("school"))
        .expect("policy");
    let before = snapshot(&office);
    let plain = Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client");
    let people: Vec<(&str, (String, String))> = ["sam", "office", "ada"]
        .into_iter()
        .map(|who| (who, office.session_for(who)))
        .collect();

    let routes = table();
    assert!(routes.len() > 25, "the whole table: {}", routes.len());
    for route in &routes {
        let path = concrete(route.path, alarm.id);
        let url = format!("{}{path}", office.url);
        let what = format!("{} {}", route.method, route.path);

        // No session, no token.
        let response = plain
            .request(route.method.clone(), &url)
            .form(&[("csrf", "")])
            .send()
            .await
            .expect("office answers");
        let status = response.status().as_u16();
        match route.access {
            Access::Public => assert!(status < 500, "{what}: {status}"),
            Access::Phone | Access::BoardLive => assert_eq!(status, 401, "{what}"),
            _ => {
                assert_eq!(status, 303, "{what}");
                assert_eq!(response.headers()["location"], "/login", "{what}");
            }
        }

        // Each person with a session and a valid token: the wrong role is a 403 with a readable page. (Those
        // allowed are only asked for pages: their POSTs would really act.)
        for (who, (cookie, csrf)) in &people {
            if route.access == Access::Public || route.access == Access::Phone {
                continue;
            }
            let may = allowed(route.access, who);
            if may && route.method != Method::GET {
                continue;
            }
            let response = plain
                .request(route.method.clone(), &url)
                .header("cookie", cookie)
                .form(&[("csrf", csrf.as_str())])
                .send()
                .await
                .expect("office answers");
            let status = response.status().as_u16();
            if may {
                assert!(
                    ![401, 403].contains(&status),
                    "{who} may use {what}: {status}"
                );
            } else {
                let page = response.text().await.expect("page");
                assert_eq!(status, 403, "{who} may not use {what}: {page}");
                assert!(page.contains("Not allowed"), "{what}: {page}");
            }
        }

        // A POST with a session that may use it, but without the session's token.
        match route.csrf {
            // A phone's POSTs carry no cookie for another site's form to ride on: the sync by its device
            // token, enrolment by its one-time code; nor does the SMS gateway's, signed with its secret.
            None => assert!(
                route.method == Method::GET
                    || route.access == Access::Phone
                    || ["/api/v1/enrol", "/api/v1/sms/inbound"].contains(&route.path),
                "{what} has no CSRF check"
            ),
            Some(CsrfCheck::SessionToken) => {
                let (cookie, csrf) = &people[2].1;
                let wrong = "0".repeat(csrf.len());
                for form in [vec![], vec![("csrf", "")], vec![("csrf", wrong.as_str())]] {
                    let response = plain
                        .post(&url)
                        .header("cookie", cookie)
                        .form(&form)
                        .send()
                        .await
                        .expect("office answers");
                    let status = response.status().as_u16();
                    let page = response.text().await.expect("page");
                    assert_eq!(status, 403, "{what} {form:?}: {page}");
                    assert!(page.contains("security check failed"), "{what}: {page}");
                }
            }
            Some(CsrfCheck::SignInCookie) => {
                let response = plain
                    .post(&url)
                    .form(&[
                        ("csrf", "made-up"),
                        ("name", "office"),
                        ("password", PASSWORD),
                    ])
                    .send()
                    .await
                    .expect("office answers");
                assert_eq!(response.status(), 403, "{what}");
            }
        }
    }

    assert_eq!(snapshot(&office), before, "no refusal changed anything");
    assert!(
        office
            .store
            .alarm(alarm.id)
            .expect("read")
            .expect("alarm")
            .is_open(),
        "the alarm was not acknowledged"
    );
    assert_eq!(
        office
            .store
            .policy(&"demo-primary".parse().expect("school"))
            .expect("policy"),
        policy_before
    );
    assert!(
        office
            .store
            .authenticate(&office.phones.me.device_token, chrono::Utc::now())
            .expect("read")
            .is_some(),
        "Sam's phone was not revoked"
    );
    // The sign-outs without a token were refused too: Ada is still signed in.
    let response = plain
        .get(format!("{}/", office.url))
        .header("cookie", &people[2].1 .0)
        .send()
        .await
        .expect("office answers");
    assert_eq!(response.status(), 200);
}
