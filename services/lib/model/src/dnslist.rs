//! DNS lists (RFC 5782): the name to query for an address, and what an answer means —
//! shared by the scanner's symbols and the edge's connection screening.

use std::net::{IpAddr, Ipv4Addr};

use crate::config::DnsListConfig;

/// The name to query for `ip` in `zone` (RFC 5782 §2.1 and §2.4).
pub fn query_name(ip: IpAddr, zone: &str) -> String {
    let zone = zone.trim_end_matches('.');
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.{zone}.", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let nibbles: Vec<String> = v6.octets().iter().rev().flat_map(|b| [b & 0xf, b >> 4]).map(|n| format!("{n:x}")).collect();
            format!("{}.{zone}.", nibbles.join("."))
        }
    }
}

/// The list answered that it refuses our queries (not a listing).
pub fn is_refusal(list: &DnsListConfig, answers: &[Ipv4Addr]) -> bool {
    answers.iter().any(|a| list.blocked.iter().any(|b| b == &a.to_string()))
}

/// The weight of a listing (only 127.0.0.0/8 answers are listings, RFC 5782 §2.3).
pub fn listed_weight(list: &DnsListConfig, answers: &[Ipv4Addr]) -> Option<f64> {
    let listed: Vec<&Ipv4Addr> = answers.iter().filter(|a| a.octets()[0] == 127).collect();
    if listed.is_empty() {
        return None;
    }
    listed.iter().map(|a| list.returns.get(&a.to_string()).copied().unwrap_or(list.weight)).max_by(|a, b| a.abs().total_cmp(&b.abs()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_names() {
        assert_eq!(super::query_name("192.0.2.99".parse().unwrap(), "bl.test"), "99.2.0.192.bl.test.");
        assert_eq!(
            super::query_name("2001:db8:1:2:3:4:567:89ab".parse().unwrap(), "bl.test."),
            "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.bl.test."
        );
    }
}
