//! The relay's side of TLS and expiry: opportunistic STARTTLS towards a route that
//! offers it (a second Rempart with a certificate stands in for the customer server),
//! `route_tls = "required"` refusing plaintext, and a message that cannot be delivered
//! before `queue.max_age` bouncing with 4.4.7.

use std::time::{Duration, Instant};

use rempart_tests::{Gateway, Sink, SinkMode, SmtpClient, message, self_signed_cert};

fn front(route: &str, route_tls: &str, queue_extra: &str, dsn_route: &str) -> Gateway {
    Gateway::start(&format!(
        "[smtp]\nhostname = \"front.test\"\n[[smtp.listener]]\naddress = \"{{listen}}\"\n[queue]\ndata_dir = \"{{data}}\"\nretry = [\"200ms\"]\n{queue_extra}\n[[domain]]\nname = \"example.com\"\nroute = \"{route}\"\nroute_tls = \"{route_tls}\"\n[[domain]]\nname = \"sender.test\"\nroute = \"{dsn_route}\"\n"
    ))
}

#[test]
fn relay_uses_starttls_when_the_route_offers_it() {
    let sink = Sink::start(SinkMode::Accept);
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed_cert(certs.path());
    let customer = Gateway::start(&format!(
        "[smtp]\nhostname = \"customer.test\"\n[[smtp.listener]]\naddress = \"{{listen}}\"\n[queue]\ndata_dir = \"{{data}}\"\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n[[domain]]\nname = \"example.com\"\nroute = \"{}\"\n",
        cert.display(),
        key.display(),
        sink.route()
    ));
    let gw = front(&format!("smtp://{}", customer.addr()), "required", "", &sink.route());
    let mut c = SmtpClient::connect(&gw.addr());
    c.ehlo();
    assert_eq!(c.send_mail("s@sender.test", &["alice@example.com"], &message("relay-tls")).code, 250);
    let got = sink.wait_for(1, Duration::from_secs(15));
    assert_eq!(got.len(), 1, "front:\n{}\ncustomer:\n{}", gw.log(), customer.log());
    let text = String::from_utf8_lossy(&got[0].data).to_string();
    let hop = text.split("Received: ").nth(1).unwrap_or_default();
    assert!(hop.contains("from front.test") && hop.contains("(using TLSv1.3") && hop.contains("with ESMTPS"), "{text}");
}

#[test]
fn required_tls_towards_a_plaintext_route_is_a_temporary_failure() {
    let sink = Sink::start(SinkMode::Accept);
    let gw = front(&sink.route(), "required", "", &sink.route());
    let mut c = SmtpClient::connect(&gw.addr());
    c.ehlo();
    assert_eq!(c.send_mail("s@sender.test", &["alice@example.com"], &message("needs-tls")).code, 250);
    assert!(rempart_tests::wait_until(Duration::from_secs(10), || gw.log().matches("TLS is required").count() >= 2), "{}", gw.log());
    assert!(sink.messages().is_empty(), "delivered in plaintext");
}

#[test]
fn undeliverable_before_max_age_bounces_with_4_4_7() {
    let customer = Sink::start(SinkMode::TempFailUntil(Instant::now() + Duration::from_secs(3600)));
    let sender_side = Sink::start(SinkMode::Accept);
    let gw = front(&customer.route(), "opportunistic", "max_age = \"2s\"", &sender_side.route());
    let mut c = SmtpClient::connect(&gw.addr());
    c.ehlo();
    assert_eq!(c.send_mail("s@sender.test", &["alice@example.com"], &message("expires")).code, 250);
    let got = sender_side.wait_for(1, Duration::from_secs(20));
    assert_eq!(got.len(), 1, "no DSN:\n{}", gw.log());
    let status = rempart_tests::delivery_status(&got[0].data);
    assert!(status.contains("Status: 4.4.7") && status.contains("Action: failed"), "{status}");
    assert!(status.replace("\r\n ", " ").contains("451 4.3.0 try again later"), "the last error is reported (unfolded): {status}");
    assert!(customer.rcpt_attempts() >= 2);
}

#[test]
fn notify_delay_gets_one_delayed_report_then_delivery() {
    let customer = Sink::start(SinkMode::TempFailUntil(Instant::now() + Duration::from_millis(3000)));
    let sender_side = Sink::start(SinkMode::Accept);
    let gw = front(&customer.route(), "opportunistic", "delay_warning = \"1s\"", &sender_side.route());
    let mut c = SmtpClient::connect(&gw.addr());
    c.ehlo();
    assert_eq!(c.cmd("MAIL FROM:<s@sender.test>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<alice@example.com> NOTIFY=DELAY,FAILURE").code, 250);
    assert_eq!(c.cmd("RCPT TO:<bob@example.com>").code, 250);
    assert_eq!(c.cmd("DATA").code, 354);
    c.send_raw(format!("{}.\r\n", message("slow")).as_bytes());
    assert_eq!(c.read_reply().code, 250);
    let delivered = customer.wait_for(1, Duration::from_secs(20));
    assert_eq!(delivered.len(), 1, "{}", gw.log());
    std::thread::sleep(Duration::from_millis(500));
    let reports = sender_side.messages();
    assert_eq!(reports.len(), 1, "exactly one delayed report: {reports:?}");
    let parsed = mail_parser::MessageParser::default().parse(&reports[0].data).unwrap();
    assert!(parsed.subject().unwrap_or_default().starts_with("Delayed Mail"));
    let status = rempart_tests::delivery_status(&reports[0].data);
    assert!(status.contains("Final-Recipient: rfc822; alice@example.com") && !status.contains("bob@example.com"), "{status}");
    assert!(status.contains("Action: delayed") && status.contains("Status: 4.3.0") && status.contains("Will-Retry-Until: "), "{status}");
}

/// A customer server whose certificate (signed by a test CA) is for `localhost`.
fn customer_with_ca_cert(sink: &Sink, certs: &std::path::Path) -> (Gateway, std::path::PathBuf) {
    let (ca, cert, key) = rempart_tests::ca_signed_cert(certs, &["localhost"]);
    let customer = Gateway::start(&format!(
        "[smtp]\nhostname = \"customer.test\"\n[[smtp.listener]]\naddress = \"{{listen}}\"\n[queue]\ndata_dir = \"{{data}}\"\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n[[domain]]\nname = \"example.com\"\nroute = \"{}\"\n",
        cert.display(),
        key.display(),
        sink.route()
    ));
    (customer, ca)
}

fn verifying_front(route: &str, ca_file: Option<&std::path::Path>, dsn_route: &str) -> Gateway {
    let ca = ca_file.map(|p| format!("route_ca_file = \"{}\"\n", p.display())).unwrap_or_default();
    Gateway::start(&format!(
        "[smtp]\nhostname = \"front.test\"\n[[smtp.listener]]\naddress = \"{{listen}}\"\n[queue]\ndata_dir = \"{{data}}\"\nretry = [\"200ms\"]\n[[domain]]\nname = \"example.com\"\nroute = \"{route}\"\nroute_tls = \"verify\"\n{ca}[[domain]]\nname = \"sender.test\"\nroute = \"{dsn_route}\"\n"
    ))
}

fn swaks_to_alice(gw: &Gateway, subject: &str) {
    let out = std::process::Command::new("swaks")
        .args(["--server", &gw.addr(), "--from", "s@sender.test", "--to", "alice@example.com", "--helo", "client.test"])
        .args(["--header", &format!("Subject: {subject}"), "--timeout", "20"])
        .output()
        .expect("swaks is installed by scripts/setup.sh");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

/// `route_tls = "verify"`: a certificate that chains to the route's CA and names the
/// route's host is used; one for another name, or from an unknown CA, is refused with
/// a 4.7.5 deferral and the message is never sent in clear.
#[test]
fn verified_tls_checks_the_chain_and_the_route_name() {
    let sink = Sink::start(SinkMode::Accept);
    let certs = tempfile::tempdir().unwrap();
    let (customer, ca) = customer_with_ca_cert(&sink, certs.path());

    let by_name = verifying_front(&format!("smtp://localhost:{}", customer.port), Some(&ca), &sink.route());
    swaks_to_alice(&by_name, "verified");
    let got = sink.wait_for(1, Duration::from_secs(15));
    assert_eq!(got.len(), 1, "front:\n{}\ncustomer:\n{}", by_name.log(), customer.log());
    let text = String::from_utf8_lossy(&got[0].data).to_string();
    assert!(text.contains("from front.test") && text.contains("with ESMTPS"), "{text}");

    // The certificate is for localhost, the route says 127.0.0.1: another name.
    let other_name = verifying_front(&format!("smtp://127.0.0.1:{}", customer.port), Some(&ca), &sink.route());
    swaks_to_alice(&other_name, "wrong-name");
    // A CA nobody configured (the system's roots do not know the test CA).
    let unknown_ca = verifying_front(&format!("smtp://localhost:{}", customer.port), None, &sink.route());
    swaks_to_alice(&unknown_ca, "unknown-ca");
    for front in [&other_name, &unknown_ca] {
        let deferred = rempart_tests::wait_until(Duration::from_secs(10), || {
            front.log().matches("4.7.5 TLS certificate of the route not verified").count() >= 2
        });
        assert!(deferred, "{}", front.log());
    }
    assert!(other_name.log().contains("NotValidForName") || other_name.log().contains("not valid for name"), "{}", other_name.log());
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sink.messages().len(), 1, "only the verified message was delivered");
    assert!(!customer.log().contains("wrong-name") && !customer.log().contains("unknown-ca"));
}

/// A route CA file that is not PEM stops the gateway at startup, naming the file.
#[test]
fn unusable_route_ca_file_is_a_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "not a certificate\n").unwrap();
    let config = dir.path().join("rempart.toml");
    std::fs::write(
        &config,
        format!(
            "[[smtp.listener]]\naddress = \"127.0.0.1:{}\"\n[queue]\ndata_dir = \"{}\"\n[dns]\noffline = true\n[[domain]]\nname = \"example.com\"\nroute = \"smtp://localhost:25\"\nroute_tls = \"verify\"\nroute_ca_file = \"{}\"\n",
            rempart_tests::free_port(),
            dir.path().join("data").display(),
            ca.display()
        ),
    )
    .unwrap();
    let out = rempart_tests::gateway::run_rempart(&["serve", "--config", config.to_str().unwrap()], dir.path(), None);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ca.pem") && stderr.contains("no usable CA certificate"), "{stderr}");
}
