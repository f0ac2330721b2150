//! The sync endpoint against the real server: stored once, duplicates acknowledged, bad input refused with a
//! reason and nothing stored.

use doorstep_core::lifecycle::{Phase, VisitEvent};

use crate::helpers::*;

#[tokio::test]
async fn a_batch_is_stored_once_and_a_repeat_is_acknowledged_as_duplicate() {
    let office = spawn_office().await;
    let sam = &office.phones.me;
    let events = vec![
        envelope(sam, 1, "visit-ava", departed("sam")),
        envelope(
            sam,
            2,
            "visit-ava",
            VisitEvent::ArrivedOutside {
                staff: staff("sam"),
            },
        ),
    ];
    let (status, body) = office.post_sync(&sam.device_token, &batch(&events)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["outcome"], "stored");
    assert_eq!(body["results"][1]["outcome"], "stored");
    assert_eq!(body["acknowledged_through"], 2);
    assert_eq!(office.stored_event_count(), 2);

    let (status, body) = office.post_sync(&sam.device_token, &batch(&events)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["outcome"], "duplicate");
    assert_eq!(body["results"][1]["outcome"], "duplicate");
    assert_eq!(
        office.stored_event_count(),
        2,
        "a duplicate batch changes nothing"
    );
}

#[tokio::test]
async fn the_same_id_with_different_content_is_refused_with_409_and_nothing_changes() {
    let office = spawn_office().await;
    let sam = &office.phones.me;
    let original = envelope(sam, 1, "visit-ava", departed("sam"));
    let (status, _) = office
        .post_sync(&sam.device_token, &batch(std::slice::from_ref(&original)))
        .await;
    assert_eq!(status, 200);

    let mut altered = original.clone();
    altered.event = VisitEvent::DuressRaised {
        staff: staff("sam"),
        via: doorstep_core::lifecycle::DuressVia::CodePhraseButton,
    };
    let fresh = envelope(
        sam,
        2,
        "visit-ava",
        VisitEvent::ArrivedOutside {
            staff: staff("sam"),
        },
    );
    let (status, body) = office
        .post_sync(&sam.device_token, &batch(&[fresh, altered.clone()]))
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "conflicting_event");
    assert_eq!(body["rejected"][0]["id"], altered.id.to_string());
    assert_eq!(
        office.stored_event_count(),
        1,
        "the good event in the refused batch is not stored"
    );
    let stored = office.store.events_for_visit(&visit("visit-ava")).unwrap();
    assert!(
        stored.iter().any(|s| s.envelope == original),
        "the original is untouched"
    );
}

#[tokio::test]
async fn a_reused_sequence_number_is_a_conflict() {
    let office = spawn_office().await;
    let sam = &office.phones.me;
    let (status, _) = office
        .post_sync(
            &sam.device_token,
            &batch(&[envelope(sam, 1, "visit-ava", departed("sam"))]),
        )
        .await;
    assert_eq!(status, 200);
    let other = envelope(sam, 1, "visit-leo", departed("sam"));
    let (status, body) = office.post_sync(&sam.device_token, &batch(&[other])).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(office.stored_event_count(), 1);
}

#[tokio::test]
async fn events_that_are_not_this_phones_to_send_are_refused_with_reasons_and_nothing_is_stored() {
    let office = spawn_office().await;
    let (sam, alex) = (&office.phones.me, &office.phones.partner);
    let good = envelope(alex, 1, "visit-ava", departed("alex"));
    let cases = [
        // Alex is not on visit-leo (Sam and Jo are).
        (
            envelope(alex, 2, "visit-leo", departed("alex")),
            "not one of this phone's visits",
        ),
        // A visit that does not exist.
        (
            envelope(alex, 2, "visit-nope", departed("alex")),
            "not one of this phone's visits",
        ),
        // Sam's event sent with Alex's token.
        (
            envelope(sam, 2, "visit-ava", departed("sam")),
            "from device phone-sam",
        ),
        // Alex claiming to be Sam.
        (
            envelope(alex, 2, "visit-ava", departed("sam")),
            "this phone belongs to alex",
        ),
        // A phone cannot authorise.
        (
            envelope(
                alex,
                2,
                "visit-mia",
                VisitEvent::Authorised {
                    by: staff("alex"),
                    lone_visit_approved: false,
                },
            ),
            "only the office can record \"authorised\"",
        ),
        // Nor call a visit off, nor close an alarm: those are the office's decisions too.
        (
            envelope(
                alex,
                2,
                "visit-ava",
                VisitEvent::CalledOff {
                    by: staff("alex"),
                    reason: "Not going".into(),
                },
            ),
            "only the office can record \"called off by the office\"",
        ),
        (
            envelope(
                alex,
                2,
                "visit-ava",
                VisitEvent::AlertsClosed {
                    by: staff("alex"),
                    outcome: doorstep_core::lifecycle::AlarmOutcome::StaffSafe,
                    note: "fine".into(),
                    alerts: Vec::new(),
                },
            ),
            "only the office can record \"alarm closed by the office\"",
        ),
        // Naming someone who is not on the visit.
        (
            envelope(
                alex,
                2,
                "visit-ava",
                VisitEvent::ArrivedTogether {
                    by: staff("alex"),
                    staff: vec![staff("alex"), staff("jo")],
                },
            ),
            "jo is not on visit visit-ava",
        ),
        // Values out of range.
        (
            envelope(
                alex,
                2,
                "visit-ava",
                VisitEvent::Cancelled {
                    staff: staff("alex"),
                    reason: doorstep_core::lifecycle::CancelReason::Other,
                    note: "x".repeat(4_001),
                },
            ),
            "longer than 4000",
        ),
    ];
    for (bad, reason) in cases {
        let (status, body) = office
            .post_sync(&alex.device_token, &batch(&[good.clone(), bad.clone()]))
            .await;
        assert_eq!(status, 422, "{reason}: {body}");
        assert_eq!(body["error"], "event_rejected");
        assert_eq!(body["rejected"].as_array().unwrap().len(), 1, "{body}");
        assert_eq!(body["rejected"][0]["id"], bad.id.to_string());
        let said = body["rejected"][0]["reason"].as_str().unwrap();
        assert!(said.contains(reason), "expected {reason:?} in {said:?}");
        assert_eq!(
            office.stored_event_count(),
            0,
            "{reason}: nothing is stored"
        );
    }
}

#[tokio::test]
async fn malformed_requests_get_a_json_reason_and_store_nothing() {
    let office = spawn_office().await;
    let sam = &office.phones.me;
    let good = batch(&[envelope(sam, 1, "visit-ava", departed("sam"))]);
    let sync = format!("{}/api/v1/sync", office.url);
    let mut unknown_field = good.clone();
    unknown_field["extra"] = serde_json::json!(1);
    let mut missing_field = good.clone();
    missing_field.as_object_mut().unwrap().remove("device_time");
    let mut seq_zero = good.clone();
    seq_zero["events"][0]["seq"] = serde_json::json!(0);
    let mut bad_visit_id = good.clone();
    bad_visit_id["events"][0]["visit"] = serde_json::json!("../../etc");
    let mut newer_protocol = good.clone();
    newer_protocol["protocol"] = serde_json::json!(2);
    let mut unknown_event = good.clone();
    unknown_event["events"][0]["event"]["type"] = serde_json::json!("teleported");
    let mut bad_time = good.clone();
    bad_time["events"][0]["recorded_at"] = serde_json::json!("yesterday");

    let json_cases = [
        (unknown_field, 400, "unknown field"),
        (missing_field, 400, "missing field"),
        (seq_zero, 400, "sequence numbers run from 1"),
        (bad_visit_id, 400, "only letters, digits"),
        (newer_protocol, 400, "protocol"),
        (unknown_event, 400, "unknown variant"),
        (bad_time, 400, "could not be read"),
    ];
    for (body, want_status, want_text) in json_cases {
        let (status, answer) = office.post_sync(&sam.device_token, &body).await;
        assert_eq!(status, want_status, "{want_text}: {answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(
            message.contains(want_text),
            "expected {want_text:?} in {message:?}"
        );
    }

    let raw = |body: Vec<u8>, content_type: &'static str| {
        office
            .http
            .post(&sync)
            .bearer_auth(&sam.device_token)
            .header("content-type", content_type)
            .body(body)
    };
    let cases = [
        (
            raw(b"{not json".to_vec(), "application/json"),
            400,
            "bad_json",
        ),
        (raw(b"".to_vec(), "application/json"), 400, "bad_json"),
        (
            raw(good.to_string().into_bytes(), "text/plain"),
            415,
            "not_json",
        ),
        (
            raw(vec![b' '; 3 * 1024 * 1024], "application/json"),
            413,
            "too_large",
        ),
        (office.http.post(&sync).json(&good), 401, "unauthorized"),
        (
            office
                .http
                .post(&sync)
                .bearer_auth("not-a-token")
                .json(&good),
            401,
            "unknown_device",
        ),
        (office.http.get(&sync), 405, "method_not_allowed"),
        (
            office.http.get(format!("{}/api/v2/nothing", office.url)),
            404,
            "not_found",
        ),
    ];
    for (request, want_status, want_code) in cases {
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), want_status, "{want_code}");
        let answer: serde_json::Value = response.json().await.expect("every refusal is JSON");
        assert_eq!(answer["error"], want_code);
    }

    let too_many: Vec<_> = (1..=501)
        .map(|seq| envelope(sam, seq, "visit-ava", departed("sam")))
        .collect();
    let (status, answer) = office.post_sync(&sam.device_token, &batch(&too_many)).await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(office.stored_event_count(), 0);
}

#[tokio::test]
async fn the_office_replays_a_pairs_events_into_the_visit_state_and_shares_them_with_the_partner() {
    let office = spawn_office().await;
    let (sam, alex) = (&office.phones.me, &office.phones.partner);
    let sam_events = vec![
        envelope(sam, 1, "visit-ava", departed("sam")),
        envelope(
            sam,
            2,
            "visit-ava",
            VisitEvent::ArrivedOutside {
                staff: staff("sam"),
            },
        ),
    ];
    let (status, _) = office
        .post_sync(&sam.device_token, &batch(&sam_events))
        .await;
    assert_eq!(status, 200);
    let (_, state) = office.store.visit(&visit("visit-ava")).unwrap().unwrap();
    assert_eq!(state.phase(), Phase::Outside);
    assert!(state.progress(&staff("alex")).unwrap() < state.progress(&staff("sam")).unwrap());

    // Alex's phone learns of Sam's arrival from the office.
    let (status, body) = office.post_sync(&alex.device_token, &batch(&[])).await;
    assert_eq!(status, 200);
    let held = body["hold"]["visits"].as_array().unwrap();
    let ava = held
        .iter()
        .find(|v| v["visit"]["id"] == "visit-ava")
        .unwrap();
    let kinds: Vec<_> = ava["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["authorised", "departed", "arrived_outside"]);
    assert_eq!(body["hold"]["staff"], "alex");
    let ids: Vec<_> = held
        .iter()
        .map(|v| v["visit"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["visit-ava", "visit-mia"],
        "Alex holds only Alex's visits, in time order"
    );
}

#[tokio::test]
async fn a_phone_cannot_grow_a_visit_without_limit_but_its_alerts_still_go_through() {
    use doorstep_office::store::MAX_EVENTS_PER_DEVICE_AND_VISIT;
    let office = spawn_office().await;
    let alex = &office.phones.partner;
    let check_in = || VisitEvent::CheckedIn {
        staff: staff("alex"),
    };
    let quota = MAX_EVENTS_PER_DEVICE_AND_VISIT as u64;
    // Batch after batch of check-ins, up to the quota: all stored.
    for start in (1..=quota).step_by(100) {
        let events: Vec<_> = (start..start + 100)
            .map(|seq| envelope(alex, seq, "visit-ava", check_in()))
            .collect();
        let (status, body) = office.post_sync(&alex.device_token, &batch(&events)).await;
        assert_eq!(status, 200, "{body}");
    }
    // One more: refused with a reason, and nothing of its batch stored.
    let extra = envelope(alex, quota + 1, "visit-ava", check_in());
    let (status, body) = office
        .post_sync(&alex.device_token, &batch(std::slice::from_ref(&extra)))
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["rejected"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("more than any visit needs"),
        "{body}"
    );
    // An alert from the same phone for the same visit still goes through.
    let alert = envelope(
        alex,
        quota + 2,
        "visit-ava",
        VisitEvent::DuressRaised {
            staff: staff("alex"),
            via: doorstep_core::lifecycle::DuressVia::CodePhraseButton,
        },
    );
    let (status, body) = office.post_sync(&alex.device_token, &batch(&[alert])).await;
    assert_eq!(status, 200, "{body}");
    // And another phone syncs as usual.
    let (status, body) = office
        .post_sync(&office.phones.me.device_token, &batch(&[]))
        .await;
    assert_eq!(status, 200, "{body}");
}

/// The visit ids an answer holds, and the event kinds held for `visit`.
fn held(body: &serde_json::Value, visit: &str) -> (Vec<String>, Vec<String>) {
    let visits = body["hold"]["visits"].as_array().unwrap();
    let ids = visits
        .iter()
        .map(|v| v["visit"]["id"].as_str().unwrap().to_owned())
        .collect();
    let kinds = visits
        .iter()
        .find(|v| v["visit"]["id"] == visit)
        .map(|v| {
            v["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["event"]["type"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    (ids, kinds)
}

fn cursor(body: &serde_json::Value) -> String {
    body["holdings_cursor"]
        .as_str()
        .expect("every answer carries a cursor")
        .to_owned()
}

#[tokio::test]
async fn a_phone_that_sends_back_its_cursor_is_told_only_what_changed_since() {
    let office = spawn_office().await;
    let (sam, alex) = (&office.phones.me, &office.phones.partner);
    // First contact: everything.
    let (status, first) = office.post_sync(&alex.device_token, &batch(&[])).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["hold_scope"], "full");
    assert_eq!(
        held(&first, "visit-ava"),
        (
            vec!["visit-ava".to_owned(), "visit-mia".to_owned()],
            vec!["authorised".to_owned()]
        )
    );
    // Nothing happened since: nothing to hold anew.
    let (status, idle) = office
        .post_sync(&alex.device_token, &batch_since(&[], Some(&cursor(&first))))
        .await;
    assert_eq!(status, 200, "{idle}");
    assert_eq!(idle["hold_scope"], "changes_only");
    assert_eq!(idle["hold"]["visits"], serde_json::json!([]));
    assert_eq!(idle["more"], false);
    // Sam sets off: Alex is told of that step alone, with the office's time for it.
    let (status, _) = office
        .post_sync(
            &sam.device_token,
            &batch(&[envelope(sam, 1, "visit-ava", departed("sam"))]),
        )
        .await;
    assert_eq!(status, 200);
    let (_, changes) = office
        .post_sync(&alex.device_token, &batch_since(&[], Some(&cursor(&idle))))
        .await;
    assert_eq!(changes["hold_scope"], "changes_only");
    assert_eq!(
        held(&changes, "visit-ava"),
        (vec!["visit-ava".to_owned()], vec!["departed".to_owned()])
    );
    assert_eq!(
        changes["hold"]["visits"][0]["times"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // A cursor the office cannot read, or one from before a change it cannot express as events (the
    // school's policy here), gets everything again.
    for bad in ["nonsense", "0.0.", &format!("{}x", cursor(&changes))] {
        let (status, body) = office
            .post_sync(&alex.device_token, &batch_since(&[], Some(bad)))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["hold_scope"], "full", "{bad}");
        assert_eq!(held(&body, "visit-ava").1, ["authorised", "departed"]);
    }
    let school: doorstep_core::ids::SchoolId = "demo-primary".parse().unwrap();
    let mut policy = office.store.policy(&school).unwrap();
    policy.check_in_interval = doorstep_core::policy::PolicyMinutes::new(25).unwrap();
    office.store.set_policy(&school, &policy).unwrap();
    let (_, after_change) = office
        .post_sync(
            &alex.device_token,
            &batch_since(&[], Some(&cursor(&changes))),
        )
        .await;
    assert_eq!(after_change["hold_scope"], "full");
    assert_eq!(after_change["hold"]["policy"]["check_in_interval"], 25);
    // A cursor longer than any the office gives is refused, and changes nothing.
    let long = "x".repeat(doorstep_core::protocol::MAX_CURSOR_LEN + 1);
    let before = office.stored_event_count();
    let (status, body) = office
        .post_sync(
            &sam.device_token,
            &batch_since(
                &[envelope(sam, 2, "visit-ava", departed("sam"))],
                Some(&long),
            ),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "bad_cursor");
    assert_eq!(office.stored_event_count(), before);
}

#[tokio::test]
async fn a_visit_grown_to_its_quota_costs_a_partners_idle_sync_nothing_and_changes_come_in_bounded_answers(
) {
    use doorstep_core::protocol::MAX_CHANGED_EVENTS;
    use doorstep_office::store::MAX_EVENTS_PER_DEVICE_AND_VISIT;
    let office = spawn_office().await;
    let (sam, alex) = (&office.phones.me, &office.phones.partner);
    let (_, first) = office.post_sync(&sam.device_token, &batch(&[])).await;
    let (_, alex_first) = office.post_sync(&alex.device_token, &batch(&[])).await;
    // Alex's phone fills both its visits to the quota.
    let quota = MAX_EVENTS_PER_DEVICE_AND_VISIT as u64;
    let mut seq = 0;
    for visit in ["visit-ava", "visit-mia"] {
        for _ in 0..quota / 100 {
            let events: Vec<_> = (0..100)
                .map(|_| {
                    seq += 1;
                    envelope(
                        alex,
                        seq,
                        visit,
                        VisitEvent::CheckedIn {
                            staff: staff("alex"),
                        },
                    )
                })
                .collect();
            let (status, body) = office.post_sync(&alex.device_token, &batch(&events)).await;
            assert_eq!(status, 200, "{body}");
        }
    }
    // And Sam sets off: more changes than one answer carries, for Alex.
    let (status, _) = office
        .post_sync(
            &sam.device_token,
            &batch(&[envelope(sam, 1, "visit-ava", departed("sam"))]),
        )
        .await;
    assert_eq!(status, 200);
    let behind = 2 * quota as usize + 1;
    assert!(behind > MAX_CHANGED_EVENTS);
    // Sam, on both visits too, catches up in answers of at most MAX_CHANGED_EVENTS, then is up to date.
    let mut sam_cursor = cursor(&first);
    let mut answers = 0;
    loop {
        let (_, changes) = office
            .post_sync(&sam.device_token, &batch_since(&[], Some(&sam_cursor)))
            .await;
        assert_eq!(changes["hold_scope"], "changes_only");
        sam_cursor = cursor(&changes);
        answers += 1;
        if changes["more"] == false {
            break;
        }
        assert!(answers < 5, "the changes never end");
    }
    assert_eq!(answers, 2);
    let (_, idle) = office
        .post_sync(&sam.device_token, &batch_since(&[], Some(&sam_cursor)))
        .await;
    let idle_bytes = serde_json::to_vec(&idle).unwrap().len();
    let (_, full) = office.post_sync(&sam.device_token, &batch(&[])).await;
    let full_bytes = serde_json::to_vec(&full).unwrap().len();
    assert_eq!(idle["hold"]["visits"], serde_json::json!([]));
    assert!(
        idle_bytes < 8 * 1024 && full_bytes > 20 * idle_bytes,
        "an idle sync's answer is {idle_bytes} bytes; sent whole, {full_bytes}"
    );
    // Alex's own phone, behind by both visits' events and Sam's step: two bounded answers, the second
    // saying it is the last.
    let (_, part) = office
        .post_sync(
            &alex.device_token,
            &batch_since(&[], Some(&cursor(&alex_first))),
        )
        .await;
    let count = |body: &serde_json::Value| -> usize {
        body["hold"]["visits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["events"].as_array().unwrap().len())
            .sum()
    };
    assert_eq!(count(&part), MAX_CHANGED_EVENTS);
    assert_eq!(part["more"], true);
    let (_, rest) = office
        .post_sync(&alex.device_token, &batch_since(&[], Some(&cursor(&part))))
        .await;
    assert_eq!(count(&rest), behind - MAX_CHANGED_EVENTS);
    assert_eq!(rest["more"], false);
    assert_eq!(held(&rest, "visit-ava").1.last().unwrap(), "departed");
}

/// The fuzz target's seed (`fuzz/seeds/sync_request/`) is a request the office's decoder reads, every kind
/// of list and text in it, so fuzzing starts from inside the event checks rather than at the JSON parser.
#[test]
fn the_sync_fuzz_seed_is_a_request_the_decoder_reads() {
    let seed = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds/sync_request/batch.json");
    let body = std::fs::read(&seed).expect("the seed is in the repository");
    let request = doorstep_office::api::decode_sync_request(Some("application/json"), &body)
        .map_err(|e| e.body().message.clone())
        .expect("the seed is read");
    assert_eq!(request.events.len(), 7);
}

/// A duress alarm is raised in the very transaction that stores the alert: once the sync is answered the
/// alarm is on disk, the board's live stream has heard `alarm_raised`, and the engine, looking at the visit
/// again, recognises it and raises no second one.
#[tokio::test]
async fn a_duress_alarm_is_committed_with_its_alert_and_reaches_the_board_once() {
    let office = office_with_sign_ins(&["office"]).await;
    let (client, _) = signed_in(&office, "office").await;
    let mut stream = client
        .get(format!("{}/board/events", office.url))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let sam = &office.phones.me;
    let events = [
        envelope(sam, 1, "visit-ava", departed("sam")),
        envelope(
            sam,
            2,
            "visit-ava",
            VisitEvent::DuressRaised {
                staff: staff("sam"),
                via: doorstep_core::lifecycle::DuressVia::CodePhraseButton,
            },
        ),
    ];
    let (status, body) = office.post_sync(&sam.device_token, &batch(&events)).await;
    assert_eq!(status, 200, "{body}");

    // On disk, read through a connection of its own: committed, not merely held by the office.
    let duress_rows = || -> i64 {
        office.sql_count(
            "SELECT COUNT(*) FROM alarms WHERE visit_id = 'visit-ava' AND kind = 'duress'",
        )
    };
    assert_eq!(duress_rows(), 1, "the alarm was committed with the alert");

    let mut seen = String::new();
    let waited = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while !seen.contains("alarm_raised") {
            let chunk = stream
                .chunk()
                .await
                .unwrap()
                .expect("the stream stays open");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await;
    assert!(waited.is_ok(), "no alarm_raised within 10 s: {seen}");
    assert!(
        seen.contains("duress") && seen.contains("visit-ava"),
        "{seen}"
    );

    // The engine's own look at the visit finds the alarm already raised.
    let (_, announced) = doorstep_office::escalation::evaluate(
        &office.store,
        &visit("visit-ava"),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert!(
        !announced.iter().any(|e| matches!(
            e,
            doorstep_office::escalation::BoardEvent::AlarmRaised { .. }
        )),
        "{announced:?}"
    );
    assert_eq!(duress_rows(), 1, "raised exactly once");
}

/// Past capacity (every place for store work taken, as by slow syncs) an ordinary sync is turned away at
/// once with `503`, `Retry-After` and a reason, and nothing of it stored; a sync carrying an alert is let in
/// and stored all the same; once places free up, ordinary syncs go through again.
#[tokio::test]
async fn past_capacity_an_ordinary_sync_is_told_to_come_back_and_an_alert_is_stored() {
    use doorstep_office::admission::SyncGate;
    let gate = SyncGate::new(2, std::time::Duration::from_millis(50));
    let office = spawn_office_with_gate(gate.clone()).await;
    let full = gate.hold_all().await;
    let sam = &office.phones.me;
    let ordinary = office
        .http
        .post(format!("{}/api/v1/sync", office.url))
        .bearer_auth(&sam.device_token)
        .json(&batch(&[envelope(sam, 1, "visit-ava", departed("sam"))]))
        .send()
        .await
        .unwrap();
    assert_eq!(ordinary.status(), 503);
    assert_eq!(ordinary.headers()["retry-after"], "2");
    let body: serde_json::Value = ordinary.json().await.unwrap();
    assert_eq!(body["error"], "busy", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("send it again in 2 s"),
        "{body}"
    );
    assert_eq!(office.stored_event_count(), 0, "nothing of it was stored");

    let alex = &office.phones.partner;
    let alert = set_off_then_duress(alex, "alex");
    let (status, body) = office.post_sync(&alex.device_token, &batch(&alert)).await;
    assert_eq!(status, 200, "an alert is always let in: {body}");
    assert_eq!(body["results"][1]["outcome"], "stored");
    assert_eq!(office.stored_event_count(), 2);

    drop(full);
    let (status, body) = office
        .post_sync(
            &sam.device_token,
            &batch(&[envelope(sam, 1, "visit-ava", departed("sam"))]),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(office.stored_event_count(), 3);
}

/// Past capacity with the line for places full, an ordinary sync is told to come back at once, not after
/// the whole wait; the one already in line goes through when a place frees up, and an alert is let in
/// regardless.
#[tokio::test]
async fn with_the_line_for_places_full_an_ordinary_sync_is_told_to_come_back_at_once() {
    use doorstep_office::admission::SyncGate;
    let gate = SyncGate::new(1, std::time::Duration::from_secs(20)).with_max_waiting(1);
    let office = spawn_office_with_gate(gate.clone()).await;
    let full = gate.hold_all().await;
    let sam = &office.phones.me;
    let in_line = {
        let request = office
            .http
            .post(format!("{}/api/v1/sync", office.url))
            .bearer_auth(&sam.device_token)
            .json(&batch(&[envelope(sam, 1, "visit-ava", departed("sam"))]));
        tokio::spawn(async move { request.send().await.map(|answer| answer.status()) })
    };
    // The first sync is waiting for the only place before the second arrives.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while gate.waiting() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the first sync never got in line"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let began = std::time::Instant::now();
    let (status, body) = office
        .post_sync(&office.phones.partner.device_token, &batch(&[]))
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "busy", "{body}");
    assert!(
        began.elapsed() < std::time::Duration::from_secs(10),
        "at once, not after the 20 s wait"
    );

    let alex = &office.phones.partner;
    let (status, body) = office
        .post_sync(
            &alex.device_token,
            &batch(&set_off_then_duress(alex, "alex")),
        )
        .await;
    assert_eq!(status, 200, "an alert is always let in: {body}");

    drop(full);
    let status = in_line.await.unwrap().unwrap();
    assert_eq!(status, 200, "the sync in line went through");
    assert_eq!(office.stored_event_count(), 3);
}
