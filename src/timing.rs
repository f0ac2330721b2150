//! The clock-driven parts of a visit screen, as pure functions of the visit, its state, the policy and the
//! time: the running timer, the wait at the door, the check-in prompt, and the new arrival times "Running
//! late" offers. Screens redraw every second and call these; nothing here keeps time of its own, so a
//! restarted app shows the same thing at once.

use chrono::{DateTime, FixedOffset, NaiveTime, TimeDelta, Timelike, Utc};
use doorstep_core::ids::StaffId;
use doorstep_core::lifecycle::{Phase, StaffProgress, VisitState, MAX_ARRIVAL_AHEAD};
use doorstep_core::policy::Policy;
use doorstep_core::schedule::{self, Expecting};

use crate::store::VisitCard;

/// "7:05", "42:10", "1:02:03": minutes and seconds, with hours once there are any.
pub fn clock_text(span: TimeDelta) -> String {
    let seconds = span.num_seconds().max(0);
    let (hours, minutes, seconds) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if hours > 0 {
        format!("{hours}:{minutes:02}:{seconds:02}")
    } else {
        format!("{minutes}:{seconds:02}")
    }
}

/// Where the wait at the door stands for `me`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DoorWait {
    /// When the policy's longest wait ends, counted from my arrival.
    pub ends_at: DateTime<Utc>,
    /// Time left, or `None` once the wait is over.
    pub left: Option<TimeDelta>,
}

/// The wait at the door, while `me` is outside and the visit has neither started nor been cancelled.
pub fn door_wait(
    state: &VisitState,
    me: &StaffId,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Option<DoorWait> {
    if state.started_at.is_some() || state.cancelled.is_some() {
        return None;
    }
    let Some(StaffProgress::Outside { at }) = state.progress(me) else {
        return None;
    };
    let ends_at = at + policy.max_wait_for_family.duration();
    Some(DoorWait {
        ends_at,
        left: (now < ends_at).then(|| ends_at - now),
    })
}

/// How loudly the check-in prompt asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PromptLevel {
    /// Not due yet: says when.
    Upcoming,
    /// Due: asks plainly.
    Due,
    /// Past the policy's grace: asks insistently (and the miss is recorded).
    Overdue,
}

/// The check-in prompt for someone inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckInPrompt {
    pub due: DateTime<Utc>,
    pub level: PromptLevel,
}

/// The next check-in, from the same schedule the office keeps, while `me` is inside.
pub fn check_in_prompt(
    card: &VisitCard,
    me: &StaffId,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Option<CheckInPrompt> {
    if !matches!(card.state.progress(me), Some(StaffProgress::Inside { .. })) {
        return None;
    }
    let deadline = schedule::inside_deadline(&card.visit, &card.state, policy)?;
    if deadline.expecting != Expecting::CheckIn {
        return None;
    }
    let level = if now >= deadline.overdue_at() {
        PromptLevel::Overdue
    } else if now >= deadline.due {
        PromptLevel::Due
    } else {
        PromptLevel::Upcoming
    };
    Some(CheckInPrompt {
        due: deadline.due,
        level,
    })
}

/// The quick choices "Running late" offers, in minutes later.
pub const LATE_BY_MINUTES: [i64; 3] = [10, 20, 30];

/// The new arrival times "Running late" offers `me`: the time I am now expected (or the agreed time),
/// counted from now once that has passed, plus each of [`LATE_BY_MINUTES`], in whole minutes. Those beyond
/// the furthest the lifecycle takes are left out.
pub fn late_choices(
    card: &VisitCard,
    me: &StaffId,
    now: DateTime<Utc>,
) -> Vec<(i64, DateTime<Utc>)> {
    let expected = card
        .state
        .expected_arrival(me)
        .unwrap_or(card.visit.agreed_time);
    let from = whole_minute_up(expected.max(now));
    LATE_BY_MINUTES
        .into_iter()
        .map(|minutes| (minutes, from + TimeDelta::minutes(minutes)))
        .filter(|(_, at)| *at <= now + MAX_ARRIVAL_AHEAD)
        .collect()
}

fn whole_minute_up(at: DateTime<Utc>) -> DateTime<Utc> {
    let floor = at
        .with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(at);
    if floor < at {
        floor + TimeDelta::minutes(1)
    } else {
        floor
    }
}

/// A new arrival typed as "14:05" (or "1405", "14.05"): that time on today's date where the phone is, or
/// tomorrow's if it is more than twelve hours gone (a visit late in the evening, typed after midnight).
/// Whether it is in the past or too far ahead is the lifecycle's to say.
pub fn arrival_from_text(
    text: &str,
    now: DateTime<Utc>,
    offset: FixedOffset,
) -> Result<DateTime<Utc>, String> {
    let cleaned: String = text.trim().replace('.', ":");
    let parsed = NaiveTime::parse_from_str(&cleaned, "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(&cleaned, "%H%M"))
        .map_err(|_| "Type the time as hours and minutes, like 14:05.".to_owned())?;
    let local_now = now.with_timezone(&offset);
    let on_today = local_now
        .date_naive()
        .and_time(parsed)
        .and_local_timezone(offset)
        .single()
        .ok_or_else(|| "That time does not exist today.".to_owned())?
        .with_timezone(&Utc);
    Ok(if now - on_today > TimeDelta::hours(12) {
        on_today + TimeDelta::days(1)
    } else {
        on_today
    })
}

/// The phase as the screen words it. An active alert is never shown: someone in the room may be reading
/// the screen, and the person who raised it already knows.
pub fn discreet_phase(state: &VisitState) -> Phase {
    if !state.duress_active() {
        return state.phase();
    }
    let mut quiet = state.clone();
    quiet.duress.clear();
    quiet.phase()
}

#[cfg(test)]
mod tests {
    use doorstep_core::lifecycle::{Command, DuressVia};
    use doorstep_core::policy::Preset;

    use super::*;
    use crate::fixtures::{at, id, store_with_two_visits, visit_id};
    use crate::store::AppStore;

    #[test]
    fn timers_read_like_a_stopwatch() {
        let cases = [
            (0, "0:00"),
            (65, "1:05"),
            (42 * 60 + 10, "42:10"),
            (3723, "1:02:03"),
            (-5, "0:00"),
        ];
        for (seconds, text) in cases {
            assert_eq!(clock_text(TimeDelta::seconds(seconds)), text, "{seconds}");
        }
    }

    fn inside(store: &AppStore) {
        let card = store.visit(&visit_id("v-auth")).unwrap().unwrap();
        let v = &visit_id("v-auth");
        for staff in ["sam", "alex"] {
            store
                .perform(
                    v,
                    Command::Depart {
                        staff: id(staff),
                        expected_arrival: card.visit.agreed_time,
                        expected_end: card.visit.expected_end(),
                    },
                    at(9, 40),
                )
                .unwrap();
        }
        store
            .perform(
                v,
                Command::ArriveTogether {
                    by: id("sam"),
                    staff: vec![id("sam"), id("alex")],
                },
                at(9, 58),
            )
            .unwrap();
        store
            .perform(v, Command::StartVisit { by: id("sam") }, at(10, 0))
            .unwrap();
    }

    #[test]
    fn the_check_in_prompt_follows_the_policy_and_gets_louder() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_two_visits(dir.path());
        inside(&store);
        let policy = Preset::PrimaryHeadteacher.policy();
        let card = store.visit(&visit_id("v-auth")).unwrap().unwrap();
        let prompt = |now| check_in_prompt(&card, &id("sam"), &policy, now).unwrap();
        // 10 minutes after the start, then a 5-minute grace.
        assert_eq!(prompt(at(10, 5)).due, at(10, 10));
        assert_eq!(prompt(at(10, 9)).level, PromptLevel::Upcoming);
        assert_eq!(prompt(at(10, 10)).level, PromptLevel::Due);
        assert_eq!(prompt(at(10, 15)).level, PromptLevel::Overdue);
    }

    #[test]
    fn missed_check_ins_are_recorded_once_per_due_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_two_visits(dir.path());
        inside(&store);
        assert!(store
            .record_missed_check_ins(at(10, 14))
            .unwrap()
            .is_empty());
        assert_eq!(store.record_missed_check_ins(at(10, 15)).unwrap().len(), 1);
        assert!(store
            .record_missed_check_ins(at(10, 16))
            .unwrap()
            .is_empty());
        let card = store.visit(&visit_id("v-auth")).unwrap().unwrap();
        assert_eq!(card.state.missed_check_ins, 1);
    }

    #[test]
    fn the_phase_never_shows_an_alert() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_two_visits(dir.path());
        inside(&store);
        store
            .perform(
                &visit_id("v-auth"),
                Command::RaiseDuress {
                    staff: id("sam"),
                    via: DuressVia::CodePhraseButton,
                },
                at(10, 3),
            )
            .unwrap();
        let card = store.visit(&visit_id("v-auth")).unwrap().unwrap();
        assert_eq!(card.phase(), Phase::Duress);
        assert_eq!(discreet_phase(&card.state), Phase::InVisit);
    }

    #[test]
    fn running_late_offers_whole_minutes_after_the_expected_arrival_or_after_now() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_two_visits(dir.path());
        let card = store.visit(&visit_id("v-auth")).unwrap().unwrap();
        let times = |now| -> Vec<DateTime<Utc>> {
            late_choices(&card, &id("sam"), now)
                .into_iter()
                .map(|(_, at)| at)
                .collect()
        };
        // Before the agreed 10:00: later than that.
        assert_eq!(times(at(9, 30)), [at(10, 10), at(10, 20), at(10, 30)]);
        // Already past it: later than now, rounded up to the minute.
        assert_eq!(
            times(at(10, 4) + TimeDelta::seconds(20)),
            [at(10, 15), at(10, 25), at(10, 35)]
        );
        // Never beyond what the lifecycle takes.
        assert!(
            times(at(6, 0)).is_empty(),
            "10:00 is the furthest ahead from 06:00"
        );
        assert_eq!(times(at(6, 15)), [at(10, 10)]);
    }

    #[test]
    fn a_typed_arrival_is_that_time_today_where_the_phone_is() {
        let utc = FixedOffset::east_opt(0).unwrap();
        let bst = FixedOffset::east_opt(3600).unwrap();
        assert_eq!(arrival_from_text("10:35", at(10, 0), utc), Ok(at(10, 35)));
        assert_eq!(arrival_from_text(" 1035 ", at(10, 0), utc), Ok(at(10, 35)));
        assert_eq!(arrival_from_text("10.35", at(10, 0), utc), Ok(at(10, 35)));
        assert_eq!(arrival_from_text("11:35", at(10, 0), bst), Ok(at(10, 35)));
        // Just past: today (the lifecycle says it has passed); long past: tomorrow.
        assert_eq!(arrival_from_text("09:50", at(10, 0), utc), Ok(at(9, 50)));
        assert_eq!(
            arrival_from_text("00:10", at(23, 50), utc),
            Ok(at(0, 10) + TimeDelta::days(1))
        );
        for bad in ["", "soon", "25:00", "10:75"] {
            assert!(arrival_from_text(bad, at(10, 0), utc).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_wait_at_the_door_counts_from_my_arrival() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_two_visits(dir.path());
        let policy = Preset::PrimaryHeadteacher.policy();
        let card = store.visit(&visit_id("v-auth")).unwrap().unwrap();
        let v = &visit_id("v-auth");
        store
            .perform(
                v,
                Command::Depart {
                    staff: id("sam"),
                    expected_arrival: card.visit.agreed_time,
                    expected_end: card.visit.expected_end(),
                },
                at(9, 40),
            )
            .unwrap();
        store
            .perform(v, Command::ArriveOutside { staff: id("sam") }, at(9, 55))
            .unwrap();
        let card = store.visit(v).unwrap().unwrap();
        let wait = door_wait(&card.state, &id("sam"), &policy, at(10, 5)).unwrap();
        assert_eq!(wait.ends_at, at(10, 15));
        assert_eq!(wait.left, Some(TimeDelta::minutes(10)));
        let over = door_wait(&card.state, &id("sam"), &policy, at(10, 15)).unwrap();
        assert_eq!(over.left, None);
        assert_eq!(
            door_wait(&card.state, &id("alex"), &policy, at(10, 5)),
            None
        );
    }
}
