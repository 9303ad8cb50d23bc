//! Where mail for a domain we do not serve goes (RFC 5321 §5.1): its MX hosts by
//! preference, or the domain itself when it has no MX (the implicit MX); a null MX
//! (RFC 7505) or a domain that does not exist is a permanent failure, a DNS failure a
//! temporary one.

use std::time::Duration;

pub use mail_auth::hickory_resolver::TokioResolver;
use mail_auth::hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use mail_auth::hickory_resolver::proto::rr::RData;
use rempart_model::Route;
use rempart_model::config::DnsConfig;
use rempart_smtp::Reply;

/// MX hosts tried per attempt, at most (a hostile zone can list hundreds).
pub const MAX_HOSTS: usize = 10;

/// The one builder of DNS clients from `[dns]`: its servers (or the system's), timeout
/// and attempts. `None` when offline. The scanner's checks (SPF, DKIM, DMARC, lists)
/// and the relay's MX lookups both use it.
pub fn authenticator(config: &DnsConfig) -> Result<Option<mail_auth::MessageAuthenticator>, String> {
    if config.offline {
        return Ok(None);
    }
    let mut options = ResolverOpts::default();
    options.timeout = Duration::from_millis(config.timeout_ms);
    options.attempts = config.attempts;
    let built = if config.servers.is_empty() {
        mail_auth::MessageAuthenticator::new_system_conf()
            .map_err(|e| format!("no usable system resolver ({e}); set dns.servers or dns.offline"))?
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
        mail_auth::MessageAuthenticator::new(ResolverConfig::from_name_servers(servers), options).map_err(|e| e.to_string())?
    };
    Ok(Some(built))
}

/// The resolver of `[dns]`; `None` when offline or when no system resolver is usable
/// (mail to outside domains then waits with 4.4.3).
pub fn resolver(config: &DnsConfig) -> Option<TokioResolver> {
    authenticator(config)
        .inspect_err(|e| tracing::error!(error = %e, "no DNS resolver: mail to outside domains will wait"))
        .ok()
        .flatten()
        .map(|a| a.resolver().clone())
}

/// The hosts to try for `domain`, best first, each on `port`.
pub async fn hosts(resolver: Option<&TokioResolver>, domain: &str, port: u16) -> Result<Vec<Route>, Reply> {
    let Some(resolver) = resolver else {
        return Err(Reply::new(451, "4.4.3", format!("Cannot look up the mail servers of {domain}: DNS is off ([dns] offline)")));
    };
    let fqdn = format!("{}.", domain.trim_end_matches('.'));
    let route = |host: &str| Route { host: host.trim_end_matches('.').to_string(), port };
    match resolver.mx_lookup(fqdn.as_str()).await {
        Ok(lookup) => {
            let mut mx: Vec<(u16, String)> = lookup
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    RData::MX(mx) => Some((mx.preference, mx.exchange.to_string())),
                    _ => None,
                })
                .collect();
            if mx.len() == 1 && mx[0].1.trim_end_matches('.').is_empty() {
                return Err(Reply::new(556, "5.1.10", format!("{domain} accepts no mail (null MX, RFC 7505)")));
            }
            mx.retain(|(_, host)| !host.trim_end_matches('.').is_empty());
            mx.sort_by_key(|(preference, _)| *preference);
            if mx.is_empty() {
                return Ok(vec![route(domain)]);
            }
            Ok(mx.iter().take(MAX_HOSTS).map(|(_, host)| route(host)).collect())
        }
        Err(e) if e.is_nx_domain() => Err(Reply::new(550, "5.1.2", format!("Domain {domain} does not exist (DNS: no such name)"))),
        Err(e) if e.is_no_records_found() => Ok(vec![route(domain)]),
        Err(e) => Err(Reply::new(451, "4.4.3", format!("Cannot look up the mail servers of {domain}: {e}"))),
    }
}

/// Addresses of one MX host tried, at most.
pub const MAX_ADDRESSES: usize = 4;

/// The addresses of `host` (A and AAAA), at most `MAX_ADDRESSES`; none when it has none
/// or the lookup fails (the next host is tried).
pub async fn addresses(resolver: Option<&TokioResolver>, host: &str) -> Vec<std::net::IpAddr> {
    if let Ok(ip) = host.parse() {
        return vec![ip];
    }
    let Some(resolver) = resolver else { return Vec::new() };
    match resolver.lookup_ip(format!("{}.", host.trim_end_matches('.')).as_str()).await {
        Ok(lookup) => lookup.iter().take(MAX_ADDRESSES).collect(),
        Err(e) => {
            tracing::info!(%host, error = %e, "MX host has no usable address");
            Vec::new()
        }
    }
}

/// The name servers of /etc/resolv.conf, port 53 (DANE's own queries when `[dns]` names
/// none).
pub fn system_servers() -> Vec<std::net::SocketAddr> {
    let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("nameserver"))
        .filter_map(|rest| rest.trim().parse::<std::net::IpAddr>().ok())
        .map(|ip| std::net::SocketAddr::new(ip, 53))
        .collect()
}

/// What a domain publishes, as the management plane checks it: the MX hosts (by
/// preference) and the TXT strings of a name. A name without such records gives an
/// empty list; `Err` is a lookup that failed.
pub async fn published_mx(resolver: &TokioResolver, domain: &str) -> Result<Vec<String>, String> {
    let fqdn = format!("{}.", domain.trim_end_matches('.'));
    match resolver.mx_lookup(fqdn.as_str()).await {
        Ok(lookup) => {
            let mut mx: Vec<(u16, String)> = lookup
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    RData::MX(mx) => Some((mx.preference, mx.exchange.to_string().trim_end_matches('.').to_ascii_lowercase())),
                    _ => None,
                })
                .collect();
            mx.sort();
            Ok(mx.into_iter().map(|(_, host)| host).collect())
        }
        Err(e) if e.is_nx_domain() || e.is_no_records_found() => Ok(Vec::new()),
        Err(e) => Err(e.to_string()),
    }
}

/// The TXT strings at `name` (each record's strings joined).
pub async fn published_txt(resolver: &TokioResolver, name: &str) -> Result<Vec<String>, String> {
    let fqdn = format!("{}.", name.trim_end_matches('.'));
    match resolver.txt_lookup(fqdn.as_str()).await {
        Ok(lookup) => Ok(lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::TXT(txt) => Some(txt.txt_data.iter().map(|part| String::from_utf8_lossy(part).into_owned()).collect::<String>()),
                _ => None,
            })
            .collect()),
        Err(e) if e.is_nx_domain() || e.is_no_records_found() => Ok(Vec::new()),
        Err(e) => Err(e.to_string()),
    }
}
