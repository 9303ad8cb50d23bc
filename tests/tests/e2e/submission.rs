//! Authenticated submission with real clients (swaks, Python's smtplib) against the
//! gateway: STARTTLS then AUTH on the submission port, implicit TLS on the submissions
//! port, never AUTH in plaintext or on port 25, the sender must be the login, and
//! failed logins are throttled through the shared store.

use std::process::Command;
use std::time::Duration;

use rempart_tests::dns::{DnsServer, Rr, Zone};
use rempart_tests::gateway::run_rempart;
use rempart_tests::{Gateway, Sink, SinkMode, SmtpClient, self_signed_cert};

pub(crate) const PASSWORD: &str = "correct horse battery";

pub(crate) struct Submission {
    pub gw: Gateway,
    pub sink: Sink,
    pub submission: u16,
    submissions: u16,
    _certs: tempfile::TempDir,
}

fn start() -> Submission {
    start_with("")
}

/// With `extra` configuration appended, in this process.
pub(crate) fn start_with(extra: &str) -> Submission {
    start_gateway(extra, None)
}

/// With `extra` configuration appended; in this process, or as a process of its own
/// with the environment `env` when given.
pub(crate) fn start_gateway(extra: &str, env: Option<&[(&str, &str)]>) -> Submission {
    let sink = Sink::start(SinkMode::Accept);
    let certs = tempfile::tempdir().expect("tempdir");
    let (cert, key) = self_signed_cert(certs.path());
    let config = format!(
        "[smtp]\nhostname = \"gw.test\"\n[[smtp.listener]]\naddress = \"{{listen}}\"\n\
         [[smtp.listener]]\naddress = \"127.0.0.1:0\"\nkind = \"submission\"\n\
         [[smtp.listener]]\naddress = \"127.0.0.1:0\"\nkind = \"submissions\"\n\
         [queue]\ndata_dir = \"{{data}}\"\n[greylist]\nenabled = false\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n\
         [[domain]]\nname = \"example.com\"\nroute = \"{}\"\n{extra}",
        cert.display(),
        key.display(),
        sink.route()
    );
    let prepare = |gw: &Gateway| {
        let path = gw.config_path.display().to_string();
        for args in [
            vec!["account", "add", "alice@example.com", "--alias", "@shop.example"],
            vec!["account", "add", "admin@example.com", "--role", "domain-admin", "--domain", "example.com"],
            vec!["account", "add", "carol@example.com"],
            vec!["account", "disable", "carol@example.com"],
        ] {
            let mut all = vec!["--config", &path];
            all.extend(args);
            let out = run_rempart(&all, gw.dir.path(), Some(PASSWORD.as_bytes()));
            assert!(out.status.success(), "account add: {}", String::from_utf8_lossy(&out.stderr));
        }
        // API tokens, for looking at what the console holds for alice and reports to
        // her domain's admin.
        for (account, file) in [("alice@example.com", "alice.token"), ("admin@example.com", "admin.token")] {
            let out = run_rempart(&["--config", &path, "console", "token", "add", account], gw.dir.path(), None);
            assert!(out.status.success(), "token add: {}", String::from_utf8_lossy(&out.stderr));
            std::fs::write(gw.dir.path().join(file), String::from_utf8_lossy(&out.stdout).trim()).expect("write token");
        }
    };
    let gw = match env {
        Some(env) => Gateway::start_prepared(&config, "serve", env, prepare),
        None => Gateway::in_process_prepared(&config, prepare),
    };
    // Port 0: the ports are read from the log (a port picked beforehand could be taken
    // by another test's socket before the gateway binds it).
    let (submission, submissions) = (gw.listener_port("Submission"), gw.listener_port("Submissions"));
    Submission { gw, sink, submission, submissions, _certs: certs }
}

/// Runs swaks against `port` with `args`; gives its transcript.
pub(crate) fn swaks(port: u16, args: &[&str]) -> String {
    let out = Command::new("swaks")
        .args(["--server", &format!("127.0.0.1:{port}"), "--helo", "client.test", "--timeout", "20"])
        .args(args)
        .output()
        .expect("swaks is installed by scripts/setup.sh");
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

pub(crate) fn login(user: &str, password: &str) -> Vec<String> {
    ["--auth", "PLAIN", "--auth-user", user, "--auth-password", password].map(String::from).to_vec()
}

#[test]
fn a_customer_submits_with_starttls_and_auth_and_the_message_is_delivered() {
    let s = start();
    let mut args = vec!["--tls", "--from", "alice@example.com", "--to", "bob@example.com"];
    let auth = login("alice@example.com", PASSWORD);
    args.extend(auth.iter().map(String::as_str));
    args.extend(["--header", "Subject: quarterly report", "--body", "Numbers attached."]);
    let transcript = swaks(s.submission, &args);
    assert!(transcript.contains("235 2.7.0"), "{transcript}");
    assert!(transcript.contains("250 2.0.0 Ok: queued as"), "{transcript}");
    let received = s.sink.wait_for(1, Duration::from_secs(20));
    assert_eq!(received.len(), 1, "{transcript}");
    let data = String::from_utf8_lossy(&received[0].data);
    assert!(data.contains("with ESMTPSA id"), "the Received header says authenticated TLS: {data}");
    assert_eq!(received[0].mail_from, "alice@example.com");
    // A domain alias (`@shop.example`) lets the account send as any address there.
    let mut args = vec!["--tls", "--from", "orders@shop.example", "--to", "bob@example.com", "--header", "From: orders@shop.example"];
    args.extend(auth.iter().map(String::as_str));
    let transcript = swaks(s.submission, &args);
    assert!(transcript.contains("250 2.0.0 Ok: queued as"), "{transcript}");
}

#[test]
fn implicit_tls_with_smtplib_login() {
    let s = start();
    let script = format!(
        "import smtplib, ssl\n\
         ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE\n\
         with smtplib.SMTP_SSL('127.0.0.1', {port}, context=ctx, timeout=20) as c:\n\
         \x20   c.ehlo('client.test')\n\
         \x20   assert 'PLAIN' in c.esmtp_features.get('auth', ''), c.esmtp_features\n\
         \x20   c.login('alice@example.com', '{PASSWORD}', initial_response_ok=False)\n\
         \x20   c.sendmail('alice@example.com', ['carol@example.com'], 'From: alice@example.com\\r\\nSubject: hi\\r\\n\\r\\nhello\\r\\n')\n\
         print('sent')\n",
        port = s.submissions
    );
    let out = Command::new("python3").args(["-c", &script]).output().expect("python3");
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let received = s.sink.wait_for(1, Duration::from_secs(20));
    assert_eq!(received[0].rcpt_to, vec!["carol@example.com".to_string()]);
}

#[test]
fn no_auth_in_plaintext_nor_on_port_25_and_no_relaying_without_it() {
    let s = start();
    // Submission port before STARTTLS: no AUTH offered, none accepted, no mail.
    let mut c = SmtpClient::connect(&format!("127.0.0.1:{}", s.submission));
    let ehlo = c.ehlo().text();
    assert!(ehlo.contains("STARTTLS") && !ehlo.contains("AUTH"), "{ehlo}");
    let r = c.cmd("AUTH PLAIN AGFsaWNlQGV4YW1wbGUuY29tAGNvcnJlY3QgaG9yc2UgYmF0dGVyeQ==");
    assert_eq!((r.code, r.enhanced()), (538, Some("5.7.11".to_string())), "{}", r.text());
    let r = c.cmd("MAIL FROM:<alice@example.com>");
    assert_eq!((r.code, r.enhanced()), (530, Some("5.7.0".to_string())), "{}", r.text());
    // Port 25: AUTH is not offered and refused; relaying to others is denied.
    let mut c = SmtpClient::connect(&s.gw.addr());
    assert!(!c.ehlo().text().contains("AUTH"));
    assert_eq!(c.cmd("AUTH PLAIN AGFsaWNlQGV4YW1wbGUuY29tAGNvcnJlY3QgaG9yc2UgYmF0dGVyeQ==").code, 502);
    assert_eq!(c.cmd("MAIL FROM:<alice@example.com>").code, 250);
    let r = c.cmd("RCPT TO:<someone@elsewhere.example>");
    assert_eq!((r.code, r.enhanced()), (550, Some("5.7.1".to_string())), "{}", r.text());
    // Over TLS with swaks on port 25: AUTH still refused.
    let mut args = vec!["--tls", "--from", "alice@example.com", "--to", "x@elsewhere.example"];
    let auth = login("alice@example.com", PASSWORD);
    args.extend(auth.iter().map(String::as_str));
    let transcript = swaks(s.gw.port, &args);
    assert!(!transcript.contains("235 "), "{transcript}");
    assert!(s.sink.messages().is_empty());
}

/// Every way around AUTH, as a real TLS client (Python's smtplib) tries them: each
/// line is `case code enhanced-code`. Logged-in mail may go anywhere; nothing else may.
const RELAY_BATTERY: &str = r#"
import base64, smtplib, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
submission, submissions, inbound, password = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def open_session(port, tls):
    c = smtplib.SMTP_SSL('127.0.0.1', port, context=ctx, timeout=20) if tls == 'implicit' else smtplib.SMTP('127.0.0.1', port, timeout=20)
    c.ehlo('client.test')
    if tls == 'starttls':
        c.starttls(context=ctx); c.ehlo('client.test')
    return c
def plain(authzid, login, pw):
    return 'AUTH PLAIN ' + base64.b64encode(f'{authzid}\0{login}\0{pw}'.encode()).decode()
def step(case, c, line):
    code, text = c.docmd(line)
    print(case, code, text.decode().split(' ')[0], flush=True)
c = open_session(submission, 'starttls')
step('no-auth-mail', c, 'MAIL FROM:<alice@example.com>')
step('wrong-password', c, plain('', 'alice@example.com', 'guess'))
step('wrong-password-mail', c, 'MAIL FROM:<alice@example.com>')
step('login-cancel', c, 'AUTH LOGIN')
step('login-cancelled', c, '*')
step('cancelled-mail', c, 'MAIL FROM:<alice@example.com>')
step('act-as-other', c, plain('admin@example.com', 'alice@example.com', password))
step('act-as-other-mail', c, 'MAIL FROM:<admin@example.com>')
step('disabled-account', c, plain('', 'carol@example.com', password))
step('disabled-mail', c, 'MAIL FROM:<carol@example.com>')
step('claimed-auth-param', c, 'MAIL FROM:<alice@example.com> AUTH=alice@example.com')
c.close()
c = open_session(submissions, 'implicit')
step('implicit-no-auth-mail', c, 'MAIL FROM:<alice@example.com>')
step('implicit-unknown-account', c, plain('', 'nobody@example.com', password))
step('implicit-unknown-mail', c, 'MAIL FROM:<nobody@example.com>')
c.close()
c = open_session(inbound, 'starttls')
step('inbound-auth', c, plain('', 'alice@example.com', password))
step('inbound-claimed-auth', c, 'MAIL FROM:<alice@example.com> AUTH=alice@example.com')
step('inbound-outside', c, 'RCPT TO:<victim@elsewhere.test>')
step('inbound-customer', c, 'RCPT TO:<bob@example.com>')
c.close()
c = open_session(submission, 'starttls')
step('login', c, plain('', 'alice@example.com', password))
step('again', c, plain('', 'alice@example.com', password))
step('mail', c, 'MAIL FROM:<alice@example.com> AUTH=<>')
step('auth-in-transaction', c, plain('', 'alice@example.com', password))
for case, rcpt in [('percent-hack', 'victim%elsewhere.test@example.com'), ('bang-path', 'elsewhere.test!victim@example.com'),
                   ('source-route', '@example.com:victim@elsewhere.test'), ('quoted-at', '"victim@elsewhere.test"@example.com'),
                   ('outside', 'partner@elsewhere.test')]:
    step(case, c, f'RCPT TO:<{rcpt}>')
step('rset', c, 'RSET')
step('forged-sender', c, 'MAIL FROM:<bob@example.com>')
step('other-domain-sender', c, 'MAIL FROM:<victim@elsewhere.test>')
c.close()
"#;

#[test]
fn never_an_open_relay_on_authenticated_paths() {
    let s = start();
    let out = Command::new("python3")
        .args(["-c", RELAY_BATTERY])
        .args([s.submission.to_string(), s.submissions.to_string(), s.gw.port.to_string(), PASSWORD.to_string()])
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let answers: Vec<(&str, &str, &str)> =
        stdout.lines().filter_map(|l| l.split_once(' ').and_then(|(case, rest)| rest.split_once(' ').map(|(c, e)| (case, c, e)))).collect();
    let expected = [
        ("no-auth-mail", "530", "5.7.0"),
        ("wrong-password", "535", "5.7.8"),
        ("wrong-password-mail", "530", "5.7.0"),
        ("login-cancel", "334", "VXNlcm5hbWU6"),
        ("login-cancelled", "501", "5.0.0"),
        ("cancelled-mail", "530", "5.7.0"),
        ("act-as-other", "535", "5.7.8"),
        ("act-as-other-mail", "530", "5.7.0"),
        ("disabled-account", "535", "5.7.8"),
        ("disabled-mail", "530", "5.7.0"),
        ("claimed-auth-param", "530", "5.7.0"),
        ("implicit-no-auth-mail", "530", "5.7.0"),
        ("implicit-unknown-account", "535", "5.7.8"),
        ("implicit-unknown-mail", "530", "5.7.0"),
        ("inbound-auth", "502", "5.5.1"),
        ("inbound-claimed-auth", "250", "2.1.0"),
        ("inbound-outside", "550", "5.7.1"),
        ("inbound-customer", "250", "2.1.5"),
        ("login", "235", "2.7.0"),
        ("again", "503", "5.5.1"),
        ("mail", "250", "2.1.0"),
        ("auth-in-transaction", "503", "5.5.1"),
        ("percent-hack", "550", "5.7.1"),
        ("bang-path", "550", "5.7.1"),
        ("source-route", "550", "5.7.1"),
        ("quoted-at", "550", "5.7.1"),
        ("outside", "250", "2.1.5"),
        ("rset", "250", "2.0.0"),
        ("forged-sender", "553", "5.7.1"),
        ("other-domain-sender", "553", "5.7.1"),
    ];
    assert_eq!(answers, expected, "{stdout}");
    assert!(s.sink.messages().is_empty(), "nothing was sent");
}

#[test]
fn the_sender_must_be_the_login_and_logged_in_mail_may_go_anywhere() {
    let s = start();
    let auth = login("alice@example.com", PASSWORD);
    let with_auth = |extra: &[&str]| {
        let mut args = vec!["--tls"];
        args.extend(auth.iter().map(String::as_str));
        args.extend_from_slice(extra);
        swaks(s.submission, &args)
    };
    let transcript = with_auth(&["--from", "bob@example.com", "--to", "carol@example.com"]);
    assert!(transcript.contains("553 5.7.1 Sender address rejected: <bob@example.com> is not yours"), "{transcript}");
    let transcript = with_auth(&["--from", "alice@example.com", "--to", "carol@example.com", "--header", "From: CEO <ceo@example.com>"]);
    assert!(transcript.contains("553 5.7.1 Message refused: From <ceo@example.com> is not yours"), "{transcript}");
    // Any recipient domain once logged in (outbound mail); --quit-after keeps it at RCPT.
    let transcript = with_auth(&["--from", "alice@example.com", "--to", "partner@elsewhere.example", "--quit-after", "RCPT"]);
    assert!(transcript.contains("250 2.1.5 Recipient <partner@elsewhere.example> OK"), "{transcript}");
    assert!(s.sink.messages().is_empty(), "nothing forged was delivered");
}

#[test]
fn wrong_passwords_are_refused_then_throttled_across_connections() {
    let s = start();
    for _ in 0..5 {
        let mut args = vec!["--tls", "--from", "alice@example.com", "--to", "bob@example.com", "--quit-after", "AUTH"];
        let auth = login("alice@example.com", "not the password");
        args.extend(auth.iter().map(String::as_str));
        let transcript = swaks(s.submission, &args);
        assert!(transcript.contains("535 5.7.8"), "{transcript}");
    }
    // The sixth try, even with the right password, is throttled (per IP and account).
    let mut args = vec!["--tls", "--from", "alice@example.com", "--to", "bob@example.com", "--quit-after", "AUTH"];
    let auth = login("alice@example.com", PASSWORD);
    args.extend(auth.iter().map(String::as_str));
    let transcript = swaks(s.submission, &args);
    assert!(transcript.contains("454 4.7.0 Too many failed logins"), "{transcript}");
    assert!(s.gw.log().contains("AUTH throttled"), "logged");
}

#[test]
fn mail_to_outside_domains_goes_by_mx_and_failures_come_back_as_dsns() {
    // The outside world: partner.test's first MX refuses connections (nothing listens
    // on 127.0.0.9), its second is a sink; nomail.test has a null MX; ghost.test does
    // not exist.
    let outside = Sink::start(SinkMode::Accept);
    let mut zone = Zone::new();
    zone.add("partner.test", Rr::Mx(10, "mx1.partner.test".into()))
        .add("partner.test", Rr::Mx(20, "mx2.partner.test".into()))
        .add("mx1.partner.test", Rr::A("127.0.0.9".parse().unwrap()))
        .add("mx2.partner.test", Rr::A("127.0.0.1".parse().unwrap()))
        .add("nomail.test", Rr::Mx(0, ".".into()));
    let dns = DnsServer::start(zone);
    let s = start_with(&format!(
        "[dns]\nservers = [\"{}\"]\ntimeout_ms = 1000\n[relay]\nmx_port = {}\nconnect_timeout = \"2s\"\n",
        dns.addr,
        outside.addr.port()
    ));
    let auth = login("alice@example.com", PASSWORD);
    let send = |to: &[&str]| {
        let to = to.join(",");
        let mut args = vec!["--tls", "--from", "alice@example.com", "--header", "Subject: outbound", "--to", &to];
        args.extend(auth.iter().map(String::as_str));
        swaks(s.submission, &args)
    };
    let transcript = send(&["friend@partner.test"]);
    assert!(transcript.contains("250 2.0.0 Ok: queued as"), "{transcript}");
    let delivered = outside.wait_for(1, Duration::from_secs(20));
    assert_eq!(delivered.len(), 1, "delivered by the second MX; log:\n{}", s.gw.log());
    assert_eq!(delivered[0].rcpt_to, vec!["friend@partner.test".to_string()]);
    // The sink has the message before the relay has read its 250 and logged the delivery.
    let named = rempart_tests::wait_until(Duration::from_secs(10), || s.gw.log().contains("mx2.partner.test"));
    assert!(named, "the delivery names the MX host; log:\n{}", s.gw.log());

    let transcript = send(&["someone@nomail.test", "nobody@ghost.test"]);
    assert!(transcript.contains("250 2.0.0 Ok: queued as"), "{transcript}");
    let dsn = s.sink.wait_for(1, Duration::from_secs(20));
    assert_eq!(dsn.len(), 1, "one DSN to the sender; log:\n{}", s.gw.log());
    assert_eq!(dsn[0].rcpt_to, vec!["alice@example.com".to_string()]);
    let text = String::from_utf8_lossy(&dsn[0].data);
    assert!(text.contains("5.1.10") && text.contains("5.1.2"), "{text}");
    assert_eq!(outside.messages().len(), 1, "nothing else went out");
}

#[test]
fn submitted_mail_is_dkim_signed_with_every_key_of_the_from_domain() {
    use mail_auth::common::crypto::{RsaKey, Sha256};
    use rustls_pki_types::PrivateKeyDer;
    use rustls_pki_types::pem::PemObject;

    let keys = tempfile::tempdir().expect("tempdir");
    let ed_file = keys.path().join("ed.pem");
    let out = run_rempart(&["dkim", "generate", "example.com", "ed", "--out", &ed_file.display().to_string()], keys.path(), None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(printed.starts_with("ed._domainkey.example.com. IN TXT \"v=DKIM1; k=ed25519; p="), "{printed}");
    let ed_record = printed.split('"').nth(1).expect("quoted record").to_string();
    let rsa = Command::new("openssl").args(["genrsa", "2048"]).output().expect("openssl (Debian) generates the RSA key");
    assert!(rsa.status.success());
    let rsa_file = keys.path().join("rsa.pem");
    std::fs::write(&rsa_file, &rsa.stdout).expect("write");
    let rsa_public = RsaKey::<Sha256>::from_key_der(PrivateKeyDer::from_pem_slice(&rsa.stdout).expect("pem")).expect("rsa").public_key();
    let rsa_record = format!("v=DKIM1; k=rsa; p={}", to_base64(&rsa_public));

    let mut zone = Zone::new();
    zone.add("ed._domainkey.example.com", Rr::txt(&ed_record)).add("rsa._domainkey.example.com", Rr::txt(&rsa_record));
    let dns = DnsServer::start(zone);
    let s = start_with(&format!(
        "[[domain.dkim]]\nselector = \"ed\"\nkey_file = \"{}\"\n[[domain.dkim]]\nselector = \"rsa\"\nkey_file = \"{}\"\n",
        ed_file.display(),
        rsa_file.display()
    ));
    let mut args = vec!["--tls", "--from", "alice@example.com", "--to", "bob@example.com", "--header", "Subject: signed"];
    let auth = login("alice@example.com", PASSWORD);
    args.extend(auth.iter().map(String::as_str));
    let transcript = swaks(s.submission, &args);
    assert!(transcript.contains("250 2.0.0 Ok: queued as"), "{transcript}");
    let received = s.sink.wait_for(1, Duration::from_secs(20));
    let data = received[0].data.clone();
    let text = String::from_utf8_lossy(&data).to_string();
    assert_eq!(text.matches("DKIM-Signature:").count(), 2, "{text}");

    let (passed, results) = verified_selectors(&dns, &data);
    assert_eq!(passed.len(), 2, "both signatures verify: {results}\n{text}");
}

/// The selectors whose DKIM signatures on `data` verify against `dns`, and the results.
pub(crate) fn verified_selectors(dns: &DnsServer, data: &[u8]) -> (Vec<String>, String) {
    use mail_auth::{AuthenticatedMessage, DkimResult};
    let resolver = rempart_scanner::dns::Dns::new(&rempart_model::config::DnsConfig {
        servers: vec![dns.addr],
        timeout_ms: 1000,
        attempts: 1,
        offline: false,
    })
    .expect("resolver");
    tokio::runtime::Runtime::new().expect("runtime").block_on(async {
        let message = AuthenticatedMessage::parse(data).expect("parses");
        let results = resolver.authenticator().expect("online").verify_dkim(&message).await;
        let mut passed: Vec<String> =
            results.iter().filter(|r| *r.result() == DkimResult::Pass).filter_map(|r| r.signature().map(|s| s.s.clone())).collect();
        passed.sort();
        (passed, format!("{results:?}"))
    })
}

/// Keys generated through the running gateway's management API (`rempart dkim add`,
/// the admin socket) sign at once, sealed in the store; a rotation signs with both
/// during the overlap; a removed key stops signing.
#[test]
fn stored_dkim_keys_sign_at_once_and_rotate_with_an_overlap() {
    let s = start();
    let path = s.gw.config_path.display().to_string();
    let cli = |args: &[&str]| {
        let mut all = vec!["--config", path.as_str()];
        all.extend_from_slice(args);
        let out = run_rempart(&all, s.gw.dir.path(), None);
        (out.status.success(), String::from_utf8_lossy(&out.stdout).trim().to_string(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    let auth = login("alice@example.com", PASSWORD);
    let mut sent = 0;
    let mut submit = |subject: &str| {
        let mut args = vec!["--tls", "--from", "alice@example.com", "--to", "bob@example.com", "--header"];
        let header = format!("Subject: {subject}");
        args.push(&header);
        args.extend(auth.iter().map(String::as_str));
        let transcript = swaks(s.submission, &args);
        assert!(transcript.contains("250 2.0.0 Ok: queued as"), "{transcript}");
        sent += 1;
        s.sink.wait_for(sent, Duration::from_secs(20))[sent - 1].data.clone()
    };
    assert!(!String::from_utf8_lossy(&submit("before")).contains("DKIM-Signature:"), "no key yet");

    let (ok, s1, err) = cli(&["dkim", "add", "example.com", "--selector", "s1", "--algorithm", "rsa"]);
    assert!(ok, "{err}\n{}", s.gw.log());
    assert!(s1.starts_with("s1._domainkey.example.com. IN TXT \"v=DKIM1; k=rsa; p=MII"), "{s1}");
    std::thread::sleep(Duration::from_millis(1500));
    let one = submit("one key");

    let (ok, s2, err) = cli(&["dkim", "rotate", "example.com", "--selector", "s2", "--algorithm", "ed25519", "--overlap-hours", "1"]);
    assert!(ok, "{err}");
    let (ok, _, err) = cli(&["dkim", "add", "example.com", "--selector", "s2"]);
    assert!(!ok && err.contains("already has a key with selector s2"), "{err}");
    std::thread::sleep(Duration::from_millis(1500));
    let both = submit("rotation overlap");
    let (_, listed, _) = cli(&["dkim", "list", "example.com"]);
    assert!(listed.contains("s1\trsa\tretiring at") && listed.contains("s2\ted25519\tsigning"), "{listed}");

    let (ok, _, err) = cli(&["dkim", "remove", "example.com", "s1"]);
    assert!(ok, "{err}");
    std::thread::sleep(Duration::from_millis(1500));
    let after = submit("after retirement");

    let record = |line: &str| line.split('"').nth(1).expect("quoted record").to_string();
    let mut zone = Zone::new();
    zone.add("s1._domainkey.example.com", Rr::txt(&record(&s1))).add("s2._domainkey.example.com", Rr::txt(&record(&s2)));
    let dns = DnsServer::start(zone);
    assert_eq!(verified_selectors(&dns, &one).0, ["s1"]);
    assert_eq!(verified_selectors(&dns, &both).0, ["s1", "s2"], "both sign during the overlap");
    assert_eq!(verified_selectors(&dns, &after).0, ["s2"]);

    // Sealed at rest: the store never holds a private key in clear.
    let store = std::fs::read(s.gw.dir.path().join("data/state.redb")).expect("the embedded store");
    assert!(!store.windows(11).any(|w| w == b"PRIVATE KEY"), "a private key in clear in the store");
    assert!(s.gw.dir.path().join("data/secret.key").exists());

    // Bad names are refused, naming what is wrong.
    for (args, want) in [
        (vec!["dkim", "generate", "not a domain", "s1"], "is not a domain name"),
        (vec!["dkim", "generate", "example.com", "bad selector!"], "is not a DKIM selector"),
        (vec!["dkim", "generate", "example.com", "s1", "--algorithm", "dsa"], "is not a DKIM key algorithm"),
        (vec!["dkim", "add", "not-served.example"], "no such domain"),
    ] {
        let (ok, _, err) = cli(&args);
        assert!(!ok && err.contains(want), "{args:?}: {err}");
    }
}

fn to_base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
