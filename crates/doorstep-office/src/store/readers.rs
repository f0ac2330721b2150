//! Read-only connections beside the store's one writer ([`Readers`]): SQLite in WAL mode lets readers go on
//! while the writer writes, each seeing the last commit made before its read began, so the sync path's
//! reads (a device's token, what its phone should hold) no longer queue behind other syncs' writes.

use std::ops::Deref;
use std::path::Path;
use std::sync::{Condvar, Mutex, PoisonError};

use rusqlite::{Connection, OpenFlags};

use super::{StoreError, STATEMENT_CACHE};

/// How many read-only connections the store keeps: two per core, as many as can usefully run at once
/// beside the writer (more would only wait for a core).
pub fn readers_for_this_machine() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get) * 2
}

/// A fixed set of read-only connections; a reader borrowed while all are out waits for one to come back.
#[derive(Debug)]
pub struct Readers {
    idle: Mutex<Vec<Connection>>,
    returned: Condvar,
}

impl Readers {
    /// Opens `count` read-only connections to the database at `path`, which the writer has already
    /// opened, migrated and put in WAL mode.
    pub fn open(path: &Path, count: usize) -> Result<Self, StoreError> {
        let mut idle = Vec::with_capacity(count.max(1));
        for _ in 0..count.max(1) {
            let conn = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
            idle.push(conn);
        }
        Ok(Self {
            idle: Mutex::new(idle),
            returned: Condvar::new(),
        })
    }

    /// Borrows a connection, waiting for one if all are out; it goes back when the [`Reader`] is dropped.
    pub fn get(&self) -> Reader<'_> {
        // A panic while a connection was out cannot have changed the database (they only read), so a
        // poisoned lock is safe to keep using.
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(conn) = idle.pop() {
                return Reader {
                    readers: self,
                    conn: Some(conn),
                };
            }
            idle = self
                .returned
                .wait(idle)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// A borrowed read-only connection.
pub struct Reader<'a> {
    readers: &'a Readers,
    conn: Option<Connection>,
}

impl Deref for Reader<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        // `conn` is `Some` from `get` until `drop` takes it.
        match &self.conn {
            Some(conn) => conn,
            None => unreachable!("a reader's connection is only taken when it is dropped"),
        }
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.readers
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(conn);
            self.readers.returned.notify_one();
        }
    }
}
