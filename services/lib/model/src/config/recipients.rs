//! Where a domain's valid recipients are known: its list (default), its LDAP / Active
//! Directory, or its own server asked at RCPT time (a callout). Checked at RCPT, so mail
//! for users who do not exist is refused in the session, never accepted then bounced.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::HumanDuration;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecipientSource {
    /// `recipients` / `recipients_file` (all local parts when both are empty).
    #[default]
    List,
    /// `[domain.ldap]`: a search for the address.
    Ldap,
    /// `[domain.callout]`: `RCPT TO` asked of the domain's route, answers cached.
    Callout,
    /// Every local part.
    Accept,
}

/// What a domain does with bounces (mail from the null sender) to its addresses: when
/// spammers forge its addresses, the bounces of their spam ("backscatter") drown it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Bounces {
    /// Like any mail (a BATV tag, when there is a valid one, is removed).
    #[default]
    Accept,
    /// Only to a return path this gateway signed (BATV `prvs=`): the domain's accounts'
    /// outbound return paths are signed, and a bounce without a valid tag, not older than
    /// 7 days, is refused.
    Verified,
    /// None at all, except to postmaster.
    Refuse,
}

/// The directory of an LDAP server or Active Directory domain controller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapConfig {
    /// `ldap://host[:port]` or `ldaps://host[:port]` (TLS from the start). Required.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS before binding. Default false.
    #[serde(default)]
    pub starttls: bool,
    /// PEM CA certificates that may sign the server's certificate (a private PKI, as
    /// most Active Directory's are), instead of the system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// The DN to bind as; none: an anonymous search.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_dn: Option<String>,
    /// A file holding the bind password (its first line), kept out of the configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_password_file: Option<PathBuf>,
    /// Where to search (subtree). Required.
    pub base: String,
    /// The search filter; `{address}` is replaced by the address, escaped per RFC 4515.
    /// Default: `mail` or an Exchange `proxyAddresses` `smtp:` entry (both compared
    /// case-insensitively), skipping accounts that Active Directory marks disabled.
    #[serde(default = "default_ldap_filter")]
    pub filter: String,
    /// Longest wait for a connection, bind or search. Default "5s".
    #[serde(default = "five_seconds")]
    pub timeout: HumanDuration,
    /// Bound connections kept open per edge, used in turn (each multiplexes concurrent
    /// searches). Default 2.
    #[serde(default = "two")]
    pub connections: usize,
}

fn two() -> usize {
    2
}

pub fn default_ldap_filter() -> String {
    "(&(|(mail={address})(proxyAddresses=smtp:{address}))(!(userAccountControl:1.2.840.113556.1.4.803:=2)))".into()
}

fn five_seconds() -> HumanDuration {
    HumanDuration::secs(5)
}

/// Asking the domain's own server (its `route`, with its `route_tls`) whether it takes
/// the recipient, without sending anything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalloutConfig {
    /// The MAIL FROM of the question. Required: the null sender is refused by many
    /// servers and would hide the question among real bounces.
    pub probe_sender: String,
    /// How long "exists" is remembered, shared by every edge. Default "7d".
    #[serde(default = "seven_days")]
    pub positive_ttl: HumanDuration,
    /// How long "unknown" is remembered. Default "1h".
    #[serde(default = "one_hour")]
    pub negative_ttl: HumanDuration,
    /// Longest wait for the connection and each reply. Default "10s".
    #[serde(default = "ten_seconds")]
    pub timeout: HumanDuration,
}

fn seven_days() -> HumanDuration {
    HumanDuration::secs(7 * 86_400)
}

fn one_hour() -> HumanDuration {
    HumanDuration::secs(3_600)
}

fn ten_seconds() -> HumanDuration {
    HumanDuration::secs(10)
}
