//! `length(s)` (and its names `character_length`, `char_length`): DataFusion's function, except
//! that the sequences of a FASTA scan, whose bytes the reader has already checked to be ASCII,
//! are measured from their offsets alone. DataFusion's own function reads every byte of its
//! input to decide whether bytes may stand for characters; on a scan's residues that second
//! read was a fifth of `SELECT sum(length(sequence))`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, Int32Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::functions::unicode::character_length::CharacterLengthFunc;
use datafusion::logical_expr::{ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature};

use crate::fasta::is_ascii_buffer;

/// `character_length` / `length` / `char_length`, registered in place of DataFusion's.
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub struct LengthFunction {
    inner: CharacterLengthFunc,
}

impl ScalarUDFImpl for LengthFunction {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if let [ColumnarValue::Array(array)] = args.args.as_slice()
            && let Some(strings) = array.as_string_opt::<i32>()
            && is_ascii_buffer(strings.value_data())
        {
            // every value is ASCII: one character per byte
            let lengths = strings.offsets().windows(2).map(|ends| ends[1] - ends[0]);
            let lengths = Int32Array::new(lengths.collect(), strings.nulls().cloned());
            return Ok(ColumnarValue::Array(Arc::new(lengths)));
        }
        self.inner.invoke_with_args(args)
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use datafusion::arrow::array::ArrayRef;
    use datafusion::arrow::datatypes::Field;
    use datafusion::config::ConfigOptions;

    use super::*;
    use crate::fasta::{FastaReader, SEQUENCE};

    /// The sequences of a FASTA text, as a scan reads them.
    fn scanned(fasta: &str) -> ArrayRef {
        let mut reader = FastaReader::new(Cursor::new(fasta.to_owned()), "t.fasta").with_projection(vec![SEQUENCE]);
        let batch = reader.next_batch().unwrap().unwrap();
        Arc::clone(batch.column(0))
    }

    fn lengths(function: &dyn ScalarUDFImpl, array: &ArrayRef) -> Vec<Option<i32>> {
        let args = ScalarFunctionArgs {
            args: vec![ColumnarValue::Array(Arc::clone(array))],
            arg_fields: vec![Arc::new(Field::new("s", array.data_type().clone(), true))],
            number_rows: array.len(),
            return_field: Arc::new(Field::new("n", DataType::Int32, true)),
            config_options: Arc::new(ConfigOptions::default()),
        };
        let ColumnarValue::Array(result) = function.invoke_with_args(args).unwrap() else {
            panic!("an array in, an array out");
        };
        result
            .as_primitive::<datafusion::arrow::datatypes::Int32Type>()
            .iter()
            .collect()
    }

    #[test]
    fn scanned_ascii_sequences_are_measured_from_their_offsets_and_agree_with_datafusion() {
        let array = scanned(">a\nMKV\nLA\n>b\n>c x\nACDEFGHIKLMNPQRSTVWY\n");
        assert!(
            is_ascii_buffer(array.as_string::<i32>().value_data()),
            "the fast path applies"
        );
        let ours = lengths(&LengthFunction::default(), &array);
        assert_eq!(ours, [Some(5), Some(0), Some(20)]);
        assert_eq!(ours, lengths(&CharacterLengthFunc::new(), &array));
        // a slice of the batch lies in the same checked buffer
        let sliced = array.slice(1, 2);
        assert!(is_ascii_buffer(sliced.as_string::<i32>().value_data()));
        assert_eq!(lengths(&LengthFunction::default(), &sliced), [Some(0), Some(20)]);
    }

    #[test]
    fn sessions_use_it_under_every_name() {
        use datafusion::execution::FunctionRegistry;
        use datafusion::prelude::SessionConfig;

        let ctx = crate::R2dl::new().session_context(SessionConfig::new()).unwrap();
        for name in ["length", "char_length", "character_length"] {
            let udf = ctx.udf(name).unwrap();
            let function: &dyn std::any::Any = udf.inner().as_ref();
            assert!(function.downcast_ref::<LengthFunction>().is_some(), "{name}");
        }
    }

    #[test]
    fn other_strings_are_counted_in_characters_by_datafusion() {
        // a sequence line that is UTF-8 but not ASCII: the batch is not vouched for
        let array = scanned(">a\nMKÅV\n>b\nMK\n");
        assert!(!is_ascii_buffer(array.as_string::<i32>().value_data()));
        assert_eq!(lengths(&LengthFunction::default(), &array), [Some(4), Some(2)]);
        // strings built elsewhere, ASCII or not
        let built: ArrayRef = Arc::new(datafusion::arrow::array::StringArray::from(vec![
            Some("Ångström"),
            None,
            Some("MK"),
        ]));
        assert_eq!(lengths(&LengthFunction::default(), &built), [Some(8), None, Some(2)]);
    }
}
