//! The office's clock as this phone knows it: the offset measured at the last exchange (the office's
//! `server_time` against the phone's clock), and the same correction the office makes
//! (`core::event::trusted_time`), so the phone shows, decides and replays at the times the office will use.
//!
//! The rule that keeps phone and office in step: every time a screen shows, and every time inside a
//! command (an expected arrival, a check-in's due time), is the office's. An event is recorded at this
//! phone's own clock (the office measures the offset itself when it arrives and corrects it), so the times
//! the office shifts with it are written in this phone's terms too ([`OfficeClock::event_in_phone_terms`]).
//! Pure, so the arithmetic is tested without a phone.

use chrono::{DateTime, TimeDelta, Utc};
use doorstep_core::event::ALLOWED_CLOCK_SKEW;
use doorstep_core::lifecycle::VisitEvent;

/// What this phone knows about its clock against the office's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OfficeClock {
    /// How far this phone's clock is ahead of the office's (negative: behind); `None` before the office
    /// ever answered.
    phone_ahead: Option<TimeDelta>,
}

impl OfficeClock {
    /// The clock with the offset measured at the last exchange, if there was one.
    pub fn new(phone_ahead: Option<TimeDelta>) -> Self {
        Self { phone_ahead }
    }

    /// The correction the office makes to this phone's times: the whole offset once it is beyond the
    /// allowed skew, nothing within it (exactly as `event::trusted_time` decides).
    fn correction(&self) -> TimeDelta {
        match self.phone_ahead {
            Some(ahead) if ahead.abs() > ALLOWED_CLOCK_SKEW => ahead,
            _ => TimeDelta::zero(),
        }
    }

    /// Whether the phone's times are being corrected: its clock is further out than the office allows.
    pub fn corrects(&self) -> bool {
        self.correction() != TimeDelta::zero()
    }

    /// A reading of this phone's clock, as the office's time.
    pub fn to_office(&self, phone_time: DateTime<Utc>) -> DateTime<Utc> {
        phone_time
            .checked_sub_signed(self.correction())
            .unwrap_or(phone_time)
    }

    /// An office time, as this phone's clock would read it then.
    pub fn to_phone(&self, office_time: DateTime<Utc>) -> DateTime<Utc> {
        office_time
            .checked_add_signed(self.correction())
            .unwrap_or(office_time)
    }

    /// `event` (decided in office times) with the times the office will shift by this phone's offset
    /// rewritten in this phone's terms, so that after the office's correction they are the office times
    /// again. These are the times `lifecycle::apply` moves by a fact's `clock_shift`: an expected arrival
    /// and an expected end. A missed check-in's due time is not shifted there, so it stays as it is.
    pub fn event_in_phone_terms(&self, event: VisitEvent) -> VisitEvent {
        match event {
            VisitEvent::Departed {
                staff,
                expected_arrival,
                expected_end,
            } => VisitEvent::Departed {
                staff,
                expected_arrival: self.to_phone(expected_arrival),
                expected_end: self.to_phone(expected_end),
            },
            VisitEvent::RunningLate {
                staff,
                expected_arrival,
            } => VisitEvent::RunningLate {
                staff,
                expected_arrival: self.to_phone(expected_arrival),
            },
            other => other,
        }
    }

    /// A sentence for the status line when the phone's clock is out by more than the office allows, e.g.
    /// "This phone's clock is 7 minutes fast; times shown are the office's".
    pub fn note(&self) -> Option<String> {
        let ahead = self.correction();
        if ahead == TimeDelta::zero() {
            return None;
        }
        let way = if ahead > TimeDelta::zero() {
            "fast"
        } else {
            "slow"
        };
        Some(format!(
            "This phone's clock is {} {way}; times shown are the office's",
            span_words(ahead.abs())
        ))
    }
}

/// "7 minutes", "3 hours", "2 days": whole units, as far as anyone needs to know how wrong a clock is.
fn span_words(span: TimeDelta) -> String {
    let plural = |n: i64, unit: &str| {
        if n == 1 {
            format!("1 {unit}")
        } else {
            format!("{n} {unit}s")
        }
    };
    if span < TimeDelta::hours(2) {
        plural(span.num_minutes(), "minute")
    } else if span < TimeDelta::days(2) {
        plural(span.num_hours(), "hour")
    } else {
        plural(span.num_days(), "day")
    }
}

#[cfg(test)]
mod tests {
    use doorstep_core::event::{trusted_time, EventEnvelope, TrustedEvent};
    use doorstep_core::ids::{DeviceSeq, EventId};
    use doorstep_core::lifecycle::{self, VisitState};

    use super::*;
    use crate::fixtures::{at, id};

    fn minutes(n: i64) -> Option<TimeDelta> {
        Some(TimeDelta::minutes(n))
    }

    #[test]
    fn the_phone_corrects_its_times_exactly_when_the_office_would() {
        let cases = [
            (None, false),
            (minutes(0), false),
            (minutes(2), false),
            (minutes(-2), false),
            (Some(TimeDelta::minutes(2) + TimeDelta::seconds(1)), true),
            (minutes(7), true),
            (minutes(-7), true),
        ];
        let recorded = at(10, 0);
        for (ahead, corrects) in cases {
            let clock = OfficeClock::new(ahead);
            assert_eq!(clock.corrects(), corrects, "{ahead:?}");
            // What the office will make of an event this phone records now and sends at once.
            let sent = recorded + TimeDelta::seconds(1);
            let received = sent - ahead.unwrap_or_default();
            let office = trusted_time(recorded, sent, received);
            // Within the skew the office takes a fast phone's time no later than it received the event,
            // which the phone cannot know before it is sent: at most the allowed skew apart.
            let fast_within_skew = ahead.is_some_and(|a| a > TimeDelta::zero()) && !corrects;
            if ahead.is_some() && !fast_within_skew {
                assert_eq!(clock.to_office(recorded), office, "{ahead:?}");
            }
            assert!((clock.to_office(recorded) - office).abs() <= ALLOWED_CLOCK_SKEW);
            assert_eq!(clock.to_phone(clock.to_office(recorded)), recorded);
        }
    }

    #[test]
    fn the_status_line_note_says_how_far_out_and_which_way() {
        let note = |ahead| OfficeClock::new(ahead).note();
        assert_eq!(note(None), None);
        assert_eq!(note(minutes(1)), None, "within the allowed skew");
        assert_eq!(
            note(minutes(7)).as_deref(),
            Some("This phone's clock is 7 minutes fast; times shown are the office's")
        );
        assert_eq!(
            note(minutes(-3)).as_deref(),
            Some("This phone's clock is 3 minutes slow; times shown are the office's")
        );
        assert_eq!(
            note(Some(TimeDelta::hours(5) + TimeDelta::minutes(10))).as_deref(),
            Some("This phone's clock is 5 hours fast; times shown are the office's")
        );
        assert_eq!(
            note(Some(-TimeDelta::days(400))).as_deref(),
            Some("This phone's clock is 400 days slow; times shown are the office's")
        );
    }

    #[test]
    fn an_expected_arrival_decided_in_office_time_replays_as_the_same_office_time() {
        // Seven minutes fast: Sam taps "Leaving now" at 09:47 office time (09:54 on the phone) for a visit
        // the office agreed for 10:00.
        let clock = OfficeClock::new(minutes(7));
        let decided = VisitEvent::Departed {
            staff: id("sam"),
            expected_arrival: at(10, 0),
            expected_end: at(10, 45),
        };
        let envelope = EventEnvelope {
            id: EventId::new_v7(),
            device: id("phone-sam"),
            seq: DeviceSeq::new(1).unwrap(),
            visit: id("v-auth"),
            recorded_at: at(9, 54),
            event: clock.event_in_phone_terms(decided),
        };
        // The office (and this phone, for its own unconfirmed events) count it at the corrected time, and
        // shift the times inside by the same correction.
        let trusted = TrustedEvent {
            envelope: &envelope,
            at: clock.to_office(envelope.recorded_at),
        };
        let state = lifecycle::replay(VisitState::new([id("sam"), id("alex")]), [&trusted]);
        assert_eq!(trusted.at, at(9, 47));
        assert_eq!(state.expected_arrival(&id("sam")), Some(at(10, 0)));
        assert!(matches!(
            state.progress(&id("sam")),
            Some(lifecycle::StaffProgress::Departed { expected_end, .. }) if expected_end == at(10, 45)
        ));
    }
}
