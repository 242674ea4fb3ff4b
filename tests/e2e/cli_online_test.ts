/** `basalt-ctl` online commands and `--status`, run as child processes against a real store. */
import assert from "node:assert/strict";
import { ctl, type CtlRun, ok } from "./ctl.ts";
import { freeLoopbackPort, withServer } from "./lib.ts";

const E2E = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name: "ctl raw: put, get, ttl, scan (reverse, key-only, limit), delete, checksum; --json, --hex",
  ...E2E,
  fn: () =>
    withServer(async (server) => {
      const host = ["--host", server.grpcAddr];
      assert.deepEqual(await ok([...host, "raw", "put", "apple", "red"]), ["OK"]);
      await ok([...host, "raw", "put", "banana", "yellow", "--ttl", "100"]);
      await ok([...host, "raw", "put", "cherry", "dark red"]);
      assert.deepEqual(await ok([...host, "raw", "get", "apple"]), ["red"]);
      // As `deno task ctl -- …` runs it: a leading "--" is passed along.
      assert.deepEqual(await ok(["--", ...host, "raw", "get", "apple"]), ["red"]);
      assert.deepEqual(await ok([...host, "raw", "get", "durian"]), ["(not found)"]);
      assert.deepEqual(JSON.parse((await ok([...host, "raw", "get", "apple", "--json"]))[0]!), {
        key: "apple",
        found: true,
        value: "red",
      });

      const ttl = (await ok([...host, "raw", "ttl", "banana"]))[0]!;
      // Written with 100 s; a loaded machine may take a few seconds between the two commands.
      const ttlSeconds = Number(/^(\d+) s$/.exec(ttl)?.[1]);
      assert.ok(ttlSeconds >= 85 && ttlSeconds <= 100, `ttl ${ttl}`);
      assert.deepEqual(await ok([...host, "raw", "ttl", "apple"]), ["no TTL"]);
      assert.deepEqual(JSON.parse((await ok([...host, "raw", "ttl", "nope", "--json"]))[0]!), {
        key: "nope",
        found: false,
      });

      assert.deepEqual(await ok([...host, "raw", "scan"]), [
        "apple => red",
        "banana => yellow",
        "cherry => dark red",
      ]);
      assert.deepEqual(await ok([...host, "raw", "scan", "b", "--reverse", "--key-only"]), [
        "cherry",
        "banana",
      ]);
      assert.deepEqual(await ok([...host, "raw", "scan", "a", "c", "--limit", "1", "--json"]), [
        '{"key":"apple","value":"red"}',
      ]);

      // Binary keys and values through --hex; human output shows non-ASCII as 0x…
      await ok([...host, "--hex", "raw", "put", "00ff", "0102"]);
      assert.deepEqual(await ok([...host, "--hex", "raw", "get", "00ff"]), ["0102"]);
      assert.deepEqual(await ok([...host, "raw", "scan", "", "a", "--key-only"]), ["0x00ff"]);

      const checksum = JSON.parse((await ok([...host, "raw", "checksum", "--json"]))[0]!);
      assert.equal(checksum.totalKvs, 4);
      assert.match(checksum.checksum, /^0x[0-9a-f]{16}$/);
      const part = (await ok([...host, "raw", "checksum", "a", "b"]))[0]!;
      assert.match(part, /^checksum 0x[0-9a-f]{16} {2}kvs 1 {2}bytes 8$/);

      assert.deepEqual(await ok([...host, "raw", "delete", "apple"]), ["OK"]);
      assert.deepEqual(await ok([...host, "raw", "get", "apple"]), ["(not found)"]);
      await ok([...host, "raw", "put", "w", "in-write", "--cf", "write"]);
      assert.deepEqual(await ok([...host, "raw", "get", "w", "--cf", "write"]), ["in-write"]);
      assert.deepEqual(await ok([...host, "raw", "get", "w"]), ["(not found)"]);
    }),
});

Deno.test({
  name: "ctl raw: failures exit 1 with one line (refused connection, bad usage, server refusal)",
  ...E2E,
  fn: () =>
    withServer(async (server) => {
      const oneLine = (run: CtlRun, pattern: RegExp) => {
        assert.equal(run.code, 1, run.stdout);
        const lines = run.stderr.trim().split("\n");
        assert.equal(lines.length, 1, run.stderr);
        assert.match(lines[0]!, pattern);
      };
      const closedPort = freeLoopbackPort();
      const startMs = Date.now();
      oneLine(
        await ctl(["--host", `127.0.0.1:${closedPort}`, "raw", "get", "k"]),
        /^basalt-ctl: cannot reach 127\.0\.0\.1:\d+: connection refused$/,
      );
      assert.ok(Date.now() - startMs < 8000, "a refused connection is reported at once");
      oneLine(await ctl(["raw", "get", "k"]), /need --host ADDR/);
      const host = ["--host", server.grpcAddr];
      oneLine(await ctl([...host, "raw", "frob"]), /unknown raw command "frob"/);
      oneLine(await ctl([...host, "raw", "put", "k"]), /usage: .*raw put KEY VALUE/);
      oneLine(await ctl([...host, "raw", "put", "k", "v", "--ttl", "soon"]), /--ttl must be/);
      oneLine(await ctl([...host, "--hex", "raw", "get", "xyz"]), /is not hex/);
      oneLine(
        await ctl([...host, "raw", "get", "k".repeat(9000)]),
        /^basalt-ctl: RawGet: key is too large: 9000 bytes, limit 8192$/,
      );
      oneLine(await ctl([...host, "raw", "get", "k", "--cf", "raft"]), /invalid column family/);
    }),
});

Deno.test({
  name: "ctl --status summarizes /metrics: per-RPC counts and latency, memory, RocksDB",
  ...E2E,
  fn: () =>
    withServer(async (server) => {
      const host = ["--host", server.grpcAddr];
      for (const key of ["a", "b", "c"]) await ok([...host, "raw", "put", key, "v"]);
      await ok([...host, "raw", "get", "a"]);

      const human = (await ok(["--status", server.statusAddr])).join("\n");
      assert.match(human, new RegExp(`^store status ${server.statusAddr}: ok$`, "m"));
      assert.match(human, /^in flight: \d+ {3}resident memory: [\d.]+ MiB/m);
      assert.match(human, /^RawPut +3 +3 +0 +0 +[\d.]+ +[\d.]+ +[\d.]+$/m);
      assert.match(human, /^RawGet +1 +1 /m);
      assert.match(human, /^estimate-num-keys +\d+/m);

      const summary = JSON.parse((await ok(["--status", server.statusAddr, "--json"]))[0]!);
      const put = summary.rpcs.find((rpc: { rpc: string }) => rpc.rpc === "RawPut");
      assert.equal(put.total, 3);
      assert.deepEqual(put.byOutcome, { ok: 3 });
      assert.ok(put.p50Ms > 0 && put.p99Ms >= put.p50Ms, JSON.stringify(put));
      assert.ok(summary.residentMemoryBytes > 1e6);
      assert.equal(typeof summary.rocksdb.estimate_num_keys.default, "number");
      assert.equal(summary.health, "ok");

      const refused = await ctl(["--status", `127.0.0.1:${freeLoopbackPort()}`]);
      assert.equal(refused.code, 1);
      assert.match(
        refused.stderr.trim(),
        /^basalt-ctl: cannot reach the status server at .*refused/i,
      );
    }),
});
