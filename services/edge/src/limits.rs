//! Concurrent session limits, in all and per client IP; trusted networks are exempt
//! from the per-IP limit (never from the total, which protects the gateway itself).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use rempart_model::net::Network;
use tokio::sync::Notify;

pub struct ConnectionLimits {
    max_total: usize,
    max_per_ip: usize,
    trusted: Vec<Network>,
    counts: Mutex<Counts>,
    idle: Notify,
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Held for the life of a session.
pub struct SessionSlot {
    limits: Arc<ConnectionLimits>,
    ip: Option<IpAddr>,
}

impl ConnectionLimits {
    pub fn new(max_total: usize, max_per_ip: usize, trusted: Vec<Network>) -> Arc<Self> {
        Arc::new(Self { max_total, max_per_ip, trusted, counts: Mutex::default(), idle: Notify::new() })
    }

    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|n| n.contains(ip))
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A slot among all sessions, or `None` when the gateway is full.
    pub fn acquire(self: &Arc<Self>) -> Option<SessionSlot> {
        let mut c = self.counts();
        if c.total >= self.max_total {
            return None;
        }
        c.total += 1;
        Some(SessionSlot { limits: self.clone(), ip: None })
    }

    pub fn active(&self) -> usize {
        self.counts().total
    }

    /// Resolves when no session is left.
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.active() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl SessionSlot {
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.limits.is_trusted(ip)
    }

    /// Counts the slot against `ip`; false when that client already has its maximum.
    /// A trusted client is not counted.
    pub fn claim_ip(&mut self, ip: IpAddr) -> bool {
        if self.limits.is_trusted(ip) {
            return true;
        }
        let mut c = self.limits.counts();
        let n = c.per_ip.entry(ip).or_default();
        if *n >= self.limits.max_per_ip {
            if *n == 0 {
                c.per_ip.remove(&ip);
            }
            return false;
        }
        *n += 1;
        self.ip = Some(ip);
        true
    }
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        let mut c = self.limits.counts();
        c.total -= 1;
        if let Some(ip) = self.ip
            && let Some(n) = c.per_ip.get_mut(&ip)
        {
            *n -= 1;
            if *n == 0 {
                c.per_ip.remove(&ip);
            }
        }
        if c.total == 0 {
            self.limits.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_in_all_and_per_ip() {
        let limits = ConnectionLimits::new(3, 2, vec![]);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let mut a = limits.acquire().unwrap();
        let mut b = limits.acquire().unwrap();
        let mut c = limits.acquire().unwrap();
        assert!(limits.acquire().is_none());
        assert!(a.claim_ip(ip) && b.claim_ip(ip));
        assert!(!c.claim_ip(ip));
        assert!(c.claim_ip("192.0.2.2".parse().unwrap()));
        drop(a);
        let mut d = limits.acquire().unwrap();
        assert!(d.claim_ip(ip));
        drop((b, c, d));
        assert_eq!(limits.active(), 0);
    }

    #[test]
    fn trusted_networks_have_no_per_ip_limit() {
        let limits = ConnectionLimits::new(4, 1, vec![Network::parse("127.0.0.0/8").unwrap()]);
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let mut slots: Vec<SessionSlot> = (0..3).map(|_| limits.acquire().unwrap()).collect();
        assert!(slots.iter_mut().all(|s| s.claim_ip(local)));
        let mut other = limits.acquire().unwrap();
        assert!(other.claim_ip("192.0.2.1".parse().unwrap()));
        assert!(limits.acquire().is_none(), "the total still applies");
    }
}
