/**
 * The main thread's side of the region-group workers (DESIGN.md §2): starts them over the
 * store's engine, routes each request to the worker of its region (`region_id % count`), and
 * matches answers to callers. A worker that dies is replaced; whatever it had in flight fails
 * with INTERNAL (a TiKV client retries those), and the engine counts its attachment out.
 */
import type { RocksDbEngine } from "../engine/rocksdb_engine.ts";
import { WORKER_STOP_TIMEOUT_MS } from "../constants.ts";
import type { LogLevel } from "./config.ts";
import type { Logger } from "./log.ts";
import type { Outcome } from "./metrics.ts";
import type { BatchFrame } from "./wire.ts";
import {
  type FailureCode,
  type FromWorker,
  LayoutWriter,
  MAX_BATCH_ID,
  ownBuffer,
  type ToWorker,
  type WorkerSettings,
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

/** One worker and what it owes. */
class Slot {
  worker!: Worker;
  readonly unary = new Map<number, (result: UnaryResult) => void>();
  readonly batches = new Map<number, (part: BatchPart) => void>();
  ready!: Promise<void>;
  /** Whether the current worker attached to the engine (and so must detach or be counted out). */
  attached = false;
  stopped: (() => void) | null = null;

  constructor(readonly settings: WorkerSettings) {}
}

/** Options of `RegionWorkers.start`. */
export interface RegionWorkerOptions {
  count: number;
  engine: RocksDbEngine;
  syncLog: boolean;
  /** Seeds each worker's max_ts (see `WorkerSettings.latestTs`). */
  latestTs: () => bigint;
  logLevel: LogLevel;
  ttlCheckPollIntervalMs: number;
  log: Logger;
}

/** The pool of region-group workers of one store. */
export class RegionWorkers {
  readonly #slots: Slot[];
  readonly #options: RegionWorkerOptions;
  #nextId = 1;
  #stopping = false;
  readonly #layout = new LayoutWriter();

  private constructor(options: RegionWorkerOptions) {
    this.#options = options;
    this.#slots = Array.from({ length: options.count }, (_, groupId) =>
      new Slot({
        groupId,
        groups: options.count,
        engine: options.engine.share(),
        syncLog: options.syncLog,
        latestTs: 0n,
        logLevel: options.logLevel,
        ttlCheckPollIntervalMs: options.ttlCheckPollIntervalMs,
      }));
  }

  /** Starts `options.count` workers and waits until each has attached to the engine. */
  static async start(options: RegionWorkerOptions): Promise<RegionWorkers> {
    if (!Number.isSafeInteger(options.count) || options.count < 1) {
      throw new Error(`region workers: count must be at least 1, got ${options.count}`);
    }
    const pool = new RegionWorkers(options);
    for (const slot of pool.#slots) pool.#spawn(slot);
    await Promise.all(pool.#slots.map((slot) => slot.ready));
    return pool;
  }

  get count(): number {
    return this.#slots.length;
  }

  /** The worker group serving region `regionId`. */
  groupOf(regionId: number): number {
    return regionId % this.#slots.length;
  }

  #spawn(slot: Slot): void {
    const worker = new Worker(new URL("./region_worker.ts", import.meta.url).href, {
      type: "module",
    });
    slot.worker = worker;
    let markReady!: () => void;
    let failStart!: (error: Error) => void;
    slot.ready = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      failStart = reject;
    });
    const timer = setTimeout(
      () => failStart(new Error(`region worker ${slot.settings.groupId} did not start`)),
      START_TIMEOUT_MS,
    );
    slot.ready.then(() => clearTimeout(timer), () => clearTimeout(timer));
    worker.onmessage = (event: MessageEvent<FromWorker>) =>
      this.#receive(slot, event.data, markReady);
    worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      clearTimeout(timer);
      this.#died(slot, event.message ?? "unknown error");
      failStart(new Error(`region worker ${slot.settings.groupId} failed: ${event.message}`));
    };
    // A replacement worker must not go below reads its predecessor served: a fresh ts.
    const settings = { ...slot.settings, latestTs: this.#options.latestTs() };
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
          group: slot.settings.groupId,
        });
        return;
      case "stopped":
        // The worker closed its engine, which counted its attachment out.
        slot.attached = false;
        slot.stopped?.();
        return;
    }
  }

  /** A worker died: fail what it owed, count its engine attachment out, start another. */
  #died(slot: Slot, reason: string): void {
    this.#options.log.error("region worker died", { group: slot.settings.groupId, reason });
    slot.worker.terminate();
    this.#failOwed(slot, `region worker ${slot.settings.groupId} died: ${reason}`);
    this.#forget(slot);
    slot.stopped?.(); // a stop waiting for it need not wait longer
    if (!this.#stopping) this.#spawn(slot);
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

  /** Runs unary `name` with request `bytes` in the worker of `regionId`. */
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
    slot.batches.set(id, deliver);
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
        stuckGroups.push(slot.settings.groupId);
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
