//! Scores a person can read, and a gateway that filters before it has learned, on the
//! real mail of `../shared/corpus/train` (skipped with a message when it is absent):
//!
//! - the sign table: for messages scored with the rules alone and with a trained
//!   Bayes, every shown weight has the sign of what its symbol means (a sign of spam
//!   adds, a sign of ham takes away, the Bayes bands by their side of 50 %, the token
//!   regression by its log-odds) and the shown weights sum to the score;
//! - the cold start: a gateway with an empty store (Bayes does not vote, so the
//!   `[weights_without_bayes]` set applies) acts on the corpus's spam at the rates of
//!   issue 35's note, and on almost none of its ham.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rempart_classifier::bayes::Class;
use rempart_model::{Action, Config, SessionFacts, Verdict};
use rempart_scanner::{ScanInput, Scanner, tune};
use rempart_state::{EmbeddedStore, SharedState};

fn corpus() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/train");
    if root.exists() {
        Some(root)
    } else {
        eprintln!("skipped: {} not found (the shared corpus)", root.display());
        None
    }
}

/// The files of `corpus/<class>`, in name order.
fn files(root: &Path, class: &str) -> Vec<Vec<u8>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(root.join(class)).expect("corpus dir").flatten().map(|e| e.path()).collect();
    paths.sort();
    paths.into_iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

fn offline() -> Config {
    Config { dns: rempart_model::config::DnsConfig { offline: true, ..Default::default() }, ..Default::default() }
}

fn state(dir: &Path, config: &Config) -> Arc<SharedState> {
    let store = Arc::new(EmbeddedStore::open(&dir.join("state.redb"), false).expect("store"));
    Arc::new(SharedState::on(store, config).expect("state"))
}

fn scan(scanner: &Scanner, message: &[u8]) -> Verdict {
    let facts = SessionFacts { peer_ip: "192.0.2.1".parse().expect("ip"), helo: String::new(), tls: None };
    let recipients = vec!["user@example.com".to_string()];
    // No return path: the auto-allowlist (a per-sender adjustment) stays out of it.
    scanner.evaluate(&ScanInput { facts: &facts, return_path: "", recipients: &recipients, message }, Default::default())
}

/// The sign table's checks on one verdict; the names of the symbols seen.
#[track_caller]
fn check_signs_and_sum(verdict: &Verdict, seen: &mut std::collections::BTreeSet<String>) {
    let sum: f64 = verdict.symbols.iter().map(|s| s.score).sum();
    assert!((sum - verdict.score).abs() < 1e-6, "the shown weights sum to {sum}, the score is {}: {:?}", verdict.score, verdict.symbols);
    for symbol in &verdict.symbols {
        seen.insert(symbol.name.clone());
        let meaning = match symbol.name.as_str() {
            // The token regression adds what its log-odds say: its sign is theirs.
            "TOKEN_REGRESSION" => {
                let logodds: f64 = symbol
                    .detail
                    .as_deref()
                    .and_then(|d| d.strip_prefix("log-odds "))
                    .and_then(|v| v.parse().ok())
                    .expect("TOKEN_REGRESSION's detail gives its log-odds");
                Some(logodds.signum())
            }
            name => tune::direction(name),
        };
        match meaning {
            Some(sign) => assert!(symbol.score * sign >= 0.0, "{} weighs {} against its meaning ({sign:+})", symbol.name, symbol.score),
            None => assert!(symbol.score == 0.0, "{} is informational but weighs {}", symbol.name, symbol.score),
        }
    }
}

#[test]
fn every_shown_weight_has_its_meanings_sign_and_the_weights_sum_to_the_score() {
    let Some(root) = corpus() else { return };
    let (ham, spam) = (files(&root, "ham"), files(&root, "spam"));
    let config = offline();
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state(dir.path(), &config);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    // Bayes learns 300 of each class (three files in four)…
    let bayes = state.bayes.clone().expect("Bayes is on by default");
    runtime.block_on(async {
        for (class, messages) in [(Class::Ham, &ham), (Class::Spam, &spam)] {
            for message in messages.iter().enumerate().filter(|(i, _)| i % 4 != 0).map(|(_, m)| m).take(300) {
                if let Some((id, tokens)) = rempart_classifier::tokens::learnable(message) {
                    bayes.learn(id, class, &tokens).await.expect("learn");
                }
            }
        }
        bayes.reload_if_changed().await.expect("reload");
    });
    let rules_only = Scanner::new(&config).expect("scanner");
    let trained = Scanner::new(&config).expect("scanner").with_state(state);
    // …and the fourth files are scored, with the rules alone and with Bayes.
    let table: Vec<&Vec<u8>> = ham.iter().chain(&spam).enumerate().filter(|(i, _)| i % 4 == 0).map(|(_, m)| m).take(600).collect();
    let mut seen = std::collections::BTreeSet::new();
    let mut bands = 0;
    for message in table {
        check_signs_and_sum(&scan(&rules_only, message), &mut seen);
        let verdict = scan(&trained, message);
        bands += usize::from(verdict.symbols.iter().any(|s| s.name.starts_with("BAYES_")));
        check_signs_and_sum(&verdict, &mut seen);
    }
    assert!(bands > 500, "Bayes voted on {bands} of 600 messages");
    for expected in ["BAYES_00", "BAYES_99", "TOKEN_REGRESSION", "QUOTED_REPLY", "BODY_CLICK_HERE", "MIME_HTML_ONLY"] {
        assert!(seen.contains(expected), "{expected} never shown: {seen:?}");
    }
    eprintln!("sign table: {} symbols seen on 600 messages, twice", seen.len());
}

#[test]
fn with_an_empty_store_the_rules_alone_act_on_spam_and_spare_ham() {
    let Some(root) = corpus() else { return };
    let config = offline();
    let dir = tempfile::tempdir().expect("tempdir");
    let scanner = Scanner::new(&config).expect("scanner").with_state(state(dir.path(), &config));
    let mut rates = Vec::new();
    for class in ["ham", "spam"] {
        let messages = files(&root, class);
        let verdicts: Vec<Verdict> = messages.iter().map(|m| scan(&scanner, m)).collect();
        assert!(verdicts.iter().all(|v| !v.symbols.iter().any(|s| s.name.starts_with("BAYES_"))), "an empty Bayes does not vote");
        let share = |f: &dyn Fn(Action) -> bool| verdicts.iter().filter(|v| f(v.action)).count() as f64 / verdicts.len() as f64;
        let acted = share(&|a| a != Action::Accept);
        let marked = share(&|a| !matches!(a, Action::Accept | Action::Greylist));
        eprintln!(
            "cold start, {class}: {} messages; acted on {:.2} %, marked or refused {:.2} %",
            messages.len(),
            acted * 100.0,
            marked * 100.0
        );
        rates.push((acted, marked));
    }
    let ((ham_acted, ham_marked), (spam_acted, spam_marked)) = (rates[0], rates[1]);
    // Issue 35's note: the whole training corpus, default policy, DNS offline.
    assert!(ham_acted <= 0.002, "ham acted on: {:.2} %", ham_acted * 100.0);
    assert!(ham_marked <= 0.002, "ham marked or refused: {:.2} %", ham_marked * 100.0);
    assert!(spam_acted >= 0.52, "spam acted on: {:.2} %", spam_acted * 100.0);
    assert!(spam_marked >= 0.45, "spam marked or refused: {:.2} %", spam_marked * 100.0);
}
