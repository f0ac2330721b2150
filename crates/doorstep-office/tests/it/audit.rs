//! The audit log in the real store: the office's decisions and each opening of a write-up or export are
//! entries with who and when, chained by SHA-256; the database refuses to change or delete an entry; and
//! `verify_audit_log` names the first entry that was altered, re-hashed or removed behind its back.

use chrono::Utc;
use doorstep_core::lifecycle::Command;
use doorstep_office::audit::{Action, NewEntry, GENESIS};

use crate::helpers::*;

fn school() -> doorstep_core::ids::SchoolId {
    "demo-primary".parse().unwrap()
}

/// An office whose log holds the demo's authorisations plus `extra` openings by the headteacher.
async fn office_with_entries(extra: usize) -> TestOffice {
    let office = office_with_sign_ins(&[]).await;
    for i in 0..extra {
        let entry = NewEntry::new(&school(), &staff("head"), Action::OpenedWriteUp)
            .visit(&visit("visit-ava"))
            .detail(format!("opening {i}"));
        office.store.audit(&entry, Utc::now()).unwrap();
    }
    office
}

#[tokio::test]
async fn office_decisions_are_in_the_log_with_who_and_when_and_the_chain_holds() {
    let office = office_with_entries(0).await;
    let before = Utc::now();
    office
        .store
        .record_office_event(
            &visit("visit-mia"),
            &Command::Authorise {
                by: staff("head"),
                lone_visit_approved: false,
            },
            before,
        )
        .unwrap();
    let entries = office
        .store
        .audit_entries_for_visit(&visit("visit-mia"))
        .unwrap();
    let last = entries.last().expect("the authorisation is in the log");
    assert_eq!(last.action(), Some(Action::Authorised));
    assert_eq!(last.actor, "head");
    assert_eq!(last.at, before);
    assert_eq!(last.school.as_deref(), Some("demo-primary"));

    // Every entry follows the one before, from the first (whose "previous" is all zeros).
    let all = office.store.audit_entries(&school(), 1000).unwrap();
    assert!(all.len() >= 2, "the demo's authorisations and this one");
    let oldest = all.last().unwrap();
    assert_eq!((oldest.seq, oldest.prev_hash.as_str()), (1, GENESIS));
    for pair in all.windows(2) {
        assert_eq!(
            pair[0].prev_hash, pair[1].hash,
            "{} follows {}",
            pair[0].seq, pair[1].seq
        );
    }
    let check = office.store.verify_audit_log().unwrap();
    assert!(check.is_intact(), "{check:?}");
    assert_eq!(check.entries, all.len() as i64);
}

#[tokio::test]
async fn the_database_refuses_to_change_or_delete_an_entry() {
    let office = office_with_entries(2).await;
    let update = office.try_sql("UPDATE audit_log SET detail = 'nothing to see' WHERE seq = 1");
    assert!(update.unwrap_err().contains("append-only"));
    let delete = office.try_sql("DELETE FROM audit_log WHERE seq = 1");
    let refused = delete.unwrap_err();
    assert!(
        refused.contains("never") && refused.contains("deleted"),
        "{refused}"
    );
    assert!(office.store.verify_audit_log().unwrap().is_intact());
}

/// Someone with the database drops the triggers and edits the log.
fn tamper(office: &TestOffice, sql: &str) {
    let drop_triggers = match office.database_url {
        Some(_) => "DROP TRIGGER audit_log_is_append_only ON audit_log",
        None => "DROP TRIGGER audit_log_is_append_only; DROP TRIGGER audit_log_is_kept",
    };
    office.sql(&format!("{drop_triggers}; {sql}"));
}

#[tokio::test]
async fn verify_names_the_first_entry_altered_behind_the_logs_back() {
    let office = office_with_entries(4).await;
    let total = office.store.verify_audit_log().unwrap().entries;
    let target = total - 2;
    tamper(
        &office,
        &format!("UPDATE audit_log SET actor = 'someone-else' WHERE seq = {target}"),
    );
    let check = office.store.verify_audit_log().unwrap();
    let broken = check.broken.expect("the altered entry is found");
    assert_eq!(broken.seq, target);
    assert!(broken.why.contains("contents were changed"), "{broken}");
    assert_eq!(check.entries, total, "every entry is still counted");
}

#[tokio::test]
async fn verify_names_the_entry_after_one_altered_and_rehashed() {
    let office = office_with_entries(4).await;
    let total = office.store.verify_audit_log().unwrap().entries;
    let target = total - 2;
    // A careful forger changes who did it and recomputes the entry's own hash as the office would: the
    // entry is consistent in itself, but the next one still carries the old hash.
    let mut forged = office
        .store
        .audit_entries(&school(), 1000)
        .unwrap()
        .into_iter()
        .find(|e| e.seq == target)
        .unwrap();
    forged.actor = "someone-else".into();
    let rehashed = forged.computed_hash();
    tamper(
        &office,
        &format!(
            "UPDATE audit_log SET actor = 'someone-else', hash = '{rehashed}' WHERE seq = {target}"
        ),
    );
    let broken = office.store.verify_audit_log().unwrap().broken.unwrap();
    assert_eq!(broken.seq, target + 1, "{broken}");
    assert!(
        broken.why.contains("does not follow the entry before"),
        "{broken}"
    );
}

#[tokio::test]
async fn verify_names_a_removed_entry() {
    let office = office_with_entries(4).await;
    let total = office.store.verify_audit_log().unwrap().entries;
    tamper(
        &office,
        &format!("DELETE FROM audit_log WHERE seq = {}", total - 1),
    );
    let broken = office.store.verify_audit_log().unwrap().broken.unwrap();
    assert_eq!(broken.seq, total - 1);
    assert!(broken.why.contains("missing"), "{broken}");
}

#[tokio::test]
async fn the_verify_audit_command_says_the_chain_holds_or_names_the_first_broken_entry() {
    let mut office = office_with_entries(3).await;
    office.stop();
    // The command reads the same store: the SQLite file's folder, or the PostgreSQL database.
    let verify = || {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_doorstep-office"));
        command.arg("verify-audit");
        match &office.database_url {
            Some(url) => command.env("DOORSTEP_DATABASE_URL", url),
            None => command
                .env_remove("DOORSTEP_DATABASE_URL")
                .arg("--data-dir")
                .arg(office.sqlite_file().parent().unwrap()),
        };
        command.output().expect("run the office binary")
    };
    let intact = verify();
    assert!(intact.status.success(), "{intact:?}");
    assert!(String::from_utf8_lossy(&intact.stdout).contains("hash chain is intact"));
    tamper(
        &office,
        "UPDATE audit_log SET detail = 'nothing to see' WHERE seq = 2",
    );
    let broken = verify();
    assert_eq!(broken.status.code(), Some(1), "{broken:?}");
    let said = String::from_utf8_lossy(&broken.stdout);
    assert!(said.contains("BROKEN at entry 2"), "{said}");
}

#[tokio::test]
async fn signing_in_acknowledging_closing_and_duress_heard_are_entries_too() {
    let office = office_with_sign_ins(&["head"]).await;
    // A refused sign-in under a real name, then a good one.
    let (status, _) = sign_in(&office, &browser(), "head", "not the password").await;
    assert_eq!(status, 401);
    let (client, csrf) = signed_in(&office, "head").await;
    let (status, _) = post(
        &office,
        &client,
        "/visits/visit-ava/duress-heard",
        &[("csrf", csrf.as_str())],
    )
    .await;
    assert_eq!(status, 303);
    let alarm = office
        .store
        .open_alarms()
        .unwrap()
        .into_iter()
        .find(|a| a.visit.as_str() == "visit-ava")
        .expect("the duress alarm");
    let path = format!("/alarms/{}/acknowledge", alarm.id);
    let (status, _) = post(&office, &client, &path, &[("csrf", csrf.as_str())]).await;
    assert_eq!(status, 303);
    let path = format!("/alarms/{}/close", alarm.id);
    let (status, page) = post(
        &office,
        &client,
        &path,
        &[("csrf", csrf.as_str()), ("outcome", "spoke_to_staff")],
    )
    .await;
    assert_eq!(status, 303, "{page}");
    let actions: Vec<String> = office
        .store
        .audit_entries(&school(), 100)
        .unwrap()
        .into_iter()
        .map(|e| e.action_name)
        .collect();
    for wanted in [
        "sign_in_refused",
        "signed_in",
        "heard_duress",
        "acknowledged_alarm",
        "closed_alarm",
    ] {
        assert!(
            actions.iter().any(|a| a == wanted),
            "{wanted} in {actions:?}"
        );
    }
    assert!(office.store.verify_audit_log().unwrap().is_intact());
}
