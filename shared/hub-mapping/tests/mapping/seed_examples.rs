//! The seed's three conversion schema examples, as transcribed in hub-core's fixtures, map
//! realistic sample records (tests/fixtures) to the expected entities.

use std::path::PathBuf;

use chrono::{TimeZone, Utc};
use hub_core::messages::{BatchSource, Lineage, PollSource};
use hub_core::model::{
    ConversionSchema, EntityField, EntityFieldType, IntegrationEntity, SyncTask, load_json,
};
use hub_mapping::{
    BatchOutcome, CompileOptions, CompiledSchema, InMemoryLookup, RecordInput, RecordOutcome,
};
use serde_json::{Value, json};

fn seed(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../hub-core/tests/fixtures/seed")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn samples(name: &str) -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("samples")
}

fn schema(name: &str) -> ConversionSchema {
    load_json(&seed(name)).expect("seed schema")
}

fn task(name: &str) -> SyncTask {
    load_json(&seed(name)).expect("seed task")
}

/// Maps the samples as text (parsing only what the schema reads, and parsing it whole) and as
/// values: all must agree.
fn map_samples(
    compiled: &CompiledSchema,
    task: Option<&SyncTask>,
    records: &[Value],
) -> BatchOutcome {
    let mapper = compiled.bind(task.map(|t| &t.config));
    let texts: Vec<String> = records.iter().map(Value::to_string).collect();
    let from_text = mapper.map_batch(texts.iter().map(|t| RecordInput::Text(t)));
    let from_values = mapper.map_batch(records.iter().map(RecordInput::from));
    assert_eq!(from_text, from_values);
    for text in &texts {
        crate::support::assert_same_as_full_parse(&mapper, text);
    }
    from_text
}

fn mapped(outcome: &BatchOutcome, index: usize) -> &hub_mapping::MappedRecord {
    match &outcome.records[index] {
        RecordOutcome::Mapped(m) => m,
        other => panic!("record {index}: {other:?}"),
    }
}

fn errors(outcome: &BatchOutcome, index: usize) -> Vec<(String, Option<String>, Option<String>)> {
    match &outcome.records[index] {
        RecordOutcome::Failed { errors } => errors
            .iter()
            .map(|e| {
                (
                    e.code.clone(),
                    e.target_field.clone(),
                    e.source_path.clone(),
                )
            })
            .collect(),
        other => panic!("record {index}: {other:?}"),
    }
}

#[test]
fn salesforce_contacts_map_to_c_contact() {
    let entity = IntegrationEntity {
        name: "Contact".into(),
        display_name: "Contact".into(),
        description: None,
        fields: vec![
            EntityField {
                name: "MailingAddress".into(),
                display_name: None,
                field_type: EntityFieldType::Object,
                required: false,
                read_only: false,
                description: None,
            },
            EntityField {
                name: "IsDeleted".into(),
                display_name: None,
                field_type: EntityFieldType::Boolean,
                required: false,
                read_only: true,
                description: None,
            },
        ],
        supports_read: true,
        supports_write: true,
        supports_delete: false,
        supports_webhooks: false,
        id_field: Some("Id".into()),
        modified_field: Some("LastModifiedDate".into()),
    };
    let options = CompileOptions {
        source_entity: Some(&entity),
    };
    let compiled = CompiledSchema::compile_with(
        &schema("conversion-schema.sf-contact-to-contact.json"),
        &options,
    )
    .expect("compiles");
    assert_eq!(compiled.target_entity_type(), "c_contact");
    let task = task("sync-task.sf-contact-daily.json");
    let outcome = map_samples(&compiled, Some(&task), &samples("salesforce-contacts.json"));

    let ada = mapped(&outcome, 0);
    assert_eq!(
        Value::Object(ada.data.to_map()),
        json!({
            "email": "ada.lovelace@example.com",
            "name": "Ada Lovelace",
            "phone": "+442079460958",
            "street": "12 St James's Square",
            "source": "salesforce"
        })
    );
    assert_eq!(ada.external_id, "0035e00000AbCdEAAV");
    assert!(
        ada.dedup_key.starts_with("external_id:"),
        "{}",
        ada.dedup_key
    );
    assert_eq!(ada.dedup_key.len(), "external_id:".len() + 32);
    assert_eq!(
        ada.source_modified_at,
        Some(Utc.with_ymd_and_hms(2024, 3, 1, 8, 0, 0).unwrap())
    );
    assert_eq!(ada.payload_hash.len(), 32);

    let RecordOutcome::Skipped(deleted) = &outcome.records[1] else {
        panic!(
            "the deleted contact was not skipped: {:?}",
            outcome.records[1]
        );
    };
    assert_eq!(deleted.filter_index, 0);
    assert_eq!(deleted.external_id.as_deref(), Some("0035e00000DeLeTAAV"));

    assert_eq!(
        errors(&outcome, 2),
        vec![(
            "missing_required_field".to_owned(),
            Some("email".to_owned()),
            Some("Email".to_owned())
        )]
    );
    let RecordOutcome::Failed { errors: grace } = &outcome.records[2] else {
        unreachable!()
    };
    assert_eq!(grace[0].external_id.as_deref(), Some("0035e00000NoMaIAAV"));
    assert_eq!(grace[0].record_index, 2);

    // No first name: the template leaves no leading space; no phone: null; no address: unset.
    assert_eq!(
        Value::Object(mapped(&outcome, 3).data.to_map()),
        json!({
            "email": "alan.turing@example.org",
            "name": "Turing",
            "phone": null,
            "source": "salesforce"
        })
    );
    assert_eq!(
        mapped(&outcome, 4).data.to_map()["street"],
        json!("Ноябрьская улица, 7")
    );
    assert_eq!(
        mapped(&outcome, 4).data.to_map()["phone"],
        json!("+17578641000")
    );

    // The dedup key is stable: the same id always gives the same key.
    let again = map_samples(&compiled, Some(&task), &samples("salesforce-contacts.json"));
    assert_eq!(mapped(&again, 0).dedup_key, ada.dedup_key);
    assert_ne!(mapped(&again, 4).dedup_key, ada.dedup_key);

    let lineage = Lineage {
        execution_id: Some("exec-1".into()),
        source: BatchSource::Poll(PollSource {
            page: 0,
            page_token: None,
            part: 0,
            parts: 1,
        }),
        record_index: 0,
        schema_id: compiled.schema_id().into(),
        schema_version: compiled.schema_version().unwrap_or(1),
    };
    let (items, errors) = outcome.into_write_parts(&lineage);
    assert_eq!(items.len(), 3);
    assert_eq!(
        items
            .iter()
            .map(|i| i.lineage.record_index)
            .collect::<Vec<_>>(),
        [0, 3, 4]
    );
    assert_eq!(errors.len(), 1);
}

#[tokio::test]
async fn salesforce_opportunities_map_to_c_opportunity_with_their_company() {
    let compiled = CompiledSchema::compile(&schema("conversion-schema.sf-opportunity.json"))
        .expect("compiles");
    let task = task("sync-task.sf-opp-hourly.json");
    let mut outcome = map_samples(
        &compiled,
        Some(&task),
        &samples("salesforce-opportunities.json"),
    );

    let mut lookup = InMemoryLookup::new();
    lookup
        .insert("c_company", "0015e00000AcMeAAAA", "cmp_acme")
        .insert("c_company", "0015e00000GlObXAAA", "cmp_globex")
        .insert("c_company", "0015e00000StArKAAA", "cmp_stark")
        .insert("c_contact", "0015e00000UnKnWAAA", "not-a-company");
    let stats = outcome
        .resolve_relationships(&lookup)
        .await
        .expect("lookup");
    assert_eq!(lookup.calls(), 1, "one lookup per batch");
    assert_eq!((stats.keys, stats.found), (4, 3));

    let acme = mapped(&outcome, 0);
    assert_eq!(
        Value::Object(acme.data.to_map()),
        json!({
            "name": "Acme - 500 seats",
            "value": 125000.5,
            "stage": "lead",
            "expectedCloseDate": "2024-06-30T00:00:00.000Z",
            "companyId": "cmp_acme"
        })
    );
    assert_eq!(
        acme.source_modified_at,
        Some(Utc.with_ymd_and_hms(2024, 3, 5, 9, 0, 0).unwrap())
    );
    assert!(acme.relationships[0].is_resolved());

    let globex = mapped(&outcome, 1);
    assert_eq!(globex.data.to_map()["stage"], json!("negotiation"));
    assert_eq!(globex.data.to_map()["value"], json!(48000));
    assert_eq!(globex.data.to_map()["companyId"], json!("cmp_globex"));

    // The company is not known yet: the link waits, the record still maps.
    let initech = mapped(&outcome, 2);
    assert_eq!(initech.data.to_map()["stage"], json!("won"));
    assert_eq!(initech.data.to_map()["value"], json!(null));
    assert!(!initech.data.to_map().contains_key("companyId"));
    assert!(!initech.relationships[0].is_resolved());
    assert_eq!(initech.relationships[0].keys[0].value, "0015e00000UnKnWAAA");

    assert_eq!(
        errors(&outcome, 3),
        vec![(
            "invalid_date".to_owned(),
            Some("expectedCloseDate".to_owned()),
            Some("CloseDate".to_owned())
        )]
    );

    let stark = mapped(&outcome, 4);
    assert_eq!(stark.data.to_map()["stage"], json!("lost"));
    assert_eq!(
        stark.data.to_map()["expectedCloseDate"],
        json!("2024-01-31T00:00:00.000Z")
    );
}

#[test]
fn google_news_articles_map_to_c_news_with_the_task_industry() {
    let compiled = CompiledSchema::compile(&schema("conversion-schema.google-news-to-news.json"))
        .expect("compiles");
    let banking = task("sync-task.news-banking-daily.json");
    let outcome = map_samples(
        &compiled,
        Some(&banking),
        &samples("google-news-articles.json"),
    );

    let reuters = mapped(&outcome, 0);
    assert_eq!(
        Value::Object(reuters.data.to_map()),
        json!({
            "name": "Central banks signal slower rate cuts as inflation lingers",
            "summary": "Policy makers in Europe and the US said on Monday that rate cuts would come gradually.",
            "url": "https://www.reuters.com/markets/rates-bonds/central-banks-signal-slower-rate-cuts-2024-01-15/",
            "source": "Reuters",
            "publishedAt": "2024-01-15T10:30:00.000Z",
            "industry": "banking"
        })
    );
    assert_eq!(
        reuters.external_id,
        "https://www.reuters.com/markets/rates-bonds/central-banks-signal-slower-rate-cuts-2024-01-15/"
    );

    let ft = mapped(&outcome, 1);
    assert_eq!(
        ft.data.to_map()["publishedAt"],
        json!("2024-01-16T07:05:00.000Z")
    );
    assert_eq!(ft.data.to_map()["summary"], json!(null));
    assert_eq!(ft.data.to_map()["source"], json!("Financial Times"));

    let echos = mapped(&outcome, 2);
    assert_eq!(
        echos.data.to_map()["publishedAt"],
        json!("2024-01-16T10:00:00.000Z")
    );
    assert_eq!(echos.data.to_map()["source"], json!("Les Échos"));

    let mut codes: Vec<String> = errors(&outcome, 3).into_iter().map(|e| e.0).collect();
    codes.sort();
    assert_eq!(codes, ["invalid_date", "missing_external_id"]);

    let automation = task("sync-task.news-automation-daily.json");
    let outcome = map_samples(
        &compiled,
        Some(&automation),
        &samples("google-news-articles.json"),
    );
    assert_eq!(
        mapped(&outcome, 0).data.to_map()["industry"],
        json!("automation")
    );

    // A webhook batch has no task: the placeholder cannot be filled.
    let outcome = map_samples(&compiled, None, &samples("google-news-articles.json"));
    let missing = errors(&outcome, 0);
    assert_eq!(
        missing,
        vec![(
            "missing_task_value".to_owned(),
            Some("industry".to_owned()),
            None
        )]
    );
}
