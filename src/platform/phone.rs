//! Phone numbers the app may hand to the dialler or the message composer, and the `tel:`/`sms:` links
//! built from them.
//!
//! A number is parsed once ([`PhoneNumber::parse`]) so a link can never carry anything but digits and a
//! leading `+`: no `?`, `#` or `;` that would let a stored value smuggle in extra link parameters.

use std::fmt;

/// Why some text is not a phone number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneNumberError {
    #[error("a phone number may only contain digits, spaces and a leading +")]
    BadCharacter,
    #[error("a phone number needs between 3 and 15 digits")]
    WrongLength,
}

/// A phone number as staff would type it: digits, single spaces between groups, an optional leading `+`.
/// Between 3 digits (`999`, `112`) and 15 (the longest international number).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber {
    /// As typed, trimmed: what the screen shows.
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
        if !(3..=15).contains(&digits.len()) {
            return Err(PhoneNumberError::WrongLength);
        }
        Ok(Self {
            display: display.to_owned(),
            dialable: format!("{plus}{digits}"),
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

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

impl std::str::FromStr for PhoneNumber {
    type Err = PhoneNumberError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

/// Percent-encodes every byte of `text`'s UTF-8 except RFC 3986's unreserved characters. Ten lines rather
/// than a crate: this is the app's only encoding need.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_their_spacing_for_display_but_not_for_links() {
        let number = PhoneNumber::parse(" +44 1632 960 001 ").unwrap();
        assert_eq!(number.as_str(), "+44 1632 960 001");
        assert_eq!(number.dialable(), "+441632960001");
        assert_eq!(number.to_string(), "+44 1632 960 001");
    }

    #[test]
    fn percent_encoding_keeps_only_unreserved_characters() {
        assert_eq!(percent_encode("aZ9-._~"), "aZ9-._~");
        assert_eq!(percent_encode("a b&c=d?#+"), "a%20b%26c%3Dd%3F%23%2B");
        assert_eq!(percent_encode("café"), "caf%C3%A9");
    }
}
