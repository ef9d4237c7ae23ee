//! r2dl on Apache DataFusion Ballista (feature `cluster`): a scheduler and two executors in this
//! process, on loopback ports, through Ballista's real planning, protobuf and Arrow Flight paths.
//! Every query's result must equal the local session's exactly.
#![cfg(feature = "cluster")]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::Float32Type;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::prelude::{SessionConfig, SessionContext};
use r2dl::R2dl;
use r2dl::cluster::{ClusterParts, InProcessCluster};

const SAMPLE: &str = "sample_data/sample.fasta";
const MULTI_MEMBER_GZIP: &str = "tests/data/valid/multi_member.fasta.gz";

/// The repository's predictors and the default model, as the CLI finds them from the root.
fn r2dl() -> R2dl {
    R2dl::new().with_udf_dirs([std::path::PathBuf::from("udfs")])
}

/// One cluster for every test of this file — a scheduler and two executors of one task each —
/// on a runtime of its own that outlives each test's.
fn cluster_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                let parts = ClusterParts::new(r2dl()).expect("r2dl's cluster parts");
                let cluster = InProcessCluster::start(parts, 2, 1)
                    .await
                    .expect("an in-process cluster starts");
                sender.send(cluster.url().to_string()).expect("the test waits");
                std::future::pending::<()>().await
            })
        });
        receiver.recv().expect("the cluster's address")
    })
}

async fn client() -> SessionContext {
    let parts = ClusterParts::new(r2dl()).expect("parts");
    parts
        .client(cluster_url(), SessionConfig::new().with_target_partitions(4))
        .await
        .expect("a client session")
}

fn local() -> SessionContext {
    r2dl().session_context(SessionConfig::new()).expect("a local session")
}

/// A local session that splits model queries into the byte ranges the cluster's scheduler does
/// (4 partitions, files of any size): the same batches reach the model, so the same bits come out.
fn local_as_cluster() -> SessionContext {
    r2dl()
        .distributed(true)
        .session_context(SessionConfig::new().with_target_partitions(4))
        .expect("a local session")
}

/// Every row of `batches` as text, one string per row (`|`-separated cells), as a multiset: the
/// cluster returns partitions in any order.
fn rows(batches: &[RecordBatch]) -> BTreeMap<String, usize> {
    let options = FormatOptions::default().with_null("NULL");
    let mut rows = BTreeMap::new();
    for batch in batches {
        let formatters: Vec<ArrayFormatter> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).expect("formatter"))
            .collect();
        for row in 0..batch.num_rows() {
            let cells: Vec<String> = formatters.iter().map(|f| f.value(row).to_string()).collect();
            *rows.entry(cells.join("|")).or_default() += 1;
        }
    }
    rows
}

async fn run(ctx: &SessionContext, sql: &str) -> Vec<RecordBatch> {
    ctx.sql(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn same_on_cluster(sql: &str) -> usize {
    same_as(&local_as_cluster(), sql).await
}

async fn same_as(local: &SessionContext, sql: &str) -> usize {
    let here = rows(&run(local, sql).await);
    let there = rows(&run(&client().await, sql).await);
    let only_here: Vec<&String> = here.keys().filter(|k| !there.contains_key(*k)).collect();
    let only_there: Vec<&String> = there.keys().filter(|k| !here.contains_key(*k)).collect();
    let clip =
        |rows: &[&String]| -> Vec<String> { rows.iter().take(3).map(|r| r.chars().take(160).collect()).collect() };
    assert!(
        only_here.is_empty() && only_there.is_empty(),
        "{sql}: {} rows differ; local: {:?}; cluster: {:?}",
        only_here.len(),
        clip(&only_here),
        clip(&only_there)
    );
    here.values().sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_functions_give_the_local_results() {
    let sql = format!("SELECT id, predict_toxicity(sequence) AS tox, embed(sequence) AS e FROM '{SAMPLE}'");
    assert_eq!(same_on_cluster(&sql).await, 320);
}

/// Against a plain local run (one partition: other batch neighbours, so other matrix shapes and
/// summation orders in the model) the values agree to float rounding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn predictions_match_a_one_partition_local_run_to_rounding() {
    let sql = format!("SELECT id, predict_toxicity(sequence) AS tox FROM '{SAMPLE}'");
    let values = |batches: Vec<RecordBatch>| -> BTreeMap<String, f32> {
        let mut values = BTreeMap::new();
        for batch in &batches {
            let ids = batch.column(0).as_string::<i32>();
            let tox = batch.column(1).as_primitive::<Float32Type>();
            for row in 0..batch.num_rows() {
                values.insert(ids.value(row).to_string(), tox.value(row));
            }
        }
        values
    };
    let here = values(run(&local(), &sql).await);
    let there = values(run(&client().await, &sql).await);
    assert_eq!(here.len(), 320);
    assert_eq!(here.keys().collect::<Vec<_>>(), there.keys().collect::<Vec<_>>());
    let worst = here.iter().map(|(id, v)| (v - there[id]).abs()).fold(0.0, f32::max);
    assert!(worst <= 1e-5, "largest difference {worst}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregates_over_plain_and_multi_member_gzip_files() {
    for file in [SAMPLE, MULTI_MEMBER_GZIP] {
        let sql = format!(
            "SELECT length(sequence) % 7 AS k, count(*) AS n, sum(length(sequence)) AS residues, min(id) AS first \
             FROM '{file}' GROUP BY length(sequence) % 7"
        );
        assert!(same_on_cluster(&sql).await > 0, "{sql}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_queries_keep_their_order() {
    let sql = format!("SELECT id, predict_amp(sequence) AS amp FROM '{SAMPLE}' ORDER BY amp DESC, id LIMIT 25");
    let here = run(&local_as_cluster(), &sql).await;
    let there = run(&client().await, &sql).await;
    let text = |batches: &[RecordBatch]| {
        datafusion::arrow::util::pretty::pretty_format_batches(batches)
            .expect("printable")
            .to_string()
    };
    assert_eq!(text(&here), text(&there));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_reach_the_executors() {
    // 'X' is not an amino acid the model reads; by default that fails, and the session setting
    // turns it into NULL — on the executors that run the function, not only on the client.
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("odd.fasta");
    std::fs::write(&file, ">a\nMKV\n>b\nMK1V\n").expect("write");
    let sql = format!(
        "SELECT id, predict_toxicity(sequence) IS NULL AS skipped FROM '{}'",
        file.display()
    );
    let ctx = client().await;
    let error = ctx
        .sql(&sql)
        .await
        .expect("plans")
        .collect()
        .await
        .expect_err("a bad residue fails");
    let message = r2dl::error_message(&error);
    assert!(message.contains("invalid residue '1'"), "{message}");
    ctx.sql("SET r2dl.invalid_residue = 'null'")
        .await
        .expect("set")
        .collect()
        .await
        .expect("set");
    let rows = rows(&run(&ctx, &sql).await);
    assert_eq!(rows.keys().cloned().collect::<Vec<_>>(), ["a|false", "b|true"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_fasta_on_an_executor_reaches_the_client_with_its_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("bad.fasta");
    std::fs::write(&file, "MKV\n>a\nMKV\n").expect("write");
    let sql = format!("SELECT count(*) FROM '{}'", file.display());
    let error = client()
        .await
        .sql(&sql)
        .await
        .expect("plans")
        .collect()
        .await
        .expect_err("fails");
    // the message the CLI prints for the same file locally
    let local = local()
        .sql(&sql)
        .await
        .expect("plans")
        .collect()
        .await
        .expect_err("fails");
    assert_eq!(r2dl::error_message(&error), r2dl::error_message(&local));
    assert!(r2dl::error_message(&error).contains("bad.fasta:1:"), "{error}");
}
