/**
 * TxnKV over several regions whose bounds are data keys (TiKV API V1): transactional keys are
 * located and grouped by their memcomparable encoding, and scans page region by region with the
 * bounds turned back into user keys (`region_keys.ts`). The fake cluster checks every key as
 * its encoding, as a TiKV store does, so a key routed by its raw bytes is refused
 * (KeyNotInRegion) and the call runs out of time.
 *
 * The user key "m" tells the two apart: its raw bytes sort before the split key encode("m"),
 * its encoding at it. A raw split key inside the transactional key space ("m\0", which no user
 * key encodes to; "m" is the first user key encoded after it, the raw "m" sorts before it) is a
 * bound the scan must not decode.
 */
import assert from "node:assert/strict";
import { encodeKey } from "../../codec/key.ts";
import { fromUtf8, utf8 } from "../../util/bytes.ts";
import { PdResolver } from "../pd_resolver.ts";
import { FakeCluster } from "../testing/fake_cluster.ts";
import type { TimestampOracle } from "../tso.ts";
import { TxnKV } from "./txn_kv.ts";

const TEST = { sanitizeOps: false, sanitizeResources: false };

/** Timestamps from a counter: the fake cluster has no TSO. */
class CountingOracle implements TimestampOracle {
  #last = 1000n;
  getTimestamp(): Promise<bigint> {
    return Promise.resolve(this.#last += 10n);
  }
  close(): void {}
}

/** A fake cluster split at `splitKey` on two stores (region 2's leader on store 2), and a TxnKV. */
async function withTxnCluster(
  splitKey: Uint8Array,
  body: (cluster: FakeCluster, client: TxnKV) => Promise<void>,
): Promise<void> {
  const cluster = await FakeCluster.start({ stores: 2, splitKeys: [splitKey] });
  cluster.transferLeader(2n, 2n);
  const resolver = await PdResolver.connect([cluster.pdAddress]);
  const client = new TxnKV(resolver, new CountingOracle(), { timeoutMs: 3000 });
  try {
    await body(cluster, client);
  } finally {
    await client.close();
    await cluster.stop();
  }
}

/** The region ids of the requests `cmd` the stores served, in order. */
function regionsServed(cluster: FakeCluster, cmd: string): bigint[] {
  return cluster.served.filter((request) => request.cmd === cmd).map((r) => r.regionId);
}

const SPLIT_KEYS: [string, Uint8Array][] = [
  ['encode("m")', encodeKey(utf8("m"))],
  ['raw "m\\0" (no user key encodes to it)', utf8("m\0")],
];

for (const [name, splitKey] of SPLIT_KEYS) {
  Deno.test({
    name: `txn over two regions split at ${name}: a 2PC over both commits, each key in its region`,
    ...TEST,
    fn: () =>
      withTxnCluster(splitKey, async (cluster, client) => {
        const txn = await client.begin();
        for (const key of ["a", "l", "m", "z"]) txn.set(key, `v-${key}`);
        await txn.commit();
        await client.flush();
        // Every key lands in the region holding its encoding, and "a" and "z" apart.
        const prewrites = cluster.served.filter((request) => request.cmd === "Prewrite");
        const regionOfKey = new Map<string, bigint>();
        for (const request of prewrites) {
          for (const key of request.keys) regionOfKey.set(fromUtf8(key), request.regionId);
        }
        assert.deepEqual(Object.fromEntries(regionOfKey), { a: 1n, l: 1n, m: 2n, z: 2n });
        assert.deepEqual(new Set(regionsServed(cluster, "Commit")), new Set([1n, 2n]));
        assert.equal(cluster.txn.locks.size, 0, "no lock left after the commit");
        const reader = await client.begin();
        for (const key of ["a", "m", "z"]) {
          assert.equal(fromUtf8((await reader.get(key))!), `v-${key}`);
        }
        assert.ok(regionsServed(cluster, "Get").length >= 3);
      }),
  });

  Deno.test({
    name:
      `txn over two regions split at ${name}: a scan across the split returns every key in order`,
    ...TEST,
    fn: () =>
      withTxnCluster(splitKey, async (cluster, client) => {
        const keys = ["a", "b", "l", "l\xff", "m", "m\0", "n", "z"];
        const txn = await client.begin();
        for (const key of keys) txn.set(key, key.toUpperCase());
        await txn.commit();
        await client.flush();
        const reader = await client.begin();
        cluster.served.length = 0;
        const all = await reader.scan("", null);
        assert.deepEqual(all.map((pair) => fromUtf8(pair.key)), keys);
        assert.deepEqual(all.map((pair) => fromUtf8(pair.value)), keys.map((k) => k.toUpperCase()));
        assert.deepEqual(regionsServed(cluster, "Scan"), [1n, 2n], "one page per region");
        // Bounded scans that start or end at the split, and a limit that stops in region 1.
        const middle = await reader.scan("l", "n");
        assert.deepEqual(middle.map((pair) => fromUtf8(pair.key)), ["l", "l\xff", "m", "m\0"]);
        const from = await reader.scan("m", null);
        assert.deepEqual(from.map((pair) => fromUtf8(pair.key)), ["m", "m\0", "n", "z"]);
        const limited = await reader.scan("", null, { limit: 3 });
        assert.deepEqual(limited.map((pair) => fromUtf8(pair.key)), ["a", "b", "l"]);
        cluster.served.length = 0;
        const both = await reader.batchGet(["a", "z", "m", "nope"]);
        assert.deepEqual(both.map((pair) => fromUtf8(pair.key)), ["a", "z", "m"]);
        assert.deepEqual(new Set(regionsServed(cluster, "BatchGet")), new Set([1n, 2n]));
      }),
  });
}
