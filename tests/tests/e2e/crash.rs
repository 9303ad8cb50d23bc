//! No loss: every message answered 250 is delivered, even when the gateway is killed
//! with SIGKILL at random moments while clients are sending.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rempart_tests::client::try_send;
use rempart_tests::{Gateway, Sink, SinkMode};

fn subject_of(data: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(data);
    text.lines().find_map(|l| l.strip_prefix("Subject: ").map(str::to_string))
}

#[test]
fn kill_9_during_sustained_sending_loses_nothing() {
    const SENDERS: usize = 4;
    const KILLS: usize = 8;
    let sink = Sink::start(SinkMode::Accept);
    let mut gw = Gateway::start(&format!(
        "[smtp]\nhostname = \"gw.test\"\n[[smtp.listener]]\naddress = \"{{listen}}\"\n[queue]\ndata_dir = \"{{data}}\"\nretry = [\"200ms\"]\n[[domain]]\nname = \"example.com\"\nroute = \"{}\"\n",
        sink.route()
    ));
    let addr = gw.addr();
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let failures = Arc::new(Mutex::new(0usize));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs(120);
    let senders: Vec<_> = (0..SENDERS)
        .map(|s| {
            let (addr, accepted, failures, stop) = (addr.clone(), accepted.clone(), failures.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut i = 0;
                // Keep sending until the last kill is over, then finish the message in hand.
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let subject = format!("crash-{s}-{i}");
                    i += 1;
                    // Like a real MTA: no 250, try again later.
                    while Instant::now() < deadline {
                        match try_send(&addr, &subject) {
                            Ok(_) => {
                                accepted.lock().unwrap().push(subject.clone());
                                break;
                            }
                            Err(_) => {
                                *failures.lock().unwrap() += 1;
                                std::thread::sleep(Duration::from_millis(50));
                            }
                        }
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        })
        .collect();
    for _ in 0..KILLS {
        let jitter = u64::from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() % 400);
        std::thread::sleep(Duration::from_millis(150 + jitter));
        gw.restart();
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for s in senders {
        s.join().unwrap();
    }
    let accepted = accepted.lock().unwrap().clone();
    let failed_attempts = *failures.lock().unwrap();
    assert!(failed_attempts > 0, "no kill hit a session in flight: the test proved nothing");
    let all_arrived = rempart_tests::wait_until(Duration::from_secs(60), || {
        let got: std::collections::HashSet<_> = sink.messages().iter().filter_map(|m| subject_of(&m.data)).collect();
        accepted.iter().all(|s| got.contains(s))
    });
    let mut counts: HashMap<String, usize> = HashMap::new();
    for m in sink.messages() {
        *counts.entry(subject_of(&m.data).unwrap_or_default()).or_default() += 1;
    }
    let lost: Vec<_> = accepted.iter().filter(|s| !counts.contains_key(*s)).collect();
    let duplicates: usize = counts.values().map(|n| n - 1).sum();
    eprintln!(
        "crash test: {} accepted with 250, {} delivered, {} lost, {} duplicates, {KILLS} kills, {failed_attempts} failed attempts retried by clients",
        accepted.len(),
        counts.len(),
        lost.len(),
        duplicates,
    );
    assert!(all_arrived && lost.is_empty(), "lost after 250: {lost:?}\n{}", gw.log());
}
