//! `duress`: the time from a phone recording an alert to the alarm on the office board's live stream.
//!
//! Each trial records the alert in a phone event log (the app's own `EventLog::record`: SQLite, WAL,
//! `synchronous=FULL`, returning after the commit), sends it to the office in a sync as the app does, and
//! waits until the board's live stream (`/board/events`, signed in with the session `seed` made) announces
//! the alarm for that visit. The floor, measured in the same run between trials: one fsynced insert of one
//! row in a WAL `synchronous=FULL` SQLite file, then one HTTP round trip to the same office.
//!
//! The time runs from `record` (the log already open, as the app's is) to the alarm on the stream, read at
//! the same time as the phone's answer: the board may hear before the phone has its answer.
//!
//! The log recording the alert is a scratch one per trial (its sequence numbers are its own); the
//! envelope sent carries the seeded phone's identity and next sequence number, so the office stores it.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::{TimeDelta, Utc};
use doorstep_core::event::EventEnvelope;
use doorstep_core::event_log::EventLog;
use doorstep_core::ids::{DeviceSeq, EventId};
use doorstep_core::lifecycle::{DuressVia, VisitEvent};
use doorstep_core::protocol::{SyncRequest, PROTOCOL_VERSION};
use hdrhistogram::Histogram;
use rusqlite::Connection;

use crate::seed::{board_cookie_file, phones_file, read_phones};

#[derive(Debug, clap::Args)]
pub struct DuressArgs {
    /// The office, e.g. http://127.0.0.1:8750
    #[arg(long)]
    pub office: String,
    /// The data folder `seed` filled (for the phones and the board's session).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// How many alerts (each from another phone and visit).
    #[arg(long, default_value_t = 200)]
    pub count: usize,
    /// The pause between trials, so each is measured on an office otherwise at rest (or under the load
    /// another `doorstep-load sync` puts on it meanwhile).
    #[arg(long, default_value_t = 50)]
    pub pause_ms: u64,
}

pub async fn run(args: DuressArgs) -> anyhow::Result<()> {
    let mut phones = read_phones(&phones_file(&args.data_dir))?;
    if phones.len() < args.count {
        bail!(
            "{} phones seeded; give at most that many trials",
            phones.len()
        );
    }
    let cookie = std::fs::read_to_string(board_cookie_file(&args.data_dir))?;
    let http = reqwest::Client::builder().tcp_nodelay(true).build()?;
    let mut board = http
        .get(format!("{}/board/events", args.office))
        .header("cookie", cookie.trim())
        .send()
        .await
        .context("opening the board's live stream")?;
    if !board.status().is_success() {
        bail!("the board's stream answered {}", board.status());
    }
    let scratch = tempfile::tempdir()?;
    let floor_db = Connection::open(scratch.path().join("floor.sqlite3"))?;
    floor_db.pragma_update(None, "journal_mode", "WAL")?;
    floor_db.pragma_update(None, "synchronous", "FULL")?;
    floor_db.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")?;
    let new_hist = || Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("bounds");
    let (mut measured, mut floor) = (new_hist(), new_hist());
    let mut buffer = String::new();
    // Every second phone: one per visit, so each alert is a visit's first and raises its own alarm.
    for (trial, phone) in phones.iter_mut().step_by(2).take(args.count).enumerate() {
        // The floor: one fsynced insert and one round trip.
        let began = Instant::now();
        floor_db.execute("INSERT INTO t (body) VALUES (?1)", ["{}"])?;
        http.get(format!("{}/api/v1/health", args.office))
            .send()
            .await?
            .bytes()
            .await?;
        let _ = floor.record(began.elapsed().as_micros().max(1) as u64);

        // The real thing, from the moment the alert is recorded in a log already open (as the app's is).
        let mut log = EventLog::open(
            &scratch.path().join(format!("phone-{trial}.sqlite3")),
            &phone.device,
        )?;
        let began = Instant::now();
        let recorded = log.record(
            &phone.visit,
            VisitEvent::DuressRaised {
                staff: phone.staff.clone(),
                via: DuressVia::CodePhraseButton,
            },
            Utc::now(),
        )?;
        let envelope = EventEnvelope {
            id: EventId::new_v7(),
            seq: DeviceSeq::new(phone.next_seq)?,
            recorded_at: recorded.recorded_at - TimeDelta::milliseconds(1),
            ..recorded
        };
        phone.next_seq += 1;
        let request = SyncRequest {
            protocol: PROTOCOL_VERSION,
            device_time: Utc::now(),
            events: vec![envelope],
            holdings_cursor: None,
        };
        // The phone's answer and the board's stream are read at once: the alarm reaches the board when the
        // office announces it, whether or not the phone has read its answer yet.
        let answered = async {
            let answer = http
                .post(format!("{}/api/v1/sync", args.office))
                .bearer_auth(&phone.token)
                .json(&request)
                .send()
                .await?;
            let status = answer.status();
            let _ = answer.bytes().await?;
            Ok::<_, anyhow::Error>(status)
        };
        let visit = format!("\"visit\":\"{}\"", phone.visit);
        let heard = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                while let Some(end) = buffer.find("\n\n") {
                    let message: String = buffer.drain(..end + 2).collect();
                    if message.contains("alarm_raised") && message.contains(&visit) {
                        return Ok::<_, anyhow::Error>(began.elapsed());
                    }
                }
                match board.chunk().await? {
                    Some(chunk) => buffer.push_str(&String::from_utf8_lossy(&chunk)),
                    None => bail!("the board's stream ended"),
                }
            }
        });
        let (status, seen) = tokio::join!(answered, heard);
        let status = status?;
        if !status.is_success() {
            bail!("trial {trial}: the office answered {status}");
        }
        match seen {
            Ok(Ok(elapsed)) => {
                let _ = measured.record(elapsed.as_micros().max(1) as u64);
            }
            Ok(Err(e)) => return Err(e),
            Err(_) => bail!("trial {trial}: no alarm on the board within 10 s"),
        }
        tokio::time::sleep(Duration::from_millis(args.pause_ms)).await;
    }
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    // One line per measurement, in microseconds recorded and milliseconds shown.
    let line = |what: &str, h: &Histogram<u64>| {
        println!(
            "{what}{} trials  p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            h.len(),
            ms(h, 0.5),
            ms(h, 0.99),
            h.max() as f64 / 1000.0
        );
    };
    println!(
        "filesystem: {}",
        crate::ingest::filesystem_of(scratch.path())
    );
    line(
        "duress, record on the phone to alarm_raised on the board's stream: ",
        &measured,
    );
    line(
        "floor, one fsynced insert + one HTTP round trip:                    ",
        &floor,
    );
    println!(
        "ratio: p50 {:.1}x  p99 {:.1}x",
        ms(&measured, 0.5) / ms(&floor, 0.5),
        ms(&measured, 0.99) / ms(&floor, 0.99)
    );
    Ok(())
}
