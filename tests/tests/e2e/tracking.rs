//! Message tracking (issue 33) on one node, with real SMTP and HTTP: a refused RCPT, a
//! refused message, a greylisted one, a delivered one, a quarantined one and one
//! deferred then bounced — each found by sender and by recipient with its status and
//! timeline, in the console, in `/api/v1/tracking` and with `rempart track`; a domain
//! admin never sees another domain's mail, whatever field they search by.

use std::time::{Duration, Instant};

use rempart_tests::gateway::run_rempart;
use rempart_tests::http::api;
use rempart_tests::{Gateway, Sink, SinkMode, SmtpClient, wait_until};
use serde_json::Value;

use super::console::{SPAMMY, add_users, console_addr, login};

const HAM: &str = "From: Friend <friend@ok.test>\r\nMessage-ID: <lunch-1@ok.test>\r\nSubject: Lunch\r\n\r\nSee you at noon.\r\n";

fn gateway(accept: &Sink, failing: &Sink) -> Gateway {
    let config = format!(
        "[smtp]\nhostname = \"gw.test\"\n[[smtp.listener]]\naddress = \"{{listen}}\"\n\
         [queue]\ndata_dir = \"{{data}}\"\nretry = [\"1s\"]\nmax_age = \"4s\"\n\
         [policy]\ngreylist = 4.0\nquarantine = 5.0\nadd_header = 25.0\nreject = 30.0\n\
         [console]\nlisten = \"{{console}}\"\nsecure_cookies = false\n\
         [[domain]]\nname = \"example.com\"\nroute = \"{0}\"\nrecipients = [\"alice@example.com\", \"bob@example.com\", \"admin@example.com\"]\n\
         [[domain]]\nname = \"other.test\"\nroute = \"{0}\"\n\
         [[domain]]\nname = \"strict.test\"\nroute = \"{0}\"\n[domain.policy]\nreject = 5.0\n\
         [[domain]]\nname = \"grey.test\"\nroute = \"{0}\"\n[domain.policy]\ngreylist = -50.0\n\
         [[domain]]\nname = \"slow.test\"\nroute = \"{1}\"\n",
        accept.route(),
        failing.route()
    );
    Gateway::in_process_prepared(&config, add_users)
}

/// The statuses of the messages a search finds, by queue id.
fn found(console: &str, token: &str, query: &str) -> Vec<(String, String)> {
    let (status, answer) = api(console, token, "GET", &format!("/api/v1/tracking?{query}"), None);
    assert_eq!(status, 200, "{query}: {answer}");
    answer["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| (m["queue_id"].as_str().unwrap_or("").to_string(), m["status"].as_str().unwrap_or("").to_string()))
        .collect()
}

fn queue_id(reply: &rempart_tests::client::Reply) -> String {
    reply.text().rsplit(' ').next().unwrap_or("").to_string()
}

#[test]
fn every_fate_of_a_message_is_found_by_sender_and_recipient_with_its_timeline() {
    let accept = Sink::start(SinkMode::Accept);
    let failing = Sink::start(SinkMode::TempFailUntil(Instant::now() + Duration::from_secs(3600)));
    let gw = gateway(&accept, &failing);
    let console = console_addr(&gw);
    let ops = gw.cli(&["account", "token", "add", "ops@provider.test"], None);
    let admin = gw.cli(&["account", "token", "add", "admin@example.com"], None);
    let other = gw.cli(&["account", "token", "add", "admin@other.test"], None);

    let mut c = SmtpClient::connect(&gw.addr());
    c.ehlo();
    // A refused RCPT (nobody@ is not a recipient of example.com), then a message
    // delivered to the recipient who exists, in the same transaction.
    assert_eq!(c.cmd("MAIL FROM:<friend@ok.test>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<nobody@example.com>").code, 550);
    assert_eq!(c.cmd("RCPT TO:<alice@example.com>").code, 250);
    assert_eq!(c.cmd("DATA").code, 354);
    c.send_raw(&rempart_smtp::dot_stuff(HAM.as_bytes()));
    let delivered = c.read_reply();
    assert_eq!(delivered.code, 250, "{delivered:?}");
    let delivered = queue_id(&delivered);
    // A transaction with only a refused RCPT, abandoned.
    assert_eq!(c.cmd("MAIL FROM:<scanner@probe.test>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<ghost@example.com>").code, 550);
    assert_eq!(c.cmd("RSET").code, 250);
    // Refused after DATA, greylisted, quarantined, and deferred until it bounces.
    let refused = c.send_mail("promo@sender.test", &["x@strict.test"], SPAMMY);
    assert_eq!(refused.code, 550, "{refused:?}");
    let greylisted = c.send_mail("friend@ok.test", &["carol@grey.test"], HAM);
    assert_eq!(greylisted.code, 451, "{greylisted:?}");
    let held = c.send_mail("promo@sender.test", &["bob@example.com", "dave@other.test"], SPAMMY);
    assert_eq!(held.code, 250, "{held:?}");
    let held = queue_id(&held);
    let late = c.send_mail("friend@ok.test", &["erin@slow.test"], HAM);
    assert_eq!(late.code, 250, "{late:?}");
    let late = queue_id(&late);
    c.cmd("QUIT");
    accept.wait_for(1, Duration::from_secs(15));

    // Each found by its recipient, with the right status (the bounce after max_age).
    let expect = [
        ("recipient=alice@example.com", delivered.as_str(), "delivered"),
        ("recipient=bob@example.com", held.as_str(), "quarantined"),
        ("recipient=erin@slow.test", late.as_str(), "bounced"),
    ];
    for (query, id, status) in expect {
        let mut got = Vec::new();
        let ok = wait_until(Duration::from_secs(20), || {
            got = found(&console, &ops, query);
            got.iter().any(|(q, s)| q == id && s == status)
        });
        assert!(ok, "{query}: expected {id} {status}, got {got:?}\n{}", gw.log());
    }
    let by_rcpt = |q: &str| found(&console, &ops, q);
    let statuses = |q: &str| by_rcpt(q).into_iter().map(|(_, s)| s).collect::<Vec<_>>();
    assert_eq!(statuses("recipient=nobody@example.com"), ["delivered"], "the refused RCPT is in the delivered message's record");
    assert_eq!(statuses("recipient=nobody@example.com&status=refused"), ["delivered"], "found by the refused recipient's status");
    assert_eq!(statuses("recipient=ghost@example.com"), ["refused"]);
    assert_eq!(statuses("recipient=x@strict.test"), ["refused"]);
    assert_eq!(statuses("recipient=carol@grey.test"), ["greylisted"]);
    // By sender, by sender domain, by Message-ID, by client IP, by status and date.
    assert_eq!(by_rcpt("sender=promo@sender.test").len(), 2);
    assert_eq!(by_rcpt("sender=sender.test").len(), 2);
    assert_eq!(by_rcpt("sender=friend@ok.test").len(), 3, "delivered, greylisted, bounced");
    assert_eq!(statuses("message_id=lunch-1@ok.test&recipient=alice@example.com"), ["delivered"]);
    assert_eq!(by_rcpt("client_ip=127.0.0.1&status=greylisted").len(), 1);
    assert_eq!(by_rcpt("sender=friend@ok.test&since=2000-01-01&until=2000-01-02").len(), 0, "out of the date range");
    assert_eq!(by_rcpt(&format!("queue_id={late}")).len(), 1);

    // A message's timeline: connection, verdict, each attempt, the DSN.
    let (status, message) = api(&console, &ops, "GET", &format!("/api/v1/tracking/{late}"), None);
    assert_eq!(status, 200, "{message}");
    let steps: Vec<&str> = message["timeline"].as_array().into_iter().flatten().filter_map(|s| s["what"].as_str()).collect();
    for step in ["connection", "queued", "deferred", "bounced", "dsn"] {
        assert!(steps.contains(&step), "{step} missing from {steps:?}");
    }
    let text = message.to_string();
    assert!(text.contains("4.4.7") && text.contains("451"), "the deferral and the expiry: {text}");
    assert_eq!(message["helo"], "client.test");

    // Scopes: the domain admin of example.com sees example.com's mail only.
    assert_eq!(found(&console, &admin, "recipient=alice@example.com").len(), 1);
    let mine = found(&console, &admin, "");
    assert!(mine.iter().all(|(q, _)| q != &late), "{mine:?}");
    for query in [
        "recipient=x@strict.test",
        "recipient=strict.test",
        "recipient=carol@grey.test",
        "sender=friend@ok.test&status=greylisted",
        "recipient=erin@slow.test",
        "message_id=lunch-1@ok.test",
        "client_ip=127.0.0.1&status=bounced",
        "status=greylisted",
    ] {
        let seen = found(&console, &other, query);
        assert!(seen.iter().all(|(q, _)| q == &held), "admin@other.test searched {query}: {seen:?}");
        if query.contains("example") {
            assert!(seen.is_empty());
        }
    }
    for id in [&delivered, &late] {
        assert_eq!(api(&console, &other, "GET", &format!("/api/v1/tracking/{id}"), None).0, 404, "another domain's message by queue id");
        assert_eq!(api(&console, &other, "GET", &format!("/api/v1/tracking?queue_id={id}"), None).1["messages"], Value::Array(vec![]));
    }
    // The message to both domains: each admin sees their own recipient only.
    let (_, shared) = api(&console, &other, "GET", &format!("/api/v1/tracking/{held}"), None);
    let text = shared.to_string();
    assert!(text.contains("dave@other.test") && !text.contains("bob@example.com"), "{text}");

    // The console page and the message's page, in French too.
    let mut browser = login(&gw, "ops@provider.test");
    let page = browser.get("/tracking?recipient=erin%40slow.test");
    assert_eq!(page.status, 200);
    assert!(page.body.contains(&late) && page.body.contains("bounced"), "{}", page.body);
    let view = browser.get(&format!("/tracking/{late}?lang=fr"));
    assert!(view.body.contains("Historique") && view.body.contains("4.4.7"), "{}", view.body);
    let mut alice = login(&gw, "alice@example.com");
    let hers = alice.get("/tracking");
    assert!(hers.body.contains(&delivered) && !hers.body.contains(&held), "a user sees her mail only:\n{}", hers.body);
    assert_eq!(alice.get(&format!("/tracking/{late}")).status, 404);

    // The CLI against the running gateway.
    let lines = gw.cli(&["track", "--recipient", "erin@slow.test"], None);
    assert!(lines.contains(&late) && lines.contains("bounced"), "{lines}");
    let timeline = gw.cli(&["track", "--queue-id", &late], None);
    assert!(timeline.contains("dsn") && timeline.contains("4.4.7"), "{timeline}");
    let bad = run_rempart(&["--config", &gw.config_path.display().to_string(), "track", "--status", "lost"], gw.dir.path(), None);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("unknown status"));
}

/// The messages a console's API finds for `query`, as (queue id, status), sorted.
fn answers(console: &str, token: &str, query: &str) -> Vec<(String, String)> {
    let mut all = found(console, token, query);
    all.sort();
    all
}

#[test]
fn on_nats_a_console_started_empty_catches_up_and_two_consoles_answer_the_same() {
    let nats = rempart_tests::nats::NatsServer::start();
    let sink = Sink::start(SinkMode::Accept);
    let cfg = format!(
        "[smtp]\nhostname = \"mx.gw.test\"\n[[smtp.listener]]\naddress = \"{{listen}}\"\n[queue]\ndata_dir = \"{{data}}\"\nretry = [\"1s\"]\n\
         [bus]\nbackend = \"nats\"\nnats_url = \"{url}\"\n[state]\nbackend = \"nats\"\nnats_url = \"{url}\"\n[greylist]\nenabled = false\n\
         [console]\nlisten = \"{{console}}\"\nsecure_cookies = false\n\
         [[domain]]\nname = \"example.com\"\nroute = \"{route}\"\nrecipients = [\"alice@example.com\"]\n",
        url = nats.url(),
        route = sink.route(),
    );
    let gw = Gateway::start_role(&cfg, "serve");
    let first = format!("127.0.0.1:{}", gw.console_port());
    let out = run_rempart(
        &["--config", &gw.config_path.display().to_string(), "account", "add", "ops@gw.test", "--role", "operator"],
        gw.dir.path(),
        Some(b"correct horse battery"),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ops = gw.cli(&["account", "token", "add", "ops@gw.test"], None);

    let messages = 30;
    let mut c = SmtpClient::connect(&gw.addr());
    c.ehlo();
    for i in 0..messages {
        let body = format!("From: s{i}@sender.test\r\nSubject: number {i}\r\n\r\nhello\r\n");
        assert_eq!(c.send_mail(&format!("s{i}@sender.test"), &["alice@example.com"], &body).code, 250);
    }
    assert_eq!(c.cmd("MAIL FROM:<x@sender.test>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<nobody@example.com>").code, 550);
    c.cmd("QUIT");
    sink.wait_for(messages, Duration::from_secs(30));
    let everything = "sender=sender.test&limit=1000";
    assert!(
        wait_until(Duration::from_secs(20), || {
            let all = answers(&first, &ops, everything);
            all.len() == messages + 1 && all.iter().filter(|(_, s)| s == "delivered").count() == messages
        }),
        "the gateway's own console: {:?}\n{}",
        answers(&first, &ops, everything),
        gw.log()
    );

    // A console started empty (its own data directory) replays the events stream.
    let started = Instant::now();
    let late = Gateway::start_role(&cfg, "console serve");
    let second = format!("127.0.0.1:{}", late.console_port());
    let caught_up = wait_until(Duration::from_secs(30), || answers(&second, &ops, everything) == answers(&first, &ops, everything));
    assert!(caught_up, "{:?}\n{}", answers(&second, &ops, everything), late.log());
    println!("a console started empty caught up with {} messages in {:?}", messages + 1, started.elapsed());
    for query in ["recipient=alice@example.com&limit=1000", "recipient=nobody@example.com", "status=refused", "sender=s7@sender.test"] {
        assert_eq!(answers(&first, &ops, query), answers(&second, &ops, query), "{query}");
    }
    let (_, one) = api(&second, &ops, "GET", "/api/v1/tracking?sender=s3@sender.test", None);
    let id = one["messages"][0]["queue_id"].as_str().unwrap_or("").to_string();
    let (_, a) = api(&first, &ops, "GET", &format!("/api/v1/tracking/{id}"), None);
    let (_, b) = api(&second, &ops, "GET", &format!("/api/v1/tracking/{id}"), None);
    assert_eq!(a, b, "the same record on both consoles");

    // Restarted, it resumes after the last event it kept (nothing counted twice),
    // and follows new mail.
    let mut late = late;
    late.restart();
    let mut c = SmtpClient::connect(&gw.addr());
    c.ehlo();
    assert_eq!(c.send_mail("new@sender.test", &["alice@example.com"], "Subject: after\r\n\r\nx\r\n").code, 250);
    let second = format!("127.0.0.1:{}", late.console_port());
    let resumed = wait_until(Duration::from_secs(30), || {
        let all = answers(&second, &ops, everything);
        all.len() == messages + 2 && all == answers(&first, &ops, everything)
    });
    assert!(resumed, "{:?}\n{}", answers(&second, &ops, everything), late.log());
    let (_, again) = api(&second, &ops, "GET", &format!("/api/v1/tracking/{id}"), None);
    assert_eq!(again["timeline"], a["timeline"], "a replayed event is not applied twice");
}
