//! The write-up's content, as a table: given a visit's history and what the writer knows (a phone, or the
//! office with its deliveries, timeline and alarms), when the record is made, then these lines say it, in
//! this order, and these never appear.

use chrono::{DateTime, Utc};
use doorstep_core::domain::{Role, SchoolTimeZone};
use doorstep_core::lifecycle::{
    apply, AlarmOutcome, CancelReason, VisitEvent, VisitState, WriteUp,
};
use doorstep_core::write_up::{
    document, AlarmFacts, Facts, KnownBy, LatestWriteUp, NoticeAbout, NoticeTold, OfficeFacts,
    Style, TimelineStep, SAFEGUARDING_BANNER,
};

use crate::support::{at_min, holdings, staff};

/// Events with the minute each happened (the visit is agreed for minute 30, 10:30 GMT).
type History = Vec<(i64, VisitEvent)>;

/// Both set off and reach the door, go in together at minute 20, and leave at 50 and 52.
fn took_place() -> History {
    let departed = |who: &str| VisitEvent::Departed {
        staff: staff(who),
        expected_arrival: at_min(15),
        expected_end: at_min(75),
    };
    vec![
        (5, departed("a")),
        (6, departed("b")),
        (15, VisitEvent::ArrivedOutside { staff: staff("a") }),
        (16, VisitEvent::ArrivedOutside { staff: staff("b") }),
        (
            20,
            VisitEvent::VisitStarted {
                by: staff("a"),
                staff: vec![staff("a"), staff("b")],
            },
        ),
        (50, VisitEvent::Left { staff: staff("a") }),
        (52, VisitEvent::Left { staff: staff("b") }),
    ]
}

fn felt_unsafe() -> History {
    vec![(
        25,
        VisitEvent::Cancelled {
            staff: staff("a"),
            reason: CancelReason::FeltUnsafe,
            note: "Shouting inside;\nwe did not knock".into(),
        },
    )]
}

fn write_up(discussed: &str, concern: bool, incident: Option<&str>) -> WriteUp {
    WriteUp {
        seen: "Mum and the pupil".into(),
        discussed: discussed.into(),
        agreements: String::new(),
        safeguarding_concern: concern,
        incident: incident.map(str::to_owned),
    }
}

/// Who is writing: a phone under a policy sending concerns to `Role`, or the office.
enum Writer {
    Phone(Role),
    Office {
        notices: Vec<NoticeTold>,
        alarms: Vec<AlarmFacts>,
    },
}

fn office() -> Writer {
    Writer::Office {
        notices: vec![],
        alarms: vec![],
    }
}

struct Given {
    history: History,
    /// Write-ups in order: (by, minute, what).
    write_ups: Vec<(&'static str, i64, WriteUp)>,
    writer: Writer,
    zone: SchoolTimeZone,
}

/// Makes the record and returns its lines, checking the styles every record keeps.
fn record(given: &Given) -> Vec<String> {
    let held = holdings();
    let visit = &held.visits[0].visit;
    let mut state = VisitState::new(visit.staff_ids());
    for (minute, event) in &given.history {
        state = apply(state, event, at_min(*minute));
    }
    let latest = LatestWriteUp::of(
        given
            .write_ups
            .iter()
            .map(|(by, minute, w)| (by.to_string(), at_min(*minute), w)),
    );
    let cancel_note = given.history.iter().find_map(|(_, e)| match e {
        VisitEvent::Cancelled { note, .. } => Some(note.as_str()),
        _ => None,
    });
    let felt_unsafe = given.history.iter().any(|(_, e)| {
        matches!(
            e,
            VisitEvent::Cancelled {
                reason: CancelReason::FeltUnsafe,
                ..
            }
        )
    });
    let known_by = match &given.writer {
        Writer::Phone(role) => KnownBy::Phone { concerns_to: *role },
        Writer::Office { notices, alarms } => KnownBy::Office(OfficeFacts {
            notices: notices.clone(),
            timeline: given
                .history
                .iter()
                .map(|(minute, event)| TimelineStep {
                    at: at_min(*minute),
                    event,
                    sentence: format!("{} {}", event.actor(), event.summary()),
                })
                .collect(),
            alarms: alarms.clone(),
        }),
    };
    let doc = document(&Facts {
        visit,
        state: &state,
        zone: given.zone,
        record_system: "CPOMS",
        write_up: latest,
        cancel_note,
        felt_unsafe,
        known_by,
    });
    assert_eq!(doc.lines[0].style, Style::Title);
    assert_eq!(
        doc.title,
        format!(
            "Home visit record: Pupil One, {}",
            given.zone.format(visit.agreed_time, "%-d %B %Y")
        )
    );
    for line in &doc.lines {
        if line.text == SAFEGUARDING_BANNER || line.text == "Safeguarding concern: YES" {
            assert_eq!(line.style, Style::Flag, "{}", line.text);
        }
    }
    let text = doc.to_text();
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        doc.lines
            .iter()
            .map(|l| l.text.as_str())
            .collect::<Vec<_>>()
    );
    doc.lines.into_iter().map(|l| l.text).collect()
}

/// `expected` appear in `lines` in this order (not necessarily next to each other).
fn in_order(lines: &[String], expected: &[&str]) -> Result<(), String> {
    let mut from = 0;
    for want in expected {
        match lines[from..].iter().position(|l| l == want) {
            Some(found) => from += found + 1,
            None => return Err(format!("{want:?} missing or out of order")),
        }
    }
    Ok(())
}

#[test]
fn a_phones_record_of_a_visit_that_took_place_reads_in_record_order() {
    let lines = record(&Given {
        history: took_place(),
        write_ups: vec![(
            "Staff A",
            60,
            write_up("Attendance\nsince half term", false, None),
        )],
        writer: Writer::Phone(Role::Dsl),
        zone: SchoolTimeZone::LONDON,
    });
    assert_eq!(
        lines,
        [
            "Home visit record for CPOMS",
            "",
            "Pupil: Pupil One",
            "Purpose: Safe and well check",
            "Date and time: Monday 23 November 2026, 10:30 GMT (agreed time, Europe/London; expected to \
             last 45 minutes)",
            "Staff: Staff A, Staff B",
            "Visit reference: visit-1",
            "Outcome: The visit took place from 10:20 GMT; everyone had left by 10:52 GMT.",
            "",
            "Write-up by Staff A, 23 November 2026 11:00 GMT",
            "Who was seen:",
            "Mum and the pupil",
            "What was discussed:",
            "Attendance",
            "since half term",
            "Agreements with parents:",
            "None recorded.",
            "Safeguarding concern: No",
            "Incident: none reported",
        ]
    );
}

#[test]
fn the_record_says_what_its_writer_knows() {
    let phone = |role| Writer::Phone(role);
    let concern = || vec![("Staff A", 60, write_up("School", true, None))];
    let delivered = "Sent to the DSL (dsl@school.example) 11:01 GMT by email, delivered";
    let table: Vec<(&str, Given, Vec<&str>, Vec<&str>)> = vec![
        (
            "a concern on a phone: flagged under the title and at its answer, with who must be told",
            Given {
                history: took_place(),
                write_ups: concern(),
                writer: phone(Role::Dsl),
                zone: SchoolTimeZone::LONDON,
            },
            vec![
                "Home visit record for CPOMS",
                SAFEGUARDING_BANNER,
                "The DSL must be told at once (this phone cannot know whether they have been).",
                "Safeguarding concern: YES",
                "The DSL must be told at once (this phone cannot know whether they have been).",
            ],
            vec!["Passed on", "passed to", "Not yet passed on", "Timeline"],
        ),
        (
            "the contact is the one the policy names",
            Given {
                history: took_place(),
                write_ups: concern(),
                writer: phone(Role::SafeguardingLead),
                zone: SchoolTimeZone::LONDON,
            },
            vec!["The safeguarding lead must be told at once (this phone cannot know whether they have been)."],
            vec!["The DSL"],
        ),
        (
            "a concern at the office with a delivery: the delivery's own words",
            Given {
                history: took_place(),
                write_ups: concern(),
                writer: Writer::Office {
                    notices: vec![NoticeTold {
                        about: NoticeAbout::SafeguardingConcern,
                        told: vec![delivered.into()],
                    }],
                    alarms: vec![],
                },
                zone: SchoolTimeZone::LONDON,
            },
            vec![SAFEGUARDING_BANNER, delivered, "Safeguarding concern: YES", delivered],
            vec!["must be told at once", "Not yet passed on"],
        ),
        (
            "a concern the office holds no notice of: not passed on, never assumed",
            Given {
                history: took_place(),
                write_ups: concern(),
                writer: office(),
                zone: SchoolTimeZone::LONDON,
            },
            vec![
                SAFEGUARDING_BANNER,
                "Not yet passed on: the office has no record of passing it on.",
            ],
            vec!["must be told at once"],
        ),
        (
            "an incident on a phone: its words, then who must be told",
            Given {
                history: took_place(),
                write_ups: vec![("Staff B", 61, write_up("School", false, Some("Dog bit\nmy sleeve")))],
                writer: phone(Role::Dsl),
                zone: SchoolTimeZone::LONDON,
            },
            vec![
                "Write-up by Staff B, 23 November 2026 11:01 GMT",
                "Safeguarding concern: No",
                "Incident:",
                "Dog bit",
                "my sleeve",
                "The DSL must be told at once (this phone cannot know whether they have been).",
            ],
            vec![SAFEGUARDING_BANNER, "Incident: none reported"],
        ),
        (
            "cancelled because the staff felt unsafe: why, then who must be told",
            Given {
                history: felt_unsafe(),
                write_ups: vec![("Staff A", 40, write_up("Nothing: we did not go in", false, None))],
                writer: phone(Role::Dsl),
                zone: SchoolTimeZone::LONDON,
            },
            vec![
                "Outcome: Cancelled before it began: Felt unsafe.",
                "Reason given for cancelling:",
                "Shouting inside;",
                "we did not knock",
                "The DSL must be told at once (this phone cannot know whether they have been).",
                "Safeguarding concern: No",
            ],
            vec!["took place"],
        ),
        (
            "a correction withdrawing a concern: the latest wins and the reader is told",
            Given {
                history: took_place(),
                write_ups: vec![
                    ("Staff A", 60, write_up("First", true, None)),
                    ("Staff B", 70, write_up("Second", false, None)),
                ],
                writer: office(),
                zone: SchoolTimeZone::LONDON,
            },
            vec![
                "Write-up by Staff B, 23 November 2026 11:10 GMT; it corrects 1 earlier write-up",
                "Second",
                "Safeguarding concern: No in this write-up, but an earlier write-up said YES",
                "Not yet passed on: the office has no record of passing it on.",
            ],
            vec![SAFEGUARDING_BANNER, "First"],
        ),
        (
            "one still inside: not everyone has left",
            Given {
                history: took_place()[..6].to_vec(),
                write_ups: vec![("Staff A", 55, write_up("School", false, None))],
                writer: phone(Role::Dsl),
                zone: SchoolTimeZone::LONDON,
            },
            vec!["Outcome: The visit started but not everyone has said they have left (now: In the visit)."],
            vec!["everyone had left"],
        ),
        (
            "one person's part ended at the door while the partner was inside: everyone left when the partner did",
            Given {
                history: vec![
                    (10, VisitEvent::ArrivedOutside { staff: staff("a") }),
                    (
                        20,
                        VisitEvent::VisitStarted {
                            by: staff("b"),
                            staff: vec![staff("b")],
                        },
                    ),
                    (
                        22,
                        VisitEvent::Cancelled {
                            staff: staff("a"),
                            reason: CancelReason::Other,
                            note: "Called back to school".into(),
                        },
                    ),
                    (48, VisitEvent::Left { staff: staff("b") }),
                ],
                write_ups: vec![("Staff B", 55, write_up("School", false, None))],
                writer: phone(Role::Dsl),
                zone: SchoolTimeZone::LONDON,
            },
            vec!["Outcome: The visit took place from 10:20 GMT; everyone had left by 10:48 GMT."],
            vec!["Reason given for cancelling"],
        ),
        (
            "every time on the school's clock, with its abbreviation",
            Given {
                history: took_place(),
                write_ups: vec![("Staff A", 60, write_up("School", false, None))],
                writer: phone(Role::Dsl),
                zone: SchoolTimeZone::parse("Pacific/Auckland").unwrap(),
            },
            vec![
                "Date and time: Monday 23 November 2026, 23:30 NZDT (agreed time, Pacific/Auckland; \
                 expected to last 45 minutes)",
                "Outcome: The visit took place from 23:20 NZDT; everyone had left by 23:52 NZDT.",
                "Write-up by Staff A, 24 November 2026 00:00 NZDT",
            ],
            vec!["GMT"],
        ),
        (
            "the office adds the timeline, on the phones' times",
            Given {
                history: took_place(),
                write_ups: vec![("Staff A", 60, write_up("School", false, None))],
                writer: office(),
                zone: SchoolTimeZone::LONDON,
            },
            vec![
                "Incident: none reported",
                "Timeline (times from the staff's phones, Europe/London)",
                "10:20  a went in",
                "10:50  a left the property",
                "10:52  b left the property",
            ],
            vec!["Alarms"],
        ),
        (
            "an office without a write-up says so plainly, and that nobody has left",
            Given {
                history: vec![],
                write_ups: vec![],
                writer: office(),
                zone: SchoolTimeZone::LONDON,
            },
            vec![
                "Outcome: The visit has not taken place (now: Awaiting authorisation).",
                "Write-up",
                "Not written up yet: no write-up has reached the office for this visit.",
                "Nobody has left for this visit.",
            ],
            vec!["Safeguarding concern"],
        ),
        (
            "the office adds its alarms: how each ended and who was told",
            Given {
                history: took_place(),
                write_ups: vec![("Staff A", 60, write_up("School", false, None))],
                writer: Writer::Office {
                    notices: vec![],
                    alarms: vec![
                        AlarmFacts {
                            duress: false,
                            raised_at: at_min(45),
                            acknowledged: Some(("Olu Office".into(), at_min(46))),
                            closed: Some((
                                "Priya Head".into(),
                                at_min(51),
                                Some(AlarmOutcome::StaffSafe),
                            )),
                            close_note: Some("Phone on silent".into()),
                            told: vec!["Emailed the head, delivered".into()],
                        },
                        AlarmFacts {
                            duress: true,
                            raised_at: at_min(47),
                            acknowledged: Some(("Olu Office".into(), at_min(48))),
                            closed: None,
                            close_note: None,
                            told: vec![],
                        },
                    ],
                },
                zone: SchoolTimeZone::LONDON,
            },
            vec![
                "Alarms (office times, Europe/London)",
                "Overdue alarm raised at 10:45 GMT; closed by Priya Head at 10:51 GMT: staff known to be safe.",
                "  Note: Phone on silent",
                "  Emailed the head, delivered",
                "Duress alarm raised at 10:47 GMT; acknowledged by Olu Office at 10:48 GMT, not yet closed.",
                "  Nothing was sent outside the board for it.",
            ],
            vec![],
        ),
    ];
    for (name, given, then_in_order, never) in table {
        let lines = record(&given);
        let text = lines.join("\n");
        if let Err(why) = in_order(&lines, &then_in_order) {
            panic!("{name}: {why} in\n{text}");
        }
        for absent in never {
            assert!(!text.contains(absent), "{name}: {absent:?} in\n{text}");
        }
    }
}

#[test]
fn everyone_left_at_is_the_last_to_finish_once_nobody_is_out() {
    // Given a visit two went into, when one has left, then nobody has "everyone left" yet; when the other
    // leaves, it is their time.
    let held = holdings();
    let visit = &held.visits[0].visit;
    let mut state = VisitState::new(visit.staff_ids());
    let mut seen: Vec<Option<DateTime<Utc>>> = Vec::new();
    for (minute, event) in took_place() {
        state = apply(state, &event, at_min(minute));
        seen.push(state.everyone_left_at());
    }
    assert_eq!(seen[4..], [None, None, Some(at_min(52))]);
}
