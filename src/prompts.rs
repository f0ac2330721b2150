//! Check-in prompts and the visit timer, handed to the phone's platform: which prompts should sound now
//! (pure), and an `Announcer` that tells the platform once per prompt and level, and holds the visit timer
//! alive while the holder of this phone is out on a visit.
//!
//! In a family's living room a prompt must look and sound ordinary: it vibrates and shows a notification
//! worded like any app's reminder. The phone's loud sound (which plays through silent mode) is used only
//! for a late check-in, and only if the staff member turned it on in this phone's settings.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use doorstep_core::ids::{StaffId, VisitId};
use doorstep_core::lifecycle::StaffProgress;
use doorstep_core::policy::Policy;
use doorstep_core::schedule::{self, Expecting};

use crate::office_clock::OfficeClock;
use crate::platform::{Notice, Pattern, Platform, Urgency, VisitTimerLease};
use crate::store::VisitCard;

/// How loud a check-in prompt is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PromptLevel {
    /// The check-in is due.
    Due,
    /// The check-in is past the policy's grace: the office is already raising its alarm.
    Overdue,
}

/// A check-in prompt that should be showing for one visit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Prompt {
    pub visit: VisitId,
    pub due: DateTime<Utc>,
    pub level: PromptLevel,
}

/// The prompts for `me` at `now`: one per visit where I am inside and a check-in is due.
pub fn check_in_prompts(
    cards: &[VisitCard],
    me: &StaffId,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Vec<Prompt> {
    cards
        .iter()
        .filter(|card| matches!(card.state.progress(me), Some(StaffProgress::Inside { .. })))
        .filter_map(|card| {
            let deadline = schedule::inside_deadline(&card.visit, &card.state, policy)?;
            if deadline.expecting != Expecting::CheckIn || now < deadline.due {
                return None;
            }
            let level = if now >= deadline.overdue_at() {
                PromptLevel::Overdue
            } else {
                PromptLevel::Due
            };
            Some(Prompt {
                visit: card.visit.id.clone(),
                due: deadline.due,
                level,
            })
        })
        .collect()
}

/// The visits I am out on (left for, at the door or inside, not yet left), with my next check-in if known,
/// as this phone's clock will read it (`clock`: the platform schedules reminders by the phone's clock).
pub fn visits_out_on(
    cards: &[VisitCard],
    me: &StaffId,
    policy: &Policy,
    clock: &OfficeClock,
) -> Vec<VisitTimerLease> {
    cards
        .iter()
        .filter(|card| {
            card.state.progress(me).is_some_and(|p| p.is_out()) && card.state.cancelled.is_none()
        })
        .map(|card| VisitTimerLease {
            visit: card.visit.id.clone(),
            next_check_in: schedule::inside_deadline(&card.visit, &card.state, policy)
                .filter(|d| d.expecting == Expecting::CheckIn)
                .map(|d| clock.to_phone(d.due)),
        })
        .collect()
}

/// Remembers what the platform has been told, so a prompt sounds once per level and the visit timer is
/// started and stopped once per visit. Kept in memory: after a restart a prompt still due sounds once more,
/// which is the safe side.
#[derive(Debug, Default)]
pub struct Announcer {
    announced: HashSet<Prompt>,
    kept_alive: HashSet<VisitId>,
}

impl Announcer {
    /// Tells `platform` about new prompts and changes in the visits I am out on: each prompt vibrates and
    /// shows its notice; a late one also plays the loud sound if `sound_for_late_check_in` (the phone's
    /// setting, off unless turned on). Platform failures are logged, never fatal: the screen shows the
    /// prompt whatever the phone's notification system does.
    pub fn step(
        &mut self,
        prompts: &[Prompt],
        out_on: &[VisitTimerLease],
        platform: &dyn Platform,
        sound_for_late_check_in: bool,
    ) {
        for prompt in prompts {
            if !self.announced.insert(prompt.clone()) {
                continue;
            }
            let (notice, pattern) = match prompt.level {
                PromptLevel::Due => (Notice::CheckInDue, Pattern::Reminder),
                PromptLevel::Overdue => (Notice::CheckInOverdue, Pattern::Urgent),
            };
            let mut results = vec![platform.notify(notice), platform.vibrate(pattern)];
            if prompt.level == PromptLevel::Overdue && sound_for_late_check_in {
                results.push(platform.play_alert_sound(Urgency::Urgent));
            }
            for error in results.into_iter().filter_map(Result::err) {
                tracing::warn!(%error, "the phone could not sound a check-in prompt");
            }
        }
        for lease in out_on {
            if self.kept_alive.insert(lease.visit.clone()) {
                if let Err(error) = platform.keep_alive(lease) {
                    tracing::warn!(%error, "the phone could not keep the visit timer alive");
                }
            }
        }
        let still_out: HashSet<&VisitId> = out_on.iter().map(|lease| &lease.visit).collect();
        let ended: Vec<VisitId> = self
            .kept_alive
            .iter()
            .filter(|visit| !still_out.contains(visit))
            .cloned()
            .collect();
        for visit in ended {
            self.kept_alive.remove(&visit);
            if let Err(error) = platform.release_keep_alive(&visit) {
                tracing::warn!(%error, "the phone could not stop the visit timer");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use doorstep_core::lifecycle::Command;

    use super::*;
    use crate::fixtures::store_with_two_visits;
    use crate::platform::recording::{PlatformCall, RecordingPlatform};
    use crate::store::AppStore;

    use doorstep_core::test_support::{staff, visit};

    /// Sam and Alex set off, arrive outside and Sam starts the visit at its agreed time, which is returned.
    fn sam_and_alex_go_in(store: &AppStore, v: &VisitId) -> DateTime<Utc> {
        let card = store.visit(v).unwrap().unwrap();
        let agreed = card.visit.agreed_time;
        for who in ["sam", "alex"] {
            store
                .perform(
                    v,
                    Command::Depart {
                        staff: staff(who),
                        expected_arrival: agreed,
                        expected_end: card.visit.expected_end(),
                    },
                    agreed - TimeDelta::minutes(20),
                )
                .unwrap();
            store
                .perform(
                    v,
                    Command::ArriveOutside { staff: staff(who) },
                    agreed - TimeDelta::minutes(2),
                )
                .unwrap();
        }
        store
            .perform(v, Command::StartVisit { by: staff("sam") }, agreed)
            .unwrap();
        agreed
    }

    #[test]
    fn a_due_check_in_sounds_once_then_louder_once_overdue_and_the_timer_runs_while_out() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_two_visits(dir.path());
        let platform = RecordingPlatform::new(dir.path());
        let log = platform.log();
        let me = store.me().unwrap().unwrap().staff;
        let policy = store.policy().unwrap().unwrap();
        let v = visit("v-auth");
        let agreed = sam_and_alex_go_in(&store, &v);
        let sam = staff("sam");

        let mut announcer = Announcer::default();
        let sound = false;
        let mut step = |now: DateTime<Utc>, sound: bool| {
            let cards = store.today(now).unwrap();
            announcer.step(
                &check_in_prompts(&cards, &me, &policy, now),
                &visits_out_on(&cards, &me, &policy, &OfficeClock::default()),
                &platform,
                sound,
            );
        };
        step(agreed + TimeDelta::minutes(5), sound);
        assert!(
            log.notices().is_empty(),
            "nothing before the check-in is due"
        );
        assert!(
            log.keeping_alive(),
            "the visit timer runs while I am inside"
        );

        step(agreed + TimeDelta::minutes(10), sound);
        step(agreed + TimeDelta::minutes(11), sound);
        assert_eq!(log.notices(), [Notice::CheckInDue], "due: shown once");
        step(agreed + TimeDelta::minutes(15), sound);
        assert_eq!(log.notices(), [Notice::CheckInDue, Notice::CheckInOverdue]);
        assert!(log
            .calls()
            .contains(&PlatformCall::Vibrated(Pattern::Urgent)));
        assert!(
            !log.calls()
                .iter()
                .any(|call| matches!(call, PlatformCall::PlayedAlertSound(_))),
            "no sound of the app's own unless turned on: {:?}",
            log.calls()
        );

        // Turned on in the settings, a late check-in also plays the loud sound.
        let late = agreed + TimeDelta::minutes(15);
        let cards = store.today(late).unwrap();
        Announcer::default().step(
            &check_in_prompts(&cards, &me, &policy, late),
            &visits_out_on(&cards, &me, &policy, &OfficeClock::default()),
            &platform,
            true,
        );
        assert!(log
            .calls()
            .contains(&PlatformCall::PlayedAlertSound(Urgency::Urgent)));

        store
            .perform(
                &v,
                Command::Leave { staff: sam.clone() },
                agreed + TimeDelta::minutes(16),
            )
            .unwrap();
        step(agreed + TimeDelta::minutes(17), sound);
        assert!(!log.keeping_alive(), "the timer stops once I have left");
        assert!(log.calls().contains(&PlatformCall::Released(v.clone())));
    }

    #[test]
    fn the_visit_timer_is_told_the_next_check_in_by_this_phones_clock() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_two_visits(dir.path());
        let policy = store.policy().unwrap().unwrap();
        let v = visit("v-auth");
        let agreed = sam_and_alex_go_in(&store, &v);
        let cards = store.today(agreed).unwrap();
        let due = agreed + TimeDelta::minutes(10);
        let next = |clock| visits_out_on(&cards, &staff("sam"), &policy, &clock)[0].next_check_in;
        assert_eq!(next(OfficeClock::default()), Some(due));
        // Seven minutes fast: the reminder is scheduled for when this phone reads 10:17.
        assert_eq!(
            next(OfficeClock::new(Some(TimeDelta::minutes(7)))),
            Some(due + TimeDelta::minutes(7))
        );
    }
}
