//! `backends`: the two office stores side by side, in this process: a phone's batch ingested through the
//! store's `Visits` trait (the ingest's checks, the events stored, each touched visit rebuilt, one
//! transaction a batch) on the embedded SQLite store and on PostgreSQL, by the same number of concurrent
//! tasks, each beside its own floor: a plain batched insert of the same rows into the same table, one
//! transaction a batch, on the same database (SQLite WAL with `synchronous=FULL`, one writer, as SQLite
//! takes one at a time; PostgreSQL by as many connections as the tasks, as the server is configured, which
//! `scripts/bench-backends` starts with `fsync` and `synchronous_commit` on).
//!
//! Each batch's time is measured from the call to its answer; the rate counts every event stored.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use doorstep_core::domain::{
    Address, Briefing, DbsCheck, DbsLevel, Pupil, RiskAssessment, Role, School, StaffMember, Visit,
    VisitPurpose, VisitStaff,
};
use doorstep_core::event::EventEnvelope;
use doorstep_core::policy::{PolicyMinutes, Preset};
use doorstep_office::store::backend::{Alarms, Batch, Visits};
use doorstep_office::store::postgres::PgStore;
use doorstep_office::store::Device;
use doorstep_office::SqliteStore;
use hdrhistogram::Histogram;

use crate::ingest::batch_for;
use crate::seed::Phone;

#[derive(Debug, clap::Args)]
pub struct BackendsArgs {
    /// An empty PostgreSQL database to measure in (URL or key=value string); its tables are made here.
    #[arg(long, value_name = "URL")]
    pub postgres: String,
    /// Events in each batch; each size is measured in turn.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 10, 100])]
    pub batch: Vec<usize>,
    /// How long to measure each.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Tasks ingesting at once (each with its own phones), as that many syncs arriving together.
    #[arg(long, default_value_t = 8)]
    pub tasks: usize,
}

/// Visits (and phones) each task has: enough that no phone reaches its per-visit quota while measured.
const VISITS_PER_TASK: usize = 300;

pub async fn run(args: BackendsArgs) -> anyhow::Result<()> {
    let tasks = args.tasks.max(1);
    let dir = tempfile::tempdir().context("a temporary folder")?;
    let sqlite = Arc::new(SqliteStore::open(dir.path())?);
    let postgres = Arc::new(
        PgStore::connect(&args.postgres, tasks + 2)
            .await
            .context("connecting to PostgreSQL")?,
    );
    println!(
        "SQLite on {}; PostgreSQL at {}",
        crate::ingest::filesystem_of(dir.path()),
        args.postgres
    );
    println!(
        "{tasks} task(s) ingesting at once; floors one transaction a batch: SQLite's one writer (SQLite \
         takes one at a time), PostgreSQL's {tasks} at once"
    );
    println!(
        "{:>10}  {:>5}  {:>10}  {:>8}  {:>8}  {:>12}  {:>5}",
        "backend", "batch", "events/s", "p50 ms", "p99 ms", "floor rows/s", "ratio"
    );
    let mut sqlite_phones = seed(&*sqlite, tasks * VISITS_PER_TASK).await?;
    let mut postgres_phones = seed(&*postgres, tasks * VISITS_PER_TASK).await?;
    let floor_dir = tempfile::tempdir()?;
    let for_how_long = Duration::from_secs(args.seconds);
    for &size in &args.batch {
        let (rate, latency) =
            ingest(&sqlite, &mut sqlite_phones, size, tasks, for_how_long).await?;
        let floor = crate::ingest::plain_insert(floor_dir.path(), size, for_how_long)?;
        report("SQLite", size, rate, &latency, floor);
        let (rate, latency) =
            ingest(&postgres, &mut postgres_phones, size, tasks, for_how_long).await?;
        let floor = postgres_floor(&args.postgres, size, tasks, for_how_long).await?;
        report("PostgreSQL", size, rate, &latency, floor);
    }
    Ok(())
}

fn report(backend: &str, size: usize, rate: f64, latency: &Histogram<u64>, floor: f64) {
    let ms = |q: f64| latency.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{backend:>10}  {size:>5}  {rate:>10.0}  {:>8.2}  {:>8.2}  {floor:>12.0}  {:>5.2}",
        ms(0.5),
        ms(0.99),
        rate / floor
    );
}

/// A school with `count` visiting staff, each with one phone and one visit of their own, written through
/// the store's trait; the phones, numbering their events from 1.
async fn seed<S: Visits>(store: &S, count: usize) -> anyhow::Result<Vec<(Device, Phone)>> {
    let school = School {
        id: "bench-school".parse()?,
        name: "Bench Primary".into(),
        office_phone: "01632 960000".parse()?,
        time_zone: Default::default(),
    };
    store
        .add_school(&school, &Preset::PrimaryHeadteacher.policy())
        .await?;
    let pupil = Pupil {
        id: "bench-pupil".parse()?,
        name: "A. Pupil".into(),
    };
    store.add_pupil(&school.id, &pupil).await?;
    let mut phones = Vec::with_capacity(count);
    for n in 0..count {
        let member = StaffMember {
            id: format!("staff-{n}").parse()?,
            name: format!("Staff {n}"),
            roles: vec![Role::VisitingStaff],
            phone: "07700 900003".parse()?,
            dbs: Some(DbsCheck {
                level: DbsLevel::EnhancedWithBarredList,
                checked_on: chrono::NaiveDate::from_ymd_opt(2025, 9, 1).context("a date")?,
            }),
        };
        store.add_staff(&school.id, &member).await?;
        let visit = Visit {
            id: format!("visit-{n}").parse()?,
            school: school.id.clone(),
            purpose: VisitPurpose::SafeAndWellCheck,
            pupil: pupil.clone(),
            address: Address {
                lines: vec!["1 Bench Road".into()],
                postcode: "OK1 2AB".parse()?,
            },
            agreed_time: Utc::now(),
            expected_length: PolicyMinutes::new(45)?,
            staff: vec![VisitStaff::from(&member)],
            briefing: Briefing::new(RiskAssessment::standard()),
        };
        store.add_visit(&visit).await?;
        let device = Device {
            id: format!("phone-{n}").parse()?,
            staff: member.id.clone(),
            school: school.id.clone(),
            credential_issued_at: Utc::now(),
        };
        let phone = Phone {
            device: device.id.clone(),
            token: String::new(),
            staff: member.id,
            visit: visit.id,
            next_seq: 1,
            cursor: None,
        };
        phones.push((device, phone));
    }
    Ok(phones)
}

/// `tasks` tasks ingesting batches of `size` through `store` for `for_how_long`, each from its own phones
/// in turn: events stored per second, and each batch's time.
async fn ingest<S: Visits + Alarms>(
    store: &Arc<S>,
    phones: &mut [(Device, Phone)],
    size: usize,
    tasks: usize,
    for_how_long: Duration,
) -> anyhow::Result<(f64, Histogram<u64>)> {
    let began = Instant::now();
    let per_task = phones.len().div_ceil(tasks);
    let mut workers = Vec::new();
    for chunk in phones.chunks(per_task) {
        let store = store.clone();
        let mut chunk = chunk.to_vec();
        workers.push(tokio::spawn(async move {
            let mut latency = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
            let mut done = 0;
            let mut round = 0;
            while began.elapsed() < for_how_long {
                let at = round % chunk.len();
                let (device, phone) = &mut chunk[at];
                let events = batch_for(phone, size);
                let now = Utc::now();
                let sent = Instant::now();
                store
                    .ingest(Batch {
                        device,
                        events: &events,
                        device_time: now,
                        now,
                    })
                    .await
                    .map_err(|e| anyhow::anyhow!("ingest: {e}"))?;
                latency.record(sent.elapsed().as_micros().max(1) as u64)?;
                done += size;
                round += 1;
            }
            Ok::<_, anyhow::Error>((done, chunk, latency))
        }));
    }
    let mut stored = 0;
    let mut latency = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    let mut next = phones.chunks_mut(per_task);
    for worker in workers {
        let (done, chunk, seen) = worker.await??;
        stored += done;
        latency.add(&seen)?;
        // The phones' next sequence numbers, for the next batch size.
        if let Some(slot) = next.next() {
            slot.clone_from_slice(&chunk);
        }
    }
    Ok((stored as f64 / began.elapsed().as_secs_f64(), latency))
}

/// PostgreSQL's floor: the same rows, into a table with the same columns and keys, one transaction a
/// batch, nothing else, by as many connections at once as the office's tasks (PostgreSQL, unlike SQLite,
/// takes concurrent writers, and shares its log's flushes between their commits).
async fn postgres_floor(
    url: &str,
    size: usize,
    tasks: usize,
    for_how_long: Duration,
) -> anyhow::Result<f64> {
    let table = format!("floor_{size}");
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    let connection = tokio::spawn(connection);
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {table};
             CREATE TABLE {table} (
                id TEXT PRIMARY KEY, device_id TEXT NOT NULL, seq BIGINT NOT NULL, visit_id TEXT NOT NULL,
                staff_id TEXT NOT NULL, recorded_at TEXT NOT NULL, received_at TEXT NOT NULL,
                body TEXT NOT NULL, trusted_at TEXT, UNIQUE (device_id, seq));
             CREATE INDEX {table}_by_visit ON {table} (visit_id);"
        ))
        .await?;
    drop(client);
    let _ = connection.await;
    let began = Instant::now();
    let mut writers = Vec::new();
    for writer in 0..tasks {
        let (url, table) = (url.to_owned(), table.clone());
        writers.push(tokio::spawn(async move {
            let (mut client, connection) =
                tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
            let connection = tokio::spawn(connection);
            let insert = client
                .prepare(&format!(
                    "INSERT INTO {table} (id, device_id, seq, visit_id, staff_id, recorded_at, received_at, body, trusted_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                ))
                .await?;
            let mut phone = Phone {
                device: format!("floor-phone-{writer}").parse()?,
                token: String::new(),
                staff: "floor-staff".parse()?,
                visit: "floor-visit".parse()?,
                next_seq: 1,
                cursor: None,
            };
            let mut done = 0;
            while began.elapsed() < for_how_long {
                let batch: Vec<EventEnvelope> = batch_for(&mut phone, size);
                let now = Utc::now().to_rfc3339();
                let tx = client.transaction().await?;
                for envelope in &batch {
                    let seq = i64::try_from(envelope.seq.get())?;
                    tx.execute(
                        &insert,
                        &[
                            &envelope.id.to_string(),
                            &envelope.device.as_str(),
                            &seq,
                            &envelope.visit.as_str(),
                            &envelope.event.actor().as_str(),
                            &envelope.recorded_at.to_rfc3339(),
                            &now,
                            &serde_json::to_string(envelope)?,
                            &now,
                        ],
                    )
                    .await?;
                }
                tx.commit().await?;
                done += size;
            }
            drop(client);
            let _ = connection.await;
            Ok::<_, anyhow::Error>(done)
        }));
    }
    let mut done = 0;
    for writer in writers {
        done += writer.await??;
    }
    Ok(done as f64 / began.elapsed().as_secs_f64())
}
