//! Message tracking in the console (`/tracking`, a message's `/tracking/{queue_id}`
//! with its timeline) and the API (`GET /api/v1/tracking`, `…/tracking/{queue_id}`,
//! which `rempart track` calls). Every reader searches within their scope: a tenant
//! admin finds only mail for (or sent from) their domains, a user their own.

use std::sync::Arc;

use axum::extract::{FromRef, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::admin::{AdminState, Answer, ApiError, Caller, bad, not_found};
use super::i18n::Lang;
use super::{Visit, pages, to_login};
use crate::Console;
use crate::accounts::Account;
use crate::quarantine::Scope;
use crate::roles::Permission;
use crate::tracking::{Query as TrackQuery, Status, TrackedMessage, TrackingIndex};

/// The API's routes (served by the console and the admin socket).
pub fn api_routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    AdminState: FromRef<S>,
{
    Router::new().route("/api/v1/tracking", get(api_search)).route("/api/v1/tracking/{queue_id}", get(api_show))
}

/// The console's pages.
pub fn routes() -> Router<Arc<Console>> {
    Router::new().route("/tracking", get(page)).route("/tracking/{queue_id}", get(show))
}

/// A search as typed: dates as YYYY-MM-DD (or ms since the epoch), status as a word.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SearchParams {
    sender: String,
    recipient: String,
    message_id: String,
    queue_id: String,
    client_ip: String,
    since: String,
    until: String,
    status: String,
    limit: Option<usize>,
    lang: Option<String>,
}

impl SearchParams {
    fn query(&self) -> Result<TrackQuery, String> {
        let status = match self.status.trim() {
            "" | "any" => None,
            word => Some(Status::parse(word).ok_or_else(|| format!("unknown status {word:?}"))?),
        };
        Ok(TrackQuery {
            sender: self.sender.trim().to_string(),
            recipient: self.recipient.trim().to_string(),
            message_id: self.message_id.trim().to_string(),
            queue_id: self.queue_id.trim().to_string(),
            client_ip: self.client_ip.trim().to_string(),
            since_ms: time(&self.since, false)?,
            until_ms: time(&self.until, true)?,
            status,
            limit: self.limit.unwrap_or(0),
        })
    }
}

/// A day (its first or, for `end`, its last millisecond) or ms since the epoch.
fn time(value: &str, end: bool) -> Result<Option<u64>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    if let Ok(ms) = value.parse::<u64>() {
        return Ok(Some(ms));
    }
    let day = rempart_model::date::parse_iso_day(value).ok_or_else(|| format!("{value:?} is not a date (YYYY-MM-DD)"))?;
    Ok(Some(if end { (day + 86_400) * 1000 - 1 } else { day * 1000 }))
}

fn index(tracking: Option<&TrackingIndex>) -> Result<TrackingIndex, ApiError> {
    tracking
        .cloned()
        .ok_or_else(|| ApiError(StatusCode::SERVICE_UNAVAILABLE, "message tracking runs in the console; it is not on here".into()))
}

async fn search(index: TrackingIndex, query: TrackQuery, scope: Scope) -> Result<crate::tracking::index::Found, ApiError> {
    tokio::task::spawn_blocking(move || index.search(&query, &scope))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))
}

async fn fetch(index: TrackingIndex, queue_id: String, scope: Scope) -> Result<Option<TrackedMessage>, ApiError> {
    tokio::task::spawn_blocking(move || index.get(&queue_id, &scope))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))
}

fn message_json(m: &TrackedMessage, timeline: bool) -> Value {
    let mut value = serde_json::to_value(m).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.insert("status".into(), json!(m.status().as_str()));
        if !timeline {
            map.remove("timeline");
        }
    }
    value
}

async fn api_search(State(AdminState(admin)): State<AdminState>, caller: Caller, Query(params): Query<SearchParams>) -> Answer {
    let caller = caller.may(Permission::ReadMail)?;
    let query = params.query().map_err(bad)?;
    let found = search(index(admin.tracking.as_ref())?, query, Scope::of(&caller)).await?;
    let messages: Vec<Value> = found.messages.iter().map(|m| message_json(m, false)).collect();
    super::admin::ok(json!({ "messages": messages, "truncated": found.truncated }))
}

async fn api_show(State(AdminState(admin)): State<AdminState>, caller: Caller, Path(queue_id): Path<String>) -> Answer {
    let caller = caller.may(Permission::ReadMail)?;
    match fetch(index(admin.tracking.as_ref())?, queue_id, Scope::of(&caller)).await? {
        Some(m) => Ok(axum::response::IntoResponse::into_response(Json(message_json(&m, true)))),
        None => Err(not_found("such message in your scope")),
    }
}

async fn page(State(console): State<Arc<Console>>, headers: HeaderMap, Query(params): Query<SearchParams>) -> Response {
    let visit = Visit::new(&console, &headers, params.lang.as_deref()).await;
    let Some(viewer) = &visit.viewer else { return to_login() };
    let csrf = visit.csrf_token(&console);
    let asked = [
        &params.sender,
        &params.recipient,
        &params.message_id,
        &params.queue_id,
        &params.client_ip,
        &params.since,
        &params.until,
        &params.status,
    ]
    .iter()
    .any(|v| !v.trim().is_empty());
    let outcome = match (params.query(), index(console.admin.tracking.as_ref())) {
        (Err(e), _) => Err(e),
        (_, Err(ApiError(_, e))) => Err(e),
        (Ok(query), Ok(index)) => search(index, query, Scope::of(viewer)).await.map_err(|ApiError(_, e)| e),
    };
    let body = search_page(visit.lang, &params, asked, outcome);
    visit.page(&console, StatusCode::OK, pages::layout(visit.lang, visit.lang.t("tracking"), Some((viewer, &csrf)), body))
}

async fn show(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    Path(queue_id): Path<String>,
    Query(params): Query<SearchParams>,
) -> Response {
    let visit = Visit::new(&console, &headers, params.lang.as_deref()).await;
    let Some(viewer) = &visit.viewer else { return to_login() };
    let Ok(index) = index(console.admin.tracking.as_ref()) else { return visit.not_found(&console) };
    let Ok(Some(message)) = fetch(index, queue_id, Scope::of(viewer)).await else { return visit.not_found(&console) };
    let csrf = visit.csrf_token(&console);
    let body = message_page(visit.lang, viewer, &message);
    visit.page(&console, StatusCode::OK, pages::layout(visit.lang, visit.lang.t("tracking"), Some((viewer, &csrf)), body))
}

fn status_word(lang: Lang, status: Status) -> &'static str {
    match status {
        Status::Refused => lang.t("st_refused"),
        Status::Greylisted => lang.t("st_greylisted"),
        Status::Tempfail => lang.t("st_tempfail"),
        Status::Queued => lang.t("st_queued"),
        Status::Deferred => lang.t("st_deferred"),
        Status::Delivered => lang.t("st_delivered"),
        Status::Bounced => lang.t("st_bounced"),
        Status::Quarantined => lang.t("st_quarantined"),
        Status::Held => lang.t("st_held"),
        Status::Discarded => lang.t("st_discarded"),
        Status::Deleted => lang.t("st_deleted"),
    }
}

fn search_page(lang: Lang, p: &SearchParams, asked: bool, outcome: Result<crate::tracking::index::Found, String>) -> Markup {
    html! {
        h1 { (lang.t("tracking")) }
        form method="get" action="/tracking" {
            fieldset {
                legend { (lang.t("search")) }
                label { (lang.t("sender")) " " input name="sender" value=(p.sender) size="22"; } " "
                label { (lang.t("recipient")) " " input name="recipient" value=(p.recipient) size="22"; } " "
                label { (lang.t("message_id")) " " input name="message_id" value=(p.message_id) size="18"; } " "
                label { (lang.t("queue_id")) " " input name="queue_id" value=(p.queue_id) size="14"; } " "
                label { (lang.t("client_ip")) " " input name="client_ip" value=(p.client_ip) size="14"; } " "
                label { (lang.t("since")) " " input name="since" value=(p.since) size="10" placeholder="YYYY-MM-DD"; } " "
                label { (lang.t("until")) " " input name="until" value=(p.until) size="10" placeholder="YYYY-MM-DD"; } " "
                label { (lang.t("status")) " "
                    select name="status" {
                        option value="" { (lang.t("any_status")) }
                        @for s in Status::ALL {
                            option value=(s.as_str()) selected[p.status == s.as_str()] { (status_word(lang, s)) }
                        }
                    }
                } " "
                button type="submit" id="track" { (lang.t("search")) }
            }
        }
        @match outcome {
            Err(e) => p.error { (e) },
            Ok(found) => {
                @if found.messages.is_empty() {
                    p { (if asked { lang.t("no_tracked") } else { lang.t("nothing_tracked") }) }
                } @else {
                    table #tracked {
                        thead { tr {
                            th { (lang.t("date")) } th { (lang.t("sender")) } th { (lang.t("recipients")) }
                            th { (lang.t("subject")) } th { (lang.t("status")) } th { (lang.t("client_ip")) }
                        } }
                        tbody {
                            @for m in &found.messages {
                                tr {
                                    td { (pages::compact_when(m.first_ms / 1000)) }
                                    td { (pages::clipped(if m.sender.is_empty() { "<>" } else { &m.sender }, 40)) }
                                    td { (pages::clipped(&m.recipients.iter().map(|r| r.address.as_str()).collect::<Vec<_>>().join(", "), 60)) }
                                    td { a href={ "/tracking/" (m.queue_id) } { (pages::clipped(if m.subject.is_empty() { "(—)" } else { &m.subject }, 60)) } }
                                    td.status { (status_word(lang, m.status())) }
                                    td.nowrap { (m.client_ip) }
                                }
                            }
                        }
                    }
                    @if found.truncated { p { (lang.t("tracking_truncated")) } }
                }
            }
        }
    }
}

fn message_page(lang: Lang, viewer: &Account, m: &TrackedMessage) -> Markup {
    html! {
        h1 { (lang.t("tracking")) ": " code { (m.queue_id) } }
        table {
            tbody {
                tr { th { (lang.t("status")) } td #status { (status_word(lang, m.status())) } }
                tr { th { (lang.t("date")) } td { (pages::when(m.first_ms / 1000)) } }
                tr { th { (lang.t("sender")) } td { (if m.sender.is_empty() { "<>" } else { &m.sender }) } }
                tr { th { (lang.t("subject")) } td { (m.subject) } }
                tr { th { (lang.t("message_id")) } td { (m.message_id) } }
                tr { th { (lang.t("client_ip")) } td { (m.client_ip) " (HELO " (m.helo) ")" } }
                tr { th { "TLS" } td { (if m.tls.is_empty() { "—" } else { &m.tls }) } }
                @if let Some(score) = m.score {
                    tr { th { (lang.t("score")) } td.score { (format!("{score:.2}")) " (" (m.action) ")" } }
                }
            }
        }
        h2 { (lang.t("recipients")) }
        table #recipients {
            thead { tr { th { (lang.t("recipient")) } th { (lang.t("status")) } th { (lang.t("reply")) } } }
            tbody {
                @for r in &m.recipients {
                    tr { td { (r.address) } td { (status_word(lang, r.status)) } td { (pages::clipped(&r.reply, 160)) } }
                }
            }
        }
        h2 { (lang.t("timeline")) }
        table #timeline {
            tbody {
                @for step in &m.timeline {
                    tr {
                        td style="white-space:nowrap" { (rempart_model::date::iso_minute(step.at_ms / 1000)) }
                        td { code { (step.what) } }
                        td { (step.detail) }
                    }
                }
            }
        }
        @if matches!(m.status(), Status::Quarantined) && crate::roles::allows(viewer.role, Permission::ReadMail) {
            p { a href={ "/quarantine/" (m.queue_id) } { (lang.t("quarantine")) } }
        }
    }
}
