//! The office's store on PostgreSQL, for a trust or local authority that outgrows one machine: several
//! office processes share one database, chosen by a database URL.
//!
//! **What it holds.** Every area of the office, behind the same traits as the SQLite store ([`Visits`],
//! [`Alarms`], [`super::deliveries::Deliveries`], [`super::audit_trail::AuditTrail`],
//! [`super::sign_ins::SignIns`], [`super::phones::Phones`], [`super::people::People`] and
//! [`super::requests::Requests`]): every command of the office, `serve` included, runs on it when
//! `DOORSTEP_DATABASE_URL` names the database ([`super::OfficeStore`]).
//!
//! **Its own thread.** The pool's connections are made and driven on a one-thread runtime the store owns
//! ([`Driver`]), so a query can be awaited from the office's runtime or waited for from any other thread
//! ([`PgStore::wait`]): a request's blocking work, or a test's thread.
//!
//! **Several offices, one database.** Every office's engine watches every visit
//! ([`crate::escalation::Escalation::spawn_sharing`]), so each deadline comes due in all of them. Each
//! write that could be made twice is decided inside a transaction holding the visit's advisory lock
//! (`pg_advisory_xact_lock`, [`LOCK_VISIT`]), and checked there against what is stored: an alarm is raised
//! only if the same one (visit, kind, about, due) is not there (the table's unique key says the same), and
//! escalated only if it is still as the engine saw it ([`crate::alarms::still_as_seen`]). The second office
//! waits for the first's commit and then finds the step made. An office that dies holding the lock loses its
//! connection, PostgreSQL rolls its transaction back and frees the lock, and the next office makes the step.
//!
//! The driver is tokio-postgres, through a deadpool pool; the schema is `migrations-postgres/`, applied by
//! refinery (the runner the SQLite store uses) under a session advisory lock, so offices starting together
//! migrate once. Times are kept as the same RFC 3339 text the SQLite store keeps, so both backends compare
//! the same instants to the nanosecond (a `timestamptz` keeps microseconds, and an alarm's due time must
//! equal the deadline it was raised for).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod};
use doorstep_core::contact::PhoneNumber;
use doorstep_core::domain::{Pupil, School, SchoolTimeZone, StaffMember, Visit};
use doorstep_core::event::{trusted_time, EventEnvelope, TrustedEvent};
use doorstep_core::ids::{DeviceId, DeviceSeq, SchoolId, StaffId, VisitId};
use doorstep_core::lifecycle::{self, VisitState};
use doorstep_core::migrate::{MigrateError, MigrationFile};
use doorstep_core::policy::Policy;
use doorstep_core::protocol::EventOutcome;
use doorstep_core::schedule::AlarmLevel;
use tokio_postgres::{NoTls, Row, Statement};

use pipelined::{Begin, Pipelined};

mod audit;
mod decisions;
mod deliveries;
mod holdings;
mod people;
mod phones;
mod pipelined;
mod requests;
mod sign_ins;
mod visits;

use super::backend::{dbs_refusal, Alarms, Batch, Visits};
use super::checks::{self, Tally};
use super::{
    check_new_school, parse_id, stored_time, Device, Holdings, IngestError, Ingested, Rejection,
    StoreError, StoredEvent,
};
use crate::alarms::{
    acknowledged_detail, already_done, checked_name, escalation_step, nobody_to_tell_detail,
    raised_detail, step, still_as_seen, Alarm, AlarmKind, AlarmLogEntry, Closing, NewAlarm,
    HEARD_FROM,
};
use crate::audit::NewEntry;
use crate::notices::{role_name, NoticeKind};
use crate::versions::{Change, VisitChange, VisitVersion};
use doorstep_core::reconcile::HeldSeq;

/// The PostgreSQL schema, oldest first (the folder `migrations-postgres/`).
pub const MIGRATIONS: &[MigrationFile] = &[
    (
        "V1__visits_and_alarms",
        include_str!("../../migrations-postgres/V1__visits_and_alarms.sql"),
    ),
    (
        "V2__deliveries",
        include_str!("../../migrations-postgres/V2__deliveries.sql"),
    ),
    (
        "V6__audit",
        include_str!("../../migrations-postgres/V6__audit.sql"),
    ),
    (
        "V7__visit_versions",
        include_str!("../../migrations-postgres/V7__visit_versions.sql"),
    ),
    (
        "V8__office_sign_ins",
        include_str!("../../migrations-postgres/V8__office_sign_ins.sql"),
    ),
    (
        "V9__phones",
        include_str!("../../migrations-postgres/V9__phones.sql"),
    ),
    (
        "V10__people",
        include_str!("../../migrations-postgres/V10__people.sql"),
    ),
    (
        "V11__requests",
        include_str!("../../migrations-postgres/V11__requests.sql"),
    ),
    (
        "V12__sms",
        include_str!("../../migrations-postgres/V12__sms.sql"),
    ),
];

/// Takes visit `$1`'s advisory lock until the transaction ends: every write about a visit's events or
/// alarms that two offices could both make is made under it. The lock's first key, 7301, is the office's
/// for visits; the second is `hashtext` of the visit's id (two visits that share a hash only wait for each
/// other).
pub const LOCK_VISIT: &str = "SELECT pg_advisory_xact_lock(7301, hashtext($1))";

/// The session advisory lock the migrations are applied under.
const MIGRATION_LOCK: i64 = 7_300;

/// The office's store on PostgreSQL (see the module's notes for what it holds so far).
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// The store's own runtime, which makes and drives every connection of the pool (see [`Driver`]).
    driver: Arc<Driver>,
}

/// A small runtime of the store's own: every connection of the pool is made and driven on it, so a query
/// goes on whichever thread waits for it, whether an async task on the office's runtime or a request's
/// blocking work through [`PgStore::wait`], on a runtime of any flavour (a test's single thread too).
struct Driver {
    runtime: Option<tokio::runtime::Runtime>,
}

impl Driver {
    fn start() -> Result<Self, StoreError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("doorstep-postgres")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Pool(format!("starting the database's thread: {e}")))?;
        Ok(Self {
            runtime: Some(runtime),
        })
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        self.runtime
            .as_ref()
            .expect("the driver's runtime lives until it is dropped")
            .handle()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Dropped from async code as often as not, where waiting for the runtime's tasks is not allowed.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Makes each of the pool's connections on the [`Driver`]'s runtime and drives it there until it ends.
/// It holds the driver, so the runtime outlives every connection the pool makes.
struct ConnectOnDriver {
    driver: Arc<Driver>,
}

impl deadpool_postgres::Connect for ConnectOnDriver {
    fn connect(
        &self,
        config: &tokio_postgres::Config,
    ) -> futures_util::future::BoxFuture<
        '_,
        Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), tokio_postgres::Error>,
    > {
        let config = config.clone();
        let (made, client) = tokio::sync::oneshot::channel();
        let task = self.driver.handle().spawn(async move {
            match config.connect(NoTls).await {
                Ok((client, connection)) => {
                    if made.send(Ok(client)).is_ok() {
                        if let Err(error) = connection.await {
                            tracing::warn!(%error, "a database connection ended");
                        }
                    }
                }
                Err(error) => {
                    let _ = made.send(Err(error));
                }
            }
        });
        Box::pin(async move {
            match client.await {
                Ok(made) => made.map(|client| (client, task)),
                // Only if the task panicked (the driver outlives the pool): the driver's own
                // "could not connect in time" is the nearest error it has a constructor for.
                Err(_) => Err(tokio_postgres::Error::__private_api_timeout()),
            }
        })
    }
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("connections", &self.pool.status().size)
            .finish()
    }
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user@host/db` or `host=... dbname=...`), brings its
    /// schema up to date, and keeps a pool of at most `connections`.
    pub async fn connect(url: &str, connections: usize) -> Result<Self, StoreError> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Invalid(format!("the database URL: {e}")))?;
        migrate(&config).await?;
        // Every statement is planned for its own values. A prepared statement's generic plan is made
        // once, from what the tables held then: for a new office's empty tables that is a full scan, kept
        // however large they grow, until the next ANALYZE.
        let options = match config.get_options() {
            Some(given) => format!("{given} -c plan_cache_mode=force_custom_plan"),
            None => "-c plan_cache_mode=force_custom_plan".to_owned(),
        };
        config.options(&options);
        let driver = Arc::new(Driver::start()?);
        let manager = Manager::from_connect(
            config,
            ConnectOnDriver {
                driver: driver.clone(),
            },
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(connections.max(1))
            .build()
            .map_err(|e| StoreError::Pool(e.to_string()))?;
        Ok(Self { pool, driver })
    }

    /// Waits on this thread for `work` (one of the store's methods) to finish: how a request's blocking
    /// work, and a test's own thread, use the store as they use the SQLite one. Never from an async task,
    /// whose thread it would hold.
    pub fn wait<T>(&self, work: impl std::future::Future<Output = T>) -> T {
        // Anything `work` starts (argon2's blocking hash, a timer) starts on the store's own runtime.
        let _on_the_driver = self.driver.handle().enter();
        futures_executor::block_on(work)
    }

    /// Runs one statement on a connection of the pool, outside any transaction.
    async fn execute(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        execute(&self.client().await?, sql, params).await
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Pool(e.to_string()))
    }

    /// Closes the pool: every connection is dropped and no more are made (an office stopping).
    pub fn close(&self) {
        self.pool.close();
    }
}

/// Applies the migrations not yet applied, under a session advisory lock so that offices starting together
/// migrate once.
async fn migrate(config: &tokio_postgres::Config) -> Result<(), StoreError> {
    let (mut client, connection) = config.connect(NoTls).await?;
    let connection = tokio::spawn(connection);
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let migrations = MIGRATIONS
        .iter()
        .map(|(name, sql)| refinery::Migration::unapplied(name, sql))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| StoreError::Migrate(MigrateError::Refinery(e)))?;
    let applied = refinery::Runner::new(&migrations)
        .set_grouped(true)
        .run_async(&mut client)
        .await
        .map_err(|e| StoreError::Migrate(MigrateError::Refinery(e)));
    // Dropping the client ends the session, and with it the lock.
    drop(client);
    let _ = connection.await;
    applied.map(|_| ())
}

type Params<'a> = &'a [&'a (dyn tokio_postgres::types::ToSql + Sync)];

/// Every statement goes through the connection's cache of prepared statements (deadpool's
/// `prepare_cached`): a statement is parsed once per connection, and each use is one round trip. Each
/// function is the driver's method of the same name, with the SQL prepared through the cache.
macro_rules! through_the_cache {
    ($($name:ident -> $out:ty;)*) => {$(
        async fn $name(
            client: &impl GenericClient,
            sql: &str,
            params: Params<'_>,
        ) -> Result<$out, StoreError> {
            let statement = client.prepare_cached(sql).await?;
            Ok(client.$name(&statement, params).await?)
        }
    )*};
}

through_the_cache! {
    query -> Vec<Row>;
    query_opt -> Option<Row>;
    query_one -> Row;
    execute -> u64;
}

/// A row's columns, in order, as a tuple: what the readers both stores share take (for example
/// [`crate::devices::device_row`]).
trait Columns: Sized {
    fn of(row: &Row) -> Result<Self, StoreError>;
}

/// [`Columns`] for tuples of the given arity.
macro_rules! columns_of_tuples {
    ($(($($kind:ident $index:tt),+))*) => {$(
        impl<$($kind: tokio_postgres::types::FromSqlOwned),+> Columns for ($($kind,)+) {
            fn of(row: &Row) -> Result<Self, StoreError> {
                Ok(($(row.try_get::<_, $kind>($index)?,)+))
            }
        }
    )*};
}

columns_of_tuples! {
    (A 0, B 1)
    (A 0, B 1, C 2)
    (A 0, B 1, C 2, D 3)
    (A 0, B 1, C 2, D 3, E 4)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10)
}

/// A row's columns as the tuple `T`.
fn columns<T: Columns>(row: &Row) -> Result<T, StoreError> {
    T::of(row)
}

fn text(row: &Row, column: &str) -> Result<String, StoreError> {
    Ok(row.try_get(column)?)
}

fn optional_time(row: &Row, column: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    row.try_get::<_, Option<String>>(column)?
        .as_deref()
        .map(stored_time)
        .transpose()
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("bad {what} in alarms"))
}

fn alarm_from(row: &Row) -> Result<Alarm, StoreError> {
    let outcome: Option<String> = row.try_get("outcome")?;
    Ok(Alarm {
        id: row.try_get("id")?,
        visit: parse_id(&text(row, "visit_id")?)?,
        kind: AlarmKind::parse(&text(row, "kind")?).ok_or_else(|| corrupt("kind"))?,
        about: text(row, "about")?,
        due_at: stored_time(&text(row, "due_at")?)?,
        raised_at: stored_time(&text(row, "raised_at")?)?,
        level: AlarmLevel::parse(&text(row, "level")?).ok_or_else(|| corrupt("level"))?,
        escalated_at: optional_time(row, "escalated_at")?,
        contact_resumed_at: optional_time(row, "contact_resumed_at")?,
        acknowledged_by: row.try_get("acknowledged_by")?,
        acknowledged_at: optional_time(row, "acknowledged_at")?,
        closed_by: row.try_get("closed_by")?,
        closed_at: optional_time(row, "closed_at")?,
        outcome: match outcome {
            Some(text) => {
                Some(lifecycle::AlarmOutcome::parse(&text).ok_or_else(|| corrupt("outcome"))?)
            }
            None => None,
        },
        close_note: row.try_get("close_note")?,
    })
}

async fn alarm_in(client: &impl GenericClient, id: i64) -> Result<Alarm, StoreError> {
    let row = query_one(client, "SELECT * FROM alarms WHERE id = $1", &[&id]).await?;
    alarm_from(&row)
}

/// A visit's school (with its time zone) and policy; an unknown visit is refused.
async fn school_of_visit(
    client: &impl GenericClient,
    visit: &VisitId,
) -> Result<(School, Policy), StoreError> {
    let row = query_opt(
        client,
        "SELECT s.id, s.name, s.office_phone, s.policy, s.time_zone
             FROM visits v JOIN schools s ON s.id = v.school_id WHERE v.id = $1",
        &[&visit.as_str()],
    )
    .await?
    .ok_or_else(|| StoreError::Invalid(format!("unknown visit {visit}")))?;
    school_from(&row)
}

fn school_from(row: &Row) -> Result<(School, Policy), StoreError> {
    let id: SchoolId = parse_id(&text(row, "id")?)?;
    let time_zone = SchoolTimeZone::parse(&text(row, "time_zone")?)
        .map_err(|e| StoreError::Invalid(format!("school {id}: {e}")))?;
    Ok((
        School {
            name: text(row, "name")?,
            office_phone: PhoneNumber::from_stored(&text(row, "office_phone")?),
            time_zone,
            id,
        },
        serde_json::from_str(&text(row, "policy")?)?,
    ))
}

async fn school_policy(
    client: &impl GenericClient,
    school: &SchoolId,
) -> Result<Policy, StoreError> {
    let row = query_opt(
        client,
        "SELECT policy FROM schools WHERE id = $1",
        &[&school.as_str()],
    )
    .await?
    .ok_or_else(|| StoreError::Invalid(format!("unknown school {school}")))?;
    Ok(serde_json::from_str(&text(&row, "policy")?)?)
}

async fn lock_visit(client: &impl GenericClient, visit: &VisitId) -> Result<(), StoreError> {
    execute(client, LOCK_VISIT, &[&visit.as_str()]).await?;
    Ok(())
}

/// Adds a line to an alarm's log: the step (`what`), the level it concerns, and its words.
async fn log(
    client: &impl GenericClient,
    (alarm, at): (i64, DateTime<Utc>),
    (what, level, detail): (&str, Option<AlarmLevel>, &str),
) -> Result<(), StoreError> {
    execute(
        client,
        "INSERT INTO alarm_log (alarm_id, at, what, level, detail) VALUES ($1, $2, $3, $4, $5)",
        &[
            &alarm,
            &at.to_rfc3339(),
            &what,
            &level.map(AlarmLevel::name),
            &detail,
        ],
    )
    .await?;
    Ok(())
}

/// Everyone on a visit, in the order the office listed them.
async fn assigned_staff(
    client: &impl GenericClient,
    visit: &VisitId,
) -> Result<Vec<StaffId>, StoreError> {
    query(
        client,
        "SELECT staff_id FROM visit_staff WHERE visit_id = $1 ORDER BY position",
        &[&visit.as_str()],
    )
    .await?
    .iter()
    .map(|row| parse_id(&text(row, "staff_id")?))
    .collect()
}

/// Rebuilds a visit's state from all its events through the core lifecycle and stores it.
async fn refresh_visit(
    client: &impl GenericClient,
    visit: &VisitId,
) -> Result<VisitState, StoreError> {
    let staff = assigned_staff(client, visit).await?;
    let events = events_of(client, visit).await?;
    store_replayed(client, visit, &staff, &events).await
}

/// A stored event from a row with `body`, `received_at` and `trusted_at`.
pub(super) fn stored_event(row: &Row) -> Result<StoredEvent, StoreError> {
    let received_at = stored_time(&text(row, "received_at")?)?;
    Ok(StoredEvent {
        envelope: serde_json::from_str(&text(row, "body")?)?,
        received_at,
        trusted_at: optional_time(row, "trusted_at")?.unwrap_or(received_at),
    })
}

/// Every event of a visit, in the order the office received them.
pub(super) async fn events_of(
    client: &impl GenericClient,
    visit: &VisitId,
) -> Result<Vec<StoredEvent>, StoreError> {
    query(
        client,
        "SELECT body, received_at, trusted_at FROM events WHERE visit_id = $1 ORDER BY position",
        &[&visit.as_str()],
    )
    .await?
    .iter()
    .map(stored_event)
    .collect()
}

/// Replays a visit's whole history (`events`, in the order stored) through the core lifecycle, from the
/// state of a visit with `staff` assigned, and stores the state it comes to.
async fn store_replayed(
    client: &impl GenericClient,
    visit: &VisitId,
    staff: &[StaffId],
    events: &[StoredEvent],
) -> Result<VisitState, StoreError> {
    let state = replay(staff, events);
    store_state(client, visit, &state).await?;
    Ok(state)
}

/// The state a visit with `staff` assigned comes to through its whole history (`events`, in the order
/// stored), by the core lifecycle.
fn replay(staff: &[StaffId], events: &[StoredEvent]) -> VisitState {
    let trusted: Vec<TrustedEvent<'_>> = events.iter().map(StoredEvent::trusted).collect();
    lifecycle::replay(VisitState::new(staff.to_vec()), trusted.iter())
}

async fn store_state(
    client: &impl GenericClient,
    visit: &VisitId,
    state: &VisitState,
) -> Result<(), StoreError> {
    execute(
        client,
        "UPDATE visits SET phase = $2, state = $3 WHERE id = $1",
        &[
            &visit.as_str(),
            &state.phase().name(),
            &serde_json::to_string(state)?,
        ],
    )
    .await?;
    Ok(())
}

/// What raising an alarm on a visit writes beside it, read before: the visit's school with its policy (the
/// log's words) and the levels beyond the board its live school-wide targets want (whether anyone can be
/// told).
struct AlarmFacts {
    school: (School, Policy),
    /// Whether a live school-wide target wants the authoriser's level, and the further contacts'.
    wanted: [bool; 2],
}

impl AlarmFacts {
    /// The facts of each visit in `visits` that exists, by its id, in one statement.
    async fn read(
        client: &impl GenericClient,
        visits: &[&str],
    ) -> Result<HashMap<String, Self>, StoreError> {
        let rows = query(
            client,
            "SELECT v.id AS visit_id, s.id, s.name, s.office_phone, s.policy, s.time_zone,
                    COALESCE(bool_or(t.wants_authoriser = 1), false) AS authoriser,
                    COALESCE(bool_or(t.wants_further = 1), false) AS further
                 FROM visits v JOIN schools s ON s.id = v.school_id
                 LEFT JOIN notification_targets t
                     ON t.school_id = s.id AND t.visit_id IS NULL AND t.removed_at IS NULL
                 WHERE v.id = ANY($1)
                 GROUP BY v.id, s.id",
            &[&visits],
        )
        .await?;
        rows.iter()
            .map(|row| {
                let facts = Self {
                    school: school_from(row)?,
                    wanted: [row.try_get("authoriser")?, row.try_get("further")?],
                };
                Ok((text(row, "visit_id")?, facts))
            })
            .collect()
    }

    /// The facts of `visit`, read with [`Self::read`]; an unknown visit is refused.
    fn of<'f>(facts: &'f HashMap<String, Self>, visit: &VisitId) -> Result<&'f Self, StoreError> {
        facts
            .get(visit.as_str())
            .ok_or_else(|| StoreError::Invalid(format!("unknown visit {visit}")))
    }

    /// The words of a "nobody_to_tell" log line, as the SQLite store writes it, when an alarm reaching
    /// `level` goes beyond the board and no live school-wide target wants that level.
    fn nobody_to_tell(&self, level: AlarmLevel) -> Option<String> {
        let wanted = match level {
            AlarmLevel::Board => return None,
            AlarmLevel::Authoriser => self.wanted[0],
            AlarmLevel::Further => self.wanted[1],
        };
        (!wanted).then(|| nobody_to_tell_detail(level, &self.school.1))
    }
}

/// Raises an alarm and writes its log lines, in one statement: `$1`..`$7` the alarm, `$8`/`$9` its log
/// lines' steps and words, in order. Nothing is written when the same alarm (visit, kind, about, due) is
/// there already.
const RAISE_ALARM: &str = "WITH raised AS (
         INSERT INTO alarms (visit_id, kind, about, due_at, raised_at, level, escalated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (visit_id, kind, about, due_at) DO NOTHING RETURNING *),
     logged AS (
         INSERT INTO alarm_log (alarm_id, at, what, level, detail)
             SELECT raised.id, $5, line.what, $6, line.detail
             FROM raised, unnest($8::text[], $9::text[]) WITH ORDINALITY AS line(what, detail, n)
             ORDER BY line.n)
     SELECT * FROM raised";

/// Raises an alarm inside the caller's transaction, which holds the visit's lock (see
/// [`Alarms::raise_alarm`]), by [`RAISE_ALARM`] (`raise`, prepared) with the log lines the SQLite store
/// writes: "raised", and "nobody to tell" when it reaches a level beyond the board that no live school-wide
/// target wants. `None` when the same alarm exists.
async fn raise_alarm_with(
    tx: &impl GenericClient,
    raise: &Statement,
    new: NewAlarm<'_>,
    now: DateTime<Utc>,
    facts: &AlarmFacts,
) -> Result<Option<Alarm>, StoreError> {
    let (school, policy) = &facts.school;
    let mut steps = vec![step::RAISED.to_owned()];
    let mut details = vec![raised_detail(&new, school, policy)];
    if let Some(detail) = facts.nobody_to_tell(new.level) {
        steps.push(step::NOBODY_TO_TELL.to_owned());
        details.push(detail);
    }
    let now_text = now.to_rfc3339();
    tx.query_opt(
        raise,
        &[
            &new.visit.as_str(),
            &new.kind.as_str(),
            &new.about,
            &new.due_at.to_rfc3339(),
            &now_text,
            &new.level.name(),
            &(new.level != AlarmLevel::Board).then_some(&now_text),
            &steps,
            &details,
        ],
    )
    .await?
    .as_ref()
    .map(alarm_from)
    .transpose()
}

/// What a batch's checks read of each visit it names, in one statement: the school's policy, everyone on
/// the visit in order, and how many events (and alerts) the phone holds there.
struct BatchFacts {
    policy: Policy,
    visits: HashMap<String, (Vec<StaffId>, (i64, i64))>,
}

impl BatchFacts {
    async fn read(
        tx: &impl GenericClient,
        device: &Device,
        events: &[EventEnvelope],
    ) -> Result<Self, StoreError> {
        let visits: Vec<&str> = events
            .iter()
            .map(|e| e.visit.as_str())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let rows = query(
            tx,
            "SELECT v.id, s.policy,
                    ARRAY(SELECT staff_id FROM visit_staff vs WHERE vs.visit_id = v.id ORDER BY position)
                        AS staff,
                    h.events, h.alerts
                 FROM unnest($1::text[]) AS v(id)
                 LEFT JOIN schools s ON s.id = $2
                 CROSS JOIN LATERAL (
                     SELECT COUNT(*) AS events,
                            COUNT(*) FILTER (WHERE e.body::jsonb #>> '{event,type}' = 'duress_raised')
                                AS alerts
                         FROM events e WHERE e.device_id = $3 AND e.visit_id = v.id) h",
            &[&visits, &device.school.as_str(), &device.id.as_str()],
        )
        .await?;
        let mut policy = None;
        let mut facts = HashMap::new();
        for row in &rows {
            let Some(stored_policy) = row.try_get::<_, Option<String>>("policy")? else {
                return Err(StoreError::Invalid(format!(
                    "unknown school {}",
                    device.school
                )));
            };
            if policy.is_none() {
                policy = Some(serde_json::from_str(&stored_policy)?);
            }
            let staff = row
                .try_get::<_, Vec<String>>("staff")?
                .iter()
                .map(|id| parse_id(id))
                .collect::<Result<_, _>>()?;
            let held = (row.try_get("events")?, row.try_get("alerts")?);
            facts.insert(text(row, "id")?, (staff, held));
        }
        Ok(Self {
            policy: policy.ok_or_else(|| StoreError::Invalid("an empty batch".into()))?,
            visits: facts,
        })
    }

    fn staff(&self, visit: &VisitId) -> &[StaffId] {
        self.visits
            .get(visit.as_str())
            .map_or(&[], |(staff, _)| staff)
    }

    fn held(&self, visit: &VisitId) -> (i64, i64) {
        self.visits
            .get(visit.as_str())
            .map_or((0, 0), |(_, held)| *held)
    }
}

/// The stored events a batch's checks and replay need, read in one statement: every event of the visits
/// it names (for the replay), and any stored under its events' ids or its phone's sequence numbers (for
/// the checks); then what the batch itself adds, as it is checked.
struct StoredRows {
    rows: Vec<Row>,
    device: String,
    /// Events of this batch already taken, by id, and the phone's numbers they use.
    added: HashMap<String, EventEnvelope>,
    added_seqs: BTreeSet<i64>,
}

impl StoredRows {
    async fn read(
        tx: &impl GenericClient,
        device: &Device,
        events: &[EventEnvelope],
    ) -> Result<Self, StoreError> {
        // Each visit once: PostgreSQL estimates `= ANY` by the array's length, and a batch's hundred events
        // on one visit would look like a hundred visits' events, planned as a scan of the whole table.
        let visits: Vec<&str> = events
            .iter()
            .map(|e| e.visit.as_str())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let ids: Vec<String> = events.iter().map(|e| e.id.to_string()).collect();
        let seqs: Vec<i64> = events.iter().map(seq_of).collect::<Result<_, _>>()?;
        let rows = query(
            tx,
            "SELECT id, visit_id, device_id, seq, body, received_at, trusted_at FROM events
                 WHERE visit_id = ANY($1) OR id = ANY($2) OR (device_id = $3 AND seq = ANY($4))
                 ORDER BY position",
            &[&visits, &ids, &device.id.as_str(), &seqs],
        )
        .await?;
        Ok(Self {
            rows,
            device: device.id.to_string(),
            added: HashMap::new(),
            added_seqs: BTreeSet::new(),
        })
    }

    /// What is stored (or was taken earlier in this batch) under `envelope`'s id.
    fn stored(&self, envelope: &EventEnvelope) -> Result<Option<EventEnvelope>, StoreError> {
        let id = envelope.id.to_string();
        if let Some(added) = self.added.get(&id) {
            return Ok(Some(added.clone()));
        }
        for row in &self.rows {
            if row.try_get::<_, &str>("id")? == id {
                return Ok(Some(serde_json::from_str(row.try_get("body")?)?));
            }
        }
        Ok(None)
    }

    /// Whether the phone's sequence number of `envelope` is used by an event stored or taken already.
    fn seq_taken(&self, envelope: &EventEnvelope) -> bool {
        let Ok(seq) = seq_of(envelope) else {
            return false;
        };
        self.added_seqs.contains(&seq)
            || self.rows.iter().any(|row| {
                row.try_get::<_, &str>("device_id").ok() == Some(self.device.as_str())
                    && row.try_get::<_, i64>("seq").ok() == Some(seq)
            })
    }

    fn note_new(&mut self, envelope: &EventEnvelope) {
        if let Ok(seq) = seq_of(envelope) {
            self.added_seqs.insert(seq);
        }
        self.added.insert(envelope.id.to_string(), envelope.clone());
    }

    /// The events stored for `visit` before this batch, in the order they were stored.
    fn history(&self, visit: &VisitId) -> Result<Vec<StoredEvent>, StoreError> {
        let mut events = Vec::new();
        for row in &self.rows {
            if row.try_get::<_, &str>("visit_id")? != visit.as_str() {
                continue;
            }
            events.push(stored_event(row)?);
        }
        Ok(events)
    }
}

fn seq_of(envelope: &EventEnvelope) -> Result<i64, StoreError> {
    i64::try_from(envelope.seq.get())
        .map_err(|_| StoreError::Invalid("a sequence number past i64".into()))
}

fn refused(envelope: &EventEnvelope, reason: String) -> Rejection {
    Rejection {
        id: envelope.id,
        reason,
        conflict: false,
        seq_taken: false,
    }
}

/// Stores a batch's new events (`$1`..`$9`, arrays but for the time received, `$7`): one statement for them
/// all.
const INSERT_EVENTS: &str =
    "INSERT INTO events (id, device_id, seq, visit_id, staff_id, recorded_at,
                                   received_at, body, trusted_at)
     SELECT id, device_id, seq, visit_id, staff_id, recorded_at, $7, body, trusted_at
     FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[],
                 $8::text[], $9::text[])
         AS n(id, device_id, seq, visit_id, staff_id, recorded_at, body, trusted_at)";

/// Stores a batch's new events, each with the time it is trusted from, as received at `now`, by
/// [`INSERT_EVENTS`] (`insert`, prepared).
async fn insert_events(
    tx: &impl GenericClient,
    insert: &Statement,
    new: &[(&EventEnvelope, DateTime<Utc>)],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let column = |f: &dyn Fn(&EventEnvelope, DateTime<Utc>) -> String| -> Vec<String> {
        new.iter().map(|(e, t)| f(e, *t)).collect()
    };
    let ids = column(&|e, _| e.id.to_string());
    let devices = column(&|e, _| e.device.to_string());
    let seqs: Vec<i64> = new
        .iter()
        .map(|(e, _)| seq_of(e))
        .collect::<Result<_, _>>()?;
    let visits = column(&|e, _| e.visit.to_string());
    let staff = column(&|e, _| e.event.actor().to_string());
    let recorded = column(&|e, _| e.recorded_at.to_rfc3339());
    let bodies = new
        .iter()
        .map(|(e, _)| serde_json::to_string(e))
        .collect::<Result<Vec<_>, _>>()?;
    let trusted = column(&|_, t| t.to_rfc3339());
    tx.execute(
        insert,
        &[
            &ids,
            &devices,
            &seqs,
            &visits,
            &staff,
            &recorded,
            &now.to_rfc3339(),
            &bodies,
            &trusted,
        ],
    )
    .await?;
    Ok(())
}

/// Writes the notices a batch's events carry (`$1`..`$4` arrays: visit, kind, event, staff), for the role
/// `$5` (the policy's `safeguarding_concerns_to`) at `$6`: one statement for them all.
const INSERT_NOTICES: &str =
    "INSERT INTO notices (visit_id, kind, event_id, staff_id, role, raised_at)
     SELECT visit_id, kind, event_id, staff_id, $5, $6
     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
         WITH ORDINALITY AS n(visit_id, kind, event_id, staff_id, position)
     ORDER BY position
     ON CONFLICT (event_id, kind) DO NOTHING";

/// Writes the notices `new` events carry by [`INSERT_NOTICES`] (`insert`, prepared); nothing is sent when
/// they carry none.
async fn insert_notices(
    tx: &impl GenericClient,
    insert: &Statement,
    new: &[(&EventEnvelope, DateTime<Utc>)],
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut columns: [Vec<String>; 4] = Default::default();
    for (envelope, _) in new {
        for kind in NoticeKind::carried_by(&envelope.event) {
            columns[0].push(envelope.visit.to_string());
            columns[1].push(kind.as_str().to_owned());
            columns[2].push(envelope.id.to_string());
            columns[3].push(envelope.event.actor().to_string());
        }
    }
    if columns[0].is_empty() {
        return Ok(());
    }
    let [visits, kinds, events, staff] = &columns;
    tx.execute(
        insert,
        &[
            visits,
            kinds,
            events,
            staff,
            &role_name(policy.safeguarding_concerns_to),
            &now.to_rfc3339(),
        ],
    )
    .await?;
    Ok(())
}

/// Stores visits' new states (`$1`..`$3` arrays: id, phase, state): one statement for them all.
const STORE_STATES: &str = "UPDATE visits SET phase = n.phase, state = n.state
     FROM unnest($1::text[], $2::text[], $3::text[]) AS n(id, phase, state)
     WHERE visits.id = n.id";

/// Stores the states the visits in `replayed` came to, by [`STORE_STATES`] (`update`, prepared).
async fn store_states(
    tx: &impl GenericClient,
    update: &Statement,
    replayed: &[(&VisitId, VisitState)],
) -> Result<(), StoreError> {
    let ids: Vec<&str> = replayed.iter().map(|(visit, _)| visit.as_str()).collect();
    let phases: Vec<&str> = replayed
        .iter()
        .map(|(_, state)| state.phase().name())
        .collect();
    let states = replayed
        .iter()
        .map(|(_, state)| serde_json::to_string(state))
        .collect::<Result<Vec<_>, _>>()?;
    tx.execute(update, &[&ids, &phases, &states]).await?;
    Ok(())
}

/// Stores one event's row, as received at `now` and trusted from `trusted_at`; `false` when its id is
/// stored already.
async fn insert_event(
    tx: &impl GenericClient,
    envelope: &EventEnvelope,
    trusted_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let seq = i64::try_from(envelope.seq.get())
        .map_err(|_| StoreError::Invalid("a sequence number past i64".into()))?;
    let stored = execute(tx, "INSERT INTO events (id, device_id, seq, visit_id, staff_id, recorded_at, received_at, body, trusted_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING",
            &[
                &envelope.id.to_string(),
                &envelope.device.as_str(),
                &seq,
                &envelope.visit.as_str(),
                &envelope.event.actor().as_str(),
                &envelope.recorded_at.to_rfc3339(),
                &now.to_rfc3339(),
                &serde_json::to_string(envelope)?,
                &trusted_at.to_rfc3339(),
            ],
        )
        .await?;
    Ok(stored > 0)
}

/// Stores a visit inside the caller's transaction, refused when someone assigned may not visit homes
/// ([`dbs_refusal`]); `requested` (who asked, when) is kept as its first version's author.
async fn add_visit_in(
    tx: &impl GenericClient,
    visit: &Visit,
    requested: Option<(&StaffId, DateTime<Utc>)>,
) -> Result<(), StoreError> {
    check_dbs(tx, &school_policy(tx, &visit.school).await?, visit).await?;
    let state = VisitState::new(visit.staff_ids());
    execute(
        tx,
        "INSERT INTO visits (id, school_id, pupil_id, agreed_time, body, phase, state)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &visit.id.as_str(),
            &visit.school.as_str(),
            &visit.pupil.id.as_str(),
            &visit.agreed_time.to_rfc3339(),
            &serde_json::to_string(visit)?,
            &state.phase().name(),
            &serde_json::to_string(&state)?,
        ],
    )
    .await?;
    for (position, assigned) in visit.staff.iter().enumerate() {
        execute(
            tx,
            "INSERT INTO visit_staff (visit_id, staff_id, position) VALUES ($1, $2, $3)",
            &[
                &visit.id.as_str(),
                &assigned.id.as_str(),
                &i32::try_from(position).unwrap_or(i32::MAX),
            ],
        )
        .await?;
    }
    decisions::add_version(tx, &visit.id, requested, (Change::Requested, ""), None).await?;
    Ok(())
}

/// Refuses `visit` when someone assigned may not visit homes under `policy` ([`dbs_refusal`]).
async fn check_dbs(
    tx: &impl GenericClient,
    policy: &Policy,
    visit: &Visit,
) -> Result<(), StoreError> {
    for assigned in &visit.staff {
        let row = query_opt(
            tx,
            "SELECT body FROM staff WHERE id = $1",
            &[&assigned.id.as_str()],
        )
        .await?
        .ok_or_else(|| StoreError::Invalid(format!("unknown staff {}", assigned.id)))?;
        let member: StaffMember = serde_json::from_str(&text(&row, "body")?)?;
        if let Some(refusal) = dbs_refusal(policy, &member) {
            return Err(StoreError::Invalid(refusal));
        }
    }
    Ok(())
}

/// The advisory lock ([`LOCK_VISIT`]) of every visit in `$1`, taken in one statement in the order of
/// their ids (as every ingest takes them, so two never wait on each other).
const LOCK_VISITS: &str = "SELECT pg_advisory_xact_lock(7301, hashtext(v))
     FROM unnest($1::text[]) AS v ORDER BY v COLLATE \"C\"";

/// The ids of the visits `events` are about, each once.
fn visit_ids(events: &[EventEnvelope]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e.visit.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Takes the lock of every visit `events` are about ([`LOCK_VISITS`]).
async fn lock_visits(tx: &impl GenericClient, events: &[EventEnvelope]) -> Result<(), StoreError> {
    execute(tx, LOCK_VISITS, &[&visit_ids(events)]).await?;
    Ok(())
}

/// A phone's batch checked and stored in `tx`, all or nothing, in three round trips: `START TRANSACTION`
/// with the visits' locks and every read the checks, the replay and any alarm need; the events, their
/// notices, the visits' new states and the duress alarms their alerts call for, with `COMMIT`
/// ([`Pipelined`]); and, only the first time a connection meets a statement, its preparation.
async fn ingest_in(tx: &Pipelined, batch: Batch<'_>) -> Result<Ingested, IngestError> {
    let Batch {
        device,
        events,
        device_time,
        now,
    } = batch;
    let client = tx.client();
    // The server runs a connection's statements in the order sent, so every read sees what was committed
    // before the locks were granted. The lock's statement is prepared first (from the cache: no round
    // trip), so its first poll sends it ahead of the reads.
    let visits = visit_ids(events);
    let alerted: Vec<&str> = events
        .iter()
        .filter(|e| e.event.is_urgent())
        .map(|e| e.visit.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let lock = tx.prepare(LOCK_VISITS).await?;
    let locked = async {
        client
            .execute(&lock, &[&visits])
            .await
            .map_err(StoreError::from)
    };
    let alarm_facts = async {
        if alerted.is_empty() {
            return Ok(HashMap::new());
        }
        AlarmFacts::read(client, &alerted).await
    };
    let (_, _, facts, mut read, alarm_facts) = tokio::try_join!(
        biased;
        tx.begin(Begin::ReadWrite),
        locked,
        BatchFacts::read(client, device, events),
        StoredRows::read(client, device, events),
        alarm_facts
    )?;
    let mut tally = Tally::default();
    let mut new: Vec<(&EventEnvelope, DateTime<Utc>)> = Vec::new();
    for envelope in events {
        let visit = &envelope.visit;
        let counts = match tally.held(visit) {
            Some(counts) => counts,
            None => tally.read_held(visit, facts.held(visit)),
        };
        let stored = read.stored(envelope)?;
        let outcome = if let Some(reason) =
            checks::over_quota(envelope, counts).filter(|_| stored.is_none())
        {
            Err(refused(envelope, reason))
        } else if let Some(reason) = checks::refusal(device, envelope, facts.staff(visit)) {
            Err(refused(envelope, reason))
        } else {
            let seq_taken = stored.is_none() && read.seq_taken(envelope);
            match checks::against_stored(envelope, stored.as_ref(), seq_taken) {
                Err(rejection) => Err(rejection),
                Ok(Some(outcome)) => Ok(outcome),
                Ok(None) => {
                    read.note_new(envelope);
                    new.push((
                        envelope,
                        trusted_time(envelope.recorded_at, device_time, now),
                    ));
                    Ok(EventOutcome::Stored)
                }
            }
        };
        tally.answer(envelope, outcome);
    }
    if !tally.rejections.is_empty() {
        // Nothing is written before every event has passed; the caller rolls back.
        return Err(IngestError::Rejected(tally.rejections));
    }
    // Each touched visit replayed in memory from what was read and what this batch adds.
    let mut replayed = Vec::new();
    for visit in &tally.touched {
        let mut history = read.history(visit)?;
        history.extend(new.iter().filter(|(e, _)| &e.visit == *visit).map(
            |(envelope, trusted_at)| StoredEvent {
                envelope: (*envelope).clone(),
                received_at: now,
                trusted_at: *trusted_at,
            },
        ));
        replayed.push((*visit, replay(facts.staff(visit), &history)));
    }
    // As the SQLite store does: one alarm per alert, raised with the ingest, straight to the top, keyed by
    // who raised it and when, so the engine never raises it twice.
    let mut duress = Vec::new();
    for (visit, state) in &replayed {
        if tally.alerted.contains(visit) {
            let facts = AlarmFacts::of(&alarm_facts, visit)?;
            duress.extend(
                state
                    .active_duress()
                    .map(|alert| (NewAlarm::duress(visit, alert), facts)),
            );
        }
    }
    // Every write prepared first, so that each goes out ahead of the `COMMIT` joined after them.
    let insert_events_sql = tx.prepare(INSERT_EVENTS).await?;
    let insert_notices_sql = tx.prepare(INSERT_NOTICES).await?;
    let store_states_sql = tx.prepare(STORE_STATES).await?;
    let raise = tx.prepare(RAISE_ALARM).await?;
    let events_stored = async {
        if new.is_empty() {
            return Ok(());
        }
        insert_events(client, &insert_events_sql, &new, now).await
    };
    let states = async {
        if replayed.is_empty() {
            return Ok(());
        }
        store_states(client, &store_states_sql, &replayed).await
    };
    let alarms = futures_util::future::try_join_all(
        duress
            .iter()
            .map(|(alarm, facts)| raise_alarm_with(client, &raise, *alarm, now, facts)),
    );
    // With the writes when at most one alarm is raised (each statement above is sent on its first
    // poll, in the order joined); after them, on its own round trip, when several are (the caller's
    // `end`), so that no order among the alarms' statements need be relied on.
    let commit = async {
        if duress.len() > 1 {
            return Ok(());
        }
        tx.commit().await
    };
    let (_, _, _, alarms, ()) = tokio::try_join!(
        biased;
        events_stored,
        insert_notices(client, &insert_notices_sql, &new, &facts.policy, now),
        states,
        alarms,
        commit
    )?;
    Ok(Ingested {
        results: tally.results,
        alarms: alarms.into_iter().flatten().collect(),
    })
}

impl Visits for PgStore {
    async fn add_school(&self, school: &School, policy: &Policy) -> Result<(), StoreError> {
        check_new_school(school, policy)?;
        let policy = serde_json::to_string(policy)?;
        self.execute(
            "INSERT INTO schools (id, name, office_phone, policy, time_zone) VALUES ($1, $2, $3, $4, $5)",
            &[&school.id.as_str(), &school.name, &school.office_phone.as_str(), &policy, &school.time_zone.name()],
        )
        .await?;
        Ok(())
    }

    async fn add_staff(&self, school: &SchoolId, member: &StaffMember) -> Result<(), StoreError> {
        let body = serde_json::to_string(member)?;
        self.execute(
            "INSERT INTO staff (id, school_id, name, body) VALUES ($1, $2, $3, $4)",
            &[&member.id.as_str(), &school.as_str(), &member.name, &body],
        )
        .await?;
        Ok(())
    }

    async fn add_pupil(&self, school: &SchoolId, pupil: &Pupil) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO pupils (id, school_id, name) VALUES ($1, $2, $3)",
            &[&pupil.id.as_str(), &school.as_str(), &pupil.name],
        )
        .await?;
        Ok(())
    }

    async fn add_visit(&self, visit: &Visit) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        add_visit_in(&tx, visit, None).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn store_checked_events(
        &self,
        events: &[EventEnvelope],
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        lock_visits(&tx, events).await?;
        let mut new = 0;
        let mut touched = BTreeSet::new();
        for envelope in events {
            if insert_event(&tx, envelope, now, now).await? {
                new += 1;
                touched.insert(&envelope.visit);
            }
        }
        for visit in touched {
            refresh_visit(&tx, visit).await?;
        }
        tx.commit().await?;
        Ok(new)
    }

    async fn ingest(&self, batch: Batch<'_>) -> Result<Ingested, IngestError> {
        if batch.events.is_empty() {
            return Ok(Ingested::default());
        }
        let tx = Pipelined::new(self.client().await?);
        let ingested = ingest_in(&tx, batch).await;
        tx.end(ingested).await
    }

    async fn record_office_event(
        &self,
        visit: &VisitId,
        command: &lifecycle::Command,
        now: DateTime<Utc>,
    ) -> Result<EventEnvelope, StoreError> {
        self.record_office_event_pg(visit, command, now).await
    }

    async fn acknowledged_through(
        &self,
        device: &DeviceId,
    ) -> Result<Option<DeviceSeq>, StoreError> {
        self.acknowledged_through_pg(device).await
    }

    async fn holdings_since(
        &self,
        device: &Device,
        now: DateTime<Utc>,
        cursor: Option<&str>,
    ) -> Result<Holdings, StoreError> {
        self.holdings_since_pg(device, now, cursor).await
    }

    async fn visits_to_watch(&self) -> Result<Vec<VisitId>, StoreError> {
        query(
                &self.client().await?,
                // In the order of their ids, so an engine's turns through them (escalation.rs) go round.
                "SELECT id FROM visits WHERE phase IN ('authorised', 'departed', 'outside', 'in_visit', 'checked_in', 'duress')
                 UNION SELECT visit_id FROM alarms WHERE acknowledged_at IS NULL AND closed_at IS NULL
                 ORDER BY id",
                &[],
            )
            .await?
            .iter()
            .map(|row| parse_id(&text(row, "id")?))
            .collect()
    }

    async fn visit_with_policy(
        &self,
        visit: &VisitId,
    ) -> Result<Option<(Visit, VisitState, Policy)>, StoreError> {
        let client = self.client().await?;
        let Some(row) = query_opt(
            &client,
            "SELECT v.body, v.state, s.policy FROM visits v JOIN schools s ON s.id = v.school_id
                 WHERE v.id = $1",
            &[&visit.as_str()],
        )
        .await?
        else {
            return Ok(None);
        };
        Ok(Some((
            serde_json::from_str(&text(&row, "body")?)?,
            serde_json::from_str(&text(&row, "state")?)?,
            serde_json::from_str(&text(&row, "policy")?)?,
        )))
    }

    async fn visit(&self, visit: &VisitId) -> Result<Option<(Visit, VisitState)>, StoreError> {
        self.visit_pg(visit).await
    }

    async fn visit_ids(&self) -> Result<Vec<VisitId>, StoreError> {
        self.visit_ids_pg().await
    }

    async fn events_for_visit(&self, visit: &VisitId) -> Result<Vec<StoredEvent>, StoreError> {
        self.events_for_visit_pg(visit).await
    }

    async fn visits_for_board(
        &self,
        school: &SchoolId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(Visit, VisitState)>, StoreError> {
        self.visits_for_board_pg(school, from, to).await
    }

    async fn school_of_visit(&self, visit: &VisitId) -> Result<Option<SchoolId>, StoreError> {
        self.school_of_visit_pg(visit).await
    }

    async fn visits_left_without_write_up(
        &self,
        school: &SchoolId,
    ) -> Result<Vec<(VisitId, DateTime<Utc>)>, StoreError> {
        self.visits_left_without_write_up_pg(school).await
    }

    async fn change_visit(
        &self,
        visit: &VisitId,
        by: &StaffId,
        change: VisitChange,
        now: DateTime<Utc>,
    ) -> Result<VisitVersion, StoreError> {
        self.change_visit_pg(visit, by, change, now).await
    }

    async fn visit_versions(&self, visit: &VisitId) -> Result<Vec<VisitVersion>, StoreError> {
        self.visit_versions_pg(visit).await
    }

    async fn held_in_range(
        &self,
        device: &DeviceId,
        from: DeviceSeq,
        through: DeviceSeq,
    ) -> Result<Vec<HeldSeq>, StoreError> {
        self.held_in_range_pg(device, from, through).await
    }

    async fn is_empty(&self) -> Result<bool, StoreError> {
        self.is_empty_pg().await
    }
}

impl Alarms for PgStore {
    async fn alarms_for_visit(&self, visit: &VisitId) -> Result<Vec<Alarm>, StoreError> {
        query(
            &self.client().await?,
            "SELECT * FROM alarms WHERE visit_id = $1 ORDER BY id",
            &[&visit.as_str()],
        )
        .await?
        .iter()
        .map(alarm_from)
        .collect()
    }

    async fn raise_alarm(
        &self,
        new: NewAlarm<'_>,
        now: DateTime<Utc>,
    ) -> Result<Option<Alarm>, StoreError> {
        let tx = Pipelined::new(self.client().await?);
        let raised = async {
            let lock = tx.prepare(LOCK_VISIT).await?;
            let raise = tx.prepare(RAISE_ALARM).await?;
            // Two round trips: the lock and the facts (after `START TRANSACTION`), then the alarm with
            // its log lines (before `COMMIT`).
            let locked = async {
                tx.client()
                    .execute(&lock, &[&new.visit.as_str()])
                    .await
                    .map_err(StoreError::from)
            };
            let visit = [new.visit.as_str()];
            let (_, _, facts) = tokio::try_join!(
                biased;
                tx.begin(Begin::ReadWrite),
                locked,
                AlarmFacts::read(tx.client(), &visit)
            )?;
            let facts = AlarmFacts::of(&facts, new.visit)?;
            let (alarm, ()) = tokio::try_join!(
                biased;
                raise_alarm_with(tx.client(), &raise, new, now, facts),
                tx.commit()
            )?;
            Ok(alarm)
        }
        .await;
        tx.end(raised).await
    }

    async fn escalate_alarm(
        &self,
        seen: &Alarm,
        now: DateTime<Utc>,
    ) -> Result<Option<Alarm>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        lock_visit(&tx, &seen.visit).await?;
        if !still_as_seen(&alarm_in(&tx, seen.id).await?, seen) {
            return Ok(None);
        }
        let facts = AlarmFacts::read(&tx, &[seen.visit.as_str()]).await?;
        let facts = AlarmFacts::of(&facts, &seen.visit)?;
        let step = escalation_step(seen.level, &facts.school.1);
        execute(
            &tx,
            "UPDATE alarms SET level = $2, escalated_at = $3 WHERE id = $1",
            &[&seen.id, &step.level.name(), &now.to_rfc3339()],
        )
        .await?;
        log(
            &tx,
            (seen.id, now),
            (step.what, Some(step.level), &step.detail),
        )
        .await?;
        if step.level != seen.level {
            if let Some(detail) = facts.nobody_to_tell(step.level) {
                log(
                    &tx,
                    (seen.id, now),
                    (step::NOBODY_TO_TELL, Some(step.level), &detail),
                )
                .await?;
            }
        }
        let alarm = alarm_in(&tx, seen.id).await?;
        tx.commit().await?;
        Ok(Some(alarm))
    }

    async fn note_contact_resumed(&self, id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let changed = execute(&tx, "UPDATE alarms SET contact_resumed_at = $2 WHERE id = $1 AND contact_resumed_at IS NULL",
                &[&id, &now.to_rfc3339()],
            )
            .await?;
        if changed > 0 {
            log(&tx, (id, now), (step::CONTACT_RESUMED, None, HEARD_FROM)).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn acknowledge_alarm(
        &self,
        id: i64,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Alarm, StoreError> {
        self.acknowledge_alarm_audited(id, by, None, now).await
    }

    async fn acknowledge_alarm_audited(
        &self,
        id: i64,
        by: &str,
        audit: Option<&NewEntry>,
        now: DateTime<Utc>,
    ) -> Result<Alarm, StoreError> {
        let by = checked_name(by, "acknowledging")?;
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let visit: VisitId =
            match query_opt(&tx, "SELECT visit_id FROM alarms WHERE id = $1", &[&id]).await? {
                Some(row) => parse_id(&text(&row, "visit_id")?)?,
                None => return Err(StoreError::Invalid(format!("there is no alarm {id}"))),
            };
        // Under the visit's lock, as the engine escalates: an escalation decided on the alarm before this
        // acknowledgement finds it changed, and one after finds it acknowledged.
        lock_visit(&tx, &visit).await?;
        let alarm = alarm_in(&tx, id).await?;
        let (school, _) = school_of_visit(&tx, &visit).await?;
        let already = (&alarm.acknowledged_by, alarm.acknowledged_at);
        already_done(&alarm, "acknowledged", already, &school)?;
        execute(
            &tx,
            "UPDATE alarms SET acknowledged_by = $2, acknowledged_at = $3 WHERE id = $1",
            &[&id, &by, &now.to_rfc3339()],
        )
        .await?;
        let detail = acknowledged_detail(by);
        log(&tx, (id, now), (step::ACKNOWLEDGED, None, &detail)).await?;
        if let Some(entry) = audit {
            audit::append_in(&tx, entry, now).await?;
        }
        let alarm = alarm_in(&tx, id).await?;
        tx.commit().await?;
        Ok(alarm)
    }

    async fn close_alarm(
        &self,
        id: i64,
        by: &StaffId,
        by_name: &str,
        outcome: lifecycle::AlarmOutcome,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<Closing, StoreError> {
        self.close_alarm_pg(id, (by, by_name), (outcome, note), None, now)
            .await
    }

    async fn close_alarm_audited(
        &self,
        id: i64,
        by: &StaffId,
        by_name: &str,
        outcome: lifecycle::AlarmOutcome,
        note: &str,
        audit: Option<&NewEntry>,
        now: DateTime<Utc>,
    ) -> Result<Closing, StoreError> {
        self.close_alarm_pg(id, (by, by_name), (outcome, note), audit, now)
            .await
    }

    async fn alarm(&self, id: i64) -> Result<Option<Alarm>, StoreError> {
        query_opt(
            &self.client().await?,
            "SELECT * FROM alarms WHERE id = $1",
            &[&id],
        )
        .await?
        .as_ref()
        .map(alarm_from)
        .transpose()
    }

    async fn open_alarms(&self) -> Result<Vec<Alarm>, StoreError> {
        query(
            &self.client().await?,
            "SELECT * FROM alarms WHERE closed_at IS NULL ORDER BY id",
            &[],
        )
        .await?
        .iter()
        .map(alarm_from)
        .collect()
    }

    async fn alarm_log(&self, visit: &VisitId) -> Result<Vec<AlarmLogEntry>, StoreError> {
        query(
            &self.client().await?,
            "SELECT l.id, l.alarm_id, l.at, l.what, l.level, l.detail FROM alarm_log l
                 JOIN alarms a ON a.id = l.alarm_id WHERE a.visit_id = $1 ORDER BY l.id",
            &[&visit.as_str()],
        )
        .await?
        .iter()
        .map(|row| {
            let level: Option<String> = row.try_get("level")?;
            Ok(AlarmLogEntry {
                id: row.try_get("id")?,
                alarm: row.try_get("alarm_id")?,
                at: stored_time(&text(row, "at")?)?,
                what: text(row, "what")?,
                level: level.as_deref().and_then(AlarmLevel::parse),
                detail: text(row, "detail")?,
            })
        })
        .collect()
    }
}
