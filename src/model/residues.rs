//! Per-residue outputs: the features of every residue (its last hidden state, or the states the
//! model's readout names; not pooled), turned into a few values per residue (a per-residue
//! predictor's class scores) batch by batch, so that memory holds `width` values per residue
//! rather than the features.
//!
//! Sequences longer than the model's positions are cut into the same overlapping windows as
//! [`ReprogrammedModel::embed`]; each residue's values come from the window in which it lies
//! farthest from an edge, where it sees the most context on both sides.
//!
//! The same token states, pooled in segments over the whole sequence, are what
//! [`ReprogrammedModel::embed`] gives for a readout of more than one segment.

use super::batch::window_coverage;
use super::error::{ModelError, Result};
use super::input_table::input_ids;
use super::pooling;
use super::reprogrammed::{Embeddings, Engine, ReprogrammedModel, tokenize_column};
use super::vocab::InvalidResidue;

/// `width` values for each residue of each row.
#[derive(Debug, Clone, PartialEq)]
pub struct ResidueOutputs {
    /// Values per residue.
    pub width: usize,
    /// Per row, `residues × width` values; `None` for rows without (NULL in, or NULL by the
    /// invalid-residue policy).
    pub rows: Vec<Option<Vec<f32>>>,
}

/// Maps the features of `n` residues (`n × feature width`, row-major; the residues of inputs of
/// the given lengths, end to end) to `n × width` values.
pub type ResidueMap<'m> = dyn Fn(&[f32], &[usize]) -> Vec<f32> + 'm;

impl ReprogrammedModel {
    /// `map` applied to the features of every residue of each sequence; rows come back
    /// in input order, each with as many residues as its tokens (a terminal `*` is not one).
    pub fn residue_outputs<'a>(
        &self,
        sequences: impl IntoIterator<Item = Option<&'a str>>,
        policy: InvalidResidue,
        width: usize,
        map: &ResidueMap,
    ) -> Result<ResidueOutputs> {
        self.residue_outputs_of_tokens(&tokenize_column(sequences, policy)?, width, map)
    }

    /// [`Self::residue_outputs`] on residue tokens (`None` rows stay without values).
    pub fn residue_outputs_of_tokens(
        &self,
        rows: &[Option<Vec<u8>>],
        width: usize,
        map: &ResidueMap,
    ) -> Result<ResidueOutputs> {
        let mut outputs: Vec<Option<Vec<f32>>> = rows
            .iter()
            .map(|t| t.as_ref().map(|t| vec![0f32; t.len() * width]))
            .collect();
        // per row and residue, the distance to the nearest edge of the window it was taken from
        let mut taken_at: Vec<Vec<Option<usize>>> = rows
            .iter()
            .map(|t| vec![None; t.as_ref().map_or(0, Vec::len)])
            .collect();
        self.for_each_window_batch(rows, |batch, inputs| {
            let states = self.token_states(inputs, false)?;
            let lengths: Vec<usize> = inputs.iter().map(|t| t.len()).collect();
            let values = map(&states, &lengths);
            let residues: usize = lengths.iter().sum();
            assert_eq!(
                values.len(),
                residues * width,
                "the map gives `width` values per residue"
            );
            let mut offset = 0;
            for w in batch {
                if let Some(out) = outputs[w.row].as_mut() {
                    for j in 0..w.len {
                        let position = w.start + j;
                        let distance = j.min(w.len - 1 - j);
                        let best = &mut taken_at[w.row][position];
                        if best.is_none_or(|b| distance > b) {
                            *best = Some(distance);
                            let from = (offset + j) * width;
                            out[position * width..(position + 1) * width].copy_from_slice(&values[from..from + width]);
                        }
                    }
                }
                offset += w.len;
            }
            Ok::<_, ModelError>(())
        })?;
        Ok(ResidueOutputs { width, rows: outputs })
    }

    /// Each sequence's token features pooled in the readout's segments over the whole
    /// sequence (`[CLS] residues [SEP]`). A long sequence's windows each hold some of its
    /// residues (and the first its `[CLS]`, the last its `[SEP]`); a residue in several windows
    /// counts as the mean of its features in them.
    pub(super) fn embed_in_segments(&self, rows: &[Option<Vec<u8>>]) -> Result<Embeddings> {
        let (width, segments) = (self.feature_width(), self.readout().segments());
        let dim = segments * width;
        let mut values = vec![0f32; rows.len() * dim];
        let coverage: Vec<Option<Vec<u32>>> = rows
            .iter()
            .map(|t| t.as_ref().and_then(|t| window_coverage(t.len(), self.max_residues())))
            .collect();
        self.for_each_window_batch(rows, |batch, inputs| {
            let states = self.token_states(inputs, true)?;
            let mut windows_states = states.chunks_exact(width);
            for (w, input) in batch.iter().zip(inputs) {
                let residues = rows[w.row].as_ref().map_or(0, Vec::len);
                let out = &mut values[w.row * dim..(w.row + 1) * dim];
                for (j, state) in windows_states.by_ref().take(input.len() + 2).enumerate() {
                    // the window's token j as the sequence's token: residue `w.start + j - 1`
                    let position = if j == 0 {
                        (w.start == 0).then_some(0)
                    } else if j == input.len() + 1 {
                        (w.start + w.len == residues).then_some(residues + 1)
                    } else {
                        Some(w.start + j)
                    };
                    let Some(position) = position else { continue };
                    let windows = match &coverage[w.row] {
                        Some(c) if (1..=residues).contains(&position) => c[position - 1],
                        _ => 1,
                    };
                    pooling::add_token(out, state, position, residues + 2, segments, 1.0 / windows as f32);
                }
            }
            Ok::<_, ModelError>(())
        })?;
        let valid = rows.iter().map(Option::is_some).collect();
        Ok(Embeddings { dim, values, valid })
    }

    /// The features of the residues of inputs that fit the model, with their `[CLS]` and
    /// `[SEP]` when `with_ends`: `[Σ tokens, feature width]`, by the engine in use.
    fn token_states(&self, inputs: &[&[u8]], with_ends: bool) -> Result<Vec<f32>> {
        let d = self.feature_width();
        let ends = if with_ends { 2 } else { 0 };
        let tokens: usize = inputs.iter().map(|t| t.len() + ends).sum();
        let mut out = Vec::with_capacity(tokens * d);
        match self.packed() {
            Some((encoder, table)) if self.engine() == Engine::Packed => {
                let ids: Vec<Vec<u32>> = inputs.iter().map(|tokens| input_ids(tokens).collect()).collect();
                encoder.encode_then(table.values(), &ids, self.readout(), |hidden, lengths| {
                    if with_ends {
                        out.extend_from_slice(hidden);
                    } else {
                        let mut start = 0;
                        for &n in lengths {
                            out.extend_from_slice(&hidden[(start + 1) * d..(start + n - 1) * d]);
                            start += n;
                        }
                    }
                });
            }
            _ => {
                let (ids, mask) = self.batch_ids(inputs)?;
                let hidden: Vec<Vec<Vec<f32>>> = self.forward_ids(&ids, &mask)?.to_vec3()?;
                for (states, tokens) in hidden.iter().zip(inputs) {
                    let kept = if with_ends {
                        0..tokens.len() + 2
                    } else {
                        1..tokens.len() + 1
                    };
                    states[kept].iter().for_each(|s| out.extend_from_slice(s));
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;
    use crate::model::Theta;
    use crate::model::batch::windows;
    use crate::model::testing::write_tiny_bert;

    fn tiny() -> (tempfile::TempDir, ReprogrammedModel) {
        let dir = tempfile::tempdir().expect("temp dir");
        write_tiny_bert(dir.path(), "", 3).expect("tiny model");
        let model = ReprogrammedModel::load(dir.path(), &Device::Cpu).expect("loads");
        (dir, model)
    }

    /// The hidden states themselves (width d).
    fn identity(states: &[f32], _lengths: &[usize]) -> Vec<f32> {
        states.to_vec()
    }

    #[test]
    fn every_residue_gets_its_values_in_order_for_every_engine_and_batching() {
        let (_dir, model) = tiny();
        let d = model.dim();
        let long = "MKTAYIAKQRQISFVKSHFSRQLEEWWACD";
        assert!(long.len() > model.max_residues());
        let input = [Some("MKT"), None, Some(""), Some("gly*"), Some(long)];
        let packed = model
            .residue_outputs(input, InvalidResidue::Error, d, &identity)
            .unwrap();
        let lengths: Vec<Option<usize>> = packed.rows.iter().map(|r| r.as_ref().map(|v| v.len() / d)).collect();
        assert_eq!(lengths, [Some(3), None, Some(0), Some(3), Some(long.len())]);

        let candle = model
            .with_theta(&Theta::one_hot(model.english_tokens()))
            .unwrap()
            .with_engine(Engine::Candle);
        let one_by_one = model
            .with_theta(&Theta::one_hot(model.english_tokens()))
            .unwrap()
            .with_engine(Engine::Candle)
            .with_batch_settings(crate::model::BatchSettings {
                token_budget: 1,
                max_batch: 1,
            });
        for other in [&candle, &one_by_one] {
            let padded = other
                .residue_outputs(input, InvalidResidue::Error, d, &identity)
                .unwrap();
            for (a, b) in packed.rows.iter().zip(&padded.rows) {
                let (Some(a), Some(b)) = (a, b) else {
                    assert_eq!(a.is_none(), b.is_none());
                    continue;
                };
                let diff = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
                assert!(diff < 1e-5, "{diff}");
            }
        }
        // a short sequence's residues are its single window's, whatever is around it
        let alone = model
            .residue_outputs([Some("MKT")], InvalidResidue::Error, d, &identity)
            .unwrap();
        assert_eq!(alone.rows[0], packed.rows[0]);
    }

    #[test]
    fn long_sequences_take_each_residue_from_its_most_central_window() {
        let (_dir, model) = tiny();
        let d = model.dim();
        let protein = "MKTAYIAKQRQISFVKSHFSRQLEEWWACDEFGHIK";
        let max = model.max_residues();
        let ws = windows(protein.len(), max, max / 4);
        assert!(ws.len() >= 3, "{ws:?}");
        let whole = model
            .residue_outputs([Some(protein)], InvalidResidue::Error, d, &identity)
            .unwrap();
        let whole = whole.rows[0].as_ref().unwrap();
        let parts = model
            .residue_outputs(
                ws.iter().map(|&(s, l)| Some(&protein[s..s + l])),
                InvalidResidue::Error,
                d,
                &identity,
            )
            .unwrap();
        for position in 0..protein.len() {
            // the window in which `position` is farthest from an edge (the first of equals)
            let (w, _) = ws
                .iter()
                .enumerate()
                .filter(|(_, (s, l))| (*s..s + l).contains(&position))
                .map(|(w, (s, l))| (w, (position - s).min(s + l - 1 - position)))
                .fold((usize::MAX, None), |best, (w, dist)| match best {
                    (_, Some(b)) if b >= dist => best,
                    _ => (w, Some(dist)),
                });
            let offset = position - ws[w].0;
            let expected = &parts.rows[w].as_ref().unwrap()[offset * d..(offset + 1) * d];
            let diff = whole[position * d..(position + 1) * d]
                .iter()
                .zip(expected)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f32::max);
            assert!(diff < 1e-5, "residue {position}: {diff}");
        }
    }

    #[test]
    fn the_map_sees_every_residue_once_and_bad_residues_follow_the_policy() {
        let (_dir, model) = tiny();
        let count = |states: &[f32], _: &[usize]| vec![1.0; states.len() / model.dim()];
        let out = model
            .residue_outputs([Some("ACD"), Some("AC-D")], InvalidResidue::Null, 1, &count)
            .unwrap();
        assert_eq!(out.rows, [Some(vec![1.0; 3]), None]);
        let error = model
            .residue_outputs([Some("AC-D")], InvalidResidue::Error, 1, &count)
            .unwrap_err()
            .to_string();
        assert!(error.contains("'-' at position 3"), "{error}");
    }
}
