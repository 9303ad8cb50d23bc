//! Allow and block senders at run time: the `/lists` page (one owner's entries, add
//! and remove), the "allow sender" / "block sender" actions of a quarantined message,
//! and `/api/v1/lists`. Entries live in the shared store (`rempart_state::sender_lists`)
//! where every scanner reads them on the next message.

use std::sync::Arc;

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use maud::{Markup, html};
use rempart_state::sender_lists::{self, ListEntry, ListKind, Provenance};
use serde::Deserialize;
use serde_json::json;

use super::i18n::Lang;
use super::{CsrfForm, Visit, failure, pages, percent_encode, to_login};
use crate::Console;
use crate::accounts::Account;
use crate::quarantine::Scope;

pub fn routes() -> Router<Arc<Console>> {
    Router::new()
        .route("/lists", get(page).post(change))
        .route("/quarantine/{id}/list/{kind}", post(from_message))
        .route("/api/v1/lists", get(api_list).post(api_change))
}

/// Why a list change was refused.
#[derive(Debug, thiserror::Error)]
pub enum ListChangeError {
    #[error(transparent)]
    Invalid(#[from] sender_lists::NotAnAddressOrDomain),
    #[error("you may not edit the lists of {0}")]
    NotYours(String),
    #[error("kind must be allow or block")]
    Kind,
    #[error(transparent)]
    Store(#[from] rempart_state::StoreError),
}

/// Adds or removes `sender` on `owner`'s `kind` list, if `account` may.
pub async fn apply(console: &Console, account: &Account, change: &ListChange) -> Result<(), ListChangeError> {
    let owner = sender_lists::normalize(&change.owner)?;
    if !crate::roles::allows(account.role, crate::roles::Permission::EditLists) || !Scope::of(account).may_own(&owner) {
        return Err(ListChangeError::NotYours(owner));
    }
    let kind = ListKind::parse(&change.kind).ok_or(ListChangeError::Kind)?;
    let sender = sender_lists::normalize(&change.sender)?;
    let store = &*console.state.store;
    if change.remove {
        sender_lists::remove(store, &owner, kind, &sender).await?;
    } else {
        let provenance = Provenance { added_by: account.email.clone(), at: rempart_model::date::unix_now() };
        sender_lists::add(store, &owner, kind, &sender, &provenance).await?;
    }
    tracing::info!(account = %account.email, %owner, kind = kind.as_str(), %sender, remove = change.remove, "sender list changed");
    Ok(())
}

#[derive(Debug, Default, Deserialize)]
pub struct ListChange {
    #[serde(default)]
    pub owner: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub sender: String,
    #[serde(default)]
    pub remove: bool,
    #[serde(default)]
    pub csrf: String,
}

#[derive(Debug, Default, Deserialize)]
struct OwnerParam {
    #[serde(default)]
    owner: String,
    lang: Option<String>,
    done: Option<String>,
}

/// The owners offered on the page: a user's addresses, a domain admin's domains.
fn own_owners(account: &Account) -> Vec<String> {
    match Scope::of(account) {
        crate::quarantine::Scope::All => Vec::new(),
        crate::quarantine::Scope::Domains(d) | crate::quarantine::Scope::Addresses(d) => d,
    }
}

async fn page(State(console): State<Arc<Console>>, headers: HeaderMap, Query(q): Query<OwnerParam>) -> Response {
    let visit = Visit::new(&console, &headers, q.lang.as_deref()).await;
    let Some(viewer) = &visit.viewer else { return to_login() };
    let owners = own_owners(viewer);
    let owner = match sender_lists::normalize(&q.owner) {
        Ok(owner) => owner,
        Err(_) => owners.first().cloned().unwrap_or_default(),
    };
    let entries = if !owner.is_empty() && Scope::of(viewer).may_own(&owner) {
        match sender_lists::entries(&*console.state.store, &owner).await {
            Ok(entries) => entries,
            Err(e) => return failure(e),
        }
    } else {
        Vec::new()
    };
    let notice = q.done.as_deref().map(|_| visit.lang.t("list_changed"));
    let csrf = visit.csrf_token(&console);
    let view = ListsView { owners: &owners, owner: &owner, entries: &entries, notice, error: None };
    visit.page(&console, StatusCode::OK, lists_page(visit.lang, viewer, &csrf, &view))
}

async fn change(State(console): State<Arc<Console>>, headers: HeaderMap, Form(form): Form<ListChange>) -> Response {
    let visit = match Visit::posted(&console, &headers, &form.csrf).await {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    let Some(viewer) = &visit.viewer else { return to_login() };
    match apply(&console, viewer, &form).await {
        Ok(()) => Redirect::to(&format!("/lists?owner={}&done=1", percent_encode(&form.owner.trim().to_ascii_lowercase()))).into_response(),
        Err(ListChangeError::Store(e)) => failure(e),
        Err(e) => {
            let owners = own_owners(viewer);
            let error = e.to_string();
            let view = ListsView { owners: &owners, owner: form.owner.trim(), entries: &[], notice: None, error: Some(&error) };
            visit.page(&console, StatusCode::BAD_REQUEST, lists_page(visit.lang, viewer, &visit.csrf_token(&console), &view))
        }
    }
}

/// "Allow sender" / "block sender" on a quarantined message: the message's return path
/// goes on the lists of the reader's own addresses among its recipients (a user) or of
/// its recipients' domains (an administrator).
async fn from_message(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    Path((id, kind)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let (visit, viewer, entry) = match Visit::posted_entry(&console, &headers, &form.csrf, &id).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let viewer = &viewer;
    if entry.sender.is_empty() {
        return visit.notice(&console, StatusCode::BAD_REQUEST, "no_sender_to_list");
    }
    let owners = Scope::of(viewer).owners_for(&entry);
    for owner in &owners {
        let change = ListChange { owner: owner.clone(), kind: kind.clone(), sender: entry.sender.clone(), ..Default::default() };
        match apply(&console, viewer, &change).await {
            Ok(()) => {}
            Err(ListChangeError::Store(e)) => return failure(e),
            Err(_) => return visit.not_found(&console),
        }
    }
    let owner = owners.first().map(String::as_str).unwrap_or_default();
    Redirect::to(&format!("/lists?owner={}&done=1", percent_encode(owner))).into_response()
}

struct ListsView<'a> {
    owners: &'a [String],
    owner: &'a str,
    entries: &'a [ListEntry],
    notice: Option<&'a str>,
    error: Option<&'a str>,
}

fn lists_page(lang: Lang, viewer: &Account, csrf: &str, view: &ListsView<'_>) -> Markup {
    let kind_text = |kind: ListKind| lang.t(if kind == ListKind::Allow { "allowed" } else { "blocked" });
    pages::layout(
        lang,
        lang.t("lists"),
        Some((viewer, csrf)),
        html! {
            h1 { (lang.t("lists")) }
            p { (lang.t("lists_help")) }
            @if let Some(notice) = view.notice { p.notice role="status" { (notice) } }
            @if let Some(error) = view.error { p.error role="alert" { (error) } }
            form method="get" action="/lists" {
                label { (lang.t("list_owner")) " "
                    input type="text" name="owner" value=(view.owner) list="owners" id="owner";
                }
                datalist id="owners" { @for o in view.owners { option value=(o) {} } }
                " " button type="submit" { (lang.t("show")) }
            }
            @if !view.owner.is_empty() {
                h2 { (view.owner) }
                @if view.entries.is_empty() { p { (lang.t("no_entries")) } } @else {
                    table id="entries" {
                        thead { tr { th { (lang.t("sender")) } th { (lang.t("list")) } th { (lang.t("added_by")) } th {} } }
                        tbody {
                            @for e in view.entries {
                                tr {
                                    td { (e.sender) }
                                    td { (kind_text(e.kind)) }
                                    td { (e.added_by) " " (pages::when(e.at)) }
                                    td {
                                        form.inline method="post" action="/lists" {
                                            input type="hidden" name="csrf" value=(csrf);
                                            input type="hidden" name="owner" value=(e.owner);
                                            input type="hidden" name="kind" value=(e.kind.as_str());
                                            input type="hidden" name="sender" value=(e.sender);
                                            input type="hidden" name="remove" value="true";
                                            button type="submit" { (lang.t("remove")) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                form method="post" action="/lists" id="add-entry" {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="owner" value=(view.owner);
                    label { (lang.t("sender_or_domain")) " " input type="text" name="sender" required; }
                    " "
                    select name="kind" {
                        option value="allow" { (lang.t("allowed")) }
                        option value="block" { (lang.t("blocked")) }
                    }
                    " " button type="submit" { (lang.t("add")) }
                }
            }
        },
    )
}

#[derive(Debug, Default, Deserialize)]
struct ApiOwner {
    #[serde(default)]
    owner: String,
}

async fn api_list(State(console): State<Arc<Console>>, headers: HeaderMap, Query(q): Query<ApiOwner>) -> Response {
    let account = super::api::account_or_401!(console, headers);
    let owner = match sender_lists::normalize(&q.owner) {
        Ok(owner) if Scope::of(&account).may_own(&owner) => owner,
        Ok(owner) => return super::api::error(StatusCode::FORBIDDEN, &ListChangeError::NotYours(owner).to_string()),
        Err(e) => return super::api::error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    match sender_lists::entries(&*console.state.store, &owner).await {
        Ok(entries) => Json(json!({ "owner": owner, "entries": entries })).into_response(),
        Err(e) => super::api::error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

async fn api_change(State(console): State<Arc<Console>>, headers: HeaderMap, Json(change): Json<ListChange>) -> Response {
    let account = super::api::account_or_401!(console, headers);
    match apply(&console, &account, &change).await {
        Ok(()) => Json(json!({ "done": if change.remove { "removed" } else { "added" } })).into_response(),
        Err(e @ ListChangeError::NotYours(_)) => super::api::error(StatusCode::FORBIDDEN, &e.to_string()),
        Err(ListChangeError::Store(e)) => super::api::error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
        Err(e) => super::api::error(StatusCode::BAD_REQUEST, &e.to_string()),
    }
}
