#!/usr/bin/env bash
# The fetch pipeline benchmark (BENCHMARKS.md, "Fetch pipeline"): `hub dev --demo` (release
# build, embedded backend) pulls N contacts from its sample API, for each N given (default 10000
# and 100000). For each it reports:
#
#   - fetch: records per second from the run's start to the fetcher's "fetch complete" log line
#     (pages fetched, split into record batches, counted and sent to the transform queue, next
#     jobs enqueued);
#   - run: records per second from the start to the end of the run, when the transformer and the
#     writer registered in `hub dev` complete it (they share the process and its cores);
#   - peak RSS of the `hub dev` process (VmHWM from /proc/<pid>/status), which must stay flat as
#     N grows: pages are streamed, never accumulated.
#
#   benches/fetch/run.sh [N ...]
#
# Needs cargo, python3 and Linux's /proc. Honours CARGO_TARGET_DIR. Logs go to a temporary
# directory (RUST_LOG=warn, so logging does not weigh on the measure).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
hub="$target/release/hub"
work="$(mktemp -d)"
pid=""
cleanup() {
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then kill -INT "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

counts=("$@")
if [[ ${#counts[@]} -eq 0 ]]; then counts=(10000 100000); fi

echo "building hub (release profile)..." >&2
cargo build --quiet --release --manifest-path "$root/Cargo.toml" -p hub

printf '%-9s %-14s %-12s %-12s %-10s %s\n' records fetch_rec_s fetch_s run_rec_s run_s peak_rss_mib
for n in "${counts[@]}"; do
  data="$work/data-$n"
  mkdir -p "$data"
  RUST_LOG=warn "$hub" dev --port 0 --tick 1 --demo --sample-records "$n" \
    --backend embedded --data-dir "$data" >"$work/out-$n" 2>"$work/err-$n" &
  pid=$!

  execution=""
  for _ in $(seq 1 300); do
    execution="$(sed -n 's/^demo: started execution //p' "$work/out-$n" | head -n1)"
    [[ -n "$execution" ]] && break
    sleep 0.1
  done
  if [[ -z "$execution" ]]; then
    echo "hub dev did not start the demo run; its output:" >&2
    cat "$work/out-$n" "$work/err-$n" >&2
    exit 1
  fi

  # Until the run ends (the writer completes it), at most 20 minutes.
  status=""
  for _ in $(seq 1 2400); do
    show="$("$hub" executions show "$execution" --json --tenant demo --backend embedded --data-dir "$data")"
    status="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["status"])' "$show")"
    [[ "$status" != "running" ]] && break
    sleep 0.5
  done
  rss_kib="$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")"
  if [[ "$status" == "running" ]]; then
    echo "$n records: the run did not end within 20 minutes" >&2
    exit 1
  fi
  # --follow pages through every line of an ended run (one page of a listing holds 1000).
  "$hub" executions logs "$execution" --follow --json --tenant demo --backend embedded \
    --data-dir "$data" >"$work/logs-$n.jsonl"
  kill -INT "$pid"
  wait "$pid" || true
  pid=""

  python3 - "$n" "$show" "$work/logs-$n.jsonl" "$rss_kib" <<'PY'
import json, sys
from datetime import datetime
n = int(sys.argv[1])
execution = json.loads(sys.argv[2])
with open(sys.argv[3]) as lines:
    logs = [json.loads(line) for line in lines if line.strip()]
rss_mib = int(sys.argv[4]) / 1024
def at(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
started = at(execution["startedAt"])
fetched = execution["results"]["fetched"]
if fetched != n:
    sys.exit(f"{n} records: fetched {fetched}, status {execution['status']}")
done = [l for l in logs if "fetch complete" in l["message"]]
fetch_s = (at(done[-1]["timestamp"]) - started).total_seconds()
run_s = (at(execution["completedAt"]) - started).total_seconds()
print(f"{n:<9} {n / fetch_s:<14.0f} {fetch_s:<12.1f} {n / run_s:<12.0f} {run_s:<10.1f} "
      f"{rss_mib:.1f}  ({execution['status']})")
PY
done
