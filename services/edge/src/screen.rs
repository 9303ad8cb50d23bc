//! Connection screening, before the greeting (postscreen's checks inside the edge): a
//! per-IP connection rate and weighted DNS lists, both through the store so every edge
//! shares them; the greeting pause and early pipelining are watched by the session.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use mail_auth::hickory_resolver::TokioResolver;
use mail_auth::hickory_resolver::proto::rr::RData;
use rempart_model::config::DnsListConfig;
use rempart_model::{Config, date, dnslist};
use rempart_smtp::Reply;
use rempart_state::{Store, key, window};
use tokio::task::JoinSet;

/// How long a "not listed" result is kept (a listing keeps its answer's TTL).
const NOT_LISTED_TTL: Duration = Duration::from_secs(300);
/// Bounds on a listing's cached life, whatever the zone's TTL says.
const MIN_TTL: Duration = Duration::from_secs(60);
const MAX_TTL: Duration = Duration::from_secs(6 * 3600);

/// The refusal for a client that fails screening, if it does.
pub async fn at_connect(config: &Config, store: Option<&dyn Store>, resolver: Option<&TokioResolver>, ip: IpAddr) -> Option<Reply> {
    let screen = &config.screen;
    let hostname = &config.smtp.hostname;
    if let Some(store) = store.filter(|_| screen.connection_rate_per_ip > 0) {
        let minute = Duration::from_secs(60);
        let k = key(&["screen", "rate", &ip.to_string(), &window::number(date::unix_now(), minute).to_string()]);
        match window::add(store, &k, 1, minute).await {
            Ok(n) if n.unsigned_abs() > screen.connection_rate_per_ip => {
                let limit = screen.connection_rate_per_ip;
                tracing::info!(client = %ip, connections = n, limit, "connection rate exceeded");
                let text = format!("{hostname} Too many connections from {ip} ({n} this minute, limit {limit}), try again later");
                return Some(Reply::new(421, "4.7.0", text));
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "connection rate not counted"),
        }
    }
    if screen.dnsbls.is_empty() {
        return None;
    }
    let (score, listed) = dnsbl_score(store, resolver, &screen.dnsbls, ip).await;
    if score < screen.dnsbl_threshold {
        return None;
    }
    tracing::info!(client = %ip, score, lists = %listed, "refused at connect: DNS lists");
    Some(Reply::new(554, "5.7.1", format!("{hostname} Service unavailable; client [{ip}] blocked using {listed}")))
}

/// The sum of the lists' weights for `ip` and the lists that listed it, from the
/// store's cache or from DNS (then cached for the shortest answer's TTL).
async fn dnsbl_score(store: Option<&dyn Store>, resolver: Option<&TokioResolver>, lists: &[DnsListConfig], ip: IpAddr) -> (f64, String) {
    let cache_key = key(&["screen", "dnsbl", &ip.to_string()]);
    if let Some(store) = store
        && let Ok(Some(cached)) = store.get(&cache_key).await
        && let Some((score, listed)) = String::from_utf8_lossy(&cached).split_once('\t').map(|(s, l)| (s.to_string(), l.to_string()))
        && let Ok(score) = score.parse::<f64>()
    {
        return (score, listed);
    }
    let Some(resolver) = resolver else { return (0.0, String::new()) };
    let mut lookups = JoinSet::new();
    for (i, list) in lists.iter().enumerate() {
        let (resolver, name) = (resolver.clone(), dnslist::query_name(ip, &list.zone));
        lookups.spawn(async move { (i, resolver.ipv4_lookup(name.as_str()).await) });
    }
    let (mut score, mut listed, mut ttl, mut answered) = (0.0, Vec::new(), MAX_TTL, true);
    while let Some(joined) = lookups.join_next().await {
        let Ok((i, answer)) = joined else { continue };
        let list = &lists[i];
        let lookup = match answer {
            Ok(lookup) => lookup,
            Err(e) if e.is_nx_domain() || e.is_no_records_found() => continue,
            // A list that does not answer decides nothing, and the result is not cached.
            Err(e) => {
                tracing::info!(zone = %list.zone, error = %e, "DNS list did not answer");
                answered = false;
                continue;
            }
        };
        let answers: Vec<Ipv4Addr> = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(a.0),
                _ => None,
            })
            .collect();
        if dnslist::is_refusal(list, &answers) {
            tracing::warn!(zone = %list.zone, "DNS list refuses our resolver's queries");
            continue;
        }
        if let Some(weight) = dnslist::listed_weight(list, &answers) {
            score += weight;
            let codes: Vec<String> = answers.iter().map(ToString::to_string).collect();
            listed.push(format!("{} ({}: {})", list.zone, list.description, codes.join(", ")));
            let record_ttl = lookup.answers().iter().map(|r| r.ttl).min().unwrap_or(0);
            ttl = ttl.min(Duration::from_secs(u64::from(record_ttl)).max(MIN_TTL));
        }
    }
    let listed = listed.join(", ");
    if let Some(store) = store.filter(|_| answered) {
        let ttl = if listed.is_empty() { NOT_LISTED_TTL } else { ttl };
        if let Err(e) = store.put(&cache_key, format!("{score}\t{listed}").as_bytes(), Some(ttl)).await {
            tracing::warn!(error = %e, "DNS list result not cached");
        }
    }
    (score, listed)
}
