//! `sync` and `health`: an open loop at a fixed rate. Request `n` is due at `start + n / rate`; it is sent
//! then (or as soon as the loop can, if it fell behind) and its latency runs from when it was due to when
//! its whole answer was read. A stalled office therefore shows as late answers for every request due while
//! it stalled, not as a quiet pause (no coordinated omission).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use chrono::{TimeDelta, Utc};
use doorstep_core::event::EventEnvelope;
use doorstep_core::ids::{DeviceSeq, EventId};
use doorstep_core::lifecycle::{DuressVia, VisitEvent};
use doorstep_core::protocol::{SyncRequest, PROTOCOL_VERSION};
use hdrhistogram::Histogram;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::seed::{read_phones, Phone};

#[derive(Debug, Clone, clap::Args)]
pub struct Loop {
    /// The office, e.g. http://127.0.0.1:8750
    #[arg(long)]
    pub office: String,
    /// Requests a second.
    #[arg(long)]
    pub rate: f64,
    /// How long to offer the load.
    #[arg(long, default_value_t = 30)]
    pub seconds: u64,
    /// Open a new connection for every request (phones on mobile networks often do); otherwise keep
    /// connections alive.
    #[arg(long)]
    pub fresh_connections: bool,
    /// The office's process id: its peak memory and threads are sampled during the run.
    #[arg(long)]
    pub office_pid: Option<u32>,
    /// Send from this many source addresses (127.0.0.2, 127.0.0.3 and on; only for an office on
    /// loopback), each phone always from the same one, as phones on different networks come from
    /// different addresses. 1: every request from the address the system picks, as one busy NAT would.
    #[arg(long, default_value_t = 1)]
    pub addresses: u8,
}

#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    #[command(flatten)]
    pub run: Loop,
    /// The phones file `seed` wrote.
    #[arg(long)]
    pub phones: PathBuf,
    /// One sync in this many carries a check-in; the rest are idle (a phone fetching its visits).
    #[arg(long, default_value_t = 10)]
    pub events_every: u64,
    /// One sync in this many carries an alert (0: none). Alerts raise alarms at the office.
    #[arg(long, default_value_t = 0)]
    pub alerts_every: u64,
    /// Send back each phone's holdings cursor from its last answer, as the app does, so the office answers
    /// with only what changed; without it every answer carries everything.
    #[arg(long)]
    pub cursor: bool,
}

#[derive(Debug, clap::Args)]
pub struct HealthArgs {
    #[command(flatten)]
    pub run: Loop,
}

/// What kind of request it was, for separate figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Idle,
    Events,
    Alert,
    Health,
}

/// The one field of a sync answer the load generator reads.
#[derive(serde::Deserialize)]
struct Answer {
    holdings_cursor: Option<String>,
}

/// Idle syncs answered, and the bytes of their answers, for the mean size printed at the end.
static IDLE_ANSWERS: AtomicU64 = AtomicU64::new(0);
static IDLE_BYTES: AtomicU64 = AtomicU64::new(0);

/// What one request came to.
enum Outcome {
    Answered(Duration),
    /// 503 with Retry-After: the office shed it.
    Shed(Duration),
    Failed(String),
}

struct Figures {
    latency: Histogram<u64>,
    shed: u64,
    failed: u64,
    first_failure: Option<String>,
}

impl Figures {
    fn new() -> Self {
        Self {
            latency: Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds"),
            shed: 0,
            failed: 0,
            first_failure: None,
        }
    }

    fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Answered(latency) => {
                let _ = self.latency.record(latency.as_micros().max(1) as u64);
            }
            Outcome::Shed(_) => self.shed += 1,
            Outcome::Failed(why) => {
                self.failed += 1;
                self.first_failure.get_or_insert(why);
            }
        }
    }

    fn print(&self, what: &str) {
        let ms = |q: f64| self.latency.value_at_quantile(q) as f64 / 1000.0;
        println!(
            "{what:<8} answered {:>7}  shed {:>6}  failed {:>5}  p50 {:>8.2} ms  p90 {:>8.2} ms  p99 {:>8.2} ms  p99.9 {:>8.2} ms  max {:>8.2} ms",
            self.latency.len(),
            self.shed,
            self.failed,
            ms(0.5),
            ms(0.9),
            ms(0.99),
            ms(0.999),
            self.latency.max() as f64 / 1000.0
        );
        if let Some(why) = &self.first_failure {
            println!("         first failure: {why}");
        }
    }
}

/// One HTTP client per source address (see [`Loop::addresses`]); request or phone `n` uses
/// `clients[n % len]`.
fn clients(run: &Loop) -> anyhow::Result<Vec<reqwest::Client>> {
    if run.addresses == 0 {
        bail!("--addresses is at least 1");
    }
    (0..run.addresses)
        .map(|i| {
            let mut builder = reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .tcp_nodelay(true);
            builder = if run.fresh_connections {
                builder.pool_max_idle_per_host(0)
            } else {
                builder.pool_max_idle_per_host(usize::MAX)
            };
            if run.addresses > 1 {
                let from = std::net::Ipv4Addr::new(127, 0, 0, 2u8.saturating_add(i));
                builder = builder.local_address(std::net::IpAddr::V4(from));
            }
            builder.build().context("an HTTP client")
        })
        .collect()
}

pub async fn health(args: HealthArgs) -> anyhow::Result<()> {
    let url = format!("{}/api/v1/health", args.run.office);
    let clients = clients(&args.run)?;
    run_loop(&args.run, move |n, due| {
        let http = clients[(n % clients.len() as u64) as usize].clone();
        let url = url.clone();
        async move {
            let outcome = match http.get(&url).send().await {
                Ok(response) if response.status().is_success() => match response.bytes().await {
                    Ok(_) => Outcome::Answered(due.elapsed()),
                    Err(e) => Outcome::Failed(e.to_string()),
                },
                Ok(response) => Outcome::Failed(response.status().to_string()),
                Err(e) => Outcome::Failed(e.to_string()),
            };
            (Kind::Health, outcome)
        }
    })
    .await
}

pub async fn sync(args: SyncArgs) -> anyhow::Result<()> {
    let phones: Vec<Arc<Mutex<Phone>>> = read_phones(&args.phones)?
        .into_iter()
        .map(|p| Arc::new(Mutex::new(p)))
        .collect();
    if phones.is_empty() {
        bail!("no phones in {}", args.phones.display());
    }
    println!(
        "{} phones; 1 sync in {} carries a check-in{}",
        phones.len(),
        args.events_every,
        if args.alerts_every > 0 {
            format!(", 1 in {} an alert", args.alerts_every)
        } else {
            String::new()
        }
    );
    let url = format!("{}/api/v1/sync", args.run.office);
    let clients = clients(&args.run)?;
    // Each phone always from the same address.
    let client_of = move |phone: usize| clients[phone % clients.len()].clone();
    let (events_every, alerts_every) = (args.events_every.max(1), args.alerts_every);
    let cursor = args.cursor;
    if cursor {
        // Untimed: each phone's first answer is everything; from then on it holds a cursor, as a phone
        // in use does. 64 at a time, under the office's cap on connections from one address.
        for (c, chunk) in phones.chunks(64).enumerate() {
            let mut first = Vec::new();
            for (i, phone) in chunk.iter().enumerate() {
                let http = client_of(c * 64 + i);
                let (url, phone) = (url.clone(), phone.clone());
                first.push(tokio::spawn(async move {
                    sync_once(&http, &url, &phone, Kind::Idle, true, Instant::now()).await
                }));
            }
            for task in first {
                if let Outcome::Failed(why) = task.await.context("a first sync panicked")? {
                    bail!("a phone's first sync failed: {why}");
                }
            }
        }
        IDLE_ANSWERS.store(0, Ordering::Relaxed);
        IDLE_BYTES.store(0, Ordering::Relaxed);
    }
    println!(
        "holdings: {}",
        if cursor {
            "each phone sends back its cursor (answers carry what changed; each phone's first, untimed \
             sync fetched everything)"
        } else {
            "no cursor (every answer carries everything)"
        }
    );
    run_loop(&args.run, move |n, due| {
        let index = (n % phones.len() as u64) as usize;
        let phone = phones[index].clone();
        let kind = if alerts_every > 0 && n % alerts_every == alerts_every - 1 {
            Kind::Alert
        } else if n % events_every == events_every - 1 {
            Kind::Events
        } else {
            Kind::Idle
        };
        let (http, url) = (client_of(index), url.clone());
        async move {
            (
                kind,
                sync_once(&http, &url, &phone, kind, cursor, due).await,
            )
        }
    })
    .await
}

/// One sync from `phone`. A phone sends one request at a time: if its previous one is still out, this one
/// waits (and its latency, counted from `due`, shows it).
async fn sync_once(
    http: &reqwest::Client,
    url: &str,
    phone: &Mutex<Phone>,
    kind: Kind,
    cursor: bool,
    due: Instant,
) -> Outcome {
    let mut phone = phone.lock().await;
    let now = Utc::now();
    let event = match kind {
        Kind::Idle | Kind::Health => None,
        Kind::Events => Some(VisitEvent::CheckedIn {
            staff: phone.staff.clone(),
        }),
        Kind::Alert => Some(VisitEvent::DuressRaised {
            staff: phone.staff.clone(),
            via: DuressVia::CodePhraseButton,
        }),
    };
    let mut events = Vec::new();
    if let Some(event) = event {
        let Ok(seq) = DeviceSeq::new(phone.next_seq) else {
            return Outcome::Failed("sequence number out of range".into());
        };
        events.push(EventEnvelope {
            id: EventId::new_v7(),
            device: phone.device.clone(),
            seq,
            visit: phone.visit.clone(),
            recorded_at: now - TimeDelta::milliseconds(1),
            event,
        });
    }
    let body = match serde_json::to_vec(&SyncRequest {
        protocol: PROTOCOL_VERSION,
        device_time: now,
        events,
        holdings_cursor: if cursor { phone.cursor.clone() } else { None },
    }) {
        Ok(body) => body,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let sent = http
        .post(url)
        .bearer_auth(&phone.token)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        Err(e) => return Outcome::Failed(format!("no answer: {e}")),
    };
    let status = response.status().as_u16();
    // The whole answer is read: a phone waits for its holdings too.
    let body = response.bytes().await;
    match (status, body) {
        (200, Ok(body)) => {
            let latency = due.elapsed();
            if kind != Kind::Idle {
                phone.next_seq += 1;
            }
            if kind == Kind::Idle {
                IDLE_ANSWERS.fetch_add(1, Ordering::Relaxed);
                IDLE_BYTES.fetch_add(body.len() as u64, Ordering::Relaxed);
            }
            if cursor {
                phone.cursor = serde_json::from_slice::<Answer>(&body)
                    .ok()
                    .and_then(|answer| answer.holdings_cursor);
            }
            Outcome::Answered(latency)
        }
        (503, _) => Outcome::Shed(due.elapsed()),
        (status, Ok(body)) => Outcome::Failed(format!(
            "{status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        )),
        (status, Err(e)) => Outcome::Failed(format!("{status}: {e}")),
    }
}

/// Offers `rate` requests a second for `seconds`, each made by `request(n, due)`, and prints the figures.
async fn run_loop<F, Fut>(run: &Loop, request: F) -> anyhow::Result<()>
where
    F: Fn(u64, Instant) -> Fut,
    Fut: std::future::Future<Output = (Kind, Outcome)> + Send + 'static,
{
    if run.rate <= 0.0 || run.seconds == 0 {
        bail!("give a rate above 0 and at least one second");
    }
    let total = (run.rate * run.seconds as f64).round() as u64;
    let sampler = run.office_pid.map(|pid| tokio::spawn(sample_memory(pid)));
    let start = Instant::now() + Duration::from_millis(100);
    let started_at = Utc::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for n in 0..total {
        let due = start + Duration::from_secs_f64(n as f64 / run.rate);
        tokio::time::sleep_until(due).await;
        tasks.push(tokio::spawn(request(n, due)));
    }
    let offered_for = start.elapsed();
    let mut by_kind: Vec<(Kind, Figures)> = Vec::new();
    let mut all = Figures::new();
    for task in tasks {
        let (kind, outcome) = task.await.context("a request task panicked")?;
        let figures = match by_kind.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, figures)) => figures,
            None => {
                by_kind.push((kind, Figures::new()));
                &mut by_kind.last_mut().expect("just pushed").1
            }
        };
        let copy = match &outcome {
            Outcome::Answered(d) => Outcome::Answered(*d),
            Outcome::Shed(d) => Outcome::Shed(*d),
            Outcome::Failed(w) => Outcome::Failed(w.clone()),
        };
        figures.add(outcome);
        all.add(copy);
    }
    let finished = start.elapsed();
    println!(
        "offered {total} requests at {:.0}/s over {:.1} s (began {}); all answered {:.1} s after the start",
        run.rate,
        offered_for.as_secs_f64(),
        started_at.format("%Y-%m-%dT%H:%M:%SZ"),
        finished.as_secs_f64()
    );
    println!(
        "connections: {}, from {}",
        if run.fresh_connections {
            "a new one for every request"
        } else {
            "kept alive"
        },
        if run.addresses > 1 {
            format!("{} addresses (127.0.0.2 and on)", run.addresses)
        } else {
            "one address".to_owned()
        }
    );
    all.print("all");
    let idle = IDLE_ANSWERS.load(Ordering::Relaxed);
    if idle > 0 {
        println!(
            "idle answers: {idle}, mean {:.1} KB",
            IDLE_BYTES.load(Ordering::Relaxed) as f64 / idle as f64 / 1024.0
        );
    }
    for (kind, figures) in &by_kind {
        let name = match kind {
            Kind::Idle => "idle",
            Kind::Events => "events",
            Kind::Alert => "alert",
            Kind::Health => "health",
        };
        if by_kind.len() > 1 {
            figures.print(name);
        }
    }
    if let Some(sampler) = sampler {
        sampler.abort();
        if let Ok(Some((peak_kb, threads))) = peak_of_office(run.office_pid) {
            println!(
                "office:   peak resident memory {:.1} MB, {threads} threads at the end",
                peak_kb as f64 / 1024.0
            );
        }
    }
    Ok(())
}

/// Reads the office's peak resident memory (VmHWM) and threads from /proc.
fn peak_of_office(pid: Option<u32>) -> anyhow::Result<Option<(u64, u64)>> {
    let Some(pid) = pid else {
        return Ok(None);
    };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Ok(field("VmHWM:").zip(field("Threads:")))
}

/// Keeps reading the office's status during the run, so a process that ends early is noticed.
async fn sample_memory(pid: u32) {
    let mut peak_threads = 0;
    loop {
        if let Ok(Some((_, threads))) = peak_of_office(Some(pid)) {
            if threads > peak_threads {
                peak_threads = threads;
                println!("office threads: {threads}");
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
