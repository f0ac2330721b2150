//! Checkpoints off the commit path ([`Checkpointer`]): a thread of its own copies the write-ahead log back
//! into the database file, so a sync's commit (a duress among them) never waits for that copy. The same
//! thread writes phones' "last seen" times that no sync's commit has carried for a while ([`Seen`]).
//!
//! SQLite's default is to checkpoint inside the commit that takes the log past 1,000 pages: that commit,
//! and every sync grouped into it, then waits for the copy and its fsyncs (about a millisecond here, more
//! on a busy disk). Here the writer counts its commits ([`Checkpointer::commit_hook`]) and a separate
//! connection checkpoints in `PASSIVE` mode, which never blocks the writer or the readers:
//!
//! - once [`COMMITS_PER_CHECKPOINT`] commits have gathered in the log since the last checkpoint that
//!   copied all of it;
//! - and when the office has gone quiet (no commit since the thread's last look) with anything written
//!   since the log last started again. Then, with the whole log copied, the thread starts the log again
//!   itself ([`restart_log`]).
//!
//! Why that last step: once the whole log is copied, the next transaction to write starts the log again
//! from its beginning and, with `synchronous=FULL`, fsyncs the log's new header as well as its own pages.
//! Left to the next sync, that second fsync would fall on the first write after every quiet spell,
//! which in a school office is most writes, a duress among them. Taken by this thread, nobody waits for
//! it. (Measured on the duress path, docs/performance.md: a plain checkpoint every 250 ms made the p99
//! worse than one every 5 s.)
//!
//! Under writes without pause a `PASSIVE` checkpoint rarely finds the log still, so the log may not start
//! again between them; the writer's own automatic checkpoint ([`BACKSTOP_PAGES`]) then bounds it, with
//! little left to copy because this thread has copied most of it already.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use super::seen::Seen;
use super::{CachedSql, StoreError};

/// Commits gathered in the log before it is copied back: a group commit writes a few pages, so this
/// is about SQLite's own default of 1,000 pages.
pub const COMMITS_PER_CHECKPOINT: u64 = 200;

/// How often the thread looks at the commit count (and at "last seen" times waiting to be written).
const LOOK_EVERY: Duration = Duration::from_millis(250);

/// The writer's own automatic checkpoint, in pages (4 KiB each: about 40 MB): reached only if the
/// checkpointer cannot keep up, or by one very large transaction.
pub const BACKSTOP_PAGES: i64 = 10_000;

/// The thread that checkpoints; it stops (after one last checkpoint) when this is dropped.
#[derive(Debug)]
pub struct Checkpointer {
    stop: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
    counts: Arc<Counts>,
}

/// What the writer's commit hook, the thread and the store share.
#[derive(Debug, Default)]
struct Counts {
    /// Commits to the log: the writer's (its commit hook) and this thread's "last seen" writes.
    commits: AtomicU64,
    /// Checkpoints that copied the whole log.
    copied: AtomicU64,
    /// Times this thread started the log again in a quiet spell.
    restarts: AtomicU64,
}

/// What the thread remembers between looks, in counts of commits.
#[derive(Debug, Default)]
struct State {
    /// The count at the last look.
    looked_at: u64,
    /// The count when the last checkpoint that copied the whole log began.
    copied_up_to: u64,
    /// The count when this thread last started the log again.
    restarted_at: u64,
}

impl Checkpointer {
    /// Starts checkpointing the database at `path`, which the writer has already opened in WAL mode.
    /// The writer counts its commits with [`Self::commit_hook`].
    pub fn start(path: &Path, seen: Arc<Seen>) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        let (stop, stopped) = sync_channel::<()>(0);
        let counts = Arc::new(Counts::default());
        let shared = counts.clone();
        let thread = std::thread::Builder::new()
            .name("store-checkpoint".into())
            .spawn(move || run(&conn, &seen, &stopped, &shared))
            .map_err(StoreError::Checkpointer)?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
            counts,
        })
    }

    /// The writer's commit hook: counts each commit, and never turns one into a rollback.
    pub fn commit_hook(&self) -> impl FnMut() -> bool + Send + 'static {
        let counts = self.counts.clone();
        move || {
            counts.commits.fetch_add(1, Ordering::Relaxed);
            false
        }
    }

    /// How many checkpoints have copied the whole log since the store opened.
    pub fn done(&self) -> u64 {
        self.counts.copied.load(Ordering::Relaxed)
    }

    /// How many times this thread has started the log again in a quiet spell.
    pub fn restarts(&self) -> u64 {
        self.counts.restarts.load(Ordering::Relaxed)
    }
}

/// The thread: every [`LOOK_EVERY`] (and once more when told to stop), writes "last seen" times that
/// have waited too long, and checkpoints when the module's comment says.
fn run(conn: &Connection, seen: &Seen, stopped: &Receiver<()>, counts: &Counts) {
    let mut state = State::default();
    loop {
        let last = !matches!(
            stopped.recv_timeout(LOOK_EVERY),
            Err(RecvTimeoutError::Timeout)
        );
        if seen.overdue() || last {
            match write_seen(conn, seen) {
                Ok(()) => {
                    counts.commits.fetch_add(1, Ordering::Relaxed);
                }
                Err(error) => {
                    tracing::warn!(%error, "phones' last-seen times not written; retrying later")
                }
            }
        }
        let commits = counts.commits.load(Ordering::Relaxed);
        let quiet = commits == state.looked_at;
        state.looked_at = commits;
        let gathered = commits - state.copied_up_to >= COMMITS_PER_CHECKPOINT;
        if last || gathered || (quiet && commits > state.restarted_at) {
            look(conn, counts, &mut state, commits, quiet && !last);
        }
        if last {
            return;
        }
    }
}

/// Checkpoints, and when the whole log was copied with nothing committed meanwhile, notes it and (in a
/// quiet spell, `restart`) starts the log again.
fn look(conn: &Connection, counts: &Counts, state: &mut State, commits: u64, restart: bool) {
    match checkpoint(conn) {
        Ok(true) if counts.commits.load(Ordering::Relaxed) == commits => {
            state.copied_up_to = commits;
            counts.copied.fetch_add(1, Ordering::Relaxed);
            if !restart {
                return;
            }
            match restart_log(conn) {
                Ok(()) => {
                    state.restarted_at = commits;
                    counts.restarts.fetch_add(1, Ordering::Relaxed);
                }
                Err(error) => tracing::warn!(
                    %error,
                    "the write-ahead log was not started again; the next write will"
                ),
            }
        }
        // Part of it: the rest at the next look.
        Ok(_) => {}
        // Nothing is lost: the log keeps every commit until a later checkpoint copies it.
        Err(error) => tracing::warn!(%error, "checkpoint failed; retrying later"),
    }
}

/// A `PASSIVE` checkpoint: whether it copied the whole log.
fn checkpoint(conn: &Connection) -> Result<bool, rusqlite::Error> {
    let (log, copied): (i64, i64) = conn
        .prepare_cached("PRAGMA wal_checkpoint(PASSIVE)")?
        .query_row([], |row| Ok((row.get(1)?, row.get(2)?)))?;
    Ok(copied == log)
}

/// Starts the log again from its beginning (and pays the fsync of its new header) with a write that
/// changes nothing: the database's `user_version` set to what it is. SQLite starts the log at the first
/// write after a checkpoint that copied all of it, unless a reader still needs the old log; then this is
/// an ordinary small write, and the next try is after the next quiet spell.
fn restart_log(conn: &Connection) -> Result<(), rusqlite::Error> {
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row_cached("PRAGMA user_version", [], |row| row.get(0))?;
    tx.pragma_update(None, "user_version", version)?;
    tx.commit()
}

/// Writes the noted "last seen" times in a transaction of this thread's own (no sync's commit has
/// carried them for [`super::seen::WRITE_AFTER`]).
fn write_seen(conn: &Connection, seen: &Seen) -> Result<(), rusqlite::Error> {
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
    seen.write_in(&tx)?;
    tx.commit()
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        // Dropping the sender wakes the thread at once; it checkpoints a last time and ends.
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
