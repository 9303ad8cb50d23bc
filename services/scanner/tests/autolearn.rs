//! Learning on its own, safely: which verdicts teach (far from the thresholds, header
//! and body agreeing, ham only from an authenticated sender) and the cap per sender: a
//! burst of 500 copies from one sender moves the model by at most the cap.

use std::sync::Arc;

use rempart_classifier::bayes::Class;
use rempart_model::{Action, Config, SymbolHit, Verdict};
use rempart_scanner::Scanner;
use rempart_state::{EmbeddedStore, SharedState};

fn hit(name: &str, group: &str, score: f64) -> SymbolHit {
    SymbolHit { name: name.into(), score, group: group.into(), description: String::new(), description_fr: String::new(), detail: None }
}

fn verdict(symbols: Vec<SymbolHit>) -> Verdict {
    Verdict {
        score: symbols.iter().map(|s| s.score).sum(),
        action: Action::Accept,
        symbols,
        listed: None,
        scanner_id: "t".into(),
        elapsed_us: 0,
        offline: false,
        edits: Default::default(),
        refusal: None,
        malware: None,
    }
}

fn scanner(dir: &std::path::Path) -> (Scanner, Arc<SharedState>) {
    let config = Config { dns: rempart_model::config::DnsConfig { offline: true, ..Default::default() }, ..Default::default() };
    let store = Arc::new(EmbeddedStore::open(&dir.join("state.redb"), false).expect("store"));
    let state = Arc::new(SharedState::on(store, &config).expect("state"));
    (Scanner::new(&config).expect("scanner").with_state(state.clone()), state)
}

#[test]
fn only_clear_verdicts_teach_and_ham_needs_an_authenticated_sender() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (scanner, _) = scanner(dir.path());
    let spam = verdict(vec![
        hit("RCVD_IN_X", "dnsbl", 5.0),
        hit("URIBL_X", "links", 5.0),
        hit("MISSING_DATE", "headers", 2.0),
        hit("HTML_X", "html", 1.0),
    ]);
    assert_eq!(scanner.autolearn_class(&spam), Some(Class::Spam));
    let body_only = verdict(vec![hit("URIBL_X", "links", 9.0), hit("HTML_X", "html", 4.0), hit("MISSING_DATE", "headers", 1.0)]);
    assert_eq!(scanner.autolearn_class(&body_only), None, "header and body must agree");
    let bayes_made = verdict(vec![hit("BAYES_99", "bayes", 9.0), hit("RCVD_IN_X", "dnsbl", 3.0), hit("HTML_X", "html", 3.0)]);
    assert_eq!(scanner.autolearn_class(&bayes_made), None, "Bayes does not vote on what it learns");
    let ham = verdict(vec![hit("SPF_PASS", "auth", -0.1), hit("DKIM_VALID", "auth", -0.1)]);
    assert_eq!(scanner.autolearn_class(&ham), Some(Class::Ham));
    let forged = verdict(vec![hit("SPF_FAIL", "auth", 0.9), hit("DKIM_VALID", "auth", -1.0)]);
    assert_eq!(scanner.autolearn_class(&forged), None, "never ham from mail whose authentication failed");
    assert_eq!(scanner.autolearn_class(&verdict(vec![])), None, "nothing proved: not learned as ham");
    let mut listed = ham.clone();
    listed.listed = Some("allow list: x".into());
    assert_eq!(scanner.autolearn_class(&listed), None);
}

#[test]
fn a_burst_from_one_sender_moves_the_model_by_at_most_the_cap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (scanner, state) = scanner(dir.path());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let learned = runtime.block_on(async {
        let mut learned = 0;
        for i in 0..500 {
            let message = format!(
                "From: a@campaign.example\r\nTo: b@example.com\r\nSubject: Win {i}\r\nMessage-ID: <{i}@campaign.example>\r\n\r\nCheap offer number {i}, click now to win a prize today.\r\n"
            );
            learned += usize::from(scanner.autolearn("bulk@campaign.example", message.as_bytes(), Class::Spam).await);
        }
        // Another sender still has its own allowance.
        let other = "From: x@other.example\r\nTo: b@example.com\r\nSubject: Hi\r\nMessage-ID: <1@other.example>\r\n\r\nHello there, a different campaign.\r\n";
        learned += usize::from(scanner.autolearn("x@other.example", other.as_bytes(), Class::Spam).await);
        learned
    });
    let stats = runtime.block_on(state.bayes.as_ref().expect("bayes").stats()).expect("stats");
    assert_eq!((learned, stats.spam_messages), (21, 21), "the cap (20) for the burst, one for the other sender");
}
