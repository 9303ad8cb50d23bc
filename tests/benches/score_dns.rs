//! `score` with every DNS-based check on (SPF MAIL FROM and HELO, DKIM, ARC, DMARC,
//! PTR, FCrDNS, NO_DNS_FOR_FROM, a DNSBL and a URIBL), answered by the test DNS server
//! on loopback. Reports the scanning thread's own CPU time per message (the DNS
//! server runs on another thread and is not counted), ham and spam, single-threaded.
//! Prints numbers; asserts nothing.
//!
//!     cargo bench -p rempart-tests --bench score_dns [-- LIMIT]

use std::path::Path;
use std::time::{Duration, Instant};

use rempart_model::{Config, SessionFacts};
use rempart_scanner::{ScanInput, Scanner};
use rempart_tests::dns::{DnsServer, Rr, Zone};

/// This thread's user+system CPU time (Linux, 100 ticks per second).
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks: u64 = fields.get(11).and_then(|u| u.parse().ok()).unwrap_or(0) + fields.get(12).and_then(|s| s.parse().ok()).unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn main() {
    let limit: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(500);
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/train");
    if !corpus.exists() {
        println!("skipped: {} not found", corpus.display());
        return;
    }
    let mut zone = Zone::new();
    zone.add("10.2.0.192.in-addr.arpa", Rr::Ptr("mail.sender.test".into()))
        .add("mail.sender.test", Rr::A("192.0.2.10".parse().unwrap()))
        .add("mail.sender.test", Rr::txt("v=spf1 a -all"))
        .add("sender.test", Rr::txt("v=spf1 ip4:192.0.2.0/24 -all"))
        .add("sender.test", Rr::Mx(10, "mail.sender.test".into()))
        .add("_dmarc.sender.test", Rr::txt("v=DMARC1; p=none"));
    let server = DnsServer::start(zone);
    let config: Config = toml::from_str(&format!(
        "[dns]\nservers = [\"{}\"]\n[[scanner.dnsbl]]\nzone = \"bl.test\"\nsymbol = \"RCVD_IN_TEST\"\nweight = 2.0\ndescription = \"test\"\n[[scanner.uribl]]\nzone = \"uribl.test\"\nsymbol = \"URIBL_TEST\"\nweight = 2.0\ndescription = \"test\"\n",
        server.addr
    ))
    .expect("config");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let _entered = runtime.enter();
    let scanner = Scanner::new(&config).expect("scanner");
    let facts = SessionFacts { peer_ip: "192.0.2.10".parse().unwrap(), helo: "mail.sender.test".into(), tls: None };
    let rcpt = vec!["user@example.com".to_string()];
    println!("{:<5} {:>6} {:>9} {:>12} {:>10} {:>12}", "set", "msgs", "avg KiB", "CPU µs/msg", "10KB µs", "wall µs/msg");
    for set in ["ham", "spam"] {
        let mut files: Vec<_> = std::fs::read_dir(corpus.join(set)).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
        files.sort();
        let messages: Vec<Vec<u8>> = files.into_iter().take(limit).filter_map(|p| std::fs::read(p).ok()).collect();
        let bytes: usize = messages.iter().map(Vec::len).sum();
        // Warm the resolver's cache as a running gateway's would be, then measure.
        for m in messages.iter().take(20) {
            runtime.block_on(scanner.scan(&ScanInput { facts: &facts, return_path: "a@sender.test", recipients: &rcpt, message: m }));
        }
        let (wall, cpu) = (Instant::now(), thread_cpu());
        for m in &messages {
            runtime.block_on(scanner.scan(&ScanInput { facts: &facts, return_path: "a@sender.test", recipients: &rcpt, message: m }));
        }
        let (wall, cpu) = (wall.elapsed(), thread_cpu() - cpu);
        let n = messages.len().max(1) as f64;
        let cpu_per = cpu.as_secs_f64() * 1e6 / n;
        let avg = bytes as f64 / n;
        println!(
            "{set:<5} {:>6} {:>9.1} {:>12.1} {:>10.1} {:>12.1}",
            messages.len(),
            avg / 1024.0,
            cpu_per,
            cpu_per * 10_240.0 / avg,
            wall.as_secs_f64() * 1e6 / n
        );
    }
}
