//! Links of the kind modern phishing uses: to an IP address, with a user part before
//! the host (`https://bank.example@evil.example/`), through a URL shortener, to a
//! script or data URL, to an internationalised (punycode) host that may imitate another.

use super::{Context, Findings};

/// Public URL shorteners (links whose destination the reader cannot see).
const SHORTENERS: &[&str] = &[
    "bit.ly",
    "tinyurl.com",
    "t.co",
    "goo.gl",
    "ow.ly",
    "is.gd",
    "buff.ly",
    "rebrand.ly",
    "cutt.ly",
    "shorturl.at",
    "rb.gy",
    "t.ly",
    "tiny.cc",
    "bl.ink",
    "s.id",
    "v.gd",
    "lnkd.in",
    "shorte.st",
    "adf.ly",
    "bit.do",
];

/// Links looked at, at most (a hostile message can have thousands).
const MAX_LINKS: usize = 200;

pub fn run(ctx: &Context<'_>, out: &mut Findings) {
    let hrefs = ctx.analysis.html.iter().flat_map(|h| h.anchors.iter().map(|a| a.href.trim())).take(MAX_LINKS);
    for href in hrefs {
        let lower = href.to_ascii_lowercase();
        if lower.starts_with("javascript:") || lower.starts_with("data:") || lower.starts_with("vbscript:") {
            out.hit_with("URI_SCRIPT_LINK", Some(lower.chars().take(40).collect()));
            continue;
        }
        let Some(rest) = lower.strip_prefix("http://").or_else(|| lower.strip_prefix("https://")) else { continue };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let (userinfo, host_port) = match authority.rsplit_once('@') {
            Some((user, host)) => (Some(user), host),
            None => (None, authority),
        };
        let host = host_port.rsplit_once(':').filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit())).map_or(host_port, |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']').trim_end_matches('.');
        if userinfo.is_some_and(|u| !u.is_empty()) {
            out.hit_with("URI_USERINFO", Some(format!("link to {host} shows {}", userinfo.unwrap_or_default())));
        }
        if host.parse::<std::net::IpAddr>().is_ok() {
            out.hit_with("NUMERIC_HTTP_ADDR", Some(host.to_string()));
        } else if SHORTENERS.contains(&host) || host.strip_prefix("www.").is_some_and(|h| SHORTENERS.contains(&h)) {
            out.hit_with("URI_SHORTENER", Some(host.to_string()));
        }
        if host.split('.').any(|label| label.starts_with("xn--")) {
            out.hit_with("URI_PUNYCODE", Some(host.to_string()));
        }
    }
}
