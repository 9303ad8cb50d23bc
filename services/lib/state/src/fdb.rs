//! The FoundationDB store (cargo feature `foundationdb`). Keys live in the tuple
//! subspace ("rempart"): ("v", key) → value, ("x", key) → deadline of a value put
//! with a TTL, ("e", deadline, key) → () for the sweeper. Counters are FoundationDB's
//! atomic ADD (8-byte little-endian), so concurrent adds never conflict.
//!
//! Tests run only where `FDB_CLUSTER_FILE` names a running cluster (see the README).

use std::sync::OnceLock;
use std::time::Duration;

use foundationdb::options::MutationType;
use foundationdb::tuple::Subspace;
use foundationdb::{Database, FdbBindingError, RangeOption};

use crate::{Store, StoreError, StoreFuture, StoreResult, check_key, check_prefix, check_value, now_ms};

/// The client network thread: started once per process, never stopped.
static NETWORK: OnceLock<foundationdb::api::NetworkAutoStop> = OnceLock::new();

const SWEEP_EVERY: Duration = Duration::from_secs(30);
const SWEEP_MAX: usize = 10_000;

pub struct FdbStore {
    db: std::sync::Arc<Database>,
    root: Subspace,
}

fn backend<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Backend { backend: "foundationdb", message: e.to_string() }
}

impl FdbStore {
    /// Connects with `cluster_file` (default: FDB_CLUSTER_FILE or the system's).
    pub fn open(cluster_file: Option<&std::path::Path>) -> StoreResult<Self> {
        NETWORK.get_or_init(|| {
            // SAFETY: called once per process (OnceLock), and the guard lives until exit.
            unsafe { foundationdb::boot() }
        });
        let path = cluster_file.map(|p| p.to_string_lossy().into_owned());
        let db = std::sync::Arc::new(Database::new(path.as_deref()).map_err(backend)?);
        let store = FdbStore { db, root: Subspace::from("rempart") };
        store.spawn_sweeper();
        Ok(store)
    }

    fn value_key(&self, key: &str) -> Vec<u8> {
        self.root.pack(&("v", key))
    }

    fn deadline_key(&self, key: &str) -> Vec<u8> {
        self.root.pack(&("x", key))
    }

    fn spawn_sweeper(&self) {
        let (db, root) = (self.db.clone(), self.root.clone());
        let Ok(handle) = tokio::runtime::Handle::try_current() else { return };
        handle.spawn(async move {
            loop {
                tokio::time::sleep(SWEEP_EVERY).await;
                let now = now_ms();
                let result = db
                    .run(|trx, _| {
                        let root = root.clone();
                        async move {
                            let begin = root.pack(&("e",));
                            let end = root.pack(&("e", now));
                            let mut range = RangeOption::from((begin.as_slice(), end.as_slice()));
                            range.limit = Some(SWEEP_MAX);
                            for kv in trx.get_range(&range, 1, false).await?.iter() {
                                let (_, _, key): (String, u64, String) = root.unpack(kv.key()).map_err(FdbBindingError::PackError)?;
                                trx.clear(kv.key());
                                trx.clear(&root.pack(&("x", key.as_str())));
                                trx.clear(&root.pack(&("v", key.as_str())));
                            }
                            Ok(())
                        }
                    })
                    .await;
                if let Err(e) = result {
                    tracing::warn!(error = %e, "foundationdb sweeper");
                }
            }
        });
    }

    /// Runs `closure` in a retried transaction.
    async fn run<T, F, Fut>(&self, closure: F) -> StoreResult<T>
    where
        F: Fn(foundationdb::RetryableTransaction) -> Fut,
        Fut: std::future::Future<Output = Result<T, FdbBindingError>>,
    {
        self.db.run(|trx, _| closure(trx)).await.map_err(backend)
    }
}

/// Reads a value unless its deadline has passed.
async fn visible(trx: &foundationdb::Transaction, value_key: &[u8], deadline_key: &[u8]) -> Result<Option<Vec<u8>>, FdbBindingError> {
    let (value, deadline) = futures_util::future::try_join(trx.get(value_key, false), trx.get(deadline_key, false)).await?;
    Ok(if is_past(deadline.as_deref()) { None } else { value.map(|v| v.to_vec()) })
}

/// Whether a stored deadline (8 bytes, big-endian ms) has passed.
fn is_past(deadline: Option<&[u8]>) -> bool {
    deadline.and_then(|d| d.try_into().ok()).map(u64::from_be_bytes).is_some_and(|d| d <= now_ms())
}

/// Writes a value, replacing any deadline.
async fn set(
    trx: &foundationdb::Transaction,
    root: &Subspace,
    key: &str,
    value: &[u8],
    ttl: Option<Duration>,
) -> Result<(), FdbBindingError> {
    let deadline_key = root.pack(&("x", key));
    if let Some(old) = trx.get(&deadline_key, false).await?
        && let Ok(old) = old.as_ref().try_into().map(u64::from_be_bytes)
    {
        trx.clear(&root.pack(&("e", old, key)));
    }
    trx.set(&root.pack(&("v", key)), value);
    match ttl {
        Some(ttl) => {
            let deadline = now_ms().saturating_add(ttl.as_millis() as u64);
            trx.set(&deadline_key, &deadline.to_be_bytes());
            trx.set(&root.pack(&("e", deadline, key)), b"");
        }
        None => trx.clear(&deadline_key),
    }
    Ok(())
}

impl Store for FdbStore {
    fn backend(&self) -> &'static str {
        "foundationdb"
    }

    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            check_key(key)?;
            let (vk, dk) = (self.value_key(key), self.deadline_key(key));
            self.run(|trx| {
                let (vk, dk) = (vk.clone(), dk.clone());
                async move { visible(&trx, &vk, &dk).await }
            })
            .await
        })
    }

    fn get_many<'a>(&'a self, keys: &'a [String]) -> StoreFuture<'a, Vec<Option<Vec<u8>>>> {
        Box::pin(async move {
            keys.iter().try_for_each(|k| check_key(k))?;
            let pairs: Vec<(Vec<u8>, Vec<u8>)> = keys.iter().map(|k| (self.value_key(k), self.deadline_key(k))).collect();
            self.run(|trx| {
                let pairs = pairs.clone();
                async move {
                    let reads = pairs.iter().map(|(vk, dk)| visible(&trx, vk, dk));
                    futures_util::future::try_join_all(reads).await
                }
            })
            .await
        })
    }

    fn put<'a>(&'a self, key: &'a str, value: &'a [u8], ttl: Option<Duration>) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            check_key(key)?;
            check_value(key, value)?;
            self.run(|trx| {
                let root = self.root.clone();
                async move { set(&trx, &root, key, value, ttl).await }
            })
            .await
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
            let (vk, dk) = (self.value_key(key), self.deadline_key(key));
            self.run(|trx| {
                let (vk, dk, root) = (vk.clone(), dk.clone(), self.root.clone());
                async move {
                    // The read puts the key in the conflict set: a concurrent writer
                    // makes this transaction retry, and the retry sees its value.
                    if visible(&trx, &vk, &dk).await?.as_deref() != expected {
                        return Ok(false);
                    }
                    set(&trx, &root, key, value, ttl).await?;
                    Ok(true)
                }
            })
            .await
        })
    }

    fn add<'a>(&'a self, deltas: &'a [(String, i64)]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            deltas.iter().try_for_each(|(k, _)| check_key(k))?;
            let ops: Vec<(Vec<u8>, [u8; 8])> = deltas.iter().map(|(k, d)| (self.value_key(k), d.to_le_bytes())).collect();
            self.run(|trx| {
                let ops = ops.clone();
                async move {
                    for (key, delta) in &ops {
                        trx.atomic_op(key, delta, MutationType::Add);
                    }
                    Ok(())
                }
            })
            .await
        })
    }

    fn scan_prefix<'a>(&'a self, prefix: &'a str, limit: usize) -> StoreFuture<'a, Vec<(String, Vec<u8>)>> {
        Box::pin(async move {
            check_prefix(prefix)?;
            // The tuple encoding of a string is 0x02, its bytes, 0x00: drop the
            // terminator to get every string starting with the prefix.
            let mut begin = self.root.pack(&("v", prefix));
            begin.pop();
            let mut end = begin.clone();
            end.push(0xff);
            let root = self.root.clone();
            self.run(|trx| {
                let (begin, end, root) = (begin.clone(), end.clone(), root.clone());
                async move {
                    let mut range = RangeOption::from((begin.as_slice(), end.as_slice()));
                    range.limit = Some(limit);
                    let rows: Vec<(Vec<u8>, Vec<u8>)> =
                        trx.get_range(&range, 1, false).await?.iter().map(|kv| (kv.key().to_vec(), kv.value().to_vec())).collect();
                    let mut out = Vec::with_capacity(rows.len());
                    for (raw, value) in rows {
                        let (_, key): (String, String) = root.unpack(&raw).map_err(FdbBindingError::PackError)?;
                        let deadline = trx.get(&root.pack(&("x", key.as_str())), false).await?;
                        if !is_past(deadline.as_deref()) {
                            out.push((key, value));
                        }
                    }
                    Ok(out)
                }
            })
            .await
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            check_key(key)?;
            self.run(|trx| {
                let root = self.root.clone();
                async move {
                    let deadline_key = root.pack(&("x", key));
                    if let Some(old) = trx.get(&deadline_key, false).await?
                        && let Ok(old) = old.as_ref().try_into().map(u64::from_be_bytes)
                    {
                        trx.clear(&root.pack(&("e", old, key)));
                    }
                    trx.clear(&deadline_key);
                    trx.clear(&root.pack(&("v", key)));
                    Ok(())
                }
            })
            .await
        })
    }
}
