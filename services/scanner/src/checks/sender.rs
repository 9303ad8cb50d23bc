//! DNS facts about the client and the sender: reverse DNS (RDNS_NONE, as SpamAssassin),
//! forward-confirmed reverse DNS (RDNS_UNCONFIRMED, ours), and a sender domain with
//! neither MX nor address records (NO_DNS_FOR_FROM). A lookup that fails for another
//! reason than "no such record" adds nothing: no symbol is made up from a timeout.

use super::Findings;
use crate::ScanInput;
use crate::dns::{Dns, ReverseDns};
use crate::spf::valid_spf_domain;

pub async fn run(dns: &Dns, input: &ScanInput<'_>, out: &mut Findings) {
    let Some(auth) = dns.authenticator() else { return };
    let resolver = auth.resolver();
    if let Some(ip) = input.facts.client_ip()
        && !ip.is_loopback()
    {
        match dns.reverse(ip).await {
            Some(ReverseDns::Absent) => out.hit_with("RDNS_NONE", Some(ip.to_string())),
            Some(ReverseDns::Names { names, confirmed: None }) => {
                out.hit_with("RDNS_UNCONFIRMED", Some(format!("{ip} -> {}", names.join(", "))));
            }
            Some(ReverseDns::Names { confirmed: Some(_), .. }) | Some(ReverseDns::Failed(_)) | None => {}
        }
    }
    let Some(domain) = input.return_path.rsplit_once('@').map(|(_, d)| d.trim_end_matches('.')) else { return };
    if !valid_spf_domain(domain) {
        return;
    }
    let fqdn = format!("{domain}.");
    let (mx, address) = tokio::join!(resolver.mx_lookup(fqdn.as_str()), resolver.lookup_ip(fqdn.as_str()));
    // "Absent" is an answer (NXDOMAIN or no such record); any other error is not.
    let mx_absent = match &mx {
        Ok(lookup) => lookup.answers().is_empty(),
        Err(e) => e.is_no_records_found(),
    };
    let address_absent = match &address {
        Ok(lookup) => lookup.iter().next().is_none(),
        Err(e) => e.is_no_records_found(),
    };
    if mx_absent && address_absent {
        out.hit_with("NO_DNS_FOR_FROM", Some(domain.to_string()));
    }
}
