//! Envelope addresses and ESMTP parameters as MAIL and RCPT receive them: never a
//! panic, and never a control character in a path that is accepted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rempart_edge::address::{parse_params, parse_path, strip_bare_postmaster};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for utf8 in [false, true] {
        if let Ok((path, rest)) = parse_path(text, utf8) {
            if let Some(mailbox) = path.mailbox {
                let address = mailbox.address();
                assert!(!address.chars().any(char::is_control), "{address:?}");
            }
            let _ = parse_params(rest);
        }
    }
    let _ = strip_bare_postmaster(text);
    let _ = rempart_smtp::xtext::is_valid(text);
    let _ = rempart_smtp::xtext::decode(text);
});
