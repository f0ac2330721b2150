//! A visit's write-up for CPOMS (the schools' safeguarding record system): plain text to paste, the same
//! content as a PDF, and many visits' write-ups as CSV.
//!
//! The wording is the core's (`doorstep_core::write_up`), shared with the phone; this file gathers what the
//! office knows (the latest write-up, the notices and where they went, the timeline, the alarms) and
//! renders the core's document.

use std::borrow::Cow;

use doorstep_core::lifecycle::VisitEvent;
use doorstep_core::write_up::{
    document, outcome, staff_names, AlarmFacts, Document, Facts, KnownBy, NoticeAbout, NoticeTold,
    OfficeFacts, TimelineStep,
};

pub use doorstep_core::write_up::{LatestWriteUp, SAFEGUARDING_BANNER};

use super::pdf;
use super::{Timeline, VisitRecord};
use crate::alarms::AlarmKind;
use crate::notices::NoticeKind;

/// The latest `WrittenUp` event of a visit: a correction is a new event, and the newest one wins.
///
/// "Latest" is in the lifecycle's canonical order (phone time, then device and sequence), the order the phones
/// rebuild the visit in, so the write-up a member of staff sees on their phone is the one exported.
pub fn latest_write_up(timeline: &Timeline) -> Option<LatestWriteUp<'_>> {
    LatestWriteUp::of(
        timeline
            .events_in_canonical_order()
            .into_iter()
            .filter_map(|entry| match entry.event() {
                Some(VisitEvent::WrittenUp { write_up, .. }) => Some((
                    entry.who.clone().unwrap_or_default(),
                    entry.device_time.unwrap_or(entry.office_time),
                    write_up,
                )),
                _ => None,
            }),
    )
}

/// The note given with the cancellation that counts (the first, as in the lifecycle).
fn cancel_note(timeline: &Timeline) -> Option<&str> {
    timeline
        .events_in_canonical_order()
        .into_iter()
        .find_map(|entry| match entry.event() {
            Some(VisitEvent::Cancelled { note, .. }) if !note.trim().is_empty() => {
                Some(note.as_str())
            }
            _ => None,
        })
}

fn notice_about(kind: NoticeKind) -> NoticeAbout {
    match kind {
        NoticeKind::SafeguardingConcern => NoticeAbout::SafeguardingConcern,
        NoticeKind::Incident => NoticeAbout::Incident,
        NoticeKind::FeltUnsafe => NoticeAbout::FeltUnsafe,
    }
}

/// The record as the core's document, from everything the office holds.
pub fn cpoms_document(record: &VisitRecord) -> Document {
    let timeline = &record.timeline;
    let office = OfficeFacts {
        notices: record
            .notices
            .iter()
            .map(|n| NoticeTold {
                about: notice_about(n.notice.kind),
                told: n.told.clone(),
            })
            .collect(),
        timeline: timeline
            .events_in_canonical_order()
            .into_iter()
            .filter_map(|entry| {
                Some(TimelineStep {
                    at: entry.device_time.unwrap_or(entry.office_time),
                    event: entry.event()?,
                    sentence: entry.sentence(),
                })
            })
            .collect(),
        alarms: record
            .alarms
            .iter()
            .map(|alarm| AlarmFacts {
                duress: alarm.kind == AlarmKind::Duress,
                raised_at: alarm.raised_at,
                acknowledged: alarm.acknowledged_by.clone().zip(alarm.acknowledged_at),
                closed: alarm
                    .closed_by
                    .clone()
                    .zip(alarm.closed_at)
                    .map(|(by, at)| (by, at, alarm.outcome)),
                close_note: alarm.close_note.clone(),
                told: record
                    .alarms_told
                    .iter()
                    .find(|(id, _)| *id == alarm.id)
                    .map(|(_, lines)| lines.clone())
                    .unwrap_or_default(),
            })
            .collect(),
    };
    document(&Facts {
        visit: &record.visit,
        state: &record.state,
        zone: record.time_zone,
        record_system: &record.record_system,
        write_up: latest_write_up(timeline),
        cancel_note: cancel_note(timeline),
        felt_unsafe: record
            .notices
            .iter()
            .any(|n| n.notice.kind == NoticeKind::FeltUnsafe),
        known_by: KnownBy::Office(office),
    })
}

/// The visit's record as plain text, ready to paste into the school's record system (the policy's
/// `record_system`, CPOMS in both presets), which its title names: the core's document, line by line.
pub fn cpoms_text(record: &VisitRecord) -> String {
    cpoms_document(record).to_text()
}

/// The same record as [`cpoms_text`], as a PDF document.
pub fn cpoms_pdf(record: &VisitRecord) -> Result<Vec<u8>, pdf::PdfError> {
    let document = cpoms_document(record);
    pdf::render(&document.title, &document.lines)
}

/// The CSV's columns, in order.
pub const CSV_COLUMNS: [&str; 11] = [
    "visit id",
    "date and time (school's local time)",
    "purpose",
    "pupil",
    "staff",
    "outcome",
    "who was seen",
    "what was discussed",
    "agreements with parents",
    "safeguarding concern",
    "incident",
];

/// A cell's text, guarded against formula injection. Quoting is the `csv` writer's job.
///
/// Spreadsheets run a cell that starts with `=`, `+`, `-` or `@` (or a tab or carriage return, which some
/// treat the same way) as a formula; a leading `'` makes them show it as text instead.
fn formula_guarded(text: &str) -> Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// Writes rows of guarded cells as RFC 4180 CSV: comma-separated, CRLF line ends, quotes (doubled inside)
/// around a cell only when it holds a comma, a quote or a line break. Rows are arrays, so every row has as
/// many cells as the header.
fn csv_bytes<const N: usize>(rows: impl IntoIterator<Item = [String; N]>) -> Vec<u8> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .quote_style(csv::QuoteStyle::Necessary)
        .from_writer(Vec::new());
    for row in rows {
        // Writing into a Vec cannot fail, and every row has N cells.
        writer
            .write_record(row.iter().map(|cell| formula_guarded(cell).into_owned()))
            .expect("a CSV row of N cells written into memory");
    }
    writer
        .into_inner()
        .expect("flushing a CSV writer into memory cannot fail")
}

/// One row per visit that has a write-up (its latest), with a header row, as RFC 4180 CSV (see
/// [`csv_bytes`]).
///
/// Starts with a UTF-8 byte-order mark: schools open these in Excel, which otherwise reads UTF-8 as the
/// Windows code page and garbles names with accents.
pub fn write_ups_csv<'a>(records: impl IntoIterator<Item = &'a VisitRecord>) -> String {
    let header = CSV_COLUMNS.map(str::to_owned);
    let rows = records.into_iter().filter_map(|record| {
        let latest = latest_write_up(&record.timeline)?;
        let visit = &record.visit;
        let write_up = latest.write_up;
        Some([
            visit.id.to_string(),
            record
                .time_zone
                .format(visit.agreed_time, "%Y-%m-%d %H:%M %Z"),
            visit.purpose.label().to_owned(),
            visit.pupil.name.clone(),
            staff_names(visit),
            outcome(&record.time_zone, &record.state),
            write_up.seen.clone(),
            write_up.discussed.clone(),
            write_up.agreements.clone(),
            if write_up.safeguarding_concern {
                "yes".to_owned()
            } else {
                "no".to_owned()
            },
            write_up.incident.clone().unwrap_or_default(),
        ])
    });
    let bytes = csv_bytes(std::iter::once(header).chain(rows));
    // Every cell was a `String`, and the writer adds only ASCII quotes, commas and line ends.
    let text = String::from_utf8(bytes).expect("CSV made of UTF-8 cells is UTF-8");
    format!("\u{FEFF}{text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_guarded_then_quoted_per_rfc_4180() {
        // (cell, how it is written)
        let cases = [
            ("plain", "plain"),
            ("a, b", "\"a, b\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
            ("two\nlines", "\"two\nlines\""),
            ("=SUM(A1)", "'=SUM(A1)"),
            ("+44 7700", "'+44 7700"),
            ("-1", "'-1"),
            ("@cmd", "'@cmd"),
            ("\tindent", "'\tindent"),
            (
                "=HYPERLINK(\"x\",\"y\")",
                "\"'=HYPERLINK(\"\"x\"\",\"\"y\"\")\"",
            ),
            ("", ""),
        ];
        for (input, expected) in cases {
            // The cell between two others, so the separators show too.
            let row = csv_bytes([["a".to_owned(), input.to_owned(), "z".to_owned()]]);
            assert_eq!(
                String::from_utf8(row).unwrap(),
                format!("a,{expected},z\r\n"),
                "{input:?}"
            );
        }
    }
}
