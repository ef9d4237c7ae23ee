//! Per-residue training: the output mapping reads the last hidden state of every labelled
//! residue (not a pooled vector), and its gradient flows back to exactly those tokens.

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
        let d = self.dim;
        let mut d_hidden = vec![0f32; len];
        for (&row, g) in self.positions.iter().zip(d_states.chunks_exact(d)) {
            d_hidden[row * d..(row + 1) * d].copy_from_slice(g);
        }
        d_hidden
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
}
