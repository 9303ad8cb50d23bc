//! SPF evaluation: check_host() of RFC 7208 §4, on the scanner's resolver.
//!
//! Our own evaluator rather than mail-auth's: the processing limits (10 DNS-querying
//! terms, 2 void lookups, 10 MX/PTR names), IPv4-mapped clients, domain-specs with any
//! visible character, and the error rules (a DNS failure is temperror, a malformed
//! record or target is permerror) are what the RFC 7208 test suite checks.

pub mod macros;
pub mod record;

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use mail_auth::hickory_resolver::TokioResolver;
use mail_auth::hickory_resolver::proto::rr::{Name, RData, RecordType};
use mail_auth::{SpfOutput, SpfResult};
use rempart_model::net::Network;

use macros::{MacroValues, expand, needs_validated_name};
use record::{Mechanism, Qualifier, Record};

/// A record or macro that is not valid SPF: the evaluation ends in PermError.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct SpfSyntaxError(pub String);

/// RFC 7208 §4.6.4 limits.
const MAX_DNS_TERMS: u32 = 10;
const MAX_VOID_LOOKUPS: u32 = 2;
const MAX_NAMES: usize = 10;
/// Recursion guard on top of the term limit.
const MAX_DEPTH: u8 = 12;

/// Why evaluation stopped early.
enum Abort {
    Temp,
    Perm,
}

type Step<T> = Result<T, Abort>;

/// One check_host() run: the identity being checked and the counters shared by every
/// record it visits through include and redirect.
pub struct SpfCheck<'a> {
    resolver: &'a TokioResolver,
    ip: IpAddr,
    sender: String,
    local: String,
    sender_domain: String,
    helo: String,
    receiver: String,
    dns_terms: u32,
    void_lookups: u32,
    /// The client's validated names (ptr, %{p}), looked up once.
    validated: Option<Vec<String>>,
}

/// The result of check_host() with its explanation (fail only).
struct Outcome {
    result: SpfResult,
    explanation: Option<String>,
}

impl Outcome {
    fn of(result: SpfResult) -> Outcome {
        Outcome { result, explanation: None }
    }
}

impl<'a> SpfCheck<'a> {
    /// The MAIL FROM identity (§2.4): a sender without a local part is postmaster.
    pub fn mail_from(resolver: &'a TokioResolver, ip: IpAddr, helo: &str, mail_from: &str, receiver: &str) -> Self {
        let (local, domain) = match mail_from.rsplit_once('@') {
            Some((local, domain)) if !local.is_empty() => (local, domain),
            Some((_, domain)) => ("postmaster", domain),
            None => ("postmaster", mail_from),
        };
        Self::new(resolver, ip, helo, local, domain, receiver)
    }

    /// The HELO identity (§2.3): checked as postmaster@HELO.
    pub fn helo(resolver: &'a TokioResolver, ip: IpAddr, helo: &str, receiver: &str) -> Self {
        Self::new(resolver, ip, helo, "postmaster", helo, receiver)
    }

    fn new(resolver: &'a TokioResolver, ip: IpAddr, helo: &str, local: &str, domain: &str, receiver: &str) -> Self {
        // An IPv4-mapped IPv6 client is an IPv4 client (§5: ip4 matches it, a looks up A).
        let ip = rempart_model::net::unmap(ip);
        SpfCheck {
            resolver,
            ip,
            sender: format!("{local}@{domain}"),
            local: local.to_string(),
            sender_domain: domain.to_string(),
            helo: helo.to_string(),
            receiver: receiver.to_string(),
            dns_terms: 0,
            void_lookups: 0,
            validated: None,
        }
    }

    /// Runs check_host() for the identity's domain.
    pub async fn run(mut self) -> SpfOutput {
        let domain = self.sender_domain.clone();
        let outcome = self.check_host(domain.clone(), 0).await;
        let output = SpfOutput::new(domain).with_result(outcome.result);
        match outcome.explanation {
            Some(text) => output.with_explanation(text),
            None => output,
        }
    }

    fn check_host(&mut self, domain: String, depth: u8) -> Pin<Box<dyn Future<Output = Outcome> + Send + '_>> {
        Box::pin(async move {
            // §4.3: a domain that is not a valid multi-label name has no policy.
            let Some(name) = valid_spf_domain(&domain).then(|| dns_name(&domain)).flatten() else {
                return Outcome::of(SpfResult::None);
            };
            if depth > MAX_DEPTH {
                return Outcome::of(SpfResult::PermError);
            }
            let texts = match self.query(&name, RecordType::TXT).await {
                Ok(answers) => answers.iter().filter_map(txt_string).collect::<Vec<_>>(),
                Err(_) => return Outcome::of(SpfResult::TempError),
            };
            let records: Vec<&String> = texts.iter().filter(|t| record::is_spf_record(t)).collect();
            let record = match records.as_slice() {
                [] => return Outcome::of(SpfResult::None),
                [one] => match record::parse(one) {
                    Ok(record) => record,
                    Err(_) => return Outcome::of(SpfResult::PermError),
                },
                _ => return Outcome::of(SpfResult::PermError),
            };
            match self.evaluate(&record, &domain, depth).await {
                Ok(outcome) => outcome,
                Err(Abort::Temp) => Outcome::of(SpfResult::TempError),
                Err(Abort::Perm) => Outcome::of(SpfResult::PermError),
            }
        })
    }

    /// §4.6.2: the first matching mechanism decides; then redirect; else neutral.
    async fn evaluate(&mut self, record: &Record, domain: &str, depth: u8) -> Step<Outcome> {
        for (qualifier, mechanism) in &record.directives {
            if self.matches(mechanism, domain, depth).await? {
                let result = match qualifier {
                    Qualifier::Pass => SpfResult::Pass,
                    Qualifier::Fail => SpfResult::Fail,
                    Qualifier::SoftFail => SpfResult::SoftFail,
                    Qualifier::Neutral => SpfResult::Neutral,
                };
                let explanation = match (result, &record.exp) {
                    (SpfResult::Fail, Some(exp)) => self.explanation(exp, domain).await,
                    _ => None,
                };
                return Ok(Outcome { result, explanation });
            }
        }
        let Some(redirect) = &record.redirect else { return Ok(Outcome::of(SpfResult::Neutral)) };
        self.count_dns_term()?;
        let target = self.target(Some(redirect), domain).await?;
        // §6.1: a malformed target or one without a record is a permerror.
        if !valid_spf_domain(&target) {
            return Err(Abort::Perm);
        }
        let outcome = self.check_host(target, depth + 1).await;
        match outcome.result {
            SpfResult::None => Err(Abort::Perm),
            _ => Ok(outcome),
        }
    }

    async fn matches(&mut self, mechanism: &Mechanism, domain: &str, depth: u8) -> Step<bool> {
        match mechanism {
            Mechanism::All => Ok(true),
            Mechanism::Ip4(net, len) => Ok(in_network(self.ip, IpAddr::V4(*net), *len)),
            Mechanism::Ip6(net, len) => Ok(in_network(self.ip, IpAddr::V6(*net), *len)),
            Mechanism::A { domain: spec, v4, v6 } => {
                self.count_dns_term()?;
                let target = self.target(spec.as_deref(), domain).await?;
                let Some(name) = dns_name(&target) else { return Ok(false) };
                let addresses = self.addresses(&name).await?;
                if addresses.is_empty() {
                    self.count_void()?;
                }
                Ok(addresses.iter().any(|a| in_network(self.ip, *a, self.prefix(*v4, *v6))))
            }
            Mechanism::Mx { domain: spec, v4, v6 } => {
                self.count_dns_term()?;
                let target = self.target(spec.as_deref(), domain).await?;
                let Some(name) = dns_name(&target) else { return Ok(false) };
                let exchanges: Vec<Name> = self
                    .query(&name, RecordType::MX)
                    .await?
                    .into_iter()
                    .filter_map(|r| match r {
                        RData::MX(mx) => Some(mx.exchange),
                        _ => None,
                    })
                    .collect();
                if exchanges.is_empty() {
                    self.count_void()?;
                }
                if exchanges.len() > MAX_NAMES {
                    return Err(Abort::Perm);
                }
                for exchange in exchanges.iter().filter(|e| !e.is_root()) {
                    let addresses = self.addresses(exchange).await?;
                    if addresses.iter().any(|a| in_network(self.ip, *a, self.prefix(*v4, *v6))) {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Mechanism::Ptr(spec) => {
                self.count_dns_term()?;
                let target = self.target(spec.as_deref(), domain).await?.to_ascii_lowercase();
                let names = self.validated_names().await;
                Ok(names.iter().any(|n| n == &target || n.ends_with(&format!(".{target}"))))
            }
            Mechanism::Exists(spec) => {
                self.count_dns_term()?;
                let target = self.target(Some(spec), domain).await?;
                let Some(name) = dns_name(&target) else { return Ok(false) };
                // Always an A query, whatever the client's address family (§5.7).
                let found = !self.query(&name, RecordType::A).await?.is_empty();
                if !found {
                    self.count_void()?;
                }
                Ok(found)
            }
            Mechanism::Include(spec) => {
                self.count_dns_term()?;
                let target = self.target(Some(spec), domain).await?;
                // §5.2: pass matches; fail, softfail, neutral do not; none is permerror.
                match self.check_host(target, depth + 1).await.result {
                    SpfResult::Pass => Ok(true),
                    SpfResult::Fail | SpfResult::SoftFail | SpfResult::Neutral => Ok(false),
                    SpfResult::TempError => Err(Abort::Temp),
                    SpfResult::PermError | SpfResult::None => Err(Abort::Perm),
                }
            }
        }
    }

    fn prefix(&self, v4: u8, v6: u8) -> u8 {
        if self.ip.is_ipv4() { v4 } else { v6 }
    }

    fn count_dns_term(&mut self) -> Step<()> {
        self.dns_terms += 1;
        if self.dns_terms > MAX_DNS_TERMS { Err(Abort::Perm) } else { Ok(()) }
    }

    fn count_void(&mut self) -> Step<()> {
        self.void_lookups += 1;
        if self.void_lookups > MAX_VOID_LOOKUPS { Err(Abort::Perm) } else { Ok(()) }
    }

    /// The expanded target of a mechanism (the current domain when it names none),
    /// shortened to 253 characters from the left (§7.3).
    async fn target(&mut self, spec: Option<&str>, domain: &str) -> Step<String> {
        let Some(spec) = spec else { return Ok(domain.to_string()) };
        let expanded = self.expand(spec, domain, false).await.map_err(|_| Abort::Perm)?;
        let mut target = expanded.trim_end_matches('.');
        while target.len() > 253 {
            match target.split_once('.') {
                Some((_, rest)) => target = rest,
                None => break,
            }
        }
        Ok(target.to_string())
    }

    async fn expand(&mut self, spec: &str, domain: &str, explanation: bool) -> Result<String, SpfSyntaxError> {
        let validated_name = if needs_validated_name(spec) { self.validated_name(domain).await } else { None };
        let values = MacroValues {
            sender: &self.sender,
            local: &self.local,
            sender_domain: &self.sender_domain,
            domain,
            ip: self.ip,
            helo: &self.helo,
            receiver: &self.receiver,
            validated_name: validated_name.as_deref(),
        };
        expand(spec, &values, explanation)
    }

    /// §6.2: the explanation of a fail; any problem means no explanation.
    async fn explanation(&mut self, exp: &str, domain: &str) -> Option<String> {
        let target = self.target(Some(exp), domain).await.ok()?;
        let answers = self.query(&dns_name(&target)?, RecordType::TXT).await.ok()?;
        let texts: Vec<String> = answers.iter().filter_map(txt_string).collect();
        let [text] = texts.as_slice() else { return None };
        self.expand(text, domain, true).await.ok()
    }

    /// %{p}: a validated name equal to the domain, else one under it, else any.
    async fn validated_name(&mut self, domain: &str) -> Option<String> {
        let domain = domain.to_ascii_lowercase();
        let names = self.validated_names().await;
        names
            .iter()
            .find(|n| **n == domain)
            .or_else(|| names.iter().find(|n| n.ends_with(&format!(".{domain}"))))
            .or_else(|| names.first())
            .cloned()
    }

    /// §5.5: the client's PTR names (at most 10) whose addresses include the client.
    /// A DNS error here means no match, not temperror.
    async fn validated_names(&mut self) -> Vec<String> {
        if let Some(names) = &self.validated {
            return names.clone();
        }
        let mut validated = Vec::new();
        if let Ok(answers) = self.query(&Name::from(self.ip), RecordType::PTR).await {
            for answer in answers.into_iter().take(MAX_NAMES) {
                let RData::PTR(ptr) = answer else { continue };
                if self.addresses(&ptr.0).await.is_ok_and(|a| a.contains(&self.ip)) {
                    validated.push(ptr.0.to_ascii().trim_end_matches('.').to_ascii_lowercase());
                }
            }
        }
        self.validated = Some(validated.clone());
        validated
    }

    /// A or AAAA records of `name`, as the client's address family asks.
    async fn addresses(&self, name: &Name) -> Step<Vec<IpAddr>> {
        let rtype = if self.ip.is_ipv4() { RecordType::A } else { RecordType::AAAA };
        Ok(self
            .query(name, rtype)
            .await?
            .into_iter()
            .filter_map(|r| match r {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                _ => None,
            })
            .collect())
    }

    /// The answers of type `rtype` (CNAMEs followed); NXDOMAIN and no data are empty.
    async fn query(&self, name: &Name, rtype: RecordType) -> Step<Vec<RData>> {
        match self.resolver.lookup(name.clone(), rtype).await {
            Ok(lookup) => Ok(lookup.answers().iter().filter(|r| r.data.record_type() == rtype).map(|r| r.data.clone()).collect()),
            Err(e) if e.is_no_records_found() => Ok(Vec::new()),
            Err(_) => Err(Abort::Temp),
        }
    }
}

fn txt_string(data: &RData) -> Option<String> {
    match data {
        RData::TXT(txt) => Some(txt.txt_data.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect()),
        _ => None,
    }
}

/// A DNS name from any visible characters (a domain-spec may hold '%', ':' or
/// spaces after expansion); `None` for an empty or over-long label, which names
/// nothing (§4.3, §4.8).
fn dns_name(domain: &str) -> Option<Name> {
    let domain = domain.trim_end_matches('.');
    if domain.is_empty() || domain.len() > 253 {
        return None;
    }
    let labels: Vec<&[u8]> = domain.split('.').map(str::as_bytes).collect();
    if labels.iter().any(|l| l.is_empty() || l.len() > 63) {
        return None;
    }
    Name::from_labels(labels).ok()
}

/// RFC 7208 §4.3: a domain that is not a multi-label name (empty or over-long labels,
/// an address literal) has no SPF policy: the result is "none", not an error.
pub(crate) fn valid_spf_domain(domain: &str) -> bool {
    let d = domain.trim_end_matches('.');
    !d.is_empty() && d.len() <= 253 && d.contains('.') && !d.starts_with('[') && d.split('.').all(|l| !l.is_empty() && l.len() <= 63)
}

/// Whether `ip` is in `network/len` (the client is already unmapped: an IPv4-mapped
/// address was made IPv4 when the check began).
fn in_network(ip: IpAddr, network: IpAddr, len: u8) -> bool {
    Network { addr: network, len }.contains(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(in_network(ip("192.0.2.5"), ip("192.0.2.0"), 24));
        assert!(!in_network(ip("192.0.3.5"), ip("192.0.2.0"), 24));
        assert!(in_network(ip("10.1.2.3"), ip("192.0.2.0"), 0));
        assert!(in_network(ip("2001:db8::1"), ip("2001:db8::"), 32));
        assert!(!in_network(ip("1.2.3.4"), ip("::"), 0));
        assert!(!in_network(ip("::1"), ip("0.0.0.0"), 0));
        assert!(in_network(ip("192.0.2.5"), ip("192.0.2.5"), 32));
    }

    #[test]
    fn names() {
        assert!(dns_name("a b%c.example.com").is_some());
        assert!(dns_name("mail.example...com").is_none());
        assert!(dns_name(&format!("{}.example.com", "a".repeat(64))).is_none());
    }
}
