//! What a restored phone asks the office (see [`crate::reconcile`]), read from SQLite: the events the
//! office holds from a device in a range of its numbers.

use doorstep_core::ids::{DeviceId, DeviceSeq};
use doorstep_core::reconcile::HeldSeq;
use rusqlite::params;

use crate::store::{parse_id, SqliteStore, StoreError};

impl SqliteStore {
    /// The events from `device` numbered `from..=through`, by number.
    pub fn held_in_range(
        &self,
        device: &DeviceId,
        from: DeviceSeq,
        through: DeviceSeq,
    ) -> Result<Vec<HeldSeq>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, id FROM events WHERE device_id = ?1 AND seq BETWEEN ?2 AND ?3 ORDER BY seq",
        )?;
        let rows = stmt.query_map(
            params![device.as_str(), from.get() as i64, through.get() as i64],
            |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)),
        )?;
        let mut held = Vec::new();
        for row in rows {
            let (seq, id) = row?;
            held.push(HeldSeq {
                seq: DeviceSeq::new(seq as u64).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                id: parse_id(&id)?,
            });
        }
        Ok(held)
    }
}
