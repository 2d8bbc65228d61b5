#!/usr/bin/env bash
# Webhook receiver latency and throughput on `hub dev` (loopback, embedded backend), beside the
# host's bare /health route, in one run. Results go to BENCHMARKS.md ("Webhook receiver").
#
#   benches/webhooks/run.sh [DURATION] [CONNECTIONS]      (defaults 15s and 8)
#
# What it does: builds `hub` in release, applies a route per provider scheme to a fresh data
# directory (HUB_BENCH_DATA_PARENT, default the system temp dir; point it at /dev/shm to take
# the disk's fsync out of the numbers), starts `hub dev` on a free port and runs wrk against
#   /health, GitHub deliveries with unique ids (the full path), the same GitHub delivery
#   repeated (the dedup path) and Stripe deliveries with unique event ids,
# each run starting once the queues are drained (the transformer `hub dev` runs in the same
# process stores every delivery, which have no realtime task here, for inspection), then prints
# p50/p99 latency, throughput and each one's ratio to /health, and checks that every unique
# delivery was published exactly once.
#
# Needs wrk (Debian package `wrk`): installed with apt-get when missing and running as root,
# otherwise the script stops and says so. python3 signs the deliveries.
#
# The release build drops fat LTO (CARGO_PROFILE_RELEASE_LTO=false, 16 codegen units) so it
# takes minutes, not ten; the code is optimised the same (opt-level 3). HUB_BENCH_BIN=PATH runs
# that `hub` binary instead of building one.
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$(pwd)"
duration="${1:-15s}"
connections="${2:-8}"
threads=2
stripe_requests="${HUB_BENCH_STRIPE_REQUESTS:-150000}"

if ! command -v wrk > /dev/null; then
  if [ "$(id -u)" = 0 ]; then
    echo "wrk is missing: installing the Debian package (apt-get install -y wrk)" >&2
    apt-get install -y wrk > /dev/null || { apt-get update > /dev/null && apt-get install -y wrk > /dev/null; }
  else
    echo "wrk is missing: install it with 'sudo apt-get install -y wrk' and run again" >&2
    exit 1
  fi
fi

source benches/webhooks/hub-dev.sh
hub_binary
make_work hub-webhook-bench
python3 benches/webhooks/prepare.py "$work" "$stripe_requests"
"$hub" apply -f "$work/routes.json" > "$work/apply.log"
echo "routes applied: $(grep -c WebhookRoute "$work/apply.log") (one per provider scheme)"

# Request logs are written as they are in production (one line per delivery), to a file.
start_hub_dev

# The transformer `hub dev` runs beside the receiver works through what a run published after
# the run ends; each run starts once it is done, so no run pays for the one before.
drain() {
  python3 - "$address" << 'EOF'
import json, sys, time, urllib.request
deadline = time.time() + 600
while time.time() < deadline:
    health = json.load(urllib.request.urlopen(f"http://{sys.argv[1]}/health"))
    if all(q.get("visible", 0) + q.get("inFlight", 0) + q.get("delayed", 0) == 0
           for q in health["queues"]):
        sys.exit(0)
    time.sleep(0.5)
sys.exit("the queues did not drain within 10 minutes")
EOF
}

run() {
  local mode="$1" label="$2"
  drain
  wrk -t"$threads" -c"$connections" -d"$duration" --timeout 10s -s benches/webhooks/load.lua \
    "http://$address" -- "$mode" "$label" "$work/requests.lua" "$threads" | grep '^RESULT' | tee -a "$work/results"
  echo "  load average after $label: $(cut -d' ' -f1-3 /proc/loadavg)"
}

echo "wrk -t$threads -c$connections -d$duration against http://$address ($(nproc) cores, data in $data)"
echo "  load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
run health health
run github-unique github-unique
python3 - "$address" "$work/prime.json" << 'EOF'
import json, sys, urllib.request
address, prime = sys.argv[1], json.load(open(sys.argv[2]))
request = urllib.request.Request(f"http://{address}{prime['path']}", data=prime["body"].encode(),
                                 headers=prime["headers"], method="POST")
assert json.load(urllib.request.urlopen(request))["status"] == "accepted"
EOF
run github-duplicate github-duplicate
run stripe-unique stripe-unique

python3 - "$work/results" "$data" "$stripe_requests" "$connections" << 'EOF'
import re, sys
path, data_dir = sys.argv[1], sys.argv[2]
stripe_requests, connections = int(sys.argv[3]), int(sys.argv[4])
results = {}
for line in open(path):
    fields = dict(re.findall(r"(\w+)=(\S+)", line))
    results[fields["label"]] = fields
health = float(results["health"]["rps"])
print()
print(f"| run | requests | p50 ms | p99 ms | req/s | vs /health | non-2xx |")
print(f"|---|---|---|---|---|---|---|")
for label, r in results.items():
    ratio = float(r["rps"]) / health * 100
    print(f"| {label} | {r['requests']} | {r['p50_ms']} | {r['p99_ms']} | {float(r['rps']):.0f} "
          f"| {ratio:.0f} % | {r['non2xx']} |")
for label in ("github-unique", "stripe-unique"):
    r = results[label]
    goal = float(r["p99_ms"]) < 10 and float(r["rps"]) >= 0.5 * health
    print(f"{label}: goal (p99 < 10 ms, >= 50 % of /health) {'met' if goal else 'NOT met'}")
# Every distinct delivery has one ledger entry marked published (duplicates added none).
# The transformer hub dev runs beside the receiver consumes the transform queue meanwhile, so
# the ledger, not the queue, is what is counted.
import sqlite3
db = sqlite3.connect(f"file:{data_dir}/hub.sqlite3?mode=ro", uri=True)
published = db.execute(
    "SELECT COUNT(*) FROM items WHERE pk LIKE 'whdlv#%' AND sk = 'ledger' "
    "AND json_extract(body, '$.state') = 'published'").fetchone()[0]
wrapped = int(results["stripe-unique"]["duplicates_by_wrap"])
expected = (int(results["github-unique"]["requests"])
            + min(int(results["stripe-unique"]["requests"]), stripe_requests) + 1)
failed = sum(int(results[l]["non2xx"]) for l in results)
# wrk stops counting with requests still in flight, which the host may complete.
in_flight = 3 * connections
print(f"dedup ledger: {published} deliveries published for {expected} distinct deliveries "
      f"counted by wrk (+ up to {in_flight} in flight at the ends of runs; stripe wrap-around "
      f"duplicates: {wrapped}; non-2xx answers: {failed})")
if failed:
    sys.exit("some requests were refused")
if not expected <= published <= expected + in_flight:
    sys.exit("the ledger does not hold one published entry per distinct delivery")
EOF
