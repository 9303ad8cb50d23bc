//! Issue 30: what an outside attack found, each as the client (or the server, or the
//! disk) that triggered it: a reply with Unicode spaces, trickling clients at the
//! connection limit, junk commands, endless sessions, a PROXY header from anyone,
//! control characters in envelope parameters, a pipelining client waiting on a partial
//! line, a full disk.

use std::io::Read;
use std::process::Command;
use std::time::{Duration, Instant};

use rempart_tests::{Gateway, Sink, SinkMode, SmtpClient, message, wait_until};

fn start(sink: &Sink, smtp_extra: &str) -> Gateway {
    Gateway::in_process(&config(sink, smtp_extra, "{data}"))
}

fn config(sink: &Sink, smtp_extra: &str, data_dir: &str) -> String {
    format!(
        "[smtp]\nhostname = \"gw.test\"\n{smtp_extra}\n[[smtp.listener]]\naddress = \"{{listen}}\"\n[queue]\ndata_dir = \"{data_dir}\"\n\
         retry = [\"1s\"]\n[[domain]]\nname = \"example.com\"\nroute = \"{}\"\nrecipients = [\"alice\", \"bob\"]\n",
        sink.route()
    )
}

/// Defect 1: a route server greeting with Unicode spaces before a status-like word
/// killed every relay worker for good (mail accepted, never delivered).
#[test]
fn a_reply_with_unicode_spaces_kills_no_relay_worker_and_loses_no_mail() {
    let sink = Sink::start(SinkMode::UnicodeGreeting);
    let gw = start(&sink, "");
    for i in 0..3 {
        let mut c = SmtpClient::connect(&gw.addr());
        c.ehlo();
        assert_eq!(c.send_mail("s@sender.test", &["alice@example.com"], &message(&format!("odd greeting {i}"))).code, 250);
    }
    let got = sink.wait_for(3, Duration::from_secs(20));
    assert_eq!(got.len(), 3, "{}", gw.log());
    assert!(!gw.log().contains("panicked"), "{}", gw.log());
}

/// Defect 4: trickling clients held every slot and everyone else got 421. Now, when
/// the gateway is full, the session idle longest makes room.
#[test]
fn at_the_connection_limit_idle_sessions_make_room_for_new_clients() {
    let sink = Sink::start(SinkMode::Accept);
    let gw = start(&sink, "max_connections = 4\nmax_connections_per_ip = 10");
    let mut idle: Vec<SmtpClient> = (0..4)
        .map(|_| {
            let mut c = SmtpClient::connect(&gw.addr());
            c.ehlo();
            // A trickle: half a command, then nothing.
            c.send_raw(b"NO");
            c
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    // Three new clients, all kept open: each needs a slot an idle one gives up.
    let mut newcomers = Vec::new();
    for i in 0..3 {
        let mut c = SmtpClient::connect(&gw.addr());
        c.ehlo();
        let r = c.send_mail("s@sender.test", &["bob@example.com"], &message(&format!("room {i}")));
        assert_eq!(r.code, 250, "{r:?}");
        newcomers.push(c);
    }
    assert_eq!(sink.wait_for(3, Duration::from_secs(20)).len(), 3);
    for c in &idle {
        c.stream().set_read_timeout(Some(Duration::from_millis(500))).expect("timeout");
    }
    let evicted: Vec<u16> = idle.iter_mut().filter_map(|c| c.try_read_reply()).map(|r| r.code).collect();
    assert_eq!(evicted, [421, 421, 421], "three idle sessions made room, one is left");
    assert!(gw.log().contains("idle session closed to make room"), "{}", gw.log());
}

/// Defect 4: the command budget and the session lifetime.
#[test]
fn junk_commands_and_endless_sessions_are_cut() {
    let sink = Sink::start(SinkMode::Accept);
    let gw = start(&sink, "max_junk_commands = 3\nmax_session_time = \"2s\"");
    let mut c = SmtpClient::connect(&gw.addr());
    c.ehlo();
    for _ in 0..3 {
        assert_eq!(c.cmd("NOOP").code, 250);
    }
    let r = c.cmd("NOOP");
    assert_eq!((r.code, r.enhanced().as_deref()), (421, Some("4.7.0")), "{r:?}");
    assert!(c.is_closed());

    let started = Instant::now();
    let mut c = SmtpClient::connect(&gw.addr());
    c.ehlo();
    let r = c.read_reply();
    assert_eq!((r.code, r.enhanced().as_deref()), (421, Some("4.4.2")), "{r:?}");
    assert!(r.text().contains("too long"), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// Defect 9: a PROXY header is believed only from `proxy_from`; others are refused at
/// once, and an allowed peer has seconds, not minutes, to send it.
#[test]
fn a_proxy_header_is_believed_only_from_the_balancers() {
    let sink = Sink::start(SinkMode::Accept);
    let listener = |from: &str| {
        format!(
            "[smtp]\nproxy_timeout = \"1s\"\n[[smtp.listener]]\naddress = \"{{listen}}\"\nproxy_protocol = true\nproxy_from = [\"{from}\"]\n\
             [queue]\ndata_dir = \"{{data}}\"\n[[domain]]\nname = \"example.com\"\nroute = \"{}\"\n",
            sink.route()
        )
    };
    let gw = Gateway::in_process(&listener("192.0.2.0/24"));
    let mut s = std::net::TcpStream::connect(gw.addr()).expect("connect");
    std::io::Write::write_all(&mut s, b"PROXY TCP4 127.0.0.1 127.0.0.1 1234 25\r\n").expect("write");
    let mut answer = String::new();
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("421 4.7.0"), "{answer:?}");
    drop(gw);

    let gw = Gateway::in_process(&listener("127.0.0.0/8"));
    let started = Instant::now();
    let mut silent = std::net::TcpStream::connect(gw.addr()).expect("connect");
    silent.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut rest = Vec::new();
    let _ = silent.read_to_end(&mut rest);
    assert!(started.elapsed() < Duration::from_secs(5), "closed after {:?}", started.elapsed());
    let c = SmtpClient::connect_raw(&gw.addr(), Some(b"PROXY TCP4 192.0.2.7 127.0.0.1 1234 25\r\n"));
    drop(c);
}

/// Defects 10 and 11: control characters in ENVID, ORCPT and addresses are refused.
#[test]
fn control_characters_in_the_envelope_are_refused() {
    let sink = Sink::start(SinkMode::Accept);
    let gw = start(&sink, "max_errors = 50");
    let mut c = SmtpClient::connect(&gw.addr());
    c.ehlo();
    assert_eq!(c.cmd("MAIL FROM:<s@sender.test> ENVID=x+0D+0ABcc:+20evil").code, 501);
    assert_eq!(c.cmd("MAIL FROM:<s@sender.test> ENVID=ok+20id").code, 250);
    assert_eq!(c.cmd("RCPT TO:<alice@example.com> NOTIFY=FAILURE ORCPT=rfc822;a+0Db@x.test").code, 501);
    assert_eq!(c.cmd("RCPT TO:<alice@example.com> NOTIFY=FAILURE ORCPT=rfc822;alice@example.com").code, 250);
    c.send_raw(b"RCPT TO:<\"a\\\x00b\"@example.com>\r\n");
    assert_eq!(c.read_reply().code / 100, 5);
    c.send_raw(b"RCPT TO:<bob@[127.0.0.1\x01]>\r\n");
    assert_eq!(c.read_reply().code / 100, 5);
}

/// Defect 14: replies were withheld while a partial line was buffered, and a client
/// that waits for them before finishing that line waited forever.
#[test]
fn replies_are_not_withheld_behind_a_partial_line() {
    let sink = Sink::start(SinkMode::Accept);
    let gw = start(&sink, "");
    let mut c = SmtpClient::connect(&gw.addr());
    c.send_raw(b"EHLO client.test\r\nNOOP\r\nMAIL FROM:<s@sen");
    assert_eq!(c.read_reply().code, 250);
    assert_eq!(c.read_reply().code, 250, "the NOOP's reply came before the partial line ended");
    c.send_raw(b"der.test>\r\n");
    assert_eq!(c.read_reply().code, 250);
}

/// A tmpfs mounted for one test (root only; the test says so and skips otherwise).
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().ok()?;
        let status = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(dir.path()).status();
        match status {
            Ok(s) if s.success() => Some(SmallDisk { dir }),
            _ => {
                eprintln!("skipped: cannot mount a tmpfs here (needs root)");
                None
            }
        }
    }

    /// Fills the disk to the last byte; gives the filler's path.
    fn fill(&self) -> std::path::PathBuf {
        let path = self.dir.path().join("filler");
        let mut file = std::fs::File::create(&path).expect("filler");
        let chunk = vec![0u8; 64 * 1024];
        while std::io::Write::write_all(&mut file, &chunk).is_ok() {}
        let mut byte = [0u8; 1];
        while std::io::Write::write_all(&mut file, &byte).is_ok() {
            byte[0] = 1;
        }
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// Defect 5: after a full disk the queue answered "closed" until restarted. Now a
/// full disk gets `452 4.3.1` naming the cause, and the queue comes back by itself once
/// space returns; what was accepted before is delivered.
#[test]
fn a_full_disk_gets_452_and_the_queue_recovers_by_itself() {
    let Some(disk) = SmallDisk::mount("16m") else { return };
    let sink = Sink::start(SinkMode::TempFailUntil(Instant::now() + Duration::from_secs(3600)));
    let gw = Gateway::in_process(&config(&sink, "", &disk.dir.path().join("data").display().to_string()));
    let mut c = SmtpClient::connect(&gw.addr());
    c.ehlo();
    assert_eq!(c.send_mail("s@sender.test", &["alice@example.com"], &message("before")).code, 250);
    let filler = disk.fill();
    let big = format!("{}{}\r\n", message("full"), "x".repeat(900).repeat(200));
    let mut refused = None;
    for _ in 0..20 {
        let mut c = SmtpClient::connect(&gw.addr());
        c.ehlo();
        let sent = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| c.send_mail("s@sender.test", &["alice@example.com"], &big)));
        let r = sent.unwrap_or_else(|_| panic!("the gateway closed the session without a reply on a full disk:\n{}", gw.log()));
        if r.code != 250 {
            refused = Some(r);
            break;
        }
    }
    let refused = refused.expect("a full disk refuses new mail");
    assert_eq!((refused.code, refused.enhanced().as_deref()), (452, Some("4.3.1")), "{refused:?}\n{}", gw.log());
    assert!(refused.text().contains("storage"), "{refused:?}");

    // The relay retries "before" (every second) while the disk is full: recording
    // those retries fails, and must not leave it leased until its lease ends.
    std::thread::sleep(Duration::from_millis(2500));
    std::fs::remove_file(&filler).expect("free the space");
    sink.set_mode(SinkMode::Accept);
    let freed = Instant::now();
    let log_at_free = gw.log().len();
    let recovered = wait_until(Duration::from_secs(30), || {
        let mut c = SmtpClient::connect(&gw.addr());
        c.ehlo();
        c.send_mail("s@sender.test", &["alice@example.com"], &message("after")).code == 250
    });
    assert!(recovered, "{}", gw.log());
    eprintln!("recovered {:?} after the space returned", freed.elapsed());
    let got = sink.wait_for(2, Duration::from_secs(30));
    let subjects: Vec<String> = got.iter().map(|m| String::from_utf8_lossy(&m.data).into_owned()).collect();
    assert!(subjects.iter().any(|s| s.contains("Subject: before")), "what was accepted before is delivered\n{}", gw.log());
    assert!(subjects.iter().any(|s| s.contains("Subject: after")));
    // The state store (AWL, reports) failed on the full disk too, and works again.
    std::thread::sleep(Duration::from_secs(1));
    let since_freed = gw.log().split_off(log_at_free);
    assert!(!since_freed.contains("AWL update failed") && !since_freed.contains("writer thread stopped"), "{since_freed}");
    drop(gw);
}

/// Defect 6: message data held by all sessions is bounded (`max_data_in_flight`); past
/// it a message is read, not kept, and refused with 452 4.3.1; the budget comes back
/// once messages are queued.
#[test]
fn message_data_in_memory_is_bounded_across_sessions() {
    let sink = Sink::start(SinkMode::Accept);
    let gw = start(&sink, "max_data_in_flight = 150000");
    let big = format!("{}{}\r\n", message("big"), "y".repeat(999).repeat(300));
    let mut c = SmtpClient::connect(&gw.addr());
    c.ehlo();
    let r = c.send_mail("s@sender.test", &["alice@example.com"], &big);
    assert_eq!((r.code, r.enhanced().as_deref()), (452, Some("4.3.1")), "{r:?}");
    // The session goes on, and the budget was given back.
    for i in 0..3 {
        assert_eq!(c.send_mail("s@sender.test", &["alice@example.com"], &message(&format!("small {i}"))).code, 250);
    }
    c.send_raw(format!("MAIL FROM:<s@sender.test>\r\nRCPT TO:<bob@example.com>\r\nBDAT {} LAST\r\n", big.len()).as_bytes());
    c.send_raw(big.as_bytes());
    assert_eq!(c.read_reply().code, 250);
    assert_eq!(c.read_reply().code, 250);
    assert_eq!(c.read_reply().code, 452, "BDAT too");
    assert_eq!(sink.wait_for(3, Duration::from_secs(20)).len(), 3);
}
