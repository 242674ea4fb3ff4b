/**
 * Reclaims the space of expired raw values. Reads never see an expired value (`value.ts`); this
 * background sweep deletes them so compaction can drop the bytes.
 *
 * A round walks, region by region of the worker and raw column family by column family, the
 * index entries of the region's keys (`ttl_index.ts`: the index is ordered by key, so a region's
 * entries are one range per family). The expiry is the last 8 bytes of an entry's key, so an
 * entry not yet due costs only its read. For the entries of a chunk that came due, holding their
 * keys' latches so no concurrent write can slip in between, it deletes each value that still
 * carries its entry's expiry, and every entry in any case (an overwritten key's old entry is
 * stale): one write through the store's write path per chunk (`deleteSwept`).
 *
 * Bounds: a chunk reads at most TTL_SWEEP_CHUNK_SCANNED entries and handles at most
 * TTL_SWEEP_CHUNK_ENTRIES due ones, then yields to requests. Only keys of the worker's own
 * regions are touched (the latches that guard them live in this worker), and a region is held
 * (`hold`) while a chunk of it runs, so a move of the region to another worker waits for it.
 */
import { TTL_SWEEP_CHUNK_ENTRIES, TTL_SWEEP_CHUNK_SCANNED } from "../../constants.ts";
import type { ColumnFamily } from "../../engine/types.ts";
import { successor } from "../../util/bytes.ts";
import type { Region } from "../region.ts";
import type { StoreServices } from "../services.ts";
import type { Modification } from "../../storage/mod.ts";
import {
  expiryOfTtlIndexKey,
  parseTtlIndexKey,
  RAW_CFS,
  TTL_INDEX_CF,
  type TtlIndexEntry,
  ttlIndexRangeOf,
} from "../../storage/ttl_index.ts";
import { assert } from "../../util/assert.ts";
import { type RawStore, writePathOf } from "./store.ts";
import { decodeRawValue, isExpired } from "./value.ts";
import { isExpectedFailure } from "../worker_errors.ts";

/** What one round did. */
export interface SweepResult {
  /** Expired values deleted. */
  deleted: number;
  /** Index entries that came due and were examined (each is removed). */
  examined: number;
}

type Log = {
  debug(message: string, fields?: Record<string, number>): void;
  error(message: string, fields?: Record<string, string>): void;
};

/**
 * Counts a piece of work on a region until the returned release is called; null when the
 * region is no longer served (the worker's `holdRegion`).
 */
export type RegionHold = (regionId: bigint) => (() => void) | null;

/** Options of a sweep round. */
export interface SweepOptions {
  hold?: RegionHold;
}

/** One sweep round over everything expired at the store's current time. */
export async function sweepExpired(
  services: StoreServices,
  options: SweepOptions = {},
): Promise<SweepResult> {
  const now = services.raw.nowUnixSeconds();
  const result: SweepResult = { deleted: 0, examined: 0 };
  const hold = options.hold ?? ((id: bigint) => services.regions.has(id) ? () => {} : null);
  for (const region of [...services.regions.values()]) {
    regionLoop: for (const cf of RAW_CFS) {
      const range = ttlIndexRangeOf(cf, region);
      for (let from: Uint8Array | null = range.start; from !== null;) {
        const release = hold(region.id);
        if (release === null) break regionLoop; // dropped meanwhile: another worker owns it
        try {
          from = await sweepChunk(services.raw, { cf, from, end: range.end, now, result, region });
        } finally {
          release();
        }
        // Let requests run between chunks.
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
    }
  }
  return result;
}

/**
 * Reads one chunk of index entries of `cf` from `from` and handles the due ones; returns where
 * the next chunk starts, or null when the range is done.
 */
async function sweepChunk(
  store: RawStore,
  chunk: {
    cf: ColumnFamily;
    from: Uint8Array;
    end: Uint8Array;
    now: number;
    result: SweepResult;
    region: Region;
  },
): Promise<Uint8Array | null> {
  const due: Uint8Array[] = [];
  let last: Uint8Array | null = null;
  let scanned = 0;
  {
    using iterator = store.engine.iterator(TTL_INDEX_CF, {
      lowerBound: chunk.from,
      upperBound: chunk.end,
    });
    for (
      iterator.seekToFirst();
      iterator.valid() && scanned < TTL_SWEEP_CHUNK_SCANNED && due.length < TTL_SWEEP_CHUNK_ENTRIES;
      iterator.next()
    ) {
      scanned++;
      const indexKey = iterator.key();
      if (isExpired(expiryOfTtlIndexKey(indexKey), chunk.now)) due.push(indexKey.slice());
      last = indexKey.slice();
    }
  }
  await deleteSwept(store, {
    region: chunk.region,
    cf: chunk.cf,
    due,
    now: chunk.now,
    result: chunk.result,
  });
  const full = scanned === TTL_SWEEP_CHUNK_SCANNED || due.length === TTL_SWEEP_CHUNK_ENTRIES;
  return full && last !== null ? successor(last) : null;
}

/**
 * The sweeper's one write: for the due index entries of one chunk (one region, one column
 * family), every entry and the value of each entry's key that still carries that expiry, as one
 * write through the store's write path (`writePathOf`: the group commit today, the region's Raft
 * proposal with replication). It holds the keys' latches from its read of the values until the
 * write is applied, so no concurrent write to those keys slips in between: the path releases
 * them (duty 4 of `src/storage/write_path.ts`). Unsynced: a crash that loses it loses nothing,
 * because the next sweep finds the same entries due and deletes them again.
 */
async function deleteSwept(
  store: RawStore,
  chunk: {
    region: Region;
    cf: ColumnFamily;
    due: readonly Uint8Array[];
    now: number;
    result: SweepResult;
  },
): Promise<void> {
  if (chunk.due.length === 0) return;
  const modifications: Modification[] = [];
  const entries: TtlIndexEntry[] = [];
  for (const indexKey of chunk.due) {
    // A damaged index entry names no key to reclaim: drop it, or it would come due forever.
    modifications.push({ type: "delete", cf: TTL_INDEX_CF, key: indexKey });
    const entry = parseTtlIndexKey(indexKey);
    if (entry === null) continue;
    assert(entry.cf === chunk.cf, "an entry of a family's index range names that family", {
      cf: entry.cf,
      range: chunk.cf,
    });
    entries.push(entry);
  }
  const release = await store.latches.acquire(chunk.cf, entries.map((entry) => entry.key));
  let deleted = 0;
  try {
    for (const entry of entries) {
      const stored = store.engine.get(entry.cf, entry.key);
      if (stored === null) continue;
      const expiry = decodeRawValue(stored).expireUnixSeconds;
      if (expiry === entry.expireUnixSeconds && isExpired(expiry, chunk.now)) {
        modifications.push({ type: "delete", cf: entry.cf, key: entry.key });
        deleted++;
      }
    }
  } catch (error) {
    release();
    throw error;
  }
  await writePathOf(store).write(chunk.region, modifications, { sync: false, release });
  chunk.result.examined += entries.length;
  chunk.result.deleted += deleted;
}

/** A running sweeper. */
export interface TtlSweeper {
  stop(): Promise<void>;
}

/**
 * Sweeps every `intervalMs` until stopped; a round never overlaps the next. A round that fails
 * with an expected failure (`worker_errors.ts`: the engine closed, an I/O error) is logged and
 * the next one runs; any other error is a bug, handed to `onBug` (the worker ends).
 */
export function startTtlSweeper(
  services: StoreServices,
  options: { intervalMs: number; log: Log; hold?: RegionHold; onBug?: (error: unknown) => void },
): TtlSweeper {
  let stopped = false;
  let round: Promise<void> = Promise.resolve();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const schedule = () => {
    timer = setTimeout(() => {
      round = sweepExpired(services, { hold: options.hold }).then((result) => {
        if (result.examined > 0) options.log.debug("ttl sweep", { ...result });
      }, (error: unknown) => {
        if (options.onBug !== undefined && !isExpectedFailure(error)) {
          stopped = true;
          return options.onBug(error);
        }
        options.log.error("ttl sweep failed", { error: String(error) });
      }).finally(() => {
        if (!stopped) schedule();
      });
    }, options.intervalMs);
  };
  schedule();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await round;
    },
  };
}
