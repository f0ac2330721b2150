//! The real office binary, killed with SIGKILL after acknowledging a batch, loses nothing when restarted.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use doorstep_core::lifecycle::VisitEvent;
use doorstep_office::demo::PhoneConfig;

use crate::helpers::*;

struct OfficeProcess(Child);

impl Drop for OfficeProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the office binary and waits until it has written the demo phone's config and answers.
async fn start(data_dir: &Path) -> (OfficeProcess, PhoneConfig) {
    let config_path = data_dir.join("demo-phone.json");
    let before = std::fs::read_to_string(&config_path).ok();
    let child = Command::new(env!("CARGO_BIN_EXE_doorstep-office"))
        .args(["--listen", "127.0.0.1:0", "--demo", "--data-dir"])
        .arg(data_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the office binary");
    let process = OfficeProcess(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(Instant::now() < deadline, "the office did not start");
        if let Ok(text) = std::fs::read_to_string(&config_path) {
            if Some(&text) != before.as_ref() {
                let config: PhoneConfig = serde_json::from_str(&text).expect("phone config");
                let health = reqwest::get(format!("{}/api/v1/health", config.office_url)).await;
                if health.is_ok_and(|r| r.status().is_success()) {
                    return (process, config);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_office_killed_after_acknowledging_has_lost_nothing_when_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let (mut process, phone) = start(dir.path()).await;
    let events: Vec<_> = (1..=20)
        .map(|seq| {
            let event = if seq == 1 {
                departed("sam")
            } else {
                VisitEvent::CheckedIn {
                    staff: staff("sam"),
                }
            };
            envelope(&phone, seq, "visit-ava", event)
        })
        .collect();
    let response = http
        .post(format!("{}/api/v1/sync", phone.office_url))
        .bearer_auth(&phone.device_token)
        .json(&batch(&events))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["acknowledged_through"], 20);

    // SIGKILL: no graceful shutdown, no chance to flush anything after the answer.
    process.0.kill().unwrap();
    process.0.wait().unwrap();

    let (_process, phone) = start(dir.path()).await;
    let response = http
        .post(format!("{}/api/v1/sync", phone.office_url))
        .bearer_auth(&phone.device_token)
        .json(&batch(&events))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["outcome"] == "duplicate"),
        "every acknowledged event survived the kill: {body}"
    );
    let conn = rusqlite::Connection::open(dir.path().join("office.sqlite3")).unwrap();
    let count: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM events WHERE device_id = 'phone-sam'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(count, 20);
}
