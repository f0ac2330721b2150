//! The one rule for phone numbers and postcodes, read from the shared table the office and the phone are
//! tested against too.

use doorstep_core::contact::{PhoneNumber, Postcode};
use doorstep_core::test_support::{PHONE_NUMBERS, POSTCODES};

#[test]
fn phone_numbers_follow_the_table() {
    for &(text, dialable) in PHONE_NUMBERS {
        let parsed = PhoneNumber::parse(text).ok();
        assert_eq!(
            parsed.as_ref().map(PhoneNumber::dialable),
            dialable,
            "{text:?}"
        );
        // What serde reads is what the parse accepts.
        let json = serde_json::to_string(text).unwrap();
        assert_eq!(
            serde_json::from_str::<PhoneNumber>(&json).ok(),
            parsed,
            "{text:?}"
        );
    }
}

#[test]
fn a_stored_number_is_parsed_by_the_rule_and_one_kept_before_the_rule_still_dials_its_digits() {
    for &(text, dialable) in PHONE_NUMBERS {
        if let Some(dialable) = dialable {
            assert_eq!(
                PhoneNumber::from_stored(text).dialable(),
                dialable,
                "{text:?}"
            );
        }
    }
    let old = PhoneNumber::from_stored(" +44 (0)113 496-0000 ");
    assert_eq!(old.as_str(), "+44 (0)113 496-0000", "shown as it was kept");
    assert_eq!(old.tel_uri(), "tel:+4401134960000");
    assert_eq!(
        old.sms_uri("cover rota?"),
        "sms:+4401134960000?body=cover%20rota%3F"
    );
}

#[test]
fn postcodes_follow_the_table() {
    for &(text, kept) in POSTCODES {
        let parsed = Postcode::parse(text).ok();
        assert_eq!(parsed.as_ref().map(Postcode::as_str), kept, "{text:?}");
        let json = serde_json::to_string(text).unwrap();
        assert_eq!(
            serde_json::from_str::<Postcode>(&json).ok(),
            parsed,
            "{text:?}"
        );
    }
}
