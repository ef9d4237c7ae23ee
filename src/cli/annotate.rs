//! `r2dl annotate -i proteome.fasta -o annotated.parquet --predict toxicity,amp [--embed]`:
//! sugar over `SELECT id, predict_toxicity(sequence) AS toxicity, … FROM 'proteome.fasta'`, with a
//! progress bar, written as Parquet that pyarrow, DuckDB and polars read as is.

use std::io::IsTerminal;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::Int64Type;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use r2dl::predictor::Kind;

use super::output_file::OutputFile;
use super::sql::session;
use super::{AnnotateArgs, CliError, LabelThreshold};

/// Runs `r2dl annotate`.
pub async fn run(args: AnnotateArgs) -> Result<(), CliError> {
    if !args.output.to_string_lossy().to_ascii_lowercase().ends_with(".parquet") {
        return Err(CliError::Usage {
            message: format!(
                "annotate writes Parquet; '{}' does not end in .parquet",
                args.output.display()
            ),
            hint: "for CSV or JSON, run the same SELECT with `r2dl sql … -o out.csv`",
        });
    }
    let sql = annotation_sql(&args)?;
    let input = args.input.to_string_lossy().replace('\'', "''");
    let ctx = session(&args.session, &args.model).await?;
    let total = count_rows(&ctx, &input).await?;
    let bar = ProgressBar::new(total);
    if std::io::stderr().is_terminal() {
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} sequences [{elapsed_precise}, ETA {eta}]")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
    } else {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let plan = ctx.state().create_logical_plan(&sql).await?;
    let df = ctx.execute_logical_plan(plan).await?;
    let mut stream = df.execute_stream().await?;
    let (output, file) = OutputFile::create(&args.output)?;
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let mut writer =
        ArrowWriter::try_new(file, stream.schema(), Some(properties)).map_err(|e| CliError::DataFusion(e.into()))?;
    let mut rows = 0;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        rows += batch.num_rows();
        bar.inc(batch.num_rows() as u64);
        writer.write(&batch).map_err(|e| CliError::DataFusion(e.into()))?;
    }
    writer.close().map_err(|e| CliError::DataFusion(e.into()))?;
    output.commit()?;
    bar.finish_and_clear();
    eprintln!("wrote {rows} annotated sequences to {}", args.output.display());
    Ok(())
}

/// The query behind `annotate`: `id`, one column per predictor (and a label column per binary
/// predictor with `-t`), the embedding with `--embed`.
fn annotation_sql(args: &AnnotateArgs) -> Result<String, CliError> {
    let catalog = args.model.r2dl().catalog()?;
    let names: Vec<&str> = args
        .predict
        .iter()
        .flat_map(|p| p.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if names.is_empty() && !args.embed {
        return Err(CliError::Usage {
            message: "nothing to annotate with".into(),
            hint: "name predictors with --predict toxicity,amp (see `r2dl info`) and/or add --embed",
        });
    }
    let mut columns = vec!["id".to_string()];
    let mut labels = Vec::new();
    for name in &names {
        if let Some(broken) = catalog.broken().iter().find(|b| b.name == *name) {
            return Err(CliError::Usage {
                message: format!(
                    "the predictor folder {} is broken: {}",
                    broken.dir.display(),
                    broken.error
                ),
                hint: "retrain it, or move the folder out of the udfs/ search path",
            });
        }
        let Some(entry) = catalog.get(name) else {
            let known: Vec<&str> = catalog.entries().iter().map(|e| e.manifest.name.as_str()).collect();
            return Err(CliError::Usage {
                message: format!("no predictor '{name}'; the catalog has: {}", known.join(", ")),
                hint: "`r2dl info` lists the predictors; --udfs DIR adds folders",
            });
        };
        columns.push(format!("predict_{name}(sequence) AS \"{name}\""));
        let manifest = &entry.manifest;
        if let (Some(threshold), Kind::Binary) = (args.threshold, manifest.kind) {
            let threshold = match threshold {
                LabelThreshold::Fixed(p) => p,
                LabelThreshold::Auto => manifest.decision_threshold.unwrap_or(0.5),
            };
            let positive = manifest.positive_label.clone().unwrap_or_default();
            let negative = manifest
                .labels
                .iter()
                .find(|l| **l != positive)
                .cloned()
                .unwrap_or_default();
            let quote = |s: &str| s.replace('\'', "''");
            labels.push(format!(
                "CASE WHEN \"{name}\" IS NULL THEN NULL WHEN \"{name}\" >= {threshold} THEN '{}' ELSE '{}' END AS \"{name}_label\"",
                quote(&positive),
                quote(&negative)
            ));
        }
    }
    if args.embed {
        columns.push("embed(sequence) AS embedding".into());
    }
    let input = args.input.to_string_lossy().replace('\'', "''");
    let inner = format!("SELECT {} FROM '{input}'", columns.join(", "));
    Ok(if labels.is_empty() {
        inner
    } else {
        format!("SELECT *, {} FROM ({inner})", labels.join(", "))
    })
}

/// Rows of the input (a fast scan; sizes the progress bar).
async fn count_rows(ctx: &datafusion::prelude::SessionContext, input: &str) -> Result<u64, CliError> {
    let batches = ctx
        .sql(&format!("SELECT count(*) FROM '{input}'"))
        .await?
        .collect()
        .await?;
    let count = batches
        .first()
        .and_then(|b| b.column(0).as_primitive_opt::<Int64Type>())
        .filter(|a| !a.is_empty() && a.is_valid(0))
        .map(|a| a.value(0));
    Ok(count.unwrap_or(0).max(0) as u64)
}
