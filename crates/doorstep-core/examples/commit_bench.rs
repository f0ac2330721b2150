//! Event commit latency on this machine: records N events in a fresh `EventLog` (SQLite WAL,
//! `synchronous=FULL`) and prints p50/p90/p99/max of `record`, which returns only after the commit is on
//! disk. The brief's target is p99 under 5 ms on a phone; see docs/benchmarks.md for what this does not show.
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

    let mut timings = Vec::with_capacity(events);
    for n in 0..events {
        let event = VisitEvent::CheckedIn {
            staff: staff.clone(),
        };
        let now = start + TimeDelta::seconds(n as i64);
        let began = Instant::now();
        log.record(&visit, event, now)?;
        timings.push(began.elapsed());
    }
    timings.sort_unstable();

    println!("doorstep-core commit_bench: EventLog::record (SQLite WAL, synchronous=FULL), one event per commit");
    println!(
        "temp dir: {} ({})",
        dir.path().display(),
        file_system(dir.path())
    );
    println!("events:   {events}");
    println!("p50:      {:.3} ms", ms(percentile(&timings, 50.0)));
    println!("p90:      {:.3} ms", ms(percentile(&timings, 90.0)));
    println!("p99:      {:.3} ms", ms(percentile(&timings, 99.0)));
    println!("max:      {:.3} ms", ms(timings[timings.len() - 1]));
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
