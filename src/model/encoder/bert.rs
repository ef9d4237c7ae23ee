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

/// The frozen BERT encoder with its embedding tables.
#[derive(Debug, Clone)]
pub struct BertEncoder {
    pub(super) config: BertConfig,
    pub(super) word_embeddings: Tensor,
    pub(super) position_embeddings: Tensor,
    pub(super) token_type_row: Tensor,
    pub(super) embedding_norm: Norm,
    pub(super) layers: Vec<Layer>,
    pub(super) device: Device,
}

/// The tensors of a `model.safetensors`, with the optional `bert.` prefix of task models.
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
            message: format!("no tensor '{key}' (is this a BERT model?)"),
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
        let token_types = weights.get("embeddings.token_type_embeddings.weight", &[config.type_vocab_size, d])?;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let name = |part: &str| format!("encoder.layer.{i}.{part}");
            let q = weights.get(&name("attention.self.query.weight"), &[d, d])?;
            let k = weights.get(&name("attention.self.key.weight"), &[d, d])?;
            let v = weights.get(&name("attention.self.value.weight"), &[d, d])?;
            let qb = weights.get(&name("attention.self.query.bias"), &[d])?;
            let kb = weights.get(&name("attention.self.key.bias"), &[d])?;
            let vb = weights.get(&name("attention.self.value.bias"), &[d])?;
            let qkv = Dense {
                weight_t: Tensor::cat(&[q, k, v], 0)?.t()?.contiguous()?,
                bias: Tensor::cat(&[qb, kb, vb], 0)?,
            };
            layers.push(Layer {
                qkv,
                attention_out: weights.dense(&name("attention.output.dense"), d, d)?,
                attention_norm: weights.norm(&name("attention.output.LayerNorm"), d, eps)?,
                intermediate: weights.dense(&name("intermediate.dense"), d, config.intermediate_size)?,
                output: weights.dense(&name("output.dense"), config.intermediate_size, d)?,
                output_norm: weights.norm(&name("output.LayerNorm"), d, eps)?,
            });
        }
        Ok(Self {
            word_embeddings: weights.get("embeddings.word_embeddings.weight", &[config.vocab_size, d])?,
            position_embeddings: weights.get(
                "embeddings.position_embeddings.weight",
                &[config.max_position_embeddings, d],
            )?,
            token_type_row: token_types.get(0)?,
            embedding_norm: weights.norm("embeddings.LayerNorm", d, eps)?,
            layers,
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
        let bias = ((mask.to_dtype(DType::F32)? - 1.0)? * 1e9)?.reshape((batch, 1, 1, tokens))?;
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
