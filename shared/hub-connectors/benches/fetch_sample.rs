//! Pages through the sample API with the connector runtime and prints records per second and
//! the process's peak RSS (server and client in one process, as in `hub dev`).
//!
//! `cargo bench -p hub-connectors --bench fetch_sample -- [RECORDS] [PAGE_SIZE]`
//! (defaults 100000 and 100). Memory must not grow with RECORDS: the sample data is generated
//! on the fly and each page is dropped once counted.

use std::sync::Arc;
use std::time::Instant;

use hub_connectors::{
    ConnectorCatalog, EgressPolicy, Fetcher, FetcherConfig, PageRequest, SampleConfig, SampleServer,
};
use hub_core::messages::CursorWindow;
use hub_core::model::Credentials;
use hub_core::ports::SystemClock;
use secrecy::SecretString;
use serde_json::{Map, Value, json};

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with('-'));
    let records: u64 = args.next().map_or(Ok(100_000), |a| a.parse())?;
    let page_size: u64 = args.next().map_or(Ok(100), |a| a.parse())?;

    let server = SampleServer::start(SampleConfig {
        contacts: records,
        max_page_size: 10_000,
        ..SampleConfig::default()
    })
    .await?;
    let catalog = ConnectorCatalog::builtin()?;
    let mut definition = (**catalog.get("sample").ok_or("no sample connector")?).clone();
    for stream in &mut definition.streams {
        stream.pagination.page_size = Some(u32::try_from(page_size)?);
    }
    let fetcher = Fetcher::new(
        FetcherConfig {
            egress: EgressPolicy::local_sandbox(),
            ..FetcherConfig::default()
        },
        Arc::new(SystemClock),
    )?;
    let settings: Map<String, Value> = [("baseUrl".to_owned(), json!(server.base_url()))]
        .into_iter()
        .collect();
    let credentials = Credentials::from_secret(&SecretString::from(
        json!({"type": "api_key", "apiKey": server.api().api_key()}).to_string(),
    ))?;
    let window = CursorWindow::default();

    let started = Instant::now();
    let (mut fetched, mut pages) = (0u64, 0u64);
    let mut token: Option<String> = None;
    loop {
        let page = fetcher
            .fetch_page(&PageRequest {
                definition: &definition,
                stream: "contacts",
                settings: &settings,
                credentials: Some(&credentials),
                page_token: token.as_deref(),
                cursor_window: &window,
            })
            .await?;
        fetched += page.records.len() as u64;
        pages += 1;
        match page.next_page_token {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    let elapsed = started.elapsed();
    if fetched != records {
        return Err(format!("fetched {fetched} of {records} records").into());
    }
    println!(
        "records={records} page_size={page_size} pages={pages} seconds={:.2} records_per_second={:.0} peak_rss_mib={:.1}",
        elapsed.as_secs_f64(),
        fetched as f64 / elapsed.as_secs_f64(),
        peak_rss_kib().unwrap_or(0) as f64 / 1024.0,
    );
    Ok(())
}
