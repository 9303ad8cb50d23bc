//! What the gateway does with its customers' authenticated mail once accepted: sending
//! limits per account and domain (451 with the limit named), outbound spam blocked,
//! held and notified (and the account suspended when it repeats), and the bounces that
//! come back — only to return paths the gateway signed, marking dead recipients.

use std::time::Duration;

use rempart_tests::dns::{DnsServer, Rr, Zone};
use rempart_tests::{Sink, SinkMode, SmtpClient};

use crate::submission::{PASSWORD, login, start_with, swaks};

#[test]
fn sending_limits_defer_with_451_and_say_which() {
    let s = start_with(
        "[outbound.account]\nmessages_per_hour = 2\nmessages_per_day = 0\nrecipients_per_hour = 0\nrecipients_per_day = 3\n\
         [outbound.domain]\nmessages_per_hour = 0\nmessages_per_day = 0\nrecipients_per_hour = 0\nrecipients_per_day = 0\n",
    );
    let auth = login("alice@example.com", PASSWORD);
    let send = |to: &str| {
        let mut args = vec!["--tls", "--from", "alice@example.com", "--to", to];
        args.extend(auth.iter().map(String::as_str));
        swaks(s.submission, &args)
    };
    let too_many = send("a@example.com,b@example.com,c@example.com,d@example.com");
    assert!(too_many.contains("451 4.7.1 Sending limit reached: 3 recipients per day for account alice@example.com"), "{too_many}");
    for n in 0..2 {
        let transcript = send("bob@example.com");
        assert!(transcript.contains("250 2.0.0 Ok: queued as"), "message {n}: {transcript}");
    }
    let third = send("bob@example.com");
    assert!(third.contains("451 4.7.1 Sending limit reached: 2 messages per hour for account alice@example.com"), "{third}");
    assert_eq!(s.sink.wait_for(2, Duration::from_secs(20)).len(), 2);

    // SMTP-out usage: in the domain admin's report and in the metrics.
    let token = std::fs::read_to_string(s.gw.dir.path().join("admin.token")).expect("token");
    let auth = vec![("Authorization".to_string(), format!("Bearer {token}"))];
    let console = format!("127.0.0.1:{}", s.gw.console_port());
    let mut usage = serde_json::Value::Null;
    let counted = rempart_tests::wait_until(Duration::from_secs(10), || {
        let report = rempart_tests::http::request(&console, "GET", "/api/v1/reports?scope=example.com&days=1", &auth, "");
        usage =
            serde_json::from_str::<serde_json::Value>(&report.body).unwrap_or_default()["report"]["outbound"]["alice@example.com"].clone();
        usage["login"] == 4 && usage["sent"] == 2
    });
    assert!(counted, "{usage}");
    assert_eq!((usage["recipients"].as_i64(), usage["limited"].as_i64()), (Some(2), Some(2)), "{usage}");
    assert!(usage["bytes"].as_i64().is_some_and(|b| b > 100), "{usage}");
    let mut admin = rempart_tests::http::Browser::new(&console);
    let form = admin.get("/login");
    assert_eq!(admin.post("/login", &[("csrf", &form.csrf()), ("email", "admin@example.com"), ("password", PASSWORD)]).status, 303);
    let page = admin.get("/reports?scope=example.com&days=1");
    assert!(page.body.contains("id=\"outbound\"") && page.body.contains("alice@example.com"), "{}", page.body);
    // The gateway runs in this process: its registry is the one /metrics would serve.
    let metrics = rempart_telemetry::metrics().render();
    for line in [
        "rempart_outbound_messages_total{domain=\"example.com\",result=\"sent\"} 2",
        "rempart_outbound_messages_total{domain=\"example.com\",result=\"limited\"} 2",
        "rempart_outbound_recipients_total{domain=\"example.com\"} 2",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
}

#[test]
fn outbound_spam_is_blocked_held_and_notified_and_repeated_spam_suspends_the_account() {
    let s = start_with("[outbound]\nsuspend_after_blocked = 2\n");
    let files = tempfile::tempdir().expect("tempdir");
    // Content rules only (no Date, no Message-ID, image-only HTML, mixed-case href):
    // above the outbound limit of 5.
    let spam = files.path().join("spam.eml");
    std::fs::write(
        &spam,
        "From: alice@example.com\r\nTo: x@partner.test\r\nSubject: Great offer\r\nContent-Type: text/html\r\n\r\n\
         <html><a hReF=\"http://shop.example\">Buy now</a><img src=\"http://tracker.example/p.gif\"></html>\r\n",
    )
    .expect("write");
    let auth = login("alice@example.com", PASSWORD);
    let send = || {
        let spam = spam.display().to_string();
        let mut args = vec!["--tls", "--from", "alice@example.com", "--to", "x@partner.test", "--data", &spam];
        args.extend(auth.iter().map(String::as_str));
        swaks(s.submission, &args)
    };
    let first = send();
    assert!(first.contains("550 5.7.1 Message blocked: it looks like spam"), "{first}");
    assert!(first.contains("/why/"), "the refusal links its explanation: {first}");
    // alice is told, with the portal link (her address is a customer one: the sink).
    let notices = s.sink.wait_for(1, Duration::from_secs(20));
    let notice = String::from_utf8_lossy(&notices[0].data).to_string();
    assert_eq!(notices[0].rcpt_to, vec!["alice@example.com".to_string()]);
    assert!(notice.contains("Your message was blocked") && notice.contains("/quarantine/"), "{notice}");
    assert!(notice.contains("Spam score [■") && notice.contains(" / 15 (blocked from 5.0)"), "the 0-15 bar: {notice}");

    // The second blocked message suspends the account; alice and the domain admin are told.
    let second = send();
    assert!(second.contains("550 5.7.1 Message blocked"), "{second}");
    let all = s.sink.wait_for(4, Duration::from_secs(20));
    let to: Vec<String> = all.iter().flat_map(|m| m.rcpt_to.clone()).collect();
    assert!(to.contains(&"admin@example.com".to_string()), "{to:?}");
    assert!(all.iter().any(|m| String::from_utf8_lossy(&m.data).contains("Account alice@example.com suspended")));
    let third = swaks(s.submission, &{
        let mut args = vec!["--tls", "--from", "alice@example.com", "--to", "bob@example.com"];
        args.extend(auth.iter().map(String::as_str));
        args
    });
    assert!(third.contains("550 5.7.1 Account alice@example.com is suspended"), "{third}");

    // Both blocked messages are held, and alice (their sender) sees them in the console.
    let token = std::fs::read_to_string(s.gw.dir.path().join("alice.token")).expect("token");
    let auth = vec![("Authorization".to_string(), format!("Bearer {token}"))];
    let console = format!("127.0.0.1:{}", s.gw.console_port());
    let held = rempart_tests::wait_until(Duration::from_secs(10), || {
        let list = rempart_tests::http::request(&console, "GET", "/api/v1/quarantine", &auth, "");
        list.status == 200 && list.body.matches("x@partner.test").count() >= 2
    });
    let list = rempart_tests::http::request(&console, "GET", "/api/v1/quarantine", &auth, "");
    assert!(held, "{} {}", list.status, list.body);
    // Her message's page shows the outbound score on the 0-15 scale.
    let listed: serde_json::Value = serde_json::from_str(&list.body).expect("json");
    let id = listed["messages"][0]["queue_id"].as_str().expect("a queue id").to_string();
    let mut browser = crate::console::login(&s.gw, "alice@example.com");
    let page = browser.get(&format!("/quarantine/{id}")).body;
    assert!(page.contains("Outbound spam score (0–15)") && page.contains("<meter min=\"0\" max=\"15\""), "{page}");

    // The domain admin's report counts both blocked messages and the suspension.
    let token = std::fs::read_to_string(s.gw.dir.path().join("admin.token")).expect("token");
    let admin = vec![("Authorization".to_string(), format!("Bearer {token}"))];
    let mut usage = serde_json::Value::Null;
    let counted = rempart_tests::wait_until(Duration::from_secs(10), || {
        let report = rempart_tests::http::request(&console, "GET", "/api/v1/reports?scope=example.com&days=1", &admin, "");
        usage =
            serde_json::from_str::<serde_json::Value>(&report.body).unwrap_or_default()["report"]["outbound"]["alice@example.com"].clone();
        usage["blocked"] == 2 && usage["suspended"] == 1
    });
    assert!(counted, "{usage}");
}

#[test]
fn bounces_come_back_only_to_return_paths_the_gateway_signed() {
    let s = start_with(
        "bounces = \"verified\"\n[[domain]]\nname = \"refusing.example\"\nroute = \"smtp://127.0.0.1:9\"\nbounces = \"refuse\"\n",
    );
    let mut args = vec!["--tls", "--from", "alice@example.com", "--to", "bob@example.com", "--header", "Subject: signed"];
    let auth = login("alice@example.com", PASSWORD);
    args.extend(auth.iter().map(String::as_str));
    let transcript = swaks(s.submission, &args);
    assert!(transcript.contains("250 2.0.0 Ok: queued as"), "{transcript}");
    let sent = s.sink.wait_for(1, Duration::from_secs(20));
    assert_eq!(sent.len(), 1, "{}", s.gw.log());
    let tagged = sent[0].mail_from.clone();
    assert!(tagged.starts_with("prvs=0") && tagged.ends_with("=alice@example.com"), "BATV-signed return path: {tagged}");

    // The bounce of that message comes back to the tagged address: accepted, delivered
    // to the mailbox underneath.
    let mut c = SmtpClient::connect(&s.gw.addr());
    c.ehlo();
    let bounce = "From: MAILER-DAEMON@far.example\r\nTo: alice@example.com\r\nSubject: Undelivered Mail\r\n\r\nbob is gone\r\n";
    assert_eq!(c.send_mail("", &[&tagged], bounce).code, 250);
    let delivered = s.sink.wait_for(2, Duration::from_secs(20));
    assert_eq!(delivered.len(), 2, "{}", s.gw.log());
    assert_eq!(delivered[1].rcpt_to, vec!["alice@example.com".to_string()], "the tag is removed");

    // Backscatter: bounces to addresses the gateway did not sign.
    for (to, why) in [
        ("alice@example.com", "not signed by this gateway (BATV)"),
        ("prvs=0123abcdef=alice@example.com", "not signed by this gateway (BATV)"),
        ("anyone@refusing.example", "accepts no bounces"),
    ] {
        assert_eq!(c.cmd("RSET").code, 250);
        assert_eq!(c.cmd("MAIL FROM:<>").code, 250);
        let r = c.cmd(&format!("RCPT TO:<{to}>"));
        assert_eq!(r.code, 550, "{to}: {r:?}");
        assert!(r.text().contains("5.7.1") && r.text().contains(why), "{to}: {}", r.text());
    }
    // Postmaster takes bounces; a bounce has one recipient.
    assert_eq!(c.cmd("RSET").code, 250);
    assert_eq!(c.cmd("MAIL FROM:<>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<postmaster@refusing.example>").code, 250);
    let r = c.cmd(&format!("RCPT TO:<{tagged}>"));
    assert_eq!((r.code, r.enhanced().as_deref()), (550, Some("5.5.3")), "{r:?}");
    // Mail with a sender is not a bounce.
    assert_eq!(c.cmd("RSET").code, 250);
    assert_eq!(c.cmd("MAIL FROM:<friend@far.example>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<alice@example.com>").code, 250);
    assert!(s.gw.log().contains("backscatter refused"), "{}", s.gw.log());
}

/// An RFC 3464 bounce from an outside server: `recipient` does not exist there.
fn user_unknown_bounce(recipient: &str) -> String {
    format!(
        "From: MAILER-DAEMON@far.example\r\nTo: alice@example.com\r\nSubject: Undelivered Mail Returned to Sender\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
         --B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\
         --B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.far.example\r\n\r\n\
         Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n\
         Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: Recipient address rejected: User unknown\r\n\r\n--B--\r\n"
    )
}

#[test]
fn user_unknown_bounces_mark_recipients_dead_and_suspend_the_account() {
    let s = start_with("[outbound]\nsuspend_after_bounces = 2\n");
    // Alice wrote to them: their bounces are believed.
    let auth = login("alice@example.com", PASSWORD);
    let mut args = vec!["--tls", "--from", "alice@example.com", "--to", "gone1@far.example,gone2@far.example"];
    args.extend(auth.iter().map(String::as_str));
    let transcript = swaks(s.submission, &args);
    assert!(transcript.contains("250 2.0.0 Ok: queued as"), "{transcript}");
    for gone in ["gone1@far.example", "gone2@far.example"] {
        let mut c = SmtpClient::connect(&s.gw.addr());
        c.ehlo();
        assert_eq!(c.send_mail("", &["alice@example.com"], &user_unknown_bounce(gone)).code, 250);
    }
    let suspended = rempart_tests::wait_until(Duration::from_secs(10), || s.gw.log().contains("account suspended"));
    assert!(suspended, "{}", s.gw.log());
    assert!(s.gw.log().contains("user unknown"), "the reason is given: {}", s.gw.log());

    // Another account of the domain may not send to the dead addresses either.
    let mut args = vec!["--tls", "--from", "admin@example.com", "--to", "gone1@far.example", "--quit-after", "RCPT"];
    let auth = login("admin@example.com", PASSWORD);
    args.extend(auth.iter().map(String::as_str));
    let transcript = swaks(s.submission, &args);
    assert!(transcript.contains("550 5.1.1") && transcript.contains("bounced as unknown"), "{transcript}");
}

/// Issue 30, defect 3: a report sent on port 25 to an account's address, naming
/// addresses the account never wrote to, neither suspends the account nor marks those
/// addresses dead (anyone can forge one).
#[test]
fn a_forged_bounce_suspends_nobody_and_poisons_no_recipient() {
    let s = start_with("[outbound]\nsuspend_after_bounces = 2\n");
    let mut report = user_unknown_bounce("victim0@far.example");
    let blocks: String =
        (1..10).map(|i| format!("Final-Recipient: rfc822; victim{i}@far.example\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n")).collect();
    report = report.replace("\r\n--B--\r\n", &format!("\r\n{blocks}--B--\r\n"));
    let mut c = SmtpClient::connect(&s.gw.addr());
    c.ehlo();
    assert_eq!(c.send_mail("", &["alice@example.com"], &report).code, 250);
    let ignored = rempart_tests::wait_until(Duration::from_secs(10), || s.gw.log().contains("never sent to"));
    assert!(ignored, "{}", s.gw.log());
    assert!(!s.gw.log().contains("account suspended"), "{}", s.gw.log());
    // Alice may still send, and to those addresses.
    let auth = login("alice@example.com", PASSWORD);
    let mut args = vec!["--tls", "--from", "alice@example.com", "--to", "victim1@far.example", "--quit-after", "RCPT"];
    args.extend(auth.iter().map(String::as_str));
    let transcript = swaks(s.submission, &args);
    assert!(transcript.contains("250 2.1.5") || transcript.contains("<~ 250"), "{transcript}");
    assert!(!transcript.contains("bounced as unknown"), "{transcript}");
}

/// The receiving server refuses submitted mail at RCPT as "user unknown": the relay's
/// own DSN goes to the customer's server (never through an edge), so the relay itself
/// remembers the dead addresses and counts them against the account, which is then
/// suspended and its domain admin told.
#[test]
fn unknown_recipients_refused_to_the_relay_count_against_the_account() {
    let outside = Sink::start(SinkMode::OnlyUsers(vec!["friend@partner.test".into()]));
    let mut zone = Zone::new();
    zone.add("partner.test", Rr::Mx(10, "mx.partner.test".into())).add("mx.partner.test", Rr::A("127.0.0.1".parse().unwrap()));
    let dns = DnsServer::start(zone);
    let s = start_with(&format!(
        "[dns]\nservers = [\"{}\"]\ntimeout_ms = 1000\n[relay]\nmx_port = {}\n[outbound]\nsuspend_after_bounces = 2\n",
        dns.addr,
        outside.addr.port()
    ));
    let auth = login("alice@example.com", PASSWORD);
    let mut args = vec!["--tls", "--from", "alice@example.com", "--to", "gone1@partner.test,gone2@partner.test"];
    args.extend(auth.iter().map(String::as_str));
    let transcript = swaks(s.submission, &args);
    assert!(transcript.contains("250 2.0.0 Ok: queued as"), "{transcript}");
    let suspended = rempart_tests::wait_until(Duration::from_secs(20), || s.gw.log().contains("account suspended"));
    assert!(suspended, "{}", s.gw.log());
    // The DSN to alice, and the notices to alice and her domain admin.
    let notices = rempart_tests::wait_until(Duration::from_secs(20), || {
        let texts: Vec<String> = s.sink.messages().iter().map(|m| String::from_utf8_lossy(&m.data).into_owned()).collect();
        texts.iter().any(|t| t.contains("5.1.1")) && s.sink.messages().iter().filter(|m| m.rcpt_to.len() == 1).count() >= 3
    });
    assert!(notices, "{:?}", s.sink.messages().iter().map(|m| m.rcpt_to.clone()).collect::<Vec<_>>());
    let told: Vec<String> = s
        .sink
        .messages()
        .iter()
        .filter(|m| String::from_utf8_lossy(&m.data).contains("Account alice@example.com suspended"))
        .flat_map(|m| m.rcpt_to.clone())
        .collect();
    assert!(told.contains(&"admin@example.com".to_string()) && told.contains(&"alice@example.com".to_string()), "{told:?}");

    // Alice may not send; nobody of the domain may write to the dead addresses.
    let mut args = vec!["--tls", "--from", "alice@example.com", "--to", "friend@partner.test", "--quit-after", "MAIL"];
    args.extend(auth.iter().map(String::as_str));
    let transcript = swaks(s.submission, &args);
    assert!(transcript.contains("550 5.7.1 Account alice@example.com is suspended"), "{transcript}");
    let mut args = vec!["--tls", "--from", "admin@example.com", "--to", "gone2@partner.test", "--quit-after", "RCPT"];
    let admin = login("admin@example.com", PASSWORD);
    args.extend(admin.iter().map(String::as_str));
    let transcript = swaks(s.submission, &args);
    assert!(transcript.contains("550 5.1.1") && transcript.contains("bounced as unknown"), "{transcript}");
}
