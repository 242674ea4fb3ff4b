/**
 * Reclaims the space of expired raw values. Reads never see an expired value (`value.ts`); this
 * background sweep deletes them so compaction can drop the bytes. Each round walks the expiry
 * index (`ttl_index.ts`) up to now, in chunks, and for each entry, holding the key's latch so
 * no concurrent write can slip in between, deletes the value if it still carries that expiry
 * and has expired, and the index entry in any case. Only keys of the worker's own regions are
 * touched: the latches that guard them live in this worker.
 */
import { successor } from "../../util/bytes.ts";
import { regionContains } from "../region.ts";
import type { StoreServices } from "../services.ts";
import { decodeRawValue, isExpired } from "./value.ts";
import { parseTtlIndexKey, TTL_INDEX_CF, ttlIndexRange } from "./ttl_index.ts";

/** Index entries handled per chunk; the sweep yields to requests between chunks. */
const CHUNK_ENTRIES = 256;

/** What one round did. */
export interface SweepResult {
  /** Expired values deleted. */
  deleted: number;
  /** Index entries examined (each is removed unless it belongs to another worker). */
  examined: number;
}

type Log = {
  debug(message: string, fields?: Record<string, number>): void;
  error(message: string, fields?: Record<string, string>): void;
};

/** One sweep round over everything expired at the store's current time. */
export async function sweepExpired(services: StoreServices): Promise<SweepResult> {
  const store = services.raw;
  const now = store.nowUnixSeconds();
  const { start, end } = ttlIndexRange(now);
  const result: SweepResult = { deleted: 0, examined: 0 };
  let from = start;
  for (;;) {
    const entries: Uint8Array[] = [];
    {
      using iterator = store.engine.iterator(TTL_INDEX_CF, { lowerBound: from, upperBound: end });
      for (
        iterator.seekToFirst();
        iterator.valid() && entries.length < CHUNK_ENTRIES;
        iterator.next()
      ) {
        entries.push(iterator.key().slice());
      }
    }
    if (entries.length === 0) return result;
    for (const indexKey of entries) {
      const entry = parseTtlIndexKey(indexKey);
      const mine = [...services.regions.values()].some((region) =>
        regionContains(region, entry.key)
      );
      if (!mine) continue;
      result.examined++;
      const release = await store.latches.acquire(entry.cf, [entry.key]);
      try {
        using batch = store.engine.newWriteBatch();
        const stored = store.engine.get(entry.cf, entry.key);
        if (stored !== null) {
          const expiry = decodeRawValue(stored).expireUnixSeconds;
          if (expiry === entry.expireUnixSeconds && isExpired(expiry, now)) {
            batch.delete(entry.cf, entry.key);
            result.deleted++;
          }
        }
        batch.delete(TTL_INDEX_CF, indexKey);
        store.engine.write(batch);
      } finally {
        release();
      }
    }
    from = successor(entries[entries.length - 1]!);
    // Let requests run between chunks.
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}

/** A running sweeper. */
export interface TtlSweeper {
  stop(): Promise<void>;
}

/** Sweeps every `intervalMs` until stopped; a round never overlaps the next. */
export function startTtlSweeper(
  services: StoreServices,
  options: { intervalMs: number; log: Log },
): TtlSweeper {
  let stopped = false;
  let round: Promise<void> = Promise.resolve();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const schedule = () => {
    timer = setTimeout(() => {
      round = sweepExpired(services).then((result) => {
        if (result.examined > 0) options.log.debug("ttl sweep", { ...result });
      }, (error: unknown) => {
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
