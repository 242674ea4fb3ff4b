/**
 * How both clients reach regions over the shared `RegionRequestSender` (region errors, leader
 * moves, broken streams and their back-off are handled there): one request to the region of a
 * key, batches of items grouped by region, and forward scans paged region by region.
 *
 * Region bounds are data keys. A client's keys map onto them through its `RegionKeySpace`:
 * raw keys as they are (`RAW_KEY_SPACE`), transactional keys by their memcomparable encoding
 * (`txn/region_keys.ts`). Keys are located and grouped by their data key, and a scan compares
 * its end with a region's end as data keys, turning the bound back into a request key only to
 * start the next page.
 *
 * A batch whose region answered with a region error is regrouped before it is sent again,
 * since its keys may now span several regions — the caller's `send` sees only groups of keys
 * that one region held when they were grouped. Every loop ends at the call's deadline (the
 * `Backoffer`'s) or its attempt budget.
 */
import { compareBytes } from "../util/bytes.ts";
import { Backoffer } from "./backoff.ts";
import { type Clock, REAL_CLOCK } from "./clock.ts";
import type { CommandName, ResponseOf } from "./commands.ts";
import { assert } from "../util/assert.ts";
import { minEnd, reachesEnd, successor } from "./keys.ts";
import type { RegionInfo } from "./region.ts";
import {
  RegionRequestSender,
  type RegionSendOptions,
  type RequestBody,
  RETRY,
} from "./region_request.ts";
import type { RegionResolver } from "./region_resolver.ts";
import type { ConnectionPool } from "./transport.ts";

/** How a client's request keys relate to region bounds (which are data keys). */
export interface RegionKeySpace {
  /** The data key request key `key` is routed by. */
  regionKey(key: Uint8Array): Uint8Array;
  /** The smallest request key whose data key sorts at or after region bound `bound`. */
  firstKeyAtOrAfter(bound: Uint8Array): Uint8Array;
}

/** Raw keys: a raw key is its own data key. */
export const RAW_KEY_SPACE: RegionKeySpace = {
  regionKey: (key) => key,
  firstKeyAtOrAfter: (bound) => bound,
};

/** Keys (or items carrying keys) of one region. */
export interface RegionGroup<T> {
  region: RegionInfo;
  items: T[];
}

/** One page of a forward scan, as `RegionRpc.scanForward`'s `page` returns it. */
export interface ScanPage<P> {
  /** The pairs the page contributes. */
  pairs: P[];
  /** Pairs the store returned: as many as asked means the region may hold more. */
  count: number;
  /** The last key the store returned; the next page starts right after it. */
  lastKey: Uint8Array;
}

/** Region-aware request helpers of one client. */
export class RegionRpc {
  readonly sender: RegionRequestSender;
  /** The clock of every deadline, back-off and timer of this client (`REAL_CLOCK` by default). */
  readonly clock: Clock;

  constructor(
    readonly resolver: RegionResolver,
    readonly pool: ConnectionPool,
    readonly keySpace: RegionKeySpace = RAW_KEY_SPACE,
    options: { clock?: Clock } = {},
  ) {
    this.sender = new RegionRequestSender(resolver, pool);
    this.clock = options.clock ?? REAL_CLOCK;
  }

  /** A backoffer whose deadline is `timeoutMs` from now, sleeping by this client's clock. */
  backoffer(timeoutMs: number): Backoffer {
    return new Backoffer(this.clock.nowMs() + timeoutMs, { environment: this.clock });
  }

  /** The region holding request key `key` (located by its data key). */
  locate(key: Uint8Array, backoffer: Backoffer): Promise<RegionInfo> {
    const dataKey = this.keySpace.regionKey(key);
    return this.sender.locate(() => this.resolver.locateKey(dataKey, backoffer), backoffer);
  }

  /**
   * The first request key after `region` (the smallest whose data key is at or after its end
   * bound), or null for the last region.
   */
  keyAfterRegion(region: RegionInfo): Uint8Array | null {
    if (region.endKey.length === 0) return null;
    return this.keySpace.firstKeyAtOrAfter(region.endKey);
  }

  /** Sends `cmd` once to `region`; RETRY when the caller must locate again. */
  sendToRegion<C extends CommandName>(
    cmd: C,
    region: RegionInfo,
    body: RequestBody<C>,
    options: RegionSendOptions,
  ): Promise<ResponseOf<C> | typeof RETRY> {
    return this.sender.send(cmd, region, body, options);
  }

  /** Sends `cmd` to the region of `key` until a region answers it. */
  async sendToKey<C extends CommandName>(
    cmd: C,
    key: Uint8Array,
    body: (region: RegionInfo) => RequestBody<C>,
    options: { backoffer: Backoffer; idempotent: boolean },
  ): Promise<ResponseOf<C>> {
    for (;;) {
      const region = await this.locate(key, options.backoffer);
      const response = await this.sender.send(cmd, region, body(region), options);
      if (response !== RETRY) return response;
    }
  }

  /** `items` grouped by the region holding `keyOf(item)`, in first-seen order of regions. */
  async groupByRegion<T>(
    items: readonly T[],
    keyOf: (item: T) => Uint8Array,
    backoffer: Backoffer,
  ): Promise<RegionGroup<T>[]> {
    const groups = new Map<bigint, RegionGroup<T>>();
    for (const item of items) {
      const region = await this.locate(keyOf(item), backoffer);
      let group = groups.get(region.id);
      if (group === undefined) groups.set(region.id, group = { region, items: [] });
      group.items.push(item);
    }
    return [...groups.values()];
  }

  /**
   * Runs `send` for every chunk of `items` per region, at most `concurrency` at once; a
   * chunk for which `send` returns RETRY is regrouped and sent again. Each chunk gets its own
   * backoffer (`Backoffer.fork`: the call's deadline, its own attempt budget, carried over to
   * its regrouped parts), which `send` should use for its requests. Rejects with the first
   * failure (the others still settle).
   */
  async forEachRegionBatch<T>(
    items: readonly T[],
    how: {
      keyOf: (item: T) => Uint8Array;
      chunk: (items: T[]) => T[][];
      backoffer: Backoffer;
      concurrency: number;
      send: (
        region: RegionInfo,
        items: T[],
        backoffer: Backoffer,
      ) => Promise<void | typeof RETRY>;
    },
  ): Promise<void> {
    const groups = await this.groupByRegion(items, how.keyOf, how.backoffer);
    const tasks = groups.flatMap(({ region, items }) =>
      how.chunk(items).map((part) => ({ region, part }))
    );
    await runLimited(tasks, how.concurrency, async ({ region, part }) => {
      const backoffer = how.backoffer.fork();
      const outcome = await how.send(region, part, backoffer);
      if (outcome === RETRY) await this.forEachRegionBatch(part, { ...how, backoffer });
    });
  }

  /**
   * The pairs of [start, end) (empty end: unbounded), smallest key first, at most `limit`,
   * read region by region. `page` asks the region for at most `ask` pairs in [cursor, end):
   * `at.end` is the smaller of the scan's end and the first request key after the region, so
   * the page reads only the region's keys (empty: unbounded). RETRY locates again. Each page
   * has its own backoffer (`at.backoffer`, a fork of the scan's: the scan's deadline, the
   * page's attempt budget). A full page goes on after its last key, a short one at the next
   * region; whether the region reaches the scan's end is decided on data keys, so a region
   * bound that no request key encodes to (a raw split key inside the transactional key space)
   * is never decoded.
   */
  async scanForward<P>(
    range: {
      start: Uint8Array;
      end: Uint8Array;
      limit: number;
      pageSize: number;
      backoffer: Backoffer;
    },
    page: (
      region: RegionInfo,
      at: { cursor: Uint8Array; ask: number; end: Uint8Array; backoffer: Backoffer },
    ) => Promise<ScanPage<P> | typeof RETRY>,
  ): Promise<P[]> {
    const { end, limit } = range;
    const pairs: P[] = [];
    let cursor = range.start;
    if (end.length > 0 && compareBytes(cursor, end) >= 0) return pairs;
    const endDataKey = end.length === 0 ? end : this.keySpace.regionKey(end);
    let backoffer = range.backoffer.fork();
    while (pairs.length < limit) {
      const region = await this.locate(cursor, backoffer);
      const ask = Math.min(limit - pairs.length, range.pageSize);
      const after = this.keyAfterRegion(region);
      const pageEnd = after === null ? end : minEnd(end, after);
      const answer = await page(region, { cursor, ask, end: pageEnd, backoffer });
      if (answer === RETRY) continue;
      backoffer = range.backoffer.fork(); // the next page is another request
      pairs.push(...answer.pairs);
      if (answer.count === ask) {
        cursor = successor(answer.lastKey); // the region may hold more
        continue;
      }
      if (after === null || reachesEnd(region, endDataKey)) break;
      assert(compareBytes(after, cursor) > 0, "a scan moves forward from region to region", {
        regionId: region.id,
        cursor,
        after,
      });
      cursor = after;
    }
    return pairs;
  }
}

/** Runs `work` over `tasks`, at most `limit` at a time; rejects with the first failure. */
export async function runLimited<T>(
  tasks: readonly T[],
  limit: number,
  work: (task: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | null = null;
  const worker = async () => {
    while (next < tasks.length && failure === null) {
      try {
        await work(tasks[next++]!);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  if (failure !== null) throw (failure as { error: unknown }).error;
}

/** Splits `items` into chunks of at most `maxItems` items and `maxBytes` bytes (by `sizeOf`). */
export function chunkBySize<T>(
  items: readonly T[],
  limits: { maxItems: number; maxBytes: number; sizeOf: (item: T) => number },
): T[][] {
  const chunks: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = limits.sizeOf(item);
    if (
      current.length > 0 && (current.length >= limits.maxItems || bytes + size > limits.maxBytes)
    ) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/** Splits `items` into chunks of at most `maxItems` items. */
export function chunkByCount<T>(items: readonly T[], maxItems: number): T[][] {
  return chunkBySize(items, { maxItems, maxBytes: Infinity, sizeOf: () => 0 });
}
