//! A phone's sync answer on PostgreSQL: what it should hold, whole or only what changed since its cursor,
//! read in one snapshot.
//!
//! **The cursor is per visit.** SQLite commits one writer at a time, so its events' rowids grow in commit
//! order and one number ("everything up to here") is a safe cursor. PostgreSQL commits many writers at once:
//! an event given a lower position may commit after a higher one is already read, and a single number would
//! skip it for ever. Within one visit, though, every event is stored under the visit's advisory lock, held
//! until commit, so a visit's positions do grow in commit order. The cursor therefore carries, after the
//! basis ([`holdings::basis`]), the position of the last event sent of each held visit, in the order the
//! basis lists them (`{basis}.p{first}-{second}-...`).

use std::collections::HashMap;

use deadpool_postgres::GenericClient;

use chrono::{DateTime, TimeDelta, Utc};
use doorstep_core::domain::{StaffMember, Visit};
use doorstep_core::ids::{DeviceId, DeviceSeq};
use doorstep_core::protocol::{HoldScope, PhoneHoldings, MAX_CHANGED_EVENTS};

use super::pipelined::{Begin, Pipelined};
use super::{query, query_one, query_opt, school_from, stored_event, text, PgStore};
use crate::store::holdings::{self, as_held, held_visit};
use crate::store::{Device, Holdings, StoreError, StoredEvent};

/// The positions a cursor says were sent, one per held visit, if it is this store's, for this basis and as
/// many visits.
fn sent_before(cursor: Option<&str>, basis: &str, visits: usize) -> Option<Vec<i64>> {
    let (b, rest) = cursor?.split_once('.')?;
    let list = rest.strip_prefix('p')?;
    if b != basis {
        return None;
    }
    let sent: Vec<i64> = if list.is_empty() {
        Vec::new()
    } else {
        list.split('-')
            .map(|p| p.parse().ok())
            .collect::<Option<_>>()?
    };
    (sent.len() == visits).then_some(sent)
}

fn cursor_of(basis: &str, sent: &[i64]) -> String {
    let list: Vec<String> = sent.iter().map(i64::to_string).collect();
    format!("{basis}.p{}", list.join("-"))
}

impl PgStore {
    pub(super) async fn acknowledged_through_pg(
        &self,
        device: &DeviceId,
    ) -> Result<Option<DeviceSeq>, StoreError> {
        acknowledged_through(&self.client().await?, device).await
    }

    pub(super) async fn holdings_since_pg(
        &self,
        device: &Device,
        now: DateTime<Utc>,
        cursor: Option<&str>,
    ) -> Result<Holdings, StoreError> {
        let tx = Pipelined::new(self.client().await?);
        let answer = answer(&tx, device, now, cursor).await;
        tx.end(answer).await
    }
}

/// The highest sequence number stored from `device`.
async fn acknowledged_through(
    client: &impl GenericClient,
    device: &DeviceId,
) -> Result<Option<DeviceSeq>, StoreError> {
    let row = query_one(
        client,
        "SELECT MAX(seq) AS seq FROM events WHERE device_id = $1",
        &[&device.as_str()],
    )
    .await?;
    row.try_get::<_, Option<i64>>("seq")?
        .map(|seq| {
            let seq = u64::try_from(seq).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            DeviceSeq::new(seq).map_err(|e| StoreError::Corrupt(e.to_string()))
        })
        .transpose()
}

/// A phone's answer, read in one snapshot in two round trips: `START TRANSACTION` with
/// the school, the staff member, their visits and the phone's last event stored; then the events changed since the cursor, with `COMMIT`
/// ([`Pipelined`]).
async fn answer(
    tx: &Pipelined,
    device: &Device,
    now: DateTime<Utc>,
    cursor: Option<&str>,
) -> Result<Holdings, StoreError> {
    let client = tx.client();
    let school = async {
        let row = query_opt(
            client,
            "SELECT id, name, office_phone, policy, time_zone FROM schools WHERE id = $1",
            &[&device.school.as_str()],
        )
        .await?
        .ok_or_else(|| StoreError::Invalid(format!("unknown school {}", device.school)))?;
        school_from(&row)
    };
    let member = async {
        match query_opt(
            client,
            "SELECT body FROM staff WHERE id = $1",
            &[&device.staff.as_str()],
        )
        .await?
        {
            Some(row) => Ok::<StaffMember, StoreError>(serde_json::from_str(&text(&row, "body")?)?),
            None => Err(StoreError::Corrupt(format!(
                "device's staff {} missing",
                device.staff
            ))),
        }
    };
    // From a day ago to a week ahead, and any not yet over; times compare as text, byte by byte.
    let from = (now - TimeDelta::days(1)).to_rfc3339();
    let to = (now + TimeDelta::days(7)).to_rfc3339();
    let visits = async {
        query(
            client,
            "SELECT v.body, v.phase FROM visits v JOIN visit_staff vs ON vs.visit_id = v.id
                 WHERE vs.staff_id = $1 AND (v.agreed_time COLLATE \"C\") <= $3
                   AND ((v.agreed_time COLLATE \"C\") >= $2
                        OR v.phase NOT IN ('written_up', 'cancelled', 'declined'))
                 ORDER BY v.agreed_time COLLATE \"C\"",
            &[&device.staff.as_str(), &from, &to],
        )
        .await?
        .iter()
        .map(|row| {
            Ok(as_held(
                serde_json::from_str(&text(row, "body")?)?,
                &text(row, "phase")?,
            ))
        })
        .collect::<Result<Vec<Visit>, StoreError>>()
    };
    let (_, (school, policy), member, visits, acknowledged) = tokio::try_join!(
        biased;
        tx.begin(Begin::ReadOnlySnapshot),
        school,
        member,
        visits,
        acknowledged_through(client, &device.id)
    )?;
    let basis = holdings::basis(&school, &policy, &member, &visits)?;
    let since = sent_before(cursor, &basis, visits.len());
    let after = since.clone().unwrap_or_else(|| vec![0; visits.len()]);
    let ids: Vec<&str> = visits.iter().map(|v| v.id.as_str()).collect();
    // Prepared first, so that it goes out ahead of the `COMMIT` joined after it.
    let changed_since = tx
        .prepare(
            "SELECT e.visit_id, e.position, e.body, e.received_at, e.trusted_at FROM events e
                 JOIN unnest($1::text[], $2::bigint[]) AS c(visit_id, after)
                     ON e.visit_id = c.visit_id AND e.position > c.after
                 ORDER BY e.position",
        )
        .await?;
    let changes = async {
        client
            .query(&changed_since, &[&ids, &after])
            .await
            .map_err(StoreError::from)
    };
    let (rows, ()) = tokio::try_join!(biased; changes, tx.commit())?;
    let mut changed: HashMap<String, Vec<(i64, StoredEvent)>> = HashMap::new();
    let mut positions = Vec::new();
    for row in rows {
        let position: i64 = row.try_get("position")?;
        positions.push(position);
        changed
            .entry(text(&row, "visit_id")?)
            .or_default()
            .push((position, stored_event(&row)?));
    }
    // At most MAX_CHANGED_EVENTS changes in one answer: those stored first; the rest next time.
    let (through, more) = match since {
        Some(_) if positions.len() > MAX_CHANGED_EVENTS => {
            (positions[MAX_CHANGED_EVENTS - 1], true)
        }
        _ => (i64::MAX, false),
    };
    let mut sent = after;
    let mut held = Vec::new();
    for (n, visit) in visits.into_iter().enumerate() {
        let events: Vec<StoredEvent> = changed
            .remove(visit.id.as_str())
            .unwrap_or_default()
            .into_iter()
            .filter(|(position, _)| *position <= through)
            .map(|(position, event)| {
                sent[n] = position;
                event
            })
            .collect();
        if since.is_some() && events.is_empty() {
            continue;
        }
        held.push(held_visit(visit, events));
    }
    Ok(Holdings {
        hold: PhoneHoldings {
            school,
            policy,
            staff: member.id,
            staff_name: member.name,
            visits: held,
        },
        scope: if since.is_some() {
            HoldScope::ChangesOnly
        } else {
            HoldScope::Full
        },
        cursor: cursor_of(&basis, &sent),
        more,
        acknowledged_through: acknowledged,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_is_read_back_only_for_its_basis_and_as_many_visits() {
        let cursor = cursor_of("abc", &[4, 0, 17]);
        assert_eq!(sent_before(Some(&cursor), "abc", 3), Some(vec![4, 0, 17]));
        assert_eq!(sent_before(Some(&cursor), "abd", 3), None);
        assert_eq!(sent_before(Some(&cursor), "abc", 2), None);
        let none = cursor_of("abc", &[]);
        assert_eq!(sent_before(Some(&none), "abc", 0), Some(vec![]));
        // SQLite's cursors (`basis.rowid.id`) and garbage are not this store's.
        assert_eq!(sent_before(Some("abc.12.0190"), "abc", 1), None);
        assert_eq!(sent_before(Some("abc.p1-x"), "abc", 2), None);
        assert_eq!(sent_before(None, "abc", 0), None);
    }
}
