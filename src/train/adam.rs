//! Adam with decoupled weight decay (AdamW), on flat parameter vectors.

/// The optimiser state of one parameter vector.
#[derive(Debug, Clone)]
pub struct Adam {
    /// First-moment estimates.
    pub m: Vec<f32>,
    /// Second-moment estimates.
    pub v: Vec<f32>,
    /// Steps taken.
    pub t: u32,
}

impl Adam {
    const BETA1: f32 = 0.9;
    const BETA2: f32 = 0.999;
    const EPS: f32 = 1e-8;

    /// A fresh state for `len` parameters.
    pub fn new(len: usize) -> Self {
        Self {
            m: vec![0.0; len],
            v: vec![0.0; len],
            t: 0,
        }
    }

    /// One step: `params -= lr · (m̂ / (√v̂ + ε) + weight_decay · params)`.
    pub fn step(&mut self, params: &mut [f32], grads: &[f32], lr: f32, weight_decay: f32) {
        assert_eq!(params.len(), grads.len(), "one gradient per parameter");
        self.t += 1;
        let c1 = 1.0 - Self::BETA1.powi(self.t as i32);
        let c2 = 1.0 - Self::BETA2.powi(self.t as i32);
        for (((p, &g), m), v) in params.iter_mut().zip(grads).zip(&mut self.m).zip(&mut self.v) {
            *m = Self::BETA1 * *m + (1.0 - Self::BETA1) * g;
            *v = Self::BETA2 * *v + (1.0 - Self::BETA2) * g * g;
            *p -= lr * ((*m / c1) / ((*v / c2).sqrt() + Self::EPS) + weight_decay * *p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adam_minimises_a_quadratic() {
        let mut x = vec![3.0f32, -2.0];
        let mut adam = Adam::new(2);
        for _ in 0..2000 {
            let grads: Vec<f32> = x.iter().map(|v| 2.0 * (v - 1.0)).collect();
            adam.step(&mut x, &grads, 0.01, 0.0);
        }
        assert!(x.iter().all(|v| (v - 1.0).abs() < 1e-2), "{x:?}");
    }
}
