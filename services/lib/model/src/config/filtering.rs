//! What decides a message's fate: the DNS settings of the DNS-based checks, the
//! scanner (weights, group limits, composites, DNS and URI lists) and the policies that
//! map a score to an action.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::antivirus::{EngineFailure, MalwareAction, default_attachment_actions};

/// How DNS-based checks (SPF, …) resolve names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DnsConfig {
    /// Resolvers to ask, "IP:PORT". Default empty: the system's (/etc/resolv.conf).
    /// `--resolver IP:PORT` on the command line replaces this list.
    pub servers: Vec<SocketAddr>,
    /// Time to wait for one answer, in milliseconds. Default 2000.
    pub timeout_ms: u64,
    /// Tries per query. Default 2.
    pub attempts: usize,
    /// Make no lookup at all: DNS-based checks are skipped and reported as skipped
    /// (`--offline`). Default false.
    pub offline: bool,
}

impl Default for DnsConfig {
    fn default() -> Self {
        Self { servers: Vec::new(), timeout_ms: 2000, attempts: 2, offline: false }
    }
}

/// The scanner: which checks run and how much each symbol weighs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScannerConfig {
    /// Scan messages at the end of DATA. Default true.
    pub enabled: bool,
    /// Weight overrides by symbol name, e.g. `MISSING_MID = 0.5`. Default none.
    pub weights: std::collections::BTreeMap<String, f64>,
    /// A weights file (`[weights]` by symbol name) as `rempart tune --out` writes it,
    /// over the built-in weights and under `weights`. Default none (the shipped
    /// weights, fitted on the project's corpus).
    pub weights_file: Option<std::path::PathBuf>,
    /// Largest total a group of symbols may add (rspamd's max_score), e.g.
    /// `headers = 6.0`. Default none (no limit).
    pub group_limits: std::collections::BTreeMap<String, f64>,
    /// Extra free-mail provider domains, added to the built-in list.
    pub freemail_domains: Vec<String>,
    /// Brands whose name in a From header, with an address outside their domains,
    /// adds FROM_NAME_BRAND: added to the built-in list (an entry with a built-in
    /// brand's name replaces it).
    #[serde(rename = "brand")]
    pub brands: Vec<BrandConfig>,
    /// Symbols made of others: `expression` uses symbol names with `&`, `|`, `!` and
    /// parentheses.
    #[serde(rename = "composite")]
    pub composites: Vec<CompositeConfig>,
    /// DNS lists queried with the client's IP: blocklists (positive weight) and
    /// allowlists (negative weight).
    #[serde(rename = "dnsbl")]
    pub dns_lists: Vec<DnsListConfig>,
    /// DNS lists queried with the domains of the links in the message (URIBL, SURBL).
    /// Same fields; a refusal adds URIBL_BLOCKED.
    #[serde(rename = "uribl")]
    pub uri_lists: Vec<DnsListConfig>,
    /// Remote scanners for `rempart edge` ("http://host:port", gRPC), used in turn; a
    /// connection error moves on to the next. Empty (default): the edge scans in process.
    pub endpoints: Vec<String>,
    /// Deadline of a remote scan; past it (or with no scanner reachable) the message
    /// gets `451 4.3.0` and the sender retries. Default "15s".
    pub timeout: crate::HumanDuration,
    /// How often endpoint names are resolved again, so that scanners added or removed
    /// (pods behind a headless Service) are seen. Default "30s".
    pub resolve_every: crate::HumanDuration,
    /// Where `rempart scanner` serves gRPC. Default "127.0.0.1:7300".
    pub listen: std::net::SocketAddr,
}

/// One DNS list (DNSBL or DNSWL) queried with the client's address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsListConfig {
    /// The list's zone, e.g. "zen.spamhaus.org".
    pub zone: String,
    /// The symbol added when the client is listed, e.g. "RCVD_IN_ZEN".
    pub symbol: String,
    /// Its weight (negative for an allowlist).
    pub weight: f64,
    /// Weights by answer, replacing `weight`, e.g. `{ "127.0.0.4" = 4.0 }`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub returns: std::collections::BTreeMap<String, f64>,
    /// Answers meaning "this list refuses our resolver" (too many queries, or a public
    /// resolver): they add `<symbol>_BLOCKED`, with no weight, instead of a listing.
    /// Default ["127.255.255.252", "127.255.255.254", "127.255.255.255"].
    #[serde(default = "default_blocked_answers")]
    pub blocked: Vec<String>,
    pub description: String,
    /// Defaults to the English one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description_fr: Option<String>,
}

fn default_blocked_answers() -> Vec<String> {
    ["127.255.255.252", "127.255.255.254", "127.255.255.255"].map(String::from).to_vec()
}

impl Default for ScannerConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            weights: Default::default(),
            weights_file: None,
            group_limits: Default::default(),
            freemail_domains: Vec::new(),
            brands: Vec::new(),
            composites: Vec::new(),
            dns_lists: Vec::new(),
            uri_lists: Vec::new(),
            endpoints: Vec::new(),
            timeout: crate::HumanDuration::secs(15),
            resolve_every: crate::HumanDuration::secs(30),
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 7300)),
        }
    }
}

/// A brand: `[[scanner.brand]] name = "Acme Bank", domains = ["acmebank.example"]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrandConfig {
    /// As it appears in a From name (matched as whole words, case and accents ignored).
    pub name: String,
    /// The domains its mail comes from: a registrable domain ("acmebank.example"), or
    /// a first label ("acmebank") that matches it under any suffix.
    pub domains: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompositeConfig {
    /// The new symbol's name (upper case, like the others).
    pub name: String,
    /// A boolean expression of symbol names, e.g. "MIME_HTML_ONLY & !DKIM_VALID".
    pub expression: String,
    pub weight: f64,
    /// Shown in replies and reports.
    pub description: String,
    /// The French description; defaults to the English one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description_fr: Option<String>,
}

/// Score thresholds and lists. The harshest action whose threshold the score reaches
/// wins; an unset threshold never applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// Mail scoring from here up to the next threshold is greylisted (`[greylist]`);
    /// accepted when greylisting is off. Default 6: the first action, where at most
    /// 0.1 % of the training ham scores (`rempart tune`: docs/filtering.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub greylist: Option<f64>,
    /// Default 6.5.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub add_header: Option<f64>,
    /// Default unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<f64>,
    /// Default unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub soft_reject: Option<f64>,
    /// Default 7.5 (from `rempart tune`: docs/filtering.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reject: Option<f64>,
    /// Default unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discard: Option<f64>,
    /// Prepended to the Subject of add_header mail, e.g. "[SPAM]". Default unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_tag: Option<String>,
    /// Where a rejected sender can read why; `{queue_id}` and `{hostname}` are
    /// replaced. Default "https://{hostname}/why/{queue_id}".
    pub explain_url: String,
    /// Senders never filtered: addresses, domains (and their subdomains), IPs or CIDRs.
    pub allow: Vec<String>,
    /// Senders always rejected, same forms.
    pub block: Vec<String>,
    /// What a virus found by an engine (`[antivirus]`) does: "reject" (`554 5.7.1`
    /// naming it), "quarantine", "header", or "strip" (with `[antivirus] scan =
    /// "parts"`). Default "reject".
    pub virus: MalwareAction,
    /// When the engines cannot answer: "tempfail" (`451 4.7.0`, fail closed) or
    /// "accept" (with a `_FAIL` symbol, fail open). Default "tempfail".
    pub antivirus_failure: EngineFailure,
    /// What each kind of attachment finding does (`reject`, `quarantine`, `strip`,
    /// `header`, `score`); kinds not named keep their defaults: executable, script,
    /// shortcut, disk_image, hta, html_smuggling and archive_bomb are refused; the
    /// others (archive_too_deep, encrypted_archive, office_macro, pdf_javascript,
    /// pdf_launch) only weigh.
    pub attachments: BTreeMap<String, MalwareAction>,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            greylist: Some(6.0),
            add_header: Some(6.5),
            quarantine: None,
            soft_reject: None,
            reject: Some(7.5),
            discard: None,
            subject_tag: None,
            explain_url: "https://{hostname}/why/{queue_id}".into(),
            allow: Vec::new(),
            block: Vec::new(),
            virus: MalwareAction::Reject,
            antivirus_failure: EngineFailure::Tempfail,
            attachments: default_attachment_actions(),
        }
    }
}

/// A domain's changes to `[policy]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyOverride {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub greylist: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub add_header: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub soft_reject: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reject: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discard: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_tag: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub block: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virus: Option<MalwareAction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub antivirus_failure: Option<EngineFailure>,
    /// Merged over `[policy.attachments]`, kind by kind.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub attachments: BTreeMap<String, MalwareAction>,
}

impl PolicyConfig {
    /// This policy with a domain's overrides applied.
    pub fn with(&self, o: &PolicyOverride) -> PolicyConfig {
        let mut p = self.clone();
        let overrides = [o.greylist, o.add_header, o.quarantine, o.soft_reject, o.reject, o.discard];
        for (slot, value) in p.thresholds_mut().into_iter().zip(overrides) {
            if value.is_some() {
                *slot = value;
            }
        }
        if o.subject_tag.is_some() {
            p.subject_tag = o.subject_tag.clone();
        }
        p.allow.extend(o.allow.iter().cloned());
        p.block.extend(o.block.iter().cloned());
        p.virus = o.virus.unwrap_or(p.virus);
        p.antivirus_failure = o.antivirus_failure.unwrap_or(p.antivirus_failure);
        p.attachments.extend(o.attachments.iter().map(|(k, v)| (k.clone(), *v)));
        p
    }

    /// Each action with its threshold, mildest first (the order `thresholds_mut` keeps).
    fn thresholds(&self) -> [(crate::Action, Option<f64>); 6] {
        use crate::Action::*;
        [
            (Greylist, self.greylist),
            (AddHeader, self.add_header),
            (Quarantine, self.quarantine),
            (SoftReject, self.soft_reject),
            (Reject, self.reject),
            (Discard, self.discard),
        ]
    }

    fn thresholds_mut(&mut self) -> [&mut Option<f64>; 6] {
        [&mut self.greylist, &mut self.add_header, &mut self.quarantine, &mut self.soft_reject, &mut self.reject, &mut self.discard]
    }

    /// In one table of the file (`[policy]` or a domain's `policy`), a threshold that
    /// refuses or drops (soft_reject, reject, discard) must not be below one that
    /// delivers (greylist, add_header, quarantine): the harsher action wins from its
    /// threshold up, so `greylist = 8` with `reject = 5` would never greylist — a
    /// mistake, said at `config check` and reload. Defaults and inherited values are
    /// not compared (`reject = 5` alone means "reject from 5"), nor delivering actions
    /// among themselves (a high `add_header` is how it is turned off).
    pub fn check_order(table: &toml::Table) -> Result<(), String> {
        let value = |name: &str| table.get(name).and_then(|v| v.as_float().or_else(|| v.as_integer().map(|i| i as f64)));
        for harsher in ["soft_reject", "reject", "discard"] {
            let Some(high) = value(harsher) else { continue };
            for milder in ["greylist", "add_header", "quarantine"] {
                if let Some(low) = value(milder).filter(|low| high < *low) {
                    return Err(format!(
                        "thresholds out of order: {harsher} = {high} is below {milder} = {low} (a higher score would get a milder action)"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The lowest threshold set: where mail stops being accepted as it is.
    pub fn first_action(&self) -> Option<f64> {
        self.thresholds().into_iter().filter_map(|(_, t)| t).reduce(f64::min)
    }

    /// The harshest action whose threshold `score` reaches: a domain's `quarantine = 5`
    /// quarantines from 5 up (until a harsher action's threshold), whatever milder
    /// thresholds (greylist 6, add_header 6.5) it inherits above it.
    pub fn action_for(&self, score: f64) -> crate::Action {
        self.thresholds()
            .into_iter()
            .filter(|(_, threshold)| threshold.is_some_and(|t| score >= t))
            .map(|(action, _)| action)
            .max()
            .unwrap_or(crate::Action::Accept)
    }

    /// The policy as bands: from each score (the first from minus infinity) the action
    /// that applies, mildest first; actions no score can reach are not in it.
    pub fn bands(&self) -> Vec<(f64, crate::Action)> {
        let mut starts: Vec<f64> = self.thresholds().into_iter().filter_map(|(_, t)| t).collect();
        starts.sort_by(f64::total_cmp);
        starts.dedup();
        let mut bands = vec![(f64::NEG_INFINITY, crate::Action::Accept)];
        for start in starts {
            let action = self.action_for(start);
            if bands.last().is_some_and(|(_, last)| *last != action) {
                bands.push((start, action));
            }
        }
        bands
    }

    /// The bands as one line: "below 6.0 accept · 6.0 greylist · 6.5 add_header · 7.5 reject".
    pub fn bands_line(&self) -> String {
        let bands = self.bands();
        let mut parts = Vec::new();
        for (i, (start, action)) in bands.iter().enumerate() {
            match bands.get(i + 1) {
                _ if i == 0 && bands.len() == 1 => parts.push(format!("always {action}")),
                Some((next, _)) if i == 0 => parts.push(format!("below {next:.1} {action}")),
                _ => parts.push(format!("{start:.1} {action}")),
            }
        }
        parts.join(" · ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Action;

    #[test]
    fn the_default_policy_acts_first_at_its_greylist_threshold() {
        let policy = PolicyConfig::default();
        assert_eq!(policy.first_action(), Some(6.0));
        assert_eq!(policy.action_for(5.9), Action::Accept);
        assert_eq!(policy.action_for(6.0), Action::Greylist);
        assert_eq!(policy.action_for(6.5), Action::AddHeader);
        assert_eq!(policy.action_for(7.5), Action::Reject);
    }

    #[test]
    fn the_harshest_action_reached_wins_so_a_low_quarantine_keeps_working() {
        let policy = PolicyConfig { quarantine: Some(5.0), ..PolicyConfig::default() };
        assert_eq!(policy.action_for(4.9), Action::Accept);
        for score in [5.0, 6.0, 6.2, 6.5, 7.0, 7.4] {
            assert_eq!(policy.action_for(score), Action::Quarantine, "{score}");
        }
        assert_eq!(policy.action_for(7.5), Action::Reject);
        assert_eq!(policy.bands(), [(f64::NEG_INFINITY, Action::Accept), (5.0, Action::Quarantine), (7.5, Action::Reject)]);
        assert_eq!(policy.bands_line(), "below 5.0 accept · 5.0 quarantine · 7.5 reject");
        assert_eq!(PolicyConfig::default().bands_line(), "below 6.0 accept · 6.0 greylist · 6.5 add_header · 7.5 reject");
        let none = PolicyConfig { greylist: None, add_header: None, reject: None, ..PolicyConfig::default() };
        assert_eq!(none.bands_line(), "always accept");
    }

    #[test]
    fn thresholds_out_of_order_are_refused() {
        let table = |text: &str| text.parse::<toml::Table>().unwrap();
        let e = PolicyConfig::check_order(&table("greylist = 8.0\nreject = 5")).unwrap_err();
        assert!(e.contains("reject = 5 is below greylist = 8"), "{e}");
        assert!(PolicyConfig::check_order(&table("reject = 5.0")).is_ok(), "alone, under the defaults");
        assert!(PolicyConfig::check_order(&table("greylist = 7.0\nadd_header = 7\nreject = 7.0")).is_ok());
        assert!(PolicyConfig::check_order(&table("quarantine = 5.0\nadd_header = 25.0\nreject = 30.0")).is_ok(), "add_header parked");
    }

    #[test]
    fn the_first_action_is_the_lowest_threshold_set() {
        let policy = PolicyConfig { greylist: None, add_header: None, quarantine: Some(5.0), reject: Some(9.0), ..PolicyConfig::default() };
        assert_eq!(policy.first_action(), Some(5.0));
        let none = PolicyConfig { greylist: None, add_header: None, reject: None, ..PolicyConfig::default() };
        assert_eq!(none.first_action(), None);
    }
}
