//! Which executor scanned what: an execution engine that, after each task, prints the rows its
//! FASTA and file scans produced and the byte ranges they read.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use ballista_core::JobId;
use ballista_core::error::BallistaError;
use ballista_core::serde::protobuf::{RuntimeStatsReport, ShuffleWritePartition, TaskColumnStats, WindowStateReport};
use ballista_executor::execution_engine::{DefaultExecutionEngine, ExecutionEngine, QueryStageExecutor};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::metrics::MetricsSet;
use datafusion::prelude::SessionConfig;

/// Ballista's execution engine, saying on standard error what each task scanned.
pub struct ReportingEngine {
    inner: DefaultExecutionEngine,
    executor: String,
}

impl ReportingEngine {
    /// The engine of the executor named `executor` (its address) in reports.
    pub fn new(executor: String) -> Self {
        Self {
            inner: DefaultExecutionEngine::new(),
            executor,
        }
    }
}

impl ExecutionEngine for ReportingEngine {
    fn create_query_stage_exec(
        &self,
        job_id: JobId,
        stage_id: usize,
        task_id: usize,
        global_output_partition_ids: Vec<usize>,
        plan: Arc<dyn ExecutionPlan>,
        work_dir: &str,
        config: &SessionConfig,
    ) -> Result<Arc<dyn QueryStageExecutor>> {
        let inner = self.inner.create_query_stage_exec(
            job_id.clone(),
            stage_id,
            task_id,
            global_output_partition_ids,
            Arc::clone(&plan),
            work_dir,
            config,
        )?;
        Ok(Arc::new(ReportingStage {
            inner,
            plan,
            label: format!("executor {}: job {job_id} stage {stage_id}", self.executor),
        }))
    }
}

/// A query stage that reports its scans once a task has run.
#[derive(Debug)]
struct ReportingStage {
    inner: Arc<dyn QueryStageExecutor>,
    plan: Arc<dyn ExecutionPlan>,
    label: String,
}

impl fmt::Display for ReportingStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

/// `N rows of path, …` for each file scan of `plan`: the rows this task's partitions of the
/// scan produced.
fn scans(plan: &Arc<dyn ExecutionPlan>) -> Vec<String> {
    let mut scans = Vec::new();
    let _ = plan.apply(|node| {
        if let Some(scan) = node.downcast_ref::<DataSourceExec>()
            && let Some(files) = scan.data_source().downcast_ref::<FileScanConfig>()
        {
            let rows = node.metrics().and_then(|m| m.output_rows()).unwrap_or(0);
            let mut paths: Vec<String> = files
                .file_groups
                .iter()
                .flat_map(|group| group.files())
                .map(|file| match files.object_store_url.as_str() {
                    "file:///" => format!("/{}", file.object_meta.location),
                    store => format!("{store}{}", file.object_meta.location),
                })
                .collect();
            paths.dedup();
            scans.push(format!("{rows} rows of {}", paths.join(", ")));
        }
        Ok(TreeNodeRecursion::Continue)
    });
    scans
}

/// A task's error as the CLI would print it: Ballista's own wrapping taken off first.
fn task_message(error: &DataFusionError) -> String {
    if let DataFusionError::External(inner) = error
        && let Some(BallistaError::DataFusionError(inner)) = inner.downcast_ref::<BallistaError>()
    {
        return task_message(inner);
    }
    if let DataFusionError::Shared(inner) = error {
        return task_message(inner);
    }
    crate::error_message(error)
}

#[async_trait]
impl QueryStageExecutor for ReportingStage {
    async fn execute_query_stage(
        &self,
        task_id: usize,
        context: Arc<TaskContext>,
    ) -> Result<Vec<ShuffleWritePartition>> {
        match self.inner.execute_query_stage(task_id, context).await {
            Ok(partitions) => {
                for scan in scans(&self.plan) {
                    eprintln!("{} task {task_id}: scanned {scan}", self.label);
                }
                Ok(partitions)
            }
            // Ballista passes a task's error on in Rust's debug form; its own message, as the
            // CLI would print it locally, is what the client should show
            // (`r2dl::error_message` takes it out again).
            Err(e) => Err(DataFusionError::Execution(task_message(&e))),
        }
    }

    fn collect_plan_metrics(&self) -> Vec<MetricsSet> {
        self.inner.collect_plan_metrics()
    }

    fn collect_runtime_stats_reports(&self) -> Vec<RuntimeStatsReport> {
        self.inner.collect_runtime_stats_reports()
    }

    fn collect_window_state_reports(&self) -> Result<Vec<WindowStateReport>> {
        self.inner.collect_window_state_reports()
    }

    fn collect_column_stats(&self) -> Vec<TaskColumnStats> {
        self.inner.collect_column_stats()
    }
}
