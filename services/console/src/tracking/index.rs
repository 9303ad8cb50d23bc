//! The tracking index: one redb file (`<data_dir>/tracking.redb`). A record per queue
//! id (JSON), and one ordered key table `(field:value, first_ms, queue_id)` that every
//! search walks newest first for the field it was given — sender, sender domain,
//! recipient, recipient domain (a tenant's mail), Message-ID, client IP, or "" for all
//! — checking the other fields on the records it reaches.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use prost::Message as _;
use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};
use rempart_bus::{DELIVERY_EVENTS, Event, TRACK_EVENTS};
use rempart_proto::v1::{DeliveryEvent, TrackEvent};

use super::{Query, TrackedMessage, domain_of, normal_message_id};
use crate::quarantine::Scope;

const RECORDS: TableDefinition<&str, &[u8]> = TableDefinition::new("records");
const KEYS: TableDefinition<(&str, u64, &str), ()> = TableDefinition::new("keys");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// The last events-stream sequence folded in (where a restarted console resumes).
const SEQUENCE: &str = "sequence";
/// How many index entries one search walks at most per key before it stops and says so.
const MAX_EXAMINED: usize = 200_000;
pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum TrackingError {
    #[error("tracking index {path}: {message}")]
    Open { path: String, message: String },
    #[error("tracking index: {0}")]
    Storage(String),
}

fn storage<E: std::fmt::Display>(e: E) -> TrackingError {
    TrackingError::Storage(e.to_string())
}

#[derive(Clone)]
pub struct TrackingIndex {
    db: Arc<Database>,
}

/// What a search found.
#[derive(Debug, Default)]
pub struct Found {
    pub messages: Vec<TrackedMessage>,
    /// The search stopped after `MAX_EXAMINED` entries of a key: narrow it.
    pub truncated: bool,
}

impl TrackingIndex {
    pub fn open(path: &Path) -> Result<TrackingIndex, TrackingError> {
        let failed = |e: &dyn std::fmt::Display| TrackingError::Open { path: path.display().to_string(), message: e.to_string() };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| failed(&e))?;
        }
        let db = Database::create(path).map_err(|e| failed(&e))?;
        let tx = db.begin_write().map_err(|e| failed(&e))?;
        tx.open_table(RECORDS).map_err(|e| failed(&e))?;
        tx.open_table(KEYS).map_err(|e| failed(&e))?;
        tx.open_table(META).map_err(|e| failed(&e))?;
        tx.commit().map_err(|e| failed(&e))?;
        Ok(TrackingIndex { db: Arc::new(db) })
    }

    /// The last stream sequence folded in (0: none).
    pub fn sequence(&self) -> Result<u64, TrackingError> {
        let tx = self.db.begin_read().map_err(storage)?;
        let meta = tx.open_table(META).map_err(storage)?;
        Ok(meta.get(SEQUENCE).map_err(storage)?.map_or(0, |v| v.value()))
    }

    /// Folds a batch of events in, in one transaction; `sequence` (when not 0) is
    /// recorded with them, so a restart resumes after the last one kept. Undecodable
    /// events are skipped (logged): they are someone else's.
    pub fn apply(&self, events: &[Event], sequence: u64) -> Result<usize, TrackingError> {
        let tx = self.db.begin_write().map_err(storage)?;
        let mut changed: HashMap<String, (BTreeSet<String>, u64, TrackedMessage)> = HashMap::new();
        let mut applied = 0;
        {
            let records = tx.open_table(RECORDS).map_err(storage)?;
            for event in events {
                let Some(event) = Decoded::of(event) else {
                    tracing::debug!(subject = %event.subject, "tracking skipped an event it cannot read");
                    continue;
                };
                let queue_id = event.queue_id().to_string();
                if !changed.contains_key(&queue_id) {
                    let before = match records.get(queue_id.as_str()).map_err(storage)? {
                        Some(bytes) => serde_json::from_slice(bytes.value()).unwrap_or_default(),
                        None => TrackedMessage { queue_id: queue_id.clone(), ..Default::default() },
                    };
                    changed.insert(queue_id.clone(), (keys(&before), before.first_ms, before));
                }
                let Some((_, _, record)) = changed.get_mut(&queue_id) else { continue };
                match &event {
                    Decoded::Track(e) => record.apply_track(e),
                    Decoded::Delivery(e) => record.apply_delivery(e),
                }
                // A DSN the relay made is a message of its own: its record starts here.
                if let Decoded::Track(e) = &event
                    && e.kind == "dsn"
                    && !e.outcome.is_empty()
                    && !changed.contains_key(&e.outcome)
                    && records.get(e.outcome.as_str()).map_err(storage)?.is_none()
                {
                    let mut dsn = TrackedMessage { queue_id: e.outcome.clone(), outcome: "queued".into(), ..Default::default() };
                    dsn.at(e.at_ms.max(0) as u64);
                    for to in &e.recipients {
                        dsn.recipient(to);
                    }
                    dsn.step(dsn.first_ms, "queued", format!("DSN about {}", e.queue_id));
                    changed.insert(e.outcome.clone(), (BTreeSet::new(), 0, dsn));
                }
                applied += 1;
            }
        }
        {
            let mut records = tx.open_table(RECORDS).map_err(storage)?;
            let mut table = tx.open_table(KEYS).map_err(storage)?;
            for (queue_id, (old_keys, old_first, record)) in &changed {
                let new_keys = keys(record);
                for key in old_keys {
                    if !new_keys.contains(key) || *old_first != record.first_ms {
                        table.remove((key.as_str(), *old_first, queue_id.as_str())).map_err(storage)?;
                    }
                }
                for key in &new_keys {
                    table.insert((key.as_str(), record.first_ms, queue_id.as_str()), ()).map_err(storage)?;
                }
                let bytes = serde_json::to_vec(record).map_err(storage)?;
                records.insert(queue_id.as_str(), bytes.as_slice()).map_err(storage)?;
            }
            if sequence > 0 {
                tx.open_table(META).map_err(storage)?.insert(SEQUENCE, sequence).map_err(storage)?;
            }
        }
        tx.commit().map_err(storage)?;
        Ok(applied)
    }

    /// One message, if `scope` may see it (seen as the scope may).
    pub fn get(&self, queue_id: &str, scope: &Scope) -> Result<Option<TrackedMessage>, TrackingError> {
        let tx = self.db.begin_read().map_err(storage)?;
        let records = tx.open_table(RECORDS).map_err(storage)?;
        let Some(bytes) = records.get(queue_id.trim()).map_err(storage)? else { return Ok(None) };
        let record: TrackedMessage = serde_json::from_slice(bytes.value()).map_err(storage)?;
        Ok(record.visible_to(scope).then(|| record.seen_by(scope)))
    }

    /// The newest messages matching `query` that `scope` may see.
    pub fn search(&self, query: &Query, scope: &Scope) -> Result<Found, TrackingError> {
        let limit = if query.limit == 0 { DEFAULT_LIMIT } else { query.limit.min(MAX_LIMIT) };
        if !query.queue_id.trim().is_empty() {
            let found = self.get(query.queue_id.trim(), scope)?.filter(|m| query.matches(m));
            return Ok(Found { messages: found.into_iter().collect(), truncated: false });
        }
        let tx = self.db.begin_read().map_err(storage)?;
        let records = tx.open_table(RECORDS).map_err(storage)?;
        let table = tx.open_table(KEYS).map_err(storage)?;
        let (since, until) = (query.since_ms.unwrap_or(0), query.until_ms.unwrap_or(u64::MAX - 1));
        let mut found: Vec<TrackedMessage> = Vec::new();
        let mut seen = BTreeSet::new();
        let mut truncated = false;
        for key in driving_keys(query, scope) {
            let mut matched = 0;
            let range = table.range((key.as_str(), since, "")..(key.as_str(), until.saturating_add(1), "")).map_err(storage)?;
            for (examined, entry) in range.rev().enumerate() {
                if examined >= MAX_EXAMINED {
                    truncated = true;
                    break;
                }
                let entry = entry.map_err(storage)?;
                let (_, _, queue_id) = entry.0.value();
                if !seen.insert(queue_id.to_string()) {
                    continue;
                }
                let Some(bytes) = records.get(queue_id).map_err(storage)? else { continue };
                let Ok(record) = serde_json::from_slice::<TrackedMessage>(bytes.value()) else { continue };
                if record.visible_to(scope) && query.matches(&record) {
                    found.push(record.seen_by(scope));
                    matched += 1;
                    if matched >= limit {
                        break;
                    }
                }
            }
        }
        found.sort_by(|a, b| b.first_ms.cmp(&a.first_ms).then_with(|| b.queue_id.cmp(&a.queue_id)));
        found.truncate(limit);
        Ok(Found { messages: found, truncated })
    }

    /// Forgets the messages first seen before `cutoff_ms`; gives how many.
    pub fn sweep(&self, cutoff_ms: u64) -> Result<usize, TrackingError> {
        let mut removed = 0;
        loop {
            let tx = self.db.begin_write().map_err(storage)?;
            let batch = {
                let mut records = tx.open_table(RECORDS).map_err(storage)?;
                let mut table = tx.open_table(KEYS).map_err(storage)?;
                let old: Vec<String> = table
                    .range(("", 0, "")..("", cutoff_ms, ""))
                    .map_err(storage)?
                    .take(5_000)
                    .filter_map(|entry| entry.ok().map(|(k, _)| k.value().2.to_string()))
                    .collect();
                for queue_id in &old {
                    let record = match records.remove(queue_id.as_str()).map_err(storage)? {
                        Some(bytes) => serde_json::from_slice::<TrackedMessage>(bytes.value()).ok(),
                        None => None,
                    };
                    let Some(record) = record else {
                        table.remove(("", 0, queue_id.as_str())).map_err(storage)?;
                        continue;
                    };
                    for key in keys(&record) {
                        table.remove((key.as_str(), record.first_ms, queue_id.as_str())).map_err(storage)?;
                    }
                }
                old.len()
            };
            tx.commit().map_err(storage)?;
            removed += batch;
            if batch < 5_000 {
                return Ok(removed);
            }
        }
    }

    /// How many messages the index holds.
    pub fn len(&self) -> Result<u64, TrackingError> {
        let tx = self.db.begin_read().map_err(storage)?;
        tx.open_table(RECORDS).map_err(storage)?.len().map_err(storage)
    }

    pub fn is_empty(&self) -> Result<bool, TrackingError> {
        Ok(self.len()? == 0)
    }
}

/// An event tracking reads, decoded once.
enum Decoded {
    Track(Box<TrackEvent>),
    Delivery(DeliveryEvent),
}

impl Decoded {
    /// The event, if it is tracking's and names a queue id (at most 64 characters).
    fn of(event: &Event) -> Option<Decoded> {
        let decoded = match event.subject.as_str() {
            TRACK_EVENTS => Decoded::Track(Box::new(TrackEvent::decode(event.payload.as_slice()).ok()?)),
            DELIVERY_EVENTS => Decoded::Delivery(DeliveryEvent::decode(event.payload.as_slice()).ok()?),
            _ => return None,
        };
        let id = decoded.queue_id();
        (!id.is_empty() && id.len() <= 64).then_some(decoded)
    }

    fn queue_id(&self) -> &str {
        match self {
            Decoded::Track(e) => &e.queue_id,
            Decoded::Delivery(e) => &e.queue_id,
        }
    }
}

/// The index keys of a message: "" (every message), and one per searchable value.
fn keys(m: &TrackedMessage) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    if m.first_ms == 0 {
        return keys;
    }
    keys.insert(String::new());
    if !m.sender.is_empty() {
        keys.insert(format!("s:{}", m.sender.to_ascii_lowercase()));
        keys.insert(format!("sd:{}", domain_of(&m.sender)));
    }
    for r in &m.recipients {
        keys.insert(format!("r:{}", r.address.to_ascii_lowercase()));
        keys.insert(format!("rd:{}", domain_of(&r.address)));
    }
    if !m.message_id.is_empty() {
        keys.insert(format!("m:{}", normal_message_id(&m.message_id)));
    }
    if !m.client_ip.is_empty() {
        keys.insert(format!("ip:{}", m.client_ip));
    }
    keys
}

/// The keys a search walks: the most selective field given, else the reader's scope.
fn driving_keys(q: &Query, scope: &Scope) -> Vec<String> {
    let address = |prefix: &str, domain_prefix: &str, value: &str| {
        let value = value.trim().to_ascii_lowercase();
        match value.strip_prefix('@') {
            Some(domain) => format!("{domain_prefix}:{domain}"),
            None if value.contains('@') => format!("{prefix}:{value}"),
            None => format!("{domain_prefix}:{value}"),
        }
    };
    if !q.message_id.trim().is_empty() {
        return vec![format!("m:{}", normal_message_id(&q.message_id))];
    }
    if !q.recipient.trim().is_empty() {
        return vec![address("r", "rd", &q.recipient)];
    }
    if !q.sender.trim().is_empty() {
        return vec![address("s", "sd", &q.sender)];
    }
    if !q.client_ip.trim().is_empty() {
        return vec![format!("ip:{}", q.client_ip.trim())];
    }
    match scope {
        Scope::All => vec![String::new()],
        // Inbound mail by its recipients' domain, outbound by the sender's (the records
        // reached are checked against the scope).
        Scope::Domains(domains) => {
            domains.iter().flat_map(|d| [format!("rd:{}", d.to_ascii_lowercase()), format!("sd:{}", d.to_ascii_lowercase())]).collect()
        }
        Scope::Addresses(addresses) => {
            addresses.iter().flat_map(|a| [format!("r:{}", a.to_ascii_lowercase()), format!("s:{}", a.to_ascii_lowercase())]).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: &str, to: &str, at_ms: i64) -> Event {
        let e = TrackEvent {
            queue_id: id.into(),
            at_ms,
            kind: "session".into(),
            sender: "s@sender.test".into(),
            recipients: vec![to.into()],
            outcome: "queued".into(),
            message_id: format!("<{id}@sender.test>"),
            ..Default::default()
        };
        Event { subject: TRACK_EVENTS.into(), payload: e.encode_to_vec() }
    }

    #[test]
    fn searched_by_each_key_and_forgotten_past_the_retention() {
        let dir = tempfile::tempdir().unwrap();
        let index = TrackingIndex::open(&dir.path().join("t.redb")).unwrap();
        let events = [session("OLD", "a@one.test", 1_000), session("NEW", "b@two.test", 9_000)];
        assert_eq!(index.apply(&events, 7).unwrap(), 2);
        assert_eq!(index.sequence().unwrap(), 7);
        let ids = |q: Query, scope: Scope| index.search(&q, &scope).unwrap().messages.into_iter().map(|m| m.queue_id).collect::<Vec<_>>();
        assert_eq!(ids(Query::default(), Scope::All), ["NEW", "OLD"], "newest first");
        assert_eq!(ids(Query { recipient: "one.test".into(), ..Default::default() }, Scope::All), ["OLD"]);
        assert_eq!(ids(Query { message_id: "new@sender.test".into(), ..Default::default() }, Scope::All), ["NEW"]);
        assert_eq!(ids(Query::default(), Scope::Domains(vec!["two.test".into()])), ["NEW"]);
        assert_eq!(ids(Query { since_ms: Some(5_000), ..Default::default() }, Scope::All), ["NEW"]);
        assert_eq!(index.sweep(5_000).unwrap(), 1);
        assert_eq!(ids(Query { recipient: "a@one.test".into(), ..Default::default() }, Scope::All), Vec::<String>::new());
        assert_eq!(index.len().unwrap(), 1);
        let garbage = Event { subject: TRACK_EVENTS.into(), payload: vec![0xff, 0x01] };
        assert_eq!(index.apply(&[garbage], 0).unwrap(), 0, "an unreadable event is skipped");
    }
}
