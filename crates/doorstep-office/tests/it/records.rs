//! Records and reports through the real store: a visit's timeline, the CPOMS write-up as text, PDF and CSV,
//! and the monthly report with known numbers.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use doorstep_core::domain::Visit;
use doorstep_core::ids::SchoolId;
use doorstep_core::lifecycle::{AlertRef, CancelReason, DuressVia, VisitEvent, WriteUp};
use doorstep_core::schedule::AlarmLevel;
use doorstep_office::alarms::{Alarm, AlarmKind, NewAlarm};
use doorstep_office::records::{
    self, cpoms_pdf, cpoms_text, write_ups_csv, AlarmStep, Source, TimelineItem, VisitRecord,
    FALSE_ALARM_DEFINITION,
};

use doorstep_core::policy::Preset;
use doorstep_core::test_support::{at, staff, visit};

use crate::bench::DemoStore;

/// The demo store (seeded at 10:00 on the tests' school day, so visit-ava is agreed for 10:15, visit-leo
/// for 12:15 and visit-mia for 14:15), with the steps these tests take on it.
struct Office(DemoStore);

impl std::ops::Deref for Office {
    type Target = DemoStore;
    fn deref(&self) -> &DemoStore {
        &self.0
    }
}

impl Office {
    fn seeded() -> Office {
        Office(DemoStore::seeded(Preset::PrimaryHeadteacher))
    }

    /// `who`'s phone records `event` at `recorded` by its own clock; the office receives it at `received`.
    fn phone(
        &mut self,
        who: &str,
        visit_id: &str,
        recorded: DateTime<Utc>,
        received: DateTime<Utc>,
        event: VisitEvent,
    ) {
        self.0.phone_sends(who, visit_id, recorded, received, event);
    }

    /// The phone has signal: the office receives the event as it is recorded.
    fn now(&mut self, who: &str, visit_id: &str, time: DateTime<Utc>, event: VisitEvent) {
        self.phone(who, visit_id, time, time, event);
    }

    /// Both leave, arrive and go in on time (10:01 to 10:15).
    fn go_in_to_ava(&mut self) {
        for (who, minute) in [("sam", 1), ("alex", 2)] {
            self.now(
                who,
                "visit-ava",
                at(10, minute),
                VisitEvent::Departed {
                    staff: staff(who),
                    expected_arrival: at(10, 15),
                    expected_end: at(11, 0),
                },
            );
        }
        for (who, minute) in [("sam", 13), ("alex", 14)] {
            self.now(
                who,
                "visit-ava",
                at(10, minute),
                VisitEvent::ArrivedOutside { staff: staff(who) },
            );
        }
        self.now(
            "sam",
            "visit-ava",
            at(10, 15),
            VisitEvent::VisitStarted {
                by: staff("sam"),
                staff: vec![staff("sam"), staff("alex")],
            },
        );
    }

    fn overdue(
        &self,
        visit_id: &str,
        about: &str,
        due: DateTime<Utc>,
        raised: DateTime<Utc>,
    ) -> Alarm {
        self.store
            .raise_alarm(NewAlarm::overdue(&visit(visit_id), about, due), raised)
            .unwrap()
            .expect("a new alarm")
    }

    /// The duress alarm the office raised with the alert (in the ingest's transaction): about who raised
    /// it, due at the phone's time, raised when the office received it.
    fn duress(
        &self,
        visit_id: &str,
        who: &str,
        on_phone: DateTime<Utc>,
        raised: DateTime<Utc>,
    ) -> Alarm {
        let alarm = self
            .store
            .alarms_for_visit(&visit(visit_id))
            .unwrap()
            .into_iter()
            .find(|a| a.kind == AlarmKind::Duress && a.about == who && a.due_at == on_phone)
            .expect("the duress alarm raised with the alert");
        assert_eq!(
            (alarm.raised_at, alarm.level),
            (raised, AlarmLevel::Authoriser)
        );
        alarm
    }

    fn acknowledge(&self, alarm: &Alarm, when: DateTime<Utc>) {
        self.store
            .acknowledge_alarm(alarm.id, "Olu Office", when)
            .unwrap();
    }

    fn record(&self, visit_id: &str) -> VisitRecord {
        self.office()
            .visit_record(&visit(visit_id))
            .unwrap()
            .expect("a stored visit")
    }

    /// visit-ava under another id and agreed time, for month boundaries.
    fn add_visit_like_ava(&self, id: &str, agreed: DateTime<Utc>) {
        let (mut copy, _): (Visit, _) = self.store.visit(&visit("visit-ava")).unwrap().unwrap();
        copy.id = visit(id);
        copy.agreed_time = agreed;
        self.store.add_visit(&copy).unwrap();
    }
}

fn write_up(discussed: &str, concern: bool) -> WriteUp {
    WriteUp {
        seen: "Mum and Ava".into(),
        discussed: discussed.into(),
        agreements: "Ava back in school on Monday; Mum to ring the office by 9:00 if not".into(),
        safeguarding_concern: concern,
        incident: None,
    }
}

#[test]
fn the_timeline_merges_events_and_alarm_steps_in_the_order_the_office_saw_them() {
    let mut office = Office::seeded();
    office.go_in_to_ava();
    let alarm = office.overdue("visit-ava", "check_in", at(10, 25), at(10, 30));
    office
        .store
        .escalate_alarm(&alarm, at(10, 35))
        .unwrap()
        .expect("still as seen");
    // Alex checked in at 10:24 with no signal; the office hears it at 10:36, after its alarm.
    office.phone(
        "alex",
        "visit-ava",
        at(10, 24),
        at(10, 36),
        VisitEvent::CheckedIn {
            staff: staff("alex"),
        },
    );
    office
        .store
        .note_contact_resumed(alarm.id, at(10, 36))
        .unwrap();
    office.acknowledge(&alarm, at(10, 38));
    // Alex's phone clock is an hour slow: it says 09:50 for what happened at 10:50.
    office.phone(
        "alex",
        "visit-ava",
        at(9, 50),
        at(10, 50),
        VisitEvent::Left {
            staff: staff("alex"),
        },
    );
    office.now(
        "sam",
        "visit-ava",
        at(10, 51),
        VisitEvent::Left {
            staff: staff("sam"),
        },
    );

    let timeline = office
        .office()
        .timeline(&visit("visit-ava"))
        .unwrap()
        .expect("visit-ava exists");
    let sentences: Vec<String> = timeline.entries.iter().map(|e| e.sentence()).collect();
    assert_eq!(
        sentences,
        [
            "Priya Head authorised the visit",
            "Sam Taylor left for the visit, expecting to arrive at 10:15 GMT and finish by 11:00 GMT",
            "Alex Morgan left for the visit, expecting to arrive at 10:15 GMT and finish by 11:00 GMT",
            "Sam Taylor arrived outside",
            "Alex Morgan arrived outside",
            "Sam Taylor went in: Sam Taylor and Alex Morgan",
            "Overdue alarm (check-in) raised: nothing heard since it was due at 10:25 GMT",
            "Overdue alarm (check-in): not acknowledged at the level of the office within 5 minutes: \
             the alarm reached the level of the headteacher",
            "Overdue alarm (check-in): no contact is set up for the headteacher: nobody outside the board \
             can be told",
            "Alex Morgan checked in",
            "Overdue alarm (check-in): the staff were heard from again",
            "Olu Office acknowledged the overdue alarm (check-in): handling it",
            "Alex Morgan left the property",
            "Sam Taylor left the property",
        ]
    );
    assert!(
        timeline
            .entries
            .windows(2)
            .all(|pair| pair[0].office_time <= pair[1].office_time),
        "ordered by office receive time"
    );

    let authorised = &timeline.entries[0];
    assert_eq!(authorised.source, Source::Office);
    let late_check_in = &timeline.entries[9];
    assert_eq!(
        (late_check_in.device_time, late_check_in.office_time),
        (Some(at(10, 24)), at(10, 36)),
        "both clocks are kept"
    );
    assert_eq!(
        late_check_in.source,
        Source::Phone {
            device: office.alex.id.clone()
        }
    );
    let raised = &timeline.entries[6];
    assert_eq!(
        (
            raised.source.clone(),
            raised.device_time,
            raised.who.clone()
        ),
        (Source::Office, None, None)
    );
    assert!(matches!(
        raised.item,
        TimelineItem::Alarm {
            kind: AlarmKind::Overdue,
            step: AlarmStep::Raised,
            ..
        }
    ));
    assert_eq!(
        timeline.entries[11].who.as_deref(),
        Some("Olu Office"),
        "an acknowledgement says by whom"
    );

    // By the phones' clocks Alex "left" before anyone set off: why the office orders by its own clock.
    let canonical: Vec<String> = timeline
        .events_in_canonical_order()
        .iter()
        .map(|e| e.sentence())
        .collect();
    assert_eq!(canonical[0], "Alex Morgan left the property");

    let text = timeline.to_text();
    assert!(text.contains(
        "10:36:00 GMT (phone clock 2026-11-23 10:24:00 GMT)  [phone phone-alex]  Alex Morgan checked in"
    ));
    assert!(office
        .office()
        .timeline(&visit("visit-nobody"))
        .unwrap()
        .is_none());
}

#[test]
fn the_timeline_shows_duress_its_stand_down_note_and_a_cancellation_with_its_reason() {
    let mut office = Office::seeded();
    office.go_in_to_ava();
    office.now(
        "alex",
        "visit-ava",
        at(10, 20),
        VisitEvent::DuressRaised {
            staff: staff("alex"),
            via: DuressVia::DuressPin,
        },
    );
    let duress = office.duress("visit-ava", "alex", at(10, 20), at(10, 20));
    office.now(
        "alex",
        "visit-ava",
        at(10, 22),
        VisitEvent::DuressStoodDown {
            staff: staff("alex"),
            note: "Pressed by mistake while putting the phone away".into(),
            alerts: vec![AlertRef {
                raised_by: staff("alex"),
                raised_at: at(10, 20),
            }],
        },
    );
    office
        .store
        .note_contact_resumed(duress.id, at(10, 22))
        .unwrap();
    office.acknowledge(&duress, at(10, 23));

    let sentences: Vec<String> = office
        .record("visit-ava")
        .timeline
        .entries
        .iter()
        .skip(6)
        .map(|e| e.sentence())
        .collect();
    assert_eq!(
        sentences,
        [
            "Alex Morgan raised DURESS (duress PIN)",
            "Duress alarm for Alex Morgan raised: raised on the phone at 10:20 GMT; at the authoriser's \
             level at once",
            "Duress alarm for Alex Morgan: no contact is set up for the headteacher: nobody outside the \
             board can be told",
            "Alex Morgan stood down the duress alert",
            "Duress alarm for Alex Morgan: the staff were heard from again",
            "Olu Office acknowledged the duress alarm for Alex Morgan: handling it",
        ]
    );
    let timeline = office.record("visit-ava").timeline;
    assert_eq!(
        timeline.entries[9].note.as_deref(),
        Some("Pressed by mistake while putting the phone away")
    );

    office.now(
        "sam",
        "visit-leo",
        at(12, 0),
        VisitEvent::Cancelled {
            staff: staff("sam"),
            reason: CancelReason::FeltUnsafe,
            note: "Raised voices from inside; we did not knock".into(),
        },
    );
    let leo = office.record("visit-leo").timeline;
    let cancelled = leo.entries.last().unwrap();
    assert_eq!(
        cancelled.sentence(),
        "Sam Taylor cancelled the visit: felt unsafe"
    );
    assert_eq!(
        cancelled.note.as_deref(),
        Some("Raised voices from inside; we did not knock")
    );
}

/// visit-ava done and written up by Sam, then corrected by Alex (who adds a safeguarding concern).
fn ava_written_up_and_corrected(office: &mut Office) {
    office.go_in_to_ava();
    office.now(
        "alex",
        "visit-ava",
        at(10, 25),
        VisitEvent::CheckedIn {
            staff: staff("alex"),
        },
    );
    for (who, minute) in [("sam", 58), ("alex", 59)] {
        office.now(
            who,
            "visit-ava",
            at(10, minute),
            VisitEvent::Left { staff: staff(who) },
        );
    }
    office.now(
        "sam",
        "visit-ava",
        at(11, 20),
        VisitEvent::WrittenUp {
            staff: staff("sam"),
            write_up: write_up("First draft: attendance only", false),
        },
    );
    office.now(
        "alex",
        "visit-ava",
        at(11, 40),
        VisitEvent::WrittenUp {
            staff: staff("alex"),
            write_up: write_up(
                "Attendance since half term; Ava said she is scared of an older cousin at home",
                true,
            ),
        },
    );
}

#[test]
fn the_cpoms_text_carries_every_field_and_the_latest_write_up_wins() {
    let mut office = Office::seeded();
    ava_written_up_and_corrected(&mut office);
    let record = office.record("visit-ava");
    let text = cpoms_text(&record);
    let lines: Vec<&str> = text.lines().collect();

    assert_eq!(lines[0], "Home visit record for CPOMS");
    assert_eq!(
        lines[1], "*** SAFEGUARDING CONCERN ***",
        "flagged first thing"
    );
    assert_eq!(
        lines[2],
        "Not yet passed on: no contact is set up for the designated safeguarding lead; ring Priya Head \
         on 07700 900001",
        "where it went, from the deliveries: nowhere, as no contact is set up"
    );
    assert!(!text.contains("passed to the"), "{text}");
    for expected in [
        "Pupil: Ava B.",
        "Purpose: Safe and well check",
        "Date and time: Monday 23 November 2026, 10:15 GMT (agreed time, Europe/London; expected to last 45 minutes)",
        "Staff: Sam Taylor, Alex Morgan",
        "Visit reference: visit-ava",
        "Outcome: The visit took place from 10:15 GMT; everyone had left by 10:59 GMT.",
        "Write-up by Alex Morgan, 23 November 2026 11:40 GMT; it corrects 1 earlier write-up",
        "Who was seen:",
        "Mum and Ava",
        "What was discussed:",
        "Attendance since half term; Ava said she is scared of an older cousin at home",
        "Agreements with parents:",
        "Ava back in school on Monday; Mum to ring the office by 9:00 if not",
        "Safeguarding concern: YES",
        "Incident: none reported",
        "Timeline (times from the staff's phones, Europe/London)",
        "10:01  Sam Taylor left for the visit, expecting to arrive at 10:15 GMT and finish by 11:00 GMT",
        "10:13  Sam Taylor arrived outside",
        "10:15  Sam Taylor went in: Sam Taylor and Alex Morgan",
        "10:25  Alex Morgan checked in",
        "10:59  Alex Morgan left the property",
    ] {
        assert!(lines.contains(&expected), "missing {expected:?} in\n{text}");
    }
    assert!(
        !text.contains("First draft"),
        "the correction replaces the first write-up"
    );

    // A second correction withdraws the concern: the latest wins, and the reader is told what came before.
    office.now(
        "sam",
        "visit-ava",
        at(12, 0),
        VisitEvent::WrittenUp {
            staff: staff("sam"),
            write_up: write_up("Attendance; the cousin has moved away", false),
        },
    );
    let record = office.record("visit-ava");
    let text = cpoms_text(&record);
    assert!(!text.contains("*** SAFEGUARDING CONCERN"), "{text}");
    assert!(text.contains("Attendance; the cousin has moved away"));
    assert!(text.contains("it corrects 2 earlier write-ups"));
    let lines: Vec<&str> = text.lines().collect();
    let concern = lines
        .iter()
        .position(|l| {
            *l == "Safeguarding concern: No in this write-up, but an earlier write-up said YES"
        })
        .expect(&text);
    assert!(
        lines[concern + 1].starts_with("Not yet passed on: no contact is set up"),
        "where the earlier concern went follows it: {text}"
    );
}

#[test]
fn the_cpoms_text_says_plainly_when_there_is_no_write_up_and_why_a_visit_was_cancelled() {
    let mut office = Office::seeded();
    office.now(
        "sam",
        "visit-leo",
        at(12, 0),
        VisitEvent::Departed {
            staff: staff("sam"),
            expected_arrival: at(12, 15),
            expected_end: at(13, 15),
        },
    );
    office.now(
        "sam",
        "visit-leo",
        at(12, 10),
        VisitEvent::Cancelled {
            staff: staff("sam"),
            reason: CancelReason::FeltUnsafe,
            note: "Raised voices from inside;\nwe did not knock".into(),
        },
    );
    let leo = office.record("visit-leo");
    let text = cpoms_text(&leo);
    for expected in [
        "Purpose: Attendance support",
        "Staff: Sam Taylor, Jo Rivers",
        "Outcome: Cancelled before it began: Felt unsafe.",
        "Reason given for cancelling:",
        "Raised voices from inside;",
        "we did not knock",
        "Not written up yet: no write-up has reached the office for this visit.",
        "12:00  Sam Taylor left for the visit, expecting to arrive at 12:15 GMT and finish by 13:15 GMT",
        "12:10  Sam Taylor cancelled the visit: felt unsafe",
    ] {
        assert!(text.lines().any(|l| l == expected), "missing {expected:?} in\n{text}");
    }
    assert!(!text.contains("SAFEGUARDING CONCERN"));

    let mia = office.record("visit-mia");
    let text = cpoms_text(&mia);
    assert!(text.contains("Outcome: The visit has not taken place (now: Awaiting authorisation)."));
    assert!(text.contains("Nobody has left for this visit."));
}

/// Runs one of poppler's tools (poppler-utils, installed by `scripts/install-deps`) on `pdf`; it must
/// accept the file without a complaint.
fn poppler(tool: &str, pdf: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("record.pdf");
    std::fs::write(&path, pdf).unwrap();
    let mut command = std::process::Command::new(tool);
    command.arg(&path);
    if tool == "pdftotext" {
        command.arg("-");
    }
    let output = command.output().unwrap_or_else(|e| {
        panic!("running {tool} (poppler-utils, from scripts/install-deps): {e}")
    });
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stderr.trim().is_empty(),
        "{tool} refused the PDF or complained: {stderr}"
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The PDF's text as `pdftotext` reads it, whitespace collapsed. pdftotext marks a right-to-left run by
/// wrapping it in the embedding controls RLE and PDF (U+202B, U+202C), with the run itself in reading
/// (logical) order; those markers, and the other embedding and override controls, are removed here.
fn pdf_to_text(pdf: &[u8]) -> String {
    let text: String = poppler("pdftotext", pdf)
        .chars()
        .filter(|c| !('\u{202A}'..='\u{202E}').contains(c))
        .collect();
    collapse(&text)
}

/// The value of a `pdfinfo` field, such as "Pages" or "Title".
fn pdf_info(pdf: &[u8], field: &str) -> String {
    poppler("pdfinfo", pdf)
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("pdfinfo shows no {field}"))
        .trim()
        .to_owned()
}

/// The fonts `pdffonts` lists: each name, and whether it is embedded, subset and has a ToUnicode map.
fn pdf_fonts(pdf: &[u8]) -> Vec<(String, bool)> {
    poppler("pdffonts", pdf)
        .lines()
        .skip(2)
        .map(|line| {
            let columns: Vec<&str> = line.split_whitespace().collect();
            let flags = &columns[columns.len() - 5..columns.len() - 2];
            (columns[0].to_owned(), flags == ["yes", "yes", "yes"])
        })
        .collect()
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn the_cpoms_pdf_is_a_valid_pdf_with_the_same_content_and_long_write_ups_run_onto_more_pages() {
    let mut office = Office::seeded();
    ava_written_up_and_corrected(&mut office);
    let record = office.record("visit-ava");
    let pdf = cpoms_pdf(&record).unwrap();
    assert_eq!(pdf_info(&pdf, "Pages"), "1");
    assert_eq!(
        pdf_info(&pdf, "Title"),
        "Home visit record: Ava B., 23 November 2026"
    );
    {
        let text = pdf_to_text(&pdf);
        let plain = collapse(&cpoms_text(&record));
        for expected in [
            "*** SAFEGUARDING CONCERN ***",
            "Pupil: Ava B.",
            "Staff: Sam Taylor, Alex Morgan",
            "Mum and Ava",
            "Attendance since half term; Ava said she is scared of an older cousin at home",
            "Ava back in school on Monday; Mum to ring the office by 9:00 if not",
            "10:59 Alex Morgan left the property",
        ] {
            assert!(
                plain.contains(expected),
                "the text version has {expected:?}"
            );
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
        assert!(text.contains("page 1 of 1"));
    }

    // A write-up long enough to wrap many times and fill more than one page.
    let long: String = (1..=400).map(|n| format!("point{n} ")).collect();
    office.now(
        "sam",
        "visit-ava",
        at(12, 0),
        VisitEvent::WrittenUp {
            staff: staff("sam"),
            write_up: WriteUp {
                discussed: long.clone(),
                incident: Some("Dog (loose) in the hall; \\ we waited".into()),
                ..write_up("", false)
            },
        },
    );
    let record = office.record("visit-ava");
    let pdf = cpoms_pdf(&record).unwrap();
    let pages: usize = pdf_info(&pdf, "Pages").parse().unwrap();
    assert!(pages >= 2, "a long write-up runs onto a second page");
    {
        let text = pdf_to_text(&pdf);
        // Every word of the long write-up, in order (the page footer comes between the pages' words).
        let words: Vec<&str> = text.split(' ').collect();
        let mut from = 0;
        for word in long.split_whitespace() {
            let found = words[from..].iter().position(|w| *w == word);
            from += found.unwrap_or_else(|| panic!("{word} missing or out of order")) + 1;
        }
        assert!(text.contains("Dog (loose) in the hall; \\ we waited"));
        assert!(text.contains(&format!("page {pages} of {pages}")));
    }
}

#[test]
fn pupils_named_in_polish_arabic_and_chinese_keep_their_names_in_the_pdf() {
    let mut office = Office::seeded();
    ava_written_up_and_corrected(&mut office);
    let ava = office.record("visit-ava");
    for name in ["Zażółć Gęślą", "مريم الحسن", "王小明"] {
        let mut record = ava.clone();
        record.visit.pupil.name = name.to_owned();
        record.visit.staff[1].name = name.to_owned();
        let pdf = cpoms_pdf(&record).unwrap();
        let text = pdf_to_text(&pdf);
        for expected in [
            format!("Pupil: {name}"),
            format!("Staff: Sam Taylor, {name}"),
            // The footer: the name, then the date after it, not before.
            format!("Home visit record: {name}, 23 November 2026 · page 1 of 1"),
        ] {
            assert!(text.contains(&expected), "missing {expected:?} in\n{text}");
        }
        assert_eq!(
            pdf_info(&pdf, "Title"),
            format!("Home visit record: {name}, 23 November 2026")
        );
        let fonts = pdf_fonts(&pdf);
        assert!(
            fonts
                .iter()
                .all(|(_, embedded_subset_unicode)| *embedded_subset_unicode),
            "every font embedded, subset, with a ToUnicode map: {fonts:?}"
        );
        let needed = match name {
            "王小明" => "NotoSansCJK",
            "مريم الحسن" => "NotoSansArabic",
            _ => "NotoSans-Regular",
        };
        assert!(
            fonts.iter().any(|(font, _)| font.contains(needed)),
            "{name} is drawn in {needed}: {fonts:?}"
        );
    }
}

#[test]
fn without_a_cjk_font_the_pdf_says_which_characters_it_could_not_draw() {
    let fonts = records::pdf::PdfFonts::embedded().unwrap();
    let lines = [
        records::pdf::Line::new(records::pdf::Style::Body, "Pupil: 王小明"),
        records::pdf::Line::new(records::pdf::Style::Body, "Pupil: Zażółć Gęślą"),
    ];
    let pdf = records::pdf::render_with(&fonts, "Home visit record", &lines).unwrap();
    let text = pdf_to_text(&pdf);
    assert!(text.contains("Pupil: Zażółć Gęślą"), "{text}");
    assert!(
        text.contains("This PDF could not draw 3 of the characters in this record"),
        "{text}"
    );
    assert!(
        !pdf_fonts(&pdf).iter().any(|(font, _)| font.contains("CJK")),
        "no CJK font was used"
    );
}

/// A small RFC 4180 reader: quoted fields may hold commas, doubled quotes and line breaks; records end in CRLF.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => quoted = true,
            ',' => row.push(std::mem::take(&mut field)),
            '\r' if chars.peek() == Some(&'\n') => {
                chars.next();
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            '"' | '\r' | '\n' => panic!("bare {c:?} outside quotes"),
            _ => field.push(c),
        }
    }
    assert!(!quoted, "unterminated quote");
    assert!(
        field.is_empty() && row.is_empty(),
        "the last record ends in CRLF"
    );
    rows
}

#[test]
fn the_csv_has_one_row_per_written_up_visit_and_round_trips_awkward_text() {
    let mut office = Office::seeded();
    office.go_in_to_ava();
    for who in ["sam", "alex"] {
        office.now(
            who,
            "visit-ava",
            at(10, 50),
            VisitEvent::Left { staff: staff(who) },
        );
    }
    let awkward = WriteUp {
        seen: "Mum, Ava and \"Nan\"".into(),
        discussed:
            "Attendance, uniform and lunches,\nthen the bus pass \"problem\"\r\nand the form".into(),
        agreements: "=HYPERLINK(\"http://example.invalid\",\"click\")".into(),
        safeguarding_concern: false,
        incident: Some("-2 minutes late; @reception told".into()),
    };
    office.now(
        "sam",
        "visit-ava",
        at(11, 0),
        VisitEvent::WrittenUp {
            staff: staff("sam"),
            write_up: awkward.clone(),
        },
    );
    // visit-leo is cancelled and never written up, visit-mia never happened: neither has a row.
    office.now(
        "sam",
        "visit-leo",
        at(12, 30),
        VisitEvent::Cancelled {
            staff: staff("sam"),
            reason: CancelReason::NoAnswerAfterWait,
            note: String::new(),
        },
    );
    let records: Vec<VisitRecord> = ["visit-ava", "visit-leo", "visit-mia"]
        .iter()
        .map(|id| office.record(id))
        .collect();
    let csv = write_ups_csv(&records);
    let csv = csv
        .strip_prefix('\u{FEFF}')
        .expect("a UTF-8 byte-order mark for Excel");
    let rows = parse_csv(csv);
    assert_eq!(rows.len(), 2, "a header and one written-up visit");
    assert_eq!(
        rows[0],
        records::cpoms::CSV_COLUMNS.map(str::to_owned).to_vec()
    );
    assert_eq!(
        rows[1],
        [
            "visit-ava",
            "2026-11-23 10:15 GMT",
            "Safe and well check",
            "Ava B.",
            "Sam Taylor, Alex Morgan",
            "The visit took place from 10:15 GMT; everyone had left by 10:50 GMT.",
            "Mum, Ava and \"Nan\"",
            "Attendance, uniform and lunches,\nthen the bus pass \"problem\"\r\nand the form",
            "'=HYPERLINK(\"http://example.invalid\",\"click\")",
            "no",
            "'-2 minutes late; @reception told",
        ]
    );
}

#[test]
fn the_monthly_report_counts_visits_check_ins_alarms_waits_and_false_alarms() {
    let mut office = Office::seeded();
    // visit-ava: completed and written up with a safeguarding concern.
    office.go_in_to_ava();
    office.now(
        "sam",
        "visit-ava",
        at(10, 26),
        VisitEvent::CheckInMissed {
            staff: staff("sam"),
            due_at: at(10, 25),
        },
    );
    let check_in = office.overdue("visit-ava", "check_in", at(10, 25), at(10, 30));
    office.acknowledge(&check_in, at(10, 32)); // 2 minutes
    office.now(
        "alex",
        "visit-ava",
        at(10, 36),
        VisitEvent::CheckInMissed {
            staff: staff("alex"),
            due_at: at(10, 35),
        },
    );
    office.now(
        "alex",
        "visit-ava",
        at(10, 40),
        VisitEvent::DuressRaised {
            staff: staff("alex"),
            via: DuressVia::CodePhraseButton,
        },
    );
    let duress = office.duress("visit-ava", "alex", at(10, 40), at(10, 40));
    office.acknowledge(&duress, at(10, 44)); // 4 minutes: a real alarm, never stood down
    let leaving = office.overdue("visit-ava", "leaving", at(11, 0), at(11, 5));
    for (who, minute) in [("sam", 6), ("alex", 7)] {
        office.now(
            who,
            "visit-ava",
            at(11, minute),
            VisitEvent::Left { staff: staff(who) },
        );
    }
    office
        .store
        .note_contact_resumed(leaving.id, at(11, 7))
        .unwrap();
    office.acknowledge(&leaving, at(11, 15)); // 10 minutes; heard from first, so a false alarm
    office.now(
        "sam",
        "visit-ava",
        at(11, 20),
        VisitEvent::WrittenUp {
            staff: staff("sam"),
            write_up: write_up("Attendance", true),
        },
    );

    // visit-leo: nobody answered; its overdue alarm is still open.
    office.now(
        "sam",
        "visit-leo",
        at(12, 0),
        VisitEvent::Departed {
            staff: staff("sam"),
            expected_arrival: at(12, 15),
            expected_end: at(13, 15),
        },
    );
    office.overdue("visit-leo", "answer_at_the_door", at(12, 35), at(12, 40));
    office.now(
        "sam",
        "visit-leo",
        at(12, 45),
        VisitEvent::Cancelled {
            staff: staff("sam"),
            reason: CancelReason::NoAnswerAfterWait,
            note: String::new(),
        },
    );

    // visit-mia never happens. The last second of November counts; the first of December and the last of
    // October do not, even when October's alarm is raised and acknowledged in November.
    let last_of_november = Utc.with_ymd_and_hms(2026, 11, 30, 23, 59, 59).unwrap();
    office.add_visit_like_ava("visit-nov-last", last_of_november);
    office.now(
        "sam",
        "visit-nov-last",
        last_of_november - TimeDelta::minutes(5),
        VisitEvent::Cancelled {
            staff: staff("sam"),
            reason: CancelReason::FeltUnsafe,
            note: "Raised voices".into(),
        },
    );
    let first_of_december = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
    office.add_visit_like_ava("visit-dec", first_of_december);
    office.now(
        "sam",
        "visit-dec",
        first_of_december,
        VisitEvent::Cancelled {
            staff: staff("sam"),
            reason: CancelReason::AnimalsNotSecured,
            note: String::new(),
        },
    );
    let last_of_october = Utc.with_ymd_and_hms(2026, 10, 31, 23, 59, 59).unwrap();
    office.add_visit_like_ava("visit-oct", last_of_october);
    let october = office.overdue(
        "visit-oct",
        "check_in",
        last_of_october + TimeDelta::minutes(10),
        last_of_october + TimeDelta::minutes(15),
    );
    office.acknowledge(&october, last_of_october + TimeDelta::minutes(115));

    let school: SchoolId = "demo-primary".parse().unwrap();
    let report = office.office().monthly_report(&school, 2026, 11).unwrap();
    let v = &report.visits;
    assert_eq!(
        (v.total, v.completed, v.cancelled, v.not_completed),
        (4, 1, 2, 1),
        "ava completed; leo and the last of November cancelled; mia not done"
    );
    let reasons: Vec<(CancelReason, u32)> = v
        .cancelled_by_reason
        .iter()
        .map(|c| (c.reason, c.count))
        .collect();
    assert_eq!(
        reasons,
        [
            (CancelReason::NoAnswerAfterWait, 1),
            (CancelReason::FeltUnsafe, 1)
        ]
    );
    assert_eq!((v.written_up, v.safeguarding_concerns), (1, 1));
    assert_eq!(
        report.check_ins_missed, 2,
        "10:25 (missed on the phone and overdue at the office, counted once) and 10:35"
    );
    assert_eq!(
        (report.alarms_raised.overdue, report.alarms_raised.duress),
        (3, 1)
    );
    let ack = &report.acknowledgement;
    assert_eq!(ack.acknowledged, 3);
    assert_eq!(ack.median_seconds, Some(4 * 60));
    assert_eq!(
        ack.worst_seconds,
        Some(10 * 60),
        "October's 100 minutes is not November's"
    );
    assert_eq!(ack.unacknowledged, 1);
    assert_eq!(report.false_alarms, 1);

    let text = report.to_text();
    for expected in [
        "Home visits at Oakfield Primary (demo): November 2026",
        "Visits: 4",
        "  Completed: 1",
        "  Cancelled: 2 (No answer after the wait: 1; Felt unsafe: 1)",
        "  Not completed or still open: 1",
        "Check-ins missed: 2",
        "Alarms raised: 4 (overdue: 3, duress: 1)",
        "Time from alarm to acknowledgement: median 4 min, worst 10 min (3 acknowledged)",
        "Alarms still not acknowledged: 1",
        "False alarms: 1",
    ] {
        assert!(
            text.lines().any(|l| l == expected),
            "missing {expected:?} in\n{text}"
        );
    }
    assert!(text.contains(FALSE_ALARM_DEFINITION));

    let october = office.office().monthly_report(&school, 2026, 10).unwrap();
    assert_eq!(october.visits.total, 1);
    assert_eq!(october.acknowledgement.worst_seconds, Some(100 * 60));
    let december = office.office().monthly_report(&school, 2026, 12).unwrap();
    assert_eq!(december.visits.cancelled, 1);
    assert_eq!(december.acknowledgement.median_seconds, None);
    assert!(december
        .to_text()
        .contains("Time from alarm to acknowledgement: none acknowledged"));

    assert!(office.office().monthly_report(&school, 2026, 13).is_err());
    let nowhere: SchoolId = "no-such-school".parse().unwrap();
    assert!(office.office().monthly_report(&nowhere, 2026, 11).is_err());
}

/// How an alarm ended, for the false-alarm table.
#[derive(Debug, Clone, Copy)]
enum Ending {
    /// Heard from again, then acknowledged.
    ResumedThenAcknowledged,
    /// Heard from again; nobody has acknowledged it yet.
    ResumedOnly,
    /// Acknowledged, and only later heard from.
    AcknowledgedThenResumed,
    /// Acknowledged; never heard from before that.
    AcknowledgedOnly,
    /// Duress stood down with a note, naming this alert.
    StoodDownWithNote,
    /// Duress stood down, but the stand-down names another alert.
    StoodDownNamingAnother,
}

#[test]
fn false_alarms_follow_the_written_definition() {
    use Ending::*;
    let table = [
        (AlarmKind::Overdue, ResumedThenAcknowledged, true),
        (AlarmKind::Overdue, ResumedOnly, true),
        (AlarmKind::Overdue, AcknowledgedThenResumed, false),
        (AlarmKind::Overdue, AcknowledgedOnly, false),
        (AlarmKind::Duress, StoodDownWithNote, true),
        (AlarmKind::Duress, StoodDownNamingAnother, false),
        (AlarmKind::Duress, AcknowledgedOnly, false),
    ];
    for (kind, ending, expected) in table {
        let mut office = Office::seeded();
        office.go_in_to_ava();
        let alarm = match kind {
            AlarmKind::Overdue => office.overdue("visit-ava", "check_in", at(10, 25), at(10, 30)),
            AlarmKind::Duress => {
                office.now(
                    "alex",
                    "visit-ava",
                    at(10, 30),
                    VisitEvent::DuressRaised {
                        staff: staff("alex"),
                        via: DuressVia::CodePhraseButton,
                    },
                );
                office.duress("visit-ava", "alex", at(10, 30), at(10, 30))
            }
        };
        let resume =
            |office: &Office, when| office.store.note_contact_resumed(alarm.id, when).unwrap();
        match ending {
            ResumedThenAcknowledged => {
                resume(&office, at(10, 31));
                office.acknowledge(&alarm, at(10, 32));
            }
            ResumedOnly => resume(&office, at(10, 31)),
            AcknowledgedThenResumed => {
                office.acknowledge(&alarm, at(10, 31));
                resume(&office, at(10, 32));
            }
            AcknowledgedOnly => office.acknowledge(&alarm, at(10, 31)),
            StoodDownWithNote | StoodDownNamingAnother => {
                let raised_at = match ending {
                    StoodDownWithNote => at(10, 30),
                    _ => at(10, 29),
                };
                office.now(
                    "alex",
                    "visit-ava",
                    at(10, 31),
                    VisitEvent::DuressStoodDown {
                        staff: staff("alex"),
                        note: "Pressed by mistake".into(),
                        alerts: vec![AlertRef {
                            raised_by: staff("alex"),
                            raised_at,
                        }],
                    },
                );
            }
        }
        let school: SchoolId = "demo-primary".parse().unwrap();
        let report = office.office().monthly_report(&school, 2026, 11).unwrap();
        assert_eq!(
            report.false_alarms,
            u32::from(expected),
            "{kind:?} {ending:?}"
        );
    }
}
