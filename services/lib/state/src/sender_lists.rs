//! Allow and block lists kept in the shared store and edited at run time (from the
//! console): a user's own (the owner is their address) or a whole domain's (the owner is
//! the domain). Each entry is a sender address or a sender domain (which covers its
//! subdomains), at `list.<owner>.<allow|block>.<entry>`; the value says who added it and
//! when. The lists written in the configuration stay as they are and are read first.

use serde::{Deserialize, Serialize};

use crate::{Store, StoreError, StoreResult, key, unescape};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListKind {
    Allow,
    Block,
}

impl ListKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ListKind::Allow => "allow",
            ListKind::Block => "block",
        }
    }

    pub fn parse(s: &str) -> Option<ListKind> {
        match s {
            "allow" => Some(ListKind::Allow),
            "block" => Some(ListKind::Block),
            _ => None,
        }
    }
}

/// Who added an entry, and when (seconds since the epoch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub added_by: String,
    pub at: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListEntry {
    pub owner: String,
    pub kind: ListKind,
    pub sender: String,
    pub added_by: String,
    pub at: u64,
}

/// Why a text is not a list entry or owner.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0:?} is not an e-mail address or a domain")]
pub struct NotAnAddressOrDomain(pub String);

/// An address (lower-cased) or a domain (`@`, `*.` and a trailing dot removed); a domain
/// needs a dot, so a top-level domain alone is refused.
pub fn normalize(s: &str) -> Result<String, NotAnAddressOrDomain> {
    let lower = s.trim().to_ascii_lowercase();
    let bad = || NotAnAddressOrDomain(s.to_string());
    if lower.is_empty() || lower.len() > 254 || lower.chars().any(|c| c.is_whitespace() || c.is_control() || "<>\",;".contains(c)) {
        return Err(bad());
    }
    if let Some((local, domain)) = lower.split_once('@').filter(|(local, _)| !local.is_empty()) {
        return match domain.contains('.') && !domain.contains('@') && !local.contains('@') {
            true => Ok(lower),
            false => Err(bad()),
        };
    }
    let domain = lower.trim_start_matches('@').trim_start_matches("*.").trim_end_matches('.');
    if !domain.contains('.') || domain.contains('@') || domain.starts_with('.') || domain.contains("..") {
        return Err(bad());
    }
    Ok(domain.to_string())
}

fn entry_key(owner: &str, kind: ListKind, sender: &str) -> String {
    key(&["list", owner, kind.as_str(), sender])
}

/// Adds (or re-adds) an entry. Both `owner` and `sender` must be normalized.
pub async fn add(store: &dyn Store, owner: &str, kind: ListKind, sender: &str, provenance: &Provenance) -> StoreResult<()> {
    // One list at a time for a sender: allowing removes a block and the other way round.
    let other = match kind {
        ListKind::Allow => ListKind::Block,
        ListKind::Block => ListKind::Allow,
    };
    store.delete(&entry_key(owner, other, sender)).await?;
    let value = serde_json::to_vec(provenance).map_err(|e| StoreError::Backend { backend: store.backend(), message: e.to_string() })?;
    store.put(&entry_key(owner, kind, sender), &value, None).await
}

pub async fn remove(store: &dyn Store, owner: &str, kind: ListKind, sender: &str) -> StoreResult<()> {
    store.delete(&entry_key(owner, kind, sender)).await
}

/// At most this many entries per owner are listed (all of them still apply).
pub const MAX_LISTED: usize = 10_000;

/// The owner's entries, allow then block, each sorted by sender.
pub async fn entries(store: &dyn Store, owner: &str) -> StoreResult<Vec<ListEntry>> {
    let mut out = Vec::new();
    for kind in [ListKind::Allow, ListKind::Block] {
        let prefix = format!("{}.", key(&["list", owner, kind.as_str()]));
        for (k, value) in store.scan_prefix(&prefix, MAX_LISTED).await? {
            let Some(sender) = unescape(&k[prefix.len()..]) else { continue };
            let provenance: Provenance = serde_json::from_slice(&value).unwrap_or(Provenance { added_by: String::new(), at: 0 });
            out.push(ListEntry { owner: owner.to_string(), kind, sender, added_by: provenance.added_by, at: provenance.at });
        }
    }
    out.sort_by(|a, b| (a.kind.as_str(), &a.sender).cmp(&(b.kind.as_str(), &b.sender)));
    Ok(out)
}

/// What a recipient's lists say about a message: the entry that decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub kind: ListKind,
    /// "alice@example.com: block spammer.example" — what the verdict names.
    pub entry: String,
}

/// The sender forms an entry can name: the address, its domain and each parent domain
/// that still has a dot.
fn sender_forms(address: &str) -> Vec<String> {
    let address = address.to_ascii_lowercase();
    let Some((_, domain)) = address.rsplit_once('@') else { return Vec::new() };
    let mut forms = vec![address.clone()];
    let mut rest = domain;
    while rest.contains('.') {
        forms.push(rest.to_string());
        rest = rest.split_once('.').map_or("", |(_, r)| r);
    }
    forms
}

/// For each recipient, what its own list and then its domain's list say: the block
/// list on the return path or a header From address, the allow list on the return path
/// only (allowing on the header From would let anyone forge their way in). At one
/// level, a block wins over an allow; a recipient's own list wins over its domain's.
pub async fn decide(
    store: &dyn Store,
    recipients: &[String],
    return_path: &str,
    header_from: &[String],
) -> StoreResult<Vec<Option<Decision>>> {
    let allow_forms = sender_forms(return_path);
    let mut block_forms = allow_forms.clone();
    for from in header_from {
        block_forms.extend(sender_forms(from).into_iter().filter(|f| !allow_forms.contains(f)));
    }
    if block_forms.is_empty() {
        return Ok(vec![None; recipients.len()]);
    }
    // Per recipient: owners (address, domain), each with block forms then allow forms.
    let mut keys = Vec::new();
    let mut plan = Vec::new();
    for recipient in recipients {
        let recipient = recipient.to_ascii_lowercase();
        let domain = recipient.rsplit_once('@').map_or("", |(_, d)| d).to_string();
        let mut owner_plans = Vec::new();
        for owner in [recipient.clone(), domain] {
            let mut candidates = Vec::new();
            for (kind, forms) in [(ListKind::Block, &block_forms), (ListKind::Allow, &allow_forms)] {
                for form in forms {
                    candidates.push((keys.len(), kind, form.clone()));
                    keys.push(entry_key(&owner, kind, form));
                }
            }
            owner_plans.push((owner, candidates));
        }
        plan.push(owner_plans);
    }
    let values = store.get_many(&keys).await?;
    Ok(plan
        .into_iter()
        .map(|owners| {
            owners.into_iter().find_map(|(owner, candidates)| {
                candidates
                    .into_iter()
                    .find(|(i, _, _)| values.get(*i).is_some_and(Option::is_some))
                    .map(|(_, kind, form)| Decision { kind, entry: format!("{owner}: {} {form}", kind.as_str()) })
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_normalized() {
        assert_eq!(normalize(" Boss@Example.COM ").unwrap(), "boss@example.com");
        assert_eq!(normalize("@example.com").unwrap(), "example.com");
        assert_eq!(normalize("*.Example.com.").unwrap(), "example.com");
        for bad in ["", "com", "a b@example.com", "@", "x@y", "<x@example.com>", "a@b@example.com", "..com", "@localhost"] {
            assert!(normalize(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sender_forms_climb_to_the_registrable_part() {
        assert_eq!(sender_forms("A@Mail.Example.com"), ["a@mail.example.com", "mail.example.com", "example.com"]);
        assert!(sender_forms("").is_empty());
    }

    #[tokio::test]
    async fn own_list_beats_the_domain_list_and_block_beats_allow() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::EmbeddedStore::open(&dir.path().join("state.redb"), false).unwrap();
        let by = Provenance { added_by: "admin@example.com".into(), at: 1 };
        add(&store, "example.com", ListKind::Block, "spam.example", &by).await.unwrap();
        add(&store, "alice@example.com", ListKind::Allow, "news.spam.example", &by).await.unwrap();
        add(&store, "bob@example.com", ListKind::Block, "boss@corp.example", &by).await.unwrap();
        add(&store, "bob@example.com", ListKind::Allow, "boss@corp.example", &by).await.unwrap(); // replaces the block
        let recipients = ["alice@example.com".to_string(), "bob@example.com".to_string(), "carol@example.com".to_string()];

        let d = decide(&store, &recipients, "x@news.spam.example", &[]).await.unwrap();
        assert_eq!(d[0].as_ref().unwrap().kind, ListKind::Allow);
        assert_eq!(d[1].as_ref().unwrap().entry, "example.com: block spam.example");
        assert_eq!(d[2].as_ref().unwrap().kind, ListKind::Block);

        // The header From counts for blocking, not for allowing.
        let d = decide(&store, &recipients, "bounce@mailer.example", &["x@spam.example".into()]).await.unwrap();
        assert_eq!(d[1].as_ref().unwrap().kind, ListKind::Block);
        let d = decide(&store, &recipients, "bounce@mailer.example", &["boss@corp.example".into()]).await.unwrap();
        assert!(d[1].is_none());
        let d = decide(&store, &recipients, "boss@corp.example", &[]).await.unwrap();
        assert_eq!(d[1].as_ref().unwrap().entry, "bob@example.com: allow boss@corp.example");

        let listed = entries(&store, "bob@example.com").await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].kind, listed[0].sender.as_str()), (ListKind::Allow, "boss@corp.example"));
        remove(&store, "bob@example.com", ListKind::Allow, "boss@corp.example").await.unwrap();
        assert!(entries(&store, "bob@example.com").await.unwrap().is_empty());
    }
}
