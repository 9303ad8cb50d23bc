//! Bounces read back: `rempart dsn` on a real report from the shared corpus and on
//! standard input, its JSON, and its refusal of a message that is not a bounce.

use rempart_tests::gateway::run_rempart;

#[test]
fn rempart_dsn_reads_a_bounce_from_a_file_or_stdin() {
    let Some(dir) = rempart_tests::shared_dir("testdata/bounces") else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let file = dir.join("maildir/lhost-sendmail-01.eml");
    let out = run_rempart(&["dsn", &file.display().to_string()], work.path(), None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.starts_with("userunknown@bouncehammer.jp\tfailed\t5.1.1\t550\tuserunknown\thard"), "{text}");

    let raw = std::fs::read(dir.join("maildir/lhost-qmail-01.eml")).expect("read");
    let out = run_rempart(&["dsn", "-", "--json"], work.path(), Some(&raw));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["recipients"][0]["recipient"], "kijitora@example.ne.jp");
    assert_eq!(json["recipients"][0]["reason"], "userunknown");

    let out = run_rempart(&["dsn", "-"], work.path(), Some(b"From: a@b.example\r\nSubject: hello\r\n\r\nhi\r\n"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("-: not a bounce"), "{}", String::from_utf8_lossy(&out.stderr));
}
