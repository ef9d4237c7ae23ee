//! Labelled sequences for training and evaluation: read from CSV / Parquet (`sequence`, `label`
//! and optionally `id` columns), FASTA (`label=` in the description) or any SQL query, through
//! the same DataFusion session as `r2dl sql`; then split and subsampled, stratified and seeded.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::prelude::SessionContext;
use sha2::{Digest, Sha256};

use super::error::{Result, TrainError};
use super::rng::Rng;
use crate::datasource::is_fasta_name;
use crate::predictor::Kind;

/// Where labelled rows come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataSource {
    /// A CSV, Parquet or FASTA file.
    File(PathBuf),
    /// A SQL query returning `sequence` and `label` columns.
    Query(String),
}

impl fmt::Display for DataSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataSource::File(path) => write!(f, "{}", path.display()),
            DataSource::Query(sql) => write!(f, "query `{sql}`"),
        }
    }
}

impl DataSource {
    /// The query that reads this source.
    fn sql(&self) -> String {
        match self {
            DataSource::Query(sql) => sql.clone(),
            DataSource::File(path) => {
                let name = path.to_string_lossy().replace('\'', "''");
                if is_fasta_name(&name) {
                    format!(
                        "SELECT id, sequence, regexp_match(description, '(?:^|\\s)label=(\\S+)')[1] AS label FROM '{name}'"
                    )
                } else {
                    format!("SELECT * FROM '{name}'")
                }
            }
        }
    }
}

/// Labelled rows as read, in source order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LabelledRows {
    /// The file or query, for messages and the manifest.
    pub source: String,
    /// Record ids, when the source has them.
    pub ids: Option<Vec<String>>,
    /// The sequences.
    pub sequences: Vec<String>,
    /// The labels, as text.
    pub labels: Vec<String>,
}

impl LabelledRows {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.sequences.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.sequences.is_empty()
    }

    /// The id of row `i`, if the source has ids.
    pub fn id(&self, i: usize) -> Option<String> {
        self.ids.as_ref().map(|ids| ids[i].clone())
    }

    /// The rows at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Self {
        Self {
            source: self.source.clone(),
            ids: self
                .ids
                .as_ref()
                .map(|ids| indices.iter().map(|&i| ids[i].clone()).collect()),
            sequences: indices.iter().map(|&i| self.sequences[i].clone()).collect(),
            labels: indices.iter().map(|&i| self.labels[i].clone()).collect(),
        }
    }

    /// SHA-256 over `sequence \t label \n` of every row, in order.
    pub fn fingerprint(&self) -> String {
        let mut hasher = Sha256::new();
        for (s, l) in self.sequences.iter().zip(&self.labels) {
            hasher.update(s.as_bytes());
            hasher.update(b"\t");
            hasher.update(l.as_bytes());
            hasher.update(b"\n");
        }
        hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// An error about row `i`.
    pub fn record_error(&self, i: usize, message: String) -> TrainError {
        TrainError::Record {
            source_name: self.source.clone(),
            record: i + 1,
            id: self.id(i),
            message,
        }
    }
}

/// Reads `source` through `ctx` (a session with r2dl's file tables), in source order: one
/// partition, since collecting a scan split into byte ranges interleaves them as they finish, and
/// the `--limit` subsample, the held-out rows, the epochs' shuffles and the sums of a closed-form
/// fit all follow row order (labelled sets are small next to the model's cost of reading them).
pub async fn read_labelled(ctx: &SessionContext, source: &DataSource) -> Result<LabelledRows> {
    let mut state = ctx.state();
    state.config_mut().options_mut().execution.target_partitions = 1;
    let ctx = SessionContext::new_with_state(state);
    let source_name = source.to_string();
    let query_error = |error| TrainError::Query {
        source_name: source_name.clone(),
        error: Box::new(error),
    };
    let batches = ctx
        .sql(&source.sql())
        .await
        .map_err(query_error)?
        .collect()
        .await
        .map_err(query_error)?;
    let mut rows = LabelledRows {
        source: source_name.clone(),
        ..Default::default()
    };
    let schema = match batches.first() {
        Some(batch) => batch.schema(),
        None => {
            return Err(TrainError::Data {
                source_name,
                message: "has no rows".into(),
            });
        }
    };
    for column in ["sequence", "label"] {
        if schema.column_with_name(column).is_none() {
            return Err(TrainError::Data {
                source_name,
                message: format!(
                    "has no `{column}` column (it has: {}); labelled data needs `sequence` and `label`",
                    schema
                        .fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
    }
    let has_ids = schema.column_with_name("id").is_some();
    let mut ids = Vec::new();
    for batch in &batches {
        let text = |name: &str| strings(batch, name, &source_name);
        let (sequences, labels) = (text("sequence")?, text("label")?);
        let batch_ids = if has_ids {
            text("id")?
        } else {
            vec![None; batch.num_rows()]
        };
        for ((sequence, label), id) in sequences.into_iter().zip(labels).zip(batch_ids) {
            let record = rows.sequences.len() + 1;
            let missing = |what: &str| TrainError::Record {
                source_name: source_name.clone(),
                record,
                id: id.clone(),
                message: format!("has no {what}"),
            };
            let sequence = sequence.ok_or_else(|| missing("sequence"))?;
            let label = label.filter(|l| !l.trim().is_empty()).ok_or_else(|| {
                missing(
                    if matches!(source, DataSource::File(p) if is_fasta_name(&p.to_string_lossy())) {
                        "label (FASTA records need `label=VALUE` in the description)"
                    } else {
                        "label"
                    },
                )
            })?;
            rows.sequences.push(sequence);
            rows.labels.push(label.trim().to_string());
            ids.push(id.unwrap_or_default());
        }
    }
    rows.ids = has_ids.then_some(ids);
    Ok(rows)
}

/// Column `name` of `batch` as optional strings (numbers are formatted).
fn strings(batch: &RecordBatch, name: &str, source_name: &str) -> Result<Vec<Option<String>>> {
    let fail = |message: String| TrainError::Data {
        source_name: source_name.to_string(),
        message,
    };
    let column = batch
        .column_by_name(name)
        .ok_or_else(|| fail(format!("has no `{name}` column")))?;
    let column = cast(column, &DataType::Utf8).map_err(|e| fail(format!("column `{name}`: {e}")))?;
    let column = column.as_string::<i32>();
    Ok((0..column.len())
        .map(|i| column.is_valid(i).then(|| column.value(i).to_string()))
        .collect())
}

/// What the labels say about the task: two values are a binary task; more, mostly numbers, a
/// regression (so one `NaN` or `NA` among numbers is an error naming its record, not a class);
/// more text values a multi-class one.
pub fn infer_kind(labels: &[String]) -> Kind {
    let mut distinct: Vec<&str> = labels.iter().map(String::as_str).collect();
    distinct.sort_unstable();
    distinct.dedup();
    let numbers = labels
        .iter()
        .filter(|l| l.parse::<f64>().is_ok_and(f64::is_finite))
        .count();
    let numeric = numbers * 2 > labels.len();
    match distinct.len() {
        2 => Kind::Binary,
        _ if numeric => Kind::Regression,
        _ => Kind::Multiclass,
    }
}

/// What the rows say about the task: labels with one character per residue (each as long as
/// its sequence, some longer than one character, not all numbers) are a per-residue task;
/// otherwise as [`infer_kind`] of the labels.
pub fn infer_kind_of(rows: &LabelledRows) -> Kind {
    let residues = |s: &str| s.strip_suffix('*').unwrap_or(s).chars().count();
    let per_residue = rows.labels.iter().any(|l| l.chars().count() > 1)
        && rows
            .sequences
            .iter()
            .zip(&rows.labels)
            .all(|(s, l)| l.chars().count() == residues(s))
        && !rows.labels.iter().all(|l| l.parse::<f64>().is_ok());
    if per_residue {
        Kind::Residue
    } else {
        infer_kind(&rows.labels)
    }
}

/// The positive class of two labels: the one whose negation the other spells (`AMP`/`nonAMP`,
/// `toxic`/`nontoxic`, `soluble`/`insoluble`), else `1`, `true`, `yes` or `positive`, else the
/// second in sorted order.
pub fn positive_label(labels: &[String; 2]) -> String {
    let negates = |neg: &str, pos: &str| {
        let (neg, pos) = (neg.to_ascii_lowercase(), pos.to_ascii_lowercase());
        ["non", "non_", "non-", "not", "not_", "not-", "in", "un"]
            .iter()
            .any(|prefix| neg.strip_prefix(prefix) == Some(pos.as_str()))
    };
    for (a, b) in [(0, 1), (1, 0)] {
        if negates(&labels[a], &labels[b]) {
            return labels[b].clone();
        }
    }
    for (a, b) in [(0, 1), (1, 0)] {
        if ["1", "true", "yes", "positive", "pos"].contains(&labels[a].to_ascii_lowercase().as_str())
            && !["1", "true", "yes", "positive", "pos"].contains(&labels[b].to_ascii_lowercase().as_str())
        {
            return labels[a].clone();
        }
    }
    labels[1].clone()
}

/// About `take` of the row indices, whole groups at a time (`groups[i]` is row `i`'s group, as
/// [`super::novelty::homology_groups`] gives): groups are drawn in `rng`'s order and taken while
/// they fit in `take` and, with `stratify`, in each label's share (as [`stratified_split`]'s).
/// Returns (taken, rest), each in source order; taken may fall short of `take` when only large
/// groups are left.
pub fn grouped_split(
    labels: &[String],
    groups: &[usize],
    take: usize,
    stratify: bool,
    rng: &mut Rng,
) -> (Vec<usize>, Vec<usize>) {
    let n = labels.len();
    let mut members: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for (row, &group) in groups.iter().enumerate().take(n) {
        members.entry(group).or_default().push(row);
    }
    let mut order: Vec<Vec<usize>> = members.into_values().collect();
    rng.shuffle(&mut order);
    // each label's quota: its share of `take` (one label for all when not stratified)
    let key = |row: usize| if stratify { labels[row].as_str() } else { "" };
    let mut quota: HashMap<&str, usize> = HashMap::new();
    for row in 0..n {
        *quota.entry(key(row)).or_default() += 1;
    }
    for count in quota.values_mut() {
        *count = ((*count * take) as f64 / n.max(1) as f64).round() as usize;
    }
    let mut taken = Vec::with_capacity(take);
    let mut used: HashMap<&str, usize> = HashMap::new();
    for group in order {
        if taken.len() + group.len() > take {
            continue;
        }
        let mut wanted: HashMap<&str, usize> = HashMap::new();
        group.iter().for_each(|&row| *wanted.entry(key(row)).or_default() += 1);
        let fits = wanted
            .iter()
            .all(|(label, &count)| used.get(label).copied().unwrap_or(0) + count <= quota[label]);
        if fits {
            wanted
                .iter()
                .for_each(|(label, &count)| *used.entry(label).or_default() += count);
            taken.extend(group);
        }
    }
    taken.sort_unstable();
    let mut is_taken = vec![false; n];
    taken.iter().for_each(|&i| is_taken[i] = true);
    let rest = (0..n).filter(|&i| !is_taken[i]).collect();
    (taken, rest)
}

/// `take` of the row indices `0..labels.len()`, drawn with `rng` and stratified by label (each
/// label keeps its share, rounded, at least one row when it has any); the rest follow. Returns
/// (taken, rest), each in source order.
pub fn stratified_split(labels: &[String], take: usize, stratify: bool, rng: &mut Rng) -> (Vec<usize>, Vec<usize>) {
    let n = labels.len();
    let take = take.min(n);
    let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
    if stratify {
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| labels[a].cmp(&labels[b]));
        for i in order {
            match groups.last_mut() {
                Some((label, members)) if *label == labels[i] => members.push(i),
                _ => groups.push((&labels[i], vec![i])),
            }
        }
    } else {
        groups.push(("", (0..n).collect()));
    }
    let mut taken = Vec::with_capacity(take);
    let mut quotas: Vec<usize> = groups
        .iter()
        .map(|(_, m)| ((m.len() * take) as f64 / n.max(1) as f64).round() as usize)
        .map(|q| q.max(usize::from(take > 0)))
        .collect();
    // fix rounding so that the quotas add up to `take`
    while quotas.iter().sum::<usize>() > take {
        let largest = (0..quotas.len()).max_by_key(|&g| quotas[g]).unwrap_or(0);
        quotas[largest] -= 1;
    }
    while quotas.iter().sum::<usize>() < take {
        let roomiest = (0..quotas.len())
            .max_by_key(|&g| groups[g].1.len() - quotas[g])
            .unwrap_or(0);
        quotas[roomiest] += 1;
    }
    for ((_, members), quota) in groups.iter_mut().zip(quotas) {
        rng.shuffle(members);
        taken.extend_from_slice(&members[..quota.min(members.len())]);
    }
    taken.sort_unstable();
    let mut is_taken = vec![false; n];
    taken.iter().for_each(|&i| is_taken[i] = true);
    let rest = (0..n).filter(|&i| !is_taken[i]).collect();
    (taken, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows come in file order however many partitions the session scans a file with: the
    /// `--limit` subsample, the held-out validation rows, the shuffles and the record numbers in
    /// errors all depend on it (a plain `collect` interleaved the partitions by timing).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rows_come_in_file_order_from_a_partitioned_scan() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let (csv, fasta) = (dir.path().join("rows.csv"), dir.path().join("rows.fasta"));
        // 4,000 rows `r{i}`; the CSV's labelled by `label(i)`, the FASTA's by `i`
        let csv_text = |label: &dyn Fn(usize) -> String| -> String {
            std::iter::once("id,sequence,label\n".to_string())
                .chain((0..4000).map(|i| format!("r{i},ACDEFGHIKLMNPQRSTVWY,{}\n", label(i))))
                .collect()
        };
        let fasta_text: String = (0..4000)
            .map(|i| format!(">r{i} label={i}\nACDEFGHIKLMNPQRSTVWY\n"))
            .collect();
        std::fs::write(&csv, csv_text(&|i| i.to_string())).expect("write rows");
        std::fs::write(&fasta, fasta_text).expect("write records");
        let config = datafusion::prelude::SessionConfig::new()
            .with_target_partitions(4)
            .with_repartition_file_min_size(0)
            .with_batch_size(64);
        let ctx = crate::session_context(config).expect("session");
        let expected: Vec<String> = (0..4000).map(|i| i.to_string()).collect();
        for path in [csv, fasta] {
            for _ in 0..8 {
                let rows = read_labelled(&ctx, &DataSource::File(path.clone()))
                    .await
                    .expect("rows");
                let first_out_of_order = rows.labels.iter().zip(&expected).position(|(got, want)| got != want);
                assert_eq!(
                    (rows.labels.len(), first_out_of_order),
                    (expected.len(), None),
                    "{}",
                    path.display()
                );
            }
        }
        // a row without a label is named by its place in the file, not in the order read
        let unlabelled = dir.path().join("unlabelled.csv");
        let text = csv_text(&|i| if i == 2999 { String::new() } else { i.to_string() });
        std::fs::write(&unlabelled, text).expect("write rows");
        for _ in 0..8 {
            match read_labelled(&ctx, &DataSource::File(unlabelled.clone())).await {
                Err(TrainError::Record { record, id, .. }) => {
                    assert_eq!((record, id.as_deref()), (3000, Some("r2999")))
                }
                other => panic!("expected the unlabelled record, got {other:?}"),
            }
        }
    }

    fn labels(spec: &[(&str, usize)]) -> Vec<String> {
        spec.iter()
            .flat_map(|(l, n)| std::iter::repeat_n(l.to_string(), *n))
            .collect()
    }

    #[test]
    fn kinds_and_positive_labels() {
        assert_eq!(infer_kind(&labels(&[("AMP", 3), ("nonAMP", 2)])), Kind::Binary);
        assert_eq!(infer_kind(&labels(&[("0", 3), ("1", 2)])), Kind::Binary);
        assert_eq!(
            infer_kind(&labels(&[("0.5", 1), ("0.25", 1), ("1e-3", 1)])),
            Kind::Regression
        );
        assert_eq!(infer_kind(&labels(&[("a", 1), ("b", 1), ("c", 1)])), Kind::Multiclass);
        // one missing value among numbers is a regression whose bad record is reported, not 22 classes
        assert_eq!(
            infer_kind(&labels(&[("0.5", 1), ("0.25", 1), ("1e-3", 1), ("NaN", 1)])),
            Kind::Regression
        );
        let rows = |pairs: &[(&str, &str)]| LabelledRows {
            sequences: pairs.iter().map(|(s, _)| s.to_string()).collect(),
            labels: pairs.iter().map(|(_, l)| l.to_string()).collect(),
            ..Default::default()
        };
        assert_eq!(infer_kind_of(&rows(&[("MKT", "CHH"), ("AC*", "-E")])), Kind::Residue);
        // a number as long as its sequence is a regression label, one letter a class
        assert_eq!(
            infer_kind_of(&rows(&[("MKT", "1.5"), ("AC", "2"), ("A", "3")])),
            Kind::Regression
        );
        assert_eq!(infer_kind_of(&rows(&[("M", "a"), ("A", "b")])), Kind::Binary);
        assert_eq!(infer_kind_of(&rows(&[("MKT", "CHH"), ("AC", "CHH")])), Kind::Multiclass);
        let pair = |a: &str, b: &str| positive_label(&[a.to_string(), b.to_string()]);
        assert_eq!(pair("AMP", "nonAMP"), "AMP");
        assert_eq!(pair("nontoxic", "toxic"), "toxic");
        assert_eq!(pair("insoluble", "soluble"), "soluble");
        assert_eq!(pair("binder", "nonbinder"), "binder");
        assert_eq!(pair("0", "1"), "1");
        assert_eq!(pair("cat", "dog"), "dog");
    }

    #[test]
    fn stratified_split_keeps_shares_and_is_seeded() {
        let labels = labels(&[("a", 80), ("b", 20)]);
        let (taken, rest) = stratified_split(&labels, 10, true, &mut Rng::new(3, 0));
        assert_eq!(taken.len(), 10);
        assert_eq!(rest.len(), 90);
        assert_eq!(taken.iter().filter(|&&i| labels[i] == "b").count(), 2);
        let (again, _) = stratified_split(&labels, 10, true, &mut Rng::new(3, 0));
        assert_eq!(taken, again);
        let (other, _) = stratified_split(&labels, 10, true, &mut Rng::new(4, 0));
        assert_ne!(taken, other);
        // a rare class still gets a row
        let rare = super::tests::labels(&[("a", 99), ("b", 1)]);
        let (taken, _) = stratified_split(&rare, 5, true, &mut Rng::new(1, 0));
        assert!(taken.iter().any(|&i| rare[i] == "b"));
        let (all, none) = stratified_split(&rare, 500, false, &mut Rng::new(1, 0));
        assert_eq!((all.len(), none.len()), (100, 0));
    }

    #[test]
    fn grouped_split_keeps_groups_whole_and_label_shares() {
        // 100 rows, 80 "a" and 20 "b", in groups of two rows of one label
        let labels = labels(&[("a", 80), ("b", 20)]);
        let groups: Vec<usize> = (0..100).map(|row| row / 2 * 2).collect();
        let (taken, rest) = grouped_split(&labels, &groups, 10, true, &mut Rng::new(3, 0));
        assert_eq!((taken.len(), rest.len()), (10, 90));
        assert_eq!(taken.iter().filter(|&&i| labels[i] == "b").count(), 2);
        for &row in &taken {
            assert!(taken.contains(&(row ^ 1)), "row {row}'s group is split");
        }
        let (again, _) = grouped_split(&labels, &groups, 10, true, &mut Rng::new(3, 0));
        assert_eq!(taken, again);
        // a group larger than what is wanted is not taken; nothing fits, nothing is taken
        let one_group = vec![0; 100];
        let (taken, rest) = grouped_split(&labels, &one_group, 10, false, &mut Rng::new(3, 0));
        assert_eq!((taken.len(), rest.len()), (0, 100));
    }
}
