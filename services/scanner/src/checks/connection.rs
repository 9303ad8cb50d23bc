//! What the client said about itself in HELO/EHLO.

use std::net::IpAddr;

use super::{Context, Findings};

pub fn run(ctx: &Context<'_>, out: &mut Findings) {
    let helo = ctx.facts.helo.trim();
    if helo.is_empty() {
        return;
    }
    let literal = helo.strip_prefix('[').and_then(|h| h.strip_suffix(']')).map(|h| h.trim_start_matches("IPv6:"));
    if literal.or(Some(helo)).is_some_and(|h| h.parse::<IpAddr>().is_ok()) {
        out.hit_with("RCVD_NUMERIC_HELO", Some(helo.to_string()));
        return;
    }
    let name = helo.trim_end_matches('.').to_ascii_lowercase();
    let peer_is_local = ctx.facts.peer_ip.is_loopback();
    if name == "localhost" || name == "localhost.localdomain" {
        if !peer_is_local {
            out.hit_with("HELO_LOCALHOST", Some(helo.to_string()));
        }
    } else if name.eq_ignore_ascii_case(ctx.hostname) && !peer_is_local {
        out.hit_with("HELO_IS_OUR_NAME", Some(helo.to_string()));
    } else if !name.contains('.') {
        out.hit_with("HELO_NO_DOMAIN", Some(helo.to_string()));
    }
}
