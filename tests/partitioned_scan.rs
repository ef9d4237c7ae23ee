//! Property tests: byte-range partitioned scans return exactly the records of the file.
//!
//! Files are generated from known records with random wrapping, CRLF, blank and comment lines,
//! tiny and large records, short and long headers padded with blanks or not; the records
//! themselves are the reference the scans must reproduce.

use std::io::Write;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::prelude::{SessionConfig, SessionContext};
use proptest::prelude::*;
use r2dl::fasta::FastaReader;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Record {
    id: String,
    description: Option<String>,
    sequence: String,
}

#[derive(Debug, Clone)]
struct Layout {
    width: usize,
    crlf: bool,
    blank_every: Option<usize>,
    comment_every: Option<usize>,
    final_newline: bool,
}

fn record() -> impl Strategy<Value = Record> {
    let sequence = prop_oneof![
        4 => "[A-Za-z*]{0,80}",
        1 => "[ACDEFGHIKLMNPQRSTVWY]{500,3000}",
    ];
    (
        "[A-Za-z0-9_|.]{1,16}",
        proptest::option::of(prop_oneof![
            4 => "[a-zé0-9=]{1,8}( [a-z0-9=]{1,8}){0,3}",
            // headers longer than a 64-byte block of the vectorised scan
            1 => "[a-z]{60,150}( [a-z]{1,8})?",
        ]),
        sequence,
    )
        .prop_map(|(id, description, sequence)| Record {
            id,
            description,
            sequence,
        })
}

fn layout() -> impl Strategy<Value = Layout> {
    (
        1usize..90,
        any::<bool>(),
        proptest::option::of(1usize..6),
        proptest::option::of(1usize..6),
        any::<bool>(),
    )
        .prop_map(|(width, crlf, blank_every, comment_every, final_newline)| Layout {
            width,
            crlf,
            blank_every,
            comment_every,
            final_newline,
        })
}

/// The FASTA text of `records` laid out as `layout` says.
fn render(records: &[Record], layout: &Layout) -> Vec<u8> {
    let eol = if layout.crlf { "\r\n" } else { "\n" };
    let mut lines: Vec<String> = Vec::new();
    for r in records {
        // three header styles, picked by the id: plain, padded with blanks, tab-separated
        let (lead, separator, trail) = [("", " ", ""), ("  ", "\t ", " \t"), ("", "\t", "")][r.id.len() % 3];
        match &r.description {
            Some(d) => lines.push(format!(">{lead}{}{separator}{d}{trail}", r.id)),
            None => lines.push(format!(">{lead}{}{trail}", r.id)),
        }
        for chunk in r.sequence.as_bytes().chunks(layout.width) {
            lines.push(String::from_utf8(chunk.to_vec()).expect("ASCII"));
            if layout.blank_every.is_some_and(|n| lines.len().is_multiple_of(n)) {
                lines.push(String::new());
            }
            if layout.comment_every.is_some_and(|n| lines.len().is_multiple_of(n)) {
                lines.push(";comment".into());
            }
        }
    }
    let mut text = lines.join(eol);
    if layout.final_newline {
        text.push_str(eol);
    }
    text.into_bytes()
}

fn rows(batches: &[RecordBatch]) -> Vec<Record> {
    let mut out = Vec::new();
    for b in batches {
        let ids = b.column_by_name("id").expect("id").as_string::<i32>();
        let descriptions = b.column_by_name("description").expect("description").as_string::<i32>();
        let sequences = b.column_by_name("sequence").expect("sequence").as_string::<i32>();
        for i in 0..b.num_rows() {
            out.push(Record {
                id: ids.value(i).into(),
                description: descriptions.is_valid(i).then(|| descriptions.value(i).into()),
                sequence: sequences.value(i).into(),
            });
        }
    }
    out
}

/// The consecutive byte ranges `[start, end)` of `len` bytes split at `cuts`.
fn ranges(len: usize, cuts: &[usize]) -> Vec<(usize, usize)> {
    let mut bounds: Vec<usize> = cuts.iter().map(|&c| c.min(len)).collect();
    bounds.extend([0, len]);
    bounds.sort_unstable();
    bounds.dedup();
    bounds.windows(2).map(|pair| (pair[0], pair[1])).collect()
}

/// Reads `data` as consecutive byte ranges split at `cuts`, in order.
fn read_in_ranges(data: &[u8], cuts: &[usize]) -> Vec<Record> {
    let mut out = Vec::new();
    for (start, end) in ranges(data.len(), cuts) {
        let from = start.saturating_sub(1);
        let reader = FastaReader::with_range(&data[from..], "generated.fasta", start as u64, Some(end as u64))
            .expect("in-memory read")
            .with_batch_size(7);
        let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>().expect("valid FASTA");
        out.extend(rows(&batches));
    }
    out
}

/// [`read_in_ranges`] through memory maps of `data` written to a file.
fn read_mapped_in_ranges(data: &[u8], cuts: &[usize]) -> Vec<Record> {
    let mut file = tempfile::tempfile().expect("temp file");
    file.write_all(data).expect("write");
    let mut out = Vec::new();
    for (start, end) in ranges(data.len(), cuts) {
        let file = file.try_clone().expect("file handle");
        let reader = FastaReader::mapped(file, "generated.fasta", start as u64, Some(end as u64))
            .expect("mapped read")
            .with_batch_size(7);
        let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>().expect("valid FASTA");
        out.extend(rows(&batches));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Any split of a file into byte ranges reads back every record exactly once, in order.
    #[test]
    fn byte_ranges_read_every_record_once(
        records in proptest::collection::vec(record(), 0..40),
        layout in layout(),
        cuts in proptest::collection::vec(0usize..200_000, 0..6),
    ) {
        let data = render(&records, &layout);
        let cuts: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
        let whole = read_in_ranges(&data, &[]);
        prop_assert_eq!(&whole, &records);
        prop_assert_eq!(&read_in_ranges(&data, &cuts), &records);
        prop_assert_eq!(read_mapped_in_ranges(&data, &cuts), records);
    }
}

/// The same property through DataFusion: a file split across partitions returns the rows of the
/// single-partition scan, whether it is read through a memory map (`mmap`) or not.
fn scan_with_partitions(path: &str, partitions: usize, mmap: bool) -> Vec<Record> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut config = SessionConfig::new()
            .with_target_partitions(partitions)
            .with_batch_size(5);
        config.options_mut().optimizer.repartition_file_min_size = 0;
        let ctx = r2dl::session_context(config).expect("session");
        ctx.sql(&format!("SET r2dl.fasta_mmap = {mmap}")).await.expect("option");
        let df = ctx
            .sql(&format!("SELECT id, description, sequence FROM '{path}'"))
            .await
            .expect("plan");
        let mut got = rows(&df.collect().await.expect("scan"));
        got.sort();
        got
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn partitioned_sql_scan_equals_single_partition_scan(
        records in proptest::collection::vec(record(), 0..60),
        layout in layout(),
        partitions in 2usize..9,
    ) {
        let mut file = tempfile::Builder::new().suffix(".fasta").tempfile().expect("temp file");
        file.write_all(&render(&records, &layout)).expect("write");
        let path = file.path().to_str().expect("UTF-8 temp path").to_string();
        let single = scan_with_partitions(&path, 1, true);
        let mut expected = records.clone();
        expected.sort();
        prop_assert_eq!(&single, &expected);
        prop_assert_eq!(&scan_with_partitions(&path, partitions, true), &single);
        prop_assert_eq!(scan_with_partitions(&path, partitions, false), single);
    }
}

#[tokio::test]
async fn one_large_file_is_split_into_byte_ranges() {
    let records: Vec<Record> = (0..2000)
        .map(|i| Record {
            id: format!("r{i}"),
            description: None,
            sequence: "MKVLA".repeat(20),
        })
        .collect();
    let layout = Layout {
        width: 60,
        crlf: false,
        blank_every: None,
        comment_every: None,
        final_newline: true,
    };
    let (_file, ctx, sql) = split_count_query(&render(&records, &layout), 4).await;
    let counts = ctx.sql(&sql).await.expect("plan").collect().await.expect("scan");
    let count = counts[0]
        .column(0)
        .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
        .value(0);
    assert_eq!(count, 2000);
}

#[tokio::test]
async fn session_batch_size_sets_rows_per_batch() {
    let ctx =
        r2dl::session_context(SessionConfig::new().with_batch_size(7).with_target_partitions(1)).expect("session");
    let batches = ctx
        .sql("SELECT id FROM 'sample_data/sample.fasta'")
        .await
        .expect("plan")
        .collect()
        .await
        .expect("scan");
    let sizes: Vec<usize> = batches.iter().map(RecordBatch::num_rows).collect();
    assert_eq!(sizes.iter().sum::<usize>(), 320);
    assert!(sizes.iter().all(|&n| n <= 7), "{sizes:?}");
    assert_eq!(sizes.len(), 320usize.div_ceil(7), "{sizes:?}");
}

#[tokio::test]
async fn errors_in_a_later_byte_range_name_the_absolute_line() {
    let records = |n: usize| -> Vec<u8> {
        (0..n)
            .flat_map(|i| format!(">r{i}\nACDEFGHIK\nLMNPQ\n").into_bytes())
            .collect()
    };
    let mut data = records(1500);
    data.extend_from_slice(b">bad\nAC\xffDE\n");
    data.extend(records(500));
    let (file, ctx, sql) = split_count_query(&data, 2).await;
    let err = ctx
        .sql(&sql)
        .await
        .expect("plan")
        .collect()
        .await
        .expect_err("invalid UTF-8");
    // the bad record starts 33,390 bytes in, inside the second range
    let expected = format!(
        "{}:4502 (record 'bad'): invalid UTF-8 in a sequence line",
        file.path().display()
    );
    assert!(err.to_string().contains(&expected), "{err}");
}

/// Writes `data` to a FASTA file and plans `SELECT count(*)` over it in a session that splits
/// files of any size into `partitions` byte ranges; asserts that the plan shows them.
async fn split_count_query(data: &[u8], partitions: usize) -> (tempfile::NamedTempFile, SessionContext, String) {
    let mut file = tempfile::Builder::new().suffix(".fasta").tempfile().expect("temp file");
    file.write_all(data).expect("write");
    let mut config = SessionConfig::new().with_target_partitions(partitions);
    config.options_mut().optimizer.repartition_file_min_size = 0;
    let ctx = r2dl::session_context(config).expect("session");
    let sql = format!("SELECT count(*) FROM '{}'", file.path().display());
    let plan = ctx
        .sql(&format!("EXPLAIN {sql}"))
        .await
        .expect("explain")
        .collect()
        .await
        .expect("explain");
    let text = datafusion::arrow::util::pretty::pretty_format_batches(&plan)
        .expect("format")
        .to_string();
    let groups = format!("file_groups={{{partitions} groups");
    assert!(text.contains(&groups), "expected {partitions} byte ranges in:\n{text}");
    (file, ctx, sql)
}
