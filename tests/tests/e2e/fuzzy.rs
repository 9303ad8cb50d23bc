//! The memory of campaigns, end to end: one message reported as spam through the
//! console's API makes its variants (other names, links, numbers, greetings) hit
//! `FUZZY_DENIED`; a message released as ham, and its near copies, never hit.

use std::cell::RefCell;
use std::time::Duration;

use rempart_tests::gateway::run_rempart;
use rempart_tests::{Gateway, Sink, SinkMode, SmtpClient};

const CAMPAIGN: &str = "GREETING NAME,\r\n\r\nWe were unable to deliver your parcel NUMBER because the customs fee of AMOUNT EUR has not been paid.\r\n\
To receive your parcel within 48 hours, confirm your address and pay the fee at LINK before Friday.\r\n\
If the fee is not paid, the parcel will be returned to the sender and the fee charged anyway.\r\n\r\nThank you for your trust,\r\nThe delivery service team\r\n";

fn variant(i: usize) -> String {
    let names = ["John", "Mary", "Ahmed", "Chloé", "Wei", "Olga", "Pedro", "Aiko", "Sven", "Fatou", "Liam"];
    let greetings = [
        "Dear",
        "Hello",
        "Hi",
        "Good morning",
        "Dear customer",
        "Greetings",
        "Attention",
        "Dear client",
        "Hey",
        "Bonjour",
        "Dear Sir or Madam",
    ];
    let body = CAMPAIGN
        .replace("GREETING", greetings[i % greetings.len()])
        .replace("NAME", names[i % names.len()])
        .replace("NUMBER", &format!("{}-{}", 4000 + i * 37, 10 + i))
        .replace("AMOUNT", &format!("{}.{:02}", 1 + i % 3, 49 + i))
        .replace("LINK", &format!("https://track-{i}.example/p/{}", 8800 + i * 13));
    format!(
        "From: Delivery <notice@parcels{i}.example>\r\nTo: <alice@example.com>\r\nSubject: Your parcel is waiting ({i})\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{i}@parcels.example>\r\n\r\n{body}"
    )
}

const NEWSLETTER: &str = "Hello NAME,\r\n\r\nThe spring programme of the cycling club is out: rides every Saturday at nine from the town hall, \
a workshop on repairs on the first Wednesday of each month, and the yearly trip to the coast in June. \
Tell us by the end of the month if you want a place on the coach.\r\n\r\nSee you on the road,\r\nThe club secretary\r\n";

fn newsletter(name: &str) -> String {
    format!(
        "From: Club <secretary@club.example>\r\nTo: <alice@example.com>\r\nSubject: Spring programme\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{name}@club.example>\r\n\r\n{}",
        NEWSLETTER.replace("NAME", name)
    )
}

/// The symbols of the verdict logged for `queue_id`.
fn symbols_of(gw: &Gateway, queue_id: &str) -> String {
    gw.log()
        .lines()
        .find(|l| l.contains(&format!("\"queue_id\":\"{queue_id}\"")) && l.contains("\"symbols\""))
        .unwrap_or_default()
        .to_string()
}

/// The message's id: "queued as ID" when accepted, the /why/ID link when refused (a
/// variant the campaign memory pushes past the reject threshold).
fn queue_id(reply: &rempart_tests::client::Reply) -> String {
    let text = reply.lines.join(" ");
    let id = if text.contains("/why/") { text.rsplit("/why/").next() } else { text.rsplit("queued as ").next() };
    id.unwrap_or_default().trim().to_string()
}

#[test]
fn one_report_catches_the_campaigns_variants_and_a_released_message_never_hits() {
    let sink = Sink::start(SinkMode::Accept);
    let token = RefCell::new(String::new());
    // held.example holds everything (the reports come from its quarantine).
    let config = format!(
        "[smtp]\nhostname = \"gw.test\"\n[[smtp.listener]]\naddress = \"{{listen}}\"\n[queue]\ndata_dir = \"{{data}}\"\n[greylist]\nenabled = false\n\
         [[domain]]\nname = \"example.com\"\nroute = \"{route}\"\n[[domain]]\nname = \"held.example\"\nroute = \"{route}\"\n[domain.policy]\nquarantine = -100.0\n",
        route = sink.route()
    );
    let gw = Gateway::in_process_prepared(&config, |gw| {
        let config = gw.config_path.display().to_string();
        let out = run_rempart(
            &["--config", &config, "account", "add", "ops@gw.test", "--role", "operator"],
            gw.dir.path(),
            Some(b"operator password"),
        );
        assert!(out.status.success(), "account add: {}", String::from_utf8_lossy(&out.stderr));
        let out = run_rempart(&["--config", &config, "console", "token", "add", "ops@gw.test"], gw.dir.path(), None);
        assert!(out.status.success(), "token add: {}", String::from_utf8_lossy(&out.stderr));
        *token.borrow_mut() = String::from_utf8_lossy(&out.stdout).trim().to_string();
    });
    let token = token.into_inner();
    let console = format!("127.0.0.1:{}", gw.console_port());
    let mut c = SmtpClient::connect(&gw.addr());
    c.ehlo();
    // Before any report, no variant hits.
    let before = c.send_mail("notice@parcels.example", &["alice@example.com"], &variant(99));
    assert_eq!(before.code, 250, "{before:?}");
    assert!(rempart_tests::wait_until(Duration::from_secs(5), || !symbols_of(&gw, &queue_id(&before)).is_empty()));
    assert!(!symbols_of(&gw, &queue_id(&before)).contains("FUZZY"), "{}", symbols_of(&gw, &queue_id(&before)));

    // One copy held, then reported as spam through the API.
    let held = c.send_mail("notice@parcels.example", &["bob@held.example"], &variant(0));
    assert_eq!(held.code, 250, "{held:?}");
    let id = queue_id(&held);
    assert!(rempart_tests::wait_until(Duration::from_secs(10), || {
        let (status, list) = rempart_tests::http::api(&console, &token, "GET", "/api/v1/quarantine", None);
        status == 200 && list.to_string().contains(&id)
    }));
    let (status, done) = rempart_tests::http::api(&console, &token, "POST", &format!("/api/v1/quarantine/{id}/spam"), None);
    assert_eq!(status, 200, "{done}");

    // The report is learned in the background: a probe until it is in the memory.
    let remembered = rempart_tests::wait_until(Duration::from_secs(10), || {
        let r = c.send_mail("notice@parcels.example", &["alice@example.com"], &variant(50));
        let id = queue_id(&r);
        rempart_tests::wait_until(Duration::from_secs(2), || !symbols_of(&gw, &id).is_empty());
        symbols_of(&gw, &id).contains("FUZZY_DENIED")
    });
    assert!(remembered, "the report never reached the memory of campaigns");

    // Ten variants: other names, greetings, links, numbers, amounts, senders.
    let mut hits = 0;
    for i in 1..=10 {
        let r = c.send_mail(&format!("notice@parcels{i}.example"), &["alice@example.com"], &variant(i));
        assert!(r.code == 250 || r.code == 550, "{r:?}");
        let id = if r.code == 250 { queue_id(&r) } else { r.lines.join(" ").rsplit("/why/").next().unwrap_or_default().trim().to_string() };
        rempart_tests::wait_until(Duration::from_secs(5), || symbols_of(&gw, &id).contains("FUZZY_DENIED"));
        let symbols = symbols_of(&gw, &id);
        hits += usize::from(symbols.contains("FUZZY_DENIED"));
        eprintln!("variant {i}: {}", symbols.split("\"symbols\":").nth(1).unwrap_or("").split('"').nth(1).unwrap_or(""));
    }
    assert_eq!(hits, 10, "every variant hits the reported campaign");

    // A newsletter held, then released: its next issue never hits.
    let news = c.send_mail("secretary@club.example", &["bob@held.example"], &newsletter("Bob"));
    let id = queue_id(&news);
    assert!(rempart_tests::wait_until(Duration::from_secs(10), || {
        let (status, list) = rempart_tests::http::api(&console, &token, "GET", "/api/v1/quarantine", None);
        status == 200 && list.to_string().contains(&id)
    }));
    let (status, done) = rempart_tests::http::api(&console, &token, "POST", &format!("/api/v1/quarantine/{id}/release"), None);
    assert_eq!(status, 200, "{done}");
    std::thread::sleep(Duration::from_millis(500));
    let next = c.send_mail("secretary@club.example", &["alice@example.com"], &newsletter("Alice"));
    assert_eq!(next.code, 250, "{next:?}");
    let next_id = queue_id(&next);
    assert!(rempart_tests::wait_until(Duration::from_secs(5), || !symbols_of(&gw, &next_id).is_empty()));
    let symbols = symbols_of(&gw, &next_id);
    assert!(!symbols.contains("FUZZY_DENIED") && symbols.contains("FUZZY_WHITE"), "{symbols}");
}

/// On a NATS cluster: the report is made on the console, the copy came through one edge,
/// the variants come through the other; the scanner they share reads the memory from the
/// NATS store.
#[test]
fn in_a_cluster_one_report_reaches_every_edge() {
    use rempart_tests::nats::NatsServer;
    let nats = NatsServer::start();
    let sink = Sink::start(SinkMode::Accept);
    let state = format!("[state]\nbackend = \"nats\"\nnats_url = \"{}\"\n", nats.url());
    let domains = format!(
        "[[domain]]\nname = \"example.com\"\nroute = \"{route}\"\n[[domain]]\nname = \"held.example\"\nroute = \"{route}\"\n[domain.policy]\nquarantine = -100.0\n",
        route = sink.route()
    );
    let scanner =
        Gateway::start_role(&format!("{state}[greylist]\nenabled = false\n[scanner]\nlisten = \"{{listen}}\"\n{domains}"), "scanner");
    let cfg = format!(
        "[smtp]\nhostname = \"mx.gw.test\"\n[[smtp.listener]]\naddress = \"{{listen}}\"\n[queue]\ndata_dir = \"{{data}}\"\n\
         [bus]\nbackend = \"nats\"\nnats_url = \"{url}\"\n{state}[greylist]\nenabled = false\n\
         [scanner]\nendpoints = [\"http://{scanner}\"]\n[console]\nlisten = \"{{console}}\"\nsecure_cookies = false\n{domains}",
        url = nats.url(),
        scanner = scanner.addr(),
    );
    let (first_edge, second_edge) = (Gateway::start_role(&cfg, "edge"), Gateway::start_role(&cfg, "edge"));
    let _relay = Gateway::start_role(&cfg, "relay");
    let console = Gateway::start_role(&cfg, "console serve");
    let config = console.config_path.display().to_string();
    let out = run_rempart(
        &["--config", &config, "account", "add", "ops@gw.test", "--role", "operator"],
        console.dir.path(),
        Some(b"operator password"),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run_rempart(&["--config", &config, "account", "token", "add", "ops@gw.test"], console.dir.path(), None);
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let api_at = format!("127.0.0.1:{}", console.console_port());

    let mut first = SmtpClient::connect(&first_edge.addr());
    first.ehlo();
    let held = first.send_mail("notice@parcels.example", &["bob@held.example"], &variant(0));
    assert_eq!(held.code, 250, "{held:?}");
    let id = queue_id(&held);
    assert!(rempart_tests::wait_until(Duration::from_secs(20), || {
        let (status, list) = rempart_tests::http::api(&api_at, &token, "GET", "/api/v1/quarantine", None);
        status == 200 && list.to_string().contains(&id)
    }));
    let (status, done) = rempart_tests::http::api(&api_at, &token, "POST", &format!("/api/v1/quarantine/{id}/spam"), None);
    assert_eq!(status, 200, "{done}");

    let mut second = SmtpClient::connect(&second_edge.addr());
    second.ehlo();
    let remembered = rempart_tests::wait_until(Duration::from_secs(10), || {
        let r = second.send_mail("notice@parcels.example", &["alice@example.com"], &variant(50));
        let id = queue_id(&r);
        rempart_tests::wait_until(Duration::from_secs(2), || !symbols_of(&second_edge, &id).is_empty());
        symbols_of(&second_edge, &id).contains("FUZZY_DENIED")
    });
    assert!(remembered, "the report never reached the other edge's verdicts:\n{}", second_edge.log());
    let hits = (1..=10)
        .filter(|&i| {
            let r = second.send_mail(&format!("notice@parcels{i}.example"), &["alice@example.com"], &variant(i));
            let id = queue_id(&r);
            rempart_tests::wait_until(Duration::from_secs(5), || symbols_of(&second_edge, &id).contains("FUZZY_DENIED"))
        })
        .count();
    assert_eq!(hits, 10, "every variant hits on the other edge");
}
