//! The write-up's content model: what a visit's record for the school's record system (the policy's
//! `record_system`, CPOMS in both presets) says, in one wording for the phone and the office.
//!
//! [`document`] is a pure function from what is known about a visit to a [`Document`]: a title and ordered,
//! styled lines. The phone renders it as text to paste; the office as text, as a PDF and (through
//! [`outcome`] and [`staff_names`]) as CSV. Each side says only what it knows ([`KnownBy`]): a phone never
//! knows whether a notice was passed on, so it says who must be told; the office says where each notice
//! went, from its deliveries, and adds the timeline and the alarms.

use chrono::{DateTime, Utc};

use crate::domain::{Role, SchoolTimeZone, Visit};
use crate::lifecycle::{AlarmOutcome, VisitEvent, VisitState, WriteUp};

/// The banner a write-up with a safeguarding concern carries, first thing under the title; where it went
/// follows on the next lines.
pub const SAFEGUARDING_BANNER: &str = "*** SAFEGUARDING CONCERN ***";

/// How a line is set: the text rendering ignores it, the PDF follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// The document's title, large and bold.
    Title,
    /// A section heading, bold, with space above it.
    Heading,
    /// A field's label on a line of its own, bold.
    Label,
    Body,
    /// Something a reader must not miss: bold, red, larger.
    Flag,
}

/// One line of the document. Leading spaces indent it (and, in the PDF, every wrapped piece of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub style: Style,
    pub text: String,
}

impl Line {
    pub fn new(style: Style, text: impl Into<String>) -> Self {
        Self {
            style,
            text: text.into(),
        }
    }
}

/// A visit's record: its title (a PDF's title and footer) and its lines, the first of them the heading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub title: String,
    pub lines: Vec<Line>,
}

impl Document {
    /// The record as plain text, one line each, every line ended by a newline.
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        for line in &self.lines {
            text.push_str(&line.text);
            text.push('\n');
        }
        text
    }
}

/// The write-up that counts, and how it came to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatestWriteUp<'a> {
    pub write_up: &'a WriteUp,
    /// Who wrote it, by name.
    pub by: String,
    /// When, by the clock of the phone that recorded it.
    pub written_at: DateTime<Utc>,
    /// How many write-ups came before it; each later one is a correction of the one before.
    pub earlier: usize,
    /// An earlier write-up said yes to a safeguarding concern and this one says no. The lifecycle keeps the
    /// concern flagged either way, so the reader is told.
    pub earlier_concern: bool,
}

impl<'a> LatestWriteUp<'a> {
    /// The last of a visit's write-ups (who, when, what), given in the lifecycle's canonical order: a
    /// correction is a new event, and the newest one wins.
    pub fn of(
        write_ups: impl IntoIterator<Item = (String, DateTime<Utc>, &'a WriteUp)>,
    ) -> Option<Self> {
        let all: Vec<_> = write_ups.into_iter().collect();
        let ((by, written_at, write_up), earlier) = all.split_last()?;
        Some(Self {
            write_up,
            by: by.clone(),
            written_at: *written_at,
            earlier: earlier.len(),
            earlier_concern: !write_up.safeguarding_concern
                && earlier.iter().any(|(_, _, w)| w.safeguarding_concern),
        })
    }
}

/// What a safeguarding notice is about (each goes to the policy's `safeguarding_concerns_to`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeAbout {
    SafeguardingConcern,
    Incident,
    /// A cancellation because the staff felt unsafe.
    FeltUnsafe,
}

/// One notice the office holds, and where it went, in the records' words (from the deliveries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeTold {
    pub about: NoticeAbout,
    pub told: Vec<String>,
}

/// One step of the visit as the office's timeline words it: when (the phone's clock), the event, and the
/// sentence ("Sam Taylor arrived outside").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineStep<'a> {
    pub at: DateTime<Utc>,
    pub event: &'a VisitEvent,
    pub sentence: String,
}

/// One of the visit's alarms, as the office holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmFacts {
    /// A duress alarm (else an overdue one).
    pub duress: bool,
    pub raised_at: DateTime<Utc>,
    /// Who acknowledged it, and when.
    pub acknowledged: Option<(String, DateTime<Utc>)>,
    /// Who closed it, when, and with what outcome (none on alarms closed before outcomes were kept).
    pub closed: Option<(String, DateTime<Utc>, Option<AlarmOutcome>)>,
    pub close_note: Option<String>,
    /// Who was told, in the records' words (from the deliveries).
    pub told: Vec<String>,
}

/// What the office knows beyond a phone.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OfficeFacts<'a> {
    pub notices: Vec<NoticeTold>,
    /// The visit's events in the lifecycle's canonical order.
    pub timeline: Vec<TimelineStep<'a>>,
    pub alarms: Vec<AlarmFacts>,
}

/// Who is writing the record, and so what it can say about where notices went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KnownBy<'a> {
    /// A phone: it knows what was recorded, never whether anyone was told. `concerns_to` is the policy's
    /// `safeguarding_concerns_to`.
    Phone {
        concerns_to: Role,
    },
    Office(OfficeFacts<'a>),
}

/// Everything the record is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts<'a> {
    pub visit: &'a Visit,
    pub state: &'a VisitState,
    /// The school's clock, on which every time is written.
    pub zone: SchoolTimeZone,
    /// The policy's `record_system`, which the heading names.
    pub record_system: &'a str,
    pub write_up: Option<LatestWriteUp<'a>>,
    /// The note given with the cancellation that counts.
    pub cancel_note: Option<&'a str>,
    /// A cancellation because the staff felt unsafe is known (a notice for the safeguarding contact).
    pub felt_unsafe: bool,
    pub known_by: KnownBy<'a>,
}

/// Who a safeguarding concern goes to, as staff say it: "the DSL", "the safeguarding lead".
pub fn concerns_contact(role: Role) -> String {
    match role {
        Role::Dsl => "the DSL".to_owned(),
        other => format!("the {}", other.label()),
    }
}

/// A time as a record writes it, on the school's clock with its zone's abbreviation: "14:02 GMT" (a record
/// is read far from the board, so it says which clock).
pub fn clock(zone: &SchoolTimeZone, at: DateTime<Utc>) -> String {
    zone.format(at, "%H:%M %Z")
}

/// The visit's staff by name, in the office's order.
pub fn staff_names(visit: &Visit) -> String {
    visit
        .staff
        .iter()
        .map(|s| s.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// How the visit ended, in one sentence (also the CSV's outcome column). "Everyone has left" is the
/// lifecycle's own [`VisitState::everyone_left_at`].
pub fn outcome(zone: &SchoolTimeZone, state: &VisitState) -> String {
    if let Some((reason, _)) = state.cancelled {
        return format!("Cancelled before it began: {}.", reason.label());
    }
    if let (Some(started), Some(left)) = (state.started_at, state.everyone_left_at()) {
        return format!(
            "The visit took place from {}; everyone had left by {}.",
            clock(zone, started),
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

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A labelled free text: the label on its own line, then the text line by line (or `when_empty`).
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

/// Where the notices about `about` went: the office's delivery lines, or what a phone can say.
fn passed_on(lines: &mut Vec<Line>, known_by: &KnownBy<'_>, about: NoticeAbout) {
    match known_by {
        KnownBy::Phone { concerns_to } => lines.push(Line::new(
            Style::Body,
            format!(
                "{} must be told at once (this phone cannot know whether they have been).",
                capitalised(&concerns_contact(*concerns_to))
            ),
        )),
        KnownBy::Office(office) => {
            let of_kind: Vec<&NoticeTold> =
                office.notices.iter().filter(|n| n.about == about).collect();
            if of_kind.is_empty() {
                lines.push(Line::new(
                    Style::Body,
                    "Not yet passed on: the office has no record of passing it on.",
                ));
            }
            for told in of_kind.iter().flat_map(|n| &n.told) {
                lines.push(Line::new(Style::Body, told.clone()));
            }
        }
    }
}

/// The record, in the order a safeguarding record reads: the heading (and a concern flagged under it),
/// what, who and when, how it ended, then the latest write-up with where each notice went; the office adds
/// a short timeline and the alarms.
pub fn document(facts: &Facts<'_>) -> Document {
    let (visit, state, zone) = (facts.visit, facts.state, &facts.zone);
    let mut lines = vec![Line::new(
        Style::Title,
        format!("Home visit record for {}", facts.record_system),
    )];
    if facts
        .write_up
        .as_ref()
        .is_some_and(|l| l.write_up.safeguarding_concern)
    {
        lines.push(Line::new(Style::Flag, SAFEGUARDING_BANNER));
        passed_on(
            &mut lines,
            &facts.known_by,
            NoticeAbout::SafeguardingConcern,
        );
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
        if let Some(note) = facts.cancel_note.filter(|note| !note.trim().is_empty()) {
            free_text(&mut lines, "Reason given for cancelling", note, "");
        }
    }
    if facts.felt_unsafe {
        passed_on(&mut lines, &facts.known_by, NoticeAbout::FeltUnsafe);
    }

    lines.push(Line::new(Style::Body, ""));
    match &facts.write_up {
        None => {
            lines.push(Line::new(Style::Heading, "Write-up"));
            lines.push(Line::new(
                Style::Body,
                match facts.known_by {
                    KnownBy::Phone { .. } => "Not written up on this phone.",
                    KnownBy::Office(_) => {
                        "Not written up yet: no write-up has reached the office for this visit."
                    }
                },
            ));
        }
        Some(latest) => write_up_lines(&mut lines, facts, latest),
    }
    if let KnownBy::Office(office) = &facts.known_by {
        timeline_lines(&mut lines, facts, &office.timeline);
        alarm_lines(&mut lines, zone, &office.alarms);
    }
    Document {
        title: format!(
            "Home visit record: {}, {}",
            visit.pupil.name,
            zone.format(visit.agreed_time, "%-d %B %Y")
        ),
        lines,
    }
}

fn write_up_lines(lines: &mut Vec<Line>, facts: &Facts<'_>, latest: &LatestWriteUp<'_>) {
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
            facts.zone.format(latest.written_at, "%-d %B %Y %H:%M %Z")
        ),
    ));
    let write_up = latest.write_up;
    free_text(lines, "Who was seen", &write_up.seen, "Not recorded.");
    free_text(
        lines,
        "What was discussed",
        &write_up.discussed,
        "Not recorded.",
    );
    free_text(
        lines,
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
        passed_on(lines, &facts.known_by, NoticeAbout::SafeguardingConcern);
    }
    match write_up.incident.as_deref() {
        Some(incident) if !incident.trim().is_empty() => {
            free_text(lines, "Incident", incident, "");
            passed_on(lines, &facts.known_by, NoticeAbout::Incident);
        }
        _ => lines.push(Line::new(Style::Label, "Incident: none reported")),
    }
}

/// The steps a record shows: the staff's movements and check-ins, not the office's decisions.
fn shown_in_record(event: &VisitEvent) -> bool {
    matches!(
        event,
        VisitEvent::Departed { .. }
            | VisitEvent::ArrivedOutside { .. }
            | VisitEvent::ArrivedTogether { .. }
            | VisitEvent::VisitStarted { .. }
            | VisitEvent::CheckedIn { .. }
            | VisitEvent::CheckInMissed { .. }
            | VisitEvent::Left { .. }
            | VisitEvent::Cancelled { .. }
    )
}

/// The record says when things happened on the doorstep, so it uses the phones' times in the lifecycle's
/// order (the office's full timeline shows when each event arrived).
fn timeline_lines(lines: &mut Vec<Line>, facts: &Facts<'_>, steps: &[TimelineStep<'_>]) {
    let zone = &facts.zone;
    lines.push(Line::new(Style::Body, ""));
    lines.push(Line::new(
        Style::Heading,
        format!("Timeline (times from the staff's phones, {})", zone.name()),
    ));
    let mut any = false;
    for step in steps.iter().filter(|step| shown_in_record(step.event)) {
        any = true;
        let when = if zone.date(step.at) == zone.date(facts.visit.agreed_time) {
            zone.hm(step.at)
        } else {
            zone.format(step.at, "%-d %b %H:%M")
        };
        lines.push(Line::new(Style::Body, format!("{when}  {}", step.sentence)));
    }
    if !any {
        lines.push(Line::new(Style::Body, "Nobody has left for this visit."));
    }
}

/// The visit's alarms: what each was, how it ended, and who was told (from the deliveries).
fn alarm_lines(lines: &mut Vec<Line>, zone: &SchoolTimeZone, alarms: &[AlarmFacts]) {
    if alarms.is_empty() {
        return;
    }
    lines.push(Line::new(Style::Body, ""));
    lines.push(Line::new(
        Style::Heading,
        format!("Alarms (office times, {})", zone.name()),
    ));
    for alarm in alarms {
        let what = if alarm.duress {
            "Duress alarm"
        } else {
            "Overdue alarm"
        };
        let ended = match (&alarm.closed, &alarm.acknowledged) {
            (Some((by, at, Some(outcome))), _) => format!(
                "closed by {by} at {}: {}",
                clock(zone, *at),
                outcome.label().to_lowercase()
            ),
            (Some((by, at, None)), _) => format!("closed by {by} at {}", clock(zone, *at)),
            (None, Some((by, at))) => format!(
                "acknowledged by {by} at {}, not yet closed",
                clock(zone, *at)
            ),
            (None, None) => "not acknowledged yet".to_owned(),
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
        if alarm.told.is_empty() {
            lines.push(Line::new(
                Style::Body,
                "  Nothing was sent outside the board for it.",
            ));
        }
        for line in &alarm.told {
            lines.push(Line::new(Style::Body, format!("  {line}")));
        }
    }
}
