//! `SecretStore` cases: versions with compare-and-swap, as Secrets Manager with staging labels.

use hub_core::ports::{Ports, SecretError, SecretStore};
use secrecy::{ExposeSecret, SecretString};

use crate::{Harness, racing_writes, tables_only, unique};

fn secret(value: &str) -> SecretString {
    SecretString::from(value.to_owned())
}

async fn current_value(store: &dyn SecretStore, name: &str) -> Option<(String, String)> {
    store
        .get(name)
        .await
        .expect("get")
        .map(|v| (v.version_id.clone(), v.value.expose_secret().to_owned()))
}

fn name(ports: &Ports, label: &str) -> String {
    format!("hub/{}/{label}", unique(ports, "tenant"))
}

pub async fn missing_secret_is_none(h: &dyn Harness) {
    let ports = h.fresh(&tables_only()).await;
    let name = name(&ports, "none");
    assert!(ports.secrets.get(&name).await.unwrap().is_none());
}

pub async fn create_then_get(h: &dyn Harness) {
    let ports = h.fresh(&tables_only()).await;
    let name = name(&ports, "conn-1");
    let value = r#"{"accessToken":"at-1","refreshToken":"rt-1"}"#;
    let version = ports.secrets.put(&name, secret(value), None).await.unwrap();
    assert!(!version.is_empty());
    assert_eq!(
        current_value(&*ports.secrets, &name).await,
        Some((version, value.to_owned()))
    );
}

pub async fn create_conflicts_when_the_secret_exists(h: &dyn Harness) {
    let ports = h.fresh(&tables_only()).await;
    let name = name(&ports, "conn-1");
    let version = ports.secrets.put(&name, secret("one"), None).await.unwrap();
    let again = ports.secrets.put(&name, secret("two"), None).await;
    assert_eq!(
        again,
        Err(SecretError::VersionConflict {
            name: name.clone(),
            expected: None
        })
    );
    assert_eq!(
        current_value(&*ports.secrets, &name).await,
        Some((version, "one".to_owned()))
    );
}

pub async fn compare_and_swap_replaces_the_current_version(h: &dyn Harness) {
    let ports = h.fresh(&tables_only()).await;
    let name = name(&ports, "conn-1");
    let first = ports.secrets.put(&name, secret("one"), None).await.unwrap();
    let second = ports
        .secrets
        .put(&name, secret("two"), Some(&first))
        .await
        .unwrap();
    assert_ne!(first, second);
    assert_eq!(
        current_value(&*ports.secrets, &name).await,
        Some((second.clone(), "two".to_owned()))
    );
    let third = ports
        .secrets
        .put(&name, secret("three"), Some(&second))
        .await
        .unwrap();
    assert_eq!(
        current_value(&*ports.secrets, &name).await,
        Some((third, "three".to_owned()))
    );
}

pub async fn compare_and_swap_with_a_stale_version_conflicts(h: &dyn Harness) {
    let ports = h.fresh(&tables_only()).await;
    let name = name(&ports, "conn-1");
    let first = ports.secrets.put(&name, secret("one"), None).await.unwrap();
    let second = ports
        .secrets
        .put(&name, secret("two"), Some(&first))
        .await
        .unwrap();
    let stale = ports
        .secrets
        .put(&name, secret("three"), Some(&first))
        .await;
    assert_eq!(
        stale,
        Err(SecretError::VersionConflict {
            name: name.clone(),
            expected: Some(first)
        })
    );
    assert_eq!(
        current_value(&*ports.secrets, &name).await,
        Some((second, "two".to_owned()))
    );
}

pub async fn concurrent_swaps_from_one_version_have_one_winner(h: &dyn Harness) {
    let ports = h.fresh(&tables_only()).await;
    let name = name(&ports, "oauth");
    let first = ports.secrets.put(&name, secret("t0"), None).await.unwrap();
    // One after another on a backend that does not isolate them (moto's stage move is a
    // check and a write without a lock): see `Harness::isolates_concurrent_writes`.
    let mut swaps = racing_writes(
        h,
        vec![
            ports.secrets.put(&name, secret("token-a"), Some(&first)),
            ports.secrets.put(&name, secret("token-b"), Some(&first)),
        ],
    )
    .await
    .into_iter();
    let (a, b) = (swaps.next().unwrap(), swaps.next().unwrap());
    let (winner, value) = match (a, b) {
        (Ok(v), Err(SecretError::VersionConflict { .. })) => (v, "token-a"),
        (Err(SecretError::VersionConflict { .. }), Ok(v)) => (v, "token-b"),
        other => panic!("exactly one refresh must win: {other:?}"),
    };
    assert_eq!(
        current_value(&*ports.secrets, &name).await,
        Some((winner, value.to_owned()))
    );
}

pub async fn delete_removes_the_secret(h: &dyn Harness) {
    let ports = h.fresh(&tables_only()).await;
    let name = name(&ports, "conn-1");
    let first = ports.secrets.put(&name, secret("one"), None).await.unwrap();
    ports
        .secrets
        .put(&name, secret("two"), Some(&first))
        .await
        .unwrap();
    ports.secrets.delete(&name).await.unwrap();
    assert!(ports.secrets.get(&name).await.unwrap().is_none());
    // Deleting what is absent is not an error.
    ports.secrets.delete(&name).await.unwrap();
}

pub async fn values_never_appear_in_debug_output(h: &dyn Harness) {
    let ports = h.fresh(&tables_only()).await;
    let name = name(&ports, "conn-1");
    let value = "sk_live_do-not-print-me";
    ports.secrets.put(&name, secret(value), None).await.unwrap();
    let version = ports.secrets.get(&name).await.unwrap().expect("stored");
    let printed = format!("{version:?} {version:#?} {:?}", Some(&version));
    assert!(!printed.contains(value), "{printed}");
    assert!(printed.contains(&version.version_id));
}

pub async fn invalid_names_are_rejected(h: &dyn Harness) {
    let ports = h.fresh(&tables_only()).await;
    for bad in ["", "has space", "semi;colon", &"n".repeat(513)] {
        assert!(
            matches!(ports.secrets.get(bad).await, Err(SecretError::Invalid(_))),
            "get `{bad}`"
        );
        assert!(
            matches!(
                ports.secrets.put(bad, secret("v"), None).await,
                Err(SecretError::Invalid(_))
            ),
            "put `{bad}`"
        );
    }
}
