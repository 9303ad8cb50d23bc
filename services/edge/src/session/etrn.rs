//! ETRN (RFC 1985): a customer's server asks for the mail waiting for its domain to be
//! retried now instead of at the next scheduled attempt. Only the domain's own server
//! (an address of its route's host) may ask, outside a mail transaction; `@domain`
//! covers its subdomains too; queue names (`#queue`) are not kept here.

use std::net::IpAddr;

use rempart_bus::{Bus, BusError, DELIVER_TOPIC, MetaFilter};
use rempart_model::{DeliveryStatus, Envelope};
use rempart_smtp::Reply;

use super::{Flow, Session, State, Transport};

impl<B: Bus, S: Transport> Session<B, S> {
    pub(super) async fn etrn(&mut self, args: &str) -> Flow {
        if self.kind.is_submission() {
            return self.reply(Reply::new(502, "5.5.1", "ETRN is for customer servers on the MX port"));
        }
        let node = args.trim();
        if node.is_empty() || node.contains(char::is_whitespace) {
            return self.reply(Reply::new(501, "5.5.4", "Syntax: ETRN domain | @domain"));
        }
        if self.state == State::Connected {
            return self.reply(Reply::bad_sequence("Send EHLO first"));
        }
        if self.state != State::Greeted {
            return self.reply(Reply::bad_sequence("ETRN is not allowed during a mail transaction"));
        }
        if node.starts_with('#') {
            return self.reply(Reply::new(
                458,
                "4.3.0",
                format!("Unable to queue messages for node {node}: there are no named queues here"),
            ));
        }
        let (domain, subdomains) = match node.strip_prefix('@') {
            Some(domain) => (domain.to_ascii_lowercase(), true),
            None => (node.to_ascii_lowercase(), false),
        };
        let Some(config) = self.view.config.domain(&domain) else {
            return self.reply(Reply::new(459, "4.7.1", format!("Node {node} not allowed: not a domain this gateway serves")));
        };
        let route = config.route.clone();
        let peer: Option<IpAddr> = self.facts.client_ip();
        if !route_addresses(&route.host, route.port).await.iter().any(|ip| Some(*ip) == peer) {
            tracing::warn!(client = %self.facts.peer_ip, %node, route = %route.host, "ETRN refused: not the domain's server");
            return self.reply(Reply::new(
                459,
                "4.7.1",
                format!("Node {node} not allowed: only the domain's own server ({}) may ask", route.host),
            ));
        }
        let started = std::time::Instant::now();
        let matches: MetaFilter = Box::new(move |meta: &[u8]| waits_for(meta, &domain, subdomains));
        match self.shared.bus.expedite(DELIVER_TOPIC, matches).await {
            Ok(0) => self.reply(Reply::new(251, "2.0.0", format!("OK, no messages waiting for node {node}"))),
            Ok(n) => {
                tracing::info!(client = %self.facts.peer_ip, %node, messages = n, took_ms = started.elapsed().as_millis() as u64, "ETRN");
                self.reply(Reply::new(253, "2.0.0", format!("OK, {n} pending messages for node {node} started")))
            }
            Err(BusError::Unsupported(what)) => self.reply(Reply::new(
                458,
                "4.3.0",
                format!("Unable to queue messages for node {node}: {what} is not available with this queue"),
            )),
            Err(e) => {
                tracing::error!(%node, error = %e, "ETRN failed");
                self.reply(Reply::new(458, "4.3.0", format!("Unable to queue messages for node {node}: temporary queue failure")))
            }
        }
    }
}

/// The addresses of a route's host (an address literal, or its DNS names' addresses).
async fn route_addresses(host: &str, port: u16) -> Vec<IpAddr> {
    if let Ok(ip) = host.parse() {
        return vec![ip];
    }
    match tokio::net::lookup_host((host, port)).await {
        Ok(found) => found.map(|a| a.ip()).collect(),
        Err(e) => {
            tracing::info!(%host, error = %e, "ETRN: the route's host does not resolve");
            Vec::new()
        }
    }
}

/// Whether a queued message (its envelope) still has a recipient in `domain` (or, with
/// `subdomains`, below it) waiting for delivery.
fn waits_for(meta: &[u8], domain: &str, subdomains: bool) -> bool {
    let Ok(envelope) = Envelope::from_json(meta) else { return false };
    envelope.recipients.iter().filter(|r| matches!(r.status, DeliveryStatus::Pending { .. })).any(|r| {
        let d = r.domain().trim_end_matches('.').to_ascii_lowercase();
        d == domain || (subdomains && d.strip_suffix(domain).is_some_and(|rest| rest.ends_with('.')))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rempart_model::{QueueId, Recipient};

    #[test]
    fn a_message_waits_for_a_domain_while_one_of_its_recipients_there_is_pending() {
        let mut envelope = Envelope::new(
            QueueId::generate(),
            "s@sender.test".into(),
            vec![Recipient::new("a@Example.com".into()), Recipient::new("b@mx.sub.example.com".into())],
            0,
        );
        let meta = envelope.to_json();
        assert!(waits_for(&meta, "example.com", false));
        assert!(!waits_for(&meta, "sub.example.com", false));
        assert!(waits_for(&meta, "sub.example.com", true));
        assert!(!waits_for(&meta, "ample.com", true), "a suffix is not a subdomain");
        envelope.recipients[0].status = DeliveryStatus::Delivered { reply: "250".into(), remote: "r".into(), at: 0 };
        assert!(!waits_for(&envelope.to_json(), "example.com", false), "delivered already");
        assert!(!waits_for(b"not json", "example.com", false));
    }
}
