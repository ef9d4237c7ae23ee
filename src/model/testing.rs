//! Tiny random-weight BERT folders for fast tests (not for inference).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};

use super::error::{ModelError, Result};
use crate::runtime::ModelSpec;

/// Writes a tiny BERT folder (see [`write_tiny_bert`]) to `dir` and returns the spec that names
/// it on the default device.
pub fn tiny_model_spec(dir: &Path, seed: u64) -> Result<ModelSpec> {
    write_tiny_bert(dir, "", seed)?;
    Ok(ModelSpec {
        dir: Some(dir.to_path_buf()),
        device: None,
    })
}

/// Writes a BERT folder with random weights to `dir`: width 8, 2 heads, 2 layers, 12 positions
/// (so sequences over 10 residues are windowed), and a `vocab.txt` with the specials and a–z.
/// `prefix` is put before every tensor name (`"bert."` mimics task models).
pub fn write_tiny_bert(dir: &Path, prefix: &str, seed: u64) -> Result<()> {
    write_tiny(dir, prefix, seed, false)
}

/// Writes an MPNet folder with random weights to `dir`, shaped as [`write_tiny_bert`]'s (12
/// usable positions, from row 2 of 14), with MPNet's tensor names, relative position buckets
/// (32: inputs of over 8 tokens reach the logarithmic ones), no token types, and `<s>`, `</s>`,
/// `<pad>` named in a `special_tokens_map.json`.
pub fn write_tiny_mpnet(dir: &Path, seed: u64) -> Result<()> {
    write_tiny(dir, "", seed, true)
}

fn write_tiny(dir: &Path, prefix: &str, seed: u64, mpnet: bool) -> Result<()> {
    let io = |source| ModelError::Io {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let specials = if mpnet {
        ["<s>", "<pad>", "</s>", "[UNK]", "<mask>"]
    } else {
        ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    };
    let mut vocab: Vec<String> = specials.map(String::from).to_vec();
    vocab.extend(('a'..='z').map(String::from));
    vocab.extend(["the", "of", "protein"].map(String::from));
    let (d, inter, layers, buckets) = (8, 16, 2, 32);
    let positions = if mpnet { 14 } else { 12 };
    let architecture = if mpnet {
        r#""model_type": "mpnet", "pad_token_id": 1, "relative_attention_num_buckets": 32,"#
    } else {
        r#""type_vocab_size": 2,"#
    };
    let config = format!(
        r#"{{"vocab_size": {}, "hidden_size": {d}, "num_hidden_layers": {layers}, "num_attention_heads": 2,
            "intermediate_size": {inter}, "max_position_embeddings": {positions}, {architecture}
            "layer_norm_eps": 1e-12, "hidden_act": "gelu"}}"#,
        vocab.len()
    );
    std::fs::write(dir.join("config.json"), config).map_err(io)?;
    std::fs::write(dir.join("vocab.txt"), vocab.join("\n") + "\n").map_err(io)?;
    if mpnet {
        let map = r#"{"cls_token": "<s>", "sep_token": "</s>", "pad_token": {"content": "<pad>", "lstrip": false}}"#;
        std::fs::write(dir.join("special_tokens_map.json"), map).map_err(io)?;
    }

    let mut state = seed;
    // splitmix64: uniform in [-1, 1)
    let mut uniform = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    };
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    let mut put = |name: String, shape: &[usize], ones: bool| -> Result<()> {
        let n = shape.iter().product();
        let values: Vec<f32> = (0..n)
            .map(|_| if ones { 1.0 + 0.1 * uniform() } else { 0.8 * uniform() })
            .collect();
        tensors.insert(
            format!("{prefix}{name}"),
            Tensor::from_vec(values, shape, &Device::Cpu)?,
        );
        Ok(())
    };
    put("embeddings.word_embeddings.weight".into(), &[vocab.len(), d], false)?;
    put("embeddings.position_embeddings.weight".into(), &[positions, d], false)?;
    if mpnet {
        put("encoder.relative_attention_bias.weight".into(), &[buckets, 2], false)?;
    } else {
        put("embeddings.token_type_embeddings.weight".into(), &[2, d], false)?;
    }
    put("embeddings.LayerNorm.weight".into(), &[d], true)?;
    put("embeddings.LayerNorm.bias".into(), &[d], false)?;
    for i in 0..layers {
        let l = |s: &str| format!("encoder.layer.{i}.{s}");
        let attention = if mpnet {
            [
                "attention.attn.q",
                "attention.attn.k",
                "attention.attn.v",
                "attention.attn.o",
            ]
        } else {
            [
                "attention.self.query",
                "attention.self.key",
                "attention.self.value",
                "attention.output.dense",
            ]
        };
        for name in attention {
            put(l(&format!("{name}.weight")), &[d, d], false)?;
            put(l(&format!("{name}.bias")), &[d], false)?;
        }
        put(l("intermediate.dense.weight"), &[inter, d], false)?;
        put(l("intermediate.dense.bias"), &[inter], false)?;
        put(l("output.dense.weight"), &[d, inter], false)?;
        put(l("output.dense.bias"), &[d], false)?;
        let attention_norm = if mpnet {
            "attention.LayerNorm"
        } else {
            "attention.output.LayerNorm"
        };
        for norm in [attention_norm, "output.LayerNorm"] {
            put(l(&format!("{norm}.weight")), &[d], true)?;
            put(l(&format!("{norm}.bias")), &[d], false)?;
        }
    }
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors"))?;
    Ok(())
}
