//! `seed`: an office data folder (or, with `DOORSTEP_DATABASE_URL` set, the PostgreSQL database it
//! names, as the office reads it; the phones' credentials still go in the folder) with one school, its staff in pairs, a phone enrolled for each, and visits
//! in progress: each pair went in at a time spread so that, left silent, their first check-ins fall due one
//! after another over the ten minutes after `--alarms-from`. Writes the phones' credentials (one JSON
//! object a line) for `sync` and `duress`, and a board session for `duress`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use doorstep_core::domain::{
    Address, Briefing, DbsCheck, DbsLevel, Pupil, RiskAssessment, Role, School, StaffMember, Visit,
    VisitPurpose, VisitStaff,
};
use doorstep_core::event::EventEnvelope;
use doorstep_core::ids::{DeviceId, DeviceSeq, EventId, SchoolId, StaffId, VisitId};
use doorstep_core::lifecycle::{Command, VisitEvent};
use doorstep_core::policy::{CodePhrases, PolicyMinutes, Preset};
use doorstep_core::protocol::MAX_BATCH_EVENTS;
use doorstep_office::store::postgres::PgStore;
use doorstep_office::{OfficeStore, SqliteStore};
use serde::{Deserialize, Serialize};

#[derive(Debug, clap::Args)]
pub struct SeedArgs {
    /// An empty (or new) office data folder.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Visits in progress, each with two staff and a phone each.
    #[arg(long, default_value_t = 5_000)]
    pub visits: usize,
    /// When the first silent visit's first check-in goes overdue, in minutes after seeding ends; the rest
    /// follow evenly over the next ten minutes.
    #[arg(long, default_value_t = 5)]
    pub alarms_from: i64,
    /// Check-ins each visit already holds besides its steps, split between its two phones (a history for
    /// the idle sync to carry or not); at most 990, under the office's quota per phone and visit.
    #[arg(long, default_value_t = 0)]
    pub history: usize,
}

/// One enrolled phone, as `seed` writes it to `phones.jsonl` in the data folder.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Phone {
    pub device: DeviceId,
    pub token: String,
    pub staff: StaffId,
    pub visit: VisitId,
    /// The sequence number its next event takes.
    pub next_seq: u64,
    /// The holdings cursor of the last answer, sent back by `sync --cursor` (never written to the file).
    #[serde(skip)]
    pub cursor: Option<String>,
}

/// Where `seed` writes the phones.
pub fn phones_file(data_dir: &Path) -> PathBuf {
    data_dir.join("phones.jsonl")
}

/// Where `seed` writes the board session's cookie.
pub fn board_cookie_file(data_dir: &Path) -> PathBuf {
    data_dir.join("board-cookie.txt")
}

pub fn read_phones(file: &Path) -> anyhow::Result<Vec<Phone>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).context("a line of the phones file"))
        .collect()
}

/// The office's store as `doorstep-office` opens it: the PostgreSQL database `DOORSTEP_DATABASE_URL` names,
/// or office.sqlite3 in `data_dir`.
pub async fn open_store(data_dir: &Path) -> anyhow::Result<OfficeStore> {
    match std::env::var("DOORSTEP_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Ok(PgStore::connect(&url, 4)
            .await
            .context("connecting to PostgreSQL")?
            .into()),
        _ => Ok(SqliteStore::open(data_dir)
            .context("opening the office store")?
            .into()),
    }
}

pub async fn run(args: SeedArgs) -> anyhow::Result<()> {
    let store = open_store(&args.data_dir).await?;
    std::fs::create_dir_all(&args.data_dir)?;
    // Seeding waits on the store from this thread, as a request's blocking work does.
    tokio::task::block_in_place(|| seed(&store, &args))
}

/// Seeds `store` as `args` say, writing the phones and the board's cookie into `args.data_dir`.
pub fn seed(store: &OfficeStore, args: &SeedArgs) -> anyhow::Result<()> {
    if !store.is_empty()? {
        bail!("the office's store already holds a school: seed an empty one");
    }
    if args.history > 990 {
        bail!("--history is at most 990: each phone may send a visit at most 500 events");
    }
    let began = std::time::Instant::now();
    let now = Utc::now();
    let school: SchoolId = "load-school".parse()?;
    let mut policy = Preset::PrimaryHeadteacher.policy();
    policy.code_phrases = Some(CodePhrases {
        to_colleague: "Could you remind me about the cover rota?".into(),
        to_reception: "Please can someone check the cover rota for me?".into(),
    });
    store.add_school(
        &School {
            id: school.clone(),
            name: "Load Test School".into(),
            office_phone: "01632 960000".parse()?,
            time_zone: Default::default(),
        },
        &policy,
    )?;
    let checked_on = NaiveDate::from_ymd_opt(2025, 9, 1).context("a date")?;
    let member = |id: String, roles: Vec<Role>| -> anyhow::Result<StaffMember> {
        Ok(StaffMember {
            name: format!("Staff {id}"),
            id: id.parse()?,
            roles,
            phone: "07700 900100".parse()?,
            dbs: Some(DbsCheck {
                level: DbsLevel::EnhancedWithBarredList,
                checked_on,
            }),
        })
    };
    let head = member("head".into(), vec![Role::Headteacher, Role::Office])?;
    store.add_staff(&school, &head)?;

    // Visits and their phones first (the slow part); their steps after, stamped so the deadlines fall
    // where --alarms-from says.
    let mut pairs = Vec::with_capacity(args.visits);
    for n in 0..args.visits {
        let staff = [
            member(format!("s{n}a"), vec![Role::VisitingStaff])?,
            member(format!("s{n}b"), vec![Role::VisitingStaff])?,
        ];
        for m in &staff {
            store.add_staff(&school, m)?;
        }
        let pupil = Pupil {
            id: format!("p{n}").parse()?,
            name: format!("Pupil {n}"),
        };
        store.add_pupil(&school, &pupil)?;
        let visit = Visit {
            id: format!("v{n}").parse()?,
            school: school.clone(),
            purpose: VisitPurpose::SafeAndWellCheck,
            pupil,
            address: Address {
                lines: vec![format!("{n} Load Street"), "Oakfield".into()],
                postcode: "OK1 2AB".parse()?,
            },
            agreed_time: now - TimeDelta::hours(1),
            expected_length: PolicyMinutes::new(24 * 60)?,
            staff: staff.iter().map(VisitStaff::from).collect(),
            briefing: Briefing::new(RiskAssessment::standard()),
        };
        store.add_visit(&visit)?;
        store.record_office_event(
            &visit.id,
            &Command::Authorise {
                by: head.id.clone(),
                lone_visit_approved: false,
            },
            now,
        )?;
        let mut phones = Vec::new();
        for (side, m) in staff.iter().enumerate() {
            let device: DeviceId = format!("d{n}{}", if side == 0 { "a" } else { "b" }).parse()?;
            let token = format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            );
            store.enrol_device(&device, &m.id, &token, now)?;
            phones.push(Phone {
                device,
                token,
                staff: m.id.clone(),
                visit: visit.id.clone(),
                next_seq: 1,
                cursor: None,
            });
        }
        pairs.push(phones);
        if n % 1_000 == 999 {
            println!(
                "seeded {} visits ({:.0} s)",
                n + 1,
                began.elapsed().as_secs_f64()
            );
        }
    }

    // Each pair set off, arrived and went in; the first check-in is due 10 minutes after going in and
    // goes overdue 5 minutes after that, so going in at `overdue - 15 min` puts the alarm at `overdue`.
    let first_overdue = Utc::now() + TimeDelta::minutes(args.alarms_from);
    let spread = TimeDelta::minutes(10).num_milliseconds();
    let count = pairs.len().max(1) as i64;
    for (n, phones) in pairs.iter_mut().enumerate() {
        let overdue = first_overdue + TimeDelta::milliseconds(spread * n as i64 / count);
        let went_in = overdue - TimeDelta::minutes(15);
        let set_off = went_in - TimeDelta::minutes(10);
        let both: Vec<StaffId> = phones.iter().map(|p| p.staff.clone()).collect();
        for (side, phone) in phones.iter_mut().enumerate() {
            let mut steps = vec![
                (
                    set_off,
                    VisitEvent::Departed {
                        staff: phone.staff.clone(),
                        expected_arrival: went_in,
                        expected_end: went_in + TimeDelta::hours(20),
                    },
                ),
                (
                    went_in - TimeDelta::minutes(1),
                    VisitEvent::ArrivedOutside {
                        staff: phone.staff.clone(),
                    },
                ),
            ];
            if side == 1 {
                steps.push((
                    went_in,
                    VisitEvent::VisitStarted {
                        by: phone.staff.clone(),
                        staff: both.clone(),
                    },
                ));
            }
            send_seeded(store, phone, steps)?;
            // The visit's history: check-ins just after going in (so the deadlines move by a second).
            let mine = args.history / 2 + (side == 0 && args.history % 2 == 1) as usize;
            let check_ins: Vec<_> = (0..mine)
                .map(|_| {
                    (
                        went_in + TimeDelta::seconds(1),
                        VisitEvent::CheckedIn {
                            staff: phone.staff.clone(),
                        },
                    )
                })
                .collect();
            for chunk in check_ins.chunks(MAX_BATCH_EVENTS) {
                send_seeded(store, phone, chunk.to_vec())?;
            }
        }
    }

    let mut file = std::fs::File::create(phones_file(&args.data_dir))?;
    for phone in pairs.iter().flatten() {
        writeln!(file, "{}", serde_json::to_string(phone)?)?;
    }
    let cookie = format!("load-{}", uuid::Uuid::new_v4().simple());
    store.start_session(&head.id, &cookie, Utc::now())?;
    std::fs::write(
        board_cookie_file(&args.data_dir),
        format!("doorstep_session={cookie}"),
    )?;
    println!(
        "seeded {} visits in progress, {} phones, in {:.0} s; silent visits go overdue from {} for ten minutes",
        pairs.len(),
        pairs.len() * 2,
        began.elapsed().as_secs_f64(),
        first_overdue.format("%H:%M:%S UTC"),
    );
    println!("phones: {}", phones_file(&args.data_dir).display());
    Ok(())
}

fn send_seeded(
    store: &OfficeStore,
    phone: &mut Phone,
    steps: Vec<(DateTime<Utc>, VisitEvent)>,
) -> anyhow::Result<()> {
    let device = store
        .authenticate(&phone.token, Utc::now())?
        .context("the phone just enrolled")?;
    let mut envelopes = Vec::new();
    for (at, event) in steps {
        envelopes.push(EventEnvelope {
            id: EventId::new_v7(),
            device: phone.device.clone(),
            seq: DeviceSeq::new(phone.next_seq)?,
            visit: phone.visit.clone(),
            recorded_at: at,
            event,
        });
        phone.next_seq += 1;
    }
    let now = Utc::now();
    store
        .ingest_raising(&device, &envelopes, now, now)
        .map_err(|e| anyhow::anyhow!("seeding a phone's steps: {e}"))?;
    Ok(())
}
