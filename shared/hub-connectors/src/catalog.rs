//! The connector catalogue: every definition, loaded and validated once at start-up.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hub_core::model::{ModelError, load_json};

use crate::definition::ConnectorDefinition;

/// The repository's `connectors/*.json`, compiled into the binary so a Lambda function needs no
/// files beside it. `tests` checks this list against the folder.
pub const BUILTIN_SOURCES: &[(&str, &str)] = &[
    (
        "github.json",
        include_str!("../../../connectors/github.json"),
    ),
    (
        "sample.json",
        include_str!("../../../connectors/sample.json"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot read connector definitions at {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file's JSON or its content is wrong; the source names the JSON path.
    #[error("{file}: {source}")]
    Invalid {
        file: PathBuf,
        #[source]
        source: ModelError,
    },
    #[error("{file}: id `{id}` does not match the file name (expected `{id}.json`)")]
    FileName { file: PathBuf, id: String },
    #[error("{file}: connector `{id}` is already defined in {first}")]
    Duplicate {
        file: PathBuf,
        id: String,
        first: PathBuf,
    },
}

impl CatalogError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Io { .. } => "catalog_unreadable",
            Self::Invalid { source, .. } => source.code(),
            Self::FileName { .. } => "connector_file_name",
            Self::Duplicate { .. } => "connector_duplicate",
        }
    }

    /// The file at fault, when there is one.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Self::Io { .. } => None,
            Self::Invalid { file, .. }
            | Self::FileName { file, .. }
            | Self::Duplicate { file, .. } => Some(file),
        }
    }

    /// The JSON path of the rejected value, when the error concerns one.
    pub fn json_path(&self) -> Option<&str> {
        match self {
            Self::Invalid { source, .. } => source.path(),
            Self::FileName { .. } => Some("id"),
            Self::Io { .. } | Self::Duplicate { .. } => None,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ConnectorCatalog {
    connectors: BTreeMap<String, (PathBuf, Arc<ConnectorDefinition>)>,
}

impl ConnectorCatalog {
    /// Loads every `*.json` in `dir` (not recursive, sorted by name so errors are stable).
    pub fn load_dir(dir: impl AsRef<Path>) -> Result<Self, CatalogError> {
        let dir = dir.as_ref();
        let io = |source| CatalogError::Io {
            path: dir.to_owned(),
            source,
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            if path.extension().is_some_and(|e| e == "json") && path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        let mut sources = Vec::with_capacity(files.len());
        for file in files {
            let text = std::fs::read_to_string(&file).map_err(|source| CatalogError::Io {
                path: file.clone(),
                source,
            })?;
            sources.push((file, text));
        }
        Self::from_sources(sources)
    }

    /// The definitions compiled into this build (see [`BUILTIN_SOURCES`]).
    pub fn builtin() -> Result<Self, CatalogError> {
        Self::from_sources(
            BUILTIN_SOURCES
                .iter()
                .map(|(name, text)| (PathBuf::from("connectors").join(name), *text)),
        )
    }

    /// Loads definitions from (file name, text) pairs.
    pub fn from_sources<P, T>(
        sources: impl IntoIterator<Item = (P, T)>,
    ) -> Result<Self, CatalogError>
    where
        P: Into<PathBuf>,
        T: AsRef<str>,
    {
        let mut catalog = Self::default();
        for (file, text) in sources {
            let file = file.into();
            let definition: ConnectorDefinition =
                load_json(text.as_ref()).map_err(|source| CatalogError::Invalid {
                    file: file.clone(),
                    source,
                })?;
            let stem = file
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            if stem != definition.id {
                return Err(CatalogError::FileName {
                    file,
                    id: definition.id,
                });
            }
            if let Some((first, _)) = catalog.connectors.get(&definition.id) {
                return Err(CatalogError::Duplicate {
                    first: first.clone(),
                    file,
                    id: definition.id,
                });
            }
            catalog
                .connectors
                .insert(definition.id.clone(), (file, Arc::new(definition)));
        }
        Ok(catalog)
    }

    pub fn get(&self, id: &str) -> Option<&Arc<ConnectorDefinition>> {
        self.connectors.get(id).map(|(_, definition)| definition)
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.connectors.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.connectors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.connectors.is_empty()
    }
}
