//! `rempart score`: the CLI conventions (JSON on stdout only, `-` for stdin, --batch,
//! --lang fr, exit codes) on real files.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use rempart_tests::gateway::rempart_bin;

fn score(args: &[&str], stdin: &[u8]) -> Output {
    // No network here: DNS-based checks are skipped (tests/tests/auth.rs has them).
    let mut child = Command::new(rempart_bin())
        .args(["score", "--offline"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), stdin).unwrap();
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

const SPAMMY: &[u8] =
    b"Subject: FREE MONEY FOR YOU\r\nContent-Type: text/html\r\n\r\n<a hReF=\"http://evil.example\">www.bank.example</a>\r\n";

#[test]
fn json_table_and_french() {
    let out = score(&["--json", "--helo", "[192.0.2.1]", "-"], SPAMMY);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("exactly one JSON document on stdout");
    assert_eq!(doc["action"], "reject", "over the default reject threshold (7.5)");
    assert!(doc["score"].as_f64().unwrap() >= 7.5);
    let names: Vec<&str> = doc["symbols"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    for expected in ["PHISHING", "MIXED_HREF_CASE", "RCVD_NUMERIC_HELO", "SUBJ_ALL_CAPS", "MIME_HTML_ONLY"] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
    assert_eq!(doc["offline"], true, "DNS checks were skipped, and it says so");
    let fr = score(&["--lang", "fr", "-"], SPAMMY);
    let text = String::from_utf8_lossy(&fr.stdout);
    assert!(text.starts_with("score ") && text.contains("hameçonnage"), "{text}");
}

#[test]
fn batch_prints_one_json_line_per_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.eml"), SPAMMY).unwrap();
    std::fs::write(dir.path().join("b.eml"), b"From: x@y.example\r\n\r\nhi\r\n").unwrap();
    let out = score(&["--batch", dir.path().to_str().unwrap()], b"");
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0]["file"].as_str().unwrap().ends_with("a.eml") && lines[1]["file"].as_str().unwrap().ends_with("b.eml"));

    // An mbox file: one line per message, numbered.
    let mbox = dir.path().join("archive.mbox");
    std::fs::write(&mbox, b"From a@b Mon Nov 23 10:00:00 2026\nSubject: FREE MONEY FOR YOU\n\n>From the start\n\nFrom c@d Mon Nov 23 11:00:00 2026\nFrom: x@y.example\nSubject: hi\n\nhi\n").unwrap();
    let out = score(&["--batch", mbox.to_str().unwrap()], b"");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.iter().map(|l| l["message"].as_u64().unwrap()).collect::<Vec<_>>(), vec![1, 2]);
    assert!(lines[0]["symbols"].as_array().unwrap().iter().any(|s| s["name"] == "SUBJ_ALL_CAPS"), "{}", lines[0]);
    // A file that is not an mbox is refused, naming it.
    let out = score(&["--batch", dir.path().join("a.eml").to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("a.eml: not an mbox file"));
}

#[test]
fn errors_and_exit_codes() {
    let out = score(&["/nonexistent/message.eml"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/message.eml"));
    assert_eq!(score(&["--ip", "not-an-ip", "-"], b"").status.code(), Some(2));
    assert_eq!(score(&["--lang", "de", "-"], b"").status.code(), Some(2));
    assert_eq!(score(&[], b"").status.code(), Some(2), "a file or --batch is required");
    // Any bytes at all: a verdict, never a panic.
    let out = score(&["--json", "-"], b"\0\xff\xfe\r\n\r\n--\r\nContent-Type: multipart/mixed; boundary=\r\n");
    assert!(out.status.success() && !String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

#[test]
fn the_shared_spamassassin_messages_score_without_error() {
    let Some(dir) = rempart_tests::shared_dir("testdata/spamassassin-t-data") else { return };
    for sub in ["nice", "spam"] {
        let out = score(&["--batch", dir.join(sub).to_str().unwrap()], b"");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).lines().count() >= 20, "{sub}");
    }
    let _ = Path::new(".");
}
