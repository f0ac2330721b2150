//! `deadlines`: how late the office raised each overdue alarm, read from its database after a run: the
//! alarm's `raised_at` against the moment it was due to be raised (the missed deadline plus the policy's
//! grace, which `seed` leaves at the primary preset's 5 minutes).

use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, TimeDelta, Utc};
use hdrhistogram::Histogram;
use rusqlite::{Connection, OpenFlags};

pub fn report(data_dir: &Path, since: Option<DateTime<Utc>>) -> anyhow::Result<()> {
    let conn = Connection::open_with_flags(
        data_dir.join("office.sqlite3"),
        OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .context("opening the office's database read-only")?;
    let grace = TimeDelta::minutes(5);
    let mut statement = conn.prepare(
        "SELECT due_at, raised_at FROM alarms WHERE kind = 'overdue' AND about = 'check_in'",
    )?;
    let rows = statement.query_map([], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
    })?;
    let mut late = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)?;
    let mut early = 0;
    for row in rows {
        let (due, raised) = row?;
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
