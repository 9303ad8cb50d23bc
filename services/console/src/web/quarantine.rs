//! The quarantine's pages: the list (search, paging, a selection acted on at once
//! after one confirmation), a message (its findings, attachments, preview and headers;
//! attachments downloadable by admins) and the actions on one message (delete and
//! report-spam confirmed first).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use mail_parser::MimeHeaders;
use serde::Deserialize;

use super::{ConfirmForm, PAGE_SIZE, Visit, failure, pages, percent_encode, to_login};
use crate::accounts::{Account, Role};
use crate::quarantine::{Entry, QuarantineError, Query as Search, Scope};
use crate::roles::Permission;
use crate::{Console, ConsoleError};

pub fn routes() -> Router<Arc<Console>> {
    Router::new()
        .route("/quarantine", get(list))
        .route("/quarantine/bulk", post(bulk))
        .route("/quarantine/{id}", get(show))
        .route("/quarantine/{id}/attachment/{index}", get(attachment))
        .route("/quarantine/{id}/{action}", post(act))
}

/// The list's query string, as typed.
#[derive(Debug, Default, Deserialize)]
pub struct ListParams {
    #[serde(default)]
    pub sender: String,
    #[serde(default)]
    pub recipient: String,
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub since: String,
    #[serde(default)]
    pub until: String,
    #[serde(default)]
    pub min_score: String,
    #[serde(default)]
    pub page: usize,
    pub lang: Option<String>,
}

impl ListParams {
    /// The search; dates as YYYY-MM-DD (UTC, `until` inclusive), unparsable values ignored.
    pub fn search(&self) -> Search {
        Search {
            sender: self.sender.trim().to_string(),
            recipient: self.recipient.trim().to_string(),
            subject: self.subject.trim().to_string(),
            since: rempart_model::date::parse_iso_day(&self.since),
            until: rempart_model::date::parse_iso_day(&self.until).map(|t| t + 86_399),
            min_score: self.min_score.trim().parse().ok(),
        }
    }

    pub(super) fn link_query(&self) -> String {
        let mut out = String::new();
        for (k, v) in [
            ("sender", &self.sender),
            ("recipient", &self.recipient),
            ("subject", &self.subject),
            ("since", &self.since),
            ("until", &self.until),
            ("min_score", &self.min_score),
        ] {
            if !v.is_empty() {
                out.push_str(&format!("{k}={}&", percent_encode(v)));
            }
        }
        out
    }
}

async fn list(State(console): State<Arc<Console>>, headers: HeaderMap, Query(params): Query<ListParams>) -> Response {
    let visit = Visit::new(&console, &headers, params.lang.as_deref()).await;
    let Some(viewer) = &visit.viewer else { return to_login() };
    let (store, scope, search, page_number) = (console.quarantine.clone(), Scope::of(viewer), params.search(), params.page);
    let search_for_page = search.clone();
    let page = match crate::blocking(move || store.list(&scope, &search, page_number, PAGE_SIZE)).await {
        Ok(page) => page,
        Err(e) => return failure(e),
    };
    let view = pages::ListView {
        query: &search_for_page,
        since: &params.since,
        until: &params.until,
        page_number,
        page: &page,
        link_query: params.link_query(),
    };
    visit.page(&console, StatusCode::OK, pages::quarantine_list(visit.lang, viewer, &visit.csrf_token(&console), &view))
}

/// The entry if it exists and the viewer may see it (both answered as "not found").
pub(crate) async fn visible_entry(console: &Console, viewer: &Account, id: &str) -> Result<Option<Entry>, QuarantineError> {
    entry_in_scope(console, &Scope::of(viewer), id).await
}

pub(crate) async fn entry_in_scope(console: &Console, scope: &Scope, id: &str) -> Result<Option<Entry>, QuarantineError> {
    let (store, id) = (console.quarantine.clone(), id.to_string());
    let entry = crate::blocking(move || store.get(&id)).await?;
    Ok(entry.filter(|e| scope.allows(e)))
}

#[derive(Debug, Default, Deserialize)]
struct ShowParams {
    lang: Option<String>,
    done: Option<String>,
}

async fn show(State(console): State<Arc<Console>>, headers: HeaderMap, Path(id): Path<String>, Query(q): Query<ShowParams>) -> Response {
    let visit = Visit::new(&console, &headers, q.lang.as_deref()).await;
    let (viewer, entry) = match visit.viewer_entry(&console, &id).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let body = console.body(&id).await.unwrap_or_default();
    let (headers_list, preview) = read_message(&body);
    let notice = match q.done.as_deref() {
        Some("released") => Some(visit.lang.t("released_ok")),
        _ => None,
    };
    let view = pages::MessageView {
        entry: &entry,
        headers: headers_list,
        preview,
        notice,
        attachments: attachments(&body),
        may_download: may_download(viewer),
    };
    visit.page(&console, StatusCode::OK, pages::message(visit.lang, viewer, &visit.csrf_token(&console), &view))
}

/// The headers (decoded where they are encoded words) and a text preview: the text part,
/// or the HTML part reduced to text; never more than 64 KiB.
fn read_message(body: &[u8]) -> (Vec<(String, String)>, String) {
    let Some(message) = mail_parser::MessageParser::default().parse(body) else { return (Vec::new(), String::new()) };
    let headers = message
        .headers()
        .iter()
        .map(|h| {
            let raw = body.get(h.offset_start() as usize..h.offset_end() as usize).unwrap_or_default();
            let value = String::from_utf8_lossy(raw).split_whitespace().collect::<Vec<_>>().join(" ");
            (h.name().to_string(), value)
        })
        .collect();
    let mut preview = message.body_text(0).map(|t| t.into_owned()).unwrap_or_default();
    if preview.len() > 64 * 1024 {
        let mut cut = 64 * 1024;
        while !preview.is_char_boundary(cut) {
            cut -= 1;
        }
        preview.truncate(cut);
        preview.push_str("\n[…]");
    }
    (headers, preview)
}

async fn act(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<ConfirmForm>,
) -> Response {
    let (visit, viewer, entry) = match Visit::posted_entry(&console, &headers, &form.csrf, &id).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let viewer = &viewer;
    let lang = visit.lang;
    let csrf = visit.csrf_token(&console);
    let done =
        |status, text: &'static str| visit.page(&console, status, pages::notice(lang, lang.t(text), lang.t(text), Some((viewer, &csrf))));
    let Some(permission) = permission_for(&action) else { return visit.not_found(&console) };
    if !crate::roles::allows(viewer.role, permission) {
        return done(StatusCode::FORBIDDEN, "forbidden");
    }
    // Deleting cannot be undone: one more page names what goes.
    if action != "release" && form.confirm != "yes" {
        return visit.page(&console, StatusCode::OK, pages::confirm_bulk(lang, viewer, &csrf, &action, &[entry]));
    }
    match apply(&console, viewer, &id, &action).await {
        Ok(()) if action == "release" => Redirect::to(&format!("/quarantine/{id}?done=released")).into_response(),
        Ok(()) => done(StatusCode::OK, if action == "spam" { "spam_ok" } else { "deleted_ok" }),
        Err(ConsoleError::Quarantine(QuarantineError::NotHeld { .. })) => done(StatusCode::CONFLICT, "already_released"),
        Err(ConsoleError::Quarantine(QuarantineError::NotFound(_))) => visit.not_found(&console),
        Err(e) => failure(e),
    }
}

fn permission_for(action: &str) -> Option<Permission> {
    match action {
        "release" => Some(Permission::ReleaseMail),
        "delete" | "spam" => Some(Permission::DeleteMail),
        _ => None,
    }
}

/// One action on one message the viewer may see.
async fn apply(console: &Console, viewer: &Account, id: &str, action: &str) -> Result<(), ConsoleError> {
    let scope = Scope::of(viewer);
    match action {
        "release" => console.release(id, &scope, &viewer.email).await.map(|_| ()),
        _ => console.delete(id, &scope, &viewer.email, action == "spam").await,
    }
}

/// The list's selection: `pick.<QueueId>` checkboxes, the action, the confirmation.
async fn bulk(State(console): State<Arc<Console>>, headers: HeaderMap, Form(form): Form<HashMap<String, String>>) -> Response {
    let csrf_sent = form.get("csrf").cloned().unwrap_or_default();
    let visit = match Visit::posted(&console, &headers, &csrf_sent).await {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    let Some(viewer) = visit.viewer.clone() else { return to_login() };
    let lang = visit.lang;
    let csrf = visit.csrf_token(&console);
    let action = form.get("action").cloned().unwrap_or_default();
    let Some(permission) = permission_for(&action) else { return visit.not_found(&console) };
    if !crate::roles::allows(viewer.role, permission) {
        return visit.page(
            &console,
            StatusCode::FORBIDDEN,
            pages::notice(lang, lang.t("forbidden"), lang.t("forbidden"), Some((&viewer, &csrf))),
        );
    }
    let mut picked: Vec<&str> = form.keys().filter_map(|k| k.strip_prefix("pick.")).collect();
    picked.sort_unstable();
    let mut entries = Vec::new();
    for id in picked.iter().take(PAGE_SIZE * 4) {
        match visible_entry(&console, &viewer, id).await {
            Ok(Some(entry)) => entries.push(entry),
            Ok(None) => {}
            Err(e) => return failure(e),
        }
    }
    if entries.is_empty() {
        return visit.page(
            &console,
            StatusCode::OK,
            pages::notice(lang, lang.t("quarantine"), lang.t("nothing_selected"), Some((&viewer, &csrf))),
        );
    }
    if form.get("confirm").map(String::as_str) != Some("yes") {
        return visit.page(&console, StatusCode::OK, pages::confirm_bulk(lang, &viewer, &csrf, &action, &entries));
    }
    let (mut done, mut failed) = (0, Vec::new());
    for entry in &entries {
        match apply(&console, &viewer, &entry.queue_id, &action).await {
            Ok(()) => done += 1,
            Err(e) => failed.push(format!("{}: {e}", entry.queue_id)),
        }
    }
    let text = format!("{}: {done}. {}", lang.t("bulk_done"), failed.join("; "));
    visit.page(&console, StatusCode::OK, pages::notice(lang, lang.t("quarantine"), &text, Some((&viewer, &csrf))))
}

/// Who may download an attachment of held mail: admins (the operator, a tenant's
/// admin), never the recipient themself (the part may be what was dangerous).
fn may_download(viewer: &Account) -> bool {
    matches!(viewer.role, Role::Operator | Role::TenantAdmin)
}

async fn attachment(State(console): State<Arc<Console>>, headers: HeaderMap, Path((id, index)): Path<(String, usize)>) -> Response {
    let visit = Visit::new(&console, &headers, None).await;
    let (viewer, _) = match visit.viewer_entry(&console, &id).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    if !may_download(viewer) {
        return visit.notice(&console, StatusCode::FORBIDDEN, "forbidden");
    }
    let body = match console.body(&id).await {
        Ok(body) => body,
        Err(e) => return failure(e),
    };
    let Some((name, bytes)) = attachment_bytes(&body, index) else { return visit.not_found(&console) };
    let mut response = bytes.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    let safe: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || ".-_ ".contains(c) { c } else { '_' }).take(100).collect();
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{safe}\"")) {
        h.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// The attachments of a message: name, declared type, size.
pub(super) fn attachments(body: &[u8]) -> Vec<(String, String, usize)> {
    let Some(message) = mail_parser::MessageParser::default().parse(body) else { return Vec::new() };
    message
        .attachments()
        .map(|part| {
            let kind = part.content_type().map_or("application/octet-stream".to_string(), |t| match t.subtype() {
                Some(sub) => format!("{}/{sub}", t.ctype()),
                None => t.ctype().to_string(),
            });
            (part.attachment_name().unwrap_or("(unnamed)").to_string(), kind, part.contents().len())
        })
        .collect()
}

fn attachment_bytes(body: &[u8], index: usize) -> Option<(String, Vec<u8>)> {
    let message = mail_parser::MessageParser::default().parse(body)?;
    let part = message.attachments().nth(index)?;
    Some((part.attachment_name().unwrap_or("attachment").to_string(), part.contents().to_vec()))
}
