//! Multi-class and regression predictors, trained on a tiny model, become SQL functions of the
//! right type: `predict_<name>` returns a label (Utf8) or a number (Float64), NULL for NULL.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::prelude::SessionConfig;
use r2dl::model::testing::tiny_model_spec;
use r2dl::predictor::{Catalog, HyperParameters, Kind};
use r2dl::runtime::ModelSpec;
use r2dl::train::{Datasets, LabelledRows, TrainSpec, train};

/// `n` rows cycling through `groups` of (residues, label), each sequence 6 residues of its group.
fn rows(n: usize, groups: &[(&str, &str)]) -> LabelledRows {
    let mut rows = LabelledRows {
        source: "rows".into(),
        ..Default::default()
    };
    for i in 0..n {
        let (residues, label) = groups[i % groups.len()];
        let residues = residues.as_bytes();
        let sequence = (0..6).map(|j| residues[(i / groups.len() + j * j) % residues.len()] as char);
        rows.sequences.push(sequence.collect());
        rows.labels.push(label.into());
    }
    rows
}

/// Trains predictor `name` on `data` into `udfs`, its output mapping reading the states of
/// `readout` (layer numbers; empty: the last layer).
fn train_into(udfs: &Path, name: &str, spec: &ModelSpec, data: LabelledRows, readout: &[usize]) -> Kind {
    let model = r2dl::runtime::shared_model(spec).expect("model");
    let train_spec = TrainSpec {
        name: name.into(),
        kind: None,
        positive: None,
        limit: None,
        hyper: HyperParameters {
            epochs: 6,
            batch_size: 8,
            lr_theta: 0.05,
            lr_head: 0.05,
            k: 3,
            recode_every: 2,
            readout_layers: readout.to_vec(),
            ..Default::default()
        },
        out: udfs.join(name),
        resume: false,
    };
    let data = Datasets {
        train: data.clone(),
        valid: Some(data),
        test: None,
    };
    let predictor = train(&model, &data, &train_spec, &mut |_| {}, &AtomicBool::new(false)).expect("trained");
    predictor.manifest.kind
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multiclass_and_regression_predictors_are_sql_functions() {
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = tiny_model_spec(dir.path(), 7).expect("tiny model");
    let udfs = tempfile::tempdir().expect("temp dir");
    let groups = [("KRH", "basic"), ("DE", "acidic"), ("LIVF", "hydrophobic")];
    // the classifier reads the embeddings and both layers, the regression the last layer
    let kind = train_into(udfs.path(), "charge", &spec, rows(48, &groups), &[0, 1, 2]);
    assert_eq!(kind, Kind::Multiclass);
    let levels = [("KRH", "2.5"), ("DE", "-1.5"), ("LIVF", "0.25"), ("AS", "0")];
    let kind = train_into(udfs.path(), "level", &spec, rows(48, &levels), &[]);
    assert_eq!(kind, Kind::Regression);

    let ctx = r2dl::R2dl::new()
        .with_model(spec)
        .with_catalog(Catalog::discover(&[udfs.path().to_path_buf()]).expect("catalog"))
        .session_context(SessionConfig::new().with_target_partitions(1))
        .expect("session");
    let sql = "SELECT predict_charge(s) AS charge, predict_level(s) AS level \
               FROM (VALUES ('KRHKRH'), ('DEDEDE'), (NULL), ('LIVFLI')) AS t(s)";
    let batches: Vec<RecordBatch> = ctx.sql(sql).await.expect("plan").collect().await.expect("query");
    let batch = &batches[0];
    assert_eq!(batch.schema().field(0).data_type(), &DataType::Utf8);
    assert_eq!(batch.schema().field(1).data_type(), &DataType::Float64);
    let (charge, level) = (
        batch.column(0).as_string::<i32>(),
        batch.column(1).as_primitive::<Float64Type>(),
    );
    assert!(charge.is_null(2) && level.is_null(2), "NULL in, NULL out");
    for i in [0, 1, 3] {
        assert!(
            ["basic", "acidic", "hydrophobic"].contains(&charge.value(i)),
            "{charge:?}"
        );
        // predictions are in label units: within the labels' span, give or take
        assert!((-3.0..3.0).contains(&level.value(i)), "{level:?}");
    }
    // trained on these very groups, it tells basic from acidic in both functions
    assert_eq!((charge.value(0), charge.value(1)), ("basic", "acidic"), "{charge:?}");
    assert!(level.value(0) > level.value(1), "{level:?}");

    // embed with the classifier's Θ is still the last layer's d-wide vector
    let sql = "SELECT embed(s, 'charge') AS e, embed(s) AS plain FROM (VALUES ('KRHKRH')) AS t(s)";
    let batches: Vec<RecordBatch> = ctx.sql(sql).await.expect("plan").collect().await.expect("query");
    let e = batches[0].column(0).as_fixed_size_list();
    assert_eq!(
        (
            e.value_length(),
            batches[0].column(1).as_fixed_size_list().value_length()
        ),
        (8, 8)
    );
    assert_eq!(e.value(0).len(), 8);

    // the two most probable labels with their probabilities, the first being predict_charge's
    let sql = "SELECT predict_charge_top(s, 2) AS top FROM (VALUES ('KRHKRH'), (NULL), ('DEDEDE')) AS t(s)";
    let batches: Vec<RecordBatch> = ctx.sql(sql).await.expect("plan").collect().await.expect("query");
    let top = batches[0].column(0).as_list::<i32>();
    assert!(top.is_null(1));
    for (row, expected) in [(0, charge.value(0)), (2, charge.value(1))] {
        let entries = top.value(row);
        let entries = entries.as_struct();
        assert_eq!(entries.len(), 2);
        let labels = entries.column(0).as_string::<i32>();
        let p = entries
            .column(1)
            .as_primitive::<datafusion::arrow::datatypes::Float32Type>();
        assert_eq!(labels.value(0), expected);
        assert!(
            p.value(0) >= p.value(1) && p.value(0) <= 1.0 && p.value(1) >= 0.0,
            "{p:?}"
        );
    }
    let error = ctx
        .sql("SELECT predict_charge_top(s, 0) FROM (VALUES ('KR')) AS t(s)")
        .await
        .expect("plan")
        .collect()
        .await
        .expect_err("k = 0")
        .to_string();
    assert!(error.contains("k must be a positive whole number"), "{error}");
}

/// The class of a residue in the per-residue tests: `P` for basic, `N` for acidic, `C` otherwise.
fn charge_class(residue: char) -> char {
    match residue {
        'K' | 'R' | 'H' => 'P',
        'D' | 'E' => 'N',
        _ => 'C',
    }
}

/// `n` sequences of 4–23 residues (some longer than the tiny model's 10 positions) labelled with
/// one charge class per residue; every fifth residue's label is `-` (unresolved).
fn residue_rows(n: usize) -> LabelledRows {
    const RESIDUES: &[u8] = b"KRHDEAGLIVS";
    let mut rows = LabelledRows {
        source: "residue rows".into(),
        ..Default::default()
    };
    let mut state = 7u64;
    for _ in 0..n {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let len = 4 + (state >> 33) as usize % 20;
        let sequence: String = (0..len)
            .map(|j| RESIDUES[((state >> 20) as usize + j * 7 + j * j) % RESIDUES.len()] as char)
            .collect();
        let label: String = sequence
            .chars()
            .enumerate()
            .map(|(j, c)| if j % 5 == 4 { '-' } else { charge_class(c) })
            .collect();
        rows.sequences.push(sequence);
        rows.labels.push(label);
    }
    rows
}

/// The residues of `rows` with a label (not `-`).
fn labelled_residues(rows: &LabelledRows) -> f64 {
    rows.labels
        .iter()
        .map(|l| l.chars().filter(|&c| c != '-').count())
        .sum::<usize>() as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_residue_predictors_return_one_class_per_residue_in_sql() {
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = tiny_model_spec(dir.path(), 7).expect("tiny model");
    let udfs = tempfile::tempdir().expect("temp dir");
    // per residue, the mapping reads the first layer's and the embeddings' states of each residue
    let kind = train_into(udfs.path(), "charge_site", &spec, residue_rows(64), &[1, 0]);
    assert_eq!(kind, Kind::Residue);
    let predictor = r2dl::predictor::Predictor::load(&udfs.path().join("charge_site")).expect("saved");
    assert_eq!(predictor.manifest.labels, ["C", "N", "P"]);
    let valid = &predictor.manifest.metrics["valid"];
    // scored on the labelled residues only: four in five
    assert_eq!(valid["residues"], labelled_residues(&residue_rows(64)), "{valid:?}");
    assert!(valid["accuracy"] > 0.8, "{valid:?}");
    assert!(
        valid.contains_key("precision_P") && valid.contains_key("recall_N"),
        "{valid:?}"
    );

    let ctx = r2dl::R2dl::new()
        .with_model(spec)
        .with_catalog(Catalog::discover(&[udfs.path().to_path_buf()]).expect("catalog"))
        .session_context(SessionConfig::new().with_target_partitions(1))
        .expect("session");
    let long = "KRDEAGKRDEAGLIVSKKEEDDHH";
    let sql = format!(
        "SELECT s, predict_charge_site(s) AS classes, predict_charge_site_probabilities(s) AS p \
         FROM (VALUES ('KKKDDD'), (NULL), ('{long}'), ('GKE*'), ('')) AS t(s)"
    );
    let batches: Vec<RecordBatch> = ctx.sql(&sql).await.expect("plan").collect().await.expect("query");
    let batch = &batches[0];
    assert_eq!(batch.schema().field(1).data_type(), &DataType::Utf8);
    let classes = batch.column(1).as_string::<i32>();
    let probabilities = batch.column(2).as_list::<i32>();
    assert!(classes.is_null(1) && probabilities.is_null(1), "NULL in, NULL out");
    // the tiny encoder mixes neighbours into each residue's state: lengths and letters, not exact classes
    assert_eq!(classes.value(0).len(), 6);
    assert!(
        classes.value(0).chars().all(|c| "CNP".contains(c)),
        "{}",
        classes.value(0)
    );
    assert_eq!(classes.value(3).len(), 4, "a terminal * keeps its place");
    assert!(classes.value(3).ends_with('-'));
    assert_eq!(classes.value(4), "");
    let expected: String = long.chars().map(charge_class).collect();
    let right = classes
        .value(2)
        .chars()
        .zip(expected.chars())
        .filter(|(a, b)| a == b)
        .count();
    assert_eq!(classes.value(2).len(), long.len());
    assert!(right >= long.len() / 2, "{} vs {expected}", classes.value(2));

    // per residue, a struct of the three probabilities, in label order, summing to one
    let residues = probabilities.value(0);
    let residues = residues.as_struct();
    assert_eq!(residues.len(), 6);
    let names: Vec<&str> = residues.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["C", "N", "P"]);
    for i in 0..residues.len() {
        let sum: f32 = (0..3)
            .map(|c| {
                residues
                    .column(c)
                    .as_primitive::<datafusion::arrow::datatypes::Float32Type>()
                    .value(i)
            })
            .sum();
        assert!((sum - 1.0).abs() < 1e-4, "{sum}");
    }
    assert_eq!(probabilities.value(2).len(), long.len());
    assert_eq!(probabilities.value(3).len(), 3, "no probabilities for the *");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    /// Whatever the sequence, windowed or not, per-residue classes are one per character.
    #[test]
    fn per_residue_output_has_the_sequences_length(sequence in "[ACDEFGHIKLMNPQRSTVWYX]{0,40}\\*?") {
        let (model, predictor) = residue_predictor();
        let rows = predictor
            .predict_residues(&model, [Some(sequence.as_str())], r2dl::model::InvalidResidue::Error)
            .expect("predicted");
        let probabilities = rows.rows[0].as_deref().expect("a row");
        let classes = predictor.residue_classes(&sequence, probabilities);
        proptest::prop_assert_eq!(classes.chars().count(), sequence.chars().count());
        proptest::prop_assert!(classes.chars().all(|c| "CNP-".contains(c)));
    }
}

/// A per-residue predictor on the tiny model, trained briefly on 16 rows, made once for the
/// property test.
fn residue_predictor() -> (
    std::sync::Arc<r2dl::model::ReprogrammedModel>,
    std::sync::Arc<r2dl::predictor::Predictor>,
) {
    use std::sync::{Arc, OnceLock};
    static MADE: OnceLock<(
        tempfile::TempDir,
        Arc<r2dl::model::ReprogrammedModel>,
        Arc<r2dl::predictor::Predictor>,
    )> = OnceLock::new();
    let (_, model, predictor) = MADE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let spec = tiny_model_spec(dir.path(), 3).expect("tiny model");
        let model = r2dl::runtime::shared_model(&spec).expect("model");
        let udfs = tempfile::tempdir().expect("temp dir");
        train_into(udfs.path(), "site", &spec, residue_rows(16), &[]);
        let predictor = r2dl::predictor::Predictor::load(&udfs.path().join("site")).expect("saved");
        let model = Arc::new(predictor.model(&model).expect("Θ"));
        (dir, model, Arc::new(predictor))
    });
    (Arc::clone(model), Arc::clone(predictor))
}

#[test]
fn a_per_residue_output_mapping_fitted_in_closed_form_classifies_residues_without_epochs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = tiny_model_spec(dir.path(), 7).expect("tiny model");
    let model = r2dl::runtime::shared_model(&spec).expect("model");
    let out = tempfile::tempdir().expect("temp dir");
    let train_spec = TrainSpec {
        name: "charge_site".into(),
        kind: None,
        positive: None,
        limit: None,
        hyper: HyperParameters {
            epochs: 0,
            batch_size: 8,
            k: 3,
            ridge_head: true,
            readout_layers: vec![0, 1],
            ..Default::default()
        },
        out: out.path().to_path_buf(),
        resume: false,
    };
    let data = Datasets {
        train: residue_rows(64),
        valid: Some(residue_rows(32)),
        test: None,
    };
    let predictor = train(&model, &data, &train_spec, &mut |_| {}, &AtomicBool::new(false)).expect("fitted");
    let m = &predictor.manifest;
    assert_eq!(
        (m.kind, m.training.epochs_run, m.training.best_epoch),
        (Kind::Residue, 0, 0)
    );
    assert!(m.training.ridge_penalty.is_some());
    // every labelled residue of the validation rows is scored; the classes follow the residue
    // (the embeddings are read), so a linear fit gets most of them, with probabilities far
    // better than uniform ones (log loss 1.10)
    let valid = &m.metrics["valid"];
    assert_eq!(valid["residues"], labelled_residues(&residue_rows(32)), "{valid:?}");
    assert!(valid["accuracy"] > 0.6 && valid["log_loss"] < 0.8, "{valid:?}");
}
