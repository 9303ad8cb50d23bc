//! No panic and bounded time on malformed and hostile MIME: every file of the shared
//! torture corpora, and generated messages (deep nesting, thousands of parts, huge
//! headers and lines, 100 000 nested tags, 50 000 links, NULs, bare CR/LF).

use std::time::{Duration, Instant};

use rempart_model::{Config, SessionFacts};
use rempart_scanner::{ScanInput, Scanner};

/// Generous: the point is "bounded", not "fast" (debug build, shared machine).
const LIMIT: Duration = Duration::from_secs(5);

fn scan(scanner: &Scanner, name: &str, bytes: &[u8]) -> Duration {
    let facts = SessionFacts { peer_ip: "192.0.2.1".parse().unwrap(), helo: "x".into(), tls: None };
    let rcpt = vec!["a@example.com".to_string()];
    let started = Instant::now();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        scanner.evaluate(&ScanInput { facts: &facts, return_path: "", recipients: &rcpt, message: bytes }, Default::default())
    }));
    let elapsed = started.elapsed();
    assert!(result.is_ok(), "{name}: the scanner panicked");
    assert!(elapsed < LIMIT, "{name}: took {elapsed:?}");
    elapsed
}

#[test]
fn shared_torture_corpora() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata/mime");
    if !root.exists() {
        eprintln!("skipped: {} not found", root.display());
        return;
    }
    let scanner =
        Scanner::new(&Config { dns: rempart_model::config::DnsConfig { offline: true, ..Default::default() }, ..Default::default() })
            .unwrap();
    let mut stack = vec![root];
    let mut count = 0;
    let mut slowest = (Duration::ZERO, String::new());
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let name = path.display().to_string();
            if name.contains("LICENSE") || name.ends_with(".txt") && name.contains("LICENSE") {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            let t = scan(&scanner, &name, &bytes);
            if t > slowest.0 {
                slowest = (t, name);
            }
            count += 1;
        }
    }
    eprintln!("{count} files scanned, slowest {:?} ({})", slowest.0, slowest.1);
    assert!(count > 200, "only {count} files found");
}

fn headers() -> String {
    "From: a@b.example\r\nTo: c@d.example\r\nSubject: t\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <x@b.example>\r\n".into()
}

#[test]
fn generated_adversarial_messages() {
    let scanner =
        Scanner::new(&Config { dns: rempart_model::config::DnsConfig { offline: true, ..Default::default() }, ..Default::default() })
            .unwrap();
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();

    let mut deep = headers();
    for i in 0..2000 {
        deep.push_str(&format!("Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n"));
    }
    deep.push_str("Content-Type: text/plain\r\n\r\nbottom\r\n");
    cases.push(("2000-deep multipart", deep.into_bytes()));

    let mut nested_rfc822 = headers();
    for _ in 0..1000 {
        nested_rfc822.push_str("Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n");
    }
    cases.push(("1000-deep message/rfc822", nested_rfc822.into_bytes()));

    let mut many = headers() + "Content-Type: multipart/mixed; boundary=\"z\"\r\n\r\n";
    for i in 0..20_000 {
        many.push_str(&format!("--z\r\nContent-Type: text/html\r\n\r\n<p>part {i}</p>\r\n"));
    }
    many.push_str("--z--\r\n");
    cases.push(("20 000 parts", many.into_bytes()));

    let mut many_headers = String::new();
    for i in 0..50_000 {
        many_headers.push_str(&format!("X-H{i}: v\r\n"));
    }
    cases.push(("50 000 headers", (many_headers + "\r\nbody\r\n").into_bytes()));
    cases.push(("1 MiB header", format!("Subject: {}\r\n\r\nbody\r\n", "a".repeat(1 << 20)).into_bytes()));
    cases.push(("3 MiB line", format!("{}\r\n{}\r\n", headers(), "b".repeat(3 << 20)).into_bytes()));
    cases.push((
        "100 000 nested divs",
        format!("{}Content-Type: text/html\r\n\r\n{}x{}\r\n", headers(), "<div>".repeat(100_000), "</div>".repeat(100_000)).into_bytes(),
    ));
    cases.push((
        "50 000 links",
        format!("{}Content-Type: text/html\r\n\r\n{}\r\n", headers(), "<a href=\"http://a.example/\">www.b.example</a>".repeat(50_000))
            .into_bytes(),
    ));
    cases.push(("broken base64", format!("{}Content-Transfer-Encoding: base64\r\n\r\n!!!*&^%$#@\r\n===\r\n", headers()).into_bytes()));
    cases.push((
        "broken quoted-printable",
        format!("{}Content-Transfer-Encoding: quoted-printable\r\n\r\n=ZZ=\r\n=\r\n=4\r\n", headers()).into_bytes(),
    ));
    let mut rfc2231 = headers() + "Content-Type: text/plain;";
    for i in 0..10_000 {
        rfc2231.push_str(&format!(" name*{i}*=part{i};"));
    }
    cases.push(("10 000 RFC 2231 continuations", (rfc2231 + "\r\n\r\nx\r\n").into_bytes()));
    cases.push(("NULs", [headers().as_bytes(), b"\r\n\0\0\0body\0\r\n"].concat()));
    cases.push(("CR only", headers().replace("\r\n", "\r").into_bytes()));
    cases.push(("LF only", headers().replace("\r\n", "\n").into_bytes()));
    cases.push(("empty", Vec::new()));
    cases.push(("binary noise", (0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect()));
    for (name, bytes) in &cases {
        let t = scan(&scanner, name, bytes);
        eprintln!("{name}: {t:?}");
    }
}
