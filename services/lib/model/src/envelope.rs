//! The envelope that travels with a message through the queue: who sent it, to whom,
//! from where, the DSN parameters the client asked for, and each recipient's status.

use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Deserializer, Serialize};

use crate::QueueId;

/// What the edge learnt about the SMTP session the message came in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionFacts {
    /// The client's address (after PROXY protocol, the real client's); 0.0.0.0 for
    /// mail the gateway makes itself.
    #[serde(deserialize_with = "lenient_ip")]
    pub peer_ip: IpAddr,
    pub helo: String,
    /// `TLSv1.3 with cipher TLS13_AES_256_GCM_SHA384` when STARTTLS was used.
    pub tls: Option<String>,
}

impl SessionFacts {
    /// The client's address; `None` for mail the gateway made itself (0.0.0.0).
    pub fn client_ip(&self) -> Option<IpAddr> {
        (!self.peer_ip.is_unspecified()).then_some(self.peer_ip)
    }
}

impl Default for SessionFacts {
    fn default() -> Self {
        SessionFacts { peer_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED), helo: String::new(), tls: None }
    }
}

/// An envelope queued by an older version may carry an empty or odd address: it reads
/// as 0.0.0.0 rather than making the message unreadable.
fn lenient_ip<'de, D: Deserializer<'de>>(d: D) -> Result<IpAddr, D::Error> {
    let text = String::deserialize(d)?;
    Ok(text.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)))
}

/// RFC 3461 `RET`: what a DSN should carry of the original message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DsnRet {
    Full,
    Hdrs,
}

/// RFC 3461 `NOTIFY`. `None` on a recipient means the client did not say: failures only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notify {
    pub never: bool,
    pub success: bool,
    pub failure: bool,
    pub delay: bool,
}

impl Notify {
    /// Parses the NOTIFY parameter value; `None` when it is not RFC 3461 syntax.
    pub fn parse(value: &str) -> Option<Self> {
        let mut n = Notify::default();
        for word in value.split(',') {
            match word.to_ascii_uppercase().as_str() {
                "NEVER" => n.never = true,
                "SUCCESS" => n.success = true,
                "FAILURE" => n.failure = true,
                "DELAY" => n.delay = true,
                _ => return None,
            }
        }
        // NEVER must stand alone.
        if n.never && (n.success || n.failure || n.delay) {
            return None;
        }
        Some(n)
    }

    pub fn to_param(self) -> String {
        if self.never {
            return "NEVER".into();
        }
        let words: Vec<&str> = [(self.success, "SUCCESS"), (self.failure, "FAILURE"), (self.delay, "DELAY")]
            .into_iter()
            .filter_map(|(on, w)| on.then_some(w))
            .collect();
        words.join(",")
    }
}

/// Where one recipient stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not delivered yet; `last_reply` holds the last temporary failure, if any.
    Pending { last_reply: Option<String> },
    /// The customer server accepted it.
    Delivered { reply: String, remote: String, at: u64 },
    /// Permanently failed (5xx, no route, or expired); a DSN was due.
    Failed { status: String, reply: String, remote: Option<String>, at: u64 },
}

impl DeliveryStatus {
    /// "deferred", "delivered" or "failed": the word logs, metrics, traces and events use.
    pub fn label(&self) -> &'static str {
        match self {
            DeliveryStatus::Pending { .. } => "deferred",
            DeliveryStatus::Delivered { .. } => "delivered",
            DeliveryStatus::Failed { .. } => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recipient {
    pub address: String,
    /// RFC 3461 NOTIFY, when the client gave one.
    pub notify: Option<Notify>,
    /// RFC 3461 ORCPT, as given (`rfc822;user@example.com`, xtext-encoded).
    pub orcpt: Option<String>,
    pub status: DeliveryStatus,
    /// A "delayed" report (NOTIFY=DELAY) was already sent for this recipient.
    #[serde(default)]
    pub delay_reported: bool,
}

impl Recipient {
    pub fn new(address: String) -> Self {
        Self { address, notify: None, orcpt: None, status: DeliveryStatus::Pending { last_reply: None }, delay_reported: false }
    }

    pub fn domain(&self) -> &str {
        self.address.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }

    pub fn wants_failure_report(&self) -> bool {
        self.notify.is_none_or(|n| n.failure)
    }

    /// Asked for a "delayed" report (only on explicit NOTIFY=DELAY) and has not had one.
    pub fn wants_delay_report(&self) -> bool {
        !self.delay_reported && self.notify.is_some_and(|n| n.delay) && matches!(self.status, DeliveryStatus::Pending { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub queue_id: QueueId,
    /// The MAIL FROM address; empty for the null sender `<>` (bounces).
    pub return_path: String,
    pub recipients: Vec<Recipient>,
    pub session: SessionFacts,
    /// Seconds since the epoch when the edge accepted the message.
    pub received_at: u64,
    pub ret: Option<DsnRet>,
    pub envid: Option<String>,
    /// `BODY=8BITMIME` was given.
    pub body_8bit: bool,
    pub smtputf8: bool,
    /// Delivery attempts made so far.
    pub attempts: u32,
    /// The scanner's verdict, when the message was scanned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<crate::Verdict>,
    /// The account that submitted it (AUTH on a submission listener): outbound mail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_by: Option<String>,
    /// Queue management asked to give up now ("bounce now", by whom): the relay fails
    /// the pending recipients with a DSN instead of trying them again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounce_now: Option<String>,
}

impl Envelope {
    /// A message from `return_path` to `recipients` received at `received_at`, with
    /// no session details, DSN parameters, attempts or verdict yet.
    pub fn new(queue_id: QueueId, return_path: String, recipients: Vec<Recipient>, received_at: u64) -> Self {
        Envelope {
            queue_id,
            return_path,
            recipients,
            session: SessionFacts::default(),
            received_at,
            ret: None,
            envid: None,
            body_8bit: false,
            smtputf8: false,
            attempts: 0,
            verdict: None,
            submitted_by: None,
            bounce_now: None,
        }
    }

    pub fn is_bounce(&self) -> bool {
        self.return_path.is_empty()
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Serialising plain data structs to a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_facts_read_an_address_and_tolerate_an_old_empty_one() {
        let facts: SessionFacts = serde_json::from_str(r#"{"peer_ip":"2001:db8::7","helo":"h","tls":null}"#).unwrap();
        assert_eq!(facts.client_ip(), Some("2001:db8::7".parse().unwrap()));
        assert_eq!(serde_json::to_string(&facts).unwrap(), r#"{"peer_ip":"2001:db8::7","helo":"h","tls":null}"#);
        let old: SessionFacts = serde_json::from_str(r#"{"peer_ip":"","helo":"","tls":null}"#).unwrap();
        assert_eq!((old.peer_ip.to_string().as_str(), old.client_ip()), ("0.0.0.0", None));
    }

    #[test]
    fn notify_parsing_follows_rfc3461() {
        let n = Notify::parse("success,FAILURE").unwrap();
        assert!(n.success && n.failure && !n.delay && !n.never);
        assert_eq!(n.to_param(), "SUCCESS,FAILURE");
        assert_eq!(Notify::parse("NEVER").unwrap().to_param(), "NEVER");
        assert!(Notify::parse("NEVER,FAILURE").is_none());
        assert!(Notify::parse("SOMETIMES").is_none());
    }

    #[test]
    fn envelope_round_trips_through_json() {
        let mut env = Envelope::new(QueueId::generate(), "a@b.example".into(), vec![Recipient::new("c@d.example".into())], 1);
        env.ret = Some(DsnRet::Hdrs);
        env.envid = Some("x".into());
        env.body_8bit = true;
        env.recipients[0].notify = Notify::parse("NEVER");
        assert_eq!(Envelope::from_json(&env.to_json()).unwrap(), env);
    }
}
