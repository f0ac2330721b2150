//! Fuzzes the office's sync request decoder (`doorstep_office::api::decode_sync_request`), the very code
//! the sync handler runs on a body before it touches the store: arbitrary bytes must be refused with a 4xx,
//! never a panic, and whatever it accepts must be in range and read back the same once written out again.
#![no_main]

use doorstep_core::protocol::MAX_BATCH_EVENTS;
use doorstep_office::api::decode_sync_request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    match decode_sync_request(Some("application/json"), body) {
        Err(refused) => {
            let status = refused.status();
            assert!(
                status.is_client_error(),
                "a refusal must be a 4xx, got {status}"
            );
            assert!(!refused.body().message.is_empty(), "a refusal says why");
        }
        Ok(request) => {
            assert!(request.events.len() <= MAX_BATCH_EVENTS);
            for envelope in &request.events {
                assert_eq!(envelope.validate(), Ok(()), "an accepted event is in range");
            }
            // What the office accepted, written out and read again, is the same request: nothing it stores
            // depends on how the phone spelled it.
            let again = serde_json::to_vec(&request).expect("a decoded request serialises");
            let reread = decode_sync_request(Some("application/json"), &again)
                .expect("an accepted request, written out again, is accepted");
            assert_eq!(reread, request);
        }
    }
});
