//! The FASTA reader on any bytes: plain, behind a gzip header, and split into byte ranges.
//! Errors are fine; panics, hangs and disagreements are not. Reading a file in ranges must give
//! the rows of reading it whole (when the whole read succeeds).
#![no_main]

use datafusion::arrow::array::{Array, AsArray};
use libfuzzer_sys::fuzz_target;
use r2dl::fasta::{FastaError, FastaReader, GZIP_MAGIC, decompress};

/// id, description, sequence.
type Row = (String, Option<String>, String);

/// The rows of `reader`, or its first error.
fn rows<R: std::io::Read>(reader: FastaReader<R>) -> Result<Vec<Row>, FastaError> {
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch?;
        let [id, description, sequence] = [0, 1, 2].map(|i| batch.column(i).as_string::<i32>());
        for row in 0..batch.num_rows() {
            let description = description.is_valid(row).then(|| description.value(row).to_owned());
            rows.push((id.value(row).to_owned(), description, sequence.value(row).to_owned()));
        }
    }
    Ok(rows)
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, data)) = input.split_first() else {
        return;
    };
    match mode % 3 {
        // plain text, small batches so that batch boundaries fall everywhere
        0 => {
            let _ = rows(FastaReader::new(data, "fuzz").with_batch_size(usize::from(mode / 3) + 1));
        }
        // corrupt or truncated gzip
        1 => {
            let stream = [&GZIP_MAGIC[..], data].concat();
            if let Ok((read, gzip)) = decompress(std::io::Cursor::new(stream)) {
                let _ = rows(FastaReader::new(read, "fuzz.gz").with_compressed(gzip));
            }
        }
        // byte ranges cut at two points chosen by the input, against the whole read
        _ => {
            let Ok(whole) = rows(FastaReader::new(data, "fuzz")) else {
                return;
            };
            let len = data.len() as u64;
            let (a, b) = match data {
                [x, y, ..] => (u64::from(*x) * len / 256, u64::from(*y) * len / 256),
                _ => (0, 0),
            };
            let (a, b) = (a.min(b), a.max(b));
            let mut parts = Vec::new();
            for (start, end) in [(0, a), (a, b), (b, len)] {
                let from = usize::try_from(start.saturating_sub(1)).unwrap_or(0);
                let reader = FastaReader::with_range(&data[from..], "fuzz", start, Some(end)).expect("in memory");
                parts.extend(rows(reader).expect("a range of a readable file reads"));
            }
            assert_eq!(
                parts, whole,
                "ranges [0, {a}), [{a}, {b}), [{b}, {len}) differ from the whole"
            );
        }
    }
});
