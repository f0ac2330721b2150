//! The office binary's command line: each command's `--help`, flags refused where they do not belong, and
//! `serve` named or left out.

use std::process::{Child, Command, Output, Stdio};

fn office(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_doorstep-office"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run the office binary")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn every_command_has_help_naming_its_options() {
    // (arguments, what the help must name)
    let table: &[(&[&str], &[&str])] = &[
        (
            &["--help"],
            &[
                "serve",
                "timeline",
                "add-target",
                "targets",
                "set-password",
                "set-time-zone",
                "verify-audit",
                "enrol-code",
                "--listen",
                "--demo",
            ],
        ),
        (
            &["serve", "--help"],
            &[
                "--data-dir",
                "--listen",
                "--demo",
                "--insecure-cookies",
                "--smtp ",
                "--smtp-from",
                "--smtp-hello",
                "--smtp-tls",
                "--smtp-user",
                "--smtp-password-file",
                "--smtp-ca-file",
                "DOORSTEP_SMTP_PASSWORD",
                "--cjk-font",
            ],
        ),
        (&["timeline", "--help"], &["--data-dir"]),
        (
            &["add-target", "--help"],
            &[
                "--data-dir",
                "--school",
                "--email",
                "--webhook",
                "--board",
                "--authoriser",
                "DOORSTEP_WEBHOOK_SECRET",
            ],
        ),
        (&["targets", "--help"], &["--data-dir"]),
        (&["set-password", "--help"], &["STAFF_ID", "--data-dir"]),
        (
            &["enrol-code", "--help"],
            &[
                "STAFF_ID",
                "--office-url",
                "--link",
                "--data-dir",
                "15 minutes",
            ],
        ),
        (&["help", "timeline"], &["--data-dir"]),
    ];
    for (args, named) in table {
        let output = office(args);
        assert!(output.status.success(), "{args:?}: {output:?}");
        let help = text(&output.stdout);
        for option in *named {
            assert!(
                help.contains(option),
                "{args:?} does not name {option}:\n{help}"
            );
        }
    }
}

#[test]
fn a_flag_given_to_the_wrong_command_is_refused_with_a_clear_message_and_nothing_is_opened() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("office");
    let data = data_dir.to_str().unwrap();
    // (arguments, what the error must say)
    let table: &[(&[&str], &str)] = &[
        (&["timeline", "--demo", "--data-dir", data], "'--demo'"),
        (
            &["targets", "--listen", "127.0.0.1:0", "--data-dir", data],
            "'--listen'",
        ),
        (
            &[
                "set-password",
                "sam",
                "--email",
                "a@b.example",
                "--data-dir",
                data,
            ],
            "'--email'",
        ),
        (
            &[
                "add-target",
                "--school",
                "demo-primary",
                "--email",
                "a@b.example",
                "--board",
                "--demo",
            ],
            "'--demo'",
        ),
        // A serving flag before a command is not quietly ignored.
        (
            &["--demo", "timeline", "--data-dir", data],
            "'timeline' cannot be used with '--demo'",
        ),
        (&["--data-dir", data, "--frobnicate"], "'--frobnicate'"),
        (
            &["serve", "--school", "demo-primary", "--data-dir", data],
            "'--school'",
        ),
        // What each command needs.
        (
            &[
                "add-target",
                "--school",
                "demo-primary",
                "--board",
                "--data-dir",
                data,
            ],
            "--email",
        ),
        (
            &[
                "add-target",
                "--school",
                "demo-primary",
                "--email",
                "a@b.example",
                "--data-dir",
                data,
            ],
            "--board|--authoriser",
        ),
        (
            &[
                "add-target",
                "--school",
                "demo-primary",
                "--email",
                "a@b.example",
                "--webhook",
                "https://hooks.example/x",
                "--board",
                "--data-dir",
                data,
            ],
            "cannot be used with",
        ),
        (
            &["--smtp-from", "office@school.example", "--data-dir", data],
            "--smtp <HOST:PORT>",
        ),
        (
            &[
                "--smtp",
                "relay.example",
                "--smtp-from",
                "a@b.example",
                "--data-dir",
                data,
            ],
            "not HOST:PORT",
        ),
        (
            &["--listen", "not-an-address", "--data-dir", data],
            "--listen",
        ),
    ];
    for (args, says) in table {
        let output = office(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
        let error = text(&output.stderr);
        assert!(error.starts_with("error: "), "{args:?}: {error}");
        assert!(
            error.contains(says),
            "{args:?} should say {says:?}:\n{error}"
        );
    }
    assert!(
        !data_dir.exists(),
        "a refused command line opened no database"
    );
}

/// Starts the office with `args` (which must include `--demo --listen ADDRESS --data-dir DIR`) and waits
/// until it answers its health check at `address`.
async fn start(args: &[&str], address: &str) -> ChildGuard {
    let child = Command::new(env!("CARGO_BIN_EXE_doorstep-office"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the office binary");
    let guard = ChildGuard(child);
    crate::helpers::wait_until_up(&format!("http://{address}")).await;
    guard
}

struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn serve_is_the_default_and_can_be_named_and_timeline_reads_what_it_served() {
    for named in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_str().unwrap();
        let address = crate::helpers::free_address();
        let mut args = vec!["--demo", "--listen", &address, "--data-dir", data];
        if named {
            args.insert(0, "serve");
        }
        let office_process = start(&args, &address).await;
        drop(office_process);

        let timeline = office(&["timeline", "--data-dir", data]);
        assert!(timeline.status.success(), "{timeline:?}");
        let printed = text(&timeline.stdout);
        assert!(
            printed.contains("visit-ava ·") && printed.contains("Safe and well check"),
            "{printed}"
        );
    }
}

#[test]
fn smtp_settings_that_cannot_work_stop_the_office_before_it_opens_anything_and_never_print_the_password(
) {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("office");
    let data = data_dir.to_str().unwrap();
    let password_file = dir.path().join("smtp-password");
    std::fs::write(&password_file, "").unwrap();
    let password_file = password_file.to_str().unwrap();
    let smtp = [
        "--smtp",
        "relay.example:587",
        "--smtp-from",
        "doorstep@school.example",
    ];
    // (extra arguments, DOORSTEP_SMTP_PASSWORD, what the error must say)
    let table: &[(&[&str], Option<&str>, &str)] = &[
        (
            &["--smtp-tls", "none"],
            None,
            "only allowed to a relay on this machine",
        ),
        (
            &["--smtp-user", "doorstep"],
            None,
            "--smtp-user needs a password",
        ),
        (
            &[],
            Some("hunter2 hunter2"),
            "DOORSTEP_SMTP_PASSWORD is set but no --smtp-user",
        ),
        (
            &[
                "--smtp-user",
                "doorstep",
                "--smtp-password-file",
                password_file,
            ],
            Some("hunter2 hunter2"),
            "give one",
        ),
        (
            &[
                "--smtp-user",
                "doorstep",
                "--smtp-password-file",
                password_file,
            ],
            None,
            "the first line is empty",
        ),
        (
            &[
                "--smtp-tls",
                "tls",
                "--smtp-user",
                "doorstep",
                "--smtp-ca-file",
                password_file,
            ],
            Some("hunter2 hunter2"),
            "hold no PEM certificate",
        ),
    ];
    for (extra, password, says) in table {
        let mut command = Command::new(env!("CARGO_BIN_EXE_doorstep-office"));
        command
            .args(smtp)
            .args(*extra)
            .args(["--data-dir", data])
            .env_remove("DOORSTEP_SMTP_PASSWORD");
        if let Some(password) = password {
            command.env("DOORSTEP_SMTP_PASSWORD", password);
        }
        let output = command.output().unwrap();
        assert_eq!(output.status.code(), Some(1), "{extra:?}: {output:?}");
        let error = text(&output.stderr);
        assert!(
            error.contains(says),
            "{extra:?} should say {says:?}:\n{error}"
        );
        assert!(!error.contains("hunter2"), "{error}");
    }
    assert!(!data_dir.exists(), "refused settings opened no database");
}

#[test]
fn a_cjk_font_that_cannot_be_used_stops_the_office_before_it_opens_anything() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("office");
    let not_a_font = dir.path().join("not-a-font.ttc");
    std::fs::write(&not_a_font, "not a font").unwrap();
    for file in [not_a_font, dir.path().join("missing.ttc")] {
        let output = office(&[
            "--cjk-font",
            file.to_str().unwrap(),
            "--data-dir",
            data_dir.to_str().unwrap(),
        ]);
        assert_eq!(output.status.code(), Some(1), "{output:?}");
        assert!(text(&output.stderr).contains("--cjk-font"), "{output:?}");
    }
    assert!(!data_dir.exists());
}

#[test]
fn a_schools_time_zone_is_set_by_its_iana_name_and_a_wrong_one_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    // A demo office's database, then stopped.
    let store: doorstep_office::OfficeStore = doorstep_office::SqliteStore::open(dir.path())
        .unwrap()
        .into();
    doorstep_office::demo::seed_school(&store, chrono::Utc::now()).unwrap();
    drop(store);
    let school: doorstep_core::ids::SchoolId = "demo-primary".parse().unwrap();
    let zone = || {
        doorstep_office::SqliteStore::open(dir.path())
            .unwrap()
            .school(&school)
            .unwrap()
            .time_zone
            .to_string()
    };
    assert_eq!(zone(), "Europe/London");

    let wrong = office(&[
        "set-time-zone",
        "--school",
        "demo-primary",
        "Mars/Olympus",
        "--data-dir",
        data,
    ]);
    assert!(!wrong.status.success());
    assert!(
        text(&wrong.stderr).contains("not a time zone"),
        "{}",
        text(&wrong.stderr)
    );
    assert_eq!(zone(), "Europe/London");

    let set = office(&[
        "set-time-zone",
        "--school",
        "demo-primary",
        "Pacific/Auckland",
        "--data-dir",
        data,
    ]);
    assert!(set.status.success(), "{}", text(&set.stderr));
    assert_eq!(zone(), "Pacific/Auckland");
}
