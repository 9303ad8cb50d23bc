//! Policies (rspamd's actions, the scan result's last step): each recipient domain's
//! thresholds and allow/block lists turn the score into an action; the verdict then
//! gets its edits (headers to add or remove, Subject tag) and, for a refusal, the SMTP
//! reply that names its reason and the page that explains it.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use rempart_model::config::{ATTACHMENT_KINDS, PolicyConfig};
use rempart_model::{Action, Config, Edits, Refusal, Verdict};
use rempart_state::sender_lists::{Decision, ListKind};

use super::lists::Entry;
use super::marking::spam_headers;
use crate::ScannerError;
use crate::checks::domain_of;

pub(crate) struct Policy {
    thresholds: PolicyConfig,
    allow: Vec<(String, Entry)>,
    block: Vec<(String, Entry)>,
}

impl Policy {
    /// The policy as configured (thresholds, lists, malware actions).
    pub(crate) fn config(&self) -> &PolicyConfig {
        &self.thresholds
    }
}

/// What a policy says before the score is known.
pub(crate) enum Listed {
    Allowed(String),
    Blocked(String),
}

impl Listed {
    /// What the run-time lists say for the recipients of `domain` (`decisions` in
    /// recipient order): they decide only when they say the same for every one of them.
    pub(crate) fn from_store(domain: &str, recipients: &[String], decisions: &[Option<Decision>]) -> Option<Listed> {
        let mut of_domain = recipients
            .iter()
            .zip(decisions.iter().map(Some).chain(std::iter::repeat(None)))
            .filter(|(r, _)| domain_of(r).as_deref() == Some(domain))
            .map(|(_, d)| d.and_then(Option::as_ref));
        let first = of_domain.next()??;
        if !of_domain.all(|d| d.is_some_and(|d| d.kind == first.kind)) {
            return None;
        }
        Some(match first.kind {
            ListKind::Allow => Listed::Allowed(first.entry.clone()),
            ListKind::Block => Listed::Blocked(first.entry.clone()),
        })
    }
}

pub struct Policies {
    hostname: String,
    default: Policy,
    by_domain: HashMap<String, Policy>,
}

impl Policies {
    /// `[policy]` and each `[domain.policy]` over it; list entries are checked here.
    pub fn from_config(config: &Config) -> Result<Policies, ScannerError> {
        let policy = |p: PolicyConfig, field: &str| -> Result<Policy, ScannerError> {
            let parse = |list: &[String], which: &str| -> Result<Vec<(String, Entry)>, ScannerError> {
                list.iter()
                    .map(|s| {
                        Entry::parse(s)
                            .map(|e| (s.clone(), e))
                            .map_err(|e| ScannerError { field: format!("{field}.{which}"), message: e.to_string() })
                    })
                    .collect()
            };
            if let Some(kind) = p.attachments.keys().find(|k| !ATTACHMENT_KINDS.contains(&k.as_str())) {
                return Err(ScannerError {
                    field: format!("{field}.attachments.{kind}"),
                    message: format!("unknown kind of attachment; the kinds are {}", ATTACHMENT_KINDS.join(", ")),
                });
            }
            Ok(Policy { allow: parse(&p.allow, "allow")?, block: parse(&p.block, "block")?, thresholds: p })
        };
        let mut by_domain = HashMap::new();
        for (i, d) in config.domains.iter().enumerate() {
            by_domain.insert(d.name.clone(), policy(config.policy.with(&d.policy), &format!("domain[{i}].policy"))?);
        }
        Ok(Policies { hostname: config.smtp.hostname.clone(), default: policy(config.policy.clone(), "policy")?, by_domain })
    }

    /// The recipients' domains, each once, with their policies (the default for a
    /// domain without one, and for no recipient at all).
    pub(crate) fn for_recipients(&self, recipients: &[String]) -> Vec<(String, &Policy)> {
        let mut seen = HashSet::new();
        let mut out: Vec<(String, &Policy)> = recipients
            .iter()
            .filter_map(|r| domain_of(r))
            .filter(|d| seen.insert(d.clone()))
            .map(|d| {
                let policy = self.by_domain.get(&d).unwrap_or(&self.default);
                (d, policy)
            })
            .collect();
        if out.is_empty() {
            out.push((String::new(), &self.default));
        }
        out
    }

    /// The action for `score`: the harshest of the recipients' policies; a block-list
    /// entry rejects, an allow-list entry accepts. Also names the list entry, if any.
    pub(crate) fn decide(policies: &[(String, &Policy)], listed: Vec<Option<Listed>>, score: f64) -> (Action, Option<String>) {
        let mut action = Action::Accept;
        let mut reason = None;
        for ((_, policy), listed) in policies.iter().zip(listed) {
            let this = match listed {
                Some(Listed::Blocked(entry)) => {
                    reason = Some(format!("block list: {entry}"));
                    Action::Reject
                }
                Some(Listed::Allowed(entry)) => {
                    reason.get_or_insert(format!("allow list: {entry}"));
                    Action::Accept
                }
                None => policy.thresholds.action_for(score),
            };
            action = action.max(this);
        }
        (action, reason)
    }

    /// `[policy]`, which outbound mail follows.
    pub(crate) fn default_config(&self) -> &PolicyConfig {
        &self.default.thresholds
    }

    /// The lowest add_header threshold among the recipients' policies, and the subject
    /// tag to use, for the X-Spam headers.
    pub fn add_header_settings(&self, recipients: &[String]) -> (Option<f64>, Option<String>) {
        let policies = self.for_recipients(recipients);
        let required = policies.iter().filter_map(|(_, p)| p.thresholds.add_header).min_by(f64::total_cmp);
        let tag = policies.iter().find_map(|(_, p)| p.thresholds.subject_tag.clone());
        (required, tag)
    }

    /// What to change in a message this verdict passes: Authentication-Results on top
    /// (any of ours the sender forged removed), X-Spam-* and the Subject tag for
    /// add_header.
    pub fn edits(&self, recipients: &[String], verdict: &Verdict, authentication_results: Option<String>) -> Edits {
        let mut edits = Edits::default();
        if let Some(results) = authentication_results {
            edits.add_top.push(results);
            edits.remove_auth_results_of = Some(self.hostname.clone());
        }
        if verdict.action == Action::AddHeader {
            let (required, tag) = self.add_header_settings(recipients);
            edits.add_headers = spam_headers(verdict, required);
            edits.subject_tag = tag;
        }
        edits
    }

    /// The SMTP refusal for a verdict that refuses, naming its reason and the page
    /// that explains it.
    pub fn refusal(&self, queue_id: &str, verdict: &Verdict) -> Option<Refusal> {
        let url = self.explain_url(queue_id);
        if let Some(malware) = &verdict.malware {
            let (code, status, text) = match verdict.action {
                Action::Reject => (554, "5.7.1", format!("Message refused: it carries {malware} - {url}")),
                Action::SoftReject => (451, "4.7.0", format!("Message deferred: {malware}; please try again later - {url}")),
                _ => return None,
            };
            return Some(Refusal { code, status: status.to_string(), text });
        }
        let why = match &verdict.listed {
            Some(entry) if entry.starts_with("block") => "sender is on the recipient domain's block list".to_string(),
            Some(entry) if entry.contains(": block ") => "sender is on the recipient's block list".to_string(),
            _ => format!("score {:.2} ({})", verdict.score, verdict.top_symbols(3).join(", ")),
        };
        let (code, status, text) = match verdict.action {
            Action::Reject => (550, "5.7.1", format!("Message refused as spam: {why} - {url}")),
            Action::SoftReject => (451, "4.7.1", format!("Message deferred as suspicious, try again later: {why} - {url}")),
            _ => return None,
        };
        Some(Refusal { code, status: status.to_string(), text })
    }

    /// The page a refused sender is pointed to.
    pub fn explain_url(&self, queue_id: &str) -> String {
        self.default.thresholds.explain_url.replace("{queue_id}", queue_id).replace("{hostname}", &self.hostname)
    }
}

/// Whether a policy's lists decide for this sender: the block list on the return
/// path, header From or client IP; the allow list on the return path or client IP.
pub(crate) fn listed(policy: &Policy, ip: Option<IpAddr>, return_path: &str, header_from: &[String]) -> Option<Listed> {
    let mut block_on: Vec<&str> = vec![return_path];
    block_on.extend(header_from.iter().map(String::as_str));
    if let Some((text, _)) = policy.block.iter().find(|(_, e)| e.matches(ip, &block_on)) {
        return Some(Listed::Blocked(text.clone()));
    }
    // Allowing on the header From alone would let anyone forge their way in.
    policy.allow.iter().find(|(_, e)| e.matches(ip, &[return_path])).map(|(text, _)| Listed::Allowed(text.clone()))
}
