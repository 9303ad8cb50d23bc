//! One customer domain (`[[domain]]` in the file, or a record the management plane keeps
//! in the store) and the checks every domain passes, wherever it comes from.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Bounces, CalloutConfig, LdapConfig, PolicyOverride, RecipientSource};
use crate::InvalidValue;

/// One customer domain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainConfig {
    /// The domain name, e.g. "example.com". Required.
    pub name: String,
    /// The customer's server, "smtp://host:port" (port 25 when omitted). Required.
    pub route: Route,
    /// TLS towards the route: "opportunistic" (default), "required", "verify" or
    /// "disabled" (see `RouteTls` for what each one authenticates).
    #[serde(default)]
    pub route_tls: RouteTls,
    /// With `route_tls = "verify"`: a PEM file of the CA certificates that may sign the
    /// route's certificate (a private PKI), instead of the system's trusted roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_ca_file: Option<PathBuf>,
    /// Valid recipients: local parts ("alice") or addresses ("alice@example.com"); "*"
    /// accepts every local part. With neither this nor `recipients_file`, every local part
    /// is accepted. Default empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<String>,
    /// A file with one recipient per line (same forms as `recipients`; # comments).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipients_file: Option<PathBuf>,
    /// Where valid recipients are known: "list" (default: `recipients` and
    /// `recipients_file`), "ldap" (`[domain.ldap]`), "callout" (`[domain.callout]`) or
    /// "accept" (every local part).
    #[serde(default)]
    pub recipient_source: RecipientSource,
    /// The LDAP / Active Directory server of `recipient_source = "ldap"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldap: Option<LdapConfig>,
    /// The question asked of the route with `recipient_source = "callout"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callout: Option<CalloutConfig>,
    /// When the directory or the route cannot answer: false (default) defers the
    /// recipient with `451 4.4.3` (the sender retries; nothing is accepted then
    /// bounced); true accepts it.
    #[serde(default)]
    pub recipient_fail_open: bool,
    /// Bounces (null sender) to this domain: "accept" (default), "verified" (only with a
    /// valid BATV tag this gateway put on the domain's outbound return paths) or "refuse"
    /// (except to postmaster).
    #[serde(default)]
    pub bounces: Bounces,
    /// Sub-address separator: "alice+news" is checked as "alice". Default "+"; "" disables.
    #[serde(default = "default_delimiter")]
    pub recipient_delimiter: String,
    /// Overrides `smtp.max_message_size` for this domain, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_message_size: Option<u64>,
    /// Overrides of `[policy]` for this domain (same fields; lists are added to the
    /// global ones).
    #[serde(default)]
    pub policy: PolicyOverride,
    /// Greylisting for this domain's mail (when `[greylist]` is enabled). Default true.
    #[serde(default = "yes")]
    pub greylisting: bool,
    /// When no remote scanner answers in time: "tempfail" (default: 451 4.3.0, the
    /// sender retries) or "queue" (accept, scan later from `rempart.scan`).
    #[serde(default)]
    pub scanner_fallback: ScannerFallback,
    /// DKIM keys that sign the mail this domain's accounts submit, each under its
    /// selector (`[[domain.dkim]] selector = "s2026", key_file = "…"`; ed25519 or RSA,
    /// PEM). All listed keys sign (an ed25519 and an RSA signature side by side, or the
    /// old and new selector while rotating). Default none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dkim: Vec<DkimKeyConfig>,
    /// Quarantine digests go to every recipient with held mail, with or without a
    /// console account (each link signed for that address). False: only to accounts.
    /// Default true.
    #[serde(default = "yes")]
    pub digest_every_recipient: bool,
    /// Set on a domain the store holds that has not yet proved its owner's control (the
    /// reason mail for it is deferred); never read from a file.
    #[serde(skip)]
    pub pending: Option<String>,
}

/// One DKIM signing key of a domain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkimKeyConfig {
    /// The selector: the key's DNS record is at `<selector>._domainkey.<domain>`.
    pub selector: String,
    /// PEM private key: PKCS#8 ed25519 (`rempart dkim generate`) or RSA (PKCS#8 or
    /// PKCS#1, e.g. `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048`).
    pub key_file: PathBuf,
}

/// A DKIM key the store keeps (generated from the console, the API or the CLI), as a
/// signing node holds it once unsealed.
#[derive(Clone, PartialEq)]
pub struct StoredDkimKey {
    pub domain: String,
    pub selector: String,
    /// PKCS#8 PEM.
    pub pem: String,
}

impl fmt::Debug for StoredDkimKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoredDkimKey({}, {}, <private>)", self.domain, self.selector)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScannerFallback {
    #[default]
    Tempfail,
    Queue,
}

fn yes() -> bool {
    true
}

fn default_delimiter() -> String {
    "+".into()
}

/// Where a domain's mail goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub host: String,
    pub port: u16,
}

impl FromStr for Route {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        let rest = s.strip_prefix("smtp://").ok_or_else(|| InvalidValue(format!("invalid route {s:?}: expected smtp://host[:port]")))?;
        let rest = rest.trim_end_matches('/');
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| InvalidValue(format!("invalid route {s:?}: unclosed [")))?;
            (host, after.strip_prefix(':'))
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            }
        };
        if host.is_empty() || host.contains(['/', '@', ' ']) {
            return Err(InvalidValue(format!("invalid route {s:?}: bad host")));
        }
        let port = match port {
            Some(p) => p.parse().map_err(|_| InvalidValue(format!("invalid route {s:?}: bad port {p:?}")))?,
            None => 25,
        };
        Ok(Route { host: host.to_string(), port })
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "smtp://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "smtp://{}:{}", self.host, self.port)
        }
    }
}

impl Serialize for Route {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Route {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// TLS towards a customer route, and what each mode authenticates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteTls {
    /// STARTTLS when the server offers it, plaintext otherwise (RFC 7435). Encrypts
    /// against passive eavesdroppers; authenticates nothing: the certificate is not
    /// checked, so an active attacker can intercept.
    #[default]
    Opportunistic,
    /// Deliver only over TLS; a server without STARTTLS is a temporary failure (4.7.10).
    /// Never plaintext, but the certificate is still not checked: it authenticates nothing.
    Required,
    /// Deliver only over TLS to the server the route names: its certificate must chain
    /// to a trusted root (the system's, or `route_ca_file`) and be valid for the route's
    /// host name (or IP address). Anything else is a temporary failure (4.7.5), never
    /// plaintext. The only mode that authenticates the customer's server.
    Verify,
    /// Never STARTTLS.
    Disabled,
}

/// What is wrong with one domain: the field (relative to the domain) and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct DomainCheckError {
    pub field: String,
    pub message: String,
}

fn invalid(field: &str, message: impl Into<String>) -> DomainCheckError {
    DomainCheckError { field: field.to_string(), message: message.into() }
}

/// Whether `name` is a domain name mail can be addressed to: at least two labels of
/// letters, digits and hyphens (an internationalised name in its A-label form,
/// `xn--…`), each 1 to 63 characters and not starting or ending with a hyphen; 253 at
/// most. Gives why not.
pub fn check_domain_name(name: &str) -> Result<(), String> {
    let name = name.trim_end_matches('.');
    if name.is_empty() {
        return Err("a domain name is needed".into());
    }
    if !name.is_ascii() {
        return Err(format!("{name:?} is not a domain name: write an internationalised name in its A-label form (xn--…)"));
    }
    if name.len() > 253 {
        return Err(format!("{name:?} is longer than 253 characters"));
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() < 2 {
        return Err(format!("{name:?} is not a domain name (it has no dot)"));
    }
    for label in labels {
        let good = !label.is_empty()
            && label.len() <= 63
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !good {
            return Err(format!(
                "{name:?} is not a domain name: {label:?} must be 1 to 63 letters, digits or hyphens, not starting or ending with a hyphen"
            ));
        }
    }
    Ok(())
}

impl DomainConfig {
    /// A domain routed to `route` with every other setting at its default.
    pub fn new(name: &str, route: Route) -> Self {
        DomainConfig {
            name: name.trim_end_matches('.').to_ascii_lowercase(),
            route,
            route_tls: RouteTls::default(),
            route_ca_file: None,
            recipients: Vec::new(),
            recipients_file: None,
            recipient_source: RecipientSource::default(),
            ldap: None,
            callout: None,
            recipient_fail_open: false,
            bounces: Bounces::default(),
            recipient_delimiter: default_delimiter(),
            max_message_size: None,
            policy: PolicyOverride::default(),
            greylisting: true,
            scanner_fallback: ScannerFallback::default(),
            dkim: Vec::new(),
            digest_every_recipient: true,
            pending: None,
        }
    }

    /// Checks the domain on its own (the same for a `[[domain]]` of the file and a domain
    /// record of the store), normalises its name and reads its `recipients_file`.
    pub fn check(&mut self) -> Result<(), DomainCheckError> {
        check_domain_name(&self.name).map_err(|m| invalid("name", m))?;
        self.name = self.name.trim_end_matches('.').to_ascii_lowercase();
        if let Some(path) = &self.recipients_file {
            let listed = std::fs::read_to_string(path).map_err(|e| invalid("recipients_file", format!("{}: {e}", path.display())))?;
            self.recipients
                .extend(listed.lines().map(|l| l.split('#').next().unwrap_or("").trim()).filter(|l| !l.is_empty()).map(String::from));
            // Read once: a second check must not add the lines again.
            self.recipients.dedup();
        }
        if let Some(path) = &self.route_ca_file {
            if self.route_tls != RouteTls::Verify {
                return Err(invalid("route_ca_file", "is used only with route_tls = \"verify\""));
            }
            if !path.is_file() {
                return Err(invalid("route_ca_file", format!("{} is not a readable file", path.display())));
            }
        }
        match self.recipient_source {
            RecipientSource::Ldap if self.ldap.is_none() => {
                return Err(invalid("recipient_source", "\"ldap\" needs a [domain.ldap] table"));
            }
            RecipientSource::Callout if self.callout.is_none() => {
                return Err(invalid("recipient_source", "\"callout\" needs a [domain.callout] table"));
            }
            _ => {}
        }
        if let Some(ldap) = &self.ldap {
            if !(ldap.url.starts_with("ldap://") || ldap.url.starts_with("ldaps://")) {
                return Err(invalid("ldap.url", format!("{:?} is not an ldap:// or ldaps:// URL", ldap.url)));
            }
            if !ldap.filter.contains("{address}") {
                return Err(invalid("ldap.filter", "must contain {address}"));
            }
            for (key, path) in [("ca_file", &ldap.ca_file), ("bind_password_file", &ldap.bind_password_file)] {
                if let Some(p) = path.as_ref().filter(|p| !p.is_file()) {
                    return Err(invalid(&format!("ldap.{key}"), format!("{} is not a readable file", p.display())));
                }
            }
        }
        if let Some(callout) = &self.callout
            && !callout.probe_sender.contains('@')
        {
            return Err(invalid("callout.probe_sender", format!("{:?} is not an address", callout.probe_sender)));
        }
        if self.max_message_size == Some(0) {
            return Err(invalid("max_message_size", "must be greater than 0"));
        }
        for (i, key) in self.dkim.iter().enumerate() {
            check_selector(&key.selector).map_err(|m| invalid(&format!("dkim[{i}].selector"), m))?;
        }
        Ok(())
    }

    /// The files this domain names: a domain kept in the store may name none, since
    /// each node would need its own copy.
    pub fn files(&self) -> Vec<(&'static str, &std::path::Path)> {
        let mut files = Vec::new();
        for (field, path) in [("recipients_file", &self.recipients_file), ("route_ca_file", &self.route_ca_file)] {
            if let Some(p) = path {
                files.push((field, p.as_path()));
            }
        }
        if let Some(ldap) = &self.ldap {
            for (field, path) in [("ldap.ca_file", &ldap.ca_file), ("ldap.bind_password_file", &ldap.bind_password_file)] {
                if let Some(p) = path {
                    files.push((field, p.as_path()));
                }
            }
        }
        for key in &self.dkim {
            files.push(("dkim.key_file", key.key_file.as_path()));
        }
        files
    }
}

/// Whether `selector` can be a DKIM selector (RFC 6376 3.1: dot-separated labels of
/// letters, digits and hyphens).
pub fn check_selector(selector: &str) -> Result<(), String> {
    let good = !selector.is_empty()
        && selector.len() <= 63
        && selector.split('.').all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') && !l.starts_with('-'));
    if good { Ok(()) } else { Err(format!("{selector:?} is not a DKIM selector: letters, digits and hyphens, e.g. \"s2026\"")) }
}

/// The configured domains by name, built on first use: a gateway with thousands of
/// domains finds one per recipient in constant time. A copy of a configuration starts
/// with an empty index (it may change its domains before its first lookup).
#[derive(Default)]
pub struct DomainIndex(std::sync::OnceLock<std::collections::HashMap<String, usize>>);

impl DomainIndex {
    /// The position of `name` (lower case, no final dot) in `domains`.
    pub fn find<'a>(&self, domains: &'a [DomainConfig], name: &str) -> Option<&'a DomainConfig> {
        let index = self.0.get_or_init(|| domains.iter().enumerate().map(|(i, d)| (d.name.to_ascii_lowercase(), i)).rev().collect());
        if index.len() > domains.len() {
            // Domains were removed after the index was built: read them as they are.
            return domains.iter().find(|d| d.name.eq_ignore_ascii_case(name));
        }
        let found = index.get(name).and_then(|&i| domains.get(i)).filter(|d| d.name.eq_ignore_ascii_case(name));
        // Domains added after the index was built are after the indexed ones.
        found.or_else(|| domains.get(index.len()..).and_then(|added| added.iter().find(|d| d.name.eq_ignore_ascii_case(name))))
    }
}

impl Clone for DomainIndex {
    fn clone(&self) -> Self {
        DomainIndex::default()
    }
}

impl PartialEq for DomainIndex {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl fmt::Debug for DomainIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DomainIndex")
    }
}
