//! The fault harness (issue 9): the phone's real store and sync loop, in a process of its own, talking
//! through a seeded fault-injecting proxy to the real `doorstep-office` binary. The proxy refuses, delays,
//! duplicates, cuts after commit, throttles to 2G and holds connections open in silence; the office is
//! SIGKILLed around its commit and the phone between its write, its send and the answer, and both are
//! started again. After every run the checks in `checks.rs` compare the two databases.
//!
//! - `cargo test -p doorstep --test fault` (part of `cargo test --workspace`): the CI sample, one seed for
//!   each kind of last fault, then the named scenarios (`scenarios.rs`): an alert and a step behind a
//!   silently dead connection, and a day offline delivered over 2G.
//! - `cargo test --release -p doorstep --test fault -- --runs 1000`: the proof, seeds 0 to 999, printing
//!   lost / duplicated / falsely confirmed / stuck and the latencies (`docs/reliability.md`). Build the
//!   office first in the same profile: `cargo build --release -p doorstep-office`.
//! - `-- --seed N --runs 1 --keep`: one seed again, keeping its folder (databases and both logs).
//!
//! Runs are reproducible from the seed: the seed fixes every choice (faults, their lengths, kill points,
//! what the person does and when); only the operating system's scheduling differs between two runs.

mod checks;
mod office;
mod phone;
mod plan;
mod proxy;
mod report;
mod rng;
mod run;
mod scenarios;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use plan::{FaultKind, Plan};

/// The named parts of the default (CI) run, for test-name filters.
const SAMPLE: &str = "fault::seeded_sample";
const DEAD_CONNECTION: &str = "fault::alert_and_step_behind_a_silently_dead_connection";
const LONG_OFFLINE: &str = "fault::a_day_offline_then_2g";

struct Options {
    runs: Option<u64>,
    first_seed: u64,
    jobs: usize,
    keep: bool,
    filters: Vec<String>,
    list: bool,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        runs: None,
        first_seed: 0,
        jobs: 4,
        keep: false,
        filters: Vec::new(),
        list: false,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut number = |what: &str| -> Result<u64, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{arg} needs {what}"))
        };
        match arg.as_str() {
            "--runs" => options.runs = Some(number("a number of runs")?),
            "--seed" => options.first_seed = number("a seed")?,
            "--jobs" => options.jobs = number("a number of runs at once")?.max(1) as usize,
            "--keep" => options.keep = true,
            "--list" => options.list = true,
            // What cargo and libtest-minded tools may pass; nothing here needs them.
            "--nocapture" | "--exact" | "--quiet" | "-q" | "--show-output"
            | "--include-ignored" | "--ignored" => {}
            "--test-threads" | "--format" | "--color" | "--skip" | "-Z" => {
                it.next();
            }
            other if other.starts_with("--") => return Err(format!("unknown option {other}")),
            filter => options.filters.push(filter.to_owned()),
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(phone::CHILD_ARG) {
        return phone::child_main(&args[1..]);
    }
    let options = match parse(&args) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("fault harness: {error}");
            return ExitCode::from(2);
        }
    };
    let names = [SAMPLE, DEAD_CONNECTION, LONG_OFFLINE];
    let wanted = |name: &str| {
        options.filters.is_empty() || options.filters.iter().any(|f| name.contains(f.as_str()))
    };
    if options.list {
        let mut out = std::io::stdout().lock();
        for name in names.iter().filter(|name| wanted(name)) {
            let _ = writeln!(out, "{name}: test");
        }
        return ExitCode::SUCCESS;
    }
    let binary = match office::office_binary() {
        Ok(binary) => binary,
        Err(error) => {
            eprintln!("fault harness: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime for the harness");
    let parent = std::env::temp_dir();
    let ok = runtime.block_on(async {
        match options.runs {
            Some(runs) => {
                let seeds = options.first_seed..options.first_seed + runs;
                seeded(seeds, options.jobs, &binary, &parent, options.keep).await
            }
            None => {
                let mut ok = true;
                if wanted(SAMPLE) {
                    // One seed for each kind of last fault.
                    let seeds = 0..FaultKind::ALL.len() as u64;
                    ok &= seeded(seeds, options.jobs, &binary, &parent, options.keep).await;
                }
                if wanted(DEAD_CONNECTION) {
                    ok &= report_scenario(
                        DEAD_CONNECTION,
                        scenarios::dead_connection(&binary, &parent).await,
                    );
                }
                if wanted(LONG_OFFLINE) {
                    ok &= report_scenario(
                        LONG_OFFLINE,
                        scenarios::long_offline(&binary, &parent).await,
                    );
                }
                ok
            }
        }
    });
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn report_scenario(name: &str, outcome: Result<String, String>) -> bool {
    match outcome {
        Ok(summary) => {
            eprintln!("{name} ... ok\n{summary}");
            true
        }
        Err(failure) => {
            eprintln!("{name} ... FAILED\n{failure}");
            false
        }
    }
}

/// Runs the seeds, `jobs` at a time, prints the report; true if every run passed.
async fn seeded(
    seeds: std::ops::Range<u64>,
    jobs: usize,
    binary: &std::path::Path,
    parent: &std::path::Path,
    keep: bool,
) -> bool {
    let started = Instant::now();
    let total = seeds.end - seeds.start;
    let permits = Arc::new(tokio::sync::Semaphore::new(jobs));
    let mut running = tokio::task::JoinSet::new();
    for seed in seeds {
        let permits = permits.clone();
        let binary: PathBuf = binary.to_owned();
        let parent: PathBuf = parent.to_owned();
        running.spawn(async move {
            let _permit = permits
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let plan = Plan::from_seed(seed);
            run::run(&plan, &binary, &parent, keep).await
        });
    }
    let mut results = Vec::new();
    let mut last_progress = Instant::now();
    while let Some(joined) = running.join_next().await {
        match joined {
            Ok(result) => {
                if result.failed() {
                    eprintln!("seed {} FAILED (see the report at the end)", result.seed);
                }
                results.push(result);
            }
            Err(error) => eprintln!("a run panicked: {error}"),
        }
        if last_progress.elapsed() > Duration::from_secs(60) {
            eprintln!(
                "{} of {total} runs done in {:.0} s",
                results.len(),
                started.elapsed().as_secs_f64()
            );
            last_progress = Instant::now();
        }
    }
    results.sort_by_key(|r| r.seed);
    let panicked = results.len() as u64 != total;
    eprintln!("{}", report::summary(&results, started.elapsed()));
    !panicked && results.iter().all(|r| !r.failed())
}
