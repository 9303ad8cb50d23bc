//! Scoring speed and accuracy on the shared corpus, single-threaded, DNS offline.
//! The corpus is split 80/20 by file order (every fifth message held out); Bayes is
//! trained on the 80 % in a temporary embedded store, then the held-out 20 % is scored
//! with Bayes off and on: messages/s, CPU per message, and false-positive /
//! false-negative rates for Bayes alone (p >= 0.5) and for the full score at the
//! scores 4 (where 1 % of the training ham scores) and 6 (the default policy's first
//! action, greylist: at most 0.1 %). Prints numbers; asserts nothing.
//!
//!     cargo bench -p rempart-scanner --bench score [-- LIMIT]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rempart_model::{Config, SessionFacts, Verdict};
use rempart_scanner::message::Analysis;
use rempart_scanner::{ScanInput, Scanner, tokens};
use rempart_state::bayes::Class;
use rempart_state::{EmbeddedStore, SharedState};

fn cpu_time() -> Duration {
    // The process's user+system time from /proc/self/stat (Linux, 100 ticks/s): fine
    // for seconds-long runs.
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks: u64 = fields.get(11).and_then(|u| u.parse().ok()).unwrap_or(0) + fields.get(12).and_then(|s| s.parse().ok()).unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// (training, held out) messages of one class.
fn load(dir: &Path, limit: usize) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    files.sort();
    let all: Vec<Vec<u8>> = files.into_iter().take(limit).filter_map(|p| std::fs::read(p).ok()).collect();
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (i, m) in all.into_iter().enumerate() {
        if i % 5 == 4 { test.push(m) } else { train.push(m) }
    }
    (train, test)
}

fn bayes_probability(v: &Verdict) -> Option<f64> {
    let hit = v.symbols.iter().find(|s| s.name.starts_with("BAYES_") && s.name != "BAYES_999")?;
    let detail = hit.detail.as_deref()?;
    detail.split("spam probability ").nth(1)?.split(',').next()?.trim().parse().ok()
}

fn main() {
    let limit: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(usize::MAX);
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/train");
    if !corpus.exists() {
        println!("skipped: {} not found", corpus.display());
        return;
    }
    let config = Config { dns: rempart_model::config::DnsConfig { offline: true, ..Default::default() }, ..Default::default() };
    let (ham_train, ham_test) = load(&corpus.join("ham"), limit);
    let (spam_train, spam_test) = load(&corpus.join("spam"), limit);

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(EmbeddedStore::open(&dir.path().join("state.redb"), false).expect("store"));
    let state = Arc::new(SharedState::on(store, &config).expect("state"));
    let bayes = state.bayes.clone().expect("bayes on by default");
    let started = Instant::now();
    runtime.block_on(async {
        for (messages, class) in [(&ham_train, Class::Ham), (&spam_train, Class::Spam)] {
            for m in messages {
                let analysis = Analysis::new(m);
                let (id, toks) = (tokens::message_identity(m, &analysis), tokens::tokens(&analysis));
                bayes.learn(id, class, &toks).await.expect("learn");
            }
        }
    });
    let learned = started.elapsed();
    let started = Instant::now();
    runtime.block_on(bayes.reload_if_changed()).expect("reload");
    println!(
        "trained on {} ham + {} spam in {:.1} s; model of {} tokens loaded in {} ms",
        ham_train.len(),
        spam_train.len(),
        learned.as_secs_f64(),
        bayes.model().tokens.len(),
        started.elapsed().as_millis()
    );

    let plain = Scanner::new(&config).expect("default config");
    let with_bayes = Scanner::new(&config).expect("default config").with_state(state);
    let facts = SessionFacts { peer_ip: "192.0.2.1".parse().unwrap(), helo: "mail.sender.example".into(), tls: None };
    let rcpt = vec!["user@example.com".to_string()];
    println!("{:<6} {:<5} {:>6} {:>9} {:>10} {:>12}", "bayes", "set", "msgs", "avg KiB", "msgs/s", "CPU µs/msg");
    for (label, scanner) in [("off", &plain), ("on", &with_bayes)] {
        let mut verdicts = Vec::new();
        for (set, messages) in [("ham", &ham_test), ("spam", &spam_test)] {
            let bytes: usize = messages.iter().map(Vec::len).sum();
            let scan = |m: &Vec<u8>| {
                scanner.evaluate(
                    &ScanInput { facts: &facts, return_path: "a@sender.example", recipients: &rcpt, message: m },
                    Default::default(),
                )
            };
            messages.iter().take(50).for_each(|m| drop(scan(m)));
            let (wall, cpu) = (Instant::now(), cpu_time());
            let passes = 3;
            let mut these = Vec::new();
            for pass in 0..passes {
                for m in messages.iter() {
                    let v = scan(m);
                    if pass == 0 {
                        these.push(v);
                    }
                }
            }
            let (wall, cpu) = (wall.elapsed(), cpu_time() - cpu);
            let n = (messages.len() * passes) as f64;
            println!(
                "{label:<6} {set:<5} {:>6} {:>9.1} {:>10.0} {:>12.1}",
                messages.len(),
                bytes as f64 / messages.len().max(1) as f64 / 1024.0,
                n / wall.as_secs_f64(),
                cpu.as_secs_f64() * 1e6 / n
            );
            verdicts.push(these);
        }
        let (ham, spam) = (&verdicts[0], &verdicts[1]);
        let pct = |k: usize, n: usize| 100.0 * k as f64 / n.max(1) as f64;
        if label == "on" {
            let fp = ham.iter().filter(|v| bayes_probability(v).is_some_and(|p| p >= 0.5)).count();
            let fn_ = spam.iter().filter(|v| bayes_probability(v).is_none_or(|p| p < 0.5)).count();
            println!(
                "  Bayes alone (p >= 0.5): FP {fp}/{} = {:.2} %, FN {fn_}/{} = {:.2} %",
                ham.len(),
                pct(fp, ham.len()),
                spam.len(),
                pct(fn_, spam.len())
            );
        }
        for threshold in [4.0, 6.0] {
            let fp = ham.iter().filter(|v| v.score >= threshold).count();
            let fn_ = spam.iter().filter(|v| v.score < threshold).count();
            println!(
                "  full score >= {threshold}: FP {fp}/{} = {:.2} %, FN {fn_}/{} = {:.2} %",
                ham.len(),
                pct(fp, ham.len()),
                spam.len(),
                pct(fn_, spam.len())
            );
        }
    }
}
