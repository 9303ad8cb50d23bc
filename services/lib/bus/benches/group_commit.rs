//! How much group commit buys: durable publishes per second as concurrent publishers
//! grow, with fsync on and off. Prints numbers and ratios to one fsynced publisher
//! measured in the same run; asserts nothing.
//!
//!     cargo bench -p rempart-bus --bench group_commit [-- MESSAGES]

use std::time::{Duration, Instant};

use rempart_bus::{Bus, EmbeddedBus, EmbeddedOptions};

const BODY_SIZE: usize = 10 * 1024;

async fn run(fsync: bool, publishers: usize, messages: usize) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let bus = EmbeddedBus::open(&dir.path().join("q.redb"), EmbeddedOptions { fsync }).expect("open queue");
    let per_task = messages / publishers;
    let started = Instant::now();
    let tasks: Vec<_> = (0..publishers)
        .map(|_| {
            let bus = bus.clone();
            tokio::spawn(async move {
                for _ in 0..per_task {
                    bus.publish("bench", vec![0; 300], vec![b'x'; BODY_SIZE]).await.expect("publish");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("publisher");
    }
    (per_task * publishers) as f64 / started.elapsed().max(Duration::from_micros(1)).as_secs_f64()
}

fn main() {
    let messages: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(2000);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let baseline = runtime.block_on(run(true, 1, messages / 4));
    println!("durable publishes of {BODY_SIZE}-byte bodies; baseline = 1 publisher with fsync = {baseline:.0}/s");
    println!("{:>6} {:>10} {:>12} {:>10}", "fsync", "publishers", "publishes/s", "x baseline");
    for fsync in [true, false] {
        for publishers in [1, 4, 16, 64] {
            let n = if publishers == 1 && fsync { messages / 4 } else { messages };
            let rate = runtime.block_on(run(fsync, publishers, n));
            println!("{fsync:>6} {publishers:>10} {rate:>12.0} {:>10.2}", rate / baseline);
        }
    }
}
