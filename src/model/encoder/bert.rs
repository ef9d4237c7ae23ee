//! The frozen base encoder: a BERT-family transformer run from input embeddings, so that protein
//! tokens can enter through `V_T = Θ · V_S` instead of the English word-embedding table.
//!
//! The encoder is written out here rather than taken from candle-transformers because r2dl feeds
//! embeddings (not token ids), needs a differentiable path for training, and runs its projections
//! on `[tokens, d]` matrices with the Q, K and V weights fused into one GEMM.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{D, DType, Device, Tensor};

use super::config::BertConfig;
use crate::model::error::{ModelError, Result};
use crate::model::readout::Readout;

/// A LayerNorm with its parameters.
#[derive(Debug, Clone)]
pub(super) struct Norm {
    pub(super) weight: Tensor,
    pub(super) bias: Tensor,
    pub(super) eps: f32,
}

impl Norm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(candle_nn::ops::layer_norm(x, &self.weight, &self.bias, self.eps)?)
    }
}

/// A dense layer `x · Wᵀ + b` on `[rows, in]` matrices.
#[derive(Debug, Clone)]
pub(super) struct Dense {
    /// `Wᵀ`, `[in, out]`.
    pub(super) weight_t: Tensor,
    pub(super) bias: Tensor,
}

impl Dense {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.matmul(&self.weight_t)?.broadcast_add(&self.bias)?)
    }
}

#[derive(Debug, Clone)]
pub(super) struct Layer {
    pub(super) qkv: Dense,
    pub(super) attention_out: Dense,
    pub(super) attention_norm: Norm,
    pub(super) intermediate: Dense,
    pub(super) output: Dense,
    pub(super) output_norm: Norm,
}

/// MPNet's relative position bias: a learned value per attention head and bucket of the
/// key − query distance, added to every layer's attention scores.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct RelativeBias {
    /// `[buckets, heads]`, row-major (the `relative_attention_bias` embedding).
    table: Vec<f32>,
    heads: usize,
}

impl RelativeBias {
    /// Distances from which buckets grow logarithmically to the last one.
    const MAX_DISTANCE: usize = 128;

    /// The bucket of the distance `relative` = key position − query position: MPNet's
    /// `relative_position_bucket` (bidirectional, half the buckets each way, exact below a
    /// quarter of them, logarithmic up to 128), in the same `f32` arithmetic.
    fn bucket(&self, relative: i64) -> usize {
        let half = self.table.len() / self.heads / 2;
        let (side, distance) = if relative > 0 { (half, relative) } else { (0, -relative) };
        let distance = distance as usize;
        let exact = half / 2;
        if distance < exact {
            return side + distance;
        }
        let scale = (Self::MAX_DISTANCE as f64 / exact as f64).ln() as f32;
        let log = (distance as f32 / exact as f32).ln() / scale * (half - exact) as f32;
        side + (exact + log as usize).min(half - 1)
    }

    /// Each head's bias for every key − query distance of an `n`-token input: `heads × (2n − 1)`
    /// values, distance `j − i` at index `j − i + n − 1` of its head's row.
    pub(super) fn by_distance(&self, n: usize) -> Vec<f32> {
        let span = 2 * n.max(1) - 1;
        let mut out = vec![0f32; self.heads * span];
        for index in 0..span {
            let bucket = self.bucket(index as i64 - (n as i64 - 1));
            for h in 0..self.heads {
                out[h * span + index] = self.table[bucket * self.heads + h];
            }
        }
        out
    }
}

/// Adds head `h`'s relative position bias (`by_distance`, from [`RelativeBias::by_distance`] of
/// `n`) to its `n × n` attention `scores`.
pub(super) fn add_relative_bias(scores: &mut [f32], n: usize, by_distance: &[f32], h: usize) {
    if n == 0 {
        return;
    }
    let span = 2 * n - 1;
    let head = &by_distance[h * span..(h + 1) * span];
    for (i, row) in scores.chunks_exact_mut(n).enumerate() {
        // row i, key j reads distance j − i: indices n − 1 − i .. 2n − 1 − i
        let distances = &head[n - 1 - i..span - i];
        row.iter_mut().zip(distances).for_each(|(s, b)| *s += b);
    }
}

/// The frozen BERT-family encoder (BERT, or MPNet) with its embedding tables.
#[derive(Debug, Clone)]
pub struct BertEncoder {
    pub(super) config: BertConfig,
    pub(super) word_embeddings: Tensor,
    /// The position table from the first position inputs use (`[max_tokens, d]`).
    pub(super) position_embeddings: Tensor,
    /// Token type 0's row (zeros for MPNet, which has no token types).
    pub(super) token_type_row: Tensor,
    pub(super) embedding_norm: Norm,
    pub(super) layers: Vec<Layer>,
    /// MPNet's relative position bias; `None` for BERT.
    pub(super) relative: Option<RelativeBias>,
    pub(super) device: Device,
}

/// The tensors of a `model.safetensors`, with the optional `bert.` / `mpnet.` prefix of task
/// models.
struct Weights {
    tensors: HashMap<String, Tensor>,
    prefix: &'static str,
    path: std::path::PathBuf,
}

impl Weights {
    fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let key = format!("{}{name}", self.prefix);
        let tensor = self.tensors.get(&key).ok_or_else(|| ModelError::Format {
            path: self.path.clone(),
            message: format!("no tensor '{key}' (is this a BERT or MPNet model?)"),
        })?;
        if tensor.dims() != shape {
            return Err(ModelError::Format {
                path: self.path.clone(),
                message: format!(
                    "tensor '{key}' has shape {:?}, config.json implies {shape:?}",
                    tensor.dims()
                ),
            });
        }
        Ok(tensor.to_dtype(DType::F32)?)
    }

    fn dense(&self, name: &str, inputs: usize, outputs: usize) -> Result<Dense> {
        let weight = self.get(&format!("{name}.weight"), &[outputs, inputs])?;
        Ok(Dense {
            weight_t: weight.t()?.contiguous()?,
            bias: self.get(&format!("{name}.bias"), &[outputs])?,
        })
    }

    fn norm(&self, name: &str, width: usize, eps: f64) -> Result<Norm> {
        Ok(Norm {
            weight: self.get(&format!("{name}.weight"), &[width])?,
            bias: self.get(&format!("{name}.bias"), &[width])?,
            eps: eps as f32,
        })
    }
}

impl BertEncoder {
    /// Loads the encoder from `model.safetensors` in `dir`, shaped by `config`.
    pub fn load(dir: &Path, config: &BertConfig, device: &Device) -> Result<Self> {
        let path = dir.join("model.safetensors");
        if !path.is_file() {
            return Err(ModelError::Missing { path });
        }
        let tensors = candle_core::safetensors::load(&path, device).map_err(|e| ModelError::Format {
            path: path.clone(),
            message: format!("unreadable safetensors: {e}"),
        })?;
        let prefix = if tensors.contains_key("embeddings.word_embeddings.weight") {
            ""
        } else if config.is_mpnet() {
            "mpnet."
        } else {
            "bert."
        };
        let extra_layer = format!("{prefix}encoder.layer.{}.", config.num_hidden_layers);
        if tensors.keys().any(|name| name.starts_with(&extra_layer)) {
            return Err(ModelError::Format {
                path: dir.join("config.json"),
                message: format!(
                    "num_hidden_layers is {}, but {} holds more layers: the config does not match the weights",
                    config.num_hidden_layers,
                    path.display()
                ),
            });
        }
        let weights = Weights { tensors, prefix, path };
        let d = config.hidden_size;
        let eps = config.layer_norm_eps;
        let mpnet = config.is_mpnet();
        let token_type_row = if mpnet {
            Tensor::zeros(d, DType::F32, device)?
        } else {
            weights
                .get("embeddings.token_type_embeddings.weight", &[config.type_vocab_size, d])?
                .get(0)?
        };
        // the attention's tensor names: MPNet's, or BERT's
        let [q, k, v, o, attention_norm] = if mpnet {
            ["attn.q", "attn.k", "attn.v", "attn.o", "LayerNorm"]
        } else {
            [
                "self.query",
                "self.key",
                "self.value",
                "output.dense",
                "output.LayerNorm",
            ]
        };
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let name = |part: &str| format!("encoder.layer.{i}.{part}");
            let attention = |part: &str, what: &str| name(&format!("attention.{part}.{what}"));
            let (qw, kw, vw) = (attention(q, "weight"), attention(k, "weight"), attention(v, "weight"));
            let (qb, kb, vb) = (attention(q, "bias"), attention(k, "bias"), attention(v, "bias"));
            let qkv = Dense {
                weight_t: Tensor::cat(
                    &[
                        weights.get(&qw, &[d, d])?,
                        weights.get(&kw, &[d, d])?,
                        weights.get(&vw, &[d, d])?,
                    ],
                    0,
                )?
                .t()?
                .contiguous()?,
                bias: Tensor::cat(
                    &[
                        weights.get(&qb, &[d])?,
                        weights.get(&kb, &[d])?,
                        weights.get(&vb, &[d])?,
                    ],
                    0,
                )?,
            };
            layers.push(Layer {
                qkv,
                attention_out: weights.dense(&name(&format!("attention.{o}")), d, d)?,
                attention_norm: weights.norm(&name(&format!("attention.{attention_norm}")), d, eps)?,
                intermediate: weights.dense(&name("intermediate.dense"), d, config.intermediate_size)?,
                output: weights.dense(&name("output.dense"), config.intermediate_size, d)?,
                output_norm: weights.norm(&name("output.LayerNorm"), d, eps)?,
            });
        }
        let relative = if mpnet {
            let (buckets, heads) = (config.relative_attention_num_buckets, config.num_attention_heads);
            let table = weights.get("encoder.relative_attention_bias.weight", &[buckets, heads])?;
            Some(RelativeBias {
                table: table.flatten_all()?.to_vec1()?,
                heads,
            })
        } else {
            None
        };
        Ok(Self {
            word_embeddings: weights.get("embeddings.word_embeddings.weight", &[config.vocab_size, d])?,
            position_embeddings: weights
                .get(
                    "embeddings.position_embeddings.weight",
                    &[config.max_position_embeddings, d],
                )?
                .narrow(0, config.first_position(), config.max_tokens())?
                .contiguous()?,
            token_type_row,
            embedding_norm: weights.norm("embeddings.LayerNorm", d, eps)?,
            layers,
            relative,
            config: config.clone(),
            device: device.clone(),
        })
    }

    /// The model's configuration.
    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The English word-embedding matrix V_S (`|V_S| × d`).
    pub fn word_embeddings(&self) -> &Tensor {
        &self.word_embeddings
    }

    /// Runs the encoder on token embeddings `[batch, tokens, d]` (rows of V_S or V_T) whose valid
    /// tokens `mask` (`[batch, tokens]`, 1.0 or 0.0) marks; returns the last hidden state.
    pub fn forward(&self, token_embeddings: &Tensor, mask: &Tensor) -> Result<Tensor> {
        self.forward_features(token_embeddings, mask, &Readout::last())
    }

    /// [`Self::forward`], returning the hidden states `readout` names concatenated per token:
    /// `[batch, tokens, readout.count() · d]`.
    pub fn forward_features(&self, token_embeddings: &Tensor, mask: &Tensor, readout: &Readout) -> Result<Tensor> {
        let (batch, tokens, d) = token_embeddings.dims3()?;
        let positions = self.position_embeddings.narrow(0, 0, tokens)?;
        let x = token_embeddings
            .broadcast_add(&positions)?
            .broadcast_add(&self.token_type_row)?;
        let mut x = self.embedding_norm.forward(&x)?.reshape((batch * tokens, d))?;
        // 0 for a valid key, a large negative number for padding, as `[batch, 1, 1, tokens]`
        let mut bias = ((mask.to_dtype(DType::F32)? - 1.0)? * 1e9)?.reshape((batch, 1, 1, tokens))?;
        if let Some(relative) = &self.relative {
            // MPNet: each head's bias by key − query distance, as `[1, heads, tokens, tokens]`
            let heads = self.config.num_attention_heads;
            let by_distance = relative.by_distance(tokens);
            let mut scores = vec![0f32; heads * tokens * tokens];
            for (h, head) in scores.chunks_exact_mut(tokens * tokens).enumerate() {
                add_relative_bias(head, tokens, &by_distance, h);
            }
            let relative = Tensor::from_vec(scores, (1, heads, tokens, tokens), &self.device)?;
            bias = bias.broadcast_add(&relative)?;
        }
        let taps = readout.taps(self.layers.len());
        let mut states = vec![None; taps.len()];
        let mut keep = |layer: usize, x: &Tensor| {
            for (slot, _) in taps.iter().enumerate().filter(|&(_, &l)| l == layer) {
                states[slot] = Some(x.clone());
            }
        };
        keep(0, &x);
        for (index, layer) in self.layers.iter().enumerate() {
            x = self.layer(layer, &x, &bias, batch, tokens)?;
            keep(index + 1, &x);
        }
        let states: Vec<Tensor> = states.into_iter().flatten().collect();
        let features = if readout.is_last() { x } else { Tensor::cat(&states, 1)? };
        Ok(features.reshape((batch, tokens, taps.len() * d))?)
    }

    fn layer(&self, layer: &Layer, x: &Tensor, bias: &Tensor, batch: usize, tokens: usize) -> Result<Tensor> {
        let heads = self.config.num_attention_heads;
        let head_dim = self.config.head_dim();
        let d = self.config.hidden_size;
        let qkv = layer.qkv.forward(x)?.reshape((batch, tokens, 3, heads, head_dim))?;
        let part = |i: usize| -> Result<Tensor> { Ok(qkv.narrow(2, i, 1)?.squeeze(2)?.transpose(1, 2)?.contiguous()?) };
        let (q, k, v) = (part(0)?, part(1)?, part(2)?);
        let scores = (q.matmul(&k.t()?)? * (1.0 / (head_dim as f64).sqrt()))?.broadcast_add(bias)?;
        let probabilities = candle_nn::ops::softmax_last_dim(&scores)?;
        let context = probabilities
            .matmul(&v)?
            .transpose(1, 2)?
            .reshape((batch * tokens, d))?;
        let attended = layer
            .attention_norm
            .forward(&(layer.attention_out.forward(&context)? + x)?)?;
        let hidden = layer.intermediate.forward(&attended)?.gelu_erf()?;
        layer.output_norm.forward(&(layer.output.forward(&hidden)? + attended)?)
    }
}

/// Mask-aware mean pooling: the mean of `hidden` (`[batch, tokens, d]`) over the tokens `mask`
/// (`[batch, tokens]`) marks valid.
pub fn mean_pool(hidden: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let mask = mask.to_dtype(hidden.dtype())?;
    let summed = hidden.broadcast_mul(&mask.unsqueeze(D::Minus1)?)?.sum(1)?;
    let counts = mask.sum_keepdim(1)?.clamp(1.0, f64::MAX)?;
    Ok(summed.broadcast_div(&counts)?)
}
