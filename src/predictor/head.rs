//! The output mapping: a linear map from the pooled vector to the task's outputs (class logits
//! or one standardised regression value).

/// `outputs = W · pooled + b`.
#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    /// `W`, `[outputs, d]` row-major.
    pub weight: Vec<f32>,
    /// `b`, one per output.
    pub bias: Vec<f32>,
    /// The pooled width d.
    pub dim: usize,
}

impl Head {
    /// A mapping of zeros (the training start: every class equally likely).
    pub fn zeros(outputs: usize, dim: usize) -> Self {
        Self {
            weight: vec![0.0; outputs * dim],
            bias: vec![0.0; outputs],
            dim,
        }
    }

    /// Outputs per row.
    pub fn outputs(&self) -> usize {
        self.bias.len()
    }

    /// `rows × outputs` values for `rows × d` pooled vectors.
    pub fn forward(&self, pooled: &[f32]) -> Vec<f32> {
        let mut out = Vec::with_capacity(pooled.len() / self.dim * self.outputs());
        for x in pooled.chunks_exact(self.dim) {
            for (w, b) in self.weight.chunks_exact(self.dim).zip(&self.bias) {
                out.push(b + w.iter().zip(x).map(|(w, x)| w * x).sum::<f32>());
            }
        }
        out
    }
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
