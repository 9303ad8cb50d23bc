//! The management API under `/api/v1`: tenants, domains, accounts and tokens, as JSON.
//! Changes go to the shared store, which every node follows (`config.version`), so a
//! domain added here is served by every edge, scanner and relay within seconds.
//!
//! Who asks: a bearer token (an account, checked by `roles`), or the local admin
//! socket (`<data_dir>/admin.sock`, which only the gateway's own system user can
//! open): the operator. `rempart domain|tenant|account …` talk to it.

use std::sync::Arc;

use axum::extract::{FromRef, Path, State};
use axum::http::{Extensions, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rempart_model::DomainConfig;
use rempart_state::Store;
use rempart_state::domains::{self, DomainRecord, DomainStatus, RecordError, Tenant};
use serde::Deserialize;
use serde_json::{Value, json};

use super::accounts_api::account_json;
use crate::accounts::{self, Account, AccountError, Role};
use crate::onboarding::Onboarding;
use crate::roles::{Permission, allows, may_touch_domain};
use crate::tokens;

/// What the management API works on.
pub struct Admin {
    pub store: Arc<dyn Store>,
    /// The configuration file's domains: shown, read-only.
    pub file_domains: Vec<DomainConfig>,
    pub onboarding: Onboarding,
    /// Seals the DKIM keys generated here (`None`: the secret could not be read, and
    /// keys cannot be generated; the reason is in the log).
    pub sealer: Option<Arc<rempart_state::dkim_keys::Sealer>>,
    /// `[console] require_totp_for_staff`.
    pub totp_for_staff: bool,
    /// Message tracking's index (`None` where no console runs: searches answer 503).
    pub tracking: Option<crate::tracking::TrackingIndex>,
    /// The bus whose queue `/api/v1/queue` manages (`None` when nothing runs).
    pub queue: Option<Arc<rempart_bus::AnyBus>>,
}

impl Admin {
    /// The management API over `store`, for the gateway configured by `file`.
    pub fn new(store: Arc<dyn Store>, file: &rempart_model::Config, sealer: Option<Arc<rempart_state::dkim_keys::Sealer>>) -> Admin {
        Admin {
            store,
            file_domains: file.domains.clone(),
            onboarding: Onboarding::of(file),
            sealer,
            totp_for_staff: file.console.require_totp_for_staff,
            tracking: None,
            queue: None,
        }
    }
}

/// The handlers' state: the console's, or the admin socket's alone.
#[derive(Clone)]
pub struct AdminState(pub Arc<Admin>);

impl FromRef<Arc<crate::Console>> for AdminState {
    fn from_ref(console: &Arc<crate::Console>) -> AdminState {
        AdminState(console.admin.clone())
    }
}

/// Marks requests that came through the local admin socket: the operator.
#[derive(Debug, Clone, Copy)]
pub struct LocalOperator;

/// The caller the local socket stands for.
pub const LOCAL_OPERATOR: &str = "operator@admin.socket";

pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    AdminState: FromRef<S>,
{
    Router::new()
        .route("/api/v1/whoami", get(whoami))
        .route("/api/v1/tenants", get(list_tenants).post(add_tenant))
        .route("/api/v1/tenants/{id}", get(show_tenant).put(change_tenant).delete(delete_tenant))
        .route("/api/v1/domains", get(list_domains).post(add_domain))
        .route("/api/v1/domains/{name}", get(show_domain).put(change_domain).delete(delete_domain))
        .route("/api/v1/domains/{name}/verify", post(verify_domain))
        .route("/api/v1/domains/{name}/dns", get(domain_dns))
        .merge(super::accounts_api::routes())
        .merge(super::dkim::routes())
        .merge(super::account::api_routes())
}

/// A JSON error.
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

pub type Answer = Result<Response, ApiError>;

pub(super) fn forbidden() -> ApiError {
    ApiError(StatusCode::FORBIDDEN, "your role does not allow this".into())
}

pub(super) fn not_found(what: &str) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, format!("no {what}"))
}

pub(super) fn bad(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::UNPROCESSABLE_ENTITY, message.into())
}

impl From<RecordError> for ApiError {
    fn from(e: RecordError) -> Self {
        let status = match &e {
            RecordError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            RecordError::Conflict(_) => StatusCode::CONFLICT,
            RecordError::NotFound(_) => StatusCode::NOT_FOUND,
            RecordError::Store(_) | RecordError::Corrupt { .. } => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError(status, e.to_string())
    }
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        let status = match &e {
            AccountError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError(status, e.to_string())
    }
}

impl From<rempart_state::StoreError> for ApiError {
    fn from(e: rempart_state::StoreError) -> Self {
        ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
    }
}

/// The account asking: the operator on the local socket, else the bearer token's
/// account (with its tenant's domains); 401 without one.
pub async fn caller(store: &dyn Store, headers: &HeaderMap, extensions: &Extensions) -> Result<Account, ApiError> {
    if extensions.get::<LocalOperator>().is_some() {
        return Ok(Account::new(LOCAL_OPERATOR, Role::Operator));
    }
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| ApiError(StatusCode::UNAUTHORIZED, "a valid bearer token is required".into()))?;
    let account = tokens::account(store, token)
        .await?
        .ok_or_else(|| ApiError(StatusCode::UNAUTHORIZED, "a valid bearer token is required".into()))?;
    Ok(accounts::with_tenant_domains(store, account).await?)
}

/// The account asking (`caller`), extracted before the body: a request without a valid
/// token gets 401 whatever its body.
pub struct Caller(pub Account);

impl<S> axum::extract::FromRequestParts<S> for Caller
where
    S: Send + Sync,
    AdminState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, ApiError> {
        let AdminState(admin) = AdminState::from_ref(state);
        Ok(Caller(caller(&*admin.store, &parts.headers, &parts.extensions).await?))
    }
}

impl Caller {
    /// The caller, if their role has `permission`.
    pub fn may(self, permission: Permission) -> Result<Account, ApiError> {
        if allows(self.0.role, permission) { Ok(self.0) } else { Err(forbidden()) }
    }
}

/// A request's JSON body, read here (after the caller is known, so that a request
/// without a token gets 401 whatever its body) with errors in the API's own form.
pub(super) fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| bad(format!("the request body: {e}")))
}

pub(super) fn ok(value: Value) -> Answer {
    Ok(Json(value).into_response())
}

pub(super) fn created(value: Value) -> Answer {
    Ok((StatusCode::CREATED, Json(value)).into_response())
}

async fn whoami(Caller(caller): Caller) -> Answer {
    ok(account_json(&caller))
}

// ----- tenants -----

async fn list_tenants(State(AdminState(admin)): State<AdminState>, caller: Caller) -> Answer {
    let caller = caller.may(Permission::ReadTenants)?;
    ok(json!({ "tenants": tenants_in_scope(&admin, &caller).await? }))
}

/// The tenants `caller` may see: all for staff, their own for a tenant's account.
pub(super) async fn tenants_in_scope(admin: &Admin, caller: &Account) -> Result<Vec<Tenant>, ApiError> {
    Ok(domains::tenants(&*admin.store)
        .await?
        .into_iter()
        .filter(|t| caller.role.is_staff() || caller.tenant.as_deref() == Some(&t.id))
        .collect())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewTenant {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub require_totp: bool,
}

async fn add_tenant(State(AdminState(admin)): State<AdminState>, caller: Caller, body: axum::body::Bytes) -> Answer {
    let caller = caller.may(Permission::ManageTenants)?;
    created(json!(create_tenant(&admin, &caller, json_body(&body)?).await?))
}

pub(super) async fn create_tenant(admin: &Admin, caller: &Account, new: NewTenant) -> Result<Tenant, ApiError> {
    if domains::get_tenant(&*admin.store, &new.id).await?.is_some() {
        return Err(ApiError(StatusCode::CONFLICT, format!("tenant {} exists already", new.id)));
    }
    let name = if new.name.trim().is_empty() { new.id.clone() } else { new.name.trim().to_string() };
    let tenant = Tenant { id: new.id, name, require_totp: new.require_totp, created: rempart_model::date::unix_now() };
    domains::put_tenant(&*admin.store, &tenant).await?;
    tracing::info!(tenant = %tenant.id, by = %caller.email, "tenant added");
    Ok(tenant)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TenantChange {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub require_totp: Option<bool>,
}

async fn change_tenant(
    State(AdminState(admin)): State<AdminState>,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Answer {
    let caller = caller.may(Permission::ManageTenants)?;
    ok(json!(change_tenant_as(&admin, &caller, &id, json_body(&body)?).await?))
}

pub(super) async fn change_tenant_as(admin: &Admin, caller: &Account, id: &str, change: TenantChange) -> Result<Tenant, ApiError> {
    let mut tenant = domains::get_tenant(&*admin.store, id).await?.ok_or_else(|| not_found("such tenant"))?;
    if let Some(name) = change.name.filter(|n| !n.trim().is_empty()) {
        tenant.name = name.trim().to_string();
    }
    if let Some(require_totp) = change.require_totp {
        tenant.require_totp = require_totp;
    }
    domains::put_tenant(&*admin.store, &tenant).await?;
    tracing::info!(tenant = %tenant.id, require_totp = tenant.require_totp, by = %caller.email, "tenant changed");
    Ok(tenant)
}

async fn show_tenant(State(AdminState(admin)): State<AdminState>, caller: Caller, Path(id): Path<String>) -> Answer {
    let caller = caller.may(Permission::ReadTenants)?;
    if !caller.role.is_staff() && caller.tenant.as_deref() != Some(&id) {
        return Err(not_found("such tenant"));
    }
    let tenant = domains::get_tenant(&*admin.store, &id).await?.ok_or_else(|| not_found("such tenant"))?;
    let owned = domains::tenant_domains(&*admin.store, &id).await?;
    ok(json!({ "tenant": tenant, "domains": owned }))
}

async fn delete_tenant(State(AdminState(admin)): State<AdminState>, caller: Caller, Path(id): Path<String>) -> Answer {
    let caller = caller.may(Permission::ManageTenants)?;
    ok(json!({ "deleted": remove_tenant(&admin, &caller, &id).await? }))
}

/// Deletes a tenant that owns no domain any more.
pub(super) async fn remove_tenant(admin: &Admin, caller: &Account, id: &str) -> Result<String, ApiError> {
    domains::delete_tenant(&*admin.store, id).await?;
    tracing::info!(tenant = %id, by = %caller.email, "tenant deleted");
    Ok(id.to_string())
}

// ----- domains -----

fn record_json(record: &DomainRecord) -> Value {
    let (verify_name, verify_value) = record.verify_record();
    json!({
        "name": record.name(), "source": "store", "read_only": false,
        "tenant": record.tenant, "status": record.status, "added_by": record.added_by,
        "created": record.created, "verified_at": record.verified_at,
        "verify": { "type": "TXT", "name": verify_name, "value": verify_value },
        "settings": record.config,
    })
}

/// `answer` with the store's `config_version` after the change: every node has
/// applied it once its log (or metrics) shows this version.
async fn with_version(admin: &Admin, mut answer: Value) -> Result<Value, ApiError> {
    answer["config_version"] = domains::version(&*admin.store).await?.into();
    Ok(answer)
}

fn file_domain_json(domain: &DomainConfig) -> Value {
    json!({
        "name": domain.name, "source": "file", "read_only": true, "status": DomainStatus::Active,
        "note": "from the configuration file: change it there and reload",
        "settings": domain,
    })
}

async fn list_domains(State(AdminState(admin)): State<AdminState>, caller: Caller) -> Answer {
    let caller = caller.may(Permission::ReadDomains)?;
    let (file, stored) = domains_in_scope(&admin, &caller).await?;
    let mut out: Vec<Value> = file.iter().map(file_domain_json).collect();
    out.extend(stored.iter().map(record_json));
    ok(json!({ "domains": out }))
}

/// The domains the caller may see: the file's (read-only), then the store's.
pub(super) async fn domains_in_scope(admin: &Admin, caller: &Account) -> Result<(Vec<DomainConfig>, Vec<DomainRecord>), ApiError> {
    let file: Vec<DomainConfig> = admin.file_domains.iter().filter(|d| may_touch_domain(caller, &d.name, None)).cloned().collect();
    let stored = domains::domains(&*admin.store)
        .await?
        .into_iter()
        .filter(|r| may_touch_domain(caller, r.name(), r.tenant.as_deref()) && !admin.file_domains.iter().any(|d| d.name == r.name()))
        .collect();
    Ok((file, stored))
}

/// A domain added: its name, route, owner and any other `[[domain]]` setting.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewDomain {
    pub name: String,
    pub route: String,
    #[serde(default)]
    pub tenant: Option<String>,
    /// Other settings, as in a `[[domain]]` table.
    #[serde(default)]
    pub settings: serde_json::Map<String, Value>,
}

/// `base`'s settings with `changes` over them, checked as a `[[domain]]` is.
fn domain_settings(base: &DomainConfig, changes: serde_json::Map<String, Value>) -> Result<DomainConfig, ApiError> {
    let Value::Object(mut settings) = serde_json::to_value(base).map_err(|e| bad(e.to_string()))? else {
        return Err(bad("domain settings are not an object"));
    };
    for (key, value) in changes {
        if key == "name" {
            return Err(bad("a domain's name cannot be changed: add the new name and remove the old one"));
        }
        settings.insert(key, value);
    }
    serde_json::from_value(Value::Object(settings)).map_err(|e| bad(format!("domain settings: {e}")))
}

pub(super) fn file_domain(admin: &Admin, name: &str) -> Option<DomainConfig> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    admin.file_domains.iter().find(|d| d.name == name).cloned()
}

async fn add_domain(State(AdminState(admin)): State<AdminState>, caller: Caller, body: axum::body::Bytes) -> Answer {
    let caller = caller.may(Permission::ManageDomains)?;
    let record = create_domain(&admin, &caller, json_body(&body)?).await?;
    created(with_version(&admin, record_json(&record)).await?)
}

/// Adds a domain for `caller`: the operator's is active at once, a tenant's waits for
/// its proof of control.
pub(super) async fn create_domain(admin: &Admin, caller: &Account, new: NewDomain) -> Result<DomainRecord, ApiError> {
    rempart_model::config::check_domain_name(&new.name).map_err(bad)?;
    let route = new.route.parse().map_err(|e: rempart_model::InvalidValue| bad(e.0))?;
    if file_domain(admin, &new.name).is_some() {
        return Err(ApiError(StatusCode::CONFLICT, format!("{} is in the configuration file already", new.name)));
    }
    let (tenant, status) = match caller.role {
        Role::Operator => (new.tenant, DomainStatus::Active),
        _ => match &caller.tenant {
            Some(own) if new.tenant.as_ref().is_none_or(|t| t == own) => (Some(own.clone()), DomainStatus::Pending),
            Some(_) => return Err(forbidden()),
            None => return Err(ApiError(StatusCode::FORBIDDEN, "only an account of a tenant may add domains".into())),
        },
    };
    let config = domain_settings(&DomainConfig::new(&new.name, route), new.settings)?;
    let record = DomainRecord {
        config,
        tenant,
        status,
        verify_token: domains::new_token(),
        added_by: caller.email.clone(),
        created: rempart_model::date::unix_now(),
        verified_at: None,
    };
    let record = domains::add_domain(&*admin.store, record).await?;
    tracing::info!(domain = record.name(), tenant = ?record.tenant, status = ?record.status, by = %caller.email, "domain added");
    Ok(record)
}

/// The record `name`, if the caller may see it (`None` for both "absent" and "not
/// yours", so a tenant cannot probe others' domains).
pub(super) async fn visible_domain(admin: &Admin, caller: &Account, name: &str) -> Result<DomainRecord, ApiError> {
    match domains::get_domain(&*admin.store, name).await? {
        Some(record) if may_touch_domain(caller, record.name(), record.tenant.as_deref()) => Ok(record),
        _ => Err(not_found("such domain in the store")),
    }
}

async fn show_domain(State(AdminState(admin)): State<AdminState>, caller: Caller, Path(name): Path<String>) -> Answer {
    let caller = caller.may(Permission::ReadDomains)?;
    if let Some(domain) = file_domain(&admin, &name).filter(|d| may_touch_domain(&caller, &d.name, None)) {
        return ok(file_domain_json(&domain));
    }
    ok(record_json(&visible_domain(&admin, &caller, &name).await?))
}

async fn change_domain(
    State(AdminState(admin)): State<AdminState>,
    caller: Caller,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Answer {
    let caller = caller.may(Permission::ManageDomains)?;
    let Value::Object(changes) = json_body(&body)? else { return Err(bad("expected a JSON object of settings")) };
    let record = change_domain_settings(&admin, &caller, &name, changes).await?;
    ok(with_version(&admin, record_json(&record)).await?)
}

/// Changes a stored domain's settings (and, for the operator, its tenant or status).
pub(super) async fn change_domain_settings(
    admin: &Admin,
    caller: &Account,
    name: &str,
    mut changes: serde_json::Map<String, Value>,
) -> Result<DomainRecord, ApiError> {
    if file_domain(admin, name).is_some() {
        return Err(ApiError(StatusCode::CONFLICT, format!("{name} is from the configuration file: change it there and reload")));
    }
    let mut record = visible_domain(admin, caller, name).await?;
    if let Some(tenant) = changes.remove("tenant") {
        if caller.role != Role::Operator {
            return Err(ApiError(StatusCode::FORBIDDEN, "only the operator moves a domain to another tenant".into()));
        }
        record.tenant = serde_json::from_value(tenant).map_err(|e| bad(format!("tenant: {e}")))?;
    }
    if let Some(status) = changes.remove("status") {
        if caller.role != Role::Operator {
            return Err(ApiError(StatusCode::FORBIDDEN, "a domain turns active by proving control (POST …/verify)".into()));
        }
        record.status = serde_json::from_value(status).map_err(|e| bad(format!("status: {e}")))?;
    }
    if let Some(Value::Object(settings)) = changes.remove("settings") {
        changes.extend(settings);
    }
    record.config = domain_settings(&record.config, changes)?;
    let record = domains::update_domain(&*admin.store, record).await?;
    tracing::info!(domain = record.name(), by = %caller.email, "domain changed");
    Ok(record)
}

async fn delete_domain(State(AdminState(admin)): State<AdminState>, caller: Caller, Path(name): Path<String>) -> Answer {
    let caller = caller.may(Permission::ManageDomains)?;
    if file_domain(&admin, &name).is_some() {
        return Err(ApiError(StatusCode::CONFLICT, format!("{name} is from the configuration file: remove it there and reload")));
    }
    let record = visible_domain(&admin, &caller, &name).await?;
    domains::delete_domain(&*admin.store, record.name()).await?;
    tracing::info!(domain = record.name(), by = %caller.email, "domain removed");
    ok(json!({ "deleted": record.name() }))
}

async fn verify_domain(State(AdminState(admin)): State<AdminState>, caller: Caller, Path(name): Path<String>) -> Answer {
    let caller = caller.may(Permission::ManageDomains)?;
    let record = visible_domain(&admin, &caller, &name).await?;
    let record = admin.onboarding.verify(&*admin.store, record).await.map_err(|e| ApiError(StatusCode::SERVICE_UNAVAILABLE, e))?;
    ok(record_json(&record))
}

async fn domain_dns(State(AdminState(admin)): State<AdminState>, caller: Caller, Path(name): Path<String>) -> Answer {
    let caller = caller.may(Permission::ReadDomains)?;
    let record = visible_domain(&admin, &caller, &name).await?;
    let keys = rempart_state::dkim_keys::list(&*admin.store, Some(record.name())).await?;
    ok(json!({ "domain": record.name(), "status": record.status, "records": admin.onboarding.records(&record, &keys).await }))
}
