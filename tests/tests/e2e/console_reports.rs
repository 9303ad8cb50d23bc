//! Reports from real traffic: messages accepted, quarantined and refused over SMTP
//! show up in the console's report of each domain (and of the whole gateway for the
//! operator) as a chart, tables and CSV; nobody reads another domain's report.

use std::time::Duration;

use rempart_tests::{Sink, SinkMode, SmtpClient};

use super::console::{SPAMMY, gateway, login};

const HAM: &str = "From: Friend <friend@ok.test>\r\nSubject: Lunch\r\n\r\nSee you at noon.\r\n";

#[test]
fn reports_count_what_the_gateway_did_per_domain_and_in_all() {
    let sink = Sink::start(SinkMode::Accept);
    let gw = gateway(&sink);
    let mut c = SmtpClient::connect(&gw.addr());
    c.ehlo();
    assert_eq!(c.send_mail("friend@ok.test", &["alice@example.com"], HAM).code, 250);
    assert_eq!(c.send_mail("promo@sender.test", &["bob@example.com"], SPAMMY).code, 250);
    assert_eq!(c.send_mail("promo@sender.test", &["x@strict.test"], SPAMMY).code, 550);
    assert_eq!(c.send_mail("promo@sender.test", &["carol@other.test"], SPAMMY).code, 250);
    sink.wait_for(1, Duration::from_secs(15));

    let mut ops = login(&gw, "ops@provider.test");
    let mut page = String::new();
    let counted = rempart_tests::wait_until(Duration::from_secs(15), || {
        page = ops.get("/reports?days=1").body;
        page.contains("promo@sender.test") && page.contains("2 messages held") && page.contains("<code>delivered</code>")
    });
    assert!(counted, "the operator's report:\n{page}\n{}", gw.log());
    assert!(page.contains("<svg") && page.contains("reject: 1") && page.contains("quarantine: 2"), "{page}");
    assert!(page.contains("MIXED_HREF_CASE"), "{page}");
    // Which weights filter the mail: nothing learned yet, the rules alone.
    assert!(
        page.contains("Filtering with the rules alone until Bayes has learned enough (0 spam, 0 ham learned; Bayes votes from 200)"),
        "{page}"
    );
    // The operator's view: a row per domain, and a picker of the domains.
    let table = page.split("id=\"per-domain\"").nth(1).unwrap_or("");
    for domain in ["example.com", "strict.test", "other.test"] {
        assert!(table.contains(&format!(">{domain}</a>")), "{domain} in the per-domain table:\n{page}");
        assert!(page.contains(&format!("<option value=\"{domain}\">{domain}</option>")), "{domain} in the picker");
    }
    let french = ops.get("/reports?days=1&lang=fr").body;
    assert!(french.contains("Par domaine") && french.contains("refusé: 1"), "{french}");

    let mut admin = login(&gw, "admin@example.com");
    let mine = admin.get("/reports?days=7");
    assert_eq!(mine.status, 200);
    assert!(!mine.body.contains("weights-in-use"), "staff only");
    assert!(mine.body.contains("quarantine: 1") && mine.body.contains("accept: 1"), "{}", mine.body);
    assert!(!mine.body.contains("reject: 1") && !mine.body.contains("promo@sender.test"), "another domain's refusal:\n{}", mine.body);
    assert!(mine.body.contains("1 messages held"), "{}", mine.body);
    for other in ["other.test", "strict.test", "*"] {
        assert_eq!(admin.get(&format!("/reports?scope={other}")).status, 404, "admin of example.com reads {other}");
        assert_eq!(admin.get(&format!("/reports.csv?scope={other}")).status, 404);
    }
    assert_eq!(login(&gw, "alice@example.com").get("/reports").status, 404, "a user reads reports");

    let csv = ops.get("/reports.csv?days=7");
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    assert!(csv.body.starts_with("period,kind,name,count\r\n"), "{}", csv.body);
    assert!(csv.body.contains(",action,reject,1\r\n") && csv.body.contains(",refused_sender,promo@sender.test,1\r\n"), "{}", csv.body);
    let strict = ops.get("/reports.csv?scope=strict.test&days=1");
    assert!(strict.body.contains(":00,action,reject,1\r\n") && !strict.body.contains("quarantine"), "{}", strict.body);
}
