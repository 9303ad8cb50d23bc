//! One conformance suite, every backend: the same tests against the embedded store
//! (a real redb file), the NATS store (a real nats-server started here) and, where
//! `FDB_CLUSTER_FILE` names a running cluster and the crate is built with
//! `--features foundationdb`, the FoundationDB store.

// The same helper the end-to-end tests use.
#[allow(dead_code)] // shared with the end-to-end tests, which use all of it
#[path = "../../../../tests/src/nats.rs"]
mod nats_server;

use std::sync::Arc;
use std::time::Duration;

use rempart_state::{MAX_KEY_BYTES, MAX_VALUE_BYTES, Store, StoreError, counter};

/// A store under test and what keeps its backing alive.
struct Backend {
    store: Arc<dyn Store>,
    _keep: Box<dyn std::any::Any + Send>,
}

fn embedded() -> Backend {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = rempart_state::EmbeddedStore::open(&dir.path().join("state.redb"), true).expect("open redb");
    Backend { store: Arc::new(store), _keep: Box::new(dir) }
}

async fn nats() -> Backend {
    let server = nats_server::NatsServer::start();
    let store = rempart_state::NatsStore::connect(&server.url(), "conformance", 1).await.expect("connect to nats");
    Backend { store: Arc::new(store), _keep: Box::new(server) }
}

#[cfg(feature = "foundationdb")]
async fn foundationdb() -> Option<Backend> {
    let Ok(file) = std::env::var("FDB_CLUSTER_FILE") else {
        eprintln!("FDB_CLUSTER_FILE is not set: FoundationDB conformance skipped");
        return None;
    };
    let store = rempart_state::FdbStore::open(Some(std::path::Path::new(&file))).expect("open foundationdb");
    // A clean slate: this suite's keys only.
    for (key, _) in store.scan_prefix("t.", usize::MAX).await.expect("scan") {
        store.delete(&key).await.expect("delete");
    }
    Some(Backend { store: Arc::new(store), _keep: Box::new(()) })
}

/// Runs `$test` against every backend available here.
macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod embedded_backend { $( #[tokio::test(flavor = "multi_thread", worker_threads = 4)] async fn $test() { let b = super::embedded(); super::$test(&b.store).await; } )* }
        mod nats_backend { $( #[tokio::test(flavor = "multi_thread", worker_threads = 4)] async fn $test() { let b = super::nats().await; super::$test(&b.store).await; } )* }
        #[cfg(feature = "foundationdb")]
        mod foundationdb_backend { $( #[tokio::test(flavor = "multi_thread", worker_threads = 4)] async fn $test() { if let Some(b) = super::foundationdb().await { super::$test(&b.store).await; } } )* }
    };
}

conformance!(
    get_put_delete,
    get_many,
    ttl_expiry,
    compare_and_set,
    compare_and_set_race,
    concurrent_adds,
    scan_prefix,
    limits,
    fuzzy_memory
);

async fn get_put_delete(store: &Arc<dyn Store>) {
    assert_eq!(store.get("t.absent").await.unwrap(), None);
    store.put("t.a", b"one", None).await.unwrap();
    assert_eq!(store.get("t.a").await.unwrap().as_deref(), Some(&b"one"[..]));
    store.put("t.a", b"two", None).await.unwrap();
    assert_eq!(store.get("t.a").await.unwrap().as_deref(), Some(&b"two"[..]));
    store.put("t.empty", b"", None).await.unwrap();
    assert_eq!(store.get("t.empty").await.unwrap().as_deref(), Some(&b""[..]), "an empty value is a value");
    store.delete("t.a").await.unwrap();
    assert_eq!(store.get("t.a").await.unwrap(), None);
    store.delete("t.never-written").await.unwrap();
    // A key written again after a delete is back.
    store.put("t.a", b"three", None).await.unwrap();
    assert_eq!(store.get("t.a").await.unwrap().as_deref(), Some(&b"three"[..]));
}

async fn get_many(store: &Arc<dyn Store>) {
    store.put("t.m.1", b"1", None).await.unwrap();
    store.put("t.m.3", b"3", None).await.unwrap();
    let keys: Vec<String> = ["t.m.1", "t.m.2", "t.m.3"].map(String::from).to_vec();
    let values = store.get_many(&keys).await.unwrap();
    assert_eq!(values, vec![Some(b"1".to_vec()), None, Some(b"3".to_vec())]);
    assert!(store.get_many(&[]).await.unwrap().is_empty());
}

async fn ttl_expiry(store: &Arc<dyn Store>) {
    store.put("t.short", b"x", Some(Duration::from_secs(1))).await.unwrap();
    store.put("t.long", b"y", Some(Duration::from_secs(3600))).await.unwrap();
    store.put("t.forever", b"z", Some(Duration::from_secs(1))).await.unwrap();
    // A put without TTL makes the value permanent again.
    store.put("t.forever", b"z", None).await.unwrap();
    assert_eq!(store.get("t.short").await.unwrap().as_deref(), Some(&b"x"[..]));
    tokio::time::sleep(Duration::from_millis(2600)).await;
    assert_eq!(store.get("t.short").await.unwrap(), None, "expired after its TTL");
    assert_eq!(store.get("t.long").await.unwrap().as_deref(), Some(&b"y"[..]));
    assert_eq!(store.get("t.forever").await.unwrap().as_deref(), Some(&b"z"[..]));
    let keys: Vec<String> = store.scan_prefix("t.", 100).await.unwrap().into_iter().map(|(k, _)| k).collect();
    assert!(!keys.contains(&"t.short".to_string()), "an expired key is not scanned: {keys:?}");
    // An expired key counts as absent for compare-and-set.
    assert!(store.compare_and_set("t.short", None, b"again", None).await.unwrap());
    assert_eq!(store.get("t.short").await.unwrap().as_deref(), Some(&b"again"[..]));
}

async fn compare_and_set(store: &Arc<dyn Store>) {
    assert!(store.compare_and_set("t.c", None, b"1", None).await.unwrap(), "create when absent");
    assert!(!store.compare_and_set("t.c", None, b"2", None).await.unwrap(), "create fails when present");
    assert!(!store.compare_and_set("t.c", Some(b"0"), b"2", None).await.unwrap(), "wrong expectation");
    assert_eq!(store.get("t.c").await.unwrap().as_deref(), Some(&b"1"[..]));
    assert!(store.compare_and_set("t.c", Some(b"1"), b"2", None).await.unwrap());
    assert_eq!(store.get("t.c").await.unwrap().as_deref(), Some(&b"2"[..]));
    assert!(!store.compare_and_set("t.absent", Some(b"2"), b"3", None).await.unwrap(), "expecting a value that is absent");
    store.delete("t.c").await.unwrap();
    assert!(store.compare_and_set("t.c", None, b"3", None).await.unwrap(), "create after delete");
}

async fn compare_and_set_race(store: &Arc<dyn Store>) {
    // Sixteen tasks race to create the same key: exactly one wins.
    let tasks: Vec<_> = (0..16u8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.compare_and_set("t.race", None, &[i], None).await.unwrap().then_some(i) })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        winners.extend(task.await.unwrap());
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    assert_eq!(store.get("t.race").await.unwrap(), Some(vec![winners[0]]));

    // Eight tasks increment through compare-and-set loops: no update is lost.
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                for _ in 0..10 {
                    loop {
                        let current = store.get("t.cas-counter").await.unwrap();
                        let n = current.as_deref().map_or(0, |v| u32::from_le_bytes(v.try_into().unwrap()));
                        if store.compare_and_set("t.cas-counter", current.as_deref(), &(n + 1).to_le_bytes(), None).await.unwrap() {
                            break;
                        }
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let total = store.get("t.cas-counter").await.unwrap().unwrap();
    assert_eq!(u32::from_le_bytes(total.try_into().unwrap()), 80);
}

async fn concurrent_adds(store: &Arc<dyn Store>) {
    let tasks: Vec<_> = (0..16i64)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                for _ in 0..10 {
                    let deltas = vec![("t.n.a".to_string(), 1), ("t.n.b".to_string(), i), ("t.n.c".to_string(), -2)];
                    store.add(&deltas).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let get = |k: &'static str| {
        let store = store.clone();
        async move { counter(k, store.get(k).await.unwrap().as_deref()).unwrap() }
    };
    assert_eq!(get("t.n.a").await, 160);
    assert_eq!(get("t.n.b").await, 10 * (0..16).sum::<i64>());
    assert_eq!(get("t.n.c").await, -320);
    assert_eq!(get("t.n.absent").await, 0);
}

async fn scan_prefix(store: &Arc<dyn Store>) {
    for key in ["t.s.b.2", "t.s.a", "t.s.b.1", "t.sx.1", "t.s.b.3"] {
        store.put(key, key.as_bytes(), None).await.unwrap();
    }
    store.delete("t.s.b.3").await.unwrap();
    let found = store.scan_prefix("t.s.", 100).await.unwrap();
    let keys: Vec<&str> = found.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["t.s.a", "t.s.b.1", "t.s.b.2"], "whole segments, key order, no deleted key");
    assert_eq!(found[1].1, b"t.s.b.1");
    assert_eq!(store.scan_prefix("t.s.b.", 1).await.unwrap().len(), 1, "limit");
    assert!(store.scan_prefix("t.nothing.", 10).await.unwrap().is_empty());
    assert!(matches!(store.scan_prefix("t.s", 10).await, Err(StoreError::InvalidPrefix(_))));
}

async fn limits(store: &Arc<dyn Store>) {
    let longest = format!("t.{}", "k".repeat(MAX_KEY_BYTES - 2));
    store.put(&longest, b"v", None).await.unwrap();
    assert_eq!(store.get(&longest).await.unwrap().as_deref(), Some(&b"v"[..]));
    let too_long = format!("{longest}k");
    assert!(matches!(store.put(&too_long, b"v", None).await, Err(StoreError::KeyTooLarge { .. })));
    assert!(matches!(store.get(&too_long).await, Err(StoreError::KeyTooLarge { .. })));

    let biggest = vec![7u8; MAX_VALUE_BYTES];
    store.put("t.big", &biggest, None).await.unwrap();
    assert_eq!(store.get("t.big").await.unwrap().map(|v| v.len()), Some(MAX_VALUE_BYTES));
    let too_big = vec![7u8; MAX_VALUE_BYTES + 1];
    let err = store.put("t.big", &too_big, None).await.unwrap_err();
    assert!(matches!(err, StoreError::ValueTooLarge { .. }), "{err}");
    assert!(err.to_string().contains("100000"), "the error names the limit: {err}");
    assert!(matches!(store.compare_and_set("t.big2", None, &too_big, None).await, Err(StoreError::ValueTooLarge { .. })));
    assert_eq!(store.get("t.big").await.unwrap().map(|v| v.len()), Some(MAX_VALUE_BYTES), "the refused write changed nothing");

    for bad in ["", "t..x", "t.a b", "t.x.", ".t", "t.é"] {
        assert!(matches!(store.put(bad, b"v", None).await, Err(StoreError::InvalidKey(_))), "{bad:?}");
    }
    store.put("t.text", b"not a counter", None).await.unwrap();
    // FoundationDB's ADD cannot look at the value first: it adds to whatever is there.
    if store.backend() != "foundationdb" {
        assert!(matches!(store.add(&[("t.text".to_string(), 1)]).await, Err(StoreError::NotACounter(_))));
    }
}

/// The memory of campaigns on the store: a reported spam's variants are recalled, other
/// mail is not, and a message released as ham (and what resembles it) never hits.
async fn fuzzy_memory(store: &Arc<dyn Store>) {
    use rempart_classifier::bayes::Class;
    use rempart_classifier::fuzzy::fingerprint;
    use rempart_classifier::message::Analysis;
    use rempart_state::fuzzy::{Recall, recall, remember};
    let of = |body: &str| fingerprint(&Analysis::new(format!("From: a@x.example\r\nSubject: Notice\r\n\r\n{body}\r\n").as_bytes()));
    let campaign = "Dear customer NAME, your mailbox quota of 2 GB is full and incoming messages are held. \
        Log in within 24 hours at LINK to upgrade your storage for free, otherwise your account will be closed. Regards, the IT support desk.";
    let reported = of(&campaign.replace("NAME", "Alice").replace("LINK", "https://evil.example/a"));
    remember(&**store, &reported, Class::Spam).await.expect("remember");
    let variant = of(&campaign.replace("NAME", "Bob").replace("LINK", "http://other.example/x?7").replace("24 hours", "12 hours"));
    match recall(&**store, &variant).await.expect("recall") {
        Some(Recall::Spam { similarity, attachment: false }) => assert!(similarity >= 0.5, "{similarity}"),
        other => panic!("the variant is not recalled: {other:?}"),
    }
    let unrelated = of(
        "The board meeting is moved to Tuesday afternoon; please send the minutes of the last session and your comments on the draft budget before then.",
    );
    assert_eq!(recall(&**store, &unrelated).await.expect("recall"), None);
    // Released as ham: it and its near copies are remembered as ham.
    let released = of(&campaign.replace("NAME", "Carol").replace("LINK", "https://intranet.example/quota"));
    remember(&**store, &released, Class::Ham).await.expect("remember");
    assert!(matches!(recall(&**store, &variant).await.expect("recall"), Some(Recall::Ham { .. })), "ham wins");
}
