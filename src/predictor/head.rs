//! The output mapping: from the pooled vector to the task's outputs (class logits or one
//! standardised regression value), either one linear layer or a hidden ReLU layer and a linear
//! layer.

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
        let mut out = Vec::with_capacity(x.len() / self.inputs * self.outputs());
        for row in x.chunks_exact(self.inputs) {
            for (w, b) in self.weight.chunks_exact(self.inputs).zip(&self.bias) {
                out.push(b + dot(w, row));
            }
        }
        out
    }

    /// Gradients of the weight and bias, and of the inputs `x`, given `∂loss/∂outputs`.
    fn backward(&self, x: &[f32], d_out: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let (n, outputs) = (self.inputs, self.outputs());
        let mut d_weight = vec![0f32; outputs * n];
        let mut d_bias = vec![0f32; outputs];
        let mut d_x = vec![0f32; x.len()];
        for ((x, g), dx) in x
            .chunks_exact(n)
            .zip(d_out.chunks_exact(outputs))
            .zip(d_x.chunks_exact_mut(n))
        {
            for (c, &gc) in g.iter().enumerate() {
                if gc == 0.0 {
                    continue;
                }
                d_bias[c] += gc;
                let w = &self.weight[c * n..(c + 1) * n];
                let dw = &mut d_weight[c * n..(c + 1) * n];
                for i in 0..n {
                    dw[i] += gc * x[i];
                    dx[i] += gc * w[i];
                }
            }
        }
        (d_weight, d_bias, d_x)
    }
}

/// The output mapping: an optional hidden ReLU layer, then a linear layer to the outputs.
#[derive(Debug, Clone, PartialEq)]
pub struct Head {
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
        match &self.hidden {
            Some(hidden) => self.output.forward(&relu(hidden.forward(pooled))),
            None => self.output.forward(pooled),
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

fn dot(a: &[f32], b: &[f32]) -> f32 {
    // eight partial sums let the compiler vectorise the loop
    let mut sums = [0f32; 8];
    let (a_chunks, b_chunks) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for i in 0..8 {
            sums[i] += x[i] * y[i];
        }
    }
    sums.iter().sum::<f32>() + tail
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
        for hidden in [0, 6] {
            let mut head = Head::with_hidden(outputs, dim, hidden, stream());
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
                        "hidden {hidden}, parameter {index}[{j}]: {analytic} vs {numeric}"
                    );
                }
            }
            for (j, &analytic) in grads.pooled.iter().enumerate() {
                let mut plus = pooled.clone();
                plus[j] += eps;
                let mut minus = pooled.clone();
                minus[j] -= eps;
                let numeric = (loss(&head, &plus, &c) - loss(&head, &minus, &c)) / (2.0 * f64::from(eps));
                assert!((numeric - f64::from(analytic)).abs() < 1e-3, "pooled[{j}]");
            }
            assert!(grads.pooled.iter().any(|g| g.abs() > 1e-3));
        }
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

    #[test]
    fn dot_products_of_every_length_match_the_plain_sum() {
        for n in 0..20 {
            let a: Vec<f32> = (0..n).map(|i| i as f32 * 0.5).collect();
            let b: Vec<f32> = (0..n).map(|i| 1.0 - i as f32).collect();
            let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - plain).abs() < 1e-3, "n = {n}");
        }
    }
}
