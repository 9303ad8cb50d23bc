//! `/api/v1`: the quarantine and the why records as JSON, for scripts and customer
//! portals. `Authorization: Bearer <token>`; a token stands for an account (same
//! scope) and is stored only as its SHA-256 (`rempart console token add`).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rempart_state::{Store, StoreError};
use serde_json::json;

use super::{ListParams, PAGE_SIZE, visible_entry};
use crate::accounts::{self, Account};
use crate::quarantine::{Entry, QuarantineError, Scope};
use crate::roles::Permission;
use crate::{Console, ConsoleError};

pub fn routes() -> Router<Arc<Console>> {
    Router::new()
        .route("/api/v1/quarantine", get(list))
        .route("/api/v1/quarantine/{id}", get(show))
        .route("/api/v1/quarantine/{id}/{action}", post(act))
        .route("/api/v1/why/{id}", get(why))
}

pub(super) fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

pub(super) async fn bearer(store: &dyn Store, headers: &HeaderMap) -> Result<Option<Account>, StoreError> {
    let Some(token) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")) else {
        return Ok(None);
    };
    let Some(account) = crate::tokens::account(store, token).await? else { return Ok(None) };
    Ok(accounts::with_tenant_domains(store, account).await.ok())
}

macro_rules! account_or_401 {
    ($console:expr, $headers:expr) => {
        match $crate::web::api::bearer(&*$console.state.store, &$headers).await {
            Ok(Some(account)) => account,
            Ok(None) => {
                return $crate::web::api::error(axum::http::StatusCode::UNAUTHORIZED, "a valid bearer token is required");
            }
            Err(e) => return $crate::web::api::error(axum::http::StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
        }
    };
}
pub(super) use account_or_401;

/// An entry without its envelope's session details.
fn summary(e: &Entry) -> serde_json::Value {
    json!({
        "queue_id": e.queue_id, "at": e.at, "sender": e.sender, "recipients": e.recipients,
        "subject": e.subject, "score": e.score, "action": e.action, "status": e.status, "size": e.size,
        "symbols": e.symbols, "released": e.released, "released_to": e.released_to,
    })
}

async fn list(State(console): State<Arc<Console>>, headers: HeaderMap, Query(params): Query<ListParams>) -> Response {
    let account = account_or_401!(console, headers);
    let (store, scope, search, page) = (console.quarantine.clone(), Scope::of(&account), params.search(), params.page);
    match crate::blocking(move || store.list(&scope, &search, page, PAGE_SIZE)).await {
        Ok(found) => Json(json!({
            "page": page,
            "has_more": found.has_more,
            "messages": found.entries.iter().map(summary).collect::<Vec<_>>(),
        }))
        .into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

async fn show(State(console): State<Arc<Console>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let account = account_or_401!(console, headers);
    match visible_entry(&console, &account, &id).await {
        Ok(Some(entry)) => Json(summary(&entry)).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no such message in your quarantine"),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

async fn act(State(console): State<Arc<Console>>, headers: HeaderMap, Path((id, action)): Path<(String, String)>) -> Response {
    let account = account_or_401!(console, headers);
    match visible_entry(&console, &account, &id).await {
        Ok(Some(_)) => {}
        Ok(None) => return error(StatusCode::NOT_FOUND, "no such message in your quarantine"),
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
    let permission = if action == "release" { Permission::ReleaseMail } else { Permission::DeleteMail };
    if !crate::roles::allows(account.role, permission) {
        return error(StatusCode::FORBIDDEN, "your role does not allow this");
    }
    let result = match action.as_str() {
        "release" => console.release(&id, &Scope::of(&account), &account.email).await.map(|_| "released"),
        "delete" => console.delete(&id, &Scope::of(&account), &account.email, false).await.map(|_| "deleted"),
        "spam" => console.delete(&id, &Scope::of(&account), &account.email, true).await.map(|_| "learned as spam and deleted"),
        _ => return error(StatusCode::NOT_FOUND, "actions: release, delete, spam"),
    };
    match result {
        Ok(done) => Json(json!({ "queue_id": id, "done": done })).into_response(),
        Err(ConsoleError::Quarantine(e @ QuarantineError::NotHeld { .. })) => error(StatusCode::CONFLICT, &e.to_string()),
        Err(ConsoleError::Quarantine(e @ QuarantineError::NotFound(_))) => error(StatusCode::NOT_FOUND, &e.to_string()),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

/// Public, like the page: a refusal's record names domains only.
async fn why(State(console): State<Arc<Console>>, Path(id): Path<String>) -> Response {
    match rempart_state::verdicts::get(&*console.state.store, &id).await {
        Ok(Some(record)) => Json(record).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no refusal known under this reference (kept 7 days)"),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}
