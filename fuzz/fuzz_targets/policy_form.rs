//! Fuzzes the admin's policy form (`doorstep_office::web::admin::policy::policy_from_form`, the handler's
//! own reading of the posted fields): starting from what the page fills in for a preset, arbitrary edits
//! (values changed, fields added, repeated or left out, names nobody expects) must give a policy or per-field
//! problems, never a panic; a policy the form accepts passes `Policy::validate`, and posting its own form
//! back unchanged gives the same policy.
#![no_main]

use arbitrary::Arbitrary;
use doorstep_core::policy::Preset;
use doorstep_office::web::admin::policy::{policy_form_fields, policy_from_form};
use doorstep_office::web::forms::Fields;
use libfuzzer_sys::fuzz_target;

/// The names the form really posts, so edits reach the parsing rather than only unknown names.
const NAMES: [&str; 26] = [
    "authoriser",
    "lone_visit_approver",
    "safeguarding_concerns_to",
    "staff_per_visit",
    "first_check_in_after_start",
    "check_in_interval",
    "max_wait_for_family",
    "overdue_grace",
    "escalate_to_authoriser_after",
    "school_hours_start",
    "school_hours_end",
    "evening_starts",
    "evening_visits",
    "code_to_colleague",
    "code_to_reception",
    "absence_visit_day",
    "absence_visit_day_with_concern",
    "record_system",
    "delete_briefings_after_days_offline",
    "pair_waits_outside_until_all_arrived",
    "out_of_hours_needs_responsible_contact",
    "dbs_check_required",
    "animals_secured_or_cancel",
    "purpose",
    "hazard",
    "csrf",
];

#[derive(Debug, Arbitrary)]
enum Name {
    Known(u8),
    Other(String),
}

#[derive(Debug, Arbitrary)]
enum Edit {
    /// Replaces every value sent under the name.
    Set(Name, String),
    /// Sends the name once more (a repeated field, or a second purpose).
    Add(Name, String),
    /// Leaves the field out.
    Remove(Name),
}

#[derive(Debug, Arbitrary)]
struct Input {
    second_preset: bool,
    start_empty: bool,
    edits: Vec<Edit>,
}

fn name(name: &Name) -> String {
    match name {
        Name::Known(i) => NAMES[usize::from(*i) % NAMES.len()].to_owned(),
        Name::Other(text) => text.clone(),
    }
}

fuzz_target!(|input: Input| {
    let preset = if input.second_preset {
        Preset::ALL[1]
    } else {
        Preset::ALL[0]
    };
    let current = preset.policy();
    let mut pairs: Vec<(String, String)> = if input.start_empty {
        Vec::new()
    } else {
        policy_form_fields(&current)
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    };
    for edit in &input.edits {
        match edit {
            Edit::Set(n, value) => {
                let n = name(n);
                pairs.retain(|(k, _)| *k != n);
                pairs.push((n, value.clone()));
            }
            Edit::Add(n, value) => pairs.push((name(n), value.clone())),
            Edit::Remove(n) => {
                let n = name(n);
                pairs.retain(|(k, _)| *k != n);
            }
        }
    }
    match policy_from_form(&Fields::from(pairs), &current) {
        Err(problems) => assert!(!problems.is_empty(), "a refusal names at least one field"),
        Ok(policy) => {
            assert_eq!(
                policy.validate(),
                Ok(()),
                "an accepted policy passes Policy::validate"
            );
            let again = policy_from_form(&policy_form_fields(&policy), &current);
            assert_eq!(again.as_ref(), Ok(&policy), "the form shows what it saved");
        }
    }
});
