/**
 * The embedded PD of a standalone store: the one Placement Driver (`src/pd`, the same core and
 * gRPC service as the PD process) over the store's own data directory, with its durable state
 * under `<data-dir>/pd/` (see `file_storage.ts`; these files are the standalone storage
 * backend, so data directories of earlier versions open as they are):
 *
 * | file                   | holds                                                     |
 * | ---------------------- | --------------------------------------------------------- |
 * | `pd/cluster`           | cluster id, member id, creation time (written once)       |
 * | `pd/tso`               | the TSO's saved bound: no issued timestamp reaches it      |
 * | `pd/ids`               | the id allocator's window end: no issued id passes it      |
 * | `pd/gc_safe_point`     | the GC safe point                                          |
 * | `pd/meta`              | cluster meta, store 1, region 1, service safe points       |
 *
 * Each is a record file with a checksum (`src/tso/durable_file.ts`), replaced atomically. A
 * damaged file stops the store with an error naming it. `pd/cluster` is written last on first
 * start: once it exists, the others but `pd/meta` must too, since a missing `pd/tso` would let
 * timestamps restart from a wall clock that may be behind the ones already issued. A missing
 * `pd/meta` (a data directory of an earlier version) is made again: the store bootstraps its
 * PD with itself, store 1 and region 1 over every key, as it does on first start.
 *
 * The store registers itself on every start: its addresses (known once its ports are bound)
 * through PutStore, its region's leader (peer 2) through a region heartbeat.
 *
 * @module
 */
import { PlacementDriver } from "../../pd/placement_driver.ts";
import type { SplitId } from "../../pd/cluster.ts";
import { PdError } from "../../pd/errors.ts";
import { regionFromProto } from "../../pd/server/convert.ts";
import type { metapb } from "../../../proto/mod.ts";
import { PD_KEYS } from "../../pd/storage.ts";
import type { RegionMeta } from "../../pd/types.ts";
import { type Clock, TSO_TICK_INTERVAL_MS, type WarnLog } from "../../tso/mod.ts";
import { SeededRandom } from "../../util/random.ts";
import { STANDALONE, standaloneRegion } from "../region.ts";
import {
  type ClusterIdentity,
  loadClusterIdentity,
  newClusterIdentity,
  saveClusterIdentity,
} from "./cluster_identity.ts";
import type { PdLog } from "./dependencies.ts";
import { RecordFileStorage, VALUE_FILES } from "./file_storage.ts";
import type { PdView } from "./view.ts";

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

/** The opened embedded PD. */
export interface StandalonePd {
  /** `<data-dir>/pd`. */
  dir: string;
  clusterId: bigint;
  memberId: bigint;
  /** The member's name in GetMembers. */
  memberName: string;
  /** The one Placement Driver core, over this directory's files. */
  driver: PlacementDriver;
  /** The TSO (`driver.oracle`): the store takes its own timestamps from it. */
  oracle: PlacementDriver["oracle"];
  /** The GC safe point in force. */
  safePoint: { readonly value: bigint };
  /** Registers the store as `view` describes it (PutStore when its addresses changed). */
  register(view: PdView): void;
  /** Ids for `count` new regions of a split of `region` (PD's AskBatchSplit); throws if refused. */
  askBatchSplit(region: metapb.Region.$Properties, count: number): SplitId[];
  /**
   * Region heartbeats from the store's leaders (a split made or changed them), so that the
   * embedded PD answers GetRegion and ScanRegions as the regions are. Refusals are returned.
   */
  heartbeatRegions(
    regions: readonly { region: metapb.Region.$Properties; term: bigint }[],
  ): string[];
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

/** The standalone region (1, every key, peer 2 on store 1) as the core's value. */
export function standaloneRegionMeta(): RegionMeta {
  const region = standaloneRegion();
  return {
    id: region.id,
    startKey: region.startKey,
    endKey: region.endKey,
    regionEpoch: { confVer: region.confVer, version: region.version },
    peers: [{ id: region.peerId, storeId: region.storeId, role: "Voter" }],
  };
}

/** Refuses an initialized PD directory missing one of its single-value files. */
function checkFiles(dir: string, clusterPath: string): void {
  for (const file of Object.values(VALUE_FILES)) {
    const path = `${dir}/${file.name}`;
    if (!exists(path)) {
      throw new PdDataError(
        path,
        `missing, though ${clusterPath} exists: the ${file.name} state of this cluster is ` +
          `lost and reissuing could repeat values already handed out; restore the file`,
      );
    }
  }
}

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
  const loaded: ClusterIdentity | null = loadClusterIdentity(clusterPath);
  if (loaded !== null) checkFiles(dir, clusterPath);
  const draw = options.randomUint32 ?? randomUint32;
  const identity = loaded ?? newClusterIdentity({ nowMs: clock.nowMs(), randomUint32: draw });
  const storage = new RecordFileStorage(dir, identity.clusterId);
  const driver = PlacementDriver.open({
    storage,
    clock,
    random: new SeededRandom(draw()),
    tsoStore: storage.valueStore(PD_KEYS.tso),
    reservedIdsThrough: options.reservedIdsThrough ?? STANDALONE_LARGEST_ID,
    log: options.log,
  });
  bootstrapItself(driver);
  if (loaded === null) {
    // Every single-value file exists before pd/cluster marks the PD initialized.
    for (const key of [PD_KEYS.allocId, PD_KEYS.gcSafePoint] as const) {
      const value = storage.valueStore(key);
      if (value.load() === null) value.save(0n);
    }
    saveClusterIdentity(clusterPath, identity);
  }
  const timer = startTicking(driver, options);
  let registered = "";
  return {
    dir,
    clusterId: identity.clusterId,
    memberId: identity.memberId,
    memberName: `basalt-store-${STANDALONE.storeId}`,
    driver,
    oracle: driver.oracle,
    safePoint: {
      get value() {
        return driver.safePoints.gcSafePoint;
      },
    },
    register(view) {
      const key = JSON.stringify(view.store, (_k, v) => typeof v === "bigint" ? String(v) : v);
      if (key === registered) return;
      const refused = driver.putStore({ ...view.store, id: STANDALONE.storeId });
      if (refused !== null) throw new Error(`standalone store cannot register: ${refused}`);
      registered = key;
    },
    askBatchSplit(region, count) {
      const ids = driver.askBatchSplit({ region: regionFromProto(region), splitCount: count });
      if (ids instanceof PdError) {
        throw new Error(`the embedded PD refused the split: ${ids.message}`);
      }
      return ids;
    },
    heartbeatRegions(regions) {
      const refusals: string[] = [];
      for (const { region, term } of regions) {
        const meta = regionFromProto(region);
        const leader = meta.peers.find((p) => p.storeId === STANDALONE.storeId);
        if (leader === undefined) continue;
        const answer = driver.regionHeartbeat({ region: meta, leader, term });
        if (answer instanceof PdError) refusals.push(`region ${meta.id}: ${answer.message}`);
      }
      return refusals;
    },
    close() {
      if (timer !== null) clearInterval(timer);
    },
  };
}

/**
 * Bootstraps the PD with the store itself on first start (or on the first start of a data
 * directory from before `pd/meta`), and tells it region 1's leader, which is kept in memory
 * only.
 */
function bootstrapItself(driver: PlacementDriver): void {
  const region = standaloneRegionMeta();
  const peer = region.peers[0]!;
  if (!driver.isBootstrapped()) {
    const refused = driver.bootstrap({
      store: { id: STANDALONE.storeId, address: "" },
      region,
    });
    if (refused !== null) throw new Error(`standalone PD cannot bootstrap: ${refused}`);
  }
  const known = driver.cluster.regions.getById(region.id);
  const answer = driver.regionHeartbeat({ region: known?.meta ?? region, leader: peer, term: 0n });
  if (answer !== null && !("regionId" in answer)) {
    throw new Error(`standalone PD refuses region ${region.id}: ${answer}`);
  }
}

/** Keeps the TSO window renewed ahead of need; the timer never keeps the process alive. */
function startTicking(
  driver: PlacementDriver,
  options: StandalonePdOptions,
): ReturnType<typeof setInterval> | null {
  const intervalMs = options.tickIntervalMs === undefined
    ? TSO_TICK_INTERVAL_MS
    : options.tickIntervalMs;
  if (intervalMs === null) return null;
  const timer = setInterval(() => {
    try {
      driver.tsoTick();
    } catch (error) {
      // The next request retries the save itself and fails visibly if it still cannot.
      options.log?.error("TSO window renewal failed", { error: String(error) });
    }
  }, intervalMs);
  Deno.unrefTimer(timer);
  return timer;
}
