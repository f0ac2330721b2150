//! Need to know, against the real office: reception sees the board (who, where, when, state) but none of
//! what a visit found (write-ups, safeguarding notes, incidents, cancellation notes, the pupil's needs, the
//! family's circumstances, exports, reports); the designated safeguarding lead signs in and reads them, as
//! do the authoriser and admins; each opening is an audit log entry with who and when; the audit log's page
//! is theirs and says when its chain is broken.

use chrono::Utc;
use doorstep_core::domain::Role;
use doorstep_core::lifecycle::{CancelReason, VisitEvent, WriteUp};
use doorstep_office::audit::Action;

use crate::helpers::*;

const FELT_UNSAFE_NOTE: &str = "Shouting from inside; we did not knock";
const INCIDENT: &str = "A man at the window swore at us as we left";
const DISCUSSED: &str = "Spoke to the neighbour about the family's move";

/// The demo office with reception (Olu), the headteacher (the authoriser), Dee (the DSL) and Ada (an
/// admin) able to sign in, and visit-ava cancelled as unsafe and written up with a concern and an incident.
async fn office() -> TestOffice {
    let office = office_with_sign_ins(&["office", "head"]).await;
    office.add_staff("dee", "Dee Lead", &[Role::Dsl]);
    office.add_staff("ada", "Ada Admin", &[Role::Admin]);
    office.allow_sign_in("dee");
    office.allow_sign_in("ada");
    let phone = &office.phones.me;
    let events = [
        envelope(
            phone,
            1,
            "visit-ava",
            VisitEvent::Cancelled {
                staff: staff("sam"),
                reason: CancelReason::FeltUnsafe,
                note: FELT_UNSAFE_NOTE.into(),
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
                    discussed: DISCUSSED.into(),
                    agreements: String::new(),
                    safeguarding_concern: true,
                    incident: Some(INCIDENT.into()),
                },
            },
        ),
    ];
    let (status, body) = office.post_sync(&phone.device_token, &batch(&events)).await;
    assert_eq!(status, 200, "{body}");
    office
}

fn record_paths() -> Vec<String> {
    let today = Utc::now().date_naive();
    vec![
        "/visits/visit-ava/timeline".into(),
        "/visits/visit-ava/cpoms.txt".into(),
        "/visits/visit-ava/cpoms.pdf".into(),
        format!(
            "/reports/write-ups.csv?from={}&to={}",
            today.pred_opt().unwrap(),
            today.succ_opt().unwrap()
        ),
        "/reports/monthly".into(),
    ]
}

/// The audit entries of openings (not the demo's decisions), as (who, what).
fn openings(office: &TestOffice) -> Vec<(String, Action)> {
    let school = "demo-primary".parse().unwrap();
    let mut entries = office.store.audit_entries(&school, 1000).unwrap();
    entries.reverse();
    entries
        .into_iter()
        .filter_map(|e| {
            let action = e.action()?;
            matches!(
                action,
                Action::OpenedTimeline
                    | Action::OpenedWriteUp
                    | Action::ExportedWriteUpPdf
                    | Action::ExportedWriteUpsCsv
                    | Action::OpenedMonthlyReport
            )
            .then_some((e.actor, action))
        })
        .collect()
}

#[tokio::test]
async fn reception_sees_the_board_but_none_of_what_a_visit_found() {
    let office = office().await;
    let (client, _) = signed_in(&office, "office").await;

    let (status, board) = get(&office, &client, "/").await;
    assert_eq!(status, 200);
    assert!(
        board.contains("visit-visit-ava"),
        "the visit is on the board"
    );
    for link in ["/reports/monthly", "/audit"] {
        assert!(
            !board.contains(&format!("href=\"{link}\"")),
            "{link}: {board}"
        );
    }

    let (status, page) = get(&office, &client, "/visits/visit-ava").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("12 Elm Row"), "where: the runbook's address");
    assert!(page.contains("Sam Taylor"), "who");
    for hidden in [
        FELT_UNSAFE_NOTE,
        INCIDENT,
        DISCUSSED,
        // The demo briefing's pupil's needs and family circumstances.
        "Asthma",
        "Mum works nights",
        "/cpoms.txt",
        "/timeline",
    ] {
        assert!(!page.contains(hidden), "reception is not shown {hidden:?}");
    }

    for path in record_paths().iter().chain(&["/audit".to_owned()]) {
        let (status, page) = get(&office, &client, path).await;
        assert_eq!(status, 403, "{path}: {page}");
        assert!(
            !page.contains(INCIDENT) && !page.contains(DISCUSSED),
            "{path}"
        );
    }
    let (status, page) = get(&office, &client, "/visits/visit-ava/timeline").await;
    assert_eq!(status, 403);
    assert!(
        page.contains("for the designated safeguarding lead, the headteacher and admins"),
        "{page}"
    );
    assert!(openings(&office).is_empty(), "nothing was opened");
}

#[tokio::test]
async fn the_dsl_signs_in_and_reads_them_as_do_the_authoriser_and_admins_and_each_opening_is_logged(
) {
    let office = office().await;
    let started = Utc::now();
    let mut expected = Vec::new();
    for who in ["dee", "head", "ada"] {
        // Through the sign-in form: the DSL may use the board now.
        let (client, _) = signed_in(&office, who).await;
        let (_, board) = get(&office, &client, "/").await;
        assert!(board.contains("href=\"/reports/monthly\""), "{who}");
        let (_, page) = get(&office, &client, "/visits/visit-ava").await;
        assert!(
            page.contains("/visits/visit-ava/cpoms.txt"),
            "{who}: {page}"
        );
        // The briefing: the pupil's needs and the family's circumstances.
        assert!(
            page.contains("Asthma") && page.contains("Mum works nights"),
            "{who}: {page}"
        );

        for path in record_paths() {
            let (status, body) = get(&office, &client, &path).await;
            assert_eq!(status, 200, "{who} {path}: {body}");
        }
        let (_, text) = get(&office, &client, "/visits/visit-ava/cpoms.txt").await;
        assert!(
            text.contains(INCIDENT) && text.contains(DISCUSSED),
            "{text}"
        );
        let (_, timeline) = get(&office, &client, "/visits/visit-ava/timeline").await;
        assert!(timeline.contains(FELT_UNSAFE_NOTE), "{timeline}");
        expected.extend(
            [
                Action::OpenedTimeline,
                Action::OpenedWriteUp,
                Action::ExportedWriteUpPdf,
                Action::ExportedWriteUpsCsv,
                Action::OpenedMonthlyReport,
                Action::OpenedWriteUp,
                Action::OpenedTimeline,
            ]
            .map(|action| (who.to_owned(), action)),
        );
    }
    assert_eq!(
        openings(&office),
        expected,
        "each opening, in order, by whom"
    );

    let school = "demo-primary".parse().unwrap();
    let entries = office.store.audit_entries(&school, 1000).unwrap();
    let csv = entries
        .iter()
        .find(|e| e.action() == Some(Action::ExportedWriteUpsCsv) && e.actor == "dee")
        .unwrap();
    assert!(
        csv.record.starts_with("write-ups of visits agreed "),
        "{csv:?}"
    );
    let pdf = entries
        .iter()
        .find(|e| e.action() == Some(Action::ExportedWriteUpPdf) && e.actor == "ada")
        .unwrap();
    assert_eq!(pdf.visit.as_deref(), Some("visit-ava"));
    assert!(
        pdf.at >= started && pdf.at <= Utc::now(),
        "when: {}",
        pdf.at
    );
    assert!(office.store.verify_audit_log().unwrap().is_intact());
}

#[tokio::test]
async fn the_audit_log_page_is_for_admins_and_the_dsl_and_says_when_its_chain_is_broken() {
    let office = office().await;
    let (dee, _) = signed_in(&office, "dee").await;
    let (status, _) = get(&office, &dee, "/visits/visit-ava/cpoms.txt").await;
    assert_eq!(status, 200);
    // The demo's headteacher is also its DSL; reception's 403 is in the test above.
    for who in ["dee", "ada", "head"] {
        let (client, _) = signed_in(&office, who).await;
        let (status, page) = get(&office, &client, "/audit").await;
        assert_eq!(status, 200, "{who}: {page}");
        assert!(page.contains("The log is intact"), "{page}");
        assert!(
            page.contains("Dee Lead") && page.contains("opened the write-up"),
            "{page}"
        );
        assert!(
            page.contains("authorised the visit"),
            "the demo's decisions: {page}"
        );
    }
    let target = office.store.verify_audit_log().unwrap().entries;
    // Each store's own way of dropping the trigger that keeps the log append-only.
    let drop_trigger = match office.database_url {
        Some(_) => "DROP TRIGGER audit_log_is_append_only ON audit_log",
        None => "DROP TRIGGER audit_log_is_append_only",
    };
    office.sql(&format!(
        "{drop_trigger}; UPDATE audit_log SET actor = 'office' WHERE seq = {target}"
    ));
    let (_, page) = get(&office, &dee, "/audit").await;
    assert!(page.contains("The log has been tampered with"), "{page}");
    assert!(
        page.contains(&format!("entry {target}: its contents were changed")),
        "{page}"
    );
}
