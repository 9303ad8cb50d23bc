//! Allow and block lists: addresses, domains (with their subdomains), IPs and CIDRs.

/// Why an allow or block list entry is not an address, domain, IP or network.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct EntryError(pub String);

use std::net::IpAddr;

use rempart_model::net::Network;

#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    Address(String),
    Domain(String),
    Network(Network),
}

impl Entry {
    pub fn parse(s: &str) -> Result<Entry, EntryError> {
        let s = s.trim();
        if let Ok(network) = Network::parse(s) {
            return Ok(Entry::Network(network));
        }
        if s.contains('/') || s.parse::<IpAddr>().is_ok() {
            return Err(EntryError(format!("{s:?}: bad network")));
        }
        let lower = s.to_ascii_lowercase();
        if lower.contains('@') {
            return Ok(Entry::Address(lower));
        }
        let domain = lower.trim_start_matches('@').trim_start_matches("*.").trim_end_matches('.').to_string();
        if domain.is_empty() || !domain.contains('.') || domain.contains(char::is_whitespace) {
            return Err(EntryError(format!("{s:?} is not an address, domain, IP or CIDR")));
        }
        Ok(Entry::Domain(domain))
    }

    /// Matches the client `ip` or one of the sender `addresses`.
    pub fn matches(&self, ip: Option<IpAddr>, addresses: &[&str]) -> bool {
        match self {
            Entry::Network(network) => ip.is_some_and(|ip| network.contains(ip)),
            Entry::Address(a) => addresses.iter().any(|x| x.eq_ignore_ascii_case(a)),
            Entry::Domain(d) => addresses.iter().filter_map(|x| x.rsplit_once('@')).any(|(_, domain)| {
                let domain = domain.to_ascii_lowercase();
                domain == *d || domain.ends_with(&format!(".{d}"))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_match() {
        let ip = |s: &str| Some(s.parse().unwrap());
        assert!(Entry::parse("192.0.2.0/24").unwrap().matches(ip("192.0.2.77"), &[]));
        assert!(!Entry::parse("192.0.2.0/24").unwrap().matches(ip("192.0.3.1"), &[]));
        assert!(Entry::parse("2001:db8::/32").unwrap().matches(ip("2001:db8:1::5"), &[]));
        assert!(Entry::parse("0.0.0.0/0").unwrap().matches(ip("8.8.8.8"), &[]));
        assert!(Entry::parse("Boss@Example.com").unwrap().matches(None, &["boss@example.com"]));
        assert!(Entry::parse("example.com").unwrap().matches(None, &["x@mail.example.com"]));
        assert!(!Entry::parse("example.com").unwrap().matches(None, &["x@notexample.com"]));
        for bad in ["nonsense", "1.2.3.4/33", "", "a b.c"] {
            assert!(Entry::parse(bad).is_err(), "{bad}");
        }
    }
}
