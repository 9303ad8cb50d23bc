//! Feeds the tracking index from the gateway's events: on the embedded bus those of
//! this process as they happen; on NATS replayed from the events stream from the
//! sequence the index last kept, so a console started empty (or after a stop) catches
//! up, and every console builds the same index.

use std::sync::Arc;
use std::time::Duration;

use rempart_bus::{AnyBus, Bus, Event, SequencedReceiver};
use tokio::sync::watch;

use super::TrackingIndex;

/// Events folded in one transaction at most.
const BATCH: usize = 2_000;
/// How long a batch waits for more events once it has one.
const GATHER: Duration = Duration::from_millis(50);

/// The events from the one after the index's last, subscribed before the edge takes
/// mail (on the embedded bus, events before the subscription are not kept anywhere).
pub async fn subscribe(bus: &AnyBus, index: &TrackingIndex) -> Option<SequencedReceiver> {
    let after = index.sequence().map_err(|e| tracing::error!(error = %e, "tracking index unreadable")).ok()?;
    match bus.replay_events(after).await {
        Ok(events) => {
            tracing::info!(after, "tracking follows the gateway's events");
            Some(events)
        }
        Err(e) => {
            tracing::warn!(error = %e, "tracking cannot read the events yet; trying again in 5 s");
            None
        }
    }
}

/// Folds events into `index` until `shutdown`, from `first` (see `subscribe`) and then
/// from a new subscription whenever one ends.
pub async fn run(bus: Arc<AnyBus>, index: TrackingIndex, first: Option<SequencedReceiver>, mut shutdown: watch::Receiver<bool>) {
    let mut next = first;
    loop {
        let mut events = match next.take() {
            Some(events) => events,
            None => match subscribe(&bus, &index).await {
                Some(events) => events,
                None => {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(5)) => continue,
                        _ = shutdown.changed() => return,
                    }
                }
            },
        };
        loop {
            let first = tokio::select! {
                first = events.recv() => first,
                _ = shutdown.changed() => return,
            };
            let Some(first) = first else { break };
            let mut batch = vec![first];
            let deadline = tokio::time::Instant::now() + GATHER;
            while batch.len() < BATCH {
                match tokio::time::timeout_at(deadline, events.recv()).await {
                    Ok(Some(event)) => batch.push(event),
                    Ok(None) | Err(_) => break,
                }
            }
            let sequence = batch.iter().map(|(seq, _)| *seq).max().unwrap_or(0);
            let events: Vec<Event> = batch.into_iter().map(|(_, e)| e).collect();
            let index = index.clone();
            let count = events.len();
            match tokio::task::spawn_blocking(move || index.apply(&events, sequence)).await {
                Ok(Ok(_)) => rempart_telemetry::metrics().tracked(count),
                Ok(Err(e)) => {
                    // Not recorded: on NATS the next start replays them; say so.
                    tracing::error!(error = %e, events = count, "tracking could not record events");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
                Err(e) => tracing::error!(error = %e, "tracking task failed"),
            }
        }
        // The replay ended (the bus reconnects): start again from what was kept.
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Forgets what is older than `retention`, at start and every hour.
pub async fn sweep(index: TrackingIndex, retention: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = every.tick() => {
                let cutoff = rempart_model::date::unix_now_ms().saturating_sub(retention.as_millis() as u64);
                let index = index.clone();
                match tokio::task::spawn_blocking(move || index.sweep(cutoff)).await {
                    Ok(Ok(0)) => {}
                    Ok(Ok(removed)) => tracing::info!(removed, "tracking forgot messages past the retention"),
                    Ok(Err(e)) => tracing::warn!(error = %e, "tracking sweep failed"),
                    Err(e) => tracing::warn!(error = %e, "tracking sweep failed"),
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}
