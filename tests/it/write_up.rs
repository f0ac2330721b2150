//! One wording for the write-up: the text the phone offers to paste and the office's record of the same
//! visit say the same lines, as far as the phone knows (it never knows where a notice went; the office
//! adds that, the timeline and the alarms).

use chrono::Utc;
use doorstep::cpoms::{self, Summary};
use doorstep::store::AppStore;
use doorstep::sync::SyncOutcome;
use doorstep_core::lifecycle::{CancelReason, Command, WriteUp};
use doorstep_core::test_support::{staff, visit};
use doorstep_office::records::cpoms_text;
use doorstep_office::SqliteStore;

use crate::office::*;

/// Stands for a run of lines saying where a notice went (or, on the phone, who must be told).
const WHERE_IT_WENT: &str = "<where it went>";

/// The lines with each run of `where_it_went` lines made one placeholder.
fn with_placeholders<'a>(lines: &[&'a str], where_it_went: impl Fn(&str) -> bool) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for line in lines {
        if !where_it_went(line) {
            out.push(line);
        } else if out.last() != Some(&WHERE_IT_WENT) {
            out.push(WHERE_IT_WENT);
        }
    }
    out
}

fn phone_text(store: &AppStore) -> String {
    let card = store
        .visit(&visit("visit-ava"))
        .unwrap()
        .expect("the phone holds visit-ava");
    match cpoms::from_store(store, &card).unwrap() {
        Summary::Ready { document, concern } => {
            assert!(concern);
            document.to_text()
        }
        other => panic!("the phone has its write-up: {other:?}"),
    }
}

#[tokio::test]
async fn the_phones_text_and_the_offices_record_say_the_same_lines_as_far_as_the_phone_knows() {
    let office_dir = tempfile::tempdir().unwrap();
    let phone_dir = tempfile::tempdir().unwrap();
    let (mut office, phones) = InProcessOffice::start_demo(office_dir.path()).await;
    let (store, client) = phone(phone_dir.path(), &phones.me);
    assert_eq!(
        client.sync_once(&store, Utc::now).await.outcome,
        SyncOutcome::UpToDate
    );

    // Sam sets off alone, feels unsafe at the door and calls the visit off, then writes it up with a
    // concern and an incident: every notice the record names.
    let ava = visit("visit-ava");
    let card = store.visit(&ava).unwrap().expect("visit-ava");
    let sam = staff("sam");
    for command in [
        Command::Depart {
            staff: sam.clone(),
            expected_arrival: card.visit.agreed_time,
            expected_end: card.visit.expected_end(),
        },
        Command::ArriveOutside { staff: sam.clone() },
        Command::Cancel {
            staff: sam.clone(),
            reason: CancelReason::FeltUnsafe,
            note: "Raised voices inside;\nwe did not knock".into(),
        },
        Command::WriteUp {
            staff: sam.clone(),
            write_up: WriteUp {
                seen: "Nobody: we stayed outside".into(),
                discussed: "Nothing".into(),
                agreements: String::new(),
                safeguarding_concern: true,
                incident: Some("A man shouted at us from the window".into()),
            },
        },
    ] {
        store.perform(&ava, command, Utc::now()).expect("recorded");
    }
    assert_eq!(
        client.sync_once(&store, Utc::now).await.outcome,
        SyncOutcome::UpToDate
    );
    let phone = phone_text(&store);
    let record = doorstep_office::OfficeStore::from(SqliteStore::open(office_dir.path()).unwrap())
        .visit_record(&ava)
        .unwrap()
        .expect("the office holds visit-ava");
    let office_text = cpoms_text(&record);
    office.stop().await;

    let told: Vec<&str> = record
        .notices
        .iter()
        .flat_map(|n| n.told.iter().map(String::as_str))
        .collect();
    assert_eq!(record.notices.len(), 3, "concern, incident, felt unsafe");
    let phone_lines: Vec<&str> = phone.lines().collect();
    let office_lines: Vec<&str> = office_text.lines().collect();
    // The office's record goes on with what only it knows: the timeline, from its blank line on.
    let timeline = office_lines
        .iter()
        .position(|l| l.starts_with("Timeline ("))
        .expect(&office_text);
    let phone_said = with_placeholders(&phone_lines, |l| l.contains("must be told at once"));
    let office_said = with_placeholders(&office_lines[..timeline - 1], |l| told.contains(&l));
    assert_eq!(
        phone_said, office_said,
        "phone:\n{phone}\noffice:\n{office_text}"
    );
    assert_eq!(
        phone_said.iter().filter(|l| **l == WHERE_IT_WENT).count(),
        4,
        "the concern under the title and at its answer, the incident, the cancellation: {phone}"
    );
    for line in [
        "Outcome: Cancelled before it began: Felt unsafe.",
        "we did not knock",
        "A man shouted at us from the window",
        "Safeguarding concern: YES",
    ] {
        assert!(phone_lines.contains(&line), "{line:?} in\n{phone}");
    }
}
