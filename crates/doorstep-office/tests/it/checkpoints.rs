//! The write-ahead log is copied back into the database by the store's own thread between writes, not
//! inside a sync's commit, and so it is reused instead of growing.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use doorstep_core::domain::{Role, StaffMember};
use doorstep_office::devices::TokenCheck;
use doorstep_office::{demo, SqliteStore};

use crate::helpers::staff;

/// Adds `count` members of staff, each in a commit of its own.
fn add_staff(store: &SqliteStore, from: usize, count: usize) {
    let school = "demo-primary".parse().expect("school id");
    for n in from..from + count {
        let member = StaffMember {
            id: staff(&format!("staff-extra-{n}")),
            name: format!("Extra Member {n}"),
            roles: vec![Role::VisitingStaff],
            phone: "07700 900009".parse().expect("phone"),
            dbs: None,
        };
        store.add_staff(&school, &member).expect("add staff");
    }
}

/// Waits until the checkpoint thread has started the log again since it had done so `before` times: the
/// office has gone quiet after the writes, and the whole log was copied back.
fn wait_for_restart_after(store: &SqliteStore, before: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.log_restarts() <= before {
        assert!(
            Instant::now() < deadline,
            "the log was not started again within 20 s of the last write"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Frames in the write-ahead log now, as a `PASSIVE` checkpoint from another connection reports them.
fn log_frames(store: &SqliteStore) -> i64 {
    let conn = rusqlite::Connection::open(store.path()).expect("open");
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))
        .expect("checkpoint")
}

fn log_bytes(store: &SqliteStore) -> u64 {
    let log = Path::new(store.path()).with_extension("sqlite3-wal");
    std::fs::metadata(log).expect("the write-ahead log").len()
}

#[test]
fn the_log_is_copied_back_between_writes_and_reused_not_grown() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(SqliteStore::open(dir.path()).expect("open store"));
    demo::seed(&store.clone().into(), "http://127.0.0.1:1", Utc::now()).expect("seed");

    // Each burst is far fewer pages than the writer's own backstop, so only the checkpoint thread can
    // have copied them back and started the log again. Without it the log would hold the seed and all
    // four bursts, well over twice what it holds after the first.
    let before = store.log_restarts();
    add_staff(&store, 0, 300);
    wait_for_restart_after(&store, before);
    let after_first = log_bytes(&store);
    for burst in 1..4 {
        let before = store.log_restarts();
        add_staff(&store, burst * 300, 300);
        wait_for_restart_after(&store, before);
    }
    let after_four = log_bytes(&store);
    assert!(
        after_four < after_first * 2,
        "the log grew from {after_first} to {after_four} bytes over four equal bursts: \
         it was not copied back between them"
    );
    // And nothing was lost in the copying.
    drop(store);
    let store = SqliteStore::open(dir.path()).expect("reopen");
    let school = "demo-primary".parse().expect("school id");
    let people = store.school_staff(&school).expect("staff");
    assert!(people.iter().any(|m| m.name == "Extra Member 1199"));
}

#[test]
fn after_a_quiet_spell_the_next_write_finds_the_log_copied_and_started_again() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(SqliteStore::open(dir.path()).expect("open store"));
    demo::seed(&store.clone().into(), "http://127.0.0.1:1", Utc::now()).expect("seed");
    // A few writes, far fewer than the commits that call for a checkpoint on their own.
    let before = store.log_restarts();
    add_staff(&store, 0, 20);
    assert!(log_frames(&store) >= 20, "the writes are in the log");
    // The office goes quiet: the thread copies the log back and starts it again itself (one frame of
    // its own), so the next sync's commit appends to a started log instead of fsyncing a new header.
    wait_for_restart_after(&store, before);
    assert!(log_frames(&store) <= 2, "{} frames", log_frames(&store));
    add_staff(&store, 20, 1);
    assert!(log_frames(&store) <= 4, "{} frames", log_frames(&store));
}

#[test]
fn a_phone_seen_at_a_sync_is_still_shown_as_seen_after_the_office_restarts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(SqliteStore::open(dir.path()).expect("open store"));
    demo::seed(&store.clone().into(), "http://127.0.0.1:1", Utc::now()).expect("seed");
    let school = "demo-primary".parse().expect("school id");
    let device = "phone-extra".parse().expect("device id");
    let token = "extra-token-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
    let enrolled = Utc::now() - chrono::TimeDelta::days(1);
    store
        .enrol_device(&device, &staff("sam"), token, enrolled)
        .expect("enrol");
    let seen_at = Utc::now();
    assert!(matches!(
        store.check_token(token, seen_at).expect("check"),
        TokenCheck::Accepted(_)
    ));
    let shown = |store: &SqliteStore| {
        let phones = store.school_devices(&school).expect("phones");
        let phone = phones.into_iter().find(|p| p.id == device).expect("listed");
        phone.last_seen_at
    };
    // Shown at once, although no commit has carried it yet.
    assert_eq!(shown(&store), Some(seen_at));
    // Written when the office stops, so not lost with it.
    drop(store);
    let store = SqliteStore::open(dir.path()).expect("reopen");
    assert_eq!(shown(&store), Some(seen_at));
}
