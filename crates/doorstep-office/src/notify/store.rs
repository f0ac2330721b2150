//! Notification targets and deliveries in the office's SQLite store: recording deliveries for new alarm
//! steps, claiming the due ones, and writing down each attempt (in the alarm's log too).

use std::collections::HashSet;

use chrono::{DateTime, SecondsFormat, Utc};
use doorstep_core::domain::Visit;
use doorstep_core::ids::SchoolId;
use rusqlite::{params, Connection, Row, TransactionBehavior};
use uuid::Uuid;

use super::message::{self, Notice, Step};
use super::{Delivery, NewTarget, NotificationTarget, TargetKind, WantedLevels};
use crate::alarms::{alarm_from_row, log, Alarm};
use crate::store::{parse_id, school_and_policy, SqliteStore, StoreError};

/// The `From:` of email recorded while no SMTP server is configured (such email cannot go out anyway).
const UNCONFIGURED_FROM: &str = "doorstep-office@localhost.invalid";

/// A delivery claimed for sending, with its target.
#[derive(Debug, Clone)]
pub(crate) struct DueDelivery {
    pub id: Uuid,
    pub alarm: i64,
    /// Attempts before this one.
    pub attempts: u32,
    pub payload: String,
    pub target: NotificationTarget,
}

/// How one attempt went, with the alarm log's line for it.
pub(crate) enum Attempt {
    Delivered {
        detail: String,
    },
    Failed {
        error: String,
        next_attempt_at: DateTime<Utc>,
        detail: String,
    },
}

/// Fixed-width UTC, so times in the deliveries table compare correctly as text.
fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn parse_time(text: &str) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })
}

fn optional_time(text: Option<String>) -> rusqlite::Result<Option<DateTime<Utc>>> {
    text.as_deref().map(parse_time).transpose()
}

fn bad(what: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        format!("bad {what} in notification_targets").into(),
    )
}

fn target_from_row(row: &Row<'_>) -> rusqlite::Result<NotificationTarget> {
    let school: String = row.get("school_id")?;
    let kind: String = row.get("kind")?;
    Ok(NotificationTarget {
        id: row.get("id")?,
        school: school.parse().map_err(|_| bad("school id"))?,
        kind: match kind.as_str() {
            "email" => TargetKind::Email,
            "webhook" => TargetKind::Webhook,
            _ => return Err(bad("kind")),
        },
        address: row.get("address")?,
        secret: row.get("secret")?,
        wants: WantedLevels {
            board: row.get("wants_board")?,
            authoriser: row.get("wants_authoriser")?,
        },
        created_at: parse_time(&row.get::<_, String>("created_at")?)?,
    })
}

fn delivery_from_row(row: &Row<'_>) -> rusqlite::Result<Delivery> {
    let id: String = row.get("id")?;
    Ok(Delivery {
        id: id.parse().map_err(|_| bad("delivery id"))?,
        alarm: row.get("alarm_id")?,
        step: row.get("alarm_log_id")?,
        target: row.get("target_id")?,
        created_at: parse_time(&row.get::<_, String>("created_at")?)?,
        attempts: row.get("attempts")?,
        next_attempt_at: optional_time(row.get("next_attempt_at")?)?,
        delivered_at: optional_time(row.get("delivered_at")?)?,
        last_error: row.get("last_error")?,
        payload: row.get("payload")?,
    })
}

fn targets_of(conn: &Connection, school: &SchoolId) -> Result<Vec<NotificationTarget>, StoreError> {
    let mut stmt =
        conn.prepare("SELECT * FROM notification_targets WHERE school_id = ?1 ORDER BY id")?;
    let targets = stmt
        .query_map([school.as_str()], target_from_row)?
        .collect::<Result<_, _>>()?;
    Ok(targets)
}

fn history(conn: &Connection, alarm: i64) -> Result<Vec<Step>, StoreError> {
    let mut stmt =
        conn.prepare("SELECT id, at, what, detail FROM alarm_log WHERE alarm_id = ?1 ORDER BY id")?;
    let steps = stmt
        .query_map([alarm], |row| {
            Ok(Step {
                id: row.get(0)?,
                at: parse_time(&row.get::<_, String>(1)?)?,
                what: row.get(2)?,
                detail: row.get(3)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(steps)
}

impl SqliteStore {
    /// Adds a place to send a school's alarms. It hears of alarm steps from `now` on.
    pub fn add_notification_target(
        &self,
        school: &SchoolId,
        target: &NewTarget,
        now: DateTime<Utc>,
    ) -> Result<NotificationTarget, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let known: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM schools WHERE id = ?1)",
            [school.as_str()],
            |r| r.get(0),
        )?;
        if !known {
            return Err(StoreError::Invalid(format!("unknown school {school}")));
        }
        let taken: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM notification_targets
                            WHERE school_id = ?1 AND kind = ?2 AND address = ?3)",
            params![school.as_str(), target.kind.as_str(), target.address],
            |r| r.get(0),
        )?;
        if taken {
            return Err(StoreError::Invalid(format!(
                "{} is already a notification target of {school}",
                target.address
            )));
        }
        tx.execute(
            "INSERT INTO notification_targets
                 (school_id, kind, address, secret, wants_board, wants_authoriser, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                school.as_str(),
                target.kind.as_str(),
                target.address,
                target.secret,
                target.wants.board,
                target.wants.authoriser,
                stamp(now)
            ],
        )?;
        let id = tx.last_insert_rowid();
        let added = tx.query_row(
            "SELECT * FROM notification_targets WHERE id = ?1",
            [id],
            target_from_row,
        )?;
        tx.commit()?;
        Ok(added)
    }

    /// Every school's notification targets, oldest first.
    pub fn notification_targets(&self) -> Result<Vec<NotificationTarget>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT * FROM notification_targets ORDER BY id")?;
        let targets = stmt
            .query_map([], target_from_row)?
            .collect::<Result<_, _>>()?;
        Ok(targets)
    }

    /// Every notification of an alarm, in the order they were recorded.
    pub fn deliveries_for_alarm(&self, alarm: i64) -> Result<Vec<Delivery>, StoreError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT * FROM deliveries WHERE alarm_id = ?1 ORDER BY rowid")?;
        let deliveries = stmt
            .query_map([alarm], delivery_from_row)?
            .collect::<Result<_, _>>()?;
        Ok(deliveries)
    }

    /// Records a delivery, due at once and with its payload, for every step of an open alarm and every
    /// target of the alarm's school that wants it, has none yet, and existed when the step happened.
    pub(crate) fn record_deliveries(
        &self,
        now: DateTime<Utc>,
        smtp_from: Option<&str>,
    ) -> Result<usize, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let open: Vec<(Alarm, String)> = {
            let mut stmt = tx.prepare(
                "SELECT a.*, v.school_id AS school_id FROM alarms a JOIN visits v ON v.id = a.visit_id
                 WHERE a.acknowledged_at IS NULL ORDER BY a.id",
            )?;
            let rows = stmt
                .query_map([], |row| Ok((alarm_from_row(row)?, row.get("school_id")?)))?
                .collect::<Result<_, _>>()?;
            rows
        };
        let mut recorded = 0;
        for (alarm, school) in open {
            let school: SchoolId = parse_id(&school)?;
            let targets = targets_of(&tx, &school)?;
            if targets.is_empty() {
                continue;
            }
            let history = history(&tx, alarm.id)?;
            let existing: HashSet<(i64, i64)> = {
                let mut stmt = tx.prepare(
                    "SELECT alarm_log_id, target_id FROM deliveries WHERE alarm_id = ?1",
                )?;
                let pairs = stmt
                    .query_map([alarm.id], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<_, _>>()?;
                pairs
            };
            let alarm_detail = history
                .iter()
                .find(|s| s.what == "raised")
                .map(|s| s.detail.clone())
                .unwrap_or_default();
            let mut context = None;
            for (step, audience) in message::notifying_steps(&history) {
                for target in &targets {
                    if !audience.includes(target.wants)
                        || step.at < target.created_at
                        || existing.contains(&(step.id, target.id))
                    {
                        continue;
                    }
                    if context.is_none() {
                        let body: String = tx.query_row(
                            "SELECT body FROM visits WHERE id = ?1",
                            [alarm.visit.as_str()],
                            |r| r.get(0),
                        )?;
                        let visit: Visit = serde_json::from_str(&body)?;
                        let (school, _) = school_and_policy(&tx, &school)?;
                        context = Some((visit, school));
                    }
                    let Some((visit, school)) = &context else {
                        continue;
                    };
                    let notice = Notice {
                        alarm: alarm.clone(),
                        alarm_detail: alarm_detail.clone(),
                        step: step.clone(),
                        audience,
                        visit: visit.clone(),
                        school: school.clone(),
                    };
                    let id = Uuid::now_v7();
                    let payload = match target.kind {
                        TargetKind::Email => message::email_message(
                            &notice,
                            smtp_from.unwrap_or(UNCONFIGURED_FROM),
                            &target.address,
                            &id,
                            now,
                        ),
                        TargetKind::Webhook => message::webhook_body(&notice, now)?,
                    };
                    recorded += tx.execute(
                        "INSERT OR IGNORE INTO deliveries
                             (id, alarm_id, alarm_log_id, target_id, created_at, attempts, next_attempt_at, payload)
                         VALUES (?1, ?2, ?3, ?4, ?5, 0, ?5, ?6)",
                        params![
                            id.to_string(),
                            alarm.id,
                            step.id,
                            target.id,
                            stamp(now),
                            payload
                        ],
                    )?;
                }
            }
        }
        tx.commit()?;
        Ok(recorded)
    }

    /// Stops the deliveries of acknowledged alarms, noting each in the alarm's log. Returns how many.
    pub(crate) fn cancel_acknowledged_deliveries(
        &self,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let stopped: Vec<(String, i64, u32, NotificationTarget)> = {
            let mut stmt = tx.prepare(
                "SELECT d.id AS delivery_id, d.alarm_id, d.attempts, t.*
                 FROM deliveries d
                 JOIN alarms a ON a.id = d.alarm_id
                 JOIN notification_targets t ON t.id = d.target_id
                 WHERE d.next_attempt_at IS NOT NULL AND a.acknowledged_at IS NOT NULL",
            )?;
            let rows = stmt
                .query_map([], |row| {
                    Ok((
                        row.get("delivery_id")?,
                        row.get("alarm_id")?,
                        row.get("attempts")?,
                        target_from_row(row)?,
                    ))
                })?
                .collect::<Result<_, _>>()?;
            rows
        };
        for (id, alarm, attempts, target) in &stopped {
            tx.execute(
                "UPDATE deliveries SET next_attempt_at = NULL WHERE id = ?1",
                [id],
            )?;
            let detail = if *attempts == 0 {
                format!(
                    "{}: not sent, the alarm was acknowledged first",
                    target.label()
                )
            } else {
                format!(
                    "{}: no more tries after {attempts} failed, the alarm was acknowledged",
                    target.label()
                )
            };
            log(&tx, *alarm, now, "notification_cancelled", &detail)?;
        }
        tx.commit()?;
        Ok(stopped.len())
    }

    /// Takes every delivery of an open alarm due at `now` and holds it until `until`, so no other worker
    /// sends it meanwhile (and one cut off mid-send is tried again then).
    pub(crate) fn claim_due_deliveries(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let due: Vec<DueDelivery> = {
            let mut stmt = tx.prepare(
                "SELECT d.id AS delivery_id, d.alarm_id, d.attempts, d.payload, t.*
                 FROM deliveries d
                 JOIN alarms a ON a.id = d.alarm_id
                 JOIN notification_targets t ON t.id = d.target_id
                 WHERE d.next_attempt_at IS NOT NULL AND d.next_attempt_at <= ?1
                   AND a.acknowledged_at IS NULL
                 ORDER BY d.next_attempt_at, d.rowid",
            )?;
            let rows = stmt
                .query_map([stamp(now)], |row| {
                    let id: String = row.get("delivery_id")?;
                    Ok(DueDelivery {
                        id: id.parse().map_err(|_| bad("delivery id"))?,
                        alarm: row.get("alarm_id")?,
                        attempts: row.get("attempts")?,
                        payload: row.get("payload")?,
                        target: target_from_row(row)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            rows
        };
        for delivery in &due {
            tx.execute(
                "UPDATE deliveries SET next_attempt_at = ?2 WHERE id = ?1",
                params![delivery.id.to_string(), stamp(until)],
            )?;
        }
        tx.commit()?;
        Ok(due)
    }

    /// Writes down one attempt on the delivery and in the alarm's log.
    pub(crate) fn record_attempt(
        &self,
        delivery: &DueDelivery,
        now: DateTime<Utc>,
        attempt: Attempt,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let id = delivery.id.to_string();
        match attempt {
            Attempt::Delivered { detail } => {
                tx.execute(
                    "UPDATE deliveries SET attempts = attempts + 1, delivered_at = ?2,
                         next_attempt_at = NULL
                     WHERE id = ?1",
                    params![id, stamp(now)],
                )?;
                log(&tx, delivery.alarm, now, "notified", &detail)?;
            }
            Attempt::Failed {
                error,
                next_attempt_at,
                detail,
            } => {
                // An alarm acknowledged while this attempt was under way gets no further try.
                tx.execute(
                    "UPDATE deliveries SET attempts = attempts + 1, last_error = ?2,
                         next_attempt_at = CASE
                             WHEN (SELECT acknowledged_at FROM alarms WHERE id = deliveries.alarm_id) IS NULL
                             THEN ?3 END
                     WHERE id = ?1",
                    params![id, error, stamp(next_attempt_at)],
                )?;
                log(&tx, delivery.alarm, now, "notification_failed", &detail)?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// When the next waiting delivery is due.
    pub(crate) fn next_delivery_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let next: Option<String> = self.conn().query_row(
            "SELECT MIN(next_attempt_at) FROM deliveries WHERE next_attempt_at IS NOT NULL",
            [],
            |r| r.get(0),
        )?;
        Ok(optional_time(next)?)
    }
}
