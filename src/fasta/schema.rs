//! The Arrow schema of a FASTA table.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

/// Index of the `id` column in [`fasta_schema`].
pub const ID: usize = 0;
/// Index of the `description` column in [`fasta_schema`].
pub const DESCRIPTION: usize = 1;
/// Index of the `sequence` column in [`fasta_schema`].
pub const SEQUENCE: usize = 2;

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("description", DataType::Utf8, true),
        Field::new("sequence", DataType::Utf8, false),
    ]))
});

/// `id Utf8 NOT NULL, description Utf8 NULL, sequence Utf8 NOT NULL`.
pub fn fasta_schema() -> SchemaRef {
    Arc::clone(&SCHEMA)
}
