//! A transaction whose ends travel with its statements: `START TRANSACTION` is sent in the same round trip
//! as the first statements, and `COMMIT` in the same round trip as the last writes, where
//! `Client::transaction` and `Transaction::commit` each wait for a round trip of their own.
//!
//! **Why it is safe.** The driver sends a statement when its future is first polled (for a statement
//! already prepared: `prepare_cached` answers from the connection's cache without waiting), the server runs
//! a connection's statements in the order they arrive, and `tokio::try_join!(biased; ...)` polls its
//! futures in the order given. So `try_join!(biased; begin, a, b)` sends `START TRANSACTION` then `a`
//! then `b`, all before the first answer; and `COMMIT` joined last, after writes that were prepared
//! beforehand ([`Pipelined::prepare`]), is sent after them. A statement that fails puts the transaction in
//! the failed state: the server refuses every statement after it, and answers a `COMMIT` sent behind it by
//! rolling back; the caller sees the statement's error, and [`Pipelined::end`] sends `ROLLBACK`, then a
//! no-op on the server.
//!
//! **If the work is dropped half way** (its task cancelled), nothing can be awaited to end the transaction,
//! so the connection is taken out of the pool and closed: PostgreSQL rolls the transaction back and frees
//! its locks, and the pool makes a fresh connection when one is next needed.

use std::sync::atomic::{AtomicBool, Ordering};

use deadpool_postgres::Object;
use tokio_postgres::Statement;

use crate::store::StoreError;

/// How a pipelined transaction begins: ordinary (read committed, read and write), or one read-only snapshot.
#[derive(Debug, Clone, Copy)]
pub(super) enum Begin {
    ReadWrite,
    ReadOnlySnapshot,
}

impl Begin {
    fn sql(self) -> &'static str {
        match self {
            Self::ReadWrite => "START TRANSACTION",
            Self::ReadOnlySnapshot => "START TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY",
        }
    }
}

/// A connection of the pool with a pipelined transaction open on it (see the module's notes).
pub(super) struct Pipelined {
    client: Option<Object>,
    /// `START TRANSACTION` was sent and the transaction not yet ended.
    open: AtomicBool,
    /// `COMMIT` was answered.
    committed: AtomicBool,
}

impl Pipelined {
    pub(super) fn new(client: Object) -> Self {
        Self {
            client: Some(client),
            open: AtomicBool::new(false),
            committed: AtomicBool::new(false),
        }
    }

    /// The connection, for the transaction's statements.
    pub(super) fn client(&self) -> &Object {
        self.client
            .as_ref()
            .expect("a pipelined transaction keeps its connection until dropped")
    }

    /// `sql` from the connection's cache of prepared statements, prepared now if it is not there yet: a
    /// statement to be sent in the same round trip as `COMMIT` is prepared first, so that it goes out
    /// ahead of it.
    pub(super) async fn prepare(&self, sql: &str) -> Result<Statement, StoreError> {
        Ok(self.client().prepare_cached(sql).await?)
    }

    /// Sends `START TRANSACTION` when first polled: join it first, ahead of the transaction's first
    /// statements.
    pub(super) async fn begin(&self, how: Begin) -> Result<(), StoreError> {
        self.open.store(true, Ordering::SeqCst);
        self.client().batch_execute(how.sql()).await?;
        Ok(())
    }

    /// Sends `COMMIT` when first polled: join it last, after the transaction's last statements (each
    /// prepared beforehand, [`Self::prepare`]).
    pub(super) async fn commit(&self) -> Result<(), StoreError> {
        self.client().batch_execute("COMMIT").await?;
        self.committed.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Ends the transaction with the work's `outcome`: on `Ok`, committed (by [`Self::commit`] joined with
    /// the last statements, or here); on `Err`, rolled back (a no-op on the server when a failed statement
    /// already ended it).
    pub(super) async fn end<T, E: From<StoreError>>(self, outcome: Result<T, E>) -> Result<T, E> {
        let ended = match &outcome {
            Ok(_) if self.committed.load(Ordering::SeqCst) => Ok(()),
            Ok(_) => self.client().batch_execute("COMMIT").await,
            Err(_) => self.client().batch_execute("ROLLBACK").await,
        };
        if let Err(error) = ended {
            // Left open: dropped, the connection is closed, which rolls back just the same.
            return outcome.and(Err(StoreError::from(error).into()));
        }
        self.open.store(false, Ordering::SeqCst);
        outcome
    }
}

impl Drop for Pipelined {
    fn drop(&mut self) {
        if self.open.load(Ordering::SeqCst) {
            if let Some(client) = self.client.take() {
                // Out of the pool and closed: the server rolls the transaction back.
                drop(Object::take(client));
            }
        }
    }
}
