//! The queue's one writer thread: it takes every operation waiting (up to
//! `MAX_BATCH`), applies them in one write transaction, commits once (one fsync for
//! all), then answers each caller; after a failed write it reopens the file.

use std::sync::{Arc, mpsc};

use redb::{Database, Durability, ReadableTable, WriteTransaction};
use tokio::sync::{Notify, oneshot};

use super::{BODY, INFO, Info, MAX_BATCH, META, READY, SharedDb, TRACE, now_ms, read_db, storage};
use crate::{BusError, Delivery, MessageId};

pub(super) enum Op {
    Publish { topic: String, meta: Vec<u8>, body: Vec<u8>, trace: Option<String>, reply: oneshot::Sender<Result<MessageId, BusError>> },
    Fetch { topic: String, max: usize, lease_ms: u64, reply: oneshot::Sender<Result<Fetched, BusError>> },
    Ack { id: MessageId, reply: oneshot::Sender<Result<(), BusError>> },
    Retry { id: MessageId, meta: Vec<u8>, delay_ms: u64, reply: oneshot::Sender<Result<(), BusError>> },
    Expedite { topic: String, matches: crate::MetaFilter, reply: oneshot::Sender<Result<usize, BusError>> },
    Take { topic: String, id: MessageId, reply: oneshot::Sender<Result<crate::Taken, BusError>> },
}

impl Op {
    fn settle(&self) -> Option<Settle> {
        match self {
            Op::Ack { id, .. } => Some(Settle::Ack(*id)),
            Op::Retry { id, meta, delay_ms, .. } => Some(Settle::Retry { id: *id, meta: meta.clone(), delay_ms: *delay_ms }),
            _ => None,
        }
    }

    /// Answers the operation with `e` without doing it.
    fn refuse(self, e: &BusError) {
        let e = e.clone();
        match self {
            Op::Publish { reply, .. } => drop(reply.send(Err(e))),
            Op::Fetch { reply, .. } => drop(reply.send(Err(e))),
            Op::Ack { reply, .. } | Op::Retry { reply, .. } => drop(reply.send(Err(e))),
            Op::Expedite { reply, .. } => drop(reply.send(Err(e))),
            Op::Take { reply, .. } => drop(reply.send(Err(e))),
        }
    }
}

pub(super) struct Fetched {
    pub(super) deliveries: Vec<Delivery>,
    /// When the next message of the topic becomes visible, if any is waiting.
    pub(super) next_visible_at: Option<u64>,
}

/// Returns the next free id and, at start (`clear_leases`), makes the messages leased
/// by a previous process visible. A reopen in the same process keeps the leases: their
/// consumers are still at work.
pub(super) fn recover(db: &Database, clear_leases: bool) -> Result<u64, BusError> {
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

pub(super) struct Writer {
    db: SharedDb,
    next_id: u64,
    fsync: bool,
    published: Arc<Notify>,
    /// A write failed: the file must be reopened before the next batch.
    broken: bool,
    /// Acks and retries whose commit failed. Their consumer has moved on (it was told
    /// the write failed) but the message is still leased: they are applied again once
    /// the file is reopened, or a deferred message would wait for its lease to end.
    unrecorded: Vec<Settle>,
}

/// The end of a lease: what an ack or a retry records.
#[derive(Clone)]
enum Settle {
    Ack(MessageId),
    Retry { id: MessageId, meta: Vec<u8>, delay_ms: u64 },
}

/// Most unrecorded settlements kept; past it the rest wait for their lease to end.
const MAX_UNRECORDED: usize = 100_000;

/// A reply to send once the batch's commit has succeeded.
type Finish = Box<dyn FnOnce(Option<&BusError>) + Send>;

impl Writer {
    /// Starts the writer thread on an open database; operations go to the sender.
    pub(super) fn start(db: SharedDb, next_id: u64, fsync: bool, published: Arc<Notify>) -> Result<mpsc::Sender<Op>, BusError> {
        let (ops, rx) = mpsc::channel();
        let writer = Writer { db, next_id, fsync, published, broken: false, unrecorded: Vec::new() };
        std::thread::Builder::new()
            .name("queue-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| BusError::Storage(format!("queue writer thread: {e}")))?;
        Ok(ops)
    }

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
            let settles: Vec<Settle> = batch.iter().filter_map(Op::settle).collect();
            let committed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.commit_batch(batch)));
            if !matches!(committed, Ok(Ok(()))) {
                let room = MAX_UNRECORDED.saturating_sub(self.unrecorded.len());
                self.unrecorded.extend(settles.into_iter().take(room));
            }
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

    /// Opens the queue file again (redb refuses everything after a failed write), then
    /// records the acks and retries that failed meanwhile.
    fn reopen(&mut self) -> Result<(), BusError> {
        let db = self.db.reopen().map_err(|e| BusError::Storage(e.to_string()))?;
        let next_id = recover(&db, false)?;
        self.next_id = self.next_id.max(next_id);
        if !self.unrecorded.is_empty() {
            let txn = db.begin_write().map_err(storage)?;
            for settle in &self.unrecorded {
                // A message settled since (or never leased again) is simply absent.
                let _ = match settle {
                    Settle::Ack(id) => ack(&txn, *id),
                    Settle::Retry { id, meta, delay_ms } => retry(&txn, *id, meta, *delay_ms),
                };
            }
            txn.commit().map_err(storage)?;
            tracing::info!(count = self.unrecorded.len(), "acks and retries that failed on the broken file are recorded");
            self.unrecorded.clear();
        }
        self.broken = false;
        rempart_telemetry::metrics().queue_writable(true);
        tracing::info!(path = %self.db.path().display(), "queue file reopened; the queue works again");
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
            Op::Take { topic, id, reply } => finish(reply, take(txn, &topic, id)),
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

/// Removes a message no worker holds; gives its metadata and body.
fn take(txn: &WriteTransaction, topic: &str, id: u64) -> Result<crate::Taken, BusError> {
    let info = match txn.open_table(INFO).map_err(storage)?.get(id).map_err(storage)? {
        Some(raw) => Info::decode(raw.value())?,
        None => return Ok(None),
    };
    if info.topic != topic {
        return Ok(None);
    }
    if info.leased {
        return Err(BusError::Busy(id));
    }
    let meta = txn.open_table(META).map_err(storage)?.get(id).map_err(storage)?.map(|v| v.value().to_vec()).unwrap_or_default();
    let body = txn.open_table(BODY).map_err(storage)?.get(id).map_err(storage)?.map(|v| v.value().to_vec()).unwrap_or_default();
    ack(txn, id)?;
    Ok(Some((meta, body)))
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
