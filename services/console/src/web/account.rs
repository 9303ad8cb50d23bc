//! The reader's own account: `/account` (password, second factor), the gate that sends
//! an account which must use a second factor and has none yet to set it up, and the
//! second factor's API (`/api/v1/accounts/{email}/totp`), for the account itself or an
//! admin resetting a lost device.

use std::sync::Arc;

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use axum::{Router, routing::get};
use maud::{Markup, html};
use rempart_model::date::unix_now;
use rempart_state::second_factor;
use serde::Deserialize;
use serde_json::json;

use super::accounts_api::{set_password, visible_account};
use super::admin::{AdminState, Answer, ApiError, Caller, bad, forbidden, json_body, ok};
use super::i18n::Lang;
use super::{Visit, failure, pages, to_login};
use crate::Console;
use crate::accounts::{self, Account};
use crate::roles::{Permission, allows, may_touch_account};

pub fn routes() -> Router<Arc<Console>> {
    Router::new()
        .route("/account", get(page))
        .route("/account/password", post(change_password))
        .route("/account/totp", post(start))
        .route("/account/totp/confirm", post(confirm))
        .route("/account/totp/remove", post(remove))
}

pub fn api_routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    AdminState: axum::extract::FromRef<S>,
{
    Router::new()
        .route("/api/v1/accounts/{email}/totp", post(api_enroll).delete(api_remove))
        .route("/api/v1/accounts/{email}/totp/confirm", post(api_confirm))
}

/// Pages an account without its required second factor may still open.
fn open_without_second_factor(path: &str) -> bool {
    path == "/login"
        || path == "/logout"
        || path.starts_with("/account")
        || path.starts_with("/why/")
        || path.starts_with("/d/")
        || path.starts_with("/api/")
}

/// Sends a signed-in account that must use a second factor and has none yet to
/// `/account` to set it up (its tenant's `require_totp`, or staff under `[console]
/// require_totp_for_staff`). API tokens are not sessions and are not gated.
pub async fn gate(State(console): State<Arc<Console>>, request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    if open_without_second_factor(request.uri().path()) {
        return next.run(request).await;
    }
    let visit = Visit::new(&console, request.headers(), None).await;
    if let Some(viewer) = &visit.viewer
        && !viewer.totp_confirmed
        && second_factor::required(&*console.state.store, viewer, console.admin.totp_for_staff).await
    {
        return Redirect::to("/account").into_response();
    }
    next.run(request).await
}

#[derive(Debug, Default, Deserialize)]
struct AccountParams {
    lang: Option<String>,
}

/// What the page says after an action.
#[derive(Default)]
struct Outcome<'a> {
    notice: Option<&'static str>,
    error: Option<String>,
    /// Enrolment under way: the secret and its URI, shown once.
    enrolling: Option<(&'a str, &'a str)>,
}

async fn page(State(console): State<Arc<Console>>, headers: HeaderMap, Query(q): Query<AccountParams>) -> Response {
    let visit = Visit::new(&console, &headers, q.lang.as_deref()).await;
    let Some(viewer) = &visit.viewer else { return to_login() };
    render(&console, &visit, viewer, StatusCode::OK, Outcome::default()).await
}

async fn render(console: &Console, visit: &Visit, viewer: &Account, status: StatusCode, outcome: Outcome<'_>) -> Response {
    let required = second_factor::required(&*console.state.store, viewer, console.admin.totp_for_staff).await;
    let csrf = visit.csrf_token(console);
    visit.page(console, status, account_page(visit.lang, viewer, &csrf, required, &outcome))
}

#[derive(Debug, Default, Deserialize)]
struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    current: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    repeat: String,
}

async fn change_password(State(console): State<Arc<Console>>, headers: HeaderMap, Form(form): Form<PasswordForm>) -> Response {
    let (visit, viewer) = match Visit::posted_by(&console, &headers, &form.csrf, Permission::ManageSelf).await {
        Ok(signed) => signed,
        Err(response) => return *response,
    };
    let viewer = &viewer;
    if form.password != form.repeat {
        let outcome = Outcome { error: Some(visit.lang.t("passwords_differ").into()), ..Outcome::default() };
        return render(&console, &visit, viewer, StatusCode::UNPROCESSABLE_ENTITY, outcome).await;
    }
    let mut account = viewer.clone();
    if let Err(ApiError(status, message)) = set_password(&mut account, form.password, Some(form.current)).await {
        return render(&console, &visit, viewer, status, Outcome { error: Some(message), ..Outcome::default() }).await;
    }
    if let Err(e) = accounts::put(&*console.state.store, &account).await {
        return failure(e);
    }
    tracing::info!(account = %account.email, "password changed by its owner");
    // Every session died with the old password, this one too: log in again.
    Redirect::to("/login").into_response()
}

#[derive(Debug, Default, Deserialize)]
struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
}

async fn start(State(console): State<Arc<Console>>, headers: HeaderMap, Form(form): Form<CodeForm>) -> Response {
    let (visit, viewer) = match Visit::posted_by(&console, &headers, &form.csrf, Permission::ManageSelf).await {
        Ok(signed) => signed,
        Err(response) => return *response,
    };
    let viewer = &viewer;
    if viewer.totp_confirmed {
        return render(&console, &visit, viewer, StatusCode::CONFLICT, Outcome { notice: Some("totp_on"), ..Outcome::default() }).await;
    }
    let (secret, uri) = match second_factor::enroll(&*console.state.store, &viewer.email).await {
        Ok(enrolled) => enrolled,
        Err(e) => return failure(e),
    };
    render(&console, &visit, viewer, StatusCode::OK, Outcome { enrolling: Some((&secret, &uri)), ..Outcome::default() }).await
}

async fn confirm(State(console): State<Arc<Console>>, headers: HeaderMap, Form(form): Form<CodeForm>) -> Response {
    let (visit, viewer) = match Visit::posted_by(&console, &headers, &form.csrf, Permission::ManageSelf).await {
        Ok(signed) => signed,
        Err(response) => return *response,
    };
    let viewer = &viewer;
    match second_factor::confirm(&*console.state.store, &viewer.email, &form.code, unix_now()).await {
        Ok(true) => {
            tracing::info!(account = %viewer.email, "second factor set up");
            let mut viewer = viewer.clone();
            viewer.totp_confirmed = true;
            render(&console, &visit, &viewer, StatusCode::OK, Outcome { notice: Some("totp_enabled"), ..Outcome::default() }).await
        }
        Ok(false) => {
            // The secret stays as it was shown: the reader types the next code.
            let secret = viewer.totp_secret.clone().unwrap_or_default();
            let uri = second_factor::uri(&viewer.email, &secret);
            let outcome =
                Outcome { error: Some(visit.lang.t("totp_wrong").into()), enrolling: Some((&secret, &uri)), ..Outcome::default() };
            render(&console, &visit, viewer, StatusCode::UNPROCESSABLE_ENTITY, outcome).await
        }
        Err(e) => {
            render(&console, &visit, viewer, StatusCode::CONFLICT, Outcome { error: Some(e.to_string()), ..Outcome::default() }).await
        }
    }
}

async fn remove(State(console): State<Arc<Console>>, headers: HeaderMap, Form(form): Form<CodeForm>) -> Response {
    let (visit, viewer) = match Visit::posted_by(&console, &headers, &form.csrf, Permission::ManageSelf).await {
        Ok(signed) => signed,
        Err(response) => return *response,
    };
    let viewer = &viewer;
    if second_factor::required(&*console.state.store, viewer, console.admin.totp_for_staff).await {
        let outcome = Outcome { error: Some(visit.lang.t("totp_required").into()), ..Outcome::default() };
        return render(&console, &visit, viewer, StatusCode::FORBIDDEN, outcome).await;
    }
    if let Err(e) = second_factor::remove(&*console.state.store, &viewer.email).await {
        return failure(e);
    }
    tracing::info!(account = %viewer.email, "second factor removed by its owner");
    let mut viewer = viewer.clone();
    viewer.totp_confirmed = false;
    render(&console, &visit, &viewer, StatusCode::OK, Outcome { notice: Some("totp_removed"), ..Outcome::default() }).await
}

fn account_page(lang: Lang, viewer: &Account, csrf: &str, required: bool, outcome: &Outcome<'_>) -> Markup {
    pages::layout(
        lang,
        lang.t("your_account"),
        Some((viewer, csrf)),
        html! {
            h1 { (lang.t("your_account")) }
            @if let Some(notice) = outcome.notice { p.notice role="status" { (lang.t(notice)) } }
            @if let Some(error) = &outcome.error { p.error role="alert" { (error) } }
            table {
                tr { th { (lang.t("email")) } td { (viewer.email) } }
                tr { th { (lang.t("role")) } td { (viewer.role.as_str()) } }
                @if let Some(tenant) = &viewer.tenant { tr { th { (lang.t("tenant")) } td { (tenant) } } }
            }
            h2 { (lang.t("second_factor")) }
            @if viewer.totp_confirmed {
                p #totp-state { (lang.t("totp_on")) }
                @if !required {
                    form method="post" action="/account/totp/remove" {
                        input type="hidden" name="csrf" value=(csrf);
                        button type="submit" id="totp-remove" { (lang.t("totp_remove")) }
                    }
                }
            } @else if let Some((secret, uri)) = outcome.enrolling {
                p { (lang.t("totp_scan")) }
                table {
                    tr { th { (lang.t("totp_secret")) } td { code #totp-secret { (secret) } } }
                    tr { th { "otpauth" } td { a href=(uri) { code #totp-uri { (uri) } } } }
                }
                form method="post" action="/account/totp/confirm" {
                    input type="hidden" name="csrf" value=(csrf);
                    p { label { (lang.t("code")) br; input name="code" id="totp-code" inputmode="numeric" autocomplete="one-time-code" required; } }
                    button type="submit" id="totp-confirm" { (lang.t("totp_confirm")) }
                }
            } @else {
                p #totp-state { (lang.t(if required { "totp_required" } else { "totp_off" })) }
                form method="post" action="/account/totp" {
                    input type="hidden" name="csrf" value=(csrf);
                    button type="submit" id="totp-start" { (lang.t("totp_start")) }
                }
            }
            h2 { (lang.t("change_password")) }
            form method="post" action="/account/password" {
                input type="hidden" name="csrf" value=(csrf);
                p { label { (lang.t("current_password")) br; input type="password" name="current" autocomplete="current-password" required; } }
                p { label { (lang.t("new_password")) br; input type="password" name="password" autocomplete="new-password" required minlength="10"; } }
                p { label { (lang.t("repeat_password")) br; input type="password" name="repeat" autocomplete="new-password" required minlength="10"; } }
                button type="submit" id="password-change" { (lang.t("change_password")) }
            }
        },
    )
}

// ----- the API -----

/// The account `email` if the caller may change its second factor: itself, or an
/// admin of it.
async fn second_factor_target(admin: &super::admin::Admin, caller: &Account, email: &str) -> Result<(Account, bool), ApiError> {
    let account = visible_account(admin, caller, email).await?;
    let own = caller.email == account.email;
    let administers = allows(caller.role, Permission::ManageAccounts) && may_touch_account(caller, &account) && !own;
    if !own && !administers {
        return Err(forbidden());
    }
    Ok((account, administers))
}

async fn api_enroll(State(AdminState(admin)): State<AdminState>, caller: Caller, Path(email): Path<String>) -> Answer {
    let caller = caller.may(Permission::ManageSelf)?;
    let (account, _) = second_factor_target(&admin, &caller, &email).await?;
    let (secret, uri) = second_factor::enroll(&*admin.store, &account.email).await?;
    tracing::info!(account = %account.email, by = %caller.email, "second factor enrolment started");
    ok(json!({ "email": account.email, "secret": secret, "uri": uri, "confirmed": false }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfirmBody {
    code: String,
}

async fn api_confirm(
    State(AdminState(admin)): State<AdminState>,
    caller: Caller,
    Path(email): Path<String>,
    body: axum::body::Bytes,
) -> Answer {
    let caller = caller.may(Permission::ManageSelf)?;
    let (account, _) = second_factor_target(&admin, &caller, &email).await?;
    let body: ConfirmBody = json_body(&body)?;
    if !second_factor::confirm(&*admin.store, &account.email, &body.code, unix_now()).await? {
        return Err(bad("wrong code: check the device's clock and send the current code"));
    }
    tracing::info!(account = %account.email, by = %caller.email, "second factor set up");
    ok(json!({ "email": account.email, "confirmed": true }))
}

async fn api_remove(State(AdminState(admin)): State<AdminState>, caller: Caller, Path(email): Path<String>) -> Answer {
    let caller = caller.may(Permission::ManageSelf)?;
    let (account, administers) = second_factor_target(&admin, &caller, &email).await?;
    if !administers && second_factor::required(&*admin.store, &account, admin.totp_for_staff).await {
        return Err(ApiError(StatusCode::FORBIDDEN, "a second factor is required for this account: an admin may reset it".into()));
    }
    second_factor::remove(&*admin.store, &account.email).await?;
    tracing::info!(account = %account.email, by = %caller.email, "second factor removed");
    ok(json!({ "email": account.email, "confirmed": false }))
}
