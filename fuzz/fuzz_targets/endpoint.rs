//! Endpoint parser: never panics; what parses prints back to an equal endpoint.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zeroring_transports::endpoint::{parse, Direction};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    for d in [Direction::Bind, Direction::Connect] {
        if let Ok(ep) = parse(s, d) {
            let again = parse(&ep.to_string(), d).expect("display must re-parse");
            assert_eq!(again, ep);
        } else if let Err(e) = parse(s, d) {
            let _ = e.to_string();
        }
    }
});
