//! The parser against the corpus in `tests/data/`: every valid file reads to the expected
//! records; every malformed one fails with an error naming file, line (and record), no panic.

use std::path::PathBuf;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use r2dl::fasta::{FastaError, FastaErrorKind, FastaReader, open};

fn corpus(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(path)
}

type Row = (String, Option<String>, String);

fn read(path: &str) -> Result<Vec<Row>, FastaError> {
    rows(open(corpus(path))?)
}

/// [`read`] through a memory map, as SQL scans read plain local files.
fn read_mapped(path: &str) -> Result<Vec<Row>, FastaError> {
    let path = corpus(path);
    let file = std::fs::File::open(&path).expect("corpus file");
    rows(FastaReader::mapped(file, path.display().to_string(), 0, None).expect("map"))
}

fn rows(reader: impl Iterator<Item = Result<RecordBatch, FastaError>>) -> Result<Vec<Row>, FastaError> {
    let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>()?;
    let mut rows = Vec::new();
    for b in &batches {
        let (ids, descriptions, sequences) = (
            b.column(0).as_string::<i32>(),
            b.column(1).as_string::<i32>(),
            b.column(2).as_string::<i32>(),
        );
        for i in 0..b.num_rows() {
            rows.push((
                ids.value(i).to_string(),
                descriptions.is_valid(i).then(|| descriptions.value(i).to_string()),
                sequences.value(i).to_string(),
            ));
        }
    }
    Ok(rows)
}

#[test]
fn valid_files_read_to_the_expected_records() {
    let two = vec![
        (
            "P1".to_string(),
            Some("first protein".to_string()),
            "MKVLAAGHT".to_string(),
        ),
        ("P2".to_string(), None, "GG".to_string()),
    ];
    for file in [
        "valid/multiline.fasta",
        "valid/crlf.fasta",
        "valid/blank_and_comments.fasta",
        "valid/no_trailing_newline.fasta",
        "valid/spaces_in_sequence.fasta",
        "valid/multi_member.fasta.gz",
        "valid/bgzf.fasta.bgz",
    ] {
        assert_eq!(read(file).unwrap_or_else(|e| panic!("{file}: {e}")), two, "{file}");
    }
    assert!(read("valid/empty.fasta").expect("empty").is_empty());
    assert!(read("valid/only_comments.fasta").expect("comments").is_empty());
    assert_eq!(read("valid/lowercase.fasta").expect("lowercase")[0].2, "mkvLAagHT");
    assert_eq!(read("valid/empty_sequence.fasta").expect("empty sequence")[0].2, "");
}

#[test]
fn mapped_plain_files_read_to_the_same_records_and_errors() {
    let mut files = Vec::new();
    for dir in ["valid", "malformed"] {
        for entry in std::fs::read_dir(corpus(dir)).expect("corpus directory") {
            let name = entry.expect("entry").file_name().into_string().expect("UTF-8 name");
            if name.ends_with(".fasta") {
                files.push(format!("{dir}/{name}"));
            }
        }
    }
    assert!(files.len() >= 15, "{files:?}");
    for file in files {
        let (streamed, mapped) = (read(&file), read_mapped(&file));
        match (&streamed, &mapped) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{file}"),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{file}"),
            _ => panic!("{file}: read {streamed:?}, mapped {mapped:?}"),
        }
    }
}

#[test]
fn malformed_files_fail_with_file_line_and_record() {
    // (file, line, record, what the message says)
    let cases = [
        (
            "malformed/missing_header.fasta",
            Some(1),
            None,
            "expected a header line starting with '>', found \"MKVLA\"",
        ),
        (
            "malformed/missing_header_after_blank.fasta",
            Some(3),
            None,
            "expected a header line",
        ),
        ("malformed/empty_id.fasta", Some(3), None, "header line has an empty id"),
        (
            "malformed/empty_id_spaces.fasta",
            Some(3),
            None,
            "header line has an empty id",
        ),
        (
            "malformed/invalid_utf8_header.fasta",
            Some(3),
            None,
            "invalid UTF-8 in a header line",
        ),
        (
            "malformed/invalid_utf8_sequence.fasta",
            Some(5),
            Some("P2"),
            "invalid UTF-8 in a sequence line",
        ),
        (
            "malformed/truncated.fasta.gz",
            None,
            Some("P1"),
            "truncated or corrupt gzip data",
        ),
        (
            "malformed/corrupt.fasta.gz",
            None,
            None,
            "truncated or corrupt gzip data",
        ),
    ];
    for (file, line, record, message) in cases {
        let err = match read(file) {
            Ok(rows) => panic!("{file}: expected an error, read {} records", rows.len()),
            Err(e) => e,
        };
        let text = err.to_string();
        assert!(text.starts_with(&corpus(file).display().to_string()), "{file}: {text}");
        assert!(text.contains(message), "{file}: {text}");
        assert!(err.location.line.is_some(), "{file}: no line in {text}");
        if let Some(line) = line {
            assert_eq!(err.location.line, Some(line), "{file}: {text}");
        }
        if record.is_some() {
            assert_eq!(err.location.record.as_deref(), record, "{file}: {text}");
        }
    }
}

#[test]
fn gzip_errors_point_past_the_last_complete_line() {
    let err = read("malformed/truncated.fasta.gz").expect_err("truncated");
    assert!(matches!(err.kind, FastaErrorKind::Gzip(_)), "{err}");
    // 2000 complete sequence lines were written; half the compressed stream holds most of them
    let line = err.location.line.expect("line");
    assert!(line > 2 && line <= 2001, "{err}");
}
