//! Schema migrations for both SQLite databases, the phone's event log and the office's store, through
//! refinery: each database lists its `V{n}__{name}.sql` files, [`run`] applies the ones it has not seen.
//!
//! refinery records what it applied, with a checksum of each file, in `refinery_schema_history`, refuses a
//! database whose applied files were since edited or that holds a migration this build does not know, and
//! (chosen here: `set_grouped`) applies everything pending in one transaction, so a crash leaves either the
//! old schema or the new one. It also speaks PostgreSQL, for the office's planned second backend.
//!
//! Databases made before refinery tracked their progress in `PRAGMA user_version` (the number of files
//! applied, in the listed order). [`run`] recognises one (a `user_version` but no history table), records
//! its first `user_version` migrations as applied without running them, then carries on. Afterwards it
//! keeps `user_version` equal to the latest version, so an older Doorstep build refuses the newer database
//! instead of writing into a schema it does not know.
//!
//! One clock read happens here: refinery stamps each history row with the time it was applied. That stamp
//! is bookkeeping about the file, never a time the domain sees.

use refinery::{Migration, Runner, Target};
use rusqlite::Connection;

/// One migration file: its refinery name (`V3__notifications`) and its SQL, which starts with a one-line
/// comment saying why it exists.
pub type MigrationFile = (&'static str, &'static str);

/// The table refinery keeps its history in (refinery's default name, spelled out because [`run`] looks for
/// it to recognise a database from before refinery).
const HISTORY_TABLE: &str = "refinery_schema_history";

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("the database was written by a newer Doorstep (schema {0})")]
    NewerSchema(i64),
    #[error("database error while migrating: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("migration failed: {0}")]
    Refinery(#[from] refinery::Error),
}

/// Brings the database on `conn` up to the latest of `files`, which are listed in version order.
pub fn run(conn: &mut Connection, files: &[MigrationFile]) -> Result<(), MigrateError> {
    let migrations = files
        .iter()
        .map(|(name, sql)| Migration::unapplied(name, sql))
        .collect::<Result<Vec<_>, _>>()?;
    let latest = migrations.iter().map(Migration::version).max().unwrap_or(0);

    let has_history: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
        [HISTORY_TABLE],
        |row| row.get(0),
    )?;
    if has_history {
        let newest: Option<i64> = conn.query_row(
            &format!("SELECT MAX(version) FROM {HISTORY_TABLE}"),
            [],
            |row| row.get(0),
        )?;
        if let Some(newest) = newest.filter(|newest| *newest > i64::from(latest)) {
            return Err(MigrateError::NewerSchema(newest));
        }
    } else {
        let user_version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
        if user_version > i64::from(latest) {
            return Err(MigrateError::NewerSchema(user_version));
        }
        if user_version > 0 {
            // The old runner applied the first `user_version` files in this same order: record them as
            // applied, without running them again.
            let applied =
                i32::try_from(user_version).map_err(|_| MigrateError::NewerSchema(user_version))?;
            Runner::new(&migrations)
                .set_target(Target::FakeVersion(applied))
                .run(conn)?;
        }
    }

    let runner = Runner::new(&migrations).set_grouped(true);
    runner.run(conn)?;
    conn.pragma_update(None, "user_version", latest)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: MigrationFile = (
        "V1__people",
        "-- Why: a test.\nCREATE TABLE people (name TEXT NOT NULL);",
    );
    const V2: MigrationFile = (
        "V2__ages",
        "-- Why: a test.\nALTER TABLE people ADD COLUMN age INTEGER;",
    );
    const V3: MigrationFile = (
        "V3__pets",
        "-- Why: a test.\nCREATE TABLE pets (name TEXT NOT NULL);",
    );

    fn user_version(conn: &Connection) -> i64 {
        conn.query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap()
    }

    fn tables(conn: &Connection) -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap();
        stmt.query_map([], |row| row.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn a_new_database_gets_every_migration_and_a_second_run_changes_nothing() {
        let mut conn = Connection::open_in_memory().unwrap();
        run(&mut conn, &[V1, V2, V3]).unwrap();
        assert_eq!(tables(&conn), ["people", "pets", HISTORY_TABLE]);
        assert_eq!(user_version(&conn), 3);
        conn.execute("INSERT INTO people (name, age) VALUES ('Ava', 7)", [])
            .unwrap();
        run(&mut conn, &[V1, V2, V3]).unwrap();
        let count: i64 = conn
            .query_row("SELECT COUNT(*) FROM people", [], |row| row.get(0))
            .unwrap();
        assert_eq!(count, 1);
    }

    #[test]
    fn a_database_from_the_user_version_runner_keeps_its_data_and_gets_only_what_it_lacks() {
        let mut conn = Connection::open_in_memory().unwrap();
        // As the old runner left it after two files: their SQL applied, user_version 2, no history table.
        conn.execute_batch(V1.1).unwrap();
        conn.execute_batch(V2.1).unwrap();
        conn.pragma_update(None, "user_version", 2).unwrap();
        conn.execute("INSERT INTO people (name, age) VALUES ('Ava', 7)", [])
            .unwrap();
        // Running V1 or V2 again would fail ("table people already exists", "duplicate column").
        run(&mut conn, &[V1, V2, V3]).unwrap();
        assert_eq!(tables(&conn), ["people", "pets", HISTORY_TABLE]);
        assert_eq!(user_version(&conn), 3);
        let applied: Vec<i64> = conn
            .prepare("SELECT version FROM refinery_schema_history ORDER BY version")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(applied, [1, 2, 3]);
        let age: i64 = conn
            .query_row("SELECT age FROM people WHERE name = 'Ava'", [], |row| {
                row.get(0)
            })
            .unwrap();
        assert_eq!(age, 7);
    }

    #[test]
    fn a_newer_database_is_refused_whichever_way_it_counts() {
        let mut old_style = Connection::open_in_memory().unwrap();
        old_style.pragma_update(None, "user_version", 9).unwrap();
        assert!(matches!(
            run(&mut old_style, &[V1, V2]),
            Err(MigrateError::NewerSchema(9))
        ));

        let mut newer = Connection::open_in_memory().unwrap();
        run(&mut newer, &[V1, V2, V3]).unwrap();
        assert!(matches!(
            run(&mut newer, &[V1, V2]),
            Err(MigrateError::NewerSchema(3))
        ));
        assert_eq!(tables(&newer), ["people", "pets", HISTORY_TABLE]);
    }

    #[test]
    fn an_applied_migration_edited_afterwards_is_refused_and_changes_nothing() {
        let mut conn = Connection::open_in_memory().unwrap();
        run(&mut conn, &[V1]).unwrap();
        let edited: MigrationFile = (
            "V1__people",
            "-- Why: a test.\nCREATE TABLE people (name TEXT NOT NULL, nickname TEXT);",
        );
        assert!(matches!(
            run(&mut conn, &[edited, V2]),
            Err(MigrateError::Refinery(_))
        ));
        assert_eq!(user_version(&conn), 1);
        assert_eq!(tables(&conn), ["people", HISTORY_TABLE]);
    }

    #[test]
    fn a_failing_migration_leaves_the_database_as_it_was() {
        let mut conn = Connection::open_in_memory().unwrap();
        run(&mut conn, &[V1]).unwrap();
        let broken: MigrationFile = ("V3__broken", "-- Why: a test.\nCREATE TABLE nonsense (;");
        assert!(run(&mut conn, &[V1, V2, broken]).is_err());
        // V2 and the broken V3 went in one transaction: neither is there.
        let columns: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM pragma_table_info('people') WHERE name = 'age'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(columns, 0);
        assert_eq!(user_version(&conn), 1);
        run(&mut conn, &[V1, V2, V3]).unwrap();
        assert_eq!(user_version(&conn), 3);
    }
}
