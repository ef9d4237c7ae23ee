//! Which hidden states the output mapping reads, and in how many segments a protein's are
//! pooled. R2DL's output mapping reads the mean of the last layer's states; lower layers keep
//! more of each residue's own identity and its neighbours (what composition and local structure
//! depend on), and reading them costs no extra encoder pass. A readout names layers (0 = the
//! embedding LayerNorm's output, `1..=N` = the transformer layers' outputs) whose states are
//! concatenated in that order, so each token's features are `layers × d` wide; pooled, they are
//! the mean over the whole protein or, with `segments` K > 1, the means of its K equal stretches
//! side by side ([`crate::model`]'s pooling), `K × layers × d` values.

use std::fmt;

/// The most segments a protein's states may be pooled in.
pub const MAX_SEGMENTS: usize = 64;

/// The layers whose hidden states make a model's features, and the segments they are pooled
/// in; [`Readout::last`] by default.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Readout {
    /// Layer indices in feature order; empty means the last layer alone.
    layers: Vec<usize>,
    /// Stretches of equal length whose means make the pooled features (1: the whole protein).
    segments: usize,
}

impl Default for Readout {
    fn default() -> Self {
        Self {
            layers: Vec::new(),
            segments: 1,
        }
    }
}

impl Readout {
    /// The last layer's states alone (width d), pooled over the whole protein: what `embed`
    /// and older predictors read.
    pub fn last() -> Self {
        Self::default()
    }

    /// The same layers pooled in `segments` equal stretches of each input (1 to
    /// [`MAX_SEGMENTS`]).
    pub fn with_segments(self, segments: usize) -> Result<Self, String> {
        if !(1..=MAX_SEGMENTS).contains(&segments) {
            return Err(format!("segments must be 1 to {MAX_SEGMENTS}, not {segments}"));
        }
        Ok(Self { segments, ..self })
    }

    /// Stretches of each input whose means make the pooled features (1: the whole input).
    pub fn segments(&self) -> usize {
        self.segments
    }

    /// Width of the pooled features of a model `d` wide: `segments × layers × d`.
    pub fn pooled_width(&self, d: usize) -> usize {
        self.segments * self.count() * d
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
            segments: 1,
        })
    }

    /// The readout a manifest stores (empty: the last layer), checked against a model only by
    /// [`Readout::of_layers`].
    pub fn from_stored(layers: &[usize]) -> Self {
        Self {
            layers: layers.to_vec(),
            segments: 1,
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
            f.write_str("last")?;
        } else {
            let names: Vec<String> = self.layers.iter().map(usize::to_string).collect();
            f.write_str(&names.join(","))?;
        }
        match self.segments {
            1 => Ok(()),
            k => write!(f, " in {k} segments"),
        }
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
    fn segments_are_checked_and_widen_the_pooled_features() {
        let mixed = Readout::of_layers(&[0, 6], 6).unwrap();
        assert_eq!(mixed.pooled_width(384), 768);
        let segmented = mixed.clone().with_segments(10).unwrap();
        assert_eq!(
            (segmented.segments(), segmented.pooled_width(384), segmented.to_string()),
            (10, 7680, "0,6 in 10 segments".into())
        );
        assert_ne!(segmented, mixed, "models with either readout are told apart");
        assert_eq!(Readout::last().with_segments(1), Ok(Readout::last()));
        assert!(mixed.clone().with_segments(0).unwrap_err().contains("1 to 64, not 0"));
        assert!(mixed.with_segments(65).is_err());
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
