//! Test helpers: a real office, in-process on a chosen port or as the real binary, and a phone's sealed
//! store (its key in a key file beside it, as on a desktop without a secret service), enrolled directly or
//! set up with a one-time code as a phone is.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use doorstep::enrolment::{set_up, Credential, SetUp};
use doorstep::platform::{DesktopPlatform, Platform};
use doorstep::store::AppStore;
use doorstep::sync::SyncClient;
use doorstep::vault::{Vault, DATABASE_FILE};
use doorstep_core::event_log::EventLog;
use doorstep_office::demo::{self, DemoPhones, PhoneConfig};
use doorstep_office::{OfficeSettings, OfficeStore, SqliteStore};
use tokio::sync::oneshot;

/// The office running in this process on a fixed address, so it can be stopped and started again where the
/// phone expects it.
pub struct InProcessOffice {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    settings: OfficeSettings,
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
        Self::start_demo_settings(data_dir, more, OfficeSettings::default()).await
    }

    /// As [`Self::start_demo_with`], served with `settings` (kept for restarts).
    pub async fn start_demo_settings(
        data_dir: &Path,
        more: impl FnOnce(&SqliteStore),
        settings: OfficeSettings,
    ) -> (Self, DemoPhones) {
        let listener = listener_on("127.0.0.1:0".parse().unwrap());
        let addr = listener.local_addr().unwrap();
        let store: OfficeStore = SqliteStore::open(data_dir)
            .expect("open office store")
            .into();
        let phones = demo::seed(&store, &format!("http://{addr}"), Utc::now()).expect("seed");
        more(store.sqlite().expect("the office here runs on SQLite"));
        let mut office = Self {
            addr,
            data_dir: data_dir.to_owned(),
            settings,
            stop: None,
        };
        office.serve(listener, store);
        (office, phones)
    }

    fn serve(&mut self, listener: tokio::net::TcpListener, store: OfficeStore) {
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(doorstep_office::run_with(
            listener,
            store,
            self.settings.clone(),
            async {
                let _ = rx.await;
            },
        ));
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
        self.serve(listener_on(self.addr), store.into());
    }
}

/// The real `doorstep-office` binary, built next to this test binary by `cargo test --workspace`.
pub struct OfficeProcess {
    child: Child,
    /// Where it listens, `http://127.0.0.1:PORT`.
    pub url: String,
    data_dir: PathBuf,
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

/// A free address on this machine (bound here and let go, for the office binary to bind next).
pub fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("address").to_string()
}

impl OfficeProcess {
    /// Starts the office binary with `--demo` on `data_dir`, listening on `address`, and waits until it
    /// answers.
    pub async fn start(data_dir: &Path, address: &str) -> Self {
        let child = Command::new(office_binary())
            .args(["--demo", "--listen", address, "--data-dir"])
            .arg(data_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start doorstep-office");
        // Owned from here, so the process is killed even if the wait below panics.
        let mut guard = ChildGuard(Some(child));
        let url = format!("http://{address}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            assert!(Instant::now() < deadline, "the office binary did not start");
            let up = reqwest::get(format!("{url}/api/v1/health"))
                .await
                .is_ok_and(|r| r.status().is_success());
            if up {
                let child = guard.0.take().expect("child");
                return Self {
                    child,
                    url,
                    data_dir: data_dir.to_owned(),
                };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A one-time code for `who`, as an admin makes one from the command line: the `doorstep://enrol`
    /// link the admin's QR code carries.
    pub fn enrolment_link(&self, who: &str) -> String {
        enrolment_link(&self.data_dir, &self.url, who)
    }

    /// SIGKILL: no shutdown, no flush.
    pub fn kill(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("reap");
    }
}

/// `doorstep-office enrol-code WHO --link` on the office's data: the link it prints.
pub fn enrolment_link(office_dir: &Path, url: &str, who: &str) -> String {
    let output = Command::new(office_binary())
        .args([
            "enrol-code",
            who,
            "--link",
            "--office-url",
            url,
            "--data-dir",
        ])
        .arg(office_dir)
        .output()
        .expect("run doorstep-office enrol-code");
    assert!(output.status.success(), "enrol-code: {output:?}");
    String::from_utf8(output.stdout)
        .expect("a link")
        .trim()
        .to_owned()
}

/// The PINs every test phone is set up with.
pub const PIN: &str = "2468";
pub const SECOND_PIN: &str = "1357";

/// A phone set up as a person sets one up: the code field given `link` (what the QR code carries), the
/// two PINs, then the phone's store and sync client over its sealed data folder `dir`.
pub async fn set_up_phone(dir: &Path, link: &str) -> (AppStore, SyncClient, Credential) {
    let platform: Arc<dyn Platform> = Arc::new(DesktopPlatform::new());
    let enrolled = set_up(
        dir,
        platform,
        SetUp {
            office_url: String::new(),
            code: link.to_owned(),
            pin: PIN.into(),
            second_pin: SECOND_PIN.into(),
        },
        Utc::now(),
    )
    .await
    .expect("the phone is set up");
    let credential = enrolled.credential.clone();
    let store = AppStore::open(enrolled.vault, &credential.device_id).expect("open the phone");
    let client = SyncClient::new(&credential.office_url, &credential.token).expect("client");
    (store, client, credential)
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

/// A phone enrolled straight into the office's store (`demo::seed`'s Sam and Alex): its own sealed store
/// in `dir` (the key in a key file there), with the test PINs, and a sync client for `config`.
pub fn phone(dir: &Path, config: &PhoneConfig) -> (AppStore, SyncClient) {
    let vault = match Vault::open(dir, Arc::new(DesktopPlatform::new())).expect("the key file") {
        Some(vault) => vault,
        None => Vault::create(dir, Arc::new(DesktopPlatform::new())).expect("a sealed folder"),
    };
    let store = AppStore::open(Arc::new(vault), &config.device_id).expect("open phone store");
    if store.pins_problem().is_some() {
        store
            .set_pins(PIN, SECOND_PIN, Utc::now())
            .expect("the test PINs");
    }
    let client = SyncClient::new(&config.office_url, &config.device_token).expect("client");
    (store, client)
}

/// The phone's event log in `dir`, opened with its key (as a second reader of the same files).
pub fn sealed_log(dir: &Path, device: &doorstep_core::ids::DeviceId) -> EventLog {
    let vault = Vault::open(dir, Arc::new(DesktopPlatform::new()))
        .expect("the key file")
        .expect("a key");
    EventLog::open_sealed(&vault.path(DATABASE_FILE), device, vault.sealer()).expect("the log")
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
