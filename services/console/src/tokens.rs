//! API tokens (`Authorization: Bearer rpt_…`): each stands for an account, is shown
//! once, and is kept only as its SHA-256 with the account's generation, so that a
//! password change or a disable makes every older token worthless at once.

use rempart_state::{Store, StoreError, key};
use serde::{Deserialize, Serialize};

use crate::accounts::{self, Account, AccountError};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenRecord {
    /// The first 12 hex digits of the token's hash: enough to name it, useless to use it.
    pub id: String,
    pub email: String,
    /// The account's generation when the token was made.
    #[serde(default)]
    pub generation: u32,
    #[serde(default)]
    pub created: u64,
    #[serde(default)]
    pub label: String,
}

fn digest(token: &str) -> String {
    crate::web::auth::hex(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref())
}

fn token_key(hash: &str) -> String {
    key(&["console", "token", hash])
}

/// Tokens listed at most by a scan.
const MAX_TOKENS: usize = 100_000;

/// Creates a token for `email` and returns it (shown once; only its hash is kept).
pub async fn add(store: &dyn Store, email: &str, label: &str) -> Result<(String, TokenRecord), AccountError> {
    let Some(account) = accounts::get(store, email).await? else {
        return Err(AccountError::Invalid(format!("no account {email}")));
    };
    let mut bytes = [0u8; 24];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| AccountError::Invalid("no system randomness".into()))?;
    let token = format!("rpt_{}", crate::web::auth::hex(&bytes));
    let hash = digest(&token);
    let record = TokenRecord {
        id: hash[..12].to_string(),
        email: account.email.clone(),
        generation: account.generation,
        created: rempart_model::date::unix_now(),
        label: label.trim().chars().take(100).collect(),
    };
    let value = serde_json::to_vec(&record).map_err(|source| AccountError::Corrupt { email: account.email.clone(), source })?;
    store.put(&token_key(&hash), &value, None).await?;
    Ok((token, record))
}

/// The enabled account a token stands for, if the token is still valid.
pub async fn account(store: &dyn Store, token: &str) -> Result<Option<Account>, StoreError> {
    let Some(value) = store.get(&token_key(&digest(token.trim()))).await? else { return Ok(None) };
    // Tokens made before records were kept hold the bare address (generation 0).
    let record = serde_json::from_slice::<TokenRecord>(&value).unwrap_or_else(|_| TokenRecord {
        id: String::new(),
        email: String::from_utf8_lossy(&value).to_string(),
        generation: 0,
        created: 0,
        label: String::new(),
    });
    let account = accounts::get(store, &record.email).await.ok().flatten();
    Ok(account.filter(|a| !a.disabled && a.generation == record.generation))
}

/// Every token (hash key and record), or those of `email`.
pub async fn list(store: &dyn Store, email: Option<&str>) -> Result<Vec<(String, TokenRecord)>, StoreError> {
    let rows = store.scan_prefix(&format!("{}.", key(&["console", "token"])), MAX_TOKENS).await?;
    Ok(rows
        .into_iter()
        .filter_map(|(k, v)| serde_json::from_slice::<TokenRecord>(&v).ok().map(|r| (k, r)))
        .filter(|(_, r)| email.is_none_or(|e| r.email.eq_ignore_ascii_case(e)))
        .collect())
}

/// Revokes the token named `id`; gives its record, or `None` when there is none.
pub async fn revoke(store: &dyn Store, id: &str) -> Result<Option<TokenRecord>, StoreError> {
    let id = id.trim().to_ascii_lowercase();
    if id.len() < 12 {
        return Ok(None);
    }
    for (k, record) in list(store, None).await? {
        if record.id == id {
            store.delete(&k).await?;
            return Ok(Some(record));
        }
    }
    Ok(None)
}
