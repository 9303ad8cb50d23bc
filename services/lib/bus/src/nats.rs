//! The bus on NATS JetStream, for clusters: one work-queue stream (file storage) whose
//! subjects are the topics, one durable pull consumer per topic shared by every relay.
//!
//! - `publish` resolves on the stream's PubAck (the message is stored, replicated as
//!   configured). A body above 512 KiB goes to the object store and the message
//!   carries its name; it is deleted once the message is acked.
//! - `fetch` leases through the consumer's ack wait (the visibility timeout): a
//!   message not acked by then is delivered again, to any relay.
//! - JetStream messages cannot change, so `retry` stores the new metadata (the
//!   per-recipient status) in a key-value bucket under the message's sequence, then
//!   naks with the delay; `fetch` reads it back from there.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::pull::Config as PullConfig;
use async_nats::jetstream::consumer::{AckPolicy, PullConsumer};
use async_nats::jetstream::message::AckKind;
use async_nats::jetstream::object_store::ObjectStore;
use async_nats::jetstream::stream::{Config as StreamConfig, RetentionPolicy, StorageType};
use async_nats::jetstream::{self, kv};
use futures_util::StreamExt;
use tokio::io::AsyncReadExt;

use crate::{Bus, BusError, DELIVER_TOPIC, Delivery, HELD_TOPIC, MessageId, QUARANTINE_TOPIC, SCAN_TOPIC};

/// Bodies larger than this go to the object store (JetStream's default message limit
/// is 1 MiB, with headers and metadata).
pub const MAX_INLINE_BODY: usize = 512 * 1024;
const STREAM: &str = "REMPART_QUEUE";
/// The events that tracking replays (limits retention: every console reads them all).
const EVENTS_STREAM: &str = "REMPART_EVENTS";
const REPLAYED: &[&str] = &[crate::TRACK_EVENTS, crate::DELIVERY_EVENTS];
const BODY_HEADER: &str = "Rempart-Body-Object";
/// Topics the stream carries.
const TOPICS: &[&str] = &[DELIVER_TOPIC, QUARANTINE_TOPIC, SCAN_TOPIC, HELD_TOPIC];

#[derive(Debug, Clone)]
pub struct NatsOptions {
    pub url: String,
    /// Copies of the stream in a NATS cluster.
    pub replicas: usize,
    pub credentials_file: Option<std::path::PathBuf>,
    /// A CA for the server's certificate; TLS is then required.
    pub ca_file: Option<std::path::PathBuf>,
    /// How long the events stream keeps tracking events (`[tracking] retention`).
    pub events_retention: Duration,
}

#[derive(Clone)]
pub struct NatsBus {
    inner: Arc<Inner>,
}

struct Inner {
    jetstream: jetstream::Context,
    stream: jetstream::stream::Stream,
    events: jetstream::stream::Stream,
    /// Metadata replaced by `retry`, by stream sequence.
    metadata: kv::Store,
    bodies: ObjectStore,
    consumers: tokio::sync::Mutex<HashMap<String, PullConsumer>>,
    /// Messages handed out and not yet acked or retried, by stream sequence.
    leased: Mutex<HashMap<MessageId, jetstream::Message>>,
}

fn storage<E: std::fmt::Display>(e: E) -> BusError {
    BusError::Storage(format!("nats: {e}"))
}

impl NatsBus {
    pub async fn connect(options: &NatsOptions) -> Result<NatsBus, BusError> {
        let client = rempart_nats::connect(&options.url, options.credentials_file.as_deref(), options.ca_file.as_deref())
            .await
            .map_err(BusError::Storage)?;
        let jetstream = jetstream::new(client);
        let replicas = options.replicas.max(1);
        // Created or updated: a stream made by an older version gains new topics.
        let stream_config = StreamConfig {
            name: STREAM.into(),
            subjects: TOPICS.iter().map(|t| t.to_string()).collect(),
            retention: RetentionPolicy::WorkQueue,
            storage: StorageType::File,
            num_replicas: replicas,
            ..Default::default()
        };
        rempart_nats::patiently("queue stream", || jetstream.create_or_update_stream(stream_config.clone())).await.map_err(storage)?;
        let stream = rempart_nats::patiently("queue stream", || jetstream.get_stream(STREAM)).await.map_err(storage)?;
        // Tracking's events, kept `events_retention`: the edge and relay publish them
        // fire and forget; a console started empty rebuilds its index from here.
        let events_config = StreamConfig {
            name: EVENTS_STREAM.into(),
            subjects: REPLAYED.iter().map(|s| s.to_string()).collect(),
            retention: RetentionPolicy::Limits,
            storage: StorageType::File,
            num_replicas: replicas,
            max_age: options.events_retention,
            ..Default::default()
        };
        rempart_nats::patiently("events stream", || jetstream.create_or_update_stream(events_config.clone())).await.map_err(storage)?;
        let events = rempart_nats::patiently("events stream", || jetstream.get_stream(EVENTS_STREAM)).await.map_err(storage)?;
        let meta_config = kv::Config { bucket: "rempart-queue-meta".into(), history: 1, num_replicas: replicas, ..Default::default() };
        let metadata = rempart_nats::patiently("queue metadata bucket", || jetstream.create_or_update_key_value(meta_config.clone()))
            .await
            .map_err(storage)?;
        let bodies = rempart_nats::patiently("body object store", || async {
            match jetstream.get_object_store("rempart-bodies").await {
                Ok(store) => Ok(store),
                Err(_) => jetstream
                    .create_object_store(jetstream::object_store::Config {
                        bucket: "rempart-bodies".into(),
                        num_replicas: replicas,
                        storage: StorageType::File,
                        ..Default::default()
                    })
                    .await
                    .map_err(storage),
            }
        })
        .await?;
        Ok(NatsBus {
            inner: Arc::new(Inner {
                jetstream,
                stream,
                events,
                metadata,
                bodies,
                consumers: tokio::sync::Mutex::new(HashMap::new()),
                leased: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The topic's durable consumer, shared by every process that fetches from it.
    async fn consumer(&self, topic: &str, lease: Duration) -> Result<PullConsumer, BusError> {
        let mut consumers = self.inner.consumers.lock().await;
        if let Some(c) = consumers.get(topic) {
            return Ok(c.clone());
        }
        let name = topic.replace('.', "-");
        let consumer: PullConsumer = self
            .inner
            .stream
            .get_or_create_consumer(
                &name,
                PullConfig {
                    durable_name: Some(name.clone()),
                    filter_subject: topic.to_string(),
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: lease,
                    max_ack_pending: 10_000,
                    ..Default::default()
                },
            )
            .await
            .map_err(storage)?;
        consumers.insert(topic.to_string(), consumer.clone());
        Ok(consumer)
    }

    fn release_lease(&self, id: MessageId) -> Result<jetstream::Message, BusError> {
        self.inner
            .leased
            .lock()
            .map_err(|_| BusError::Storage("lease table poisoned".into()))?
            .remove(&id)
            .ok_or_else(|| BusError::Storage(format!("message {id} is not leased here")))
    }

    async fn decode(&self, message: &jetstream::Message, id: MessageId) -> Result<(Vec<u8>, Vec<u8>), BusError> {
        self.decode_parts(message.headers.as_ref(), &message.payload, id).await
    }

    async fn decode_parts(&self, headers: Option<&HeaderMap>, payload: &[u8], id: MessageId) -> Result<(Vec<u8>, Vec<u8>), BusError> {
        let meta_len = payload.get(..4).and_then(|b| b.try_into().ok()).map(u32::from_be_bytes).unwrap_or(0) as usize;
        let (meta, inline) = payload.get(4..).map_or((&[][..], &[][..]), |rest| rest.split_at(meta_len.min(rest.len())));
        let meta = match self.inner.metadata.get(format!("m{id}")).await.map_err(storage)? {
            Some(updated) => updated.to_vec(),
            None => meta.to_vec(),
        };
        let body = match headers.and_then(|h| h.get(BODY_HEADER)) {
            Some(name) => {
                let mut object = self.inner.bodies.get(name.as_str()).await.map_err(storage)?;
                let mut body = Vec::new();
                object.read_to_end(&mut body).await.map_err(storage)?;
                body
            }
            None => inline.to_vec(),
        };
        Ok((meta, body))
    }
}

impl Bus for NatsBus {
    async fn publish(&self, topic: &str, meta: Vec<u8>, body: Vec<u8>) -> Result<MessageId, BusError> {
        let mut headers = HeaderMap::new();
        let mut payload = Vec::with_capacity(4 + meta.len() + body.len().min(MAX_INLINE_BODY));
        payload.extend_from_slice(&u32::try_from(meta.len()).map_err(storage)?.to_be_bytes());
        payload.extend_from_slice(&meta);
        if body.len() > MAX_INLINE_BODY {
            let name = format!("body-{}-{:x}", now_ms(), rand_u64());
            self.inner.bodies.put(name.as_str(), &mut body.as_slice()).await.map_err(storage)?;
            headers.insert(BODY_HEADER, name.as_str());
        } else {
            payload.extend_from_slice(&body);
        }
        if let Some(trace) = crate::current_traceparent() {
            headers.insert(rempart_telemetry::propagation::TRACEPARENT, trace.as_str());
        }
        let started = std::time::Instant::now();
        let ack = self.inner.jetstream.publish_with_headers(topic.to_string(), headers, payload.into()).await.map_err(storage)?;
        let sequence = ack.await.map_err(storage)?.sequence;
        rempart_telemetry::metrics().bus_operation("nats", "publish", started.elapsed());
        Ok(sequence)
    }

    async fn fetch(&self, topic: &str, max: usize, lease: Duration, wait: Duration) -> Result<Vec<Delivery>, BusError> {
        let consumer = self.consumer(topic, lease).await?;
        let mut batch = consumer.fetch().max_messages(max).expires(wait).messages().await.map_err(storage)?;
        let mut out = Vec::new();
        while let Some(message) = batch.next().await {
            let message = message.map_err(storage)?;
            let (id, deliveries, published_at_ms) = {
                let info = message.info().map_err(storage)?;
                (info.stream_sequence, info.delivered.max(1) as u32, (info.published.unix_timestamp_nanos() / 1_000_000) as u64)
            };
            let (meta, body) = self.decode(&message, id).await?;
            let trace_parent =
                message.headers.as_ref().and_then(|h| h.get(rempart_telemetry::propagation::TRACEPARENT)).map(|v| v.as_str().to_string());
            self.inner.leased.lock().map_err(|_| BusError::Storage("lease table poisoned".into()))?.insert(id, message);
            out.push(Delivery { id, deliveries, published_at_ms, meta, body, trace_parent });
        }
        Ok(out)
    }

    async fn ack(&self, id: MessageId) -> Result<(), BusError> {
        let message = self.release_lease(id)?;
        let started = std::time::Instant::now();
        message.double_ack().await.map_err(storage)?;
        rempart_telemetry::metrics().bus_operation("nats", "ack", started.elapsed());
        // Cleanup after the ack: a crash in between leaves garbage, never a lost message.
        let _ = self.inner.metadata.purge(format!("m{id}")).await;
        if let Some(name) = message.headers.as_ref().and_then(|h| h.get(BODY_HEADER)) {
            let _ = self.inner.bodies.delete(name.as_str()).await;
        }
        Ok(())
    }

    /// A message NAKed with a delay cannot be handed out before the delay ends in
    /// JetStream: each deferred message that matches is published again (its current
    /// envelope, from the metadata bucket) and the waiting copy deleted.
    async fn expedite(&self, topic: &str, matches: crate::MetaFilter) -> Result<usize, BusError> {
        let mut moved = 0;
        for waiting in self.list(topic, 100_000).await? {
            if !waiting.deferred || waiting.leased || !matches(&waiting.meta) {
                continue;
            }
            if let Some((meta, body)) = self.take(topic, waiting.id).await? {
                self.publish(topic, meta, body).await?;
                moved += 1;
            }
        }
        Ok(moved)
    }

    /// Reads the topic's messages in sequence order, one request each (a work queue
    /// keeps only what is not acked yet; gaps cost nothing). Deferred: its retry stored
    /// an envelope in the metadata bucket. Leased: only what this process holds is known.
    async fn list(&self, topic: &str, limit: usize) -> Result<Vec<crate::Waiting>, BusError> {
        use async_nats::jetstream::stream::RawMessageErrorKind;
        let mut waiting = Vec::new();
        let leased: Vec<MessageId> =
            self.inner.leased.lock().map_err(|_| BusError::Storage("lease table poisoned".into()))?.keys().copied().collect();
        let mut from = 0;
        while waiting.len() < limit {
            let message = match self.inner.stream.get_first_raw_message_by_subject(topic, from).await {
                Ok(m) => m,
                Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => break,
                Err(e) => return Err(storage(e)),
            };
            let sequence = message.sequence;
            from = sequence + 1;
            let updated = self.inner.metadata.get(format!("m{sequence}")).await.map_err(storage)?;
            let deferred = updated.is_some();
            let payload = &message.payload;
            let meta_len = payload.get(..4).and_then(|b| b.try_into().ok()).map(u32::from_be_bytes).unwrap_or(0) as usize;
            let meta = match updated {
                Some(updated) => updated.to_vec(),
                None => payload.get(4..4 + meta_len).unwrap_or_default().to_vec(),
            };
            waiting.push(crate::Waiting {
                id: sequence,
                meta,
                published_at_ms: (message.time.unix_timestamp_nanos() / 1_000_000) as u64,
                visible_at_ms: 0,
                leased: leased.contains(&sequence),
                deferred,
            });
        }
        Ok(waiting)
    }

    /// Deletes the message from the stream once read; a relay working on it now (in
    /// another process) cannot be seen from here: its ack then fails and changes nothing.
    async fn take(&self, topic: &str, id: MessageId) -> Result<crate::Taken, BusError> {
        use async_nats::jetstream::stream::RawMessageErrorKind;
        if self.inner.leased.lock().map_err(|_| BusError::Storage("lease table poisoned".into()))?.contains_key(&id) {
            return Err(BusError::Busy(id));
        }
        let message = match self.inner.stream.get_raw_message(id).await {
            Ok(m) => m,
            Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => return Ok(None),
            Err(e) => return Err(storage(e)),
        };
        if message.subject.as_str() != topic {
            return Ok(None);
        }
        let (meta, body) = self.decode_parts(Some(&message.headers), &message.payload, id).await?;
        match self.inner.stream.delete_message(id).await {
            Ok(_) => {}
            // Acked meanwhile: delivered, nothing to take.
            Err(_) if self.inner.stream.get_raw_message(id).await.is_err() => return Ok(None),
            Err(e) => return Err(storage(e)),
        }
        let _ = self.inner.metadata.purge(format!("m{id}")).await;
        if let Some(name) = message.headers.get(BODY_HEADER) {
            let _ = self.inner.bodies.delete(name.as_str()).await;
        }
        Ok(Some((meta, body)))
    }

    async fn retry(&self, id: MessageId, meta: Vec<u8>, delay: Duration) -> Result<(), BusError> {
        let message = self.release_lease(id)?;
        self.inner.metadata.put(format!("m{id}"), meta.into()).await.map_err(storage)?;
        message.ack_with(AckKind::Nak(Some(delay))).await.map_err(storage)
    }

    async fn event(&self, subject: &str, payload: Vec<u8>) {
        if let Err(e) = self.inner.jetstream.client().publish(subject.to_string(), payload.into()).await {
            tracing::debug!(subject, error = %e, "event not published");
        }
    }

    async fn replay_events(&self, after: u64) -> Result<crate::SequencedReceiver, BusError> {
        use async_nats::jetstream::consumer::DeliverPolicy;
        use async_nats::jetstream::consumer::pull::OrderedConfig;
        let deliver_policy = if after == 0 { DeliverPolicy::All } else { DeliverPolicy::ByStartSequence { start_sequence: after + 1 } };
        let config =
            OrderedConfig { deliver_policy, filter_subjects: REPLAYED.iter().map(|s| s.to_string()).collect(), ..Default::default() };
        let consumer = self.inner.events.create_consumer(config).await.map_err(storage)?;
        let mut messages = consumer.messages().await.map_err(storage)?;
        let (tx, rx) = tokio::sync::mpsc::channel(crate::EVENT_BACKLOG);
        tokio::spawn(async move {
            while let Some(message) = messages.next().await {
                let message = match message {
                    Ok(m) => m,
                    Err(e) => {
                        // The ordered consumer recreates itself where it can; a gap is logged.
                        tracing::warn!(error = %e, "events replay interrupted");
                        continue;
                    }
                };
                let Ok(sequence) = message.info().map(|i| i.stream_sequence) else { continue };
                let event = crate::Event { subject: message.subject.to_string(), payload: message.payload.to_vec() };
                // Backpressure, not loss: the stream keeps what the reader has not taken.
                if tx.send((sequence, event)).await.is_err() {
                    return;
                }
            }
        });
        Ok(rx)
    }

    async fn subscribe_events(&self, group: &str) -> Result<crate::EventReceiver, BusError> {
        let client = self.inner.jetstream.client();
        let mut subscription = client.queue_subscribe("rempart.events.>", group.to_string()).await.map_err(storage)?;
        let (tx, rx) = tokio::sync::mpsc::channel(crate::EVENT_BACKLOG);
        tokio::spawn(async move {
            let mut dropped = 0u64;
            while let Some(message) = subscription.next().await {
                let event = crate::Event { subject: message.subject.to_string(), payload: message.payload.to_vec() };
                match tx.try_send(event) {
                    Ok(()) => {}
                    Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => {
                        dropped += 1;
                        if dropped.is_power_of_two() {
                            tracing::warn!(dropped, "event subscriber too slow: events dropped");
                        }
                    }
                    Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => return,
                }
            }
        });
        Ok(rx)
    }

    async fn oldest_published_ms(&self, topic: &str) -> Result<Option<u64>, BusError> {
        use async_nats::jetstream::stream::LastRawMessageErrorKind;
        // A work queue keeps only what is not acked yet: its first message is the oldest.
        match self.inner.stream.get_next_raw_message_by_subject(topic).await {
            Ok(message) => Ok(Some((message.time.unix_timestamp_nanos() / 1_000_000) as u64)),
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(e) => Err(storage(e)),
        }
    }

    async fn pending(&self, topic: &str) -> Result<usize, BusError> {
        let name = topic.replace('.', "-");
        match self.inner.stream.get_consumer::<PullConfig>(&name).await {
            Ok(mut consumer) => {
                let info = consumer.info().await.map_err(storage)?;
                Ok(info.num_pending as usize + info.num_ack_pending)
            }
            // Nobody consumed the topic yet: all the stream holds is waiting.
            Err(_) => {
                let mut stream = self.inner.stream.clone();
                Ok(stream.info().await.map_err(storage)?.state.messages as usize)
            }
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Unique enough for object names (with the time), without a random-number crate.
fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(now_ms());
    h.finish()
}
