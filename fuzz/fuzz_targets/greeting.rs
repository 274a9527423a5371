//! Greeting exchange over arbitrary peer bytes: never panics, never consumes
//! past the greeting, and output stays within 64 bytes.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use zeroring_transports::zmtp::greeting::{GreetingExchange, LocalGreeting, MechanismName, GREETING_LEN};
use zeroring_transports::SocketType;

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else { return };
    let mut g = GreetingExchange::new(LocalGreeting {
        mechanism: match ctl % 3 {
            0 => MechanismName::Null,
            1 => MechanismName::Plain,
            _ => MechanismName::Curve,
        },
        socket_type: SocketType::from_raw(i32::from(ctl >> 3) % 21).unwrap_or(SocketType::Pair),
        routing_id_len: usize::from(ctl),
        allow_v2: ctl & 4 != 0,
    });
    let mut sent = g.take_output().len();
    let mut consumed = 0;
    for chunk in rest.chunks(usize::from(ctl % 7) + 1) {
        let mut input = Bytes::copy_from_slice(chunk);
        let before = input.len();
        let r = g.feed(&mut input);
        consumed += before - input.len();
        sent += g.take_output().len();
        assert!(consumed <= GREETING_LEN && sent <= GREETING_LEN);
        match r {
            Ok(Some(_)) | Err(_) => return,
            Ok(None) => assert!(input.is_empty()),
        }
    }
});
