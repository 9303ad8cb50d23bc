//! The queue in the console (`/queue`) and the API (`/api/v1/queue`, which
//! `rempart queue` calls): the mail waiting for delivery and the mail held, within the
//! reader's scope; hold, release, retry now, and — after a confirmation — delete or
//! bounce now.

use std::sync::Arc;

use axum::extract::{FromRef, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;

use super::admin::{AdminState, Answer, ApiError, Caller, bad, not_found};
use super::i18n::Lang;
use super::{Visit, pages};
use crate::Console;
use crate::accounts::Account;
use crate::quarantine::Scope;
use crate::queue::{self, QueueAction, QueueError, QueueFilter, QueuedMessage};
use crate::roles::Permission;

pub fn api_routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    AdminState: FromRef<S>,
{
    Router::new()
        .route("/api/v1/queue", get(api_list))
        .route("/api/v1/queue/{queue_id}", get(api_show))
        .route("/api/v1/queue/{queue_id}/{action}", post(api_act))
}

pub fn routes() -> Router<Arc<Console>> {
    Router::new().route("/queue", get(page)).route("/queue/{queue_id}/{action}", post(act))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ListParams {
    held: bool,
    address: String,
    lang: Option<String>,
}

impl ListParams {
    fn filter(&self) -> QueueFilter {
        QueueFilter { held_only: self.held, address: self.address.clone() }
    }
}

fn bus(admin: &super::admin::Admin) -> Result<Arc<rempart_bus::AnyBus>, ApiError> {
    admin.queue.clone().ok_or_else(|| ApiError(StatusCode::SERVICE_UNAVAILABLE, "the queue is managed through a running gateway".into()))
}

fn api_error(e: QueueError) -> ApiError {
    match e {
        QueueError::NotFound(_) => not_found("such message in the queue in your scope"),
        QueueError::NotHeld(_) | QueueError::AlreadyHeld(_) | QueueError::Bus(rempart_bus::BusError::Busy(_)) => {
            ApiError(StatusCode::CONFLICT, e.to_string())
        }
        QueueError::Bus(e) => ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

async fn api_list(State(AdminState(admin)): State<AdminState>, caller: Caller, Query(params): Query<ListParams>) -> Answer {
    let caller = caller.may(Permission::ReadQueue)?;
    let messages = queue::list(&*bus(&admin)?, &Scope::of(&caller), &params.filter()).await.map_err(api_error)?;
    super::admin::ok(json!({ "messages": messages }))
}

async fn api_show(State(AdminState(admin)): State<AdminState>, caller: Caller, Path(queue_id): Path<String>) -> Answer {
    let caller = caller.may(Permission::ReadQueue)?;
    let message = queue::find(&*bus(&admin)?, &Scope::of(&caller), &queue_id).await.map_err(api_error)?;
    Ok(Json(message).into_response())
}

async fn api_act(State(AdminState(admin)): State<AdminState>, caller: Caller, Path((queue_id, action)): Path<(String, String)>) -> Answer {
    let caller = caller.may(Permission::ManageQueue)?;
    let action =
        QueueAction::parse(&action).ok_or_else(|| bad(format!("unknown action {action:?}: hold, release, delete, bounce, retry")))?;
    let message = queue::act(&*bus(&admin)?, &Scope::of(&caller), &queue_id, action, &caller.email).await.map_err(api_error)?;
    super::admin::ok(json!({ "queue_id": message.queue_id, "done": action.as_str() }))
}

async fn page(State(console): State<Arc<Console>>, headers: HeaderMap, Query(params): Query<ListParams>) -> Response {
    let visit = Visit::new(&console, &headers, params.lang.as_deref()).await;
    let viewer = match visit.signed_in(&console, Permission::ReadQueue) {
        Ok(viewer) => viewer.clone(),
        Err(response) => return *response,
    };
    let csrf = visit.csrf_token(&console);
    let listed = queue::list(&console.bus, &Scope::of(&viewer), &params.filter()).await.map_err(|e| e.to_string());
    let body = queue_page(visit.lang, &viewer, &csrf, &params, listed);
    visit.page(&console, StatusCode::OK, pages::layout(visit.lang, visit.lang.t("queue"), Some((&viewer, &csrf)), body))
}

async fn act(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    Path((queue_id, action)): Path<(String, String)>,
    Form(form): Form<super::ConfirmForm>,
) -> Response {
    let (visit, viewer) = match Visit::posted_by(&console, &headers, &form.csrf, Permission::ManageQueue).await {
        Ok(signed) => signed,
        Err(response) => return *response,
    };
    let Some(action) = QueueAction::parse(&action) else { return visit.not_found(&console) };
    let lang = visit.lang;
    let csrf = visit.csrf_token(&console);
    // Deleting or bouncing cannot be undone: one more page says what will happen.
    if matches!(action, QueueAction::Delete | QueueAction::Bounce) && form.confirm != "yes" {
        let body = confirm_page(lang, &csrf, &queue_id, action);
        return visit.page(&console, StatusCode::OK, pages::layout(lang, lang.t("queue"), Some((&viewer, &csrf)), body));
    }
    match queue::act(&console.bus, &Scope::of(&viewer), &queue_id, action, &viewer.email).await {
        Ok(_) => Redirect::to(&format!("/queue?done={}", action.as_str())).into_response(),
        Err(QueueError::NotFound(_)) => visit.not_found(&console),
        Err(e) => {
            let text = e.to_string();
            visit.page(&console, StatusCode::CONFLICT, pages::notice(lang, lang.t("queue"), &text, Some((&viewer, &csrf))))
        }
    }
}

fn action_name(lang: Lang, action: QueueAction) -> &'static str {
    match action {
        QueueAction::Hold => lang.t("q_hold"),
        QueueAction::Release => lang.t("q_release"),
        QueueAction::Delete => lang.t("q_delete"),
        QueueAction::Bounce => lang.t("q_bounce"),
        QueueAction::Retry => lang.t("q_retry"),
    }
}

fn button(lang: Lang, csrf: &str, queue_id: &str, action: QueueAction) -> Markup {
    html! {
        form.inline method="post" action={ "/queue/" (queue_id) "/" (action.as_str()) } {
            input type="hidden" name="csrf" value=(csrf);
            button type="submit" name="action" value=(action.as_str()) { (action_name(lang, action)) }
        }
    }
}

fn confirm_page(lang: Lang, csrf: &str, queue_id: &str, action: QueueAction) -> Markup {
    let question = if action == QueueAction::Delete { lang.t("q_confirm_delete") } else { lang.t("q_confirm_bounce") };
    html! {
        h1 { (lang.t("queue")) ": " code { (queue_id) } }
        p { (question) }
        form method="post" action={ "/queue/" (queue_id) "/" (action.as_str()) } {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="confirm" value="yes";
            button type="submit" id="confirm" { (action_name(lang, action)) }
            " " a href="/queue" { (lang.t("cancel")) }
        }
    }
}

fn next_attempt(lang: Lang, m: &QueuedMessage) -> String {
    if m.held {
        return lang.t("st_held").to_string();
    }
    if m.in_delivery {
        return lang.t("q_in_delivery").to_string();
    }
    match m.next_attempt_ms {
        0 => "—".into(),
        ms => rempart_model::date::iso_minute(ms / 1000),
    }
}

fn queue_page(lang: Lang, viewer: &Account, csrf: &str, params: &ListParams, listed: Result<Vec<QueuedMessage>, String>) -> Markup {
    let manage = crate::roles::allows(viewer.role, Permission::ManageQueue);
    html! {
        h1 { (lang.t("queue")) }
        form method="get" action="/queue" {
            fieldset {
                label { (lang.t("q_address")) " " input name="address" value=(params.address) size="28"; } " "
                label { input type="checkbox" name="held" value="true" checked[params.held]; " " (lang.t("q_held_only")) } " "
                button type="submit" { (lang.t("search")) }
            }
        }
        @match listed {
            Err(e) => p.error { (e) },
            Ok(messages) if messages.is_empty() => p { (lang.t("q_empty")) },
            Ok(messages) => {
                table #queue {
                    thead { tr {
                        th { (lang.t("date")) } th { (lang.t("queue_id")) } th { (lang.t("sender")) } th { (lang.t("recipients")) }
                        th { (lang.t("q_attempts")) } th { (lang.t("q_next")) } th { (lang.t("reply")) }
                        @if manage { th {} }
                    } }
                    tbody {
                        @for m in &messages {
                            @let last = m.recipients.iter().find(|r| r.status == "pending").map_or("", |r| r.reply.as_str());
                            tr {
                                td { (pages::compact_when(m.received_at)) }
                                td { a href={ "/tracking/" (m.queue_id) } { code { (m.queue_id) } } }
                                td { (if m.sender.is_empty() { "<>" } else { &m.sender }) }
                                td { (m.recipients.iter().filter(|r| r.status == "pending").map(|r| r.address.as_str()).collect::<Vec<_>>().join(", ")) }
                                td { (m.attempts) }
                                td style="white-space:nowrap" { (next_attempt(lang, m)) }
                                td { (pages::clipped(last, 60)) @if !m.held_reason.is_empty() { " (" (m.held_reason) ")" } }
                                @if manage {
                                    td style="white-space:nowrap" {
                                        @if m.held {
                                            (button(lang, csrf, &m.queue_id, QueueAction::Release))
                                        } @else {
                                            (button(lang, csrf, &m.queue_id, QueueAction::Retry)) " "
                                            (button(lang, csrf, &m.queue_id, QueueAction::Hold))
                                        }
                                        " " (button(lang, csrf, &m.queue_id, QueueAction::Bounce))
                                        " " (button(lang, csrf, &m.queue_id, QueueAction::Delete))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
