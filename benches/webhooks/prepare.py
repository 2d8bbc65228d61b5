#!/usr/bin/env python3
"""Writes what the webhook latency benchmark needs into OUT_DIR:

- routes.json: one WebhookRoute per provider scheme for `hub apply` (ids fixed here so the load
  script knows them, secret values in the envelope, a rate limit far above the load);
- requests.lua: the GitHub delivery (signed once: GitHub signs the body only, so each request
  can carry its own X-GitHub-Delivery id) and N Stripe deliveries, each with its own event id in
  the body and its own signature, all signed at the current time (the Stripe route's replay
  window is an hour, longer than any run).

Usage: prepare.py OUT_DIR STRIPE_REQUESTS
"""

import hashlib
import hmac
import json
import os
import secrets
import sys
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
FIXTURES = os.path.join(ROOT, "shared", "hub-webhooks", "tests", "fixtures")
TENANT = "bench"
GITHUB_SECRET = "bench-github-secret"
STRIPE_SECRET = "whsec_bench_stripe_secret"


def route_id():
    return "rt_" + secrets.token_hex(16)


def route(provider, scheme, secret_values, **extra):
    """An envelope for `hub apply`; secret_values maps secret names to values."""
    refs = [f"hub/{TENANT}/{name}" for name in secret_values if not name.endswith("verify")]
    spec = {
        "id": route_id(),
        "tenantIntegrationId": f"ti-{provider}",
        "integrationId": provider,
        "config": {"scheme": scheme, "secrets": refs},
        "rateLimit": {"requestsPerSecond": 100000, "burst": 100000},
    }
    spec["config"].update(extra)
    return {
        "kind": "WebhookRoute",
        "tenantId": TENANT,
        "spec": spec,
        "secrets": {f"hub/{TENANT}/{name}": value for name, value in secret_values.items()},
    }


def lua_string(text):
    return "[==[" + text + "]==]"


def main():
    out_dir, stripe_requests = sys.argv[1], int(sys.argv[2])
    whsec = "whsec_" + "YmVuY2gtc3RhbmRhcmQtd2ViaG9va3Mtc2VjcmV0"
    routes = [
        route("github", {"type": "github"}, {"github": GITHUB_SECRET}),
        route("stripe", {"type": "stripe"}, {"stripe": STRIPE_SECRET}, toleranceSeconds=3600),
        route("slack", {"type": "slack"}, {"slack": "bench-slack"}),
        route("shopify", {"type": "shopify"}, {"shopify": "bench-shopify"}),
        route("twilio", {"type": "twilio"}, {"twilio": "bench-twilio"}),
        route("zendesk", {"type": "zendesk"}, {"zendesk": "bench-zendesk"}),
        route("hubspot", {"type": "hubspot"}, {"hubspot": "bench-hubspot"}),
        route(
            "meta",
            {"type": "meta", "verifyToken": f"hub/{TENANT}/meta-verify"},
            {"meta": "bench-meta", "meta-verify": "bench-meta-token"},
        ),
        route("standard_webhooks", {"type": "standard_webhooks"}, {"standard": whsec}),
        route("jira", {"type": "jira"}, {"jira": "bench-jira"}),
        route("microsoft_teams", {"type": "microsoft_teams"}, {"teams": "YmVuY2gtdGVhbXM="}),
        route("microsoft_graph", {"type": "microsoft_graph"}, {"graph": "bench-graph"}),
        route(
            "generic",
            {"type": "generic", "signatureHeader": "X-Signature", "encoding": "hex"},
            {"generic": "bench-generic"},
        ),
    ]
    with open(os.path.join(out_dir, "routes.json"), "w") as f:
        json.dump(routes, f, indent=2)

    github_path = "/webhooks/" + routes[0]["spec"]["id"]
    stripe_path = "/webhooks/" + routes[1]["spec"]["id"]
    with open(os.path.join(FIXTURES, "github", "issues.opened.json"), "rb") as f:
        github_body = f.read().decode()
    github_signature = (
        "sha256=" + hmac.new(GITHUB_SECRET.encode(), github_body.encode(), hashlib.sha256).hexdigest()
    )

    with open(os.path.join(FIXTURES, "stripe", "event.plan.created.json")) as f:
        stripe_text = f.read()
    original_id = json.loads(stripe_text)["id"]
    marker = f'"{original_id}"'
    assert stripe_text.count(marker) == 1, "the fixture's event id appears once"
    before, after = stripe_text.split(marker)
    signed_at = str(int(time.time()))
    signatures = []
    for n in range(1, stripe_requests + 1):
        body = f'{before}"evt_bench_{n:08d}"{after}'
        mac = hmac.new(STRIPE_SECRET.encode(), f"{signed_at}.{body}".encode(), hashlib.sha256)
        signatures.append(f"t={signed_at},v1={mac.hexdigest()}")

    # The repeated delivery is accepted once before its run, so every request of the run
    # measures the dedup path (and none races the first to a 409).
    with open(os.path.join(out_dir, "prime.json"), "w") as f:
        json.dump(
            {
                "path": github_path,
                "headers": {
                    "Content-Type": "application/json",
                    "X-GitHub-Event": "issues",
                    "X-GitHub-Delivery": "bench-duplicate",
                    "X-Hub-Signature-256": github_signature,
                },
                "body": github_body,
            },
            f,
        )

    with open(os.path.join(out_dir, "requests.lua"), "w") as f:
        f.write("return {\n")
        f.write(f"  github_path = {lua_string(github_path)},\n")
        f.write(f"  github_body = {lua_string(github_body)},\n")
        f.write(f"  github_signature = {lua_string(github_signature)},\n")
        f.write(f"  stripe_path = {lua_string(stripe_path)},\n")
        f.write(f"  stripe_before = {lua_string(before)},\n")
        f.write(f"  stripe_after = {lua_string(after)},\n")
        f.write("  stripe_signatures = {\n")
        for signature in signatures:
            f.write(f'    "{signature}",\n')
        f.write("  },\n}\n")


if __name__ == "__main__":
    main()
