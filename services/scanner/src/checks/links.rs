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

/// Free hosting and storage services that phishing pages are put on (anyone can publish
/// there in a minute; a business's own mail links to its own site). Matched as the
/// host itself or a name under it; `/`-paths say which part of a shared host counts.
const FREE_HOSTING: &[&str] = &[
    "firebaseapp.com",
    "web.app",
    "r2.dev",
    "workers.dev",
    "pages.dev",
    "blob.core.windows.net",
    "web.core.windows.net",
    "storage.googleapis.com",
    "s3.amazonaws.com",
    "ipfs.io",
    "dweb.link",
    "ipfs.w3s.link",
    "forms.gle",
    "sites.google.com",
    "weebly.com",
    "wixsite.com",
    "000webhostapp.com",
    "herokuapp.com",
    "glitch.me",
    "ngrok.io",
    "ngrok-free.app",
    "netlify.app",
    "vercel.app",
    "github.io",
    "appspot.com",
    "azurewebsites.net",
    "webflow.io",
    "notion.site",
    "godaddysites.com",
    "square.site",
    "firebasestorage.googleapis.com",
    "docs.google.com/forms",
    "docs.google.com/drawings",
];

/// Links looked at, at most (a hostile message can have thousands).
const MAX_LINKS: usize = 200;

pub fn run(ctx: &Context<'_>, out: &mut Findings) {
    let a = ctx.analysis;
    let anchors = || a.html.iter().flat_map(|h| h.anchors.iter().map(|a| a.href.trim()));
    let web_words = a.text_links().filter(|w| w.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("http")));
    let all_links = anchors().chain(web_words).take(MAX_LINKS);
    if let Some(service) = all_links.filter_map(free_hosting).next() {
        out.hit_with("URI_FREE_HOSTING", Some(service.to_string()));
    }
    for href in anchors().take(MAX_LINKS) {
        let lower = href.to_ascii_lowercase();
        if lower.starts_with("javascript:") || lower.starts_with("data:") || lower.starts_with("vbscript:") {
            out.hit_with("URI_SCRIPT_LINK", Some(lower.chars().take(40).collect()));
            continue;
        }
        let Some(WebLink { userinfo, host, .. }) = web_link(&lower) else { continue };
        if let Some(userinfo) = userinfo.filter(|u| !u.is_empty()) {
            out.hit_with("URI_USERINFO", Some(format!("link to {host} shows {userinfo}")));
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

/// An http(s) link's parts (of the lower-cased link).
struct WebLink<'l> {
    userinfo: Option<&'l str>,
    /// Without port, IPv6 brackets or final dot.
    host: &'l str,
    /// What follows the authority (path, query, fragment).
    path: &'l str,
}

fn web_link(lower: &str) -> Option<WebLink<'_>> {
    let rest = lower.strip_prefix("http://").or_else(|| lower.strip_prefix("https://"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let (userinfo, host_port) = match authority.rsplit_once('@') {
        Some((user, host)) => (Some(user), host),
        None => (None, authority),
    };
    let host = host_port.rsplit_once(':').filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit())).map_or(host_port, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']').trim_end_matches('.');
    Some(WebLink { userinfo, host, path: &rest[authority.len()..] })
}

/// The free-hosting service a web link leads to, if it does.
fn free_hosting(link: &str) -> Option<&'static str> {
    let lower = link.to_ascii_lowercase();
    let WebLink { host, path, .. } = web_link(&lower)?;
    FREE_HOSTING.iter().copied().find(|service| {
        let (service_host, service_path) = service.split_once('/').map_or((*service, ""), |(h, p)| (h, p));
        let on_host = host == service_host || host.ends_with(&format!(".{service_host}"));
        on_host && (service_path.is_empty() || path.trim_start_matches('/').starts_with(service_path))
    })
}

#[cfg(test)]
mod tests {
    use super::free_hosting;

    #[test]
    fn free_hosting_by_host_and_path() {
        assert_eq!(free_hosting("https://adam6-488708.firebaseapp.com/__/auth"), Some("firebaseapp.com"));
        assert_eq!(free_hosting("https://docs.google.com/forms/d/e/x/viewform"), Some("docs.google.com/forms"));
        assert_eq!(free_hosting("https://docs.google.com/document/d/x"), None);
        assert_eq!(free_hosting("https://notfirebaseapp.com/"), None);
        assert_eq!(free_hosting("https://www.example.com/web.app"), None);
    }
}
