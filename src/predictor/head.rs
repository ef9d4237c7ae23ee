//! The output mapping: from the pooled vector to the task's outputs (class logits or one
//! standardised regression value), either one linear layer or a hidden ReLU layer and a linear
//! layer, optionally after a fixed standardisation of its inputs.

use crate::model::{View, matmul};

/// One fully connected layer, `outputs = W · inputs + b`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dense {
    /// `W`, `[outputs, inputs]` row-major.
    pub weight: Vec<f32>,
    /// `b`, one per output.
    pub bias: Vec<f32>,
    /// The input width.
    pub inputs: usize,
}

impl Dense {
    /// A layer of zeros.
    pub fn zeros(outputs: usize, inputs: usize) -> Self {
        Self {
            weight: vec![0.0; outputs * inputs],
            bias: vec![0.0; outputs],
            inputs,
        }
    }

    /// Outputs per row.
    pub fn outputs(&self) -> usize {
        self.bias.len()
    }

    /// `rows × outputs` values for `rows × inputs` values.
    pub fn forward(&self, x: &[f32]) -> Vec<f32> {
        let (rows, n, outputs) = (x.len() / self.inputs, self.inputs, self.outputs());
        let mut out = vec![0f32; rows * outputs];
        // x · Wᵀ, then + b
        let w_t = View::new(&self.weight, n, outputs, 1, n);
        matmul(&mut out, outputs, false, View::new(x, rows, n, n, 1), w_t, 1.0, 1);
        for row in out.chunks_exact_mut(outputs) {
            row.iter_mut().zip(&self.bias).for_each(|(v, b)| *v += b);
        }
        out
    }

    /// Gradients of the weight and bias, and of the inputs `x`, given `∂loss/∂outputs`.
    fn backward(&self, x: &[f32], d_out: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let (rows, n, outputs) = (x.len() / self.inputs, self.inputs, self.outputs());
        // ∂W = ∂outᵀ · x, ∂x = ∂out · W, ∂b = the column sums of ∂out
        let mut d_weight = vec![0f32; outputs * n];
        let d_out_t = View::new(d_out, outputs, rows, 1, outputs);
        matmul(&mut d_weight, n, false, d_out_t, View::new(x, rows, n, n, 1), 1.0, 1);
        let mut d_x = vec![0f32; x.len()];
        let d_out_rows = View::new(d_out, rows, outputs, outputs, 1);
        matmul(
            &mut d_x,
            n,
            false,
            d_out_rows,
            View::new(&self.weight, outputs, n, n, 1),
            1.0,
            1,
        );
        let mut d_bias = vec![0f32; outputs];
        for row in d_out.chunks_exact(outputs) {
            d_bias.iter_mut().zip(row).for_each(|(d, g)| *d += g);
        }
        (d_weight, d_bias, d_x)
    }
}

/// A fixed affine map of the output mapping's inputs, `(x − shift) · scale` per feature: the
/// training rows' mean and inverse standard deviation, measured once before training and not
/// trained. Features that differ little between inputs (a substitution moves the mean of 237
/// residues' states by a thousandth of their size) then reach the mapping at unit scale.
#[derive(Debug, Clone, PartialEq)]
pub struct InputScaling {
    /// Subtracted from each feature.
    pub shift: Vec<f32>,
    /// Multiplies each shifted feature.
    pub scale: Vec<f32>,
}

/// Running sums of each feature and its square over rows, for an [`InputScaling`].
#[derive(Debug, Clone, Default)]
pub struct FeatureMoments {
    sum: Vec<f64>,
    squares: Vec<f64>,
    rows: usize,
}

impl FeatureMoments {
    /// Adds `rows` (`n × dim`).
    pub fn add(&mut self, rows: &[f32], dim: usize) {
        if self.sum.len() != dim {
            (self.sum, self.squares, self.rows) = (vec![0.0; dim], vec![0.0; dim], 0);
        }
        for row in rows.chunks_exact(dim) {
            for ((s, q), &v) in self.sum.iter_mut().zip(&mut self.squares).zip(row) {
                *s += f64::from(v);
                *q += f64::from(v) * f64::from(v);
            }
            self.rows += 1;
        }
    }

    /// The mean and inverse standard deviation of each feature; a feature that does not vary
    /// keeps scale 1.
    pub fn scaling(&self) -> InputScaling {
        let n = self.rows.max(1) as f64;
        let shift: Vec<f64> = self.sum.iter().map(|s| s / n).collect();
        let scale = self
            .squares
            .iter()
            .zip(&shift)
            .map(|(q, m)| {
                let std = (q / n - m * m).max(0.0).sqrt();
                if std > 1e-9 { (1.0 / std) as f32 } else { 1.0 }
            })
            .collect();
        InputScaling {
            shift: shift.into_iter().map(|m| m as f32).collect(),
            scale,
        }
    }
}

impl InputScaling {
    /// The mean and inverse standard deviation of each of the `dim` features of `rows`
    /// (`n × dim`); see [`FeatureMoments::scaling`].
    pub fn measure(rows: &[f32], dim: usize) -> Self {
        let mut moments = FeatureMoments::default();
        moments.add(rows, dim);
        moments.scaling()
    }

    /// `(x − shift) · scale` for rows of `x`.
    pub fn apply(&self, x: &[f32]) -> Vec<f32> {
        let mut out = x.to_vec();
        for row in out.chunks_exact_mut(self.shift.len()) {
            for ((v, m), s) in row.iter_mut().zip(&self.shift).zip(&self.scale) {
                *v = (*v - m) * s;
            }
        }
        out
    }
}

/// The output mapping: an optional hidden ReLU layer, then a linear layer to the outputs.
#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    /// The fixed standardisation of the inputs, when the mapping has one.
    pub input: Option<InputScaling>,
    /// The hidden layer, `[hidden, d]`, when the mapping has one.
    pub hidden: Option<Dense>,
    /// The layer giving the outputs.
    pub output: Dense,
}

/// A gradient for each of a head's parameter vectors, in [`Head::parameters`] order, and the
/// gradient of the pooled inputs.
#[derive(Debug, Clone)]
pub struct HeadGradients {
    /// One per parameter vector.
    pub parameters: Vec<Vec<f32>>,
    /// `∂loss/∂pooled`.
    pub pooled: Vec<f32>,
}

impl Head {
    /// A linear mapping of zeros (the training start: every class equally likely).
    pub fn zeros(outputs: usize, dim: usize) -> Self {
        Self {
            input: None,
            hidden: None,
            output: Dense::zeros(outputs, dim),
        }
    }

    /// A mapping through `hidden` ReLU units whose weights come from `uniform` (values in
    /// [0, 1)), scaled as He's uniform initialisation; the output layer starts at zero, so every
    /// class starts equally likely. `hidden = 0` gives [`Head::zeros`].
    pub fn with_hidden(outputs: usize, dim: usize, hidden: usize, mut uniform: impl FnMut() -> f32) -> Self {
        if hidden == 0 {
            return Self::zeros(outputs, dim);
        }
        let bound = (6.0 / dim as f32).sqrt();
        let mut layer = Dense::zeros(hidden, dim);
        layer
            .weight
            .iter_mut()
            .for_each(|w| *w = (2.0 * uniform() - 1.0) * bound);
        Self {
            input: None,
            hidden: Some(layer),
            output: Dense::zeros(outputs, hidden),
        }
    }

    /// The pooled width d.
    pub fn dim(&self) -> usize {
        self.hidden.as_ref().unwrap_or(&self.output).inputs
    }

    /// Hidden units (0 for a linear mapping).
    pub fn hidden_units(&self) -> usize {
        self.hidden.as_ref().map_or(0, Dense::outputs)
    }

    /// Outputs per row.
    pub fn outputs(&self) -> usize {
        self.output.outputs()
    }

    /// `rows × outputs` values for `rows × d` pooled vectors.
    pub fn forward(&self, pooled: &[f32]) -> Vec<f32> {
        let scaled = self.input.as_ref().map(|input| input.apply(pooled));
        let x = scaled.as_deref().unwrap_or(pooled);
        match &self.hidden {
            Some(hidden) => self.output.forward(&relu(hidden.forward(x))),
            None => self.output.forward(x),
        }
    }

    /// The parameter vectors by name (the names of the predictor file), weights before biases,
    /// the hidden layer's before the output layer's; `true` marks a weight matrix (which gets
    /// weight decay).
    pub fn parameters(&self) -> Vec<(&'static str, &[f32], bool)> {
        let mut out = Vec::with_capacity(4);
        if let Some(hidden) = &self.hidden {
            out.push(("head.hidden.weight", hidden.weight.as_slice(), true));
            out.push(("head.hidden.bias", hidden.bias.as_slice(), false));
        }
        out.push(("head.weight", self.output.weight.as_slice(), true));
        out.push(("head.bias", self.output.bias.as_slice(), false));
        out
    }

    /// The parameter vectors, mutable, in [`Head::parameters`] order.
    pub fn parameters_mut(&mut self) -> Vec<&mut Vec<f32>> {
        let mut out = Vec::with_capacity(4);
        if let Some(hidden) = &mut self.hidden {
            out.push(&mut hidden.weight);
            out.push(&mut hidden.bias);
        }
        out.push(&mut self.output.weight);
        out.push(&mut self.output.bias);
        out
    }

    /// The gradients of every parameter and of the pooled inputs, given `∂loss/∂outputs`.
    pub fn backward(&self, pooled: &[f32], d_outputs: &[f32]) -> HeadGradients {
        let Some(input) = &self.input else {
            return self.backward_scaled(pooled, d_outputs);
        };
        let mut grads = self.backward_scaled(&input.apply(pooled), d_outputs);
        for row in grads.pooled.chunks_exact_mut(input.scale.len()) {
            row.iter_mut().zip(&input.scale).for_each(|(g, s)| *g *= s);
        }
        grads
    }

    /// [`Self::backward`] from the inputs after the standardisation.
    fn backward_scaled(&self, pooled: &[f32], d_outputs: &[f32]) -> HeadGradients {
        match &self.hidden {
            None => {
                let (d_weight, d_bias, d_pooled) = self.output.backward(pooled, d_outputs);
                HeadGradients {
                    parameters: vec![d_weight, d_bias],
                    pooled: d_pooled,
                }
            }
            Some(hidden) => {
                let activations = relu(hidden.forward(pooled));
                let (d_weight, d_bias, mut d_activations) = self.output.backward(&activations, d_outputs);
                for (g, a) in d_activations.iter_mut().zip(&activations) {
                    if *a <= 0.0 {
                        *g = 0.0;
                    }
                }
                let (d_hidden_weight, d_hidden_bias, d_pooled) = hidden.backward(pooled, &d_activations);
                HeadGradients {
                    parameters: vec![d_hidden_weight, d_hidden_bias, d_weight, d_bias],
                    pooled: d_pooled,
                }
            }
        }
    }
}

fn relu(mut values: Vec<f32>) -> Vec<f32> {
    values.iter_mut().for_each(|v| *v = v.max(0.0));
    values
}

/// Softmax of one row, in place.
pub fn softmax(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    row.iter_mut().for_each(|v| *v /= sum);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic stream of values in [0, 1).
    fn stream() -> impl FnMut() -> f32 {
        let mut state = 12345u32;
        move || {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 8) as f32 / (1u32 << 24) as f32
        }
    }

    /// The loss `Σ c · outputs` of a head on `pooled`.
    fn loss(head: &Head, pooled: &[f32], c: &[f32]) -> f64 {
        head.forward(pooled).iter().zip(c).map(|(o, c)| f64::from(o * c)).sum()
    }

    #[test]
    fn gradients_match_finite_differences_with_and_without_a_hidden_layer() {
        let (dim, outputs, rows) = (5, 3, 4);
        let mut values = stream();
        let pooled: Vec<f32> = (0..rows * dim).map(|_| values() * 2.0 - 1.0).collect();
        let c: Vec<f32> = (0..rows * outputs).map(|_| values() - 0.5).collect();
        for (hidden, scaled) in [(0, false), (6, false), (0, true), (6, true)] {
            let mut head = Head::with_hidden(outputs, dim, hidden, stream());
            if scaled {
                head.input = Some(InputScaling {
                    shift: (0..dim).map(|_| values() - 0.5).collect(),
                    scale: (0..dim).map(|_| 0.5 + 1.5 * values()).collect(),
                });
            }
            // non-zero output weights and biases, so every gradient is non-zero
            for p in head.parameters_mut() {
                p.iter_mut().for_each(|v| *v += values() - 0.5);
            }
            let grads = head.backward(&pooled, &c);
            assert_eq!(grads.parameters.len(), head.parameters().len());
            let eps = 1e-2f32;
            for (index, grad) in grads.parameters.iter().enumerate() {
                for (j, &analytic) in grad.iter().enumerate() {
                    let mut plus = head.clone();
                    plus.parameters_mut()[index][j] += eps;
                    let mut minus = head.clone();
                    minus.parameters_mut()[index][j] -= eps;
                    let numeric = (loss(&plus, &pooled, &c) - loss(&minus, &pooled, &c)) / (2.0 * f64::from(eps));
                    assert!(
                        (numeric - f64::from(analytic)).abs() < 1e-3,
                        "hidden {hidden}, scaled {scaled}, parameter {index}[{j}]: {analytic} vs {numeric}"
                    );
                }
            }
            for (j, &analytic) in grads.pooled.iter().enumerate() {
                let mut plus = pooled.clone();
                plus[j] += eps;
                let mut minus = pooled.clone();
                minus[j] -= eps;
                let numeric = (loss(&head, &plus, &c) - loss(&head, &minus, &c)) / (2.0 * f64::from(eps));
                assert!(
                    (numeric - f64::from(analytic)).abs() < 1e-3,
                    "hidden {hidden}, scaled {scaled}, pooled[{j}]"
                );
            }
            assert!(grads.pooled.iter().any(|g| g.abs() > 1e-3));
        }
    }

    #[test]
    fn input_scaling_brings_each_feature_to_mean_zero_and_unit_spread() {
        // feature 0: 1.000, 1.002, 0.998 (mean 1, tiny spread); feature 1 constant
        let rows = [1.0, 7.0, 1.002, 7.0, 0.998, 7.0];
        let scaling = InputScaling::measure(&rows, 2);
        assert!((scaling.shift[0] - 1.0).abs() < 1e-6 && scaling.shift[1] == 7.0);
        assert_eq!(scaling.scale[1], 1.0, "a constant feature keeps its scale");
        let scaled = scaling.apply(&rows);
        let feature: Vec<f32> = scaled.iter().step_by(2).copied().collect();
        let spread = (feature.iter().map(|v| v * v).sum::<f32>() / 3.0).sqrt();
        assert!(
            (spread - 1.0).abs() < 1e-3 && feature[1] > 1.0 && feature[2] < -1.0,
            "{feature:?}"
        );
        assert!(scaled.iter().skip(1).step_by(2).all(|v| *v == 0.0));
    }

    #[test]
    fn a_fresh_head_gives_equal_outputs_and_the_hidden_layer_is_random() {
        let head = Head::with_hidden(2, 8, 4, stream());
        assert_eq!((head.dim(), head.hidden_units(), head.outputs()), (8, 4, 2));
        assert_eq!(head.forward(&[0.5; 16]), vec![0.0; 4]);
        let hidden = head.hidden.as_ref().map(|h| h.weight.clone()).unwrap_or_default();
        let bound = (6.0f32 / 8.0).sqrt();
        assert!(hidden.iter().all(|w| w.abs() <= bound) && hidden.iter().any(|w| *w != hidden[0]));
        assert_eq!(Head::with_hidden(2, 8, 0, stream()), Head::zeros(2, 8));
    }
}
