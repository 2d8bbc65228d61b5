//! Loading connector definitions: every file in the repository's `connectors/`, the compiled-in
//! copy, and errors that name the file and the JSON path.

use std::path::{Path, PathBuf};

use hub_connectors::catalog::BUILTIN_SOURCES;
use hub_connectors::{CatalogError, ConnectorCatalog};
use serde_json::{Value, json};

fn repository_connectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../connectors")
}

#[test]
fn every_definition_in_the_repository_loads() {
    let dir = repository_connectors();
    let catalog = match ConnectorCatalog::load_dir(&dir) {
        Ok(catalog) => catalog,
        Err(error) => panic!("{error}"),
    };
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "{files:?}");
    assert_eq!(catalog.len(), files.len());
    assert!(catalog.get("sample").is_some() && catalog.get("github").is_some());

    // The compiled-in list is the folder, file for file and byte for byte.
    let builtin: Vec<&str> = BUILTIN_SOURCES.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        builtin, files,
        "add new connectors/*.json files to BUILTIN_SOURCES"
    );
    for (name, text) in BUILTIN_SOURCES {
        assert_eq!(
            std::fs::read_to_string(dir.join(name)).unwrap(),
            *text,
            "{name}"
        );
    }
    let compiled = ConnectorCatalog::builtin().unwrap();
    for id in catalog.ids() {
        assert_eq!(compiled.get(id), catalog.get(id));
    }
}

fn valid() -> Value {
    json!({
        "id": "demo",
        "displayName": "Demo",
        "baseUrl": "https://{{settings.instance}}.example.com/api",
        "settings": [{"name": "instance", "required": true}],
        "auth": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
        "streams": [{
            "name": "things",
            "path": "/things",
            "query": {"after": "{{page.cursor}}", "since": "{{cursor.from}}"},
            "pagination": {"type": "cursor", "cursorPointer": "/next"},
            "recordSelector": "/data",
            "incremental": {"cursorField": "/modified"}
        }]
    })
}

fn load_with(edit: impl FnOnce(&mut Value)) -> Result<ConnectorCatalog, CatalogError> {
    let mut document = valid();
    edit(&mut document);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("demo.json"),
        serde_json::to_string_pretty(&document).unwrap(),
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a definition").unwrap();
    ConnectorCatalog::load_dir(dir.path())
}

#[test]
fn the_reference_document_is_valid() {
    let catalog = load_with(|_| {}).unwrap();
    assert_eq!(catalog.ids().collect::<Vec<_>>(), ["demo"]);
}

#[test]
fn a_bad_definition_names_its_file_and_json_path() {
    type Edit = fn(&mut Value);
    let cases: &[(&str, Edit)] = &[
        ("streams[0].pagination.cursorPointer", |d| {
            d["streams"][0]["pagination"]["cursorPointer"] = json!("next")
        }),
        ("streams[0].pagination.pageSize", |d| {
            d["streams"][0]["pagination"] = json!({"type": "offset", "offsetParam": "o"})
        }),
        ("streams[0].pagination.stopWhen[0]", |d| {
            d["streams"][0]["pagination"]["stopWhen"] = json!(["totalReached"])
        }),
        ("streams[0].pagination.rel", |d| {
            d["streams"][0]["pagination"]["rel"] = json!("next")
        }),
        ("streams[0].query.after", |d| {
            d["streams"][0]["query"]["after"] = json!("{{page.offset}}")
        }),
        ("streams[0].query.since", |d| {
            d["streams"][0]["query"]["since"] = json!("{{cursor.frm}}")
        }),
        ("streams[0].path", |d| {
            d["streams"][0]["path"] = json!("/x/{{settings.tenant}}")
        }),
        ("baseUrl", |d| {
            d["baseUrl"] = json!("ftp://{{settings.instance}}")
        }),
        ("baseUrl", |d| {
            d["baseUrl"] = json!("https://x/{{page.cursor}}")
        }),
        ("auth.name", |d| {
            d["auth"] = json!({"type": "apiKey", "in": "header"})
        }),
        ("auth.in", |d| {
            d["auth"] = json!({"type": "bearer", "in": "query"})
        }),
        ("streams[0].body", |d| {
            d["streams"][0]["body"] = json!({"q": 1})
        }),
        ("streams[0].incremental.lookbackSeconds", |d| {
            d["streams"][0]["incremental"] =
                json!({"cursorField": "/id", "cursorType": "integer", "lookbackSeconds": 5})
        }),
        ("streams[0].recordSelector", |d| {
            d["streams"][0]["recordSelector"] = json!(7)
        }),
        ("streams[1].name", |d| {
            let copy = d["streams"][0].clone();
            d["streams"].as_array_mut().unwrap().push(copy)
        }),
        ("errors[0].statuses[0]", |d| {
            d["errors"] = json!([{"statuses": [99], "action": "retry"}])
        }),
        ("rateLimit.remainingHeader", |d| {
            d["rateLimit"] = json!({"remainingHeader": "bad header"})
        }),
        ("streams[0].pagination.colour", |d| {
            d["streams"][0]["pagination"]["colour"] = json!("blue")
        }),
        ("streams[0].pagination.cursorParam", |d| {
            d["streams"][0]["query"] = json!({})
        }),
        ("id", |d| d["id"] = json!("other")),
    ];
    for (path, edit) in cases {
        let error = load_with(edit).expect_err(path);
        assert_eq!(
            error.file().unwrap().file_name().unwrap(),
            "demo.json",
            "{error}"
        );
        assert_eq!(error.json_path(), Some(*path), "{error}");
        let text = error.to_string();
        assert!(text.contains("demo.json") && text.contains(path), "{text}");
    }
}

#[test]
fn not_json_and_unreadable_directories() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.json"), "{\"id\": ").unwrap();
    let error = ConnectorCatalog::load_dir(dir.path()).unwrap_err();
    assert_eq!(error.code(), "invalid_json");
    assert!(error.to_string().contains("broken.json"), "{error}");

    let error = ConnectorCatalog::load_dir(dir.path().join("missing")).unwrap_err();
    assert_eq!(error.code(), "catalog_unreadable");
}

#[test]
fn two_definitions_with_one_id_are_refused() {
    let text = valid().to_string();
    let error =
        ConnectorCatalog::from_sources([("a/demo.json", text.as_str()), ("b/demo.json", &text)])
            .unwrap_err();
    assert_eq!(error.code(), "connector_duplicate");
    assert!(error.to_string().contains("a/demo.json"), "{error}");
}
