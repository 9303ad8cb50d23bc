//! The resolver behind the DNS-based checks, built from `[dns]`: the configured
//! servers (tests and operators point it at their own), or the system's, or none at
//! all when offline.

use std::net::IpAddr;
use std::time::Duration;

use mail_auth::hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use mail_auth::hickory_resolver::lookup::Lookup;
use mail_auth::hickory_resolver::proto::rr::{Name, RData};
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{MessageAuthenticator, SpfOutput, SpfResult};
use rempart_model::config::DnsConfig;

use crate::ScannerError;

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
        if config.offline {
            return Ok(Dns { authenticator: None });
        }
        let err = |e: &dyn std::fmt::Display| ScannerError { field: "dns.servers".into(), message: e.to_string() };
        let mut options = ResolverOpts::default();
        options.timeout = Duration::from_millis(config.timeout_ms);
        options.attempts = config.attempts;
        let authenticator = if config.servers.is_empty() {
            MessageAuthenticator::new_system_conf()
                .map_err(|e| err(&format!("no usable system resolver ({e}); set dns.servers or dns.offline")))?
        } else {
            let servers = config
                .servers
                .iter()
                .map(|s| {
                    let (mut udp, mut tcp) = (ConnectionConfig::udp(), ConnectionConfig::tcp());
                    (udp.port, tcp.port) = (s.port(), s.port());
                    NameServerConfig::new(s.ip(), true, vec![udp, tcp])
                })
                .collect();
            MessageAuthenticator::new(ResolverConfig::from_name_servers(servers), options).map_err(|e| err(&e))?
        };
        Ok(Dns { authenticator: Some(authenticator) })
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

    pub fn is_offline(&self) -> bool {
        self.authenticator.is_none()
    }

    pub fn authenticator(&self) -> Option<&MessageAuthenticator> {
        self.authenticator.as_ref()
    }

    /// check_host() for the MAIL FROM identity (RFC 7208 §2.4); `host` is our own
    /// name (for the `%{r}` macro). `None` when offline.
    pub async fn check_mail_from(&self, ip: IpAddr, helo: &str, mail_from: &str, host: &str) -> Option<SpfOutput> {
        let auth = self.authenticator.as_ref()?;
        let domain = mail_from.rsplit_once('@').map_or(mail_from, |(_, d)| d);
        if let Some(early) = self.precheck(domain).await {
            return Some(SpfOutput::new(domain.to_string()).with_result(early));
        }
        Some(auth.verify_spf(SpfParameters::verify_mail_from(ip, helo, host, mail_from)).await)
    }

    /// check_host() for the HELO identity (RFC 7208 §2.3).
    pub async fn check_helo(&self, ip: IpAddr, helo: &str, host: &str) -> Option<SpfOutput> {
        let auth = self.authenticator.as_ref()?;
        if let Some(early) = self.precheck(helo).await {
            return Some(SpfOutput::new(helo.to_string()).with_result(early));
        }
        Some(auth.verify_spf(SpfParameters::verify_ehlo(ip, helo, host)).await)
    }

    /// What is decided before evaluation: "none" for a domain that is not a valid name
    /// (RFC 7208 §4.3), "permerror" for several SPF records or one that does not parse
    /// (§4.5, §4.6). A failed lookup decides nothing here.
    async fn precheck(&self, domain: &str) -> Option<SpfResult> {
        if !valid_spf_domain(domain) {
            return Some(SpfResult::None);
        }
        let resolver = self.authenticator.as_ref()?.resolver();
        let lookup = resolver.txt_lookup(format!("{}.", domain.trim_end_matches('.'))).await.ok()?;
        let records: Vec<String> = txt_records(&lookup)
            .into_iter()
            .filter(|t| t.len() >= 6 && t[..6].eq_ignore_ascii_case("v=spf1") && (t.len() == 6 || t.as_bytes()[6] == b' '))
            .collect();
        match records.as_slice() {
            [] => None,
            [record] => crate::spf_syntax::validate(record).err().map(|_| SpfResult::PermError),
            _ => Some(SpfResult::PermError),
        }
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

/// RFC 7208 §4.3: a domain that is not a multi-label name (empty or over-long labels,
/// an address literal) has no SPF policy: the result is "none", not an error.
pub(crate) fn valid_spf_domain(domain: &str) -> bool {
    let d = domain.trim_end_matches('.');
    !d.is_empty() && d.len() <= 253 && d.contains('.') && !d.starts_with('[') && d.split('.').all(|l| !l.is_empty() && l.len() <= 63)
}
