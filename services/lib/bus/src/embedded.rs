//! The embedded bus: a redb file written by one thread that group-commits. Every
//! operation waiting while a commit (and its fsync) runs goes into the next commit, so
//! many concurrent sessions share one fsync instead of paying one each.
//!
//! A failed write (a full disk above all) leaves redb refusing every later operation
//! until the file is opened again: the writer then reopens it before its next batch,
//! and keeps trying, so the queue comes back by itself once space returns. What was
//! committed stays; what failed was never acknowledged.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redb::{Database, Durability, ReadableTable, TableDefinition, WriteTransaction};
use tokio::sync::{Notify, oneshot};

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

/// The open database, swapped by the writer when it reopens the file (`None` meanwhile).
type SharedDb = Arc<RwLock<Option<Arc<Database>>>>;

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

enum Op {
    Publish { topic: String, meta: Vec<u8>, body: Vec<u8>, trace: Option<String>, reply: oneshot::Sender<Result<MessageId, BusError>> },
    Fetch { topic: String, max: usize, lease_ms: u64, reply: oneshot::Sender<Result<Fetched, BusError>> },
    Ack { id: MessageId, reply: oneshot::Sender<Result<(), BusError>> },
    Retry { id: MessageId, meta: Vec<u8>, delay_ms: u64, reply: oneshot::Sender<Result<(), BusError>> },
    Expedite { topic: String, matches: crate::MetaFilter, reply: oneshot::Sender<Result<usize, BusError>> },
}

impl Op {
    /// Answers the operation with `e` without doing it.
    fn refuse(self, e: &BusError) {
        let e = e.clone();
        match self {
            Op::Publish { reply, .. } => drop(reply.send(Err(e))),
            Op::Fetch { reply, .. } => drop(reply.send(Err(e))),
            Op::Ack { reply, .. } | Op::Retry { reply, .. } => drop(reply.send(Err(e))),
            Op::Expedite { reply, .. } => drop(reply.send(Err(e))),
        }
    }
}

struct Fetched {
    deliveries: Vec<Delivery>,
    /// When the next message of the topic becomes visible, if any is waiting.
    next_visible_at: Option<u64>,
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
    db.read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone()
        .ok_or_else(|| BusError::Storage("the queue file is being reopened after a write failure".into()))
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl EmbeddedBus {
    /// Opens (or creates) the queue file. Messages that were leased when the previous
    /// process stopped become visible at once: their consumer is gone.
    pub fn open(path: &Path, options: EmbeddedOptions) -> Result<Self, BusError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| BusError::Storage(format!("{}: {e}", dir.display())))?;
        }
        let db = Database::create(path).map_err(|e| BusError::Storage(format!("{}: {e}", path.display())))?;
        let next_id = recover(&db, true)?;
        let db: SharedDb = Arc::new(RwLock::new(Some(Arc::new(db))));
        let (ops, rx) = mpsc::channel();
        let published = Arc::new(Notify::new());
        let writer = Writer {
            db: db.clone(),
            path: path.to_path_buf(),
            next_id,
            fsync: options.fsync,
            published: published.clone(),
            broken: false,
            last_reopen: None,
        };
        std::thread::Builder::new().name("queue-writer".into()).spawn(move || writer.run(rx)).map_err(storage)?;
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

/// Returns the next free id and, at start (`clear_leases`), makes the messages leased
/// by a previous process visible. A reopen in the same process keeps the leases: their
/// consumers are still at work.
fn recover(db: &Database, clear_leases: bool) -> Result<u64, BusError> {
    let txn = db.begin_write().map_err(storage)?;
    let next_id;
    {
        let mut info = txn.open_table(INFO).map_err(storage)?;
        txn.open_table(META).map_err(storage)?;
        txn.open_table(BODY).map_err(storage)?;
        txn.open_table(TRACE).map_err(storage)?;
        let mut ready = txn.open_table(READY).map_err(storage)?;
        next_id = info.last().map_err(storage)?.map_or(1, |(k, _)| k.value() + 1);
        let mut leased = Vec::new();
        for row in info.iter().map_err(storage)? {
            let (id, value) = row.map_err(storage)?;
            let record = Info::decode(value.value())?;
            if record.leased && clear_leases {
                leased.push((id.value(), record));
            }
        }
        let now = now_ms();
        for (id, mut record) in leased {
            ready.remove((record.topic.as_str(), record.visible_at, id)).map_err(storage)?;
            record.visible_at = now;
            record.leased = false;
            ready.insert((record.topic.as_str(), now, id), ()).map_err(storage)?;
            info.insert(id, record.encode().as_slice()).map_err(storage)?;
        }
    }
    txn.commit().map_err(storage)?;
    Ok(next_id)
}

struct Writer {
    db: SharedDb,
    path: PathBuf,
    next_id: u64,
    fsync: bool,
    published: Arc<Notify>,
    /// A write failed: the file must be reopened before the next batch.
    broken: bool,
    last_reopen: Option<std::time::Instant>,
}

/// How often a broken queue file is reopened, at most.
const REOPEN_EVERY: Duration = Duration::from_millis(500);

/// A reply to send once the batch's commit has succeeded.
type Finish = Box<dyn FnOnce(Option<&BusError>) + Send>;

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Op>) {
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(op) => batch.push(op),
                    Err(_) => break,
                }
            }
            if self.broken
                && let Err(e) = self.reopen()
            {
                for op in batch {
                    op.refuse(&e);
                }
                continue;
            }
            // A panic inside the storage engine (seen on a full disk) must not end the
            // writer: its batch gets no answer (the callers see an error), the file is
            // reopened.
            let committed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.commit_batch(batch)));
            match committed {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "queue write failed; the queue file will be reopened");
                    rempart_telemetry::metrics().queue_writable(false);
                    self.broken = true;
                }
                Err(panic) => {
                    let panic = rempart_telemetry::metrics().panic("queue_writer", &*panic);
                    tracing::error!(panic, "the queue writer panicked; the queue file will be reopened");
                    rempart_telemetry::metrics().queue_writable(false);
                    self.broken = true;
                }
            }
        }
    }

    /// Opens the queue file again (redb refuses everything after a failed write). Every
    /// reader's handle must go first: only one may be open.
    fn reopen(&mut self) -> Result<(), BusError> {
        if let Some(at) = self.last_reopen {
            let since = at.elapsed();
            if since < REOPEN_EVERY {
                std::thread::sleep(REOPEN_EVERY - since);
            }
        }
        self.last_reopen = Some(std::time::Instant::now());
        let old = self.db.write().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(mut old) = old {
            // Readers hold a handle for one short read at most.
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            loop {
                match Arc::try_unwrap(old) {
                    Ok(db) => {
                        drop(db);
                        break;
                    }
                    Err(still_shared) if std::time::Instant::now() < deadline => {
                        old = still_shared;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(still_shared) => {
                        *self.db.write().unwrap_or_else(|p| p.into_inner()) = Some(still_shared);
                        return Err(BusError::Storage("the queue file is still in use; it will be reopened later".into()));
                    }
                }
            }
        }
        let db = Database::create(&self.path).map_err(storage)?;
        let next_id = recover(&db, false)?;
        self.next_id = self.next_id.max(next_id);
        *self.db.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(db));
        self.broken = false;
        rempart_telemetry::metrics().queue_writable(true);
        tracing::info!(path = %self.path.display(), "queue file reopened; the queue works again");
        // Consumers waiting for new mail look again.
        self.published.notify_waiters();
        Ok(())
    }

    fn commit_batch(&mut self, batch: Vec<Op>) -> Result<(), BusError> {
        let mut finishers: Vec<Finish> = Vec::with_capacity(batch.len());
        let mut published_any = false;
        let db = read_db(&self.db)?;
        let outcome = (|| -> Result<(), BusError> {
            let mut txn = db.begin_write().map_err(storage)?;
            txn.set_durability(if self.fsync { Durability::Immediate } else { Durability::None });
            for op in batch {
                published_any |= matches!(op, Op::Publish { .. } | Op::Retry { .. } | Op::Expedite { .. });
                finishers.push(self.apply(&txn, op));
            }
            txn.commit().map_err(storage)
        })();
        let failure = outcome.err();
        for finish in finishers {
            finish(failure.as_ref());
        }
        if failure.is_none() && published_any {
            self.published.notify_waiters();
        }
        failure.map_or(Ok(()), Err)
    }

    /// Applies one operation inside the batch's transaction; the returned closure sends
    /// its reply once the commit is known (an error then replaces the result).
    fn apply(&mut self, txn: &WriteTransaction, op: Op) -> Finish {
        fn finish<T: Send + 'static>(reply: oneshot::Sender<Result<T, BusError>>, result: Result<T, BusError>) -> Finish {
            Box::new(move |failure: Option<&BusError>| {
                let result = match failure {
                    Some(e) => Err(e.clone()),
                    None => result,
                };
                let _ = reply.send(result);
            })
        }
        match op {
            Op::Publish { topic, meta, body, trace, reply } => {
                let id = self.next_id;
                self.next_id += 1;
                let result = publish(txn, id, &topic, &meta, &body, trace.as_deref()).map(|_| id);
                finish(reply, result)
            }
            Op::Fetch { topic, max, lease_ms, reply } => finish(reply, fetch(txn, &topic, max, lease_ms)),
            Op::Ack { id, reply } => finish(reply, ack(txn, id)),
            Op::Retry { id, meta, delay_ms, reply } => finish(reply, retry(txn, id, &meta, delay_ms)),
            Op::Expedite { topic, matches, reply } => finish(reply, expedite(txn, &topic, &matches)),
        }
    }
}

fn publish(txn: &WriteTransaction, id: u64, topic: &str, meta: &[u8], body: &[u8], trace: Option<&str>) -> Result<(), BusError> {
    let now = now_ms();
    let info = Info { visible_at: now, deliveries: 0, published_at: now, leased: false, topic: topic.to_string() };
    txn.open_table(INFO).map_err(storage)?.insert(id, info.encode().as_slice()).map_err(storage)?;
    txn.open_table(META).map_err(storage)?.insert(id, meta).map_err(storage)?;
    txn.open_table(BODY).map_err(storage)?.insert(id, body).map_err(storage)?;
    txn.open_table(READY).map_err(storage)?.insert((topic, now, id), ()).map_err(storage)?;
    if let Some(trace) = trace {
        txn.open_table(TRACE).map_err(storage)?.insert(id, trace).map_err(storage)?;
    }
    Ok(())
}

fn fetch(txn: &WriteTransaction, topic: &str, max: usize, lease_ms: u64) -> Result<Fetched, BusError> {
    let now = now_ms();
    let mut ready = txn.open_table(READY).map_err(storage)?;
    let mut info_table = txn.open_table(INFO).map_err(storage)?;
    let meta_table = txn.open_table(META).map_err(storage)?;
    let body_table = txn.open_table(BODY).map_err(storage)?;
    let trace_table = txn.open_table(TRACE).map_err(storage)?;
    let due: Vec<(u64, u64)> = ready
        .range((topic, 0, 0)..=(topic, now, u64::MAX))
        .map_err(storage)?
        .take(max)
        .map(|row| row.map(|(k, _)| (k.value().1, k.value().2)))
        .collect::<Result<_, _>>()
        .map_err(storage)?;
    let mut deliveries = Vec::with_capacity(due.len());
    for (visible_at, id) in due {
        ready.remove((topic, visible_at, id)).map_err(storage)?;
        let Some(raw) = info_table.get(id).map_err(storage)?.map(|v| v.value().to_vec()) else { continue };
        let mut info = Info::decode(&raw)?;
        info.visible_at = now + lease_ms;
        info.deliveries += 1;
        info.leased = true;
        info_table.insert(id, info.encode().as_slice()).map_err(storage)?;
        ready.insert((topic, info.visible_at, id), ()).map_err(storage)?;
        let meta = meta_table.get(id).map_err(storage)?.map(|v| v.value().to_vec()).unwrap_or_default();
        let body = body_table.get(id).map_err(storage)?.map(|v| v.value().to_vec()).unwrap_or_default();
        let trace_parent = trace_table.get(id).map_err(storage)?.map(|v| v.value().to_string());
        deliveries.push(Delivery { id, deliveries: info.deliveries, published_at_ms: info.published_at, meta, body, trace_parent });
    }
    let next_visible_at = ready
        .range((topic, 0, 0)..=(topic, u64::MAX, u64::MAX))
        .map_err(storage)?
        .next()
        .transpose()
        .map_err(storage)?
        .map(|(k, _)| k.value().1);
    Ok(Fetched { deliveries, next_visible_at })
}

fn ack(txn: &WriteTransaction, id: u64) -> Result<(), BusError> {
    let mut info_table = txn.open_table(INFO).map_err(storage)?;
    let Some(raw) = info_table.remove(id).map_err(storage)?.map(|v| v.value().to_vec()) else { return Ok(()) };
    let info = Info::decode(&raw)?;
    txn.open_table(READY).map_err(storage)?.remove((info.topic.as_str(), info.visible_at, id)).map_err(storage)?;
    txn.open_table(META).map_err(storage)?.remove(id).map_err(storage)?;
    txn.open_table(BODY).map_err(storage)?.remove(id).map_err(storage)?;
    txn.open_table(TRACE).map_err(storage)?.remove(id).map_err(storage)?;
    Ok(())
}

fn retry(txn: &WriteTransaction, id: u64, meta: &[u8], delay_ms: u64) -> Result<(), BusError> {
    let mut info_table = txn.open_table(INFO).map_err(storage)?;
    let Some(raw) = info_table.get(id).map_err(storage)?.map(|v| v.value().to_vec()) else {
        return Err(BusError::Storage(format!("message {id} is not in the queue")));
    };
    let mut info = Info::decode(&raw)?;
    let mut ready = txn.open_table(READY).map_err(storage)?;
    ready.remove((info.topic.as_str(), info.visible_at, id)).map_err(storage)?;
    info.visible_at = now_ms() + delay_ms;
    info.leased = false;
    ready.insert((info.topic.as_str(), info.visible_at, id), ()).map_err(storage)?;
    info_table.insert(id, info.encode().as_slice()).map_err(storage)?;
    txn.open_table(META).map_err(storage)?.insert(id, meta).map_err(storage)?;
    Ok(())
}

/// Makes the delayed (not leased) messages of `topic` whose metadata matches visible now.
fn expedite(txn: &WriteTransaction, topic: &str, matches: &crate::MetaFilter) -> Result<usize, BusError> {
    let now = now_ms();
    let mut ready = txn.open_table(READY).map_err(storage)?;
    let mut info_table = txn.open_table(INFO).map_err(storage)?;
    let meta_table = txn.open_table(META).map_err(storage)?;
    let waiting: Vec<(u64, u64)> = ready
        .range((topic, now + 1, 0)..=(topic, u64::MAX, u64::MAX))
        .map_err(storage)?
        .map(|row| row.map(|(k, _)| (k.value().1, k.value().2)))
        .collect::<Result<_, _>>()
        .map_err(storage)?;
    let mut moved = 0;
    for (visible_at, id) in waiting {
        let Some(raw) = info_table.get(id).map_err(storage)?.map(|v| v.value().to_vec()) else { continue };
        let mut info = Info::decode(&raw)?;
        let meta = meta_table.get(id).map_err(storage)?.map(|v| v.value().to_vec()).unwrap_or_default();
        // A leased message is being worked on: making it visible would deliver it twice.
        if info.leased || !matches(&meta) {
            continue;
        }
        ready.remove((topic, visible_at, id)).map_err(storage)?;
        info.visible_at = now;
        ready.insert((topic, now, id), ()).map_err(storage)?;
        info_table.insert(id, info.encode().as_slice()).map_err(storage)?;
        moved += 1;
    }
    Ok(moved)
}

impl Bus for EmbeddedBus {
    async fn event(&self, subject: &str, payload: Vec<u8>) {
        // No subscriber is not an error: nobody is counting.
        let _ = self.events.send(crate::Event { subject: subject.to_string(), payload });
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
