//! One seeded run: a new office database and phone, the plan's faults and actions segment by segment, then
//! the wait for the outbox to drain and the checks.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use doorstep_office::demo::PhoneConfig;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::checks::{self, Findings};
use crate::office::{self, Office};
use crate::phone::Phone;
use crate::plan::{Action, Fault, FaultKind, PhoneKillPoint, Plan, Segment};
use crate::proxy::{Counts, Mode, Note, Proxy, TWO_G};

/// How long after the last fault the outbox may take to drain before what is left counts as stuck.
pub const DRAIN_WITHIN: Duration = Duration::from_secs(45);

/// What one run found and measured.
#[derive(Debug)]
pub struct RunResult {
    pub seed: u64,
    pub plan: String,
    pub last_kind: FaultKind,
    pub findings: Findings,
    /// 5xx answers from the office.
    pub server_errors: usize,
    /// The office or the phone died without being killed by the plan.
    pub crashes: usize,
    /// The harness itself could not do what the plan said (a setup failure, not a finding about Doorstep).
    pub harness_error: Option<String>,
    /// From the end of the last fault to the alert stored at the office, if it was not there already.
    pub alert_latency: Option<Duration>,
    /// From the end of the last fault to the last confirmation on the phone, if anything was confirmed after.
    pub confirm_latency: Option<Duration>,
    /// The run's folder, kept when it failed (or when asked).
    pub kept: Option<PathBuf>,
}

impl RunResult {
    pub fn failed(&self) -> bool {
        self.findings.failures() + self.server_errors + self.crashes > 0
            || self.harness_error.is_some()
    }
}

/// Runs `plan` against a new office and phone under `parent`.
pub async fn run(plan: &Plan, office_binary: &Path, parent: &Path, keep: bool) -> RunResult {
    let dir = tempfile::Builder::new()
        .prefix(&format!("seed-{}-", plan.seed))
        .tempdir_in(parent)
        .expect("a folder for the run");
    let mut result = RunResult {
        seed: plan.seed,
        plan: plan.to_string(),
        last_kind: plan.last_kind(),
        findings: Findings::default(),
        server_errors: 0,
        crashes: 0,
        harness_error: None,
        alert_latency: None,
        confirm_latency: None,
        kept: None,
    };
    if let Err(error) = drive(plan, office_binary, dir.path(), &mut result).await {
        result.harness_error = Some(error);
    }
    if keep || result.failed() {
        result.kept = Some(dir.keep());
    }
    result
}

/// A run's moving parts: the office process, the proxy in front of it, the phone's process behind it.
pub struct Rig {
    pub proxy: Proxy,
    pub notes: mpsc::UnboundedReceiver<Note>,
    pub counts: Arc<Counts>,
    pub office: Office,
    pub phone: Phone,
    pub config: PhoneConfig,
    pub office_dir: PathBuf,
    pub phone_dir: PathBuf,
    /// Office or phone deaths the plan did not cause.
    pub crashes: usize,
}

impl Rig {
    /// A new office database with the demo school, the office binary serving it, the proxy, and the phone
    /// after its first sync.
    pub async fn start(office_binary: &Path, dir: &Path) -> Result<Rig, String> {
        let office_dir = dir.join("office");
        let phone_dir = dir.join("phone");
        // The proxy first: the phone is enrolled with its address.
        let (proxy, notes, counts) = Proxy::start(office::free_port()).await;
        let config = office::seed(&office_dir, &format!("http://{}", proxy.addr));
        let office = Office::start(office_binary.to_owned(), &office_dir, &config).await?;
        proxy.set_upstream(office.addr);
        let mut phone = Phone::start(&phone_dir, &config).await?;
        phone.wait_for_holdings().await?;
        Ok(Rig {
            proxy,
            notes,
            counts,
            office,
            phone,
            config,
            office_dir,
            phone_dir,
            crashes: 0,
        })
    }

    pub fn phone_db(&self) -> PathBuf {
        self.phone_dir.join(doorstep::config::DATABASE_FILE)
    }

    pub fn office_db(&self) -> PathBuf {
        self.office.database()
    }

    /// Waits up to [`DRAIN_WITHIN`] for the phone's outbox to empty; returns how many are still waiting.
    pub async fn drain(&mut self) -> Result<usize, String> {
        let give_up = Instant::now() + DRAIN_WITHIN;
        loop {
            let waiting = checks::waiting_on_phone(&self.phone_db()).map_err(|e| e.to_string())?;
            if waiting == 0 || Instant::now() > give_up {
                return Ok(waiting as usize);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops both processes and runs every check; `stuck` is what [`Rig::drain`] left waiting.
    pub async fn finish(mut self, stuck: usize) -> (Findings, usize, usize) {
        self.crashes += usize::from(self.office.crashed()) + usize::from(self.phone.crashed());
        self.phone.quit().await;
        self.office.kill().await;
        drop(self.proxy);
        let findings = checks::compare(
            &self.phone_dir,
            &self.office_dir,
            &self.config.device_id,
            stuck,
        );
        (
            findings,
            self.counts.server_errors.load(Ordering::SeqCst),
            self.crashes,
        )
    }
}

async fn drive(
    plan: &Plan,
    office_binary: &Path,
    dir: &Path,
    result: &mut RunResult,
) -> Result<(), String> {
    let mut rig = Rig::start(office_binary, dir).await?;
    for action in &plan.warm_up {
        rig.phone.act(*action).await?;
    }
    for segment in &plan.segments {
        play(&mut rig, segment).await?;
    }
    // The last fault is over: the link is clear, the office and the phone are running.
    rig.proxy.set_mode(Mode::Pass);
    let clear_at = Utc::now();
    let stuck = rig.drain().await?;
    let (findings, server_errors, crashes) = rig.finish(stuck).await;
    result.findings = findings;
    result.server_errors = server_errors;
    result.crashes = crashes;
    result.alert_latency = after(clear_at, result.findings.alert_stored_at);
    result.confirm_latency = after(clear_at, result.findings.last_confirmed_at);
    Ok(())
}

/// One segment: its fault applied for its length, its actions spread through it.
async fn play(rig: &mut Rig, segment: &Segment) -> Result<(), String> {
    let end = Instant::now() + Duration::from_millis(segment.millis);
    let mut actions = segment.actions.iter().copied();
    let Rig {
        proxy,
        notes,
        office,
        phone,
        crashes,
        ..
    } = rig;
    match segment.fault {
        Fault::OfficeKill { after_us, down_ms } => {
            proxy.set_mode(Mode::ReportNext);
            drain_notes(notes);
            if let Some(first) = actions.next() {
                phone.act(first).await?;
            }
            // The moment the office has a request with events in hand, then `after_us` more.
            let handed = wait_note(notes, Duration::from_secs(10))
                .await
                .and_then(|note| match note {
                    Note::Forwarded(at) => Some(at),
                    Note::Held { .. } => None,
                })
                .unwrap_or_else(Instant::now);
            tokio::time::sleep_until(handed + Duration::from_micros(after_us)).await;
            *crashes += usize::from(office.crashed());
            office.kill().await;
            proxy.set_mode(Mode::Pass);
            let back = Instant::now() + Duration::from_millis(down_ms);
            act_until(phone, &mut actions, back).await?;
            tokio::time::sleep_until(back).await;
            office.restart().await?;
            proxy.set_upstream(office.addr);
        }
        Fault::PhoneKill { point, down_ms } => {
            let first = actions.next();
            match point {
                PhoneKillPoint::DuringWrite { after_us } => {
                    if let Some(first) = first {
                        phone.send(&crate::phone::command_line(first)).await?;
                        tokio::time::sleep(Duration::from_micros(after_us)).await;
                    }
                }
                PhoneKillPoint::AfterWrite => {
                    if let Some(first) = first {
                        phone.act(first).await?;
                    }
                }
                PhoneKillPoint::AfterSend | PhoneKillPoint::AfterCommit => {
                    proxy.set_mode(Mode::HoldNext {
                        forward: point == PhoneKillPoint::AfterCommit,
                    });
                    drain_notes(notes);
                    if let Some(first) = first {
                        phone.act(first).await?;
                    }
                    let _ = wait_note(notes, Duration::from_secs(10)).await;
                }
            }
            *crashes += usize::from(phone.crashed());
            phone.kill().await;
            proxy.set_mode(Mode::Pass);
            tokio::time::sleep(Duration::from_millis(down_ms)).await;
            phone.restart().await?;
            act_until(phone, &mut actions, Instant::now()).await?;
        }
        ref fault => {
            proxy.set_mode(mode_for(fault));
            act_until(phone, &mut actions, end).await?;
            tokio::time::sleep_until(end).await;
        }
    }
    Ok(())
}

/// How long after `clear` something happened, if it happened after it.
fn after(clear: DateTime<Utc>, at: Option<DateTime<Utc>>) -> Option<Duration> {
    at.and_then(|at| (at - clear).to_std().ok())
}

fn mode_for(fault: &Fault) -> Mode {
    match *fault {
        Fault::Clear => Mode::Pass,
        Fault::Refuse => Mode::Refuse,
        Fault::Silent => Mode::Silent,
        Fault::Delay { each_way_ms } => Mode::Delay(Duration::from_millis(each_way_ms)),
        Fault::Duplicate { copy_after_ms } => Mode::Duplicate(Duration::from_millis(copy_after_ms)),
        Fault::CutAfterCommit => Mode::CutAfterCommit,
        Fault::Throttle2G => Mode::Throttle(TWO_G),
        Fault::OfficeKill { .. } | Fault::PhoneKill { .. } => Mode::Pass,
    }
}

/// Does the remaining actions spread evenly between now and `end` (all at once if `end` has passed).
pub async fn act_until(
    phone: &mut Phone,
    actions: &mut impl Iterator<Item = Action>,
    end: Instant,
) -> Result<(), String> {
    let left: Vec<Action> = actions.collect();
    let start = Instant::now();
    let span = end.saturating_duration_since(start);
    for (index, action) in left.iter().enumerate() {
        let at = start + span * index as u32 / left.len() as u32;
        tokio::time::sleep_until(at).await;
        phone.act(*action).await?;
    }
    Ok(())
}

fn drain_notes(notes: &mut mpsc::UnboundedReceiver<Note>) {
    while notes.try_recv().is_ok() {}
}

async fn wait_note(notes: &mut mpsc::UnboundedReceiver<Note>, within: Duration) -> Option<Note> {
    tokio::time::timeout(within, notes.recv())
        .await
        .ok()
        .flatten()
}
