//! The phone's two PINs: the rules a new pair must meet, and how they are kept.
//!
//! There are no default PINs: each phone's holder chooses both when the phone is set up. The second PIN
//! (the one that also tells the office silently) must differ from the first, and neither may be one
//! anybody would try first: one digit four times, four digits in a row up or down, this year or the years
//! either side, or a pair repeated. (A second PIN one digit away from the first is allowed: it is easy to
//! remember under stress, and nobody watching can tell the two apart on screen.)
//!
//! They are kept as argon2id hashes, each with its own salt ([`PinHashes`]), in a file sealed with the
//! phone's data key (`vault::PINS_FILE`). Checking a PIN always hashes against both, so the time taken
//! does not say which one was typed.

use argon2::password_hash::PasswordHash;
use doorstep_core::secret_hash::{self, matches};
use serde::{Deserialize, Serialize};

/// Why a new pair of PINs was refused. Each message can be shown as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    #[error("a PIN is exactly 4 digits")]
    NotFourDigits,
    #[error("the two PINs must differ")]
    Same,
    #[error("{which} PIN is too easy to guess ({why}): choose another")]
    TooEasy {
        which: &'static str,
        why: &'static str,
    },
    #[error("could not save the PINs: {0}")]
    Save(String),
}

/// What makes `pin` one anybody would try, if anything. `year` is this year.
pub fn too_easy(pin: &str, year: i32) -> Option<&'static str> {
    let digits: Vec<i32> = pin
        .chars()
        .filter_map(|c| c.to_digit(10).map(|d| d as i32))
        .collect();
    if digits.len() != 4 {
        return None;
    }
    if digits.iter().all(|d| *d == digits[0]) {
        return Some("one digit four times");
    }
    let steps: Vec<i32> = digits.windows(2).map(|w| w[1] - w[0]).collect();
    if steps.iter().all(|s| *s == 1) || steps.iter().all(|s| *s == -1) {
        return Some("digits in a row");
    }
    if let Ok(number) = pin.parse::<i32>() {
        if (year - 1..=year + 1).contains(&number) {
            return Some("a year");
        }
    }
    if digits[0] == digits[2] && digits[1] == digits[3] {
        return Some("a repeated pair");
    }
    None
}

/// Checks a new pair: both exactly four digits, different, and neither too easy to guess.
pub fn check_new_pins(normal: &str, second: &str, year: i32) -> Result<(), PinError> {
    let four_digits = |pin: &str| pin.len() == 4 && pin.chars().all(|c| c.is_ascii_digit());
    if !four_digits(normal) || !four_digits(second) {
        return Err(PinError::NotFourDigits);
    }
    if normal == second {
        return Err(PinError::Same);
    }
    for (which, pin) in [("your", normal), ("your second", second)] {
        if let Some(why) = too_easy(pin, year) {
            return Err(PinError::TooEasy { which, why });
        }
    }
    Ok(())
}

/// The two PINs as argon2id hashes (PHC strings, salt included), as the sealed PIN file keeps them.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinHashes {
    normal: String,
    second: String,
}

// Hashes of 4-digit PINs are guessable offline: keep them out of logs.
impl std::fmt::Debug for PinHashes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PinHashes(<hidden>)")
    }
}

/// Which of the two PINs was typed, if either. Never shown: both look the same on screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinKind {
    Normal,
    Duress,
    Wrong,
}

impl PinHashes {
    /// Hashes a pair already checked by [`check_new_pins`].
    pub fn new(normal: &str, second: &str) -> Result<Self, PinError> {
        Ok(Self {
            normal: hash(normal)?,
            second: hash(second)?,
        })
    }

    /// Reads the PIN file's contents; anything else is an error, never a fallback.
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let hashes: Self = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        for hash in [&hashes.normal, &hashes.second] {
            PasswordHash::new(hash).map_err(|e| e.to_string())?;
        }
        Ok(hashes)
    }

    pub fn to_json(&self) -> Result<Vec<u8>, PinError> {
        serde_json::to_vec(self).map_err(|e| PinError::Save(e.to_string()))
    }

    /// Which PIN `pin` is. Both hashes are always checked.
    pub fn check(&self, pin: &str) -> PinKind {
        let normal = matches(&self.normal, pin);
        let second = matches(&self.second, pin);
        match (normal, second) {
            (true, _) => PinKind::Normal,
            (false, true) => PinKind::Duress,
            (false, false) => PinKind::Wrong,
        }
    }
}

fn hash(pin: &str) -> Result<String, PinError> {
    secret_hash::hash(pin).map_err(|e| PinError::Save(format!("the PIN could not be hashed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_anybody_would_try_first_are_refused_and_others_are_not() {
        let year = 2026;
        let cases: &[(&str, Option<&str>)] = &[
            ("1234", Some("digits in a row")),
            ("4321", Some("digits in a row")),
            ("0123", Some("digits in a row")),
            ("6789", Some("digits in a row")),
            ("9876", Some("digits in a row")),
            ("0000", Some("one digit four times")),
            ("1111", Some("one digit four times")),
            ("9999", Some("one digit four times")),
            ("2026", Some("a year")),
            ("2025", Some("a year")),
            ("2027", Some("a year")),
            ("1212", Some("a repeated pair")),
            ("6969", Some("a repeated pair")),
            ("2468", None),
            ("1357", None),
            ("1235", None),
            ("2024", None),
            ("7401", None),
            ("1122", None),
            ("9081", None),
        ];
        for (pin, expected) in cases {
            assert_eq!(too_easy(pin, year), *expected, "{pin}");
        }
    }

    #[test]
    fn a_new_pair_must_be_four_digits_each_different_and_neither_too_easy() {
        let year = 2026;
        let refused = [
            ("12a4", "5678", PinError::NotFourDigits),
            ("123", "5678", PinError::NotFourDigits),
            ("24680", "5678", PinError::NotFourDigits),
            ("５６７８", "2468", PinError::NotFourDigits),
            ("5680", "5680", PinError::Same),
            (
                "1234",
                "5680",
                PinError::TooEasy {
                    which: "your",
                    why: "digits in a row",
                },
            ),
            (
                "5680",
                "9999",
                PinError::TooEasy {
                    which: "your second",
                    why: "one digit four times",
                },
            ),
        ];
        for (normal, second, error) in refused {
            assert_eq!(
                check_new_pins(normal, second, year),
                Err(error),
                "{normal}/{second}"
            );
        }
        assert_eq!(check_new_pins("2468", "1357", year), Ok(()));
        assert_eq!(
            check_new_pins("2468", "2469", year),
            Ok(()),
            "one digit changed is fine"
        );
    }

    #[test]
    fn hashes_say_which_pin_without_keeping_either_and_a_damaged_file_is_an_error() {
        let hashes = PinHashes::new("2468", "1357").unwrap();
        assert_eq!(hashes.check("2468"), PinKind::Normal);
        assert_eq!(hashes.check("1357"), PinKind::Duress);
        assert_eq!(hashes.check("2469"), PinKind::Wrong);
        assert_eq!(hashes.check(""), PinKind::Wrong);
        let json = hashes.to_json().unwrap();
        let text = String::from_utf8(json.clone()).unwrap();
        assert!(!text.contains("2468") && !text.contains("1357"), "{text}");
        assert!(text.contains("$argon2id$"), "{text}");
        assert_eq!(PinHashes::from_json(&json).unwrap(), hashes);
        assert_ne!(
            PinHashes::new("2468", "1357").unwrap(),
            hashes,
            "salted: the same PINs hash differently"
        );
        for damaged in [
            &b""[..],
            b"{}",
            b"{\"normal\":\"1234\",\"second\":\"9999\"}",
            &json[..json.len() / 2],
        ] {
            assert!(
                PinHashes::from_json(damaged).is_err(),
                "{}",
                String::from_utf8_lossy(damaged)
            );
        }
    }
}
