//! `[console]`: the quarantine portal and the `/why/` pages.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::HumanDuration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Serve the console inside `rempart serve`. The quarantine is kept either way.
    /// Default true.
    pub enabled: bool,
    /// Where the console listens (HTTP; put a TLS-terminating proxy in front of it, the
    /// host that `policy.explain_url` names). Default "127.0.0.1:8025".
    pub listen: SocketAddr,
    /// Mark cookies `Secure`: browsers send them over HTTPS only (the console is meant
    /// to be reached through a TLS proxy). Default true; set false only to try the
    /// console over plain HTTP on a machine of your own.
    pub secure_cookies: bool,
    /// How long quarantined messages are kept before they are deleted. Default "30d".
    pub retention: HumanDuration,
    /// How often each account gets a digest of its newly quarantined mail; "0s": never.
    /// Default "1d".
    pub digest_every: HumanDuration,
    /// The console's address as readers reach it, for the digests' links. Default
    /// "https://{hostname}" (`smtp.hostname`).
    pub public_url: String,
    /// Reverse proxies in front of the console (IP addresses or CIDR networks): from
    /// them, the client is the last address of `X-Forwarded-For` that is not a proxy
    /// (login throttling counts per client). Default none: the peer is the client.
    pub trusted_proxies: Vec<String>,
    /// The host names a tenant's domain points its MX records at (one proves control of
    /// a pending domain; the console shows them as the records to publish). Default: the
    /// gateway's `smtp.hostname`.
    pub mx_hosts: Vec<String>,
    /// The SPF record customers include for mail they send through the gateway (shown
    /// as `include:<this>`). Default none: the record shown names the MX hosts.
    pub spf_include: String,
    /// How often pending domains are checked for their proof of control (TXT or MX).
    /// Default "5m".
    pub verify_every: HumanDuration,
    /// Staff accounts (operator, helpdesk, auditor) must log into the console with a
    /// second factor (TOTP); without one yet, they may only set it up. A tenant
    /// requires it of its own accounts with its `require_totp`. Default false.
    pub require_totp_for_staff: bool,
    /// How long message tracking keeps each message's events (the console's index and,
    /// in a cluster, the NATS events stream it is rebuilt from). Default "30d".
    pub tracking_retention: HumanDuration,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 8025)),
            secure_cookies: true,
            retention: HumanDuration(std::time::Duration::from_secs(30 * 24 * 3600)),
            digest_every: HumanDuration(std::time::Duration::from_secs(24 * 3600)),
            public_url: "https://{hostname}".into(),
            trusted_proxies: Vec::new(),
            mx_hosts: Vec::new(),
            spf_include: String::new(),
            verify_every: HumanDuration(std::time::Duration::from_secs(300)),
            require_totp_for_staff: false,
            tracking_retention: HumanDuration(std::time::Duration::from_secs(30 * 24 * 3600)),
        }
    }
}
