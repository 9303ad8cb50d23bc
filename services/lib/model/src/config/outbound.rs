//! What customers' accounts may send (mail submitted after AUTH): limits per account
//! and per domain, shared by every edge through the store.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboundConfig {
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
