//! Test helpers: a real office, in-process on a chosen port or as the real binary, and a phone's store.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use doorstep::store::AppStore;
use doorstep::sync::SyncClient;
use doorstep_office::demo::{self, DemoPhones, PhoneConfig};
use doorstep_office::SqliteStore;
use tokio::sync::oneshot;

/// The office running in this process on a fixed address, so it can be stopped and started again where the
/// phone expects it.
pub struct InProcessOffice {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    stop: Option<(
        oneshot::Sender<()>,
        tokio::task::JoinHandle<std::io::Result<()>>,
    )>,
}

fn listener_on(addr: SocketAddr) -> tokio::net::TcpListener {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_reuseaddr(true).expect("reuseaddr");
    socket.bind(addr).expect("bind the office's address");
    socket.listen(64).expect("listen")
}

impl InProcessOffice {
    /// A new demo office on a free port; returns it running, with the demo phones' credentials.
    pub async fn start_demo(data_dir: &Path) -> (Self, DemoPhones) {
        Self::start_demo_with(data_dir, |_| ()).await
    }

    /// As [`Self::start_demo`], with `more` added to the database after the demo and before serving.
    pub async fn start_demo_with(
        data_dir: &Path,
        more: impl FnOnce(&SqliteStore),
    ) -> (Self, DemoPhones) {
        let listener = listener_on("127.0.0.1:0".parse().unwrap());
        let addr = listener.local_addr().unwrap();
        let store = SqliteStore::open(data_dir).expect("open office store");
        let phones = demo::seed(&store, &format!("http://{addr}"), Utc::now()).expect("seed");
        more(&store);
        let mut office = Self {
            addr,
            data_dir: data_dir.to_owned(),
            stop: None,
        };
        office.serve(listener, store);
        (office, phones)
    }

    fn serve(&mut self, listener: tokio::net::TcpListener, store: SqliteStore) {
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(doorstep_office::run(listener, Arc::new(store), async {
            let _ = rx.await;
        }));
        self.stop = Some((tx, handle));
    }

    pub async fn stop(&mut self) {
        if let Some((tx, handle)) = self.stop.take() {
            let _ = tx.send(());
            handle
                .await
                .expect("office task")
                .expect("office stopped cleanly");
        }
    }

    /// Starts again on the same address and database.
    pub fn restart(&mut self) {
        assert!(self.stop.is_none(), "stop the office first");
        let store = SqliteStore::open(&self.data_dir).expect("reopen office store");
        self.serve(listener_on(self.addr), store);
    }
}

/// The real `doorstep-office` binary, built next to this test binary by `cargo test --workspace`.
pub struct OfficeProcess {
    child: Child,
    pub phone: PhoneConfig,
}

fn office_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let debug_dir = exe.parent().and_then(Path::parent).expect("target dir");
    let binary = debug_dir.join("doorstep-office");
    assert!(
        binary.exists(),
        "{} is missing: run `cargo test --workspace` (or `cargo build -p doorstep-office`) first",
        binary.display()
    );
    binary
}

impl OfficeProcess {
    /// Starts the office binary with `--demo` on `data_dir` and waits until it answers.
    pub async fn start(data_dir: &Path, listen: &str) -> Self {
        let config = data_dir.join(demo::DEMO_PHONE_FILE);
        let child = Command::new(office_binary())
            .args(["--demo", "--listen", listen, "--data-dir"])
            .arg(data_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start doorstep-office");
        // Owned from here, so the process is killed even if the wait below panics.
        let mut guard = ChildGuard(Some(child));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            assert!(Instant::now() < deadline, "the office binary did not start");
            // The config may be left over from an earlier run on the same address: only a health answer
            // from the new process counts, and the old one is dead.
            if let Ok(text) = std::fs::read_to_string(&config) {
                let phone: PhoneConfig = serde_json::from_str(&text).expect("phone config");
                let up = reqwest::get(format!("{}/api/v1/health", phone.office_url))
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if up {
                    let child = guard.0.take().expect("child");
                    return Self { child, phone };
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no shutdown, no flush.
    pub fn kill(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("reap");
    }
}

struct ChildGuard(Option<Child>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OfficeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A phone: its own store in `dir`, and a sync client for `config`.
pub fn phone(dir: &Path, config: &PhoneConfig) -> (AppStore, SyncClient) {
    let store = AppStore::open_in(dir, &config.device_id).expect("open phone store");
    let client = SyncClient::new(&config.office_url, &config.device_token).expect("client");
    (store, client)
}

/// How many events from `device` the office's database file holds.
pub fn office_count(office_dir: &Path, device: &str) -> i64 {
    let conn =
        rusqlite::Connection::open(office_dir.join("office.sqlite3")).expect("open office db");
    conn.query_row(
        "SELECT COUNT(*) FROM events WHERE device_id = ?1",
        [device],
        |row| row.get(0),
    )
    .expect("count")
}

/// How many times each event id from `device` appears in the office's database (always 1 if all is well).
pub fn office_max_copies(office_dir: &Path, device: &str) -> i64 {
    let conn =
        rusqlite::Connection::open(office_dir.join("office.sqlite3")).expect("open office db");
    conn.query_row(
        "SELECT COALESCE(MAX(n), 0) FROM (SELECT COUNT(*) AS n FROM events WHERE device_id = ?1 GROUP BY body)",
        [device],
        |row| row.get(0),
    )
    .expect("count")
}
