//! Shared state: the `Store` trait with its backends, and what lives on it —
//! greylisting, the auto-allowlist (AWL) and the Bayes classifier.
//!
//! Backends: `embedded` (redb, the single-node default), `nats` (JetStream key-value,
//! for clusters) and `foundationdb` (behind the cargo feature of that name). All pass
//! the same conformance suite (tests/conformance.rs).
//!
//! Keys are NATS-subject-like so every backend can hold them as they are: segments of
//! `[A-Za-z0-9_=/-]` separated by '.', built with [`key`], which escapes anything else.
//! Prefix scans go by whole segments (`"bayes.t."`). Counters (`add`) are 8-byte
//! little-endian integers, FoundationDB's ADD format.

pub mod accounts;
pub mod awl;
pub mod bayes;
pub mod dkim_keys;
pub mod domains;
mod embedded;
#[cfg(feature = "foundationdb")]
mod fdb;
pub mod fuzzy;
pub mod greylist;
mod nats;
pub mod second_factor;
pub mod sender_lists;
mod shared;
mod timed;
pub mod verdicts;
pub mod window;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

pub use embedded::EmbeddedStore;
#[cfg(feature = "foundationdb")]
pub use fdb::FdbStore;
pub use nats::NatsStore;
pub use shared::{SharedState, announce_learning, settings};

/// The smallest limits of all backends, enforced by every backend so that what works
/// on one works on all: values as FoundationDB (100 kB); keys below NATS's 4 KiB
/// protocol line, which holds the key with the bucket's subject prefix (FoundationDB
/// alone would allow 10 kB).
pub const MAX_KEY_BYTES: usize = 2_048;
pub const MAX_VALUE_BYTES: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("key of {len} bytes is over the limit of {MAX_KEY_BYTES}")]
    KeyTooLarge { len: usize },
    #[error("value of {len} bytes for key {key:?} is over the limit of {MAX_VALUE_BYTES}")]
    ValueTooLarge { key: String, len: usize },
    #[error("invalid key {0:?}: segments of [A-Za-z0-9_=/-] separated by '.'")]
    InvalidKey(String),
    #[error("invalid prefix {0:?}: whole segments ending with '.', or empty")]
    InvalidPrefix(String),
    #[error("key {0:?} does not hold a counter")]
    NotACounter(String),
    #[error("{backend} store: {message}")]
    Backend { backend: &'static str, message: String },
}

pub type StoreResult<T> = Result<T, StoreError>;
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = StoreResult<T>> + Send + 'a>>;

/// A key-value store shared by every process of a deployment.
pub trait Store: Send + Sync {
    fn backend(&self) -> &'static str;

    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>>;

    /// Several keys at once (one round trip where the backend allows it).
    fn get_many<'a>(&'a self, keys: &'a [String]) -> StoreFuture<'a, Vec<Option<Vec<u8>>>>;

    /// Sets a value; with a TTL it disappears after that time.
    fn put<'a>(&'a self, key: &'a str, value: &'a [u8], ttl: Option<Duration>) -> StoreFuture<'a, ()>;

    /// Sets `value` only if the current value is `expected` (`None`: absent); false
    /// when it was not.
    fn compare_and_set<'a>(
        &'a self,
        key: &'a str,
        expected: Option<&'a [u8]>,
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> StoreFuture<'a, bool>;

    /// Adds to counters atomically (absent counts as 0). Concurrent adds never lose an
    /// increment.
    fn add<'a>(&'a self, deltas: &'a [(String, i64)]) -> StoreFuture<'a, ()>;

    /// Keys and values under `prefix` (whole segments), in key order, at most `limit`.
    fn scan_prefix<'a>(&'a self, prefix: &'a str, limit: usize) -> StoreFuture<'a, Vec<(String, Vec<u8>)>>;

    fn delete<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()>;

    /// The NATS connection under the store, for notifications between processes
    /// (`rempart.learn`); `None` for the other backends.
    fn nats_client(&self) -> Option<async_nats::Client> {
        None
    }
}

/// Subject on which `rempart learn` announces a new Bayes model version.
pub const LEARN_SUBJECT: &str = "rempart.learn";

/// A counter's value from what `get` returned.
pub fn counter(key: &str, value: Option<&[u8]>) -> StoreResult<i64> {
    match value {
        None => Ok(0),
        Some(bytes) => bytes.try_into().map(i64::from_le_bytes).map_err(|_| StoreError::NotACounter(key.to_string())),
    }
}

/// Builds a key from segments, escaping every byte outside `[A-Za-z0-9_/-]` as
/// `=XX` (so an address or a domain is one segment).
pub fn key(segments: &[&str]) -> String {
    let mut out = String::new();
    for (i, segment) in segments.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        if segment.is_empty() {
            out.push('=');
            continue;
        }
        for b in segment.bytes() {
            if b.is_ascii_alphanumeric() || b == b'_' || b == b'/' || b == b'-' {
                out.push(b as char);
            } else {
                out.push_str(&format!("={b:02X}"));
            }
        }
    }
    out
}

/// The inverse of [`key`]'s escaping, for one segment; `None` if it is not one.
pub fn unescape(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            if segment.len() == 1 {
                return Some(String::new());
            }
            let hex = segment.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else if bytes[i] == b'.' {
            return None;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Checks a key and a value against the shared rules and limits.
pub(crate) fn check_key(key: &str) -> StoreResult<()> {
    if key.len() > MAX_KEY_BYTES {
        return Err(StoreError::KeyTooLarge { len: key.len() });
    }
    let segment_ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_=/-".contains(&b));
    if key.split('.').all(segment_ok) { Ok(()) } else { Err(StoreError::InvalidKey(key.chars().take(80).collect())) }
}

pub(crate) fn check_value(key: &str, value: &[u8]) -> StoreResult<()> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(StoreError::ValueTooLarge { key: key.chars().take(80).collect(), len: value.len() });
    }
    Ok(())
}

pub(crate) fn check_prefix(prefix: &str) -> StoreResult<()> {
    if prefix.is_empty() {
        return Ok(());
    }
    match prefix.strip_suffix('.') {
        Some(body) if check_key(body).is_ok() => Ok(()),
        _ => Err(StoreError::InvalidPrefix(prefix.chars().take(80).collect())),
    }
}

/// Which backend holds the state, from `[state]`.
#[derive(Debug, Clone)]
pub enum StoreSettings {
    Embedded { path: std::path::PathBuf, fsync: bool },
    Nats { url: String, bucket: String, replicas: usize, credentials_file: Option<std::path::PathBuf>, ca_file: Option<std::path::PathBuf> },
    FoundationDb { cluster_file: Option<std::path::PathBuf> },
}

/// Opens the configured store, its operations timed into the metrics.
pub async fn open(settings: &StoreSettings) -> StoreResult<Arc<dyn Store>> {
    Ok(Arc::new(timed::Timed(open_backend(settings).await?)))
}

async fn open_backend(settings: &StoreSettings) -> StoreResult<Arc<dyn Store>> {
    Ok(match settings {
        StoreSettings::Embedded { path, fsync } => Arc::new(EmbeddedStore::open(path, *fsync)?),
        StoreSettings::Nats { url, bucket, replicas, credentials_file, ca_file } => {
            Arc::new(NatsStore::connect_with(url, bucket, *replicas, credentials_file.as_deref(), ca_file.as_deref()).await?)
        }
        #[cfg(feature = "foundationdb")]
        StoreSettings::FoundationDb { cluster_file } => Arc::new(FdbStore::open(cluster_file.as_deref())?),
        #[cfg(not(feature = "foundationdb"))]
        StoreSettings::FoundationDb { .. } => {
            return Err(StoreError::Backend {
                backend: "foundationdb",
                message: "this build has no FoundationDB support (cargo feature \"foundationdb\")".into(),
            });
        }
    })
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_segments_round_trip() {
        for segment in ["x@y.example", "", "*", "plain_-/", "é"] {
            assert_eq!(unescape(&key(&[segment])).as_deref(), Some(segment));
        }
        assert_eq!(unescape("a.b"), None);
    }

    #[test]
    fn keys_escape_what_subjects_cannot_hold() {
        assert_eq!(key(&["grey", "192.0.2.0/24", "a@b.example"]), "grey.192=2E0=2E2=2E0/24.a=40b=2Eexample");
        assert_eq!(key(&["x", ""]), "x.=");
        assert!(check_key(&key(&["awl", "Jean Dupont <j@d.fr>", "2001:db8::"])).is_ok());
        assert!(check_key("a..b").is_err());
        assert!(check_key("a b").is_err());
        assert!(check_prefix("bayes.t.").is_ok());
        assert!(check_prefix("bayes.t").is_err());
    }
}
