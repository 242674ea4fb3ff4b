/**
 * The HTTP gateway bench's use of wrk: its `--latency` output parsed (a fixture of wrk 4.1.0's
 * own output), and its Lua script sending the requests it should (run by wrk against a small
 * loopback server that records them; skipped, saying why, without wrk).
 */
import assert from "node:assert/strict";
import { haveCommand } from "../scripts/setup.ts";
import { parseWrkOutput, runWrk, wrkScript } from "./http_gateway_bench.ts";

/** wrk 4.1.0 `--latency` output (Debian's wrk against a Deno.serve answering 404), with the
 * socket-errors line wrk prints when any occurred. */
const WRK_OUTPUT = `Running 1s test @ http://127.0.0.1:18999/bad
  1 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     0.92ms    2.58ms  23.95ms   92.76%
    Req/Sec    18.60k    13.20k   33.78k    45.45%
  Latency Distribution
     50%   67.00us
     75%  352.00us
     90%    2.61ms
     99%   15.16ms
  20366 requests in 1.11s, 2.41MB read
  Socket errors: connect 0, read 2, write 1, timeout 4
  Non-2xx or 3xx responses: 20366
Requests/sec:  18314.76
Transfer/sec:      2.17MB
`;

Deno.test("parseWrkOutput() reads requests/s, p50/p99 in ms, non-2xx and socket errors", () => {
  assert.deepEqual(parseWrkOutput(WRK_OUTPUT), {
    requests: 20366,
    requestsPerSecond: 18314.76,
    p50Ms: 0.067,
    p99Ms: 15.16,
    non2xx: 20366,
    socketErrors: 7,
  });
});

Deno.test("parseWrkOutput() counts no errors when wrk prints no error lines, reads seconds", () => {
  const clean = WRK_OUTPUT.replace(/^ {2}(Socket errors|Non-2xx).*\n/gm, "")
    .replace("15.16ms", "1.50s");
  const result = parseWrkOutput(clean);
  assert.equal(result.non2xx, 0);
  assert.equal(result.socketErrors, 0);
  assert.equal(result.p99Ms, 1500);
});

Deno.test("parseWrkOutput() names the line it misses (wrk run without --latency)", () => {
  const withoutLatency = WRK_OUTPUT.replace(/ {2}Latency Distribution\n(.*%.*\n)+/, "");
  assert.throws(() => parseWrkOutput(withoutLatency), /no 50% latency line/);
  assert.throws(() => parseWrkOutput("unable to connect"), /no 'N requests in' line/);
});

const HAVE_WRK = haveCommand("wrk");
if (!HAVE_WRK) console.log("wrk script test skipped: wrk not installed (apt-get install wrk)");

Deno.test({
  name: "wrkScript() sends GETs and 100-byte PUTs of random bench keys inside the key set",
  ignore: !HAVE_WRK,
  async fn() {
    const seen: { method: string; path: string; bodyBytes: number }[] = [];
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
      const bodyBytes = (await req.arrayBuffer()).byteLength;
      seen.push({ method: req.method, path: new URL(req.url).pathname, bodyBytes });
      return new Response(null, { status: req.method === "PUT" ? 204 : 200 });
    });
    const dir = await Deno.makeTempDir({ prefix: "basalt-wrk-test-" });
    try {
      const url = `http://127.0.0.1:${server.addr.port}`;
      for (const method of ["GET", "PUT"] as const) {
        const script = `${dir}/${method}.lua`;
        await Deno.writeTextFile(script, wrkScript({ method, keys: 50, valueBytes: 100 }));
        seen.length = 0;
        const result = await runWrk({ url, script, connections: 2, seconds: 1 });
        assert.ok(result !== null, `wrk ${method} failed (see stderr)`);
        assert.ok(result.requests > 0 && seen.length >= result.requests);
        assert.equal(result.non2xx, 0);
        const indexes = new Set<number>();
        for (const request of seen) {
          assert.equal(request.method, method);
          const match = /^\/v1\/kv\/bk(\d{14})$/.exec(request.path);
          assert.ok(match !== null, `unexpected path ${request.path}`);
          assert.ok(Number(match[1]) < 50, `key ${match[1]} outside the key set`);
          indexes.add(Number(match[1]));
          assert.equal(request.bodyBytes, method === "PUT" ? 100 : 0);
        }
        assert.ok(indexes.size > 10, `keys not random: only ${indexes.size} distinct`);
      }
    } finally {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
