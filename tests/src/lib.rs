//! Support for the end-to-end tests: the real `rempart` binary as a child process (or
//! its roles in this process), an SMTP sink standing in for customer servers, and a raw SMTP client. Everything runs
//! on 127.0.0.1 and is killed when dropped.

pub mod clamav;
pub mod client;
pub mod dns;
pub mod gateway;
pub mod http;
pub mod https;
mod in_process;
pub mod nats;
pub mod otlp;
pub mod sink;
pub mod slapd;
pub mod webdriver;

use std::time::{Duration, Instant};

pub use client::SmtpClient;
pub use gateway::Gateway;
pub use sink::{Sink, SinkMode};

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("no free loopback port")
}

/// Polls `check` until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    check()
}

/// A self-signed certificate for `localhost` written to `dir`: (cert path, key path).
pub fn self_signed_cert(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let key = rcgen::KeyPair::generate().expect("key generation");
    let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("cert params");
    let cert = params.self_signed(&key).expect("self-signed cert");
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).expect("write cert");
    std::fs::write(&key_path, key.serialize_pem()).expect("write key");
    (cert_path, key_path)
}

/// A test CA and a certificate it signed for `names`, written to `dir`:
/// (CA cert path, cert path, key path).
pub fn ca_signed_cert(dir: &std::path::Path, names: &[&str]) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "Rempart test CA");
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA cert");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().expect("key");
    let params = rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).expect("cert params");
    let cert = params.signed_by(&key, &issuer).expect("signed cert");
    let (ca_path, cert_path, key_path) = (dir.join("ca.pem"), dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&ca_path, ca_cert.pem()).expect("write CA");
    std::fs::write(&cert_path, cert.pem()).expect("write cert");
    std::fs::write(&key_path, key.serialize_pem()).expect("write key");
    (ca_path, cert_path, key_path)
}

/// A plain test message with the given subject.
pub fn message(subject: &str) -> String {
    format!(
        "From: Sender <sender@sender.test>\r\nTo: <alice@example.com>\r\nSubject: {subject}\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{subject}@sender.test>\r\n\r\nHello,\r\n.leading dot line\r\nBye.\r\n"
    )
}

/// The score the shipped weights give `message` with the rules alone (an empty store, DNS
/// offline), as the gateway writes it ("6.20"): what the end-to-end tests expect a
/// verdict to say, without copying numbers each weight fit changes.
pub fn rules_only_score(message: &str) -> String {
    let config =
        rempart_model::Config { dns: rempart_model::config::DnsConfig { offline: true, ..Default::default() }, ..Default::default() };
    let scanner = rempart_scanner::Scanner::new(&config).expect("the default configuration makes a scanner");
    let facts = rempart_model::SessionFacts { peer_ip: std::net::Ipv4Addr::LOCALHOST.into(), helo: String::new(), tls: None };
    let input = rempart_scanner::ScanInput { facts: &facts, return_path: "", recipients: &[], message: message.as_bytes() };
    format!("{:.2}", scanner.evaluate_offline(&input).score)
}

/// Runs a Python 3 script (the e2e tests drive smtplib, a real client library, with
/// it): `args` are its `sys.argv[1:]`; returns stdout, panicking with stderr on failure.
pub fn python(script: &str, args: &[&str]) -> String {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 is required (scripts/setup.sh checks it)");
    assert!(out.status.success(), "python failed: {}\n{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The shared test data directory, or `None` (with a note) when it is absent.
pub fn shared_dir(sub: &str) -> Option<std::path::PathBuf> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared").join(sub);
    if path.exists() {
        Some(path)
    } else {
        eprintln!("skipped: {} not found", path.display());
        None
    }
}

/// Parses a DSN and returns the text of its `message/delivery-status` part, checking the
/// RFC 3464 structure on the way.
pub fn delivery_status(dsn: &[u8]) -> String {
    use mail_parser::MimeHeaders;
    let parsed = mail_parser::MessageParser::default().parse(dsn).expect("the DSN parses");
    let ct = parsed.content_type().expect("a content type");
    assert_eq!((ct.ctype(), ct.subtype()), ("multipart", Some("report")));
    assert_eq!(ct.attribute("report-type"), Some("delivery-status"));
    let part = parsed
        .parts
        .iter()
        .find(|p| p.content_type().is_some_and(|c| c.subtype() == Some("delivery-status")))
        .expect("a message/delivery-status part");
    String::from_utf8_lossy(part.contents()).into_owned()
}

/// A message for Bayes training: spam about pills, ham about a project meeting.
pub fn training_message(class: &str, i: usize) -> String {
    let (subject, body) = if class == "spam" {
        ("Cheap pills offer", "Buy cheap viagra pills now, best offer, free shipping, click here to order, limited offer")
    } else {
        ("Project meeting", "The agenda for the project meeting: budget review, schedule, minutes from last week")
    };
    format!(
        "From: {class}{i}@{class}.test\r\nTo: bob@example.com\r\nSubject: {subject} {i}\r\nMessage-ID: <{class}{i}@{class}.test>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\n{body} ref{i}\r\n"
    )
}
