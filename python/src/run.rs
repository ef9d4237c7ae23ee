//! Model functions called from Python: run in r2dl's own session (the CLI's: one partition per
//! model query, rows in input order) on a Tokio runtime of this module's, while the calling
//! thread releases the GIL and watches for Ctrl-C.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arrow::array::{Array, ArrayRef, new_empty_array};
use arrow::compute::concat;
use arrow::datatypes::{Field, Schema};
use arrow::record_batch::RecordBatch;
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::MemTable;
use datafusion::execution::FunctionRegistry;
use datafusion::prelude::{SessionConfig, col};
use pyo3::prelude::*;
use r2dl::R2dl;
use tokio::runtime::{Handle, Runtime};
use tokio::task::JoinHandle;

use crate::R2dlError;

/// How often the waiting Python thread checks for signals.
const SIGNAL_CHECK: Duration = Duration::from_millis(100);

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .thread_name("r2dl")
            .enable_all()
            .build()
            .expect("r2dl cannot start its Tokio runtime (out of threads?)")
    })
}

/// The runtime that FASTA scans handed to datafusion-python run their I/O on.
pub fn handle() -> Handle {
    runtime().handle().clone()
}

/// `function(sequences)` in a session built by `r2dl`, as one array in input order.
pub fn call(
    py: Python<'_>,
    r2dl: R2dl,
    function: String,
    sequences: ArrayRef,
    invalid_residue: Option<String>,
) -> PyResult<ArrayRef> {
    let task = runtime().spawn(async move { evaluate(&r2dl, &function, sequences, invalid_residue).await });
    wait(py, task)
}

async fn evaluate(
    r2dl: &R2dl,
    function: &str,
    sequences: ArrayRef,
    invalid_residue: Option<String>,
) -> Result<ArrayRef> {
    let mut config = SessionConfig::new();
    r2dl::options::register_options(config.options_mut());
    if let Some(policy) = invalid_residue {
        config.options_mut().set("r2dl.invalid_residue", &policy)?;
    }
    let ctx = r2dl.session_context(config)?;
    let udf = match ctx.udf(function) {
        Ok(udf) if r2dl::udf::is_model_function(function) => udf,
        _ => {
            let mut names: Vec<String> = r2dl.functions()?.iter().map(|f| f.name().to_string()).collect();
            names.sort();
            return Err(DataFusionError::Plan(format!(
                "no r2dl function named '{function}'; there are: {}",
                names.join(", ")
            )));
        }
    };
    let schema = Arc::new(Schema::new(vec![Field::new(
        "sequence",
        sequences.data_type().clone(),
        true,
    )]));
    // batches of the session's batch size, as the CLI's scans make them: the model's float
    // rounding depends on which rows share a batch, so this is what makes the values equal the
    // CLI's bit for bit. A Ctrl-C is acted on between batches (see `wait`).
    let batch_rows = ctx.copied_config().batch_size().max(1);
    let chunks = (0..sequences.len())
        .step_by(batch_rows)
        .map(|offset| {
            let rows = batch_rows.min(sequences.len() - offset);
            RecordBatch::try_new(Arc::clone(&schema), vec![sequences.slice(offset, rows)])
        })
        .collect::<Result<Vec<_>, _>>()?;
    let table = MemTable::try_new(schema, vec![chunks])?;
    let frame = ctx
        .read_table(Arc::new(table))?
        .select(vec![udf.call(vec![col("sequence")]).alias("value")])?;
    let data_type = frame.schema().field(0).data_type().clone();
    let batches = frame.collect().await?;
    let columns: Vec<&dyn Array> = batches.iter().map(|batch| batch.column(0).as_ref()).collect();
    Ok(match columns.as_slice() {
        [] => new_empty_array(&data_type),
        [one] => one.slice(0, one.len()),
        many => concat(many)?,
    })
}

/// Waits for `task` with the GIL released; a Ctrl-C (or any signal handler's exception) aborts
/// it and is raised at once. The aborted task stops when the batch it is computing ends.
fn wait<T: Send + 'static>(py: Python<'_>, mut task: JoinHandle<Result<T>>) -> PyResult<T> {
    loop {
        let finished = py.detach(|| runtime().block_on(async { tokio::time::timeout(SIGNAL_CHECK, &mut task).await }));
        match finished {
            Ok(Ok(result)) => return result.map_err(|e| crate::error(&e)),
            Ok(Err(join)) => return Err(R2dlError::new_err(format!("r2dl's worker stopped: {join}"))),
            Err(_still_running) => {
                if let Err(interrupt) = py.check_signals() {
                    task.abort();
                    return Err(interrupt);
                }
            }
        }
    }
}
