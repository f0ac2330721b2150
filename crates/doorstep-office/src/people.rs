//! People and data an admin keeps: staff records (roles, phone, DBS check), pupils and absences imported from
//! the school's MIS as CSV, and the school's policy.
//!
//! A CSV import is judged row by row: every valid row is stored, every invalid row is reported with its line
//! number and reason, and no row is ever half-stored (the valid rows go in together in one transaction).
//! Importing the same pupil (or the same pupil's absence on the same day) again updates it. The rows are
//! in `store/sqlite/people.rs` and `store/postgres/people.rs`.

use std::collections::HashMap;

use chrono::NaiveDate;
use doorstep_core::contact::Postcode;
use doorstep_core::domain::{SchoolTimeZone, StaffMember};
use doorstep_core::ids::{PupilId, SchoolId, StaffId};
use doorstep_core::policy::Policy;

use crate::audit;
use crate::store::StoreError;

/// The pupil CSV's header row, in this order. Exported from the MIS; the header row is required.
///
/// - `pupil_id`: the MIS's id for the pupil, 1-64 letters, digits, `-` or `_`; importing the same id again
///   updates that pupil.
/// - `name`: required.
/// - `date_of_birth`: `YYYY-MM-DD` or `DD/MM/YYYY`, not in the future.
/// - `address_line_1`: required; `address_line_2` and `town` may be empty.
/// - `postcode`: a UK postcode (for example `OK1 2AB`), stored in capitals with one space.
/// - `family_notes`, `medical_needs`: may be empty.
pub const PUPIL_CSV_COLUMNS: [&str; 9] = [
    "pupil_id",
    "name",
    "date_of_birth",
    "address_line_1",
    "address_line_2",
    "town",
    "postcode",
    "family_notes",
    "medical_needs",
];

/// The absence CSV's header row, in this order; the header row is required.
///
/// - `pupil_id`: a pupil already imported for this school.
/// - `date`: `YYYY-MM-DD` or `DD/MM/YYYY`, not in the future; one absence per pupil per day (importing the
///   same day again updates it).
/// - `reason_code`: the MIS's attendance code, 1-8 characters without spaces (for example `N` or `O`).
/// - `contact_made`: whether the family has been reached: `yes`/`no` (also `y`/`n`, `true`/`false`, `1`/`0`).
pub const ABSENCE_CSV_COLUMNS: [&str; 4] = ["pupil_id", "date", "reason_code", "contact_made"];

/// The longest free-text field accepted from a CSV (notes, medical needs): a bound keeps a bad export from
/// filling the briefing with pages of text.
const MAX_NOTES_CHARS: usize = 2000;
/// The longest name or address line accepted.
const MAX_LINE_CHARS: usize = 100;

/// A pupil as the MIS describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PupilRecord {
    pub id: PupilId,
    pub name: String,
    pub date_of_birth: NaiveDate,
    pub address_line_1: String,
    pub address_line_2: String,
    pub town: String,
    pub postcode: Postcode,
    pub family_notes: String,
    pub medical_needs: String,
}

pub use crate::requests::Absence;

/// A CSV row that was not imported, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowProblem {
    /// The line of the file the row starts on (the header is line 1).
    pub line: u64,
    /// The row's `pupil_id` as written, when it had one.
    pub pupil_id: String,
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Rows that added a new pupil (or absence).
    pub imported: usize,
    /// Rows that updated one already stored.
    pub updated: usize,
    pub rejected: Vec<RowProblem>,
}

/// Whether a save added a record or changed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    Added,
    Updated,
}

/// A date as MIS exports write it: `YYYY-MM-DD` or `DD/MM/YYYY`.
pub fn mis_date(text: &str) -> Option<NaiveDate> {
    let text = text.trim();
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(text, "%d/%m/%Y"))
        .ok()
}

/// A pupil's row as [`crate::SqliteStore::pupil_records`] reads it: id, name, date of birth, the two address
/// lines, town, postcode, family notes and medical needs.
pub(crate) type PupilColumns = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
);

/// Which of the MIS's CSV files an import takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportKind {
    Pupils,
    Absences,
}

/// A row that passed its checks: its line, its `pupil_id` as written, and what it says.
pub type Row<T> = (u64, String, T);

/// A CSV file judged row by row, before anything is stored: the rows that passed every check that needs no
/// store (repeats within the file refused too), and the rows refused with their reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedCsv<T> {
    pub rows: Vec<Row<T>>,
    pub rejected: Vec<RowProblem>,
}

/// Reads the MIS's pupil CSV (see [`PUPIL_CSV_COLUMNS`]) as [`crate::SqliteStore::import_csv`] does, without
/// the store: a file that is not CSV or has the wrong header is an `Err` with the reason (nothing imported).
/// Pure, so the fuzz target (`fuzz/fuzz_targets/csv_import.rs`) exercises the importer's own parsing.
pub fn parse_pupils_csv(text: &str, today: NaiveDate) -> Result<ParsedCsv<PupilRecord>, String> {
    let (rows, mut rejected) = read_rows(text, &PUPIL_CSV_COLUMNS, |r| pupil_row(r, today))?;
    let rows = drop_repeats(rows, |p| p.id.clone(), &mut rejected);
    Ok(ParsedCsv { rows, rejected })
}

/// Reads the MIS's absence CSV (see [`ABSENCE_CSV_COLUMNS`]) as [`crate::SqliteStore::import_csv`] does,
/// without the store (whether each pupil is the school's is the store's to say).
pub fn parse_absences_csv(text: &str, today: NaiveDate) -> Result<ParsedCsv<Absence>, String> {
    let (rows, mut rejected) = read_rows(text, &ABSENCE_CSV_COLUMNS, |r| absence_row(r, today))?;
    let rows = drop_repeats(rows, |a| (a.pupil.clone(), a.date), &mut rejected);
    Ok(ParsedCsv { rows, rejected })
}

/// Reads a CSV with the given header. A file that is not CSV or has the wrong header is refused whole (as
/// `Err`, nothing imported); otherwise each data row is handed to `row` with its line number, and rows with
/// the wrong number of columns are reported without reaching it.
fn read_rows<T>(
    text: &str,
    columns: &[&str],
    mut row: impl FnMut(&csv::StringRecord) -> Result<T, String>,
) -> Result<(Vec<Row<T>>, Vec<RowProblem>), String> {
    // Spreadsheet programs often start a UTF-8 export with a byte-order mark.
    let text = text.trim_start_matches('\u{feff}');
    if text.trim().is_empty() {
        return Err("the CSV is empty: paste the export, starting with its header row".into());
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| format!("the header row could not be read as CSV: {e}"))?
        .clone();
    let found: Vec<String> = header.iter().map(|h| h.to_ascii_lowercase()).collect();
    if found != columns {
        return Err(format!(
            "the first line must be the header row `{}`; it was `{}`. Nothing was imported",
            columns.join(","),
            header.iter().collect::<Vec<_>>().join(",")
        ));
    }
    let mut good = Vec::new();
    let mut problems = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                problems.push(RowProblem {
                    line: e.position().map_or(0, |p| line_at(text, p.byte())),
                    pupil_id: String::new(),
                    reason: format!("the row could not be read as CSV: {e}"),
                });
                continue;
            }
        };
        let line = record.position().map_or(0, |p| line_at(text, p.byte()));
        let pupil_id = record.get(0).unwrap_or("").to_owned();
        if record.len() != columns.len() {
            problems.push(RowProblem {
                line,
                pupil_id,
                reason: format!(
                    "the row has {} columns; expected {} ({})",
                    record.len(),
                    columns.len(),
                    columns.join(",")
                ),
            });
            continue;
        }
        match row(&record) {
            Ok(value) => good.push((line, pupil_id, value)),
            Err(reason) => problems.push(RowProblem {
                line,
                pupil_id,
                reason,
            }),
        }
    }
    Ok((good, problems))
}

/// The line (from 1) that a row starting at byte `at` of `text` is on, counting `\n`, `\r\n` and a lone
/// `\r` as one line break each, as the CSV reader splits rows (its own line count sees only `\n`, so a file
/// saved with the old Mac endings had every row reported on line 1: found by the `csv_import` fuzz
/// target). The reader may place a row's start on the `\n` of a `\r\n`; the `\r` before it ends the line.
fn line_at(text: &str, at: u64) -> u64 {
    let end = usize::try_from(at).map_or(text.len(), |at| at.min(text.len()));
    let bytes = &text.as_bytes()[..end];
    let breaks = bytes
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')))
        .count();
    breaks as u64 + 1
}

fn pupil_id(text: &str) -> Result<PupilId, String> {
    PupilId::parse(text).map_err(|_| {
        if text.is_empty() {
            "pupil_id is missing".to_owned()
        } else {
            format!("pupil_id “{text}” is not a valid id (1-64 letters, digits, - or _)")
        }
    })
}

fn bounded(field: &str, text: &str, max: usize, problems: &mut Vec<String>) -> String {
    if text.chars().count() > max {
        problems.push(format!("{field} is longer than {max} characters"));
    }
    text.to_owned()
}

fn past_date(field: &str, text: &str, today: NaiveDate) -> Result<NaiveDate, String> {
    if text.is_empty() {
        return Err(format!("{field} is missing"));
    }
    match mis_date(text) {
        None => Err(format!(
            "{field} “{text}” is not a date (use YYYY-MM-DD or DD/MM/YYYY)"
        )),
        Some(date) if date > today => Err(format!("{field} {date} is in the future")),
        Some(date) => Ok(date),
    }
}

/// One pupil row, with every problem it has in one reason.
fn pupil_row(record: &csv::StringRecord, today: NaiveDate) -> Result<PupilRecord, String> {
    let field = |i: usize| record.get(i).unwrap_or("");
    let mut problems = Vec::new();
    let id = pupil_id(field(0)).map_err(|e| problems.push(e)).ok();
    if field(1).is_empty() {
        problems.push("name is missing".into());
    }
    let name = bounded("name", field(1), MAX_LINE_CHARS, &mut problems);
    let date_of_birth = past_date("date_of_birth", field(2), today)
        .map_err(|e| problems.push(e))
        .ok();
    if field(3).is_empty() {
        problems.push("address_line_1 is missing".into());
    }
    let address_line_1 = bounded("address_line_1", field(3), MAX_LINE_CHARS, &mut problems);
    let address_line_2 = bounded("address_line_2", field(4), MAX_LINE_CHARS, &mut problems);
    let town = bounded("town", field(5), MAX_LINE_CHARS, &mut problems);
    let postcode = Postcode::parse(field(6))
        .map_err(|e| problems.push(e.to_string()))
        .ok();
    let family_notes = bounded("family_notes", field(7), MAX_NOTES_CHARS, &mut problems);
    let medical_needs = bounded("medical_needs", field(8), MAX_NOTES_CHARS, &mut problems);
    match (id, date_of_birth, postcode) {
        (Some(id), Some(date_of_birth), Some(postcode)) if problems.is_empty() => Ok(PupilRecord {
            id,
            name,
            date_of_birth,
            address_line_1,
            address_line_2,
            town,
            postcode,
            family_notes,
            medical_needs,
        }),
        _ => Err(problems.join("; ")),
    }
}

fn absence_row(record: &csv::StringRecord, today: NaiveDate) -> Result<Absence, String> {
    let field = |i: usize| record.get(i).unwrap_or("");
    let mut problems = Vec::new();
    let pupil = pupil_id(field(0)).map_err(|e| problems.push(e)).ok();
    let date = past_date("date", field(1), today)
        .map_err(|e| problems.push(e))
        .ok();
    let reason_code = field(2).to_owned();
    if reason_code.is_empty() {
        problems.push("reason_code is missing".into());
    } else if reason_code.chars().count() > 8 || reason_code.chars().any(char::is_whitespace) {
        problems.push(format!(
            "reason_code “{reason_code}” is not an attendance code (1-8 characters, no spaces)"
        ));
    }
    let contact_made = match field(3).to_ascii_lowercase().as_str() {
        "yes" | "y" | "true" | "1" => Some(true),
        "no" | "n" | "false" | "0" => Some(false),
        other => {
            problems.push(format!("contact_made “{other}” must be yes or no"));
            None
        }
    };
    match (pupil, date, contact_made) {
        (Some(pupil), Some(date), Some(contact_made)) if problems.is_empty() => Ok(Absence {
            pupil,
            date,
            reason_code,
            contact_made,
        }),
        _ => Err(problems.join("; ")),
    }
}

/// Refuses the second and later rows with an id (key) already seen in this file: which one the school meant
/// is not for the office to guess.
fn drop_repeats<T, K: std::hash::Hash + Eq>(
    rows: Vec<Row<T>>,
    key: impl Fn(&T) -> K,
    problems: &mut Vec<RowProblem>,
) -> Vec<Row<T>> {
    let mut first_line: HashMap<K, u64> = HashMap::new();
    let mut out = Vec::new();
    for (line, id, value) in rows {
        if let Some(first) = first_line.get(&key(&value)) {
            problems.push(RowProblem {
                line,
                pupil_id: id,
                reason: format!("repeats line {first}; each row must be different"),
            });
        } else {
            first_line.insert(key(&value), line);
            out.push((line, id, value));
        }
    }
    out
}

/// What storing one imported row did.
pub(crate) enum Stored {
    Added,
    Updated,
    Refused(String),
}

/// Whose an id is, seen from the school saving a record under it.
pub(crate) enum Ownership {
    /// Nobody's yet: the record is added.
    New,
    /// This school's: the record is updated.
    Ours,
    /// Another school's: refused (an id belongs to one school).
    Theirs,
}

/// Whose an id is that belongs to `owner` (if anyone), seen from `school`.
pub(crate) fn ownership(owner: Option<SchoolId>, school: &SchoolId) -> Ownership {
    match owner {
        None => Ownership::New,
        Some(owner) if &owner == school => Ownership::Ours,
        Some(_) => Ownership::Theirs,
    }
}

/// The refusal of a pupil row whose id is another school's pupil's.
pub(crate) const ANOTHER_SCHOOLS_PUPIL: &str = "this pupil_id belongs to another school's pupil";

/// The refusal of an absence of a pupil not (yet) at the school.
pub(crate) fn unknown_pupil(pupil: &PupilId) -> Stored {
    Stored::Refused(format!(
        "there is no pupil “{pupil}” at this school: import the pupils first"
    ))
}

/// The refusal of a member of staff whose id is another school's.
pub(crate) fn another_schools_staff(member: &StaffMember) -> StoreError {
    StoreError::Invalid(format!(
        "the id “{}” is already used by another school's staff; choose another",
        member.id
    ))
}

/// The report of an import: the rows the parse refused and those each store refused, in file order, and
/// how many were added and updated (`stored`: each parsed row's line, id as written, and what storing it
/// did).
pub(crate) fn import_report(
    mut rejected: Vec<RowProblem>,
    stored: Vec<(u64, String, Stored)>,
) -> ImportReport {
    let mut report = ImportReport::default();
    for (line, pupil_id, outcome) in stored {
        match outcome {
            Stored::Added => report.imported += 1,
            Stored::Updated => report.updated += 1,
            Stored::Refused(reason) => rejected.push(RowProblem {
                line,
                pupil_id,
                reason,
            }),
        }
    }
    rejected.sort_by_key(|p| p.line);
    report.rejected = rejected;
    report
}

/// Someone who belongs to one school: a member of staff, or a pupil.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Person<'a> {
    Staff(&'a StaffId),
    Pupil(&'a PupilId),
}

/// A change an admin makes to the school's settings: [`crate::SqliteStore::change_settings`].
#[derive(Debug, Clone, Copy)]
pub enum SettingsChange<'a> {
    /// [`crate::SqliteStore::set_policy`]; the audit entry names the settings that changed (never their
    /// values: a code phrase does not belong in a log). `how` says how it was changed ("saved the settings",
    /// "applied the preset ...").
    Policy { policy: &'a Policy, how: &'a str },
    /// Puts the school on this clock; the audit entry says what it was before.
    TimeZone(SchoolTimeZone),
}

impl SettingsChange<'_> {
    /// Its audit log entry, made by `by`, against the school's clock and policy before it.
    pub(crate) fn audit_entry(
        &self,
        school: &SchoolId,
        by: &StaffId,
        before_zone: &SchoolTimeZone,
        before_policy: &Policy,
    ) -> audit::NewEntry {
        let (record, detail) = match self {
            SettingsChange::Policy { policy, how } => {
                let changed = changed_settings(before_policy, policy);
                let detail = if changed.is_empty() {
                    format!("{how}; nothing changed")
                } else {
                    format!("{how}; changed: {}", changed.join(", "))
                };
                ("policy", detail)
            }
            SettingsChange::TimeZone(zone) => (
                "time zone",
                format!(
                    "the school's clock set to {} (was {})",
                    zone.name(),
                    before_zone.name()
                ),
            ),
        };
        audit::NewEntry::new(school, by, audit::Action::ChangedPolicy)
            .record(record)
            .detail(detail)
    }
}

/// [`Policy::validate`], as the store's refusal: an invalid policy is never stored.
pub(crate) fn checked_policy(policy: &Policy) -> Result<(), StoreError> {
    policy
        .validate()
        .map_err(|e| StoreError::Invalid(e.to_string()))
}

/// The names of the policy's settings (as stored) whose values differ between `a` and `b`.
pub fn changed_settings(a: &Policy, b: &Policy) -> Vec<String> {
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) =
        (serde_json::to_value(a), serde_json::to_value(b))
    else {
        return Vec::new();
    };
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|key| a.get(*key) != b.get(*key))
        .cloned()
        .collect()
}

/// An absence from its stored columns (pupil, date, reason code, contact made).
pub(crate) fn absence_from(
    (pupil, date, reason_code, contact_made): (String, String, String, bool),
) -> Result<Absence, StoreError> {
    Ok(Absence {
        pupil: crate::store::parse_id(&pupil)?,
        date: stored_date(&date)?,
        reason_code,
        contact_made,
    })
}

/// A pupil's record from its stored columns.
pub(crate) fn pupil_record(
    (id, name, born, line_1, line_2, town, postcode, family, medical): PupilColumns,
) -> Result<PupilRecord, StoreError> {
    Ok(PupilRecord {
        id: crate::store::parse_id(&id)?,
        name,
        date_of_birth: stored_date(&born)?,
        address_line_1: line_1,
        address_line_2: line_2,
        town,
        // Stored only after the same parse, so a refusal here means the file was changed.
        postcode: Postcode::parse(&postcode).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        family_notes: family,
        medical_needs: medical,
    })
}

fn stored_date(text: &str) -> Result<NaiveDate, StoreError> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|e| StoreError::Corrupt(format!("bad date {text:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `csv_import` fuzz target: with `\r` line endings every row was reported on line 1.
    #[test]
    fn rows_are_reported_on_their_own_line_whatever_the_line_endings() {
        let today = NaiveDate::from_ymd_opt(2025, 3, 12).unwrap();
        let header = PUPIL_CSV_COLUMNS.join(",");
        let good = "p-1,Ava Example,2015-04-02,1 Long Lane,,Oakton,OK1 2AB,,";
        let bad = "p-2,Ben Example,2015-04-02,2 Short St,,Oakton,not a postcode,,";
        for ending in ["\n", "\r\n", "\r"] {
            let text = [header.as_str(), good, bad, good].join(ending);
            let parsed = parse_pupils_csv(&text, today).unwrap();
            let lines: Vec<u64> = parsed.rows.iter().map(|(line, _, _)| *line).collect();
            assert_eq!(lines, [2], "{ending:?}");
            let rejected: Vec<u64> = parsed.rejected.iter().map(|p| p.line).collect();
            assert_eq!(rejected, [3, 4], "{ending:?}: {:?}", parsed.rejected);
        }
        assert_eq!(line_at("a\r\nb", 0), 1);
        assert_eq!(line_at("a\r\nb", 2), 2);
        assert_eq!(line_at("a\r\nb", 3), 2);
        assert_eq!(line_at("a\rb", 2), 2);
    }

    #[test]
    fn dates_in_both_mis_shapes() {
        let date = NaiveDate::from_ymd_opt(2015, 3, 9);
        assert_eq!(mis_date("2015-03-09"), date);
        assert_eq!(mis_date("09/03/2015"), date);
        assert_eq!(mis_date("2015-13-01"), None);
        assert_eq!(mis_date("yesterday"), None);
    }
}
