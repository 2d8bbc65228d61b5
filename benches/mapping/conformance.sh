#!/usr/bin/env bash
# How much of the JSONata test suite the Rust JSONata implementation passes, and how often it
# panics (docs/mapping.md, "Custom expressions"). The suite is the copy of jsonata-js's
# test/test-suite that the jsonata-rs crate ships (the npm package does not ship it); every
# case runs in its own process, so panics and hangs are counted.
#
#   benches/mapping/conformance.sh
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
manifest="$here/jsonata-conformance/Cargo.toml"
crate_dir="$(cargo metadata --format-version 1 --manifest-path "$manifest" |
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const p=JSON.parse(s).packages.find(p=>p.name==="jsonata-rs");console.log(require("path").dirname(p.manifest_path))})')"
cargo run --quiet --release --manifest-path "$manifest" -- "$crate_dir/tests/testsuite" | tail -n 1
