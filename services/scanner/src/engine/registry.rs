//! The symbol registry (rspamd's symcache): every symbol's weight, group and
//! descriptions — built-in, DNS list or composite — with the operator's overrides and
//! the group limits; it turns findings into weighted hits. Built once from the
//! configuration, which it validates.

use std::collections::{BTreeMap, HashMap, HashSet};

use rempart_model::SymbolHit;
use rempart_model::config::{DnsListConfig, ScannerConfig};

use super::composite::Expr;
use crate::ScannerError;
use crate::checks::Findings;
use crate::symbols;

pub(crate) struct Composite {
    pub name: String,
    pub expr: Expr,
    weight: f64,
    en: String,
    fr: String,
}

pub struct Registry {
    weights: HashMap<String, f64>,
    /// The weights that apply when Bayes does not vote (SpamAssassin's score sets:
    /// without the classifier, the rules must carry the score themselves).
    weights_without_bayes: HashMap<String, f64>,
    /// Symbols whose weight the operator set: a DNS list's per-answer weight yields.
    overridden: HashSet<String>,
    group_limits: BTreeMap<String, f64>,
    /// In configuration order: a composite may use those before it.
    pub(crate) composites: Vec<Composite>,
    dns_lists: Vec<DnsListConfig>,
    uri_lists: Vec<DnsListConfig>,
}

impl Registry {
    /// Checks every symbol name, weight, composite expression and DNS list of the
    /// `[scanner]` configuration.
    pub fn from_config(config: &ScannerConfig) -> Result<Registry, ScannerError> {
        let err = |field: String, message: String| ScannerError { field, message };
        let mut weights: HashMap<String, f64> = symbols::all().map(|s| (s.name.to_string(), s.weight)).collect();
        let list_symbols: Vec<String> = config
            .dns_lists
            .iter()
            .chain(&config.uri_lists)
            .flat_map(|l| [l.symbol.clone(), format!("{}_BLOCKED", l.symbol)])
            .chain(std::iter::once("URIBL_BLOCKED".to_string()))
            .collect();
        weights.insert("URIBL_BLOCKED".into(), 0.0);
        for (table, lists) in [("dnsbl", &config.dns_lists), ("uribl", &config.uri_lists)] {
            for (i, list) in lists.iter().enumerate() {
                validate_list(list, &format!("scanner.{table}[{i}]"), &list_symbols)?;
                weights.insert(list.symbol.clone(), list.weight);
                weights.insert(format!("{}_BLOCKED", list.symbol), 0.0);
            }
        }
        let shipped = parse_weights(SHIPPED_WEIGHTS).map_err(|e| err("the shipped weights".into(), e))?;
        let from_file = match &config.weights_file {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|e| err("scanner.weights_file".into(), format!("{}: {e}", path.display())))?;
                parse_weights(&text).map_err(|e| err("scanner.weights_file".into(), format!("{}: {e}", path.display())))?
            }
            None => WeightSets::default(),
        };
        let mut weights_without_bayes = weights.clone();
        for sets in [&shipped, &from_file] {
            for (table, into) in [(&sets.weights, &mut weights), (&sets.weights_without_bayes, &mut weights_without_bayes)] {
                for (name, weight) in table {
                    if symbols::lookup(name).is_none() {
                        return Err(err(format!("scanner.weights_file: {name}"), "no such symbol".into()));
                    }
                    into.insert(name.clone(), *weight);
                }
            }
        }
        for (name, weight) in &config.weights {
            weights_without_bayes.insert(name.clone(), *weight);
            if symbols::lookup(name).is_none() && !config.composites.iter().any(|c| &c.name == name) && !list_symbols.contains(name) {
                return Err(err(format!("scanner.weights.{name}"), "no such symbol".into()));
            }
            if !weight.is_finite() {
                return Err(err(format!("scanner.weights.{name}"), "must be a finite number".into()));
            }
            weights.insert(name.clone(), *weight);
        }
        let mut composites: Vec<Composite> = Vec::new();
        for (i, c) in config.composites.iter().enumerate() {
            let field = |k: &str| format!("scanner.composite[{i}].{k}");
            if !is_symbol_name(&c.name) {
                return Err(err(field("name"), format!("{:?}: use upper-case letters, digits and _", c.name)));
            }
            if symbols::lookup(&c.name).is_some() || composites.iter().any(|x| x.name == c.name) {
                return Err(err(field("name"), format!("{} is already a symbol", c.name)));
            }
            let expr = Expr::parse(&c.expression).map_err(|e| err(field("expression"), e.to_string()))?;
            let mut used = Vec::new();
            expr.symbols(&mut used);
            let known =
                |s: &str| symbols::lookup(s).is_some() || composites.iter().any(|x| x.name == s) || list_symbols.iter().any(|l| l == s);
            if let Some(unknown) = used.iter().find(|s| !known(s)) {
                return Err(err(
                    field("expression"),
                    format!("no such symbol {unknown} (composites may only use symbols defined before them)"),
                ));
            }
            composites.push(Composite {
                name: c.name.clone(),
                expr,
                weight: config.weights.get(&c.name).copied().unwrap_or(c.weight),
                en: c.description.clone(),
                fr: c.description_fr.clone().unwrap_or_else(|| c.description.clone()),
            });
        }
        for list in config.dns_lists.iter().chain(&config.uri_lists) {
            weights_without_bayes.insert(list.symbol.clone(), weights.get(&list.symbol).copied().unwrap_or(list.weight));
        }
        Ok(Registry {
            weights,
            weights_without_bayes,
            overridden: config.weights.keys().cloned().collect(),
            group_limits: config.group_limits.clone(),
            composites,
            dns_lists: config.dns_lists.clone(),
            uri_lists: config.uri_lists.clone(),
        })
    }

    /// The weight `name` has (built-in, fitted, configured or a composite's) in the set
    /// for when Bayes voted, or did not.
    pub fn weight(&self, name: &str, bayes_voted: bool) -> f64 {
        let weights = if bayes_voted { &self.weights } else { &self.weights_without_bayes };
        weights.get(name).copied().or_else(|| self.composites.iter().find(|c| c.name == name).map(|c| c.weight)).unwrap_or(0.0)
    }

    /// Adds the composites whose expression the findings satisfy, in order.
    pub fn add_composites(&self, findings: &mut Findings) {
        for c in &self.composites {
            if c.expr.eval(&|s| findings.has(s)) {
                findings.hit(&c.name);
            }
        }
    }

    /// Group and descriptions (en, fr) of a symbol: built-in, composite or DNS list.
    pub fn describe(&self, name: &str) -> (String, String, String) {
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

    /// A hit of `name` with `score` and its descriptions.
    pub fn hit(&self, name: &str, score: f64, detail: Option<String>) -> SymbolHit {
        let (group, description, description_fr) = self.describe(name);
        SymbolHit { name: name.to_string(), score, group, description, description_fr, detail }
    }

    /// Turns findings into weighted hits, strongest first, capping each group at its limit.
    /// The weight set depends on whether Bayes voted.
    pub fn weigh(&self, findings: Findings) -> Vec<SymbolHit> {
        let bayes_voted = findings.hits.iter().any(|h| h.name.starts_with("BAYES_"));
        let weights = if bayes_voted { &self.weights } else { &self.weights_without_bayes };
        let mut hits: Vec<SymbolHit> = findings
            .hits
            .into_iter()
            .map(|hit| {
                let own = hit.weight.filter(|_| !self.overridden.contains(&hit.name));
                let weight = own
                    .or_else(|| weights.get(&hit.name).copied())
                    .or_else(|| self.composites.iter().find(|c| c.name == hit.name).map(|c| c.weight))
                    .unwrap_or(0.0);
                self.hit(&hit.name, weight, hit.detail)
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
        // Each weight as it is shown (hundredths), so the shown weights sum to the score.
        for hit in &mut hits {
            hit.score = round_points(hit.score);
        }
        hits
    }
}

/// Points to the hundredth, as verdicts show them (`+ 0.0`: never -0.0).
pub fn round_points(x: f64) -> f64 {
    (x * 100.0).round() / 100.0 + 0.0
}

/// The weights fitted on the project's corpus (`rempart tune`; see the file's header).
pub const SHIPPED_WEIGHTS: &str = include_str!("../../weights.toml");

/// A weights file: `[weights]` (Bayes votes) and `[weights_without_bayes]`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightSets {
    #[serde(default)]
    pub weights: BTreeMap<String, f64>,
    #[serde(default)]
    pub weights_without_bayes: BTreeMap<String, f64>,
}

pub fn parse_weights(text: &str) -> Result<WeightSets, String> {
    let sets: WeightSets = toml::from_str(text).map_err(|e| e.to_string())?;
    if let Some((name, _)) = sets.weights.iter().chain(&sets.weights_without_bayes).find(|(_, w)| !w.is_finite()) {
        return Err(format!("{name}: the weight must be a finite number"));
    }
    Ok(sets)
}

fn is_symbol_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit() || ch == '_')
}

fn validate_list(list: &DnsListConfig, prefix: &str, all: &[String]) -> Result<(), ScannerError> {
    let err = |k: &str, message: String| ScannerError { field: format!("{prefix}.{k}"), message };
    if !is_symbol_name(&list.symbol) {
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
