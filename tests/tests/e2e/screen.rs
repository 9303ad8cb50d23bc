//! Connection screening before the SMTP dialogue: DNS lists served by the test DNS
//! server (weighted, cached in the store), the greeting pause that catches clients
//! talking first, commands pipelined before EHLO, and the per-IP connection rate.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use rempart_tests::dns::{DnsServer, Rr, Zone};
use rempart_tests::{Gateway, Sink, SinkMode};

fn gateway(sink: &Sink, screen: &str, dns: Option<&DnsServer>) -> Gateway {
    let dns = dns.map(|d| format!("[dns]\nservers = [\"{}\"]\ntimeout_ms = 1000\n", d.addr)).unwrap_or_default();
    Gateway::in_process(&format!(
        "[smtp]\nhostname = \"gw.test\"\ntrusted_networks = []\n[[smtp.listener]]\naddress = \"{{listen}}\"\n[queue]\ndata_dir = \"{{data}}\"\n\
         {dns}[screen]\n{screen}\n[[domain]]\nname = \"example.com\"\nroute = \"{}\"\n",
        sink.route()
    ))
}

/// The first reply line the server sends on a fresh connection (after `send`, if any,
/// written at once), and how long it took.
fn first_line(addr: &str, send: Option<&[u8]>) -> (String, Duration) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    if let Some(bytes) = send {
        stream.write_all(bytes).expect("write");
    }
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).expect("read");
    (line, started.elapsed())
}

fn list(zone: &str, weight: f64, name: &str) -> String {
    format!("[[screen.dnsbl]]\nzone = \"{zone}\"\nsymbol = \"S\"\nweight = {weight}\ndescription = \"{name}\"\n")
}

#[test]
fn dns_lists_refuse_at_connect_naming_the_list_and_the_result_is_cached() {
    let sink = Sink::start(SinkMode::Accept);
    let mut zone = Zone::new();
    zone.add("1.0.0.127.bl.test", Rr::A("127.0.0.2".parse().unwrap())).add("1.0.0.127.wl.test", Rr::A("127.0.0.2".parse().unwrap()));
    let dns = DnsServer::start(zone);
    let blocked = gateway(&sink, &format!("dnsbl_threshold = 2.0\n{}", list("bl.test", 3.0, "Test Blocklist")), Some(&dns));
    let (line, _) = first_line(&blocked.addr(), None);
    assert!(line.starts_with("554 5.7.1"), "{line}");
    assert!(line.contains("[127.0.0.1] blocked using bl.test (Test Blocklist: 127.0.0.2)"), "{line}");

    // An allowlist's negative weight outweighs the listing; a list that does not list
    // the client adds nothing.
    let allowed = gateway(
        &sink,
        &format!(
            "dnsbl_threshold = 2.0\n{}{}{}",
            list("bl.test", 3.0, "Test Blocklist"),
            list("wl.test", -2.0, "Test Allowlist"),
            list("other.test", 5.0, "Not listing")
        ),
        Some(&dns),
    );
    let (line, _) = first_line(&allowed.addr(), None);
    assert!(line.starts_with("220 gw.test"), "{line}");

    // The verdict is in the store: with the DNS server gone, the client is still refused.
    drop(dns);
    let (line, _) = first_line(&blocked.addr(), None);
    assert!(line.starts_with("554 5.7.1") && line.contains("Test Blocklist"), "cached: {line}");
}

#[test]
fn early_talkers_early_pipelining_and_fast_reconnects_are_refused() {
    let sink = Sink::start(SinkMode::Accept);
    let gw = gateway(&sink, "greet_pause = \"400ms\"\nconnection_rate_per_ip = 5\n", None);
    let addr = gw.addr();

    let (line, _) = first_line(&addr, Some(b"EHLO early.test\r\n"));
    assert!(line.starts_with("554 5.5.1") && line.contains("talked before my greeting"), "{line}");

    let (line, waited) = first_line(&addr, None);
    assert!(line.starts_with("220 "), "{line}");
    assert!(waited >= Duration::from_millis(390), "the greeting comes after the pause: {waited:?}");

    // A patient client that then sends EHLO with MAIL behind it in one write.
    let mut stream = TcpStream::connect(&addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut banner = String::new();
    reader.read_line(&mut banner).expect("banner");
    assert!(banner.starts_with("220 "), "{banner}");
    stream.write_all(b"EHLO hasty.test\r\nMAIL FROM:<a@hasty.test>\r\n").expect("write");
    let mut rest = String::new();
    let _ = reader.read_to_string(&mut rest);
    assert!(rest.starts_with("554 5.5.1") && rest.contains("before my reply to EHLO"), "{rest}");

    // Five connections a minute: a few more are refused (counted per minute window,
    // so a test that straddles a minute boundary needs up to twice as many).
    let refused = (0..12).map(|_| first_line(&addr, None).0).find(|line| !line.starts_with("220 "));
    let line = refused.expect("no connection was refused");
    assert!(line.starts_with("421 4.7.0") && line.contains("Too many connections from 127.0.0.1"), "{line}");
}
