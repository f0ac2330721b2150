//! The fixed, discreet messages, vibration patterns and sound levels the app may ask the phone for.
//!
//! A notification can be read by anyone who glances at a lock screen in a family's living room, so
//! [`Notice`] cannot carry text: each variant's wording is fixed here and says nothing about the pupil, the
//! family, the address or the risks. Screens pick a variant; they cannot write a sentence.

/// A notification the app may show. Every word of it is fixed in [`Notice::title`] and [`Notice::body`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Notice {
    /// A check-in with the office is due soon.
    CheckInDue,
    /// A check-in is late; the office will start asking.
    CheckInOverdue,
    /// Something the phone sent (an arrival, a departure, an alert) has not reached the office yet.
    OfficeNotConfirmed,
    /// The ongoing notification Android requires while the visit timer runs in the background.
    VisitTimerRunning,
}

impl Notice {
    /// Every notice, for tests and for the settings screen that previews them.
    pub const ALL: [Notice; 4] = [
        Notice::CheckInDue,
        Notice::CheckInOverdue,
        Notice::OfficeNotConfirmed,
        Notice::VisitTimerRunning,
    ];

    /// The title. Always the app's name: a notification titled with anything else invites a closer look.
    pub fn title(self) -> &'static str {
        "Doorstep"
    }

    /// The one line under the title.
    pub fn body(self) -> &'static str {
        match self {
            Notice::CheckInDue => "Time to check in.",
            Notice::CheckInOverdue => "Check-in overdue. Open Doorstep.",
            Notice::OfficeNotConfirmed => "Not confirmed by the office yet. Open Doorstep.",
            Notice::VisitTimerRunning => "Visit timer running.",
        }
    }

    /// A stable notification id per notice, so a repeated reminder replaces the last one rather than
    /// piling up a stack of them.
    pub fn id(self) -> i32 {
        match self {
            Notice::CheckInDue => 1,
            Notice::CheckInOverdue => 2,
            Notice::OfficeNotConfirmed => 3,
            Notice::VisitTimerRunning => 4,
        }
    }
}

/// How loud a sound is. Every notice is shown as an ordinary reminder, whatever it says: the loud sound is
/// asked for separately, and only for a late check-in the staff member chose to hear. Duress has no level
/// here on purpose: it is silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Urgency {
    /// The phone's ordinary notification sound (it follows silent mode).
    Normal,
    /// The loud sound that plays through silent mode, for a late check-in, only when turned on in the
    /// phone's settings.
    Urgent,
}

/// A vibration the app may ask for. The timings are fixed here so every platform buzzes the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pattern {
    /// One very short pulse, felt in a pocket but not heard across a room: "your alert was sent".
    Discreet,
    /// Two short pulses: a reminder.
    Reminder,
    /// Three long pulses: something is late.
    Urgent,
}

impl Pattern {
    /// Alternating wait and vibrate durations in milliseconds, starting with a wait (Android's
    /// `VibrationEffect.createWaveform` format; iOS maps the pulses to haptic taps).
    pub fn timings_ms(self) -> &'static [i64] {
        match self {
            Pattern::Discreet => &[0, 60],
            Pattern::Reminder => &[0, 200, 150, 200],
            Pattern::Urgent => &[0, 600, 300, 600, 300, 600],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_notice_is_titled_doorstep_and_has_a_short_fixed_line() {
        for notice in Notice::ALL {
            assert_eq!(notice.title(), "Doorstep");
            assert!(notice.body().len() <= 60, "{notice:?} is too long to fit");
        }
    }

    #[test]
    fn notice_ids_are_distinct() {
        let mut ids: Vec<i32> = Notice::ALL.iter().map(|n| n.id()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), Notice::ALL.len());
    }

    #[test]
    fn patterns_start_with_a_wait_and_alternate() {
        for pattern in [Pattern::Discreet, Pattern::Reminder, Pattern::Urgent] {
            let timings = pattern.timings_ms();
            assert_eq!(timings[0], 0, "{pattern:?} starts at once");
            assert_eq!(timings.len() % 2, 0, "{pattern:?} ends on a pulse");
            assert!(timings.iter().all(|&ms| (0..=1000).contains(&ms)));
        }
    }
}
