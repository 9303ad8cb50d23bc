//! DKIM keys in the management API: `/api/v1/domains/{name}/dkim` lists, generates,
//! rotates and removes the keys the store keeps for a domain (the file's domains
//! included: their file keys stay, stored keys sign beside them). Every edge signs with
//! a new key at its next poll of `config.version`.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use rempart_model::date::unix_now;
use rempart_state::dkim_keys::{self, Algorithm, DkimKey, Sealer};
use serde::Deserialize;
use serde_json::{Value, json};

use super::admin::{Admin, AdminState, Answer, ApiError, Caller, bad, created, file_domain, json_body, ok, visible_domain};
use crate::accounts::Account;
use crate::roles::{Permission, may_touch_domain};

pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    AdminState: axum::extract::FromRef<S>,
{
    Router::new()
        .route("/api/v1/domains/{name}/dkim", get(list_keys).post(add_key))
        .route("/api/v1/domains/{name}/dkim/rotate", post(rotate_key))
        .route("/api/v1/domains/{name}/dkim/{selector}", delete(remove_key))
}

/// The domain's canonical name, if the caller may manage it: a file domain (the
/// operator's) or a store domain in the caller's scope.
pub(super) async fn domain_in_scope(admin: &Admin, caller: &Account, name: &str) -> Result<String, ApiError> {
    if let Some(domain) = file_domain(admin, name).filter(|d| may_touch_domain(caller, &d.name, None)) {
        return Ok(domain.name);
    }
    Ok(visible_domain(admin, caller, name).await?.name().to_string())
}

fn sealer(admin: &Admin) -> Result<&Sealer, ApiError> {
    admin.sealer.as_deref().ok_or_else(|| {
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "the gateway cannot read its secret ([state] secret_file), so it cannot seal keys: see its log".into(),
        )
    })
}

async fn key_json(admin: &Admin, key: &DkimKey) -> Value {
    json!({
        "domain": key.domain, "selector": key.selector, "algorithm": key.algorithm,
        "record_name": key.record_name(), "record": key.record,
        "created": key.created, "retire_at": key.retire_at,
        "published": admin.onboarding.key_published(key).await,
    })
}

async fn list_keys(State(AdminState(admin)): State<AdminState>, caller: Caller, Path(name): Path<String>) -> Answer {
    let caller = caller.may(Permission::ReadDomains)?;
    let domain = domain_in_scope(&admin, &caller, &name).await?;
    let mut keys = Vec::new();
    for key in dkim_keys::list(&*admin.store, Some(&domain)).await? {
        keys.push(key_json(&admin, &key).await);
    }
    ok(json!({ "domain": domain, "keys": keys }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewKey {
    /// Default: "rs" or "ed" and today's date, e.g. "rs20261207".
    #[serde(default)]
    pub selector: Option<String>,
    /// "ed25519" or "rsa" (default).
    #[serde(default)]
    pub algorithm: Option<String>,
    /// Rotation only: how long the current keys keep signing (default 72 h).
    #[serde(default)]
    pub overlap_hours: Option<u64>,
}

impl NewKey {
    fn read(body: &[u8]) -> Result<NewKey, ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) { Ok(NewKey::default()) } else { json_body(body) }
    }

    fn algorithm(&self) -> Result<Algorithm, ApiError> {
        Algorithm::parse(self.algorithm.as_deref().unwrap_or("rsa")).map_err(bad)
    }

    fn selector(&self, algorithm: Algorithm) -> Result<String, ApiError> {
        let selector = match &self.selector {
            Some(s) => s.clone(),
            None => {
                let prefix = if algorithm == Algorithm::Ed25519 { "ed" } else { "rs" };
                format!("{prefix}{}", rempart_model::date::iso_day(unix_now()).replace('-', ""))
            }
        };
        rempart_model::config::check_selector(&selector).map_err(bad)?;
        Ok(selector)
    }
}

async fn add_key(State(AdminState(admin)): State<AdminState>, caller: Caller, Path(name): Path<String>, body: axum::body::Bytes) -> Answer {
    let caller = caller.may(Permission::ManageDomains)?;
    let key = generate_key(&admin, &caller, &name, NewKey::read(&body)?, false).await?;
    created(key_json(&admin, &key).await)
}

async fn rotate_key(
    State(AdminState(admin)): State<AdminState>,
    caller: Caller,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Answer {
    let caller = caller.may(Permission::ManageDomains)?;
    let key = generate_key(&admin, &caller, &name, NewKey::read(&body)?, true).await?;
    created(key_json(&admin, &key).await)
}

/// A new key for `name`, beside the current ones (`rotate`: which then retire after
/// the overlap).
pub(super) async fn generate_key(admin: &Admin, caller: &Account, name: &str, new: NewKey, rotate: bool) -> Result<DkimKey, ApiError> {
    let domain = domain_in_scope(admin, caller, name).await?;
    let algorithm = new.algorithm()?;
    let selector = new.selector(algorithm)?;
    let sealer = sealer(admin)?;
    let key = if rotate {
        let overlap = new.overlap_hours.unwrap_or(72).saturating_mul(3600);
        dkim_keys::rotate(&*admin.store, sealer, &domain, &selector, algorithm, unix_now(), overlap).await?
    } else {
        dkim_keys::create(&*admin.store, sealer, &domain, &selector, algorithm, unix_now()).await?
    };
    tracing::info!(%domain, %selector, rotate, by = %caller.email, "DKIM key added");
    Ok(key)
}

async fn remove_key(State(AdminState(admin)): State<AdminState>, caller: Caller, Path((name, selector)): Path<(String, String)>) -> Answer {
    let caller = caller.may(Permission::ManageDomains)?;
    let domain = domain_in_scope(&admin, &caller, &name).await?;
    dkim_keys::remove(&*admin.store, &domain, &selector).await?;
    tracing::info!(%domain, %selector, by = %caller.email, "DKIM key removed");
    ok(json!({ "deleted": selector }))
}
