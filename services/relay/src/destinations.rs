//! Deliveries in progress per destination (`relay.per_destination`): a worker whose
//! message's destination stays full for a moment puts the message back and moves on,
//! so one slow server cannot hold every worker.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Destinations remembered before idle ones are forgotten.
const FORGET_ABOVE: usize = 1024;

pub struct Limiter {
    per_destination: usize,
    slots: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Limiter {
    pub fn new(per_destination: usize) -> Self {
        Self { per_destination, slots: Mutex::default() }
    }

    /// A slot for one delivery to `destination`, held until dropped; `None` when all
    /// its slots stay taken for `wait`.
    pub async fn acquire(&self, destination: &str, wait: Duration) -> Option<OwnedSemaphorePermit> {
        let semaphore = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            if slots.len() > FORGET_ABOVE {
                slots.retain(|_, s| s.available_permits() < self.per_destination);
            }
            slots.entry(destination.to_string()).or_insert_with(|| Arc::new(Semaphore::new(self.per_destination))).clone()
        };
        tokio::time::timeout(wait, semaphore.acquire_owned()).await.ok()?.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_destination_has_at_most_its_slots_and_others_are_not_affected() {
        let limiter = Limiter::new(2);
        let wait = Duration::from_millis(20);
        let (a1, a2) = (limiter.acquire("a.example", wait).await, limiter.acquire("a.example", wait).await);
        assert!(a1.is_some() && a2.is_some());
        assert!(limiter.acquire("a.example", wait).await.is_none(), "a third delivery to a does not get a slot");
        assert!(limiter.acquire("b.example", wait).await.is_some(), "b is not affected");
        drop(a1);
        assert!(limiter.acquire("a.example", wait).await.is_some(), "a slot is free again");
    }
}
