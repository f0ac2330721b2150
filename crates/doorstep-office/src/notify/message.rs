//! What a notification says and to whom: which alarm steps notify which levels, the email message (subject,
//! headers, plain-text body) and the webhook's JSON body with its signature. Pure functions of the stored
//! alarm, visit and school.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use doorstep_core::domain::{School, Visit};
use doorstep_core::schedule::AlarmLevel;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use uuid::Uuid;

use crate::alarms::{Alarm, AlarmKind};

/// Who a step of an alarm's history is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Audience {
    pub board: bool,
    pub authoriser: bool,
}

impl Audience {
    pub fn includes(self, wants: super::WantedLevels) -> bool {
        (self.board && wants.board) || (self.authoriser && wants.authoriser)
    }

    pub fn level(self) -> AlarmLevel {
        if self.authoriser {
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
    pub at: DateTime<Utc>,
    pub detail: String,
}

/// The steps of one alarm's history that notify someone, each with its audience. "raised" tells the board;
/// an alarm raised straight at the authoriser logs "authoriser_told" at the very moment it is raised, and
/// that is folded into the raise (one message, to both audiences) rather than sent twice. Later
/// "authoriser_told" and "authoriser_reminded" tell the authoriser.
pub(crate) fn notifying_steps(history: &[Step]) -> Vec<(&Step, Audience)> {
    let raised_at = history.iter().find(|s| s.what == "raised").map(|s| s.at);
    let straight_to_authoriser = history
        .iter()
        .any(|s| s.what == "authoriser_told" && Some(s.at) == raised_at);
    history
        .iter()
        .filter_map(|step| {
            let audience = match step.what.as_str() {
                "raised" => Audience {
                    board: true,
                    authoriser: straight_to_authoriser,
                },
                "authoriser_told" if Some(step.at) == raised_at => return None,
                "authoriser_told" | "authoriser_reminded" => Audience {
                    board: false,
                    authoriser: true,
                },
                _ => return None,
            };
            Some((step, audience))
        })
        .collect()
}

/// Everything a notification is made from.
#[derive(Debug, Clone)]
pub(crate) struct Notice {
    pub alarm: Alarm,
    /// What the alarm is about, as its "raised" step says it.
    pub alarm_detail: String,
    pub step: Step,
    pub audience: Audience,
    pub visit: Visit,
    pub school: School,
}

fn kind_name(kind: AlarmKind) -> &'static str {
    match kind {
        AlarmKind::Overdue => "overdue",
        AlarmKind::Duress => "duress",
    }
}

fn level_name(level: AlarmLevel) -> &'static str {
    match level {
        AlarmLevel::Board => "board",
        AlarmLevel::Authoriser => "authoriser",
    }
}

/// The subject: the alarm, the visit id and what happened, never the pupil's name.
pub(crate) fn email_subject(notice: &Notice) -> String {
    format!(
        "Doorstep ALARM: {} on visit {} — {}",
        kind_name(notice.alarm.kind),
        notice.visit.id,
        notice.alarm_detail
    )
}

/// The plain-text body: what happened, where, and who to ring. No pupil name: mail servers that are not the
/// school's store it and pass it on.
pub(crate) fn email_body(notice: &Notice, delivery: &Uuid) -> String {
    let step = &notice.step;
    let now_text = if step.what == "raised" {
        if notice.audience.authoriser {
            "raised on the office board, and the authoriser is told".to_owned()
        } else {
            "raised on the office board".to_owned()
        }
    } else {
        step.detail.clone()
    };
    let mut body = format!(
        "Doorstep ALARM: {kind} on visit {visit}\n\
         \n\
         What: {detail}\n\
         Now: {now_text} ({at})\n\
         Level: {level}\n\
         \n\
         Where: {address}\n\
         Visit: {visit}, {purpose}, agreed for {agreed}\n\
         \n\
         Staff on the visit:\n",
        kind = kind_name(notice.alarm.kind),
        visit = notice.visit.id,
        detail = notice.alarm_detail,
        at = step.at.format("%H:%M:%S UTC"),
        level = level_name(notice.audience.level()),
        address = notice.visit.address.one_line(),
        purpose = notice.visit.purpose.label(),
        agreed = notice.visit.agreed_time.format("%Y-%m-%d %H:%M UTC"),
    );
    for member in &notice.visit.staff {
        body.push_str(&format!("  {}: {}\n", member.name, member.phone));
    }
    body.push_str(&format!(
        "\nSchool: {}, office {}\n\
         \n\
         Acknowledge the alarm at the office once someone has taken charge of it. If the staff cannot be\n\
         reached, the authoriser decides whether to call the police.\n\
         \n\
         Doorstep office: alarm {}, notification {}\n",
        notice.school.name, notice.school.office_phone, notice.alarm.id, delivery
    ));
    body
}

/// The whole message as handed to the SMTP server: headers, a blank line, the body, CRLF throughout.
pub(crate) fn email_message(
    notice: &Notice,
    from: &str,
    to: &str,
    delivery: &Uuid,
    now: DateTime<Utc>,
) -> String {
    let body = crlf(&email_body(notice, delivery));
    let domain = from
        .rsplit_once('@')
        .map(|(_, domain)| domain)
        .unwrap_or("doorstep.invalid");
    let headers = [
        format!("From: Doorstep office <{from}>"),
        format!("To: <{to}>"),
        format!("Subject: {}", encode_header_text(&email_subject(notice))),
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
    alarm: WebhookAlarm<'a>,
    step: WebhookStep<'a>,
    visit_id: &'a str,
    school: &'a School,
    address: String,
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
    at: DateTime<Utc>,
    detail: &'a str,
}

#[derive(Serialize)]
struct StaffContact<'a> {
    name: &'a str,
    phone: &'a str,
}

/// The webhook's JSON body. Like the email, it names no pupil.
pub(crate) fn webhook_body(
    notice: &Notice,
    now: DateTime<Utc>,
) -> Result<String, serde_json::Error> {
    serde_json::to_string(&WebhookBody {
        alarm: WebhookAlarm {
            id: notice.alarm.id,
            kind: kind_name(notice.alarm.kind),
            level: level_name(notice.audience.level()),
            about: &notice.alarm.about,
            detail: &notice.alarm_detail,
            due_at: notice.alarm.due_at,
            raised_at: notice.alarm.raised_at,
        },
        step: WebhookStep {
            id: notice.step.id,
            what: &notice.step.what,
            at: notice.step.at,
            detail: &notice.step.detail,
        },
        visit_id: notice.visit.id.as_str(),
        school: &notice.school,
        address: notice.visit.address.one_line(),
        staff: notice
            .visit
            .staff
            .iter()
            .map(|s| StaffContact {
                name: &s.name,
                phone: &s.phone,
            })
            .collect(),
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

    fn step(id: i64, what: &str, minute: u32) -> Step {
        Step {
            id,
            what: what.into(),
            at: Utc.with_ymd_and_hms(2026, 11, 23, 10, minute, 0).unwrap(),
            detail: String::new(),
        }
    }

    #[test]
    fn which_steps_notify_whom() {
        let board = Audience {
            board: true,
            authoriser: false,
        };
        let authoriser = Audience {
            board: false,
            authoriser: true,
        };
        let both = Audience {
            board: true,
            authoriser: true,
        };
        // (history, expected (step id, audience))
        type Case = (Vec<Step>, Vec<(i64, Audience)>);
        let table: Vec<Case> = vec![
            (vec![step(1, "raised", 25)], vec![(1, board)]),
            (
                vec![
                    step(1, "raised", 25),
                    step(2, "authoriser_told", 30),
                    step(3, "authoriser_reminded", 35),
                    step(4, "acknowledged", 36),
                ],
                vec![(1, board), (2, authoriser), (3, authoriser)],
            ),
            // Duress: raised straight at the authoriser is one message to both.
            (
                vec![
                    step(1, "raised", 18),
                    step(2, "authoriser_told", 18),
                    step(3, "authoriser_reminded", 23),
                ],
                vec![(1, both), (3, authoriser)],
            ),
            (
                vec![step(1, "raised", 25), step(2, "contact_resumed", 26)],
                vec![(1, board)],
            ),
        ];
        for (history, expected) in table {
            let got: Vec<_> = notifying_steps(&history)
                .into_iter()
                .map(|(s, a)| (s.id, a))
                .collect();
            assert_eq!(got, expected, "{history:?}");
        }
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
