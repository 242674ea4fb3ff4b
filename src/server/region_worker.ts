/**
 * A region-group worker (DESIGN.md §2): a Web Worker that attaches to the store's one RocksDB
 * handle and runs the commands of the regions in its group. It decodes each request (refusing a
 * malformed one), runs it, and posts the encoded response back. A BatchCommands part is
 * answered as its sub-requests complete: everything finished by the end of one event-loop turn
 * goes back in one message, so a slow sub-request never holds up the quick ones.
 *
 * Started by `region_workers.ts`; the messages are in `worker_protocol.ts`.
 */
/// <reference lib="deno.worker" />
import { setImmediate } from "node:timers";
import { tikvpb } from "../../proto/mod.ts";
import { RocksDbEngine } from "../engine/rocksdb_engine.ts";
import type { AnyCommand } from "./command.ts";
import { COMMANDS_BY_BATCH_NAME, COMMANDS_BY_NAME } from "./commands.ts";
import { type LogFields } from "./log.ts";
import { type Outcome, outcomeOf } from "./metrics.ts";
import { newRawStore } from "./raw/mod.ts";
import { startTtlSweeper, type TtlSweeper } from "./raw/ttl_sweeper.ts";
import { standaloneRegion } from "./region.ts";
import { runCommand } from "./respond.ts";
import type { StoreServices } from "./services.ts";
import { newTxnStore } from "./txn/store.ts";
import { runGc } from "./txn/gc.ts";
import {
  type FailureCode,
  type FromWorker,
  ownBuffer,
  pack,
  type ToWorker,
  unpack,
  type WorkerSettings,
} from "./worker_protocol.ts";
import type { LogLevel } from "./config.ts";

let engine: RocksDbEngine | null = null;
let services: StoreServices | null = null;
let sweeper: TtlSweeper | null = null;

function post(message: FromWorker, transfer: Transferable[] = []): void {
  self.postMessage(message, transfer);
}

/** The worker's log: lines go to the main thread's logger. */
const log = Object.fromEntries(
  (["debug", "info", "warn", "error"] as LogLevel[]).map((level) => [
    level,
    (message: string, fields: LogFields = {}) => post({ kind: "log", level, message, fields }),
  ]),
) as Record<LogLevel, (message: string, fields?: LogFields) => void>;

function start(settings: WorkerSettings): void {
  engine = RocksDbEngine.attach(settings.engine);
  const regions = [standaloneRegion()].filter((region) =>
    Number(region.id % BigInt(settings.groups)) === settings.groupId
  );
  services = {
    regions: new Map(regions.map((region) => [region.id, region])),
    raw: newRawStore(engine, { syncLog: settings.syncLog }),
    txn: newTxnStore(engine, { syncLog: settings.syncLog, latestTs: settings.latestTs }),
  };
  if (settings.ttlCheckPollIntervalMs > 0 && regions.length > 0) {
    sweeper = startTtlSweeper(services, { intervalMs: settings.ttlCheckPollIntervalMs, log });
  }
  post({ kind: "ready" });
}

async function stop(): Promise<void> {
  await sweeper?.stop();
  await gcRunning;
  sweeper = null;
  engine?.close();
  engine = null;
  services = null;
  post({ kind: "stopped" });
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
    for (const region of current.regions.values()) {
      const result = await runGc(current.txn, region, target);
      log.info("gc done", { region: region.id, safePoint: target, ...result });
    }
  })().catch((error) => log.error("gc failed", { error: describe(error) })).finally(() => {
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
  runCommand(started(), command, request).then((response) => {
    const encoded = ownBuffer(command.responseCodec.encode(response).finish());
    post({ kind: "unary", id, bytes: encoded, outcome: outcomeOf(response) }, [
      encoded.buffer as ArrayBuffer,
    ]);
  }, (error: unknown) => {
    log.error("request failed", { rpc: name, error: describe(error) });
    failed("internal", `${name}: ${describe(error)}`);
  });
}

/** Answers of one batch part not yet posted. */
class Outbox {
  readonly indexes: number[] = [];
  readonly responses: Uint8Array[] = [];
  readonly outcomes: Outcome[] = [];
  remaining: number;
  scheduled = false;
  failed = false;

  constructor(readonly id: number, count: number) {
    this.remaining = count;
  }

  add(index: number, response: Uint8Array, outcome: Outcome): void {
    this.indexes.push(index);
    this.responses.push(response);
    this.outcomes.push(outcome);
    this.remaining--;
    if (this.remaining === 0) this.flush();
    else if (!this.scheduled) {
      // Whatever else completes in this turn rides along; a slow sub-request does not wait.
      // setImmediate, not setTimeout(0): Deno's 0 ms timer fires ~1 ms later (measured).
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.scheduled = false;
    if (this.failed || this.indexes.length === 0) return;
    const responses = pack(this.responses.splice(0));
    post({
      kind: "batch",
      id: this.id,
      indexes: this.indexes.splice(0),
      responses,
      outcomes: this.outcomes.splice(0),
      done: this.remaining === 0,
    }, [responses.data.buffer as ArrayBuffer]);
  }
}

function runBatch(id: number, names: string[], bodies: Uint8Array[]): void {
  const failed = (code: FailureCode, details: string) =>
    post({ kind: "batchFailed", id, code, details });
  const decoded: [AnyCommand, unknown][] = [];
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    const command = COMMANDS_BY_BATCH_NAME.get(name);
    if (command === undefined) return failed("internal", `${name} is not served by this worker`);
    try {
      decoded.push([command, command.requestCodec.decode(bodies[i]!)]);
    } catch (error) {
      return failed("invalid_argument", `malformed ${name} sub-request: ${describe(error)}`);
    }
  }
  const outbox = new Outbox(id, decoded.length);
  decoded.forEach(([command, request], index) => {
    runCommand(started(), command, request).then((response) => {
      const encoded = tikvpb.BatchCommandsResponse.Response.encode(
        { [command.batchName!]: response } as tikvpb.BatchCommandsResponse.Response.$Properties,
      ).finish();
      outbox.add(index, encoded, outcomeOf(response));
    }, (error: unknown) => {
      if (outbox.failed) return;
      outbox.failed = true;
      log.error("BatchCommands sub-request failed", { rpc: command.name, error: describe(error) });
      failed("internal", `${command.name}: ${describe(error)}`);
    });
  });
}

self.onmessage = (event: MessageEvent<ToWorker>) => {
  const message = event.data;
  switch (message.kind) {
    case "init":
      start(message.settings);
      return;
    case "unary":
      runUnary(message.id, message.name, message.bytes);
      return;
    case "batch":
      runBatch(message.id, message.names, unpack(message.bodies));
      return;
    case "gc":
      collectGarbage(message.safePoint);
      return;
    case "stop":
      stop().catch((error) => {
        log.error("region worker stop failed", { error: describe(error) });
        post({ kind: "stopped" });
      });
      return;
  }
};
