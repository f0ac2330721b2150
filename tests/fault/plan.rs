//! A run's plan, made from its seed alone: what the person holding the phone does and which fault the
//! network, the office or the phone suffers meanwhile, segment by segment. The same seed always gives the
//! same plan; only the operating system's timing differs between two runs of it.

use std::fmt;

use crate::rng::Rng;

/// What can go wrong during a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Nothing: the link works.
    Clear,
    /// Every connection is reset at once, new and kept-alive alike (no route, office port closed).
    Refuse,
    /// Every connection is held open and never answered, and one that went silent stays silent for good
    /// (a mobile NAT that forgot the connection, a dead cell).
    Silent,
    /// Each request and each answer waits this long on the way.
    Delay { each_way_ms: u64 },
    /// Each request carrying events reaches the office twice, the copy `copy_after_ms` after the original.
    Duplicate { copy_after_ms: u64 },
    /// Each request carrying events reaches the office, which commits and answers; the answer is never
    /// delivered and the phone's connection is reset.
    CutAfterCommit,
    /// The link runs at 2G speed (see `proxy::TWO_G`).
    Throttle2G,
    /// The office process is SIGKILLed `after_us` after the next request carrying events is handed to it
    /// (before, during or after its commit), and started again `down_ms` later.
    OfficeKill { after_us: u64, down_ms: u64 },
    /// The phone's process is SIGKILLed at `point`, and opened again `down_ms` later.
    PhoneKill { point: PhoneKillPoint, down_ms: u64 },
}

/// Where in recording and sending an event the phone's process is killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneKillPoint {
    /// `after_us` after the tap is handed to the app, perhaps in the middle of its commit.
    DuringWrite { after_us: u64 },
    /// As soon as the app says the event is on its disk, before (or as) its sync loop sends it.
    AfterWrite,
    /// After it sent the request, before the office has it.
    AfterSend,
    /// After the office stored the request, before the phone hears the answer.
    AfterCommit,
}

/// The kinds of fault, for the report and for choosing each run's last fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    Refuse,
    Silent,
    Delay,
    Duplicate,
    CutAfterCommit,
    Throttle2G,
    OfficeKill,
    PhoneKill,
}

impl FaultKind {
    /// Every kind; run `seed` ends with `ALL[seed % ALL.len()]`, so any run of consecutive seeds this long
    /// covers them all.
    pub const ALL: [FaultKind; 8] = [
        FaultKind::Refuse,
        FaultKind::Silent,
        FaultKind::Delay,
        FaultKind::Duplicate,
        FaultKind::CutAfterCommit,
        FaultKind::Throttle2G,
        FaultKind::OfficeKill,
        FaultKind::PhoneKill,
    ];

    pub fn label(self) -> &'static str {
        match self {
            FaultKind::Refuse => "refused connections",
            FaultKind::Silent => "silent dead connections",
            FaultKind::Delay => "delays",
            FaultKind::Duplicate => "duplicated requests",
            FaultKind::CutAfterCommit => "cut after commit",
            FaultKind::Throttle2G => "2G throttle",
            FaultKind::OfficeKill => "office SIGKILL",
            FaultKind::PhoneKill => "phone SIGKILL",
        }
    }
}

impl Fault {
    pub fn kind(&self) -> Option<FaultKind> {
        Some(match self {
            Fault::Clear => return None,
            Fault::Refuse => FaultKind::Refuse,
            Fault::Silent => FaultKind::Silent,
            Fault::Delay { .. } => FaultKind::Delay,
            Fault::Duplicate { .. } => FaultKind::Duplicate,
            Fault::CutAfterCommit => FaultKind::CutAfterCommit,
            Fault::Throttle2G => FaultKind::Throttle2G,
            Fault::OfficeKill { .. } => FaultKind::OfficeKill,
            Fault::PhoneKill { .. } => FaultKind::PhoneKill,
        })
    }

    fn of_kind(kind: FaultKind, rng: &mut Rng) -> Fault {
        match kind {
            FaultKind::Refuse => Fault::Refuse,
            FaultKind::Silent => Fault::Silent,
            FaultKind::Delay => Fault::Delay {
                each_way_ms: rng.range(100, 2_500),
            },
            FaultKind::Duplicate => Fault::Duplicate {
                copy_after_ms: rng.range(0, 800),
            },
            FaultKind::CutAfterCommit => Fault::CutAfterCommit,
            FaultKind::Throttle2G => Fault::Throttle2G,
            FaultKind::OfficeKill => Fault::OfficeKill {
                after_us: rng.range(0, 4_000),
                down_ms: rng.range(200, 3_000),
            },
            FaultKind::PhoneKill => Fault::PhoneKill {
                point: match rng.range(0, 3) {
                    0 => PhoneKillPoint::DuringWrite {
                        after_us: rng.range(0, 3_000),
                    },
                    1 => PhoneKillPoint::AfterWrite,
                    2 => PhoneKillPoint::AfterSend,
                    _ => PhoneKillPoint::AfterCommit,
                },
                down_ms: rng.range(100, 1_500),
            },
        }
    }

    /// How long the segment lasts, in milliseconds: outages are mostly short, sometimes long enough for
    /// the sync loop's back-off to grow past the probe's interval.
    fn length_ms(&self, rng: &mut Rng) -> u64 {
        match self {
            Fault::Clear => rng.range(200, 1_500),
            Fault::Refuse | Fault::Silent if rng.chance(15) => rng.range(15_000, 35_000),
            Fault::Refuse | Fault::Silent => rng.range(1_000, 8_000),
            Fault::Delay { .. } | Fault::Duplicate { .. } => rng.range(2_000, 5_000),
            Fault::CutAfterCommit => rng.range(1_500, 4_000),
            Fault::Throttle2G => rng.range(3_000, 8_000),
            // These end when the office or the phone is back; the length is a minimum.
            Fault::OfficeKill { down_ms, .. } | Fault::PhoneKill { down_ms, .. } => *down_ms,
        }
    }
}

/// One thing the person holding the phone does, on the visit with this index (in agreed-time order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The next step the visit screen offers (the briefing checklist, "Leaving now", ... "I'm OK").
    Step(usize),
    /// The discreet request for help.
    Alert(usize),
    /// "Cancel my request", with a short note.
    StandDown(usize),
    /// "I've left".
    Leave(usize),
    /// The write-up, `chars` characters of it.
    WriteUp(usize, usize),
}

/// A stretch of the run with one fault, and what the person does during it.
#[derive(Debug, Clone)]
pub struct Segment {
    pub fault: Fault,
    pub millis: u64,
    pub actions: Vec<Action>,
}

/// Everything a run does, from its seed.
#[derive(Debug, Clone)]
pub struct Plan {
    pub seed: u64,
    /// Done with the link clear, after the phone's first sync.
    pub warm_up: Vec<Action>,
    pub segments: Vec<Segment>,
}

impl Plan {
    pub fn from_seed(seed: u64) -> Plan {
        let mut rng = Rng::new(seed);
        let mut script = Script::new(rng.fork());
        let warm_up = (0..rng.range(0, 6)).map(|_| script.next()).collect();
        let count = rng.range(2, 4) as usize;
        let mut segments = Vec::with_capacity(count);
        for index in 0..count {
            let last = index + 1 == count;
            let fault = if last {
                Fault::of_kind(FaultKind::ALL[(seed % 8) as usize], &mut rng)
            } else if rng.chance(25) {
                Fault::Clear
            } else {
                let kind = FaultKind::ALL[rng.range(0, 7) as usize];
                Fault::of_kind(kind, &mut rng)
            };
            let millis = fault.length_ms(&mut rng);
            let mut actions = Vec::new();
            if last {
                // The alert every run measures: raised as the last fault begins, so it waits through it.
                actions.push(Action::Alert(0));
            } else if rng.chance(20) {
                actions.push(Action::Alert(0));
                actions.push(Action::StandDown(0));
            }
            // A kill needs something to kill around; other faults may pass with nothing recorded.
            let least = u64::from(
                matches!(fault, Fault::OfficeKill { .. } | Fault::PhoneKill { .. })
                    && actions.is_empty(),
            );
            for _ in 0..rng.range(least, 5) {
                actions.push(script.next());
            }
            segments.push(Segment {
                fault,
                millis,
                actions,
            });
        }
        Plan {
            seed,
            warm_up,
            segments,
        }
    }

    /// The kind of the last fault, the one whose end the latencies are measured from.
    pub fn last_kind(&self) -> FaultKind {
        self.segments
            .last()
            .and_then(|segment| segment.fault.kind())
            .unwrap_or(FaultKind::Refuse)
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seed {}: warm-up {:?}", self.seed, self.warm_up)?;
        for segment in &self.segments {
            write!(
                f,
                "; {:?} for {} ms doing {:?}",
                segment.fault, segment.millis, segment.actions
            )?;
        }
        Ok(())
    }
}

/// The person's day, in order: the first visit from the briefing to the write-up (with a few check-ins),
/// then the second visit's steps.
struct Script {
    queue: std::collections::VecDeque<Action>,
}

impl Script {
    fn new(mut rng: Rng) -> Self {
        let mut queue = std::collections::VecDeque::new();
        for visit in 0..2 {
            // Briefing, leaving, outside, arrived together, going in, then check-ins.
            let steps = 5 + rng.range(3, 12) as usize;
            queue.extend(std::iter::repeat_n(Action::Step(visit), steps));
            queue.push_back(Action::Leave(visit));
            queue.push_back(Action::WriteUp(visit, rng.range(20, 3_000) as usize));
        }
        Script { queue }
    }

    /// The next action; once the day is done, more check-ins on the second visit (refused by then, which
    /// the phone reports as nothing recorded).
    fn next(&mut self) -> Action {
        self.queue.pop_front().unwrap_or(Action::Step(1))
    }
}
