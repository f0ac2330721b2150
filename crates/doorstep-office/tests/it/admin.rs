//! The admin pages over HTTP, against the real office: only admins get in, every form needs its CSRF token,
//! the pupil and absence CSV imports store good rows and report bad ones by line, the policy is validated
//! before it is stored (and reaches the phones at their next sync), and staff without an enhanced DBS check
//! are shown as unassignable and refused by the store.

use chrono::{NaiveDate, Utc};
use doorstep_core::domain::{Role, VisitStaff};
use doorstep_core::ids::SchoolId;
use doorstep_core::policy::{Policy, Preset};

use crate::helpers::*;

fn school() -> SchoolId {
    "demo-primary".parse().expect("school id")
}

/// The demo office over plain HTTP with an admin ("ada", added through the store) and the office able to
/// sign in.
async fn office_with_admin() -> TestOffice {
    let office = office_with_sign_ins(&[]).await;
    office.add_staff("ada", "Ada Admin", &[Role::Admin]);
    office.allow_sign_in("ada");
    office.allow_sign_in("office");
    office
}

fn pupil_names(office: &TestOffice) -> Vec<(String, String)> {
    office
        .sql("SELECT id, name FROM pupils WHERE date_of_birth IS NOT NULL ORDER BY id")
        .into_iter()
        .map(|row| (text(&row[0]), text(&row[1])))
        .collect()
}

/// A column the query always fills.
fn text(column: &Option<String>) -> String {
    column.clone().expect("a value")
}

fn stored_policy(office: &TestOffice) -> Policy {
    office.store.policy(&school()).expect("policy")
}

const ADMIN_PAGES: [&str; 4] = [
    "/admin/staff",
    "/admin/import/pupils",
    "/admin/import/absences",
    "/admin/policy",
];

#[tokio::test]
async fn only_admins_can_open_or_post_the_admin_pages() {
    let office = office_with_admin().await;
    let before = stored_policy(&office);

    let signed_out = browser();
    for path in ADMIN_PAGES {
        let response = signed_out
            .get(format!("{}{path}", office.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 303, "{path} signed out");
        assert_eq!(response.headers()["location"], "/login");
    }

    let (client, csrf) = signed_in(&office, "office").await;
    for path in ADMIN_PAGES {
        let (status, page) = get(&office, &client, path).await;
        assert_eq!(status, 403, "{path}: {page}");
        assert!(page.contains("for admins only"), "{page}");
        // With a good CSRF token, so only the role refuses it.
        let (status, _) = post(
            &office,
            &client,
            path,
            &[
                ("csrf", csrf.as_str()),
                ("apply_preset", "academy_safeguarding_lead"),
                ("csv", "pupil_id,name\n"),
                ("id", "mallory"),
            ],
        )
        .await;
        assert_eq!(status, 403, "POST {path}");
    }
    assert_eq!(stored_policy(&office), before, "nothing changed");
    assert!(office
        .store
        .school_staff_member(&school(), &staff("mallory"))
        .unwrap()
        .is_none());

    let (admin, _) = signed_in(&office, "ada").await;
    for path in ADMIN_PAGES {
        let (status, page) = get(&office, &admin, path).await;
        assert_eq!(status, 200, "{path}: {page}");
    }
}

#[tokio::test]
async fn every_admin_form_needs_the_sessions_csrf_token() {
    let office = office_with_admin().await;
    let before = stored_policy(&office);
    let (client, csrf) = signed_in(&office, "ada").await;
    let good_csv = "pupil_id,name,date_of_birth,address_line_1,address_line_2,town,postcode,family_notes,medical_needs\n\
                    p-1,Zoe A.,2016-05-04,1 High St,,Oakfield,OK1 1AA,,\n";
    let wrong = format!("{}x", &csrf[..csrf.len() - 1]);
    for token in ["", wrong.as_str()] {
        let (status, page) = post(
            &office,
            &client,
            "/admin/policy",
            &[
                ("csrf", token),
                ("apply_preset", "academy_safeguarding_lead"),
            ],
        )
        .await;
        assert_eq!(status, 403, "{page}");
        assert!(page.contains("security check failed"), "{page}");
        for path in ["/admin/import/pupils", "/admin/import/absences"] {
            let (status, _) = post(
                &office,
                &client,
                path,
                &[("csrf", token), ("csv", good_csv)],
            )
            .await;
            assert_eq!(status, 403, "{path}");
        }
        let (status, _) = post(
            &office,
            &client,
            "/admin/staff",
            &[
                ("csrf", token),
                ("id", "pat"),
                ("name", "Pat"),
                ("phone", "07700 900010"),
                ("role", "office"),
            ],
        )
        .await;
        assert_eq!(status, 403);
    }
    assert_eq!(stored_policy(&office), before);
    assert!(pupil_names(&office).is_empty());
    assert!(office
        .store
        .school_staff_member(&school(), &staff("pat"))
        .unwrap()
        .is_none());
}

const HEADER: &str = "pupil_id,name,date_of_birth,address_line_1,address_line_2,town,postcode,family_notes,medical_needs";

#[tokio::test]
async fn pupil_csv_imports_good_rows_and_reports_each_bad_row_by_line() {
    let office = office_with_admin().await;
    let (client, csrf) = signed_in(&office, "ada").await;
    let csv = format!(
        "{HEADER}\n\
         p-100,Amy Good,2016-01-02,1 Elm Row,,Oakfield,OK1 2AB,Lives with gran,\n\
         p-101,,2016-01-03,2 Elm Row,,Oakfield,OK1 2AB,,\n\
         p-102,Ben Good,03/02/2017,\"Flat 2, 3 Mill Lane\",Upper Floor,Oakfield,ok2 7cd,,Asthma\n\
         p-103,Cal Bad,2016-01-04,4 Elm Row,,Oakfield,NOT A CODE,,\n\
         p-104,Dee Good,2015-12-31,5 Elm Row,,,OK3 9EF,,\n\
         p-105,Eve Short,2016-01-05,6 Elm Row\n"
    );
    let (status, page) = post(
        &office,
        &client,
        "/admin/import/pupils",
        &[("csrf", csrf.as_str()), ("csv", csv.as_str())],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("3 imported, 0 updated, 3 rejected."),
        "{page}"
    );
    let rejected = &page[page
        .find("id=\"rejected\"")
        .expect("a table of rejected rows")..];
    for (line, id, reason) in [
        (3, "p-101", "Name is missing"),
        (5, "p-103", "postcode “NOT A CODE” is not a UK postcode"),
        (7, "p-105", "the row has 4 columns; expected 9"),
    ] {
        let row = format!("<tr><td>{line}</td><td>{id}</td><td>");
        let at = rejected
            .find(&row)
            .unwrap_or_else(|| panic!("line {line} reported: {rejected}"));
        let cell = &rejected[at + row.len()..];
        let cell = &cell[..cell.find("</td>").unwrap()];
        assert!(
            cell.to_lowercase().contains(&reason.to_lowercase()),
            "line {line}: {cell}"
        );
    }
    assert_eq!(
        pupil_names(&office),
        vec![
            ("p-100".to_owned(), "Amy Good".to_owned()),
            ("p-102".to_owned(), "Ben Good".to_owned()),
            ("p-104".to_owned(), "Dee Good".to_owned()),
        ],
        "only the good rows are stored"
    );
    let stored = office.store.pupil_records(&school()).unwrap();
    let ben = stored.iter().find(|p| p.id.as_str() == "p-102").unwrap();
    assert_eq!(ben.postcode.as_str(), "OK2 7CD");
    assert_eq!(ben.address_line_1, "Flat 2, 3 Mill Lane");
    assert_eq!(
        ben.date_of_birth,
        NaiveDate::from_ymd_opt(2017, 2, 3).unwrap()
    );
    assert_eq!(ben.medical_needs, "Asthma");

    // The same pupil again updates it; a new one is added.
    let again = format!(
        "{HEADER}\n\
         p-100,Amy Renamed,2016-01-02,9 New Road,,Oakfield,OK1 2AB,,\n\
         p-106,Fay New,2016-06-06,7 Elm Row,,Oakfield,OK1 2AB,,\n"
    );
    let (status, page) = post(
        &office,
        &client,
        "/admin/import/pupils",
        &[("csrf", csrf.as_str()), ("csv", again.as_str())],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("1 imported, 1 updated, 0 rejected."),
        "{page}"
    );
    let names = pupil_names(&office);
    assert!(
        names.contains(&("p-100".into(), "Amy Renamed".into())),
        "{names:?}"
    );
    assert_eq!(names.len(), 4);

    // Another school's pupil id is not taken over.
    let other: SchoolId = "other-school".parse().unwrap();
    office
        .store
        .add_school(
            &doorstep_core::domain::School {
                id: other.clone(),
                name: "Another school".into(),
                office_phone: "01632 960999".parse().unwrap(),
                time_zone: Default::default(),
            },
            &Preset::AcademySafeguardingLead.policy(),
        )
        .unwrap();
    office
        .store
        .add_pupil(
            &other,
            &doorstep_core::domain::Pupil {
                id: "p-elsewhere".parse().unwrap(),
                name: "Not Ours".into(),
            },
        )
        .unwrap();
    let theirs =
        format!("{HEADER}\np-elsewhere,Taken Over,2016-01-02,1 Elm Row,,Oakfield,OK1 2AB,,\n");
    let (status, page) = post(
        &office,
        &client,
        "/admin/import/pupils",
        &[("csrf", csrf.as_str()), ("csv", theirs.as_str())],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("0 imported, 0 updated, 1 rejected."),
        "{page}"
    );
    assert!(page.contains("belongs to another school"), "{page}");
    let row = &office.sql("SELECT name, school_id FROM pupils WHERE id = 'p-elsewhere'")[0];
    let (name, owner) = (text(&row[0]), text(&row[1]));
    assert_eq!(
        (name.as_str(), owner.as_str()),
        ("Not Ours", "other-school")
    );

    // A file without the header is refused whole, with the header it needs.
    let (status, page) = post(
        &office,
        &client,
        "/admin/import/pupils",
        &[
            ("csrf", csrf.as_str()),
            ("csv", "p-200,Gus,2016-01-01,1 Road,,,OK1 1AA,,\n"),
        ],
    )
    .await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("must be the header row"), "{page}");
    assert_eq!(pupil_names(&office).len(), 4);
}

#[tokio::test]
async fn absences_import_for_known_pupils_and_are_read_back_by_date() {
    let office = office_with_admin().await;
    let (client, csrf) = signed_in(&office, "ada").await;
    let pupils = format!("{HEADER}\np-1,Amy,2016-01-02,1 Elm Row,,Oakfield,OK1 2AB,,\n");
    let (status, _) = post(
        &office,
        &client,
        "/admin/import/pupils",
        &[("csrf", csrf.as_str()), ("csv", pupils.as_str())],
    )
    .await;
    assert_eq!(status, 200);
    let csv = "pupil_id,date,reason_code,contact_made\n\
               p-1,2026-01-05,N,no\n\
               p-1,06/01/2026,O,yes\n\
               p-unknown,2026-01-05,N,no\n\
               p-1,2026-01-07,N,maybe\n";
    let (status, page) = post(
        &office,
        &client,
        "/admin/import/absences",
        &[("csrf", csrf.as_str()), ("csv", csv)],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("2 imported, 0 updated, 2 rejected."),
        "{page}"
    );
    assert!(page.contains("import the pupils first"), "{page}");
    assert!(page.contains("must be yes or no"), "{page}");
    let day = |d| NaiveDate::from_ymd_opt(2026, 1, d).unwrap();
    let absences = office
        .store
        .absences_for(&school(), day(5), day(6))
        .unwrap();
    assert_eq!(absences.len(), 2);
    assert_eq!(
        (
            absences[1].date,
            absences[1].reason_code.as_str(),
            absences[1].contact_made
        ),
        (day(6), "O", true)
    );
    assert!(office
        .store
        .absences_for(&school(), day(7), day(9))
        .unwrap()
        .is_empty());

    // The same day again updates it.
    let (_, page) = post(
        &office,
        &client,
        "/admin/import/absences",
        &[
            ("csrf", csrf.as_str()),
            (
                "csv",
                "pupil_id,date,reason_code,contact_made\np-1,2026-01-05,M,yes\n",
            ),
        ],
    )
    .await;
    assert!(
        page.contains("0 imported, 1 updated, 0 rejected."),
        "{page}"
    );
    let absences = office
        .store
        .absences_for(&school(), day(5), day(5))
        .unwrap();
    assert_eq!(absences[0].reason_code, "M");
    assert!(absences[0].contact_made);
}

/// The policy form's fields as a person would post them for `policy`.
pub(crate) fn policy_form(policy: &Policy, csrf: &str) -> Vec<(String, String)> {
    let wire = |v: serde_json::Value| v.as_str().unwrap().to_owned();
    let mut form = vec![
        ("csrf", csrf.to_owned()),
        (
            "authoriser",
            wire(serde_json::to_value(policy.authoriser).unwrap()),
        ),
        (
            "lone_visit_approver",
            wire(serde_json::to_value(policy.lone_visit_approver).unwrap()),
        ),
        (
            "safeguarding_concerns_to",
            wire(serde_json::to_value(policy.safeguarding_concerns_to).unwrap()),
        ),
        ("staff_per_visit", policy.staff_per_visit.to_string()),
        (
            "first_check_in_after_start",
            policy.first_check_in_after_start.get().to_string(),
        ),
        (
            "check_in_interval",
            policy.check_in_interval.get().to_string(),
        ),
        (
            "max_wait_for_family",
            policy.max_wait_for_family.get().to_string(),
        ),
        ("overdue_grace", policy.overdue_grace.get().to_string()),
        (
            "escalate_to_authoriser_after",
            policy.escalate_to_authoriser_after.get().to_string(),
        ),
        (
            "school_hours_start",
            policy.school_hours.start.format("%H:%M").to_string(),
        ),
        (
            "school_hours_end",
            policy.school_hours.end.format("%H:%M").to_string(),
        ),
        (
            "evening_starts",
            policy.evening_starts.format("%H:%M").to_string(),
        ),
        (
            "evening_visits",
            wire(serde_json::to_value(policy.evening_visits).unwrap()),
        ),
        (
            "code_to_colleague",
            policy
                .code_phrases
                .as_ref()
                .map(|p| p.to_colleague.clone())
                .unwrap_or_default(),
        ),
        (
            "code_to_reception",
            policy
                .code_phrases
                .as_ref()
                .map(|p| p.to_reception.clone())
                .unwrap_or_default(),
        ),
        ("absence_visit_day", policy.absence_visit_day.to_string()),
        (
            "absence_visit_day_with_concern",
            policy.absence_visit_day_with_concern.to_string(),
        ),
        ("record_system", policy.record_system.clone()),
        (
            "delete_briefings_after_days_offline",
            policy.delete_briefings_after_days_offline.to_string(),
        ),
        ("pair_waits_outside_until_all_arrived", "yes".to_owned()),
        ("out_of_hours_needs_responsible_contact", "yes".to_owned()),
        ("dbs_check_required", "yes".to_owned()),
        ("animals_secured_or_cancel", "yes".to_owned()),
    ];
    for purpose in &policy.purposes {
        form.push(("purpose", wire(serde_json::to_value(purpose).unwrap())));
    }
    for hazard in &policy.standard_hazards {
        form.push(("hazard", wire(serde_json::to_value(hazard).unwrap())));
    }
    form.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

pub(crate) fn set(form: &mut [(String, String)], key: &str, value: &str) {
    for (k, v) in form.iter_mut() {
        if k == key {
            *v = value.to_owned();
        }
    }
}

#[tokio::test]
async fn a_bad_policy_edit_is_refused_field_by_field_and_a_good_one_reaches_the_phones() {
    let office = office_with_admin().await;
    let (client, csrf) = signed_in(&office, "ada").await;
    let before = stored_policy(&office);
    assert_eq!(
        before,
        Policy {
            code_phrases: Some(doorstep_office::demo::demo_code_phrases()),
            ..Preset::PrimaryHeadteacher.policy()
        },
        "the demo school's own code phrases on the primary preset"
    );

    // The unchanged form round-trips: saving it stores the same policy.
    let (status, page) = post(
        &office,
        &client,
        "/admin/policy",
        &policy_form(&before, &csrf),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(stored_policy(&office), before);

    let mut bad = policy_form(&before, &csrf);
    set(&mut bad, "first_check_in_after_start", "0");
    set(&mut bad, "school_hours_start", "15:30");
    set(&mut bad, "school_hours_end", "08:30");
    set(&mut bad, "delete_briefings_after_days_offline", "0");
    let (status, page) = post(&office, &client, "/admin/policy", &bad).await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("Nothing was saved: 3 problems"), "{page}");
    let beside = |field: &str| {
        let at = page
            .find(&format!("id=\"error-{field}\""))
            .unwrap_or_else(|| panic!("an error beside {field}: {page}"));
        page[at..].chars().take(300).collect::<String>()
    };
    assert!(beside("first_check_in_after_start").contains("from 1 to 1440; got “0”"));
    assert!(beside("school_hours_end").contains("School hours must start before they end"));
    assert!(beside("delete_briefings_after_days_offline").contains("1 to 60 days; got “0”"));
    // The form comes back as typed.
    assert!(
        page.contains("name=\"school_hours_start\" value=\"15:30\""),
        "{page}"
    );
    assert_eq!(stored_policy(&office), before, "nothing was saved");

    let mut good = policy_form(&before, &csrf);
    set(&mut good, "first_check_in_after_start", "15");
    set(&mut good, "delete_briefings_after_days_offline", "3");
    set(
        &mut good,
        "code_to_reception",
        "Could someone cover period 5 for me?",
    );
    let (status, page) = post(&office, &client, "/admin/policy", &good).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("The policy was saved."), "{page}");
    let after = stored_policy(&office);
    assert_eq!(after.first_check_in_after_start.get(), 15);
    assert_eq!(
        after.code_phrases.map(|p| p.to_reception).as_deref(),
        Some("Could someone cover period 5 for me?")
    );

    let (status, sync) = office
        .post_sync(&office.phones.me.device_token, &batch(&[]))
        .await;
    assert_eq!(status, 200, "{sync}");
    assert_eq!(sync["hold"]["policy"]["first_check_in_after_start"], 15);
    assert_eq!(
        sync["hold"]["policy"]["delete_briefings_after_days_offline"],
        3
    );
    assert_eq!(
        sync["hold"]["policy"]["code_phrases"]["to_reception"],
        "Could someone cover period 5 for me?"
    );

    // A preset replaces everything.
    let (status, page) = post(
        &office,
        &client,
        "/admin/policy",
        &[
            ("csrf", csrf.as_str()),
            ("apply_preset", "academy_safeguarding_lead"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        stored_policy(&office),
        Preset::AcademySafeguardingLead.policy()
    );
    let (status, _) = post(
        &office,
        &client,
        "/admin/policy",
        &[("csrf", csrf.as_str()), ("apply_preset", "no_such_preset")],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        stored_policy(&office),
        Preset::AcademySafeguardingLead.policy()
    );
}

#[tokio::test]
async fn staff_without_an_enhanced_dbs_check_are_shown_as_unassignable_and_refused() {
    let office = office_with_admin().await;
    let (client, csrf) = signed_in(&office, "ada").await;
    let today = Utc::now().date_naive().to_string();

    // A DBS date in the future and a short phone number are refused, each beside its field.
    let (status, page) = post(
        &office,
        &client,
        "/admin/staff",
        &[
            ("csrf", csrf.as_str()),
            ("id", "pat"),
            ("name", "Pat Basic"),
            ("phone", "0770"),
            ("role", "visiting_staff"),
            ("dbs_level", "enhanced"),
            ("dbs_date", "2999-01-01"),
        ],
    )
    .await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("id=\"error-phone\""), "{page}");
    assert!(page.contains("is in the future"), "{page}");
    assert!(office
        .store
        .school_staff_member(&school(), &staff("pat"))
        .unwrap()
        .is_none());

    let (status, page) = post(
        &office,
        &client,
        "/admin/staff",
        &[
            ("csrf", csrf.as_str()),
            ("id", "pat"),
            ("name", "Pat Basic"),
            ("phone", "07700 900011"),
            ("role", "visiting_staff"),
            ("dbs_level", "basic"),
            ("dbs_date", today.as_str()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("cannot be assigned to visits until an enhanced DBS check"),
        "{page}"
    );
    let (_, page) = get(&office, &client, "/admin/staff").await;
    let row = &page[page.find("id=\"staff-pat\"").expect("Pat listed")..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains("Cannot be assigned to visits"), "{row}");
    assert!(row.contains("07700 900011"), "{row}");
    let sam = &page[page.find("id=\"staff-sam\"").unwrap()..];
    assert!(sam[..sam.find("</tr>").unwrap()].contains("Can be assigned"));

    // The edit form is filled with Pat's record, the sign-in name fixed; an unknown id is "not found".
    let (status, page) = get(&office, &client, "/admin/staff?edit=pat").await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("name=\"id\" value=\"pat\" readonly"),
        "{page}"
    );
    assert!(page.contains("value=\"basic\" selected"), "{page}");
    let (status, _) = get(&office, &client, "/admin/staff?edit=nobody").await;
    assert_eq!(status, 404);

    // The store refuses to put Pat on a visit.
    let (mut visit, _) = office.store.visit(&visit("visit-ava")).unwrap().unwrap();
    visit.id = "visit-pat".parse().unwrap();
    visit.staff[1] = VisitStaff {
        id: staff("pat"),
        name: "Pat Basic".into(),
        phone: "07700 900011".parse().unwrap(),
    };
    let refused = office
        .store
        .add_visit(&visit)
        .expect_err("Pat cannot be assigned");
    assert!(
        refused
            .to_string()
            .contains("Pat Basic has no appropriate DBS check"),
        "{refused}"
    );

    // Editing Pat's record to an enhanced check makes the same visit possible.
    let (status, page) = post(
        &office,
        &client,
        "/admin/staff",
        &[
            ("csrf", csrf.as_str()),
            ("editing", "yes"),
            ("id", "pat"),
            ("name", "Pat Basic"),
            ("phone", "07700 900011"),
            ("role", "visiting_staff"),
            ("dbs_level", "enhanced"),
            ("dbs_date", today.as_str()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    office
        .store
        .add_visit(&visit)
        .expect("now Pat can be assigned");

    // Adding someone under an id already in use is refused rather than overwriting them.
    let (status, page) = post(
        &office,
        &client,
        "/admin/staff",
        &[
            ("csrf", csrf.as_str()),
            ("id", "sam"),
            ("name", "Not Sam"),
            ("phone", "07700 900012"),
            ("role", "office"),
        ],
    )
    .await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("already someone else"), "{page}");
    let sam = office
        .store
        .school_staff_member(&school(), &staff("sam"))
        .unwrap()
        .unwrap();
    assert_eq!(sam.name, "Sam Taylor");
}

/// The shared table (`doorstep_core::test_support`), which the phone's dialler is tested against too: the
/// staff form keeps exactly the numbers the dialler rings, and the pupil import exactly the postcodes of the
/// one rule, as the rule writes them.
#[tokio::test]
async fn the_staff_form_and_the_pupil_import_follow_the_shared_phone_and_postcode_table() {
    use doorstep_core::test_support::{PHONE_NUMBERS, POSTCODES};

    let office = office_with_admin().await;
    let (client, csrf) = signed_in(&office, "ada").await;
    for (n, &(text, dialable)) in PHONE_NUMBERS.iter().enumerate() {
        let id = format!("phone-{n}");
        let (status, page) = post(
            &office,
            &client,
            "/admin/staff",
            &[
                ("csrf", csrf.as_str()),
                ("id", id.as_str()),
                ("name", "Pat Phone"),
                ("phone", text),
                ("role", "office"),
            ],
        )
        .await;
        let stored = office
            .store
            .school_staff_member(&school(), &staff(&id))
            .unwrap();
        match dialable {
            Some(dialable) => {
                assert_eq!(status, 200, "{text:?}: {page}");
                let stored = stored.unwrap_or_else(|| panic!("{text:?} saved"));
                assert_eq!(stored.phone.as_str(), text.trim(), "kept as typed");
                assert_eq!(stored.phone.dialable(), dialable);
            }
            None => {
                assert_eq!(status, 400, "{text:?}: {page}");
                assert!(page.contains("id=\"error-phone\""), "{text:?}: {page}");
                assert!(stored.is_none(), "{text:?} refused and nothing saved");
            }
        }
    }

    // One pupil per postcode, in one file: each row is kept or refused by the rule.
    let mut csv = format!("{HEADER}\n");
    for (n, (text, _)) in POSTCODES.iter().enumerate() {
        csv.push_str(&format!(
            "p-{n},Pupil {n},2016-01-02,1 Elm Row,,Oakfield,{text},,\n"
        ));
    }
    let (status, page) = post(
        &office,
        &client,
        "/admin/import/pupils",
        &[("csrf", csrf.as_str()), ("csv", csv.as_str())],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    for (n, &(text, kept)) in POSTCODES.iter().enumerate() {
        let stored = office
            .sql(&format!("SELECT postcode FROM pupils WHERE id = 'p-{n}'"))
            .into_iter()
            .next()
            .and_then(|row| row[0].clone());
        assert_eq!(stored.as_deref(), kept, "{text:?}");
    }
}

/// Numbers kept before the one rule existed (brackets and dashes) are still read: the visit page shows
/// them as kept and its links ring their digits, where it used to put the brackets and dashes in the link.
#[tokio::test]
async fn a_number_kept_before_the_rule_still_shows_and_its_link_rings_its_digits() {
    let office = office_with_sign_ins(&["office", "head"]).await;
    // Each store's own way of changing one field of a JSON column.
    if office.database_url.is_some() {
        office.sql(
            r#"UPDATE visits SET body = jsonb_set(body::jsonb, '{staff,0,phone}', '"(07700) 900-123"')::text
               WHERE id = 'visit-ava'"#,
        );
        office.sql(
            r#"UPDATE staff SET body = jsonb_set(body::jsonb, '{phone}', '"(01632) 960-999"')::text
               WHERE id = 'head'"#,
        );
    } else {
        office.sql(
            "UPDATE visits SET body = json_set(body, '$.staff[0].phone', '(07700) 900-123')
             WHERE id = 'visit-ava'",
        );
        office.sql(
            "UPDATE staff SET body = json_set(body, '$.phone', '(01632) 960-999') WHERE id = 'head'",
        );
    }
    let (client, _) = signed_in(&office, "office").await;
    let (status, page) = get(&office, &client, "/visits/visit-ava").await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains(r#"<a class="phone" href="tel:07700900123">(07700) 900-123</a>"#),
        "{page}"
    );
    assert!(
        page.contains(r#"<a class="phone" href="tel:01632960999">(01632) 960-999</a>"#),
        "{page}"
    );
}

/// An admin puts the school on another clock from the policy page: a name that is not a time zone is
/// refused beside the field and changes nothing; a real one is kept, written in the audit log, and the
/// board's times follow it.
#[tokio::test]
async fn an_admin_sets_the_schools_clock_on_the_policy_page_and_a_wrong_name_changes_nothing() {
    let office = office_with_admin().await;
    let (client, csrf) = signed_in(&office, "ada").await;
    let (status, page) = get(&office, &client, "/admin/policy").await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains(r#"<input id="time_zone" name="time_zone" value="Europe/London">"#),
        "{page}"
    );

    let (status, page) = post(
        &office,
        &client,
        "/admin/time-zone",
        &[("csrf", csrf.as_str()), ("time_zone", "Mars/Olympus")],
    )
    .await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains(r#"id="error-time_zone""#), "{page}");
    assert_eq!(
        office.store.school(&school()).unwrap().time_zone.name(),
        "Europe/London",
        "nothing changed"
    );

    let (status, page) = post(
        &office,
        &client,
        "/admin/time-zone",
        &[("csrf", csrf.as_str()), ("time_zone", " Pacific/Auckland ")],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("The school's clock is now Pacific/Auckland."),
        "{page}"
    );
    assert!(
        page.contains(r#"<input id="time_zone" name="time_zone" value="Pacific/Auckland">"#),
        "{page}"
    );
    assert_eq!(
        office.store.school(&school()).unwrap().time_zone.name(),
        "Pacific/Auckland"
    );
    let (_, board) = get(&office, &client, "/").await;
    assert!(
        board.contains("Times are the school's local time (Pacific/Auckland"),
        "{board}"
    );
    let (_, audit) = get(&office, &client, "/audit").await;
    assert!(
        audit.contains("the school's clock set to Pacific/Auckland (was Europe/London)"),
        "{audit}"
    );
}
