//! The Bayes classifier's storage (the model and its math are
//! `rempart_classifier::bayes`'s).
//!
//! Scale: scanners hold the whole token table in memory and reload it only when the
//! stored model version changes; learning writes atomic count deltas, never a read of
//! the table. Keys: `bayes.s.<token>` / `bayes.h.<token>` (counters),
//! `bayes.n.spam` / `bayes.n.ham`, `bayes.version`, and `bayes.m.<message>` → "s"/"h"
//! so a message learned twice counts once and relearning moves it. Learning also keeps
//! the message's token buckets for the token regression beside Bayes (`linear`), which
//! is fitted when the model is (re)loaded.

use std::sync::{Arc, RwLock};

pub use rempart_classifier::bayes::{Class, Model, Vote};
use rempart_classifier::linear::{self, LinearModel};

use crate::{Store, StoreResult, counter};

const VERSION_KEY: &str = "bayes.version";
/// Each learned message's token buckets, for the token regression.
const LINEAR_PREFIX: &str = "linear.m.";

/// Where a class's counts are kept.
trait Keys {
    fn tag(self) -> &'static [u8];
    fn count_key(self) -> &'static str;
    fn token_key(self, token: u64) -> String;
}

impl Keys for Class {
    fn tag(self) -> &'static [u8] {
        match self {
            Class::Spam => b"s",
            Class::Ham => b"h",
        }
    }

    fn count_key(self) -> &'static str {
        match self {
            Class::Spam => "bayes.n.spam",
            Class::Ham => "bayes.n.ham",
        }
    }

    fn token_key(self, token: u64) -> String {
        match self {
            Class::Spam => format!("bayes.s.{token:016x}"),
            Class::Ham => format!("bayes.h.{token:016x}"),
        }
    }
}

/// What learning one message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learned {
    New,
    /// Already learned as this class: nothing counted.
    Duplicate,
    /// Was learned as the other class: moved.
    Moved,
}

/// Counts and version, for `rempart bayes stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BayesStats {
    pub version: i64,
    pub spam_messages: i64,
    pub ham_messages: i64,
    pub tokens: usize,
}

pub struct Bayes {
    store: Arc<dyn Store>,
    model: RwLock<Arc<Model>>,
}

impl Bayes {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Bayes { store, model: RwLock::new(Arc::new(Model::default())) }
    }

    /// The model in memory (empty until the first reload).
    pub fn model(&self) -> Arc<Model> {
        self.model.read().map(|m| m.clone()).unwrap_or_default()
    }

    /// Reloads the token table if the stored version differs; true when it did.
    pub async fn reload_if_changed(&self) -> StoreResult<bool> {
        let version = self.version().await?;
        if version == self.model().version {
            return Ok(false);
        }
        let model = self.load(version).await?;
        if let Ok(mut current) = self.model.write() {
            *current = Arc::new(model);
        }
        Ok(true)
    }

    async fn load(&self, version: i64) -> StoreResult<Model> {
        let mut model = Model { version, ..Model::default() };
        let counts = self.store.get_many(&[Class::Spam.count_key().to_string(), Class::Ham.count_key().to_string()]).await?;
        model.spam_messages = counter(Class::Spam.count_key(), counts[0].as_deref())?;
        model.ham_messages = counter(Class::Ham.count_key(), counts[1].as_deref())?;
        model.linear = self.fit_linear().await?;
        for (prefix, spam) in [("bayes.s.", true), ("bayes.h.", false)] {
            for (key, value) in self.store.scan_prefix(prefix, usize::MAX).await? {
                let Some(token) = key.strip_prefix(prefix).and_then(|t| u64::from_str_radix(t, 16).ok()) else { continue };
                let n = u32::try_from(counter(&key, Some(&value))?.max(0)).unwrap_or(u32::MAX);
                let entry = model.tokens.entry(token).or_default();
                if spam {
                    entry.0 = n;
                } else {
                    entry.1 = n;
                }
            }
        }
        Ok(model)
    }

    /// The token regression fitted on the learned messages (at most
    /// `linear::MAX_MESSAGES`), off the async threads: well under a second for 5,000.
    async fn fit_linear(&self) -> StoreResult<Option<Arc<LinearModel>>> {
        let rows = self.store.scan_prefix(LINEAR_PREFIX, linear::MAX_MESSAGES).await?;
        // Each stored value is dropped once decoded: the peak is about one copy.
        let messages: Vec<(bool, Vec<u32>)> = rows.into_iter().filter_map(|(_, value)| linear::decode(&value)).collect();
        if messages.is_empty() {
            return Ok(None);
        }
        let fit = move || LinearModel::fit(messages.iter().map(|(spam, buckets)| (buckets.as_slice(), *spam)));
        let model = match tokio::runtime::Handle::try_current() {
            Ok(_) => tokio::task::spawn_blocking(fit)
                .await
                .map_err(|e| crate::StoreError::Backend { backend: "linear", message: e.to_string() })?,
            Err(_) => fit(),
        };
        Ok(Some(Arc::new(model)))
    }

    /// Learns one message (identified by `message`, e.g. a hash of its Message-ID)
    /// with its tokens (each counted once).
    pub async fn learn(&self, message: u64, class: Class, tokens: &[u64]) -> StoreResult<Learned> {
        let message_key = format!("bayes.m.{message:016x}");
        let mut unique = tokens.to_vec();
        unique.sort_unstable();
        unique.dedup();
        let mut deltas: Vec<(String, i64)> = Vec::with_capacity(2 * unique.len() + 4);
        let outcome = if self.store.compare_and_set(&message_key, None, class.tag(), None).await? {
            Learned::New
        } else {
            let other = if class == Class::Spam { Class::Ham } else { Class::Spam };
            if !self.store.compare_and_set(&message_key, Some(other.tag()), class.tag(), None).await? {
                return Ok(Learned::Duplicate);
            }
            deltas.extend(unique.iter().map(|t| (other.token_key(*t), -1)));
            deltas.push((other.count_key().to_string(), -1));
            Learned::Moved
        };
        let buckets = linear::encode(class == Class::Spam, &linear::buckets(&unique));
        self.store.put(&format!("{LINEAR_PREFIX}{message:016x}"), &buckets, None).await?;
        deltas.extend(unique.iter().map(|t| (class.token_key(*t), 1)));
        deltas.push((class.count_key().to_string(), 1));
        deltas.push((VERSION_KEY.to_string(), 1));
        self.store.add(&deltas).await?;
        Ok(outcome)
    }

    /// Spam and ham learned so far (two reads: cheap enough for a page).
    pub async fn learned(&self) -> StoreResult<(i64, i64)> {
        let keys = [Class::Spam.count_key().to_string(), Class::Ham.count_key().to_string()];
        let values = self.store.get_many(&keys).await?;
        Ok((counter(&keys[0], values[0].as_deref())?, counter(&keys[1], values[1].as_deref())?))
    }

    /// The stored model version (changes with every message learned).
    pub async fn version(&self) -> StoreResult<i64> {
        counter(VERSION_KEY, self.store.get(VERSION_KEY).await?.as_deref())
    }

    pub async fn stats(&self) -> StoreResult<BayesStats> {
        let keys = [Class::Spam.count_key().to_string(), Class::Ham.count_key().to_string(), VERSION_KEY.to_string()];
        let values = self.store.get_many(&keys).await?;
        let mut tokens = std::collections::HashSet::new();
        for prefix in ["bayes.s.", "bayes.h."] {
            for (key, value) in self.store.scan_prefix(prefix, usize::MAX).await? {
                if counter(&key, Some(&value))? > 0 {
                    tokens.insert(key[prefix.len()..].to_string());
                }
            }
        }
        Ok(BayesStats {
            spam_messages: counter(&keys[0], values[0].as_deref())?,
            ham_messages: counter(&keys[1], values[1].as_deref())?,
            version: counter(&keys[2], values[2].as_deref())?,
            tokens: tokens.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn learns_counts_once_moves_and_classifies() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(crate::EmbeddedStore::open(&dir.path().join("s.redb"), false).unwrap());
        let bayes = Bayes::new(store);
        // Spam says 1..=10, ham says 100..=110; 11 is shared.
        for m in 0..30u64 {
            let spam: Vec<u64> = (1..=11).chain([1000 + m]).collect();
            let ham: Vec<u64> = (100..=110).chain([11, 2000 + m]).collect();
            assert_eq!(bayes.learn(m, Class::Spam, &spam).await.unwrap(), Learned::New);
            assert_eq!(bayes.learn(500 + m, Class::Ham, &ham).await.unwrap(), Learned::New);
        }
        assert_eq!(bayes.learn(0, Class::Spam, &[1, 2]).await.unwrap(), Learned::Duplicate);
        assert!(bayes.reload_if_changed().await.unwrap());
        assert!(!bayes.reload_if_changed().await.unwrap(), "unchanged version: no reload");
        let model = bayes.model();
        assert_eq!((model.spam_messages, model.ham_messages), (30, 30));
        assert_eq!(model.tokens.get(&1), Some(&(30, 0)));
        assert_eq!(model.tokens.get(&11), Some(&(30, 30)));
        assert_eq!(model.classify(&[1, 2, 3], 200), None, "too few learned to vote");
        let spammy = model.classify(&[1, 2, 3, 4, 5], 20).unwrap();
        let hammy = model.classify(&[100, 101, 102, 103], 20).unwrap();
        let unknown = model.classify(&[999_999], 20).unwrap();
        assert!(spammy > 0.99 && hammy < 0.01 && (unknown - 0.5).abs() < 1e-9, "{spammy} {hammy} {unknown}");

        // Relearning a spam as ham moves it.
        assert_eq!(bayes.learn(0, Class::Ham, &(1..=11).chain([1000]).collect::<Vec<_>>()).await.unwrap(), Learned::Moved);
        bayes.reload_if_changed().await.unwrap();
        let model = bayes.model();
        assert_eq!((model.spam_messages, model.ham_messages), (29, 31));
        assert_eq!(model.tokens.get(&1), Some(&(29, 1)));
        let stats = bayes.stats().await.unwrap();
        assert_eq!((stats.spam_messages, stats.ham_messages), (29, 31));
        assert!(stats.tokens > 80 && stats.version == 61, "{stats:?}");
    }

    #[tokio::test]
    async fn the_token_regression_is_fitted_from_what_was_learned() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(crate::EmbeddedStore::open(&dir.path().join("s.redb"), false).unwrap());
        let bayes = Bayes::new(store.clone());
        // Tokens are hashes: their high bits pick the regression's bucket.
        let token = |k: u64| k << 44;
        for m in 0..30u64 {
            let spam: Vec<u64> = (1..=5).map(token).chain([token(9), token(1000 + m)]).collect();
            let ham: Vec<u64> = (100..=105).map(token).chain([token(9), token(2000 + m)]).collect();
            bayes.learn(m, Class::Spam, &spam).await.unwrap();
            bayes.learn(500 + m, Class::Ham, &ham).await.unwrap();
        }
        assert!(bayes.model().linear.is_none(), "not fitted before a reload");
        bayes.reload_if_changed().await.unwrap();
        let model = bayes.model();
        let vote = |tokens: &[u64]| model.vote(tokens, 1).and_then(|v| v.linear).expect("fitted");
        assert!(vote(&[token(1), token(2), token(9)]) > 1.0);
        assert!(vote(&[token(100), token(101), token(9)]) < -1.0);
        // Relearning a message as the other class moves its stored buckets too.
        let spam: Vec<u64> = (1..=5).map(token).chain([token(9), token(1000)]).collect();
        assert_eq!(bayes.learn(0, Class::Ham, &spam).await.unwrap(), Learned::Moved);
        let stored = store.get(&format!("{LINEAR_PREFIX}{:016x}", 0)).await.unwrap().unwrap();
        assert_eq!(linear::decode(&stored).map(|(spam, _)| spam), Some(false));
    }
}
