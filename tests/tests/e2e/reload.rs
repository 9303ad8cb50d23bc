//! The live configuration (issue 31): `SIGHUP` and `rempart reload` apply a changed
//! file to a running gateway — a new domain, a moved route, a new threshold — within
//! 2 s, under a steady load from `rempart-loadtest`, refusing no connection and losing
//! no message; a broken file changes nothing. In a cluster each role reloads its own
//! file. SIGTERM lets the sessions in flight finish.

use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use rempart_tests::gateway::{SteadyLoad, rempart_bin};
use rempart_tests::nats::NatsServer;
use rempart_tests::{Gateway, Sink, SinkMode, SmtpClient, free_port, message, wait_until};

/// Scores 5.60 (see verdicts.rs): accepted under the default policy, refused from 5.
const SPAMMY: &str = "From: Promo <promo@sender.test>\r\nSubject: Great offer\r\nContent-Type: text/html\r\n\r\n<html><a hReF=\"http://shop.example\">Buy now</a></html>\r\n";

/// One transaction to `to`; the reply code, or 0 when the connection was refused or cut.
fn send(addr: &str, to: &str, data: &str) -> u16 {
    let Ok(stream) = std::net::TcpStream::connect(addr) else { return 0 };
    drop(stream);
    let mut c = SmtpClient::connect(addr);
    c.ehlo();
    // The spammy message has a sender of its own: the AWL averages a sender's scores.
    let from = if data == SPAMMY { "promo@sender.test" } else { "s@sender.test" };
    assert_eq!(c.cmd(&format!("MAIL FROM:<{from}>")).code, 250);
    let rcpt = c.cmd(&format!("RCPT TO:<{to}>"));
    if rcpt.code != 250 {
        return rcpt.code;
    }
    assert_eq!(c.cmd("DATA").code, 354);
    c.send_raw(&rempart_smtp::dot_stuff(data.as_bytes()));
    c.read_reply().code
}

/// Replaces `from` by `to` in the gateway's configuration file (`from` must be there).
fn edit(gw: &Gateway, from: &str, to: &str) {
    let text = std::fs::read_to_string(&gw.config_path).unwrap();
    assert!(text.contains(from), "{from:?} not in:\n{text}");
    std::fs::write(&gw.config_path, text.replacen(from, to, 1)).unwrap();
}

fn sighup(gw: &Gateway) {
    let pid = std::fs::read_to_string(gw.dir.path().join("data/rempart.pid")).expect("serve writes its pid");
    assert!(Command::new("kill").args(["-HUP", pid.trim()]).status().unwrap().success());
}

/// How long until `check` holds, polled every 50 ms, up to 10 s.
fn time_until(mut check: impl FnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    wait_until(Duration::from_secs(10), || {
        let done = check();
        if !done {
            thread::sleep(Duration::from_millis(50));
        }
        done
    })
    .then(|| started.elapsed())
}

fn subjects(sink: &Sink) -> Vec<String> {
    sink.messages()
        .iter()
        .filter_map(|m| String::from_utf8_lossy(&m.data).lines().find_map(|l| l.strip_prefix("Subject: ").map(str::to_string)))
        .collect()
}

#[test]
fn reloads_under_load_apply_within_two_seconds_and_refuse_nobody() {
    let (moved_from, moved_to) = (Sink::start(SinkMode::Accept), Sink::start(SinkMode::Accept));
    let load_sink = free_port();
    let gw = Gateway::start(&format!(
        "[smtp]\nhostname = \"gw.test\"\n[[smtp.listener]]\naddress = \"{{listen}}\"\n[queue]\ndata_dir = \"{{data}}\"\nretry = [\"1s\"]\n\
         [greylist]\nenabled = false\n\
         [[domain]]\nname = \"example.com\"\nroute = \"smtp://127.0.0.1:{load_sink}\"\n\
         [[domain]]\nname = \"moved.test\"\nroute = \"{}\"\n",
        moved_from.route()
    ));
    let load = SteadyLoad::start(&gw.addr(), load_sink, 25, 14);
    thread::sleep(Duration::from_secs(2));
    assert_eq!(send(&gw.addr(), "bob@new.test", &message("too early")), 550, "new.test is not served yet");

    // 1. A new domain.
    let brand_new = Sink::start(SinkMode::Accept);
    let text = std::fs::read_to_string(&gw.config_path).unwrap();
    std::fs::write(&gw.config_path, format!("{text}\n[[domain]]\nname = \"new.test\"\nroute = \"{}\"\n", brand_new.route())).unwrap();
    sighup(&gw);
    let mut n = 0;
    let new_domain = time_until(|| {
        n += 1;
        send(&gw.addr(), "bob@new.test", &message(&format!("new {n}"))) == 250
    })
    .unwrap_or_else(|| panic!("new.test never accepted:\n{}", gw.log()));
    assert!(!brand_new.wait_for(1, Duration::from_secs(10)).is_empty(), "delivered to the new domain's route");

    // 2. A route moves: through `rempart reload`, which says what it applied.
    edit(&gw, &moved_from.route(), &moved_to.route());
    let out = Command::new(rempart_bin()).arg("reload").arg("--config").arg(&gw.config_path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("applied version 3"), "{}", String::from_utf8_lossy(&out.stdout));
    let mut n = 0;
    let route = time_until(|| {
        n += 1;
        assert_eq!(send(&gw.addr(), "carol@moved.test", &message(&format!("moved {n}"))), 250);
        wait_until(Duration::from_millis(300), || subjects(&moved_to).contains(&format!("moved {n}")))
    })
    .unwrap_or_else(|| panic!("the new route is never used:\n{}", gw.log()));

    // 3. A threshold: moved.test now refuses from 5.
    assert_eq!(send(&gw.addr(), "carol@moved.test", SPAMMY), 250, "5.6 is under the default thresholds");
    edit(
        &gw,
        &format!("name = \"moved.test\"\nroute = \"{}\"\n", moved_to.route()),
        &format!("name = \"moved.test\"\nroute = \"{}\"\npolicy = {{ reject = 5.0 }}\n", moved_to.route()),
    );
    sighup(&gw);
    let threshold = time_until(|| send(&gw.addr(), "carol@moved.test", SPAMMY) == 550)
        .unwrap_or_else(|| panic!("the new threshold is never applied:\n{}", gw.log()));

    // 4. A broken file: refused, logged, the running version stays.
    let good = std::fs::read_to_string(&gw.config_path).unwrap();
    std::fs::write(&gw.config_path, format!("{good}\n[policy]\ngreylist = 8.0\nreject = 5.0\n")).unwrap();
    sighup(&gw);
    assert!(wait_until(Duration::from_secs(5), || gw.log().contains("configuration refused")), "{}", gw.log());
    assert!(gw.log().contains("thresholds out of order"), "the log says why");
    assert_eq!(send(&gw.addr(), "bob@new.test", &message("after a bad file")), 250);
    assert_eq!(send(&gw.addr(), "carol@moved.test", SPAMMY), 550);
    let out = Command::new(rempart_bin()).arg("reload").arg("--config").arg(&gw.config_path).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "rempart reload refuses it before signalling");
    assert!(String::from_utf8_lossy(&out.stderr).contains("thresholds out of order"), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::write(&gw.config_path, good).unwrap();

    let report = load.report();
    let r = &report["reconciliation"];
    eprintln!(
        "reload under load: new domain {new_domain:?}, route {route:?}, threshold {threshold:?}; loadtest sent {} accepted {} errors {} lost {}",
        r["sent"], r["accepted"], r["errors"], r["lost"]
    );
    assert!(r["sent"].as_u64().unwrap() > 200, "{report}");
    assert_eq!((r["errors"].as_u64(), r["tempfailed"].as_u64(), r["lost"].as_u64()), (Some(0), Some(0), Some(0)), "{report}");
    assert_eq!(r["delivered"], r["expected_deliveries"], "{report}");
    for took in [new_domain, route, threshold] {
        assert!(took < Duration::from_secs(2), "{took:?}");
    }
    for version in 2..=4 {
        assert!(gw.log().contains(&format!("\"version\":{version},\"component\":\"edge\"")), "version {version} logged:\n{}", gw.log());
    }
}

#[test]
fn in_a_cluster_each_role_reloads_and_the_new_domain_goes_to_its_route_never_to_mx() {
    let nats = NatsServer::start();
    let (sink, new_sink) = (Sink::start(SinkMode::Accept), Sink::start(SinkMode::Accept));
    let shared = format!(
        "[state]\nbackend = \"nats\"\nnats_url = \"{url}\"\n[greylist]\nenabled = false\n[bus]\nbackend = \"nats\"\nnats_url = \"{url}\"\n",
        url = nats.url()
    );
    let scanner =
        Gateway::start_role(&format!("[queue]\ndata_dir = \"{{data}}\"\n{shared}[scanner]\nlisten = \"{{listen}}\"\n"), "scanner");
    let cfg = format!(
        "[smtp]\nhostname = \"gw.test\"\n[[smtp.listener]]\naddress = \"{{listen}}\"\n[queue]\ndata_dir = \"{{data}}\"\nretry = [\"1s\"]\n\
         {shared}[scanner]\nendpoints = [\"http://{}\"]\n[[domain]]\nname = \"example.com\"\nroute = \"{}\"\n",
        scanner.addr(),
        sink.route()
    );
    let edge = Gateway::start_role(&cfg, "edge");
    let relay = Gateway::start_role(&cfg, "relay");
    assert_eq!(send(&edge.addr(), "alice@example.com", &message("before")), 250);
    assert_eq!(sink.wait_for(1, Duration::from_secs(20)).len(), 1);
    // Relays and scanners first, edges last: an edge never accepts for a domain a relay
    // does not know yet.
    for gw in [&relay, &scanner, &edge] {
        let text = std::fs::read_to_string(&gw.config_path).unwrap();
        std::fs::write(&gw.config_path, format!("{text}\n[[domain]]\nname = \"new.test\"\nroute = \"{}\"\n", new_sink.route())).unwrap();
        sighup(gw);
        assert!(wait_until(Duration::from_secs(5), || gw.log().contains("\"message\":\"configuration applied\"")), "{}", gw.log());
    }
    let accepted = time_until(|| send(&edge.addr(), "bob@new.test", &message("to the new domain")) == 250)
        .unwrap_or_else(|| panic!("new.test never accepted:\n{}", edge.log()));
    assert!(accepted < Duration::from_secs(2));
    let got = new_sink.wait_for(1, Duration::from_secs(20));
    assert!(!got.is_empty() && got[0].rcpt_to == ["bob@new.test"], "{}", relay.log());
    // Each attempt for it went to its route at once: none deferred (by MX, with DNS off).
    let attempts: Vec<&str> = relay
        .log()
        .lines()
        .filter(|l| l.contains("bob@new.test") && l.contains("\"message\":\"delivery\""))
        .map(str::to_string)
        .collect::<Vec<_>>()
        .leak()
        .iter()
        .map(String::as_str)
        .collect();
    assert!(!attempts.is_empty() && attempts.iter().all(|l| l.contains("\"result\":\"delivered\"")), "never by MX:\n{}", relay.log());
}

#[test]
fn sigterm_lets_twenty_sessions_in_flight_finish() {
    let sink = Sink::start(SinkMode::Accept);
    let mut gw = Gateway::start(&format!(
        "[smtp]\nshutdown_timeout = \"10s\"\n[[smtp.listener]]\naddress = \"{{listen}}\"\n[queue]\ndata_dir = \"{{data}}\"\n\
         [greylist]\nenabled = false\n[[domain]]\nname = \"example.com\"\nroute = \"{}\"\n",
        sink.route()
    ));
    // Twenty clients in the middle of DATA when the signal comes.
    let mut clients: Vec<SmtpClient> = (0..20)
        .map(|i| {
            let mut c = SmtpClient::connect(&gw.addr());
            c.ehlo();
            assert_eq!(c.cmd("MAIL FROM:<s@sender.test>").code, 250);
            assert_eq!(c.cmd("RCPT TO:<alice@example.com>").code, 250);
            assert_eq!(c.cmd("DATA").code, 354);
            c.send_raw(format!("Subject: in flight {i}\r\n\r\nhalf of it\r\n").as_bytes());
            c
        })
        .collect();
    gw.sigterm();
    thread::sleep(Duration::from_millis(300));
    let mut finished = 0;
    for c in &mut clients {
        c.send_raw(b"the rest\r\n.\r\n");
        let reply = c.read_reply();
        assert!(reply.code == 250 || (reply.code == 421 && reply.enhanced().as_deref() == Some("4.3.2")), "{reply:?}");
        finished += usize::from(reply.code == 250);
    }
    assert_eq!(finished, 20, "sessions in DATA may finish their message");
    assert!(gw.terminate(Duration::from_secs(15)), "{}", gw.log());
    // What the relay had not delivered yet waits in the queue for the next start.
    gw.restart();
    assert_eq!(sink.wait_for(20, Duration::from_secs(20)).len(), 20, "{}", gw.log());
}
