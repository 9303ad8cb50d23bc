//! The console over HTTP: the portal's pages (forms, no script), the public `/why/`
//! pages and the JSON API under `/api/v1` (bearer tokens). Every state change is a
//! POST carrying a CSRF token; every route checks the reader's scope.

pub mod account;
pub mod account_list;
pub mod accounts_api;
pub mod admin;
pub mod advice;
pub mod api;
pub mod auth;
pub mod dkim;
pub mod domains;
pub mod i18n;
pub mod lists;
pub mod pages;
pub mod quarantine;
pub mod queue;
pub mod reports;
pub mod tenants;
pub mod tracking;

pub use quarantine::ListParams;
pub(crate) use quarantine::{entry_in_scope, visible_entry};

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::Markup;
use serde::Deserialize;

use crate::accounts::{self, Account, Login};
use crate::quarantine::{Entry, QuarantineError, Scope};
use crate::roles::Permission;
use crate::{Console, ConsoleError};
use auth::{CSRF_COOKIE, SESSION_COOKIE, SESSION_SECONDS};
use i18n::Lang;

pub const PAGE_SIZE: usize = 50;

pub fn router(console: Arc<Console>) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/quarantine") }))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .merge(quarantine::routes())
        .route("/why/{id}", get(why))
        .route("/d/{id}", get(digest_link).post(digest_release))
        .merge(api::routes())
        .merge(admin::routes())
        .merge(lists::routes())
        .merge(reports::routes())
        .merge(account::routes())
        .merge(domains::routes())
        .merge(account_list::routes())
        .merge(tenants::routes())
        .merge(tracking::routes())
        .merge(tracking::api_routes())
        .merge(queue::routes())
        .merge(queue::api_routes())
        .layer(axum::middleware::from_fn_with_state(console.clone(), account::gate))
        .layer(axum::middleware::map_response(secure_headers))
        .layer(axum::middleware::from_fn(contain_panics))
        .with_state(console)
}

/// A handler that panics answers 500 (a page, not a dropped connection); the panic is
/// logged and counted, and the console goes on serving.
async fn contain_panics(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use futures_util::FutureExt;
    let path = request.uri().path().to_string();
    match std::panic::AssertUnwindSafe(next.run(request)).catch_unwind().await {
        Ok(response) => response,
        Err(panic) => {
            let panic = rempart_telemetry::metrics().panic("console", &*panic);
            tracing::error!(%path, panic, "a console handler panicked");
            (StatusCode::INTERNAL_SERVER_ERROR, "Internal error: the console could not answer this request.").into_response()
        }
    }
}

/// Serves the console on `listen` until `shutdown` resolves.
pub async fn serve(
    console: Arc<Console>,
    listen: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<SocketAddr, ConsoleError> {
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|source| ConsoleError::Listen { addr: listen, source })?;
    let local = listener.local_addr().map_err(|source| ConsoleError::Listen { addr: listen, source })?;
    let app = router(console).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
            tracing::error!(error = %e, "console stopped");
        }
    });
    Ok(local)
}

/// Serves the management API on the local socket `path` (mode 0600: only the
/// gateway's own user, and root, may connect; whoever does is the operator) until
/// `shutdown` resolves. The CLI's `domain`, `tenant` and `account` commands use it.
#[cfg(unix)]
pub async fn serve_admin_socket(
    admin: Arc<admin::Admin>,
    path: &std::path::Path,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ConsoleError> {
    use std::os::unix::fs::PermissionsExt;
    let failed = |source| ConsoleError::Socket { path: path.to_path_buf(), source };
    // A socket left by a killed process: nothing listens on it (the store is this
    // process's, so no other gateway runs on this data directory).
    let _ = std::fs::remove_file(path);
    let listener = tokio::net::UnixListener::bind(path).map_err(failed)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(failed)?;
    let app = admin::routes()
        .merge(tracking::api_routes())
        .merge(queue::api_routes())
        .with_state(admin::AdminState(admin))
        .layer(axum::Extension(admin::LocalOperator))
        .layer(axum::middleware::from_fn(contain_panics));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
            tracing::error!(error = %e, "admin socket stopped");
        }
    });
    Ok(())
}

/// No script, no remote image, no framing, forms only to ourselves; nothing cached.
async fn secure_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Who is asking, in which language, with which CSRF cookie.
struct Visit {
    lang: Lang,
    csrf_cookie: String,
    /// The CSRF cookie is new: it must be set on the response.
    new_csrf: bool,
    viewer: Option<Account>,
}

impl Visit {
    async fn new(console: &Console, headers: &HeaderMap, lang: Option<&str>) -> Visit {
        let lang = Lang::from_request(lang, headers);
        let (csrf_cookie, new_csrf) = match auth::cookie(headers, CSRF_COOKIE) {
            Some(c) if !c.is_empty() => (c.to_string(), false),
            _ => (auth::new_csrf_cookie(), true),
        };
        let now = rempart_model::date::unix_now();
        let email = match auth::cookie(headers, SESSION_COOKIE) {
            Some(cookie) => auth::session_email(&console.keys, &*console.state.store, cookie, now).await,
            None => None,
        };
        let viewer = match email {
            Some((email, generation)) => match accounts::get(&*console.state.store, &email).await {
                // A password change or a disable ends every session opened before it.
                Ok(Some(account)) if !account.disabled && account.generation == generation => {
                    accounts::with_tenant_domains(&*console.state.store, account).await.ok()
                }
                Ok(_) => None,
                Err(e) => {
                    tracing::warn!(error = %e, "console cannot read an account");
                    None
                }
            },
            None => None,
        };
        Visit { lang, csrf_cookie, new_csrf, viewer }
    }

    /// A form's visit: refused (403) without the CSRF token that goes with its cookie.
    async fn posted(console: &Console, headers: &HeaderMap, csrf: &str) -> Result<Visit, Response> {
        let visit = Visit::new(console, headers, None).await;
        if !console.keys.csrf_ok(Some(&visit.csrf_cookie), csrf) {
            return Err(visit.bad_csrf(console));
        }
        Ok(visit)
    }

    /// A form posted by a signed-in account (with its CSRF token) whose role may
    /// `permission`: the visit and the account; else the refusal (403), or the login page.
    async fn posted_by(
        console: &Console,
        headers: &HeaderMap,
        csrf: &str,
        permission: Permission,
    ) -> Result<(Visit, Account), Box<Response>> {
        let visit = Visit::posted(console, headers, csrf).await.map_err(Box::new)?;
        let viewer = visit.signed_in(console, permission)?.clone();
        Ok((visit, viewer))
    }

    /// The signed-in viewer, if their role may `permission`; else the login page or 403.
    fn signed_in(&self, console: &Console, permission: Permission) -> Result<&Account, Box<Response>> {
        let Some(viewer) = &self.viewer else { return Err(Box::new(to_login())) };
        if !crate::roles::allows(viewer.role, permission) {
            return Err(Box::new(self.notice(console, StatusCode::FORBIDDEN, "forbidden")));
        }
        Ok(viewer)
    }

    /// The signed-in viewer and a message they may see; else the login page, or "not
    /// found" (the same for a message that is not theirs).
    async fn viewer_entry(&self, console: &Console, id: &str) -> Result<(&Account, Entry), Response> {
        let Some(viewer) = &self.viewer else { return Err(to_login()) };
        match visible_entry(console, viewer, id).await {
            Ok(Some(entry)) => Ok((viewer, entry)),
            Ok(None) => Err(self.not_found(console)),
            Err(e) => Err(failure(e)),
        }
    }

    /// A form posted about a message: the CSRF check, then the viewer and the message
    /// (as `viewer_entry`).
    async fn posted_entry(console: &Console, headers: &HeaderMap, csrf: &str, id: &str) -> Result<(Visit, Account, Entry), Response> {
        let visit = Visit::posted(console, headers, csrf).await?;
        let (viewer, entry) = visit.viewer_entry(console, id).await?;
        let viewer = viewer.clone();
        Ok((visit, viewer, entry))
    }

    fn csrf_token(&self, console: &Console) -> String {
        console.keys.csrf_token(&self.csrf_cookie)
    }

    /// A page, with the CSRF cookie when it is new.
    fn page(&self, console: &Console, status: StatusCode, markup: Markup) -> Response {
        let response = (status, Html(markup.into_string())).into_response();
        if self.new_csrf { with_cookie(response, console, CSRF_COOKIE, &self.csrf_cookie, SESSION_SECONDS) } else { response }
    }

    fn not_found(&self, console: &Console) -> Response {
        let csrf = self.csrf_token(console);
        let viewer = self.viewer.as_ref().map(|v| (v, csrf.as_str()));
        self.page(console, StatusCode::NOT_FOUND, pages::notice(self.lang, self.lang.t("not_found"), self.lang.t("not_found"), viewer))
    }

    fn bad_csrf(&self, console: &Console) -> Response {
        self.notice(console, StatusCode::FORBIDDEN, "bad_csrf")
    }

    /// A page saying one thing (`key`'s text as title and body), without the account bar.
    fn notice(&self, console: &Console, status: StatusCode, key: &'static str) -> Response {
        self.page(console, status, pages::notice(self.lang, self.lang.t(key), self.lang.t(key), None))
    }
}

/// `response` with a cookie set (or cleared, with `max_age` 0).
fn with_cookie(mut response: Response, console: &Console, name: &str, value: &str, max_age: u64) -> Response {
    if let Ok(value) = HeaderValue::from_str(&auth::set_cookie(name, value, max_age, console.secure_cookies)) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

fn to_login() -> Response {
    Redirect::to("/login").into_response()
}

fn failure(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "console request failed");
    (StatusCode::SERVICE_UNAVAILABLE, "The console cannot reach its storage right now; try again in a minute.").into_response()
}

#[derive(Debug, Default, Deserialize)]
struct LangParam {
    lang: Option<String>,
}

async fn login_page(State(console): State<Arc<Console>>, headers: HeaderMap, Query(q): Query<LangParam>) -> Response {
    let visit = Visit::new(&console, &headers, q.lang.as_deref()).await;
    if visit.viewer.is_some() {
        return Redirect::to("/quarantine").into_response();
    }
    visit.page(&console, StatusCode::OK, pages::login(visit.lang, &visit.csrf_token(&console), None))
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    /// The second factor, when the account uses one.
    #[serde(default)]
    code: String,
}

async fn login(
    State(console): State<Arc<Console>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let visit = Visit::new(&console, &headers, None).await;
    if visit.new_csrf || !console.keys.csrf_ok(Some(&visit.csrf_cookie), &form.csrf) {
        return visit.bad_csrf(&console);
    }
    let lang = visit.lang;
    let refused = |status: StatusCode, text: &'static str| {
        visit.page(&console, status, pages::login(lang, &visit.csrf_token(&console), Some(lang.t(text))))
    };
    let client = client_ip(peer.ip(), &headers, &console.trusted_proxies);
    match accounts::login(&*console.state.store, &form.email, &form.password, Some(&form.code), &client.to_string(), "console").await {
        Ok(Login::Ok(account)) => {
            let expires = rempart_model::date::unix_now() + SESSION_SECONDS;
            let cookie = match auth::open_session(&console.keys, &*console.state.store, &account, expires).await {
                Ok(cookie) => cookie,
                Err(e) => return failure(e),
            };
            tracing::info!(account = %account.email, ip = %client, "console login");
            with_cookie(Redirect::to("/quarantine").into_response(), &console, SESSION_COOKIE, &cookie, SESSION_SECONDS)
        }
        Ok(Login::Refused) => refused(StatusCode::UNAUTHORIZED, "login_refused"),
        Ok(Login::Throttled) => refused(StatusCode::TOO_MANY_REQUESTS, "login_throttled"),
        Ok(Login::CodeNeeded) => refused(StatusCode::UNAUTHORIZED, "code_needed"),
        Err(e) => failure(e),
    }
}

/// The client of a request: the peer, or, when the peer is a trusted proxy, the last
/// `X-Forwarded-For` address that is not one (the proxies append; what the client wrote
/// itself comes before and is not believed).
pub fn client_ip(peer: std::net::IpAddr, headers: &HeaderMap, proxies: &[rempart_model::net::Network]) -> std::net::IpAddr {
    let trusted = |ip: std::net::IpAddr| proxies.iter().any(|n| n.contains(rempart_model::net::unmap(ip)));
    if !trusted(peer) {
        return peer;
    }
    let forwarded: Vec<std::net::IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map_while(|ip| ip.trim().parse().ok())
        .collect();
    let mut client = peer;
    for ip in forwarded.iter().rev() {
        client = *ip;
        if !trusted(*ip) {
            break;
        }
    }
    client
}

#[derive(Debug, Default, Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// A form whose action asks first: the CSRF token, and `confirm=yes` once confirmed.
#[derive(Debug, Default, Deserialize)]
struct ConfirmForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    confirm: String,
}

async fn logout(State(console): State<Arc<Console>>, headers: HeaderMap, Form(form): Form<CsrfForm>) -> Response {
    if let Err(refused) = Visit::posted(&console, &headers, &form.csrf).await {
        return refused;
    }
    // Revoked in the store, not only forgotten by this browser: a copied cookie dies too.
    if let Some(cookie) = auth::cookie(&headers, SESSION_COOKIE)
        && let Err(e) = auth::close_session(&console.keys, &*console.state.store, cookie).await
    {
        return failure(e);
    }
    with_cookie(Redirect::to("/login").into_response(), &console, SESSION_COOKIE, "", 0)
}

/// A URL path segment or query value, percent-encoded (the CLI builds its API paths
/// with it too).
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// `/why/{QueueId}`: public for refused mail (the sender must read it; it names no
/// recipient, only domains). A quarantined message is explained only to someone who
/// may see it.
async fn why(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let visit = Visit::new(&console, &headers, q.get("lang").map(String::as_str)).await;
    let lang = visit.lang;
    match rempart_state::verdicts::get(&*console.state.store, &id).await {
        Ok(Some(record)) => {
            let advice = advice::for_symbols(&record.symbols, record.listed.as_deref(), lang);
            return visit.page(&console, StatusCode::OK, pages::why(lang, &record, &advice));
        }
        Ok(None) => {}
        Err(e) => return failure(e),
    }
    if let Some(viewer) = &visit.viewer
        && let Ok(Some(_)) = visible_entry(&console, viewer, &id).await
    {
        return Redirect::to(&format!("/quarantine/{id}")).into_response();
    }
    visit.page(&console, StatusCode::NOT_FOUND, pages::notice(lang, lang.t("why_title"), lang.t("why_unknown"), None))
}

/// A digest link's query: the account (hex), the expiry, the signature.
#[derive(Debug, Default, Deserialize)]
struct DigestLink {
    #[serde(default)]
    u: String,
    #[serde(default)]
    exp: u64,
    #[serde(default)]
    sig: String,
    #[serde(default)]
    csrf: String,
    lang: Option<String>,
}

impl DigestLink {
    /// Who the link was made for and what they may release, if the signature holds and
    /// it has not expired: an account that may still see the message, or a recipient
    /// without an account (their own copy, while their domain sends such digests).
    async fn check(&self, console: &Console, id: &str) -> Option<(Scope, String, Entry)> {
        let email = String::from_utf8(auth::unhex(&self.u)?).ok()?;
        if self.exp < rempart_model::date::unix_now() || !console.keys.verify(&crate::digest::link_data(id, &email, self.exp), &self.sig) {
            return None;
        }
        let scope = match accounts::get(&*console.state.store, &email).await.ok()? {
            Some(account) if account.disabled => return None,
            Some(account) => Scope::of(&accounts::with_tenant_domains(&*console.state.store, account).await.ok()?),
            None => {
                let domain = email.rsplit_once('@').map_or("", |(_, d)| d);
                if !crate::digest::domain_wants_digests(console, domain).await {
                    return None;
                }
                Scope::Addresses(vec![email.clone()])
            }
        };
        let entry = entry_in_scope(console, &scope, id).await.ok().flatten()?;
        Some((scope, email, entry))
    }
}

async fn digest_link(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(link): Query<DigestLink>,
) -> Response {
    let visit = Visit::new(&console, &headers, link.lang.as_deref()).await;
    let Some((_, _, entry)) = link.check(&console, &id).await else {
        return visit.notice(&console, StatusCode::FORBIDDEN, "bad_link");
    };
    let exp = link.exp.to_string();
    let fields = [("u", link.u.as_str()), ("exp", exp.as_str()), ("sig", link.sig.as_str())];
    visit.page(&console, StatusCode::OK, pages::confirm_release(visit.lang, &entry, &fields, &visit.csrf_token(&console)))
}

async fn digest_release(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(link): Form<DigestLink>,
) -> Response {
    let visit = match Visit::posted(&console, &headers, &link.csrf).await {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    let Some((scope, by, _)) = link.check(&console, &id).await else {
        return visit.notice(&console, StatusCode::FORBIDDEN, "bad_link");
    };
    match console.release(&id, &scope, &by).await {
        Ok(_) => visit.notice(&console, StatusCode::OK, "released_ok"),
        Err(ConsoleError::Quarantine(QuarantineError::NotHeld { .. })) => visit.notice(&console, StatusCode::CONFLICT, "already_released"),
        Err(e) => failure(e),
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    async fn fetch(addr: SocketAddr, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await.expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).await.expect("read");
        response
    }

    async fn boom() -> &'static str {
        std::panic::panic_any("boom")
    }

    /// Issue 30: a panicking handler answers 500 and the console goes on.
    #[tokio::test]
    async fn a_panicking_handler_answers_500_and_the_console_goes_on() {
        let app =
            Router::new().route("/boom", get(boom)).route("/ok", get(|| async { "fine" })).layer(axum::middleware::from_fn(contain_panics));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        assert!(fetch(addr, "/boom").await.starts_with("HTTP/1.1 500"));
        assert!(fetch(addr, "/ok").await.ends_with("fine"));
    }
}
