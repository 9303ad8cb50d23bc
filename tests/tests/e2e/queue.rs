//! Queue management (issue 33) with real SMTP on the embedded bus and on NATS: deferred
//! mail listed; one held, one deleted, one bounced now (its sender gets the DSN), one
//! retried now, and — on both buses — ETRN from the domain's server delivers the
//! domain's deferred mail once; the held one released and delivered once; another
//! domain's admin sees none of it and can touch none of it.

use std::time::{Duration, Instant};

use rempart_tests::http::api;
use rempart_tests::nats::NatsServer;
use rempart_tests::{Gateway, Sink, SinkMode, SmtpClient, wait_until};

const PASSWORD: &str = "correct horse battery";

/// The queue as the API lists it: (queue id, held, attempts).
fn listed(console: &str, token: &str) -> Vec<(String, bool, u64)> {
    let (status, answer) = api(console, token, "GET", "/api/v1/queue", None);
    assert_eq!(status, 200, "{answer}");
    answer["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| (m["queue_id"].as_str().unwrap_or("").into(), m["held"].as_bool().unwrap_or(false), m["attempts"].as_u64().unwrap_or(0)))
        .collect()
}

fn subjects(sink: &Sink) -> Vec<String> {
    sink.messages()
        .iter()
        .filter_map(|m| {
            let text = String::from_utf8_lossy(&m.data).to_string();
            text.lines().find_map(|l| l.strip_prefix("Subject: ").map(str::to_string))
        })
        .collect()
}

fn manage_the_queue(bus: &str) {
    let accept = Sink::start(SinkMode::Accept);
    let opens = Instant::now() + Duration::from_secs(12);
    let failing = Sink::start(SinkMode::TempFailUntil(opens));
    let cfg = format!(
        "[smtp]\nhostname = \"mx.gw.test\"\n[[smtp.listener]]\naddress = \"{{listen}}\"\n[queue]\ndata_dir = \"{{data}}\"\nretry = [\"1h\"]\n{bus}\
         [greylist]\nenabled = false\n[console]\nlisten = \"{{console}}\"\nsecure_cookies = false\n\
         [[domain]]\nname = \"example.com\"\nroute = \"{}\"\n[[domain]]\nname = \"slow.test\"\nroute = \"{}\"\n[[domain]]\nname = \"other.test\"\nroute = \"{}\"\n",
        accept.route(),
        failing.route(),
        accept.route()
    );
    let gw = Gateway::start_role(&cfg, "serve");
    let console = format!("127.0.0.1:{}", gw.console_port());
    gw.try_cli(&["account", "add", "ops@gw.test", "--role", "operator"], Some(PASSWORD)).expect("operator");
    gw.try_cli(&["account", "add", "admin@slow.test", "--role", "domain-admin", "--domain", "slow.test"], Some(PASSWORD)).expect("admin");
    gw.try_cli(&["account", "add", "admin@other.test", "--role", "domain-admin", "--domain", "other.test"], Some(PASSWORD)).expect("other");
    let ops = gw.try_cli(&["account", "token", "add", "ops@gw.test"], None).expect("token");
    let admin = gw.try_cli(&["account", "token", "add", "admin@slow.test"], None).expect("token");
    let other = gw.try_cli(&["account", "token", "add", "admin@other.test"], None).expect("token");

    let mut ids = Vec::new();
    let mut c = SmtpClient::connect(&gw.addr());
    c.ehlo();
    for name in ["held", "deleted", "bounced", "retried", "etrn"] {
        let body = format!("From: sender@example.com\r\nSubject: {name}\r\n\r\nhello\r\n");
        let reply = c.send_mail("sender@example.com", &["erin@slow.test"], &body);
        assert_eq!(reply.code, 250, "{reply:?}");
        ids.push(reply.text().rsplit(' ').next().unwrap_or("").to_string());
    }
    c.cmd("QUIT");
    let all_deferred = wait_until(Duration::from_secs(20), || {
        let queue = listed(&console, &admin);
        queue.len() == 5 && queue.iter().all(|(_, held, attempts)| !held && *attempts == 1)
    });
    assert!(all_deferred, "{:?}\n{}", listed(&console, &admin), gw.log());
    let lines = gw.try_cli(&["queue", "list"], None).expect("queue list");
    assert!(lines.lines().count() == 5 && lines.contains("451 4.3.0") && lines.contains("erin@slow.test"), "{lines}");

    // Another domain's admin sees nothing and touches nothing.
    assert!(listed(&console, &other).is_empty(), "{:?}", listed(&console, &other));
    for action in ["hold", "delete", "bounce", "retry"] {
        assert_eq!(api(&console, &other, "POST", &format!("/api/v1/queue/{}/{action}", ids[0]), None).0, 404, "{action}");
    }

    // Hold (the CLI), delete and bounce (the domain's admin through the API).
    gw.try_cli(&["queue", "hold", &ids[0]], None).expect("hold");
    assert_eq!(api(&console, &admin, "POST", &format!("/api/v1/queue/{}/hold", ids[0]), None).0, 409, "already held");
    assert_eq!(api(&console, &admin, "POST", &format!("/api/v1/queue/{}/delete", ids[1]), None).0, 200);
    assert_eq!(api(&console, &admin, "POST", &format!("/api/v1/queue/{}/bounce", ids[2]), None).0, 200);
    assert_eq!(api(&console, &admin, "POST", &format!("/api/v1/queue/{}/explode", ids[3]), None).0, 422);
    let held = gw.try_cli(&["queue", "list", "--held"], None).expect("held");
    assert!(held.contains(&ids[0]) && held.contains("held by operator@admin.socket") && held.lines().count() == 1, "{held}");
    let dsn = wait_until(Duration::from_secs(20), || {
        accept.messages().iter().any(|m| {
            let text = String::from_utf8_lossy(&m.data).to_string();
            text.contains("Status: 5.0.0") && text.contains("cancelled") && text.contains("Subject: bounced")
        })
    });
    assert!(dsn, "the bounced message's DSN:\n{}", gw.log());

    // Once the server accepts: retry now, ETRN from the domain's server, release.
    while Instant::now() < opens {
        std::thread::sleep(Duration::from_millis(200));
    }
    gw.try_cli(&["queue", "retry", &ids[3]], None).expect("retry");
    assert!(wait_until(Duration::from_secs(15), || subjects(&failing).contains(&"retried".to_string())), "{}", gw.log());
    let mut c = SmtpClient::connect(&gw.addr());
    c.ehlo();
    let etrn = c.cmd("ETRN slow.test");
    assert_eq!(etrn.code, 253, "{etrn:?}\n{}", gw.log());
    assert!(etrn.text().contains("1 pending"), "only the deferred one, not the held one: {etrn:?}");
    assert!(wait_until(Duration::from_secs(15), || subjects(&failing).contains(&"etrn".to_string())), "{}", gw.log());
    gw.try_cli(&["queue", "release", &ids[0]], None).expect("release");
    assert!(wait_until(Duration::from_secs(15), || subjects(&failing).contains(&"held".to_string())), "{}", gw.log());
    assert!(wait_until(Duration::from_secs(10), || listed(&console, &ops).is_empty()), "{:?}", listed(&console, &ops));
    std::thread::sleep(Duration::from_secs(1));
    let mut got = subjects(&failing);
    got.sort();
    assert_eq!(got, ["etrn", "held", "retried"], "each once; the deleted and the bounced never");
    let tracked = api(&console, &ops, "GET", &format!("/api/v1/tracking/{}", ids[1]), None).1.to_string();
    assert!(tracked.contains("\"what\":\"delete\"") && tracked.contains("admin@slow.test"), "{tracked}");
}

#[test]
fn queue_management_on_the_embedded_bus() {
    manage_the_queue("");
}

#[test]
fn queue_management_and_etrn_on_nats() {
    let nats = NatsServer::start();
    manage_the_queue(&format!(
        "[bus]\nbackend = \"nats\"\nnats_url = \"{0}\"\n[state]\nbackend = \"nats\"\nnats_url = \"{0}\"\n",
        nats.url()
    ));
}
