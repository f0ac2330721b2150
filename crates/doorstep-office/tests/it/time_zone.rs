//! The school's time zone: a school on the other side of the world from the machine the office runs on
//! reads every time on its own clock, on the board, in the messages it is sent and in its records.

use chrono::TimeDelta;
use doorstep_core::domain::SchoolTimeZone;
use doorstep_core::policy::Preset;
use doorstep_core::test_support::visit;
use doorstep_office::notify::{NewTarget, WantedLevels};
use doorstep_office::records::cpoms_text;

use crate::bench::{demo_school, minutes_after_agreed, Bench};

const OFFICE: &str = "office@oakfield.example";

/// Lets the engine and the notifier finish whatever the last step set off, without moving the clock.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_school_in_auckland_reads_the_board_its_alarm_emails_and_its_record_on_auckland_time() {
    let mut sim = Bench::paused(Preset::PrimaryHeadteacher).await;
    let auckland = SchoolTimeZone::parse("Pacific/Auckland").unwrap();
    sim.store
        .set_school_time_zone(&demo_school(), auckland)
        .unwrap();
    sim.add_target(NewTarget::email(OFFICE, WantedLevels::BOARD).unwrap());
    let (_handoffs, mut sent) = sim.run_notifier();
    // The tests' school day is 23 November 2026: visit-ava is agreed for 10:15 UTC, 23:15 in Auckland
    // (NZDT, UTC+13), and goes overdue when the 10:25 check-in is 5 minutes late.
    sim.start_visit().await;
    sim.advance_to(minutes_after_agreed(15) + TimeDelta::seconds(1))
        .await;
    settle().await;

    let (_, board) = sim.page("office", "/board/fragment").await;
    for needed in ["23:15 Safe and well check", "Raised 23:30", "due at 23:25"] {
        assert!(board.contains(needed), "{needed:?} on the board: {board}");
    }
    for wrong in ["Raised 10:30", "due at 10:25", "Raised 21:30"] {
        assert!(!board.contains(wrong), "{wrong:?} on the board: {board}");
    }
    let (_, page) = sim.page("office", "/").await;
    assert!(
        page.contains("Times are the school's local time (Pacific/Auckland, UTC+13:00)"),
        "{page}"
    );

    let handoff = sent.try_recv().expect("the office target was emailed");
    let email = &handoff.message.payload;
    for needed in [
        "no check_in since it was due at 23:25:00 NZDT",
        "Now: raised on the office board (23:30:00 NZDT)",
        "agreed for 2026-11-23 23:15 NZDT",
    ] {
        assert!(email.contains(needed), "{needed:?} in the email: {email}");
    }
    assert!(!email.contains("UTC"), "{email}");

    let record = sim
        .office()
        .visit_record(&visit("visit-ava"))
        .unwrap()
        .unwrap();
    let text = cpoms_text(&record);
    for needed in [
        "Date and time: Monday 23 November 2026, 23:15 NZDT (agreed time, Pacific/Auckland;",
        "Timeline (times from the staff's phones, Pacific/Auckland)",
        "23:01  Sam Taylor left for the visit, expecting to arrive at 23:15 NZDT",
        "Overdue alarm raised at 23:30 NZDT",
    ] {
        assert!(text.contains(needed), "{needed:?} in the record: {text}");
    }
    assert!(!text.contains("UTC"), "{text}");
}
