//! The model loads once per process, whatever the number of sessions, queries and partitions.
//! (A test binary of its own, so that no other test loads models meanwhile.)

use datafusion::prelude::SessionConfig;
use r2dl::model::testing::tiny_model_spec;
use r2dl::runtime::model_loads;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_queries_in_two_sessions_share_one_model_load() {
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = tiny_model_spec(dir.path(), 2).expect("tiny model");
    let before = model_loads();
    let mut queries = Vec::new();
    for partitions in [1, 2] {
        let ctx = r2dl::R2dl::new()
            .with_model(spec.clone())
            .with_catalog(Default::default())
            .session_context(
                SessionConfig::new()
                    .with_target_partitions(partitions)
                    .with_batch_size(16),
            )
            .expect("session");
        for _ in 0..2 {
            let ctx = ctx.clone();
            queries.push(tokio::spawn(async move {
                let sql = "SELECT count(embed(sequence)) FROM 'sample_data/sample.fasta'";
                ctx.sql(sql).await?.collect().await
            }));
        }
    }
    for query in queries {
        let batches = query.await.expect("query task").expect("query");
        assert_eq!(batches[0].num_rows(), 1);
    }
    assert_eq!(model_loads() - before, 1);
}
