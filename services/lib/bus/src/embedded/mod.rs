//! The embedded bus: a redb file written by one thread that group-commits. Every
//! operation waiting while a commit (and its fsync) runs goes into the next commit, so
//! many concurrent sessions share one fsync instead of paying one each.
//!
//! A failed write (a full disk above all) leaves redb refusing every later operation
//! until the file is opened again: the writer then reopens it before its next batch,
//! and keeps trying, so the queue comes back by itself once space returns. What was
//! committed stays; what failed was never acknowledged.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redb::{Database, TableDefinition};
use rempart_redb_file::RedbFile;
use tokio::sync::{Notify, oneshot};

mod writer;

use writer::{Op, Writer, recover};

use crate::{Bus, BusError, Delivery, MessageId};

/// id → info record (see `Info`).
const INFO: TableDefinition<u64, &[u8]> = TableDefinition::new("info");
/// id → metadata (the envelope).
const META: TableDefinition<u64, &[u8]> = TableDefinition::new("meta");
/// id → message body.
const BODY: TableDefinition<u64, &[u8]> = TableDefinition::new("body");
/// (topic, visible-at ms, id): the order in which messages are handed out.
const READY: TableDefinition<(&str, u64, u64), ()> = TableDefinition::new("ready");
/// id → W3C traceparent of the span that published it (when traces are exported).
const TRACE: TableDefinition<u64, &str> = TableDefinition::new("trace");

/// Largest number of operations in one commit.
const MAX_BATCH: usize = 512;

#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// fsync every commit. Off only for benchmarks: a crash may then lose accepted mail.
    pub fsync: bool,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self { fsync: true }
    }
}

/// The queue file, reopened by the writer after a failed write.
type SharedDb = Arc<RedbFile>;

#[derive(Clone)]
pub struct EmbeddedBus {
    ops: mpsc::Sender<Op>,
    db: SharedDb,
    published: Arc<Notify>,
    /// Events, to the subscribers in this process.
    events: tokio::sync::broadcast::Sender<crate::Event>,
}

struct Info {
    visible_at: u64,
    deliveries: u32,
    published_at: u64,
    leased: bool,
    topic: String,
}

impl Info {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(21 + self.topic.len());
        out.extend_from_slice(&self.visible_at.to_be_bytes());
        out.extend_from_slice(&self.deliveries.to_be_bytes());
        out.extend_from_slice(&self.published_at.to_be_bytes());
        out.push(u8::from(self.leased));
        out.extend_from_slice(self.topic.as_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self, BusError> {
        if bytes.len() < 21 {
            return Err(BusError::Storage("corrupt info record".into()));
        }
        let u64_at = |i: usize| u64::from_be_bytes(bytes[i..i + 8].try_into().unwrap_or([0; 8]));
        Ok(Self {
            visible_at: u64_at(0),
            deliveries: u32::from_be_bytes(bytes[8..12].try_into().unwrap_or([0; 4])),
            published_at: u64_at(12),
            leased: bytes[20] != 0,
            topic: String::from_utf8_lossy(&bytes[21..]).into_owned(),
        })
    }
}

/// A redb error as the bus says it: a full disk or quota is `Full` (the edge answers
/// `452 4.3.1`), anything else `Storage`.
fn storage<E: Into<redb::Error>>(e: E) -> BusError {
    match e.into() {
        redb::Error::Io(io) if is_full(&io) => BusError::Full(io.to_string()),
        redb::Error::PreviousIo => BusError::Storage("an earlier write failed; the queue file is being reopened".into()),
        other => BusError::Storage(other.to_string()),
    }
}

/// No space left, file too large, or quota exceeded.
fn is_full(io: &std::io::Error) -> bool {
    matches!(io.kind(), std::io::ErrorKind::StorageFull | std::io::ErrorKind::FileTooLarge | std::io::ErrorKind::QuotaExceeded)
}

fn task_failed(e: tokio::task::JoinError) -> BusError {
    BusError::Storage(format!("queue task: {e}"))
}

fn read_db(db: &SharedDb) -> Result<Arc<Database>, BusError> {
    db.get().ok_or_else(|| BusError::Storage("the queue file is being reopened after a write failure".into()))
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl EmbeddedBus {
    /// Opens (or creates) the queue file. Messages that were leased when the previous
    /// process stopped become visible at once: their consumer is gone.
    pub fn open(path: &Path, options: EmbeddedOptions) -> Result<Self, BusError> {
        let db: SharedDb = Arc::new(RedbFile::open(path).map_err(BusError::Storage)?);
        let next_id = recover(&*read_db(&db)?, true)?;
        let published = Arc::new(Notify::new());
        let ops = Writer::start(db.clone(), next_id, options.fsync, published.clone())?;
        let (events, _) = tokio::sync::broadcast::channel(crate::EVENT_BACKLOG);
        rempart_telemetry::metrics().queue_writable(true);
        Ok(Self { ops, db, published, events })
    }

    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<Result<T, BusError>>) -> Op) -> Result<T, BusError> {
        let (tx, rx) = oneshot::channel();
        self.ops.send(make(tx)).map_err(|_| BusError::Closed)?;
        // No answer: the writer's batch failed without one (it survives and reopens).
        rx.await.map_err(|_| BusError::Storage("the queue write failed; see the log".into()))?
    }
}

impl Bus for EmbeddedBus {
    async fn event(&self, subject: &str, payload: Vec<u8>) {
        // No subscriber is not an error: nobody is counting.
        let _ = self.events.send(crate::Event { subject: subject.to_string(), payload });
    }

    async fn replay_events(&self, _after: u64) -> Result<crate::SequencedReceiver, BusError> {
        let mut events = self.subscribe_events("tracking").await?;
        let (tx, rx) = tokio::sync::mpsc::channel(crate::EVENT_BACKLOG);
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                if (event.subject == crate::TRACK_EVENTS || event.subject == crate::DELIVERY_EVENTS) && tx.send((0, event)).await.is_err() {
                    return;
                }
            }
        });
        Ok(rx)
    }

    async fn subscribe_events(&self, _group: &str) -> Result<crate::EventReceiver, BusError> {
        let mut events = self.events.subscribe();
        let (tx, rx) = tokio::sync::mpsc::channel(crate::EVENT_BACKLOG);
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(event) => {
                        if tx.send(event).await.is_err() {
                            return;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "event subscriber too slow: events dropped");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Ok(rx)
    }

    async fn publish(&self, topic: &str, meta: Vec<u8>, body: Vec<u8>) -> Result<MessageId, BusError> {
        let (topic, trace) = (topic.to_string(), crate::current_traceparent());
        let started = std::time::Instant::now();
        let id = self.call(|reply| Op::Publish { topic, meta, body, trace, reply }).await;
        rempart_telemetry::metrics().bus_operation("embedded", "publish", started.elapsed());
        id
    }

    async fn fetch(&self, topic: &str, max: usize, lease: Duration, wait: Duration) -> Result<Vec<Delivery>, BusError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Register for the wake-up before looking, so a publish in between is not missed.
            let published = self.published.notified();
            tokio::pin!(published);
            published.as_mut().enable();
            let topic = topic.to_string();
            let lease_ms = lease.as_millis() as u64;
            let fetched = self.call(|reply| Op::Fetch { topic, max, lease_ms, reply }).await?;
            if !fetched.deliveries.is_empty() {
                return Ok(fetched.deliveries);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            let mut wake = deadline;
            if let Some(at) = fetched.next_visible_at {
                wake = wake.min(now + Duration::from_millis(at.saturating_sub(now_ms())));
            }
            tokio::select! {
                _ = &mut published => {}
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    async fn ack(&self, id: MessageId) -> Result<(), BusError> {
        let started = std::time::Instant::now();
        let done = self.call(|reply| Op::Ack { id, reply }).await;
        rempart_telemetry::metrics().bus_operation("embedded", "ack", started.elapsed());
        done
    }

    async fn retry(&self, id: MessageId, meta: Vec<u8>, delay: Duration) -> Result<(), BusError> {
        let delay_ms = delay.as_millis() as u64;
        self.call(|reply| Op::Retry { id, meta, delay_ms, reply }).await
    }

    async fn expedite(&self, topic: &str, matches: crate::MetaFilter) -> Result<usize, BusError> {
        let topic = topic.to_string();
        self.call(|reply| Op::Expedite { topic, matches, reply }).await
    }

    async fn list(&self, topic: &str, limit: usize) -> Result<Vec<crate::Waiting>, BusError> {
        let db = self.db.clone();
        let topic = topic.to_string();
        tokio::task::spawn_blocking(move || {
            let txn = read_db(&db)?.begin_read().map_err(storage)?;
            let ready = txn.open_table(READY).map_err(storage)?;
            let (info_table, meta_table) = (txn.open_table(INFO).map_err(storage)?, txn.open_table(META).map_err(storage)?);
            let now = now_ms();
            let mut waiting = Vec::new();
            for row in ready.range((topic.as_str(), 0, 0)..=(topic.as_str(), u64::MAX, u64::MAX)).map_err(storage)?.take(limit) {
                let id = row.map_err(storage)?.0.value().2;
                let Some(raw) = info_table.get(id).map_err(storage)? else { continue };
                let info = Info::decode(raw.value())?;
                let meta = meta_table.get(id).map_err(storage)?.map(|v| v.value().to_vec()).unwrap_or_default();
                waiting.push(crate::Waiting {
                    id,
                    meta,
                    published_at_ms: info.published_at,
                    visible_at_ms: info.visible_at,
                    leased: info.leased,
                    deferred: !info.leased && info.visible_at > now,
                });
            }
            Ok(waiting)
        })
        .await
        .map_err(task_failed)?
    }

    async fn take(&self, topic: &str, id: MessageId) -> Result<crate::Taken, BusError> {
        let topic = topic.to_string();
        self.call(|reply| Op::Take { topic, id, reply }).await
    }

    async fn pending(&self, topic: &str) -> Result<usize, BusError> {
        let db = self.db.clone();
        let topic = topic.to_string();
        tokio::task::spawn_blocking(move || {
            let txn = read_db(&db)?.begin_read().map_err(storage)?;
            let table = txn.open_table(READY).map_err(storage)?;
            let count = table.range((topic.as_str(), 0, 0)..=(topic.as_str(), u64::MAX, u64::MAX)).map_err(storage)?.count();
            Ok(count)
        })
        .await
        .map_err(task_failed)?
    }

    async fn oldest_published_ms(&self, topic: &str) -> Result<Option<u64>, BusError> {
        let db = self.db.clone();
        let topic = topic.to_string();
        tokio::task::spawn_blocking(move || {
            let txn = read_db(&db)?.begin_read().map_err(storage)?;
            let ready = txn.open_table(READY).map_err(storage)?;
            // Ids grow with publication: the smallest waiting id is the oldest message.
            let mut oldest: Option<u64> = None;
            for row in ready.range((topic.as_str(), 0, 0)..=(topic.as_str(), u64::MAX, u64::MAX)).map_err(storage)? {
                let id = row.map_err(storage)?.0.value().2;
                oldest = Some(oldest.map_or(id, |o| o.min(id)));
            }
            let Some(id) = oldest else { return Ok(None) };
            let info = txn.open_table(INFO).map_err(storage)?;
            Ok(match info.get(id).map_err(storage)? {
                Some(raw) => Some(Info::decode(raw.value())?.published_at),
                None => None,
            })
        })
        .await
        .map_err(task_failed)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "t";
    const NO_WAIT: Duration = Duration::ZERO;

    fn open(dir: &tempfile::TempDir) -> EmbeddedBus {
        EmbeddedBus::open(&dir.path().join("q.redb"), EmbeddedOptions::default()).unwrap()
    }

    #[tokio::test]
    async fn publish_fetch_ack() {
        let dir = tempfile::tempdir().unwrap();
        let bus = open(&dir);
        let id = bus.publish(T, b"m".to_vec(), b"body".to_vec()).await.unwrap();
        assert_eq!(bus.pending(T).await.unwrap(), 1);
        let published = bus.oldest_published_ms(T).await.unwrap().expect("one waiting");
        assert!(published.abs_diff(now_ms()) < 60_000);
        let got = bus.fetch(T, 10, Duration::from_secs(60), NO_WAIT).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].id, got[0].deliveries, &got[0].meta[..], &got[0].body[..]), (id, 1, &b"m"[..], &b"body"[..]));
        // Leased: not handed out twice.
        assert!(bus.fetch(T, 10, Duration::from_secs(60), NO_WAIT).await.unwrap().is_empty());
        assert!(bus.fetch("other", 10, Duration::from_secs(60), NO_WAIT).await.unwrap().is_empty());
        bus.ack(id).await.unwrap();
        assert_eq!(bus.pending(T).await.unwrap(), 0);
        assert_eq!(bus.oldest_published_ms(T).await.unwrap(), None);
    }

    #[tokio::test]
    async fn unacked_message_is_redelivered_after_visibility_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let bus = open(&dir);
        bus.publish(T, vec![], b"x".to_vec()).await.unwrap();
        let first = bus.fetch(T, 1, Duration::from_millis(200), NO_WAIT).await.unwrap();
        assert_eq!(first.len(), 1);
        let again = bus.fetch(T, 1, Duration::from_secs(60), Duration::from_secs(5)).await.unwrap();
        assert_eq!((again[0].id, again[0].deliveries), (first[0].id, 2));
    }

    #[tokio::test]
    async fn retry_delays_and_replaces_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let bus = open(&dir);
        let id = bus.publish(T, b"v1".to_vec(), b"x".to_vec()).await.unwrap();
        bus.fetch(T, 1, Duration::from_secs(60), NO_WAIT).await.unwrap();
        bus.retry(id, b"v2".to_vec(), Duration::from_millis(300)).await.unwrap();
        assert!(bus.fetch(T, 1, Duration::from_secs(60), NO_WAIT).await.unwrap().is_empty());
        let started = std::time::Instant::now();
        let got = bus.fetch(T, 1, Duration::from_secs(60), Duration::from_secs(5)).await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert_eq!(got[0].meta, b"v2");
    }

    #[tokio::test]
    async fn expedite_makes_matching_delayed_messages_visible_but_not_leased_ones() {
        let dir = tempfile::tempdir().unwrap();
        let bus = open(&dir);
        let lease = Duration::from_secs(60);
        let a = bus.publish(T, b"for-a".to_vec(), b"x".to_vec()).await.unwrap();
        let b = bus.publish(T, b"for-b".to_vec(), b"x".to_vec()).await.unwrap();
        let leased = bus.publish(T, b"for-a leased".to_vec(), b"x".to_vec()).await.unwrap();
        assert_eq!(bus.fetch(T, 3, lease, NO_WAIT).await.unwrap().len(), 3);
        bus.retry(a, b"for-a".to_vec(), Duration::from_secs(3600)).await.unwrap();
        bus.retry(b, b"for-b".to_vec(), Duration::from_secs(3600)).await.unwrap();
        let for_a: crate::MetaFilter = Box::new(|meta: &[u8]| meta.starts_with(b"for-a"));
        assert_eq!(bus.expedite(T, for_a).await.unwrap(), 1, "the leased one is left alone");
        let got = bus.fetch(T, 3, lease, NO_WAIT).await.unwrap();
        assert_eq!(got.iter().map(|d| d.id).collect::<Vec<_>>(), vec![a]);
        bus.ack(leased).await.unwrap();
    }

    #[tokio::test]
    async fn waiting_fetch_wakes_on_publish() {
        let dir = tempfile::tempdir().unwrap();
        let bus = open(&dir);
        let consumer = bus.clone();
        let waiter = tokio::spawn(async move { consumer.fetch(T, 1, Duration::from_secs(60), Duration::from_secs(10)).await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        bus.publish(T, vec![], b"x".to_vec()).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(2), waiter).await.unwrap().unwrap().unwrap();
        assert_eq!(got.len(), 1);
    }

    #[tokio::test]
    async fn reopening_recovers_unacked_and_releases_leases() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b);
        {
            let bus = open(&dir);
            a = bus.publish(T, vec![], b"a".to_vec()).await.unwrap();
            b = bus.publish(T, vec![], b"b".to_vec()).await.unwrap();
            let c = bus.publish(T, vec![], b"c".to_vec()).await.unwrap();
            bus.ack(c).await.unwrap();
            bus.fetch(T, 1, Duration::from_secs(3600), NO_WAIT).await.unwrap();
        }
        // The writer thread holds the database until its channel closes.
        let bus = loop {
            match EmbeddedBus::open(&dir.path().join("q.redb"), EmbeddedOptions::default()) {
                Ok(bus) => break bus,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        let got = bus.fetch(T, 10, Duration::from_secs(60), NO_WAIT).await.unwrap();
        let mut ids: Vec<_> = got.iter().map(|d| d.id).collect();
        ids.sort();
        assert_eq!(ids, vec![a, b]);
        let fresh = bus.publish(T, vec![], vec![]).await.unwrap();
        assert!(fresh > b, "ids are not reused");
    }

    #[tokio::test]
    async fn concurrent_publishers_share_commits_and_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let bus = open(&dir);
        let mut tasks = Vec::new();
        for t in 0..50u32 {
            let bus = bus.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..20u32 {
                    bus.publish(T, vec![], format!("{t}-{i}").into_bytes()).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(bus.pending(T).await.unwrap(), 1000);
        let got = bus.fetch(T, 2000, Duration::from_secs(60), NO_WAIT).await.unwrap();
        let bodies: std::collections::HashSet<_> = got.into_iter().map(|d| d.body).collect();
        assert_eq!(bodies.len(), 1000);
    }
}
