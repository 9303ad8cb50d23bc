//! Rempart's scanner. Checks add named symbols (SPF, DKIM, DMARC, ARC, DNS lists,
//! headers, MIME/HTML, Bayes); weights (with per-group limits) sum to the score;
//! composites combine symbols; the AWL pulls the score towards the sender's history;
//! each recipient domain's policy maps the score, or an allow/block list entry, to an
//! action. The verdict keeps every symbol
//! with its description so a rejection can explain itself.

pub mod checks;
pub mod composite;
pub mod diagnose;
pub mod dns;
pub mod grpc;
pub mod html;
pub mod lists;
mod marking;
pub mod message;
pub mod post_queue;
pub mod spf;
pub mod symbols;
pub mod tokens;
pub mod traced;

pub use marking::spam_headers;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use rempart_model::config::PolicyConfig;
use rempart_model::{Action, Config, Edits, Refusal, SessionFacts, SymbolHit, Verdict};
use rempart_state::SharedState;
use rempart_state::awl::AwlEntry;

use checks::{Context, Findings};
use composite::Expr;
use lists::Entry;
use message::Analysis;

/// Free-mail providers (SpamAssassin's idea of a freemail domain), extended by
/// `scanner.freemail_domains`.
const FREEMAIL: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "yahoo.fr",
    "yahoo.co.uk",
    "ymail.com",
    "hotmail.com",
    "hotmail.fr",
    "outlook.com",
    "outlook.fr",
    "live.com",
    "live.fr",
    "msn.com",
    "aol.com",
    "aol.fr",
    "icloud.com",
    "me.com",
    "mail.com",
    "gmx.com",
    "gmx.de",
    "gmx.fr",
    "gmx.net",
    "web.de",
    "laposte.net",
    "orange.fr",
    "wanadoo.fr",
    "free.fr",
    "sfr.fr",
    "neuf.fr",
    "bbox.fr",
    "yandex.ru",
    "yandex.com",
    "mail.ru",
    "protonmail.com",
    "proton.me",
    "zoho.com",
    "tutanota.com",
    "qq.com",
    "163.com",
    "126.com",
];

#[derive(Debug, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ScannerError {
    /// The configuration field at fault, e.g. `scanner.weights.FOO`.
    pub field: String,
    pub message: String,
}

/// What the scanner is asked about.
pub struct ScanInput<'a> {
    pub facts: &'a SessionFacts,
    pub return_path: &'a str,
    pub recipients: &'a [String],
    pub message: &'a [u8],
}

struct Composite {
    name: String,
    expr: Expr,
    weight: f64,
    en: String,
    fr: String,
}

struct Policy {
    thresholds: PolicyConfig,
    allow: Vec<(String, Entry)>,
    block: Vec<(String, Entry)>,
}

/// What a policy says before the score is known.
enum Listed {
    Allowed(String),
    Blocked(String),
}

pub struct Scanner {
    id: String,
    hostname: String,
    weights: HashMap<String, f64>,
    group_limits: BTreeMap<String, f64>,
    composites: Vec<Composite>,
    freemail: HashSet<String>,
    default_policy: Policy,
    domain_policies: HashMap<String, Policy>,
    dns: dns::Dns,
    dns_lists: Vec<rempart_model::config::DnsListConfig>,
    uri_lists: Vec<rempart_model::config::DnsListConfig>,
    weight_overrides: HashSet<String>,
    /// AWL and Bayes; `None` when the scanner runs without shared state.
    state: Option<Arc<SharedState>>,
}

/// What the DNS-based checks found (nothing when offline).
#[derive(Debug, Default)]
pub struct NetworkFindings {
    findings: Findings,
    offline: bool,
    elapsed_us: u64,
    /// The Authentication-Results header (name and CRLF included).
    authentication_results: Option<String>,
    /// The sender's history (AWL), looked up with the DNS checks.
    awl: Option<AwlEntry>,
}

impl Scanner {
    /// Builds the scanner; every symbol name, composite expression and list entry in
    /// the configuration is checked here.
    pub fn new(config: &Config) -> Result<Scanner, ScannerError> {
        let err = |field: String, message: String| ScannerError { field, message };
        let mut weights: HashMap<String, f64> = symbols::SYMBOLS.iter().map(|s| (s.name.to_string(), s.weight)).collect();
        let list_symbols: Vec<String> = config
            .scanner
            .dns_lists
            .iter()
            .chain(&config.scanner.uri_lists)
            .flat_map(|l| [l.symbol.clone(), format!("{}_BLOCKED", l.symbol)])
            .chain(std::iter::once("URIBL_BLOCKED".to_string()))
            .collect();
        weights.insert("URIBL_BLOCKED".into(), 0.0);
        for (table, lists) in [("dnsbl", &config.scanner.dns_lists), ("uribl", &config.scanner.uri_lists)] {
            for (i, list) in lists.iter().enumerate() {
                validate_list(list, &format!("scanner.{table}[{i}]"), &list_symbols)?;
                weights.insert(list.symbol.clone(), list.weight);
                weights.insert(format!("{}_BLOCKED", list.symbol), 0.0);
            }
        }
        for (name, weight) in &config.scanner.weights {
            if symbols::lookup(name).is_none() && !config.scanner.composites.iter().any(|c| &c.name == name) && !list_symbols.contains(name)
            {
                return Err(err(format!("scanner.weights.{name}"), "no such symbol".into()));
            }
            if !weight.is_finite() {
                return Err(err(format!("scanner.weights.{name}"), "must be a finite number".into()));
            }
            weights.insert(name.clone(), *weight);
        }
        let mut composites = Vec::new();
        for (i, c) in config.scanner.composites.iter().enumerate() {
            let field = |k: &str| format!("scanner.composite[{i}].{k}");
            if c.name.is_empty() || !c.name.chars().all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit() || ch == '_') {
                return Err(err(field("name"), format!("{:?}: use upper-case letters, digits and _", c.name)));
            }
            if symbols::lookup(&c.name).is_some() || composites.iter().any(|x: &Composite| x.name == c.name) {
                return Err(err(field("name"), format!("{} is already a symbol", c.name)));
            }
            let expr = Expr::parse(&c.expression).map_err(|e| err(field("expression"), e))?;
            let mut used = Vec::new();
            expr.symbols(&mut used);
            if let Some(unknown) = used.iter().find(|s| {
                symbols::lookup(s).is_none() && !composites.iter().any(|x: &Composite| &x.name == *s) && !list_symbols.contains(s)
            }) {
                return Err(err(
                    field("expression"),
                    format!("no such symbol {unknown} (composites may only use symbols defined before them)"),
                ));
            }
            let weight = config.scanner.weights.get(&c.name).copied().unwrap_or(c.weight);
            composites.push(Composite {
                name: c.name.clone(),
                expr,
                weight,
                en: c.description.clone(),
                fr: c.description_fr.clone().unwrap_or_else(|| c.description.clone()),
            });
        }
        let policy = |p: PolicyConfig, field: &str| -> Result<Policy, ScannerError> {
            let parse = |list: &[String], which: &str| -> Result<Vec<(String, Entry)>, ScannerError> {
                list.iter().map(|s| Entry::parse(s).map(|e| (s.clone(), e)).map_err(|m| err(format!("{field}.{which}"), m))).collect()
            };
            Ok(Policy { allow: parse(&p.allow, "allow")?, block: parse(&p.block, "block")?, thresholds: p })
        };
        let default_policy = policy(config.policy.clone(), "policy")?;
        let mut domain_policies = HashMap::new();
        for (i, d) in config.domains.iter().enumerate() {
            domain_policies.insert(d.name.clone(), policy(config.policy.with(&d.policy), &format!("domain[{i}].policy"))?);
        }
        let mut freemail: HashSet<String> = FREEMAIL.iter().map(|s| s.to_string()).collect();
        freemail.extend(config.scanner.freemail_domains.iter().map(|d| d.to_ascii_lowercase()));
        Ok(Scanner {
            id: format!("{}/{}", config.smtp.hostname, std::process::id()),
            hostname: config.smtp.hostname.clone(),
            weights,
            group_limits: config.scanner.group_limits.clone(),
            composites,
            freemail,
            default_policy,
            domain_policies,
            dns: dns::Dns::new(&config.dns)?,
            dns_lists: config.scanner.dns_lists.clone(),
            uri_lists: config.scanner.uri_lists.clone(),
            weight_overrides: config.scanner.weights.keys().cloned().collect(),
            state: None,
        })
    }

    fn policies(&self, recipients: &[String]) -> Vec<&Policy> {
        let mut seen = HashSet::new();
        let mut out: Vec<&Policy> = recipients
            .iter()
            .filter_map(|r| checks::domain_of(r))
            .filter(|d| seen.insert(d.clone()))
            .map(|d| self.domain_policies.get(&d).unwrap_or(&self.default_policy))
            .collect();
        if out.is_empty() {
            out.push(&self.default_policy);
        }
        out
    }

    /// The lowest add_header threshold among the recipients' policies, and the subject
    /// tag to use, for the X-Spam headers.
    pub fn add_header_settings(&self, recipients: &[String]) -> (Option<f64>, Option<String>) {
        let policies = self.policies(recipients);
        let required = policies.iter().filter_map(|p| p.thresholds.add_header).min_by(f64::total_cmp);
        let tag = policies.iter().find_map(|p| p.thresholds.subject_tag.clone());
        (required, tag)
    }

    /// `check-sender`'s findings, with this scanner's resolver and DNS lists.
    pub async fn check_sender(&self, request: &diagnose::Request<'_>) -> Option<Vec<diagnose::Finding>> {
        diagnose::check_sender(&self.dns, &self.dns_lists, request).await
    }

    /// The SMTP refusal for a verdict that refuses, naming its reason and the page
    /// that explains it.
    pub fn refusal(&self, queue_id: &str, verdict: &Verdict) -> Option<Refusal> {
        let url = self.explain_url(queue_id);
        let why = match &verdict.listed {
            Some(entry) if entry.starts_with("block") => "sender is on the recipient domain's block list".to_string(),
            _ => format!("score {:.2} ({})", verdict.score, verdict.top_symbols(3).join(", ")),
        };
        let (code, status, text) = match verdict.action {
            Action::Reject => (550, "5.7.1", format!("Message refused as spam: {why} - {url}")),
            Action::SoftReject => (451, "4.7.1", format!("Message deferred as suspicious, try again later: {why} - {url}")),
            _ => return None,
        };
        Some(Refusal { code, status: status.to_string(), text })
    }

    /// What to change in a message this verdict passes: Authentication-Results on top
    /// (any of ours the sender forged removed), X-Spam-* and the Subject tag for
    /// add_header.
    fn edits(&self, recipients: &[String], action: Action, verdict: &Verdict, authentication_results: Option<String>) -> Edits {
        let mut edits = Edits::default();
        if let Some(results) = authentication_results {
            edits.add_top.push(results);
            edits.remove_auth_results_of = Some(self.hostname.clone());
        }
        if action == Action::AddHeader {
            let (required, tag) = self.add_header_settings(recipients);
            edits.add_headers = spam_headers(verdict, required);
            edits.subject_tag = tag;
        }
        edits
    }

    /// The page a refused sender is pointed to.
    pub fn explain_url(&self, queue_id: &str) -> String {
        self.default_policy.thresholds.explain_url.replace("{queue_id}", queue_id).replace("{hostname}", &self.hostname)
    }

    /// The whole scan: DNS-based checks, then everything else.
    pub async fn scan(&self, input: &ScanInput<'_>) -> Verdict {
        let network = self.network_findings(input).await;
        self.evaluate(input, network)
    }

    /// The checks that wait on DNS. Cheap in CPU: run them on the async threads, and
    /// `evaluate` (CPU-bound) on a blocking thread.
    pub async fn network_findings(&self, input: &ScanInput<'_>) -> NetworkFindings {
        let awl = self.awl_lookup(input).await;
        if self.dns.is_offline() {
            return NetworkFindings { offline: true, awl, ..Default::default() };
        }
        let started = Instant::now();
        let mut findings = Findings::default();
        let authentication_results = checks::auth::run(&self.dns, input, &self.hostname, &mut findings).await;
        checks::sender::run(&self.dns, input, &mut findings).await;
        checks::dnslists::run(&self.dns, &self.dns_lists, &input.facts.peer_ip, &mut findings).await;
        if !self.uri_lists.is_empty() {
            // The links are needed before the full analysis: a quick parse of our own.
            let domains = Analysis::new(input.message).link_domains(MAX_URI_DOMAINS);
            checks::dnslists::run_uri(&self.dns, &self.uri_lists, &domains, &mut findings).await;
        }
        NetworkFindings { findings, offline: false, elapsed_us: started.elapsed().as_micros() as u64, authentication_results, awl }
    }

    /// The `[dns]` resolver (`None` when offline).
    pub fn resolver(&self) -> Option<mail_auth::hickory_resolver::TokioResolver> {
        self.dns.authenticator().map(|a| a.resolver().clone())
    }

    /// Uses `state` for the AWL and Bayes.
    pub fn with_state(mut self, state: Arc<SharedState>) -> Self {
        self.state = Some(state);
        self
    }

    /// The AWL's identity of a message: the return path and the client address.
    fn awl_identity<'a>(input: &'a ScanInput<'_>) -> Option<(&'a str, IpAddr)> {
        let ip = input.facts.peer_ip.parse().ok()?;
        (!input.return_path.is_empty()).then_some((input.return_path, ip))
    }

    async fn awl_lookup(&self, input: &ScanInput<'_>) -> Option<AwlEntry> {
        let awl = self.state.as_ref()?.awl.as_ref()?;
        let (sender, ip) = Self::awl_identity(input)?;
        match awl.lookup(sender, ip).await {
            Ok(entry) => entry,
            Err(e) => {
                tracing::warn!(error = %e, "AWL lookup failed; scoring without it");
                None
            }
        }
    }

    /// After the verdict: adds the message's score (without the AWL's own pull) to
    /// the sender's history. Allow- and block-listed mail was not scored: skipped.
    pub async fn record(&self, return_path: &str, peer_ip: &str, verdict: &Verdict) {
        let Some(awl) = self.state.as_ref().and_then(|s| s.awl.as_ref()) else { return };
        let (Ok(ip), false) = (peer_ip.parse::<IpAddr>(), return_path.is_empty()) else { return };
        if verdict.listed.is_some() {
            return;
        }
        let pull: f64 = verdict.symbols.iter().filter(|s| s.name == "AWL").map(|s| s.score).sum();
        if let Err(e) = awl.record(return_path, ip, verdict.score - pull).await {
            tracing::warn!(error = %e, "AWL update failed");
        }
    }

    /// The Bayes symbol for the message, if the classifier votes.
    fn bayes(&self, analysis: &Analysis<'_>, findings: &mut Findings) {
        let Some(state) = &self.state else { return };
        let Some(bayes) = &state.bayes else { return };
        let Some(p) = bayes.model().classify(&tokens::tokens(analysis), state.bayes_min_learned) else { return };
        let band = match p {
            p if p < 0.01 => "BAYES_00",
            p if p < 0.05 => "BAYES_05",
            p if p < 0.20 => "BAYES_20",
            p if p < 0.40 => "BAYES_40",
            p if p < 0.60 => "BAYES_50",
            p if p < 0.80 => "BAYES_60",
            p if p < 0.95 => "BAYES_80",
            p if p < 0.99 => "BAYES_95",
            _ => "BAYES_99",
        };
        findings.hit_with(band, Some(format!("spam probability {p:.4}")));
        if p >= 0.999 {
            findings.hit_with("BAYES_999", Some(format!("spam probability {p:.4}")));
        }
    }

    /// Everything that needs no network: parses the message, runs the checks, adds the
    /// network findings, weighs, and applies the policies.
    pub fn evaluate(&self, input: &ScanInput<'_>, network: NetworkFindings) -> Verdict {
        let started = Instant::now();
        let analysis = Analysis::new(input.message);
        let policies = self.policies(input.recipients);
        let ip: Option<IpAddr> = input.facts.peer_ip.parse().ok();
        let header_from = analysis.from_addresses();
        let listed: Vec<Option<Listed>> = policies.iter().map(|p| listed(p, ip, input.return_path, &header_from)).collect();

        let mut findings = network.findings;
        if listed.iter().any(Option::is_none) {
            let ctx = Context {
                facts: input.facts,
                return_path: input.return_path,
                analysis: &analysis,
                hostname: &self.hostname,
                freemail: &self.freemail,
            };
            checks::connection::run(&ctx, &mut findings);
            checks::headers::run(&ctx, &mut findings);
            checks::content::run(&ctx, &mut findings);
            self.bayes(&analysis, &mut findings);
            for c in &self.composites {
                if c.expr.eval(&|s| findings.has(s)) {
                    findings.hit(&c.name);
                }
            }
        }
        let mut symbols = self.weigh(findings);
        let round = |x: f64| (x * 100.0).round() / 100.0 + 0.0; // + 0.0: no -0.0
        let mut score = round(symbols.iter().map(|s| s.score).sum::<f64>());
        // The AWL pulls the score toward the sender's mean (not for listed senders).
        if let (Some(entry), Some(awl)) = (&network.awl, self.state.as_ref().and_then(|s| s.awl.as_ref()))
            && listed.iter().any(Option::is_none)
        {
            let pull = awl.adjustment(entry, score);
            if pull != 0.0 {
                let (group, en, fr) = self.describe("AWL");
                let detail = Some(format!("mean {:.2} over {} messages", entry.mean, entry.count));
                symbols.push(SymbolHit { name: "AWL".into(), score: pull, group, description: en, description_fr: fr, detail });
                score = round(score + pull);
            }
        }
        let mut action = Action::Accept;
        let mut listed_reason = None;
        for (policy, listed) in policies.iter().zip(listed) {
            let this = match listed {
                Some(Listed::Blocked(entry)) => {
                    listed_reason = Some(format!("block list: {entry}"));
                    Action::Reject
                }
                Some(Listed::Allowed(entry)) => {
                    listed_reason.get_or_insert(format!("allow list: {entry}"));
                    Action::Accept
                }
                None => policy.thresholds.action_for(score),
            };
            action = action.max(this);
        }
        let mut verdict = Verdict {
            score,
            action,
            symbols,
            listed: listed_reason,
            scanner_id: self.id.clone(),
            elapsed_us: started.elapsed().as_micros() as u64 + network.elapsed_us,
            offline: network.offline,
            edits: Edits::default(),
            refusal: None,
        };
        verdict.edits = self.edits(input.recipients, action, &verdict, network.authentication_results);
        verdict
    }

    /// Group and descriptions of a symbol: built-in, composite or DNS list.
    fn describe(&self, name: &str) -> (String, String, String) {
        if let Some(def) = symbols::lookup(name) {
            return (def.group.to_string(), def.en.to_string(), def.fr.to_string());
        }
        if let Some(c) = self.composites.iter().find(|c| c.name == name) {
            return ("composite".to_string(), c.en.clone(), c.fr.clone());
        }
        if name == "URIBL_BLOCKED" {
            return (
                "dnsbl".to_string(),
                "A URI list refuses our queries: links are not being checked".to_string(),
                "Une liste de liens refuse nos requêtes : les liens ne sont pas vérifiés.".to_string(),
            );
        }
        for list in self.dns_lists.iter().chain(&self.uri_lists) {
            if list.symbol == name {
                let fr = list.description_fr.clone().unwrap_or_else(|| list.description.clone());
                return ("dnsbl".to_string(), list.description.clone(), fr);
            }
            if name.strip_suffix("_BLOCKED") == Some(list.symbol.as_str()) {
                return (
                    "dnsbl".to_string(),
                    format!("{} refuses our queries: this list is not being checked", list.zone),
                    format!("La liste {} refuse nos requêtes : elle n'est pas consultée.", list.zone),
                );
            }
        }
        ("unknown".to_string(), String::new(), String::new())
    }

    /// Turns findings into weighted hits, capping each group at its limit.
    fn weigh(&self, findings: Findings) -> Vec<SymbolHit> {
        let mut hits: Vec<SymbolHit> = findings
            .hits
            .into_iter()
            .map(|hit| {
                let (group, en, fr) = self.describe(&hit.name);
                let weight =
                    hit.weight.filter(|_| !self.weight_overrides.contains(&hit.name)).or_else(|| self.weights.get(&hit.name).copied());
                let weight = weight.or_else(|| self.composites.iter().find(|c| c.name == hit.name).map(|c| c.weight)).unwrap_or(0.0);
                SymbolHit { name: hit.name, score: weight, group, description: en, description_fr: fr, detail: hit.detail }
            })
            .collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.name.cmp(&b.name)));
        let mut used: HashMap<String, f64> = HashMap::new();
        for hit in hits.iter_mut().filter(|h| h.score > 0.0) {
            if let Some(limit) = self.group_limits.get(&hit.group) {
                let so_far = used.entry(hit.group.clone()).or_default();
                let allowed = (limit - *so_far).max(0.0).min(hit.score);
                *so_far += allowed;
                hit.score = allowed;
            }
        }
        hits
    }
}

/// Link domains looked up in URI lists, at most (SpamAssassin's default too).
const MAX_URI_DOMAINS: usize = 20;

fn validate_list(list: &rempart_model::config::DnsListConfig, prefix: &str, all: &[String]) -> Result<(), ScannerError> {
    let err = |k: &str, message: String| ScannerError { field: format!("{prefix}.{k}"), message };
    if list.symbol.is_empty() || !list.symbol.chars().all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit() || ch == '_') {
        return Err(err("symbol", format!("{:?}: use upper-case letters, digits and _", list.symbol)));
    }
    if symbols::lookup(&list.symbol).is_some() || all.iter().filter(|s| **s == list.symbol).count() > 1 || list.symbol == "URIBL_BLOCKED" {
        return Err(err("symbol", format!("{} is already a symbol", list.symbol)));
    }
    if list.zone.trim_matches('.').is_empty() || list.zone.contains(char::is_whitespace) {
        return Err(err("zone", format!("{:?} is not a DNS zone", list.zone)));
    }
    if let Some(bad) = list.returns.keys().chain(list.blocked.iter()).find(|a| a.parse::<std::net::Ipv4Addr>().is_err()) {
        return Err(err("returns", format!("{bad:?} is not an IPv4 answer")));
    }
    if !list.weight.is_finite() || list.returns.values().any(|w| !w.is_finite()) {
        return Err(err("weight", "must be a finite number".into()));
    }
    Ok(())
}

fn listed(policy: &Policy, ip: Option<IpAddr>, return_path: &str, header_from: &[String]) -> Option<Listed> {
    let mut block_on: Vec<&str> = vec![return_path];
    block_on.extend(header_from.iter().map(String::as_str));
    if let Some((text, _)) = policy.block.iter().find(|(_, e)| e.matches(ip, &block_on)) {
        return Some(Listed::Blocked(text.clone()));
    }
    // Allowing on the header From alone would let anyone forge their way in.
    policy.allow.iter().find(|(_, e)| e.matches(ip, &[return_path])).map(|(text, _)| Listed::Allowed(text.clone()))
}
