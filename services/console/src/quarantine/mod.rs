//! The quarantine store: messages held by the quarantine action (and the queued scan's
//! refusals), kept until released, deleted or expired. Metadata in one redb file with
//! two indexes (by time, and by recipient domain and time, so that a domain admin's
//! first page does not read other domains' mail); bodies as files beside it, written
//! and synced before the metadata that names them is committed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};
use rempart_model::{Action, Envelope, SymbolHit};
use serde::{Deserialize, Serialize};

const ENTRIES: TableDefinition<&str, &[u8]> = TableDefinition::new("entries");
const BY_TIME: TableDefinition<(u64, &str), ()> = TableDefinition::new("by_time");
const BY_DOMAIN: TableDefinition<(&str, u64, &str), ()> = TableDefinition::new("by_domain");
/// The last change of the replicated quarantine's log applied here (`replica.rs`).
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const LOG_SEQUENCE: &str = "log_sequence";

#[derive(Debug, thiserror::Error)]
pub enum QuarantineError {
    #[error("quarantine database {path}: {source}")]
    Open { path: PathBuf, source: Box<redb::Error> },
    #[error("quarantine database: {0}")]
    Database(#[from] Box<redb::Error>),
    #[error("quarantine body {path}: {source}")]
    Body { path: PathBuf, source: std::io::Error },
    #[error("quarantine entry {id}: {source}")]
    Corrupt { id: String, source: serde_json::Error },
    #[error("no quarantined message {0}")]
    NotFound(String),
    #[error("quarantine task: {0}")]
    Task(String),
    #[error("message {id} was already {status}")]
    NotHeld { id: String, status: &'static str },
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for QuarantineError {
            fn from(e: $t) -> Self {
                QuarantineError::Database(Box::new(e.into()))
            }
        }
    )*};
}
from_redb!(redb::TransactionError, redb::TableError, redb::StorageError, redb::CommitError);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Held,
    Released,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Held => "held",
            Status::Released => "released",
        }
    }
}

/// One quarantined message's metadata.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub queue_id: String,
    /// Seconds since the epoch when it was quarantined.
    pub at: u64,
    pub sender: String,
    pub recipients: Vec<String>,
    pub subject: String,
    pub score: f64,
    pub action: Action,
    pub symbols: Vec<SymbolHit>,
    pub size: u64,
    pub status: Status,
    /// Who released it, and when (the last release, when it went out in parts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released: Option<(String, u64)>,
    /// The recipients it was released to: a user releases only their own copy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub released_to: Vec<String>,
    /// The envelope as the edge queued it: what a release hands to the relay.
    pub envelope: Envelope,
}

impl Entry {
    pub fn from_envelope(envelope: Envelope, body: &[u8], at: u64) -> Entry {
        let (score, action, symbols) =
            envelope.verdict.as_ref().map_or((0.0, Action::Quarantine, Vec::new()), |v| (v.score, v.action, v.symbols.clone()));
        Entry {
            queue_id: envelope.queue_id.as_str().to_string(),
            at,
            sender: envelope.return_path.clone(),
            recipients: envelope.recipients.iter().map(|r| r.address.to_ascii_lowercase()).collect(),
            subject: subject_of(body),
            score,
            action,
            symbols,
            size: body.len() as u64,
            status: Status::Held,
            released: None,
            released_to: Vec::new(),
            envelope,
        }
    }

    /// The domains whose readers may find it: the recipients' for inbound mail, the
    /// submitting account's for outbound mail (held, never the outside recipients').
    pub fn domains(&self) -> BTreeSet<String> {
        match &self.envelope.submitted_by {
            Some(account) => BTreeSet::from([domain_of(account).to_string()]),
            None => self.recipients.iter().map(|r| domain_of(r).to_string()).collect(),
        }
    }
}

pub fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map_or("", |(_, d)| d)
}

/// The decoded Subject, on one line.
fn subject_of(body: &[u8]) -> String {
    let parsed = mail_parser::MessageParser::default().parse_headers(body);
    parsed.and_then(|m| m.subject().map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))).unwrap_or_default()
}

/// What the quarantine holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub messages: u64,
    pub bytes: u64,
}

/// Which messages a reader may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    /// Mail to any address of these domains (lower case).
    Domains(Vec<String>),
    /// Mail to these addresses (lower case).
    Addresses(Vec<String>),
}

impl Scope {
    /// What `account` may read and act on.
    pub fn of(account: &crate::accounts::Account) -> Scope {
        use crate::accounts::Role;
        match account.role {
            Role::Operator | Role::Helpdesk | Role::Auditor => Scope::All,
            Role::TenantAdmin => Scope::Domains(account.domains.clone()),
            Role::User => Scope::Addresses(std::iter::once(account.email.clone()).chain(account.aliases.iter().cloned()).collect()),
        }
    }

    /// Inbound mail: the reader may see a recipient's copy. Outbound mail (held when
    /// blocked): the reader is, or administers, the account that sent it; releasing it
    /// to its outside recipients stays the operator's.
    pub fn allows(&self, entry: &Entry) -> bool {
        match &entry.envelope.submitted_by {
            Some(account) => match self {
                Scope::All => true,
                Scope::Domains(domains) => domains.iter().any(|d| d == domain_of(account)),
                Scope::Addresses(addresses) => addresses.iter().any(|a| a == account),
            },
            None => entry.recipients.iter().any(|r| self.allows_recipient(r)),
        }
    }

    /// Whether the reader may edit the allow and block lists of `owner` (an address or
    /// a domain, lower case): a user their own addresses, a domain admin their domains
    /// and the addresses in them, an operator everyone's.
    pub fn may_own(&self, owner: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Domains(domains) => domains.iter().any(|d| d == owner || (owner.contains('@') && d == domain_of(owner))),
            Scope::Addresses(addresses) => addresses.iter().any(|a| a == owner),
        }
    }

    /// The list owners a message's allow/block action applies to: the reader's own
    /// addresses among its recipients (a user), or its recipients' domains in scope.
    pub fn owners_for(&self, entry: &Entry) -> Vec<String> {
        let mut owners: Vec<String> = entry
            .recipients
            .iter()
            .filter(|r| self.allows_recipient(r))
            .map(|r| match self {
                Scope::Addresses(_) => r.clone(),
                _ => domain_of(r).to_string(),
            })
            .collect();
        owners.sort();
        owners.dedup();
        owners
    }

    /// Whether the reader may see (and release) the copy for `recipient` (lower case).
    pub fn allows_recipient(&self, recipient: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Domains(domains) => domains.iter().any(|d| d == domain_of(recipient)),
            Scope::Addresses(addresses) => addresses.iter().any(|a| a == recipient),
        }
    }

    /// The domain indexes to read, or `None` for the whole time index.
    fn domains(&self) -> Option<BTreeSet<String>> {
        match self {
            Scope::All => None,
            Scope::Domains(domains) => Some(domains.iter().cloned().collect()),
            Scope::Addresses(addresses) => Some(addresses.iter().map(|a| domain_of(a).to_string()).collect()),
        }
    }
}

/// Search terms; all given ones must match (substrings, any case).
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub sender: String,
    pub recipient: String,
    pub subject: String,
    /// Seconds since the epoch, inclusive.
    pub since: Option<u64>,
    pub until: Option<u64>,
    pub min_score: Option<f64>,
}

impl Query {
    fn matches(&self, entry: &Entry) -> bool {
        let has = |hay: &str, needle: &str| needle.is_empty() || hay.to_lowercase().contains(&needle.to_lowercase());
        has(&entry.sender, &self.sender)
            && (self.recipient.is_empty() || entry.recipients.iter().any(|r| has(r, &self.recipient)))
            && has(&entry.subject, &self.subject)
            && self.since.is_none_or(|t| entry.at >= t)
            && self.until.is_none_or(|t| entry.at <= t)
            && self.min_score.is_none_or(|s| entry.score >= s)
    }
}

#[derive(Debug, Clone)]
pub struct Page {
    pub entries: Vec<Entry>,
    pub has_more: bool,
}

#[derive(Clone)]
pub struct QuarantineStore {
    db: Arc<Database>,
    bodies: PathBuf,
}

impl QuarantineStore {
    /// Opens (or creates) the store in `dir` (`quarantine.redb` and `bodies/`).
    pub fn open(dir: &Path) -> Result<QuarantineStore, QuarantineError> {
        let bodies = dir.join("bodies");
        std::fs::create_dir_all(&bodies).map_err(|source| QuarantineError::Body { path: bodies.clone(), source })?;
        let path = dir.join("quarantine.redb");
        let db = Database::create(&path).map_err(|e| QuarantineError::Open { path: path.clone(), source: Box::new(e.into()) })?;
        let tx = db.begin_write()?;
        tx.open_table(ENTRIES)?;
        tx.open_table(BY_TIME)?;
        tx.open_table(BY_DOMAIN)?;
        tx.open_table(META)?;
        tx.commit()?;
        Ok(QuarantineStore { db: Arc::new(db), bodies })
    }

    fn body_path(&self, id: &str) -> PathBuf {
        // Queue ids are base-32; anything else is escaped so a name cannot leave the folder.
        let safe: String = id.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
        self.bodies.join(format!("{safe}.eml"))
    }

    /// Holds a message. Idempotent: a redelivered message replaces its own entry.
    pub fn hold(&self, entry: &Entry, body: &[u8]) -> Result<(), QuarantineError> {
        let path = self.body_path(&entry.queue_id);
        write_synced(&path, body).map_err(|source| QuarantineError::Body { path, source })?;
        self.index(std::slice::from_ref(entry))
    }

    /// Commits entries whose bodies are already written, in one transaction (`hold`'s
    /// second half; imports and the list benchmark use it for many at once).
    pub fn index(&self, batch: &[Entry]) -> Result<(), QuarantineError> {
        let tx = self.db.begin_write()?;
        {
            let mut entries = tx.open_table(ENTRIES)?;
            let mut by_time = tx.open_table(BY_TIME)?;
            let mut by_domain = tx.open_table(BY_DOMAIN)?;
            for entry in batch {
                let value = serde_json::to_vec(entry).map_err(|source| QuarantineError::Corrupt { id: entry.queue_id.clone(), source })?;
                let id = entry.queue_id.as_str();
                entries.insert(id, value.as_slice())?;
                by_time.insert((entry.at, id), ())?;
                for domain in entry.domains() {
                    by_domain.insert((domain.as_str(), entry.at, id), ())?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn get(&self, id: &str) -> Result<Option<Entry>, QuarantineError> {
        let tx = self.db.begin_read().map_err(|e| QuarantineError::Database(Box::new(e.into())))?;
        let entries = tx.open_table(ENTRIES)?;
        let Some(value) = entries.get(id)? else { return Ok(None) };
        serde_json::from_slice(value.value()).map(Some).map_err(|source| QuarantineError::Corrupt { id: id.to_string(), source })
    }

    pub fn body(&self, id: &str) -> Result<Vec<u8>, QuarantineError> {
        let path = self.body_path(id);
        std::fs::read(&path).map_err(|source| QuarantineError::Body { path, source })
    }

    /// Newest first, `size` per page, the `page`th page (from 0).
    pub fn list(&self, scope: &Scope, query: &Query, page: usize, size: usize) -> Result<Page, QuarantineError> {
        let wanted = (page + 1) * size + 1;
        let tx = self.db.begin_read().map_err(|e| QuarantineError::Database(Box::new(e.into())))?;
        let entries = tx.open_table(ENTRIES)?;
        let mut found: Vec<Entry> = Vec::new();
        let take = |id: &str, found: &mut Vec<Entry>| -> Result<bool, QuarantineError> {
            if let Some(value) = entries.get(id)? {
                let entry: Entry =
                    serde_json::from_slice(value.value()).map_err(|source| QuarantineError::Corrupt { id: id.to_string(), source })?;
                if scope.allows(&entry) && query.matches(&entry) {
                    found.push(entry);
                }
            }
            Ok(found.len() >= wanted)
        };
        match scope.domains() {
            None => {
                let by_time = tx.open_table(BY_TIME)?;
                for row in by_time.iter()?.rev() {
                    let row = row?;
                    if take(row.0.value().1, &mut found)? {
                        break;
                    }
                }
            }
            Some(domains) => {
                let by_domain = tx.open_table(BY_DOMAIN)?;
                for domain in &domains {
                    let mut per_domain = Vec::new();
                    for row in by_domain.range((domain.as_str(), 0, "")..=(domain.as_str(), u64::MAX, "\u{10FFFF}"))?.rev() {
                        let row = row?;
                        if take(row.0.value().2, &mut per_domain)? {
                            break;
                        }
                    }
                    found.extend(per_domain);
                }
                // A message to several of the reader's domains appears once.
                found.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| b.queue_id.cmp(&a.queue_id)));
                found.dedup_by(|a, b| a.queue_id == b.queue_id);
            }
        }
        let has_more = found.len() > (page + 1) * size;
        let entries = found.into_iter().skip(page * size).take(size).collect();
        Ok(Page { entries, has_more })
    }

    /// What the quarantine holds for a domain (or everything, for `None`): messages and
    /// bytes still held (not released).
    pub fn usage(&self, domain: Option<&str>) -> Result<Usage, QuarantineError> {
        let tx = self.db.begin_read().map_err(|e| QuarantineError::Database(Box::new(e.into())))?;
        let entries = tx.open_table(ENTRIES)?;
        let mut usage = Usage::default();
        let mut count = |id: &str| -> Result<(), QuarantineError> {
            if let Some(value) = entries.get(id)? {
                let entry: Entry =
                    serde_json::from_slice(value.value()).map_err(|source| QuarantineError::Corrupt { id: id.to_string(), source })?;
                if entry.status == Status::Held {
                    usage.messages += 1;
                    usage.bytes += entry.size;
                }
            }
            Ok(())
        };
        match domain {
            None => {
                for row in tx.open_table(BY_TIME)?.iter()? {
                    count(row?.0.value().1)?;
                }
            }
            Some(domain) => {
                for row in tx.open_table(BY_DOMAIN)?.range((domain, 0, "")..=(domain, u64::MAX, "\u{10FFFF}"))? {
                    count(row?.0.value().2)?;
                }
            }
        }
        Ok(usage)
    }

    /// Marks a held message released, once: the second call fails with `NotHeld`. The
    /// caller hands the message to the relay and calls `unrelease` if that fails.
    pub fn mark_released(&self, id: &str, scope: &Scope, by: &str, at: u64) -> Result<(Entry, Vec<String>), QuarantineError> {
        let mut newly = Vec::new();
        let entry = self.update(id, |entry| {
            newly = entry.recipients.iter().filter(|r| scope.allows_recipient(r) && !entry.released_to.contains(r)).cloned().collect();
            if newly.is_empty() {
                let status = if entry.released_to.is_empty() { entry.status.as_str() } else { Status::Released.as_str() };
                return Err(QuarantineError::NotHeld { id: id.to_string(), status });
            }
            entry.released_to.extend(newly.iter().cloned());
            if entry.recipients.iter().all(|r| entry.released_to.contains(r)) {
                entry.status = Status::Released;
            }
            entry.released = Some((by.to_string(), at));
            Ok(())
        })?;
        Ok((entry, newly))
    }

    /// A release recorded by a replica (`replica.rs`): `recipients` marked released,
    /// whoever asked first; applying it twice changes nothing.
    pub fn apply_released(&self, id: &str, recipients: &[String], by: &str, at: u64) -> Result<Entry, QuarantineError> {
        self.update(id, |entry| {
            for r in recipients {
                if !entry.released_to.contains(r) {
                    entry.released_to.push(r.clone());
                }
            }
            if entry.recipients.iter().all(|r| entry.released_to.contains(r)) {
                entry.status = Status::Released;
            }
            entry.released = Some((by.to_string(), at));
            Ok(())
        })
    }

    /// The last change of the replicated log applied to this index (0: none).
    pub fn log_sequence(&self) -> Result<u64, QuarantineError> {
        let tx = self.db.begin_read().map_err(|e| QuarantineError::Database(Box::new(e.into())))?;
        Ok(tx.open_table(META)?.get(LOG_SEQUENCE)?.map_or(0, |v| v.value()))
    }

    pub fn set_log_sequence(&self, sequence: u64) -> Result<(), QuarantineError> {
        let tx = self.db.begin_write()?;
        tx.open_table(META)?.insert(LOG_SEQUENCE, sequence)?;
        tx.commit()?;
        Ok(())
    }

    /// Undoes `mark_released` for `recipients` when the message could not be handed over.
    pub fn unrelease(&self, id: &str, recipients: &[String]) -> Result<Entry, QuarantineError> {
        self.update(id, |entry| {
            entry.released_to.retain(|r| !recipients.contains(r));
            entry.status = Status::Held;
            if entry.released_to.is_empty() {
                entry.released = None;
            }
            Ok(())
        })
    }

    fn update(&self, id: &str, change: impl FnOnce(&mut Entry) -> Result<(), QuarantineError>) -> Result<Entry, QuarantineError> {
        let tx = self.db.begin_write()?;
        let entry = {
            let mut entries = tx.open_table(ENTRIES)?;
            let mut entry = read_entry(&entries, id)?;
            change(&mut entry)?;
            let value = serde_json::to_vec(&entry).map_err(|source| QuarantineError::Corrupt { id: id.to_string(), source })?;
            entries.insert(id, value.as_slice())?;
            entry
        };
        tx.commit()?;
        Ok(entry)
    }

    /// Removes the reader's copies of a message: the recipients `scope` allows. The
    /// entry goes (with its body) once no recipient is left, or at once for the
    /// operator and for held outbound mail (one sender's one message). Gives whether
    /// the whole entry went.
    pub fn delete_for(&self, id: &str, scope: &Scope) -> Result<bool, QuarantineError> {
        let tx = self.db.begin_write()?;
        let gone = {
            let mut entries = tx.open_table(ENTRIES)?;
            let mut entry = read_entry(&entries, id)?;
            if !scope.allows(&entry) {
                return Err(QuarantineError::NotFound(id.to_string()));
            }
            let domains_before = entry.domains();
            let whole = matches!(scope, Scope::All) || entry.envelope.submitted_by.is_some();
            if !whole {
                entry.recipients.retain(|r| !scope.allows_recipient(r));
                entry.released_to.retain(|r| entry.recipients.contains(r));
                entry.envelope.recipients.retain(|r| entry.recipients.contains(&r.address.to_ascii_lowercase()));
            }
            let gone = whole || entry.recipients.is_empty();
            let domains_after = if gone { BTreeSet::new() } else { entry.domains() };
            if gone {
                entries.remove(id)?;
                tx.open_table(BY_TIME)?.remove((entry.at, id))?;
            } else {
                let value = serde_json::to_vec(&entry).map_err(|source| QuarantineError::Corrupt { id: id.to_string(), source })?;
                entries.insert(id, value.as_slice())?;
            }
            let mut by_domain = tx.open_table(BY_DOMAIN)?;
            for domain in domains_before.difference(&domains_after) {
                by_domain.remove((domain.as_str(), entry.at, id))?;
            }
            gone
        };
        tx.commit()?;
        if gone {
            self.remove_body(id)?;
        }
        Ok(gone)
    }

    fn remove_body(&self, id: &str) -> Result<(), QuarantineError> {
        let path = self.body_path(id);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(QuarantineError::Body { path, source: e }),
            _ => Ok(()),
        }
    }

    /// Removes a message and its body.
    pub fn delete(&self, id: &str) -> Result<(), QuarantineError> {
        let tx = self.db.begin_write()?;
        {
            let mut entries = tx.open_table(ENTRIES)?;
            let entry = read_entry(&entries, id)?;
            entries.remove(id)?;
            tx.open_table(BY_TIME)?.remove((entry.at, id))?;
            let mut by_domain = tx.open_table(BY_DOMAIN)?;
            for domain in entry.domains() {
                by_domain.remove((domain.as_str(), entry.at, id))?;
            }
        }
        tx.commit()?;
        self.remove_body(id)
    }

    /// Deletes what was quarantined before `cutoff` (seconds since the epoch); returns
    /// each message deleted with the recipients it was still held for.
    pub fn sweep(&self, cutoff: u64) -> Result<Vec<(String, Vec<String>)>, QuarantineError> {
        let expired: Vec<String> = {
            let tx = self.db.begin_read().map_err(|e| QuarantineError::Database(Box::new(e.into())))?;
            let by_time = tx.open_table(BY_TIME)?;
            let mut ids = Vec::new();
            for row in by_time.range((0, "")..(cutoff, ""))? {
                ids.push(row?.0.value().1.to_string());
            }
            ids
        };
        let mut swept = Vec::with_capacity(expired.len());
        for id in expired {
            let held =
                self.get(&id)?.map(|e| e.recipients.into_iter().filter(|r| !e.released_to.contains(r)).collect()).unwrap_or_default();
            match self.delete(&id) {
                Ok(()) => swept.push((id, held)),
                Err(QuarantineError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(swept)
    }

    /// Messages held (and released, until they expire).
    pub fn len(&self) -> Result<u64, QuarantineError> {
        let tx = self.db.begin_read().map_err(|e| QuarantineError::Database(Box::new(e.into())))?;
        Ok(tx.open_table(ENTRIES)?.len()?)
    }

    pub fn is_empty(&self) -> Result<bool, QuarantineError> {
        Ok(self.len()? == 0)
    }
}

/// An entry of the table, or `NotFound`.
fn read_entry(entries: &impl ReadableTable<&'static str, &'static [u8]>, id: &str) -> Result<Entry, QuarantineError> {
    match entries.get(id)? {
        Some(value) => serde_json::from_slice(value.value()).map_err(|source| QuarantineError::Corrupt { id: id.to_string(), source }),
        None => Err(QuarantineError::NotFound(id.to_string())),
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests;
