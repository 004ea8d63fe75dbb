-- wrk script: one realistic ~1 KB chat-completion request (no PII), the
-- caller's key from the BENCH_AUTH environment variable, and a one-line JSON
-- summary (BENCHJSON) at the end for run.sh to parse.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_AUTH") or "none")
wrk.body = [[{"model":"gpt-4o","temperature":0.2,"max_tokens":256,"messages":[{"role":"system","content":"You are a careful assistant for an operations team. Answer concisely, use plain language, and list follow-up actions as short bullet points. If something is uncertain, say so instead of guessing."},{"role":"user","content":"Please summarise the following incident report for the weekly review. Report: At 02:10 UTC the nightly export job started as scheduled. At 02:25 it failed with a schema mismatch error while writing the orders table, because a column had been renamed in the upstream service during the afternoon release. The on-call engineer was paged at 02:27, confirmed the cause from the job logs, rolled back the upstream change at 02:51, and re-ran the export, which completed successfully at 03:05 after 14 minutes. No customer-facing systems were affected, but the morning dashboards were delayed by roughly forty minutes. Please include what went well, what went wrong, and the follow-up actions we should track, such as adding a contract test for the export schema and an alert on unusually long export durations."}]}]]

-- No response() callback on purpose: defining one makes wrk parse every
-- body and slows the load generator. Non-2xx answers are counted by wrk in
-- summary.errors.status (reported as err_status).

done = function(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"seconds":%.3f,"rps":%.1f,"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,"mean_ms":%.3f,"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d}\n',
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, latency.mean / 1000,
    e.connect, e.read, e.write, e.status, e.timeout))
end
