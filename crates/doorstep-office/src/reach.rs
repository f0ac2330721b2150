//! Who was told, read only from what the office did and delivered: for each alarm step (raised, reached a
//! level, reminded) the deliveries made to each target with how each went ("emailed the headteacher
//! (head@…) 13:05, delivered", "sending…", "failed: …"), and where no target covered a level the alarm
//! reached, "nobody outside this board can be told", with the numbers to ring from the staff records; the
//! same for each safeguarding notice ("sent to the designated safeguarding lead … by email, delivered", or
//! "not yet passed on"). The board, the visit page, the timeline and the records all say it in these words,
//! so none of them can claim more than the deliveries show.

use chrono::{DateTime, Utc};
use doorstep_core::domain::{PhoneNumber, Role, StaffMember};
use doorstep_core::ids::{SchoolId, VisitId};
use doorstep_core::policy::Policy;
use doorstep_core::schedule::AlarmLevel;

use crate::alarms::{level_audience, step, Alarm, AlarmLogEntry};
use crate::notices::Notice;
use crate::notify::{Delivery, NotificationTarget, TargetKind};
use crate::store::{OfficeStore, StoreError};

/// How one delivery stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// Recorded, not yet accepted by the receiver (nor failed).
    Sending,
    /// The receiver accepted it then.
    Delivered(DateTime<Utc>),
    /// The latest attempt failed; the next try, if one is coming.
    Failed {
        error: String,
        next_try: Option<DateTime<Utc>>,
    },
    /// No more tries: why.
    Stopped { why: &'static str, failed: u32 },
}

/// One delivery, as the records tell it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Told {
    /// When the office made it (the step's or the notice's moment).
    pub at: DateTime<Utc>,
    /// Who it was sent to as: "the headteacher", "the office and the headteacher", "the responsible
    /// contact", "the designated safeguarding lead".
    pub to: String,
    /// The target's name, in the admin's words ("Priya Head"), if given.
    pub name: String,
    pub channel: TargetKind,
    /// The email address, or a webhook's host.
    pub address: String,
    pub sent: Sent,
}

/// One line of who was (or could not be) told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Told(Told),
    /// No target covered this level (or role): nobody outside the board could be told. `ring`: who holds
    /// that role in the staff records, with their phone.
    Nobody {
        at: DateTime<Utc>,
        who: String,
        ring: Vec<(String, PhoneNumber)>,
    },
    /// The visit's responsible contact has only a phone number on record.
    RingContact {
        name: String,
        phone: PhoneNumber,
    },
    /// A notice with targets for its role but no delivery recorded yet.
    NotYetPassedOn {
        at: DateTime<Utc>,
    },
}

/// What the lines are read against: the school's targets (removed ones too, to name past deliveries), its
/// staff records, its policy and the visit's responsible contact.
#[derive(Debug, Clone)]
pub struct Context {
    pub targets: Vec<NotificationTarget>,
    pub staff: Vec<StaffMember>,
    pub policy: Policy,
    /// The visit's out-of-hours responsible contact: name, phone, email.
    pub contact: Option<(String, PhoneNumber, Option<String>)>,
}

impl Context {
    fn target(&self, id: i64) -> Option<&NotificationTarget> {
        self.targets.iter().find(|t| t.id == id)
    }

    /// Who holds `role` in the staff records, with their phones.
    fn holders(&self, role: Role) -> Vec<(String, PhoneNumber)> {
        self.staff
            .iter()
            .filter(|m| m.roles.contains(&role))
            .map(|m| (m.name.clone(), m.phone.clone()))
            .collect()
    }

    /// Who a delivery's stored audience stands for.
    fn audience_words(&self, audience: &str) -> String {
        if audience == "contact" {
            return "the responsible contact".into();
        }
        if let Some(role) = audience.strip_prefix("role:") {
            return serde_json::from_value::<Role>(serde_json::Value::String(role.to_owned()))
                .map_or_else(|_| role.to_owned(), |r| format!("the {}", r.label()));
        }
        let names: Vec<String> = audience
            .split(',')
            .filter_map(AlarmLevel::parse)
            .map(|level| level_audience(level, &self.policy))
            .collect();
        match names.as_slice() {
            [] => "a notification target".into(),
            [one] => one.clone(),
            [init @ .., last] => format!("{} and {last}", init.join(", ")),
        }
    }

    fn told(&self, delivery: &Delivery, at: DateTime<Utc>, alarm: Option<&Alarm>) -> Line {
        let target = self.target(delivery.target);
        let sent = match (delivery.delivered_at, delivery.next_attempt_at) {
            (Some(at), _) => Sent::Delivered(at),
            (None, Some(next)) => match &delivery.last_error {
                Some(error) => Sent::Failed {
                    error: error.clone(),
                    next_try: Some(next),
                },
                None => Sent::Sending,
            },
            (None, None) => {
                let why = if target.is_some_and(|t| t.removed_at.is_some()) {
                    "the target was removed"
                } else if alarm.is_some() {
                    "the alarm was acknowledged first"
                } else {
                    "stopped"
                };
                Sent::Stopped {
                    why,
                    failed: delivery.attempts,
                }
            }
        };
        Line::Told(Told {
            at,
            to: self.audience_words(&delivery.audience),
            name: target.map(|t| t.name.clone()).unwrap_or_default(),
            channel: target.map_or(TargetKind::Email, |t| t.kind),
            address: target
                .map(NotificationTarget::shown_address)
                .unwrap_or_default(),
            sent,
        })
    }

    /// Who was told of one alarm, step by step, from its log and its deliveries.
    pub fn alarm_lines(
        &self,
        alarm: &Alarm,
        log: &[AlarmLogEntry],
        deliveries: &[Delivery],
    ) -> Vec<Line> {
        let mut lines = Vec::new();
        for entry in log.iter().filter(|e| e.alarm == alarm.id) {
            match entry.what.as_str() {
                step::NOBODY_TO_TELL => {
                    let level = entry.level.unwrap_or(AlarmLevel::Authoriser);
                    let ring = match level {
                        AlarmLevel::Authoriser => self.holders(self.policy.authoriser),
                        _ => Vec::new(),
                    };
                    lines.push(Line::Nobody {
                        at: entry.at,
                        who: level_audience(level, &self.policy),
                        ring,
                    });
                }
                step::RAISED | step::REACHED_LEVEL | step::REMINDED => {
                    for delivery in deliveries.iter().filter(|d| d.step == Some(entry.id)) {
                        lines.push(self.told(delivery, entry.at, Some(alarm)));
                    }
                }
                _ => {}
            }
        }
        if let Some((name, phone, None)) = &self.contact {
            lines.push(Line::RingContact {
                name: name.clone(),
                phone: phone.clone(),
            });
        }
        lines
    }

    /// Who was told of one safeguarding notice, from its deliveries.
    pub fn notice_lines(&self, notice: &Notice, deliveries: &[Delivery]) -> Vec<Line> {
        let lines: Vec<Line> = deliveries
            .iter()
            .filter(|d| d.notice == Some(notice.id))
            .map(|d| self.told(d, d.created_at, None))
            .collect();
        if !lines.is_empty() {
            return lines;
        }
        let covered = self
            .targets
            .iter()
            .any(|t| t.is_live() && t.visit.is_none() && t.roles.contains(&notice.role));
        if covered {
            vec![Line::NotYetPassedOn {
                at: notice.raised_at,
            }]
        } else {
            vec![Line::Nobody {
                at: notice.raised_at,
                who: format!("the {}", notice.role.label()),
                ring: self.holders(notice.role),
            }]
        }
    }
}

fn ring_words(ring: &[(String, PhoneNumber)], who: &str) -> String {
    if ring.is_empty() {
        return format!("tell {who} yourself");
    }
    let people: Vec<String> = ring
        .iter()
        .map(|(name, phone)| format!("{name} on {phone}"))
        .collect();
    format!("ring {}", people.join(" or "))
}

/// A line in words, with times as `clock` writes them (the board's local time, the records' UTC).
/// `nobody_prefix` starts a "nobody" line: the board says "Nobody outside this board can be told", a
/// notice's record "Not yet passed on".
pub fn words(line: &Line, clock: &dyn Fn(DateTime<Utc>) -> String, nobody_prefix: &str) -> String {
    match line {
        Line::Told(told) => {
            let to = if told.name.is_empty() {
                told.to.clone()
            } else {
                format!("{}, {}", told.to, told.name)
            };
            let how = match told.channel {
                TargetKind::Email => format!("emailed {to} ({})", told.address),
                TargetKind::Webhook => format!("sent to {to} by webhook ({})", told.address),
            };
            match &told.sent {
                Sent::Delivered(at) => format!("{how} {}, delivered", clock(*at)),
                Sent::Sending => format!("{how} {}: sending…", clock(told.at)),
                Sent::Failed { error, next_try } => match next_try {
                    Some(next) => format!(
                        "{how} {}: failed: {error}; trying again at {}",
                        clock(told.at),
                        clock(*next)
                    ),
                    None => format!("{how} {}: failed: {error}", clock(told.at)),
                },
                Sent::Stopped { why, failed: 0 } => {
                    format!("{how} {}: not sent: {why}", clock(told.at))
                }
                Sent::Stopped { why, failed } => format!(
                    "{how} {}: not delivered ({failed} failed tries); no more tries: {why}",
                    clock(told.at)
                ),
            }
        }
        Line::Nobody { who, ring, .. } => format!(
            "{nobody_prefix}: no contact is set up for {who}; {}",
            ring_words(ring, who)
        ),
        Line::RingContact { name, phone } => {
            format!("The responsible contact, {name}, has no email on record: ring them on {phone}")
        }
        Line::NotYetPassedOn { at } => {
            format!("Not yet passed on (raised {}): sending…", clock(*at))
        }
    }
}

/// Whether a line is a problem a person must act on (nobody could be told, or the last try failed).
pub fn needs_action(line: &Line) -> bool {
    match line {
        Line::Told(told) => matches!(told.sent, Sent::Failed { .. } | Sent::Stopped { .. }),
        Line::Nobody { .. } | Line::RingContact { .. } => true,
        Line::NotYetPassedOn { .. } => false,
    }
}

impl OfficeStore {
    /// What [`Context`] needs for one visit of `school` (or for the school's board, without a visit).
    pub fn reach_context(
        &self,
        school: &SchoolId,
        visit: Option<&VisitId>,
    ) -> Result<Context, StoreError> {
        let contact = match visit {
            Some(visit) => self.request_details(visit)?.and_then(|details| {
                details
                    .responsible_contact
                    .map(|(name, phone)| (name, phone, details.contact_email))
            }),
            None => None,
        };
        Ok(Context {
            targets: self.school_notification_targets(school)?,
            staff: self.school_staff(school)?,
            policy: self.policy(school)?,
            contact,
        })
    }

    /// Every delivery of a visit's alarms and notices, in the order recorded.
    pub fn deliveries_for_visit(&self, visit: &VisitId) -> Result<Vec<Delivery>, StoreError> {
        let mut all = Vec::new();
        for alarm in self.alarms_for_visit(visit)? {
            all.extend(self.deliveries_for_alarm(alarm.id)?);
        }
        for notice in self.notices_for_visit(visit)? {
            all.extend(self.deliveries_for_notice(notice.id)?);
        }
        Ok(all)
    }
}
