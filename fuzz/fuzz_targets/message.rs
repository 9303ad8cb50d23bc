//! A message as the scanner reads it (MIME, headers, HTML, links, attachments, the
//! Bayes tokens): the whole offline verdict, never a panic.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use rempart_model::SessionFacts;
use rempart_scanner::{ScanInput, Scanner};

static SCANNER: LazyLock<Scanner> = LazyLock::new(|| {
    let dir = std::env::temp_dir();
    let config = rempart_model::Config::parse("[dns]\noffline = true\n", "fuzz.toml", &dir).expect("config");
    Scanner::new(&config).expect("scanner")
});

fuzz_target!(|data: &[u8]| {
    let facts = SessionFacts { peer_ip: "192.0.2.1".parse().unwrap(), helo: "mx.fuzz".into(), ..Default::default() };
    let recipients = vec!["alice@example.com".to_string()];
    let input = ScanInput { facts: &facts, return_path: "s@sender.test", recipients: &recipients, message: data };
    let verdict = SCANNER.evaluate_offline(&input);
    assert!(verdict.score.is_finite());
    let _ = rempart_scanner::html::analyse(&String::from_utf8_lossy(data));
    let _ = rempart_scanner::tokens::learnable(data);
});
