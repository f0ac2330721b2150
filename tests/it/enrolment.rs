//! A phone's life with the office, on real files against the real office: set up with a one-time code
//! (once only, HTTPS only, no PINs anybody would try first), nothing readable in its files before or after
//! a visit and a write-up's words gone even with its key once the office has them, its credential renewed
//! in use, a copy of it on a second phone noticed, its briefings deleted after the policy's days out of
//! touch, and everything deleted when an admin revokes it.

use std::path::Path;
use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use doorstep::enrolment::{set_up, Credential, EnrolError, SetUp};
use doorstep::platform::{DesktopPlatform, Platform};
use doorstep::startup;
use doorstep::store::{AppStore, PinKind};
use doorstep::sync::SyncOutcome;
use doorstep::vault::{Vault, KEY_FILE};
use doorstep_core::event_log::Delivery;
use doorstep_core::ids::SchoolId;
use doorstep_core::lifecycle::{Command, VisitEvent, WriteUp};
use doorstep_core::protocol::{refusal, EnrolmentLink};
use doorstep_core::test_support::{staff, visit};
use doorstep_office::SqliteStore;

use crate::office::*;

fn school() -> SchoolId {
    "demo-primary".parse().unwrap()
}

/// A code for `who` from the office in `office`, as its QR code's link.
fn link_for(office: &InProcessOffice, who: &str) -> String {
    let store = SqliteStore::open(&office.data_dir).unwrap();
    let issued = store
        .issue_enrolment_code(&school(), &staff(who), "ada", Utc::now())
        .unwrap();
    EnrolmentLink {
        office_url: format!("http://{}", office.addr),
        code: issued.code,
    }
    .to_uri()
}

fn form(office_url: &str, code: &str, pin: &str, second: &str) -> SetUp {
    SetUp {
        office_url: office_url.into(),
        code: code.into(),
        pin: pin.into(),
        second_pin: second.into(),
    }
}

fn desktop() -> Arc<dyn Platform> {
    Arc::new(DesktopPlatform::new())
}

/// Every byte of every file in `dir`, as text.
fn files_text(dir: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            text.push_str(&String::from_utf8_lossy(&std::fs::read(path).unwrap()));
        }
    }
    text
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_code_sets_up_one_phone_once_over_https_or_this_machine_with_pins_nobody_would_guess() {
    let office_dir = tempfile::tempdir().unwrap();
    let (mut office, _) = InProcessOffice::start_demo(office_dir.path()).await;
    let link = link_for(&office, "alex");
    let parsed = EnrolmentLink::parse(&link).unwrap();

    // Refused before anything is asked of the office: PINs anybody would try first, a code that is not
    // one, an office that is not HTTPS. The code is still good after each.
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(SetUp, &str)> = vec![
        (
            form("", &link, "1234", "2468"),
            "too easy to guess (digits in a row)",
        ),
        (form("", &link, "2468", "2468"), "the two PINs must differ"),
        (
            form("", &link, "2468", "9999"),
            "too easy to guess (one digit four times)",
        ),
        (
            form(&parsed.office_url, "not a code", "2468", "1357"),
            "not an enrolment code",
        ),
        (
            form("http://office.school.example", &parsed.code, "2468", "1357"),
            "only over HTTPS",
        ),
    ];
    for (attempt, says) in cases {
        let error = set_up(dir.path(), desktop(), attempt, Utc::now())
            .await
            .unwrap_err();
        assert!(error.to_string().contains(says), "{says}: {error}");
        assert!(error.code_still_usable(), "{error}");
        assert!(file_names(dir.path()).is_empty(), "nothing kept: {error}");
    }

    // The code typed as read off the admin's screen, with the office's address typed separately.
    let typed = doorstep_core::protocol::display_enrolment_code(&parsed.code).to_lowercase();
    let enrolled = set_up(
        dir.path(),
        desktop(),
        form(&parsed.office_url, &typed, PIN, SECOND_PIN),
        Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(enrolled.credential.staff, staff("alex"));
    assert_eq!(enrolled.credential.staff_name, "Alex Morgan");
    let store = AppStore::open(enrolled.vault.clone(), &enrolled.credential.device_id).unwrap();
    assert_eq!(store.check_pin(PIN), PinKind::Normal);
    assert_eq!(store.check_pin(SECOND_PIN), PinKind::Duress);
    let client = doorstep::sync::SyncClient::new(
        &enrolled.credential.office_url,
        &enrolled.credential.token,
    )
    .unwrap();
    assert_eq!(
        client.sync_once(&store, Utc::now).await.outcome,
        SyncOutcome::UpToDate
    );
    assert_eq!(store.me().unwrap().unwrap().name, "Alex Morgan");

    // The same code on a second phone: refused, and that phone keeps nothing.
    let other = tempfile::tempdir().unwrap();
    let error = set_up(
        other.path(),
        desktop(),
        form("", &link, PIN, SECOND_PIN),
        Utc::now(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&error, EnrolError::Refused { code, .. } if code == refusal::CODE_USED),
        "{error}"
    );
    assert!(error.to_string().contains("already been used"), "{error}");
    assert!(file_names(other.path()).is_empty());

    // An office that is not there: said plainly.
    let gone = EnrolmentLink {
        office_url: format!("http://{}", free_address()),
        code: parsed.code.clone(),
    }
    .to_uri();
    let error = set_up(
        other.path(),
        desktop(),
        form("", &gone, PIN, SECOND_PIN),
        Utc::now(),
    )
    .await
    .unwrap_err();
    assert!(error.to_string().contains("did not answer"), "{error}");
    office.stop().await;
}

#[tokio::test]
async fn nothing_about_the_family_is_readable_in_the_phones_files_before_or_after_a_visit() {
    let office_dir = tempfile::tempdir().unwrap();
    let (mut office, phones) = InProcessOffice::start_demo(office_dir.path()).await;
    let sam_dir = tempfile::tempdir().unwrap();
    let (sam, client, credential) = set_up_phone(sam_dir.path(), &link_for(&office, "sam")).await;
    client.sync_once(&sam, Utc::now).await;
    // What the demo's first visit says of the family, and its address.
    let ava = visit("visit-ava");
    let card = sam.visit(&ava).unwrap().unwrap();
    assert_eq!(card.visit.address.lines[0], "12 Elm Row");
    let secrets = [
        "Ava B.",
        "12 Elm Row",
        "Asthma; carries an inhaler.",
        "Mum works nights",
        "Alex Morgan",
        credential.token.as_str(),
        "Ring the family about the bus pass",
    ];
    let readable = |when: &str| {
        let text = files_text(sam_dir.path());
        for secret in secrets {
            assert!(
                !text.contains(secret),
                "{when}: {secret:?} is readable on disk"
            );
        }
    };
    readable("before the visit");

    // The visit, Alex vouched for at the door, and Sam's write-up.
    let alex_dir = tempfile::tempdir().unwrap();
    let (alex, alex_client) = phone(alex_dir.path(), &phones.partner);
    alex_client.sync_once(&alex, Utc::now).await;
    alex.perform(
        &ava,
        Command::Depart {
            staff: staff("alex"),
            expected_arrival: card.visit.agreed_time,
            expected_end: card.visit.expected_end(),
        },
        Utc::now(),
    )
    .unwrap();
    alex_client.sync_once(&alex, Utc::now).await;
    client.sync_once(&sam, Utc::now).await;
    let now = Utc::now();
    let steps = [
        Command::ConfirmBriefing {
            staff: staff("sam"),
            ticked: doorstep_core::lifecycle::BriefingCheck::ALL.to_vec(),
        },
        Command::Depart {
            staff: staff("sam"),
            expected_arrival: card.visit.agreed_time,
            expected_end: card.visit.expected_end(),
        },
        Command::ArriveOutside {
            staff: staff("sam"),
        },
        Command::ArriveTogether {
            by: staff("sam"),
            staff: vec![staff("sam"), staff("alex")],
        },
        Command::StartVisit { by: staff("sam") },
        Command::Leave {
            staff: staff("sam"),
        },
        Command::WriteUp {
            staff: staff("sam"),
            write_up: WriteUp {
                seen: "Ava B. and her mum".into(),
                discussed: "The bus to school".into(),
                agreements: "Ring the family about the bus pass".into(),
                safeguarding_concern: false,
                incident: None,
            },
        },
    ];
    for step in steps {
        sam.perform(&ava, step, now).unwrap();
    }
    readable("with the write-up waiting to be sent");
    let report = client.sync_once(&sam, Utc::now).await;
    assert_eq!(report.outcome, SyncOutcome::UpToDate, "{report:?}");
    readable("after the visit");

    // The office has the write-up: the phone keeps it without its words, even under its own key (its own
    // store remembers them for this run only, for the text to paste).
    let written = sam
        .own_events(&ava)
        .unwrap()
        .into_iter()
        .find(|(e, _)| matches!(e.event, VisitEvent::WrittenUp { .. }))
        .unwrap();
    assert!(matches!(written.1, Delivery::Confirmed { .. }));
    assert!(
        matches!(&written.0.event, VisitEvent::WrittenUp { write_up, .. } if write_up.agreements.contains("bus pass")),
        "this run still shows it"
    );
    drop(sam);
    let reopened = {
        let vault = Vault::open(sam_dir.path(), desktop()).unwrap().unwrap();
        AppStore::open(Arc::new(vault), &credential.device_id).unwrap()
    };
    let kept: Vec<VisitEvent> = reopened
        .own_events(&ava)
        .unwrap()
        .into_iter()
        .map(|(e, _)| e.event)
        .collect();
    let text = serde_json::to_string(&kept).unwrap();
    assert!(
        !text.contains("bus pass") && !text.contains("her mum"),
        "{text}"
    );
    assert!(kept
        .iter()
        .any(|e| matches!(e, VisitEvent::WrittenUp { .. })));
    assert!(
        !reopened.words_left_phone(&ava).unwrap().is_empty(),
        "the screens say the office has it"
    );
    office.stop().await;
}

#[tokio::test]
async fn a_revoked_phone_deletes_everything_at_its_next_contact_and_stops_syncing() {
    let office_dir = tempfile::tempdir().unwrap();
    let (mut office, _) = InProcessOffice::start_demo(office_dir.path()).await;
    let dir = tempfile::tempdir().unwrap();
    let (store, client, credential) = set_up_phone(dir.path(), &link_for(&office, "sam")).await;
    client.sync_once(&store, Utc::now).await;
    let card = store.visit(&visit("visit-ava")).unwrap().unwrap();
    // A step recorded but not yet sent when the admin revokes the phone.
    store
        .perform(
            &visit("visit-ava"),
            Command::Depart {
                staff: staff("sam"),
                expected_arrival: card.visit.agreed_time,
                expected_end: card.visit.expected_end(),
            },
            Utc::now(),
        )
        .unwrap();
    assert!(file_names(dir.path()).contains(&KEY_FILE.to_owned()));

    SqliteStore::open(office_dir.path())
        .unwrap()
        .revoke_device(&school(), &credential.device_id, &staff("head"), Utc::now())
        .unwrap();
    let report = client.sync_once(&store, Utc::now).await;
    assert!(
        matches!(report.outcome, SyncOutcome::Refused { status: 403, .. }),
        "{report:?}"
    );
    assert_eq!(
        file_names(dir.path()),
        ["deleted.txt"],
        "files and key gone"
    );
    let (_, reason) = store.removed().expect("the store says so");
    assert_eq!(reason, doorstep::vault::WipeReason::Revoked);
    assert!(store.today(Utc::now()).unwrap().is_empty());
    assert!(store.me().unwrap().is_none());
    assert_eq!(store.check_pin(PIN), PinKind::Wrong);
    assert!(store.credential().is_none());

    // The loop stops at once instead of knocking again; the next start offers set-up, saying why.
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        doorstep::sync::run_sync_loop(client, store.clone(), store.wake_handle()),
    )
    .await
    .expect("the sync loop of a revoked phone ends");
    match startup::open(dir.path(), desktop()).unwrap() {
        startup::Opened::SetUp { notice } => {
            let notice = notice.expect("a notice");
            assert!(
                notice.contains("removed this phone from Doorstep"),
                "{notice}"
            );
        }
        startup::Opened::Ready(_) => panic!("a revoked phone is not ready"),
    }
    office.stop().await;
}

#[tokio::test]
async fn a_credential_renewed_in_use_is_kept_sealed_then_used_and_the_old_one_stops() {
    let office_dir = tempfile::tempdir().unwrap();
    let (mut office, _) = InProcessOffice::start_demo(office_dir.path()).await;
    let dir = tempfile::tempdir().unwrap();
    let (store, client, first) = set_up_phone(dir.path(), &link_for(&office, "jo")).await;
    // A week passes at the office: the token it issued is now a week old.
    let conn = rusqlite::Connection::open(office_dir.path().join("office.sqlite3")).unwrap();
    conn.execute(
        "UPDATE device_tokens SET issued_at = ?1 WHERE device_id = ?2",
        [
            (Utc::now() - TimeDelta::days(8)).to_rfc3339(),
            first.device_id.to_string(),
        ],
    )
    .unwrap();
    drop(conn);

    assert_eq!(
        client.sync_once(&store, Utc::now).await.outcome,
        SyncOutcome::UpToDate
    );
    let renewed = store.credential().unwrap();
    assert_ne!(renewed.token, first.token, "a fresh token was kept");
    assert!(renewed.expires_at > first.expires_at);
    let on_disk = {
        let vault = Vault::open(dir.path(), desktop()).unwrap().unwrap();
        Credential::load(&vault).unwrap().unwrap()
    };
    assert_eq!(on_disk.token, renewed.token, "sealed on disk before use");
    assert!(!files_text(dir.path()).contains(&renewed.token));

    // The phone now uses the new token; the office then refuses the old one.
    assert_eq!(
        client.sync_once(&store, Utc::now).await.outcome,
        SyncOutcome::UpToDate
    );
    let old = doorstep::sync::SyncClient::new(&first.office_url, &first.token).unwrap();
    match old.sync_once(&store, Utc::now).await.outcome {
        SyncOutcome::Refused { status: 401, .. } => {}
        other => panic!("the old token still works: {other:?}"),
    }
    let log = SqliteStore::open(office_dir.path())
        .unwrap()
        .device_log(&school(), 5)
        .unwrap();
    assert_eq!(
        log[0].action,
        doorstep_office::devices::DeviceAction::Renewed
    );
    office.stop().await;
}

#[tokio::test]
async fn a_copy_of_a_phone_on_a_second_phone_is_noticed_by_the_office() {
    let office_dir = tempfile::tempdir().unwrap();
    let (mut office, _) = InProcessOffice::start_demo(office_dir.path()).await;
    let dir = tempfile::tempdir().unwrap();
    let (store, client, credential) = set_up_phone(dir.path(), &link_for(&office, "sam")).await;
    client.sync_once(&store, Utc::now).await;
    drop(store);
    // Someone copies the whole data folder, key file included, to another machine.
    let copy = tempfile::tempdir().unwrap();
    for name in file_names(dir.path()) {
        std::fs::copy(dir.path().join(&name), copy.path().join(&name)).unwrap();
    }
    let open = |dir: &Path| {
        let vault = Vault::open(dir, desktop()).unwrap().unwrap();
        let store = AppStore::open(Arc::new(vault), &credential.device_id).unwrap();
        let credential = store.credential().unwrap();
        let client =
            doorstep::sync::SyncClient::new(&credential.office_url, &credential.token).unwrap();
        (store, client)
    };
    let (real, real_client) = open(dir.path());
    let (clone, clone_client) = open(copy.path());
    let card = real.visit(&visit("visit-ava")).unwrap().unwrap();
    let depart = Command::Depart {
        staff: staff("sam"),
        expected_arrival: card.visit.agreed_time,
        expected_end: card.visit.expected_end(),
    };
    real.perform(&visit("visit-ava"), depart, Utc::now())
        .unwrap();
    assert_eq!(real_client.sync_once(&real, Utc::now).await.confirmed, 1);
    // The copy numbers its next event as the real phone did: the office refuses it and notices.
    clone
        .perform(
            &visit("visit-ava"),
            Command::RunningLate {
                staff: staff("sam"),
                expected_arrival: card.visit.agreed_time + TimeDelta::minutes(30),
            },
            Utc::now(),
        )
        .unwrap();
    let report = clone_client.sync_once(&clone, Utc::now).await;
    assert_eq!(report.refused, 1, "{report:?}");
    let devices = SqliteStore::open(office_dir.path())
        .unwrap()
        .school_devices(&school())
        .unwrap();
    let flagged = devices
        .iter()
        .find(|d| d.id == credential.device_id)
        .unwrap();
    let (_, why) = flagged.clone_suspected.clone().expect("clone suspected");
    assert!(why.contains("sequence number 1"), "{why}");
    // Left for an admin: the real phone goes on.
    assert_eq!(
        real_client.sync_once(&real, Utc::now).await.outcome,
        SyncOutcome::UpToDate
    );
    office.stop().await;
}

#[tokio::test]
async fn a_phone_out_of_touch_for_the_policys_days_deletes_its_briefings_by_itself() {
    let office_dir = tempfile::tempdir().unwrap();
    let (mut office, _) = InProcessOffice::start_demo(office_dir.path()).await;
    let dir = tempfile::tempdir().unwrap();
    let (store, client, _) = set_up_phone(dir.path(), &link_for(&office, "sam")).await;
    let synced = Utc::now();
    client.sync_once(&store, move || synced).await;
    let ava = visit("visit-ava");
    let needs = |store: &AppStore| {
        store
            .visit(&ava)
            .unwrap()
            .unwrap()
            .visit
            .briefing
            .pupil_needs
    };
    assert_eq!(needs(&store), "Asthma; carries an inhaler.");
    office.stop().await;

    // The demo policy's week: kept a minute before, deleted at a week.
    assert_eq!(
        store
            .policy()
            .unwrap()
            .unwrap()
            .delete_briefings_after_days_offline,
        7
    );
    let week = synced + TimeDelta::days(7);
    assert!(!store
        .forget_briefings_if_out_of_touch(week - TimeDelta::minutes(1))
        .unwrap());
    assert_eq!(needs(&store), "Asthma; carries an inhaler.");
    assert!(store.forget_briefings_if_out_of_touch(week).unwrap());
    let card = store.visit(&ava).unwrap().unwrap();
    assert!(card.visit.briefing.withdrawn);
    assert!(card.visit.briefing.pupil_needs.is_empty());
    assert!(card.visit.address.lines.is_empty());
    assert_eq!(
        card.visit.address.postcode.as_str(),
        "OK1",
        "only the area is kept"
    );
    let holdings = sealed_log(dir.path(), &store.credential().unwrap().device_id)
        .holdings()
        .unwrap()
        .unwrap();
    let text = serde_json::to_string(&holdings).unwrap();
    assert!(
        !text.contains("Asthma") && !text.contains("Elm Row"),
        "{text}"
    );

    // The office back: the next sync brings them again.
    office.restart();
    client.sync_once(&store, Utc::now).await;
    assert_eq!(needs(&store), "Asthma; carries an inhaler.");
    office.stop().await;

    // Flipped: a school whose policy allows ten days keeps them at a week.
    let mut policy = SqliteStore::open(office_dir.path())
        .unwrap()
        .policy(&school())
        .unwrap();
    policy.delete_briefings_after_days_offline = 10;
    SqliteStore::open(office_dir.path())
        .unwrap()
        .set_policy(&school(), &policy)
        .unwrap();
    office.restart();
    let synced = Utc::now();
    client.sync_once(&store, move || synced).await;
    assert_eq!(
        store
            .policy()
            .unwrap()
            .unwrap()
            .delete_briefings_after_days_offline,
        10
    );
    assert!(!store
        .forget_briefings_if_out_of_touch(synced + TimeDelta::days(7))
        .unwrap());
    assert_eq!(needs(&store), "Asthma; carries an inhaler.");
    assert!(store
        .forget_briefings_if_out_of_touch(synced + TimeDelta::days(10))
        .unwrap());
    office.stop().await;
}

#[tokio::test]
async fn a_saved_office_address_that_is_not_https_is_never_sent_to_and_the_status_line_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let platform = desktop();
    let vault = Arc::new(Vault::create(dir.path(), platform.clone()).unwrap());
    let credential = Credential {
        office_url: "http://office.school.example".into(),
        device_id: "phone-1".parse().unwrap(),
        token: "a-token".into(),
        expires_at: Utc::now() + TimeDelta::days(30),
        staff: staff("sam"),
        staff_name: "Sam".into(),
        school_name: "School".into(),
    };
    credential.save(&vault).unwrap();
    drop(vault);
    match startup::open(dir.path(), platform).unwrap() {
        startup::Opened::Ready(ready) => {
            assert!(ready.client.is_none(), "no client for a plain-HTTP office");
            let reason = ready.store.link_refused().expect("a reason");
            assert!(reason.contains("only over HTTPS"), "{reason}");
        }
        startup::Opened::SetUp { .. } => panic!("the phone is set up"),
    }
}
