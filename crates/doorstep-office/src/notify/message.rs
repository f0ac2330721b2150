//! What a notification says and to whom: which alarm steps notify which levels, the email message (subject,
//! headers, plain-text body) and the webhook's JSON body with its signature, for alarm steps and for
//! safeguarding notices. Pure functions of the stored alarm (or notice), visit and school.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use doorstep_core::domain::{Role, School, Visit};
use doorstep_core::schedule::AlarmLevel;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use uuid::Uuid;

use super::TargetKind;
use crate::alarms::{step, Alarm, AlarmKind};
use crate::notices::{Notice, NoticeKind};

/// Which alarm levels a step of an alarm's history is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Audience {
    pub board: bool,
    pub authoriser: bool,
    pub further: bool,
}

impl Audience {
    /// Every level up to and including `level`.
    fn up_to(level: AlarmLevel) -> Self {
        Self {
            board: true,
            authoriser: level >= AlarmLevel::Authoriser,
            further: level >= AlarmLevel::Further,
        }
    }

    fn only(level: AlarmLevel) -> Self {
        Self {
            board: level == AlarmLevel::Board,
            authoriser: level == AlarmLevel::Authoriser,
            further: level == AlarmLevel::Further,
        }
    }

    /// The levels of this audience a target wants, as stored with its delivery ("board,authoriser"), or
    /// `None` when it wants none of them.
    pub fn for_target(self, wants: super::WantedLevels) -> Option<String> {
        let names: Vec<&str> = [
            (self.board && wants.board, AlarmLevel::Board),
            (self.authoriser && wants.authoriser, AlarmLevel::Authoriser),
            (self.further && wants.further, AlarmLevel::Further),
        ]
        .into_iter()
        .filter(|(yes, _)| *yes)
        .map(|(_, level)| level.name())
        .collect();
        (!names.is_empty()).then(|| names.join(","))
    }

    /// The highest level of the audience.
    pub fn level(self) -> AlarmLevel {
        if self.further {
            AlarmLevel::Further
        } else if self.authoriser {
            AlarmLevel::Authoriser
        } else {
            AlarmLevel::Board
        }
    }
}

/// One line of an alarm's history, as the planner reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Step {
    pub id: i64,
    pub what: String,
    pub level: Option<AlarmLevel>,
    pub at: DateTime<Utc>,
    pub detail: String,
}

/// The steps of one alarm's history that notify someone, each with its audience: "raised" tells every
/// level up to the one it was raised at (one message for a duress raised at the authoriser's level);
/// "reached_level" tells the level reached; "reminded" tells the levels beyond the board up to its own.
pub(crate) fn notifying_steps(history: &[Step]) -> Vec<(&Step, Audience)> {
    history
        .iter()
        .filter_map(|step| {
            let level = step.level.unwrap_or(AlarmLevel::Board);
            let audience = match step.what.as_str() {
                step::RAISED => Audience::up_to(level),
                step::REACHED_LEVEL => Audience::only(level),
                step::REMINDED => Audience {
                    board: false,
                    ..Audience::up_to(level)
                },
                _ => return None,
            };
            Some((step, audience))
        })
        .collect()
}

/// One delivery an alarm's history calls for: a notifying step, to one target, with the levels of its
/// audience that target wants (as stored with the delivery, "board,authoriser"; "contact" for a visit's own
/// responsible contact).
#[derive(Debug, Clone)]
pub(crate) struct Planned<'a> {
    pub step: &'a Step,
    pub audience: Audience,
    pub target: &'a super::NotificationTarget,
    pub audience_text: String,
    pub to_contact: bool,
}

/// The deliveries an alarm's history calls for (the delivery planning, a pure function whichever store
/// holds the history): each notifying step ([`notifying_steps`]), to each of `targets` (the alarm's live
/// school-wide targets and its visit's own contacts) that wants the step's audience (a visit's contact
/// hears every step), that existed when the step happened, and that has no delivery for the step yet
/// (`made`: (step id, target id) pairs).
pub(crate) fn plan_alarm_deliveries<'a>(
    history: &'a [Step],
    targets: &'a [super::NotificationTarget],
    made: &std::collections::HashSet<(i64, i64)>,
) -> Vec<Planned<'a>> {
    let mut plan = Vec::new();
    for (step, audience) in notifying_steps(history) {
        for target in targets {
            let (audience_text, to_contact) = if target.visit.is_some() {
                ("contact".to_owned(), true)
            } else {
                match audience.for_target(target.wants) {
                    Some(text) => (text, false),
                    None => continue,
                }
            };
            if step.at < target.created_at || made.contains(&(step.id, target.id)) {
                continue;
            }
            plan.push(Planned {
                step,
                audience,
                target,
                audience_text,
                to_contact,
            });
        }
    }
    plan
}

/// What a delivery tells of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tells {
    /// A step of an alarm's history.
    AlarmStep {
        alarm: i64,
        step: i64,
    },
    Notice(i64),
}

/// A delivery planned and written out, as both stores record it: due at once, with its exact payload.
#[derive(Debug, Clone)]
pub(crate) struct NewDelivery {
    /// The UUID a receiver can drop a repeat by (the webhook's header, the email's Message-ID).
    pub id: Uuid,
    pub tells: Tells,
    pub target: i64,
    /// Who it is sent to as ("board,authoriser", "contact", "role:dsl").
    pub audience: String,
    pub payload: String,
}

/// Writes out the deliveries `plan` holds for `alarm` (whose history is `history`, of a visit of `school`),
/// as sent by `from` at `now`: a pure function, so both stores record the same words.
pub(crate) fn alarm_deliveries(
    alarm: &Alarm,
    history: &[Step],
    plan: Vec<Planned<'_>>,
    (visit, school): (&Visit, &School),
    from: &str,
    now: DateTime<Utc>,
) -> Result<Vec<NewDelivery>, serde_json::Error> {
    let alarm_detail = history
        .iter()
        .find(|s| s.what == step::RAISED)
        .map(|s| s.detail.clone())
        .unwrap_or_default();
    plan.into_iter()
        .map(|planned| {
            let message = AlarmMessage {
                alarm: alarm.clone(),
                alarm_detail: alarm_detail.clone(),
                step: planned.step.clone(),
                audience: planned.audience,
                to_contact: planned.to_contact,
                visit: visit.clone(),
                school: school.clone(),
            };
            let target = planned.target;
            let id = Uuid::now_v7();
            Ok(NewDelivery {
                payload: Told::Alarm(&message).payload(
                    target.kind,
                    from,
                    &target.address,
                    &id,
                    now,
                )?,
                id,
                tells: Tells::AlarmStep {
                    alarm: alarm.id,
                    step: planned.step.id,
                },
                target: target.id,
                audience: planned.audience_text,
            })
        })
        .collect()
}

/// Which of a school's live `targets` a safeguarding notice goes to: school-wide targets whose roles include
/// the notice's, that existed when it was raised (or, while nobody has been sent it yet (`sent_any`), any
/// added since, so the concern still reaches someone), and that have no delivery of it yet (`made`).
pub(crate) fn plan_notice_deliveries<'a>(
    notice: &Notice,
    sent_any: bool,
    targets: &'a [super::NotificationTarget],
    made: &std::collections::HashSet<i64>,
) -> Vec<&'a super::NotificationTarget> {
    targets
        .iter()
        .filter(|t| t.visit.is_none() && t.roles.contains(&notice.role))
        .filter(|t| !sent_any || t.created_at <= notice.raised_at)
        .filter(|t| !made.contains(&t.id))
        .collect()
}

/// Writes out a notice's deliveries to `targets` ([`plan_notice_deliveries`]), as sent by `from` at `now`.
pub(crate) fn notice_deliveries(
    message: &NoticeMessage,
    targets: &[&super::NotificationTarget],
    from: &str,
    now: DateTime<Utc>,
) -> Result<Vec<NewDelivery>, serde_json::Error> {
    let audience = format!("role:{}", crate::notices::role_name(message.notice.role));
    targets
        .iter()
        .map(|target| {
            let id = Uuid::now_v7();
            Ok(NewDelivery {
                payload: Told::Notice(message).payload(
                    target.kind,
                    from,
                    &target.address,
                    &id,
                    now,
                )?,
                id,
                tells: Tells::Notice(message.notice.id),
                target: target.id,
                audience: audience.clone(),
            })
        })
        .collect()
}

/// The alarm log's words for a delivery to `target` stopped after `attempts` tries, because the alarm was
/// acknowledged or closed or the target removed.
pub(crate) fn cancelled_detail(target: &super::NotificationTarget, attempts: u32) -> String {
    let why = if target.removed_at.is_some() {
        "the target was removed"
    } else {
        "the alarm was acknowledged"
    };
    if attempts == 0 {
        format!("{}: not sent, {why} first", target.label())
    } else {
        format!(
            "{}: no more tries after {attempts} failed, {why}",
            target.label()
        )
    }
}

/// Everything an alarm step's notification is made from.
#[derive(Debug, Clone)]
pub(crate) struct AlarmMessage {
    pub alarm: Alarm,
    /// What the alarm is about, as its "raised" step says it.
    pub alarm_detail: String,
    pub step: Step,
    pub audience: Audience,
    /// Sent to the visit's own responsible contact.
    pub to_contact: bool,
    pub visit: Visit,
    pub school: School,
}

fn kind_name(kind: AlarmKind) -> &'static str {
    match kind {
        AlarmKind::Overdue => "overdue",
        AlarmKind::Duress => "duress",
    }
}

/// The subject: the alarm, the visit id and what happened, never the pupil's name.
pub(crate) fn email_subject(message: &AlarmMessage) -> String {
    format!(
        "Doorstep ALARM: {} on visit {} — {}",
        kind_name(message.alarm.kind),
        message.visit.id,
        message.alarm_detail
    )
}

/// What the office did at this step, in words (the step's own log line, without claims about anyone told).
fn step_words(step: &Step) -> String {
    match (step.what.as_str(), step.level) {
        (step::RAISED, Some(level)) if level != AlarmLevel::Board => {
            format!(
                "raised on the office board at the {} level at once",
                level.name()
            )
        }
        (step::RAISED, _) => "raised on the office board".to_owned(),
        _ => step.detail.clone(),
    }
}

/// The plain-text body: what happened, where, and who to ring. No pupil name: mail servers that are not the
/// school's store it and pass it on.
pub(crate) fn email_body(message: &AlarmMessage, delivery: &Uuid) -> String {
    let step = &message.step;
    let why = if message.to_contact {
        "the responsible contact for this visit outside school hours".to_owned()
    } else {
        format!(
            "a contact for alarms at the {} level",
            message.audience.level().name()
        )
    };
    let mut body = format!(
        "Doorstep ALARM: {kind} on visit {visit}\n\
         \n\
         What: {detail}\n\
         Now: {now_text} ({at})\n\
         Level: {level}\n\
         Sent to you as: {why}\n\
         \n\
         Where: {address}\n\
         Visit: {visit}, {purpose}, agreed for {agreed}\n\
         \n\
         Staff on the visit:\n",
        kind = kind_name(message.alarm.kind),
        visit = message.visit.id,
        detail = message.alarm_detail,
        now_text = step_words(step),
        at = message.school.time_zone.format(step.at, "%H:%M:%S %Z"),
        level = message.alarm.level.name(),
        address = message.visit.address.one_line(),
        purpose = message.visit.purpose.label(),
        agreed = message
            .school
            .time_zone
            .format(message.visit.agreed_time, "%Y-%m-%d %H:%M %Z"),
    );
    for member in &message.visit.staff {
        body.push_str(&format!("  {}: {}\n", member.name, member.phone));
    }
    body.push_str(&format!(
        "\nSchool: {}, office {}\n\
         \n\
         Ring the office first: whoever takes charge acknowledges the alarm there. If the staff cannot be\n\
         reached, the authoriser decides whether to call the police.\n\
         \n\
         Doorstep office: alarm {}, notification {}\n",
        message.school.name, message.school.office_phone, message.alarm.id, delivery
    ));
    body
}

/// What a safeguarding notice's notification is made from.
#[derive(Debug, Clone)]
pub(crate) struct NoticeMessage {
    pub notice: Notice,
    /// Who sent it in, by name.
    pub raised_by: String,
    pub visit: Visit,
    pub school: School,
}

fn notice_words(kind: NoticeKind) -> &'static str {
    match kind {
        NoticeKind::SafeguardingConcern => "a safeguarding concern",
        NoticeKind::Incident => "an incident",
        NoticeKind::FeltUnsafe => "a visit cancelled because staff felt unsafe",
    }
}

/// The subject of a notice: what kind, and the visit id; never its words or the pupil's name.
pub(crate) fn notice_subject(message: &NoticeMessage) -> String {
    format!(
        "Doorstep: {} on visit {}",
        notice_words(message.notice.kind),
        message.visit.id
    )
}

/// The body of a notice: that it was raised, by whom, when, and where to read it. The words themselves stay
/// in the office's records: this travels through other people's mail servers.
pub(crate) fn notice_body(message: &NoticeMessage, delivery: &Uuid) -> String {
    let notice = &message.notice;
    // Times in the school's words: the reader is the school's, wherever the office's server runs.
    let zone = &message.school.time_zone;
    let what = match notice.kind {
        NoticeKind::SafeguardingConcern => "flagged a safeguarding concern in the write-up of",
        NoticeKind::Incident => "reported an incident in the write-up of",
        NoticeKind::FeltUnsafe => "cancelled, feeling unsafe, and wrote why, on",
    };
    format!(
        "Doorstep: {kind} on visit {visit}\n\
         \n\
         {who} {what} visit {visit} ({purpose}, agreed for {agreed}). The office received it at {at}.\n\
         \n\
         Sent to you as: the {role}, whom the school's policy says is told at once.\n\
         \n\
         The words are kept at the office, not in this message: open the visit's record there (the write-up\n\
         for {school}'s record system).\n\
         \n\
         School: {school}, office {phone}\n\
         Doorstep office: notice {id}, notification {delivery}\n",
        kind = notice_words(notice.kind),
        visit = message.visit.id,
        who = message.raised_by,
        purpose = message.visit.purpose.label(),
        agreed = zone.format(message.visit.agreed_time, "%Y-%m-%d %H:%M %Z"),
        at = zone.format(notice.raised_at, "%Y-%m-%d %H:%M:%S %Z"),
        role = notice.role.label(),
        school = message.school.name,
        phone = message.school.office_phone,
        id = notice.id,
    )
}

/// An email message, whole: headers, a blank line, the body, CRLF throughout.
pub(crate) fn email(
    subject: &str,
    body: &str,
    from: &str,
    to: &str,
    delivery: &Uuid,
    now: DateTime<Utc>,
) -> String {
    let body = crlf(body);
    let domain = from
        .rsplit_once('@')
        .map(|(_, domain)| domain)
        .unwrap_or("doorstep.invalid");
    let headers = [
        format!("From: Doorstep office <{from}>"),
        format!("To: <{to}>"),
        format!("Subject: {}", encode_header_text(subject)),
        format!("Date: {}", now.to_rfc2822()),
        format!("Message-ID: <{delivery}@{domain}>"),
        "MIME-Version: 1.0".to_owned(),
        "Content-Type: text/plain; charset=utf-8".to_owned(),
        format!(
            "Content-Transfer-Encoding: {}",
            if body.is_ascii() { "7bit" } else { "8bit" }
        ),
        "Auto-Submitted: auto-generated".to_owned(),
        format!("X-Doorstep-Delivery: {delivery}"),
    ];
    format!("{}\r\n\r\n{body}", headers.join("\r\n"))
}

/// What one delivery tells: an alarm step or a safeguarding notice.
pub(crate) enum Told<'a> {
    Alarm(&'a AlarmMessage),
    Notice(&'a NoticeMessage),
}

impl Told<'_> {
    /// The exact bytes recorded for a target of `kind`: the whole email message, as handed to the SMTP
    /// server, or the webhook's JSON body.
    pub(crate) fn payload(
        &self,
        kind: TargetKind,
        from: &str,
        to: &str,
        delivery: &Uuid,
        now: DateTime<Utc>,
    ) -> Result<String, serde_json::Error> {
        let (subject, body) = match (kind, self) {
            (TargetKind::Webhook, Told::Alarm(message)) => {
                return webhook_body(message, delivery, now)
            }
            (TargetKind::Webhook, Told::Notice(message)) => {
                return notice_webhook_body(message, delivery, now)
            }
            (TargetKind::Email, Told::Alarm(message)) => {
                (email_subject(message), email_body(message, delivery))
            }
            (TargetKind::Email, Told::Notice(message)) => {
                (notice_subject(message), notice_body(message, delivery))
            }
        };
        Ok(email(&subject, &body, from, to, delivery, now))
    }
}

/// Every line break as CRLF, as SMTP wants; a stray CR or LF in stored text cannot start a header.
fn crlf(text: &str) -> String {
    text.replace("\r\n", "\n")
        .replace('\r', "\n")
        .replace('\n', "\r\n")
}

/// A header value: as it is when it is short printable ASCII, otherwise RFC 2047 encoded words (UTF-8,
/// base64), each at most 75 characters, folded onto continuation lines.
pub(crate) fn encode_header_text(text: &str) -> String {
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.is_ascii() && text.len() <= 900 && !text.contains("=?") {
        return text;
    }
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        // 45 bytes of UTF-8 make 60 characters of base64: with "=?UTF-8?B?" and "?=", 72 in all.
        if chunk.len() + c.len_utf8() > 45 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(chunk);
    }
    words
        .iter()
        .map(|w| {
            format!(
                "=?UTF-8?B?{}?=",
                base64::engine::general_purpose::STANDARD.encode(w)
            )
        })
        .collect::<Vec<_>>()
        .join("\r\n ")
}

#[derive(Serialize)]
struct WebhookBody<'a> {
    /// This delivery's id (also `X-Doorstep-Delivery`), inside the signed body so that a captured message
    /// replayed under another id fails its signature: a receiver drops any id it has seen.
    delivery_id: String,
    alarm: WebhookAlarm<'a>,
    step: WebhookStep<'a>,
    /// Who this target is sent it as: alarm levels ("board", "authoriser", "further"), or "contact" (the
    /// visit's responsible contact).
    audience: Vec<&'static str>,
    visit_id: &'a str,
    school: &'a School,
    /// Who is on the visit and their phones: enough to act. No home address, no pupil: the board has
    /// those for whoever is signed in.
    staff: Vec<StaffContact<'a>>,
    /// When the office issued this notification. Every attempt sends the same bytes, so a retry carries
    /// the first attempt's time and the same signature.
    sent_at: DateTime<Utc>,
}

#[derive(Serialize)]
struct WebhookAlarm<'a> {
    id: i64,
    kind: &'static str,
    level: &'static str,
    about: &'a str,
    detail: &'a str,
    due_at: DateTime<Utc>,
    raised_at: DateTime<Utc>,
}

#[derive(Serialize)]
struct WebhookStep<'a> {
    id: i64,
    what: &'a str,
    level: Option<&'static str>,
    at: DateTime<Utc>,
    detail: &'a str,
}

#[derive(Serialize)]
struct StaffContact<'a> {
    name: &'a str,
    phone: &'a str,
}

/// An alarm step's webhook JSON body. Like the email, it names no pupil.
pub(crate) fn webhook_body(
    message: &AlarmMessage,
    delivery: &uuid::Uuid,
    now: DateTime<Utc>,
) -> Result<String, serde_json::Error> {
    let audience = if message.to_contact {
        vec!["contact"]
    } else {
        [
            (message.audience.board, AlarmLevel::Board),
            (message.audience.authoriser, AlarmLevel::Authoriser),
            (message.audience.further, AlarmLevel::Further),
        ]
        .into_iter()
        .filter(|(yes, _)| *yes)
        .map(|(_, level)| level.name())
        .collect()
    };
    serde_json::to_string(&WebhookBody {
        delivery_id: delivery.to_string(),
        alarm: WebhookAlarm {
            id: message.alarm.id,
            kind: kind_name(message.alarm.kind),
            level: message.alarm.level.name(),
            about: &message.alarm.about,
            detail: &message.alarm_detail,
            due_at: message.alarm.due_at,
            raised_at: message.alarm.raised_at,
        },
        step: WebhookStep {
            id: message.step.id,
            what: &message.step.what,
            level: message.step.level.map(AlarmLevel::name),
            at: message.step.at,
            detail: &message.step.detail,
        },
        audience,
        visit_id: message.visit.id.as_str(),
        school: &message.school,
        staff: message
            .visit
            .staff
            .iter()
            .map(|s| StaffContact {
                name: &s.name,
                phone: s.phone.as_str(),
            })
            .collect(),
        sent_at: now,
    })
}

#[derive(Serialize)]
struct NoticeWebhookBody<'a> {
    /// As in an alarm's body: the delivery's id, signed.
    delivery_id: String,
    notice: NoticeWebhook<'a>,
    visit_id: &'a str,
    school: &'a School,
    sent_at: DateTime<Utc>,
}

#[derive(Serialize)]
struct NoticeWebhook<'a> {
    id: i64,
    kind: &'static str,
    /// The role it is for (the policy's `safeguarding_concerns_to`).
    role: Role,
    raised_by: &'a str,
    raised_at: DateTime<Utc>,
}

/// A safeguarding notice's webhook JSON body: that it was raised, never its words or the pupil's name.
pub(crate) fn notice_webhook_body(
    message: &NoticeMessage,
    delivery: &uuid::Uuid,
    now: DateTime<Utc>,
) -> Result<String, serde_json::Error> {
    serde_json::to_string(&NoticeWebhookBody {
        delivery_id: delivery.to_string(),
        notice: NoticeWebhook {
            id: message.notice.id,
            kind: message.notice.kind.as_str(),
            role: message.notice.role,
            raised_by: &message.raised_by,
            raised_at: message.notice.raised_at,
        },
        visit_id: message.visit.id.as_str(),
        school: &message.school,
        sent_at: now,
    })
}

/// The `X-Doorstep-Signature` value's hex part: HMAC-SHA256 of the exact body, keyed with the target's
/// secret. A receiver computes the same over the bytes it received and compares in constant time.
pub fn sign_webhook_body(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn step(id: i64, what: &str, level: Option<AlarmLevel>, minute: u32) -> Step {
        Step {
            id,
            what: what.into(),
            level,
            at: Utc.with_ymd_and_hms(2026, 11, 23, 10, minute, 0).unwrap(),
            detail: String::new(),
        }
    }

    fn target(
        id: i64,
        wants: (bool, bool),
        visit: Option<&str>,
        minute: u32,
    ) -> super::super::NotificationTarget {
        super::super::NotificationTarget {
            id,
            school: "school-1".parse().unwrap(),
            kind: TargetKind::Email,
            address: format!("target-{id}@example.org"),
            secret: None,
            name: String::new(),
            wants: super::super::WantedLevels {
                board: wants.0,
                authoriser: wants.1,
                further: false,
            },
            roles: Vec::new(),
            visit: visit.map(|v| v.parse().unwrap()),
            created_at: Utc.with_ymd_and_hms(2026, 11, 23, 10, minute, 0).unwrap(),
            removed_at: None,
        }
    }

    #[test]
    fn each_notifying_step_goes_once_to_each_target_that_wants_it_and_existed_when_it_happened() {
        let history = [
            step(1, "raised", Some(AlarmLevel::Board), 30),
            step(2, "nobody_to_tell", Some(AlarmLevel::Authoriser), 35),
            step(3, "reached_level", Some(AlarmLevel::Authoriser), 35),
        ];
        let targets = [
            target(1, (true, false), None, 0),
            target(2, (false, true), None, 0),
            target(3, (false, false), Some("visit-ava"), 0),
            // Added after the alarm was raised: hears only of what came after.
            target(4, (true, true), None, 32),
        ];
        // The board's target was told of the raise already.
        let made = std::collections::HashSet::from([(1, 1)]);
        let plan: Vec<(i64, i64, String)> = plan_alarm_deliveries(&history, &targets, &made)
            .into_iter()
            .map(|p| (p.step.id, p.target.id, p.audience_text))
            .collect();
        let expected = [
            (1, 3, "contact"),
            (3, 2, "authoriser"),
            (3, 3, "contact"),
            (3, 4, "authoriser"),
        ]
        .map(|(step, target, levels)| (step, target, levels.to_owned()));
        assert_eq!(plan, expected);
    }

    #[test]
    fn which_steps_notify_whom() {
        use AlarmLevel::{Authoriser, Board, Further};
        let aud = |board, authoriser, further| Audience {
            board,
            authoriser,
            further,
        };
        // (history, expected (step id, audience))
        type Case = (Vec<Step>, Vec<(i64, Audience)>);
        let table: Vec<Case> = vec![
            (
                vec![step(1, "raised", Some(Board), 25)],
                vec![(1, aud(true, false, false))],
            ),
            (
                vec![
                    step(1, "raised", Some(Board), 25),
                    step(2, "reached_level", Some(Authoriser), 30),
                    step(3, "nobody_to_tell", Some(Authoriser), 30),
                    step(4, "reached_level", Some(Further), 40),
                    step(5, "reminded", Some(Further), 50),
                    step(6, "acknowledged", None, 51),
                ],
                vec![
                    (1, aud(true, false, false)),
                    (2, aud(false, true, false)),
                    (4, aud(false, false, true)),
                    (5, aud(false, true, true)),
                ],
            ),
            // Duress: raised at the authoriser's level is one message to both levels.
            (
                vec![
                    step(1, "raised", Some(Authoriser), 18),
                    step(2, "reached_level", Some(Further), 28),
                ],
                vec![(1, aud(true, true, false)), (2, aud(false, false, true))],
            ),
            (
                vec![
                    step(1, "raised", Some(Board), 25),
                    step(2, "contact_resumed", None, 26),
                ],
                vec![(1, aud(true, false, false))],
            ),
        ];
        for (history, expected) in table {
            let got: Vec<_> = notifying_steps(&history)
                .into_iter()
                .map(|(s, a)| (s.id, a))
                .collect();
            assert_eq!(got, expected, "{history:?}");
        }
        assert_eq!(
            aud(true, true, false).for_target(super::super::WantedLevels::AUTHORISER),
            Some("authoriser".to_owned())
        );
        assert_eq!(
            aud(true, false, false).for_target(super::super::WantedLevels::FURTHER),
            None
        );
    }

    #[test]
    fn a_header_with_non_ascii_is_encoded_in_short_words_and_cannot_carry_a_line_break() {
        let subject = "Doorstep ALARM: overdue on visit visit-ava — no check_in since it was due at 10:25:00 UTC\r\nBcc: x@y";
        let encoded = encode_header_text(subject);
        for line in encoded.split("\r\n") {
            assert!(line.len() <= 76, "{line:?}");
            let word = line.trim_start();
            assert!(word.starts_with("=?UTF-8?B?") && word.ends_with("?="));
        }
        let decoded: Vec<u8> = encoded
            .split("\r\n ")
            .flat_map(|w| {
                base64::engine::general_purpose::STANDARD
                    .decode(&w["=?UTF-8?B?".len()..w.len() - 2])
                    .unwrap()
            })
            .collect();
        let decoded = String::from_utf8(decoded).unwrap();
        assert!(decoded.starts_with("Doorstep ALARM: overdue on visit visit-ava — no check_in"));
        assert!(!decoded.contains('\n') && !decoded.contains('\r'));
        assert_eq!(encode_header_text("plain ascii"), "plain ascii");
    }

    #[test]
    fn the_signature_is_the_rfc_4231_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign_webhook_body("Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
