//! Attachments carry archives and documents: opened (zip, gzip, tar, OLE2, PDF, HTML)
//! within limits, without a panic, whatever their bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = rempart_scanner::attachments::inspect_bytes(data, "fuzzed.zip");
    let _ = rempart_scanner::attachments::inspect_bytes(data, "fuzzed.doc");
    let _ = rempart_scanner::attachments::inspect_bytes(data, "fuzzed.tar.gz");
});
