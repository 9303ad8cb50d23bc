//! What the memory of campaigns costs, on the shared corpus, single-threaded: the
//! fingerprint per message, the lookup per message on an embedded store holding the
//! reported spam, the store's size per reported message, and the whole offline scoring
//! per message in the same run for comparison. Then the recall: the share of held-out
//! spam and ham that hit once the training spam was reported. Prints numbers; asserts
//! nothing.
//!
//!     cargo bench -p rempart-scanner --bench fuzzy

use std::path::{Path, PathBuf};
use std::time::Instant;

use rempart_classifier::bayes::Class;
use rempart_classifier::fuzzy::fingerprint;
use rempart_model::{Config, SessionFacts};
use rempart_scanner::message::Analysis;
use rempart_scanner::{ScanInput, Scanner};
use rempart_state::EmbeddedStore;
use rempart_state::fuzzy::{Recall, recall, remember};

fn load(dir: &Path) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    files.sort();
    files.into_iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

fn main() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/train");
    if !corpus.exists() {
        println!("skipped: {} not found", corpus.display());
        return;
    }
    let (ham, spam) = (load(&corpus.join("ham")), load(&corpus.join("spam")));
    let split = |all: &[Vec<u8>]| -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let (mut train, mut test) = (Vec::new(), Vec::new());
        for (i, m) in all.iter().enumerate() {
            if i % 5 == 4 { test.push(m.clone()) } else { train.push(m.clone()) }
        }
        (train, test)
    };
    let ((_, ham_test), (spam_train, spam_test)) = (split(&ham), split(&spam));
    let all: Vec<&Vec<u8>> = ham.iter().chain(&spam).collect();

    let started = Instant::now();
    for m in &all {
        std::hint::black_box(Analysis::new(m).plain_text.len());
    }
    let parse_us = started.elapsed().as_secs_f64() * 1e6 / all.len() as f64;
    let started = Instant::now();
    let prints: Vec<_> = all.iter().map(|m| fingerprint(&Analysis::new(m))).collect();
    let fingerprint_us = started.elapsed().as_secs_f64() * 1e6 / all.len() as f64;

    let config = Config { dns: rempart_model::config::DnsConfig { offline: true, ..Default::default() }, ..Default::default() };
    let scanner = Scanner::new(&config).expect("scanner");
    let facts = SessionFacts { peer_ip: "192.0.2.1".parse().expect("ip"), helo: "mail.sender.example".into(), tls: None };
    let rcpt = vec!["user@example.com".to_string()];
    let started = Instant::now();
    for m in &all {
        let _ = scanner.evaluate_offline(&ScanInput { facts: &facts, return_path: "a@sender.example", recipients: &rcpt, message: m });
    }
    let scoring_us = started.elapsed().as_secs_f64() * 1e6 / all.len() as f64;

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.redb");
    let store = EmbeddedStore::open(&path, true).expect("store");
    let size_before = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let reported: Vec<_> = spam_train.iter().map(|m| fingerprint(&Analysis::new(m))).collect();
    let started = Instant::now();
    runtime.block_on(async {
        for fp in &reported {
            remember(&store, fp, Class::Spam).await.expect("remember");
        }
    });
    let remember_us = started.elapsed().as_secs_f64() * 1e6 / reported.len() as f64;
    let size_after = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let keys = reported.iter().map(|f| f.shingles.len() + f.attachments.len()).sum::<usize>();

    let started = Instant::now();
    let hits = runtime.block_on(async {
        let mut hits = Vec::new();
        for fp in &prints {
            hits.push(matches!(recall(&store, fp).await.expect("recall"), Some(Recall::Spam { .. })));
        }
        hits
    });
    let recall_us = started.elapsed().as_secs_f64() * 1e6 / prints.len() as f64;
    let rate = |msgs: &[Vec<u8>]| {
        let n = msgs
            .iter()
            .filter(|m| {
                runtime
                    .block_on(recall(&store, &fingerprint(&Analysis::new(m))))
                    .ok()
                    .flatten()
                    .is_some_and(|r| matches!(r, Recall::Spam { .. }))
            })
            .count();
        n as f64 * 100.0 / msgs.len().max(1) as f64
    };
    let _ = hits;
    println!("{} messages; {} training spam reported ({keys} keys)", all.len(), reported.len());
    println!("fingerprint        {fingerprint_us:8.1} µs/message, of which the MIME parse {parse_us:.1} (shared with the URI lists' pass)");
    println!("lookup (get_many)  {recall_us:8.1} µs/message (embedded store)");
    println!("remember           {remember_us:8.1} µs/report (fsync per key)");
    println!(
        "offline scoring    {scoring_us:8.1} µs/message (same run): fuzzy adds {:.0} %",
        (fingerprint_us + recall_us) * 100.0 / scoring_us
    );
    println!(
        "store size         {:.0} bytes/report (redb file {} → {} bytes; {:.1} keys/report)",
        (size_after.saturating_sub(size_before)) as f64 / reported.len() as f64,
        size_before,
        size_after,
        keys as f64 / reported.len() as f64
    );
    println!("held-out spam hitting a reported message: {:.1} %; held-out ham: {:.2} %", rate(&spam_test), rate(&ham_test));
}
