//! Inputs, settings and interruptions a user with bad luck meets, each of which once ended with
//! exit 0 and lost rows, a damaged file, a panic or a hang. Every case must end in the correct
//! result or a clear error naming the file, record or setting — and leave the user's files as
//! they were.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{ok, r2dl, root};

/// The standard error of `r2dl ARGS`, which must fail cleanly (no panic, no signal).
fn fails(args: &[impl AsRef<str>]) -> String {
    let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    let out = r2dl(&args);
    failed(&args, &out)
}

fn failed(args: &[&str], out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "r2dl {args:?} must fail with exit 1:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "r2dl {args:?} panicked:\n{stderr}");
    stderr
}

fn arg(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// `records` good peptide records, then one whose sequence line holds invalid UTF-8: a file
/// that fails only after its first batches were produced.
fn fails_late(path: &Path, records: usize) {
    let mut text = Vec::new();
    for i in 0..records {
        text.extend_from_slice(format!(">p{i}\nMKTAYIAKQRQISFVKSHFSRQ\n").as_bytes());
    }
    text.extend_from_slice(b">bad\nMK\xff\xfeT\n");
    std::fs::write(path, text).expect("write");
}

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn cr_only_line_ends_are_an_error_not_one_folded_record() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("mac.fasta");
    std::fs::write(&path, ">a\rACDE\r>b\rKLMN\r>c\rPQRS\r").expect("write");
    let query = format!("SELECT id, sequence FROM '{}'", path.display());
    let error = fails(&["sql", &query]);
    assert!(error.contains("mac.fasta:1") && error.contains("CR alone"), "{error}");
    // CRLF stays fine
    std::fs::write(&path, ">a\r\nACDE\r\n>b\r\nKLMN\r\n").expect("write");
    assert_eq!(ok(&["sql", &query]), "id,sequence\na,ACDE\nb,KLMN\n");
}

#[test]
fn a_directory_reads_every_fasta_file_or_says_why_not() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("d");
    std::fs::create_dir(&data).expect("mkdir");
    for (name, id) in [("a.fasta", "a"), ("b.fa", "b"), ("f.faa", "f")] {
        std::fs::write(data.join(name), format!(">{id}\nAC\n")).expect("write");
    }
    std::fs::write(data.join("notes.txt"), "not data").expect("write");
    let query = format!("SELECT id FROM '{}/' ORDER BY id", data.display());
    assert_eq!(ok(&["sql", &query]), "id\na\nb\nf\n");
    std::fs::copy(root().join("sample_data/sample.parquet"), data.join("x.parquet")).expect("copy");
    let error = fails(&["sql", &query]);
    assert!(error.contains("mixes file formats (3 fasta, 1 parquet)"), "{error}");
}

#[cfg(unix)]
#[test]
fn a_pipe_as_a_table_is_an_error_not_an_empty_table() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_r2dl"))
        .args(["sql", "SELECT id FROM fasta_scan('/dev/stdin')"])
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("r2dl runs");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        // the error may come before the input is read
        let _ = stdin.write_all(b">a\nAC\n>b\nKK\n");
    }
    let out = child.wait_with_output().expect("r2dl ends");
    let error = failed(&["sql", "fasta_scan('/dev/stdin')"], &out);
    assert!(error.contains("not a regular file"), "{error}");
}

#[test]
fn a_bgzf_file_cut_at_a_block_boundary_is_an_error() {
    use std::io::Write;
    let block = |data: &[u8]| {
        let mut deflate = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        deflate.write_all(data).expect("deflate");
        let compressed = deflate.finish().expect("deflate");
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let mut out = vec![0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 0xff, 6, 0, b'B', b'C', 2, 0];
        out.extend_from_slice(&((compressed.len() + 25) as u16).to_le_bytes());
        out.extend_from_slice(&compressed);
        out.extend_from_slice(&crc.sum().to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out
    };
    let end = block(b"");
    let dir = tempfile::tempdir().expect("temp dir");
    let (full, cut) = (dir.path().join("full.fa.gz"), dir.path().join("cut.fa.gz"));
    let (first, second) = (block(b">a\nMKV\n>b\nAC"), block(b"DE\n>c\nKL\n"));
    std::fs::write(&full, [&first[..], &second, &end].concat()).expect("write");
    std::fs::write(&cut, [&first[..], &second].concat()).expect("write");
    let count = |path: &Path| format!("SELECT count(*) AS n, max(sequence) AS m FROM '{}'", path.display());
    assert_eq!(ok(&["sql", &count(&full)]), "n,m\n3,MKV\n");
    let error = fails(&["sql", &count(&cut)]);
    assert!(
        error.contains("cut.fa.gz") && error.contains("end-of-file block"),
        "{error}"
    );
}

/// A file that shrinks between planning and reading fails the scan (without the memory map,
/// which would take `SIGBUS` instead).
#[tokio::test]
async fn a_file_truncated_while_it_is_read_is_an_error() {
    use datafusion::prelude::SessionConfig;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("big.fasta");
    let text: String = (0..20_000)
        .map(|i| format!(">p{i}\nMKTAYIAKQRQISFVKSHFSRQ\n"))
        .collect();
    std::fs::write(&path, &text).expect("write");
    let ctx = r2dl::R2dl::new()
        .with_catalog(Default::default())
        .session_context(SessionConfig::new().with_target_partitions(1))
        .expect("session");
    ctx.sql("SET r2dl.fasta_mmap = false").await.expect("set");
    let df = ctx
        .sql(&format!("SELECT count(*) FROM '{}'", path.display()))
        .await
        .expect("plan");
    let plan = df.create_physical_plan().await.expect("physical plan");
    std::fs::write(&path, &text[..text.len() / 3]).expect("truncate");
    let error = datafusion::physical_plan::collect(plan, ctx.task_ctx())
        .await
        .expect_err("a shrunken file must not count as a shorter table")
        .to_string();
    assert!(error.contains("shrank"), "{error}");
}

#[test]
fn a_write_that_fails_midway_leaves_no_file_and_keeps_the_old_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("in.fasta");
    fails_late(&input, 3_000);
    let query = format!("SELECT id, sequence FROM '{}'", input.display());
    for name in ["out.csv", "out.fasta", "out.parquet", "out.json"] {
        let out = dir.path().join(name);
        let args = ["sql", &query, "--batch-size", "100", "-o", arg(&out)];
        let error = fails(&args);
        assert!(error.contains("in.fasta") && error.contains("UTF-8"), "{error}");
        assert!(!out.exists(), "{name}: a failed write must leave no file");
        std::fs::write(&out, "precious").expect("write");
        fails(&args);
        assert_eq!(std::fs::read_to_string(&out).expect("read"), "precious", "{name}");
        std::fs::remove_file(&out).expect("remove");
    }
    let copy = dir.path().join("copy.parquet");
    let statement = format!("COPY ({query}) TO '{}'", copy.display());
    fails(&["sql", &statement, "--batch-size", "100"]);
    assert!(!copy.exists(), "COPY must leave no partial file");
    assert_eq!(listing(dir.path()), ["in.fasta"], "no partial files are left behind");

    // a COPY over the very file it reads rewrites it whole
    let sample = dir.path().join("s.parquet");
    std::fs::copy(root().join("sample_data/sample.parquet"), &sample).expect("copy");
    let count = format!("SELECT count(*) AS n FROM '{}'", sample.display());
    let before = ok(&["sql", &count]);
    let rewrite = format!("COPY (SELECT * FROM '{0}') TO '{0}'", sample.display());
    ok(&["sql", &rewrite]);
    assert_eq!(ok(&["sql", &count]), before);
}

#[test]
fn annotate_and_embed_onto_an_existing_file_keep_it_when_they_fail() {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("in.fasta");
    fails_late(&input, 200);
    let out = dir.path().join("out.parquet");
    std::fs::write(&out, "precious").expect("write");
    for command in [
        vec!["annotate", "-i", arg(&input), "-o", arg(&out), "--predict", "toxicity"],
        vec!["embed", "-i", arg(&input), "-o", arg(&out)],
    ] {
        let mut args = command.clone();
        args.extend(["--batch-size", "50"]);
        let error = fails(&args);
        assert!(error.contains("in.fasta"), "{error}");
        assert_eq!(std::fs::read_to_string(&out).expect("read"), "precious", "{command:?}");
        assert_eq!(listing(dir.path()), ["in.fasta", "out.parquet"]);
    }
    // annotating a file onto itself reads it whole before replacing it
    let sample = dir.path().join("s.parquet");
    std::fs::copy(root().join("sample_data/sample.parquet"), &sample).expect("copy");
    ok(&[
        "annotate",
        "-i",
        arg(&sample),
        "-o",
        arg(&sample),
        "--predict",
        "toxicity",
    ]);
    let count = format!("SELECT count(*) AS n, count(toxicity) AS t FROM '{}'", sample.display());
    let rows = ok(&[
        "sql",
        &format!(
            "SELECT count(*) AS n FROM '{}'",
            root().join("sample_data/sample.parquet").display()
        ),
    ]);
    let n = rows.lines().nth(1).expect("count");
    assert_eq!(ok(&["sql", &count]), format!("n,t\n{n},{n}\n"));
}

#[cfg(unix)]
#[test]
fn sigterm_and_sigint_during_annotate_keep_the_old_file_and_leave_no_partial_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("in.fasta");
    let text: String = (0..30_000)
        .map(|i| format!(">p{i}\nMKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQ\n"))
        .collect();
    std::fs::write(&input, text).expect("write");
    let out = dir.path().join("out.parquet");
    for (signal, code) in [(libc::SIGTERM, 143), (libc::SIGINT, 130)] {
        std::fs::write(&out, "precious").expect("write");
        let child = Command::new(env!("CARGO_BIN_EXE_r2dl"))
            .args(["annotate", "-i", arg(&input), "-o", arg(&out), "--predict", "toxicity"])
            .current_dir(root())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("r2dl runs");
        // wait until the result is being written, then signal
        let started = Instant::now();
        while !listing(dir.path()).iter().any(|n| n.contains("r2dl-partial")) {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "annotate never started writing"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: kill only sends a signal to the child's pid.
        assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, signal) }, 0);
        let done = child.wait_with_output().expect("r2dl ends");
        let stderr = String::from_utf8_lossy(&done.stderr);
        assert_eq!(done.status.code(), Some(code), "{stderr}");
        assert!(stderr.contains("interrupted"), "{stderr}");
        assert_eq!(std::fs::read_to_string(&out).expect("read"), "precious");
        assert_eq!(
            listing(dir.path()),
            ["in.fasta", "out.parquet"],
            "no partial file is left"
        );
    }
}

#[test]
fn unusable_training_settings_are_errors_before_anything_is_allocated() {
    let dir = tempfile::tempdir().expect("temp dir");
    let train = root().join("tests/data/labelled/toxicity_train.csv");
    let out = dir.path().join("o");
    let train_args = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = ["train", "--name", "x", "--train", arg(&train), "--out", arg(&out)]
            .map(String::from)
            .to_vec();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    for (setting, value, says) in [
        ("--lr", "NaN", "--lr must be a positive number"),
        ("--head-lr", "inf", "--head-lr must be a positive number"),
        ("--lr", "-0.5", "--lr must be a positive number"),
        ("--k", "100000", "--k must be between 1 and 384"),
        (
            "--head-hidden",
            "1000000000000",
            "--head-hidden must be between 0 and 4096",
        ),
        ("--batch-size", "0", "--batch-size must be between 1"),
    ] {
        let setting_value = format!("{setting}={value}");
        let started = Instant::now();
        let error = fails(&train_args(&[&setting_value]));
        assert!(error.contains(says), "{setting} {value}: {error}");
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{setting} {value} took too long"
        );
        assert!(!out.exists(), "{setting} {value} wrote a predictor");
    }
    // rates that blow the weights up stop training with an error instead of saving NaN
    let error = fails(&train_args(&["--lr=1e30", "--head-lr=1e30"]));
    assert!(error.contains("training diverged at epoch 1"), "{error}");
    assert!(
        !out.join("predictor.safetensors").exists(),
        "a diverged run saved a predictor"
    );
    // --max-length past the model's positions trains on windows the model can hold
    let long = dir.path().join("long.csv");
    let residues = "ACDEFGHIKLMNPQRSTVWY".repeat(40);
    let rows: String = (0..12)
        .map(|i| format!("{},{}\n", &residues[i..i + 700], i % 2))
        .collect();
    std::fs::write(&long, format!("sequence,label\n{rows}")).expect("write");
    ok(&[
        "train",
        "--name",
        "x",
        "--train",
        arg(&long),
        "--out",
        arg(&out),
        "--max-length",
        "1000",
        "--epochs",
        "1",
    ]);
}

#[test]
fn a_missing_number_among_regression_labels_names_its_record() {
    let dir = tempfile::tempdir().expect("temp dir");
    let train = dir.path().join("r.csv");
    let rows: String = (0..22)
        .map(|i| {
            format!(
                "MKTAYIAK{},{}\n",
                "QRS".repeat(i % 5 + 1),
                if i == 7 { "NaN".into() } else { format!("{}.5", i) }
            )
        })
        .collect();
    std::fs::write(&train, format!("sequence,label\n{rows}")).expect("write");
    let out = dir.path().join("o");
    let error = fails(&["train", "--name", "x", "--train", arg(&train), "--out", arg(&out)]);
    assert!(
        error.contains("record 8") && error.contains("'NaN' is not a number"),
        "{error}"
    );
}

#[test]
fn too_many_partitions_are_refused() {
    let out = r2dl(&["sql", "SELECT 1 AS x", "--partitions", "10000"]);
    assert_eq!(out.status.code(), Some(2), "a usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("1..=256"));
}

#[test]
fn a_broken_predictor_folder_fails_only_its_own_function() {
    let dir = tempfile::tempdir().expect("temp dir");
    let udfs = dir.path().join("more");
    std::fs::create_dir_all(udfs.join("wreck")).expect("mkdir");
    std::fs::write(udfs.join("wreck/manifest.json"), "{ not json").expect("write");
    let with = |args: &[&str]| -> Vec<String> {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.extend(["--udfs".to_string(), udfs.display().to_string()]);
        all
    };
    let run = |args: Vec<String>| r2dl(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let fine = run(with(&[
        "sql",
        "SELECT predict_toxicity('MKTAYIAKQRQ') > 0 AS p, 1 AS x",
    ]));
    assert!(fine.status.success(), "{}", String::from_utf8_lossy(&fine.stderr));
    let args = with(&["sql", "SELECT predict_wreck('MKT')"]);
    let error = failed(&["sql", "predict_wreck"], &run(args));
    assert!(
        error.contains("predict_wreck cannot be served") && error.contains("wreck"),
        "{error}"
    );
    let info = run(with(&["info"]));
    assert!(info.status.success());
    assert!(String::from_utf8_lossy(&info.stdout).contains("predict_wreck  BROKEN"));
    let args = with(&[
        "annotate",
        "-i",
        "sample_data/sample.fasta",
        "-o",
        "/tmp/unused.parquet",
        "--predict",
        "wreck",
    ]);
    let error = failed(&["annotate", "wreck"], &run(args));
    assert!(error.contains("is broken"), "{error}");
}

/// What `r2dl eval` says of the predictor folder `predictor` on the toxicity test rows (it must fail).
fn eval_error(predictor: &Path) -> String {
    fails(&[
        "eval",
        "--predictor",
        arg(predictor),
        "--data",
        "tests/data/labelled/toxicity_test.csv",
    ])
}

/// The predictor files a test damages: a copy of the shipped toxicity predictor.
fn predictor_copy(dir: &Path) -> PathBuf {
    let copy = dir.join("toxicity");
    std::fs::create_dir_all(&copy).expect("mkdir");
    for file in ["manifest.json", "predictor.safetensors"] {
        std::fs::copy(root().join("udfs/toxicity").join(file), copy.join(file)).expect("copy");
    }
    copy
}

#[test]
fn a_predictor_holding_nan_is_an_error_not_constant_predictions() {
    let dir = tempfile::tempdir().expect("temp dir");
    let copy = predictor_copy(dir.path());
    let weights = copy.join("predictor.safetensors");
    let mut tensors = candle_core::safetensors::load(&weights, &candle_core::Device::Cpu).expect("load");
    let bias = &tensors["head.bias"];
    let nan = (bias * f64::NAN).expect("multiply");
    tensors.insert("head.bias".into(), nan);
    candle_core::safetensors::save(&tensors, &weights).expect("save");
    // as a diverged training would write it: the manifest's checksum is the NaN file's
    let manifest_path = copy.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).expect("read")).expect("json");
    manifest["predictor_sha256"] = r2dl::model::sha256_file(&weights).expect("hash").into();
    std::fs::write(&manifest_path, manifest.to_string()).expect("write");
    let error = eval_error(&copy);
    assert!(
        error.contains("predictor.safetensors") && error.contains("NaN"),
        "{error}"
    );
}

#[test]
fn a_predictor_whose_weights_were_swapped_fails_its_checksum() {
    let dir = tempfile::tempdir().expect("temp dir");
    let copy = predictor_copy(dir.path());
    // another valid predictor's weights in this one's folder: loadable, but not what was trained
    std::fs::copy(
        root().join("udfs/amp/predictor.safetensors"),
        copy.join("predictor.safetensors"),
    )
    .expect("copy");
    let error = eval_error(&copy);
    assert!(
        error.contains("predictor.safetensors") && error.contains("SHA-256") && error.contains("manifest.json says"),
        "{error}"
    );
}
