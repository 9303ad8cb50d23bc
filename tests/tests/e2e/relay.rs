//! End to end: real SMTP clients (swaks, Python's smtplib) → `rempart serve` → the sink
//! standing in for the customer's server; retries on 4xx; DSNs on 5xx.

use std::process::Command;
use std::time::{Duration, Instant};

use rempart_tests::{Gateway, Sink, SinkMode, SmtpClient, message};

fn config(customer: &Sink, sender_domain: &Sink) -> String {
    format!(
        r#"
[smtp]
hostname = "gw.test"

[[smtp.listener]]
address = "{{listen}}"

[queue]
data_dir = "{{data}}"
retry = ["300ms", "600ms"]

[[domain]]
name = "example.com"
route = "{}"
recipients = ["alice", "bob"]

[[domain]]
name = "sender.test"
route = "{}"
"#,
        customer.route(),
        sender_domain.route()
    )
}

/// The delivered bytes are one Received header followed by the original, unchanged.
fn assert_relayed_intact(data: &[u8], original: &[u8]) {
    assert!(data.ends_with(original), "body changed:\n{}", String::from_utf8_lossy(data));
    let added = String::from_utf8_lossy(&data[..data.len() - original.len()]).to_string();
    assert!(added.starts_with("Received: from "), "{added}");
    assert!(added.contains("by gw.test (Rempart) with ESMTP id "), "{added}");
    let folded_lines = added.split("\r\n").filter(|l| !l.is_empty()).skip(1).all(|l| l.starts_with('\t'));
    assert!(folded_lines, "only one header added:\n{added}");
}

#[test]
fn swaks_message_is_relayed_byte_identical() {
    let sink = Sink::start(SinkMode::Accept);
    let gw = Gateway::in_process(&config(&sink, &sink));
    let original = message("swaks-test");
    let file = gw.dir.path().join("msg.eml");
    std::fs::write(&file, &original).unwrap();
    let out = Command::new("swaks")
        .args(["--server", &gw.addr(), "--ehlo", "client.test", "--from", "sender@sender.test", "--to", "alice@example.com", "--data"])
        .arg(format!("@{}", file.display()))
        .output()
        .expect("swaks is installed by scripts/setup.sh");
    let transcript = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "swaks failed:\n{transcript}");
    assert!(transcript.contains("<-  250 2.0.0 Ok: queued as "), "{transcript}");
    let got = sink.wait_for(1, Duration::from_secs(15));
    assert_eq!(got.len(), 1, "{}", gw.log());
    assert_eq!((got[0].mail_from.as_str(), got[0].rcpt_to.clone()), ("sender@sender.test", vec!["alice@example.com".to_string()]));
    // swaks always ends DATA with CRLF "." CRLF after the file, so it sends one more
    // empty line than the file holds: that is what must arrive.
    assert_relayed_intact(&got[0].data, format!("{original}\r\n").as_bytes());
}

#[test]
fn python_smtplib_message_is_relayed_byte_identical() {
    let sink = Sink::start(SinkMode::Accept);
    let gw = Gateway::in_process(&config(&sink, &sink));
    // 8-bit UTF-8, a leading dot, a long-ish line, two recipients.
    let original = "From: =?utf-8?q?Ren=C3=A9?= <rene@sender.test>\r\nTo: alice@example.com, bob@example.com\r\nSubject: caf\u{e9}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nD\u{e9}j\u{e0} vu.\r\n.\r\n..two dots\r\n".to_string() + &"x".repeat(900) + "\r\n";
    let file = gw.dir.path().join("msg.eml");
    std::fs::write(&file, &original).unwrap();
    let script = format!(
        "import smtplib,sys\nmsg=open(sys.argv[1],'rb').read()\ns=smtplib.SMTP('127.0.0.1',{})\ns.ehlo('py.test')\nr=s.sendmail('rene@sender.test',['alice@example.com','bob@example.com'],msg,mail_options=['BODY=8BITMIME'])\nprint('refused',r)\ns.quit()\n",
        gw.port
    );
    let out = Command::new("python3").arg("-c").arg(script).arg(&file).output().expect("python3");
    assert!(out.status.success(), "smtplib: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let got = sink.wait_for(1, Duration::from_secs(15));
    assert_eq!(got.len(), 1, "{}", gw.log());
    assert_eq!(got[0].rcpt_to, vec!["alice@example.com", "bob@example.com"]);
    assert!(got[0].mail_params.contains("BODY=8BITMIME"), "{}", got[0].mail_params);
    assert_relayed_intact(&got[0].data, original.as_bytes());
}

#[test]
fn temporary_failures_are_retried_until_delivered() {
    let sink = Sink::start(SinkMode::TempFailUntil(Instant::now() + Duration::from_millis(1500)));
    let gw = Gateway::in_process(&config(&sink, &sink));
    let mut c = SmtpClient::connect(&gw.addr());
    c.ehlo();
    assert_eq!(c.send_mail("sender@sender.test", &["alice@example.com"], &message("retry")).code, 250);
    let got = sink.wait_for(1, Duration::from_secs(20));
    assert_eq!(got.len(), 1, "not delivered after the sink recovered:\n{}", gw.log());
    assert!(sink.rcpt_attempts() >= 2, "no retry happened");
    assert!(gw.log().contains("\"result\":\"deferred\""), "{}", gw.log());
}

/// The delivery-status fields of a failure DSN, after checking its human-readable part.
fn parse_dsn(data: &[u8]) -> String {
    let parsed = mail_parser::MessageParser::default().parse(data).expect("DSN parses");
    let human = parsed.body_text(0).expect("a human-readable part").to_string();
    assert!(human.contains("could not be delivered") && human.contains("n'a pas pu être remis"), "{human}");
    rempart_tests::delivery_status(data)
}

#[test]
fn permanent_failure_sends_a_dsn_to_the_sender() {
    let customer = Sink::start(SinkMode::Reject);
    let sender_side = Sink::start(SinkMode::Accept);
    let gw = Gateway::in_process(&config(&customer, &sender_side));
    let mut c = SmtpClient::connect(&gw.addr());
    c.ehlo();
    assert_eq!(c.cmd("MAIL FROM:<sender@sender.test> RET=HDRS ENVID=env+2B1").code, 250);
    assert_eq!(c.cmd("RCPT TO:<alice@example.com> NOTIFY=FAILURE ORCPT=rfc822;Alice@example.com").code, 250);
    assert_eq!(c.cmd("DATA").code, 354);
    c.send_raw(format!("{}.\r\n", message("bounce-me")).as_bytes());
    assert_eq!(c.read_reply().code, 250);

    let got = sender_side.wait_for(1, Duration::from_secs(20));
    assert_eq!(got.len(), 1, "no DSN arrived:\n{}", gw.log());
    let dsn = &got[0];
    assert_eq!(dsn.mail_from, "", "a DSN is sent from the null sender");
    assert_eq!(dsn.rcpt_to, vec!["sender@sender.test"]);
    let status = parse_dsn(&dsn.data);
    for field in [
        "Final-Recipient: rfc822; alice@example.com",
        "Original-Recipient: rfc822; Alice@example.com",
        "Action: failed",
        "Status: 5.1.1",
        "Remote-MTA: dns; 127.0.0.1",
        "Diagnostic-Code: smtp; 550 5.1.1 no such user here",
        "Original-Envelope-Id: env+1",
    ] {
        assert!(status.contains(field), "missing {field:?} in:\n{status}");
    }
    let raw = String::from_utf8_lossy(&dsn.data);
    assert!(
        raw.contains("Content-Type: text/rfc822-headers") && raw.contains("Subject: bounce-me"),
        "RET=HDRS returns the headers:\n{raw}"
    );
    assert!(!raw.contains(".leading dot line"), "RET=HDRS must not return the body");
    assert!(customer.messages().is_empty());
}

#[test]
fn no_dsn_for_notify_never_or_null_sender() {
    let customer = Sink::start(SinkMode::Reject);
    let sender_side = Sink::start(SinkMode::Accept);
    let gw = Gateway::in_process(&config(&customer, &sender_side));
    let mut c = SmtpClient::connect(&gw.addr());
    c.ehlo();
    assert_eq!(c.cmd("MAIL FROM:<sender@sender.test>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<alice@example.com> NOTIFY=NEVER").code, 250);
    assert_eq!(c.cmd("DATA").code, 354);
    c.send_raw(format!("{}.\r\n", message("never")).as_bytes());
    assert_eq!(c.read_reply().code, 250);
    assert_eq!(c.send_mail("", &["bob@example.com"], &message("null-sender")).code, 250);
    assert!(rempart_tests::wait_until(Duration::from_secs(15), || customer.rcpt_attempts() >= 2), "{}", gw.log());
    std::thread::sleep(Duration::from_secs(1));
    assert!(sender_side.messages().is_empty(), "unexpected DSN: {:?}", sender_side.messages());
    assert!(gw.log().contains("no report is sent to the null sender"), "{}", gw.log());
}

#[test]
fn dsn_parameters_are_passed_to_the_customer_server() {
    let sink = Sink::start(SinkMode::Accept);
    let gw = Gateway::in_process(&config(&sink, &sink));
    let mut c = SmtpClient::connect(&gw.addr());
    c.ehlo();
    assert_eq!(c.cmd("MAIL FROM:<sender@sender.test> RET=FULL ENVID=abc123 SIZE=300").code, 250);
    assert_eq!(c.cmd("RCPT TO:<alice@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;alice@example.com").code, 250);
    assert_eq!(c.cmd("DATA").code, 354);
    c.send_raw(format!("{}.\r\n", message("dsn-params")).as_bytes());
    assert_eq!(c.read_reply().code, 250);
    let got = sink.wait_for(1, Duration::from_secs(15));
    assert_eq!(got.len(), 1);
    assert!(got[0].mail_params.contains("RET=FULL") && got[0].mail_params.contains("ENVID=abc123"), "{}", got[0].mail_params);
    assert_eq!(got[0].rcpt_params, vec!["NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;alice@example.com"]);
}

#[test]
fn smtputf8_message_is_not_sent_to_a_server_without_smtputf8() {
    let customer = Sink::start(SinkMode::AcceptWithoutSmtpUtf8);
    let sender_side = Sink::start(SinkMode::Accept);
    let gw = Gateway::in_process(&config(&customer, &sender_side));
    let mut c = SmtpClient::connect(&gw.addr());
    c.ehlo();
    assert_eq!(c.cmd("MAIL FROM:<sender@sender.test> SMTPUTF8").code, 250);
    assert_eq!(c.cmd("RCPT TO:<alice@example.com>").code, 250);
    assert_eq!(c.cmd("DATA").code, 354);
    c.send_raw("From: Jos\u{e9} <jos\u{e9}@sender.test>\r\nSubject: utf8\r\n\r\nol\u{e9}\r\n.\r\n".as_bytes());
    assert_eq!(c.read_reply().code, 250);
    // ASCII envelope: delivered even though the header has UTF-8 (nothing to refuse).
    assert_eq!(customer.wait_for(1, Duration::from_secs(15)).len(), 1);

    assert_eq!(c.cmd("MAIL FROM:<sender@sender.test> SMTPUTF8").code, 250);
    assert_eq!(c.cmd("RCPT TO:<b\u{f6}b@example.com>").code, 550, "not in the recipient list");
    assert_eq!(c.cmd("RSET").code, 250);
    let open_config = config(&customer, &sender_side).replace("recipients = [\"alice\", \"bob\"]\n", "");
    drop(c);
    drop(gw);
    let gw = Gateway::in_process(&open_config);
    let mut c = SmtpClient::connect(&gw.addr());
    c.ehlo();
    assert_eq!(c.cmd("MAIL FROM:<sender@sender.test> SMTPUTF8").code, 250);
    assert_eq!(c.cmd("RCPT TO:<b\u{f6}b@example.com>").code, 250);
    assert_eq!(c.cmd("DATA").code, 354);
    c.send_raw(b"Subject: utf8 rcpt\r\n\r\nhi\r\n.\r\n");
    assert_eq!(c.read_reply().code, 250);
    let dsn = sender_side.wait_for(1, Duration::from_secs(15));
    assert_eq!(dsn.len(), 1, "{}", gw.log());
    let status = parse_dsn(&dsn[0].data);
    assert!(status.contains("Status: 5.6.7") && status.contains("SMTPUTF8 is required"), "{status}");
    assert_eq!(customer.messages().len(), 1);
}

/// Sends `count` messages one after the other, each delivered before the next is sent.
fn send_sequentially(gw: &Gateway, sink: &Sink, count: usize) {
    for i in 0..count {
        let mut c = SmtpClient::connect(&gw.addr());
        c.ehlo();
        assert_eq!(c.send_mail("sender@sender.test", &["alice@example.com"], &message(&format!("seq-{i}"))).code, 250);
        assert_eq!(sink.wait_for(i + 1, Duration::from_secs(15)).len(), i + 1, "{}", gw.log());
    }
}

#[test]
fn connections_to_a_route_are_reused() {
    let sink = Sink::start(SinkMode::Accept);
    let gw = Gateway::in_process(&config(&sink, &sink));
    send_sequentially(&gw, &sink, 5);
    assert_eq!(sink.connections(), 1, "one connection for five messages");
}

#[test]
fn a_connection_closed_while_idle_is_replaced_without_a_retry() {
    let sink = Sink::start(SinkMode::AcceptThenHangUp);
    let gw = Gateway::in_process(&config(&sink, &sink));
    send_sequentially(&gw, &sink, 4);
    assert_eq!(sink.connections(), 4);
    assert!(!gw.log().contains("\"result\":\"deferred\""), "{}", gw.log());
}

/// A remote reply of 100 lines becomes a folded, capped Diagnostic-Code: the DSN parses
/// with mail-parser and no line passes 998 bytes (RFC 5322 §2.1.1).
#[test]
fn dsn_diagnostic_of_a_long_reply_is_folded() {
    let customer = Sink::start(SinkMode::RejectVerbose(100));
    let sender_side = Sink::start(SinkMode::Accept);
    let gw = Gateway::in_process(&config(&customer, &sender_side));
    let mut c = SmtpClient::connect(&gw.addr());
    c.ehlo();
    assert_eq!(c.send_mail("s@sender.test", &["alice@example.com"], &message("verbose-refusal")).code, 250);
    let got = sender_side.wait_for(1, Duration::from_secs(20));
    assert_eq!(got.len(), 1, "no DSN:\n{}", gw.log());
    let dsn = &got[0].data;
    let longest = dsn.split(|&b| b == b'\n').map(<[u8]>::len).max().unwrap_or(0);
    assert!(longest <= 998 + 1, "a line of {longest} bytes");
    let status = rempart_tests::delivery_status(dsn);
    assert!(status.contains("Action: failed") && status.contains("Status: 5.7.1"), "{status}");
    let diagnostic = status.split("Diagnostic-Code:").nth(1).expect("a Diagnostic-Code").split("\r\nLast-Attempt-Date").next().unwrap();
    assert!(diagnostic.contains("\r\n "), "folded: {diagnostic}");
    assert!(diagnostic.contains("line 1 of 100") && diagnostic.ends_with("[...]"), "{diagnostic}");
}

/// `relay.per_destination = 1`: a burst of messages for one slow customer server
/// (0.4 s to accept each) goes over one connection at a time, none is lost while
/// workers find the destination busy and put their message back for a moment, and
/// another destination's mail is not held up behind it.
#[test]
fn per_destination_limit_keeps_one_delivery_at_a_time_and_loses_nothing() {
    let slow = Sink::start(SinkMode::SlowAccept(Duration::from_millis(400)));
    let fast = Sink::start(SinkMode::Accept);
    let gw = Gateway::in_process(&format!("{}\n[relay]\nconcurrency = 8\nper_destination = 1\n", config(&slow, &fast)));
    let senders: Vec<_> = (0..12)
        .map(|i| {
            let addr = gw.addr();
            let to = if i < 8 { "alice@example.com" } else { "someone@sender.test" };
            std::thread::spawn(move || {
                let mut c = SmtpClient::connect(&addr);
                c.ehlo();
                c.send_mail("sender@sender.test", &[to], &message(&format!("burst-{i}"))).code
            })
        })
        .collect();
    for sender in senders {
        assert_eq!(sender.join().expect("sender thread"), 250);
    }
    assert_eq!(fast.wait_for(4, Duration::from_secs(30)).len(), 4, "{}", gw.log());
    let slow_so_far = slow.messages().len();
    assert!(slow_so_far < 8, "the other destination's mail did not wait for the slow one ({slow_so_far} of 8 already there)");
    assert_eq!(slow.wait_for(8, Duration::from_secs(30)).len(), 8, "{}", gw.log());
    assert_eq!(slow.most_connections_at_once(), 1, "one delivery at a time");
    assert_eq!(slow.connections(), 1, "one connection, reused");
    assert!(!gw.log().contains("\"result\":\"deferred\""), "busy is not a failed attempt: {}", gw.log());
}

/// ETRN (RFC 1985): the customer's server (the route's address, 127.0.0.1 here) asks
/// for its waiting mail at once instead of an hour later; another address, another
/// domain, a queue name or a mail transaction are refused, each saying why.
#[test]
fn etrn_from_the_customer_server_retries_its_waiting_mail_now() {
    let customer = Sink::start(SinkMode::TempFailUntil(Instant::now() + Duration::from_millis(1500)));
    let gw = Gateway::in_process(&config(&customer, &customer).replace("retry = [\"300ms\", \"600ms\"]", "retry = [\"1h\"]"));
    let mut c = SmtpClient::connect(&gw.addr());
    assert!(c.ehlo().text().contains("ETRN"), "advertised on the MX port");
    assert_eq!(c.send_mail("sender@sender.test", &["alice@example.com"], &message("etrn")).code, 250);
    assert!(rempart_tests::wait_until(Duration::from_secs(10), || gw.log().contains("\"result\":\"deferred\"")), "{}", gw.log());
    std::thread::sleep(Duration::from_millis(1600));
    assert!(customer.messages().is_empty(), "the next attempt is an hour away");

    // Not the customer's server: 127.0.0.2 is not the route's address.
    let script = "import smtplib,sys\ns=smtplib.SMTP(sys.argv[1],int(sys.argv[2]),source_address=('127.0.0.2',0))\ns.ehlo('other.test')\nprint(s.docmd('ETRN','example.com'))";
    let other = rempart_tests::python(script, &["127.0.0.1", &gw.port.to_string()]);
    assert!(other.contains("459") && other.contains("only the domain's own server"), "{other}");
    for (command, expected) in
        [("ETRN other.test", "459 4.7.1 Node other.test not allowed"), ("ETRN #queue", "458 4.3.0"), ("ETRN", "501 5.5.4")]
    {
        let reply = c.cmd(command);
        assert!(reply.text().starts_with(expected), "{command}: {reply:?}");
    }
    assert_eq!(c.cmd("MAIL FROM:<s@sender.test>").code, 250);
    assert_eq!(c.cmd("ETRN example.com").code, 503, "not during a transaction");
    assert_eq!(c.cmd("RSET").code, 250);

    let started = Instant::now();
    let reply = c.cmd("ETRN example.com");
    assert_eq!(reply.code, 253, "{reply:?}");
    assert!(reply.text().ends_with("OK, 1 pending messages for node example.com started"), "{reply:?}");
    assert_eq!(customer.wait_for(1, Duration::from_secs(10)).len(), 1, "{}", gw.log());
    assert!(started.elapsed() < Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(c.cmd("ETRN @example.com").code, 251, "nothing waits any more");
}
