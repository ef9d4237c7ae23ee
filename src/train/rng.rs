//! A small seeded random-number generator (SplitMix64): training is deterministic for a seed on
//! every platform and version, which a library RNG does not promise.

/// SplitMix64.
#[derive(Debug, Clone)]
pub struct Rng(u64);

/// SplitMix64's increment, 2⁶⁴ / φ.
pub const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's finaliser: a bijection of `u64` whose outputs look independent for inputs that
/// differ in one bit (for hashing a key with a seed as well as for the generator).
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The random streams of one training run. Each draws from a generator of its own for the run's
/// seed, so that a change to how one is used never shifts the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Which rows a `--limit` subsample keeps.
    Subsample,
    /// Which rows are held out for validation.
    ValidationSplit,
    /// The output mapping's initial weights.
    HeadInit,
    /// The order and crops of one epoch (1-based).
    Epoch(usize),
}

impl Stream {
    /// The stream number [`Rng::new`] takes (fixed: checkpoints and manifests depend on it).
    fn id(self) -> u64 {
        match self {
            Self::Subsample => 0,
            Self::ValidationSplit => 1,
            Self::HeadInit => 2,
            Self::Epoch(epoch) => 1000 + epoch as u64,
        }
    }
}

impl Rng {
    /// A generator for `seed` and a `stream` (epoch, purpose…), independent of each other.
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut rng = Self(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
        rng.next_u64();
        rng
    }

    /// The generator of `stream` for a run seeded with `seed`.
    pub fn stream(seed: u64, stream: Stream) -> Self {
        Self::new(seed, stream.id())
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN_GAMMA);
        mix(self.0)
    }

    /// A value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// A value in [0, 1) with 53 random bits.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Shuffles `items` (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_same_numbers() {
        let a: Vec<u64> = (0..4).scan(Rng::new(1, 2), |r, _| Some(r.next_u64())).collect();
        let b: Vec<u64> = (0..4).scan(Rng::new(1, 2), |r, _| Some(r.next_u64())).collect();
        let c: Vec<u64> = (0..4).scan(Rng::new(1, 3), |r, _| Some(r.next_u64())).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let mut rng = Rng::new(5, 0);
        assert!((0..1000).all(|_| rng.below(7) < 7));
        let mut items: Vec<u32> = (0..50).collect();
        rng.shuffle(&mut items);
        assert_ne!(items, (0..50).collect::<Vec<_>>());
        items.sort_unstable();
        assert_eq!(items, (0..50).collect::<Vec<_>>());
    }
}
