//! The management plane (issue 32) against a running `rempart serve`: tenants, domains,
//! accounts and tokens changed through the CLI (the admin socket) and `/api/v1` while
//! `rempart-loadtest` sends to another domain; a tenant's domain pending until its TXT
//! record is published on the test's DNS server; the route moved; a disabled account's
//! token and session dead at once; every API route tried by every role; a brute force
//! behind a trusted proxy that does not lock the operator out.

use std::thread;
use std::time::{Duration, Instant};

use rempart_tests::dns::{DnsServer, Rr, Zone};
use rempart_tests::gateway::{SteadyLoad, run_rempart};
use rempart_tests::http::api;
use rempart_tests::http::{Browser, request};
use rempart_tests::{Gateway, Sink, SinkMode, SmtpClient, free_port, message, wait_until};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery";

/// One message to `to`: the RCPT reply code, and the DATA reply's when RCPT passed.
fn send(addr: &str, to: &str, subject: &str) -> u16 {
    let mut c = SmtpClient::connect(addr);
    c.ehlo();
    assert_eq!(c.cmd("MAIL FROM:<s@sender.test>").code, 250);
    let rcpt = c.cmd(&format!("RCPT TO:<{to}>"));
    if rcpt.code != 250 {
        return rcpt.code;
    }
    assert_eq!(c.cmd("DATA").code, 354);
    c.send_raw(&rempart_smtp::dot_stuff(message(subject).as_bytes()));
    c.read_reply().code
}

fn delivered(sink: &Sink, subject: &str) -> bool {
    sink.messages().iter().any(|m| String::from_utf8_lossy(&m.data).contains(&format!("Subject: {subject}")))
}

fn time_until(timeout: Duration, mut check: impl FnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    wait_until(timeout, || {
        let done = check();
        if !done {
            thread::sleep(Duration::from_millis(50));
        }
        done
    })
    .then(|| started.elapsed())
}

fn gateway(dns: &DnsServer, load_sink: u16, extra: &str) -> Gateway {
    Gateway::start(&format!(
        "[smtp]\nhostname = \"mx.gw.test\"\n[[smtp.listener]]\naddress = \"{{listen}}\"\n[queue]\ndata_dir = \"{{data}}\"\nretry = [\"1s\"]\n\
         [greylist]\nenabled = false\n[dns]\nservers = [\"{}\"]\ntimeout_ms = 500\n\
         [console]\nlisten = \"{{console}}\"\nsecure_cookies = false\nverify_every = \"1s\"\nmx_hosts = [\"mx.gw.test\"]\n{extra}\
         [[domain]]\nname = \"example.com\"\nroute = \"smtp://127.0.0.1:{load_sink}\"\n",
        dns.addr
    ))
}

fn console_addr(gw: &Gateway) -> String {
    let addr = format!("127.0.0.1:{}", gw.console_port());
    assert!(wait_until(Duration::from_secs(10), || std::net::TcpStream::connect(&addr).is_ok()), "{}", gw.log());
    addr
}

#[test]
fn a_tenant_onboards_a_domain_under_load_and_the_operator_changes_it_live() {
    let dns = DnsServer::start(Zone::new());
    let load_sink = free_port();
    let gw = gateway(&dns, load_sink, "");
    let console = console_addr(&gw);
    let load = SteadyLoad::start(&gw.addr(), load_sink, 20, 15);

    // The operator, on the running gateway's socket: a tenant and its admin.
    gw.cli(&["tenant", "add", "acme", "--name", "Acme SA"], None);
    gw.cli(&["tenant", "add", "globex"], None);
    gw.cli(&["account", "add", "admin@acme.test", "--role", "tenant-admin", "--tenant", "acme"], Some(PASSWORD));
    gw.cli(&["account", "add", "boss@globex.test", "--role", "tenant-admin", "--tenant", "globex"], Some(PASSWORD));
    let acme = gw.cli(&["account", "token", "add", "admin@acme.test"], None);
    let globex = gw.cli(&["account", "token", "add", "boss@globex.test"], None);
    assert!(acme.starts_with("rpt_"), "{acme}");

    // The tenant adds its domain: pending, its mail deferred with the reason.
    let first = Sink::start(SinkMode::Accept);
    let (status, record) = api(&console, &acme, "POST", "/api/v1/domains", Some(json!({ "name": "acme.test", "route": first.route() })));
    assert_eq!(status, 201, "{record}");
    assert_eq!(record["status"], "pending");
    assert_eq!(record["tenant"], "acme");
    let (status, _) = api(&console, &globex, "POST", "/api/v1/domains", Some(json!({ "name": "acme.test", "route": first.route() })));
    assert_eq!(status, 409, "a domain belongs to one tenant");
    let (status, _) = api(&console, &globex, "GET", "/api/v1/domains/acme.test", None);
    assert_eq!(status, 404, "another tenant does not see it");
    thread::sleep(Duration::from_millis(600));
    let mut c = SmtpClient::connect(&gw.addr());
    c.ehlo();
    c.cmd("MAIL FROM:<s@sender.test>");
    let pending = c.cmd("RCPT TO:<bob@acme.test>");
    assert_eq!(pending.code, 450, "{pending:?}");
    assert!(pending.text().contains("4.7.1") && pending.text().contains("_rempart-verify.acme.test"), "{pending:?}");

    // What to publish, checked against DNS: nothing yet.
    let (status, dns_view) = api(&console, &acme, "GET", "/api/v1/domains/acme.test/dns", None);
    assert_eq!(status, 200, "{dns_view}");
    let records = dns_view["records"].as_array().unwrap();
    let verify = records.iter().find(|r| r["name"] == "_rempart-verify.acme.test").expect("the TXT to publish");
    assert_eq!(verify["published"], false, "{dns_view}");
    assert!(records.iter().any(|r| r["kind"] == "MX" && r["value"].as_str().unwrap().ends_with("mx.gw.test")), "{dns_view}");
    assert!(records.iter().any(|r| r["name"] == "_dmarc.acme.test"), "{dns_view}");

    // Published: the periodic check turns it active; its mail goes to its route.
    let mut zone = Zone::new();
    zone.add("_rempart-verify.acme.test", Rr::txt(verify["value"].as_str().unwrap()));
    dns.set_zone(zone);
    let activated = time_until(Duration::from_secs(10), || send(&gw.addr(), "bob@acme.test", "hello acme") == 250)
        .unwrap_or_else(|| panic!("acme.test never turned active:\n{}", gw.log()));
    assert!(wait_until(Duration::from_secs(10), || delivered(&first, "hello acme")), "{}", gw.log());

    // The tenant moves its route: the next messages go to the new one.
    let second = Sink::start(SinkMode::Accept);
    let (status, changed) = api(&console, &acme, "PUT", "/api/v1/domains/acme.test", Some(json!({ "route": second.route() })));
    assert_eq!(status, 200, "{changed}");
    let mut n = 0;
    let moved = time_until(Duration::from_secs(10), || {
        n += 1;
        let subject = format!("moved {n}");
        send(&gw.addr(), "bob@acme.test", &subject) == 250 && wait_until(Duration::from_millis(400), || delivered(&second, &subject))
    })
    .unwrap_or_else(|| panic!("the new route is never used:\n{}", gw.log()));

    // The operator adds a domain from the CLI: active at once.
    let third = Sink::start(SinkMode::Accept);
    let started = Instant::now();
    gw.cli(&["domain", "add", "b.example", "--route", &third.route()], None);
    let added = time_until(Duration::from_secs(10), || send(&gw.addr(), "carol@b.example", "to b") == 250)
        .map(|_| started.elapsed())
        .unwrap_or_else(|| panic!("b.example never accepted:\n{}", gw.log()));
    let listed = gw.cli(&["domain", "list"], None);
    assert!(listed.contains("example.com\tactive\tfile"), "{listed}");
    assert!(listed.contains("b.example\tactive\tstore"), "{listed}");
    assert!(listed.contains("acme.test\tactive\tstore\tacme"), "{listed}");

    // Bad input: clear errors, nothing changed.
    let out = run_rempart(
        &["--config", &gw.config_path.display().to_string(), "domain", "add", "not a domain", "--route", "smtp://x"],
        gw.dir.path(),
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a domain name"), "{}", String::from_utf8_lossy(&out.stderr));
    let (status, e) = api(&console, &acme, "PUT", "/api/v1/domains/acme.test", Some(json!({ "greylisting": "maybe" })));
    assert_eq!(status, 422, "{e}");

    // Disabling an account kills its token and its console session at once.
    let mut browser = Browser::new(&console);
    let page = browser.get("/login");
    let r = browser.post("/login", &[("csrf", &page.csrf()), ("email", "admin@acme.test"), ("password", PASSWORD)]);
    assert_eq!(r.status, 303, "{r:?}");
    assert_eq!(browser.get("/quarantine").status, 200);
    gw.cli(&["account", "disable", "admin@acme.test"], None);
    assert_eq!(api(&console, &acme, "GET", "/api/v1/domains", None).0, 401);
    assert_eq!(browser.get("/quarantine").status, 303, "the session is dead");
    gw.cli(&["account", "enable", "admin@acme.test"], None);
    assert_eq!(api(&console, &acme, "GET", "/api/v1/domains", None).0, 401, "a disable ends the tokens for good");
    let tokens = gw.cli(&["account", "token", "list", "admin@acme.test"], None);
    let id = tokens.split('\t').next().unwrap().to_string();
    gw.cli(&["account", "token", "revoke", &id], None);
    assert!(gw.cli(&["account", "token", "list", "admin@acme.test"], None).is_empty());

    let report = load.report();
    let r = &report["reconciliation"];
    eprintln!(
        "management under load: verified→active {activated:?}, route moved {moved:?}, operator's domain added {added:?}; loadtest sent {} errors {} tempfailed {} lost {}",
        r["sent"], r["errors"], r["tempfailed"], r["lost"]
    );
    assert!(r["sent"].as_u64().unwrap() > 150, "{report}");
    assert_eq!((r["errors"].as_u64(), r["tempfailed"].as_u64(), r["lost"].as_u64()), (Some(0), Some(0), Some(0)), "{report}");
    assert_eq!(r["delivered"], r["expected_deliveries"], "{report}");
    for took in [moved, added] {
        assert!(took < Duration::from_secs(2), "{took:?}");
    }
}

/// Every management route, tried by every role: what the roles table says, and a
/// tenant admin only on their own tenant.
#[test]
fn every_api_route_for_every_role() {
    let dns = DnsServer::start(Zone::new());
    let gw = gateway(&dns, free_port(), "");
    let console = console_addr(&gw);
    gw.cli(&["tenant", "add", "acme"], None);
    gw.cli(&["tenant", "add", "globex"], None);
    gw.cli(&["domain", "add", "acme.test", "--route", "smtp://127.0.0.1:9", "--tenant", "acme"], None);
    gw.cli(&["domain", "add", "globex.test", "--route", "smtp://127.0.0.1:9", "--tenant", "globex"], None);
    let roles = [
        ("operator", "ops@gw.test", vec!["--role", "operator"]),
        ("helpdesk", "desk@gw.test", vec!["--role", "helpdesk"]),
        ("auditor", "audit@gw.test", vec!["--role", "auditor"]),
        ("tenant-admin", "admin@acme.test", vec!["--role", "tenant-admin", "--tenant", "acme"]),
        ("user", "alice@acme.test", vec!["--role", "user", "--tenant", "acme"]),
    ];
    let mut tokens = Vec::new();
    for (role, email, args) in &roles {
        let mut all = vec!["account", "add", *email];
        all.extend(args.iter().copied());
        gw.cli(&all, Some(PASSWORD));
        tokens.push((*role, gw.cli(&["account", "token", "add", email], None)));
    }
    gw.cli(&["account", "add", "carol@globex.test", "--tenant", "globex"], Some(PASSWORD));
    // Each row: method, path, body, and the status expected for operator, helpdesk,
    // auditor, tenant admin, user. Changes come back undone by the next rows.
    let new_user = |email: &str| json!({ "email": email, "password": PASSWORD, "role": "user" });
    let ed25519 = |selector: &str| json!({ "selector": selector, "algorithm": "ed25519" });
    #[allow(clippy::type_complexity)]
    let table: Vec<(&str, String, Option<Value>, [u16; 5])> = vec![
        ("GET", "/api/v1/whoami".into(), None, [200, 200, 200, 200, 200]),
        ("GET", "/api/v1/tenants".into(), None, [200, 200, 200, 200, 403]),
        ("GET", "/api/v1/tenants/acme".into(), None, [200, 200, 200, 200, 403]),
        ("GET", "/api/v1/tenants/globex".into(), None, [200, 200, 200, 404, 403]),
        ("POST", "/api/v1/tenants".into(), Some(json!({ "id": "initech" })), [201, 403, 403, 403, 403]),
        ("PUT", "/api/v1/tenants/acme".into(), Some(json!({ "name": "Acme" })), [200, 403, 403, 403, 403]),
        ("DELETE", "/api/v1/tenants/initech".into(), None, [200, 403, 403, 403, 403]),
        ("GET", "/api/v1/domains".into(), None, [200, 200, 200, 200, 403]),
        ("GET", "/api/v1/domains/acme.test".into(), None, [200, 200, 200, 200, 403]),
        ("GET", "/api/v1/domains/globex.test".into(), None, [200, 200, 200, 404, 403]),
        ("GET", "/api/v1/domains/acme.test/dns".into(), None, [200, 200, 200, 200, 403]),
        ("PUT", "/api/v1/domains/acme.test".into(), Some(json!({ "greylisting": false })), [200, 403, 403, 200, 403]),
        ("PUT", "/api/v1/domains/globex.test".into(), Some(json!({ "greylisting": false })), [200, 403, 403, 404, 403]),
        ("POST", "/api/v1/domains/acme.test/verify".into(), None, [200, 403, 403, 200, 403]),
        (
            "POST",
            "/api/v1/domains".into(),
            Some(json!({ "name": "new.acme.test", "route": "smtp://127.0.0.1:9" })),
            [201, 403, 403, 201, 403],
        ),
        ("DELETE", "/api/v1/domains/new.acme.test".into(), None, [200, 403, 403, 200, 403]),
        ("DELETE", "/api/v1/tenants/globex".into(), None, [409, 403, 403, 403, 403]),
        ("GET", "/api/v1/accounts".into(), None, [200, 200, 200, 200, 403]),
        ("GET", "/api/v1/accounts/carol@globex.test".into(), None, [200, 200, 200, 404, 403]),
        ("GET", "/api/v1/accounts/alice@acme.test".into(), None, [200, 200, 200, 200, 200]),
        ("POST", "/api/v1/accounts".into(), Some(new_user("dave@acme.test")), [201, 403, 403, 201, 403]),
        ("PATCH", "/api/v1/accounts/erin@acme.test".into(), Some(json!({ "suspended": false })), [200, 403, 403, 200, 404]),
        ("PATCH", "/api/v1/accounts/carol@globex.test".into(), Some(json!({ "suspended": false })), [200, 403, 403, 404, 404]),
        ("PATCH", "/api/v1/accounts/erin@acme.test".into(), Some(json!({ "password": "a new password" })), [200, 403, 403, 200, 404]),
        ("GET", "/api/v1/accounts/alice@acme.test/tokens".into(), None, [200, 200, 200, 200, 200]),
        ("POST", "/api/v1/accounts/carol@globex.test/tokens".into(), None, [201, 403, 403, 404, 404]),
        ("POST", "/api/v1/accounts/erin@acme.test/totp".into(), None, [200, 403, 403, 200, 404]),
        ("POST", "/api/v1/accounts/erin@acme.test/totp/confirm".into(), Some(json!({ "code": "000000" })), [422, 403, 403, 422, 404]),
        ("DELETE", "/api/v1/accounts/erin@acme.test/totp".into(), None, [200, 403, 403, 200, 404]),
        ("DELETE", "/api/v1/accounts/erin@acme.test".into(), None, [200, 403, 403, 200, 403]),
        ("DELETE", "/api/v1/tokens/000000000000".into(), None, [404, 404, 404, 404, 404]),
        ("GET", "/api/v1/domains/acme.test/dkim".into(), None, [200, 200, 200, 200, 403]),
        ("GET", "/api/v1/domains/globex.test/dkim".into(), None, [200, 200, 200, 404, 403]),
        ("POST", "/api/v1/domains/acme.test/dkim".into(), Some(ed25519("t1")), [201, 403, 403, 201, 403]),
        ("POST", "/api/v1/domains/acme.test/dkim/rotate".into(), Some(ed25519("t2")), [201, 403, 403, 201, 403]),
        ("DELETE", "/api/v1/domains/acme.test/dkim/t1".into(), None, [200, 403, 403, 200, 403]),
        ("DELETE", "/api/v1/domains/acme.test/dkim/t2".into(), None, [200, 403, 403, 200, 403]),
        ("POST", "/api/v1/domains/globex.test/dkim".into(), Some(ed25519("t1")), [201, 403, 403, 404, 403]),
        ("DELETE", "/api/v1/domains/globex.test/dkim/t1".into(), None, [200, 403, 403, 404, 403]),
        ("POST", "/api/v1/accounts/alice@acme.test/totp".into(), None, [200, 403, 403, 200, 200]),
        ("DELETE", "/api/v1/accounts/alice@acme.test/totp".into(), None, [200, 403, 403, 200, 200]),
        ("POST", "/api/v1/accounts/carol@globex.test/totp".into(), None, [200, 403, 403, 404, 404]),
        ("DELETE", "/api/v1/accounts/carol@globex.test/totp".into(), None, [200, 403, 403, 404, 404]),
    ];
    let mut failures = Vec::new();
    let operator = tokens[0].1.clone();
    for (i, (role, token)) in tokens.iter().enumerate() {
        // Every role starts from the same state: erin exists, what others made does not.
        for undo in ["/api/v1/tenants/initech", "/api/v1/domains/new.acme.test", "/api/v1/accounts/dave@acme.test"] {
            api(&console, &operator, "DELETE", undo, None);
        }
        api(
            &console,
            &operator,
            "POST",
            "/api/v1/accounts",
            Some(json!({ "email": "erin@acme.test", "password": PASSWORD, "tenant": "acme" })),
        );
        for (method, path, body, expected) in &table {
            let (status, answer) = api(&console, token, method, path, body.clone());
            if status != expected[i] {
                failures.push(format!("{role} {method} {path}: {status}, expected {} ({answer})", expected[i]));
            }
        }
    }
    // The pages, for each role's browser session.
    let pages: [(&str, [u16; 5]); 9] = [
        ("/tenants", [200, 200, 200, 200, 403]),
        ("/accounts", [200, 200, 200, 200, 403]),
        ("/quarantine", [200, 200, 200, 200, 200]),
        ("/reports", [200, 200, 200, 200, 404]),
        ("/account", [200, 200, 200, 200, 200]),
        ("/domains", [200, 200, 200, 200, 403]),
        ("/domains/acme.test", [200, 200, 200, 200, 403]),
        ("/domains/globex.test", [200, 200, 200, 404, 403]),
        ("/domains/no.such.test", [404, 404, 404, 404, 403]),
    ];
    for (i, (role, email, _)) in roles.iter().enumerate() {
        let mut b = Browser::new(&console);
        let login = b.get("/login");
        assert_eq!(b.post("/login", &[("csrf", &login.csrf()), ("email", email), ("password", PASSWORD)]).status, 303, "{role}");
        for (page, expected) in &pages {
            let status = b.get(page).status;
            if status != expected[i] {
                failures.push(format!("{role} page {page}: {status}, expected {}", expected[i]));
            }
        }
        // The menu offers only the pages the role may open.
        let menu = b.get("/quarantine").body;
        for link in ["/domains", "/reports", "/accounts"] {
            let shown = menu.contains(&format!("href=\"{link}\""));
            if shown != (*role != "user") {
                failures.push(format!("{role}: the menu's {link} link is {}", if shown { "shown" } else { "missing" }));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // A user changes their own password with the current one; their tokens die with it.
    let alice = &tokens[4].1;
    let wrong = json!({ "password": "a new password", "current_password": "wrong one!" });
    assert_eq!(api(&console, alice, "PATCH", "/api/v1/accounts/alice@acme.test", Some(wrong)).0, 403);
    let right = json!({ "password": "a new password", "current_password": PASSWORD });
    assert_eq!(api(&console, alice, "PATCH", "/api/v1/accounts/alice@acme.test", Some(right)).0, 200);
    assert_eq!(api(&console, alice, "GET", "/api/v1/whoami", None).0, 401, "tokens are invalid after a password change");
    // Without a token: 401 everywhere.
    for (method, path, body, _) in &table {
        let body = body.clone().map(|b| b.to_string()).unwrap_or_default();
        assert_eq!(request(&console, method, path, &[], &body).status, 401, "{method} {path}");
    }
}

/// Fifty failed logins from one client behind the trusted proxy do not stop the
/// operator logging in from another client behind the same proxy.
#[test]
fn a_brute_force_behind_the_proxy_does_not_lock_the_operator_out() {
    let dns = DnsServer::start(Zone::new());
    let gw = gateway(&dns, free_port(), "trusted_proxies = [\"127.0.0.1\"]\n");
    let console = console_addr(&gw);
    gw.cli(&["account", "add", "ops@gw.test", "--role", "operator"], Some(PASSWORD));
    let attempt = |client: &str, password: &str| {
        let mut b = Browser::new(&console);
        let page = b.get("/login");
        let headers = [("Content-Type", "application/x-www-form-urlencoded"), ("X-Forwarded-For", client)];
        let body = format!("csrf={}&email=ops%40gw.test&password={}", page.csrf(), rempart_tests::http::encode(password));
        b.send("POST", "/login", &headers, &body).status
    };
    let mut statuses = Vec::new();
    for i in 0..50 {
        statuses.push(attempt("203.0.113.66", &format!("guess {i}")));
    }
    assert!(statuses.iter().all(|s| *s == 401 || *s == 429), "{statuses:?}");
    assert!(statuses.contains(&429), "the guesser is throttled: {statuses:?}");
    assert_eq!(attempt("203.0.113.66", PASSWORD), 429, "even with the right password, the guessing client waits");
    assert_eq!(attempt("198.51.100.7", PASSWORD), 303, "the operator, from their own address, logs in");
    // A client that forges X-Forwarded-For in front of the proxy is still itself.
    assert_eq!(attempt("198.51.100.7, 203.0.113.66", PASSWORD), 429, "the proxy's last hop is what counts");
}

/// A browser login with `code` as the second factor (empty: none typed); the status.
fn console_login(console: &str, email: &str, password: &str, code: &str) -> (Browser, u16, String) {
    let mut b = Browser::new(console);
    let page = b.get("/login");
    let r = b.post("/login", &[("csrf", &page.csrf()), ("email", email), ("password", password), ("code", code)]);
    (b, r.status, r.body)
}

fn code_at(secret: &str, offset: i64) -> String {
    let now = rempart_model::date::unix_now().saturating_add_signed(offset);
    rempart_state::second_factor::code_at(secret, now).expect("a code")
}

/// The second factor: set up through the API, then asked at every console login (a
/// wrong or replayed code refused), reset by the operator's CLI; a tenant that
/// requires it sends its accounts to set it up before any other page.
#[test]
fn a_second_factor_is_asked_once_set_up_and_enforced_by_the_tenant() {
    let dns = DnsServer::start(Zone::new());
    let gw = gateway(&dns, free_port(), "");
    let console = console_addr(&gw);
    gw.cli(&["tenant", "add", "acme"], None);
    gw.cli(&["tenant", "add", "vault", "--require-totp"], None);
    gw.cli(&["domain", "add", "acme.test", "--route", "smtp://127.0.0.1:9", "--tenant", "acme"], None);
    gw.cli(&["domain", "add", "vault.test", "--route", "smtp://127.0.0.1:9", "--tenant", "vault"], None);
    gw.cli(&["account", "add", "alice@acme.test", "--tenant", "acme"], Some(PASSWORD));
    gw.cli(&["account", "add", "bob@vault.test", "--tenant", "vault"], Some(PASSWORD));
    let token = gw.cli(&["account", "token", "add", "alice@acme.test"], None);
    assert_eq!(console_login(&console, "alice@acme.test", PASSWORD, "").1, 303, "no second factor yet");

    let (status, enrolled) = api(&console, &token, "POST", "/api/v1/accounts/alice@acme.test/totp", None);
    assert_eq!(status, 200, "{enrolled}");
    let secret = enrolled["secret"].as_str().expect("secret").to_string();
    assert!(enrolled["uri"].as_str().is_some_and(|u| u.starts_with("otpauth://totp/Rempart:alice%40acme.test?secret=")), "{enrolled}");
    assert_eq!(console_login(&console, "alice@acme.test", PASSWORD, "").1, 303, "not asked before it is confirmed");
    let confirm =
        |code: String| api(&console, &token, "POST", "/api/v1/accounts/alice@acme.test/totp/confirm", Some(json!({ "code": code })));
    assert_eq!(confirm("000000".into()).0, 422);
    assert_eq!(confirm(code_at(&secret, 0)).0, 200);

    let (_, status, body) = console_login(&console, "alice@acme.test", PASSWORD, "");
    assert!(status == 401 && body.contains("Enter the code from your authenticator app"), "{status}: {body}");
    assert_eq!(console_login(&console, "alice@acme.test", PASSWORD, "123456").1, 401, "a wrong code");
    assert_eq!(console_login(&console, "alice@acme.test", "wrong password", &code_at(&secret, 30)).1, 401);
    let next = code_at(&secret, 30);
    let (mut alice, status, _) = console_login(&console, "alice@acme.test", PASSWORD, &next);
    assert_eq!(status, 303, "password and code");
    assert_eq!(alice.get("/quarantine").status, 200);
    assert_eq!(console_login(&console, "alice@acme.test", PASSWORD, &next).1, 401, "a code is used once");
    // Lost phone: the operator resets it; the password alone works again.
    gw.cli(&["account", "totp", "remove", "alice@acme.test"], None);
    assert_eq!(console_login(&console, "alice@acme.test", PASSWORD, "").1, 303);

    // The vault tenant requires it: bob logs in, and every page sends him to set it up.
    let (mut bob, status, _) = console_login(&console, "bob@vault.test", PASSWORD, "");
    assert_eq!(status, 303);
    let r = bob.get("/quarantine");
    assert_eq!((r.status, r.header("location")), (303, Some("/account")), "{}", r.body);
    let page = bob.get("/account");
    assert!(page.body.contains("A second factor is required for your account"), "{}", page.body);
    let started = bob.post("/account/totp", &[("csrf", &page.csrf())]);
    let secret = started.body.split("id=\"totp-secret\">").nth(1).and_then(|s| s.split('<').next()).expect("the secret shown").to_string();
    let wrong = bob.post("/account/totp/confirm", &[("csrf", &page.csrf()), ("code", "000000")]);
    assert!(wrong.status == 422 && wrong.body.contains("Wrong code"), "{}", wrong.body);
    let done = bob.post("/account/totp/confirm", &[("csrf", &page.csrf()), ("code", &code_at(&secret, 0))]);
    assert!(done.status == 200 && done.body.contains("Second factor on."), "{}", done.body);
    assert_eq!(bob.get("/quarantine").status, 200, "set up: the console opens");
    let refused = bob.post("/account/totp/remove", &[("csrf", &page.csrf())]);
    assert_eq!(refused.status, 403, "required: its owner cannot remove it");
    assert_eq!(console_login(&console, "bob@vault.test", PASSWORD, "").1, 401, "and it is asked at login");
}

/// In headless Chromium, as a new tenant admin would: log in, open Domains, add one,
/// see the DNS records to publish, generate a DKIM key and see its TXT record. The
/// screenshots are kept in target/test-artifacts/.
#[test]
fn in_a_browser_a_tenant_admin_adds_a_domain_and_generates_a_dkim_key() {
    let Some(browser) = rempart_tests::webdriver::Chromium::start() else { return };
    let dns = DnsServer::start(Zone::new());
    let gw = gateway(&dns, free_port(), "");
    let base = format!("http://{}", console_addr(&gw));
    gw.cli(&["tenant", "add", "acme", "--name", "Acme Corp"], None);
    gw.cli(&["account", "add", "admin@acme.test", "--role", "tenant-admin", "--tenant", "acme"], Some(PASSWORD));

    browser.goto(&format!("{base}/login"));
    browser.type_into("#email", "admin@acme.test");
    browser.type_into("#password", PASSWORD);
    browser.click("#login");
    browser.source_with("href=\"/domains\"", Duration::from_secs(10));
    browser.click("a[href='/domains']");
    browser.source_with("id=\"domain-add\"", Duration::from_secs(10));
    browser.type_into("#domain-name", "shop.acme.test");
    browser.type_into("#domain-route", "smtp://192.0.2.10:25");
    browser.click("#domain-add");
    let page = browser.source_with("Domain added", Duration::from_secs(10));
    assert!(page.contains("pending: waiting for the proof of control"), "{page}");
    for wanted in ["_rempart-verify.shop.acme.test", "rempart-verify=", "10 mx.gw.test", "v=spf1", "_dmarc.shop.acme.test", "missing"] {
        assert!(page.contains(wanted), "the DNS records show {wanted}: {page}");
    }
    let artifacts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    browser.screenshot(&artifacts.join("console-domain-added.png"));

    browser.click("#dkim-generate");
    let page = browser.source_with("Key generated", Duration::from_secs(15));
    assert!(page.contains("._domainkey.shop.acme.test") && page.contains("v=DKIM1; k=rsa; p=MII"), "{page}");
    browser.screenshot(&artifacts.join("console-domain-dkim.png"));

    // What the pages did is what the API and every node see.
    let listed = gw.cli(&["dkim", "list", "shop.acme.test"], None);
    assert!(listed.contains("\trsa\tsigning"), "{listed}");
    let shown = gw.cli(&["domain", "show", "shop.acme.test"], None);
    assert!(shown.contains("\"status\": \"pending\"") && shown.contains("\"tenant\": \"acme\""), "{shown}");
}

/// A tenant admin manages their users from the console's /accounts page: adds one,
/// disables (their login refused at once), enables, sets a new password, deletes;
/// another tenant's accounts are neither listed nor reachable, and staff roles are not
/// theirs to give.
#[test]
fn a_tenant_admin_manages_their_users_on_the_accounts_page() {
    let dns = DnsServer::start(Zone::new());
    let gw = gateway(&dns, free_port(), "");
    let console = console_addr(&gw);
    gw.cli(&["tenant", "add", "acme"], None);
    gw.cli(&["tenant", "add", "globex"], None);
    gw.cli(&["domain", "add", "acme.test", "--route", "smtp://127.0.0.1:9", "--tenant", "acme"], None);
    gw.cli(&["account", "add", "admin@acme.test", "--role", "tenant-admin", "--tenant", "acme"], Some(PASSWORD));
    gw.cli(&["account", "add", "carol@globex.test", "--tenant", "globex"], Some(PASSWORD));
    let (mut admin, status, _) = console_login(&console, "admin@acme.test", PASSWORD, "");
    assert_eq!(status, 303);
    let page = admin.get("/accounts");
    assert!(page.body.contains("admin@acme.test") && !page.body.contains("carol@globex.test"), "{}", page.body);
    let csrf = page.csrf();
    let add = |b: &mut Browser, email: &str, role: &str| {
        b.post("/accounts", &[("csrf", &csrf), ("email", email), ("role", role), ("password", PASSWORD)])
    };
    assert_eq!(add(&mut admin, "dave@acme.test", "user").status, 303);
    assert!(admin.get("/accounts?done=added").body.contains("dave@acme.test"));
    assert_eq!(add(&mut admin, "eve@acme.test", "operator").status, 403, "staff roles are not a tenant admin's to give");
    assert_eq!(add(&mut admin, "mallory@globex.test", "user").status, 403, "another tenant's domain");
    assert_eq!(add(&mut admin, "dave@acme.test", "user").status, 409, "exists");

    let (mut dave, status, _) = console_login(&console, "dave@acme.test", PASSWORD, "");
    assert_eq!(status, 303);
    assert_eq!(admin.post("/accounts/dave@acme.test/disable", &[("csrf", &csrf)]).status, 303);
    assert_eq!(dave.get("/quarantine").status, 303, "disabled: the session ends at once");
    assert_eq!(console_login(&console, "dave@acme.test", PASSWORD, "").1, 401);
    assert_eq!(admin.post("/accounts/dave@acme.test/enable", &[("csrf", &csrf)]).status, 303);
    let short = admin.post("/accounts/dave@acme.test/password", &[("csrf", &csrf), ("password", "short")]);
    assert!(short.status == 422 && short.body.contains("at least 10 characters"), "{}", short.body);
    assert_eq!(admin.post("/accounts/dave@acme.test/password", &[("csrf", &csrf), ("password", "a brand new one")]).status, 303);
    assert_eq!(console_login(&console, "dave@acme.test", "a brand new one", "").1, 303);
    assert_eq!(admin.post("/accounts/carol@globex.test/disable", &[("csrf", &csrf)]).status, 404, "not theirs");
    assert_eq!(admin.post("/accounts/dave@acme.test/delete", &[("csrf", &csrf)]).status, 303);
    assert!(!admin.get("/accounts").body.contains("dave@acme.test"));
    assert_eq!(admin.post("/accounts/dave@acme.test/disable", &[("csrf", "forged")]).status, 403, "CSRF");
}

/// The operator manages customers from /tenants: adds one, requires a second factor of
/// its accounts and lifts it, deletes it (refused while it owns domains).
#[test]
fn the_operator_manages_customers_on_the_tenants_page() {
    let dns = DnsServer::start(Zone::new());
    let gw = gateway(&dns, free_port(), "");
    let console = console_addr(&gw);
    gw.cli(&["account", "add", "ops@gw.test", "--role", "operator"], Some(PASSWORD));
    let (mut ops, status, _) = console_login(&console, "ops@gw.test", PASSWORD, "");
    assert_eq!(status, 303);
    let page = ops.get("/tenants");
    assert!(page.body.contains("href=\"/tenants\""), "the menu offers it to staff");
    let csrf = page.csrf();
    assert_eq!(ops.post("/tenants", &[("csrf", &csrf), ("id", "acme"), ("name", "Acme SA")]).status, 303);
    assert_eq!(ops.post("/tenants", &[("csrf", &csrf), ("id", "bad id!"), ("name", "x")]).status, 422);
    assert_eq!(ops.post("/tenants", &[("csrf", &csrf), ("id", "acme")]).status, 409);
    gw.cli(&["domain", "add", "acme.test", "--route", "smtp://127.0.0.1:9", "--tenant", "acme"], None);
    let listed = ops.get("/tenants").body;
    assert!(listed.contains("Acme SA") && listed.contains("href=\"/domains/acme.test\"") && listed.contains("optional"), "{listed}");
    assert_eq!(ops.post("/tenants/acme/require-totp", &[("csrf", &csrf)]).status, 303);
    assert!(gw.cli(&["tenant", "show", "acme"], None).contains("\"require_totp\": true"));
    assert_eq!(ops.post("/tenants/acme/allow-password", &[("csrf", &csrf)]).status, 303);
    let refused = ops.post("/tenants/acme/delete", &[("csrf", &csrf)]);
    assert!(refused.status == 409 && refused.body.contains("remove its domains first"), "{}", refused.body);
    gw.cli(&["domain", "remove", "acme.test"], None);
    assert_eq!(ops.post("/tenants/acme/delete", &[("csrf", &csrf)]).status, 303);
    assert!(!ops.get("/tenants").body.contains("Acme SA"));
}
