//! `predict_<name>` for a predictor folder that cannot be served: every call fails at planning
//! with what is wrong with the folder, and every other function keeps working.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, plan_err};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility};

use crate::predictor::BrokenEntry;

/// The function of a [`BrokenEntry`].
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct BrokenPredictorFunction {
    name: String,
    message: String,
    signature: Signature,
}

impl BrokenPredictorFunction {
    /// `predict_<entry.name>`, failing with the entry's error.
    pub fn new(entry: &BrokenEntry) -> Self {
        Self {
            name: format!("predict_{}", entry.name),
            message: format!(
                "predict_{} cannot be served: the predictor folder {} is broken: {}",
                entry.name,
                entry.dir.display(),
                entry.error
            ),
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for BrokenPredictorFunction {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        plan_err!("{}", self.message)
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        plan_err!("{}", self.message)
    }
}
