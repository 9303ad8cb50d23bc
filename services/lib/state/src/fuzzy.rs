//! The memory of campaigns in the shared store: each reported message's fuzzy
//! fingerprint (`rempart_classifier::fuzzy`) as one key per sketch value and per
//! attachment hash, naming the class and the message. A lookup reads them all in one
//! `get_many`; every node sees a report as soon as the store has it. A released (ham)
//! message writes the same keys as ham, so it — and what resembles it — never hits.

use std::collections::HashMap;
use std::time::Duration;

use rempart_classifier::bayes::Class;
use rempart_classifier::fuzzy::{Fingerprint, SHINGLES};

use crate::{Store, StoreResult, key};

/// How long a report is remembered.
pub const RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);
/// The share of equal MinHash values from which a message is the reported one's variant.
pub const MIN_SIMILARITY: f64 = 0.5;

/// What the memory says about a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Recall {
    /// Like reported spam: the similarity (0.5 to 1) and whether it was an attachment's
    /// exact hash (similarity 1).
    Spam { similarity: f64, attachment: bool },
    /// Like a message released as ham.
    Ham { similarity: f64 },
}

fn shingle_key(value: u64) -> String {
    key(&["fuzzy", "s", &format!("{value:016x}")])
}

fn attachment_key(value: u64) -> String {
    key(&["fuzzy", "a", &format!("{value:016x}")])
}

fn keys(fp: &Fingerprint) -> Vec<String> {
    fp.shingles.iter().map(|v| shingle_key(*v)).chain(fp.attachments.iter().map(|v| attachment_key(*v))).collect()
}

/// Remembers `fp` as `class` (a later report of the other class overwrites it).
pub async fn remember(store: &dyn Store, fp: &Fingerprint, class: Class) -> StoreResult<()> {
    if fp.is_empty() {
        return Ok(());
    }
    let value = format!("{}:{:016x}", if class == Class::Spam { "s" } else { "h" }, fp.id());
    for k in keys(fp) {
        store.put(&k, value.as_bytes(), Some(RETENTION)).await?;
    }
    Ok(())
}

/// What the memory says about `fp`: ham wins over spam (a released message must never
/// hit), then the closest reported spam at `MIN_SIMILARITY` or more.
pub async fn recall(store: &dyn Store, fp: &Fingerprint) -> StoreResult<Option<Recall>> {
    if fp.is_empty() {
        return Ok(None);
    }
    let keys = keys(fp);
    let values = store.get_many(&keys).await?;
    let mut shingle_votes: HashMap<(bool, String), usize> = HashMap::new();
    let mut attachment_spam = false;
    for (i, value) in values.iter().enumerate() {
        let Some(text) = value.as_deref().and_then(|v| std::str::from_utf8(v).ok()) else { continue };
        let Some((class, id)) = text.split_once(':') else { continue };
        let spam = class == "s";
        if i < fp.shingles.len() {
            *shingle_votes.entry((spam, id.to_string())).or_default() += 1;
        } else if spam {
            attachment_spam = true;
        }
    }
    // A short text's sketch has fewer values: shares of what it has, out of 8 at least.
    let of = fp.shingles.len().max(SHINGLES / 4) as f64;
    let best = |spam: bool| shingle_votes.iter().filter(|((s, _), _)| *s == spam).map(|(_, n)| *n).max().unwrap_or(0) as f64 / of;
    let (ham, spam) = (best(false), best(true));
    if ham >= MIN_SIMILARITY {
        return Ok(Some(Recall::Ham { similarity: ham }));
    }
    if spam >= MIN_SIMILARITY {
        return Ok(Some(Recall::Spam { similarity: spam, attachment: false }));
    }
    if attachment_spam {
        return Ok(Some(Recall::Spam { similarity: 1.0, attachment: true }));
    }
    Ok(None)
}
