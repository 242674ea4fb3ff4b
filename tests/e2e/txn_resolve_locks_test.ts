/**
 * `TxnKV.resolveLocks` against a real store: the locks readers leave behind (a committed
 * transaction's secondaries read through after its first lock met was resolved), a dead
 * transaction's locks, and a transaction newer than the bound, which is left alone.
 */
import assert from "node:assert/strict";
import { kvrpcpb } from "../../proto/mod.ts";
import { TxnKV } from "../../src/client/txn/mod.ts";
import { fromUtf8, utf8 } from "../../src/util/bytes.ts";
import { TikvClient, withServer } from "./lib.ts";

const E2E = { sanitizeOps: false, sanitizeResources: false };
/** The standalone store's one region. */
const context = {
  regionId: 1n,
  regionEpoch: { confVer: 1n, version: 1n },
  peer: { id: 2n, storeId: 1n },
};
const text = (bytes: Uint8Array | null) => bytes === null ? null : fromUtf8(bytes);
const PREWRITE = { request: kvrpcpb.PrewriteRequest, response: kvrpcpb.PrewriteResponse };
const COMMIT = { request: kvrpcpb.CommitRequest, response: kvrpcpb.CommitResponse };
const SCAN_LOCK = { request: kvrpcpb.ScanLockRequest, response: kvrpcpb.ScanLockResponse };

/** Prewrites `keys` (the first primary) = "<key>@<startTs>" in a 2PC transaction. */
async function prewrite(
  tikv: TikvClient,
  keys: string[],
  how: { startTs: bigint; lockTtlMs: bigint },
): Promise<void> {
  const answer = await tikv.call<kvrpcpb.IPrewriteRequest, kvrpcpb.PrewriteResponse>(
    "KvPrewrite",
    PREWRITE,
    {
      context,
      mutations: keys.map((k) => ({
        op: kvrpcpb.Op.Put,
        key: utf8(k),
        value: utf8(`${k}@${how.startTs}`),
      })),
      primaryLock: utf8(keys[0]!),
      startVersion: how.startTs,
      lockTtl: how.lockTtlMs,
      txnSize: BigInt(keys.length),
    },
  );
  assert.equal(answer.errors.length, 0, JSON.stringify(answer.errors));
  assert.equal(answer.regionError, null);
}

/** The keys locked by transactions that started at or below `maxTs`. */
async function lockedKeys(tikv: TikvClient, maxTs: bigint): Promise<string[]> {
  const answer = await tikv.call<kvrpcpb.IScanLockRequest, kvrpcpb.ScanLockResponse>(
    "KvScanLock",
    SCAN_LOCK,
    { context, maxVersion: maxTs, limit: 100 },
  );
  assert.equal(answer.regionError, null);
  return answer.locks.map((lock) => fromUtf8(lock.key ?? new Uint8Array())).sort();
}

Deno.test({
  name: "TxnKV.resolveLocks: commits a committed transaction's locks a reader read through, " +
    "rolls a dead one's back, leaves a newer one's",
  ...E2E,
  fn: () =>
    withServer(async (server) => {
      const client = await TxnKV.connect({ host: server.grpcAddr });
      const tikv = new TikvClient(server.grpcAddr);
      try {
        // Committed: the primary's commit went in, the secondaries' never did.
        const committed = await client.currentTimestamp();
        await prewrite(tikv, ["c", "c1", "c2"], { startTs: committed, lockTtlMs: 20_000n });
        const commitTs = await client.currentTimestamp();
        const commit = await tikv.call<kvrpcpb.ICommitRequest, kvrpcpb.CommitResponse>(
          "KvCommit",
          COMMIT,
          { context, keys: [utf8("c")], startVersion: committed, commitVersion: commitTs },
        );
        assert.equal(commit.error, null);
        // Dead: prewritten with a 1 ms TTL, never committed.
        const dead = await client.currentTimestamp();
        await prewrite(tikv, ["d", "d1"], { startTs: dead, lockTtlMs: 1n });

        // A reader resolves the first lock it meets of the small committed transaction and
        // reads through its others: the values are the committed ones, a lock stays behind.
        const reader = await client.snapshot();
        assert.equal(text(await reader.get(utf8("c1"))), `c1@${committed}`);
        assert.equal(text(await reader.get(utf8("c2"))), `c2@${committed}`);
        const bound = await client.currentTimestamp();
        // Newer than the bound: left alone (its transaction may be running).
        const newer = await client.currentTimestamp();
        await prewrite(tikv, ["n"], { startTs: newer, lockTtlMs: 20_000n });
        assert.deepEqual(await lockedKeys(tikv, bound), ["c2", "d", "d1"]);

        const met = await client.resolveLocks(bound);
        assert.equal(met, 3);
        assert.deepEqual(await lockedKeys(tikv, bound), [], "no lock at or below the bound");
        assert.deepEqual(await lockedKeys(tikv, newer), ["n"], "the newer lock is there");
        const after = await client.snapshot();
        assert.equal(text(await after.get(utf8("c2"))), `c2@${committed}`);
        assert.equal(await after.get(utf8("d")), null, "the dead transaction rolled back");
        assert.equal(await after.get(utf8("d1")), null);
        const info = await client.mvccGetByKey("c2");
        assert.equal(info.writes?.[0]?.commitTs, commitTs, "c2 committed at the primary's ts");
        assert.equal(await client.resolveLocks(bound), 0, "nothing left to meet");
      } finally {
        tikv.close();
        await client.close();
      }
    }),
});
