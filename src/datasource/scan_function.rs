//! The table function `fasta_scan('path')`: a FASTA table over any file name, directory or glob.

use std::sync::Arc;

use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::Expr;

use super::table::fasta_table;

/// `fasta_scan('path')`; see [`fasta_table`] for what the path may be.
#[derive(Debug, Default)]
pub struct FastaScanFunction;

impl TableFunctionImpl for FastaScanFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        match args.exprs() {
            [
                Expr::Literal(
                    ScalarValue::Utf8(Some(path))
                    | ScalarValue::Utf8View(Some(path))
                    | ScalarValue::LargeUtf8(Some(path)),
                    _,
                ),
            ] => fasta_table(path),
            _ => plan_err!("fasta_scan takes one argument, a path string: fasta_scan('proteins.fasta')"),
        }
    }
}
