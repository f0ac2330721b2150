//! The office server's entry point: reads its arguments, opens the store, optionally seeds the demo, and
//! calls `run`. `doorstep-office timeline` prints every visit's events from the database instead.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use chrono::Utc;
use doorstep_office::demo::{self, DEMO_PARTNER_FILE, DEMO_PHONE_FILE};
use doorstep_office::SqliteStore;
use tokio::net::TcpListener;

const USAGE: &str = "usage:
  doorstep-office [--data-dir DIR] [--listen ADDR] [--demo]   serve the office API
  doorstep-office timeline [--data-dir DIR]                   print every visit's events

  --data-dir DIR   where office.sqlite3 lives (default: ./doorstep-office-data)
  --listen ADDR    address to listen on (default: 127.0.0.1:8750; port 0 picks a free one)
  --demo           on an empty database, add the demo school and write the demo phones' config
                   (demo-phone.json, demo-partner-phone.json) into the data directory";

struct Args {
    timeline: bool,
    data_dir: PathBuf,
    listen: SocketAddr,
    demo: bool,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        timeline: false,
        data_dir: PathBuf::from("doorstep-office-data"),
        listen: "127.0.0.1:8750".parse().expect("valid default address"),
        demo: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "timeline" => args.timeline = true,
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
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let url = format!("http://{}", listener.local_addr()?);
    if args.demo {
        prepare_demo(&store, &args.data_dir, &url)?;
    }
    tracing::info!(%url, database = %store.path().display(), "office listening");
    doorstep_office::run(listener, Arc::new(store), shutdown_signal())
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
        tracing::info!(phone_config = %me.display(), "demo school added");
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
