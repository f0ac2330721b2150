//! The office store's migrations: the list in code is the `migrations/` folder, each file says why it
//! exists, and a database made by the old `user_version` runner (V4 and V5 applied in the order they
//! landed, then named `0005_records` and `0004_office_users`) opens with everything in it.

use std::path::Path;

use doorstep_office::store::{StoreError, MIGRATIONS};
use doorstep_office::{demo, SqliteStore};

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
    // Every existing database applied the records index (then 0005) fourth and the sign-ins (then 0004)
    // fifth: their versions say that order.
    assert!(MIGRATIONS[3]
        .1
        .contains("CREATE INDEX visits_by_school_and_time"));
    assert!(MIGRATIONS[4].1.contains("CREATE TABLE office_logins"));
}

/// How many files the old `user_version` runner ever applied (V1 to V8); everything later came under
/// refinery, so an old database never counts past this.
const OLD_RUNNER_FILES: usize = 8;

/// The latest migration's version: what `user_version` says after migrating (refinery's versions may
/// have gaps, where other branches' files will land).
fn latest_version() -> i64 {
    MIGRATIONS
        .iter()
        .map(|(name, _)| version(name))
        .max()
        .unwrap()
}

/// The version number in a migration's name: 12 for `V12__visit_versions`.
fn version(name: &str) -> i64 {
    name.trim_start_matches('V')
        .split("__")
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{name} is V<number>__<name>"))
}

/// What the office's old runner did: the first `upto` files in the order it applied them (0001, 0002,
/// 0003, 0005, 0004, 0006, 0007, which is V1 to V7 now), each in a transaction that also set `user_version`
/// (the number of files applied, which for the files it knew is also the version of the last one; for
/// later files, the version, as `doorstep_core::migrate::run` reads it).
fn made_by_the_old_runner(dir: &Path, upto: usize) -> rusqlite::Connection {
    let mut conn = rusqlite::Connection::open(dir.join("office.sqlite3")).unwrap();
    conn.pragma_update(None, "foreign_keys", true).unwrap();
    for (name, sql) in MIGRATIONS.iter().take(upto) {
        let tx = conn.transaction().unwrap();
        tx.execute_batch(sql).unwrap();
        tx.pragma_update(None, "user_version", version(name))
            .unwrap();
        tx.commit().unwrap();
    }
    conn
}

fn schema(dir: &Path) -> Vec<(String, String, Option<String>)> {
    let conn = rusqlite::Connection::open(dir.join("office.sqlite3")).unwrap();
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
fn an_office_database_from_the_user_version_runner_opens_at_any_version_and_ends_like_a_new_one() {
    let fresh = tempfile::tempdir().unwrap();
    drop(SqliteStore::open(fresh.path()).unwrap());
    let expected = schema(fresh.path());

    for upto in 0..=OLD_RUNNER_FILES {
        let dir = tempfile::tempdir().unwrap();
        let conn = made_by_the_old_runner(dir.path(), upto);
        if upto >= 1 {
            conn.execute(
                "INSERT INTO schools (id, name, office_phone, policy) VALUES ('old-school', 'Old School', '01632 960000', '{}')",
                [],
            )
            .unwrap();
        }
        drop(conn);
        drop(SqliteStore::open(dir.path()).unwrap());
        assert_eq!(schema(dir.path()), expected, "from user_version {upto}");
        let conn = rusqlite::Connection::open(dir.path().join("office.sqlite3")).unwrap();
        let (user_version, applied): (i64, i64) = (
            conn.query_row("PRAGMA user_version", [], |row| row.get(0))
                .unwrap(),
            conn.query_row("SELECT COUNT(*) FROM refinery_schema_history", [], |row| {
                row.get(0)
            })
            .unwrap(),
        );
        assert_eq!(
            (user_version, applied),
            (latest_version(), MIGRATIONS.len() as i64)
        );
        let schools: i64 = conn
            .query_row("SELECT COUNT(*) FROM schools", [], |row| row.get(0))
            .unwrap();
        assert_eq!(schools, i64::from(upto >= 1), "from user_version {upto}");
    }
}

#[test]
fn a_demo_office_from_before_refinery_keeps_its_visits_and_its_phones_keep_working() {
    // The demo school as a current office makes it, to copy from.
    let made = tempfile::tempdir().unwrap();
    let store: doorstep_office::OfficeStore = SqliteStore::open(made.path()).unwrap().into();
    demo::seed(&store, "http://127.0.0.1:1", chrono::Utc::now()).unwrap();
    let visits = store.visit_ids().unwrap();
    assert!(!visits.is_empty());
    drop(store);

    // An office the old runner made (no history table, user_version counting its files), holding that
    // school and a phone enrolled a day ago, its token in the old `devices` table.
    let dir = tempfile::tempdir().unwrap();
    let conn = made_by_the_old_runner(dir.path(), OLD_RUNNER_FILES);
    conn.execute(
        "ATTACH DATABASE ?1 AS made",
        [made.path().join("office.sqlite3").to_str().unwrap()],
    )
    .unwrap();
    conn.execute_batch(
        "INSERT INTO schools SELECT id, name, office_phone, policy FROM made.schools;
         INSERT INTO staff SELECT * FROM made.staff;
         INSERT INTO pupils SELECT * FROM made.pupils;
         INSERT INTO visits SELECT * FROM made.visits;
         INSERT INTO visit_staff SELECT * FROM made.visit_staff;
         INSERT INTO events SELECT * FROM made.events;
         DETACH DATABASE made;",
    )
    .unwrap();
    let enrolled = chrono::Utc::now() - chrono::TimeDelta::days(1);
    let token = "a-token-from-before-enrolment-codes";
    let hash = doorstep_office::store::token_hash(token);
    conn.execute(
        "INSERT INTO devices (id, staff_id, token_sha256, enrolled_at) VALUES ('phone-old', 'sam', ?1, ?2)",
        [hash, enrolled.to_rfc3339()],
    )
    .unwrap();
    drop(conn);

    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(store.visit_ids().unwrap(), visits);
    assert!(store.visit(&visits[0]).unwrap().is_some());
    let device = store
        .authenticate(token, chrono::Utc::now())
        .unwrap()
        .expect("the old phone's token still works");
    assert_eq!(device.id.as_str(), "phone-old");
    let listed = store
        .school_devices(&"demo-primary".parse().unwrap())
        .unwrap();
    let old = listed
        .iter()
        .find(|d| d.id.as_str() == "phone-old")
        .unwrap();
    let expires = old.credential_expires_at.expect("a current credential");
    assert!(
        (expires - enrolled - chrono::TimeDelta::days(30))
            .num_seconds()
            .abs()
            <= 1,
        "it gets the usual 30 days from its enrolment: {enrolled} to {expires}"
    );
}

#[test]
fn a_database_from_a_newer_office_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let conn = made_by_the_old_runner(dir.path(), OLD_RUNNER_FILES);
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let before = schema(dir.path());
    assert!(matches!(
        SqliteStore::open(dir.path()),
        Err(StoreError::NewerSchema(99))
    ));
    assert_eq!(schema(dir.path()), before);

    // And a database this build migrated is refused by a build that knows fewer migrations: its
    // user_version says so.
    let dir = tempfile::tempdir().unwrap();
    drop(SqliteStore::open(dir.path()).unwrap());
    let conn = rusqlite::Connection::open(dir.path().join("office.sqlite3")).unwrap();
    let user_version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(user_version, latest_version());
}
