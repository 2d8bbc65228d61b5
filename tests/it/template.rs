//! `template.yaml` (what AWS runs) and `hub_core::ports::Topology` (what the local host and the
//! contract tests create) must describe the same queues, tables and bus. The check lists every
//! disagreement instead of stopping at the first, so one run shows the whole drift.

use std::collections::BTreeSet;
use std::time::Duration;

use hub_core::ports::{EXPIRES_AT, GSI1PK, GSI1SK, PK, QueueSpec, RuleSpec, SK, Topology};
use serde_norway::{Mapping, Value};

const TEMPLATE: &str = include_str!("../../template.yaml");

/// The sparse index on `gsi1pk`/`gsi1sk`; the AWS adapter queries it by this name
/// (`hub_aws::dynamo::GSI1`).
const GSI1_INDEX: &str = "gsi1";

/// The template's resources and its `Prefix` parameter, with CloudFormation's intrinsics
/// (short `!Ref`/`!Sub`/`!GetAtt` tags or long `Ref`/`Fn::Sub`/`Fn::GetAtt` maps) resolved
/// as far as names go.
struct Template {
    root: Value,
    prefix: String,
}

impl Template {
    fn parse(text: &str) -> Result<Self, String> {
        let root: Value =
            serde_norway::from_str(text).map_err(|e| format!("template.yaml: {e}"))?;
        let prefix = root
            .get("Parameters")
            .and_then(|p| p.get("Prefix"))
            .and_then(|p| p.get("Default"))
            .and_then(Value::as_str)
            .ok_or("template.yaml: no Parameters.Prefix.Default")?
            .to_owned();
        Ok(Self { root, prefix })
    }

    /// `(logical id, Properties)` of every resource of this type.
    fn resources(&self, resource_type: &str) -> Vec<(String, &Value)> {
        let Some(resources) = self.root.get("Resources").and_then(Value::as_mapping) else {
            return Vec::new();
        };
        resources
            .iter()
            .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(resource_type))
            .filter_map(|(id, r)| Some((id.as_str()?.to_owned(), r.get("Properties")?)))
            .collect()
    }

    /// A name property: a `!Sub` that uses no variable but `${Prefix}`, or a plain string.
    fn physical_name(&self, value: Option<&Value>) -> Result<String, String> {
        let value = value.ok_or("no name property")?;
        // Before the plain-string case: serde_norway's `as_str` looks through tags.
        let Some(sub) = intrinsic(value, "Sub", "Fn::Sub") else {
            return match value {
                Value::String(plain) => Ok(plain.clone()),
                other => Err(format!("name is neither a string nor a !Sub: {other:?}")),
            };
        };
        let pattern = sub
            .as_str()
            .ok_or_else(|| format!("!Sub with variables is not a plain name: {sub:?}"))?;
        let name = pattern.replace("${Prefix}", &self.prefix);
        if name.contains("${") {
            return Err(format!(
                "name {pattern:?} uses a variable other than ${{Prefix}}"
            ));
        }
        Ok(name)
    }

    /// Resources of one type by their physical name; unnamed ones are reported.
    fn named(
        &self,
        resource_type: &str,
        name_property: &str,
        found: &mut Vec<String>,
    ) -> Vec<(String, String, &Value)> {
        let mut named = Vec::new();
        for (id, props) in self.resources(resource_type) {
            match self.physical_name(props.get(name_property)) {
                Ok(name) => named.push((name, id, props)),
                Err(e) => found.push(format!("{id}: {name_property}: {e}")),
            }
        }
        named
    }
}

/// The argument of an intrinsic function in either of its YAML spellings.
fn intrinsic<'a>(value: &'a Value, short_tag: &str, long_key: &str) -> Option<&'a Value> {
    match value {
        Value::Tagged(tagged) if tagged.tag == short_tag => Some(&tagged.value),
        Value::Mapping(map) if map.len() == 1 => map.get(long_key),
        _ => None,
    }
}

fn ref_target(value: Option<&Value>) -> Option<&str> {
    intrinsic(value?, "Ref", "Ref")?.as_str()
}

/// `!GetAtt Resource.Attribute` or `!GetAtt [Resource, Attribute]`.
fn get_att(value: Option<&Value>) -> Option<(String, String)> {
    let argument = intrinsic(value?, "GetAtt", "Fn::GetAtt")?;
    if let Some(dotted) = argument.as_str() {
        let (resource, attribute) = dotted.split_once('.')?;
        return Some((resource.to_owned(), attribute.to_owned()));
    }
    match argument.as_sequence()?.as_slice() {
        [resource, attribute] => Some((
            resource.as_str()?.to_owned(),
            attribute.as_str()?.to_owned(),
        )),
        _ => None,
    }
}

/// CloudFormation accepts numbers and booleans as YAML scalars or as strings.
fn as_u64(value: Option<&Value>) -> Option<u64> {
    let value = value?;
    value
        .as_u64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
}

fn as_bool(value: Option<&Value>) -> Option<bool> {
    let value = value?;
    value
        .as_bool()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
}

fn str_at<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

/// A `KeySchema` as `(attribute, HASH|RANGE)` pairs.
fn key_schema(value: Option<&Value>) -> Vec<(String, String)> {
    value
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
        .map(|k| {
            let attribute = str_at(k, "AttributeName").unwrap_or_default();
            let key_type = str_at(k, "KeyType").unwrap_or_default();
            (attribute.to_owned(), key_type.to_owned())
        })
        .collect()
}

fn owned_pairs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

/// Every way `template` and `topology` disagree, one sentence each; empty when they agree.
fn disagreements(template: &str, topology: &Topology) -> Vec<String> {
    let mut found = Vec::new();
    let template = match Template::parse(template) {
        Ok(t) => t,
        Err(e) => return vec![e],
    };
    if template.prefix != topology.prefix {
        found.push(format!(
            "Prefix defaults to {:?}, the Topology uses {:?}",
            template.prefix, topology.prefix
        ));
    }
    let queue_ids = check_queues(&template, topology, &mut found);
    let (state_id, records_id) = check_tables(&template, topology, &mut found);
    let bus_id = check_bus(&template, topology, &mut found);
    check_rules(
        &template,
        topology,
        &queue_ids,
        bus_id.as_deref(),
        &mut found,
    );
    check_environment(
        &template,
        &queue_ids,
        [
            ("HUB_STATE_TABLE", state_id),
            ("HUB_RECORDS_TABLE", records_id),
            ("HUB_EVENT_BUS", bus_id),
        ],
        &mut found,
    );
    found
}

/// Returns the logical id of each topology queue's resource, in `topology.queues` order.
fn check_queues(
    template: &Template,
    topology: &Topology,
    found: &mut Vec<String>,
) -> Vec<(QueueSpec, Option<String>)> {
    let declared = template.named("AWS::SQS::Queue", "QueueName", found);
    let id_of = |physical: &str| {
        declared
            .iter()
            .find(|(name, _, _)| name == physical)
            .map(|(_, id, _)| id.clone())
    };
    let mut ids = Vec::new();
    for spec in &topology.queues {
        let name = topology.queue_name(&spec.logical_name);
        let Some((_, id, props)) = declared.iter().find(|(n, _, _)| *n == name) else {
            found.push(format!(
                "queue {name} is in the Topology but not in the template"
            ));
            ids.push((spec.clone(), None));
            continue;
        };
        let seconds = |property: &str, expected: Duration| {
            let actual = as_u64(props.get(property));
            (actual != Some(expected.as_secs())).then(|| {
                format!(
                    "queue {name}: {property} is {actual:?}, the Topology says {}",
                    expected.as_secs()
                )
            })
        };
        found.extend(seconds("VisibilityTimeout", spec.visibility_timeout));
        found.extend(seconds("MessageRetentionPeriod", spec.retention));
        let encrypted = as_bool(props.get("SqsManagedSseEnabled")) == Some(true)
            || props.get("KmsMasterKeyId").is_some();
        if !encrypted {
            found.push(format!("queue {name}: no server-side encryption"));
        }
        let redrive = props.get("RedrivePolicy");
        match (&spec.redrive, redrive) {
            (None, None) => {}
            (None, Some(_)) => found.push(format!(
                "queue {name}: has a RedrivePolicy, the Topology gives it no DLQ"
            )),
            (Some((dlq, _)), None) => found.push(format!(
                "queue {name}: no RedrivePolicy, the Topology redrives it to {dlq}"
            )),
            (Some((dlq, max_receives)), Some(policy)) => {
                let actual = as_u64(policy.get("maxReceiveCount"));
                if actual != Some(u64::from(*max_receives)) {
                    found.push(format!(
                        "queue {name}: maxReceiveCount is {actual:?}, the Topology says {max_receives}"
                    ));
                }
                let expected_dlq = id_of(&topology.queue_name(dlq));
                let target = get_att(policy.get("deadLetterTargetArn"));
                let points_at_dlq = matches!(
                    (&target, &expected_dlq),
                    (Some((resource, attribute)), Some(dlq_id))
                        if resource == dlq_id && attribute == "Arn"
                );
                if !points_at_dlq {
                    found.push(format!(
                        "queue {name}: deadLetterTargetArn is {target:?}, expected !GetAtt of the {} queue's Arn",
                        topology.queue_name(dlq)
                    ));
                }
            }
        }
        ids.push((spec.clone(), Some(id.clone())));
    }
    let expected: BTreeSet<String> = topology
        .queues
        .iter()
        .map(|q| topology.queue_name(&q.logical_name))
        .collect();
    for (name, id, _) in &declared {
        if !expected.contains(name) {
            found.push(format!("{id}: queue {name} is not in the Topology"));
        }
    }
    ids
}

/// Returns the logical ids of the state and records tables.
fn check_tables(
    template: &Template,
    topology: &Topology,
    found: &mut Vec<String>,
) -> (Option<String>, Option<String>) {
    let declared = template.named("AWS::DynamoDB::Table", "TableName", found);
    let expected_keys = owned_pairs(&[(PK, "HASH"), (SK, "RANGE")]);
    let expected_index_keys = owned_pairs(&[(GSI1PK, "HASH"), (GSI1SK, "RANGE")]);
    let mut check = |name: String| -> Option<String> {
        let Some((_, id, props)) = declared.iter().find(|(n, _, _)| *n == name) else {
            found.push(format!(
                "table {name} is in the Topology but not in the template"
            ));
            return None;
        };
        let attribute_types: BTreeSet<(String, String)> = props
            .get("AttributeDefinitions")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
            .map(|d| {
                let attribute = str_at(d, "AttributeName").unwrap_or_default();
                let attribute_type = str_at(d, "AttributeType").unwrap_or_default();
                (attribute.to_owned(), attribute_type.to_owned())
            })
            .collect();
        for attribute in [PK, SK, GSI1PK, GSI1SK] {
            if !attribute_types.contains(&(attribute.to_owned(), "S".to_owned())) {
                found.push(format!(
                    "table {name}: {attribute} is not defined as a string"
                ));
            }
        }
        if key_schema(props.get("KeySchema")) != expected_keys {
            found.push(format!(
                "table {name}: key schema is not {PK} HASH, {SK} RANGE"
            ));
        }
        let indexes: Vec<&Value> = props
            .get("GlobalSecondaryIndexes")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
            .collect();
        match indexes.as_slice() {
            [index] if str_at(index, "IndexName") == Some(GSI1_INDEX) => {
                if key_schema(index.get("KeySchema")) != expected_index_keys {
                    found.push(format!(
                        "table {name}: index {GSI1_INDEX} is not {GSI1PK} HASH, {GSI1SK} RANGE"
                    ));
                }
                let projection = index
                    .get("Projection")
                    .and_then(|p| p.get("ProjectionType"));
                if projection.and_then(Value::as_str) != Some("ALL") {
                    found.push(format!(
                        "table {name}: index {GSI1_INDEX} does not project ALL"
                    ));
                }
            }
            _ => found.push(format!(
                "table {name}: expected exactly one global secondary index, {GSI1_INDEX}"
            )),
        }
        let ttl = props.get("TimeToLiveSpecification");
        let ttl_attribute = ttl.and_then(|t| str_at(t, "AttributeName"));
        if ttl_attribute != Some(EXPIRES_AT)
            || as_bool(ttl.and_then(|t| t.get("Enabled"))) != Some(true)
        {
            found.push(format!("table {name}: TTL is not enabled on {EXPIRES_AT}"));
        }
        let pitr = props
            .get("PointInTimeRecoverySpecification")
            .and_then(|p| p.get("PointInTimeRecoveryEnabled"));
        if as_bool(pitr) != Some(true) {
            found.push(format!("table {name}: point-in-time recovery is off"));
        }
        let sse = props
            .get("SSESpecification")
            .and_then(|s| s.get("SSEEnabled"));
        if as_bool(sse) != Some(true) {
            found.push(format!(
                "table {name}: SSESpecification.SSEEnabled is not true"
            ));
        }
        Some(id.clone())
    };
    let state = check(topology.state_table());
    let records = check(topology.records_table());
    let expected = [topology.state_table(), topology.records_table()];
    for (name, id, _) in &declared {
        if !expected.contains(name) {
            found.push(format!("{id}: table {name} is not in the Topology"));
        }
    }
    (state, records)
}

/// Returns the bus's logical id.
fn check_bus(template: &Template, topology: &Topology, found: &mut Vec<String>) -> Option<String> {
    let declared = template.named("AWS::Events::EventBus", "Name", found);
    let name = topology.bus_name();
    let mut bus = None;
    for (declared_name, id, _) in declared {
        if declared_name == name {
            bus = Some(id);
        } else {
            found.push(format!(
                "{id}: event bus {declared_name} is not in the Topology"
            ));
        }
    }
    if bus.is_none() {
        found.push(format!(
            "event bus {name} is in the Topology but not in the template"
        ));
    }
    bus
}

/// Rules on the hub's bus are the Topology's rules, named `<prefix>-<rule name>`. Schedule rules
/// (on the default bus) are not bus routing and are left out.
fn check_rules(
    template: &Template,
    topology: &Topology,
    queue_ids: &[(QueueSpec, Option<String>)],
    bus_id: Option<&str>,
    found: &mut Vec<String>,
) {
    let on_hub_bus: Vec<_> = template
        .named("AWS::Events::Rule", "Name", found)
        .into_iter()
        .filter(|(_, _, props)| bus_id.is_some() && ref_target(props.get("EventBusName")) == bus_id)
        .collect();
    let check = |rule: &RuleSpec, props: &Value| -> Vec<String> {
        let mut wrong = Vec::new();
        let pattern = props
            .get("EventPattern")
            .map(serde_json::to_value)
            .and_then(Result::ok);
        if pattern.as_ref() != Some(&rule.pattern) {
            wrong.push(format!(
                "rule {}: EventPattern differs from the Topology's",
                rule.name
            ));
        }
        let queue_id = queue_ids
            .iter()
            .find(|(spec, _)| spec.logical_name == rule.target_queue)
            .and_then(|(_, id)| id.clone());
        let targets_queue = props
            .get("Targets")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
            .filter_map(|t| get_att(t.get("Arn")))
            .any(|(resource, attribute)| {
                Some(&resource) == queue_id.as_ref() && attribute == "Arn"
            });
        if !targets_queue {
            wrong.push(format!(
                "rule {}: no target is the {} queue",
                rule.name, rule.target_queue
            ));
        }
        wrong
    };
    for rule in &topology.rules {
        let name = topology.queue_name(&rule.name);
        match on_hub_bus.iter().find(|(n, _, _)| *n == name) {
            Some((_, _, props)) => found.extend(check(rule, props)),
            None => found.push(format!(
                "rule {name} is in the Topology but not on the template's bus"
            )),
        }
    }
    for (name, id, _) in &on_hub_bus {
        if !topology
            .rules
            .iter()
            .any(|r| topology.queue_name(&r.name) == *name)
        {
            found.push(format!("{id}: rule {name} is not in the Topology"));
        }
    }
}

/// The functions find every resource through the Globals environment: `HUB_QUEUE_URL_<QUEUE>`
/// for each queue (`fetch-dlq` -> `FETCH_DLQ`), the tables and the bus by `!Ref`.
fn check_environment(
    template: &Template,
    queue_ids: &[(QueueSpec, Option<String>)],
    others: [(&str, Option<String>); 3],
    found: &mut Vec<String>,
) {
    let empty = Mapping::new();
    let variables = template
        .root
        .get("Globals")
        .and_then(|g| g.get("Function"))
        .and_then(|f| f.get("Environment"))
        .and_then(|e| e.get("Variables"))
        .and_then(Value::as_mapping)
        .unwrap_or(&empty);
    let mut expect_ref = |variable: String, resource: Option<&str>| {
        let actual = ref_target(variables.get(variable.as_str()));
        if let Some(resource) = resource
            && actual != Some(resource)
        {
            found.push(format!(
                "Globals: {variable} is {actual:?}, expected !Ref {resource}"
            ));
        }
    };
    expect_ref("HUB_PREFIX".to_owned(), Some("Prefix"));
    for (spec, id) in queue_ids {
        let variable = format!(
            "HUB_QUEUE_URL_{}",
            spec.logical_name.to_uppercase().replace('-', "_")
        );
        expect_ref(variable, id.as_deref());
    }
    for (variable, id) in others {
        expect_ref(variable.to_owned(), id.as_deref());
    }
}

fn assert_agree(found: &[String]) {
    assert!(
        found.is_empty(),
        "template.yaml and the Topology disagree:\n  {}",
        found.join("\n  ")
    );
}

#[test]
fn template_matches_the_default_topology() {
    assert_agree(&disagreements(TEMPLATE, &Topology::default()));
}

#[test]
fn a_changed_max_receive_count_in_the_template_is_reported() {
    let changed = TEMPLATE.replacen("maxReceiveCount: 5", "maxReceiveCount: 6", 1);
    assert_ne!(
        changed, TEMPLATE,
        "the template no longer spells maxReceiveCount: 5"
    );
    let found = disagreements(&changed, &Topology::default());
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].contains("maxReceiveCount is Some(6)"),
        "{found:#?}"
    );
}

#[test]
fn queues_rules_and_settings_missing_from_the_template_are_reported() {
    let mut topology = Topology::default();
    let replay = QueueSpec {
        logical_name: "replay".to_owned(),
        ..topology.queues[0].clone()
    };
    topology.queues.push(replay);
    topology.queues[1].retention = Duration::from_secs(60);
    topology.rules.push(RuleSpec {
        name: "conflicts-to-write".to_owned(),
        pattern: serde_json::json!({ "detail-type": ["conflict.detected"] }),
        target_queue: "write".to_owned(),
    });
    let found = disagreements(TEMPLATE, &topology);
    let expected_fragments = [
        "queue hub-replay is in the Topology but not in the template",
        "queue hub-fetch-dlq: MessageRetentionPeriod is Some(1209600), the Topology says 60",
        "rule hub-conflicts-to-write is in the Topology but not on the template's bus",
    ];
    for fragment in expected_fragments {
        assert!(
            found.iter().any(|f| f.contains(fragment)),
            "{fragment}: {found:#?}"
        );
    }
    assert_eq!(found.len(), expected_fragments.len(), "{found:#?}");
}

#[test]
fn a_template_for_another_prefix_is_reported() {
    let found = disagreements(TEMPLATE, &Topology::new("other"));
    assert!(
        found
            .iter()
            .any(|f| f.contains("Prefix defaults to \"hub\"")),
        "{found:#?}"
    );
}

#[test]
fn a_bus_rule_is_matched_by_name_pattern_and_target_queue() {
    let rule = r#"
  ConflictsToWriteRule:
    Type: AWS::Events::Rule
    Properties:
      Name: !Sub ${Prefix}-conflicts-to-write
      EventBusName: !Ref EventBus
      EventPattern:
        detail-type: [conflict.detected]
      Targets:
        - Id: write
          Arn: !GetAtt WriteQueue.Arn

Outputs:"#;
    let with_rule = TEMPLATE.replacen("\nOutputs:", rule, 1);
    assert_ne!(
        with_rule, TEMPLATE,
        "the template has no Outputs section to insert before"
    );
    let mut topology = Topology::default();
    topology.rules.push(RuleSpec {
        name: "conflicts-to-write".to_owned(),
        pattern: serde_json::json!({ "detail-type": ["conflict.detected"] }),
        target_queue: "write".to_owned(),
    });
    assert_agree(&disagreements(&with_rule, &topology));

    let added = topology.rules.len() - 1;
    topology.rules[added].target_queue = "fetch".to_owned();
    topology.rules[added].pattern = serde_json::json!({ "detail-type": ["sync.completed"] });
    let found = disagreements(&with_rule, &topology);
    assert_eq!(
        found,
        [
            "rule conflicts-to-write: EventPattern differs from the Topology's",
            "rule conflicts-to-write: no target is the fetch queue",
        ],
    );
    let found = disagreements(&with_rule, &Topology::default());
    assert_eq!(
        found,
        ["ConflictsToWriteRule: rule hub-conflicts-to-write is not in the Topology"],
    );
}
