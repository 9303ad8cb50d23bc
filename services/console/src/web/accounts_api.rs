//! The management API's accounts and their tokens (`/api/v1/accounts`, `/api/v1/tokens`),
//! and what the console's account pages share with it: creating, changing and removing
//! an account within the caller's reach.

use axum::Router;
use axum::extract::{FromRef, Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use super::admin::{Admin, AdminState, Answer, ApiError, Caller, bad, created, forbidden, json_body, not_found, ok};
use rempart_state::domains;

use crate::accounts::{self, Account, Role};
use crate::roles::{Permission, allows, may_touch_account};
use crate::tokens;

pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    AdminState: FromRef<S>,
{
    Router::new()
        .route("/api/v1/accounts", get(list_accounts).post(add_account))
        .route("/api/v1/accounts/{email}", get(show_account).patch(change_account).delete(delete_account))
        .route("/api/v1/accounts/{email}/tokens", get(list_tokens).post(add_token))
        .route("/api/v1/tokens/{id}", axum::routing::delete(revoke_token))
}

// ----- accounts -----

pub fn account_json(account: &Account) -> Value {
    json!({
        "email": account.email, "role": account.role.as_str(), "tenant": account.tenant,
        "domains": account.domains, "aliases": account.aliases,
        "disabled": account.disabled, "suspended": account.suspended, "created": account.created,
        "second_factor": account.totp_confirmed,
    })
}

async fn list_accounts(State(AdminState(admin)): State<AdminState>, caller: Caller) -> Answer {
    let caller = caller.may(Permission::ReadAccounts)?;
    let listed: Vec<Value> = accounts_in_scope(&admin, &caller).await?.iter().map(account_json).collect();
    ok(json!({ "accounts": listed }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewAccount {
    pub email: String,
    #[serde(default = "user_role")]
    pub role: String,
    #[serde(default)]
    pub tenant: Option<String>,
    #[serde(default)]
    pub domains: Vec<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub password: String,
}

fn user_role() -> String {
    "user".into()
}

/// Passwords are at least this long.
pub const MIN_PASSWORD: usize = 10;

fn check_password(password: &str) -> Result<(), ApiError> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(bad(format!("the password must have at least {MIN_PASSWORD} characters")));
    }
    Ok(())
}

async fn add_account(State(AdminState(admin)): State<AdminState>, caller: Caller, body: axum::body::Bytes) -> Answer {
    let caller = caller.may(Permission::ManageAccounts)?;
    created(account_json(&create_account(&admin, &caller, json_body(&body)?).await?))
}

/// Adds an account for `caller` (an operator, or a tenant admin within their tenant).
pub(super) async fn create_account(admin: &Admin, caller: &Account, new: NewAccount) -> Result<Account, ApiError> {
    let role: Role = new.role.parse()?;
    check_password(&new.password)?;
    let lower = |v: Vec<String>| v.into_iter().map(|s| s.trim().to_ascii_lowercase()).collect::<Vec<_>>();
    let mut account = Account {
        tenant: new.tenant,
        domains: lower(new.domains),
        aliases: lower(new.aliases),
        created: rempart_model::date::unix_now(),
        ..Account::new(&new.email, role)
    };
    accounts::check_address(&account.email)?;
    if caller.role != Role::Operator {
        // A tenant admin makes users and admins of their own tenant, at their domains.
        account.tenant = caller.tenant.clone();
        if role.is_staff() || !account.domains.iter().chain([&account.domain().to_string()]).all(|d| caller.domains.contains(d)) {
            return Err(forbidden());
        }
    }
    if let Some(tenant) = &account.tenant
        && domains::get_tenant(&*admin.store, tenant).await?.is_none()
    {
        return Err(not_found(&format!("tenant {tenant}")));
    }
    if accounts::get(&*admin.store, &account.email).await?.is_some() {
        return Err(ApiError(StatusCode::CONFLICT, format!("account {} exists already", account.email)));
    }
    account.password_hash = hash(new.password).await?;
    accounts::put(&*admin.store, &account).await?;
    tracing::info!(account = %account.email, role = %account.role, by = %caller.email, "account added");
    Ok(account)
}

/// Argon2 off the async threads.
async fn hash(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || accounts::hash_password(&password))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(ApiError::from)
}

/// Sets `account`'s password (checked against the minimum length), after checking
/// `current` when given (a user changing their own); every token and session of the
/// account dies with the old one. The caller stores the account.
pub(super) async fn set_password(account: &mut Account, password: String, current: Option<String>) -> Result<(), ApiError> {
    check_password(&password)?;
    if let Some(current) = current {
        let hash = account.password_hash.clone();
        let matches = tokio::task::spawn_blocking(move || accounts::password_matches(&hash, &current)).await.unwrap_or(false);
        if !matches {
            return Err(ApiError(StatusCode::FORBIDDEN, "the current password is wrong".into()));
        }
    }
    account.password_hash = hash(password).await?;
    account.generation += 1;
    Ok(())
}

/// The account `email` if the caller may see it (staff, its tenant admin, itself).
pub(super) async fn visible_account(admin: &Admin, caller: &Account, email: &str) -> Result<Account, ApiError> {
    match accounts::get(&*admin.store, email).await? {
        Some(account) if may_touch_account(caller, &account) => Ok(account),
        _ => Err(not_found("such account")),
    }
}

async fn show_account(State(AdminState(admin)): State<AdminState>, caller: Caller, Path(email): Path<String>) -> Answer {
    let caller = caller.may(Permission::ManageSelf)?;
    if caller.email != email.to_ascii_lowercase() && !allows(caller.role, Permission::ReadAccounts) {
        return Err(forbidden());
    }
    ok(account_json(&visible_account(&admin, &caller, &email).await?))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AccountChange {
    #[serde(default)]
    pub password: Option<String>,
    /// Needed when changing one's own password.
    #[serde(default)]
    pub current_password: Option<String>,
    #[serde(default)]
    pub disabled: Option<bool>,
    #[serde(default)]
    pub suspended: Option<bool>,
    #[serde(default)]
    pub aliases: Option<Vec<String>>,
}

async fn change_account(
    State(AdminState(admin)): State<AdminState>,
    caller: Caller,
    Path(email): Path<String>,
    body: axum::body::Bytes,
) -> Answer {
    let caller = caller.may(Permission::ManageSelf)?;
    ok(account_json(&change_account_as(&admin, &caller, &email, json_body(&body)?).await?))
}

/// Changes an account: its owner their password (with the current one), an admin of it
/// anything here.
pub(super) async fn change_account_as(admin: &Admin, caller: &Account, email: &str, change: AccountChange) -> Result<Account, ApiError> {
    let mut account = visible_account(admin, caller, email).await?;
    let own = caller.email == account.email;
    let administers = allows(caller.role, Permission::ManageAccounts) && may_touch_account(caller, &account);
    let only_password = change.disabled.is_none() && change.suspended.is_none() && change.aliases.is_none();
    if !(administers || own && only_password) {
        return Err(forbidden());
    }
    if let Some(password) = change.password {
        let current = if own && !administers { Some(change.current_password.unwrap_or_default()) } else { None };
        set_password(&mut account, password, current).await?;
    }
    if let Some(disabled) = change.disabled {
        if disabled && !account.disabled {
            account.generation += 1;
        }
        account.disabled = disabled;
    }
    if let Some(suspended) = change.suspended {
        account.suspended = suspended;
    }
    if let Some(aliases) = change.aliases {
        account.aliases = aliases.into_iter().map(|a| a.trim().to_ascii_lowercase()).collect();
    }
    accounts::put(&*admin.store, &account).await?;
    tracing::info!(account = %account.email, by = %caller.email, "account changed");
    Ok(account)
}

async fn delete_account(State(AdminState(admin)): State<AdminState>, caller: Caller, Path(email): Path<String>) -> Answer {
    let caller = caller.may(Permission::ManageAccounts)?;
    ok(json!({ "deleted": remove_account(&admin, &caller, &email).await? }))
}

/// Deletes an account and its tokens; its address.
pub(super) async fn remove_account(admin: &Admin, caller: &Account, email: &str) -> Result<String, ApiError> {
    let account = visible_account(admin, caller, email).await?;
    for (_, token) in tokens::list(&*admin.store, Some(&account.email)).await? {
        tokens::revoke(&*admin.store, &token.id).await?;
    }
    accounts::delete(&*admin.store, &account.email).await?;
    tracing::info!(account = %account.email, by = %caller.email, "account deleted");
    Ok(account.email)
}

/// The accounts `caller` may see.
pub(super) async fn accounts_in_scope(admin: &Admin, caller: &Account) -> Result<Vec<Account>, ApiError> {
    Ok(accounts::list(&*admin.store).await?.into_iter().filter(|a| may_touch_account(caller, a)).collect())
}

// ----- tokens -----

async fn list_tokens(State(AdminState(admin)): State<AdminState>, caller: Caller, Path(email): Path<String>) -> Answer {
    let caller = caller.may(Permission::ManageSelf)?;
    let account = visible_account(&admin, &caller, &email).await?;
    if caller.email != account.email && !allows(caller.role, Permission::ReadAccounts) {
        return Err(forbidden());
    }
    let listed: Vec<Value> = tokens::list(&*admin.store, Some(&account.email))
        .await?
        .into_iter()
        .map(|(_, t)| json!({ "id": t.id, "email": t.email, "created": t.created, "label": t.label, "valid": t.generation == account.generation && !account.disabled }))
        .collect();
    ok(json!({ "tokens": listed }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    #[serde(default)]
    label: String,
}

async fn add_token(
    State(AdminState(admin)): State<AdminState>,
    caller: Caller,
    Path(email): Path<String>,
    body: axum::body::Bytes,
) -> Answer {
    let caller = caller.may(Permission::ManageSelf)?;
    let account = visible_account(&admin, &caller, &email).await?;
    // A token acts as its account: only the account itself, or the operator, makes one.
    if caller.email != account.email && caller.role != Role::Operator {
        return Err(forbidden());
    }
    let new: NewToken = if body.iter().all(u8::is_ascii_whitespace) { NewToken::default() } else { json_body(&body)? };
    let (token, record) = tokens::add(&*admin.store, &account.email, &new.label).await?;
    tracing::info!(account = %account.email, token = %record.id, by = %caller.email, "token added");
    created(json!({ "token": token, "id": record.id, "email": record.email, "note": "shown once: keep it now" }))
}

async fn revoke_token(State(AdminState(admin)): State<AdminState>, caller: Caller, Path(id): Path<String>) -> Answer {
    let caller = caller.may(Permission::ManageSelf)?;
    let Some((_, record)) = tokens::list(&*admin.store, None).await?.into_iter().find(|(_, t)| t.id == id.trim().to_ascii_lowercase())
    else {
        return Err(not_found("such token"));
    };
    let owner = accounts::get(&*admin.store, &record.email).await?;
    let may = caller.email == record.email
        || allows(caller.role, Permission::ManageAccounts) && owner.as_ref().is_none_or(|o| may_touch_account(&caller, o));
    if !may {
        return Err(not_found("such token"));
    }
    tokens::revoke(&*admin.store, &record.id).await?;
    tracing::info!(account = %record.email, token = %record.id, by = %caller.email, "token revoked");
    ok(json!({ "revoked": record.id }))
}
