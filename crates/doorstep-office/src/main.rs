//! The office server's entry point: its command line (clap: `serve`, the default, and `timeline`,
//! `add-target`, `targets`, `set-password`, `enrol-code`, each with its own flags and `--help`), then the
//! store opened and `run_with` called, or the command's one job done.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use doorstep_core::domain::Role;
use doorstep_core::protocol::{display_enrolment_code, EnrolmentLink};
use doorstep_office::demo::{self, DEMO_LOGINS_FILE};
use doorstep_office::notify::{
    parse_email_address, NewTarget, NotifyConfig, SmtpConfig, SmtpLogin, SmtpTls, TargetKind,
    WantedLevels,
};
use doorstep_office::records::{
    self,
    pdf::{PdfFonts, DEFAULT_CJK_FONT},
};
use doorstep_office::store::postgres::PgStore;
use doorstep_office::{Engines, OfficeSettings, OfficeStore, SqliteStore, WebSettings};
use tokio::net::TcpListener;

/// Doorstep's office server: the sync API the phones talk to and the office board that watches over visits.
#[derive(Debug, Parser)]
#[command(
    name = "doorstep-office",
    version,
    // `doorstep-office --demo` serves; a command's own flags go after the command, never before it.
    args_conflicts_with_subcommands = true,
    after_help = "Without a command, it serves (as `doorstep-office serve`). \
                  The office keeps its data in office.sqlite3 in --data-dir, or, when the environment \
                  variable DOORSTEP_DATABASE_URL holds a PostgreSQL database's URL \
                  (postgres://user:password@host/db), in that database, which several offices may share; \
                  every command reads it. \
                  Alerts sent by text are taken in at /api/v1/sms/inbound when the SMS gateway's \
                  secret (16 to 256 characters) is in the environment variable \
                  DOORSTEP_SMS_GATEWAY_SECRET (docs/sms.md). \
                  `doorstep-office COMMAND --help` describes each command."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the office API and the office board (what the office does without a command).
    Serve(ServeArgs),
    /// Print every visit's events and alarm history.
    Timeline(DataDir),
    /// Send a school's alarms (and, for a role's contact, its safeguarding notices) to an email address or
    /// a signed webhook too.
    #[command(
        after_help = "A webhook's signing secret (16 to 256 characters) is read from the \
                            environment variable DOORSTEP_WEBHOOK_SECRET, so it stays out of the \
                            process list and shell history."
    )]
    AddTarget(AddTargetArgs),
    /// List where each school's alarms are sent.
    Targets(DataDir),
    /// Give a member of staff an office sign-in, or a new password, read from standard input.
    SetPassword(SetPasswordArgs),
    /// Set the time zone a school's people read every time in (an IANA name such as Europe/London).
    #[command(
        after_help = "The board, the visit pages, the records, the alarm emails and the phones (at their next \
                      sync) show times on this clock; school hours and evenings are judged on it. A new \
                      school starts on Europe/London."
    )]
    SetTimeZone(SetTimeZoneArgs),
    /// Check that the audit log's hash chain holds: names the first entry altered or removed, and exits
    /// with status 1 if there is one.
    VerifyAudit(DataDir),
    /// Issue a one-time code that enrols a phone for a member of staff (as the admin's Phones page does).
    #[command(
        after_help = "The code works once, for 15 minutes; an earlier unused code for the same person stops \
                      working. Type it into the phone's set-up screen with the office's address, or paste the \
                      doorstep://enrol link printed with it."
    )]
    EnrolCode(EnrolCodeArgs),
    /// Watch every visit's deadlines in a PostgreSQL database that other offices share, raising and
    /// escalating alarms there, with nothing served.
    #[command(
        after_help = "The database's URL (postgres://user:password@host/db, or host=... dbname=...) is read \
                      from the environment variable DOORSTEP_DATABASE_URL, so its password stays out of the \
                      process list. Run one on each of several machines: each watches every visit, the \
                      database's locks make each alarm step once between them, and any left running keeps \
                      every deadline when another stops. Each also tells the schools' notification targets of \
                      every alarm step and safeguarding notice (email through --smtp, and webhooks), each message \
                      sent by one office. `serve` with the same variable serves the board and the phones' sync \
                      from the same database, and watches as well."
    )]
    Watch(WatchArgs),
}

#[derive(Debug, Args)]
struct WatchArgs {
    /// How often to read the visits to watch again, so a visit started or changed through another office
    /// is watched here too.
    #[arg(long, value_name = "MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    rescan_ms: u64,
    /// Connections to keep to the database.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    connections: u16,
    #[command(flatten)]
    smtp: SmtpArgs,
}

/// The environment variable `watch` reads the PostgreSQL database's URL from.
const DATABASE_URL_VARIABLE: &str = "DOORSTEP_DATABASE_URL";

#[derive(Debug, Args)]
struct DataDir {
    /// Where office.sqlite3 lives (unless DOORSTEP_DATABASE_URL names a PostgreSQL database).
    #[arg(
        long = "data-dir",
        value_name = "DIR",
        default_value = "doorstep-office-data"
    )]
    path: PathBuf,
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    data_dir: DataDir,
    /// The address to listen on; port 0 picks a free one.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8750")]
    listen: SocketAddr,
    /// On an empty database, add the demo school, and write the office board's sign-ins
    /// (demo-office-logins.txt) into the data directory. Its phones enrol with `enrol-code`. Implies
    /// --insecure-cookies.
    #[arg(long)]
    demo: bool,
    /// Send the board's sign-in cookie over plain HTTP too (without `Secure`): only for a demo on this
    /// machine; a real office is served over HTTPS.
    #[arg(long)]
    insecure_cookies: bool,
    #[command(flatten)]
    tls: TlsArgs,
    #[command(flatten)]
    smtp: SmtpArgs,
    /// The font CJK (Chinese, Japanese, Korean) names are printed in, in PDF records: a font or collection
    /// file [default: /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc, from Debian's fonts-noto-cjk].
    /// Latin, Greek, Cyrillic and Arabic need nothing: their fonts are compiled in.
    #[arg(long, value_name = "FILE", help_heading = "Records")]
    cjk_font: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "HTTPS")]
struct TlsArgs {
    /// Serve HTTPS with this certificate chain (PEM). Without it the office speaks plain HTTP, which is for a
    /// demo on this machine or behind a reverse proxy that terminates TLS (docs/security.md).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(
    next_help_heading = "Alarm email",
    after_help = "The SMTP password is read from the environment variable DOORSTEP_SMTP_PASSWORD or from \
                  the file named by --smtp-password-file, never from the command line, and is never logged."
)]
struct SmtpArgs {
    /// The SMTP server alarm emails are handed to (Microsoft 365: smtp.office365.com:587; Google:
    /// smtp-relay.gmail.com:587, or :465 with --smtp-tls tls).
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_host_port, requires = "smtp_from")]
    smtp: Option<HostPort>,
    /// The sender of alarm emails.
    #[arg(long, value_name = "ADDR", requires = "smtp")]
    smtp_from: Option<String>,
    /// The name the office gives in EHLO [default: the domain of --smtp-from].
    #[arg(long, value_name = "NAME", requires = "smtp")]
    smtp_hello: Option<String>,
    /// How the connection is protected: starttls (usually port 587), tls (implicit TLS, usually port 465),
    /// or none (plain SMTP, only to a relay on this machine).
    #[arg(
        long,
        value_enum,
        value_name = "MODE",
        default_value = "starttls",
        requires = "smtp"
    )]
    smtp_tls: TlsMode,
    /// Sign in to the SMTP server as this user (AUTH PLAIN or LOGIN, after TLS is up).
    #[arg(long, value_name = "NAME", requires = "smtp")]
    smtp_user: Option<String>,
    /// Read the SMTP password from this file (its first line) instead of DOORSTEP_SMTP_PASSWORD.
    #[arg(long, value_name = "FILE", requires = "smtp_user")]
    smtp_password_file: Option<PathBuf>,
    /// Trust the certificates in this PEM file as well as the system's: for a relay whose certificate the
    /// school's own CA signed.
    #[arg(long, value_name = "FILE", requires = "smtp")]
    smtp_ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TlsMode {
    /// Plain SMTP: only to a relay on this machine.
    None,
    /// Upgrade with STARTTLS before anything else is sent.
    Starttls,
    /// TLS from the first byte (SMTPS).
    Tls,
}

/// The environment variable the SMTP password is read from, unless `--smtp-password-file` names a file.
const SMTP_PASSWORD_VARIABLE: &str = "DOORSTEP_SMTP_PASSWORD";

#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("wants")
        .required(true)
        .multiple(true)
        .args(["board", "authoriser", "further", "role"])
))]
struct AddTargetArgs {
    #[command(flatten)]
    data_dir: DataDir,
    /// The school whose alarms it hears.
    #[arg(long, value_name = "ID")]
    school: String,
    #[command(flatten)]
    address: TargetAddress,
    /// The target wants alarms as they are raised on the office board.
    #[arg(long)]
    board: bool,
    /// The target wants alarms that reach the authoriser's level (escalations, duress).
    #[arg(long)]
    authoriser: bool,
    /// The target wants alarms the authoriser's level has not acknowledged in time (a deputy, the
    /// Principal, senior leaders), and the reminders after.
    #[arg(long)]
    further: bool,
    /// Let a webhook use plain http:// to another machine (a gateway on a network the school trusts).
    /// Without it a webhook must be https://, or http:// to this machine.
    #[arg(long, requires = "webhook")]
    allow_plain_http: bool,
    /// Whose contact it is (dsl, safeguarding_lead, headteacher, office, admin, visiting_staff): safeguarding
    /// notices go to the targets of the policy's safeguarding_concerns_to. May be given more than once.
    #[arg(long, value_name = "ROLE", value_parser = parse_role)]
    role: Vec<Role>,
    /// Whose it is, in words, for the records ("Priya Head", "deputy head").
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
}

fn parse_role(text: &str) -> Result<Role, String> {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).map_err(|_| {
        format!(
            "{text:?} is not a role (dsl, safeguarding_lead, headteacher, office, admin, visiting_staff)"
        )
    })
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
struct TargetAddress {
    /// An email address.
    #[arg(long, value_name = "ADDR")]
    email: Option<String>,
    /// An http:// or https:// URL its requests are signed for (secret in DOORSTEP_WEBHOOK_SECRET).
    #[arg(long, value_name = "URL")]
    webhook: Option<String>,
}

#[derive(Debug, Args)]
struct SetTimeZoneArgs {
    /// The school, by id.
    #[arg(long, value_name = "ID")]
    school: String,
    /// The zone's IANA name, e.g. Europe/London or Pacific/Auckland.
    #[arg(value_name = "ZONE")]
    zone: String,
    #[command(flatten)]
    data_dir: DataDir,
}

#[derive(Debug, Args)]
struct SetPasswordArgs {
    /// The member of staff, by id.
    #[arg(value_name = "STAFF_ID")]
    staff: String,
    #[command(flatten)]
    data_dir: DataDir,
}

#[derive(Debug, Args)]
struct EnrolCodeArgs {
    /// The member of staff the phone will belong to, by id.
    #[arg(value_name = "STAFF_ID")]
    staff: String,
    /// The office's address as phones reach it (https://, or http:// on this machine only).
    #[arg(long, value_name = "URL")]
    office_url: String,
    /// Print only the doorstep://enrol link (for scripts).
    #[arg(long)]
    link: bool,
    #[command(flatten)]
    data_dir: DataDir,
}

/// An SMTP server's host and port.
#[derive(Debug, Clone)]
struct HostPort {
    host: String,
    port: u16,
}

fn parse_host_port(text: &str) -> Result<HostPort, String> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("{text:?} is not HOST:PORT, such as 127.0.0.1:25"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = port
        .parse()
        .map_err(|_| format!("{port:?} is not a port number"))?;
    if host.is_empty() {
        return Err(format!("{text:?} has no host"));
    }
    Ok(HostPort {
        host: host.to_owned(),
        port,
    })
}

fn notify_config(args: &SmtpArgs) -> anyhow::Result<NotifyConfig> {
    let password_in_environment = std::env::var(SMTP_PASSWORD_VARIABLE).ok();
    let (Some(server), Some(from)) = (&args.smtp, &args.smtp_from) else {
        // clap has already refused one without the other.
        if password_in_environment.is_some() {
            bail!("{SMTP_PASSWORD_VARIABLE} is set but no --smtp server is given");
        }
        return Ok(NotifyConfig { smtp: None });
    };
    let from = parse_email_address(from).context("--smtp-from")?;
    let hello_name = match &args.smtp_hello {
        Some(name) => name.clone(),
        None => from
            .rsplit_once('@')
            .map(|(_, domain)| domain.to_owned())
            .unwrap_or_else(|| "localhost".into()),
    };
    let login = match (&args.smtp_user, &args.smtp_password_file, password_in_environment) {
        (None, _, None) => None,
        (None, _, Some(_)) => bail!("{SMTP_PASSWORD_VARIABLE} is set but no --smtp-user is given"),
        (Some(_), Some(_), Some(_)) => bail!(
            "the SMTP password is both in {SMTP_PASSWORD_VARIABLE} and in --smtp-password-file: give one"
        ),
        (Some(user), Some(file), None) => {
            let text = std::fs::read_to_string(file).with_context(|| {
                format!("reading the SMTP password from {}", file.display())
            })?;
            let password = text.lines().next().unwrap_or_default();
            if password.is_empty() {
                bail!("--smtp-password-file {}: the first line is empty", file.display());
            }
            Some(SmtpLogin::new(user.clone(), password))
        }
        (Some(user), None, Some(password)) => Some(SmtpLogin::new(user.clone(), password)),
        (Some(_), None, None) => bail!(
            "--smtp-user needs a password: set {SMTP_PASSWORD_VARIABLE} or give --smtp-password-file FILE"
        ),
    };
    let extra_roots_pem = match &args.smtp_ca_file {
        Some(file) => Some(
            std::fs::read(file)
                .with_context(|| format!("reading --smtp-ca-file {}", file.display()))?,
        ),
        None => None,
    };
    Ok(NotifyConfig {
        smtp: Some(SmtpConfig {
            host: server.host.clone(),
            port: server.port,
            from,
            hello_name,
            tls: match args.smtp_tls {
                TlsMode::None => SmtpTls::None,
                TlsMode::Starttls => SmtpTls::StartTls,
                TlsMode::Tls => SmtpTls::Tls,
            },
            login,
            extra_roots_pem,
        }),
    })
}

/// Threads for blocking work (the store, password hashing). Without a bound tokio grows its pool to 512
/// under overload, and the office spends its time switching between threads that all wait on the one
/// store connection; with one, extra work queues instead (and the sync gate turns ordinary syncs away
/// before they queue, see `admission`).
const MAX_BLOCKING_THREADS: usize = 32;

fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .build()
        .context("starting the async runtime")?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,doorstep_office=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        None => serve(cli.serve).await,
        Some(Command::Serve(args)) => serve(args).await,
        Some(Command::Timeline(data_dir)) => print_timeline(&open_store(&data_dir).await?),
        Some(Command::AddTarget(args)) => add_target(&open_store(&args.data_dir).await?, &args),
        Some(Command::Targets(data_dir)) => print_targets(&open_store(&data_dir).await?),
        Some(Command::SetPassword(args)) => {
            set_password(&open_store(&args.data_dir).await?, &args.staff)
        }
        Some(Command::SetTimeZone(args)) => set_time_zone(&args).await,
        Some(Command::VerifyAudit(data_dir)) => verify_audit(&open_store(&data_dir).await?),
        Some(Command::EnrolCode(args)) => enrol_code(&open_store(&args.data_dir).await?, &args),
        Some(Command::Watch(args)) => watch(&args).await,
    }
}

async fn set_time_zone(args: &SetTimeZoneArgs) -> anyhow::Result<()> {
    // Both read before the database is opened: a wrong name changes nothing.
    let zone: doorstep_core::domain::SchoolTimeZone = args
        .zone
        .parse()
        .map_err(|e| anyhow::anyhow!("{:?} is not a time zone: {e}", args.zone))?;
    let school = args
        .school
        .parse()
        .map_err(|e| anyhow::anyhow!("{:?} is not a school id: {e}", args.school))?;
    let store = open_store(&args.data_dir).await?;
    store
        .set_school_time_zone(&school, zone)
        .with_context(|| format!("setting {}'s time zone", args.school))?;
    writeln!(
        std::io::stdout().lock(),
        "{} now reads every time in {}.",
        args.school,
        args.zone
    )?;
    Ok(())
}

fn verify_audit(store: &OfficeStore) -> anyhow::Result<()> {
    let check = store.verify_audit_log().context("reading the audit log")?;
    let mut out = std::io::stdout().lock();
    match check.broken {
        None => {
            writeln!(
                out,
                "The audit log holds {} entries and its hash chain is intact.",
                check.entries
            )?;
            Ok(())
        }
        Some(broken) => {
            writeln!(
                out,
                "The audit log's hash chain is BROKEN at {broken} ({} entries).",
                check.entries
            )?;
            drop(out);
            std::process::exit(1);
        }
    }
}

/// The office's store: the PostgreSQL database whose URL is in [`DATABASE_URL_VARIABLE`] when it is set,
/// otherwise office.sqlite3 in `data_dir`.
async fn open_store(data_dir: &DataDir) -> anyhow::Result<OfficeStore> {
    match std::env::var(DATABASE_URL_VARIABLE) {
        Ok(url) if !url.trim().is_empty() => Ok(PgStore::connect(&url, SERVE_CONNECTIONS)
            .await
            .context("connecting to PostgreSQL (DOORSTEP_DATABASE_URL)")?
            .into()),
        _ => Ok(SqliteStore::open(&data_dir.path)
            .with_context(|| format!("opening the office database in {}", data_dir.path.display()))?
            .into()),
    }
}

/// Connections an office keeps to a PostgreSQL database: a request waits for its store work on one
/// (see [`doorstep_office::admission`] for how many syncs do store work at once).
const SERVE_CONNECTIONS: usize = 16;

/// The escalation engine alone, on a PostgreSQL database other offices share, until stopped.
async fn watch(args: &WatchArgs) -> anyhow::Result<()> {
    let config = notify_config(&args.smtp)?;
    if let Some(smtp) = &config.smtp {
        smtp.check().context("--smtp")?;
    }
    let url = std::env::var(DATABASE_URL_VARIABLE)
        .with_context(|| format!("set {DATABASE_URL_VARIABLE} to the PostgreSQL database's URL"))?;
    let store = Arc::new(
        PgStore::connect(&url, usize::from(args.connections))
            .await
            .context("connecting to PostgreSQL")?,
    );
    let clock = doorstep_office::clock::system();
    let rescan = std::time::Duration::from_millis(args.rescan_ms);
    let mut engines =
        Engines::start(store, config, &clock, Some(rescan)).context("setting up notifications")?;
    // Said on standard output once the engine is running, for whoever started it.
    let mut out = std::io::stdout().lock();
    writeln!(out, "watching every visit's deadlines")?;
    out.flush()?;
    drop(out);
    tokio::select! {
        stopped = tokio::signal::ctrl_c() => stopped.context("waiting for Ctrl-C")?,
        ended = engines.stopped() => ended.context("the escalation engine or the notifier stopped")?,
    }
    engines.stop();
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = notify_config(&args.smtp)?;
    if let Some(smtp) = &config.smtp {
        smtp.check().context("--smtp")?;
    }
    let fonts = match &args.cjk_font {
        Some(file) => PdfFonts::with_cjk_font(file)
            .with_context(|| format!("--cjk-font {}", file.display()))?,
        None => PdfFonts::with_cjk_font(Path::new(DEFAULT_CJK_FONT)).or_else(|error| {
            tracing::warn!(
                %error,
                "no CJK font (install fonts-noto-cjk or give --cjk-font): Chinese, Japanese and Korean \
                 characters print as boxes in PDF records, which say so"
            );
            PdfFonts::embedded().context("loading the fonts compiled into the office")
        })?,
    };
    records::pdf::use_fonts(fonts);
    let store = open_store(&args.data_dir).await?;
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
    let tls = match (&args.tls.tls_cert, &args.tls.tls_key) {
        (Some(cert), Some(key)) => Some(
            doorstep_office::serve::Tls::from_pem_files(cert, key)
                .context("setting up HTTPS from --tls-cert and --tls-key")?,
        ),
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{}", listener.local_addr()?);
    if args.demo {
        prepare_demo(&store, &args.data_dir.path)?;
    }
    let web = WebSettings {
        secure_cookies: !(args.insecure_cookies || args.demo),
    };
    if !web.secure_cookies {
        tracing::warn!("sign-in cookies are sent over plain HTTP (--insecure-cookies or --demo): demo use only");
    }
    tracing::info!(%url, database = %store.describe(), "office listening; the board is at /");
    let limits = doorstep_office::serve::Limits::for_this_process();
    tracing::info!(
        max_connections = limits.max_connections,
        per_address = limits.max_connections_per_peer,
        overflow = limits.overflow_connections,
        "connection limits"
    );
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
        limits,
        tls,
        sms,
        sync_gate: doorstep_office::admission::SyncGate::for_this_machine(),
    };
    doorstep_office::run_with(listener, store, settings, shutdown_signal())
        .await
        .context("serving the office API")
}

fn prepare_demo(store: &OfficeStore, data_dir: &Path) -> anyhow::Result<()> {
    if store.is_empty()? {
        demo::seed_school(store, now()).context("adding the demo school")?;
        demo::seed_visit_under_way(store, now()).context("adding the demo visit under way")?;
        demo::seed_visit_nobody_set_off_for(store, now())
            .context("adding the demo visit nobody sets off for")?;
        tracing::info!("demo school added");
        // A new demo database makes new passwords; an old sign-ins file would no longer be true.
        let _ = std::fs::remove_file(data_dir.join(DEMO_LOGINS_FILE));
    } else if !demo::is_demo(store)? {
        bail!(
            "--demo needs an empty database or one made by an earlier --demo run; {} holds other data",
            data_dir.display()
        );
    }
    let logins = data_dir.join(DEMO_LOGINS_FILE);
    if !logins.exists() {
        // On PostgreSQL nothing else has made the data folder.
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("making the data folder {}", data_dir.display()))?;
        let made = demo::add_office_logins(store, now()).context("adding the demo sign-ins")?;
        demo::write_office_logins(&logins, &made)
            .with_context(|| format!("writing {}", logins.display()))?;
    }
    tracing::info!(sign_ins = %logins.display(), "office board sign-ins for the demo");
    Ok(())
}

fn enrol_code(store: &OfficeStore, args: &EnrolCodeArgs) -> anyhow::Result<()> {
    let staff = args
        .staff
        .parse()
        .map_err(|e| anyhow::anyhow!("{:?} is not a staff id: {e}", args.staff))?;
    let school = store
        .school_of_staff(&staff)?
        .ok_or_else(|| anyhow::anyhow!("there is no member of staff {staff}"))?;
    let issued = store
        .issue_enrolment_code(&school, &staff, "office command line", now())
        .with_context(|| format!("issuing an enrolment code for {staff}"))?;
    let link = EnrolmentLink {
        office_url: args.office_url.trim_end_matches('/').to_owned(),
        code: issued.code.clone(),
    }
    .to_uri();
    let mut out = std::io::stdout().lock();
    if args.link {
        writeln!(out, "{link}")?;
    } else {
        writeln!(
            out,
            "Enrolment code for {}: {} (works once, until {})\n{link}",
            issued.staff_name,
            display_enrolment_code(&issued.code),
            issued.expires_at.format("%H:%M UTC")
        )?;
    }
    Ok(())
}

fn set_password(store: &OfficeStore, staff: &str) -> anyhow::Result<()> {
    let staff = staff
        .parse()
        .map_err(|e| anyhow::anyhow!("{staff:?} is not a staff id: {e}"))?;
    let mut password = String::new();
    std::io::stdin()
        .read_line(&mut password)
        .context("reading the password from standard input")?;
    let password = password.trim_end_matches(['\r', '\n']);
    store
        .set_office_password(&staff, password, now())
        .with_context(|| format!("setting the office password of {staff}"))?;
    tracing::info!(%staff, "office sign-in set; their open sessions were ended");
    Ok(())
}

/// The time now, by the office's one real clock (`clippy.toml` keeps `Utc::now` out of the office).
fn now() -> DateTime<Utc> {
    (doorstep_office::clock::system())()
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

fn add_target(store: &OfficeStore, args: &AddTargetArgs) -> anyhow::Result<()> {
    let school = args
        .school
        .parse()
        .map_err(|e| anyhow::anyhow!("--school {:?}: {e}", args.school))?;
    let wants = WantedLevels {
        board: args.board,
        authoriser: args.authoriser,
        further: args.further,
    };
    let target = match (&args.address.email, &args.address.webhook) {
        (Some(email), _) => NewTarget::email(email, wants)?,
        (None, Some(url)) => {
            let secret = std::env::var("DOORSTEP_WEBHOOK_SECRET")
                .context("a webhook needs its signing secret in DOORSTEP_WEBHOOK_SECRET")?;
            NewTarget::webhook_allowing(url, &secret, wants, args.allow_plain_http)?
        }
        // clap has already asked for one of the two.
        (None, None) => bail!("add-target takes one of --email ADDRESS or --webhook URL"),
    };
    let target = target
        .named(args.name.as_deref().unwrap_or_default())?
        .for_roles(&args.role);
    let added = store.add_notification_target(&school, &target, now())?;
    tracing::info!(id = added.id, target = %added.label(), "notification target added");
    Ok(())
}

fn print_targets(store: &OfficeStore) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for target in store.notification_targets()? {
        if target.removed_at.is_some() {
            continue;
        }
        let mut wants: Vec<String> = [
            (target.wants.board, "board"),
            (target.wants.authoriser, "authoriser"),
            (target.wants.further, "further"),
        ]
        .into_iter()
        .filter(|(yes, _)| *yes)
        .map(|(_, name)| name.to_owned())
        .collect();
        wants.extend(target.roles.iter().map(|r| format!("role:{}", r.label())));
        if let Some(visit) = &target.visit {
            wants.push(format!("contact of {visit}"));
        }
        let wants = wants.join(" + ");
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

fn print_timeline(store: &OfficeStore) -> anyhow::Result<()> {
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
