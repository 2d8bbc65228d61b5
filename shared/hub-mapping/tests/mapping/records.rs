//! What a mapped record carries besides its data: external id, dedup key, modification time,
//! payload hash and relationships; and comparing two schema versions.

use chrono::{TimeZone, Utc};
use serde_json::{Value, json};

use crate::support::{compile, map, map_with, schema_with, task};
use hub_mapping::{
    BatchOutcome, CompiledSchema, InMemoryLookup, LookupError, LookupKey, MappedRecord,
    RecordInput, RecordOutcome, RelationshipLookup, diff_outcomes,
};

fn mapped(outcome: RecordOutcome) -> MappedRecord {
    match outcome {
        RecordOutcome::Mapped(m) => m,
        other => panic!("{other:?}"),
    }
}

fn people(dedup: Value) -> CompiledSchema {
    let mut document = schema_with(json!([
        {"targetField": "email", "mappingType": "transform", "config": {"type": "transform", "sourceField": "Email", "transformations": [{"type": "trim"}]}},
        {"targetField": "phone", "mappingType": "direct", "config": {"type": "direct", "sourceField": "Phone"}}
    ]));
    document["deduplication"] = dedup;
    compile(document)
}

#[test]
fn external_id_strategy() {
    let schema = people(json!({"strategy": "external_id", "externalIdField": "Ref.Id"}));
    let a = mapped(map(
        &schema,
        &json!({"Ref": {"Id": "A-1"}, "Email": "x@y.z"}),
    ));
    let again = mapped(map(
        &schema,
        &json!({"Ref": {"Id": "A-1"}, "Email": "other@y.z"}),
    ));
    let b = mapped(map(&schema, &json!({"Ref": {"Id": "a-1"}})));
    assert_eq!(a.external_id, "A-1");
    assert_eq!(a.dedup_key, again.dedup_key);
    assert_ne!(a.dedup_key, b.dedup_key, "external ids are case-sensitive");
    let number = mapped(map(&schema, &json!({"Ref": {"Id": 1234}})));
    assert_eq!(number.external_id, "1234");

    for (record, code) in [
        (json!({"Ref": {}}), "missing_external_id"),
        (json!({"Ref": {"Id": "  "}}), "missing_external_id"),
        (json!({"Ref": {"Id": ["A"]}}), "invalid_external_id"),
    ] {
        let RecordOutcome::Failed { errors } = map(&schema, &record) else {
            panic!("mapped {record}")
        };
        assert_eq!(errors[0].code, code);
        assert_eq!(errors[0].source_path.as_deref(), Some("Ref.Id"));
    }
}

#[test]
fn field_match_uses_the_first_field_with_a_value_normalised() {
    let schema = people(
        json!({"strategy": "field_match", "matchFields": ["email", "Phone"], "externalIdField": "Id"}),
    );
    let by_email = mapped(map(
        &schema,
        &json!({"Id": "1", "Email": "  Ada@Example.COM ", "Phone": "1"}),
    ));
    let same_email = mapped(map(
        &schema,
        &json!({"Id": "2", "Email": "ada@example.com"}),
    ));
    let by_phone = mapped(map(&schema, &json!({"Id": "3", "Phone": "+44 1"})));
    assert!(
        by_email.dedup_key.starts_with("field_match:email:"),
        "{}",
        by_email.dedup_key
    );
    assert_eq!(by_email.dedup_key, same_email.dedup_key);
    assert!(by_phone.dedup_key.starts_with("field_match:Phone:"));
    assert_eq!(by_email.external_id, "1");
    let RecordOutcome::Failed { errors } = map(&schema, &json!({"Id": "4", "Email": ""})) else {
        panic!("mapped")
    };
    assert_eq!(errors[0].code, "missing_dedup_field");

    // Without an external id field, the record's external id is its dedup key.
    let anonymous = people(json!({"strategy": "field_match", "matchFields": ["email"]}));
    let m = mapped(map(&anonymous, &json!({"Email": "a@b.c"})));
    assert_eq!(m.external_id, m.dedup_key);
}

#[test]
fn composite_needs_every_field() {
    let schema = people(json!({"strategy": "composite", "matchFields": ["email", "Company.Name"]}));
    let a = mapped(map(
        &schema,
        &json!({"Email": "A@b.c", "Company": {"Name": "Acme"}}),
    ));
    let b = mapped(map(
        &schema,
        &json!({"Email": "a@b.c", "Company": {"Name": "ACME "}}),
    ));
    let c = mapped(map(
        &schema,
        &json!({"Email": "a@b.c", "Company": {"Name": "Globex"}}),
    ));
    assert!(a.dedup_key.starts_with("composite:"));
    assert_eq!(a.dedup_key, b.dedup_key);
    assert_ne!(a.dedup_key, c.dedup_key);
    let RecordOutcome::Failed { errors } = map(&schema, &json!({"Email": "a@b.c"})) else {
        panic!("mapped")
    };
    assert_eq!(errors[0].code, "missing_dedup_field");
    assert_eq!(errors[0].source_path.as_deref(), Some("Company.Name"));
}

#[test]
fn dedup_keys_are_stable_across_releases() {
    // These exact strings are what the records table holds: changing them orphans records.
    let schema = people(json!({"strategy": "external_id", "externalIdField": "Id"}));
    assert_eq!(
        mapped(map(&schema, &json!({"Id": "0035e00000AbCdEAAV"}))).dedup_key,
        "external_id:2579764b076174dcd6ba971d9fca2dcc"
    );
    let composite = people(json!({"strategy": "composite", "matchFields": ["email", "phone"]}));
    assert_eq!(
        mapped(map(&composite, &json!({"Email": "A@b.c", "Phone": 5}))).dedup_key,
        "composite:a2ba0d6356d65e1fb5f8e3261793e3ea"
    );
    assert_eq!(
        hub_digest(&["email", "a@b.c", "phone", "5"]),
        "a2ba0d6356d65e1fb5f8e3261793e3ea"
    );
}

/// The digest the documentation specifies: SHA-256 of the parts joined by U+001F, first 16
/// bytes in hex.
fn hub_digest(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(parts.join("\u{1f}").as_bytes());
    hex::encode(&digest[..16])
}

#[test]
fn source_modified_at_comes_from_the_task_field() {
    let schema = people(json!({"strategy": "external_id", "externalIdField": "Id"}));
    let config = task(json!({"modifiedSinceField": "System.Modified"}));
    let record = |modified: Value| json!({"Id": "1", "System": {"Modified": modified}});
    let at =
        |modified| mapped(map_with(&schema, Some(&config), &record(modified))).source_modified_at;
    let expected = Some(Utc.with_ymd_and_hms(2024, 3, 1, 8, 0, 0).unwrap());
    assert_eq!(at(json!("2024-03-01T08:00:00.000+0000")), expected);
    assert_eq!(at(json!("2024-03-01T09:00:00+01:00")), expected);
    assert_eq!(at(json!(1_709_280_000)), expected);
    assert_eq!(at(json!("not a date")), None);
    assert_eq!(
        mapped(map(&schema, &record(json!("2024-03-01")))).source_modified_at,
        None,
        "no task, no field"
    );
}

#[test]
fn the_payload_hash_follows_the_entity_not_the_record() {
    let schema = people(json!({"strategy": "external_id", "externalIdField": "Id"}));
    let mapper = schema.bind(None);
    let hash = |text: &str| mapped(mapper.map_record(0, RecordInput::Text(text))).payload_hash;
    let a = hash(r#"{"Id":"1","Email":"a@b.c","Phone":[1,2.50],"Extra":{"x":1}}"#);
    assert_eq!(
        a,
        hash(
            "{ \"Extra\": {\"x\": 1},\n \"Phone\": [1, 2.5], \"Email\": \" a@b.c\", \"Id\": \"1\" }"
        ),
        "layout, number forms and what `trim` removes do not count"
    );
    assert_eq!(
        a,
        hash(r#"{"Id":"1","Email":"a@b.c","Phone":[1,2.5],"Extra":{"x":2}}"#),
        "a field no mapping reads does not count"
    );
    assert_ne!(a, hash(r#"{"Id":"1","Email":"a@b.c","Phone":[1,2.51]}"#));
    assert_ne!(a, hash(r#"{"Id":"1","Email":"a@b.c","Phone":[2.5,1]}"#));
    assert_ne!(
        a,
        hash(r#"{"Id":"1","Email":"a@b.c"}"#),
        "an unset field counts"
    );

    let record = mapped(mapper.map_record(0, RecordInput::Text(r#"{"Id":"1","Email":"a@b.c"}"#)));
    assert_eq!(
        record.payload_hash,
        format!(
            "{:032x}",
            xxhash_rust::xxh3::xxh3_128(br#"{"email":"a@b.c"}"#)
        ),
        "XXH3-128 of the entity's canonical JSON"
    );
}

struct FailingLookup;

#[async_trait::async_trait]
impl RelationshipLookup for FailingLookup {
    async fn resolve(
        &self,
        _: &[LookupKey],
    ) -> Result<std::collections::HashMap<LookupKey, String>, LookupError> {
        Err(LookupError {
            message: "records table throttled".into(),
        })
    }
}

#[tokio::test]
async fn relationships_resolve_in_one_batched_lookup() {
    let mut document = schema_with(json!([
        {"targetField": "name", "mappingType": "direct", "config": {"type": "direct", "sourceField": "Name"}}
    ]));
    document["relationshipMappings"] = json!([
        {"relationshipType": "belongs_to", "targetField": "companyId", "sourceField": "AccountId", "lookupShardType": "c_company", "lookupByExternalId": true},
        {"relationshipType": "has_many", "targetField": "contactIds", "sourceField": "ContactIds", "lookupShardType": "c_contact", "lookupByExternalId": true},
        {"relationshipType": "has_one", "targetField": "ownerId", "sourceField": "OwnerEmail", "lookupShardType": "c_user", "lookupByExternalId": false, "lookupField": "email"}
    ]);
    let schema = compile(document);
    let records = [
        json!({"id": "o1", "Name": "A", "AccountId": "acc-1", "ContactIds": ["c1", "c2", "c9"], "OwnerEmail": "boss@x"}),
        json!({"id": "o2", "Name": "B", "AccountId": "acc-1", "ContactIds": "c2"}),
        json!({"id": "o3", "Name": "C", "AccountId": ["acc-1", "acc-2"]}),
        json!({"id": "o4", "Name": "D", "AccountId": null, "ContactIds": []}),
    ];
    let mapper = schema.bind(None);
    let mut outcome: BatchOutcome = mapper.map_batch(records.iter().map(RecordInput::from));

    let mut lookup = InMemoryLookup::new();
    lookup
        .insert("c_company", "acc-1", "cmp_1")
        .insert("c_contact", "c1", "ct_1")
        .insert("c_contact", "c2", "ct_2")
        .insert_by_field("c_user", "email", "boss@x", "usr_9");
    let stats = outcome
        .resolve_relationships(&lookup)
        .await
        .expect("lookup");
    assert_eq!(lookup.calls(), 1);
    assert_eq!((stats.keys, stats.found), (5, 4));

    let data: Vec<Option<Value>> = outcome
        .records
        .iter()
        .map(|r| match r {
            RecordOutcome::Mapped(m) => Some(Value::Object(m.data.to_map())),
            _ => None,
        })
        .collect();
    assert_eq!(
        data[0],
        Some(
            json!({"name": "A", "companyId": "cmp_1", "contactIds": ["ct_1", "ct_2"], "ownerId": "usr_9"})
        )
    );
    assert_eq!(
        data[1],
        Some(json!({"name": "B", "companyId": "cmp_1", "contactIds": ["ct_2"]}))
    );
    assert_eq!(data[2], None, "a belongs_to with two ids fails its record");
    assert_eq!(data[3], Some(json!({"name": "D"})));
    for record in outcome.mapped() {
        assert_eq!(
            record.payload_hash,
            format!(
                "{:032x}",
                xxhash_rust::xxh3::xxh3_128(record.data.as_str().as_bytes())
            ),
            "the hash covers the resolved links"
        );
    }
    let RecordOutcome::Mapped(first) = &outcome.records[0] else {
        unreachable!()
    };
    assert!(first.relationships[0].is_resolved());
    assert!(!first.relationships[1].is_resolved(), "c9 is not known yet");
    let error = outcome.errors().next().expect("an error");
    assert_eq!(
        (error.code.as_str(), error.target_field.as_deref()),
        ("invalid_relationship", Some("companyId"))
    );

    let mut again = mapper.map_batch(records.iter().map(RecordInput::from));
    assert_eq!(
        again.resolve_relationships(&FailingLookup).await,
        Err(LookupError {
            message: "records table throttled".into()
        })
    );
}

#[test]
fn diff_shows_what_a_new_schema_version_changes() {
    let v1 = compile(schema_with(json!([
        {"targetField": "name", "mappingType": "direct", "config": {"type": "direct", "sourceField": "Name"}},
        {"targetField": "stage", "mappingType": "direct", "config": {"type": "direct", "sourceField": "Stage"}}
    ])));
    let v2 = compile(schema_with(json!([
        {"targetField": "name", "mappingType": "transform", "config": {"type": "transform", "sourceField": "Name", "transformations": [{"type": "uppercase"}]}},
        {"targetField": "amount", "mappingType": "direct", "config": {"type": "direct", "sourceField": "Amount"}, "required": true}
    ])));
    let records = [
        json!({"id": "1", "Name": "acme", "Stage": "open", "Amount": 5}),
        json!({"id": "2", "Name": "GLOBEX", "Stage": "won"}),
        json!({"id": "3", "Name": "SAME", "Amount": 1}),
    ];
    let before = v1
        .bind(None)
        .map_batch(records.iter().map(RecordInput::from));
    let after = v2
        .bind(None)
        .map_batch(records.iter().map(RecordInput::from));
    let diffs = diff_outcomes(&before, &after);
    assert_eq!(diffs.len(), 3);
    let changes: Vec<(&str, Option<Value>, Option<Value>)> = diffs[0]
        .changes
        .iter()
        .map(|c| (c.field.as_str(), c.before.clone(), c.after.clone()))
        .collect();
    assert_eq!(
        changes,
        [
            ("amount", None, Some(json!(5))),
            ("name", Some(json!("acme")), Some(json!("ACME"))),
            ("stage", Some(json!("open")), None),
        ]
    );
    assert_eq!(
        (diffs[1].status_before, diffs[1].status_after),
        ("mapped", "failed")
    );
    assert_eq!(diffs[1].errors_after[0].code, "missing_required_field");
    assert_eq!(
        diffs[2].changes.len(),
        1,
        "only `amount` is new; `name` is unchanged"
    );
    assert!(diff_outcomes(&before, &before).is_empty());
}

#[test]
fn compiled_schemas_and_mappers_can_be_shared_across_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<CompiledSchema>();
    shareable::<hub_mapping::Mapper<'static>>();
    let schema = std::sync::Arc::new(people(
        json!({"strategy": "external_id", "externalIdField": "Id"}),
    ));
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let schema = schema.clone();
            std::thread::spawn(move || {
                let record = json!({"Id": format!("{i}"), "Email": " e "});
                mapped(schema.bind(None).map_record(0, RecordInput::from(&record)))
                    .data
                    .to_map()["email"]
                    .clone()
            })
        })
        .collect();
    for handle in handles {
        assert_eq!(handle.join().expect("thread"), json!("e"));
    }
}
