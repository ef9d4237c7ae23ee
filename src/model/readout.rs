//! Which hidden states the output mapping reads. R2DL's output mapping reads the last layer's
//! states; lower layers keep more of each residue's own identity and its neighbours (what
//! composition and local structure depend on), and reading them costs no extra encoder pass. A
//! readout names layers (0 = the embedding LayerNorm's output, `1..=N` = the transformer layers'
//! outputs) whose states are concatenated in that order, so its features are `layers × d` wide.

use std::fmt;

/// The layers whose hidden states make a model's features; [`Readout::last`] by default.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Readout {
    /// Layer indices in feature order; empty means the last layer alone.
    layers: Vec<usize>,
}

impl Readout {
    /// The last layer's states alone (width d): what `embed` and older predictors read.
    pub fn last() -> Self {
        Self::default()
    }

    /// The states of `layers` (0 = embeddings, `1..=num_layers`), concatenated in that order;
    /// each at most once. `[num_layers]` is [`Readout::last`].
    pub fn of_layers(layers: &[usize], num_layers: usize) -> Result<Self, String> {
        if layers.is_empty() {
            return Err("a readout needs at least one layer".into());
        }
        if let Some(bad) = layers.iter().find(|&&l| l > num_layers) {
            return Err(format!(
                "the model has layers 0 (embeddings) to {num_layers}, not {bad}"
            ));
        }
        if let Some(l) = repeated_layer(layers) {
            return Err(format!("layer {l} is named twice"));
        }
        if layers == [num_layers] {
            return Ok(Self::last());
        }
        Ok(Self {
            layers: layers.to_vec(),
        })
    }

    /// The readout a manifest stores (empty: the last layer), checked against a model only by
    /// [`Readout::of_layers`].
    pub fn from_stored(layers: &[usize]) -> Self {
        Self {
            layers: layers.to_vec(),
        }
    }

    /// The layers as a manifest stores them: empty for [`Readout::last`].
    pub fn stored(&self) -> &[usize] {
        &self.layers
    }

    /// Whether only the last layer is read.
    pub fn is_last(&self) -> bool {
        self.layers.is_empty()
    }

    /// How many layers' states are concatenated.
    pub fn count(&self) -> usize {
        self.layers.len().max(1)
    }

    /// The layer indices in feature order, for a model of `num_layers` layers.
    pub fn taps(&self, num_layers: usize) -> Vec<usize> {
        if self.layers.is_empty() {
            vec![num_layers]
        } else {
            self.layers.clone()
        }
    }
}

impl fmt::Display for Readout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.layers.is_empty() {
            return f.write_str("last");
        }
        let names: Vec<String> = self.layers.iter().map(usize::to_string).collect();
        f.write_str(&names.join(","))
    }
}

/// The first layer `layers` names a second time, if any.
pub(crate) fn repeated_layer(layers: &[usize]) -> Option<usize> {
    (0..layers.len())
        .find(|&i| layers[..i].contains(&layers[i]))
        .map(|i| layers[i])
}

/// Copies `x` (`[tokens, d]`) into block `slot` of each row of `features` (`[tokens, slots · d]`).
pub(crate) fn put_block(features: &mut [f32], x: &[f32], slot: usize, slots: usize, d: usize) {
    for (row, state) in features.chunks_exact_mut(slots * d).zip(x.chunks_exact(d)) {
        row[slot * d..(slot + 1) * d].copy_from_slice(state);
    }
}

/// Adds block `slot` of each row of `features` (`[tokens, slots · d]`) to `x` (`[tokens, d]`).
pub(crate) fn add_block(x: &mut [f32], features: &[f32], slot: usize, slots: usize, d: usize) {
    for (state, row) in x.chunks_exact_mut(d).zip(features.chunks_exact(slots * d)) {
        state
            .iter_mut()
            .zip(&row[slot * d..(slot + 1) * d])
            .for_each(|(s, g)| *s += g);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_are_checked_and_the_last_alone_is_the_default() {
        assert_eq!(Readout::of_layers(&[6], 6), Ok(Readout::last()));
        let mixed = Readout::of_layers(&[0, 2, 6], 6).unwrap();
        assert_eq!(
            (mixed.count(), mixed.taps(6), mixed.to_string()),
            (3, vec![0, 2, 6], "0,2,6".into())
        );
        assert_eq!((Readout::last().count(), Readout::last().taps(6)), (1, vec![6]));
        assert!(
            Readout::of_layers(&[7], 6)
                .unwrap_err()
                .contains("0 (embeddings) to 6, not 7")
        );
        assert!(Readout::of_layers(&[2, 2], 6).unwrap_err().contains("twice"));
        assert!(Readout::of_layers(&[], 6).is_err());
    }

    #[test]
    fn blocks_go_in_and_come_back() {
        let (d, slots) = (2, 3);
        let x = [1.0, 2.0, 3.0, 4.0];
        let mut features = vec![0.0; 2 * slots * d];
        put_block(&mut features, &x, 1, slots, d);
        assert_eq!(features, [0.0, 0.0, 1.0, 2.0, 0.0, 0.0, 0.0, 0.0, 3.0, 4.0, 0.0, 0.0]);
        let mut back = [10.0; 4];
        add_block(&mut back, &features, 1, slots, d);
        assert_eq!(back, [11.0, 12.0, 13.0, 14.0]);
    }
}
