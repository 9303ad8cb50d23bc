//! Message tracking: what the edge answered to each transaction, as a `TrackEvent` on
//! `rempart.events.track` (the console indexes them). Fire and forget: tracking never
//! delays or fails a reply.

use rempart_bus::{Bus, TRACK_EVENTS};
use rempart_model::{Verdict, date};
use rempart_proto::v1::{RecipientReply, TrackEvent};
use rempart_smtp::Reply;

use super::{Session, Transaction, Transport};

/// What a transaction's answer means for tracking, from the reply and the action label
/// `queue_message` counts.
pub(super) fn outcome(reply: &Reply, action: &str) -> &'static str {
    match (reply.code / 100, action) {
        (5, _) => "refused",
        (4, "greylist") => "greylisted",
        (4, _) => "tempfail",
        (_, "discard") => "discarded",
        (_, "quarantine" | "blocked") => "quarantined",
        (_, "scan_later") => "scan_later",
        _ => "queued",
    }
}

/// The Message-ID and Subject of a message, read from its header only. mail-parser
/// may assert on odd input in debug builds: a panic here means "none".
pub(super) fn identity(body: &[u8]) -> (String, String) {
    // The header ends at the first empty line, looked for in the first 64 KiB only.
    let head = &body[..body.len().min(64 * 1024)];
    let header = head.windows(4).position(|w| w == b"\r\n\r\n").map_or(head, |p| &head[..p + 4]);
    std::panic::catch_unwind(|| {
        let parsed = mail_parser::MessageParser::default().parse_headers(header)?;
        Some((parsed.message_id().unwrap_or_default().to_string(), parsed.subject().unwrap_or_default().to_string()))
    })
    .ok()
    .flatten()
    .unwrap_or_default()
}

impl<B: Bus, S: Transport> Session<B, S> {
    /// The event for a transaction the edge answered: `reply` to its message (or, when
    /// `message` is `None`, a transaction abandoned after refused recipients).
    pub(super) fn track(&self, queue_id: &str, tx: &Transaction, message: Option<TrackedMessage<'_>>) {
        let mut event = TrackEvent {
            queue_id: queue_id.to_string(),
            at_ms: date::unix_now_ms() as i64,
            kind: "session".into(),
            client_ip: self.facts.peer_ip.to_string(),
            helo: self.facts.helo.clone(),
            tls: self.facts.tls.clone().unwrap_or_default(),
            sender: tx.return_path.clone(),
            recipients: tx.recipients.iter().map(|r| r.address.clone()).collect(),
            refused: tx.refused.iter().map(|(address, reply)| RecipientReply { address: address.clone(), reply: reply.clone() }).collect(),
            account: self.account.as_ref().map(|a| a.email.clone()).unwrap_or_default(),
            outcome: "refused".into(),
            ..Default::default()
        };
        if let Some(m) = message {
            event.message_id = m.message_id;
            event.subject = m.subject;
            event.size = m.size as u64;
            event.reply = m.reply.to_string();
            event.outcome = outcome(m.reply, m.action).into();
            if let Some(v) = m.verdict {
                event.score = v.score;
                event.action = v.action.as_str().into();
                event.symbols = v.symbols.iter().map(|s| format!("{}({:.2})", s.name, s.score)).collect();
            }
        } else if let Some((_, last)) = tx.refused.last() {
            event.reply = last.clone();
        }
        let bus = self.shared.bus.clone();
        tokio::spawn(async move { bus.event(TRACK_EVENTS, prost::Message::encode_to_vec(&event)).await });
    }

    /// A transaction ends without a message (RSET, a new EHLO, the session's end): its
    /// refused recipients are still worth finding ("did X try to write to bob?").
    pub(super) fn track_abandoned(&self) {
        if !self.tx.refused.is_empty() {
            self.track(rempart_model::QueueId::generate().as_str(), &self.tx, None);
        }
    }
}

/// What a message's answer was, for its event.
pub(super) struct TrackedMessage<'a> {
    pub message_id: String,
    pub subject: String,
    pub size: usize,
    pub reply: &'a Reply,
    pub action: &'a str,
    pub verdict: Option<&'a Verdict>,
}
