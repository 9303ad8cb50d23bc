//! DNS lists (RFC 5782) queried with the client's address: listed → the list's symbol
//! with the weight for its answer; an answer saying the list refuses our resolver →
//! `<symbol>_BLOCKED` (no weight), so operators see the list is not working.

use std::net::{IpAddr, Ipv4Addr};

use rempart_model::config::DnsListConfig;

use super::Findings;
use crate::dns::{Dns, a_records};

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

/// URI lists: each link domain is looked up as `<domain>.<zone>`.
pub async fn run_uri(dns: &Dns, lists: &[DnsListConfig], domains: &[String], out: &mut Findings) {
    let Some(auth) = dns.authenticator() else { return };
    let mut lookups = Vec::new();
    for list in lists {
        for domain in domains {
            let name = format!("{domain}.{}.", list.zone.trim_end_matches('.'));
            lookups.push(async move { (list, domain, auth.resolver().ipv4_lookup(name.as_str()).await) });
        }
    }
    for (list, domain, answer) in futures_join_all(lookups.into_iter()).await {
        let Ok(lookup) = answer else { continue };
        let answers = a_records(&lookup);
        if is_refusal(list, &answers) {
            out.hit_with("URIBL_BLOCKED", Some(format!("{} refuses our queries", list.zone)));
            continue;
        }
        if let Some(weight) = listed_weight(list, &answers) {
            out.hit_weighted(&list.symbol, Some(format!("{domain} listed in {}", list.zone)), Some(weight));
        }
    }
}

/// The list answered that it refuses our queries (not a listing).
pub(crate) fn is_refusal(list: &DnsListConfig, answers: &[Ipv4Addr]) -> bool {
    answers.iter().any(|a| list.blocked.iter().any(|b| b == &a.to_string()))
}

/// The weight of a listing (only 127.0.0.0/8 answers are listings, RFC 5782 §2.3).
fn listed_weight(list: &DnsListConfig, answers: &[Ipv4Addr]) -> Option<f64> {
    let listed: Vec<&Ipv4Addr> = answers.iter().filter(|a| a.octets()[0] == 127).collect();
    if listed.is_empty() {
        return None;
    }
    listed.iter().map(|a| list.returns.get(&a.to_string()).copied().unwrap_or(list.weight)).max_by(|a, b| a.abs().total_cmp(&b.abs()))
}

pub async fn run(dns: &Dns, lists: &[DnsListConfig], peer_ip: &str, out: &mut Findings) {
    let Some(auth) = dns.authenticator() else { return };
    let Ok(ip) = peer_ip.parse::<IpAddr>() else { return };
    // Private and loopback clients are ours or a proxy's: no public list knows them.
    let private = match ip {
        IpAddr::V4(v4) => v4.is_private() || v4.is_loopback() || v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00,
    };
    if lists.is_empty() || private {
        return;
    }
    let lookups = lists.iter().map(|list| {
        let name = query_name(ip, &list.zone);
        async move { (list, auth.resolver().ipv4_lookup(name.as_str()).await) }
    });
    for (list, answer) in futures_join_all(lookups).await {
        // NXDOMAIN means "not listed"; other errors mean "don't know": no symbol.
        let Ok(lookup) = answer else { continue };
        let answers = a_records(&lookup);
        if is_refusal(list, &answers) {
            out.hit_with(&format!("{}_BLOCKED", list.symbol), Some(format!("{} refuses our queries", list.zone)));
            continue;
        }
        if let Some(weight) = listed_weight(list, &answers) {
            let codes: Vec<String> = answers.iter().map(|a| a.to_string()).collect();
            out.hit_weighted(&list.symbol, Some(format!("{ip} listed in {} ({})", list.zone, codes.join(", "))), Some(weight));
        }
    }
}

/// Waits for all the lookups at once (they are independent).
async fn futures_join_all<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futures {
        set.push(Box::pin(f));
    }
    let mut out = Vec::with_capacity(set.len());
    // Polling them together: a small join_all without another crate.
    let mut pending: Vec<Option<std::pin::Pin<Box<F>>>> = set.into_iter().map(Some).collect();
    let mut results: Vec<Option<F::Output>> = (0..pending.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (i, slot) in pending.iter_mut().enumerate() {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        results[i] = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done { std::task::Poll::Ready(()) } else { std::task::Poll::Pending }
    })
    .await;
    out.extend(results.into_iter().flatten());
    out
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
