//! Records per second per core of the conversion engine, against a bare serde_json
//! parse-and-serialize of the same records (benches/mapping/run.sh adds the JSONata reference).
//!
//! The records are a fixed, generated set of ~1 KB Salesforce-like contacts; the schema
//! (benches/mapping/schema.json) has a dozen mappings covering every mapping type. Both sides
//! start from the record's JSON text and end with JSON text: the engine parses, filters, maps,
//! computes the dedup key and payload hash, and serialises the `WriteItem`; the baseline parses
//! into a `serde_json::Value` and serialises it back.
//!
//! `HUB_MAPPING_BENCH_OUT=DIR` also writes `records.jsonl` and `first-entity.json` (the data
//! of the first mapped record) there, for the JSONata side and the cross-check.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hub_core::messages::{BatchSource, Lineage, PollSource};
use hub_core::model::{ConversionSchema, load_json};
use hub_mapping::{CompiledSchema, RecordInput, RecordOutcome};
use serde_json::{Value, json};

const RECORDS: usize = 512;
const ROUNDS: usize = 9;
const ROUND_TIME: Duration = Duration::from_millis(500);

/// xorshift64*: a fixed sequence, so every run maps the same records.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }

    fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + (self.next() % 10) as u8))
            .collect()
    }
}

fn records() -> Vec<String> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let first = [
        "Ada",
        "Grace",
        "Alan",
        "Katherine",
        "Edsger",
        "Barbara",
        "Dennis",
        "Hedy",
        "Claude",
        "Frances",
    ];
    let last = [
        "Lovelace", "Hopper", "Turing", "Johnson", "Dijkstra", "Liskov", "Ritchie", "Lamarr",
        "Shannon", "Allen",
    ];
    let titles = [
        "  vice president, sales ",
        "Chief Technology Officer",
        " account executive",
        "Head of Procurement  ",
    ];
    let stages = [
        "Prospecting",
        "Qualification",
        "Needs Analysis",
        "Negotiation",
        "Review",
        "Closed Won",
        "Closed Lost",
    ];
    let ratings = ["Hot", "Warm", "Cold", "Unrated"];
    let cities = [
        ("London", "United Kingdom"),
        ("Paris", "France"),
        ("Zürich", "Switzerland"),
        ("Austin", "United States"),
        ("Tōkyō", "Japan"),
    ];
    let companies = [
        "Acme Corporation",
        "Globex",
        "Initech",
        "Umbrella plc",
        "Stark Industries",
        "Wayne Enterprises",
    ];
    let tags = [
        "vip",
        "renewal",
        "upsell",
        "churn-risk",
        "partner",
        "enterprise",
    ];
    (0..RECORDS)
        .map(|i| {
            let (city, country) = cities[i % cities.len()];
            let (first, last) = (rng.pick(&first), rng.pick(&last));
            let id = format!("0035e{:013}AAV", rng.next() % 10_000_000_000_000);
            let record = json!({
                "attributes": {"type": "Contact", "url": format!("/services/data/v59.0/sobjects/Contact/{id}")},
                "Id": id,
                "IsDeleted": false,
                "FirstName": first,
                "LastName": last,
                "Email": format!("{}.{}{}@example.com", first.to_lowercase(), last.to_lowercase(), i),
                "Phone": format!("+44 20 {} {}", rng.digits(4), rng.digits(4)),
                "Title": rng.pick(&titles),
                "Department": "Sales",
                "LeadSource": rng.pick(&["Web", "Partner Referral", "Trade Show"]),
                "Rating": rng.pick(&ratings),
                "StageName": rng.pick(&stages),
                "Amount": (rng.next() % 50_000_000) as f64 / 100.0,
                "CurrencyIsoCode": "USD",
                "CloseDate": format!("2024-{:02}-{:02}", 1 + rng.next() % 12, 1 + rng.next() % 28),
                "CreatedDate": "2023-11-02T09:15:00.000+0000",
                "LastModifiedDate": format!("2024-03-{:02}T{:02}:00:00.000+0000", 1 + rng.next() % 28, rng.next() % 24),
                "MailingAddress": {
                    "street": format!("{} High Street", 1 + rng.next() % 200),
                    "city": city,
                    "state": null,
                    "postalCode": format!("{}", rng.digits(5)),
                    "country": country,
                    "latitude": 51.5074,
                    "longitude": -0.1278
                },
                "Account": {"Id": format!("0015e{}AAA", rng.digits(13)), "Name": rng.pick(&companies), "Industry": "Banking", "AnnualRevenue": 12_500_000},
                "Owner": {"Id": format!("0055e{}AAA", rng.digits(13)), "Name": "Charles Babbage", "Email": "charles.babbage@example.com"},
                "Tags": [rng.pick(&tags), rng.pick(&tags)],
                "HasOptedOutOfEmail": rng.next().is_multiple_of(5),
                "NumberOfEmployees": rng.next() % 5000,
                "Description": "Met at the spring conference; interested in the analytics add-on. Follow up after the quarterly review."
            });
            record.to_string()
        })
        .collect()
}

fn schema() -> CompiledSchema {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../benches/mapping/schema.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let schema: ConversionSchema = load_json(&text).unwrap_or_else(|e| panic!("{e}"));
    CompiledSchema::compile(&schema).unwrap_or_else(|e| panic!("{e}"))
}

/// Records per second of each pass (a pass handles every record once): the best of
/// interleaved rounds, so both sides see the same load from other processes on the machine, and
/// the best round is the one least disturbed by it.
/// One way of handling every record once.
type Pass<'p> = &'p mut dyn FnMut(&[String]);

fn rates(records: &[String], passes: &mut [Pass<'_>]) -> Vec<f64> {
    let mut best = vec![0.0f64; passes.len()];
    for pass in passes.iter_mut() {
        pass(records);
    }
    for _ in 0..ROUNDS {
        for (pass, best) in passes.iter_mut().zip(best.iter_mut()) {
            let started = Instant::now();
            let mut done = 0usize;
            while started.elapsed() < ROUND_TIME {
                pass(records);
                done += records.len();
            }
            *best = best.max(done as f64 / started.elapsed().as_secs_f64());
        }
    }
    best
}

fn main() {
    let records = records();
    let compiled = schema();
    let mapper = compiled.bind(None);
    let lineage = Lineage {
        execution_id: Some("01HZX3BENCH".into()),
        source: BatchSource::Poll(PollSource {
            page: 0,
            page_token: None,
            part: 0,
            parts: 1,
        }),
        record_index: 0,
        schema_id: compiled.schema_id().into(),
        schema_version: 1,
    };
    let bytes: usize = records.iter().map(String::len).sum();

    let first = match mapper.map_record(0, RecordInput::Text(&records[0])) {
        RecordOutcome::Mapped(m) => m,
        other => panic!("the first record did not map: {other:?}"),
    };
    // For profiling: `HUB_MAPPING_BENCH_ONLY=engine` (or `serde_json`) runs one side alone,
    // and `HUB_MAPPING_BENCH_PASSES=n` makes it n passes over the records and nothing else (no
    // checks, no timing), a fixed amount of work to count instructions of.
    let only = std::env::var("HUB_MAPPING_BENCH_ONLY");
    let passes = std::env::var("HUB_MAPPING_BENCH_PASSES")
        .ok()
        .and_then(|n| n.parse::<usize>().ok());
    // Every record maps, and parsing only what the schema reads changes nothing: the
    // serialised write item is byte for byte the one of the fully parsed record.
    for (i, text) in records.iter().enumerate().filter(|_| passes.is_none()) {
        let write_item = |outcome| match outcome {
            RecordOutcome::Mapped(m) => {
                serde_json::to_string(&m.into_write_item(&lineage)).expect("serialise")
            }
            other => panic!("record {i} did not map: {other:?}"),
        };
        assert_eq!(
            write_item(mapper.map_record(i as u32, RecordInput::Text(text))),
            write_item(mapper.map_record_fully_parsed(i as u32, text)),
            "record {i}: the lazy and the full parse disagree"
        );
    }
    if let Some(dir) = std::env::var_os("HUB_MAPPING_BENCH_OUT").map(PathBuf::from) {
        std::fs::write(dir.join("records.jsonl"), records.join("\n") + "\n")
            .expect("write records");
        std::fs::write(dir.join("first-entity.json"), first.data.as_str()).expect("write entity");
    }

    let mut out = Vec::with_capacity(4096);
    let mut engine = |records: &[String]| {
        for (i, text) in records.iter().enumerate() {
            if let RecordOutcome::Mapped(m) = mapper.map_record(i as u32, RecordInput::Text(text)) {
                out.clear();
                serde_json::to_writer(&mut out, &m.into_write_item(&lineage)).expect("serialise");
                black_box(&out);
            }
        }
    };
    let mut out = Vec::with_capacity(4096);
    let mut baseline = |records: &[String]| {
        for text in records {
            let value: Value = serde_json::from_str(text).expect("parse");
            out.clear();
            serde_json::to_writer(&mut out, &value).expect("serialise");
            black_box(&out);
        }
    };
    if let Some(passes) = passes {
        let pass: Pass<'_> = match only.as_deref() {
            Ok("serde_json") => &mut baseline,
            _ => &mut engine,
        };
        for _ in 0..passes {
            pass(&records);
        }
        return;
    }
    let (engine, baseline) = match only.as_deref() {
        Ok("engine") => (rates(&records, &mut [&mut engine])[0], 0.0),
        Ok("serde_json") => (0.0, rates(&records, &mut [&mut baseline])[0]),
        _ => {
            let measured = rates(&records, &mut [&mut engine, &mut baseline]);
            (measured[0], measured[1])
        }
    };
    println!(
        "{}",
        json!({
            "records": records.len(),
            "averageRecordBytes": bytes / records.len(),
            "engineRecordsPerSecond": engine.round(),
            "serdeJsonRecordsPerSecond": baseline.round(),
        })
    );
}
