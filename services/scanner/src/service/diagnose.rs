//! `check-sender`: what a receiving server will think of a sending domain and IP, one
//! line each with a verdict and advice, for the operator whose customer's mail is
//! refused elsewhere.

use std::net::IpAddr;

use mail_auth::SpfResult;
use mail_auth::hickory_resolver::proto::rr::RData;
use rempart_model::config::DnsListConfig;
use serde::Serialize;

use crate::checks::dnslists::is_refusal;
use crate::dns::{Dns, ReverseDns, a_records, txt_records};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub check: &'static str,
    pub status: Status,
    pub detail: String,
    /// What to do about it (empty when all is well).
    pub advice: String,
}

pub struct Request<'a> {
    pub domain: &'a str,
    pub ip: IpAddr,
    pub helo: Option<&'a str>,
    pub mail_from: Option<&'a str>,
    pub selector: Option<&'a str>,
}

fn finding(check: &'static str, status: Status, detail: impl Into<String>, advice: impl Into<String>) -> Finding {
    Finding { check, status, detail: detail.into(), advice: advice.into() }
}

/// Runs every check; `None` when the resolver is offline.
pub async fn check_sender(dns: &Dns, lists: &[DnsListConfig], r: &Request<'_>) -> Option<Vec<Finding>> {
    let auth = dns.authenticator()?;
    let resolver = auth.resolver();
    let mut out = Vec::new();
    let domain = r.domain.trim_end_matches('.').to_ascii_lowercase();
    let ip = r.ip;

    // Reverse DNS and forward confirmation.
    out.push(match dns.reverse(ip).await? {
        ReverseDns::Absent => finding(
            "ptr",
            Status::Fail,
            format!("{ip} has no PTR record"),
            format!("Ask whoever runs {ip} to set a PTR record naming the mail server."),
        ),
        ReverseDns::Names { confirmed: Some(name), .. } => {
            finding("ptr", Status::Ok, format!("{ip} -> {name}, which resolves back to {ip}"), "")
        }
        ReverseDns::Names { names, confirmed: None } => finding(
            "ptr",
            Status::Warn,
            format!("{ip} -> {} but no name resolves back to {ip}", names.join(", ")),
            "Give the PTR name an A/AAAA record with this address (forward-confirmed reverse DNS).",
        ),
        ReverseDns::Failed(e) => {
            finding("ptr", Status::Warn, format!("reverse lookup of {ip} failed: {e}"), "Retry later; check the resolver.")
        }
    });

    // SPF for the sender address (or postmaster@domain), and for HELO if given.
    let sender = r.mail_from.map(str::to_string).unwrap_or_else(|| format!("postmaster@{domain}"));
    let helo = r.helo.unwrap_or(&domain);
    let spf = dns.check_mail_from(ip, helo, &sender, "check-sender").await?.result();
    out.push(spf_finding("spf", &sender, ip, spf));
    if let Some(h) = r.helo {
        let spf = dns.check_helo(ip, h, "check-sender").await?.result();
        out.push(spf_finding("spf-helo", h, ip, spf));
    }

    // DKIM key for the selector.
    if let Some(selector) = r.selector {
        let name = format!("{selector}._domainkey.{domain}.");
        out.push(match resolver.txt_lookup(name.as_str()).await {
            Ok(lookup) => {
                let text = txt_records(&lookup);
                match text.iter().find(|t| t.contains("p=")) {
                    Some(t) if key_present(t) => finding("dkim", Status::Ok, format!("{name} publishes a key: {}", shorten(t)), ""),
                    Some(t) => finding(
                        "dkim",
                        Status::Fail,
                        format!("{name} has an empty key (revoked): {}", shorten(t)),
                        "Publish the public key of the signing key (p=...), or sign with another selector.",
                    ),
                    None => finding(
                        "dkim",
                        Status::Fail,
                        format!("{name} has no DKIM key record"),
                        "Publish v=DKIM1; k=...; p=<public key> at this name.",
                    ),
                }
            }
            Err(e) if e.is_no_records_found() => finding(
                "dkim",
                Status::Fail,
                format!("no DKIM key at {name}"),
                "Publish the selector's public key, or check the selector name in the signature.",
            ),
            Err(e) => finding("dkim", Status::Warn, format!("lookup of {name} failed: {e}"), "Retry later."),
        });
    }

    // DMARC.
    let name = format!("_dmarc.{domain}.");
    out.push(match resolver.txt_lookup(name.as_str()).await {
        Ok(lookup) => match txt_records(&lookup).into_iter().find(|t| t.to_ascii_lowercase().starts_with("v=dmarc1")) {
            Some(t) => {
                let policy = t.split(';').map(str::trim).find_map(|kv| kv.strip_prefix("p=")).unwrap_or("?").to_string();
                let status = if policy == "none" { Status::Warn } else { Status::Ok };
                let advice =
                    if policy == "none" { "p=none only monitors: move to quarantine or reject once reports are clean." } else { "" };
                finding("dmarc", status, format!("{name} policy p={policy}: {}", shorten(&t)), advice)
            }
            None => finding(
                "dmarc",
                Status::Warn,
                format!("{name} has no v=DMARC1 record"),
                "Publish a DMARC record (start with p=none and a rua= address).",
            ),
        },
        Err(e) if e.is_no_records_found() => finding(
            "dmarc",
            Status::Warn,
            format!("no DMARC record at {name}"),
            "Publish a DMARC record (start with p=none and a rua= address).",
        ),
        Err(e) => finding("dmarc", Status::Warn, format!("lookup of {name} failed: {e}"), "Retry later."),
    });

    // MX or address for the domain (replies and bounces must have somewhere to go).
    let fqdn = format!("{domain}.");
    let mx: Vec<String> = match resolver.mx_lookup(fqdn.as_str()).await {
        Ok(l) => l
            .answers()
            .iter()
            .filter_map(|rec| match &rec.data {
                RData::MX(mx) => Some(mx.exchange.to_string().trim_end_matches('.').to_string()),
                _ => None,
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    let has_address = resolver.lookup_ip(fqdn.as_str()).await.is_ok_and(|a| a.iter().next().is_some());
    out.push(match (mx.is_empty(), has_address) {
        (false, _) => finding("mx", Status::Ok, format!("{domain} MX: {}", mx.join(", ")), ""),
        (true, true) => finding(
            "mx",
            Status::Warn,
            format!("{domain} has no MX, only an address record"),
            "Publish an MX record for the domain's mail.",
        ),
        (true, false) => finding(
            "mx",
            Status::Fail,
            format!("{domain} has neither MX nor address records"),
            "Receivers reject such senders (NO_DNS_FOR_FROM): publish an MX record.",
        ),
    });

    // DNS lists.
    for list in lists {
        let name = crate::checks::dnslists::query_name(ip, &list.zone);
        out.push(match resolver.ipv4_lookup(name.as_str()).await {
            Ok(l) => {
                let addresses = a_records(&l);
                let answers: Vec<String> = addresses.iter().map(|a| a.to_string()).collect();
                if is_refusal(list, &addresses) {
                    finding(
                        "dnsbl",
                        Status::Warn,
                        format!("{} refuses our queries ({})", list.zone, answers.join(", ")),
                        "Query the list through your own resolver, not a public one.",
                    )
                } else if list.weight < 0.0 {
                    finding("dnsbl", Status::Ok, format!("{ip} is on the allowlist {} ({})", list.zone, answers.join(", ")), "")
                } else {
                    finding(
                        "dnsbl",
                        Status::Fail,
                        format!("{ip} is listed in {} ({})", list.zone, answers.join(", ")),
                        format!("Find why on the list's site and request delisting from {}.", list.zone),
                    )
                }
            }
            Err(e) if e.is_no_records_found() => finding("dnsbl", Status::Ok, format!("{ip} is not listed in {}", list.zone), ""),
            Err(e) => finding("dnsbl", Status::Warn, format!("lookup in {} failed: {e}", list.zone), "Retry later."),
        });
    }
    Some(out)
}

fn spf_finding(check: &'static str, identity: &str, ip: IpAddr, result: SpfResult) -> Finding {
    let domain = identity.rsplit_once('@').map_or(identity, |(_, d)| d);
    let add = format!("Add ip{}:{ip} (or an include: of your provider) to the SPF record of {domain}.", if ip.is_ipv4() { 4 } else { 6 });
    match result {
        SpfResult::Pass => finding(check, Status::Ok, format!("SPF pass: {domain} authorises {ip}"), ""),
        SpfResult::Fail => finding(check, Status::Fail, format!("SPF fail: {domain} forbids {ip}"), add),
        SpfResult::SoftFail => finding(check, Status::Warn, format!("SPF softfail: {domain} does not recognise {ip}"), add),
        SpfResult::Neutral => finding(check, Status::Warn, format!("SPF neutral: {domain} says nothing about {ip}"), add),
        SpfResult::None => finding(
            check,
            Status::Warn,
            format!("{domain} publishes no SPF record"),
            format!("Publish \"v=spf1 ip4:{ip} -all\" (adapted) at {domain}."),
        ),
        SpfResult::TempError => finding(
            check,
            Status::Warn,
            format!("SPF temperror for {domain}: DNS failure"),
            "Retry later; check that the domain's DNS servers answer.",
        ),
        SpfResult::PermError => finding(
            check,
            Status::Fail,
            format!("SPF permerror: the record of {domain} is invalid"),
            "Fix the SPF record syntax (one record, valid mechanisms, at most 10 DNS lookups).",
        ),
    }
}

fn key_present(record: &str) -> bool {
    record.split(';').map(str::trim).find_map(|kv| kv.strip_prefix("p=")).is_some_and(|p| !p.trim().is_empty())
}

fn shorten(s: &str) -> String {
    if s.chars().count() > 60 { format!("{}…", s.chars().take(60).collect::<String>()) } else { s.to_string() }
}
