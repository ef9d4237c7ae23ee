//! Functions that share a Θ share one encoder pass per batch, and never reload weights. (A test
//! binary of its own, so that no other test counts passes or loads meanwhile.)

use datafusion::prelude::SessionConfig;
use r2dl::model::testing::tiny_model_spec;
use r2dl::runtime::model_loads;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_sharing_a_theta_share_one_encoder_pass() {
    use std::sync::atomic::AtomicBool;

    use datafusion::arrow::array::{Array, AsArray, RecordBatch};
    use datafusion::arrow::datatypes::Float32Type;
    use r2dl::predictor::{Catalog, HyperParameters};
    use r2dl::train::{Datasets, LabelledRows, TrainSpec, train};

    let dir = tempfile::tempdir().expect("temp dir");
    let spec = tiny_model_spec(dir.path(), 5).expect("tiny model");
    let model = r2dl::runtime::shared_model(&spec).expect("model");
    let rows = LabelledRows {
        source: "rows".into(),
        ids: None,
        sequences: ["KKRA", "DDEA", "KRKH", "EDSE", "HKRK", "SEDD"]
            .map(String::from)
            .to_vec(),
        labels: ["pos", "neg", "pos", "neg", "pos", "neg"].map(String::from).to_vec(),
    };
    let udfs = tempfile::tempdir().expect("temp dir");
    let train_spec = TrainSpec {
        name: "tiny".into(),
        kind: None,
        positive: None,
        limit: None,
        hyper: HyperParameters {
            epochs: 1,
            batch_size: 4,
            // the tiny model is 8 wide: OMP takes at most 8 atoms
            k: 4,
            ..Default::default()
        },
        out: udfs.path().join("tiny"),
        resume: false,
    };
    let data = Datasets {
        train: rows.clone(),
        valid: Some(rows),
        test: None,
    };
    train(&model, &data, &train_spec, &mut |_| {}, &AtomicBool::new(false)).expect("trained");

    let ctx = r2dl::R2dl::new()
        .with_model(spec)
        .with_catalog(Catalog::discover(&[udfs.path().to_path_buf()]).expect("catalog"))
        .session_context(SessionConfig::new().with_target_partitions(1))
        .expect("session");
    let (loads, passes) = (model_loads(), r2dl::udf::theta_passes());
    let sql = "SELECT predict_tiny(s) AS a, embed(s, 'tiny') AS v, predict_tiny(s) + 0 AS b \
               FROM (VALUES ('KKK'), ('DDD'), (NULL)) AS t(s)";
    let batches: Vec<RecordBatch> = ctx.sql(sql).await.expect("plan").collect().await.expect("query");
    assert_eq!(
        r2dl::udf::theta_passes() - passes,
        1,
        "one encoder pass for three calls"
    );
    assert_eq!(model_loads(), loads, "no weights reloaded");
    let batch = &batches[0];
    let (a, b) = (
        batch.column(0).as_primitive::<Float32Type>(),
        batch.column(2).as_primitive::<Float32Type>(),
    );
    assert_eq!(a, b);
    assert!(
        a.is_null(2) && (0..2).all(|i| (0.0..=1.0).contains(&a.value(i))),
        "{a:?}"
    );
}
