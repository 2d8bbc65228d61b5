#!/usr/bin/env bash
# Webhook-to-record lag on `hub dev` (loopback, embedded backend): how long a delivery takes
# from the client sending it to its record being written, through the whole realtime path
# (receiver -> bus rule -> transform queue -> transformer -> write queue -> writer). Results go
# to BENCHMARKS.md ("Webhook-to-record lag").
#
#   benches/webhooks/lag.sh [DELIVERIES] [RATE]      (defaults 1000 and 50 per second)
#
# What it does: builds `hub` in release, applies a GitHub tenant integration, an issue
# conversion schema, a realtime sync task and a webhook route to a fresh data directory
# (HUB_BENCH_DATA_PARENT, default the system temp dir), starts `hub dev` on a free port, sends
# DELIVERIES signed `issues` deliveries with distinct issue ids at a steady RATE, then reads
# every record's lineage (`writtenAt`) and prints p50/p95/max of written-at minus sent-at.
#
# The release build drops fat LTO, as run.sh does; HUB_BENCH_BIN=PATH runs that `hub` binary
# instead of building one.
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$(pwd)"
deliveries="${1:-1000}"
rate="${2:-50}"

if [ -n "${HUB_BENCH_BIN:-}" ]; then
  hub="$HUB_BENCH_BIN"
else
  export CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
  cargo build --release -p hub --quiet
  hub="${CARGO_TARGET_DIR:-$root/target}/release/hub"
fi

work="$(mktemp -d "${HUB_BENCH_DATA_PARENT:-${TMPDIR:-/tmp}}/hub-webhook-lag.XXXXXX")"
hub_pid=""
cleanup() {
  if [ -n "$hub_pid" ]; then kill -INT "$hub_pid" 2> /dev/null || true; wait "$hub_pid" 2> /dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

data="$work/data"
export HUB_BACKEND=embedded HUB_DATA_DIR="$data"
unset AWS_ENDPOINT_URL
python3 benches/webhooks/lag.py documents "$work"
"$hub" apply -f "$work/documents.json" > "$work/apply.log"

RUST_LOG="${RUST_LOG:-info}" HUB_LOG_FORMAT=json "$hub" dev --port 0 --tick 3600 > "$work/hub.out" 2> "$work/hub.log" &
hub_pid=$!
address=""
for _ in $(seq 100); do
  address="$(sed -n 's|.*listening on http://\([^ ]*\).*|\1|p' "$work/hub.out" | head -n 1)"
  [ -n "$address" ] && break
  sleep 0.1
done
[ -n "$address" ] || { echo "hub dev did not start:"; cat "$work/hub.log"; exit 1; }

echo "hub dev at http://$address ($(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), data in $data)"
python3 benches/webhooks/lag.py run "$work" "$address" "$data" "$deliveries" "$rate"
echo "load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
if grep -q -E '"level":"(WARN|ERROR)"' "$work/hub.log"; then
  echo "hub dev logged warnings or errors:"
  grep -E '"level":"(WARN|ERROR)"' "$work/hub.log" | head -n 20
fi
