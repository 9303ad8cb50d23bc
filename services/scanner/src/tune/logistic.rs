//! The symbol-weight regression: logistic, L2-penalised, by Newton's method over a
//! sparse design (a few dozen features, a few thousand messages), each weight held to
//! the sign of what its symbol means (an active set: a weight that would take the wrong
//! sign is fixed at 0 and the rest refitted).

use std::collections::{BTreeMap, HashMap};

use super::{MIN_SUPPORT, Sample, direction};

/// Sparse design: each sample's (feature index, value).
pub(super) struct Design {
    pub names: Vec<String>,
    /// The sign each feature's weight must have (+1 spam, −1 ham).
    pub signs: Vec<f64>,
    pub rows: Vec<Vec<(usize, f64)>>,
    pub labels: Vec<f64>,
    pub folds: Vec<usize>,
}

impl Design {
    pub fn new(samples: &[&Sample], bayes: bool) -> Design {
        let mut support: BTreeMap<&str, usize> = BTreeMap::new();
        for s in samples {
            let mut seen: Vec<&str> = s.design_features(bayes).into_iter().map(|(n, _)| n).collect();
            seen.sort();
            seen.dedup();
            for n in seen {
                *support.entry(n).or_default() += 1;
            }
        }
        // Built-in symbols with a meaning only: composites and DNS lists are the
        // operator's to weigh, informational symbols weigh nothing.
        let names: Vec<String> =
            support.into_iter().filter(|(name, n)| *n >= MIN_SUPPORT && direction(name).is_some()).map(|(k, _)| k.to_string()).collect();
        let signs = names.iter().map(|n| direction(n).unwrap_or(0.0)).collect();
        let index: HashMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
        let rows = samples
            .iter()
            .map(|s| {
                let mut row: Vec<(usize, f64)> =
                    s.design_features(bayes).into_iter().filter_map(|(n, v)| index.get(n).map(|&i| (i, v))).collect();
                row.sort_by_key(|(i, _)| *i);
                row.dedup_by_key(|(i, _)| *i);
                row
            })
            .collect();
        let labels = samples.iter().map(|s| if s.spam { 1.0 } else { 0.0 }).collect();
        Design { names, signs, rows, labels, folds: samples.iter().map(|s| s.fold).collect() }
    }
}

/// Logistic regression weights (one per feature, then the bias) with L2 penalty
/// `lambda` on the weights (not the bias), on the rows `keep` allows, each weight of the
/// sign its feature means: a weight fitted with the wrong sign is fixed at 0 and the
/// others fitted again, until none is.
pub(super) fn fit(design: &Design, lambda: f64, keep: impl Fn(usize) -> bool) -> Vec<f64> {
    let mut free = vec![true; design.names.len()];
    loop {
        let w = fit_free(design, lambda, &keep, &free);
        let wrong: Vec<usize> = (0..free.len()).filter(|&j| free[j] && w[j] * design.signs[j] < 0.0).collect();
        if wrong.is_empty() {
            return w;
        }
        for j in wrong {
            free[j] = false;
        }
    }
}

/// The regression over the `free` features only (the others weigh 0), by Newton's method.
fn fit_free(design: &Design, lambda: f64, keep: &impl Fn(usize) -> bool, free: &[bool]) -> Vec<f64> {
    let d = design.names.len() + 1;
    let bias = d - 1;
    let mut w = vec![0.0; d];
    let rows: Vec<usize> = (0..design.rows.len()).filter(|&i| keep(i)).collect();
    let n = rows.len().max(1) as f64;
    for _ in 0..50 {
        let mut gradient = vec![0.0; d];
        let mut hessian = vec![0.0; d * d];
        for &i in &rows {
            let row: Vec<(usize, f64)> =
                design.rows[i].iter().copied().filter(|&(j, _)| free[j]).chain(std::iter::once((bias, 1.0))).collect();
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
                // A fixed feature's row and column are empty: 1 on the diagonal keeps
                // the system solvable and its step 0.
                hessian[j * d + j] += if free[j] { lambda } else { 1.0 };
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
