//! End to end: recipients verified at RCPT against a real slapd (LDAP / Active
//! Directory attributes), by a callout to the customer's server (a sink that knows its
//! users) cached in the store, and the tarpit that slows and then stops address guessing.

use std::time::{Duration, Instant};

use rempart_tests::slapd::{ADMIN_DN, ADMIN_PASSWORD, Person, SUFFIX, ServerTls, Slapd};
use rempart_tests::{Gateway, Sink, SinkMode, SmtpClient, free_port, message};

fn rcpt(c: &mut SmtpClient, address: &str) -> (u16, String) {
    let r = c.cmd(&format!("RCPT TO:<{address}>"));
    (r.code, r.text())
}

fn session(gw: &Gateway) -> SmtpClient {
    let mut c = SmtpClient::connect(&gw.addr());
    c.ehlo();
    assert_eq!(c.cmd("MAIL FROM:<someone@sender.test>").code, 250);
    c
}

#[test]
fn ldap_directory_decides_at_rcpt_and_an_outage_defers() {
    let people = [
        Person {
            uid: "alice",
            mail: "Alice@Example.com",
            proxy_addresses: &["SMTP:Alice@Example.com", "smtp:ali@example.com"],
            disabled: false,
        },
        Person { uid: "carol", mail: "carol@example.com", proxy_addresses: &[], disabled: true },
    ];
    let mut slapd = Slapd::start(&people);
    let sink = Sink::start(SinkMode::Accept);
    let password_file = slapd.dir.path().join("bind.pw");
    std::fs::write(&password_file, format!("{ADMIN_PASSWORD}\n")).expect("password file");
    let ldap = format!(
        "url = \"{}\"\nbind_dn = \"{ADMIN_DN}\"\nbind_password_file = \"{}\"\nbase = \"{SUFFIX}\"\ntimeout = \"2s\"\n",
        slapd.url(),
        password_file.display()
    );
    let gw = Gateway::in_process(&format!(
        "[smtp]\nhostname = \"gw.test\"\n[[smtp.listener]]\naddress = \"{{listen}}\"\n[queue]\ndata_dir = \"{{data}}\"\n\
         [[domain]]\nname = \"example.com\"\nroute = \"{route}\"\nrecipient_source = \"ldap\"\n[domain.ldap]\n{ldap}\
         [[domain]]\nname = \"open.example.com\"\nroute = \"{route}\"\nrecipient_source = \"ldap\"\nrecipient_fail_open = true\n[domain.ldap]\n{ldap}",
        route = sink.route()
    ));
    let mut c = session(&gw);
    for address in ["alice@example.com", "ALICE+news@example.com", "ali@example.com", "postmaster@example.com"] {
        assert_eq!(rcpt(&mut c, address).0, 250, "{address} exists (mail, sub-address, proxyAddresses, postmaster)");
    }
    for address in ["carol@example.com", "nobody@example.com", "*@example.com", "ali*@example.com"] {
        let (code, text) = rcpt(&mut c, address);
        assert_eq!(code, 550, "{address}: {text}");
        assert!(text.contains("5.1.1") && text.contains("user unknown"), "{text}");
    }
    assert_eq!(c.cmd("RSET").code, 250);
    assert_eq!(c.send_mail("someone@sender.test", &["ali@example.com"], &message("ldap")).code, 250);
    assert_eq!(sink.wait_for(1, Duration::from_secs(20)).len(), 1, "{}", gw.log());

    // The directory goes down: the sender is asked to retry, nothing is accepted then
    // bounced, unless the domain chose to fail open.
    slapd.kill();
    let mut c = session(&gw);
    let (code, text) = rcpt(&mut c, "alice@example.com");
    assert_eq!(code, 451, "{text}");
    assert!(text.contains("4.4.3") && text.contains("verification is unavailable"), "{text}");
    assert_eq!(rcpt(&mut c, "anyone@open.example.com").0, 250, "fail-open domain");
    assert!(gw.log().contains("recipient verification unavailable"), "{}", gw.log());
}

/// The directory over TLS, as Active Directory is reached: LDAPS, and StartTLS on the
/// plain port, each verifying slapd's certificate against the private CA of `ca_file`;
/// without that CA the certificate is not trusted and the answer is "try later".
#[test]
fn ldap_over_ldaps_and_starttls_verifies_the_directory_certificate() {
    let certs = tempfile::tempdir().expect("tempdir");
    let (ca, cert, key) = rempart_tests::ca_signed_cert(certs.path(), &["127.0.0.1", "localhost"]);
    let people = [Person {
        uid: "alice",
        mail: "alice@ldaps.example.com",
        proxy_addresses: &["smtp:alice@starttls.example.com", "smtp:alice@untrusted.example.com", "smtp:alice@plain.example.com"],
        disabled: false,
    }];
    let slapd = Slapd::start_with(&people, Some(ServerTls { cert: &cert, key: &key }));
    let sink = Sink::start(SinkMode::Accept);
    let password_file = slapd.dir.path().join("bind.pw");
    std::fs::write(&password_file, format!("{ADMIN_PASSWORD}\n")).expect("password file");
    let domain = |name: &str, url: &str, tls: &str| {
        format!(
            "[[domain]]\nname = \"{name}\"\nroute = \"{route}\"\nrecipient_source = \"ldap\"\n[domain.ldap]\nurl = \"{url}\"\n{tls}\
             bind_dn = \"{ADMIN_DN}\"\nbind_password_file = \"{pw}\"\nbase = \"{SUFFIX}\"\ntimeout = \"2s\"\n",
            route = sink.route(),
            pw = password_file.display()
        )
    };
    let ca_file = format!("ca_file = \"{}\"\n", ca.display());
    let gw = Gateway::in_process(&format!(
        "[smtp]\nhostname = \"gw.test\"\n[[smtp.listener]]\naddress = \"{{listen}}\"\n[queue]\ndata_dir = \"{{data}}\"\n{}{}{}{}",
        domain("ldaps.example.com", &slapd.ldaps_url(), &ca_file),
        domain("starttls.example.com", &slapd.url(), &format!("starttls = true\n{ca_file}")),
        domain("untrusted.example.com", &slapd.ldaps_url(), ""),
        domain("plain.example.com", &slapd.url(), ""),
    ));
    let mut c = session(&gw);
    assert_eq!(rcpt(&mut c, "alice@ldaps.example.com").0, 250, "LDAPS: {}", gw.log());
    assert_eq!(rcpt(&mut c, "bob@ldaps.example.com").0, 550);
    assert_eq!(rcpt(&mut c, "alice@starttls.example.com").0, 250, "StartTLS: {}", gw.log());
    assert_eq!(rcpt(&mut c, "bob@starttls.example.com").0, 550);
    let (code, text) = rcpt(&mut c, "alice@untrusted.example.com");
    assert_eq!(code, 451, "a certificate not signed by a trusted CA: {text}");
    assert!(text.contains("4.4.3"), "{text}");
    // The server takes no plain bind: StartTLS above did encrypt.
    assert_eq!(rcpt(&mut c, "alice@plain.example.com").0, 451, "a plain connection is refused by the server");
}

#[test]
fn callout_asks_the_customer_server_once_and_remembers_the_answer() {
    let customer = Sink::start(SinkMode::OnlyUsers(vec!["alice@example.com".into()]));
    let catch_all = Sink::start(SinkMode::Accept);
    let nobody_listens = format!("smtp://127.0.0.1:{}", free_port());
    let domain = |name: &str, route: &str, extra: &str| {
        format!(
            "[[domain]]\nname = \"{name}\"\nroute = \"{route}\"\nrecipient_source = \"callout\"\n{extra}\
             [domain.callout]\nprobe_sender = \"callout@gw.test\"\ntimeout = \"3s\"\n"
        )
    };
    let gw = Gateway::in_process(&format!(
        "[smtp]\nhostname = \"gw.test\"\n[[smtp.listener]]\naddress = \"{{listen}}\"\n[queue]\ndata_dir = \"{{data}}\"\n\
         [relay]\nconnect_timeout = \"1s\"\n{}{}{}{}",
        domain("example.com", &customer.route(), ""),
        domain("catchall.test", &catch_all.route(), ""),
        domain("down.test", &nobody_listens, ""),
        domain("open.test", &nobody_listens, "recipient_fail_open = true\n"),
    ));
    let mut c = session(&gw);
    assert_eq!(rcpt(&mut c, "alice@example.com").0, 250);
    assert_eq!(customer.rcpt_attempts(), 2, "the recipient and a random local part (catch-all detection)");
    let (code, text) = rcpt(&mut c, "bob@example.com");
    assert_eq!(code, 550, "{text}");
    assert!(text.contains("5.1.1"), "{text}");
    assert_eq!(customer.rcpt_attempts(), 3, "catch-all detection is done once");

    // Both answers are remembered in the store: no question is asked again.
    let mut c = session(&gw);
    assert_eq!(rcpt(&mut c, "Alice@example.com").0, 250);
    assert_eq!(rcpt(&mut c, "bob@example.com").0, 550);
    assert_eq!(customer.rcpt_attempts(), 3, "answered from the cache");

    assert_eq!(rcpt(&mut c, "whoever@catchall.test").0, 250);
    assert!(gw.log().contains("catch-all"), "a catch-all route is logged:\n{}", gw.log());

    let (code, text) = rcpt(&mut c, "x@down.test");
    assert_eq!(code, 451, "{text}");
    assert!(text.contains("4.4.3"), "{text}");
    assert_eq!(rcpt(&mut c, "x@open.test").0, 250, "fail-open domain");

    let mut c = SmtpClient::connect(&gw.addr());
    c.ehlo();
    assert_eq!(c.send_mail("someone@sender.test", &["alice@example.com"], &message("callout")).code, 250);
    let delivered = customer.wait_for(1, Duration::from_secs(20));
    assert_eq!(delivered.len(), 1, "{}", gw.log());
    assert!(customer.messages().iter().all(|m| m.mail_from != "callout@gw.test"), "the callout sent no message");
}

#[test]
fn guessing_recipients_is_slowed_then_cut_off() {
    let sink = Sink::start(SinkMode::Accept);
    let gw = Gateway::in_process(&format!(
        "[smtp]\nhostname = \"gw.test\"\ntrusted_networks = []\nunknown_recipient_delay = \"300ms\"\nmax_unknown_recipients_per_ip = 4\n\
         [[smtp.listener]]\naddress = \"{{listen}}\"\n[queue]\ndata_dir = \"{{data}}\"\n\
         [[domain]]\nname = \"example.com\"\nroute = \"{}\"\nrecipients = [\"alice\"]\n",
        sink.route()
    ));
    let mut c = session(&gw);
    let mut took = Vec::new();
    for guess in ["a", "b", "c", "d"] {
        let started = Instant::now();
        assert_eq!(rcpt(&mut c, &format!("{guess}@example.com")).0, 550);
        took.push(started.elapsed());
    }
    assert!(took[0] < Duration::from_millis(250) && took[1] < Duration::from_millis(250), "{took:?}");
    assert!(took[2] >= Duration::from_millis(290), "third unknown waits one delay: {took:?}");
    assert!(took[3] >= Duration::from_millis(590), "fourth waits two: {took:?}");
    assert_eq!(rcpt(&mut c, "alice@example.com").0, 250, "real recipients are not delayed");
    let (code, text) = rcpt(&mut c, "e@example.com");
    assert_eq!(code, 421, "{text}");
    assert!(text.contains("4.7.0") && text.contains("Too many unknown recipients from 127.0.0.1"), "{text}");
    assert!(c.is_closed(), "the session ends");
    // The count is the address's, in the store: a new session is cut off at its first guess.
    let mut c = session(&gw);
    assert_eq!(rcpt(&mut c, "alice@example.com").0, 250);
    assert_eq!(rcpt(&mut c, "f@example.com").0, 421);
}
