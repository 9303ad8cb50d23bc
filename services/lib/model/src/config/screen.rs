//! `[screen]`: what a client must pass before its SMTP dialogue, as Postfix's postscreen
//! does, but inside the edge (no reconnect needed): a greeting pause that catches clients
//! talking first, weighted DNS lists at connect, a per-IP connection rate, and commands
//! pipelined before EHLO. Trusted networks skip it all.

use serde::{Deserialize, Serialize};

use super::DnsListConfig;
use crate::HumanDuration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScreenConfig {
    /// Wait this long before the 220 greeting; a client that talks meanwhile gets
    /// `554 5.5.1` (spam software rarely waits). Default "0s" (off); Postfix's
    /// postscreen uses "6s".
    pub greet_pause: HumanDuration,
    /// DNS lists asked at connect (same fields as `[[scanner.dnsbl]]`; `description`
    /// is the list's public name in the refusal). Their weights for the client's
    /// address are added; an allowlist has a negative weight. Default none.
    #[serde(rename = "dnsbl", skip_serializing_if = "Vec::is_empty")]
    pub dnsbls: Vec<DnsListConfig>,
    /// The sum of weights at which a client is refused (`554 5.7.1` naming the lists).
    /// The result is cached per IP in the store for the answers' TTL. Default 1.0.
    pub dnsbl_threshold: f64,
    /// Connections one client IP may open per minute, counted in the store (every
    /// edge); beyond, `421 4.7.0`. Default 0: no limit.
    pub connection_rate_per_ip: u64,
    /// Commands sent before the reply to EHLO/HELO (pipelining before the server said
    /// it may, RFC 2920) get `554 5.5.1` and the session ends. Default true.
    pub refuse_early_pipelining: bool,
}

impl Default for ScreenConfig {
    fn default() -> Self {
        Self {
            greet_pause: HumanDuration::secs(0),
            dnsbls: Vec::new(),
            dnsbl_threshold: 1.0,
            connection_rate_per_ip: 0,
            refuse_early_pipelining: true,
        }
    }
}
