//! The event envelope: one lifecycle event as recorded on a device, with the identity the office stores it by.

use chrono::{DateTime, Datelike, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{DeviceId, DeviceSeq, EventId, VisitId};
use crate::lifecycle::{BriefingCheck, Recorded, VisitEvent};

/// The longest free text an event may carry (notes, write-up fields).
pub const MAX_TEXT_CHARS: usize = 4_000;
/// The most staff one event may name.
pub const MAX_STAFF_NAMED: usize = 8;
/// The most alerts one stand-down may name.
pub const MAX_ALERTS_NAMED: usize = 16;
/// How far a phone's clock may be from the office's before the office corrects the phone's times by the
/// difference it measured.
pub const ALLOWED_CLOCK_SKEW: TimeDelta = TimeDelta::minutes(2);

/// One event as recorded on a device. Immutable: a correction is a new event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct EventEnvelope {
    /// UUIDv7 made on the device; the office stores each id once.
    pub id: EventId,
    pub device: DeviceId,
    /// The device's own increasing sequence number, from 1.
    pub seq: DeviceSeq,
    pub visit: VisitId,
    /// The device's wall-clock time when the event was recorded (it may be wrong; the office also keeps
    /// its own receive time).
    pub recorded_at: DateTime<Utc>,
    pub event: VisitEvent,
}

/// An event whose values are out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("recorded_at {0} is not a plausible time (years 2020 to 2100)")]
    ImplausibleTime(DateTime<Utc>),
    #[error("a text field is longer than {MAX_TEXT_CHARS} characters")]
    TextTooLong,
    #[error("an event may name at most {MAX_STAFF_NAMED} staff")]
    TooManyStaff,
    #[error("an event may name at most {MAX_ALERTS_NAMED} alerts")]
    TooManyAlerts,
    #[error("a checklist has at most {0} items")]
    TooManyTicks(usize),
}

impl EventEnvelope {
    /// Checks values a type cannot: lengths and plausible times. The office refuses events that fail this;
    /// the phone checks before recording.
    pub fn validate(&self) -> Result<(), EnvelopeError> {
        let year = self.recorded_at.year();
        if !(2020..=2100).contains(&year) {
            return Err(EnvelopeError::ImplausibleTime(self.recorded_at));
        }
        if let Some(time) = event_times(&self.event)
            .into_iter()
            .find(|t| !(2020..=2100).contains(&t.year()))
        {
            return Err(EnvelopeError::ImplausibleTime(time));
        }
        if event_texts(&self.event)
            .iter()
            .any(|text| text.chars().count() > MAX_TEXT_CHARS)
        {
            return Err(EnvelopeError::TextTooLong);
        }
        match &self.event {
            VisitEvent::ArrivedTogether { staff, .. } | VisitEvent::VisitStarted { staff, .. }
                if staff.len() > MAX_STAFF_NAMED =>
            {
                return Err(EnvelopeError::TooManyStaff)
            }
            VisitEvent::DuressStoodDown { alerts, .. }
            | VisitEvent::AlertsClosed { alerts, .. }
                if alerts.len() > MAX_ALERTS_NAMED =>
            {
                return Err(EnvelopeError::TooManyAlerts)
            }
            VisitEvent::BriefingRead { ticked, .. } if ticked.len() > BriefingCheck::ALL.len() => {
                return Err(EnvelopeError::TooManyTicks(BriefingCheck::ALL.len()))
            }
            _ => {}
        }
        Ok(())
    }
}

fn event_times(event: &VisitEvent) -> Vec<DateTime<Utc>> {
    match event {
        VisitEvent::Departed {
            expected_arrival,
            expected_end,
            ..
        } => vec![*expected_arrival, *expected_end],
        VisitEvent::CheckInMissed { due_at, .. } => vec![*due_at],
        VisitEvent::RunningLate {
            expected_arrival, ..
        } => vec![*expected_arrival],
        VisitEvent::Rescheduled { agreed_time, .. } => vec![*agreed_time],
        VisitEvent::DuressStoodDown { alerts, .. } | VisitEvent::AlertsClosed { alerts, .. } => {
            alerts.iter().map(|alert| alert.raised_at).collect()
        }
        _ => Vec::new(),
    }
}

fn event_texts(event: &VisitEvent) -> Vec<&str> {
    match event {
        VisitEvent::DuressStoodDown { note, .. }
        | VisitEvent::Cancelled { note, .. }
        | VisitEvent::AlertsClosed { note, .. } => vec![note],
        VisitEvent::Declined { reason, .. }
        | VisitEvent::AuthorisationWithdrawn { reason, .. }
        | VisitEvent::CalledOff { reason, .. } => vec![reason],
        VisitEvent::WrittenUp { write_up, .. } => {
            let mut texts = vec![
                write_up.seen.as_str(),
                write_up.discussed.as_str(),
                write_up.agreements.as_str(),
            ];
            texts.extend(write_up.incident.as_deref());
            texts
        }
        _ => Vec::new(),
    }
}

impl Recorded for EventEnvelope {
    fn event(&self) -> &VisitEvent {
        &self.event
    }

    fn at(&self) -> DateTime<Utc> {
        self.recorded_at
    }

    fn tie_break(&self) -> (String, u64) {
        (self.device.to_string(), self.seq.get())
    }

    fn event_id(&self) -> Option<EventId> {
        Some(self.id)
    }
}

/// When the office counts an event as having happened: the phone's recorded time, corrected by the phone's
/// clock offset when the office measured one beyond [`ALLOWED_CLOCK_SKEW`] (the phone's time at sending
/// against the office's time at receiving), and never later than the office received it. So a phone with a
/// wrong clock, or an event stamped in 2099, can neither push a deadline out nor make "last heard" later
/// than the truth; an event recorded offline keeps its (corrected) earlier time, so the order of a day
/// without signal survives.
pub fn trusted_time(
    recorded_at: DateTime<Utc>,
    device_time_at_send: DateTime<Utc>,
    received_at: DateTime<Utc>,
) -> DateTime<Utc> {
    let offset = device_time_at_send - received_at;
    let corrected = if offset.abs() > ALLOWED_CLOCK_SKEW {
        recorded_at
            .checked_sub_signed(offset)
            .unwrap_or(received_at)
    } else {
        recorded_at
    };
    corrected.min(received_at)
}

/// An event with the time the office trusts for it (see [`trusted_time`]); what phone and office replay, so
/// that both build the same state.
#[derive(Debug, Clone, Copy)]
pub struct TrustedEvent<'a> {
    pub envelope: &'a EventEnvelope,
    pub at: DateTime<Utc>,
}

impl Recorded for TrustedEvent<'_> {
    fn event(&self) -> &VisitEvent {
        &self.envelope.event
    }

    fn at(&self) -> DateTime<Utc> {
        self.at
    }

    fn tie_break(&self) -> (String, u64) {
        self.envelope.tie_break()
    }

    fn clock_shift(&self) -> TimeDelta {
        self.at - self.envelope.recorded_at
    }

    fn event_id(&self) -> Option<EventId> {
        Some(self.envelope.id)
    }
}
