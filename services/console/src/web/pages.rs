//! The console's pages, server-rendered with maud (every interpolation is escaped).
//! No script anywhere: every action is a form, so the console works without
//! JavaScript, and the Content-Security-Policy forbids scripts and remote images.

use maud::{DOCTYPE, Markup, html};
use rempart_model::SymbolHit;
use rempart_model::verdict::{MEANINGFUL_POINTS, OUTBOUND_SCALE};
use rempart_state::verdicts::VerdictRecord;

use super::i18n::Lang;
use crate::accounts::Account;
use crate::quarantine::{Entry, Page, Query, Status};

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#1d2733;background:#f5f7fa}\
header{background:#1d3557;color:#fff;padding:.6em 1.2em;display:flex;gap:1em;align-items:center}\
header a{color:#fff}header form{margin-left:auto}main{padding:1.2em;max-width:72em}\
table{border-collapse:collapse;width:100%;background:#fff}td,th{border-bottom:1px solid #dde;padding:.35em .5em;text-align:left;vertical-align:top}td{overflow-wrap:break-word}th,td.status,td.score,td.nowrap,td>code{white-space:nowrap}\
pre{white-space:pre-wrap;background:#fff;padding:.8em;border:1px solid #dde;max-height:30em;overflow:auto}\
.notice{background:#e8f4ea;border:1px solid #9c9;padding:.6em}.error{background:#fbeaea;border:1px solid #c99;padding:.6em}\
form.inline{display:inline}fieldset{border:1px solid #dde;background:#fff}.score{font-variant-numeric:tabular-nums}";

/// The page frame: title, the signed-in account and the log-out form.
pub fn layout(lang: Lang, title: &str, viewer: Option<(&Account, &str)>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — " (lang.t("title")) }
                style { (maud::PreEscaped(STYLE)) }
            }
            body {
                header {
                    strong { (lang.t("title")) }
                    @if let Some((account, csrf)) = viewer {
                        a href="/quarantine" { (lang.t("quarantine")) }
                        a href="/tracking" { (lang.t("tracking")) }
                        @if crate::roles::allows(account.role, crate::roles::Permission::ReadQueue) {
                            a href="/queue" { (lang.t("queue")) }
                        }
                        a href="/lists" { (lang.t("lists")) }
                        @if crate::roles::allows(account.role, crate::roles::Permission::ReadReports) {
                            a href="/reports" { (lang.t("reports")) }
                        }
                        @if crate::roles::allows(account.role, crate::roles::Permission::ReadDomains) {
                            a href="/domains" { (lang.t("domains")) }
                        }
                        @if crate::roles::allows(account.role, crate::roles::Permission::ReadAccounts) {
                            a href="/accounts" { (lang.t("accounts")) }
                        }
                        @if account.role.is_staff() {
                            a href="/tenants" { (lang.t("tenants")) }
                        }
                        a href="/account" { (lang.t("account")) }
                        span { (lang.t("signed_in_as")) " " (account.email) }
                        form.inline method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(csrf);
                            button type="submit" id="logout" { (lang.t("logout")) }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

pub fn login(lang: Lang, csrf: &str, error: Option<&str>) -> Markup {
    layout(
        lang,
        lang.t("login"),
        None,
        html! {
            h1 { (lang.t("login")) }
            @if let Some(error) = error { p.error role="alert" { (error) } }
            form method="post" action="/login" {
                input type="hidden" name="csrf" value=(csrf);
                p { label { (lang.t("email")) br; input type="email" name="email" id="email" required autocomplete="username"; } }
                p { label { (lang.t("password")) br; input type="password" name="password" id="password" required autocomplete="current-password"; } }
                p { label { (lang.t("code")) br; input name="code" id="code" inputmode="numeric" autocomplete="one-time-code" size="8"; } }
                p { button type="submit" id="login" { (lang.t("login")) } }
            }
        },
    )
}

/// "2026-12-04 11:58" (UTC).
pub fn when(at: u64) -> String {
    rempart_model::date::iso_minute(at)
}

/// A date as short as it can be read: the time today, month-day and time this year,
/// the whole date before (the full one on hover).
pub fn compact_when(at: u64) -> maud::Markup {
    let full = rempart_model::date::iso_minute(at);
    let now = rempart_model::date::iso_minute(rempart_model::date::unix_now());
    let short = if full.get(..10) == now.get(..10) {
        full.get(11..).unwrap_or(&full).to_string()
    } else if full.get(..4) == now.get(..4) {
        full.get(5..).unwrap_or(&full).to_string()
    } else {
        full.get(..10).unwrap_or(&full).to_string()
    };
    html! { time datetime=(full) title=(full) style="white-space:nowrap" { (short) } }
}

/// A cell's text cut to `max` characters, the whole of it on hover.
pub fn clipped(text: &str, max: usize) -> maud::Markup {
    if text.chars().count() <= max {
        return html! { (text) };
    }
    let short: String = text.chars().take(max.saturating_sub(1)).collect();
    html! { span title=(text) { (short) "…" } }
}

fn status_text(lang: Lang, status: Status) -> &'static str {
    match status {
        Status::Held => lang.t("held"),
        Status::Released => lang.t("released"),
    }
}

pub struct ListView<'a> {
    pub query: &'a Query,
    /// The date fields as typed (YYYY-MM-DD).
    pub since: &'a str,
    pub until: &'a str,
    pub page_number: usize,
    pub page: &'a Page,
    /// The query string without `page=`, for the paging links.
    pub link_query: String,
}

pub fn quarantine_list(lang: Lang, viewer: &Account, csrf: &str, view: &ListView<'_>) -> Markup {
    let q = view.query;
    let min_score = q.min_score.map(|s| s.to_string()).unwrap_or_default();
    layout(
        lang,
        lang.t("quarantine"),
        Some((viewer, csrf)),
        html! {
            h1 { (lang.t("quarantine")) }
            form method="get" action="/quarantine" {
                fieldset {
                    legend { (lang.t("search")) }
                    label { (lang.t("sender")) " " input name="sender" value=(q.sender); } " "
                    label { (lang.t("recipient")) " " input name="recipient" value=(q.recipient); } " "
                    label { (lang.t("subject")) " " input name="subject" value=(q.subject); } " "
                    label { (lang.t("since")) " " input name="since" value=(view.since) size="10"; } " "
                    label { (lang.t("until")) " " input name="until" value=(view.until) size="10"; } " "
                    label { (lang.t("min_score")) " " input name="min_score" value=(min_score) size="5"; } " "
                    button type="submit" { (lang.t("search")) }
                }
            }
            @if view.page.entries.is_empty() {
                p { (lang.t("no_messages")) }
            } @else {
                form method="post" action="/quarantine/bulk" {
                    input type="hidden" name="csrf" value=(csrf);
                    p {
                        (lang.t("with_selected")) " "
                        button type="submit" name="action" value="release" id="bulk-release" { (lang.t("release")) } " "
                        button type="submit" name="action" value="delete" id="bulk-delete" { (lang.t("delete")) } " "
                        button type="submit" name="action" value="spam" id="bulk-spam" { (lang.t("report_spam")) }
                    }
                    table #held {
                        thead { tr {
                            th { } th { (lang.t("date")) } th { (lang.t("sender")) } th { (lang.t("recipients")) }
                            th { (lang.t("subject")) } th { (lang.t("score")) } th { (lang.t("status")) }
                        } }
                        tbody {
                            @for e in &view.page.entries {
                                tr {
                                    td { input type="checkbox" name={ "pick." (e.queue_id) } value="1" aria-label=(e.queue_id); }
                                    td { (compact_when(e.at)) }
                                    td { (clipped(&e.sender, 32)) }
                                    td { (clipped(&e.recipients.join(", "), 40)) }
                                    td { a href={ "/quarantine/" (e.queue_id) } { @if e.subject.is_empty() { "(—)" } @else { (clipped(&e.subject, 60)) } } }
                                    td.score { (format!("{:.2}", e.score)) }
                                    td.status { (status_text(lang, e.status)) }
                                }
                            }
                        }
                    }
                }
            }
            p {
                @if view.page_number > 0 {
                    a rel="prev" href={ "/quarantine?" (view.link_query) "page=" (view.page_number - 1) } { "← " (lang.t("newer")) } " "
                }
                @if view.page.has_more {
                    a rel="next" href={ "/quarantine?" (view.link_query) "page=" (view.page_number + 1) } { (lang.t("older")) " →" }
                }
            }
        },
    )
}

/// The findings; `details` (what triggered each: names, addresses, URLs) only for a
/// reader who may see the message itself, never on the public `/why/` page.
/// The findings with their weights; `rest`: what the findings left out added in all
/// (shown on its own row, so the weights shown sum to the score).
fn symbol_table(lang: Lang, symbols: &[SymbolHit], details: bool, rest: Option<f64>) -> Markup {
    html! {
        table {
            thead { tr { th { (lang.t("rule")) } th { (lang.t("weight")) } th { (lang.t("meaning")) } } }
            tbody {
                @for s in symbols {
                    tr {
                        td { code { (s.name) } }
                        td.score { (format!("{:+.2}", s.score)) }
                        td {
                            (if lang == Lang::Fr { &s.description_fr } else { &s.description })
                            @if let Some(detail) = s.detail.as_ref().filter(|_| details).map(|d| lang.detail(d)).filter(|d| !d.is_empty()) { " (" (detail) ")" }
                        }
                    }
                }
                @if let Some(rest) = rest.filter(|r| r.abs() >= 0.005) {
                    tr id="other-findings" { td {} td.score { (format!("{rest:+.2}")) } td { (lang.t("other_findings")) } }
                }
            }
        }
    }
}

fn human_size(bytes: usize) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1024 * 1024 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{:.1} MiB", b as f64 / 1048576.0),
    }
}

/// "Delete these?" (or release, report as spam): the messages, then one button that
/// confirms for all of them.
pub fn confirm_bulk(lang: Lang, viewer: &Account, csrf: &str, action: &str, entries: &[Entry]) -> Markup {
    let (question, button) = match action {
        "release" => (lang.t("confirm_release_these"), lang.t("release")),
        "spam" => (lang.t("confirm_spam_these"), lang.t("report_spam")),
        _ => (lang.t("confirm_delete_these"), lang.t("delete")),
    };
    layout(
        lang,
        lang.t("quarantine"),
        Some((viewer, csrf)),
        html! {
            h1 { (question) }
            form method="post" action="/quarantine/bulk" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="action" value=(action);
                input type="hidden" name="confirm" value="yes";
                ul {
                    @for e in entries {
                        li {
                            input type="hidden" name={ "pick." (e.queue_id) } value="1";
                            (compact_when(e.at)) " — " (clipped(&e.sender, 40)) " — " (clipped(if e.subject.is_empty() { "(—)" } else { &e.subject }, 80))
                        }
                    }
                }
                button type="submit" id="confirm" { (button) " (" (entries.len()) ")" } " "
                a href="/quarantine" { (lang.t("cancel")) }
            }
        },
    )
}

pub struct MessageView<'a> {
    pub entry: &'a Entry,
    pub headers: Vec<(String, String)>,
    pub preview: String,
    pub notice: Option<&'a str>,
    /// Name, declared type and size of each attachment.
    pub attachments: Vec<(String, String, usize)>,
    /// The reader may download them (admins).
    pub may_download: bool,
}

pub fn message(lang: Lang, viewer: &Account, csrf: &str, view: &MessageView<'_>) -> Markup {
    let e = view.entry;
    let action = |path: &str, label: &str, id: &str| {
        html! {
            form.inline method="post" action={ "/quarantine/" (e.queue_id) "/" (path) } {
                input type="hidden" name="csrf" value=(csrf);
                button type="submit" id=(id) { (label) }
            }
        }
    };
    layout(
        lang,
        if e.subject.is_empty() { "(—)" } else { &e.subject },
        Some((viewer, csrf)),
        html! {
            p { a href="/quarantine" { "← " (lang.t("back")) } }
            @if let Some(notice) = view.notice { p.notice role="status" { (notice) } }
            h1 { @if e.subject.is_empty() { "(—)" } @else { (e.subject) } }
            table {
                tr { th { (lang.t("reference")) } td { code { (e.queue_id) } } }
                tr { th { (lang.t("date")) } td { (when(e.at)) } }
                tr { th { (lang.t("sender")) } td { (e.sender) } }
                tr { th { (lang.t("recipients")) } td { (e.recipients.join(", ")) } }
                tr { th { (lang.t("score")) } td.score { (format!("{:.2}", e.score)) } }
                @if e.envelope.submitted_by.is_some() {
                    // Outbound mail: the 0–15 scale accounts know.
                    tr {
                        th { (lang.t("outbound_score")) }
                        td id="outbound-score" {
                            meter min="0" max=(OUTBOUND_SCALE) low="3" high="5" optimum="0" value=(e.score.clamp(0.0, OUTBOUND_SCALE)) {}
                            " " (format!("{:.1} / {OUTBOUND_SCALE:.0}", e.score.clamp(0.0, OUTBOUND_SCALE)))
                        }
                    }
                }
                tr { th { (lang.t("status")) } td id="status" { (status_text(lang, e.status)) } }
            }
            p {
                @if e.status == Status::Held { (action("release", lang.t("release"), "release")) " " }
                (action("delete", lang.t("delete"), "delete")) " "
                (action("spam", lang.t("report_spam"), "spam"))
            }
            @if !e.sender.is_empty() {
                p {
                    (action("list/allow", lang.t("allow_sender"), "allow-sender")) " "
                    (action("list/block", lang.t("block_sender"), "block-sender"))
                }
            }
            h2 { (lang.t("symbols")) }
            (symbol_table(lang, &e.symbols, true, None))
            @if !view.attachments.is_empty() {
                h2 { (lang.t("attachments")) }
                table #attachments {
                    thead { tr { th { (lang.t("name")) } th { (lang.t("type")) } th { (lang.t("size")) } } }
                    tbody {
                        @for (i, (name, kind, size)) in view.attachments.iter().enumerate() {
                            tr {
                                td {
                                    @if view.may_download {
                                        a href={ "/quarantine/" (e.queue_id) "/attachment/" (i) } { (clipped(name, 60)) }
                                    } @else { (clipped(name, 60)) }
                                }
                                td { code { (kind) } }
                                td { (human_size(*size)) }
                            }
                        }
                    }
                }
            }
            h2 { (lang.t("preview")) }
            pre { (view.preview) }
            h2 { (lang.t("headers")) }
            pre { @for (name, value) in &view.headers { (name) ": " (value) "\n" } }
        },
    )
}

/// The public page for a refusal: the reply, the reasons (findings under 0.1 point
/// left out, no internal details), what to do. Names no recipient, only domains.
pub fn why(lang: Lang, record: &VerdictRecord, advice: &[&str]) -> Markup {
    let positive: Vec<SymbolHit> =
        record.symbols.iter().filter(|s| s.score.abs() >= MEANINGFUL_POINTS || super::advice::is_malware(s)).cloned().collect();
    let rest = record.score - positive.iter().map(|s| s.score).sum::<f64>();
    layout(
        lang,
        lang.t("why_title"),
        None,
        html! {
            h1 { (lang.t("why_title")) }
            table {
                tr { th { (lang.t("reference")) } td { code { (record.queue_id) } } }
                tr { th { (lang.t("date")) } td { (when(record.at)) " UTC" } }
                tr { th { (lang.t("from_domain")) } td { (record.sender_domain) } }
                tr { th { (lang.t("to_domains")) } td { (record.recipient_domains.join(", ")) } }
                tr { th { (lang.t("score")) } td.score { (format!("{:.2}", record.score)) } }
            }
            h2 { (lang.t("reply_given")) }
            pre id="reply" { (record.reply) }
            @if let Some(listed) = &record.listed { p { (lang.t("listed")) ": " code { (listed) } } }
            @if let Some(malware) = &record.malware { h2 { (lang.t("malware_found")) } p id="malware" { (malware) } }
            @if !positive.is_empty() { h2 { (lang.t("why_refused")) } (symbol_table(lang, &positive, false, Some(rest))) }
            h2 { (lang.t("what_to_do")) }
            ul { @for a in advice { li { (a) } } }
        },
    )
}

/// A short page with one message (errors, not found); a signed-in reader gets a way
/// back to their list, anyone else (a sender on a public page) no link into the console.
pub fn notice(lang: Lang, title: &str, text: &str, viewer: Option<(&Account, &str)>) -> Markup {
    let signed_in = viewer.is_some();
    layout(lang, title, viewer, html! { h1 { (title) } p { (text) } @if signed_in { p { a href="/quarantine" { (lang.t("back")) } } } })
}

/// The page a digest link opens: what the message is, and a button that releases it
/// (a GET never acts: link scanners fetch every URL in a mail).
pub fn confirm_release(lang: Lang, entry: &Entry, link_query: &[(&str, &str)], csrf: &str) -> Markup {
    layout(
        lang,
        lang.t("release"),
        None,
        html! {
            h1 { (lang.t("release")) " — " @if entry.subject.is_empty() { "(—)" } @else { (entry.subject) } }
            table {
                tr { th { (lang.t("date")) } td { (when(entry.at)) } }
                tr { th { (lang.t("sender")) } td { (entry.sender) } }
                tr { th { (lang.t("score")) } td.score { (format!("{:.2}", entry.score)) } }
                tr { th { (lang.t("status")) } td id="status" { (status_text(lang, entry.status)) } }
            }
            (symbol_table(lang, &entry.symbols, true, None))
            @if entry.status == Status::Held {
                form method="post" action={ "/d/" (entry.queue_id) } {
                    input type="hidden" name="csrf" value=(csrf);
                    @for (name, value) in link_query { input type="hidden" name=(name) value=(value); }
                    p { button type="submit" id="release" { (lang.t("release")) } }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(name: &str, score: f64) -> SymbolHit {
        SymbolHit { name: name.into(), score, group: "g".into(), description: name.into(), description_fr: name.into(), detail: None }
    }

    #[test]
    fn the_why_page_sums_what_it_leaves_out_on_a_row_of_its_own() {
        let record = VerdictRecord {
            queue_id: "Q1".into(),
            at: 0,
            action: rempart_model::Action::Reject,
            reply: "550 5.7.1 refused".into(),
            score: 8.07,
            symbols: vec![hit("BIG", 6.0), hit("MIDDLE", 2.0), hit("SMALL_A", 0.04), hit("SMALL_B", 0.03)],
            listed: None,
            sender_domain: "sender.example".into(),
            recipient_domains: vec!["example.com".into()],
            malware: None,
        };
        let page = why(Lang::En, &record, &[]).into_string();
        assert!(page.contains("BIG") && page.contains("MIDDLE") && !page.contains("SMALL_A"), "{page}");
        assert!(page.contains("id=\"other-findings\"") && page.contains("+0.07"), "{page}");
        let without_small = VerdictRecord { score: 8.0, symbols: record.symbols[..2].to_vec(), ..record };
        assert!(!why(Lang::En, &without_small, &[]).into_string().contains("other-findings"));
    }
}
