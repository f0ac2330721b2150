//! The office's decisions on PostgreSQL: an office command on a visit (authorise, decline, withdraw, call
//! off, reschedule, update the briefing, stand an alert down) recorded as the office's own event with its
//! audit entry and, for a change to the visit itself, a new version of it; and closing an alarm, with the
//! stand-down its phone alert calls for. Each is decided under the visit's advisory lock, so two offices
//! deciding at once decide one after the other, the second on what the first left.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use doorstep_core::event::EventEnvelope;
use doorstep_core::ids::{DeviceId, DeviceSeq, EventId, StaffId, VisitId};
use doorstep_core::lifecycle::{self, AlarmOutcome, VisitState};

use super::audit::append_in;
use super::{
    alarm_from, alarm_in, execute, insert_event, lock_visit, log, query, query_one, query_opt,
    refresh_visit, school_from, school_of_visit, text, PgStore,
};
use crate::alarms::{
    acknowledged_detail, already_done, checked_closing, closed_detail, ended_by,
    not_acknowledged_yet, nothing_to_stand_down, step, Alarm, Closing,
};
use crate::audit::{Action, NewEntry};
use crate::store::{decision_detail, parse_id, StoreError, OFFICE_DEVICE};
use crate::versions::Change;

/// The transaction advisory lock the office's own events are numbered under (one numbering for every
/// visit, whichever office decides).
const LOCK_OFFICE_NUMBERS: &str = "SELECT pg_advisory_xact_lock(7304)";

/// Records `command` on `visit` as the office's events at `now`, with an audit entry for each decision,
/// inside the caller's transaction, which holds the visit's lock; returns the last event.
pub(super) async fn record_office_event_in(
    tx: &impl GenericClient,
    visit: &VisitId,
    command: &lifecycle::Command,
    now: DateTime<Utc>,
) -> Result<EventEnvelope, StoreError> {
    let row = query_opt(
        tx,
        "SELECT v.state, s.id, s.name, s.office_phone, s.policy, s.time_zone
             FROM visits v JOIN schools s ON s.id = v.school_id WHERE v.id = $1",
        &[&visit.as_str()],
    )
    .await?
    .ok_or_else(|| StoreError::Invalid(format!("unknown visit {visit}")))?;
    let state: VisitState = serde_json::from_str(&text(&row, "state")?)?;
    let (school, policy) = school_from(&row)?;
    // Without the school's own code phrases there is no discreet way to ask for help on the visit.
    if matches!(command, lifecycle::Command::Authorise { .. }) {
        policy
            .code_phrases()
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
    }
    let events = lifecycle::decide(&state, command, &policy, now)
        .map_err(|e| StoreError::Invalid(e.to_string()))?;
    execute(tx, LOCK_OFFICE_NUMBERS, &[]).await?;
    let next: i64 = query_one(
        tx,
        "SELECT COALESCE(MAX(seq), 0) + 1 AS next FROM events WHERE device_id = $1",
        &[&OFFICE_DEVICE],
    )
    .await?
    .try_get("next")?;
    let mut last = None;
    for (offset, event) in (0_i64..).zip(events) {
        let seq = u64::try_from(next + offset).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let envelope = EventEnvelope {
            id: EventId::new_v7(),
            device: DeviceId::parse(OFFICE_DEVICE)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            seq: DeviceSeq::new(seq).map_err(|e| StoreError::Invalid(e.to_string()))?,
            visit: visit.clone(),
            recorded_at: now,
            event,
        };
        insert_event(tx, &envelope, now, now).await?;
        if let Some(action) = Action::for_office_event(&envelope.event) {
            let entry = NewEntry::new(&school.id, envelope.event.actor(), action)
                .visit(visit)
                .detail(decision_detail(&envelope.event));
            append_in(tx, &entry, now).await?;
        }
        last = Some(envelope);
    }
    refresh_visit(tx, visit).await?;
    last.ok_or_else(|| StoreError::Invalid("the command caused no event".into()))
}

/// Keeps the visit as it now stands as its next version: `change`, by whom and when (`None` for a visit
/// not requested on the office's pages), the reason given, and the office's event that made it.
pub(super) async fn add_version(
    tx: &impl GenericClient,
    visit: &VisitId,
    by_at: Option<(&StaffId, DateTime<Utc>)>,
    (change, reason): (Change, &str),
    event: Option<EventId>,
) -> Result<u32, StoreError> {
    let row = query_one(
        tx,
        "INSERT INTO visit_versions (visit_id, version, at, by, change, reason, body, event_id)
             SELECT id, (SELECT COALESCE(MAX(version), 0) + 1 FROM visit_versions WHERE visit_id = $1),
                    $2, $3, $4, $5, body, $6
             FROM visits WHERE id = $1
         RETURNING version",
        &[
            &visit.as_str(),
            &by_at.map(|(_, at)| at.to_rfc3339()),
            &by_at.map(|(by, _)| by.as_str()),
            &change.name(),
            &reason,
            &event.map(|id| id.to_string()),
        ],
    )
    .await?;
    let version: i32 = row.try_get("version")?;
    u32::try_from(version).map_err(|_| StoreError::Corrupt(format!("version {version} of {visit}")))
}

impl PgStore {
    pub(super) async fn record_office_event_pg(
        &self,
        visit: &VisitId,
        command: &lifecycle::Command,
        now: DateTime<Utc>,
    ) -> Result<EventEnvelope, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        lock_visit(&tx, visit).await?;
        let envelope = record_office_event_in(&tx, visit, command, now).await?;
        if let Some(change) = Change::for_event(&envelope.event) {
            let by_at = Some((envelope.event.actor(), now));
            add_version(&tx, visit, by_at, (change, ""), Some(envelope.id)).await?;
        }
        tx.commit().await?;
        Ok(envelope)
    }

    pub(super) async fn close_alarm_pg(
        &self,
        id: i64,
        (by, by_name): (&StaffId, &str),
        (outcome, note): (AlarmOutcome, &str),
        audit: Option<&NewEntry>,
        now: DateTime<Utc>,
    ) -> Result<Closing, StoreError> {
        let (by_name, note) = checked_closing(by_name, note)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let visit: VisitId =
            match query_opt(&tx, "SELECT visit_id FROM alarms WHERE id = $1", &[&id]).await? {
                Some(row) => parse_id(&text(&row, "visit_id")?)?,
                None => return Err(StoreError::Invalid(format!("there is no alarm {id}"))),
            };
        lock_visit(&tx, &visit).await?;
        let alarm = alarm_in(&tx, id).await?;
        let (school, _) = school_of_visit(&tx, &visit).await?;
        already_done(
            &alarm,
            "closed",
            (&alarm.closed_by, alarm.closed_at),
            &school,
        )?;
        not_acknowledged_yet(&alarm)?;
        let mut closing = vec![alarm.clone()];
        let mut stand_down = None;
        if alarm.from_a_phone() {
            let command = lifecycle::Command::CloseAlerts {
                by: by.clone(),
                outcome,
                note: note.to_owned(),
            };
            match record_office_event_in(&tx, &visit, &command, now).await {
                Ok(envelope) => {
                    let others: Vec<Alarm> = query(
                        &tx,
                        "SELECT * FROM alarms WHERE visit_id = $1 AND kind = 'duress'
                             AND closed_at IS NULL AND id != $2 ORDER BY id",
                        &[&visit.as_str(), &id],
                    )
                    .await?
                    .iter()
                    .map(alarm_from)
                    .collect::<Result<_, _>>()?;
                    closing.extend(ended_by(&envelope, others));
                    stand_down = Some(envelope);
                }
                // The raiser stood it down from their phone already: there is nothing left to end there.
                Err(StoreError::Invalid(why)) if nothing_to_stand_down(&why) => {}
                Err(other) => return Err(other),
            }
        }
        let mut closed = Vec::with_capacity(closing.len());
        for alarm in closing {
            if alarm.acknowledged_at.is_none() {
                execute(
                    &tx,
                    "UPDATE alarms SET acknowledged_by = $2, acknowledged_at = $3 WHERE id = $1",
                    &[&alarm.id, &by_name, &now.to_rfc3339()],
                )
                .await?;
                let detail = acknowledged_detail(by_name);
                log(&tx, (alarm.id, now), (step::ACKNOWLEDGED, None, &detail)).await?;
            }
            execute(
                &tx,
                "UPDATE alarms SET closed_by = $2, closed_at = $3, outcome = $4, close_note = $5
                     WHERE id = $1",
                &[
                    &alarm.id,
                    &by_name,
                    &now.to_rfc3339(),
                    &outcome.as_str(),
                    &(!note.is_empty()).then_some(note),
                ],
            )
            .await?;
            let detail = closed_detail(by_name, outcome, stand_down.is_some());
            log(&tx, (alarm.id, now), (step::CLOSED, None, &detail)).await?;
            closed.push(alarm_in(&tx, alarm.id).await?);
        }
        if let Some(entry) = audit {
            append_in(&tx, entry, now).await?;
        }
        tx.commit().await?;
        Ok(Closing {
            alarms: closed,
            stand_down,
        })
    }
}
