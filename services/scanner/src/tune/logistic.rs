//! The symbol-weight regression: logistic, L2-penalised, by Newton's method over a
//! sparse design (a few dozen features, a few thousand messages).

use std::collections::{BTreeMap, HashMap};

use super::{MIN_SUPPORT, Sample};

/// Sparse design: each sample's (feature index, value).
pub(super) struct Design {
    pub names: Vec<String>,
    pub rows: Vec<Vec<(usize, f64)>>,
    pub labels: Vec<f64>,
    pub folds: Vec<usize>,
}

impl Design {
    pub fn new(samples: &[&Sample], bayes: bool) -> Design {
        let mut support: BTreeMap<&str, usize> = BTreeMap::new();
        for s in samples {
            let mut seen: Vec<&str> = s.features_with(bayes).into_iter().map(|(n, _)| n).filter(|n| *n != "AWL").collect();
            seen.sort();
            seen.dedup();
            for n in seen {
                *support.entry(n).or_default() += 1;
            }
        }
        // Built-in symbols only: composites and DNS lists are the operator's to weigh.
        let names: Vec<String> = support
            .into_iter()
            .filter(|(name, n)| *n >= MIN_SUPPORT && crate::symbols::lookup(name).is_some())
            .map(|(k, _)| k.to_string())
            .collect();
        let index: HashMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
        let rows = samples
            .iter()
            .map(|s| {
                let mut row: Vec<(usize, f64)> =
                    s.features_with(bayes).into_iter().filter_map(|(n, v)| index.get(n).map(|&i| (i, v))).collect();
                row.sort_by_key(|(i, _)| *i);
                row.dedup_by_key(|(i, _)| *i);
                row
            })
            .collect();
        let labels = samples.iter().map(|s| if s.spam { 1.0 } else { 0.0 }).collect();
        Design { names, rows, labels, folds: samples.iter().map(|s| s.fold).collect() }
    }
}

/// Logistic regression weights (one per feature, then the bias) with L2 penalty
/// `lambda` on the weights (not the bias), by Newton's method on the rows `keep` allows.
pub(super) fn fit(design: &Design, lambda: f64, keep: impl Fn(usize) -> bool) -> Vec<f64> {
    let d = design.names.len() + 1;
    let bias = d - 1;
    let mut w = vec![0.0; d];
    let rows: Vec<usize> = (0..design.rows.len()).filter(|&i| keep(i)).collect();
    let n = rows.len().max(1) as f64;
    for _ in 0..50 {
        let mut gradient = vec![0.0; d];
        let mut hessian = vec![0.0; d * d];
        for &i in &rows {
            let row: Vec<(usize, f64)> = design.rows[i].iter().copied().chain(std::iter::once((bias, 1.0))).collect();
            let z: f64 = row.iter().map(|&(j, x)| w[j] * x).sum();
            let p = 1.0 / (1.0 + (-z).exp());
            let (g, h) = (p - design.labels[i], (p * (1.0 - p)).max(1e-9));
            for &(j, xj) in &row {
                gradient[j] += g * xj;
                for &(k, xk) in &row {
                    hessian[j * d + k] += h * xj * xk;
                }
            }
        }
        for j in 0..d {
            gradient[j] /= n;
            for k in 0..d {
                hessian[j * d + k] /= n;
            }
            if j != bias {
                gradient[j] += lambda * w[j];
                hessian[j * d + j] += lambda;
            }
        }
        hessian[bias * d + bias] += 1e-9;
        let Some(step) = solve(hessian, gradient, d) else { break };
        let mut largest: f64 = 0.0;
        for j in 0..d {
            w[j] -= step[j];
            largest = largest.max(step[j].abs());
        }
        if largest < 1e-7 {
            break;
        }
    }
    w
}

/// Solves `a x = b` (a symmetric positive definite, `d`×`d`) by Cholesky.
fn solve(mut a: Vec<f64>, mut b: Vec<f64>, d: usize) -> Option<Vec<f64>> {
    for j in 0..d {
        let mut diag = a[j * d + j];
        for k in 0..j {
            diag -= a[j * d + k] * a[j * d + k];
        }
        if diag <= 0.0 {
            return None;
        }
        let diag = diag.sqrt();
        a[j * d + j] = diag;
        for i in j + 1..d {
            let mut v = a[i * d + j];
            for k in 0..j {
                v -= a[i * d + k] * a[j * d + k];
            }
            a[i * d + j] = v / diag;
        }
    }
    for i in 0..d {
        let mut v = b[i];
        for k in 0..i {
            v -= a[i * d + k] * b[k];
        }
        b[i] = v / a[i * d + i];
    }
    for i in (0..d).rev() {
        let mut v = b[i];
        for k in i + 1..d {
            v -= a[k * d + i] * b[k];
        }
        b[i] = v / a[i * d + i];
    }
    Some(b)
}

pub(super) fn logit(design: &Design, w: &[f64], i: usize) -> f64 {
    w[w.len() - 1] + design.rows[i].iter().map(|&(j, x)| w[j] * x).sum::<f64>()
}
