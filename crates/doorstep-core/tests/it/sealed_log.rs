//! The event log with a sealer, on real SQLite files: nothing readable reaches the file, a body sealed for
//! another row (or not sealed at all) is refused, and a confirmed event keeps no words a person typed, in
//! the file or its write-ahead log.

use std::path::Path;
use std::sync::Arc;

use doorstep_core::event_log::{Delivery, EventLog, LogError, SealError, Sealer};
use doorstep_core::lifecycle::{CancelReason, VisitEvent, WriteUp};
use doorstep_core::sync_plan::OutboxUpdate;
use tempfile::TempDir;

use crate::support::{at_min, device, holdings, staff, visit_id};

/// A stand-in for the phone's cipher with the same contract: the text reversed and hex-encoded behind a
/// marker, with the context (the row) written in, so it is unreadable by a grep, and refused for another
/// row. The real cipher (XChaCha20-Poly1305) is the phone's, tested in its own crate.
#[derive(Debug)]
struct TestSealer;

impl Sealer for TestSealer {
    fn seal(&self, plaintext: &[u8], context: &[u8]) -> Result<String, SealError> {
        let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let mut reversed = plaintext.to_vec();
        reversed.reverse();
        Ok(format!("sealed:{}:{}", hex(context), hex(&reversed)))
    }

    fn open(&self, sealed: &str, context: &[u8]) -> Result<Vec<u8>, SealError> {
        let unhex = |text: &str| -> Result<Vec<u8>, SealError> {
            (0..text.len())
                .step_by(2)
                .map(|i| {
                    text.get(i..i + 2)
                        .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                        .ok_or_else(|| SealError("not hex".into()))
                })
                .collect()
        };
        let rest = sealed
            .strip_prefix("sealed:")
            .ok_or_else(|| SealError("not sealed".into()))?;
        let (for_context, body) = rest
            .split_once(':')
            .ok_or_else(|| SealError("no context".into()))?;
        if unhex(for_context)? != context {
            return Err(SealError("sealed for another record".into()));
        }
        let mut plain = unhex(body)?;
        plain.reverse();
        Ok(plain)
    }
}

fn sealed(path: &Path) -> EventLog {
    EventLog::open_sealed(path, &device("phone-a"), Arc::new(TestSealer)).unwrap()
}

/// Every byte of the database and its write-ahead log, as text a grep would see.
fn files_text(path: &Path) -> String {
    let mut text = String::new();
    for suffix in ["", "-wal", "-shm"] {
        let file = format!("{}{suffix}", path.display());
        if let Ok(bytes) = std::fs::read(&file) {
            text.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    text
}

fn write_up(words: &str) -> VisitEvent {
    VisitEvent::WrittenUp {
        staff: staff("a"),
        write_up: WriteUp {
            seen: format!("{words} seen"),
            discussed: format!("{words} discussed"),
            agreements: format!("{words} agreed"),
            safeguarding_concern: true,
            incident: Some(format!("{words} incident")),
        },
    }
}

#[test]
fn a_sealed_log_writes_nothing_readable_and_reads_back_what_it_wrote() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("doorstep.sqlite");
    let mut log = sealed(&path);
    let mut held = holdings();
    held.visits[0].visit.address.lines = vec!["14 Juniper Row".into()];
    log.save_holdings(&held, at_min(1)).unwrap();
    let recorded = log
        .record(&visit_id(), write_up("Zephyrine"), at_min(2))
        .unwrap();

    let on_disk = files_text(&path);
    for secret in ["Juniper", "Zephyrine", "staff_name"] {
        assert!(!on_disk.contains(secret), "{secret} is readable on disk");
    }
    assert_eq!(log.holdings().unwrap(), Some(held.clone()));
    assert_eq!(log.waiting().unwrap(), vec![recorded.clone()]);
    drop(log);
    let reopened = sealed(&path);
    assert_eq!(reopened.holdings().unwrap(), Some(held));
    assert_eq!(reopened.waiting().unwrap(), vec![recorded]);
}

#[test]
fn a_body_moved_to_another_row_or_not_sealed_is_refused() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("doorstep.sqlite");
    let mut log = sealed(&path);
    let first = log
        .record(
            &visit_id(),
            VisitEvent::CheckedIn { staff: staff("a") },
            at_min(1),
        )
        .unwrap();
    log.record(&visit_id(), write_up("x"), at_min(2)).unwrap();
    drop(log);

    // Someone with the file swaps the bodies of the two rows (around the triggers, as a file editor
    // would): each is sealed for its own row, so both are refused.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "DROP TRIGGER events_are_immutable;
         UPDATE events SET body = (SELECT body FROM events WHERE seq = 2) WHERE seq = 1;",
    )
    .unwrap();
    drop(conn);
    let log = sealed(&path);
    let error = log.waiting().unwrap_err();
    assert!(matches!(error, LogError::Sealed(_)), "{error}");
    assert!(error.to_string().contains("another record"), "{error}");

    // A plain JSON body (what an attacker without the key could write) is refused too.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let plain = serde_json::to_string(&first).unwrap();
    conn.execute("UPDATE events SET body = ?1 WHERE seq = 1", [plain])
        .unwrap();
    drop(conn);
    let error = sealed(&path).waiting().unwrap_err();
    assert!(matches!(error, LogError::Sealed(_)), "{error}");
}

#[test]
fn a_log_opened_without_the_key_refuses_sealed_bodies() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("doorstep.sqlite");
    let mut log = sealed(&path);
    log.record(&visit_id(), write_up("x"), at_min(1)).unwrap();
    log.save_holdings(&holdings(), at_min(1)).unwrap();
    drop(log);
    let plain = EventLog::open(&path, &device("phone-a")).unwrap();
    assert!(matches!(plain.waiting(), Err(LogError::Corrupt(_))));
    assert!(matches!(plain.holdings(), Err(LogError::Corrupt(_))));
}

#[test]
fn a_confirmed_write_up_keeps_no_words_on_disk_and_the_same_meaning() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("doorstep.sqlite");
    // Plain bodies, so the test can see the words before they go.
    let mut log = EventLog::open(&path, &device("phone-a")).unwrap();
    let checked = log
        .record(
            &visit_id(),
            VisitEvent::CheckedIn { staff: staff("a") },
            at_min(1),
        )
        .unwrap();
    let written = log
        .record(&visit_id(), write_up("Quillon"), at_min(2))
        .unwrap();
    let cancelled = log
        .record(
            &visit_id(),
            VisitEvent::Cancelled {
                staff: staff("a"),
                reason: CancelReason::FeltUnsafe,
                note: "Quillon shouted at the door".into(),
            },
            at_min(3),
        )
        .unwrap();
    assert!(files_text(&path).contains("Quillon"));

    // Refused or still waiting: kept as typed.
    log.apply(
        &[OutboxUpdate::Refuse {
            id: cancelled.id,
            reason: "no".into(),
        }],
        at_min(4),
    )
    .unwrap();
    assert!(files_text(&path).contains("Quillon shouted"));

    log.apply(
        &[
            OutboxUpdate::Confirm(checked.id),
            OutboxUpdate::Confirm(written.id),
        ],
        at_min(4),
    )
    .unwrap();
    let events = log.events_for_visit(&visit_id()).unwrap();
    let (kept, delivery) = &events[1];
    assert_eq!(kept.id, written.id);
    assert_eq!(delivery, &Delivery::Confirmed { at: at_min(4) });
    assert_eq!(
        kept.event,
        VisitEvent::WrittenUp {
            staff: staff("a"),
            write_up: WriteUp {
                seen: String::new(),
                discussed: String::new(),
                agreements: String::new(),
                safeguarding_concern: true,
                incident: None,
            },
        },
        "who wrote it up and the concern stay; the words go"
    );
    assert_eq!(events[0].0, checked, "an event without words is unchanged");
    assert_eq!(
        log.redacted_events(&visit_id()).unwrap(),
        [written.id].into_iter().collect()
    );
    let on_disk = files_text(&path);
    assert!(
        !on_disk.contains("Quillon seen") && !on_disk.contains("Quillon incident"),
        "the write-up's words are in neither the file nor its write-ahead log"
    );
    assert!(
        on_disk.contains("Quillon shouted"),
        "the refused event is kept as typed"
    );
}

#[test]
fn the_one_change_an_event_allows_is_losing_its_words_once_confirmed() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("doorstep.sqlite");
    let mut log = EventLog::open(&path, &device("phone-a")).unwrap();
    let written = log.record(&visit_id(), write_up("x"), at_min(1)).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let early = conn.execute(
        "UPDATE events SET body = '{}', redacted = 1 WHERE seq = 1",
        [],
    );
    assert!(
        early.is_err_and(|e| e.to_string().contains("immutable")),
        "not before the office confirmed it"
    );
    log.apply(&[OutboxUpdate::Confirm(written.id)], at_min(2))
        .unwrap();
    for change in [
        "UPDATE events SET body = '{}' WHERE seq = 1",
        "UPDATE events SET redacted = 0 WHERE seq = 1",
        "UPDATE events SET seq = 7 WHERE seq = 1",
    ] {
        let result = conn.execute(change, []);
        assert!(
            result.is_err_and(|e| e.to_string().contains("immutable")),
            "{change}"
        );
    }
}

#[test]
fn holdings_replaced_leave_nothing_of_the_old_in_the_file_or_its_write_ahead_log() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("doorstep.sqlite");
    // Plain bodies, so a leftover would be readable to this test; a phone's are sealed as well.
    let mut log = EventLog::open(&path, &device("phone-a")).unwrap();
    let mut held = holdings();
    held.visits[0].visit.address.lines = vec!["27 Larkspur Crescent".into()];
    log.save_holdings(&held, at_min(1)).unwrap();
    assert!(files_text(&path).contains("Larkspur"));
    held.visits.clear();
    log.save_holdings(&held, at_min(2)).unwrap();
    assert!(
        !files_text(&path).contains("Larkspur"),
        "overwritten (secure_delete) and checkpointed out of the write-ahead log"
    );
}
