//! The SMTP protocol as a client sees it: reply codes (each with its enhanced status
//! code), relaying refused, pipelining, BDAT, smuggling, limits and timeouts.

use std::io::Write;
use std::time::{Duration, Instant};

use rempart_tests::{Gateway, Sink, SinkMode, SmtpClient, message, wait_until};

fn start(sink: &Sink, smtp_extra: &str) -> Gateway {
    Gateway::in_process(&format!(
        r#"
[smtp]
hostname = "gw.test"
max_recipients = 3
max_message_size = 4000
{smtp_extra}

[[smtp.listener]]
address = "{{listen}}"

[queue]
data_dir = "{{data}}"

[[domain]]
name = "example.com"
route = "{}"
recipients = ["alice", "bob", "carol", "dave"]
"#,
        sink.route()
    ))
}

#[track_caller]
fn expect(reply: rempart_tests::client::Reply, code: u16, enhanced: &str) {
    assert_eq!(reply.code, code, "{reply:?}");
    assert_eq!(reply.enhanced().as_deref(), Some(enhanced), "{reply:?}");
}

#[test]
fn basic_commands_and_sequence_errors() {
    let sink = Sink::start(SinkMode::Accept);
    let gw = start(&sink, "max_errors = 50");
    let mut c = SmtpClient::connect(&gw.addr());
    expect(c.cmd("MAIL FROM:<a@sender.test>"), 503, "5.5.1");
    expect(c.cmd("FROBNICATE"), 500, "5.5.1");
    expect(c.cmd("EHLO"), 501, "5.5.4");
    let ehlo = c.ehlo();
    for ext in ["PIPELINING", "SIZE 4000", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "CHUNKING", "DSN"] {
        assert!(ehlo.lines.iter().any(|l| l[4..] == *ext), "{ext} not advertised: {ehlo:?}");
    }
    assert!(!ehlo.text().contains("STARTTLS"), "no certificate configured, no STARTTLS");
    expect(c.cmd("RCPT TO:<alice@example.com>"), 503, "5.5.1");
    expect(c.cmd("DATA"), 503, "5.5.1");
    expect(c.cmd("MAIL TO:<a@sender.test>"), 501, "5.5.4");
    expect(c.cmd("MAIL FROM:<a@sender.test> FOO=BAR"), 555, "5.5.4");
    expect(c.cmd("MAIL FROM:<a@@sender.test>"), 501, "5.1.7");
    expect(c.cmd("MAIL FROM:<a@sender.test>"), 250, "2.1.0");
    expect(c.cmd("MAIL FROM:<a@sender.test>"), 503, "5.5.1");
    expect(c.cmd("DATA"), 503, "5.5.1");
    expect(c.cmd("RCPT TO:<bad address>"), 501, "5.1.3");
    expect(c.cmd("RSET"), 250, "2.0.0");
    expect(c.cmd("NOOP"), 250, "2.0.0");
    expect(c.cmd("VRFY alice"), 252, "2.5.0");
    expect(c.cmd("HELP"), 214, "2.0.0");
    expect(c.cmd("EXPN staff"), 502, "5.5.1");
    expect(c.cmd("STARTTLS"), 502, "5.5.1");
    expect(c.cmd("QUIT"), 221, "2.0.0");
    assert!(c.is_closed());
}

#[test]
fn never_an_open_relay() {
    let sink = Sink::start(SinkMode::Accept);
    let gw = start(&sink, "max_errors = 100");
    let mut c = SmtpClient::connect(&gw.addr());
    c.ehlo();
    expect(c.cmd("MAIL FROM:<spammer@sender.test>"), 250, "2.1.0");
    for (rcpt, code, status) in [
        ("<victim@elsewhere.test>", 550, "5.7.1"),
        ("<alice@example.com.elsewhere.test>", 550, "5.7.1"),
        ("<victim%elsewhere.test@example.com>", 550, "5.7.1"),
        ("<elsewhere.test!victim@example.com>", 550, "5.7.1"),
        ("<@example.com:victim@elsewhere.test>", 550, "5.7.1"),
        ("<@example.com,@relay.test:alice@example.com>", 550, "5.7.1"),
        ("<\"victim@elsewhere.test\"@example.com>", 550, "5.7.1"),
        ("<victim@[127.0.0.1]>", 550, "5.7.1"),
        ("<postmaster@elsewhere.test>", 550, "5.7.1"),
        ("<postmaster>", 250, "2.1.5"),
        ("<mallory@example.com>", 550, "5.1.1"),
        ("<alice@EXAMPLE.com.>", 250, "2.1.5"),
        ("<alice+news@example.com>", 250, "2.1.5"),
    ] {
        expect(c.cmd(&format!("RCPT TO:{rcpt}")), code, status);
    }
    expect(c.cmd("RSET"), 250, "2.0.0");
    // With no recipient accepted, nothing can be sent.
    expect(c.cmd("MAIL FROM:<spammer@sender.test>"), 250, "2.1.0");
    expect(c.cmd("RCPT TO:<victim@elsewhere.test>"), 550, "5.7.1");
    expect(c.cmd("DATA"), 503, "5.5.1");
}

#[test]
fn default_config_relays_for_nobody() {
    let gw = Gateway::in_process("[[smtp.listener]]\naddress = \"{listen}\"\n[queue]\ndata_dir = \"{data}\"\n");
    let mut c = SmtpClient::connect(&gw.addr());
    c.ehlo();
    expect(c.cmd("MAIL FROM:<a@sender.test>"), 250, "2.1.0");
    expect(c.cmd("RCPT TO:<someone@example.com>"), 550, "5.7.1");
    expect(c.cmd("RCPT TO:<someone@localhost>"), 550, "5.7.1");
}

#[test]
fn pipelined_transaction() {
    let sink = Sink::start(SinkMode::Accept);
    let gw = start(&sink, "");
    let mut c = SmtpClient::connect(&gw.addr());
    c.send_raw(b"EHLO client.test\r\nMAIL FROM:<s@sender.test>\r\nRCPT TO:<alice@example.com>\r\nRCPT TO:<nobody@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n");
    assert_eq!(c.read_reply().code, 250);
    expect(c.read_reply(), 250, "2.1.0");
    expect(c.read_reply(), 250, "2.1.5");
    expect(c.read_reply(), 550, "5.1.1");
    expect(c.read_reply(), 250, "2.1.5");
    assert_eq!(c.read_reply().code, 354);
    c.send_raw(format!("{}.\r\nQUIT\r\n", message("pipelined")).as_bytes());
    let done = c.read_reply();
    expect(done.clone(), 250, "2.0.0");
    assert!(done.text().contains("queued as "));
    assert_eq!(c.read_reply().code, 221);
    let got = sink.wait_for(1, Duration::from_secs(15));
    assert_eq!(got[0].rcpt_to, vec!["alice@example.com", "bob@example.com"]);
}

#[test]
fn bdat_chunks() {
    let sink = Sink::start(SinkMode::Accept);
    let gw = start(&sink, "");
    let mut c = SmtpClient::connect(&gw.addr());
    c.ehlo();
    // Refused BDAT: its bytes are still consumed, never read as commands.
    c.send_raw(b"BDAT 6\r\nNOOP\r\n");
    expect(c.read_reply(), 503, "5.5.1");
    expect(c.cmd("NOOP"), 250, "2.0.0");
    expect(c.cmd("MAIL FROM:<s@sender.test>"), 250, "2.1.0");
    expect(c.cmd("RCPT TO:<alice@example.com>"), 250, "2.1.5");
    let body = message("bdat");
    let (first, second) = body.split_at(40);
    c.send_raw(format!("BDAT {}\r\n{first}", first.len()).as_bytes());
    expect(c.read_reply(), 250, "2.0.0");
    expect(c.cmd("DATA"), 503, "5.5.1");
    c.send_raw(format!("BDAT {} LAST\r\n{second}", second.len()).as_bytes());
    expect(c.read_reply(), 250, "2.0.0");
    let got = sink.wait_for(1, Duration::from_secs(15));
    assert!(got[0].data.ends_with(body.as_bytes()));
    // BDAT 0 LAST ends a message; an oversize one is refused after being read.
    expect(c.cmd("MAIL FROM:<s@sender.test>"), 250, "2.1.0");
    expect(c.cmd("RCPT TO:<alice@example.com>"), 250, "2.1.5");
    c.send_raw(format!("BDAT 5000\r\n{}", "x".repeat(5000)).as_bytes());
    expect(c.read_reply(), 250, "2.0.0");
    expect(c.cmd("BDAT 0 LAST"), 552, "5.3.4");
    expect(c.cmd("NOOP"), 250, "2.0.0");
    // A BDAT without a size cannot be framed: the session ends.
    assert_eq!(c.cmd("BDAT lots").code, 501);
    assert!(c.is_closed());
}

/// The SMTP smuggling sequences: a lone LF or CR around the dot never ends DATA, and a
/// message containing them is refused whole, smuggled "second message" included.
#[test]
fn smuggling_attempts_are_refused_whole() {
    let sink = Sink::start(SinkMode::Accept);
    let gw = start(&sink, "max_errors = 50");
    let mut c = SmtpClient::connect(&gw.addr());
    c.ehlo();
    for ending in ["\n.\n", "\r.\r", "\n.\r\n", "\r.\r\n", "\r\n.\n", "\r\n.\r"] {
        expect(c.cmd("MAIL FROM:<s@sender.test>"), 250, "2.1.0");
        expect(c.cmd("RCPT TO:<alice@example.com>"), 250, "2.1.5");
        assert_eq!(c.cmd("DATA").code, 354);
        let smuggled = format!(
            "Subject: first\r\n\r\nhello{ending}MAIL FROM:<admin@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n.\r\n"
        );
        c.send_raw(smuggled.as_bytes());
        let reply = c.read_reply();
        expect(reply, 554, "5.6.0");
        // Exactly one reply: the smuggled commands were never executed.
        expect(c.cmd("NOOP"), 250, "2.0.0");
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(sink.messages().is_empty(), "{:?}", sink.messages());
}

#[test]
fn line_and_size_limits() {
    let sink = Sink::start(SinkMode::Accept);
    let gw = start(&sink, "max_errors = 50");
    let mut c = SmtpClient::connect(&gw.addr());
    c.ehlo();
    expect(c.cmd(&format!("NOOP {}", "x".repeat(3000))), 500, "5.5.2");
    expect(c.cmd("NOOP"), 250, "2.0.0");
    c.send_raw(b"NOOP\n");
    expect(c.read_reply(), 500, "5.5.2");
    expect(c.cmd("MAIL FROM:<s@sender.test> SIZE=4001"), 552, "5.3.4");
    // DATA lines over 1000 bytes: strict_line_limit_is_optional.
    // A message over max_message_size.
    expect(c.cmd("MAIL FROM:<s@sender.test>"), 250, "2.1.0");
    expect(c.cmd("RCPT TO:<alice@example.com>"), 250, "2.1.5");
    assert_eq!(c.cmd("DATA").code, 354);
    let big: String = (0..100).map(|i| format!("line {i} {}\r\n", "z".repeat(60))).collect();
    c.send_raw(format!("Subject: big\r\n\r\n{big}.\r\n").as_bytes());
    expect(c.read_reply(), 552, "5.3.4");
    // Too many recipients.
    expect(c.cmd("MAIL FROM:<s@sender.test>"), 250, "2.1.0");
    for r in ["alice", "bob", "carol"] {
        expect(c.cmd(&format!("RCPT TO:<{r}@example.com>")), 250, "2.1.5");
    }
    expect(c.cmd("RCPT TO:<dave@example.com>"), 452, "4.5.3");
    std::thread::sleep(Duration::from_millis(300));
    assert!(sink.messages().is_empty());
}

#[test]
fn too_many_errors_close_the_session() {
    let sink = Sink::start(SinkMode::Accept);
    let gw = start(&sink, "max_errors = 6");
    let mut c = SmtpClient::connect(&gw.addr());
    for _ in 0..5 {
        assert_eq!(c.cmd("BOGUS").code, 500);
    }
    c.send_raw(b"BOGUS\r\n");
    assert_eq!(c.read_reply().code, 500);
    expect(c.read_reply(), 421, "4.7.0");
    assert!(c.is_closed());
}

#[test]
fn slow_clients_time_out() {
    let sink = Sink::start(SinkMode::Accept);
    let gw = start(&sink, "command_timeout = \"1s\"\ndata_timeout = \"1s\"");
    let started = Instant::now();
    let mut idle = SmtpClient::connect(&gw.addr());
    expect(idle.read_reply(), 421, "4.4.2");
    assert!(idle.is_closed());
    assert!(started.elapsed() < Duration::from_secs(5));

    // A client that sends a partial command line, byte by byte, is still cut off.
    let mut dripping = SmtpClient::connect(&gw.addr());
    let started = Instant::now();
    for b in b"EHLO slow" {
        if dripping.stream().try_clone().unwrap().write_all(&[*b]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let r = dripping.try_read_reply();
    assert!(r.as_ref().is_none_or(|r| r.code == 421), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(5));

    let mut stalled = SmtpClient::connect(&gw.addr());
    stalled.ehlo();
    stalled.cmd("MAIL FROM:<s@sender.test>");
    stalled.cmd("RCPT TO:<alice@example.com>");
    assert_eq!(stalled.cmd("DATA").code, 354);
    stalled.send_raw(b"Subject: half\r\n\r\nhalf a mess");
    expect(stalled.read_reply(), 421, "4.4.2");
    assert!(stalled.is_closed());
    std::thread::sleep(Duration::from_millis(300));
    assert!(sink.messages().is_empty(), "a half message was delivered");
}

#[test]
fn connection_limits_per_ip_and_in_all() {
    let sink = Sink::start(SinkMode::Accept);
    // Behind PROXY protocol, so the test can come from several client addresses.
    let gw = Gateway::in_process(&format!(
        "[smtp]\nmax_connections = 3\nmax_connections_per_ip = 2\n[[smtp.listener]]\naddress = \"{{listen}}\"\nproxy_protocol = true\nproxy_from = [\"127.0.0.0/8\"]\n[queue]\ndata_dir = \"{{data}}\"\n[[domain]]\nname = \"example.com\"\nroute = \"{}\"\n",
        sink.route()
    ));
    let from = |ip: &str| format!("PROXY TCP4 {ip} 192.0.2.254 40000 25\r\n").into_bytes();
    // The readiness probe's connection may still be closing.
    std::thread::sleep(Duration::from_millis(300));
    let a1 = SmtpClient::connect_raw(&gw.addr(), Some(&from("192.0.2.1")));
    let a2 = SmtpClient::connect_raw(&gw.addr(), Some(&from("192.0.2.1")));
    let mut a3 = std::net::TcpStream::connect(gw.addr()).unwrap();
    a3.write_all(&from("192.0.2.1")).unwrap();
    let mut refused = SmtpClientReader::new(a3);
    let r = refused.line();
    assert!(r.starts_with("421 4.7.0 ") && r.contains("Too many connections from 192.0.2.1"), "{r}");
    let b1 = SmtpClient::connect_raw(&gw.addr(), Some(&from("192.0.2.2")));
    let c1 = std::net::TcpStream::connect(gw.addr()).unwrap();
    let r = SmtpClientReader::new(c1).line();
    assert!(r.starts_with("421 4.7.0 Too many connections"), "{r}");
    drop((a1, a2, b1));
    assert!(wait_until(Duration::from_secs(5), || std::net::TcpStream::connect(gw.addr()).is_ok_and(|mut s| {
        let _ = s.write_all(&from("192.0.2.3"));
        SmtpClientReader::new(s).line().starts_with("220")
    })));
}

struct SmtpClientReader(std::io::BufReader<std::net::TcpStream>);

impl SmtpClientReader {
    fn new(s: std::net::TcpStream) -> Self {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Self(std::io::BufReader::new(s))
    }
    fn line(&mut self) -> String {
        let mut l = String::new();
        let _ = std::io::BufRead::read_line(&mut self.0, &mut l);
        l
    }
}

#[test]
fn proxy_protocol_gives_the_real_client_address() {
    let sink = Sink::start(SinkMode::Accept);
    let gw = Gateway::in_process(&format!(
        "[[smtp.listener]]\naddress = \"{{listen}}\"\nproxy_protocol = true\nproxy_from = [\"127.0.0.0/8\"]\n[queue]\ndata_dir = \"{{data}}\"\n[[domain]]\nname = \"example.com\"\nroute = \"{}\"\n",
        sink.route()
    ));
    let mut v1 = SmtpClient::connect_raw(&gw.addr(), Some(b"PROXY TCP4 198.51.100.7 192.0.2.254 40000 25\r\n"));
    let ehlo = v1.ehlo();
    assert!(ehlo.lines[0].contains("[198.51.100.7]"), "{ehlo:?}");
    assert_eq!(v1.send_mail("s@sender.test", &["alice@example.com"], &message("v1")).code, 250);
    let v2_header = rempart_edge::proxy::encode_v2("[2001:db8::7]:4000".parse().unwrap(), "[2001:db8::1]:25".parse().unwrap());
    let mut v2 = SmtpClient::connect_raw(&gw.addr(), Some(&v2_header));
    v2.ehlo();
    assert_eq!(v2.send_mail("s@sender.test", &["alice@example.com"], &message("v2")).code, 250);
    let got = sink.wait_for(2, Duration::from_secs(15));
    let headers: Vec<String> = got.iter().map(|m| String::from_utf8_lossy(&m.data[..80]).to_string()).collect();
    assert!(headers.iter().any(|h| h.starts_with("Received: from client.test ([198.51.100.7])")), "{headers:?}");
    assert!(headers.iter().any(|h| h.starts_with("Received: from client.test ([2001:db8::7])")), "{headers:?}");
    // Without a PROXY header the connection is dropped, not served.
    let mut raw = std::net::TcpStream::connect(gw.addr()).unwrap();
    raw.write_all(b"EHLO sneaky\r\n").unwrap();
    assert!(!SmtpClientReader::new(raw).line().starts_with("220"));
}

#[test]
fn graceful_shutdown_answers_idle_sessions_and_exits() {
    let sink = Sink::start(SinkMode::Accept);
    let mut gw = start(&sink, "shutdown_timeout = \"3s\"");
    let mut idle = SmtpClient::connect(&gw.addr());
    idle.ehlo();
    let mut in_data = SmtpClient::connect(&gw.addr());
    in_data.ehlo();
    in_data.cmd("MAIL FROM:<s@sender.test>");
    in_data.cmd("RCPT TO:<alice@example.com>");
    assert_eq!(in_data.cmd("DATA").code, 354);
    in_data.send_raw(b"Subject: finishing\r\n\r\nstill sending\r\n");
    let started = Instant::now();
    let port = gw.port;
    let terminator = std::thread::spawn(move || {
        let exited = gw.terminate(Duration::from_secs(10));
        (exited, gw)
    });
    expect(idle.read_reply(), 421, "4.3.2");
    // The session in DATA may still finish its message.
    std::thread::sleep(Duration::from_millis(200));
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "still accepting after shutdown began");
    in_data.send_raw(b".\r\n");
    expect(in_data.read_reply(), 250, "2.0.0");
    let (exited, gw) = terminator.join().unwrap();
    assert!(exited, "did not exit:\n{}", gw.log());
    assert!(started.elapsed() < Duration::from_secs(8));
}

#[test]
fn per_domain_size_smtputf8_and_recipients_file() {
    let sink = Sink::start(SinkMode::Accept);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("small.recipients"), "# staff\nzoe\n  yann  # with a comment\n").unwrap();
    let gw = Gateway::in_process(&format!(
        "[smtp]\nmax_errors = 50\n[[smtp.listener]]\naddress = \"{{listen}}\"\n[queue]\ndata_dir = \"{{data}}\"\n[[domain]]\nname = \"example.com\"\nroute = \"{route}\"\n[[domain]]\nname = \"small.test\"\nroute = \"{route}\"\nmax_message_size = 500\nrecipients_file = \"{}\"\n",
        dir.path().join("small.recipients").display(),
        route = sink.route()
    ));
    let mut c = SmtpClient::connect(&gw.addr());
    c.ehlo();
    expect(c.cmd("MAIL FROM:<s@sender.test> SIZE=1000"), 250, "2.1.0");
    expect(c.cmd("RCPT TO:<anyone@example.com>"), 250, "2.1.5");
    expect(c.cmd("RCPT TO:<zoe@small.test>"), 552, "5.3.4");
    expect(c.cmd("RSET"), 250, "2.0.0");
    expect(c.cmd("MAIL FROM:<s@sender.test>"), 250, "2.1.0");
    expect(c.cmd("RCPT TO:<yann@small.test>"), 250, "2.1.5");
    expect(c.cmd("RCPT TO:<xavier@small.test>"), 550, "5.1.1");
    assert_eq!(c.cmd("DATA").code, 354);
    c.send_raw(format!("Subject: big for small.test\r\n\r\n{}\r\n.\r\n", "w".repeat(600)).as_bytes());
    expect(c.read_reply(), 552, "5.3.4");
    // Internationalised addresses need SMTPUTF8 (RFC 6531).
    expect(c.cmd("MAIL FROM:<jos\u{e9}@sender.test>"), 553, "5.6.7");
    expect(c.cmd("MAIL FROM:<jos\u{e9}@sender.test> SMTPUTF8"), 250, "2.1.0");
    expect(c.cmd("RCPT TO:<andr\u{e9}@example.com>"), 250, "2.1.5");
    assert_eq!(c.cmd("DATA").code, 354);
    c.send_raw("Subject: utf8\r\n\r\nol\u{e9}\r\n.\r\n".as_bytes());
    expect(c.read_reply(), 250, "2.0.0");
    let got = sink.wait_for(1, Duration::from_secs(15));
    assert_eq!(got[0].rcpt_to, vec!["andr\u{e9}@example.com"]);
    assert!(String::from_utf8_lossy(&got[0].data).contains("with UTF8SMTP id"));
}

/// Random garbage, random verbs with random arguments: the gateway answers or hangs
/// up, and never panics (a panic would print "panicked" on its stderr).
#[test]
fn garbage_input_never_panics() {
    let sink = Sink::start(SinkMode::Accept);
    let gw = start(&sink, "max_errors = 1000\ncommand_timeout = \"2s\"\ndata_timeout = \"2s\"");
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let verbs = [
        "EHLO",
        "HELO",
        "MAIL FROM:",
        "RCPT TO:",
        "DATA",
        "BDAT",
        "RSET",
        "VRFY",
        "STARTTLS",
        "NOOP",
        "MAIL FROM:<",
        "RCPT TO:<\"",
        "BDAT 1",
        "AUTH",
    ];
    for _ in 0..20 {
        let mut stream = std::net::TcpStream::connect(gw.addr()).unwrap();
        stream.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let mut bytes = Vec::new();
        for _ in 0..40 {
            let r = next();
            if r % 3 == 0 {
                bytes.extend((0..(r % 300)).map(|_| (next() % 256) as u8));
            } else {
                bytes.extend_from_slice(verbs[(r % verbs.len() as u64) as usize].as_bytes());
                let alphabet = b" <>@\"\\.:=%!a\x80\xff\0";
                bytes.extend((0..(next() % 40)).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]));
            }
            bytes.extend_from_slice(if next() % 5 == 0 { b"\n" } else { b"\r\n" });
        }
        let _ = stream.write_all(&bytes);
        let mut sink_bytes = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stream, &mut sink_bytes);
    }
    let mut c = SmtpClient::connect(&gw.addr());
    expect(c.cmd("NOOP"), 250, "2.0.0");
    std::thread::sleep(Duration::from_millis(200));
    assert!(!gw.log().contains("panicked"), "{}", gw.log());
}

/// Lines of 1,500, 5,000 and 50,000 bytes in the header and the body, sent with
/// smtplib, reach the customer's server byte for byte (Postfix, Exim and Stalwart
/// accept them; 2 % of real mail has them).
#[test]
fn long_lines_arrive_byte_identical() {
    let sink = Sink::start(SinkMode::Accept);
    let gw = Gateway::in_process(&format!(
        "[smtp]\nhostname = \"gw.test\"\n[[smtp.listener]]\naddress = \"{{listen}}\"\n[queue]\ndata_dir = \"{{data}}\"\n[[domain]]\nname = \"example.com\"\nroute = \"{}\"\n",
        sink.route()
    ));
    let words = |n: usize| -> String {
        let mut s = String::new();
        while s.len() < n {
            s.push_str(&format!("word{} ", s.len() % 97));
        }
        s.truncate(n);
        s
    };
    let mut message = String::from(
        "From: <s@sender.test>\r\nTo: <alice@example.com>\r\nSubject: long lines\r\nMessage-ID: <long@sender.test>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n",
    );
    for n in [1_500, 5_000, 50_000] {
        message.push_str(&format!("X-Long-{n}: {}\r\n", words(n)));
    }
    message.push_str("\r\n");
    for n in [1_500, 5_000, 50_000] {
        message.push_str(&format!("{}\r\n.{}\r\n", words(n), words(n)));
    }
    let file = gw.dir.path().join("long.eml");
    std::fs::write(&file, &message).unwrap();
    let script = r#"
import smtplib, sys
with open(sys.argv[3], 'rb') as f:
    data = f.read()
s = smtplib.SMTP(sys.argv[1], int(sys.argv[2]), timeout=30)
s.ehlo('client.test')
print(s.sendmail('s@sender.test', ['alice@example.com'], data))
s.quit()
"#;
    let port = gw.port.to_string();
    assert_eq!(rempart_tests::python(script, &["127.0.0.1", &port, file.to_str().unwrap()]).trim(), "{}");
    let got = sink.wait_for(1, Duration::from_secs(15));
    assert_eq!(got.len(), 1, "{}", gw.log());
    assert!(got[0].data.ends_with(message.as_bytes()), "the message changed on the way:\n{}", gw.log());
}

/// The strict mode (`max_data_line`) still refuses long lines, and bare CR/LF stays
/// refused with or without it.
#[test]
fn strict_line_limit_is_optional() {
    let sink = Sink::start(SinkMode::Accept);
    let gw = start(&sink, "max_data_line = 1000");
    let mut c = SmtpClient::connect(&gw.addr());
    c.ehlo();
    expect(c.cmd("MAIL FROM:<s@sender.test>"), 250, "2.1.0");
    expect(c.cmd("RCPT TO:<alice@example.com>"), 250, "2.1.5");
    assert_eq!(c.cmd("DATA").code, 354);
    c.send_raw(format!("Subject: long\r\n\r\n{}\r\n.\r\n", "y".repeat(1200)).as_bytes());
    let reply = c.read_reply();
    expect(reply.clone(), 554, "5.6.0");
    assert!(reply.text().contains("longer than 1000 bytes"), "{reply:?}");
    // Without it, a line longer than the whole size limit is an oversize message.
    let lax = start(&sink, "");
    let mut c = SmtpClient::connect(&lax.addr());
    c.ehlo();
    expect(c.cmd("MAIL FROM:<s@sender.test>"), 250, "2.1.0");
    expect(c.cmd("RCPT TO:<alice@example.com>"), 250, "2.1.5");
    assert_eq!(c.cmd("DATA").code, 354);
    c.send_raw(format!("Subject: long\r\n\r\n{}\r\n.\r\n", "y".repeat(5000)).as_bytes());
    expect(c.read_reply(), 552, "5.3.4");
    expect(c.cmd("MAIL FROM:<s@sender.test>"), 250, "2.1.0");
    expect(c.cmd("RCPT TO:<alice@example.com>"), 250, "2.1.5");
    assert_eq!(c.cmd("DATA").code, 354);
    c.send_raw(format!("Subject: long\r\n\r\n{}\nMAIL FROM:<x@y.test>\r\n.\r\n", "y".repeat(2000)).as_bytes());
    expect(c.read_reply(), 554, "5.6.0");
    std::thread::sleep(Duration::from_millis(300));
    assert!(sink.messages().is_empty());
}

/// `MAIL FROM:` without an address is a syntax error, not the null sender; `<>` is.
/// Driven with smtplib's raw commands.
#[test]
fn mail_from_without_an_address_is_a_syntax_error() {
    let sink = Sink::start(SinkMode::Accept);
    let gw = start(&sink, "");
    let script = r#"
import smtplib, sys
s = smtplib.SMTP(sys.argv[1], int(sys.argv[2]), timeout=30)
s.ehlo('client.test')
for cmd in ['MAIL FROM:', 'MAIL FROM:   ', 'MAIL FROM:<>', 'RSET', 'MAIL FROM: <>', 'RCPT TO:']:
    code, text = s.docmd(cmd)
    print(code, text.decode())
s.quit()
"#;
    let port = gw.port.to_string();
    let out = rempart_tests::python(script, &["127.0.0.1", &port]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("501 5.5.4 ") && lines[1].starts_with("501 5.5.4 "), "{out}");
    assert!(lines[2].starts_with("250 2.1.0 Sender <> OK"), "{out}");
    assert!(lines[4].starts_with("250 2.1.0 Sender <> OK"), "{out}");
    assert!(lines[5].starts_with("501 5.5.4 "), "RCPT TO: alone too: {out}");
}

/// `RCPT TO:<postmaster>` without a domain is accepted (RFC 5321 §4.5.1) and goes to
/// postmaster@ the first domain, or to `smtp.postmaster`; postmaster@ a domain with a
/// recipient list that does not name it is accepted too. Sent with swaks.
#[test]
fn postmaster_without_a_domain_is_accepted() {
    let sink = Sink::start(SinkMode::Accept);
    let gw = start(&sink, "");
    let swaks = |gw: &Gateway, to: &str| {
        std::process::Command::new("swaks")
            .args(["--server", &gw.addr(), "--from", "s@sender.test", "--to", to, "--helo", "client.test", "--timeout", "20"])
            .output()
            .expect("swaks is installed by scripts/setup.sh")
    };
    for to in ["postmaster", "PostMaster", "postmaster@example.com"] {
        let out = swaks(&gw, to);
        assert!(out.status.success(), "{to}: {}", String::from_utf8_lossy(&out.stdout));
    }
    let got = sink.wait_for(3, Duration::from_secs(15));
    assert_eq!(got.len(), 3, "{}", gw.log());
    assert!(got.iter().all(|m| m.rcpt_to == ["postmaster@example.com"]), "{got:?}");

    let configured = start(&sink, "postmaster = \"carol@example.com\"");
    let out = swaks(&configured, "postmaster");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let got = sink.wait_for(4, Duration::from_secs(15));
    assert_eq!(got.len(), 4);
    assert_eq!(got[3].rcpt_to, ["carol@example.com"]);
    // Not a way out: a postmaster at another domain is still refused.
    let out = swaks(&gw, "postmaster@elsewhere.test");
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stdout).contains("550 5.7.1"));
}

/// Trusted networks (default: loopback) are exempt from the per-IP connection limit;
/// with none, the limit applies to 127.0.0.1 too. Sessions opened with smtplib.
#[test]
fn trusted_networks_skip_the_per_ip_limit() {
    let sink = Sink::start(SinkMode::Accept);
    let script = r#"
import smtplib, sys
sessions = []
for i in range(3):
    try:
        s = smtplib.SMTP(sys.argv[1], int(sys.argv[2]), timeout=10)
        sessions.append(s)
        print(220)
    except smtplib.SMTPConnectError as e:
        print(e.smtp_code, e.smtp_error.decode())
for s in sessions:
    s.quit()
"#;
    let trusted = start(&sink, "max_connections_per_ip = 1");
    std::thread::sleep(Duration::from_millis(300));
    let out = rempart_tests::python(script, &["127.0.0.1", &trusted.port.to_string()]);
    assert_eq!(out.lines().collect::<Vec<_>>(), ["220", "220", "220"], "{out}");
    let untrusted = start(&sink, "max_connections_per_ip = 1\ntrusted_networks = []");
    std::thread::sleep(Duration::from_millis(300));
    let out = rempart_tests::python(script, &["127.0.0.1", &untrusted.port.to_string()]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "220", "{out}");
    assert!(lines[1].starts_with("421 4.7.0") && lines[1].contains("Too many connections from 127.0.0.1"), "{out}");
}
