/**
 * A region-group worker's body (DESIGN.md §2): it attaches to the store's one RocksDB handle and
 * runs the commands of the regions in its group, in a Web Worker of its own (`region_worker.ts`) or
 * on the main thread (`inline_worker.ts`, `store-pool-size = 0`): the same code and the same
 * messages either way, posted through a `RegionWorkerPort`. Which regions those are, the main
 * thread says (its routing table, `routing_table.ts`): in "init", then "addRegion" and
 * "dropRegion"; a dropped region is answered "regionDropped" only once none of its commands, GC or
 * sweep runs here any more. It decodes each request (refusing a malformed one), runs it, and posts
 * the encoded response back.
 *
 * A command that throws an expected failure (`worker_errors.ts`) is answered INTERNAL and the
 * worker goes on; anything else — a failed assertion first — is a bug: the worker logs it with its
 * fields, takes no more work, and ends (`RegionWorkerPort.die`), so the main thread fails what it
 * owed and starts another from disk. A BatchCommands part is answered as its sub-requests complete:
 * everything finished in one wave of microtasks goes back in one message, so a slow sub-request
 * never holds up the quick ones. The answers of one BatchCommands message gather within one shared
 * budget (BATCH_COMMANDS_MAX_ANSWER_BYTES) and go back as response messages of at most
 * ANSWER_MAX_BYTES each.
 *
 * Started by `region_workers.ts`; the messages are in `worker_protocol.ts`.
 */
import $protobuf from "protobufjs/minimal.js";
import { RocksDbEngine, WritesFencedError } from "../engine/rocksdb_engine.ts";
import {
  ANSWER_MAX_BYTES,
  BATCH_COMMANDS_MAX_ANSWER_BYTES,
  GRPC_MAX_MESSAGE_BYTES,
  WORKER_STATS_INTERVAL_MS,
  WORKER_STOP_POLL_MS,
  WORKER_WRITER_RETAIN_BYTES,
} from "../constants.ts";
import { AnswerBudget, unaryBudget } from "./answer_budget.ts";
import type { AnyCommand } from "./command.ts";
import { COMMANDS_BY_NAME } from "./commands.ts";
import { type LogFields, RepeatLimiter } from "./log.ts";
import { outcomeOf } from "./metrics.ts";
import { newRawStore } from "./raw/mod.ts";
import { startTtlSweeper, type TtlSweeper } from "./raw/ttl_sweeper.ts";
import type { Region } from "./region.ts";
import { runCommand } from "./respond.ts";
import type { StoreServices } from "./services.ts";
import { newTxnStore } from "./txn/store.ts";
import { runGc } from "./txn/gc.ts";
import { type SplitSpecIds, WorkerRaftstore } from "./worker_raftstore.ts";
import { SnapshotDir, travelsAsSstFiles } from "./raft_transport/snapshot_files.ts";
import { decodeEnvelope } from "./raft_transport/codec.ts";
import type { RaftEnvelope } from "../raftstore/transport.ts";
import { batchFieldOf } from "./wire.ts";
import {
  BATCH_COMMANDS,
  type BatchRequests,
  type FailureCode,
  type FromWorker,
  LayoutWriter,
  OUTCOMES,
  packOutboundRaft,
  raftMessageAt,
  type RaftMessageBatch,
  type ToWorker,
  type WorkerSettings,
  type WorkerTestHooks,
} from "./worker_protocol.ts";
import type { LogLevel } from "./config.ts";
import { describeError, isCertainBug, isExpectedFailure } from "./worker_errors.ts";
import { assert, AssertionError } from "../util/assert.ts";
import { bytesEqual } from "../util/bytes.ts";

/** How a region worker's body reaches the main thread. */
export interface RegionWorkerPort {
  /** Posts `message` to the main thread; `transfer`: buffers handed over, as `postMessage`. */
  post(message: FromWorker, transfer?: Transferable[]): void;
  /** Ends the worker for a bug (already logged): the main thread sees the worker's error. */
  die(error: Error): void;
}

/** A started body: what the main thread's messages are handed to, and the inline terminate. */
export interface RegionWorkerBody {
  receive(message: ToWorker): void;
  halt(): void;
}

/** Starts a region worker's body: it waits for "init" (worker_protocol.ts). */
export function startRegionWorker(port: RegionWorkerPort): RegionWorkerBody {
  let engine: RocksDbEngine | null = null;
  let services: StoreServices | null = null;
  let sweeper: TtlSweeper | null = null;
  /** The worker's regions as peers of a store, and the write path through their log. */
  let raftstore: WorkerRaftstore | null = null;
  /** The regions this worker serves (the map `services.regions` reads), by id. */
  let regions: ReadonlyMap<bigint, Region> = new Map();
  let testHooks: WorkerTestHooks = {};

  function post(message: FromWorker, transfer: Transferable[] = []): void {
    port.post(message, transfer);
  }

  /** The worker's log: lines go to the main thread's logger. */
  const log = Object.fromEntries(
    (["debug", "info", "warn", "error"] as LogLevel[]).map((level) => [
      level,
      (message: string, fields: LogFields = {}) => post({ kind: "log", level, message, fields }),
    ]),
  ) as Record<LogLevel, (message: string, fields?: LogFields) => void>;

  function start(settings: WorkerSettings): void {
    // The raftstore's own writes pass a full disk's fence; new writes are refused at the write
    // path instead (`refusal` below), before they enter the log.
    const attached = engine = RocksDbEngine.attach(settings.engine, { obeyFence: false });
    testHooks = settings.testHooks ?? {};
    // Every write of the raw and transactional stores goes through the log of its region.
    raftstore = new WorkerRaftstore({
      storeId: settings.storeId,
      settings: settings.raftstore,
      snapshots: settings.snapshotDir === undefined
        ? undefined
        : new SnapshotDir(settings.snapshotDir),
      engine,
      regionIds: new Set(settings.regions.map((region) => region.id)),
      send: postRaft,
      onBug: (error) => die(error, { stage: "raftstore round" }),
      refusal: () => attached.writesFenced ? new WritesFencedError(attached.path, "write") : null,
      onRegionsChanged: (changed, removed) => post({ kind: "regionsChanged", changed, removed }),
      requestMaxTs: settings.syncMaxTs
        ? (regionId, term) => post({ kind: "needMaxTs", regionId, term })
        : undefined,
      // A store with no PD (standalone, `syncMaxTs` off) is the only voter of its regions.
      pipelineLog: !settings.syncMaxTs,
      askSplitIds: (region, count) =>
        new Promise((resolve, reject) => {
          const requestId = nextSplitIdsRequest++;
          splitIdsWaiting.set(requestId, { resolve, reject });
          post({ kind: "askSplitIds", requestId, region, count });
        }),
      onSplit: (made) => post({ kind: "regionsSplit", regions: made }),
      needRegion: (regionId) => post({ kind: "needRegion", regionId }),
      log: (message, fields) => log.info(message, fields),
    });
    regions = raftstore.regions;
    const writes = raftstore.writes;
    services = {
      regions,
      raw: newRawStore(engine, { syncLog: settings.syncLog, writes }),
      txn: newTxnStore(engine, { syncLog: settings.syncLog, latestTs: settings.latestTs, writes }),
      gate: raftstore.gate,
      split: (region, keys) => raftstore!.split(region, keys),
      maxTsSynced: raftstore.maxTsSynced,
    };
    if (settings.ttlCheckPollIntervalMs > 0) {
      sweeper = startTtlSweeper(services, {
        intervalMs: settings.ttlCheckPollIntervalMs,
        log,
        // Only the leader proposes the sweep's deletes: a follower's regions are skipped.
        hold: (regionId) =>
          raftstore?.store.peer(regionId)?.isLeader() === true ? holdRegion(regionId) : null,
        onBug: (error) => die(error, { stage: "ttl sweep" }),
      });
    }
    statsTimer = setInterval(postStats, WORKER_STATS_INTERVAL_MS);
    post({ kind: "ready" });
  }

  /** The writer a round's Raft messages are encoded into (reused; see `postRaft`). */
  let raftWriter = new $protobuf.Writer();

  /**
   * Posts the Raft messages of one wave to the main thread, encoded into one transferred buffer
   * (`worker_protocol.ts`); the rare SST-form snapshot goes as an object, for its own stream.
   */
  function postRaft(envelopes: RaftEnvelope[]): void {
    let encoded = envelopes;
    if (envelopes.some(travelsAsSstFiles)) {
      encoded = envelopes.filter((envelope) => !travelsAsSstFiles(envelope));
      post({ kind: "raftSnapshots", envelopes: envelopes.filter(travelsAsSstFiles) });
    }
    if (encoded.length === 0) return;
    const messages = packOutboundRaft(encoded, raftWriter);
    // A writer keeps its largest buffer: after a large round (a snapshot), start again small.
    if (raftWriter.buf.length > WORKER_WRITER_RETAIN_BYTES) raftWriter = new $protobuf.Writer();
    post({ kind: "raft", messages }, [messages.data.buffer as ArrayBuffer]);
  }

  /** Raft messages that did not decode or check (`decodeEnvelope`): dropped, counted, logged. */
  const malformedRaft = { dropped: 0, lines: new RepeatLimiter() };

  /** Posts the raftstore's figures ("stats"); every WORKER_STATS_INTERVAL_MS from "init" on. */
  let statsTimer: ReturnType<typeof setInterval> | undefined;
  function postStats(): void {
    const store = raftstore?.store;
    if (store === undefined) return;
    const { rounds, syncedWrites, messagesDropped, peersCreated, peersDestroyed, roundsCut } =
      store.stats;
    const sleep = store.hibernation();
    post({
      kind: "stats",
      stats: {
        raftstore_rounds_total: rounds,
        raftstore_synced_writes_total: syncedWrites,
        raftstore_rounds_cut_total: roundsCut,
        raftstore_peers_created_total: peersCreated,
        raftstore_peers_destroyed_total: peersDestroyed,
        raftstore_messages_dropped_total: messagesDropped,
        raftstore_messages_dropped_malformed_total: malformedRaft.dropped,
        raftstore_peer_ticks_total: sleep.peerTicks,
        raftstore_peer_sleeps_total: sleep.sleeps,
        raftstore_peer_wakes_total: sleep.wakes,
        raftstore_leader_checks_total: sleep.leaderChecks,
        raftstore_wake_cascades_total: sleep.cascades,
        raftstore_peers_awake: sleep.awake,
        raftstore_peers_asleep: sleep.asleep,
      },
    });
  }

  /**
   * Decodes and checks the Raft messages the main thread routed here and hands the good ones to
   * the raftstore, in order. The main thread checked only their framing and region id; a message
   * whose content is malformed (an unknown or local message type, a missing peer, …) is dropped,
   * counted and logged at warn, at most LOG_REPEAT_MAX_LINES lines per LOG_REPEAT_WINDOW_MS
   * (the same bound the store's logger keeps, applied here before the line costs a post), each
   * carrying the total dropped: as TiKV's raftstore drops what it cannot use, and the rest of the
   * batch goes on.
   */
  function receiveRaft(batch: RaftMessageBatch): void {
    const envelopes: RaftEnvelope[] = [];
    for (let i = 0; i < batch.ends.length; i++) {
      const decoded = decodeEnvelope(raftMessageAt(batch, i));
      if (decoded.ok) {
        envelopes.push(decoded.value);
        continue;
      }
      malformedRaft.dropped++;
      const admitted = malformedRaft.lines.admit("malformed", performance.now());
      if (!admitted.write) continue;
      log.warn("malformed raft message dropped", {
        problem: decoded.problem,
        droppedTotal: malformedRaft.dropped,
        ...(admitted.suppressed > 0 ? { suppressed: admitted.suppressed } : {}),
      });
    }
    if (envelopes.length > 0) raftstore?.receive(envelopes);
  }

  /** Splits waiting for ids from the main thread ("askSplitIds"), by request id. */
  const splitIdsWaiting = new Map<
    number,
    { resolve: (ids: SplitSpecIds[]) => void; reject: (error: Error) => void }
  >();
  let nextSplitIdsRequest = 1;

  /** Per served region, how many of its commands (and GC or sweep steps) run now. */
  const busyRegions = new Map<bigint, number>();
  /** Regions being dropped, waiting for their last command to end. */
  const draining = new Set<bigint>();

  /**
   * Counts one piece of work on `regionId` until the returned release is called; null when the
   * region is not served here (its command answers RegionNotFound, and holds nothing).
   */
  function holdRegion(regionId: bigint): (() => void) | null {
    if (!regions.has(regionId)) return null;
    busyRegions.set(regionId, (busyRegions.get(regionId) ?? 0) + 1);
    let released = false;
    return () => {
      assert(!released, "a region hold is released once", { regionId });
      released = true;
      const left = busyRegions.get(regionId)! - 1;
      assert(left >= 0, "a region's work count never goes below zero", { regionId, left });
      if (left > 0) return void busyRegions.set(regionId, left);
      busyRegions.delete(regionId);
      if (draining.delete(regionId)) finishDrop(regionId);
    };
  }

  /** Serves `region` from now on; max_ts rises to `latestTs` (see ToWorker "addRegion"). */
  function addRegion(region: Region, latestTs: bigint): void {
    assert(!regions.has(region.id), "a region is added to a worker that lacks it", {
      regionId: region.id,
    });
    started().txn.concurrency.updateMaxTs(latestTs);
    // Given back after a drop that did not finish in time: the drop is off.
    draining.delete(region.id);
    raftstore!.open(region.id, (opened) => {
      if (!opened) {
        log.warn("a region added to this worker has no replica on disk", { region: region.id });
      }
      post({ kind: "regionAdded", regionId: region.id });
    });
  }

  /** Stops serving `regionId`; "regionDropped" follows once nothing of it runs here. */
  function dropRegion(regionId: bigint): void {
    // New requests answer RegionNotFound at once; the peer closes once its work has ended.
    raftstore!.hide(regionId);
    if (busyRegions.has(regionId)) draining.add(regionId);
    else finishDrop(regionId);
  }

  /** The region's last work ended: its peer closes, then the main thread hears of it. */
  function finishDrop(regionId: bigint): void {
    raftstore!.close(regionId, () => post({ kind: "regionDropped", regionId }));
  }

  /** Set once a bug was met: the worker takes no more work and ends. */
  let dying = false;

  /**
   * Ends the worker for a bug (see the module header): logs it with the assertion's fields, then
   * throws it uncaught in a task of its own, which the main thread sees as the worker's error.
   */
  function die(error: unknown, context: LogFields): void {
    if (dying) return;
    dying = true;
    const fields: LogFields = { ...context, error: describeError(error) };
    if (error instanceof AssertionError) {
      for (const [name, value] of Object.entries(error.fields)) {
        fields[`field.${name}`] = typeof value === "bigint" || typeof value === "number" ||
            typeof value === "boolean" || typeof value === "string"
          ? value
          : String(value);
      }
    }
    log.error("bug in a region worker: it ends and is rebuilt from disk", fields);
    const thrown = error instanceof Error ? error : new Error(describeError(error));
    port.die(thrown);
  }

  /**
   * A command's rejection: an expected failure is answered with `fail` (INTERNAL, logged), the
   * worker going on; a bug ends the worker.
   */
  function onCommandError(
    error: unknown,
    options: { rpc: string; fail: (details: string) => void },
  ): void {
    if (!isExpectedFailure(error)) return die(error, { rpc: options.rpc });
    log.error("request failed", { rpc: options.rpc, error: describe(error) });
    options.fail(`${options.rpc}: ${describe(error)}`);
  }

  /** The region a decoded request names (0 when it names none: RegionNotFound). */
  function regionIdOf(request: unknown): bigint {
    const context = (request as { context?: { regionId?: bigint | null } | null }).context;
    return context?.regionId ?? 0n;
  }

  /**
   * Runs `command` as `runCommand` does, holding its region: the caller calls `release` once the
   * answer is posted, so a worker that gives the region up says so after its last answer. The
   * test hook `assertionFailureOnKey` fails an assertion after the command has run (see
   * `WorkerTestHooks`).
   */
  function execute(
    command: AnyCommand,
    request: unknown,
    budget: AnswerBudget,
  ): { running: Promise<object>; release: () => void } {
    const release = holdRegion(regionIdOf(request)) ?? (() => {});
    let running = runCommand(started(), command, request, budget);
    const hooked = testHooks.assertionFailureOnKey;
    const key = (request as { key?: unknown }).key;
    if (hooked !== undefined && key instanceof Uint8Array && bytesEqual(key, hooked)) {
      running = running.then(() => {
        assert(false, "test hook: a command meets a broken invariant", { rpc: command.name, key });
      });
    }
    return { running, release };
  }

  /** Set when "stop" arrives: later requests are refused, not run against a closing engine. */
  let stopping = false;

  /**
   * Detaches from the engine, then posts "stopped" (and only then: the main thread closes the
   * database once every worker said so). The engine closes once none of this worker's durable
   * writes is inside its native call — closing under one is a use-after-free. There is no bound
   * here: the main thread bounds its wait for "stopped", and without it leaves the database to
   * its WAL. A GC pass still running is not waited for: it meets the closed engine, stops with
   * EngineClosedError, and runs again after the restart.
   */
  async function stop(): Promise<void> {
    stopping = true;
    clearInterval(statsTimer);
    await sweeper?.stop();
    sweeper = null;
    // The round in flight ends; proposals and reads still waiting are answered StaleCommand.
    await raftstore?.stop();
    const current = engine;
    if (current !== null) {
      while (current.durableWritesInFlight > 0) {
        await new Promise((resolve) => setTimeout(resolve, WORKER_STOP_POLL_MS));
      }
      current.close();
    }
    engine = null;
    services = null;
    post({ kind: "stopped" });
  }

  /** Fails a request that arrived after "stop", with what the caller may retry elsewhere. */
  function refuseWhileStopping(message: Extract<ToWorker, { kind: "unary" | "batch" }>): void {
    const details = "the store is shutting down";
    if (message.kind === "unary") {
      post({ kind: "unaryFailed", id: message.id, code: "internal", details });
      return;
    }
    // The layout: per batch its id, its count, then three words per sub-request.
    const { layout } = message.requests;
    for (let at = 0; at < layout.length; at += 2 + 3 * layout[at + 1]!) {
      post({ kind: "batchFailed", id: layout[at]!, code: "internal", details });
    }
  }

  let gcRunning: Promise<void> | null = null;
  let gcWanted = 0n;

  /** Runs GC at the newest safe point asked for; one pass at a time. */
  function collectGarbage(safePoint: bigint): void {
    if (safePoint > gcWanted) gcWanted = safePoint;
    if (gcRunning !== null || services === null) return;
    const current = services;
    const target = gcWanted;
    gcRunning = (async () => {
      for (const region of [...current.regions.values()]) {
        // Only the leader proposes GC's deletes (a follower's would be refused NotLeader).
        if (raftstore?.store.peer(region.id)?.isLeader() !== true) continue;
        // A region dropped meanwhile is skipped; one being collected is held, so a move waits.
        const release = holdRegion(region.id);
        if (release === null) continue;
        try {
          const result = await runGc(current.txn, region, target);
          log.info("gc done", { region: region.id, safePoint: target, ...result });
        } finally {
          release();
        }
      }
    })().catch((error) => {
      if (stopping) log.info("gc interrupted by shutdown", { error: describe(error) });
      else if (isCertainBug(error)) die(error, { stage: "gc" });
      else log.error("gc failed", { error: describe(error) });
    }).finally(() => {
      gcRunning = null;
      if (gcWanted > target) collectGarbage(gcWanted);
    });
  }

  function started(): StoreServices {
    if (services === null) throw new Error("region worker used before init");
    return services;
  }

  function describe(error: unknown): string {
    return error instanceof Error ? error.message : String(error);
  }

  function runUnary(id: number, name: string, bytes: Uint8Array): void {
    const failed = (code: FailureCode, details: string) =>
      post({ kind: "unaryFailed", id, code, details });
    const command = COMMANDS_BY_NAME.get(name);
    if (command === undefined) return failed("internal", `${name} is not served by this worker`);
    let request: unknown;
    try {
      request = command.requestCodec.decode(bytes);
    } catch (error) {
      return failed("invalid_argument", `malformed ${name} request: ${describe(error)}`);
    }
    const budget = unaryBudget();
    const { running, release } = execute(command, request, budget);
    running.then((response) => {
      const encoded = encodeAnswer(codecs(command).response, {
        response,
        sizeHint: budget.usedBytes,
      });
      // Every gathering answer is held to ANSWER_MAX_BYTES: one that is not is a bug there.
      assert(encoded.length <= GRPC_MAX_MESSAGE_BYTES, "an answer fits the message limit", {
        rpc: name,
        bytes: encoded.length,
      });
      post({ kind: "unary", id, bytes: encoded, outcome: outcomeOf(response) }, [
        encoded.buffer as ArrayBuffer,
      ]);
    }, (error: unknown) => {
      onCommandError(error, { rpc: name, fail: (details) => failed("internal", details) });
    }).catch((error: unknown) => {
      // A response that cannot be encoded, or passes the message limit, is a bug.
      die(error, { rpc: name, stage: "encoding the answer" });
    }).finally(release);
  }

  /**
   * `response` encoded into an ArrayBuffer of its own (safe to transfer). A large answer is
   * encoded into a writer sized from its budget's count, and copied out once: growing a writer
   * from 128 bytes by doubling, then `finish()` and `ownBuffer` copies, cost ~4 times the answer
   * in garbage for one large answer.
   */
  function encodeAnswer(
    codec: StreamingCodec,
    { response, sizeHint }: { response: unknown; sizeHint: number },
  ): Uint8Array<ArrayBuffer> {
    const writer = new $protobuf.Writer();
    if (sizeHint > WORKER_WRITER_RETAIN_BYTES) writer.buf = new Uint8Array(sizeHint + 64 * 1024);
    codec.encode(response, writer);
    const encoded = new Uint8Array(new ArrayBuffer(writer.pos));
    writer.finishInto(encoded);
    return encoded;
  }

  /** The static codecs as the generated code also offers them: into a Writer, from a Reader. */
  interface StreamingCodec {
    encode(message: unknown, writer: $protobuf.Writer): $protobuf.Writer;
    decode(reader: $protobuf.Reader, length: number): unknown;
  }

  const codecs = (command: AnyCommand) => ({
    request: command.requestCodec as unknown as StreamingCodec,
    response: command.responseCodec as unknown as StreamingCodec,
  });
  /** Per command code: its codecs, and the tag of its `BatchCommandsResponse.Response` member. */
  const BATCH_CODECS = BATCH_COMMANDS.map(codecs);
  const MEMBER_TAGS = BATCH_COMMANDS.map((command) => batchFieldOf(command.batchName!) << 3 | 2);
  /** Tags of `BatchCommandsResponse`'s `responses` (1) and packed `request_ids` (2). */
  const RESPONSES_TAG = 1 << 3 | 2;
  const REQUEST_IDS_TAG = 2 << 3 | 2;

  /** A BatchCommands batch being run, and its answers not yet posted. */
  class RunningBatch {
    /** Per sub-request: command code, and where its request id varint lies in `data`. */
    readonly codes: number[] = [];
    readonly idStarts: number[] = [];
    readonly idEnds: number[] = [];
    /** Answered since the last post (parallel arrays). */
    readonly indexes: number[] = [];
    readonly responses: object[] = [];
    remaining: number;
    failed = false;

    constructor(readonly id: number, readonly data: Uint8Array, count: number) {
      this.remaining = count;
    }

    fail(code: FailureCode, details: string): void {
      if (this.failed) return;
      this.failed = true;
      this.indexes.length = 0;
      this.responses.length = 0;
      post({ kind: "batchFailed", id: this.id, code, details });
    }
  }

  /**
   * The answers of every batch completed in one wave of microtasks, posted in one message when
   * the wave ends: each batch's answers as one complete `BatchCommandsResponse` (see
   * `worker_protocol.ts`). A slow sub-request never holds up the quick ones of its batch.
   */
  class Outbox {
    #touched: RunningBatch[] = [];
    #scheduled = false;
    #writer = new $protobuf.Writer();
    readonly #layout = new LayoutWriter();

    add(batch: RunningBatch, index: number, response: object): void {
      if (batch.failed) return;
      if (batch.indexes.length === 0) this.#touched.push(batch);
      batch.indexes.push(index);
      batch.responses.push(response);
      batch.remaining--;
      if (!this.#scheduled) {
        // Answers that complete together (a group write, a message of reads) reach `add` in one
        // wave of microtasks, each at the same depth of its chain, so a microtask queued by the
        // first runs after the others' `add`: one post for all. A macrotask (setImmediate) was
        // measured to cost throughput: every hop's delay adds to a closed loop's latency.
        this.#scheduled = true;
        queueMicrotask(this.#flush);
      }
    }

    /** Runs `callback` once the answers added so far are posted (at once if none wait). */
    afterPost(callback: () => void): void {
      if (this.#scheduled) this.#afterPost.push(callback);
      else callback();
    }

    #afterPost: (() => void)[] = [];

    readonly #flush = (): void => {
      this.#scheduled = false;
      this.#writer.pos = 0;
      for (const batch of this.#touched) {
        if (!batch.failed) this.#encode(batch);
        batch.indexes.length = 0;
        batch.responses.length = 0;
      }
      this.#touched = [];
      this.#post();
      const callbacks = this.#afterPost;
      this.#afterPost = [];
      for (const callback of callbacks) callback();
    };

    /** Posts the parts written so far (if any) and empties the writer. */
    #post(): void {
      const writer = this.#writer;
      if (this.#layout.length === 0) return;
      const data = new Uint8Array(new ArrayBuffer(writer.pos));
      writer.finishInto(data);
      const layout = this.#layout.take();
      writer.pos = 0;
      // A writer keeps its largest buffer: after a large wave, start again with a small one.
      if (writer.buf.length > WORKER_WRITER_RETAIN_BYTES) this.#writer = new $protobuf.Writer();
      post({ kind: "batch", answers: { layout, data } }, [data.buffer, layout.buffer]);
    }

    /**
     * Appends the answers of `batch` as one or more parts, each a `BatchCommandsResponse` of at
     * most ANSWER_MAX_BYTES (a lone answer, itself within its budget, may add its framing), and
     * posts what is written whenever it reaches ANSWER_MAX_BYTES: the answers of one wave are
     * never gathered into one oversized message or buffer.
     */
    #encode(batch: RunningBatch): void {
      for (let next = 0; next < batch.indexes.length;) {
        next = this.#encodePart(batch, next);
        if (next < 0) return;
        if (this.#writer.pos >= ANSWER_MAX_BYTES) this.#post();
      }
    }

    /**
     * Appends one part of `batch`, its answers from `first` on while the frame stays within
     * ANSWER_MAX_BYTES: its layout words and its `BatchCommandsResponse`. Returns where the next
     * part starts, or -1 when the batch failed.
     */
    #encodePart(batch: RunningBatch, first: number): number {
      const writer = this.#writer;
      const layout = this.#layout;
      const layoutStart = layout.length;
      const frameStart = writer.pos;
      try {
        layout.push(batch.id);
        layout.push(0); // done, frame bytes and count: filled in below
        layout.push(0);
        layout.push(0);
        let n = first;
        for (; n < batch.indexes.length; n++) {
          const index = batch.indexes[n]!;
          const response = batch.responses[n]!;
          const code = batch.codes[index]!;
          const answerStart = writer.pos;
          writer.uint32(RESPONSES_TAG).fork().uint32(MEMBER_TAGS[code]!).fork();
          BATCH_CODECS[code]!.response.encode(response, writer);
          writer.ldelim().ldelim();
          if (n > first && writer.pos - frameStart > ANSWER_MAX_BYTES) {
            writer.pos = answerStart; // it opens the next part
            break;
          }
          layout.push(index);
          layout.push(OUTCOMES.indexOf(outcomeOf(response)));
        }
        writer.uint32(REQUEST_IDS_TAG).fork();
        for (let m = first; m < n; m++) {
          const index = batch.indexes[m]!;
          writer.raw(batch.data.subarray(batch.idStarts[index]!, batch.idEnds[index]!));
        }
        writer.ldelim();
        const frameBytes = writer.pos - frameStart;
        // Every gathering answer is held to ANSWER_MAX_BYTES: one that is not is a bug there.
        assert(
          frameBytes <= GRPC_MAX_MESSAGE_BYTES,
          "a BatchCommands answer fits the message limit",
          {
            frameBytes,
          },
        );
        const last = n === batch.indexes.length;
        layout.set(layoutStart + 1, last && batch.remaining === 0 ? 1 : 0);
        layout.set(layoutStart + 2, frameBytes);
        layout.set(layoutStart + 3, n - first);
        return n;
      } catch (error) {
        // A response that cannot be encoded is a bug: the worker ends. The batch is failed here
        // and the others' answers kept, so the main thread sees them before the worker's end.
        layout.length = layoutStart;
        writer.pos = frameStart;
        writer.states = null;
        batch.fail("internal", `cannot encode an answer: ${describe(error)}`);
        die(error, { stage: "encoding a BatchCommands answer" });
        return -1;
      }
    }
  }

  const outbox = new Outbox();

  /** Decodes and runs the batches of one message (see `BatchRequests`). */
  function runBatches({ layout, data }: BatchRequests): void {
    const reader = new $protobuf.Reader(data);
    let at = 0;
    let offset = 0;
    while (at < layout.length) {
      const batch = new RunningBatch(layout[at]!, data, layout[at + 1]!);
      const count = layout[at + 1]!;
      at += 2;
      const requests: unknown[] = new Array(count);
      let refusal: [FailureCode, string] | null = null;
      for (let i = 0; i < count; i++) {
        const code = layout[at]!;
        const bodyBytes = layout[at + 1]!;
        const idBytes = layout[at + 2]!;
        at += 3;
        batch.codes.push(code);
        batch.idStarts.push(offset + bodyBytes);
        batch.idEnds.push(offset + bodyBytes + idBytes);
        const codec = BATCH_CODECS[code];
        if (refusal !== null) {
          // The batch is refused: only its layout is read on.
        } else if (codec === undefined) {
          refusal = ["internal", `command ${code} is not served by this worker`];
        } else {
          try {
            // The reader ends where the body ends: a length inside the body that overruns it must
            // fail here, not read on into the request id and the next sub-request's body.
            reader.pos = offset;
            reader.len = offset + bodyBytes;
            requests[i] = codec.request.decode(reader, bodyBytes);
          } catch (error) {
            const name = BATCH_COMMANDS[code]!.batchName;
            refusal = ["invalid_argument", `malformed ${name} sub-request: ${describe(error)}`];
          }
        }
        offset += bodyBytes + idBytes;
      }
      if (refusal !== null) batch.fail(...refusal);
      else runBatch(batch, requests);
    }
  }

  function runBatch(batch: RunningBatch, requests: unknown[]): void {
    // The sub-requests' answers draw on one budget, so a message of many small requests cannot
    // make a huge wave of answers (see `answer_budget.ts`).
    const shared = new AnswerBudget(BATCH_COMMANDS_MAX_ANSWER_BYTES);
    for (let index = 0; index < requests.length; index++) {
      const command = BATCH_COMMANDS[batch.codes[index]!]!;
      const budget = new AnswerBudget(ANSWER_MAX_BYTES, shared);
      const { running, release } = execute(command, requests[index], budget);
      running.then(
        (response) => {
          outbox.add(batch, index, response);
          outbox.afterPost(release);
        },
        (error: unknown) => {
          onCommandError(error, {
            rpc: command.name,
            fail: (details) => batch.fail("internal", details),
          });
          release();
        },
      );
    }
  }

  function receive(message: ToWorker): void {
    // A worker that met a bug runs nothing more: the main thread fails what it owes when it ends.
    if (dying) return;
    switch (message.kind) {
      case "init":
        start(message.settings);
        return;
      case "unary":
        if (stopping) return refuseWhileStopping(message);
        runUnary(message.id, message.name, message.bytes);
        return;
      case "batch":
        if (stopping) return refuseWhileStopping(message);
        runBatches(message.requests);
        return;
      case "gc":
        collectGarbage(message.safePoint);
        return;
      case "addRegion":
        addRegion(message.region, message.latestTs);
        return;
      case "dropRegion":
        dropRegion(message.regionId);
        return;
      case "raft":
        receiveRaft(message.messages);
        return;
      case "maxTs":
        started().txn.concurrency.updateMaxTs(message.ts);
        raftstore?.maxTsFetched(message.regionId, message.term);
        return;
      case "operator":
        raftstore?.operator(message.regionId, message.operator, (outcome) => {
          log.info("PD operator", { region: message.regionId, outcome });
        });
        return;
      case "splitIds": {
        const waiting = splitIdsWaiting.get(message.requestId);
        splitIdsWaiting.delete(message.requestId);
        if (message.ids !== null) waiting?.resolve(message.ids);
        else waiting?.reject(new Error(message.error));
        return;
      }
      case "stop":
        // Without "stopped" the main thread leaves the database to its WAL: the safe side.
        stop().catch((error) => log.error("region worker stop failed", { error: describe(error) }));
        return;
    }
  }

  /**
   * The inline form's `terminate` (inline_worker.ts). A thread's termination stops everything at
   * once; here the body stops itself: it takes no more work, its timers end, and its engine
   * attachment refuses every call from now on (`RocksDbEngine.abandon`), so that nothing it still
   * had running (a round waiting for its fsync, a GC pass) writes behind its successor's back.
   */
  function halt(): void {
    dying = true;
    stopping = true;
    clearInterval(statsTimer);
    engine?.abandon();
    sweeper?.stop().catch(() => {});
    raftstore?.stop().catch(() => {});
  }

  return { receive, halt };
}
