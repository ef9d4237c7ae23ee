//! `r2dl._r2dl`: r2dl's functions and FASTA tables for Python, over DataFusion's FFI.
//!
//! The Python package (`python/pysrc/r2dl/__init__.py`) wraps this module; nothing here is meant to be
//! called directly. Two ways in:
//! - objects that a `datafusion.SessionContext` (datafusion-python 55) imports through its FFI
//!   capsules: [`ScalarFunction`] (`__datafusion_scalar_udf__`), [`FastaScan`]
//!   (`__datafusion_table_function__`), [`FastaTable`] (`__datafusion_table_provider__`) and
//!   [`Options`] (`__datafusion_extension_options__`);
//! - [`call`], which runs one model function over an Arrow array in r2dl's own session (the
//!   CLI's), off the Python thread, and hands the result back as an Arrow array.

mod arrow_capsules;
mod run;

use std::path::PathBuf;
use std::sync::Arc;

use datafusion::common::config::ExtensionOptions;
use datafusion::logical_expr::ScalarUDF;
use datafusion_ffi::config::extension_options::FFI_ExtensionOptions;
use datafusion_ffi::proto::logical_extension_codec::FFI_LogicalExtensionCodec;
use datafusion_ffi::table_provider::FFI_TableProvider;
use datafusion_ffi::udf::FFI_ScalarUDF;
use datafusion_ffi::udtf::FFI_TableFunction;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyCapsule;
use r2dl::R2dl;
use r2dl::datasource::{FastaScanFunction, fasta_table};
use r2dl::options::R2dlOptions;
use r2dl::predictor::{Catalog, catalog_dirs};
use r2dl::runtime::ModelSpec;

pyo3::create_exception!(
    _r2dl,
    R2dlError,
    PyValueError,
    "A failure in r2dl: bad input (the message names the file, line and record, or the residue), a missing model or predictor."
);

/// The composition root for a Python call: the model (`model`, else `$R2DL_MODEL` or the default)
/// on `device`, and the predictors of `udfs`, then of the folders the CLI searches (`$R2DL_UDFS`,
/// `udfs/` here), then of the package's own catalog (`bundled`, searched last).
fn composition(
    model: Option<PathBuf>,
    udfs: &[PathBuf],
    device: Option<String>,
    bundled: Option<PathBuf>,
) -> PyResult<R2dl> {
    let mut dirs = catalog_dirs(udfs);
    dirs.extend(bundled);
    let catalog = Catalog::discover(&dirs).map_err(|e| R2dlError::new_err(e.to_string()))?;
    Ok(R2dl::new()
        .with_model(ModelSpec { dir: model, device })
        .with_catalog(catalog))
}

fn error(e: &datafusion::common::DataFusionError) -> PyErr {
    R2dlError::new_err(r2dl::error_message(e))
}

/// The logical codec a datafusion-python session hands to providers (its `session` argument).
fn logical_codec(session: &Bound<'_, PyAny>) -> PyResult<FFI_LogicalExtensionCodec> {
    let capsule = match session.hasattr("__datafusion_logical_extension_codec__")? {
        true => session.call_method0("__datafusion_logical_extension_codec__")?,
        false => session.clone(),
    };
    let capsule = capsule.cast::<PyCapsule>()?;
    let codec = capsule
        .pointer_checked(Some(c"datafusion_logical_extension_codec"))?
        .cast::<FFI_LogicalExtensionCodec>();
    // SAFETY: the capsule's name says what it holds, and it lives while `capsule` does
    Ok(unsafe { codec.as_ref() }.clone())
}

/// One of r2dl's scalar functions (`embed`, `predict_<name>`, …), for `ctx.register_udf`.
#[pyclass(module = "r2dl._r2dl", frozen)]
struct ScalarFunction {
    inner: Arc<ScalarUDF>,
}

#[pymethods]
impl ScalarFunction {
    /// The SQL name.
    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn __datafusion_scalar_udf__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        PyCapsule::new_with_value(
            py,
            FFI_ScalarUDF::from(Arc::clone(&self.inner)),
            c"datafusion_scalar_udf",
        )
    }

    fn __repr__(&self) -> String {
        format!("<r2dl function {}>", self.inner.name())
    }
}

/// The model functions r2dl's CLI session has, for the model and predictor folders given.
#[pyfunction]
#[pyo3(signature = (model=None, udfs=Vec::new(), device=None, bundled=None))]
fn functions(
    model: Option<PathBuf>,
    udfs: Vec<PathBuf>,
    device: Option<String>,
    bundled: Option<PathBuf>,
) -> PyResult<Vec<ScalarFunction>> {
    let r2dl = composition(model, &udfs, device, bundled)?;
    let functions = r2dl.functions().map_err(|e| error(&e))?;
    Ok(functions.into_iter().map(|inner| ScalarFunction { inner }).collect())
}

/// `fasta_scan('path')`, for `ctx.register_udtf`.
#[pyclass(module = "r2dl._r2dl", frozen)]
struct FastaScan;

#[pymethods]
impl FastaScan {
    #[new]
    fn new() -> Self {
        Self
    }

    fn __datafusion_table_function__<'py>(
        &self,
        py: Python<'py>,
        session: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let codec = logical_codec(&session)?;
        let function = FFI_TableFunction::new_with_ffi_codec(Arc::new(FastaScanFunction), Some(run::handle()), codec);
        PyCapsule::new_with_value(py, function, c"datafusion_table_function")
    }
}

/// A FASTA file, a folder of them or a glob, as a table (`ctx.register_table`, `ctx.read_table`).
#[pyclass(module = "r2dl._r2dl", frozen)]
struct FastaTable {
    location: String,
}

#[pymethods]
impl FastaTable {
    #[new]
    fn new(location: String) -> PyResult<Self> {
        // plan it once now, so that a missing file fails here and not at the first query
        fasta_table(&location).map_err(|e| error(&e))?;
        Ok(Self { location })
    }

    fn __datafusion_table_provider__<'py>(
        &self,
        py: Python<'py>,
        session: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let table = fasta_table(&self.location).map_err(|e| error(&e))?;
        let codec = logical_codec(&session)?;
        let provider = FFI_TableProvider::new_with_ffi_codec(table, true, Some(run::handle()), codec);
        PyCapsule::new_with_value(py, provider, c"datafusion_table_provider")
    }

    fn __repr__(&self) -> String {
        format!("<r2dl FASTA table {:?}>", self.location)
    }
}

/// The `r2dl.*` session options, for `datafusion.SessionConfig().with_extension(…)`; after that,
/// `SET r2dl.invalid_residue = 'null'` works in the session too.
#[pyclass(module = "r2dl._r2dl", frozen)]
struct Options {
    inner: R2dlOptions,
}

#[pymethods]
impl Options {
    #[new]
    #[pyo3(signature = (invalid_residue=None, fasta_mmap=None))]
    fn new(invalid_residue: Option<String>, fasta_mmap: Option<bool>) -> PyResult<Self> {
        let mut inner = R2dlOptions::default();
        if let Some(policy) = invalid_residue {
            policy
                .parse::<r2dl::model::InvalidResidue>()
                .map_err(R2dlError::new_err)?;
            inner.invalid_residue = policy;
        }
        if let Some(mmap) = fasta_mmap {
            inner.fasta_mmap = mmap;
        }
        Ok(Self { inner })
    }

    fn __datafusion_extension_options__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        let mut options = FFI_ExtensionOptions::default();
        // r2dl's entries carry their full names (`r2dl.<name>`), which `add_config` would prefix
        // once more
        for entry in ExtensionOptions::entries(&self.inner) {
            if let Some(value) = entry.value {
                ExtensionOptions::set(&mut options, &entry.key, &value).map_err(|e| error(&e))?;
            }
        }
        PyCapsule::new_with_value(py, options, c"datafusion_extension_options")
    }

    fn __repr__(&self) -> String {
        format!(
            "r2dl.Options(invalid_residue={:?}, fasta_mmap={})",
            self.inner.invalid_residue,
            if self.inner.fasta_mmap { "True" } else { "False" }
        )
    }
}

/// Fetches the default model as the CLI does (once; later calls verify it) and returns its folder.
#[pyfunction]
fn fetch_model(py: Python<'_>) -> PyResult<PathBuf> {
    py.detach(|| {
        let dir = r2dl::runtime::default_model_dir();
        r2dl::runtime::fetch_default_model(&dir).map(|()| dir)
    })
    .map_err(|e| R2dlError::new_err(e.to_string()))
}

/// Runs `function` (an r2dl model function) over `sequences`, an object with
/// `__arrow_c_array__`, in r2dl's own session; returns the result as a pair of Arrow capsules.
#[pyfunction]
#[pyo3(signature = (function, sequences, model=None, udfs=Vec::new(), device=None, bundled=None, invalid_residue=None))]
#[allow(clippy::too_many_arguments)]
fn call<'py>(
    py: Python<'py>,
    function: String,
    sequences: Bound<'py, PyAny>,
    model: Option<PathBuf>,
    udfs: Vec<PathBuf>,
    device: Option<String>,
    bundled: Option<PathBuf>,
    invalid_residue: Option<String>,
) -> PyResult<Bound<'py, pyo3::types::PyTuple>> {
    let input = arrow_capsules::import(&sequences)?;
    let r2dl = composition(model, &udfs, device, bundled)?;
    let output = run::call(py, r2dl, function, input, invalid_residue)?;
    arrow_capsules::export(py, &output)
}

#[pymodule]
fn _r2dl(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("R2dlError", m.py().get_type::<R2dlError>())?;
    m.add_class::<ScalarFunction>()?;
    m.add_class::<FastaScan>()?;
    m.add_class::<FastaTable>()?;
    m.add_class::<Options>()?;
    m.add_function(wrap_pyfunction!(functions, m)?)?;
    m.add_function(wrap_pyfunction!(fetch_model, m)?)?;
    m.add_function(wrap_pyfunction!(call, m)?)?;
    Ok(())
}
