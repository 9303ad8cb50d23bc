//! Concurrent session limits, in all and per client IP; trusted networks are exempt
//! from the per-IP limit (never from the total, which protects the gateway itself).
//! When the gateway is full, the session that has waited longest for a command is
//! asked to leave before a new client is refused: a thousand trickling clients cannot
//! lock everyone else out.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use rempart_model::net::Network;
use tokio::sync::Notify;

/// A session idle for less than this is never evicted (it is between two commands).
pub const MIN_IDLE_TO_EVICT: Duration = Duration::from_secs(1);

/// What a session tells the limits about itself, and how it is asked to leave.
#[derive(Debug, Default)]
pub struct Activity {
    /// When it began waiting for a command (ms since `EPOCH`, 0: busy).
    idle_since_ms: AtomicU64,
    evicted: AtomicBool,
    evict: Notify,
}

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

fn now_ms() -> u64 {
    // Never 0, which means "busy".
    EPOCH.elapsed().as_millis() as u64 + 1
}

impl Activity {
    /// Waiting for the client's next command: the session may be evicted.
    pub fn idle(&self) {
        self.idle_since_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// Working on a command: not evicted.
    pub fn busy(&self) {
        self.idle_since_ms.store(0, Ordering::Relaxed);
    }

    /// Resolves once the session is asked to make room.
    pub async fn evicted(&self) {
        loop {
            let notified = self.evict.notified();
            if self.evicted.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }
}

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
    /// Every session's activity, by slot number.
    sessions: HashMap<u64, Arc<Activity>>,
    next_slot: u64,
}

/// Held for the life of a session.
pub struct SessionSlot {
    limits: Arc<ConnectionLimits>,
    ip: Option<IpAddr>,
    number: u64,
    pub activity: Arc<Activity>,
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

    /// A slot among all sessions, or `None` when the gateway is full and no session
    /// has been idle long enough to be evicted. An evicted session leaves within
    /// moments; its slot is given at once (the total is over by that one meanwhile).
    pub fn acquire(self: &Arc<Self>) -> Option<SessionSlot> {
        let mut c = self.counts();
        if c.total >= self.max_total && !Self::evict_one(&c) {
            return None;
        }
        c.total += 1;
        c.next_slot += 1;
        let (number, activity) = (c.next_slot, Arc::new(Activity::default()));
        c.sessions.insert(number, activity.clone());
        Some(SessionSlot { limits: self.clone(), ip: None, number, activity })
    }

    /// Asks the session idle longest (at least `MIN_IDLE_TO_EVICT`) to leave.
    fn evict_one(c: &Counts) -> bool {
        let limit = now_ms().saturating_sub(MIN_IDLE_TO_EVICT.as_millis() as u64);
        let oldest = c
            .sessions
            .values()
            .filter(|a| !a.evicted.load(Ordering::Relaxed))
            .map(|a| (a.idle_since_ms.load(Ordering::Relaxed), a))
            .filter(|(since, _)| *since != 0 && *since <= limit)
            .min_by_key(|(since, _)| *since);
        let Some((_, activity)) = oldest else { return false };
        activity.evicted.store(true, Ordering::Release);
        activity.evict.notify_waiters();
        true
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
        c.sessions.remove(&self.number);
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

/// Bytes of message data all sessions hold in memory at once (`smtp.max_data_in_flight`):
/// past it, a message being received is read to its end but not kept, and refused with
/// `452 4.3.1`, so a crowd of maximum-size messages cannot exhaust memory.
#[derive(Debug)]
pub struct DataBudget {
    limit: usize,
    used: std::sync::atomic::AtomicUsize,
}

impl DataBudget {
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self { limit, used: Default::default() })
    }
}

/// The bytes one message holds of the budget, given back when it is dropped.
#[derive(Debug, Default)]
pub struct Reservation {
    budget: Option<Arc<DataBudget>>,
    bytes: usize,
}

impl Reservation {
    pub fn new(budget: &Arc<DataBudget>) -> Self {
        Self { budget: Some(budget.clone()), bytes: 0 }
    }

    /// Grows the reservation to `total` bytes; false (and nothing taken) when the budget
    /// has no room.
    pub fn grow_to(&mut self, total: usize) -> bool {
        let Some(budget) = &self.budget else { return true };
        if total <= self.bytes {
            return true;
        }
        let more = total - self.bytes;
        let before = budget.used.fetch_add(more, Ordering::AcqRel);
        if before + more > budget.limit {
            budget.used.fetch_sub(more, Ordering::AcqRel);
            return false;
        }
        self.bytes = total;
        true
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(budget) = &self.budget {
            budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
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

    /// Issue 30, defect 4: when full, the session idle longest makes room.
    #[tokio::test]
    async fn when_full_the_longest_idle_session_is_evicted() {
        let limits = ConnectionLimits::new(2, 2, vec![]);
        let a = limits.acquire().unwrap();
        let b = limits.acquire().unwrap();
        // Both busy: nobody can be evicted.
        assert!(limits.acquire().is_none());
        a.activity.idle();
        // Idle, but not for long enough.
        assert!(limits.acquire().is_none());
        tokio::time::sleep(MIN_IDLE_TO_EVICT + Duration::from_millis(50)).await;
        b.activity.idle();
        let c = limits.acquire().expect("a was evicted to make room");
        tokio::time::timeout(Duration::from_secs(1), a.activity.evicted()).await.expect("a is told");
        assert!(!b.activity.evicted.load(Ordering::Relaxed));
        drop(a);
        assert_eq!(limits.active(), 2);
        drop((b, c));
    }

    #[test]
    fn the_data_budget_is_shared_and_given_back() {
        let budget = DataBudget::new(100);
        let mut a = Reservation::new(&budget);
        let mut b = Reservation::new(&budget);
        assert!(a.grow_to(60) && a.grow_to(60));
        assert!(!b.grow_to(50), "60 + 50 > 100");
        assert!(b.grow_to(40));
        assert_eq!(budget.used.load(Ordering::Relaxed), 100);
        drop(a);
        assert_eq!(budget.used.load(Ordering::Relaxed), 40);
        assert!(b.grow_to(100));
        drop(b);
        assert_eq!(budget.used.load(Ordering::Relaxed), 0);
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
