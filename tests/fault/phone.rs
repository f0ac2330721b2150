//! The phone as a process of its own, so it can be SIGKILLed: this same test binary started with
//! [`CHILD_ARG`] opens the app's real store, runs the app's real sync loop, and does what the person
//! holding the phone would, one command a line on its standard input (answering each on its standard
//! output once the app has recorded it). The parent's side is [`Phone`].

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use doorstep::platform::{DesktopPlatform, Platform};
use doorstep::steps::{steps_for, Step, BRIEFING_FIRST};
use doorstep::store::{ActionError, AppStore};
use doorstep::sync::{run_sync_loop, SyncClient};
use doorstep::vault::Vault;
use doorstep_core::event_log::EventLog;
use doorstep_core::ids::DeviceId;
use doorstep_core::lifecycle::{BriefingCheck, Command, DuressVia, WriteUp};
use doorstep_office::demo::PhoneConfig;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin};
use tokio::sync::mpsc;

use crate::plan::Action;

/// The first argument that makes this binary the phone.
pub const CHILD_ARG: &str = "phone-process";
/// Carries the device token to the child (kept out of its arguments, as a token should be).
const TOKEN_ENV: &str = "DOORSTEP_FAULT_DEVICE_TOKEN";

/// The child's `main`: `phone-process DATA_DIR OFFICE_URL DEVICE_ID`.
pub fn child_main(args: &[String]) -> ExitCode {
    let [data_dir, office_url, device] = args else {
        eprintln!("usage: {CHILD_ARG} DATA_DIR OFFICE_URL DEVICE_ID");
        return ExitCode::from(2);
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("no runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(be_the_phone(data_dir, office_url, device)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("phone: {error}");
            ExitCode::from(1)
        }
    }
}

async fn be_the_phone(data_dir: &str, office_url: &str, device: &str) -> Result<(), String> {
    let device = device.parse().map_err(|e| format!("device id: {e}"))?;
    let token = std::env::var(TOKEN_ENV).map_err(|_| format!("{TOKEN_ENV} is not set"))?;
    let store = open_phone(Path::new(data_dir), &device)?;
    let client = SyncClient::new(office_url, &token).map_err(|e| e.to_string())?;
    // The app's own loop, exactly as `main.rs` starts it.
    tokio::spawn(run_sync_loop(client, store.clone(), store.wake_handle()));
    say("ready");
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let reply = match line.trim() {
            "quit" => return Ok(()),
            "holdings?" => wait_for_holdings(&store).await,
            command => act(&store, command),
        };
        say(&reply);
    }
    Ok(())
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    // The parent is gone if this fails; the process ends with its stdin soon after.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

async fn wait_for_holdings(store: &AppStore) -> String {
    for _ in 0..600 {
        if store.has_holdings().unwrap_or(false) {
            return "ok".into();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    "no holdings after 30 s".into()
}

/// Does what a command line asks, as a person would through the screens, and says what was recorded.
fn act(store: &AppStore, command: &str) -> String {
    let Some(action) = parse_action(command) else {
        return format!("unknown command {command:?}");
    };
    let now = Utc::now();
    let me = match store.me() {
        Ok(Some(me)) => me.staff,
        other => return format!("nothing: no holdings ({other:?})"),
    };
    let cards = match store.today(now) {
        Ok(cards) => cards,
        Err(error) => return format!("nothing: {error}"),
    };
    // The visits this phone can act on, in agreed-time order: the authorised ones.
    let visits: Vec<_> = cards
        .into_iter()
        .filter(|card| card.awaiting_authorisation_by.is_none())
        .collect();
    let index = match action {
        Action::Step(v)
        | Action::Alert(v)
        | Action::StandDown(v)
        | Action::Leave(v)
        | Action::WriteUp(v, _) => v,
    };
    let Some(card) = visits.get(index) else {
        return format!("nothing: no visit {index}");
    };
    let staff = me.clone();
    let command = match action {
        Action::Step(_) => {
            let steps = steps_for(card, &me, now);
            if steps.notice.as_deref() == Some(BRIEFING_FIRST) {
                Command::ConfirmBriefing {
                    staff,
                    ticked: BriefingCheck::ALL.to_vec(),
                }
            } else {
                // Inside, the person checks in ("I'm OK") rather than leaving; leaving is its own action.
                let offered: Vec<Step> = steps.main.into_iter().chain(steps.others).collect();
                let step = if offered.contains(&Step::ImOk) {
                    Some(Step::ImOk)
                } else {
                    offered.into_iter().find(|step| *step != Step::IveLeft)
                };
                match step {
                    Some(step) => step.command(card, &me),
                    None => return "nothing: no step offered".into(),
                }
            }
        }
        Action::Alert(_) => Command::RaiseDuress {
            staff,
            via: DuressVia::CodePhraseButton,
        },
        Action::StandDown(_) => Command::StandDownDuress {
            staff,
            note: "Sorted, thanks.".into(),
        },
        Action::Leave(_) => Command::Leave { staff },
        Action::WriteUp(_, chars) => Command::WriteUp {
            staff,
            write_up: WriteUp {
                seen: "Seen the pupil and a parent. ".repeat(chars / 29 + 1),
                discussed: "Attendance and the next fortnight.".into(),
                agreements: "Back in school on Monday.".into(),
                safeguarding_concern: false,
                incident: None,
            },
        },
    };
    match store.perform(&card.visit.id, command, now) {
        Ok(recorded) => format!("recorded {} {}", recorded.id, recorded.seq),
        Err(ActionError::Refused(refusal)) => format!("nothing: refused: {refusal}"),
        Err(error) => format!("failed: {error}"),
    }
}

/// The wire form of an [`Action`]: `step 0`, `alert 0`, `stand-down 0`, `leave 1`, `write-up 1 800`.
pub fn command_line(action: Action) -> String {
    match action {
        Action::Step(v) => format!("step {v}"),
        Action::Alert(v) => format!("alert {v}"),
        Action::StandDown(v) => format!("stand-down {v}"),
        Action::Leave(v) => format!("leave {v}"),
        Action::WriteUp(v, chars) => format!("write-up {v} {chars}"),
    }
}

fn parse_action(line: &str) -> Option<Action> {
    let mut words = line.split_whitespace();
    let verb = words.next()?;
    let visit: usize = words.next()?.parse().ok()?;
    Some(match verb {
        "step" => Action::Step(visit),
        "alert" => Action::Alert(visit),
        "stand-down" => Action::StandDown(visit),
        "leave" => Action::Leave(visit),
        "write-up" => Action::WriteUp(visit, words.next()?.parse().ok()?),
        _ => return None,
    })
}

/// The parent's handle on the phone's process.
pub struct Phone {
    dir: PathBuf,
    config: PhoneConfig,
    child: Option<(Child, ChildStdin, mpsc::UnboundedReceiver<String>)>,
    starts: u32,
}

impl Phone {
    /// Starts the phone on its data folder `dir` and waits until it is ready.
    pub async fn start(dir: &Path, config: &PhoneConfig) -> Result<Phone, String> {
        let mut phone = Phone {
            dir: dir.to_owned(),
            config: config.clone(),
            child: None,
            starts: 0,
        };
        phone.restart().await?;
        Ok(phone)
    }

    /// Opens the phone again on the same data folder (after a kill), as a person reopening the app.
    pub async fn restart(&mut self) -> Result<(), String> {
        assert!(self.child.is_none(), "the phone is still running");
        self.starts += 1;
        std::fs::create_dir_all(&self.dir).map_err(|e| format!("phone dir: {e}"))?;
        let log = std::fs::File::create(
            self.dir
                .parent()
                .unwrap_or(&self.dir)
                .join(format!("phone-{}.log", self.starts)),
        )
        .map_err(|e| format!("phone log: {e}"))?;
        let exe = std::env::current_exe().map_err(|e| format!("test binary: {e}"))?;
        let mut child = tokio::process::Command::new(exe)
            .arg(CHILD_ARG)
            .arg(&self.dir)
            .arg(&self.config.office_url)
            .arg(self.config.device_id.as_str())
            .env(TOKEN_ENV, &self.config.device_token)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("start the phone: {e}"))?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (lines, receiver) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        self.child = Some((child, stdin, receiver));
        match self.reply(Duration::from_secs(30)).await? {
            ready if ready == "ready" => Ok(()),
            other => Err(format!("the phone said {other:?} at start")),
        }
    }

    /// Sends one command line.
    pub async fn send(&mut self, line: &str) -> Result<(), String> {
        let (_, stdin, _) = self.child.as_mut().ok_or("the phone is not running")?;
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .map_err(|e| format!("the phone's stdin: {e}"))?;
        stdin
            .flush()
            .await
            .map_err(|e| format!("the phone's stdin: {e}"))
    }

    /// The phone's next line, waiting at most `within`.
    pub async fn reply(&mut self, within: Duration) -> Result<String, String> {
        let (_, _, lines) = self.child.as_mut().ok_or("the phone is not running")?;
        match tokio::time::timeout(within, lines.recv()).await {
            Ok(Some(line)) => Ok(line),
            Ok(None) => Err("the phone's process ended".into()),
            Err(_) => Err(format!("the phone said nothing for {within:?}")),
        }
    }

    /// Does `action` and returns the phone's answer.
    pub async fn act(&mut self, action: Action) -> Result<String, String> {
        self.send(&command_line(action)).await?;
        self.reply(Duration::from_secs(30)).await
    }

    /// Waits until the phone holds its visits (its first sync).
    pub async fn wait_for_holdings(&mut self) -> Result<(), String> {
        self.send("holdings?").await?;
        match self.reply(Duration::from_secs(35)).await? {
            ok if ok == "ok" => Ok(()),
            other => Err(other),
        }
    }

    /// SIGKILL.
    pub async fn kill(&mut self) {
        if let Some((mut child, _, _)) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }

    /// Whether its process ended without being told to.
    pub fn crashed(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|(child, _, _)| matches!(child.try_wait(), Ok(Some(_))))
    }

    /// Asks the app to close, killing it if it has not within five seconds.
    pub async fn quit(&mut self) {
        if self.send("quit").await.is_ok() {
            if let Some((child, _, _)) = self.child.as_mut() {
                if tokio::time::timeout(Duration::from_secs(5), child.wait())
                    .await
                    .is_ok()
                {
                    self.child = None;
                    return;
                }
            }
        }
        self.kill().await;
    }
}

/// The phone's store as the app opens it: its data folder sealed with a key the platform keeps (the
/// desktop platform's key file here, so the process killed and started again, and the checks after the
/// run, find the same key). The first opening sets the folder up.
pub fn open_phone(dir: &Path, device: &DeviceId) -> Result<AppStore, String> {
    let platform: Arc<dyn Platform> = Arc::new(DesktopPlatform::new());
    let vault = match Vault::open(dir, platform.clone()).map_err(|e| e.to_string())? {
        Some(vault) => vault,
        None => Vault::create(dir, platform).map_err(|e| e.to_string())?,
    };
    AppStore::open(Arc::new(vault), device).map_err(|e| e.to_string())
}

/// The phone's sealed event log on its own (a second reader beside a running phone, or after the run),
/// opened with the key its process kept.
pub fn open_phone_log(dir: &Path, device: &DeviceId) -> Result<EventLog, String> {
    let platform: Arc<dyn Platform> = Arc::new(DesktopPlatform::new());
    let vault = Vault::open(dir, platform)
        .map_err(|e| e.to_string())?
        .ok_or("the phone's data key is gone")?;
    EventLog::open_sealed(
        &vault.path(doorstep::config::DATABASE_FILE),
        device,
        vault.sealer(),
    )
    .map_err(|e| e.to_string())
}
