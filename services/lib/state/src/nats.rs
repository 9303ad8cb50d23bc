//! The NATS store: one JetStream key-value bucket. TTLs are the server's own per-message
//! TTL (nats-server ≥ 2.11, `Nats-TTL`, whole seconds); compare-and-set is JetStream's
//! expected-last-subject-sequence; counters are compare-and-set loops (JetStream has
//! no atomic add on a KV value).

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::consumer::push::OrderedConfig;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::kv::{Config, Operation};
use async_nats::jetstream::{self, kv};
use futures_util::StreamExt;

use crate::{Store, StoreError, StoreFuture, StoreResult, check_key, check_prefix, check_value};

pub struct NatsStore {
    kv: kv::Store,
    jetstream: jetstream::Context,
    subject_prefix: String,
}

/// Attempts of a counter's compare-and-set loop before giving up.
const MAX_CAS_ATTEMPTS: usize = 1000;

fn backend<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Backend { backend: "nats", message: e.to_string() }
}

/// What a conditional write found.
enum Written {
    Yes,
    Conflict,
}

impl NatsStore {
    /// Connects and opens (or creates) the bucket, with per-message TTLs enabled.
    pub async fn connect(url: &str, bucket: &str, replicas: usize) -> StoreResult<Self> {
        Self::connect_with(url, bucket, replicas, None, None).await
    }

    /// With a credentials file and/or a CA for the server's certificate (TLS required).
    pub async fn connect_with(
        url: &str,
        bucket: &str,
        replicas: usize,
        credentials_file: Option<&std::path::Path>,
        ca_file: Option<&std::path::Path>,
    ) -> StoreResult<Self> {
        let client = rempart_nats::connect(url, credentials_file, ca_file).await.map_err(backend)?;
        let jetstream = jetstream::new(client);
        let config = Config {
            bucket: bucket.to_string(),
            history: 1,
            num_replicas: replicas.max(1),
            max_value_size: i32::try_from(crate::MAX_VALUE_BYTES).unwrap_or(i32::MAX),
            limit_markers: Some(Duration::from_secs(1)),
            ..Default::default()
        };
        let kv = rempart_nats::patiently("state bucket", || jetstream.create_or_update_key_value(config.clone()))
            .await
            .map_err(|e| backend(format!("bucket {bucket}: {e}")))?;
        Ok(NatsStore { subject_prefix: format!("$KV.{bucket}."), kv, jetstream })
    }

    /// The current value and the revision to expect when replacing it (0: never
    /// written; a delete marker's revision when deleted or expired).
    async fn current(&self, key: &str) -> StoreResult<(Option<Vec<u8>>, u64)> {
        match self.kv.entry(key).await.map_err(backend)? {
            Some(entry) if entry.operation == Operation::Put => Ok((Some(entry.value.to_vec()), entry.revision)),
            Some(entry) => Ok((None, entry.revision)),
            None => Ok((None, 0)),
        }
    }

    /// Publishes a value, optionally only if the key's last revision is `expected`.
    async fn write(&self, key: &str, value: &[u8], ttl: Option<Duration>, expected: Option<u64>) -> StoreResult<Written> {
        let mut headers = HeaderMap::new();
        if let Some(revision) = expected {
            headers.insert("Nats-Expected-Last-Subject-Sequence", revision.to_string().as_str());
        }
        if let Some(ttl) = ttl {
            // The server counts in whole seconds; never round a TTL down to "forever".
            headers.insert("Nats-TTL", format!("{}s", ttl.as_secs().max(1) + u64::from(ttl.subsec_nanos() > 0)).as_str());
        }
        let subject = format!("{}{key}", self.subject_prefix);
        let ack = self.jetstream.publish_with_headers(subject, headers, value.to_vec().into()).await.map_err(backend)?;
        match ack.await {
            Ok(_) => Ok(Written::Yes),
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => Ok(Written::Conflict),
            Err(e) => Err(backend(e)),
        }
    }
}

impl Store for NatsStore {
    fn backend(&self) -> &'static str {
        "nats"
    }

    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            check_key(key)?;
            Ok(self.kv.get(key).await.map_err(backend)?.map(|b| b.to_vec()))
        })
    }

    fn get_many<'a>(&'a self, keys: &'a [String]) -> StoreFuture<'a, Vec<Option<Vec<u8>>>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(keys.len());
            for key in keys {
                out.push(self.get(key).await?);
            }
            Ok(out)
        })
    }

    fn put<'a>(&'a self, key: &'a str, value: &'a [u8], ttl: Option<Duration>) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            check_key(key)?;
            check_value(key, value)?;
            self.write(key, value, ttl, None).await.map(drop)
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
            let (current, revision) = self.current(key).await?;
            if current.as_deref() != expected {
                return Ok(false);
            }
            Ok(matches!(self.write(key, value, ttl, Some(revision)).await?, Written::Yes))
        })
    }

    fn add<'a>(&'a self, deltas: &'a [(String, i64)]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            deltas.iter().try_for_each(|(k, _)| check_key(k))?;
            for (key, delta) in deltas {
                let mut attempts = 0;
                loop {
                    let (current, revision) = self.current(key).await?;
                    let sum = crate::counter(key, current.as_deref())?.wrapping_add(*delta);
                    if let Written::Yes = self.write(key, &sum.to_le_bytes(), None, Some(revision)).await? {
                        break;
                    }
                    attempts += 1;
                    if attempts >= MAX_CAS_ATTEMPTS {
                        return Err(backend(format!("counter {key}: too much contention")));
                    }
                }
            }
            Ok(())
        })
    }

    fn scan_prefix<'a>(&'a self, prefix: &'a str, limit: usize) -> StoreFuture<'a, Vec<(String, Vec<u8>)>> {
        Box::pin(async move {
            check_prefix(prefix)?;
            // The last value of every matching key, then stop once nothing is pending.
            let consumer = self
                .kv
                .stream
                .create_consumer(OrderedConfig {
                    deliver_subject: self.jetstream.client().new_inbox(),
                    filter_subject: format!("{}{prefix}>", self.subject_prefix),
                    deliver_policy: DeliverPolicy::LastPerSubject,
                    ..Default::default()
                })
                .await
                .map_err(backend)?;
            let name = consumer.cached_info().name.clone();
            let read = async {
                let mut out = Vec::new();
                if consumer.cached_info().num_pending == 0 {
                    return Ok(out);
                }
                let mut messages = consumer.messages().await.map_err(backend)?;
                while let Some(message) = messages.next().await {
                    let message = message.map_err(backend)?;
                    let pending = message.info().map_err(backend)?.pending;
                    // A delete or purge (KV-Operation) or an expiry marker left by the server.
                    let deleted =
                        message.headers.as_ref().is_some_and(|h| h.get("KV-Operation").is_some() || h.get("Nats-Marker-Reason").is_some());
                    if !deleted && let Some(key) = message.subject.as_str().strip_prefix(&self.subject_prefix) {
                        out.push((key.to_string(), message.payload.to_vec()));
                    }
                    if pending == 0 {
                        break;
                    }
                }
                Ok(out)
            };
            let read: StoreResult<Vec<(String, Vec<u8>)>> = read.await;
            // The server would keep the ephemeral consumer 30 s after its last use: a node
            // scanning several times a second would reach the stream's consumer limit
            // (seen: "maximum consumers limit reached", every scan refused).
            if let Err(e) = self.kv.stream.delete_consumer(&name).await {
                tracing::debug!(consumer = %name, error = %e, "scan consumer not deleted; the server expires it");
            }
            let mut out = read?;
            out.sort();
            out.truncate(limit);
            Ok(out)
        })
    }

    fn nats_client(&self) -> Option<async_nats::Client> {
        Some(self.jetstream.client())
    }

    fn delete<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            check_key(key)?;
            self.kv.delete(key).await.map_err(backend)
        })
    }
}
