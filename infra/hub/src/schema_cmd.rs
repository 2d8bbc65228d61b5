//! `hub schema test` and `hub schema diff`: the specification's "Test with sample data", from
//! files, without a backend.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use hub_core::model::{ConversionSchema, ModelError, SyncTask, load_value};
use hub_mapping::{BatchOutcome, CompiledSchema, RecordInput, RecordOutcome, diff_outcomes};
use serde_json::Value;

#[derive(Debug, Subcommand)]
pub enum SchemaCommand {
    /// Map sample records with a schema: the entities and the per-record errors.
    Test {
        /// A conversion schema: the bare document, or a `hub apply` envelope around it.
        #[arg(long)]
        schema: PathBuf,
        /// Sample records: a JSON array, one JSON object, or one object per line.
        #[arg(long)]
        sample: PathBuf,
        /// A sync task whose config fills `{{task.<key>}}` values and currency rates.
        #[arg(long)]
        task: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// What a new schema version would change, per record and field.
    Diff {
        #[arg(long)]
        from: PathBuf,
        #[arg(long)]
        to: PathBuf,
        #[arg(long)]
        sample: PathBuf,
        #[arg(long)]
        task: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum SchemaCommandError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {error}")]
    Invalid { path: PathBuf, error: ModelError },
    /// A schema the model or the compiler refuses: the error `hub apply` gives for it.
    #[error("{path}: {error}")]
    Document {
        path: PathBuf,
        error: hub_config::DocumentError,
    },
    #[error("{path}: sample records must be JSON objects (line or element {index} is not)")]
    Sample { path: PathBuf, index: usize },
}

impl SchemaCommandError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Io { .. } => "unreadable_file",
            Self::Invalid { error, .. } => error.code(),
            Self::Document { error, .. } => error.code(),
            Self::Sample { .. } => "invalid_sample",
        }
    }
}

pub fn run(command: SchemaCommand) -> Result<(), SchemaCommandError> {
    match command {
        SchemaCommand::Test {
            schema,
            sample,
            task,
            json,
        } => {
            let compiled = compile(&schema)?;
            let task = task.as_deref().map(load_task).transpose()?;
            let records = load_sample(&sample)?;
            let outcome = map(&compiled, task.as_ref(), &records);
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&outcome).unwrap_or_default()
                );
            } else {
                print!("{}", render_outcome(&outcome));
            }
        }
        SchemaCommand::Diff {
            from,
            to,
            sample,
            task,
            json,
        } => {
            let (before, after) = (compile(&from)?, compile(&to)?);
            let task = task.as_deref().map(load_task).transpose()?;
            let records = load_sample(&sample)?;
            let diffs = diff_outcomes(
                &map(&before, task.as_ref(), &records),
                &map(&after, task.as_ref(), &records),
            );
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&diffs).unwrap_or_default()
                );
            } else if diffs.is_empty() {
                println!("no record changes ({} records)", records.len());
            } else {
                for diff in &diffs {
                    println!(
                        "record {}: {} -> {}",
                        diff.record_index, diff.status_before, diff.status_after
                    );
                    for change in &diff.changes {
                        println!(
                            "  {:<24} {} -> {}",
                            change.field,
                            show(change.before.as_ref()),
                            show(change.after.as_ref())
                        );
                    }
                    if diff.dedup_key_changed {
                        println!(
                            "  (dedup key changes: the record would be written as a new entity)"
                        );
                    }
                    for error in &diff.errors_after {
                        println!("  error {}: {}", error.code, error.message);
                    }
                }
            }
        }
    }
    Ok(())
}

fn read(path: &Path) -> Result<String, SchemaCommandError> {
    std::fs::read_to_string(path).map_err(|source| SchemaCommandError::Io {
        path: path.to_owned(),
        source,
    })
}

/// The document itself, or the `spec` of a `hub apply` envelope, with where it sits in the
/// file: errors name JSON paths from the file's root, as `hub apply` does.
fn document(path: &Path) -> Result<(Value, Option<&'static str>), SchemaCommandError> {
    let value: Value = hub_core::model::decode_json(&read(path)?).map_err(|error| {
        SchemaCommandError::Invalid {
            path: path.to_owned(),
            error,
        }
    })?;
    Ok(match value {
        Value::Object(mut map) if map.contains_key("kind") && map.contains_key("spec") => {
            (map.remove("spec").unwrap_or_default(), Some("spec"))
        }
        other => (other, None),
    })
}

fn compile(path: &Path) -> Result<CompiledSchema, SchemaCommandError> {
    let (value, at) = document(path)?;
    let nested = |error: hub_config::DocumentError| match at {
        Some(prefix) => error.nested_under(prefix),
        None => error,
    };
    let schema: ConversionSchema =
        load_value(value).map_err(|error| SchemaCommandError::Document {
            path: path.to_owned(),
            error: nested(error.into()),
        })?;
    CompiledSchema::compile(&schema).map_err(|error| SchemaCommandError::Document {
        path: path.to_owned(),
        error: nested(error.into()),
    })
}

fn load_task(path: &Path) -> Result<SyncTask, SchemaCommandError> {
    let (value, at) = document(path)?;
    load_value(value).map_err(|error| SchemaCommandError::Invalid {
        path: path.to_owned(),
        error: match at {
            Some(prefix) => error.nested_under(prefix),
            None => error,
        },
    })
}

fn load_sample(path: &Path) -> Result<Vec<Value>, SchemaCommandError> {
    let text = read(path)?;
    let invalid = |error| SchemaCommandError::Invalid {
        path: path.to_owned(),
        error,
    };
    let records = match hub_core::model::decode_json::<Value>(&text) {
        Ok(Value::Array(records)) => records,
        Ok(single @ Value::Object(_)) => vec![single],
        Ok(_) => {
            return Err(SchemaCommandError::Sample {
                path: path.to_owned(),
                index: 0,
            });
        }
        // Not one document: one record per line (JSON Lines).
        Err(_) => text
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| hub_core::model::decode_json::<Value>(line).map_err(invalid))
            .collect::<Result<_, _>>()?,
    };
    match records.iter().position(|r| !r.is_object()) {
        Some(index) => Err(SchemaCommandError::Sample {
            path: path.to_owned(),
            index,
        }),
        None => Ok(records),
    }
}

fn map(schema: &CompiledSchema, task: Option<&SyncTask>, records: &[Value]) -> BatchOutcome {
    schema
        .bind(task.map(|t| &t.config))
        .map_batch(records.iter().map(RecordInput::from))
}

fn show(value: Option<&Value>) -> String {
    value.map_or_else(|| "(unset)".to_owned(), Value::to_string)
}

/// One block per record: its status, then the entity's fields or the errors.
fn render_outcome(outcome: &BatchOutcome) -> String {
    let mut out = String::new();
    let (mut mapped, mut skipped, mut failed) = (0, 0, 0);
    for record in &outcome.records {
        match record {
            RecordOutcome::Mapped(m) => {
                mapped += 1;
                out.push_str(&format!(
                    "record {} mapped  externalId={} dedupKey={}\n",
                    m.record_index, m.external_id, m.dedup_key
                ));
                for (field, value) in &m.data.to_map() {
                    out.push_str(&format!("  {field:<24} {value}\n"));
                }
                for relationship in m.relationships.iter().filter(|r| !r.is_resolved()) {
                    out.push_str(&format!(
                        "  {:<24} (relationship resolved at write time: {} keys)\n",
                        relationship.target_field,
                        relationship.keys.len()
                    ));
                }
            }
            RecordOutcome::Skipped(s) => {
                skipped += 1;
                out.push_str(&format!(
                    "record {} skipped  {}\n",
                    s.record_index, s.reason
                ));
            }
            RecordOutcome::Failed { errors } => {
                failed += 1;
                let index = errors.first().map(|e| e.record_index).unwrap_or_default();
                out.push_str(&format!("record {index} failed\n"));
                for error in errors {
                    out.push_str(&format!(
                        "  {:<24} {} ({}){}\n",
                        error.target_field.as_deref().unwrap_or("-"),
                        error.message,
                        error.code,
                        error
                            .source_path
                            .as_deref()
                            .map(|p| format!(" at {p}"))
                            .unwrap_or_default()
                    ));
                }
            }
        }
    }
    out.push_str(&format!(
        "{mapped} mapped, {skipped} skipped, {failed} failed\n"
    ));
    out
}
