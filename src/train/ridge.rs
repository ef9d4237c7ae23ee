//! The output mapping fitted in closed form (`r2dl train --ridge-head`): ridge regression of the
//! training targets on the frozen model's features, from sums over the rows, so that memory does
//! not grow with them. The penalty is the one of [`PENALTIES`] whose fit has the least squared
//! error on the validation rows, again from sums over the rows.
//!
//! Why: a linear mapping trained by Adam from zero moves slowly when the features that matter
//! differ little between inputs (variants of one protein), and stops where the epoch budget
//! ends; the least-squares mapping is where that descent would end, reached in one pass.

use super::cholesky::{self, SmallPivot};
use crate::model::{View, matmul};
use crate::predictor::Dense;

/// The penalties tried, on the squared norm of the weights (not of the biases).
pub(super) const PENALTIES: [f64; 10] = [1e-3, 1e-2, 1e-1, 1.0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6];

/// Sums over rows of features `x` (`dim` each) and targets `y` (`outputs` each): everything a
/// least-squares fit and its squared error need.
#[derive(Debug, Clone)]
pub(super) struct Moments {
    dim: usize,
    outputs: usize,
    rows: usize,
    sum_x: Vec<f64>,
    sum_y: Vec<f64>,
    /// Σ x xᵀ, `dim × dim`.
    xx: Vec<f64>,
    /// Σ x yᵀ, `dim × outputs`.
    xy: Vec<f64>,
    /// Σ y², one per output.
    yy: Vec<f64>,
}

impl Moments {
    /// No rows yet.
    pub(super) fn new(dim: usize, outputs: usize) -> Self {
        Self {
            dim,
            outputs,
            rows: 0,
            sum_x: vec![0.0; dim],
            sum_y: vec![0.0; outputs],
            xx: vec![0.0; dim * dim],
            xy: vec![0.0; dim * outputs],
            yy: vec![0.0; outputs],
        }
    }

    /// Adds the rows of `x` (`n × dim`) with their targets `y` (`n × outputs`). Σ x xᵀ grows
    /// by one double-precision GEMM (`dim` reaches thousands for a per-residue mapping with
    /// neighbours, over millions of residues).
    pub(super) fn add(&mut self, x: &[f32], y: &[f32]) {
        let (dim, outputs) = (self.dim, self.outputs);
        let rows = x.len() / dim;
        if rows == 0 {
            return;
        }
        let x: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
        let xt = View::new(&x, dim, rows, 1, dim);
        let xv = View::new(&x, rows, dim, dim, 1);
        matmul(&mut self.xx, dim, true, xt, xv, 1.0, rayon::current_num_threads());
        for (x, y) in x.chunks_exact(dim).zip(y.chunks_exact(outputs)) {
            for (i, &xi) in x.iter().enumerate() {
                self.sum_x[i] += xi;
                for (o, &yo) in y.iter().enumerate() {
                    self.xy[i * outputs + o] += xi * f64::from(yo);
                }
            }
            for (o, &yo) in y.iter().enumerate() {
                self.sum_y[o] += f64::from(yo);
                self.yy[o] += f64::from(yo) * f64::from(yo);
            }
        }
        self.rows += rows;
    }

    /// The mapping `y ≈ W x + b` minimising `Σ ‖y − W x − b‖² + penalty ‖W‖²` over these rows;
    /// `None` without rows or when the system cannot be solved (a penalty of 0 on collinear
    /// features).
    pub(super) fn fit(&self, penalty: f64) -> Option<Dense> {
        if self.rows == 0 {
            return None;
        }
        let (dim, outputs, n) = (self.dim, self.outputs, self.rows as f64);
        let mean_x: Vec<f64> = self.sum_x.iter().map(|s| s / n).collect();
        let mean_y: Vec<f64> = self.sum_y.iter().map(|s| s / n).collect();
        // the centred normal equations: (Σ (x − x̄)(x − x̄)ᵀ + penalty·I) W = Σ (x − x̄)(y − ȳ)ᵀ
        let mut a = vec![0.0; dim * dim];
        for i in 0..dim {
            for j in 0..dim {
                a[i * dim + j] = self.xx[i * dim + j] - n * mean_x[i] * mean_x[j];
            }
            a[i * dim + i] += penalty;
        }
        let mut b = vec![0.0; dim * outputs];
        for i in 0..dim {
            for o in 0..outputs {
                b[i * outputs + o] = self.xy[i * outputs + o] - n * mean_x[i] * mean_y[o];
            }
        }
        // a pivot that rounding alone keeps above zero (collinear features) counts as zero
        let largest = (0..dim).map(|i| a[i * dim + i].abs()).fold(0.0, f64::max);
        cholesky::solve(&mut a, dim, &mut b, outputs, SmallPivot::Fail(largest * 1e-12))?;
        let mut dense = Dense::zeros(outputs, dim);
        for o in 0..outputs {
            let w: Vec<f64> = (0..dim).map(|i| b[i * outputs + o]).collect();
            let fitted_mean: f64 = w.iter().zip(&mean_x).map(|(w, m)| w * m).sum();
            dense.bias[o] = (mean_y[o] - fitted_mean) as f32;
            for (target, &value) in dense.weight[o * dim..(o + 1) * dim].iter_mut().zip(&w) {
                *target = value as f32;
            }
        }
        Some(dense)
    }

    /// `Σ ‖y − W x − b‖²` of `dense` over these rows.
    pub(super) fn squared_error(&self, dense: &Dense) -> f64 {
        let (dim, outputs, n) = (self.dim, self.outputs, self.rows as f64);
        let mut total = 0.0;
        for o in 0..outputs {
            let w: Vec<f64> = dense.weight[o * dim..(o + 1) * dim]
                .iter()
                .map(|&v| f64::from(v))
                .collect();
            let b = f64::from(dense.bias[o]);
            let w_xy: f64 = (0..dim).map(|i| w[i] * self.xy[i * outputs + o]).sum();
            let w_sx: f64 = w.iter().zip(&self.sum_x).map(|(w, s)| w * s).sum();
            let w_xx_w: f64 = (0..dim)
                .map(|i| {
                    let row = &self.xx[i * dim..(i + 1) * dim];
                    w[i] * row.iter().zip(&w).map(|(x, w)| x * w).sum::<f64>()
                })
                .sum();
            total += self.yy[o] - 2.0 * (w_xy + b * self.sum_y[o]) + w_xx_w + 2.0 * b * w_sx + n * b * b;
        }
        total.max(0.0)
    }
}

/// The fit of `train` under each of [`PENALTIES`] with the least squared error on `valid`, and
/// that penalty; `None` when no penalty gives a fit (no training rows).
pub(super) fn fit_choosing_penalty(train: &Moments, valid: &Moments) -> Option<(Dense, f64)> {
    PENALTIES
        .iter()
        .filter_map(|&penalty| train.fit(penalty).map(|fit| (valid.squared_error(&fit), fit, penalty)))
        .filter(|(error, _, _)| error.is_finite())
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, fit, penalty)| (fit, penalty))
}

/// The factor on a least-squares fit of one-hot class labels that gives its scores as logits:
/// the one of 2^(k/4), k = −8 … 40 (0.25 … 1,024) with the least mean softmax cross-entropy of
/// `logits` (`rows × classes`) against the rows' `classes`; 1 without rows.
pub(super) fn temperature(logits: &[f32], classes: &[f32], outputs: usize) -> f32 {
    if classes.is_empty() {
        return 1.0;
    }
    let cross_entropy = |factor: f64| {
        let total: f64 = logits
            .chunks_exact(outputs)
            .zip(classes)
            .map(|(row, &class)| {
                let top = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
                let sum: f64 = row.iter().map(|&v| (factor * f64::from(v - top)).exp()).sum();
                sum.ln() - factor * f64::from(row[class as usize] - top)
            })
            .sum();
        total / classes.len() as f64
    };
    (-8..=40)
        .map(|k| 2f64.powf(f64::from(k) / 4.0))
        .map(|factor| (cross_entropy(factor), factor))
        .filter(|(loss, _)| loss.is_finite())
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map_or(1.0, |(_, factor)| factor as f32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::rng::{Rng, Stream};

    /// `rows` features in [−1, 1) and targets `y = W x + b (+ noise)`.
    fn data(rows: usize, noise: f32, seed: u64) -> (Vec<f32>, Vec<f32>) {
        let mut rng = Rng::stream(seed, Stream::HeadInit);
        let (w, b) = ([[0.5f32, -2.0, 1.5], [1.0, 0.0, -1.0]], [0.25f32, -3.0]);
        let mut x = Vec::new();
        let mut y = Vec::new();
        for _ in 0..rows {
            let row: Vec<f32> = (0..3).map(|_| 2.0 * rng.unit() as f32 - 1.0).collect();
            for o in 0..2 {
                let clean: f32 = w[o].iter().zip(&row).map(|(w, x)| w * x).sum::<f32>() + b[o];
                y.push(clean + noise * (2.0 * rng.unit() as f32 - 1.0));
            }
            x.extend(row);
        }
        (x, y)
    }

    #[test]
    fn recovers_an_exact_linear_map_and_its_error_is_that_of_the_rows() {
        let (x, y) = data(200, 0.0, 1);
        let mut moments = Moments::new(3, 2);
        moments.add(&x, &y);
        let fit = moments.fit(1e-9).unwrap();
        let expected = [0.5, -2.0, 1.5, 1.0, 0.0, -1.0];
        for (got, want) in fit.weight.iter().zip(expected) {
            assert!((got - want).abs() < 1e-4, "{:?}", fit.weight);
        }
        assert!((fit.bias[0] - 0.25).abs() < 1e-4 && (fit.bias[1] + 3.0).abs() < 1e-4);
        assert!(moments.squared_error(&fit) < 1e-6);
        // the error from the sums equals the error computed row by row, for any mapping
        let other = Dense {
            weight: vec![0.1, 0.2, -0.3, 0.4, 0.5, 0.6],
            bias: vec![1.0, -1.0],
            inputs: 3,
        };
        let direct: f64 = other
            .forward(&x)
            .iter()
            .zip(&y)
            .map(|(p, t)| f64::from(p - t).powi(2))
            .sum();
        let from_sums = moments.squared_error(&other);
        assert!((direct - from_sums).abs() < 1e-6 * direct, "{direct} vs {from_sums}");
    }

    #[test]
    fn a_large_penalty_shrinks_the_weights_to_the_mean() {
        let (x, y) = data(100, 0.0, 2);
        let mut moments = Moments::new(3, 2);
        moments.add(&x, &y);
        let fit = moments.fit(1e9).unwrap();
        assert!(fit.weight.iter().all(|w| w.abs() < 1e-4));
        let mean0 = y.iter().step_by(2).sum::<f32>() / 100.0;
        assert!((fit.bias[0] - mean0).abs() < 1e-3);
    }

    #[test]
    fn validation_chooses_a_small_penalty_for_clean_data_and_no_rows_give_no_fit() {
        let (x, y) = data(300, 0.01, 3);
        let (vx, vy) = data(100, 0.01, 4);
        let (mut train, mut valid) = (Moments::new(3, 2), Moments::new(3, 2));
        train.add(&x, &y);
        valid.add(&vx, &vy);
        let (fit, penalty) = fit_choosing_penalty(&train, &valid).unwrap();
        assert!(penalty <= 1.0, "chose {penalty}");
        assert!((fit.weight[1] + 2.0).abs() < 0.01);
        assert!(fit_choosing_penalty(&Moments::new(3, 2), &valid).is_none());
        // collinear features without a penalty cannot be solved
        let mut collinear = Moments::new(2, 1);
        collinear.add(&[1.0, 2.0, 2.0, 4.0, 3.0, 6.0], &[1.0, 2.0, 3.0]);
        assert!(collinear.fit(0.0).is_none());
        assert!(collinear.fit(1e-3).is_some());
    }

    #[test]
    fn the_temperature_sharpens_scores_that_rank_well_and_flattens_ones_that_do_not() {
        // scores of 0.6 vs 0.4 that always pick the right class: a large factor (the loss
        // reaches 0 in double precision from about 180 on)
        let sure = [0.6f32, 0.4, 0.4, 0.6, 0.6, 0.4];
        let classes = [0.0f32, 1.0, 0.0];
        assert!(temperature(&sure, &classes, 2) >= 64.0);
        // right two times in three: the factor whose probability is about 2/3 — ln 2 / 0.2 ≈ 3.5
        let mixed = [0.6f32, 0.4, 0.4, 0.6, 0.6, 0.4];
        let factor = temperature(&mixed, &[0.0, 1.0, 1.0], 2);
        assert!((2.5..=4.8).contains(&factor), "{factor}");
        assert_eq!(temperature(&[], &[], 3), 1.0);
    }
}
