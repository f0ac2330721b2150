//! The office stays up for everyone while one client misbehaves: idle sockets from one address, a body
//! trickled byte by byte; and HTTPS from certificate files, with HSTS on the dashboard.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use chrono::Utc;
use doorstep_office::serve::{Limits, Tls};
use doorstep_office::{OfficeSettings, WebSettings};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::helpers::*;

/// Tight limits so a test can reach them quickly.
fn tight() -> Limits {
    Limits {
        max_connections: 200,
        max_connections_per_peer: 40,
        overflow_connections: 40,
        header_read_timeout: Duration::from_secs(2),
        body_read_timeout: Duration::from_secs(2),
        shutdown_grace: Duration::from_secs(1),
    }
}

/// A TCP connection to `office` from the loopback address `from` (127.0.0.x), which the office sees as
/// another peer than the phones on 127.0.0.1.
async fn connect_from(from: Ipv4Addr, office: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::V4(from), 0))?;
    socket.connect(office).await
}

fn address(office: &TestOffice) -> SocketAddr {
    office
        .url
        .trim_start_matches("http://")
        .parse()
        .expect("the office's address")
}

/// An empty sync from Sam's phone, timed.
async fn a_phones_sync_takes(office: &TestOffice) -> Duration {
    let started = Instant::now();
    let (status, body) = office
        .post_sync(&office.phones.me.device_token, &batch(&[]))
        .await;
    assert_eq!(status, 200, "{body}");
    started.elapsed()
}

#[tokio::test]
async fn hundreds_of_idle_sockets_from_one_address_leave_the_office_answering_a_phone() {
    let office = spawn_office_settings(
        OfficeSettings {
            limits: tight(),
            ..OfficeSettings::default()
        },
        Utc::now(),
    )
    .await;
    let normal = a_phones_sync_takes(&office).await;

    // One client opens far more connections than its share and never sends a byte on them.
    let attacker = Ipv4Addr::new(127, 0, 0, 2);
    let mut idle = Vec::new();
    for _ in 0..300 {
        if let Ok(stream) = connect_from(attacker, address(&office)).await {
            idle.push(stream);
        }
    }
    assert!(
        idle.len() >= 250,
        "the kernel accepted the attack's sockets"
    );
    // The office still answers another phone at once: the attack holds at most its own share.
    let during = a_phones_sync_takes(&office).await;
    assert!(
        during < normal + Duration::from_secs(1),
        "a sync took {during:?} during the flood (normally {normal:?})"
    );
    let health = office
        .http
        .get(format!("{}/api/v1/health", office.url))
        .send()
        .await
        .expect("health answers");
    assert_eq!(health.status(), 200);

    // And an idle socket is closed by the office within the header read timeout.
    let mut one = idle.pop().expect("a socket");
    let mut byte = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(5), one.read(&mut byte)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "the office closed the idle connection: {closed:?}"
    );
}

/// Many phones behind one carrier address, past the per-address cap: the office does not drop their
/// connections unread. An ordinary sync is told to come back (`503`, `Retry-After`, nothing stored), a page
/// too, and a sync carrying an alert is stored and answered; each such connection carries one request.
#[tokio::test]
async fn past_the_per_address_cap_an_alert_still_goes_through_and_an_ordinary_sync_is_told_to_come_back(
) {
    let office = spawn_office_settings(
        OfficeSettings {
            limits: Limits {
                max_connections_per_peer: 2,
                overflow_connections: 8,
                header_read_timeout: Duration::from_secs(20),
                ..tight()
            },
            ..OfficeSettings::default()
        },
        Utc::now(),
    )
    .await;
    let carrier = Ipv4Addr::new(127, 0, 0, 5);
    // Two connections from the carrier's address take its share: each has had an answer, so the office
    // has let it in, and each stays open (kept alive) while this test runs.
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut stream = connect_from(carrier, address(&office))
            .await
            .expect("connect");
        stream
            .write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: office\r\n\r\n")
            .await
            .expect("ask");
        let mut buf = [0u8; 512];
        let n = stream.read(&mut buf).await.expect("an answer");
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
        open.push(stream);
    }
    // Every request below opens a fresh connection from the same address.
    let phone = || {
        reqwest::Client::builder()
            .local_address(IpAddr::V4(carrier))
            .pool_max_idle_per_host(0)
            .build()
            .expect("a client")
    };

    let sam = &office.phones.me;
    let ordinary = phone()
        .post(format!("{}/api/v1/sync", office.url))
        .bearer_auth(&sam.device_token)
        .json(&batch(&[envelope(sam, 1, "visit-ava", departed("sam"))]))
        .send()
        .await
        .expect("an answer, not a dropped connection");
    assert_eq!(ordinary.status(), 503);
    assert_eq!(ordinary.headers()["retry-after"], "2");
    assert_eq!(ordinary.headers()["connection"], "close");
    let body: serde_json::Value = ordinary.json().await.expect("a JSON reason");
    assert_eq!(body["error"], "busy", "{body}");
    assert_eq!(office.stored_event_count(), 0, "nothing of it was stored");

    let page = phone()
        .get(format!("{}/api/v1/health", office.url))
        .send()
        .await
        .expect("an answer");
    assert_eq!(page.status(), 503);

    let alex = &office.phones.partner;
    let alert = set_off_then_duress(alex, "alex");
    let answer = phone()
        .post(format!("{}/api/v1/sync", office.url))
        .bearer_auth(&alex.device_token)
        .json(&batch(&alert))
        .send()
        .await
        .expect("an answer");
    assert_eq!(answer.status(), 200, "an alert is always let in");
    assert_eq!(answer.headers()["connection"], "close");
    let body: serde_json::Value = answer.json().await.expect("the sync's answer");
    assert_eq!(body["results"][1]["outcome"], "stored", "{body}");
    assert_eq!(office.stored_event_count(), 2);

    // A phone on another address is served as ever.
    let (status, body) = office.post_sync(&sam.device_token, &batch(&[])).await;
    assert_eq!(status, 200, "{body}");

    // Once the carrier's connections close, its ordinary syncs go through again.
    drop(open);
    let mut stored = false;
    for _ in 0..50 {
        let again = phone()
            .post(format!("{}/api/v1/sync", office.url))
            .bearer_auth(&sam.device_token)
            .json(&batch(&[envelope(sam, 1, "visit-ava", departed("sam"))]))
            .send()
            .await
            .expect("an answer");
        if again.status() == 200 {
            stored = true;
            break;
        }
        // The office notices the closed sockets as soon as it reads from them; wait the Retry-After's
        // tenth, as a phone would wait the whole of it.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        stored,
        "the carrier's ordinary sync went through once its share was free"
    );
    assert_eq!(office.stored_event_count(), 3);
}

#[tokio::test]
async fn a_body_trickled_byte_by_byte_is_cut_off_and_phones_are_still_answered() {
    let office = spawn_office_settings(
        OfficeSettings {
            limits: tight(),
            ..OfficeSettings::default()
        },
        Utc::now(),
    )
    .await;
    let mut slow = connect_from(Ipv4Addr::new(127, 0, 0, 3), address(&office))
        .await
        .expect("connect");
    let head = format!(
        "POST /api/v1/sync HTTP/1.1\r\nHost: office\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{",
        office.phones.me.device_token
    );
    slow.write_all(head.as_bytes())
        .await
        .expect("send the head");
    let started = Instant::now();
    let mut answered = Vec::new();
    let outcome = tokio::time::timeout(Duration::from_secs(8), async {
        loop {
            // One byte a second: far slower than any phone, still "sending".
            if slow.write_all(b" ").await.is_err() {
                break;
            }
            let mut buf = [0u8; 512];
            match tokio::time::timeout(Duration::from_secs(1), slow.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => answered.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
            if !answered.is_empty() {
                break;
            }
        }
    })
    .await;
    assert!(outcome.is_ok(), "the office never cut the slow body off");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "cut off after {:?}",
        started.elapsed()
    );
    let answer = String::from_utf8_lossy(&answered);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "a refusal, never a 5xx: {answer}"
    );
    assert_eq!(office.stored_event_count(), 0, "nothing half-written");
    a_phones_sync_takes(&office).await;
}

/// A CA and a certificate for 127.0.0.1 it signed, as PEM files in `dir`: (CA, chain, key).
fn certificate_files(dir: &std::path::Path) -> (String, std::path::PathBuf, std::path::PathBuf) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Oakfield test CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let (cert_file, key_file) = (dir.join("office.crt"), dir.join("office.key"));
    std::fs::write(&cert_file, leaf.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    (ca.pem(), cert_file, key_file)
}

#[tokio::test]
async fn the_office_serves_https_from_certificate_files_with_hsts_on_the_dashboard() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificate_files(dir.path());
    let tls = Tls::from_pem_files(&cert, &key).expect("a TLS configuration from the files");
    let mut office = spawn_office_settings(
        OfficeSettings {
            tls: Some(tls),
            ..OfficeSettings::default()
        },
        Utc::now(),
    )
    .await;
    let https = office.url.replace("http://", "https://");
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
        .build()
        .unwrap();
    let health = client
        .get(format!("{https}/api/v1/health"))
        .send()
        .await
        .expect("health over HTTPS");
    assert_eq!(health.status(), 200);
    let login = client
        .get(format!("{https}/login"))
        .send()
        .await
        .expect("the sign-in page over HTTPS");
    assert_eq!(
        login
            .headers()
            .get("strict-transport-security")
            .and_then(|v| v.to_str().ok()),
        Some("max-age=31536000")
    );
    // Plain HTTP to the same port gets nothing it could read.
    let plain = office
        .http
        .get(format!("{}/api/v1/health", office.url))
        .send()
        .await;
    assert!(
        plain.is_err() || !plain.unwrap().status().is_success(),
        "plain HTTP is not served"
    );
    office.stop();

    // A missing key is a clear error at start, not a panic.
    let refused = Tls::from_pem_files(&cert, &dir.path().join("missing.key"));
    assert!(refused
        .unwrap_err()
        .to_string()
        .contains("could not read the private key"));
}

#[tokio::test]
async fn a_plain_http_demo_sends_no_hsts() {
    let office = spawn_office_with(
        WebSettings {
            secure_cookies: false,
        },
        Utc::now(),
    )
    .await;
    let login = office
        .http
        .get(format!("{}/login", office.url))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    assert!(login.headers().get("strict-transport-security").is_none());
}

#[tokio::test]
async fn password_guessing_locks_the_name_and_a_flood_of_sign_ins_leaves_phones_answered() {
    let office = office_with_sign_ins(&["head"]).await;
    // Five wrong passwords for one name: the sixth try is refused without a check, the right password too.
    let guesser = browser();
    for attempt in 1..=5 {
        let (status, page) = sign_in(&office, &guesser, "head", "wrong guess").await;
        assert_eq!(status, 401, "attempt {attempt}: {page}");
    }
    let (status, page) = sign_in(&office, &guesser, "head", PASSWORD).await;
    assert_eq!(status, 429, "{page}");
    assert!(page.contains("Too many failed sign-ins"), "{page}");
    let (status, _) = sign_in(&office, &browser(), "head", PASSWORD).await;
    assert_eq!(status, 429, "the name is locked whoever tries it");

    // Sixty-four sign-ins at once (each would hash a password): the office checks only a few at a time
    // and tells the rest to come back, while a phone's sync goes through at its normal speed.
    let normal = a_phones_sync_takes(&office).await;
    let flood: Vec<_> = (0..64)
        .map(|i| {
            let office_url = office.url.clone();
            tokio::spawn(async move {
                let client = browser();
                let page = client
                    .get(format!("{office_url}/login"))
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                client
                    .post(format!("{office_url}/login"))
                    .form(&[
                        ("csrf", csrf_in(&page).as_str()),
                        ("name", &format!("nobody{i}")),
                        ("password", "guess"),
                    ])
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let during = a_phones_sync_takes(&office).await;
    let mut statuses = Vec::new();
    for attempt in flood {
        statuses.push(attempt.await.unwrap());
    }
    assert!(
        statuses.iter().all(|s| [401, 429, 503].contains(s)),
        "{statuses:?}"
    );
    assert!(
        during < normal + Duration::from_secs(1),
        "a sync took {during:?} during the sign-in flood (normally {normal:?})"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn the_offices_files_are_readable_only_by_its_own_user() {
    use std::os::unix::fs::PermissionsExt;
    let office = spawn_office().await;
    // A sync writes through the write-ahead log, so all three files exist.
    a_phones_sync_takes(&office).await;
    let database = office.sqlite_file().to_owned();
    let folder = database.parent().expect("the data folder").to_owned();
    let mode = |path: &std::path::Path| {
        std::fs::metadata(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&folder), 0o700, "the data folder");
    for file in [
        database.clone(),
        database.with_extension("sqlite3-wal"),
        database.with_extension("sqlite3-shm"),
    ] {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}
