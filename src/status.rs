//! The status line: one sentence about the outbox that never claims more than the phone knows.
//!
//! "Office confirmed" always means the last exchange the office answered; "waiting" counts events the office
//! has not confirmed, whether or not they were sent. Times are the office's: when this phone's clock is
//! further out than the office allows, the line says so. An office that refuses this phone says why when
//! the phone can act on it (its credential expired), and a phone out of touch for the policy's number of
//! days says it deleted its briefings ([`out_of_touch`], [`out_of_touch_note`]).

use chrono::{DateTime, FixedOffset, TimeDelta, Utc};
use doorstep_core::event_log::OutboxStatus;
use doorstep_core::protocol::refusal;

use crate::office_clock::OfficeClock;

/// The status line for `status` at the office's time `now`, with times in the phone's local `offset`.
pub fn status_line(status: &OutboxStatus, now: DateTime<Utc>, offset: FixedOffset) -> String {
    let clock = OfficeClock::new(status.phone_clock_ahead);
    // The outbox keeps this phone's own clock readings.
    let when = |at: DateTime<Utc>, now, offset| when(clock.to_office(at), now, offset);
    let waiting = status.waiting;
    let mut line = match (status.failing_since, status.last_success_at) {
        (Some(since), _) => {
            let queue = if waiting == 0 {
                "nothing waiting".to_owned()
            } else {
                format!("{waiting} waiting")
            };
            // The office answered, but not with a yes: say so, and how to get it fixed, not "no signal". The
            // sync transport writes the refusal's code into the error as "(401 credential_expired)".
            let expired = status
                .last_error
                .as_deref()
                .is_some_and(|error| error.contains(&format!(" {})", refusal::CREDENTIAL_EXPIRED)));
            let what = if status.office_refused && expired {
                "This phone's sign-in to the office has expired (ask an admin for a new enrolment code)"
            } else if status.office_refused {
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
    if let Some(note) = clock.note() {
        line.push_str(&format!(" · {note}"));
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

/// Whether a phone whose last exchange with the office was at `last_success` (by its own clock) has been
/// out of touch for `days` days at `now`, so it deletes its briefings.
pub fn out_of_touch(last_success: DateTime<Utc>, now: DateTime<Utc>, days: u16) -> bool {
    now - last_success >= TimeDelta::days(i64::from(days))
}

/// What Today says while the phone is out of touch that long.
pub fn out_of_touch_note(status: &OutboxStatus, now: DateTime<Utc>, days: u16) -> Option<String> {
    let last = status.last_success_at?;
    out_of_touch(last, now, days).then(|| {
        format!(
            "Briefings and addresses were deleted from this phone: it has not reached the office for {days} \
             days or more. They come back at the next sync."
        )
    })
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
                phone_clock_ahead: None,
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
        let expired = OutboxStatus {
            last_error: Some(
                "the office refused (401 credential_expired): this phone's credential has expired"
                    .into(),
            ),
            ..refusing.clone()
        };
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
                expired,
                utc,
                "This phone's sign-in to the office has expired (ask an admin for a new enrolment code) since 13:40 · 2 waiting",
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
    fn a_phone_clock_out_by_minutes_is_named_and_its_times_are_shown_as_the_offices() {
        let utc = FixedOffset::east_opt(0).unwrap();
        // The phone read 14:09 when the office's answer of 14:02 arrived: seven minutes fast.
        let status = |ahead_minutes: i64| OutboxStatus {
            last_success_at: Some(at("2026-11-23T14:09:00Z")),
            phone_clock_ahead: Some(chrono::TimeDelta::minutes(ahead_minutes)),
            ..OutboxStatus::default()
        };
        assert_eq!(
            status_line(&status(7), at("2026-11-23T14:30:00Z"), utc),
            "All confirmed · office confirmed 14:02 · This phone's clock is 7 minutes fast; times shown are the office's"
        );
        assert_eq!(
            status_line(&status(1), at("2026-11-23T14:30:00Z"), utc),
            "All confirmed · office confirmed 14:09",
            "within the allowed skew the office takes the phone's times as they are"
        );
    }

    #[test]
    fn a_phone_out_of_touch_for_the_policys_days_says_it_deleted_its_briefings() {
        let last = at("2026-11-16T14:00:00Z");
        let status = OutboxStatus {
            last_success_at: Some(last),
            ..OutboxStatus::default()
        };
        let cases = [
            ("2026-11-23T13:59:00Z", 7, false),
            ("2026-11-23T14:00:00Z", 7, true),
            ("2026-11-23T14:00:00Z", 8, false),
            ("2026-11-17T14:00:00Z", 1, true),
        ];
        for (now, days, deleted) in cases {
            assert_eq!(out_of_touch(last, at(now), days), deleted, "{now} {days}");
            assert_eq!(
                out_of_touch_note(&status, at(now), days).is_some(),
                deleted,
                "{now} {days}"
            );
        }
        assert!(out_of_touch_note(&status, at("2026-11-30T00:00:00Z"), 7)
            .unwrap()
            .contains("for 7 days"));
        assert_eq!(
            out_of_touch_note(&OutboxStatus::default(), at("2026-11-30T00:00:00Z"), 7),
            None,
            "a phone never in touch holds nothing to delete"
        );
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
