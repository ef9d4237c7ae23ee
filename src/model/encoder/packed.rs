//! The encoder for CPU inference: sequences packed end to end into one `[tokens, d]` matrix (no
//! padding), the projections as large GEMMs (gemm's AVX-512 kernels, on r2dl's compute pool),
//! attention per sequence, and the element-wise steps fused into single passes
//! ([`super::kernels`]). Same numbers as [`BertEncoder`] (tested), several times faster.

use gemm::Parallelism;
use rayon::prelude::*;

use super::bert::{BertEncoder, Dense, Norm, RelativeBias, add_relative_bias};
use super::kernels::{add_bias, add_layer_norm, bias_gelu, exp_rows};
use crate::model::error::Result;
use crate::model::pooling;
use crate::model::readout::{Readout, put_block};

/// A row-major matrix view with explicit strides into a slice (of `f32`, or `f64` for
/// training's sums).
#[derive(Clone, Copy)]
pub(crate) struct View<'a, T = f32> {
    data: &'a [T],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a, T> View<'a, T> {
    pub(crate) fn new(data: &'a [T], rows: usize, cols: usize, row_stride: usize, col_stride: usize) -> Self {
        let last = if rows == 0 || cols == 0 {
            0
        } else {
            (rows - 1) * row_stride + (cols - 1) * col_stride + 1
        };
        assert!(last <= data.len(), "matrix view out of bounds: {last} > {}", data.len());
        Self {
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        }
    }
}

/// `dst (rows × cols, row stride dst_stride) = [dst +] scale · lhs · rhs`.
pub(crate) fn matmul<T: Copy + From<f32> + 'static>(
    dst: &mut [T],
    dst_stride: usize,
    accumulate: bool,
    lhs: View<'_, T>,
    rhs: View<'_, T>,
    scale: T,
    threads: usize,
) {
    let (m, n, k) = (lhs.rows, rhs.cols, lhs.cols);
    assert_eq!(rhs.rows, k, "inner dimensions");
    if m == 0 || n == 0 {
        return;
    }
    assert!((m - 1) * dst_stride + n <= dst.len(), "destination out of bounds");
    let parallelism = if threads > 1 {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    // SAFETY: every view was bounds-checked for its strides above and in `View::new`, and `dst`
    // is borrowed mutably, so it overlaps neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_stride as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            T::from(1.0),
            scale,
            false,
            false,
            false,
            parallelism,
        );
    }
}

pub(super) struct PackedDense {
    /// `Wᵀ`, `[in, out]` row-major.
    pub(super) weight_t: Vec<f32>,
    pub(super) bias: Vec<f32>,
}

impl PackedDense {
    fn from(dense: &Dense) -> Result<Self> {
        Ok(Self {
            weight_t: dense.weight_t.flatten_all()?.to_vec1()?,
            bias: dense.bias.to_vec1()?,
        })
    }

    /// `out = x · Wᵀ` for `rows` rows of `x`, **without** the bias: the element-wise pass that
    /// follows adds it (one pass over `out` fewer).
    pub(super) fn forward_unbiased<'o>(
        &self,
        x: &[f32],
        rows: usize,
        out: &'o mut Vec<f32>,
        threads: usize,
    ) -> &'o mut [f32] {
        let (inputs, outputs) = (self.weight_t.len() / self.bias.len(), self.bias.len());
        let out = grow(out, rows * outputs);
        let lhs = View::new(x, rows, inputs, inputs, 1);
        let rhs = View::new(&self.weight_t, inputs, outputs, outputs, 1);
        matmul(out, outputs, false, lhs, rhs, 1.0, threads);
        out
    }
}

pub(super) struct PackedNorm {
    pub(super) weight: Vec<f32>,
    pub(super) bias: Vec<f32>,
    pub(super) eps: f32,
}

impl PackedNorm {
    fn from(norm: &Norm) -> Result<Self> {
        Ok(Self {
            weight: norm.weight.to_vec1()?,
            bias: norm.bias.to_vec1()?,
            eps: norm.eps,
        })
    }

    /// `rows = LayerNorm(rows + row_bias + residual)`, rows in parallel; `row_bias` and
    /// `residual` may be empty.
    pub(super) fn apply(&self, rows: &mut [f32], row_bias: &[f32], residual: &[f32]) {
        let chunk = self.weight.len() * 64;
        let norm = |r: &mut [f32], res: &[f32]| add_layer_norm(r, row_bias, res, &self.weight, &self.bias, self.eps);
        if residual.is_empty() {
            rows.par_chunks_mut(chunk).for_each(|r| norm(r, &[]));
        } else {
            rows.par_chunks_mut(chunk)
                .zip(residual.par_chunks(chunk))
                .for_each(|(r, res)| norm(r, res));
        }
    }
}

pub(super) struct PackedLayer {
    pub(super) qkv: PackedDense,
    pub(super) attention_out: PackedDense,
    pub(super) attention_norm: PackedNorm,
    pub(super) intermediate: PackedDense,
    pub(super) output: PackedDense,
    pub(super) output_norm: PackedNorm,
}

/// The frozen encoder's weights as plain `f32` buffers for the packed CPU path.
pub struct PackedEncoder {
    pub(super) hidden: usize,
    pub(super) heads: usize,
    pub(super) positions: Vec<f32>,
    pub(super) token_type_row: Vec<f32>,
    pub(super) embedding_norm: PackedNorm,
    pub(super) layers: Vec<PackedLayer>,
    /// MPNet's relative position bias; `None` for BERT.
    pub(super) relative: Option<RelativeBias>,
    /// Idle work buffers, one set per concurrent call.
    buffers: std::sync::Mutex<Vec<Buffers>>,
}

impl std::fmt::Debug for PackedEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedEncoder")
            .field("hidden", &self.hidden)
            .field("layers", &self.layers.len())
            .finish()
    }
}

/// Work buffers, reused across layers and calls (they only grow).
#[derive(Default)]
struct Buffers {
    hidden: Vec<f32>,
    qkv: Vec<f32>,
    context: Vec<f32>,
    attended: Vec<f32>,
    intermediate: Vec<f32>,
}

/// The first `len` values of `buffer`, grown (with zeros) if it is shorter.
pub(super) fn grow(buffer: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
    &mut buffer[..len]
}

/// Rows per parallel task in the element-wise passes.
pub(super) const ROWS_PER_TASK: usize = 64;

/// What one layer's backward pass needs from its forward pass.
#[derive(Default)]
pub(super) struct LayerRecord {
    /// Q, K, V with their biases, `[tokens, 3d]`.
    pub(super) qkv: Vec<f32>,
    /// The attention LayerNorm's input (attention output + bias + residual), `[tokens, d]`.
    pub(super) attention_sum: Vec<f32>,
    /// The feed-forward pre-activation, bias included, `[tokens, inner]`.
    pub(super) intermediate: Vec<f32>,
    /// The output LayerNorm's input, `[tokens, d]`.
    pub(super) output_sum: Vec<f32>,
}

/// What a recorded forward pass keeps: the embedding LayerNorm's input and each layer's record.
#[derive(Default)]
pub(super) struct Recording {
    /// The input embeddings before their LayerNorm, `[tokens, d]`.
    pub(super) embedding_sum: Vec<f32>,
    /// One record per layer, in order.
    pub(super) layers: Vec<LayerRecord>,
}

impl Recording {
    /// A new, empty record for the next layer.
    fn next_layer(&mut self) -> &mut LayerRecord {
        self.layers.push(LayerRecord::default());
        let last = self.layers.len() - 1;
        &mut self.layers[last]
    }
}

/// `rows = LayerNorm(rows + bias + residual)`; with `keep`, the sum before the norm is copied
/// there (for the backward pass) and the norm applied on its own.
fn add_norm(norm: &PackedNorm, rows: &mut [f32], bias: &[f32], residual: &[f32], keep: Option<&mut Vec<f32>>) {
    match keep {
        None => norm.apply(rows, bias, residual),
        Some(sum) => {
            add_bias_residual(rows, bias, residual);
            sum.clear();
            sum.extend_from_slice(rows);
            norm.apply(rows, &[], &[]);
        }
    }
}

/// `rows = GELU(rows + bias)` row by row; with `keep`, the pre-activations (bias included) are
/// copied there.
fn bias_gelu_rows(rows: &mut [f32], bias: &[f32], keep: Option<&mut Vec<f32>>) {
    let chunk = bias.len() * ROWS_PER_TASK;
    match keep {
        None => rows.par_chunks_mut(chunk).for_each(|r| bias_gelu(r, bias)),
        Some(pre) => {
            add_bias_rows(rows, bias);
            pre.clear();
            pre.extend_from_slice(rows);
            let zeros = vec![0f32; bias.len()];
            rows.par_chunks_mut(chunk).for_each(|r| bias_gelu(r, &zeros));
        }
    }
}

/// `rows += bias` for each `bias.len()`-wide row, in parallel.
fn add_bias_rows(rows: &mut [f32], bias: &[f32]) {
    rows.par_chunks_mut(bias.len() * ROWS_PER_TASK)
        .for_each(|chunk| add_bias(chunk, bias));
}

/// `rows += bias + residual` (same shape as `rows`), in parallel.
fn add_bias_residual(rows: &mut [f32], bias: &[f32], residual: &[f32]) {
    let chunk = bias.len() * ROWS_PER_TASK;
    rows.par_chunks_mut(chunk)
        .zip(residual.par_chunks(chunk))
        .for_each(|(rows, residual)| {
            rows.iter_mut().zip(residual).for_each(|(x, r)| *x += r);
            add_bias(rows, bias);
        });
}

impl PackedEncoder {
    /// Copies the weights of `encoder` (which must live on the CPU).
    pub fn from_encoder(encoder: &BertEncoder) -> Result<Self> {
        let layers = encoder
            .layers
            .iter()
            .map(|l| {
                Ok(PackedLayer {
                    qkv: PackedDense::from(&l.qkv)?,
                    attention_out: PackedDense::from(&l.attention_out)?,
                    attention_norm: PackedNorm::from(&l.attention_norm)?,
                    intermediate: PackedDense::from(&l.intermediate)?,
                    output: PackedDense::from(&l.output)?,
                    output_norm: PackedNorm::from(&l.output_norm)?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            hidden: encoder.config.hidden_size,
            heads: encoder.config.num_attention_heads,
            positions: encoder.position_embeddings.flatten_all()?.to_vec1()?,
            token_type_row: encoder.token_type_row.to_vec1()?,
            embedding_norm: PackedNorm::from(&encoder.embedding_norm)?,
            layers,
            relative: encoder.relative.clone(),
            buffers: Default::default(),
        })
    }

    /// Mean-pooled features (`inputs × readout.count() · d`, row-major) of inputs given as rows
    /// of `table` (`[rows, d]`); every input must fit the model's positions.
    pub fn encode_pooled(&self, table: &[f32], inputs: &[Vec<u32>], readout: &Readout) -> Vec<f32> {
        let width = readout.count() * self.hidden;
        self.encode_then(table, inputs, readout, |x, lengths| {
            pooling::pool(x, lengths, width, readout.segments())
        })
    }

    /// Runs the encoder on `inputs` (rows of `table`, `[rows, d]`; each must fit the model's
    /// positions) and gives `read` the features of every token (the hidden states `readout`
    /// names, concatenated: `[tokens, readout.count() · d]`, the inputs end to end) and the
    /// inputs' lengths.
    pub fn encode_then<R>(
        &self,
        table: &[f32],
        inputs: &[Vec<u32>],
        readout: &Readout,
        read: impl FnOnce(&[f32], &[usize]) -> R,
    ) -> R {
        self.forward(table, inputs, readout, None, read)
    }

    /// The forward pass of inference and of the recorded pass alike: with `recording`, the
    /// embedding sum and each layer's [`LayerRecord`] are kept for the backward pass.
    pub(super) fn forward<R>(
        &self,
        table: &[f32],
        inputs: &[Vec<u32>],
        readout: &Readout,
        mut recording: Option<&mut Recording>,
        read: impl FnOnce(&[f32], &[usize]) -> R,
    ) -> R {
        let threads = rayon::current_num_threads();
        let d = self.hidden;
        let lengths: Vec<usize> = inputs.iter().map(Vec::len).collect();
        let taps = readout.taps(self.layers.len());
        let mut buffers = self.take_buffers();
        let mut x = std::mem::take(&mut buffers.hidden);
        self.input_embeddings(table, inputs, &mut x);
        if let Some(recording) = recording.as_deref_mut() {
            recording.embedding_sum = x.clone();
        }
        // the last layer alone is read from `x` itself; other readouts copy their layers out
        let mut features = (!readout.is_last()).then(|| vec![0f32; x.len() * taps.len()]);
        let mut tap = |layer: usize, x: &[f32]| {
            if let Some(features) = features.as_mut() {
                for (slot, _) in taps.iter().enumerate().filter(|&(_, &l)| l == layer) {
                    put_block(features, x, slot, taps.len(), d);
                }
            }
        };
        self.embedding_norm.apply(&mut x, &[], &[]);
        tap(0, &x);
        for (index, layer) in self.layers.iter().enumerate() {
            let keep = recording.as_deref_mut().map(Recording::next_layer);
            self.layer(layer, &mut x, &lengths, &mut buffers, threads, keep);
            tap(index + 1, &x);
        }
        let result = read(features.as_deref().unwrap_or(&x), &lengths);
        buffers.hidden = x;
        self.return_buffers(buffers);
        result
    }

    /// `x` = the packed input embeddings (table row + position + token type) of `inputs`, before
    /// the embedding LayerNorm.
    pub(super) fn input_embeddings(&self, table: &[f32], inputs: &[Vec<u32>], x: &mut Vec<f32>) {
        let d = self.hidden;
        x.clear();
        for ids in inputs {
            assert!(
                ids.len() * d <= self.positions.len(),
                "input longer than the model's positions"
            );
            for (p, &id) in ids.iter().enumerate() {
                let row = &table[id as usize * d..(id as usize + 1) * d];
                let position = &self.positions[p * d..(p + 1) * d];
                x.extend(
                    row.iter()
                        .zip(position)
                        .zip(&self.token_type_row)
                        .map(|((a, b), c)| a + b + c),
                );
            }
        }
    }

    fn take_buffers(&self) -> Buffers {
        self.buffers
            .lock()
            .map(|mut idle| idle.pop())
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    fn return_buffers(&self, buffers: Buffers) {
        if let Ok(mut idle) = self.buffers.lock() {
            idle.push(buffers);
        }
    }

    /// One transformer layer on the packed hidden states `x` (`[tokens, d]`), in place; with
    /// `keep`, what the backward pass needs is copied out on the way.
    fn layer(
        &self,
        layer: &PackedLayer,
        x: &mut Vec<f32>,
        lengths: &[usize],
        b: &mut Buffers,
        threads: usize,
        mut keep: Option<&mut LayerRecord>,
    ) {
        let d = self.hidden;
        let tokens = x.len() / d;
        let qkv = layer.qkv.forward_unbiased(x, tokens, &mut b.qkv, threads);
        let context = grow(&mut b.context, tokens * d);
        self.attention(qkv, &layer.qkv.bias, context, lengths);
        if let Some(keep) = keep.as_deref_mut() {
            keep.qkv = qkv.to_vec();
        }
        let attended = layer
            .attention_out
            .forward_unbiased(context, tokens, &mut b.attended, threads);
        let sum = keep.as_deref_mut().map(|k| &mut k.attention_sum);
        add_norm(&layer.attention_norm, attended, &layer.attention_out.bias, x, sum);
        let intermediate = layer
            .intermediate
            .forward_unbiased(attended, tokens, &mut b.intermediate, threads);
        let pre_activation = keep.as_deref_mut().map(|k| &mut k.intermediate);
        bias_gelu_rows(intermediate, &layer.intermediate.bias, pre_activation);
        let out = layer.output.forward_unbiased(intermediate, tokens, x, threads);
        let sum = keep.map(|k| &mut k.output_sum);
        add_norm(&layer.output_norm, out, &layer.output.bias, attended, sum);
    }

    /// MPNet's relative position bias of an `n`-token input by head and distance (see
    /// [`RelativeBias::by_distance`]); `None` for BERT.
    pub(super) fn relative_bias(&self, n: usize) -> Option<Vec<f32>> {
        self.relative.as_ref().map(|relative| relative.by_distance(n))
    }

    /// Scaled dot-product attention of each sequence with itself, all heads, after adding the
    /// Q, K, V biases to `qkv` in place; sequences run in parallel,
    /// each on its own rows of `qkv` and `context`.
    pub(super) fn attention(&self, qkv: &mut [f32], qkv_bias: &[f32], context: &mut [f32], lengths: &[usize]) {
        let d = self.hidden;
        let head_dim = d / self.heads;
        let scale = 1.0 / (head_dim as f32).sqrt();
        let mut jobs = Vec::with_capacity(lengths.len());
        let (mut qkv_rest, mut context_rest) = (qkv, context);
        for &n in lengths {
            let (qkv_mine, qkv_after) = qkv_rest.split_at_mut(n * 3 * d);
            let (context_mine, context_after) = context_rest.split_at_mut(n * d);
            jobs.push((n, qkv_mine, context_mine));
            (qkv_rest, context_rest) = (qkv_after, context_after);
        }
        jobs.into_par_iter().for_each(|(n, qkv, out)| {
            add_bias(qkv, qkv_bias);
            let qkv = &*qkv;
            let mut scores = vec![0f32; n * n];
            let mut inverse_sums = Vec::with_capacity(n);
            let by_distance = self.relative_bias(n);
            for h in 0..self.heads {
                let q = View::new(&qkv[h * head_dim..], n, head_dim, 3 * d, 1);
                // Kᵀ: element (i, j) is K[j][i]
                let k_t = View::new(&qkv[d + h * head_dim..], head_dim, n, 1, 3 * d);
                matmul(&mut scores, n, false, q, k_t, scale, 1);
                if let Some(by_distance) = &by_distance {
                    add_relative_bias(&mut scores, n, by_distance, h);
                }
                inverse_sums.clear();
                exp_rows(&mut scores, n, &mut inverse_sums);
                let p = View::new(&scores, n, n, n, 1);
                let v = View::new(&qkv[2 * d + h * head_dim..], n, head_dim, 3 * d, 1);
                let head_out = &mut out[h * head_dim..];
                matmul(head_out, d, false, p, v, 1.0, 1);
                // the softmax's normalisation, on n × head_dim values instead of n × n
                for (row, inv) in head_out.chunks_mut(d).zip(&inverse_sums) {
                    row[..head_dim].iter_mut().for_each(|v| *v *= inv);
                }
            }
        });
    }
}
