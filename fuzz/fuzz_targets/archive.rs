//! ZIP archives as attachments carry them: listed without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if rempart_scanner::archive::is_zip(data) {
        let _ = rempart_scanner::archive::list_zip(data);
    }
    let _ = rempart_scanner::archive::list_zip(data);
});
