//! Limited file scans read batches no larger than their limit.
//!
//! DataFusion pushes a projection into a file scan (`FileScanConfig`), expressions included, and
//! a `LIMIT` as the scan's `limit`. The file readers apply the projection to each whole batch
//! (`datafusion.execution.batch_size` rows) and only then cut it to the limit, so
//! `SELECT predict_amp(sequence) FROM 'x.csv' LIMIT 3` used to run the model on 8,192 rows to
//! return 3. [`LimitedScanBatches`] gives such scans batches of their limit.

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;

/// A physical optimizer rule: a file scan with a limit smaller than its batch size reads batches
/// of the limit, so expressions pushed into the scan run on at most that many rows per
/// partition. [`crate::session_context`] adds it; add it to a session of your own with
/// `SessionStateBuilder::with_physical_optimizer_rule`.
#[derive(Debug, Default)]
pub struct LimitedScanBatches;

impl PhysicalOptimizerRule for LimitedScanBatches {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, config: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        let session_batch_size = usize::from(config.execution.batch_size);
        plan.transform_up(|node| {
            let Some(scan) = node.downcast_ref::<DataSourceExec>() else {
                return Ok(Transformed::no(node));
            };
            let Some(files) = scan.data_source().downcast_ref::<FileScanConfig>() else {
                return Ok(Transformed::no(node));
            };
            let batch_size = files.batch_size.unwrap_or(session_batch_size);
            match files.limit {
                Some(limit) if limit > 0 && limit < batch_size => {
                    let mut limited = files.clone();
                    limited.batch_size = Some(limit);
                    let scan = scan.clone().with_data_source(Arc::new(limited));
                    Ok(Transformed::yes(Arc::new(scan) as Arc<dyn ExecutionPlan>))
                }
                _ => Ok(Transformed::no(node)),
            }
        })
        .data()
    }

    fn name(&self) -> &str {
        "r2dl_limited_scan_batches"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::SessionConfig;

    use super::*;

    /// The physical plan of `sql` as text, with the batch size of each file scan.
    async fn scan_batch_sizes(sql: &str) -> Vec<Option<usize>> {
        let ctx = crate::session_context(SessionConfig::new().with_target_partitions(1)).unwrap();
        let plan = ctx.sql(sql).await.unwrap().create_physical_plan().await.unwrap();
        let mut sizes = Vec::new();
        plan.apply(|node| {
            if let Some(scan) = node.downcast_ref::<DataSourceExec>()
                && let Some(files) = scan.data_source().downcast_ref::<FileScanConfig>()
            {
                sizes.push(files.batch_size);
            }
            Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
        })
        .unwrap();
        assert!(!sizes.is_empty(), "{}", displayable(plan.as_ref()).indent(true));
        sizes
    }

    #[tokio::test]
    async fn limited_scans_read_batches_of_their_limit() {
        let parquet = "sample_data/sample.parquet";
        assert!(std::path::Path::new(parquet).is_file());
        for (sql, expected) in [
            (format!("SELECT upper(sequence) FROM '{parquet}' LIMIT 3"), Some(3)),
            (
                format!("SELECT upper(sequence) FROM '{parquet}' LIMIT 2 OFFSET 4"),
                Some(6),
            ),
            ("SELECT id FROM 'sample_data/sample.fasta' LIMIT 1".to_string(), Some(1)),
            // no limit, or one above the batch size: batches as configured
            (format!("SELECT upper(sequence) FROM '{parquet}'"), None),
            (format!("SELECT upper(sequence) FROM '{parquet}' LIMIT 100000"), None),
        ] {
            assert_eq!(scan_batch_sizes(&sql).await, vec![expected], "{sql}");
        }
    }
}
