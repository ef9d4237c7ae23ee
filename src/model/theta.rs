//! Θ, the reprogrammer: a sparse |V_T| × |V_S| map from protein tokens to English tokens. Each
//! protein token's input embedding is its row of `V_T = Θ · V_S`.

use candle_core::Tensor;

use super::error::{ModelError, Result};
use super::vocab::{EnglishTokens, NUM_RESIDUES};

/// One row of Θ: a weighted sum of a few English word embeddings.
#[derive(Debug, Clone, PartialEq)]
pub struct SparseRow {
    /// English token ids (rows of V_S).
    pub indices: Vec<u32>,
    /// Their weights.
    pub values: Vec<f32>,
}

/// Θ with one sparse row per residue token.
#[derive(Debug, Clone, PartialEq)]
pub struct Theta {
    rows: Vec<SparseRow>,
}

impl Theta {
    /// The natural start: each amino acid maps to the English token of its lower-case letter.
    pub fn one_hot(tokens: &EnglishTokens) -> Self {
        let rows = tokens
            .residue_letters
            .iter()
            .map(|&id| SparseRow {
                indices: vec![id],
                values: vec![1.0],
            })
            .collect();
        Self { rows }
    }

    /// Θ from its rows; there must be one per residue token and each must be well formed.
    pub fn from_rows(rows: Vec<SparseRow>, english_vocab_size: usize) -> Result<Self> {
        let bad = |message: String| ModelError::Format {
            path: "Θ".into(),
            message,
        };
        if rows.len() != NUM_RESIDUES {
            return Err(bad(format!(
                "Θ has {} rows, the protein vocabulary {NUM_RESIDUES}",
                rows.len()
            )));
        }
        for (i, row) in rows.iter().enumerate() {
            if row.indices.len() != row.values.len() {
                return Err(bad(format!(
                    "row {i} has {} indices, {} values",
                    row.indices.len(),
                    row.values.len()
                )));
            }
            if let Some(&id) = row.indices.iter().find(|&&id| id as usize >= english_vocab_size) {
                return Err(bad(format!(
                    "row {i} names English token {id}, the vocabulary has {english_vocab_size}"
                )));
            }
        }
        Ok(Self { rows })
    }

    /// The rows, in residue-token order.
    pub fn rows(&self) -> &[SparseRow] {
        &self.rows
    }

    /// `V_T = Θ · V_S` (|V_T| × d), on the device of `v_s`.
    pub fn project(&self, v_s: &Tensor) -> Result<Tensor> {
        let (vocab, _) = v_s.dims2()?;
        let device = v_s.device();
        let mut rows = Vec::with_capacity(self.rows.len());
        for row in &self.rows {
            if let Some(&id) = row.indices.iter().find(|&&id| id as usize >= vocab) {
                return Err(ModelError::Format {
                    path: "Θ".into(),
                    message: format!("names English token {id}, the model's vocabulary has {vocab}"),
                });
            }
            let indices = Tensor::new(row.indices.as_slice(), device)?;
            let values = Tensor::new(row.values.as_slice(), device)?.to_dtype(v_s.dtype())?;
            let embeddings = v_s.index_select(&indices, 0)?;
            rows.push(values.unsqueeze(0)?.matmul(&embeddings)?.squeeze(0)?);
        }
        Ok(Tensor::stack(&rows, 0)?)
    }
}
