//! Identifiers: validated newtypes so a visit id can never be passed where a staff id belongs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::newtype::schema_of;

/// A name-like identifier made by the office (school, staff, pupil, visit, device): 1-64 characters of
/// `[A-Za-z0-9_-]`, so it is safe in URLs, logs and file names.
macro_rules! office_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        // The schema states the parse rule ([`OFFICE_ID_PATTERN`]), so a client reading the OpenAPI
        // document knows what the office refuses.
        schema_of!($name, {
            "type": "string",
            "minLength": 1,
            "maxLength": OFFICE_ID_MAX_LEN,
            "pattern": OFFICE_ID_PATTERN,
            "description": "1-64 letters, digits, '-' or '_'",
        });

        impl $name {
            /// Parses an id, refusing empty, over-long or unsafe text.
            pub fn parse(text: &str) -> Result<Self, IdError> {
                check_office_id(text).map(|()| Self(text.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        $crate::parsed_text!($name, IdError, |id| &id.0);
    };
}

office_id!(
    /// A school (one office server may later serve a trust of several).
    SchoolId
);
office_id!(
    /// A member of staff.
    StaffId
);
office_id!(
    /// A pupil.
    PupilId
);
office_id!(
    /// A home visit.
    VisitId
);
office_id!(
    /// A phone enrolled with the office.
    DeviceId
);

/// The longest office id, in characters (all ASCII, so bytes too).
pub const OFFICE_ID_MAX_LEN: usize = 64;

/// An office id's rule as a regular expression (ECMA-262, as JSON Schema uses): what
/// [`VisitId::parse`] and its siblings accept, no more, no less.
pub const OFFICE_ID_PATTERN: &str = "^[A-Za-z0-9_-]{1,64}$";

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("an id cannot be empty")]
    Empty,
    #[error("an id is at most 64 characters")]
    TooLong,
    #[error("an id may contain only letters, digits, '-' and '_'")]
    BadCharacter,
}

fn check_office_id(text: &str) -> Result<(), IdError> {
    if text.is_empty() {
        return Err(IdError::Empty);
    }
    if text.len() > OFFICE_ID_MAX_LEN {
        return Err(IdError::TooLong);
    }
    if !text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(IdError::BadCharacter);
    }
    Ok(())
}

/// An event's identity, made on the device that recorded it (UUIDv7, so ids sort roughly by time).
/// The office stores each id exactly once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(transparent)]
pub struct EventId(Uuid);

impl EventId {
    /// A fresh UUIDv7 from the device's clock.
    pub fn new_v7() -> Self {
        Self(Uuid::now_v7())
    }

    pub fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for EventId {
    type Err = uuid::Error;
    fn from_str(text: &str) -> Result<Self, uuid::Error> {
        Uuid::parse_str(text).map(Self)
    }
}

/// A device's own increasing sequence number for the events it records, starting at 1.
/// Lets the office say how far it has acknowledged and spot gaps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct DeviceSeq(u64);

// The schema states the range the office accepts.
schema_of!(DeviceSeq, {
    "type": "integer",
    "minimum": 1,
    "maximum": DeviceSeq::MAX,
});

impl DeviceSeq {
    /// The largest sequence number accepted: SQLite stores integers as i64.
    pub const MAX: u64 = i64::MAX as u64;

    pub fn new(value: u64) -> Result<Self, SeqError> {
        if value == 0 || value > Self::MAX {
            Err(SeqError(value))
        } else {
            Ok(Self(value))
        }
    }

    pub fn get(self) -> u64 {
        self.0
    }

    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

/// A sequence number outside 1..=i64::MAX.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("device sequence numbers run from 1 to {max}; got {0}", max = DeviceSeq::MAX)]
pub struct SeqError(pub u64);

crate::checked_number!(DeviceSeq, u64, SeqError);

impl fmt::Display for DeviceSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn office_ids_refuse_unsafe_text() {
        assert!(VisitId::parse(&"x".repeat(OFFICE_ID_MAX_LEN)).is_ok());
        assert!(VisitId::parse("visit-1_a").is_ok());
        assert_eq!(VisitId::parse(""), Err(IdError::Empty));
        assert_eq!(VisitId::parse("a/b"), Err(IdError::BadCharacter));
        assert_eq!(VisitId::parse(&"x".repeat(65)), Err(IdError::TooLong));
        let parsed: Result<StaffId, _> = serde_json::from_str("\"../etc\"");
        assert!(parsed.is_err());
    }

    #[test]
    fn sequence_numbers_start_at_one_and_fit_sqlite() {
        assert!(DeviceSeq::new(0).is_err());
        assert!(DeviceSeq::new(1).is_ok());
        assert!(DeviceSeq::new(DeviceSeq::MAX + 1).is_err());
        assert!(serde_json::from_str::<DeviceSeq>("0").is_err());
    }
}
