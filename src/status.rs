//! The status line: one sentence about the outbox that never claims more than the phone knows.
//!
//! "Office confirmed" always means the last exchange the office answered; "waiting" counts events the office
//! has not confirmed, whether or not they were sent.

use chrono::{DateTime, FixedOffset, TimeDelta, Utc};
use doorstep_core::event_log::OutboxStatus;

/// The status line for `status` at `now`, with times in the phone's local `offset`.
pub fn status_line(status: &OutboxStatus, now: DateTime<Utc>, offset: FixedOffset) -> String {
    let waiting = status.waiting;
    let mut line = match (status.failing_since, status.last_success_at) {
        (Some(since), _) => {
            let queue = if waiting == 0 {
                "nothing waiting".to_owned()
            } else {
                format!("{waiting} waiting")
            };
            // The office answered, but not with a yes: say so, and how to get it fixed, not "no signal".
            let what = if status.office_refused {
                "The office is refusing this phone (ask the office to check its enrolment)"
            } else {
                "Can't reach the office"
            };
            format!("{what} since {} · {queue}", when(since, now, offset))
        }
        (None, None) if waiting == 0 => "Not yet in touch with the office".to_owned(),
        (None, None) => format!("Not yet in touch with the office · {waiting} waiting"),
        (None, Some(last)) if waiting == 0 => {
            format!(
                "All confirmed · office confirmed {}",
                when(last, now, offset)
            )
        }
        (None, Some(last)) => format!(
            "{waiting} waiting to send · office confirmed {}",
            when(last, now, offset)
        ),
    };
    if status.refused > 0 {
        line.push_str(&format!(" · {} refused by the office", status.refused));
    }
    // Said for a day after reconciliation found it: the phone moved its numbering past the office's.
    if let Some(restored) = status
        .restored
        .filter(|restored| now - restored.found_at < TimeDelta::days(1))
    {
        let earlier = restored.only_at_office;
        line.push_str(&format!(
            " · This phone was restored from a backup: the office has {earlier} earlier record{} from it \
             that this phone does not",
            if earlier == 1 { "" } else { "s" }
        ));
    }
    line
}

/// A time as people read it: "14:02" today, "3 Dec 14:02" on another day.
pub fn when(at: DateTime<Utc>, now: DateTime<Utc>, offset: FixedOffset) -> String {
    let local = at.with_timezone(&offset);
    if local.date_naive() == now.with_timezone(&offset).date_naive() {
        local.format("%H:%M").to_string()
    } else {
        local.format("%-d %b %H:%M").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn the_status_line_says_exactly_what_is_known() {
        let now = at("2026-11-23T14:30:00Z");
        let utc = FixedOffset::east_opt(0).unwrap();
        let bst = FixedOffset::east_opt(3600).unwrap();
        let status =
            |waiting, refused, success: Option<&str>, failing: Option<&str>| OutboxStatus {
                waiting,
                refused,
                last_success_at: success.map(at),
                failing_since: failing.map(at),
                last_error: failing.map(|_| "could not connect to the office".to_owned()),
                office_refused: false,
                restored: None,
            };
        let refusing = OutboxStatus {
            office_refused: true,
            last_error: Some("the office refused (401 unauthorised): unknown device token".into()),
            ..status(
                2,
                0,
                Some("2026-11-23T13:00:00Z"),
                Some("2026-11-23T13:40:00Z"),
            )
        };
        let cases = [
            (
                status(0, 0, None, None),
                utc,
                "Not yet in touch with the office",
            ),
            (
                status(2, 0, None, None),
                utc,
                "Not yet in touch with the office · 2 waiting",
            ),
            (
                status(3, 0, Some("2026-11-23T14:02:00Z"), None),
                utc,
                "3 waiting to send · office confirmed 14:02",
            ),
            (
                status(0, 0, Some("2026-11-23T14:02:00Z"), None),
                utc,
                "All confirmed · office confirmed 14:02",
            ),
            (
                status(0, 0, Some("2026-11-23T14:02:00Z"), None),
                bst,
                "All confirmed · office confirmed 15:02",
            ),
            (
                status(
                    3,
                    0,
                    Some("2026-11-23T13:00:00Z"),
                    Some("2026-11-23T13:40:00Z"),
                ),
                utc,
                "Can't reach the office since 13:40 · 3 waiting",
            ),
            (
                status(0, 0, None, Some("2026-11-23T13:40:00Z")),
                utc,
                "Can't reach the office since 13:40 · nothing waiting",
            ),
            (
                status(0, 1, Some("2026-11-23T14:02:00Z"), None),
                utc,
                "All confirmed · office confirmed 14:02 · 1 refused by the office",
            ),
            (
                status(1, 2, Some("2026-11-22T09:05:00Z"), None),
                utc,
                "1 waiting to send · office confirmed 22 Nov 09:05 · 2 refused by the office",
            ),
        ];
        let restored = |found: &str| OutboxStatus {
            restored: Some(doorstep_core::event_log::RestoredNote {
                found_at: at(found),
                office_seq: 52,
                only_at_office: 12,
            }),
            ..status(0, 0, Some("2026-11-23T14:02:00Z"), None)
        };
        let cases = cases.into_iter().chain([
            (
                refusing,
                utc,
                "The office is refusing this phone (ask the office to check its enrolment) since 13:40 · 2 waiting",
            ),
            (
                restored("2026-11-23T14:01:00Z"),
                utc,
                "All confirmed · office confirmed 14:02 · This phone was restored from a backup: the office \
                 has 12 earlier records from it that this phone does not",
            ),
            (
                restored("2026-11-22T14:00:00Z"),
                utc,
                "All confirmed · office confirmed 14:02",
            ),
        ]);
        for (status, offset, expected) in cases {
            assert_eq!(status_line(&status, now, offset), expected, "{status:?}");
        }
    }

    #[test]
    fn the_day_is_the_local_day() {
        let utc = FixedOffset::east_opt(0).unwrap();
        let bst = FixedOffset::east_opt(3600).unwrap();
        // 23:30 UTC is already tomorrow in BST.
        let now = at("2026-06-01T23:30:00Z");
        assert_eq!(when(at("2026-06-01T23:10:00Z"), now, utc), "23:10");
        assert_eq!(when(at("2026-06-01T22:50:00Z"), now, bst), "1 Jun 23:50");
        assert_eq!(when(at("2026-06-01T23:10:00Z"), now, bst), "00:10");
    }
}
