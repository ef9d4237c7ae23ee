//! Arrow arrays across the Python boundary by the Arrow PyCapsule interface
//! (`__arrow_c_array__`): pyarrow, polars and pandas (through pyarrow) speak it, without copies.

use arrow::array::{ArrayRef, make_array};
use arrow::ffi::{FFI_ArrowArray, FFI_ArrowSchema, from_ffi, to_ffi};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyTuple};

use crate::R2dlError;

/// The array behind an object's `__arrow_c_array__()`.
pub fn import(object: &Bound<'_, PyAny>) -> PyResult<ArrayRef> {
    if !object.hasattr("__arrow_c_array__")? {
        return Err(PyTypeError::new_err(
            "expected an Arrow array (an object with __arrow_c_array__)",
        ));
    }
    let pair = object.call_method0("__arrow_c_array__")?;
    let (schema, array): (Bound<'_, PyAny>, Bound<'_, PyAny>) = pair.extract()?;
    let schema = schema.cast::<PyCapsule>()?;
    let array = array.cast::<PyCapsule>()?;
    let schema = schema.pointer_checked(Some(c"arrow_schema"))?.cast::<FFI_ArrowSchema>();
    let array = array.pointer_checked(Some(c"arrow_array"))?.cast::<FFI_ArrowArray>();
    // SAFETY: the capsules' names say what they hold. The array is moved out (its release
    // callback is ours now; the capsule keeps an empty, released one), the schema only read.
    let data = unsafe {
        let array = std::ptr::replace(array.as_ptr(), FFI_ArrowArray::empty());
        from_ffi(array, schema.as_ref())
    }
    .map_err(|e| R2dlError::new_err(format!("cannot read the Arrow array: {e}")))?;
    Ok(make_array(data))
}

/// `(schema, array)` capsules for `array`, as `__arrow_c_array__` returns them.
pub fn export<'py>(py: Python<'py>, array: &ArrayRef) -> PyResult<Bound<'py, PyTuple>> {
    let (array, schema) =
        to_ffi(&array.to_data()).map_err(|e| R2dlError::new_err(format!("cannot export the result: {e}")))?;
    let schema = PyCapsule::new_with_value(py, schema, c"arrow_schema")?;
    let array = PyCapsule::new_with_value(py, array, c"arrow_array")?;
    PyTuple::new(py, [schema.into_any(), array.into_any()])
}
