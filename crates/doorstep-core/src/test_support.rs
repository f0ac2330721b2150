//! Builders for tests, shared by the core's, the office's and the phone app's: ids from text, times on one
//! fixed school day, and an event envelope. Compiled only with the `test-support` feature, which only
//! dev-dependencies turn on, so no build that ships has it. A builder panics on a bad value: in a test, a
//! typo should stop the test at once.

use std::fmt::Debug;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};

use crate::contact::{PhoneNumber, Postcode};
use crate::event::EventEnvelope;
use crate::ids::{DeviceId, DeviceSeq, EventId, StaffId, VisitId};
use crate::lifecycle::VisitEvent;

/// Anything parsed from text (an id, mostly) that the test knows is valid.
pub fn id<T>(text: &str) -> T
where
    T: FromStr,
    T::Err: Debug,
{
    text.parse()
        .unwrap_or_else(|error| panic!("{text:?} does not parse: {error:?}"))
}

/// A phone number that follows the rule.
pub fn phone(text: &str) -> PhoneNumber {
    id(text)
}

/// A postcode that has the shape.
pub fn postcode(text: &str) -> Postcode {
    id(text)
}

pub fn staff(text: &str) -> StaffId {
    id(text)
}

pub fn visit(text: &str) -> VisitId {
    id(text)
}

pub fn device(text: &str) -> DeviceId {
    id(text)
}

/// A device sequence number (from 1).
pub fn seq(n: u64) -> DeviceSeq {
    DeviceSeq::new(n).unwrap_or_else(|error| panic!("{n} is not a sequence number: {error}"))
}

/// The school day tests happen on: Monday 23 November 2026, a term-time weekday.
pub fn school_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 23).unwrap_or_else(|| unreachable!("a real date"))
}

/// `hour:minute` on [`school_day`], in UTC (which is also the UK's time in November).
pub fn at(hour: u32, minute: u32) -> DateTime<Utc> {
    school_day()
        .and_hms_opt(hour, minute, 0)
        .unwrap_or_else(|| panic!("{hour}:{minute} is not a time of day"))
        .and_utc()
}

/// The moment most tests count from: ten in the morning on [`school_day`].
pub fn t0() -> DateTime<Utc> {
    at(10, 0)
}

/// [`t0`] plus some minutes (or minus, for a negative number).
pub fn at_min(minutes: i64) -> DateTime<Utc> {
    t0() + TimeDelta::minutes(minutes)
}

/// An event as device `device` recorded it: its `seq`-th, about `visit`, at `recorded_at` by the device's
/// clock, with a fresh UUIDv7.
pub fn envelope(
    device_id: &str,
    seq_no: u64,
    visit_id: &str,
    recorded_at: DateTime<Utc>,
    event: VisitEvent,
) -> EventEnvelope {
    EventEnvelope {
        id: EventId::new_v7(),
        device: device(device_id),
        seq: seq(seq_no),
        visit: visit(visit_id),
        recorded_at,
        event,
    }
}

/// Phone numbers by the one rule ([`crate::contact::PhoneNumber`]): the text, and the dialable number it
/// stands for or `None` when it is refused. The office's forms and the phone's dialler are both tested
/// against this table.
pub const PHONE_NUMBERS: &[(&str, Option<&str>)] = &[
    ("01632 960000", Some("01632960000")),
    ("+353 1 234 5678", Some("+35312345678")),
    ("0113 496 0000", Some("01134960000")),
    ("+44 113 496 0000", Some("+441134960000")),
    ("  07700900123 ", Some("07700900123")),
    ("+123456789012345", Some("+123456789012345")),
    ("", None),
    ("+", None),
    ("12", None),
    ("999", None),
    ("112", None),
    ("0770", None),
    ("0113 496 00", None),
    ("1234567890123456", None),
    ("++44 113 496 0000", None),
    ("+ 44 113 496 0000", None),
    ("0113  496 0000", None),
    ("0113-496-0000", None),
    ("(0113) 4960000", None),
    ("44+113 496 0000", None),
    ("0113 496 0000;ext=2", None),
    ("0113?body=hi", None),
    ("tel:01134960000", None),
    ("٠١١٣٤٩٦٠٠٠٠", None),
    ("0113 496\t0000", None),
];

/// Postcodes by the one rule ([`crate::contact::Postcode`]): the text, and the postcode it is kept as or
/// `None` when it is refused.
pub const POSTCODES: &[(&str, Option<&str>)] = &[
    ("ok1 2ab", Some("OK1 2AB")),
    ("SW1A1AA", Some("SW1A 1AA")),
    ("M1 1AE", Some("M1 1AE")),
    ("B33 8TH", Some("B33 8TH")),
    ("EC1A 1BB", Some("EC1A 1BB")),
    ("12345", None),
    ("OK1", None),
    ("OK1 2A1", None),
    ("ABC1 2AB", None),
    ("", None),
    ("ÖK1 2AB", None),
];
