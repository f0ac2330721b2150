//! The event envelope: one lifecycle event as recorded on a device, with the identity the office stores it by.

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{DeviceId, DeviceSeq, EventId, VisitId};
use crate::lifecycle::{Recorded, VisitEvent};

/// The longest free text an event may carry (notes, write-up fields).
pub const MAX_TEXT_CHARS: usize = 4_000;
/// The most staff one event may name.
pub const MAX_STAFF_NAMED: usize = 8;

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
        if self.event.staff_named().len() > MAX_STAFF_NAMED + 1 {
            return Err(EnvelopeError::TooManyStaff);
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
        _ => Vec::new(),
    }
}

fn event_texts(event: &VisitEvent) -> Vec<&str> {
    match event {
        VisitEvent::DuressStoodDown { note, .. } | VisitEvent::Cancelled { note, .. } => vec![note],
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
}
