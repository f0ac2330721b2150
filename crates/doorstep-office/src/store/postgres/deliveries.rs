//! Notification targets and deliveries on PostgreSQL ([`Deliveries`]): the same plan and payloads as the
//! SQLite store (the pure functions of `notify::message`), with what several offices sharing the database
//! need on top:
//! - planning runs under one advisory lock ([`LOCK_PLANNING`]), so two offices do not write out the same
//!   step's messages side by side (and the tables' unique keys would drop a second one anyway);
//! - a due delivery is claimed with `FOR UPDATE SKIP LOCKED`, so each is sent by one office, and an office
//!   that dies mid-send leaves it to be claimed again when its claim runs out;
//! - stopping and retrying check the alarm and the target in the same statement that changes the delivery.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use doorstep_core::domain::{School, Visit};
use doorstep_core::ids::{SchoolId, VisitId};
use doorstep_core::schedule::AlarmLevel;
use tokio_postgres::Row;

use super::{
    alarm_from, execute, log, optional_time, query, query_one, query_opt, school_from, text,
};
use super::{PgStore, StoreError};
use crate::alarms::{step, Alarm};
use crate::notices::{role_name, Notice, NoticeKind};
use crate::notify::message::{self, NewDelivery, NoticeMessage, Step, Tells};
use crate::notify::store::{stamp, UNCONFIGURED_FROM};
use crate::notify::{
    Attempt, Delivery, DueDelivery, NewTarget, NotificationTarget, Secret, TargetKind,
    WantedLevels, NOTICE_WAITS_FOR_A_TARGET,
};
use crate::store::deliveries::Deliveries;
use crate::store::{parse_id, stored_time};

/// The transaction advisory lock deliveries are planned under (the office's key for planning).
const LOCK_PLANNING: &str = "SELECT pg_advisory_xact_lock(7302)";

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("bad {what} in notification targets"))
}

fn flag(row: &Row, column: &str) -> Result<bool, StoreError> {
    Ok(row.try_get::<_, i32>(column)? != 0)
}

fn target_from(row: &Row) -> Result<NotificationTarget, StoreError> {
    let visit: Option<String> = row.try_get("visit_id")?;
    Ok(NotificationTarget {
        id: row.try_get("id")?,
        school: parse_id(&text(row, "school_id")?)?,
        kind: TargetKind::parse(&text(row, "kind")?).ok_or_else(|| corrupt("kind"))?,
        address: text(row, "address")?,
        secret: row.try_get::<_, Option<String>>("secret")?.map(Secret),
        name: text(row, "name")?,
        wants: WantedLevels {
            board: flag(row, "wants_board")?,
            authoriser: flag(row, "wants_authoriser")?,
            further: flag(row, "wants_further")?,
        },
        roles: serde_json::from_str(&text(row, "roles")?).map_err(|_| corrupt("roles"))?,
        visit: visit.as_deref().map(parse_id).transpose()?,
        created_at: stored_time(&text(row, "created_at")?)?,
        removed_at: optional_time(row, "removed_at")?,
    })
}

fn attempts(row: &Row) -> Result<u32, StoreError> {
    u32::try_from(row.try_get::<_, i32>("attempts")?).map_err(|_| corrupt("attempts"))
}

fn delivery_from(row: &Row) -> Result<Delivery, StoreError> {
    Ok(Delivery {
        id: parse_id(&text(row, "id")?)?,
        alarm: row.try_get("alarm_id")?,
        step: row.try_get("alarm_log_id")?,
        notice: row.try_get("notice_id")?,
        target: row.try_get("target_id")?,
        audience: text(row, "audience")?,
        created_at: stored_time(&text(row, "created_at")?)?,
        attempts: attempts(row)?,
        next_attempt_at: optional_time(row, "next_attempt_at")?,
        delivered_at: optional_time(row, "delivered_at")?,
        last_error: row.try_get("last_error")?,
        payload: text(row, "payload")?,
    })
}

/// A claimed or stopped delivery's row: the delivery's columns (`delivery_id`, `alarm_id`, `attempts`,
/// `payload`) beside its target's.
fn due_from(row: &Row) -> Result<DueDelivery, StoreError> {
    Ok(DueDelivery {
        id: parse_id(&text(row, "delivery_id")?)?,
        alarm: row.try_get("alarm_id")?,
        attempts: attempts(row)?,
        payload: text(row, "payload")?,
        target: target_from(row)?,
    })
}

fn notice_from(row: &Row) -> Result<Notice, StoreError> {
    let role = serde_json::Value::String(text(row, "role")?);
    Ok(Notice {
        id: row.try_get("id")?,
        visit: parse_id(&text(row, "visit_id")?)?,
        kind: NoticeKind::parse(&text(row, "kind")?).ok_or_else(|| corrupt("notice kind"))?,
        event: text(row, "event_id")?,
        staff: parse_id(&text(row, "staff_id")?)?,
        role: serde_json::from_value(role).map_err(|_| corrupt("notice role"))?,
        raised_at: stored_time(&text(row, "raised_at")?)?,
    })
}

/// A school's live targets: its own, and those of its visits.
async fn live_targets_of(
    client: &impl GenericClient,
    school: &str,
) -> Result<Vec<NotificationTarget>, StoreError> {
    query(
        client,
        "SELECT * FROM notification_targets WHERE school_id = $1 AND removed_at IS NULL ORDER BY id",
        &[&school],
    )
    .await?
    .iter()
    .map(target_from)
    .collect()
}

async fn history(client: &impl GenericClient, alarm: i64) -> Result<Vec<Step>, StoreError> {
    query(
        client,
        "SELECT id, at, what, level, detail FROM alarm_log WHERE alarm_id = $1 ORDER BY id",
        &[&alarm],
    )
    .await?
    .iter()
    .map(|row| {
        let level: Option<String> = row.try_get("level")?;
        Ok(Step {
            id: row.try_get("id")?,
            at: stored_time(&text(row, "at")?)?,
            what: text(row, "what")?,
            level: level.as_deref().and_then(AlarmLevel::parse),
            detail: text(row, "detail")?,
        })
    })
    .collect()
}

/// A visit as requested, and its school: what every message about it names.
async fn visit_and_school(
    client: &impl GenericClient,
    visit: &VisitId,
) -> Result<(Visit, School), StoreError> {
    let row = query_one(
        client,
        "SELECT v.body, s.id, s.name, s.office_phone, s.policy, s.time_zone
             FROM visits v JOIN schools s ON s.id = v.school_id WHERE v.id = $1",
        &[&visit.as_str()],
    )
    .await?;
    Ok((
        serde_json::from_str(&text(&row, "body")?)?,
        school_from(&row)?.0,
    ))
}

async fn insert_delivery(
    client: &impl GenericClient,
    new: &NewDelivery,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let (alarm, step, notice) = match new.tells {
        Tells::AlarmStep { alarm, step } => (Some(alarm), Some(step), None),
        Tells::Notice(notice) => (None, None, Some(notice)),
    };
    let at = stamp(now);
    let inserted = execute(
        client,
        "INSERT INTO deliveries (id, alarm_id, alarm_log_id, notice_id, target_id, audience, created_at,
                                 attempts, next_attempt_at, payload)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $7, $8) ON CONFLICT DO NOTHING",
        &[
            &new.id.to_string(),
            &alarm,
            &step,
            &notice,
            &new.target,
            &new.audience,
            &at,
            &new.payload,
        ],
    )
    .await?;
    Ok(usize::from(inserted > 0))
}

/// Records the deliveries the open alarms' steps call for (see [`Deliveries::record_deliveries`]).
async fn record_alarm_deliveries(
    tx: &impl GenericClient,
    now: DateTime<Utc>,
    from: &str,
) -> Result<usize, StoreError> {
    let open = query(
        tx,
        "SELECT a.*, v.school_id AS school_id FROM alarms a JOIN visits v ON v.id = a.visit_id
             WHERE a.acknowledged_at IS NULL AND a.closed_at IS NULL ORDER BY a.id",
        &[],
    )
    .await?;
    let mut recorded = 0;
    for row in open {
        let alarm: Alarm = alarm_from(&row)?;
        let targets: Vec<NotificationTarget> = live_targets_of(tx, &text(&row, "school_id")?)
            .await?
            .into_iter()
            .filter(|t| t.visit.as_ref().is_none_or(|v| *v == alarm.visit))
            .collect();
        if targets.is_empty() {
            continue;
        }
        let history = history(tx, alarm.id).await?;
        let made: HashSet<(i64, i64)> = query(
            tx,
            "SELECT alarm_log_id, target_id FROM deliveries WHERE alarm_id = $1",
            &[&alarm.id],
        )
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_, StoreError>>()?;
        let plan = message::plan_alarm_deliveries(&history, &targets, &made);
        if plan.is_empty() {
            continue;
        }
        let (visit, school) = visit_and_school(tx, &alarm.visit).await?;
        for new in message::alarm_deliveries(&alarm, &history, plan, (&visit, &school), from, now)?
        {
            recorded += insert_delivery(tx, &new, now).await?;
        }
    }
    Ok(recorded)
}

/// Records the deliveries recent safeguarding notices call for (see [`Deliveries::record_deliveries`]).
async fn record_notice_deliveries(
    tx: &impl GenericClient,
    now: DateTime<Utc>,
    from: &str,
) -> Result<usize, StoreError> {
    let recent = query(
        tx,
        "SELECT n.*, v.school_id AS school_id,
                EXISTS (SELECT 1 FROM deliveries d WHERE d.notice_id = n.id) AS sent_any
             FROM notices n JOIN visits v ON v.id = n.visit_id
             WHERE (n.raised_at COLLATE \"C\") >= $1 ORDER BY n.id",
        &[&(now - NOTICE_WAITS_FOR_A_TARGET).to_rfc3339()],
    )
    .await?;
    let mut recorded = 0;
    for row in recent {
        let notice = notice_from(&row)?;
        let targets = live_targets_of(tx, &text(&row, "school_id")?).await?;
        let made: HashSet<i64> = query(
            tx,
            "SELECT target_id FROM deliveries WHERE notice_id = $1",
            &[&notice.id],
        )
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
        let sent_any: bool = row.try_get("sent_any")?;
        let waiting = message::plan_notice_deliveries(&notice, sent_any, &targets, &made);
        if waiting.is_empty() {
            continue;
        }
        let (visit, school) = visit_and_school(tx, &notice.visit).await?;
        let raised_by = query_opt(
            tx,
            "SELECT name FROM staff WHERE id = $1",
            &[&notice.staff.as_str()],
        )
        .await?
        .map_or_else(|| Ok(notice.staff.to_string()), |r| text(&r, "name"))?;
        let message = NoticeMessage {
            notice,
            raised_by,
            visit,
            school,
        };
        for new in message::notice_deliveries(&message, &waiting, from, now)? {
            recorded += insert_delivery(tx, &new, now).await?;
        }
    }
    Ok(recorded)
}

/// Adds a target inside the caller's transaction (see [`Deliveries::add_notification_target`]); `visit`
/// makes it that visit's own responsible contact.
pub(crate) async fn insert_target_in(
    tx: &impl GenericClient,
    school: &SchoolId,
    visit: Option<&VisitId>,
    target: &NewTarget,
    now: DateTime<Utc>,
) -> Result<NotificationTarget, StoreError> {
    let known: bool = query_one(
        tx,
        "SELECT EXISTS (SELECT 1 FROM schools WHERE id = $1)",
        &[&school.as_str()],
    )
    .await?
    .try_get(0)?;
    if !known {
        return Err(StoreError::Invalid(format!("unknown school {school}")));
    }
    let roles: Vec<String> = target.roles.iter().map(|r| role_name(*r)).collect();
    let added = query_opt(
        tx,
        "INSERT INTO notification_targets
             (school_id, kind, address, secret, name, wants_board, wants_authoriser, wants_further,
              roles, visit_id, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT DO NOTHING RETURNING *",
        &[
            &school.as_str(),
            &target.kind.as_str(),
            &target.address,
            &target.secret.as_ref().map(Secret::expose),
            &target.name,
            &i32::from(target.wants.board),
            &i32::from(target.wants.authoriser),
            &i32::from(target.wants.further),
            &serde_json::to_string(&roles)?,
            &visit.map(VisitId::as_str),
            &stamp(now),
        ],
    )
    .await?;
    match added {
        Some(row) => target_from(&row),
        None => Err(StoreError::Invalid(format!(
            "{} is already a notification target of {school}",
            target.address
        ))),
    }
}

impl Deliveries for PgStore {
    async fn add_notification_target(
        &self,
        school: &SchoolId,
        target: &NewTarget,
        now: DateTime<Utc>,
    ) -> Result<NotificationTarget, StoreError> {
        // A school's own target must want something; a visit's contact wants nothing but that visit.
        target
            .checked()
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        insert_target_in(&self.client().await?, school, None, target, now).await
    }

    async fn deliveries_for_alarm(&self, alarm: i64) -> Result<Vec<Delivery>, StoreError> {
        query(
            &self.client().await?,
            "SELECT * FROM deliveries WHERE alarm_id = $1 ORDER BY position",
            &[&alarm],
        )
        .await?
        .iter()
        .map(delivery_from)
        .collect()
    }

    async fn record_deliveries(
        &self,
        now: DateTime<Utc>,
        smtp_from: Option<&str>,
    ) -> Result<usize, StoreError> {
        let from = smtp_from.unwrap_or(UNCONFIGURED_FROM);
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        execute(&tx, LOCK_PLANNING, &[]).await?;
        let recorded = record_alarm_deliveries(&tx, now, from).await?
            + record_notice_deliveries(&tx, now, from).await?;
        tx.commit().await?;
        Ok(recorded)
    }

    async fn cancel_acknowledged_deliveries(
        &self,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // One statement stops each and says which: a delivery another office stops meanwhile is not in
        // this one's answer (the row is re-checked after its lock is waited for).
        let stopped = query(
            &tx,
            "UPDATE deliveries d SET next_attempt_at = NULL
                 FROM notification_targets t
                 WHERE t.id = d.target_id AND d.next_attempt_at IS NOT NULL
                   AND (t.removed_at IS NOT NULL
                        OR EXISTS (SELECT 1 FROM alarms a WHERE a.id = d.alarm_id
                                   AND (a.acknowledged_at IS NOT NULL OR a.closed_at IS NOT NULL)))
                 RETURNING d.id AS delivery_id, d.alarm_id, d.attempts, d.payload, t.*",
            &[],
        )
        .await?;
        for row in &stopped {
            let stopped = due_from(row)?;
            let Some(alarm) = stopped.alarm else {
                continue;
            };
            let detail = message::cancelled_detail(&stopped.target, stopped.attempts);
            log(
                &tx,
                (alarm, now),
                (step::NOTIFICATION_CANCELLED, None, &detail),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(stopped.len())
    }

    async fn claim_due_deliveries(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        // Rows another office has claimed and not yet committed are skipped, not waited for.
        let mut claimed = query(
            &self.client().await?,
            "WITH due AS (
                 SELECT d.id FROM deliveries d
                     JOIN notification_targets t ON t.id = d.target_id
                     WHERE d.next_attempt_at IS NOT NULL AND d.next_attempt_at <= $1
                       AND t.removed_at IS NULL
                       AND NOT EXISTS (SELECT 1 FROM alarms a WHERE a.id = d.alarm_id
                                       AND (a.acknowledged_at IS NOT NULL OR a.closed_at IS NOT NULL))
                     FOR UPDATE OF d SKIP LOCKED)
             UPDATE deliveries d SET next_attempt_at = $2
                 FROM due, notification_targets t
                 WHERE d.id = due.id AND t.id = d.target_id
                 RETURNING d.position, d.id AS delivery_id, d.alarm_id,
                           d.attempts, d.payload, t.*",
            &[&stamp(now), &stamp(until)],
        )
        .await?;
        claimed.sort_by_key(|row| row.try_get::<_, i64>("position").unwrap_or(i64::MAX));
        claimed.iter().map(due_from).collect()
    }

    async fn record_attempt(
        &self,
        delivery: &DueDelivery,
        now: DateTime<Utc>,
        attempt: Attempt,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let id = delivery.id.to_string();
        let (what, detail) = match attempt {
            Attempt::Delivered { detail } => {
                execute(
                    &tx,
                    "UPDATE deliveries SET attempts = attempts + 1, delivered_at = $2,
                         next_attempt_at = NULL WHERE id = $1",
                    &[&id, &stamp(now)],
                )
                .await?;
                (step::NOTIFIED, detail)
            }
            Attempt::Failed {
                error,
                next_attempt_at,
                detail,
            } => {
                // An alarm acknowledged, or a target removed, while this attempt was under way gets no
                // further try.
                execute(
                    &tx,
                    "UPDATE deliveries d SET attempts = attempts + 1, last_error = $2,
                         next_attempt_at = CASE
                             WHEN NOT EXISTS (SELECT 1 FROM alarms a WHERE a.id = d.alarm_id
                                              AND (a.acknowledged_at IS NOT NULL OR a.closed_at IS NOT NULL))
                              AND NOT EXISTS (SELECT 1 FROM notification_targets t
                                              WHERE t.id = d.target_id AND t.removed_at IS NOT NULL)
                             THEN $3 END
                     WHERE id = $1",
                    &[&id, &error, &stamp(next_attempt_at)],
                )
                .await?;
                (step::NOTIFICATION_FAILED, detail)
            }
        };
        if let Some(alarm) = delivery.alarm {
            log(&tx, (alarm, now), (what, None, &detail)).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn deliveries_for_notice(&self, notice: i64) -> Result<Vec<Delivery>, StoreError> {
        query(
            &self.client().await?,
            "SELECT * FROM deliveries WHERE notice_id = $1 ORDER BY position",
            &[&notice],
        )
        .await?
        .iter()
        .map(delivery_from)
        .collect()
    }

    async fn notices_for_visit(&self, visit: &VisitId) -> Result<Vec<Notice>, StoreError> {
        query(
            &self.client().await?,
            "SELECT * FROM notices WHERE visit_id = $1 ORDER BY id",
            &[&visit.as_str()],
        )
        .await?
        .iter()
        .map(notice_from)
        .collect()
    }

    async fn notices_since(
        &self,
        school: &SchoolId,
        since: DateTime<Utc>,
    ) -> Result<Vec<Notice>, StoreError> {
        query(
            &self.client().await?,
            "SELECT n.* FROM notices n JOIN visits v ON v.id = n.visit_id
                 WHERE v.school_id = $1 AND (n.raised_at COLLATE \"C\") >= $2
                 ORDER BY n.raised_at COLLATE \"C\" DESC, n.id DESC",
            &[&school.as_str(), &since.to_rfc3339()],
        )
        .await?
        .iter()
        .map(notice_from)
        .collect()
    }

    async fn notification_targets(&self) -> Result<Vec<NotificationTarget>, StoreError> {
        query(
            &self.client().await?,
            "SELECT * FROM notification_targets ORDER BY id",
            &[],
        )
        .await?
        .iter()
        .map(target_from)
        .collect()
    }

    async fn school_notification_targets(
        &self,
        school: &SchoolId,
    ) -> Result<Vec<NotificationTarget>, StoreError> {
        query(
            &self.client().await?,
            "SELECT * FROM notification_targets WHERE school_id = $1 ORDER BY id",
            &[&school.as_str()],
        )
        .await?
        .iter()
        .map(target_from)
        .collect()
    }

    async fn remove_notification_target(
        &self,
        school: &SchoolId,
        id: i64,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<NotificationTarget, StoreError> {
        query_opt(
            &self.client().await?,
            "UPDATE notification_targets SET removed_at = $3, removed_by = $4
                 WHERE id = $1 AND school_id = $2 AND removed_at IS NULL RETURNING *",
            &[&id, &school.as_str(), &stamp(now), &by],
        )
        .await?
        .as_ref()
        .map(target_from)
        .transpose()?
        .ok_or_else(|| {
            StoreError::Invalid(format!("there is no notification target {id} to remove"))
        })
    }

    async fn live_school_target_count(&self, school: &SchoolId) -> Result<usize, StoreError> {
        let count: i64 = query_one(
            &self.client().await?,
            "SELECT COUNT(*) AS live FROM notification_targets
                 WHERE school_id = $1 AND visit_id IS NULL AND removed_at IS NULL",
            &[&school.as_str()],
        )
        .await?
        .try_get("live")?;
        Ok(usize::try_from(count).unwrap_or(0))
    }

    async fn next_delivery_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let row = query_one(
            &self.client().await?,
            "SELECT MIN(next_attempt_at) AS next FROM deliveries WHERE next_attempt_at IS NOT NULL",
            &[],
        )
        .await?;
        optional_time(&row, "next")
    }
}
