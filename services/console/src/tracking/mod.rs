//! Message tracking: "did bob get the mail from X yesterday?". Each message's life —
//! the edge's answer to its transaction (client, HELO, TLS, recipients accepted and
//! refused, the verdict), each delivery attempt per recipient, DSNs, quarantine
//! release and deletion — folded from the gateway's events (`TrackEvent`,
//! `DeliveryEvent`) into one record per queue id, kept in an embedded index
//! (`index.rs`, redb) searchable by sender, recipient, Message-ID, queue id, client
//! IP, date range and status, within the reader's scope. `ingest.rs` feeds it: from
//! the bus in process, or replayed from the NATS events stream (a console started
//! empty catches up).

pub mod index;
pub mod ingest;

use std::collections::BTreeSet;

use rempart_proto::v1::{DeliveryEvent, TrackEvent};
use serde::{Deserialize, Serialize};

use crate::quarantine::Scope;

pub use index::{TrackingError, TrackingIndex};

/// Where a message, or one recipient's copy, stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Refused in the SMTP session (at RCPT or after DATA).
    Refused,
    /// Told to come back later (greylisting).
    Greylisted,
    /// Told to try again (a temporary failure of ours).
    Tempfail,
    /// Accepted, waiting for its first delivery attempt.
    Queued,
    /// A delivery attempt failed temporarily; it will be tried again.
    Deferred,
    Delivered,
    /// Given up (refused by the receiving server, or expired): a DSN went to the sender.
    Bounced,
    /// Held in the quarantine.
    Quarantined,
    /// Held in the queue by an operator.
    Held,
    /// Accepted and dropped by policy.
    Discarded,
    /// Deleted from the quarantine (or expired there).
    Deleted,
}

impl Status {
    pub const ALL: [Status; 11] = [
        Status::Refused,
        Status::Greylisted,
        Status::Tempfail,
        Status::Queued,
        Status::Deferred,
        Status::Delivered,
        Status::Bounced,
        Status::Quarantined,
        Status::Held,
        Status::Discarded,
        Status::Deleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Refused => "refused",
            Status::Greylisted => "greylisted",
            Status::Tempfail => "tempfail",
            Status::Queued => "queued",
            Status::Deferred => "deferred",
            Status::Delivered => "delivered",
            Status::Bounced => "bounced",
            Status::Quarantined => "quarantined",
            Status::Held => "held",
            Status::Discarded => "discarded",
            Status::Deleted => "deleted",
        }
    }

    pub fn parse(word: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str().eq_ignore_ascii_case(word.trim()))
    }

    /// The status of accepted recipients after the edge's outcome word.
    fn of_outcome(outcome: &str) -> Status {
        match outcome {
            "refused" => Status::Refused,
            "greylisted" => Status::Greylisted,
            "tempfail" => Status::Tempfail,
            "quarantined" => Status::Quarantined,
            "discarded" => Status::Discarded,
            _ => Status::Queued,
        }
    }

    /// Which status a message with recipients in several shows: mail still on its
    /// way or needing attention first, a recipient refused at RCPT last (the message
    /// delivered to the others is "delivered").
    fn rank(self) -> u8 {
        match self {
            Status::Deferred => 0,
            Status::Held => 1,
            Status::Queued => 2,
            Status::Quarantined => 3,
            Status::Bounced => 4,
            Status::Tempfail => 5,
            Status::Greylisted => 6,
            Status::Delivered => 7,
            Status::Deleted => 8,
            Status::Discarded => 9,
            Status::Refused => 10,
        }
    }
}

/// One recipient of a tracked message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackedRecipient {
    pub address: String,
    pub status: Status,
    /// The last reply about it (ours at RCPT, or the receiving server's).
    pub reply: String,
    /// The server that answered the last attempt.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub remote: String,
    #[serde(default)]
    pub attempts: u32,
}

/// One line of a message's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub at_ms: u64,
    /// received, refused, greylisted, …, delivery, deferred, bounced, dsn, released, deleted, expired
    pub what: String,
    pub detail: String,
}

/// A message as tracking knows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrackedMessage {
    pub queue_id: String,
    /// When the first event about it happened (ms since the epoch): the index's time.
    pub first_ms: u64,
    pub last_ms: u64,
    pub client_ip: String,
    pub helo: String,
    pub tls: String,
    pub sender: String,
    pub message_id: String,
    pub subject: String,
    pub size: u64,
    pub score: Option<f64>,
    pub action: String,
    pub symbols: Vec<String>,
    /// The account that submitted it (outbound), else empty.
    pub account: String,
    /// The edge's outcome word (queued, refused, greylisted, …); empty when the edge's
    /// event has not arrived (a DSN the relay made, or events out of order).
    pub outcome: String,
    pub recipients: Vec<TrackedRecipient>,
    pub timeline: Vec<Step>,
}

/// Bounds on what one record keeps: a message retried for days stays small.
const MAX_TIMELINE: usize = 200;
const MAX_RECIPIENTS: usize = 1000;

impl TrackedMessage {
    /// The status shown for the whole message.
    pub fn status(&self) -> Status {
        self.recipients.iter().map(|r| r.status).min_by_key(|s| s.rank()).unwrap_or_else(|| Status::of_outcome(&self.outcome))
    }

    /// Every status the message or one of its recipients has (a search by status
    /// finds a message with one bounced recipient among delivered ones).
    pub fn statuses(&self) -> BTreeSet<Status> {
        let mut all: BTreeSet<Status> = self.recipients.iter().map(|r| r.status).collect();
        if !self.outcome.is_empty() {
            all.insert(Status::of_outcome(&self.outcome));
        }
        all
    }

    fn at(&mut self, at_ms: u64) {
        self.first_ms = if self.first_ms == 0 { at_ms } else { self.first_ms.min(at_ms) };
        self.last_ms = self.last_ms.max(at_ms);
    }

    fn step(&mut self, at_ms: u64, what: &str, detail: String) {
        // The same thing told twice (each console replica sweeps its own index) is one step.
        if self.timeline.iter().any(|s| s.what == what && s.detail == detail) {
            return;
        }
        if self.timeline.len() < MAX_TIMELINE {
            self.timeline.push(Step { at_ms, what: what.to_string(), detail });
            self.timeline.sort_by_key(|s| s.at_ms);
        }
    }

    fn recipient(&mut self, address: &str) -> Option<&mut TrackedRecipient> {
        if !self.recipients.iter().any(|r| r.address.eq_ignore_ascii_case(address)) {
            if self.recipients.len() >= MAX_RECIPIENTS {
                return None;
            }
            self.recipients.push(TrackedRecipient {
                address: address.to_string(),
                status: Status::Queued,
                reply: String::new(),
                remote: String::new(),
                attempts: 0,
            });
        }
        self.recipients.iter_mut().find(|r| r.address.eq_ignore_ascii_case(address))
    }

    /// Folds one tracking event in (events may come in any order).
    pub fn apply_track(&mut self, e: &TrackEvent) {
        let at = e.at_ms.max(0) as u64;
        self.at(at);
        match e.kind.as_str() {
            "session" => {
                self.client_ip = e.client_ip.clone();
                self.helo = e.helo.clone();
                self.tls = e.tls.clone();
                self.sender = e.sender.clone();
                self.message_id = e.message_id.clone();
                self.subject = e.subject.clone();
                self.size = e.size;
                self.account = e.account.clone();
                self.outcome = e.outcome.clone();
                if !e.action.is_empty() {
                    self.score = Some(e.score);
                    self.action = e.action.clone();
                    self.symbols = e.symbols.clone();
                }
                let connection = format!(
                    "from {} (HELO {}){}{}",
                    e.client_ip,
                    e.helo,
                    if e.tls.is_empty() { String::new() } else { format!(", {}", e.tls) },
                    if e.account.is_empty() { String::new() } else { format!(", logged in as {}", e.account) }
                );
                self.step(at, "connection", connection);
                for refused in &e.refused {
                    if let Some(r) = self.recipient(&refused.address) {
                        r.status = Status::Refused;
                        r.reply = refused.reply.clone();
                    }
                    self.step(at, "rcpt_refused", format!("<{}>: {}", refused.address, refused.reply));
                }
                let status = Status::of_outcome(&e.outcome);
                for address in &e.recipients {
                    if let Some(r) = self.recipient(address) {
                        // A delivery event may have come first: it knows better.
                        if r.status == Status::Queued {
                            r.status = status;
                            if status != Status::Queued {
                                r.reply = e.reply.clone();
                            }
                        }
                    }
                }
                if !e.action.is_empty() {
                    self.step(at, "verdict", format!("score {:.2}, action {}: {}", e.score, e.action, e.symbols.join(" ")));
                }
                if !e.reply.is_empty() || !e.recipients.is_empty() {
                    self.step(at, &e.outcome, e.reply.clone());
                }
            }
            "dsn" => self.step(at, "dsn", format!("{} (queued as {})", e.reply, e.outcome)),
            kind @ ("released" | "deleted" | "expired") => {
                let to = if kind == "released" { Status::Queued } else { Status::Deleted };
                for address in &e.recipients {
                    if let Some(r) = self.recipient(address).filter(|r| r.status == Status::Quarantined) {
                        r.status = to;
                    }
                }
                let by = if e.outcome.is_empty() { String::new() } else { format!(" by {}", e.outcome) };
                self.step(at, kind, format!("{}{by}", e.recipients.join(", ")));
            }
            queue if queue.starts_with("queue_") => {
                let action = &queue["queue_".len()..];
                let to = match action {
                    "hold" => Some(Status::Held),
                    "release" | "retry" => Some(Status::Queued),
                    "delete" => Some(Status::Deleted),
                    _ => None,
                };
                for address in &e.recipients {
                    if let (Some(to), Some(r)) = (to, self.recipient(address)) {
                        r.status = to;
                    }
                }
                self.step(at, action, format!("{} by {}", e.recipients.join(", "), e.outcome));
            }
            _ => {}
        }
    }

    /// Folds one delivery attempt's outcome for one recipient in.
    pub fn apply_delivery(&mut self, e: &DeliveryEvent) {
        let at = if e.at_ms > 0 { e.at_ms as u64 } else { (e.at.max(0) as u64).saturating_mul(1000) };
        self.at(at);
        let status = match e.status.as_str() {
            "delivered" => Status::Delivered,
            "failed" => Status::Bounced,
            _ => Status::Deferred,
        };
        if let Some(r) = self.recipient(&e.recipient) {
            r.status = status;
            r.reply = e.reply.clone();
            r.remote = e.remote.clone();
            r.attempts = r.attempts.max(e.attempts);
        }
        let via = if e.remote.is_empty() { String::new() } else { format!(" via {}", e.remote) };
        let tls = if e.tls.is_empty() { String::new() } else { format!(" ({})", e.tls) };
        self.step(at, status.as_str(), format!("<{}> attempt {}{via}{tls}: {}", e.recipient, e.attempts, e.reply));
    }

    /// The domains whose admins may see this message: its recipients' (inbound), and
    /// the sending account's domain (outbound).
    pub fn scope_domains(&self) -> BTreeSet<String> {
        let mut domains: BTreeSet<String> = self.recipients.iter().map(|r| domain_of(&r.address)).collect();
        if !self.account.is_empty() {
            domains.insert(domain_of(&self.account));
        }
        domains.remove("");
        domains
    }

    /// Whether `scope` may see this message at all.
    pub fn visible_to(&self, scope: &Scope) -> bool {
        match scope {
            Scope::All => true,
            Scope::Domains(domains) => self.scope_domains().iter().any(|d| domains.iter().any(|x| x.eq_ignore_ascii_case(d))),
            Scope::Addresses(addresses) => {
                let mine = |a: &str| addresses.iter().any(|x| x.eq_ignore_ascii_case(a));
                self.recipients.iter().any(|r| mine(&r.address)) || (!self.account.is_empty() && mine(&self.account))
            }
        }
    }

    /// The message as `scope` may see it: another customer's recipients of the same
    /// message are left out (inbound; a sender sees their own message whole).
    pub fn seen_by(mut self, scope: &Scope) -> TrackedMessage {
        let own_outbound = match scope {
            Scope::All => return self,
            Scope::Domains(domains) => {
                !self.account.is_empty() && domains.iter().any(|d| d.eq_ignore_ascii_case(&domain_of(&self.account)))
            }
            Scope::Addresses(addresses) => addresses.iter().any(|a| a.eq_ignore_ascii_case(&self.account)),
        };
        if own_outbound {
            return self;
        }
        let keep = |address: &str| match scope {
            Scope::All => true,
            Scope::Domains(domains) => domains.iter().any(|d| d.eq_ignore_ascii_case(&domain_of(address))),
            Scope::Addresses(addresses) => addresses.iter().any(|a| a.eq_ignore_ascii_case(address)),
        };
        let hidden: Vec<String> = self.recipients.iter().filter(|r| !keep(&r.address)).map(|r| r.address.to_ascii_lowercase()).collect();
        self.recipients.retain(|r| keep(&r.address));
        self.timeline.retain(|s| !hidden.iter().any(|h| s.detail.to_ascii_lowercase().contains(&format!("<{h}>"))));
        self
    }
}

/// The domain of an address, lower case ("" without one).
pub fn domain_of(address: &str) -> String {
    address.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()).unwrap_or_default()
}

/// A search. Empty fields do not filter. A sender or recipient with an `@` is one
/// address; without, a domain (`example.com` or `@example.com`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Query {
    pub sender: String,
    pub recipient: String,
    pub message_id: String,
    pub queue_id: String,
    pub client_ip: String,
    /// From this time (ms since the epoch), inclusive.
    pub since_ms: Option<u64>,
    /// Until this time (ms since the epoch), inclusive.
    pub until_ms: Option<u64>,
    pub status: Option<Status>,
    pub limit: usize,
}

impl Query {
    /// Whether `m` matches every field given (the index already narrowed by one).
    pub fn matches(&self, m: &TrackedMessage) -> bool {
        let since = self.since_ms.unwrap_or(0);
        let until = self.until_ms.unwrap_or(u64::MAX);
        (since..=until).contains(&m.first_ms)
            && (self.sender.is_empty() || address_matches(&self.sender, &m.sender))
            && (self.recipient.is_empty() || m.recipients.iter().any(|r| address_matches(&self.recipient, &r.address)))
            && (self.message_id.is_empty() || normal_message_id(&self.message_id) == normal_message_id(&m.message_id))
            && (self.queue_id.is_empty() || self.queue_id.trim().eq_ignore_ascii_case(&m.queue_id))
            && (self.client_ip.is_empty() || self.client_ip.trim() == m.client_ip)
            && self.status.is_none_or(|s| m.statuses().contains(&s))
    }
}

/// An address searched for: one address, or (without `@` before a domain) a domain.
fn address_matches(wanted: &str, address: &str) -> bool {
    let wanted = wanted.trim();
    match wanted.strip_prefix('@') {
        Some(domain) => domain.eq_ignore_ascii_case(&domain_of(address)),
        None if wanted.contains('@') => wanted.eq_ignore_ascii_case(address),
        None => wanted.eq_ignore_ascii_case(&domain_of(address)),
    }
}

/// A Message-ID without its angle brackets, lower case.
pub fn normal_message_id(id: &str) -> String {
    id.trim().trim_start_matches('<').trim_end_matches('>').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rempart_proto::v1::RecipientReply;

    fn session(outcome: &str, to: &[&str], refused: &[&str], at_ms: i64) -> TrackEvent {
        TrackEvent {
            queue_id: "Q1".into(),
            at_ms,
            kind: "session".into(),
            client_ip: "192.0.2.7".into(),
            helo: "mx.sender.test".into(),
            sender: "s@sender.test".into(),
            recipients: to.iter().map(|s| s.to_string()).collect(),
            refused: refused.iter().map(|a| RecipientReply { address: a.to_string(), reply: "550 5.1.1 unknown".into() }).collect(),
            reply: "250 2.0.0 Ok".into(),
            outcome: outcome.into(),
            ..Default::default()
        }
    }

    fn delivery(to: &str, status: &str, at_ms: i64) -> DeliveryEvent {
        DeliveryEvent {
            queue_id: "Q1".into(),
            recipient: to.into(),
            status: status.into(),
            reply: "250 ok".into(),
            attempts: 1,
            at_ms,
            ..Default::default()
        }
    }

    #[test]
    fn events_in_any_order_make_the_same_record() {
        let (s, d) = (session("queued", &["a@one.test"], &["x@one.test"], 1_000), delivery("a@one.test", "delivered", 2_000));
        let mut in_order = TrackedMessage::default();
        in_order.apply_track(&s);
        in_order.apply_delivery(&d);
        let mut reversed = TrackedMessage::default();
        reversed.apply_delivery(&d);
        reversed.apply_track(&s);
        for m in [&in_order, &reversed] {
            assert_eq!(m.first_ms, 1_000);
            assert_eq!(m.status(), Status::Delivered, "a refused RCPT beside a delivery: delivered");
            assert!(m.statuses().contains(&Status::Refused));
            assert_eq!(m.timeline.first().map(|s| s.what.as_str()), Some("connection"));
        }
        let sorted = |m: &TrackedMessage| {
            let mut r = m.recipients.clone();
            r.sort_by(|a, b| a.address.cmp(&b.address));
            r
        };
        assert_eq!(sorted(&in_order), sorted(&reversed));
    }

    #[test]
    fn quarantine_expiry_is_told_once_and_other_customers_recipients_are_hidden() {
        let mut m = TrackedMessage::default();
        m.apply_track(&session("quarantined", &["a@one.test", "b@two.test"], &[], 1_000));
        let expired = TrackEvent {
            queue_id: "Q1".into(),
            at_ms: 5_000,
            kind: "expired".into(),
            recipients: vec!["a@one.test".into()],
            outcome: "the quarantine's retention".into(),
            ..Default::default()
        };
        m.apply_track(&expired);
        m.apply_track(&expired);
        assert_eq!(m.timeline.iter().filter(|s| s.what == "expired").count(), 1, "two replicas' sweeps: one step");
        assert_eq!(m.recipients.iter().map(|r| r.status).collect::<Vec<_>>(), [Status::Deleted, Status::Quarantined]);
        let scope = Scope::Domains(vec!["two.test".into()]);
        assert!(m.visible_to(&scope));
        let seen = m.clone().seen_by(&scope);
        assert_eq!(seen.recipients.iter().map(|r| r.address.as_str()).collect::<Vec<_>>(), ["b@two.test"]);
        assert!(!m.visible_to(&Scope::Domains(vec!["three.test".into()])));
    }
}
