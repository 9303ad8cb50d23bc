//! The consumer loop every worker of a topic runs (relays on `rempart.deliver`,
//! scanners on `rempart.scan`, the console on `rempart.quarantine`): fetch under a
//! lease, hand each message over, back off when the bus fails, stop when told (the
//! message in hand is finished first).
//!
//! A handler that panics never takes the worker down: the panic is caught, logged and
//! counted, the message comes back after a short delay, and a message that made a
//! handler panic `MAX_PANICS` times is parked on `rempart.held` — kept, visible to
//! operators, never looping and never lost.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::watch;

use crate::{Bus, Delivery, HELD_TOPIC, MessageId};

/// How long a fetch waits for a message before looking at `shutdown` again.
const POLL: Duration = Duration::from_secs(5);

/// Panics one message may cause before it is parked.
pub const MAX_PANICS: u32 = 3;

/// Panics per (topic, message) in this process. A message that panics is retried by
/// whichever worker fetches it next, so the count is shared by the workers.
static PANICS: LazyLock<Mutex<HashMap<(String, MessageId), u32>>> = LazyLock::new(Default::default);

fn panics() -> std::sync::MutexGuard<'static, HashMap<(String, MessageId), u32>> {
    PANICS.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub async fn consume<B, F, Fut>(bus: &B, topic: &str, lease: Duration, mut shutdown: watch::Receiver<bool>, mut handle: F)
where
    B: Bus,
    F: FnMut(Delivery) -> Fut,
    Fut: Future<Output = ()>,
{
    while !*shutdown.borrow() {
        let fetched = tokio::select! {
            f = bus.fetch(topic, 1, lease, POLL) => f,
            _ = shutdown.changed() => continue,
        };
        match fetched {
            Ok(batch) => {
                for delivery in batch {
                    handle_contained(bus, topic, delivery, &mut handle).await;
                }
            }
            Err(e) => {
                tracing::error!(topic, error = %e, "cannot read from the bus");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Hands one message over, containing a panic of the handler.
async fn handle_contained<B, F, Fut>(bus: &B, topic: &str, delivery: Delivery, handle: &mut F)
where
    B: Bus,
    F: FnMut(Delivery) -> Fut,
    Fut: Future<Output = ()>,
{
    let key = (topic.to_string(), delivery.id);
    let before = panics().get(&key).copied().unwrap_or(0);
    if before >= MAX_PANICS {
        park(bus, topic, delivery, before).await;
        panics().remove(&key);
        return;
    }
    let (id, meta) = (delivery.id, delivery.meta.clone());
    let Err(panic) = AssertUnwindSafe(handle(delivery)).catch_unwind().await else {
        if before > 0 {
            panics().remove(&key);
        }
        return;
    };
    let count = {
        let mut map = panics();
        let n = map.entry(key).or_default();
        *n += 1;
        *n
    };
    let panic = rempart_telemetry::metrics().panic("consumer", &*panic);
    tracing::error!(topic, message = id, panics = count, panic, "a worker panicked on a message; the worker goes on");
    // Back soon (to be parked once it has failed often enough), not after the lease.
    if let Err(e) = bus.retry(id, meta, Duration::from_secs(u64::from(count))).await {
        tracing::error!(topic, message = id, error = %e, "could not put back a message that made a worker panic");
    }
}

/// Moves a message out of its topic to `rempart.held`, with the topic it came from.
async fn park<B: Bus>(bus: &B, topic: &str, delivery: Delivery, panics: u32) {
    let held =
        HeldMeta { topic: topic.to_string(), reason: format!("the {topic} worker panicked {panics} times on it"), meta: delivery.meta };
    let meta = serde_json::to_vec(&held).unwrap_or_default();
    match bus.publish(HELD_TOPIC, meta, delivery.body).await {
        Ok(_) => {
            let _ = bus.ack(delivery.id).await;
            rempart_telemetry::metrics().parked(topic);
            tracing::error!(topic, message = delivery.id, panics, "message parked on {HELD_TOPIC}: it needs an operator");
        }
        Err(e) => tracing::error!(topic, message = delivery.id, error = %e, "could not park a message; it stays where it is"),
    }
}

/// What a parked message carries: where it came from, why, and its own metadata.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct HeldMeta {
    pub topic: String,
    pub reason: String,
    /// The message's metadata as its topic's consumers read it (an envelope's JSON).
    #[serde(with = "serde_bytes_as_string")]
    pub meta: Vec<u8>,
}

/// Envelope JSON is UTF-8: kept readable in the held message's own JSON.
mod serde_bytes_as_string {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&String::from_utf8_lossy(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        Ok(String::deserialize(d)?.into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EmbeddedBus, EmbeddedOptions};

    #[tokio::test]
    async fn a_panicking_handler_is_contained_and_its_message_parked() {
        let dir = tempfile::tempdir().unwrap();
        let bus = EmbeddedBus::open(&dir.path().join("q.redb"), EmbeddedOptions::default()).unwrap();
        bus.publish("t", b"poison".to_vec(), b"body".to_vec()).await.unwrap();
        bus.publish("t", b"good".to_vec(), b"body".to_vec()).await.unwrap();
        let (stop, shutdown) = watch::channel(false);
        let handled = std::sync::Arc::new(Mutex::new(Vec::new()));
        let worker = {
            let (bus, handled) = (bus.clone(), handled.clone());
            tokio::spawn(async move {
                consume(&bus, "t", Duration::from_secs(60), shutdown, |d| {
                    let (bus, handled) = (bus.clone(), handled.clone());
                    async move {
                        if d.meta == b"poison" {
                            panic!("poison message");
                        }
                        handled.lock().unwrap().push(d.meta.clone());
                        bus.ack(d.id).await.unwrap();
                    }
                })
                .await
            })
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while bus.pending(HELD_TOPIC).await.unwrap() == 0 {
            assert!(tokio::time::Instant::now() < deadline, "the poison message was never parked");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        stop.send(true).unwrap();
        worker.await.expect("the worker survived");
        assert_eq!(*handled.lock().unwrap(), vec![b"good".to_vec()]);
        assert_eq!(bus.pending("t").await.unwrap(), 0);
        let held = bus.fetch(HELD_TOPIC, 1, Duration::from_secs(60), Duration::from_secs(1)).await.unwrap();
        let meta: HeldMeta = serde_json::from_slice(&held[0].meta).unwrap();
        assert_eq!((meta.topic.as_str(), meta.meta.as_slice(), held[0].body.as_slice()), ("t", &b"poison"[..], &b"body"[..]));
    }
}
