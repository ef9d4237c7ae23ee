//! Sparse coding over the English word embeddings: the dictionary-learning half of R2DL. Given
//! dense protein-token embeddings `V_T` (what the optimiser moves), orthogonal matching pursuit
//! finds for each row the `k` English word embeddings (rows of the dictionary `V_S`) and weights
//! that best reconstruct it; those weights are the row of Θ, and `Θ · V_S` is the new `V_T`.

use super::cholesky::{self, SmallPivot};
use crate::model::{SparseRow, Theta, View, matmul};

/// The dictionary `V_S` (`[vocab, d]`, row-major) and its atom norms.
#[derive(Debug, Clone)]
pub struct Dictionary {
    atoms: Vec<f32>,
    norms: Vec<f32>,
    dim: usize,
}

impl Dictionary {
    /// A dictionary of `atoms.len() / dim` atoms of width `dim`.
    pub fn new(atoms: Vec<f32>, dim: usize) -> Self {
        let norms = atoms
            .chunks_exact(dim)
            .map(|a| a.iter().map(|v| v * v).sum::<f32>().sqrt())
            .collect();
        Self { atoms, norms, dim }
    }

    /// Number of atoms (the English vocabulary size).
    pub fn len(&self) -> usize {
        self.norms.len()
    }

    /// Whether the dictionary has no atoms.
    pub fn is_empty(&self) -> bool {
        self.norms.is_empty()
    }

    /// Atom `i`.
    fn atom(&self, i: usize) -> &[f32] {
        &self.atoms[i * self.dim..(i + 1) * self.dim]
    }

    /// `Θ · V_S`, `rows × d`, row-major.
    pub fn reconstruct(&self, theta: &Theta) -> Vec<f32> {
        let mut out = vec![0f32; theta.rows().len() * self.dim];
        for (row, out) in theta.rows().iter().zip(out.chunks_exact_mut(self.dim)) {
            for (&i, &w) in row.indices.iter().zip(&row.values) {
                out.iter_mut().zip(self.atom(i as usize)).for_each(|(o, a)| *o += w * a);
            }
        }
        out
    }

    /// Orthogonal matching pursuit: each `d`-wide row of `targets` as a combination of at most
    /// `k` atoms, chosen greedily by normalised correlation with the residual, the weights
    /// refitted by least squares after each choice. Rows are coded together, one GEMM per step.
    pub fn code(&self, targets: &[f32], k: usize) -> Vec<SparseRow> {
        let d = self.dim;
        let rows = targets.len() / d;
        let vocab = self.len();
        let threads = rayon::current_num_threads();
        let mut residual = targets.to_vec();
        let mut chosen: Vec<Vec<u32>> = vec![Vec::new(); rows];
        let mut weights: Vec<Vec<f32>> = vec![Vec::new(); rows];
        let mut correlations = vec![0f32; rows * vocab];
        let atoms_t = View::new(&self.atoms, d, vocab, 1, d);
        for _ in 0..k.min(vocab) {
            let residual_view = View::new(&residual, rows, d, d, 1);
            matmul(&mut correlations, vocab, false, residual_view, atoms_t, 1.0, threads);
            for r in 0..rows {
                let target = &targets[r * d..(r + 1) * d];
                let scores = &correlations[r * vocab..(r + 1) * vocab];
                let best = scores
                    .iter()
                    .zip(&self.norms)
                    .enumerate()
                    .filter(|&(i, (_, &norm))| norm > 1e-12 && !chosen[r].contains(&(i as u32)))
                    .map(|(i, (c, norm))| (i, c.abs() / norm))
                    .max_by(|a, b| a.1.total_cmp(&b.1));
                let Some((best, score)) = best else { continue };
                if score <= 1e-9 * (1.0 + target.iter().map(|v| v.abs()).sum::<f32>()) {
                    continue; // already exact
                }
                chosen[r].push(best as u32);
                weights[r] = self.least_squares(&chosen[r], target);
                let fitted = self.combine(&chosen[r], &weights[r]);
                let residual_row = &mut residual[r * d..(r + 1) * d];
                for ((res, t), f) in residual_row.iter_mut().zip(target).zip(&fitted) {
                    *res = t - f;
                }
            }
        }
        chosen
            .into_iter()
            .zip(weights)
            .map(|(indices, values)| SparseRow { indices, values })
            .collect()
    }

    /// `Σ wᵢ · atomᵢ`.
    fn combine(&self, atoms: &[u32], weights: &[f32]) -> Vec<f32> {
        let mut out = vec![0f32; self.dim];
        for (&i, &w) in atoms.iter().zip(weights) {
            out.iter_mut().zip(self.atom(i as usize)).for_each(|(o, a)| *o += w * a);
        }
        out
    }

    /// The weights minimising `‖target − Σ wᵢ · atomᵢ‖²`, by the normal equations (Cholesky, in
    /// f64, with a tiny ridge against nearly parallel atoms).
    fn least_squares(&self, atoms: &[u32], target: &[f32]) -> Vec<f32> {
        let n = atoms.len();
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum::<f64>();
        let mut gram = vec![0f64; n * n];
        let mut rhs = vec![0f64; n];
        for i in 0..n {
            let ai = self.atom(atoms[i] as usize);
            rhs[i] = dot(ai, target);
            for j in 0..=i {
                let g = dot(ai, self.atom(atoms[j] as usize));
                gram[i * n + j] = g;
                gram[j * n + i] = g;
            }
        }
        let trace: f64 = (0..n).map(|i| gram[i * n + i]).sum();
        for i in 0..n {
            gram[i * n + i] += 1e-10 * trace.max(1e-30);
        }
        // clamped pivots always give a solution
        let solved = cholesky::solve(&mut gram, n, &mut rhs, 1, SmallPivot::Clamp(1e-300));
        debug_assert!(solved.is_some());
        rhs.into_iter().map(|w| w as f32).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dictionary() -> Dictionary {
        // 6 atoms in 4 dimensions, not orthogonal
        let atoms = vec![
            1.0, 0.0, 0.0, 0.0, //
            0.0, 2.0, 0.0, 0.0, //
            0.0, 0.0, 1.0, 1.0, //
            0.5, 0.5, 0.0, 0.0, //
            0.0, 0.0, 0.0, 3.0, //
            0.0, 0.0, 0.0, 0.0, // a zero atom is never chosen
        ];
        Dictionary::new(atoms, 4)
    }

    #[test]
    fn omp_recovers_a_sparse_combination_exactly() {
        let dict = dictionary();
        // target = 2·atom2 − 0.5·atom4
        let target = vec![0.0, 0.0, 2.0, 0.5];
        let rows = dict.code(&target, 2);
        let mut pairs: Vec<(u32, f32)> = rows[0]
            .indices
            .iter()
            .copied()
            .zip(rows[0].values.iter().copied())
            .collect();
        pairs.sort_by_key(|p| p.0);
        assert_eq!(pairs.len(), 2);
        assert_eq!((pairs[0].0, pairs[1].0), (2, 4));
        assert!(
            (pairs[0].1 - 2.0).abs() < 1e-5 && (pairs[1].1 + 0.5).abs() < 1e-5,
            "{pairs:?}"
        );
    }

    #[test]
    fn omp_stops_early_when_exact_and_never_exceeds_k() {
        let dict = dictionary();
        let targets = vec![
            3.0, 0.0, 0.0, 0.0, // one atom is exact
            1.0, 1.0, 1.0, 1.0, // needs several
        ];
        let rows = dict.code(&targets, 3);
        assert_eq!(rows[0].indices, vec![0]);
        assert!((rows[0].values[0] - 3.0).abs() < 1e-6);
        assert!(rows[1].indices.len() <= 3 && rows[1].indices.len() >= 2);
        assert!(!rows[1].indices.contains(&5));
        // more atoms never fit worse
        let err = |k: usize| {
            let row = &dict.code(&targets[4..], k)[0];
            let fit = dict.combine(&row.indices, &row.values);
            fit.iter().zip(&targets[4..]).map(|(a, b)| (a - b).powi(2)).sum::<f32>()
        };
        assert!(err(1) >= err(2) && err(2) >= err(3) - 1e-6);
    }
}
