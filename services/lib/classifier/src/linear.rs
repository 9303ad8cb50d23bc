//! A discriminative classifier beside Bayes: logistic regression over the same hashed
//! tokens (as Stalwart's linear model), fitted by stochastic gradient descent. Bayes
//! judges each token on its own counts; the regression weighs tokens together, so the
//! dozens of "offer" words of a legitimate newsletter are not counted as dozens of
//! independent proofs — which is where Bayes is most often wrong about ham, and where a
//! threshold that spares all ham must sit. `rempart tune` measured it (docs/filtering.md).
//!
//! Features: the message's tokens hashed into `BUCKETS` weights (unique buckets), the
//! vector scaled to unit length so a long message takes no bigger steps. While fitting,
//! each bucket's feature is also scaled by how far its counts lean to one class
//! (1 + |log ratio of its spam and ham rates|, as NBSVM does: Wang & Manning 2012), so
//! the gradient moves the telling tokens first; the stored weight includes that scale,
//! so scoring needs only the weights.
//!
//! Nothing but what was learned is stored: each learned message's buckets
//! (`linear.m.<message>`, written with the Bayes counts), and every scanner fits the same
//! model from them — the fit is deterministic — when the Bayes model version changes.
//! The model is the average of `MODELS` regressions fitted in different orders (less
//! dependent on any one order), ham errors counting `HAM_WEIGHT` times.
//!
//! The constants were chosen by `rempart tune`'s cross-validation on the training part
//! of the shared corpus, over four sets of orders each (docs/filtering.md).

/// Weights, by bucket (2^20: collisions among a few hundred thousand tokens are rare).
pub const BUCKETS: usize = 1 << 20;
/// Passes over the learned messages, per regression.
const EPOCHS: usize = 4;
/// The step size of the first pass; pass `e` takes `RATE / (1 + e)`. Large, because the
/// features are scaled to unit length.
const RATE: f64 = 16.0;
/// How much more a ham's error counts than a spam's: a ham scored as spam is the costlier
/// mistake, and the threshold sits among the highest-scoring ham.
const HAM_WEIGHT: f64 = 2.0;
/// Regressions fitted, each visiting the messages in its own shuffled order, and
/// averaged. With far more buckets than messages, one order's model depends on where it
/// started: over four sets of orders, the held-out FNR at the first action ranged
/// 2.4–5.0 % for an average of five regressions of 16 passes, 2.8–3.8 % for twenty of
/// four passes (the same work).
const MODELS: u64 = 20;
/// L2 penalty, per step, on the weights a message touches.
const L2: f64 = 1e-5;
/// The smoothing of the per-bucket class counts behind the feature scale.
const COUNT_PRIOR: f64 = 1.0;
/// Learned messages a model is fitted from, at most (memory while fitting: 4 bytes
/// per token, ~6 kB a message, so ~60 MB at most, plus 4 MB per regression in flight).
pub const MAX_MESSAGES: usize = 10_000;

#[derive(Debug, Clone)]
pub struct LinearModel {
    weights: Vec<f32>,
    bias: f32,
}

/// The unique buckets of `tokens`, sorted (what is stored and fitted on).
pub fn buckets(tokens: &[u64]) -> Vec<u32> {
    // The token is already a hash: its high bits are as good as any.
    let mut out: Vec<u32> = tokens.iter().map(|t| ((t >> 44) as usize & (BUCKETS - 1)) as u32).collect();
    out.sort_unstable();
    out.dedup();
    out
}

impl LinearModel {
    fn empty() -> Self {
        LinearModel { weights: vec![0.0; BUCKETS], bias: 0.0 }
    }

    /// The log-odds that a message with these `buckets` is spam.
    pub fn logit(&self, buckets: &[u32]) -> f64 {
        self.scaled_logit(buckets, &[])
    }

    /// The log-odds with each bucket's feature scaled by `scale` (1 where it has none:
    /// scoring, whose weights already include the scale).
    fn scaled_logit(&self, buckets: &[u32], scale: &[f32]) -> f64 {
        let sum: f64 = buckets.iter().filter_map(|b| self.weights.get(*b as usize).map(|w| f64::from(*w) * scale_of(scale, *b))).sum();
        f64::from(self.bias) + sum * unit(buckets.len())
    }

    /// One gradient step on one message, each bucket's feature scaled by `scale`.
    fn step(&mut self, buckets: &[u32], spam: bool, rate: f64, scale: &[f32]) {
        let p = 1.0 / (1.0 + (-self.scaled_logit(buckets, scale)).exp());
        let error = if spam { 1.0 - p } else { -p * HAM_WEIGHT };
        let step = rate * error * unit(buckets.len());
        for b in buckets {
            if let Some(w) = self.weights.get_mut(*b as usize) {
                *w = (f64::from(*w) * (1.0 - rate * L2) + step * scale_of(scale, *b)) as f32;
            }
        }
        self.bias = (f64::from(self.bias) + rate * error * 0.1) as f32;
    }

    /// Fits on `messages` (buckets, is spam): the average of `MODELS` regressions, each
    /// in an order shuffled the same way every time, so the same messages give the same
    /// model on every scanner. The regressions run on up to `threads()` threads and are
    /// summed in their fixed order.
    pub fn fit<'a>(messages: impl Iterator<Item = (&'a [u32], bool)>) -> LinearModel {
        let messages: Vec<(&[u32], bool)> = messages.collect();
        let scale = feature_scale(&messages);
        let mut average = LinearModel::empty();
        let share = 1.0 / MODELS as f32;
        let seeds: Vec<u64> =
            (0..MODELS).map(|k| 0x9e37_79b9_7f4a_7c15_u64.wrapping_add(k.wrapping_mul(0x2545_f491_4f6c_dd1d)) | 1).collect();
        for batch in seeds.chunks(threads()) {
            let models: Vec<LinearModel> = std::thread::scope(|scope| {
                let (messages, scale) = (&messages, &scale);
                let handles: Vec<_> = batch.iter().map(|&seed| scope.spawn(move || Self::fit_one(messages, seed, scale))).collect();
                // A fit does not panic (no indexing outside its vectors); were one to,
                // the average is over the others.
                handles.into_iter().filter_map(|h| h.join().ok()).collect()
            });
            for model in models {
                for ((sum, w), s) in average.weights.iter_mut().zip(&model.weights).zip(&scale) {
                    *sum += *w * *s * share;
                }
                average.bias += model.bias * share;
            }
        }
        average
    }

    /// One regression, the messages visited in the order `seed` shuffles them to.
    fn fit_one(messages: &[(&[u32], bool)], mut seed: u64, scale: &[f32]) -> LinearModel {
        let mut model = LinearModel::empty();
        let mut order: Vec<usize> = (0..messages.len()).collect();
        for epoch in 0..EPOCHS {
            // Fisher–Yates with a xorshift generator.
            for i in (1..order.len()).rev() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                order.swap(i, (seed % (i as u64 + 1)) as usize);
            }
            let rate = RATE / (1.0 + epoch as f64);
            for &i in &order {
                let (buckets, spam) = messages[i];
                model.step(buckets, spam, rate, scale);
            }
        }
        model
    }
}

/// Each bucket's feature scale: 1 + |ln(spam rate / ham rate)| of the messages that
/// have it, the counts smoothed by `COUNT_PRIOR`.
fn feature_scale(messages: &[(&[u32], bool)]) -> Vec<f32> {
    let mut counts = vec![(0u32, 0u32); BUCKETS];
    let (mut spam, mut ham) = (0.0, 0.0);
    for (buckets, is_spam) in messages {
        if *is_spam {
            spam += 1.0;
        } else {
            ham += 1.0;
        }
        for b in buckets.iter() {
            if let Some(c) = counts.get_mut(*b as usize) {
                if *is_spam {
                    c.0 += 1;
                } else {
                    c.1 += 1;
                }
            }
        }
    }
    let rate = |n: u32, total: f64| (f64::from(n) + COUNT_PRIOR) / (total + 2.0 * COUNT_PRIOR);
    counts.into_iter().map(|(s, h)| (1.0 + (rate(s, spam) / rate(h, ham)).ln().abs()) as f32).collect()
}

/// Bucket `b`'s feature scale: 1 when `scale` has none for it.
fn scale_of(scale: &[f32], b: u32) -> f64 {
    f64::from(scale.get(b as usize).copied().unwrap_or(1.0))
}

/// Threads a fit uses: the machine's, at most 4.
fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).min(4)
}

/// 1/√n: the scale of each feature of an n-bucket message.
fn unit(n: usize) -> f64 {
    if n == 0 { 0.0 } else { 1.0 / (n as f64).sqrt() }
}

/// A learned message as stored: its class ("s" or "h") then its buckets, 4 bytes each.
pub fn encode(spam: bool, buckets: &[u32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + 4 * buckets.len());
    out.push(if spam { b's' } else { b'h' });
    for b in buckets {
        out.extend_from_slice(&b.to_le_bytes());
    }
    out
}

/// The class and buckets of a stored learned message; `None` when malformed.
pub fn decode(value: &[u8]) -> Option<(bool, Vec<u32>)> {
    let (class, rest) = value.split_first()?;
    let spam = match class {
        b's' => true,
        b'h' => false,
        _ => return None,
    };
    if rest.len() % 4 != 0 {
        return None;
    }
    let buckets = rest.chunks_exact(4).filter_map(|c| c.try_into().ok()).map(u32::from_le_bytes).collect();
    Some((spam, buckets))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fit_separates_what_tokens_separate_and_is_deterministic() {
        let spam: Vec<Vec<u32>> = (0..50u32).map(|i| vec![1, 100 + i, 7]).collect();
        let ham: Vec<Vec<u32>> = (0..50u32).map(|i| vec![3, 200 + i, 7]).collect();
        let all = || spam.iter().map(|b| (b.as_slice(), true)).chain(ham.iter().map(|b| (b.as_slice(), false)));
        let model = LinearModel::fit(all());
        assert!(model.logit(&[1, 7]) > 1.0);
        assert!(model.logit(&[3, 7]) < -1.0);
        assert_eq!(model.bias, LinearModel::fit(all()).bias, "the same messages, the same model");
    }

    #[test]
    fn a_bucket_that_leans_to_one_class_is_scaled_up() {
        let spam = [1u32, 7];
        let ham = [3u32, 7];
        let messages: Vec<(&[u32], bool)> = (0..10).map(|_| (&spam[..], true)).chain((0..10).map(|_| (&ham[..], false))).collect();
        let scale = feature_scale(&messages);
        assert!((scale[7] - 1.0).abs() < 1e-6, "in every message of both classes: no lean");
        assert!(scale[1] > 2.0 && (scale[1] - scale[3]).abs() < 1e-6, "one class only, either class: {} {}", scale[1], scale[3]);
        assert!((scale[9] - 1.0).abs() < 1e-6, "never seen: no lean");
    }

    #[test]
    fn stored_messages_read_back() {
        let buckets = buckets(&[5 << 44, 5 << 44, 9 << 44]);
        assert_eq!(buckets, vec![5, 9], "unique, sorted");
        assert_eq!(decode(&encode(true, &buckets)), Some((true, buckets.clone())));
        assert_eq!(decode(&encode(false, &[])), Some((false, vec![])));
        assert_eq!(decode(b"x\0\0\0\0"), None);
        assert_eq!(decode(b"s\0\0"), None);
    }
}
