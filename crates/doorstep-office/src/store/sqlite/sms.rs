//! Text messages on SQLite (see [`crate::sms`]): a device's keys for checking a text, and the log of every
//! text received and what became of it.

use chrono::{DateTime, Utc};
use doorstep_core::ids::DeviceId;
use rusqlite::{params, OptionalExtension};

use crate::sms::*;
use crate::store::{stored_time, tuples, CachedSql, SqliteStore, StoreError};

impl SqliteStore {
    /// The enrolled, unrevoked device `device` and the SHA-256 of each token it may hold now (its current
    /// one, one offered in a sync answer, a replaced one not yet expired), from which its texts' key is
    /// derived: a phone offline since its credential was renewed still signs with the token it has.
    pub fn device_for_texts(
        &self,
        device: &DeviceId,
        now: DateTime<Utc>,
    ) -> Result<Option<DeviceKeys>, StoreError> {
        let conn = self.conn();
        let row = conn
            .query_row_cached(
                "SELECT d.staff_id, s.school_id FROM devices d
                 JOIN staff s ON s.id = d.staff_id WHERE d.id = ?1 AND d.revoked_at IS NULL",
                [device.as_str()],
                |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)),
            )
            .optional()?;
        let Some((staff, school)) = row else {
            return Ok(None);
        };
        let tokens: Vec<(String, String)> = tuples(
            &conn,
            "SELECT token_sha256, issued_at FROM device_tokens
             WHERE device_id = ?1 AND expires_at > ?2 ORDER BY issued_at DESC",
            params![device.as_str(), now.to_rfc3339()],
        )?;
        device_keys(device, (&staff, &school), tokens)
    }

    /// Records a text the gateway handed over and what became of it.
    pub fn record_sms(
        &self,
        now: DateTime<Utc>,
        from: &str,
        text: &str,
        outcome: SmsOutcome,
        detail: &str,
        ids: Option<(DeviceId, String)>,
    ) -> Result<(), StoreError> {
        let (device, event) = match ids {
            Some((device, event)) => (Some(device.to_string()), Some(event)),
            None => (None, None),
        };
        self.conn().execute_cached(
            "INSERT INTO sms_messages (received_at, from_number, body, outcome, detail, device_id, event_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                now.to_rfc3339(),
                from,
                text,
                outcome.as_str(),
                detail,
                device,
                event
            ],
        )?;
        Ok(())
    }

    /// Every text recorded, oldest first.
    pub fn sms_messages(&self) -> Result<Vec<SmsRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT received_at, from_number, body, outcome, detail, device_id, event_id
             FROM sms_messages ORDER BY id",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                SmsRecord {
                    received_at: DateTime::<Utc>::MIN_UTC,
                    from: row.get(1)?,
                    text: row.get(2)?,
                    outcome: row.get(3)?,
                    detail: row.get(4)?,
                    device: row.get(5)?,
                    event_id: row.get(6)?,
                },
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (at, mut record) = row?;
            record.received_at = stored_time(&at)?;
            out.push(record);
        }
        Ok(out)
    }
}
