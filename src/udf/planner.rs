//! Model queries run as one partition: the model already uses every core (its own compute
//! pool), and one partition keeps rows in file order. A [`QueryPlanner`] rather than a rule in
//! the CLI, so that every session built by [`crate::R2dl`] gets it. On a cluster the rule turns
//! around: each executor is a process with its own cores, so a model query's files are split
//! into as many byte ranges as the session has target partitions, however small the files.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::common::Result;
use datafusion::common::tree_node::TreeNode;
use datafusion::execution::SessionState;
use datafusion::execution::context::QueryPlanner;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_planner::{DefaultPhysicalPlanner, PhysicalPlanner};

use super::is_model_function;

/// Plans queries that call a model function (`embed`, `predict_*`) with one target partition
/// (or, [`distributed`](Self::distributed), with files split however small), and every other
/// query as the planner it wraps does.
#[derive(Debug, Default)]
pub struct ModelQueryPlanner {
    /// The planner to delegate to; DataFusion's default when `None`.
    inner: Option<Arc<dyn QueryPlanner + Send + Sync>>,
    /// Whether the plan runs on a cluster.
    distributed: bool,
}

impl ModelQueryPlanner {
    /// Wraps `inner` (DataFusion's default planner when `None`): model queries as one partition.
    pub fn new(inner: Option<Arc<dyn QueryPlanner + Send + Sync>>) -> Self {
        Self {
            inner,
            distributed: false,
        }
    }

    /// Wraps `inner` for a cluster's scheduler: a model query keeps the session's target
    /// partitions, and its files are split into byte ranges whatever their size (DataFusion
    /// splits only files over `datafusion.optimizer.repartition_file_min_size`, 10 MB, but a
    /// model spends seconds on a few kilobytes), so the executors share the work.
    pub fn distributed(inner: Option<Arc<dyn QueryPlanner + Send + Sync>>) -> Self {
        Self {
            inner,
            distributed: true,
        }
    }
}

#[async_trait]
impl QueryPlanner for ModelQueryPlanner {
    async fn create_physical_plan(
        &self,
        plan: &LogicalPlan,
        session: &dyn datafusion::catalog::Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let single: Option<SessionState> = session
            .as_any()
            .downcast_ref::<SessionState>()
            .filter(|state| state.config().target_partitions() > 1 && calls_model(plan))
            .map(|state| {
                let mut state = state.clone();
                let options = state.config_mut().options_mut();
                if self.distributed {
                    options.optimizer.repartition_file_min_size = 0;
                } else {
                    options.execution.target_partitions = 1;
                }
                state
            });
        let session = single.as_ref().map_or(session, |state| state as _);
        match &self.inner {
            Some(inner) => inner.create_physical_plan(plan, session).await,
            None => {
                DefaultPhysicalPlanner::default()
                    .create_physical_plan(plan, session)
                    .await
            }
        }
    }
}

/// Whether `plan` calls a model function anywhere.
pub fn calls_model(plan: &LogicalPlan) -> bool {
    let is_model_call = |e: &Expr| Ok(matches!(e, Expr::ScalarFunction(f) if is_model_function(f.name())));
    plan.exists(|node| {
        Ok(node
            .expressions()
            .iter()
            .any(|e| e.exists(is_model_call).unwrap_or(false)))
    })
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use datafusion::physical_plan::ExecutionPlanProperties;
    use datafusion::prelude::{SessionConfig, SessionContext};

    async fn partitions(ctx: &SessionContext, sql: &str) -> usize {
        let df = ctx.sql(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        let plan = df.create_physical_plan().await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        plan.output_partitioning().partition_count()
    }

    #[tokio::test]
    async fn model_queries_plan_one_partition_and_others_keep_theirs() {
        let config = SessionConfig::new().with_target_partitions(4);
        let ctx = crate::R2dl::new()
            .with_catalog(Default::default())
            .session_context(config)
            .expect("session");
        ctx.sql("SET datafusion.optimizer.repartition_file_min_size = 0")
            .await
            .expect("set");
        let file = "'sample_data/sample.fasta'";
        let plain = partitions(&ctx, &format!("SELECT upper(sequence) FROM {file}")).await;
        assert!(plain > 1, "a plain scan splits the file: {plain} partitions");
        for sql in [
            format!("SELECT embed(sequence) FROM {file}"),
            format!("SELECT id FROM {file} WHERE cardinality(embed(sequence)) > 0"),
            format!("SELECT count(*) FROM (SELECT embed(sequence) AS e FROM {file}) AS t"),
        ] {
            assert_eq!(partitions(&ctx, &sql).await, 1, "{sql}");
        }
        // the session's own setting is left as it was
        assert_eq!(ctx.state().config().target_partitions(), 4);
    }
}
