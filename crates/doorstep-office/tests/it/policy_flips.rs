//! Every policy setting does something: each field of `Policy` is flipped and the difference seen, against
//! the real office where a person would see it (requests, authorising, attendance, records, the admin
//! page) and through the shared schedule on states the real store built for the timings; who is told of
//! concerns, the further contacts and the missing write-up are flipped in `reach.rs`. The first test is the
//! table: every field names the test that flips it, and a field added without one fails it.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{Datelike, Local, TimeDelta, Utc, Weekday};
use doorstep_core::domain::{Hazard, Role, VisitPurpose};
use doorstep_core::ids::SchoolId;
use doorstep_core::lifecycle::VisitEvent;
use doorstep_core::policy::{EveningVisits, Policy, PolicyMinutes, Preset};
use doorstep_core::schedule::{deadlines, next_escalation, AlarmLevel, Expecting};

use crate::helpers::*;
use crate::requests::{next_weekday_at, request, valid_request, visit_count, with};

/// Where each setting is shown to change behaviour: the crate, and a test as `file::function` under its
/// `tests/it/`.
fn table() -> BTreeMap<&'static str, (&'static str, &'static str)> {
    let office = "crates/doorstep-office";
    let core = "crates/doorstep-core";
    let phone = ".";
    BTreeMap::from([
        ("preset", (office, "policy_flips::preset_sets_what_the_admin_page_lists_as_changed")),
        ("authoriser", (office, "policy_flips::authoriser_decides_who_may_authorise")),
        ("lone_visit_approver", (office, "policy_flips::lone_visit_approver_decides_who_may_approve_a_lone_visit")),
        ("staff_per_visit", (office, "policy_flips::staff_per_visit_shapes_the_request_form")),
        ("pair_waits_outside_until_all_arrived", (core, "lifecycle::where_the_policy_lets_a_pair_go_in_separately_the_first_goes_in_and_the_second_joins")),
        ("first_check_in_after_start", (office, "policy_flips::the_timings_move_the_deadlines_the_office_holds")),
        ("check_in_interval", (office, "policy_flips::the_timings_move_the_deadlines_the_office_holds")),
        ("max_wait_for_family", (office, "policy_flips::the_timings_move_the_deadlines_the_office_holds")),
        ("overdue_grace", (office, "policy_flips::the_timings_move_the_deadlines_the_office_holds")),
        ("escalate_to_authoriser_after", (office, "policy_flips::the_timings_move_the_deadlines_the_office_holds")),
        ("school_hours", (office, "policy_flips::school_hours_and_the_responsible_contact_rule")),
        ("out_of_hours_needs_responsible_contact", (office, "policy_flips::school_hours_and_the_responsible_contact_rule")),
        ("evening_starts", (office, "policy_flips::evening_starts_and_evening_visits_decide_when_the_authoriser_must_override")),
        ("evening_visits", (office, "policy_flips::evening_starts_and_evening_visits_decide_when_the_authoriser_must_override")),
        ("code_phrases", (office, "code_phrases::without_its_own_code_phrases_a_school_authorises_nothing_and_its_admin_is_asked_to_set_them")),
        ("absence_visit_day", (office, "policy_flips::absence_visit_days_decide_who_the_attendance_page_lists")),
        ("absence_visit_day_with_concern", (office, "policy_flips::absence_visit_days_decide_who_the_attendance_page_lists")),
        ("dbs_check_required", (office, "policy_flips::dbs_check_required_refuses_staff_without_one")),
        ("animals_secured_or_cancel", (core, "lifecycle::the_pets_line_of_the_checklist_follows_the_policy")),
        ("purposes", (office, "policy_flips::purposes_are_what_a_request_may_choose")),
        ("standard_hazards", (office, "policy_flips::standard_hazards_are_the_rows_every_risk_assessment_answers")),
        ("record_system", (office, "policy_flips::record_system_names_the_record_system_on_pages_and_exports")),
        ("safeguarding_concerns_to", (office, "policy_flips::safeguarding_concerns_to_may_read_what_visits_found")),
        ("write_up_due_after_leaving", (office, "reach::a_write_up_missing_past_the_policys_time_after_everyone_left_is_flagged_with_since_when")),
        ("escalate_further_after", (office, "reach::the_deputy_hears_only_when_the_authorisers_level_has_not_acknowledged_in_time")),
        ("delete_briefings_after_days_offline", (phone, "enrolment::a_phone_out_of_touch_for_the_policys_days_deletes_its_briefings_by_itself")),
    ])
}

#[test]
fn every_policy_setting_names_the_test_that_flips_it() {
    let fields: Vec<String> = match serde_json::to_value(Preset::PrimaryHeadteacher.policy()) {
        Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
        other => panic!("a policy is a JSON object: {other:?}"),
    };
    let table = table();
    let named: Vec<String> = table.keys().map(|k| k.to_string()).collect();
    let mut sorted = fields.clone();
    sorted.sort();
    assert_eq!(
        sorted, named,
        "every field of Policy, and only those, is in the table"
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for (field, (krate, path)) in &table {
        let (file, function) = path.split_once("::").unwrap();
        let source = root.join(krate).join("tests/it").join(format!("{file}.rs"));
        let text = std::fs::read_to_string(&source)
            .unwrap_or_else(|e| panic!("{field}: {}: {e}", source.display()));
        assert!(
            text.contains(&format!("fn {function}(")),
            "{field}: no test {function} in {}",
            source.display()
        );
    }
}

fn school() -> SchoolId {
    "demo-primary".parse().unwrap()
}

fn policy_of(office: &TestOffice) -> Policy {
    office.store.policy(&school()).unwrap()
}

fn set_policy(office: &TestOffice, change: impl FnOnce(&mut Policy)) {
    let mut policy = policy_of(office);
    change(&mut policy);
    office.store.set_policy(&school(), &policy).unwrap();
}

fn minutes(m: u32) -> PolicyMinutes {
    PolicyMinutes::new(m).unwrap()
}

#[tokio::test]
async fn preset_sets_what_the_admin_page_lists_as_changed() {
    let office = office_with_sign_ins(&[]).await;
    office.add_staff("ada", "Ada Admin", &[Role::Admin]);
    let (ada, _) = signed_in_as(&office, "ada").await;
    // The demo school: the primary preset with its own code phrases.
    let (_, page) = get(&office, &ada, "/admin/policy").await;
    let listed = section(&page, "from-preset");
    assert!(listed.contains("The code phrases"), "{listed}");
    assert!(!listed.contains("Who authorises every visit"), "{listed}");
    // The same settings, said to start from the academy's preset: now they differ from it.
    set_policy(&office, |p| {
        p.preset = Some(Preset::AcademySafeguardingLead)
    });
    let (_, page) = get(&office, &ada, "/admin/policy").await;
    let listed = section(&page, "from-preset");
    assert!(
        listed.contains(
            "Who authorises every visit: headteacher (the preset says safeguarding lead)"
        ),
        "{listed}"
    );
    assert!(listed.contains("Evening visits"), "{listed}");
    // No preset: nothing to compare with.
    set_policy(&office, |p| p.preset = None);
    let (_, page) = get(&office, &ada, "/admin/policy").await;
    assert!(!page.contains("id=\"from-preset\""));
    assert!(page.contains("the school's own settings"));
}

/// The text of the element with `id`, up to the end of its section.
fn section(page: &str, id: &str) -> String {
    let start = page
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("#{id} in {page}"));
    let rest = &page[start..];
    rest[..rest.find("</section>").unwrap_or(rest.len())].to_owned()
}

/// A session for `who` (any roles) made through the sign-in form where the board takes them, else in
/// the store, with its CSRF token.
async fn signed_in_as(office: &TestOffice, who: &str) -> (reqwest::Client, String) {
    office.allow_sign_in(who);
    signed_in(office, who).await
}

#[tokio::test]
async fn authoriser_decides_who_may_authorise() {
    let office = office_with_sign_ins(&[]).await;
    office.add_staff("hana", "Hana Head", &[Role::Headteacher]);
    office.add_staff("dee", "Dee Lead", &[Role::Dsl]);
    let (hana, _) = signed_in_as(&office, "hana").await;
    let (dee, _) = signed_in_as(&office, "dee").await;
    let page = "/visits/visit-mia/authorise";
    assert_eq!(get(&office, &hana, page).await.0, 200);
    assert_eq!(get(&office, &dee, page).await.0, 403);
    set_policy(&office, |p| p.authoriser = Role::Dsl);
    assert_eq!(get(&office, &hana, page).await.0, 403);
    let (status, body) = get(&office, &dee, page).await;
    assert_eq!(status, 200, "{body}");
}

/// A lone visit requested by the office for Sam, with its own assessment; its id.
async fn lone_visit(office: &TestOffice) -> String {
    office.allow_sign_in("office");
    let (olu, csrf) = signed_in(office, "office").await;
    let form = with(
        valid_request(&csrf),
        &[
            ("staff_2", ""),
            ("lone", "on"),
            (
                "lone_assessment",
                "Known family; daytime drop-off at the door",
            ),
        ],
    );
    request(office, &olu, &form).await
}

#[tokio::test]
async fn lone_visit_approver_decides_who_may_approve_a_lone_visit() {
    let office = office_with_sign_ins(&[]).await;
    office.add_staff("hana", "Hana Head", &[Role::Headteacher]);
    let id = lone_visit(&office).await;
    let (hana, csrf) = signed_in_as(&office, "hana").await;
    let path = format!("/visits/{id}/authorise");
    let form = [("csrf", csrf.as_str()), ("lone_visit_approved", "on")];
    set_policy(&office, |p| p.lone_visit_approver = Role::SafeguardingLead);
    let (status, page) = post(&office, &hana, &path, &form).await;
    assert_eq!(status, 403, "{page}");
    assert!(
        page.contains("Only the safeguarding lead may approve a lone visit"),
        "{page}"
    );
    assert!(office
        .store
        .events_for_visit(&visit(&id))
        .unwrap()
        .is_empty());
    set_policy(&office, |p| p.lone_visit_approver = Role::Headteacher);
    assert_eq!(post(&office, &hana, &path, &form).await.0, 303);
    let (_, state) = office.store.visit(&visit(&id)).unwrap().unwrap();
    assert!(state.authorised.unwrap().lone_visit_approved);
}

#[tokio::test]
async fn staff_per_visit_shapes_the_request_form() {
    let office = crate::requests::office().await;
    let (olu, csrf) = signed_in(&office, "office").await;
    let (_, form) = get(&office, &olu, "/visits/new").await;
    assert!(form.contains("name=\"staff_2\"") && !form.contains("name=\"staff_3\""));

    set_policy(&office, |p| p.staff_per_visit = 3);
    let (_, form) = get(&office, &olu, "/visits/new").await;
    assert!(
        form.contains("name=\"staff_3\"") && !form.contains("name=\"staff_4\""),
        "{form}"
    );
    assert!(form.contains("Visits are made by 3 staff"), "{form}");
    assert!(form.contains("Fewer than 3 staff"), "{form}");
    let before = visit_count(&office);
    let (status, page) = post(&office, &olu, "/visits/new", &valid_request(&csrf)).await;
    assert_eq!(status, 400, "a pair is not enough: {page}");
    assert!(page.contains("choose 3 members of staff"), "{page}");
    assert_eq!(visit_count(&office), before);
    let three = with(valid_request(&csrf), &[("staff_3", "jo")]);
    let id = request(&office, &olu, &three).await;
    let (stored, _) = office.store.visit(&visit(&id)).unwrap().unwrap();
    assert_eq!(stored.staff.len(), 3);

    // One per visit: one choice and no lone-visit tick; a visit by one person is the policy's own.
    set_policy(&office, |p| p.staff_per_visit = 1);
    let (_, form) = get(&office, &olu, "/visits/new").await;
    assert!(
        !form.contains("name=\"staff_2\"") && !form.contains("name=\"lone\""),
        "{form}"
    );
    let one = with(valid_request(&csrf), &[("staff_2", "")]);
    let id = request(&office, &olu, &one).await;
    let (head, head_csrf) = signed_in(&office, "head").await;
    let (_, page) = get(&office, &head, &format!("/visits/{id}/authorise")).await;
    assert!(
        !page.contains("id=\"lone_visit_approved\""),
        "no lone approval needed: {page}"
    );
    let (status, _) = post(
        &office,
        &head,
        &format!("/visits/{id}/authorise"),
        &[("csrf", head_csrf.as_str())],
    )
    .await;
    assert_eq!(status, 303);
}

#[tokio::test]
async fn school_hours_and_the_responsible_contact_rule() {
    let office = crate::requests::office().await;
    let (olu, csrf) = signed_in(&office, "office").await;
    let five = with(
        valid_request(&csrf),
        &[("date_time", &next_weekday_at(17, 0))],
    );
    let (status, page) = post(&office, &olu, "/visits/new", &five).await;
    assert_eq!(status, 400);
    assert!(page.contains("name the responsible contact"), "{page}");
    // School runs until six: five o'clock is in school hours.
    set_policy(&office, |p| {
        p.school_hours.end = chrono::NaiveTime::from_hms_opt(18, 0, 0).unwrap();
        p.evening_starts = chrono::NaiveTime::from_hms_opt(18, 0, 0).unwrap();
    });
    let id = request(&office, &olu, &five).await;
    let details = office.store.request_details(&visit(&id)).unwrap().unwrap();
    assert!(!details.timing.out_of_hours);
    // Back to half past three, but no contact needed out of hours.
    set_policy(&office, |p| {
        p.school_hours.end = chrono::NaiveTime::from_hms_opt(15, 30, 0).unwrap();
        p.out_of_hours_needs_responsible_contact = false;
    });
    let id = request(&office, &olu, &five).await;
    let details = office.store.request_details(&visit(&id)).unwrap().unwrap();
    assert!(details.timing.out_of_hours && details.responsible_contact.is_none());
}

#[tokio::test]
async fn evening_starts_and_evening_visits_decide_when_the_authoriser_must_override() {
    let office = crate::requests::office().await;
    set_policy(&office, |p| {
        p.evening_visits = EveningVisits::AdvisedAgainst
    });
    let (olu, csrf) = signed_in(&office, "office").await;
    let half_six = with(
        valid_request(&csrf),
        &[
            ("date_time", &next_weekday_at(18, 30)),
            ("length_minutes", "30"),
            ("contact_name", "Priya Head"),
            ("contact_phone", "07700 900001"),
        ],
    );
    let (head, head_csrf) = signed_in(&office, "head").await;
    let authorise = |id: String| {
        let (office, head, csrf) = (&office, &head, head_csrf.clone());
        async move {
            post(
                office,
                head,
                &format!("/visits/{id}/authorise"),
                &[("csrf", csrf.as_str())],
            )
            .await
        }
    };
    let id = request(&office, &olu, &half_six).await;
    let (status, page) = authorise(id).await;
    assert_eq!(status, 400);
    assert!(
        page.contains("give your reason for overriding it"),
        "{page}"
    );
    // Evening from seven: half past six is not evening.
    set_policy(&office, |p| {
        p.evening_starts = chrono::NaiveTime::from_hms_opt(19, 0, 0).unwrap()
    });
    let id = request(&office, &olu, &half_six).await;
    assert_eq!(authorise(id).await.0, 303);
    // Evening from six again, but evening visits treated like any out of hours.
    set_policy(&office, |p| {
        p.evening_starts = chrono::NaiveTime::from_hms_opt(18, 0, 0).unwrap();
        p.evening_visits = EveningVisits::AsOutOfHours;
    });
    let id = request(&office, &olu, &half_six).await;
    assert_eq!(authorise(id).await.0, 303);
}

/// The weekdays up to today, newest first.
fn weekdays_up_to_today(count: usize) -> Vec<chrono::NaiveDate> {
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
async fn absence_visit_days_decide_who_the_attendance_page_lists() {
    let office = crate::requests::office().await;
    {
        // Ava: two school days unexplained, no contact. Leo: one day, and his family were reached.
        for date in weekdays_up_to_today(2) {
            office.sql(&format!(
                "INSERT INTO absences (pupil_id, date, reason_code, contact_made)
                 VALUES ('pupil-ava', '{}', 'N', FALSE)",
                date.format("%Y-%m-%d")
            ));
        }
        office.sql(&format!(
            "INSERT INTO absences (pupil_id, date, reason_code, contact_made)
             VALUES ('pupil-leo', '{}', 'N', TRUE)",
            weekdays_up_to_today(1)[0].format("%Y-%m-%d")
        ));
    }
    let (olu, csrf) = signed_in(&office, "office").await;
    let listed = |page: &str, pupil: &str| page.contains(&format!("id=\"due-{pupil}\""));
    let (_, page) = get(&office, &olu, "/attendance").await;
    assert!(!listed(&page, "pupil-ava"), "two days of three");
    set_policy(&office, |p| p.absence_visit_day = 2);
    let (_, page) = get(&office, &olu, "/attendance").await;
    assert!(listed(&page, "pupil-ava"), "{page}");

    // Reception notes a concern about Leo on the page: due from day 1, contact made or not.
    assert!(!listed(&page, "pupil-leo"));
    let (status, _) = post(
        &office,
        &olu,
        "/attendance/concerns",
        &[
            ("csrf", csrf.as_str()),
            ("pupil", "pupil-leo"),
            ("concern", "on"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    let (_, page) = get(&office, &olu, "/attendance").await;
    assert!(listed(&page, "pupil-leo"), "{page}");
    assert!(page.contains("id=\"concern-pupil-leo\""), "{page}");
    let entries = office.store.audit_entries(&school(), 5).unwrap();
    assert_eq!(entries[0].actor, "office");
    assert_eq!(entries[0].record, "pupil pupil-leo");
    // With the concern day at 2, one day is not yet enough.
    set_policy(&office, |p| p.absence_visit_day_with_concern = 2);
    let (_, page) = get(&office, &olu, "/attendance").await;
    assert!(!listed(&page, "pupil-leo"), "{page}");
    // Taking the concern off; a pupil of another school (or none) is refused.
    let (status, _) = post(
        &office,
        &olu,
        "/attendance/concerns",
        &[
            ("csrf", csrf.as_str()),
            ("pupil", "pupil-leo"),
            ("concern", "off"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    let (_, page) = get(&office, &olu, "/attendance").await;
    assert!(!page.contains("id=\"concern-pupil-leo\""));
    let (status, page) = post(
        &office,
        &olu,
        "/attendance/concerns",
        &[
            ("csrf", csrf.as_str()),
            ("pupil", "pupil-nobody"),
            ("concern", "on"),
        ],
    )
    .await;
    assert_eq!(status, 400, "{page}");
}

#[tokio::test]
async fn dbs_check_required_refuses_staff_without_one() {
    let office = crate::requests::office().await;
    let (olu, csrf) = signed_in(&office, "office").await;
    let nia = with(valid_request(&csrf), &[("staff_2", "nia")]);
    let (status, page) = post(&office, &olu, "/visits/new", &nia).await;
    assert_eq!(status, 400);
    assert!(page.contains("has no appropriate DBS check"), "{page}");
    set_policy(&office, |p| p.dbs_check_required = false);
    let id = request(&office, &olu, &nia).await;
    let (stored, _) = office.store.visit(&visit(&id)).unwrap().unwrap();
    assert!(stored.staff_ids().contains(&staff("nia")));
}

#[tokio::test]
async fn purposes_are_what_a_request_may_choose() {
    let office = crate::requests::office().await;
    let (olu, csrf) = signed_in(&office, "office").await;
    let refusal = with(valid_request(&csrf), &[("purpose", "school_refusal")]);
    let (_, form) = get(&office, &olu, "/visits/new").await;
    assert!(!form.contains("value=\"school_refusal\""));
    assert_eq!(post(&office, &olu, "/visits/new", &refusal).await.0, 400);
    set_policy(&office, |p| p.purposes.push(VisitPurpose::SchoolRefusal));
    let (_, form) = get(&office, &olu, "/visits/new").await;
    assert!(form.contains("value=\"school_refusal\""));
    let id = request(&office, &olu, &refusal).await;
    let (stored, _) = office.store.visit(&visit(&id)).unwrap().unwrap();
    assert_eq!(stored.purpose, VisitPurpose::SchoolRefusal);
}

#[tokio::test]
async fn standard_hazards_are_the_rows_every_risk_assessment_answers() {
    let office = crate::requests::office().await;
    let (olu, csrf) = signed_in(&office, "office").await;
    let without_driving: Vec<(String, String)> = valid_request(&csrf)
        .into_iter()
        .filter(|(k, _)| k != "controls_driving")
        .collect();
    let (status, page) = post(&office, &olu, "/visits/new", &without_driving).await;
    assert_eq!(status, 400);
    assert!(page.contains("“Driving”"), "{page}");
    set_policy(&office, |p| {
        p.standard_hazards.retain(|h| *h != Hazard::Driving)
    });
    let (_, form) = get(&office, &olu, "/visits/new").await;
    assert!(!form.contains("name=\"controls_driving\""));
    let id = request(&office, &olu, &without_driving).await;
    let (stored, _) = office.store.visit(&visit(&id)).unwrap().unwrap();
    let hazards: Vec<Option<Hazard>> = stored
        .briefing
        .risk_assessment()
        .risks
        .iter()
        .map(|r| r.hazard)
        .collect();
    assert!(!hazards.contains(&Some(Hazard::Driving)), "{hazards:?}");
    assert!(hazards.contains(&Some(Hazard::DogsAndOtherAnimals)));
}

#[tokio::test]
async fn record_system_names_the_record_system_on_pages_and_exports() {
    let office = crate::requests::office().await;
    let (head, _) = signed_in(&office, "head").await;
    let (_, page) = get(&office, &head, "/visits/visit-ava").await;
    assert!(page.contains("Write-up for CPOMS"), "{page}");
    set_policy(&office, |p| p.record_system = "My Concern".into());
    let (_, page) = get(&office, &head, "/visits/visit-ava").await;
    assert!(
        page.contains("Write-up for My Concern") && !page.contains("CPOMS"),
        "{page}"
    );
    let (_, text) = get(&office, &head, "/visits/visit-ava/cpoms.txt").await;
    assert!(
        text.starts_with("Home visit record for My Concern"),
        "{text}"
    );
    let (_, timeline) = get(&office, &head, "/visits/visit-ava/timeline").await;
    assert!(
        timeline.contains("Write-up for My Concern (text)"),
        "{timeline}"
    );
    let (_, monthly) = get(&office, &head, "/reports/monthly").await;
    assert!(
        monthly.contains("Write-ups for My Concern as CSV"),
        "{monthly}"
    );
    let pdf = head
        .get(format!("{}/visits/visit-ava/cpoms.pdf", office.url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        pdf.headers()["content-disposition"],
        "attachment; filename=\"visit-ava-my-concern.pdf\""
    );
    let today = Utc::now().date_naive();
    let csv = head
        .get(format!(
            "{}/reports/write-ups.csv?from={today}&to={today}",
            office.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        csv.headers()["content-disposition"],
        format!("attachment; filename=\"my-concern-write-ups-{today}-to-{today}.csv\"").as_str()
    );
}

#[tokio::test]
async fn safeguarding_concerns_to_may_read_what_visits_found() {
    let office = crate::requests::office().await;
    let (olu, _) = signed_in(&office, "office").await;
    assert_eq!(
        get(&office, &olu, "/visits/visit-ava/cpoms.txt").await.0,
        403
    );
    // A school whose concerns go to its office staff: they must be able to read them.
    set_policy(&office, |p| p.safeguarding_concerns_to = Role::Office);
    assert_eq!(
        get(&office, &olu, "/visits/visit-ava/cpoms.txt").await.0,
        200
    );
}

#[tokio::test]
async fn the_timings_move_the_deadlines_the_office_holds() {
    let office = office_with_sign_ins(&[]).await;
    let base = policy_of(&office);
    let (leo, leo_state) = office.store.visit(&visit("visit-leo")).unwrap().unwrap();
    // visit-leo: authorised, nobody set off. The word that they set off is overdue at the agreed time
    // plus the first check-in.
    let set_off = |policy: &Policy| {
        deadlines(&leo, &leo_state, policy)
            .into_iter()
            .find(|d| d.expecting == Expecting::SetOff)
            .unwrap()
            .alarm_at
    };
    let later = Policy {
        first_check_in_after_start: minutes(25),
        ..base.clone()
    };
    assert_eq!(set_off(&base), leo.agreed_time + TimeDelta::minutes(10));
    assert_eq!(set_off(&later), leo.agreed_time + TimeDelta::minutes(25));

    // visit-ava, through the real sync: Sam and Alex set off; Sam is outside waiting; then they go in
    // and check in. Each stage's deadline moves with its setting.
    let (sam, alex) = (office.phones.me.clone(), office.phones.partner.clone());
    let sync = |phone: &doorstep_office::demo::PhoneConfig,
                events: Vec<doorstep_core::event::EventEnvelope>| {
        let (office, token) = (&office, phone.device_token.clone());
        async move {
            let (status, body) = office.post_sync(&token, &batch(&events)).await;
            assert_eq!(status, 200, "{body}");
        }
    };
    sync(&sam, vec![envelope(&sam, 1, "visit-ava", departed("sam"))]).await;
    sync(
        &alex,
        vec![envelope(&alex, 1, "visit-ava", departed("alex"))],
    )
    .await;
    let ava = || office.store.visit(&visit("visit-ava")).unwrap().unwrap();
    let (visit_ava, state) = ava();
    let arrival = |policy: &Policy| {
        deadlines(&visit_ava, &state, policy)
            .into_iter()
            .find(|d| d.expecting == Expecting::Arrival)
            .unwrap()
    };
    let graceful = Policy {
        overdue_grace: minutes(12),
        ..base.clone()
    };
    let due = arrival(&base).due;
    assert_eq!(arrival(&base).alarm_at, due + TimeDelta::minutes(5));
    assert_eq!(arrival(&graceful).alarm_at, due + TimeDelta::minutes(12));

    sync(
        &sam,
        vec![envelope(
            &sam,
            2,
            "visit-ava",
            VisitEvent::ArrivedOutside {
                staff: staff("sam"),
            },
        )],
    )
    .await;
    let (visit_ava, state) = ava();
    let at_the_door = |policy: &Policy| {
        deadlines(&visit_ava, &state, policy)
            .into_iter()
            .find(|d| d.expecting == Expecting::AnswerAtTheDoor)
            .unwrap()
            .due
    };
    let patient = Policy {
        max_wait_for_family: minutes(30),
        ..base.clone()
    };
    assert_eq!(
        at_the_door(&patient) - at_the_door(&base),
        TimeDelta::minutes(10)
    );

    sync(
        &alex,
        vec![envelope(
            &alex,
            2,
            "visit-ava",
            VisitEvent::ArrivedOutside {
                staff: staff("alex"),
            },
        )],
    )
    .await;
    sync(
        &sam,
        vec![
            envelope(
                &sam,
                3,
                "visit-ava",
                VisitEvent::VisitStarted {
                    by: staff("sam"),
                    staff: vec![staff("sam"), staff("alex")],
                },
            ),
            envelope(
                &sam,
                4,
                "visit-ava",
                VisitEvent::CheckedIn {
                    staff: staff("sam"),
                },
            ),
        ],
    )
    .await;
    let (mut visit_ava, state) = ava();
    let last = state.last_check_in.expect("checked in");
    // Agreed to last ten hours, so the next contact inside is a check-in, not "I've left".
    visit_ava.expected_length = minutes(600);
    let check_in = |policy: &Policy| {
        let inside = deadlines(&visit_ava, &state, policy)
            .into_iter()
            .find(|d| d.staff.is_none())
            .expect("a deadline for those inside");
        assert_eq!(inside.expecting, Expecting::CheckIn, "{inside:?}");
        inside.due
    };
    // The first check-in after the start is long past by the next one; then every interval.
    let hourly = Policy {
        first_check_in_after_start: minutes(1),
        ..base.clone()
    };
    let often = Policy {
        check_in_interval: minutes(20),
        ..hourly.clone()
    };
    assert_eq!(check_in(&hourly), last + TimeDelta::minutes(60));
    assert_eq!(check_in(&often), last + TimeDelta::minutes(20));

    // An unacknowledged alarm goes to the authoriser after the policy's interval.
    let raised = Utc::now();
    let slow = Policy {
        escalate_to_authoriser_after: minutes(15),
        ..base.clone()
    };
    assert_eq!(
        next_escalation(AlarmLevel::Board, raised, raised, &base),
        raised + TimeDelta::minutes(5)
    );
    assert_eq!(
        next_escalation(AlarmLevel::Board, raised, raised, &slow),
        raised + TimeDelta::minutes(15)
    );
}
