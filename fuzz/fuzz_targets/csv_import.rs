//! Fuzzes the CSV importers' parsing (`doorstep_office::people::parse_pupils_csv` and
//! `parse_absences_csv`, what `SqliteStore::import_csv` runs before it
//! stores anything): arbitrary text is refused whole or judged row by row, never a panic, and every row
//! accepted obeys the rules the importer documents.
#![no_main]

use std::collections::HashSet;

use chrono::NaiveDate;
use doorstep_core::contact::Postcode;
use doorstep_office::people::{parse_absences_csv, parse_pupils_csv};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (bool, &str)| {
    let (absences, text) = input;
    // The tests' school day; any fixed date will do.
    let today = NaiveDate::from_ymd_opt(2025, 3, 12).expect("a real date");
    if absences {
        let Ok(parsed) = parse_absences_csv(text, today) else {
            return;
        };
        let mut seen = HashSet::new();
        for (line, _, absence) in &parsed.rows {
            assert!(*line >= 2, "the header is line 1");
            assert!(absence.date <= today);
            assert!((1..=8).contains(&absence.reason_code.chars().count()));
            assert!(
                seen.insert((absence.pupil.clone(), absence.date)),
                "no repeats"
            );
        }
    } else {
        let Ok(parsed) = parse_pupils_csv(text, today) else {
            return;
        };
        let mut seen = HashSet::new();
        for (line, _, pupil) in &parsed.rows {
            assert!(*line >= 2, "the header is line 1");
            assert!(pupil.date_of_birth <= today);
            assert!(!pupil.name.is_empty() && !pupil.address_line_1.is_empty());
            assert_eq!(
                Postcode::parse(pupil.postcode.as_str()).as_ref(),
                Ok(&pupil.postcode),
                "a stored postcode is already in its one form"
            );
            assert!(seen.insert(pupil.id.clone()), "no repeats");
        }
    }
});
