//! Tests over the shared proteome (`../shared/data` beside the clone, or `R2DL_SHARED_DATA`):
//! they run where the shared data is (CI has it) and are reported as ignored, saying why, where
//! it is not (a clone with nothing beside it).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use libtest_mimic::{Arguments, Trial};

use common::{ok, root};

const PROTEOME: &str = "sequence_db/proteomes_ecoli_k12_yeast_s288c.fasta";

fn main() -> std::process::ExitCode {
    let args = Arguments::from_args();
    let data = std::env::var_os("R2DL_SHARED_DATA").map_or_else(|| root().join("../shared/data"), PathBuf::from);
    let proteome = data.join(PROTEOME);
    let present = proteome.is_file();
    if !present {
        println!(
            "SKIPPED: {} not found (set R2DL_SHARED_DATA to the shared data folder to run these)",
            proteome.display()
        );
    }
    let trial = Trial::test(
        "the_shared_proteome_counts_the_same_plain_gzip_and_through_fasta_scan",
        move || {
            proteome_counts_the_same_plain_gzip_and_through_fasta_scan(&proteome);
            Ok(())
        },
    )
    .with_ignored_flag(!present);
    libtest_mimic::run(&args, vec![trial]).exit_code()
}

fn proteome_counts_the_same_plain_gzip_and_through_fasta_scan(proteome: &Path) {
    let expected = "records,residues\n11027,4381270\n";
    let count = |from: String| {
        ok(&[
            "sql",
            &format!("SELECT count(*) AS records, sum(length(sequence)) AS residues FROM {from}"),
        ])
    };
    assert_eq!(count(format!("'{}'", proteome.display())), expected);
    assert_eq!(count(format!("fasta_scan('{}')", proteome.display())), expected);

    // A multi-member gzip: three members, cut at arbitrary byte offsets (mid-record).
    let text = std::fs::read(proteome).expect("proteome");
    let dir = tempfile::tempdir().expect("temp dir");
    let gz = dir.path().join("proteome.fasta.gz");
    let mut file = std::fs::File::create(&gz).expect("create");
    let third = text.len() / 3;
    for part in [&text[..third], &text[third..2 * third], &text[2 * third..]] {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(part).expect("compress");
        file.write_all(&encoder.finish().expect("compress")).expect("write");
    }
    drop(file);
    assert_eq!(count(format!("'{}'", gz.display())), expected);
    assert_eq!(count(format!("fasta_scan('{}')", gz.display())), expected);

    // Two partitions over the plain file give the same answer.
    let split = ok(&[
        "sql",
        &format!(
            "SET datafusion.optimizer.repartition_file_min_size = 0; \
             SELECT count(*) AS records, sum(length(sequence)) AS residues FROM '{}'",
            proteome.display()
        ),
        "--partitions",
        "2",
    ]);
    assert_eq!(split, expected);
}
