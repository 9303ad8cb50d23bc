//! `/accounts`: the accounts a reader may see (staff: all; a tenant admin: their
//! tenant's), and for those who administer them, adding one, disabling or enabling,
//! setting a new password, removing the second factor (a lost phone) and deleting. The
//! same operations as the management API (`admin`).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;

use super::accounts_api::{
    AccountChange, NewAccount, accounts_in_scope, change_account_as, create_account, remove_account, visible_account,
};
use super::admin::ApiError;
use super::i18n::Lang;
use super::{Visit, pages, percent_encode};
use crate::Console;
use crate::accounts::{Account, Role};
use crate::roles::{Permission, allows};

pub fn routes() -> Router<Arc<Console>> {
    Router::new().route("/accounts", get(list).post(add)).route("/accounts/{email}/{action}", post(act))
}

#[derive(Debug, Default, Deserialize)]
struct PageParams {
    lang: Option<String>,
    done: Option<String>,
}

async fn list(State(console): State<Arc<Console>>, headers: HeaderMap, Query(q): Query<PageParams>) -> Response {
    let visit = Visit::new(&console, &headers, q.lang.as_deref()).await;
    let viewer = match visit.signed_in(&console, Permission::ReadAccounts) {
        Ok(viewer) => viewer,
        Err(response) => return *response,
    };
    let notice = match q.done.as_deref() {
        Some("added") => Some("account_added"),
        Some("changed") => Some("account_changed"),
        Some("deleted") => Some("account_deleted"),
        _ => None,
    };
    render(&console, &visit, viewer, StatusCode::OK, notice, None).await
}

async fn render(
    console: &Console,
    visit: &Visit,
    viewer: &Account,
    status: StatusCode,
    notice: Option<&'static str>,
    error: Option<String>,
) -> Response {
    let listed = match accounts_in_scope(&console.admin, viewer).await {
        Ok(listed) => listed,
        Err(ApiError(_, e)) => return super::failure(e),
    };
    let csrf = visit.csrf_token(console);
    visit.page(console, status, accounts_page(visit.lang, viewer, &csrf, &listed, notice, error.as_deref()))
}

#[derive(Debug, Default, Deserialize)]
struct AddForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    password: String,
}

async fn add(State(console): State<Arc<Console>>, headers: HeaderMap, Form(form): Form<AddForm>) -> Response {
    let (visit, viewer) = match Visit::posted_by(&console, &headers, &form.csrf, Permission::ManageAccounts).await {
        Ok(signed) => signed,
        Err(response) => return *response,
    };
    let new = NewAccount {
        email: form.email.trim().to_string(),
        role: if form.role.is_empty() { "user".into() } else { form.role },
        tenant: Some(form.tenant.trim().to_string()).filter(|t| !t.is_empty()),
        domains: Vec::new(),
        aliases: Vec::new(),
        password: form.password,
    };
    match create_account(&console.admin, &viewer, new).await {
        Ok(_) => Redirect::to("/accounts?done=added").into_response(),
        Err(ApiError(status, e)) => render(&console, &visit, &viewer, status, None, Some(e)).await,
    }
}

#[derive(Debug, Default, Deserialize)]
struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
}

async fn act(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    Path((email, action)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Response {
    let (visit, viewer) = match Visit::posted_by(&console, &headers, &form.csrf, Permission::ManageAccounts).await {
        Ok(signed) => signed,
        Err(response) => return *response,
    };
    let change = |change: AccountChange| change_account_as(&console.admin, &viewer, &email, change);
    let done = match action.as_str() {
        "disable" => change(AccountChange { disabled: Some(true), ..AccountChange::default() }).await.map(|_| "changed"),
        "enable" => change(AccountChange { disabled: Some(false), ..AccountChange::default() }).await.map(|_| "changed"),
        "password" => change(AccountChange { password: Some(form.password), ..AccountChange::default() }).await.map(|_| "changed"),
        "second-factor" => reset_second_factor(&console, &viewer, &email).await.map(|_| "changed"),
        "delete" => remove_account(&console.admin, &viewer, &email).await.map(|_| "deleted"),
        _ => return visit.not_found(&console),
    };
    match done {
        Ok(done) => Redirect::to(&format!("/accounts?done={done}")).into_response(),
        Err(ApiError(status, e)) => render(&console, &visit, &viewer, status, None, Some(e)).await,
    }
}

async fn reset_second_factor(console: &Console, viewer: &Account, email: &str) -> Result<(), ApiError> {
    let account = visible_account(&console.admin, viewer, email).await?;
    if account.email == viewer.email {
        return Err(ApiError(StatusCode::FORBIDDEN, "your own second factor is on /account".into()));
    }
    rempart_state::second_factor::remove(&*console.state.store, &account.email).await?;
    tracing::info!(account = %account.email, by = %viewer.email, "second factor removed");
    Ok(())
}

fn state_text(lang: Lang, account: &Account) -> String {
    let mut state = vec![lang.t(if account.disabled { "account_disabled" } else { "account_enabled" })];
    if account.suspended {
        state.push(lang.t("account_suspended"));
    }
    if account.totp_confirmed {
        state.push(lang.t("account_second_factor"));
    }
    state.join(", ")
}

fn accounts_page(
    lang: Lang,
    viewer: &Account,
    csrf: &str,
    listed: &[Account],
    notice: Option<&'static str>,
    error: Option<&str>,
) -> Markup {
    let manages = allows(viewer.role, Permission::ManageAccounts);
    let roles: &[&str] = if viewer.role == Role::Operator {
        &["user", "tenant-admin", "helpdesk", "auditor", "operator"]
    } else {
        &["user", "tenant-admin"]
    };
    pages::layout(
        lang,
        lang.t("accounts"),
        Some((viewer, csrf)),
        html! {
            h1 { (lang.t("accounts")) }
            @if let Some(notice) = notice { p.notice role="status" { (lang.t(notice)) } }
            @if let Some(error) = error { p.error role="alert" { (error) } }
            table #accounts {
                thead { tr { th { (lang.t("email")) } th { (lang.t("role")) } th { (lang.t("tenant")) } th { (lang.t("status")) } @if manages { th {} } } }
                tbody {
                    @for account in listed {
                        @let base = format!("/accounts/{}", percent_encode(&account.email));
                        tr {
                            td { (account.email) }
                            td { (account.role.as_str()) }
                            td { (account.tenant.as_deref().unwrap_or("—")) }
                            td { (state_text(lang, account)) }
                            @if manages && account.email != viewer.email {
                                td {
                                    form.inline method="post" action={ (base) (if account.disabled { "/enable" } else { "/disable" }) } {
                                        input type="hidden" name="csrf" value=(csrf);
                                        button type="submit" { (lang.t(if account.disabled { "enable" } else { "disable" })) }
                                    } " "
                                    form.inline method="post" action={ (base) "/password" } {
                                        input type="hidden" name="csrf" value=(csrf);
                                        input type="password" name="password" size="12" minlength="10" required autocomplete="new-password" placeholder=(lang.t("new_password_short"));
                                        button type="submit" { (lang.t("set_password")) }
                                    } " "
                                    @if account.totp_confirmed {
                                        form.inline method="post" action={ (base) "/second-factor" } {
                                            input type="hidden" name="csrf" value=(csrf);
                                            button type="submit" { (lang.t("totp_reset")) }
                                        } " "
                                    }
                                    form.inline method="post" action={ (base) "/delete" } {
                                        input type="hidden" name="csrf" value=(csrf);
                                        button type="submit" { (lang.t("delete")) }
                                    }
                                }
                            } @else if manages {
                                td {}
                            }
                        }
                    }
                }
            }
            @if manages {
                h2 { (lang.t("add_account")) }
                form method="post" action="/accounts" {
                    input type="hidden" name="csrf" value=(csrf);
                    p { label { (lang.t("email")) br; input type="email" name="email" id="account-email" required; } }
                    p { label { (lang.t("role")) br;
                        select name="role" id="account-role" { @for role in roles { option value=(role) { (role) } } }
                    } }
                    @if viewer.role == Role::Operator {
                        p { label { (lang.t("tenant_optional")) br; input name="tenant" id="account-tenant"; } }
                    }
                    p { label { (lang.t("new_password")) br; input type="password" name="password" id="account-password" required minlength="10" autocomplete="new-password"; } }
                    button type="submit" id="account-add" { (lang.t("add")) }
                }
            }
        },
    )
}
