//! The school's own code word, against the real office: on the primary preset (which ships none) an admin's
//! sign-in goes to the policy page to set it, the board says it is not set, and authorising is refused with
//! a clear message until it is; the academy preset carries seed 001's two agreed phrases; applying the
//! primary preset keeps a school's own phrases; and every change to the policy is in the audit log.

use doorstep_core::domain::Role;
use doorstep_core::ids::SchoolId;
use doorstep_core::policy::{Policy, Preset};
use doorstep_office::audit::Action;

use crate::admin::{policy_form, set};
use crate::helpers::*;

fn school() -> SchoolId {
    "demo-primary".parse().unwrap()
}

/// The demo school put back on the primary preset exactly as shipped: no code phrases. Ada is an admin;
/// Olu (reception) and the headteacher can sign in too.
async fn office_without_phrases() -> TestOffice {
    let office = office_with_sign_ins(&["office", "head"]).await;
    office.add_staff("ada", "Ada Admin", &[Role::Admin]);
    office.allow_sign_in("ada");
    office
        .store
        .set_policy(&school(), &Preset::PrimaryHeadteacher.policy())
        .unwrap();
    office
}

fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

async fn sign_in_to(office: &TestOffice, who: &str) -> (reqwest::Client, String) {
    let client = browser();
    let (status, page) = get(office, &client, "/login").await;
    assert_eq!(status, 200);
    let response = post_response(
        office,
        &client,
        "/login",
        &[
            ("csrf", csrf_in(&page).as_str()),
            ("name", who),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(response.status(), 303, "{who} signs in");
    let next = location(&response);
    (client, next)
}

#[tokio::test]
async fn without_its_own_code_phrases_a_school_authorises_nothing_and_its_admin_is_asked_to_set_them(
) {
    let office = office_without_phrases().await;

    // The admin goes straight to the policy page, which asks for the school's own code word.
    let (ada, next) = sign_in_to(&office, "ada").await;
    assert_eq!(next, "/admin/policy#code-phrases");
    let (status, page) = get(&office, &ada, "/admin/policy").await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"set-code-phrases\""), "{page}");
    assert!(
        page.contains("Set the school's own code word or phrases"),
        "{page}"
    );

    // Anyone else goes to the board, which says the phrases are not set.
    let (olu, next) = sign_in_to(&office, "office").await;
    assert_eq!(next, "/");
    let (_, board) = get(&office, &olu, "/").await;
    assert!(
        board.contains("The school's code phrases are not set"),
        "{board}"
    );

    // The headteacher cannot authorise: the page says why instead of offering the form, and a post is
    // refused with the same words, recording nothing.
    let (head, head_csrf) = signed_in(&office, "head").await;
    let (status, page) = get(&office, &head, "/visits/visit-mia/authorise").await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"code-phrases-not-set\""), "{page}");
    assert!(!page.contains("id=\"authorise-form\""), "{page}");
    let (status, page) = post(
        &office,
        &head,
        "/visits/visit-mia/authorise",
        &[("csrf", head_csrf.as_str())],
    )
    .await;
    assert_eq!(status, 409, "{page}");
    assert!(
        page.contains("No visit can be authorised until the school has set its own code phrases"),
        "{page}"
    );
    assert!(office
        .store
        .events_for_visit(&visit("visit-mia"))
        .unwrap()
        .is_empty());
    // The store refuses too, whoever asks it.
    let refused = office.store.record_office_event(
        &visit("visit-mia"),
        &doorstep_core::lifecycle::Command::Authorise {
            by: staff("head"),
            lone_visit_approved: false,
        },
        chrono::Utc::now(),
    );
    assert!(
        refused
            .unwrap_err()
            .to_string()
            .contains("code phrases are not set"),
        "the store's refusal names the reason"
    );

    // The admin sets a code word (the same for both, as a primary school's single code word).
    let (_, policy_page) = get(&office, &ada, "/admin/policy").await;
    let mut form = policy_form(
        &office.store.policy(&school()).unwrap(),
        &csrf_in(&policy_page),
    );
    set(
        &mut form,
        "code_to_colleague",
        "Is the blue folder still on my desk?",
    );
    set(
        &mut form,
        "code_to_reception",
        "Is the blue folder still on my desk?",
    );
    let (status, page) = post(&office, &ada, "/admin/policy", &form).await;
    assert_eq!(status, 200, "{page}");
    assert!(!page.contains("id=\"set-code-phrases\""), "{page}");
    let entries = office.store.audit_entries(&school(), 10).unwrap();
    let changed = entries
        .iter()
        .find(|e| e.action() == Some(Action::ChangedPolicy))
        .expect("the change is in the audit log");
    assert_eq!(changed.actor, "ada");
    assert!(changed.detail.contains("code_phrases"), "{changed:?}");
    assert!(
        !changed.detail.contains("blue folder"),
        "never the phrase itself"
    );

    // Now the admin goes to the board, and the headteacher authorises.
    let (_, next) = sign_in_to(&office, "ada").await;
    assert_eq!(next, "/");
    let (status, _) = post(
        &office,
        &head,
        "/visits/visit-mia/authorise",
        &[("csrf", head_csrf.as_str())],
    )
    .await;
    assert_eq!(status, 303);
    let (_, board) = get(&office, &olu, "/").await;
    assert!(
        board.contains("Is the blue folder still on my desk?"),
        "{board}"
    );
}

#[tokio::test]
async fn the_academy_preset_carries_its_agreed_phrases_and_the_primary_preset_keeps_a_schools_own()
{
    let office = office_without_phrases().await;
    let (ada, _) = sign_in_to(&office, "ada").await;
    let (_, page) = get(&office, &ada, "/admin/policy").await;
    let csrf = csrf_in(&page);
    let apply =
        |preset: &'static str| [("csrf", csrf.clone()), ("apply_preset", preset.to_owned())];

    let (status, _) = post(
        &office,
        &ada,
        "/admin/policy",
        &apply("academy_safeguarding_lead"),
    )
    .await;
    assert_eq!(status, 200);
    let phrases = office
        .store
        .policy(&school())
        .unwrap()
        .code_phrases
        .unwrap();
    assert_eq!(
        phrases.to_colleague,
        "I need to call school and let them know I need cover for my lesson"
    );
    assert_eq!(
        phrases.to_reception,
        "I am on a home visit and I need cover for my lesson"
    );

    // The primary preset ships no phrases: the school's are kept, so authorising does not stop.
    let (status, _) = post(
        &office,
        &ada,
        "/admin/policy",
        &apply("primary_headteacher"),
    )
    .await;
    assert_eq!(status, 200);
    let after: Policy = office.store.policy(&school()).unwrap();
    assert_eq!(after.code_phrases, Some(phrases));
    assert_eq!(
        Policy {
            code_phrases: None,
            ..after
        },
        Preset::PrimaryHeadteacher.policy()
    );
}
