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
    /// The architecture: `mpnet` (MPNet: relative position buckets, positions counted from
    /// `pad_token_id + 1`, no token types), anything else or nothing: BERT.
    #[serde(default)]
    pub model_type: Option<String>,
    /// MPNet's relative position buckets.
    #[serde(default = "default_relative_attention_num_buckets")]
    pub relative_attention_num_buckets: usize,
    /// The padding token; MPNet's first position is `pad_token_id + 1`.
    #[serde(default)]
    pub pad_token_id: Option<usize>,
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
fn default_relative_attention_num_buckets() -> usize {
    32
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
        config.check_ranges().map_err(format)?;
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
        if config.max_position_embeddings < config.first_position() + 3 || config.type_vocab_size == 0 {
            return Err(format(format!(
                "max_position_embeddings must be at least {} and type_vocab_size at least 1",
                config.first_position() + 3
            )));
        }
        Ok(config)
    }

    /// Checks every size against a bound far above any BERT-family model, before anything is
    /// allocated from it (so a damaged config is an error naming the field, not an abort), and
    /// the LayerNorm epsilon for a small positive number.
    fn check_ranges(&self) -> std::result::Result<(), String> {
        for (field, value, most) in [
            ("vocab_size", self.vocab_size, 1 << 24),
            ("hidden_size", self.hidden_size, 1 << 16),
            ("num_hidden_layers", self.num_hidden_layers, 1024),
            ("num_attention_heads", self.num_attention_heads, 1024),
            ("intermediate_size", self.intermediate_size, 1 << 18),
            ("max_position_embeddings", self.max_position_embeddings, 1 << 20),
            ("type_vocab_size", self.type_vocab_size, 1 << 16),
            (
                "relative_attention_num_buckets",
                self.relative_attention_num_buckets,
                1 << 10,
            ),
        ] {
            if value == 0 || value > most {
                return Err(format!("{field} {value} is out of range (1 to {most})"));
            }
        }
        if let Some(pad) = self.pad_token_id.filter(|&pad| pad >= 1 << 24) {
            return Err(format!("pad_token_id {pad} is out of range (0 to {})", (1 << 24) - 1));
        }
        let eps = self.layer_norm_eps;
        if !(eps.is_finite() && eps > 0.0 && eps < 1.0) {
            return Err(format!(
                "layer_norm_eps {eps} is out of range (a positive number below 1)"
            ));
        }
        Ok(())
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Whether this is an MPNet model (relative position bias, no token types).
    pub fn is_mpnet(&self) -> bool {
        self.model_type.as_deref() == Some("mpnet")
    }

    /// The row of the position table the first token reads: 0 for BERT; MPNet counts positions
    /// from `pad_token_id + 1`, as its tokenizer's position ids do.
    pub fn first_position(&self) -> usize {
        if self.is_mpnet() {
            self.pad_token_id.unwrap_or(1) + 1
        } else {
            0
        }
    }

    /// Tokens in one input, specials included: the position table less its unused first rows.
    pub fn max_tokens(&self) -> usize {
        self.max_position_embeddings - self.first_position()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use candle_core::Device;

    use super::*;
    use crate::model::ReprogrammedModel;
    use crate::model::testing::write_tiny_bert;

    /// The tiny model's folder with one field of `config.json` replaced.
    fn with_field(dir: &Path, field: &str, value: serde_json::Value) {
        let path = dir.join("config.json");
        let mut config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        config[field] = value;
        std::fs::write(path, config.to_string()).unwrap();
    }

    #[test]
    fn damaged_sizes_are_errors_naming_the_field() {
        let dir = tempfile::tempdir().unwrap();
        write_tiny_bert(dir.path(), "", 1).unwrap();
        for (field, value) in [
            ("num_hidden_layers", serde_json::json!(1_000_000_000_000u64)),
            ("num_hidden_layers", serde_json::json!(u64::MAX)),
            ("hidden_size", serde_json::json!(0)),
            ("intermediate_size", serde_json::json!(1u64 << 40)),
            ("max_position_embeddings", serde_json::json!(1u64 << 40)),
            ("vocab_size", serde_json::json!(u64::MAX)),
            ("layer_norm_eps", serde_json::json!(-1.0)),
            ("layer_norm_eps", serde_json::json!(0.0)),
        ] {
            write_tiny_bert(dir.path(), "", 1).unwrap();
            with_field(dir.path(), field, value.clone());
            let message = BertConfig::from_file(&dir.path().join("config.json"))
                .unwrap_err()
                .to_string();
            assert!(message.contains(field), "{field} = {value}: {message}");
            let load = ReprogrammedModel::load(dir.path(), &Device::Cpu);
            assert!(load.is_err(), "{field} = {value} loads");
        }
    }

    #[test]
    fn a_config_with_fewer_layers_than_the_weights_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        write_tiny_bert(dir.path(), "", 1).unwrap();
        ReprogrammedModel::load(dir.path(), &Device::Cpu).unwrap();
        with_field(dir.path(), "num_hidden_layers", serde_json::json!(1));
        let message = ReprogrammedModel::load(dir.path(), &Device::Cpu)
            .err()
            .unwrap()
            .to_string();
        assert!(message.contains("num_hidden_layers is 1"), "{message}");
        assert!(message.contains("more layers"), "{message}");
    }
}
