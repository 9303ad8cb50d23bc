//! Fitting the symbol weights on a labelled corpus (`rempart tune`), and measuring.
//!
//! Method: every message is scored offline (no DNS) by the scanner with the built-in
//! weights, which gives its symbol hits; Bayes is trained on the training part only and
//! votes through its bands (BAYES_00 … BAYES_99, BAYES_999) — for a training message by
//! a model that did not learn it (5 folds). A logistic regression with an L2 penalty
//! over the hits (one binary feature per symbol seen at least `MIN_SUPPORT` times) is
//! fitted by Newton's method, the penalty chosen by 5-fold cross-validation (log loss).
//! Every weight keeps the sign of what its symbol means (`direction`: a spam sign adds,
//! a ham sign takes away; informational symbols are not weighed), so an explanation
//! never says that a sign of ham made a message spam. The Bayes bands are fitted as
//! steps away from BAYES_50 (which weighs 0), each step of its side's sign, so the
//! bands are monotone: BAYES_00 … BAYES_40 ≤ 0 ≤ BAYES_60 … BAYES_99.
//! The regression's bias is not a symbol: the scale's offset is the policy's, so the
//! coefficients are only scaled, to put the first action (6, greylist in the default
//! policy) where the cross-validated scores of the training ham let at most 0.1 % of
//! them through. A symbol no training ham hit then weighs at least its log likelihood
//! ratio, the ham rate taken at its rule-of-three bound (3 / ham messages), capped at
//! `MAX_LIFT`. Symbols with too few hits keep their built-in weights.
//!
//! The split: a file is held out when the last byte of its SHA-256 is below
//! `holdout_percent` % of 256; the fold of a training file is the byte before, mod 5.
//! (Not the first bytes: the shared corpus itself was split by them.)
//! Nothing held out is learned or fitted on.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use rempart_classifier::linear::{self, LinearModel};
use rempart_model::{Config, SessionFacts};
use rempart_state::bayes::{Model, Vote};

use crate::symbols::{band_names, band_side, band_steps, bayes_bands};
use crate::{ScanInput, Scanner, tokens};

mod logistic;
mod measure;

use logistic::{Design, fit, logit};
pub use measure::{Separation, bayes_separation, rates, separation};

pub const FOLDS: usize = 5;
/// A symbol is fitted when it hits at least this many training messages.
pub const MIN_SUPPORT: usize = 5;
/// The penalties tried (on the sum of squared weights, per message).
const LAMBDAS: [f64; 6] = [0.01, 0.03, 0.1, 0.3, 1.0, 3.0];
/// The score at which at most 0.1 % of the training ham (cross-validated) scores: the
/// default policy's first action (greylist). Any action is a cost to the ham it hits —
/// a greylisted message arrives late — so the first one is placed for the ham.
pub const FIRST_ACTION: f64 = 6.0;
/// The most a rule no training ham hit is lifted to (below the gap from greylist to
/// add_header in the default policy, so no such rule marks mail alone).
pub const MAX_LIFT: f64 = 2.0;

#[derive(Debug, thiserror::Error)]
pub enum TuneError {
    #[error("{path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{0}: no ham/ and spam/ directories with messages")]
    NoCorpus(PathBuf),
    #[error("scanner configuration: {0}")]
    Config(#[from] crate::ScannerError),
    #[error("the fit is degenerate: {0}")]
    Degenerate(String),
}

/// One message of the corpus, scored.
pub struct Sample {
    pub name: String,
    pub spam: bool,
    pub holdout: bool,
    pub fold: usize,
    /// Symbol hits of the scan with built-in weights, Bayes excluded: (name, score).
    pub hits: Vec<(String, f64)>,
    pub tokens: Vec<u64>,
    /// The Bayes vote: out of fold for training messages, from the whole training part
    /// for held-out ones. `None` when Bayes does not vote.
    pub bayes: Option<Vote>,
    /// The outbound score (`Scanner::evaluate_outbound`: content rules only).
    pub outbound: f64,
}

impl Sample {
    /// The message's features: each symbol hit (1), its Bayes bands (1) and the Bayes
    /// log-odds (`BAYES_LOGODDS`, its value), as the scanner weighs them.
    pub fn features(&self) -> Vec<(&str, f64)> {
        self.features_with(true)
    }

    /// What the regression sees: the symbol hits, and with Bayes its steps away from
    /// BAYES_50 (`band_steps`) and the token regression's log-odds.
    fn design_features(&self, bayes: bool) -> Vec<(&str, f64)> {
        let mut out: Vec<(&str, f64)> = self.hits.iter().filter(|(n, _)| n != "AWL").map(|(n, _)| (n.as_str(), 1.0)).collect();
        if let Some(vote) = self.bayes.filter(|_| bayes) {
            out.extend(bayes_bands(vote.probability).into_iter().flat_map(band_steps).map(|s| (s, 1.0)));
            if let Some(logit) = vote.linear {
                out.push(("LINEAR_LOGODDS", logit));
            }
        }
        out
    }

    /// The features, with or without Bayes's.
    pub fn features_with(&self, bayes: bool) -> Vec<(&str, f64)> {
        let mut out: Vec<(&str, f64)> = self.hits.iter().map(|(n, _)| (n.as_str(), 1.0)).collect();
        if let Some(vote) = self.bayes.filter(|_| bayes) {
            out.extend(bayes_bands(vote.probability).into_iter().map(|b| (b, 1.0)));
            out.push(("BAYES_LOGODDS", vote.mean_logodds));
            if let Some(logit) = vote.linear {
                out.push(("LINEAR_LOGODDS", logit));
            }
        }
        out
    }

    /// The message's score under `weights` (a symbol without one keeps its weight in use).
    pub fn score(&self, weights: &HashMap<String, f64>, in_use: &HashMap<String, f64>, bayes: bool) -> f64 {
        self.features_with(bayes)
            .into_iter()
            .map(|(name, value)| value * weights.get(name).or_else(|| in_use.get(name)).copied().unwrap_or(0.0))
            .sum()
    }
}

/// A corpus file, read, with its place in the split.
pub struct CorpusFile {
    pub name: String,
    pub spam: bool,
    pub holdout: bool,
    pub fold: usize,
    pub bytes: Vec<u8>,
}

/// The messages of `corpus/{ham,spam}`, with their split, in name order.
pub fn load(corpus: &Path, holdout_percent: u8) -> Result<Vec<CorpusFile>, TuneError> {
    let mut out = Vec::new();
    for (dir, spam) in [("ham", false), ("spam", true)] {
        let path = corpus.join(dir);
        let Ok(entries) = std::fs::read_dir(&path) else { continue };
        let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect();
        files.sort();
        for file in files {
            let bytes = std::fs::read(&file).map_err(|source| TuneError::Read { path: file.clone(), source })?;
            let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
            // The last bytes: the corpus's own split went by the first ones.
            let (last, before_last) = (digest.as_ref()[31], digest.as_ref()[30]);
            let holdout = u32::from(last) * 100 < u32::from(holdout_percent) * 256;
            let name = file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            let fold = usize::from(before_last) % FOLDS;
            out.push(CorpusFile { name, spam, holdout, fold, bytes: without_mbox_line(bytes) });
        }
    }
    if !out.iter().any(|f| f.spam) || !out.iter().any(|f| !f.spam) {
        return Err(TuneError::NoCorpus(corpus.to_path_buf()));
    }
    Ok(out)
}

/// An archive's "From " separator line is not part of the message an MTA receives.
fn without_mbox_line(bytes: Vec<u8>) -> Vec<u8> {
    if bytes.starts_with(b"From ") {
        let mut split = rempart_model::mbox::split(&bytes);
        if !split.is_empty() {
            return split.swap_remove(0);
        }
    }
    bytes
}

/// Scores every message offline with `config`'s scanner (built-in weights unless the
/// configuration overrides them) and tokenizes it, on all cores.
pub fn score_all(config: &Config, corpus: Vec<CorpusFile>) -> Result<Vec<Sample>, TuneError> {
    let scanner = Scanner::new(config)?;
    let facts = SessionFacts { peer_ip: std::net::Ipv4Addr::new(192, 0, 2, 1).into(), helo: String::new(), tls: None };
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = corpus.len().div_ceil(threads).max(1);
    let mut corpus = corpus;
    let mut parts = Vec::new();
    while !corpus.is_empty() {
        let rest = corpus.split_off(chunk.min(corpus.len()));
        parts.push(std::mem::replace(&mut corpus, rest));
    }
    let scored: Vec<Vec<Sample>> = std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| {
                let (scanner, facts) = (&scanner, &facts);
                scope.spawn(move || {
                    part.into_iter()
                        .map(|file| {
                            let input = ScanInput { facts, return_path: "", recipients: &[], message: &file.bytes };
                            let verdict = scanner.evaluate_offline(&input);
                            let outbound = scanner.evaluate_outbound(&input, &[]).score;
                            let hits = verdict.symbols.iter().map(|s| (s.name.clone(), s.score)).collect();
                            let tokens = tokens::learnable(&file.bytes).map(|(_, t)| t).unwrap_or_default();
                            let CorpusFile { name, spam, holdout, fold, .. } = file;
                            Sample { name, spam, holdout, fold, hits, tokens, bayes: None, outbound }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    Ok(scored.into_iter().flatten().collect())
}

/// A Bayes model learned from `samples`, with its token regression.
pub fn train_bayes<'a>(samples: impl Iterator<Item = &'a Sample> + Clone) -> Model {
    let buckets: Vec<(Vec<u32>, bool)> = samples.clone().map(|s| (linear::buckets(&s.tokens), s.spam)).collect();
    let mut model = Model {
        linear: Some(std::sync::Arc::new(LinearModel::fit(buckets.iter().map(|(b, spam)| (b.as_slice(), *spam))))),
        ..Model::default()
    };
    for s in samples {
        if s.spam {
            model.spam_messages += 1;
        } else {
            model.ham_messages += 1;
        }
        for t in &s.tokens {
            let counts = model.tokens.entry(*t).or_default();
            if s.spam {
                counts.0 += 1;
            } else {
                counts.1 += 1;
            }
        }
    }
    model
}

/// Sets every sample's Bayes vote: out of fold for training, all training for held out.
pub fn vote_bayes(samples: &mut [Sample], min_learned: u64) {
    let all = train_bayes(samples.iter().filter(|s| !s.holdout));
    let folds: Vec<Model> = (0..FOLDS).map(|f| train_bayes(samples.iter().filter(|s| !s.holdout && s.fold != f))).collect();
    for s in samples.iter_mut() {
        let model = if s.holdout { &all } else { &folds[s.fold] };
        s.bayes = model.vote(&s.tokens, min_learned);
    }
}

/// The sign a symbol's weight must have: +1 for a sign of spam, −1 for a sign of ham
/// (its built-in weight's sign; the Bayes bands by their side of 50 %); `None` for
/// what is not fitted (informational symbols, BAYES_50 — the reference —, the Bayes
/// mean log-odds, already in the bands, and the auto-allowlist).
pub fn direction(name: &str) -> Option<f64> {
    if let Some(side) = band_side(name) {
        return (side != 0.0).then_some(side);
    }
    match name {
        "LINEAR_LOGODDS" => Some(1.0),
        "BAYES_LOGODDS" | "AWL" => None,
        _ => crate::symbols::lookup(name).map(|s| s.weight).filter(|w| *w != 0.0).map(f64::signum),
    }
}

/// What the fit produced.
pub struct Fitted {
    /// Fitted with the Bayes features (else: the set for when Bayes does not vote).
    pub bayes: bool,
    pub lambda: f64,
    /// Points per symbol (scaled), the fitted ones only.
    pub weights: BTreeMap<String, f64>,
    /// Out-of-fold scores of the training messages under the scaled weights, without
    /// the bias: (score, is spam).
    pub cv_scores: Vec<(f64, bool)>,
    pub support: BTreeMap<String, (usize, usize)>,
    /// Points per unit of the regression's log-odds.
    pub points_per_logodds: f64,
}

/// Fits the weights on the training samples, with or without the Bayes features.
pub fn fit_weights(samples: &[Sample], bayes: bool) -> Result<Fitted, TuneError> {
    let training: Vec<&Sample> = samples.iter().filter(|s| !s.holdout).collect();
    let design = Design::new(&training, bayes);
    if design.names.is_empty() {
        return Err(TuneError::Degenerate("no symbol hits enough training messages".into()));
    }
    // The penalty with the lowest out-of-fold log loss.
    let mut best = (f64::INFINITY, LAMBDAS[0], Vec::new());
    for lambda in LAMBDAS {
        let mut loss = 0.0;
        let mut out_of_fold = vec![0.0; design.rows.len()];
        for f in 0..FOLDS {
            let w = fit(&design, lambda, |i| design.folds[i] != f);
            for i in (0..design.rows.len()).filter(|&i| design.folds[i] == f) {
                let z = logit(&design, &w, i);
                out_of_fold[i] = z - w[w.len() - 1];
                let p = (1.0 / (1.0 + (-z).exp())).clamp(1e-12, 1.0 - 1e-12);
                loss -= if design.labels[i] > 0.5 { p.ln() } else { (1.0 - p).ln() };
            }
        }
        if loss < best.0 {
            best = (loss, lambda, out_of_fold);
        }
    }
    let (_, lambda, out_of_fold) = best;
    let w = fit(&design, lambda, |_| true);
    // The one anchor: the first action (6) where at most 0.1 % of the training ham
    // (cross-validated) score above — without Bayes, none. Scaling alone needs it
    // positive: where every training ham scores below 0 (a corpus the features separate
    // cleanly), the point where the regression gives even odds (−bias), else the point
    // midway between the highest ham (or 0) and the lowest spam, whichever first is positive.
    let (labels, out_of_fold) = (&design.labels, &out_of_fold);
    let scores_of = |spam: bool| (0..labels.len()).filter(move |&i| (labels[i] > 0.5) == spam).map(move |i| out_of_fold[i]);
    let mut ham: Vec<f64> = scores_of(false).collect();
    ham.sort_by(|a, b| b.total_cmp(a));
    let highest_ham = ham.get(if bayes { ham.len() / 1000 } else { 0 }).copied().unwrap_or(0.0) + 0.01;
    let lowest_spam = scores_of(true).fold(f64::INFINITY, f64::min);
    let candidates = [highest_ham, -w[w.len() - 1], (ham.first().copied().unwrap_or(0.0).max(0.0) + lowest_spam) / 2.0];
    let at_first_action = candidates.into_iter().find(|c| *c > 0.0).unwrap_or(highest_ham);
    if at_first_action <= 0.0 {
        return Err(TuneError::Degenerate(format!("the ham threshold is {at_first_action:.3} ≤ 0: no positive scale")));
    }
    let scale = FIRST_ACTION / at_first_action;
    let mut support: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for s in &training {
        for (name, _) in s.features_with(bayes) {
            let e = support.entry(name.to_string()).or_default();
            if s.spam {
                e.0 += 1;
            } else {
                e.1 += 1;
            }
        }
    }
    let mut scaled: Vec<f64> = w[..design.names.len()].iter().map(|w| w * scale).collect();
    // Rules no training ham hit: the regression gives them little (Bayes already
    // explains the spam they hit), yet they are what lifts spam above ham that Bayes
    // gets wrong. Each gets at least its log likelihood ratio with the ham rate at its
    // "rule of three" upper bound (3 / ham messages: 95 % confidence for zero hits),
    // capped at MAX_LIFT so no such rule marks mail alone.
    // No training ham changes score, so the anchor above still holds.
    let (spam_total, ham_total) = (design.labels.iter().filter(|l| **l > 0.5).count(), design.labels.iter().filter(|l| **l < 0.5).count());
    let mut lifts = vec![0.0; design.names.len()];
    for (j, name) in design.names.iter().enumerate() {
        let (spam_hits, ham_hits) = support.get(name).copied().unwrap_or_default();
        if ham_hits > 0 || is_bayes_feature(name) || design.signs[j] < 0.0 || spam_total == 0 || ham_total == 0 {
            continue;
        }
        let spam_rate = spam_hits as f64 / spam_total as f64;
        let ham_bound = 3.0 / ham_total as f64;
        let floor = (scale * (spam_rate / ham_bound).ln()).min(MAX_LIFT);
        if floor > scaled[j] {
            lifts[j] = floor - scaled[j];
            scaled[j] = floor;
        }
    }
    let fitted: HashMap<&str, f64> = design.names.iter().map(String::as_str).zip(scaled).collect();
    let mut weights: BTreeMap<String, f64> =
        fitted.iter().filter(|(name, _)| !name.starts_with("BAYES_")).map(|(n, w)| (n.to_string(), round3(*w))).collect();
    if bayes {
        // Each band weighs the sum of its steps; BAYES_50 and the mean log-odds nothing.
        for band in band_names() {
            let steps: f64 = band_steps(band).iter().map(|s| fitted.get(s).copied().unwrap_or(0.0)).sum();
            weights.insert(band.to_string(), round3(steps));
        }
        weights.insert("BAYES_LOGODDS".into(), 0.0);
    }
    let cv_scores = out_of_fold
        .iter()
        .zip(&design.labels)
        .enumerate()
        .map(|(i, (s, l))| (s * scale + design.rows[i].iter().map(|&(j, v)| lifts[j] * v).sum::<f64>(), *l > 0.5))
        .collect();
    Ok(Fitted { bayes, lambda, weights, cv_scores, support, points_per_logodds: scale })
}

/// The Bayes steps and the token regression: fitted, never floored.
fn is_bayes_feature(name: &str) -> bool {
    name.starts_with("BAYES_") || name == "LINEAR_LOGODDS"
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0 + 0.0
}

/// The policy the cross-validated scores suggest: greylist where the fit placed the
/// first action, reject 3 log-odds (20 times likelier spam) above the highest training
/// ham score, rounded up to half a point, add_header halfway between, rounded down.
pub fn suggested_policy(fitted: &Fitted) -> (f64, f64, f64) {
    let highest_ham = fitted.cv_scores.iter().filter(|s| !s.1).map(|s| s.0).fold(f64::NEG_INFINITY, f64::max);
    let reject = (((highest_ham + 3.0 * fitted.points_per_logodds) * 2.0).ceil() / 2.0).max(FIRST_ACTION + 1.0);
    let add_header = (FIRST_ACTION + reject).floor() / 2.0;
    (FIRST_ACTION, add_header, reject)
}

/// The weights file: both sets by symbol name, and what produced them.
pub fn weights_toml(with_bayes: &Fitted, without_bayes: Option<&Fitted>, command: &str, samples: usize) -> String {
    let (greylist, add_header, reject) = suggested_policy(with_bayes);
    let mut out = format!(
        "# Symbol weights fitted by `{command}`\n\
         # on {samples} training messages: logistic regression over the symbol hits (and\n\
         # the Bayes bands, as monotone steps from BAYES_50, and the token regression's log-odds),\n\
         # L2 penalty {} chosen by 5-fold cross-validation, each weight of its symbol's sign;\n\
         # scaled, without offset, so that at most 0.1 % of the training ham (cross-validated)\n\
         # scores {FIRST_ACTION} (the first action); a symbol no training ham hit weighs at least its\n\
         # likelihood ratio with the ham rate at 3 / ham messages (rule of three), up to {MAX_LIFT} points.\n\
         # [weights] applies when Bayes votes; [weights_without_bayes], if present, when it\n\
         # does not. Symbols absent here keep their built-in weights.\n\
         # Load with [scanner] weights_file.\n\
         # Suggested [policy]: greylist = {greylist}, add_header = {add_header}, reject = {reject}.\n",
        with_bayes.lambda
    );
    let sets = std::iter::once(("weights", with_bayes)).chain(without_bayes.map(|f| ("weights_without_bayes", f)));
    for (title, fitted) in sets {
        out.push_str(&format!("\n[{title}]\n"));
        for (name, weight) in &fitted.weights {
            let (spam, ham) = fitted.support.get(name).copied().unwrap_or_default();
            out.push_str(&format!("{name} = {weight}  # hits: {spam} spam, {ham} ham\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fit_finds_the_informative_symbol() {
        let sample = |spam: bool, i: usize, hits: &[&str]| Sample {
            name: format!("{i}"),
            spam,
            holdout: false,
            fold: i % FOLDS,
            hits: hits.iter().map(|h| (h.to_string(), 0.0)).collect(),
            tokens: Vec::new(),
            bayes: None,
            outbound: 0.0,
        };
        let mut samples = Vec::new();
        for i in 0..200 {
            let spam = i % 2 == 0;
            let mut hits = vec!["SPF_PASS"];
            if spam && i % 10 != 0 {
                hits.push("SPF_FAIL");
            }
            if !spam && i % 20 == 1 {
                hits.push("SPF_FAIL");
            }
            samples.push(sample(spam, i, &hits));
        }
        let fitted = fit_weights(&samples, true).unwrap();
        assert!(fitted.weights["SPF_FAIL"] > 1.0, "{:?}", fitted.weights);
        assert!(fitted.weights["SPF_PASS"].abs() < fitted.weights["SPF_FAIL"], "{:?}", fitted.weights);
    }

    #[test]
    fn a_rule_no_ham_hit_gets_at_least_its_rule_of_three_ratio() {
        let samples: Vec<Sample> = (0..400)
            .map(|i| {
                let spam = i % 2 == 0;
                let mut hits = vec!["SPF_PASS".to_string()];
                if spam && i % 10 != 0 || !spam && i % 20 == 1 {
                    hits.push("SPF_FAIL".into());
                }
                // Rare and ham-free: 20 of the 200 spam, both with and without SPF_FAIL.
                if spam && i % 20 == 0 || spam && i % 20 == 2 && i < 40 {
                    hits.push("MIME_ENCRYPTED_ARCHIVE".into());
                }
                let hits = hits.into_iter().map(|h| (h, 0.0)).collect();
                Sample { name: format!("{i}"), spam, holdout: false, fold: i % FOLDS, hits, tokens: Vec::new(), bayes: None, outbound: 0.0 }
            })
            .collect();
        let fitted = fit_weights(&samples, false).unwrap();
        let (spam_hits, ham_hits) = fitted.support["MIME_ENCRYPTED_ARCHIVE"];
        assert_eq!(ham_hits, 0);
        let floor = (fitted.points_per_logodds * ((spam_hits as f64 / 200.0) / (3.0 / 200.0)).ln()).min(MAX_LIFT);
        let weight = fitted.weights["MIME_ENCRYPTED_ARCHIVE"];
        assert!(weight >= floor - 0.001, "{weight} vs floor {floor}");
    }
}
