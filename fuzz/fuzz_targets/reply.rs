//! SMTP replies as a server sends them (the relay, callouts, `rempart probe`): never a
//! panic, and what is formatted parses back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rempart_smtp::{Reply, ReplyReader, read_reply};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut reader = ReplyReader::new(100);
    for line in text.split_inclusive('\n') {
        match reader.push(line) {
            Ok(Some(reply)) => {
                // Round trip: a reply read, formatted, reads back the same.
                let mut again = ReplyReader::new(2);
                if !reply.text.contains(['\r', '\n']) {
                    let back = again.push(&reply.wire()).ok().flatten().expect("a formatted reply parses");
                    assert_eq!(back.code, reply.code);
                    assert_eq!(back.status, reply.status);
                }
            }
            Ok(None) => {}
            Err(_) => reader = ReplyReader::new(100),
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let mut input = data;
    let _ = runtime.block_on(read_reply(&mut input, 512, 100));
    let _ = Reply::new(250, "", text.to_string()).wire();
});
