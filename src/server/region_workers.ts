/**
 * The main thread's side of the region-group workers (DESIGN.md §2, §4.1): starts them over the
 * store's engine, routes each request to the worker of its region by the routing table
 * (`routing_table.ts`), and matches answers to callers. A worker that dies — a bug it met, or a
 * crash — is replaced; whatever it had in flight fails with INTERNAL (a TiKV client retries
 * those), the engine counts its attachment out, and the new worker is given the regions the
 * table holds for its group: it rebuilds from disk.
 *
 * A request for a region the table does not hold goes to the worker `id % count` (any would
 * do), which answers RegionNotFound like for any region it does not serve.
 *
 * Regions change hands by `addRegion` (to the least-loaded worker) and `moveRegion` (worker A
 * drops it — new requests get RegionNotFound, running ones finish — then B loads it, with max_ts
 * raised to a fresh timestamp). At no moment do two workers serve one region: A's latches and
 * memory locks are gone before B takes requests.
 */
import type { RocksDbEngine } from "../engine/rocksdb_engine.ts";
import {
  MAX_TS_SYNC_RETRY_MS,
  REGION_MOVE_DRAIN_TIMEOUT_MS,
  WORKER_STOP_TIMEOUT_MS,
} from "../constants.ts";
import { assert } from "../util/assert.ts";
import type { LogLevel } from "./config.ts";
import type { Logger } from "./log.ts";
import type { Outcome } from "./metrics.ts";
import { migrateLegacyTtlIndex } from "./raw/ttl_index.ts";
import type { RaftEnvelope } from "../raftstore/transport.ts";
import type { EncodedTransport } from "./raft_transport/client.ts";
import { encodeEnvelope, peekKeyRange } from "./raft_transport/codec.ts";
import type { ReceivedRaftMessage } from "./raft_transport/service.ts";
import type { RaftstoreSettings, RegionOperator, SplitSpecIds } from "./worker_raftstore.ts";
import type { RegionMeta } from "../raftstore/local_state.ts";
import { compareBytes } from "../util/bytes.ts";
import { stageClock, stageNow, stagesOn, startStageDump } from "../raftstore/worker/stage_clock.ts";
import { type Region, STANDALONE, standaloneRegion } from "./region.ts";
import { describeRoutingFailure, type RoutingFailure, RoutingTable } from "./routing_table.ts";
import { InlineWorker, type WorkerFace } from "./inline_worker.ts";
import type { BatchFrame } from "./wire.ts";
import {
  type FailureCode,
  type FromWorker,
  LayoutWriter,
  MAX_BATCH_ID,
  type OutboundRaftMessages,
  ownBuffer,
  packInboundRaft,
  raftMessageAt,
  type ToWorker,
  type WorkerSettings,
  type WorkerStats,
  type WorkerTestHooks,
} from "./worker_protocol.ts";

/** The answer to a unary request. */
export type UnaryResult =
  | { ok: true; bytes: Uint8Array; outcome: Outcome }
  | { ok: false; code: FailureCode; details: string };

/**
 * Some answers of a batch, or its failure. `frame` is a complete `BatchCommandsResponse` (a
 * view of a buffer no one else uses); answer `n` of the part is the batch's sub-request
 * `layout[at + 2n]` with outcome code `layout[at + 2n + 1]` (see `worker_protocol.ts`).
 */
export type BatchPart =
  | { ok: true; frame: Uint8Array; layout: Int32Array; at: number; count: number; done: boolean }
  | { ok: false; code: FailureCode; details: string };

/** Sub-requests of one BatchCommands message for one worker: `indexes` into `frame`, each with its command code. */
export interface BatchSubmission {
  frame: BatchFrame;
  indexes: number[];
  codes: number[];
}

const START_TIMEOUT_MS = 30_000;
/** Why a request that comes during or after `stop()` fails. */
const STOPPING = "the store is shutting down";

/** What `RegionWorkers.stop` achieved. */
export interface WorkersStopResult {
  /** Every worker detached from the engine: the database may be closed. */
  detached: boolean;
  /** Groups whose worker did not say "stopped" within the timeout (it may hold handles). */
  stuckGroups: number[];
}

/** Why a region move did not happen (besides the table's own refusals). */
export type MoveFailure =
  | RoutingFailure
  | { code: "RegionMoving"; regionId: bigint }
  | { code: "DrainTimeout"; regionId: bigint; group: number; timeoutMs: number }
  | { code: "Stopping" };

/** A readable sentence for `failure`. */
export function describeMoveFailure(failure: MoveFailure): string {
  switch (failure.code) {
    case "RegionMoving":
      return `region ${failure.regionId} is already being moved`;
    case "DrainTimeout":
      return `worker ${failure.group} did not give up region ${failure.regionId} within ` +
        `${failure.timeoutMs} ms; it serves the region still`;
    case "Stopping":
      return "the store is shutting down";
    default:
      return describeRoutingFailure(failure);
  }
}

/** Start-up settings shared by every worker; each gets its own `groupId` and `regions`. */
type SharedSettings = Omit<WorkerSettings, "groupId" | "regions" | "latestTs">;

/** One worker and what it owes. */
class Slot {
  worker!: WorkerFace;
  readonly unary = new Map<number, (result: UnaryResult) => void>();
  readonly batches = new Map<number, (part: BatchPart) => void>();
  /** Regions this worker was asked to load or drop, waiting for its word. */
  readonly added = new Map<bigint, () => void>();
  readonly dropped = new Map<bigint, (dropped: boolean) => void>();
  ready!: Promise<void>;
  /** The worker's last "stats" (`WorkerStats`); empty until its first. */
  stats: WorkerStats = {};
  /** Whether the current worker attached to the engine (and so must detach or be counted out). */
  attached = false;
  stopped: (() => void) | null = null;

  constructor(readonly groupId: number) {}
}

/** Options of `RegionWorkers.start`. */
export interface RegionWorkerOptions {
  count: number;
  /**
   * The bodies run on this thread (`inline_worker.ts`, `store-pool-size = 0`) instead of in
   * threads of their own; `count` is then 1.
   */
  inline?: boolean;
  engine: RocksDbEngine;
  syncLog: boolean;
  /** Seeds each worker's max_ts (see `WorkerSettings.latestTs`). */
  latestTs: () => bigint;
  logLevel: LogLevel;
  ttlCheckPollIntervalMs: number;
  log: Logger;
  /** The regions served at start; default: the standalone store's one region. */
  regions?: Region[];
  /** This store's id (1 standalone). */
  storeId?: bigint;
  /**
   * Clustered: a fresh PD timestamp, for a new leader's max-ts sync (`WorkerSettings.syncMaxTs`);
   * absent: standalone, no sync needed.
   */
  fetchTs?: () => Promise<bigint>;
  /** The store's snapshot directory (SST region snapshots); inline snapshots when absent. */
  snapshotDir?: string;
  /** `[raftstore]` timing and log compaction; the defaults when absent. */
  raftstore?: RaftstoreSettings;
  /**
   * Where the workers' Raft messages to other stores go (dropped when absent: standalone):
   * encoded ones to `sendEncoded` (a view of the worker's buffer: what waits past this turn is
   * copied there), SST-form snapshots as envelopes to `send`.
   */
  sendRaft?: EncodedTransport;
  /** Test-only worker behaviour (`WorkerTestHooks`). */
  testHooks?: WorkerTestHooks;
  /**
   * Ids for the new regions of a split (PD's AskBatchSplit, or the embedded PD's); without it
   * the workers refuse splits.
   */
  askSplitIds?: (region: RegionMeta, count: number) => Promise<SplitSpecIds[]>;
  /** A split proposed by a leader here applied (PD's ReportBatchSplit). */
  onSplit?: (regions: RegionMeta[]) => void;
}

/** A region and the worker serving it (the status server's `/regions`). */
export interface ServedRegion {
  region: Region;
  worker: number;
}

/** Stage names of the main thread (stage_clock.ts). */
export const MAIN_STAGES = {
  /** A BatchCommands message posted to its worker → its last answers back on this thread. */
  workerBatch: "main.workerBatch",
} as const;

/** `deliver` timing its batch from now to its last part (stage clocks only). */
function timedDelivery(deliver: (part: BatchPart) => void): (part: BatchPart) => void {
  const start = stageNow();
  return (part) => {
    if (!part.ok || part.done) stageClock.record(MAIN_STAGES.workerBatch, stageNow() - start);
    deliver(part);
  };
}

/** `store-pool-size` as `RegionWorkers.start` options: 0 runs one body on the main thread. */
export function poolOptions(storePoolSize: number): { count: number; inline: boolean } {
  return storePoolSize === 0 ? { count: 1, inline: true } : { count: storePoolSize, inline: false };
}

/** The pool of region-group workers of one store. */
export class RegionWorkers {
  readonly #slots: Slot[];
  readonly #options: RegionWorkerOptions;
  readonly #shared: SharedSettings;
  readonly #table: RoutingTable;
  /** Every region of the table, by id. */
  readonly #regions = new Map<bigint, Region>();
  /** Regions between "dropRegion" and their load by the next worker. */
  readonly #moving = new Set<bigint>();
  #nextId = 1;
  #stopping = false;
  readonly #layout = new LayoutWriter();
  #stopStageDump: () => void = () => {};

  private constructor(options: RegionWorkerOptions) {
    this.#options = options;
    this.#stopStageDump = startStageDump(
      (message, fields) => options.log.info(message, fields),
      `main of store ${options.storeId ?? STANDALONE.storeId}`,
    );
    this.#shared = {
      engine: options.engine.share(),
      syncLog: options.syncLog,
      logLevel: options.logLevel,
      ttlCheckPollIntervalMs: options.ttlCheckPollIntervalMs,
      testHooks: options.testHooks,
      storeId: options.storeId ?? STANDALONE.storeId,
      raftstore: options.raftstore,
      syncMaxTs: options.fetchTs !== undefined,
      snapshotDir: options.snapshotDir,
    };
    this.#table = new RoutingTable(options.count);
    this.#slots = Array.from({ length: options.count }, (_, groupId) => new Slot(groupId));
    for (const region of options.regions ?? [standaloneRegion()]) {
      const placed = this.#table.add(region.id);
      if (typeof placed !== "number") throw new Error(describeRoutingFailure(placed));
      this.#regions.set(region.id, region);
    }
  }

  /**
   * Starts `options.count` workers and waits until each has attached to the engine. Before the
   * first starts, the raw TTL index of an older store is rewritten into the per-region layout
   * (`migrateLegacyTtlIndex`), so no worker ever reads the old one.
   */
  static async start(options: RegionWorkerOptions): Promise<RegionWorkers> {
    if (!Number.isSafeInteger(options.count) || options.count < 1) {
      throw new Error(`region workers: count must be at least 1, got ${options.count}`);
    }
    if (options.inline === true && options.count !== 1) {
      throw new Error(`region workers: inline runs one body, not ${options.count}`);
    }
    const migrated = migrateLegacyTtlIndex(options.engine);
    if (migrated.moved + migrated.dropped > 0) {
      options.log.info("raw TTL index rewritten into the per-region layout", { ...migrated });
    }
    const pool = new RegionWorkers(options);
    for (const slot of pool.#slots) pool.#spawn(slot);
    await Promise.all(pool.#slots.map((slot) => slot.ready));
    return pool;
  }

  get count(): number {
    return this.#slots.length;
  }

  /**
   * The worker group for a request naming region `regionId`: the table's, or, for a region it
   * does not hold, `regionId % count` (that worker answers RegionNotFound).
   */
  groupOf(regionId: number): number {
    return this.#table.groupOf(BigInt(regionId)) ?? regionId % this.#slots.length;
  }

  /** The worker serving region `regionId`, or undefined when no worker does. */
  workerOf(regionId: bigint): number | undefined {
    return this.#table.groupOf(regionId);
  }

  /**
   * Every region with the worker serving it, by region id (a replica still waiting for its
   * first snapshot is left out: its range is not known yet).
   */
  regions(): ServedRegion[] {
    return this.#table.entries()
      .sort((a, b) => a.regionId < b.regionId ? -1 : a.regionId > b.regionId ? 1 : 0)
      .filter(({ regionId }) => this.#regions.has(regionId))
      .map(({ regionId, group }) => ({ region: this.#regions.get(regionId)!, worker: group }));
  }

  /**
   * The raftstores' figures for /metrics, summed over the workers: the counters (`_total`)
   * keep what replaced workers had counted, so they never go back; gauges are the live ones'.
   */
  raftstoreMetrics(): WorkerStats {
    const sum: WorkerStats = { ...this.#retiredCounters };
    for (const slot of this.#slots) {
      for (const [name, value] of Object.entries(slot.stats)) sum[name] = (sum[name] ?? 0) + value;
    }
    return sum;
  }

  /** Counters of workers that died, carried into `raftstoreMetrics`. */
  readonly #retiredCounters: WorkerStats = {};

  /** Calls `listener` with the regions that appeared or changed (epoch, peers, leadership). */
  onRegionsChanged(listener: (changed: Region[]) => void): void {
    this.#regionsChanged = listener;
  }

  #regionsChanged: ((changed: Region[]) => void) | null = null;

  /** Fetches a PD timestamp for a new leader's max_ts, retrying until it comes or we stop. */
  #syncMaxTs(slot: Slot, regionId: bigint, term: bigint): void {
    const fetch = this.#options.fetchTs;
    if (fetch === undefined || this.#stopping) return;
    fetch().then((ts) => {
      if (!this.#stopping) this.#post(slot, { kind: "maxTs", regionId, term, ts });
    }, (error: unknown) => {
      this.#options.log.warn("max-ts sync: no timestamp from PD; retrying", {
        region: String(regionId),
        error: error instanceof Error ? error.message : String(error),
      });
      setTimeout(() => this.#syncMaxTs(slot, regionId, term), MAX_TS_SYNC_RETRY_MS);
    });
  }

  /** Hands a PD operator to the worker of region `regionId` (ignored for a region not here). */
  operator(regionId: bigint, operator: RegionOperator): void {
    const group = this.#table.groupOf(regionId);
    if (group === undefined || this.#stopping) return;
    this.#post(this.#slots[group]!, { kind: "operator", regionId, operator });
  }

  /**
   * Raft messages from other stores, undecoded (`raftService`): each goes to the worker of its
   * region, which decodes and checks it; a message for a region the table does not hold goes to
   * the least-loaded worker, which creates the replica when the message allows it
   * (src/raftstore/store.ts). Each worker's share crosses as one transferred buffer, in order.
   */
  deliverRaft(messages: readonly ReceivedRaftMessage[]): void {
    if (this.#stopping) return;
    const perGroup = new Map<number, Uint8Array[]>();
    for (const { regionId, bytes } of messages) {
      let group = this.#table.groupOf(regionId);
      if (group === undefined) {
        // A region whose range a region here covers is one a split here will make: its
        // messages go to that region's worker, which drops them until the split applies.
        const range = peekKeyRange(bytes);
        // The service read the message's framing already (`peekRegionId`, the same scan).
        assert(range.ok, "a delivered Raft message's framing was checked", {
          regionId,
          problem: range.ok ? "" : range.problem,
        });
        group = this.#groupCovering(range.value.startKey, range.value.endKey);
      }
      if (group === undefined) {
        const placed = this.#table.add(regionId);
        if (typeof placed !== "number") continue;
        group = placed;
      }
      let list = perGroup.get(group);
      if (list === undefined) perGroup.set(group, list = []);
      list.push(bytes);
    }
    for (const [group, list] of perGroup) {
      const packed = packInboundRaft(list);
      this.#post(this.#slots[group]!, { kind: "raft", messages: packed }, [
        packed.data.buffer as ArrayBuffer,
      ]);
    }
  }

  /**
   * Raft envelopes from other stores as objects (a snapshot received on its own stream,
   * `snapshotService`): encoded, then delivered as `deliverRaft` delivers bytes, so that a
   * worker receives Raft messages one way only.
   */
  deliverRaftEnvelopes(envelopes: readonly RaftEnvelope[]): void {
    this.deliverRaft(
      envelopes.map((envelope) => ({
        regionId: envelope.regionId,
        bytes: encodeEnvelope(envelope),
      })),
    );
  }

  /**
   * The worker of a region served here whose range meets [startKey, endKey), if any: a linear
   * walk, taken only for messages of regions this store does not serve.
   */
  #groupCovering(startKey: Uint8Array, endKey: Uint8Array): number | undefined {
    for (const region of this.#regions.values()) {
      const startsBeforeEnd = endKey.length === 0 || compareBytes(region.startKey, endKey) < 0;
      const endsAfterStart = region.endKey.length === 0 ||
        compareBytes(startKey, region.endKey) < 0;
      if (startsBeforeEnd && endsAfterStart) return this.#table.groupOf(region.id);
    }
    return undefined;
  }

  /**
   * Adds `region` to the least-loaded worker (or `options.worker`: a split region joins its
   * parent's); resolves with the worker once it serves the region.
   */
  addRegion(region: Region, options: { worker?: number } = {}): Promise<number | MoveFailure> {
    if (this.#stopping) return Promise.resolve({ code: "Stopping" });
    const group = this.#table.add(region.id, { group: options.worker });
    if (typeof group !== "number") return Promise.resolve(group);
    this.#regions.set(region.id, region);
    return this.#load(this.#slots[group]!, region).then(() => group);
  }

  /**
   * Moves region `regionId` to worker `to`: its worker gives it up (new requests answered
   * RegionNotFound, running commands, GC and sweeps finished), then `to` loads it. If the worker
   * does not give it up within REGION_MOVE_DRAIN_TIMEOUT_MS, it is given the region back and the
   * move fails. Resolves once `to` serves it.
   */
  async moveRegion(
    regionId: bigint,
    to: number,
  ): Promise<{ from: number; to: number } | MoveFailure> {
    if (this.#stopping) return { code: "Stopping" };
    const from = this.#table.groupOf(regionId);
    if (from === undefined) return { code: "RegionUnknown", regionId };
    if (this.#moving.has(regionId)) return { code: "RegionMoving", regionId };
    if (!Number.isSafeInteger(to) || to < 0 || to >= this.#slots.length) {
      return { code: "NoSuchGroup", group: to, groups: this.#slots.length };
    }
    if (from === to) return { from, to };
    const region = this.#regions.get(regionId);
    assert(region !== undefined, "every region of the table has its metadata", { regionId });
    this.#moving.add(regionId);
    try {
      const dropped = await this.#drop(this.#slots[from]!, regionId, () => {
        // The worker gave the region up. In this same turn the table sends the region's
        // requests to `to`, and `to` gets "addRegion" before any of them.
        const left = this.#table.move(regionId, to);
        assert(left === from, "a moving region stays in the table", { regionId, from, to });
        return this.#load(this.#slots[to]!, region);
      });
      if (dropped !== null) {
        await dropped.loaded;
        return { from, to };
      }
      if (this.#stopping) return { code: "Stopping" };
      // Not drained in time: the worker serves the region again, and the move fails.
      await this.#load(this.#slots[from]!, region);
      return {
        code: "DrainTimeout",
        regionId,
        group: from,
        timeoutMs: REGION_MOVE_DRAIN_TIMEOUT_MS,
      };
    } finally {
      this.#moving.delete(regionId);
    }
  }

  /**
   * Asks `slot`'s worker to give up `regionId`. When it has (or died: a dead worker serves
   * nothing), `onDropped` runs at once, in the turn that learnt it, and its promise comes back;
   * null on timeout or stop.
   */
  #drop(
    slot: Slot,
    regionId: bigint,
    onDropped: () => Promise<void>,
  ): Promise<{ loaded: Promise<void> } | null> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => settle(false), REGION_MOVE_DRAIN_TIMEOUT_MS);
      const settle = (dropped: boolean) => {
        clearTimeout(timer);
        slot.dropped.delete(regionId);
        resolve(dropped ? { loaded: onDropped() } : null);
      };
      slot.dropped.set(regionId, settle);
      this.#post(slot, { kind: "dropRegion", regionId });
    });
  }

  /** Tells `slot`'s worker to serve `region`; resolves once it does (or died: its successor does). */
  #load(slot: Slot, region: Region): Promise<void> {
    return new Promise((resolve) => {
      slot.added.set(region.id, resolve);
      this.#postAdd(slot, region);
    });
  }

  #postAdd(slot: Slot, region: Region): void {
    this.#post(slot, { kind: "addRegion", region, latestTs: this.#options.latestTs() });
  }

  #spawn(slot: Slot): void {
    const worker = this.#options.inline === true
      ? new InlineWorker()
      : new Worker(new URL("./region_worker.ts", import.meta.url).href, { type: "module" });
    slot.worker = worker;
    let markReady!: () => void;
    let failStart!: (error: Error) => void;
    slot.ready = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      failStart = reject;
    });
    const timer = setTimeout(
      () => failStart(new Error(`region worker ${slot.groupId} did not start`)),
      START_TIMEOUT_MS,
    );
    slot.ready.then(() => clearTimeout(timer), () => clearTimeout(timer));
    worker.onmessage = (event: MessageEvent<FromWorker>) =>
      this.#receive(slot, event.data, markReady);
    worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      clearTimeout(timer);
      this.#died(slot, event.message ?? "unknown error");
      failStart(new Error(`region worker ${slot.groupId} failed: ${event.message}`));
    };
    // The worker learns its regions from the table (a replacement: those of its predecessor,
    // rebuilt from disk), and must not go below reads its predecessor served: a fresh ts.
    const regions = this.#table.regionsOf(slot.groupId).flatMap((id) => {
      const region = this.#regions.get(id);
      return region === undefined ? [] : [region];
    });
    const settings: WorkerSettings = {
      ...this.#shared,
      groupId: slot.groupId,
      regions,
      latestTs: this.#options.latestTs(),
    };
    this.#post(slot, { kind: "init", settings });
  }

  #receive(slot: Slot, message: FromWorker, markReady: () => void): void {
    switch (message.kind) {
      case "ready":
        slot.attached = true;
        markReady();
        return;
      case "unary": {
        const resolve = slot.unary.get(message.id);
        slot.unary.delete(message.id);
        resolve?.({ ok: true, bytes: message.bytes, outcome: message.outcome });
        return;
      }
      case "unaryFailed": {
        const resolve = slot.unary.get(message.id);
        slot.unary.delete(message.id);
        resolve?.({ ok: false, code: message.code, details: message.details });
        return;
      }
      case "batch":
        this.#deliverAnswers(slot, message.answers.layout, message.answers.data);
        return;
      case "batchFailed": {
        const deliver = slot.batches.get(message.id);
        slot.batches.delete(message.id);
        deliver?.({ ok: false, code: message.code, details: message.details });
        return;
      }
      case "log":
        this.#options.log[message.level](message.message, {
          ...message.fields,
          group: slot.groupId,
        });
        return;
      case "regionAdded": {
        const resolve = slot.added.get(message.regionId);
        slot.added.delete(message.regionId);
        resolve?.();
        return;
      }
      case "regionDropped":
        // Absent when the move timed out meanwhile (the region was given back).
        slot.dropped.get(message.regionId)?.(true);
        return;
      case "raft":
        this.#sendRaft(message.messages);
        return;
      case "raftSnapshots":
        for (const envelope of message.envelopes) this.#options.sendRaft?.send(envelope);
        return;
      case "needMaxTs":
        this.#syncMaxTs(slot, message.regionId, message.term);
        return;
      case "askSplitIds": {
        const ask = this.#options.askSplitIds;
        const answer = (ids: SplitSpecIds[] | null, error: string) => {
          if (!this.#stopping) {
            this.#post(slot, { kind: "splitIds", requestId: message.requestId, ids, error });
          }
        };
        if (ask === undefined) answer(null, "this store cannot split regions");
        else {
          ask(message.region, message.count).then(
            (ids) => answer(ids, ""),
            (error: unknown) =>
              answer(null, error instanceof Error ? error.message : String(error)),
          );
        }
        return;
      }
      case "regionsSplit":
        this.#options.onSplit?.(message.regions);
        return;
      case "needRegion": {
        // A CommitMerge in this worker waits for the source region another worker runs.
        const from = this.#table.groupOf(message.regionId);
        if (from === undefined || from === slot.groupId || this.#moving.has(message.regionId)) {
          return;
        }
        this.moveRegion(message.regionId, slot.groupId).then((moved) => {
          if ("code" in moved) {
            this.#options.log.warn("a merge's source region could not be moved", {
              region: String(message.regionId),
              code: moved.code,
            });
          }
        });
        return;
      }
      case "regionsChanged":
        for (const region of message.changed) {
          this.#regions.set(region.id, region);
          // A region a split made here runs in its parent's worker.
          if (this.#table.groupOf(region.id) === undefined) {
            this.#table.add(region.id, { group: slot.groupId });
          }
        }
        if (message.changed.length > 0) this.#regionsChanged?.(message.changed);
        for (const regionId of message.removed) {
          // A replica removed from its region (destroyed): no worker serves it any more.
          if (this.#table.groupOf(regionId) !== slot.groupId || this.#moving.has(regionId)) {
            continue;
          }
          this.#table.remove(regionId);
          this.#regions.delete(regionId);
        }
        return;
      case "stats":
        slot.stats = message.stats;
        return;
      case "stopped":
        // The worker closed its engine, which counted its attachment out.
        slot.attached = false;
        slot.stopped?.();
        return;
    }
  }

  /** Hands each of a worker's encoded Raft messages to `sendRaft`, undecoded. */
  #sendRaft(messages: OutboundRaftMessages): void {
    const transport = this.#options.sendRaft;
    if (transport === undefined) return;
    const { ids, msgTypes } = messages;
    for (let i = 0; i < messages.ends.length; i++) {
      transport.sendEncoded(ids[2 * i + 1]!, raftMessageAt(messages, i), {
        regionId: ids[2 * i]!,
        msgType: msgTypes[i]!,
      });
    }
  }

  /**
   * A worker died: fail what it owed, count its engine attachment out, start another. A region
   * it was giving up counts as given up (a dead worker serves nothing) before the successor
   * starts, so the successor is not given it; a region it was loading, the successor loads.
   */
  #died(slot: Slot, reason: string): void {
    this.#options.log.error("region worker died", { group: slot.groupId, reason });
    for (const [name, value] of Object.entries(slot.stats)) {
      if (name.endsWith("_total")) {
        this.#retiredCounters[name] = (this.#retiredCounters[name] ?? 0) + value;
      }
    }
    slot.stats = {};
    slot.worker.terminate();
    this.#failOwed(slot, `region worker ${slot.groupId} died: ${reason}`);
    this.#forget(slot);
    for (const settle of [...slot.dropped.values()]) settle(true);
    slot.stopped?.(); // a stop waiting for it need not wait longer
    if (!this.#stopping) this.#spawn(slot);
    const added = [...slot.added.values()];
    slot.added.clear();
    for (const resolve of added) resolve();
  }

  /** Fails every request `slot` still owes an answer to. */
  #failOwed(slot: Slot, details: string): void {
    for (const resolve of slot.unary.values()) resolve({ ok: false, code: "internal", details });
    for (const deliver of slot.batches.values()) deliver({ ok: false, code: "internal", details });
    slot.unary.clear();
    slot.batches.clear();
  }

  #forget(slot: Slot): void {
    if (!slot.attached) return;
    slot.attached = false;
    this.#options.engine.forgetAttachment();
  }

  #post(slot: Slot, message: ToWorker, transfer: Transferable[] = []): void {
    slot.worker.postMessage(message, transfer);
  }

  /** Runs unary `name` with request `bytes` in the worker serving `regionId` (see `groupOf`). */
  unary(regionId: number, name: string, bytes: Uint8Array): Promise<UnaryResult> {
    const slot = this.#slots[this.groupOf(regionId)]!;
    if (this.#stopping) return Promise.resolve({ ok: false, code: "internal", details: STOPPING });
    const id = this.#nextBatchId();
    const copy = ownBuffer(bytes);
    return new Promise((resolve) => {
      slot.unary.set(id, resolve);
      this.#post(slot, { kind: "unary", id, name, bytes: copy }, [copy.buffer as ArrayBuffer]);
    });
  }

  /**
   * Runs BatchCommands sub-requests in worker `group`; `deliver` receives the answers part by
   * part, the last with `done`.
   *
   * Posted at once, one message per BatchCommands message: holding messages back to merge them
   * (to the end of the microtasks, or of the turn) was measured to cost throughput (gets at 256
   * in flight: 150k → 125k/s) although it saved CPU, because the worker then runs two messages'
   * sub-requests while the main thread waits, instead of the main thread answering the first
   * while the worker runs the second.
   */
  batch(group: number, submission: BatchSubmission, deliver: (part: BatchPart) => void): void {
    const slot = this.#slots[group]!;
    if (this.#stopping) return deliver({ ok: false, code: "internal", details: STOPPING });
    const id = this.#nextBatchId();
    slot.batches.set(id, stagesOn ? timedDelivery(deliver) : deliver);
    this.#postBatches(slot, [{ id, submission }]);
  }

  #nextBatchId(): number {
    const id = this.#nextId;
    this.#nextId = id >= MAX_BATCH_ID ? 1 : id + 1;
    return id;
  }

  #postBatches(slot: Slot, queued: { id: number; submission: BatchSubmission }[]): void {
    const layout = this.#layout;
    let size = 0;
    for (const { id, submission: { frame, indexes, codes } } of queued) {
      layout.push(id);
      layout.push(indexes.length);
      for (let n = 0; n < indexes.length; n++) {
        const i = indexes[n]!;
        const bodyBytes = frame.bodyEnds[i]! - frame.bodyStarts[i]!;
        const idBytes = frame.idEnds[i]! - frame.idStarts[i]!;
        layout.push(codes[n]!);
        layout.push(bodyBytes);
        layout.push(idBytes);
        size += bodyBytes + idBytes;
      }
    }
    const data = new Uint8Array(new ArrayBuffer(size));
    let pos = 0;
    for (const { submission: { frame, indexes } } of queued) {
      for (const i of indexes) {
        const body = frame.bytes.subarray(frame.bodyStarts[i]!, frame.bodyEnds[i]!);
        data.set(body, pos);
        pos += body.length;
        const requestId = frame.bytes.subarray(frame.idStarts[i]!, frame.idEnds[i]!);
        data.set(requestId, pos);
        pos += requestId.length;
      }
    }
    const words = layout.take();
    this.#post(slot, { kind: "batch", requests: { layout: words, data } }, [
      words.buffer,
      data.buffer,
    ]);
  }

  /** Hands each part of a worker's answers to its batch (see `BatchAnswers`). */
  #deliverAnswers(slot: Slot, layout: Int32Array, data: Uint8Array): void {
    let at = 0;
    let pos = 0;
    while (at < layout.length) {
      const id = layout[at]!;
      const done = layout[at + 1] === 1;
      const frameBytes = layout[at + 2]!;
      const count = layout[at + 3]!;
      at += 4;
      const deliver = slot.batches.get(id);
      if (done) slot.batches.delete(id);
      deliver?.({ ok: true, frame: data.subarray(pos, pos + frameBytes), layout, at, count, done });
      at += 2 * count;
      pos += frameBytes;
    }
  }

  /** Tells every worker the GC safe point advanced to `safePoint`. */
  gc(safePoint: bigint): void {
    for (const slot of this.#slots) this.#post(slot, { kind: "gc", safePoint });
  }

  /**
   * Stops every worker: each refuses new requests, waits until its durable writes have left
   * RocksDB, closes its attachment and says "stopped". The wait is bounded by `timeoutMs`
   * (default WORKER_STOP_TIMEOUT_MS) for all workers together. A worker that does not answer
   * in time is NOT terminated or counted out: it may be inside a native call, or have one
   * running on Deno's thread pool, so the database must stay open (see `detached`). A late
   * "stopped" still counts it out.
   */
  async stop(options: { timeoutMs?: number } = {}): Promise<WorkersStopResult> {
    this.#stopping = true;
    this.#stopStageDump();
    // Moves in progress end: a drop not yet done fails, a load waits no longer.
    for (const slot of this.#slots) {
      for (const settle of [...slot.dropped.values()]) settle(false);
      for (const resolve of slot.added.values()) resolve();
      slot.added.clear();
    }
    const timeoutMs = options.timeoutMs ?? WORKER_STOP_TIMEOUT_MS;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<void>((resolve) => timer = setTimeout(resolve, timeoutMs));
    const stuckGroups: number[] = [];
    await Promise.all(this.#slots.map(async (slot) => {
      if (!slot.attached) return; // died and counted out, or never attached
      const stopped = new Promise<void>((resolve) => slot.stopped = resolve);
      this.#post(slot, { kind: "stop" });
      await Promise.race([stopped, late]);
      if (slot.attached) {
        stuckGroups.push(slot.groupId);
      } else {
        slot.worker.terminate();
        this.#failOwed(slot, STOPPING); // answers it posted after "stopped" are lost with it
      }
    }));
    clearTimeout(timer);
    for (const group of stuckGroups) {
      this.#options.log.warn("region worker did not stop in time; it may still use the engine", {
        group,
        timeoutMs,
      });
    }
    const detached = stuckGroups.length === 0 && this.#options.engine.attachedCount === 0;
    return { detached, stuckGroups: stuckGroups.sort((a, b) => a - b) };
  }
}
