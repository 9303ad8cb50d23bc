//! The resolver behind the DNS-based checks, built from `[dns]`: the configured
//! servers (tests and operators point it at their own), or the system's, or none at
//! all when offline.

use std::net::IpAddr;

use mail_auth::hickory_resolver::lookup::Lookup;
use mail_auth::hickory_resolver::proto::rr::{Name, RData};
use mail_auth::{MessageAuthenticator, SpfOutput};
use rempart_model::config::DnsConfig;

use crate::ScannerError;
use crate::spf::SpfCheck;

pub struct Dns {
    /// `None` when offline.
    authenticator: Option<MessageAuthenticator>,
}

/// What reverse DNS says about an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReverseDns {
    /// No PTR record: an answer, not a failure.
    Absent,
    /// The PTR names, and the first (of at most 3) that resolves back to the address.
    Names { names: Vec<String>, confirmed: Option<String> },
    /// The lookup failed: nothing can be concluded.
    Failed(String),
}

/// PTR names checked for forward confirmation, at most.
const MAX_PTR_NAMES: usize = 3;

impl Dns {
    pub fn new(config: &DnsConfig) -> Result<Dns, ScannerError> {
        let authenticator =
            rempart_smtp_client::mx::authenticator(config).map_err(|message| ScannerError { field: "dns.servers".into(), message })?;
        Ok(Dns { authenticator })
    }

    /// Reverse DNS of `ip`, forward-confirmed; `None` when offline.
    pub async fn reverse(&self, ip: IpAddr) -> Option<ReverseDns> {
        let resolver = self.authenticator.as_ref()?.resolver();
        let lookup = match resolver.reverse_lookup(Name::from(ip)).await {
            Ok(lookup) => lookup,
            Err(e) if e.is_no_records_found() => return Some(ReverseDns::Absent),
            Err(e) => return Some(ReverseDns::Failed(e.to_string())),
        };
        let names: Vec<String> = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::PTR(ptr) => Some(ptr.0.to_string().trim_end_matches('.').to_string()),
                _ => None,
            })
            .collect();
        if names.is_empty() {
            return Some(ReverseDns::Absent);
        }
        let mut confirmed = None;
        for name in names.iter().take(MAX_PTR_NAMES) {
            if resolver.lookup_ip(format!("{name}.")).await.is_ok_and(|a| a.iter().any(|x| x == ip)) {
                confirmed = Some(name.clone());
                break;
            }
        }
        Some(ReverseDns::Names { names, confirmed })
    }

    /// The `[dns]` resolver for other lookups (remote scanners' names); `None` when
    /// offline.
    pub fn resolver(&self) -> Option<mail_auth::hickory_resolver::TokioResolver> {
        self.authenticator.as_ref().map(|a| a.resolver().clone())
    }

    pub fn is_offline(&self) -> bool {
        self.authenticator.is_none()
    }

    pub fn authenticator(&self) -> Option<&MessageAuthenticator> {
        self.authenticator.as_ref()
    }

    /// check_host() for the MAIL FROM identity (RFC 7208 §2.4); `host` is our own
    /// name (for the `%{r}` macro). `None` when offline.
    pub async fn check_mail_from(&self, ip: IpAddr, helo: &str, mail_from: &str, host: &str) -> Option<SpfOutput> {
        let resolver = self.authenticator.as_ref()?.resolver();
        Some(SpfCheck::mail_from(resolver, ip, helo, mail_from, host).run().await)
    }

    /// check_host() for the HELO identity (RFC 7208 §2.3).
    pub async fn check_helo(&self, ip: IpAddr, helo: &str, host: &str) -> Option<SpfOutput> {
        let resolver = self.authenticator.as_ref()?.resolver();
        Some(SpfCheck::helo(resolver, ip, helo, host).run().await)
    }
}

/// The TXT records of an answer, each one's character-strings joined.
pub(crate) fn txt_records(lookup: &Lookup) -> Vec<String> {
    lookup
        .answers()
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(txt) => Some(txt.txt_data.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect::<String>()),
            _ => None,
        })
        .collect()
}

/// The IPv4 addresses of an answer.
pub(crate) fn a_records(lookup: &Lookup) -> Vec<std::net::Ipv4Addr> {
    lookup
        .answers()
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}
