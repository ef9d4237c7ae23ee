//! Per-residue training: the output mapping reads the last hidden state of every labelled
//! residue (not a pooled vector), and its gradient flows back to exactly those tokens. Also the
//! residues of whole-protein inputs whose outputs are averaged or summed
//! ([`crate::predictor::Pool::Outputs`], [`crate::predictor::Pool::Sum`]).

use super::data::LabelledRows;
use super::error::{Result, TrainError};
use crate::predictor::Pool;

/// The class of a residue without a label ([`crate::predictor::UNLABELLED`]): not trained on.
pub(super) const NO_CLASS: u8 = u8::MAX;

/// The labelled residues of a batch: their last hidden states, targets and token positions.
pub(super) struct LabelledStates {
    /// `labelled × d` hidden states.
    pub states: Vec<f32>,
    /// Each labelled residue's class index.
    pub targets: Vec<f32>,
    /// Each labelled residue's token row in the packed hidden states.
    positions: Vec<usize>,
    dim: usize,
}

impl LabelledStates {
    /// The labelled residues of inputs packed end to end in `hidden` (`[tokens, d]`, each input
    /// `[CLS] residues [SEP]` of `lengths` tokens), `classes` giving each input's residue classes.
    pub fn gather(hidden: &[f32], lengths: &[usize], classes: &[&[u8]], dim: usize) -> Self {
        let mut out = Self {
            states: Vec::new(),
            targets: Vec::new(),
            positions: Vec::new(),
            dim,
        };
        let mut start = 0;
        for (&n, classes) in lengths.iter().zip(classes) {
            assert_eq!(n, classes.len() + 2, "one class per residue token");
            for (j, &class) in classes.iter().enumerate() {
                if class != NO_CLASS {
                    // residue j is token j + 1, after [CLS]
                    let row = start + 1 + j;
                    out.states.extend_from_slice(&hidden[row * dim..(row + 1) * dim]);
                    out.targets.push(f32::from(class));
                    out.positions.push(row);
                }
            }
            start += n;
        }
        out
    }

    /// `∂loss/∂hidden` (`len` values, zeros for tokens without a label) from the gradient of the
    /// gathered states (`labelled × d`).
    pub fn scatter(&self, d_states: &[f32], len: usize) -> Vec<f32> {
        scatter(&self.positions, d_states, self.dim, len)
    }
}

/// Every residue of whole-protein inputs, for an output mapping whose outputs are averaged or
/// summed over each input's residues ([`Pool::reads_residues`]).
pub(super) struct ResidueStates {
    /// `residues × d` features, the inputs' residues end to end.
    pub states: Vec<f32>,
    /// Residues per input.
    counts: Vec<usize>,
    /// Each residue's token row in the packed features.
    positions: Vec<usize>,
    dim: usize,
}

impl ResidueStates {
    /// The residues (no `[CLS]`, `[SEP]`) of inputs packed end to end in `features` (`[tokens,
    /// d]`, each input `[CLS] residues [SEP]` of `lengths` tokens).
    pub fn gather(features: &[f32], lengths: &[usize], dim: usize) -> Self {
        let residues: usize = lengths.iter().map(|n| n.saturating_sub(2)).sum();
        let mut out = Self {
            states: Vec::with_capacity(residues * dim),
            counts: Vec::with_capacity(lengths.len()),
            positions: Vec::with_capacity(residues),
            dim,
        };
        let mut start = 0;
        for &n in lengths {
            let rows = start + 1..start + n.saturating_sub(1).max(1);
            out.states
                .extend_from_slice(&features[rows.start * dim..rows.end * dim]);
            out.counts.push(rows.len());
            out.positions.extend(rows);
            start += n;
        }
        out
    }

    /// Each input's residues' `outputs` (`residues × width`) combined by `pool` (mean or sum);
    /// zeros for an input without residues (training refuses those, see
    /// [`check_every_row_has_residues`]).
    pub fn pool(&self, outputs: &[f32], width: usize, pool: Pool) -> Vec<f32> {
        let mut pooled = vec![0f32; self.counts.len() * width];
        let mut start = 0;
        for (row, &count) in pooled.chunks_exact_mut(width).zip(&self.counts) {
            pool.combine(&outputs[start * width..(start + count) * width], row);
            start += count;
        }
        pooled
    }

    /// `∂loss/∂outputs` of every residue from `∂loss/∂pooled` (`inputs × width`): each input's
    /// gradient goes to each of its residues, divided by their count for a mean.
    pub fn spread(&self, d_pooled: &[f32], width: usize, pool: Pool) -> Vec<f32> {
        let mut d_outputs = Vec::with_capacity(self.positions.len() * width);
        for (g, &count) in d_pooled.chunks_exact(width).zip(&self.counts) {
            let share = pool.residue_share(count);
            for _ in 0..count {
                d_outputs.extend(g.iter().map(|v| v * share));
            }
        }
        d_outputs
    }

    /// `∂loss/∂features` (`len` values, zeros at `[CLS]` and `[SEP]`) from the gradient of the
    /// gathered states.
    pub fn scatter(&self, d_states: &[f32], len: usize) -> Vec<f32> {
        scatter(&self.positions, d_states, self.dim, len)
    }
}

/// `len` gradient values, zeros but at the token rows `positions`, which get the rows of
/// `d_states` (`positions.len() × d`) in order.
fn scatter(positions: &[usize], d_states: &[f32], d: usize, len: usize) -> Vec<f32> {
    let mut d_features = vec![0f32; len];
    for (&row, g) in positions.iter().zip(d_states.chunks_exact(d)) {
        d_features[row * d..(row + 1) * d].copy_from_slice(g);
    }
    d_features
}

/// An error naming the first row of `rows` without residues: outputs averaged over residues
/// need at least one.
pub(super) fn check_every_row_has_residues(rows: &LabelledRows) -> Result<()> {
    match rows.sequences.iter().position(|s| s.trim_end_matches('*').is_empty()) {
        None => Ok(()),
        Some(i) => Err(TrainError::Record {
            source_name: rows.source.clone(),
            record: i + 1,
            id: rows.id(i),
            message: "the sequence is empty; --pool outputs averages over residues and needs one".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_labelled_residues_are_gathered_and_their_gradients_go_back_to_them() {
        // two inputs, d = 2: [CLS] a b [SEP] and [CLS] c [SEP]; b has no label
        let hidden: Vec<f32> = (0..7 * 2).map(|v| v as f32).collect();
        let classes: [&[u8]; 2] = [&[1, NO_CLASS], &[0]];
        let labelled = LabelledStates::gather(&hidden, &[4, 3], &classes, 2);
        assert_eq!(labelled.states, [2.0, 3.0, 10.0, 11.0]);
        assert_eq!(labelled.targets, [1.0, 0.0]);
        let d_hidden = labelled.scatter(&[0.5, 0.5, -1.0, -1.0], hidden.len());
        let mut expected = vec![0f32; 14];
        expected[2..4].copy_from_slice(&[0.5, 0.5]);
        expected[10..12].copy_from_slice(&[-1.0, -1.0]);
        assert_eq!(d_hidden, expected);
    }

    #[test]
    fn residue_outputs_are_averaged_per_input_and_their_gradient_shared_by_its_residues() {
        // two inputs, d = 1: [CLS] a b c [SEP] and [CLS] d [SEP]
        let features = [9.0, 1.0, 2.0, 6.0, 9.0, 9.0, 4.0, 9.0];
        let residues = ResidueStates::gather(&features, &[5, 3], 1);
        assert_eq!(residues.states, [1.0, 2.0, 6.0, 4.0]);
        // the outputs (width 1) are the states themselves: the means are 3 and 4
        assert_eq!(residues.pool(&residues.states, 1, Pool::Outputs), [3.0, 4.0]);
        let d_outputs = residues.spread(&[3.0, 1.0], 1, Pool::Outputs);
        assert_eq!(d_outputs, [1.0, 1.0, 1.0, 1.0]);
        // summed: 9 and 4, and each residue gets its input's whole gradient
        assert_eq!(residues.pool(&residues.states, 1, Pool::Sum), [9.0, 4.0]);
        assert_eq!(residues.spread(&[3.0, 1.0], 1, Pool::Sum), [3.0, 3.0, 3.0, 1.0]);
        let d_features = residues.scatter(&[0.5, 0.25, 0.125, 2.0], features.len());
        assert_eq!(d_features, [0.0, 0.5, 0.25, 0.125, 0.0, 0.0, 2.0, 0.0]);
    }

    #[test]
    fn an_empty_sequence_is_named_when_outputs_are_averaged_over_residues() {
        let rows = |sequences: &[&str]| LabelledRows {
            source: "fl.csv".into(),
            ids: Some(sequences.iter().enumerate().map(|(i, _)| format!("v{i}")).collect()),
            sequences: sequences.iter().map(|s| s.to_string()).collect(),
            labels: vec!["1".into(); sequences.len()],
        };
        assert!(check_every_row_has_residues(&rows(&["MK", "A*"])).is_ok());
        let error = check_every_row_has_residues(&rows(&["MK", "*"]))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("fl.csv: record 2 (id v1)") && error.contains("empty"),
            "{error}"
        );
    }
}
