//! Gradients of the packed encoder's mean-pooled output with respect to the rows of its input
//! table. R2DL trains only what sits in front of the frozen encoder (`V_T = Θ · V_S`) and the
//! output mapping behind it, so training needs `∂loss/∂(input rows)` and nothing else: the
//! backward pass here computes input gradients only (no weight gradients), about the cost of one
//! more forward pass. [`PackedEncoder::record`] runs the forward pass and keeps what the backward
//! pass needs ([`Tape`]).

use rayon::prelude::*;

use super::bert::add_relative_bias;
use super::kernels::{erf, exp, exp_rows};
use super::packed::{LayerRecord, PackedDense, PackedEncoder, PackedNorm, ROWS_PER_TASK, Recording, View, matmul};
use crate::model::pooling;
use crate::model::readout::{Readout, add_block};

/// A recorded forward pass of the packed encoder: the pooled vectors, and what
/// [`Tape::backward`] needs to turn `∂loss/∂pooled` into `∂loss/∂table`.
pub struct Tape<'e> {
    encoder: &'e PackedEncoder,
    ids: Vec<u32>,
    lengths: Vec<usize>,
    embedding_sum: Vec<f32>,
    layers: Vec<LayerRecord>,
    /// The layers whose states make the features.
    readout: Readout,
    pooled: Vec<f32>,
    /// Every token's features (the readout's states concatenated), `[tokens, width]`.
    features: Vec<f32>,
}

impl PackedEncoder {
    /// Runs the encoder on `inputs` (rows of `table`, `[rows, d]`) like
    /// [`PackedEncoder::encode_pooled`], keeping what the gradient needs.
    pub fn record(&self, table: &[f32], inputs: &[Vec<u32>], readout: &Readout) -> Tape<'_> {
        let mut recording = Recording::default();
        let width = readout.count() * self.hidden;
        let (features, pooled) = self.forward(table, inputs, readout, Some(&mut recording), |x, lengths| {
            (x.to_vec(), pooling::pool(x, lengths, width, readout.segments()))
        });
        Tape {
            encoder: self,
            ids: inputs.concat(),
            lengths: inputs.iter().map(Vec::len).collect(),
            embedding_sum: recording.embedding_sum,
            layers: recording.layers,
            readout: readout.clone(),
            pooled,
            features,
        }
    }

    /// The input gradients of attention: from `∂loss/∂context` (`[tokens, d]`) to
    /// `∂loss/∂qkv` (`[tokens, 3d]`), one sequence per task, the softmax recomputed.
    fn attention_backward(&self, qkv: &[f32], d_context: &[f32], d_qkv: &mut [f32], lengths: &[usize]) {
        let d = self.hidden;
        let head_dim = d / self.heads;
        let scale = 1.0 / (head_dim as f32).sqrt();
        let mut jobs = Vec::with_capacity(lengths.len());
        let (mut qkv_rest, mut d_context_rest, mut d_qkv_rest) = (qkv, d_context, d_qkv);
        for &n in lengths {
            let (qkv_mine, qkv_after) = qkv_rest.split_at(n * 3 * d);
            let (d_context_mine, d_context_after) = d_context_rest.split_at(n * d);
            let (d_qkv_mine, d_qkv_after) = d_qkv_rest.split_at_mut(n * 3 * d);
            jobs.push((n, qkv_mine, d_context_mine, d_qkv_mine));
            (qkv_rest, d_context_rest, d_qkv_rest) = (qkv_after, d_context_after, d_qkv_after);
        }
        jobs.into_par_iter().for_each(|(n, qkv, d_context, d_qkv)| {
            let mut p = vec![0f32; n * n];
            let mut d_scores = vec![0f32; n * n];
            let mut inverse_sums = Vec::with_capacity(n);
            let by_distance = self.relative_bias(n);
            for h in 0..self.heads {
                let (q_at, k_at, v_at) = (h * head_dim, d + h * head_dim, 2 * d + h * head_dim);
                let q = View::new(&qkv[q_at..], n, head_dim, 3 * d, 1);
                let k = View::new(&qkv[k_at..], n, head_dim, 3 * d, 1);
                let k_t = View::new(&qkv[k_at..], head_dim, n, 1, 3 * d);
                let v_t = View::new(&qkv[v_at..], head_dim, n, 1, 3 * d);
                let d_out = View::new(&d_context[q_at..], n, head_dim, d, 1);
                // P = softmax(scale · Q Kᵀ + the relative position bias)
                matmul(&mut p, n, false, q, k_t, scale, 1);
                if let Some(by_distance) = &by_distance {
                    add_relative_bias(&mut p, n, by_distance, h);
                }
                inverse_sums.clear();
                exp_rows(&mut p, n, &mut inverse_sums);
                for (row, inv) in p.chunks_exact_mut(n).zip(&inverse_sums) {
                    row.iter_mut().for_each(|v| *v *= inv);
                }
                // ∂V = Pᵀ ∂out, ∂P = ∂out Vᵀ
                let p_t = View::new(&p, n, n, 1, n);
                matmul(&mut d_qkv[v_at..], 3 * d, false, p_t, d_out, 1.0, 1);
                matmul(&mut d_scores, n, false, d_out, v_t, 1.0, 1);
                // ∂S = P ⊙ (∂P − rowsum(∂P ⊙ P))
                for (d_row, p_row) in d_scores.chunks_exact_mut(n).zip(p.chunks_exact(n)) {
                    let dot: f32 = d_row.iter().zip(p_row).map(|(a, b)| a * b).sum();
                    d_row.iter_mut().zip(p_row).for_each(|(g, p)| *g = p * (*g - dot));
                }
                // ∂Q = scale · ∂S K, ∂K = scale · ∂Sᵀ Q
                let d_s = View::new(&d_scores, n, n, n, 1);
                let d_s_t = View::new(&d_scores, n, n, 1, n);
                matmul(&mut d_qkv[q_at..], 3 * d, false, d_s, k, scale, 1);
                matmul(&mut d_qkv[k_at..], 3 * d, false, d_s_t, q, scale, 1);
            }
        });
    }
}

impl Tape<'_> {
    /// The pooled features, `inputs × segments · width`.
    pub fn pooled(&self) -> &[f32] {
        &self.pooled
    }

    /// The features of every token, `[tokens, width]`, the inputs end to end.
    pub fn features(&self) -> &[f32] {
        &self.features
    }

    /// Features per token: the readout's layers × d.
    pub fn width(&self) -> usize {
        self.readout.count() * self.encoder.hidden
    }

    /// The inputs' lengths in tokens.
    pub fn lengths(&self) -> &[usize] {
        &self.lengths
    }

    /// `∂loss/∂table` (`[table_rows, d]`) from `∂loss/∂pooled` (`inputs × segments · width`).
    pub fn backward(&self, d_pooled: &[f32], table_rows: usize) -> Vec<f32> {
        let (width, segments) = (self.width(), self.readout.segments());
        assert_eq!(
            d_pooled.len(),
            self.lengths.len() * segments * width,
            "one gradient row per input"
        );
        // pooling spreads each input's gradient over its tokens by their weights in the means
        let d_features = pooling::spread(d_pooled, &self.lengths, width, segments);
        self.backward_features(d_features, table_rows)
    }

    /// `∂loss/∂table` (`[table_rows, d]`) from `∂loss/∂features`, the gradient of every token's
    /// features (`[tokens, width]`, as [`Tape::features`]): each read layer's block joins the
    /// backward pass where that layer's output is.
    pub fn backward_features(&self, d_features: Vec<f32>, table_rows: usize) -> Vec<f32> {
        let encoder = self.encoder;
        let d = encoder.hidden;
        let threads = rayon::current_num_threads();
        let tokens = self.ids.len();
        assert_eq!(d_features.len(), tokens * self.width(), "one gradient row per token");
        let taps = self.readout.taps(encoder.layers.len());
        let (mut dx, d_features) = if self.readout.is_last() {
            (d_features, None)
        } else {
            (vec![0f32; tokens * d], Some(d_features))
        };
        let join = |dx: &mut [f32], layer: usize| {
            if let Some(d_features) = &d_features {
                for (slot, _) in taps.iter().enumerate().filter(|&(_, &l)| l == layer) {
                    add_block(dx, d_features, slot, taps.len(), d);
                }
            }
        };
        let inner = encoder.layers.first().map_or(0, |l| l.intermediate.bias.len());
        let mut d_intermediate = vec![0f32; tokens * inner];
        let mut d_context = vec![0f32; tokens * d];
        let mut d_qkv = vec![0f32; tokens * 3 * d];
        for (index, (layer, record)) in encoder.layers.iter().zip(&self.layers).enumerate().rev() {
            join(&mut dx, index + 1);
            // x_out = LN(output_sum), output_sum = GELU(I) W_out + b + attended
            layer_norm_backward(&mut dx, &record.output_sum, &layer.output_norm);
            let dx_view = View::new(&dx, tokens, d, d, 1);
            matmul(
                &mut d_intermediate,
                inner,
                false,
                dx_view,
                transposed(&layer.output),
                1.0,
                threads,
            );
            gelu_backward(&mut d_intermediate, &record.intermediate, inner);
            // ∂attended = ∂output_sum (residual) + ∂I W_inᵀᵀ
            let d_intermediate_view = View::new(&d_intermediate, tokens, inner, inner, 1);
            matmul(
                &mut dx,
                d,
                true,
                d_intermediate_view,
                transposed(&layer.intermediate),
                1.0,
                threads,
            );
            // attended = LN(attention_sum), attention_sum = context W_o + b + x_in
            layer_norm_backward(&mut dx, &record.attention_sum, &layer.attention_norm);
            let dx_view = View::new(&dx, tokens, d, d, 1);
            matmul(
                &mut d_context,
                d,
                false,
                dx_view,
                transposed(&layer.attention_out),
                1.0,
                threads,
            );
            encoder.attention_backward(&record.qkv, &d_context, &mut d_qkv, &self.lengths);
            // ∂x_in = ∂attention_sum (residual) + ∂qkv W_qkvᵀᵀ
            let d_qkv_view = View::new(&d_qkv, tokens, 3 * d, 3 * d, 1);
            matmul(&mut dx, d, true, d_qkv_view, transposed(&layer.qkv), 1.0, threads);
        }
        join(&mut dx, 0);
        layer_norm_backward(&mut dx, &self.embedding_sum, &encoder.embedding_norm);
        let mut gradient = vec![0f32; table_rows * d];
        for (&id, g) in self.ids.iter().zip(dx.chunks_exact(d)) {
            let row = &mut gradient[id as usize * d..(id as usize + 1) * d];
            row.iter_mut().zip(g).for_each(|(r, g)| *r += g);
        }
        gradient
    }
}

/// `W` as a view of the stored `Wᵀ` (`[in, out]`): `[out, in]`, so that `∂x = ∂y · W`.
fn transposed(dense: &PackedDense) -> View<'_> {
    let outputs = dense.bias.len();
    let inputs = dense.weight_t.len() / outputs;
    View::new(&dense.weight_t, outputs, inputs, 1, outputs)
}

/// `∂z` from `∂y` in place, for `y = LayerNorm(z)` row by row.
fn layer_norm_backward(grad: &mut [f32], z: &[f32], norm: &PackedNorm) {
    let d = norm.weight.len();
    grad.par_chunks_mut(d * ROWS_PER_TASK)
        .zip(z.par_chunks(d * ROWS_PER_TASK))
        .for_each(|(grad, z)| {
            for (g, z) in grad.chunks_exact_mut(d).zip(z.chunks_exact(d)) {
                let mean = z.iter().sum::<f32>() / d as f32;
                let variance = z.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / d as f32;
                let inv_std = 1.0 / (variance + norm.eps).sqrt();
                let (mut sum, mut dot) = (0f32, 0f32);
                for ((g, z), w) in g.iter().zip(z).zip(&norm.weight) {
                    let d_norm = g * w;
                    sum += d_norm;
                    dot += d_norm * (z - mean) * inv_std;
                }
                let (mean_d, mean_dot) = (sum / d as f32, dot / d as f32);
                for ((g, z), w) in g.iter_mut().zip(z).zip(&norm.weight) {
                    let normed = (z - mean) * inv_std;
                    *g = inv_std * (*g * w - mean_d - normed * mean_dot);
                }
            }
        });
}

/// `∂v = ∂y · GELU'(v)` in place, for the exact (erf) GELU of the pre-activations `v`.
fn gelu_backward(grad: &mut [f32], pre: &[f32], width: usize) {
    const INV_SQRT_2PI: f32 = 0.398_942_3;
    grad.par_chunks_mut(width * ROWS_PER_TASK)
        .zip(pre.par_chunks(width * ROWS_PER_TASK))
        .for_each(|(grad, pre)| {
            for (g, &v) in grad.iter_mut().zip(pre) {
                let cdf = 0.5 * (1.0 + erf(v * std::f32::consts::FRAC_1_SQRT_2));
                let pdf = INV_SQRT_2PI * exp(-0.5 * v * v);
                *g *= cdf + v * pdf;
            }
        });
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use crate::model::testing::{write_tiny_bert, write_tiny_mpnet};
    use crate::model::{Readout, ReprogrammedModel};

    /// A deterministic pseudo-random value in [-1, 1).
    fn noise(i: usize, salt: u64) -> f32 {
        let mut z = (i as u64).wrapping_add(salt.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    /// Tiny random-weight models, BERT and MPNet (their folders are read at load and may go).
    fn tiny_models() -> [ReprogrammedModel; 2] {
        let load = |write: fn(&std::path::Path) -> crate::model::Result<()>| {
            let dir = tempfile::tempdir().unwrap();
            write(dir.path()).unwrap();
            ReprogrammedModel::load(dir.path(), &Device::Cpu).unwrap()
        };
        [
            load(|dir| write_tiny_bert(dir, "", 7)),
            load(|dir| write_tiny_mpnet(dir, 7)),
        ]
    }

    /// `table` with noise added: larger than the model's own rows, so that the LayerNorms see
    /// varied inputs.
    fn noisy(table: &[f32], salt: u64) -> Vec<f32> {
        table
            .iter()
            .enumerate()
            .map(|(i, v)| v + 0.5 * noise(i, salt))
            .collect()
    }

    /// Central differences of `loss` at columns 0, 1 and d − 1 of each of `rows` of `table`
    /// agree with `gradient`.
    fn assert_matches_finite_differences(
        table: &[f32],
        gradient: &[f32],
        d: usize,
        rows: [usize; 5],
        loss: impl Fn(&[f32]) -> f64,
    ) {
        let step = 1e-2f32;
        for row in rows {
            for col in [0usize, 1, d - 1] {
                let at = row * d + col;
                let (mut plus, mut minus) = (table.to_vec(), table.to_vec());
                plus[at] += step;
                minus[at] -= step;
                let numeric = (loss(&plus) - loss(&minus)) / (2.0 * f64::from(step));
                let analytic = f64::from(gradient[at]);
                assert!(
                    (numeric - analytic).abs() <= 5e-4 + 1e-2 * numeric.abs(),
                    "row {row} col {col}: analytic {analytic}, finite difference {numeric}"
                );
            }
        }
    }

    #[test]
    fn gradient_matches_finite_differences() {
        tiny_models().iter().for_each(gradient_matches_finite_differences_of);
    }

    fn gradient_matches_finite_differences_of(model: &ReprogrammedModel) {
        let (encoder, table) = model.packed().unwrap();
        let (d, rows) = (model.dim(), table.rows());
        let table = noisy(table.values(), 1);
        let inputs = vec![
            vec![26, 0, 3, 5, 3, 27],
            vec![26, 7, 27],
            vec![26, 1, 2, 3, 4, 5, 6, 7, 8, 27],
        ];
        // the whole input's mean, and the means of 4 stretches (more than the shortest has tokens)
        for readout in [Readout::last(), Readout::last().with_segments(4).unwrap()] {
            let width = readout.pooled_width(d);
            let weights: Vec<f32> = (0..inputs.len() * width).map(|i| noise(i, 2)).collect();
            let loss = |table: &[f32]| -> f64 {
                let pooled = encoder.encode_pooled(table, &inputs, &readout);
                pooled.iter().zip(&weights).map(|(p, w)| f64::from(p * w)).sum()
            };

            let tape = encoder.record(&table, &inputs, &readout);
            let direct = encoder.encode_pooled(&table, &inputs, &readout);
            assert_eq!(direct.len(), inputs.len() * width);
            for (a, b) in tape.pooled().iter().zip(&direct) {
                assert!((a - b).abs() < 1e-5, "recorded forward {a} vs {b}");
            }
            let gradient = tape.backward(&weights, rows);
            assert!(gradient.iter().all(|g| g.is_finite()));
            // rows no input uses get nothing; used rows get something
            assert!(gradient[28 * d..29 * d].iter().all(|&g| g == 0.0));
            assert!(gradient[3 * d..4 * d].iter().any(|&g| g.abs() > 1e-4));

            assert_matches_finite_differences(&table, &gradient, d, [0, 3, 7, 26, 27], loss);
        }
    }

    #[test]
    fn per_token_gradient_matches_finite_differences() {
        tiny_models()
            .iter()
            .for_each(per_token_gradient_matches_finite_differences_of);
    }

    fn per_token_gradient_matches_finite_differences_of(model: &ReprogrammedModel) {
        let layers = model.encoder().config().num_hidden_layers;
        let (encoder, table) = model.packed().unwrap();
        let (d, rows) = (model.dim(), table.rows());
        let table = noisy(table.values(), 3);
        let inputs = vec![vec![26, 4, 9, 1, 27], vec![26, 2, 2, 27]];
        let tokens: usize = inputs.iter().map(Vec::len).sum();
        // the last layer alone, and lower layers (the embeddings among them) out of order
        for readout in [Readout::last(), Readout::of_layers(&[1, 0, 2], layers).unwrap()] {
            let width = readout.count() * d;
            let weights: Vec<f32> = (0..tokens * width).map(|i| noise(i, 4)).collect();
            // a loss on every token's features, as a per-residue task has
            let loss = |table: &[f32]| -> f64 {
                encoder.encode_then(table, &inputs, &readout, |features: &[f32], lengths: &[usize]| {
                    assert_eq!(lengths, [5, 4]);
                    features.iter().zip(&weights).map(|(h, w)| f64::from(h * w)).sum()
                })
            };
            let tape = encoder.record(&table, &inputs, &readout);
            assert_eq!((tape.features().len(), tape.width()), (tokens * width, width));
            let gradient = tape.backward_features(weights.clone(), rows);
            assert_matches_finite_differences(&table, &gradient, d, [1, 2, 4, 26, 27], loss);
        }
    }

    #[test]
    fn readout_features_are_the_named_layers_states_on_both_engines() {
        tiny_models()
            .iter()
            .for_each(readout_features_are_the_named_layers_states_of);
    }

    fn readout_features_are_the_named_layers_states_of(model: &ReprogrammedModel) {
        let layers = model.encoder().config().num_hidden_layers;
        let inputs: [&[u8]; 2] = [&[0, 3, 5, 3], &[7]];
        let last = model.encode(&inputs).unwrap().to_vec2::<f32>().unwrap();
        let readout = Readout::of_layers(&[0, layers], layers).unwrap();
        let two = model
            .with_theta(&crate::model::Theta::one_hot(model.english_tokens()))
            .unwrap()
            .with_readout(readout);
        let candle = two.encode(&inputs).unwrap().to_vec2::<f32>().unwrap();
        let d = model.dim();
        let embeddings = two
            .embed_tokens(&[Some(inputs[0].to_vec()), Some(inputs[1].to_vec())])
            .unwrap();
        assert_eq!(embeddings.dim, 2 * d);
        for (i, (last, candle)) in last.iter().zip(&candle).enumerate() {
            // the second block is the last layer's pooled state; the first is not
            let packed = embeddings.row(i).unwrap();
            for (a, b) in candle[d..].iter().zip(last).chain(packed.iter().zip(candle)) {
                assert!((a - b).abs() < 1e-5, "{a} vs {b}");
            }
            assert!(candle[..d].iter().zip(last).any(|(a, b)| (a - b).abs() > 1e-3));
        }
    }
}
