//! What the visit screen tells its holder about the visit beyond the next step: the steps the office will
//! not honour (with why), where each partner is (vouched for, or still awaited on their own phone), and who
//! is running late. Pure functions of the visit card, so the wording is tested without a screen.
//!
//! Everything here may be read in a family's living room: a step the lifecycle names as an alert is given
//! an ordinary name ([`step_words`]).

use std::collections::HashSet;

use chrono::{DateTime, FixedOffset, Utc};
use doorstep_core::ids::{EventId, StaffId};
use doorstep_core::lifecycle::StaffProgress;

use crate::status::when;
use crate::store::VisitCard;

/// The first word of a name ("Alex" from "Alex Jones"), as a person says it.
pub fn first_name(name: &str) -> &str {
    name.split_whitespace().next().unwrap_or(name)
}

/// One step of mine the office will not honour (in full), worded for the screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotAccepted {
    pub text: String,
    pub at: DateTime<Utc>,
}

/// The steps in `card.state.not_honoured()` that are mine: recorded on this phone (`own`), or made by me.
/// Oldest first. Each reads "Not accepted by the office: <why> (<step>, <time>)".
pub fn not_accepted(
    card: &VisitCard,
    me: &StaffId,
    own: &HashSet<EventId>,
    now: DateTime<Utc>,
    offset: FixedOffset,
) -> Vec<NotAccepted> {
    card.state
        .not_honoured()
        .into_iter()
        .filter(|n| n.event.is_some_and(|id| own.contains(&id)) || &n.staff == me)
        .map(|n| NotAccepted {
            text: format!(
                "Not accepted by the office: {} ({}, {})",
                in_names(&n.reason, card, me),
                step_words(&n.step),
                when(n.at, now, offset)
            ),
            at: n.at,
        })
        .collect()
}

/// A lifecycle step's summary as the screen may show it: the alert steps get the ordinary names the
/// screens use for them.
pub fn step_words(summary: &str) -> &str {
    match summary {
        "DURESS" => "request to the office",
        "duress stood down" => "cancelling a request",
        other => other,
    }
}

/// `text` (written by the lifecycle with staff ids) with each id on the visit replaced by the person's first
/// name, and mine by "you" ("your" for "<me>'s").
pub fn in_names(text: &str, card: &VisitCard, me: &StaffId) -> String {
    let is_id_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(is_id_char) {
        out.push_str(&rest[..start]);
        let word_len = rest[start..]
            .find(|c: char| !is_id_char(c))
            .unwrap_or(rest.len() - start);
        let word = &rest[start..start + word_len];
        let mut after = &rest[start + word_len..];
        match card.visit.staff.iter().find(|s| s.id.as_str() == word) {
            Some(person) if &person.id == me => {
                if let Some(tail) = after.strip_prefix("'s") {
                    out.push_str("your");
                    after = tail;
                } else {
                    out.push_str("you");
                }
            }
            Some(person) => out.push_str(first_name(&person.name)),
            None => out.push_str(word),
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Where each partner is, one line each ("Alex Jones: outside (you said you arrived together)"), and a
/// line about me when someone vouched for me. A vouch for someone whose own phone has not said they set off
/// is shown as still awaited: the office counts it only once that phone does.
pub fn whereabouts(card: &VisitCard, me: &StaffId) -> Vec<String> {
    let state = &card.state;
    let said_by = |voucher: &StaffId| {
        if voucher == me {
            "you".to_owned()
        } else {
            card.name_of(voucher)
        }
    };
    let mut lines = Vec::new();
    for partner in card.partners(me) {
        let progress = state
            .progress(&partner.id)
            .unwrap_or(StaffProgress::NotStarted);
        let line = match (
            state.vouched_by.get(&partner.id),
            state.vouch_pending.get(&partner.id),
        ) {
            (Some(voucher), _) if progress.is_outside() => format!(
                "{}: outside ({} said you arrived together)",
                partner.name,
                said_by(voucher)
            ),
            (_, Some(voucher)) if progress == StaffProgress::NotStarted => format!(
                "{}: not set off on their own phone yet; {} said you arrived together, and the office still waits for {}'s phone",
                partner.name,
                said_by(voucher),
                first_name(&partner.name)
            ),
            _ => match state.part_ended(&partner.id) {
                Some(ended) => format!("{}: not going in ({})", partner.name, ended.reason.label()),
                _ => format!("{}: {}", partner.name, progress.label()),
            },
        };
        lines.push(line);
    }
    let mine = state.progress(me).unwrap_or(StaffProgress::NotStarted);
    match (state.vouched_by.get(me), state.vouch_pending.get(me)) {
        (Some(voucher), _) if mine.is_outside() => lines.push(format!(
            "You: outside ({} said you arrived together)",
            card.name_of(voucher)
        )),
        (_, Some(voucher)) if mine == StaffProgress::NotStarted => lines.push(format!(
            "You: {} said you arrived together; the office still waits for this phone to say you set off",
            card.name_of(voucher)
        )),
        _ => {}
    }
    lines
}

/// "You are running late: expected 14:05" and "Alex is running late: expected 14:05", for everyone who
/// gave a new arrival time and has not yet arrived.
pub fn running_late(
    card: &VisitCard,
    me: &StaffId,
    now: DateTime<Utc>,
    offset: FixedOffset,
) -> Vec<String> {
    let state = &card.state;
    card.visit
        .staff
        .iter()
        .filter(|person| state.running_late.contains_key(&person.id))
        .filter(|person| {
            matches!(
                state.progress(&person.id),
                Some(StaffProgress::NotStarted | StaffProgress::Departed { .. })
            ) && state.part_ended(&person.id).is_none()
                && state.cancelled.is_none()
        })
        .filter_map(|person| {
            let expected = when(state.expected_arrival(&person.id)?, now, offset);
            Some(if &person.id == me {
                format!("You are running late: expected {expected}")
            } else {
                format!(
                    "{} is running late: expected {expected}",
                    first_name(&person.name)
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use doorstep_core::lifecycle::{self, CancelReason, Command, VisitEvent};

    use super::*;
    use crate::fixtures::{at, id, store_with_two_visits, visit_id};
    use crate::store::AppStore;

    fn utc() -> FixedOffset {
        FixedOffset::east_opt(0).unwrap()
    }

    fn card(store: &AppStore) -> VisitCard {
        store.visit(&visit_id("v-auth")).unwrap().unwrap()
    }

    fn perform(store: &AppStore, command: Command, now: DateTime<Utc>) -> EventId {
        store.perform(&visit_id("v-auth"), command, now).unwrap().id
    }

    /// Sam's phone says Sam and Alex arrived outside together, at 9:55.
    fn sam_says_both_arrived(store: &AppStore) -> EventId {
        perform(
            store,
            Command::ArriveTogether {
                by: id("sam"),
                staff: vec![id("sam"), id("alex")],
            },
            at(9, 55),
        )
    }

    fn depart(store: &AppStore, who: &str, now: DateTime<Utc>) -> EventId {
        perform(
            store,
            Command::Depart {
                staff: id(who),
                expected_arrival: at(10, 0),
                expected_end: at(10, 45),
            },
            now,
        )
    }

    #[test]
    fn ids_become_first_names_and_mine_becomes_you() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_two_visits(dir.path());
        let card = card(&store);
        let sam = id("sam");
        assert_eq!(
            in_names(
                "alex is in the visit: the cancel ended only sam's own part",
                &card,
                &sam
            ),
            "Alex is in the visit: the cancel ended only your own part"
        );
        assert_eq!(
            in_names("the office expects sam by 10:07 UTC", &card, &sam),
            "the office expects you by 10:07 UTC"
        );
        assert_eq!(
            in_names("same samples, alex-b and salex", &card, &sam),
            "same samples, alex-b and salex",
            "only whole ids"
        );
        assert_eq!(step_words("DURESS"), "request to the office");
        assert_eq!(step_words("duress stood down"), "cancelling a request");
        assert_eq!(step_words("cancelled"), "cancelled");
    }

    #[test]
    fn my_cancel_while_alex_is_inside_is_shown_as_not_accepted_and_alexs_phone_shows_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_two_visits(dir.path());
        depart(&store, "sam", at(9, 30));
        depart(&store, "alex", at(9, 31));
        // Out of signal of each other: Alex went in alone, and Sam's phone, not knowing, cancelled. Facts
        // both, as the office would replay them.
        let cancel_id = EventId::new_v7();
        let facts = [
            (
                VisitEvent::ArrivedOutside { staff: id("alex") },
                at(9, 55),
                None,
            ),
            (
                VisitEvent::VisitStarted {
                    by: id("alex"),
                    staff: vec![id("alex")],
                },
                at(9, 58),
                None,
            ),
            (
                VisitEvent::Cancelled {
                    staff: id("sam"),
                    reason: CancelReason::FeltUnsafe,
                    note: "Dog loose in the garden".into(),
                },
                at(10, 1),
                Some(cancel_id),
            ),
        ];
        let mut card = card(&store);
        for (event, at, id) in &facts {
            card.state = lifecycle::apply_fact(
                card.state,
                lifecycle::Fact {
                    event,
                    at: *at,
                    clock_shift: TimeDelta::zero(),
                    id: *id,
                },
            );
        }
        let own: HashSet<EventId> = [cancel_id].into();
        let shown = not_accepted(&card, &id("sam"), &own, at(10, 2), utc());
        assert_eq!(
            shown,
            [NotAccepted {
                text: "Not accepted by the office: Alex is in the visit: the cancel ended only your own part (cancelled, 10:01)".into(),
                at: at(10, 1),
            }]
        );
        assert!(
            not_accepted(&card, &id("alex"), &HashSet::new(), at(10, 2), utc()).is_empty(),
            "only the phone that sent it is told"
        );
    }

    #[test]
    fn a_vouch_shows_on_both_phones_and_a_pending_one_says_the_office_still_waits() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_two_visits(dir.path());
        depart(&store, "sam", at(9, 30));
        // Alex's own phone has not said Alex set off: the vouch is pending.
        sam_says_both_arrived(&store);
        let pending = card(&store);
        assert_eq!(
            whereabouts(&pending, &id("sam")),
            ["Alex Jones: not set off on their own phone yet; you said you arrived together, and the office still waits for Alex's phone"]
        );
        assert_eq!(
            whereabouts(&pending, &id("alex")),
            [
                "Sam Patel: outside",
                "You: Sam Patel said you arrived together; the office still waits for this phone to say you set off"
            ]
        );
        let own: HashSet<EventId> = HashSet::new();
        assert!(
            not_accepted(&pending, &id("sam"), &own, at(9, 56), utc())[0]
                .text
                .starts_with(
                    "Not accepted by the office: Alex's own phone has not said they set off"
                ),
            "and Sam's phone says why loudly"
        );

        // Had Alex's phone said so first, the vouch counts at once.
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_two_visits(dir.path());
        depart(&store, "sam", at(9, 30));
        depart(&store, "alex", at(9, 31));
        sam_says_both_arrived(&store);
        let vouched = card(&store);
        assert_eq!(
            whereabouts(&vouched, &id("sam")),
            ["Alex Jones: outside (you said you arrived together)"]
        );
        assert_eq!(
            whereabouts(&vouched, &id("alex")),
            [
                "Sam Patel: outside",
                "You: outside (Sam Patel said you arrived together)"
            ]
        );
    }

    #[test]
    fn running_late_is_shown_to_me_and_to_my_partner_until_arrival() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_two_visits(dir.path());
        perform(
            &store,
            Command::RunningLate {
                staff: id("alex"),
                expected_arrival: at(10, 5),
            },
            at(9, 40),
        );
        let late = card(&store);
        assert_eq!(
            running_late(&late, &id("sam"), at(9, 41), utc()),
            ["Alex is running late: expected 10:05"]
        );
        assert_eq!(
            running_late(&late, &id("alex"), at(9, 41), utc()),
            ["You are running late: expected 10:05"]
        );
        depart(&store, "alex", at(9, 45));
        perform(
            &store,
            Command::ArriveOutside { staff: id("alex") },
            at(10, 4),
        );
        assert!(running_late(&card(&store), &id("sam"), at(10, 4), utc()).is_empty());
    }
}
