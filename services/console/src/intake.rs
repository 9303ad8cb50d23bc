//! Fills the quarantine from `rempart.quarantine` (the quarantine action, and the
//! queued scan's refusals) and sweeps out what is older than the retention. A message
//! is acked on the bus only once its body and entry are durable here.

use std::sync::Arc;
use std::time::Duration;

use rempart_bus::{AnyBus, Bus, QUARANTINE_TOPIC, consume};
use rempart_model::Envelope;
use tokio::sync::watch;

use crate::quarantine::{Entry, QuarantineStore};

/// Consumes the quarantine topic until `shutdown`: into this console's files, or on a
/// cluster (`replica`) the body into the object store and the entry onto the log that
/// every console replica follows.
pub async fn run(
    bus: Arc<AnyBus>,
    store: QuarantineStore,
    replica: Option<Arc<crate::replica::Replica>>,
    lease: Duration,
    shutdown: watch::Receiver<bool>,
) {
    consume(&*bus, QUARANTINE_TOPIC, lease, shutdown, |delivery| {
        let (bus, store, replica) = (bus.clone(), store.clone(), replica.clone());
        async move {
            let envelope = match Envelope::from_json(&delivery.meta) {
                Ok(envelope) => envelope,
                Err(e) => {
                    // Nothing to show or release without an envelope; keep it on the
                    // bus (retried later) rather than lose it.
                    tracing::error!(error = %e, "quarantined message with an unreadable envelope; left on the bus");
                    let _ = bus.retry(delivery.id, delivery.meta, Duration::from_secs(3600)).await;
                    return;
                }
            };
            let entry = Entry::from_envelope(envelope, &delivery.body, rempart_model::date::unix_now());
            let queue_id = entry.queue_id.clone();
            let body = delivery.body;
            let held = match replica {
                Some(replica) => hold_replicated(&replica, store, entry, &body).await,
                None => crate::blocking(move || store.hold(&entry, &body)).await.map_err(crate::ConsoleError::from),
            };
            match held {
                Ok(()) => {
                    tracing::info!(%queue_id, "held in quarantine");
                    if let Err(e) = bus.ack(delivery.id).await {
                        tracing::warn!(%queue_id, error = %e, "quarantined, but the bus did not take the ack (it will come again, idempotently)");
                    }
                }
                Err(e) => {
                    tracing::error!(%queue_id, error = %e, "cannot keep the message in quarantine; retrying in a minute");
                    let _ = bus.retry(delivery.id, delivery.meta, Duration::from_secs(60)).await;
                }
            }
        }
    })
    .await;
}

/// The body in the object store, then the entry on the log (applied here at once, and
/// by every replica as it follows the log).
async fn hold_replicated(
    replica: &crate::replica::Replica,
    store: QuarantineStore,
    entry: Entry,
    body: &[u8],
) -> Result<(), crate::ConsoleError> {
    replica.put_body(&entry.queue_id, body).await?;
    let change = crate::replica::Change::Held { entry: Box::new(entry) };
    replica.record(&change).await?;
    crate::blocking(move || change.apply(&store)).await?;
    Ok(())
}

/// Deletes expired messages every hour (and at start) until `shutdown`; message
/// tracking hears of each (`expired`).
pub async fn sweep(bus: Arc<AnyBus>, store: QuarantineStore, retention: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let cutoff = rempart_model::date::unix_now().saturating_sub(retention.as_secs());
        let store = store.clone();
        match crate::blocking(move || store.sweep(cutoff)).await {
            Ok(swept) if swept.is_empty() => {}
            Ok(swept) => {
                tracing::info!(deleted = swept.len(), "quarantine sweep");
                for (queue_id, recipients) in swept {
                    let event = rempart_proto::v1::TrackEvent {
                        queue_id,
                        at_ms: rempart_model::date::unix_now_ms() as i64,
                        kind: "expired".into(),
                        recipients,
                        outcome: "the quarantine's retention".into(),
                        ..Default::default()
                    };
                    bus.event(rempart_bus::TRACK_EVENTS, prost::Message::encode_to_vec(&event)).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "quarantine sweep failed"),
        }
    }
}
