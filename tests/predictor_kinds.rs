//! Multi-class and regression predictors, trained on a tiny model, become SQL functions of the
//! right type: `predict_<name>` returns a label (Utf8) or a number (Float64), NULL for NULL.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::prelude::SessionConfig;
use r2dl::model::ModelSpec;
use r2dl::model::testing::tiny_model_spec;
use r2dl::predictor::{Catalog, HyperParameters, Kind};
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

fn train_into(udfs: &Path, name: &str, spec: &ModelSpec, data: LabelledRows) -> Kind {
    let model = r2dl::model::shared_model(spec).expect("model");
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
    let kind = train_into(udfs.path(), "charge", &spec, rows(48, &groups));
    assert_eq!(kind, Kind::Multiclass);
    let levels = [("KRH", "2.5"), ("DE", "-1.5"), ("LIVF", "0.25"), ("AS", "0")];
    let kind = train_into(udfs.path(), "level", &spec, rows(48, &levels));
    assert_eq!(kind, Kind::Regression);

    let ctx = r2dl::session_context(SessionConfig::new().with_target_partitions(1)).expect("session");
    let catalog = Catalog::discover(&[udfs.path().to_path_buf()]).expect("catalog");
    r2dl::udf::register_model_functions(&ctx, spec, &catalog);
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
}
