//! Verdicts answered in the SMTP session, end to end with swaks: reject with the top
//! symbols and the explanation URL, add_header with X-Spam headers and a subject tag,
//! quarantine and discard (250, nothing delivered), and block lists.

use std::process::Command;
use std::time::Duration;

use rempart_tests::{Gateway, Sink, SinkMode, SmtpClient, message};

/// Scores 5.80: MIXED_HREF_CASE 2.0, MISSING_DATE 1.4, MISSING_HEADERS 1.0,
/// MIME_HTML_ONLY 0.7, MISSING_MID 0.5, HTML_MESSAGE 0.
const SPAMMY: &str = "From: Promo <promo@sender.test>\r\nSubject: Great offer\r\nContent-Type: text/html\r\n\r\n<html><a hReF=\"http://shop.example\">Buy now</a></html>\r\n";

fn gateway(sink: &Sink, policy: &str) -> Gateway {
    Gateway::in_process(&format!(
        "[smtp]\nhostname = \"gw.test\"\n[[smtp.listener]]\naddress = \"{{listen}}\"\n[queue]\ndata_dir = \"{{data}}\"\n[policy]\n{policy}\n[[domain]]\nname = \"example.com\"\nroute = \"{}\"\n",
        sink.route()
    ))
}

fn swaks(gw: &Gateway, data: &str) -> (bool, String) {
    let file = gw.dir.path().join("msg.eml");
    std::fs::write(&file, data).unwrap();
    let out = Command::new("swaks")
        .args(["--server", &gw.addr(), "--ehlo", "client.test", "--from", "promo@sender.test", "--to", "alice@example.com", "--data"])
        .arg(format!("@{}", file.display()))
        .output()
        .expect("swaks is installed by scripts/setup.sh");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string())
}

#[test]
fn reject_is_answered_in_session_with_reason_and_url() {
    let sink = Sink::start(SinkMode::Accept);
    let gw = gateway(&sink, "reject = 5.0");
    let (ok, transcript) = swaks(&gw, SPAMMY);
    assert!(!ok, "swaks should fail on a rejection:\n{transcript}");
    let line = transcript.lines().find(|l| l.contains("550 5.7.1")).unwrap_or_else(|| panic!("no 550 5.7.1:\n{transcript}"));
    let score = rempart_tests::rules_only_score(SPAMMY);
    assert!(line.contains(&format!("Message refused as spam: score {score}")) && line.contains("MIXED_HREF_CASE"), "{line}");
    let url = line.rsplit(" - ").next().unwrap();
    assert!(url.starts_with("https://gw.test/why/") && url.len() > "https://gw.test/why/".len() + 8, "{line}");
    let queue_id = url.trim_start_matches("https://gw.test/why/");
    assert!(
        gw.log().contains(&format!("\"queue_id\":\"{queue_id}\"")) && gw.log().contains("\"action\":\"reject\""),
        "the log names it:\n{}",
        gw.log()
    );
    // A clean message on the same gateway still goes through.
    let (ok, transcript) = swaks(&gw, &message("clean"));
    assert!(ok, "{transcript}");
    assert_eq!(sink.wait_for(1, Duration::from_secs(15)).len(), 1);
}

#[test]
fn add_header_marks_and_tags_the_message() {
    let sink = Sink::start(SinkMode::Accept);
    let gw = gateway(&sink, "add_header = 5.0\nsubject_tag = \"[SPAM]\"");
    let (ok, transcript) = swaks(&gw, SPAMMY);
    assert!(ok, "{transcript}");
    let got = sink.wait_for(1, Duration::from_secs(15));
    let text = String::from_utf8_lossy(&got[0].data).to_string();
    let score = rempart_tests::rules_only_score(SPAMMY);
    assert!(
        text.contains(&format!("X-Spam-Status: Yes, score={score}"))
            && text.contains("required=5.0 tests=")
            && text.contains("MIXED_HREF_CASE"),
        "{text}"
    );
    // The symbols by contribution, each with its weight.
    let symbols = text.lines().find_map(|l| l.strip_prefix("X-Spam-Symbols: ")).unwrap_or_default();
    assert!(
        text.contains(&format!("X-Spam-Score: {score}"))
            && symbols.starts_with("MIME_HTML_ONLY(")
            && symbols.contains("MIXED_HREF_CASE(2.00)"),
        "{text}"
    );
    assert!(text.contains("Subject: [SPAM] Great offer"), "{text}");
}

#[test]
fn quarantine_and_discard_accept_but_do_not_deliver() {
    for policy in ["quarantine = 5.0", "discard = 5.0"] {
        let sink = Sink::start(SinkMode::Accept);
        let gw = gateway(&sink, policy);
        let mut c = SmtpClient::connect(&gw.addr());
        c.ehlo();
        let r = c.send_mail("promo@sender.test", &["alice@example.com"], SPAMMY);
        assert_eq!(r.code, 250, "{policy}: {r:?}");
        std::thread::sleep(Duration::from_millis(800));
        assert!(sink.messages().is_empty(), "{policy}: delivered anyway");
        let action = policy.split(' ').next().unwrap();
        assert!(gw.log().contains(&format!("\"action\":\"{action}\"")), "{}", gw.log());
    }
}

#[test]
fn block_list_rejects_and_allow_list_skips_checks() {
    let sink = Sink::start(SinkMode::Accept);
    let gw = gateway(&sink, "reject = 5.0\nblock = [\"spammer.test\"]\nallow = [\"promo@sender.test\"]");
    let mut c = SmtpClient::connect(&gw.addr());
    c.ehlo();
    let r = c.send_mail("bulk@mx.spammer.test", &["alice@example.com"], &message("blocked"));
    assert_eq!((r.code, r.enhanced().as_deref()), (550, Some("5.7.1")));
    assert!(r.text().contains("block list"), "{r:?}");
    // The same spammy message passes from an allowed sender.
    let r = c.send_mail("promo@sender.test", &["alice@example.com"], SPAMMY);
    assert_eq!(r.code, 250, "{r:?}");
    assert_eq!(sink.wait_for(1, Duration::from_secs(15)).len(), 1);
}
