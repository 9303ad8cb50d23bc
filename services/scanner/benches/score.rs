//! Scoring speed on the shared corpus, single-threaded: messages/s and CPU time per
//! message for ham and spam, and the action mix with the default policy (DNS-based
//! checks are not built yet, so none are included). Prints numbers; asserts nothing.
//!
//!     cargo bench -p rempart-scanner --bench score [-- LIMIT]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rempart_model::{Action, Config, SessionFacts};
use rempart_scanner::{ScanInput, Scanner};

fn cpu_time() -> Duration {
    // CLOCK_THREAD_CPUTIME_ID from /proc is not portable; the process's user+system
    // time from /proc/self/stat is (Linux, 100 ticks/s): fine for seconds-long runs.
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks: u64 = fields.get(11).and_then(|u| u.parse().ok()).unwrap_or(0) + fields.get(12).and_then(|s| s.parse().ok()).unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn load(dir: &Path, limit: usize) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    files.sort();
    files.into_iter().take(limit).filter_map(|p| std::fs::read(p).ok()).collect()
}

fn main() {
    let limit: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(usize::MAX);
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/train");
    if !corpus.exists() {
        println!("skipped: {} not found", corpus.display());
        return;
    }
    let scanner =
        Scanner::new(&Config { dns: rempart_model::config::DnsConfig { offline: true, ..Default::default() }, ..Default::default() })
            .expect("default config");
    let facts = SessionFacts { peer_ip: "192.0.2.1".into(), helo: "mail.sender.example".into(), tls: None };
    let rcpt = vec!["user@example.com".to_string()];
    println!("{:<5} {:>6} {:>9} {:>10} {:>12} {:>9}  actions", "set", "msgs", "avg KiB", "msgs/s", "CPU µs/msg", "10KB µs");
    for set in ["ham", "spam"] {
        let messages = load(&corpus.join(set), limit);
        let bytes: usize = messages.iter().map(Vec::len).sum();
        // Warm up caches, then measure three passes.
        for m in messages.iter().take(100) {
            scanner
                .evaluate(&ScanInput { facts: &facts, return_path: "a@sender.example", recipients: &rcpt, message: m }, Default::default());
        }
        let mut actions = std::collections::BTreeMap::<Action, usize>::new();
        let (wall, cpu) = (Instant::now(), cpu_time());
        let passes = 3;
        for pass in 0..passes {
            for m in &messages {
                let v = scanner.evaluate(
                    &ScanInput { facts: &facts, return_path: "a@sender.example", recipients: &rcpt, message: m },
                    Default::default(),
                );
                if pass == 0 {
                    *actions.entry(v.action).or_default() += 1;
                }
            }
        }
        let (wall, cpu) = (wall.elapsed(), cpu_time() - cpu);
        let n = (messages.len() * passes) as f64;
        let cpu_per = cpu.as_secs_f64() * 1e6 / n;
        // CPU per message scaled to 10 KB, for the "< 2 ms for 10 KB" bar.
        let per_10kb = cpu_per * 10_240.0 / (bytes as f64 / messages.len().max(1) as f64);
        let mix: Vec<String> = actions.iter().map(|(a, c)| format!("{a}={c}")).collect();
        println!(
            "{set:<5} {:>6} {:>9.1} {:>10.0} {:>12.1} {:>9.1}  {}",
            messages.len(),
            bytes as f64 / messages.len().max(1) as f64 / 1024.0,
            n / wall.as_secs_f64(),
            cpu_per,
            per_10kb,
            mix.join(" ")
        );
    }
}
