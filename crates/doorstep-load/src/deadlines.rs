//! `deadlines`: how late the office raised each overdue alarm, read from its database after a run (the
//! SQLite file in the data folder, or the PostgreSQL database `DOORSTEP_DATABASE_URL` names): the
//! alarm's `raised_at` against the moment it was due to be raised (the missed deadline plus the policy's
//! grace, which `seed` leaves at the primary preset's 5 minutes).

use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, TimeDelta, Utc};
use hdrhistogram::Histogram;
use rusqlite::{Connection, OpenFlags};

/// The overdue check-in alarms' due and raised times, as stored.
const OVERDUE: &str =
    "SELECT due_at, raised_at FROM alarms WHERE kind = 'overdue' AND about = 'check_in'";

pub async fn report(data_dir: &Path, since: Option<DateTime<Utc>>) -> anyhow::Result<()> {
    let rows = match std::env::var("DOORSTEP_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .context("connecting to PostgreSQL")?;
            let connection = tokio::spawn(connection);
            let rows = client
                .query(OVERDUE, &[])
                .await?
                .iter()
                .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
                .collect::<anyhow::Result<Vec<(String, String)>>>()?;
            drop(client);
            let _ = connection.await;
            rows
        }
        _ => {
            let conn = Connection::open_with_flags(
                data_dir.join("office.sqlite3"),
                OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .context("opening the office's database read-only")?;
            let mut statement = conn.prepare(OVERDUE)?;
            let rows = statement
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<Result<Vec<(String, String)>, _>>()?;
            rows
        }
    };
    let grace = TimeDelta::minutes(5);
    let mut late = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)?;
    let mut early = 0;
    for (due, raised) in rows {
        let due = DateTime::parse_from_rfc3339(&due)?.with_timezone(&Utc);
        let raised = DateTime::parse_from_rfc3339(&raised)?.with_timezone(&Utc);
        if since.is_some_and(|since| raised < since) {
            continue;
        }
        let lateness = raised - (due + grace);
        match lateness.num_microseconds() {
            Some(us) if us >= 0 => {
                let _ = late.record(us.max(1) as u64);
            }
            _ => early += 1,
        }
    }
    let ms = |q: f64| late.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "overdue check-in alarms: {}  lateness p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms  (raised early: {early})",
        late.len(),
        ms(0.5),
        ms(0.99),
        late.max() as f64 / 1000.0
    );
    Ok(())
}
