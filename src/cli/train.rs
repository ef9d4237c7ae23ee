//! `r2dl train` and `r2dl eval`: train a predictor into a folder; measure one on labelled data.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use r2dl::predictor::metrics::Metrics;
use r2dl::predictor::{HyperParameters, Predictor, is_function_name};
use r2dl::runtime::{run_on_compute_pool, shared_model};
use r2dl::train::{
    DEFAULT_RIDGE_FOLDS, DataSource, Datasets, KmerIndex, NOVEL_BELOW, NOVELTY_K, Progress, TrainSpec,
    evaluate_subsets, read_labelled, train_ensemble,
};

use super::output::Printer;
use super::{CliError, EvalArgs, TrainArgs};

/// Runs `r2dl train`.
pub async fn run_train(args: TrainArgs) -> Result<(), CliError> {
    if !is_function_name(&args.name) {
        return Err(CliError::Usage {
            message: format!("'{}' cannot name a SQL function predict_<name>", args.name),
            hint: "use lower-case letters, digits and _, e.g. --name toxicity",
        });
    }
    let data = read_datasets(&args).await?;
    let spec = train_spec(&args);
    let model = shared_model(&args.model.spec())?;

    // The first Ctrl-C stops training at the next step (the checkpoint of the last finished epoch
    // resumes with --resume); a second one ends the process at once.
    on_ctrl_c();
    let bar = progress_bar();
    let mut report = |progress: Progress| show_progress(&bar, progress);
    let members = args.ensemble.unwrap_or(1);
    let predictor = run_on_compute_pool(|| train_ensemble(&model, &data, &spec, members, &mut report, &STOP));
    bar.finish_and_clear();
    let predictor = predictor?;
    let m = &predictor.manifest;
    let ensemble = match members {
        1 => String::new(),
        n => format!("an ensemble of {n} members, the first's "),
    };
    // the closed-form fit, kept as it was, is "epoch 0"
    let kept = match (m.training.best_epoch, m.training.ridge_penalty) {
        (0, Some(penalty)) => format!("the closed-form fit (ridge penalty {penalty:.2e}) kept"),
        (best, _) => format!("best epoch {best}"),
    };
    eprintln!(
        "trained predict_{} ({}, {} training rows, {ensemble}{kept}, {} epochs, {:.1} s in all) → {}",
        m.name,
        m.kind,
        m.training_data.train_rows,
        m.training.epochs_run,
        m.training.seconds,
        spec.out.display()
    );
    for (split, metrics) in &m.metrics {
        eprintln!("  {split}: {}", metrics_line(metrics));
    }
    Ok(())
}

/// The training rows (`--train` or `--query`) and the optional validation and test files.
async fn read_datasets(args: &TrainArgs) -> Result<Datasets, CliError> {
    let ctx = args.model.r2dl().session_context(Default::default())?;
    let train_source = match (&args.train, &args.query) {
        (Some(path), None) => DataSource::File(path.clone()),
        (None, Some(sql)) => DataSource::Query(sql.clone()),
        _ => {
            return Err(CliError::Usage {
                message: "give the training rows with --train FILE or --query SQL".into(),
                hint: "r2dl train --name amp --train amp/train.csv",
            });
        }
    };
    let read_file = async |path: &Option<PathBuf>| match path {
        Some(path) => read_labelled(&ctx, &DataSource::File(path.clone())).await.map(Some),
        None => Ok(None),
    };
    Ok(Datasets {
        train: read_labelled(&ctx, &train_source).await?,
        valid: read_file(&args.valid).await?,
        test: read_file(&args.test).await?,
    })
}

/// What to train: the arguments over the default settings; the folder defaults to `udfs/NAME`.
fn train_spec(args: &TrainArgs) -> TrainSpec {
    let defaults = HyperParameters::default();
    let hyper = HyperParameters {
        epochs: args.epochs.unwrap_or(defaults.epochs),
        batch_size: args.batch_size.unwrap_or(defaults.batch_size),
        lr_theta: args.lr.unwrap_or(defaults.lr_theta),
        lr_head: args.head_lr.unwrap_or(defaults.lr_head),
        k: args.k.unwrap_or(defaults.k),
        recode_every: args.recode_every.unwrap_or(defaults.recode_every),
        patience: args.patience.unwrap_or(defaults.patience),
        seed: args.seed.unwrap_or(defaults.seed),
        max_length: args.max_length.unwrap_or(defaults.max_length),
        head_hidden: args.head_hidden.unwrap_or(defaults.head_hidden),
        readout_layers: args.readout.clone(),
        valid_fraction: args.holdout.unwrap_or(defaults.valid_fraction),
        schedule: args.schedule.unwrap_or(defaults.schedule),
        average_last: args.average_last.unwrap_or(defaults.average_last),
        pool: args.pool.unwrap_or(defaults.pool),
        standardise: args.standardise,
        ridge_head: args.ridge_head,
        ridge_folds: args
            .ridge_folds
            .unwrap_or(if args.ridge_head { DEFAULT_RIDGE_FOLDS } else { 0 }),
        context: args.context.unwrap_or(defaults.context),
        segments: args.segments.unwrap_or(defaults.segments),
        ..defaults
    };
    TrainSpec {
        name: args.name.clone(),
        kind: args.kind,
        positive: args.positive.clone(),
        limit: args.limit,
        hyper,
        out: args
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from(r2dl::predictor::UDFS_DIR).join(&args.name)),
        resume: args.resume,
    }
}

/// Moves the bar, and prints each epoch's validation line (and each ensemble member's start).
fn show_progress(bar: &ProgressBar, progress: Progress) {
    match progress {
        Progress::Member { index, members } => say(bar, format!("member {index} of {members}")),
        Progress::Start {
            epochs,
            steps_per_epoch,
            first_epoch,
        } => {
            bar.set_length((epochs * steps_per_epoch) as u64);
            bar.set_position(((first_epoch - 1) * steps_per_epoch) as u64);
            bar.reset_eta();
        }
        Progress::Step { epoch, loss } => {
            bar.set_message(format!("epoch {epoch} loss {loss:.4}"));
            bar.inc(1);
        }
        Progress::HeadFitted {
            penalty,
            score,
            seconds,
        } => say(
            bar,
            match score {
                Some(score) => format!(
                    "output mapping fitted (ridge penalty {penalty:.2e}): validation {}, loss {}, {seconds:.1} s",
                    score.metric_text(),
                    score.loss_text()
                ),
                None => {
                    format!("output mapping fitted (ridge penalty {penalty:.2e}): no validation rows, {seconds:.1} s")
                }
            },
        ),
        Progress::Epoch {
            epoch,
            score,
            best,
            seconds,
        } => {
            let line = match (score, best) {
                (Some(score), Some(best)) => format!(
                    "epoch {epoch}: validation {}, loss {} (best {}, loss {}), {seconds:.1} s",
                    score.metric_text(),
                    score.loss_text(),
                    best.metric_text(),
                    best.loss_text()
                ),
                _ => format!("epoch {epoch}: no validation rows, {seconds:.1} s"),
            };
            say(bar, line)
        }
    }
}

/// Prints `line` above the bar, or on standard error when the bar is hidden.
fn say(bar: &ProgressBar, line: String) {
    if bar.is_hidden() {
        eprintln!("{line}")
    } else {
        bar.println(line)
    }
}

/// A bar on standard error when it is a terminal; hidden otherwise.
fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::new(0);
    if std::io::stderr().is_terminal() {
        let style = ProgressStyle::with_template("{bar:30} {pos}/{len} steps {msg} [{elapsed_precise}, ETA {eta}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
    } else {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar
}

/// `name value` pairs, four decimals.
fn metrics_line(metrics: &Metrics) -> String {
    metrics
        .iter()
        .map(|(k, v)| {
            if k == "n" {
                format!("n {v}")
            } else {
                format!("{k} {v:.4}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs `r2dl eval`: the metrics on all rows, and on the novel ones.
pub async fn run_eval(args: EvalArgs) -> Result<(), CliError> {
    let r2dl = args.model.r2dl();
    let predictor = load_predictor(&r2dl, &args.predictor)?;
    let ctx = r2dl.session_context(Default::default())?;
    let rows = read_labelled(&ctx, &DataSource::File(args.data.clone())).await?;
    let train = args.train.clone().or_else(|| {
        let source = PathBuf::from(&predictor.manifest.training_data.source);
        source.is_file().then_some(source)
    });
    let novel = match &train {
        Some(path) => {
            let train_rows = read_labelled(&ctx, &DataSource::File(path.clone())).await?;
            let index = KmerIndex::new(train_rows.sequences.iter().map(String::as_str), NOVELTY_K);
            Some(index.novel(rows.sequences.iter().map(String::as_str)))
        }
        None => None,
    };
    let model = shared_model(&args.model.spec())?;
    // one pass of the model scores all rows and the novel ones
    let all: Vec<usize> = (0..rows.len()).collect();
    let mut subsets: Vec<&[usize]> = vec![&all];
    subsets.extend(novel.as_deref().filter(|picked| !picked.is_empty()));
    let mut scores = run_on_compute_pool(|| evaluate_subsets(&predictor, &model, &rows, &subsets))?.into_iter();
    let metrics = scores.next().unwrap_or_default();
    let novel_metrics = scores.next();
    let name = &predictor.manifest.name;
    let mut out = Printer::new();
    let share = format!("under {:.0} % of their {NOVELTY_K}-mers", NOVEL_BELOW * 100.0);
    if args.format.as_deref() == Some("json") {
        let novel = novel.as_ref().map(|picked| {
            serde_json::json!({ "train": train, "k": NOVELTY_K, "below": NOVEL_BELOW, "rows": picked.len(), "metrics": novel_metrics })
        });
        let doc = serde_json::json!({
            "predictor": name,
            "kind": predictor.manifest.kind,
            "data": args.data,
            "metrics": metrics,
            "novel": novel,
        });
        out.line(format_args!("{doc}"));
        return out.finish();
    }
    out.line(format_args!(
        "predict_{name} on {}: {}",
        args.data.display(),
        metrics_line(&metrics)
    ));
    match (&novel, &train) {
        (Some(picked), Some(train)) => out.line(format_args!(
            "  novel ({} of {} rows share {share} with every row of {}): {}",
            picked.len(),
            rows.len(),
            train.display(),
            novel_metrics.as_ref().map_or_else(|| "no rows".into(), metrics_line)
        )),
        _ => out.line(format_args!(
            "  novel: not measured (training file '{}' not found; pass --train FILE)",
            predictor.manifest.training_data.source
        )),
    }
    out.finish()
}

/// A predictor from its folder, or by name from the catalog.
fn load_predictor(r2dl: &r2dl::R2dl, path: &Path) -> Result<Predictor, CliError> {
    if !path.exists()
        && let Some(entry) = r2dl.catalog()?.get(&path.to_string_lossy())
    {
        return Ok(Predictor::load(&entry.dir)?);
    }
    Ok(Predictor::load(path)?)
}

/// Set by the first Ctrl-C: training stops at the next step.
static STOP: AtomicBool = AtomicBool::new(false);

/// Routes SIGINT to `STOP` (the second SIGINT exits with status 130).
#[cfg(unix)]
fn on_ctrl_c() {
    extern "C" fn handle(_: libc::c_int) {
        // only async-signal-safe work here: an atomic swap and _exit
        if STOP.swap(true, Ordering::Relaxed) {
            // SAFETY: _exit is async-signal-safe and takes no pointers.
            unsafe { libc::_exit(130) };
        }
    }
    let handler: extern "C" fn(libc::c_int) = handle;
    // SAFETY: `handle` only touches an atomic and calls _exit, both safe in a signal handler.
    if unsafe { libc::signal(libc::SIGINT, handler as libc::sighandler_t) } == libc::SIG_ERR {
        eprintln!("warning: Ctrl-C will end training without a checkpoint message");
    }
}

/// Elsewhere Ctrl-C ends the process; the last epoch's checkpoint still resumes.
#[cfg(not(unix))]
fn on_ctrl_c() {}
