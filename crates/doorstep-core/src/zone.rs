//! The school's time zone: an IANA name parsed once, and every time a person reads said in it.
//!
//! The office may run anywhere (a trust's server, a cloud machine on UTC) and a phone may be set to any
//! zone; neither decides what "13:45" means to the school. Times are stored and sent as UTC instants; they
//! become wall-clock words only through a [`SchoolTimeZone`].

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// A school's time zone, by its IANA name ("Europe/London", "Pacific/Auckland"). Schools made before
/// time zones were kept are in England: the default is Europe/London.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(try_from = "String", into = "String")]
pub struct SchoolTimeZone(#[cfg_attr(feature = "schema", schemars(with = "String"))] Tz);

/// A time zone name that is not in the IANA database.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a time zone name (use an IANA name such as Europe/London)")]
pub struct TimeZoneError(String);

impl SchoolTimeZone {
    /// England's zone, the default.
    pub const LONDON: SchoolTimeZone = SchoolTimeZone(Tz::Europe__London);

    /// Parses an IANA name, exactly as the database spells it (surrounding spaces ignored).
    pub fn parse(name: &str) -> Result<Self, TimeZoneError> {
        name.trim()
            .parse::<Tz>()
            .map(Self)
            .map_err(|_| TimeZoneError(name.to_owned()))
    }

    /// The IANA name.
    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    /// An instant as the school's wall clock shows it.
    pub fn local(&self, at: DateTime<Utc>) -> DateTime<Tz> {
        at.with_timezone(&self.0)
    }

    /// An instant formatted on the school's wall clock (`chrono`'s format; `%Z` is the zone's
    /// abbreviation, "BST", "NZDT").
    pub fn format(&self, at: DateTime<Utc>, pattern: &str) -> String {
        self.local(at).format(pattern).to_string()
    }

    /// "13:45" on the school's clock.
    pub fn hm(&self, at: DateTime<Utc>) -> String {
        self.format(at, "%H:%M")
    }

    /// "13:45:07" on the school's clock.
    pub fn hms(&self, at: DateTime<Utc>) -> String {
        self.format(at, "%H:%M:%S")
    }

    /// The school's date at an instant.
    pub fn date(&self, at: DateTime<Utc>) -> NaiveDate {
        self.local(at).date_naive()
    }

    /// The instant a wall-clock time names at the school, or `None` when the clock skips it (the hour
    /// lost in spring) or shows it twice (the hour repeated in autumn): a person must then say which.
    pub fn instant(&self, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
        match self.0.from_local_datetime(&wall) {
            LocalResult::Single(at) => Some(at.with_timezone(&Utc)),
            LocalResult::Ambiguous(..) | LocalResult::None => None,
        }
    }

    /// When a school day begins (its first instant, even on a day whose midnight the clock skips).
    pub fn start_of(&self, day: NaiveDate) -> DateTime<Utc> {
        let mut wall = day.and_time(NaiveTime::MIN);
        // A zone that moves its clocks at midnight skips at most a few hours of it; the first wall-clock
        // minute that exists is the day's start.
        for _ in 0..(24 * 60) {
            if let Some(at) = self.0.from_local_datetime(&wall).earliest() {
                return at.with_timezone(&Utc);
            }
            wall += chrono::TimeDelta::minutes(1);
        }
        // No zone skips a whole day at its start (Samoa's lost 30 December 2011 began at its midnight
        // the day after); fall back to the day as UTC rather than fail.
        day.and_time(NaiveTime::MIN).and_utc()
    }

    /// The zone's offset from UTC at an instant, as "UTC+13:00".
    pub fn offset(&self, at: DateTime<Utc>) -> String {
        format!("UTC{}", self.local(at).format("%:z"))
    }

    /// How pages name the zone in their footers: "Pacific/Auckland, UTC+13:00".
    pub fn describe(&self, at: DateTime<Utc>) -> String {
        format!("{}, {}", self.name(), self.offset(at))
    }
}

impl Default for SchoolTimeZone {
    fn default() -> Self {
        Self::LONDON
    }
}

crate::parsed_text!(SchoolTimeZone, TimeZoneError, |zone| zone.name());

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .map(|at| at.with_timezone(&Utc))
            .unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn names_are_parsed_once_and_unknown_ones_refused() {
        assert_eq!(
            SchoolTimeZone::parse("Pacific/Auckland").map(|z| z.name()),
            Ok("Pacific/Auckland")
        );
        assert_eq!(
            SchoolTimeZone::parse(" Europe/London "),
            Ok(SchoolTimeZone::LONDON)
        );
        for bad in ["", "London", "Europe/Londn", "UTC+1", "europe/london"] {
            assert!(SchoolTimeZone::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn serde_refuses_an_unknown_zone_and_writes_the_name() {
        let zone: SchoolTimeZone = serde_json::from_str("\"Pacific/Auckland\"").unwrap();
        assert_eq!(
            serde_json::to_string(&zone).unwrap(),
            "\"Pacific/Auckland\""
        );
        assert!(serde_json::from_str::<SchoolTimeZone>("\"Mars/Olympus\"").is_err());
    }

    #[test]
    fn the_same_instant_reads_as_each_schools_wall_clock() {
        let at = utc("2026-01-15T00:45:00Z");
        assert_eq!(SchoolTimeZone::LONDON.hm(at), "00:45");
        let auckland = SchoolTimeZone::parse("Pacific/Auckland").unwrap();
        assert_eq!(auckland.hm(at), "13:45");
        assert_eq!(auckland.format(at, "%H:%M %Z"), "13:45 NZDT");
        assert_eq!(auckland.offset(at), "UTC+13:00");
        let summer = utc("2026-07-15T12:00:00Z");
        assert_eq!(
            SchoolTimeZone::LONDON.format(summer, "%H:%M %Z"),
            "13:00 BST"
        );
    }

    #[test]
    fn a_wall_clock_time_the_clock_skips_or_repeats_names_no_instant() {
        let wall = |text: &str| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap();
        let london = SchoolTimeZone::LONDON;
        assert_eq!(
            london.instant(wall("2026-03-29 01:30")),
            None,
            "the hour lost in spring"
        );
        assert_eq!(
            london.instant(wall("2026-10-25 01:30")),
            None,
            "the hour repeated in autumn"
        );
        assert_eq!(
            london.instant(wall("2026-07-01 09:00")),
            Some(utc("2026-07-01T08:00:00Z"))
        );
        let auckland = SchoolTimeZone::parse("Pacific/Auckland").unwrap();
        assert_eq!(
            auckland.start_of(NaiveDate::from_ymd_opt(2026, 1, 15).unwrap()),
            utc("2026-01-14T11:00:00Z")
        );
    }
}
