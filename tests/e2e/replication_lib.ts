/**
 * Helpers of the replication fault tests (`replication_*_test.ts`): a cluster whose first region
 * PD has brought to three voters, writers that record what was acknowledged, reads sent to one
 * chosen store (so a test knows which replica answered), leadership moved by PD's admin
 * operator, and a stopped store's Raft log read from its data directory.
 *
 * Invariants:
 * - A read at a store (`scanAt`) names the store's own peer and the region's epoch in its
 *   context and is never retried elsewhere: it succeeds only when that store's replica leads
 *   the region and has applied everything committed, so its answer is that replica's data.
 * - Every wait has a deadline (`waitFor`, the request deadlines below); every writer loop is
 *   bounded by `REPLICATION_WRITER_MAX_OPS`; `withReplicatedCluster` stops the cluster, and the
 *   clients it made, whatever the body did (keeping the logs when it failed).
 */
import { PdClient } from "../../src/client/pd_client.ts";
import { PdResolver } from "../../src/client/pd_resolver.ts";
import { RawKV } from "../../src/client/raw.ts";
import { StoreConnection } from "../../src/client/transport.ts";
import { describeRegionError } from "../../src/client/errors.ts";
import { RAW_SCAN_MAX_LIMIT } from "../../src/constants.ts";
import { RocksDbEngine } from "../../src/engine/rocksdb_engine.ts";
import {
  applyStateKey,
  parseRaftLogKey,
  raftLogRange,
  raftStateKey,
} from "../../src/raftstore/keys.ts";
import { decodeRaftApplyState, decodeRaftLocalState } from "../../src/raftstore/local_state.ts";
import { LOCAL_CF } from "../../src/raftstore/region_state.ts";
import { fromUtf8 } from "../../src/util/bytes.ts";
import type { metapb } from "../../proto/mod.ts";
import { type Cluster, type ClusterOptions, startCluster, waitFor } from "./cluster.ts";
import { PdRpc } from "./pd_lib.ts";

/** Deno.test options every end-to-end test takes (child processes and sockets outlive a step). */
export const E2E = { sanitizeOps: false, sanitizeResources: false };
/** How long PD may take to bring the first region to three voters. */
export const REPLICATION_THREE_VOTERS_TIMEOUT_MS = 30_000;
/** How long writes may fail after a leader is lost (killed or cut off). */
export const REPLICATION_FAILOVER_MS = 10_000;
/** How long a leadership move (PD operator, new leader's first read) may take. */
export const REPLICATION_LEADER_MOVE_TIMEOUT_MS = 40_000;
/** Deadline of one read sent to one store. */
export const REPLICATION_READ_TIMEOUT_MS = 3_000;
/** Most puts one writer makes (its loop ends earlier when stopped). */
export const REPLICATION_WRITER_MAX_OPS = 100_000;

/** The first region as PD knows it. */
export interface RegionView {
  region: metapb.Region.$Properties;
  regionId: bigint;
  /** Store ids of the voters. */
  voters: bigint[];
  /** The leader's store id (0 when PD knows none). */
  leaderStore: bigint;
}

/** What a test body is handed. */
export interface ReplicatedCluster {
  cluster: Cluster;
  pd: PdClient;
  admin: PdRpc;
  /** A client routed through PD, for writes and ordinary reads. */
  client: RawKV;
}

/** The first region (the one holding the empty key) as PD sees it now. */
export async function regionView(pd: PdClient): Promise<RegionView> {
  const located = await pd.getRegion(new Uint8Array(0));
  if (located === null) throw new Error("PD knows no region holding the empty key");
  const peers = located.region.peers ?? [];
  return {
    region: located.region,
    regionId: located.region.id ?? 0n,
    voters: peers.filter((p) => (p.role ?? 0) === 0).map((p) => p.storeId ?? 0n),
    leaderStore: located.leader?.storeId ?? 0n,
  };
}

/** The harness's index of the store with PD id `storeId`. */
export function indexOf(cluster: Cluster, storeId: bigint): number {
  for (let i = 0; i < cluster.storeCount; i++) if (cluster.storeId(i) === storeId) return i;
  throw new Error(`no store with id ${storeId}`);
}

/** The harness index of the first-region leader PD reports (fails when PD knows none). */
export async function leaderIndex(rc: ReplicatedCluster): Promise<number> {
  const { leaderStore } = await regionView(rc.pd);
  if (leaderStore === 0n) throw new Error("PD knows no leader of the first region");
  return indexOf(rc.cluster, leaderStore);
}

/**
 * Starts 1 PD + 3 stores (with `config` as every store's TOML configuration when given), waits
 * for PD to make the first region three voters, runs `body`, and stops everything.
 */
export async function withReplicatedCluster(
  options: ClusterOptions & { config?: string },
  body: (rc: ReplicatedCluster) => Promise<void>,
): Promise<void> {
  let configDir: string | null = null;
  let storeArgs = options.storeArgs;
  if (options.config !== undefined) {
    configDir = await Deno.makeTempDir({ prefix: "basalt_replication_config_" });
    await Deno.writeTextFile(`${configDir}/store.toml`, options.config);
    storeArgs = ["--config", `${configDir}/store.toml`];
  }
  const cluster = await startCluster({ ...options, stores: 3, storeArgs });
  let pd: PdClient | null = null;
  let admin: PdRpc | null = null;
  let client: RawKV | null = null;
  let failed = true;
  try {
    pd = await PdClient.connect([cluster.pdAddr]);
    admin = new PdRpc(cluster.pdAddr);
    client = new RawKV(await PdResolver.connect([cluster.pdAddr]));
    const connected = pd;
    await waitFor(
      "PD to bring the first region to three voters",
      async () => (await regionView(connected)).voters.length === 3,
      REPLICATION_THREE_VOTERS_TIMEOUT_MS,
    );
    await body({ cluster, pd, admin, client });
    failed = false;
  } finally {
    client?.close();
    admin?.close();
    pd?.close();
    await cluster.stop({ keepLogs: failed });
    if (configDir !== null) await Deno.remove(configDir, { recursive: true });
  }
}

/** Concurrent writers of unique keys (value = key), recording every acknowledged put. */
export interface Writers {
  /** Keys whose put was acknowledged, in the order acknowledged. */
  readonly acknowledged: string[];
  failures(): number;
  lastError(): string;
  /** Tells the writers to stop after the put each has in flight. */
  halt(): void;
  /** Stops the writers and waits for their last puts to settle. */
  stop(): Promise<void>;
}

/**
 * Starts `count` writers putting `${prefix}${writer}-${i}` through `client`, each put given up
 * after `putTimeoutMs` (default REPLICATION_FAILOVER_MS; the writer then goes on with its next
 * key). A put sent to a leader cut off from its followers is answered only when its deadline
 * passes (its entry can neither commit nor be overwritten yet), so a test that cuts a leader off
 * wants a short one.
 */
export function startWriters(
  client: RawKV,
  options: { prefix: string; count: number; putTimeoutMs?: number },
): Writers {
  const timeoutMs = options.putTimeoutMs ?? REPLICATION_FAILOVER_MS;
  const acknowledged: string[] = [];
  let running = true;
  let failures = 0;
  let lastError = "";
  const writer = async (id: number) => {
    for (let i = 0; running && i < REPLICATION_WRITER_MAX_OPS; i++) {
      const key = `${options.prefix}${id}-${i}`;
      try {
        await client.put(key, key, { timeoutMs });
        acknowledged.push(key);
      } catch (error) {
        failures++;
        lastError = (error as Error).message;
      }
    }
  };
  const loops = Array.from({ length: options.count }, (_, id) => writer(id));
  return {
    acknowledged,
    failures: () => failures,
    lastError: () => lastError,
    halt: () => {
      running = false;
    },
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

/** Puts written at once by `putKeys` (they share the leader's synced writes). */
export const REPLICATION_PUT_CONCURRENCY = 8;

/**
 * Puts `count` keys `${prefix}${i}` (value = key), REPLICATION_PUT_CONCURRENCY at a time; every
 * put must be acknowledged. Returns the keys.
 */
export async function putKeys(
  client: RawKV,
  options: { prefix: string; count: number },
): Promise<string[]> {
  const keys = Array.from({ length: options.count }, (_, i) => `${options.prefix}${i}`);
  for (let i = 0; i < keys.length; i += REPLICATION_PUT_CONCURRENCY) {
    await Promise.all(
      keys.slice(i, i + REPLICATION_PUT_CONCURRENCY).map((key) =>
        client.put(key, key, { timeoutMs: REPLICATION_FAILOVER_MS })
      ),
    );
  }
  return keys;
}

/** What one store answered to a whole-region scan sent to it alone. */
export type ScanAt =
  | { ok: true; pairs: Map<string, string> }
  | { ok: false; regionError: string; notLeader: boolean; regionNotFound: boolean };

/**
 * Scans the whole first region at store `index` only (module header): the store's own peer and
 * PD's current epoch in the context, at most RAW_SCAN_MAX_LIMIT pairs.
 */
export async function scanAt(rc: ReplicatedCluster, index: number): Promise<ScanAt> {
  const view = await regionView(rc.pd);
  const storeId = rc.cluster.storeId(index);
  const peer = (view.region.peers ?? []).find((p) => p.storeId === storeId);
  if (peer === undefined) {
    return {
      ok: false,
      regionError: `PD lists no peer on store ${storeId}`,
      notLeader: false,
      regionNotFound: true,
    };
  }
  const connection = new StoreConnection(rc.cluster.storeAddr(index));
  try {
    const response = await connection.send("RawScan", {
      context: { regionId: view.regionId, regionEpoch: view.region.regionEpoch, peer },
      startKey: new Uint8Array(0),
      endKey: new Uint8Array(0),
      limit: RAW_SCAN_MAX_LIMIT,
    }, { timeoutMs: REPLICATION_READ_TIMEOUT_MS });
    const error = response.regionError;
    if (error != null) {
      return {
        ok: false,
        regionError: describeRegionError(error),
        notLeader: error.notLeader != null,
        regionNotFound: error.regionNotFound != null,
      };
    }
    const pairs = new Map<string, string>();
    for (const kv of response.kvs) pairs.set(fromUtf8(kv.key!), fromUtf8(kv.value!));
    return { ok: true, pairs };
  } finally {
    connection.close();
  }
}

/**
 * Moves the first region's leadership to store `index` (PD's transfer-leader operator, added
 * again while another store leads) until a scan at that store succeeds; returns its pairs.
 */
export async function leadAndScan(
  rc: ReplicatedCluster,
  index: number,
): Promise<Map<string, string>> {
  const storeId = rc.cluster.storeId(index);
  let pairs: Map<string, string> | null = null;
  let last = "";
  await waitFor(`store ${storeId} to lead the first region and serve a scan`, async () => {
    const answer = await scanAt(rc, index);
    if (answer.ok) {
      pairs = answer.pairs;
      return true;
    }
    last = answer.regionError;
    const view = await regionView(rc.pd);
    if (view.leaderStore !== storeId && view.leaderStore !== 0n) {
      const added = await rc.admin.admin("AddOperator", {
        action: "transfer-leader",
        regionId: view.regionId.toString(),
        storeId: storeId.toString(),
      });
      if ("error" in added) last = `${last}; operator: ${JSON.stringify(added.error)}`;
    }
    return false;
  }, REPLICATION_LEADER_MOVE_TIMEOUT_MS).catch((error) => {
    throw new Error(`${(error as Error).message}; last answer: ${last}`);
  });
  return pairs!;
}

/** The keys of `expected` that `pairs` lacks or holds with another value (value = key). */
export function missingFrom(pairs: Map<string, string>, expected: Iterable<string>): string[] {
  const missing: string[] = [];
  for (const key of expected) if (pairs.get(key) !== key) missing.push(key);
  return missing;
}

/** A stopped store's Raft log of one region, read from its data directory. */
export interface RaftLogOnDisk {
  /** The first entry still in the log (truncated index + 1 when the log is empty). */
  firstIndex: bigint;
  lastIndex: bigint;
  truncatedIndex: bigint;
  appliedIndex: bigint;
}

/** Reads region `regionId`'s Raft log bounds from store `index`'s data directory (stopped). */
export function raftLogOnDisk(cluster: Cluster, index: number, regionId: bigint): RaftLogOnDisk {
  if (cluster.isRunning(index)) throw new Error(`store ${index} runs: stop it first`);
  const engine = RocksDbEngine.open(`${cluster.dataDir(index)}/db`, { createIfMissing: false });
  try {
    const stateKey = raftStateKey(regionId);
    const stateBytes = engine.get(LOCAL_CF, stateKey);
    const applyKey = applyStateKey(regionId);
    const applyBytes = engine.get(LOCAL_CF, applyKey);
    if (stateBytes === null || applyBytes === null) {
      throw new Error(`store ${index} holds no raft or apply state of region ${regionId}`);
    }
    const raft = decodeRaftLocalState(stateBytes, { regionId, key: stateKey });
    const apply = decodeRaftApplyState(applyBytes, { regionId, key: applyKey });
    const { start, end } = raftLogRange(regionId);
    using iterator = engine.iterator(LOCAL_CF, { lowerBound: start, upperBound: end });
    iterator.seekToFirst();
    const truncatedIndex = apply.truncatedState.index;
    const firstIndex = iterator.valid()
      ? parseRaftLogKey(iterator.key())!.index
      : truncatedIndex + 1n;
    return {
      firstIndex,
      lastIndex: raft.lastIndex,
      truncatedIndex,
      appliedIndex: apply.appliedIndex,
    };
  } finally {
    engine.close();
  }
}
