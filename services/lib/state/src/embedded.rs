//! The embedded store: one redb file. Reads run on the caller; writes go to one
//! writer thread that applies everything waiting in one transaction and one fsync
//! (group commit), so concurrent sessions share the cost of durability. After a
//! failed write (a full disk) the writer reopens the file before its next batch, so the
//! store works again by itself once space returns.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use redb::{Database, Durability, ReadableTable, TableDefinition, WriteTransaction};
use rempart_redb_file::RedbFile;
use tokio::sync::oneshot;

use crate::{Store, StoreError, StoreFuture, StoreResult, check_key, check_prefix, check_value, now_ms};

const VALUES: TableDefinition<&str, &[u8]> = TableDefinition::new("values");
/// key → deadline (ms since the epoch) for values put with a TTL.
const EXPIRES: TableDefinition<&str, u64> = TableDefinition::new("expires");
/// (deadline, key): what the sweeper removes first.
const BY_DEADLINE: TableDefinition<(u64, &str), ()> = TableDefinition::new("by_deadline");

const MAX_BATCH: usize = 1024;
const SWEEP_EVERY: Duration = Duration::from_secs(30);
const SWEEP_MAX: usize = 10_000;

pub struct EmbeddedStore {
    file: Arc<RedbFile>,
    writes: mpsc::Sender<Write>,
}

enum Write {
    Put { key: String, value: Vec<u8>, ttl: Option<Duration>, reply: oneshot::Sender<StoreResult<()>> },
    Cas { key: String, expected: Option<Vec<u8>>, value: Vec<u8>, ttl: Option<Duration>, reply: oneshot::Sender<StoreResult<bool>> },
    Add { deltas: Vec<(String, i64)>, reply: oneshot::Sender<StoreResult<()>> },
    Delete { key: String, reply: oneshot::Sender<StoreResult<()>> },
}

fn backend<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Backend { backend: "embedded", message: e.to_string() }
}

impl EmbeddedStore {
    pub fn open(path: &Path, fsync: bool) -> StoreResult<Self> {
        let file = Arc::new(RedbFile::open(path).map_err(backend)?);
        let txn = current(&file)?.begin_write().map_err(backend)?;
        txn.open_table(VALUES).map_err(backend)?;
        txn.open_table(EXPIRES).map_err(backend)?;
        txn.open_table(BY_DEADLINE).map_err(backend)?;
        txn.commit().map_err(backend)?;
        let (writes, rx) = mpsc::channel();
        let writer_file = file.clone();
        std::thread::Builder::new().name("state-writer".into()).spawn(move || write_loop(&writer_file, fsync, &rx)).map_err(backend)?;
        Ok(EmbeddedStore { file, writes })
    }

    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<StoreResult<T>>) -> Write) -> StoreResult<T> {
        let (tx, rx) = oneshot::channel();
        self.writes.send(make(tx)).map_err(|_| backend("the writer thread stopped"))?;
        rx.await.map_err(|_| backend("the writer thread stopped"))?
    }

    fn read(&self, keys: &[&str]) -> StoreResult<Vec<Option<Vec<u8>>>> {
        let txn = current(&self.file)?.begin_read().map_err(backend)?;
        let values = txn.open_table(VALUES).map_err(backend)?;
        let expires = txn.open_table(EXPIRES).map_err(backend)?;
        let now = now_ms();
        keys.iter()
            .map(|key| {
                if expires.get(*key).map_err(backend)?.is_some_and(|d| d.value() <= now) {
                    return Ok(None);
                }
                Ok(values.get(*key).map_err(backend)?.map(|v| v.value().to_vec()))
            })
            .collect()
    }
}

impl Store for EmbeddedStore {
    fn backend(&self) -> &'static str {
        "embedded"
    }

    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            check_key(key)?;
            Ok(self.read(&[key])?.pop().flatten())
        })
    }

    fn get_many<'a>(&'a self, keys: &'a [String]) -> StoreFuture<'a, Vec<Option<Vec<u8>>>> {
        Box::pin(async move {
            keys.iter().try_for_each(|k| check_key(k))?;
            self.read(&keys.iter().map(String::as_str).collect::<Vec<_>>())
        })
    }

    fn put<'a>(&'a self, key: &'a str, value: &'a [u8], ttl: Option<Duration>) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            check_key(key)?;
            check_value(key, value)?;
            self.call(|reply| Write::Put { key: key.to_string(), value: value.to_vec(), ttl, reply }).await
        })
    }

    fn compare_and_set<'a>(
        &'a self,
        key: &'a str,
        expected: Option<&'a [u8]>,
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            check_key(key)?;
            check_value(key, value)?;
            let (key, expected, value) = (key.to_string(), expected.map(<[u8]>::to_vec), value.to_vec());
            self.call(|reply| Write::Cas { key, expected, value, ttl, reply }).await
        })
    }

    fn add<'a>(&'a self, deltas: &'a [(String, i64)]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            deltas.iter().try_for_each(|(k, _)| check_key(k))?;
            self.call(|reply| Write::Add { deltas: deltas.to_vec(), reply }).await
        })
    }

    fn scan_prefix<'a>(&'a self, prefix: &'a str, limit: usize) -> StoreFuture<'a, Vec<(String, Vec<u8>)>> {
        Box::pin(async move {
            check_prefix(prefix)?;
            let txn = current(&self.file)?.begin_read().map_err(backend)?;
            let values = txn.open_table(VALUES).map_err(backend)?;
            let expires = txn.open_table(EXPIRES).map_err(backend)?;
            let now = now_ms();
            let mut out = Vec::new();
            for row in values.range(prefix..).map_err(backend)? {
                let (key, value) = row.map_err(backend)?;
                let key = key.value();
                if !key.starts_with(prefix) || out.len() >= limit {
                    break;
                }
                if expires.get(key).map_err(backend)?.is_some_and(|d| d.value() <= now) {
                    continue;
                }
                out.push((key.to_string(), value.value().to_vec()));
            }
            Ok(out)
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            check_key(key)?;
            self.call(|reply| Write::Delete { key: key.to_string(), reply }).await
        })
    }
}

/// The open database, or an error while the writer reopens it.
fn current(file: &RedbFile) -> StoreResult<Arc<Database>> {
    file.get().ok_or_else(|| backend("the state file is being reopened after a write failure"))
}

/// The writer thread: batches of writes, one commit each; the sweeper when idle. A
/// failed batch (an error or a panic inside the storage engine) marks the file broken:
/// it is reopened before the next one.
fn write_loop(file: &RedbFile, fsync: bool, rx: &mpsc::Receiver<Write>) {
    let mut last_sweep = std::time::Instant::now();
    let mut broken = false;
    loop {
        let batch = match rx.recv_timeout(SWEEP_EVERY) {
            Ok(first) => {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(write) => batch.push(write),
                        Err(_) => break,
                    }
                }
                batch
            }
            Err(mpsc::RecvTimeoutError::Timeout) => Vec::new(),
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        if broken {
            match file.reopen() {
                Ok(_) => {
                    broken = false;
                    tracing::info!("the state store works again");
                }
                Err(e) => {
                    let e = backend(e);
                    for write in batch {
                        write.refuse(&e);
                    }
                    continue;
                }
            }
        }
        let Some(db) = file.get() else { continue };
        let sweep_due = last_sweep.elapsed() > SWEEP_EVERY;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let committed = if batch.is_empty() { Ok(()) } else { apply_batch(&db, fsync, batch) };
            if sweep_due && let Err(e) = sweep(&db) {
                tracing::warn!(error = %e, "state sweeper");
            }
            committed
        }));
        if sweep_due {
            last_sweep = std::time::Instant::now();
        }
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, "state write failed; the state file will be reopened");
                broken = true;
            }
            Err(panic) => {
                let panic = rempart_telemetry::metrics().panic("state_writer", &*panic);
                tracing::error!(panic, "the state writer panicked; the state file will be reopened");
                broken = true;
            }
        }
    }
}

impl Write {
    /// Answers the write with `e` without doing it.
    fn refuse(self, e: &StoreError) {
        let e = || backend(e);
        match self {
            Write::Put { reply, .. } | Write::Add { reply, .. } | Write::Delete { reply, .. } => drop(reply.send(Err(e()))),
            Write::Cas { reply, .. } => drop(reply.send(Err(e()))),
        }
    }
}

/// A reply to send once the batch's commit is known.
enum Reply {
    Unit(oneshot::Sender<StoreResult<()>>, StoreResult<()>),
    Bool(oneshot::Sender<StoreResult<bool>>, StoreResult<bool>),
}

/// Applies a batch in one transaction and answers each write; the commit's error, if
/// any, is also returned (the file must then be reopened).
fn apply_batch(db: &Database, fsync: bool, batch: Vec<Write>) -> StoreResult<()> {
    let mut replies = Vec::with_capacity(batch.len());
    let committed = (|| -> StoreResult<()> {
        let mut txn = db.begin_write().map_err(backend)?;
        txn.set_durability(if fsync { Durability::Immediate } else { Durability::Eventual });
        for write in batch {
            match write {
                Write::Put { key, value, ttl, reply } => {
                    let result = set(&txn, &key, &value, ttl);
                    replies.push(Reply::Unit(reply, result));
                }
                Write::Cas { key, expected, value, ttl, reply } => {
                    let result = visible(&txn, &key).and_then(|current| {
                        if current.as_deref() == expected.as_deref() { set(&txn, &key, &value, ttl).map(|()| true) } else { Ok(false) }
                    });
                    replies.push(Reply::Bool(reply, result));
                }
                Write::Add { deltas, reply } => {
                    let result = deltas.iter().try_for_each(|(key, delta)| {
                        let current = crate::counter(key, visible(&txn, key)?.as_deref())?;
                        set(&txn, key, &current.wrapping_add(*delta).to_le_bytes(), None)
                    });
                    replies.push(Reply::Unit(reply, result));
                }
                Write::Delete { key, reply } => {
                    let result = remove(&txn, &key);
                    replies.push(Reply::Unit(reply, result));
                }
            }
        }
        txn.commit().map_err(backend)
    })();
    for reply in replies {
        // A failed commit fails every write of the batch, whatever it returned.
        let failed = || committed.as_ref().err().map(backend);
        match reply {
            Reply::Unit(tx, result) => drop(tx.send(failed().map_or(result, Err))),
            Reply::Bool(tx, result) => drop(tx.send(failed().map_or(result, Err))),
        }
    }
    committed
}

/// The value as readers see it (an expired value is absent).
fn visible(txn: &WriteTransaction, key: &str) -> StoreResult<Option<Vec<u8>>> {
    let expires = txn.open_table(EXPIRES).map_err(backend)?;
    if expires.get(key).map_err(backend)?.is_some_and(|d| d.value() <= now_ms()) {
        return Ok(None);
    }
    let values = txn.open_table(VALUES).map_err(backend)?;
    Ok(values.get(key).map_err(backend)?.map(|v| v.value().to_vec()))
}

fn set(txn: &WriteTransaction, key: &str, value: &[u8], ttl: Option<Duration>) -> StoreResult<()> {
    clear_deadline(txn, key)?;
    txn.open_table(VALUES).map_err(backend)?.insert(key, value).map_err(backend)?;
    if let Some(ttl) = ttl {
        let deadline = now_ms().saturating_add(ttl.as_millis() as u64);
        txn.open_table(EXPIRES).map_err(backend)?.insert(key, deadline).map_err(backend)?;
        txn.open_table(BY_DEADLINE).map_err(backend)?.insert((deadline, key), ()).map_err(backend)?;
    }
    Ok(())
}

fn remove(txn: &WriteTransaction, key: &str) -> StoreResult<()> {
    clear_deadline(txn, key)?;
    txn.open_table(VALUES).map_err(backend)?.remove(key).map_err(backend)?;
    Ok(())
}

fn clear_deadline(txn: &WriteTransaction, key: &str) -> StoreResult<()> {
    let old = txn.open_table(EXPIRES).map_err(backend)?.remove(key).map_err(backend)?.map(|d| d.value());
    if let Some(deadline) = old {
        txn.open_table(BY_DEADLINE).map_err(backend)?.remove((deadline, key)).map_err(backend)?;
    }
    Ok(())
}

/// Removes values whose deadline has passed (readers already ignore them).
fn sweep(db: &Database) -> StoreResult<usize> {
    let now = now_ms();
    let txn = db.begin_write().map_err(backend)?;
    let expired: Vec<(u64, String)> = {
        let index = txn.open_table(BY_DEADLINE).map_err(backend)?;
        let mut expired = Vec::new();
        for row in index.range((0u64, "")..(now, "")).map_err(backend)?.take(SWEEP_MAX) {
            let (entry, _) = row.map_err(backend)?;
            let (deadline, key) = entry.value();
            expired.push((deadline, key.to_string()));
        }
        expired
    };
    for (_, key) in &expired {
        remove(&txn, key)?;
    }
    txn.commit().map_err(backend)?;
    Ok(expired.len())
}
