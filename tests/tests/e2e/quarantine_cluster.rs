//! The quarantine survives a node (issue 33): on NATS, two console replicas serve the
//! same quarantine — bodies in the JetStream object store, changes on a log each
//! follows. Both list every held message whichever took it in; a message released on
//! both at once is delivered once; kill -9 one and the other shows and releases; a
//! console started empty catches up; a deletion reaches every replica.

use std::time::Duration;

use rempart_tests::gateway::run_rempart;
use rempart_tests::http::api;
use rempart_tests::nats::NatsServer;
use rempart_tests::{Gateway, Sink, SinkMode, SmtpClient, wait_until};

use super::console::SPAMMY;

/// The held messages a console lists, as (queue id, status), sorted.
fn held(console: &str, token: &str) -> Vec<(String, String)> {
    let (status, answer) = api(console, token, "GET", "/api/v1/quarantine", None);
    assert_eq!(status, 200, "{answer}");
    let mut all: Vec<(String, String)> = answer["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| (m["queue_id"].as_str().unwrap_or("").into(), m["status"].as_str().unwrap_or("").into()))
        .collect();
    all.sort();
    all
}

#[test]
fn two_console_replicas_serve_one_quarantine_and_one_survives_the_other() {
    let nats = NatsServer::start();
    let sink = Sink::start(SinkMode::Accept);
    let state = format!("[state]\nbackend = \"nats\"\nnats_url = \"{}\"\n", nats.url());
    let scanner = Gateway::start_role(
        &format!(
            "{state}[greylist]\nenabled = false\n[scanner]\nlisten = \"{{listen}}\"\n[policy]\ngreylist = 4.0\nquarantine = 5.0\nadd_header = 25.0\nreject = 30.0\n"
        ),
        "scanner",
    );
    let cfg = format!(
        "[smtp]\nhostname = \"mx.gw.test\"\n[[smtp.listener]]\naddress = \"{{listen}}\"\n[queue]\ndata_dir = \"{{data}}\"\nretry = [\"1s\"]\nvisibility_timeout = \"3s\"\n\
         [bus]\nbackend = \"nats\"\nnats_url = \"{url}\"\n{state}[greylist]\nenabled = false\n[policy]\ngreylist = 4.0\nquarantine = 5.0\nadd_header = 25.0\nreject = 30.0\n\
         [scanner]\nendpoints = [\"http://{scanner}\"]\n[console]\nlisten = \"{{console}}\"\nsecure_cookies = false\n\
         [[domain]]\nname = \"example.com\"\nroute = \"{route}\"\n",
        url = nats.url(),
        scanner = scanner.addr(),
        route = sink.route(),
    );
    let edge = Gateway::start_role(&cfg, "edge");
    let _relay = Gateway::start_role(&cfg, "relay");
    let mut first = Gateway::start_role(&cfg, "console serve");
    let second = Gateway::start_role(&cfg, "console serve");
    let out = run_rempart(
        &["--config", &first.config_path.display().to_string(), "account", "add", "ops@gw.test", "--role", "operator"],
        first.dir.path(),
        Some(b"correct horse battery"),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = run_rempart(
        &["--config", &first.config_path.display().to_string(), "account", "token", "add", "ops@gw.test"],
        first.dir.path(),
        None,
    );
    let ops = String::from_utf8_lossy(&token.stdout).trim().to_string();
    let (a, b) = (format!("127.0.0.1:{}", first.console_port()), format!("127.0.0.1:{}", second.console_port()));

    let mut ids = Vec::new();
    let mut c = SmtpClient::connect(&edge.addr());
    c.ehlo();
    for _ in 0..6 {
        let reply = c.send_mail("promo@sender.test", &["alice@example.com"], SPAMMY);
        assert_eq!(reply.code, 250, "{reply:?}");
        ids.push(reply.text().rsplit(' ').next().unwrap_or("").to_string());
    }
    let everywhere = wait_until(Duration::from_secs(20), || held(&a, &ops).len() == 6 && held(&b, &ops) == held(&a, &ops));
    assert!(everywhere, "{:?} / {:?}\n{}\n{}", held(&a, &ops), held(&b, &ops), first.log(), second.log());

    // Released on both replicas at once: delivered once.
    let (x, y) = std::thread::scope(|s| {
        let x = s.spawn(|| api(&a, &ops, "POST", &format!("/api/v1/quarantine/{}/release", ids[0]), None).0);
        let y = s.spawn(|| api(&b, &ops, "POST", &format!("/api/v1/quarantine/{}/release", ids[0]), None).0);
        (x.join().unwrap_or(0), y.join().unwrap_or(0))
    });
    let mut answers = [x, y];
    answers.sort();
    assert_eq!(answers, [200, 409], "one release wins");
    sink.wait_for(1, Duration::from_secs(15));

    // kill -9 the first replica: the second shows a message's body and releases it.
    first.kill9();
    let view = api(&b, &ops, "GET", &format!("/api/v1/quarantine/{}", ids[1]), None);
    assert_eq!(view.0, 200, "{}", view.1);
    assert_eq!(api(&b, &ops, "POST", &format!("/api/v1/quarantine/{}/release", ids[1]), None).0, 200, "{}", second.log());
    assert_eq!(api(&b, &ops, "POST", &format!("/api/v1/quarantine/{}/delete", ids[2]), None).0, 200);
    assert!(wait_until(Duration::from_secs(15), || sink.messages().len() == 2), "{}", second.log());
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(sink.messages().len(), 2, "each released message delivered once");

    // A console started empty catches up from the log: the same list, the same states.
    let third = Gateway::start_role(&cfg, "console serve");
    let c3 = format!("127.0.0.1:{}", third.console_port());
    let caught_up = wait_until(Duration::from_secs(20), || held(&c3, &ops) == held(&b, &ops));
    assert!(caught_up, "{:?} / {:?}\n{}", held(&c3, &ops), held(&b, &ops), third.log());
    let listed = held(&c3, &ops);
    assert_eq!(listed.len(), 5, "the deleted one is gone everywhere: {listed:?}");
    assert_eq!(listed.iter().filter(|(_, s)| s == "released").count(), 2, "{listed:?}");
    assert_eq!(api(&c3, &ops, "POST", &format!("/api/v1/quarantine/{}/release", ids[1]), None).0, 409, "released on another replica");
    assert_eq!(api(&c3, &ops, "POST", &format!("/api/v1/quarantine/{}/release", ids[3]), None).0, 200);
    assert!(wait_until(Duration::from_secs(15), || sink.messages().len() == 3), "{}", third.log());
    // The restarted first replica resumes after the last change it applied.
    first.restart();
    let a = format!("127.0.0.1:{}", first.console_port());
    assert!(wait_until(Duration::from_secs(20), || held(&a, &ops) == held(&c3, &ops)), "{:?}\n{}", held(&a, &ops), first.log());
    let resumed = first.log().lines().rfind(|l| l.contains("following the quarantine log")).unwrap_or("").to_string();
    assert!(!resumed.contains("\"after\":0"), "{resumed}");
}
