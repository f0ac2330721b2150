//! The write-up as a block of text ready to paste into the school's record system (the policy's
//! `record_system`: CPOMS in both shipped policies). Pure, so the exact wording is tested without a screen.
//! It says only what this phone knows: a safeguarding concern is marked as one the safeguarding contact
//! must be told of, never as already passed on (the office sends it and records the delivery).

use chrono::{DateTime, FixedOffset, Utc};
use doorstep_core::domain::{Role, Visit};
use doorstep_core::lifecycle::{CancelReason, VisitState, WriteUp};

/// How a cancelled visit was called off, when this phone knows the note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancellation {
    pub reason: CancelReason,
    pub note: String,
}

/// Who a safeguarding concern goes to, as staff say it: "the DSL", "the safeguarding lead".
pub fn concerns_contact(role: Role) -> String {
    match role {
        Role::Dsl => "the DSL".to_owned(),
        other => format!("the {}", other.label()),
    }
}

/// The text to paste, in the order a safeguarding record reads: what, who, when, then the substance.
/// `concerns_to` is the policy's `safeguarding_concerns_to`.
pub fn cpoms_summary(
    visit: &Visit,
    state: &VisitState,
    write_up: &WriteUp,
    cancellation: Option<&Cancellation>,
    concerns_to: Role,
    offset: FixedOffset,
) -> String {
    let local = |at: DateTime<Utc>| at.with_timezone(&offset).format("%H:%M").to_string();
    let staff: Vec<&str> = visit.staff.iter().map(|s| s.name.as_str()).collect();
    let mut lines = vec![
        format!("Home visit: {}", visit.purpose.label()),
        format!("Pupil: {}", visit.pupil.name),
        format!(
            "Date: {}, agreed time {}",
            visit.agreed_time.with_timezone(&offset).format("%-d %B %Y"),
            local(visit.agreed_time)
        ),
        format!("Staff: {}", staff.join(", ")),
    ];
    let left = state
        .staff
        .values()
        .filter_map(|p| match p {
            doorstep_core::lifecycle::StaffProgress::Left { at } => Some(*at),
            _ => None,
        })
        .max();
    match (state.started_at, left, cancellation) {
        (Some(started), Some(left), _) => lines.push(format!(
            "Outcome: visit took place, {} to {}",
            local(started),
            local(left)
        )),
        (_, _, Some(cancelled)) if cancelled.note.trim().is_empty() => {
            lines.push(format!("Outcome: cancelled ({})", cancelled.reason.label()))
        }
        (_, _, Some(cancelled)) => lines.push(format!(
            "Outcome: cancelled ({}): {}",
            cancelled.reason.label(),
            cancelled.note.trim()
        )),
        _ if state.cancelled.is_some() => lines.push("Outcome: cancelled".to_owned()),
        _ => {}
    }
    let or_none = |text: &str| {
        if text.trim().is_empty() {
            "None recorded".to_owned()
        } else {
            text.trim().to_owned()
        }
    };
    lines.push(format!("Seen: {}", or_none(&write_up.seen)));
    lines.push(format!("Discussed: {}", or_none(&write_up.discussed)));
    lines.push(format!(
        "Agreements with parents: {}",
        or_none(&write_up.agreements)
    ));
    lines.push(format!(
        "Safeguarding concern: {}",
        if write_up.safeguarding_concern {
            format!("Yes ({} to be told at once)", concerns_contact(concerns_to))
        } else {
            "No".to_owned()
        }
    ));
    lines.push(format!(
        "Incident: {}",
        or_none(write_up.incident.as_deref().unwrap_or(""))
    ));
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{at, id, visit};
    use doorstep_core::lifecycle::{apply, VisitEvent};

    #[test]
    fn a_visit_that_took_place_reads_in_record_order() {
        let visit = visit("v-auth", at(10, 0), false);
        let mut state = VisitState::new(visit.staff_ids());
        let events = [
            (
                VisitEvent::VisitStarted {
                    by: id("sam"),
                    staff: vec![id("sam"), id("alex")],
                },
                at(10, 2),
            ),
            (VisitEvent::Left { staff: id("sam") }, at(10, 40)),
            (VisitEvent::Left { staff: id("alex") }, at(10, 41)),
        ];
        for (event, when) in &events {
            state = apply(state, event, *when);
        }
        let write_up = WriteUp {
            seen: "Ava and her mother".into(),
            discussed: "Attendance since half term".into(),
            agreements: String::new(),
            safeguarding_concern: true,
            incident: None,
        };
        let text = cpoms_summary(
            &visit,
            &state,
            &write_up,
            None,
            Role::Dsl,
            FixedOffset::east_opt(0).unwrap(),
        );
        assert_eq!(
            text,
            "Home visit: Safe and well check\n\
             Pupil: Ava Smith\n\
             Date: 23 November 2026, agreed time 10:00\n\
             Staff: Sam Patel, Alex Jones\n\
             Outcome: visit took place, 10:02 to 10:41\n\
             Seen: Ava and her mother\n\
             Discussed: Attendance since half term\n\
             Agreements with parents: None recorded\n\
             Safeguarding concern: Yes (the DSL to be told at once)\n\
             Incident: None recorded"
        );
    }

    #[test]
    fn a_cancelled_visit_says_why() {
        let visit = visit("v-auth", at(10, 0), false);
        let state = VisitState::new(visit.staff_ids());
        let write_up = WriteUp {
            seen: String::new(),
            discussed: String::new(),
            agreements: String::new(),
            safeguarding_concern: false,
            incident: None,
        };
        let cancelled = Cancellation {
            reason: CancelReason::FeltUnsafe,
            note: "Shouting inside".into(),
        };
        let text = cpoms_summary(
            &visit,
            &state,
            &write_up,
            Some(&cancelled),
            Role::SafeguardingLead,
            FixedOffset::east_opt(0).unwrap(),
        );
        assert!(
            text.contains("Outcome: cancelled (Felt unsafe): Shouting inside"),
            "{text}"
        );
        assert!(text.contains("Safeguarding concern: No"));
    }

    #[test]
    fn a_concern_goes_to_whom_the_policy_names_and_is_never_called_passed_on() {
        let visit = visit("v-auth", at(10, 0), false);
        let state = VisitState::new(visit.staff_ids());
        let write_up = WriteUp {
            seen: "Ava".into(),
            discussed: "School".into(),
            agreements: String::new(),
            safeguarding_concern: true,
            incident: None,
        };
        let text = |role| {
            cpoms_summary(
                &visit,
                &state,
                &write_up,
                None,
                role,
                FixedOffset::east_opt(0).unwrap(),
            )
        };
        assert!(text(Role::SafeguardingLead)
            .contains("Safeguarding concern: Yes (the safeguarding lead to be told at once)"));
        assert!(!text(Role::Dsl).contains("passed"));
    }
}
