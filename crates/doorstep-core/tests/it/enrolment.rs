//! Enrolment codes and links as the office writes them and the phone reads them: one canonical form for
//! a code however it is typed, and the QR code's link round-tripping any office address.

use doorstep_core::protocol::{
    display_enrolment_code, normalise_enrolment_code, EnrolmentLink, ENROLMENT_CODE_LEN,
};

#[test]
fn a_code_reads_the_same_however_it_is_typed_and_nothing_else_reads_as_one() {
    let cases: &[(&str, Option<&str>)] = &[
        ("7KQ4-M2XD-9RTB", Some("7KQ4M2XD9RTB")),
        ("7KQ4M2XD9RTB", Some("7KQ4M2XD9RTB")),
        ("7kq4 m2xd 9rtb", Some("7KQ4M2XD9RTB")),
        (" 7KQ4-M2XD-9RTB\n", Some("7KQ4M2XD9RTB")),
        // Read off a screen: O is zero, I and L are one.
        ("OKQ4-M2XD-9RTI", Some("0KQ4M2XD9RT1")),
        ("lKQ4-M2XD-9RTB", Some("1KQ4M2XD9RTB")),
        ("7KQ4-M2XD-9RT", None),
        ("7KQ4-M2XD-9RTBB", None),
        ("7KQ4-M2XD-9RTU", None),
        ("7KQ4-M2XD-9RT!", None),
        ("7KQ4-M2XD-9RTÉ", None),
        ("", None),
    ];
    for (typed, expected) in cases {
        let expected = expected.map(str::to_owned);
        assert_eq!(
            normalise_enrolment_code(typed),
            expected.clone(),
            "{typed:?}"
        );
        if let Some(code) = expected {
            assert_eq!(code.len(), ENROLMENT_CODE_LEN);
        }
    }
    assert_eq!(display_enrolment_code("7KQ4M2XD9RTB"), "7KQ4-M2XD-9RTB");
}

#[test]
fn the_qr_link_carries_any_office_address_and_the_code() {
    for office in [
        "https://office.school.example",
        "https://office.school.example:8443/doorstep",
        "http://127.0.0.1:8750",
        "https://example.org/a&b=c?d#e",
    ] {
        let link = EnrolmentLink {
            office_url: office.into(),
            code: "7KQ4M2XD9RTB".into(),
        };
        let uri = link.to_uri();
        assert!(uri.starts_with("doorstep://enrol?office="), "{uri}");
        assert_eq!(EnrolmentLink::parse(&uri), Some(link), "{uri}");
    }
    for not_a_link in [
        "7KQ4-M2XD-9RTB",
        "https://office.example/enrol?code=7KQ4",
        "doorstep://enrol?office=https%3A%2F%2Fx",
        "doorstep://enrol?code=7KQ4M2XD9RTB",
        "doorstep://enrol?office=%zz&code=7KQ4M2XD9RTB",
    ] {
        assert_eq!(EnrolmentLink::parse(not_a_link), None, "{not_a_link}");
    }
}
