//! The auto-allowlist (SpamAssassin's AWL): per sender address and client network
//! (/16 for IPv4, /48 for IPv6), the running mean of past scores. The AWL symbol moves
//! the current score toward that mean by `factor`, so a sender with a good history
//! survives one odd message and a spammer cannot buy a good score with one clean one.
//!
//! Keys: `awl.<sender>.<network>.t` (sum of scores in thousandths) and `.n` (messages),
//! both counters, so concurrent scanners never lose an update.
//!
//! Updates are coalesced in memory and written every 250 ms: a busy sender (one hot
//! key) costs one counter update per interval, not one per message — on NATS, where a
//! counter is a compare-and-set loop, per-message updates of one key from many
//! sessions contended so much that end-of-DATA latency went from 0.5 to 190 ms. A
//! crash loses at most the last interval's history.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rempart_model::net::Network;

use crate::{Store, StoreResult, counter, key};

/// A sender's history from one network.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AwlEntry {
    pub mean: f64,
    pub count: i64,
}

/// How often coalesced updates are written.
const FLUSH_EVERY: Duration = Duration::from_millis(250);

pub struct Awl {
    store: Arc<dyn Store>,
    factor: f64,
    /// Counter deltas not written yet.
    pending: Arc<Mutex<HashMap<String, i64>>>,
    flusher: AtomicBool,
}

impl Awl {
    pub fn new(store: Arc<dyn Store>, factor: f64) -> Self {
        Awl { store, factor: factor.clamp(0.0, 1.0), pending: Arc::default(), flusher: AtomicBool::new(false) }
    }

    /// Writes the coalesced updates now.
    pub async fn flush(&self) -> StoreResult<()> {
        write_pending(&*self.store, &self.pending).await
    }

    fn keys(sender: &str, ip: IpAddr) -> [String; 2] {
        let network = Network::of(ip, 16, 48).to_string();
        let sender = rempart_model::return_path::untagged(sender);
        [key(&["awl", &sender, &network, "t"]), key(&["awl", &sender, &network, "n"])]
    }

    /// The history of `sender` from `ip`'s network, if any.
    pub async fn lookup(&self, sender: &str, ip: IpAddr) -> StoreResult<Option<AwlEntry>> {
        let keys = Self::keys(sender, ip);
        let values = self.store.get_many(&keys).await?;
        let total = counter(&keys[0], values[0].as_deref())?;
        let count = counter(&keys[1], values[1].as_deref())?;
        Ok((count > 0).then(|| AwlEntry { mean: total as f64 / 1000.0 / count as f64, count }))
    }

    /// The change to apply to `score` (the AWL symbol's weight).
    pub fn adjustment(&self, entry: &AwlEntry, score: f64) -> f64 {
        ((entry.mean - score) * self.factor * 100.0).round() / 100.0
    }

    /// Adds this message's score (before the AWL's own adjustment) to the history;
    /// written within `FLUSH_EVERY`.
    pub async fn record(&self, sender: &str, ip: IpAddr, score: f64) -> StoreResult<()> {
        let [total, count] = Self::keys(sender, ip);
        if let Ok(mut pending) = self.pending.lock() {
            *pending.entry(total).or_default() += (score * 1000.0).round() as i64;
            *pending.entry(count).or_default() += 1;
        }
        if !self.flusher.swap(true, Ordering::Relaxed) {
            let (store, pending) = (self.store.clone(), Arc::downgrade(&self.pending));
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(FLUSH_EVERY).await;
                    let Some(pending) = pending.upgrade() else { return };
                    if let Err(e) = write_pending(&*store, &pending).await {
                        tracing::warn!(error = %e, "AWL update failed");
                    }
                }
            });
        }
        Ok(())
    }
}

async fn write_pending(store: &dyn Store, pending: &Mutex<HashMap<String, i64>>) -> StoreResult<()> {
    let deltas: Vec<(String, i64)> = match pending.lock() {
        Ok(mut p) => p.drain().collect(),
        Err(_) => return Ok(()),
    };
    if deltas.is_empty() {
        return Ok(());
    }
    store.add(&deltas).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn mean_and_pull() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(crate::EmbeddedStore::open(&dir.path().join("s.redb"), false).unwrap());
        let awl = Awl::new(store, 0.5);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(awl.lookup("a@x.example", ip).await.unwrap(), None);
        awl.record("A@x.example", ip, -1.0).await.unwrap();
        awl.record("a@x.example", "192.0.99.99".parse().unwrap(), 0.0).await.unwrap(); // same /16
        awl.flush().await.unwrap();
        let entry = awl.lookup("a@x.example", ip).await.unwrap().unwrap();
        assert_eq!(entry, AwlEntry { mean: -0.5, count: 2 });
        assert_eq!(awl.adjustment(&entry, 5.5), -3.0);
        assert_eq!(awl.lookup("a@x.example", "198.51.100.1".parse().unwrap()).await.unwrap(), None, "another /16");
    }
}
