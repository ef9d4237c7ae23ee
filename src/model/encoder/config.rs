//! The parts of a BERT `config.json` the encoder needs.

use std::path::Path;

use serde::Deserialize;

use crate::model::error::{ModelError, Result};

/// The shape and numerics of a BERT-family encoder.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BertConfig {
    /// English vocabulary size |V_S|.
    pub vocab_size: usize,
    /// Hidden width d.
    pub hidden_size: usize,
    /// Transformer layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer.
    pub num_attention_heads: usize,
    /// Width of the feed-forward layer.
    pub intermediate_size: usize,
    /// Positions the model was trained with (tokens per input, [CLS] and [SEP] included).
    pub max_position_embeddings: usize,
    /// Token types (segments).
    #[serde(default = "default_type_vocab_size")]
    pub type_vocab_size: usize,
    /// LayerNorm epsilon.
    #[serde(default = "default_layer_norm_eps")]
    pub layer_norm_eps: f64,
    /// The feed-forward activation; only the exact (erf) GELU is supported.
    #[serde(default = "default_hidden_act")]
    pub hidden_act: String,
    /// `absolute` is the only supported kind.
    #[serde(default = "default_position_embedding_type")]
    pub position_embedding_type: String,
}

fn default_type_vocab_size() -> usize {
    2
}
fn default_layer_norm_eps() -> f64 {
    1e-12
}
fn default_hidden_act() -> String {
    "gelu".into()
}
fn default_position_embedding_type() -> String {
    "absolute".into()
}

impl BertConfig {
    /// Reads and checks `config.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => ModelError::Missing {
                path: path.to_path_buf(),
            },
            _ => ModelError::Io {
                path: path.to_path_buf(),
                source,
            },
        })?;
        let format = |message: String| ModelError::Format {
            path: path.to_path_buf(),
            message,
        };
        let config: Self = serde_json::from_str(&text).map_err(|e| format(format!("not a BERT config: {e}")))?;
        if config.hidden_size == 0
            || config.num_attention_heads == 0
            || !config.hidden_size.is_multiple_of(config.num_attention_heads)
        {
            return Err(format(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                config.hidden_size, config.num_attention_heads
            )));
        }
        if !matches!(config.hidden_act.as_str(), "gelu" | "gelu_python") {
            return Err(format(format!(
                "hidden_act '{}' is not supported (only 'gelu')",
                config.hidden_act
            )));
        }
        if config.position_embedding_type != "absolute" {
            return Err(format(format!(
                "position_embedding_type '{}' is not supported (only 'absolute')",
                config.position_embedding_type
            )));
        }
        if config.max_position_embeddings < 3 || config.type_vocab_size == 0 {
            return Err(format(
                "max_position_embeddings must be at least 3 and type_vocab_size at least 1".into(),
            ));
        }
        Ok(config)
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}
