#!/usr/bin/env python3
"""Webhook-to-record lag on `hub dev` (benches/webhooks/lag.sh runs it).

  lag.py documents OUT_DIR
      writes OUT_DIR/documents.json for `hub apply`: a GitHub tenant integration, a conversion
      schema for issues, a realtime sync task and a webhook route with its secret (route id in
      OUT_DIR/route_id).
  lag.py run OUT_DIR ADDRESS DATA_DIR DELIVERIES RATE
      sends DELIVERIES signed GitHub `issues` deliveries (the issues.opened fixture, each with
      its own issue id and delivery id, signed per request) at RATE per second from one
      keep-alive connection, then reads the records the writer wrote from the embedded
      backend's SQLite file and reports, per record, its lineage's `writtenAt` minus the time
      the client sent the delivery (so the lag includes the HTTP round trip): p50, p95, max.
"""

import hashlib
import hmac
import http.client
import json
import os
import secrets
import sqlite3
import sys
import time
from datetime import datetime

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
FIXTURE = os.path.join(ROOT, "shared", "hub-webhooks", "tests", "fixtures", "github", "issues.opened.json")
TENANT = "lagbench"
SECRET = "lag-bench-github-secret"
ENTITY = "c_github_issue"
FIRST_ISSUE_ID = 9_000_000_000


def documents(out_dir):
    route_id = "rt_" + secrets.token_hex(16)
    secret_ref = f"hub/{TENANT}/github-webhook"
    docs = [
        {
            "kind": "TenantIntegration",
            "tenantId": TENANT,
            "spec": {"id": "ti-github", "integrationId": "github", "status": "pending"},
        },
        {
            "kind": "ConversionSchema",
            "tenantId": TENANT,
            "spec": {
                "id": "github-issue",
                "name": "GitHub issue",
                "source": {"entity": "issues"},
                "target": {
                    "shardTypeId": ENTITY,
                    "createIfMissing": True,
                    "updateIfExists": True,
                    "deleteIfRemoved": False,
                },
                "fieldMappings": [
                    {"targetField": field, "mappingType": "direct",
                     "config": {"type": "direct", "sourceField": field}}
                    for field in ("number", "title", "state")
                ],
                "deduplication": {"strategy": "external_id", "externalIdField": "id"},
                "isActive": True,
            },
        },
        {
            "kind": "SyncTask",
            "tenantId": TENANT,
            "spec": {
                "id": "github-issues-realtime",
                "tenantIntegrationId": "ti-github",
                "name": "GitHub issues as they change",
                "conversionSchemaId": "github-issue",
                "direction": "pull",
                "schedule": {"type": "realtime", "config": {
                    "type": "realtime",
                    "webhookUrl": f"http://127.0.0.1/webhooks/{route_id}",
                    "verificationToken": "unused-by-github",
                }},
                "config": {},
                "status": "active",
            },
        },
        {
            "kind": "WebhookRoute",
            "tenantId": TENANT,
            "spec": {
                "id": route_id,
                "tenantIntegrationId": "ti-github",
                "integrationId": "github",
                "config": {"scheme": {"type": "github"}, "secrets": [secret_ref]},
                "rateLimit": {"requestsPerSecond": 100000, "burst": 100000},
            },
            "secrets": {secret_ref: SECRET},
        },
    ]
    with open(os.path.join(out_dir, "documents.json"), "w") as f:
        json.dump(docs, f, indent=2)
    with open(os.path.join(out_dir, "route_id"), "w") as f:
        f.write(route_id)


def percentile(sorted_values, share):
    """Nearest-rank percentile."""
    rank = max(1, -(-len(sorted_values) * share // 100))
    return sorted_values[int(rank) - 1]


def parse_time(text):
    # writtenAt is RFC 3339 with up to nanoseconds and `Z`; Python parses microseconds.
    head, _, fraction = text.rstrip("Z").partition(".")
    fraction = (fraction + "000000")[:6]
    return datetime.fromisoformat(f"{head}.{fraction}+00:00").timestamp()


def run(out_dir, address, data_dir, deliveries, rate):
    route_id = open(os.path.join(out_dir, "route_id")).read().strip()
    fixture = json.load(open(FIXTURE))
    host, port = address.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    sent_at = {}
    ack_ms = []
    interval = 1.0 / rate
    start = time.perf_counter()
    for n in range(deliveries):
        due = start + n * interval
        pause = due - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        fixture["issue"]["id"] = FIRST_ISSUE_ID + n
        fixture["issue"]["number"] = n + 1
        body = json.dumps(fixture, separators=(",", ":")).encode()
        signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": "issues",
            "X-GitHub-Delivery": f"lag-{n}",
            "X-Hub-Signature-256": signature,
        }
        before = time.perf_counter()
        sent_at[str(FIRST_ISSUE_ID + n)] = time.time()
        connection.request("POST", f"/webhooks/{route_id}", body=body, headers=headers)
        response = connection.getresponse()
        answer = response.read()
        ack_ms.append((time.perf_counter() - before) * 1000)
        if response.status != 200 or json.loads(answer)["status"] != "accepted":
            sys.exit(f"delivery {n} refused: {response.status} {answer!r}")
    sending = time.perf_counter() - start

    db = sqlite3.connect(f"file:{data_dir}/hub.sqlite3?mode=ro", uri=True, timeout=30)
    written = {}
    deadline = time.time() + 120
    while len(written) < deliveries and time.time() < deadline:
        rows = db.execute(
            "SELECT body FROM items WHERE tbl = 'hub-records' AND pk = ?",
            (f"{TENANT}#{ENTITY}",),
        ).fetchall()
        for (body,) in rows:
            item = json.loads(body)
            lineage = json.loads(item["lineage"])
            written[item["externalId"]] = (parse_time(lineage["writtenAt"]), lineage["deliveryId"])
        if len(written) < deliveries:
            time.sleep(0.5)
    missing = [i for i in sent_at if i not in written]
    if missing:
        sys.exit(f"{len(missing)} of {deliveries} records were not written within 120 s")
    lags = sorted((written[i][0] - sent_at[i]) * 1000 for i in sent_at)
    acks = sorted(ack_ms)
    p50, p95, worst = percentile(lags, 50), percentile(lags, 95), lags[-1]
    print(f"{deliveries} deliveries at {rate}/s (sent in {sending:.1f} s), "
          f"{len(written)} records written")
    print()
    print("| measure | p50 ms | p95 ms | max ms |")
    print("|---|---|---|---|")
    print(f"| delivery sent -> record written (lineage writtenAt) | {p50:.0f} | {p95:.0f} | {worst:.0f} |")
    print(f"| delivery sent -> 200 accepted | {percentile(acks, 50):.1f} | "
          f"{percentile(acks, 95):.1f} | {acks[-1]:.1f} |")
    print()
    print(f"goal (p95 lag < 1000 ms): {'met' if p95 < 1000 else 'NOT met'}")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "documents":
        documents(sys.argv[2])
    elif len(sys.argv) == 7 and sys.argv[1] == "run":
        run(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), float(sys.argv[6]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
