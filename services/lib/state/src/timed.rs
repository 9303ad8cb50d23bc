//! Every store operation timed into `rempart_store_operation_duration_seconds`, by
//! backend and operation: one decorator instead of timing code in each backend.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{Store, StoreFuture, StoreResult};

pub struct Timed(pub Arc<dyn Store>);

fn timed<'a, T: 'a>(
    backend: &'static str,
    operation: &'static str,
    future: impl Future<Output = StoreResult<T>> + Send + 'a,
) -> StoreFuture<'a, T> {
    Box::pin(async move {
        let started = Instant::now();
        let result = future.await;
        rempart_telemetry::metrics().store_operation(backend, operation, started.elapsed());
        result
    })
}

impl Store for Timed {
    fn backend(&self) -> &'static str {
        self.0.backend()
    }

    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        timed(self.backend(), "get", self.0.get(key))
    }

    fn get_many<'a>(&'a self, keys: &'a [String]) -> StoreFuture<'a, Vec<Option<Vec<u8>>>> {
        timed(self.backend(), "get_many", self.0.get_many(keys))
    }

    fn put<'a>(&'a self, key: &'a str, value: &'a [u8], ttl: Option<Duration>) -> StoreFuture<'a, ()> {
        timed(self.backend(), "put", self.0.put(key, value, ttl))
    }

    fn compare_and_set<'a>(
        &'a self,
        key: &'a str,
        expected: Option<&'a [u8]>,
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> StoreFuture<'a, bool> {
        timed(self.backend(), "compare_and_set", self.0.compare_and_set(key, expected, value, ttl))
    }

    fn add<'a>(&'a self, deltas: &'a [(String, i64)]) -> StoreFuture<'a, ()> {
        timed(self.backend(), "add", self.0.add(deltas))
    }

    fn scan_prefix<'a>(&'a self, prefix: &'a str, limit: usize) -> StoreFuture<'a, Vec<(String, Vec<u8>)>> {
        timed(self.backend(), "scan_prefix", self.0.scan_prefix(prefix, limit))
    }

    fn delete<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        timed(self.backend(), "delete", self.0.delete(key))
    }

    fn nats_client(&self) -> Option<async_nats::Client> {
        self.0.nats_client()
    }
}
