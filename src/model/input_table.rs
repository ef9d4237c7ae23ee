//! The input table: the embeddings the encoder reads, by row — V_T (one row per residue token,
//! `Θ · V_S`), then the base model's `[CLS]`, `[SEP]` and `[PAD]` rows of V_S. This module alone
//! knows that layout; inference, the recorded pass and the trainer go through it.

use candle_core::Tensor;

use super::encoder::BertEncoder;
use super::error::Result;
use super::theta::Theta;
use super::vocab::{EnglishTokens, NUM_RESIDUES};

/// Row of `[CLS]`; the rows below it are the residue tokens of V_T.
const CLS_ROW: u32 = NUM_RESIDUES as u32;
/// Row of `[SEP]`.
const SEP_ROW: u32 = CLS_ROW + 1;
/// Row of `[PAD]`.
pub(super) const PAD_ROW: u32 = CLS_ROW + 2;

/// Input-table rows of one input: `[CLS]`, the residue tokens, `[SEP]`.
pub fn input_ids(tokens: &[u8]) -> impl Iterator<Item = u32> + '_ {
    std::iter::once(CLS_ROW)
        .chain(tokens.iter().map(|&t| u32::from(t)))
        .chain(std::iter::once(SEP_ROW))
}

/// The input table of one Θ as plain rows (`rows × d`, row-major), for the packed CPU encoder.
#[derive(Debug, Clone, PartialEq)]
pub struct InputTable {
    values: Vec<f32>,
    dim: usize,
}

impl InputTable {
    /// The table for `theta` as a tensor on the encoder's device: `Θ · V_S`, then the `[CLS]`,
    /// `[SEP]`, `[PAD]` rows of V_S.
    pub(super) fn tensor(encoder: &BertEncoder, english: &EnglishTokens, theta: &Theta) -> Result<Tensor> {
        let v_s = encoder.word_embeddings();
        let v_t = theta.project(v_s)?;
        let specials = Tensor::new(&[english.cls, english.sep, english.pad], v_s.device())?;
        Ok(Tensor::cat(&[v_t, v_s.index_select(&specials, 0)?], 0)?)
    }

    /// The table of [`InputTable::tensor`] as plain rows.
    pub(super) fn from_tensor(table: &Tensor) -> Result<Self> {
        let dim = table.dims2()?.1;
        Ok(Self {
            values: table.flatten_all()?.to_vec1()?,
            dim,
        })
    }

    /// All rows, row-major.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.values.len() / self.dim
    }

    /// V_T: the residue-token rows.
    pub fn residues(&self) -> &[f32] {
        Self::residue_rows(&self.values, self.dim)
    }

    /// This table with V_T replaced by `v_t` (`NUM_RESIDUES × d` values), the special rows kept.
    pub fn with_residues(&self, v_t: &[f32]) -> Self {
        assert_eq!(v_t.len(), NUM_RESIDUES * self.dim, "V_T has one row per residue token");
        let mut values = v_t.to_vec();
        values.extend_from_slice(&self.values[v_t.len()..]);
        Self { values, dim: self.dim }
    }

    /// The residue-token rows of `values` laid out as an input table of width `dim` (a gradient
    /// with respect to the table, say).
    pub fn residue_rows(values: &[f32], dim: usize) -> &[f32] {
        &values[..NUM_RESIDUES * dim]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn residue_rows_come_first_and_specials_are_kept() {
        let dim = 2;
        let values: Vec<f32> = (0..(NUM_RESIDUES + 3) * dim).map(|v| v as f32).collect();
        let table = InputTable {
            values: values.clone(),
            dim,
        };
        assert_eq!(table.rows(), NUM_RESIDUES + 3);
        assert_eq!(table.residues(), &values[..NUM_RESIDUES * dim]);
        let v_t = vec![-1.0; NUM_RESIDUES * dim];
        let replaced = table.with_residues(&v_t);
        assert_eq!(replaced.residues(), v_t.as_slice());
        assert_eq!(&replaced.values()[NUM_RESIDUES * dim..], &values[NUM_RESIDUES * dim..]);
        let ids: Vec<u32> = input_ids(&[3, 0]).collect();
        assert_eq!(ids, vec![CLS_ROW, 3, 0, SEP_ROW]);
        assert_eq!(PAD_ROW as usize, NUM_RESIDUES + 2);
    }
}
