//! Compact records of the verdicts the gateway gave in the SMTP session (refusals), so
//! that the `/why/{QueueId}` page can explain a refusal to the sender days later. Kept
//! 7 days in the shared store (`why.<queue id>`); a refused message itself is not kept.

use std::time::Duration;

use rempart_model::{Action, SymbolHit, Verdict};
use serde::{Deserialize, Serialize};

use crate::{Store, StoreError, StoreResult, key};

/// How long a refusal stays explainable.
pub const RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerdictRecord {
    pub queue_id: String,
    /// Seconds since the epoch.
    pub at: u64,
    pub action: Action,
    /// The reply the client was given, as sent ("550 5.7.1 …").
    pub reply: String,
    pub score: f64,
    pub symbols: Vec<SymbolHit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listed: Option<String>,
    /// The sender's domain only: the page is public.
    pub sender_domain: String,
    /// The recipients' domains only, for the same reason.
    pub recipient_domains: Vec<String>,
    /// What malware decided the refusal, if it did (the verdict's `malware`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub malware: Option<String>,
}

impl VerdictRecord {
    pub fn new(queue_id: &str, at: u64, verdict: &Verdict, reply: String, return_path: &str, recipients: &[&str]) -> Self {
        let domain = |a: &str| a.rsplit_once('@').map_or("", |(_, d)| d).to_ascii_lowercase();
        let mut recipient_domains: Vec<String> = recipients.iter().map(|r| domain(r)).collect();
        recipient_domains.sort();
        recipient_domains.dedup();
        Self {
            queue_id: queue_id.to_string(),
            at,
            action: verdict.action,
            reply,
            score: verdict.score,
            symbols: verdict.symbols.clone(),
            listed: verdict.listed.clone(),
            sender_domain: domain(return_path),
            recipient_domains,
            malware: verdict.malware.clone(),
        }
    }
}

fn record_key(queue_id: &str) -> String {
    key(&["why", queue_id])
}

pub async fn put(store: &dyn Store, record: &VerdictRecord) -> StoreResult<()> {
    let value = serde_json::to_vec(record).map_err(|e| StoreError::Backend { backend: store.backend(), message: e.to_string() })?;
    store.put(&record_key(&record.queue_id), &value, Some(RETENTION)).await
}

/// The record for `queue_id`; `None` when unknown, expired or unreadable.
pub async fn get(store: &dyn Store, queue_id: &str) -> StoreResult<Option<VerdictRecord>> {
    let value = store.get(&record_key(queue_id)).await?;
    Ok(value.and_then(|v| serde_json::from_slice(&v).ok()))
}
