//! Bounces as anyone can mail them to an account: read without a panic, in time
//! proportional to their size, naming at most the recipient cap.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(report) = rempart_smtp::bounce::parse(data) {
        assert!(report.recipients.len() <= 1000);
    }
});
