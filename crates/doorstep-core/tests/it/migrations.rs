//! The event log's migrations: the list in code is the `migrations/` folder, each file says why it exists,
//! and a phone database made by the old `user_version` runner opens with everything in it.

use std::path::Path;

use doorstep_core::event_log::{EventLog, LogError, MIGRATIONS};
use doorstep_core::lifecycle::VisitEvent;
use tempfile::TempDir;

use crate::support::{at_min, device, staff, visit_id};

#[test]
fn the_migration_list_is_the_migrations_folder_and_each_file_says_why() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut files: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort_by_key(|name| {
        name.trim_start_matches('V')
            .split("__")
            .next()
            .and_then(|n| n.parse::<u32>().ok())
    });
    let listed: Vec<String> = MIGRATIONS
        .iter()
        .map(|(name, _)| format!("{name}.sql"))
        .collect();
    assert_eq!(listed, files);
    for (name, sql) in MIGRATIONS {
        let first = sql.lines().next().unwrap_or_default();
        assert!(first.starts_with("-- Why: "), "{name} opens with {first:?}");
    }
}

/// What the phone's old runner did: the first `upto` files in order, each in a transaction that also set
/// `user_version`.
fn made_by_the_old_runner(path: &Path, upto: usize) -> rusqlite::Connection {
    let mut conn = rusqlite::Connection::open(path).unwrap();
    for (index, (_, sql)) in MIGRATIONS.iter().take(upto).enumerate() {
        let tx = conn.transaction().unwrap();
        tx.execute_batch(sql).unwrap();
        tx.pragma_update(None, "user_version", index as i64 + 1)
            .unwrap();
        tx.commit().unwrap();
    }
    conn
}

fn schema(path: &Path) -> Vec<(String, String, Option<String>)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name",
        )
        .unwrap();
    stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn a_phone_database_from_the_user_version_runner_opens_keeps_its_events_and_ends_like_a_new_one() {
    let dir = TempDir::new().unwrap();
    let fresh = dir.path().join("fresh.sqlite");
    drop(EventLog::open(&fresh, &device("phone-a")).unwrap());
    let expected = schema(&fresh);

    for upto in 0..=MIGRATIONS.len() {
        let path = dir.path().join(format!("old-{upto}.sqlite"));
        let conn = made_by_the_old_runner(&path, upto);
        if upto >= 1 {
            // The old build had signed the phone in and kept an event in its outbox.
            conn.execute(
                "INSERT INTO device (id, device_id, last_seq) VALUES (1, 'phone-a', 0)",
                [],
            )
            .unwrap();
        }
        drop(conn);
        let mut log = EventLog::open(&path, &device("phone-a")).unwrap();
        let recorded = log
            .record(
                &visit_id(),
                VisitEvent::CheckedIn { staff: staff("a") },
                at_min(1),
            )
            .unwrap();
        assert_eq!(recorded.seq.get(), 1, "from user_version {upto}");
        drop(log);
        assert_eq!(schema(&path), expected, "from user_version {upto}");
        let conn = rusqlite::Connection::open(&path).unwrap();
        let user_version: i64 = conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(user_version, MIGRATIONS.len() as i64);
    }

    // A log with events, from before refinery: its events survive the reopening.
    let path = dir.path().join("in-use.sqlite");
    let mut log = EventLog::open(&path, &device("phone-a")).unwrap();
    for minute in 1..=3 {
        log.record(
            &visit_id(),
            VisitEvent::CheckedIn { staff: staff("a") },
            at_min(minute),
        )
        .unwrap();
    }
    drop(log);
    {
        // Back to how the old runner left such a file: no history table, user_version counting files.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("DROP TABLE refinery_schema_history")
            .unwrap();
        conn.pragma_update(None, "user_version", MIGRATIONS.len() as i64)
            .unwrap();
    }
    let mut log = EventLog::open(&path, &device("phone-a")).unwrap();
    assert_eq!(log.events_for_visit(&visit_id()).unwrap().len(), 3);
    let next = log
        .record(
            &visit_id(),
            VisitEvent::CheckedIn { staff: staff("a") },
            at_min(4),
        )
        .unwrap();
    assert_eq!(next.seq.get(), 4);
}

#[test]
fn a_database_from_a_newer_doorstep_is_refused_and_left_alone() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("newer.sqlite");
    let conn = made_by_the_old_runner(&path, MIGRATIONS.len());
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let before = schema(&path);
    assert!(matches!(
        EventLog::open(&path, &device("phone-a")),
        Err(LogError::NewerSchema(99))
    ));
    assert_eq!(schema(&path), before);
}
