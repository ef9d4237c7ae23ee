//! The output mapping fitted in closed form (`r2dl train --ridge-head`): ridge regression of the
//! training targets on the frozen model's features, from sums over the rows, so that memory does
//! not grow with them. The penalty is the one whose fit has the least squared error either in
//! k-fold cross-validation over the training rows ([`FoldedMoments`]: the sums of each fold, so
//! every fold's error comes from sums too), or on the validation rows, summed as their features
//! stream by ([`ValidationErrors`]: for mappings too wide to hold k + 3 sets of sums).
//!
//! Why: a linear mapping trained by Adam from zero moves slowly when the features that matter
//! differ little between inputs (variants of one protein), and stops where the epoch budget
//! ends; the least-squares mapping is where that descent would end, reached in one pass.

use super::cholesky::{self, SmallPivot};
use crate::model::{View, matmul};
use crate::predictor::Dense;

/// The penalties tried, on the squared norm of the weights (not of the biases).
pub(super) const PENALTIES: [f64; 10] = [1e-3, 1e-2, 1e-1, 1.0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6];

/// The factor from a penalty to the half decades beside it, which cross-validation tries around
/// the best of [`PENALTIES`].
const HALF_DECADE: f64 = 3.162_277_660_168_379_5;

/// Rows of Σ x xᵀ added by one matrix product.
const BLOCK_ROWS: usize = 128;

/// Sums over rows of features `x` (`dim` each) and targets `y` (`outputs` each): everything a
/// least-squares fit needs.
#[derive(Debug, Clone)]
pub(super) struct Moments {
    dim: usize,
    outputs: usize,
    rows: usize,
    sum_x: Vec<f64>,
    sum_y: Vec<f64>,
    /// Σ y², one per output.
    yy: Vec<f64>,
    /// Σ x xᵀ, `dim × dim`: its lower triangle (and diagonal); the rest is undefined.
    xx: Vec<f64>,
    /// Σ x yᵀ, `dim × outputs`.
    xy: Vec<f64>,
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
            yy: vec![0.0; outputs],
            xx: vec![0.0; dim * dim],
            xy: vec![0.0; dim * outputs],
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
        // the lower triangle only (Σ x xᵀ is symmetric), a block of rows at a time: half the
        // work of one GEMM over the whole square
        for first in (0..dim).step_by(BLOCK_ROWS) {
            let last = (first + BLOCK_ROWS).min(dim);
            let xt = View::new(&x[first..], last - first, rows, 1, dim);
            let xv = View::new(&x, rows, last, dim, 1);
            matmul(
                &mut self.xx[first * dim..],
                dim,
                true,
                xt,
                xv,
                1.0,
                rayon::current_num_threads(),
            );
        }
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
                // `xx` holds the lower triangle
                let xx = self.xx[i.max(j) * dim + i.min(j)];
                a[i * dim + j] = xx - n * mean_x[i] * mean_x[j];
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

    /// `Σ ‖y − W x − b‖²` of `fit` over these rows, from the sums alone:
    /// `Σ y² − 2 wᵀ Σ x y − 2 b Σ y + wᵀ (Σ x xᵀ) w + 2 b wᵀ Σ x + n b²` per output.
    pub(super) fn squared_error(&self, fit: &Dense) -> f64 {
        let (dim, n) = (self.dim, self.rows as f64);
        let mut total = 0.0;
        for o in 0..self.outputs {
            let w: Vec<f64> = fit.weight[o * dim..(o + 1) * dim]
                .iter()
                .map(|&v| f64::from(v))
                .collect();
            let b = f64::from(fit.bias[o]);
            let mut quadratic = 0.0;
            for i in 0..dim {
                // the lower triangle: the diagonal once, each pair below it twice
                let row = &self.xx[i * dim..i * dim + i];
                let below: f64 = row.iter().zip(&w).map(|(x, wj)| x * wj).sum();
                quadratic += w[i] * (2.0 * below + self.xx[i * dim + i] * w[i]);
            }
            let xy: f64 = (0..dim).map(|i| w[i] * self.xy[i * self.outputs + o]).sum();
            let x: f64 = w.iter().zip(&self.sum_x).map(|(w, s)| w * s).sum();
            total += self.yy[o] - 2.0 * xy - 2.0 * b * self.sum_y[o] + quadratic + 2.0 * b * x + n * b * b;
        }
        total
    }

    /// These sums less those of `part`, a subset of the rows.
    fn without(&self, part: &Moments) -> Moments {
        let less = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(a, b)| a - b).collect();
        Moments {
            dim: self.dim,
            outputs: self.outputs,
            rows: self.rows - part.rows,
            sum_x: less(&self.sum_x, &part.sum_x),
            sum_y: less(&self.sum_y, &part.sum_y),
            yy: less(&self.yy, &part.yy),
            xx: less(&self.xx, &part.xx),
            xy: less(&self.xy, &part.xy),
        }
    }

    /// Adds another set of sums over different rows.
    fn absorb(&mut self, other: &Moments) {
        let add = |a: &mut [f64], b: &[f64]| a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
        add(&mut self.sum_x, &other.sum_x);
        add(&mut self.sum_y, &other.sum_y);
        add(&mut self.yy, &other.yy);
        add(&mut self.xx, &other.xx);
        add(&mut self.xy, &other.xy);
        self.rows += other.rows;
    }
}

/// What [`FoldedMoments::best`] chose.
#[derive(Debug)]
pub(super) struct CrossValidated {
    /// The fit of every row under `penalty`.
    pub fit: Dense,
    /// The penalty with the least cross-validated squared error.
    pub penalty: f64,
    /// Each fold's out-of-fold mapping under `penalty`: the fit of the other folds' rows, for
    /// predictions on rows the fit has not seen (`None` for a fold without rows).
    pub out_of_fold: Vec<Option<Dense>>,
}

/// The sums of each of k folds of the training rows, for choosing the penalty by k-fold
/// cross-validation: each fold's squared error under the fit of the other folds' rows, summed
/// over the folds, with no second pass over the rows. The penalties tried are [`PENALTIES`],
/// then the half decades on either side of the best; the mapping is the fit of every row under
/// the penalty with the least error. Memory: k + 3 sets of `dim²` sums (the folds, their total, one
/// complement, the system being solved).
pub(super) struct FoldedMoments {
    folds: Vec<Moments>,
}

impl FoldedMoments {
    /// `folds` empty folds (at least 2).
    pub(super) fn new(dim: usize, outputs: usize, folds: usize) -> Self {
        Self {
            folds: (0..folds.max(2)).map(|_| Moments::new(dim, outputs)).collect(),
        }
    }

    /// Adds rows `x` (`n × dim`) with targets `y` (`n × outputs`), row `i` to fold `fold[i]`.
    pub(super) fn add(&mut self, x: &[f32], y: &[f32], fold: &[usize]) {
        let (dim, outputs) = (self.folds[0].dim, self.folds[0].outputs);
        debug_assert_eq!(x.len(), fold.len() * dim, "a fold for every row");
        for (f, moments) in self.folds.iter_mut().enumerate() {
            let rows: Vec<usize> = (0..fold.len()).filter(|&i| fold[i] == f).collect();
            if rows.len() == fold.len() {
                moments.add(x, y);
            } else if !rows.is_empty() {
                let xs: Vec<f32> = rows.iter().flat_map(|&i| &x[i * dim..(i + 1) * dim]).copied().collect();
                let ys: Vec<f32> = rows
                    .iter()
                    .flat_map(|&i| &y[i * outputs..(i + 1) * outputs])
                    .copied()
                    .collect();
                moments.add(&xs, &ys);
            }
        }
    }

    /// The cross-validated squared error of `penalty`, summed over the folds, with each fold's
    /// out-of-fold fit (`None` for a fold without rows); `None` when a fold's complement has no
    /// fit.
    fn error(&self, total: &Moments, penalty: f64) -> Option<(f64, Vec<Option<Dense>>)> {
        let mut error = 0.0;
        let mut fits = Vec::with_capacity(self.folds.len());
        for fold in &self.folds {
            if fold.rows == 0 {
                fits.push(None);
                continue;
            }
            let fit = total.without(fold).fit(penalty)?;
            error += fold.squared_error(&fit);
            fits.push(Some(fit));
        }
        error.is_finite().then_some((error, fits))
    }

    /// The sums over every row.
    fn total(&self) -> Moments {
        let mut total = Moments::new(self.folds[0].dim, self.folds[0].outputs);
        self.folds.iter().for_each(|fold| total.absorb(fold));
        total
    }

    /// The fit of every row under the penalty with the least cross-validated error; `None`
    /// when no penalty gave a fit or fewer than two folds hold rows.
    pub(super) fn best(&self) -> Option<CrossValidated> {
        if self.folds.iter().filter(|fold| fold.rows > 0).count() < 2 {
            return None;
        }
        let total = self.total();
        // the least error so far, with its penalty and out-of-fold fits (the first of equals)
        type Least = Option<(f64, f64, Vec<Option<Dense>>)>;
        let mut best: Least = None;
        let try_penalty = |best: &mut Least, penalty: f64| {
            if let Some((error, fits)) = self.error(&total, penalty)
                && best.as_ref().is_none_or(|(least, ..)| error < *least)
            {
                *best = Some((error, penalty, fits));
            }
        };
        PENALTIES.iter().for_each(|&penalty| try_penalty(&mut best, penalty));
        let decade = best.as_ref()?.1;
        try_penalty(&mut best, decade / HALF_DECADE);
        try_penalty(&mut best, decade * HALF_DECADE);
        let (_, penalty, out_of_fold) = best?;
        Some(CrossValidated {
            fit: total.fit(penalty)?,
            penalty,
            out_of_fold,
        })
    }
}

/// The squared errors of the fits of `train` under each of [`PENALTIES`] on validation rows,
/// summed as the rows stream by; the fit with the least is the mapping. Computed from the fits'
/// outputs rather than from the validation rows' Σ x xᵀ, which costs d² per row: for a
/// per-residue mapping of 11,520 features (two layers, 7 neighbours on either side) over 270,000
/// validation residues, 7·10¹³ operations, most of the fit's time.
pub(super) struct ValidationErrors {
    penalties: Vec<f64>,
    /// Every fit's mapping, one after another: `fits × outputs` outputs.
    stacked: Dense,
    outputs: usize,
    errors: Vec<f64>,
}

impl ValidationErrors {
    /// The fits of `train` under each of [`PENALTIES`] that has one, no rows seen yet.
    pub(super) fn new(train: &Moments) -> Self {
        let (penalties, fits): (Vec<f64>, Vec<Dense>) = PENALTIES
            .iter()
            .filter_map(|&penalty| train.fit(penalty).map(|fit| (penalty, fit)))
            .unzip();
        let stacked = Dense {
            weight: fits.iter().flat_map(|fit| fit.weight.iter().copied()).collect(),
            bias: fits.iter().flat_map(|fit| fit.bias.iter().copied()).collect(),
            inputs: train.dim,
        };
        Self {
            errors: vec![0.0; penalties.len()],
            penalties,
            stacked,
            outputs: train.outputs,
        }
    }

    /// Adds the squared errors of every fit on the rows of `x` (`n × dim`) with targets `y`
    /// (`n × outputs`).
    pub(super) fn add(&mut self, x: &[f32], y: &[f32]) {
        if self.penalties.is_empty() {
            return;
        }
        let predicted = self.stacked.forward(x);
        for (row, targets) in predicted
            .chunks_exact(self.penalties.len() * self.outputs)
            .zip(y.chunks_exact(self.outputs))
        {
            for (error, fit) in self.errors.iter_mut().zip(row.chunks_exact(self.outputs)) {
                *error += fit
                    .iter()
                    .zip(targets)
                    .map(|(p, t)| f64::from(p - t).powi(2))
                    .sum::<f64>();
            }
        }
    }

    /// The fit with the least finite error, and its penalty; `None` when no penalty gave a fit
    /// (no training rows).
    pub(super) fn best(self) -> Option<(Dense, f64)> {
        let (index, _) = self
            .errors
            .iter()
            .enumerate()
            .filter(|(_, error)| error.is_finite())
            .min_by(|a, b| a.1.total_cmp(b.1))?;
        let (dim, outputs) = (self.stacked.inputs, self.outputs);
        let fit = Dense {
            weight: self.stacked.weight[index * outputs * dim..(index + 1) * outputs * dim].to_vec(),
            bias: self.stacked.bias[index * outputs..(index + 1) * outputs].to_vec(),
            inputs: dim,
        };
        Some((fit, self.penalties[index]))
    }
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

    /// The fit of `train` that `valid`'s rows choose, and its penalty.
    fn chosen(train: &Moments, valid: (&[f32], &[f32])) -> Option<(Dense, f64)> {
        let mut errors = ValidationErrors::new(train);
        // in two batches, as rows stream by
        let rows = valid.1.len() / train.outputs;
        let half = rows / 2;
        errors.add(&valid.0[..half * train.dim], &valid.1[..half * train.outputs]);
        errors.add(&valid.0[half * train.dim..], &valid.1[half * train.outputs..]);
        errors.best()
    }

    #[test]
    fn recovers_an_exact_linear_map_and_sums_each_fits_error_over_the_rows() {
        let (x, y) = data(200, 0.0, 1);
        let mut moments = Moments::new(3, 2);
        moments.add(&x, &y);
        let fit = moments.fit(1e-9).unwrap();
        let expected = [0.5, -2.0, 1.5, 1.0, 0.0, -1.0];
        for (got, want) in fit.weight.iter().zip(expected) {
            assert!((got - want).abs() < 1e-4, "{:?}", fit.weight);
        }
        assert!((fit.bias[0] - 0.25).abs() < 1e-4 && (fit.bias[1] + 3.0).abs() < 1e-4);
        // each penalty's error is that of its fit, row by row
        let mut errors = ValidationErrors::new(&moments);
        errors.add(&x[..300], &y[..200]);
        errors.add(&x[300..], &y[200..]);
        assert_eq!(errors.penalties, PENALTIES);
        for (&penalty, &error) in errors.penalties.iter().zip(&errors.errors) {
            let direct: f64 = moments
                .fit(penalty)
                .unwrap()
                .forward(&x)
                .iter()
                .zip(&y)
                .map(|(p, t)| f64::from(p - t).powi(2))
                .sum();
            assert!(
                (direct - error).abs() <= 1e-9 * direct.max(1.0),
                "{penalty}: {direct} vs {error}"
            );
        }
        // more penalty, more error on the rows it was fitted to
        assert!(
            errors.errors.windows(2).all(|pair| pair[0] <= pair[1] * (1.0 + 1e-6)),
            "{:?}",
            errors.errors
        );
    }

    #[test]
    fn the_sums_of_products_fill_the_lower_triangle_across_blocks_of_rows() {
        let dim = 2 * BLOCK_ROWS + 5;
        let mut rng = Rng::stream(5, Stream::HeadInit);
        let x: Vec<f32> = (0..7 * dim).map(|_| rng.unit() as f32 - 0.5).collect();
        let mut moments = Moments::new(dim, 1);
        moments.add(&x[..3 * dim], &[0.0; 3]);
        moments.add(&x[3 * dim..], &[0.0; 4]);
        for i in 0..dim {
            for j in 0..=i {
                let direct: f64 = x
                    .chunks_exact(dim)
                    .map(|row| f64::from(row[i]) * f64::from(row[j]))
                    .sum();
                let got = moments.xx[i * dim + j];
                assert!((got - direct).abs() < 1e-12, "({i}, {j}): {got} vs {direct}");
            }
        }
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
        let mut train = Moments::new(3, 2);
        train.add(&x, &y);
        let (fit, penalty) = chosen(&train, (&vx, &vy)).unwrap();
        assert!(penalty <= 1.0, "chose {penalty}");
        assert!((fit.weight[1] + 2.0).abs() < 0.01);
        assert_eq!(fit.weight, train.fit(penalty).unwrap().weight);
        // a validation set that rewards shrinking: targets unrelated to the training rows' map
        let unrelated: Vec<f32> = vy.iter().map(|_| 0.0).collect();
        assert!(chosen(&train, (&vx, &unrelated)).unwrap().1 >= 1e3);
        assert!(chosen(&Moments::new(3, 2), (&vx, &vy)).is_none());
        // collinear features without a penalty cannot be solved
        let mut collinear = Moments::new(2, 1);
        collinear.add(&[1.0, 2.0, 2.0, 4.0, 3.0, 6.0], &[1.0, 2.0, 3.0]);
        assert!(collinear.fit(0.0).is_none());
        assert!(collinear.fit(1e-3).is_some());
    }

    /// `rows` of `data`, row `i` in fold `i % folds`, as [`FoldedMoments`] and row by row.
    fn folded(x: &[f32], y: &[f32], folds: usize) -> FoldedMoments {
        let fold: Vec<usize> = (0..y.len() / 2).map(|i| i % folds).collect();
        let mut moments = FoldedMoments::new(3, 2, folds);
        let half = fold.len() / 2;
        // in two batches, as rows stream by
        moments.add(&x[..half * 3], &y[..half * 2], &fold[..half]);
        moments.add(&x[half * 3..], &y[half * 2..], &fold[half..]);
        moments
    }

    #[test]
    fn the_squared_error_from_the_sums_is_the_error_row_by_row() {
        let (x, y) = data(50, 0.3, 6);
        let mut moments = Moments::new(3, 2);
        moments.add(&x, &y);
        // any mapping, not only the fit of these rows
        let mapping = Dense {
            weight: vec![0.1, 0.7, -0.4, 2.0, -1.0, 0.5],
            bias: vec![0.3, -1.2],
            inputs: 3,
        };
        for fit in [mapping, moments.fit(1.0).unwrap()] {
            let direct: f64 = fit
                .forward(&x)
                .iter()
                .zip(&y)
                .map(|(p, t)| f64::from(p - t).powi(2))
                .sum();
            let from_sums = moments.squared_error(&fit);
            assert!(
                (direct - from_sums).abs() < 1e-6 * direct.max(1.0),
                "{direct} vs {from_sums}"
            );
        }
    }

    #[test]
    fn cross_validation_chooses_the_penalty_the_rows_support_and_fits_them_all() {
        // clean linear targets: a small penalty
        let (x, y) = data(300, 0.01, 7);
        let moments = folded(&x, &y, 5);
        let CrossValidated {
            fit,
            penalty,
            out_of_fold,
        } = moments.best().unwrap();
        assert!(penalty <= 1.0, "chose {penalty}");
        let mut all = Moments::new(3, 2);
        all.add(&x, &y);
        assert_eq!(fit, all.fit(penalty).unwrap());
        // no decade, and neither half decade beside the best, has a smaller error
        let total = moments.total();
        let error = |penalty: f64| moments.error(&total, penalty).unwrap().0;
        let chosen = error(penalty);
        let decade = PENALTIES
            .iter()
            .copied()
            .min_by(|a, b| error(*a).total_cmp(&error(*b)))
            .unwrap();
        for other in PENALTIES
            .into_iter()
            .chain([decade / HALF_DECADE, decade * HALF_DECADE])
        {
            assert!(chosen <= error(other), "{penalty} vs {other}");
        }
        // each fold's out-of-fold mapping is the fit of the other folds' rows alone, and the
        // cross-validated error is the fold rows' squared error under it, summed
        let mut direct = 0.0;
        for (f, fold_fit) in out_of_fold.into_iter().enumerate() {
            let mut others = Moments::new(3, 2);
            for i in (0..300).filter(|i| i % 5 != f) {
                others.add(&x[i * 3..i * 3 + 3], &y[i * 2..i * 2 + 2]);
            }
            let (got, want) = (fold_fit.unwrap(), others.fit(penalty).unwrap());
            for (g, w) in got
                .weight
                .iter()
                .chain(&got.bias)
                .zip(want.weight.iter().chain(&want.bias))
            {
                assert!((g - w).abs() < 1e-4, "fold {f}: {got:?} vs {want:?}");
            }
            for i in (0..300).filter(|i| i % 5 == f) {
                let predicted = got.forward(&x[i * 3..i * 3 + 3]);
                direct += predicted
                    .iter()
                    .zip(&y[i * 2..i * 2 + 2])
                    .map(|(p, t)| f64::from(p - t).powi(2))
                    .sum::<f64>();
            }
        }
        assert!((direct - chosen).abs() < 1e-4 * direct.max(1.0), "{direct} vs {chosen}");
        // targets that the features do not explain: the largest penalties (the mean)
        let mut rng = Rng::stream(8, Stream::HeadInit);
        let noise: Vec<f32> = y.iter().map(|_| rng.unit() as f32).collect();
        let CrossValidated { penalty, .. } = folded(&x, &noise, 5).best().unwrap();
        assert!(penalty >= 1e2, "chose {penalty}");
        // every row in one fold leaves nothing to validate on
        assert!(folded(&x, &y, 1).best().is_none());
        let mut one_fold = FoldedMoments::new(3, 2, 3);
        one_fold.add(&x, &y, &vec![2; 300]);
        assert!(one_fold.best().is_none());
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
