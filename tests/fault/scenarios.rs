//! Named scenarios with targets of their own, run after the seeded sample:
//!
//! - [`dead_connection`]: the phone's kept-alive connection dies silently (the office is reachable on a
//!   new one): an alert must be stored at the office within 2 s, also when raised while a step's request
//!   hangs on the dead connection, and an ordinary step confirmed within 10 s; then, after an outage long
//!   enough for the loop's back-off to outgrow its probe, an ordinary step must be confirmed within 10 s
//!   of the signal returning.
//! - [`long_offline`]: a day's visits recorded with no signal, then a 2G link: everything arrives, the
//!   alert first, and at no moment does the phone's screen claim more than the office holds.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use doorstep_core::event_log::Delivery;
use doorstep_core::ids::EventId;
use rusqlite::{Connection, OpenFlags};
use tokio::time::Instant;

use crate::plan::Action;
use crate::proxy::{Mode, TWO_G};
use crate::report::{ALERT_TARGET, CONFIRM_TARGET};
use crate::run::{act_until, Rig};

fn read_only(path: &Path) -> Result<Connection, String> {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|e| e.to_string())
}

fn time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{text:?}: {e}"))
}

/// The event id in a phone's "recorded ID SEQ" answer.
fn recorded_id(reply: &str) -> Result<EventId, String> {
    reply
        .strip_prefix("recorded ")
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| format!("the phone did not record it: {reply}"))
}

/// When the office stored event `id`, waiting up to `within` for it.
async fn stored_at(
    office_db: &Path,
    id: EventId,
    within: Duration,
) -> Result<DateTime<Utc>, String> {
    let give_up = Instant::now() + within;
    loop {
        let found: Option<String> = read_only(office_db)?
            .query_row(
                "SELECT received_at FROM events WHERE id = ?1",
                [id.to_string()],
                |row| row.get(0),
            )
            .ok();
        if let Some(at) = found {
            return time(&at);
        }
        if Instant::now() > give_up {
            return Err(format!("{id} not at the office after {within:?}"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// When the phone marked event `id` confirmed, waiting up to `within`.
async fn confirmed_at(
    phone_db: &Path,
    id: EventId,
    within: Duration,
) -> Result<DateTime<Utc>, String> {
    let give_up = Instant::now() + within;
    loop {
        let found: Option<String> = read_only(phone_db)?
            .query_row(
                "SELECT confirmed_at FROM outbox WHERE event_id = ?1 AND state = 'confirmed'",
                [id.to_string()],
                |row| row.get(0),
            )
            .ok();
        if let Some(at) = found {
            return time(&at);
        }
        if Instant::now() > give_up {
            return Err(format!("{id} not confirmed on the phone after {within:?}"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn since(start: DateTime<Utc>, end: DateTime<Utc>) -> Duration {
    (end - start).to_std().unwrap_or_default()
}

/// The checks every run makes, as one verdict.
async fn finish(mut rig: Rig, summary: String) -> Result<String, String> {
    let stuck = rig.drain().await?;
    let (findings, server_errors, crashes) = rig.finish(stuck).await;
    if findings.failures() + server_errors + crashes > 0 {
        return Err(format!(
            "{summary}\nchecks failed ({server_errors} 5xx, {crashes} crashes): {:#?}",
            findings.problems
        ));
    }
    Ok(format!(
        "{summary}\n{} events recorded; each at the office once, none falsely confirmed, none stuck, the visits agree",
        findings.recorded
    ))
}

/// The outage in part 3 of [`dead_connection`]: past the fourth failed attempt (at 14 s), when the
/// back-off has grown to 16 s, and not on a multiple of the probe's 2 s.
const OUTAGE: Duration = Duration::from_secs(17);

pub async fn dead_connection(binary: &Path, parent: &Path) -> Result<String, String> {
    let dir = tempfile::Builder::new()
        .prefix("dead-connection-")
        .tempdir_in(parent)
        .map_err(|e| e.to_string())?;
    let mut rig = Rig::start(binary, dir.path()).await?;
    let (phone_db, office_db) = (rig.phone_db(), rig.office_db());
    // The briefing and "Leaving now", delivered: the phone now keeps a connection open to the office.
    for _ in 0..2 {
        rig.phone.act(Action::Step(0)).await?;
    }
    if rig.drain().await? > 0 {
        return Err("the first steps were not delivered on a clear link".into());
    }

    // 1. The kept-alive connection dies silently; the person asks for help.
    rig.proxy.kill_open_connections();
    let raised = Utc::now();
    let alert = recorded_id(&rig.phone.act(Action::Alert(0)).await?)?;
    let alert_after = since(
        raised,
        stored_at(&office_db, alert, Duration::from_secs(30)).await?,
    );
    confirmed_at(&phone_db, alert, Duration::from_secs(30)).await?;

    // 2. A step delivered (the phone keeps that connection), then the connection dies, then a step.
    rig.phone.act(Action::Step(0)).await?;
    if rig.drain().await? > 0 {
        return Err("a step was not delivered on a clear link".into());
    }
    rig.proxy.kill_open_connections();
    let tapped = Utc::now();
    let step = recorded_id(&rig.phone.act(Action::Step(0)).await?)?;
    let step_after = since(
        tapped,
        confirmed_at(&phone_db, step, Duration::from_secs(30)).await?,
    );

    // 3. Again, and while the step's request hangs on the dead connection, another alert.
    rig.phone.act(Action::Step(0)).await?;
    if rig.drain().await? > 0 {
        return Err("a step was not delivered on a clear link".into());
    }
    rig.proxy.kill_open_connections();
    rig.phone.act(Action::Step(0)).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let raised_behind = Utc::now();
    let second_alert = recorded_id(&rig.phone.act(Action::Alert(0)).await?)?;
    let behind_after = since(
        raised_behind,
        stored_at(&office_db, second_alert, Duration::from_secs(30)).await?,
    );

    // 4. No signal for long enough that the loop's back-off outgrows its probe (2, 4, 8, then 16 s
    // between attempts), a step taken meanwhile, then the signal returns. Without the probe the step
    // would wait for the attempt due 30 s in.
    rig.proxy.set_mode(Mode::Refuse);
    let waiting = recorded_id(&rig.phone.act(Action::Step(0)).await?)?;
    tokio::time::sleep(OUTAGE).await;
    rig.proxy.set_mode(Mode::Pass);
    let back = Utc::now();
    let outage_after = since(
        back,
        confirmed_at(&phone_db, waiting, Duration::from_secs(60)).await?,
    );

    let summary = format!(
        "alert stored {:.2} s after it was raised behind a dead connection (target {} s)\n\
         alert stored {:.2} s after it was raised behind a step hanging on a dead connection (target {} s)\n\
         step confirmed {:.2} s after it was taken behind a dead connection (target {} s)\n\
         step confirmed {:.2} s after the signal returned from {} s without (target {} s)",
        alert_after.as_secs_f64(),
        ALERT_TARGET.as_secs(),
        behind_after.as_secs_f64(),
        ALERT_TARGET.as_secs(),
        step_after.as_secs_f64(),
        CONFIRM_TARGET.as_secs(),
        outage_after.as_secs_f64(),
        OUTAGE.as_secs(),
        CONFIRM_TARGET.as_secs(),
    );
    if alert_after > ALERT_TARGET
        || behind_after > ALERT_TARGET
        || step_after > CONFIRM_TARGET
        || outage_after > CONFIRM_TARGET
    {
        return Err(format!("missed a target:\n{summary}"));
    }
    finish(rig, summary).await
}

/// How long the long-offline phone has no signal in the CI scenario: long enough that its sync loop's
/// back-off has grown to 32 s between attempts.
pub const CI_OFFLINE: Duration = Duration::from_secs(30);

pub async fn long_offline(binary: &Path, parent: &Path) -> Result<String, String> {
    let dir = tempfile::Builder::new()
        .prefix("long-offline-")
        .tempdir_in(parent)
        .map_err(|e| e.to_string())?;
    let mut rig = Rig::start(binary, dir.path()).await?;
    let (phone_db, office_db) = (rig.phone_db(), rig.office_db());

    // The day, with no signal: both visits from the briefing to the write-up, check-ins, and on the first
    // visit a request for help, which is never stood down.
    rig.proxy.set_mode(Mode::Refuse);
    let went_offline = Instant::now();
    let mut day = Vec::new();
    for visit in 0..2 {
        day.extend(std::iter::repeat_n(Action::Step(visit), 5 + 8));
        if visit == 0 {
            day.push(Action::Alert(0));
            day.extend(std::iter::repeat_n(Action::Step(0), 4));
        }
        day.push(Action::Leave(visit));
        day.push(Action::WriteUp(visit, 2_500));
    }
    act_until(
        &mut rig.phone,
        &mut day.into_iter(),
        went_offline + CI_OFFLINE,
    )
    .await?;
    tokio::time::sleep_until(went_offline + CI_OFFLINE).await;
    let offline_events: Vec<(EventId, bool)> = {
        let conn = read_only(&phone_db)?;
        let mut stmt = conn
            .prepare("SELECT e.id, e.urgent FROM events e JOIN outbox o ON o.event_id = e.id WHERE o.state = 'waiting'")
            .map_err(|e| e.to_string())?;
        let rows = stmt
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, bool>(1)?))
            })
            .map_err(|e| e.to_string())?;
        rows.filter_map(Result::ok)
            .filter_map(|(id, urgent)| id.parse().ok().map(|id| (id, urgent)))
            .collect()
    };
    if offline_events.len() < 30 || !offline_events.iter().any(|(_, urgent)| *urgent) {
        return Err(format!(
            "the day left {} events waiting (expected 30 or more, with the alert)",
            offline_events.len()
        ));
    }

    // The signal returns, at 2G speed. Watch the phone's screen until everything is confirmed.
    rig.proxy.set_mode(Mode::Throttle(TWO_G));
    let back = Utc::now();
    let watcher = crate::phone::open_phone_log(&rig.phone_dir, &rig.config.device_id)?;
    let visits: Vec<_> = watcher
        .holdings()
        .map_err(|e| e.to_string())?
        .map(|holdings| {
            holdings
                .visits
                .into_iter()
                .map(|held| held.visit.id)
                .collect()
        })
        .unwrap_or_default();
    let give_up = Instant::now() + Duration::from_secs(180);
    let mut looks = 0;
    loop {
        looks += 1;
        // What the screens would show now (the per-step deliveries and the status line), read before the
        // office's events, so anything the phone calls confirmed must already be there.
        let status = watcher.status().map_err(|e| e.to_string())?;
        let line = doorstep::status::status_line(
            &status,
            Utc::now(),
            FixedOffset::east_opt(0).expect("UTC"),
        );
        let mut shown_confirmed = HashSet::new();
        let mut all = HashSet::new();
        for visit in &visits {
            for (envelope, delivery) in
                watcher.events_for_visit(visit).map_err(|e| e.to_string())?
            {
                all.insert(envelope.id.to_string());
                if matches!(delivery, Delivery::Confirmed { .. }) {
                    shown_confirmed.insert(envelope.id.to_string());
                }
            }
        }
        let held: HashSet<String> = {
            let conn = read_only(&office_db)?;
            let mut stmt = conn
                .prepare("SELECT id FROM events WHERE device_id = ?1")
                .map_err(|e| e.to_string())?;
            let rows = stmt
                .query_map([rig.config.device_id.as_str()], |row| {
                    row.get::<_, String>(0)
                })
                .map_err(|e| e.to_string())?;
            rows.filter_map(Result::ok).collect()
        };
        if let Some(early) = shown_confirmed.difference(&held).next() {
            return Err(format!(
                "the phone showed {early} confirmed before the office held it"
            ));
        }
        if line.starts_with("All confirmed") && !all.is_subset(&held) {
            return Err(format!(
                "the phone said {line:?} while the office lacked events"
            ));
        }
        if status.waiting == 0 {
            break;
        }
        if Instant::now() > give_up {
            return Err(format!(
                "{} events still waiting after 180 s at 2G",
                status.waiting
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all_confirmed = since(back, Utc::now());

    // The alert was the first of the day's events the office stored.
    let order: Vec<String> = {
        let conn = read_only(&office_db)?;
        let mut stmt = conn
            .prepare("SELECT id FROM events WHERE device_id = ?1 ORDER BY rowid")
            .map_err(|e| e.to_string())?;
        let rows = stmt
            .query_map([rig.config.device_id.as_str()], |row| {
                row.get::<_, String>(0)
            })
            .map_err(|e| e.to_string())?;
        rows.filter_map(Result::ok).collect()
    };
    let offline: HashSet<String> = offline_events
        .iter()
        .map(|(id, _)| id.to_string())
        .collect();
    let first = order
        .iter()
        .find(|id| offline.contains(*id))
        .ok_or("none of the day's events reached the office")?;
    let (alert, _) = offline_events
        .iter()
        .find(|(_, urgent)| *urgent)
        .ok_or("no alert in the day")?;
    if *first != alert.to_string() {
        return Err(format!(
            "the office stored {first} before the alert {alert}"
        ));
    }
    let alert_after = since(back, stored_at(&office_db, *alert, Duration::ZERO).await?);
    let summary = format!(
        "{} events recorded over {} s offline, then at 2G ({} bit/s down, {} bit/s up, {} ms each way): \
         alert stored first, {:.2} s after the signal returned; everything confirmed after {:.2} s; \
         the screens were read {looks} times and never claimed more than the office held",
        offline_events.len(),
        CI_OFFLINE.as_secs(),
        TWO_G.down_bytes_per_sec * 8,
        TWO_G.up_bytes_per_sec * 8,
        TWO_G.one_way.as_millis(),
        alert_after.as_secs_f64(),
        all_confirmed.as_secs_f64(),
    );
    finish(rig, summary).await
}
