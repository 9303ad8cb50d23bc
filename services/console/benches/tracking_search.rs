//! Message tracking at volume: folds the events of N messages (default 1,000,000:
//! `TRACKING_MESSAGES`) into a fresh index — a session event and one or two delivery
//! events each, in the ingest's batches of 2,000 — and prints the ingest rate, the
//! index size per message, then p50/p99 of the searches a helpdesk makes: by
//! recipient, by sender, by sender domain, by Message-ID, by client IP with a status,
//! a tenant admin's newest mail, and the operator's newest.
//!   cargo bench -p rempart-console --bench tracking_search

use std::time::Instant;

use prost::Message as _;
use rempart_bus::{DELIVERY_EVENTS, Event, TRACK_EVENTS};
use rempart_console::quarantine::Scope;
use rempart_console::tracking::{Query, Status, TrackingIndex};
use rempart_proto::v1::{DeliveryEvent, TrackEvent};

const DOMAINS: usize = 200;
const USERS_PER_DOMAIN: usize = 500;
const SENDERS: usize = 50_000;
const START_MS: u64 = 1_790_000_000_000;

/// The recipient of message `i`.
fn recipient(i: usize) -> String {
    format!("user{}@d{}.test", (i * 7) % USERS_PER_DOMAIN, i % DOMAINS)
}

fn events(i: usize) -> Vec<Event> {
    let at_ms = START_MS + i as u64 * 100;
    let queue_id = format!("T{i:015}");
    let to = recipient(i);
    let refused = i.is_multiple_of(10);
    let session = TrackEvent {
        queue_id: queue_id.clone(),
        at_ms: at_ms as i64,
        kind: "session".into(),
        client_ip: format!("192.0.{}.{}", (i / 250) % 250, i % 250),
        helo: "mail.sender.example".into(),
        sender: format!("s{}@sender{}.example", i % SENDERS, i % 1000),
        recipients: vec![to.clone()],
        message_id: format!("<{i}.bench@sender.example>"),
        subject: format!("Invoice number {i} for your order"),
        size: 4_000,
        reply: if refused { "550 5.7.1 Message refused as spam".into() } else { format!("250 2.0.0 Ok: queued as {queue_id}") },
        outcome: if refused { "refused".into() } else { "queued".into() },
        score: if refused { 12.5 } else { 1.2 },
        action: if refused { "reject".into() } else { "accept".into() },
        symbols: vec!["BAYES_00(-1.90)".into(), "SPF_PASS(-0.10)".into()],
        ..Default::default()
    };
    let mut all = vec![Event { subject: TRACK_EVENTS.into(), payload: session.encode_to_vec() }];
    if !refused {
        let attempts = if i % 20 == 1 { 2 } else { 1 };
        for attempt in 1..=attempts {
            let last = attempt == attempts;
            let delivery = DeliveryEvent {
                queue_id: queue_id.clone(),
                recipient: to.clone(),
                status: if last { "delivered".into() } else { "deferred".into() },
                reply: if last { "250 2.0.0 Ok".into() } else { "451 4.3.0 try again later".into() },
                attempts: attempt,
                at: ((at_ms + 1000 * attempt as u64) / 1000) as i64,
                at_ms: (at_ms + 1000 * attempt as u64) as i64,
                remote: "mx.customer.example:25".into(),
                tls: "TLSv1.3 with cipher TLS13_AES_256_GCM_SHA384".into(),
            };
            all.push(Event { subject: DELIVERY_EVENTS.into(), payload: delivery.encode_to_vec() });
        }
    }
    all
}

fn percentiles(label: &str, mut took: Vec<f64>, found: usize) {
    took.sort_by(f64::total_cmp);
    let at = |p: f64| took[((took.len() - 1) as f64 * p).round() as usize];
    println!("{label:<44} p50 {:>8.2} ms   p99 {:>8.2} ms   ({} searches, {found} found in the last)", at(0.5), at(0.99), took.len());
}

fn main() {
    let messages: usize = std::env::var("TRACKING_MESSAGES").ok().and_then(|n| n.parse().ok()).unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("tracking.redb");
    let index = TrackingIndex::open(&path).expect("index");

    let started = Instant::now();
    let (mut batch, mut total_events, mut sequence) = (Vec::with_capacity(2_000), 0usize, 0u64);
    for i in 0..messages {
        for event in events(i) {
            batch.push(event);
            if batch.len() == 2_000 {
                sequence += batch.len() as u64;
                total_events += index.apply(&batch, sequence).expect("apply");
                batch.clear();
            }
        }
    }
    sequence += batch.len() as u64;
    total_events += index.apply(&batch, sequence).expect("apply");
    let took = started.elapsed().as_secs_f64();
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    drop(index);
    // The file grows by regions; what the data takes is redb's own count.
    let database = redb::Database::open(&path).expect("reopen");
    let stats = database.begin_write().expect("write").stats().expect("stats");
    let stored = stats.stored_bytes() + stats.metadata_bytes();
    drop(database);
    let index = TrackingIndex::open(&path).expect("index");
    println!(
        "ingest: {messages} messages, {total_events} events in {took:.1} s = {:.0} events/s ({:.0} messages/s)",
        total_events as f64 / took,
        messages as f64 / took
    );
    println!(
        "index: a {:.1} MiB file holding {:.1} MiB of data and metadata: {:.0} bytes per message ({:.0} of file)",
        size as f64 / 1048576.0,
        stored as f64 / 1048576.0,
        stored as f64 / messages as f64,
        size as f64 / messages as f64
    );

    let runs = 300;
    let search = |label: &str, make: &dyn Fn(usize) -> (Query, Scope)| {
        let mut took = Vec::with_capacity(runs);
        let mut found = 0;
        for run in 0..runs {
            let (query, scope) = make(run * 7919);
            let start = Instant::now();
            found = index.search(&query, &scope).expect("search").messages.len();
            took.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        percentiles(label, took, found);
    };
    let all = || Scope::All;
    search("by recipient (one address)", &|n| (Query { recipient: recipient(n % messages), ..Default::default() }, all()));
    search("by sender (one address)", &|n| {
        (Query { sender: format!("s{}@sender{}.example", n % SENDERS, n % 1000), ..Default::default() }, all())
    });
    search("by sender domain", &|n| (Query { sender: format!("sender{}.example", n % 1000), ..Default::default() }, all()));
    search("by Message-ID", &|n| (Query { message_id: format!("<{}.bench@sender.example>", n % messages), ..Default::default() }, all()));
    search("by client IP, status refused", &|n| {
        (Query { client_ip: format!("192.0.{}.0", n % 250), status: Some(Status::Refused), ..Default::default() }, all())
    });
    search("tenant admin of one domain: newest 100", &|n| (Query::default(), Scope::Domains(vec![format!("d{}.test", n % DOMAINS)])));
    search("tenant admin: one day, status delivered", &|n| {
        let day = START_MS + (n % 10) as u64 * 86_400_000 / 10;
        (
            Query { since_ms: Some(day), until_ms: Some(day + 86_400_000), status: Some(Status::Delivered), ..Default::default() },
            Scope::Domains(vec![format!("d{}.test", n % DOMAINS)]),
        )
    });
    search("operator: newest 100", &|_| (Query::default(), all()));
    search("operator: status refused, newest 100", &|_| (Query { status: Some(Status::Refused), ..Default::default() }, all()));
}
