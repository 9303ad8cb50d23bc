//! Queue management: the mail waiting for delivery (`rempart.deliver`) and the mail held
//! aside (`rempart.held`: held by an operator, or parked after crashing a worker), listed
//! within the reader's scope and acted on one message at a time — hold, release,
//! delete, bounce now (the relay fails its pending recipients with a DSN), retry now.
//! A move is the bus's `take` (refused while a relay works on the message) then a
//! `publish` where it goes; the same on the embedded bus and on NATS.

use rempart_bus::{AnyBus, Bus, BusError, DELIVER_TOPIC, HELD_TOPIC, HeldMeta, MessageId, Waiting};
use rempart_model::{DeliveryStatus, Envelope};
use serde::Serialize;

use crate::quarantine::Scope;
use crate::tracking::domain_of;

/// Messages listed at most per topic.
pub const MAX_LISTED: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("no message {0} in the queue (delivered meanwhile, or not yours)")]
    NotFound(String),
    #[error("message {0} is not held")]
    NotHeld(String),
    #[error("message {0} is already held")]
    AlreadyHeld(String),
    #[error(transparent)]
    Bus(#[from] BusError),
}

/// What to do with a queued message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueAction {
    Hold,
    Release,
    Delete,
    Bounce,
    Retry,
}

impl QueueAction {
    pub fn parse(word: &str) -> Option<QueueAction> {
        Some(match word {
            "hold" => QueueAction::Hold,
            "release" => QueueAction::Release,
            "delete" => QueueAction::Delete,
            "bounce" => QueueAction::Bounce,
            "retry" => QueueAction::Retry,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            QueueAction::Hold => "hold",
            QueueAction::Release => "release",
            QueueAction::Delete => "delete",
            QueueAction::Bounce => "bounce",
            QueueAction::Retry => "retry",
        }
    }
}

/// One recipient of a queued message.
#[derive(Debug, Clone, Serialize)]
pub struct QueuedRecipient {
    pub address: String,
    /// pending, delivered, failed
    pub status: &'static str,
    pub reply: String,
}

/// A message in the queue, as listed.
#[derive(Debug, Clone, Serialize)]
pub struct QueuedMessage {
    #[serde(skip)]
    pub id: MessageId,
    pub queue_id: String,
    pub sender: String,
    pub recipients: Vec<QueuedRecipient>,
    pub attempts: u32,
    /// Unix seconds.
    pub received_at: u64,
    /// When the relay tries it next (ms since the epoch; 0 when unknown or held).
    pub next_attempt_ms: u64,
    pub held: bool,
    /// Why it is held (who held it, or the worker that crashed on it).
    pub held_reason: String,
    /// A relay is working on it now.
    pub in_delivery: bool,
    pub submitted_by: Option<String>,
    #[serde(skip)]
    envelope: Envelope,
}

impl QueuedMessage {
    fn of(waiting: Waiting, held: bool) -> Option<QueuedMessage> {
        let (meta, held_reason) = if held {
            let parked: HeldMeta = serde_json::from_slice(&waiting.meta).ok()?;
            if parked.topic != DELIVER_TOPIC {
                return None;
            }
            (parked.meta, parked.reason)
        } else {
            (waiting.meta, String::new())
        };
        let envelope = Envelope::from_json(&meta).ok()?;
        let recipients = envelope
            .recipients
            .iter()
            .map(|r| {
                let reply = match &r.status {
                    DeliveryStatus::Pending { last_reply } => last_reply.clone().unwrap_or_default(),
                    DeliveryStatus::Delivered { reply, .. } | DeliveryStatus::Failed { reply, .. } => reply.clone(),
                };
                let status = match r.status {
                    DeliveryStatus::Pending { .. } => "pending",
                    DeliveryStatus::Delivered { .. } => "delivered",
                    DeliveryStatus::Failed { .. } => "failed",
                };
                QueuedRecipient { address: r.address.clone(), status, reply }
            })
            .collect();
        Some(QueuedMessage {
            id: waiting.id,
            queue_id: envelope.queue_id.to_string(),
            sender: envelope.return_path.clone(),
            recipients,
            attempts: envelope.attempts,
            received_at: envelope.received_at,
            next_attempt_ms: if held { 0 } else { waiting.visible_at_ms },
            held,
            held_reason,
            in_delivery: waiting.leased,
            submitted_by: envelope.submitted_by.clone(),
            envelope,
        })
    }

    /// Inbound mail: a recipient in scope; outbound: the sending account in scope.
    pub fn visible_to(&self, scope: &Scope) -> bool {
        let mine = |address: &str| match scope {
            Scope::All => true,
            Scope::Domains(domains) => domains.iter().any(|d| d.eq_ignore_ascii_case(&domain_of(address))),
            Scope::Addresses(addresses) => addresses.iter().any(|a| a.eq_ignore_ascii_case(address)),
        };
        match &self.submitted_by {
            Some(account) => mine(account),
            None => self.recipients.iter().any(|r| mine(&r.address)),
        }
    }
}

/// What a listing keeps.
#[derive(Debug, Default, Clone)]
pub struct QueueFilter {
    pub held_only: bool,
    /// A sender or recipient address or domain (substring, case-insensitive).
    pub address: String,
}

/// The queued messages `scope` may see, oldest first.
pub async fn list(bus: &AnyBus, scope: &Scope, filter: &QueueFilter) -> Result<Vec<QueuedMessage>, QueueError> {
    let mut all = Vec::new();
    for (topic, held) in [(DELIVER_TOPIC, false), (HELD_TOPIC, true)] {
        if filter.held_only && !held {
            continue;
        }
        for waiting in bus.list(topic, MAX_LISTED).await? {
            if let Some(m) = QueuedMessage::of(waiting, held) {
                all.push(m);
            }
        }
    }
    let wanted = filter.address.trim().to_ascii_lowercase();
    all.retain(|m| {
        m.visible_to(scope)
            && (wanted.is_empty()
                || m.sender.to_ascii_lowercase().contains(&wanted)
                || m.recipients.iter().any(|r| r.address.to_ascii_lowercase().contains(&wanted)))
    });
    all.sort_by_key(|m| (m.received_at, m.id));
    Ok(all)
}

/// One message by queue id, if `scope` may see it.
pub async fn find(bus: &AnyBus, scope: &Scope, queue_id: &str) -> Result<QueuedMessage, QueueError> {
    list(bus, scope, &QueueFilter::default())
        .await?
        .into_iter()
        .find(|m| m.queue_id.eq_ignore_ascii_case(queue_id.trim()))
        .ok_or_else(|| QueueError::NotFound(queue_id.to_string()))
}

/// Does `action` to the message `queue_id` for `by`; gives the message as it was.
pub async fn act(bus: &AnyBus, scope: &Scope, queue_id: &str, action: QueueAction, by: &str) -> Result<QueuedMessage, QueueError> {
    let message = find(bus, scope, queue_id).await?;
    let topic = if message.held { HELD_TOPIC } else { DELIVER_TOPIC };
    match (action, message.held) {
        (QueueAction::Hold, true) => return Err(QueueError::AlreadyHeld(message.queue_id)),
        (QueueAction::Release, false) => return Err(QueueError::NotHeld(message.queue_id)),
        _ => {}
    }
    let Some((_, body)) = bus.take(topic, message.id).await? else {
        return Err(QueueError::NotFound(message.queue_id));
    };
    let mut envelope = message.envelope.clone();
    let put = match action {
        QueueAction::Delete => None,
        QueueAction::Hold => {
            let parked = HeldMeta { topic: DELIVER_TOPIC.into(), reason: format!("held by {by}"), meta: envelope.to_json() };
            Some((HELD_TOPIC, serde_json::to_vec(&parked).unwrap_or_default()))
        }
        QueueAction::Release | QueueAction::Retry => Some((DELIVER_TOPIC, envelope.to_json())),
        QueueAction::Bounce => {
            envelope.bounce_now = Some(by.to_string());
            Some((DELIVER_TOPIC, envelope.to_json()))
        }
    };
    if let Some((to, meta)) = put {
        // Taken but not put back: put it back where it was, or say where it is.
        if let Err(e) = bus.publish(to, meta, body.clone()).await {
            let original = if message.held {
                let parked =
                    HeldMeta { topic: DELIVER_TOPIC.into(), reason: message.held_reason.clone(), meta: message.envelope.to_json() };
                serde_json::to_vec(&parked).unwrap_or_default()
            } else {
                message.envelope.to_json()
            };
            if let Err(again) = bus.publish(topic, original, body).await {
                tracing::error!(queue_id = %message.queue_id, error = %again, "queue management could not put a message back");
            }
            return Err(e.into());
        }
    }
    tracing::info!(queue_id = %message.queue_id, action = action.as_str(), by, "queue management");
    let event = rempart_proto::v1::TrackEvent {
        queue_id: message.queue_id.clone(),
        at_ms: rempart_model::date::unix_now_ms() as i64,
        kind: format!("queue_{}", action.as_str()),
        recipients: message.recipients.iter().filter(|r| r.status == "pending").map(|r| r.address.clone()).collect(),
        outcome: by.to_string(),
        ..Default::default()
    };
    bus.event(rempart_bus::TRACK_EVENTS, prost::Message::encode_to_vec(&event)).await;
    Ok(message)
}
