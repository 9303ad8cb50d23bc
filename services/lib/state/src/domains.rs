//! The management plane's records: tenants (customers) and the domains they own, kept
//! in the shared store so that every node serves the same set, and the version every
//! node watches to know that it changed (`config.version`).
//!
//! A domain record holds everything a `[[domain]]` of the file holds (its
//! `DomainConfig`), whose tenant it is, and whether its owner has proved control of it
//! yet. The file's domains are not records: they stay as the file says.

use serde::{Deserialize, Serialize};

use rempart_model::DomainConfig;

use crate::{Store, StoreError, key};

/// The key every node polls: bumped after each change of a tenant or a domain.
pub const VERSION_KEY: &str = "config.version";

/// Records a scan lists at most.
const MAX_RECORDS: usize = 1_000_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tenant {
    /// Short name: letters, digits, `-` and `_` (used in URLs and commands).
    pub id: String,
    /// The customer's name as people write it.
    pub name: String,
    /// Console logins of this tenant's accounts need a second factor.
    #[serde(default)]
    pub require_totp: bool,
    /// Unix seconds.
    pub created: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DomainStatus {
    /// Mail for it is accepted and relayed.
    Active,
    /// Added by a tenant, waiting for the proof of control; mail for it is deferred.
    Pending,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainRecord {
    pub config: DomainConfig,
    /// The tenant that owns it (`None`: the operator's own).
    #[serde(default)]
    pub tenant: Option<String>,
    pub status: DomainStatus,
    /// What `_rempart-verify.<domain>` must hold (TXT) to prove control.
    pub verify_token: String,
    /// Who added it (an account, or `operator` for the local socket).
    pub added_by: String,
    pub created: u64,
    #[serde(default)]
    pub verified_at: Option<u64>,
}

impl DomainRecord {
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The TXT record that proves control of the domain.
    pub fn verify_record(&self) -> (String, String) {
        (format!("_rempart-verify.{}", self.config.name), format!("rempart-verify={}", self.verify_token))
    }

    /// The domain as the gateway serves it: a pending domain carries why its mail waits.
    pub fn served(&self) -> DomainConfig {
        let mut config = self.config.clone();
        if self.status == DomainStatus::Pending {
            let (name, _) = self.verify_record();
            config.pending = Some(format!(
                "{} is waiting for its owner to prove control of it (TXT record {name} or MX records pointing at this gateway)",
                self.config.name
            ));
        }
        config
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("record {key}: {source}")]
    Corrupt { key: String, source: serde_json::Error },
}

fn tenant_key(id: &str) -> String {
    key(&["tenant", id])
}

fn domain_key(name: &str) -> String {
    key(&["domain", &name.trim_end_matches('.').to_ascii_lowercase()])
}

/// The index of a tenant's domains (so an account's request does not read every record).
fn tenant_domain_key(tenant: &str, name: &str) -> String {
    key(&["tenantdomain", tenant, name])
}

/// The names of a tenant's domains.
pub async fn tenant_domains(store: &dyn Store, tenant: &str) -> Result<Vec<String>, RecordError> {
    let rows = store.scan_prefix(&format!("{}.", key(&["tenantdomain", tenant])), MAX_RECORDS).await?;
    Ok(rows.iter().filter_map(|(k, _)| k.rsplit('.').next().and_then(crate::unescape)).collect())
}

fn decode<T: serde::de::DeserializeOwned>(key: &str, value: &[u8]) -> Result<T, RecordError> {
    serde_json::from_slice(value).map_err(|source| RecordError::Corrupt { key: key.to_string(), source })
}

fn encode<T: Serialize>(key: &str, value: &T) -> Result<Vec<u8>, RecordError> {
    serde_json::to_vec(value).map_err(|source| RecordError::Corrupt { key: key.to_string(), source })
}

/// The current version of the managed records (0 before the first change).
pub async fn version(store: &dyn Store) -> Result<i64, StoreError> {
    let value = store.get(VERSION_KEY).await?;
    crate::counter(VERSION_KEY, value.as_deref())
}

/// Tells every node that the records changed.
pub async fn bump(store: &dyn Store) -> Result<(), StoreError> {
    store.add(&[(VERSION_KEY.to_string(), 1)]).await
}

/// Whether `id` can name a tenant.
pub fn check_tenant_id(id: &str) -> Result<(), String> {
    let good = !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if good { Ok(()) } else { Err(format!("{id:?} is not a tenant id: 1 to 64 letters, digits, '-' or '_'")) }
}

pub async fn put_tenant(store: &dyn Store, tenant: &Tenant) -> Result<(), RecordError> {
    check_tenant_id(&tenant.id).map_err(RecordError::Invalid)?;
    if tenant.name.trim().is_empty() {
        return Err(RecordError::Invalid("a tenant needs a name".into()));
    }
    let k = tenant_key(&tenant.id);
    store.put(&k, &encode(&k, tenant)?, None).await?;
    bump(store).await?;
    Ok(())
}

pub async fn get_tenant(store: &dyn Store, id: &str) -> Result<Option<Tenant>, RecordError> {
    let k = tenant_key(id);
    match store.get(&k).await? {
        Some(value) => decode(&k, &value).map(Some),
        None => Ok(None),
    }
}

pub async fn tenants(store: &dyn Store) -> Result<Vec<Tenant>, RecordError> {
    let rows = store.scan_prefix(&format!("{}.", key(&["tenant"])), MAX_RECORDS).await?;
    rows.iter().map(|(k, v)| decode(k, v)).collect()
}

/// Deletes a tenant that owns no domain any more.
pub async fn delete_tenant(store: &dyn Store, id: &str) -> Result<(), RecordError> {
    if get_tenant(store, id).await?.is_none() {
        return Err(RecordError::NotFound(format!("no tenant {id}")));
    }
    let owned: Vec<String> = domains(store).await?.into_iter().filter(|d| d.tenant.as_deref() == Some(id)).map(|d| d.config.name).collect();
    if !owned.is_empty() {
        return Err(RecordError::Conflict(format!("tenant {id} still owns {}: remove its domains first", owned.join(", "))));
    }
    store.delete(&tenant_key(id)).await?;
    bump(store).await?;
    Ok(())
}

pub async fn get_domain(store: &dyn Store, name: &str) -> Result<Option<DomainRecord>, RecordError> {
    let k = domain_key(name);
    match store.get(&k).await? {
        Some(value) => decode(&k, &value).map(Some),
        None => Ok(None),
    }
}

/// Every domain record, by name.
pub async fn domains(store: &dyn Store) -> Result<Vec<DomainRecord>, RecordError> {
    let rows = store.scan_prefix(&format!("{}.", key(&["domain"])), MAX_RECORDS).await?;
    let mut records = rows.iter().map(|(k, v)| decode::<DomainRecord>(k, v)).collect::<Result<Vec<_>, _>>()?;
    records.sort_by(|a, b| a.config.name.cmp(&b.config.name));
    Ok(records)
}

/// The domains every node serves from the store (pending ones carry their reason).
/// A record that cannot be read is left out and logged: one bad record must not stop
/// every other domain's changes.
pub async fn served(store: &dyn Store) -> Result<Vec<DomainConfig>, StoreError> {
    let rows = store.scan_prefix(&format!("{}.", key(&["domain"])), MAX_RECORDS).await?;
    Ok(rows
        .iter()
        .filter_map(|(k, v)| match decode::<DomainRecord>(k, v) {
            Ok(record) => Some(record.served()),
            Err(e) => {
                tracing::error!(error = %e, "a domain record cannot be read; it is not served");
                None
            }
        })
        .collect())
}

/// Checks a record on its own: a valid domain that names no file (each node would need
/// its copy) and, when it has a tenant, a tenant that exists.
pub async fn check_record(store: &dyn Store, record: &mut DomainRecord) -> Result<(), RecordError> {
    record.config.check().map_err(|e| RecordError::Invalid(format!("{}: {e}", record.config.name)))?;
    if let Some((field, path)) = record.config.files().first() {
        return Err(RecordError::Invalid(format!(
            "{field} = {}: a domain managed at run time cannot name files (every node would need its copy); put the domain in the configuration file instead",
            path.display()
        )));
    }
    if let Some(tenant) = &record.tenant
        && get_tenant(store, tenant).await?.is_none()
    {
        return Err(RecordError::NotFound(format!("no tenant {tenant}")));
    }
    Ok(())
}

/// Adds a domain; refused when it exists already (a domain belongs to one tenant).
/// `compare_and_set` makes two tenants claiming the same name at once get one answer
/// each: one wins, the other is told it is taken.
pub async fn add_domain(store: &dyn Store, mut record: DomainRecord) -> Result<DomainRecord, RecordError> {
    check_record(store, &mut record).await?;
    let k = domain_key(record.name());
    let claimed = store.compare_and_set(&k, None, &encode(&k, &record)?, None).await?;
    if !claimed {
        return Err(RecordError::Conflict(format!("{} is already managed by this gateway", record.name())));
    }
    if let Some(tenant) = &record.tenant {
        store.put(&tenant_domain_key(tenant, record.name()), b"", None).await?;
    }
    bump(store).await?;
    Ok(record)
}

/// Replaces a domain's record (same name), e.g. a new route or a verified status.
pub async fn update_domain(store: &dyn Store, mut record: DomainRecord) -> Result<DomainRecord, RecordError> {
    check_record(store, &mut record).await?;
    let k = domain_key(record.name());
    let Some(old) = get_domain(store, record.name()).await? else {
        return Err(RecordError::NotFound(format!("no domain {} in the store", record.name())));
    };
    store.put(&k, &encode(&k, &record)?, None).await?;
    if old.tenant != record.tenant {
        if let Some(tenant) = &old.tenant {
            store.delete(&tenant_domain_key(tenant, record.name())).await?;
        }
        if let Some(tenant) = &record.tenant {
            store.put(&tenant_domain_key(tenant, record.name()), b"", None).await?;
        }
    }
    bump(store).await?;
    Ok(record)
}

pub async fn delete_domain(store: &dyn Store, name: &str) -> Result<(), RecordError> {
    let Some(record) = get_domain(store, name).await? else {
        return Err(RecordError::NotFound(format!("no domain {name} in the store")));
    };
    store.delete(&domain_key(name)).await?;
    if let Some(tenant) = &record.tenant {
        store.delete(&tenant_domain_key(tenant, record.name())).await?;
    }
    bump(store).await?;
    Ok(())
}

/// A random token for `_rempart-verify` records.
pub fn new_token() -> String {
    use argon2::password_hash::rand_core::{OsRng, RngCore};
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
