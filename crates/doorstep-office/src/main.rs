//! The office server's entry point: reads its arguments, opens the store, optionally seeds the demo, and
//! calls `run`. `doorstep-office timeline` prints every visit's events from the database instead, and
//! `doorstep-office set-password STAFF_ID` gives a member of staff an office sign-in.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use chrono::Utc;
use doorstep_office::demo::{self, DEMO_LOGINS_FILE, DEMO_PARTNER_FILE, DEMO_PHONE_FILE};
use doorstep_office::{SqliteStore, WebSettings};
use tokio::net::TcpListener;

const USAGE: &str = "usage:
  doorstep-office [--data-dir DIR] [--listen ADDR] [--demo] [--insecure-cookies]
                                                  serve the office API and the office board
  doorstep-office timeline [--data-dir DIR]       print every visit's events
  doorstep-office set-password STAFF_ID [--data-dir DIR]
                                                  give a member of staff an office sign-in (or a new
                                                  password), read from the first line of standard input

  --data-dir DIR       where office.sqlite3 lives (default: ./doorstep-office-data)
  --listen ADDR        address to listen on (default: 127.0.0.1:8750; port 0 picks a free one)
  --demo               on an empty database, add the demo school, write the demo phones' config
                       (demo-phone.json, demo-partner-phone.json) and the office board's sign-ins
                       (demo-office-logins.txt) into the data directory; implies --insecure-cookies
  --insecure-cookies   send the board's sign-in cookie over plain HTTP too (without `Secure`): only for
                       a demo on this machine; a real office is served over HTTPS";

struct Args {
    timeline: bool,
    set_password: Option<String>,
    data_dir: PathBuf,
    listen: SocketAddr,
    demo: bool,
    insecure_cookies: bool,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        timeline: false,
        set_password: None,
        data_dir: PathBuf::from("doorstep-office-data"),
        listen: "127.0.0.1:8750".parse().expect("valid default address"),
        demo: false,
        insecure_cookies: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "timeline" => args.timeline = true,
            "set-password" => {
                args.set_password = Some(it.next().context("set-password needs a staff id")?);
            }
            "--insecure-cookies" => args.insecure_cookies = true,
            "--data-dir" => {
                args.data_dir = it.next().context("--data-dir needs a directory")?.into();
            }
            "--listen" => {
                let text = it
                    .next()
                    .context("--listen needs an address such as 127.0.0.1:8750")?;
                args.listen = text.parse().with_context(|| {
                    format!("--listen: {text:?} is not an address such as 127.0.0.1:8750")
                })?;
            }
            "--demo" => args.demo = true,
            "-h" | "--help" => bail!("{USAGE}"),
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    Ok(args)
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
    let store = SqliteStore::open(&args.data_dir)
        .with_context(|| format!("opening the office database in {}", args.data_dir.display()))?;
    if args.timeline {
        return print_timeline(&store);
    }
    if let Some(staff) = &args.set_password {
        return set_password(&store, staff);
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
    doorstep_office::run_with(listener, Arc::new(store), web, shutdown_signal())
        .await
        .context("serving the office API")
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

fn prepare_demo(store: &SqliteStore, data_dir: &std::path::Path, url: &str) -> anyhow::Result<()> {
    let me = data_dir.join(DEMO_PHONE_FILE);
    let partner = data_dir.join(DEMO_PARTNER_FILE);
    if store.is_empty()? {
        let phones = demo::seed(store, url, Utc::now()).context("adding the demo school")?;
        demo::write_phone_config(&me, &phones.me)?;
        demo::write_phone_config(&partner, &phones.partner)?;
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
    }
    Ok(())
}
