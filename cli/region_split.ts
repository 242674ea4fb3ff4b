/**
 * `basalt-ctl --pd ADDR region split KEY [KEY…] [--raw]` (or `--host ADDR` for a standalone
 * store): splits the regions holding the keys at them, through the client's `splitRegions`
 * (`RawKV.splitRegions` with `--raw`; `TxnKV.splitRegions` otherwise, whose keys the store
 * encodes), and prints the regions the splits made as `region list` does.
 *
 * - The keys are checked before anything is split: the empty key, a key named twice and a key
 *   that already starts a region (as PD knows the regions) are refused, naming the key, and
 *   nothing is split. A split key is a data key: a raw key as it is, a transactional one
 *   encoded (memcomparable, no timestamp), which is what region bounds are.
 * - The regions are printed as PD reports them once PD knows each at the split's epoch with a
 *   leader (polled until `--timeout`); if PD has not caught up by then, as the store's split
 *   answered them, without a leader, and a note on stderr says so.
 */
import { CTL_SPLIT_REPORT_POLL_MS } from "../src/constants.ts";
import { encodeKey } from "../src/codec/key.ts";
import { PdClient, type PdRegion } from "../src/client/pd_client.ts";
import type { RegionInfo } from "../src/client/region.ts";
import { bytesEqual } from "../src/util/bytes.ts";
import {
  type ClientCommandOptions,
  pdEndpoints,
  print,
  unreachable,
  withClient,
} from "./client_command.ts";
import { CtlError } from "./ctl_error.ts";
import { connect as connectRaw } from "./online.ts";
import { argumentBytes, humanBytes } from "./output.ts";
import { regionJson, regionText } from "./pd.ts";
import { connect as connectTxn } from "./txn.ts";

/** Flags of `region split`. */
export interface RegionSplitOptions extends ClientCommandOptions {
  /** Raw keys (`--raw`); transactional keys otherwise. */
  raw: boolean;
}

const USAGE = "usage: basalt-ctl --pd ADDR|--host ADDR region split KEY [KEY…] [--raw]";

/** The data key (region bound) that `key` splits at. */
function splitPoint(key: Uint8Array, options: RegionSplitOptions): Uint8Array {
  return options.raw ? key : encodeKey(key);
}

/** The keys of the operands; refuses the empty key and a key named twice. */
function splitKeys(operands: readonly string[], options: RegionSplitOptions): Uint8Array[] {
  if (operands.length === 0) throw new CtlError(USAGE);
  const keys = operands.map((operand) => argumentBytes(operand, options));
  keys.forEach((key, i) => {
    if (key.length === 0) {
      throw new CtlError("the empty key starts the first region; it is no split key");
    }
    if (keys.findIndex((other) => bytesEqual(other, key)) !== i) {
      throw new CtlError(`split key ${show(key, options)} is named twice`);
    }
  });
  return keys;
}

const show = (key: Uint8Array, options: RegionSplitOptions) =>
  JSON.stringify(humanBytes(key, options));

/** Refuses a key that already starts a region: there is nothing to split at it. */
async function refuseBoundaries(
  pd: PdClient,
  keys: readonly Uint8Array[],
  options: RegionSplitOptions,
): Promise<void> {
  for (const key of keys) {
    const located = await pd.getRegion(splitPoint(key, options));
    if (
      located !== null &&
      bytesEqual(located.region.startKey ?? new Uint8Array(0), splitPoint(key, options))
    ) {
      throw new CtlError(
        `split key ${show(key, options)} already starts region ${located.region.id}: ` +
          "nothing was split",
      );
    }
  }
}

/**
 * The regions `made` as PD reports them, once it knows each at (at least) the split's epoch
 * with a leader; null if it has not by `deadlineMs`.
 */
async function reported(
  pd: PdClient,
  made: readonly RegionInfo[],
  deadlineMs: number,
): Promise<PdRegion[] | null> {
  for (;;) {
    const known = await Promise.all(made.map((region) => pd.getRegionById(region.id)));
    const current = known.every((route, i) =>
      route !== null && route.leader !== null &&
      (route.region.regionEpoch?.version ?? 0n) >= made[i]!.epoch.version
    );
    if (current) return known as PdRegion[];
    if (Date.now() + CTL_SPLIT_REPORT_POLL_MS >= deadlineMs) return null;
    await new Promise((resolve) => setTimeout(resolve, CTL_SPLIT_REPORT_POLL_MS));
  }
}

/** A region as the split answered it (no leader: the new regions were still electing). */
function asPdRegion(region: RegionInfo): PdRegion {
  return {
    region: {
      id: region.id,
      startKey: region.startKey,
      endKey: region.endKey,
      regionEpoch: region.epoch,
      peers: region.peers.map((peer) => ({ id: peer.id, storeId: peer.storeId })),
    },
    leader: null,
  };
}

async function connectPd(options: RegionSplitOptions): Promise<PdClient> {
  const endpoints = options.pd !== undefined ? pdEndpoints(options.pd) : [options.host!];
  try {
    return await PdClient.connect(endpoints, { timeoutMs: options.timeoutMs, tls: options.tls });
  } catch (error) {
    const address = options.pd !== undefined ? `PD ${options.pd}` : options.host!;
    throw unreachable(error, { address, timeoutMs: options.timeoutMs });
  }
}

/** The split itself, through the client of the key space (`--raw` or transactional). */
async function split(keys: Uint8Array[], options: RegionSplitOptions): Promise<RegionInfo[]> {
  let made: RegionInfo[] = [];
  if (options.raw) {
    await withClient(() => connectRaw({ ...options, reverse: false }), async (client) => {
      made = await client.splitRegions(keys, { timeoutMs: options.timeoutMs });
    });
  } else {
    await withClient(() => connectTxn(options), async (client) => {
      made = await client.splitRegions(keys);
    });
  }
  return made;
}

/** Runs `region split KEY…`. */
export async function runRegionSplit(
  operands: readonly string[],
  options: RegionSplitOptions,
): Promise<void> {
  if (options.pd === undefined && options.host === undefined) {
    throw new CtlError("region split needs --pd ADDR (a cluster) or --host ADDR (a store)");
  }
  const keys = splitKeys(operands, options);
  const deadlineMs = Date.now() + options.timeoutMs;
  await withClient(() => connectPd(options), async (pd) => {
    await refuseBoundaries(pd, keys, options);
    const made = await split(keys, options);
    // Every key was checked to lie inside a region, so a split that made nothing lost a race
    // with another split at the same keys.
    if (made.length === 0) throw new CtlError("nothing was split: the keys start regions now");
    const routes = await reported(pd, made, deadlineMs);
    if (routes === null) {
      console.error(
        `basalt-ctl: PD does not report the new regions' leaders yet (${options.timeoutMs} ms); ` +
          "showing them as the split answered",
      );
    }
    const shown = routes ?? made.map(asPdRegion);
    print(options, shown.map((route) => regionText(route, options)).join("\n"), {
      regions: shown.map((route) => regionJson(route, options)),
    });
  });
}
