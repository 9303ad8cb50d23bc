//! What a console user changes that the gateway then does: a user releases only their
//! own copy of a message; allow and block entries added from the console decide the
//! next message over SMTP (a user's own list over their domain's); nobody edits a list
//! that is not theirs, in the portal or the API.

use std::time::Duration;

use rempart_tests::gateway::run_rempart;
use rempart_tests::http::request;
use rempart_tests::{Gateway, Sink, SinkMode, SmtpClient};

use super::console::{SPAMMY, add_users, config, console_addr, gateway, login, quarantine, wait_listed};

#[test]
fn a_user_releases_only_their_own_copy() {
    let sink = Sink::start(SinkMode::Accept);
    let gw = gateway(&sink);
    let mut c = SmtpClient::connect(&gw.addr());
    c.ehlo();
    let r = c.send_mail("promo@sender.test", &["alice@example.com", "bob@example.com"], SPAMMY);
    assert_eq!(r.code, 250, "{r:?}");
    let id = r.text().rsplit(' ').next().expect("queued as ID").to_string();

    let mut alice = login(&gw, "alice@example.com");
    wait_listed(&gw, &mut alice, &id);
    let csrf = alice.get("/quarantine").csrf();
    assert_eq!(alice.post(&format!("/quarantine/{id}/release"), &[("csrf", &csrf)]).status, 303);
    let got = sink.wait_for(1, Duration::from_secs(15));
    assert_eq!(got[0].rcpt_to, ["alice@example.com"], "alice released bob's copy too");
    assert_eq!(alice.post(&format!("/quarantine/{id}/release"), &[("csrf", &csrf)]).status, 409);

    let mut bob = login(&gw, "bob@example.com");
    let csrf = bob.get(&format!("/quarantine/{id}")).csrf();
    assert_eq!(bob.post(&format!("/quarantine/{id}/release"), &[("csrf", &csrf)]).status, 303, "bob's copy is still held");
    let got = sink.wait_for(2, Duration::from_secs(15));
    assert_eq!(got[1].rcpt_to, ["bob@example.com"]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(sink.messages().len(), 2);
}

#[test]
fn allow_and_block_entries_from_the_console_decide_the_next_message() {
    let sink = Sink::start(SinkMode::Accept);
    let gw = gateway(&sink);
    // Alice allows the sender of a message held for her, with the message's button.
    let id = quarantine(&gw, "alice@example.com");
    let mut alice = login(&gw, "alice@example.com");
    wait_listed(&gw, &mut alice, &id);
    let csrf = alice.get(&format!("/quarantine/{id}")).csrf();
    let allowed = alice.post(&format!("/quarantine/{id}/list/allow"), &[("csrf", &csrf)]);
    assert_eq!(allowed.status, 303, "{allowed:?}");
    let lists = alice.get("/lists?owner=alice@example.com");
    assert!(lists.body.contains("promo@sender.test") && lists.body.contains("allowed"), "{}", lists.body);

    // The domain admin blocks the sender's whole domain for example.com, with the form.
    let mut admin = login(&gw, "admin@example.com");
    let csrf = admin.get("/lists").csrf();
    let blocked = admin.post("/lists", &[("csrf", &csrf), ("owner", "example.com"), ("kind", "block"), ("sender", "@Sender.Test")]);
    assert_eq!(blocked.status, 303, "{blocked:?}");

    let mut c = SmtpClient::connect(&gw.addr());
    c.ehlo();
    let to_bob = c.send_mail("promo@sender.test", &["bob@example.com"], SPAMMY);
    assert_eq!(to_bob.code, 550, "the domain's block list: {to_bob:?}");
    assert!(to_bob.text().contains("block list"), "{to_bob:?}");
    let to_alice = c.send_mail("promo@sender.test", &["alice@example.com"], SPAMMY);
    assert_eq!(to_alice.code, 250, "alice's own allow entry wins: {to_alice:?}");
    let got = sink.wait_for(1, Duration::from_secs(15));
    assert_eq!(got[0].rcpt_to, ["alice@example.com"], "allowed mail is delivered, not held");

    // Removing the block lets the next message be scored again (quarantined: 7.30).
    let csrf = admin.get("/lists?owner=example.com").csrf();
    let removed = admin
        .post("/lists", &[("csrf", &csrf), ("owner", "example.com"), ("kind", "block"), ("sender", "sender.test"), ("remove", "true")]);
    assert_eq!(removed.status, 303);
    let again = c.send_mail("promo@sender.test", &["bob@example.com"], SPAMMY);
    assert_eq!(again.code, 250, "{again:?}");
}

#[test]
fn nobody_edits_a_list_that_is_not_theirs() {
    let sink = Sink::start(SinkMode::Accept);
    let token = std::cell::RefCell::new(String::new());
    let gw = Gateway::in_process_prepared(&config(&sink, ""), |gw| {
        add_users(gw);
        let config = gw.config_path.display().to_string();
        let out = run_rempart(&["--config", &config, "console", "token", "add", "bob@example.com"], gw.dir.path(), None);
        assert!(out.status.success(), "token add: {}", String::from_utf8_lossy(&out.stderr));
        *token.borrow_mut() = String::from_utf8_lossy(&out.stdout).trim().to_string();
    });
    let mut bob = login(&gw, "bob@example.com");
    let csrf = bob.get("/lists").csrf();
    for (owner, sender) in [("alice@example.com", "x@spam.test"), ("example.com", "spam.test"), ("other.test", "spam.test")] {
        let r = bob.post("/lists", &[("csrf", &csrf), ("owner", owner), ("kind", "allow"), ("sender", sender)]);
        assert_eq!(r.status, 400, "bob edits {owner}'s list: {r:?}");
        assert!(r.body.contains("may not edit"), "{}", r.body);
    }
    let r = bob.post("/lists", &[("csrf", "bad"), ("owner", "bob@example.com"), ("kind", "allow"), ("sender", "x@ok.test")]);
    assert_eq!(r.status, 403, "no CSRF token");
    let r = bob.post("/lists", &[("csrf", &csrf), ("owner", "bob@example.com"), ("kind", "allow"), ("sender", "not an address")]);
    assert_eq!(r.status, 400);

    let mut admin = login(&gw, "admin@other.test");
    let csrf = admin.get("/lists").csrf();
    let r = admin.post("/lists", &[("csrf", &csrf), ("owner", "bob@example.com"), ("kind", "block"), ("sender", "x@spam.test")]);
    assert_eq!(r.status, 400, "another domain's admin edits bob's list");
    let r = admin.post("/lists", &[("csrf", &csrf), ("owner", "user@other.test"), ("kind", "block"), ("sender", "x@spam.test")]);
    assert_eq!(r.status, 303, "an admin edits the list of an address in their domain");

    // The API: a token stands for its account, with the same limits.
    let token = token.borrow().clone();
    let auth = vec![("Authorization".to_string(), format!("Bearer {token}")), ("Content-Type".into(), "application/json".into())];
    let addr = console_addr(&gw);
    let r = request(&addr, "GET", "/api/v1/lists?owner=alice@example.com", &auth, "");
    assert_eq!(r.status, 403, "{r:?}");
    let r = request(&addr, "POST", "/api/v1/lists", &auth, r#"{"owner":"bob@example.com","kind":"block","sender":"x@spam.test"}"#);
    assert_eq!(r.status, 200, "{r:?}");
    let r = request(&addr, "GET", "/api/v1/lists?owner=bob@example.com", &auth, "");
    assert!(r.status == 200 && r.body.contains("\"sender\":\"x@spam.test\""), "{r:?}");
}
