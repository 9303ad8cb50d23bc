//! A console that handles volume (issue 33): long subjects cut (whole on hover),
//! compact dates, a selection released or deleted at once after one confirmation, a
//! confirmation before deleting one message, attachments listed by name, type and size
//! (downloaded by admins only, as `application/octet-stream` attachments); and in
//! headless Chromium at 1280×800 every page fits the width — a screenshot of each is
//! kept in target/test-artifacts/1280x800/.

use std::time::Duration;

use rempart_tests::{Sink, SinkMode, SmtpClient};

use super::console::{console_addr, gateway, login, quarantine, wait_listed};

const PASSWORD: &str = "correct horse battery";

fn with_attachment(subject: &str) -> String {
    format!(
        "From: Promo <promo@sender.test>\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/html\r\n\r\n<html><a hReF=\"http://shop.example\">Buy now</a><img src=\"http://tracker.example/p.gif\"><script>alert(1)</script></html>\r\n\
         --b1\r\nContent-Type: application/pdf; name=\"invoice 2026.pdf\"\r\nContent-Disposition: attachment; filename=\"invoice 2026.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
         JVBERi0xLjQKJcTl8uXrp/Og0MTGCg==\r\n--b1--\r\n"
    )
}

#[test]
fn selections_confirmations_and_attachments() {
    let sink = Sink::start(SinkMode::Accept);
    let gw = gateway(&sink);
    let long = "A very long subject line that goes on and on about an offer nobody asked for, with more words than any column can hold";
    let mut c = SmtpClient::connect(&gw.addr());
    c.ehlo();
    let reply = c.send_mail("promo@sender.test", &["alice@example.com"], &with_attachment(long));
    assert_eq!(reply.code, 250, "{reply:?}");
    let attached = reply.text().rsplit(' ').next().unwrap_or("").to_string();
    let ids: Vec<String> = (0..3).map(|_| quarantine(&gw, "bob@example.com")).collect();
    let mut admin = login(&gw, "admin@example.com");
    wait_listed(&gw, &mut admin, &attached);
    let list = wait_listed(&gw, &mut admin, &ids[2]);
    assert!(
        list.contains(&format!("title=\"{long}\"")) && !list.contains(&format!(">{long}<")),
        "the subject cut, whole on hover:\n{list}"
    );
    assert!(list.contains("<time datetime="), "{list}");

    // A selection: one confirmation page naming them, then done at once.
    let csrf = list.split("name=\"csrf\" value=\"").nth(1).and_then(|r| r.split('"').next()).unwrap_or("").to_string();
    let pick0 = format!("pick.{}", ids[0]);
    let pick1 = format!("pick.{}", ids[1]);
    let asked = admin.post("/quarantine/bulk", &[("csrf", &csrf), ("action", "delete"), (&pick0, "1"), (&pick1, "1")]);
    assert_eq!(asked.status, 200);
    assert!(asked.body.contains("Delete these messages for good?") && asked.body.contains("id=\"confirm\""), "{}", asked.body);
    assert_eq!(admin.get("/quarantine").body.matches("pick.").count(), 4, "nothing deleted before the confirmation");
    let csrf = asked.csrf();
    let done = admin.post("/quarantine/bulk", &[("csrf", &csrf), ("action", "delete"), ("confirm", "yes"), (&pick0, "1"), (&pick1, "1")]);
    assert!(done.body.contains("Done: 2"), "{}", done.body);
    let after = admin.get("/quarantine").body;
    assert!(!after.contains(&ids[0]) && !after.contains(&ids[1]) && after.contains(&ids[2]), "{after}");
    // Someone else's message in a selection is skipped, as if it did not exist.
    let mut other = login(&gw, "admin@other.test");
    let csrf = other.get("/quarantine").csrf();
    let pick2 = format!("pick.{}", ids[2]);
    let foreign = other.post("/quarantine/bulk", &[("csrf", &csrf), ("action", "delete"), ("confirm", "yes"), (&pick2, "1")]);
    assert!(foreign.body.contains("No message was selected"), "{}", foreign.body);

    // One message: delete asks first.
    let csrf = admin.get("/quarantine").csrf();
    let ask = admin.post(&format!("/quarantine/{}/delete", ids[2]), &[("csrf", &csrf)]);
    assert!(ask.status == 200 && ask.body.contains("id=\"confirm\""), "{}", ask.body);
    assert!(admin.get("/quarantine").body.contains(&ids[2]));

    // Attachments: listed for all who see the message, downloaded by admins only.
    let view = admin.get(&format!("/quarantine/{attached}"));
    assert!(view.body.contains("invoice 2026.pdf") && view.body.contains("application/pdf"), "{}", view.body);
    let file = admin.get(&format!("/quarantine/{attached}/attachment/0"));
    assert_eq!(file.status, 200);
    assert_eq!(file.header("content-type"), Some("application/octet-stream"));
    assert_eq!(file.header("content-disposition"), Some("attachment; filename=\"invoice 2026.pdf\""));
    assert!(file.body.starts_with("%PDF-1.4"), "{}", file.body);
    let mut alice = login(&gw, "alice@example.com");
    let hers = alice.get(&format!("/quarantine/{attached}?lang=fr"));
    assert!(hers.body.contains("Pièces jointes") && hers.body.contains("invoice 2026.pdf"), "{}", hers.body);
    assert!(!hers.body.contains("/attachment/0"), "a user gets no download link");
    assert_eq!(alice.get(&format!("/quarantine/{attached}/attachment/0")).status, 403);
    assert_eq!(other.get(&format!("/quarantine/{attached}/attachment/0")).status, 404);
}

#[test]
fn in_chromium_at_1280x800_every_page_fits_and_is_kept_as_a_screenshot() {
    let Some(browser) = rempart_tests::webdriver::Chromium::start() else { return };
    let sink = Sink::start(SinkMode::Accept);
    let gw = gateway(&sink);
    let mut c = SmtpClient::connect(&gw.addr());
    c.ehlo();
    let long = "Un sujet vraiment très long qui déborderait de n'importe quelle colonne si la console ne le coupait pas proprement";
    let held = c.send_mail("a-very-long-sender-address-for-testing@promotions.sender.test", &["alice@example.com"], &with_attachment(long));
    let id = held.text().rsplit(' ').next().unwrap_or("").to_string();
    assert_eq!(c.send_mail("friend@ok.test", &["bob@example.com"], "Subject: hello\r\n\r\nhi\r\n").code, 250);
    wait_listed(&gw, &mut login(&gw, "ops@provider.test"), &id);
    sink.wait_for(1, Duration::from_secs(15));

    let base = format!("http://{}", console_addr(&gw));
    browser.window(1280, 800);
    browser.goto(&format!("{base}/login"));
    browser.type_into("#email", "ops@provider.test");
    browser.type_into("#password", PASSWORD);
    browser.click("#login");
    browser.source_with(&id, Duration::from_secs(10));
    let artifacts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts/1280x800");
    let pages = [
        ("quarantine", "/quarantine".to_string()),
        ("quarantine-message", format!("/quarantine/{id}")),
        ("quarantine-message-fr", format!("/quarantine/{id}?lang=fr")),
        ("tracking", "/tracking".to_string()),
        ("tracking-message", format!("/tracking/{id}")),
        ("queue", "/queue".to_string()),
        ("reports", "/reports?days=1".to_string()),
        ("lists", "/lists".to_string()),
        ("domains", "/domains".to_string()),
        ("accounts", "/accounts".to_string()),
        ("tenants", "/tenants".to_string()),
        ("account", "/account".to_string()),
        ("why", format!("/why/{id}")),
    ];
    for (name, path) in pages {
        browser.goto(&format!("{base}{path}"));
        let source = browser.source_with("</main>", Duration::from_secs(10));
        if name == "tracking" {
            // Mail sent the moment the gateway listened is tracked: the console subscribed
            // to the events before the edge took any.
            assert!(source.contains(&id) && source.contains(">hello<"), "{source}");
        }
        let fits = browser.execute("return document.documentElement.scrollWidth <= window.innerWidth;");
        let widths = browser.execute("return [document.documentElement.scrollWidth, window.innerWidth];");
        browser.screenshot(&artifacts.join(format!("{name}.png")));
        assert_eq!(fits, serde_json::Value::Bool(true), "{name} ({path}) is wider than the window: {widths}");
    }
}
