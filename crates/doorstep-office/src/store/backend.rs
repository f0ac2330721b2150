//! The store's areas as traits, so the office's engines run on either backend: the embedded SQLite
//! store ([`SqliteStore`], the default) or PostgreSQL ([`super::postgres::PgStore`], for a trust that
//! outgrows one machine).
//!
//! Here: [`Visits`] (schools, staff, pupils, visits and their events, a phone's batch checked and stored,
//! an office decision, what a phone is sent back at its sync, and which visits are being watched) and
//! [`Alarms`] (raising, escalating, noting renewed contact, acknowledging and closing, with the log of each
//! step); beside them [`super::deliveries::Deliveries`] (what the notifier needs),
//! [`super::audit_trail::AuditTrail`] (the audit log), [`super::sign_ins::SignIns`] (office sign-ins and
//! sessions), [`super::phones::Phones`] (enrolment and each phone's credentials) and
//! [`super::people::People`] (staff, pupils, absences and the school's settings) and
//! [`super::requests::Requests`] (requested visits, concerns). The office's pages and sync reach them
//! through [`super::OfficeStore`], whichever store it runs on.
//!
//! The methods return futures so a backend with an async driver can await its database; the SQLite store
//! does its blocking work through [`engine_work`], as the engine always did.
//!
//! Rules both backends apply are pure functions called by each: the lifecycle's replay of a visit's events
//! (`core::lifecycle::replay`), who may be assigned to a visit ([`dbs_refusal`]), and the words and levels
//! of each alarm step ([`crate::alarms::raised_detail`], [`crate::alarms::escalation_step`]).

use std::future::Future;

use chrono::{DateTime, Utc};
use doorstep_core::domain::{Pupil, School, StaffMember, Visit};
use doorstep_core::event::EventEnvelope;
use doorstep_core::ids::{DeviceId, DeviceSeq, SchoolId, StaffId, VisitId};
use doorstep_core::lifecycle::VisitState;
use doorstep_core::lifecycle::{AlarmOutcome, Command};
use doorstep_core::policy::Policy;

use doorstep_core::reconcile::HeldSeq;

use super::postgres::PgStore;
use super::{
    engine_work, store_area, Device, Holdings, IngestError, Ingested, SqliteStore, StoreError,
    StoredEvent,
};
use crate::alarms::{Alarm, AlarmLogEntry, Closing, NewAlarm};
use crate::audit::NewEntry;
use crate::versions::{VisitChange, VisitVersion};

/// Schools, staff, pupils and visits with their events: what the escalation engine reads of a visit, and
/// what a test or a seed writes first.
pub trait Visits: Send + Sync + 'static {
    fn add_school(
        &self,
        school: &School,
        policy: &Policy,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn add_staff(
        &self,
        school: &SchoolId,
        member: &StaffMember,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn add_pupil(
        &self,
        school: &SchoolId,
        pupil: &Pupil,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Stores a requested visit, refused when someone assigned may not visit homes ([`dbs_refusal`]).
    fn add_visit(&self, visit: &Visit) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Stores events that the ingest's checks have passed, each once (a resent one is skipped), as
    /// received and trusted at `now`, and rebuilds each visit they touch through the core lifecycle. Returns
    /// how many were new.
    fn store_checked_events(
        &self,
        events: &[EventEnvelope],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// Checks a batch from `device` (as its token identified it) with the ingest's rules
    /// ([`super::checks`]) and stores its new events, all or nothing, raising in the same transaction
    /// the duress alarms its alerts call for (see [`SqliteStore::ingest_raising`]).
    fn ingest(
        &self,
        batch: Batch<'_>,
    ) -> impl Future<Output = Result<Ingested, IngestError>> + Send;

    /// Records an office decision on `visit` (`command`: authorise, decline, withdraw, call off,
    /// reschedule, update the briefing) as the office's own events, with its audit entry and, for a change
    /// to the visit itself, a new version of it, all or nothing. Refused as the lifecycle refuses it, and
    /// authorising while the school has no code phrases.
    fn record_office_event(
        &self,
        visit: &VisitId,
        command: &Command,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<EventEnvelope, StoreError>> + Send;

    /// The highest sequence number stored from `device`: what its phone may stop resending.
    fn acknowledged_through(
        &self,
        device: &DeviceId,
    ) -> impl Future<Output = Result<Option<DeviceSeq>, StoreError>> + Send;

    /// What `device`'s phone should hold at `now`: everything, or only what changed since `cursor` (one this
    /// store gave the phone) when nothing but events changed (see [`SqliteStore::holdings_since`]).
    fn holdings_since(
        &self,
        device: &Device,
        now: DateTime<Utc>,
        cursor: Option<&str>,
    ) -> impl Future<Output = Result<Holdings, StoreError>> + Send;

    /// Visits the escalation engine must watch: under way, or with an alarm nobody has acknowledged.
    fn visits_to_watch(&self) -> impl Future<Output = Result<Vec<VisitId>, StoreError>> + Send;

    /// A visit, its state, and its school's policy.
    fn visit_with_policy(
        &self,
        visit: &VisitId,
    ) -> impl Future<Output = Result<Option<(Visit, VisitState, Policy)>, StoreError>> + Send;

    /// A visit and its state as the office knows it.
    fn visit(
        &self,
        visit: &VisitId,
    ) -> impl Future<Output = Result<Option<(Visit, VisitState)>, StoreError>> + Send;

    /// Every visit's id, in agreed-time order.
    fn visit_ids(&self) -> impl Future<Output = Result<Vec<VisitId>, StoreError>> + Send;

    /// Every event of a visit, in the order the office received them.
    fn events_for_visit(
        &self,
        visit: &VisitId,
    ) -> impl Future<Output = Result<Vec<StoredEvent>, StoreError>> + Send;

    /// The school's visits for the live board: those agreed in `[from, to)`, plus any under way or with an
    /// alarm nobody has acknowledged whatever their date, in agreed-time order.
    fn visits_for_board(
        &self,
        school: &SchoolId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<(Visit, VisitState)>, StoreError>> + Send;

    /// The school a visit belongs to, if the visit exists.
    fn school_of_visit(
        &self,
        visit: &VisitId,
    ) -> impl Future<Output = Result<Option<SchoolId>, StoreError>> + Send;

    /// The visits of a school whose staff have all left but whose write-up has not reached the office,
    /// with when the last of them left.
    fn visits_left_without_write_up(
        &self,
        school: &SchoolId,
    ) -> impl Future<Output = Result<Vec<(VisitId, DateTime<Utc>)>, StoreError>> + Send;

    /// Makes `change` to `visit` as `by` at `now`: checked by the lifecycle, recorded as the office's
    /// event with its audit entry, the visit the phones receive rewritten, and kept as a new version, all
    /// or nothing. A refusal is [`StoreError::Invalid`] with words for the person.
    fn change_visit(
        &self,
        visit: &VisitId,
        by: &StaffId,
        change: VisitChange,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<VisitVersion, StoreError>> + Send;

    /// Every version of a visit, oldest first.
    fn visit_versions(
        &self,
        visit: &VisitId,
    ) -> impl Future<Output = Result<Vec<VisitVersion>, StoreError>> + Send;

    /// The events from `device` numbered `from..=through`, by number: what a restored phone asks.
    fn held_in_range(
        &self,
        device: &DeviceId,
        from: DeviceSeq,
        through: DeviceSeq,
    ) -> impl Future<Output = Result<Vec<HeldSeq>, StoreError>> + Send;

    /// Whether the store holds no school yet.
    fn is_empty(&self) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Alarms as the escalation engine raises and escalates them. Each write is decided under the store's
/// own lock on the alarm or its visit, so two offices sharing one database, both seeing the same moment
/// come due, make each step once between them.
pub trait Alarms: Send + Sync + 'static {
    /// Every alarm of a visit, oldest first.
    fn alarms_for_visit(
        &self,
        visit: &VisitId,
    ) -> impl Future<Output = Result<Vec<Alarm>, StoreError>> + Send;

    /// Raises an alarm unless the same one (visit, kind, about, due) exists; returns it if this call
    /// raised it.
    fn raise_alarm(
        &self,
        new: NewAlarm<'_>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<Alarm>, StoreError>> + Send;

    /// Takes an alarm, as `seen`, one step louder ([`crate::alarms::escalation_step`]); `None` when it is
    /// no longer as seen (someone else escalated it, or it was acknowledged, closed or heard from since).
    fn escalate_alarm(
        &self,
        seen: &Alarm,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<Alarm>, StoreError>> + Send;

    /// Notes that the staff were heard from again (once): the alarm stops escalating.
    fn note_contact_resumed(
        &self,
        id: i64,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A named person says they are handling an alarm: it stops escalating and its waiting notifications
    /// are dropped. Refused, changing nothing, when there is no such alarm, the name is empty, or someone
    /// acknowledged it already.
    fn acknowledge_alarm(
        &self,
        id: i64,
        by: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Alarm, StoreError>> + Send;

    /// Closes an acknowledged alarm with how it ended (and a note, if given); a phone's duress alarm is
    /// stood down on the phones in the same transaction (with every phone alarm that ends). Refused,
    /// changing nothing, when it is not acknowledged yet or already closed.
    fn close_alarm(
        &self,
        id: i64,
        by: &StaffId,
        by_name: &str,
        outcome: AlarmOutcome,
        note: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Closing, StoreError>> + Send;

    /// The history of every alarm of a visit, in order.
    fn alarm_log(
        &self,
        visit: &VisitId,
    ) -> impl Future<Output = Result<Vec<AlarmLogEntry>, StoreError>> + Send;

    /// One alarm, if there is one with that id.
    fn alarm(&self, id: i64) -> impl Future<Output = Result<Option<Alarm>, StoreError>> + Send;

    /// Every alarm not yet closed (acknowledged or not), oldest first.
    fn open_alarms(&self) -> impl Future<Output = Result<Vec<Alarm>, StoreError>> + Send;

    /// [`Alarms::acknowledge_alarm`], with `audit` appended to the audit log in the same transaction.
    fn acknowledge_alarm_audited(
        &self,
        id: i64,
        by: &str,
        audit: Option<&NewEntry>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Alarm, StoreError>> + Send;

    /// [`Alarms::close_alarm`], with `audit` appended to the audit log in the same transaction.
    #[allow(clippy::too_many_arguments)]
    fn close_alarm_audited(
        &self,
        id: i64,
        by: &StaffId,
        by_name: &str,
        outcome: AlarmOutcome,
        note: &str,
        audit: Option<&NewEntry>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Closing, StoreError>> + Send;
}

/// A phone's batch as the sync hands it to the store: from `device` (as its token identified it), its
/// `events`, the phone's clock when it sent them, and the office's.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    pub device: &'a Device,
    pub events: &'a [EventEnvelope],
    pub device_time: DateTime<Utc>,
    pub now: DateTime<Utc>,
}

/// Why `member` may not be assigned to a visit under `policy`, if they may not: the policy asks for an
/// appropriate DBS check and they have none.
pub fn dbs_refusal(policy: &Policy, member: &StaffMember) -> Option<String> {
    (policy.dbs_check_required && !member.may_visit_homes()).then(|| {
        format!(
            "{} has no appropriate DBS check and cannot be assigned",
            member.name
        )
    })
}

store_area! {
    impl Visits {
        fn add_school(&self, school: &School, policy: &Policy) -> Result<(), StoreError>;
        fn add_staff(&self, school: &SchoolId, member: &StaffMember) -> Result<(), StoreError>;
        fn add_pupil(&self, school: &SchoolId, pupil: &Pupil) -> Result<(), StoreError>;
        fn add_visit(&self, visit: &Visit) -> Result<(), StoreError>;
        fn store_checked_events(
            &self,
            events: &[EventEnvelope],
            now: DateTime<Utc>,
        ) -> Result<usize, StoreError>;
        fn record_office_event(
            &self,
            visit: &VisitId,
            command: &Command,
            now: DateTime<Utc>,
        ) -> Result<EventEnvelope, StoreError>;
        fn acknowledged_through(&self, device: &DeviceId) -> Result<Option<DeviceSeq>, StoreError>;
        fn holdings_since(
            &self,
            device: &Device,
            now: DateTime<Utc>,
            cursor: Option<&str>,
        ) -> Result<Holdings, StoreError>;
        fn visits_to_watch(&self) -> Result<Vec<VisitId>, StoreError>;
        fn visit_with_policy(
            &self,
            visit: &VisitId,
        ) -> Result<Option<(Visit, VisitState, Policy)>, StoreError>;
        fn visit(&self, visit: &VisitId) -> Result<Option<(Visit, VisitState)>, StoreError>;
        fn visit_ids(&self) -> Result<Vec<VisitId>, StoreError>;
        fn events_for_visit(&self, visit: &VisitId) -> Result<Vec<StoredEvent>, StoreError>;
        fn visits_for_board(
            &self,
            school: &SchoolId,
            from: DateTime<Utc>,
            to: DateTime<Utc>,
        ) -> Result<Vec<(Visit, VisitState)>, StoreError>;
        fn school_of_visit(&self, visit: &VisitId) -> Result<Option<SchoolId>, StoreError>;
        fn visits_left_without_write_up(
            &self,
            school: &SchoolId,
        ) -> Result<Vec<(VisitId, DateTime<Utc>)>, StoreError>;
        fn change_visit(
            &self,
            visit: &VisitId,
            by: &StaffId,
            change: VisitChange,
            now: DateTime<Utc>,
        ) -> Result<VisitVersion, StoreError>;
        fn visit_versions(&self, visit: &VisitId) -> Result<Vec<VisitVersion>, StoreError>;
        fn held_in_range(
            &self,
            device: &DeviceId,
            from: DeviceSeq,
            through: DeviceSeq,
        ) -> Result<Vec<HeldSeq>, StoreError>;
        fn is_empty(&self) -> Result<bool, StoreError>;
    }
    sqlite {
        async fn ingest(&self, batch: Batch<'_>) -> Result<Ingested, IngestError> {
            let (device, events) = (batch.device, batch.events);
            engine_work(|| self.ingest_raising(device, events, batch.device_time, batch.now))
        }
    }
    office {
        async fn ingest(&self, batch: Batch<'_>) -> Result<Ingested, IngestError> {
            match self {
                Self::Sqlite(store) => <SqliteStore as Visits>::ingest(store, batch).await,
                Self::Postgres(store) => <PgStore as Visits>::ingest(store, batch).await,
            }
        }
    }
}

store_area! {
    impl Alarms {
        fn alarms_for_visit(&self, visit: &VisitId) -> Result<Vec<Alarm>, StoreError>;
        fn raise_alarm(&self, new: NewAlarm<'_>, now: DateTime<Utc>) -> Result<Option<Alarm>, StoreError>;
        fn escalate_alarm(&self, seen: &Alarm, now: DateTime<Utc>) -> Result<Option<Alarm>, StoreError>;
        fn note_contact_resumed(&self, id: i64, now: DateTime<Utc>) -> Result<(), StoreError>;
        fn acknowledge_alarm(&self, id: i64, by: &str, now: DateTime<Utc>) -> Result<Alarm, StoreError>;
        fn close_alarm(
            &self,
            id: i64,
            by: &StaffId,
            by_name: &str,
            outcome: AlarmOutcome,
            note: &str,
            now: DateTime<Utc>,
        ) -> Result<Closing, StoreError>;
        fn alarm_log(&self, visit: &VisitId) -> Result<Vec<AlarmLogEntry>, StoreError>;
        fn alarm(&self, id: i64) -> Result<Option<Alarm>, StoreError>;
        fn open_alarms(&self) -> Result<Vec<Alarm>, StoreError>;
        fn acknowledge_alarm_audited(
            &self,
            id: i64,
            by: &str,
            audit: Option<&NewEntry>,
            now: DateTime<Utc>,
        ) -> Result<Alarm, StoreError>;
        fn close_alarm_audited(
            &self,
            id: i64,
            by: &StaffId,
            by_name: &str,
            outcome: AlarmOutcome,
            note: &str,
            audit: Option<&NewEntry>,
            now: DateTime<Utc>,
        ) -> Result<Closing, StoreError>;
    }
}
