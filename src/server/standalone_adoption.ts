/**
 * From standalone to a cluster on the same data directory (issue #12 item 6): a store that ran
 * standalone restarts with `--pd`, and a fresh PD adopts its cluster — no dump, no import.
 * PD's side, and why PD takes the store's cluster id rather than the other way round, is
 * `src/pd/adoption.ts`; this is the store's.
 *
 * What the standalone data directory holds, and what of it PD must take over:
 * - `basalt.json` without a cluster id (store 1), and `pd/`, the embedded PD's files: the
 *   cluster id (`pd/cluster`), the TSO's saved bound (`pd/tso`: every timestamp the store ever
 *   issued lies below it), the id allocator's window end (`pd/ids`), the GC safe point.
 * - The regions, recorded in the engine (RegionLocalState in CF `raft`): region 1 (peer 2) at
 *   first, more after splits, each with one peer, a voter on store 1.
 *
 * The steps (`adoptStandaloneDataDir`), each safe to repeat after a crash:
 * 1. Read the directory (nothing is written). A standalone directory without its PD files is
 *    refused: its timestamps could not be carried over.
 * 2. Ask PD whether it is bootstrapped. Bootstrapped with another cluster id: refused, naming
 *    both ids, before anything on disk is touched. Bootstrapped with the store's cluster id: a
 *    previous run's adoption went through; go on at step 5.
 * 3. Read the regions from the engine (opened, read, closed), checking each is a standalone
 *    store's (one voter, on store 1), and the id bound: the largest of `pd/ids`, the fixed ids
 *    and every region and peer id found.
 * 4. `basalt.PdAdmin/AdoptStandalone` with the cluster id, the store, the region holding the
 *    empty key, the TSO bound, the id bound and the GC safe point. PD checks again and refuses
 *    if another store got there first.
 * 5. Mark the directory: `regions.json` (the region PD was given, as a bootstrapping store
 *    writes it), then `basalt.json` with the cluster id — the commit point: from then on the
 *    directory is an ordinary clustered store's.
 *
 * After that the store starts as any clustered store: it registers (PutStore), its leaders
 * heartbeat every region (PD takes the ones it did not know from these), and PD's replica
 * checker brings each region to `max-replicas` voters.
 *
 * @module
 */
import { RocksDbEngine } from "../engine/rocksdb_engine.ts";
import { adoptionToJson } from "../pd/server/adoption_wire.ts";
import type { StandaloneAdoption } from "../pd/adoption.ts";
import type { StorePut } from "../pd/cluster.ts";
import type { RegionMeta } from "../pd/types.ts";
import { PeerState, type RegionMeta as LocalRegionMeta } from "../raftstore/local_state.ts";
import { scanRegionStates } from "../raftstore/region_state.ts";
import { FileValueStore } from "../tso/mod.ts";
import { compareBytes } from "../util/bytes.ts";
import { metapb } from "../../proto/mod.ts";
import { DataDirError, markAdopted, readDataDirIdentity } from "./data_dir.ts";
import type { Logger } from "./log.ts";
import { loadClusterIdentity } from "./pd/cluster_identity.ts";
import { VALUE_FILES } from "./pd/file_storage.ts";
import { standaloneRegionMeta } from "./pd/standalone.ts";
import { STANDALONE } from "./region.ts";

/** What a standalone data directory says PD must take over (regions aside). */
export interface StandaloneState {
  clusterId: bigint;
  storeId: bigint;
  /** `pd/tso`: a physical ms no timestamp the store issued reached. */
  tsoBoundMs: bigint;
  /** `pd/ids` and the fixed ids: no id the store handed out passes it. */
  idBound: bigint;
  gcSafePoint: bigint;
}

/** What the store needs of PD to be adopted (`cluster_join.ts` makes them calls to PD). */
export interface AdoptionCalls {
  /** PD's cluster id, as GetMembers told it. */
  readonly clusterId: bigint;
  /** Where PD is, for messages. */
  readonly address: string;
  isBootstrapped(): Promise<boolean>;
  /** Whether PD knows store `storeId`. */
  storeKnown(storeId: bigint): Promise<boolean>;
  /** `basalt.PdAdmin/AdoptStandalone`: `null` when PD adopted, else its refusal's message. */
  adopt(request: Record<string, unknown>): Promise<string | null>;
}

/** PD will not (or cannot) adopt this standalone store's cluster; nothing on disk changed. */
export class AdoptionRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AdoptionRefused";
  }
}

/** The fixed ids a standalone store has before it allocates any. */
const STANDALONE_LARGEST_ID = [STANDALONE.storeId, STANDALONE.regionId, STANDALONE.peerId]
  .reduce((a, b) => (a > b ? a : b));

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** A u64 record file of the embedded PD, which must exist once `pd/cluster` does. */
function loadValue(dataDir: string, file: (typeof VALUE_FILES)[keyof typeof VALUE_FILES]): bigint {
  const path = `${dataDir}/pd/${file.name}`;
  const value = new FileValueStore(path, { format: file.format, field: file.field }).load();
  if (value === null) {
    throw new DataDirError(
      dataDir,
      `standalone store's pd/${file.name} is missing though pd/cluster exists: its ` +
        `${file.name} state cannot be carried over to PD; restore the file`,
    );
  }
  return value;
}

/**
 * The standalone state of `dataDir`, or `null` when it is not a standalone store's directory
 * (no identity yet, or a clustered store's). Reads only. Throws `DataDirError` for a standalone
 * directory whose embedded PD files are missing, `CorruptFileError` for a damaged one.
 */
export function readStandaloneState(dataDir: string): StandaloneState | null {
  const identity = readDataDirIdentity(dataDir);
  if (identity === null || identity.clusterId !== undefined) return null;
  const cluster = loadClusterIdentity(`${dataDir}/pd/cluster`);
  if (cluster === null) {
    throw new DataDirError(
      dataDir,
      `belongs to standalone store ${identity.storeId} but has no pd/cluster (the embedded ` +
        `PD's identity): it never finished a first start; start it without --pd once, or use ` +
        `an empty data directory`,
    );
  }
  const ids = loadValue(dataDir, VALUE_FILES.alloc_id);
  return {
    clusterId: cluster.clusterId,
    storeId: BigInt(identity.storeId),
    tsoBoundMs: loadValue(dataDir, VALUE_FILES.tso),
    idBound: ids > STANDALONE_LARGEST_ID ? ids : STANDALONE_LARGEST_ID,
    gcSafePoint: loadValue(dataDir, VALUE_FILES["gc/safe_point"]),
  };
}

/** PD's shape of a region the engine records, checked to be a standalone store's. */
function standaloneRegionOf(
  dataDir: string,
  region: LocalRegionMeta,
  storeId: bigint,
): RegionMeta {
  const [peer, ...more] = region.peers;
  if (
    peer === undefined || more.length > 0 || peer.storeId !== storeId ||
    (peer.role ?? metapb.PeerRole.Voter) !== metapb.PeerRole.Voter
  ) {
    throw new DataDirError(
      dataDir,
      `region ${region.id} has peers ${
        region.peers.map((p) => `${p.id}@store${p.storeId}`).join(", ")
      }: not a standalone store's (one voter on store ${storeId})`,
    );
  }
  return {
    id: region.id,
    startKey: region.startKey,
    endKey: region.endKey,
    regionEpoch: { ...region.regionEpoch },
    peers: [{ id: peer.id, storeId, role: "Voter" }],
  };
}

/**
 * The regions the standalone store's engine records (opened, read, closed), in key order; the
 * standalone region when it records none (a directory from before the engine recorded them).
 */
export function readStandaloneRegions(dataDir: string, storeId: bigint): RegionMeta[] {
  const dbPath = `${dataDir}/db`;
  if (!exists(dbPath)) return [standaloneRegionMeta()];
  const engine = RocksDbEngine.open(dbPath, { createIfMissing: false });
  try {
    const regions = scanRegionStates(engine)
      .filter((state) => state.state !== PeerState.Tombstone)
      .map((state) => standaloneRegionOf(dataDir, state.region, storeId));
    if (regions.length === 0) return [standaloneRegionMeta()];
    return regions.sort((a, b) => compareBytes(a.startKey, b.startKey));
  } finally {
    engine.close();
  }
}

/** The message of a refusal: both cluster ids, where PD is, and that nothing changed. */
function refusal(
  state: StandaloneState,
  calls: AdoptionCalls,
  why: string,
): AdoptionRefused {
  return new AdoptionRefused(
    `standalone store ${state.storeId} of cluster ${state.clusterId} cannot join PD at ` +
      `${calls.address}: ${why}; nothing was changed — start it without --pd, or give it a ` +
      `fresh PD`,
  );
}

/**
 * Has PD adopt the standalone store's cluster and marks `dataDir` as that cluster's (see the
 * module comment). Answers whether PD adopted it now or a previous start had done it. Throws
 * `AdoptionRefused` (nothing on disk changed) when PD runs another cluster or refuses.
 */
export async function adoptStandaloneDataDir(
  dataDir: string,
  options: {
    state: StandaloneState;
    calls: AdoptionCalls;
    store: StorePut;
    log: Logger;
    /** Writes `regions.json` as a store that bootstrapped the cluster with `region`. */
    recordFirstRegion: (region: RegionMeta) => void;
  },
): Promise<"adopted" | "adopted-before"> {
  const { state, calls, log } = options;
  const logFields = {
    clusterId: String(state.clusterId),
    storeId: String(state.storeId),
    pd: calls.address,
  };
  if (await calls.isBootstrapped()) {
    if (calls.clusterId !== state.clusterId) {
      throw refusal(state, calls, `PD already runs cluster ${calls.clusterId} (bootstrapped)`);
    }
    if (!(await calls.storeKnown(state.storeId))) {
      throw refusal(state, calls, `PD runs this cluster but does not know store ${state.storeId}`);
    }
    const regions = readStandaloneRegions(dataDir, state.storeId);
    options.recordFirstRegion(regions[0]!);
    markAdopted(dataDir, { clusterId: state.clusterId, now: new Date() });
    log.info("PD had adopted this standalone store's cluster; data directory marked", logFields);
    return "adopted-before";
  }
  const regions = readStandaloneRegions(dataDir, state.storeId);
  const largest = regions.flatMap((r) => [r.id, ...r.peers.map((p) => p.id)])
    .reduce((a, b) => (a > b ? a : b), state.idBound);
  const request: StandaloneAdoption = {
    clusterId: state.clusterId,
    store: options.store,
    region: regions[0]!,
    tsoBoundMs: state.tsoBoundMs,
    idBound: largest,
    gcSafePoint: state.gcSafePoint,
  };
  const refused = await calls.adopt(adoptionToJson(request));
  if (refused !== null) throw refusal(state, calls, refused);
  options.recordFirstRegion(regions[0]!);
  markAdopted(dataDir, { clusterId: state.clusterId, now: new Date() });
  log.info("PD adopted this standalone store's cluster; data directory marked", {
    ...logFields,
    regions: regions.length,
    tsoBoundMs: String(state.tsoBoundMs),
    idBound: String(largest),
  });
  return "adopted";
}
