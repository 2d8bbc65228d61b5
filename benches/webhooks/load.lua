-- wrk script of the webhook latency benchmark (benches/webhooks/run.sh).
--
--   wrk ... -s load.lua http://127.0.0.1:PORT -- MODE LABEL REQUESTS_LUA THREADS
--
-- MODE:
--   health            GET /health
--   github-unique     the signed GitHub delivery, a new X-GitHub-Delivery per request: the
--                     full path (verify, ledger entry, publish, mark published)
--   github-duplicate  the same delivery id every time: after the first, the dedup path
--                     (verify, the ledger says published, answer "duplicate")
--   stripe-unique     Stripe deliveries with distinct event ids and signatures, precomputed
--                     by prepare.py; a run longer than the set wraps around into duplicates,
--                     which done() reports
-- done() prints one "RESULT" line: requests, throughput, p50 and p99 latency, failures.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_index", #threads)
end

local mode, data, thread_count
local sent = 0
-- Globals, so done() (in the main state, where init never ran) can read them per thread.
label = nil
wrapped = 0

function init(args)
  mode, label = args[1], args[2]
  data = dofile(args[3])
  thread_count = tonumber(args[4])
end

function request()
  sent = sent + 1
  if mode == "health" then
    return wrk.format("GET", "/health")
  elseif mode == "github-unique" or mode == "github-duplicate" then
    local delivery = "bench-duplicate"
    if mode == "github-unique" then
      delivery = string.format("bench-%d-%d", thread_index, sent)
    end
    return wrk.format("POST", data.github_path, {
      ["Content-Type"] = "application/json",
      ["User-Agent"] = "GitHub-Hookshot/bench",
      ["X-GitHub-Event"] = "issues",
      ["X-GitHub-Delivery"] = delivery,
      ["X-Hub-Signature-256"] = data.github_signature,
    }, data.github_body)
  elseif mode == "stripe-unique" then
    local count = #data.stripe_signatures
    local n = (sent - 1) * thread_count + thread_index
    if n > count then
      wrapped = wrapped + 1
      n = (n - 1) % count + 1
    end
    local body = data.stripe_before .. string.format('"evt_bench_%08d"', n) .. data.stripe_after
    return wrk.format("POST", data.stripe_path, {
      ["Content-Type"] = "application/json; charset=utf-8",
      ["User-Agent"] = "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
      ["Stripe-Signature"] = data.stripe_signatures[n],
    }, body)
  end
  error("unknown mode " .. tostring(mode))
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local label = threads[1]:get("label")
  local wrapped_total = 0
  for _, thread in ipairs(threads) do
    wrapped_total = wrapped_total + (thread:get("wrapped") or 0)
  end
  local socket_errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout
  io.write(string.format(
    "RESULT label=%s requests=%d seconds=%.2f rps=%.1f p50_ms=%.3f p99_ms=%.3f non2xx=%d socket_errors=%d duplicates_by_wrap=%d\n",
    label, summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status, socket_errors, wrapped_total))
end
