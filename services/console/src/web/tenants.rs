//! `/tenants`: the customers (staff read them, the operator adds, changes and removes
//! them): each with its domains, and whether its accounts must use a second factor.
//! The same operations as the management API (`admin`).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use rempart_state::domains::{self, Tenant};
use serde::Deserialize;

use super::admin::{ApiError, NewTenant, TenantChange, change_tenant_as, create_tenant, remove_tenant, tenants_in_scope};
use super::i18n::Lang;
use super::{CsrfForm, Visit, pages, percent_encode};
use crate::Console;
use crate::accounts::Account;
use crate::roles::{Permission, allows};

pub fn routes() -> Router<Arc<Console>> {
    Router::new().route("/tenants", get(list).post(add)).route("/tenants/{id}/{action}", post(act))
}

#[derive(Debug, Default, Deserialize)]
struct PageParams {
    lang: Option<String>,
    done: Option<String>,
}

async fn list(State(console): State<Arc<Console>>, headers: HeaderMap, Query(q): Query<PageParams>) -> Response {
    let visit = Visit::new(&console, &headers, q.lang.as_deref()).await;
    let viewer = match visit.signed_in(&console, Permission::ReadTenants) {
        Ok(viewer) => viewer,
        Err(response) => return *response,
    };
    let notice = q.done.as_deref().map(|_| "tenant_changed");
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
    let tenants = match tenants_in_scope(&console.admin, viewer).await {
        Ok(tenants) => tenants,
        Err(ApiError(_, e)) => return super::failure(e),
    };
    let mut rows = Vec::new();
    for tenant in tenants {
        let owned = domains::tenant_domains(&*console.state.store, &tenant.id).await.unwrap_or_default();
        rows.push((tenant, owned));
    }
    let csrf = visit.csrf_token(console);
    visit.page(console, status, tenants_page(visit.lang, viewer, &csrf, &rows, notice, error.as_deref()))
}

#[derive(Debug, Default, Deserialize)]
struct AddForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    require_totp: Option<String>,
}

async fn add(State(console): State<Arc<Console>>, headers: HeaderMap, Form(form): Form<AddForm>) -> Response {
    let (visit, viewer) = match Visit::posted_by(&console, &headers, &form.csrf, Permission::ManageTenants).await {
        Ok(signed) => signed,
        Err(response) => return *response,
    };
    let new = NewTenant { id: form.id.trim().to_string(), name: form.name, require_totp: form.require_totp.is_some() };
    match create_tenant(&console.admin, &viewer, new).await {
        Ok(_) => Redirect::to("/tenants?done=added").into_response(),
        Err(ApiError(status, e)) => render(&console, &visit, &viewer, status, None, Some(e)).await,
    }
}

async fn act(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let (visit, viewer) = match Visit::posted_by(&console, &headers, &form.csrf, Permission::ManageTenants).await {
        Ok(signed) => signed,
        Err(response) => return *response,
    };
    let totp = |require: bool| TenantChange { require_totp: Some(require), ..TenantChange::default() };
    let done = match action.as_str() {
        "require-totp" => change_tenant_as(&console.admin, &viewer, &id, totp(true)).await.map(|_| ()),
        "allow-password" => change_tenant_as(&console.admin, &viewer, &id, totp(false)).await.map(|_| ()),
        "delete" => remove_tenant(&console.admin, &viewer, &id).await.map(|_| ()),
        _ => return visit.not_found(&console),
    };
    match done {
        Ok(()) => Redirect::to("/tenants?done=changed").into_response(),
        Err(ApiError(status, e)) => render(&console, &visit, &viewer, status, None, Some(e)).await,
    }
}

fn tenants_page(
    lang: Lang,
    viewer: &Account,
    csrf: &str,
    rows: &[(Tenant, Vec<String>)],
    notice: Option<&'static str>,
    error: Option<&str>,
) -> Markup {
    let manages = allows(viewer.role, Permission::ManageTenants);
    pages::layout(
        lang,
        lang.t("tenants"),
        Some((viewer, csrf)),
        html! {
            h1 { (lang.t("tenants")) }
            @if let Some(notice) = notice { p.notice role="status" { (lang.t(notice)) } }
            @if let Some(error) = error { p.error role="alert" { (error) } }
            table #tenants {
                thead { tr { th { "id" } th { (lang.t("name")) } th { (lang.t("domains")) } th { (lang.t("second_factor")) } @if manages { th {} } } }
                tbody {
                    @for (tenant, owned) in rows {
                        @let base = format!("/tenants/{}", percent_encode(&tenant.id));
                        tr {
                            td { (tenant.id) }
                            td { (tenant.name) }
                            td { @for (i, domain) in owned.iter().enumerate() {
                                @if i > 0 { ", " }
                                a href={ "/domains/" (percent_encode(domain)) } { (domain) }
                            } }
                            td { (lang.t(if tenant.require_totp { "tenant_totp_required" } else { "tenant_totp_optional" })) }
                            @if manages {
                                td {
                                    form.inline method="post" action={ (base) (if tenant.require_totp { "/allow-password" } else { "/require-totp" }) } {
                                        input type="hidden" name="csrf" value=(csrf);
                                        button type="submit" { (lang.t(if tenant.require_totp { "tenant_make_optional" } else { "tenant_require" })) }
                                    } " "
                                    form.inline method="post" action={ (base) "/delete" } {
                                        input type="hidden" name="csrf" value=(csrf);
                                        button type="submit" { (lang.t("delete")) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if manages {
                h2 { (lang.t("add_tenant")) }
                form method="post" action="/tenants" {
                    input type="hidden" name="csrf" value=(csrf);
                    p { label { "id" br; input name="id" id="tenant-id" required pattern="[A-Za-z0-9_-]{1,64}"; } }
                    p { label { (lang.t("name")) br; input name="name" id="tenant-name"; } }
                    p { label { input type="checkbox" name="require_totp" value="1"; " " (lang.t("tenant_require")) } }
                    button type="submit" id="tenant-add" { (lang.t("add")) }
                }
            }
        },
    )
}
