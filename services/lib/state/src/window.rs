//! Counters that expire with their time window (failed logins, sending limits): a key
//! per window, written with compare-and-set and the window's TTL, so concurrent
//! increments on several processes all count and nothing needs sweeping.

use std::time::Duration;

use crate::{Store, StoreError};

/// The counter under `key` (0 when absent or expired).
pub async fn read(store: &dyn Store, key: &str) -> Result<i64, StoreError> {
    Ok(store.get(key).await?.as_deref().map_or(0, decode))
}

/// Adds `by` to the counter under `key`, which expires `ttl` after this write, and
/// gives the count it wrote. Gives up after 8 lost races (the count is a limit, not a
/// ledger), giving the last count read.
pub async fn add(store: &dyn Store, key: &str, by: i64, ttl: Duration) -> Result<i64, StoreError> {
    let mut n = 0;
    for _ in 0..8 {
        let current = store.get(key).await?;
        n = current.as_deref().map_or(0, decode);
        if store.compare_and_set(key, current.as_deref(), &(n + by).to_le_bytes(), Some(ttl)).await? {
            return Ok(n + by);
        }
    }
    Ok(n)
}

/// The number of the window of `length` that `now` (seconds since the epoch) falls in.
pub fn number(now: u64, length: Duration) -> u64 {
    now / length.as_secs().max(1)
}

fn decode(value: &[u8]) -> i64 {
    value.try_into().map(i64::from_le_bytes).unwrap_or(0)
}
