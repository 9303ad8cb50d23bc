//! The consumer loop every worker of a topic runs (relays on `rempart.deliver`,
//! scanners on `rempart.scan`): fetch under a lease, hand each message over, back off
//! when the bus fails, stop when told (the message in hand is finished first).

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

use crate::{Bus, Delivery};

/// How long a fetch waits for a message before looking at `shutdown` again.
const POLL: Duration = Duration::from_secs(5);

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
                    handle(delivery).await;
                }
            }
            Err(e) => {
                tracing::error!(topic, error = %e, "cannot read from the bus");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
