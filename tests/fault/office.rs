//! The real office for a run: its database seeded with the demo school in this process, then the real
//! `doorstep-office` binary serving it on a fixed local port, so it can be SIGKILLed and started again
//! where the proxy expects it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use chrono::Utc;
use doorstep_office::demo::{self, PhoneConfig};
use doorstep_office::SqliteStore;
use tokio::process::{Child, Command};

/// The `doorstep-office` binary next to this test binary (`cargo test --workspace` builds it; so does
/// `cargo build -p doorstep-office`, with `--release` for a release run).
pub fn office_binary() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("no test binary path: {e}"))?;
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("the test binary is not in a target folder")?;
    let binary = dir.join("doorstep-office");
    if binary.exists() {
        Ok(binary)
    } else {
        Err(format!(
            "{} is missing: build it first (`cargo build -p doorstep-office`, with --release for a release run)",
            binary.display()
        ))
    }
}

/// Seeds the office's database in `dir` with the demo school and returns Sam's phone (pointed at
/// `phone_url`, the proxy).
pub fn seed(dir: &Path, phone_url: &str) -> PhoneConfig {
    let store = SqliteStore::open(dir).expect("open the office store to seed it");
    demo::seed(&store.into(), phone_url, Utc::now())
        .expect("seed the demo school")
        .me
}

/// A free local port (bound and released; the office binds it again with `SO_REUSEADDR`).
pub fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("find a free port");
    listener.local_addr().expect("its address")
}

/// The office process.
pub struct Office {
    pub addr: SocketAddr,
    /// The run's phone, whose token only this office knows: how a start is told from another run's office
    /// that happens to answer on the same port.
    phone: PhoneConfig,
    dir: PathBuf,
    binary: PathBuf,
    child: Option<Child>,
    /// How many times it was started, for its log file's name.
    starts: u32,
}

impl Office {
    pub async fn start(binary: PathBuf, dir: &Path, phone: &PhoneConfig) -> Result<Office, String> {
        let mut office = Office {
            addr: free_port(),
            phone: phone.clone(),
            dir: dir.to_owned(),
            binary,
            child: None,
            starts: 0,
        };
        office.restart().await?;
        Ok(office)
    }

    /// Starts the binary (again) on the same address and database, and waits until it answers this run's
    /// phone. If the address was taken meanwhile (the binary exits), it moves to a new one: read `addr`
    /// after each restart.
    pub async fn restart(&mut self) -> Result<(), String> {
        assert!(self.child.is_none(), "the office is still running");
        for _ in 0..5 {
            if self.try_start().await? {
                return Ok(());
            }
            self.addr = free_port();
        }
        Err("the office could not bind a port in five tries".into())
    }

    /// One start; false if the process exited (its port was taken).
    async fn try_start(&mut self) -> Result<bool, String> {
        self.starts += 1;
        let log = std::fs::File::create(self.dir.join(format!("office-{}.log", self.starts)))
            .map_err(|e| format!("office log: {e}"))?;
        let mut child = Command::new(&self.binary)
            .arg("--data-dir")
            .arg(&self.dir)
            .arg("--listen")
            .arg(self.addr.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("start {}: {e}", self.binary.display()))?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let http = reqwest::Client::new();
        let empty_sync = serde_json::json!({
            "protocol": doorstep_core::protocol::PROTOCOL_VERSION,
            "device_time": Utc::now(),
            "events": [],
        });
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                return Ok(false);
            }
            let answer = http
                .post(format!("http://{}/api/v1/sync", self.addr))
                .bearer_auth(&self.phone.device_token)
                .json(&empty_sync)
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if answer.is_ok_and(|r| r.status().is_success()) {
                self.child = Some(child);
                return Ok(true);
            }
            if tokio::time::Instant::now() > deadline {
                let _ = child.start_kill();
                return Err("the office did not answer within 30 s of starting".into());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// SIGKILL: no shutdown, no flush.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }

    /// Whether it died without being told to (a crash).
    pub fn crashed(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(Some(_))))
    }

    pub fn database(&self) -> PathBuf {
        self.dir.join("office.sqlite3")
    }
}
