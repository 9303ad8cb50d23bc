//! `QueueId`: the short, unique id shown in the `250` reply and carried in every log line.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct QueueId(String);

static LAST: AtomicU64 = AtomicU64::new(0);
const ALPHABET: &[u8; 32] = b"0123456789BCDFGHJKLMNPQRSTVWXYZa";

impl QueueId {
    /// A new id, unique within this process and across restarts: milliseconds since the
    /// epoch in the high bits and a sequence in the low 12 bits, never going backwards
    /// (the clock stepping back only borrows from the sequence).
    pub fn generate() -> Self {
        let now = crate::date::unix_now_ms() << 12;
        let mut prev = LAST.load(Ordering::Relaxed);
        let value = loop {
            let next = now.max(prev + 1);
            match LAST.compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => break next,
                Err(seen) => prev = seen,
            }
        };
        // 13 base-32 digits hold 65 bits; the top digit is always small, so skip it.
        let mut out = [0u8; 12];
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
        assert!(ids.iter().all(|id| id.as_str().len() == 12));
        assert!(ids.windows(2).all(|w| w[0].as_str() < w[1].as_str()));
    }
}
