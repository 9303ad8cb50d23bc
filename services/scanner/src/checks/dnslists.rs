//! DNS lists (RFC 5782) queried with the client's address: listed → the list's symbol
//! with the weight for its answer; an answer saying the list refuses our resolver →
//! `<symbol>_BLOCKED` (no weight), so operators see the list is not working.

use std::net::IpAddr;

use rempart_model::config::DnsListConfig;
pub use rempart_model::dnslist::{is_refusal, listed_weight, query_name};

use super::Findings;
use crate::dns::{Dns, a_records};

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

pub async fn run(dns: &Dns, lists: &[DnsListConfig], peer_ip: Option<IpAddr>, out: &mut Findings) {
    let Some(auth) = dns.authenticator() else { return };
    let Some(ip) = peer_ip else { return };
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
