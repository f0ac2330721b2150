//! `doorstep-load`: a load generator for the office, run as a process of its own against a running office
//! (so the office's cores, memory and threads are its own), and the floors each figure is set against.
//!
//! - `seed`: fills an empty office data folder with a school, its staff, enrolled phones and visits in
//!   progress (the office then holds their deadlines), and writes the phones' credentials to a file.
//! - `sync` / `health`: an open loop of requests at a fixed rate: each request has an intended send time,
//!   and its latency is measured from that time, so an office that stalls cannot hide its queue (the
//!   requests that would have been sent meanwhile are late, and counted so). `health` is the floor for
//!   `sync`: the same loop on the cheapest endpoint.
//! - `ingest`: in this process, the office store's ingest of batches of 1, 10 and 100 events beside a plain
//!   batched SQLite insert of the same rows into a file with the same settings (the floor).
//! - `backends`: in this process, a phone's batch ingested through the store's trait on SQLite and on
//!   PostgreSQL by the same concurrent tasks, each beside its own plain batched insert.
//! - `duress`: from a phone's fsynced record of an alert to the alarm on the office board's live stream,
//!   beside its floor (one fsynced insert and one HTTP round trip).
//! - `deadlines`: how late the office raised each overdue alarm, read from its database after a run.
//!
//! `docs/performance.md` has the commands, the machine and the figures.

// A load generator's report is its output.
#![allow(clippy::print_stdout)]
// It stamps events with the real time, as a phone would (the office may not read the clock: clippy.toml).
#![allow(clippy::disallowed_methods)]

mod backends;
mod deadlines;
mod duress;
mod ingest;
mod open_loop;
mod seed;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "doorstep-load",
    about = "Load and floors for the Doorstep office"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Fill an empty office data folder with phones and visits in progress.
    Seed(seed::SeedArgs),
    /// Phones syncing at a fixed rate against a running office.
    Sync(open_loop::SyncArgs),
    /// The floor for `sync`: GET /api/v1/health at a fixed rate.
    Health(open_loop::HealthArgs),
    /// The office store's ingest beside a plain batched insert (in this process).
    Ingest(ingest::IngestArgs),
    /// From a phone's alert to the alarm on the board's live stream, beside its floor.
    Duress(duress::DuressArgs),
    /// A phone's batch ingested on the SQLite store and on PostgreSQL side by side, each beside its floor
    /// (in this process).
    Backends(backends::BackendsArgs),
    /// How late the office raised overdue alarms, from its database.
    Deadlines {
        /// The office's data folder (it holds office.sqlite3).
        #[arg(long)]
        data_dir: PathBuf,
        /// Only alarms raised at or after this time (RFC 3339), e.g. when the run began.
        #[arg(long)]
        since: Option<chrono::DateTime<chrono::Utc>>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Cmd::Seed(args) => seed::run(args).await,
        Cmd::Sync(args) => open_loop::sync(args).await,
        Cmd::Health(args) => open_loop::health(args).await,
        Cmd::Ingest(args) => ingest::run(args),
        Cmd::Duress(args) => duress::run(args).await,
        Cmd::Backends(args) => backends::run(args).await,
        Cmd::Deadlines { data_dir, since } => deadlines::report(&data_dir, since).await,
    }
}
