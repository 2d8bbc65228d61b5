//! The conversion engine: compile a conversion schema once, apply it to many records.
//!
//! ```text
//! let compiled = CompiledSchema::compile(&schema)?;          // once per schema version
//! let mapper = compiled.bind(task_config.as_ref());         // once per batch
//! let mut outcome = mapper.map_batch(records.iter().map(RecordInput::from));
//! outcome.resolve_relationships(&lookup).await?;            // one lookup call per batch
//! let (items, errors) = outcome.into_write_parts(&lineage); // WriteBatch items and errors
//! ```
//!
//! Every mapping type, transformation and condition operator of the specification is
//! implemented; docs/mapping.md describes the semantics (missing and null values, numbers,
//! dates and zones, placeholders, custom expressions and their limits, dedup keys).

mod compile;
mod date;
mod diff;
mod error;
mod expr;
mod hash;
mod json;
mod mapper;
mod outcome;
mod path;
mod relations;
mod transform;
mod value;

pub use compile::{CompileOptions, CompiledSchema};
pub use diff::{FieldChange, RecordDiff, diff_outcomes};
pub use error::{CompileError, CompileErrorCode, ErrorCode};
pub use expr::{
    MAX_ARRAY_ITEMS, MAX_EXPRESSION_LEN, MAX_MAP_MEMBERS, MAX_OPERATIONS, MAX_STRING_BYTES,
    TIME_LIMIT,
};
pub use json::JsonError;
pub use mapper::{Mapper, RecordInput};
pub use outcome::{BatchOutcome, MappedRecord, RecordOutcome, ResolveStats, SkippedRecord};
pub use relations::{InMemoryLookup, LookupError, LookupKey, RelationshipLookup, RelationshipRef};
