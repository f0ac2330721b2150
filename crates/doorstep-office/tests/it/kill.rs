//! The real office binary, killed with SIGKILL after acknowledging a batch, loses nothing when restarted.

use doorstep_core::lifecycle::VisitEvent;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::helpers::*;

struct OfficeProcess(Child);

impl Drop for OfficeProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the office binary with `--demo` on `address` and waits until it answers.
async fn start(data_dir: &Path, address: &str) -> OfficeProcess {
    let child = Command::new(env!("CARGO_BIN_EXE_doorstep-office"))
        .args(["--listen", address, "--demo", "--data-dir"])
        .arg(data_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the office binary");
    let process = OfficeProcess(child);
    wait_until_up(&format!("http://{address}")).await;
    process
}

#[tokio::test]
async fn an_office_killed_after_acknowledging_has_lost_nothing_when_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let address = free_address();
    let mut process = start(dir.path(), &address).await;
    let phone = enrol_by_code(dir.path(), &format!("http://{address}"), "sam").await;
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

    let _process = start(dir.path(), &address).await;
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
            "SELECT COUNT(*) FROM events WHERE device_id = ?1",
            [phone.device_id.as_str()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(count, 20);
}
