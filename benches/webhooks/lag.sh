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

source benches/webhooks/hub-dev.sh
hub_binary
make_work hub-webhook-lag
python3 benches/webhooks/lag.py documents "$work"
"$hub" apply -f "$work/documents.json" > "$work/apply.log"
start_hub_dev HUB_LOG_FORMAT=json

echo "hub dev at http://$address ($(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), data in $data)"
python3 benches/webhooks/lag.py run "$work" "$address" "$data" "$deliveries" "$rate"
echo "load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
if grep -q -E '"level":"(WARN|ERROR)"' "$work/hub.log"; then
  echo "hub dev logged warnings or errors:"
  grep -E '"level":"(WARN|ERROR)"' "$work/hub.log" | head -n 20
fi
