//! `rempart probe`: a delivery acted out step by step against a second Rempart as an
//! outside domain's MX (found through the test DNS server), and against a customer route
//! where nothing listens; each reply explained.

use std::time::Duration;

use rempart_tests::dns::{DnsServer, Rr, Zone};
use rempart_tests::gateway::run_rempart;
use rempart_tests::{Gateway, Sink, SinkMode, free_port, self_signed_cert};

fn probe(config: &std::path::Path, args: &[&str]) -> (bool, String) {
    let config = config.display().to_string();
    let mut all = vec!["--config", config.as_str(), "probe"];
    all.extend(args);
    let out = run_rempart(&all, std::path::Path::new("."), None);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn probe_walks_through_a_delivery_and_explains_each_reply() {
    // partner.test's MX is a Rempart with a self-signed certificate that knows alice.
    let certs = tempfile::tempdir().expect("tempdir");
    let (cert, key) = self_signed_cert(certs.path());
    let mailbox = Sink::start(SinkMode::Accept);
    // A customer server that takes any address.
    let catch_all = Sink::start(SinkMode::Accept);
    let mx = Gateway::in_process(&format!(
        "[smtp]\nhostname = \"mx.partner.test\"\n[[smtp.listener]]\naddress = \"{{listen}}\"\n[queue]\ndata_dir = \"{{data}}\"\n\
         [greylist]\nenabled = false\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n\
         [[domain]]\nname = \"partner.test\"\nroute = \"{}\"\nrecipients = [\"alice\"]\n",
        cert.display(),
        key.display(),
        mailbox.route()
    ));
    let mut zone = Zone::new();
    zone.add("partner.test", Rr::Mx(10, "mx.partner.test".into())).add("mx.partner.test", Rr::A("127.0.0.1".parse().unwrap()));
    let dns = DnsServer::start(zone);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("rempart.toml");
    let closed = free_port();
    std::fs::write(
        &config,
        format!(
            "[smtp]\nhostname = \"gw.test\"\n[dns]\nservers = [\"{}\"]\ntimeout_ms = 1000\n\
             [[domain]]\nname = \"customer.test\"\nroute = \"smtp://127.0.0.1:{closed}\"\n\
             [[domain]]\nname = \"catchall.test\"\nroute = \"{}\"\n",
            dns.addr,
            catch_all.route()
        ),
    )
    .expect("config");
    let port = mx.port.to_string();

    // An unknown mailbox: every step up to RCPT passes, RCPT says why not.
    let (ok, text) = probe(&config, &["bob@partner.test", "--port", &port, "--json", "--timeout", "5"]);
    assert!(!ok, "{text}");
    let json_end = text.rfind('}').expect("json");
    let report: serde_json::Value = serde_json::from_str(&text[..=json_end]).unwrap_or_else(|e| panic!("{e}: {text}"));
    let steps = report["steps"].as_array().expect("steps");
    let names: Vec<&str> = steps.iter().filter_map(|s| s["step"].as_str()).collect();
    assert_eq!(names, ["mx", "connect", "banner", "ehlo", "starttls", "tls", "ehlo", "mail", "rcpt"], "{text}");
    let tls = &steps[5];
    assert_eq!(tls["ok"], false, "a self-signed certificate does not verify: {tls}");
    assert!(tls["meaning"].as_str().unwrap_or("").contains("Encrypted"), "{tls}");
    let rcpt = &steps[8];
    assert_eq!(rcpt["code"], 550);
    assert!(rcpt["meaning"].as_str().unwrap_or("").contains("mailbox does not exist"), "{rcpt}");
    assert!(rcpt["advice"].as_str().unwrap_or("").contains("spelling"), "{rcpt}");
    assert!(text.contains("failed at: rcpt"), "{text}");

    // A real mailbox, and a server that refuses addresses nobody has.
    let (ok, text) = probe(&config, &["alice@partner.test", "--port", &port, "--json", "--timeout", "5"]);
    assert!(ok, "{text}");
    let json_end = text.rfind('}').expect("json");
    let report: serde_json::Value = serde_json::from_str(&text[..=json_end]).unwrap_or_else(|e| panic!("{e}: {text}"));
    let catch_all_step = report["steps"].as_array().and_then(|s| s.iter().find(|s| s["step"] == "catch-all")).expect("catch-all step");
    assert_eq!((catch_all_step["code"].as_u64(), catch_all_step["ok"].as_bool()), (Some(550), Some(true)), "{catch_all_step}");

    // A catch-all server: accepted, with the warning that it proves nothing.
    let (ok, text) = probe(&config, &["anyone@catchall.test", "--timeout", "5"]);
    assert!(ok, "{text}");
    assert!(text.contains("it is a catch-all") && text.contains("use LDAP, or a list"), "{text}");
    assert!(catch_all.messages().is_empty(), "nothing sent without --data");

    // A real mailbox, with a test message: delivered.
    let (ok, text) = probe(&config, &["alice@partner.test", "--port", &port, "--data", "--timeout", "5"]);
    assert!(ok, "{text}");
    assert!(text.contains("-> RCPT TO:<alice@partner.test>") && text.contains("Result: this mail would be accepted."), "{text}");
    let delivered = mailbox.wait_for(1, Duration::from_secs(20));
    assert_eq!(delivered.len(), 1, "{}", mx.log());
    assert!(String::from_utf8_lossy(&delivered[0].data).contains("Subject: Rempart probe"));

    // A customer domain is probed at its route; nothing listens there.
    let (ok, text) = probe(&config, &["someone@customer.test", "--timeout", "5"]);
    assert!(!ok, "{text}");
    assert!(text.contains("customer domain") && text.contains("failed at: connect"), "{text}");
    assert!(text.contains("what to do: Nothing listens there"), "{text}");

    // A domain that does not exist.
    let (ok, text) = probe(&config, &["ghost.test", "--timeout", "5"]);
    assert!(!ok && text.contains("does not exist") && text.contains("postmaster@ghost.test"), "{text}");
}
