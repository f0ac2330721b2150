//! Sync latency under a steady load: starts the real office in this process on 127.0.0.1:0 over a temporary
//! store, enrols D phones (two per visit, each visit authorised and starting soon), then sends
//! `POST /api/v1/sync` at R requests a second for T seconds and prints the latency each request saw
//! client-side. Nine syncs in ten are idle polls; every tenth carries 1 to 3 new events of its phone's visit
//! (departed, arrived outside, visit started, then check-ins). The client and the server share this
//! machine's cores, which makes the figures pessimistic. See docs/benchmarks.md.
//!
//! `cargo run --release -p doorstep-office --example sync_bench [devices] [rate] [seconds]`
//! (defaults 200, 167, 30: 167 a second is 10,000 phones syncing once a minute).

// A benchmark's report is its output.
#![allow(clippy::print_stdout)]
// It stamps the events it sends with the real time, as a phone would; the office may not (clippy.toml).
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use doorstep_core::domain::{
    Address, Briefing, DbsCheck, DbsLevel, Pupil, RiskAssessment, Role, StaffMember, Visit,
    VisitPurpose, VisitStaff,
};
use doorstep_core::event::EventEnvelope;
use doorstep_core::ids::{DeviceId, DeviceSeq, EventId, SchoolId, StaffId, VisitId};
use doorstep_core::lifecycle::{Command, VisitEvent};
use doorstep_core::policy::PolicyMinutes;
use doorstep_core::protocol::{SyncRequest, PROTOCOL_VERSION};
use doorstep_office::{demo, OfficeSettings, SqliteStore};
use tokio::sync::{oneshot, Mutex};
use tokio::time::MissedTickBehavior;

/// One in this many syncs carries new events; the rest are idle polls.
const EVENTS_EVERY: u64 = 10;

/// One enrolled phone and what it has recorded so far.
struct Phone {
    device: DeviceId,
    token: String,
    staff: StaffId,
    partner: StaffId,
    /// Whether this phone's user starts the visit (one of each pair does).
    leads: bool,
    visit: VisitId,
    /// How many events this phone has sent; the next has sequence number `sent + 1`.
    sent: u64,
}

/// What one request came to.
enum Outcome {
    Answered(Duration),
    Failed { status: String, body: String },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let devices: usize = number(args.next(), 200, "devices")?;
    let rate: u64 = number(args.next(), 167, "rate")?;
    let seconds: u64 = number(args.next(), 30, "seconds")?;
    if devices < 2 || rate == 0 || seconds == 0 {
        bail!("use at least 2 devices, a rate of at least 1 a second and at least 1 second");
    }

    let dir = tempfile::tempdir().context("making a temporary data folder")?;
    let store = Arc::new(SqliteStore::open(dir.path()).context("opening the office store")?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding 127.0.0.1:0")?;
    let url = format!("http://{}", listener.local_addr()?);
    let now = Utc::now();
    demo::seed(&store, &url, now).context("seeding the demo school")?;
    let phones = enrol_phones(&store, devices, now).context("enrolling the bench's phones")?;
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(doorstep_office::run_with(
        listener,
        store.clone(),
        OfficeSettings::default(),
        async {
            let _ = stopped.await;
        },
    ));

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(devices)
        .build()
        .context("building the HTTP client")?;
    let sync_url = format!("{url}/api/v1/sync");
    let total = rate * seconds;
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    // Late ticks fire at once, so the offered load stays R a second even if the scheduler falls behind.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let began = Instant::now();
    let mut requests = Vec::with_capacity(total as usize);
    for n in 0..total {
        ticks.tick().await;
        let phone = phones[(n % devices as u64) as usize].clone();
        let new_events = if n % EVENTS_EVERY == EVENTS_EVERY - 1 {
            1 + (n / EVENTS_EVERY) % 3
        } else {
            0
        };
        requests.push(tokio::spawn(sync_once(
            client.clone(),
            sync_url.clone(),
            phone,
            new_events,
        )));
    }
    let offered_for = began.elapsed();
    let mut latencies = Vec::with_capacity(requests.len());
    let mut errors = 0usize;
    for request in requests {
        match request.await.context("a request task panicked")? {
            Outcome::Answered(latency) => latencies.push(latency),
            Outcome::Failed { status, body } => {
                if errors == 0 {
                    println!("first error: {status}: {body}");
                }
                errors += 1;
            }
        }
    }
    let finished_in = began.elapsed();
    let _ = stop.send(());
    server.await.context("the office task panicked")??;

    latencies.sort_unstable();
    println!("doorstep-office sync_bench: POST /api/v1/sync against the real office, in-process on 127.0.0.1");
    println!("NOTE: client and server share this process and this machine's cores, so the figures are pessimistic");
    println!(
        "phones:     {devices} ({} visits, two phones each)",
        devices.div_ceil(2)
    );
    println!("mix:        9 in 10 syncs idle polls, 1 in 10 carries 1-3 new events");
    println!(
        "offered:    {total} requests at {rate}/s for {seconds} s (sent over {:.1} s)",
        offered_for.as_secs_f64()
    );
    println!(
        "achieved:   {:.1} requests/s answered ({} in {:.1} s)",
        latencies.len() as f64 / finished_in.as_secs_f64(),
        latencies.len(),
        finished_in.as_secs_f64()
    );
    println!("errors:     {errors}");
    if latencies.is_empty() {
        bail!("no request was answered");
    }
    println!("p50:        {:.2} ms", ms(percentile(&latencies, 50.0)));
    println!("p90:        {:.2} ms", ms(percentile(&latencies, 90.0)));
    println!("p99:        {:.2} ms", ms(percentile(&latencies, 99.0)));
    println!("max:        {:.2} ms", ms(latencies[latencies.len() - 1]));
    println!("target:     p99 under 50 ms with 10,000 phones syncing each minute, 2,000 visits in progress, 2 cores");
    Ok(())
}

fn number<T: std::str::FromStr>(arg: Option<String>, default: T, what: &str) -> anyhow::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    match arg {
        Some(text) => text
            .parse()
            .with_context(|| format!("the {what} argument {text:?} is not a number")),
        None => Ok(default),
    }
}

/// Adds `devices` visiting staff to the demo school, pairs them on visits starting in half an hour (each
/// authorised by the demo's headteacher) and enrols one phone for each.
fn enrol_phones(
    store: &SqliteStore,
    devices: usize,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<Arc<Mutex<Phone>>>> {
    let school: SchoolId = "demo-primary".parse()?;
    let head: StaffId = "head".parse()?;
    let checked_on = NaiveDate::from_ymd_opt(2025, 9, 1).context("a valid date")?;
    let members: Vec<StaffMember> = (0..devices.div_ceil(2) * 2)
        .map(|n| -> anyhow::Result<StaffMember> {
            Ok(StaffMember {
                id: format!("bench-staff-{n}").parse()?,
                name: format!("Bench Staff {n}"),
                roles: vec![Role::VisitingStaff],
                phone: "07700 900100".into(),
                dbs: Some(DbsCheck {
                    level: DbsLevel::EnhancedWithBarredList,
                    checked_on,
                }),
            })
        })
        .collect::<anyhow::Result<_>>()?;
    for member in &members {
        store.add_staff(&school, member)?;
    }
    let mut phones = Vec::with_capacity(devices);
    for (n, pair) in members.chunks(2).enumerate() {
        let pupil = Pupil {
            id: format!("bench-pupil-{n}").parse()?,
            name: format!("Pupil {n}"),
        };
        store.add_pupil(&school, &pupil)?;
        let visit = Visit {
            id: format!("bench-visit-{n}").parse()?,
            school: school.clone(),
            purpose: VisitPurpose::SafeAndWellCheck,
            pupil,
            address: Address {
                lines: vec![format!("{n} Bench Street"), "Oakfield".into()],
                postcode: "OK1 2AB".into(),
            },
            agreed_time: now + TimeDelta::minutes(30),
            expected_length: PolicyMinutes::new(45)?,
            staff: pair
                .iter()
                .map(|m| VisitStaff {
                    id: m.id.clone(),
                    name: m.name.clone(),
                    phone: m.phone.clone(),
                })
                .collect(),
            briefing: Briefing::new(RiskAssessment::standard()),
        };
        store.add_visit(&visit)?;
        store.record_office_event(
            &visit.id,
            &Command::Authorise {
                by: head.clone(),
                lone_visit_approved: false,
            },
            now,
        )?;
        for (position, member) in pair.iter().enumerate() {
            if phones.len() == devices {
                break;
            }
            let device: DeviceId = format!("bench-phone-{}", phones.len()).parse()?;
            let token = format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            );
            store.enrol_device(&device, &member.id, &token, now)?;
            phones.push(Arc::new(Mutex::new(Phone {
                device,
                token,
                staff: member.id.clone(),
                partner: pair[1 - position].id.clone(),
                leads: position == 0,
                visit: visit.id.clone(),
                sent: 0,
            })));
        }
    }
    Ok(phones)
}

/// One sync from `phone` carrying `new_events` new events. A phone syncs one request at a time, so its lock
/// is held until the answer is in.
async fn sync_once(
    client: reqwest::Client,
    url: String,
    phone: Arc<Mutex<Phone>>,
    new_events: u64,
) -> Outcome {
    let mut phone = phone.lock().await;
    let now = Utc::now();
    let events: Vec<EventEnvelope> = (0..new_events)
        .map(|_| next_event(&mut phone, now))
        .collect();
    let body = match serde_json::to_vec(&SyncRequest {
        protocol: PROTOCOL_VERSION,
        device_time: now,
        events,
        holdings_cursor: None,
    }) {
        Ok(body) => body,
        Err(e) => {
            return Outcome::Failed {
                status: "not sent".into(),
                body: e.to_string(),
            }
        }
    };
    let began = Instant::now();
    let sent = client
        .post(url)
        .bearer_auth(&phone.token)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        Err(e) => {
            return Outcome::Failed {
                status: "no answer".into(),
                body: e.to_string(),
            }
        }
    };
    let status = response.status();
    // The whole answer is read: a phone waits for the holdings too.
    let body = response.text().await;
    let latency = began.elapsed();
    match body {
        Ok(_) if status.is_success() => Outcome::Answered(latency),
        Ok(body) => Outcome::Failed {
            status: status.to_string(),
            body,
        },
        Err(e) => Outcome::Failed {
            status: status.to_string(),
            body: e.to_string(),
        },
    }
}

/// The phone's next event on its visit: departed, arrived outside, the visit started (by the pair's lead),
/// then check-ins.
fn next_event(phone: &mut Phone, now: DateTime<Utc>) -> EventEnvelope {
    let event = match (phone.sent, phone.leads) {
        (0, _) => VisitEvent::Departed {
            staff: phone.staff.clone(),
            expected_arrival: now + TimeDelta::minutes(10),
            expected_end: now + TimeDelta::minutes(70),
        },
        (1, _) => VisitEvent::ArrivedOutside {
            staff: phone.staff.clone(),
        },
        (2, true) => VisitEvent::VisitStarted {
            by: phone.staff.clone(),
            staff: vec![phone.staff.clone(), phone.partner.clone()],
        },
        _ => VisitEvent::CheckedIn {
            staff: phone.staff.clone(),
        },
    };
    phone.sent += 1;
    EventEnvelope {
        id: EventId::new_v7(),
        device: phone.device.clone(),
        seq: DeviceSeq::new(phone.sent).expect("a count from one is a valid sequence number"),
        visit: phone.visit.clone(),
        recorded_at: now,
        event,
    }
}

/// The nearest-rank percentile of sorted, non-empty `latencies`.
fn percentile(latencies: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * latencies.len() as f64).ceil() as usize;
    latencies[rank.clamp(1, latencies.len()) - 1]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
