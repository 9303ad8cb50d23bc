//! How scores separate ham from spam: ROC-AUC, FNR at a given FPR, a threshold's rates.

use super::Sample;

/// How well scores separate: ROC-AUC, FNR at FPR ≤ 1 % and ≤ 0.1 %.
#[derive(Debug, Clone, Copy)]
pub struct Separation {
    pub auc: f64,
    pub fnr_at_1: f64,
    pub fnr_at_01: f64,
}

pub fn separation(scores: &[(f64, bool)]) -> Separation {
    let mut ham: Vec<f64> = scores.iter().filter(|s| !s.1).map(|s| s.0).collect();
    let spam: Vec<f64> = scores.iter().filter(|s| s.1).map(|s| s.0).collect();
    ham.sort_by(f64::total_cmp);
    // AUC: the chance a spam scores above a ham (ties count half).
    let mut wins = 0.0;
    for s in &spam {
        let below = ham.partition_point(|h| h < s);
        let equal = ham[below..].partition_point(|h| h <= s);
        wins += below as f64 + equal as f64 / 2.0;
    }
    let auc = wins / (ham.len() as f64 * spam.len() as f64).max(1.0);
    let fnr_at = |fpr: f64| {
        // The lowest threshold with at most `fpr` of ham at or above it.
        let allowed = (fpr * ham.len() as f64).floor() as usize;
        let threshold = ham.len().checked_sub(allowed + 1).map_or(f64::NEG_INFINITY, |i| ham[i]);
        spam.iter().filter(|s| **s <= threshold).count() as f64 / spam.len().max(1) as f64
    };
    Separation { auc, fnr_at_1: fnr_at(0.01), fnr_at_01: fnr_at(0.001) }
}

/// How the Bayes vote alone separates (a message it does not vote on counts as 0.5).
pub fn bayes_separation(samples: &[&Sample]) -> Separation {
    let scores: Vec<(f64, bool)> = samples.iter().map(|s| (s.bayes.map_or(0.5, |v| v.probability), s.spam)).collect();
    separation(&scores)
}

/// A threshold's rates: ham at or above it, spam below it.
pub fn rates(scores: &[(f64, bool)], threshold: f64) -> (f64, f64) {
    let (ham, spam) = (scores.iter().filter(|s| !s.1).count().max(1), scores.iter().filter(|s| s.1).count().max(1));
    let fp = scores.iter().filter(|s| !s.1 && s.0 >= threshold).count();
    let fn_ = scores.iter().filter(|s| s.1 && s.0 < threshold).count();
    (fp as f64 / ham as f64, fn_ as f64 / spam as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separation_of_perfect_and_useless_scores() {
        let perfect: Vec<(f64, bool)> = (0..100).map(|i| (i as f64, i >= 50)).collect();
        let s = separation(&perfect);
        assert_eq!((s.auc, s.fnr_at_1, s.fnr_at_01), (1.0, 0.0, 0.0));
        let useless: Vec<(f64, bool)> = (0..100).map(|i| (0.0, i % 2 == 0)).collect();
        let s = separation(&useless);
        assert_eq!(s.auc, 0.5);
        assert_eq!(s.fnr_at_01, 1.0);
        assert_eq!(rates(&perfect, 50.0), (0.0, 0.0));
    }
}
