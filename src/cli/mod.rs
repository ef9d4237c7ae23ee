//! Command-line arguments and the commands they run.

mod errors;
mod output;
mod sql;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use errors::CliError;
pub use errors::report;
pub use output::OutputFormat;

const EXAMPLES: &str = "\
Examples:
  r2dl sql \"SELECT count(*), sum(length(sequence)) FROM 'sample_data/sample.fasta'\"
  r2dl sql \"SELECT id, length(sequence) AS len FROM 'proteome.fasta.gz' ORDER BY len DESC LIMIT 5\"
  r2dl sql -f queries.sql --format json
  r2dl sql \"SELECT * FROM 'sample_data/sample.parquet' WHERE length(sequence) < 30\" -o short.fasta
  r2dl sql \"COPY (SELECT * FROM fasta_scan('in.fa')) TO 'out.parquet'\"";

/// Protein sequences in SQL: FASTA, FASTA.gz, Parquet and CSV files as tables.
#[derive(Debug, Parser)]
#[command(name = "r2dl", version, about, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run SQL statements (separated by `;`) and print each result in order.
    #[command(after_help = EXAMPLES)]
    Sql(SqlArgs),
}

/// Arguments of `r2dl sql`.
#[derive(Debug, clap::Args)]
pub struct SqlArgs {
    /// The SQL statements to run.
    #[arg(required_unless_present = "file", conflicts_with = "file")]
    query: Option<String>,
    /// Read the statements from this file (`-` for standard input).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
    /// How to print results: `table` (default on a terminal), `csv` (default when piped),
    /// `json` (one array) or `ndjson` (one object per line).
    #[arg(long, value_enum)]
    format: Option<OutputFormat>,
    /// Write the last statement's result to this file instead of printing it; the format
    /// follows the extension: .parquet, .csv, .json, .fasta (.fa, .faa, .fna, .fas).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Parallel partitions for scans and operators (default: the number of cores).
    #[arg(long, value_name = "N")]
    partitions: Option<usize>,
    /// Rows per record batch.
    #[arg(long, value_name = "N")]
    batch_size: Option<usize>,
}

/// Runs the command that `cli` names.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Sql(args) => sql::run(args).await,
    }
}
