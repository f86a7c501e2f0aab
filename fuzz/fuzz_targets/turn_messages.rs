//! The embedded TURN server's message handling: the TCP frame splitter,
//! STUN decoding and the (vendored, patched) crate's request handlers,
//! with inputs optionally re-signed so they get past authentication.
//! See `huddle::turn::fuzzing::turn_messages` for the input format.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    huddle::turn::fuzzing::turn_messages(data);
});
