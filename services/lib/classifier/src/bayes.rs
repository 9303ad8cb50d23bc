//! The Bayes classifier's model: per token (a 64-bit hash, from `tokens`) the number
//! of spam and ham messages that contained it, combined with Robinson–Fisher
//! chi-square as SpamAssassin does, and the token regression beside it (`linear`). How
//! the counts are stored and learned is `rempart_state::bayes`'s.

use std::collections::HashMap;
use std::sync::Arc;

use crate::linear::{self, LinearModel};

/// SpamAssassin's chi-square constants (Mail::SpamAssassin::Bayes::CombineChi).
const ROBINSON_S: f64 = 0.030;
const ROBINSON_X: f64 = 0.538;
const MIN_PROB_STRENGTH: f64 = 0.346;
const SIGNIFICANT_TOKENS: usize = 150;

/// A message's class, as learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Spam,
    Ham,
}

/// The token table in memory.
#[derive(Debug, Default)]
pub struct Model {
    pub version: i64,
    pub spam_messages: i64,
    pub ham_messages: i64,
    /// token → (spam count, ham count)
    pub tokens: HashMap<u64, (u32, u32)>,
    /// The token regression, fitted on the learned messages (none learned: none).
    pub linear: Option<Arc<LinearModel>>,
}

impl Model {
    /// The probability that a message with `tokens` is spam, or `None` when fewer than
    /// `min_learned` of either class were learned (the classifier does not vote).
    /// Whether `min_learned` of each class were learned: the classifier votes, and the
    /// weights fitted with it apply (before, the rule-only weights).
    pub fn ready(&self, min_learned: u64) -> bool {
        let min = i64::try_from(min_learned).unwrap_or(i64::MAX);
        self.spam_messages >= min && self.ham_messages >= min && self.spam_messages > 0 && self.ham_messages > 0
    }

    pub fn classify(&self, tokens: &[u64], min_learned: u64) -> Option<f64> {
        self.vote(tokens, min_learned).map(|v| v.probability)
    }

    /// The classifier's vote: the chi-square probability (SpamAssassin's), and the mean
    /// log-odds of the significant tokens, which does not saturate where the
    /// probability reaches 0 or 1 (the fitted weights use it).
    pub fn vote(&self, tokens: &[u64], min_learned: u64) -> Option<Vote> {
        if !self.ready(min_learned) {
            return None;
        }
        let (ns, nh) = (self.spam_messages as f64, self.ham_messages as f64);
        let mut probabilities: Vec<f64> = tokens
            .iter()
            .filter_map(|t| self.tokens.get(t))
            .filter_map(|&(s, h)| {
                let (s, h) = (f64::from(s), f64::from(h));
                let (ratio_s, ratio_h) = ((s / ns).min(1.0), (h / nh).min(1.0));
                if ratio_s + ratio_h == 0.0 {
                    return None;
                }
                let p = ratio_s / (ratio_s + ratio_h);
                let n = s + h;
                let p = (ROBINSON_S * ROBINSON_X + n * p) / (ROBINSON_S + n);
                ((p - 0.5).abs() >= MIN_PROB_STRENGTH).then_some(p.clamp(1e-6, 1.0 - 1e-6))
            })
            .collect();
        let linear = self.linear.as_ref().map(|m| m.logit(&linear::buckets(tokens)));
        if probabilities.is_empty() {
            return Some(Vote { probability: 0.5, mean_logodds: 0.0, linear });
        }
        probabilities.sort_by(|a, b| (b - 0.5).abs().total_cmp(&(a - 0.5).abs()));
        probabilities.truncate(SIGNIFICANT_TOKENS);
        let n = probabilities.len();
        let ln_p: f64 = probabilities.iter().map(|p| p.ln()).sum();
        let ln_not_p: f64 = probabilities.iter().map(|p| (1.0 - p).ln()).sum();
        let spam = 1.0 - chi2q(-2.0 * ln_not_p, 2 * n);
        let ham = 1.0 - chi2q(-2.0 * ln_p, 2 * n);
        Some(Vote { probability: ((spam - ham + 1.0) / 2.0).clamp(0.0, 1.0), mean_logodds: (ln_p - ln_not_p) / n as f64, linear })
    }
}

/// What the classifier says of one message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Vote {
    /// Chi-square combined spam probability.
    pub probability: f64,
    /// Mean of ln(p / (1 - p)) over the significant tokens (0 with none).
    pub mean_logodds: f64,
    /// The token regression's log-odds, when it was fitted.
    pub linear: Option<f64>,
}

/// P(χ² ≥ x²) with `v` (even) degrees of freedom.
fn chi2q(x2: f64, v: usize) -> f64 {
    let m = x2 / 2.0;
    let mut term = (-m).exp();
    let mut sum = term;
    for i in 1..v / 2 {
        term *= m / i as f64;
        sum += term;
    }
    sum.min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chi2q_bounds() {
        assert!((chi2q(0.0, 2) - 1.0).abs() < 1e-12);
        assert!(chi2q(100.0, 2) < 1e-20);
    }
}
