//! The ingest's rules as pure functions, which both backends call with what they read in the batch's
//! transaction: whether a phone may record an event at all ([`refusal`]), how an event stands against what
//! is already stored under its id and sequence number ([`against_stored`]), and the per-visit quota
//! ([`over_quota`]). The backends only read, call these, and write.

use std::collections::{BTreeSet, HashMap};

use doorstep_core::event::EventEnvelope;
use doorstep_core::ids::{StaffId, VisitId};
use doorstep_core::protocol::{EventOutcome, EventResult};

use super::{Device, Rejection, MAX_ALERTS_PER_DEVICE_AND_VISIT, MAX_EVENTS_PER_DEVICE_AND_VISIT};

/// Why `device` may not record `envelope` on a visit whose staff are `assigned`, if it may not: the event
/// must be from this phone, well formed, one a phone may record, by the phone's own holder, on one of their
/// visits, and name only people on that visit.
pub fn refusal(device: &Device, envelope: &EventEnvelope, assigned: &[StaffId]) -> Option<String> {
    if envelope.device != device.id {
        return Some(format!(
            "the event says it is from device {}, but this token is device {}",
            envelope.device, device.id
        ));
    }
    if let Err(e) = envelope.validate() {
        return Some(e.to_string());
    }
    if envelope.event.is_office_only() {
        return Some(format!(
            "only the office can record \"{}\" for a visit",
            envelope.event.summary()
        ));
    }
    if envelope.event.actor() != &device.staff {
        return Some(format!(
            "the event is by {}, but this phone belongs to {}",
            envelope.event.actor(),
            device.staff
        ));
    }
    if !assigned.contains(&device.staff) {
        return Some(format!(
            "visit {} is not one of this phone's visits",
            envelope.visit
        ));
    }
    envelope
        .event
        .staff_named()
        .into_iter()
        .find(|s| !assigned.contains(*s))
        .map(|stranger| format!("{stranger} is not on visit {}", envelope.visit))
}

/// How `envelope` stands against the event already stored under its id (`stored`) and whether its
/// device's sequence number is taken by another event (`seq_taken`, read only when nothing is stored under
/// the id): `Ok(Some(Duplicate))` for a resend, `Ok(None)` to store it, or a conflict.
pub fn against_stored(
    envelope: &EventEnvelope,
    stored: Option<&EventEnvelope>,
    seq_taken: bool,
) -> Result<Option<EventOutcome>, Rejection> {
    match stored {
        Some(stored) if stored == envelope => Ok(Some(EventOutcome::Duplicate)),
        Some(_) => Err(Rejection {
            id: envelope.id,
            reason: format!(
                "event {} is already stored with different content",
                envelope.id
            ),
            conflict: true,
            seq_taken: false,
        }),
        None if seq_taken => Err(Rejection {
            id: envelope.id,
            reason: format!(
                "sequence number {} of this device is already used by another event",
                envelope.seq
            ),
            conflict: true,
            seq_taken: true,
        }),
        None => Ok(None),
    }
}

/// Why a new `envelope` is not taken when its phone already holds `held` events (`held.1` of them alerts)
/// for its visit, if it is not: alerts and other events each have their own allowance, so a phone past
/// its ordinary allowance can still raise an alert. A resend of a stored event is always answered.
pub fn over_quota(envelope: &EventEnvelope, held: (i64, i64)) -> Option<String> {
    let (events, alerts) = held;
    let over = if envelope.event.is_urgent() {
        alerts >= MAX_ALERTS_PER_DEVICE_AND_VISIT
    } else {
        events - alerts >= MAX_EVENTS_PER_DEVICE_AND_VISIT
    };
    over.then(|| {
        format!(
            "this phone has already recorded {events} events for visit {}, more than any visit needs; \
             nothing more is taken for it (ring the office)",
            envelope.visit
        )
    })
}

/// What a batch has come to so far, kept the same way by both backends: each event's answer or refusal,
/// the visits it stored events for (and alerts), and how many events and alerts its phone holds per visit
/// (read once per visit, then counted on as events are stored).
#[derive(Debug, Default)]
pub struct Tally<'a> {
    held: HashMap<&'a VisitId, (i64, i64)>,
    pub results: Vec<EventResult>,
    pub rejections: Vec<Rejection>,
    /// Visits the batch stored events for: each is replayed before the commit.
    pub touched: BTreeSet<&'a VisitId>,
    /// Visits it stored an alert for: their duress alarms are raised before the commit.
    pub alerted: BTreeSet<&'a VisitId>,
}

impl<'a> Tally<'a> {
    /// The phone's events and alerts on `visit`, if this batch has read them already.
    pub fn held(&self, visit: &VisitId) -> Option<(i64, i64)> {
        self.held.get(visit).copied()
    }

    /// Notes what the store read of the phone's events and alerts on `visit`.
    pub fn read_held(&mut self, visit: &'a VisitId, held: (i64, i64)) -> (i64, i64) {
        *self.held.entry(visit).or_insert(held)
    }

    /// Notes how `envelope` was answered.
    pub fn answer(
        &mut self,
        envelope: &'a EventEnvelope,
        outcome: Result<EventOutcome, Rejection>,
    ) {
        match outcome {
            Ok(outcome) => {
                if outcome == EventOutcome::Stored {
                    let urgent = envelope.event.is_urgent();
                    self.touched.insert(&envelope.visit);
                    if urgent {
                        self.alerted.insert(&envelope.visit);
                    }
                    if let Some(counts) = self.held.get_mut(&envelope.visit) {
                        counts.0 += 1;
                        counts.1 += i64::from(urgent);
                    }
                }
                self.results.push(EventResult {
                    id: envelope.id,
                    outcome,
                });
            }
            Err(rejection) => self.rejections.push(rejection),
        }
    }
}

#[cfg(test)]
mod tests {
    use doorstep_core::lifecycle::{DuressVia, VisitEvent};
    use doorstep_core::test_support::{at, device, envelope, id, staff};

    use super::*;

    fn sams_phone() -> Device {
        Device {
            id: device("phone-sam"),
            staff: staff("sam"),
            school: id("school-1"),
            credential_issued_at: at(9, 0),
        }
    }

    fn arrived(phone: &str, who: &str) -> EventEnvelope {
        envelope(
            phone,
            1,
            "visit-ava",
            at(10, 0),
            VisitEvent::ArrivedOutside { staff: staff(who) },
        )
    }

    fn alert() -> EventEnvelope {
        envelope(
            "phone-sam",
            2,
            "visit-ava",
            at(10, 0),
            VisitEvent::DuressRaised {
                staff: staff("sam"),
                via: DuressVia::CodePhraseButton,
            },
        )
    }

    #[test]
    fn a_phone_records_only_its_own_holders_events_on_their_own_visits() {
        let pair = [staff("sam"), staff("alex")];
        assert_eq!(
            refusal(&sams_phone(), &arrived("phone-sam", "sam"), &pair),
            None
        );
        let refusals = [
            (
                arrived("phone-alex", "sam"),
                &pair[..],
                "this token is device phone-sam",
            ),
            (
                arrived("phone-sam", "alex"),
                &pair[..],
                "this phone belongs to sam",
            ),
            (
                arrived("phone-sam", "sam"),
                &pair[1..],
                "not one of this phone's visits",
            ),
        ];
        for (event, assigned, why) in refusals {
            let refused = refusal(&sams_phone(), &event, assigned).expect("refused");
            assert!(refused.contains(why), "{refused}");
        }
    }

    #[test]
    fn a_resend_is_a_duplicate_and_other_content_under_a_used_id_or_number_is_a_conflict() {
        let event = arrived("phone-sam", "sam");
        assert_eq!(against_stored(&event, None, false), Ok(None));
        assert_eq!(
            against_stored(&event, Some(&event), false),
            Ok(Some(EventOutcome::Duplicate))
        );
        let mut changed = event.clone();
        changed.recorded_at = at(10, 5);
        let conflict = against_stored(&event, Some(&changed), false).expect_err("conflict");
        assert!(conflict.conflict && !conflict.seq_taken);
        let taken = against_stored(&event, None, true).expect_err("number taken");
        assert!(taken.conflict && taken.seq_taken);
    }

    #[test]
    fn a_phone_past_its_allowance_of_events_can_still_raise_an_alert() {
        let ordinary = arrived("phone-sam", "sam");
        let full = (MAX_EVENTS_PER_DEVICE_AND_VISIT, 0);
        assert!(over_quota(&ordinary, full).is_some());
        assert_eq!(over_quota(&alert(), full), None);
        let alerts_full = (
            MAX_EVENTS_PER_DEVICE_AND_VISIT + MAX_ALERTS_PER_DEVICE_AND_VISIT,
            MAX_ALERTS_PER_DEVICE_AND_VISIT,
        );
        assert!(over_quota(&alert(), alerts_full).is_some());
        assert_eq!(
            over_quota(&ordinary, (MAX_EVENTS_PER_DEVICE_AND_VISIT - 1, 0)),
            None
        );
    }
}
