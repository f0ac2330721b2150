//! Group commit for phone syncs ([`Pending`]): the writes of syncs that arrive together are stored in one
//! transaction with one fsync, and each sync is answered only after that commit.
//!
//! Each sync's batch goes into the queue, then its thread waits for the writer connection. Whoever gets it
//! first (the leader) takes every batch queued by then, its own among them, and stores each under its own
//! savepoint, so a refused batch is rolled back alone and the others go on, exactly as if each had had a
//! transaction to itself; then it commits once and hands every thread its own outcome. A thread that gets
//! the connection after its batch was already stored by another leader finds its outcome waiting. Nothing
//! is acknowledged before the commit: a batch whose group failed to commit is told so, stored or not.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};
use doorstep_core::event::EventEnvelope;
use rusqlite::{Connection, TransactionBehavior};

use super::seen::Seen;
use super::{ingest_in, Device, IngestError, Ingested, StoreError};

/// One sync's batch, waiting to be stored.
struct Job {
    device: Device,
    events: Vec<EventEnvelope>,
    device_time: DateTime<Utc>,
    now: DateTime<Utc>,
    outcome: SyncSender<Result<Ingested, IngestError>>,
}

/// The batches queued for the next leader, and how many groups have been committed.
#[derive(Default)]
pub struct Pending {
    jobs: Mutex<Vec<Job>>,
    groups: AtomicU64,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("queued", &self.queued())
            .field("groups", &self.groups())
            .finish()
    }
}

/// Where a queued batch's outcome will arrive.
pub struct Ticket(Receiver<Result<Ingested, IngestError>>);

impl Pending {
    /// Queues a batch; its outcome comes through the ticket.
    pub fn queue(
        &self,
        device: &Device,
        events: &[EventEnvelope],
        device_time: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Ticket {
        let (outcome, ticket) = sync_channel(1);
        self.jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Job {
                device: device.clone(),
                events: events.to_vec(),
                device_time,
                now,
                outcome,
            });
        Ticket(ticket)
    }

    /// With the writer connection held: the ticket's outcome if an earlier leader stored its batch, or
    /// else, as the leader, stores every batch queued (the ticket's own among them) in one transaction,
    /// with the "last seen" times noted meanwhile, and returns the ticket's outcome.
    pub fn store_with(
        &self,
        conn: &mut Connection,
        ticket: Ticket,
        seen: &Seen,
    ) -> Result<Ingested, IngestError> {
        if let Ok(outcome) = ticket.0.try_recv() {
            return outcome;
        }
        let jobs = std::mem::take(&mut *self.jobs.lock().unwrap_or_else(PoisonError::into_inner));
        if !jobs.is_empty() {
            self.groups.fetch_add(1, Ordering::Relaxed);
        }
        commit_group(conn, jobs, seen);
        // Every job taken was answered; ours was queued before we took the connection, so it was taken.
        ticket.0.try_recv().unwrap_or_else(|_| {
            Err(IngestError::Store(StoreError::Commit(
                "the sync's batch was not found in the group being stored".into(),
            )))
        })
    }
}

impl Pending {
    /// Batches waiting for a leader.
    pub fn queued(&self) -> usize {
        self.jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Groups stored since the store was opened (each one transaction, one fsync): fewer than the
    /// batches stored when syncs arrive together.
    pub fn groups(&self) -> u64 {
        self.groups.load(Ordering::Relaxed)
    }
}

/// Stores `jobs` in one transaction, each under its own savepoint, and answers each after the commit.
fn commit_group(conn: &mut Connection, jobs: Vec<Job>, seen: &Seen) {
    if jobs.is_empty() {
        return;
    }
    let mut tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(error) => return fail_all(jobs, &error),
    };
    let mut outcomes = Vec::with_capacity(jobs.len());
    let mut broken = None;
    for job in &jobs {
        let outcome = match tx.savepoint() {
            Ok(mut savepoint) => {
                let stored = ingest_in(
                    &savepoint,
                    &job.device,
                    &job.events,
                    job.device_time,
                    job.now,
                );
                match stored {
                    Ok(ingested) => savepoint
                        .commit()
                        .map(|()| ingested)
                        .map_err(|e| IngestError::Store(e.into())),
                    Err(refused) => {
                        // Only this batch's writes are undone; if even that fails, the whole group is
                        // (dropping the transaction rolls it back), never half a batch kept.
                        if let Err(error) = savepoint.rollback() {
                            broken = Some(error);
                        }
                        Err(refused)
                    }
                }
            }
            Err(error) => Err(IngestError::Store(error.into())),
        };
        outcomes.push(outcome);
        if broken.is_some() {
            break;
        }
    }
    if let Some(error) = broken {
        drop(tx);
        return fail_all(jobs, &error);
    }
    // Not a reason to refuse the group: a "last seen" time not written is noted again at the next sync.
    if let Err(error) = seen.write_in(&tx) {
        tracing::warn!(%error, "phones' last-seen times not written with this group");
    }
    if let Err(error) = tx.commit() {
        return fail_all(jobs, &error);
    }
    for (job, outcome) in jobs.into_iter().zip(outcomes) {
        // A thread that stopped waiting has nobody to tell; what it sent is stored all the same.
        let _ = job.outcome.send(outcome);
    }
}

/// The group could not be begun or committed: nothing of it is stored, and every batch is told so.
fn fail_all(jobs: Vec<Job>, error: &rusqlite::Error) {
    tracing::error!(%error, batches = jobs.len(), "a group of syncs could not be committed");
    for job in jobs {
        let _ = job.outcome.send(Err(IngestError::Store(StoreError::Commit(
            error.to_string(),
        ))));
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use doorstep_core::lifecycle::{DuressVia, VisitEvent};
    use doorstep_core::protocol::EventOutcome;
    use doorstep_core::test_support::{envelope, staff};

    use crate::store::{IngestError, SqliteStore};

    /// Four syncs that arrive while the writer is busy are stored by one leader in one commit: each is
    /// answered with its own outcome, the one refused batch is undone alone, and an alert among them has
    /// its alarm raised in that same commit.
    #[test]
    fn syncs_waiting_together_share_one_commit_and_a_refused_batch_is_undone_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(SqliteStore::open(dir.path()).unwrap());
        let now = doorstep_core::test_support::t0();
        let phones =
            crate::demo::seed(&store.clone().into(), "http://office.invalid", now).unwrap();
        let sam = store
            .authenticate(&phones.me.device_token, now)
            .unwrap()
            .unwrap();
        let alex = store
            .authenticate(&phones.partner.device_token, now)
            .unwrap()
            .unwrap();
        let departed = |who: &str| VisitEvent::Departed {
            staff: staff(who),
            expected_arrival: now + TimeDelta::minutes(10),
            expected_end: now + TimeDelta::minutes(60),
        };
        let batches = [
            (
                &sam,
                vec![envelope("phone-sam", 1, "visit-ava", now, departed("sam"))],
            ),
            (
                &alex,
                vec![envelope(
                    "phone-alex",
                    1,
                    "visit-ava",
                    now,
                    departed("alex"),
                )],
            ),
            // Not a visit of Sam's: refused.
            (
                &sam,
                vec![envelope(
                    "phone-sam",
                    2,
                    "visit-nobody",
                    now,
                    departed("sam"),
                )],
            ),
            (
                &alex,
                vec![envelope(
                    "phone-alex",
                    2,
                    "visit-ava",
                    now,
                    VisitEvent::DuressRaised {
                        staff: staff("alex"),
                        via: DuressVia::DuressPin,
                    },
                )],
            ),
        ];
        let groups_before = store.pending.groups();
        let events = || -> i64 {
            store
                .reader()
                .query_row("SELECT COUNT(*) FROM events", [], |row| row.get(0))
                .unwrap()
        };
        let events_before = events();

        let outcomes = std::thread::scope(|scope| {
            // The writer is busy (as with another sync's long write) while the four arrive.
            let busy = store.conn();
            let syncs: Vec<_> = batches
                .iter()
                .map(|(device, events)| {
                    let store = &store;
                    scope.spawn(move || store.ingest_raising(device, events, now, now))
                })
                .collect();
            while store.pending.queued() < batches.len() {
                std::thread::yield_now();
            }
            drop(busy);
            syncs
                .into_iter()
                .map(|sync| sync.join().unwrap())
                .collect::<Vec<_>>()
        });

        assert_eq!(
            store.pending.groups() - groups_before,
            1,
            "one commit for all four"
        );
        for i in [0, 1] {
            let ingested = outcomes[i].as_ref().unwrap();
            assert_eq!(
                ingested.results[0].outcome,
                EventOutcome::Stored,
                "batch {i}"
            );
        }
        assert!(
            matches!(&outcomes[2], Err(IngestError::Rejected(r)) if r.len() == 1),
            "{:?}",
            outcomes[2]
        );
        let alert = outcomes[3].as_ref().unwrap();
        assert_eq!(alert.results[0].outcome, EventOutcome::Stored);
        assert_eq!(
            alert.alarms.len(),
            1,
            "the alarm is raised in the same commit"
        );
        assert_eq!(
            events() - events_before,
            3,
            "everything but the refused batch"
        );
    }
}
