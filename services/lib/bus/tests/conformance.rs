//! The same bus semantics on both implementations: the embedded redb queue and NATS
//! JetStream (a real nats-server started here).

#[allow(dead_code)] // shared with the end-to-end tests, which use all of it
#[path = "../../../../tests/src/nats.rs"]
mod nats_server;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use rempart_bus::{AnyBus, Bus, DELIVER_TOPIC, EmbeddedBus, EmbeddedOptions, MAX_INLINE_BODY, NatsBus, NatsOptions};

struct Backend {
    bus: AnyBus,
    /// A second handle on the same bus (another process's view, for NATS).
    other: AnyBus,
    _keep: Box<dyn std::any::Any + Send>,
}

fn embedded() -> Backend {
    let dir = tempfile::tempdir().expect("temp dir");
    let bus = EmbeddedBus::open(&dir.path().join("queue.redb"), EmbeddedOptions::default()).expect("open");
    Backend { bus: AnyBus::Embedded(bus.clone()), other: AnyBus::Embedded(bus), _keep: Box::new(dir) }
}

async fn nats() -> Backend {
    let server = nats_server::NatsServer::start();
    let options = NatsOptions {
        url: server.url(),
        replicas: 1,
        credentials_file: None,
        ca_file: None,
        events_retention: std::time::Duration::from_secs(3600),
    };
    let bus = NatsBus::connect(&options).await.expect("connect");
    let other = NatsBus::connect(&options).await.expect("connect");
    Backend { bus: AnyBus::Nats(bus), other: AnyBus::Nats(other), _keep: Box::new(server) }
}

macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod embedded_bus { $( #[tokio::test(flavor = "multi_thread", worker_threads = 4)] async fn $test() { let b = super::embedded(); super::$test(&b).await; } )* }
        mod nats_bus { $( #[tokio::test(flavor = "multi_thread", worker_threads = 4)] async fn $test() { let b = super::nats().await; super::$test(&b).await; } )* }
    };
}

conformance!(
    publish_fetch_ack,
    retry_replaces_metadata_after_the_delay,
    an_expired_lease_is_delivered_again,
    big_bodies,
    consumers_share_the_work,
    events_reach_one_subscriber_of_a_group,
    queue_management_lists_and_takes_what_no_worker_holds
);

const LEASE: Duration = Duration::from_secs(30);
const WAIT: Duration = Duration::from_millis(500);

async fn publish_fetch_ack(b: &Backend) {
    let id = b.bus.publish(DELIVER_TOPIC, b"meta".to_vec(), b"body".to_vec()).await.unwrap();
    assert_eq!(b.bus.pending(DELIVER_TOPIC).await.unwrap(), 1);
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let oldest = b.bus.oldest_published_ms(DELIVER_TOPIC).await.unwrap().expect("a message waits");
    assert!(oldest.abs_diff(now_ms) < 60_000, "published about now: {oldest} vs {now_ms}");
    assert_eq!(b.bus.oldest_published_ms(rempart_bus::SCAN_TOPIC).await.unwrap(), None, "per topic");
    let got = b.bus.fetch(DELIVER_TOPIC, 10, LEASE, WAIT).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].id, got[0].meta.as_slice(), got[0].body.as_slice(), got[0].deliveries), (id, &b"meta"[..], &b"body"[..], 1));
    assert!(b.bus.fetch(DELIVER_TOPIC, 10, LEASE, WAIT).await.unwrap().is_empty(), "leased: not handed out twice");
    assert!(b.bus.oldest_published_ms(DELIVER_TOPIC).await.unwrap().is_some(), "leased still waits");
    b.bus.ack(id).await.unwrap();
    assert_eq!(b.bus.pending(DELIVER_TOPIC).await.unwrap(), 0);
    assert_eq!(b.bus.oldest_published_ms(DELIVER_TOPIC).await.unwrap(), None);
    assert!(b.bus.fetch(DELIVER_TOPIC, 10, LEASE, WAIT).await.unwrap().is_empty());
}

async fn retry_replaces_metadata_after_the_delay(b: &Backend) {
    let id = b.bus.publish(DELIVER_TOPIC, b"v1".to_vec(), b"body".to_vec()).await.unwrap();
    let got = b.bus.fetch(DELIVER_TOPIC, 1, LEASE, WAIT).await.unwrap();
    b.bus.retry(got[0].id, b"v2".to_vec(), Duration::from_secs(2)).await.unwrap();
    let early = Instant::now();
    assert!(b.bus.fetch(DELIVER_TOPIC, 1, LEASE, Duration::from_millis(800)).await.unwrap().is_empty(), "not before the delay");
    let mut again = Vec::new();
    while again.is_empty() && early.elapsed() < Duration::from_secs(10) {
        again = b.bus.fetch(DELIVER_TOPIC, 1, LEASE, WAIT).await.unwrap();
    }
    assert_eq!(again.len(), 1, "visible again after the delay");
    assert_eq!((again[0].id, again[0].meta.as_slice(), again[0].body.as_slice()), (id, &b"v2"[..], &b"body"[..]));
    assert!(again[0].deliveries >= 2);
    b.bus.ack(id).await.unwrap();
}

async fn an_expired_lease_is_delivered_again(b: &Backend) {
    let lease = Duration::from_secs(2);
    let id = b.bus.publish(DELIVER_TOPIC, b"m".to_vec(), b"b".to_vec()).await.unwrap();
    let first = b.bus.fetch(DELIVER_TOPIC, 1, lease, WAIT).await.unwrap();
    assert_eq!(first.len(), 1);
    // The consumer "dies": never acks. Another one gets it after the lease.
    let started = Instant::now();
    let mut again = Vec::new();
    while again.is_empty() && started.elapsed() < Duration::from_secs(15) {
        again = b.other.fetch(DELIVER_TOPIC, 1, lease, WAIT).await.unwrap();
    }
    assert_eq!(again.len(), 1, "redelivered after the lease");
    assert_eq!((again[0].id, again[0].deliveries), (id, 2));
    b.other.ack(id).await.unwrap();
}

async fn big_bodies(b: &Backend) {
    let body: Vec<u8> = (0..MAX_INLINE_BODY * 3).map(|i| (i % 251) as u8).collect();
    let id = b.bus.publish(DELIVER_TOPIC, b"big".to_vec(), body.clone()).await.unwrap();
    let got = b.bus.fetch(DELIVER_TOPIC, 1, LEASE, WAIT).await.unwrap();
    assert_eq!(got[0].body.len(), body.len());
    assert!(got[0].body == body, "the body comes back intact");
    b.bus.ack(id).await.unwrap();
}

async fn consumers_share_the_work(b: &Backend) {
    let mut published = HashSet::new();
    for i in 0..60u32 {
        published.insert(b.bus.publish(DELIVER_TOPIC, i.to_be_bytes().to_vec(), vec![]).await.unwrap());
    }
    let (x, y) = (b.bus.clone(), b.other.clone());
    let take = |bus: AnyBus| {
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = bus.fetch(DELIVER_TOPIC, 5, LEASE, WAIT).await.unwrap();
                if got.is_empty() {
                    return mine;
                }
                for d in got {
                    bus.ack(d.id).await.unwrap();
                    mine.push(d.id);
                }
            }
        })
    };
    let (a, c) = (take(x), take(y));
    let (a, c) = (a.await.unwrap(), c.await.unwrap());
    let all: Vec<u64> = a.iter().chain(&c).copied().collect();
    let unique: HashSet<u64> = all.iter().copied().collect();
    assert_eq!(all.len(), unique.len(), "no message handed to both");
    assert_eq!(unique, published, "every message handed out");
}

/// Every event reaches a subscriber of the group, and only one of them (for NATS, the
/// two subscribers are two connections: two console processes).
async fn events_reach_one_subscriber_of_a_group(b: &Backend) {
    let mut first = b.bus.subscribe_events("reports").await.unwrap();
    let second = match &b.bus {
        AnyBus::Nats(_) => Some(b.other.subscribe_events("reports").await.unwrap()),
        AnyBus::Embedded(_) => None,
    };
    // NATS subscriptions become active asynchronously: let them settle.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in 0..20u8 {
        b.other.event(rempart_bus::VERDICT_EVENTS, vec![i]).await;
    }
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut second = second;
    while got.len() < 20 && Instant::now() < deadline {
        tokio::select! {
            Some(e) = first.recv() => got.push(e),
            Some(e) = async { match second.as_mut() { Some(s) => s.recv().await, None => std::future::pending().await } } => got.push(e),
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    while let Ok(e) = first.try_recv() {
        got.push(e);
    }
    if let Some(s) = second.as_mut() {
        while let Ok(e) = s.try_recv() {
            got.push(e);
        }
    }
    assert_eq!(got.len(), 20, "each event once");
    assert!(got.iter().all(|e| e.subject == rempart_bus::VERDICT_EVENTS));
    let mut payloads: Vec<u8> = got.iter().map(|e| e.payload[0]).collect();
    payloads.sort();
    assert_eq!(payloads, (0..20).collect::<Vec<u8>>());
}

/// Queue management: `list` shows every message of a topic (deferred ones marked, the
/// metadata as last retried), `take` removes one no worker holds, refuses a leased one,
/// and finds nothing the second time.
async fn queue_management_lists_and_takes_what_no_worker_holds(b: &Backend) {
    let waiting = b.bus.publish(DELIVER_TOPIC, b"waiting".to_vec(), b"w".to_vec()).await.unwrap();
    let deferred = b.bus.publish(DELIVER_TOPIC, b"v1".to_vec(), b"d".to_vec()).await.unwrap();
    let got = b.bus.fetch(DELIVER_TOPIC, 2, LEASE, WAIT).await.unwrap();
    assert_eq!(got.len(), 2);
    b.bus.retry(deferred, b"v2".to_vec(), Duration::from_secs(3600)).await.unwrap();
    let listed = b.bus.list(DELIVER_TOPIC, 100).await.unwrap();
    let summary: Vec<(u64, Vec<u8>, bool, bool)> = listed.iter().map(|w| (w.id, w.meta.clone(), w.leased, w.deferred)).collect();
    assert_eq!(summary, vec![(waiting, b"waiting".to_vec(), true, false), (deferred, b"v2".to_vec(), false, true)]);
    assert!(matches!(b.bus.take(DELIVER_TOPIC, waiting).await, Err(rempart_bus::BusError::Busy(_))), "leased by a worker");
    let taken = b.bus.take(DELIVER_TOPIC, deferred).await.unwrap();
    assert_eq!(taken, Some((b"v2".to_vec(), b"d".to_vec())));
    assert_eq!(b.bus.take(DELIVER_TOPIC, deferred).await.unwrap(), None, "gone");
    assert_eq!(b.bus.list(DELIVER_TOPIC, 100).await.unwrap().len(), 1);
    b.bus.ack(waiting).await.unwrap();
    assert!(b.bus.list(DELIVER_TOPIC, 100).await.unwrap().is_empty());
}
