//! The write-up as a block of text ready to paste into the school's record system (the policy's
//! `record_system`: CPOMS in both shipped policies). The wording is the core's (`doorstep_core::write_up`),
//! the same as the office's record; this file only gathers what this phone knows. It never says a notice
//! was passed on: a safeguarding concern is marked as one the safeguarding contact must be told of (the
//! office sends it and records the delivery).

use std::collections::HashSet;

use doorstep_core::domain::SchoolTimeZone;
use doorstep_core::event::EventEnvelope;
use doorstep_core::event_log::{Delivery, LogError};
use doorstep_core::ids::EventId;
use doorstep_core::lifecycle::{CancelReason, VisitEvent};
use doorstep_core::write_up::{self, Document, Facts, KnownBy, LatestWriteUp};

use crate::store::{AppStore, VisitCard};

/// What this phone can give for a visit's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Summary {
    /// Nothing was written up on this phone.
    NotWrittenUpHere,
    /// The office confirmed the write-up and its words left this phone.
    AtOffice,
    /// The record, and whether its write-up flags a safeguarding concern.
    Ready { document: Document, concern: bool },
}

/// The record from this phone's own events (in the order it recorded them) as far as it knows: `gone` are
/// the events whose typed words it no longer holds.
pub fn summary(
    card: &VisitCard,
    own: &[(EventEnvelope, Delivery)],
    gone: &HashSet<EventId>,
    zone: SchoolTimeZone,
) -> Summary {
    let write_ups: Vec<&EventEnvelope> = own
        .iter()
        .map(|(envelope, _)| envelope)
        .filter(|envelope| matches!(envelope.event, VisitEvent::WrittenUp { .. }))
        .collect();
    match write_ups.last() {
        None => return Summary::NotWrittenUpHere,
        Some(latest) if gone.contains(&latest.id) => return Summary::AtOffice,
        Some(_) => {}
    }
    let latest = LatestWriteUp::of(
        write_ups
            .iter()
            .filter_map(|envelope| match &envelope.event {
                VisitEvent::WrittenUp { staff, write_up } => {
                    Some((card.name_of(staff), envelope.recorded_at, write_up))
                }
                _ => None,
            }),
    );
    let cancellations: Vec<(CancelReason, &str)> = own
        .iter()
        .filter_map(|(envelope, _)| match &envelope.event {
            VisitEvent::Cancelled { reason, note, .. } => Some((*reason, note.as_str())),
            _ => None,
        })
        .collect();
    let concern = latest
        .as_ref()
        .is_some_and(|l| l.write_up.safeguarding_concern);
    let document = write_up::document(&Facts {
        visit: &card.visit,
        state: &card.state,
        zone,
        record_system: &card.policy.record_system,
        write_up: latest,
        cancel_note: cancellations
            .iter()
            .map(|(_, note)| *note)
            .find(|note| !note.trim().is_empty()),
        felt_unsafe: cancellations
            .iter()
            .any(|(reason, _)| *reason == CancelReason::FeltUnsafe),
        known_by: KnownBy::Phone {
            concerns_to: card.policy.safeguarding_concerns_to,
        },
    });
    Summary::Ready { document, concern }
}

/// [`summary`] from what `store` holds for the card's visit, on the school's clock.
pub fn from_store(store: &AppStore, card: &VisitCard) -> Result<Summary, LogError> {
    let own = store.own_events(&card.visit.id)?;
    let gone = store.words_left_phone(&card.visit.id)?;
    // A card comes from the office's holdings, which carry the school; Europe/London (the default) only
    // for holdings kept before the zone was sent.
    let zone = store.school_time_zone()?.unwrap_or_default();
    Ok(summary(card, &own, &gone, zone))
}
