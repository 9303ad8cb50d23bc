//! `QueueId`: the short, unique id shown in the `250` reply and carried in every log line.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct QueueId(String);

/// The last ordered part given: seconds << 16 | sequence.
static LAST: AtomicU64 = AtomicU64::new(0);
const ALPHABET: &[u8; 32] = b"0123456789BCDFGHJKLMNPQRSTVWXYZa";

impl QueueId {
    /// A new id: unique, roughly ordered by time, and not guessable (a queue id opens
    /// the public `/why/` page of a refusal, so it must not be enumerable). 80 bits in
    /// 16 base-32 digits: seconds since the epoch and a per-process sequence (48 bits,
    /// never going backwards: the clock stepping back only borrows from the sequence),
    /// then 32 random bits.
    pub fn generate() -> Self {
        let now = crate::date::unix_now() << 16;
        let mut prev = LAST.load(Ordering::Relaxed);
        let ordered = loop {
            let next = now.max(prev + 1);
            match LAST.compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => break next,
                Err(seen) => prev = seen,
            }
        };
        let mut random = [0u8; 4];
        // The system's generator; were it ever unavailable, the id is still unique
        // (the ordered part), only guessable.
        let _ = getrandom::fill(&mut random);
        let value = (u128::from(ordered & ((1 << 48) - 1)) << 32) | u128::from(u32::from_be_bytes(random));
        let mut out = [0u8; 16];
        for (i, slot) in out.iter_mut().rev().enumerate() {
            *slot = ALPHABET[((value >> (5 * i)) & 31) as usize];
        }
        Self(String::from_utf8_lossy(&out).into_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn from_string(s: String) -> Self {
        Self(s)
    }
}

impl fmt::Display for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::QueueId;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique_short_and_ordered() {
        let ids: Vec<QueueId> = (0..10_000).map(|_| QueueId::generate()).collect();
        let set: HashSet<_> = ids.iter().collect();
        assert_eq!(set.len(), ids.len());
        assert!(ids.iter().all(|id| id.as_str().len() == 16));
        assert!(ids.windows(2).all(|w| w[0].as_str() < w[1].as_str()));
    }

    /// Issue 30, defect 12: ids were a millisecond clock and a counter, so 1,902
    /// requests found every refusal of a second. Two ids made one after the other now
    /// differ in their last 32 bits (7 digits) by chance, not by one.
    #[test]
    fn consecutive_ids_are_not_guessable() {
        let ids: Vec<QueueId> = (0..1000).map(|_| QueueId::generate()).collect();
        let tails: HashSet<&str> = ids.iter().map(|id| &id.as_str()[9..]).collect();
        assert!(tails.len() > 990, "random tails repeat: {}", tails.len());
        let stepping_by_one = ids.windows(2).filter(|w| w[0].as_str()[..15] == w[1].as_str()[..15]).count();
        assert!(stepping_by_one < 100, "{stepping_by_one} consecutive ids differ only in the last digit");
    }
}
