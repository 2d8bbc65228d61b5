#!/usr/bin/env bash
# The conversion engine benchmark (BENCHMARKS.md, "Conversion engine"): records per second per
# core of the engine, of the same mapping in the reference JSONata implementation, and of a
# bare serde_json parse-and-serialize of the same records; then the two ratios and their goals
# (engine >= 20x JSONata, engine >= 0.5x serde_json). Exits non-zero when a goal is missed or
# when the two mappings disagree on the first record.
#
#   benches/mapping/run.sh
#
# Needs cargo and node (>= 18); installs the pinned `jsonata` package into benches/mapping/node.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

(cd "$here/node" && npm ci --no-audit --no-fund --silent)

echo "building the Rust side (cargo bench, release profile)..." >&2
cargo bench --quiet --no-run --manifest-path "$root/Cargo.toml" -p hub-mapping --bench mapping

# The two sides run alternately, three times each, and the best of each counts, so that other
# load on the machine weighs on both alike.
for attempt in 1 2 3; do
  echo "measuring, attempt $attempt of 3..." >&2
  HUB_MAPPING_BENCH_OUT="$work" cargo bench --quiet --manifest-path "$root/Cargo.toml" \
    -p hub-mapping --bench mapping >>"$work/rust.json"
  node "$here/node/bench.js" "$work/records.jsonl" "$here/mapping.jsonata" "$work/jsonata-first.json" \
    >>"$work/node.json"
done

BENCH_NODE_DIR="$here/node" node - "$work" <<'JS'
const fs = require('fs');
const path = require('path');
const dir = process.argv[2];
const lines = (name) => fs.readFileSync(path.join(dir, name), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const read = (name) => lines(name).pop();
const best = (name, key) => Math.max(...lines(name).map((l) => l[key]));
const rust = {
  ...read('rust.json'),
  engineRecordsPerSecond: best('rust.json', 'engineRecordsPerSecond'),
  serdeJsonRecordsPerSecond: best('rust.json', 'serdeJsonRecordsPerSecond'),
};
const node = { jsonataRecordsPerSecond: best('node.json', 'jsonataRecordsPerSecond') };
const ours = read('first-entity.json');
const theirs = read('jsonata-first.json');
const sorted = (o) => JSON.stringify(Object.keys(o).sort().map((k) => [k, o[k]]));
if (sorted(ours) !== sorted(theirs)) {
  console.error('the two mappings disagree on the first record:');
  console.error('  engine:  ' + sorted(ours));
  console.error('  jsonata: ' + sorted(theirs));
  process.exit(2);
}
const engine = rust.engineRecordsPerSecond;
const serde = rust.serdeJsonRecordsPerSecond;
const jsonata = node.jsonataRecordsPerSecond;
const vsJsonata = engine / jsonata;
const vsSerde = engine / serde;
const fmt = (n) => Math.round(n).toLocaleString('en-US');
console.log(`records: ${rust.records} of ~${rust.averageRecordBytes} bytes, 13 mappings, one core each`);
console.log(`engine (parse, filter, map, dedup key, payload hash, serialize): ${fmt(engine)} records/s`);
console.log(`JSONata reference (jsonata ${require(path.join(process.env.BENCH_NODE_DIR || '.', 'node_modules/jsonata/package.json')).version}, node ${process.versions.node}): ${fmt(jsonata)} records/s`);
console.log(`serde_json parse + serialize: ${fmt(serde)} records/s`);
console.log(`engine / JSONata:    ${vsJsonata.toFixed(1)}x (goal >= 20x)`);
console.log(`engine / serde_json: ${vsSerde.toFixed(2)}x (goal >= 0.5x)`);
if (vsJsonata < 20 || vsSerde < 0.5) {
  console.error('a goal is missed');
  process.exit(1);
}
JS
