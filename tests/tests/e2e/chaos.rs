//! Chaos in the cluster (issue 30): a 3-node NATS JetStream cluster (queue and state
//! replicated 3 times) under an edge, a scanner, a relay and a console, all loaded by
//! SMTP clients sending without pause; each role and one NATS node are killed with
//! SIGKILL in turn and started again. Nothing answered 250 may be lost; duplicates
//! (at-least-once delivery) are counted and reported.
//!
//! CI runs one round of each (`REMPART_CHAOS_KILLS`, default 5); `scripts/chaos.sh`
//! runs 20.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rempart_tests::nats::NatsCluster;
use rempart_tests::{Gateway, Sink, SinkMode};

fn subject_of(data: &[u8]) -> Option<String> {
    String::from_utf8_lossy(data).lines().find_map(|l| l.strip_prefix("Subject: ").map(str::to_string))
}

/// Sends without pause through `edge` until stopped; gives the subjects answered 250
/// and how many tries were refused or failed.
fn load(edge: String, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(Vec<String>, usize)> {
    std::thread::spawn(move || {
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let failed = Arc::new(Mutex::new(0usize));
        let workers: Vec<_> = (0..4)
            .map(|w| {
                let (edge, stop, accepted, failed) = (edge.clone(), stop.clone(), accepted.clone(), failed.clone());
                std::thread::spawn(move || {
                    let mut i = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let subject = format!("chaos {w}-{i}");
                        i += 1;
                        match rempart_tests::client::try_send(&edge, &subject) {
                            Ok(250) => accepted.lock().unwrap().push(subject),
                            _ => {
                                *failed.lock().unwrap() += 1;
                                std::thread::sleep(Duration::from_millis(50));
                            }
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            let _ = w.join();
        }
        let accepted = accepted.lock().unwrap().clone();
        let failed = *failed.lock().unwrap();
        (accepted, failed)
    })
}

/// The log lines, from every process, of each queue id the edge accepted and the
/// relay never delivered: where a lost message stopped.
fn story_of_undelivered(logs: &[&Gateway]) -> String {
    let queue_id = |line: &str| line.split("\"queue_id\":\"").nth(1).and_then(|rest| rest.split('"').next()).map(str::to_string);
    let lines: Vec<String> = logs.iter().flat_map(|g| g.log().lines().map(str::to_string).collect::<Vec<_>>()).collect();
    let accepted: std::collections::HashSet<String> =
        lines.iter().filter(|l| l.contains("\"message\":\"accepted\"")).filter_map(|l| queue_id(l)).collect();
    let delivered: std::collections::HashSet<String> =
        lines.iter().filter(|l| l.contains("\"result\":\"delivered\"")).filter_map(|l| queue_id(l)).collect();
    let lost: Vec<&String> = accepted.difference(&delivered).collect();
    let mut out = format!("accepted by the edge, never delivered by the relay: {lost:?}\n");
    for line in &lines {
        if queue_id(line).is_some_and(|id| lost.contains(&&id))
            || line.contains("\"level\":\"ERROR\"")
            || line.contains("\"level\":\"WARN\"")
        {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[test]
fn kill_9_of_each_role_and_a_nats_node_in_a_3_node_cluster_loses_nothing() {
    let kills: usize = std::env::var("REMPART_CHAOS_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let mut nats = NatsCluster::start(3);
    let sink = Sink::start(SinkMode::Accept);
    let url = nats.url();
    let shared = format!(
        "[state]\nbackend = \"nats\"\nnats_url = \"{url}\"\nnats_replicas = 3\n[greylist]\nenabled = false\n\
         [bus]\nbackend = \"nats\"\nnats_url = \"{url}\"\nnats_replicas = 3\n"
    );
    // The scanner takes `rempart.scan` under the same short lease as the relay: a
    // message handed to a scanner killed mid-fetch comes back after it.
    let scanner_cfg = format!("[queue]\nvisibility_timeout = \"3s\"\n{shared}[scanner]\nlisten = \"{{listen}}\"\n");
    let mut scanner = Gateway::start_role(&scanner_cfg, "scanner");
    let cfg = format!(
        "[smtp]\nhostname = \"gw.test\"\n[[smtp.listener]]\naddress = \"{{listen}}\"\n[queue]\ndata_dir = \"{{data}}\"\nretry = [\"1s\"]\n\
         visibility_timeout = \"3s\"\n{shared}[scanner]\nendpoints = [\"http://{}\"]\n[[domain]]\nname = \"example.com\"\nroute = \"{}\"\n\
         scanner_fallback = \"queue\"\n",
        scanner.addr(),
        sink.route()
    );
    let mut edge = Gateway::start_role(&cfg, "edge");
    let mut relay = Gateway::start_role(&cfg, "relay");
    let mut console = Gateway::start_role(&cfg, "console serve");
    let stop = Arc::new(AtomicBool::new(false));
    let sender = load(edge.addr(), stop.clone());
    let started = Instant::now();
    for kill in 0..kills {
        std::thread::sleep(Duration::from_millis(800));
        let victim = match kill % 5 {
            0 => &mut relay,
            1 => &mut edge,
            2 => &mut scanner,
            3 => &mut console,
            _ => {
                nats.kill9_and_restart(kill % 3, Duration::from_millis(500));
                continue;
            }
        };
        victim.kill9();
        std::thread::sleep(Duration::from_millis(300));
        victim.restart();
    }
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let (accepted, refused) = sender.join().unwrap();
    let loaded_for = started.elapsed();
    assert!(accepted.len() > 20, "too little load to mean anything: {}\n{}", accepted.len(), edge.log());
    let deadline = Instant::now() + Duration::from_secs(90);
    let copies = || {
        let mut out: HashMap<String, usize> = HashMap::new();
        for m in sink.messages() {
            *out.entry(subject_of(&m.data).unwrap_or_default()).or_default() += 1;
        }
        out
    };
    let mut missing: Vec<String>;
    loop {
        let got = copies();
        missing = accepted.iter().filter(|s| !got.contains_key(*s)).cloned().collect();
        if missing.is_empty() || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let duplicates: usize = copies().values().map(|n| n - 1).sum();
    eprintln!(
        "chaos: {kills} kills in {loaded_for:?}; {} accepted, {refused} tries refused or cut, {} missing, {duplicates} duplicates",
        accepted.len(),
        missing.len()
    );
    assert!(
        missing.is_empty(),
        "answered 250 but never delivered: {missing:?}\n{}\n{}",
        rempart_tests::nats::jetstream_state(&url),
        story_of_undelivered(&[&edge, &scanner, &relay])
    );
    assert!(!relay.log().contains("panicked") && !edge.log().contains("panicked"));
}
