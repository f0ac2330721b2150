//! The alert as a text message: what the phone writes the office can read back into the very envelope
//! the phone recorded, and a text that was forged or altered in any byte is refused.

use chrono::{DateTime, Utc};
use doorstep_core::event::EventEnvelope;
use doorstep_core::lifecycle::{DuressVia, VisitEvent};
use doorstep_core::sms::{self, SmsError, SmsKey};
use sha2::{Digest, Sha256};

use crate::support::{envelope, staff};

const TOKEN: &str = "b1c4880520a24d8489d6e8d5d78033f091232e2c07ca4f36a6428cb2aa043658";

fn alert(via: DuressVia) -> EventEnvelope {
    // A device time with nanoseconds, as a phone's clock gives it: it must come back exactly.
    let at: DateTime<Utc> = "2026-11-23T14:03:52.123456789Z".parse().unwrap();
    envelope(
        "phone-a",
        4_321,
        at,
        VisitEvent::DuressRaised {
            staff: staff("a"),
            via,
        },
    )
}

#[test]
fn the_office_rebuilds_exactly_the_envelope_the_phone_recorded() {
    let key = SmsKey::from_device_token(TOKEN);
    for via in [DuressVia::CodePhraseButton, DuressVia::DuressPin] {
        let recorded = alert(via);
        let text =
            sms::message("Could you find cover for my Year 4 class?", &recorded, &key).unwrap();
        assert!(text.starts_with("Could you find cover for my Year 4 class? Ref DS1.phone-a."));
        assert!(text.len() <= 160, "one text: {} characters", text.len());
        let read = sms::read(&text).unwrap();
        assert_eq!(read.verify(&key, staff("a")).unwrap(), recorded);
    }
}

#[test]
fn the_office_derives_the_same_key_from_the_token_hash_it_keeps() {
    let hash: [u8; 32] = Sha256::digest(TOKEN.as_bytes()).into();
    assert_eq!(
        SmsKey::from_token_hash(&hash),
        SmsKey::from_device_token(TOKEN)
    );
    assert_ne!(
        SmsKey::from_device_token(TOKEN),
        SmsKey::from_device_token("another token")
    );
    assert_eq!(
        format!("{:?}", SmsKey::from_device_token(TOKEN)),
        "SmsKey(..)"
    );
}

#[test]
fn a_forged_or_altered_text_is_refused() {
    let key = SmsKey::from_device_token(TOKEN);
    let recorded = alert(DuressVia::CodePhraseButton);
    let reference = sms::reference(&recorded, &key).unwrap();

    // Another device's key (a forger who knows the format but not the credential).
    let forged = sms::reference(&recorded, &SmsKey::from_device_token("guess")).unwrap();
    assert_eq!(
        sms::read(&forged).unwrap().verify(&key, staff("a")),
        Err(SmsError::BadCode)
    );

    // Every character of the reference changed in turn: never accepted as something else.
    for at in 0..reference.len() {
        let mut bytes = reference.clone().into_bytes();
        bytes[at] = if bytes[at] == b'B' { b'C' } else { b'B' };
        let altered = String::from_utf8(bytes).unwrap();
        if let Ok(read) = sms::read(&altered) {
            assert!(
                read.verify(&key, staff("a")).is_err(),
                "accepted with character {at} changed: {altered}"
            );
        }
    }
    // Another visit or device named in the text.
    let moved = reference.replace(".visit-1.", ".visit-2.");
    assert_ne!(moved, reference);
    assert_eq!(
        sms::read(&moved).unwrap().verify(&key, staff("a")),
        Err(SmsError::BadCode)
    );
}

#[test]
fn texts_without_a_reference_or_with_a_broken_one_say_why() {
    let cases: &[(&str, SmsError)] = &[
        ("Running late, sorry", SmsError::NoReference),
        (
            "Ref DS1.phone-a",
            SmsError::Malformed("it needs a device, a visit and a payload"),
        ),
        (
            "Ref DS1.phone a.visit-1.AAAA",
            SmsError::Malformed("it needs a device, a visit and a payload"),
        ),
        (
            "Ref DS1.phone-a.visit-1.!!!",
            SmsError::Malformed("the payload is not base64url"),
        ),
        (
            "Ref DS1.phone-a.visit-1.AAAA",
            SmsError::Malformed("the payload has the wrong length"),
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(sms::read(text).unwrap_err(), *expected, "{text}");
    }
    let check_in = envelope(
        "phone-a",
        1,
        doorstep_core::test_support::at(10, 0),
        VisitEvent::CheckedIn { staff: staff("a") },
    );
    assert_eq!(
        sms::reference(&check_in, &SmsKey::from_device_token(TOKEN)),
        Err(SmsError::NotAnAlert)
    );
}
