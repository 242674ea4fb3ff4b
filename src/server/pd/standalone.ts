/**
 * The embedded PD of a standalone store: its durable state under `<data-dir>/pd/`, beside the
 * store's `db/` and `basalt.json` (see `../data_dir.ts`):
 *
 * | file                   | holds                                                     |
 * | ---------------------- | --------------------------------------------------------- |
 * | `pd/cluster`           | cluster id, member id, creation time (written once)       |
 * | `pd/tso`               | the TSO's saved bound: no issued timestamp reaches it      |
 * | `pd/ids`               | the id allocator's window end: no issued id passes it      |
 * | `pd/gc_safe_point`     | the GC safe point                                          |
 *
 * Each is a record file with a checksum (`src/tso/durable_file.ts`), replaced atomically. A
 * damaged file stops the store with an error naming it. `pd/cluster` is written last on first
 * start: once it exists, the others must too, since a missing `pd/tso` would let timestamps
 * restart from a wall clock that may be behind the ones already issued.
 *
 * @module
 */
import {
  type Clock,
  FileValueStore,
  TimestampOracle,
  TSO_TICK_INTERVAL_MS,
  type WarnLog,
} from "../../tso/mod.ts";
import { STANDALONE } from "../region.ts";
import {
  type ClusterIdentity,
  loadClusterIdentity,
  newClusterIdentity,
  saveClusterIdentity,
} from "./cluster_identity.ts";
import type { PdLog, PdState } from "./dependencies.ts";
import { GcSafePoint } from "./gc_safe_point.ts";
import { IdAllocator } from "./id_allocator.ts";

/** The embedded PD's state directory cannot be used; `path` names the file at fault. */
export class PdDataError extends Error {
  constructor(readonly path: string, reason: string) {
    super(`${path}: ${reason}`);
    this.name = "PdDataError";
  }
}

/** How the embedded PD is opened. Everything has a default; tests inject clock and randomness. */
export interface StandalonePdOptions {
  /** Wall clock; default `Date.now`. */
  clock?: Clock;
  /** 32 random bits for a new cluster id; default `crypto.getRandomValues`. */
  randomUint32?: () => number;
  /** Where the TSO warns about the clock and tick failures are reported. */
  log?: WarnLog & Pick<PdLog, "error">;
  /** How often the TSO window is kept fresh; `null` runs no timer (the caller ticks). */
  tickIntervalMs?: number | null;
  /** Ids up to this one are never allocated; default the standalone store's largest fixed id. */
  reservedIdsThrough?: bigint;
}

/** The opened embedded PD: its state for `pdHandlers`, and `close()` to stop its timer. */
export interface StandalonePd extends PdState {
  /** `<data-dir>/pd`. */
  dir: string;
  close(): void;
}

/** Store 1, region 1 and peer 2 exist before any id is allocated. */
const STANDALONE_LARGEST_ID = [STANDALONE.storeId, STANDALONE.regionId, STANDALONE.peerId]
  .reduce((a, b) => (a > b ? a : b));

const systemClock: Clock = { nowMs: () => Date.now() };

function randomUint32(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0]!;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

function ensureDirectory(dataDir: string, dir: string): void {
  if (!exists(dataDir)) throw new PdDataError(dataDir, "data directory does not exist");
  Deno.mkdirSync(dir, { recursive: true });
}

const FILES = {
  tso: { name: "tso", format: "basalt-pd-tso", field: "boundMs" },
  ids: { name: "ids", format: "basalt-pd-ids", field: "end" },
  safePoint: { name: "gc_safe_point", format: "basalt-pd-gc-safe-point", field: "safePoint" },
} as const;

/**
 * Opens (creating on first start) the embedded PD under `<dataDir>/pd`. `dataDir` must exist:
 * call it after `prepareDataDir`, which refuses a non-empty directory without `basalt.json`.
 * Throws `PdDataError` for a missing file of an initialized PD and `CorruptFileError` for a
 * damaged one.
 *
 * @example
 * ```ts
 * const pd = openStandalonePd(config.storage.dataDir, { log });
 * server.addService(pdServiceDefinition(), pdHandlers({ pd, view: () => standaloneView({ addr, statusAddr }), log }));
 * // … on shutdown:
 * pd.close();
 * ```
 */
export function openStandalonePd(dataDir: string, options: StandalonePdOptions = {}): StandalonePd {
  const dir = `${dataDir}/pd`;
  ensureDirectory(dataDir, dir);
  const clock = options.clock ?? systemClock;
  const clusterPath = `${dir}/cluster`;
  let identity: ClusterIdentity | null = loadClusterIdentity(clusterPath);
  const store = (file: (typeof FILES)[keyof typeof FILES]) => {
    const path = `${dir}/${file.name}`;
    if (identity !== null && !exists(path)) {
      throw new PdDataError(
        path,
        `missing, though ${clusterPath} exists: the ${file.name} state of this cluster is ` +
          `lost and reissuing could repeat values already handed out; restore the file`,
      );
    }
    return new FileValueStore(path, { format: file.format, field: file.field });
  };
  const oracle = TimestampOracle.open({ clock, store: store(FILES.tso), log: options.log });
  const ids = IdAllocator.open({
    store: store(FILES.ids),
    reservedThrough: options.reservedIdsThrough ?? STANDALONE_LARGEST_ID,
  });
  const safePoint = GcSafePoint.open(store(FILES.safePoint));
  if (identity === null) {
    identity = newClusterIdentity({
      nowMs: clock.nowMs(),
      randomUint32: options.randomUint32 ?? randomUint32,
    });
    saveClusterIdentity(clusterPath, identity); // last: marks the PD as initialized
  }
  const timer = startTicking(oracle, options);
  return {
    dir,
    clusterId: identity.clusterId,
    memberId: identity.memberId,
    memberName: `basalt-store-${STANDALONE.storeId}`,
    oracle,
    ids,
    safePoint,
    close() {
      if (timer !== null) clearInterval(timer);
    },
  };
}

/** Keeps the TSO window renewed ahead of need; the timer never keeps the process alive. */
function startTicking(
  oracle: TimestampOracle,
  options: StandalonePdOptions,
): ReturnType<typeof setInterval> | null {
  const intervalMs = options.tickIntervalMs === undefined
    ? TSO_TICK_INTERVAL_MS
    : options.tickIntervalMs;
  if (intervalMs === null) return null;
  const timer = setInterval(() => {
    try {
      oracle.tick();
    } catch (error) {
      // The next request retries the save itself and fails visibly if it still cannot.
      options.log?.error("TSO window renewal failed", { error: String(error) });
    }
  }, intervalMs);
  Deno.unrefTimer(timer);
  return timer;
}
