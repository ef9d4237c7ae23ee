//! `r2dl sql`: run statements in order, print each result, or write the last one to a file.

use std::collections::HashMap;
use std::io::{self, BufWriter, IsTerminal, Read, Write};
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::UInt64Type;
use datafusion::dataframe::{DataFrame, DataFrameWriteOptions};
use datafusion::datasource::file_format::format_as_file_type;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::DFParser;
use datafusion::sql::sqlparser::dialect::GenericDialect;

use r2dl::datasource::{FastaFormatFactory, is_fasta_name};

use super::output::{self, OutputFormat};
use super::output_file::OutputFile;
use super::{CliError, ModelArgs, SessionArgs, SqlArgs};

/// Runs `r2dl sql`.
pub async fn run(args: SqlArgs) -> Result<(), CliError> {
    let sql = read_sql(&args)?;
    let statements = DFParser::parse_sql_with_dialect(&sql, &GenericDialect {})?;
    if statements.is_empty() {
        return Err(CliError::Usage {
            message: "no SQL statement given".into(),
            hint: "r2dl sql \"SELECT count(*) FROM 'proteins.fasta'\"",
        });
    }
    let ctx = session(&args.session, &args.model).await?;
    let format = args
        .format
        .unwrap_or_else(|| OutputFormat::default_for(io::stdout().is_terminal()));
    let mut out = BufWriter::new(io::stdout().lock());
    let last = statements.len() - 1;
    for (i, statement) in statements.into_iter().enumerate() {
        let plan = ctx.state().statement_to_plan(statement).await?;
        let (plan, copy_output) = copy_to_partial_file(plan)?;
        let df = ctx.execute_logical_plan(plan).await?;
        if i == last
            && let Some(path) = &args.output
        {
            let rows = write_file(&ctx, df, path).await?;
            eprintln!("wrote {rows} rows to {}", path.display());
        } else if !df.schema().fields().is_empty() {
            // Statements without a result (CREATE, SET, DROP…) print nothing.
            let printed = output::print(df.execute_stream().await?, format, &mut out).await;
            match printed.and_then(|()| out.flush().map_err(CliError::Output)) {
                Err(CliError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
                    // a COPY's count comes after its file is written whole
                    return copy_output.map_or(Ok(()), OutputFile::commit);
                }
                other => other?,
            }
        }
        if let Some(output) = copy_output {
            output.commit()?;
        }
    }
    Ok(())
}

/// `COPY … TO 'x.ext'` into one local file writes to an [`OutputFile`] instead, which the
/// caller commits once the statement has run; other plans pass unchanged.
fn copy_to_partial_file(plan: LogicalPlan) -> Result<(LogicalPlan, Option<OutputFile>), CliError> {
    let LogicalPlan::Copy(mut copy) = plan else {
        return Ok((plan, None));
    };
    let url = copy.output_url.as_str();
    let one_local_file = copy.partition_by.is_empty()
        && !url.contains("://")
        && !url.ends_with('/')
        && Path::new(url).extension().is_some();
    if !one_local_file {
        return Ok((LogicalPlan::Copy(copy), None));
    }
    let (output, _) = OutputFile::create(Path::new(url))?;
    copy.output_url = output.partial().to_string_lossy().into_owned();
    Ok((LogicalPlan::Copy(copy), Some(output)))
}

/// A session with r2dl's tables and functions, the model chosen by `model`; on the cluster
/// `--cluster` names, if it does.
pub async fn session(session: &SessionArgs, model: &ModelArgs) -> Result<SessionContext, CliError> {
    let mut config = SessionConfig::new().with_information_schema(true);
    if let Some(partitions) = session.partitions {
        config = config.with_target_partitions(usize::from(partitions));
    }
    if let Some(batch_size) = session.batch_size {
        config = config.with_batch_size(batch_size as usize);
    }
    match &session.cluster {
        None => Ok(model.r2dl().session_context(config)?),
        #[cfg(feature = "cluster")]
        Some(url) => super::cluster::client(url, model, config).await,
        #[cfg(not(feature = "cluster"))]
        Some(_) => Err(CliError::Usage {
            message: "this r2dl was built without cluster support".into(),
            hint: "build it with `cargo build --release --features cluster`",
        }),
    }
}

fn read_sql(args: &SqlArgs) -> Result<String, CliError> {
    if let Some(query) = &args.query {
        return Ok(query.clone());
    }
    let Some(path) = &args.file else {
        return Err(CliError::Usage {
            message: "no SQL given".into(),
            hint: "pass the statements as an argument or with -f FILE",
        });
    };
    let read_error = |source| CliError::SqlFile {
        path: path.clone(),
        source,
    };
    if path.as_os_str() == "-" {
        let mut sql = String::new();
        io::stdin().read_to_string(&mut sql).map_err(read_error)?;
        Ok(sql)
    } else {
        std::fs::read_to_string(path).map_err(read_error)
    }
}

/// Writes the result to one file whose extension names the format, whole or not at all (see
/// [`OutputFile`]); returns the rows written.
pub async fn write_file(ctx: &SessionContext, df: DataFrame, path: &Path) -> Result<u64, CliError> {
    let (output, _) = OutputFile::create(path)?;
    let rows = write_result(ctx, df, path, output.partial()).await?;
    output.commit()?;
    Ok(rows)
}

/// Writes `df` to `partial`, in the format `path`'s extension names.
async fn write_result(ctx: &SessionContext, df: DataFrame, path: &Path, partial: &Path) -> Result<u64, CliError> {
    let name = path.to_string_lossy();
    let partial = partial.to_string_lossy();
    let options = DataFrameWriteOptions::new().with_single_file_output(true);
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let counts = match extension.as_str() {
        "parquet" => df.write_parquet(&partial, options, None).await?,
        "csv" => df.write_csv(&partial, options, None).await?,
        "json" | "ndjson" => df.write_json(&partial, options, None).await?,
        _ if is_fasta_name(&name) && !name.ends_with("gz") => {
            let file_type = format_as_file_type(Arc::new(FastaFormatFactory::new(extension)));
            let single_file = HashMap::from([("single_file_output".to_string(), "true".to_string())]);
            let plan = LogicalPlanBuilder::copy_to(
                df.into_unoptimized_plan(),
                partial.to_string(),
                file_type,
                single_file,
                vec![],
            )?
            .build()?;
            ctx.execute_logical_plan(plan).await?.collect().await?
        }
        _ => {
            return Err(CliError::Usage {
                message: format!("cannot tell the output format of '{name}' from its extension"),
                hint: "use a file name ending in .parquet, .csv, .json, .ndjson or .fasta",
            });
        }
    };
    Ok(count_rows(&counts))
}

/// The row count that DataFusion's writers return as a one-column `count` batch.
fn count_rows(batches: &[RecordBatch]) -> u64 {
    batches
        .iter()
        .filter_map(|b| b.column(0).as_primitive_opt::<UInt64Type>())
        .flat_map(|a| a.iter().flatten())
        .sum()
}
