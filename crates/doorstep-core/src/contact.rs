//! Phone numbers and postcodes, each with one rule that the office's forms and imports and the phone's
//! dialler all parse with: [`PhoneNumber::parse`] and [`Postcode::parse`].
//!
//! A phone number the office accepts is one the phone can dial: the rule is the dialler's, so a link can
//! never carry anything but digits and a leading `+` (no `?`, `#` or `;` that would let a stored value
//! smuggle extra parameters into a `tel:`/`sms:` link). Serde reads each as its text and refuses one that
//! breaks the rule.

use serde::{Deserialize, Serialize};

use crate::newtype::schema_of;

/// Why some text is not a phone number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneNumberError {
    #[error("a phone number may only contain digits, single spaces and a leading +")]
    BadCharacter,
    #[error("a phone number needs between 10 and 15 digits")]
    WrongLength,
}

/// A phone number as staff would type it: digits, single spaces between groups, an optional leading `+`.
/// Between 10 digits (a UK number with its leading 0) and 15 (the longest international number, E.164):
/// Doorstep keeps the numbers of people and offices, never a short code such as 999, which staff dial
/// themselves. (The office once allowed 10 to 15 digits with `-` and brackets, the phone 3 to 15 without:
/// this is what both allowed.)
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber {
    /// As typed, trimmed: what a screen shows.
    display: String,
    /// Digits only, with the `+` if there was one: what goes in a link.
    dialable: String,
}

impl PhoneNumber {
    /// Parses a number, refusing anything a dialler would have to guess about.
    pub fn parse(text: &str) -> Result<Self, PhoneNumberError> {
        let display = text.trim();
        let (plus, rest) = match display.strip_prefix('+') {
            Some(rest) => ("+", rest),
            None => ("", display),
        };
        if rest.starts_with(' ') || rest.contains("  ") {
            return Err(PhoneNumberError::BadCharacter);
        }
        if !rest.chars().all(|c| c.is_ascii_digit() || c == ' ') {
            return Err(PhoneNumberError::BadCharacter);
        }
        let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
        if !(10..=15).contains(&digits.len()) {
            return Err(PhoneNumberError::WrongLength);
        }
        Ok(Self {
            display: display.to_owned(),
            dialable: format!("{plus}{digits}"),
        })
    }

    /// A number read back from a record kept before numbers were checked where they are typed (a school's
    /// office number a phone received from an older office, say). One that follows the rule is parsed as
    /// ever; one that does not is still shown as it was kept, and its links carry its digits (and a leading
    /// `+`), because a stored number nobody can dial from the screen helps no one.
    pub fn from_stored(text: &str) -> Self {
        Self::parse(text).unwrap_or_else(|_| {
            let display = text.trim();
            let dialable = display
                .chars()
                .enumerate()
                .filter(|&(i, c)| c.is_ascii_digit() || (i == 0 && c == '+'))
                .map(|(_, c)| c)
                .collect();
            Self {
                display: display.to_owned(),
                dialable,
            }
        })
    }

    /// The number as typed, for showing on screen.
    pub fn as_str(&self) -> &str {
        &self.display
    }

    /// Digits and the optional leading `+`, without spaces.
    pub fn dialable(&self) -> &str {
        &self.dialable
    }

    /// The link that opens the dialler with this number filled in (RFC 3966); it does not place the call.
    pub fn tel_uri(&self) -> String {
        format!("tel:{}", self.dialable)
    }

    /// The link that opens the message composer to this number with `body` typed in (RFC 5724). The body
    /// is percent-encoded, so any text is safe in it.
    pub fn sms_uri(&self, body: &str) -> String {
        if body.is_empty() {
            format!("sms:{}", self.dialable)
        } else {
            format!("sms:{}?body={}", self.dialable, percent_encode(body))
        }
    }
}

crate::parsed_text!(PhoneNumber, PhoneNumberError, |number| &number.display);

schema_of!(PhoneNumber, {
    "type": "string",
    "description": "digits, single spaces and an optional leading +; 10 to 15 digits",
    "pattern": r"^\s*\+?[0-9]+( [0-9]+)*\s*$"
});

/// Serde readers for records the office kept and phones hold: each reads the text as
/// [`PhoneNumber::from_stored`] or [`Postcode::from_stored`] do, so a visit whose number or postcode was kept
/// before the rule existed still reaches the phone whole. What a person types is parsed strictly by the
/// types' own `Deserialize` and `parse`; these are only for the domain's stored fields
/// (`#[serde(deserialize_with = "crate::contact::stored::phone")]`).
pub mod stored {
    use serde::{Deserialize, Deserializer};

    use super::{PhoneNumber, Postcode};

    pub fn phone<'de, D: Deserializer<'de>>(reader: D) -> Result<PhoneNumber, D::Error> {
        String::deserialize(reader).map(|text| PhoneNumber::from_stored(&text))
    }

    pub fn postcode<'de, D: Deserializer<'de>>(reader: D) -> Result<Postcode, D::Error> {
        String::deserialize(reader).map(|text| Postcode::from_stored(&text))
    }
}

/// A number or postcode goes into SQLite as its text, and comes out as a stored one: a row written before
/// the rule existed is still read (see [`PhoneNumber::from_stored`]).
mod sql {
    use rusqlite::types::{FromSql, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

    use super::{PhoneNumber, Postcode};

    macro_rules! stored_as_text {
        ($($type:ident),*) => {$(
            impl ToSql for $type {
                fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                    Ok(ToSqlOutput::from(self.as_str()))
                }
            }

            impl FromSql for $type {
                fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                    value.as_str().map($type::from_stored)
                }
            }
        )*};
    }

    stored_as_text!(PhoneNumber, Postcode);
}

/// Percent-encodes every byte of `text`'s UTF-8 except RFC 3986's unreserved characters. Ten lines rather
/// than a crate: an `sms:` body is the only place it is needed.
pub fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Why some text is not a UK postcode; it says the text, so a form or an import row can show it as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("postcode “{0}” is not a UK postcode (like OK1 2AB)")]
pub struct PostcodeError(pub String);

/// A UK postcode by its shape, kept in capitals with one space before the last three characters. Only the
/// shape is checked (outward code `A9`, `A99`, `AA9`, `AA99`, `A9A` or `AA9A`; inward `9AA`); whether the
/// postcode exists is the MIS's business.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Postcode(String);

impl Postcode {
    /// Normalises a postcode as typed (any case, any spacing) or says why it is not one.
    pub fn parse(text: &str) -> Result<Self, PostcodeError> {
        let compact: String = text
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_uppercase();
        let bad = || PostcodeError(text.trim().to_owned());
        if !(5..=7).contains(&compact.len()) || !compact.is_ascii() {
            return Err(bad());
        }
        let (outward, inward) = compact.split_at(compact.len() - 3);
        let inward_ok = {
            let b = inward.as_bytes();
            b[0].is_ascii_digit() && b[1].is_ascii_alphabetic() && b[2].is_ascii_alphabetic()
        };
        let outward_ok = {
            let b = outward.as_bytes();
            let letters = b.iter().take_while(|c| c.is_ascii_alphabetic()).count();
            let rest = &b[letters..];
            (1..=2).contains(&letters)
                && !rest.is_empty()
                && rest[0].is_ascii_digit()
                && rest.len() <= 2
                && rest[1..].iter().all(|c| c.is_ascii_alphanumeric())
        };
        if inward_ok && outward_ok {
            Ok(Self(format!("{outward} {inward}")))
        } else {
            Err(bad())
        }
    }

    /// A postcode read back from a record kept before postcodes were checked where they are typed. One
    /// that has the shape is normalised as ever; one that does not is kept as it was (trimmed), because an
    /// address with an odd postcode still has to reach the staff going there.
    pub fn from_stored(text: &str) -> Self {
        Self::parse(text).unwrap_or_else(|_| Self(text.trim().to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The postcode district (the outward code, "LS6" of "LS6 2AB"): enough to say where without the
    /// street, for a list that may be seen over a shoulder. A postcode kept without its space still
    /// loses its last three characters, the inward code.
    pub fn district(&self) -> String {
        let compact: String = self
            .0
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_uppercase();
        match self.0.split_whitespace().collect::<Vec<_>>().as_slice() {
            [outward, _inward] => outward.to_uppercase(),
            _ if compact.chars().count() > 3 => {
                compact.chars().take(compact.chars().count() - 3).collect()
            }
            _ => compact,
        }
    }

    /// The same address's postcode cut to its district: what a phone keeps once it forgets a briefing.
    pub fn only_district(&self) -> Self {
        Self(self.district())
    }
}

crate::parsed_text!(Postcode, PostcodeError, |postcode| &postcode.0);

schema_of!(Postcode, {
    "type": "string",
    "description": "a UK postcode by its shape, in capitals with one space (OK1 2AB)",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_their_spacing_for_display_but_not_for_links() {
        let number = PhoneNumber::parse(" +44 1632 960 001 ").unwrap();
        assert_eq!(number.as_str(), "+44 1632 960 001");
        assert_eq!(number.dialable(), "+441632960001");
        assert_eq!(number.to_string(), "+44 1632 960 001");
        assert_eq!(number.tel_uri(), "tel:+441632960001");
        assert_eq!(
            number.sms_uri("cover rota?"),
            "sms:+441632960001?body=cover%20rota%3F"
        );
    }

    #[test]
    fn serde_reads_the_text_and_refuses_what_the_rule_refuses() {
        let number: PhoneNumber = serde_json::from_str("\"01632 960000\"").unwrap();
        assert_eq!(serde_json::to_string(&number).unwrap(), "\"01632 960000\"");
        assert!(serde_json::from_str::<PhoneNumber>("\"0113?body=hi\"").is_err());
        let postcode: Postcode = serde_json::from_str("\"OK1 2AB\"").unwrap();
        assert_eq!(serde_json::to_string(&postcode).unwrap(), "\"OK1 2AB\"");
        assert!(serde_json::from_str::<Postcode>("\"not a postcode\"").is_err());
    }

    #[test]
    fn stored_fields_read_what_was_kept_before_the_rule_and_normalise_what_follows_it() {
        #[derive(serde::Deserialize)]
        struct Kept {
            #[serde(deserialize_with = "stored::phone")]
            phone: PhoneNumber,
            #[serde(deserialize_with = "stored::postcode")]
            postcode: Postcode,
        }
        let old: Kept =
            serde_json::from_str(r#"{"phone": "(01632) 960-001", "postcode": "Flat 2"}"#).unwrap();
        assert_eq!(old.phone.as_str(), "(01632) 960-001");
        assert_eq!(old.phone.dialable(), "01632960001");
        assert_eq!(old.postcode.as_str(), "Flat 2");
        let new: Kept =
            serde_json::from_str(r#"{"phone": "01632 960001", "postcode": "ok12ab"}"#).unwrap();
        assert_eq!(new.phone, PhoneNumber::parse("01632 960001").unwrap());
        assert_eq!(new.postcode.as_str(), "OK1 2AB");
    }

    #[test]
    fn the_area_is_the_postcode_district() {
        let cases = [
            ("LS6 2AB", "LS6"),
            ("ls6 2ab", "LS6"),
            ("SW1A 1AA", "SW1A"),
            ("SW1A1AA", "SW1A"),
            ("M1 1AE", "M1"),
            ("M11AE", "M1"),
            ("  B33 8TH ", "B33"),
            ("", ""),
            ("AB", "AB"),
        ];
        for (kept, district) in cases {
            assert_eq!(Postcode::from_stored(kept).district(), district, "{kept:?}");
        }
        let forgotten = Postcode::parse("LS6 2AB").unwrap().only_district();
        assert_eq!(forgotten.as_str(), "LS6");
        assert_eq!(forgotten.district(), "LS6");
    }

    #[test]
    fn percent_encoding_keeps_only_unreserved_characters() {
        assert_eq!(percent_encode("aZ9-._~"), "aZ9-._~");
        assert_eq!(percent_encode("a b&c=d?#+"), "a%20b%26c%3Dd%3F%23%2B");
        assert_eq!(percent_encode("café"), "caf%C3%A9");
    }
}
