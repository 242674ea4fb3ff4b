/** The --status summary of a fixed /metrics text. */
import assert from "node:assert/strict";
import { parsePrometheusText } from "./prometheus.ts";
import { renderStatus, summarize } from "./status.ts";

const METRICS = `# TYPE basalt_grpc_requests_total counter
basalt_grpc_requests_total{rpc="RawPut",outcome="ok"} 90
basalt_grpc_requests_total{rpc="RawPut",outcome="region_error"} 6
basalt_grpc_requests_total{rpc="RawPut",outcome="error"} 4
basalt_grpc_requests_total{rpc="RawGet",outcome="ok"} 10
basalt_grpc_request_duration_seconds_bucket{rpc="RawPut",le="0.001"} 50
basalt_grpc_request_duration_seconds_bucket{rpc="RawPut",le="0.01"} 100
basalt_grpc_request_duration_seconds_bucket{rpc="RawPut",le="+Inf"} 100
basalt_grpc_request_duration_seconds_sum{rpc="RawPut"} 0.25
basalt_grpc_request_duration_seconds_count{rpc="RawPut"} 100
basalt_grpc_requests_in_flight 3
basalt_rocksdb_estimate_num_keys{cf="default"} 42
basalt_rocksdb_estimate_num_keys{cf="write"} 0
basalt_process_resident_memory_bytes 104857600
basalt_process_heap_used_bytes 10485760
# TYPE basalt_raftstore_rounds_total counter
basalt_raftstore_rounds_total 120
basalt_raftstore_synced_writes_total 60
basalt_raftstore_messages_dropped_total 2
basalt_raftstore_messages_dropped_malformed_total 0
basalt_raftstore_peers_awake 3
basalt_raftstore_peers_asleep 997
`;

Deno.test("summarize groups counts by RPC and outcome and estimates p50/p99 from buckets", () => {
  const summary = summarize(parsePrometheusText(METRICS), { address: "h:1", health: "ok" });
  const put = summary.rpcs[0]!;
  assert.equal(put.rpc, "RawPut");
  assert.equal(put.total, 100);
  assert.deepEqual(put.byOutcome, { ok: 90, region_error: 6, error: 4 });
  assert.ok(Math.abs(put.p50Ms! - 1) < 1e-9, `p50 ${put.p50Ms}`);
  assert.ok(Math.abs(put.p99Ms! - 9.82) < 1e-9, `p99 ${put.p99Ms}`);
  assert.equal(put.meanMs, 2.5);
  const get = summary.rpcs[1]!;
  assert.deepEqual([get.rpc, get.total, get.p50Ms], ["RawGet", 10, null]);
  assert.equal(summary.inFlight, 3);
  assert.deepEqual(summary.rocksdb, { estimate_num_keys: { default: 42, write: 0 } });

  const text = renderStatus(summary);
  assert.match(text, /^store status h:1: ok$/m);
  assert.match(text, /^in flight: 3 {3}resident memory: 100\.0 MiB {3}heap used: 10\.0 MiB$/m);
  assert.match(text, /^RawPut +100 +90 +6 +4 +1\.00 +9\.82 +2\.50$/m);
  assert.match(text, /^RawGet +10 +10 +0 +0 +- +- +-$/m);
  assert.match(text, /^estimate-num-keys +42 +0$/m);
  assert.equal(summary.raftstore.peers_asleep, 997);
  assert.match(
    text,
    /^raftstore: peers awake 3, asleep 997; rounds 120, synced writes 60; messages dropped 2, malformed 0$/m,
  );
});
