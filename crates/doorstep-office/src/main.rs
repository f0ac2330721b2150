//! The office server's entry point: reads its arguments, opens the store, optionally seeds the demo, and
//! calls `run_with`. `doorstep-office timeline` prints every visit's events and alarm history instead;
//! `add-target` and `targets` manage where alarms are sent beyond the board; `set-password STAFF_ID` gives
//! a member of staff an office sign-in.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use chrono::Utc;
use doorstep_office::demo::{self, DEMO_LOGINS_FILE, DEMO_PARTNER_FILE, DEMO_PHONE_FILE};
use doorstep_office::notify::{
    parse_email_address, NewTarget, NotifyConfig, SmtpConfig, TargetKind, WantedLevels,
};
use doorstep_office::{OfficeSettings, SqliteStore, WebSettings};
use tokio::net::TcpListener;

const USAGE: &str = "usage:
  doorstep-office [--data-dir DIR] [--listen ADDR] [--demo] [--insecure-cookies]
                  [--smtp HOST:PORT --smtp-from ADDR]         serve the office API and the office board
  doorstep-office timeline [--data-dir DIR]                   print every visit's events and alarms
  doorstep-office add-target --school ID (--email ADDR | --webhook URL) [--board] [--authoriser]
                             [--data-dir DIR]                 send a school's alarms there too
  doorstep-office targets [--data-dir DIR]                    list where alarms are sent
  doorstep-office set-password STAFF_ID [--data-dir DIR]      give a member of staff an office sign-in (or a
                                                              new password), read from standard input

  --data-dir DIR     where office.sqlite3 lives (default: ./doorstep-office-data)
  --listen ADDR      address to listen on (default: 127.0.0.1:8750; port 0 picks a free one)
  --demo             on an empty database, add the demo school and write the demo phones' config
                     (demo-phone.json, demo-partner-phone.json) and the office board's sign-ins
                     (demo-office-logins.txt) into the data directory; implies --insecure-cookies
  --insecure-cookies send the board's sign-in cookie over plain HTTP too (without `Secure`): only for a
                     demo on this machine; a real office is served over HTTPS
  --smtp HOST:PORT   the SMTP server alarm emails are handed to: plain SMTP, no TLS or login, so use a
                     relay on this host or a trusted network
  --smtp-from ADDR   the sender of alarm emails (needed with --smtp)
  --smtp-hello NAME  the name the office gives in EHLO (default: the domain of --smtp-from)
  --board            the target wants alarms as they are raised on the office board
  --authoriser       the target wants alarms that reach the authoriser (escalations, reminders, duress)
  A webhook's signing secret (16 to 256 characters) is read from the environment variable
  DOORSTEP_WEBHOOK_SECRET, so it stays out of the process list and shell history. The SMS gateway's
  secret, which signs the texts it hands to /api/v1/sms/inbound (docs/sms.md), is read from
  DOORSTEP_SMS_GATEWAY_SECRET (16 to 256 characters); without it no texts are taken in.";

enum Mode {
    Serve,
    Timeline,
    AddTarget,
    Targets,
    SetPassword(String),
    Help,
}

struct Args {
    mode: Mode,
    data_dir: PathBuf,
    listen: SocketAddr,
    demo: bool,
    insecure_cookies: bool,
    smtp: Option<(String, u16)>,
    smtp_from: Option<String>,
    smtp_hello: Option<String>,
    school: Option<String>,
    email: Option<String>,
    webhook: Option<String>,
    wants: WantedLevels,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        mode: Mode::Serve,
        data_dir: PathBuf::from("doorstep-office-data"),
        listen: "127.0.0.1:8750".parse().expect("valid default address"),
        demo: false,
        insecure_cookies: false,
        smtp: None,
        smtp_from: None,
        smtp_hello: None,
        school: None,
        email: None,
        webhook: None,
        wants: WantedLevels {
            board: false,
            authoriser: false,
        },
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |what: &str| it.next().with_context(|| format!("{arg} needs {what}"));
        match arg.as_str() {
            "timeline" => args.mode = Mode::Timeline,
            "add-target" => args.mode = Mode::AddTarget,
            "targets" => args.mode = Mode::Targets,
            "set-password" => {
                args.mode = Mode::SetPassword(it.next().context("set-password needs a staff id")?);
            }
            "--insecure-cookies" => args.insecure_cookies = true,
            "--data-dir" => args.data_dir = value("a directory")?.into(),
            "--listen" => {
                let text = value("an address such as 127.0.0.1:8750")?;
                args.listen = text.parse().with_context(|| {
                    format!("--listen: {text:?} is not an address such as 127.0.0.1:8750")
                })?;
            }
            "--demo" => args.demo = true,
            "--smtp" => {
                let text = value("HOST:PORT")?;
                args.smtp = Some(parse_host_port(&text)?);
            }
            "--smtp-from" => args.smtp_from = Some(value("an email address")?),
            "--smtp-hello" => args.smtp_hello = Some(value("a host name")?),
            "--school" => args.school = Some(value("a school id")?),
            "--email" => args.email = Some(value("an email address")?),
            "--webhook" => args.webhook = Some(value("a URL")?),
            "--board" => args.wants.board = true,
            "--authoriser" => args.wants.authoriser = true,
            "-h" | "--help" => args.mode = Mode::Help,
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    Ok(args)
}

fn parse_host_port(text: &str) -> anyhow::Result<(String, u16)> {
    let (host, port) = text
        .rsplit_once(':')
        .with_context(|| format!("--smtp: {text:?} is not HOST:PORT, such as 127.0.0.1:25"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = port
        .parse()
        .with_context(|| format!("--smtp: {port:?} is not a port number"))?;
    if host.is_empty() {
        bail!("--smtp: {text:?} has no host");
    }
    Ok((host.to_owned(), port))
}

fn notify_config(args: &Args) -> anyhow::Result<NotifyConfig> {
    let smtp = match (&args.smtp, &args.smtp_from) {
        (None, None) => None,
        (None, Some(_)) => bail!("--smtp-from needs --smtp HOST:PORT too"),
        (Some(_), None) => bail!("--smtp needs --smtp-from ADDRESS: the sender of alarm emails"),
        (Some((host, port)), Some(from)) => {
            let from = parse_email_address(from).context("--smtp-from")?;
            let hello_name = match &args.smtp_hello {
                Some(name) => name.clone(),
                None => from
                    .rsplit_once('@')
                    .map(|(_, domain)| domain.to_owned())
                    .unwrap_or_else(|| "localhost".into()),
            };
            if hello_name.is_empty() || !hello_name.chars().all(|c| c.is_ascii_graphic()) {
                bail!("--smtp-hello: {hello_name:?} is not a host name");
            }
            Some(SmtpConfig {
                host: host.clone(),
                port: *port,
                from,
                hello_name,
            })
        }
    };
    Ok(NotifyConfig { smtp })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,doorstep_office=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = parse_args()?;
    if matches!(args.mode, Mode::Help) {
        writeln!(std::io::stdout(), "{USAGE}")?;
        return Ok(());
    }
    let config = notify_config(&args)?;
    let store = SqliteStore::open(&args.data_dir)
        .with_context(|| format!("opening the office database in {}", args.data_dir.display()))?;
    match args.mode {
        Mode::Serve => {}
        Mode::Timeline => return print_timeline(&store),
        Mode::AddTarget => return add_target(&store, &args),
        Mode::Targets => return print_targets(&store),
        Mode::SetPassword(ref staff) => return set_password(&store, staff),
        Mode::Help => return Ok(()),
    }
    let email_targets = store
        .notification_targets()?
        .iter()
        .filter(|t| t.kind == TargetKind::Email)
        .count();
    if email_targets > 0 && config.smtp.is_none() {
        tracing::warn!(
            email_targets,
            "email targets are set but no --smtp server: alarm emails will fail (and say so in the alarm log)"
        );
    }
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let url = format!("http://{}", listener.local_addr()?);
    if args.demo {
        prepare_demo(&store, &args.data_dir, &url)?;
    }
    let web = WebSettings {
        secure_cookies: !(args.insecure_cookies || args.demo),
    };
    if !web.secure_cookies {
        tracing::warn!("sign-in cookies are sent over plain HTTP (--insecure-cookies or --demo): demo use only");
    }
    tracing::info!(%url, database = %store.path().display(), "office listening; the board is at /");
    let sms = match std::env::var(doorstep_office::sms::SECRET_ENV) {
        Ok(secret) => Some(
            doorstep_office::sms::SmsGateway::new(&secret)
                .context(doorstep_office::sms::SECRET_ENV)?,
        ),
        Err(_) => None,
    };
    if sms.is_none() {
        tracing::info!("no SMS gateway secret: alerts sent by text are not taken in (docs/sms.md)");
    }
    let settings = OfficeSettings {
        notify: config,
        web,
        sms,
    };
    doorstep_office::run_with(listener, Arc::new(store), settings, shutdown_signal())
        .await
        .context("serving the office API")
}

fn prepare_demo(store: &SqliteStore, data_dir: &std::path::Path, url: &str) -> anyhow::Result<()> {
    let me = data_dir.join(DEMO_PHONE_FILE);
    let partner = data_dir.join(DEMO_PARTNER_FILE);
    if store.is_empty()? {
        let phones = demo::seed(store, url, Utc::now()).context("adding the demo school")?;
        demo::write_phone_config(&me, &phones.me)?;
        demo::write_phone_config(&partner, &phones.partner)?;
        demo::seed_visit_under_way(store, Utc::now()).context("adding the demo visit under way")?;
        tracing::info!(phone_config = %me.display(), "demo school added");
        // A new demo database makes new passwords; an old sign-ins file would no longer be true.
        let _ = std::fs::remove_file(data_dir.join(DEMO_LOGINS_FILE));
    } else if me.exists() {
        demo::repoint_phone_config(&me, url)?;
        if partner.exists() {
            demo::repoint_phone_config(&partner, url)?;
        }
    } else {
        bail!(
            "--demo needs an empty database or one made by an earlier --demo run; {} holds other data",
            data_dir.display()
        );
    }
    let logins = data_dir.join(DEMO_LOGINS_FILE);
    if !logins.exists() {
        let made =
            demo::add_office_logins(store, Utc::now()).context("adding the demo sign-ins")?;
        demo::write_office_logins(&logins, &made)
            .with_context(|| format!("writing {}", logins.display()))?;
    }
    tracing::info!(sign_ins = %logins.display(), "office board sign-ins for the demo");
    Ok(())
}

fn set_password(store: &SqliteStore, staff: &str) -> anyhow::Result<()> {
    let staff = staff
        .parse()
        .map_err(|e| anyhow::anyhow!("{staff:?} is not a staff id: {e}"))?;
    let mut password = String::new();
    std::io::stdin()
        .read_line(&mut password)
        .context("reading the password from standard input")?;
    let password = password.trim_end_matches(['\r', '\n']);
    store
        .set_office_password(&staff, password, Utc::now())
        .with_context(|| format!("setting the office password of {staff}"))?;
    tracing::info!(%staff, "office sign-in set; their open sessions were ended");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

fn add_target(store: &SqliteStore, args: &Args) -> anyhow::Result<()> {
    let school = args
        .school
        .as_deref()
        .context("add-target needs --school ID")?;
    let school = school
        .parse()
        .map_err(|e| anyhow::anyhow!("--school {school:?}: {e}"))?;
    if !args.wants.board && !args.wants.authoriser {
        bail!("say which alarms the target wants: --board, --authoriser, or both");
    }
    let target = match (&args.email, &args.webhook) {
        (Some(email), None) => NewTarget::email(email, args.wants)?,
        (None, Some(url)) => {
            let secret = std::env::var("DOORSTEP_WEBHOOK_SECRET")
                .context("a webhook needs its signing secret in DOORSTEP_WEBHOOK_SECRET")?;
            NewTarget::webhook(url, &secret, args.wants)?
        }
        _ => bail!("add-target takes one of --email ADDRESS or --webhook URL"),
    };
    let added = store.add_notification_target(&school, &target, Utc::now())?;
    tracing::info!(id = added.id, target = %added.label(), "notification target added");
    Ok(())
}

fn print_targets(store: &SqliteStore) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for target in store.notification_targets()? {
        let wants = match (target.wants.board, target.wants.authoriser) {
            (true, true) => "board + authoriser",
            (true, false) => "board",
            _ => "authoriser",
        };
        writeln!(
            out,
            "{:>3} {:<14} {:<8} {:<20} {}",
            target.id,
            target.school,
            match target.kind {
                TargetKind::Email => "email",
                TargetKind::Webhook => "webhook",
            },
            wants,
            target.address
        )?;
    }
    Ok(())
}

fn print_timeline(store: &SqliteStore) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for visit_id in store.visit_ids()? {
        let Some((visit, state)) = store.visit(&visit_id)? else {
            continue;
        };
        writeln!(
            out,
            "{} · {} · {} · {}",
            visit.id,
            visit.agreed_time.format("%Y-%m-%d %H:%M UTC"),
            visit.purpose.label(),
            state.phase().label()
        )?;
        for stored in store.events_for_visit(&visit_id)? {
            let e = &stored.envelope;
            writeln!(
                out,
                "  {} {:<12} #{:<4} {:<10} {:<20} id {}",
                e.recorded_at.format("%H:%M:%S"),
                e.device,
                e.seq,
                e.event.actor(),
                e.event.summary(),
                e.id
            )?;
        }
        for entry in store.alarm_log(&visit_id)? {
            writeln!(
                out,
                "  {} alarm {:<4} {:<22} {}",
                entry.at.format("%H:%M:%S"),
                entry.alarm,
                entry.what,
                entry.detail
            )?;
        }
    }
    Ok(())
}
