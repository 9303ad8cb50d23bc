//! What may change while the gateway runs (domains, routes, policies, lists, weights,
//! certificates), as one snapshot each component reads on every use: one atomic load,
//! no lock. A reload builds a complete new snapshot and swaps it in; readers holding the
//! old one finish with it (a session keeps the snapshot it started with).

use std::sync::Arc;

use arc_swap::ArcSwap;

/// A snapshot and the configuration version it was built from (1 at start, +1 per
/// reload that was applied).
#[derive(Debug)]
pub struct Versioned<T> {
    pub version: u64,
    pub value: T,
}

impl<T> std::ops::Deref for Versioned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

/// A shared handle on the current snapshot; clones see the same one.
#[derive(Debug)]
pub struct Live<T> {
    current: Arc<ArcSwap<Versioned<T>>>,
}

impl<T> Clone for Live<T> {
    fn clone(&self) -> Self {
        Live { current: self.current.clone() }
    }
}

impl<T> Live<T> {
    /// The first snapshot, version 1.
    pub fn new(value: T) -> Self {
        Self::at(1, value)
    }

    pub fn at(version: u64, value: T) -> Self {
        Live { current: Arc::new(ArcSwap::from_pointee(Versioned { version, value })) }
    }

    /// The current snapshot, kept as long as the caller needs it.
    pub fn load(&self) -> Arc<Versioned<T>> {
        self.current.load_full()
    }

    pub fn version(&self) -> u64 {
        self.current.load().version
    }

    /// Makes `value` the current snapshot. Readers see it from their next load.
    pub fn store(&self, version: u64, value: T) {
        self.current.store(Arc::new(Versioned { version, value }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_keeps_its_snapshot_and_the_next_load_sees_the_new_one() {
        let live = Live::new("a".to_string());
        let other = live.clone();
        let held = live.load();
        other.store(2, "b".to_string());
        assert_eq!((held.version, held.as_str()), (1, "a"));
        let now = live.load();
        assert_eq!((now.version, now.as_str()), (2, "b"));
        assert_eq!(live.version(), 2);
    }
}
