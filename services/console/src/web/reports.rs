//! `/reports`: a domain's (or, for the operator, the whole gateway's) messages by action
//! over time as an SVG chart drawn here (no script, no image fetched), the rules that
//! hit most, the senders refused most, deliveries, and what the quarantine holds;
//! `/reports.csv` and `/api/v1/reports` give the same numbers.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;

use super::i18n::Lang;
use super::{Visit, failure, pages, to_login};
use crate::Console;
use crate::accounts::{Account, Role};
use crate::quarantine::Usage;
use crate::reports::{self, ACTIONS, ALL, Report};

pub fn routes() -> Router<Arc<Console>> {
    Router::new().route("/reports", get(page)).route("/reports.csv", get(csv)).route("/api/v1/reports", get(api))
}

#[derive(Debug, Default, Deserialize)]
struct ReportParams {
    #[serde(default)]
    scope: String,
    days: Option<u64>,
    lang: Option<String>,
}

/// The periods offered.
const PERIODS: [u64; 4] = [1, 7, 30, 90];

/// The scope asked for, if the account may read it: the operator any domain or `*`
/// (the default), a domain admin their domains (the first by default); users none.
fn scope_for(account: &Account, asked: &str) -> Option<String> {
    let asked = asked.trim().to_ascii_lowercase();
    match account.role {
        Role::Operator | Role::Helpdesk | Role::Auditor => Some(if asked.is_empty() { ALL.to_string() } else { asked }),
        Role::TenantAdmin if asked.is_empty() => account.domains.first().cloned(),
        Role::TenantAdmin => account.domains.contains(&asked).then_some(asked),
        Role::User => None,
    }
}

async fn build(console: &Console, scope: &str, days: u64) -> Result<(Report, Usage), Response> {
    let report = reports::load(&*console.state.store, scope, days, rempart_model::date::unix_now()).await.map_err(failure)?;
    let (store, domain) = (console.quarantine.clone(), (scope != ALL).then(|| scope.to_string()));
    let usage = crate::blocking(move || store.usage(domain.as_deref())).await.map_err(failure)?;
    Ok((report, usage))
}

async fn page(State(console): State<Arc<Console>>, headers: HeaderMap, Query(q): Query<ReportParams>) -> Response {
    let visit = Visit::new(&console, &headers, q.lang.as_deref()).await;
    let Some(viewer) = &visit.viewer else { return to_login() };
    let Some(scope) = scope_for(viewer, &q.scope) else { return visit.not_found(&console) };
    let days = q.days.unwrap_or(7);
    let (report, usage) = match build(&console, &scope, days).await {
        Ok(built) => built,
        Err(response) => return response,
    };
    let csrf = visit.csrf_token(&console);
    // The operator's view: a picker of the domains with counts, and a row for each.
    let (domains, per_domain) = if viewer.role.is_staff() {
        let store = &*console.state.store;
        let domains = reports::domains(store).await.unwrap_or_default();
        let rows = if scope == ALL {
            reports::per_domain(store, days, rempart_model::date::unix_now()).await.unwrap_or_default()
        } else {
            Vec::new()
        };
        (domains, rows)
    } else {
        (viewer.domains.clone(), Vec::new())
    };
    // Staff see which weights filter the mail: with Bayes, or the rules alone until it
    // has learned enough.
    let learning = match (&console.state.bayes, viewer.role.is_staff()) {
        (Some(bayes), true) => bayes.learned().await.ok().map(|(spam, ham)| (spam, ham, console.state.bayes_min_learned)),
        _ => None,
    };
    let view = ReportView { report: &report, usage, domains: &domains, per_domain: &per_domain, learning };
    visit.page(&console, StatusCode::OK, report_page(visit.lang, viewer, &csrf, &view))
}

/// What the report page shows.
struct ReportView<'a> {
    report: &'a Report,
    usage: Usage,
    /// The domains the reader may pick.
    domains: &'a [String],
    /// The operator's per-domain totals (the whole gateway's report only).
    per_domain: &'a [(String, std::collections::BTreeMap<String, i64>)],
    /// Staff only: spam and ham Bayes learned, and how many of each it needs to vote.
    learning: Option<(i64, i64, u64)>,
}

async fn csv(State(console): State<Arc<Console>>, headers: HeaderMap, Query(q): Query<ReportParams>) -> Response {
    let visit = Visit::new(&console, &headers, None).await;
    let Some(viewer) = &visit.viewer else { return to_login() };
    let Some(scope) = scope_for(viewer, &q.scope) else { return visit.not_found(&console) };
    let (report, _) = match build(&console, &scope, q.days.unwrap_or(7)).await {
        Ok(built) => built,
        Err(response) => return response,
    };
    let name = format!("rempart-report-{}-{}d.csv", if scope == ALL { "all" } else { &scope }, report.days);
    let mut response = report.csv().into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

async fn api(State(console): State<Arc<Console>>, headers: HeaderMap, Query(q): Query<ReportParams>) -> Response {
    let account = super::api::account_or_401!(console, headers);
    let Some(scope) = scope_for(&account, &q.scope) else {
        return super::api::error(StatusCode::FORBIDDEN, "reports are for operators and for domain admins of their domains");
    };
    match build(&console, &scope, q.days.unwrap_or(7)).await {
        Ok((report, usage)) => Json(json!({ "report": report, "quarantine": usage })).into_response(),
        Err(response) => response,
    }
}

fn action_color(action: &str) -> &'static str {
    match action {
        "accept" => "#2a9d8f",
        "add_header" => "#e9c46a",
        "greylist" => "#8ecae6",
        "quarantine" => "#f4a261",
        "soft_reject" => "#e76f51",
        "tempfail" => "#9d4edd",
        "reject" => "#c1121f",
        _ => "#6c757d",
    }
}

/// Stacked bars, one per bucket, actions stacked in [`ACTIONS`] order.
fn chart(lang: Lang, report: &Report) -> Markup {
    const W: f64 = 760.0;
    const H: f64 = 220.0;
    const LEFT: f64 = 48.0;
    const BOTTOM: f64 = 24.0;
    let max = report.buckets.iter().map(|b| b.total()).max().unwrap_or(0).max(1) as f64;
    let n = report.buckets.len().max(1) as f64;
    let slot = (W - LEFT) / n;
    let bar = (slot * 0.8).max(1.0);
    let hourly = report.days == 1;
    let label_every = (report.buckets.len() / 12).max(1);
    // (x, y, height, colour, tooltip) of every segment, and (x, text) of every label.
    let mut segments = Vec::new();
    let mut labels = Vec::new();
    for (i, bucket) in report.buckets.iter().enumerate() {
        let x = LEFT + i as f64 * slot + (slot - bar) / 2.0;
        let mut top = H;
        for action in ACTIONS {
            let count = bucket.actions.get(action).copied().unwrap_or(0);
            if count > 0 {
                let h = count as f64 / max * (H - 4.0);
                top -= h;
                segments.push((x, top, h, action_color(action), format!("{}: {count}", action_name(lang, action))));
            }
        }
        if i % label_every == 0 {
            let text = if hourly {
                format!("{:02}h", (bucket.start % 86_400) / 3600)
            } else {
                rempart_model::date::iso_day(bucket.start).get(5..).unwrap_or_default().to_string()
            };
            labels.push((x + bar / 2.0, text));
        }
    }
    html! {
        svg xmlns="http://www.w3.org/2000/svg" width=(W) height=(H + BOTTOM) viewBox=(format!("0 0 {W} {}", H + BOTTOM))
            role="img" aria-label=(lang.t("messages_by_action")) id="chart" {
            line x1=(LEFT) y1="0" x2=(LEFT) y2=(H) stroke="#889" {}
            line x1=(LEFT) y1=(H) x2=(W) y2=(H) stroke="#889" {}
            text x=(LEFT - 4.0) y="12" text-anchor="end" font-size="11" { (max as i64) }
            text x=(LEFT - 4.0) y=(H) text-anchor="end" font-size="11" { "0" }
            @for (x, y, h, color, tip) in &segments {
                rect x=(format!("{x:.1}")) y=(format!("{y:.1}")) width=(format!("{bar:.1}")) height=(format!("{h:.1}")) fill=(color) {
                    title { (tip) }
                }
            }
            @for (x, text) in &labels {
                text x=(format!("{x:.1}")) y=(H + 16.0) text-anchor="middle" font-size="10" { (text) }
            }
        }
        p {
            @for action in ACTIONS {
                span style=(format!("display:inline-block;width:.9em;height:.9em;background:{};margin:0 .3em 0 1em", action_color(action))) {}
                (action_name(lang, action))
            }
        }
    }
}

/// An action's name in the reader's language.
fn action_name(lang: Lang, action: &str) -> &'static str {
    match action {
        "accept" => lang.t("act_accept"),
        "add_header" => lang.t("act_add_header"),
        "greylist" => lang.t("act_greylist"),
        "quarantine" => lang.t("act_quarantine"),
        "soft_reject" => lang.t("act_soft_reject"),
        "reject" => lang.t("act_reject"),
        "discard" => lang.t("act_discard"),
        _ => lang.t("act_tempfail"),
    }
}

fn counts_table(title: &str, rows: &[(String, i64)], id: &str) -> Markup {
    html! {
        h2 { (title) }
        @if rows.is_empty() { p { "—" } } @else {
            table id=(id) { tbody { @for (name, count) in rows { tr { td { code { (name) } } td.score { (count) } } } } }
        }
    }
}

/// Columns of the outbound usage table, in order: (count, heading's text key).
const OUTBOUND_COLUMNS: [(&str, &str); 9] = [
    ("sent", "out_sent"),
    ("recipients", "out_recipients"),
    ("bytes", "out_bytes"),
    ("blocked", "out_blocked"),
    ("refused", "out_refused"),
    ("limited", "out_limited"),
    ("deferred", "out_deferred"),
    ("login", "out_logins"),
    ("suspended", "out_suspended"),
];

/// What each logged-in account sent (SMTP-out usage), one row per account.
fn outbound_table(lang: Lang, report: &Report) -> Markup {
    html! {
        h2 { (lang.t("outbound_usage")) }
        @if report.outbound.is_empty() { p { "—" } } @else {
            table id="outbound" {
                thead { tr { th { (lang.t("out_account")) } @for (_, heading) in OUTBOUND_COLUMNS { th { (lang.t(heading)) } } } }
                tbody {
                    @for (account, counts) in &report.outbound {
                        tr { td { code { (account) } } @for (c, _) in OUTBOUND_COLUMNS { td.score { (counts.get(c).copied().unwrap_or(0)) } } }
                    }
                }
            }
        }
    }
}

fn report_page(lang: Lang, viewer: &Account, csrf: &str, view: &ReportView<'_>) -> Markup {
    let (report, usage) = (view.report, &view.usage);
    let scope_label = if report.scope == ALL { lang.t("all_domains").to_string() } else { report.scope.clone() };
    let scope_param = if report.scope == ALL { String::new() } else { report.scope.clone() };
    let totals: Vec<(String, i64)> =
        ACTIONS.iter().filter_map(|a| report.totals.get(*a).map(|c| (action_name(lang, a).to_string(), *c))).collect();
    let deliveries: Vec<(String, i64)> = report.deliveries.iter().map(|(k, v)| (k.clone(), *v)).collect();
    pages::layout(
        lang,
        lang.t("reports"),
        Some((viewer, csrf)),
        html! {
            h1 { (lang.t("reports")) " — " (scope_label) }
            form method="get" action="/reports" {
                @if viewer.role.is_staff() {
                    label { (lang.t("domain")) " "
                        select name="scope" id="scope" {
                            option value="" selected[report.scope == ALL] { (lang.t("all_domains")) }
                            @for d in view.domains { option value=(d) selected[*d == report.scope] { (d) } }
                        }
                    } " "
                } @else if view.domains.len() > 1 {
                    select name="scope" id="scope" { @for d in view.domains { option value=(d) selected[*d == report.scope] { (d) } } } " "
                }
                select name="days" {
                    @for p in PERIODS { option value=(p) selected[p == report.days] { (p) " " (lang.t(if p == 1 { "day" } else { "days" })) } }
                }
                " " button type="submit" { (lang.t("show")) }
                " " a href=(format!("/reports.csv?scope={scope_param}&days={}", report.days)) id="csv" { "CSV" }
            }
            p {
                (rempart_model::date::iso_day(report.since)) " → "
                (rempart_model::date::iso_day(report.since + (report.days - 1) * 86_400)) " (UTC)"
            }
            @if let Some((spam, ham, needed)) = view.learning {
                @let voting = spam >= needed as i64 && ham >= needed as i64;
                p id="weights-in-use" {
                    (lang.t(if voting { "weights_bayes" } else { "weights_rules" }))
                    " (" (spam) " spam, " (ham) " ham " (lang.t("learned")) "; " (lang.t("votes_from")) " " (needed) ")"
                }
            }
            h2 { (lang.t("messages_by_action")) }
            (chart(lang, report))
            (counts_table(lang.t("totals"), &totals, "totals"))
            @if !view.per_domain.is_empty() {
                h2 { (lang.t("per_domain")) }
                table #per-domain {
                    thead { tr {
                        th { (lang.t("domain")) }
                        @for a in ACTIONS { th { (action_name(lang, a)) } }
                        th { (lang.t("total")) }
                    } }
                    tbody {
                        @for (domain, counts) in view.per_domain {
                            tr {
                                td { a href={ "/reports?scope=" (super::percent_encode(domain)) "&days=" (report.days) } { (domain) } }
                                @for a in ACTIONS { td.score { (counts.get(a).copied().unwrap_or(0)) } }
                                td.score { (counts.values().sum::<i64>()) }
                            }
                        }
                    }
                }
            }
            (counts_table(lang.t("top_symbols"), &report.top_symbols, "top-symbols"))
            (counts_table(lang.t("top_refused"), &report.top_refused_senders, "top-refused"))
            (counts_table(lang.t("deliveries"), &deliveries, "deliveries"))
            (outbound_table(lang, report))
            h2 { (lang.t("quarantine")) }
            p id="quarantine-usage" { (usage.messages) " " (lang.t("messages_held")) ", " (format!("{:.1}", usage.bytes as f64 / 1_048_576.0)) " MiB" }
        },
    )
}
