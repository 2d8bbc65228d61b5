//! Every example of the seed specification round-trips through the model unchanged.

use hub_core::model::{
    AuthType, ConflictResolutionStrategy, ConnectionScope, ConversionSchema, Deduplication,
    FieldMappingConfig, IntegrationDefinition, ScheduleConfig, SyncTask, Transformation,
    Visibility,
};

use super::{assert_round_trip, fixture_dir, fixture_value};

#[test]
fn every_seed_fixture_round_trips_as_its_type() {
    let mut names: Vec<String> = std::fs::read_dir(fixture_dir())
        .expect("fixture directory")
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    names.sort();
    // 3 conversion schemas, 6 sync task objects (5 examples), 3 integration definitions.
    assert_eq!(names.len(), 12, "{names:?}");
    for name in &names {
        let original = fixture_value(name);
        match name.split('.').next() {
            Some("conversion-schema") => {
                assert_round_trip::<ConversionSchema>(&original);
            }
            Some("sync-task") => {
                assert_round_trip::<SyncTask>(&original);
            }
            Some("integration-definition") => {
                assert_round_trip::<IntegrationDefinition>(&original);
            }
            other => panic!("{name}: unknown fixture kind {other:?}"),
        }
    }
}

#[test]
fn contact_schema_reads_into_the_expected_types() {
    let schema: ConversionSchema = assert_round_trip(&fixture_value(
        "conversion-schema.sf-contact-to-contact.json",
    ));
    assert_eq!(schema.source.filters.len(), 1);
    assert!(schema.field_mappings[0].required);
    let FieldMappingConfig::Composite(composite) = &schema.field_mappings[1].config else {
        panic!("second mapping is composite");
    };
    assert_eq!(composite.placeholders().unwrap(), ["FirstName", "LastName"]);
    let FieldMappingConfig::Transform(transform) = &schema.field_mappings[2].config else {
        panic!("third mapping is a transform");
    };
    let Transformation::Replace(replace) = &transform.transformations[0] else {
        panic!("phone formatting is a replace");
    };
    assert_eq!(
        (replace.search.as_str(), replace.replace.as_str()),
        (" ", "")
    );
    let Deduplication::ExternalId(dedup) = &schema.deduplication else {
        panic!("deduplication by external id");
    };
    assert_eq!(dedup.external_id_field, "Id");
}

#[test]
fn opportunity_schema_keeps_conditions_default_and_relationships() {
    let schema: ConversionSchema =
        assert_round_trip(&fixture_value("conversion-schema.sf-opportunity.json"));
    let FieldMappingConfig::Conditional(conditional) = &schema.field_mappings[2].config else {
        panic!("stage is conditional");
    };
    assert_eq!(conditional.conditions.len(), 6);
    assert_eq!(conditional.default, Some("lead".into()));
    assert_eq!(
        schema.relationship_mappings[0].lookup_shard_type,
        "c_company"
    );
    let FieldMappingConfig::Transform(transform) = &schema.field_mappings[3].config else {
        panic!("close date is a transform");
    };
    assert_eq!(transform.transformations, [Transformation::ToDate]);
}

#[test]
fn sync_tasks_read_schedules_and_typed_config() {
    let hourly: SyncTask = assert_round_trip(&fixture_value("sync-task.sf-opp-hourly.json"));
    let ScheduleConfig::Interval(interval) = &hourly.schedule.config else {
        panic!("hourly is an interval");
    };
    assert_eq!(interval.period().num_hours(), 1);
    assert!(hourly.config.incremental_sync());
    assert_eq!(hourly.retry_config().retry_delay_seconds, 300);

    let weekly: SyncTask = assert_round_trip(&fixture_value("sync-task.news-company-weekly.json"));
    let ScheduleConfig::Cron(cron) = &weekly.schedule.config else {
        panic!("weekly is cron");
    };
    assert_eq!(cron.expression.as_str(), "0 8 * * 1");
    assert_eq!(cron.timezone.tz(), chrono_tz::America::New_York);
    assert_eq!(weekly.config.get("maxResults"), Some(20.into()));
    // Defaults for what the example leaves out.
    assert_eq!(weekly.retry_config().max_retries, 3);
    assert!(weekly.stats.is_empty());

    let both: SyncTask = assert_round_trip(&fixture_value("sync-task.sf-bidirectional.json"));
    assert_eq!(
        both.config.conflict_resolution,
        Some(ConflictResolutionStrategy::NewestWins)
    );
    assert_eq!(
        both.config.get("conflictResolution"),
        Some("newest_wins".into())
    );

    let banking: SyncTask = assert_round_trip(&fixture_value("sync-task.news-banking-daily.json"));
    assert_eq!(banking.config.get("industry"), Some("banking".into()));
}

#[test]
fn partial_definitions_apply_defaults() {
    let openai: IntegrationDefinition =
        assert_round_trip(&fixture_value("integration-definition.openai.json"));
    assert_eq!(openai.connection_scope, ConnectionScope::Both);
    assert_eq!(openai.auth_type, Some(AuthType::ApiKey));
    assert_eq!(openai.available_entities, Some(Vec::new()));
    assert!(!openai.is_premium());

    let news: IntegrationDefinition =
        assert_round_trip(&fixture_value("integration-definition.google-news.json"));
    assert_eq!(news.visibility, Visibility::SuperadminOnly);
    assert!(news.available_entities().is_empty());
    assert_eq!(news.is_premium, Some(false));
}

#[test]
fn fixtures_load_from_bytes_too() {
    let bytes = super::fixture("sync-task.sf-opp-hourly.json").into_bytes();
    let task: SyncTask = hub_core::model::load_slice(&bytes).unwrap();
    assert_eq!(task.id, "sf-opp-hourly");
    let error = hub_core::model::load_slice::<SyncTask>(b"\xff\xfe").unwrap_err();
    assert_eq!(error.code(), "invalid_json", "{error}");
}
