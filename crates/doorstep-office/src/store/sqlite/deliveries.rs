//! Notification targets and deliveries on SQLite (the rows behind [`crate::store::deliveries::Deliveries`],
//! reached as `notify::store`): adding and removing targets, recording deliveries for new alarm steps and
//! safeguarding notices, claiming the due ones, and writing down each attempt (in the alarm's log too, for
//! an alarm step).

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use chrono::{DateTime, SecondsFormat, Utc};
use doorstep_core::domain::{StaffMember, Visit};
use doorstep_core::ids::{SchoolId, VisitId};
use rusqlite::{params, Connection, Row, TransactionBehavior};
use uuid::Uuid;

use crate::alarms::{alarm_from_row, column_time, log, step, time, Alarm};
use crate::notices::{notice_from_row, role_name, Notice};
use crate::notify::message::{self, NewDelivery, NoticeMessage, Step, Tells};
use crate::notify::{
    Delivery, NewTarget, NotificationTarget, Secret, TargetKind, WantedLevels,
    NOTICE_WAITS_FOR_A_TARGET,
};
use crate::store::{
    bad_column, parse_id, parsed_column, rows, school_and_policy, staff_member, visit_school,
    CachedSql, SqliteStore, StoreError,
};
use crate::versions::stored_body;

/// The `From:` of email recorded while no SMTP server is configured (such email cannot go out anyway).
pub(crate) const UNCONFIGURED_FROM: &str = "doorstep-office@localhost.invalid";

/// A delivery claimed for sending, with its target.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub id: Uuid,
    /// The alarm it tells of; `None` for a safeguarding notice.
    pub alarm: Option<i64>,
    /// Attempts before this one.
    pub attempts: u32,
    pub payload: String,
    pub target: NotificationTarget,
}

/// How one attempt went, with the alarm log's line for it.
#[derive(Debug, Clone)]
pub enum Attempt {
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
pub(crate) fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn bad(what: &str) -> rusqlite::Error {
    bad_column(what, "notification_targets")
}

fn target_from_row(row: &Row<'_>) -> rusqlite::Result<NotificationTarget> {
    let kind: String = row.get("kind")?;
    let roles: String = row.get("roles")?;
    let visit: Option<String> = row.get("visit_id")?;
    Ok(NotificationTarget {
        id: row.get("id")?,
        school: parsed_column(row, "school_id", || bad("school id"))?,
        kind: TargetKind::parse(&kind).ok_or_else(|| bad("kind"))?,
        address: row.get("address")?,
        secret: row.get::<_, Option<String>>("secret")?.map(Secret),
        name: row.get("name")?,
        wants: WantedLevels {
            board: row.get("wants_board")?,
            authoriser: row.get("wants_authoriser")?,
            further: row.get("wants_further")?,
        },
        roles: serde_json::from_str(&roles).map_err(|_| bad("roles"))?,
        visit: match visit {
            Some(visit) => Some(visit.parse().map_err(|_| bad("visit id"))?),
            None => None,
        },
        created_at: column_time(&row.get::<_, String>("created_at")?)?,
        removed_at: time(row.get("removed_at")?)?,
    })
}

fn delivery_from_row(row: &Row<'_>) -> rusqlite::Result<Delivery> {
    Ok(Delivery {
        id: parsed_column(row, "id", || bad("delivery id"))?,
        alarm: row.get("alarm_id")?,
        step: row.get("alarm_log_id")?,
        notice: row.get("notice_id")?,
        target: row.get("target_id")?,
        audience: row.get("audience")?,
        created_at: column_time(&row.get::<_, String>("created_at")?)?,
        attempts: row.get("attempts")?,
        next_attempt_at: time(row.get("next_attempt_at")?)?,
        delivered_at: time(row.get("delivered_at")?)?,
        last_error: row.get("last_error")?,
        payload: row.get("payload")?,
    })
}

/// [`SqliteStore::live_school_target_count`] on a connection the caller holds.
pub(crate) fn live_school_target_count_in(
    conn: &Connection,
    school: &SchoolId,
) -> Result<usize, StoreError> {
    let count: i64 = conn.query_row_cached(
        "SELECT COUNT(*) FROM notification_targets
         WHERE school_id = ?1 AND visit_id IS NULL AND removed_at IS NULL",
        [school.as_str()],
        |r| r.get(0),
    )?;
    Ok(usize::try_from(count).unwrap_or(0))
}

/// A school's live targets: its own, and those of its visits.
fn live_targets_of(
    conn: &Connection,
    school: &SchoolId,
) -> Result<Vec<NotificationTarget>, StoreError> {
    rows(
        conn,
        "SELECT * FROM notification_targets WHERE school_id = ?1 AND removed_at IS NULL ORDER BY id",
        [school.as_str()],
        target_from_row,
    )
}

fn history(conn: &Connection, alarm: i64) -> Result<Vec<Step>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, at, what, level, detail FROM alarm_log WHERE alarm_id = ?1 ORDER BY id",
    )?;
    let steps = stmt
        .query_map([alarm], |row| {
            let level: Option<String> = row.get(3)?;
            Ok(Step {
                id: row.get(0)?,
                at: column_time(&row.get::<_, String>(1)?)?,
                what: row.get(2)?,
                level: level
                    .as_deref()
                    .and_then(doorstep_core::schedule::AlarmLevel::parse),
                detail: row.get(4)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(steps)
}

fn visit_body(conn: &Connection, visit: &VisitId) -> Result<Visit, StoreError> {
    let body = stored_body(conn, visit)?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
    Ok(serde_json::from_str(&body)?)
}

/// Records a delivery written out by [`message::alarm_deliveries`] or [`message::notice_deliveries`]: due at
/// once, with no attempt yet. Returns 1, or 0 when the same step or notice is already on its way to the target.
fn insert_delivery(
    conn: &Connection,
    new: &NewDelivery,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let (alarm, step, notice) = match new.tells {
        Tells::AlarmStep { alarm, step } => (Some(alarm), Some(step), None),
        Tells::Notice(notice) => (None, None, Some(notice)),
    };
    Ok(conn.execute_cached(
        "INSERT OR IGNORE INTO deliveries
             (id, alarm_id, alarm_log_id, notice_id, target_id, audience, created_at, attempts,
              next_attempt_at, payload)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?7, ?8)",
        params![
            new.id.to_string(),
            alarm,
            step,
            notice,
            new.target,
            new.audience,
            stamp(now),
            new.payload
        ],
    )?)
}

impl SqliteStore {
    /// Adds a place to send a school's alarms and safeguarding notices. It hears of alarm steps from `now`
    /// on.
    pub fn add_notification_target(
        &self,
        school: &SchoolId,
        target: &NewTarget,
        now: DateTime<Utc>,
    ) -> Result<NotificationTarget, StoreError> {
        target
            .checked()
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.insert_target(school, None, target, now)
    }

    /// Adds a visit's own responsible contact: told of every alarm of that visit, and of nothing else.
    pub fn add_visit_contact_target(
        &self,
        visit: &VisitId,
        target: &NewTarget,
        now: DateTime<Utc>,
    ) -> Result<NotificationTarget, StoreError> {
        let school = visit_school(&self.conn(), visit)?;
        let contact = NewTarget {
            wants: WantedLevels::NONE,
            roles: Vec::new(),
            ..target.clone()
        };
        self.insert_target(&school, Some(visit), &contact, now)
    }

    fn insert_target(
        &self,
        school: &SchoolId,
        visit: Option<&VisitId>,
        target: &NewTarget,
        now: DateTime<Utc>,
    ) -> Result<NotificationTarget, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let added = insert_target_in(&tx, school, visit, target, now)?;
        tx.commit()?;
        Ok(added)
    }

    /// Removes a school's target: nothing more is sent to it (what was waiting is dropped at the next
    /// pass), and its past deliveries stay readable. Refused for another school's target or one already
    /// removed.
    pub fn remove_notification_target(
        &self,
        school: &SchoolId,
        id: i64,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<NotificationTarget, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let changed = tx.execute_cached(
            "UPDATE notification_targets SET removed_at = ?3, removed_by = ?4
             WHERE id = ?1 AND school_id = ?2 AND removed_at IS NULL",
            params![id, school.as_str(), stamp(now), by],
        )?;
        if changed == 0 {
            return Err(StoreError::Invalid(format!(
                "there is no notification target {id} to remove"
            )));
        }
        let removed = tx.query_row_cached(
            "SELECT * FROM notification_targets WHERE id = ?1",
            [id],
            target_from_row,
        )?;
        tx.commit()?;
        Ok(removed)
    }

    /// Every school's notification targets, removed ones included, oldest first.
    pub fn notification_targets(&self) -> Result<Vec<NotificationTarget>, StoreError> {
        rows(
            &self.conn(),
            "SELECT * FROM notification_targets ORDER BY id",
            [],
            target_from_row,
        )
    }

    /// A school's targets, its visits' contacts and removed ones included, oldest first.
    pub fn school_notification_targets(
        &self,
        school: &SchoolId,
    ) -> Result<Vec<NotificationTarget>, StoreError> {
        rows(
            &self.conn(),
            "SELECT * FROM notification_targets WHERE school_id = ?1 ORDER BY id",
            [school.as_str()],
            target_from_row,
        )
    }

    /// How many live school-wide targets a school has (its visits' own contacts not counted): none means
    /// nobody outside the board can be told of anything, and the board and admin pages say so.
    pub fn live_school_target_count(&self, school: &SchoolId) -> Result<usize, StoreError> {
        live_school_target_count_in(&self.conn(), school)
    }

    /// Every notification of an alarm, in the order they were recorded.
    pub fn deliveries_for_alarm(&self, alarm: i64) -> Result<Vec<Delivery>, StoreError> {
        rows(
            &self.conn(),
            "SELECT * FROM deliveries WHERE alarm_id = ?1 ORDER BY rowid",
            [alarm],
            delivery_from_row,
        )
    }

    /// Every notification of a safeguarding notice, in the order they were recorded.
    pub fn deliveries_for_notice(&self, notice: i64) -> Result<Vec<Delivery>, StoreError> {
        rows(
            &self.conn(),
            "SELECT * FROM deliveries WHERE notice_id = ?1 ORDER BY rowid",
            [notice],
            delivery_from_row,
        )
    }

    /// Records a delivery, due at once and with its payload, for every step of an alarm nobody is handling
    /// yet and every live target of the alarm's school (or the alarm's visit) that wants it, has none yet,
    /// and existed when the step happened; then the same for safeguarding notices and the targets of their
    /// role.
    pub(crate) fn record_deliveries(
        &self,
        now: DateTime<Utc>,
        smtp_from: Option<&str>,
    ) -> Result<usize, StoreError> {
        let from = smtp_from.unwrap_or(UNCONFIGURED_FROM);
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // A step is planned once, for the targets that existed when it happened, so only alarms with a
        // step since the last planning need a look: with thousands of alarms open, planning costs what
        // is new, not what is open. (Steps are never deleted, and this transaction holds the writer, so
        // no step below `through` can appear after it.)
        let planned = self.alarm_steps_planned.load(Ordering::Acquire);
        let through: i64 = tx
            .prepare_cached("SELECT COALESCE(MAX(id), 0) FROM alarm_log")?
            .query_row([], |row| row.get(0))?;
        let open: Vec<(Alarm, String)> = {
            let mut stmt = tx.prepare_cached(
                "SELECT a.*, v.school_id AS school_id FROM alarms a JOIN visits v ON v.id = a.visit_id
                 WHERE a.acknowledged_at IS NULL AND a.closed_at IS NULL
                   AND a.id IN (SELECT alarm_id FROM alarm_log WHERE id > ?1)
                 ORDER BY a.id",
            )?;
            let rows = stmt
                .query_map([planned], |row| {
                    Ok((alarm_from_row(row)?, row.get("school_id")?))
                })?
                .collect::<Result<_, _>>()?;
            rows
        };
        let mut recorded = 0;
        for (alarm, school) in open {
            let school: SchoolId = parse_id(&school)?;
            let targets: Vec<NotificationTarget> = live_targets_of(&tx, &school)?
                .into_iter()
                .filter(|t| t.visit.as_ref().is_none_or(|v| *v == alarm.visit))
                .collect();
            if targets.is_empty() {
                continue;
            }
            let history = history(&tx, alarm.id)?;
            let existing: HashSet<(i64, i64)> = {
                let mut stmt = tx.prepare_cached(
                    "SELECT alarm_log_id, target_id FROM deliveries WHERE alarm_id = ?1",
                )?;
                let pairs = stmt
                    .query_map([alarm.id], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<_, _>>()?;
                pairs
            };
            let plan = message::plan_alarm_deliveries(&history, &targets, &existing);
            if plan.is_empty() {
                continue;
            }
            let visit = visit_body(&tx, &alarm.visit)?;
            let (school, _) = school_and_policy(&tx, &school)?;
            let written =
                message::alarm_deliveries(&alarm, &history, plan, (&visit, &school), from, now)?;
            for new in &written {
                recorded += insert_delivery(&tx, new, now)?;
            }
        }
        recorded += record_notice_deliveries(&tx, now, from)?;
        tx.commit()?;
        self.alarm_steps_planned
            .fetch_max(through, Ordering::AcqRel);
        Ok(recorded)
    }

    /// Stops what is still waiting for an alarm someone is handling (acknowledged or closed) or for a
    /// removed target, noting each alarm step's in the alarm's log. Returns how many.
    pub(crate) fn cancel_acknowledged_deliveries(
        &self,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        self.in_transaction(|tx| {
            let stopped: Vec<(String, Option<i64>, u32, NotificationTarget)> = {
                let mut stmt = tx.prepare_cached(
                    "SELECT d.id AS delivery_id, d.alarm_id, d.attempts, t.*
                     FROM deliveries d
                     LEFT JOIN alarms a ON a.id = d.alarm_id
                     JOIN notification_targets t ON t.id = d.target_id
                     WHERE d.next_attempt_at IS NOT NULL
                       AND (a.acknowledged_at IS NOT NULL OR a.closed_at IS NOT NULL
                            OR t.removed_at IS NOT NULL)",
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
                tx.execute_cached(
                    "UPDATE deliveries SET next_attempt_at = NULL WHERE id = ?1",
                    [id],
                )?;
                let Some(alarm) = alarm else {
                    continue;
                };
                let detail = message::cancelled_detail(target, *attempts);
                log(tx, *alarm, now, step::NOTIFICATION_CANCELLED, None, &detail)?;
            }
            Ok(stopped.len())
        })
    }

    /// Takes every delivery due at `now` (of an alarm nobody is handling yet, or of a notice) to a live
    /// target and holds it until `until`, so no other worker sends it meanwhile (and one cut off mid-send
    /// is tried again then).
    pub(crate) fn claim_due_deliveries(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        self.in_transaction(|tx| {
            let due: Vec<DueDelivery> = {
                let mut stmt = tx.prepare_cached(
                    "SELECT d.id AS delivery_id, d.alarm_id, d.attempts, d.payload, t.*
                     FROM deliveries d
                     LEFT JOIN alarms a ON a.id = d.alarm_id
                     JOIN notification_targets t ON t.id = d.target_id
                     WHERE d.next_attempt_at IS NOT NULL AND d.next_attempt_at <= ?1
                       AND a.acknowledged_at IS NULL AND a.closed_at IS NULL AND t.removed_at IS NULL
                     ORDER BY d.next_attempt_at, d.rowid",
                )?;
                let rows = stmt
                    .query_map([stamp(now)], |row| {
                        Ok(DueDelivery {
                            id: parsed_column(row, "delivery_id", || bad("delivery id"))?,
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
                tx.execute_cached(
                    "UPDATE deliveries SET next_attempt_at = ?2 WHERE id = ?1",
                    params![delivery.id.to_string(), stamp(until)],
                )?;
            }
            Ok(due)
        })
    }

    /// Writes down one attempt on the delivery, and for an alarm step in the alarm's log.
    pub(crate) fn record_attempt(
        &self,
        delivery: &DueDelivery,
        now: DateTime<Utc>,
        attempt: Attempt,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let id = delivery.id.to_string();
        let (what, detail) = match attempt {
            Attempt::Delivered { detail } => {
                tx.execute_cached(
                    "UPDATE deliveries SET attempts = attempts + 1, delivered_at = ?2,
                         next_attempt_at = NULL
                     WHERE id = ?1",
                    params![id, stamp(now)],
                )?;
                (step::NOTIFIED, detail)
            }
            Attempt::Failed {
                error,
                next_attempt_at,
                detail,
            } => {
                // An alarm acknowledged, or a target removed, while this attempt was under way gets no
                // further try.
                tx.execute_cached(
                    "UPDATE deliveries SET attempts = attempts + 1, last_error = ?2,
                         next_attempt_at = CASE
                             WHEN NOT EXISTS (SELECT 1 FROM alarms WHERE id = deliveries.alarm_id
                                              AND (acknowledged_at IS NOT NULL OR closed_at IS NOT NULL))
                              AND NOT EXISTS (SELECT 1 FROM notification_targets
                                              WHERE id = deliveries.target_id AND removed_at IS NOT NULL)
                             THEN ?3 END
                     WHERE id = ?1",
                    params![id, error, stamp(next_attempt_at)],
                )?;
                (step::NOTIFICATION_FAILED, detail)
            }
        };
        if let Some(alarm) = delivery.alarm {
            log(&tx, alarm, now, what, None, &detail)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// When the next waiting delivery is due.
    pub(crate) fn next_delivery_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let next: Option<String> = self.conn().query_row_cached(
            "SELECT MIN(next_attempt_at) FROM deliveries WHERE next_attempt_at IS NOT NULL",
            [],
            |r| r.get(0),
        )?;
        Ok(time(next)?)
    }
}

/// Adds a notification target on `tx`, inside a transaction the caller holds (so a requested visit and
/// its responsible contact's target are stored together or not at all); the caller commits.
pub(crate) fn insert_target_in(
    tx: &Connection,
    school: &SchoolId,
    visit: Option<&VisitId>,
    target: &NewTarget,
    now: DateTime<Utc>,
) -> Result<NotificationTarget, StoreError> {
    let known: bool = tx.query_row_cached(
        "SELECT EXISTS (SELECT 1 FROM schools WHERE id = ?1)",
        [school.as_str()],
        |r| r.get(0),
    )?;
    if !known {
        return Err(StoreError::Invalid(format!("unknown school {school}")));
    }
    let taken: bool = tx.query_row_cached(
        "SELECT EXISTS (SELECT 1 FROM notification_targets
                        WHERE school_id = ?1 AND kind = ?2 AND address = ?3 AND removed_at IS NULL
                          AND COALESCE(visit_id, '') = ?4)",
        params![
            school.as_str(),
            target.kind.as_str(),
            target.address,
            visit.map_or("", |v| v.as_str())
        ],
        |r| r.get(0),
    )?;
    if taken {
        return Err(StoreError::Invalid(format!(
            "{} is already a notification target of {school}",
            target.address
        )));
    }
    let roles: Vec<String> = target.roles.iter().map(|r| role_name(*r)).collect();
    tx.execute_cached(
        "INSERT INTO notification_targets
             (school_id, kind, address, secret, name, wants_board, wants_authoriser, wants_further,
              roles, visit_id, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            school.as_str(),
            target.kind.as_str(),
            target.address,
            target.secret.as_ref().map(Secret::expose),
            target.name,
            target.wants.board,
            target.wants.authoriser,
            target.wants.further,
            serde_json::to_string(&roles)?,
            visit.map(VisitId::as_str),
            stamp(now)
        ],
    )?;
    let id = tx.last_insert_rowid();
    let added = tx.query_row_cached(
        "SELECT * FROM notification_targets WHERE id = ?1",
        [id],
        target_from_row,
    )?;
    Ok(added)
}

/// Records a delivery for every safeguarding notice and every live target of its school whose roles include
/// the notice's: targets that existed when it was raised, or, for a notice nobody could be sent yet (no such
/// target then), any added within [`NOTICE_WAITS_FOR_A_TARGET`] of it, so the concern still reaches them.
fn record_notice_deliveries(
    conn: &Connection,
    now: DateTime<Utc>,
    from: &str,
) -> Result<usize, StoreError> {
    let recent: Vec<(Notice, String, bool)> = {
        let mut stmt = conn.prepare_cached(
            "SELECT n.*, v.school_id AS school_id,
                    EXISTS (SELECT 1 FROM deliveries d WHERE d.notice_id = n.id) AS sent_any
             FROM notices n JOIN visits v ON v.id = n.visit_id
             WHERE n.raised_at >= ?1 ORDER BY n.id",
        )?;
        let rows = stmt
            .query_map([(now - NOTICE_WAITS_FOR_A_TARGET).to_rfc3339()], |row| {
                Ok((
                    notice_from_row(row)?,
                    row.get("school_id")?,
                    row.get("sent_any")?,
                ))
            })?
            .collect::<Result<_, _>>()?;
        rows
    };
    let mut recorded = 0;
    for (notice, school, sent_any) in recent {
        let school: SchoolId = parse_id(&school)?;
        let targets = live_targets_of(conn, &school)?;
        let existing: HashSet<i64> = {
            let mut stmt =
                conn.prepare_cached("SELECT target_id FROM deliveries WHERE notice_id = ?1")?;
            let ids = stmt
                .query_map([notice.id], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            ids
        };
        let waiting = message::plan_notice_deliveries(&notice, sent_any, &targets, &existing);
        if waiting.is_empty() {
            continue;
        }
        let visit = visit_body(conn, &notice.visit)?;
        let (school, _) = school_and_policy(conn, &school)?;
        let raised_by = staff_member(conn, &notice.staff)?
            .map_or_else(|| notice.staff.to_string(), |m: StaffMember| m.name);
        let message = NoticeMessage {
            notice,
            raised_by,
            visit,
            school,
        };
        for new in message::notice_deliveries(&message, &waiting, from, now)? {
            recorded += insert_delivery(conn, &new, now)?;
        }
    }
    Ok(recorded)
}
