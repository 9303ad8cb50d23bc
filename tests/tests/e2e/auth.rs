//! DNS-based authentication against a real DNS server started by the test: the RFC
//! 7208 SPF test suite (from ../shared/testdata), every SPF symbol hit and missed, and
//! `rempart score --resolver`.

use std::net::IpAddr;
use std::process::Command;

use mail_auth::SpfResult;
use rempart_model::config::DnsConfig;
use rempart_model::{Config, SessionFacts};
use rempart_scanner::dns::Dns;
use rempart_scanner::{ScanInput, Scanner};
use rempart_tests::dns::{DnsServer, Rr, Zone};

fn dns_config(server: &DnsServer) -> DnsConfig {
    DnsConfig { servers: vec![server.addr], timeout_ms: 1000, attempts: 1, offline: false }
}

fn result_name(r: &SpfResult) -> &'static str {
    match r {
        SpfResult::Pass => "pass",
        SpfResult::Fail => "fail",
        SpfResult::SoftFail => "softfail",
        SpfResult::Neutral => "neutral",
        SpfResult::TempError => "temperror",
        SpfResult::PermError => "permerror",
        SpfResult::None => "none",
    }
}

async fn run_suite(file: &str) -> (usize, usize, Vec<String>) {
    let Some(dir) = rempart_tests::shared_dir("testdata/spf") else { return (0, 0, vec![]) };
    let suite: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join(file)).unwrap()).unwrap();
    let server = DnsServer::start(Zone::new());
    let (mut passed, mut total, mut failures) = (0, 0, Vec::new());
    for scenario in suite["scenarios"].as_array().unwrap() {
        server.set_zone(Zone::from_spf_suite(&scenario["zone"]));
        // A fresh resolver per scenario: no answer cached from the previous zone.
        let dns = Dns::new(&dns_config(&server)).unwrap();
        for test in scenario["tests"].as_array().unwrap() {
            total += 1;
            let ip: IpAddr = test["host"].as_str().unwrap().parse().unwrap();
            let helo = test["helo"].as_str().unwrap();
            let mail_from = test["mailfrom"].as_str().unwrap();
            // The null sender is checked as postmaster@HELO (RFC 7208 §2.4).
            let result = if mail_from.is_empty() {
                dns.check_helo(ip, helo, "receiver.test").await
            } else {
                dns.check_mail_from(ip, helo, mail_from, "receiver.test").await
            }
            .map(|output| output.result());
            let got = result.as_ref().map_or("offline", result_name);
            let expected: Vec<&str> = test["result"].as_array().unwrap().iter().filter_map(|r| r.as_str()).collect();
            if expected.contains(&got) {
                passed += 1;
            } else {
                failures.push(format!("{}: got {got}, expected {expected:?}", test["name"].as_str().unwrap_or("?")));
            }
        }
    }
    (passed, total, failures)
}

#[tokio::test]
async fn rfc7208_spf_test_suite() {
    let (passed, total, failures) = run_suite("rfc7208-tests.json").await;
    if total == 0 {
        return;
    }
    let rate = passed as f64 / total as f64;
    eprintln!("RFC 7208 suite: {passed}/{total} ({:.1} %); failing: {failures:#?}", rate * 100.0);
    // The issue's bar: 98 % (203 of 203 when this was written).
    assert!(passed * 100 >= total * 98, "{passed}/{total} passed; failing: {failures:#?}");
}

/// A zone for the symbol tests: sender domains with each kind of SPF record.
fn spf_zone() -> Zone {
    let mut z = Zone::new();
    z.add("pass.test", Rr::txt("v=spf1 ip4:192.0.2.0/24 -all"))
        .add("fail.test", Rr::txt("v=spf1 ip4:198.51.100.1 -all"))
        .add("softfail.test", Rr::txt("v=spf1 ~all"))
        .add("neutral.test", Rr::txt("v=spf1 ?all"))
        .add("none.test", Rr::A("192.0.2.99".parse().unwrap()))
        .add("broken.test", Rr::txt("v=spf1 ip4:not-an-ip -all"))
        .add("down.test", Rr::Timeout)
        .add("mx.pass.test", Rr::txt("v=spf1 a -all"))
        .add("mx.pass.test", Rr::A("192.0.2.10".parse().unwrap()))
        .add("mx.fail.test", Rr::txt("v=spf1 -all"));
    z
}

async fn symbols(scanner: &Scanner, mail_from: &str, helo: &str) -> Vec<String> {
    let facts = SessionFacts { peer_ip: "192.0.2.10".parse().unwrap(), helo: helo.into(), tls: None };
    let rcpt = vec!["user@example.com".to_string()];
    let message = b"From: a@b.test\r\nTo: user@example.com\r\nSubject: hi\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@b.test>\r\n\r\nhi\r\n";
    let v = scanner.scan(&ScanInput { facts: &facts, return_path: mail_from, recipients: &rcpt, message }).await;
    assert!(!v.offline);
    v.symbols.into_iter().map(|s| s.name).collect()
}

#[tokio::test]
async fn every_spf_symbol_hits_and_misses() {
    let server = DnsServer::start(spf_zone());
    let config = Config { dns: dns_config(&server), ..Default::default() };
    let scanner = Scanner::new(&config).unwrap();
    for (domain, symbol) in [
        ("pass.test", "SPF_PASS"),
        ("fail.test", "SPF_FAIL"),
        ("softfail.test", "SPF_SOFTFAIL"),
        ("neutral.test", "SPF_NEUTRAL"),
        ("none.test", "SPF_NONE"),
        ("broken.test", "T_SPF_PERMERROR"),
        ("down.test", "T_SPF_TEMPERROR"),
    ] {
        let hit = symbols(&scanner, &format!("someone@{domain}"), "mx.pass.test").await;
        assert!(hit.contains(&symbol.to_string()), "{domain}: {symbol} expected in {hit:?}");
        let other = if domain == "pass.test" { "fail.test" } else { "pass.test" };
        let miss = symbols(&scanner, &format!("someone@{other}"), "mx.pass.test").await;
        assert!(!miss.contains(&symbol.to_string()), "{other}: {symbol} not expected in {miss:?}");
    }
    let helo_pass = symbols(&scanner, "someone@pass.test", "mx.pass.test").await;
    assert!(helo_pass.contains(&"SPF_HELO_PASS".to_string()), "{helo_pass:?}");
    let helo_fail = symbols(&scanner, "someone@pass.test", "mx.fail.test").await;
    assert!(helo_fail.contains(&"SPF_HELO_FAIL".to_string()) && !helo_fail.contains(&"SPF_HELO_PASS".to_string()), "{helo_fail:?}");
    let helo_none = symbols(&scanner, "someone@pass.test", "nothing.test").await;
    assert!(helo_none.contains(&"SPF_HELO_NONE".to_string()), "{helo_none:?}");
    let helo_temp = symbols(&scanner, "someone@pass.test", "down.test").await;
    assert!(helo_temp.contains(&"T_SPF_HELO_TEMPERROR".to_string()), "{helo_temp:?}");
    // An IP literal in HELO is not an SPF identity; the null sender has no MAIL FROM check.
    let literal = symbols(&scanner, "", "[192.0.2.10]").await;
    assert!(!literal.iter().any(|s| s.starts_with("SPF_")), "{literal:?}");
}

#[test]
fn score_cli_uses_the_given_resolver() {
    let server = DnsServer::start(spf_zone());
    let out = Command::new(rempart_tests::gateway::rempart_bin())
        .args([
            "score",
            "--json",
            "--resolver",
            &server.addr.to_string(),
            "--ip",
            "192.0.2.10",
            "--helo",
            "mx.pass.test",
            "--mail-from",
            "a@fail.test",
        ])
        .arg("-")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["offline"], false);
    let names: Vec<&str> = doc["symbols"].as_array().unwrap().iter().filter_map(|s| s["name"].as_str()).collect();
    assert!(names.contains(&"SPF_FAIL") && names.contains(&"SPF_HELO_PASS"), "{names:?}");
}

mod dkim {
    use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256, SigningKey};
    use mail_auth::common::headers::HeaderWriter;
    use mail_auth::dkim::DkimSigner;
    use rustls_pki_types::PrivateKeyDer;
    use rustls_pki_types::pem::PemObject;

    use super::*;

    fn base64(bytes: &[u8]) -> String {
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = u32::from(chunk[0]) << 16 | u32::from(*chunk.get(1).unwrap_or(&0)) << 8 | u32::from(*chunk.get(2).unwrap_or(&0));
            for i in 0..4 {
                out.push(if i <= chunk.len() { T[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' });
            }
        }
        out
    }

    const MESSAGE: &str = "From: Alice <alice@signer.test>\r\nTo: user@example.com\r\nSubject: Quarterly report\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <q3@signer.test>\r\n\r\nThe figures are attached.\r\n";

    fn sign<K: SigningKey<Hasher = Sha256>>(key: K, domain: &str, selector: &str, message: &str) -> String {
        let signature = DkimSigner::from_key(key)
            .domain(domain)
            .selector(selector)
            .headers(["From", "To", "Subject", "Date", "Message-ID"])
            .sign(message.as_bytes())
            .expect("signing");
        format!("{}{message}", signature.to_header())
    }

    struct Keys {
        zone: Zone,
        ed25519_pkcs8: Vec<u8>,
        rsa_pem: Vec<u8>,
    }

    /// Real keys: Ed25519 from ring, RSA-2048 from openssl; public halves in DNS.
    fn keys() -> Keys {
        let ed25519_pkcs8 = Ed25519Key::generate_pkcs8().unwrap();
        let ed_public = Ed25519Key::from_pkcs8_der(&ed25519_pkcs8).unwrap().public_key();
        let rsa = Command::new("openssl").args(["genrsa", "2048"]).output().expect("openssl (Debian) generates the RSA key");
        assert!(rsa.status.success());
        let rsa_pem = rsa.stdout;
        let rsa_public = RsaKey::<Sha256>::from_key_der(PrivateKeyDer::from_pem_slice(&rsa_pem).unwrap()).unwrap().public_key();
        let mut zone = Zone::new();
        zone.add("ed._domainkey.signer.test", Rr::txt(&format!("v=DKIM1; k=ed25519; p={}", base64(&ed_public))))
            .add("rsa._domainkey.signer.test", Rr::txt(&format!("v=DKIM1; k=rsa; p={}", base64(&rsa_public))))
            .add("ed._domainkey.thirdparty.test", Rr::txt(&format!("v=DKIM1; k=ed25519; p={}", base64(&ed_public))))
            .add("_dmarc.signer.test", Rr::txt("v=DMARC1; p=reject"))
            .add("_dmarc.quarantine.test", Rr::txt("v=DMARC1; p=quarantine"))
            .add("_dmarc.relaxed.test", Rr::txt("v=DMARC1; p=none"))
            .add("signer.test", Rr::txt("v=spf1 -all"))
            .add("other.test", Rr::txt("v=spf1 -all"));
        Keys { zone, ed25519_pkcs8, rsa_pem }
    }

    async fn verdict(server: &DnsServer, message: &str, return_path: &str) -> rempart_model::Verdict {
        let scanner = Scanner::new(&Config { dns: dns_config(server), ..Default::default() }).unwrap();
        let facts = SessionFacts { peer_ip: "192.0.2.10".parse().unwrap(), helo: "mx.other.test".into(), tls: None };
        let rcpt = vec!["user@example.com".to_string()];
        scanner.scan(&ScanInput { facts: &facts, return_path, recipients: &rcpt, message: message.as_bytes() }).await
    }

    fn names(v: &rempart_model::Verdict) -> Vec<&str> {
        v.symbols.iter().map(|s| s.name.as_str()).collect()
    }

    #[tokio::test]
    async fn valid_tampered_and_third_party_signatures() {
        let k = keys();
        let server = DnsServer::start(k.zone);
        for (label, signed) in [
            ("ed25519", sign(Ed25519Key::from_pkcs8_der(&k.ed25519_pkcs8).unwrap(), "signer.test", "ed", MESSAGE)),
            (
                "rsa-2048",
                sign(
                    RsaKey::<Sha256>::from_key_der(PrivateKeyDer::from_pem_slice(&k.rsa_pem).unwrap()).unwrap(),
                    "signer.test",
                    "rsa",
                    MESSAGE,
                ),
            ),
        ] {
            let v = verdict(&server, &signed, "bounces@other.test").await;
            let n = names(&v);
            for expected in ["DKIM_SIGNED", "DKIM_VALID", "DKIM_VALID_AU", "DMARC_PASS"] {
                assert!(n.contains(&expected), "{label}: {expected} expected in {n:?}");
            }
            assert!(!n.contains(&"DKIM_INVALID"), "{label}: {n:?}");
            let results = v.edits.add_top.first().map(String::as_str).unwrap_or_default();
            assert!(
                results.starts_with("Authentication-Results: localhost;")
                    && results.contains("dkim=pass")
                    && results.contains("dmarc=pass"),
                "{results}"
            );

            // Tampered: one word of the body changed after signing.
            let tampered = signed.replace("figures are attached", "figures are attacked");
            let v = verdict(&server, &tampered, "bounces@other.test").await;
            let n = names(&v);
            assert!(n.contains(&"DKIM_SIGNED") && n.contains(&"DKIM_INVALID") && !n.contains(&"DKIM_VALID"), "{label} tampered: {n:?}");
            assert!(n.contains(&"DMARC_REJECT") && n.contains(&"SPF_FAIL"), "{label} tampered: DMARC p=reject applies: {n:?}");
        }
        // A valid signature from another domain: DKIM_VALID but not DKIM_VALID_AU.
        let third = sign(Ed25519Key::from_pkcs8_der(&k.ed25519_pkcs8).unwrap(), "thirdparty.test", "ed", MESSAGE);
        let n = names(&verdict(&server, &third, "bounces@other.test").await).into_iter().map(String::from).collect::<Vec<_>>();
        assert!(n.contains(&"DKIM_VALID".into()) && !n.contains(&"DKIM_VALID_AU".into()), "{n:?}");
        // Unsigned: none of the DKIM symbols; DMARC policy by the From domain.
        for (from, expected) in [("quarantine.test", "DMARC_QUAR"), ("relaxed.test", "DMARC_NONE"), ("nodmarc.test", "DMARC_MISSING")] {
            let message = MESSAGE.replace("alice@signer.test", &format!("alice@{from}"));
            let v = verdict(&server, &message, "bounces@other.test").await;
            let n = names(&v);
            assert!(n.contains(&expected) && !n.iter().any(|s| s.starts_with("DKIM_")), "{from}: {n:?}");
        }
    }

    /// An ARC set sealed by a forwarder validates (ARC_VALID); a message changed after
    /// sealing does not (ARC_INVALID).
    #[tokio::test]
    async fn arc_chains() {
        use mail_auth::arc::ArcSealer;
        use mail_auth::{AuthenticatedMessage, AuthenticationResults};
        let mut k = keys();
        let rsa_public = RsaKey::<Sha256>::from_key_der(PrivateKeyDer::from_pem_slice(&k.rsa_pem).unwrap()).unwrap().public_key();
        k.zone.add("arc._domainkey.forwarder.test", Rr::txt(&format!("v=DKIM1; k=rsa; p={}", base64(&rsa_public))));
        let server = DnsServer::start(k.zone);
        let dns = Dns::new(&dns_config(&server)).unwrap();
        let auth = dns.authenticator().unwrap();
        let signed = sign(Ed25519Key::from_pkcs8_der(&k.ed25519_pkcs8).unwrap(), "signer.test", "ed", MESSAGE);
        let parsed = AuthenticatedMessage::parse(signed.as_bytes()).unwrap();
        let arc = auth.verify_arc(&parsed).await;
        let dkim = auth.verify_dkim(&parsed).await;
        let results = AuthenticationResults::new("forwarder.test").with_dkim_results(&dkim, "alice@signer.test");
        let key = RsaKey::<Sha256>::from_key_der(PrivateKeyDer::from_pem_slice(&k.rsa_pem).unwrap()).unwrap();
        let set = ArcSealer::from_key(key)
            .domain("forwarder.test")
            .selector("arc")
            .headers(["From", "To", "Subject", "DKIM-Signature"])
            .seal(&parsed, &results, &arc)
            .expect("sealing");
        let sealed = format!("{}{signed}", set.to_header());
        let n: Vec<String> = names(&verdict(&server, &sealed, "bounces@other.test").await).into_iter().map(String::from).collect();
        assert!(n.contains(&"ARC_VALID".to_string()) && !n.contains(&"ARC_INVALID".to_string()), "{n:?}");
        let tampered = sealed.replace("Quarterly report", "Quarterly rep0rt");
        let n: Vec<String> = names(&verdict(&server, &tampered, "bounces@other.test").await).into_iter().map(String::from).collect();
        assert!(n.contains(&"ARC_INVALID".to_string()) && !n.contains(&"ARC_VALID".to_string()), "{n:?}");
        let plain: Vec<String> = names(&verdict(&server, MESSAGE, "bounces@other.test").await).into_iter().map(String::from).collect();
        assert!(!plain.iter().any(|s| s.starts_with("ARC_")), "no ARC set, no ARC symbol: {plain:?}");
    }

    #[test]
    fn the_gateway_adds_authentication_results() {
        let k = keys();
        let server = DnsServer::start(k.zone);
        let sink = rempart_tests::Sink::start(rempart_tests::SinkMode::Accept);
        let gw = rempart_tests::Gateway::in_process(&format!(
            "[smtp]\nhostname = \"gw.test\"\n[[smtp.listener]]\naddress = \"{{listen}}\"\n[queue]\ndata_dir = \"{{data}}\"\n[dns]\nservers = [\"{}\"]\ntimeout_ms = 1000\n[[domain]]\nname = \"example.com\"\nroute = \"{}\"\n",
            server.addr,
            sink.route()
        ));
        let signed = sign(Ed25519Key::from_pkcs8_der(&k.ed25519_pkcs8).unwrap(), "signer.test", "ed", MESSAGE);
        let forged = format!("Authentication-Results: gw.test; dkim=pass header.d=bank.example\r\n{signed}");
        let mut c = rempart_tests::SmtpClient::connect(&gw.addr());
        c.ehlo();
        assert_eq!(c.send_mail("alice@signer.test", &["user@example.com"], &forged).code, 250);
        let got = sink.wait_for(1, std::time::Duration::from_secs(15));
        assert_eq!(got.len(), 1, "{}", gw.log());
        let text = String::from_utf8_lossy(&got[0].data).to_string();
        assert!(text.starts_with("Authentication-Results: gw.test;"), "{text}");
        assert!(text.contains("dkim=pass") && text.contains("spf=fail") && text.contains("dmarc=pass"), "{text}");
        assert!(!text.contains("bank.example"), "the forged header of ours is removed:\n{text}");
    }
}

/// Reverse DNS and the sender domain's records: each symbol hit and missed, and a
/// lookup that times out adds nothing.
#[tokio::test]
async fn reverse_dns_and_sender_domain_records() {
    let mut zone = Zone::new();
    zone.add("10.2.0.192.in-addr.arpa", Rr::Ptr("mail.good.test".into()))
        .add("mail.good.test", Rr::A("192.0.2.10".parse().unwrap()))
        .add("11.2.0.192.in-addr.arpa", Rr::Ptr("mail.liar.test".into()))
        .add("mail.liar.test", Rr::A("198.51.100.1".parse().unwrap()))
        .add("13.2.0.192.in-addr.arpa", Rr::Timeout)
        .add("withmx.test", Rr::Mx(10, "mail.good.test".into()))
        .add("witha.test", Rr::A("192.0.2.50".parse().unwrap()))
        .add("txtonly.test", Rr::txt("v=spf1 -all"))
        .add("slow.test", Rr::Timeout);
    let server = DnsServer::start(zone);
    let scanner = Scanner::new(&Config { dns: dns_config(&server), ..Default::default() }).unwrap();
    let run = |ip: &'static str, from: &'static str| {
        let scanner = &scanner;
        async move {
            let facts = SessionFacts { peer_ip: ip.parse().unwrap(), helo: "client.test".into(), tls: None };
            let rcpt = vec!["user@example.com".to_string()];
            let v =
                scanner.scan(&ScanInput { facts: &facts, return_path: from, recipients: &rcpt, message: b"Subject: x\r\n\r\nx\r\n" }).await;
            v.symbols.into_iter().map(|s| s.name).filter(|n| n.starts_with("RDNS") || n == "NO_DNS_FOR_FROM").collect::<Vec<_>>()
        }
    };
    assert_eq!(run("192.0.2.10", "a@withmx.test").await, Vec::<String>::new(), "confirmed PTR, domain with MX");
    assert_eq!(run("192.0.2.11", "a@witha.test").await, vec!["RDNS_UNCONFIRMED"]);
    assert_eq!(run("192.0.2.12", "a@withmx.test").await, vec!["RDNS_NONE"]);
    assert_eq!(run("192.0.2.10", "a@txtonly.test").await, vec!["NO_DNS_FOR_FROM"]);
    assert_eq!(run("192.0.2.10", "a@nowhere.test").await, vec!["NO_DNS_FOR_FROM"]);
    assert_eq!(run("192.0.2.13", "a@slow.test").await, Vec::<String>::new(), "timeouts make no symbol");
    assert_eq!(run("192.0.2.10", "").await, Vec::<String>::new(), "the null sender has no domain to check");
}

/// DNS lists: listed with the list's weight or the weight for its answer, allowlists
/// with negative weights, "we refuse your resolver" answers as *_BLOCKED, and
/// configuration errors named by field.
#[tokio::test]
async fn dns_block_and_allow_lists() {
    let mut zone = Zone::new();
    zone.add("10.2.0.192.bl.test", Rr::A("127.0.0.2".parse().unwrap()))
        .add("10.2.0.192.wl.test", Rr::A("127.0.10.1".parse().unwrap()))
        .add("11.2.0.192.bl.test", Rr::A("127.0.0.4".parse().unwrap()))
        .add("12.2.0.192.bl.test", Rr::A("127.255.255.254".parse().unwrap()))
        .add("14.2.0.192.bl.test", Rr::Timeout);
    let server = DnsServer::start(zone);
    let config: Config = toml::from_str(&format!(
        r#"
[dns]
servers = ["{}"]
timeout_ms = 1000
[[scanner.dnsbl]]
zone = "bl.test"
symbol = "RCVD_IN_TESTBL"
weight = 2.0
returns = {{ "127.0.0.4" = 5.0 }}
description = "Client listed in the test blocklist"
[[scanner.dnsbl]]
zone = "wl.test"
symbol = "RCVD_IN_DNSWL"
weight = -1.0
description = "Client listed in the test allowlist"
description_fr = "Client présent dans la liste blanche de test"
"#,
        server.addr
    ))
    .unwrap();
    let scanner = Scanner::new(&config).unwrap();
    let run = |ip: &'static str| {
        let scanner = &scanner;
        async move {
            let facts = SessionFacts { peer_ip: ip.parse().unwrap(), helo: "client.test".into(), tls: None };
            let rcpt = vec!["user@example.com".to_string()];
            let v =
                scanner.scan(&ScanInput { facts: &facts, return_path: "", recipients: &rcpt, message: b"Subject: x\r\n\r\nx\r\n" }).await;
            let mut found: Vec<(String, f64)> = v.symbols.into_iter().filter(|s| s.group == "dnsbl").map(|s| (s.name, s.score)).collect();
            found.sort_by(|a, b| a.0.cmp(&b.0));
            found
        }
    };
    assert_eq!(run("192.0.2.10").await, vec![("RCVD_IN_DNSWL".to_string(), -1.0), ("RCVD_IN_TESTBL".to_string(), 2.0)]);
    assert_eq!(run("192.0.2.11").await, vec![("RCVD_IN_TESTBL".to_string(), 5.0)], "weight for the answer");
    assert_eq!(run("192.0.2.12").await, vec![("RCVD_IN_TESTBL_BLOCKED".to_string(), 0.0)], "a refusal is not a listing");
    assert_eq!(run("192.0.2.13").await, vec![], "not listed");
    assert_eq!(run("192.0.2.14").await, vec![], "a timeout is not a listing");
    assert_eq!(run("10.1.2.3").await, vec![], "private addresses are not looked up");

    let mut bad = config.clone();
    bad.scanner.dns_lists[0].returns.insert("not-an-ip".into(), 1.0);
    assert_eq!(Scanner::new(&bad).err().map(|e| e.field), Some("scanner.dnsbl[0].returns".to_string()));
    let mut bad = config.clone();
    bad.scanner.dns_lists[1].symbol = "SPF_PASS".into();
    assert_eq!(Scanner::new(&bad).err().map(|e| e.field), Some("scanner.dnsbl[1].symbol".to_string()));
}

/// `rempart check-sender` against a well-configured and a badly configured sender.
#[test]
fn check_sender_diagnoses_and_advises() {
    let mut zone = Zone::new();
    zone.add("10.2.0.192.in-addr.arpa", Rr::Ptr("mail.good.test".into()))
        .add("mail.good.test", Rr::A("192.0.2.10".parse().unwrap()))
        .add("good.test", Rr::txt("v=spf1 ip4:192.0.2.10 -all"))
        .add("good.test", Rr::Mx(10, "mail.good.test".into()))
        .add("s1._domainkey.good.test", Rr::txt("v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="))
        .add("_dmarc.good.test", Rr::txt("v=DMARC1; p=reject; rua=mailto:dmarc@good.test"))
        .add("bad.test", Rr::txt("v=spf1 ip4:198.51.100.1 -all"))
        .add("11.2.0.192.bl.test", Rr::A("127.0.0.2".parse().unwrap()));
    let server = DnsServer::start(zone);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rempart.toml");
    std::fs::write(&config, format!("[dns]\nservers = [\"{}\"]\n[[scanner.dnsbl]]\nzone = \"bl.test\"\nsymbol = \"RCVD_IN_TESTBL\"\nweight = 3.0\ndescription = \"test list\"\n", server.addr)).unwrap();
    let run = |args: &[&str]| {
        Command::new(rempart_tests::gateway::rempart_bin()).arg("--config").arg(&config).arg("check-sender").args(args).output().unwrap()
    };
    let good = run(&["--domain", "good.test", "--ip", "192.0.2.10", "--selector", "s1", "--json"]);
    assert!(good.status.success(), "{}{}", String::from_utf8_lossy(&good.stdout), String::from_utf8_lossy(&good.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&good.stdout).unwrap();
    let statuses: Vec<(String, String)> = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["check"].as_str().unwrap().into(), c["status"].as_str().unwrap().into()))
        .collect();
    for check in ["ptr", "spf", "dkim", "dmarc", "mx", "dnsbl"] {
        assert!(statuses.contains(&(check.to_string(), "ok".to_string())), "{check} ok expected: {statuses:?}");
    }
    let bad = run(&["--domain", "bad.test", "--ip", "192.0.2.11", "--selector", "s1"]);
    assert_eq!(bad.status.code(), Some(1));
    let text = String::from_utf8_lossy(&bad.stdout);
    for expected in [
        "FAIL  ptr",
        "FAIL  spf",
        "SPF fail: bad.test forbids 192.0.2.11",
        "Add ip4:192.0.2.11",
        "FAIL  dkim",
        "warn  dmarc",
        "FAIL  mx",
        "FAIL  dnsbl",
    ] {
        assert!(text.contains(expected), "{expected:?} missing in:\n{text}");
    }
    assert!(String::from_utf8_lossy(&bad.stderr).contains("check(s) failed for bad.test"));
}

/// URI lists: link domains from HTML and text, listed or not, and URIBL_BLOCKED.
#[tokio::test]
async fn uri_block_lists() {
    let mut zone = Zone::new();
    zone.add("evil.test.uribl.test", Rr::A("127.0.0.2".parse().unwrap()))
        .add("spammy.example.uribl.test", Rr::A("127.0.0.4".parse().unwrap()))
        .add("refused.test.uribl.test", Rr::A("127.0.0.1".parse().unwrap()));
    let server = DnsServer::start(zone);
    let config: Config = toml::from_str(&format!(
        "[dns]\nservers = [\"{}\"]\n[[scanner.uribl]]\nzone = \"uribl.test\"\nsymbol = \"URIBL_BLACK\"\nweight = 3.0\nreturns = {{ \"127.0.0.4\" = 4.5 }}\nblocked = [\"127.0.0.1\"]\ndescription = \"Link domain listed in the test URI list\"\n",
        server.addr
    ))
    .unwrap();
    let scanner = Scanner::new(&config).unwrap();
    let run = |message: String| {
        let scanner = &scanner;
        async move {
            let facts = SessionFacts { peer_ip: "127.0.0.1".parse().unwrap(), helo: "client.test".into(), tls: None };
            let rcpt = vec!["user@example.com".to_string()];
            let v = scanner.scan(&ScanInput { facts: &facts, return_path: "", recipients: &rcpt, message: message.as_bytes() }).await;
            v.symbols
                .into_iter()
                .filter(|s| s.name.starts_with("URIBL"))
                .map(|s| (s.name, s.score, s.detail.unwrap_or_default()))
                .collect::<Vec<_>>()
        }
    };
    let html =
        "Content-Type: text/html\r\n\r\n<p>Hi</p><a href=\"http://www.EVIL.test/buy?x=1\">click</a><a href=\"https://ok.test\">ok</a>\r\n"
            .to_string();
    let hits = run(html).await;
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!((hits[0].0.as_str(), hits[0].1), ("URIBL_BLACK", 3.0));
    assert!(hits[0].2.contains("evil.test"), "{hits:?}");
    let text = run("Subject: x\r\n\r\nSee https://shop.spammy.example/deal now\r\n".to_string()).await;
    assert_eq!(
        text.iter().map(|h| (h.0.as_str(), h.1)).collect::<Vec<_>>(),
        vec![("URIBL_BLACK", 4.5)],
        "plain-text link, weight for the answer"
    );
    let refused = run("Subject: x\r\n\r\nhttp://refused.test/\r\n".to_string()).await;
    assert_eq!(refused.iter().map(|h| h.0.as_str()).collect::<Vec<_>>(), vec!["URIBL_BLOCKED"]);
    assert!(run("Subject: x\r\n\r\nNo links, just www.nothing-listed.test\r\n".to_string()).await.is_empty());
}

/// Mail::DKIM's corpus (62 DKIM messages with their key records): mail-auth's verdicts
/// against Mail::DKIM's expected ones (pass, fail, or "invalid" for the errors).
#[tokio::test]
async fn mail_dkim_corpus() {
    let Some(dir) = rempart_tests::shared_dir("testdata/dkim/mail-dkim") else { return };
    let zone: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("zone.json")).unwrap()).unwrap();
    let server = DnsServer::start(Zone::from_spf_suite(&zone));
    let dns = Dns::new(&dns_config(&server)).unwrap();
    let auth = dns.authenticator().unwrap();
    let expected = std::fs::read_to_string(dir.join("expected.tsv")).unwrap();
    let (mut agree, mut total, mut rfc8301, mut same_validity, mut differences) = (0, 0, 0, 0, Vec::new());
    for line in expected.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (file, want, skipped, kind) = (cols[0], cols[1], cols[2], cols[3]);
        if kind != "dkim" || skipped != "checked" {
            continue; // DomainKeys (historic) and the cases verifier.t itself skips
        }
        let raw = std::fs::read(dir.join(file)).unwrap();
        // The corpus is stored with LF line endings; SMTP gives CRLF.
        let mut text = Vec::with_capacity(raw.len() + raw.len() / 40);
        for (i, &b) in raw.iter().enumerate() {
            if b == b'\n' && (i == 0 || raw[i - 1] != b'\r') {
                text.push(b'\r');
            }
            text.push(b);
        }
        let Some(message) = mail_auth::AuthenticatedMessage::parse(&text) else {
            differences.push(format!("{file}: unparseable"));
            total += 1;
            continue;
        };
        let results = auth.verify_dkim(&message).await;
        let got = if results.iter().any(|r| r.result() == &mail_auth::DkimResult::Pass) {
            "pass"
        } else if results.iter().any(|r| matches!(r.result(), mail_auth::DkimResult::Fail(_))) {
            "fail"
        } else {
            "invalid"
        };
        total += 1;
        // RFC 8301 (2018) forbids accepting rsa-sha1 signatures; this corpus predates it.
        let sha1 = String::from_utf8_lossy(&raw).contains("a=rsa-sha1");
        // The symbols depend on valid or not; "fail" and "invalid" are both DKIM_INVALID.
        if got == want {
            agree += 1;
        } else if sha1 && want == "pass" {
            rfc8301 += 1;
        } else if (got == "pass") == (want == "pass") {
            same_validity += 1;
            differences.push(format!("{file}: got {got}, Mail::DKIM says {want} (both not valid)"));
        } else {
            differences.push(format!("{file}: got {got}, Mail::DKIM says {want}"));
        }
    }
    eprintln!(
        "Mail::DKIM corpus: {agree}/{total} same result, {same_validity} same validity with another error class, {rfc8301} rsa-sha1 refused per RFC 8301; differences: {differences:#?}"
    );
    assert!(total > 50, "only {total} cases read");
    // Valid-or-not must agree except for the RFC 8301 refusals and the two known cases
    // (a pre-standard ietf01 signature, and multiple_1's second signature).
    assert!(agree + same_validity + rfc8301 + 2 >= total, "{differences:#?}");
}
