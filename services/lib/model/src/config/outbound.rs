//! What customers' accounts may send (mail submitted after AUTH): limits per account
//! and per domain, shared by every edge through the store.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboundConfig {
    /// Submitted mail scoring this or more (content rules only) is refused and held.
    /// Default 5.0: below the inbound add_header (6), as outbound spam costs the whole
    /// platform its reputation.
    pub block: f64,
    /// An account with this many blocked messages within `suspend_window` is suspended
    /// (Exim's BlockCracking idea: a stolen password sends spam) until `rempart account
    /// unsuspend`; 0: never. Default 5.
    pub suspend_after_blocked: u64,
    /// An account whose mail came back as "user unknown" for this many recipients
    /// within `suspend_window` (bounces to it, read as `rempart dsn` does) is suspended
    /// too: a stolen password sending to harvested addresses. 0: never. Default 10.
    pub suspend_after_bounces: u64,
    /// Default "1h".
    pub suspend_window: crate::HumanDuration,
    /// A recipient that bounced as unknown is refused to every account for this long
    /// (`550 5.1.1` at RCPT, saying when it bounced), as senders' suppression lists do.
    /// "0s": never. Default "7d".
    pub dead_recipient_ttl: crate::HumanDuration,
    /// Each account's limits. Default 200 messages and 500 recipients an hour, 1,000
    /// and 2,000 a day.
    pub account: SendLimits,
    /// Each customer domain's limits, all its accounts together. Default 2,000
    /// messages and 5,000 recipients an hour, 10,000 and 50,000 a day.
    pub domain: SendLimits,
}

/// Sending limits; 0 means none. Past one, a message gets `451 4.7.1` until the window
/// (the clock hour or the UTC day) turns.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendLimits {
    pub messages_per_hour: u64,
    pub messages_per_day: u64,
    pub recipients_per_hour: u64,
    pub recipients_per_day: u64,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        Self {
            block: 5.0,
            suspend_after_blocked: 5,
            suspend_after_bounces: 10,
            suspend_window: crate::HumanDuration::secs(3600),
            dead_recipient_ttl: crate::HumanDuration::secs(7 * 86_400),
            account: SendLimits { messages_per_hour: 200, messages_per_day: 1_000, recipients_per_hour: 500, recipients_per_day: 2_000 },
            domain: SendLimits {
                messages_per_hour: 2_000,
                messages_per_day: 10_000,
                recipients_per_hour: 5_000,
                recipients_per_day: 50_000,
            },
        }
    }
}
