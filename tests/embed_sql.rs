//! `embed()` in SQL on a tiny random-weight model: types, NULLs, row order, the residue policy.

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::Float32Type;
use datafusion::prelude::{SessionConfig, SessionContext};
use r2dl::model::testing::write_tiny_bert;
use r2dl::runtime::ModelSpec;

fn session(dir: &std::path::Path, partitions: usize) -> SessionContext {
    let spec = ModelSpec {
        dir: Some(dir.to_path_buf()),
        device: None,
    };
    r2dl::R2dl::new()
        .with_model(spec)
        .with_catalog(Default::default())
        .session_context(
            SessionConfig::new()
                .with_target_partitions(partitions)
                .with_batch_size(7),
        )
        .expect("session")
}

async fn rows(ctx: &SessionContext, sql: &str) -> Vec<RecordBatch> {
    ctx.sql(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The error a query fails with when it runs.
async fn query_error(ctx: &SessionContext, sql: &str) -> String {
    let plan = ctx.sql(sql).await.unwrap_or_else(|e| panic!("{sql} plans: {e}"));
    plan.collect().await.expect_err("the query fails").to_string()
}

/// `(id, vector or None)` from batches of `id, v`.
fn vectors(batches: &[RecordBatch]) -> Vec<(String, Option<Vec<f32>>)> {
    let mut out = Vec::new();
    for batch in batches {
        let ids = batch
            .column(0)
            .as_string_view_opt()
            .map(|a| a.iter().map(|s| s.map(String::from)).collect::<Vec<_>>())
            .or_else(|| {
                batch
                    .column(0)
                    .as_string_opt::<i32>()
                    .map(|a| a.iter().map(|s| s.map(String::from)).collect())
            })
            .expect("string ids");
        let list = batch.column(1).as_fixed_size_list();
        for (i, id) in ids.into_iter().enumerate() {
            let v = list
                .is_valid(i)
                .then(|| list.value(i).as_primitive::<Float32Type>().values().to_vec());
            out.push((id.expect("id"), v));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embed_returns_one_vector_per_row_in_order_with_nulls_kept() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_tiny_bert(dir.path(), "", 11).expect("tiny model");
    let ctx = session(dir.path(), 3);
    let typed = rows(&ctx, "SELECT arrow_typeof(embed('ACD')) AS t").await;
    assert_eq!(
        typed[0].column(0).as_string::<i32>().value(0),
        "FixedSizeList(8 x non-null Float32)"
    );

    let all = vectors(&rows(&ctx, "SELECT id, embed(sequence) AS v FROM 'sample_data/sample.fasta'").await);
    assert_eq!(all.len(), 320);
    assert!(all.iter().all(|(_, v)| {
        v.as_ref()
            .is_some_and(|v| v.len() == 8 && v.iter().all(|x| x.is_finite()))
    }));
    // the same rows in another order and partitioning give the same vectors
    let ctx1 = session(dir.path(), 1);
    let sorted = vectors(
        &rows(
            &ctx1,
            "SELECT id, embed(sequence) AS v FROM 'sample_data/sample.fasta' ORDER BY id DESC",
        )
        .await,
    );
    let mut expected = all.clone();
    expected.sort_by(|a, b| b.0.cmp(&a.0));
    for ((id_a, a), (id_b, b)) in sorted.iter().zip(&expected) {
        assert_eq!(id_a, id_b);
        let diff = a
            .iter()
            .flatten()
            .zip(b.iter().flatten())
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(diff < 1e-5, "{id_a}: {diff}");
    }

    let nulls = vectors(
        &rows(
            &ctx,
            "SELECT id, embed(s) FROM (VALUES ('a', 'MKT'), ('b', NULL), ('c', 'W')) AS t(id, s)",
        )
        .await,
    );
    assert_eq!(
        nulls.iter().map(|(_, v)| v.is_some()).collect::<Vec<_>>(),
        [true, false, true]
    );
    // Parquet strings arrive as Utf8View
    let parquet = rows(&ctx, "SELECT count(embed(sequence)) FROM 'sample_data/sample.parquet'").await;
    assert_eq!(
        parquet[0]
            .column(0)
            .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
            .value(0),
        320
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_residues_fail_or_follow_the_session_option() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_tiny_bert(dir.path(), "", 5).expect("tiny model");
    let ctx = session(dir.path(), 1);
    let query = "SELECT id, embed(s) FROM (VALUES ('ok', 'MKT'), ('gap', 'MK-T'), ('x', 'MKXT')) AS t(id, s)";
    let error = query_error(&ctx, query).await;
    assert!(
        error.contains("invalid residue '-' at position 3 of sequence 'MK-T'"),
        "{error}"
    );

    rows(&ctx, "SET r2dl.invalid_residue = 'null'").await;
    let got = vectors(&rows(&ctx, query).await);
    assert_eq!(
        got.iter().map(|(_, v)| v.is_some()).collect::<Vec<_>>(),
        [true, false, true]
    );

    rows(&ctx, "SET r2dl.invalid_residue = 'unknown'").await;
    let got = vectors(&rows(&ctx, query).await);
    assert_eq!(got[1].1, got[2].1, "'-' reads as X");

    rows(&ctx, "SET r2dl.invalid_residue = 'skip'").await;
    let error = query_error(&ctx, query).await;
    assert!(error.contains("'error', 'null' or 'unknown'"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_model_is_a_planning_error_that_says_how_to_fetch_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ctx = session(&dir.path().join("nope"), 1);
    let error = ctx.sql("SELECT embed('ACD')").await.unwrap_err().to_string();
    assert!(
        error.contains("config.json not found") && error.contains("r2dl fetch-model"),
        "{error}"
    );
}
