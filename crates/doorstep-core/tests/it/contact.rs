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

/// What an office kept before numbers and postcodes were checked (brackets and dashes in a number, a
/// postcode without its shape) still reaches a phone whole: the visit is read, the number shown as kept
/// and dialled by its digits, the postcode kept as it was. A number typed now is refused by the same rule.
#[test]
fn holdings_kept_before_the_rule_are_read_whole_and_their_numbers_still_dial() {
    let mut json = serde_json::to_value(crate::support::holdings()).unwrap();
    json["school"]["office_phone"] = "(0100) 000-000".into();
    json["visits"][0]["visit"]["staff"][1]["phone"] = "07000-000002".into();
    json["visits"][0]["visit"]["address"]["postcode"] = "Testville 1".into();
    let held: doorstep_core::protocol::PhoneHoldings = serde_json::from_value(json).unwrap();

    assert_eq!(held.school.office_phone.as_str(), "(0100) 000-000");
    assert_eq!(held.school.office_phone.tel_uri(), "tel:0100000000");
    let visit = &held.visits[0].visit;
    assert_eq!(visit.staff[1].phone.dialable(), "07000000002");
    assert_eq!(visit.address.postcode.as_str(), "Testville 1");
    assert!(PhoneNumber::parse("(0100) 000-000").is_err());
    assert!(Postcode::parse("Testville 1").is_err());

    // Numbers that follow the rule come back exactly as they went.
    let sent = crate::support::holdings();
    let same: doorstep_core::protocol::PhoneHoldings =
        serde_json::from_value(serde_json::to_value(&sent).unwrap()).unwrap();
    assert_eq!(same, sent);
}
