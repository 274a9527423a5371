//! Z85 decode of arbitrary bytes: never panics; what decodes re-encodes to the
//! same text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zeroring_transports::z85;

fuzz_target!(|data: &[u8]| {
    if let Ok(bin) = z85::decode(data) {
        assert_eq!(z85::encode(&bin).unwrap().as_bytes(), data);
    }
});
