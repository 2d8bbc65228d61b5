//! `StateStore` cases: DynamoDB semantics of items, conditions, updates, queries, the sparse
//! index, transactions, batches and TTL.

use std::collections::BTreeSet;
use std::time::Duration;

use hub_core::ports::{
    CancelReason, CmpOp, Condition, Index, Item, Key, MAX_BATCH_GET, MAX_BATCH_WRITE,
    MAX_ITEM_BYTES, MAX_TRANSACT_ITEMS, QueryPage, QueryRequest, SortCondition, StateStore,
    StoreError, TransactOp, UpdateAction, WriteRequest,
};
use serde_json::{Value, json};

use crate::{Harness, item, racing_writes, tables_only};

fn key(pk: &str, sk: &str) -> Key {
    Key::new(pk, sk)
}

fn sks(items: &[Item]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["sk"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn put_all(store: &dyn StateStore, items: Vec<Value>) {
    for value in items {
        store.put(item(value), None).await.expect("put");
    }
}

/// Every page of a query, in order, until `last_evaluated_key` is `None`.
async fn all_pages(store: &dyn StateStore, request: QueryRequest) -> Vec<QueryPage> {
    let mut pages = Vec::new();
    let mut start = None;
    for _ in 0..100 {
        let page = store
            .query(request.clone().start_after(start.take()))
            .await
            .expect("query");
        start = page.last_evaluated_key.clone();
        pages.push(page);
        if start.is_none() {
            return pages;
        }
    }
    panic!("a query did not finish paging within 100 pages");
}

async fn query_sks(store: &dyn StateStore, request: QueryRequest) -> Vec<String> {
    let pages = all_pages(store, request).await;
    pages.iter().flat_map(|p| sks(&p.items)).collect()
}

fn assert_condition_failed<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    assert!(
        matches!(result, Err(StoreError::ConditionFailed)),
        "{what}: expected ConditionFailed, got {result:?}"
    );
}

fn assert_validation<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    assert!(
        matches!(result, Err(StoreError::Validation(_))),
        "{what}: expected a validation error, got {result:?}"
    );
}

pub async fn missing_item_is_none(h: &dyn Harness) {
    let ports = h.fresh(&tables_only()).await;
    assert_eq!(
        ports.state.get(&key("nobody", "nothing")).await.unwrap(),
        None
    );
}

pub async fn put_then_get_round_trips_every_json_type(h: &dyn Harness) {
    let ports = h.fresh(&tables_only()).await;
    let written = item(json!({
        "pk": "tenant#1",
        "sk": "profile",
        "text": "héllo ✓",
        "empty": "",
        "maxInt": i64::MAX,
        "minInt": i64::MIN,
        "zero": 0,
        "fraction": -0.25,
        "flag": true,
        "nothing": null,
        "list": [1, "two", {"three": false}, []],
        "map": {"nested": {"deep": [1.5, "x"]}, "emptyMap": {}},
    }));
    ports.state.put(written.clone(), None).await.unwrap();
    let read = ports.state.get(&key("tenant#1", "profile")).await.unwrap();
    assert_eq!(read, Some(written));
}

pub async fn tables_are_separate(h: &dyn Harness) {
    let ports = h.fresh(&tables_only()).await;
    ports
        .state
        .put(item(json!({"pk": "p", "sk": "s", "in": "state"})), None)
        .await
        .unwrap();
    assert_eq!(ports.records.get(&key("p", "s")).await.unwrap(), None);
    assert_ne!(ports.state.table_name(), ports.records.table_name());
}

pub async fn put_replaces_the_whole_item(h: &dyn Harness) {
    let ports = h.fresh(&tables_only()).await;
    let store = &*ports.state;
    put_all(store, vec![json!({"pk": "p", "sk": "s", "a": 1, "b": 2})]).await;
    put_all(store, vec![json!({"pk": "p", "sk": "s", "c": 3})]).await;
    assert_eq!(
        store.get(&key("p", "s")).await.unwrap(),
        Some(item(json!({"pk": "p", "sk": "s", "c": 3})))
    );
}

pub async fn conditional_put_creates_only_once(h: &dyn Harness) {
    let ports = h.fresh(&tables_only()).await;
    let store = &*ports.state;
    let first = item(json!({"pk": "idem#1", "sk": "record", "owner": "first"}));
    store
        .put(first.clone(), Some(Condition::item_absent()))
        .await
        .unwrap();
    let second = store
        .put(
            item(json!({"pk": "idem#1", "sk": "record", "owner": "second"})),
            Some(Condition::item_absent()),
        )
        .await;
    assert_condition_failed(second, "a second create");
    assert_eq!(
        store.get(&key("idem#1", "record")).await.unwrap(),
        Some(first)
    );
    assert_condition_failed(
        store
            .put(
                item(json!({"pk": "idem#2", "sk": "record"})),
                Some(Condition::item_present()),
            )
            .await,
        "item_present on a missing item",
    );
}

pub async fn conditional_put_checks_attribute_values(h: &dyn Harness) {
    let ports = h.fresh(&tables_only()).await;
    let store = &*ports.state;
    put_all(store, vec![json!({"pk": "p", "sk": "s", "version": 1})]).await;
    store
        .put(
            item(json!({"pk": "p", "sk": "s", "version": 2})),
            Some(Condition::eq("version", 1)),
        )
        .await
        .unwrap();
    assert_condition_failed(
        store
            .put(
                item(json!({"pk": "p", "sk": "s", "version": 3})),
                Some(Condition::eq("version", 1)),
            )
            .await,
        "a stale version",
    );
    assert_eq!(
        store.get(&key("p", "s")).await.unwrap().unwrap()["version"],
        json!(2)
    );
}

pub async fn conditions_compare_values_of_the_same_type_only(h: &dyn Harness) {
    let ports = h.fresh(&tables_only()).await;
    let store = &*ports.state;
    let target = item(json!({
        "pk": "p", "sk": "s",
        "n": 5, "f": 1.5, "s": "5", "word": "apple", "upper": "Zebra", "accent": "é",
        "b": true, "z": null,
    }));
    store.put(target.clone(), None).await.unwrap();
    let cases: Vec<(Condition, bool)> = vec![
        (Condition::eq("n", 5), true),
        (Condition::eq("n", 5.0), true),
        (Condition::eq("n", "5"), false),
        (Condition::cmp("n", CmpOp::Ne, "5"), true),
        (Condition::cmp("n", CmpOp::Lt, "9"), false),
        (Condition::cmp("n", CmpOp::Ge, "0"), false),
        (Condition::cmp("n", CmpOp::Gt, 4), true),
        (Condition::cmp("n", CmpOp::Ge, 5), true),
        (Condition::cmp("n", CmpOp::Le, 4.5), false),
        (Condition::cmp("n", CmpOp::Lt, 10), true),
        (Condition::cmp("f", CmpOp::Lt, 2), true),
        (Condition::cmp("f", CmpOp::Gt, 1), true),
        (Condition::eq("s", "5"), true),
        (Condition::eq("s", 5), false),
        (Condition::cmp("s", CmpOp::Lt, "6"), true),
        // Strings order by UTF-8 bytes: upper case before lower case, accents after ASCII.
        (Condition::cmp("word", CmpOp::Gt, "Zebra"), true),
        (Condition::cmp("upper", CmpOp::Lt, "apple"), true),
        (Condition::cmp("accent", CmpOp::Gt, "z"), true),
        (Condition::eq("b", true), true),
        (Condition::eq("b", "true"), false),
        (Condition::cmp("b", CmpOp::Ne, false), true),
        (Condition::eq("z", Value::Null), true),
        (Condition::Exists("z".into()), true),
        (Condition::Exists("missing".into()), false),
        (Condition::NotExists("missing".into()), true),
        (Condition::eq("missing", 1), false),
        (Condition::cmp("missing", CmpOp::Ne, 1), true),
        (Condition::cmp("missing", CmpOp::Lt, 1), false),
        (Condition::cmp("missing", CmpOp::Ge, 1), false),
        (Condition::BeginsWith("word".into(), "app".into()), true),
        (Condition::BeginsWith("word".into(), "pp".into()), false),
        (Condition::BeginsWith("n".into(), "5".into()), false),
        (Condition::eq("n", 5).and(Condition::eq("s", "5")), true),
        (Condition::eq("n", 5).and(Condition::eq("s", "x")), false),
        (Condition::eq("n", 6).or(Condition::eq("s", "5")), true),
        (Condition::eq("n", 6).or(Condition::eq("s", "x")), false),
        (Condition::Not(Box::new(Condition::eq("n", 6))), true),
        (
            Condition::Not(Box::new(Condition::eq("n", 5).or(Condition::eq("n", 6)))),
            false,
        ),
    ];
    for (condition, expected) in cases {
        let result = store.put(target.clone(), Some(condition.clone())).await;
        match (expected, result) {
            (true, Ok(())) => {}
            (false, Err(StoreError::ConditionFailed)) => {}
            (expected, result) => {
                panic!("{condition:?} should evaluate to {expected}, the put returned {result:?}")
            }
        }
    }
}

pub async fn update_creates_the_item_and_returns_it(h: &dyn Harness) {
    let ports = h.fresh(&tables_only()).await;
    let store = &*ports.state;
    let written = store
        .update(
            &key("exec#1", "meta"),
            vec![
                UpdateAction::Set("status".into(), json!("RUNNING")),
                UpdateAction::Add("processed".into(), 2),
                UpdateAction::SetIfNotExists("startedAt".into(), json!("t1")),
            ],
            None,
        )
        .await
        .unwrap();
    let expected = item(json!({
        "pk": "exec#1", "sk": "meta", "status": "RUNNING", "processed": 2, "startedAt": "t1",
    }));
    assert_eq!(written, expected);
    assert_eq!(
        store.get(&key("exec#1", "meta")).await.unwrap(),
        Some(expected)
    );
}

pub async fn update_counts_and_keeps_first_values(h: &dyn Harness) {
    let ports = h.fresh(&tables_only()).await;
    let store = &*ports.state;
    put_all(
        store,
        vec![json!({"pk": "p", "sk": "s", "count": 1, "startedAt": "t1", "note": "x"})],
    )
    .await;
    let written = store
        .update(
            &key("p", "s"),
            vec![
                UpdateAction::Add("count".into(), 4),
                UpdateAction::Add("failures".into(), -1),
                UpdateAction::SetIfNotExists("startedAt".into(), json!("t2")),
                UpdateAction::Remove("note".into()),
                UpdateAction::Remove("neverThere".into()),
            ],
            Some(Condition::item_present()),
        )
        .await
        .unwrap();
    assert_eq!(
        written,
        item(json!({"pk": "p", "sk": "s", "count": 5, "failures": -1, "startedAt": "t1"}))
    );
    // Concurrent increments all count (one after another on a backend that does not isolate
    // them: see `Harness::isolates_concurrent_writes`).
    let counter = key("p", "s");
    let increments = (0..8)
        .map(|_| store.update(&counter, vec![UpdateAction::Add("count".into(), 1)], None))
        .collect();
    for result in racing_writes(h, increments).await {
        result.unwrap();
    }
    assert_eq!(
        store.get(&key("p", "s")).await.unwrap().unwrap()["count"],
        json!(13)
    );
}

pub async fn update_with_a_failed_condition_changes_nothing(h: &dyn Harness) {
    let ports = h.fresh(&tables_only()).await;
    let store = &*ports.state;
    let original = item(json!({"pk": "task#1", "sk": "meta", "nextRunAt": "2024-01-01T00:00"}));
    store.put(original.clone(), None).await.unwrap();
    let claim = store
        .update(
            &key("task#1", "meta"),
            vec![UpdateAction::Set(
                "nextRunAt".into(),
                json!("2024-01-01T01:00"),
            )],
            Some(Condition::eq("nextRunAt", "2023-12-31T23:00")),
        )
        .await;
    assert_condition_failed(claim, "a claim with a stale nextRunAt");
    assert_eq!(
        store.get(&key("task#1", "meta")).await.unwrap(),
        Some(original)
    );
    assert_condition_failed(
        store
            .update(
                &key("task#2", "meta"),
                vec![UpdateAction::Set("x".into(), json!(1))],
                Some(Condition::item_present()),
            )
            .await,
        "an update of a missing item that must exist",
    );
    assert_eq!(store.get(&key("task#2", "meta")).await.unwrap(), None);
}

pub async fn update_rejects_invalid_actions(h: &dyn Harness) {
    let ports = h.fresh(&tables_only()).await;
    let store = &*ports.state;
    put_all(store, vec![json!({"pk": "p", "sk": "s", "name": "text"})]).await;
    let k = key("p", "s");
    assert_validation(
        store
            .update(&k, vec![UpdateAction::Add("name".into(), 1)], None)
            .await,
        "ADD to a string",
    );
    assert_validation(
        store
            .update(&k, vec![UpdateAction::Set("pk".into(), json!("q"))], None)
            .await,
        "SET on the partition key",
    );
    assert_validation(
        store
            .update(
                &k,
                vec![
                    UpdateAction::Set("a".into(), json!(1)),
                    UpdateAction::Remove("a".into()),
                ],
                None,
            )
            .await,
        "two actions on one attribute",
    );
    assert_validation(store.update(&k, vec![], None).await, "no actions");
    assert_validation(
        store
            .update(&k, vec![UpdateAction::Set("gsi1pk".into(), json!(7))], None)
            .await,
        "a non-string index key",
    );
    assert_eq!(
        store.get(&k).await.unwrap(),
        Some(item(json!({"pk": "p", "sk": "s", "name": "text"})))
    );
}

pub async fn delete_returns_the_old_item_and_honours_its_condition(h: &dyn Harness) {
    let ports = h.fresh(&tables_only()).await;
    let store = &*ports.state;
    let original = item(json!({"pk": "p", "sk": "s", "v": 1}));
    store.put(original.clone(), None).await.unwrap();
    assert_condition_failed(
        store
            .delete(&key("p", "s"), Some(Condition::eq("v", 2)))
            .await,
        "a delete whose condition fails",
    );
    assert_eq!(
        store.get(&key("p", "s")).await.unwrap(),
        Some(original.clone())
    );
    let deleted = store
        .delete(&key("p", "s"), Some(Condition::eq("v", 1)))
        .await
        .unwrap();
    assert_eq!(deleted, Some(original));
    assert_eq!(store.get(&key("p", "s")).await.unwrap(), None);
    assert_eq!(store.delete(&key("p", "s"), None).await.unwrap(), None);
    assert_condition_failed(
        store
            .delete(&key("p", "s"), Some(Condition::item_present()))
            .await,
        "a delete of a missing item that must exist",
    );
}

pub async fn query_returns_one_partition_in_sort_key_order(h: &dyn Harness) {
    let ports = h.fresh(&tables_only()).await;
    let store = &*ports.state;
    put_all(
        store,
        vec![
            json!({"pk": "P", "sk": "c"}),
            json!({"pk": "P", "sk": "a"}),
            json!({"pk": "P2", "sk": "a"}),
            json!({"pk": "P", "sk": "b"}),
            json!({"pk": "Q", "sk": "a"}),
        ],
    )
    .await;
    let forward = QueryRequest::partition(Index::Primary, "P");
    assert_eq!(query_sks(store, forward.clone()).await, ["a", "b", "c"]);
    assert_eq!(query_sks(store, forward.backwards()).await, ["c", "b", "a"]);
    assert!(
        query_sks(store, QueryRequest::partition(Index::Primary, "none"))
            .await
            .is_empty()
    );
}

pub async fn query_applies_each_sort_condition(h: &dyn Harness) {
    let ports = h.fresh(&tables_only()).await;
    let store = &*ports.state;
    let all = ["Z", "a", "ab", "abc", "b", "ba", "c"];
    put_all(
        store,
        all.iter().map(|sk| json!({"pk": "P", "sk": sk})).collect(),
    )
    .await;
    let cases: Vec<(SortCondition, Vec<&str>)> = vec![
        (SortCondition::Eq("ab".into()), vec!["ab"]),
        (SortCondition::Eq("zz".into()), vec![]),
        (SortCondition::BeginsWith("ab".into()), vec!["ab", "abc"]),
        (SortCondition::BeginsWith("b".into()), vec!["b", "ba"]),
        (
            SortCondition::Between("ab".into(), "b".into()),
            vec!["ab", "abc", "b"],
        ),
        (SortCondition::Lt("b".into()), vec!["Z", "a", "ab", "abc"]),
        (
            SortCondition::Le("b".into()),
            vec!["Z", "a", "ab", "abc", "b"],
        ),
        (SortCondition::Gt("b".into()), vec!["ba", "c"]),
        (SortCondition::Ge("b".into()), vec!["b", "ba", "c"]),
    ];
    for (sort, expected) in cases {
        let request = QueryRequest::partition(Index::Primary, "P").sort(sort.clone());
        assert_eq!(
            query_sks(store, request.clone()).await,
            expected,
            "{sort:?}"
        );
        let mut reversed = expected.clone();
        reversed.reverse();
        assert_eq!(
            query_sks(store, request.backwards()).await,
            reversed,
            "{sort:?} backwards"
        );
    }
}

pub async fn query_pages_forward_and_backward(h: &dyn Harness) {
    let ports = h.fresh(&tables_only()).await;
    let store = &*ports.state;
    let all: Vec<String> = (1..=7).map(|i| format!("item#{i:02}")).collect();
    put_all(
        store,
        all.iter().map(|sk| json!({"pk": "P", "sk": sk})).collect(),
    )
    .await;
    let request = QueryRequest::partition(Index::Primary, "P").limit(3);

    let first = store.query(request.clone()).await.unwrap();
    assert_eq!(sks(&first.items), all[..3]);
    assert!(first.last_evaluated_key.is_some(), "more items follow");

    let pages = all_pages(store, request.clone()).await;
    assert!(pages.iter().all(|p| p.items.len() <= 3));
    let forward: Vec<String> = pages.iter().flat_map(|p| sks(&p.items)).collect();
    assert_eq!(forward, all);

    let backward = query_sks(store, request.backwards()).await;
    let mut reversed = all.clone();
    reversed.reverse();
    assert_eq!(backward, reversed);

    let ranged = query_sks(
        store,
        QueryRequest::partition(Index::Primary, "P")
            .sort(SortCondition::Gt("item#02".into()))
            .limit(2),
    )
    .await;
    assert_eq!(ranged, all[2..]);
}

pub async fn query_applies_the_limit_before_the_filter(h: &dyn Harness) {
    let ports = h.fresh(&tables_only()).await;
    let store = &*ports.state;
    put_all(
        store,
        (1..=5)
            .map(|i| json!({"pk": "P", "sk": format!("s{i}"), "keep": i == 3 || i == 4}))
            .collect(),
    )
    .await;
    let request = QueryRequest::partition(Index::Primary, "P")
        .filter(Condition::eq("keep", true))
        .limit(2);
    let first = store.query(request.clone()).await.unwrap();
    assert!(
        first.items.is_empty(),
        "the first two items are evaluated and filtered out: {first:?}"
    );
    assert!(
        first.last_evaluated_key.is_some(),
        "an empty page still says more may follow"
    );
    assert_eq!(query_sks(store, request.clone()).await, ["s3", "s4"]);
    let unlimited =
        QueryRequest::partition(Index::Primary, "P").filter(Condition::eq("keep", true));
    assert_eq!(query_sks(store, unlimited).await, ["s3", "s4"]);
}

pub async fn query_rejects_invalid_requests(h: &dyn Harness) {
    let ports = h.fresh(&tables_only()).await;
    let store = &*ports.state;
    assert_validation(
        store
            .query(QueryRequest::partition(Index::Primary, "P").limit(0))
            .await,
        "limit 0",
    );
    assert_validation(
        store
            .query(QueryRequest::partition(Index::Primary, "P").limit(1001))
            .await,
        "limit 1001",
    );
}

pub async fn gsi1_query_is_sparse_and_pages_through_shared_sort_keys(h: &dyn Harness) {
    let ports = h.fresh(&tables_only()).await;
    let store = &*ports.state;
    put_all(
        store,
        vec![
            json!({"pk": "task#1", "sk": "meta", "gsi1pk": "due#0", "gsi1sk": "2024-01-01T00:00", "n": 1}),
            json!({"pk": "task#2", "sk": "meta", "gsi1pk": "due#0", "gsi1sk": "2024-01-01T00:00", "n": 2}),
            json!({"pk": "task#3", "sk": "meta", "gsi1pk": "due#0", "gsi1sk": "2024-01-01T00:00", "n": 3}),
            json!({"pk": "task#4", "sk": "meta", "gsi1pk": "due#0", "gsi1sk": "2024-02-01T00:00", "n": 4}),
            // Only one index key attribute: not in the index.
            json!({"pk": "task#5", "sk": "meta", "gsi1pk": "due#0"}),
            json!({"pk": "task#6", "sk": "meta", "gsi1sk": "2024-01-01T00:00"}),
            // No index attributes at all, and another index partition.
            json!({"pk": "task#7", "sk": "meta"}),
            json!({"pk": "task#8", "sk": "meta", "gsi1pk": "due#1", "gsi1sk": "2024-01-01T00:00"}),
        ],
    )
    .await;
    let pks = |pages: &[QueryPage]| -> Vec<String> {
        pages
            .iter()
            .flat_map(|p| {
                p.items
                    .iter()
                    .map(|i| i["pk"].as_str().unwrap_or_default().to_owned())
            })
            .collect()
    };
    let request = QueryRequest::partition(Index::Gsi1, "due#0");

    let all = pks(&all_pages(store, request.clone()).await);
    assert_eq!(all.len(), 4, "{all:?}");
    assert_eq!(all.last().map(String::as_str), Some("task#4"), "{all:?}");
    let set: BTreeSet<&str> = all.iter().map(String::as_str).collect();
    assert_eq!(
        set,
        BTreeSet::from(["task#1", "task#2", "task#3", "task#4"])
    );

    // Pages of one: the position must tell apart items that share a gsi1sk.
    let pages = all_pages(store, request.clone().limit(1)).await;
    let paged = pks(&pages);
    assert_eq!(paged.len(), 4, "{paged:?}");
    assert_eq!(
        paged.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        set,
        "every item exactly once: {paged:?}"
    );
    let position = pages[0].last_evaluated_key.as_ref().expect("more pages");
    for attribute in ["pk", "sk", "gsi1pk", "gsi1sk"] {
        assert!(
            position.contains_key(attribute),
            "an index position holds `{attribute}`: {position:?}"
        );
    }

    let backwards = pks(&all_pages(store, request.clone().backwards().limit(2)).await);
    assert_eq!(backwards.first().map(String::as_str), Some("task#4"));
    assert_eq!(backwards.len(), 4);

    let january = pks(&all_pages(
        store,
        request
            .clone()
            .sort(SortCondition::BeginsWith("2024-01".into()))
            .filter(Condition::cmp("n", CmpOp::Ge, 2)),
    )
    .await);
    assert_eq!(
        january.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        BTreeSet::from(["task#2", "task#3"])
    );
}

/// The index follows puts, updates that move an item within or across partitions or drop an
/// index key, and deletes. DynamoDB indexes are eventually consistent, so each check waits (a
/// few seconds at most) for the index to agree rather than expecting it at once.
pub async fn gsi1_follows_updates_moves_and_deletes(h: &dyn Harness) {
    let ports = h.fresh(&tables_only()).await;
    let store = &*ports.state;
    let due = |partition: &str| QueryRequest::partition(Index::Gsi1, partition);
    let index_eventually = |partition: &'static str, expected: &'static [&'static str]| async move {
        let mut seen = Vec::new();
        for _ in 0..100 {
            let page = store.query(due(partition)).await.unwrap();
            seen = page
                .items
                .iter()
                .map(|i| i["gsi1sk"].as_str().unwrap_or_default().to_owned())
                .collect::<Vec<_>>();
            if seen == expected {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("index partition {partition} holds {seen:?}, expected {expected:?}");
    };
    put_all(
        store,
        vec![json!({"pk": "task#1", "sk": "meta", "gsi1pk": "due#0", "gsi1sk": "t1"})],
    )
    .await;
    index_eventually("due#0", &["t1"]).await;

    store
        .update(
            &key("task#1", "meta"),
            vec![UpdateAction::Set("gsi1sk".into(), json!("t2"))],
            None,
        )
        .await
        .unwrap();
    index_eventually("due#0", &["t2"]).await;

    store
        .update(
            &key("task#1", "meta"),
            vec![UpdateAction::Set("gsi1pk".into(), json!("due#1"))],
            None,
        )
        .await
        .unwrap();
    index_eventually("due#0", &[]).await;
    index_eventually("due#1", &["t2"]).await;

    store
        .update(
            &key("task#1", "meta"),
            vec![UpdateAction::Remove("gsi1sk".into())],
            None,
        )
        .await
        .unwrap();
    index_eventually("due#1", &[]).await;

    store
        .update(
            &key("task#1", "meta"),
            vec![UpdateAction::Set("gsi1sk".into(), json!("t3"))],
            None,
        )
        .await
        .unwrap();
    index_eventually("due#1", &["t3"]).await;
    store.delete(&key("task#1", "meta"), None).await.unwrap();
    index_eventually("due#1", &[]).await;
}

pub async fn transact_write_applies_every_operation(h: &dyn Harness) {
    let ports = h.fresh(&tables_only()).await;
    let store = &*ports.state;
    put_all(
        store,
        vec![
            json!({"pk": "exec#1", "sk": "meta", "done": 1}),
            json!({"pk": "lock#1", "sk": "lock"}),
            json!({"pk": "task#1", "sk": "meta", "enabled": true}),
        ],
    )
    .await;
    store
        .transact_write(vec![
            TransactOp::Put {
                item: item(json!({"pk": "record#1", "sk": "r", "v": 1})),
                condition: Some(Condition::item_absent()),
            },
            TransactOp::Update {
                key: key("exec#1", "meta"),
                actions: vec![UpdateAction::Add("done".into(), 1)],
                condition: Some(Condition::eq("done", 1)),
            },
            TransactOp::Delete {
                key: key("lock#1", "lock"),
                condition: Some(Condition::item_present()),
            },
            TransactOp::Check {
                key: key("task#1", "meta"),
                condition: Condition::eq("enabled", true),
            },
        ])
        .await
        .unwrap();
    assert_eq!(
        store.get(&key("record#1", "r")).await.unwrap(),
        Some(item(json!({"pk": "record#1", "sk": "r", "v": 1})))
    );
    assert_eq!(
        store.get(&key("exec#1", "meta")).await.unwrap().unwrap()["done"],
        json!(2)
    );
    assert_eq!(store.get(&key("lock#1", "lock")).await.unwrap(), None);
    // An update in a transaction creates a missing item, as UpdateItem does.
    store
        .transact_write(vec![TransactOp::Update {
            key: key("counter#1", "c"),
            actions: vec![UpdateAction::Add("n".into(), 3)],
            condition: None,
        }])
        .await
        .unwrap();
    assert_eq!(
        store.get(&key("counter#1", "c")).await.unwrap(),
        Some(item(json!({"pk": "counter#1", "sk": "c", "n": 3})))
    );
}

pub async fn transact_write_cancels_with_a_reason_per_operation(h: &dyn Harness) {
    let ports = h.fresh(&tables_only()).await;
    let store = &*ports.state;
    put_all(
        store,
        vec![
            json!({"pk": "exec#1", "sk": "meta", "done": 1}),
            json!({"pk": "task#1", "sk": "meta", "enabled": true}),
        ],
    )
    .await;
    let result = store
        .transact_write(vec![
            TransactOp::Put {
                item: item(json!({"pk": "record#1", "sk": "r"})),
                condition: None,
            },
            TransactOp::Update {
                key: key("exec#1", "meta"),
                actions: vec![UpdateAction::Add("done".into(), 1)],
                condition: Some(Condition::eq("done", 99)),
            },
            TransactOp::Check {
                key: key("task#1", "meta"),
                condition: Condition::eq("enabled", true),
            },
        ])
        .await;
    match result {
        Err(StoreError::TransactionCanceled { reasons }) => assert_eq!(
            reasons,
            [
                CancelReason::None,
                CancelReason::ConditionFailed,
                CancelReason::None
            ]
        ),
        other => panic!("expected a cancelled transaction, got {other:?}"),
    }
    assert_eq!(store.get(&key("record#1", "r")).await.unwrap(), None);
    assert_eq!(
        store.get(&key("exec#1", "meta")).await.unwrap().unwrap()["done"],
        json!(1)
    );
    let check_failed = store
        .transact_write(vec![
            TransactOp::Put {
                item: item(json!({"pk": "record#2", "sk": "r"})),
                condition: None,
            },
            TransactOp::Check {
                key: key("task#9", "meta"),
                condition: Condition::item_present(),
            },
        ])
        .await;
    match check_failed {
        Err(StoreError::TransactionCanceled { reasons }) => {
            assert_eq!(reasons, [CancelReason::None, CancelReason::ConditionFailed])
        }
        other => panic!("expected a cancelled transaction, got {other:?}"),
    }
    assert_eq!(store.get(&key("record#2", "r")).await.unwrap(), None);
}

pub async fn transact_write_rejects_invalid_transactions(h: &dyn Harness) {
    let ports = h.fresh(&tables_only()).await;
    let store = &*ports.state;
    assert_validation(
        store
            .transact_write(vec![
                TransactOp::Put {
                    item: item(json!({"pk": "p", "sk": "s"})),
                    condition: None,
                },
                TransactOp::Check {
                    key: key("p", "s"),
                    condition: Condition::item_present(),
                },
            ])
            .await,
        "two operations on one item",
    );
    assert_validation(store.transact_write(vec![]).await, "an empty transaction");
    let too_many = (0..=MAX_TRANSACT_ITEMS)
        .map(|i| TransactOp::Put {
            item: item(json!({"pk": "p", "sk": format!("s{i}")})),
            condition: None,
        })
        .collect();
    assert_validation(store.transact_write(too_many).await, "101 operations");
    assert_eq!(store.get(&key("p", "s")).await.unwrap(), None);
}

pub async fn batch_write_and_batch_get(h: &dyn Harness) {
    let ports = h.fresh(&tables_only()).await;
    let store = &*ports.state;
    put_all(
        store,
        (0..5)
            .map(|i| json!({"pk": "old", "sk": format!("s{i}")}))
            .collect(),
    )
    .await;
    let mut requests: Vec<WriteRequest> = (0..20)
        .map(|i| WriteRequest::Put(item(json!({"pk": "new", "sk": format!("s{i:02}"), "i": i}))))
        .collect();
    requests.extend((0..5).map(|i| WriteRequest::Delete(key("old", &format!("s{i}")))));
    assert_eq!(requests.len(), MAX_BATCH_WRITE);
    let mut pending = requests;
    for _ in 0..10 {
        pending = store.batch_write(pending).await.unwrap();
        if pending.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(pending.is_empty(), "unprocessed after retries: {pending:?}");

    let mut keys: Vec<Key> = (0..20).map(|i| key("new", &format!("s{i:02}"))).collect();
    keys.push(key("new", "missing"));
    keys.push(key("old", "s0"));
    let mut got = store.batch_get(keys).await.unwrap();
    got.sort_by(|a, b| a["sk"].as_str().cmp(&b["sk"].as_str()));
    assert_eq!(got.len(), 20, "missing and deleted items are left out");
    assert_eq!(got[7], item(json!({"pk": "new", "sk": "s07", "i": 7})));
    assert!(
        query_sks(store, QueryRequest::partition(Index::Primary, "old"))
            .await
            .is_empty()
    );
}

pub async fn batch_limits_are_enforced(h: &dyn Harness) {
    let ports = h.fresh(&tables_only()).await;
    let store = &*ports.state;
    let too_many_writes = (0..=MAX_BATCH_WRITE)
        .map(|i| WriteRequest::Put(item(json!({"pk": "p", "sk": format!("s{i}")}))))
        .collect();
    assert_validation(store.batch_write(too_many_writes).await, "26 writes");
    assert!(
        query_sks(store, QueryRequest::partition(Index::Primary, "p"))
            .await
            .is_empty(),
        "a rejected batch writes nothing"
    );
    let too_many_reads = (0..=MAX_BATCH_GET)
        .map(|i| key("p", &format!("s{i}")))
        .collect();
    assert_validation(store.batch_get(too_many_reads).await, "101 reads");
}

pub async fn expired_items_are_absent(h: &dyn Harness) {
    let ports = h.fresh(&tables_only()).await;
    let store = &*ports.state;
    let now = ports.clock.now().timestamp();
    put_all(
        store,
        vec![
            json!({"pk": "P", "sk": "expired", "expiresAt": now - 10}),
            json!({"pk": "P", "sk": "soon", "expiresAt": now + 2}),
            json!({"pk": "P", "sk": "later", "expiresAt": now + 3600}),
            json!({"pk": "P", "sk": "forever"}),
        ],
    )
    .await;
    let present = || QueryRequest::partition(Index::Primary, "P");
    assert_eq!(store.get(&key("P", "expired")).await.unwrap(), None);
    assert_eq!(
        query_sks(store, present()).await,
        ["forever", "later", "soon"]
    );
    assert_eq!(
        store
            .batch_get(vec![key("P", "expired"), key("P", "later")])
            .await
            .unwrap()
            .len(),
        1
    );
    // Conditions see an expired item as absent.
    assert_condition_failed(
        store
            .put(
                item(json!({"pk": "P", "sk": "expired", "v": 1})),
                Some(Condition::item_present()),
            )
            .await,
        "item_present on an expired item",
    );
    store
        .put(
            item(json!({"pk": "P", "sk": "expired", "v": 2})),
            Some(Condition::item_absent()),
        )
        .await
        .unwrap();
    assert_eq!(
        store.get(&key("P", "expired")).await.unwrap(),
        Some(item(json!({"pk": "P", "sk": "expired", "v": 2})))
    );

    assert!(store.get(&key("P", "soon")).await.unwrap().is_some());
    h.advance(Duration::from_secs(3)).await;
    assert_eq!(store.get(&key("P", "soon")).await.unwrap(), None);
    assert_eq!(
        query_sks(store, present()).await,
        ["expired", "forever", "later"]
    );
    assert_condition_failed(
        store
            .delete(&key("P", "soon"), Some(Condition::item_present()))
            .await,
        "a delete that needs an item that has expired",
    );
}

pub async fn invalid_items_are_rejected(h: &dyn Harness) {
    let ports = h.fresh(&tables_only()).await;
    let store = &*ports.state;
    let cases = [
        (json!({"pk": "p"}), "no sort key"),
        (json!({"pk": 1, "sk": "s"}), "a numeric partition key"),
        (json!({"pk": "", "sk": "s"}), "an empty partition key"),
        (
            json!({"pk": "p", "sk": "s", "gsi1pk": 5}),
            "a numeric index key",
        ),
        (
            json!({"pk": "p", "sk": "s", "expiresAt": "tomorrow"}),
            "a text expiry",
        ),
    ];
    for (value, what) in cases {
        assert_validation(store.put(item(value), None).await, what);
    }
    let big = "x".repeat(MAX_ITEM_BYTES);
    assert_validation(
        store
            .put(item(json!({"pk": "p", "sk": "big", "data": big})), None)
            .await,
        "an item over 400 KB",
    );
    assert_eq!(store.get(&key("p", "big")).await.unwrap(), None);
}
