//! How new a sequence is to a training set: the largest share of its distinct k-mers (k = 5)
//! that any one training sequence also holds. Test rows below 30 % are *novel*: what a user's
//! new sequences look like, where memorised composition no longer helps. Many public test
//! splits are near-duplicates of their training rows, so `r2dl eval` reports the novel subset
//! beside the whole split.

use std::collections::{HashMap, HashSet};

/// The k-mer length novelty is measured with.
pub const NOVELTY_K: usize = 5;

/// Rows sharing less than this share of their k-mers with every training row are novel.
pub const NOVEL_BELOW: f64 = 0.3;

/// The longest k-mer an index takes (a k-mer is packed into a `u64`).
const MAX_K: usize = 7;

/// The distinct k-mers of each training sequence, by k-mer.
#[derive(Debug, Clone)]
pub struct KmerIndex {
    k: usize,
    /// For each k-mer, the training rows that hold it (each row once).
    rows_by_kmer: HashMap<u64, Vec<u32>>,
    rows: usize,
}

impl KmerIndex {
    /// Indexes `sequences` (case ignored) by their distinct k-mers (`k` is clamped to 1–7); a
    /// sequence shorter than `k` counts as one k-mer, itself.
    pub fn new<'a>(sequences: impl IntoIterator<Item = &'a str>, k: usize) -> Self {
        let k = k.clamp(1, MAX_K);
        let mut rows_by_kmer: HashMap<u64, Vec<u32>> = HashMap::new();
        let mut rows = 0;
        for (row, sequence) in sequences.into_iter().enumerate() {
            let row = u32::try_from(row).unwrap_or(u32::MAX);
            for kmer in distinct_kmers(sequence, k) {
                rows_by_kmer.entry(kmer).or_default().push(row);
            }
            rows += 1;
        }
        Self { k, rows_by_kmer, rows }
    }

    /// The largest share (0–1) of `sequence`'s distinct k-mers that one training row holds; 0
    /// for an empty sequence or an empty index.
    pub fn max_shared(&self, sequence: &str) -> f64 {
        let kmers = distinct_kmers(sequence, self.k);
        if kmers.is_empty() || self.rows == 0 {
            return 0.0;
        }
        let mut shared: HashMap<u32, u32> = HashMap::new();
        for kmer in &kmers {
            for &row in self.rows_by_kmer.get(kmer).map_or(&[][..], Vec::as_slice) {
                *shared.entry(row).or_default() += 1;
            }
        }
        let most = shared.values().copied().max().unwrap_or(0);
        f64::from(most) / kmers.len() as f64
    }

    /// The indices of the `sequences` that are novel: sharing less than [`NOVEL_BELOW`] of their
    /// k-mers with every training row.
    pub fn novel<'a>(&self, sequences: impl IntoIterator<Item = &'a str>) -> Vec<usize> {
        sequences
            .into_iter()
            .enumerate()
            .filter(|(_, s)| self.max_shared(s) < NOVEL_BELOW)
            .map(|(i, _)| i)
            .collect()
    }
}

/// K-mers held by more rows than this are passed over when grouping (low-complexity stretches
/// such as `AAAAA` would otherwise link unrelated rows and cost quadratic time).
const MAX_ROWS_PER_KMER: usize = 1000;

/// The group of each of `sequences`: rows are linked when one shares at least [`NOVEL_BELOW`] of
/// its distinct k-mers with the other, and groups are the linked rows, transitively (so a
/// validation split that keeps groups whole holds only rows novel to its training rows).
/// Groups are numbered by their first row.
pub fn homology_groups(sequences: &[String], k: usize) -> Vec<usize> {
    let index = KmerIndex::new(sequences.iter().map(String::as_str), k);
    let mut parent: Vec<usize> = (0..sequences.len()).collect();
    let mut shared: HashMap<u32, u32> = HashMap::new();
    for (row, sequence) in sequences.iter().enumerate() {
        let kmers = distinct_kmers(sequence, index.k);
        shared.clear();
        for kmer in &kmers {
            let rows = index.rows_by_kmer.get(kmer).map_or(&[][..], Vec::as_slice);
            if rows.len() <= MAX_ROWS_PER_KMER {
                rows.iter().for_each(|&other| *shared.entry(other).or_default() += 1);
            }
        }
        for (&other, &count) in &shared {
            if f64::from(count) >= NOVEL_BELOW * kmers.len() as f64 {
                union(&mut parent, row, other as usize);
            }
        }
    }
    (0..sequences.len()).map(|row| find(&mut parent, row)).collect()
}

/// The root of `row`'s set, halving the path on the way.
fn find(parent: &mut [usize], mut row: usize) -> usize {
    while parent[row] != row {
        parent[row] = parent[parent[row]];
        row = parent[row];
    }
    row
}

/// Joins the sets of `a` and `b` under the smaller root (so a group is named by its first row).
fn union(parent: &mut [usize], a: usize, b: usize) {
    let (a, b) = (find(parent, a), find(parent, b));
    parent[a.max(b)] = a.min(b);
}

/// The distinct k-mers of `sequence` (`k` ≤ 7), upper-cased, each packed into a `u64`; the whole
/// sequence when shorter than `k`.
fn distinct_kmers(sequence: &str, k: usize) -> HashSet<u64> {
    let bytes = sequence.trim_end_matches('*').as_bytes();
    if bytes.is_empty() {
        return HashSet::new();
    }
    if bytes.len() < k {
        return HashSet::from([pack(bytes)]);
    }
    bytes.windows(k).map(pack).collect()
}

/// Up to 7 bytes, upper-cased, as one number (a leading 1 keeps lengths apart).
fn pack(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(1u64, |key, b| (key << 8) | u64::from(b.to_ascii_uppercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_kmers_are_counted_against_the_closest_training_row() {
        let index = KmerIndex::new(["ACDEFGHIKL", "MNPQRSTVWY", "acdefXXXXX"], NOVELTY_K);
        // every 5-mer of a training row: shared in full
        assert_eq!(index.max_shared("CDEFGHIK"), 1.0);
        // half of one row and half of another: 2 of its 8 distinct 5-mers with each, so 2 / 8
        // (the closest row counts, not the training set as a whole)
        let mixed = "ACDEFGNPQRST";
        assert_eq!(distinct_kmers(mixed, 5).len(), 8);
        assert_eq!(index.max_shared(mixed), 2.0 / 8.0);
        // case and a terminal stop are ignored; nothing shared is 0
        assert_eq!(index.max_shared("acdef*"), 1.0);
        assert_eq!(index.max_shared("WWWWWWW"), 0.0);
        // shorter than k: the whole sequence is its one k-mer
        let short = KmerIndex::new(["KRK", "AAAAAAA"], NOVELTY_K);
        assert_eq!(short.max_shared("krk"), 1.0);
        assert_eq!(short.max_shared("KRR"), 0.0);
        assert_eq!(short.max_shared(""), 0.0);
        // novel: under 30 % with every row
        assert_eq!(index.novel(["ACDEFGHIKL", "WWWWWWWACDEFW", "YYYYYYYYYY"]), vec![1, 2]);
    }

    #[test]
    fn rows_sharing_kmers_are_grouped_transitively() {
        let rows: Vec<String> = [
            "ACDEFGHIKL", // 0
            "WWWWWWWWWW", // 1
            "CDEFGHIKLM", // 2: shares 5 of 6 with 0
            "GHIKLMNPQR", // 3: 2 of 6 (33 %) with 2 but 1 of 6 with 0: joins 0's group through 2
            "YYYYYYYYYY", // 4
            "wwwwwwwwww", // 5: 1's twin (case ignored)
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(homology_groups(&rows, NOVELTY_K), vec![0, 1, 0, 0, 4, 1]);
        assert_eq!(homology_groups(&[], NOVELTY_K), Vec::<usize>::new());
    }
}
