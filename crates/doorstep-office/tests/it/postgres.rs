//! A real PostgreSQL server for the tests that run against both backends: one throwaway cluster per test
//! run, and a fresh database in it for each test.
//!
//! `DOORSTEP_TEST_POSTGRES` may name a server to use instead (a libpq URL or key=value string whose user
//! may create databases). Otherwise the cluster is made here with Debian's `postgresql` package
//! (`scripts/install-deps` installs it): `initdb` into a temporary folder, then `postgres` on a free
//! loopback port, run as the `postgres` user when the tests run as root (PostgreSQL refuses root). It
//! stops, and its folder is removed, when the test process ends: its shell waits on the test process's
//! pipe and stops the server once the pipe closes. Without either, the tests fail and say how to get one:
//! they never pass without having run.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The same checks on each backend: `on_both_backends!(check, ...)`, invoked in a test module, runs each
/// `check(&store)` on a new SQLite store and on a new PostgreSQL database (in modules `sqlite` and
/// `postgres`); `on_both_backends!(shared: check, ...)` hands each an `Arc` of the store instead, for a check
/// that starts something holding it (a notifier), in modules `sqlite_shared` and `postgres_shared`.
macro_rules! on_both_backends {
    (shared: $($check:ident),* $(,)?) => {
        on_both_backends!(@modules sqlite_shared, postgres_shared, |store| std::sync::Arc::new(store); $($check),*);
    };
    (@modules $sqlite:ident, $postgres:ident, |$store:ident| $handed:expr; $($check:ident),*) => {
        mod $sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let dir = tempfile::tempdir().expect("temp dir");
                    let $store = doorstep_office::SqliteStore::open(dir.path()).expect("open");
                    super::$check($handed).await;
                }
            )*
        }
        mod $postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let url = crate::postgres::fresh_database().await;
                    let $store = doorstep_office::store::postgres::PgStore::connect(&url, 4)
                        .await
                        .expect("connect");
                    super::$check($handed).await;
                }
            )*
        }
    };
    ($($check:ident),* $(,)?) => {
        on_both_backends!(@modules sqlite, postgres, |store| &store; $($check),*);
    };
}
pub(crate) use on_both_backends;

/// The server's admin connection string (to its `postgres` database).
fn server() -> &'static str {
    static SERVER: OnceLock<String> = OnceLock::new();
    SERVER.get_or_init(|| match std::env::var("DOORSTEP_TEST_POSTGRES") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => start_cluster(),
    })
}

/// A new, empty database on the test server, as a connection string.
pub async fn fresh_database() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let admin = server();
    let name = format!(
        "doorstep_test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let (client, connection) = tokio_postgres::connect(admin, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to the test PostgreSQL at {admin}: {e}"));
    let connection = tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create a test database");
    drop(client);
    let _ = connection.await;
    let config: tokio_postgres::Config = admin.parse().expect("the admin connection string");
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        other => panic!("the test PostgreSQL must be reached over TCP, not {other:?}"),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("postgres");
    let password = config
        .get_password()
        .map(|p| format!(" password={}", String::from_utf8_lossy(p)))
        .unwrap_or_default();
    format!("host={host} port={port} user={user}{password} dbname={name}")
}

/// Where Debian's PostgreSQL keeps `initdb` and `postgres`.
fn bin_dir() -> PathBuf {
    let found = std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists())
        .max();
    found.unwrap_or_else(|| {
        panic!(
            "no PostgreSQL server found under /usr/lib/postgresql: run `bash scripts/install-deps` \
             (it installs Debian's postgresql), or set DOORSTEP_TEST_POSTGRES to a server's URL"
        )
    })
}

/// The pipe that keeps the cluster running: held until the process ends.
static KEEP_ALIVE: Mutex<Vec<(Child, ChildStdin)>> = Mutex::new(Vec::new());

fn start_cluster() -> String {
    let bin = bin_dir();
    let root = running_as_root();
    let folder = tempfile::Builder::new()
        .prefix("doorstep-pg-")
        .tempdir()
        .expect("a folder for the test cluster")
        .keep();
    let data = folder.join("data");
    let port = free_port();
    let as_owner = |script: String| {
        let mut command = if root {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&folder)
                .status()
                .expect("run chown");
            assert!(status.success(), "chown the test cluster's folder");
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--", "sh", "-c", &script]);
            command
        } else {
            let mut command = Command::new("sh");
            command.args(["-c", &script]);
            command
        };
        command.current_dir("/");
        command
    };
    let init = as_owner(format!(
        "'{bin}/initdb' -D '{data}' -U postgres --auth=trust --no-sync -E UTF8 >'{folder}/initdb.log' 2>&1",
        bin = bin.display(),
        data = data.display(),
        folder = folder.display()
    ))
    .status()
    .expect("run initdb");
    assert!(
        init.success(),
        "initdb failed: see {}/initdb.log",
        folder.display()
    );
    // The server runs until this process's end closes its stdin; then it is stopped and its folder removed.
    let mut server = as_owner(format!(
        "'{bin}/postgres' -D '{data}' -p {port} -h 127.0.0.1 -k '{folder}' -c fsync=off \
         -c max_connections=200 >'{folder}/server.log' 2>&1 & pid=$!; \
         cat >/dev/null; kill -INT $pid; wait $pid; rm -rf '{folder}'",
        bin = bin.display(),
        data = data.display(),
        folder = folder.display()
    ))
    .stdin(Stdio::piped())
    .spawn()
    .expect("start postgres");
    let mut stdin = server.stdin.take().expect("the server's stdin");
    let _ = stdin.flush();
    KEEP_ALIVE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((server, stdin));
    let url = format!("host=127.0.0.1 port={port} user=postgres dbname=postgres");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the test PostgreSQL did not start: see {}/server.log",
            folder.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Listening is not yet accepting: wait until a query answers.
    let ready = Command::new(bin.join("pg_isready"))
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-t", "30"])
        .status()
        .expect("run pg_isready");
    assert!(ready.success(), "the test PostgreSQL is not ready");
    url
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}
