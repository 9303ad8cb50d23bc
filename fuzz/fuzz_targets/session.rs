//! A whole inbound SMTP session: whatever a client sends (commands, pipelining, DATA,
//! BDAT, parameters), the session answers and ends without a panic, and every reply
//! line is a well-formed reply.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use rempart_bus::{EmbeddedBus, EmbeddedOptions};
use rempart_edge::fuzzing::SessionHarness;
use rempart_model::config::ListenerKind;

struct Fixture {
    harness: SessionHarness,
    _dir: tempfile::TempDir,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = "[smtp]\nhostname = \"gw.fuzz\"\nmax_message_size = 65536\nmax_errors = 1000\nunknown_recipient_delay = \"0s\"\n\
                  [[domain]]\nname = \"example.com\"\nroute = \"smtp://127.0.0.1:9\"\nrecipients = [\"alice\"]\n\
                  bounces = \"accept\"\n[scanner]\nenabled = false\n";
    let config = rempart_model::Config::parse(config, "fuzz.toml", dir.path()).expect("config");
    let bus = EmbeddedBus::open(&dir.path().join("q.redb"), EmbeddedOptions { fsync: false }).expect("bus");
    Fixture { harness: SessionHarness::new(config, bus).expect("harness"), _dir: dir }
});

fuzz_target!(|data: &[u8]| {
    let out = FIXTURE.harness.run(data, ListenerKind::Smtp);
    let text = String::from_utf8_lossy(&out);
    for line in text.split_terminator("\r\n") {
        assert!(rempart_smtp::parse_reply_line(line).is_some(), "not a reply line: {line:?}");
    }
});
