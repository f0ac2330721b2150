//! Event commit latency on this machine: records N events in a fresh `EventLog` (SQLite WAL,
//! `synchronous=FULL`) and prints p50/p90/p99/max of `record`, which returns only after the commit is on
//! disk. Beside it, in the same run and on the same disk, the floor: a bare `INSERT` of a row of similar size
//! into a plain table in its own file with the same pragmas (WAL, `synchronous=FULL`), one row per commit,
//! the two taking turns so that both see the disk as it is at that moment. The brief's target is p99 under
//! 5 ms on a phone; see docs/performance.md for what this does not show.
//!
//! `cargo run --release -p doorstep-core --example commit_bench [events]` (default 2000).

// A benchmark's report is its output.
#![allow(clippy::print_stdout)]

use std::error::Error;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, TimeZone, Utc};
use doorstep_core::event_log::EventLog;
use doorstep_core::ids::{DeviceId, StaffId, VisitId};
use doorstep_core::lifecycle::VisitEvent;

const DEFAULT_EVENTS: usize = 2000;

fn main() -> Result<(), Box<dyn Error>> {
    let events = match std::env::args().nth(1) {
        Some(text) => text
            .parse::<usize>()
            .map_err(|e| format!("the event count {text:?} is not a number: {e}"))?,
        None => DEFAULT_EVENTS,
    };
    if events == 0 {
        return Err("record at least one event".into());
    }
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("doorstep.sqlite");
    let mut log = EventLog::open(&path, &DeviceId::parse("phone-bench")?)?;
    let visit = VisitId::parse("visit-bench")?;
    let staff = StaffId::parse("sam")?;
    let start = Utc
        .with_ymd_and_hms(2026, 3, 2, 9, 0, 0)
        .single()
        .ok_or("the start time is valid")?;

    let floor = rusqlite::Connection::open(dir.path().join("floor.sqlite"))?;
    floor.pragma_update(None, "journal_mode", "WAL")?;
    floor.pragma_update(None, "synchronous", "FULL")?;
    floor.execute_batch("CREATE TABLE rows (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")?;
    let mut insert = floor.prepare("INSERT INTO rows (body) VALUES (?1)")?;
    // The floor's row: the check-in event's JSON four times over, nearer the size of the envelope `record`
    // stores than the bare event is.
    let body = serde_json::to_string(&VisitEvent::CheckedIn {
        staff: staff.clone(),
    })?
    .repeat(4);

    let mut timings = Vec::with_capacity(events);
    let mut floor_timings = Vec::with_capacity(events);
    for n in 0..events {
        let event = VisitEvent::CheckedIn {
            staff: staff.clone(),
        };
        let now = start + TimeDelta::seconds(n as i64);
        let began = Instant::now();
        log.record(&visit, event, now)?;
        timings.push(began.elapsed());
        let began = Instant::now();
        insert.execute([&body])?;
        floor_timings.push(began.elapsed());
    }
    timings.sort_unstable();
    floor_timings.sort_unstable();

    println!("doorstep-core commit_bench: EventLog::record (SQLite WAL, synchronous=FULL), one event per commit");
    println!(
        "temp dir: {} ({})",
        dir.path().display(),
        file_system(dir.path())
    );
    println!("events:   {events}");
    println!("            record    bare INSERT (floor)   ratio");
    for (label, p) in [("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("max", 100.0)] {
        let (ours, bare) = (percentile(&timings, p), percentile(&floor_timings, p));
        println!(
            "{label}:      {:>7.3} ms  {:>7.3} ms            {:.1}x",
            ms(ours),
            ms(bare),
            ms(ours) / ms(bare).max(f64::MIN_POSITIVE)
        );
    }
    println!("target:   p99 under 5 ms on a phone (this machine's disk is not a phone's flash)");
    Ok(())
}

/// The nearest-rank percentile of sorted, non-empty `timings`.
fn percentile(timings: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * timings.len() as f64).ceil() as usize;
    timings[rank.clamp(1, timings.len()) - 1]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// The type of the file system holding `path`, from /proc/mounts (Linux only; "unknown" elsewhere).
fn file_system(path: &Path) -> String {
    let Ok(path) = path.canonicalize() else {
        return "unknown".into();
    };
    let Ok(mounts) = std::fs::read_to_string("/proc/mounts") else {
        return "unknown".into();
    };
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (device, mount, kind) = (fields.next()?, fields.next()?, fields.next()?);
            path.starts_with(mount)
                .then(|| (mount.len(), format!("{kind} on {mount}, device {device}")))
        })
        .max_by_key(|(length, _)| *length)
        .map_or_else(|| "unknown".into(), |(_, described)| described)
}
