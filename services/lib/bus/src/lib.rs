//! The message bus between tiers. `Bus` is what the edge publishes to and the relay
//! consumes from; `EmbeddedBus` is the single-node implementation on a redb file.
//!
//! Semantics (the same for every implementation): `publish` returns only once the
//! message is durable; `fetch` leases messages for a visibility timeout and a message
//! not acked by then is delivered again (at-least-once); `retry` makes a message
//! visible again after a delay, with new metadata.

mod consume;
mod embedded;
mod nats;

use std::future::Future;
use std::time::Duration;

pub use consume::{HeldMeta, MAX_PANICS, consume};
pub use embedded::{EmbeddedBus, EmbeddedOptions};
pub use nats::{MAX_INLINE_BODY, NatsBus, NatsOptions};
pub use rempart_model::topics::{DELIVER_TOPIC, HELD_TOPIC, QUARANTINE_TOPIC, SCAN_TOPIC};

/// Identifies a message inside one bus.
pub type MessageId = u64;

/// A message handed to a consumer. It stays leased to that consumer until acked,
/// retried, or its visibility timeout passes.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: MessageId,
    /// How many times it was handed out, this time included.
    pub deliveries: u32,
    pub published_at_ms: u64,
    pub meta: Vec<u8>,
    pub body: Vec<u8>,
    /// The trace the message belongs to: the `traceparent` of the span that published
    /// it (a NATS header, or a column of the embedded queue).
    pub trace_parent: Option<String>,
}

/// What `publish` stores beside a message: the current span's trace context.
fn current_traceparent() -> Option<String> {
    rempart_telemetry::propagation::traceparent(&tracing::Span::current())
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum BusError {
    #[error("queue storage error: {0}")]
    Storage(String),
    /// The disk (or the file's quota) is full: nothing new can be stored until space
    /// returns. The queue recovers by itself then.
    #[error("queue storage is full: {0}")]
    Full(String),
    #[error("the queue is closed")]
    Closed,
    #[error("{0} is not supported by this bus")]
    Unsupported(&'static str),
    /// A worker holds the message now (a delivery attempt under way).
    #[error("message {0} is being worked on right now; try again in a moment")]
    Busy(MessageId),
}

/// A message taken out of its topic: its metadata and body (`None`: it was gone).
pub type Taken = Option<(Vec<u8>, Vec<u8>)>;

/// A message waiting in a topic, as queue management lists it.
#[derive(Debug, Clone)]
pub struct Waiting {
    pub id: MessageId,
    pub meta: Vec<u8>,
    pub published_at_ms: u64,
    /// When it is handed out next (ms since the epoch; 0 when the bus cannot say).
    pub visible_at_ms: u64,
    /// A worker holds it now (as far as this process can tell on NATS).
    pub leased: bool,
    /// It was deferred and waits for its next attempt.
    pub deferred: bool,
}

/// Which waiting messages `Bus::expedite` makes visible: a test of their metadata.
pub type MetaFilter = Box<dyn Fn(&[u8]) -> bool + Send + Sync>;

pub trait Bus: Clone + Send + Sync + 'static {
    /// Stores a message durably; the returned future resolves only after it is.
    fn publish(&self, topic: &str, meta: Vec<u8>, body: Vec<u8>) -> impl Future<Output = Result<MessageId, BusError>> + Send;

    /// Leases up to `max` visible messages for `lease`, waiting up to `wait` for one.
    fn fetch(
        &self,
        topic: &str,
        max: usize,
        lease: Duration,
        wait: Duration,
    ) -> impl Future<Output = Result<Vec<Delivery>, BusError>> + Send;

    /// Done with a message: it is removed for good.
    fn ack(&self, id: MessageId) -> impl Future<Output = Result<(), BusError>> + Send;

    /// Replaces a leased message's metadata and makes it visible again after `delay`.
    fn retry(&self, id: MessageId, meta: Vec<u8>, delay: Duration) -> impl Future<Output = Result<(), BusError>> + Send;

    /// Makes the messages of `topic` that wait for a retry (delayed, not leased) and
    /// whose metadata `matches` visible now (ETRN); gives how many.
    fn expedite(&self, topic: &str, matches: MetaFilter) -> impl Future<Output = Result<usize, BusError>> + Send;

    /// The messages of `topic` not acked yet, at most `limit` (queue management).
    fn list(&self, topic: &str, limit: usize) -> impl Future<Output = Result<Vec<Waiting>, BusError>> + Send;

    /// Removes a message of `topic` that no worker holds and gives its metadata and
    /// body (queue management deletes it, or publishes it again elsewhere); `None` when
    /// it is gone (delivered meanwhile); `Busy` while a worker holds it.
    fn take(&self, topic: &str, id: MessageId) -> impl Future<Output = Result<Taken, BusError>> + Send;

    /// Messages of `topic` not acked yet (visible, delayed or leased).
    fn pending(&self, topic: &str) -> impl Future<Output = Result<usize, BusError>> + Send;

    /// When the oldest message of `topic` not acked yet was published (ms since the
    /// epoch); `None` when the topic is empty.
    fn oldest_published_ms(&self, topic: &str) -> impl Future<Output = Result<Option<u64>, BusError>> + Send;

    /// Publishes an event (`rempart.events.*`) for whoever listens: fire and forget,
    /// never durable, never an error for the caller.
    fn event(&self, subject: &str, payload: Vec<u8>) -> impl Future<Output = ()> + Send;

    /// The events published from now on, each handed to one subscriber of `group`
    /// (a NATS queue group; in process on the embedded bus). Events that arrive while
    /// the receiver is full are dropped and counted in the log: they are statistics.
    fn subscribe_events(&self, group: &str) -> impl Future<Output = Result<EventReceiver, BusError>> + Send;

    /// Tracking's events (`TRACK_EVENTS`, `DELIVERY_EVENTS`) with their sequence, from
    /// the one after `after` (0: from the oldest kept): on NATS replayed from the events
    /// stream, with backpressure; on the embedded bus those published from now on, with
    /// sequence 0 (one process: nothing happens while it is down).
    fn replay_events(&self, after: u64) -> impl Future<Output = Result<SequencedReceiver, BusError>> + Send;
}

/// Events with their stream sequence (0 when the bus keeps none).
pub type SequencedReceiver = tokio::sync::mpsc::Receiver<(u64, Event)>;

/// One event: its subject (`rempart.events.<kind>`) and its protobuf payload.
#[derive(Debug, Clone)]
pub struct Event {
    pub subject: String,
    pub payload: Vec<u8>,
}

pub type EventReceiver = tokio::sync::mpsc::Receiver<Event>;

/// How many events a subscriber may have waiting.
pub const EVENT_BACKLOG: usize = 16_384;

/// Event subjects.
pub const VERDICT_EVENTS: &str = "rempart.events.verdict";
pub const DELIVERY_EVENTS: &str = "rempart.events.delivery";
pub const OUTBOUND_EVENTS: &str = "rempart.events.outbound";
/// Message tracking (`TrackEvent`): what happened to each message beside deliveries.
pub const TRACK_EVENTS: &str = "rempart.events.track";

/// The bus chosen by the configuration (`[bus] backend`).
#[derive(Clone)]
pub enum AnyBus {
    Embedded(EmbeddedBus),
    Nats(NatsBus),
}

impl Bus for AnyBus {
    async fn publish(&self, topic: &str, meta: Vec<u8>, body: Vec<u8>) -> Result<MessageId, BusError> {
        match self {
            AnyBus::Embedded(b) => b.publish(topic, meta, body).await,
            AnyBus::Nats(b) => b.publish(topic, meta, body).await,
        }
    }

    async fn fetch(&self, topic: &str, max: usize, lease: Duration, wait: Duration) -> Result<Vec<Delivery>, BusError> {
        match self {
            AnyBus::Embedded(b) => b.fetch(topic, max, lease, wait).await,
            AnyBus::Nats(b) => b.fetch(topic, max, lease, wait).await,
        }
    }

    async fn ack(&self, id: MessageId) -> Result<(), BusError> {
        match self {
            AnyBus::Embedded(b) => b.ack(id).await,
            AnyBus::Nats(b) => b.ack(id).await,
        }
    }

    async fn retry(&self, id: MessageId, meta: Vec<u8>, delay: Duration) -> Result<(), BusError> {
        match self {
            AnyBus::Embedded(b) => b.retry(id, meta, delay).await,
            AnyBus::Nats(b) => b.retry(id, meta, delay).await,
        }
    }

    async fn expedite(&self, topic: &str, matches: MetaFilter) -> Result<usize, BusError> {
        match self {
            AnyBus::Embedded(b) => b.expedite(topic, matches).await,
            AnyBus::Nats(b) => b.expedite(topic, matches).await,
        }
    }

    async fn list(&self, topic: &str, limit: usize) -> Result<Vec<Waiting>, BusError> {
        match self {
            AnyBus::Embedded(b) => b.list(topic, limit).await,
            AnyBus::Nats(b) => b.list(topic, limit).await,
        }
    }

    async fn take(&self, topic: &str, id: MessageId) -> Result<Taken, BusError> {
        match self {
            AnyBus::Embedded(b) => b.take(topic, id).await,
            AnyBus::Nats(b) => b.take(topic, id).await,
        }
    }

    async fn pending(&self, topic: &str) -> Result<usize, BusError> {
        match self {
            AnyBus::Embedded(b) => b.pending(topic).await,
            AnyBus::Nats(b) => b.pending(topic).await,
        }
    }

    async fn oldest_published_ms(&self, topic: &str) -> Result<Option<u64>, BusError> {
        match self {
            AnyBus::Embedded(b) => b.oldest_published_ms(topic).await,
            AnyBus::Nats(b) => b.oldest_published_ms(topic).await,
        }
    }

    async fn event(&self, subject: &str, payload: Vec<u8>) {
        match self {
            AnyBus::Embedded(b) => b.event(subject, payload).await,
            AnyBus::Nats(b) => b.event(subject, payload).await,
        }
    }

    async fn subscribe_events(&self, group: &str) -> Result<EventReceiver, BusError> {
        match self {
            AnyBus::Embedded(b) => b.subscribe_events(group).await,
            AnyBus::Nats(b) => b.subscribe_events(group).await,
        }
    }

    async fn replay_events(&self, after: u64) -> Result<SequencedReceiver, BusError> {
        match self {
            AnyBus::Embedded(b) => b.replay_events(after).await,
            AnyBus::Nats(b) => b.replay_events(after).await,
        }
    }
}
