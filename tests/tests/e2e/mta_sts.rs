//! Authenticated TLS on delivery by MX. MTA-STS (RFC 8461): policies served over HTTPS
//! by a local server, announced by TXT records of the test DNS server, and a second
//! Rempart with a certificate from a test CA as every outside domain's MX host; the
//! sending gateway trusts that CA as its system roots (SSL_CERT_FILE). DANE (RFC 7672):
//! TLSA records the test DNS server answers with the AD bit, as a validating resolver.

use std::time::Duration;

use rempart_tests::dns::{DnsServer, Rr, Zone};
use rempart_tests::https::HttpsServer;
use rempart_tests::{Gateway, Sink, SinkMode, wait_until};

use crate::submission::{PASSWORD, login, start_gateway, swaks};

fn policy(mode: &str, mx: &str) -> String {
    format!("version: STSv1\r\nmode: {mode}\r\nmx: {mx}\r\nmax_age: 86400\r\n")
}

/// One domain per case, each with its MX record, MTA-STS TXT record and policy:
/// - good.test: enforce, its MX named and its certificate valid → delivered;
/// - unlisted.test: enforce, its MX not named by the policy → waits (4.7.5);
/// - badcert.test: enforce, its MX named but the certificate is not for that name → waits;
/// - trial.test: testing, neither → delivered, the mismatch logged.
#[test]
fn mta_sts_policies_decide_where_and_how_mail_goes() {
    let certs = tempfile::tempdir().expect("tempdir");
    let names =
        ["mx.good.test", "mx.unlisted.test", "mta-sts.good.test", "mta-sts.unlisted.test", "mta-sts.badcert.test", "mta-sts.trial.test"];
    let (ca, cert, key) = rempart_tests::ca_signed_cert(certs.path(), &names);

    let outside_sink = Sink::start(SinkMode::Accept);
    let domains: String = ["good.test", "unlisted.test", "badcert.test", "trial.test"]
        .iter()
        .map(|d| format!("[[domain]]\nname = \"{d}\"\nroute = \"{}\"\n", outside_sink.route()))
        .collect();
    let mx = Gateway::start(&format!(
        "[smtp]\nhostname = \"mx.outside.test\"\n[[smtp.listener]]\naddress = \"{{listen}}\"\n[queue]\ndata_dir = \"{{data}}\"\n\
         [greylist]\nenabled = false\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n{domains}",
        cert.display(),
        key.display()
    ));

    let (good, unlisted, trial) =
        (policy("enforce", "mx.good.test"), policy("enforce", "mx.other.test"), policy("testing", "mx.other.test"));
    let badcert = policy("enforce", "mail.badcert.test");
    let https = HttpsServer::start(
        &cert,
        &key,
        &[
            ("mta-sts.good.test", &good),
            ("mta-sts.unlisted.test", &unlisted),
            ("mta-sts.badcert.test", &badcert),
            ("mta-sts.trial.test", &trial),
        ],
    );
    let localhost = || Rr::A("127.0.0.1".parse().expect("ip"));
    let mut zone = Zone::new();
    for (domain, host) in [
        ("good.test", "mx.good.test"),
        ("unlisted.test", "mx.unlisted.test"),
        ("badcert.test", "mail.badcert.test"),
        ("trial.test", "mail.trial.test"),
    ] {
        zone.add(domain, Rr::Mx(10, host.into()))
            .add(host, localhost())
            .add(&format!("_mta-sts.{domain}"), Rr::txt("v=STSv1; id=2026120401;"))
            .add(&format!("mta-sts.{domain}"), localhost());
    }
    let dns = DnsServer::start(zone);

    let ca_path = ca.display().to_string();
    let s = start_gateway(
        &format!(
            "[dns]\nservers = [\"{}\"]\ntimeout_ms = 1000\n[relay]\nmx_port = {}\nmta_sts_port = {}\nconnect_timeout = \"2s\"\n",
            dns.addr,
            mx.port,
            https.addr.port()
        ),
        Some(&[("SSL_CERT_FILE", ca_path.as_str())]),
    );
    let auth = login("alice@example.com", PASSWORD);
    let send_to = |port: u16, to: &str, subject: &str| {
        let subject = format!("Subject: {subject}");
        let mut args = vec!["--tls", "--from", "alice@example.com", "--header", &subject, "--to", to];
        args.extend(auth.iter().map(String::as_str));
        let transcript = swaks(port, &args);
        assert!(transcript.contains("250 2.0.0 Ok: queued as"), "{transcript}");
    };
    let send = |to: &str, subject: &str| send_to(s.submission, to, subject);

    send("friend@good.test", "sts-good");
    let delivered = outside_sink.wait_for(1, Duration::from_secs(20));
    assert_eq!(delivered.len(), 1, "sender:\n{}\nmx:\n{}", s.gw.log(), mx.log());
    let text = String::from_utf8_lossy(&delivered[0].data).to_string();
    assert!(text.contains("Subject: sts-good") && text.contains("with ESMTPS"), "delivered over TLS: {text}");
    assert!(s.gw.log().contains("MTA-STS policy fetched"), "{}", s.gw.log());

    // A second message uses the cached policy: no second fetch.
    send("other@good.test", "sts-good-again");
    assert_eq!(outside_sink.wait_for(2, Duration::from_secs(20)).len(), 2, "{}", s.gw.log());
    assert_eq!(https.requests("mta-sts.good.test"), 1, "the policy is cached for its max_age");

    send("friend@unlisted.test", "sts-unlisted");
    send("friend@badcert.test", "sts-badcert");
    let waited = wait_until(Duration::from_secs(20), || {
        let log = s.gw.log();
        log.contains("4.7.5 No MX host of unlisted.test is named by its MTA-STS policy")
            && log.contains("MTA-STS policy of badcert.test (id 2026120401, enforce): TLS certificate of the route not verified")
    });
    assert!(waited, "both wait with an explanation:\n{}", s.gw.log());

    send("friend@trial.test", "sts-trial");
    let delivered = outside_sink.wait_for(3, Duration::from_secs(20));
    assert_eq!(delivered.len(), 3, "testing mode delivers anyway:\n{}", s.gw.log());
    assert!(String::from_utf8_lossy(&delivered[2].data).contains("Subject: sts-trial"));
    assert!(s.gw.log().contains("MX host not named by the domain's MTA-STS policy"), "the mismatch is logged");
    std::thread::sleep(Duration::from_millis(500));
    let subjects: Vec<String> = outside_sink.messages().iter().map(|m| String::from_utf8_lossy(&m.data).to_string()).collect();
    assert!(!subjects.iter().any(|t| t.contains("sts-unlisted") || t.contains("sts-badcert")), "enforce never falls back");

    // The policy outlives the process: a restarted gateway reads it from the store,
    // and enforces it, without fetching it again.
    let mut gw = s.gw;
    let before = gw.log().len();
    gw.restart();
    let submission = gw.listener_port_after("Submission", before);
    send_to(submission, "friend@good.test", "sts-after-restart");
    send_to(submission, "again@unlisted.test", "sts-unlisted-after-restart");
    assert_eq!(outside_sink.wait_for(4, Duration::from_secs(20)).len(), 4, "{}", gw.log());
    assert_eq!(https.requests("mta-sts.good.test"), 1, "read from the store after the restart:\n{}", gw.log());
    let waited = wait_until(Duration::from_secs(20), || {
        gw.log()[before..].contains("4.7.5 No MX host of unlisted.test is named by its MTA-STS policy")
    });
    assert!(waited, "still enforced after the restart:\n{}", gw.log());
    assert_eq!(https.requests("mta-sts.unlisted.test"), 1);
}

/// DANE: the MX host's certificate is self-signed for another name, which only a
/// secure TLSA record can vouch for.
/// - dane.test: `3 1 1` of the host's key, secure → delivered over TLS;
/// - wrongkey.test: `3 1 1` of another key, secure → waits (4.7.5), never in clear;
/// - insecuremx.test: that wrong record, secure, but the MX RRset is not → ignored;
/// - insecure.test: the same wrong record without the AD bit → ignored, delivered.
#[test]
fn dane_tlsa_records_authenticate_mx_hosts_when_dnssec_secure() {
    let certs = tempfile::tempdir().expect("tempdir");
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["self-signed.invalid".to_string()]).expect("params").self_signed(&key).expect("cert");
    let (cert_path, key_path) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).expect("write cert");
    std::fs::write(&key_path, key.serialize_pem()).expect("write key");
    let spki_sha256 = ring::digest::digest(&ring::digest::SHA256, &rcgen::PublicKeyData::subject_public_key_info(&key)).as_ref().to_vec();
    let other_key = ring::digest::digest(&ring::digest::SHA256, b"not the host's key").as_ref().to_vec();

    let outside_sink = Sink::start(SinkMode::Accept);
    let domains: String = ["dane.test", "wrongkey.test", "insecure.test", "insecuremx.test"]
        .iter()
        .map(|d| format!("[[domain]]\nname = \"{d}\"\nroute = \"{}\"\n", outside_sink.route()))
        .collect();
    let mx = Gateway::start(&format!(
        "[smtp]\nhostname = \"mx.outside.test\"\n[[smtp.listener]]\naddress = \"{{listen}}\"\n[queue]\ndata_dir = \"{{data}}\"\n\
         [greylist]\nenabled = false\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n{domains}",
        cert_path.display(),
        key_path.display()
    ));
    let mut zone = Zone::new();
    // (domain, TLSA data, TLSA and host secure, MX RRset secure)
    for (domain, tlsa, secure, mx_secure) in [
        ("dane.test", &spki_sha256, true, true),
        ("wrongkey.test", &other_key, true, true),
        ("insecure.test", &other_key, false, false),
        ("insecuremx.test", &other_key, true, false),
    ] {
        let host = format!("mx.{domain}");
        let tlsa_name = format!("_{}._tcp.{host}", mx.port);
        zone.add(domain, Rr::Mx(10, host.clone()))
            .add(&host, Rr::A("127.0.0.1".parse().expect("ip")))
            .add(&tlsa_name, Rr::Tlsa(3, 1, 1, tlsa.clone()));
        if secure {
            zone.secure(&tlsa_name).secure(&host);
        }
        if mx_secure {
            zone.secure(domain);
        }
    }
    let dns = DnsServer::start(zone);
    let s = start_gateway(
        &format!(
            "[dns]\nservers = [\"{}\"]\ntimeout_ms = 1000\n[relay]\nmx_port = {}\ndane = true\nconnect_timeout = \"2s\"\n",
            dns.addr, mx.port
        ),
        None,
    );
    let auth = login("alice@example.com", PASSWORD);
    let send_to = |port: u16, to: &str, subject: &str| {
        let subject = format!("Subject: {subject}");
        let mut args = vec!["--tls", "--from", "alice@example.com", "--header", &subject, "--to", to];
        args.extend(auth.iter().map(String::as_str));
        let transcript = swaks(port, &args);
        assert!(transcript.contains("250 2.0.0 Ok: queued as"), "{transcript}");
    };
    let send = |to: &str, subject: &str| send_to(s.submission, to, subject);

    send("friend@dane.test", "dane-ok");
    let delivered = outside_sink.wait_for(1, Duration::from_secs(20));
    assert_eq!(delivered.len(), 1, "sender:\n{}\nmx:\n{}", s.gw.log(), mx.log());
    let text = String::from_utf8_lossy(&delivered[0].data).to_string();
    assert!(text.contains("Subject: dane-ok") && text.contains("with ESMTPS"), "{text}");

    send("friend@wrongkey.test", "dane-wrong");
    let waited =
        wait_until(Duration::from_secs(20), || s.gw.log().contains("4.7.5 TLS certificate matches none of the host's DANE TLSA records"));
    assert!(waited, "{}", s.gw.log());

    send("friend@insecure.test", "dane-insecure");
    let delivered = outside_sink.wait_for(2, Duration::from_secs(20));
    assert_eq!(delivered.len(), 2, "an insecure TLSA record is ignored:\n{}", s.gw.log());
    assert!(String::from_utf8_lossy(&delivered[1].data).contains("Subject: dane-insecure"));

    // Secure TLSA records of a host an insecure MX RRset names vouch for nothing.
    send("friend@insecuremx.test", "dane-insecure-mx");
    let delivered = outside_sink.wait_for(3, Duration::from_secs(20));
    assert_eq!(delivered.len(), 3, "DANE does not apply under an insecure MX RRset:\n{}", s.gw.log());
    assert!(String::from_utf8_lossy(&delivered[2].data).contains("Subject: dane-insecure-mx"));
    std::thread::sleep(Duration::from_millis(500));
    assert!(!outside_sink.messages().iter().any(|m| String::from_utf8_lossy(&m.data).contains("dane-wrong")), "never delivered");
}
