//! A visit's write-up for CPOMS (the schools' safeguarding record system): plain text to paste, the same
//! content as a PDF, and many visits' write-ups as CSV.
//!
//! The text and the PDF are rendered from one list of lines, so they always say the same thing.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use doorstep_core::domain::{SchoolTimeZone, Visit};
use doorstep_core::lifecycle::{StaffProgress, VisitEvent, VisitState, WriteUp};

use super::pdf::{self, Line, Style};
use super::{clock, NoticeRecord, Timeline, TimelineEntry, VisitRecord};
use crate::alarms::AlarmKind;
use crate::notices::NoticeKind;

/// The banner a write-up with a safeguarding concern carries, first thing under the title; where it went
/// follows on the next lines, from the deliveries.
pub const SAFEGUARDING_BANNER: &str = "*** SAFEGUARDING CONCERN ***";

/// The write-up that counts, and how it came to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatestWriteUp<'a> {
    pub write_up: &'a WriteUp,
    /// Who wrote it, by name.
    pub by: String,
    /// When, by the phone's clock.
    pub written_at: DateTime<Utc>,
    /// How many write-ups came before it; each later one is a correction of the one before.
    pub earlier: usize,
    /// An earlier write-up said yes to a safeguarding concern and this one says no. The lifecycle keeps the
    /// concern flagged either way, so the reader is told.
    pub earlier_concern: bool,
}

/// The latest `WrittenUp` event of a visit: a correction is a new event, and the newest one wins.
///
/// "Latest" is in the lifecycle's canonical order (phone time, then device and sequence), the order the phones
/// rebuild the visit in, so the write-up a member of staff sees on their phone is the one exported.
pub fn latest_write_up(timeline: &Timeline) -> Option<LatestWriteUp<'_>> {
    let write_ups: Vec<(&TimelineEntry, &WriteUp)> = timeline
        .events_in_canonical_order()
        .into_iter()
        .filter_map(|entry| match entry.event() {
            Some(VisitEvent::WrittenUp { write_up, .. }) => Some((entry, write_up)),
            _ => None,
        })
        .collect();
    let ((entry, write_up), earlier) = write_ups.split_last()?;
    Some(LatestWriteUp {
        write_up,
        by: entry.who.clone().unwrap_or_default(),
        written_at: entry.device_time.unwrap_or(entry.office_time),
        earlier: earlier.len(),
        earlier_concern: !write_up.safeguarding_concern
            && earlier.iter().any(|(_, w)| w.safeguarding_concern),
    })
}

fn everyone_left(state: &VisitState) -> Option<DateTime<Utc>> {
    state.started_at?;
    let mut last = None;
    for progress in state.staff.values() {
        match progress {
            StaffProgress::NotStarted => {}
            StaffProgress::Left { at } => last = last.max(Some(*at)),
            _ => return None,
        }
    }
    last
}

/// How the visit ended, in one sentence (also the CSV's outcome column).
pub fn outcome(zone: &SchoolTimeZone, state: &VisitState) -> String {
    if let Some((reason, _)) = state.cancelled {
        return format!("Cancelled before it began: {}.", reason.label());
    }
    if let Some(left) = everyone_left(state) {
        return format!(
            "The visit took place; everyone had left by {}.",
            clock(zone, left)
        );
    }
    if state.started_at.is_some() {
        return format!(
            "The visit started but not everyone has said they have left (now: {}).",
            state.phase().label()
        );
    }
    format!(
        "The visit has not taken place (now: {}).",
        state.phase().label()
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

fn staff_names(visit: &Visit) -> String {
    visit
        .staff
        .iter()
        .map(|s| s.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn free_text(lines: &mut Vec<Line>, label: &str, text: &str, when_empty: &str) {
    lines.push(Line::new(Style::Label, format!("{label}:")));
    if text.trim().is_empty() {
        lines.push(Line::new(Style::Body, when_empty));
    } else {
        for line in text.trim_end().lines() {
            lines.push(Line::new(Style::Body, line));
        }
    }
}

fn document_title(zone: &SchoolTimeZone, visit: &Visit) -> String {
    format!(
        "Home visit record: {}, {}",
        visit.pupil.name,
        zone.format(visit.agreed_time, "%-d %B %Y")
    )
}

/// Where the notices of `kind` went, as lines ("Passed on: emailed …, delivered"; "Not yet passed on: …").
fn passed_on(lines: &mut Vec<Line>, notices: &[NoticeRecord], kind: NoticeKind) {
    let of_kind: Vec<&NoticeRecord> = notices.iter().filter(|n| n.notice.kind == kind).collect();
    if of_kind.is_empty() {
        lines.push(Line::new(
            Style::Body,
            "Not yet passed on: the office has no record of passing it on.",
        ));
        return;
    }
    for notice in of_kind {
        for told in &notice.told {
            lines.push(Line::new(Style::Body, told.clone()));
        }
    }
}

/// The record as lines, for both renderings.
fn cpoms_lines(record: &VisitRecord) -> Vec<Line> {
    let (visit, state, timeline) = (&record.visit, &record.state, &record.timeline);
    let zone = &record.time_zone;
    let record_system = &record.record_system;
    let latest = latest_write_up(timeline);
    let mut lines = vec![Line::new(
        Style::Title,
        format!("Home visit record for {record_system}"),
    )];
    if latest
        .as_ref()
        .is_some_and(|l| l.write_up.safeguarding_concern)
    {
        lines.push(Line::new(Style::Flag, SAFEGUARDING_BANNER));
        passed_on(&mut lines, &record.notices, NoticeKind::SafeguardingConcern);
    }
    lines.push(Line::new(Style::Body, ""));
    let field = |label: &str, value: String| Line::new(Style::Body, format!("{label}: {value}"));
    lines.push(field("Pupil", visit.pupil.name.clone()));
    lines.push(field("Purpose", visit.purpose.label().to_owned()));
    lines.push(field(
        "Date and time",
        format!(
            "{} (agreed time, {}; expected to last {} minutes)",
            zone.format(visit.agreed_time, "%A %-d %B %Y, %H:%M %Z"),
            zone.name(),
            visit.expected_length.get()
        ),
    ));
    lines.push(field("Staff", staff_names(visit)));
    lines.push(field("Visit reference", visit.id.to_string()));
    lines.push(field("Outcome", outcome(zone, state)));
    if state.cancelled.is_some() {
        if let Some(note) = cancel_note(timeline) {
            free_text(&mut lines, "Reason given for cancelling", note, "");
        }
    }
    if record
        .notices
        .iter()
        .any(|n| n.notice.kind == NoticeKind::FeltUnsafe)
    {
        passed_on(&mut lines, &record.notices, NoticeKind::FeltUnsafe);
    }

    lines.push(Line::new(Style::Body, ""));
    match &latest {
        None => {
            lines.push(Line::new(Style::Heading, "Write-up"));
            lines.push(Line::new(
                Style::Body,
                "Not written up yet: no write-up has reached the office for this visit.",
            ));
        }
        Some(latest) => {
            let corrections = match latest.earlier {
                0 => String::new(),
                1 => "; it corrects 1 earlier write-up".to_owned(),
                n => format!("; it corrects {n} earlier write-ups"),
            };
            lines.push(Line::new(
                Style::Heading,
                format!(
                    "Write-up by {}, {}{corrections}",
                    latest.by,
                    zone.format(latest.written_at, "%-d %B %Y %H:%M %Z")
                ),
            ));
            let write_up = latest.write_up;
            free_text(&mut lines, "Who was seen", &write_up.seen, "Not recorded.");
            free_text(
                &mut lines,
                "What was discussed",
                &write_up.discussed,
                "Not recorded.",
            );
            free_text(
                &mut lines,
                "Agreements with parents",
                &write_up.agreements,
                "None recorded.",
            );
            let concern = if write_up.safeguarding_concern {
                "YES"
            } else if latest.earlier_concern {
                "No in this write-up, but an earlier write-up said YES"
            } else {
                "No"
            };
            lines.push(Line::new(
                if write_up.safeguarding_concern {
                    Style::Flag
                } else {
                    Style::Label
                },
                format!("Safeguarding concern: {concern}"),
            ));
            if write_up.safeguarding_concern || latest.earlier_concern {
                passed_on(&mut lines, &record.notices, NoticeKind::SafeguardingConcern);
            }
            match write_up.incident.as_deref() {
                Some(incident) if !incident.trim().is_empty() => {
                    free_text(&mut lines, "Incident", incident, "");
                    passed_on(&mut lines, &record.notices, NoticeKind::Incident);
                }
                _ => lines.push(Line::new(Style::Label, "Incident: none reported")),
            }
        }
    }

    lines.push(Line::new(Style::Body, ""));
    lines.push(Line::new(
        Style::Heading,
        format!("Timeline (times from the staff's phones, {})", zone.name()),
    ));
    // The record says when things happened on the doorstep, so it uses the phones' times in the lifecycle's
    // order; the office's full timeline shows when each event arrived.
    let mut any = false;
    for entry in timeline.events_in_canonical_order() {
        let shown = matches!(
            entry.event(),
            Some(
                VisitEvent::Departed { .. }
                    | VisitEvent::ArrivedOutside { .. }
                    | VisitEvent::ArrivedTogether { .. }
                    | VisitEvent::VisitStarted { .. }
                    | VisitEvent::CheckedIn { .. }
                    | VisitEvent::CheckInMissed { .. }
                    | VisitEvent::Left { .. }
                    | VisitEvent::Cancelled { .. }
            )
        );
        if !shown {
            continue;
        }
        any = true;
        let at = entry.device_time.unwrap_or(entry.office_time);
        let when = if zone.date(at) == zone.date(visit.agreed_time) {
            zone.hm(at)
        } else {
            zone.format(at, "%-d %b %H:%M")
        };
        lines.push(Line::new(
            Style::Body,
            format!("{when}  {}", entry.sentence()),
        ));
    }
    if !any {
        lines.push(Line::new(Style::Body, "Nobody has left for this visit."));
    }
    alarm_lines(&mut lines, record);
    lines
}

/// The visit's alarms: what each was, how it ended, and who was told (from the deliveries).
fn alarm_lines(lines: &mut Vec<Line>, record: &VisitRecord) {
    let zone = &record.time_zone;
    if record.alarms.is_empty() {
        return;
    }
    lines.push(Line::new(Style::Body, ""));
    lines.push(Line::new(
        Style::Heading,
        format!("Alarms (office times, {})", zone.name()),
    ));
    for alarm in &record.alarms {
        let what = match alarm.kind {
            AlarmKind::Overdue => "Overdue alarm",
            AlarmKind::Duress => "Duress alarm",
        };
        let ended = match (&alarm.closed_by, alarm.closed_at, alarm.outcome) {
            (Some(by), Some(at), Some(outcome)) => format!(
                "closed by {by} at {}: {}",
                clock(zone, at),
                outcome.label().to_lowercase()
            ),
            (Some(by), Some(at), None) => format!("closed by {by} at {}", clock(zone, at)),
            _ => match (&alarm.acknowledged_by, alarm.acknowledged_at) {
                (Some(by), Some(at)) => {
                    format!(
                        "acknowledged by {by} at {}, not yet closed",
                        clock(zone, at)
                    )
                }
                _ => "not acknowledged yet".to_owned(),
            },
        };
        lines.push(Line::new(
            Style::Body,
            format!(
                "{what} raised at {}; {ended}.",
                clock(zone, alarm.raised_at)
            ),
        ));
        if let Some(note) = &alarm.close_note {
            lines.push(Line::new(Style::Body, format!("  Note: {note}")));
        }
        let told = record
            .alarms_told
            .iter()
            .find(|(id, _)| *id == alarm.id)
            .map(|(_, lines)| lines.as_slice())
            .unwrap_or_default();
        if told.is_empty() {
            lines.push(Line::new(
                Style::Body,
                "  Nothing was sent outside the board for it.",
            ));
        }
        for line in told {
            lines.push(Line::new(Style::Body, format!("  {line}")));
        }
    }
}

/// The visit's record as plain text, ready to paste into the school's record system (the policy's
/// `record_system`, CPOMS in both presets), which its title names.
///
/// Purpose, pupil, date and time, staff, outcome, then the latest write-up (who was seen, what was discussed,
/// agreements with parents, safeguarding concern, incident) with where each concern went, a short timeline
/// and the alarms. A safeguarding concern is flagged under the title. Without a write-up, it says so.
pub fn cpoms_text(record: &VisitRecord) -> String {
    let mut text = String::new();
    for line in cpoms_lines(record) {
        text.push_str(&line.text);
        text.push('\n');
    }
    text
}

/// The same record as [`cpoms_text`], as a PDF document.
pub fn cpoms_pdf(record: &VisitRecord) -> Result<Vec<u8>, pdf::PdfError> {
    pdf::render(
        &document_title(&record.time_zone, &record.visit),
        &cpoms_lines(record),
    )
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
