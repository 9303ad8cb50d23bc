//! Greylisting: the first attempt of a triplet (client network, return path,
//! recipient) is deferred; a retry after the minimum delay and before expiry passes
//! and lets the client network with the sender domain through at once for a long
//! time. Networks are /24 (IPv4) and /64 (IPv6), because big senders retry from
//! another address of the same pool.
//!
//! Keys: `grey.t.<network>.<return path>.<recipient>` → first attempt (ms, 8 bytes)
//! with the expiry as TTL; `grey.p.<network>.<sender domain>` → last pass, with the
//! pass lifetime as TTL.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rempart_model::net::Network;

use crate::{Store, StoreResult, key, now_ms};

#[derive(Debug, Clone)]
pub struct GreylistSettings {
    pub min_delay: Duration,
    pub expiry: Duration,
    pub pass_lifetime: Duration,
    pub skip_networks: Vec<Network>,
}

/// What greylisting says about one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GreyDecision {
    /// Passes: the network is skipped, known, or this is a good retry.
    Pass(PassReason),
    /// Deferred: retry after `retry_after` (the time left of the minimum delay).
    Defer { retry_after: Duration, first_attempt: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassReason {
    SkippedNetwork,
    KnownSender,
    Retried,
}

impl PassReason {
    /// The `outcome` label of `rempart_greylist_total`.
    pub fn label(self) -> &'static str {
        match self {
            PassReason::SkippedNetwork => "skipped_network",
            PassReason::KnownSender => "known",
            PassReason::Retried => "passed",
        }
    }
}

pub struct Greylist {
    store: Arc<dyn Store>,
    settings: GreylistSettings,
}

impl Greylist {
    pub fn new(store: Arc<dyn Store>, settings: GreylistSettings) -> Self {
        Greylist { store, settings }
    }

    /// Decides for a message from `ip` with `return_path` to `recipients`: it passes
    /// only when every recipient's triplet does (one SMTP reply answers them all).
    pub async fn check(&self, ip: IpAddr, return_path: &str, recipients: &[&str]) -> StoreResult<GreyDecision> {
        if self.settings.skip_networks.iter().any(|n| n.contains(ip)) {
            return Ok(GreyDecision::Pass(PassReason::SkippedNetwork));
        }
        let network = Network::of(ip, 24, 64).to_string();
        // A BATV tag changes daily, SRS names the forwarder: the sender is underneath.
        let sender = rempart_model::return_path::untagged(return_path);
        let sender_domain = sender.rsplit_once('@').map_or("", |(_, d)| d);
        let pass_key = key(&["grey", "p", &network, sender_domain]);
        if self.store.get(&pass_key).await?.is_some() {
            self.store.put(&pass_key, &now_ms().to_le_bytes(), Some(self.settings.pass_lifetime)).await?;
            return Ok(GreyDecision::Pass(PassReason::KnownSender));
        }
        let now = now_ms();
        let min_delay_ms = self.settings.min_delay.as_millis() as u64;
        let mut wait_ms = 0u64;
        let mut first_attempt = false;
        let mut triplets = Vec::with_capacity(recipients.len());
        for recipient in recipients {
            let triplet = key(&["grey", "t", &network, &sender, &recipient.to_ascii_lowercase()]);
            let first_seen = match self.store.get(&triplet).await? {
                Some(v) => v.as_slice().try_into().map(u64::from_le_bytes).unwrap_or(now),
                None => {
                    // Several edges may see the same first attempt: the first write wins.
                    if !self.store.compare_and_set(&triplet, None, &now.to_le_bytes(), Some(self.settings.expiry)).await? {
                        continue_with_existing(&*self.store, &triplet, now).await?
                    } else {
                        first_attempt = true;
                        now
                    }
                }
            };
            wait_ms = wait_ms.max((first_seen + min_delay_ms).saturating_sub(now));
            triplets.push(triplet);
        }
        if wait_ms > 0 || first_attempt {
            let retry_after = Duration::from_millis(wait_ms.max(if first_attempt { min_delay_ms } else { 0 }));
            return Ok(GreyDecision::Defer { retry_after, first_attempt });
        }
        self.store.put(&pass_key, &now.to_le_bytes(), Some(self.settings.pass_lifetime)).await?;
        for triplet in triplets {
            self.store.delete(&triplet).await?;
        }
        Ok(GreyDecision::Pass(PassReason::Retried))
    }
}

/// The first-attempt time another process just wrote.
async fn continue_with_existing(store: &dyn Store, triplet: &str, now: u64) -> StoreResult<u64> {
    Ok(store.get(triplet).await?.and_then(|v| v.as_slice().try_into().ok()).map_or(now, u64::from_le_bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EmbeddedStore;

    fn greylist(dir: &tempfile::TempDir, min_delay: Duration) -> Greylist {
        let store = Arc::new(EmbeddedStore::open(&dir.path().join("s.redb"), false).unwrap());
        Greylist::new(
            store,
            GreylistSettings {
                min_delay,
                expiry: Duration::from_secs(3600),
                pass_lifetime: Duration::from_secs(86_400),
                skip_networks: vec![Network::parse("203.0.113.0/24").unwrap()],
            },
        )
    }

    #[tokio::test]
    async fn first_defers_early_retry_defers_late_retry_passes_then_known() {
        let dir = tempfile::tempdir().unwrap();
        let g = greylist(&dir, Duration::from_millis(300));
        let ip: IpAddr = "192.0.2.10".parse().unwrap();
        let first = g.check(ip, "a@sender.example", &["x@example.com"]).await.unwrap();
        assert!(matches!(first, GreyDecision::Defer { first_attempt: true, .. }), "{first:?}");
        let early = g.check(ip, "a@sender.example", &["x@example.com"]).await.unwrap();
        assert!(matches!(early, GreyDecision::Defer { first_attempt: false, .. }), "{early:?}");
        tokio::time::sleep(Duration::from_millis(350)).await;
        // The retry may come from another address of the same /24.
        let other: IpAddr = "192.0.2.99".parse().unwrap();
        assert_eq!(g.check(other, "a@sender.example", &["x@example.com"]).await.unwrap(), GreyDecision::Pass(PassReason::Retried));
        // Next message, other sender of the same domain, other recipient: at once.
        assert_eq!(g.check(ip, "b@sender.example", &["y@example.com"]).await.unwrap(), GreyDecision::Pass(PassReason::KnownSender));
        // Another network is a stranger.
        let stranger: IpAddr = "198.51.100.1".parse().unwrap();
        assert!(matches!(g.check(stranger, "a@sender.example", &["x@example.com"]).await.unwrap(), GreyDecision::Defer { .. }));
        let skipped: IpAddr = "203.0.113.5".parse().unwrap();
        assert_eq!(g.check(skipped, "a@new.example", &["x@example.com"]).await.unwrap(), GreyDecision::Pass(PassReason::SkippedNetwork));
    }

    #[tokio::test]
    async fn every_recipient_must_have_waited() {
        let dir = tempfile::tempdir().unwrap();
        let g = greylist(&dir, Duration::from_millis(200));
        let ip: IpAddr = "2001:db8:1:2::7".parse().unwrap();
        assert!(matches!(g.check(ip, "a@s.example", &["x@example.com"]).await.unwrap(), GreyDecision::Defer { .. }));
        tokio::time::sleep(Duration::from_millis(250)).await;
        // x waited; y is new: the message is deferred.
        let both = g.check(ip, "a@s.example", &["x@example.com", "y@example.com"]).await.unwrap();
        assert!(matches!(both, GreyDecision::Defer { first_attempt: true, .. }), "{both:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
        // Same /64, another address.
        let ip2: IpAddr = "2001:db8:1:2::8".parse().unwrap();
        assert_eq!(
            g.check(ip2, "a@s.example", &["x@example.com", "y@example.com"]).await.unwrap(),
            GreyDecision::Pass(PassReason::Retried)
        );
    }
}
