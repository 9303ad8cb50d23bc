//! The domains' pages: `/domains` (the reader's domains, and adding one) and
//! `/domains/{name}` (its status, route, the DNS records to publish and whether they
//! are, its DKIM keys: generate, rotate, remove). Forms over the same operations as the
//! management API (`admin`, `dkim`), so both refuse and log alike.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use rempart_model::DomainConfig;
use rempart_state::dkim_keys::{self, DkimKey};
use rempart_state::domains::{DomainRecord, DomainStatus};
use serde::Deserialize;

use super::admin::{ApiError, NewDomain, change_domain_settings, create_domain, domains_in_scope, file_domain, visible_domain};
use super::dkim::{NewKey, generate_key};
use super::i18n::Lang;
use super::{CsrfForm, Visit, pages, percent_encode};
use crate::Console;
use crate::accounts::Account;
use crate::onboarding::DnsRecord;
use crate::roles::{Permission, allows, may_touch_domain};

pub fn routes() -> Router<Arc<Console>> {
    Router::new()
        .route("/domains", get(list).post(add))
        .route("/domains/{name}", get(show))
        .route("/domains/{name}/route", post(change_route))
        .route("/domains/{name}/verify", post(verify))
        .route("/domains/{name}/dkim", post(add_key))
        .route("/domains/{name}/dkim/{selector}/remove", post(remove_key))
}

#[derive(Debug, Default, Deserialize)]
struct PageParams {
    lang: Option<String>,
    done: Option<String>,
}

/// The notices a `?done=` may name (anything else shows nothing).
fn done_notice(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "added" => Some("domain_added"),
        "changed" => Some("domain_changed"),
        "verified" => Some("domain_verify_checked"),
        "key" => Some("key_added"),
        "key_removed" => Some("key_removed"),
        _ => None,
    }
}

async fn list(State(console): State<Arc<Console>>, headers: HeaderMap, Query(q): Query<PageParams>) -> Response {
    let visit = Visit::new(&console, &headers, q.lang.as_deref()).await;
    let viewer = match visit.signed_in(&console, Permission::ReadDomains) {
        Ok(viewer) => viewer,
        Err(response) => return *response,
    };
    render_list(&console, &visit, viewer, StatusCode::OK, done_notice(q.done.as_deref()), None).await
}

async fn render_list(
    console: &Console,
    visit: &Visit,
    viewer: &Account,
    status: StatusCode,
    notice: Option<&'static str>,
    error: Option<String>,
) -> Response {
    let (file, stored) = match domains_in_scope(&console.admin, viewer).await {
        Ok(found) => found,
        Err(ApiError(_, e)) => return super::failure(e),
    };
    let csrf = visit.csrf_token(console);
    visit.page(console, status, list_page(visit.lang, viewer, &csrf, &file, &stored, notice, error.as_deref()))
}

#[derive(Debug, Default, Deserialize)]
struct AddForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    route: String,
    #[serde(default)]
    tenant: String,
}

async fn add(State(console): State<Arc<Console>>, headers: HeaderMap, Form(form): Form<AddForm>) -> Response {
    let (visit, viewer) = match Visit::posted_by(&console, &headers, &form.csrf, Permission::ManageDomains).await {
        Ok(signed) => signed,
        Err(response) => return *response,
    };
    let viewer = &viewer;
    let tenant = Some(form.tenant.trim().to_string()).filter(|t| !t.is_empty());
    let new = NewDomain {
        name: form.name.trim().to_ascii_lowercase(),
        route: form.route.trim().to_string(),
        tenant,
        settings: Default::default(),
    };
    match create_domain(&console.admin, viewer, new).await {
        Ok(record) => Redirect::to(&format!("/domains/{}?done=added", percent_encode(record.name()))).into_response(),
        Err(ApiError(status, e)) => render_list(&console, &visit, viewer, status, None, Some(e)).await,
    }
}

/// A domain as the page shows it: the store's record, or a file domain dressed as one
/// (active, read-only).
struct Shown {
    record: DomainRecord,
    from_file: bool,
}

async fn shown(console: &Console, viewer: &Account, name: &str) -> Result<Shown, ApiError> {
    if let Some(domain) = file_domain(&console.admin, name).filter(|d| may_touch_domain(viewer, &d.name, None)) {
        return Ok(Shown { record: file_record(domain), from_file: true });
    }
    Ok(Shown { record: visible_domain(&console.admin, viewer, name).await?, from_file: false })
}

fn file_record(config: DomainConfig) -> DomainRecord {
    DomainRecord {
        config,
        tenant: None,
        status: DomainStatus::Active,
        verify_token: String::new(),
        added_by: "configuration file".into(),
        created: 0,
        verified_at: None,
    }
}

async fn show(State(console): State<Arc<Console>>, headers: HeaderMap, Path(name): Path<String>, Query(q): Query<PageParams>) -> Response {
    let visit = Visit::new(&console, &headers, q.lang.as_deref()).await;
    let viewer = match visit.signed_in(&console, Permission::ReadDomains) {
        Ok(viewer) => viewer,
        Err(response) => return *response,
    };
    render_detail(&console, &visit, viewer, &name, StatusCode::OK, done_notice(q.done.as_deref()), None).await
}

async fn render_detail(
    console: &Console,
    visit: &Visit,
    viewer: &Account,
    name: &str,
    status: StatusCode,
    notice: Option<&'static str>,
    error: Option<String>,
) -> Response {
    let shown = match shown(console, viewer, name).await {
        Ok(shown) => shown,
        Err(ApiError(StatusCode::NOT_FOUND, _)) => return visit.not_found(console),
        Err(ApiError(_, e)) => return super::failure(e),
    };
    let keys = match dkim_keys::list(&*console.state.store, Some(shown.record.name())).await {
        Ok(keys) => keys,
        Err(e) => return super::failure(e),
    };
    let mut records = console.admin.onboarding.records(&shown.record, &keys).await;
    if shown.record.status == DomainStatus::Active {
        // The proof of control is done (or, for the file's domains, not asked).
        records.retain(|r| !r.name.starts_with("_rempart-verify."));
    }
    let csrf = visit.csrf_token(console);
    let view = DetailView { shown: &shown, records: &records, keys: &keys, notice, error: error.as_deref() };
    visit.page(console, status, detail_page(visit.lang, viewer, &csrf, &view))
}

#[derive(Debug, Default, Deserialize)]
struct RouteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    route: String,
}

async fn change_route(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(form): Form<RouteForm>,
) -> Response {
    let (visit, viewer) = match Visit::posted_by(&console, &headers, &form.csrf, Permission::ManageDomains).await {
        Ok(signed) => signed,
        Err(response) => return *response,
    };
    let viewer = &viewer;
    let mut changes = serde_json::Map::new();
    changes.insert("route".into(), serde_json::Value::String(form.route.trim().to_string()));
    match change_domain_settings(&console.admin, viewer, &name, changes).await {
        Ok(record) => Redirect::to(&format!("/domains/{}?done=changed", percent_encode(record.name()))).into_response(),
        Err(ApiError(status, e)) => render_detail(&console, &visit, viewer, &name, status, None, Some(e)).await,
    }
}

async fn verify(State(console): State<Arc<Console>>, headers: HeaderMap, Path(name): Path<String>, Form(form): Form<CsrfForm>) -> Response {
    let (visit, viewer) = match Visit::posted_by(&console, &headers, &form.csrf, Permission::ManageDomains).await {
        Ok(signed) => signed,
        Err(response) => return *response,
    };
    let viewer = &viewer;
    let record = match visible_domain(&console.admin, viewer, &name).await {
        Ok(record) => record,
        Err(_) => return visit.not_found(&console),
    };
    match console.admin.onboarding.verify(&*console.state.store, record).await {
        Ok(record) => Redirect::to(&format!("/domains/{}?done=verified", percent_encode(record.name()))).into_response(),
        Err(e) => render_detail(&console, &visit, viewer, &name, StatusCode::SERVICE_UNAVAILABLE, None, Some(e)).await,
    }
}

#[derive(Debug, Default, Deserialize)]
struct KeyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    algorithm: String,
    #[serde(default)]
    selector: String,
    /// Present: a rotation.
    #[serde(default)]
    rotate: Option<String>,
}

async fn add_key(State(console): State<Arc<Console>>, headers: HeaderMap, Path(name): Path<String>, Form(form): Form<KeyForm>) -> Response {
    let (visit, viewer) = match Visit::posted_by(&console, &headers, &form.csrf, Permission::ManageDomains).await {
        Ok(signed) => signed,
        Err(response) => return *response,
    };
    let viewer = &viewer;
    let selector = Some(form.selector.trim().to_string()).filter(|s| !s.is_empty());
    let new = NewKey { selector, algorithm: Some(form.algorithm), overlap_hours: None };
    match generate_key(&console.admin, viewer, &name, new, form.rotate.is_some()).await {
        Ok(key) => Redirect::to(&format!("/domains/{}?done=key#dkim", percent_encode(&key.domain))).into_response(),
        Err(ApiError(status, e)) => render_detail(&console, &visit, viewer, &name, status, None, Some(e)).await,
    }
}

async fn remove_key(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    Path((name, selector)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let (visit, viewer) = match Visit::posted_by(&console, &headers, &form.csrf, Permission::ManageDomains).await {
        Ok(signed) => signed,
        Err(response) => return *response,
    };
    let viewer = &viewer;
    let domain = match shown(&console, viewer, &name).await {
        Ok(shown) => shown.record.config.name,
        Err(_) => return visit.not_found(&console),
    };
    match dkim_keys::remove(&*console.state.store, &domain, &selector).await {
        Ok(()) => {
            tracing::info!(%domain, %selector, by = %viewer.email, "DKIM key removed");
            Redirect::to(&format!("/domains/{}?done=key_removed#dkim", percent_encode(&domain))).into_response()
        }
        Err(e) => render_detail(&console, &visit, viewer, &name, StatusCode::NOT_FOUND, None, Some(e.to_string())).await,
    }
}

fn status_text(lang: Lang, status: DomainStatus) -> &'static str {
    match status {
        DomainStatus::Active => lang.t("domain_active"),
        DomainStatus::Pending => lang.t("domain_pending"),
    }
}

fn list_page(
    lang: Lang,
    viewer: &Account,
    csrf: &str,
    file: &[DomainConfig],
    stored: &[DomainRecord],
    notice: Option<&'static str>,
    error: Option<&str>,
) -> Markup {
    let manages = allows(viewer.role, Permission::ManageDomains);
    pages::layout(
        lang,
        lang.t("domains"),
        Some((viewer, csrf)),
        html! {
            h1 { (lang.t("domains")) }
            @if let Some(notice) = notice { p.notice role="status" { (lang.t(notice)) } }
            @if let Some(error) = error { p.error role="alert" { (error) } }
            @if file.is_empty() && stored.is_empty() {
                p { (lang.t("no_domains")) }
            } @else {
                table #domains {
                    thead { tr { th { (lang.t("domain")) } th { (lang.t("status")) } th { (lang.t("source")) } th { (lang.t("tenant")) } th { (lang.t("route")) } } }
                    tbody {
                        @for domain in file {
                            tr {
                                td { a href={ "/domains/" (percent_encode(&domain.name)) } { (domain.name) } }
                                td { (status_text(lang, DomainStatus::Active)) }
                                td { (lang.t("from_file")) }
                                td { "—" }
                                td { (domain.route.to_string()) }
                            }
                        }
                        @for record in stored {
                            tr {
                                td { a href={ "/domains/" (percent_encode(record.name())) } { (record.name()) } }
                                td { (status_text(lang, record.status)) }
                                td { (lang.t("managed_here")) }
                                td { (record.tenant.as_deref().unwrap_or("—")) }
                                td { (record.config.route.to_string()) }
                            }
                        }
                    }
                }
            }
            @if manages {
                h2 { (lang.t("add_domain")) }
                form method="post" action="/domains" {
                    input type="hidden" name="csrf" value=(csrf);
                    p { label { (lang.t("domain")) br; input name="name" id="domain-name" required placeholder="example.com"; } }
                    p { label { (lang.t("route")) br; input name="route" id="domain-route" required placeholder="smtp://mail.example.com:25"; } }
                    @if viewer.role == crate::accounts::Role::Operator {
                        p { label { (lang.t("tenant_optional")) br; input name="tenant" id="domain-tenant"; } }
                    }
                    button type="submit" id="domain-add" { (lang.t("add")) }
                }
            }
        },
    )
}

struct DetailView<'a> {
    shown: &'a Shown,
    records: &'a [DnsRecord],
    keys: &'a [DkimKey],
    notice: Option<&'static str>,
    error: Option<&'a str>,
}

fn published_text(lang: Lang, published: Option<bool>) -> &'static str {
    match published {
        Some(true) => lang.t("published"),
        Some(false) => lang.t("missing"),
        None => lang.t("not_checked"),
    }
}

fn detail_page(lang: Lang, viewer: &Account, csrf: &str, view: &DetailView<'_>) -> Markup {
    let record = &view.shown.record;
    let name = record.name();
    let base = format!("/domains/{}", percent_encode(name));
    let manages = allows(viewer.role, Permission::ManageDomains);
    let editable = manages && !view.shown.from_file;
    pages::layout(
        lang,
        name,
        Some((viewer, csrf)),
        html! {
            p { a href="/domains" { "← " (lang.t("domains")) } }
            h1 { (name) }
            @if let Some(notice) = view.notice { p.notice role="status" { (lang.t(notice)) } }
            @if let Some(error) = view.error { p.error role="alert" { (error) } }
            table {
                tr { th { (lang.t("status")) } td #domain-status { (status_text(lang, record.status)) } }
                tr { th { (lang.t("source")) } td { (lang.t(if view.shown.from_file { "from_file" } else { "managed_here" })) } }
                @if let Some(tenant) = &record.tenant { tr { th { (lang.t("tenant")) } td { (tenant) } } }
                tr { th { (lang.t("route")) } td {
                    @if editable {
                        form.inline method="post" action={ (base) "/route" } {
                            input type="hidden" name="csrf" value=(csrf);
                            input name="route" value=(record.config.route.to_string()) size="40" required;
                            " " button type="submit" id="route-save" { (lang.t("save")) }
                        }
                    } @else {
                        (record.config.route.to_string())
                    }
                } }
            }
            @if record.status == DomainStatus::Pending {
                p.notice { (lang.t("pending_explain")) }
                @if manages {
                    form method="post" action={ (base) "/verify" } {
                        input type="hidden" name="csrf" value=(csrf);
                        button type="submit" id="verify" { (lang.t("verify_now")) }
                    }
                }
            }
            h2 #dns { (lang.t("dns_records")) }
            table #dns-records {
                thead { tr { th { (lang.t("type")) } th { (lang.t("name")) } th { (lang.t("value")) } th { (lang.t("purpose")) } th { (lang.t("status")) } } }
                tbody {
                    @for r in view.records {
                        tr {
                            td { (r.kind) } td { code { (r.name) } } td { code style="word-break:break-all" { (r.value) } }
                            td { (r.purpose) } td { (published_text(lang, r.published)) }
                        }
                    }
                }
            }
            h2 #dkim { (lang.t("dkim_keys")) }
            @if view.keys.is_empty() {
                p { (lang.t("no_keys")) }
            } @else {
                table #dkim-keys {
                    thead { tr { th { (lang.t("selector")) } th { (lang.t("algorithm")) } th { (lang.t("status")) } th { "TXT" } th {} } }
                    tbody {
                        @for key in view.keys {
                            tr {
                                td { (key.selector) }
                                td { (format!("{:?}", key.algorithm).to_lowercase()) }
                                td { @if let Some(at) = key.retire_at { (lang.t("retiring")) " " (pages::when(at)) } @else { (lang.t("signing")) } }
                                td { code { (key.record_name()) } br; code.dkim-record style="word-break:break-all" { (key.record) } }
                                td { @if manages {
                                    form.inline method="post" action={ (base) "/dkim/" (percent_encode(&key.selector)) "/remove" } {
                                        input type="hidden" name="csrf" value=(csrf);
                                        button type="submit" { (lang.t("remove")) }
                                    }
                                } }
                            }
                        }
                    }
                }
            }
            @if manages {
                form method="post" action={ (base) "/dkim" } {
                    input type="hidden" name="csrf" value=(csrf);
                    label { (lang.t("algorithm")) " "
                        select name="algorithm" id="dkim-algorithm" {
                            option value="rsa" selected { "RSA-2048" }
                            option value="ed25519" { "Ed25519" }
                        }
                    } " "
                    label { (lang.t("selector")) " " input name="selector" id="dkim-selector" size="12" placeholder="rs20261207"; } " "
                    button type="submit" id="dkim-generate" { (lang.t("generate_key")) } " "
                    @if !view.keys.is_empty() {
                        button type="submit" name="rotate" value="1" id="dkim-rotate" { (lang.t("rotate_key")) }
                    }
                }
            }
        },
    )
}
