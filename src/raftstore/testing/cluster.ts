/**
 * The in-process multi-store harness (issue #10 item 10, TiKV's test_raftstore idea): N stores,
 * each a `Store` over its own crashable memory engine, joined by a `MemoryTransport` with
 * filters, driven deterministically — ticks and rounds are advanced explicitly, and every random
 * choice (election timeouts, lossy filters, workloads) comes from one seeded `SeededRandom`.
 *
 * Time: `tick()` ticks every live store once, then runs rounds (each: one transport round, then
 * one round of every live store in id order) until no store has work or `MAX_ROUNDS_PER_TICK`
 * rounds ran. Client helpers wait in ticks, with a deadline, and fail naming what they waited for.
 *
 * Crashes: `crash(id, { powerLoss })` stops a store (its waiting callbacks answer StoreStopped)
 * and keeps its engine as a process crash leaves it, or as a power loss does (only synced writes);
 * `restart(id)` rebuilds every peer of the store from that engine.
 *
 * @module
 */

import { metapb } from "../../../proto/mod.ts";
import { ConfChangeType, type RandomSource } from "../../raft/mod.ts";
import { utf8 } from "../../util/bytes.ts";
import { SeededRandom } from "../../util/random.ts";
import type { CmdResult } from "../apply.ts";
import {
  batchSplitCommand,
  changePeerCommand,
  keyInRegion,
  type Modification,
  prepareMergeCommand,
  type RaftCmd,
  writeCommand,
} from "../command.ts";
import type { RegionError } from "../errors.ts";
import type { PeerMeta, RegionMeta } from "../local_state.ts";
import type { Peer, ReadResult } from "../peer.ts";
import type { PeerConfig } from "../peer_config.ts";
import { Store } from "../store.ts";
import { CrashableMemoryEngine } from "./crash_engine.ts";
import { MemoryTransport } from "./memory_transport.ts";

/** Most rounds one tick runs before the next tick (a bound on a busy cluster). */
export const MAX_ROUNDS_PER_TICK = 16;
/** Default deadline of a client helper, in ticks. */
export const DEFAULT_DEADLINE_TICKS = 200;
/** The region every harness cluster bootstraps. */
export const FIRST_REGION_ID = 1n;

/** Settings of a harness cluster. */
export interface ClusterOptions {
  /** Number of stores (ids 1..storeCount). */
  storeCount: number;
  seed: number;
  config?: Partial<PeerConfig>;
  /** Stores that get a peer of the first region (default: all). */
  initialStores?: bigint[];
}

/** A read's outcome as the harness reports it. */
export type GetResult =
  | { ok: true; value: string | undefined; viaLease: boolean; appliedIndex: bigint }
  | { ok: false; error: RegionError };

/** N stores in one process (module header). */
export class Cluster {
  readonly random: SeededRandom;
  readonly transport = new MemoryTransport();
  readonly storeIds: bigint[];
  readonly #engines = new Map<bigint, CrashableMemoryEngine>();
  readonly #stores = new Map<bigint, Store>();
  readonly #config: Partial<PeerConfig>;
  readonly #initialStores: bigint[];
  readonly #raftRandom: RandomSource;
  #nextPeerId = 1000n;
  /** Ticks so far: the harness's logical clock. */
  ticks = 0;
  /** Rounds so far (finer logical time, for histories). */
  rounds = 0;

  constructor(readonly options: ClusterOptions) {
    this.random = new SeededRandom(options.seed);
    const raftRandom = new SeededRandom(options.seed ^ 0x5eed);
    this.#raftRandom = { nextInt: (n) => raftRandom.int(n) };
    this.#config = options.config ?? {};
    this.storeIds = Array.from({ length: options.storeCount }, (_, i) => BigInt(i + 1));
    this.#initialStores = options.initialStores ?? this.storeIds;
    for (const id of this.storeIds) {
      this.#engines.set(id, new CrashableMemoryEngine());
      this.startStore(id);
    }
  }

  /** A cluster with the first region bootstrapped on its initial stores and a leader elected. */
  static async start(options: ClusterOptions): Promise<Cluster> {
    const cluster = new Cluster(options);
    await cluster.bootstrap();
    await cluster.waitLeader();
    return cluster;
  }

  private startStore(id: bigint): void {
    const store = Store.start({
      storeId: id,
      engine: this.#engines.get(id)!,
      transport: this.transport,
      random: this.#raftRandom,
      config: this.#config,
    });
    this.#stores.set(id, store);
    this.transport.register(id, (e) => store.receive(e));
  }

  /** The first region as bootstrapped: one voter per initial store, peer id = store id. */
  initialRegion(): RegionMeta {
    return {
      id: FIRST_REGION_ID,
      startKey: new Uint8Array(0),
      endKey: new Uint8Array(0),
      regionEpoch: { confVer: 1n, version: 1n },
      peers: this.#initialStores.map((id) => ({ id, storeId: id, role: metapb.PeerRole.Voter })),
    };
  }

  /** Writes the first region on its initial stores. */
  async bootstrap(): Promise<void> {
    for (const id of this.#initialStores) {
      await this.store(id).bootstrapRegion(this.initialRegion());
    }
  }

  /** A fresh peer id. */
  allocPeerId(): bigint {
    return this.#nextPeerId++;
  }

  /** The live store `id` (asserted live). */
  store(id: bigint): Store {
    const store = this.#stores.get(id);
    if (store === undefined) throw new Error(`store ${id} is down`);
    return store;
  }

  /** True if store `id` is running. */
  isUp(id: bigint): boolean {
    return this.#stores.has(id);
  }

  /** The engine of store `id` (the live one, or what a crash left). */
  engine(id: bigint): CrashableMemoryEngine {
    return this.#engines.get(id)!;
  }

  // -------------------------------------------------------------------------------------------
  // Time.

  /** One round of every live store (after one transport round). Returns true if any worked. */
  async round(): Promise<boolean> {
    this.rounds++;
    this.transport.advanceRound();
    let worked = false;
    for (const id of this.storeIds) {
      const store = this.#stores.get(id);
      if (store !== undefined && await store.round()) worked = true;
    }
    return worked;
  }

  /** Rounds until quiet (bounded by MAX_ROUNDS_PER_TICK). */
  async settle(): Promise<void> {
    for (let i = 0; i < MAX_ROUNDS_PER_TICK; i++) {
      if (!await this.round() && this.transport.delayedCount === 0) return;
    }
  }

  /** One tick of every live store, with no rounds (the caller runs them with `round()`). */
  tickStores(): void {
    this.ticks++;
    for (const id of this.storeIds) this.#stores.get(id)?.tick();
  }

  /** `n` ticks, each followed by rounds until quiet. */
  async tick(n = 1): Promise<void> {
    for (let i = 0; i < n; i++) {
      this.tickStores();
      await this.settle();
    }
  }

  /** Ticks until `done()` holds; fails naming `what` after `maxTicks`. */
  async waitUntil(
    what: string,
    done: () => boolean,
    maxTicks = DEFAULT_DEADLINE_TICKS,
  ): Promise<void> {
    await this.settle();
    for (let i = 0; i < maxTicks && !done(); i++) await this.tick();
    if (!done()) {
      throw new Error(`cluster (seed ${this.options.seed}): ${what} within ${maxTicks} ticks`);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Who leads.

  /** The live leader of `regionId` with the highest term, if any. */
  leader(regionId = FIRST_REGION_ID): Peer | undefined {
    let best: Peer | undefined;
    for (const store of this.#stores.values()) {
      const peer = store.peer(regionId);
      if (peer === undefined || !peer.isLeader()) continue;
      if (best === undefined || peer.raw.raft.term > best.raw.raft.term) best = peer;
    }
    return best;
  }

  /** Waits for a leader of `regionId` and returns it. */
  async waitLeader(regionId = FIRST_REGION_ID, maxTicks = DEFAULT_DEADLINE_TICKS): Promise<Peer> {
    await this.waitUntil(
      `a leader of region ${regionId}`,
      () => this.leader(regionId) !== undefined,
      maxTicks,
    );
    return this.leader(regionId)!;
  }

  /** Every live peer of `regionId`. */
  peers(regionId = FIRST_REGION_ID): Peer[] {
    const out: Peer[] = [];
    for (const id of this.storeIds) {
      const peer = this.#stores.get(id)?.peer(regionId);
      if (peer !== undefined) out.push(peer);
    }
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // Faults.

  /**
   * Stops store `id` as a crash does. With `powerLoss`, its engine keeps only synced writes;
   * otherwise everything written (a process crash).
   */
  crash(id: bigint, opts: { powerLoss?: boolean } = {}): void {
    const store = this.store(id);
    store.stop();
    this.transport.unregister(id);
    this.#stores.delete(id);
    const engine = this.#engines.get(id)!;
    this.#engines.set(id, opts.powerLoss === true ? engine.powerLoss() : engine.processCrash());
  }

  /** Starts store `id` again from its engine. */
  restart(id: bigint): void {
    if (this.#stores.has(id)) throw new Error(`store ${id} is running`);
    this.startStore(id);
  }

  // -------------------------------------------------------------------------------------------
  // Clients.

  /**
   * Sends `cmd` through store `storeId`'s replica of the command's region and ticks until
   * answered (a deadline without an answer fails the test).
   */
  async propose(
    storeId: bigint,
    cmd: RaftCmd,
    maxTicks = DEFAULT_DEADLINE_TICKS,
  ): Promise<CmdResult> {
    let answer: CmdResult | undefined;
    this.store(storeId).propose(cmd.header?.regionId ?? 0n, cmd, (r) => (answer = r));
    await this.waitUntil(
      `an answer to a proposal through store ${storeId}`,
      () => answer !== undefined,
      maxTicks,
    );
    return answer!;
  }

  /** Starts a proposal and returns a handle to poll (for concurrent clients). */
  startPropose(storeId: bigint, cmd: RaftCmd): { result: CmdResult | undefined } {
    const handle: { result: CmdResult | undefined } = { result: undefined };
    if (!this.isUp(storeId)) {
      handle.result = {
        ok: false,
        error: { code: "StoreStopped", regionId: cmd.header?.regionId ?? 0n, storeId },
      };
      return handle;
    }
    this.store(storeId).propose(cmd.header?.regionId ?? 0n, cmd, (r) => (handle.result = r));
    return handle;
  }

  /** Starts a read of `key` (CF default) and returns a handle to poll. */
  startGet(
    storeId: bigint,
    key: string,
    regionId = FIRST_REGION_ID,
  ): { result: GetResult | undefined } {
    const handle: { result: GetResult | undefined } = { result: undefined };
    if (!this.isUp(storeId)) {
      handle.result = { ok: false, error: { code: "StoreStopped", regionId, storeId } };
      return handle;
    }
    this.store(storeId).read(regionId, (r) => (handle.result = readValue(r, key)));
    return handle;
  }

  /**
   * The region holding `key` as the live stores know it: of the initialized replicas whose
   * range holds the key, the one with the newest epoch version.
   */
  regionOfKey(key: string): bigint {
    const k = utf8(key);
    let best: RegionMeta | undefined;
    for (const store of this.#stores.values()) {
      for (const peer of store.peers()) {
        if (!peer.isInitialized()) continue;
        const r = peer.region();
        if (!keyInRegion(k, r)) continue;
        if (best === undefined || r.regionEpoch.version > best.regionEpoch.version) best = r;
      }
    }
    return best?.id ?? FIRST_REGION_ID;
  }

  /**
   * A BatchSplit of the region holding `keys[0]` at `keys` (ascending), through its leader,
   * with fresh ids; waits for the answer.
   */
  async split(
    keys: string[],
    options: { rightDerive?: boolean; maxTicks?: number } = {},
  ): Promise<CmdResult> {
    const maxTicks = options.maxTicks ?? DEFAULT_DEADLINE_TICKS;
    const leader = await this.waitLeader(this.regionOfKey(keys[0]!), maxTicks);
    const splits = keys.map((key) => ({
      splitKey: utf8(key),
      newRegionId: this.allocPeerId(),
      newPeerIds: leader.region().peers.map(() => this.allocPeerId()),
    }));
    const cmd = batchSplitCommand(leader, splits, options.rightDerive ?? false);
    return await this.propose(leader.meta.storeId, cmd, maxTicks);
  }

  /**
   * PrepareMerge of the region holding `sourceKey` into the region holding `targetKey` (or into
   * `targetKey` as given, an old view of it included), through the source's leader; waits for
   * the answer (the rest of the merge follows on its own).
   */
  async prepareMerge(
    sourceKey: string,
    targetKey: string | RegionMeta,
    maxTicks = DEFAULT_DEADLINE_TICKS,
  ): Promise<CmdResult> {
    const leader = await this.waitLeader(this.regionOfKey(sourceKey), maxTicks);
    const target = typeof targetKey !== "string"
      ? targetKey
      : this.peers(this.regionOfKey(targetKey)).find((p) => p.isInitialized())!.region();
    const cmd = prepareMergeCommand(leader, { minIndex: leader.mergeMinIndex(), target });
    return await this.propose(leader.meta.storeId, cmd, maxTicks);
  }

  /** A put of `key` = `value` (CF default) through the current leader of its region, once. */
  async put(key: string, value: string, maxTicks = DEFAULT_DEADLINE_TICKS): Promise<CmdResult> {
    const leader = await this.waitLeader(this.regionOfKey(key), maxTicks);
    const cmd = writeCommand(leader.region(), leader.meta, [put(key, value)]);
    return await this.propose(leader.meta.storeId, cmd, maxTicks);
  }

  /** Puts until one is applied, retrying on errors that say it was not (deadline in ticks). */
  async mustPut(key: string, value: string, maxTicks = DEFAULT_DEADLINE_TICKS): Promise<bigint> {
    const start = this.ticks;
    let last: CmdResult | undefined;
    while (this.ticks - start < maxTicks) {
      last = await this.put(key, value, maxTicks);
      if (last.ok) return last.index;
      await this.tick();
    }
    throw new Error(
      `cluster (seed ${this.options.seed}): put ${key}=${value} not applied: ${
        JSON.stringify(last, replacer)
      }`,
    );
  }

  /** A read of `key` through the current leader, waiting for the answer. */
  async get(key: string, maxTicks = DEFAULT_DEADLINE_TICKS): Promise<GetResult> {
    const regionId = this.regionOfKey(key);
    const leader = await this.waitLeader(regionId, maxTicks);
    const handle = this.startGet(leader.meta.storeId, key, regionId);
    await this.waitUntil(`an answer to get ${key}`, () => handle.result !== undefined, maxTicks);
    return handle.result!;
  }

  /** The value of `key` in store `storeId`'s engine (CF default), read directly. */
  valueOn(storeId: bigint, key: string): string | undefined {
    const bytes = this.#engines.get(storeId)!.get("default", utf8(key));
    return bytes === null ? undefined : new TextDecoder().decode(bytes);
  }

  /** A single-step membership change proposed through the leader, waiting for its answer. */
  async changePeer(
    changeType: ConfChangeType,
    peer: PeerMeta,
    maxTicks = DEFAULT_DEADLINE_TICKS,
  ): Promise<CmdResult> {
    const leader = await this.waitLeader(FIRST_REGION_ID, maxTicks);
    const cmd = changePeerCommand(leader, { changeType, peer });
    return await this.propose(leader.meta.storeId, cmd, maxTicks);
  }

  /** Starts a single-step membership change through store `storeId`'s replica; poll the handle. */
  startChangePeer(
    storeId: bigint,
    change: { changeType: ConfChangeType; peer: PeerMeta },
  ): { result: CmdResult | undefined } {
    const peer = this.store(storeId).peer(FIRST_REGION_ID);
    if (peer === undefined) {
      return {
        result: { ok: false, error: { code: "RegionNotFound", regionId: FIRST_REGION_ID } },
      };
    }
    return this.startPropose(storeId, changePeerCommand(peer, change));
  }

  /** Asks the leader to hand leadership to `peerId` and waits until it has. */
  async transferLeader(peerId: bigint, maxTicks = DEFAULT_DEADLINE_TICKS): Promise<void> {
    const leader = await this.waitLeader(FIRST_REGION_ID, maxTicks);
    this.store(leader.meta.storeId).transferLeader(FIRST_REGION_ID, peerId);
    await this.waitUntil(
      `peer ${peerId} leading`,
      () => this.leader()?.meta.id === peerId,
      maxTicks,
    );
  }
}

/** A Put of CF default. */
export function put(key: string, value: string): Modification {
  return { type: "put", cf: "default", key: utf8(key), value: utf8(value) };
}

/** A Delete of CF default. */
export function del(key: string): Modification {
  return { type: "delete", cf: "default", key: utf8(key) };
}

function readValue(r: ReadResult, key: string): GetResult {
  if (!r.ok) return r;
  try {
    const bytes = r.snapshot.get("default", utf8(key));
    return {
      ok: true,
      value: bytes === null ? undefined : new TextDecoder().decode(bytes),
      viaLease: r.viaLease,
      appliedIndex: r.appliedIndex,
    };
  } finally {
    r.snapshot.release();
  }
}

/** JSON.stringify replacer for bigints and bytes, for failure messages. */
export function replacer(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return `${value}n`;
  if (value instanceof Uint8Array) return new TextDecoder().decode(value);
  return value;
}

export { ConfChangeType };
