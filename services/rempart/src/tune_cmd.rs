//! `rempart tune`: fits the symbol weights on a labelled corpus and measures them on a
//! held-out part against the weights in use (rempart_scanner::tune has the method).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use rempart_scanner::tune::{self, Sample, Separation};

#[derive(Args)]
pub struct TuneArgs {
    /// The corpus: `ham/` and `spam/` directories of message files.
    #[arg(long, default_value = "../shared/corpus/train")]
    corpus: PathBuf,
    /// Per cent of the files held out for measuring (by the SHA-256 of each file).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u8).range(0..=90))]
    holdout: u8,
    /// Write the fitted weights here (a `[scanner] weights_file`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also write the set for when Bayes does not vote (`[weights_without_bayes]`;
    /// by default the built-in weights apply then).
    #[arg(long)]
    without_bayes: bool,
    /// Messages of each class Bayes needs before it votes.
    #[arg(long, default_value_t = 200)]
    min_learned: u64,
    /// Also list the N training ham that score highest and the N training spam that
    /// score lowest (cross-validated), with their symbols: the mail the fit gets wrong.
    #[arg(long, value_name = "N")]
    worst: Option<usize>,
}

pub fn run(args: TuneArgs, config: Option<&Path>) -> Result<(), String> {
    let mut config = crate::load_config(config)?;
    config.dns.offline = true;
    let started = Instant::now();
    let corpus = tune::load(&args.corpus, args.holdout).map_err(|e| e.to_string())?;
    let mut samples = tune::score_all(&config, corpus).map_err(|e| e.to_string())?;
    let scanned = started.elapsed();
    tune::vote_bayes(&mut samples, args.min_learned);
    let scanner = rempart_scanner::Scanner::new(&config).map_err(|e| format!("configuration: {e}"))?;
    let names: std::collections::BTreeSet<String> =
        samples.iter().flat_map(|s| s.features().into_iter().map(|(n, _)| n.to_string()).collect::<Vec<_>>()).collect();
    let in_use_with =
        |bayes: bool| -> HashMap<String, f64> { names.iter().map(|n| (n.clone(), scanner.symbol_weight(n, bayes))).collect() };
    let (in_use, in_use_no_bayes) = (in_use_with(true), in_use_with(false));
    let with_bayes = tune::fit_weights(&samples, true).map_err(|e| e.to_string())?;
    let without_bayes = tune::fit_weights(&samples, false).map_err(|e| e.to_string())?;
    let training = samples.iter().filter(|s| !s.holdout).count();
    let held: Vec<&Sample> = samples.iter().filter(|s| s.holdout).collect();
    let (ham, spam) = (held.iter().filter(|s| !s.spam).count(), held.iter().filter(|s| s.spam).count());
    eprintln!(
        "tune: {} messages scored offline in {:.1} s; training {training}, held out {}",
        samples.len(),
        scanned.as_secs_f64(),
        held.len()
    );
    let (greylist, add_header, reject) = tune::suggested_policy(&with_bayes);
    // The first action: any action is a false positive to the ham it hits (a greylisted
    // message arrives late), and spam below it is accepted as it is.
    let policy_in_use = config.policy.first_action().unwrap_or(greylist);
    let map = |f: &tune::Fitted| -> HashMap<String, f64> { f.weights.iter().map(|(k, v)| (k.clone(), *v)).collect() };
    let scores = |weights: &HashMap<String, f64>, bayes: bool| -> Vec<(f64, bool)> {
        let base = if bayes { &in_use } else { &in_use_no_bayes };
        held.iter().map(|s| (s.score(weights, base, bayes), s.spam)).collect()
    };
    let none = HashMap::new();
    let rows = [
        ("in use, Bayes trained", scores(&none, true), policy_in_use),
        ("fitted, Bayes trained", scores(&map(&with_bayes), true), greylist),
        ("in use, no Bayes", scores(&none, false), policy_in_use),
        ("fitted, no Bayes", scores(&map(&without_bayes), false), greylist),
    ];
    println!("held out ({}% of the files by SHA-256): {ham} ham, {spam} spam; DNS offline", args.holdout);
    println!("{:<24} {:>8} {:>11} {:>13} {:>24}", "weights", "ROC-AUC", "FNR@FPR≤1%", "FNR@FPR≤0.1%", "first action: FPR / FNR");
    for (label, scores, threshold) in &rows {
        let Separation { auc, fnr_at_1, fnr_at_01 } = tune::separation(scores);
        let (fpr, fnr) = tune::rates(scores, *threshold);
        println!(
            "{label:<24} {auc:>8.4} {:>10.2}% {:>12.2}% {:>9} {:>5.2}% / {:>5.2}%",
            fnr_at_1 * 100.0,
            fnr_at_01 * 100.0,
            format!("({threshold})"),
            fpr * 100.0,
            fnr * 100.0
        );
    }
    let bayes = tune::bayes_separation(&held);
    println!("{:<24} {:>8.4} {:>10.2}% {:>12.2}%", "Bayes probability alone", bayes.auc, bayes.fnr_at_1 * 100.0, bayes.fnr_at_01 * 100.0);
    let cv = tune::separation(&with_bayes.cv_scores);
    let (cv_fpr, cv_fnr) = tune::rates(&with_bayes.cv_scores, greylist);
    println!(
        "cross-validated (training part, fitted with Bayes): ROC-AUC {:.4}, FNR@FPR≤1% {:.2}%, FNR@FPR≤0.1% {:.2}%, first action ({greylist}) FPR {:.2}% / FNR {:.2}%",
        cv.auc,
        cv.fnr_at_1 * 100.0,
        cv.fnr_at_01 * 100.0,
        cv_fpr * 100.0,
        cv_fnr * 100.0
    );
    let configured = (
        config.policy.greylist.unwrap_or(f64::NEG_INFINITY),
        config.policy.add_header.unwrap_or(f64::INFINITY),
        config.policy.reject.unwrap_or(f64::INFINITY),
    );
    for (title, (greylist, add_header, reject)) in [("suggested", (greylist, add_header, reject)), ("configured", configured)] {
        println!("{title} policy: greylist = {greylist}, add_header = {add_header}, reject = {reject}; on the held-out part:");
        println!("  {:<11} {:>26} {:>26} {:>26}", "band", rows[0].0, rows[1].0, rows[2].0);
        for (band, from, to) in [
            ("accept", f64::NEG_INFINITY, greylist),
            ("greylist", greylist, add_header),
            ("add_header", add_header, reject),
            ("reject", reject, f64::INFINITY),
        ] {
            let share = |scores: &[(f64, bool)], spam: bool| {
                let n = scores.iter().filter(|s| s.1 == spam).count().max(1);
                scores.iter().filter(|s| s.1 == spam && s.0 >= from && s.0 < to).count() as f64 * 100.0 / n as f64
            };
            let cell = |scores: &[(f64, bool)]| format!("ham {:>6.2}% spam {:>6.2}%", share(scores, false), share(scores, true));
            println!("  {band:<11} {:>26} {:>26} {:>26}", cell(&rows[0].1), cell(&rows[1].1), cell(&rows[2].1));
        }
    }
    println!("\n{:<24} {:>8} {:>8} {:>10} {:>7} {:>7}", "symbol", "in use", "fitted", "no Bayes", "spam", "ham");
    let mut names: Vec<&String> = with_bayes.weights.keys().chain(without_bayes.weights.keys()).collect();
    names.sort();
    names.dedup();
    for name in names {
        let (s, h) = with_bayes.support.get(name).or_else(|| without_bayes.support.get(name)).copied().unwrap_or_default();
        let show = |w: Option<&f64>| w.map_or("-".to_string(), |w| format!("{w:.2}"));
        println!(
            "{name:<24} {:>8.2} {:>8} {:>10} {s:>7} {h:>7}",
            in_use.get(name).copied().unwrap_or(0.0),
            show(with_bayes.weights.get(name)),
            show(without_bayes.weights.get(name))
        );
    }
    print_outbound(&samples, config.outbound.block);
    if let Some(n) = args.worst {
        print_worst(&samples, &with_bayes, n);
        print_worst(&samples, &without_bayes, n);
    }
    if let Some(out) = &args.out {
        let command = format!(
            "rempart tune --corpus {} --holdout {}{} --out {}",
            args.corpus.display(),
            args.holdout,
            if args.without_bayes { " --without-bayes" } else { "" },
            out.display()
        );
        std::fs::write(out, tune::weights_toml(&with_bayes, args.without_bayes.then_some(&without_bayes), &command, training))
            .map_err(|e| format!("{}: {e}", out.display()))?;
        eprintln!("tune: weights written to {}", out.display());
    }
    Ok(())
}

/// The training ham scoring highest and the training spam scoring lowest (their
/// cross-validated scores under the fitted weights), each with its Bayes probability
/// and symbols.
fn print_worst(samples: &[Sample], fitted: &tune::Fitted, n: usize) {
    let training: Vec<&Sample> = samples.iter().filter(|s| !s.holdout).collect();
    let mut scored: Vec<(f64, &Sample)> = fitted.cv_scores.iter().map(|(score, _)| *score).zip(training).collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let describe = |(score, sample): &(f64, &Sample)| {
        let symbols: Vec<&str> = sample.hits.iter().map(|(name, _)| name.as_str()).collect();
        let bayes = sample.bayes.map_or("-".to_string(), |v| format!("{:.3}", v.probability));
        println!("  {score:>7.2}  bayes {bayes:>5}  {}  {}", sample.name, symbols.join(" "));
    };
    let weights = if fitted.bayes { "fitted with Bayes" } else { "fitted without Bayes" };
    println!("\ntraining ham scoring highest (cross-validated, {weights}):");
    scored.iter().filter(|(_, s)| !s.spam).take(n).for_each(describe);
    println!("training spam scoring lowest (cross-validated, {weights}):");
    scored.iter().rev().filter(|(_, s)| s.spam).take(n).for_each(describe);
}

/// How the outbound score (content rules only, what submitted mail gets) falls on the
/// whole corpus: the share of ham and spam at or above a few thresholds, for choosing
/// `[outbound] block`.
fn print_outbound(samples: &[Sample], block: f64) {
    let share = |spam: bool, at: f64| {
        let class: Vec<&Sample> = samples.iter().filter(|s| s.spam == spam).collect();
        class.iter().filter(|s| s.outbound >= at).count() as f64 * 100.0 / class.len().max(1) as f64
    };
    println!("\noutbound score (content rules, whole corpus), share at or above:");
    for at in [3.0, 4.0, 5.0, 6.0, block] {
        let marker = if at == block { "  <- [outbound] block" } else { "" };
        println!("  {at:>4}: ham {:>6.2}%  spam {:>6.2}%{marker}", share(false, at), share(true, at));
    }
}
