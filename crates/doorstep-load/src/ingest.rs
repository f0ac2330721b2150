//! `ingest`: the office store's ingest (checks, the events stored, each touched visit's state rebuilt, one
//! fsynced transaction a batch) beside the floor: a plain batched insert of the same rows, with the same
//! table, keys and settings (WAL, `synchronous=FULL`), one transaction a batch. Both in this process, one
//! after the other, on the same disk. With `--threads N` the office's store is driven by N threads at once,
//! as N syncs arriving together would (its group commit then stores their batches in shared commits); the
//! floor stays one writer, one transaction a batch.

use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{TimeDelta, Utc};
use doorstep_core::event::EventEnvelope;
use doorstep_core::ids::{DeviceSeq, EventId};
use doorstep_core::lifecycle::VisitEvent;
use doorstep_office::store::Device;
use doorstep_office::SqliteStore;
use rusqlite::Connection;

use crate::seed::{read_phones, seed, Phone, SeedArgs};

#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    /// Events in each batch (one sync request's worth); each size is measured in turn.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 10, 100])]
    pub batch: Vec<usize>,
    /// How long to measure each.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Threads driving the office's store at once (each with its own phones).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

pub fn run(args: IngestArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("a temporary folder")?;
    // Enough visits that no phone reaches its per-visit quota while being measured: more threads store
    // more events in the same time, so each thread has 600 visits of its own.
    let seeding = SeedArgs {
        data_dir: dir.path().to_owned(),
        visits: 600 * args.threads.max(1),
        alarms_from: 60,
        history: 0,
    };
    seed(&SqliteStore::open(dir.path())?.into(), &seeding)?;
    let store = SqliteStore::open(dir.path())?;
    let mut phones = read_phones(&crate::seed::phones_file(dir.path()))?;
    let devices: Vec<Device> = phones
        .iter()
        .map(|p| {
            store
                .authenticate(&p.token, Utc::now())?
                .context("a seeded phone")
        })
        .collect::<anyhow::Result<_>>()?;
    println!("filesystem: {}", filesystem_of(dir.path()));
    let threads = args.threads.clamp(1, phones.len().max(1));
    println!("office driven by {threads} thread(s) at once; the floor by one");
    println!(
        "{:>6}  {:>16}  {:>18}  {:>6}",
        "batch", "office events/s", "plain insert rows/s", "ratio"
    );
    let floor_dir = tempfile::tempdir()?;
    for &size in &args.batch {
        let for_how_long = Duration::from_secs(args.seconds);
        let began = Instant::now();
        let per_thread = phones.len().div_ceil(threads);
        let stored = std::thread::scope(|scope| -> anyhow::Result<usize> {
            let workers: Vec<_> = phones
                .chunks_mut(per_thread)
                .zip(devices.chunks(per_thread))
                .map(|(phones, devices)| {
                    let store = &store;
                    scope.spawn(move || {
                        let mut done = 0;
                        let mut round = 0;
                        while began.elapsed() < for_how_long {
                            let at = round % phones.len();
                            let batch = batch_for(&mut phones[at], size);
                            let now = Utc::now();
                            store
                                .ingest(&devices[at], &batch, now, now)
                                .map_err(|e| anyhow::anyhow!("ingest: {e}"))?;
                            done += size;
                            round += 1;
                        }
                        Ok::<_, anyhow::Error>(done)
                    })
                })
                .collect();
            let mut total = 0;
            for worker in workers {
                total += worker
                    .join()
                    .map_err(|_| anyhow::anyhow!("an ingest thread panicked"))??;
            }
            Ok(total)
        })?;
        let office = stored as f64 / began.elapsed().as_secs_f64();
        let floor = plain_insert(floor_dir.path(), size, Duration::from_secs(args.seconds))?;
        println!(
            "{size:>6}  {office:>16.0}  {floor:>18.0}  {:>6.2}",
            office / floor
        );
    }
    Ok(())
}

/// Events per second `step` manages over `for_how_long` (each call returns how many it stored).
fn measure(
    for_how_long: Duration,
    mut step: impl FnMut(usize) -> anyhow::Result<usize>,
) -> anyhow::Result<f64> {
    let began = Instant::now();
    let mut done = 0;
    let mut round = 0;
    while began.elapsed() < for_how_long {
        done += step(round)?;
        round += 1;
    }
    Ok(done as f64 / began.elapsed().as_secs_f64())
}

/// `size` check-ins from `phone`, stamped now.
pub(crate) fn batch_for(phone: &mut Phone, size: usize) -> Vec<EventEnvelope> {
    let now = Utc::now() - TimeDelta::milliseconds(1);
    (0..size)
        .map(|_| {
            let seq = DeviceSeq::new(phone.next_seq).expect("a sequence number in range");
            phone.next_seq += 1;
            EventEnvelope {
                id: EventId::new_v7(),
                device: phone.device.clone(),
                seq,
                visit: phone.visit.clone(),
                recorded_at: now,
                event: VisitEvent::CheckedIn {
                    staff: phone.staff.clone(),
                },
            }
        })
        .collect()
}

/// The floor: the same rows into the same table and keys (written by the office's own insert), one
/// transaction per batch, nothing else.
pub(crate) fn plain_insert(
    dir: &std::path::Path,
    size: usize,
    for_how_long: Duration,
) -> anyhow::Result<f64> {
    let path = dir.join(format!("floor-{size}.sqlite3"));
    let mut conn = Connection::open(&path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(
        "CREATE TABLE events (
            id TEXT PRIMARY KEY, device_id TEXT NOT NULL, seq INTEGER NOT NULL, visit_id TEXT NOT NULL,
            staff_id TEXT NOT NULL, recorded_at TEXT NOT NULL, received_at TEXT NOT NULL, body TEXT NOT NULL,
            trusted_at TEXT, UNIQUE (device_id, seq)) STRICT;
         CREATE INDEX events_by_visit ON events (visit_id);",
    )?;
    let mut phone = Phone {
        device: "floor-phone".parse()?,
        token: String::new(),
        staff: "floor-staff".parse()?,
        visit: "floor-visit".parse()?,
        next_seq: 1,
        cursor: None,
    };
    measure(for_how_long, |_| {
        let batch = batch_for(&mut phone, size);
        let now = Utc::now();
        let tx = conn.transaction()?;
        for envelope in &batch {
            // The office's own insert, so the floor cannot drift from what the office writes.
            doorstep_office::store::insert_event(&tx, envelope, now, now)?;
        }
        tx.commit()?;
        Ok(size)
    })
}

/// Which filesystem and device a folder is on (from /proc/mounts), for the report.
pub fn filesystem_of(dir: &std::path::Path) -> String {
    let Ok(mounts) = std::fs::read_to_string("/proc/mounts") else {
        return "unknown".into();
    };
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (device, point, kind) = (fields.next()?, fields.next()?, fields.next()?);
            dir.starts_with(point)
                .then(|| (point.len(), format!("{kind} on {point} ({device})")))
        })
        .max_by_key(|(len, _)| *len)
        .map_or_else(|| "unknown".into(), |(_, what)| what)
}
