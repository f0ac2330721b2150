//! What the visit screen offers next: one large button for the current step, perhaps a smaller one beside
//! it, or a sentence saying why there is nothing to press; and whether "Running late" and "Not going ahead"
//! are open. Pure, so it is tested without a screen.

use chrono::{DateTime, TimeDelta, Utc};
use doorstep_core::ids::StaffId;
use doorstep_core::lifecycle::{self, CancelReason, Command, StaffProgress};

use crate::store::VisitCard;

/// A step a member of staff can take on a visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    LeavingNow,
    ImOutside,
    ArrivedTogether,
    GoingIn,
    ImOk,
    IveLeft,
    /// Not going in after all (the office called the visit off, or a partner cancelled): ends my own part,
    /// which the office keeps watching until I say so.
    OnMyWayBack,
}

impl Step {
    /// The button's words.
    pub fn label(self) -> &'static str {
        match self {
            Step::LeavingNow => "Leaving now",
            Step::ImOutside => "I'm outside",
            Step::ArrivedTogether => "We arrived together",
            Step::GoingIn => "We're going in",
            Step::ImOk => "I'm OK",
            Step::IveLeft => "I've left",
            Step::OnMyWayBack => "On my way back",
        }
    }

    /// What the button does, for screen readers.
    pub fn description(self) -> &'static str {
        match self {
            Step::LeavingNow => "Tell the office you are leaving for this visit",
            Step::ImOutside => "Tell the office you are outside the address",
            Step::ArrivedTogether => "Tell the office everyone on the visit arrived together",
            Step::GoingIn => "Tell the office you are all going in",
            Step::ImOk => "Check in: tell the office you are OK",
            Step::IveLeft => "Tell the office you have left the property",
            Step::OnMyWayBack => "Tell the office you are not going in and are on your way back",
        }
    }

    /// A stable element id, so tests and keyboard users can find the button.
    pub fn element_id(self) -> &'static str {
        match self {
            Step::LeavingNow => "step-leaving-now",
            Step::ImOutside => "step-im-outside",
            Step::ArrivedTogether => "step-arrived-together",
            Step::GoingIn => "step-going-in",
            Step::ImOk => "step-im-ok",
            Step::IveLeft => "step-ive-left",
            Step::OnMyWayBack => "step-on-my-way-back",
        }
    }

    /// The lifecycle command this step sends for `me` on this visit.
    pub fn command(self, card: &VisitCard, me: &StaffId) -> Command {
        let staff = me.clone();
        match self {
            Step::LeavingNow => Command::Depart {
                staff,
                expected_arrival: card.visit.agreed_time,
                expected_end: card.visit.expected_end(),
            },
            Step::ImOutside => Command::ArriveOutside { staff },
            Step::ArrivedTogether => Command::ArriveTogether {
                by: staff,
                staff: card.visit.staff_ids(),
            },
            Step::GoingIn => Command::StartVisit { by: staff },
            Step::ImOk => Command::CheckIn { staff },
            Step::IveLeft => Command::Leave { staff },
            Step::OnMyWayBack => {
                // The reason the visit ended, so the office's record reads as one story; a reason that
                // needs words gets them.
                let reason = card
                    .state
                    .cancelled
                    .map_or(CancelReason::CalledOffByOffice, |(reason, _)| reason);
                let note = if reason.needs_note() {
                    format!("On my way back: {}.", cancelled_by_words(card, me))
                } else {
                    String::new()
                };
                Command::Cancel {
                    staff,
                    reason,
                    note,
                }
            }
        }
    }
}

/// Who ended the visit, in words for the person holding the phone: "the office called the visit off",
/// "Alex Jones cancelled it (Felt unsafe)", "you cancelled it (...)".
fn cancelled_by_words(card: &VisitCard, me: &StaffId) -> String {
    let state = &card.state;
    let Some((reason, _)) = state.cancelled else {
        return "the visit is not going ahead".to_owned();
    };
    match (reason, &state.cancelled_by) {
        (CancelReason::CalledOffByOffice, _) => match &card.called_off {
            Some(decision) if !decision.reason.trim().is_empty() => {
                format!(
                    "the office called the visit off ({})",
                    decision.reason.trim()
                )
            }
            _ => "the office called the visit off".to_owned(),
        },
        (CancelReason::FamilyCancelled, Some(by)) if by == me => {
            "you said the family cancelled".to_owned()
        }
        (CancelReason::FamilyCancelled, Some(by)) => {
            format!("{} said the family cancelled", card.name_of(by))
        }
        (reason, Some(by)) if by == me => format!("you cancelled it ({})", reason.label()),
        (reason, Some(by)) => format!("{} cancelled it ({})", card.name_of(by), reason.label()),
        (reason, None) => format!("it was cancelled ({})", reason.label()),
    }
}

/// Why "Leaving now" is not offered yet.
pub const BRIEFING_FIRST: &str = "Read the briefing and tick its checklist before you leave.";
/// Why "Leaving now" is not offered again after the office changed the briefing.
pub const BRIEFING_CHANGED: &str =
    "The briefing has changed since you read it: read it again and tick the checklist before you leave.";

/// What the visit screen shows for the current step.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Steps {
    /// Why there is nothing (or less) to press, or what to do meanwhile.
    pub notice: Option<String>,
    /// The one large button.
    pub main: Option<Step>,
    /// Smaller buttons beside it.
    pub others: Vec<Step>,
}

/// The steps open to `me` on this visit at `now`. Only steps the lifecycle would accept are offered, so a
/// button never leads to a refusal the screen could have foreseen.
pub fn steps_for(card: &VisitCard, me: &StaffId, now: DateTime<Utc>) -> Steps {
    let state = &card.state;
    let Some(progress) = state.progress(me) else {
        return notice("You are not on this visit.");
    };
    let watched = state.is_watched(me);
    if !watched && !matches!(progress, StaffProgress::Left { .. }) {
        if let Some(declined) = &state.declined {
            return notice(&format!(
                "The office declined this visit: {}. Do not go.",
                declined.reason.trim()
            ));
        }
        if state.cancelled.is_some() {
            return notice(&cancelled_notice(card, me));
        }
        if let Some(ended) = state.part_ended(me) {
            // My own cancel, while a colleague was inside: the visit goes on without me.
            return notice(&format!(
                "Your part in this visit ended ({}). The office still watches whoever is inside.",
                ended.reason.label()
            ));
        }
    }
    // Written up by a partner while I am still out: my own steps go on.
    if state.written_up_at.is_some() && !progress.is_out() {
        return notice("This visit is written up.");
    }
    if progress == StaffProgress::NotStarted && state.authorised.is_none() {
        if let Some(withdrawn) = &state.authorisation_withdrawn {
            return notice(&format!(
                "The office withdrew the authorisation: {}. Do not leave for the visit unless it is authorised again.",
                withdrawn.reason.trim()
            ));
        }
        if let Some(role) = card.awaiting_authorisation_by {
            return notice(&format!(
                "Awaiting authorisation by {}. Do not leave for the visit until it is authorised.",
                role.label()
            ));
        }
    }
    // The visit was ended while I am on the way or at the door: the office keeps watching me until I say
    // I am not going in. (Someone inside goes on below: they can always say "I've left".)
    if state.cancelled.is_some() && watched && !progress.is_inside() {
        let mut steps = main(Step::OnMyWayBack);
        steps.notice = Some(format!(
            "{}. The office is still watching you: tap \"On my way back\" when you are not going in.",
            sentence(&cancelled_by_words(card, me))
                .trim_end_matches('.')
                .to_owned()
        ));
        return checked(steps, card, me, now);
    }
    let has_partner = card.partners(me).next().is_some();
    let steps = match progress {
        // "Leaving now" waits for the briefing checklist: the policies want the briefing read before the door.
        StaffProgress::NotStarted if !state.briefing_read.contains_key(me) => {
            notice(BRIEFING_FIRST)
        }
        StaffProgress::NotStarted if card.briefing_changed_since_read(me) => {
            notice(BRIEFING_CHANGED)
        }
        StaffProgress::NotStarted => main(Step::LeavingNow),
        StaffProgress::Departed { .. } if has_partner => Steps {
            main: Some(Step::ImOutside),
            others: vec![Step::ArrivedTogether],
            notice: None,
        },
        StaffProgress::Departed { .. } => main(Step::ImOutside),
        StaffProgress::Outside { .. } => {
            // Still to come: not at the door on this phone's record, not vouched for, still expected.
            let missing: Vec<&str> = card
                .partners(me)
                .filter(|partner| {
                    !state.progress(&partner.id).is_some_and(|p| p.is_outside())
                        && !state.vouch_pending.contains_key(&partner.id)
                        && state.part_ended(&partner.id).is_none()
                })
                .map(|partner| partner.name.as_str())
                .collect();
            if missing.is_empty() {
                main(Step::GoingIn)
            } else if !card.policy.pair_waits_outside_until_all_arrived {
                Steps {
                    notice: Some(format!(
                        "{} not here yet; the school's policy lets you go in first.",
                        join_names(&missing)
                    )),
                    main: Some(Step::GoingIn),
                    others: vec![Step::ArrivedTogether],
                }
            } else {
                Steps {
                    notice: Some(format!(
                        "Wait outside until {} {}.",
                        join_names(&missing),
                        if missing.len() == 1 {
                            "arrives"
                        } else {
                            "arrive"
                        }
                    )),
                    main: None,
                    others: vec![Step::ArrivedTogether],
                }
            }
        }
        StaffProgress::Inside { .. } => Steps {
            main: Some(Step::IveLeft),
            others: vec![Step::ImOk],
            notice: state.cancelled.map(|_| {
                format!(
                    "{}. Tap \"I've left\" as soon as you are out.",
                    sentence(&cancelled_by_words(card, me)).trim_end_matches('.')
                )
            }),
        },
        StaffProgress::Left { .. } => {
            let partner_still_in = card.partners(me).any(|partner| {
                matches!(
                    state.progress(&partner.id),
                    Some(StaffProgress::Outside { .. } | StaffProgress::Inside { .. })
                )
            });
            if partner_still_in {
                notice("You have left the property. The office still waits for your partner's \"I've left\".")
            } else {
                notice("You have left the property.")
            }
        }
    };
    checked(steps, card, me, now)
}

/// `steps` with only the buttons the lifecycle would accept now; a refused main step says why instead.
fn checked(mut steps: Steps, card: &VisitCard, me: &StaffId, now: DateTime<Utc>) -> Steps {
    let state = &card.state;
    let accepts =
        |step: &Step| lifecycle::decide(state, &step.command(card, me), &card.policy, now).is_ok();
    steps.others.retain(accepts);
    if let Some(step) = steps.main {
        if let Err(refusal) = lifecycle::decide(state, &step.command(card, me), &card.policy, now) {
            steps.main = None;
            steps
                .notice
                .get_or_insert_with(|| sentence(&refusal.to_string()));
        }
    }
    steps
}

/// What a visit that ended for me says: who ended it and why.
fn cancelled_notice(card: &VisitCard, me: &StaffId) -> String {
    let state = &card.state;
    match state.cancelled {
        Some((CancelReason::CalledOffByOffice, _)) => sentence(&cancelled_by_words(card, me)),
        Some((CancelReason::FamilyCancelled, _)) => format!(
            "Not going ahead: {}.",
            cancelled_by_words(card, me).trim_end_matches('.')
        ),
        Some((reason, _)) => match &state.cancelled_by {
            Some(by) if by != me => format!(
                "This visit was cancelled: {} ({}).",
                reason.label(),
                card.name_of(by)
            ),
            _ => format!("This visit was cancelled: {}.", reason.label()),
        },
        None => "This visit is not going ahead.".to_owned(),
    }
}

/// How long ahead "Running late" is checked for: any new arrival the lifecycle would take.
const LATE_PROBE: TimeDelta = TimeDelta::minutes(10);

/// Whether "Running late" is open to `me`: the visit is authorised and I have not arrived, and the
/// lifecycle would take a new arrival time.
pub fn may_run_late(card: &VisitCard, me: &StaffId, now: DateTime<Utc>) -> bool {
    let command = Command::RunningLate {
        staff: me.clone(),
        expected_arrival: now + LATE_PROBE,
    };
    card.state.authorised.is_some()
        && !matches!(
            card.state.progress(me),
            Some(StaffProgress::NotStarted) if card.state.part_ended(me).is_some()
        )
        && lifecycle::decide(&card.state, &command, &card.policy, now).is_ok()
}

/// The command for "Not going ahead (the family cancelled)", before anyone set off.
pub fn not_going_ahead(me: &StaffId, note: String) -> Command {
    Command::Cancel {
        staff: me.clone(),
        reason: CancelReason::FamilyCancelled,
        note,
    }
}

/// Whether "Not going ahead (the family cancelled)" is open to `me`: before I set off on an authorised
/// visit the lifecycle still takes a cancel for.
pub fn may_say_not_going_ahead(card: &VisitCard, me: &StaffId, now: DateTime<Utc>) -> bool {
    card.state.authorised.is_some()
        && card.state.progress(me) == Some(StaffProgress::NotStarted)
        && lifecycle::decide(
            &card.state,
            &not_going_ahead(me, String::new()),
            &card.policy,
            now,
        )
        .is_ok()
}

/// Whether the door's "Cancel the visit" is open to `me`: on the way or at the door, before going in, and
/// the visit not already ended.
pub fn may_cancel_at_the_door(card: &VisitCard, me: &StaffId) -> bool {
    let state = &card.state;
    matches!(
        state.progress(me),
        Some(StaffProgress::Departed { .. } | StaffProgress::Outside { .. })
    ) && state.is_watched(me)
        && state.cancelled.is_none()
        && state.started_at.is_none()
}

fn main(step: Step) -> Steps {
    Steps {
        main: Some(step),
        ..Steps::default()
    }
}

fn notice(text: &str) -> Steps {
    Steps {
        notice: Some(text.to_owned()),
        ..Steps::default()
    }
}

/// "Sam", "Sam and Jo", "Sam, Jo and Ali".
fn join_names(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// A lifecycle message as a sentence: capitalised, with a full stop.
fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    let mut out: String = chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    if !out.is_empty() && !out.ends_with('.') {
        out.push('.');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_join_like_a_sentence() {
        assert_eq!(join_names(&[]), "");
        assert_eq!(join_names(&["Sam"]), "Sam");
        assert_eq!(join_names(&["Sam", "Jo"]), "Sam and Jo");
        assert_eq!(join_names(&["Sam", "Jo", "Ali"]), "Sam, Jo and Ali");
    }

    #[test]
    fn lifecycle_messages_become_sentences() {
        assert_eq!(
            sentence("the visit has already started"),
            "The visit has already started."
        );
        assert_eq!(sentence("wait."), "Wait.");
        assert_eq!(sentence(""), "");
    }
}

#[cfg(test)]
mod visit_tests {
    use doorstep_core::lifecycle::Command;

    use super::*;
    use crate::fixtures::{at, id, store_with_two_visits, visit_id};
    use crate::store::AppStore;

    fn steps(store: &AppStore, visit: &str) -> Steps {
        let card = store.visit(&visit_id(visit)).unwrap().unwrap();
        steps_for(&card, &id("sam"), at(9, 0))
    }

    fn read_briefing(store: &AppStore, visit: &str) {
        store
            .perform(
                &visit_id(visit),
                Command::ConfirmBriefing {
                    staff: id("sam"),
                    ticked: doorstep_core::lifecycle::BriefingCheck::ALL.to_vec(),
                },
                at(8, 50),
            )
            .unwrap();
    }

    /// The big button and the others beside it, for Sam on `v-auth`.
    fn offered(store: &AppStore) -> (Option<Step>, Vec<Step>) {
        let got = steps(store, "v-auth");
        (got.main, got.others)
    }

    /// Alex's phone says Alex set off for `v-auth` at `now`, as the office would relay it.
    fn alex_sets_off(store: &AppStore, now: DateTime<Utc>) {
        let card = store.visit(&visit_id("v-auth")).unwrap().unwrap();
        store
            .perform(
                &visit_id("v-auth"),
                Command::Depart {
                    staff: id("alex"),
                    expected_arrival: card.visit.agreed_time,
                    expected_end: card.visit.expected_end(),
                },
                now,
            )
            .unwrap();
    }

    /// The two visits, with Sam's briefing read and Sam on the way to `v-auth`.
    fn sam_on_the_way(dir: &std::path::Path) -> AppStore {
        let store = store_with_two_visits(dir);
        read_briefing(&store, "v-auth");
        take(&store, "v-auth", Step::LeavingNow);
        store
    }

    fn take(store: &AppStore, visit: &str, step: Step) {
        let card = store.visit(&visit_id(visit)).unwrap().unwrap();
        store
            .perform(&visit_id(visit), step.command(&card, &id("sam")), at(9, 0))
            .unwrap();
    }

    #[test]
    fn an_unauthorised_visit_offers_nothing_and_says_who_must_authorise() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_two_visits(dir.path());
        let got = steps(&store, "v-wait");
        assert_eq!(got.main, None);
        assert!(got.others.is_empty());
        assert!(got
            .notice
            .unwrap()
            .starts_with("Awaiting authorisation by headteacher"));
    }

    #[test]
    fn a_pair_visit_goes_step_by_step_and_waits_for_the_partner() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_two_visits(dir.path());
        assert_eq!(
            steps(&store, "v-auth"),
            Steps {
                notice: Some(BRIEFING_FIRST.to_owned()),
                ..Steps::default()
            },
            "no leaving before the briefing checklist"
        );
        read_briefing(&store, "v-auth");
        assert_eq!(
            steps(&store, "v-auth"),
            Steps {
                main: Some(Step::LeavingNow),
                ..Steps::default()
            }
        );

        take(&store, "v-auth", Step::LeavingNow);
        assert_eq!(
            offered(&store),
            (Some(Step::ImOutside), vec![Step::ArrivedTogether])
        );

        take(&store, "v-auth", Step::ImOutside);
        let got = steps(&store, "v-auth");
        assert_eq!(got.main, None);
        assert_eq!(
            got.notice.as_deref(),
            Some("Wait outside until Alex Jones arrives.")
        );
        // Sam can still confirm that Alex arrived with them: Alex's phone may have no signal.
        assert_eq!(got.others, vec![Step::ArrivedTogether]);
    }

    #[test]
    fn once_inside_the_big_button_is_ive_left_with_im_ok_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_two_visits(dir.path());
        // Alex's departure, as the office would relay it from Alex's phone.
        alex_sets_off(&store, at(9, 0));
        read_briefing(&store, "v-auth");
        take(&store, "v-auth", Step::LeavingNow);
        assert_eq!(
            offered(&store),
            (Some(Step::ImOutside), vec![Step::ArrivedTogether])
        );

        take(&store, "v-auth", Step::ArrivedTogether);
        assert_eq!(steps(&store, "v-auth").main, Some(Step::GoingIn));
        take(&store, "v-auth", Step::GoingIn);
        assert_eq!(offered(&store), (Some(Step::IveLeft), vec![Step::ImOk]));
        take(&store, "v-auth", Step::ImOk);
        take(&store, "v-auth", Step::IveLeft);
        let got = steps(&store, "v-auth");
        assert_eq!(got.main, None);
        assert!(got.notice.is_some());
    }

    #[test]
    fn a_partners_write_up_leaves_me_my_ive_left_while_i_am_still_inside() {
        let dir = tempfile::tempdir().unwrap();
        let store = sam_on_the_way(dir.path());
        // Alex set off too, as the office would relay it from Alex's phone.
        alex_sets_off(&store, at(8, 55));
        take(&store, "v-auth", Step::ArrivedTogether);
        take(&store, "v-auth", Step::GoingIn);
        // Alex leaves first and writes up, as the office would relay it from Alex's phone.
        for command in [
            Command::Leave { staff: id("alex") },
            Command::WriteUp {
                staff: id("alex"),
                write_up: doorstep_core::lifecycle::WriteUp {
                    seen: "Ava and her mother".into(),
                    discussed: "Attendance".into(),
                    agreements: String::new(),
                    safeguarding_concern: false,
                    incident: None,
                },
            },
        ] {
            store
                .perform(&visit_id("v-auth"), command, at(9, 5))
                .unwrap();
        }
        assert_eq!(offered(&store), (Some(Step::IveLeft), vec![Step::ImOk]));
        take(&store, "v-auth", Step::IveLeft);
        assert_eq!(
            steps(&store, "v-auth").notice.as_deref(),
            Some("This visit is written up.")
        );
    }

    #[test]
    fn a_partner_saying_not_going_ahead_leaves_me_on_the_way_with_on_my_way_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = sam_on_the_way(dir.path());
        // Alex's phone, relayed by the office: the family rang Alex.
        store
            .perform(
                &visit_id("v-auth"),
                not_going_ahead(&id("alex"), String::new()),
                at(9, 5),
            )
            .unwrap();
        let card = store.visit(&visit_id("v-auth")).unwrap().unwrap();
        let got = steps_for(&card, &id("sam"), at(9, 6));
        assert_eq!(got.main, Some(Step::OnMyWayBack));
        assert_eq!(
            got.notice.as_deref(),
            Some("Alex Jones said the family cancelled. The office is still watching you: tap \"On my way back\" when you are not going in.")
        );
        assert_eq!(
            Step::OnMyWayBack.command(&card, &id("sam")),
            Command::Cancel {
                staff: id("sam"),
                reason: CancelReason::FamilyCancelled,
                note: String::new(),
            },
            "the partner's reason; it needs no note"
        );
        assert!(!may_run_late(&card, &id("sam"), at(9, 6)));
        assert!(!may_cancel_at_the_door(&card, &id("sam")));
        store
            .perform(
                &visit_id("v-auth"),
                Step::OnMyWayBack.command(&card, &id("sam")),
                at(9, 6),
            )
            .unwrap();
        let card = store.visit(&visit_id("v-auth")).unwrap().unwrap();
        assert!(!card.state.is_watched(&id("sam")));
        assert_eq!(
            steps_for(&card, &id("sam"), at(9, 7)).notice.as_deref(),
            Some("Not going ahead: Alex Jones said the family cancelled.")
        );
    }

    #[test]
    fn someone_inside_can_always_leave_even_after_the_office_called_the_visit_off() {
        let dir = tempfile::tempdir().unwrap();
        let store = sam_on_the_way(dir.path());
        take(&store, "v-auth", Step::ArrivedTogether);
        take(&store, "v-auth", Step::GoingIn);
        let mut card = store.visit(&visit_id("v-auth")).unwrap().unwrap();
        // The office called it off before it heard they had gone in: a fact all the same.
        card.state = lifecycle::apply(
            card.state,
            &lifecycle::VisitEvent::CalledOff {
                by: id("head"),
                reason: "Family rang the school".into(),
            },
            at(9, 1),
        );
        let got = steps_for(&card, &id("sam"), at(9, 2));
        assert_eq!(
            (got.main, got.others),
            (Some(Step::IveLeft), vec![Step::ImOk])
        );
        assert!(
            got.notice
                .unwrap()
                .ends_with("Tap \"I've left\" as soon as you are out."),
            "and says why"
        );
    }

    #[test]
    fn a_changed_briefing_is_read_again_before_leaving_now() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_two_visits(dir.path());
        read_briefing(&store, "v-auth");
        let mut card = store.visit(&visit_id("v-auth")).unwrap().unwrap();
        assert_eq!(
            steps_for(&card, &id("sam"), at(9, 0)).main,
            Some(Step::LeavingNow)
        );
        card.state = lifecycle::apply(
            card.state,
            &lifecycle::VisitEvent::BriefingUpdated {
                by: id("head"),
                version: 1,
            },
            at(8, 55),
        );
        assert!(card.briefing_changed_since_read(&id("sam")));
        assert_eq!(
            steps_for(&card, &id("sam"), at(9, 0)),
            Steps {
                notice: Some(BRIEFING_CHANGED.to_owned()),
                ..Steps::default()
            }
        );
        // Not read at all yet: the first reading is the current version, nothing "changed".
        assert!(!card.briefing_changed_since_read(&id("alex")));
    }
}
