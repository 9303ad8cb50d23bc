//! Each symbol with a message that hits it and one that does not; then composites,
//! group limits, thresholds and lists.

use rempart_model::{Action, Config, SessionFacts};
use rempart_scanner::{ScanInput, Scanner};

const HEADERS: &str = "From: Alice <alice@sender.example>\r\nTo: bob@example.com\r\nSubject: Meeting notes\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@sender.example>\r\n";

fn facts(helo: &str) -> SessionFacts {
    SessionFacts { peer_ip: "192.0.2.10".parse().unwrap(), helo: helo.into(), tls: None }
}

/// Content checks only: these tests make no DNS lookup.
fn offline(config: &Config) -> Config {
    let mut c = config.clone();
    c.dns.offline = true;
    c
}

fn scan_with(config: &Config, message: &str, helo: &str) -> rempart_model::Verdict {
    let scanner = Scanner::new(&offline(config)).expect("valid scanner config");
    let recipients = vec!["bob@example.com".to_string()];
    let input =
        ScanInput { facts: &facts(helo), return_path: "alice@sender.example", recipients: &recipients, message: message.as_bytes() };
    scanner.evaluate(&input, Default::default())
}

fn names(message: &str, helo: &str) -> Vec<String> {
    scan_with(&Config::default(), message, helo).symbols.into_iter().map(|s| s.name).collect()
}

fn plain(headers: &str, body: &str) -> String {
    format!("{headers}\r\n{body}")
}

fn html_only(extra_headers: &str, html: &str) -> String {
    format!("{HEADERS}{extra_headers}MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n")
}

fn alternative(text: &str, html: &str) -> String {
    format!(
        "{HEADERS}MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n{text}\r\n--b\r\nContent-Type: text/html\r\n\r\n{html}\r\n--b--\r\n"
    )
}

#[track_caller]
fn hits(symbol: &str, message: &str, helo: &str) {
    let found = names(message, helo);
    assert!(found.iter().any(|n| n == symbol), "{symbol} expected, got {found:?}\n{message}");
}

#[track_caller]
fn misses(symbol: &str, message: &str, helo: &str) {
    let found = names(message, helo);
    assert!(!found.iter().any(|n| n == symbol), "{symbol} not expected, got {found:?}\n{message}");
}

const HELO: &str = "mail.sender.example";

#[test]
fn a_clean_message_hits_nothing_that_scores() {
    let v = scan_with(&Config::default(), &plain(HEADERS, "Hello Bob,\r\nsee you at ten.\r\n"), HELO);
    assert!(v.symbols.iter().all(|s| s.score == 0.0), "{:?}", v.symbols);
    assert_eq!((v.score, v.action), (0.0, Action::Accept));
}

#[test]
fn header_symbols() {
    let bare = plain("X-Nothing: here\r\n", "body\r\n");
    for symbol in ["MISSING_DATE", "MISSING_MID", "MISSING_FROM", "MISSING_HEADERS", "MISSING_SUBJECT"] {
        hits(symbol, &bare, HELO);
        misses(symbol, &plain(HEADERS, "body\r\n"), HELO);
    }
    hits("INVALID_DATE", &plain(&HEADERS.replace("Mon, 23 Nov 2026 10:00:00 +0000", "sometime last week"), "x\r\n"), HELO);
    misses("INVALID_DATE", &plain(HEADERS, "x\r\n"), HELO);
    misses("INVALID_DATE", &bare, HELO);

    hits(
        "MULTIPLE_FROM",
        &plain(&HEADERS.replace("From: Alice <alice@sender.example>", "From: a@one.example, b@two.example"), "x\r\n"),
        HELO,
    );
    misses(
        "MULTIPLE_FROM",
        &plain(&HEADERS.replace("From: Alice <alice@sender.example>", "From: a@one.example, b@one.example"), "x\r\n"),
        HELO,
    );

    hits("FREEMAIL_FORGED_REPLYTO", &plain(&format!("{HEADERS}Reply-To: alice.sender@gmail.com\r\n"), "x\r\n"), HELO);
    misses("FREEMAIL_FORGED_REPLYTO", &plain(&format!("{HEADERS}Reply-To: alice@sender.example\r\n"), "x\r\n"), HELO);
    let freemail_from = HEADERS.replace("alice@sender.example>", "joe@gmail.com>");
    misses("FREEMAIL_FORGED_REPLYTO", &plain(&format!("{freemail_from}Reply-To: joe@gmail.com\r\n"), "x\r\n"), HELO);

    hits("SUBJ_ALL_CAPS", &plain(&HEADERS.replace("Meeting notes", "URGENT BUSINESS PROPOSAL"), "x\r\n"), HELO);
    misses("SUBJ_ALL_CAPS", &plain(HEADERS, "x\r\n"), HELO);
}

#[test]
fn connection_symbols() {
    let m = plain(HEADERS, "x\r\n");
    hits("RCVD_NUMERIC_HELO", &m, "[192.0.2.10]");
    hits("RCVD_NUMERIC_HELO", &m, "192.0.2.10");
    hits("RCVD_NUMERIC_HELO", &m, "[IPv6:2001:db8::1]");
    misses("RCVD_NUMERIC_HELO", &m, HELO);
    hits("HELO_NO_DOMAIN", &m, "mailserver");
    misses("HELO_NO_DOMAIN", &m, HELO);
    hits("HELO_LOCALHOST", &m, "localhost");
    misses("HELO_LOCALHOST", &m, HELO);
    // Config::default()'s hostname is "localhost": use one of ours.
    let mut config = Config::default();
    config.smtp.hostname = "mx.gateway.example".into();
    let ours = scan_with(&config, &m, "MX.gateway.example");
    assert!(ours.symbols.iter().any(|s| s.name == "HELO_IS_OUR_NAME"), "{:?}", ours.symbols);
    let not_ours = scan_with(&config, &m, HELO);
    assert!(!not_ours.symbols.iter().any(|s| s.name == "HELO_IS_OUR_NAME"));
}

#[test]
fn mime_symbols() {
    let html = html_only("", "<html><body><p>Hello there friend, a proper paragraph of text.</p></body></html>");
    hits("HTML_MESSAGE", &html, HELO);
    hits("MIME_HTML_ONLY", &html, HELO);
    misses("MIME_HTML_ONLY_MULTI", &html, HELO);
    misses("HTML_MESSAGE", &plain(HEADERS, "x\r\n"), HELO);
    misses("MIME_HTML_ONLY", &alternative("Hello there friend", "<p>Hello there friend</p>"), HELO);

    let multi_html = format!(
        "{HEADERS}MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>one</p>\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>two</p>\r\n--b--\r\n"
    );
    hits("MIME_HTML_ONLY_MULTI", &multi_html, HELO);
    misses("MIME_HTML_ONLY_MULTI", &alternative("one two", "<p>one two</p>"), HELO);

    hits("MPART_ALT_DIFF", &alternative("Please see the attached document.", "<p>Cheap pharmacy pills discount online today</p>"), HELO);
    misses(
        "MPART_ALT_DIFF",
        &alternative("Cheap pharmacy pills discount online today", "<p>Cheap pharmacy pills discount online today</p>"),
        HELO,
    );

    let with_attachment = |name: &str| {
        format!(
            "{HEADERS}MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA\r\n--b--\r\n"
        )
    };
    hits("MIME_BAD_EXTENSION", &with_attachment("invoice.pdf.exe"), HELO);
    hits("MIME_BAD_EXTENSION", &with_attachment("Facture.JS"), HELO);
    misses("MIME_BAD_EXTENSION", &with_attachment("invoice.pdf"), HELO);
}

#[test]
fn link_symbols() {
    let link = |href: &str| html_only("", &format!("<p>Your account</p><a href=\"{href}\">sign in</a>"));
    hits("NUMERIC_HTTP_ADDR", &link("http://192.0.2.7/login"), HELO);
    hits("NUMERIC_HTTP_ADDR", &link("https://[2001:db8::1]:8443/x"), HELO);
    misses("NUMERIC_HTTP_ADDR", &link("https://bank.example/login"), HELO);
    hits("URI_USERINFO", &link("https://www.bank.example@evil.example/login"), HELO);
    misses("URI_USERINFO", &link("https://evil.example/login?user=a@b.example"), HELO);
    hits("URI_SHORTENER", &link("https://bit.ly/3xYz"), HELO);
    misses("URI_SHORTENER", &link("https://bitly.example/3xYz"), HELO);
    hits("URI_SCRIPT_LINK", &link("javascript:alert(1)"), HELO);
    hits("URI_SCRIPT_LINK", &link("data:text/html;base64,PGgxPg=="), HELO);
    misses("URI_SCRIPT_LINK", &link("https://docs.example/javascript:guide"), HELO);
    hits("URI_PUNYCODE", &link("https://xn--pypal-4ve.com/"), HELO);
    misses("URI_PUNYCODE", &link("https://paypal.com/"), HELO);
}

#[test]
fn attachment_symbols() {
    let with = |name: &str| {
        format!(
            "{HEADERS}MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA\r\n--b--\r\n"
        )
    };
    hits("MIME_DOUBLE_EXT", &with("invoice.pdf.exe"), HELO);
    hits("MIME_BAD_EXTENSION", &with("invoice.pdf.exe"), HELO);
    misses("MIME_DOUBLE_EXT", &with("setup.exe"), HELO);
    misses("MIME_DOUBLE_EXT", &with("report.2026.pdf"), HELO);
    hits("MIME_HTML_ATTACH", &with("Payment-Advice.html"), HELO);
    hits("MIME_HTML_ATTACH", &with("voicemail.svg"), HELO);
    misses("MIME_HTML_ATTACH", &with("report.pdf"), HELO);
}

#[test]
fn html_symbols() {
    let img = "<html><body><img src=\"cid:logo\"></body></html>";
    hits("HTML_IMAGE_ONLY_04", &html_only("", img), HELO);
    let words = "word ".repeat(100);
    hits("HTML_IMAGE_ONLY_08", &html_only("", &format!("<html><body><img src=\"cid:x\"><p>{words}</p></body></html>")), HELO);
    misses("HTML_IMAGE_ONLY_04", &html_only("", "<html><body><p>no images at all</p></body></html>"), HELO);

    let linked = "<html><body><a href=\"http://shop.example\"><img src=\"cid:x\"></a></body></html>";
    hits("HTML_SHORT_LINK_IMG_1", &html_only("", linked), HELO);
    misses("HTML_SHORT_LINK_IMG_1", &html_only("", img), HELO);
    let long_text = "text ".repeat(250);
    hits("HTML_SHORT_LINK_IMG_2", &html_only("", &format!("<a href=\"x\"><img src=\"cid:x\"></a><p>{long_text}</p>")), HELO);

    let titled =
        |title: &str| html_only("", &format!("<html><head><title>{title}</title></head><body><p>body text here</p></body></html>"));
    hits("HTML_TITLE_SUBJ_DIFF", &titled("A very long page title that has nothing to do with the subject at all"), HELO);
    misses("HTML_TITLE_SUBJ_DIFF", &titled("Meeting notes"), HELO);

    hits("T_REMOTE_IMAGE", &html_only("", "<p>hi</p><img src=\"https://tracker.example/p.gif\">"), HELO);
    misses("T_REMOTE_IMAGE", &html_only("", "<p>hi</p><img src=\"cid:p\">"), HELO);

    hits("MIXED_HREF_CASE", &html_only("", "<a hReF=\"http://x.example\">x</a>"), HELO);
    misses("MIXED_HREF_CASE", &html_only("", "<a HREF=\"http://x.example\">x</a><a href=\"y\">y</a>"), HELO);
    hits("MIXED_CENTER_CASE", &html_only("", "<CeNtEr>offer</CeNtEr>"), HELO);
    misses("MIXED_CENTER_CASE", &html_only("", "<center>offer</center>"), HELO);

    hits("PHISHING", &html_only("", "<a href=\"http://login.evil.example/\">https://www.mybank.example/login</a>"), HELO);
    misses("PHISHING", &html_only("", "<a href=\"https://www.mybank.example/login\">www.mybank.example</a>"), HELO);
    misses("PHISHING", &html_only("", "<a href=\"http://evil.example/\">Log in here</a>"), HELO);
}

#[test]
fn composites_group_limits_and_weights() {
    let mut config: Config = toml::from_str(
        r#"
[scanner]
weights = { MISSING_MID = 2.5 }
group_limits = { headers = 3.0 }
[[scanner.composite]]
name = "NO_HEADERS_HTML"
expression = "MISSING_FROM & (MIME_HTML_ONLY | HTML_MESSAGE) & !DKIM_VALID_AU_PLACEHOLDER"
weight = 4.0
description = "HTML without a sender"
"#,
    )
    .unwrap_or_default();
    // The composite above names an unknown symbol: refused, naming the field.
    let err = Scanner::new(&offline(&config)).err().expect("unknown symbol refused");
    assert_eq!(err.field, "scanner.composite[0].expression");
    config.scanner.composites[0].expression = "MISSING_FROM & (MIME_HTML_ONLY | HTML_MESSAGE)".into();
    let message = "Content-Type: text/html\r\n\r\n<p>buy now</p>\r\n";
    let v = scan_with(&config, message, HELO);
    let score_of = |n: &str| v.symbols.iter().find(|s| s.name == n).map(|s| s.score);
    assert_eq!(score_of("NO_HEADERS_HTML"), Some(4.0));
    let headers_total: f64 = v.symbols.iter().filter(|s| s.group == "headers").map(|s| s.score).sum();
    assert!((headers_total - 3.0).abs() < 1e-9, "group capped at 3.0: {:?}", v.symbols);
    assert_eq!(score_of("MISSING_MID"), Some(2.5), "weight override counted first (highest)");
    let mut bad = Config::default();
    bad.scanner.weights.insert("NOT_A_SYMBOL".into(), 1.0);
    assert_eq!(Scanner::new(&offline(&bad)).err().map(|e| e.field), Some("scanner.weights.NOT_A_SYMBOL".into()));
}

#[test]
fn thresholds_lists_and_domain_policies() {
    let config: Config = toml::from_str(
        r#"
[policy]
greylist = 1.0
add_header = 2.0
reject = 4.0
block = ["spammer.example", "198.51.100.0/24"]
allow = ["partner@sender.example"]
[[domain]]
name = "example.com"
route = "smtp://127.0.0.1:25"
policy = { reject = 100.0, quarantine = 3.0 }
"#,
    )
    .unwrap();
    let scanner = Scanner::new(&offline(&config)).unwrap();
    let spammy = "Content-Type: text/html\r\n\r\n<p>buy now</p>\r\n"; // ~4.1 points of missing headers + HTML only
    let run = |return_path: &str, ip: &str, rcpt: &str| {
        let f = SessionFacts { peer_ip: ip.parse().unwrap(), helo: HELO.into(), tls: None };
        let r = vec![rcpt.to_string()];
        scanner.evaluate(&ScanInput { facts: &f, return_path, recipients: &r, message: spammy.as_bytes() }, Default::default())
    };
    let v = run("a@sender.example", "192.0.2.1", "x@other.example");
    assert!(v.score >= 4.0 && v.action == Action::Reject, "{v:?}");
    let v = run("a@sender.example", "192.0.2.1", "x@example.com");
    assert_eq!(v.action, Action::Quarantine, "the domain's policy overrides [policy]");
    let v = run("a@sender.example", "198.51.100.9", "x@example.com");
    assert_eq!((v.action, v.listed.as_deref()), (Action::Reject, Some("block list: 198.51.100.0/24")));
    let v = run("bulk@mail.spammer.example", "192.0.2.1", "x@example.com");
    assert_eq!(v.action, Action::Reject);
    let v = run("partner@sender.example", "192.0.2.1", "x@other.example");
    assert_eq!((v.action, v.symbols.len()), (Action::Accept, 0), "allow list short-circuits");
}

/// A message with a base64 ZIP attachment made of `files` (name, content, encrypted).
fn with_zip(files: &[(&str, &[u8], bool)]) -> String {
    use rempart_scanner::attachments::samples;
    use std::fmt::Write;
    let plain: Vec<(&str, &[u8])> = files.iter().map(|(n, c, _)| (*n, *c)).collect();
    let zip = if files.iter().any(|f| f.2) { samples::encrypted_zip(&plain) } else { samples::zip(&plain) };
    let mut base64 = String::new();
    for chunk in to_base64(&zip).as_bytes().chunks(76) {
        let _ = write!(base64, "{}\r\n", String::from_utf8_lossy(chunk));
    }
    format!(
        "{HEADERS}MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n--b\r\nContent-Type: application/zip\r\nContent-Disposition: attachment; filename=\"documents.zip\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{base64}--b--\r\n"
    )
}

/// Standard base64 (the tests need no crate for it).
fn to_base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn archive_symbols() {
    let executable = with_zip(&[("readme.txt", b"hello", false), ("Invoice_2026.js", b"WScript", false)]);
    hits("MIME_ARCHIVE_EXECUTABLE", &executable, HELO);
    misses("MIME_ENCRYPTED_ARCHIVE", &executable, HELO);
    let documents = with_zip(&[("report.pdf", b"%PDF-1.7", false), ("photo.jpg", b"JFIF", false)]);
    misses("MIME_ARCHIVE_EXECUTABLE", &documents, HELO);
    misses("MIME_ARCHIVE_IN_ARCHIVE", &documents, HELO);
    hits("MIME_ENCRYPTED_ARCHIVE", &with_zip(&[("scan.pdf", b"....", true)]), HELO);
    hits("MIME_ARCHIVE_IN_ARCHIVE", &with_zip(&[("inner.rar", b"Rar!", false)]), HELO);
}

#[test]
fn hidden_and_empty_text_symbols() {
    let salt = "lorem ipsum dolor sit amet ".repeat(10);
    hits("HTML_HIDDEN_TEXT", &html_only("", &format!("<p>Buy now</p><div style=\"display:none\">{salt}</div>")), HELO);
    let split = "<p>P<span style=\"font-size:0\">x</span>a<span style=\"font-size:0\">x</span>s<span style=\"font-size:0\">x</span>s<span style=\"font-size:0\">x</span>w<span style=\"font-size:0\">x</span>ord</p>";
    hits("HTML_HIDDEN_TEXT", &html_only("", split), HELO);
    let preheader =
        "<div style=\"display:none;max-height:0\">Your November statement is ready</div><p>Hello, your statement is attached.</p>";
    misses("HTML_HIDDEN_TEXT", &html_only("", preheader), HELO);

    hits("TEXT_ZERO_WIDTH", &plain(HEADERS, "Your pa\u{200B}ss\u{200B}wo\u{200C}rd expires today"), HELO);
    misses("TEXT_ZERO_WIDTH", &plain(HEADERS, "Your password expires today \u{200C} \u{200C} \u{200C}"), HELO);

    hits("EMPTY_MESSAGE", &plain(HEADERS, "\r\n  \r\n"), HELO);
    misses("EMPTY_MESSAGE", &plain(HEADERS, "Hello"), HELO);
    misses("EMPTY_MESSAGE", &html_only("", "<img src=\"cid:scan\">"), HELO);
}

#[test]
fn impersonation_symbols() {
    // The tests' recipient is bob@example.com.
    let from = |from: &str, extra: &str| {
        plain(
            &HEADERS.replace("From: Alice <alice@sender.example>", &format!("From: {from}\r\n{extra}")).replace("\r\n\r\n", "\r\n"),
            "Please see below.",
        )
    };
    hits("FROM_NAME_RCPT_DOMAIN", &from("\"example.com IT Support\" <helpdesk@evil.example>", ""), HELO);
    hits("FROM_NAME_RCPT_DOMAIN", &from("\"admin@example.com\" <x@evil.example>", ""), HELO);
    misses("FROM_NAME_RCPT_DOMAIN", &from("\"example.com IT Support\" <helpdesk@example.com>", ""), HELO);
    misses("FROM_NAME_RCPT_DOMAIN", &from("\"notexample.com news\" <news@notexample.com>", ""), HELO);

    hits("REPLYTO_OUT_RCPT_DOMAIN", &from("CEO <ceo@example.com>", "Reply-To: ceo.private@freemail.example\r\n"), HELO);
    misses("REPLYTO_OUT_RCPT_DOMAIN", &from("CEO <ceo@example.com>", "Reply-To: assistant@example.com\r\n"), HELO);
    misses("REPLYTO_OUT_RCPT_DOMAIN", &from("Alice <alice@sender.example>", "Reply-To: alice@elsewhere.example\r\n"), HELO);

    hits("FROM_NAME_BRAND", &from("\"PayPal Service\" <service@paypa1-secure.example>", ""), HELO);
    hits("FROM_NAME_BRAND", &from("\"Microsoft 365\" <no-reply@m365-alerts.example>", ""), HELO);
    misses("FROM_NAME_BRAND", &from("\"PayPal\" <service@paypal.fr>", ""), HELO);
    misses("FROM_NAME_BRAND", &from("\"Amazon.com\" <store-news@amazon.com>", ""), HELO);
    misses("FROM_NAME_BRAND", &from("\"Upside Travel\" <hello@upside.example>", ""), HELO);

    hits("MIXED_SCRIPT_WORD", &from("\"\u{0420}aypal\" <x@sender.example>", ""), HELO);
    misses("MIXED_SCRIPT_WORD", &from("\"Дмитрий Société\" <x@sender.example>", ""), HELO);

    let link = |href: &str| html_only("", &format!("<p>Your account</p><a href=\"{href}\">sign in</a>"));
    hits("MIXED_SCRIPT_DOMAIN", &link("https://xn--pypal-4ve.com/login"), HELO);
    misses("MIXED_SCRIPT_DOMAIN", &link("https://xn--80ak6aa92e.com/"), HELO);
    misses("MIXED_SCRIPT_DOMAIN", &link("https://paypal.com/"), HELO);
}

#[test]
fn brands_come_from_the_configuration_too() {
    let mut config = Config::default();
    config.scanner.brands.push(rempart_model::config::BrandConfig { name: "Acme Bank".into(), domains: vec!["acmebank.example".into()] });
    let message = plain(&HEADERS.replace("Alice <alice@sender.example>", "\"Acme Bank Alerts\" <alerts@acme-alerts.example>"), "Hi");
    let found: Vec<String> = scan_with(&config, &message, HELO).symbols.into_iter().map(|s| s.name).collect();
    assert!(found.iter().any(|n| n == "FROM_NAME_BRAND"), "{found:?}");
    misses("FROM_NAME_BRAND", &message, HELO);
}

#[test]
fn wording_symbols() {
    let body = |text: &str| plain(HEADERS, text);
    for (symbol, text) in [
        ("BODY_CLICK_HERE", "To see your gift, click here."),
        ("BODY_OPT_OUT", "If you no longer wish to receive these offers, reply."),
        ("BODY_GUARANTEE", "Results are guaranteed, with no obligation."),
        ("BODY_URGENCY", "Act now: this offer ends at midnight."),
        ("BODY_ACCOUNT_ALERT", "Please verify your account within the day or it will be closed."),
        ("BODY_DEAR_GENERIC", "Dear customer, we have news."),
        ("BODY_CRYPTO", "Your airdrop is ready: connect wallet to claim it."),
        ("BODY_ADVANCE_FEE", "I am the barrister of your late relative; you are the next of kin."),
        ("BODY_EASY_MONEY", "Work from home and earn up to 500 a day."),
        ("BODY_MONEY", "The sum of 10,000,000 US$ is waiting."),
        ("BODY_SHOUTING", "THIS AMAZING OFFER WILL CHANGE YOUR LIFE FOREVER, ORDER TODAY WHILE STOCKS LAST"),
    ] {
        hits(symbol, &body(text), HELO);
        misses(symbol, &body("Hello Bob,\r\nthe minutes of Tuesday's meeting are attached.\r\n"), HELO);
    }
    // Words read as the reader sees them: not in hidden text, any case.
    hits("BODY_CLICK_HERE", &html_only("", "<p>CLICK HERE for more</p>"), HELO);
    misses("BODY_CLICK_HERE", &html_only("", "<p>Hello</p><div style=\"display:none\">click here</div>"), HELO);
    // A few capitals are not shouting.
    misses("BODY_SHOUTING", &body("The NASA and ESA teams met at CERN about the LHC; many other words follow here, calmly written."), HELO);

    hits("QUOTED_REPLY", &body("Sounds good.\r\n\r\n> Shall we meet at ten?\r\n> Bob\r\n"), HELO);
    hits("QUOTED_REPLY", &body("Yes.\r\n\r\nOn Monday, Bob wrote:\r\nShall we meet?\r\n"), HELO);
    misses("QUOTED_REPLY", &body("Shall we meet at ten?\r\n"), HELO);
    hits("SIGNATURE_SEPARATOR", &body("See you.\r\n-- \r\nAlice\r\n"), HELO);
    misses("SIGNATURE_SEPARATOR", &body("See you.\r\nAlice\r\n"), HELO);
}

#[test]
fn bulk_and_conversation_header_symbols() {
    let with = |extra: &str| plain(&format!("{HEADERS}{extra}"), "x\r\n");
    hits("REPLY_IN_THREAD", &with("In-Reply-To: <0@bob.example>\r\n"), HELO);
    hits("REPLY_IN_THREAD", &with("References: <0@bob.example>\r\n"), HELO);
    misses("REPLY_IN_THREAD", &with(""), HELO);
    hits("MAILING_LIST", &with("List-Id: Team talk <team.lists.example>\r\n"), HELO);
    misses("MAILING_LIST", &with("List-Unsubscribe: <mailto:u@bulk.example>\r\n"), HELO);
    hits("MUA_PERSONAL", &with("User-Agent: Mutt/2.2.12\r\n"), HELO);
    hits("MUA_PERSONAL", &with("X-Mailer: Apple Mail (2.3774)\r\n"), HELO);
    misses("MUA_PERSONAL", &with("X-Mailer: MassMailer Pro 9\r\n"), HELO);
    hits("PRIORITY_HIGH", &with("X-Priority: 1 (Highest)\r\n"), HELO);
    hits("PRIORITY_HIGH", &with("X-MSMail-Priority: High\r\n"), HELO);
    misses("PRIORITY_HIGH", &with("X-Priority: 3 (Normal)\r\n"), HELO);
    let headers = |from: &str, to: &str, subject: &str| {
        plain(
            &HEADERS
                .replace("From: Alice <alice@sender.example>", from)
                .replace("To: bob@example.com", to)
                .replace("Subject: Meeting notes", subject),
            "x\r\n",
        )
    };
    let (from, to, subject) = ("From: Alice <alice@sender.example>", "To: bob@example.com", "Subject: Meeting notes");
    hits("TO_UNDISCLOSED", &headers(from, "To: undisclosed-recipients:;", subject), HELO);
    misses("TO_UNDISCLOSED", &headers(from, to, subject), HELO);
    hits("FROM_LOCAL_DIGITS", &headers("From: Deals <promo48213@bulk.example>", to, subject), HELO);
    misses("FROM_LOCAL_DIGITS", &headers("From: <12345@numbers.example>", to, subject), HELO);
    misses("FROM_LOCAL_DIGITS", &headers("From: <alice2@sender.example>", to, subject), HELO);
    hits("SUBJ_EXCLAIM", &headers(from, to, "Subject: You won!"), HELO);
    hits("SUBJ_MONEY", &headers(from, to, "Subject: Free gift for you"), HELO);
    hits("SUBJ_MONEY", &headers(from, to, "Subject: Save $500 today"), HELO);
    misses("SUBJ_MONEY", &headers(from, to, "Subject: Freedom of speech"), HELO);

    let base64 = format!(
        "{HEADERS}MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nSGVsbG8gQm9i\r\n"
    );
    hits("MIME_BASE64_TEXT", &base64, HELO);
    misses("MIME_BASE64_TEXT", &plain(HEADERS, "Hello Bob\r\n"), HELO);
}

#[test]
fn a_link_calling_to_act_in_a_brands_name_must_lead_to_the_brand() {
    let link = |text: &str, href: &str| html_only("", &format!("<p>Hello</p><a href=\"{href}\">{text}</a>"));
    hits("LINK_TEXT_BRAND", &link("Sign in to Microsoft", "https://login-m365.evil.example/"), HELO);
    hits("LINK_TEXT_BRAND", &link("PayPal account", "http://paypa1.example/x"), HELO);
    misses("LINK_TEXT_BRAND", &link("Sign in to Microsoft", "https://login.microsoftonline.com/"), HELO);
    // A headline about a brand asks nothing of the reader.
    misses("LINK_TEXT_BRAND", &link("Microsoft ships its new operating system", "https://news.example/ms"), HELO);
}

#[test]
fn advertising_marks() {
    let subject = |s: &str| plain(&HEADERS.replace("Subject: Meeting notes", s), "x\r\n");
    hits("SUBJ_ADV", &subject("Subject: ADV: Interest rates are down"), HELO);
    misses("SUBJ_ADV", &subject("Subject: Advice on the budget"), HELO);
    hits("SUBJ_SPACED_CODE", &subject("Subject: Call me                    93910"), HELO);
    misses("SUBJ_SPACED_CODE", &subject("Subject: Call me at ten"), HELO);
    hits("BODY_EXCLAIM", &plain(HEADERS, "Amazing!! Really!! Do not wait!!\r\n"), HELO);
    misses("BODY_EXCLAIM", &plain(HEADERS, "Great news!\r\n"), HELO);
    hits("BODY_SPAM_GOODS", &plain(HEADERS, "Refinance now at the lowest rate in years.\r\n"), HELO);
    misses("BODY_SPAM_GOODS", &plain(HEADERS, "The minutes are attached.\r\n"), HELO);
}

#[test]
fn forged_sender_headers() {
    let with = |from: &str, subject: &str, rest: &str| {
        let headers = HEADERS.replace("From: Alice <alice@sender.example>", from).replace("Subject: Meeting notes", subject);
        plain(&format!("{headers}{rest}"), "x\r\n")
    };
    let (from, subject) = ("From: Alice <alice@sender.example>", "Subject: Meeting notes");
    hits("FROM_DOMAIN_INVALID", &with("From: Correios <avisos@correios>", subject, ""), HELO);
    hits("FROM_DOMAIN_INVALID", &with("From: Receita <taxa@%comunicacoes.com>", subject, ""), HELO);
    misses("FROM_DOMAIN_INVALID", &with(from, subject, ""), HELO);
    hits("SUBJ_HAS_RCPT", &with(from, "Subject: bob@example.com, your parcel is waiting", ""), HELO);
    misses("SUBJ_HAS_RCPT", &with(from, "Subject: Bob, the minutes", ""), HELO);
    hits("SUBJ_STYLED_LETTERS", &with(from, "Subject: 𝐑𝐄𝐒𝐓𝐀𝐑𝐓 𝐘𝐎𝐔𝐑 𝐌𝐄𝐌𝐁𝐄𝐑𝐒𝐇𝐈𝐏", ""), HELO);
    hits("SUBJ_STYLED_LETTERS", &with("From: \"𝓝𝓮𝓽𝓯𝓵𝓲𝔁\" <n@sender.example>", subject, ""), HELO);
    misses("SUBJ_STYLED_LETTERS", &with(from, "Subject: Café à Noël", ""), HELO);
    let outlook_id = |mailer: &str| {
        with(from, subject, mailer).replace("Message-ID: <1@sender.example>", "Message-ID: <000062eb5490$000006b5$0000187d@kbrpmu>")
    };
    hits("MSGID_FORGED_OUTLOOK", &outlook_id(""), HELO);
    hits("MSGID_FORGED_OUTLOOK", &outlook_id("X-Mailer: StormPost 1.0\r\n"), HELO);
    misses("MSGID_FORGED_OUTLOOK", &outlook_id("X-Mailer: Microsoft Outlook Express 6.00.2600.0000\r\n"), HELO);
    misses("MSGID_FORGED_OUTLOOK", &with(from, subject, ""), HELO);
    let dated = |date: &str| with(from, subject, "").replace("Date: Mon, 23 Nov 2026 10:00:00 +0000", date);
    hits("DATE_NO_TIMEZONE", &dated("Date: Tue, 17 Sep 2002 11:59:30 +-0500"), HELO);
    hits("DATE_NO_TIMEZONE", &dated("Date: 03 Jul 01 12:47:50 AM"), HELO);
    misses("DATE_NO_TIMEZONE", &dated("Date: Mon, 23 Nov 2026 10:00:00 GMT"), HELO);
    misses("DATE_NO_TIMEZONE", &dated("Date: Mon, 23 Nov 2026 10:00:00 -0500 (EST)"), HELO);
}

#[test]
fn bulk_mail_that_says_what_it_is() {
    let body = |text: &str| plain(HEADERS, text);
    hits("BODY_BULK_DISCLAIMER", &body("This is a one-time mailing; no removal is necessary."), HELO);
    hits("BODY_BULK_DISCLAIMER", &body("Sent in compliance with bill S. 1618 Title III."), HELO);
    misses("BODY_BULK_DISCLAIMER", &body("The minutes of Tuesday's meeting are attached."), HELO);
    hits("BODY_NEWSLETTER", &body("In this issue: the new release. You are subscribed to Weekly News as bob@example.com."), HELO);
    misses("BODY_NEWSLETTER", &body("The minutes of Tuesday's meeting are attached."), HELO);
}

#[test]
fn links_to_free_hosting() {
    hits("URI_FREE_HOSTING", &html_only("", "<a href=\"https://login-portal.web.app/x\">Open</a>"), HELO);
    hits("URI_FREE_HOSTING", &plain(HEADERS, "Reset it here: https://adam6-488708.firebaseapp.com/__/auth/action?mode=reset\r\n"), HELO);
    misses("URI_FREE_HOSTING", &html_only("", "<a href=\"https://www.example.com/\">Our site</a>"), HELO);
}
