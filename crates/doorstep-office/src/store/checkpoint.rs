//! Checkpoints off the commit path ([`Checkpointer`]): a thread of its own copies the write-ahead log back
//! into the database file, so a sync's commit (a duress among them) never waits for that copy. The same
//! thread writes phones' "last seen" times that no sync's commit has carried for a while ([`Seen`]).
//!
//! SQLite's default is to checkpoint inside the commit that takes the log past 1,000 pages: that commit,
//! and every sync grouped into it, then waits for the copy and its fsyncs (about a millisecond here, more
//! on a busy disk). Here the writer counts its commits ([`Checkpointer::commit_counter`]) and, once
//! [`COMMITS_PER_CHECKPOINT`] have gone into the log, a separate connection checkpoints in `PASSIVE` mode,
//! which never blocks the writer or the readers. The writer keeps a far larger automatic threshold
//! ([`BACKSTOP_PAGES`]) only as a bound on the log should this thread ever fall behind.
//!
//! Why by commits and not every few hundred milliseconds: once a checkpoint has copied the whole log, the
//! next commit starts the log again from its beginning and, with `synchronous=FULL`, fsyncs the log's new
//! header as well as its own pages. Checkpointing on a timer would hand that second fsync to the first
//! write after every quiet spell, which in a school office is most writes, a duress among them. Measured
//! on the duress path (docs/performance.md): a checkpoint every 250 ms made the p99 worse than a
//! checkpoint every 5 s.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use super::seen::Seen;
use super::StoreError;

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
    commits: Arc<AtomicU64>,
    done: Arc<AtomicU64>,
}

impl Checkpointer {
    /// Starts checkpointing the database at `path`, which the writer has already opened in WAL mode.
    /// The writer counts its commits in [`Self::commit_counter`].
    pub fn start(path: &Path, seen: Arc<Seen>) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        let (stop, stopped) = sync_channel::<()>(0);
        let commits = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicU64::new(0));
        let (counted, copied) = (commits.clone(), done.clone());
        let thread = std::thread::Builder::new()
            .name("store-checkpoint".into())
            .spawn(move || {
                // Commits already copied back (as counted when the last checkpoint began).
                let mut copied_up_to = 0;
                loop {
                    let last = !matches!(
                        stopped.recv_timeout(LOOK_EVERY),
                        Err(RecvTimeoutError::Timeout)
                    );
                    if seen.overdue() || last {
                        match write_seen(&conn, &seen) {
                            Ok(()) => {
                                counted.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(error) => tracing::warn!(
                                %error,
                                "phones' last-seen times not written; retrying later"
                            ),
                        }
                    }
                    let commits = counted.load(Ordering::Relaxed);
                    if last || commits - copied_up_to >= COMMITS_PER_CHECKPOINT {
                        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                            Ok(()) => {
                                copied_up_to = commits;
                                copied.fetch_add(1, Ordering::Relaxed);
                            }
                            // Nothing is lost: the log keeps every commit until a later checkpoint
                            // copies it.
                            Err(error) => {
                                tracing::warn!(%error, "checkpoint failed; retrying later")
                            }
                        }
                    }
                    if last {
                        return;
                    }
                }
            })
            .map_err(StoreError::Checkpointer)?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
            commits,
            done,
        })
    }

    /// The count the writer adds one to at each commit (its commit hook).
    pub fn commit_counter(&self) -> Arc<AtomicU64> {
        self.commits.clone()
    }

    /// How many checkpoints have run since the store opened.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }
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
